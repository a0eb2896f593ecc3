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
