//! [`Layer`]: the fully connected (affine) layer `z = Wᵀx + b`.
//!
//! `W` is `inputs × outputs`, as in the original recipe's `W0` (784×256). Column-major, so column
//! `j` of `W` (the weights into output unit `j`) is contiguous: the memory is the same as a
//! row-major `[outputs, inputs]` array, PyTorch's `nn.Linear.weight` layout.
//!
//! | | forward | backward (given δ = dL/dz) |
//! |---|---|---|
//! | `z = Wᵀx + b` | one product | `dW = x·δᵀ`, `db = Σ_batch δ`, `dx = W·δ` |

use crate::linalg::{Op, gemm, simd};
use crate::parallel::{ColsMut, Span, for_blocks, for_column_blocks};
use crate::{Error, Float, Module, Parameter, Result};
use nalgebra::{DMatrix, DVector};
use rand::Rng;

/// How to draw a layer's initial parameters.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Init {
    /// He/Kaiming normal: `W ~ N(0, 2/inputs)`, `b = 0`. The default, suited to ReLU networks.
    #[default]
    He,
    /// `W ~ weight_std·N(0,1)`, `b ~ bias_std·N(0,1)`. The original recipe uses
    /// [`Init::SEED_RECIPE`].
    Normal {
        /// Standard deviation of the weights.
        weight_std: f64,
        /// Standard deviation of the bias.
        bias_std: f64,
    },
}

impl Init {
    /// The original recipe: weights `0.1·N(0,1)`, hidden bias `N(0,1)`.
    pub const SEED_RECIPE: Init = Init::Normal { weight_std: 0.1, bias_std: 1.0 };

    fn stds(self, inputs: usize) -> (f64, f64) {
        match self {
            Init::He => ((2.0 / inputs.max(1) as f64).sqrt(), 0.0),
            Init::Normal { weight_std, bias_std } => (weight_std, bias_std),
        }
    }
}

/// A fully connected layer `z = Wᵀx + b` with an optional bias.
///
/// Parameters, in order: `weight` (`inputs × outputs`, regularized), then `bias` (`outputs × 1`,
/// not regularized) if present.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer<T: Float> {
    /// `[weight]` or `[weight, bias]`.
    params: Vec<Parameter<T>>,
}

impl<T: Float> Layer<T> {
    /// A layer with a bias, initialised from `rng`. Weights are drawn column by column (output
    /// unit by output unit), then the bias, so the same seed always gives the same layer.
    pub fn new<R: Rng + ?Sized>(inputs: usize, outputs: usize, init: Init, rng: &mut R) -> Self {
        Self::init(inputs, outputs, true, init, rng)
    }

    /// A layer without a bias (`z = Wᵀx`), like the original recipe's output layer.
    pub fn without_bias<R: Rng + ?Sized>(inputs: usize, outputs: usize, init: Init, rng: &mut R) -> Self {
        Self::init(inputs, outputs, false, init, rng)
    }

    fn init<R: Rng + ?Sized>(inputs: usize, outputs: usize, bias: bool, init: Init, rng: &mut R) -> Self {
        let (w_std, b_std) = init.stds(inputs);
        let mut draw = |std: f64| T::lit(std) * T::standard_normal(rng);
        let weight = DMatrix::from_fn(inputs, outputs, |_, _| draw(w_std));
        let bias = bias.then(|| DVector::from_fn(outputs, |_, _| draw(b_std)));
        Self::assemble(weight, bias)
    }

    /// A layer from given parameters: `weight` is `inputs × outputs`, `bias` has `outputs` rows.
    pub fn from_parts(weight: DMatrix<T>, bias: Option<DVector<T>>) -> Result<Self> {
        if let Some(b) = &bias
            && b.nrows() != weight.ncols()
        {
            return Err(Error::shape(
                "layer bias",
                format!("{} rows (one per output)", weight.ncols()),
                format!("{} rows", b.nrows()),
            ));
        }
        Ok(Self::assemble(weight, bias))
    }

    fn assemble(weight: DMatrix<T>, bias: Option<DVector<T>>) -> Self {
        let mut params = vec![Parameter::new("weight", weight, true)];
        if let Some(b) = bias {
            let rows = b.nrows();
            params.push(Parameter::new(
                "bias",
                b.reshape_generic(nalgebra::Dyn(rows), nalgebra::Dyn(1)),
                false,
            ));
        }
        Layer { params }
    }

    /// Number of inputs (rows of `W`).
    #[must_use]
    pub fn inputs(&self) -> usize {
        self.weight().nrows()
    }

    /// Number of outputs (columns of `W`).
    #[must_use]
    pub fn outputs(&self) -> usize {
        self.weight().ncols()
    }

    /// The weight matrix `W` (`inputs × outputs`).
    #[must_use]
    pub fn weight(&self) -> &DMatrix<T> {
        self.params[0].value()
    }

    /// The bias (`outputs × 1`), if the layer has one.
    #[must_use]
    pub fn bias(&self) -> Option<&DMatrix<T>> {
        self.params.get(1).map(Parameter::value)
    }
}

impl<T: Float> Module<T> for Layer<T> {
    fn kind(&self) -> &'static str {
        "Layer"
    }

    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        if input_rows == self.inputs() {
            Ok(self.outputs())
        } else {
            Err(Error::shape("layer input", format!("{} rows", self.inputs()), format!("{input_rows} rows")))
        }
    }

    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        // Seed the output with the bias and let the product accumulate onto it (beta = 1): the
        // bias add costs no extra pass over the output.
        let beta = match self.bias() {
            Some(b) => {
                let (rows, cols) = output.shape();
                let fill = |out: ColsMut<'_, T>| {
                    out.0.chunks_exact_mut(rows).for_each(|col| col.copy_from_slice(b.as_slice()));
                };
                for_column_blocks(cols, rows, ColsMut(output.as_mut_slice(), rows), &fill, &|(), ()| ());
                T::one()
            }
            None => T::zero(),
        };
        gemm(T::one(), self.weight(), Op::T, input, Op::Id, beta, output);
    }

    fn backward(
        &mut self,
        input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        if let Some(dx) = grad_input {
            gemm(T::one(), self.weight(), Op::Id, grad_output, Op::Id, T::zero(), dx);
        }
        // dW = x·δᵀ: δ is read transposed through its strides, never copied.
        gemm(T::one(), input, Op::Id, grad_output, Op::T, T::zero(), &mut self.params[0].grad_mut());
        if let Some(bias) = self.params.get_mut(1) {
            // db = Σ over the batch of δ's columns. Each block owns a range of bias entries and
            // walks every column, reading that range of it (contiguous); every entry is summed
            // in column order whatever the blocks, so one block per thread (long contiguous
            // ranges: 16 short ones ran at half the speed on a full batch).
            let (rows, cols) = grad_output.shape();
            let delta = grad_output.as_slice();
            let block = |(db, span): (ColsMut<'_, T>, Span)| {
                simd(
                    #[inline(always)]
                    || {
                        db.0.fill(T::zero());
                        for col in delta.chunks_exact(rows) {
                            for (s, &d) in db.0.iter_mut().zip(&col[span.0.clone()]) {
                                *s += d;
                            }
                        }
                    },
                )
            };
            let data = (ColsMut(bias.grad_slice_mut(), 1), Span(0..rows));
            let blocks = if rows * cols < 1 << 14 { 1 } else { crate::parallel::threads() };
            for_blocks(blocks, rows, data, &block, &|(), ()| ());
        }
    }

    fn parameters(&self) -> &[Parameter<T>] {
        &self.params
    }

    fn parameters_mut(&mut self) -> &mut [Parameter<T>] {
        &mut self.params
    }
}
