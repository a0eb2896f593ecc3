//! Activations: [`Relu`] as a module of its own, and [`Activation`], the same function fused
//! into a [`Layer`](crate::Layer).
//!
//! | | forward | local gradient |
//! |---|---|---|
//! | ReLU | `y = max(z, 0)` | `dL/dz = dL/dy · 1{z > 0}` (equivalently `1{y > 0}`) |
//!
//! The derivative at exactly 0 is taken as 0 (a valid subgradient), as in the original recipe's
//! `delta1 = (W1·delta2) ⊙ 1{z1 > 0}`.

use crate::linalg::{map1, map2, simd};
use crate::parallel::{Cols, ColsMut, for_column_blocks};
use crate::{Float, Module, Result};
use nalgebra::DMatrix;

/// `max(z, 0)`, keeping NaN and −∞ non-finite: `0·z` rather than `0` below the kink (so a
/// negative `z` gives −0, equal to 0 in every later sum and comparison). A network can then
/// find a NaN or ±inf of its input in its output (see [`Module::propagates_non_finite`]),
/// where `max(z, 0)` would turn it into a confident 0.
#[inline(always)]
pub(crate) fn relu<T: Float>(z: T) -> T {
    if z > T::zero() { z } else { z * T::zero() }
}

/// `dL/dz` from `dL/dy` where `y = relu(z)`; `x` is `z` or `y` (positive for the same entries).
#[inline(always)]
pub(crate) fn relu_gradient<T: Float>(x: T, dy: T) -> T {
    if x > T::zero() { dy } else { T::zero() }
}

/// What a [`Layer`](crate::Layer) applies to its affine output `z = Wᵀx + b`, in the same pass
/// as the bias: `Layer → Relu` as one module costs one pass over the batch where the two
/// modules cost four (bias, ReLU forward; ReLU backward, bias gradient), and holds one buffer
/// of activations fewer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// `y = z`.
    #[default]
    Identity,
    /// `y = max(z, 0)`, the same function as the [`Relu`] module.
    Relu,
}

impl Activation {
    /// Every activation, in declaration order.
    pub const ALL: [Activation; 2] = [Activation::Identity, Activation::Relu];

    /// Lower-case name, as in model files: `"identity"`, `"relu"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;

    /// Parses a [`name`](Activation::name).
    fn from_str(s: &str) -> Result<Self, String> {
        Activation::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| {
            let names: Vec<_> = Activation::ALL.iter().map(|a| a.name()).collect();
            format!("unknown activation {s:?}: expected one of {}", names.join(", "))
        })
    }
}

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
        let block = |(y, z): (ColsMut<'_, T>, Cols<'_, T>)| {
            simd(
                #[inline(always)]
                || map1(y.0, z.0, relu),
            );
        };
        for_column_blocks(cols, rows, data, &block, &|(), ()| ());
    }

    fn describe(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        Some(serde_json::Map::new())
    }

    fn propagates_non_finite(&self) -> bool {
        true
    }

    fn backward(
        &mut self,
        input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        if let Some(dz) = grad_input {
            let (rows, cols) = input.shape();
            let data = (
                ColsMut(dz.as_mut_slice(), rows),
                Cols(input.as_slice(), rows),
                Cols(grad_output.as_slice(), rows),
            );
            let block = |(dz, z, dy): (ColsMut<'_, T>, Cols<'_, T>, Cols<'_, T>)| {
                simd(
                    #[inline(always)]
                    || map2(dz.0, z.0, dy.0, relu_gradient),
                );
            };
            for_column_blocks(cols, rows, data, &block, &|(), ()| ());
        }
    }
}
