//! A downstream crate's own module kinds, written only against the public API: a `Tanh`, and a
//! composite `SkipPair` block holding two layers. Each is checked by `gradcheck`, trained inside
//! a `Network`, saved and loaded back.

use feedforward::gradcheck::{self, Config};
use feedforward::module::prefix_parameter_names;
use feedforward::train::{self, TrainConfig};
use feedforward::{
    Activation, Error, Float, Init, Layer, MeanSquaredError, Module, Network, Parameter, Result, Rmsprop,
    SoftmaxCrossEntropy,
};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `y = tanh(x)`; local gradient `1 − y²`.
#[derive(Clone, Debug)]
struct Tanh;

impl<T: Float> Module<T> for Tanh {
    fn kind(&self) -> &'static str {
        "Tanh"
    }
    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        Ok(input_rows)
    }
    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        output.zip_apply(input, |y, x| *y = x.tanh());
    }
    fn backward(
        &mut self,
        _: &DMatrix<T>,
        output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        if let Some(dx) = grad_input {
            dx.zip_zip_apply(output, grad_output, |d, y, g| *d = g * (T::one() - y * y));
        }
    }
}

#[test]
fn tanh_gradient_checks() {
    let x = DMatrix::from_fn(4, 3, |i, j| (i as f64 - 1.5) * 0.7 + j as f64 * 0.2);
    let report = gradcheck::check_module(&mut Tanh, &x, &Config::default()).unwrap();
    assert!(report.max_error <= 1e-6, "{report}");
}

#[test]
fn tanh_network_checks_and_trains() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut net = Network::<f64>::new(2)
        .push(Layer::new(2, 8, Init::He, &mut rng))
        .unwrap()
        .push(Tanh)
        .unwrap()
        .push(Layer::new(8, 2, Init::He, &mut rng))
        .unwrap();
    let x =
        DMatrix::from_fn(
            2,
            40,
            |i, j| if i == 0 { (j % 2) as f64 * 2.0 - 1.0 } else { (j as f64 / 40.0) - 0.5 },
        );
    let y: Vec<usize> = (0..40).map(|j| j % 2).collect();
    let report =
        gradcheck::check_network(&mut net, &x, &SoftmaxCrossEntropy::new(), &y, &Config::default()).unwrap();
    assert!(report.max_error <= 1e-6, "{report}");
    let mut opt = Rmsprop::elementwise(0.01).unwrap();
    let config = TrainConfig { epochs: 100, ..TrainConfig::default() };
    train::fit(
        &mut net,
        &mut opt,
        &SoftmaxCrossEntropy::new(),
        train::Data::new(&x, &y),
        &config,
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!(net.accuracy(&x, &y).unwrap(), 1.0);
}

/// Identity with a parameter whose gradient is always NaN: a finite loss with a broken gradient.
#[derive(Clone, Debug)]
struct Poison {
    params: Vec<feedforward::Parameter<f32>>,
}

impl Module<f32> for Poison {
    fn kind(&self) -> &'static str {
        "Poison"
    }
    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        Ok(input_rows)
    }
    fn forward(&self, input: &DMatrix<f32>, output: &mut DMatrix<f32>) {
        output.copy_from(input);
    }
    fn backward(
        &mut self,
        _: &DMatrix<f32>,
        _: &DMatrix<f32>,
        grad_output: &DMatrix<f32>,
        grad_input: Option<&mut DMatrix<f32>>,
    ) {
        self.params[0].grad_mut().fill(f32::NAN);
        if let Some(dx) = grad_input {
            dx.copy_from(grad_output);
        }
    }
    fn visit_parameters<'a>(&'a self, visit: &mut dyn FnMut(&'a feedforward::Parameter<f32>)) {
        self.params.iter().for_each(visit);
    }
    fn visit_parameters_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut feedforward::Parameter<f32>)) {
        self.params.iter_mut().for_each(visit);
    }
}

#[test]
fn a_nan_gradient_with_a_finite_loss_stops_the_step_and_is_named() {
    let mut rng = StdRng::seed_from_u64(2);
    let poison = Poison {
        params: vec![feedforward::Parameter::new(
            "weight",
            DMatrix::zeros(1, 1),
            feedforward::Regularization::Exempt,
        )],
    };
    let mut net = Network::<f32>::new(3)
        .push(Layer::new(3, 4, Init::He, &mut rng))
        .unwrap()
        .push(poison)
        .unwrap()
        .push(Layer::new(4, 2, Init::He, &mut rng))
        .unwrap();
    let before: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    let x = DMatrix::from_fn(3, 5, |i, j| (i + j) as f32 / 5.0);
    let mut opt = Rmsprop::elementwise(0.01).unwrap();
    match net.train_step(&x, &SoftmaxCrossEntropy::new(), &[0, 1, 0, 1, 0], &mut opt) {
        Err(feedforward::Error::NonFinite { step: Some(1), what, .. }) => {
            assert!(what.contains("gradient of module 1 (Poison) weight"), "{what}")
        }
        other => panic!("expected a NonFinite gradient error, got {other:?}"),
    }
    let after: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    assert_eq!(before, after, "no parameter changed, not even those updated before the bad one");
}

/// A residual block `y = x + W2ᵀ·relu(W1ᵀx + b1) + b2` written downstream (the crate's own is
/// `Residual`, around any modules): a composite module made of two layers of
/// this crate, exposing their parameters as its own.
#[derive(Clone, Debug)]
struct SkipPair<T: Float> {
    inner: Layer<T>,
    outer: Layer<T>,
}

impl<T: Float> SkipPair<T> {
    fn new(width: usize, hidden: usize, rng: &mut StdRng) -> Self {
        let mut block = SkipPair {
            inner: Layer::new(width, hidden, Init::He, rng).with_activation(Activation::Relu),
            outer: Layer::new(hidden, width, Init::He, rng),
        };
        // Both layers have a "weight" and a "bias": distinct names for the weights file.
        prefix_parameter_names(&mut block.inner, "inner");
        prefix_parameter_names(&mut block.outer, "outer");
        block
    }

    /// The inner activations `h` and the outer layer's output `o` on `x`.
    fn parts(&self, x: &DMatrix<T>) -> (DMatrix<T>, DMatrix<T>) {
        let mut h = DMatrix::zeros(self.inner.outputs(), x.ncols());
        let mut o = DMatrix::zeros(self.outer.outputs(), x.ncols());
        self.inner.forward(x, &mut h);
        self.outer.forward(&h, &mut o);
        (h, o)
    }
}

impl<T: Float> Module<T> for SkipPair<T> {
    fn kind(&self) -> &'static str {
        "SkipPair"
    }
    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        if input_rows == self.inner.inputs() {
            Ok(input_rows)
        } else {
            Err(Error::shape(
                "residual input",
                format!("{} rows", self.inner.inputs()),
                format!("{input_rows} rows"),
            ))
        }
    }
    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        let (_, o) = self.parts(input);
        output.copy_from(&(input + o));
    }
    fn backward(
        &mut self,
        input: &DMatrix<T>,
        _: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        // dy/do = 1 and dy/dx = 1 + do/dx: the outer layer sees dL/dy unchanged, and the input
        // gradient is dL/dy plus what flows back through both layers.
        let (h, o) = self.parts(input);
        let mut dh = DMatrix::zeros(h.nrows(), h.ncols());
        self.outer.backward(&h, &o, grad_output, Some(&mut dh));
        let mut dx = DMatrix::zeros(input.nrows(), input.ncols());
        self.inner.backward(input, &h, &dh, Some(&mut dx));
        if let Some(grad_input) = grad_input {
            grad_input.copy_from(&(dx + grad_output));
        }
    }
    fn visit_parameters<'a>(&'a self, visit: &mut dyn FnMut(&'a Parameter<T>)) {
        self.inner.visit_parameters(visit);
        self.outer.visit_parameters(visit);
    }
    fn visit_parameters_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut Parameter<T>)) {
        self.inner.visit_parameters_mut(visit);
        self.outer.visit_parameters_mut(visit);
    }
    fn describe(&self) -> Option<feedforward::serde_json::Map<String, feedforward::serde_json::Value>> {
        let mut spec = feedforward::serde_json::Map::new();
        spec.insert("width".into(), self.inner.inputs().into());
        spec.insert("hidden".into(), self.inner.outputs().into());
        Some(spec)
    }
}

fn skip_pair_net(seed: u64) -> Network<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let block = SkipPair::new(3, 6, &mut rng);
    Network::new(2)
        .push(Layer::new(2, 3, Init::He, &mut rng))
        .unwrap()
        .push(block)
        .unwrap()
        .push(Layer::new(3, 1, Init::He, &mut rng))
        .unwrap()
}

fn wave(n: usize) -> (DMatrix<f64>, DMatrix<f64>) {
    let x = DMatrix::from_fn(2, n, |i, j| ((j * (i + 3)) % 17) as f64 / 8.5 - 1.0);
    let y = DMatrix::from_fn(1, n, |_, j| (2.0 * x[(0, j)]).sin() + 0.5 * x[(1, j)]);
    (x, y)
}

#[test]
fn a_composite_module_exposes_its_childrens_parameters_and_gradient_checks() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut block = SkipPair::<f64>::new(3, 5, &mut rng);
    let names: Vec<String> =
        feedforward::module::parameters_of(&block).iter().map(|p| p.name().to_string()).collect();
    assert_eq!(names, ["inner.weight", "inner.bias", "outer.weight", "outer.bias"]);
    // Inputs whose inner pre-activations stay clear of ReLU's kink.
    let x = DMatrix::from_fn(3, 4, |i, j| (i as f64 - 1.0) * 0.9 + (j as f64) * 0.31);
    let mut h = DMatrix::zeros(5, 4);
    let plain = block.inner.clone().with_activation(Activation::Identity);
    plain.forward(&x, &mut h);
    assert!(h.iter().all(|z| z.abs() > 1e-3), "{h}");
    let report = gradcheck::check_module(&mut block, &x, &Config::default()).unwrap();
    assert!(report.max_error <= 1e-6, "{report}");
    assert_eq!(report.checked, 3 * 5 + 5 + 5 * 3 + 3 + 12);
}

#[test]
fn a_network_with_a_composite_block_checks_trains_saves_and_loads() {
    let (x, y) = wave(64);
    let mut net = skip_pair_net(5);
    assert_eq!(net.parameters().count(), 2 + 4 + 2);
    let report = gradcheck::check_network(&mut net, &x, &MeanSquaredError, &y, &Config::default()).unwrap();
    assert!(report.max_error <= 1e-6, "{report}");

    let before = net.loss(&x, &MeanSquaredError, &y).unwrap();
    let mut opt = Rmsprop::elementwise(3e-3).unwrap();
    let config = TrainConfig { epochs: 300, ..TrainConfig::default() };
    train::fit(&mut net, &mut opt, &MeanSquaredError, train::Data::new(&x, &y), &config, |_, _, _| {})
        .unwrap();
    let after = net.loss(&x, &MeanSquaredError, &y).unwrap();
    assert!(after < before / 5.0, "{before} -> {after}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skip_pair.safetensors");
    net.save(&path).unwrap();
    // Into a network the caller built: every tensor, with the block's prefixed names.
    let mut copy = skip_pair_net(6);
    feedforward::weights::load_into(&mut copy, &path).unwrap();
    assert_eq!(copy.output(&x).unwrap(), net.output(&x).unwrap());
    // On its own: the crate cannot build a SkipPair, and says so by name…
    match Network::<f64>::load(&path) {
        Err(e @ Error::Weights { .. }) => assert!(e.to_string().contains("\"SkipPair\""), "{e}"),
        other => panic!("expected a weights error, got {other:?}"),
    }
    // …and builds it with the caller's builder for that kind.
    let loaded = Network::<f64>::load_with(&path, &|kind, spec, _rows| {
        if kind != "SkipPair" {
            return Ok(None);
        }
        let size = |k: &str| spec[k].as_u64().unwrap() as usize;
        let block: Box<dyn Module<f64>> =
            Box::new(SkipPair::new(size("width"), size("hidden"), &mut StdRng::seed_from_u64(0)));
        assert_eq!(block.kind(), "SkipPair");
        Ok(Some(block))
    })
    .unwrap();
    assert_eq!(loaded.output(&x).unwrap(), net.output(&x).unwrap());
}
