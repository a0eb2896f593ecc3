//! How far a regression's predictions are from its targets.

use super::check_pair;
use crate::loss::check_sample_weights;
use crate::{Float, Result};
use nalgebra::DMatrix;

/// How far a regression's predictions are from its targets, both `outputs × samples` (one
/// sample per column, as [`Network::output`](crate::Network::output) gives them), accumulated
/// in `f64`.
///
/// ```
/// use feedforward::metrics::RegressionMetrics;
/// use nalgebra::DMatrix;
/// let truth = DMatrix::from_row_slice(1, 4, &[1.0, 2.0, 3.0, 4.0]);
/// let predicted = DMatrix::from_row_slice(1, 4, &[1.0, 2.0, 3.0, 6.0]);
/// let m = RegressionMetrics::new(&predicted, &truth)?;
/// assert_eq!((m.mse, m.rmse, m.mae), (1.0, 1.0, 0.5));
/// // Σ(y − ŷ)² = 4 against Σ(y − ȳ)² = 5.
/// assert!((m.r2.unwrap() - (1.0 - 4.0 / 5.0)).abs() < 1e-15);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegressionMetrics {
    /// Mean squared error over every entry: `Σ(y − ŷ)²/(R·N)`, as
    /// [`MeanSquaredError`](crate::MeanSquaredError) computes it.
    pub mse: f64,
    /// Root mean squared error, `√mse`, in the targets' units.
    pub rmse: f64,
    /// Mean absolute error over every entry, `Σ|y − ŷ|/(R·N)`.
    pub mae: f64,
    /// The coefficient of determination `1 − Σ(y − ŷ)²/Σ(y − ȳ)²` of each output row (`ȳ` its
    /// mean target), averaged over the rows: 1 for a perfect fit, 0 for predicting the mean,
    /// negative for worse. `None` when some row's targets do not vary (its R² has no
    /// denominator), one sample among them.
    pub r2: Option<f64>,
}

impl RegressionMetrics {
    /// The metrics of `predicted` against `truth`. Different shapes, no samples, and NaN or
    /// ±inf in either (naming the sample) are errors.
    pub fn new<T: Float>(predicted: &DMatrix<T>, truth: &DMatrix<T>) -> Result<Self> {
        Self::measure(predicted, truth, None)
    }

    /// The metrics with a weight `sᵢ` per sample (scikit-learn's `sample_weight`): every mean
    /// over the samples is the weighted one, `mse = Σᵢ sᵢ·Σᵣ(y − ŷ)² / (R·Σᵢ sᵢ)`, and each
    /// row's R² is `1 − Σsᵢ(y − ŷ)²/Σsᵢ(y − ȳ)²` with `ȳ` the weighted mean target. Weights of
    /// 1 give [`new`](RegressionMetrics::new)'s numbers exactly. Its errors, and
    /// [`Error::InvalidSampleWeight`](crate::Error::InvalidSampleWeight) for a weight that is
    /// negative or not finite (naming the sample) or weights that are all 0.
    ///
    /// ```
    /// use feedforward::metrics::RegressionMetrics;
    /// use nalgebra::DMatrix;
    /// let truth = DMatrix::from_row_slice(1, 3, &[1.0, 2.0, 3.0]);
    /// let predicted = DMatrix::from_row_slice(1, 3, &[1.0, 2.0, 5.0]);
    /// // The miss by 2 weighs 1 of 4.
    /// let m = RegressionMetrics::weighted(&predicted, &truth, &[2.0, 1.0, 1.0])?;
    /// assert_eq!((m.mse, m.mae), (4.0 / 4.0, 2.0 / 4.0));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn weighted<T: Float>(predicted: &DMatrix<T>, truth: &DMatrix<T>, weights: &[f64]) -> Result<Self> {
        Self::measure(predicted, truth, Some(weights))
    }

    /// [`new`](RegressionMetrics::new) (`weights` `None`: each sample weighs 1) or
    /// [`weighted`](RegressionMetrics::weighted).
    fn measure<T: Float>(
        predicted: &DMatrix<T>,
        truth: &DMatrix<T>,
        weights: Option<&[f64]>,
    ) -> Result<Self> {
        check_pair(predicted, truth, "regression predictions", "regression targets")?;
        if let Some(weights) = weights {
            check_sample_weights(weights, truth.ncols(), "weighted regression metrics")?;
        }
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        let rows = predicted.nrows();
        let total_weight: f64 = (0..truth.ncols()).map(weight).sum();
        let (mut squares, mut absolute) = (0.0, 0.0);
        let (mut r2_sum, mut defined) = (0.0, true);
        for r in 0..rows {
            let (p, t) = (predicted.row(r), truth.row(r));
            let mean = t.iter().enumerate().map(|(i, v)| weight(i) * v.as_f64()).sum::<f64>() / total_weight;
            let (mut residual, mut total) = (0.0, 0.0);
            for (i, (p, t)) in p.iter().zip(t.iter()).enumerate() {
                let (p, t, s) = (p.as_f64(), t.as_f64(), weight(i));
                residual += s * (t - p) * (t - p);
                total += s * (t - mean) * (t - mean);
                absolute += s * (t - p).abs();
            }
            squares += residual;
            if total > 0.0 {
                r2_sum += 1.0 - residual / total;
            } else {
                defined = false;
            }
        }
        let entries = rows as f64 * total_weight;
        let mse = squares / entries;
        Ok(RegressionMetrics {
            mse,
            rmse: mse.sqrt(),
            mae: absolute / entries,
            r2: defined.then(|| r2_sum / rows as f64),
        })
    }
}
