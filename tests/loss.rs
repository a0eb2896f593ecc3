//! Softmax cross-entropy: known values and extreme logits.

use approx::assert_relative_eq;
use feedforward::{Error, SoftmaxCrossEntropy};
use nalgebra::DMatrix;

#[test]
fn known_value() {
    // Uniform logits over 4 classes: loss ln 4, gradient (1/4 − onehot)/N.
    let z = DMatrix::<f64>::zeros(4, 2);
    let mut g = DMatrix::zeros(0, 0);
    let loss = SoftmaxCrossEntropy.loss_and_grad(&z, &[1, 3], &mut g).unwrap();
    assert_relative_eq!(loss, 4f64.ln(), max_relative = 1e-12);
    assert_relative_eq!(g[(1, 0)], (0.25 - 1.0) / 2.0, max_relative = 1e-12);
    assert_relative_eq!(g[(0, 0)], 0.25 / 2.0, max_relative = 1e-12);
}

#[test]
fn logits_of_plus_minus_1e4_stay_finite_and_correct() {
    for z in [1e4f32, -1e4] {
        let logits = DMatrix::from_column_slice(3, 2, &[z, 0.0, -z, 0.0, 0.0, 0.0]);
        let mut g = DMatrix::zeros(0, 0);
        let loss = SoftmaxCrossEntropy.loss_and_grad(&logits, &[0, 1], &mut g).unwrap();
        assert!(loss.is_finite() && g.iter().all(|v| v.is_finite()), "z = {z}: {loss} {g}");
        // Sample 0 is [z, 0, −z] with label 0: confident and right (z > 0) costs 0; for z < 0
        // the right class is 2e4 below the top logit, which costs 2e4.
        let expect0 = if z > 0.0 { 0.0 } else { 2e4 };
        let expect1 = 3f64.ln();
        assert_relative_eq!(f64::from(loss), (expect0 + expect1) / 2.0, max_relative = 1e-5);
    }
}

#[test]
fn one_class_batch() {
    let logits = DMatrix::from_column_slice(1, 3, &[5.0f64, -7.0, 0.0]);
    let mut g = DMatrix::zeros(0, 0);
    let loss = SoftmaxCrossEntropy.loss_and_grad(&logits, &[0, 0, 0], &mut g).unwrap();
    assert_eq!(loss, 0.0);
    assert!(g.iter().all(|&v| v == 0.0));
    assert!(matches!(
        SoftmaxCrossEntropy.loss(&logits, &[0, 1, 0]),
        Err(Error::LabelOutOfRange { index: 1, .. })
    ));
}

#[test]
fn softmax_is_stable_and_normalised() {
    let mut z = DMatrix::from_column_slice(3, 1, &[1e4f32, 1e4 - 1.0, -1e4]);
    SoftmaxCrossEntropy.softmax_in_place(&mut z);
    assert_relative_eq!(z.sum(), 1.0, max_relative = 1e-6);
    assert_relative_eq!(z[0] / z[1], std::f32::consts::E, max_relative = 1e-5);
    assert_eq!(z[2], 0.0);
}

#[test]
fn empty_batch_is_an_error() {
    let z = DMatrix::<f32>::zeros(3, 0);
    assert!(matches!(SoftmaxCrossEntropy.loss(&z, &[]), Err(Error::EmptyBatch { .. })));
}
