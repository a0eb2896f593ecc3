//! [`Layer`]: the fully connected layer `y = f(Wᵀx + b)`, `f` an optional fused [`Activation`].
//!
//! `W` is `inputs × outputs`, as in the original recipe's `W0` (784×256). Column-major, so column
//! `j` of `W` (the weights into output unit `j`) is contiguous: the memory is the same as a
//! row-major `[outputs, inputs]` array, PyTorch's `nn.Linear.weight` layout.
//!
//! | | forward | backward (given dL/dy) |
//! |---|---|---|
//! | `z = Wᵀx + b`, `y = f(z)` | one product, then `f(z + b)` in place | `δ = dL/dz = f'(z) ⊙ dL/dy`; `dW = x·δᵀ`, `db = Σ_batch δ`, `dx = W·δ` |
//!
//! `f'` is read off the output (`1{y > 0}` for ReLU), so `z` is never stored. For an activation
//! whose derivative needs `z` (GELU, SiLU), the training forward pass
//! ([`forward_train`](Module::forward_train)) computes `f'(z)` beside `f(z)` and keeps it for
//! backward: one buffer of the layer's outputs, where recomputing `z` would cost a product.

use crate::activation::{ActivationFunction, DerivativeFrom, with_function};
use crate::error::plural;
use crate::linalg::{Op, ensure_shape, flush_subnormal, gemm, map1, map2, simd, update, update_pair};
use crate::parallel::{Cols, ColsMut, MAX_BLOCKS, for_column_blocks};
use crate::{Activation, Error, Float, Module, Parameter, Regularization, Result, TrainContext};
use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngExt};
use std::sync::Mutex;

/// How to draw a layer's initial parameters. `n_in` and `n_out` are the layer's inputs and
/// outputs (fan-in and fan-out); `N(0, s²)` is a normal draw with standard deviation `s`,
/// `U(−a, a)` a uniform one.
///
/// | variant | weights | bias |
/// |---|---|---|
/// | [`He`](Init::He) (Kaiming normal, the default) | `N(0, 2/n_in)` | 0 |
/// | [`HeUniform`](Init::HeUniform) | `U(−a, a)`, `a = √(6/n_in)` | 0 |
/// | [`XavierNormal`](Init::XavierNormal) (Glorot) | `N(0, 2/(n_in + n_out))` | 0 |
/// | [`XavierUniform`](Init::XavierUniform) (Glorot) | `U(−a, a)`, `a = √(6/(n_in + n_out))` | 0 |
/// | [`LecunNormal`](Init::LecunNormal) | `N(0, 1/n_in)` | 0 |
/// | [`PytorchLinear`](Init::PytorchLinear) (`nn.Linear`'s default) | `U(−a, a)`, `a = 1/√n_in` | `U(−a, a)` |
/// | [`Normal`](Init::Normal) ([`Init::normal`]) | `N(0, weight_std²)` | `N(0, bias_std²)` |
/// | [`Zeros`](Init::Zeros) | 0 | 0 |
///
/// He suits ReLU-like activations, Xavier tanh and sigmoid, LeCun SELU-like ones.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Init {
    /// He/Kaiming normal: `W ~ N(0, 2/n_in)`, `b = 0`. The default, suited to ReLU networks.
    #[default]
    He,
    /// He/Kaiming uniform: `W ~ U(−a, a)`, `a = √(6/n_in)`, `b = 0`.
    HeUniform,
    /// Xavier/Glorot normal: `W ~ N(0, 2/(n_in + n_out))`, `b = 0`.
    XavierNormal,
    /// Xavier/Glorot uniform: `W ~ U(−a, a)`, `a = √(6/(n_in + n_out))`, `b = 0`.
    XavierUniform,
    /// LeCun normal: `W ~ N(0, 1/n_in)`, `b = 0`.
    LecunNormal,
    /// PyTorch's `nn.Linear` default: `W` and `b ~ U(−a, a)`, `a = 1/√n_in`.
    PytorchLinear,
    /// `W ~ weight_std·N(0,1)`, `b ~ bias_std·N(0,1)`; build it with [`Init::normal`], which
    /// checks the deviations. The original recipe uses [`Init::SEED_RECIPE`].
    Normal(NormalInit),
    /// `W = 0`, `b = 0`: the last layer of a [`Residual`](crate::Residual) body, so that the
    /// block starts as the identity and a deep stack of blocks starts as a shallow network
    /// (the zero-initialized residual branch of Goyal et al., 2017). Not for a plain stack:
    /// the layer's units would all start alike and the layers below it would get no gradient
    /// until it moves.
    Zeros,
}

/// One draw of an initial value.
#[derive(Clone, Copy)]
enum Draw {
    /// `N(0, s²)`.
    Normal(f64),
    /// `U(−a, a)`.
    Uniform(f64),
}

impl Draw {
    fn sample<T: Float, R: Rng + ?Sized>(self, rng: &mut R) -> T {
        match self {
            Draw::Normal(std) => T::lit(std) * T::standard_normal(rng),
            // A bound of 0 (a layer of no inputs) draws 0 instead of an empty range.
            Draw::Uniform(a) if a > 0.0 => T::lit(rng.random_range(-a..a)),
            Draw::Uniform(_) => T::zero(),
        }
    }
}

/// The standard deviations of [`Init::Normal`]: finite and ≥ 0, checked by [`Init::normal`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormalInit {
    weight_std: f64,
    bias_std: f64,
}

impl NormalInit {
    /// Standard deviation of the weights.
    #[must_use]
    pub fn weight_std(&self) -> f64 {
        self.weight_std
    }

    /// Standard deviation of the bias.
    #[must_use]
    pub fn bias_std(&self) -> f64 {
        self.bias_std
    }
}

impl Init {
    /// The original recipe: weights `0.1·N(0,1)`, hidden bias `N(0,1)`.
    pub const SEED_RECIPE: Init = Init::Normal(NormalInit { weight_std: 0.1, bias_std: 1.0 });

    /// `W ~ weight_std·N(0,1)`, `b ~ bias_std·N(0,1)`; each deviation must be finite and ≥ 0
    /// (a NaN would give a network of NaNs that predicts class 0 for everything).
    ///
    /// ```
    /// use feedforward::Init;
    /// assert!(Init::normal(0.1, 1.0).is_ok());
    /// assert!(Init::normal(f64::NAN, 1.0).is_err() && Init::normal(0.1, -1.0).is_err());
    /// ```
    pub fn normal(weight_std: f64, bias_std: f64) -> Result<Init> {
        for (name, value) in [("weight std", weight_std), ("bias std", bias_std)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::InvalidHyperparameter {
                    name,
                    value,
                    requirement: "must be finite and >= 0",
                });
            }
        }
        Ok(Init::Normal(NormalInit { weight_std, bias_std }))
    }

    /// How the weights and the bias of an `inputs × outputs` layer are drawn.
    fn draws(self, inputs: usize, outputs: usize) -> (Draw, Draw) {
        let (n_in, n_both) = (inputs.max(1) as f64, (inputs + outputs).max(1) as f64);
        let zero = Draw::Normal(0.0);
        match self {
            Init::He => (Draw::Normal((2.0 / n_in).sqrt()), zero),
            Init::HeUniform => (Draw::Uniform((6.0 / n_in).sqrt()), zero),
            Init::XavierNormal => (Draw::Normal((2.0 / n_both).sqrt()), zero),
            Init::XavierUniform => (Draw::Uniform((6.0 / n_both).sqrt()), zero),
            Init::LecunNormal => (Draw::Normal((1.0 / n_in).sqrt()), zero),
            Init::PytorchLinear => (Draw::Uniform(1.0 / n_in.sqrt()), Draw::Uniform(1.0 / n_in.sqrt())),
            Init::Normal(n) => (Draw::Normal(n.weight_std), Draw::Normal(n.bias_std)),
            Init::Zeros => (zero, zero),
        }
    }
}

/// A fully connected layer `y = f(Wᵀx + b)` with an optional bias and an optional fused
/// activation `f` (the identity unless set with [`with_activation`](Layer::with_activation)).
///
/// Parameters, in order: `weight` (`inputs × outputs`, regularized), then `bias` (`outputs × 1`,
/// not regularized) if present.
///
/// `{:?}` shows its shape, bias and activation: not the weights, nor the scratch buffers of
/// its backward pass (a whole batch's worth).
pub struct Layer<T: Float> {
    /// `[weight]` or `[weight, bias]`.
    params: Vec<Parameter<T>>,
    activation: Activation,
    /// Backward scratch: `δ = dL/dz` when `f` is not the identity (`dL/dy` is read-only).
    delta: DMatrix<T>,
    /// Backward scratch: the bias gradient of each column block, summed in block order.
    bias_partials: DMatrix<T>,
    /// `f'(z)` of the last training forward pass, for an activation whose derivative reads `z`.
    derivative: DMatrix<T>,
    /// Whether `derivative` belongs to the batch backward is given: set by `forward_train`,
    /// cleared by `backward`, so a backward after a plain `forward` recomputes it instead.
    derivative_kept: bool,
}

impl<T: Float> std::fmt::Debug for Layer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer")
            .field("inputs", &self.inputs())
            .field("outputs", &self.outputs())
            .field("bias", &self.bias().is_some())
            .field("activation", &self.activation)
            .finish_non_exhaustive()
    }
}

/// Two layers are equal when their parameters and activations are (scratch buffers aside).
impl<T: Float> PartialEq for Layer<T> {
    fn eq(&self, other: &Self) -> bool {
        self.params == other.params && self.activation == other.activation
    }
}

/// A clone has the same parameters and activation, and empty scratch buffers (they hold
/// nothing between calls, and are a batch's worth of memory).
impl<T: Float> Clone for Layer<T> {
    fn clone(&self) -> Self {
        Self::assemble_with(self.params.clone(), self.activation)
    }
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
        let (w, b) = init.draws(inputs, outputs);
        let weight = DMatrix::from_fn(inputs, outputs, |_, _| w.sample(rng));
        let bias = bias.then(|| DVector::from_fn(outputs, |_, _| b.sample(rng)));
        Self::assemble(weight, bias)
    }

    /// A layer from given parameters: `weight` is `inputs × outputs`, `bias` has `outputs` rows.
    pub fn from_parts(weight: DMatrix<T>, bias: Option<DVector<T>>) -> Result<Self> {
        if let Some(b) = &bias
            && b.nrows() != weight.ncols()
        {
            return Err(Error::shape(
                "layer bias",
                format!("{} (one per output)", plural(weight.ncols(), "row")),
                plural(b.nrows(), "row"),
            ));
        }
        Ok(Self::assemble(weight, bias))
    }

    fn assemble(weight: DMatrix<T>, bias: Option<DVector<T>>) -> Self {
        let mut params = vec![Parameter::new("weight", weight, Regularization::Applied)];
        if let Some(b) = bias {
            let rows = b.nrows();
            params.push(Parameter::new(
                "bias",
                b.reshape_generic(nalgebra::Dyn(rows), nalgebra::Dyn(1)),
                Regularization::Exempt,
            ));
        }
        Self::assemble_with(params, Activation::Identity)
    }

    fn assemble_with(params: Vec<Parameter<T>>, activation: Activation) -> Self {
        let empty = || DMatrix::zeros(0, 0);
        Layer {
            params,
            activation,
            delta: empty(),
            bias_partials: empty(),
            derivative: empty(),
            derivative_kept: false,
        }
    }

    /// The same layer with `activation` applied to its output, fused into its own passes.
    ///
    /// ```
    /// use feedforward::{Activation, Init, Layer};
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let hidden = Layer::<f32>::new(784, 256, Init::He, &mut rng).with_activation(Activation::Relu);
    /// assert_eq!(hidden.activation(), Activation::Relu);
    /// ```
    #[must_use]
    pub fn with_activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// The activation applied to `Wᵀx + b`.
    #[must_use]
    pub fn activation(&self) -> Activation {
        self.activation
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
            Err(Error::shape("layer input", plural(self.inputs(), "row"), plural(input_rows, "row")))
        }
    }

    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        gemm(T::one(), self.weight(), Op::T, input, Op::Id, T::zero(), output);
        let bias = self.bias().map(|b| b.as_slice());
        if self.activation != Activation::Identity || bias.is_some() {
            with_function!(self.activation, f => activation_pass(output, Writes::Value, bias, f));
        }
    }

    /// As [`forward`](Module::forward); an activation whose derivative reads `z` also gets
    /// `f'(z)` computed in the same pass and kept for [`backward`](Module::backward).
    fn forward_train(&mut self, input: &DMatrix<T>, output: &mut DMatrix<T>, _: &mut TrainContext) {
        if self.activation.derivative_from() == DerivativeFrom::Output {
            return self.forward(input, output);
        }
        let Layer { params, activation, derivative, derivative_kept, .. } = self;
        gemm(T::one(), params[0].value(), Op::T, input, Op::Id, T::zero(), output);
        ensure_shape(derivative, output.nrows(), output.ncols());
        let bias = params.get(1).map(|b| b.value().as_slice());
        let writes = Writes::ValueAndDerivative(derivative);
        with_function!(*activation, f => activation_pass(output, writes, bias, f));
        *derivative_kept = true;
    }

    fn backward(
        &mut self,
        input: &DMatrix<T>,
        output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        let Layer { params, activation, delta, bias_partials, derivative, derivative_kept } = self;
        let (weight, bias) = match params.split_first_mut() {
            Some((w, rest)) => (w, rest.first_mut()),
            None => unreachable!("a layer always has a weight"),
        };
        // f' is read off y, or is f'(z) as kept by forward_train. Without one (a composite
        // module that ran this layer's plain `forward`), Wᵀx is recomputed into the δ scratch
        // (which holds δ below) and f'(Wᵀx + b) taken from it.
        let at: &DMatrix<T> = match activation.derivative_from() {
            DerivativeFrom::Output => output,
            DerivativeFrom::Input => {
                if !*derivative_kept {
                    let (rows, cols) = grad_output.shape();
                    ensure_shape(delta, rows, cols);
                    ensure_shape(derivative, rows, cols);
                    gemm(T::one(), weight.value(), Op::T, input, Op::Id, T::zero(), delta);
                    let b = bias.as_ref().map(|b| b.value().as_slice());
                    let writes = Writes::Derivative(derivative);
                    with_function!(*activation, f => activation_pass(delta, writes, b, f));
                }
                derivative
            }
        };
        *derivative_kept = false;
        // A frozen tensor's gradient is not needed (`Parameter::freeze`): skip its sum.
        let bias = bias.filter(|b| !b.is_frozen()).map(Parameter::grad_slice_mut);
        // δ = dL/dz: dL/dy itself for the identity, else written to the scratch buffer.
        let delta = if *activation == Activation::Identity {
            if bias.is_some() {
                delta_and_bias_gradient(None, at, grad_output, bias, bias_partials, |_, dy| dy);
            }
            grad_output
        } else {
            let (rows, cols) = grad_output.shape();
            ensure_shape(delta, rows, cols);
            let d = Some(&mut *delta);
            with_function!(*activation, f => {
                delta_and_bias_gradient(d, at, grad_output, bias, bias_partials, move |at, dy| {
                    flush_subnormal(local_gradient(f, at, dy))
                })
            });
            delta
        };
        if let Some(dx) = grad_input {
            gemm(T::one(), weight.value(), Op::Id, delta, Op::Id, T::zero(), dx);
        }
        // dW = x·δᵀ: δ is read transposed through its strides, never copied.
        if !weight.is_frozen() {
            gemm(T::one(), input, Op::Id, delta, Op::T, T::zero(), &mut weight.grad_mut());
        }
    }

    fn visit_parameters<'a>(&'a self, visit: &mut dyn FnMut(&'a Parameter<T>)) {
        self.params.iter().for_each(visit);
    }

    fn visit_parameters_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut Parameter<T>)) {
        self.params.iter_mut().for_each(visit);
    }

    /// A product `Wᵀx` with a NaN or ±inf in column `j` of `x` has a non-finite entry in column
    /// `j` (NaN·w and ∞·0 are NaN, ∞·w is ±∞, and a sum with such a term stays non-finite);
    /// the bias keeps it so, and so does the activation unless it saturates (tanh, sigmoid).
    fn propagates_non_finite(&self) -> bool {
        self.activation.propagates_non_finite()
    }

    fn describe(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        let mut spec = serde_json::Map::new();
        spec.insert("inputs".into(), self.inputs().into());
        spec.insert("outputs".into(), self.outputs().into());
        spec.insert("bias".into(), self.bias().is_some().into());
        spec.insert("activation".into(), self.activation.name().into());
        spec.extend(self.activation.settings());
        Some(spec)
    }
}

/// `dL/dz` from `dL/dy` and `at`, the value backward reads for `f`: the output `y`, or `f'(z)`
/// itself as kept by [`forward_train`](Module::forward_train) for a derivative that reads `z`.
#[inline(always)]
fn local_gradient<T: Float, A: ActivationFunction>(f: A, at: T, dy: T) -> T {
    match A::DERIVATIVE_FROM {
        DerivativeFrom::Output => f.gradient(at, dy),
        DerivativeFrom::Input => at * dy,
    }
}

/// What [`activation_pass`] computes from `z = y + b`.
enum Writes<'a, T> {
    /// `f(z)`, over `y`.
    Value,
    /// `f(z)` over `y`, and `f'(z)` into the matrix (a training pass, for a derivative that
    /// reads `z`).
    ValueAndDerivative(&'a mut DMatrix<T>),
    /// `f'(z)` into the matrix; `y` is left as it is.
    Derivative(&'a mut DMatrix<T>),
}

/// A layer's bias and activation in one pass over its output `y` (`b`, when given, added to
/// every column), as `writes` says. Everything for a column is computed while it is in L1.
fn activation_pass<T: Float, A: ActivationFunction>(
    y: &mut DMatrix<T>,
    writes: Writes<'_, T>,
    bias: Option<&[T]>,
    f: A,
) {
    let (rows, cols) = y.shape();
    if rows == 0 {
        return;
    }
    let (value, derivative) = match writes {
        Writes::Value => (true, None),
        Writes::ValueAndDerivative(d) => (true, Some(d)),
        Writes::Derivative(d) => (false, Some(d)),
    };
    let block = |(y, d): (ColsMut<'_, T>, Option<ColsMut<'_, T>>)| {
        simd(
            #[inline(always)]
            || {
                let mut d = d.map(|d| d.0.chunks_exact_mut(rows));
                for y in y.0.chunks_exact_mut(rows) {
                    match (d.as_mut().and_then(Iterator::next), bias, value) {
                        (Some(d), Some(b), true) => update_pair(y, d, b, |z, b| f.f_and_derivative(z + b)),
                        (Some(d), Some(b), false) => map2(d, y, b, |z, b| f.derivative(z + b)),
                        (Some(d), None, _) => map1(d, y, |z| f.derivative(z)),
                        (None, Some(b), _) => update(y, b, |z, b| f.f(z + b)),
                        (None, None, _) => {}
                    }
                    // Without a bias, f(z) is a second pass over the column, after f'(z) (which
                    // reads z): one slice vectorizes without the chunking of `update`.
                    if value && bias.is_none() {
                        y.iter_mut().for_each(|z| *z = f.f(*z));
                    }
                }
            },
        )
    };
    let data = (ColsMut(y.as_mut_slice(), rows), derivative.map(|d| ColsMut(d.as_mut_slice(), rows)));
    for_column_blocks(cols, rows, data, &block, &|(), ()| ());
}

/// One pass over the batch: `δ = gradient(y, dy)` column by column into `delta` (when given;
/// otherwise δ is `dy` itself), and `db = Σ_batch δ` into `bias_grad` (when given).
///
/// Each column block sums its columns into a partial bias gradient of its own (a column of
/// `partials`); the partials are added in block order, so the sum does not depend on the
/// thread count.
fn delta_and_bias_gradient<T: Float>(
    delta: Option<&mut DMatrix<T>>,
    y: &DMatrix<T>,
    dy: &DMatrix<T>,
    bias_grad: Option<&mut [T]>,
    partials: &mut DMatrix<T>,
    gradient: impl Fn(T, T) -> T + Copy + Sync,
) {
    let (rows, cols) = dy.shape();
    if rows == 0 {
        return;
    }
    ensure_shape(partials, rows, MAX_BLOCKS);
    let slots = Mutex::new(partials.as_mut_slice().chunks_exact_mut(rows));
    let want_sum = bias_grad.is_some();
    let block = |(d, y, dy): (Option<ColsMut<'_, T>>, Cols<'_, T>, Cols<'_, T>)| {
        let mut sum = want_sum.then(|| {
            let slot = slots.lock().ok().and_then(|mut s| s.next());
            slot.expect("one partial per block, at most MAX_BLOCKS blocks")
        });
        simd(
            #[inline(always)]
            || {
                if let Some(sum) = sum.as_deref_mut() {
                    sum.fill(T::zero());
                }
                let mut d = d.map(|d| d.0.chunks_exact_mut(rows));
                for (y, dy) in y.0.chunks_exact(rows).zip(dy.0.chunks_exact(rows)) {
                    // The column is still in L1 when the sum reads it back.
                    let delta = match d.as_mut().and_then(Iterator::next) {
                        Some(d) => {
                            map2(d, y, dy, gradient);
                            &*d
                        }
                        None => dy,
                    };
                    if let Some(sum) = sum.as_deref_mut() {
                        update(sum, delta, |s, d| s + d);
                    }
                }
            },
        );
        sum
    };
    let data =
        (delta.map(|d| ColsMut(d.as_mut_slice(), rows)), Cols(y.as_slice(), rows), Cols(dy.as_slice(), rows));
    let total = for_column_blocks(cols, rows, data, &block, &|mut a, b| {
        if let (Some(a), Some(b)) = (a.as_deref_mut(), b.as_deref()) {
            update(a, b, |x, y| x + y);
        }
        a
    });
    if let (Some(db), Some(total)) = (bias_grad, total) {
        db.copy_from_slice(total);
    }
}
