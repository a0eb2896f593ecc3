//! A downstream crate's own loss, written only against the public API: log-cosh,
//! gradient-checked, weighted per sample and trained through `train::fit`. Also: whole networks gradient-checked and
//! trained under each built-in loss, multi-label classification among them.

use feedforward::gradcheck::{self, Config};
use feedforward::train::{self, Batching, TrainConfig};
use feedforward::{
    BinaryCrossEntropy, Error, Float, Huber, Loss, LossValue, MeanAbsoluteError, MeanSquaredError, MlpConfig,
    Network, PerSampleLoss, Poisson, Quantile, Result, Rmsprop, SampleLoss, SampleWeighted,
    SoftmaxCrossEntropy, WeightedTargets,
};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `L = (1/(R·N))·Σ ln cosh(z − t)`, `dL/dz = tanh(z − t)/(R·N)`: quadratic near the target,
/// linear far from it, smooth everywhere. `ln cosh r = |r| + ln(1 + e^(−2|r|)) − ln 2`, which
/// does not overflow.
#[derive(Debug)]
struct LogCosh;

impl<T: Float> Loss<T> for LogCosh {
    type Target = DMatrix<T>;

    fn compute(&self, z: &DMatrix<T>, t: &DMatrix<T>, grad: Option<&mut DMatrix<T>>) -> Result<LossValue<T>> {
        if z.shape() != t.shape() {
            return Err(Error::shape("targets", format!("{:?}", z.shape()), format!("{:?}", t.shape())));
        }
        let n = T::lit(z.len() as f64);
        if let Some(g) = grad {
            g.zip_zip_apply(z, t, |g, z, t| *g = (z - t).tanh() / n);
        }
        let ln2 = T::lit(std::f64::consts::LN_2);
        let log_cosh = |r: T| r.abs() + (T::lit(-2.0) * r.abs()).exp().ln_1p() - ln2;
        let loss = z.iter().zip(t.iter()).fold(T::zero(), |acc, (&z, &t)| acc + log_cosh(z - t)) / n;
        Ok(LossValue { loss, accuracy: None })
    }
}

/// Each sample's log-cosh, the mean of its column: what `SampleWeighted` weighs.
impl<T: Float> PerSampleLoss<T> for LogCosh {
    fn sample_losses(&self, z: &DMatrix<T>, t: &DMatrix<T>, losses: &mut Vec<SampleLoss<T>>) -> Result<()> {
        if z.shape() != t.shape() {
            return Err(Error::shape("targets", format!("{:?}", z.shape()), format!("{:?}", t.shape())));
        }
        losses.clear();
        for (z, t) in z.column_iter().zip(t.column_iter()) {
            let one = LogCosh.loss(
                &DMatrix::from_column_slice(z.len(), 1, z.as_slice()),
                &DMatrix::from_column_slice(t.len(), 1, t.as_slice()),
            )?;
            losses.push(SampleLoss { loss: one, count: T::one(), accuracy: None });
        }
        Ok(())
    }
}

#[test]
fn a_user_defined_loss_takes_sample_weights() {
    let z = DMatrix::from_fn(2, 4, |i, j| i as f64 * 0.3 - j as f64 * 0.7 + 0.11);
    let t = DMatrix::from_fn(2, 4, |i, j| (i + j) as f64 * 0.25);
    let targets = WeightedTargets::new(&t, vec![1.0, 0.0, 2.5, 0.5]).unwrap();
    let weighted = SampleWeighted::new(LogCosh);
    let report = gradcheck::check_loss(&weighted, &z, &targets, &Config::default()).unwrap();
    assert!(report.max_error <= 1e-6, "{report}");
    // The second sample weighs nothing: dropping it changes nothing.
    let kept = [0, 2, 3];
    let (mut z_kept, mut t_kept) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    train::gather_columns(&z, &kept, &mut z_kept);
    train::gather_columns(&t, &kept, &mut t_kept);
    let fewer = WeightedTargets::new(&t_kept, vec![1.0, 2.5, 0.5]).unwrap();
    let (all, without) = (weighted.loss(&z, &targets).unwrap(), weighted.loss(&z_kept, &fewer).unwrap());
    assert!((all - without).abs() <= 1e-12 * all.abs(), "{all} against {without}");
}

#[test]
fn a_user_defined_loss_gradient_checks_and_trains_through_fit() {
    let z = DMatrix::from_fn(2, 5, |i, j| i as f64 * 0.3 - j as f64 * 0.7 + 0.11);
    let t = DMatrix::from_fn(2, 5, |i, j| (i + j) as f64 * 0.25);
    let report = gradcheck::check_loss(&LogCosh, &z, &t, &Config::default()).unwrap();
    assert!(report.max_error <= 1e-6, "{report}");
    // Finite far from the target, where cosh overflows: ln cosh(1000) = 1000 − ln 2.
    let far = LogCosh.loss(&DMatrix::from_element(1, 1, 1000.0), &DMatrix::zeros(1, 1)).unwrap();
    assert!((far - (1000.0 - std::f64::consts::LN_2)).abs() < 1e-9, "{far}");

    // y = |x| − 0.5 on [-1, 1].
    let x = DMatrix::from_fn(1, 128, |_, j| -1.0 + 2.0 * j as f32 / 127.0);
    let y = x.map(|v| v.abs() - 0.5);
    let mut net =
        Network::<f32>::mlp(&[1, 32, 1], MlpConfig::default(), &mut StdRng::seed_from_u64(2)).unwrap();
    let before = net.loss(&x, &MeanAbsoluteError, &y).unwrap();
    let mut opt = Rmsprop::elementwise(3e-3).unwrap();
    let config = TrainConfig {
        epochs: 100,
        batching: Batching::Minibatch { size: 16, shuffle: true },
        ..TrainConfig::default()
    };
    let last = train::fit(&mut net, &mut opt, &LogCosh, train::Data::new(&x, &y), &config, |_, _, _| {})
        .unwrap()
        .last_step
        .unwrap();
    assert_eq!(last.accuracy, None, "a regression loss reports no accuracy");
    let after = net.loss(&x, &MeanAbsoluteError, &y).unwrap();
    assert!(after < before / 5.0 && after < 0.05, "mean absolute error {before} -> {after}");
}

fn small_net(outputs: usize, seed: u64) -> Network<f64> {
    Network::mlp(&[3, 6, 5, outputs], MlpConfig::default(), &mut StdRng::seed_from_u64(seed))
        .unwrap()
        .with_l2(1e-3)
        .unwrap()
}

fn inputs(n: usize) -> DMatrix<f64> {
    DMatrix::from_fn(3, n, |i, j| (((i + 1) * (j + 2) * 7) % 13) as f64 / 6.5 - 1.0)
}

/// Whole networks, loss + L2, every parameter: bound 1e-6 (f64, central differences).
#[test]
fn whole_networks_gradient_check_under_every_loss() {
    let x = inputs(6);
    let config = Config::default();
    let regression = DMatrix::from_fn(2, 6, |i, j| (i as f64 - j as f64) * 0.2);
    let multi_label = DMatrix::from_fn(2, 6, |i, j| [0.0, 1.0, 0.3][(i + j) % 3]);
    let mut net = small_net(2, 1);
    let r = gradcheck::check_network(&mut net, &x, &MeanSquaredError, &regression, &config).unwrap();
    assert!(r.max_error <= 1e-6, "MSE: {r}");
    let r =
        gradcheck::check_network(&mut net, &x, &BinaryCrossEntropy::new(), &multi_label, &config).unwrap();
    assert!(r.max_error <= 1e-6, "BCE: {r}");
    let r = gradcheck::check_network(&mut net, &x, &Huber::new(0.05).unwrap(), &regression, &config).unwrap();
    assert!(r.max_error <= 1e-6, "Huber: {r}");
    // The outputs are away from the targets (the kinks of |z − t|), farther than the checks
    // move them.
    let z = net.output(&x).unwrap();
    assert!(z.iter().zip(regression.iter()).all(|(&z, &t)| (z - t).abs() > 1e-3), "{z}");
    let r = gradcheck::check_network(&mut net, &x, &MeanAbsoluteError, &regression, &config).unwrap();
    assert!(r.max_error <= 1e-6, "MAE: {r}");
    let pinball = Quantile::new(vec![0.2, 0.9]).unwrap();
    let r = gradcheck::check_network(&mut net, &x, &pinball, &regression, &config).unwrap();
    assert!(r.max_error <= 1e-6, "quantile: {r}");
    let counts = DMatrix::from_fn(2, 6, |i, j| ((i + 2 * j) % 4) as f64);
    let r = gradcheck::check_network(&mut net, &x, &Poisson, &counts, &config).unwrap();
    assert!(r.max_error <= 1e-6, "Poisson: {r}");
    let smooth = SoftmaxCrossEntropy::new().with_label_smoothing(0.1).unwrap();
    let r = gradcheck::check_network(&mut net, &x, &smooth, &[0, 1, 1, 0, 1, 0][..], &config).unwrap();
    assert!(r.max_error <= 1e-6, "smoothed CE: {r}");
}

#[test]
fn multi_label_classification_with_binary_cross_entropy() {
    // Two independent yes/no questions about a point: is x > 0? is y > 0? Both may be yes.
    let mut rng = StdRng::seed_from_u64(9);
    let x = DMatrix::from_fn(2, 400, |_, _| rand::RngExt::random_range(&mut rng, -1.0f32..1.0));
    let t = DMatrix::from_fn(2, 400, |i, j| if x[(i, j)] > 0.0 { 1.0 } else { 0.0 });
    let mut net =
        Network::<f32>::mlp(&[2, 16, 2], MlpConfig::default(), &mut StdRng::seed_from_u64(1)).unwrap();
    let mut opt = Rmsprop::elementwise(1e-2).unwrap();
    let config = TrainConfig {
        epochs: 40,
        batching: Batching::Minibatch { size: 32, shuffle: true },
        ..TrainConfig::default()
    };
    train::fit(
        &mut net,
        &mut opt,
        &BinaryCrossEntropy::new(),
        train::Data::new(&x, &t),
        &config,
        |_, _, _| {},
    )
    .unwrap();
    let evaluation = net.evaluate(&x, &BinaryCrossEntropy::new(), &t).unwrap();
    let accuracy = evaluation.accuracy.expect("binary cross-entropy reports the share of right labels");
    assert!(accuracy >= 0.98, "{evaluation:?}");
}
