//! The confusion matrix of a classifier's decisions, and the scores read off it.

use super::mean_of_defined;
use crate::loss::check_sample_weights;
use crate::{Error, Result};
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
    pub(super) fn tally(
        classes: usize,
        predicted: &[usize],
        truth: &[usize],
        weights: Option<&[f64]>,
    ) -> Result<Self> {
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
