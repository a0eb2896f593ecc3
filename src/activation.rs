//! [`Relu`]: `y = max(x, 0)`, with local gradient `1{x > 0}`.
//!
//! The derivative at exactly 0 is taken as 0 (a valid subgradient), as in the original recipe's
//! `delta1 = (W1·delta2) ⊙ 1{z1 > 0}`.

use crate::linalg::{map1, map2, simd};
use crate::parallel::{Cols, ColsMut, for_column_blocks};
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
        let (rows, cols) = input.shape();
        let data = (ColsMut(output.as_mut_slice(), rows), Cols(input.as_slice(), rows));
        let relu = |(y, x): (ColsMut<'_, T>, Cols<'_, T>)| {
            simd(
                #[inline(always)]
                || map1(y.0, x.0, |x| if x > T::zero() { x } else { T::zero() }),
            );
        };
        for_column_blocks(cols, rows, data, &relu, &|(), ()| ());
    }

    fn backward(
        &mut self,
        input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        if let Some(dx) = grad_input {
            let (rows, cols) = input.shape();
            let data = (
                ColsMut(dx.as_mut_slice(), rows),
                Cols(input.as_slice(), rows),
                Cols(grad_output.as_slice(), rows),
            );
            let mask = |(d, x, g): (ColsMut<'_, T>, Cols<'_, T>, Cols<'_, T>)| {
                simd(
                    #[inline(always)]
                    || map2(d.0, x.0, g.0, |x, g| if x > T::zero() { g } else { T::zero() }),
                );
            };
            for_column_blocks(cols, rows, data, &mask, &|(), ()| ());
        }
    }
}
