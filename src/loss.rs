//! [`SoftmaxCrossEntropy`]: softmax over each column of logits fused with the mean
//! cross-entropy against integer labels.
//!
//! | | forward | backward |
//! |---|---|---|
//! | per sample `i` | `ℓᵢ = logsumexp(zᵢ) − zᵢ[yᵢ]`, `L = (1/N)·Σℓᵢ` | `dL/dzᵢ = (softmax(zᵢ) − onehot(yᵢ))/N` |
//!
//! `logsumexp(z) = max(z) + ln Σ exp(z − max(z))`, so every exponent is ≤ 0: logits of ±1e4 give
//! finite losses and gradients.

use crate::parallel::{Cols, ColsMut, for_column_blocks};
use crate::{Error, Float, Result};
use nalgebra::DMatrix;

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
        Ok(self.loss_and_correct(logits, labels, None)?.0)
    }

    /// Mean cross-entropy, and its gradient `(softmax − onehot)/N` written into `grad` (which must
    /// have the shape of `logits`; it is resized if not).
    pub fn loss_and_grad<T: Float>(
        &self,
        logits: &DMatrix<T>,
        labels: &[usize],
        grad: &mut DMatrix<T>,
    ) -> Result<T> {
        Ok(self.loss_and_correct(logits, labels, Some(grad))?.0)
    }

    /// Softmax probabilities of each column, in place.
    pub fn softmax_in_place<T: Float>(&self, logits: &mut DMatrix<T>) {
        let classes = logits.nrows();
        if classes == 0 {
            return;
        }
        for col in logits.as_mut_slice().chunks_exact_mut(classes) {
            let (_, max) = column_max(col);
            let mut sum = T::zero();
            for z in col.iter_mut() {
                *z = (*z - max).exp();
                sum += *z;
            }
            col.iter_mut().for_each(|z| *z /= sum);
        }
    }

    /// The mean loss, its gradient into `grad` when given (resized if needed), and how many
    /// columns have their largest logit (the first, on ties) at the label: the accuracy comes
    /// free with the loss's maxima.
    pub(crate) fn loss_and_correct<T: Float>(
        &self,
        logits: &DMatrix<T>,
        labels: &[usize],
        grad: Option<&mut DMatrix<T>>,
    ) -> Result<(T, usize)> {
        let (classes, batch) = logits.shape();
        Self::check_labels(classes, batch, labels)?;
        let n = T::lit(batch as f64);
        let data = (
            Cols(logits.as_slice(), classes),
            Cols(labels, 1),
            grad.map(|g| {
                crate::linalg::ensure_shape(g, classes, batch);
                ColsMut(g.as_mut_slice(), classes)
            }),
        );
        // Each block returns its samples' summed loss, in f64 (a full batch adds 42000 terms),
        // and its count of correct argmaxes.
        let block = |(z, y, g): (Cols<'_, T>, Cols<'_, usize>, Option<ColsMut<'_, T>>)| {
            let (mut total, mut correct) = (0.0f64, 0);
            let mut grads = g.map(|g| g.0.chunks_exact_mut(classes));
            for (z, &y) in z.0.chunks_exact(classes).zip(y.0) {
                let (argmax, max) = column_max(z);
                correct += usize::from(argmax == y);
                // Σ exp(z − max), each exponential computed once: kept in the gradient column
                // when there is one (exp dominates this loop's cost).
                let sum = match grads.as_mut().and_then(Iterator::next) {
                    Some(g) => {
                        let mut sum = T::zero();
                        for (gk, &zk) in g.iter_mut().zip(z) {
                            *gk = (zk - max).exp();
                            sum += *gk;
                        }
                        let scale = T::one() / (sum * n);
                        g.iter_mut().for_each(|gk| *gk *= scale);
                        g[y] -= T::one() / n;
                        sum
                    }
                    None => z.iter().fold(T::zero(), |acc, &v| acc + (v - max).exp()),
                };
                total += (sum.ln() + max - z[y]).as_f64();
            }
            (total, correct)
        };
        let (total, correct) =
            for_column_blocks(batch, classes, data, &block, &|a, b| (a.0 + b.0, a.1 + b.1));
        Ok((T::lit(total) / n, correct))
    }
}

/// Index and value of the largest entry of a non-empty column (the first, on ties): the
/// predicted class of [`Network::predict`](crate::Network::predict) and the accuracy.
pub(crate) fn column_max<T: Float>(z: &[T]) -> (usize, T) {
    let mut best = (0, z[0]);
    for (k, &v) in z.iter().enumerate().skip(1) {
        if v > best.1 {
            best = (k, v);
        }
    }
    best
}
