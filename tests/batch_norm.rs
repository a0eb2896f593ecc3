//! `BatchNorm`: training and inference passes and running statistics against PyTorch's own
//! numbers, its gradients by finite differences, the running statistics moving only on accepted
//! steps, model files and checkpoints that carry them, the same run on any thread count, and a
//! network that trains with it.

use feedforward::gradcheck::{self, Config};
use feedforward::train::{self, Batching, Checkpointing, Data, EarlyStopping, Event, Flow, TrainConfig};
use feedforward::{
    Activation, Adam, AdamConfig, BatchNorm, BatchNormStatistics, Error, Init, Layer, MeanSquaredError,
    Module, Network, Relu, Sgd, SgdConfig, SoftmaxCrossEntropy, TrainContext, weights,
};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

mod common;
use common::{Reject, assert_close, tensors};

/// Gradient checks: f64, central differences, error `|a − n| / max(|a|, |n|, 1e-4)` at most this.
const BOUND: f64 = 1e-6;

fn random(rows: usize, cols: usize, seed: u64, scale: f64) -> DMatrix<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    DMatrix::from_fn(rows, cols, |_, _| scale * rng.random_range(-1.0..1.0))
}

/// A 3-feature BatchNorm with γ = (1.5, 0.5, −1) and β = (0.1, −0.2, 0.3).
fn norm() -> BatchNorm<f64> {
    let mut n = BatchNorm::new(3).unwrap();
    let mut parameters = (&mut n as &mut dyn Module<f64>).parameters_mut();
    parameters[0].value_mut().copy_from_slice(&[1.5, 0.5, -1.0]);
    parameters[1].value_mut().copy_from_slice(&[0.1, -0.2, 0.3]);
    n
}

/// Four samples (columns) of three features.
fn batch() -> DMatrix<f64> {
    DMatrix::from_column_slice(3, 4, &[1.0, 10.0, -3.0, 2.0, 12.0, -1.0, 4.0, 11.0, 0.5, -1.0, 9.5, 2.0])
}

/// The numbers of PyTorch 2.15's `nn.BatchNorm1d(3)` in float64 with the same γ, β and batch
/// (samples as rows there): the training output, the running statistics after it, and the
/// inference output on two more samples.
#[test]
fn training_inference_and_running_statistics_match_pytorch() {
    let mut n = norm();
    let x = batch();
    let mut y = DMatrix::zeros(3, 4);
    n.forward_train(&x, &mut y, &mut TrainContext::new(0, 1, 0));
    #[rustfmt::skip]
    let expected = [
        -0.31602450713171093, -0.5254705121930516, 1.7190464211479477,
        0.5160245071317109, 0.5160351268247143, 0.6378681955114162,
        2.1801225356585547, -0.004717692684168662, -0.1730154737159826,
        -1.9801225356585546, -0.7858469219474931, -0.9838991429433813,
    ];
    assert_close(y.as_slice(), &expected, "training output");
    // Staged, not yet taken in: the running statistics are the initial ones until the commit.
    assert_eq!(n.running_mean().value().as_slice(), &[0.0; 3]);
    assert_eq!(n.running_var().value().as_slice(), &[1.0; 3]);
    n.commit_step();
    assert_close(n.running_mean().value().as_slice(), &[0.15, 1.0625, -0.0375], "running mean");
    assert_close(
        n.running_var().value().as_slice(),
        &[4.0 / 3.0, 1.0229166666666667, 1.35625],
        "running var",
    );
    // A second commit without a new batch changes nothing.
    n.commit_step();
    assert_close(n.running_mean().value().as_slice(), &[0.15, 1.0625, -0.0375], "running mean");

    let x2 = DMatrix::from_column_slice(3, 2, &[0.5, 11.0, 1.0, 3.0, 8.0, -2.0]);
    let mut y2 = DMatrix::zeros(3, 2);
    n.forward(&x2, &mut y2);
    #[rustfmt::skip]
    let expected = [
        0.5546616320089071, 4.712752618637243, -0.5908747064631045,
        3.8022447177868144, 3.2296574884826037, 1.985148541141053,
    ];
    assert_close(y2.as_slice(), &expected, "inference output");
}

#[test]
fn gradients_check_alone_and_in_a_network() {
    let mut n = norm();
    let report = gradcheck::check_module(&mut n, &batch(), &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
    let x = random(3, 9, 4, 2.0);
    let report = gradcheck::check_module(&mut n, &x, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");

    let mut rng = StdRng::seed_from_u64(5);
    let mut net = Network::new(4)
        .push(Layer::new(4, 3, Init::He, &mut rng))
        .unwrap()
        .push(norm())
        .unwrap()
        .push(Layer::new(3, 2, Init::He, &mut rng).with_activation(Activation::Tanh))
        .unwrap()
        .with_l2(1e-3)
        .unwrap();
    let x = random(4, 8, 6, 1.0);
    let targets = random(2, 8, 7, 0.8);
    let report =
        gradcheck::check_network(&mut net, &x, &MeanSquaredError, &targets, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
    // Differentiating is not training: the running statistics have not moved.
    let bn = &net.modules()[1];
    let mut running = Vec::new();
    bn.visit_buffers(&mut |b| running.extend(b.value().iter().copied()));
    assert_eq!(running, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
}

fn net(seed: u64) -> Network<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Network::new(2)
        .push(Layer::new(2, 16, Init::He, &mut rng))
        .unwrap()
        .push(BatchNorm::new(16).unwrap())
        .unwrap()
        .push(Relu)
        .unwrap()
        .push(Layer::new(16, 3, Init::He, &mut rng))
        .unwrap()
}

/// Three blobs in 2-D, one per class, far from the origin and of different spreads.
fn blobs(samples: usize, seed: u64) -> (DMatrix<f32>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let labels: Vec<usize> = (0..samples).map(|j| j % 3).collect();
    let centres = [(40.0f32, -300.0f32), (44.0, -200.0), (42.0, -100.0)];
    let x = DMatrix::from_fn(2, samples, |i, j| {
        let c = centres[labels[j]];
        (if i == 0 { c.0 } else { c.1 }) + rng.random_range(-1.0f32..1.0) * if i == 0 { 1.0 } else { 30.0 }
    });
    (x, labels)
}

#[test]
fn a_rejected_step_and_a_batch_of_one_leave_the_running_statistics_alone() {
    let (x, y) = blobs(8, 1);
    let loss = SoftmaxCrossEntropy::new();
    let mut n = net(2);
    let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.1, ..SgdConfig::default() }).unwrap();
    n.train_step(&x, &loss, &y[..], &mut sgd).unwrap();
    let before = tensors(&n);
    assert_ne!(before[3], vec![1.0; 16], "an accepted step moves the running variance");

    // An optimizer that finds a non-finite value in every step: the step is rejected.
    let e = n.train_step(&x, &loss, &y[..], &mut Reject).unwrap_err();
    assert!(matches!(e, Error::NonFinite { .. }), "{e}");
    assert_eq!(tensors(&n), before);
    assert_eq!(n.steps(), 1);

    let e = n.train_step(&x.columns(0, 1).into_owned(), &loss, &y[..1], &mut sgd).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }) && e.to_string().contains("at least 2 samples"), "{e}");
    assert_eq!(tensors(&n), before);
    assert_eq!(n.steps(), 1);
    // `fit` checks every batch size of its epochs before the first step: 9 samples in
    // batches of 4 leave a last batch of one.
    let (x9, y9) = blobs(9, 2);
    let config =
        TrainConfig { batching: Batching::Minibatch { size: 4, shuffle: true }, ..TrainConfig::default() };
    let e = train::fit(&mut n, &mut sgd, &loss, Data::new(&x9, &y9), &config, |_, _, _| {}).unwrap_err();
    assert!(e.to_string().contains("got 1 sample"), "{e}");
    assert_eq!(tensors(&n), before);
    assert_eq!(n.steps(), 1);
    // Inference on one sample is fine: it uses the running statistics.
    assert_eq!(n.output(&x.columns(0, 1).into_owned()).unwrap().shape(), (3, 1));
}

#[test]
fn model_files_carry_the_running_statistics() {
    let (x, y) = blobs(30, 3);
    let mut n = net(4);
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    let loss = SoftmaxCrossEntropy::new();
    for _ in 0..5 {
        n.train_step(&x, &loss, &y[..], &mut adam).unwrap();
    }
    let bytes = weights::to_bytes(&n).unwrap();
    let names: Vec<String> = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .names()
        .into_iter()
        .map(String::from)
        .collect();
    for name in ["layer1.weight", "layer1.bias", "layer1.running_mean", "layer1.running_var", "layer2.weight"]
    {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    let loaded = Network::<f32>::from_bytes_with(&bytes, "<memory>", &|_, _, _| Ok(None)).unwrap();
    assert_eq!(tensors(&loaded), tensors(&n));
    assert_eq!(loaded.output(&x).unwrap(), n.output(&x).unwrap());
    assert_eq!(loaded.modules()[1].describe().unwrap()["momentum"], 0.1);
    // Into a network the caller built, too.
    let mut fresh = net(5);
    weights::from_bytes_into(&mut fresh, &bytes, "<memory>").unwrap();
    assert_eq!(tensors(&fresh), tensors(&n));
}

#[test]
fn a_model_file_with_a_negative_running_variance_is_refused_by_name() {
    let mut n = net(4);
    n.modules_mut()[1].visit_buffers_mut(&mut |b| {
        if b.name() == "running_var" {
            b.value_mut()[2] = -0.25;
        }
    });
    // Saving writes what the network holds; loading checks it.
    let bytes = weights::to_bytes(&n).unwrap();
    let expected =
        "tensor layer1.running_var holds -0.25 at entry 2; its values must be finite and not negative";
    match Network::<f32>::from_bytes_with(&bytes, "bad.safetensors", &|_, _, _| Ok(None)) {
        Err(Error::Weights { path, reason }) => {
            assert_eq!(path.to_str(), Some("bad.safetensors"));
            assert_eq!(reason, expected);
        }
        other => panic!("expected a weights error, got {other:?}"),
    }
    let mut fresh = net(5);
    let before = tensors(&fresh);
    let err = weights::from_bytes_into(&mut fresh, &bytes, "bad.safetensors").unwrap_err();
    assert!(err.to_string().contains(expected), "{err}");
    assert_eq!(tensors(&fresh), before, "an error leaves the network unchanged");
    // A running variance of exactly zero (a constant feature) is a variance.
    n.modules_mut()[1].visit_buffers_mut(&mut |b| b.value_mut().fill(0.0));
    Network::<f32>::from_bytes_with(&weights::to_bytes(&n).unwrap(), "zero", &|_, _, _| Ok(None)).unwrap();
}

#[test]
fn a_resumed_run_and_early_stopping_keep_the_running_statistics() {
    let (x, y) = blobs(60, 6);
    let (xv, yv) = blobs(30, 7);
    let loss = SoftmaxCrossEntropy::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ckpt");
    let data = Data::new(&x, &y).with_validation(&xv, &yv);
    let config = TrainConfig {
        epochs: 6,
        batching: Batching::Minibatch { size: 8, shuffle: true },
        checkpoint: Some(Checkpointing::new(&path)),
        ..TrainConfig::default()
    };
    let adam = || Adam::new(AdamConfig { learning_rate: 1e-2, ..AdamConfig::default() }).unwrap();
    let mut a = net(8);
    train::fit(&mut a, &mut adam(), &loss, data, &config, |_, _, _| {}).unwrap();
    let mut b = net(8);
    train::fit(&mut b, &mut adam(), &loss, data, &config, |event, _, _| match event {
        Event::Epoch(e) if e.epoch == 2 => Flow::Stop,
        _ => Flow::Continue,
    })
    .unwrap();
    let mut c = net(9);
    let resume = TrainConfig { resume: Some(path.clone()), ..config.clone() };
    train::fit(&mut c, &mut adam(), &loss, data, &resume, |_, _, _| {}).unwrap();
    assert_eq!(tensors(&c), tensors(&a));

    // Early stopping restores the best epoch's whole model, running statistics included.
    let early = TrainConfig {
        early_stopping: Some(EarlyStopping { patience: 100, min_delta: 0.0 }),
        checkpoint: None,
        ..config
    };
    let mut d = net(8);
    let mut snapshots = Vec::new();
    let report = train::fit(&mut d, &mut adam(), &loss, data, &early, |event, net, _| {
        if let Event::Epoch(_) = event {
            snapshots.push(tensors(net));
        }
    })
    .unwrap();
    let best = report.best_epoch.unwrap();
    assert_eq!(tensors(&d), snapshots[best - 1], "best epoch {best}");

    // A checkpoint whose best model holds a negative running variance is refused by name.
    let with_best = TrainConfig { checkpoint: Some(Checkpointing::new(&path)), ..early };
    train::fit(&mut net(8), &mut adam(), &loss, data, &with_best, |_, _, _| {}).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let edited: Vec<u8> = file.tensor("best.layer1.running_var").unwrap().data().to_vec();
    let edited: Vec<u8> = edited
        .chunks(4)
        .enumerate()
        .flat_map(|(i, c)| {
            let v = f32::from_le_bytes(c.try_into().unwrap());
            (if i == 1 { -1.5 } else { v }).to_le_bytes()
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| match name.as_str() {
            "best.layer1.running_var" => {
                let view = safetensors::tensor::TensorView::new(view.dtype(), view.shape().to_vec(), &edited)
                    .unwrap();
                (name, view)
            }
            _ => (name, view),
        })
        .collect();
    std::fs::write(&path, safetensors::serialize(views, header.metadata().clone()).unwrap()).unwrap();
    let resume = TrainConfig { resume: Some(path.clone()), ..with_best };
    let mut e = net(9);
    let before = tensors(&e);
    match train::fit(&mut e, &mut adam(), &loss, data, &resume, |_, _, _| {}) {
        Err(Error::Checkpoint { reason, .. }) => assert_eq!(
            reason,
            "tensor best.layer1.running_var holds -1.5 at entry 1; its values must be finite and not negative"
        ),
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
    assert_eq!(tensors(&e), before, "an error leaves the network unchanged");
}

#[test]
fn the_same_run_on_any_thread_count() {
    // 64 features × 1024 samples: enough for the sums to be cut into blocks.
    let run = |threads: usize| {
        feedforward::linalg::set_threads(threads);
        let mut rng = StdRng::seed_from_u64(10);
        let x = DMatrix::<f32>::from_fn(8, 1024, |_, _| rng.random_range(-3.0f32..5.0));
        let y: Vec<usize> = (0..1024).map(|j| j % 4).collect();
        let mut init = StdRng::seed_from_u64(11);
        let mut n = Network::new(8)
            .push(Layer::new(8, 64, Init::He, &mut init))
            .unwrap()
            .push(BatchNorm::new(64).unwrap())
            .unwrap()
            .push(Relu)
            .unwrap()
            .push(Layer::new(64, 4, Init::He, &mut init))
            .unwrap();
        let mut adam = Adam::with_learning_rate(1e-2).unwrap();
        for _ in 0..3 {
            n.train_step(&x, &SoftmaxCrossEntropy::new(), &y[..], &mut adam).unwrap();
        }
        feedforward::linalg::set_threads(0);
        tensors(&n)
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

#[test]
fn bad_settings_and_shapes_are_errors() {
    assert!(matches!(BatchNorm::<f32>::new(0), Err(Error::ShapeMismatch { .. })));
    for eps in [0.0, -1e-5, f64::NAN, f64::INFINITY] {
        let e = BatchNorm::<f32>::new(3).unwrap().with_eps(eps);
        assert!(matches!(e, Err(Error::InvalidHyperparameter { .. })), "{eps}");
    }
    for momentum in [0.0, -0.1, 1.5, f64::NAN] {
        let e = BatchNorm::<f32>::new(3).unwrap().with_momentum(momentum);
        assert!(matches!(e, Err(Error::InvalidHyperparameter { .. })), "{momentum}");
    }
    let e = Network::new(4).push(BatchNorm::<f32>::new(3).unwrap()).unwrap_err();
    assert!(e.to_string().contains("3 rows") && e.to_string().contains("got 4 rows"), "{e}");
}

/// Features hundreds of units from the origin, with spreads 30 times apart: a network with
/// BatchNorm after its first layer learns them with plain SGD; the same network without it
/// stays at chance (33%).
#[test]
fn it_lets_a_network_train_on_unscaled_features() {
    let (x, y) = blobs(300, 12);
    let loss = SoftmaxCrossEntropy::new();
    let config = TrainConfig {
        epochs: 20,
        batching: Batching::Minibatch { size: 32, shuffle: true },
        ..TrainConfig::default()
    };
    let sgd = || Sgd::new(SgdConfig { learning_rate: 0.05, ..SgdConfig::default() }).unwrap();
    let mut with = net(13);
    train::fit(&mut with, &mut sgd(), &loss, Data::new(&x, &y), &config, |_, _, _| {}).unwrap();
    let accuracy = with.accuracy(&x, &y).unwrap();
    assert!(accuracy > 0.95, "with BatchNorm: {accuracy}");
    let (xt, yt) = blobs(150, 14);
    let test = with.accuracy(&xt, &yt).unwrap();
    assert!(test > 0.95, "with BatchNorm, new samples: {test}");

    let mut rng = StdRng::seed_from_u64(13);
    let mut without = Network::new(2)
        .push(Layer::new(2, 16, Init::He, &mut rng).with_activation(Activation::Relu))
        .unwrap()
        .push(Layer::new(16, 3, Init::He, &mut rng))
        .unwrap();
    let outcome = train::fit(&mut without, &mut sgd(), &loss, Data::new(&x, &y), &config, |_, _, _| {});
    // It either diverges (an error) or stays near chance.
    if outcome.is_ok() {
        let accuracy = without.accuracy(&x, &y).unwrap();
        assert!(accuracy < 0.5, "without BatchNorm: {accuracy}");
    }
}

#[test]
fn mlp_puts_a_normalization_between_each_hidden_layer_and_its_activation() {
    use feedforward::{MlpConfig, Normalization};
    let kinds = |net: &Network<f64>| net.modules().iter().map(|m| m.kind()).collect::<Vec<_>>();
    let mut rng = StdRng::seed_from_u64(20);
    let config = MlpConfig {
        normalization: Normalization::LayerNorm,
        hidden_activation: Activation::Gelu,
        dropout: 0.1,
        ..MlpConfig::default()
    };
    let net = Network::<f64>::mlp(&[3, 8, 2], config, &mut rng).unwrap();
    assert_eq!(kinds(&net), ["Layer", "LayerNorm", "Gelu", "Dropout", "Layer"]);
    // The identity needs no module.
    let config = MlpConfig {
        normalization: Normalization::BatchNorm,
        hidden_activation: Activation::Identity,
        ..MlpConfig::default()
    };
    let net = Network::<f64>::mlp(&[3, 8, 2], config, &mut rng).unwrap();
    assert_eq!(kinds(&net), ["Layer", "BatchNorm", "Layer"]);

    // Two batch-normalized hidden layers: gradients, training, and a model file that rebuilds.
    let config = MlpConfig { normalization: Normalization::BatchNorm, ..MlpConfig::default() };
    let mut net = Network::<f64>::mlp(&[4, 6, 5, 2], config, &mut rng).unwrap();
    assert_eq!(kinds(&net), ["Layer", "BatchNorm", "Relu", "Layer", "BatchNorm", "Relu", "Layer"]);
    let (x, targets) = (random(4, 10, 21, 3.0), random(2, 10, 22, 1.0));
    let report =
        gradcheck::check_network(&mut net, &x, &MeanSquaredError, &targets, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    for _ in 0..3 {
        net.train_step(&x, &MeanSquaredError, &targets, &mut adam).unwrap();
    }
    let loaded =
        Network::<f64>::from_bytes_with(&weights::to_bytes(&net).unwrap(), "<memory>", &|_, _, _| Ok(None))
            .unwrap();
    assert_eq!(loaded.output(&x).unwrap(), net.output(&x).unwrap());
}

/// `norm()` with running statistics of its own (mean (0.5, −1, 2), variance (4, 0.25, 2)).
fn norm_with_statistics() -> BatchNorm<f64> {
    let mut n = norm().with_training_statistics(BatchNormStatistics::Running);
    let values = [[0.5, -1.0, 2.0], [4.0, 0.25, 2.0]];
    let mut i = 0;
    n.visit_buffers_mut(&mut |b| {
        b.value_mut().copy_from_slice(&values[i]);
        i += 1;
    });
    n
}

#[test]
fn with_running_statistics_a_training_pass_is_the_inference_pass_and_its_gradients_check() {
    let mut n = norm_with_statistics();
    let x = batch();
    let (mut training, mut inference) = (DMatrix::zeros(3, 4), DMatrix::zeros(3, 4));
    n.forward(&x, &mut inference);
    n.forward_train(&x, &mut training, &mut TrainContext::new(0, 1, 0));
    assert_eq!(training, inference);
    // y = γ(x − μ_run)/√(σ²_run + ε) + β, by hand for the first sample.
    let by_hand = [
        1.5 * (1.0 - 0.5) / (4.0f64 + 1e-5).sqrt() + 0.1,
        0.5 * (10.0 + 1.0) / (0.25f64 + 1e-5).sqrt() - 0.2,
        -(-3.0 - 2.0) / (2.0f64 + 1e-5).sqrt() + 0.3,
    ];
    assert_close(&training.as_slice()[..3], &by_hand, "first sample");
    n.commit_step();
    let mut running = Vec::new();
    n.visit_buffers(&mut |b| running.extend(b.value().iter().copied()));
    assert_eq!(running, [0.5, -1.0, 2.0, 4.0, 0.25, 2.0], "the running statistics stay");

    // The backward pass of the fixed affine map, by finite differences; a batch of one is fine.
    for x in [batch(), random(3, 9, 8, 2.0), random(3, 1, 9, 2.0)] {
        let report = gradcheck::check_module(&mut n, &x, &Config::default()).unwrap();
        assert!(report.max_error <= BOUND, "{report}");
    }
    let mut rng = StdRng::seed_from_u64(10);
    let mut net = Network::new(4)
        .push(Layer::new(4, 3, Init::He, &mut rng))
        .unwrap()
        .push(norm_with_statistics())
        .unwrap()
        .push(Layer::new(3, 2, Init::He, &mut rng).with_activation(Activation::Tanh))
        .unwrap();
    let (x, targets) = (random(4, 6, 11, 1.0), random(2, 6, 12, 0.8));
    let report =
        gradcheck::check_network(&mut net, &x, &MeanSquaredError, &targets, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
}

/// Fine-tuning a loaded model: its `BatchNorm` reached through `downcast_mut` and switched to
/// its running statistics, the body frozen, the head trained. The body (its running statistics
/// too) ends bit-identical, and the network's training pass is its inference pass.
#[test]
fn a_loaded_batchnorm_switched_to_running_statistics_fine_tunes_without_moving_them() {
    let (x, y) = blobs(30, 13);
    let loss = SoftmaxCrossEntropy::new();
    let mut n = net(14);
    let mut adam = Adam::with_learning_rate(1e-3).unwrap();
    // Enough steps for the running statistics to near the batch's (0.9⁶⁰ < 0.002).
    for _ in 0..60 {
        n.train_step(&x, &loss, &y[..], &mut adam).unwrap();
    }
    let mut loaded =
        Network::<f32>::from_bytes_with(&weights::to_bytes(&n).unwrap(), "<memory>", &|_, _, _| Ok(None))
            .unwrap();
    assert!(loaded.modules()[0].downcast_ref::<BatchNorm<f32>>().is_none(), "module 0 is a Layer");
    let bn = loaded.modules_mut()[1].downcast_mut::<BatchNorm<f32>>().expect("module 1 is a BatchNorm");
    assert_eq!(bn.training_statistics(), BatchNormStatistics::Batch);
    bn.set_training_statistics(BatchNormStatistics::Running);
    loaded.freeze(..2).unwrap();
    let body = tensors(&loaded)[..4].to_vec();
    let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.1, ..SgdConfig::default() }).unwrap();
    let before = loaded.loss(&x, &loss, &y[..]).unwrap();
    for _ in 0..20 {
        // The step's loss is the inference loss of the same weights.
        let inference = f64::from(loaded.loss(&x, &loss, &y[..]).unwrap());
        let report = loaded.train_step(&x, &loss, &y[..], &mut sgd).unwrap();
        assert_eq!(report.loss, inference, "step {}", report.step);
    }
    assert!(loaded.loss(&x, &loss, &y[..]).unwrap() < before);
    assert_eq!(tensors(&loaded)[..4], body[..], "the frozen body and its running statistics");
    // One sample is a batch it can train on now.
    loaded.train_step(&x.columns(0, 1).into_owned(), &loss, &y[..1], &mut sgd).unwrap();
    assert_eq!(tensors(&loaded)[..4], body[..]);
}

#[test]
fn model_files_keep_the_training_statistics_and_older_files_load_as_batch() {
    let mut n = net(15);
    let bn = n.modules_mut()[1].downcast_mut::<BatchNorm<f32>>().unwrap();
    bn.set_training_statistics(BatchNormStatistics::Running);
    let bytes = weights::to_bytes(&n).unwrap();
    let load = |bytes: &[u8]| Network::<f32>::from_bytes_with(bytes, "<memory>", &|_, _, _| Ok(None));
    let statistics =
        |net: &Network<f32>| net.modules()[1].downcast_ref::<BatchNorm<f32>>().unwrap().training_statistics();
    assert_eq!(statistics(&load(&bytes).unwrap()), BatchNormStatistics::Running);
    assert!(n.to_string().contains("training_statistics: running"), "{n}");

    // The header holds the architecture as a JSON string inside the JSON header: its quotes
    // are escaped. Blanking the key (same length, so the header's size stays right) gives the
    // file a version before the setting wrote.
    let key = br#",\"training_statistics\":\"running\""#;
    let at = bytes.windows(key.len()).position(|w| w == key).expect("the setting in the header");
    let mut older = bytes.clone();
    older[at..at + key.len()].fill(b' ');
    assert_eq!(statistics(&load(&older).unwrap()), BatchNormStatistics::Batch);
    let mut bad = bytes.clone();
    let value = br#"\"running\""#;
    let v = at + key.len() - value.len();
    bad[v..v + value.len()].copy_from_slice(br#"\"sideway\""#);
    let e = load(&bad).unwrap_err().to_string();
    assert!(e.contains("training_statistics is \"sideway\""), "{e}");
}

/// The backward pass follows the statistics its forward pass used, even when the setting
/// changes in between.
#[test]
fn the_backward_pass_follows_its_forward_pass() {
    let x = batch();
    let dy = random(3, 4, 16, 1.0);
    let gradients = |switch: bool| {
        let mut n = norm();
        let mut y = DMatrix::zeros(3, 4);
        n.forward_train(&x, &mut y, &mut TrainContext::new(0, 1, 0));
        if switch {
            n.set_training_statistics(BatchNormStatistics::Running);
        }
        let mut dx = DMatrix::zeros(3, 4);
        n.backward(&x, &y, &dy, Some(&mut dx));
        let mut grads = vec![dx.as_slice().to_vec()];
        n.visit_parameters(&mut |p| grads.push(p.grad().as_slice().to_vec()));
        grads
    };
    assert_eq!(gradients(true), gradients(false));
}
