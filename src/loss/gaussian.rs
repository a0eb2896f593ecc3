//! [`GaussianNll`]: the negative log-likelihood of targets under a normal law whose mean and
//! variance the network predicts, for a regression that says how sure it is of each answer.

use super::{Loss, LossValue, PerSampleLoss, SampleLoss, finite_targets, sigmoid};
use crate::error::plural;
use crate::linalg::{ensure_shape, flush_subnormal};
use crate::mean_and_variance::targets_of;
use crate::parallel::{Cols, ColsMut, for_column_blocks};
use crate::{Error, Float, MeanAndVariance, Result};
use nalgebra::DMatrix;

/// The negative log-likelihood of each target under a normal law `N(μ, v)` whose mean and
/// variance the network predicts (PyTorch's `GaussianNLLLoss` with `full=False`, mean
/// reduction, the variance made positive by a softplus as in Lakshminarayanan et al.'s deep
/// ensembles). Where [`MeanSquaredError`](crate::MeanSquaredError) learns the mean alone, this
/// learns the noise around it too, sample by sample: wide where the targets scatter, narrow
/// where they do not.
///
/// For `R` targets the network has `2R` output rows: rows `0..R` the means `μ`, rows `R..2R`
/// the variances' logits `s`, each target's variance `v = softplus(s) + v₀` with `v₀` the
/// [minimum variance](GaussianNll::min_variance). Per target, with `r = μ − t`:
///
/// ```text
/// ℓ = ½·(ln v + r²/v)    (ln 2π/2 left out),    L = (1/(R·N))·Σ ℓ
/// dL/dμ = (r/v)/(R·N)
/// dL/ds = ½·(1 − r²/v)/v · σ(s)/(R·N)           (σ(s) = d softplus(s)/ds)
/// ```
///
/// The softplus is computed without overflow for any finite `s`, and `v ≥ v₀` keeps `r²/v`
/// and `ln v` finite. Targets: a finite matrix of `R` rows. No accuracy. A target whose mean
/// the network finds hard can be left behind a wide variance; [`with_beta`](GaussianNll::with_beta)
/// (β-NLL) keeps such means learning.
/// [`mean_and_variance`](GaussianNll::mean_and_variance) turns outputs into `μ` and `v`;
/// [`link`](GaussianNll::link) is the same as a module, to push after training so that the
/// network answers `μ` and `v` itself. For targets learned in standard units (see
/// [`Standardize`](crate::Standardize)), [`MeanAndVariance::restore`] after the link brings
/// their units back: `σ` on the means, `σ²` on the variances.
///
/// ```
/// use feedforward::{GaussianNll, Loss};
/// use nalgebra::DMatrix;
/// // One target, one sample: mean 1 and variance logit 0, so v = ln 2 + 1e-6; target 3.
/// let nll = GaussianNll::new();
/// let z = DMatrix::<f64>::from_column_slice(2, 1, &[1.0, 0.0]);
/// let t = DMatrix::from_element(1, 1, 3.0);
/// let v = 2f64.ln() + 1e-6;
/// assert!((nll.loss(&z, &t)? - 0.5 * (v.ln() + 4.0 / v)).abs() < 1e-12);
/// let (mean, variance) = nll.mean_and_variance(&z)?;
/// assert_eq!((mean[0], variance[0]), (1.0, v));
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianNll {
    /// The variance from its logit, `softplus(s) + v₀`.
    link: MeanAndVariance,
    /// `β` of β-NLL, 0 for the plain likelihood.
    beta: f64,
}

impl GaussianNll {
    /// The loss with the minimum variance `v₀ = 1e-6` (the value of PyTorch's `eps`, which
    /// clamps the variance where this adds it: a smooth floor, differentiable everywhere).
    #[must_use]
    pub const fn new() -> Self {
        GaussianNll { link: MeanAndVariance::DEFAULT, beta: 0.0 }
    }

    /// The same loss with another minimum variance `v₀`, finite and > 0: the narrowest the
    /// predicted law may get (in the targets' squared units).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a `v₀` not finite or not > 0.
    pub fn with_min_variance(self, min_variance: f64) -> Result<Self> {
        Ok(GaussianNll { link: MeanAndVariance::new(min_variance)?, ..self })
    }

    /// The same loss with each target's term weighted by its variance to the power `β`, in
    /// [0, 1], the weight held fixed in the gradient (Seitzer et al.'s β-NLL, ICLR 2022):
    ///
    /// ```text
    /// ℓ_β = v^β·ℓ,    dℓ_β/dμ = v^β·r/v,    dℓ_β/ds = v^β·½(1 − r²/v)/v·σ(s)
    /// ```
    ///
    /// Under the plain likelihood (`β = 0`) a mean learns at the rate `r/v`: slowly where the
    /// network still says the variance is large, so that a target it finds hard can stay
    /// poorly fitted behind a wide variance. `β = 1` gives the mean the gradient of the squared
    /// error (`r`); `β = 0.5`, the authors' choice, is between. With `β > 0` the gradient is
    /// that of `ℓ_β` with `v^β` a constant, not of `ℓ_β` as a function of `s` (which
    /// [`gradcheck::check_loss`](crate::gradcheck::check_loss) differentiates): the tests check
    /// it against the former.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a `β` outside [0, 1].
    pub fn with_beta(self, beta: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&beta) {
            return Err(Error::InvalidHyperparameter {
                name: "beta",
                value: beta,
                requirement: "must be in [0, 1]",
            });
        }
        Ok(GaussianNll { beta, ..self })
    }

    /// `β` (0 unless [`with_beta`](GaussianNll::with_beta) set it).
    #[must_use]
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// The minimum variance `v₀` added to every predicted variance.
    #[must_use]
    pub fn min_variance(&self) -> f64 {
        self.link.min_variance()
    }

    /// The module that turns a network's outputs into means and variances (with this loss's
    /// `v₀`): push it after training.
    #[must_use]
    pub fn link(&self) -> MeanAndVariance {
        self.link
    }

    /// The means (rows `0..R` of `outputs`, as they are) and the variances
    /// (`softplus(s) + v₀` of rows `R..2R`) of a network's `2R × N` outputs, each `R × N`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for outputs of an odd number of rows, or none.
    pub fn mean_and_variance<T: Float>(&self, outputs: &DMatrix<T>) -> Result<(DMatrix<T>, DMatrix<T>)> {
        let targets = targets_of(outputs.nrows(), "outputs")?;
        let mean = outputs.rows(0, targets).into_owned();
        let variance = outputs.rows(targets, targets).map(|s| self.link.variance(s));
        Ok((mean, variance))
    }

    /// Checks `rows` outputs, a batch of `batch` samples when given, and the targets.
    fn check<T: Float>(&self, rows: usize, batch: Option<usize>, targets: &DMatrix<T>) -> Result<()> {
        let r = targets_of(rows, "outputs")?;
        if targets.nrows() != r {
            return Err(Error::shape(
                "targets",
                format!("{} (one per pair of network outputs, a mean and a variance)", plural(r, "row")),
                plural(targets.nrows(), "row"),
            ));
        }
        finite_targets(r, batch, targets)
    }

    /// One target's `ℓ` and its gradient `(dℓ/dμ, dℓ/ds)`, side by side.
    #[inline]
    fn entry<T: Float>(&self, mu: T, s: T, t: T) -> (T, T, T) {
        let half = T::lit(0.5);
        let v = self.link.variance(s);
        let r = mu - t;
        let w = r * r / v;
        let weight = if self.beta == 0.0 { T::one() } else { v.powf(T::lit(self.beta)) };
        let (loss, d_mean, d_logit) = (half * (v.ln() + w), r / v, half * (T::one() - w) / v * sigmoid(s));
        (weight * loss, weight * d_mean, weight * d_logit)
    }
}

impl Default for GaussianNll {
    /// [`GaussianNll::new`]: `v₀ = 1e-6`.
    fn default() -> Self {
        GaussianNll::new()
    }
}

impl<T: Float> Loss<T> for GaussianNll {
    type Target = DMatrix<T>;

    fn check_targets(&self, outputs: usize, targets: &DMatrix<T>) -> Result<()> {
        self.check(outputs, None, targets)
    }

    fn compute(&self, z: &DMatrix<T>, t: &DMatrix<T>, grad: Option<&mut DMatrix<T>>) -> Result<LossValue<T>> {
        let (rows, batch) = z.shape();
        self.check(rows, Some(batch), t)?;
        let r = rows / 2;
        let count = (r * batch) as f64;
        let scale = T::lit(1.0 / count);
        let data = (
            Cols(z.as_slice(), rows),
            Cols(t.as_slice(), r),
            grad.map(|g| {
                ensure_shape(g, rows, batch);
                ColsMut(g.as_mut_slice(), rows)
            }),
        );
        // Each block sums its samples' terms in f64, added in block order: the same loss on
        // any number of threads.
        let block = |(z, t, g): (Cols<'_, T>, Cols<'_, T>, Option<ColsMut<'_, T>>)| {
            let mut grads = g.map(|g| g.0.chunks_exact_mut(rows));
            let mut total = 0.0f64;
            for (z, t) in z.0.chunks_exact(rows).zip(t.0.chunks_exact(r)) {
                let (mean, logit) = z.split_at(r);
                let mut g = grads.as_mut().and_then(Iterator::next).map(|g| g.split_at_mut(r));
                for k in 0..r {
                    let (loss, d_mean, d_logit) = self.entry(mean[k], logit[k], t[k]);
                    total += loss.as_f64();
                    if let Some((g_mean, g_logit)) = g.as_mut() {
                        g_mean[k] = flush_subnormal(d_mean * scale);
                        g_logit[k] = flush_subnormal(d_logit * scale);
                    }
                }
            }
            total
        };
        let total = for_column_blocks(batch, rows, data, &block, &|a, b| a + b);
        Ok(LossValue { loss: T::lit(total / count), accuracy: None })
    }
}

impl<T: Float> PerSampleLoss<T> for GaussianNll {
    /// Each sample's loss: the mean of its targets' `ℓ`.
    fn sample_losses(&self, z: &DMatrix<T>, t: &DMatrix<T>, losses: &mut Vec<SampleLoss<T>>) -> Result<()> {
        let rows = z.nrows();
        self.check(rows, Some(z.ncols()), t)?;
        let r = rows / 2;
        losses.clear();
        losses.extend(z.as_slice().chunks_exact(rows).zip(t.as_slice().chunks_exact(r)).map(|(z, t)| {
            let (mean, logit) = z.split_at(r);
            let sum = (0..r).map(|k| self.entry(mean[k], logit[k], t[k]).0.as_f64()).sum::<f64>();
            SampleLoss { loss: T::lit(sum / r as f64), count: T::one(), accuracy: None }
        }));
        Ok(())
    }
}
