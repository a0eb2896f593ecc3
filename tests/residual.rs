//! `Residual`: `y = x + body(x)` against the body's own output; its gradients by finite
//! differences (alone, and in a network with BatchNorm and Dropout in the body); model files
//! with nested blocks and a module of the caller's in a body; bad bodies; a rejected step; the
//! same run on any thread count; a deep stack of blocks that trains, further than as deep a
//! plain stack; inference into the network's buffers as shared inference.

use feedforward::gradcheck::{self, Config};
use feedforward::serde_json::{Map, Value};
use feedforward::train::{self, Batching, Data, TrainConfig};
use feedforward::{
    Activation, Adam, BatchNorm, Dropout, Error, Init, Layer, MeanSquaredError, Module, Network, Residual,
    Tanh,
};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

mod common;
use common::{Reject, tensors};

/// Gradient checks: f64, central differences, error `|a − n| / max(|a|, |n|, 1e-4)` at most this.
const BOUND: f64 = 1e-6;

fn random<T: feedforward::Float>(rows: usize, cols: usize, seed: u64) -> DMatrix<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    DMatrix::from_fn(rows, cols, |_, _| T::lit(rng.random_range(-1.0..1.0)))
}

/// `width → hidden → width`, a tanh between (smooth: no kink for the finite differences).
fn body<T: feedforward::Float>(width: usize, hidden: usize, rng: &mut StdRng) -> Network<T> {
    Network::new(width)
        .push(Layer::new(width, hidden, Init::He, rng).with_activation(Activation::Tanh))
        .and_then(|n| n.push(Layer::new(hidden, width, Init::He, rng)))
        .unwrap()
}

#[test]
fn the_output_is_the_input_plus_the_bodys_and_the_body_tensors_are_the_blocks() {
    let mut rng = StdRng::seed_from_u64(1);
    let inner = body::<f64>(3, 5, &mut rng);
    let block = Residual::new(inner.clone()).unwrap();
    let x = random(3, 7, 2);
    let alone = Network::new(3).push(block.clone()).unwrap();
    assert_eq!(alone.output(&x).unwrap(), &x + inner.output(&x).unwrap());
    assert_eq!(block.width(), 3);
    assert_eq!(block.body().modules().len(), 2);
    // The body's tensors, renamed by their module's number.
    let names: Vec<String> =
        feedforward::module::parameters_of(&block).iter().map(|p| p.name().to_string()).collect();
    assert_eq!(names, ["0.weight", "0.bias", "1.weight", "1.bias"]);
    assert_eq!(alone.parameter_count(), 3 * 5 + 5 + 5 * 3 + 3);
}

#[test]
fn gradients_check_alone_and_in_a_network_with_batch_norm_and_dropout_in_the_body() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut block = Residual::new(body::<f64>(3, 5, &mut rng)).unwrap();
    let report = gradcheck::check_module(&mut block, &random(3, 4, 4), &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
    // Every parameter entry and every input entry.
    assert_eq!(report.checked, 3 * 5 + 5 + 5 * 3 + 3 + 3 * 4);

    // Blocks in a network: one whose body normalizes and drops (the masks replayed through
    // the block's streams), then a block inside a block.
    let inner = Network::new(4)
        .push(Layer::new(4, 6, Init::He, &mut rng))
        .and_then(|n| n.push(BatchNorm::new(6)?))
        .and_then(|n| n.push(Tanh))
        .and_then(|n| n.push(Dropout::new(0.3)?))
        .and_then(|n| n.push(Layer::new(6, 4, Init::He, &mut rng)))
        .unwrap();
    let nested = Network::new(4).push(Residual::new(body(4, 3, &mut rng)).unwrap()).unwrap();
    let mut net = Network::new(2)
        .push(Layer::new(2, 4, Init::He, &mut rng))
        .and_then(|n| n.push(Residual::new(inner)?))
        .and_then(|n| n.push(Residual::new(nested)?))
        .and_then(|n| n.push(Layer::new(4, 1, Init::He, &mut rng)))
        .and_then(|n| n.with_l2(1e-2))
        .unwrap();
    let (x, y) = (random(2, 8, 5), random(1, 8, 6));
    let report = gradcheck::check_network(&mut net, &x, &MeanSquaredError, &y, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
    assert_eq!(report.checked, net.parameter_count());
}

#[test]
fn bad_bodies_and_widths_are_errors() {
    let mut rng = StdRng::seed_from_u64(7);
    assert!(matches!(Residual::<f32>::new(Network::new(3)), Err(Error::ShapeMismatch { .. })));
    let narrowing = Network::<f32>::new(3).push(Layer::new(3, 2, Init::He, &mut rng)).unwrap();
    let error = Residual::new(narrowing).unwrap_err();
    assert!(error.to_string().contains("residual body output"), "{error}");
    let penalized = body::<f32>(3, 4, &mut rng).with_l2(1e-3).unwrap();
    assert!(matches!(
        Residual::new(penalized),
        Err(Error::InvalidHyperparameter { name: "residual body L2", .. })
    ));
    let block = Residual::new(body::<f32>(3, 4, &mut rng)).unwrap();
    let error = Network::new(5).push(block).unwrap_err();
    assert!(error.to_string().contains("residual input"), "{error}");
}

/// Multiplies its input by 2: a module kind of the caller's, unknown to the crate.
#[derive(Clone, Debug)]
struct Double;

impl Module<f64> for Double {
    fn kind(&self) -> &'static str {
        "Double"
    }
    fn output_rows(&self, input_rows: usize) -> feedforward::Result<usize> {
        Ok(input_rows)
    }
    fn forward(&self, input: &DMatrix<f64>, output: &mut DMatrix<f64>) {
        output.copy_from(&(input * 2.0));
    }
    fn backward(
        &mut self,
        _: &DMatrix<f64>,
        _: &DMatrix<f64>,
        dy: &DMatrix<f64>,
        dx: Option<&mut DMatrix<f64>>,
    ) {
        if let Some(dx) = dx {
            dx.copy_from(&(dy * 2.0));
        }
    }
}

#[test]
fn model_files_keep_nested_blocks_and_ask_the_callers_builder_for_the_body() {
    let mut rng = StdRng::seed_from_u64(8);
    let with_norm = Network::new(4)
        .push(Layer::new(4, 4, Init::He, &mut rng))
        .and_then(|n| n.push(BatchNorm::new(4)?))
        .unwrap();
    let nested = Network::new(4).push(Residual::new(with_norm).unwrap()).unwrap();
    let mut net = Network::new(2)
        .push(Layer::new(2, 4, Init::He, &mut rng))
        .and_then(|n| n.push(Residual::new(nested)?))
        .and_then(|n| n.push(Residual::new(body(4, 8, &mut rng))?))
        .and_then(|n| n.push(Layer::new(4, 1, Init::He, &mut rng)))
        .unwrap();
    // Steps move BatchNorm's running statistics away from their start.
    let (x, y) = (random(2, 16, 9), random(1, 16, 10));
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    for _ in 0..3 {
        net.train_step(&x, &MeanSquaredError, &y, &mut adam).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("residual.safetensors");
    net.save(&path).unwrap();
    let loaded = Network::<f64>::load(&path).unwrap();
    assert_eq!(tensors(&loaded), tensors(&net));
    assert_eq!(loaded.output(&x).unwrap(), net.output(&x).unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<&str> = file.names();
    names.sort_unstable();
    assert!(names.contains(&"layer1.0.1.running_mean"), "{names:?}");
    assert!(names.contains(&"layer2.1.weight"), "{names:?}");

    // A module of the caller's in a body: the crate names it, and the caller's builder builds it.
    let custom = Network::new(2)
        .push(Residual::new(Network::new(2).push(Double).unwrap()).unwrap())
        .and_then(|n| n.push(Layer::new(2, 1, Init::He, &mut rng)))
        .unwrap();
    custom.save(&path).unwrap();
    let error = Network::<f64>::load(&path).unwrap_err();
    assert!(error.to_string().contains("body: module 0 (Double)"), "{error}");
    let builder = |kind: &str, _: &Map<String, Value>, _: usize| {
        Ok((kind == "Double").then(|| Box::new(Double) as Box<dyn Module<f64>>))
    };
    let loaded = Network::<f64>::load_with(&path, &builder).unwrap();
    assert_eq!(loaded.output(&x).unwrap(), custom.output(&x).unwrap());
}

/// The error `Network::load` gives for a saved network whose architecture `edit` rewrote: a
/// layer, then a block around two layers.
fn load_with_architecture(edit: impl Fn(&mut Value)) -> String {
    let mut rng = StdRng::seed_from_u64(40);
    let net = Network::<f64>::new(2)
        .push(Layer::new(2, 3, Init::He, &mut rng))
        .and_then(|n| n.push(Residual::new(body(3, 4, &mut rng))?))
        .unwrap();
    let bytes = feedforward::weights::to_bytes(&net).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let text = &header.metadata().as_ref().unwrap()[feedforward::weights::ARCHITECTURE_KEY];
    let mut arch: Value = feedforward::serde_json::from_str(text).unwrap();
    edit(&mut arch);
    let meta = [(feedforward::weights::ARCHITECTURE_KEY.to_string(), arch.to_string())].into_iter().collect();
    let rewritten = safetensors::serialize(file.tensors(), Some(meta)).unwrap();
    match Network::<f64>::from_bytes_with(&rewritten, "edited.safetensors", &|_, _, _| Ok(None)) {
        Err(e @ Error::Weights { .. }) => e.to_string(),
        other => panic!("expected a weights error, got {other:?}"),
    }
}

#[test]
fn a_model_file_with_a_bad_block_is_an_error_naming_it() {
    let err = load_with_architecture(|a| {
        a["modules"][1].as_object_mut().unwrap().remove("body");
    });
    assert!(err.contains("module 1 (Residual): no body"), "{err}");
    let err = load_with_architecture(|a| a["modules"][1]["body"]["modules"][1]["outputs"] = 2.into());
    assert!(err.contains("module 1 (Residual)") && err.contains("residual body output"), "{err}");
    let err = load_with_architecture(|a| a["modules"][1]["body"]["modules"][0]["kind"] = "Conv2d".into());
    assert!(err.contains("module 1 (Residual): body: module 0 (Conv2d)"), "{err}");
    let err = load_with_architecture(|a| a["modules"][1]["body"]["input_rows"] = 5.into());
    assert!(err.contains("module 1 (Residual)"), "{err}");
}

#[test]
fn inference_into_buffers_gives_the_outputs_of_shared_inference() {
    // A block with BatchNorm and Dropout in its body, a block in a block; trained a few steps
    // so that the running statistics and the training buffers hold something.
    let mut net = dropping(30);
    let nested =
        Network::new(8).push(Residual::new(body(8, 4, &mut StdRng::seed_from_u64(31))).unwrap()).unwrap();
    net = net.insert(2, Residual::new(nested).unwrap()).unwrap();
    let (x, y) = (random::<f32>(2, 40, 32), random::<f32>(1, 40, 33));
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    for _ in 0..3 {
        net.train_step(&x, &MeanSquaredError, &y, &mut adam).unwrap();
    }
    for batch in [40, 7, 40] {
        let x = random::<f32>(2, batch, 34 + batch as u64);
        let shared = net.output(&x).unwrap();
        assert_eq!(net.forward(&x).unwrap(), &shared, "batch {batch}");
    }
    // A pass into the buffers between steps changes nothing of the training.
    let mut twin = net.clone();
    net.forward(&x).unwrap();
    net.train_step(&x, &MeanSquaredError, &y, &mut adam.clone()).unwrap();
    twin.train_step(&x, &MeanSquaredError, &y, &mut adam).unwrap();
    assert_eq!(tensors(&net), tensors(&twin));
}

#[test]
fn a_rejected_step_leaves_the_body_alone_and_an_accepted_one_moves_its_statistics() {
    let mut rng = StdRng::seed_from_u64(11);
    let inner = Network::new(3)
        .push(Layer::new(3, 3, Init::He, &mut rng))
        .and_then(|n| n.push(BatchNorm::new(3)?))
        .unwrap();
    let mut net = Network::new(3)
        .push(Residual::new(inner).unwrap())
        .and_then(|n| n.push(Layer::new(3, 1, Init::He, &mut rng)))
        .unwrap();
    let (x, y) = (random(3, 10, 12), random(1, 10, 13));
    let before = tensors(&net);
    assert!(matches!(net.train_step(&x, &MeanSquaredError, &y, &mut Reject), Err(Error::NonFinite { .. })));
    assert_eq!(tensors(&net), before);
    // A batch of one: BatchNorm in the body refuses it, through the block.
    let one = net.train_step(
        &x.columns(0, 1).into_owned(),
        &MeanSquaredError,
        &y.columns(0, 1).into_owned(),
        &mut Reject,
    );
    assert!(matches!(one, Err(Error::ShapeMismatch { .. })), "{one:?}");
    net.train_step(&x, &MeanSquaredError, &y, &mut Adam::with_learning_rate(1e-2).unwrap()).unwrap();
    let after = tensors(&net);
    // Tensors 4 and 5: the body's BatchNorm's running mean and variance.
    assert_ne!(after[4], before[4]);
    assert_ne!(after[5], before[5]);
}

#[test]
fn the_same_run_on_any_thread_count() {
    let run = |threads: usize| {
        feedforward::linalg::set_threads(threads);
        let mut rng = StdRng::seed_from_u64(14);
        let inner = Network::<f32>::new(64)
            .push(Layer::new(64, 128, Init::He, &mut rng).with_activation(Activation::Relu))
            .and_then(|n| n.push(Dropout::new(0.2)?))
            .and_then(|n| n.push(Layer::new(128, 64, Init::He, &mut rng)))
            .unwrap();
        let mut net = Network::new(8)
            .push(Layer::new(8, 64, Init::He, &mut rng))
            .and_then(|n| n.push(Residual::new(inner)?))
            .and_then(|n| n.push(Layer::new(64, 2, Init::He, &mut rng)))
            .unwrap()
            .with_seed(3);
        let (x, y) = (random::<f32>(8, 1024, 15), random::<f32>(2, 1024, 16));
        let mut adam = Adam::with_learning_rate(1e-3).unwrap();
        for _ in 0..3 {
            net.train_step(&x, &MeanSquaredError, &y, &mut adam).unwrap();
        }
        feedforward::linalg::set_threads(0);
        tensors(&net)
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

/// 2 → 8, a block around 8 → 16 BatchNorm ReLU Dropout → 8, then → 1.
fn dropping(seed: u64) -> Network<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let inner = Network::new(8)
        .push(Layer::new(8, 16, Init::He, &mut rng))
        .and_then(|n| n.push(BatchNorm::new(16)?))
        .and_then(|n| n.push(feedforward::Relu))
        .and_then(|n| n.push(Dropout::new(0.3)?))
        .and_then(|n| n.push(Layer::new(16, 8, Init::He, &mut rng)))
        .unwrap();
    Network::new(2)
        .push(Layer::new(2, 8, Init::He, &mut rng))
        .and_then(|n| n.push(Residual::new(inner)?))
        .and_then(|n| n.push(Layer::new(8, 1, Init::He, &mut rng)))
        .unwrap()
        .with_seed(seed)
}

#[test]
fn a_run_stopped_and_resumed_ends_with_the_same_bits_as_one_never_stopped() {
    let (x, y) = (random::<f32>(2, 96, 20), random::<f32>(1, 96, 21));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ckpt");
    let config = TrainConfig {
        epochs: 4,
        batching: Batching::Minibatch { size: 16, shuffle: true },
        checkpoint: Some(train::Checkpointing::new(&path)),
        averaging: Some(train::Averaging::Exponential { decay: 0.9 }),
        ..TrainConfig::default()
    };
    let fit = |net: &mut Network<f32>, config: &TrainConfig, stop_after: usize| {
        let mut adam = Adam::with_learning_rate(1e-2).unwrap();
        train::fit(net, &mut adam, &MeanSquaredError, Data::new(&x, &y), config, |event, _, _| match event {
            train::Event::Epoch(e) if e.epoch == stop_after => train::Flow::Stop,
            _ => train::Flow::Continue,
        })
        .unwrap();
    };
    let mut straight = dropping(5);
    fit(&mut straight, &config, 0);
    let mut stopped = dropping(5);
    fit(&mut stopped, &config, 2);
    let mut resumed = dropping(6);
    fit(&mut resumed, &TrainConfig { resume: Some(path.clone()), ..config.clone() }, 0);
    assert_eq!(tensors(&resumed), tensors(&straight));
    assert_ne!(tensors(&stopped), tensors(&straight));
}

/// `depth` hidden stages of width 16 between a 2 → 16 and a 16 → 1 layer: two ReLU layers
/// each, or a block of two layers each (`Residual::mlp`: 16 → 16 ReLU → 16, starting as the
/// identity).
fn deep(depth: usize, residual: bool, seed: u64) -> Network<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut net = Network::new(2).push(Layer::new(2, 16, Init::He, &mut rng)).unwrap();
    for _ in 0..depth {
        net = if residual {
            net.push(Residual::mlp(16, 16, Activation::Relu, &mut rng).unwrap()).unwrap()
        } else {
            net.push(Layer::new(16, 16, Init::He, &mut rng).with_activation(Activation::Relu))
                .and_then(|n| {
                    n.push(Layer::new(16, 16, Init::He, &mut rng).with_activation(Activation::Relu))
                })
                .unwrap()
        };
    }
    net.push(Layer::new(16, 1, Init::He, &mut rng)).unwrap()
}

#[test]
fn a_deep_stack_of_blocks_trains() {
    // A ring: the target is the distance from the origin.
    let x = random::<f32>(2, 512, 17);
    let y = DMatrix::from_fn(1, 512, |_, j| x.column(j).norm());
    let loss = |residual: bool| {
        let mut net = deep(16, residual, 18);
        let config = TrainConfig {
            epochs: 30,
            batching: Batching::Minibatch { size: 64, shuffle: true },
            ..TrainConfig::default()
        };
        let mut adam = Adam::with_learning_rate(1e-3).unwrap();
        train::fit(&mut net, &mut adam, &MeanSquaredError, Data::new(&x, &y), &config, |_, _, _| {}).unwrap();
        net.loss(&x, &MeanSquaredError, &y).unwrap()
    };
    let (plain, residual) = (loss(false), loss(true));
    eprintln!("32 plain layers: {plain:.5}; 16 blocks of two: {residual:.5}");
    assert!(residual < 2e-3, "{residual}");
    assert!(residual < plain / 4.0, "{residual} vs {plain}");
}
