//! A multi-label classifier's decisions, label by label and pooled.

use super::{BinaryScores, ConfusionMatrix, check_pair, mean_of_defined};
use crate::loss::check_sample_weights;
use crate::{Error, Float, Result};
use nalgebra::DMatrix;

/// A multi-label classifier's yes/no decisions against its targets, both `labels × samples`:
/// each label's 2×2 [`ConfusionMatrix`] (class 1 is yes), the decisions of every label pooled,
/// and the share of samples with every label right.
///
/// A label is predicted yes where its probability is above `threshold` (0.5 for
/// [`Network::sigmoid_probabilities`](crate::Network::sigmoid_probabilities)), and is truly yes
/// where its target is above 0.5 (so soft targets count as their rounding, as
/// [`BinaryCrossEntropy`](crate::BinaryCrossEntropy)'s accuracy does).
///
/// ```
/// use feedforward::metrics::MultiLabelMetrics;
/// use nalgebra::DMatrix;
/// // Two labels, three samples (one per column).
/// let p = DMatrix::from_row_slice(2, 3, &[0.9, 0.2, 0.7, 0.1, 0.6, 0.4]);
/// let t = DMatrix::from_row_slice(2, 3, &[1.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
/// let m = MultiLabelMetrics::new(&p, &t, 0.5)?;
/// // Label 0: one hit, one false alarm; label 1: one hit, one miss.
/// assert_eq!(m.f1(), [Some(2.0 / 3.0), Some(2.0 / 3.0)]);
/// assert_eq!(m.micro_f1(), Some(4.0 / 6.0));
/// assert_eq!(m.subset_accuracy(), 2.0 / 3.0); // sample 2 has both labels wrong
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MultiLabelMetrics {
    per_label: Vec<ConfusionMatrix>,
    pooled: ConfusionMatrix,
    subset_accuracy: f64,
    /// Each label's ROC AUC from the probabilities themselves.
    auc: Vec<Option<f64>>,
    /// Each label's average precision from the probabilities.
    average_precision: Vec<Option<f64>>,
}

impl MultiLabelMetrics {
    /// Tallies `probabilities` (decided at `threshold`) against `targets`. Different shapes, no
    /// samples, NaN or ±inf in either (naming the sample), and a threshold that is not finite
    /// are errors.
    pub fn new<T: Float>(probabilities: &DMatrix<T>, targets: &DMatrix<T>, threshold: f64) -> Result<Self> {
        Self::tally(probabilities, targets, threshold, None)
    }

    /// The same with a weight per sample (scikit-learn's `sample_weight`): each label's
    /// matrix and the pooled one are [weighted](ConfusionMatrix::weighted) by the samples'
    /// weights, the exact-match share is the weight of the samples with every label right
    /// over the whole weight, and each label's AUC and average precision are those of
    /// [`BinaryScores::weighted`]. Errors: those of
    /// [`new`](MultiLabelMetrics::new), and [`Error::InvalidSampleWeight`] for a weight that is
    /// negative or not finite (naming the sample) or weights that are all 0.
    ///
    /// ```
    /// use feedforward::metrics::MultiLabelMetrics;
    /// use nalgebra::DMatrix;
    /// let p = DMatrix::from_row_slice(1, 3, &[0.9, 0.2, 0.7]);
    /// let t = DMatrix::from_row_slice(1, 3, &[1.0, 0.0, 0.0]);
    /// // The false alarm (sample 2) weighs 2 of 4.
    /// let m = MultiLabelMetrics::weighted(&p, &t, 0.5, &[1.0, 1.0, 2.0])?;
    /// assert_eq!((m.subset_accuracy(), m.f1()[0]), (0.5, Some(2.0 / 4.0)));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn weighted<T: Float>(
        probabilities: &DMatrix<T>,
        targets: &DMatrix<T>,
        threshold: f64,
        weights: &[f64],
    ) -> Result<Self> {
        Self::tally(probabilities, targets, threshold, Some(weights))
    }

    /// [`new`](MultiLabelMetrics::new) (`weights` `None`: each sample weighs 1) or
    /// [`weighted`](MultiLabelMetrics::weighted).
    fn tally<T: Float>(
        probabilities: &DMatrix<T>,
        targets: &DMatrix<T>,
        threshold: f64,
        weights: Option<&[f64]>,
    ) -> Result<Self> {
        if !threshold.is_finite() {
            return Err(Error::InvalidHyperparameter {
                name: "threshold",
                value: threshold,
                requirement: "must be finite",
            });
        }
        check_pair(probabilities, targets, "multi-label probabilities", "multi-label targets")?;
        if let Some(weights) = weights {
            check_sample_weights(weights, targets.ncols(), "weighted multi-label metrics")?;
        }
        let decide = |m: &DMatrix<T>, at: f64| m.map(|v| usize::from(v.as_f64() > at));
        let (predicted, truth) = (decide(probabilities, threshold), decide(targets, 0.5));
        let per_label = (0..predicted.nrows())
            .map(|k| {
                let row = |m: &DMatrix<usize>| m.row(k).iter().copied().collect::<Vec<_>>();
                ConfusionMatrix::tally(2, &row(&predicted), &row(&truth), weights)
            })
            .collect::<Result<Vec<_>>>()?;
        // The pooled decisions are the matrices' entries, column by column: each sample's
        // weight once per label.
        let labels = predicted.nrows();
        let entry_weights: Option<Vec<f64>> =
            weights.map(|w| w.iter().flat_map(|&w| std::iter::repeat_n(w, labels)).collect());
        let pooled =
            ConfusionMatrix::tally(2, predicted.as_slice(), truth.as_slice(), entry_weights.as_deref())?;
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        let (mut right, mut total) = (0.0, 0.0);
        for (i, (p, t)) in predicted.column_iter().zip(truth.column_iter()).enumerate() {
            right += if p == t { weight(i) } else { 0.0 };
            total += weight(i);
        }
        let ranked = (0..truth.nrows())
            .map(|k| {
                let positive: Vec<bool> = truth.row(k).iter().map(|&t| t == 1).collect();
                BinaryScores::rank(
                    &probabilities.row(k).iter().copied().collect::<Vec<T>>(),
                    &positive,
                    weights,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let auc = ranked.iter().map(BinaryScores::roc_auc).collect();
        let average_precision = ranked.iter().map(BinaryScores::average_precision).collect();
        Ok(MultiLabelMetrics { per_label, pooled, subset_accuracy: right / total, auc, average_precision })
    }

    /// Each label's area under the ROC curve ([`roc_auc`](super::roc_auc)), from the probabilities rather than
    /// the decisions at the threshold; `None` for a label whose targets are all yes or all no.
    #[must_use]
    pub fn auc(&self) -> &[Option<f64>] {
        &self.auc
    }

    /// The mean of the labels' ROC AUC over the labels where it is defined.
    #[must_use]
    pub fn macro_auc(&self) -> Option<f64> {
        mean_of_defined(self.auc.clone())
    }

    /// Each label's average precision ([`BinaryScores::average_precision`]) from the
    /// probabilities; `None` for a label never yes. For a rare label it tells more than the
    /// ROC AUC.
    #[must_use]
    pub fn average_precision(&self) -> &[Option<f64>] {
        &self.average_precision
    }

    /// The mean of the labels' average precision over the labels where it is defined
    /// (scikit-learn's `average_precision_score(average="macro")`).
    #[must_use]
    pub fn macro_average_precision(&self) -> Option<f64> {
        mean_of_defined(self.average_precision.clone())
    }

    /// Each label's 2×2 confusion matrix: class 1 is yes (its precision, recall and F1 are
    /// those of the label).
    #[must_use]
    pub fn per_label(&self) -> &[ConfusionMatrix] {
        &self.per_label
    }

    /// Every decision of every label in one 2×2 matrix: its class-1 scores are the micro
    /// averages.
    #[must_use]
    pub fn pooled(&self) -> &ConfusionMatrix {
        &self.pooled
    }

    /// Each label's F1 (`None` for a label never true nor predicted).
    #[must_use]
    pub fn f1(&self) -> Vec<Option<f64>> {
        self.per_label.iter().map(|m| m.f1()[1]).collect()
    }

    /// The mean of the labels' F1 over the labels where it is defined (macro average).
    #[must_use]
    pub fn macro_f1(&self) -> Option<f64> {
        mean_of_defined(self.f1())
    }

    /// F1 of all the labels' decisions pooled (micro average).
    #[must_use]
    pub fn micro_f1(&self) -> Option<f64> {
        self.pooled.f1()[1]
    }

    /// Share of samples whose every label is decided right (exact match).
    #[must_use]
    pub fn subset_accuracy(&self) -> f64 {
        self.subset_accuracy
    }
}
