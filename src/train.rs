//! The training loop, [`fit`]: epochs over shuffled minibatches or full-batch iterations,
//! against any [`Loss`], with what a run needs around it:
//!
//! | setting ([`TrainConfig`]) | what it does |
//! |---|---|
//! | `last_batch` | a short last minibatch trained on or skipped ([`LastBatch`]; BatchNorm cannot train on one sample) |
//! | `schedule` | learning rate per step or epoch: [`Schedule`] (constant, step, exponential, cosine, warm-up then cosine, reduce-on-plateau) |
//! | `clip_grad_norm` | gradients scaled to a global norm before each update |
//! | `early_stopping` | stop when the validation loss stalls; keep the best epoch's weights |
//! | `checkpoint`, `resume` | a checkpoint file after epochs; continue a run from one, bit for bit |
//!
//! A validation set ([`Data::with_validation`]) is evaluated after every epoch and reported to
//! the callback ([`Event::Epoch`]); [`split`] holds one out of a data set at random,
//! [`stratified_split`] each class in its share, and [`folds`] cuts one for cross-validation.
//!
//! **Checkpoints** are safetensors model files ([`Network::load`] reads them) that also hold the
//! optimizer's state ([`Optimizer::state`]) as tensors `optimizer.{buffer}.{tensor}`, with early
//! stopping the best weights as `best.layer{k}.{parameter}`, and under the metadata key
//! `feedforward.checkpoint` the run's position (epoch, step, the network's step count and
//! dropout seed, the schedule's and early stopping's state) and what the run trained on (seed,
//! batching, samples, epochs), which a resumed run must match. They are written at the end of
//! an epoch, to a temporary name then renamed, so a run killed mid-write keeps the previous
//! one. The shuffling order is not stored: a resumed run replays the shuffles of the epochs done.

pub use crate::averaging::Averaging;
use crate::checkpoint::{self, RunState, Tracker};
use crate::error::plural;
use crate::loss::{Loss, Targets};
pub use crate::lr_finder::{RangeTest, RangeTestReport, find_learning_rate};
use crate::network::{InputScan, check_finite};
use crate::parallel::{Cols, ColsMut, for_column_blocks};
pub use crate::split::{
    FoldConfig, Folds, Split, SplitConfig, folds, group_folds, group_split, split, stratified_folds,
    stratified_folds_by, stratified_group_folds, stratified_split, stratified_split_by,
};
use crate::{Error, Evaluation, Float, Network, Optimizer, Result, StepReport, weights};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::borrow::Borrow;
use std::path::PathBuf;

/// How each epoch is cut into steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batching {
    /// One step per epoch on the whole training set, in its stored order (no copy is made).
    Full,
    /// Steps on consecutive batches of `size` samples; the order is reshuffled every epoch
    /// when `shuffle` is true. The last batch of an epoch may be smaller.
    Minibatch {
        /// Samples per step.
        size: usize,
        /// Reshuffle before every epoch (seeded by [`TrainConfig::seed`]).
        shuffle: bool,
    },
}

/// What [`fit`] does with an epoch's last minibatch when the samples do not divide into
/// batches of [`Batching::Minibatch`]'s size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LastBatch {
    /// Train on it: a smaller last step. A module that cannot train on so few samples (a
    /// [`BatchNorm`](crate::BatchNorm) on one) makes [`fit`] an error before the first step.
    #[default]
    Keep,
    /// Skip it (PyTorch's `drop_last=True`): every step sees `size` samples, as BatchNorm
    /// wants. Shuffled, the samples skipped differ from epoch to epoch; unshuffled, the same
    /// last `samples % size` never train. A training set smaller than one batch is an error.
    Drop,
}

/// How the learning rate changes over a run, relative to the optimizer's rate when [`fit`]
/// starts (which it restores at the end).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Schedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Multiplied by `gamma` every `every_epochs` epochs (PyTorch's `StepLR`, stepped per epoch).
    Step {
        /// Epochs between two reductions (at least 1).
        every_epochs: usize,
        /// Factor of each reduction, in (0, 1].
        gamma: f64,
    },
    /// Multiplied by `gamma` after every epoch (PyTorch's `ExponentialLR`, stepped per epoch).
    Exponential {
        /// Factor per epoch, in (0, 1].
        gamma: f64,
    },
    /// Cosine annealing from the full rate down towards `final_fraction` of it, step by step.
    Cosine {
        /// Fraction of the rate reached at the end, in [0, 1].
        final_fraction: f64,
    },
    /// A linear warm-up from `1/warmup_steps` of the rate to all of it over the first
    /// `warmup_steps` steps, then cosine annealing over the rest towards `final_fraction`.
    WarmupCosine {
        /// Steps of warm-up (at least 1).
        warmup_steps: usize,
        /// Fraction of the rate reached at the end, in [0, 1].
        final_fraction: f64,
    },
    /// Multiplied by `factor` when the validation loss has not improved for more than
    /// `patience` epochs (PyTorch's `ReduceLROnPlateau`, mode `min`, relative threshold).
    /// Needs a validation set.
    ReduceOnPlateau(Plateau),
    /// Multiplied geometrically, step by step, from 1 at the first step to `final_factor` at
    /// the last: `final_factor^(step/(total − 1))`. The rising rate of the learning-rate range
    /// test ([`find_learning_rate`]).
    Ramp {
        /// The factor at the last step, finite and > 0.
        final_factor: f64,
    },
}

/// The settings of [`Schedule::ReduceOnPlateau`], with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plateau {
    /// Factor of each reduction, in (0, 1) (default 0.1).
    pub factor: f64,
    /// Epochs without improvement tolerated before a reduction (default 10).
    pub patience: usize,
    /// An improvement must beat the best loss by this fraction of it (default 1e-4).
    pub threshold: f64,
    /// The rate never goes below this fraction of the starting rate (default 0).
    pub min_fraction: f64,
}

impl Default for Plateau {
    fn default() -> Self {
        Plateau { factor: 0.1, patience: 10, threshold: 1e-4, min_fraction: 0.0 }
    }
}

/// Where a step sits, for [`Schedule::factor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// 0-based step within the run.
    pub step: usize,
    /// Steps the whole run takes.
    pub total_steps: usize,
    /// 0-based epoch.
    pub epoch: usize,
}

impl Schedule {
    /// Factor applied to the base rate at `at` ([`Schedule::ReduceOnPlateau`]: 1, since its
    /// factor depends on the validation losses, which [`fit`] tracks).
    ///
    /// ```
    /// use feedforward::train::{Position, Schedule};
    /// let warm = Schedule::WarmupCosine { warmup_steps: 10, final_fraction: 0.0 };
    /// let at = |step| warm.factor(Position { step, total_steps: 110, epoch: 0 });
    /// assert_eq!((at(0), at(9), at(10)), (0.1, 1.0, 1.0));
    /// assert!(at(60) > 0.49 && at(60) < 0.51);
    /// ```
    #[must_use]
    pub fn factor(&self, at: Position) -> f64 {
        let cosine = |progress: f64, final_fraction: f64| {
            final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        };
        match *self {
            Schedule::Constant | Schedule::ReduceOnPlateau(_) => 1.0,
            Schedule::Step { every_epochs, gamma } => gamma.powf((at.epoch / every_epochs.max(1)) as f64),
            Schedule::Exponential { gamma } => gamma.powf(at.epoch as f64),
            Schedule::Ramp { final_factor } => {
                final_factor.powf(at.step as f64 / at.total_steps.saturating_sub(1).max(1) as f64)
            }
            Schedule::Cosine { final_fraction } => {
                cosine(at.step as f64 / at.total_steps.max(1) as f64, final_fraction)
            }
            Schedule::WarmupCosine { warmup_steps, final_fraction } => {
                if at.step < warmup_steps {
                    (at.step + 1) as f64 / warmup_steps as f64
                } else {
                    let rest = at.total_steps.saturating_sub(warmup_steps).max(1);
                    cosine((at.step - warmup_steps) as f64 / rest as f64, final_fraction)
                }
            }
        }
    }

    /// Rejects settings out of range.
    fn check(&self) -> Result<()> {
        let bad =
            |name, value: f64, requirement| Err(Error::InvalidHyperparameter { name, value, requirement });
        let fraction = |f: f64| (0.0..=1.0).contains(&f);
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::Step { every_epochs: 0, .. } => bad("every epochs", 0.0, "must be at least 1"),
            Schedule::WarmupCosine { warmup_steps: 0, .. } => bad("warm-up steps", 0.0, "must be at least 1"),
            Schedule::Step { gamma, .. } | Schedule::Exponential { gamma }
                if !(gamma > 0.0 && gamma <= 1.0) =>
            {
                bad("gamma", gamma, "must be in (0, 1]")
            }
            Schedule::Cosine { final_fraction } | Schedule::WarmupCosine { final_fraction, .. }
                if !fraction(final_fraction) =>
            {
                bad("final fraction", final_fraction, "must be in [0, 1]")
            }
            Schedule::Ramp { final_factor } if !(final_factor > 0.0 && final_factor.is_finite()) => {
                bad("ramp final factor", final_factor, "must be finite and > 0")
            }
            Schedule::ReduceOnPlateau(p) if !(p.factor > 0.0 && p.factor < 1.0) => {
                bad("plateau factor", p.factor, "must be in (0, 1)")
            }
            Schedule::ReduceOnPlateau(p) if !(p.threshold >= 0.0 && p.threshold.is_finite()) => {
                bad("plateau threshold", p.threshold, "must be finite and >= 0")
            }
            Schedule::ReduceOnPlateau(p) if !fraction(p.min_fraction) => {
                bad("plateau min fraction", p.min_fraction, "must be in [0, 1]")
            }
            _ => Ok(()),
        }
    }
}

/// Early stopping on the validation loss ([`TrainConfig::early_stopping`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyStopping {
    /// Epochs without improvement tolerated before stopping (default 5).
    pub patience: usize,
    /// An improvement must lower the best validation loss by more than this (default 0).
    pub min_delta: f64,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping { patience: 5, min_delta: 0.0 }
    }
}

/// Where and how often [`fit`] writes a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpointing {
    /// The file, rewritten each time (a safetensors model file that [`Network::load`] also
    /// reads, plus the optimizer's state and the run's position).
    pub path: PathBuf,
    /// Write after every `every_epochs` epochs, and after the last one (default 1).
    pub every_epochs: usize,
}

impl Checkpointing {
    /// A checkpoint at `path` after every epoch.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Checkpointing { path: path.into(), every_epochs: 1 }
    }
}

/// What [`fit`] runs.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set (with [`Batching::Full`], that is also the number of steps).
    pub epochs: usize,
    /// How an epoch is cut into steps.
    pub batching: Batching,
    /// What a short last minibatch of an epoch does ([`LastBatch`]; default: it trains).
    pub last_batch: LastBatch,
    /// Seed of the shuffling order.
    pub seed: u64,
    /// Stop after this many steps even if epochs remain (`None`: run every epoch).
    pub max_steps: Option<usize>,
    /// Learning-rate schedule over the run's steps.
    pub schedule: Schedule,
    /// Clip the gradients to this global norm (over all parameters at once) before each
    /// update, as PyTorch's `clip_grad_norm_`; `None` (the default) does not clip.
    pub clip_grad_norm: Option<f64>,
    /// Stop when the validation loss stops improving, and restore the weights of the best
    /// epoch (at the end of any run with early stopping). Needs a validation set.
    pub early_stopping: Option<EarlyStopping>,
    /// Write a checkpoint at the end of epochs.
    pub checkpoint: Option<Checkpointing>,
    /// Continue the run saved in this checkpoint: the network (built with the same
    /// architecture), the optimizer (of the same kind) and the run's position are restored
    /// from it, and training goes on from the next epoch, exactly as if never interrupted. The
    /// configuration and the training set must be the run's (checked: seed, batching, epochs,
    /// number of samples).
    pub resume: Option<PathBuf>,
    /// Keep an average of the weights, validate it and end with it ([`Averaging`]); `None`
    /// (the default) keeps none.
    pub averaging: Option<Averaging>,
}

impl Default for TrainConfig {
    /// One full-batch epoch, seed 0, constant learning rate, nothing else.
    fn default() -> Self {
        TrainConfig {
            epochs: 1,
            batching: Batching::Full,
            last_batch: LastBatch::Keep,
            seed: 0,
            max_steps: None,
            schedule: Schedule::Constant,
            clip_grad_norm: None,
            early_stopping: None,
            checkpoint: None,
            resume: None,
            averaging: None,
        }
    }
}

impl TrainConfig {
    /// Steps per epoch on `samples` samples.
    #[must_use]
    pub fn steps_per_epoch(&self, samples: usize) -> usize {
        match self.batching {
            Batching::Full => 1,
            Batching::Minibatch { size, .. } => match self.last_batch {
                LastBatch::Keep => samples.div_ceil(size.max(1)),
                LastBatch::Drop => samples / size.max(1),
            },
        }
    }
}

/// The data [`fit`] trains on: inputs (`features × samples`, one sample per column) and their
/// targets, and optionally a validation set measured after every epoch.
#[derive(Debug)]
pub struct Data<'a, T: Float, Y: ?Sized> {
    /// Training inputs.
    pub inputs: &'a DMatrix<T>,
    /// Training targets (what the loss takes: labels, a matrix, …).
    pub targets: &'a Y,
    /// Validation inputs and targets.
    pub validation: Option<(&'a DMatrix<T>, &'a Y)>,
}

impl<T: Float, Y: ?Sized> Clone for Data<'_, T, Y> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Float, Y: ?Sized> Copy for Data<'_, T, Y> {}

impl<'a, T: Float, Y: ?Sized> Data<'a, T, Y> {
    /// A training set, without validation. `targets` is what the loss takes, or what borrows
    /// as it: labels as a `Vec<usize>` or a `[usize]`, a `DMatrix<T>`.
    ///
    /// ```
    /// use feedforward::train::{self, Data, TrainConfig};
    /// use feedforward::{MlpConfig, Network, Sgd, SoftmaxCrossEntropy};
    /// use nalgebra::DMatrix;
    /// use rand::SeedableRng;
    /// let x = DMatrix::<f32>::from_fn(2, 4, |i, j| (i + j) as f32);
    /// let labels: Vec<usize> = vec![0, 1, 0, 1];
    /// let mut net = Network::mlp(&[2, 4, 2], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(0))?;
    /// let data = Data::new(&x, &labels).with_validation(&x, &labels);
    /// let config = TrainConfig { epochs: 2, ..TrainConfig::default() };
    /// let report = train::fit(&mut net, &mut Sgd::with_learning_rate(0.1)?, &SoftmaxCrossEntropy::new(), data, &config, |_, _, _| {})?;
    /// assert_eq!(report.epochs.len(), 2);
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    #[must_use]
    pub fn new<Q: Borrow<Y> + ?Sized>(inputs: &'a DMatrix<T>, targets: &'a Q) -> Self {
        Data { inputs, targets: targets.borrow(), validation: None }
    }

    /// The same, with a validation set (its targets as [`Data::new`] takes them).
    #[must_use]
    pub fn with_validation<Q: Borrow<Y> + ?Sized>(self, inputs: &'a DMatrix<T>, targets: &'a Q) -> Self {
        Data { validation: Some((inputs, targets.borrow())), ..self }
    }
}

/// Where a step sits in the run, handed to the callback of [`fit`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// 1-based epoch.
    pub epoch: usize,
    /// 1-based step within the run.
    pub step: usize,
    /// Steps the whole run will take.
    pub total_steps: usize,
    /// What the step measured.
    pub report: StepReport,
}

/// What an epoch measured, handed to the callback of [`fit`] and kept in [`FitReport`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// Steps taken so far in the run.
    pub steps: usize,
    /// Mean over the epoch's samples of the step losses (loss + L2; each measured before its
    /// step's update).
    pub train_loss: f64,
    /// The same mean of the step accuracies, for losses that classify.
    pub train_accuracy: Option<f64>,
    /// Loss (+ L2) and accuracy on the validation set after the epoch, if there is one.
    pub validation: Option<Evaluation>,
    /// The learning rate of the epoch's last step.
    pub learning_rate: f64,
}

/// One thing that happened in [`fit`], as its callback sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event<'a> {
    /// A step was taken.
    Step(&'a Progress),
    /// An epoch ended (after its validation, schedule update and checkpoint).
    Epoch(&'a EpochReport),
}

/// What the callback of [`fit`] wants next. A callback returning `()` continues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flow {
    /// Go on training.
    #[default]
    Continue,
    /// Stop after this step or epoch (as if interrupted: the last checkpoint stays as written).
    Stop,
}

impl From<()> for Flow {
    fn from((): ()) -> Flow {
        Flow::Continue
    }
}

/// What a whole [`fit`] did.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FitReport {
    /// The report of the last step.
    pub last_step: Option<StepReport>,
    /// Every epoch's report, in order (a resumed run: the epochs run since resuming).
    pub epochs: Vec<EpochReport>,
    /// With early stopping: the epoch whose weights the network holds at the end.
    pub best_epoch: Option<usize>,
    /// Whether early stopping ended the run before its last epoch.
    pub stopped_early: bool,
    /// With weight averaging ([`TrainConfig::averaging`]): how many snapshots of the weights
    /// the average the run ended with holds (steps, or epochs); `None` without averaging, or
    /// before the first snapshot.
    pub averaged: Option<usize>,
}

/// Trains `network` on `data` under `loss`, as `config` says.
///
/// Before the first step, the whole training set (and validation set) is checked once: every
/// input finite, every input value one the first module takes
/// ([`Module::check_input`](crate::Module::check_input)), every target valid for the loss
/// ([`Loss::check_targets`]), so an error names the sample's position in the data set, not in
/// a shuffled minibatch (as does a later module's [`Error::InvalidInput`], raised in the step
/// that meets the sample). After every step and
/// every epoch, `on_event` sees what happened, the network and the optimizer (for printing,
/// plotting, or inspecting optimizer state), and may stop the run by returning [`Flow::Stop`].
/// Stops at the first error (e.g. [`Error::NonFinite`], which names the step and leaves the
/// parameters and the optimizer as they were before it).
///
/// ```
/// use feedforward::train::{self, Batching, Data, EarlyStopping, Event, TrainConfig};
/// use feedforward::{Adam, MeanSquaredError, MlpConfig, Network};
/// use nalgebra::DMatrix;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
/// let mut net = Network::<f32>::mlp(&[1, 32, 1], MlpConfig::default(), &mut rng)?;
/// let x = DMatrix::from_fn(1, 64, |_, j| j as f32 / 32.0 - 1.0);
/// let y = x.map(|v| v * v);
/// let (xv, yv) = (x.map(|v| v + 1.0 / 64.0), x.map(|v| (v + 1.0 / 64.0).powi(2)));
/// let mut opt = Adam::with_learning_rate(1e-2)?;
/// let config = TrainConfig {
///     epochs: 100,
///     batching: Batching::Minibatch { size: 16, shuffle: true },
///     early_stopping: Some(EarlyStopping { patience: 10, min_delta: 0.0 }),
///     ..Default::default()
/// };
/// let data = Data::new(&x, &y).with_validation(&xv, &yv);
/// let before = net.loss(&xv, &MeanSquaredError, &yv)?;
/// let report = train::fit(&mut net, &mut opt, &MeanSquaredError, data, &config, |event, _, _| {
///     if let Event::Epoch(e) = event {
///         assert!(e.validation.is_some());
///     }
/// })?;
/// assert!(net.loss(&xv, &MeanSquaredError, &yv)? < before / 10.0);
/// assert!(report.best_epoch.is_some());
/// # Ok::<(), feedforward::Error>(())
/// ```
pub fn fit<T, L, O, F, R>(
    network: &mut Network<T>,
    optimizer: &mut O,
    loss: &L,
    data: Data<'_, T, L::Target>,
    config: &TrainConfig,
    mut on_event: F,
) -> Result<FitReport>
where
    T: Float,
    L: Loss<T> + ?Sized,
    O: Optimizer<T> + ?Sized,
    F: FnMut(Event<'_>, &Network<T>, &O) -> R,
    R: Into<Flow>,
{
    let (inputs, targets) = (data.inputs, data.targets);
    let samples = inputs.ncols();
    if samples == 0 {
        return Err(Error::EmptyBatch { what: "training set" });
    }
    check_set(network, loss, inputs, targets, "training")?;
    if let Some((x, y)) = data.validation {
        check_set(network, loss, x, y, "validation")?;
        if x.ncols() == 0 {
            return Err(Error::EmptyBatch { what: "validation set" });
        }
    }
    if let Batching::Minibatch { size: 0, .. } = config.batching {
        return Err(Error::InvalidHyperparameter {
            name: "batch size",
            value: 0.0,
            requirement: "must be at least 1",
        });
    }
    if config.steps_per_epoch(samples) == 0 {
        return Err(Error::shape(
            "training set",
            "at least one batch (LastBatch::Drop skips a short last batch)",
            plural(samples, "sample"),
        ));
    }
    // Every batch size the epochs will use, checked before the first step (BatchNorm needs 2).
    let (size, last) = match (config.batching, config.last_batch) {
        (Batching::Full, _) => (samples, samples),
        (Batching::Minibatch { size, .. }, LastBatch::Keep) => (size.min(samples), samples % size),
        (Batching::Minibatch { size, .. }, LastBatch::Drop) => (size, 0),
    };
    for module in network.modules() {
        module.check_training_batch(size)?;
        if last > 0 {
            module.check_training_batch(last)?;
        }
    }
    config.schedule.check()?;
    let needs_validation =
        config.early_stopping.is_some() || matches!(config.schedule, Schedule::ReduceOnPlateau(_));
    if needs_validation && data.validation.is_none() {
        return Err(Error::InvalidHyperparameter {
            name: "validation set",
            value: 0.0,
            requirement: "is needed by early stopping and reduce-on-plateau (Data::with_validation)",
        });
    }
    if let Some(norm) = config.clip_grad_norm
        && !(norm > 0.0 && norm.is_finite())
    {
        return Err(Error::InvalidHyperparameter {
            name: "gradient clipping norm",
            value: norm,
            requirement: "must be finite and > 0",
        });
    }
    if let Some(averaging) = config.averaging {
        averaging.check(config.epochs)?;
    }
    if let Some(Checkpointing { every_epochs: 0, .. }) = config.checkpoint {
        return Err(Error::InvalidHyperparameter {
            name: "checkpoint every",
            value: 0.0,
            requirement: "must be at least 1 epoch",
        });
    }
    let mut total_steps =
        config.epochs.checked_mul(config.steps_per_epoch(samples)).ok_or(Error::InvalidHyperparameter {
            name: "epochs",
            value: config.epochs as f64,
            requirement: "times the steps per epoch must fit in a usize",
        })?;
    if let Some(max) = config.max_steps {
        total_steps = total_steps.min(max);
    }
    // What a checkpoint of this run records, and a resumed run must match.
    let mut identity = serde_json::json!({
        "seed": config.seed,
        "batching": format!("{:?}", config.batching),
        "samples": samples,
        "epochs": config.epochs,
        "max_steps": config.max_steps,
    });
    if let Some(averaging) = config.averaging {
        identity["averaging"] = format!("{averaging:?}").into();
    }
    // Only when it is not the default, so that checkpoints written before it existed resume.
    if config.last_batch != LastBatch::Keep {
        identity["last_batch"] = format!("{:?}", config.last_batch).into();
    }
    let mut run = match &config.resume {
        Some(path) => checkpoint::load(path, network, optimizer, &identity)?,
        None => RunState {
            epoch: 0,
            step: 0,
            plateau: Tracker::default(),
            early: Tracker::default(),
            best_weights: None,
            average: None,
        },
    };
    let base_rate = optimizer.learning_rate();
    let clip = config.clip_grad_norm.map(T::lit);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..samples).collect();
    let shuffle = matches!(config.batching, Batching::Minibatch { shuffle: true, .. });
    // A resumed run replays the shuffles of the epochs already done.
    for _ in 0..run.epoch {
        if shuffle {
            order.shuffle(&mut rng);
        }
    }
    let mut averaged_network: Option<Network<T>> = None;
    let mut batch = DMatrix::zeros(0, 0);
    let mut batch_targets = <L::Target as Targets>::Batch::default();
    let mut report = FitReport::default();
    let mut outcome = Ok(());
    'run: for epoch in run.epoch + 1..=config.epochs {
        if run.step == total_steps {
            break;
        }
        let size = match config.batching {
            Batching::Full => samples,
            Batching::Minibatch { size, .. } => size,
        };
        if shuffle {
            order.shuffle(&mut rng);
        }
        let (mut loss_sum, mut correct, mut seen, mut classifies, mut rate) = (0.0, 0.0, 0usize, true, 0.0);
        let mut stop = false;
        let steps = config.steps_per_epoch(samples);
        for chunk in order.chunks(size).take(steps) {
            if run.step == total_steps {
                break;
            }
            let at = Position { step: run.step, total_steps, epoch: epoch - 1 };
            let factor = config.schedule.factor(at) * run.plateau.factor;
            rate = base_rate.as_f64() * factor;
            if let Err(e) = optimizer.set_learning_rate(base_rate * T::lit(factor)) {
                outcome = Err(e);
                break 'run;
            }
            let step = if config.batching == Batching::Full {
                network.train_step_scanned(inputs, loss, targets, optimizer, InputScan::Done, clip)
            } else {
                gather_columns(inputs, chunk, &mut batch);
                targets.gather(chunk, &mut batch_targets);
                let batch_targets = <L::Target as Targets>::view(&batch_targets);
                let step =
                    network.train_step_scanned(&batch, loss, batch_targets, optimizer, InputScan::Done, clip);
                // A later module's check (the first's ran on the whole set) named the sample by
                // its place in the shuffled minibatch: name it by its place in the set.
                step.map_err(|e| match e {
                    Error::InvalidInput { sample, row, value, requirement } => {
                        Error::InvalidInput { sample: chunk[sample], row, value, requirement }
                    }
                    e => e,
                })
            };
            let step = match step {
                Ok(step) => step,
                Err(e) => {
                    outcome = Err(e);
                    break 'run;
                }
            };
            run.step += 1;
            if let Some(averaging) = config.averaging {
                averaging.after_step(&mut run.average, network);
            }
            let n = step.batch_size as f64;
            loss_sum += step.loss * n;
            seen += step.batch_size;
            match step.accuracy {
                Some(a) => correct += a * n,
                None => classifies = false,
            }
            report.last_step = Some(step);
            let progress = Progress { epoch, step: run.step, total_steps, report: step };
            if on_event(Event::Step(&progress), network, optimizer).into() == Flow::Stop {
                stop = true;
                break;
            }
        }
        if let Some(averaging) = config.averaging {
            averaging.after_epoch(&mut run.average, network, epoch);
        }
        // With an average, it is what is validated (and what early stopping keeps), in a copy of
        // the network made once and given the average's tensors each epoch.
        let evaluated = match (&run.average, data.validation) {
            (Some(average), Some(_)) => {
                let copy = averaged_network.get_or_insert_with(|| network.clone());
                weights::copy_tensors(copy, &average.tensors);
                &*copy
            }
            _ => &*network,
        };
        let validation = match data.validation {
            Some((x, y)) => match evaluated.evaluate(x, loss, y) {
                Ok(v) => Some(v),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            },
            None => None,
        };
        if let (Some(v), Schedule::ReduceOnPlateau(p)) = (validation, config.schedule) {
            let tracker = &mut run.plateau;
            if v.loss < tracker.best * (1.0 - p.threshold) {
                (tracker.best, tracker.best_epoch, tracker.bad_epochs) = (v.loss, epoch, 0);
            } else {
                tracker.bad_epochs += 1;
            }
            if tracker.bad_epochs > p.patience {
                tracker.factor = (tracker.factor * p.factor).max(p.min_fraction);
                tracker.bad_epochs = 0;
            }
        }
        let mut stopped_early = false;
        if let (Some(v), Some(early)) = (validation, config.early_stopping) {
            let tracker = &mut run.early;
            if v.loss < tracker.best - early.min_delta {
                (tracker.best, tracker.best_epoch, tracker.bad_epochs) = (v.loss, epoch, 0);
                // Reuses the buffers of the previous best.
                // Parameters and buffers (BatchNorm's running statistics): the whole model.
                let best = run.best_weights.get_or_insert_with(Vec::new);
                let tensors = weights::tensors(evaluated);
                best.resize_with(tensors.len(), || DMatrix::zeros(0, 0));
                best.iter_mut().zip(tensors).for_each(|(b, t)| b.clone_from(t));
            } else {
                tracker.bad_epochs += 1;
                stopped_early = tracker.bad_epochs >= early.patience;
            }
        }
        run.epoch = epoch;
        if let Some(c) = &config.checkpoint
            && !stop
            && (epoch.is_multiple_of(c.every_epochs) || epoch == config.epochs || stopped_early)
            && let Err(e) = checkpoint::save(&c.path, network, optimizer, &run, &identity)
        {
            outcome = Err(e);
            break;
        }
        let epoch_report = EpochReport {
            epoch,
            steps: run.step,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: classifies.then(|| correct / seen.max(1) as f64),
            validation,
            learning_rate: rate,
        };
        report.epochs.push(epoch_report);
        if stop || on_event(Event::Epoch(&epoch_report), network, optimizer).into() == Flow::Stop {
            break;
        }
        if stopped_early {
            report.stopped_early = epoch < config.epochs;
            break;
        }
    }
    if config.early_stopping.is_some()
        && let Some(best) = &run.best_weights
    {
        weights::copy_tensors(network, best);
        report.best_epoch = Some(run.early.best_epoch);
    } else if outcome.is_ok()
        && let Some(average) = &run.average
    {
        weights::copy_tensors(network, &average.tensors);
    }
    report.averaged = run.average.as_ref().map(|a| a.count);
    optimizer.set_learning_rate(base_rate)?;
    outcome.map(|()| report)
}

/// Checks a data set against the network and loss: shapes, finite inputs, valid targets.
fn check_set<T, L>(
    network: &Network<T>,
    loss: &L,
    inputs: &DMatrix<T>,
    targets: &L::Target,
    what: &str,
) -> Result<()>
where
    T: Float,
    L: Loss<T> + ?Sized,
{
    let samples = inputs.ncols();
    if targets.samples() != samples {
        return Err(Error::shape(
            format!("{what} targets"),
            format!("{samples} (one per sample)"),
            format!("{}", targets.samples()),
        ));
    }
    if inputs.nrows() != network.input_rows() {
        return Err(Error::shape(
            format!("{what} inputs"),
            format!("{} (features per sample)", plural(network.input_rows(), "row")),
            plural(inputs.nrows(), "row"),
        ));
    }
    check_finite(inputs, &format!("{what} set"), None)?;
    // The first module's input is the data: checked whole, its errors name the sample's place
    // in the set rather than in a shuffled minibatch.
    if let Some(first) = network.modules().first() {
        first.check_input(inputs)?;
    }
    loss.check_targets(network.output_rows(), targets)
}

/// Copies the columns `indices` of `matrix` into `batch` (resized only when its shape differs),
/// in that order.
///
/// Each column is one contiguous copy, and the batch's columns are cut into blocks over the
/// thread team: gathering 128 random MNIST images took about 100 µs a batch with nalgebra's
/// element-by-element column copy, 15% of a minibatch epoch (README, Performance).
///
/// # Panics
/// If an index is `>= matrix.ncols()`.
pub fn gather_columns<T: Float>(matrix: &DMatrix<T>, indices: &[usize], batch: &mut DMatrix<T>) {
    let rows = matrix.nrows();
    crate::linalg::ensure_shape(batch, rows, indices.len());
    if rows == 0 {
        return;
    }
    let source = matrix.as_slice();
    let block = |(to, from): (ColsMut<'_, T>, Cols<'_, usize>)| {
        for (column, &i) in to.0.chunks_exact_mut(rows).zip(from.0) {
            column.copy_from_slice(&source[i * rows..(i + 1) * rows]);
        }
    };
    let data = (ColsMut(batch.as_mut_slice(), rows), Cols(indices, 1));
    for_column_blocks(indices.len(), rows, data, &block, &|(), ()| ());
}
