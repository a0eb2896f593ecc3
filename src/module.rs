//! The [`Module`] trait: what a [`Network`](crate::Network) needs from each of its stages.
//!
//! A module is a function `y = f(x)` on a batch (one sample per column) that also knows its local
//! gradient. The network owns the activation buffers; a module only reads `x` and writes `y`, and
//! in backward reads `x`, `y`, `dL/dy` and writes `dL/dx` plus its own parameter gradients. That
//! keeps modules free of per-call state except for their parameters (and scratch space of their
//! own that backward may reuse), and lets a downstream crate add its own kind (see the `Tanh`
//! and the composite `SkipPair` block in `tests/custom_module.rs`; the crate's own composite
//! is [`Residual`](crate::Residual)).
//!
//! **Gradients are overwritten, never accumulated.** Each backward pass writes `dL/dP` into
//! every parameter's gradient and `dL/dx` into `grad_input`, replacing what was there; nothing
//! needs zeroing between steps. A module that uses a parameter twice sums both contributions
//! itself before writing.

use crate::{Error, Float, Result};
use nalgebra::{DMatrix, DMatrixViewMut};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};

/// Whether the network's L2 penalty, and an optimizer's weight decay by default, apply to a
/// [`Parameter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Regularization {
    /// Penalized and decayed: a layer's weights.
    Applied,
    /// Neither penalized nor decayed (unless an optimizer's
    /// [`DecayScope::All`](crate::optim::DecayScope::All) decays every tensor): a layer's bias,
    /// a scale or an offset.
    Exempt,
}

/// A trainable tensor with its gradient, as optimizers, the L2 penalty and save/load see it.
///
/// `{:?}` shows its name, shape and [`Regularization`], not its values (a weight matrix holds
/// hundreds of thousands; [`value`](Parameter::value) has them).
#[derive(Clone, PartialEq)]
pub struct Parameter<T: Float> {
    name: String,
    value: DMatrix<T>,
    grad: DMatrix<T>,
    regularization: Regularization,
    /// Whether training steps leave the value alone ([`Parameter::freeze`]).
    frozen: bool,
}

impl<T: Float> std::fmt::Debug for Parameter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parameter")
            .field("name", &self.name)
            .field("shape", &format_args!("{}×{}", self.value.nrows(), self.value.ncols()))
            .field("regularization", &self.regularization)
            .field("frozen", &self.frozen)
            .finish_non_exhaustive()
    }
}

impl<T: Float> Parameter<T> {
    /// A parameter with a zero gradient. `regularization` says whether the L2 penalty applies
    /// (weights: [`Regularization::Applied`], biases: [`Regularization::Exempt`]).
    ///
    /// ```
    /// use feedforward::{Parameter, Regularization};
    /// use nalgebra::DMatrix;
    /// let scale = Parameter::new("scale", DMatrix::<f32>::from_element(3, 1, 1.0), Regularization::Exempt);
    /// assert_eq!((scale.name(), scale.len(), scale.grad()[0]), ("scale", 3, 0.0));
    /// assert!(!scale.is_regularized());
    /// ```
    pub fn new(name: impl Into<String>, value: DMatrix<T>, regularization: Regularization) -> Self {
        let grad = DMatrix::zeros(value.nrows(), value.ncols());
        Parameter { name: name.into(), value, grad, regularization, frozen: false }
    }

    /// Short name within its module: `"weight"` or `"bias"` for a [`Layer`](crate::Layer).
    /// Weight files name the tensor `layer{k}.{name}`, so the names within one module must
    /// differ.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the parameter: a composite module prefixes its children's parameter names
    /// (see [`prefix_parameter_names`]).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Whether the network's L2 penalty `alpha/2·‖P‖²`, and by default an optimizer's weight
    /// decay, apply to this tensor.
    #[must_use]
    pub fn regularization(&self) -> Regularization {
        self.regularization
    }

    /// Whether the network's L2 penalty includes this tensor:
    /// `self.regularization() == Regularization::Applied`.
    #[must_use]
    pub fn is_regularized(&self) -> bool {
        self.regularization == Regularization::Applied
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

    /// The value to read and the gradient to write, borrowed at once: a backward pass whose
    /// gradient depends on the value (`dL/ds = Σ x·dL/dy` for `y = s·x`, say) needs both.
    ///
    /// ```
    /// use feedforward::{Parameter, Regularization};
    /// use nalgebra::DMatrix;
    /// let mut p = Parameter::new("w", DMatrix::<f64>::from_element(2, 2, 3.0), Regularization::Applied);
    /// let (value, mut grad) = p.value_and_grad_mut();
    /// grad.copy_from(&(value * 2.0));
    /// assert_eq!(p.grad()[(1, 1)], 6.0);
    /// ```
    pub fn value_and_grad_mut(&mut self) -> (&DMatrix<T>, DMatrixViewMut<'_, T>) {
        (&self.value, self.grad.as_view_mut())
    }

    /// Freezes the parameter (PyTorch's `requires_grad_(False)`, for fine-tuning): training
    /// steps leave its value alone and do not hand it to the optimizer, and gradient clipping
    /// leaves it out of the global norm. Its gradient is not needed, and may not be written:
    /// a network's backward pass stops at the lowest module with a trainable parameter, so a
    /// frozen body costs only its forward pass, and a [`Layer`](crate::Layer) above it skips
    /// the products of its frozen tensors' gradients ([`BatchNorm`](crate::BatchNorm) and
    /// [`LayerNorm`](crate::LayerNorm) their sums; gradient checks skip them too). The
    /// network's L2 penalty still counts it in the loss. Not saved in model files.
    ///
    /// ```
    /// use feedforward::{Parameter, Regularization};
    /// use nalgebra::DMatrix;
    /// let mut w = Parameter::new("weight", DMatrix::<f32>::zeros(2, 2), Regularization::Applied);
    /// w.freeze();
    /// assert!(w.is_frozen());
    /// w.unfreeze();
    /// assert!(!w.is_frozen());
    /// ```
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    /// Lets training steps update the parameter again (the default).
    pub fn unfreeze(&mut self) {
        self.frozen = false;
    }

    /// Whether the parameter is frozen ([`Parameter::freeze`]).
    #[must_use]
    pub fn is_frozen(&self) -> bool {
        self.frozen
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

/// A module's state that is not trained but belongs to the model, so model files and
/// checkpoints hold it (PyTorch's buffers): [`BatchNorm`](crate::BatchNorm)'s running
/// statistics. Optimizers, the L2 penalty, weight decay and gradient checks never see it.
///
/// ```
/// use feedforward::module::Buffer;
/// use nalgebra::DMatrix;
/// let mut running = Buffer::new("running_mean", DMatrix::<f32>::zeros(3, 1));
/// running.value_mut()[1] = 0.5;
/// assert_eq!((running.name(), running.len(), running.value()[1]), ("running_mean", 3, 0.5));
/// ```
#[derive(Clone, PartialEq)]
pub struct Buffer<T: Float> {
    name: String,
    value: DMatrix<T>,
    domain: BufferDomain,
}

/// The values a [`Buffer`] may hold. Loading a model file or a checkpoint checks every buffer
/// against its domain, so that a corrupt file is refused with the tensor's name instead of
/// turning the network's outputs into NaN later.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BufferDomain {
    /// Any finite number.
    #[default]
    Finite,
    /// A finite number that is not negative: a variance, a count.
    NonNegative,
}

impl BufferDomain {
    /// Position and value of the first entry of `values` outside the domain, if any.
    #[must_use]
    pub fn first_outside<T: Float>(self, values: &[T]) -> Option<(usize, T)> {
        let inside = |v: T| match self {
            BufferDomain::Finite => v.is_finite(),
            BufferDomain::NonNegative => v.is_finite() && v >= T::zero(),
        };
        values.iter().position(|&v| !inside(v)).map(|i| (i, values[i]))
    }

    /// What the domain asks, for messages: `"finite"`, `"finite and not negative"`.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            BufferDomain::Finite => "finite",
            BufferDomain::NonNegative => "finite and not negative",
        }
    }
}

/// Shows its name and shape, not its values.
impl<T: Float> std::fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("name", &self.name)
            .field("shape", &format_args!("{}×{}", self.value.nrows(), self.value.ncols()))
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl<T: Float> Buffer<T> {
    /// A buffer called `name` holding `value`. Model files name the tensor
    /// `layer{k}.{name}`, beside the module's parameters: the names within one module must
    /// differ.
    ///
    /// Its [`BufferDomain`] is [`Finite`](BufferDomain::Finite); see [`Buffer::with_domain`].
    pub fn new(name: impl Into<String>, value: DMatrix<T>) -> Self {
        Buffer { name: name.into(), value, domain: BufferDomain::Finite }
    }

    /// The same buffer, with the values a model file may give it restricted to `domain`
    /// (checked when a file is loaded, not when the module writes the buffer).
    ///
    /// ```
    /// use feedforward::module::{Buffer, BufferDomain};
    /// use nalgebra::DMatrix;
    /// let var = Buffer::new("running_var", DMatrix::<f32>::from_element(2, 1, 1.0))
    ///     .with_domain(BufferDomain::NonNegative);
    /// assert_eq!(var.domain(), BufferDomain::NonNegative);
    /// assert_eq!(var.domain().first_outside(&[0.5_f32, -1.0]), Some((1, -1.0)));
    /// ```
    #[must_use]
    pub fn with_domain(mut self, domain: BufferDomain) -> Self {
        self.domain = domain;
        self
    }

    /// The values a model file may give this buffer.
    #[must_use]
    pub fn domain(&self) -> BufferDomain {
        self.domain
    }

    /// Short name within its module, e.g. `"running_mean"`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the buffer (see [`prefix_parameter_names`], which renames buffers too).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
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

    /// Number of scalar entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// True when the buffer has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

/// One stage of a [`Network`](crate::Network): forward, local gradient, parameters.
///
/// Shapes: `input` is `input_rows × batch`, `output` is `output_rows(input_rows) × batch`; the
/// network sizes every buffer before calling, so implementations need not allocate.
///
/// A composite module (one holding others, like [`Residual`](crate::Residual))
/// forwards every method with a default to its children where they may need it:
/// [`forward_train`](Module::forward_train) (each child with a stream of its own,
/// [`TrainContext::child`]), [`visit_parameters`](Module::visit_parameters)
/// and [`visit_buffers`](Module::visit_buffers) (and their `_mut` twins),
/// [`check_training_batch`](Module::check_training_batch) and
/// [`commit_step`](Module::commit_step): a [`BatchNorm`](crate::BatchNorm) child needs them all;
/// and [`check_input`](Module::check_input) to a child that takes the module's own input (an
/// [`Embedding`](crate::Embedding) child needs it).
///
/// `forward` takes `&self`, so one network serves predictions from many threads at once; a
/// module must therefore be `Send + Sync`, and `Clone` (any `Clone` module gets
/// [`ModuleClone`] for free, which lets a [`Network`](crate::Network) clone itself).
///
/// A module is [`Any`](std::any::Any), so a network's boxed module can be reached as its own
/// type again: [`downcast_ref`](#method.downcast_ref) and [`downcast_mut`](#method.downcast_mut)
/// (to change a loaded network's [`BatchNorm`](crate::BatchNorm) settings, say).
pub trait Module<T: Float>: ModuleClone<T> + std::fmt::Debug + Send + Sync + std::any::Any {
    /// Short kind name for messages, summaries and model files, e.g. `"Layer"` or `"Relu"`.
    fn kind(&self) -> &'static str;

    /// Rows of the output for `input_rows` rows of input, or an error if this module cannot
    /// take that input (checked once, when the module is added to a network).
    fn output_rows(&self, input_rows: usize) -> Result<usize>;

    /// `output = f(input)`. The old contents of `output` are unspecified and must be overwritten.
    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>);

    /// `output = f(input)` in a training step, where a module may act differently from
    /// inference ([`Dropout`](crate::Dropout) drops) and keep what its backward pass needs.
    /// `context` carries the step's random numbers, drawn from a stream seeded by the network
    /// ([`Network::with_seed`](crate::Network::with_seed)) so that the same seed gives the same
    /// run; when [`TrainContext::replay`] is true (a gradient check), reuse what the last draw
    /// chose instead of drawing. Default: [`forward`](Module::forward).
    fn forward_train(&mut self, input: &DMatrix<T>, output: &mut DMatrix<T>, context: &mut TrainContext) {
        let _ = context;
        self.forward(input, output);
    }

    /// `output = f(input)` as in inference, given the module mutably: what
    /// [`Network::forward`](crate::Network::forward) calls, the inference pass into buffers the
    /// network owns. A module that holds buffers of its own (a
    /// [`Residual`](crate::Residual)'s body) reuses them here instead of allocating; the output
    /// must be [`forward`](Module::forward)'s. Default: `forward`.
    fn forward_mut(&mut self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        self.forward(input, output);
    }

    /// Given `input`, `output = f(input)` and `grad_output = dL/d(output)`: **overwrite** each
    /// parameter's gradient with `dL/dP`, and, when `grad_input` is given, overwrite it with
    /// `dL/d(input)`. A network does not ask the lowest module with a trainable parameter for
    /// `dL/d(input)`, and calls no `backward` below it: nothing there trains
    /// ([`Parameter::freeze`]).
    ///
    /// A network calls it after [`forward_train`](Module::forward_train) on the same batch, and
    /// a module may use what that pass kept ([`Dropout`](crate::Dropout)'s mask,
    /// [`BatchNorm`](crate::BatchNorm)'s statistics, a GELU [`Layer`](crate::Layer)'s `f'(z)`):
    /// a composite module runs its children's `forward_train` before their `backward`.
    ///
    /// The crate's own modules store 0 for values below the smallest normal number, which x86
    /// CPUs compute with many times slower, in every later product
    /// ([`linalg::flush_subnormals`](crate::linalg::flush_subnormals) does the same for yours).
    fn backward(
        &mut self,
        input: &DMatrix<T>,
        output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    );

    /// Calls `visit` on every trainable tensor, in a fixed order (the order optimizers, the L2
    /// penalty and weight files see them). A composite module visits its children's. Default:
    /// none.
    fn visit_parameters<'a>(&'a self, visit: &mut dyn FnMut(&'a Parameter<T>)) {
        let _ = visit;
    }

    /// Calls `visit` on every trainable tensor, mutably, in the order of
    /// [`visit_parameters`](Module::visit_parameters).
    fn visit_parameters_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut Parameter<T>)) {
        let _ = visit;
    }

    /// Calls `visit` on every [`Buffer`] (state saved with the model but not trained), in a
    /// fixed order. Default: none.
    fn visit_buffers<'a>(&'a self, visit: &mut dyn FnMut(&'a Buffer<T>)) {
        let _ = visit;
    }

    /// Calls `visit` on every [`Buffer`], mutably, in the order of
    /// [`visit_buffers`](Module::visit_buffers) (model files and checkpoints load them so).
    fn visit_buffers_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut Buffer<T>)) {
        let _ = visit;
    }

    /// Rejects an input this module cannot take for its values (its shape was checked by
    /// [`output_rows`](Module::output_rows)): an [`Embedding`](crate::Embedding)'s category
    /// indices. The error names the sample (column). A network calls it before it runs the
    /// module, in training and in inference, and [`train::fit`](crate::train::fit) calls the
    /// first module's on the whole training and validation sets before the first step. Default:
    /// any input.
    fn check_input(&self, input: &DMatrix<T>) -> Result<()> {
        let _ = input;
        Ok(())
    }

    /// Rejects a training batch of `samples` samples that this module cannot train on, before
    /// the step changes anything ([`BatchNorm`](crate::BatchNorm) needs at least two). Default:
    /// any batch.
    fn check_training_batch(&self, samples: usize) -> Result<()> {
        let _ = samples;
        Ok(())
    }

    /// Called once a training step is accepted, after the optimizer's commit: makes permanent
    /// what [`forward_train`](Module::forward_train) kept aside for it (BatchNorm's running
    /// statistics), so that a step rejected for a NaN leaves the module as it was. Steps that
    /// are only differentiated ([`Network::backward`](crate::Network::backward), gradient
    /// checks) never commit. Default: nothing.
    fn commit_step(&mut self) {}

    /// Whether the output holds a NaN or ±inf whenever the input does. When every module of a
    /// network says so, the network checks its output (a few rows) for NaN and ±inf instead
    /// of scanning every input (hundreds of rows), and scans the input only to name the sample
    /// once the output is found non-finite. Default: `false` (the input is scanned), the safe
    /// answer for a module that may clamp, saturate or select.
    fn propagates_non_finite(&self) -> bool {
        false
    }

    /// The module's settings for a model file's architecture, as a JSON object (its `"kind"` is
    /// added by the writer), or `None` when it cannot be rebuilt from a file: such a network
    /// still saves, and loads into a network the caller built
    /// ([`weights::load_into`](crate::weights::load_into)). Default: `None`.
    fn describe(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        None
    }
}

impl<T: Float> dyn Module<T> {
    /// The module's parameters, collected in visiting order (allocates; see [`parameters_of`]).
    #[must_use]
    pub fn parameters(&self) -> Vec<&Parameter<T>> {
        parameters_of(self)
    }

    /// The module's parameters, mutably, in visiting order (allocates; see
    /// [`parameters_of_mut`]).
    pub fn parameters_mut(&mut self) -> Vec<&mut Parameter<T>> {
        parameters_of_mut(self)
    }

    /// The module as an `M`, if it is one.
    ///
    /// ```
    /// use feedforward::{Init, Layer, Network, Relu};
    /// use rand::SeedableRng;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let net = Network::<f32>::new(3).push(Layer::new(3, 2, Init::He, &mut rng))?.push(Relu)?;
    /// let layer = net.modules()[0].downcast_ref::<Layer<f32>>().expect("module 0 is a Layer");
    /// assert_eq!(layer.weight().shape(), (3, 2));
    /// assert!(net.modules()[1].downcast_ref::<Layer<f32>>().is_none());
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    #[must_use]
    pub fn downcast_ref<M: Module<T>>(&self) -> Option<&M> {
        let any: &dyn std::any::Any = self;
        any.downcast_ref()
    }

    /// The module as an `M`, mutably, if it is one.
    pub fn downcast_mut<M: Module<T>>(&mut self) -> Option<&mut M> {
        let any: &mut dyn std::any::Any = self;
        any.downcast_mut()
    }
}

/// What a module's [`forward_train`](Module::forward_train) gets besides its data: the random
/// numbers of this step and module, and whether to replay the last draw.
#[derive(Clone, Debug)]
pub struct TrainContext {
    rng: Xoshiro256PlusPlus,
    replay: bool,
}

impl TrainContext {
    /// The stream of module number `module` at training step `step` (1-based) of a network
    /// seeded with `seed`: independent of every other (module, step) pair, and of the thread
    /// count.
    #[must_use]
    pub fn new(seed: u64, step: usize, module: usize) -> Self {
        // Each of the three spread over all 64 bits before they are combined, then expanded
        // by the generator's own seeding.
        let mix = seed
            ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (module as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f).rotate_left(31);
        TrainContext { rng: Xoshiro256PlusPlus::seed_from_u64(mix), replay: false }
    }

    /// The same stream, asking modules to reuse their last draw (gradient checks evaluate the
    /// training objective many times with the same dropout masks).
    #[must_use]
    pub fn replaying(mut self) -> Self {
        self.replay = true;
        self
    }

    /// A stream of its own for child number `child` of a composite module (a module holding
    /// others, as [`Residual`](crate::Residual) does), drawn from this one: the same on every
    /// run, and replaying when this one replays. Call it once per child per pass, in the
    /// children's order.
    #[must_use]
    pub fn child(&mut self, child: usize) -> TrainContext {
        let seed = self.rng.next_u64() ^ (child as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        TrainContext { rng: Xoshiro256PlusPlus::seed_from_u64(seed), replay: self.replay }
    }

    /// The random numbers to draw from.
    pub fn rng(&mut self) -> &mut Xoshiro256PlusPlus {
        &mut self.rng
    }

    /// Whether to reuse the last draw instead of drawing.
    #[must_use]
    pub fn replay(&self) -> bool {
        self.replay
    }
}

/// Cloning a boxed [`Module`]: implemented for every `Module + Clone`, so a module only needs
/// `#[derive(Clone)]` (or a `Clone` impl).
pub trait ModuleClone<T: Float> {
    /// A boxed copy of this module.
    fn clone_box(&self) -> Box<dyn Module<T>>;
}

impl<T: Float, M: Module<T> + Clone + 'static> ModuleClone<T> for M {
    fn clone_box(&self) -> Box<dyn Module<T>> {
        Box::new(self.clone())
    }
}

impl<T: Float> Clone for Box<dyn Module<T>> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Prefixes the name of every parameter (and [`Buffer`]) of `module` with `prefix` and a dot,
/// so that a composite module holding several children of one kind gives each tensor a
/// distinct name (`"0.weight"`, `"1.weight"`, …). Call it once, when the composite is built.
pub fn prefix_parameter_names<T: Float>(module: &mut dyn Module<T>, prefix: &str) {
    module.visit_parameters_mut(&mut |p| {
        let name = format!("{prefix}.{}", p.name());
        p.set_name(name);
    });
    module.visit_buffers_mut(&mut |b| {
        let name = format!("{prefix}.{}", b.name());
        b.set_name(name);
    });
}

/// The parameters of `module`, collected in visiting order (allocates; for inspection, not for
/// a hot loop).
#[must_use]
pub fn parameters_of<T: Float>(module: &dyn Module<T>) -> Vec<&Parameter<T>> {
    let mut out = Vec::new();
    module.visit_parameters(&mut |p| out.push(p));
    out
}

/// The parameters of `module`, mutably, collected in visiting order (allocates).
pub fn parameters_of_mut<T: Float>(module: &mut dyn Module<T>) -> Vec<&mut Parameter<T>> {
    let mut out = Vec::new();
    module.visit_parameters_mut(&mut |p| out.push(p));
    out
}

/// Checks that a module gives at least one output row; used when a module joins a network.
pub(crate) fn check_output_rows(kind: &str, rows: usize) -> Result<()> {
    if rows == 0 {
        return Err(Error::shape(kind, "at least one output row", "0 rows"));
    }
    Ok(())
}

/// For a module that keeps its input's rows (`features` of them): `input_rows` if it matches,
/// else an error naming `what` (e.g. `"LayerNorm input"`).
pub(crate) fn same_rows(what: &str, features: usize, input_rows: usize) -> Result<usize> {
    if input_rows != features {
        return Err(Error::shape(what, format!("{features} rows"), format!("{input_rows} rows")));
    }
    Ok(input_rows)
}

/// A normalization's trainable gain `γ` (`weight`, 1) and shift `β` (`bias`, 0), one per
/// feature, neither penalized nor decayed by default; `what` names the module in the error
/// for 0 features.
pub(crate) fn gain_and_shift<T: Float>(what: &str, features: usize) -> Result<(Parameter<T>, Parameter<T>)> {
    if features == 0 {
        return Err(Error::shape(what, "at least one feature", "0"));
    }
    let parameter =
        |name, value| Parameter::new(name, DMatrix::from_element(features, 1, value), Regularization::Exempt);
    Ok((parameter("weight", T::one()), parameter("bias", T::zero())))
}

/// Checks a normalization's `ε` (finite and > 0); `name` is e.g. `"LayerNorm eps"`.
pub(crate) fn check_eps(name: &'static str, eps: f64) -> Result<()> {
    if eps.is_finite() && eps > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter { name, value: eps, requirement: "must be finite and > 0" })
    }
}

/// The `features` count of a model file's module settings, bounded by `max_entries` (what the
/// file's tensors can hold), so that a corrupt header is an error instead of a huge allocation.
pub(crate) fn features_setting(
    spec: &serde_json::Map<String, serde_json::Value>,
    max_entries: usize,
) -> std::result::Result<usize, String> {
    let features =
        spec.get("features").and_then(serde_json::Value::as_u64).ok_or("features is not a count")?;
    usize::try_from(features)
        .ok()
        .filter(|&f| f <= max_entries)
        .ok_or_else(|| format!("{features} features do not fit in the file's tensors"))
}
