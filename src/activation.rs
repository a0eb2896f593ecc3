//! [`Relu`]: `y = max(x, 0)`, with local gradient `1{x > 0}`.
//!
//! The derivative at exactly 0 is taken as 0 (a valid subgradient), as in the original recipe's
//! `delta1 = (W1·delta2) ⊙ 1{z1 > 0}`.

use crate::{Float, Module, Result};
use nalgebra::DMatrix;

/// The rectified linear unit, applied elementwise. No parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relu;

impl<T: Float> Module<T> for Relu {
    fn kind(&self) -> &'static str {
        "Relu"
    }

    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        Ok(input_rows)
    }

    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        output.zip_apply(input, |y, x| *y = if x > T::zero() { x } else { T::zero() });
    }

    fn backward(
        &mut self,
        input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        if let Some(dx) = grad_input {
            dx.zip_zip_apply(input, grad_output, |d, x, g| *d = if x > T::zero() { g } else { T::zero() });
        }
    }
}
