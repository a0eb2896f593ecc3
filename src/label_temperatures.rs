//! [`LabelTemperatures`]: a multi-label classifier's logits divided by a temperature per label.

use crate::linalg::flush_subnormal;
use crate::module::same_rows;
use crate::temperature::{Objective, Sigmoid as SigmoidFit, solve};
use crate::{Error, Float, Module, Result, Temperature};
use nalgebra::DMatrix;
use serde_json::{Map, Value};

/// A temperature `Tₗ > 0` per label of a multi-label (or one-label binary) classifier's
/// sigmoids, each fitted on its own label's held-out logits: `σ(zₗ/Tₗ)` are the calibrated
/// probabilities. Where one [`Temperature`] (from [`Temperature::fit_sigmoid`]) suits labels
/// whose networks' confidences are off by the same factor, labels of different noise need
/// their own: one label's probabilities too sure, another's not sure enough.
///
/// [`fit_sigmoid`](LabelTemperatures::fit_sigmoid) fits each row of the logits as
/// [`Temperature::fit_sigmoid`] fits one row alone (the same binary cross-entropy of
/// `σ(β·z)` in `β = 1/Tₗ`, the same Newton solver): `Tₗ` minimizes label `l`'s held-out binary
/// cross-entropy. Each label's fit needs both of its classes among the samples, and logits
/// that do not separate them.
///
/// It is also the [`Module`] that divides row `l` of its input by `Tₗ`, saved in model files:
/// push it after the classifier's last module, and
/// [`Network::sigmoid_probabilities`](crate::Network::sigmoid_probabilities) gives the
/// calibrated probabilities. It has no trainable parameter, and takes exactly as many rows as
/// it has temperatures.
///
/// | forward | local gradient |
/// |---|---|
/// | `yₗ = xₗ/Tₗ` | `∂L/∂xₗ = ∂L/∂yₗ / Tₗ` |
///
/// ```
/// use feedforward::{LabelTemperatures, Network};
/// use nalgebra::DMatrix;
/// // Two labels, each positive on 3 of 4 samples, where label 0's logits say 2 and label 1's
/// // say 1: the calibrated probability 0.75 = σ(2/T₀) = σ(1/T₁), so T₀ = 2/ln 3, T₁ = 1/ln 3.
/// let logits = DMatrix::from_row_slice(2, 4, &[2.0f64, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0]);
/// let targets = DMatrix::from_row_slice(2, 4, &[1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
/// let t = LabelTemperatures::fit_sigmoid(&logits, &targets)?;
/// assert!((t.values()[0] - 2.0 / 3f64.ln()).abs() < 1e-9);
/// assert!((t.values()[1] - 1.0 / 3f64.ln()).abs() < 1e-9);
/// // As the network's last module, the probabilities are the calibrated ones.
/// let net = Network::<f64>::new(2).push(t)?;
/// let p = net.sigmoid_probabilities(&logits)?;
/// assert!((p[(0, 0)] - 0.75).abs() < 1e-9 && (p[(1, 0)] - 0.75).abs() < 1e-9);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LabelTemperatures {
    values: Vec<f64>,
}

impl LabelTemperatures {
    /// The temperatures `values`, one per label (row of the logits), in order.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for no values; [`Error::InvalidHyperparameter`] for a value
    /// that is not finite and > 0.
    pub fn new(values: Vec<f64>) -> Result<Self> {
        if values.is_empty() {
            return Err(Error::shape("label temperatures", "at least one label", "0"));
        }
        for &value in &values {
            Temperature::new(value)?;
        }
        Ok(LabelTemperatures { values })
    }

    /// The temperature of each label that minimizes the mean binary cross-entropy of
    /// `σ(logitsₗ/Tₗ)` against `targetsₗ` over its row: `logits` are `labels × samples`
    /// ([`Network::output`](crate::Network::output) of a classifier trained with
    /// [`BinaryCrossEntropy`](crate::BinaryCrossEntropy)) of samples the network did not train
    /// on, `targets` the same shape, each in [0, 1]. Row `l`'s temperature is
    /// [`Temperature::fit_sigmoid`]'s of row `l` alone.
    ///
    /// # Errors
    /// [`Temperature::fit_sigmoid`]'s, checked over all the rows first; [`Error::Unfittable`]
    /// naming the first label that no temperature fits (its logits rank its positives no
    /// better than chance, or separate them; a label with one class among the samples is
    /// either).
    pub fn fit_sigmoid<T: Float>(logits: &DMatrix<T>, targets: &DMatrix<T>) -> Result<Self> {
        let all = SigmoidFit::new(logits, targets)?;
        let fit = |label: usize| {
            solve(&all.row(label)).map(|t| t.value()).map_err(|e| match e {
                Error::Unfittable { reason, .. } => Error::Unfittable {
                    what: "a label's temperature",
                    reason: format!("label {label} (row {label} of the logits): {reason}"),
                },
                other => other,
            })
        };
        Ok(LabelTemperatures { values: (0..logits.nrows()).map(fit).collect::<Result<_>>()? })
    }

    /// The temperatures, one per label.
    #[must_use]
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The mean binary cross-entropy of `σ(logitsₗ/Tₗ)` against `targets` over every entry (in
    /// nats), computed in `f64`: what [`fit_sigmoid`](LabelTemperatures::fit_sigmoid) lowers,
    /// comparable with [`Temperature::binary_cross_entropy`].
    ///
    /// # Errors
    /// [`Temperature::fit_sigmoid`]'s first five, and [`Error::ShapeMismatch`] for logits of
    /// another number of rows than of temperatures.
    pub fn binary_cross_entropy<T: Float>(&self, logits: &DMatrix<T>, targets: &DMatrix<T>) -> Result<f64> {
        same_rows("logits (one row per label temperature)", self.values.len(), logits.nrows())?;
        let all = SigmoidFit::new(logits, targets)?;
        let sum: f64 = self.values.iter().enumerate().map(|(l, t)| all.row(l).loss(1.0 / t)).sum();
        Ok(sum / self.values.len() as f64)
    }

    /// From a model file's settings.
    pub(crate) fn from_settings(spec: &Map<String, Value>) -> std::result::Result<Self, String> {
        let values =
            spec.get("temperatures").and_then(Value::as_array).ok_or("temperatures is not a list")?;
        let values: Option<Vec<f64>> = values.iter().map(Value::as_f64).collect();
        let values = values.ok_or("a temperature is not a number")?;
        LabelTemperatures::new(values).map_err(|e| e.to_string())
    }
}

impl<T: Float> Module<T> for LabelTemperatures {
    fn kind(&self) -> &'static str {
        "LabelTemperatures"
    }

    /// As many rows as temperatures; errors for a temperature the network's float type rounds
    /// to 0 or a subnormal number, or to infinity.
    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        same_rows("LabelTemperatures input (one row per label)", self.values.len(), input_rows)?;
        for &value in &self.values {
            let t = T::lit(value);
            if !(t.is_finite() && t >= T::MIN_NORMAL) {
                return Err(Error::InvalidHyperparameter {
                    name: "temperature",
                    value,
                    requirement: "must be a finite normal number in the network's float type",
                });
            }
        }
        Ok(input_rows)
    }

    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        divide_rows(output, input, &self.values, |y| y);
    }

    fn backward(
        &mut self,
        _input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        let Some(dx) = grad_input else { return };
        divide_rows(dx, grad_output, &self.values, flush_subnormal);
    }

    /// Dividing by finite `Tₗ > 0` carries NaN and ±inf through.
    fn propagates_non_finite(&self) -> bool {
        true
    }

    fn describe(&self) -> Option<Map<String, Value>> {
        Some(Map::from_iter([("temperatures".to_string(), self.values.clone().into())]))
    }
}

/// `out[l, j] = then(a[l, j] / Tₗ)`, `Tₗ = temperatures[l]` in `T`. A handful of rows (the
/// labels): a plain loop, not the vectorized column driver.
fn divide_rows<T: Float>(out: &mut DMatrix<T>, a: &DMatrix<T>, temperatures: &[f64], then: impl Fn(T) -> T) {
    for (mut out, a) in out.column_iter_mut().zip(a.column_iter()) {
        for ((y, &x), &t) in out.iter_mut().zip(a.iter()).zip(temperatures) {
            *y = then(x / T::lit(t));
        }
    }
}
