//! Finite-difference checks of every hand-written gradient, in f64.
//!
//! Bound: every entry's error `|a − n| / max(|a|, |n|, 1e-4)` (see `feedforward::gradcheck`) is
//! at most 1e-6, with central differences of step 1e-5.

use feedforward::gradcheck::{self, Config};
use feedforward::{Activation, Init, Layer, MlpConfig, Module, Network, Relu, SoftmaxCrossEntropy};
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
fn layer_with_fused_relu_with_and_without_bias() {
    for (seed, bias) in [(11, true), (14, false)] {
        let mut r = rng(seed);
        let layer = if bias {
            Layer::<f64>::new(6, 5, Init::SEED_RECIPE, &mut r)
        } else {
            Layer::<f64>::without_bias(6, 5, Init::SEED_RECIPE, &mut r)
        };
        let mut layer = layer.with_activation(Activation::Relu);
        let x = random_matrix(6, 7, &mut r);
        // Every pre-activation well away from the kink (this seed's draw; checked, not assumed).
        let mut z = layer.weight().transpose() * &x;
        if let Some(b) = layer.bias() {
            z.column_iter_mut().for_each(|mut col| col += b.column(0));
        }
        assert!(z.iter().all(|v| v.abs() > 1e-3), "seed {seed}: a pre-activation near 0");
        assert!(z.iter().any(|&v| v < 0.0) && z.iter().any(|&v| v > 0.0), "both sides of the kink");
        let report = gradcheck::check_module(&mut layer, &x, &Config::default()).unwrap();
        assert_eq!(report.checked, 6 * 5 + if bias { 5 } else { 0 } + 6 * 7);
        assert!(report.max_error <= BOUND, "seed {seed}: {report}");
        // A clone keeps the parameters and the activation (not the scratch of the last pass).
        let copy = layer.clone();
        assert_eq!(copy, layer);
        assert_eq!(copy.activation(), Activation::Relu);
        let (mut y, mut y_copy) = (DMatrix::zeros(5, 7), DMatrix::zeros(5, 7));
        layer.forward(&x, &mut y);
        copy.forward(&x, &mut y_copy);
        assert_eq!(y, y_copy);
    }
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
    let report =
        gradcheck::check_loss(&SoftmaxCrossEntropy::new(), &logits, &[0, 3, 9, 9, 5, 1], &Config::default())
            .unwrap();
    assert_eq!(report.checked, 60);
    assert!(report.max_error <= BOUND, "{report}");
}

#[test]
fn l2_term() {
    // A large alpha makes the penalty dominate the weight gradients, so a wrong L2 gradient
    // (say alpha instead of alpha·W, or a regularized bias) cannot hide behind the data term.
    let mut r = rng(5);
    let mut net = Network::<f64>::mlp(
        &[5, 4, 3],
        MlpConfig { init: Init::SEED_RECIPE, ..MlpConfig::default() },
        &mut r,
    )
    .unwrap()
    .with_l2(0.7)
    .unwrap();
    let x = random_matrix(5, 3, &mut r);
    let report =
        gradcheck::check_network(&mut net, &x, &SoftmaxCrossEntropy::new(), &[2, 0, 1], &Config::default())
            .unwrap();
    assert_eq!(report.checked, 5 * 4 + 4 + 4 * 3 + 3);
    assert!(report.max_error <= BOUND, "{report}");
}

#[test]
fn mnist_network_784_256_10() {
    let mut r = rng(6);
    let mut net = Network::<f64>::mlp(
        &[784, 256, 10],
        MlpConfig { init: Init::SEED_RECIPE, output_bias: false, ..MlpConfig::default() },
        &mut r,
    )
    .unwrap()
    .with_l2(1e-6)
    .unwrap();
    let x = DMatrix::from_fn(784, 4, |_, _| rand::RngExt::random::<f64>(&mut r));
    let config = Config { max_entries_per_tensor: Some(1500), ..Config::default() };
    let report =
        gradcheck::check_network(&mut net, &x, &SoftmaxCrossEntropy::new(), &[3, 1, 4, 1], &config).unwrap();
    assert_eq!(report.checked, 1500 + 256 + 1500);
    assert!(report.max_error <= BOUND, "{report}");
}

/// The smallest `|z|` fed to any ReLU of `net` on `x`: the pre-activations `Wᵀx + b` of every
/// layer but the last (`Network::mlp` fuses a ReLU into each of those). Central differences are
/// meaningless where a perturbation of size `h` can carry a pre-activation across the kink at 0.
fn closest_to_kink(net: &Network<f64>, x: &DMatrix<f64>) -> f64 {
    let mut current = x.clone();
    let mut closest = f64::INFINITY;
    let modules = net.modules();
    for (i, module) in modules.iter().enumerate() {
        let params = module.parameters();
        let mut z = params[0].value().transpose() * &current;
        if let Some(b) = params.get(1) {
            z.column_iter_mut().for_each(|mut col| col += b.value().column(0));
        }
        if i + 1 < modules.len() {
            closest = z.iter().fold(closest, |m, v| m.min(v.abs()));
        }
        current = z.map(|v| v.max(0.0));
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
        let config = MlpConfig { init: Init::SEED_RECIPE, output_bias, ..MlpConfig::default() };
        let mut net = Network::<f64>::mlp(&sizes, config, &mut r).unwrap().with_l2(0.01).unwrap();
        let x = random_matrix(sizes[0], batch, &mut r);
        prop_assume!(closest_to_kink(&net, &x) > 1e-3, "a ReLU input within 1e-3 of its kink");
        let classes = *sizes.last().unwrap();
        let labels: Vec<usize> = (0..batch).map(|i| (i * 7 + seed as usize) % classes).collect();
        let report = gradcheck::check_network(&mut net, &x, &SoftmaxCrossEntropy::new(), &labels, &Config::default()).unwrap();
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

/// `Layer` with a fused ReLU computes exactly what `Layer → Relu` computes, forward and
/// backward, bit for bit, on a batch long enough for several column blocks and ragged chunks;
/// and the bias gradient (summed per block, then across blocks) is the plain sum.
#[test]
fn fused_relu_equals_layer_then_relu_module() {
    let mut r = rng(13);
    let (sizes, batch) = ([37, 257, 10], 301);
    let fused =
        Network::<f32>::mlp(&sizes, MlpConfig { init: Init::SEED_RECIPE, ..MlpConfig::default() }, &mut r)
            .unwrap();
    let hidden = Layer::from_parts(
        fused.modules()[0].parameters()[0].value().clone(),
        Some(fused.modules()[0].parameters()[1].value().column(0).into_owned()),
    )
    .unwrap();
    let output = Layer::from_parts(
        fused.modules()[1].parameters()[0].value().clone(),
        Some(fused.modules()[1].parameters()[1].value().column(0).into_owned()),
    )
    .unwrap();
    let mut separate = Network::new(37).push(hidden).unwrap().push(Relu).unwrap().push(output).unwrap();
    let mut fused = fused.with_l2(1e-3).unwrap();
    separate = separate.with_l2(1e-3).unwrap();
    let x = DMatrix::<f32>::from_fn(37, batch, |i, j| ((i * 7 + j * 13) % 29) as f32 / 29.0 - 0.4);
    let labels: Vec<usize> = (0..batch).map(|j| (j * 3) % 10).collect();
    let fused_loss = fused.backward(&x, &SoftmaxCrossEntropy::new(), &labels).unwrap();
    let separate_loss = separate.backward(&x, &SoftmaxCrossEntropy::new(), &labels).unwrap();
    assert_eq!(fused_loss.to_bits(), separate_loss.to_bits());
    let fused_params: Vec<_> = fused.parameters().collect();
    let separate_params: Vec<_> = separate.parameters().collect();
    assert_eq!(fused_params.len(), separate_params.len());
    for (f, s) in fused_params.iter().zip(&separate_params) {
        assert_eq!(f.value(), s.value());
        assert_eq!(f.grad(), s.grad(), "{}", f.name());
    }
    // The bias gradient against a plain f64 sum of δ = (W1·δ2) ⊙ 1{z > 0} over the batch,
    // with δ2 taken from the output layer (whose own bias gradient is Σ δ2).
    let hidden_bias = fused_params[1].grad();
    let w0 = fused_params[0].value().map(f64::from);
    let b0 = fused_params[1].value().map(f64::from);
    let z = w0.transpose() * x.map(f64::from) + &b0 * DMatrix::from_element(1, batch, 1.0);
    let a = z.map(|v| v.max(0.0));
    let w1 = fused_params[2].value().map(f64::from);
    let b1 = fused_params[3].value().map(f64::from);
    let mut logits = w1.transpose() * &a + &b1 * DMatrix::from_element(1, batch, 1.0);
    for (j, mut col) in logits.column_iter_mut().enumerate() {
        let max = col.max();
        col.apply(|v| *v = (*v - max).exp());
        let total = col.sum();
        col /= total;
        col[labels[j]] -= 1.0;
    }
    let delta2 = logits / batch as f64;
    let delta1 = (&w1 * &delta2).zip_map(&z, |d, z| if z > 0.0 { d } else { 0.0 });
    let expect = delta1.column_sum();
    for (got, want) in hidden_bias.iter().zip(expect.iter()) {
        assert!((f64::from(*got) - want).abs() <= 1e-6 * (1.0 + want.abs()), "{got} vs {want}");
    }
}
