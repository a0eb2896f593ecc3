//! Sample weights: [`SampleWeighted`] weighs each sample's loss by a weight of its own, carried
//! beside the targets in [`WeightedTargets`].

use crate::error::plural;
use crate::linalg::flush_subnormal;
use crate::loss::{Loss, LossValue, PerSampleLoss, SampleLoss, Targets};
use crate::{Error, Float, Result};
use nalgebra::DMatrix;

/// A loss with a weight per sample: the weighted mean of `L`'s per-sample losses. Its targets
/// are [`WeightedTargets`] of `L`'s.
///
/// With `L`'s per-sample losses `ℓᵢ` and counts `nᵢ` ([`PerSampleLoss`]) and the weights
/// `sᵢ ≥ 0`:
///
/// ```text
/// L = Σᵢ sᵢ·ℓᵢ / Σᵢ sᵢ·nᵢ,    column i of dL/dz = sᵢ·(dℓᵢ/dzᵢ) / Σᵢ sᵢ·nᵢ
/// ```
///
/// a weighted mean (scikit-learn's `sample_weight`): weights of 1 give `L` itself, a weight of
/// 2 counts a sample twice, a weight of 0 leaves it out, and scaling every weight changes
/// nothing. With class weights (`nᵢ = w_yᵢ`) the two multiply. The gradient is `L`'s, column
/// `i` scaled by `sᵢ·Σnᵢ / Σsᵢnᵢ`. A batch whose weights are all 0 has loss 0 and gradient 0
/// (a minibatch can draw only such samples; a whole data set cannot: [`WeightedTargets::new`]
/// refuses it). The accuracy it reports is weighted too, `Σsᵢaᵢ / Σsᵢ` of the samples'
/// [accuracies](SampleLoss::accuracy) (`L`'s own, unweighted, when its samples have none or
/// the weights sum to 0). Each call computes `L`'s per-sample losses besides its mean and
/// gradient, into a vector of the batch's size.
///
/// ```
/// use feedforward::loss::{SampleWeighted, WeightedTargets};
/// use feedforward::{Loss, MeanSquaredError};
/// use nalgebra::DMatrix;
/// let z = DMatrix::from_column_slice(1, 2, &[1.0, 3.0]);
/// let t = DMatrix::zeros(1, 2);
/// // Errors 1 and 9, the second weighted 3 times the first: (1·1 + 3·9) / (1 + 3) = 7.
/// let targets = WeightedTargets::new(&t, vec![1.0, 3.0])?;
/// assert_eq!(SampleWeighted::new(MeanSquaredError).loss(&z, &targets)?, 7.0);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SampleWeighted<L> {
    loss: L,
}

impl<L> SampleWeighted<L> {
    /// `loss`, each sample weighted by the weight its [`WeightedTargets`] give it.
    #[must_use]
    pub const fn new(loss: L) -> Self {
        SampleWeighted { loss }
    }

    /// The loss whose per-sample losses are weighted.
    #[must_use]
    pub fn inner(&self) -> &L {
        &self.loss
    }
}

/// A loss's targets with a weight per sample, each finite and ≥ 0: what [`SampleWeighted`]
/// takes. A minibatch of them (what [`train::fit`](crate::train::fit) gathers) takes its
/// samples' weights along.
///
/// ```
/// use feedforward::loss::WeightedTargets;
/// let labels = vec![0, 2, 1];
/// let targets = WeightedTargets::new(&labels[..], vec![1.0, 0.5, 2.0])?;
/// assert_eq!((targets.targets(), targets.weights()), (&labels[..], &[1.0, 0.5, 2.0][..]));
/// assert!(WeightedTargets::new(&labels[..], vec![1.0, -1.0, 1.0]).is_err());
/// # Ok::<(), feedforward::Error>(())
/// ```
pub struct WeightedTargets<U: Targets + ?Sized> {
    targets: U::Batch,
    weights: Vec<f64>,
}

impl<U: Targets + ?Sized> WeightedTargets<U> {
    /// A copy of `targets` with `weights`, one per sample.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if the counts differ, [`Error::EmptyBatch`] if there are no
    /// samples, [`Error::InvalidSampleWeight`] for a weight that is negative or not finite
    /// (naming its sample) or for weights that are all 0.
    pub fn new(targets: &U, weights: Vec<f64>) -> Result<Self> {
        let samples = targets.samples();
        check_sample_weights(&weights, samples, "weighted targets")?;
        let mut copy = U::Batch::default();
        targets.gather(&(0..samples).collect::<Vec<_>>(), &mut copy);
        Ok(WeightedTargets { targets: copy, weights })
    }

    /// The targets.
    #[must_use]
    pub fn targets(&self) -> &U {
        U::view(&self.targets)
    }

    /// The weight of each sample.
    #[must_use]
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
}

impl<U: Targets + ?Sized> Default for WeightedTargets<U> {
    /// No samples: a minibatch buffer to gather into.
    fn default() -> Self {
        WeightedTargets { targets: U::Batch::default(), weights: Vec::new() }
    }
}

impl<U: Targets + ?Sized> Clone for WeightedTargets<U>
where
    U::Batch: Clone,
{
    fn clone(&self) -> Self {
        WeightedTargets { targets: self.targets.clone(), weights: self.weights.clone() }
    }
}

impl<U: Targets + ?Sized> std::fmt::Debug for WeightedTargets<U>
where
    U::Batch: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightedTargets")
            .field("targets", &self.targets)
            .field("weights", &self.weights)
            .finish()
    }
}

impl<U: Targets + ?Sized> Targets for WeightedTargets<U> {
    type Batch = WeightedTargets<U>;

    fn samples(&self) -> usize {
        self.weights.len()
    }

    fn gather(&self, indices: &[usize], batch: &mut Self::Batch) {
        self.targets().gather(indices, &mut batch.targets);
        batch.weights.clear();
        batch.weights.extend(indices.iter().map(|&i| self.weights[i]));
    }

    fn view(batch: &Self::Batch) -> &Self {
        batch
    }
}

/// Refuses weights that are not one per sample of `samples` (at least one, of `what`), a
/// weight that is negative or not finite, and weights that are all 0: what a weighted mean
/// needs, for a loss as for a metric.
pub(crate) fn check_sample_weights(weights: &[f64], samples: usize, what: &'static str) -> Result<()> {
    check_count(weights, samples)?;
    if samples == 0 {
        return Err(Error::EmptyBatch { what });
    }
    if let Some(sample) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(Error::InvalidSampleWeight { sample: Some(sample), value: weights[sample] });
    }
    if weights.iter().all(|&w| w == 0.0) {
        return Err(Error::InvalidSampleWeight { sample: None, value: 0.0 });
    }
    Ok(())
}

/// Refuses weights that are not one per sample.
fn check_count(weights: &[f64], samples: usize) -> Result<()> {
    if weights.len() == samples {
        return Ok(());
    }
    Err(Error::shape(
        "sample weights",
        format!("{} (one per sample)", plural(samples, "weight")),
        plural(weights.len(), "weight"),
    ))
}

/// `loss`'s per-sample losses of `outputs`, after checking that the weights are one per column.
fn inner_samples<T: Float, L: PerSampleLoss<T>>(
    loss: &L,
    outputs: &DMatrix<T>,
    targets: &WeightedTargets<L::Target>,
) -> Result<Vec<SampleLoss<T>>> {
    let batch = outputs.ncols();
    check_count(&targets.weights, batch)?;
    let mut samples = Vec::with_capacity(batch);
    loss.sample_losses(outputs, targets.targets(), &mut samples)?;
    Ok(samples)
}

impl<T: Float, L: PerSampleLoss<T>> Loss<T> for SampleWeighted<L> {
    type Target = WeightedTargets<L::Target>;

    fn check_targets(&self, outputs: usize, targets: &Self::Target) -> Result<()> {
        self.loss.check_targets(outputs, targets.targets())
    }

    fn compute(
        &self,
        outputs: &DMatrix<T>,
        targets: &Self::Target,
        mut grad: Option<&mut DMatrix<T>>,
    ) -> Result<LossValue<T>> {
        let samples = inner_samples(&self.loss, outputs, targets)?;
        let inner = self.loss.compute(outputs, targets.targets(), grad.as_deref_mut())?;
        let weights = &targets.weights;
        let count: f64 = samples.iter().map(|s| s.count.as_f64()).sum();
        let weighted_count: f64 = samples.iter().zip(weights).map(|(s, w)| w * s.count.as_f64()).sum();
        let weighted_loss: f64 = samples.iter().zip(weights).map(|(s, w)| w * s.loss.as_f64()).sum();
        if weighted_count == 0.0 {
            if let Some(g) = grad {
                g.fill(T::zero());
            }
            return Ok(LossValue { loss: T::zero(), accuracy: inner.accuracy });
        }
        let accuracy = weighted_accuracy(&samples, weights).or(inner.accuracy);
        if let Some(g) = grad {
            let rows = outputs.nrows();
            for (column, w) in g.as_mut_slice().chunks_exact_mut(rows.max(1)).zip(weights) {
                let scale = T::lit(w * count / weighted_count);
                column.iter_mut().for_each(|v| *v = flush_subnormal(*v * scale));
            }
        }
        Ok(LossValue { loss: T::lit(weighted_loss / weighted_count), accuracy })
    }
}

/// `Σsᵢaᵢ / Σsᵢ` of the samples' accuracies `aᵢ`, when each has one and the weights do not sum
/// to 0.
fn weighted_accuracy<T: Float>(samples: &[SampleLoss<T>], weights: &[f64]) -> Option<f64> {
    let (mut right, mut total) = (0.0, 0.0);
    for (s, &w) in samples.iter().zip(weights) {
        right += w * s.accuracy?;
        total += w;
    }
    (total > 0.0).then(|| right / total)
}

impl<T: Float, L: PerSampleLoss<T>> PerSampleLoss<T> for SampleWeighted<L> {
    /// `sᵢ·ℓᵢ` and `sᵢ·nᵢ`.
    fn sample_losses(
        &self,
        outputs: &DMatrix<T>,
        targets: &Self::Target,
        losses: &mut Vec<SampleLoss<T>>,
    ) -> Result<()> {
        let samples = inner_samples(&self.loss, outputs, targets)?;
        losses.clear();
        losses.extend(samples.iter().zip(&targets.weights).map(|(s, &w)| SampleLoss {
            loss: T::lit(w) * s.loss,
            count: T::lit(w) * s.count,
            ..*s
        }));
        Ok(())
    }
}
