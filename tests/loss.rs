//! The built-in losses: known values computed here by plain formulas (not by the crate),
//! gradient checks, extreme logits, and bad targets.

use approx::assert_relative_eq;
use feedforward::gradcheck::{self, Config};
use feedforward::{
    BinaryCrossEntropy, Error, Huber, Loss, MeanAbsoluteError, MeanSquaredError, Poisson, Quantile,
    SoftTargetCrossEntropy, SoftmaxCrossEntropy,
};
use nalgebra::DMatrix;

/// Gradient checks of every loss: f64, central differences with h = 1e-5, error
/// `|a − n| / max(|a|, |n|, 1e-4)` at most this.
const BOUND: f64 = 1e-6;

fn logits() -> DMatrix<f64> {
    DMatrix::from_fn(4, 5, |i, j| ((i * 7 + j * 3) % 11) as f64 / 3.0 - 1.5)
}

#[test]
fn softmax_cross_entropy_known_value() {
    // Uniform logits over 4 classes: loss ln 4, gradient (1/4 − onehot)/N.
    let z = DMatrix::<f64>::zeros(4, 2);
    let mut g = DMatrix::zeros(0, 0);
    let loss = SoftmaxCrossEntropy::new().loss_and_grad(&z, &[1, 3], &mut g).unwrap();
    assert_relative_eq!(loss, 4f64.ln(), max_relative = 1e-12);
    assert_relative_eq!(g[(1, 0)], (0.25 - 1.0) / 2.0, max_relative = 1e-12);
    assert_relative_eq!(g[(0, 0)], 0.25 / 2.0, max_relative = 1e-12);
}

/// `Σᵢ Σₖ wₖ·qᵢₖ·(−ln softmax(zᵢ)ₖ) / Σᵢ w_yᵢ`, written out naively (fine for these moderate
/// logits): PyTorch's documented weighted, smoothed cross-entropy.
fn naive_ce(z: &DMatrix<f64>, labels: &[usize], eps: f64, weights: &[f64]) -> f64 {
    let k = z.nrows() as f64;
    let mut total = 0.0;
    for (j, &y) in labels.iter().enumerate() {
        let col = z.column(j);
        let norm: f64 = col.iter().map(|v| v.exp()).sum();
        for (c, &v) in col.iter().enumerate() {
            let q = eps / k + if c == y { 1.0 - eps } else { 0.0 };
            total -= weights[c] * q * (v.exp() / norm).ln();
        }
    }
    total / labels.iter().map(|&y| weights[y]).sum::<f64>()
}

#[test]
fn softmax_cross_entropy_with_and_without_smoothing_matches_the_plain_formula() {
    let z = logits();
    let labels = [0, 3, 2, 1, 3];
    for eps in [0.0, 0.1, 0.5] {
        let loss = SoftmaxCrossEntropy::new().with_label_smoothing(eps).unwrap();
        assert_relative_eq!(
            loss.loss(&z, &labels).unwrap(),
            naive_ce(&z, &labels, eps, &[1.0; 4]),
            max_relative = 1e-12
        );
        let report = gradcheck::check_loss(&loss, &z, &labels[..], &Config::default()).unwrap();
        assert!(report.max_error <= BOUND, "eps {eps}: {report}");
    }
    assert!(matches!(
        SoftmaxCrossEntropy::new().with_label_smoothing(1.0),
        Err(Error::InvalidHyperparameter { name: "label smoothing", .. })
    ));
}

#[test]
fn class_weights_match_the_plain_formula_pytorch_and_the_unweighted_loss() {
    let z = logits();
    let labels = [0, 3, 2, 1, 3];
    let weights = [0.5, 2.0, 1.0, 3.0];
    for eps in [0.0, 0.1, 0.5] {
        let loss = SoftmaxCrossEntropy::new()
            .with_label_smoothing(eps)
            .unwrap()
            .with_class_weights(weights.to_vec())
            .unwrap();
        assert_relative_eq!(
            loss.loss(&z, &labels).unwrap(),
            naive_ce(&z, &labels, eps, &weights),
            max_relative = 1e-12
        );
        let report = gradcheck::check_loss(&loss, &z, &labels[..], &Config::default()).unwrap();
        assert!(report.max_error <= BOUND, "eps {eps}: {report}");
        // Weights of 1 are the unweighted loss, bit for bit, gradient included.
        let (plain, ones) = (
            SoftmaxCrossEntropy::new().with_label_smoothing(eps).unwrap(),
            SoftmaxCrossEntropy::new()
                .with_label_smoothing(eps)
                .unwrap()
                .with_class_weights(vec![1.0; 4])
                .unwrap(),
        );
        let (mut g1, mut g2) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
        assert_eq!(
            plain.loss_and_grad(&z, &labels, &mut g1).unwrap(),
            ones.loss_and_grad(&z, &labels, &mut g2).unwrap()
        );
        assert_eq!(g1, g2);
    }

    // PyTorch 2.15 `cross_entropy(z, y, weight = [0.5, 2, 1], label_smoothing = ε)` in f64, on
    // these 4 samples (one per column here, one per row there), loss and gradient.
    let z =
        DMatrix::from_column_slice(3, 4, &[2.0, -1.0, 0.5, 0.1, 0.2, 0.3, -3.0, 4.0, 1.0, 1.5, 1.5, -0.5]);
    let labels = [0, 2, 1, 1];
    let cases = [
        (
            0.0,
            0.497955830419662,
            [
                -0.019491178673702193,
                0.0035556884791534044,
                0.01593549019454879,
                0.05465629188285952,
                0.060404544278790426,
                -0.11506083616164992,
                0.0003155931981416746,
                -0.017546397979720615,
                0.017230804781578974,
                0.17029473848490226,
                -0.1933416251514614,
                0.02304688666655914,
            ],
        ),
        (
            0.1,
            0.5904612595347591,
            [
                -0.00390818431504431,
                -0.008091431844838263,
                0.011999616159882568,
                0.05253692705060415,
                0.04929007456222482,
                -0.10182700161282893,
                -0.0027278595487505923,
                -0.007724388972989829,
                0.010452248521740457,
                0.16016882135106164,
                -0.17619481501257475,
                0.016025993661513117,
            ],
        ),
    ];
    for (eps, expected_loss, expected_grad) in cases {
        let loss = SoftmaxCrossEntropy::new()
            .with_label_smoothing(eps)
            .unwrap()
            .with_class_weights(vec![0.5, 2.0, 1.0])
            .unwrap();
        let mut g = DMatrix::zeros(0, 0);
        assert_relative_eq!(
            loss.loss_and_grad(&z, &labels, &mut g).unwrap(),
            expected_loss,
            max_relative = 1e-12
        );
        for (k, (&got, &want)) in g.as_slice().iter().zip(&expected_grad).enumerate() {
            let (got, want): (f64, f64) = (got, want);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1e-3),
                "eps {eps}, entry {k}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn bad_class_weights_are_errors() {
    for w in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                SoftmaxCrossEntropy::new().with_class_weights(vec![1.0, w]),
                Err(Error::InvalidHyperparameter { name: "class weight", .. })
            ),
            "{w}"
        );
    }
    assert!(matches!(
        SoftmaxCrossEntropy::new().with_class_weights(vec![]),
        Err(Error::ShapeMismatch { .. })
    ));
    // Three weights for four classes: at `check_targets` (what `fit` calls first) and at `compute`.
    let loss = SoftmaxCrossEntropy::new().with_class_weights(vec![1.0, 2.0, 3.0]).unwrap();
    let e = Loss::<f64>::check_targets(&loss, 4, &[0, 1]).unwrap_err();
    assert!(e.to_string().contains("4 weights (one per output row), got 3 weights"), "{e}");
    assert!(matches!(loss.loss(&logits(), &[0, 1, 2, 3, 0]), Err(Error::ShapeMismatch { .. })));
}

#[test]
fn logits_of_plus_minus_1e4_stay_finite_and_correct() {
    for z in [1e4f32, -1e4] {
        let logits = DMatrix::from_column_slice(3, 2, &[z, 0.0, -z, 0.0, 0.0, 0.0]);
        let mut g = DMatrix::zeros(0, 0);
        let loss = SoftmaxCrossEntropy::new().loss_and_grad(&logits, &[0, 1], &mut g).unwrap();
        assert!(loss.is_finite() && g.iter().all(|v| v.is_finite()), "z = {z}: {loss} {g}");
        // Sample 0 is [z, 0, −z] with label 0: confident and right (z > 0) costs 0; for z < 0
        // the right class is 2e4 below the top logit, which costs 2e4.
        let expect0 = if z > 0.0 { 0.0 } else { 2e4 };
        let expect1 = 3f64.ln();
        assert_relative_eq!(f64::from(loss), (expect0 + expect1) / 2.0, max_relative = 1e-5);
    }
}

#[test]
fn one_class_batch() {
    let logits = DMatrix::from_column_slice(1, 3, &[5.0f64, -7.0, 0.0]);
    let mut g = DMatrix::zeros(0, 0);
    let loss = SoftmaxCrossEntropy::new().loss_and_grad(&logits, &[0, 0, 0], &mut g).unwrap();
    assert_eq!(loss, 0.0);
    assert!(g.iter().all(|&v| v == 0.0));
    assert!(matches!(
        SoftmaxCrossEntropy::new().loss(&logits, &[0, 1, 0]),
        Err(Error::LabelOutOfRange { index: 1, .. })
    ));
}

#[test]
fn softmax_is_stable_and_normalised() {
    let mut z = DMatrix::from_column_slice(3, 1, &[1e4f32, 1e4 - 1.0, -1e4]);
    SoftmaxCrossEntropy::softmax_in_place(&mut z);
    assert_relative_eq!(z.sum(), 1.0, max_relative = 1e-6);
    assert_relative_eq!(z[0] / z[1], std::f32::consts::E, max_relative = 1e-5);
    assert_eq!(z[2], 0.0);
}

#[test]
fn empty_batch_is_an_error() {
    let z = DMatrix::<f32>::zeros(3, 0);
    assert!(matches!(SoftmaxCrossEntropy::new().loss(&z, &[]), Err(Error::EmptyBatch { .. })));
    assert!(matches!(MeanSquaredError.loss(&z, &DMatrix::zeros(3, 0)), Err(Error::EmptyBatch { .. })));
}

#[test]
fn mean_squared_error_known_values_and_gradient() {
    // Entries: (1 − 0)², (−2 − 1)², (0.5 − 0.5)², (3 − 1)² → (1 + 9 + 0 + 4) / 4.
    let z = DMatrix::from_column_slice(2, 2, &[1.0, -2.0, 0.5, 3.0]);
    let t = DMatrix::from_column_slice(2, 2, &[0.0, 1.0, 0.5, 1.0]);
    let mut g = DMatrix::zeros(0, 0);
    let value = MeanSquaredError.compute(&z, &t, None).unwrap();
    assert_eq!((value.loss, value.accuracy), (3.5, None));
    MeanSquaredError.loss_and_grad(&z, &t, &mut g).unwrap();
    // 2(z − t)/4
    assert_eq!(g.as_slice(), &[0.5, -1.5, 0.0, 1.0]);
    let t = logits().map(|v| v * 0.3 + 0.1);
    let report = gradcheck::check_loss(&MeanSquaredError, &logits(), &t, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
}

/// `−p·t·ln σ(z) − (1 − t)·ln(1 − σ(z))`, written out naively.
fn naive_bce(z: f64, t: f64, p: f64) -> f64 {
    let s = 1.0 / (1.0 + (-z).exp());
    -p * t * s.ln() - (1.0 - t) * (1.0 - s).ln()
}

#[test]
fn binary_cross_entropy_matches_the_plain_formula_and_gradient_checks() {
    let z = logits();
    let t = DMatrix::from_fn(4, 5, |i, j| [0.0, 1.0, 0.25, 1.0, 0.0][(i + 2 * j) % 5]);
    let expected = z.iter().zip(t.iter()).map(|(&z, &t)| naive_bce(z, t, 1.0)).sum::<f64>() / 20.0;
    let value = BinaryCrossEntropy::new().compute(&z, &t, None).unwrap();
    assert_relative_eq!(value.loss, expected, max_relative = 1e-12);
    // Accuracy: z > 0 agrees with t > 0.5, counted here entry by entry.
    let agree = z.iter().zip(t.iter()).filter(|&(&z, &t)| (z > 0.0) == (t > 0.5)).count();
    assert_eq!(value.accuracy, Some(agree as f64 / 20.0));
    let report = gradcheck::check_loss(&BinaryCrossEntropy::new(), &z, &t, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
}

#[test]
fn positive_weights_match_the_plain_formula_pytorch_and_the_unweighted_loss() {
    let z = logits();
    let t = DMatrix::from_fn(4, 5, |i, j| [0.0, 1.0, 0.25, 1.0, 0.0][(i + 2 * j) % 5]);
    let weights = [3.0, 0.5, 1.0, 7.0];
    let bce = BinaryCrossEntropy::new().with_pos_weight(weights.to_vec()).unwrap();
    let expected =
        z.iter().zip(t.iter()).enumerate().map(|(k, (&z, &t))| naive_bce(z, t, weights[k % 4])).sum::<f64>()
            / 20.0;
    assert_relative_eq!(bce.loss(&z, &t).unwrap(), expected, max_relative = 1e-12);
    let report = gradcheck::check_loss(&bce, &z, &t, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
    // Weights of 1 are the unweighted loss, bit for bit, gradient included.
    let ones = BinaryCrossEntropy::new().with_pos_weight(vec![1.0; 4]).unwrap();
    let (mut g1, mut g2) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    assert_eq!(
        BinaryCrossEntropy::new().loss_and_grad(&z, &t, &mut g1).unwrap(),
        ones.loss_and_grad(&z, &t, &mut g2).unwrap()
    );
    assert_eq!(g1, g2);

    // PyTorch 2.15 `binary_cross_entropy_with_logits(z, t, pos_weight = [3, 0.5])` in f64 on
    // these 3 samples of 2 labels (one per column here, one per row there).
    let z = DMatrix::from_column_slice(2, 3, &[1.0, -2.0, 0.0, 3.0, -0.5, 0.25]);
    let t = DMatrix::from_column_slice(2, 3, &[1.0, 0.0, 0.0, 1.0, 0.7, 1.0]);
    let bce = BinaryCrossEntropy::new().with_pos_weight(vec![3.0, 0.5]).unwrap();
    let mut g = DMatrix::zeros(0, 0);
    assert_relative_eq!(bce.loss_and_grad(&z, &t, &mut g).unwrap(), 0.7099847336526892, max_relative = 1e-12);
    let expected = [
        -0.13447071068499752,
        0.019867153670352924,
        0.08333333333333333,
        -0.003952156098130553,
        -0.19898373248074183,
        -0.03648529159285016,
    ];
    for (k, (&got, &want)) in g.as_slice().iter().zip(&expected).enumerate() {
        let (got, want): (f64, f64) = (got, want);
        assert!((got - want).abs() <= 1e-12 * want.abs(), "entry {k}: {got} vs {want}");
    }

    // Bad weights: not finite and > 0, none, or not one per output row.
    for w in [0.0, -2.0, f64::NAN] {
        assert!(matches!(
            BinaryCrossEntropy::new().with_pos_weight(vec![w]),
            Err(Error::InvalidHyperparameter { name: "positive weight", .. })
        ));
    }
    assert!(matches!(BinaryCrossEntropy::new().with_pos_weight(vec![]), Err(Error::ShapeMismatch { .. })));
    let e = Loss::<f64>::check_targets(&bce, 3, &DMatrix::zeros(3, 1)).unwrap_err();
    assert!(e.to_string().contains("3 weights (one per output row), got 2 weights"), "{e}");
    assert!(matches!(
        bce.loss(&DMatrix::<f64>::zeros(3, 1), &DMatrix::zeros(3, 1)),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn binary_cross_entropy_is_finite_for_logits_of_plus_minus_1e4() {
    for ty in [0.0f32, 1.0] {
        let z = DMatrix::from_column_slice(2, 1, &[1e4f32, -1e4]);
        let t = DMatrix::from_element(2, 1, ty);
        let mut g = DMatrix::zeros(0, 0);
        let loss = BinaryCrossEntropy::new().loss_and_grad(&z, &t, &mut g).unwrap();
        // Right and confident costs 0; wrong and confident costs |z| = 1e4. One of each.
        assert_relative_eq!(f64::from(loss), 1e4 / 2.0, max_relative = 1e-6);
        // dL/dz = (σ(z) − t)/2: σ(1e4) = 1, σ(−1e4) = 0.
        assert_eq!(g.as_slice(), &[(1.0 - ty) / 2.0, -ty / 2.0]);
    }
}

#[test]
fn huber_known_values_and_gradient() {
    let huber = Huber::new(1.0).unwrap();
    // r = 0.5 → 0.125; r = −3 → 1·(3 − 0.5) = 2.5; r = 1 (the seam) → 0.5; r = 2 → 1.5.
    let z = DMatrix::from_column_slice(4, 1, &[0.5, -3.0, 1.0, 2.0]);
    let t = DMatrix::zeros(4, 1);
    let mut g = DMatrix::zeros(0, 0);
    assert_eq!(huber.loss_and_grad(&z, &t, &mut g).unwrap(), (0.125 + 2.5 + 0.5 + 1.5) / 4.0);
    assert_eq!(g.as_slice(), &[0.5 / 4.0, -1.0 / 4.0, 1.0 / 4.0, 1.0 / 4.0]);
    // Away from the seams |r| = δ, where the second derivative jumps.
    let huber = Huber::new(0.7).unwrap();
    let z = logits();
    let t = DMatrix::from_fn(4, 5, |i, j| (i as f64 - j as f64) * 0.37);
    assert!(z.iter().zip(t.iter()).all(|(&z, &t)| ((z - t).abs() - 0.7).abs() > 1e-3));
    let report = gradcheck::check_loss(&huber, &z, &t, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
    assert!(Huber::new(0.0).is_err() && Huber::new(f64::NAN).is_err());
}

/// Targets a distance from `logits()` that keeps every entry away from the kinks `z = t` of the
/// absolute and pinball losses, where central differences straddle a jump of the slope.
fn targets_off_the_kinks() -> DMatrix<f64> {
    let t = DMatrix::from_fn(4, 5, |i, j| (i as f64 - j as f64) * 0.37);
    assert!(logits().iter().zip(t.iter()).all(|(&z, &t)| (z - t).abs() > 1e-3));
    t
}

#[test]
fn mean_absolute_error_known_values_and_gradient() {
    // |1 − 0|, |−2 − 1|, |0.5 − 0.5|, |3 − 1| → (1 + 3 + 0 + 2) / 4.
    let z = DMatrix::from_column_slice(2, 2, &[1.0, -2.0, 0.5, 3.0]);
    let t = DMatrix::from_column_slice(2, 2, &[0.0, 1.0, 0.5, 1.0]);
    let mut g = DMatrix::zeros(0, 0);
    assert_eq!(MeanAbsoluteError.loss_and_grad(&z, &t, &mut g).unwrap(), 1.5);
    // sign(z − t)/4, and 0 where z = t (PyTorch's).
    assert_eq!(g.as_slice(), &[0.25, -0.25, 0.0, 0.25]);
    let report =
        gradcheck::check_loss(&MeanAbsoluteError, &logits(), &targets_off_the_kinks(), &Config::default())
            .unwrap();
    assert!(report.max_error <= BOUND, "{report}");
}

/// `τ·r` or `(τ − 1)·r` with `r = t − z`, as the pinball loss is usually written.
fn naive_pinball(tau: f64, z: f64, t: f64) -> f64 {
    let r = t - z;
    (tau * r).max((tau - 1.0) * r)
}

#[test]
fn quantile_loss_matches_the_plain_formula_and_gradient_checks() {
    let taus = vec![0.1, 0.5, 0.75, 0.95];
    let pinball = Quantile::new(taus.clone()).unwrap();
    assert_eq!(pinball.quantiles(), &taus[..]);
    let (z, t) = (logits(), targets_off_the_kinks());
    let naive: f64 = (0..20).map(|k| naive_pinball(taus[k % 4], z[k], t[k])).sum::<f64>() / 20.0;
    let mut g = DMatrix::zeros(0, 0);
    assert_relative_eq!(pinball.loss_and_grad(&z, &t, &mut g).unwrap(), naive, max_relative = 1e-12);
    for k in 0..20 {
        let expected = if t[k] > z[k] { -taus[k % 4] } else { 1.0 - taus[k % 4] };
        assert_relative_eq!(g[k], expected / 20.0, max_relative = 1e-12);
    }
    let report = gradcheck::check_loss(&pinball, &z, &t, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
    // τ = 0.5 is half the absolute error.
    let half = Quantile::new(vec![0.5; 4]).unwrap().loss(&z, &t).unwrap();
    assert_relative_eq!(2.0 * half, MeanAbsoluteError.loss(&z, &t).unwrap(), max_relative = 1e-12);
    // Settings: each in (0, 1), one per output row.
    for bad in [vec![], vec![0.0], vec![1.0], vec![0.5, f64::NAN], vec![-0.1]] {
        assert!(Quantile::new(bad.clone()).is_err(), "{bad:?}");
    }
    let e = Quantile::new(vec![0.5; 3]).unwrap().loss(&z, &t).unwrap_err().to_string();
    assert!(e.contains("4 quantiles (one per output row)"), "{e}");
}

/// A network trained with quantiles 0.1 and 0.9 of `y = x + noise` (noise uniform on [0, 2])
/// brackets about 80% of new targets, 10% below and 10% above.
#[test]
fn quantile_regression_learns_a_range() {
    use feedforward::train::{self, Batching, TrainConfig};
    use feedforward::{Adam, MlpConfig, Network};
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut draw = |n: usize| {
        let x = DMatrix::<f32>::from_fn(1, n, |_, _| rng.random_range(-1.0..1.0));
        let y = x.map(|v| v + rng.random_range(0.0..2.0));
        (x, y)
    };
    let ((x, y), (x_new, y_new)) = (draw(4000), draw(4000));
    let mut net =
        Network::mlp(&[1, 32, 2], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(4)).unwrap();
    let pinball = Quantile::new(vec![0.1, 0.9]).unwrap();
    let targets = DMatrix::from_fn(2, y.ncols(), |_, j| y[j]);
    let mut adam = Adam::with_learning_rate(3e-3).unwrap();
    let config = TrainConfig {
        epochs: 60,
        batching: Batching::Minibatch { size: 64, shuffle: true },
        schedule: train::Schedule::Cosine { final_fraction: 0.0 },
        ..TrainConfig::default()
    };
    train::fit(&mut net, &mut adam, &pinball, train::Data::new(&x, &targets), &config, |_, _, _| {}).unwrap();
    let range = net.output(&x_new).unwrap();
    let share = |row: usize, below: bool| {
        let n = (0..y_new.ncols()).filter(|&j| (y_new[j] < range[(row, j)]) == below).count();
        n as f64 / y_new.ncols() as f64
    };
    let (below_low, above_high) = (share(0, true), share(1, false));
    assert!(
        (0.07..0.13).contains(&below_low) && (0.07..0.13).contains(&above_high),
        "{below_low} below, {above_high} above"
    );
}

#[test]
fn poisson_matches_the_plain_formula_and_gradient_checks() {
    let (z, t) = (logits(), logits().map(|v| (v * 2.0 + 3.0).round().max(0.0)));
    let naive: f64 = z.iter().zip(t.iter()).map(|(&z, &t)| z.exp() - t * z).sum::<f64>() / 20.0;
    let mut g = DMatrix::zeros(0, 0);
    assert_relative_eq!(Poisson.loss_and_grad(&z, &t, &mut g).unwrap(), naive, max_relative = 1e-12);
    for k in 0..20 {
        assert_relative_eq!(g[k], (z[k].exp() - t[k]) / 20.0, max_relative = 1e-12);
    }
    let report = gradcheck::check_loss(&Poisson, &z, &t, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
    // The loss of a count is least at the log of that count.
    let at =
        |z: f64| Poisson.loss(&DMatrix::from_element(1, 1, z), &DMatrix::from_element(1, 1, 5.0)).unwrap();
    assert!(at(5f64.ln()) < at(5f64.ln() - 0.01) && at(5f64.ln()) < at(5f64.ln() + 0.01));
    let mut bad = t.clone();
    bad[(2, 3)] = -1.0;
    match Poisson.loss(&z, &bad) {
        Err(e @ Error::InvalidTarget { sample: 3, row: 2, .. }) => {
            assert!(e.to_string().contains("count"), "{e}")
        }
        other => panic!("expected an invalid target, got {other:?}"),
    }
}

/// Counts drawn from a Poisson law of rate `e^(x + 1)`: a network trained on them predicts the
/// rate itself, where the mean squared error on the counts would weigh the large ones most.
#[test]
fn poisson_regression_learns_a_rate() {
    use feedforward::train::{self, Batching, TrainConfig};
    use feedforward::{Adam, MlpConfig, Network};
    use rand::{RngExt, SeedableRng};
    use rand_distr::Distribution;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let x = DMatrix::<f32>::from_fn(1, 16000, |_, _| rng.random_range(-1.0..1.0));
    let y = x.map(|v| rand_distr::Poisson::new((v + 1.0).exp()).unwrap().sample(&mut rng));
    let mut net =
        Network::mlp(&[1, 32, 1], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(6)).unwrap();
    let mut adam = Adam::with_learning_rate(3e-3).unwrap();
    let config = TrainConfig {
        epochs: 30,
        batching: Batching::Minibatch { size: 64, shuffle: true },
        schedule: train::Schedule::Cosine { final_fraction: 0.0 },
        ..TrainConfig::default()
    };
    train::fit(&mut net, &mut adam, &Poisson, train::Data::new(&x, &y), &config, |_, _, _| {}).unwrap();
    // Inside the range of the inputs, away from its ends, where fewer samples speak.
    let grid = DMatrix::<f32>::from_fn(1, 19, |_, j| j as f32 / 10.0 - 0.9);
    let rate = net.output(&grid).unwrap().map(f32::exp);
    for j in 0..19 {
        let truth = (grid[j] + 1.0).exp();
        assert!((rate[j] / truth - 1.0).abs() < 0.05, "x = {}: rate {} against {truth}", grid[j], rate[j]);
    }
}

#[test]
fn bad_targets_are_named() {
    let z = DMatrix::<f64>::zeros(2, 3);
    let mut t = DMatrix::from_element(2, 3, 0.5);
    t[(1, 2)] = f64::NAN;
    match MeanSquaredError.loss(&z, &t) {
        Err(Error::InvalidTarget { sample: 2, row: 1, value, .. }) => assert!(value.is_nan()),
        other => panic!("expected an invalid target, got {other:?}"),
    }
    t[(1, 2)] = 1.5;
    match BinaryCrossEntropy::new().loss(&z, &t) {
        Err(e @ Error::InvalidTarget { sample: 2, row: 1, .. }) => {
            assert!(e.to_string().contains("probability"), "{e}")
        }
        other => panic!("expected an invalid target, got {other:?}"),
    }
    assert!(matches!(MeanSquaredError.loss(&z, &DMatrix::zeros(3, 3)), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(Huber::default().loss(&z, &DMatrix::zeros(2, 2)), Err(Error::ShapeMismatch { .. })));
}

/// `Σₖ tₖ(logsumexp(z) − zₖ)` of one sample, by the plain formula in f64.
fn naive_soft_ce(z: &[f64], t: &[f64]) -> f64 {
    let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
    z.iter().zip(t).map(|(zk, tk)| tk * (lse - zk)).sum()
}

#[test]
fn soft_target_cross_entropy_matches_the_plain_formula_and_gradient_checks() {
    let z = logits();
    // Distributions, and two columns whose mass is not 1 (weighed by it).
    let t = DMatrix::from_fn(4, 5, |i, j| match j {
        3 => [0.5, 0.5, 0.5, 0.0][i],
        4 => [0.1, 0.0, 0.2, 0.0][i],
        _ => [[0.7, 0.1, 0.1, 0.1], [0.0, 0.0, 1.0, 0.0], [0.25; 4]][j][i],
    });
    let expected: f64 =
        (0..5).map(|j| naive_soft_ce(z.column(j).as_slice(), t.column(j).as_slice())).sum::<f64>() / 5.0;
    let value = SoftTargetCrossEntropy.compute(&z, &t, None).unwrap();
    assert_relative_eq!(value.loss, expected, max_relative = 1e-12);
    let agree = (0..5).filter(|&j| z.column(j).argmax().0 == t.column(j).argmax().0).count();
    assert_eq!(value.accuracy, Some(agree as f64 / 5.0));
    let report = gradcheck::check_loss(&SoftTargetCrossEntropy, &z, &t, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
}

/// With one-hot targets it is `SoftmaxCrossEntropy`, loss and gradient.
#[test]
fn soft_targets_that_are_one_hot_give_the_label_loss() {
    let z = logits();
    let labels = [2, 0, 3, 1, 1];
    let one_hot = DMatrix::from_fn(4, 5, |i, j| f64::from(u8::from(labels[j] == i)));
    let (mut soft, mut hard) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    let a = SoftTargetCrossEntropy.loss_and_grad(&z, &one_hot, &mut soft).unwrap();
    let b = SoftmaxCrossEntropy::new().loss_and_grad(&z, &labels[..], &mut hard).unwrap();
    assert_relative_eq!(a, b, max_relative = 1e-14);
    for (s, h) in soft.iter().zip(hard.iter()) {
        assert_relative_eq!(*s, *h, max_relative = 1e-13, epsilon = 1e-17);
    }
}

#[test]
fn soft_target_cross_entropy_is_finite_for_huge_logits_and_names_bad_targets() {
    let z = DMatrix::from_column_slice(3, 2, &[1e4, -1e4, 0.0, -1e4, 0.0, 1e4]);
    let t = DMatrix::from_column_slice(3, 2, &[0.5, 0.5, 0.0, 0.0, 0.0, 1.0]);
    let mut grad = DMatrix::zeros(0, 0);
    let loss = SoftTargetCrossEntropy.loss_and_grad(&z, &t, &mut grad).unwrap();
    // Sample 0: half its mass on logit −1e4, 2e4 below the largest: 0.5·2e4. Sample 1: 0.
    assert_relative_eq!(loss, 0.5 * 0.5 * 2e4, max_relative = 1e-12);
    assert!(grad.iter().all(|g: &f64| g.is_finite()));
    let bad = DMatrix::from_column_slice(3, 2, &[0.5, 0.5, 0.0, 0.0, 1.5, -0.5]);
    assert!(matches!(
        SoftTargetCrossEntropy.loss(&z, &bad),
        Err(Error::InvalidTarget { sample: 1, row: 1, .. })
    ));
    assert!(matches!(
        SoftTargetCrossEntropy.loss(&z, &DMatrix::zeros(2, 2)),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        SoftTargetCrossEntropy.loss(&DMatrix::<f64>::zeros(3, 0), &DMatrix::zeros(3, 0)),
        Err(Error::EmptyBatch { .. })
    ));
}

/// Outputs of no rows: a clear error from every matrix loss, its mean and its per-sample
/// losses alike (the mean was NaN, soft targets and the per-sample losses panicked).
#[test]
fn outputs_of_no_rows_are_an_error() {
    use feedforward::{PerSampleLoss, SampleLoss};
    let z = DMatrix::<f64>::zeros(0, 3);
    fn both<L: PerSampleLoss<f64, Target = DMatrix<f64>>>(loss: &L, z: &DMatrix<f64>) {
        let mut samples: Vec<SampleLoss<f64>> = Vec::new();
        for result in [loss.compute(z, z, None).map(|_| ()), loss.sample_losses(z, z, &mut samples)] {
            let e = result.unwrap_err();
            assert!(matches!(e, Error::ShapeMismatch { .. }), "{loss:?}: {e}");
        }
    }
    both(&MeanSquaredError, &z);
    both(&SoftTargetCrossEntropy, &z);
    both(&BinaryCrossEntropy::new(), &z);
    both(&Huber::default(), &z);
    both(&MeanAbsoluteError, &z);
    both(&Poisson, &z);
}
