//! Classification metrics: confusion matrix, accuracy, per-class recall.

use std::fmt;

/// Counts of (true class, predicted class) pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    /// Row-major `counts[truth * classes + predicted]`.
    counts: Vec<usize>,
}

impl ConfusionMatrix {
    /// Tallies `predicted` against `truth`; pairs with a class `>= classes` are ignored.
    #[must_use]
    pub fn new(classes: usize, predicted: &[usize], truth: &[usize]) -> Self {
        let mut counts = vec![0; classes * classes];
        for (&p, &t) in predicted.iter().zip(truth) {
            if p < classes && t < classes {
                counts[t * classes + p] += 1;
            }
        }
        ConfusionMatrix { classes, counts }
    }

    /// Number of samples of class `truth` predicted as `predicted`.
    #[must_use]
    pub fn count(&self, truth: usize, predicted: usize) -> usize {
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
