//! The learning-rate range test (Leslie Smith's; fastai's `lr_find`): a few training steps whose
//! rate grows geometrically from tiny to huge, recording the loss of each. The loss stays flat
//! while the rate is too small to matter, falls once it bites, and blows up once it is too
//! large; a good rate lies on the fall, before the lowest point. Reached as
//! `feedforward::train::find_learning_rate`.

use crate::loss::Loss;
use crate::train::{self, Batching, Data, Event, Flow, LastBatch, Schedule, TrainConfig};
use crate::{Error, Float, Network, Optimizer, Result};

/// The settings of [`find_learning_rate`], with fastai's defaults but for the smoothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeTest {
    /// The first step's rate (default 1e-7).
    pub start: f64,
    /// The last step's rate (default 10).
    pub end: f64,
    /// Steps from `start` to `end`, their rates geometrically spaced (default 100).
    pub steps: usize,
    /// Samples per step, reshuffled on each pass over the data (default 64).
    pub batch_size: usize,
    /// What a pass's short last batch does, as in [`TrainConfig::last_batch`] (default:
    /// [`LastBatch::Keep`]; [`LastBatch::Drop`] for a network with BatchNorm).
    pub last_batch: LastBatch,
    /// Seed of the shuffling (default 0).
    pub seed: u64,
    /// Weight of the past in the running mean of the loss, `β` in `m = β·m + (1 − β)·loss`,
    /// debiased as Adam's: `m / (1 − βᵏ)` after `k` steps (default 0.9). fastai's 0.98 averages
    /// over about 50 steps, half of a 100-step test: on `y = sin 3x` (the example of
    /// [`find_learning_rate`]) its mean lagged the loss's fall by more than a decade of rates,
    /// and its steepest slope was early noise.
    pub smoothing: f64,
    /// The test stops once the smoothed loss passes this multiple of its lowest (default 4;
    /// for a loss that can be negative, once it passes the lowest by `divergence − 1` times the
    /// lowest's magnitude).
    pub divergence: f64,
}

impl Default for RangeTest {
    fn default() -> Self {
        RangeTest {
            start: 1e-7,
            end: 10.0,
            steps: 100,
            batch_size: 64,
            last_batch: LastBatch::Keep,
            seed: 0,
            smoothing: 0.9,
            divergence: 4.0,
        }
    }
}

impl RangeTest {
    /// Rejects settings out of range.
    fn check(&self) -> Result<()> {
        let bad =
            |name, value: f64, requirement| Err(Error::InvalidHyperparameter { name, value, requirement });
        if !(self.start > 0.0 && self.start.is_finite()) {
            return bad("range test start", self.start, "must be finite and > 0");
        }
        if !(self.end > self.start && self.end.is_finite()) {
            return bad("range test end", self.end, "must be finite and above the start");
        }
        if self.steps < 2 {
            return bad("range test steps", self.steps as f64, "must be at least 2");
        }
        if self.batch_size == 0 {
            return bad("batch size", 0.0, "must be at least 1");
        }
        if !(0.0..1.0).contains(&self.smoothing) {
            return bad("range test smoothing", self.smoothing, "must be in [0, 1)");
        }
        if self.divergence.is_nan() || self.divergence <= 1.0 {
            return bad("range test divergence", self.divergence, "must be above 1");
        }
        Ok(())
    }
}

/// What [`find_learning_rate`] recorded, one entry per step taken.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RangeTestReport {
    /// Each step's learning rate.
    pub rates: Vec<f64>,
    /// Each step's loss on its batch (the objective, L2 included), before its update.
    pub losses: Vec<f64>,
    /// The running mean of the losses, debiased (see [`RangeTest::smoothing`]).
    pub smoothed: Vec<f64>,
    /// Whether the test ended early: the smoothed loss passed [`RangeTest::divergence`] times
    /// its lowest, or a step was rejected for a non-finite value (not recorded).
    pub diverged: bool,
}

impl RangeTestReport {
    /// The rate at which the smoothed loss was lowest. Too large to train at: the loss is about
    /// to climb there; a tenth of it is fastai's `lr_min`.
    #[must_use]
    pub fn minimum(&self) -> Option<f64> {
        let best = self.smoothed.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1))?;
        Some(self.rates[best.0])
    }

    /// The rate at which the smoothed loss fell fastest against the rate's logarithm (central
    /// differences; fastai's `lr_steep`), a common choice to train at. Only the fall is
    /// searched, up to the lowest smoothed loss: past it, a noisy loss can plunge for a step
    /// on its way to diverging. The first 10 steps are skipped (a quarter of a shorter test),
    /// as fastai's plot skips them: their smoothed loss is a mean of too few losses to have a
    /// meaningful slope. `None` with fewer than 3 steps, or when the lowest smoothed loss
    /// comes before the steps searched (no fall).
    #[must_use]
    pub fn steepest(&self) -> Option<f64> {
        let (s, r) = (&self.smoothed, &self.rates);
        let slope = |i: usize| (s[i + 1] - s[i - 1]) / (r[i + 1].ln() - r[i - 1].ln());
        let skip = 10.min(s.len() / 4).max(1);
        let lowest = s.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1))?.0;
        let last = lowest.min(s.len().saturating_sub(2));
        let i = (skip..=last).min_by(|&a, &b| slope(a).total_cmp(&slope(b)))?;
        Some(r[i])
    }
}

impl std::fmt::Display for RangeTestReport {
    /// The curve as a table of rate, loss and smoothed loss, about 20 rows of it (every
    /// `⌈steps/20⌉`-th step, and the last), then the suggestions:
    ///
    /// ```text
    /// learning-rate range test: 100 steps, stopped as the loss diverged
    ///       rate       loss   smoothed
    ///    1.00e-7     0.5123     0.5123
    ///   …
    /// steepest fall at 2.31e-3; lowest loss at 7.92e-2 (a tenth of it: 7.92e-3)
    /// ```
    ///
    /// The full curve is in the fields, for a chart.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps = self.rates.len();
        let ended = if self.diverged { ", stopped as the loss diverged" } else { "" };
        writeln!(f, "learning-rate range test: {}{ended}", crate::error::plural(steps, "step"))?;
        writeln!(f, "{:>10} {:>10} {:>10}", "rate", "loss", "smoothed")?;
        let every = steps.div_ceil(20).max(1);
        for k in (0..steps).filter(|k| k % every == 0 || k + 1 == steps) {
            let (loss, smoothed) = (loss_text(self.losses[k]), loss_text(self.smoothed[k]));
            writeln!(f, "{:>10.2e} {loss:>10} {smoothed:>10}", self.rates[k])?;
        }
        let rate = |r: Option<f64>| r.map_or("n/a".to_string(), |r| format!("{r:.2e}"));
        writeln!(
            f,
            "steepest fall at {}; lowest loss at {} (a tenth of it: {})",
            rate(self.steepest()),
            rate(self.minimum()),
            rate(self.minimum().map(|r| r / 10.0))
        )
    }
}

/// A loss to four decimals, or in scientific notation where those would show it badly (in
/// original units a regression's squared errors can be 1e10).
fn loss_text(loss: f64) -> String {
    if loss != 0.0 && !(1e-3..1e5).contains(&loss.abs()) {
        format!("{loss:.3e}")
    } else {
        format!("{loss:.4}")
    }
}

/// Runs the learning-rate range test on the training set of `data` (its validation set, if
/// any, is not used) and a copy of `network` (left as it is): [`RangeTest::steps`] minibatch
/// steps through [`train::fit`] whose rate grows from `start` to `end` geometrically
/// ([`Schedule::Ramp`]), each step's loss recorded, until the last step or until the loss
/// diverges. `optimizer` is a fresh one of the kind you will train with: its rate is set back
/// at the end, but the test's steps leave their state in it, so build another to train.
///
/// ```
/// use feedforward::train::{self, Data, RangeTest};
/// use feedforward::{Adam, AdamConfig, MeanSquaredError, MlpConfig, Network};
/// use nalgebra::DMatrix;
/// use rand::SeedableRng;
///
/// // y = sin 3x on [−1, 1].
/// let x = DMatrix::<f32>::from_fn(1, 1000, |_, j| j as f32 / 500.0 - 1.0);
/// let y = x.map(|v| (3.0 * v).sin());
/// let net = Network::<f32>::mlp(&[1, 64, 64, 1], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(0))?;
/// let mut adam = Adam::new(AdamConfig::default())?; // its rate is the test's to set
/// let report = train::find_learning_rate(&net, &mut adam, &MeanSquaredError, Data::new(&x, &y), &RangeTest::default())?;
/// // The loss fell, then blew up before a rate of 10.
/// let (steep, lowest) = (report.steepest().unwrap(), report.minimum().unwrap());
/// assert!(report.diverged && 1e-4 < steep && steep < lowest && lowest < 10.0, "{steep} {lowest}");
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidHyperparameter`] for settings out of range; what [`train::fit`] returns
/// for data that does not suit the network or the loss. A step rejected for a non-finite value
/// is no error: it ends the test ([`RangeTestReport::diverged`]).
pub fn find_learning_rate<T, L, O>(
    network: &Network<T>,
    optimizer: &mut O,
    loss: &L,
    data: Data<'_, T, L::Target>,
    config: &RangeTest,
) -> Result<RangeTestReport>
where
    T: Float,
    L: Loss<T> + ?Sized,
    O: Optimizer<T> + ?Sized,
{
    config.check()?;
    let mut net = network.clone();
    let rate = optimizer.learning_rate();
    optimizer.set_learning_rate(T::lit(config.start))?;
    let mut run = TrainConfig {
        batching: Batching::Minibatch { size: config.batch_size, shuffle: true },
        last_batch: config.last_batch,
        seed: config.seed,
        max_steps: Some(config.steps),
        schedule: Schedule::Ramp { final_factor: config.end / config.start },
        ..TrainConfig::default()
    };
    // Passes enough for the steps (fit refuses a set too small for one batch it would train).
    run.epochs = config.steps.div_ceil(run.steps_per_epoch(data.inputs.ncols()).max(1));
    let mut report = RangeTestReport::default();
    let (beta, mut mean, mut lowest) = (config.smoothing, 0.0, f64::INFINITY);
    let on_event = |event: Event<'_>, _: &Network<T>, optimizer: &O| {
        let Event::Step(progress) = event else { return Flow::Continue };
        let loss = progress.report.loss;
        mean = beta * mean + (1.0 - beta) * loss;
        let smoothed = mean / (1.0 - beta.powi(progress.step as i32));
        report.rates.push(optimizer.learning_rate().as_f64());
        report.losses.push(loss);
        report.smoothed.push(smoothed);
        lowest = lowest.min(smoothed);
        // `divergence` times the lowest, for a loss that can be negative too (Poisson's).
        if smoothed - lowest > (config.divergence - 1.0) * lowest.abs() {
            report.diverged = true;
            return Flow::Stop;
        }
        Flow::Continue
    };
    // Without the validation set: fit would evaluate it after every epoch, for nothing.
    let training = Data::new(data.inputs, data.targets);
    let outcome = train::fit(&mut net, optimizer, loss, training, &run, on_event);
    optimizer.set_learning_rate(rate)?;
    match outcome {
        Ok(_) => {}
        Err(Error::NonFinite { step: Some(_), sample: None, .. }) => report.diverged = true,
        Err(e) => return Err(e),
    }
    Ok(report)
}
