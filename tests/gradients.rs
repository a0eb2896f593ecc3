//! Finite-difference checks of every hand-written gradient, in f64.
//!
//! Bound: every entry's error `|a − n| / max(|a|, |n|, 1e-4)` (see `feedforward::gradcheck`) is
//! at most 1e-6, with central differences of step 1e-5.

use feedforward::gradcheck::{self, Config};
use feedforward::{Init, Layer, Network, Relu};
use nalgebra::DMatrix;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

const BOUND: f64 = 1e-6;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn random_matrix(rows: usize, cols: usize, rng: &mut StdRng) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |_, _| <f64 as feedforward::Float>::standard_normal(rng))
}

#[test]
fn layer_with_bias() {
    let mut r = rng(1);
    let mut layer = Layer::<f64>::new(7, 5, Init::SEED_RECIPE, &mut r);
    let x = random_matrix(7, 4, &mut r);
    let report = gradcheck::check_module(&mut layer, &x, &Config::default()).unwrap();
    assert_eq!(report.checked, 7 * 5 + 5 + 7 * 4);
    assert!(report.max_error <= BOUND, "{report}");
}

#[test]
fn layer_without_bias() {
    let mut r = rng(2);
    let mut layer = Layer::<f64>::without_bias(6, 3, Init::He, &mut r);
    let x = random_matrix(6, 5, &mut r);
    let report = gradcheck::check_module(&mut layer, &x, &Config::default()).unwrap();
    assert_eq!(report.checked, 6 * 3 + 6 * 5);
    assert!(report.max_error <= BOUND, "{report}");
}

#[test]
fn relu_away_from_the_kink() {
    let mut r = rng(3);
    // |x| ≥ 0.1, far beyond the step 1e-5, so no difference straddles 0.
    let x = random_matrix(9, 6, &mut r).map(|v| if v >= 0.0 { v + 0.1 } else { v - 0.1 });
    let report = gradcheck::check_module(&mut Relu, &x, &Config::default()).unwrap();
    assert_eq!(report.checked, 9 * 6);
    assert!(report.max_error <= BOUND, "{report}");
}

#[test]
fn softmax_cross_entropy() {
    let mut r = rng(4);
    let logits = random_matrix(10, 6, &mut r).map(|v| 3.0 * v);
    let report = gradcheck::check_loss(&logits, &[0, 3, 9, 9, 5, 1], &Config::default()).unwrap();
    assert_eq!(report.checked, 60);
    assert!(report.max_error <= BOUND, "{report}");
}

#[test]
fn l2_term() {
    // A large alpha makes the penalty dominate the weight gradients, so a wrong L2 gradient
    // (say alpha instead of alpha·W, or a regularized bias) cannot hide behind the data term.
    let mut r = rng(5);
    let mut net =
        Network::<f64>::mlp(&[5, 4, 3], Init::SEED_RECIPE, true, &mut r).unwrap().with_l2(0.7).unwrap();
    let x = random_matrix(5, 3, &mut r);
    let report = gradcheck::check_network(&mut net, &x, &[2, 0, 1], &Config::default()).unwrap();
    assert_eq!(report.checked, 5 * 4 + 4 + 4 * 3 + 3);
    assert!(report.max_error <= BOUND, "{report}");
}

#[test]
fn mnist_network_784_256_10() {
    let mut r = rng(6);
    let mut net = Network::<f64>::mlp(&[784, 256, 10], Init::SEED_RECIPE, false, &mut r)
        .unwrap()
        .with_l2(1e-6)
        .unwrap();
    let x = DMatrix::from_fn(784, 4, |_, _| rand::RngExt::random::<f64>(&mut r));
    let config = Config { max_entries_per_tensor: Some(1500), ..Config::default() };
    let report = gradcheck::check_network(&mut net, &x, &[3, 1, 4, 1], &config).unwrap();
    assert_eq!(report.checked, 1500 + 256 + 1500);
    assert!(report.max_error <= BOUND, "{report}");
}

/// The smallest `|z|` fed to any ReLU of `net` on `x`. Central differences are meaningless
/// where a perturbation of size `h` can carry a pre-activation across the kink at 0.
fn closest_to_kink(net: &Network<f64>, x: &DMatrix<f64>) -> f64 {
    let mut current = x.clone();
    let mut closest = f64::INFINITY;
    for module in net.modules() {
        if module.kind() == "Relu" {
            closest = current.iter().fold(closest, |m, v| m.min(v.abs()));
        }
        let mut next = DMatrix::zeros(module.output_rows(current.nrows()).unwrap(), current.ncols());
        module.forward(&current, &mut next);
        current = next;
    }
    closest
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]
    #[test]
    fn random_shapes_and_batches(
        sizes in prop::collection::vec(1usize..9, 2..5),
        batch in 1usize..7,
        output_bias: bool,
        seed: u64,
    ) {
        let mut r = rng(seed);
        let mut net = Network::<f64>::mlp(&sizes, Init::SEED_RECIPE, output_bias, &mut r).unwrap().with_l2(0.01).unwrap();
        let x = random_matrix(sizes[0], batch, &mut r);
        prop_assume!(closest_to_kink(&net, &x) > 1e-3, "a ReLU input within 1e-3 of its kink");
        let classes = *sizes.last().unwrap();
        let labels: Vec<usize> = (0..batch).map(|i| (i * 7 + seed as usize) % classes).collect();
        let report = gradcheck::check_network(&mut net, &x, &labels, &Config::default()).unwrap();
        prop_assert!(report.max_error <= BOUND, "{}", report);
    }
}

/// ReLU on a batch long enough for the vectorized chunks, the parallel blocks and a ragged
/// tail: exactly `max(x, 0)` forward and `1{x > 0}·g` backward, entry by entry.
#[test]
fn relu_on_a_large_batch_is_exact() {
    use feedforward::Module;
    let (rows, cols) = (257, 301);
    let x = DMatrix::<f32>::from_fn(rows, cols, |i, j| ((i * 7 + j * 13) % 29) as f32 - 14.0);
    let g = DMatrix::<f32>::from_fn(rows, cols, |i, j| ((i * 3 + j * 5) % 11) as f32 - 5.0);
    let mut y = DMatrix::from_element(rows, cols, f32::NAN);
    Relu.forward(&x, &mut y);
    assert_eq!(y, x.map(|v| v.max(0.0)));
    let mut dx = DMatrix::from_element(rows, cols, f32::NAN);
    Relu.backward(&x, &y, &g, Some(&mut dx));
    assert_eq!(dx, x.zip_map(&g, |v, g| if v > 0.0 { g } else { 0.0 }));
}
