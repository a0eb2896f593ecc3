//! [`SoftmaxCrossEntropy`]: softmax over each column of logits fused with the mean
//! cross-entropy against integer labels.
//!
//! | | forward | backward |
//! |---|---|---|
//! | per sample `i` | `ℓᵢ = logsumexp(zᵢ) − zᵢ[yᵢ]`, `L = (1/N)·Σℓᵢ` | `dL/dzᵢ = (softmax(zᵢ) − onehot(yᵢ))/N` |
//!
//! `logsumexp(z) = max(z) + ln Σ exp(z − max(z))`, so every exponent is ≤ 0: logits of ±1e4 give
//! finite losses and gradients.

use crate::{Error, Float, Result};
use nalgebra::{DMatrix, DVectorView};

/// Fused softmax + mean cross-entropy over a batch (one sample per column).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SoftmaxCrossEntropy;

impl SoftmaxCrossEntropy {
    /// Checks that `labels` fit a `classes × batch` matrix of logits.
    pub fn check_labels(classes: usize, batch: usize, labels: &[usize]) -> Result<()> {
        if batch == 0 {
            return Err(Error::EmptyBatch { what: "batch" });
        }
        if labels.len() != batch {
            return Err(Error::shape(
                "labels",
                format!("{batch} labels (one per sample)"),
                format!("{} labels", labels.len()),
            ));
        }
        match labels.iter().position(|&y| y >= classes) {
            Some(index) => Err(Error::LabelOutOfRange { index, label: labels[index], classes }),
            None => Ok(()),
        }
    }

    /// Mean cross-entropy of `logits` (`classes × batch`) against `labels`.
    pub fn loss<T: Float>(&self, logits: &DMatrix<T>, labels: &[usize]) -> Result<T> {
        Self::check_labels(logits.nrows(), logits.ncols(), labels)?;
        Ok(self.run(logits, labels, None))
    }

    /// Mean cross-entropy, and its gradient `(softmax − onehot)/N` written into `grad` (which must
    /// have the shape of `logits`; it is resized if not).
    pub fn loss_and_grad<T: Float>(
        &self,
        logits: &DMatrix<T>,
        labels: &[usize],
        grad: &mut DMatrix<T>,
    ) -> Result<T> {
        Self::check_labels(logits.nrows(), logits.ncols(), labels)?;
        crate::linalg::ensure_shape(grad, logits.nrows(), logits.ncols());
        Ok(self.run(logits, labels, Some(grad)))
    }

    /// Softmax probabilities of each column, in place.
    pub fn softmax_in_place<T: Float>(&self, logits: &mut DMatrix<T>) {
        for mut col in logits.column_iter_mut() {
            let max = column_max(&col.as_view());
            let mut sum = T::zero();
            col.apply(|z| {
                *z = (*z - max).exp();
                sum += *z;
            });
            col /= sum;
        }
    }

    fn run<T: Float>(&self, logits: &DMatrix<T>, labels: &[usize], mut grad: Option<&mut DMatrix<T>>) -> T {
        let n = T::lit(logits.ncols() as f64);
        // Sum in f64: a full-batch loss adds 42000 terms.
        let mut total = 0.0f64;
        for (i, (z, &y)) in logits.column_iter().zip(labels).enumerate() {
            let max = column_max(&z);
            let sum = z.iter().fold(T::zero(), |acc, &v| acc + (v - max).exp());
            let log_sum = sum.ln();
            total += (log_sum + max - z[y]).as_f64();
            if let Some(g) = grad.as_deref_mut() {
                let mut g = g.column_mut(i);
                for (gk, &zk) in g.iter_mut().zip(z.iter()) {
                    *gk = (zk - max - log_sum).exp() / n;
                }
                g[y] -= T::one() / n;
            }
        }
        T::lit(total) / n
    }
}

fn column_max<T: Float>(z: &DVectorView<'_, T>) -> T {
    z.iter().copied().fold(T::min_value().unwrap_or(-T::one()), |m, v| if v > m { v } else { m })
}
