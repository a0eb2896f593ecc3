//! Metrics of scores rather than decisions: how well they rank the positive samples above
//! the negative ones, whatever the threshold.

use crate::error::plural;
use crate::linalg::first_non_finite;
use crate::loss::check_sample_weights;
use crate::{Error, Float, Result, SoftmaxCrossEntropy};
use nalgebra::DMatrix;

/// A binary classifier's scores ranked against the truth: each distinct score with the total
/// weight of the positive and of the negative samples that have it (a weight of 1 each
/// unless [`weighted`](BinaryScores::weighted)). Every threshold-free metric is read off it:
/// the [ROC curve](BinaryScores::roc_curve) and its [area](BinaryScores::roc_auc), the
/// [precision-recall curve](BinaryScores::precision_recall_curve) and its
/// [average precision](BinaryScores::average_precision). Built in `O(n log n)` (a sort).
///
/// ```
/// use feedforward::metrics::BinaryScores;
/// // scikit-learn's examples: scores of two negatives and two positives.
/// let ranked = BinaryScores::new(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true])?;
/// assert_eq!(ranked.roc_auc(), Some(0.75));
/// let pr = ranked.precision_recall_curve().unwrap();
/// assert_eq!(pr.thresholds, [0.8, 0.4, 0.35, 0.1]);
/// assert_eq!(pr.recall, [0.5, 0.5, 1.0, 1.0]);
/// assert_eq!(pr.precision, [1.0, 0.5, 2.0 / 3.0, 0.5]);
/// // Σ (Rₖ − Rₖ₋₁)·Pₖ = 0.5·1 + 0.5·(2/3).
/// assert_eq!(ranked.average_precision(), Some(0.5 + 0.5 * (2.0 / 3.0)));
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryScores {
    /// The distinct scores in ascending order, those of samples that all weigh 0 left out.
    groups: Vec<ScoreGroup>,
    /// Total weight of the positive samples.
    positives: f64,
    /// Total weight of the negative samples.
    negatives: f64,
}

/// One distinct score and the weight of the samples that have it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ScoreGroup {
    score: f64,
    positive: f64,
    negative: f64,
}

/// The ROC curve of [`BinaryScores`]: at each threshold (every distinct score, highest first,
/// after `+∞`), a sample is called positive when its score is at least the threshold, and the
/// curve is the share of the negatives so called against the share of the positives.
#[derive(Clone, Debug, PartialEq)]
pub struct RocCurve {
    /// The thresholds, descending; the first is `+∞` (no sample called positive: the point
    /// (0, 0)), the last the lowest score (every sample called positive: (1, 1)).
    pub thresholds: Vec<f64>,
    /// At each threshold, the weight of the negatives called positive over the negatives'.
    pub false_positive_rate: Vec<f64>,
    /// At each threshold, the weight of the positives called positive over the positives'
    /// (the recall).
    pub true_positive_rate: Vec<f64>,
}

/// The precision-recall curve of [`BinaryScores`]: at each threshold (every distinct score,
/// highest first), the precision and the recall of calling positive the samples whose score
/// is at least the threshold. Every point keeps its threshold (scikit-learn's curve also ends
/// in the point of recall 0 and precision 1, which no threshold gives).
#[derive(Clone, Debug, PartialEq)]
pub struct PrecisionRecallCurve {
    /// The thresholds, descending.
    pub thresholds: Vec<f64>,
    /// At each threshold, the weight of the positives among the samples called positive over
    /// theirs.
    pub precision: Vec<f64>,
    /// At each threshold, the weight of the positives called positive over the positives'
    /// (ascending).
    pub recall: Vec<f64>,
}

impl BinaryScores {
    /// Ranks `scores` (one per sample, higher for more likely positive: a probability or a
    /// logit) against whether each sample is `positive`.
    ///
    /// # Errors
    /// Slices of different lengths, no samples, a NaN or ±inf score (naming the sample).
    pub fn new<T: Float>(scores: &[T], positive: &[bool]) -> Result<Self> {
        Self::rank(scores, positive, None)
    }

    /// The same with a weight per sample (scikit-learn's `sample_weight`): every count below is
    /// a sum of weights, so a weight of 2 counts a sample twice and 0 leaves it out.
    ///
    /// # Errors
    /// Those of [`new`](BinaryScores::new), and [`Error::InvalidSampleWeight`] for a weight
    /// that is negative or not finite (naming the sample) or weights that are all 0.
    pub fn weighted<T: Float>(scores: &[T], positive: &[bool], weights: &[f64]) -> Result<Self> {
        Self::rank(scores, positive, Some(weights))
    }

    /// [`new`](BinaryScores::new) (`weights` `None`: each sample weighs 1) or
    /// [`weighted`](BinaryScores::weighted).
    pub(super) fn rank<T: Float>(scores: &[T], positive: &[bool], weights: Option<&[f64]>) -> Result<Self> {
        if scores.len() != positive.len() {
            return Err(Error::shape(
                "binary truth",
                format!("{} (one per score)", plural(scores.len(), "value")),
                plural(positive.len(), "value"),
            ));
        }
        if scores.is_empty() {
            return Err(Error::EmptyBatch { what: "binary classifier scores" });
        }
        if let Some((sample, value)) = first_non_finite(scores) {
            let (what, value) = ("binary classifier score".to_string(), value.as_f64());
            return Err(Error::NonFinite { step: None, what, value, sample: Some(sample) });
        }
        if let Some(weights) = weights {
            check_sample_weights(weights, scores.len(), "binary classifier scores")?;
        }
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        let mut ranked: Vec<(f64, bool, f64)> =
            scores.iter().zip(positive).enumerate().map(|(i, (s, &p))| (s.as_f64(), p, weight(i))).collect();
        ranked.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut groups = Vec::new();
        for group in ranked.chunk_by(|a, b| a.0 == b.0) {
            let side = |wanted: bool| group.iter().filter(|g| g.1 == wanted).map(|g| g.2).sum::<f64>();
            let (positive, negative) = (side(true), side(false));
            if positive > 0.0 || negative > 0.0 {
                groups.push(ScoreGroup { score: group[0].0, positive, negative });
            }
        }
        // Summed from the highest score down, as the curves accumulate them: the last point
        // of each is exactly 1.
        let positives = groups.iter().rev().map(|g| g.positive).sum();
        let negatives = groups.iter().rev().map(|g| g.negative).sum();
        Ok(BinaryScores { groups, positives, negatives })
    }

    /// Total weight of the positive samples (their count, unweighted).
    #[must_use]
    pub fn positives(&self) -> f64 {
        self.positives
    }

    /// Total weight of the negative samples (their count, unweighted).
    #[must_use]
    pub fn negatives(&self) -> f64 {
        self.negatives
    }

    /// The area under the ROC curve: the chance that a positive sample drawn at random (by
    /// weight) scores above a negative one, a tie counting half ([`roc_auc`]). `None` when the
    /// positives or the negatives weigh nothing.
    #[must_use]
    pub fn roc_auc(&self) -> Option<f64> {
        // Walking up the scores: each positive outranks every negative below its group and ties
        // with half of its group's negatives, a pair counting the product of its weights.
        // Unweighted, the counts are whole or half numbers, exact in f64.
        let (mut pairs, mut negatives_below) = (0.0f64, 0.0f64);
        for g in &self.groups {
            pairs += g.positive * negatives_below + 0.5 * g.positive * g.negative;
            negatives_below += g.negative;
        }
        (self.positives > 0.0 && self.negatives > 0.0).then(|| pairs / (self.positives * self.negatives))
    }

    /// The weights of the positives and the negatives scoring at least each distinct score,
    /// highest score first, with that score.
    fn called_positive(&self) -> impl Iterator<Item = (f64, f64, f64)> + '_ {
        self.groups.iter().rev().scan((0.0, 0.0), |(tp, fp), g| {
            (*tp, *fp) = (*tp + g.positive, *fp + g.negative);
            Some((g.score, *tp, *fp))
        })
    }

    /// The ROC curve, a point per distinct score after the `+∞` threshold's (0, 0). Its area
    /// by trapezoids is [`roc_auc`](BinaryScores::roc_auc). `None` when the positives or the
    /// negatives weigh nothing.
    #[must_use]
    pub fn roc_curve(&self) -> Option<RocCurve> {
        if self.positives == 0.0 || self.negatives == 0.0 {
            return None;
        }
        let mut curve = RocCurve {
            thresholds: vec![f64::INFINITY],
            false_positive_rate: vec![0.0],
            true_positive_rate: vec![0.0],
        };
        for (score, tp, fp) in self.called_positive() {
            curve.thresholds.push(score);
            curve.false_positive_rate.push(fp / self.negatives);
            curve.true_positive_rate.push(tp / self.positives);
        }
        Some(curve)
    }

    /// The precision-recall curve, a point per distinct score. `None` when the positives
    /// weigh nothing (no recall).
    #[must_use]
    pub fn precision_recall_curve(&self) -> Option<PrecisionRecallCurve> {
        if self.positives == 0.0 {
            return None;
        }
        let mut curve =
            PrecisionRecallCurve { thresholds: Vec::new(), precision: Vec::new(), recall: Vec::new() };
        // Every group weighs something, so the samples called positive always do.
        for (score, tp, fp) in self.called_positive() {
            curve.thresholds.push(score);
            curve.precision.push(tp / (tp + fp));
            curve.recall.push(tp / self.positives);
        }
        Some(curve)
    }

    /// The average precision: the precision at each threshold weighted by the recall it adds,
    /// `Σₖ (Rₖ − Rₖ₋₁)·Pₖ` with `R₀ = 0` (scikit-learn's `average_precision_score`, no
    /// interpolation). 1 ranks every positive first; a random ranking scores about the share
    /// of positives, which makes it the telling score for a rare class, where the ROC AUC can
    /// look good. `None` when the positives weigh nothing.
    #[must_use]
    pub fn average_precision(&self) -> Option<f64> {
        if self.positives == 0.0 {
            return None;
        }
        // The precision-recall curve's points, walked without collecting them.
        let (mut previous, mut sum) = (0.0, 0.0);
        for (_, tp, fp) in self.called_positive() {
            let (precision, recall) = (tp / (tp + fp), tp / self.positives);
            sum += (recall - previous) * precision;
            previous = recall;
        }
        Some(sum)
    }
}

/// The area under the ROC curve of `scores` (one per sample, higher for more likely
/// positive: a probability or a logit) against whether each sample is `positive`: the chance
/// that a positive sample drawn at random scores above a negative one, a tie counting half
/// (scikit-learn's `roc_auc_score` for two classes). 1 ranks every positive first, 0.5 is
/// chance, and it does not depend on a threshold. `None` when every sample is positive or
/// every one negative (no pair to rank).
///
/// Errors: slices of different lengths, no samples, a NaN or ±inf score (naming the sample).
/// [`BinaryScores::roc_auc`] of [`BinaryScores::new`]: sorts a copy of the scores,
/// `O(n log n)`.
///
/// ```
/// use feedforward::metrics::roc_auc;
/// // Of the 4 (positive, negative) pairs, 3 are ranked right.
/// let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true])?;
/// assert_eq!(auc, Some(0.75));
/// assert_eq!(roc_auc(&[0.3, 0.3], &[false, true])?, Some(0.5)); // a tie
/// assert_eq!(roc_auc(&[0.3, 0.9], &[true, true])?, None);
/// # Ok::<(), feedforward::Error>(())
/// ```
pub fn roc_auc<T: Float>(scores: &[T], positive: &[bool]) -> Result<Option<f64>> {
    Ok(BinaryScores::new(scores, positive)?.roc_auc())
}

/// [`roc_auc`] with a weight `sᵢ` per sample (scikit-learn's `sample_weight`): each
/// (positive, negative) pair counts `sᵢ·sⱼ`, so the AUC is the weighted chance that a
/// positive outranks a negative. `None` when the positives or the negatives weigh 0
/// together. Errors: those of [`roc_auc`], and [`Error::InvalidSampleWeight`] for a weight
/// that is negative or not finite (naming the sample) or weights that are all 0.
///
/// ```
/// use feedforward::metrics::weighted_roc_auc;
/// // Of the 4 pairs only (0.35, 0.4) is ranked wrong; the sample at 0.4 weighs 3.
/// let auc = weighted_roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true], &[1.0, 3.0, 1.0, 1.0])?;
/// assert_eq!(auc, Some(5.0 / 8.0));
/// # Ok::<(), feedforward::Error>(())
/// ```
pub fn weighted_roc_auc<T: Float>(scores: &[T], positive: &[bool], weights: &[f64]) -> Result<Option<f64>> {
    Ok(BinaryScores::weighted(scores, positive, weights)?.roc_auc())
}

/// Each class's ROC AUC against the rest ([`roc_auc`] of its row of `scores` against
/// whether the label is that class): `scores` is `classes × samples`, the probabilities of
/// [`Network::probabilities`](crate::Network::probabilities) or the logits. `None` for a class
/// every sample or no sample has. The mean of the defined ones is scikit-learn's
/// `roc_auc_score(multi_class="ovr", average="macro")`.
///
/// Errors: a label `>= classes` or a count of labels other than the samples (naming the
/// sample), no samples, NaN or ±inf scores.
///
/// ```
/// use feedforward::metrics::one_vs_rest_auc;
/// use nalgebra::DMatrix;
/// // Three classes, four samples (one per column).
/// let p = DMatrix::from_column_slice(3, 4, &[0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.3, 0.3, 0.4, 0.9, 0.05, 0.05]);
/// let auc = one_vs_rest_auc(&p, &[0, 1, 2, 2])?;
/// // Class 0: sample 0 (0.8) outranks samples 1 and 2 but not 3 (0.9). Class 2: samples 2 and
/// // 3 (0.4, 0.05) against 0 and 1 (0.1, 0.1): 2 of 4 pairs.
/// assert_eq!(auc, [Some(2.0 / 3.0), Some(1.0), Some(0.5)]);
/// # Ok::<(), feedforward::Error>(())
/// ```
pub fn one_vs_rest_auc<T: Float>(scores: &DMatrix<T>, labels: &[usize]) -> Result<Vec<Option<f64>>> {
    Ok(one_vs_rest_scores(scores, labels)?.iter().map(BinaryScores::roc_auc).collect())
}

/// [`one_vs_rest_auc`] with a weight per sample: each class's [`weighted_roc_auc`] against
/// the rest. Errors: those of [`one_vs_rest_auc`], and [`Error::InvalidSampleWeight`] for a
/// weight that is negative or not finite (naming the sample) or weights that are all 0.
///
/// ```
/// use feedforward::metrics::{one_vs_rest_auc, weighted_one_vs_rest_auc};
/// use nalgebra::DMatrix;
/// let p = DMatrix::from_column_slice(2, 3, &[0.8, 0.2, 0.4, 0.6, 0.7, 0.3]);
/// // Equal weights change nothing.
/// assert_eq!(weighted_one_vs_rest_auc(&p, &[0, 1, 1], &[2.0; 3])?, one_vs_rest_auc(&p, &[0, 1, 1])?);
/// # Ok::<(), feedforward::Error>(())
/// ```
pub fn weighted_one_vs_rest_auc<T: Float>(
    scores: &DMatrix<T>,
    labels: &[usize],
    weights: &[f64],
) -> Result<Vec<Option<f64>>> {
    Ok(weighted_one_vs_rest_scores(scores, labels, weights)?.iter().map(BinaryScores::roc_auc).collect())
}

/// Each class's scores ranked against the rest: [`BinaryScores`] of its row of `scores`
/// (`classes × samples`: the probabilities of
/// [`Network::probabilities`](crate::Network::probabilities), or the logits) against whether
/// the label is that class. Read each one's ROC AUC, average precision or curves off it.
///
/// Errors: a label `>= classes` or a count of labels other than the samples (naming the
/// sample), no samples, NaN or ±inf scores.
///
/// ```
/// use feedforward::metrics::one_vs_rest_scores;
/// use nalgebra::DMatrix;
/// // Two classes, four samples (one per column).
/// let p = DMatrix::from_column_slice(2, 4, &[0.9, 0.1, 0.6, 0.4, 0.3, 0.7, 0.2, 0.8]);
/// let each = one_vs_rest_scores(&p, &[0, 1, 0, 1])?;
/// // Class 0 scores 0.9 and 0.3 on its samples, 0.6 and 0.2 on the others.
/// assert_eq!(each[0].roc_auc(), Some(3.0 / 4.0));
/// assert_eq!(each[0].average_precision(), Some(0.5 * 1.0 + 0.5 * (2.0 / 3.0)));
/// # Ok::<(), feedforward::Error>(())
/// ```
pub fn one_vs_rest_scores<T: Float>(scores: &DMatrix<T>, labels: &[usize]) -> Result<Vec<BinaryScores>> {
    one_vs_rest(scores, labels, None)
}

/// [`one_vs_rest_scores`] with a weight per sample ([`BinaryScores::weighted`]). Errors:
/// those of [`one_vs_rest_scores`], and [`Error::InvalidSampleWeight`] for a weight that is
/// negative or not finite (naming the sample) or weights that are all 0.
pub fn weighted_one_vs_rest_scores<T: Float>(
    scores: &DMatrix<T>,
    labels: &[usize],
    weights: &[f64],
) -> Result<Vec<BinaryScores>> {
    one_vs_rest(scores, labels, Some(weights))
}

/// [`one_vs_rest_scores`] (`weights` `None`) or [`weighted_one_vs_rest_scores`].
fn one_vs_rest<T: Float>(
    scores: &DMatrix<T>,
    labels: &[usize],
    weights: Option<&[f64]>,
) -> Result<Vec<BinaryScores>> {
    SoftmaxCrossEntropy::check_labels(scores.nrows(), scores.ncols(), labels)?;
    (0..scores.nrows())
        .map(|class| {
            let positive: Vec<bool> = labels.iter().map(|&l| l == class).collect();
            BinaryScores::rank(&scores.row(class).iter().copied().collect::<Vec<T>>(), &positive, weights)
        })
        .collect()
}
