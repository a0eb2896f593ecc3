//! The [`Module`] trait: what a [`Network`](crate::Network) needs from each of its stages.
//!
//! A module is a function `y = f(x)` on a batch (one sample per column) that also knows its local
//! gradient. The network owns the activation buffers; a module only reads `x` and writes `y`, and
//! in backward reads `x`, `y`, `dL/dy` and writes `dL/dx` plus its own parameter gradients. That
//! keeps modules stateless between calls except for their parameters, and lets a downstream
//! crate add its own kind (see the `Tanh` in `tests/custom_module.rs`).

use crate::{Float, Result};
use nalgebra::{DMatrix, DMatrixViewMut};

/// A trainable tensor with its gradient, as optimizers, the L2 penalty and save/load see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter<T: Float> {
    name: &'static str,
    value: DMatrix<T>,
    grad: DMatrix<T>,
    regularized: bool,
}

impl<T: Float> Parameter<T> {
    /// A parameter with a zero gradient. `regularized` says whether the L2 penalty applies
    /// (weights: yes, biases: no).
    pub fn new(name: &'static str, value: DMatrix<T>, regularized: bool) -> Self {
        let grad = DMatrix::zeros(value.nrows(), value.ncols());
        Parameter { name, value, grad, regularized }
    }

    /// Short name within its module: `"weight"` or `"bias"` for a [`Layer`](crate::Layer).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the network's L2 penalty `alpha/2·‖P‖²` includes this tensor.
    #[must_use]
    pub fn is_regularized(&self) -> bool {
        self.regularized
    }

    /// Current value.
    #[must_use]
    pub fn value(&self) -> &DMatrix<T> {
        &self.value
    }

    /// Mutable view of the value (a view, so its shape cannot change).
    pub fn value_mut(&mut self) -> DMatrixViewMut<'_, T> {
        self.value.as_view_mut()
    }

    /// Gradient of the loss from the last backward pass.
    #[must_use]
    pub fn grad(&self) -> &DMatrix<T> {
        &self.grad
    }

    /// Mutable view of the gradient, for a module's backward pass.
    pub fn grad_mut(&mut self) -> DMatrixViewMut<'_, T> {
        self.grad.as_view_mut()
    }

    /// The gradient as a flat column-major slice, for a module's backward pass.
    pub fn grad_slice_mut(&mut self) -> &mut [T] {
        self.grad.as_mut_slice()
    }

    /// Replaces the value with `next` (same shape), handing back the old value in `next`.
    pub(crate) fn swap_value(&mut self, next: &mut DMatrix<T>) {
        debug_assert_eq!(self.value.shape(), next.shape());
        std::mem::swap(&mut self.value, next);
    }

    /// `grad += alpha·value` (the gradient of the penalty `alpha/2·‖value‖²`), returning
    /// `‖value‖²` from the same pass.
    pub(crate) fn add_l2_gradient(&mut self, alpha: T) -> T {
        crate::linalg::add_scaled_sum_squares(self.grad.as_mut_slice(), alpha, self.value.as_slice())
    }

    /// Number of scalar entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// True when the tensor has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

/// One stage of a [`Network`](crate::Network): forward, local gradient, parameters.
///
/// Shapes: `input` is `input_rows × batch`, `output` is `output_rows(input_rows) × batch`; the
/// network sizes every buffer before calling, so implementations never allocate.
pub trait Module<T: Float>: std::fmt::Debug + Send {
    /// Short kind name for messages and summaries, e.g. `"Layer"` or `"Relu"`.
    fn kind(&self) -> &'static str;

    /// Rows of the output for `input_rows` rows of input, or an error if this module cannot
    /// take that input (checked once, when the module is added to a network).
    fn output_rows(&self, input_rows: usize) -> Result<usize>;

    /// `output = f(input)`. The old contents of `output` are unspecified and must be overwritten.
    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>);

    /// Given `input`, `output = f(input)` and `grad_output = dL/d(output)`: overwrite each
    /// parameter's gradient with `dL/dP`, and, when `grad_input` is given, overwrite it with
    /// `dL/d(input)` (the first module of a network is not asked for it).
    fn backward(
        &mut self,
        input: &DMatrix<T>,
        output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    );

    /// The trainable tensors, in a fixed order. Default: none.
    fn parameters(&self) -> &[Parameter<T>] {
        &[]
    }

    /// The trainable tensors, mutably, in the same order as [`parameters`](Module::parameters).
    fn parameters_mut(&mut self) -> &mut [Parameter<T>] {
        &mut []
    }
}
