//! `LayerNorm`: its forward against the plain formula, its gradients by finite differences,
//! alone and in a network, its model file, its errors, and a deeper network that trains with it.

use feedforward::gradcheck::{self, Config};
use feedforward::train::{self, Batching, TrainConfig};
use feedforward::{
    Activation, Adam, AdamConfig, Error, Init, Layer, LayerNorm, MeanSquaredError, Module, Network,
    SoftmaxCrossEntropy, weights,
};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Gradient checks: f64, central differences, error `|a − n| / max(|a|, |n|, 1e-4)` at most this.
const BOUND: f64 = 1e-6;

fn random(rows: usize, cols: usize, seed: u64, scale: f64) -> DMatrix<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    DMatrix::from_fn(rows, cols, |_, _| scale * rng.random_range(-1.0..1.0))
}

/// A 5-feature LayerNorm with γ and β away from 1 and 0.
fn norm() -> LayerNorm<f64> {
    let mut n = LayerNorm::new(5).unwrap().with_eps(1e-3).unwrap();
    let (gain, shift) = (random(5, 1, 1, 1.0).add_scalar(1.5), random(5, 1, 2, 0.5));
    let mut parameters = (&mut n as &mut dyn Module<f64>).parameters_mut();
    parameters[0].value_mut().copy_from(&gain);
    parameters[1].value_mut().copy_from(&shift);
    n
}

#[test]
fn the_forward_pass_is_the_plain_formula() {
    let n = norm();
    let x = random(5, 7, 3, 4.0).add_scalar(10.0);
    let net = Network::new(5).push(n.clone()).unwrap();
    let y = net.output(&x).unwrap();
    for j in 0..7 {
        let col = x.column(j);
        let mean = col.sum() / 5.0;
        let variance = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 5.0;
        for i in 0..5 {
            let expected =
                n.gain().value()[i] * (x[(i, j)] - mean) / (variance + 1e-3).sqrt() + n.shift().value()[i];
            assert!((y[(i, j)] - expected).abs() < 1e-12, "({i}, {j}): {} vs {expected}", y[(i, j)]);
        }
    }
    // With γ = 1 and β = 0, each sample has mean 0 and variance var/(var + ε).
    let plain = Network::new(5).push(LayerNorm::new(5).unwrap()).unwrap().output(&x).unwrap();
    for j in 0..7 {
        let mean = plain.column(j).sum() / 5.0;
        assert!(mean.abs() < 1e-12, "sample {j}: mean {mean}");
    }
}

#[test]
fn gradients_check_alone_and_in_a_network() {
    let mut n = norm();
    let x = random(5, 6, 4, 2.0);
    let report = gradcheck::check_module(&mut n, &x, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");

    let mut rng = StdRng::seed_from_u64(5);
    let mut net = Network::new(3)
        .push(Layer::new(3, 5, Init::He, &mut rng))
        .unwrap()
        .push(norm())
        .unwrap()
        .push(Layer::new(5, 2, Init::He, &mut rng).with_activation(Activation::Tanh))
        .unwrap()
        .with_l2(1e-3)
        .unwrap();
    let x = random(3, 8, 6, 1.0);
    let targets = random(2, 8, 7, 0.8);
    let report =
        gradcheck::check_network(&mut net, &x, &MeanSquaredError, &targets, &Config::default()).unwrap();
    assert!(report.max_error <= BOUND, "{report}");
}

#[test]
fn a_model_file_carries_gain_shift_and_eps() {
    let mut rng = StdRng::seed_from_u64(8);
    let net = Network::<f32>::new(3)
        .push(Layer::new(3, 5, Init::He, &mut rng))
        .unwrap()
        .push(norm_f32())
        .unwrap()
        .push(Layer::new(5, 2, Init::He, &mut rng))
        .unwrap();
    let bytes = weights::to_bytes(&net).unwrap();
    let loaded = Network::<f32>::from_bytes_with(&bytes, "<memory>", &|_, _, _| Ok(None)).unwrap();
    let x = random(3, 4, 9, 1.0).map(|v| v as f32);
    assert_eq!(loaded.output(&x).unwrap(), net.output(&x).unwrap());
    let names: Vec<String> = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .names()
        .into_iter()
        .map(String::from)
        .collect();
    assert!(
        names.contains(&"layer1.weight".to_string()) && names.contains(&"layer1.bias".to_string()),
        "{names:?}"
    );
    assert_eq!(loaded.modules()[1].describe().unwrap()["eps"], 1e-3);
    assert_eq!(
        loaded.to_string().lines().nth(3).unwrap(),
        "  1  LayerNorm        5 → 5          10  eps: 0.001, features: 5"
    );

    // A header claiming more features than the file holds is an error, not an allocation.
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut arch: serde_json::Value =
        serde_json::from_str(&header.metadata().as_ref().unwrap()[weights::ARCHITECTURE_KEY]).unwrap();
    arch["modules"][1]["features"] = 4_000_000_000u64.into();
    let meta = [(weights::ARCHITECTURE_KEY.to_string(), arch.to_string())].into_iter().collect();
    let rewritten = safetensors::serialize(file.tensors(), Some(meta)).unwrap();
    let e = Network::<f32>::from_bytes_with(&rewritten, "edited", &|_, _, _| Ok(None)).unwrap_err();
    assert!(e.to_string().contains("do not fit"), "{e}");
}

fn norm_f32() -> LayerNorm<f32> {
    let mut n = LayerNorm::new(5).unwrap().with_eps(1e-3).unwrap();
    let source = norm();
    let mut parameters = (&mut n as &mut dyn Module<f32>).parameters_mut();
    parameters[0].value_mut().copy_from(&source.gain().value().map(|v| v as f32));
    parameters[1].value_mut().copy_from(&source.shift().value().map(|v| v as f32));
    n
}

#[test]
fn bad_settings_and_shapes_are_errors() {
    assert!(matches!(LayerNorm::<f32>::new(0), Err(Error::ShapeMismatch { .. })));
    for eps in [0.0, -1e-5, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                LayerNorm::<f32>::new(3).unwrap().with_eps(eps),
                Err(Error::InvalidHyperparameter { .. })
            ),
            "{eps}"
        );
    }
    let e = Network::new(4).push(LayerNorm::<f32>::new(3).unwrap()).unwrap_err();
    assert!(e.to_string().contains("3 rows") && e.to_string().contains("got 4 rows"), "{e}");
}

/// Blobs in 2-D whose second coordinate is a thousand times the first's scale; a 2-32-32-3
/// network with LayerNorm after each hidden layer learns them.
#[test]
fn a_deeper_network_trains_with_it() {
    let mut rng = StdRng::seed_from_u64(10);
    let labels: Vec<usize> = (0..600).map(|j| j % 3).collect();
    let centres = [(-1.0f32, -1000.0f32), (1.0, 0.0), (0.0, 1000.0)];
    let x = DMatrix::from_fn(2, 600, |i, j| {
        let c = centres[labels[j]];
        (if i == 0 { c.0 } else { c.1 }) + rng.random_range(-0.5f32..0.5) * if i == 0 { 1.0 } else { 1000.0 }
    });
    let mut init = StdRng::seed_from_u64(11);
    let mut net = Network::new(2)
        .push(Layer::new(2, 32, Init::He, &mut init))
        .unwrap()
        .push(LayerNorm::new(32).unwrap())
        .unwrap()
        .push(feedforward::Relu)
        .unwrap()
        .push(Layer::new(32, 32, Init::He, &mut init))
        .unwrap()
        .push(LayerNorm::new(32).unwrap())
        .unwrap()
        .push(feedforward::Relu)
        .unwrap()
        .push(Layer::new(32, 3, Init::He, &mut init))
        .unwrap();
    let mut adam = Adam::new(AdamConfig { learning_rate: 1e-2, ..AdamConfig::default() }).unwrap();
    let config = TrainConfig {
        epochs: 30,
        batching: Batching::Minibatch { size: 32, shuffle: true },
        ..TrainConfig::default()
    };
    let loss = SoftmaxCrossEntropy::new();
    train::fit(&mut net, &mut adam, &loss, train::Data::new(&x, &labels), &config, |_, _, _| {}).unwrap();
    let accuracy = net.accuracy(&x, &labels).unwrap();
    assert!(accuracy > 0.95, "training accuracy {accuracy}");
}
