//! `GaussianNll`: its value by the plain formula (computed here, not by the crate), gradient
//! checks, extreme outputs, bad settings and targets, and a network that learns how the noise
//! around a mean grows; `MeanAndVariance`, its link as a module: the same answers, its
//! gradient, model files that serve a mean and a variance in the targets' units.

mod common;
use approx::assert_relative_eq;
use common::normal;
use feedforward::gradcheck::{self, Config};
use feedforward::train::{self, Batching, TrainConfig};
use feedforward::{
    Adam, Error, GaussianNll, Loss, MeanAndVariance, MlpConfig, Module, Network, PerSampleLoss, SampleLoss,
    Standardize,
};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Gradient checks: f64, central differences with h = 1e-5, error
/// `|a − n| / max(|a|, |n|, 1e-4)` at most this.
const BOUND: f64 = 1e-6;

/// Two targets' means (rows 0–1) and variance logits (rows 2–3) for 5 samples.
fn outputs() -> DMatrix<f64> {
    DMatrix::from_fn(4, 5, |i, j| ((i * 7 + j * 3) % 11) as f64 / 3.0 - 1.5)
}

fn targets() -> DMatrix<f64> {
    DMatrix::from_fn(2, 5, |i, j| ((i * 5 + j * 2) % 7) as f64 / 2.0 - 1.0)
}

/// `½(ln v + (μ − t)²/v)` with `v = ln(1 + eˢ) + v₀`, averaged over the targets, naively.
fn naive(z: &DMatrix<f64>, t: &DMatrix<f64>, v0: f64) -> f64 {
    let r = t.nrows();
    let mut total = 0.0;
    for j in 0..t.ncols() {
        for k in 0..r {
            let v = (1.0 + z[(r + k, j)].exp()).ln() + v0;
            total += 0.5 * (v.ln() + (z[(k, j)] - t[(k, j)]).powi(2) / v);
        }
    }
    total / (r * t.ncols()) as f64
}

#[test]
fn matches_the_plain_formula_and_gradient_checks() {
    let (z, t) = (outputs(), targets());
    for v0 in [1e-6, 0.01, 0.5] {
        let loss = GaussianNll::new().with_min_variance(v0).unwrap();
        let value = loss.compute(&z, &t, None).unwrap();
        assert_relative_eq!(value.loss, naive(&z, &t, v0), max_relative = 1e-12);
        assert_eq!(value.accuracy, None);
        let report = gradcheck::check_loss(&loss, &z, &t, &Config::default()).unwrap();
        assert!(report.max_error <= BOUND, "v0 {v0}: {report}");
        // Each sample's loss is the mean of its targets' terms.
        let mut samples = vec![SampleLoss::default(); 1];
        loss.sample_losses(&z, &t, &mut samples).unwrap();
        for (j, sample) in samples.iter().enumerate() {
            let one = naive(&z.columns(j, 1).into_owned(), &t.columns(j, 1).into_owned(), v0);
            assert_relative_eq!(sample.loss, one, max_relative = 1e-12);
        }
    }
    // By hand: μ = 1, s = 0 (v = ln 2 + v₀), t = 3: dL/dμ = (1 − 3)/v, dL/ds = ½(1 − 4/v)/v·½.
    let (z, t) = (DMatrix::from_column_slice(2, 1, &[1.0, 0.0]), DMatrix::from_element(1, 1, 3.0));
    let v = 2f64.ln() + 1e-6;
    let mut g = DMatrix::zeros(0, 0);
    GaussianNll::new().loss_and_grad(&z, &t, &mut g).unwrap();
    assert_relative_eq!(g[0], -2.0 / v, max_relative = 1e-12);
    assert_relative_eq!(g[1], 0.25 * (1.0 - 4.0 / v) / v, max_relative = 1e-12);
}

#[test]
fn the_mean_and_variance_of_outputs() {
    let z = outputs();
    let (mean, variance) = GaussianNll::new().mean_and_variance(&z).unwrap();
    assert_eq!(mean, z.rows(0, 2).into_owned());
    for (v, s) in variance.iter().zip(z.rows(2, 2).iter()) {
        assert_relative_eq!(*v, (1.0 + s.exp()).ln() + 1e-6, max_relative = 1e-12);
    }
    assert!(matches!(
        GaussianNll::new().mean_and_variance(&DMatrix::<f64>::zeros(3, 2)),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// Variance logits of ±1e4 (a softplus written as `ln(1 + eˢ)` overflows past 88.7 in f32)
/// and far targets: finite losses and gradients; the variance is `v₀` at the bottom.
#[test]
fn extreme_outputs_stay_finite() {
    fn check<T: feedforward::Float>() {
        let z = DMatrix::<T>::from_row_slice(
            2,
            3,
            &[T::lit(0.0), T::lit(5.0), T::lit(-3.0), T::lit(-1e4), T::lit(1e4), T::lit(0.0)],
        );
        let t = DMatrix::<T>::from_row_slice(1, 3, &[T::lit(1e3), T::lit(-1e3), T::lit(2.0)]);
        let loss = GaussianNll::new().with_min_variance(1e-3).unwrap();
        let mut g = DMatrix::zeros(0, 0);
        let value = loss.loss_and_grad(&z, &t, &mut g).unwrap();
        assert!(value.is_finite() && g.iter().all(|g| g.is_finite()), "{value:?} {g:?}");
        let (_, variance) = loss.mean_and_variance(&z).unwrap();
        assert_eq!(variance[0], T::lit(1e-3));
        assert_relative_eq!(variance[1].as_f64(), 1e4, max_relative = 1e-6);
    }
    check::<f32>();
    check::<f64>();
}

#[test]
fn bad_settings_and_targets_are_errors() {
    let loss = GaussianNll::new();
    let t = targets();
    for v0 in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            GaussianNll::new().with_min_variance(v0),
            Err(Error::InvalidHyperparameter { name: "minimum variance", .. })
        ));
    }
    // Three output rows are no pairs; four are two targets, not one or three.
    let err = loss.loss(&DMatrix::zeros(3, 5), &t).unwrap_err();
    assert!(err.to_string().contains("an even number of rows"), "{err}");
    let err = loss.loss(&DMatrix::<f64>::zeros(4, 5), &DMatrix::zeros(1, 5)).unwrap_err();
    assert!(err.to_string().contains("2 rows (one per pair of network outputs"), "{err}");
    assert!(matches!(loss.check_targets(6, &t), Err(Error::ShapeMismatch { .. })));
    assert!(loss.check_targets(4, &t).is_ok());
    // A batch of other size, an empty one, a target that is not finite (named).
    assert!(matches!(loss.loss(&DMatrix::zeros(4, 4), &t), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(
        loss.loss(&DMatrix::<f64>::zeros(4, 0), &DMatrix::zeros(2, 0)),
        Err(Error::EmptyBatch { .. })
    ));
    let mut bad = t.clone();
    bad[(1, 3)] = f64::NAN;
    assert!(matches!(loss.loss(&outputs(), &bad), Err(Error::InvalidTarget { sample: 3, row: 1, .. })));
    let mut samples = Vec::new();
    assert!(loss.sample_losses(&outputs(), &bad, &mut samples).is_err());
}

/// `y = x + (0.1 + |x|)·ε` on [−2, 2]: the network learns the mean and the noise's spread at
/// each x. Checked against the truth: the predicted standard deviation at x = 0, ±1, ±1.8
/// within 25% of `0.1 + |x|`, and the 80% interval `μ ± 1.2816·√v` holding 75–85% of new
/// samples (an interval as wide everywhere would hold far more near 0 and far fewer at the
/// ends).
#[test]
fn learns_how_the_noise_grows() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut draw = |n: usize| {
        let x = DMatrix::<f32>::from_fn(1, n, |_, _| rng.random_range(-2.0..2.0));
        let y = DMatrix::<f32>::from_fn(1, n, |_, j| x[j] + (0.1 + x[j].abs()) * normal(&mut rng) as f32);
        (x, y)
    };
    let (x, y) = draw(4000);
    let (test_x, test_y) = draw(2000);
    let mut net =
        Network::<f32>::mlp(&[1, 32, 32, 2], MlpConfig::default(), &mut StdRng::seed_from_u64(0)).unwrap();
    let loss = GaussianNll::new();
    let config = TrainConfig {
        epochs: 60,
        batching: Batching::Minibatch { size: 64, shuffle: true },
        ..TrainConfig::default()
    };
    let mut adam = Adam::with_learning_rate(3e-3).unwrap();
    train::fit(&mut net, &mut adam, &loss, train::Data::new(&x, &y), &config, |_, _, _| {}).unwrap();

    let at = DMatrix::from_row_slice(1, 5, &[-1.8f32, -1.0, 0.0, 1.0, 1.8]);
    let (mean, variance) = loss.mean_and_variance(&net.output(&at).unwrap()).unwrap();
    for j in 0..5 {
        let (x, std) = (at[j], variance[j].sqrt());
        let truth = 0.1 + x.abs();
        assert!((mean[j] - x).abs() < 0.25 * truth + 0.05, "mean {} at x = {x}", mean[j]);
        assert!((std / truth - 1.0).abs() < 0.25, "standard deviation {std} at x = {x}, truly {truth}");
    }
    let (mean, variance) = loss.mean_and_variance(&net.output(&test_x).unwrap()).unwrap();
    let inside = (0..test_y.ncols())
        .filter(|&j| (test_y[j] - mean[j]).abs() <= 1.2816 * variance[j].sqrt())
        .count() as f64
        / test_y.ncols() as f64;
    assert!((0.75..0.85).contains(&inside), "the 80% interval held {inside}");
}

#[test]
fn the_link_as_a_module_gives_the_same_answers_and_gradient_checks() {
    let z = outputs();
    let nll = GaussianNll::new().with_min_variance(0.01).unwrap();
    let link = nll.link();
    assert_eq!(link.min_variance(), 0.01);
    let mut y = DMatrix::zeros(4, 5);
    link.forward(&z, &mut y);
    let (mean, variance) = nll.mean_and_variance(&z).unwrap();
    assert_eq!(y.rows(0, 2), mean);
    assert_eq!(y.rows(2, 2), variance);
    // Logits far out, where σ(s) is tiny or 1.
    let wide = z.map(|v| 8.0 * v);
    for input in [&z, &wide] {
        let report = gradcheck::check_module(&mut nll.link(), input, &Config::default()).unwrap();
        assert!(report.max_error <= BOUND, "{report}");
    }
    assert!(matches!(MeanAndVariance::new(0.0), Err(Error::InvalidHyperparameter { .. })));
    let err = Network::<f64>::new(3).push(MeanAndVariance::new(1e-6).unwrap()).unwrap_err();
    assert!(err.to_string().contains("an even number of rows"), "{err}");
}

/// A network trained in standard units, then given the link and the way back to the targets'
/// units (`MeanAndVariance::restore`: `σ` on the means, `σ²` on the variances), saves and loads: the loaded file answers a
/// mean and a variance in the targets' units, those of the trained network brought back by
/// hand.
#[test]
fn a_model_file_serves_the_mean_and_variance_in_the_targets_units() {
    let mut rng = StdRng::seed_from_u64(2);
    let x = DMatrix::<f32>::from_fn(1, 500, |_, _| rng.random_range(0.0..1.0));
    let y =
        DMatrix::<f32>::from_fn(1, 500, |_, j| 1000.0 + 500.0 * x[j] + 50.0 * x[j] * normal(&mut rng) as f32);
    let scale = Standardize::fit(&y).unwrap();
    let (m, sd) = (scale.mean()[0], scale.std()[0]);
    let mut net =
        Network::<f32>::mlp(&[1, 16, 2], MlpConfig::default(), &mut StdRng::seed_from_u64(0)).unwrap();
    let nll = GaussianNll::new();
    let config = TrainConfig {
        epochs: 20,
        batching: Batching::Minibatch { size: 50, shuffle: true },
        ..TrainConfig::default()
    };
    let standard = scale.apply(&y).unwrap();
    train::fit(
        &mut net,
        &mut Adam::with_learning_rate(1e-2).unwrap(),
        &nll,
        train::Data::new(&x, &standard),
        &config,
        |_, _, _| {},
    )
    .unwrap();
    let raw = net.output(&x).unwrap();
    let served =
        net.clone().push(nll.link()).unwrap().push(MeanAndVariance::restore(&scale).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gaussian.safetensors");
    served.save(&path).unwrap();
    let loaded = Network::<f32>::load(&path).unwrap();
    assert!(loaded.to_string().contains("MeanAndVariance"), "{loaded}");
    let answers = loaded.output(&x).unwrap();
    assert_eq!(answers, served.output(&x).unwrap());
    let (mean, variance) = nll.mean_and_variance(&raw).unwrap();
    for j in 0..x.ncols() {
        assert_relative_eq!(answers[(0, j)], mean[j] * sd + m, max_relative = 1e-5);
        assert_relative_eq!(answers[(1, j)], variance[j] * sd * sd, max_relative = 1e-5);
    }
}

/// β-NLL: each term weighted by `v^β`, the weight held fixed in the gradient. The value by the
/// plain formula; the gradient against central differences of the same sum with each weight
/// frozen at the outputs' own variance (what "held fixed" means); β = 0 is the plain loss, bit
/// for bit.
#[test]
fn beta_weighs_each_term_by_its_variance_held_fixed() {
    let (z, t) = (outputs(), targets());
    let plain = GaussianNll::new();
    let (mut g0, mut g) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    let zero = plain.with_beta(0.0).unwrap().loss_and_grad(&z, &t, &mut g).unwrap();
    assert_eq!((zero, &g), (plain.loss_and_grad(&z, &t, &mut g0).unwrap(), &g0));
    let r = t.nrows();
    let variance = |z: &DMatrix<f64>, k: usize, j: usize| (1.0 + z[(r + k, j)].exp()).ln() + 1e-6;
    for beta in [0.5, 1.0] {
        let loss = plain.with_beta(beta).unwrap();
        assert_eq!(loss.beta(), beta);
        // The sum with the weights of the variances at `at`, evaluated at `z`.
        let frozen = |z: &DMatrix<f64>, at: &DMatrix<f64>| {
            let mut total = 0.0;
            for j in 0..t.ncols() {
                for k in 0..r {
                    let v = variance(z, k, j);
                    total +=
                        variance(at, k, j).powf(beta) * 0.5 * (v.ln() + (z[(k, j)] - t[(k, j)]).powi(2) / v);
                }
            }
            total / (r * t.ncols()) as f64
        };
        let value = loss.loss_and_grad(&z, &t, &mut g).unwrap();
        assert_relative_eq!(value, frozen(&z, &z), max_relative = 1e-12);
        let h = 1e-5;
        for i in 0..z.len() {
            let (mut up, mut down) = (z.clone(), z.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (frozen(&up, &z) - frozen(&down, &z)) / (2.0 * h);
            let error = (g[i] - numeric).abs() / g[i].abs().max(numeric.abs()).max(1e-4);
            assert!(error <= BOUND, "β {beta}, entry {i}: {} against {numeric}", g[i]);
        }
    }
    for beta in [-0.1, 1.5, f64::NAN] {
        assert!(matches!(plain.with_beta(beta), Err(Error::InvalidHyperparameter { name: "beta", .. })));
    }
}
