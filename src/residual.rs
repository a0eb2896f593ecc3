//! [`Residual`]: a skip connection around a stack of modules (He et al., 2016; the ResNet
//! blocks of tabular deep learning, Gorishniy et al., 2021).
//!
//! | | forward | local gradient |
//! |---|---|---|
//! | residual | `y = x + f(x)`, `f` the body | `∂L/∂x = ∂L/∂y + (∂f/∂x)ᵀ·∂L/∂y`; the body's parameters get their gradients from `∂L/∂y` |
//!
//! The identity path carries the gradient past the body unchanged, so a deep stack of blocks
//! trains where a plain stack of as many layers stalls.

use crate::module::prefix_parameter_names;
use crate::network::ModuleInputs;
use crate::{
    Activation, Error, Float, Init, Layer, Module, Network, Parameter, Result, TrainContext, weights,
};
use nalgebra::DMatrix;
use rand::Rng;
use serde_json::{Map, Value};

/// `y = x + body(x)`: a [`Network`] of any modules (the body) whose output has as many rows as
/// its input, with the input added back. The body's parameters and buffers are the block's:
/// an optimizer, the L2 penalty, [`Network::freeze`] and model files see them all.
///
/// ```text
/// x ──┬── body: Layer → ReLU → Layer ──(+)── y
///     └──────────────────────────────────┘
/// ```
///
/// - The body's tensors are renamed `0.weight`, `2.bias`, … (its module number first), so that
///   the block's tensors have distinct names in a model file. Model files save the body's
///   architecture inside the block's settings; [`Network::load`] rebuilds it, and
///   [`Network::load_with`]'s builder is asked for the body's modules too.
/// - The body's own L2 coefficient must be 0: the network the block is in penalizes every
///   regularized parameter, the body's included.
/// - Inside a block, the modules after the body's first do not check their input
///   ([`Module::check_input`]): the network checks the block's input, which is the first
///   module's.
/// - Training steps and [`Network::forward`] allocate nothing once the batch shape is steady
///   (the body keeps its own buffers); `&self` inference ([`Network::output`]) allocates the
///   body's activations, as it does the network's.
/// - [`Network::recompute_batch_norm`] reaches a [`BatchNorm`](crate::BatchNorm) inside a
///   block.
///
/// ```
/// use feedforward::{Activation, Init, Layer, Network, Residual};
/// use nalgebra::DMatrix;
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let body = Network::<f32>::new(16)
///     .push(Layer::new(16, 32, Init::He, &mut rng).with_activation(Activation::Relu))?
///     .push(Layer::new(32, 16, Init::He, &mut rng))?;
/// let net = Network::new(4)
///     .push(Layer::new(4, 16, Init::He, &mut rng))?
///     .push(Residual::new(body)?)?
///     .push(Layer::new(16, 3, Init::He, &mut rng))?;
/// assert_eq!(net.output(&DMatrix::from_element(4, 2, 0.5))?.shape(), (3, 2));
/// assert_eq!(net.parameters().count(), 2 + 4 + 2);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Residual<T: Float> {
    body: Network<T>,
}

impl<T: Float> Residual<T> {
    /// A block adding `body`'s input to its output. Errors: a body with no module, whose
    /// output rows differ from its input rows, or with an L2 coefficient other than 0.
    pub fn new(mut body: Network<T>) -> Result<Self> {
        if body.modules().is_empty() {
            return Err(Error::shape("residual body", "at least one module", "none"));
        }
        if body.output_rows() != body.input_rows() {
            return Err(Error::shape(
                "residual body output",
                format!("{} rows (as many as its input, to add it back)", body.input_rows()),
                format!("{} rows", body.output_rows()),
            ));
        }
        if body.l2() != T::zero() {
            return Err(Error::InvalidHyperparameter {
                name: "residual body L2",
                value: body.l2().as_f64(),
                requirement: "must be 0 (the network holding the block penalizes its parameters)",
            });
        }
        for (i, module) in body.modules_mut().iter_mut().enumerate() {
            prefix_parameter_names(module.as_mut(), &i.to_string());
        }
        Ok(Residual { body })
    }

    /// The usual block: `y = x + W₂ᵀ·f(W₁ᵀx + b₁) + b₂`, a layer of `hidden` units with the
    /// activation `f` (He-initialized) and a layer back to `width` starting at zero
    /// ([`Init::Zeros`]), so that the block starts as the identity.
    ///
    /// ```
    /// use feedforward::{Activation, Network, Residual};
    /// use nalgebra::DMatrix;
    /// use rand::SeedableRng;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let block = Residual::<f32>::mlp(8, 32, Activation::Relu, &mut rng)?;
    /// let x = DMatrix::from_fn(8, 3, |i, j| (i + j) as f32);
    /// assert_eq!(Network::new(8).push(block)?.output(&x)?, x); // the identity, until trained
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn mlp<R: Rng + ?Sized>(
        width: usize,
        hidden: usize,
        activation: Activation,
        rng: &mut R,
    ) -> Result<Self> {
        let body = Network::new(width)
            .push(Layer::new(width, hidden, Init::He, rng).with_activation(activation))?
            .push(Layer::new(hidden, width, Init::Zeros, rng))?;
        Residual::new(body)
    }

    /// The modules between the input and the addition.
    #[must_use]
    pub fn body(&self) -> &Network<T> {
        &self.body
    }

    /// The rows of the block's input and output.
    #[must_use]
    pub fn width(&self) -> usize {
        self.body.input_rows()
    }

    /// One batch of [`Network::recompute_batch_norm`] through the block: its body's
    /// `BatchNorm`s take the batch's statistics in by `share`, and `y = x + body(x)`.
    pub(crate) fn recompute_batch(&mut self, input: &DMatrix<T>, output: &mut DMatrix<T>, share: f64) {
        let last = self.body.modules().len() - 1;
        let body = self.body.recompute_batch(input, share, last, ModuleInputs::Trusted);
        let body = body.expect("a pass without input checks cannot fail");
        sum_into(input.as_slice(), body.as_slice(), output.as_mut_slice());
    }

    /// Rebuilds one from a model file's settings (`body`: an architecture as
    /// [`weights::architecture`] writes it), asking `builder` for the body's modules first.
    pub(crate) fn from_settings(
        spec: &Map<String, Value>,
        builder: &weights::ModuleBuilder<'_, T>,
        max_entries: usize,
    ) -> std::result::Result<Self, String> {
        let body = spec.get("body").ok_or("no body")?;
        let body = weights::build(body, builder, max_entries).map_err(|e| format!("body: {e}"))?;
        Residual::new(body).map_err(|e| e.to_string())
    }
}

/// `output ← input + output`, entry by entry.
fn add_into<T: Float>(input: &[T], output: &mut [T]) {
    output.iter_mut().zip(input).for_each(|(o, &x)| *o += x);
}

/// `output ← input + body`, entry by entry.
fn sum_into<T: Float>(input: &[T], body: &[T], output: &mut [T]) {
    output.iter_mut().zip(input.iter().zip(body)).for_each(|(y, (&x, &f))| *y = x + f);
}

impl<T: Float> Module<T> for Residual<T> {
    fn kind(&self) -> &'static str {
        "Residual"
    }

    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        if input_rows == self.width() {
            Ok(input_rows)
        } else {
            Err(Error::shape(
                "residual input",
                format!("{} rows", self.width()),
                format!("{input_rows} rows"),
            ))
        }
    }

    /// `y = x + body(x)`, the body as in inference.
    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        self.body.output_within(input, output);
        add_into(input.as_slice(), output.as_mut_slice());
    }

    /// `y = x + body(x)`, the body as in inference, into the body's buffers: no allocation at
    /// a steady batch size.
    fn forward_mut(&mut self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        let body = self.body.forward_mut_within(input);
        sum_into(input.as_slice(), body.as_slice(), output.as_mut_slice());
    }

    /// `y = x + body(x)`, the body as in a training step: each body module gets a stream of its
    /// own drawn from `context`.
    fn forward_train(&mut self, input: &DMatrix<T>, output: &mut DMatrix<T>, context: &mut TrainContext) {
        let body = self.body.forward_within(input, context);
        sum_into(input.as_slice(), body.as_slice(), output.as_mut_slice());
    }

    /// `∂L/∂x = ∂L/∂y + (∂f/∂x)ᵀ·∂L/∂y`: the body's backward pass from `∂L/∂y`, then the
    /// identity path's share added.
    fn backward(
        &mut self,
        input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        match grad_input {
            Some(dx) => {
                self.body.backward_within(input, grad_output, Some(&mut *dx));
                add_into(grad_output.as_slice(), dx.as_mut_slice());
            }
            None => self.body.backward_within(input, grad_output, None),
        }
    }

    fn visit_parameters<'a>(&'a self, visit: &mut dyn FnMut(&'a Parameter<T>)) {
        self.body.modules().iter().for_each(|m| m.visit_parameters(visit));
    }

    fn visit_parameters_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut Parameter<T>)) {
        self.body.modules_mut().iter_mut().for_each(|m| m.visit_parameters_mut(visit));
    }

    fn visit_buffers<'a>(&'a self, visit: &mut dyn FnMut(&'a crate::Buffer<T>)) {
        self.body.modules().iter().for_each(|m| m.visit_buffers(visit));
    }

    fn visit_buffers_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut crate::Buffer<T>)) {
        self.body.modules_mut().iter_mut().for_each(|m| m.visit_buffers_mut(visit));
    }

    /// The body's first module's check: it takes the block's input.
    fn check_input(&self, input: &DMatrix<T>) -> Result<()> {
        self.body.modules()[0].check_input(input)
    }

    fn check_training_batch(&self, samples: usize) -> Result<()> {
        self.body.modules().iter().try_for_each(|m| m.check_training_batch(samples))
    }

    fn commit_step(&mut self) {
        self.body.modules_mut().iter_mut().for_each(|m| m.commit_step());
    }

    fn propagates_non_finite(&self) -> bool {
        self.body.modules().iter().all(|m| m.propagates_non_finite())
    }

    fn describe(&self) -> Option<Map<String, Value>> {
        Some(Map::from_iter([("body".to_string(), weights::architecture(&self.body))]))
    }
}
