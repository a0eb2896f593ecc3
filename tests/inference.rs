//! Inference through `&self`: one network shared by many threads, clones, single samples, and
//! non-finite input turned into errors naming the sample.

use feedforward::train::{self, TrainConfig};
use feedforward::{Error, MeanSquaredError, MlpConfig, Network, Rmsprop, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

mod common;
use common::MnistNet;

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

fn mnist_like(batch: usize, seed: u64) -> DMatrix<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    DMatrix::from_fn(784, batch, |_, _| rand::RngExt::random::<f32>(&mut rng))
}

#[test]
fn network_is_send_sync_and_clone() {
    assert_send_sync_clone::<Network<f32>>();
    assert_send_sync_clone::<Network<f64>>();
}

#[test]
fn many_threads_share_one_network_and_get_the_bits_of_one_thread() {
    let net: Network<f32> = MnistNet::Default.build(3);
    let batches: Vec<DMatrix<f32>> = (0..8).map(|k| mnist_like(1 + 37 * k, k as u64)).collect();
    let alone: Vec<_> = batches.iter().map(|x| (net.output(x).unwrap(), net.predict(x).unwrap())).collect();
    let shared = &net;
    let results: Vec<Vec<_>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let batches = &batches;
                scope.spawn(move || {
                    // Each thread walks the batches from a different start, many times over.
                    (0..4 * batches.len())
                        .map(|i| {
                            let k = (i + t) % batches.len();
                            (k, shared.output(&batches[k]).unwrap(), shared.predict(&batches[k]).unwrap())
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for thread in results {
        for (k, output, predicted) in thread {
            assert_eq!(output, alone[k].0, "batch {k}");
            assert_eq!(predicted, alone[k].1, "batch {k}");
        }
    }
}

#[test]
fn a_clone_computes_the_same_and_trains_on_its_own() {
    let mut net: Network<f32> = MnistNet::Default.build(4);
    let x = mnist_like(20, 1);
    let y: Vec<usize> = (0..20).map(|j| j % 10).collect();
    let mut opt = Rmsprop::elementwise(1e-3).unwrap();
    net.train_step(&x, &SoftmaxCrossEntropy::new(), &y, &mut opt).unwrap();
    let copy = net.clone();
    assert_eq!(copy.steps(), net.steps());
    assert_eq!(copy.output(&x).unwrap(), net.output(&x).unwrap());
    net.train_step(&x, &SoftmaxCrossEntropy::new(), &y, &mut opt).unwrap();
    assert_ne!(copy.output(&x).unwrap(), net.output(&x).unwrap(), "the clone owns its parameters");
}

#[test]
fn single_samples_and_training_buffers_agree_with_the_batch() {
    let mut net: Network<f32> = MnistNet::Seed.build(5);
    let x = mnist_like(9, 2);
    let batch = net.output(&x).unwrap();
    assert_eq!(net.forward(&x).unwrap(), &batch);
    let predicted = net.predict(&x).unwrap();
    for (j, &predicted) in predicted.iter().enumerate() {
        let column = x.column(j).into_owned();
        let one = net.output_sample(column.as_slice()).unwrap();
        // A one-column product may sum in another order than the batch's: compare closely.
        for (a, b) in one.iter().zip(batch.column(j).iter()) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "sample {j}: {a} vs {b}");
        }
        assert_eq!(net.predict_sample(column.as_slice()).unwrap(), predicted);
    }
    assert!(matches!(net.predict_sample(&[0.0; 783]), Err(Error::ShapeMismatch { .. })));
    let p = net.probabilities(&x).unwrap();
    for j in 0..9 {
        assert!((p.column(j).sum() - 1.0).abs() < 1e-5);
    }
}

/// Puts `value` at (`row`, `col`) of a copy of `x`.
fn poisoned(x: &DMatrix<f32>, row: usize, col: usize, value: f32) -> DMatrix<f32> {
    let mut bad = x.clone();
    bad[(row, col)] = value;
    bad
}

fn expect_input_error<T: std::fmt::Debug>(result: feedforward::Result<T>, sample: usize) -> Error {
    match result {
        Err(e @ Error::NonFinite { sample: Some(s), .. }) if s == sample => e,
        other => panic!("expected a non-finite input error naming sample {sample}, got {other:?}"),
    }
}

#[test]
fn non_finite_input_is_an_error_naming_the_sample_never_an_answer() {
    let mut net: Network<f32> = MnistNet::Default.build(6);
    let x = mnist_like(5, 3);
    let y = [1, 2, 3, 4, 5];
    let ce = SoftmaxCrossEntropy::new();
    for (value, row, col) in [(f32::NAN, 0, 3), (f32::INFINITY, 783, 0), (f32::NEG_INFINITY, 400, 4)] {
        let bad = poisoned(&x, row, col, value);
        expect_input_error(net.predict(&bad), col);
        expect_input_error(net.output(&bad), col);
        expect_input_error(net.probabilities(&bad), col);
        expect_input_error(net.evaluate(&bad, &ce, &y), col);
        expect_input_error(net.accuracy(&bad, &y), col);
        expect_input_error(net.forward(&bad), col);
        expect_input_error(net.predict_sample(bad.column(col).into_owned().as_slice()), 0);
        let before: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
        let mut opt = Rmsprop::elementwise(1e-3).unwrap();
        let e = expect_input_error(net.train_step(&bad, &ce, &y, &mut opt), col);
        // The training error blames the input, names the step, and suggests no learning rate.
        let text = e.to_string();
        assert!(text.contains(&format!("sample {col}")) && text.contains("step 1"), "{text}");
        assert!(!text.contains("learning rate"), "{text}");
        let after: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
        assert_eq!(before, after);
        assert_eq!(net.steps(), 0);
    }
}

#[test]
fn fit_checks_the_whole_training_set_once_and_names_the_sample_in_it() {
    let mut net =
        Network::<f32>::mlp(&[2, 4, 1], MlpConfig::default(), &mut StdRng::seed_from_u64(0)).unwrap();
    let mut x = DMatrix::from_fn(2, 50, |i, j| (i + j) as f32 / 50.0);
    let mut y = DMatrix::from_fn(1, 50, |_, j| j as f32 / 50.0);
    x[(1, 37)] = f32::NAN;
    let mut opt = Rmsprop::elementwise(1e-3).unwrap();
    let config = TrainConfig {
        epochs: 2,
        batching: train::Batching::Minibatch { size: 8, shuffle: true },
        ..TrainConfig::default()
    };
    let err =
        train::fit(&mut net, &mut opt, &MeanSquaredError, train::Data::new(&x, &y), &config, |_, _, _| {})
            .unwrap_err();
    assert!(matches!(err, Error::NonFinite { sample: Some(37), step: None, .. }), "{err}");
    assert!(err.to_string().contains("training set"), "{err}");
    x[(1, 37)] = 0.5;
    y[(0, 41)] = f32::INFINITY;
    let err =
        train::fit(&mut net, &mut opt, &MeanSquaredError, train::Data::new(&x, &y), &config, |_, _, _| {})
            .unwrap_err();
    assert!(matches!(err, Error::InvalidTarget { sample: 41, row: 0, .. }), "{err}");
    assert_eq!(net.steps(), 0, "nothing ran");
}

/// The cheap check looks at the output only: it must still see a −∞ pixel whose weights into
/// the hidden layer are all positive (every pre-activation −∞, which a plain `max(z, 0)` would
/// turn into 0), and a +∞ pixel whose weights are all negative.
#[test]
fn infinities_that_relu_would_hide_are_still_found() {
    let mut net: Network<f32> = MnistNet::Default.build(8);
    {
        let mut params = net.parameters_mut();
        let w0 = params.next().unwrap();
        let mut w = w0.value_mut();
        for k in 0..256 {
            w[(10, k)] = w[(10, k)].abs() + 1e-3;
            w[(20, k)] = -w[(20, k)].abs() - 1e-3;
        }
    }
    let x = mnist_like(4, 9);
    for (row, value) in [(10, f32::NEG_INFINITY), (20, f32::INFINITY), (10, f32::NAN)] {
        let bad = poisoned(&x, row, 2, value);
        expect_input_error(net.predict(&bad), 2);
        let mut opt = Rmsprop::elementwise(1e-3).unwrap();
        expect_input_error(net.train_step(&bad, &SoftmaxCrossEntropy::new(), &[0, 1, 2, 3], &mut opt), 2);
    }
}

/// A module that clamps its input (and so may hide a NaN): the network scans the input itself.
#[derive(Clone, Debug)]
struct Clamp;

impl feedforward::Module<f32> for Clamp {
    fn kind(&self) -> &'static str {
        "Clamp"
    }
    fn output_rows(&self, rows: usize) -> feedforward::Result<usize> {
        Ok(rows)
    }
    fn forward(&self, x: &DMatrix<f32>, y: &mut DMatrix<f32>) {
        y.zip_apply(x, |y, x| *y = x.clamp(-1.0, 1.0));
    }
    fn backward(
        &mut self,
        x: &DMatrix<f32>,
        _: &DMatrix<f32>,
        dy: &DMatrix<f32>,
        dx: Option<&mut DMatrix<f32>>,
    ) {
        if let Some(dx) = dx {
            dx.zip_zip_apply(x, dy, |d, x, g| *d = if x.abs() < 1.0 { g } else { 0.0 });
        }
    }
}

#[test]
fn a_module_that_may_hide_non_finite_values_gets_the_input_scanned() {
    let mut rng = StdRng::seed_from_u64(1);
    let net = Network::<f32>::new(3)
        .push(Clamp)
        .unwrap()
        .push(feedforward::Layer::new(3, 2, feedforward::Init::He, &mut rng))
        .unwrap();
    let x = DMatrix::from_fn(3, 4, |i, j| (i + j) as f32 / 10.0);
    // f32::clamp(NaN) is NaN, but +∞ clamps to 1: only the input scan sees it.
    expect_input_error(net.output(&poisoned(&x, 1, 3, f32::INFINITY)), 3);
    assert!(net.output(&x).is_ok());
}

#[test]
fn an_output_that_overflows_from_a_finite_input_is_an_error_too() {
    let net: Network<f32> = MnistNet::Default.build(2);
    let huge = DMatrix::from_element(784, 2, f32::MAX / 4.0);
    match net.predict(&huge) {
        Err(e @ Error::NonFinite { sample: None, step: None, .. }) => {
            assert!(e.to_string().contains("overflow"), "{e}")
        }
        other => panic!("expected an overflow error, got {other:?}"),
    }
}

/// `sigmoid_probabilities` is σ of each output, entry by entry: against `1/(1 + e^(−z))` in
/// f64 within 2 ulp of f32 relative (the two round differently), or within the smallest
/// normal f32 where σ is smaller than that (z < −87: it underflows to a subnormal or 0); in
/// [0, 1] and never NaN for logits of ±1e4; and `p > 0.5` is the prediction
/// `BinaryCrossEntropy`'s accuracy counts.
#[test]
fn sigmoid_probabilities_are_the_logistic_of_each_output() {
    use feedforward::{BinaryCrossEntropy, Layer};
    // One input, outputs z = w·x: weights spread the logits over ±1e4.
    let weights: Vec<f32> = [-1e4, -120.0, -30.0, -5.0, -0.5, 0.0, 0.5, 5.0, 17.0, 30.0, 1e4].to_vec();
    let layer = Layer::from_parts(DMatrix::from_row_slice(1, weights.len(), &weights), None).unwrap();
    let net = Network::<f32>::new(1).push(layer).unwrap();
    let x = DMatrix::from_row_slice(1, 4, &[1.0f32, -1.0, 0.25, 0.0]);
    let logits = net.output(&x).unwrap();
    let p = net.sigmoid_probabilities(&x).unwrap();
    assert_eq!(p.shape(), logits.shape());
    for (&z, &p) in logits.iter().zip(p.iter()) {
        let exact = 1.0 / (1.0 + (-f64::from(z)).exp());
        assert!(p.is_finite() && (0.0..=1.0).contains(&p), "σ({z}) = {p}");
        let bound = (2.0 * f64::from(f32::EPSILON) * exact).max(f64::from(f32::MIN_POSITIVE));
        assert!((f64::from(p) - exact).abs() <= bound, "σ({z}) = {p}, exact {exact}");
    }
    // The accuracy BinaryCrossEntropy reports is the share of `p > 0.5` agreeing with `t > 0.5`.
    let targets = DMatrix::from_fn(weights.len(), 4, |i, j| if (i + j) % 3 == 0 { 1.0f32 } else { 0.0 });
    let agree = p.iter().zip(targets.iter()).filter(|&(&p, &t)| (p > 0.5) == (t > 0.5)).count();
    let accuracy = net.evaluate(&x, &BinaryCrossEntropy::new(), &targets).unwrap().accuracy.unwrap();
    assert_eq!(accuracy, agree as f64 / p.len() as f64);
}
