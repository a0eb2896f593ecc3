//! Classification metrics: confusion matrix, accuracy, per-class recall.

use crate::{Error, Result};
use std::fmt;

/// Counts of (true class, predicted class) pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    /// Row-major `counts[truth * classes + predicted]`.
    counts: Vec<usize>,
}

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
        Ok(ConfusionMatrix { classes, counts })
    }

    /// Number of samples of class `truth` predicted as `predicted`.
    ///
    /// # Panics
    /// If either class is `>= classes` (there is no such cell).
    #[must_use]
    pub fn count(&self, truth: usize, predicted: usize) -> usize {
        assert!(
            truth < self.classes && predicted < self.classes,
            "confusion matrix of {} classes has no cell ({truth}, {predicted})",
            self.classes
        );
        self.counts[truth * self.classes + predicted]
    }

    /// Fraction predicted correctly (0 for no samples).
    #[must_use]
    pub fn accuracy(&self) -> f64 {
        let total: usize = self.counts.iter().sum();
        let correct: usize = (0..self.classes).map(|c| self.count(c, c)).sum();
        if total == 0 { 0.0 } else { correct as f64 / total as f64 }
    }

    /// Recall of each class: correct / samples of that class (`None` for an absent class).
    #[must_use]
    pub fn recall(&self) -> Vec<Option<f64>> {
        (0..self.classes)
            .map(|t| {
                let row: usize = (0..self.classes).map(|p| self.count(t, p)).sum();
                (row > 0).then(|| self.count(t, t) as f64 / row as f64)
            })
            .collect()
    }
}

impl fmt::Display for ConfusionMatrix {
    /// A table: one row per true class, one column per prediction, recall on the right.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "true\\pred")?;
        for p in 0..self.classes {
            write!(f, "{p:>6}")?;
        }
        writeln!(f, "  recall")?;
        for (t, recall) in self.recall().into_iter().enumerate() {
            write!(f, "{t:>9}")?;
            for p in 0..self.classes {
                write!(f, "{:>6}", self.count(t, p))?;
            }
            match recall {
                Some(r) => writeln!(f, "  {:>5.2}%", 100.0 * r)?,
                None => writeln!(f, "      -")?,
            }
        }
        Ok(())
    }
}
