//! Gradients never hand subnormal numbers to the matrix products: x86 CPUs compute with them
//! through a microcode assist, many times slower, and a run that grows confident produces them
//! (softmax probabilities of e^-90, their products with small weights). The passes that make
//! them store 0 instead (README, Performance).

use feedforward::{
    Activation, BinaryCrossEntropy, Init, Layer, Loss, MeanSquaredError, Network, Relu, SoftmaxCrossEntropy,
};
use nalgebra::DMatrix;
use rand::{SeedableRng, rngs::StdRng};

fn subnormals(values: &[f32]) -> usize {
    values.iter().filter(|v| v.is_subnormal()).count()
}

#[test]
fn a_softmax_probability_below_the_normal_range_has_a_zero_gradient() {
    // p₁ = e^-90 / (1 + e^-90) ≈ 8.2e-40: subnormal in f32.
    let z = DMatrix::from_column_slice(2, 1, &[0.0f32, -90.0]);
    assert!((-90.0f32).exp().is_subnormal(), "the premise: e^-90 is subnormal in f32");
    let mut grad = DMatrix::zeros(2, 1);
    SoftmaxCrossEntropy::new().loss_and_grad(&z, &[0], &mut grad).unwrap();
    assert_eq!(grad[(1, 0)], 0.0);
    assert_eq!(subnormals(grad.as_slice()), 0);
    // Just above the normal range the value stays.
    let z = DMatrix::from_column_slice(2, 1, &[0.0f32, -80.0]);
    SoftmaxCrossEntropy::new().loss_and_grad(&z, &[0], &mut grad).unwrap();
    assert_eq!(grad[(1, 0)], (-80.0f32).exp() / (1.0 + (-80.0f32).exp()));
}

#[test]
fn a_sigmoid_below_the_normal_range_has_a_zero_gradient() {
    // dL/dz = σ(z) − t with σ(−90) ≈ 8.2e-40 and t = 0; σ(−80) ≈ 1.8e-35 stays.
    let z = DMatrix::from_column_slice(1, 2, &[-90.0f32, -80.0]);
    let t = DMatrix::zeros(1, 2);
    let mut grad = DMatrix::zeros(1, 2);
    BinaryCrossEntropy::new().loss_and_grad(&z, &t, &mut grad).unwrap();
    assert_eq!(grad[(0, 0)], 0.0);
    assert!(grad[(0, 1)] > 0.0 && grad[(0, 1)].is_normal(), "{}", grad[(0, 1)]);
}

/// A 1-1-1 network whose hidden `δ = w₁·dL/dz` is about 2e-39, subnormal in f32: the output
/// weight is 1e-30 and the residual 1e-9.
fn tiny_delta_network(fused: bool) -> Network<f32> {
    let rng = &mut StdRng::seed_from_u64(0);
    let net = Network::<f32>::new(1);
    let mut net = if fused {
        net.push(Layer::new(1, 1, Init::He, rng).with_activation(Activation::Relu)).unwrap()
    } else {
        net.push(Layer::new(1, 1, Init::He, rng)).unwrap().push(Relu).unwrap()
    }
    .push(Layer::without_bias(1, 1, Init::He, rng))
    .unwrap();
    let values = [1.0f32, 0.0, 1e-30];
    for (parameter, value) in net.parameters_mut().zip(values) {
        parameter.value_mut().fill(value);
    }
    net
}

#[test]
fn a_hidden_delta_below_the_normal_range_is_zero_fused_or_as_a_module() {
    for fused in [true, false] {
        let mut net = tiny_delta_network(fused);
        let x = DMatrix::from_element(1, 1, 1.0f32);
        let target = DMatrix::from_element(1, 1, -1e-9f32);
        net.backward(&x, &MeanSquaredError, &target).unwrap();
        let grads: Vec<&[f32]> = net.parameters().map(|p| p.grad().as_slice()).collect();
        // Without the flush: dW₀ = x·δ ≈ 2e-39 and db₀ = δ.
        let exact = 1e-30f64 * 2.0 * (1e-30 + 1e-9);
        assert!(exact < f64::from(f32::MIN_POSITIVE), "the premise: δ is subnormal in f32");
        assert_eq!((grads[0], grads[1]), (&[0.0f32][..], &[0.0f32][..]), "fused: {fused}");
        // The output layer's own gradient, a·dL/dz ≈ 2e-9, is untouched.
        assert!((grads[2][0] - 2e-9).abs() < 1e-15, "fused: {fused}: {}", grads[2][0]);
    }
}

/// The public helper for custom modules: subnormals of either sign become 0, zeros stay zero
/// (−0 may come out as +0, an equal value), everything else (normal numbers, the smallest
/// normal itself, NaN, ±inf) is kept bit for bit, in both types and past the vectorized chunks
/// into the ragged tail.
#[test]
fn flush_subnormals_zeroes_exactly_the_subnormals() {
    let specials = [f32::MIN_POSITIVE, -f32::MIN_POSITIVE, 1e-39, -1e-45, 0.0, -0.0, 1.0, f32::INFINITY];
    let values: Vec<f32> = (0..37).map(|i| specials[i % specials.len()]).chain([f32::NAN]).collect();
    let mut flushed = values.clone();
    feedforward::linalg::flush_subnormals(&mut flushed);
    for (i, (&v, &f)) in values.iter().zip(&flushed).enumerate() {
        if v.is_subnormal() || v == 0.0 {
            assert_eq!(f, 0.0, "index {i}: {v:e}");
        } else {
            assert_eq!(f.to_bits(), v.to_bits(), "index {i}: {v:e} must be kept");
        }
    }
    let mut wide = [f64::MIN_POSITIVE / 2.0, -1e-310, 2.0 * f64::MIN_POSITIVE];
    feedforward::linalg::flush_subnormals(&mut wide);
    assert_eq!(wide, [0.0, 0.0, 2.0 * f64::MIN_POSITIVE]);
}
