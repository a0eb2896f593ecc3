//! [`Temperature`] scaling: a classifier's logits divided by one number, fitted after training.

use crate::linalg::{flush_subnormal, map1};
use crate::loss::{check_probability_targets, check_sample_weights, sigmoid, softplus};
use crate::network::check_finite;
use crate::{Error, Float, Module, Result, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use serde_json::{Map, Value};

/// The bounds of the search for `β = 1/T`: temperatures from `2⁻⁴⁰` to `2⁴⁰`.
const LOG2_BETA_BOUND: i32 = 40;

/// A temperature `T > 0` that divides a classifier's logits, `softmax(z/T)` being the
/// calibrated probabilities: temperature scaling (Guo et al., 2017, "On Calibration of Modern
/// Neural Networks"), `T` fitted after training on samples the network did not train on, so
/// that its probabilities mean what they say.
///
/// A network trained to a low cross-entropy is often overconfident: of the samples it gives
/// 95%, fewer than 95% are right ([`metrics::Calibration`](crate::metrics::Calibration) measures
/// it). Dividing every logit by a `T > 1` softens the probabilities, `T < 1` sharpens them; the
/// predicted class never changes, so neither does the accuracy. `T` is the one that minimizes
/// the held-out samples' cross-entropy, which weighs every class's probability, not the
/// expected calibration error, which looks at the top class's: on a network whose confidences
/// are calibrated already, the fitted `T` can move the ECE either way (a probe of four
/// overlapping clusters: ECE 0.017, then 0.046 under the `T` of 1.20 fitted on 1,000 samples,
/// where its test samples' cross-entropy was lowest at 1.11). Fit it on as many held-out
/// samples as can be spared, and compare the ECE before and after on others.
///
/// With `β = 1/T`, the mean cross-entropy of the samples `i` (logits `zᵢ`, true class `yᵢ`) and
/// its derivatives, side by side:
///
/// | | |
/// |---|---|
/// | loss | `f(β) = mean_i [ln Σ_k e^(β·zᵢₖ) − β·zᵢ,yᵢ]` |
/// | slope | `f′(β) = mean_i [E_pᵢ(zᵢ) − zᵢ,yᵢ]`, with `pᵢ = softmax(β·zᵢ)` |
/// | curvature | `f″(β) = mean_i Var_pᵢ(zᵢ) ≥ 0` |
///
/// `f` is convex in `β`, so the slope's one zero is the minimum: found by Newton's method
/// kept inside a bracket that halves where a step would leave it. There is no zero when the
/// slope at `β = 0` is not negative (the true logits are no higher than the average logit: the
/// logits rank the true classes no better than chance), nor when it stays negative for every `β`
/// (every sample's true logit is its highest: the logits separate the classes, and the loss
/// falls as `T` goes to 0); [`Temperature::fit`] says so. [`Temperature::fit_sigmoid`] fits one
/// for a multi-label or binary classifier's sigmoids the same way.
///
/// A `Temperature` is also the [`Module`] that divides its input, saved in model files: push
/// it after a classifier's last module, and
/// [`Network::probabilities`](crate::Network::probabilities) gives the calibrated
/// probabilities. It has no trainable parameter.
///
/// | forward | local gradient |
/// |---|---|
/// | `y = x/T` | `∂L/∂x = ∂L/∂y / T` |
///
/// ```
/// use feedforward::{Network, Temperature};
/// use nalgebra::DMatrix;
/// // Held-out logits of two classes, [2, 0] for each sample, the first class right 3 times in 4:
/// // the calibrated probability of the first class is 0.75 = σ(2/T), so T = 2/ln 3.
/// let logits = DMatrix::from_column_slice(2, 4, &[2.0f64, 0.0, 2.0, 0.0, 2.0, 0.0, 2.0, 0.0]);
/// let t = Temperature::fit(&logits, &[0, 0, 0, 1])?;
/// assert!((t.value() - 2.0 / 3f64.ln()).abs() < 1e-9);
/// // As a network's last module (here its only one), a model file keeps it; the network's
/// // probabilities are then the calibrated ones.
/// let net = Network::<f64>::new(2).push(t)?;
/// assert!((net.probabilities(&logits)?[(0, 0)] - 0.75).abs() < 1e-9);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Temperature {
    value: f64,
}

impl Temperature {
    /// The temperature `value`.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] unless `value` is finite and > 0.
    pub fn new(value: f64) -> Result<Self> {
        if value.is_finite() && value > 0.0 {
            return Ok(Temperature { value });
        }
        Err(Error::InvalidHyperparameter {
            name: "temperature",
            value,
            requirement: "must be finite and > 0",
        })
    }

    /// The temperature that minimizes the mean cross-entropy of `softmax(logits/T)` against
    /// `labels`: `logits` are `classes × samples` ([`Network::output`](crate::Network::output)
    /// of a classifier) of samples the network did not train on, `labels` their classes.
    ///
    /// # Errors
    /// [`Error::EmptyBatch`], [`Error::ShapeMismatch`] and [`Error::LabelOutOfRange`] as
    /// [`SoftmaxCrossEntropy`]'s; [`Error::NonFinite`] naming the sample of a NaN or ±inf;
    /// [`Error::Unfittable`] when no temperature in `[2⁻⁴⁰, 2⁴⁰]` is best: the logits rank the
    /// true classes no better than chance, or separate them (see [`Temperature`]).
    pub fn fit<T: Float>(logits: &DMatrix<T>, labels: &[usize]) -> Result<Self> {
        solve(&Softmax::new(logits, labels, None)?)
    }

    /// As [`fit`](Temperature::fit), each sample's cross-entropy weighted by its weight (≥ 0,
    /// as [`SampleWeighted`](crate::SampleWeighted) trains with). Weights of 1 give
    /// [`fit`](Temperature::fit)'s temperature.
    ///
    /// # Errors
    /// [`fit`](Temperature::fit)'s, and [`Error::InvalidSampleWeight`] for a weight that is
    /// negative or not finite (naming the sample) or weights that are all 0.
    pub fn fit_weighted<T: Float>(logits: &DMatrix<T>, labels: &[usize], weights: &[f64]) -> Result<Self> {
        solve(&Softmax::new(logits, labels, Some(weights))?)
    }

    /// The temperature that minimizes the mean binary cross-entropy of `σ(logits/T)` against
    /// `targets`, over every entry: `logits` are `labels × samples`
    /// ([`Network::output`](crate::Network::output) of a multi-label or binary classifier
    /// trained with [`BinaryCrossEntropy`](crate::BinaryCrossEntropy)) of samples the network
    /// did not train on, `targets` the same shape, each in [0, 1]. One temperature for all the
    /// labels ([`LabelTemperatures`](crate::LabelTemperatures) fits one per label);
    /// [`Network::sigmoid_probabilities`](crate::Network::sigmoid_probabilities) after it gives
    /// the calibrated probabilities.
    ///
    /// With `β = 1/T`, over the entries `e`, the loss and its derivatives:
    ///
    /// | | |
    /// |---|---|
    /// | loss | `f(β) = mean_e [softplus(β·z) − t·β·z]` |
    /// | slope | `f′(β) = mean_e [(σ(β·z) − t)·z]` |
    /// | curvature | `f″(β) = mean_e [σ(β·z)·(1 − σ(β·z))·z²] ≥ 0` |
    ///
    /// ```
    /// use feedforward::Temperature;
    /// use nalgebra::DMatrix;
    /// // A logit of 2 for four samples, three of them positive: σ(2/T) = 0.75, T = 2/ln 3.
    /// let logits = DMatrix::from_element(1, 4, 2.0f64);
    /// let targets = DMatrix::from_row_slice(1, 4, &[1.0, 1.0, 1.0, 0.0]);
    /// let t = Temperature::fit_sigmoid(&logits, &targets)?;
    /// assert!((t.value() - 2.0 / 3f64.ln()).abs() < 1e-9);
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::EmptyBatch`] for no samples; [`Error::ShapeMismatch`] for targets of another
    /// shape, or no rows; [`Error::InvalidTarget`] naming the sample and row of a target
    /// outside [0, 1]; [`Error::NonFinite`] naming the sample of a NaN or ±inf logit;
    /// [`Error::Unfittable`] as [`fit`](Temperature::fit)'s.
    pub fn fit_sigmoid<T: Float>(logits: &DMatrix<T>, targets: &DMatrix<T>) -> Result<Self> {
        solve(&Sigmoid::new(logits, targets)?)
    }

    /// The temperature `T`.
    #[must_use]
    pub fn value(&self) -> f64 {
        self.value
    }

    /// From a model file's settings.
    pub(crate) fn from_settings(spec: &Map<String, Value>) -> std::result::Result<Self, String> {
        let value = spec.get("temperature").and_then(Value::as_f64).ok_or("temperature is not a number")?;
        Temperature::new(value).map_err(|e| e.to_string())
    }

    /// The mean cross-entropy of `softmax(logits/T)` against `labels` (in nats), computed in
    /// `f64`: what [`fit`](Temperature::fit) minimizes, for comparing temperatures.
    ///
    /// # Errors
    /// [`fit`](Temperature::fit)'s first four.
    pub fn cross_entropy<T: Float>(&self, logits: &DMatrix<T>, labels: &[usize]) -> Result<f64> {
        Ok(Softmax::new(logits, labels, None)?.loss(1.0 / self.value))
    }

    /// The mean binary cross-entropy of `σ(logits/T)` against `targets` over every entry (in
    /// nats), computed in `f64`: what [`fit_sigmoid`](Temperature::fit_sigmoid) minimizes.
    ///
    /// # Errors
    /// [`fit_sigmoid`](Temperature::fit_sigmoid)'s first five.
    pub fn binary_cross_entropy<T: Float>(&self, logits: &DMatrix<T>, targets: &DMatrix<T>) -> Result<f64> {
        Ok(Sigmoid::new(logits, targets)?.loss(1.0 / self.value))
    }
}

impl<T: Float> Module<T> for Temperature {
    fn kind(&self) -> &'static str {
        "Temperature"
    }

    /// Any rows; errors for a temperature the network's float type rounds to 0 or a subnormal
    /// number, or to infinity.
    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        let t = T::lit(self.value);
        if !(t.is_finite() && t >= T::MIN_NORMAL) {
            return Err(Error::InvalidHyperparameter {
                name: "temperature",
                value: self.value,
                requirement: "must be a finite normal number in the network's float type",
            });
        }
        Ok(input_rows)
    }

    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        let t = T::lit(self.value);
        map1(output.as_mut_slice(), input.as_slice(), |x| x / t);
    }

    fn backward(
        &mut self,
        _input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        let Some(dx) = grad_input else { return };
        let t = T::lit(self.value);
        map1(dx.as_mut_slice(), grad_output.as_slice(), |dy| flush_subnormal(dy / t));
    }

    /// Dividing by a finite `T > 0` carries NaN and ±inf through.
    fn propagates_non_finite(&self) -> bool {
        true
    }

    fn describe(&self) -> Option<Map<String, Value>> {
        Some(Map::from_iter([("temperature".to_string(), self.value.into())]))
    }
}

/// What a temperature minimizes, as a function of `β = 1/T`.
pub(crate) trait Objective {
    /// `f(β)`.
    fn loss(&self, beta: f64) -> f64;
    /// `f′(β)` and `f″(β)`.
    fn slope_and_curvature(&self, beta: f64) -> (f64, f64);
}

/// The temperature at the zero of `objective`'s slope in `β = 1/T`: bracketed by doubling or
/// halving from `β = 1`, then found by Newton's method, a step that would leave the bracket
/// replaced by its middle.
pub(crate) fn solve(objective: &impl Objective) -> Result<Temperature> {
    let unfittable = |reason: &str| Error::Unfittable { what: "a temperature", reason: reason.into() };
    if objective.slope_and_curvature(0.0).0 >= 0.0 {
        return Err(unfittable(
            "the logits rank the true classes no better than chance (on average the true class's \
             logit is not above the mean logit; for a sigmoid, the positives' logits not above the \
             negatives'): no temperature > 0 lowers the cross-entropy",
        ));
    }
    // Bracket the slope's zero: negative at `lo`, positive at `hi`.
    let (min, max) = (2f64.powi(-LOG2_BETA_BOUND), 2f64.powi(LOG2_BETA_BOUND));
    let (mut lo, mut hi) = (1.0, 1.0);
    if objective.slope_and_curvature(1.0).0 < 0.0 {
        loop {
            // A slope and curvature of exactly 0: every probability 0 or 1 in f64, each on its
            // target, the slope's zero never reached.
            let (slope, curvature) = objective.slope_and_curvature(hi);
            let separated = slope == 0.0 && curvature == 0.0;
            if separated || hi > max {
                return Err(unfittable(
                    "the logits separate the classes: every sample's true class has its highest \
                     logit (for a sigmoid, every logit the sign of its target), and the cross-entropy \
                     keeps falling as the temperature goes to 0; calibrate on more samples, or on \
                     samples the network finds harder",
                ));
            }
            if slope > 0.0 {
                break;
            }
            lo = hi;
            hi *= 2.0;
        }
    } else {
        // The slope at 0 is negative, so halving reaches a negative slope, barring a zero
        // so near 0 that the temperature would pass the bound.
        while objective.slope_and_curvature(lo).0 >= 0.0 {
            hi = lo;
            lo /= 2.0;
            if lo < min {
                return Err(unfittable(
                    "the best temperature is above 2^40: the logits carry almost nothing of the classes",
                ));
            }
        }
    }
    // Newton's method on the slope, a step that would leave the bracket replaced by its middle.
    let mut beta = (lo + hi) / 2.0;
    for _ in 0..200 {
        let (slope, curvature) = objective.slope_and_curvature(beta);
        if slope == 0.0 {
            break;
        }
        if slope < 0.0 {
            lo = beta;
        } else {
            hi = beta;
        }
        let newton = beta - slope / curvature;
        let next = if newton > lo && newton < hi { newton } else { (lo + hi) / 2.0 };
        let converged = (next - beta).abs() <= 1e-15 * beta;
        beta = next;
        if converged || hi - lo <= 1e-15 * hi {
            break;
        }
    }
    Temperature::new(1.0 / beta)
}

/// A softmax classifier's logits, labels and weights, checked: the cross-entropy of
/// `softmax(β·z)`.
struct Softmax<'a, T> {
    logits: &'a DMatrix<T>,
    labels: &'a [usize],
    weights: Option<&'a [f64]>,
    total: f64,
}

impl<'a, T: Float> Softmax<'a, T> {
    fn new(logits: &'a DMatrix<T>, labels: &'a [usize], weights: Option<&'a [f64]>) -> Result<Self> {
        SoftmaxCrossEntropy::check_labels(logits.nrows(), logits.ncols(), labels)?;
        check_finite(logits, "logits", None)?;
        if let Some(weights) = weights {
            check_sample_weights(weights, labels.len(), "temperature fit")?;
        }
        let total = weights.map_or(labels.len() as f64, |w| w.iter().sum());
        Ok(Softmax { logits, labels, weights, total })
    }

    /// Visits each sample's weight, logits (as `f64`), true class and `softmax(β·z)`'s
    /// log-normalizer `m + ln Σ e^(β·z − m)` (`m` the largest `β·z`), and the probabilities.
    fn each(&self, beta: f64, mut visit: impl FnMut(f64, &[f64], usize, f64, &[f64])) {
        let classes = self.logits.nrows();
        let (mut z, mut p) = (vec![0.0; classes], vec![0.0; classes]);
        for (j, column) in self.logits.column_iter().enumerate() {
            z.iter_mut().zip(column.iter()).for_each(|(z, v)| *z = v.as_f64());
            let m = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(beta * v));
            p.iter_mut().zip(&z).for_each(|(p, &v)| *p = (beta * v - m).exp());
            let sum: f64 = p.iter().sum();
            p.iter_mut().for_each(|p| *p /= sum);
            let w = self.weights.map_or(1.0, |w| w[j]);
            visit(w, &z, self.labels[j], m + sum.ln(), &p);
        }
    }
}

impl<T: Float> Objective for Softmax<'_, T> {
    /// `f(β)`: the weighted mean cross-entropy of `softmax(β·z)`.
    fn loss(&self, beta: f64) -> f64 {
        let mut sum = 0.0;
        self.each(beta, |w, z, y, log_normalizer, _| sum += w * (log_normalizer - beta * z[y]));
        sum / self.total
    }

    /// `f′(β)` and `f″(β)`: the weighted means of `E_p(z) − z_y` and of `Var_p(z)`.
    fn slope_and_curvature(&self, beta: f64) -> (f64, f64) {
        let (mut slope, mut curvature) = (0.0, 0.0);
        self.each(beta, |w, z, y, _, p| {
            let mean: f64 = p.iter().zip(z).map(|(p, z)| p * z).sum();
            let variance: f64 = p.iter().zip(z).map(|(p, z)| p * (z - mean) * (z - mean)).sum();
            slope += w * (mean - z[y]);
            curvature += w * variance;
        });
        (slope / self.total, curvature / self.total)
    }
}

/// A sigmoid classifier's logits and targets, checked: the binary cross-entropy of `σ(β·z)`
/// over every entry of its rows (every row, or one label's).
#[derive(Clone)]
pub(crate) struct Sigmoid<'a, T> {
    logits: &'a DMatrix<T>,
    targets: &'a DMatrix<T>,
    rows: std::ops::Range<usize>,
}

impl<'a, T: Float> Sigmoid<'a, T> {
    /// Every row of `logits` against `targets`, checked.
    pub(crate) fn new(logits: &'a DMatrix<T>, targets: &'a DMatrix<T>) -> Result<Self> {
        if logits.ncols() == 0 {
            return Err(Error::EmptyBatch { what: "logits" });
        }
        check_probability_targets(logits, targets)?;
        check_finite(logits, "logits", None)?;
        Ok(Sigmoid { logits, targets, rows: 0..logits.nrows() })
    }

    /// Row `row` alone (one label's logits and targets).
    pub(crate) fn row(&self, row: usize) -> Self {
        Sigmoid { rows: row..row + 1, ..self.clone() }
    }

    /// The entries' logits and targets, as `f64`, column by column.
    fn entries(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        (0..self.logits.ncols()).flat_map(move |j| {
            self.rows.clone().map(move |i| (self.logits[(i, j)].as_f64(), self.targets[(i, j)].as_f64()))
        })
    }

    /// How many entries.
    fn len(&self) -> f64 {
        (self.rows.len() * self.logits.ncols()) as f64
    }
}

impl<T: Float> Objective for Sigmoid<'_, T> {
    /// The mean of `softplus(β·z) − t·β·z`.
    fn loss(&self, beta: f64) -> f64 {
        let sum: f64 = self.entries().map(|(z, t)| softplus(beta * z) - t * beta * z).sum();
        sum / self.len()
    }

    /// The means of `(σ(β·z) − t)·z` and of `σ(β·z)·(1 − σ(β·z))·z²`.
    fn slope_and_curvature(&self, beta: f64) -> (f64, f64) {
        let (mut slope, mut curvature) = (0.0, 0.0);
        for (z, t) in self.entries() {
            let p = sigmoid(beta * z);
            slope += (p - t) * z;
            curvature += p * (1.0 - p) * z * z;
        }
        (slope / self.len(), curvature / self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slope and curvature are the loss's derivatives, for the softmax (weighted or not) and
    /// the sigmoid (every row, or one): central differences in f64, each within a relative error of 1e-6 (the
    /// differences' own error at step 1e-5 is ~1e-9).
    #[test]
    fn slope_and_curvature_are_the_derivatives_of_the_loss() {
        let logits = DMatrix::from_fn(4, 7, |i, j| ((i * 7 + j * 3) % 11) as f64 * 0.7 - 3.0);
        let labels = [0, 1, 2, 3, 0, 2, 1];
        let weights = [1.0, 0.5, 2.0, 0.0, 1.5, 1.0, 3.0];
        for weights in [None, Some(&weights[..])] {
            check_derivatives(&Softmax::new(&logits, &labels, weights).unwrap());
        }
        let targets = DMatrix::from_fn(4, 7, |i, j| [0.0, 1.0, 0.3][(i + 2 * j) % 3]);
        let sigmoid = Sigmoid::new(&logits, &targets).unwrap();
        check_derivatives(&sigmoid);
        check_derivatives(&sigmoid.row(2));
    }

    fn check_derivatives(objective: &impl Objective) {
        for beta in [0.1, 0.7, 1.0, 2.5] {
            let h = 1e-5;
            let (slope, curvature) = objective.slope_and_curvature(beta);
            let numeric_slope = (objective.loss(beta + h) - objective.loss(beta - h)) / (2.0 * h);
            let up = objective.slope_and_curvature(beta + h).0;
            let numeric_curvature = (up - objective.slope_and_curvature(beta - h).0) / (2.0 * h);
            let relative = |a: f64, b: f64| (a - b).abs() / a.abs().max(b.abs()).max(1e-12);
            assert!(relative(slope, numeric_slope) < 1e-6, "β {beta}: {slope} vs {numeric_slope}");
            assert!(
                relative(curvature, numeric_curvature) < 1e-6,
                "β {beta}: {curvature} vs {numeric_curvature}"
            );
        }
    }
}
