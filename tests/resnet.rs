//! `Network::resnet`: the modules it builds, in order, against the same network built by
//! hand from the same draws; its gradients by finite differences (BatchNorm, dropout in both
//! places, L2); the zero-initialized block outputs; model files; bad settings; a run that
//! learns.

use feedforward::gradcheck::{self, Config};
use feedforward::{
    Activation, Adam, BatchNorm, Dropout, Error, Init, Layer, MeanSquaredError, Network, Normalization,
    ResNetConfig, Residual,
};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

mod common;
use common::tensors;

/// Gradient checks: f64, central differences, error `|a − n| / max(|a|, |n|, 1e-4)` at most this.
const BOUND: f64 = 1e-6;

fn random<T: feedforward::Float>(rows: usize, cols: usize, seed: u64) -> DMatrix<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    DMatrix::from_fn(rows, cols, |_, _| T::lit(rng.random_range(-1.0..1.0)))
}

/// The kinds of a network's modules, a block's as `Residual[its body's kinds]`.
fn kinds<T: feedforward::Float>(net: &Network<T>) -> Vec<String> {
    net.modules()
        .iter()
        .map(|m| match m.downcast_ref::<Residual<T>>() {
            Some(block) => format!("Residual[{}]", kinds(block.body()).join(" ")),
            None => m.kind().to_string(),
        })
        .collect()
}

#[test]
fn the_modules_are_the_papers_in_order() {
    let mut rng = StdRng::seed_from_u64(0);
    let config = ResNetConfig { blocks: 2, width: 6, hidden: 10, ..ResNetConfig::default() };
    let net = Network::<f32>::resnet(4, 3, config, &mut rng).unwrap();
    let block = "Residual[BatchNorm Layer Layer]";
    assert_eq!(kinds(&net), ["Layer", block, block, "BatchNorm", "Relu", "Layer"]);
    assert_eq!((net.input_rows(), net.output_rows()), (4, 3));
    // Input layer, two blocks (norm, two layers), the head's norm and layer.
    let per_block = 2 * 6 + (6 * 10 + 10) + (10 * 6 + 6);
    assert_eq!(net.parameter_count(), (4 * 6 + 6) + 2 * per_block + 2 * 6 + (6 * 3 + 3));
    // No dropout: no seed drawn.
    let mut twin = StdRng::seed_from_u64(0);
    let again = Network::<f32>::resnet(4, 3, config, &mut twin).unwrap();
    assert_eq!(rng.next_u64(), twin.next_u64());
    assert_eq!(tensors(&again), tensors(&net));

    let dropping = ResNetConfig {
        hidden_dropout: 0.2,
        residual_dropout: 0.1,
        normalization: Normalization::LayerNorm,
        activation: Activation::Gelu,
        ..config
    };
    let net = Network::<f32>::resnet(4, 3, dropping, &mut rng).unwrap();
    let block = "Residual[LayerNorm Layer Dropout Layer Dropout]";
    assert_eq!(kinds(&net), ["Layer", block, block, "LayerNorm", "Gelu", "Layer"]);
    let plain = ResNetConfig {
        blocks: 1,
        normalization: Normalization::None,
        activation: Activation::Identity,
        ..config
    };
    let net = Network::<f32>::resnet(4, 3, plain, &mut rng).unwrap();
    assert_eq!(kinds(&net), ["Layer", "Residual[Layer Layer]", "Layer"]);
    let none = ResNetConfig { blocks: 0, ..config };
    assert_eq!(
        kinds(&Network::<f32>::resnet(4, 3, none, &mut rng).unwrap()),
        ["Layer", "BatchNorm", "Relu", "Layer"]
    );
}

/// `ResNetConfig { blocks: 2, hidden_dropout: 0.2, residual_dropout: 0.1, .. }` of widths 5
/// and 7, by hand from the same draws: each layer in the documented order, then the seed.
fn by_hand(inputs: usize, outputs: usize, rng: &mut StdRng) -> Network<f64> {
    let mut net = Network::new(inputs).push(Layer::new(inputs, 5, Init::He, rng)).unwrap();
    for _ in 0..2 {
        let body = Network::new(5)
            .push(BatchNorm::new(5).unwrap())
            .and_then(|n| n.push(Layer::new(5, 7, Init::He, rng).with_activation(Activation::Tanh)))
            .and_then(|n| n.push(Dropout::new(0.2)?))
            .and_then(|n| n.push(Layer::new(7, 5, Init::XavierNormal, rng)))
            .and_then(|n| n.push(Dropout::new(0.1)?))
            .unwrap();
        net = net.push(Residual::new(body).unwrap()).unwrap();
    }
    let net = net
        .push(BatchNorm::new(5).unwrap())
        .and_then(|n| n.push(feedforward::Tanh))
        .and_then(|n| n.push(Layer::new(5, outputs, Init::He, rng)))
        .unwrap();
    let seed = rng.next_u64();
    net.with_seed(seed)
}

fn dropping_config() -> ResNetConfig {
    ResNetConfig {
        blocks: 2,
        width: 5,
        hidden: 7,
        activation: Activation::Tanh,
        hidden_dropout: 0.2,
        residual_dropout: 0.1,
        // Drawn, so that the gradient reaches every layer of a block from the first step.
        block_output_init: Init::XavierNormal,
        ..ResNetConfig::default()
    }
}

#[test]
fn it_is_the_network_built_by_hand_from_the_same_draws_and_its_gradients_check() {
    let net = Network::<f64>::resnet(3, 2, dropping_config(), &mut StdRng::seed_from_u64(1)).unwrap();
    let hand = by_hand(3, 2, &mut StdRng::seed_from_u64(1));
    assert_eq!(tensors(&net), tensors(&hand));
    assert_eq!(net.seed(), hand.seed());
    let x = random::<f64>(3, 9, 2);
    assert_eq!(net.output(&x).unwrap(), hand.output(&x).unwrap());

    // Every parameter, through both BatchNorm kinds of pass and the dropout masks replayed.
    let mut net = net.with_l2(1e-2).unwrap();
    let y = random::<f64>(2, 9, 3);
    let report = gradcheck::check_network(&mut net, &x, &MeanSquaredError, &y, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
    assert_eq!(report.checked, net.parameter_count());
}

#[test]
fn by_default_every_block_starts_as_the_identity() {
    let config = ResNetConfig { width: 6, hidden: 12, blocks: 3, ..ResNetConfig::default() };
    let net = Network::<f64>::resnet(4, 2, config, &mut StdRng::seed_from_u64(4)).unwrap();
    // The blocks add nothing: the network is its input layer and its head.
    let modules = net.modules();
    let mut ends = Network::new(4);
    ends.push_boxed(modules[0].clone_box()).unwrap();
    for m in &modules[4..] {
        ends.push_boxed(m.clone_box()).unwrap();
    }
    let x = random::<f64>(4, 5, 5);
    assert_eq!(net.output(&x).unwrap(), ends.output(&x).unwrap());
    // Each block's last layer is zero, its first drawn.
    for m in &modules[1..4] {
        let body = m.downcast_ref::<Residual<f64>>().unwrap().body();
        let [first, last] =
            [1, 2].map(|i| feedforward::module::parameters_of(body.modules()[i].as_ref())[0].value().clone());
        assert!(last.iter().all(|&w| w == 0.0));
        assert!(first.iter().all(|&w| w != 0.0));
    }
}

#[test]
fn bad_settings_are_errors() {
    let mut rng = StdRng::seed_from_u64(6);
    for (inputs, outputs, width, hidden) in [(0, 2, 8, 8), (3, 0, 8, 8), (3, 2, 0, 8), (3, 2, 8, 0)] {
        let config = ResNetConfig { width, hidden, ..ResNetConfig::default() };
        let error = Network::<f32>::resnet(inputs, outputs, config, &mut rng).unwrap_err();
        assert!(matches!(error, Error::ShapeMismatch { .. }), "{error}");
        assert!(error.to_string().contains("resnet sizes"), "{error}");
    }
    for (hidden_dropout, residual_dropout) in [(1.0, 0.0), (0.0, -0.1), (f64::NAN, 0.0)] {
        let config = ResNetConfig { hidden_dropout, residual_dropout, ..ResNetConfig::default() };
        let error = Network::<f32>::resnet(3, 2, config, &mut rng).unwrap_err();
        assert!(matches!(error, Error::InvalidHyperparameter { name: "dropout probability", .. }), "{error}");
    }
}

#[test]
fn a_trained_resnet_is_saved_and_loaded_whole() {
    let mut net = Network::<f32>::resnet(
        3,
        2,
        ResNetConfig { width: 8, hidden: 16, ..dropping_config() },
        &mut StdRng::seed_from_u64(7),
    )
    .unwrap();
    let (x, y) = (random::<f32>(3, 32, 8), random::<f32>(2, 32, 9));
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    for _ in 0..5 {
        net.train_step(&x, &MeanSquaredError, &y, &mut adam).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet.safetensors");
    net.save(&path).unwrap();
    let loaded = Network::<f32>::load(&path).unwrap();
    assert_eq!(kinds(&loaded), kinds(&net));
    assert_eq!(tensors(&loaded), tensors(&net));
    assert_eq!(loaded.output(&x).unwrap(), net.output(&x).unwrap());
}

#[test]
fn it_learns_a_smooth_function_of_ten_inputs() {
    // Friedman's first function (10 inputs, 5 of them used), scaled to a unit spread: 512
    // points to train on, 512 others to score.
    let mut rng = StdRng::seed_from_u64(10);
    let x = DMatrix::<f32>::from_fn(10, 1024, |_, _| rng.random::<f32>());
    let y = DMatrix::<f32>::from_fn(1, 1024, |_, j| {
        let c = |i: usize| f64::from(x[(i, j)]);
        let f = 10.0 * (std::f64::consts::PI * c(0) * c(1)).sin()
            + 20.0 * (c(2) - 0.5).powi(2)
            + 10.0 * c(3)
            + 5.0 * c(4);
        ((f - 14.4) / 5.0) as f32
    });
    let (train_x, test_x) = (x.columns(0, 512).into_owned(), x.columns(512, 512).into_owned());
    let (train_y, test_y) = (y.columns(0, 512).into_owned(), y.columns(512, 512).into_owned());
    let config = ResNetConfig { width: 32, hidden: 64, ..ResNetConfig::default() };
    let mut net = Network::<f32>::resnet(10, 1, config, &mut StdRng::seed_from_u64(11)).unwrap();
    let variance = test_y.map(|v| v * v).mean() - test_y.mean().powi(2);
    let mut adam = Adam::with_learning_rate(3e-3).unwrap();
    for _ in 0..300 {
        net.train_step(&train_x, &MeanSquaredError, &train_y, &mut adam).unwrap();
    }
    let mse = net.loss(&test_x, &MeanSquaredError, &test_y).unwrap();
    // A constant would leave the variance; the network explains 90% of it on unseen points.
    assert!(mse < 0.1 * variance, "test MSE {mse} of a variance {variance}");
}

#[test]
fn the_summary_lists_each_blocks_body_under_it_in_aligned_columns() {
    let config =
        ResNetConfig { blocks: 1, width: 4, hidden: 8, hidden_dropout: 0.5, ..ResNetConfig::default() };
    let mut rng = StdRng::seed_from_u64(12);
    let net = Network::<f32>::resnet(3, 2, config, &mut rng).unwrap();
    // A block inside a block, as deep as the summary goes here.
    let inner = Network::new(4).push(Residual::mlp(4, 8, Activation::Relu, &mut rng).unwrap()).unwrap();
    let net = net.insert(2, Residual::new(inner).unwrap()).unwrap();
    let expected = "\
Network (f32): 3 inputs → 2 outputs, 194 parameters
         module            rows  parameters  settings
  0      Layer            3 → 4          16  activation: identity, bias: true
  1      Residual         4 → 4          84
  1.0      BatchNorm      4 → 4           8  eps: 0.00001, features: 4, momentum: 0.1, training_statistics: batch
  1.1      Layer          4 → 8          40  activation: relu, bias: true
  1.2      Dropout        8 → 8           0  probability: 0.5
  1.3      Layer          8 → 4          36  activation: identity, bias: true
  2      Residual         4 → 4          76
  2.0      Residual       4 → 4          76
  2.0.0      Layer        4 → 8          40  activation: relu, bias: true
  2.0.1      Layer        8 → 4          36  activation: identity, bias: true
  3      BatchNorm        4 → 4           8  eps: 0.00001, features: 4, momentum: 0.1, training_statistics: batch
  4      Relu             4 → 4           0
  5      Layer            4 → 2          10  activation: identity, bias: true
";
    assert_eq!(net.to_string(), expected);
}

#[test]
fn append_puts_an_embedding_in_front_of_a_resnet() {
    let mut rng = StdRng::seed_from_u64(13);
    // A price, then a user id of 20 users embedded in 3 rows: 1 + 3 rows into the ResNet.
    let embed = feedforward::Embedding::<f64>::new(
        2,
        &[feedforward::EmbeddingRow { row: 1, categories: 20, dims: 3 }],
        &mut rng,
    )
    .unwrap();
    let config = ResNetConfig { width: 6, hidden: 8, hidden_dropout: 0.3, ..ResNetConfig::default() };
    let resnet = Network::<f64>::resnet(4, 2, config, &mut rng).unwrap();
    let front = Network::new(2).push(embed.clone()).unwrap().with_l2(1e-3).unwrap().with_seed(99);
    let net = front.append(resnet.clone()).unwrap();
    assert_eq!((net.input_rows(), net.output_rows(), net.modules().len()), (2, 2, 1 + 6));
    // Kept from the front: L2 and seed.
    assert_eq!((net.l2(), net.seed()), (1e-3, 99));
    let x = DMatrix::from_fn(2, 5, |r, j| if r == 0 { 0.1 * j as f64 } else { (3 * j) as f64 });
    let embedded = Network::new(2).push(embed).unwrap().output(&x).unwrap();
    assert_eq!(net.output(&x).unwrap(), resnet.output(&embedded).unwrap());

    // A tail that does not take the front's rows, or whose L2 would be lost.
    let error = Network::<f64>::new(2).append(resnet.clone()).unwrap_err();
    assert!(error.to_string().contains("appended network input"), "{error}");
    let penalized = resnet.with_l2(1e-2).unwrap();
    let error = Network::<f64>::new(4).append(penalized.clone()).unwrap_err();
    assert!(matches!(error, Error::InvalidHyperparameter { name: "appended network L2", .. }), "{error}");
    let same = Network::<f64>::new(4).with_l2(1e-2).unwrap().append(penalized).unwrap();
    assert_eq!(same.l2(), 1e-2);
}
