//! Training loops: epochs over shuffled minibatches, or full-batch iterations, against any
//! [`Loss`].

use crate::error::plural;
use crate::loss::{Loss, Targets};
use crate::network::{InputScan, check_finite};
use crate::{Error, Float, Network, Optimizer, Result, StepReport};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

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

/// How the learning rate changes over a run, relative to the optimizer's rate when [`fit`]
/// starts (which it restores at the end).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Schedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Cosine annealing from the full rate down towards `final_fraction` of it, step by step.
    Cosine {
        /// Fraction of the rate reached at the end, in [0, 1].
        final_fraction: f64,
    },
}

impl Schedule {
    /// Factor applied to the base rate at 0-based `step` of `total`.
    #[must_use]
    pub fn factor(&self, step: usize, total: usize) -> f64 {
        match *self {
            Schedule::Constant => 1.0,
            Schedule::Cosine { final_fraction } => {
                let progress = step as f64 / total.max(1) as f64;
                final_fraction
                    + (1.0 - final_fraction) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

/// What [`fit`] runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set (with [`Batching::Full`], that is also the number of steps).
    pub epochs: usize,
    /// How an epoch is cut into steps.
    pub batching: Batching,
    /// Seed of the shuffling order.
    pub seed: u64,
    /// Stop after this many steps even if epochs remain (`None`: run every epoch).
    pub max_steps: Option<usize>,
    /// Learning-rate schedule over the run's steps.
    pub schedule: Schedule,
}

impl Default for TrainConfig {
    /// One full-batch epoch, seed 0, constant learning rate.
    fn default() -> Self {
        TrainConfig {
            epochs: 1,
            batching: Batching::Full,
            seed: 0,
            max_steps: None,
            schedule: Schedule::Constant,
        }
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

impl TrainConfig {
    /// Steps per epoch on `samples` samples.
    #[must_use]
    pub fn steps_per_epoch(&self, samples: usize) -> usize {
        match self.batching {
            Batching::Full => 1,
            Batching::Minibatch { size, .. } => samples.div_ceil(size.max(1)),
        }
    }
}

/// Trains `network` on `inputs` (`features × samples`, one sample per column) and their
/// `targets` under `loss`.
///
/// Before the first step, the whole training set is checked once: every input finite, every
/// target valid for the loss ([`Loss::check_targets`]), so an error names the sample's position
/// in the data set, not in a shuffled minibatch. After every step `on_step` sees the progress,
/// the network and the optimizer (for printing, plotting, or inspecting optimizer state).
/// Returns the report of the last step. Stops at the first error (e.g. [`Error::NonFinite`],
/// which names the step and leaves the parameters as they were before it).
///
/// ```
/// use feedforward::train::{self, Batching, TrainConfig};
/// use feedforward::{Init, MeanSquaredError, Network, Rmsprop};
/// use nalgebra::DMatrix;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
/// let mut net = Network::<f32>::mlp(&[1, 32, 1], Init::He, true, &mut rng)?;
/// let x = DMatrix::from_fn(1, 64, |_, j| j as f32 / 32.0 - 1.0);
/// let y = x.map(|v| v * v);
/// let mut opt = Rmsprop::elementwise(3e-3)?;
/// let config = TrainConfig { epochs: 200, batching: Batching::Minibatch { size: 16, shuffle: true }, ..Default::default() };
/// let before = net.loss(&x, &MeanSquaredError, &y)?;
/// train::fit(&mut net, &mut opt, &MeanSquaredError, &x, &y, &config, |_, _, _| {})?;
/// assert!(net.loss(&x, &MeanSquaredError, &y)? < before / 10.0);
/// # Ok::<(), feedforward::Error>(())
/// ```
pub fn fit<T, L, O, F>(
    network: &mut Network<T>,
    optimizer: &mut O,
    loss: &L,
    inputs: &DMatrix<T>,
    targets: &L::Target,
    config: &TrainConfig,
    mut on_step: F,
) -> Result<Option<StepReport>>
where
    T: Float,
    L: Loss<T> + ?Sized,
    O: Optimizer<T> + ?Sized,
    F: FnMut(&Progress, &Network<T>, &O),
{
    let samples = inputs.ncols();
    if samples == 0 {
        return Err(Error::EmptyBatch { what: "training set" });
    }
    if targets.samples() != samples {
        return Err(Error::shape(
            "training targets",
            format!("{samples} (one per sample)"),
            format!("{}", targets.samples()),
        ));
    }
    if inputs.nrows() != network.input_rows() {
        return Err(Error::shape(
            "training inputs",
            format!("{} (features per sample)", plural(network.input_rows(), "row")),
            plural(inputs.nrows(), "row"),
        ));
    }
    check_finite(inputs, "training set", None)?;
    loss.check_targets(network.output_rows(), targets)?;
    if let Batching::Minibatch { size: 0, .. } = config.batching {
        return Err(Error::InvalidHyperparameter {
            name: "batch size",
            value: 0.0,
            requirement: "must be at least 1",
        });
    }
    if let Schedule::Cosine { final_fraction } = config.schedule
        && !(0.0..=1.0).contains(&final_fraction)
    {
        return Err(Error::InvalidHyperparameter {
            name: "final fraction",
            value: final_fraction,
            requirement: "must be in [0, 1]",
        });
    }
    let base_rate = optimizer.learning_rate();
    let mut total_steps =
        config.epochs.checked_mul(config.steps_per_epoch(samples)).ok_or(Error::InvalidHyperparameter {
            name: "epochs",
            value: config.epochs as f64,
            requirement: "times the steps per epoch must fit in a usize",
        })?;
    if let Some(max) = config.max_steps {
        total_steps = total_steps.min(max);
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..samples).collect();
    let mut batch = DMatrix::zeros(0, 0);
    let mut batch_targets = <L::Target as Targets>::Batch::default();
    let mut last = None;
    let mut step = 0;
    let mut run = || -> Result<()> {
        'run: for epoch in 1..=config.epochs {
            let size = match config.batching {
                Batching::Full => samples,
                Batching::Minibatch { size, shuffle } => {
                    if shuffle {
                        order.shuffle(&mut rng);
                    }
                    size
                }
            };
            for chunk in order.chunks(size) {
                if step == total_steps {
                    break 'run;
                }
                let factor = config.schedule.factor(step, total_steps);
                optimizer.set_learning_rate(base_rate * T::lit(factor))?;
                let report = if config.batching == Batching::Full {
                    network.train_step_scanned(inputs, loss, targets, optimizer, InputScan::Done)?
                } else {
                    gather_columns(inputs, chunk, &mut batch);
                    targets.gather(chunk, &mut batch_targets);
                    let batch_targets = <L::Target as Targets>::view(&batch_targets);
                    network.train_step_scanned(&batch, loss, batch_targets, optimizer, InputScan::Done)?
                };
                step += 1;
                on_step(&Progress { epoch, step, total_steps, report }, network, optimizer);
                last = Some(report);
            }
        }
        Ok(())
    };
    let outcome = run();
    optimizer.set_learning_rate(base_rate)?;
    outcome.map(|()| last)
}

/// Copies the columns `indices` of `matrix` into `batch` (resized only when its shape differs),
/// in that order.
///
/// # Panics
/// If an index is `>= matrix.ncols()`.
pub fn gather_columns<T: Float>(matrix: &DMatrix<T>, indices: &[usize], batch: &mut DMatrix<T>) {
    crate::linalg::ensure_shape(batch, matrix.nrows(), indices.len());
    for (j, &i) in indices.iter().enumerate() {
        batch.column_mut(j).copy_from(&matrix.column(i));
    }
}
