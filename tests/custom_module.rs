//! A downstream crate's own module kind: a `Tanh`, written only against the public API, checked
//! by `gradcheck` and trained inside a `Network`.

use feedforward::gradcheck::{self, Config};
use feedforward::train::{self, TrainConfig};
use feedforward::{Float, Init, Layer, Module, Network, Result, Rmsprop};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `y = tanh(x)`; local gradient `1 − y²`.
#[derive(Debug)]
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
    let report = gradcheck::check_network(&mut net, &x, &y, &Config::default()).unwrap();
    assert!(report.max_error <= 1e-6, "{report}");
    let mut opt = Rmsprop::elementwise(0.01).unwrap();
    let config = TrainConfig { epochs: 100, ..TrainConfig::default() };
    train::fit(&mut net, &mut opt, &x, &y, &config, |_, _, _| {}).unwrap();
    assert_eq!(net.accuracy(&x, &y).unwrap(), 1.0);
}

/// Identity with a parameter whose gradient is always NaN: a finite loss with a broken gradient.
#[derive(Debug)]
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
    fn parameters(&self) -> &[feedforward::Parameter<f32>] {
        &self.params
    }
    fn parameters_mut(&mut self) -> &mut [feedforward::Parameter<f32>] {
        &mut self.params
    }
}

#[test]
fn a_nan_gradient_with_a_finite_loss_stops_the_step_and_is_named() {
    let mut rng = StdRng::seed_from_u64(2);
    let poison = Poison { params: vec![feedforward::Parameter::new("weight", DMatrix::zeros(1, 1), false)] };
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
    match net.train_step(&x, &[0, 1, 0, 1, 0], &mut opt) {
        Err(feedforward::Error::NonFinite { step: 1, what, .. }) => {
            assert!(what.contains("gradient of module 1 (Poison) weight"), "{what}")
        }
        other => panic!("expected a NonFinite gradient error, got {other:?}"),
    }
    let after: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    assert_eq!(before, after, "no parameter changed, not even those updated before the bad one");
}
