//! Finite-difference gradient checks, for this crate's tests and for your own modules.
//!
//! Each analytic gradient entry `a` is compared with the central difference
//! `n = (L(θ+h) − L(θ−h)) / 2h` in `f64`. The error of an entry is
//! `|a − n| / max(|a|, |n|, floor)`: relative where the gradient is large, and measured against
//! `floor` where both are tiny (where rounding in `L` dominates and a pure ratio means nothing).
//!
//! ```
//! use feedforward::{gradcheck, Relu};
//! use nalgebra::DMatrix;
//! // Keep inputs away from ReLU's kink at 0, where the derivative jumps.
//! let x = DMatrix::from_fn(5, 3, |i, j| if (i + j) % 2 == 0 { 0.5 + i as f64 } else { -0.5 - j as f64 });
//! let report = gradcheck::check_module(&mut Relu, &x, &gradcheck::Config::default()).unwrap();
//! assert!(report.max_error <= 1e-6, "{report}");
//! ```

use crate::module::{TrainContext, parameters_of, parameters_of_mut};
use crate::{Loss, Module, Network, Result};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// How a check is run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Finite-difference step `h`.
    pub step: f64,
    /// Denominator floor of the error (see the [module docs](self)).
    pub floor: f64,
    /// Check at most this many entries of each tensor, drawn at random (`None`: all of them).
    pub max_entries_per_tensor: Option<usize>,
    /// Seed for the sampled entries and for the random output weights of [`check_module`].
    pub seed: u64,
}

impl Default for Config {
    /// `h = 1e-5`, `floor = 1e-4`, every entry, seed 0.
    fn default() -> Self {
        Config { step: 1e-5, floor: 1e-4, max_entries_per_tensor: None, seed: 0 }
    }
}

/// Outcome of a check.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Largest error over all entries checked.
    pub max_error: f64,
    /// Where it occurred, e.g. `"module 0 (Layer) weight[12]"`.
    pub worst: String,
    /// Analytic and numeric value at the worst entry.
    pub worst_values: (f64, f64),
    /// Number of entries compared.
    pub checked: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, n) = self.worst_values;
        write!(
            f,
            "max error {:.3e} at {} (analytic {a:.6e}, numeric {n:.6e}) over {} entries",
            self.max_error, self.worst, self.checked
        )
    }
}

/// The error measure of the [module docs](self).
#[must_use]
pub fn error(analytic: f64, numeric: f64, floor: f64) -> f64 {
    (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(floor)
}

impl Report {
    fn new() -> Self {
        Report {
            max_error: 0.0,
            worst: String::from("(nothing checked)"),
            worst_values: (0.0, 0.0),
            checked: 0,
        }
    }

    fn record(&mut self, at: impl FnOnce() -> String, analytic: f64, numeric: f64, floor: f64) {
        let e = error(analytic, numeric, floor);
        self.checked += 1;
        // A NaN error (e.g. a NaN gradient) must count as the worst possible.
        if e.is_nan() || e > self.max_error {
            self.max_error = if e.is_nan() { f64::INFINITY } else { e };
            self.worst = at();
            self.worst_values = (analytic, numeric);
        }
    }
}

fn sample(len: usize, config: &Config, rng: &mut StdRng) -> Vec<usize> {
    let mut all: Vec<usize> = (0..len).collect();
    if let Some(max) = config.max_entries_per_tensor
        && max < len
    {
        all.shuffle(rng);
        all.truncate(max);
    }
    all
}

/// `(L(v₀+h) − L(v₀−h)) / 2h`, where `eval(v)` sets the entry to `v` and returns `L`. The
/// caller restores the entry afterwards.
fn central_difference(original: f64, h: f64, mut eval: impl FnMut(f64) -> Result<f64>) -> Result<f64> {
    let plus = eval(original + h)?;
    let minus = eval(original - h)?;
    Ok((plus - minus) / (2.0 * h))
}

/// Checks a module's parameter and input gradients on `input`.
///
/// The scalar objective is `L = Σ r ⊙ f(input)` with `r` a fixed random matrix (so
/// `dL/d output = r`), which exercises every output entry.
pub fn check_module(module: &mut dyn Module<f64>, input: &DMatrix<f64>, config: &Config) -> Result<Report> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let rows = module.output_rows(input.nrows())?;
    let r = DMatrix::from_fn(rows, input.ncols(), |_, _| crate::Float::standard_normal(&mut rng));
    let mut output = DMatrix::zeros(rows, input.ncols());
    let mut grad_input = DMatrix::zeros(input.nrows(), input.ncols());
    let context = TrainContext::new(config.seed, 1, 0);
    module.forward_train(input, &mut output, &mut context.clone());
    module.backward(input, &output, &r, Some(&mut grad_input));

    // The training forward pass, with the draw of the analytic pass (dropout masks) replayed.
    let objective = |m: &mut dyn Module<f64>, x: &DMatrix<f64>| {
        let mut out = DMatrix::zeros(rows, x.ncols());
        m.forward_train(x, &mut out, &mut context.clone().replaying());
        out.dot(&r)
    };
    let mut report = Report::new();
    let h = config.step;
    let kind = module.kind();

    for p in 0..parameters_of(module).len() {
        let (analytic, name) = {
            let param = parameters_of(module)[p];
            (param.grad().clone(), param.name().to_string())
        };
        for k in sample(analytic.len(), config, &mut rng) {
            let original = parameters_of(module)[p].value()[k];
            let numeric = central_difference(original, h, |v| {
                parameters_of_mut(module)[p].value_mut()[k] = v;
                Ok(objective(module, input))
            })?;
            parameters_of_mut(module)[p].value_mut()[k] = original;
            report.record(|| format!("{kind} {name}[{k}]"), analytic[k], numeric, config.floor);
        }
    }
    let mut x = input.clone();
    for k in sample(x.len(), config, &mut rng) {
        let original = x[k];
        let numeric = central_difference(original, h, |v| {
            x[k] = v;
            Ok(objective(module, &x))
        })?;
        x[k] = original;
        report.record(|| format!("{kind} input[{k}]"), grad_input[k], numeric, config.floor);
    }
    Ok(report)
}

/// Checks every parameter gradient of a whole network (its objective: `loss` against
/// `targets`, plus the L2 penalty) on one batch, as a training step sees it: modules that act
/// differently in training ([`Dropout`](crate::Dropout)) keep the random draw of the analytic
/// pass through every numeric one. Frozen parameters are skipped: their gradients are not
/// computed ([`Parameter::freeze`](crate::Parameter::freeze)).
pub fn check_network<L: Loss<f64> + ?Sized>(
    network: &mut Network<f64>,
    x: &DMatrix<f64>,
    loss: &L,
    targets: &L::Target,
    config: &Config,
) -> Result<Report> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    network.backward(x, loss, targets)?;
    let mut report = Report::new();
    let h = config.step;
    let count = network.parameters().count();
    for p in 0..count {
        let (analytic, at) = {
            let param = network.parameters().nth(p).expect("p < count");
            if param.is_frozen() {
                continue;
            }
            (param.grad().clone(), param.name().to_string())
        };
        let module = module_of(network, p);
        let at = format!("module {module} ({}) {at}", network.modules()[module].kind());
        for k in sample(analytic.len(), config, &mut rng) {
            let entry = |net: &mut Network<f64>, v: f64| {
                net.parameters_mut().nth(p).expect("p < count").value_mut()[k] = v;
            };
            let original = network.parameters().nth(p).expect("p < count").value()[k];
            let numeric = central_difference(original, h, |v| {
                entry(network, v);
                network.replayed_loss(x, loss, targets)
            })?;
            entry(network, original);
            report.record(|| format!("{at}[{k}]"), analytic[k], numeric, config.floor);
        }
    }
    Ok(report)
}

/// Index of the module holding parameter number `p` of `network`.
fn module_of(network: &Network<f64>, p: usize) -> usize {
    let mut seen = 0;
    for (m, module) in network.modules().iter().enumerate() {
        seen += parameters_of(module.as_ref()).len();
        if p < seen {
            return m;
        }
    }
    unreachable!("p is below the parameter count")
}

/// Checks the gradient of `loss` with respect to the outputs it is given, against `targets`.
///
/// ```
/// use feedforward::{gradcheck, BinaryCrossEntropy};
/// use nalgebra::DMatrix;
/// let z = DMatrix::from_fn(3, 4, |i, j| i as f64 - j as f64);
/// let t = DMatrix::from_fn(3, 4, |i, j| ((i + j) % 2) as f64);
/// let report = gradcheck::check_loss(&BinaryCrossEntropy::new(), &z, &t, &gradcheck::Config::default())?;
/// assert!(report.max_error <= 1e-6, "{report}");
/// # Ok::<(), feedforward::Error>(())
/// ```
pub fn check_loss<L: Loss<f64> + ?Sized>(
    loss: &L,
    outputs: &DMatrix<f64>,
    targets: &L::Target,
    config: &Config,
) -> Result<Report> {
    let mut grad = DMatrix::zeros(0, 0);
    loss.loss_and_grad(outputs, targets, &mut grad)?;
    let mut z = outputs.clone();
    let mut report = Report::new();
    let mut rng = StdRng::seed_from_u64(config.seed);
    for k in sample(z.len(), config, &mut rng) {
        let original = z[k];
        let numeric = central_difference(original, config.step, |v| {
            z[k] = v;
            loss.loss(&z, targets)
        })?;
        z[k] = original;
        report.record(|| format!("outputs[{k}]"), grad[k], numeric, config.floor);
    }
    Ok(report)
}
