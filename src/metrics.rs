//! Metrics: for classification, a confusion matrix with accuracy and per-class recall, precision
//! and F1; for multi-label classification, the same per label, pooled, and the exact-match
//! share; for regression, the mean squared and absolute errors and the coefficient of determination R²;
//! from scores rather than decisions, the area under the ROC curve ([`roc_auc`],
//! [`one_vs_rest_auc`], [`MultiLabelMetrics::auc`]).
//!
//! Each also comes weighted, a weight per sample as [`SampleWeighted`](crate::loss::SampleWeighted)
//! trains with (scikit-learn's `sample_weight`): [`ConfusionMatrix::weighted`],
//! [`RegressionMetrics::weighted`], [`MultiLabelMetrics::weighted`], [`weighted_roc_auc`],
//! [`weighted_one_vs_rest_auc`]. Weights of 1 give the unweighted numbers exactly.

use crate::error::plural;
use crate::linalg::first_non_finite;
use crate::loss::check_sample_weights;
use crate::{Error, Float, Result, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use std::fmt;

/// Counts of (true class, predicted class) pairs, and with [`weighted`](ConfusionMatrix::weighted)
/// their samples' total weights.
///
/// The scores (accuracy, recall, precision, F1) are computed from the cells' weights, which
/// are the counts when every sample weighs 1 ([`new`](ConfusionMatrix::new)).
#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionMatrix {
    classes: usize,
    /// Row-major `counts[truth * classes + predicted]`.
    counts: Vec<usize>,
    /// The same cells' sums of sample weights; `None` when each sample weighs 1.
    weights: Option<Vec<f64>>,
    /// What the printed table calls the classes (their indices when `None`).
    names: Option<Vec<String>>,
}

/// The weights are finite (checked when tallied), so `==` is an equivalence.
impl Eq for ConfusionMatrix {}

impl ConfusionMatrix {
    /// Tallies `predicted` against `truth` (one entry per sample each). A class `>= classes`
    /// in either, or slices of different lengths, are errors naming the sample: nothing is
    /// silently left out of the counts.
    ///
    /// ```
    /// use feedforward::metrics::ConfusionMatrix;
    /// let m = ConfusionMatrix::new(3, &[0, 2, 2], &[0, 1, 2])?;
    /// assert_eq!((m.count(1, 2), m.accuracy()), (1, 2.0 / 3.0));
    /// assert!(ConfusionMatrix::new(3, &[0], &[7]).is_err());
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn new(classes: usize, predicted: &[usize], truth: &[usize]) -> Result<Self> {
        Self::tally(classes, predicted, truth, None)
    }

    /// Tallies `predicted` against `truth` with a weight per sample (scikit-learn's
    /// `sample_weight`): each cell holds its samples' total weight besides their count, and
    /// every score is computed from the weights (a weight of 2 counts a sample twice, 0 leaves
    /// it out). The errors of [`new`](ConfusionMatrix::new), and
    /// [`Error::InvalidSampleWeight`] for a weight that is negative or not finite (naming the
    /// sample) or weights that are all 0; no samples is [`Error::EmptyBatch`].
    ///
    /// ```
    /// use feedforward::metrics::ConfusionMatrix;
    /// // The one mistake weighs 3 of the 5.
    /// let m = ConfusionMatrix::weighted(2, &[0, 1, 0], &[0, 1, 1], &[1.0, 1.0, 3.0])?;
    /// assert_eq!((m.count(1, 0), m.weight(1, 0)), (1, 3.0));
    /// assert_eq!((m.accuracy(), m.recall()[1]), (2.0 / 5.0, Some(1.0 / 4.0)));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn weighted(classes: usize, predicted: &[usize], truth: &[usize], weights: &[f64]) -> Result<Self> {
        Self::tally(classes, predicted, truth, Some(weights))
    }

    /// [`new`](ConfusionMatrix::new) (`weights` `None`) or [`weighted`](ConfusionMatrix::weighted).
    fn tally(classes: usize, predicted: &[usize], truth: &[usize], weights: Option<&[f64]>) -> Result<Self> {
        if predicted.len() != truth.len() {
            return Err(Error::shape(
                "confusion matrix",
                format!("as many predictions as true labels ({})", truth.len()),
                format!("{}", predicted.len()),
            ));
        }
        for labels in [truth, predicted] {
            if let Some(index) = labels.iter().position(|&c| c >= classes) {
                return Err(Error::LabelOutOfRange { index, label: labels[index], classes });
            }
        }
        let mut counts = vec![0; classes * classes];
        for (&p, &t) in predicted.iter().zip(truth) {
            counts[t * classes + p] += 1;
        }
        let weights = match weights {
            None => None,
            Some(weights) => {
                check_sample_weights(weights, truth.len(), "weighted confusion matrix")?;
                let mut cells = vec![0.0; classes * classes];
                for ((&p, &t), &w) in predicted.iter().zip(truth).zip(weights) {
                    cells[t * classes + p] += w;
                }
                Some(cells)
            }
        };
        Ok(ConfusionMatrix { classes, counts, weights, names: None })
    }

    /// The same matrix, printed with `names` (one per class, in class order) instead of the
    /// class indices (a CSV table's `Labels::classes`, say).
    ///
    /// ```
    /// use feedforward::metrics::ConfusionMatrix;
    /// let m = ConfusionMatrix::new(2, &[0, 1, 1], &[0, 1, 0])?.with_class_names(vec!["cat".into(), "dog".into()])?;
    /// assert!(m.to_string().starts_with("true\\pred    cat    dog   recall\n      cat      1      1   50.00%"));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn with_class_names(self, names: Vec<String>) -> Result<Self> {
        if names.len() != self.classes {
            return Err(Error::shape(
                "confusion matrix class names",
                format!("{} (one per class)", self.classes),
                format!("{}", names.len()),
            ));
        }
        Ok(ConfusionMatrix { names: Some(names), ..self })
    }

    /// The names given by [`with_class_names`](ConfusionMatrix::with_class_names), if any.
    #[must_use]
    pub fn class_names(&self) -> Option<&[String]> {
        self.names.as_deref()
    }

    /// Whether the cells hold sample weights ([`weighted`](ConfusionMatrix::weighted)).
    #[must_use]
    pub fn is_weighted(&self) -> bool {
        self.weights.is_some()
    }

    /// Number of samples of class `truth` predicted as `predicted`.
    ///
    /// # Panics
    /// If either class is `>= classes` (there is no such cell).
    #[must_use]
    pub fn count(&self, truth: usize, predicted: usize) -> usize {
        self.counts[self.cell(truth, predicted)]
    }

    /// Total weight of the samples of class `truth` predicted as `predicted`: their
    /// [`count`](ConfusionMatrix::count) when the matrix is not weighted.
    ///
    /// # Panics
    /// If either class is `>= classes` (there is no such cell).
    #[must_use]
    pub fn weight(&self, truth: usize, predicted: usize) -> f64 {
        let cell = self.cell(truth, predicted);
        self.weights.as_ref().map_or(self.counts[cell] as f64, |w| w[cell])
    }

    /// The index of a cell in `counts` and `weights`.
    fn cell(&self, truth: usize, predicted: usize) -> usize {
        assert!(
            truth < self.classes && predicted < self.classes,
            "confusion matrix of {} classes has no cell ({truth}, {predicted})",
            self.classes
        );
        truth * self.classes + predicted
    }

    /// Fraction (of the weight) predicted correctly (0 for no samples).
    #[must_use]
    pub fn accuracy(&self) -> f64 {
        let total: f64 = (0..self.classes).map(|c| self.actual(c)).sum();
        let correct: f64 = (0..self.classes).map(|c| self.weight(c, c)).sum();
        if total == 0.0 { 0.0 } else { correct / total }
    }

    /// Recall of each class: correct / samples of that class (`None` for an absent class).
    #[must_use]
    pub fn recall(&self) -> Vec<Option<f64>> {
        self.per_class(|c| (self.weight(c, c), self.actual(c)))
    }

    /// Precision of each class: correct / samples predicted as that class (`None` for a class
    /// never predicted).
    #[must_use]
    pub fn precision(&self) -> Vec<Option<f64>> {
        self.per_class(|c| (self.weight(c, c), self.predicted(c)))
    }

    /// F1 score of each class, the harmonic mean of its precision and recall, computed as
    /// `2·TP / (2·TP + FP + FN)`: 0 for a class present but never predicted correctly, `None`
    /// for a class neither present nor predicted.
    ///
    /// ```
    /// use feedforward::metrics::ConfusionMatrix;
    /// // Class 0: 2 of 3 found, 1 false alarm; class 1: 1 of 2, no false alarm; no class 2.
    /// let m = ConfusionMatrix::new(3, &[0, 0, 1, 1, 0], &[0, 0, 0, 1, 1])?;
    /// assert_eq!(m.precision(), [Some(2.0 / 3.0), Some(0.5), None]);
    /// assert_eq!(m.f1(), [Some(4.0 / 6.0), Some(2.0 / 4.0), None]);
    /// assert_eq!(m.macro_f1(), Some((4.0 / 6.0 + 0.5) / 2.0));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    #[must_use]
    pub fn f1(&self) -> Vec<Option<f64>> {
        // 2·TP + FP + FN = (TP + FP) + (TP + FN): predicted plus actual.
        self.per_class(|c| (2.0 * self.weight(c, c), self.predicted(c) + self.actual(c)))
    }

    /// Weight of the samples of class `c`: its row's sum.
    fn actual(&self, c: usize) -> f64 {
        (0..self.classes).map(|p| self.weight(c, p)).sum()
    }

    /// Weight of the samples predicted as class `c`: its column's sum.
    fn predicted(&self, c: usize) -> f64 {
        (0..self.classes).map(|t| self.weight(t, c)).sum()
    }

    /// `numerator / denominator` of each class, from `parts(class)`; `None` where the
    /// denominator is 0.
    fn per_class(&self, parts: impl Fn(usize) -> (f64, f64)) -> Vec<Option<f64>> {
        (0..self.classes)
            .map(|c| {
                let (numerator, denominator) = parts(c);
                (denominator > 0.0).then(|| numerator / denominator)
            })
            .collect()
    }

    /// The mean F1 over the classes that appear in the truth or the predictions (macro
    /// average); `None` when there are no samples.
    #[must_use]
    pub fn macro_f1(&self) -> Option<f64> {
        mean_of_defined(self.f1())
    }
}

impl fmt::Display for ConfusionMatrix {
    /// A table: one row per true class, one column per prediction, recall on the right and
    /// precision at the bottom (`-` where undefined). Classes are shown by index, or by the
    /// names of [`with_class_names`](ConfusionMatrix::with_class_names), with the columns
    /// widened to fit them and the cells. A weighted matrix shows each cell's weight (to four
    /// significant digits, whole numbers as such) and says so below the table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = match &self.names {
            Some(names) => names.clone(),
            None => (0..self.classes).map(|c| c.to_string()).collect(),
        };
        let cells: Vec<String> = (0..self.classes * self.classes)
            .map(|k| {
                let (t, p) = (k / self.classes, k % self.classes);
                match self.weights {
                    Some(_) => weight_text(self.weight(t, p)),
                    None => self.count(t, p).to_string(),
                }
            })
            .collect();
        let longest = labels.iter().chain(&cells).map(|l| l.chars().count()).max().unwrap_or(0);
        let first = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0).max(9);
        let width = (longest + 1).max(7);
        write!(f, "{:<first$}", "true\\pred")?;
        for label in &labels {
            write!(f, "{label:>width$}")?;
        }
        writeln!(f, "   recall")?;
        for ((t, recall), label) in self.recall().into_iter().enumerate().zip(&labels) {
            write!(f, "{label:>first$}")?;
            for cell in &cells[t * self.classes..(t + 1) * self.classes] {
                write!(f, "{cell:>width$}")?;
            }
            match recall {
                Some(r) => writeln!(f, "  {:>6.2}%", 100.0 * r)?,
                None => writeln!(f, "        -")?,
            }
        }
        write!(f, "{:<first$}", "precision")?;
        for precision in self.precision() {
            let cell = precision.map_or("-".to_string(), |p| format!("{:.1}%", 100.0 * p));
            write!(f, "{cell:>width$}")?;
        }
        writeln!(f)?;
        if self.weights.is_some() {
            writeln!(f, "(cells are sums of sample weights)")?;
        }
        Ok(())
    }
}

/// A cell's weight in at most four significant digits (fewer when its trailing ones are 0), a
/// whole number without a fraction.
fn weight_text(weight: f64) -> String {
    if weight.fract() == 0.0 {
        return format!("{weight:.0}");
    }
    let magnitude = weight.abs().log10().floor() as i32;
    let digits = usize::try_from(3 - magnitude).unwrap_or(0);
    let text = format!("{weight:.digits$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

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
    /// [`Error::InvalidSampleWeight`] for a weight that is negative or not finite (naming the
    /// sample) or weights that are all 0.
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
    for (what, m) in [(predicted_name, predicted), (truth_name, truth)] {
        if let Some((k, value)) = first_non_finite(m.as_slice()) {
            let (what, value, sample) = (what.to_string(), value.as_f64(), Some(k / m.nrows()));
            return Err(Error::NonFinite { step: None, what, value, sample });
        }
    }
    Ok(())
}

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
    /// over the whole weight, and each label's AUC is [`weighted_roc_auc`]. Errors: those of
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
        let auc = (0..truth.nrows())
            .map(|k| {
                let positive: Vec<bool> = truth.row(k).iter().map(|&t| t == 1).collect();
                auc_of(&probabilities.row(k).iter().copied().collect::<Vec<T>>(), &positive, weights)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(MultiLabelMetrics { per_label, pooled, subset_accuracy: right / total, auc })
    }

    /// Each label's area under the ROC curve ([`roc_auc`]), from the probabilities rather than
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

/// The area under the ROC curve of `scores` (one per sample, higher for more likely
/// positive: a probability or a logit) against whether each sample is `positive`: the chance
/// that a positive sample drawn at random scores above a negative one, a tie counting half
/// (scikit-learn's `roc_auc_score` for two classes). 1 ranks every positive first, 0.5 is
/// chance, and it does not depend on a threshold. `None` when every sample is positive or
/// every one negative (no pair to rank).
///
/// Errors: slices of different lengths, no samples, a NaN or ±inf score (naming the sample).
/// Sorts a copy of the scores: `O(n log n)`.
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
    auc_of(scores, positive, None)
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
    auc_of(scores, positive, Some(weights))
}

/// [`roc_auc`] (`weights` `None`: each sample weighs 1) or [`weighted_roc_auc`].
fn auc_of<T: Float>(scores: &[T], positive: &[bool], weights: Option<&[f64]>) -> Result<Option<f64>> {
    if scores.len() != positive.len() {
        return Err(Error::shape(
            "ROC AUC truth",
            format!("{} (one per score)", plural(scores.len(), "value")),
            plural(positive.len(), "value"),
        ));
    }
    if scores.is_empty() {
        return Err(Error::EmptyBatch { what: "ROC AUC scores" });
    }
    if let Some((sample, value)) = first_non_finite(scores) {
        let (what, value) = ("ROC AUC score".to_string(), value.as_f64());
        return Err(Error::NonFinite { step: None, what, value, sample: Some(sample) });
    }
    if let Some(weights) = weights {
        check_sample_weights(weights, scores.len(), "ROC AUC scores")?;
    }
    let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
    let mut ranked: Vec<(T, bool, f64)> =
        scores.iter().zip(positive).enumerate().map(|(i, (&s, &p))| (s, p, weight(i))).collect();
    ranked.sort_unstable_by(|a, b| a.0.as_f64().total_cmp(&b.0.as_f64()));
    // Walking up the scores, group by group of equal ones: each positive outranks every
    // negative below its group, and ties with half of its group's negatives, a pair counting
    // the product of its weights. Unweighted, the counts are whole or half numbers, exact in
    // f64.
    let (mut pairs, mut negatives_below, mut positives) = (0.0f64, 0.0f64, 0.0f64);
    for group in ranked.chunk_by(|a, b| a.0 == b.0) {
        let side = |wanted: bool| group.iter().filter(|g| g.1 == wanted).map(|g| g.2).sum::<f64>();
        let (p, n) = (side(true), side(false));
        pairs += p * negatives_below + 0.5 * p * n;
        negatives_below += n;
        positives += p;
    }
    let negatives = negatives_below;
    Ok((positives > 0.0 && negatives > 0.0).then(|| pairs / (positives * negatives)))
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
    one_vs_rest(scores, labels, None)
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
    one_vs_rest(scores, labels, Some(weights))
}

/// [`one_vs_rest_auc`] (`weights` `None`) or [`weighted_one_vs_rest_auc`].
fn one_vs_rest<T: Float>(
    scores: &DMatrix<T>,
    labels: &[usize],
    weights: Option<&[f64]>,
) -> Result<Vec<Option<f64>>> {
    SoftmaxCrossEntropy::check_labels(scores.nrows(), scores.ncols(), labels)?;
    (0..scores.nrows())
        .map(|class| {
            let positive: Vec<bool> = labels.iter().map(|&l| l == class).collect();
            auc_of(&scores.row(class).iter().copied().collect::<Vec<T>>(), &positive, weights)
        })
        .collect()
}

/// The mean of the scores that are defined; `None` if none is.
fn mean_of_defined(scores: Vec<Option<f64>>) -> Option<f64> {
    let defined: Vec<f64> = scores.into_iter().flatten().collect();
    (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64)
}
