//! Per-sample losses and sample weights: every built-in loss's per-sample losses add up to its
//! mean, `SampleWeighted` over each loss gradient-checks, integer weights are duplicated
//! samples, and a weighted fit learns the weighted mean.

use approx::assert_relative_eq;
use feedforward::gradcheck::{self, Config};
use feedforward::loss::{SampleWeighted, WeightedTargets};
use feedforward::train::{self, Batching, Data, TrainConfig};
use feedforward::{
    BinaryCrossEntropy, Error, GaussianNll, Huber, Init, Layer, Loss, MeanAbsoluteError, MeanSquaredError,
    Network, PerSampleLoss, Poisson, Quantile, SampleLoss, Sgd, SoftTargetCrossEntropy, SoftmaxCrossEntropy,
    Targets,
};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Gradient checks: f64, central differences with h = 1e-5, error
/// `|a − n| / max(|a|, |n|, 1e-4)` at most this.
const BOUND: f64 = 1e-6;

/// Exact sums in another order: agreement to this relative error.
const ROUNDING: f64 = 1e-12;

fn outputs(rows: usize, batch: usize) -> DMatrix<f64> {
    DMatrix::from_fn(rows, batch, |i, j| ((i * 7 + j * 3) % 11) as f64 / 3.0 - 1.5)
}

/// Targets strictly between 0 and 1, off every kink of MAE, Huber and the pinball loss.
fn fractions(rows: usize, batch: usize) -> DMatrix<f64> {
    DMatrix::from_fn(rows, batch, |i, j| ((i * 5 + j * 2) % 7) as f64 / 7.0 + 0.05)
}

/// Soft targets: each column a distribution.
fn distributions(rows: usize, batch: usize) -> DMatrix<f64> {
    let mut t = fractions(rows, batch);
    for mut column in t.column_iter_mut() {
        let sum = column.sum();
        column /= sum;
    }
    t
}

const WEIGHTS: [f64; 6] = [1.0, 0.5, 0.0, 3.0, 2.0, 0.25];

/// Runs `checker` on every built-in loss (class- and positive-weighted versions too), each
/// with its targets for a batch of 6 (3 output rows, 6 for `GaussianNll`'s 3 targets).
fn for_each_loss(checker: &mut impl Checker) {
    let labels = [0usize, 2, 1, 1, 0, 2];
    let weighted = SoftmaxCrossEntropy::new().with_class_weights(vec![1.0, 3.0, 0.5]).unwrap();
    checker.labels(&SoftmaxCrossEntropy::new(), &labels);
    checker.labels(&weighted.with_label_smoothing(0.1).unwrap(), &labels);
    checker.matrix(&SoftTargetCrossEntropy, &distributions(3, 6));
    checker.matrix(&MeanSquaredError, &fractions(3, 6));
    checker.matrix(&BinaryCrossEntropy::new(), &fractions(3, 6));
    let positives = BinaryCrossEntropy::new().with_pos_weight(vec![4.0, 1.0, 0.5]).unwrap();
    checker.matrix(&positives, &fractions(3, 6));
    checker.matrix(&Huber::new(0.7).unwrap(), &fractions(3, 6));
    checker.matrix(&MeanAbsoluteError, &fractions(3, 6));
    checker.matrix(&Quantile::new(vec![0.1, 0.5, 0.9]).unwrap(), &fractions(3, 6));
    checker.matrix(&Poisson, &fractions(3, 6).map(|t| (t * 5.0).round()));
    checker.matrix_of(6, &GaussianNll::new(), &fractions(3, 6));
}

/// A check of a loss on class labels or on a target matrix.
trait Checker {
    fn labels(&mut self, loss: &dyn PerSampleLoss<f64, Target = [usize]>, labels: &[usize]);
    /// A loss on targets `t` and outputs of `rows` rows.
    fn matrix_of(
        &mut self,
        rows: usize,
        loss: &dyn PerSampleLoss<f64, Target = DMatrix<f64>>,
        t: &DMatrix<f64>,
    );
    /// A loss on targets `t` and outputs of the same shape.
    fn matrix(&mut self, loss: &dyn PerSampleLoss<f64, Target = DMatrix<f64>>, t: &DMatrix<f64>) {
        self.matrix_of(t.nrows(), loss, t);
    }
}

/// Per-sample losses add up to the mean: `Σℓᵢ / Σnᵢ` is `compute`'s loss.
struct AddUp;

fn add_up<Y: Targets + ?Sized>(loss: &dyn PerSampleLoss<f64, Target = Y>, targets: &Y, z: &DMatrix<f64>) {
    let mean = loss.loss(z, targets).unwrap();
    let mut samples = vec![SampleLoss::default(); 2]; // overwritten, not appended to
    loss.sample_losses(z, targets, &mut samples).unwrap();
    assert_eq!(samples.len(), z.ncols());
    let total: f64 = samples.iter().map(|s| s.loss).sum();
    let count: f64 = samples.iter().map(|s| s.count).sum();
    assert_relative_eq!(total / count, mean, max_relative = ROUNDING);
    // The samples' accuracies average to the batch's (none for a loss that does not classify).
    let accuracy = loss.compute(z, targets, None).unwrap().accuracy;
    let each: Option<Vec<f64>> = samples.iter().map(|s| s.accuracy).collect();
    match (accuracy, each) {
        (Some(a), Some(each)) => {
            assert_relative_eq!(each.iter().sum::<f64>() / 6.0, a, max_relative = ROUNDING)
        }
        (a, each) => assert!(a.is_none() && each.is_none(), "{a:?} against {each:?}"),
    }
}

impl Checker for AddUp {
    fn labels(&mut self, loss: &dyn PerSampleLoss<f64, Target = [usize]>, labels: &[usize]) {
        add_up(loss, labels, &outputs(3, 6));
    }
    fn matrix_of(
        &mut self,
        rows: usize,
        loss: &dyn PerSampleLoss<f64, Target = DMatrix<f64>>,
        t: &DMatrix<f64>,
    ) {
        add_up(loss, t, &outputs(rows, 6));
    }
}

/// `SampleWeighted` over the loss: gradient check, weights of 1 give the loss itself, scaled
/// weights change nothing, and integer weights are duplicated samples.
struct Weighted;

fn weighted<Y: Targets + ?Sized>(loss: &dyn PerSampleLoss<f64, Target = Y>, targets: &Y, z: &DMatrix<f64>) {
    let weighted = SampleWeighted::new(loss);
    let with = |weights: &[f64]| WeightedTargets::new(targets, weights.to_vec()).unwrap();
    let report = gradcheck::check_loss(&weighted, z, &with(&WEIGHTS), &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");

    let (mut plain_grad, mut grad) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    let plain = loss.loss_and_grad(z, targets, &mut plain_grad).unwrap();
    let ones = weighted.loss_and_grad(z, &with(&[1.0; 6]), &mut grad).unwrap();
    assert_relative_eq!(ones, plain, max_relative = ROUNDING);
    assert_relative_eq!(grad, plain_grad, max_relative = ROUNDING, epsilon = 1e-15);

    let mut scaled_grad = DMatrix::zeros(0, 0);
    let value = weighted.loss_and_grad(z, &with(&WEIGHTS), &mut grad).unwrap();
    let scaled = WEIGHTS.map(|w| w * 7.5);
    let scaled = weighted.loss_and_grad(z, &with(&scaled), &mut scaled_grad).unwrap();
    assert_relative_eq!(scaled, value, max_relative = ROUNDING);
    assert_relative_eq!(scaled_grad, grad, max_relative = ROUNDING, epsilon = 1e-15);

    // Weights 2, 1, 0, 1, 3, 1: sample 0 twice, sample 2 left out, sample 4 three times.
    let integers = [2.0, 1.0, 0.0, 1.0, 3.0, 1.0];
    let copies = [0, 0, 1, 3, 4, 4, 4, 5];
    let (mut copied, mut copied_z) = (Y::Batch::default(), DMatrix::zeros(0, 0));
    targets.gather(&copies, &mut copied);
    train::gather_columns(z, &copies, &mut copied_z);
    let mut copied_grad = DMatrix::zeros(0, 0);
    let expected = loss.loss_and_grad(&copied_z, Y::view(&copied), &mut copied_grad).unwrap();
    let value = weighted.loss_and_grad(z, &with(&integers), &mut grad).unwrap();
    assert_relative_eq!(value, expected, max_relative = ROUNDING);
    // So is the accuracy (a sample's share of right entries is a third of a whole: rounded).
    let same = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => assert_relative_eq!(a, b, max_relative = ROUNDING),
        (a, b) => assert!(a.is_none() && b.is_none(), "{a:?} against {b:?}"),
    };
    let accuracy = weighted.compute(z, &with(&integers), None).unwrap().accuracy;
    same(accuracy, loss.compute(&copied_z, Y::view(&copied), None).unwrap().accuracy);
    let ones = weighted.compute(z, &with(&[1.0; 6]), None).unwrap().accuracy;
    same(ones, loss.compute(z, targets, None).unwrap().accuracy);
    // A sample's gradient is the sum of its copies' gradients; a left-out one has none.
    let mut summed = DMatrix::zeros(z.nrows(), 6);
    for (copy, &sample) in copies.iter().enumerate() {
        let column = summed.column(sample) + copied_grad.column(copy);
        summed.set_column(sample, &column);
    }
    assert_relative_eq!(grad, summed, max_relative = ROUNDING, epsilon = 1e-15);
    assert!(grad.column(2).iter().all(|&g| g == 0.0));
}

impl Checker for Weighted {
    fn labels(&mut self, loss: &dyn PerSampleLoss<f64, Target = [usize]>, labels: &[usize]) {
        weighted(loss, labels, &outputs(3, 6));
    }
    fn matrix_of(
        &mut self,
        rows: usize,
        loss: &dyn PerSampleLoss<f64, Target = DMatrix<f64>>,
        t: &DMatrix<f64>,
    ) {
        weighted(loss, t, &outputs(rows, 6));
    }
}

#[test]
fn per_sample_losses_add_up_to_each_loss() {
    for_each_loss(&mut AddUp);
}

#[test]
fn every_sample_weighted_loss_gradient_checks_and_weighs_like_copies() {
    for_each_loss(&mut Weighted);
}

#[test]
fn weighted_cross_entropy_matches_the_plain_formula() {
    // Σ sᵢ·w_yᵢ·(−ln softmax(zᵢ)_yᵢ) / Σ sᵢ·w_yᵢ: sample weights times class weights.
    let z = outputs(3, 6);
    let labels = [0usize, 2, 1, 1, 0, 2];
    let class = [1.0, 3.0, 0.5];
    let loss = SoftmaxCrossEntropy::new().with_class_weights(class.to_vec()).unwrap();
    let (mut total, mut norm) = (0.0, 0.0);
    for (j, &y) in labels.iter().enumerate() {
        let column = z.column(j);
        let log_softmax = column[y] - column.iter().map(|v| v.exp()).sum::<f64>().ln();
        total -= WEIGHTS[j] * class[y] * log_softmax;
        norm += WEIGHTS[j] * class[y];
    }
    let targets = WeightedTargets::new(&labels[..], WEIGHTS.to_vec()).unwrap();
    let value = SampleWeighted::new(loss).compute(&z, &targets, None).unwrap();
    assert_relative_eq!(value.loss, total / norm, max_relative = ROUNDING);
    // The accuracy is weighted by the sample weights alone (class weights leave it alone, as
    // they do the plain loss's): Σ sᵢ·[argmax zᵢ = yᵢ] / Σ sᵢ.
    let right: f64 = labels
        .iter()
        .enumerate()
        .filter(|&(j, &y)| z.column(j).argmax().0 == y)
        .map(|(j, _)| WEIGHTS[j])
        .sum();
    assert_eq!(value.accuracy, Some(right / WEIGHTS.iter().sum::<f64>()));
    let plain = SoftmaxCrossEntropy::new().compute(&z, &labels[..], None).unwrap().accuracy.unwrap();
    assert_ne!(value.accuracy, Some(plain), "the weights should make a difference here");
}

#[test]
fn a_minibatch_of_zero_weights_has_loss_and_gradient_zero() {
    let z = outputs(2, 3);
    let t = WeightedTargets::new(&fractions(2, 4), vec![0.0, 0.0, 0.0, 1.0]).unwrap();
    let mut batch = WeightedTargets::default();
    t.gather(&[2, 0, 1], &mut batch);
    assert_eq!(batch.weights(), [0.0; 3]);
    let mut grad = DMatrix::from_element(2, 3, f64::NAN);
    let loss = SampleWeighted::new(MeanSquaredError).loss_and_grad(&z, &batch, &mut grad).unwrap();
    assert_eq!(loss, 0.0);
    assert!(grad.iter().all(|&g| g == 0.0), "{grad}");
}

#[test]
fn bad_weights_are_clear_errors() {
    let labels = [0usize, 1, 1];
    let negative = WeightedTargets::new(&labels[..], vec![1.0, -0.5, 1.0]).unwrap_err();
    assert!(matches!(negative, Error::InvalidSampleWeight { sample: Some(1), value } if value == -0.5));
    assert_eq!(negative.to_string(), "sample weight of sample 1 is -0.5: it must be finite and at least 0");
    let nan = WeightedTargets::new(&labels[..], vec![1.0, 1.0, f64::NAN]).unwrap_err();
    assert!(matches!(nan, Error::InvalidSampleWeight { sample: Some(2), .. }), "{nan}");
    let infinite = WeightedTargets::new(&labels[..], vec![f64::INFINITY, 1.0, 1.0]).unwrap_err();
    assert!(matches!(infinite, Error::InvalidSampleWeight { sample: Some(0), .. }), "{infinite}");
    let zeros = WeightedTargets::new(&labels[..], vec![0.0; 3]).unwrap_err();
    assert!(matches!(zeros, Error::InvalidSampleWeight { sample: None, .. }), "{zeros}");
    assert!(zeros.to_string().contains("every sample weight is 0"), "{zeros}");
    let count = WeightedTargets::new(&labels[..], vec![1.0; 2]).unwrap_err();
    assert_eq!(
        count.to_string(),
        "shape mismatch in sample weights: expected 3 weights (one per sample), got 2 weights"
    );
    let empty = WeightedTargets::new(&[][..], Vec::new()).unwrap_err();
    assert!(matches!(empty, Error::EmptyBatch { .. }), "{empty}");

    // Weights of another batch than the outputs', and the inner loss's own errors.
    let loss = SampleWeighted::new(SoftmaxCrossEntropy::new());
    let targets = WeightedTargets::new(&labels[..], vec![1.0; 3]).unwrap();
    let wrong = loss.loss(&DMatrix::<f64>::zeros(2, 4), &targets).unwrap_err();
    assert!(matches!(wrong, Error::ShapeMismatch { .. }), "{wrong}");
    let out_of_range = loss.loss(&DMatrix::<f64>::zeros(1, 3), &targets).unwrap_err();
    assert!(matches!(out_of_range, Error::LabelOutOfRange { index: 1, .. }), "{out_of_range}");
    assert!(Loss::<f64>::check_targets(&loss, 1, &targets).is_err());
}

/// A network that is one 1 → 1 layer with a bias: `z = w·x + b`.
fn line(seed: u64) -> Network<f64> {
    let layer = Layer::new(1, 1, Init::PytorchLinear, &mut StdRng::seed_from_u64(seed));
    Network::new(1).push(layer).unwrap()
}

#[test]
fn a_weighted_fit_learns_the_weighted_mean() {
    // At every x two targets, 0 weighted 3 and 1 weighted 1: MSE's minimizer is 0.25 (the
    // unweighted fit would learn 0.5), MAE's the weighted median, 0.
    let x = DMatrix::from_fn(1, 40, |_, j| (j / 2) as f64 / 20.0);
    let y = DMatrix::from_fn(1, 40, |_, j| (j % 2) as f64);
    let weights = (0..40).map(|j| if j % 2 == 0 { 3.0 } else { 1.0 }).collect();
    let targets = WeightedTargets::new(&y, weights).unwrap();
    let config = TrainConfig {
        epochs: 300,
        batching: Batching::Minibatch { size: 8, shuffle: true },
        ..TrainConfig::default()
    };
    for (name, expected) in [("mse", 0.25), ("mae", 0.0)] {
        let mut net = line(1);
        let mut opt = Sgd::with_learning_rate(0.05).unwrap();
        let data = Data::new(&x, &targets);
        match name {
            "mse" => train::fit(
                &mut net,
                &mut opt,
                &SampleWeighted::new(MeanSquaredError),
                data,
                &config,
                |_, _, _| {},
            ),
            _ => train::fit(
                &mut net,
                &mut opt,
                &SampleWeighted::new(MeanAbsoluteError),
                data,
                &config,
                |_, _, _| {},
            ),
        }
        .unwrap();
        let predicted = net.output(&x).unwrap();
        let worst = predicted.iter().map(|p| (p - expected).abs()).fold(0.0, f64::max);
        assert!(worst < 0.02, "{name}: predictions {predicted} should all be {expected}");
    }
}

#[test]
fn a_full_batch_fit_with_integer_weights_follows_the_fit_on_copies() {
    let x = DMatrix::from_fn(1, 5, |_, j| j as f64 / 4.0 - 0.5);
    let y = x.map(|v| 2.0 * v * v);
    let weights = vec![2.0, 1.0, 0.0, 3.0, 1.0];
    let copies = [0, 0, 1, 3, 3, 3, 4];
    let (mut x_copies, mut y_copies) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
    train::gather_columns(&x, &copies, &mut x_copies);
    train::gather_columns(&y, &copies, &mut y_copies);
    let config = TrainConfig { epochs: 50, batching: Batching::Full, ..TrainConfig::default() };
    let run = |net: &mut Network<f64>, fit: &dyn Fn(&mut Network<f64>, &mut Sgd<f64>)| {
        let mut opt = Sgd::with_learning_rate(0.1).unwrap();
        fit(net, &mut opt);
    };
    let (mut weighted, mut copied) = (line(3), line(3));
    let targets = WeightedTargets::new(&y, weights).unwrap();
    run(&mut weighted, &|net, opt| {
        let data = Data::new(&x, &targets);
        train::fit(net, opt, &SampleWeighted::new(MeanSquaredError), data, &config, |_, _, _| {}).unwrap();
    });
    run(&mut copied, &|net, opt| {
        train::fit(net, opt, &MeanSquaredError, Data::new(&x_copies, &y_copies), &config, |_, _, _| {})
            .unwrap();
    });
    for (a, b) in weighted.parameters().zip(copied.parameters()) {
        assert_relative_eq!(a.value(), b.value(), max_relative = 1e-12);
    }
    assert_ne!(weighted.parameters().next().unwrap().value(), line(3).parameters().next().unwrap().value());
}

#[test]
fn network_sample_losses_name_the_worst_samples() {
    let net = line(5);
    let x = DMatrix::from_row_slice(1, 4, &[0.0, 1.0, -1.0, 0.5]);
    let out = net.output(&x).unwrap();
    let y = DMatrix::from_row_slice(1, 4, &[0.0, 0.0, 3.0, 0.0]);
    let losses = net.sample_losses(&x, &MeanSquaredError, &y).unwrap();
    let expected: Vec<f64> = out.iter().zip(y.iter()).map(|(z, t)| (z - t) * (z - t)).collect();
    assert_eq!(losses, expected);
    // Weighted: each loss times its weight.
    let targets = WeightedTargets::new(&y, vec![1.0, 2.0, 0.0, 0.5]).unwrap();
    let weighted = net.sample_losses(&x, &SampleWeighted::new(MeanSquaredError), &targets).unwrap();
    let expected: Vec<f64> = expected.iter().zip(targets.weights()).map(|(l, w)| l * w).collect();
    assert_eq!(weighted, expected);
    assert!(net.sample_losses(&x, &MeanSquaredError, &DMatrix::zeros(1, 3)).is_err());
}

#[test]
fn stratified_cuts_carry_each_sample_weight_along() {
    use feedforward::train::{FoldConfig, SplitConfig};
    // Sample j has weight j, and its input is j: a weight that followed another sample shows.
    let labels: Vec<usize> = (0..30).map(|j| [0, 0, 0, 1, 2][j % 5]).collect();
    let x = DMatrix::from_fn(1, 30, |_, j| j as f64);
    let weighted = WeightedTargets::new(&labels[..], (0..30).map(f64::from).collect()).unwrap();
    let follows = |inputs: &DMatrix<f64>, targets: &WeightedTargets<[usize]>| {
        assert_eq!(inputs.as_slice(), targets.weights());
        let expected: Vec<usize> = inputs.iter().map(|&j| labels[j as usize]).collect();
        assert_eq!(targets.targets(), &expected[..]);
    };
    let config = SplitConfig { held_out: 10, seed: 4 };
    let split = train::stratified_split_by(&x, &weighted, &labels, config).unwrap();
    follows(&split.inputs, &split.targets);
    follows(&split.held_out_inputs, &split.held_out_targets);
    // The cut stratified_split makes of the labels alone.
    let plain = train::stratified_split(&x, &labels, config).unwrap();
    assert_eq!(split.held_out_inputs, plain.held_out_inputs);

    let config = FoldConfig { folds: 3, seed: 2 };
    let plain: Vec<_> = train::stratified_folds(&x, &labels, config).unwrap().collect();
    let folds = train::stratified_folds_by(&x, &weighted, &labels, config).unwrap();
    for (fold, plain) in folds.zip(plain) {
        follows(&fold.inputs, &fold.targets);
        follows(&fold.held_out_inputs, &fold.held_out_targets);
        assert_eq!(fold.held_out_inputs, plain.held_out_inputs);
    }
    let short =
        train::stratified_split_by(&x, &weighted, &labels[..29], SplitConfig { held_out: 10, seed: 4 });
    assert!(matches!(short, Err(Error::ShapeMismatch { .. })));
}

#[cfg(feature = "data")]
#[test]
fn a_column_of_sample_weights_is_read_with_its_errors_at_their_lines() {
    use feedforward::data::table::Table;
    let parse = |text: &str| Table::parse(text.as_bytes(), "w.csv").unwrap();
    assert_eq!(parse("w\n1\n0\n2.5\n").sample_weights("w").unwrap(), [1.0, 0.0, 2.5]);
    let error = |text: &str| parse(text).sample_weights("w").unwrap_err().to_string();
    assert_eq!(error("w\n1\n-0.5\n"), "w.csv:3: column \"w\": -0.5 is not a sample weight (at least 0)");
    let empty = error("w,x\n1,1\n,2\n");
    assert!(empty.starts_with("w.csv:3: column \"w\" is empty"), "{empty}");
    assert!(error("w\n1\nheavy\n").starts_with("w.csv:3: column \"w\": \"heavy\" is not a number"));
    assert_eq!(
        error("w\n0\n0\n"),
        "w.csv:1: column \"w\": every sample weight is 0 (nothing to average over)"
    );
    assert!(error("x\n1\n").contains("\"w\""), "{}", error("x\n1\n"));
}

#[test]
fn a_weighted_run_is_the_same_on_any_thread_count() {
    let run = |threads: usize| {
        feedforward::linalg::set_threads(threads);
        let mut rng = StdRng::seed_from_u64(11);
        let mut net = Network::<f32>::mlp(&[6, 32, 4], feedforward::MlpConfig::default(), &mut rng).unwrap();
        let x = DMatrix::from_fn(6, 5000, |i, j| ((i * 31 + j * 17) % 23) as f32 / 11.0 - 1.0);
        let labels: Vec<usize> = (0..5000).map(|j| (j * 7 + j / 13) % 4).collect();
        let weights = (0..5000).map(|j| ((j * 5) % 9) as f64 / 4.0).collect();
        let targets = WeightedTargets::new(&labels[..], weights).unwrap();
        let loss = SampleWeighted::new(SoftmaxCrossEntropy::new().with_label_smoothing(0.1).unwrap());
        let mut adam = feedforward::Adam::with_learning_rate(1e-2).unwrap();
        for _ in 0..3 {
            net.train_step(&x, &loss, &targets, &mut adam).unwrap();
        }
        feedforward::linalg::set_threads(0);
        net.parameters().map(|p| p.value().clone()).collect::<Vec<_>>()
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}
