//! Metrics: for classification, a confusion matrix with accuracy and per-class recall, precision
//! and F1; for multi-label classification, the same per label, pooled, and the exact-match
//! share; for regression, the mean squared and absolute errors and the coefficient of determination R²;
//! from scores rather than decisions ([`BinaryScores`]), the ROC and precision-recall curves
//! and their areas, the ROC AUC ([`roc_auc`], [`one_vs_rest_auc`], [`MultiLabelMetrics::auc`])
//! and the average precision ([`MultiLabelMetrics::average_precision`],
//! [`one_vs_rest_scores`]); whether a classifier's probabilities mean what they say, the
//! expected calibration error of its confidences ([`Calibration`]).
//!
//! Each also comes weighted, a weight per sample as [`SampleWeighted`](crate::loss::SampleWeighted)
//! trains with (scikit-learn's `sample_weight`): [`ConfusionMatrix::weighted`],
//! [`RegressionMetrics::weighted`], [`MultiLabelMetrics::weighted`], [`BinaryScores::weighted`],
//! [`weighted_roc_auc`], [`weighted_one_vs_rest_auc`], [`weighted_one_vs_rest_scores`],
//! [`Calibration::weighted`], [`Calibration::binary_weighted`]. Weights
//! of 1 give the unweighted numbers exactly.

mod calibration;
mod confusion;
mod multi_label;
mod ranking;
mod regression;

pub(crate) use calibration::check_probabilities;
pub use calibration::{Calibration, CalibrationBin};
pub use confusion::ConfusionMatrix;
pub use multi_label::MultiLabelMetrics;
pub use ranking::{
    BinaryScores, PrecisionRecallCurve, RocCurve, one_vs_rest_auc, one_vs_rest_scores, roc_auc,
    weighted_one_vs_rest_auc, weighted_one_vs_rest_scores, weighted_roc_auc,
};
pub use regression::RegressionMetrics;

use crate::network::check_finite;
use crate::{Error, Float, Result};
use nalgebra::DMatrix;

/// Checks that `predicted` and `truth` have one shape, at least one entry, and no NaN or ±inf
/// (naming the sample).
fn check_pair<T: Float>(
    predicted: &DMatrix<T>,
    truth: &DMatrix<T>,
    predicted_name: &'static str,
    truth_name: &'static str,
) -> Result<()> {
    if predicted.shape() != truth.shape() {
        let shape = |m: &DMatrix<T>| format!("{}×{}", m.nrows(), m.ncols());
        return Err(Error::shape(truth_name, shape(predicted), shape(truth)));
    }
    if predicted.is_empty() {
        return Err(Error::EmptyBatch { what: predicted_name });
    }
    check_finite(predicted, predicted_name, None)?;
    check_finite(truth, truth_name, None)
}

/// The mean of the scores that are defined; `None` if none is.
fn mean_of_defined(scores: Vec<Option<f64>>) -> Option<f64> {
    let defined: Vec<f64> = scores.into_iter().flatten().collect();
    (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64)
}
