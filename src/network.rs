//! [`Network`]: an ordered stack of [`Module`]s, trained against any [`Loss`], with an
//! optional L2 penalty on the weight matrices.
//!
//! Objective: `L = loss(f(x), targets) + alpha/2·Σ‖W‖²`, the sum running over the parameters
//! marked regularized (weights, never biases). Backward applies the chain rule module by
//! module, last to first, then adds `alpha·W` to each regularized gradient.
//!
//! Two ways through the network:
//! - **inference** ([`output`](Network::output), [`predict`](Network::predict),
//!   [`probabilities`](Network::probabilities), [`evaluate`](Network::evaluate), …) takes
//!   `&self`: one network, shared by reference (`Network` is `Send + Sync`), serves any number of
//!   threads at once; each call allocates its own activations;
//! - **training** ([`train_step`](Network::train_step), [`backward`](Network::backward),
//!   [`forward`](Network::forward)) takes `&mut self` and reuses one activation buffer and one
//!   gradient buffer per module from call to call, so a step at a steady batch size allocates
//!   nothing.
//!
//! Every entry point rejects an input batch holding NaN or ±inf with [`Error::NonFinite`]
//! naming the sample: ReLU would otherwise turn a NaN into a confident answer. When every module
//! carries such values through ([`Module::propagates_non_finite`]: this crate's layers and
//! activations do) the check costs a look at the output alone; otherwise the input is scanned.

use crate::error::plural;
use crate::linalg::{ensure_shape, first_non_finite};
use crate::loss::{Loss, PerSampleLoss, column_max};
use crate::module::{TrainContext, check_output_rows, parameters_of, parameters_of_mut};
use crate::optim::Optimizer;
use crate::{Activation, Error, Float, Init, Layer, Module, Parameter, Result, SoftmaxCrossEntropy};
use nalgebra::{DMatrix, DVector};
use rand::Rng;
use std::ops::{Bound, RangeBounds};

/// What one training step measured, before its update was applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// 1-based number of this step over the network's life.
    pub step: usize,
    /// Objective on the batch: the loss plus the L2 penalty.
    pub loss: f64,
    /// Fraction of the batch predicted correctly, in [0, 1], for losses that classify
    /// ([`SoftmaxCrossEntropy`], [`BinaryCrossEntropy`](crate::BinaryCrossEntropy)); `None`
    /// for regression losses.
    pub accuracy: Option<f64>,
    /// Samples in the batch.
    pub batch_size: usize,
}

/// What [`Network::evaluate`] measured on a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// The loss plus the L2 penalty.
    pub loss: f64,
    /// Fraction predicted correctly, for losses that classify; `None` otherwise.
    pub accuracy: Option<f64>,
}

/// How [`Network::mlp`] builds its layers. The default builds the default MNIST network's
/// layers: He initialisation, ReLU in the hidden layers, a bias on every layer, no dropout.
///
/// ```
/// use feedforward::{Activation, Init, MlpConfig, Network, Normalization};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // The original recipe's network: its own initialisation, no bias on the output layer.
/// let seed = MlpConfig { init: Init::SEED_RECIPE, output_bias: false, ..MlpConfig::default() };
/// let net = Network::<f32>::mlp(&[784, 256, 10], seed, &mut rng)?;
/// assert_eq!(net.parameter_count(), 784 * 256 + 256 + 256 * 10);
/// // A smooth regressor: tanh hidden layers, Xavier initialisation.
/// let smooth = MlpConfig { init: Init::XavierNormal, hidden_activation: Activation::Tanh, ..MlpConfig::default() };
/// let net = Network::<f64>::mlp(&[1, 32, 32, 1], smooth, &mut rng)?;
/// assert_eq!(net.output_rows(), 1);
/// // Dropout on the pixels and after the hidden layer: Dropout → Layer → Dropout → Layer.
/// let regularized = MlpConfig { input_dropout: 0.1, dropout: 0.3, ..MlpConfig::default() };
/// let net = Network::<f32>::mlp(&[784, 256, 10], regularized, &mut rng)?;
/// assert_eq!(net.modules().iter().map(|m| m.kind()).collect::<Vec<_>>(), ["Dropout", "Layer", "Dropout", "Layer"]);
/// // Batch normalization between each hidden layer and its activation.
/// let normalized = MlpConfig { normalization: Normalization::BatchNorm, ..MlpConfig::default() };
/// let net = Network::<f32>::mlp(&[3, 64, 64, 2], normalized, &mut rng)?;
/// assert_eq!(
///     net.modules().iter().map(|m| m.kind()).collect::<Vec<_>>(),
///     ["Layer", "BatchNorm", "Relu", "Layer", "BatchNorm", "Relu", "Layer"]
/// );
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlpConfig {
    /// How every layer's weights and biases are drawn. Default: [`Init::He`].
    pub init: Init,
    /// The activation fused into every hidden layer (the output layer has none). Default:
    /// [`Activation::Relu`].
    pub hidden_activation: Activation,
    /// Whether the output layer has a bias. Default: `true` (the original recipe's has none).
    pub output_bias: bool,
    /// Drop probability of a [`Dropout`](crate::Dropout) after every hidden layer, in [0, 1);
    /// 0 adds none. Default: 0.
    pub dropout: f64,
    /// Drop probability of a [`Dropout`](crate::Dropout) on the input, in [0, 1); 0 adds none.
    /// Default: 0.
    pub input_dropout: f64,
    /// A normalization after every hidden layer, before its activation (which then runs as a
    /// module of its own instead of fused into the layer). Default: [`Normalization::None`].
    pub normalization: Normalization,
}

/// The normalization [`Network::mlp`] puts between each hidden layer and its activation.
///
/// It normalizes what the hidden layers compute, not the inputs: features on raw scales (a
/// pressure in pascals) still need a [`Standardize`](crate::Standardize) in front
/// ([`Network::insert`] at 0), or the first layer learns on their scale (README, "The two
/// commands", has a measured case).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Normalization {
    /// None: the activation is fused into the layer.
    #[default]
    None,
    /// [`LayerNorm`](crate::LayerNorm): each sample's features.
    LayerNorm,
    /// [`BatchNorm`](crate::BatchNorm): each feature over the batch (training batches of at
    /// least 2 samples).
    BatchNorm,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            init: Init::He,
            hidden_activation: Activation::Relu,
            output_bias: true,
            dropout: 0.0,
            input_dropout: 0.0,
            normalization: Normalization::None,
        }
    }
}

/// A feedforward network: modules applied in order.
///
/// Inputs are `input_rows × batch` matrices, one sample per column.
///
/// ```
/// use feedforward::{MeanSquaredError, MlpConfig, Network, Rmsprop};
/// use nalgebra::DMatrix;
/// use rand::SeedableRng;
///
/// // Regression: 1 → 16 (ReLU) → 1, fit y = 2x on a few points.
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut net = Network::<f64>::mlp(&[1, 16, 1], MlpConfig::default(), &mut rng)?;
/// let x = DMatrix::from_fn(1, 8, |_, j| j as f64 / 8.0);
/// let y = x.map(|v| 2.0 * v);
/// let mut opt = Rmsprop::elementwise(1e-2)?;
/// let first = net.train_step(&x, &MeanSquaredError, &y, &mut opt)?;
/// for _ in 0..300 {
///     net.train_step(&x, &MeanSquaredError, &y, &mut opt)?;
/// }
/// assert!(net.loss(&x, &MeanSquaredError, &y)? < first.loss / 10.0);
/// assert_eq!(first.accuracy, None); // regression: no accuracy
/// # Ok::<(), feedforward::Error>(())
/// ```
pub struct Network<T: Float> {
    input_rows: usize,
    modules: Vec<Box<dyn Module<T>>>,
    /// Output rows of each module.
    rows: Vec<usize>,
    l2: T,
    steps: usize,
    /// Seed of the training steps' random numbers (dropout masks).
    seed: u64,
    buffers: Buffers<T>,
}

/// The training buffers, reused from step to step. Not part of the model: a clone starts
/// without them.
struct Buffers<T: Float> {
    /// `activations[i]` is the output of module `i`.
    activations: Vec<DMatrix<T>>,
    /// `grads[i]` is `dL/d activations[i]`.
    grads: Vec<DMatrix<T>>,
    /// Each parameter's next value, written by the optimizer and swapped in once all are finite.
    next: Vec<DMatrix<T>>,
}

impl<T: Float> Default for Buffers<T> {
    fn default() -> Self {
        Buffers { activations: Vec::new(), grads: Vec::new(), next: Vec::new() }
    }
}

/// A clone has the same modules, parameters, L2 coefficient and step count, and no training
/// buffers (they hold nothing between calls).
impl<T: Float> Clone for Network<T> {
    fn clone(&self) -> Self {
        Network {
            input_rows: self.input_rows,
            modules: self.modules.clone(),
            rows: self.rows.clone(),
            l2: self.l2,
            steps: self.steps,
            seed: self.seed,
            buffers: Buffers::default(),
        }
    }
}

impl<T: Float> std::fmt::Debug for Network<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("input_rows", &self.input_rows)
            .field("modules", &self.modules)
            .field("l2", &self.l2)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

/// A summary, one line per module: its kind, rows in → out, parameter count, and the scalar
/// settings it writes to a model file ([`Module::describe`]; lists such as a
/// [`Standardize`](crate::Standardize)'s statistics are left out).
///
/// ```
/// use feedforward::{MlpConfig, Network};
/// use rand::SeedableRng;
/// let net = Network::<f32>::mlp(&[784, 256, 10], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(0))?;
/// assert_eq!(
///     net.to_string(),
///     "Network (f32): 784 inputs → 10 outputs, 203530 parameters
///      module            rows  parameters  settings
///   0  Layer        784 → 256      200960  activation: relu, bias: true
///   1  Layer         256 → 10        2570  activation: identity, bias: true
/// "
/// );
/// # Ok::<(), feedforward::Error>(())
/// ```
impl<T: Float> std::fmt::Display for Network<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frozen: usize = self.parameters().filter(|p| p.is_frozen()).map(Parameter::len).sum();
        write!(
            f,
            "Network ({}): {} → {}, {}",
            T::NAME,
            plural(self.input_rows, "input"),
            plural(self.output_rows(), "output"),
            plural(self.parameter_count(), "parameter")
        )?;
        if frozen > 0 {
            write!(f, " ({frozen} frozen)")?;
        }
        writeln!(f)?;
        let mut lines = Vec::new();
        self.summary_lines("", 0, &mut lines);
        // Each column as wide as its widest entry (a flat network's: 3, 11, 10 and 10).
        let width = |min: usize, column: fn(&SummaryLine) -> &str| {
            lines.iter().map(|l| column(l).chars().count()).fold(min, usize::max)
        };
        let number = width(3, |l| &l.number);
        let kind = width(11, |l| &l.kind);
        let rows = width(10, |l| &l.rows);
        let parameters = width(10, |l| &l.parameters);
        writeln!(
            f,
            "{:number$}  {:<kind$} {:>rows$}  {:>parameters$}  settings",
            "", "module", "rows", "parameters"
        )?;
        for l in &lines {
            let line = format!(
                "{:<number$}  {:<kind$} {:>rows$}  {:>parameters$}  {}",
                l.number, l.kind, l.rows, l.parameters, l.settings
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// One module's line of the summary, column by column.
struct SummaryLine {
    /// `  1`, or `  1.0` for a module of block 1's body.
    number: String,
    /// The kind, indented by the depth of blocks it is in.
    kind: String,
    rows: String,
    parameters: String,
    settings: String,
}

impl<T: Float> Network<T> {
    /// The summary's line per module, numbered after `prefix`; the modules of a
    /// [`Residual`](crate::Residual)'s body follow its line, indented.
    fn summary_lines(&self, prefix: &str, depth: usize, lines: &mut Vec<SummaryLine>) {
        for (i, module) in self.modules.iter().enumerate() {
            let rows =
                format!("{} → {}", if i == 0 { self.input_rows } else { self.rows[i - 1] }, self.rows[i]);
            let parameters: usize = parameters_of(module.as_ref()).iter().map(|p| p.len()).sum();
            // The rows column already shows a layer's inputs and outputs.
            let settings: Vec<String> = module
                .describe()
                .unwrap_or_default()
                .into_iter()
                .filter(|(key, _)| key != "inputs" && key != "outputs")
                .filter_map(|(key, value)| match value {
                    serde_json::Value::String(s) => Some(format!("{key}: {s}")),
                    serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                        Some(format!("{key}: {value}"))
                    }
                    _ => None,
                })
                .collect();
            let number = if depth == 0 { format!("{i:>3}") } else { format!("{prefix}.{i}") };
            let line = SummaryLine {
                number: number.clone(),
                kind: format!("{}{}", "  ".repeat(depth), module.kind()),
                rows,
                parameters: parameters.to_string(),
                settings: settings.join(", "),
            };
            lines.push(line);
            if let Some(block) = module.downcast_ref::<crate::Residual<T>>() {
                block.body().summary_lines(&number, depth + 1, lines);
            }
        }
    }
}

/// How the modules run in [`Network::forward_into_buffers`].
enum Pass<'c> {
    /// [`Module::forward_mut`]: no dropout.
    Inference,
    /// [`Module::forward_mut`] inside a composite module, with no input check (as `Within`).
    InferenceWithin,
    /// [`Module::forward_train`], drawing the step's random numbers.
    Training,
    /// [`Module::forward_train`], reusing the last draw.
    Replay,
    /// [`Module::forward_train`] inside a composite module (a [`Residual`](crate::Residual)'s
    /// body): each module's stream drawn from the composite's, and no input check (the
    /// composite's caller checked its input, which is the first module's).
    Within(&'c mut TrainContext),
}

/// Whether [`Network::run_inference`] and [`Network::recompute_batch`] check each module's
/// input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModuleInputs {
    /// Each module checks its input ([`Module::check_input`]).
    Checked,
    /// Inside a composite module: its caller checked the first module's input, and the others'
    /// are the network's own activations.
    Trusted,
}

/// Whether an input batch still needs its NaN/inf scan ([`train::fit`](crate::train::fit)
/// scans the whole training set once instead of every batch).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputScan {
    Needed,
    Done,
}

impl<T: Float> Network<T> {
    /// An empty network taking `input_rows` features per sample. Add modules with
    /// [`push`](Network::push).
    #[must_use]
    pub fn new(input_rows: usize) -> Self {
        Network {
            input_rows,
            modules: Vec::new(),
            rows: Vec::new(),
            l2: T::zero(),
            steps: 0,
            seed: 0,
            buffers: Buffers::default(),
        }
    }

    /// Appends a module, checking that it accepts the current output size and gives at least
    /// one row.
    pub fn push(mut self, module: impl Module<T> + 'static) -> Result<Self> {
        self.push_boxed(Box::new(module))?;
        Ok(self)
    }

    /// Appends a boxed module, checking that it accepts the current output size and gives at
    /// least one row.
    pub fn push_boxed(&mut self, module: Box<dyn Module<T>>) -> Result<()> {
        self.insert_boxed(self.modules.len(), module)
    }

    /// Inserts a module before module number `index` (`0`: first; the number of modules: last,
    /// as [`push`](Network::push)), checking that it accepts the rows it will be given and that
    /// every later module accepts the rows it then gets. A [`Standardize`](crate::Standardize)
    /// in front of a [`Network::mlp`]:
    ///
    /// ```
    /// use feedforward::{MlpConfig, Network, Standardize};
    /// use nalgebra::DMatrix;
    /// use rand::SeedableRng;
    /// let x = DMatrix::<f32>::from_fn(3, 10, |i, j| (i * 100 + j) as f32);
    /// let net = Network::mlp(&[3, 8, 2], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(0))?
    ///     .insert(0, Standardize::fit(&x)?)?;
    /// assert_eq!(net.modules()[0].kind(), "Standardize");
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    ///
    /// Insert before training: an optimizer's state follows the parameters by position.
    pub fn insert(mut self, index: usize, module: impl Module<T> + 'static) -> Result<Self> {
        self.insert_boxed(index, Box::new(module))?;
        Ok(self)
    }

    /// [`insert`](Network::insert) for a boxed module, in place. On an error the network is
    /// unchanged.
    pub fn insert_boxed(&mut self, index: usize, module: Box<dyn Module<T>>) -> Result<()> {
        if index > self.modules.len() {
            return Err(Error::shape(
                "module position",
                format!("at most {} (the number of modules)", self.modules.len()),
                index.to_string(),
            ));
        }
        let rows = self.rows_with(index, std::iter::once(&module).chain(&self.modules[index..]))?;
        self.modules.insert(index, module);
        self.rows = rows;
        Ok(())
    }

    /// This network's modules, then `tail`'s: inputs' preparation (a fitted
    /// [`Standardize`](crate::Standardize), an [`Embedding`](crate::Embedding) that changes the
    /// rows) in front of a whole [`Network::resnet`] or [`Network::mlp`].
    ///
    /// ```
    /// use feedforward::{Network, ResNetConfig, Standardize};
    /// use nalgebra::DMatrix;
    /// use rand::SeedableRng;
    /// let x = DMatrix::<f32>::from_fn(3, 10, |i, j| (i * 100 + j) as f32);
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let net = Network::new(3)
    ///     .push(Standardize::fit(&x)?)?
    ///     .append(Network::resnet(3, 2, ResNetConfig::default(), &mut rng)?)?;
    /// assert_eq!(net.modules()[0].kind(), "Standardize");
    /// assert_eq!(net.modules().len(), 1 + 6);
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    ///
    /// The result keeps this network's L2 coefficient, [seed](Network::with_seed) and step
    /// count: set the seed after appending a network with dropout.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when `tail` does not take this network's output rows;
    /// [`Error::InvalidHyperparameter`] when `tail`'s L2 coefficient is neither 0 nor this
    /// network's (it would be lost).
    pub fn append(mut self, tail: Network<T>) -> Result<Self> {
        if tail.input_rows != self.output_rows() {
            return Err(Error::shape(
                "appended network input",
                format!("{} rows (the output of the network it follows)", self.output_rows()),
                format!("{} rows", tail.input_rows),
            ));
        }
        if tail.l2 != T::zero() && tail.l2 != self.l2 {
            return Err(Error::InvalidHyperparameter {
                name: "appended network L2",
                value: tail.l2.as_f64(),
                requirement: "must be 0 or the L2 of the network it follows (which penalizes all its parameters)",
            });
        }
        self.modules.extend(tail.modules);
        self.rows.extend(tail.rows);
        Ok(self)
    }

    /// Removes the module at `index` and returns it, after checking that every later module
    /// takes the rows it then gets. On an error the network is unchanged. With
    /// [`push`](Network::push), this replaces a loaded model's head for fine-tuning (see
    /// [`Network::freeze`]).
    ///
    /// ```
    /// use feedforward::{Init, Layer, MlpConfig, Network};
    /// use rand::SeedableRng;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let mut net = Network::<f32>::mlp(&[4, 8, 3], MlpConfig::default(), &mut rng)?;
    /// let head = net.remove(1)?;
    /// assert_eq!((head.kind(), net.output_rows()), ("Layer", 8));
    /// let mut net = net.push(Layer::new(8, 5, Init::He, &mut rng))?;
    /// net.freeze(..1)?;
    /// assert_eq!(net.output_rows(), 5);
    /// assert!(net.remove(0).is_err()); // the new head takes 8 rows, not 4
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    ///
    /// Remove before training, or train on with a new optimizer: an optimizer's state follows
    /// the parameters by position.
    pub fn remove(&mut self, index: usize) -> Result<Box<dyn Module<T>>> {
        if index >= self.modules.len() {
            return Err(Error::shape(
                "module position",
                format!("less than {} (the number of modules)", self.modules.len()),
                index.to_string(),
            ));
        }
        self.rows = self.rows_with(index, &self.modules[index + 1..])?;
        Ok(self.modules.remove(index))
    }

    /// The output rows of every module if `modules` came after the first `index` ones.
    fn rows_with<'a>(
        &self,
        index: usize,
        modules: impl IntoIterator<Item = &'a Box<dyn Module<T>>>,
    ) -> Result<Vec<usize>> {
        let mut rows = self.rows[..index].to_vec();
        let mut current = if index == 0 { self.input_rows } else { self.rows[index - 1] };
        for m in modules {
            current = m.output_rows(current)?;
            check_output_rows(m.kind(), current)?;
            rows.push(current);
        }
        Ok(rows)
    }

    /// A multilayer perceptron through `sizes` (at least two): one [`Layer`] per pair, each
    /// hidden one with `config.hidden_activation` fused in, the output one without (it gives
    /// logits, or a regression's values); every layer with a bias except the output layer when
    /// `config.output_bias` is false; a [`Dropout`](crate::Dropout) first and after each hidden
    /// layer when `config` asks for them. The same function as `Layer → Relu → … → Layer` (with
    /// the config's activation), in fewer passes over the batch.
    ///
    /// The layers draw their weights from `rng` in order; a network with dropout then draws its
    /// [seed](Network::with_seed) from `rng` too, and one without draws nothing more.
    ///
    /// `Network::mlp(&[784, 256, 10], MlpConfig::default(), &mut rng)` is the default MNIST
    /// network.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for fewer than two sizes or a size of 0;
    /// [`Error::InvalidHyperparameter`] for a drop probability outside [0, 1).
    pub fn mlp<R: Rng + ?Sized>(sizes: &[usize], config: MlpConfig, rng: &mut R) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(Error::shape("mlp sizes", "at least two non-zero sizes", format!("{sizes:?}")));
        }
        // `Dropout::new` checks the probability: a negative or NaN one is an error, not no dropout.
        let dropout = |p: f64| if p == 0.0 { Ok(None) } else { crate::Dropout::new(p).map(Some) };
        let (input_dropout, hidden_dropout) = (dropout(config.input_dropout)?, dropout(config.dropout)?);
        let mut net = Network::new(sizes[0]);
        if let Some(d) = &input_dropout {
            net = net.push(d.clone())?;
        }
        let last = sizes.len() - 2;
        for (i, pair) in sizes.windows(2).enumerate() {
            let (inputs, outputs) = (pair[0], pair[1]);
            let layer = if i == last && !config.output_bias {
                Layer::without_bias(inputs, outputs, config.init, rng)
            } else {
                Layer::new(inputs, outputs, config.init, rng)
            };
            if i == last {
                net = net.push(layer)?;
            } else {
                net = match config.normalization {
                    Normalization::None => net.push(layer.with_activation(config.hidden_activation))?,
                    Normalization::LayerNorm => net.push(layer)?.push(crate::LayerNorm::new(outputs)?)?,
                    Normalization::BatchNorm => net.push(layer)?.push(crate::BatchNorm::new(outputs)?)?,
                };
                if config.normalization != Normalization::None
                    && let Some(activation) = config.hidden_activation.module::<T>()
                {
                    net.push_boxed(activation)?;
                }
                if let Some(d) = &hidden_dropout {
                    net = net.push(d.clone())?;
                }
            }
        }
        if input_dropout.is_some() || hidden_dropout.is_some() {
            net = net.with_seed(rng.next_u64());
        }
        Ok(net)
    }

    /// Sets the L2 coefficient `alpha` of the penalty `alpha/2·Σ‖W‖²` (must be finite and ≥ 0).
    pub fn with_l2(mut self, alpha: T) -> Result<Self> {
        if !(alpha.is_finite() && alpha >= T::zero()) {
            return Err(Error::InvalidHyperparameter {
                name: "l2 alpha",
                value: alpha.as_f64(),
                requirement: "must be finite and >= 0",
            });
        }
        self.l2 = alpha;
        Ok(self)
    }

    /// Seeds the random numbers of training steps (the masks of [`Dropout`](crate::Dropout)):
    /// step `k` draws from a stream of its own, made from the seed, `k` and the module's
    /// position, so the same seed gives the same run on any thread count. Default: 0.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The seed of the training steps' random numbers.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The L2 coefficient `alpha`.
    #[must_use]
    pub fn l2(&self) -> T {
        self.l2
    }

    /// Features per input sample.
    #[must_use]
    pub fn input_rows(&self) -> usize {
        self.input_rows
    }

    /// Rows of the final output (the number of classes of a classifier).
    #[must_use]
    pub fn output_rows(&self) -> usize {
        self.rows.last().copied().unwrap_or(self.input_rows)
    }

    /// The modules, in order.
    #[must_use]
    pub fn modules(&self) -> &[Box<dyn Module<T>>] {
        &self.modules
    }

    /// The modules, mutably (to inspect or set parameters; shapes must not change).
    pub fn modules_mut(&mut self) -> &mut [Box<dyn Module<T>>] {
        &mut self.modules
    }

    /// Every parameter, in the order optimizers and weight files see them.
    pub fn parameters(&self) -> impl Iterator<Item = &Parameter<T>> {
        self.modules.iter().flat_map(|m| parameters_of(m.as_ref()))
    }

    /// Every parameter, mutably, in the same order as [`parameters`](Network::parameters)
    /// (shapes must not change).
    pub fn parameters_mut(&mut self) -> impl Iterator<Item = &mut Parameter<T>> {
        self.modules.iter_mut().flat_map(|m| parameters_of_mut(m.as_mut()))
    }

    /// Freezes every parameter of the modules at the positions `modules` (a range): training
    /// steps leave them alone ([`Parameter::freeze`] has the details), for fine-tuning part of
    /// a model. A range reaching past the last module is an error, and changes nothing.
    ///
    /// Freezing does not change how a module computes: a frozen [`BatchNorm`](crate::BatchNorm)
    /// still normalizes with each batch's statistics and moves its running ones (as in PyTorch
    /// before `.eval()`). To keep them, switch it to
    /// [`BatchNormStatistics::Running`](crate::BatchNormStatistics::Running), reaching it by
    /// [`downcast_mut`](crate::Module#method.downcast_mut).
    ///
    /// ```
    /// use feedforward::{MlpConfig, Network};
    /// use rand::SeedableRng;
    /// // 4 → 8 → 3: modules Layer, Layer. Train only the output layer.
    /// let mut net = Network::<f32>::mlp(&[4, 8, 3], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(0))?;
    /// net.freeze(..1)?;
    /// let frozen: Vec<bool> = net.parameters().map(|p| p.is_frozen()).collect();
    /// assert_eq!(frozen, [true, true, false, false]);
    /// assert!(net.freeze(..3).is_err());
    /// net.unfreeze(..)?;
    /// assert!(net.parameters().all(|p| !p.is_frozen()));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn freeze(&mut self, modules: impl RangeBounds<usize>) -> Result<()> {
        self.set_frozen(modules, Parameter::freeze)
    }

    /// Lets training steps update the parameters of the modules at the positions `modules`
    /// again (see [`Network::freeze`]).
    pub fn unfreeze(&mut self, modules: impl RangeBounds<usize>) -> Result<()> {
        self.set_frozen(modules, Parameter::unfreeze)
    }

    fn set_frozen(&mut self, modules: impl RangeBounds<usize>, set: fn(&mut Parameter<T>)) -> Result<()> {
        let count = self.modules.len();
        let start = match modules.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match modules.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => count,
        };
        if start > end || end > count {
            let expected = format!("a range within 0..{count} (the modules)");
            return Err(Error::shape("module positions", expected, format!("{start}..{end}")));
        }
        for module in &mut self.modules[start..end] {
            module.visit_parameters_mut(&mut |p| set(p));
        }
        Ok(())
    }

    /// Total number of parameter scalars, frozen ones included.
    #[must_use]
    pub fn parameter_count(&self) -> usize {
        self.parameters().map(Parameter::len).sum()
    }

    /// Training steps applied so far.
    #[must_use]
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Checks an input batch: at least one module, the right number of rows, at least one
    /// sample, and (when asked) every value finite. `step` names the training step, if any.
    fn check_input(&self, x: &DMatrix<T>, scan: InputScan, step: Option<usize>) -> Result<()> {
        if self.modules.is_empty() {
            return Err(Error::shape("network", "at least one module", "none"));
        }
        if x.nrows() != self.input_rows {
            return Err(Error::shape(
                "network input",
                format!("{} (features per sample; one sample per column)", plural(self.input_rows, "row")),
                plural(x.nrows(), "row"),
            ));
        }
        if x.ncols() == 0 {
            return Err(Error::EmptyBatch { what: "network input" });
        }
        if scan == InputScan::Needed && !self.propagates_non_finite() {
            check_finite(x, "network input", step)?;
        }
        Ok(())
    }

    /// Whether every module carries a NaN or ±inf of its input into its output, so that a
    /// check of the output covers the input ([`Module::propagates_non_finite`]).
    fn propagates_non_finite(&self) -> bool {
        self.modules.iter().all(|m| m.propagates_non_finite())
    }

    /// The other half of [`check_input`](Self::check_input): on a network that propagates
    /// non-finite values, the output (a few rows) is checked instead of the input, and the input
    /// is scanned only to name the sample once the output is found non-finite. A finite input
    /// whose output overflowed is an error outside training; in training the loss reports it.
    fn check_output(
        &self,
        x: &DMatrix<T>,
        output: &DMatrix<T>,
        scan: InputScan,
        step: Option<usize>,
    ) -> Result<()> {
        if scan == InputScan::Done || !self.propagates_non_finite() {
            return Ok(());
        }
        let Some((_, value)) = first_non_finite(output.as_slice()) else {
            return Ok(());
        };
        check_finite(x, "network input", step)?;
        match step {
            Some(_) => Ok(()),
            None => Err(Error::NonFinite {
                step,
                what: "the network output (of a finite input: an overflow)".into(),
                value: value.as_f64(),
                sample: None,
            }),
        }
    }

    /// Runs the modules on `x` (`input_rows × batch`) into the network's reusable buffers and
    /// returns the output (`output_rows × batch`): no allocation at a steady batch size. The
    /// `&self` way is [`output`](Network::output).
    pub fn forward(&mut self, x: &DMatrix<T>) -> Result<&DMatrix<T>> {
        self.check_input(x, InputScan::Needed, None)?;
        self.forward_into_buffers(x, Pass::Inference)?;
        let output = self.buffers.activations.last().expect("check_input ensures at least one module");
        self.check_output(x, output, InputScan::Needed, None)?;
        Ok(output)
    }

    /// Recomputes every [`BatchNorm`](crate::BatchNorm)'s running statistics from the network's
    /// weights as they are now, over `x` (`input_rows × samples`) cut into batches of
    /// `batch_size` consecutive samples (the last one holds the remainder): PyTorch's
    /// `torch.optim.swa_utils.update_bn`. Returns how many modules it recomputed.
    ///
    /// Running means that followed the weights of many steps (with
    /// [`Averaging::Epochs`](crate::train::Averaging::Epochs), an average of weights from many
    /// epochs) do not describe what the layers below a `BatchNorm` produce now; this pass
    /// measures it.
    ///
    /// - Each `BatchNorm` in the default [`BatchNormStatistics::Batch`](crate::BatchNormStatistics)
    ///   mode ends with the mean of the batches' means and of their unbiased variances, each
    ///   batch weighing its samples (with equal batches, PyTorch's cumulative average; a
    ///   `BatchNorm` in [`Running`](crate::BatchNormStatistics::Running) mode keeps its own).
    /// - The batches run through the modules as a training step's forward pass would, except
    ///   that the other modules run as in inference ([`Module::forward`]: no dropout, unlike
    ///   PyTorch's, which leaves the model in training mode): the statistics are those of the
    ///   activations a prediction will see. Modules after the last `BatchNorm` do not run.
    ///   A `BatchNorm` inside a [`Residual`](crate::Residual) block is recomputed too (the
    ///   count includes it).
    /// - The batches are the samples in their order: shuffle a set sorted by class or by time
    ///   first, or each batch's variance misses the spread between batches.
    /// - Nothing else changes: parameters, step count and optimizer are untouched.
    ///
    /// Errors change nothing: an input with the wrong rows, no sample or a NaN
    /// ([`Error::NonFinite`] naming it), a `batch_size` of 0, a batch of one sample (no
    /// variance: choose a batch size that does not leave a last batch of one), or statistics
    /// that come out non-finite (an overflow inside the network).
    ///
    /// ```
    /// use feedforward::{BatchNorm, Init, Layer, Module, Network};
    /// use nalgebra::DMatrix;
    /// use rand::SeedableRng;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let mut net = Network::<f64>::new(2)
    ///     .push(Layer::new(2, 3, Init::He, &mut rng))?
    ///     .push(BatchNorm::new(3)?)?;
    /// let x = DMatrix::from_fn(2, 100, |i, j| (i * 100 + j) as f64 / 50.0);
    /// assert_eq!(net.recompute_batch_norm(&x, 25)?, 1);
    /// // Its running mean is now the mean of the layer's outputs over the 100 samples.
    /// let mut layer_output = DMatrix::zeros(3, 100);
    /// net.modules()[0].forward(&x, &mut layer_output);
    /// let norm = net.modules()[1].downcast_ref::<BatchNorm<f64>>().unwrap();
    /// for (running, mean) in norm.running_mean().value().iter().zip(layer_output.column_mean().iter()) {
    ///     assert!((running - mean).abs() < 1e-12);
    /// }
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn recompute_batch_norm(&mut self, x: &DMatrix<T>, batch_size: usize) -> Result<usize> {
        // No output to check at the end: the input is scanned whole.
        self.check_input(x, InputScan::Done, None)?;
        check_finite(x, "network input", None)?;
        if batch_size == 0 {
            return Err(Error::InvalidHyperparameter {
                name: "batch size",
                value: 0.0,
                requirement: "must be at least 1",
            });
        }
        let recomputed: Vec<usize> =
            (0..self.modules.len()).filter(|&i| recomputed_in(self.modules[i].as_ref()) > 0).collect();
        let Some(&last) = recomputed.last() else {
            return Ok(0);
        };
        let size = batch_size.min(x.ncols());
        let remainder = x.ncols() % size;
        for &i in &recomputed {
            self.modules[i].check_training_batch(size)?;
            if remainder > 0 {
                self.modules[i].check_training_batch(remainder)?;
            }
        }
        // What an error restores.
        let before: Vec<DMatrix<T>> = recomputed
            .iter()
            .flat_map(|&i| {
                let mut buffers = Vec::new();
                self.modules[i].visit_buffers(&mut |b| buffers.push(b.value().clone()));
                buffers
            })
            .collect();
        let outcome = self.recompute_batches(x, size, last);
        let outcome = outcome.and_then(|()| {
            for &i in &recomputed {
                let mut bad = None;
                self.modules[i].visit_buffers(&mut |b| {
                    bad = bad.or_else(|| first_non_finite(b.value().as_slice()).map(|(_, v)| v));
                });
                if let Some(value) = bad {
                    return Err(Error::NonFinite {
                        step: None,
                        what: format!(
                            "the recomputed running statistics of module {i} ({})",
                            self.modules[i].kind()
                        ),
                        value: value.as_f64(),
                        sample: None,
                    });
                }
            }
            Ok(recomputed.iter().map(|&i| recomputed_in(self.modules[i].as_ref())).sum())
        });
        if outcome.is_err() {
            let mut saved = before.into_iter();
            for &i in &recomputed {
                self.modules[i].visit_buffers_mut(&mut |b| {
                    b.value_mut().copy_from(&saved.next().expect("one saved value per buffer"));
                });
            }
        }
        outcome
    }

    /// Runs the batches through modules `0..=last`, each recomputed `BatchNorm` taking its
    /// batch's statistics in by the batch's share of the samples seen so far.
    fn recompute_batches(&mut self, x: &DMatrix<T>, size: usize, last: usize) -> Result<()> {
        let (rows, samples) = x.shape();
        let mut batch = DMatrix::zeros(0, 0);
        for start in (0..samples).step_by(size) {
            let n = size.min(samples - start);
            let batch = if n == samples {
                x
            } else {
                ensure_shape(&mut batch, rows, n);
                batch.as_mut_slice().copy_from_slice(&x.as_slice()[start * rows..(start + n) * rows]);
                &batch
            };
            // Sample-weighted: the (start + n) samples seen so far, n of them new.
            let share = n as f64 / (start + n) as f64;
            self.recompute_batch(batch, share, last, ModuleInputs::Checked)?;
        }
        Ok(())
    }

    /// One batch of [`recompute_batch_norm`](Self::recompute_batch_norm) through modules
    /// `0..=last` into the buffers: each `BatchNorm` in the batch mode normalizes with the
    /// batch's statistics and takes them in by `share`, a [`Residual`](crate::Residual) holding
    /// one runs its body so, and the other modules run as in inference. Returns the output of
    /// module `last`.
    pub(crate) fn recompute_batch(
        &mut self,
        batch: &DMatrix<T>,
        share: f64,
        last: usize,
        inputs: ModuleInputs,
    ) -> Result<&DMatrix<T>> {
        let activations = &mut self.buffers.activations;
        activations.resize_with(self.modules.len(), || DMatrix::zeros(0, 0));
        for i in 0..=last {
            let (done, rest) = activations.split_at_mut(i);
            let output = &mut rest[0];
            ensure_shape(output, self.rows[i], batch.ncols());
            let input = if i == 0 { batch } else { &done[i - 1] };
            let module = &mut self.modules[i];
            if inputs == ModuleInputs::Checked {
                module.check_input(input)?;
            }
            let recomputed = recomputed_in(module.as_ref()) > 0;
            if let Some(norm) = module.downcast_mut::<crate::BatchNorm<T>>()
                && recomputed
            {
                norm.forward_train(input, output, &mut TrainContext::new(self.seed, self.steps + 1, i));
                norm.take_in_batch(share);
            } else if let Some(block) = module.downcast_mut::<crate::Residual<T>>()
                && recomputed
            {
                block.recompute_batch(input, output, share);
            } else {
                module.forward(input, output);
            }
        }
        Ok(&activations[last])
    }

    /// Runs the modules into the buffers: as in inference, or as in training step
    /// `steps + 1` (drawing, or replaying, each module's random numbers). Each module first
    /// checks its input ([`Module::check_input`]).
    fn forward_into_buffers(&mut self, x: &DMatrix<T>, mut pass: Pass<'_>) -> Result<()> {
        let batch = x.ncols();
        let step = self.steps + 1;
        let activations = &mut self.buffers.activations;
        activations.resize_with(self.modules.len(), || DMatrix::zeros(0, 0));
        for (i, module) in self.modules.iter_mut().enumerate() {
            let (done, rest) = activations.split_at_mut(i);
            let output = &mut rest[0];
            ensure_shape(output, self.rows[i], batch);
            let input = if i == 0 { x } else { &done[i - 1] };
            let context = || TrainContext::new(self.seed, step, i);
            if !matches!(pass, Pass::Within(_) | Pass::InferenceWithin) {
                module.check_input(input)?;
            }
            match &mut pass {
                Pass::Inference | Pass::InferenceWithin => module.forward_mut(input, output),
                Pass::Training => module.forward_train(input, output, &mut context()),
                Pass::Replay => module.forward_train(input, output, &mut context().replaying()),
                Pass::Within(composite) => module.forward_train(input, output, &mut composite.child(i)),
            }
        }
        Ok(())
    }

    /// The training objective (loss + L2) of the next step with the random numbers its last
    /// training pass drew (the same dropout masks): what a gradient check differentiates.
    pub(crate) fn replayed_loss<L: Loss<T> + ?Sized>(
        &mut self,
        x: &DMatrix<T>,
        loss: &L,
        targets: &L::Target,
    ) -> Result<T> {
        self.check_input(x, InputScan::Needed, None)?;
        self.forward_into_buffers(x, Pass::Replay)?;
        let output = self.buffers.activations.last().expect("check_input ensures at least one module");
        Ok(loss.compute(output, targets, None)?.loss + self.l2_penalty())
    }

    /// The network's output on `x` (`input_rows × batch`): `output_rows × batch`, the logits of
    /// a classifier. Takes `&self`, so many threads can call it on one network at once.
    pub fn output(&self, x: &DMatrix<T>) -> Result<DMatrix<T>> {
        self.check_input(x, InputScan::Needed, None)?;
        let mut output = DMatrix::zeros(0, 0);
        self.run_inference(x, ModuleInputs::Checked, &mut output)?;
        self.check_output(x, &output, InputScan::Needed, None)?;
        Ok(output)
    }

    /// The modules on `x` as in inference, the result left in `output` (replaced by a matrix of
    /// the output's shape).
    fn run_inference(&self, x: &DMatrix<T>, inputs: ModuleInputs, output: &mut DMatrix<T>) -> Result<()> {
        let batch = x.ncols();
        // Two buffers, taking turns as input and output.
        let (mut current, mut next) = (DMatrix::zeros(0, 0), DMatrix::zeros(0, 0));
        for (i, module) in self.modules.iter().enumerate() {
            ensure_shape(&mut next, self.rows[i], batch);
            let input = if i == 0 { x } else { &current };
            if inputs == ModuleInputs::Checked {
                module.check_input(input)?;
            }
            module.forward(input, &mut next);
            std::mem::swap(&mut current, &mut next);
        }
        *output = current;
        Ok(())
    }

    /// Inside a composite module ([`Residual`](crate::Residual)): the inference pass on `x`
    /// into `output`, no module checking its input (the composite's caller checked the first's).
    pub(crate) fn output_within(&self, x: &DMatrix<T>, output: &mut DMatrix<T>) {
        self.run_inference(x, ModuleInputs::Trusted, output)
            .expect("a pass without input checks cannot fail");
    }

    /// Inside a composite module: the inference pass on `x` into the network's buffers, no
    /// module checking its input; returns the output.
    pub(crate) fn forward_mut_within(&mut self, x: &DMatrix<T>) -> &DMatrix<T> {
        self.forward_into_buffers(x, Pass::InferenceWithin).expect("a pass without input checks cannot fail");
        self.buffers.activations.last().expect("a composite's network has a module")
    }

    /// Inside a composite module: the training pass on `x` into the network's buffers, each
    /// module's random numbers drawn from `context`; returns the output.
    pub(crate) fn forward_within(&mut self, x: &DMatrix<T>, context: &mut TrainContext) -> &DMatrix<T> {
        self.forward_into_buffers(x, Pass::Within(context)).expect("a pass without input checks cannot fail");
        self.buffers.activations.last().expect("a composite's network has a module")
    }

    /// Inside a composite module, after [`forward_within`](Self::forward_within) on `x`: the
    /// backward pass from `grad_output`, the gradient of the network's output. Writes every
    /// trainable parameter's gradient, and `dL/dx` into `grad_input` when given.
    pub(crate) fn backward_within(
        &mut self,
        x: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        self.buffers.grads.resize_with(self.modules.len(), || DMatrix::zeros(0, 0));
        let lowest = match grad_input {
            Some(_) => 0,
            None => match self.modules.iter().position(|m| trains(m.as_ref())) {
                Some(lowest) => lowest,
                None => return,
            },
        };
        self.backward_modules(x, Some(grad_output), lowest, grad_input);
    }

    /// The output for one sample given as a slice of `input_rows` features.
    ///
    /// ```
    /// use feedforward::{MlpConfig, Network};
    /// use rand::SeedableRng;
    /// let net = Network::<f32>::mlp(&[3, 4, 2], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(0))?;
    /// let logits = net.output_sample(&[0.1, 0.2, 0.3])?;
    /// assert_eq!(logits.len(), 2);
    /// assert_eq!(net.predict_sample(&[0.1, 0.2, 0.3])?, if logits[1] > logits[0] { 1 } else { 0 });
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn output_sample(&self, sample: &[T]) -> Result<DVector<T>> {
        let out = self.output(&sample_matrix(sample))?;
        Ok(DVector::from_column_slice(out.as_slice()))
    }

    /// Predicted class (argmax of the output, the first on ties) of each sample.
    pub fn predict(&self, x: &DMatrix<T>) -> Result<Vec<usize>> {
        let out = self.output(x)?;
        Ok(out.as_slice().chunks_exact(out.nrows()).map(|c| column_max(c).0).collect())
    }

    /// Predicted class of one sample given as a slice of `input_rows` features.
    pub fn predict_sample(&self, sample: &[T]) -> Result<usize> {
        Ok(self.predict(&sample_matrix(sample))?[0])
    }

    /// Class probabilities (softmax of the output), `classes × batch`: what a classifier
    /// trained with [`SoftmaxCrossEntropy`] predicts. Each column sums to 1. For a multi-label
    /// network, see [`sigmoid_probabilities`](Network::sigmoid_probabilities).
    pub fn probabilities(&self, x: &DMatrix<T>) -> Result<DMatrix<T>> {
        let mut p = self.output(x)?;
        SoftmaxCrossEntropy::softmax_in_place(&mut p);
        Ok(p)
    }

    /// Independent probabilities, the logistic sigmoid `σ(z) = 1/(1 + e^(−z))` of each output,
    /// `outputs × batch`: what a multi-label network trained with
    /// [`BinaryCrossEntropy`](crate::BinaryCrossEntropy) predicts for each label. A column need
    /// not sum to 1; `p > 0.5` is the prediction that loss's accuracy counts. Computed from
    /// `e^(−|z|)` only, so no logit overflows.
    ///
    /// ```
    /// use feedforward::{Layer, Network};
    /// use nalgebra::DMatrix;
    /// // Two labels whose logits are x and −x.
    /// let layer = Layer::from_parts(DMatrix::from_row_slice(1, 2, &[1.0, -1.0]), None)?;
    /// let net = Network::<f64>::new(1).push(layer)?;
    /// let p = net.sigmoid_probabilities(&DMatrix::from_row_slice(1, 2, &[0.0, 2.0]))?;
    /// assert_eq!((p[(0, 0)], p[(1, 0)]), (0.5, 0.5));
    /// assert!((p[(0, 1)] - 1.0 / (1.0 + (-2f64).exp())).abs() < 1e-15);
    /// assert!((p[(0, 1)] + p[(1, 1)] - 1.0).abs() < 1e-15); // σ(−z) = 1 − σ(z)
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn sigmoid_probabilities(&self, x: &DMatrix<T>) -> Result<DMatrix<T>> {
        let mut p = self.output(x)?;
        p.apply(|z| *z = crate::loss::sigmoid(*z));
        Ok(p)
    }

    /// `alpha/2·Σ‖W‖²` over the regularized parameters.
    #[must_use]
    pub fn l2_penalty(&self) -> T {
        if self.l2 == T::zero() {
            return T::zero();
        }
        let sum = self
            .parameters()
            .filter(|p| p.is_regularized())
            .fold(T::zero(), |acc, p| acc + crate::linalg::sum_of_squares(p.value().as_slice()));
        self.penalty(sum)
    }

    /// `alpha/2` times a sum of squared weights.
    fn penalty(&self, squares: T) -> T {
        self.l2 * squares / T::lit(2.0)
    }

    /// The objective on a batch: `loss` of the output against `targets`, plus the L2 penalty.
    /// No gradients are computed.
    pub fn loss<L: Loss<T> + ?Sized>(&self, x: &DMatrix<T>, loss: &L, targets: &L::Target) -> Result<T> {
        let out = self.output(x)?;
        Ok(loss.compute(&out, targets, None)?.loss + self.l2_penalty())
    }

    /// The objective (loss + L2) and, for losses that classify, the accuracy on a batch, from
    /// one forward pass.
    pub fn evaluate<L: Loss<T> + ?Sized>(
        &self,
        x: &DMatrix<T>,
        loss: &L,
        targets: &L::Target,
    ) -> Result<Evaluation> {
        let out = self.output(x)?;
        let value = loss.compute(&out, targets, None)?;
        Ok(Evaluation { loss: (value.loss + self.l2_penalty()).as_f64(), accuracy: value.accuracy })
    }

    /// Each sample's loss, one per column of `x`, in order (PyTorch's `reduction="none"`): which
    /// samples the model gets most wrong. No L2 penalty; a loss that weighs classes includes
    /// each sample's class weight, a [`SampleWeighted`](crate::SampleWeighted) one its sample
    /// weight.
    ///
    /// ```
    /// use feedforward::{MeanSquaredError, MlpConfig, Network};
    /// use nalgebra::DMatrix;
    /// use rand::SeedableRng;
    /// let net = Network::<f64>::mlp(&[2, 4, 1], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(0))?;
    /// let x = DMatrix::from_fn(2, 3, |i, j| (i + 2 * j) as f64);
    /// let losses = net.sample_losses(&x, &MeanSquaredError, &DMatrix::zeros(1, 3))?;
    /// // Against targets of 0, each sample's squared error is its output squared.
    /// assert_eq!(losses, net.output(&x)?.map(|z| z * z).as_slice());
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn sample_losses<L: PerSampleLoss<T> + ?Sized>(
        &self,
        x: &DMatrix<T>,
        loss: &L,
        targets: &L::Target,
    ) -> Result<Vec<T>> {
        let out = self.output(x)?;
        let mut samples = Vec::with_capacity(out.ncols());
        loss.sample_losses(&out, targets, &mut samples)?;
        Ok(samples.into_iter().map(|s| s.loss).collect())
    }

    /// Fraction of samples whose predicted class (argmax of the output) equals the label, in
    /// [0, 1].
    pub fn accuracy(&self, x: &DMatrix<T>, labels: &[usize]) -> Result<f64> {
        let out = self.output(x)?;
        SoftmaxCrossEntropy::check_labels(out.nrows(), out.ncols(), labels)?;
        let columns = out.as_slice().chunks_exact(out.nrows());
        let correct = columns.zip(labels).filter(|(c, y)| column_max(c).0 == **y).count();
        Ok(correct as f64 / labels.len() as f64)
    }

    /// Forward and backward on a batch: returns the objective (loss + L2) and leaves `dL/dP` in
    /// every parameter's gradient (including the L2 term), frozen ones aside: the pass stops at
    /// the lowest module with a trainable parameter ([`Parameter::freeze`]).
    pub fn backward<L: Loss<T> + ?Sized>(
        &mut self,
        x: &DMatrix<T>,
        loss: &L,
        targets: &L::Target,
    ) -> Result<T> {
        self.check_input(x, InputScan::Needed, None)?;
        Ok(self.forward_backward(x, loss, targets, InputScan::Needed, None)?.loss)
    }

    /// Forward, loss and backward on an input that passed [`check_input`](Self::check_input).
    fn forward_backward<L: Loss<T> + ?Sized>(
        &mut self,
        x: &DMatrix<T>,
        loss: &L,
        targets: &L::Target,
        scan: InputScan,
        step: Option<usize>,
    ) -> Result<crate::LossValue<T>> {
        for module in &self.modules {
            module.check_training_batch(x.ncols())?;
        }
        self.forward_into_buffers(x, Pass::Training)?;
        let last = self.modules.len() - 1;
        self.check_output(x, &self.buffers.activations[last], scan, step)?;
        let Buffers { activations, grads, .. } = &mut self.buffers;
        grads.resize_with(self.modules.len(), || DMatrix::zeros(0, 0));
        let batch = x.ncols();
        ensure_shape(&mut grads[last], self.rows[last], batch);
        let value = loss.compute(&activations[last], targets, Some(&mut grads[last]))?;
        // Below the lowest module with a trainable parameter nothing trains, so the backward
        // pass stops there: a frozen body costs only its forward pass.
        let lowest = self.modules.iter().position(|m| trains(m.as_ref())).unwrap_or(self.modules.len());
        self.backward_modules(x, None, lowest, None);
        let mut squares = T::zero();
        if self.l2 != T::zero() {
            let alpha = self.l2;
            for module in &mut self.modules {
                module.visit_parameters_mut(&mut |p| {
                    if p.is_regularized() {
                        squares += p.add_l2_gradient(alpha);
                    }
                });
            }
        }
        Ok(crate::LossValue { loss: value.loss + self.penalty(squares), accuracy: value.accuracy })
    }

    /// The backward pass through modules `lowest..=last` from the gradient of the output:
    /// `grad_output`, or (`None`) the last gradient buffer. Each module writes its parameters'
    /// gradients, each above `lowest` the gradient of its input into the buffer below, and
    /// module `lowest` that of `x` into `grad_input`, if given.
    fn backward_modules(
        &mut self,
        x: &DMatrix<T>,
        grad_output: Option<&DMatrix<T>>,
        lowest: usize,
        mut grad_input: Option<&mut DMatrix<T>>,
    ) {
        let Buffers { activations, grads, .. } = &mut self.buffers;
        let (batch, last) = (x.ncols(), self.modules.len() - 1);
        for i in (lowest..=last).rev() {
            let (lower, upper) = grads.split_at_mut(i);
            let upstream = match grad_output {
                Some(g) if i == last => g,
                _ => &upper[0],
            };
            let into = if i == lowest {
                grad_input.take()
            } else {
                let g = &mut lower[i - 1];
                ensure_shape(g, self.rows[i - 1], batch);
                Some(g)
            };
            let input = if i == 0 { x } else { &activations[i - 1] };
            self.modules[i].backward(input, &activations[i], upstream, into);
        }
    }

    /// One training step on a batch: forward, `loss` against `targets`, backward, then
    /// `optimizer` updates every parameter.
    ///
    /// Errors change nothing: a bad input (wrong shape, NaN/inf in a sample), bad targets, or a
    /// loss, gradient or updated parameter that is NaN or infinite ([`Error::NonFinite`] naming
    /// the step) leave every parameter, and the optimizer's state, as they were before the step:
    /// the run can go on as if that batch had never been seen.
    pub fn train_step<L, O>(
        &mut self,
        x: &DMatrix<T>,
        loss: &L,
        targets: &L::Target,
        optimizer: &mut O,
    ) -> Result<StepReport>
    where
        L: Loss<T> + ?Sized,
        O: Optimizer<T> + ?Sized,
    {
        self.train_step_scanned(x, loss, targets, optimizer, InputScan::Needed, None)
    }

    /// Scales every gradient by `max_norm/‖g‖` when the global norm `‖g‖` (over all parameters
    /// at once, frozen ones left out) exceeds `max_norm`, as PyTorch's `clip_grad_norm_` does
    /// (which divides by `‖g‖ + 1e-6`). Returns the norm before clipping.
    fn clip_gradients(&mut self, max_norm: T) -> T {
        // Through the visitors: `parameters()` would allocate per module, in every step.
        let mut squares = T::zero();
        for module in &self.modules {
            module.visit_parameters(&mut |p| {
                if !p.is_frozen() {
                    squares += crate::linalg::sum_of_squares(p.grad().as_slice());
                }
            });
        }
        let norm = squares.sqrt();
        let scale = max_norm / (norm + T::lit(1e-6));
        if scale < T::one() {
            for module in &mut self.modules {
                module.visit_parameters_mut(&mut |p| {
                    if !p.is_frozen() {
                        p.grad_mut().scale_mut(scale);
                    }
                });
            }
        }
        norm
    }

    /// Sets the step count (a checkpoint resumes it: dropout masks depend on it).
    pub(crate) fn set_steps(&mut self, steps: usize) {
        self.steps = steps;
    }

    /// [`train_step`](Network::train_step), skipping the NaN/inf scan of an input already
    /// scanned, with optional gradient clipping by global norm.
    pub(crate) fn train_step_scanned<L, O>(
        &mut self,
        x: &DMatrix<T>,
        loss: &L,
        targets: &L::Target,
        optimizer: &mut O,
        scan: InputScan,
        clip_norm: Option<T>,
    ) -> Result<StepReport>
    where
        L: Loss<T> + ?Sized,
        O: Optimizer<T> + ?Sized,
    {
        let step = self.steps + 1;
        self.check_input(x, scan, Some(step))?;
        let value = self.forward_backward(x, loss, targets, scan, Some(step))?;
        if !value.loss.is_finite() {
            let (what, value) = ("loss".into(), value.loss.as_f64());
            return Err(Error::NonFinite { step: Some(step), what, value, sample: None });
        }
        if let Some(max_norm) = clip_norm {
            self.clip_gradients(max_norm);
        }
        optimizer.begin_step();
        // Phase 1: every new value into `next`, checked (the optimizer stages its new state).
        // Phase 2: commit the optimizer's state and swap the values in. A failure in phase 1
        // leaves the parameters and the optimizer as they were.
        let next = &mut self.buffers.next;
        let mut index = 0;
        let mut failure = None;
        for (m, module) in self.modules.iter().enumerate() {
            module.visit_parameters(&mut |param| {
                if failure.is_some() {
                    return;
                }
                if next.len() <= index {
                    next.push(DMatrix::zeros(0, 0));
                }
                // A frozen parameter keeps its number, so that the optimizer's state stays
                // with the right tensors when it is unfrozen.
                if param.is_frozen() {
                    index += 1;
                    return;
                }
                let next = &mut next[index];
                ensure_shape(next, param.value().nrows(), param.value().ncols());
                // A NaN or infinite gradient makes the new value non-finite too (p − lr·NaN, or
                // inf/inf in RMSprop), so this one check covers both; the message says which.
                if !optimizer.update(index, param, next.as_mut_slice()) {
                    // The slow path: find the culprit.
                    let culprit = |v: &[T]| first_non_finite(v).map(|(_, v)| v.as_f64());
                    let (what, value) = match (culprit(param.grad().as_slice()), culprit(next.as_slice())) {
                        (Some(g), _) => ("gradient", g),
                        (None, Some(v)) => ("updated value", v),
                        // The values are finite: the optimizer's own state overflowed.
                        (None, None) => ("optimizer state", f64::INFINITY),
                    };
                    let what = format!("{what} of module {m} ({}) {}", module.kind(), param.name());
                    failure = Some(Error::NonFinite { step: Some(step), what, value, sample: None });
                }
                index += 1;
            });
        }
        if let Some(error) = failure {
            return Err(error);
        }
        optimizer.commit_step();
        let mut next = self.buffers.next.iter_mut();
        for module in &mut self.modules {
            module.visit_parameters_mut(&mut |param| {
                let next = next.next().expect("one next value per parameter");
                if !param.is_frozen() {
                    param.swap_value(next);
                }
            });
            module.commit_step();
        }
        self.steps = step;
        Ok(StepReport { step, loss: value.loss.as_f64(), accuracy: value.accuracy, batch_size: x.ncols() })
    }
}

/// How many `BatchNorm`s [`Network::recompute_batch_norm`] recomputes in `module`: 1 for one
/// in the batch mode, those of a [`Residual`](crate::Residual)'s body, 0 otherwise.
fn recomputed_in<T: Float>(module: &dyn Module<T>) -> usize {
    if let Some(norm) = module.downcast_ref::<crate::BatchNorm<T>>() {
        usize::from(norm.training_statistics() == crate::BatchNormStatistics::Batch)
    } else if let Some(block) = module.downcast_ref::<crate::Residual<T>>() {
        block.body().modules().iter().map(|m| recomputed_in(m.as_ref())).sum()
    } else {
        0
    }
}

/// Whether `module` has a parameter that is not frozen (asked in every step: no allocation).
fn trains<T: Float>(module: &dyn Module<T>) -> bool {
    let mut trains = false;
    module.visit_parameters(&mut |p| trains |= !p.is_frozen());
    trains
}

/// A one-column matrix holding `sample`.
fn sample_matrix<T: Float>(sample: &[T]) -> DMatrix<T> {
    DMatrix::from_column_slice(sample.len(), 1, sample)
}

/// [`Error::NonFinite`] naming the first sample (column) of `x` with a NaN or ±inf, if any.
pub(crate) fn check_finite<T: Float>(x: &DMatrix<T>, what: &str, step: Option<usize>) -> Result<()> {
    match first_non_finite(x.as_slice()) {
        None => Ok(()),
        Some((k, value)) => Err(Error::NonFinite {
            step,
            what: what.to_string(),
            value: value.as_f64(),
            sample: Some(k / x.nrows().max(1)),
        }),
    }
}
