//! Every activation: its function against a plain formula, its gradient by finite differences
//! (as a module and fused into a layer, with and without bias), fused and module giving the
//! same bits, extreme inputs, and model files.

use feedforward::gradcheck::{self, Config};
use feedforward::{
    Activation, ActivationFunction, Float, Gelu, Init, Layer, LeakyRelu, Module, Network, Relu, Sigmoid,
    Silu, Tanh, TrainContext,
};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// f64, central differences with h = 1e-5, error `|a − n| / max(|a|, |n|, 1e-4)` at most this.
const BOUND: f64 = 1e-6;

fn every_activation() -> [Activation; 7] {
    [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(LeakyRelu::new(0.1).unwrap()),
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::Silu,
    ]
}

/// The activation as a module of its own (`None` for the identity).
fn module(activation: Activation) -> Option<Box<dyn Module<f64>>> {
    let module = activation.module::<f64>();
    // Each module is its activation: same name, same kind.
    if let Some(m) = &module {
        assert_eq!(m.kind().to_lowercase(), activation.name().replace('_', ""), "{activation:?}");
    }
    module
}

fn random_matrix<T: Float>(rows: usize, cols: usize, rng: &mut StdRng) -> DMatrix<T> {
    DMatrix::from_fn(rows, cols, |_, _| T::lit(rand::RngExt::random_range(rng, -2.0..2.0)))
}

#[test]
fn each_function_matches_its_plain_formula() {
    let gelu =
        |z: f64| 0.5 * z * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (z + 0.044715 * z.powi(3))).tanh());
    for z in [-3.0, -0.7, -1e-3, 0.4, 2.5] {
        let close = |a: f64, b: f64| assert!((a - b).abs() <= 1e-15 * b.abs().max(1.0), "{z}: {a} vs {b}");
        close(Relu.f(z), z.max(0.0));
        close(LeakyRelu::new(0.2).unwrap().f(z), if z > 0.0 { z } else { 0.2 * z });
        close(Tanh.f(z), z.tanh());
        close(Sigmoid.f(z), 1.0 / (1.0 + (-z).exp()));
        close(Gelu.f(z), gelu(z));
        close(Silu.f(z), z / (1.0 + (-z).exp()));
    }
    assert_eq!(LeakyRelu::default().slope(), 0.01);
    assert!(LeakyRelu::new(-0.1).is_err() && LeakyRelu::new(f64::NAN).is_err());
}

#[test]
fn extreme_inputs_give_finite_values_and_derivatives() {
    for z in [-1e4f32, -50.0, 50.0, 1e4, 1e30] {
        for (name, y, d) in [
            ("sigmoid", Sigmoid.f(z), Sigmoid.derivative(Sigmoid.f(z))),
            ("tanh", Tanh.f(z), Tanh.derivative(Tanh.f(z))),
            ("gelu", Gelu.f(z), Gelu.derivative(z)),
            ("silu", Silu.f(z), Silu.derivative(z)),
        ] {
            assert!(y.is_finite() && d.is_finite(), "{name}({z}) = {y}, f' = {d}");
        }
    }
    assert_eq!((Sigmoid.f(-1e4f32), Sigmoid.f(1e4f32)), (0.0, 1.0));
    assert_eq!((Gelu.derivative(-1e30f32), Gelu.derivative(1e30f32)), (0.0, 1.0));
    assert_eq!((Silu.derivative(-1e30f32), Silu.derivative(1e30f32)), (0.0, 1.0));
    assert_eq!((Silu.f(-1e4f32), Silu.f(1e4f32)), (0.0, 1e4));
}

/// Inputs kept at least 0.05 from the kink at 0 (ReLU, LeakyReLU), far beyond h = 1e-5.
fn off_the_kink(x: DMatrix<f64>) -> DMatrix<f64> {
    x.map(|v| if v >= 0.0 { v + 0.05 } else { v - 0.05 })
}

#[test]
fn each_module_gradient_checks() {
    let mut rng = StdRng::seed_from_u64(1);
    for activation in every_activation() {
        let Some(mut m) = module(activation) else { continue };
        let x = off_the_kink(random_matrix(7, 5, &mut rng));
        let report = gradcheck::check_module(m.as_mut(), &x, &Config::default()).unwrap();
        assert_eq!(report.checked, 35);
        assert!(report.max_error <= BOUND, "{activation:?}: {report}");
    }
}

fn layer<T: Float>(bias: bool, activation: Activation, rng: &mut StdRng) -> Layer<T> {
    let init = Init::normal(0.6, 0.5).unwrap();
    let layer = if bias { Layer::new(6, 5, init, rng) } else { Layer::without_bias(6, 5, init, rng) };
    layer.with_activation(activation)
}

/// The pre-activations `Wᵀx + b`, computed here.
fn pre_activations(layer: &Layer<f64>, x: &DMatrix<f64>) -> DMatrix<f64> {
    let mut z = layer.weight().transpose() * x;
    if let Some(b) = layer.bias() {
        z.column_iter_mut().for_each(|mut col| col += b.column(0));
    }
    z
}

#[test]
fn each_fused_layer_gradient_checks_with_and_without_bias() {
    for activation in every_activation() {
        for bias in [true, false] {
            // Draws until every pre-activation is at least 1e-3 from 0 (checked, not assumed).
            let (mut l, x) = (1..100)
                .map(|seed| {
                    let mut rng = StdRng::seed_from_u64(seed);
                    let l = layer(bias, activation, &mut rng);
                    let x = random_matrix(6, 7, &mut rng);
                    (l, x)
                })
                .find(|(l, x)| pre_activations(l, x).iter().all(|z| z.abs() > 1e-3))
                .expect("a draw clear of the kink");
            let report = gradcheck::check_module(&mut l, &x, &Config::default()).unwrap();
            assert_eq!(report.checked, 30 + if bias { 5 } else { 0 } + 42);
            assert!(report.max_error <= BOUND, "{activation:?}, bias {bias}: {report}");
        }
    }
}

/// How the fused layer's forward pass runs before its backward pass.
#[derive(Clone, Copy, Debug)]
enum FusedPass {
    /// `forward_train`, which keeps `f'(z)` for GELU and SiLU.
    Training,
    /// The plain `forward`: backward must recompute `z`.
    Inference,
    /// `forward_train` and backward on another batch, then the plain `forward`: what the
    /// first backward used must not serve the second.
    InferenceAfterTraining,
}

/// A fused layer and `Layer → module` compute the same bits, forward and backward, with and
/// without a bias, in `f32` and `f64`, whichever forward pass came before the backward one.
#[test]
fn fused_and_module_give_the_same_bits() {
    for activation in every_activation() {
        for bias in [true, false] {
            for pass in [FusedPass::Training, FusedPass::Inference, FusedPass::InferenceAfterTraining] {
                same_bits::<f32>(activation, bias, pass);
                same_bits::<f64>(activation, bias, pass);
            }
        }
    }
}

fn same_bits<T: Float>(activation: Activation, bias: bool, pass: FusedPass) {
    let Some(mut m) = activation.module::<T>() else { return };
    let mut rng = StdRng::seed_from_u64(7);
    let mut fused = layer::<T>(bias, activation, &mut rng);
    let mut plain = fused.clone().with_activation(Activation::Identity);
    // A batch big enough to be cut into blocks on every thread.
    let x = random_matrix::<T>(6, 9000, &mut rng);
    let dy = random_matrix::<T>(5, 9000, &mut rng);
    let (mut y_fused, mut z, mut y) =
        (DMatrix::zeros(5, 9000), DMatrix::zeros(5, 9000), DMatrix::zeros(5, 9000));
    let (mut dx_fused, mut dz, mut dx) =
        (DMatrix::zeros(6, 9000), DMatrix::zeros(5, 9000), DMatrix::zeros(6, 9000));
    let context = &mut TrainContext::new(0, 1, 0);
    match pass {
        FusedPass::Training => fused.forward_train(&x, &mut y_fused, context),
        FusedPass::Inference => fused.forward(&x, &mut y_fused),
        FusedPass::InferenceAfterTraining => {
            let other = x.map(|v| T::lit(1.5) - v);
            fused.forward_train(&other, &mut y_fused, context);
            fused.backward(&other, &y_fused, &dy, Some(&mut dx_fused));
            fused.forward(&x, &mut y_fused);
        }
    }
    let what = format!("{activation:?}, bias {bias}, {pass:?}, {}", std::any::type_name::<T>());
    plain.forward(&x, &mut z);
    m.forward(&z, &mut y);
    assert_eq!(y_fused, y, "forward, {what}");
    fused.backward(&x, &y_fused, &dy, Some(&mut dx_fused));
    m.backward(&z, &y, &dy, Some(&mut dz));
    plain.backward(&x, &z, &dz, Some(&mut dx));
    assert_eq!(dx_fused, dx, "input gradient, {what}");
    let grads = |l: &Layer<T>| {
        feedforward::module::parameters_of(l).iter().map(|p| p.grad().clone()).collect::<Vec<_>>()
    };
    assert_eq!(grads(&fused), grads(&plain), "parameter gradients, {what}");
}

#[test]
fn every_activation_survives_a_model_file_fused_and_as_a_module() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    for activation in every_activation() {
        let mut net = Network::<f64>::new(6).push(layer(true, activation, &mut rng)).unwrap();
        if let Some(m) = module(activation) {
            net.push_boxed(m).unwrap();
        }
        let path = dir.path().join(format!("{}.safetensors", activation.name()));
        net.save(&path).unwrap();
        let back = Network::<f64>::load(&path).unwrap();
        let x = random_matrix(6, 4, &mut rng);
        assert_eq!(back.output(&x).unwrap(), net.output(&x).unwrap(), "{activation:?}");
        assert_eq!(format!("{:?}", back.modules()), format!("{:?}", net.modules()), "{activation:?}");
    }
}

#[test]
fn names_parse_back() {
    for activation in every_activation() {
        let text = match activation {
            Activation::LeakyRelu(l) => format!("leaky_relu:{}", l.slope()),
            other => other.name().to_string(),
        };
        assert_eq!(text.parse::<Activation>().unwrap(), activation);
    }
    assert_eq!("leaky_relu".parse::<Activation>().unwrap(), Activation::LeakyRelu(LeakyRelu::DEFAULT));
    assert!("swish".parse::<Activation>().unwrap_err().contains("gelu"));
    assert!("leaky_relu:-1".parse::<Activation>().is_err());
}

/// Tanh and sigmoid saturate (±∞ → ±1): a network that starts with one cannot find an
/// infinite input in its output, so it scans the input.
#[test]
fn a_saturating_first_layer_still_finds_an_infinite_input() {
    let mut rng = StdRng::seed_from_u64(4);
    for activation in [Activation::Tanh, Activation::Sigmoid] {
        let net = Network::<f64>::new(6).push(layer(true, activation, &mut rng)).unwrap();
        let mut x = random_matrix(6, 3, &mut rng);
        x[(2, 1)] = f64::INFINITY;
        match net.output(&x) {
            Err(feedforward::Error::NonFinite { sample: Some(1), .. }) => {}
            other => panic!("{activation:?}: expected the input named, got {other:?}"),
        }
    }
}
