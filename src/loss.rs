//! The [`Loss`] trait, its [`Targets`], and the built-in losses.
//!
//! A loss maps a network's outputs (`outputs × batch`, one sample per column) and the batch's
//! targets to a scalar, the mean over the batch, and writes `dL/d outputs` for the backward
//! pass. Each built-in states its forward and its gradient side by side:
//!
//! | loss | targets | per sample / entry | `dL/dz` |
//! |---|---|---|---|
//! | [`SoftmaxCrossEntropy`] | class indices `[usize]` | `ℓᵢ = logsumexp(zᵢ) − Σₖ qᵢₖ zᵢₖ`, `q` the (smoothed) one-hot of `yᵢ`; `L = (1/N)Σℓᵢ` (class weights: see the type) | `(softmax(zᵢ) − qᵢ)/N` |
//! | [`MeanSquaredError`] | a matrix shaped like the outputs | `(z − t)²`, mean over all `R·N` entries | `2(z − t)/(R·N)` |
//! | [`SoftTargetCrossEntropy`] | a matrix of probabilities in [0, 1], a distribution per sample | `ℓᵢ = Σₖ tᵢₖ(logsumexp(zᵢ) − zᵢₖ)`; `L = (1/N)Σℓᵢ` | `(Tᵢ·softmax(zᵢ) − tᵢ)/N`, `Tᵢ = Σₖ tᵢₖ` |
//! | [`BinaryCrossEntropy`] | a matrix of probabilities in [0, 1] | `softplus(z) − t·z`, mean over all entries (positive weights: see the type) | `(σ(z) − t)/(R·N)` |
//! | [`Huber`] | a matrix shaped like the outputs | `r²/2` if `\|r\| ≤ δ`, else `δ(\|r\| − δ/2)`, `r = z − t`; mean over all entries | `clamp(r, −δ, δ)/(R·N)` |
//! | [`MeanAbsoluteError`] | a matrix shaped like the outputs | `\|z − t\|`, mean over all entries | `sign(z − t)/(R·N)` (0 at `z = t`) |
//! | [`Quantile`] (`τ` per output row) | a matrix shaped like the outputs | `τ·r` if `r ≥ 0`, else `(τ − 1)·r`, `r = t − z`; mean over all entries | `−τ` if `t > z`, `1 − τ` if `t < z`, 0 at `t = z`; `/(R·N)` |
//! | [`Poisson`] | a matrix of counts ≥ 0 | `eᶻ − t·z` (`z` the log-rate), mean over all entries | `(eᶻ − t)/(R·N)` |
//! | [`GaussianNll`] (`loss/gaussian.rs`) | a finite matrix, half as many rows as the outputs | `½(ln v + r²/v)`, `r = μ − t`, `v = softplus(s) + v₀` (rows `μ` then `s`); mean over all `R·N` targets | `μ`: `(r/v)/(R·N)`; `s`: `½(1 − r²/v)/v·σ(s)/(R·N)` |
//!
//! Every exponential in the classification losses is of a non-positive number (`logsumexp(z) =
//! max(z) + ln Σ exp(z − max z)`, `softplus(z) = max(z, 0) + ln(1 + exp(−|z|))`), so logits of
//! ±1e4 give finite losses and gradients. [`Poisson`]'s `eᶻ` is PyTorch's, unclamped.
//!
//! Every built-in is also a [`PerSampleLoss`]: it gives each sample's loss (PyTorch's
//! `reduction="none"`, [`Network::sample_losses`](crate::Network::sample_losses)), so that
//! [`SampleWeighted`] can weigh each sample by a weight of its own ([`WeightedTargets`]).
//!
//! A loss of your own implements [`Loss`] (see `tests/custom_loss.rs`, log-cosh trained through
//! [`train::fit`](crate::train::fit)).

mod gaussian;
mod weighted;

pub use gaussian::GaussianNll;
pub(crate) use weighted::check_sample_weights;
pub use weighted::{SampleWeighted, WeightedTargets};

use crate::error::plural;
use crate::linalg::{LANES, ensure_shape, flush_subnormal, simd};
use crate::parallel::{Cols, ColsMut, for_column_blocks};
use crate::{Error, Float, Result};
use nalgebra::DMatrix;

/// What a batch's targets are: a type that knows its number of samples and can copy a subset of
/// them (a minibatch) into a reusable buffer, for [`train::fit`](crate::train::fit).
///
/// Implemented for class labels (`[usize]`) and for matrices with one target column per sample
/// (`DMatrix<T>`).
pub trait Targets {
    /// A reusable buffer holding a minibatch of targets.
    type Batch: Default + Send;

    /// Number of samples.
    fn samples(&self) -> usize;

    /// Copies the samples at `indices` (each `< samples()`) into `batch`, in that order,
    /// reusing its memory.
    ///
    /// # Panics
    /// If an index is out of range (a caller's bug: [`train::fit`](crate::train::fit) only
    /// passes indices it made).
    fn gather(&self, indices: &[usize], batch: &mut Self::Batch);

    /// The targets held in `batch`.
    fn view(batch: &Self::Batch) -> &Self;
}

impl Targets for [usize] {
    type Batch = Vec<usize>;

    fn samples(&self) -> usize {
        self.len()
    }

    fn gather(&self, indices: &[usize], batch: &mut Vec<usize>) {
        batch.clear();
        batch.extend(indices.iter().map(|&i| self[i]));
    }

    fn view(batch: &Vec<usize>) -> &Self {
        batch
    }
}

impl<T: Float> Targets for DMatrix<T> {
    type Batch = DMatrix<T>;

    fn samples(&self) -> usize {
        self.ncols()
    }

    fn gather(&self, indices: &[usize], batch: &mut DMatrix<T>) {
        crate::train::gather_columns(self, indices, batch);
    }

    fn view(batch: &DMatrix<T>) -> &Self {
        batch
    }
}

/// What a loss measured on a batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossValue<T> {
    /// The mean loss over the batch.
    pub loss: T,
    /// Fraction of correct predictions in [0, 1], for losses where that means something
    /// (classification); `None` otherwise.
    pub accuracy: Option<f64>,
}

/// A training objective: a scalar from a batch of outputs and their targets, and its gradient.
///
/// [`Network`](crate::Network) calls [`compute`](Loss::compute) once per step with the batch's
/// outputs and a gradient buffer of the same shape. Implement it for a loss of your own; the
/// gradient can be proven with [`gradcheck::check_loss`](crate::gradcheck::check_loss).
pub trait Loss<T: Float>: std::fmt::Debug + Sync {
    /// The targets of a batch: `[usize]` for class indices, `DMatrix<T>` for one column per
    /// sample, or a type of your own.
    type Target: Targets + ?Sized;

    /// Checks that `targets` suit a network with `outputs` output rows, naming the first bad
    /// sample by its position in `targets`. [`train::fit`](crate::train::fit) calls it once on
    /// the whole training set, so an error points into the data set rather than into a shuffled
    /// minibatch. Default: accepts everything ([`compute`](Loss::compute) must then check).
    fn check_targets(&self, outputs: usize, targets: &Self::Target) -> Result<()> {
        let _ = (outputs, targets);
        Ok(())
    }

    /// The mean loss of `outputs` (`rows × batch`) against `targets`, and, when `grad` is given
    /// (same shape as `outputs`), **overwrites** it with `dL/d outputs`. Returns an error, and
    /// leaves `grad` unspecified, when the targets do not fit: wrong count, wrong shape, a label
    /// out of range, a value the loss cannot take.
    fn compute(
        &self,
        outputs: &DMatrix<T>,
        targets: &Self::Target,
        grad: Option<&mut DMatrix<T>>,
    ) -> Result<LossValue<T>>;

    /// The mean loss alone.
    fn loss(&self, outputs: &DMatrix<T>, targets: &Self::Target) -> Result<T> {
        Ok(self.compute(outputs, targets, None)?.loss)
    }

    /// The mean loss, with its gradient written into `grad` (resized to the shape of
    /// `outputs` if needed).
    fn loss_and_grad(
        &self,
        outputs: &DMatrix<T>,
        targets: &Self::Target,
        grad: &mut DMatrix<T>,
    ) -> Result<T> {
        ensure_shape(grad, outputs.nrows(), outputs.ncols());
        Ok(self.compute(outputs, targets, Some(grad))?.loss)
    }
}

/// A reference to a loss is the loss: `SampleWeighted::new(&loss)` wraps a loss without
/// moving it, `&dyn Loss<T, Target = …>` included.
impl<T: Float, L: Loss<T> + ?Sized> Loss<T> for &L {
    type Target = L::Target;

    fn check_targets(&self, outputs: usize, targets: &Self::Target) -> Result<()> {
        (**self).check_targets(outputs, targets)
    }

    fn compute(
        &self,
        outputs: &DMatrix<T>,
        targets: &Self::Target,
        grad: Option<&mut DMatrix<T>>,
    ) -> Result<LossValue<T>> {
        (**self).compute(outputs, targets, grad)
    }
}

impl<T: Float, L: PerSampleLoss<T> + ?Sized> PerSampleLoss<T> for &L {
    fn sample_losses(
        &self,
        outputs: &DMatrix<T>,
        targets: &Self::Target,
        losses: &mut Vec<SampleLoss<T>>,
    ) -> Result<()> {
        (**self).sample_losses(outputs, targets, losses)
    }
}

/// One sample's part of a loss over a batch: `L = Σᵢ lossᵢ / Σᵢ countᵢ`, and of its accuracy.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SampleLoss<T> {
    /// The sample's loss `ℓᵢ`, from its own column of outputs and its own target (PyTorch's
    /// `reduction="none"`).
    pub loss: T,
    /// What the sample adds to the mean's denominator: 1, or its label's class weight for a
    /// loss that weighs classes ([`SoftmaxCrossEntropy::with_class_weights`]).
    pub count: T,
    /// For a loss that classifies, the share of the sample's decisions that are right: 1 or 0
    /// for a class label, the share of its entries for yes/no labels
    /// ([`BinaryCrossEntropy`]); the batch's [`LossValue::accuracy`] is their mean. `None` for
    /// a loss that does not classify.
    pub accuracy: Option<f64>,
}

/// A loss that is a mean of per-sample terms: sample `i`'s loss `ℓᵢ` reads column `i` of the
/// outputs and its own target alone, and over a batch
///
/// ```text
/// L = Σᵢ ℓᵢ / Σᵢ nᵢ,    column i of dL/dz = (dℓᵢ/dzᵢ) / Σᵢ nᵢ
/// ```
///
/// with `nᵢ` the sample's [`count`](SampleLoss::count) (1 unless the loss weighs classes). Every
/// built-in loss is one. It is what [`SampleWeighted`] needs to weigh samples, and what
/// [`Network::sample_losses`](crate::Network::sample_losses) reports (which samples the model
/// gets most wrong). A loss of your own implements it next to [`Loss`] (see
/// `tests/custom_loss.rs`).
pub trait PerSampleLoss<T: Float>: Loss<T> {
    /// Overwrites `losses` with one [`SampleLoss`] per column of `outputs`, in order. Errors as
    /// [`compute`](Loss::compute) does.
    fn sample_losses(
        &self,
        outputs: &DMatrix<T>,
        targets: &Self::Target,
        losses: &mut Vec<SampleLoss<T>>,
    ) -> Result<()>;
}

/// Fused softmax + mean cross-entropy over class-index targets, with optional label smoothing
/// and class weights (PyTorch's `CrossEntropyLoss`, mean reduction).
///
/// With smoothing `ε` and `K` classes the target distribution of a sample with label `y` is
/// `q = (1 − ε)·onehot(y) + ε/K` (PyTorch's `label_smoothing`); `ε = 0` is plain cross-entropy.
/// With class weights `w` (PyTorch's `weight`) each class's term is weighted and the mean is
/// taken over the weights of the batch's labels:
///
/// ```text
/// ℓᵢ = Σₖ wₖ·qᵢₖ·(logsumexp(zᵢ) − zᵢₖ),   L = Σᵢ ℓᵢ / Σᵢ w_yᵢ
/// dL/dzᵢₖ = (Aᵢ·softmax(zᵢ)ₖ − wₖ·qᵢₖ) / Σᵢ w_yᵢ,   Aᵢ = Σₖ wₖ·qᵢₖ
/// ```
///
/// which is the unweighted mean when every `w` is 1. Accuracy: the share of samples whose
/// largest logit (the first, on ties) is at the label, unweighted.
///
/// ```
/// use feedforward::{Loss, SoftmaxCrossEntropy};
/// use nalgebra::DMatrix;
/// // Two classes with equal logits: the loss is ln 2, whatever the label.
/// let loss = SoftmaxCrossEntropy::new().loss(&DMatrix::<f64>::zeros(2, 1), &[1])?;
/// assert!((loss - 2f64.ln()).abs() < 1e-12);
/// // Class 1 is rare: count each of its samples as 4.
/// let weighted = SoftmaxCrossEntropy::new().with_class_weights(vec![1.0, 4.0])?;
/// assert_eq!(weighted.class_weights(), Some(&[1.0, 4.0][..]));
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SoftmaxCrossEntropy {
    label_smoothing: f64,
    class_weights: Option<Vec<f64>>,
}

impl SoftmaxCrossEntropy {
    /// Plain softmax cross-entropy (no label smoothing, every class weighing 1).
    #[must_use]
    pub const fn new() -> Self {
        SoftmaxCrossEntropy { label_smoothing: 0.0, class_weights: None }
    }

    /// The same loss against labels smoothed by `epsilon`, in [0, 1) (PyTorch's
    /// `label_smoothing`; default 0).
    ///
    /// ```
    /// use feedforward::SoftmaxCrossEntropy;
    /// let loss = SoftmaxCrossEntropy::new().with_class_weights(vec![1.0, 3.0])?.with_label_smoothing(0.1)?;
    /// assert_eq!((loss.label_smoothing(), loss.class_weights()), (0.1, Some(&[1.0, 3.0][..])));
    /// assert!(SoftmaxCrossEntropy::new().with_label_smoothing(1.0).is_err());
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn with_label_smoothing(self, epsilon: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&epsilon) {
            return Err(Error::InvalidHyperparameter {
                name: "label smoothing",
                value: epsilon,
                requirement: "must be in [0, 1)",
            });
        }
        Ok(SoftmaxCrossEntropy { label_smoothing: epsilon, ..self })
    }

    /// The same loss with a weight per class (one per output row), each finite and > 0: a rare
    /// class weighted up counts for more in the loss and its gradient. (PyTorch also takes 0 to
    /// leave a class out; here, drop its samples instead, so that no batch can have nothing
    /// to average over.)
    pub fn with_class_weights(self, weights: Vec<f64>) -> Result<Self> {
        check_weight_values(&weights, "class weights", "class weight")?;
        Ok(SoftmaxCrossEntropy { class_weights: Some(weights), ..self })
    }

    /// The label smoothing `ε`.
    #[must_use]
    pub fn label_smoothing(&self) -> f64 {
        self.label_smoothing
    }

    /// The class weights, if any.
    #[must_use]
    pub fn class_weights(&self) -> Option<&[f64]> {
        self.class_weights.as_deref()
    }

    /// Checks that `labels` fit a `classes × batch` matrix of logits.
    pub fn check_labels(classes: usize, batch: usize, labels: &[usize]) -> Result<()> {
        if batch == 0 {
            return Err(Error::EmptyBatch { what: "batch" });
        }
        if labels.len() != batch {
            return Err(Error::shape(
                "labels",
                format!("{} (one per sample)", plural(batch, "label")),
                plural(labels.len(), "label"),
            ));
        }
        check_label_range(classes, labels)
    }

    /// Softmax probabilities of each column, in place.
    pub fn softmax_in_place<T: Float>(logits: &mut DMatrix<T>) {
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
}

/// Checks a loss's weights (`list`, one `each` per output row) as given: at least one, each
/// finite and > 0.
fn check_weight_values(weights: &[f64], list: &'static str, each: &'static str) -> Result<()> {
    if weights.is_empty() {
        return Err(Error::shape(list, "one per output row", "none"));
    }
    match weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        Some(&w) => {
            Err(Error::InvalidHyperparameter { name: each, value: w, requirement: "must be finite and > 0" })
        }
        None => Ok(()),
    }
}

/// Checks that a loss's weights, if any, are one per output row.
fn check_weight_count(weights: Option<&[f64]>, rows: usize, list: &'static str) -> Result<()> {
    match weights {
        Some(w) if w.len() != rows => Err(Error::shape(
            list,
            format!("{} (one per output row)", plural(rows, "weight")),
            plural(w.len(), "weight"),
        )),
        _ => Ok(()),
    }
}

fn check_label_range(classes: usize, labels: &[usize]) -> Result<()> {
    match labels.iter().position(|&y| y >= classes) {
        Some(index) => Err(Error::LabelOutOfRange { index, label: labels[index], classes }),
        None => Ok(()),
    }
}

/// One batch's cross-entropy settings: the smoothed target `q = on·onehot(y) + off` and the
/// class weights, giving each sample's loss from its `logsumexp`.
struct CrossEntropyTerms<'a> {
    weights: Option<&'a [f64]>,
    /// `ε/K` on every class.
    off: f64,
    /// `1 − ε` more at the label.
    on: f64,
    /// `Σₖ wₖ` (`K` unweighted).
    class_weight_sum: f64,
}

impl<'a> CrossEntropyTerms<'a> {
    fn new(loss: &'a SoftmaxCrossEntropy, classes: usize) -> Self {
        let weights = loss.class_weights.as_deref();
        let eps = loss.label_smoothing;
        CrossEntropyTerms {
            weights,
            off: eps / classes as f64,
            on: 1.0 - eps,
            class_weight_sum: weights.map_or(classes as f64, |w| w.iter().sum()),
        }
    }

    fn weight(&self, k: usize) -> f64 {
        self.weights.map_or(1.0, |w| w[k])
    }

    /// `A = Σₖ wₖqₖ` for label `y`: exactly 1 unweighted.
    fn mass(&self, y: usize) -> f64 {
        if self.weights.is_some() { self.on * self.weight(y) + self.off * self.class_weight_sum } else { 1.0 }
    }

    /// `ℓ = Σₖ wₖqₖ(logsumexp − zₖ) = A·logsumexp − (1 − ε)·w_y·z_y − (ε/K)·Σₖ wₖzₖ`.
    fn loss<T: Float>(&self, z: &[T], y: usize, logsumexp: f64) -> f64 {
        let mut loss = self.mass(y) * logsumexp - self.on * self.weight(y) * z[y].as_f64();
        if self.off != 0.0 {
            loss -= self.off * z.iter().enumerate().map(|(k, v)| self.weight(k) * v.as_f64()).sum::<f64>();
        }
        loss
    }
}

impl<T: Float> Loss<T> for SoftmaxCrossEntropy {
    type Target = [usize];

    fn check_targets(&self, outputs: usize, labels: &[usize]) -> Result<()> {
        check_weight_count(self.class_weights.as_deref(), outputs, "class weights")?;
        check_label_range(outputs, labels)
    }

    fn compute(
        &self,
        logits: &DMatrix<T>,
        labels: &[usize],
        grad: Option<&mut DMatrix<T>>,
    ) -> Result<LossValue<T>> {
        let (classes, batch) = logits.shape();
        Self::check_labels(classes, batch, labels)?;
        check_weight_count(self.class_weights.as_deref(), classes, "class weights")?;
        let terms = CrossEntropyTerms::new(self, classes);
        // The denominator Σ w_y (the batch size when unweighted).
        let total_weight = match terms.weights {
            Some(w) => labels.iter().map(|&y| w[y]).sum(),
            None => batch as f64,
        };
        let n = T::lit(total_weight);
        let (off, on) = (T::lit(terms.off), T::lit(terms.on));
        let data = (
            Cols(logits.as_slice(), classes),
            Cols(labels, 1),
            grad.map(|g| {
                ensure_shape(g, classes, batch);
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
                        let scale = T::lit(terms.mass(y)) / (sum * n);
                        if terms.off == 0.0 {
                            g.iter_mut().for_each(|gk| *gk = flush_subnormal(*gk * scale));
                        } else {
                            for (k, gk) in g.iter_mut().enumerate() {
                                *gk = flush_subnormal(*gk * scale - off * T::lit(terms.weight(k)) / n);
                            }
                        }
                        g[y] -= on * T::lit(terms.weight(y)) / n;
                        sum
                    }
                    None => sum_exp(z, max),
                };
                total += terms.loss(z, y, (sum.ln() + max).as_f64());
            }
            (total, correct)
        };
        let (total, correct) =
            for_column_blocks(batch, classes, data, &block, &|a, b| (a.0 + b.0, a.1 + b.1));
        Ok(LossValue { loss: T::lit(total / total_weight), accuracy: Some(correct as f64 / batch as f64) })
    }
}

impl<T: Float> PerSampleLoss<T> for SoftmaxCrossEntropy {
    fn sample_losses(
        &self,
        logits: &DMatrix<T>,
        labels: &[usize],
        losses: &mut Vec<SampleLoss<T>>,
    ) -> Result<()> {
        let classes = logits.nrows();
        Self::check_labels(classes, logits.ncols(), labels)?;
        check_weight_count(self.class_weights.as_deref(), classes, "class weights")?;
        let terms = CrossEntropyTerms::new(self, classes);
        losses.clear();
        losses.extend(logits.as_slice().chunks_exact(classes).zip(labels).map(|(z, &y)| {
            let (argmax, max) = column_max(z);
            let loss = terms.loss(z, y, (sum_exp(z, max).ln() + max).as_f64());
            let accuracy = Some(if argmax == y { 1.0 } else { 0.0 });
            SampleLoss { loss: T::lit(loss), count: T::lit(terms.weight(y)), accuracy }
        }));
        Ok(())
    }
}

/// `Σ exp(z − max)` of a column whose largest entry is `max`.
fn sum_exp<T: Float>(z: &[T], max: T) -> T {
    z.iter().fold(T::zero(), |s, &v| s + (v - max).exp())
}

/// Fused softmax + mean cross-entropy against a target distribution per sample (soft targets:
/// a teacher's probabilities in knowledge distillation, mixed one-hot codes in mixup, the
/// shares of annotators' votes), as PyTorch's `CrossEntropyLoss` takes probabilities. Targets
/// are a matrix shaped like the logits, each entry in [0, 1]:
///
/// ```text
/// ℓᵢ = Σₖ tᵢₖ·(logsumexp(zᵢ) − zᵢₖ),   L = (1/N)·Σᵢ ℓᵢ
/// dL/dzᵢₖ = (Tᵢ·softmax(zᵢ)ₖ − tᵢₖ)/N,   Tᵢ = Σₖ tᵢₖ
/// ```
///
/// For a one-hot `tᵢ` it is [`SoftmaxCrossEntropy`]'s loss and gradient. A column that sums to
/// more or less than 1 weighs its sample by that sum (as PyTorch does; nothing is normalized).
/// Accuracy: the share of samples whose largest logit is at their target's largest entry (the
/// first, on ties, for both).
///
/// ```
/// use feedforward::{Loss, SoftTargetCrossEntropy};
/// use nalgebra::DMatrix;
/// // Logits that match the target distribution: the loss is its entropy.
/// let t = DMatrix::from_column_slice(2, 1, &[0.25, 0.75]);
/// let z = t.map(f64::ln);
/// let entropy = -(0.25 * 0.25f64.ln() + 0.75 * 0.75f64.ln());
/// assert!((SoftTargetCrossEntropy.loss(&z, &t)? - entropy).abs() < 1e-12);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SoftTargetCrossEntropy;

impl<T: Float> Loss<T> for SoftTargetCrossEntropy {
    type Target = DMatrix<T>;

    fn check_targets(&self, outputs: usize, targets: &DMatrix<T>) -> Result<()> {
        check_matrix_targets(outputs, None, targets, is_probability, PROBABILITY)
    }

    fn compute(&self, z: &DMatrix<T>, t: &DMatrix<T>, grad: Option<&mut DMatrix<T>>) -> Result<LossValue<T>> {
        let (classes, batch) = z.shape();
        check_matrix_targets(classes, Some(batch), t, is_probability, PROBABILITY)?;
        let n = T::lit(batch as f64);
        let data = matrix_columns(z, t, grad);
        // Each block returns its samples' summed loss, in f64, and its count of agreeing argmaxes.
        let block = |(z, t, g): MatrixColumns<'_, T>| {
            let (mut total, mut agree) = (0.0f64, 0);
            let mut grads = g.map(|g| g.0.chunks_exact_mut(classes));
            for (z, t) in z.0.chunks_exact(classes).zip(t.0.chunks_exact(classes)) {
                let ((argmax, max), (target, _)) = (column_max(z), column_max(t));
                agree += usize::from(argmax == target);
                let mass = t.iter().fold(T::zero(), |s, &v| s + v);
                // Σ exp(z − max), each exponential computed once: kept in the gradient column
                // when there is one.
                let sum = match grads.as_mut().and_then(Iterator::next) {
                    Some(g) => {
                        let mut sum = T::zero();
                        for (gk, &zk) in g.iter_mut().zip(z) {
                            *gk = (zk - max).exp();
                            sum += *gk;
                        }
                        let scale = mass / (sum * n);
                        g.iter_mut().zip(t).for_each(|(gk, &tk)| *gk = flush_subnormal(*gk * scale - tk / n));
                        sum
                    }
                    None => sum_exp(z, max),
                };
                total += soft_target_loss(z, t, mass, (sum.ln() + max).as_f64());
            }
            (total, agree)
        };
        let (total, agree) = for_column_blocks(batch, classes, data, &block, &|a, b| (a.0 + b.0, a.1 + b.1));
        Ok(LossValue { loss: T::lit(total / batch as f64), accuracy: Some(agree as f64 / batch as f64) })
    }
}

impl<T: Float> PerSampleLoss<T> for SoftTargetCrossEntropy {
    fn sample_losses(&self, z: &DMatrix<T>, t: &DMatrix<T>, losses: &mut Vec<SampleLoss<T>>) -> Result<()> {
        let (classes, batch) = z.shape();
        check_matrix_targets(classes, Some(batch), t, is_probability, PROBABILITY)?;
        losses.clear();
        losses.extend(z.as_slice().chunks_exact(classes).zip(t.as_slice().chunks_exact(classes)).map(
            |(z, t)| {
                let ((argmax, max), (target, _)) = (column_max(z), column_max(t));
                let mass = t.iter().fold(T::zero(), |s, &v| s + v);
                let loss = soft_target_loss(z, t, mass, (sum_exp(z, max).ln() + max).as_f64());
                let accuracy = Some(if argmax == target { 1.0 } else { 0.0 });
                SampleLoss { loss: T::lit(loss), count: T::one(), accuracy }
            },
        ));
        Ok(())
    }
}

/// `ℓ = Σₖ tₖ(logsumexp − zₖ) = T·logsumexp − Σₖ tₖzₖ`, `T = Σₖ tₖ` the target's `mass`.
fn soft_target_loss<T: Float>(z: &[T], t: &[T], mass: T, logsumexp: f64) -> f64 {
    let dot = z.iter().zip(t).map(|(&zk, &tk)| (tk * zk).as_f64()).sum::<f64>();
    mass.as_f64() * logsumexp - dot
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

/// Checks that `targets` are probabilities in [0, 1], one per entry of `logits`, naming the
/// first sample (column) that is not (what [`BinaryCrossEntropy`] takes).
pub(crate) fn check_probability_targets<T: Float>(logits: &DMatrix<T>, targets: &DMatrix<T>) -> Result<()> {
    check_matrix_targets(logits.nrows(), Some(logits.ncols()), targets, is_probability, PROBABILITY)
}

/// Checks that a target matrix has the shape of `outputs` (`rows × batch`) and that every entry
/// satisfies `valid`, naming the first sample (column) that does not.
fn check_matrix_targets<T: Float>(
    rows: usize,
    batch: Option<usize>,
    targets: &DMatrix<T>,
    valid: impl Fn(T) -> bool,
    requirement: &'static str,
) -> Result<()> {
    // A mean over no output rows is 0/0, and a column of none has no largest entry.
    if rows == 0 {
        return Err(Error::shape("outputs", "at least 1 row", "0 rows"));
    }
    if let Some(batch) = batch {
        if batch == 0 {
            return Err(Error::EmptyBatch { what: "batch" });
        }
        if targets.ncols() != batch {
            return Err(Error::shape(
                "targets",
                format!("{} (one per sample)", plural(batch, "column")),
                plural(targets.ncols(), "column"),
            ));
        }
    }
    if targets.nrows() != rows {
        return Err(Error::shape(
            "targets",
            format!("{} (one per network output)", plural(rows, "row")),
            plural(targets.nrows(), "row"),
        ));
    }
    if let Some(k) = targets.iter().position(|&t| !valid(t)) {
        let (row, sample) = (k % rows, k / rows);
        return Err(Error::InvalidTarget { sample, row, value: targets[k].as_f64(), requirement });
    }
    Ok(())
}

/// [`check_matrix_targets`] for the regression losses: any finite value.
fn finite_targets<T: Float>(rows: usize, batch: Option<usize>, targets: &DMatrix<T>) -> Result<()> {
    check_matrix_targets(rows, batch, targets, |t| t.is_finite(), "must be finite")
}

/// The outputs, the targets and (when asked) the gradient of a loss whose targets are a matrix
/// shaped like its outputs, as the columns [`for_column_blocks`] cuts into blocks.
type MatrixColumns<'a, T> = (Cols<'a, T>, Cols<'a, T>, Option<ColsMut<'a, T>>);

/// [`MatrixColumns`] of `outputs`, `targets` and `grad` (shaped like `outputs` first).
fn matrix_columns<'a, T: Float>(
    outputs: &'a DMatrix<T>,
    targets: &'a DMatrix<T>,
    grad: Option<&'a mut DMatrix<T>>,
) -> MatrixColumns<'a, T> {
    let (rows, batch) = outputs.shape();
    let grad = grad.map(|g| {
        ensure_shape(g, rows, batch);
        ColsMut(g.as_mut_slice(), rows)
    });
    (Cols(outputs.as_slice(), rows), Cols(targets.as_slice(), rows), grad)
}

/// A loss taken entry by entry over outputs and targets of one shape: its value and gradient
/// at one entry side by side, given the entry's output row's setting `s` (a per-output
/// setting, such as a quantile; 1 for a loss without one). The
/// loops live once, in [`entrywise`] and [`entrywise_samples`]; [`entrywise_loss!`] makes the
/// type a [`Loss`] and a [`PerSampleLoss`].
trait Entrywise<T: Float> {
    /// Checks the loss's settings and the targets against `rows` outputs and, when given, a
    /// batch of `batch` samples.
    fn check(&self, rows: usize, batch: Option<usize>, targets: &DMatrix<T>) -> Result<()>;

    /// The setting of output row `row` that [`entry`](Entrywise::entry) and
    /// [`entry_gradient`](Entrywise::entry_gradient) take: looked up once per entry by the
    /// driver, apart from the arithmetic, so that the arithmetic vectorizes.
    #[inline(always)]
    fn row_setting(&self, row: usize) -> T {
        let _ = row;
        T::one()
    }

    /// `ℓ(z, t)` of one entry, its row's setting `s`.
    fn entry(&self, s: T, z: T, t: T) -> T;

    /// `dℓ/dz` of one entry, its row's setting `s`.
    fn entry_gradient(&self, s: T, z: T, t: T) -> T;

    /// Both, for a loss whose two share work (the default computes each).
    #[inline(always)]
    fn entry_and_gradient(&self, s: T, z: T, t: T) -> (T, T) {
        (self.entry(s, z, t), self.entry_gradient(s, z, t))
    }

    /// Whether an entry's output decides its target right, for a loss that classifies; `None`
    /// for the others.
    fn entry_right(&self, _z: T, _t: T) -> Option<bool> {
        None
    }
}

/// The share of the entries of `z` (outputs) and `t` (targets) decided right, for an
/// [`Entrywise`] loss that classifies: a batch's accuracy, or one sample's from its column.
fn entrywise_accuracy<T: Float>(loss: &impl Entrywise<T>, z: &[T], t: &[T]) -> Option<f64> {
    let mut right = 0;
    for (&z, &t) in z.iter().zip(t) {
        right += usize::from(loss.entry_right(z, t)?);
    }
    Some(right as f64 / z.len() as f64)
}

/// The shared driver of the entrywise losses: `L = (1/(R·N))·Σ entry(s, z, t)` over every
/// entry, and `dL/dz = entry_gradient(s, z, t)/(R·N)` into `grad` when given. Blocks of
/// columns sum in f64 and are added in block order, so the result does not depend on the
/// thread count.
fn entrywise<T: Float>(
    loss: &(impl Entrywise<T> + Sync),
    outputs: &DMatrix<T>,
    targets: &DMatrix<T>,
    grad: Option<&mut DMatrix<T>>,
) -> T {
    let (rows, batch) = outputs.shape();
    let count = (rows * batch) as f64;
    let scale = T::lit(1.0 / count);
    let data = matrix_columns(outputs, targets, grad);
    let block = |(z, t, g): MatrixColumns<'_, T>| {
        simd(
            #[inline(always)]
            || entrywise_block(loss, rows, z.0, t.0, g.map(|g| g.0), scale),
        )
    };
    T::lit(for_column_blocks(batch, rows, data, &block, &|a, b| a + b) / count)
}

/// One block of [`entrywise`]: whole columns of `rows` outputs `z`, targets `t` and, when
/// given, gradients `g` (written as `dℓ/dz · scale`); returns the sum of the entries' losses.
/// Taken `LANES` entries at a time, each lane keeping its own output row and its own `f64`
/// sum (added in lane order at the end), so that the loop vectorizes.
#[inline(always)]
fn entrywise_block<T: Float>(
    loss: &impl Entrywise<T>,
    rows: usize,
    z: &[T],
    t: &[T],
    mut g: Option<&mut [T]>,
    scale: T,
) -> f64 {
    if z.is_empty() {
        return 0.0;
    }
    let whole = z.len() - z.len() % LANES;
    let mut sums = [0.0f64; LANES];
    // The block starts a column: lane `l` of the first chunk is row `l mod rows`, and each
    // chunk moves every lane `LANES` entries on.
    let mut row: [usize; LANES] = std::array::from_fn(|lane| lane % rows);
    let step = LANES % rows;
    for start in (0..whole).step_by(LANES) {
        let z: &[T; LANES] = z[start..start + LANES].try_into().expect("a whole chunk");
        let t: &[T; LANES] = t[start..start + LANES].try_into().expect("a whole chunk");
        let s: [T; LANES] = std::array::from_fn(|lane| loss.row_setting(row[lane]));
        let mut entries = [T::zero(); LANES];
        match g.as_deref_mut() {
            Some(g) => {
                let mut gradients = [T::zero(); LANES];
                for lane in 0..LANES {
                    let (entry, gradient) = loss.entry_and_gradient(s[lane], z[lane], t[lane]);
                    entries[lane] = entry;
                    gradients[lane] = flush_subnormal(gradient * scale);
                }
                g[start..start + LANES].copy_from_slice(&gradients);
            }
            None => {
                for lane in 0..LANES {
                    entries[lane] = loss.entry(s[lane], z[lane], t[lane]);
                }
            }
        }
        for lane in 0..LANES {
            sums[lane] += entries[lane].as_f64();
            let next = row[lane] + step;
            row[lane] = if next >= rows { next - rows } else { next };
        }
    }
    let mut sum: f64 = sums.iter().sum();
    for i in whole..z.len() {
        let (s, z, t) = (loss.row_setting(i % rows), z[i], t[i]);
        match g.as_deref_mut() {
            Some(g) => {
                let (entry, gradient) = loss.entry_and_gradient(s, z, t);
                g[i] = flush_subnormal(gradient * scale);
                sum += entry.as_f64();
            }
            None => sum += loss.entry(s, z, t).as_f64(),
        }
    }
    sum
}

/// Each sample's loss under an entrywise loss: the mean of its column's entries, so that the
/// batch's loss is the mean of the samples'.
fn entrywise_samples<T: Float>(
    loss: &impl Entrywise<T>,
    outputs: &DMatrix<T>,
    targets: &DMatrix<T>,
    losses: &mut Vec<SampleLoss<T>>,
) {
    let rows = outputs.nrows();
    let columns = outputs.as_slice().chunks_exact(rows).zip(targets.as_slice().chunks_exact(rows));
    losses.clear();
    losses.extend(columns.map(|(z, t)| {
        let sum = z
            .iter()
            .zip(t)
            .enumerate()
            .map(|(row, (&z, &t))| loss.entry(loss.row_setting(row), z, t).as_f64())
            .sum::<f64>();
        SampleLoss {
            loss: T::lit(sum / rows as f64),
            count: T::one(),
            accuracy: entrywise_accuracy(loss, z, t),
        }
    }));
}

/// Makes each [`Entrywise`] type a [`Loss`] on target matrices and a [`PerSampleLoss`].
macro_rules! entrywise_loss {
    ($($loss:ty),+) => {$(
        impl<T: Float> Loss<T> for $loss {
            type Target = DMatrix<T>;

            fn check_targets(&self, outputs: usize, targets: &DMatrix<T>) -> Result<()> {
                self.check(outputs, None, targets)
            }

            fn compute(&self, z: &DMatrix<T>, t: &DMatrix<T>, grad: Option<&mut DMatrix<T>>) -> Result<LossValue<T>> {
                self.check(z.nrows(), Some(z.ncols()), t)?;
                let accuracy = entrywise_accuracy(self, z.as_slice(), t.as_slice());
                Ok(LossValue { loss: entrywise(self, z, t, grad), accuracy })
            }
        }

        impl<T: Float> PerSampleLoss<T> for $loss {
            fn sample_losses(&self, z: &DMatrix<T>, t: &DMatrix<T>, losses: &mut Vec<SampleLoss<T>>) -> Result<()> {
                self.check(z.nrows(), Some(z.ncols()), t)?;
                entrywise_samples(self, z, t, losses);
                Ok(())
            }
        }
    )+};
}

entrywise_loss!(MeanSquaredError, BinaryCrossEntropy, Huber, MeanAbsoluteError, Quantile, Poisson);

/// Mean squared error over every entry (PyTorch's `MSELoss`, mean reduction):
/// `L = (1/(R·N))·Σ (z − t)²`, `dL/dz = 2(z − t)/(R·N)`. Targets: a finite matrix shaped like
/// the outputs.
///
/// ```
/// use feedforward::{Loss, MeanSquaredError};
/// use nalgebra::DMatrix;
/// let z = DMatrix::from_column_slice(1, 2, &[1.0, 3.0]);
/// let t = DMatrix::from_column_slice(1, 2, &[0.0, 0.0]);
/// assert_eq!(MeanSquaredError.loss(&z, &t)?, 5.0); // (1 + 9) / 2
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeanSquaredError;

impl<T: Float> Entrywise<T> for MeanSquaredError {
    fn check(&self, rows: usize, batch: Option<usize>, targets: &DMatrix<T>) -> Result<()> {
        finite_targets(rows, batch, targets)
    }

    fn entry(&self, _: T, z: T, t: T) -> T {
        (z - t) * (z - t)
    }

    fn entry_gradient(&self, _: T, z: T, t: T) -> T {
        T::lit(2.0) * (z - t)
    }
}

pub(crate) use crate::elementary::softplus;

/// `1 / (1 + e^(−z))`, with the exponential of `−|z|` only (vectorizable in `f32`).
#[inline]
pub(crate) fn sigmoid<T: Float>(z: T) -> T {
    sigmoid_from(z, crate::elementary::exp(-z.abs()))
}

/// `σ(z)` given `e = e^(−|z|)`.
#[inline(always)]
fn sigmoid_from<T: Float>(z: T, e: T) -> T {
    if z >= T::zero() { T::one() / (T::one() + e) } else { e / (T::one() + e) }
}

/// `softplus(z)` and `σ(z)` (its derivative) from one exponential, `e^(−|z|)`: no overflow for
/// any finite `z`, and vectorizable in `f32`.
#[inline(always)]
pub(crate) fn softplus_and_sigmoid<T: Float>(z: T) -> (T, T) {
    let e = crate::elementary::exp(-z.abs());
    (crate::elementary::softplus_from(z, e), sigmoid_from(z, e))
}

/// Binary cross-entropy on logits, for multi-label outputs (PyTorch's `BCEWithLogitsLoss`, mean
/// reduction): each output is an independent yes/no logit `z` with target probability `t` in
/// [0, 1] (0/1 labels, or soft targets), optionally with a weight `p` on the positives of each
/// output row (PyTorch's `pos_weight`; 1 when not set).
///
/// `ℓ = −p·t·ln σ(z) − (1 − t)·ln(1 − σ(z)) = (1 + (p − 1)·t)·softplus(z) − p·t·z`, mean over all
/// `R·N` entries; `dL/dz = ((1 + (p − 1)·t)·σ(z) − p·t)/(R·N)`. With `p = 1`, `softplus(z) − t·z`
/// and `σ(z) − t`. Computed in the softplus form, finite for logits of ±1e4.
/// Accuracy: the share of entries where `z > 0` agrees with `t > 0.5`.
///
/// ```
/// use feedforward::{BinaryCrossEntropy, Loss};
/// use nalgebra::DMatrix;
/// // A logit of 0 is σ = 1/2: the loss is ln 2 whatever the target.
/// let bce = BinaryCrossEntropy::new();
/// let loss = bce.loss(&DMatrix::<f64>::zeros(1, 1), &DMatrix::from_element(1, 1, 1.0))?;
/// assert!((loss - 2f64.ln()).abs() < 1e-12);
/// // Positives of the first label are rare (1 in 10): weigh them 9 times.
/// let weighted = BinaryCrossEntropy::new().with_pos_weight(vec![9.0, 1.0])?;
/// assert_eq!(weighted.pos_weight(), Some(&[9.0, 1.0][..]));
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BinaryCrossEntropy {
    pos_weight: Option<Vec<f64>>,
}

impl BinaryCrossEntropy {
    /// Plain binary cross-entropy (every positive weighing 1).
    #[must_use]
    pub const fn new() -> Self {
        BinaryCrossEntropy { pos_weight: None }
    }

    /// The same loss with a weight on the positive targets of each output row (one per row),
    /// each finite and > 0: for a label that is rarely 1, the ratio of its negatives to its
    /// positives is the usual choice.
    pub fn with_pos_weight(self, weights: Vec<f64>) -> Result<Self> {
        check_weight_values(&weights, "positive weights", "positive weight")?;
        Ok(BinaryCrossEntropy { pos_weight: Some(weights) })
    }

    /// The weights of the positives, if any.
    #[must_use]
    pub fn pos_weight(&self) -> Option<&[f64]> {
        self.pos_weight.as_deref()
    }
}

/// `1 + (p − 1)·t`, the weight of `softplus(z)` and `σ(z)` under the positive weight `p`:
/// exactly 1 when `p = 1`.
#[inline(always)]
fn both<T: Float>(p: T, t: T) -> T {
    T::one() + (p - T::one()) * t
}

const PROBABILITY: &str = "must be a probability in [0, 1]";

impl<T: Float> Entrywise<T> for BinaryCrossEntropy {
    fn check(&self, rows: usize, batch: Option<usize>, targets: &DMatrix<T>) -> Result<()> {
        check_weight_count(self.pos_weight.as_deref(), rows, "positive weights")?;
        check_matrix_targets(rows, batch, targets, is_probability, PROBABILITY)
    }

    /// The row's positive weight `p` (1 when not set).
    #[inline(always)]
    fn row_setting(&self, row: usize) -> T {
        self.pos_weight.as_deref().map_or(T::one(), |w| T::lit(w[row]))
    }

    fn entry(&self, p: T, z: T, t: T) -> T {
        both(p, t) * softplus(z) - p * t * z
    }

    fn entry_gradient(&self, p: T, z: T, t: T) -> T {
        both(p, t) * sigmoid(z) - p * t
    }

    #[inline(always)]
    fn entry_and_gradient(&self, p: T, z: T, t: T) -> (T, T) {
        let (softplus, sigmoid) = softplus_and_sigmoid(z);
        let both = both(p, t);
        (both * softplus - p * t * z, both * sigmoid - p * t)
    }

    fn entry_right(&self, z: T, t: T) -> Option<bool> {
        Some((z > T::zero()) == (t > T::lit(0.5)))
    }
}

fn is_probability<T: Float>(t: T) -> bool {
    t >= T::zero() && t <= T::one()
}

/// The Huber loss (PyTorch's `HuberLoss`, mean reduction): quadratic near the target, linear
/// beyond `delta`, so outliers pull with a bounded force. With `r = z − t`:
/// `ℓ = r²/2` if `|r| ≤ δ`, else `δ·(|r| − δ/2)`, mean over all `R·N` entries;
/// `dL/dz = clamp(r, −δ, δ)/(R·N)`.
///
/// ```
/// use feedforward::{Huber, Loss};
/// use nalgebra::DMatrix;
/// let huber = Huber::new(1.0)?;
/// let z = DMatrix::from_column_slice(1, 2, &[0.5, 3.0]);
/// // 0.5²/2 = 0.125 and 1·(3 − 0.5) = 2.5, mean 1.3125.
/// assert_eq!(huber.loss(&z, &DMatrix::zeros(1, 2))?, 1.3125);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Huber {
    delta: f64,
}

impl Huber {
    /// Huber loss with threshold `delta` (finite, > 0; PyTorch's default is 1).
    pub fn new(delta: f64) -> Result<Self> {
        if !(delta.is_finite() && delta > 0.0) {
            return Err(Error::InvalidHyperparameter {
                name: "huber delta",
                value: delta,
                requirement: "must be finite and > 0",
            });
        }
        Ok(Huber { delta })
    }

    /// The threshold `δ`.
    #[must_use]
    pub fn delta(&self) -> f64 {
        self.delta
    }
}

impl Default for Huber {
    /// `δ = 1`, PyTorch's default.
    fn default() -> Self {
        Huber { delta: 1.0 }
    }
}

impl<T: Float> Entrywise<T> for Huber {
    fn check(&self, rows: usize, batch: Option<usize>, targets: &DMatrix<T>) -> Result<()> {
        finite_targets(rows, batch, targets)
    }

    fn entry(&self, _: T, z: T, t: T) -> T {
        let (delta, half) = (T::lit(self.delta), T::lit(0.5));
        let r = (z - t).abs();
        if r <= delta { half * r * r } else { delta * (r - half * delta) }
    }

    fn entry_gradient(&self, _: T, z: T, t: T) -> T {
        let delta = T::lit(self.delta);
        (z - t).max(-delta).min(delta)
    }
}

/// Mean absolute error over every entry (PyTorch's `L1Loss`, mean reduction):
/// `L = (1/(R·N))·Σ |z − t|`, `dL/dz = sign(z − t)/(R·N)`, 0 where `z = t` (as PyTorch's).
/// It predicts the median of each target where [`MeanSquaredError`] predicts the mean, so a few
/// wild targets pull it less. Targets: a finite matrix shaped like the outputs.
///
/// ```
/// use feedforward::{Loss, MeanAbsoluteError};
/// use nalgebra::DMatrix;
/// let z = DMatrix::from_column_slice(1, 2, &[1.0, -3.0]);
/// assert_eq!(MeanAbsoluteError.loss(&z, &DMatrix::zeros(1, 2))?, 2.0); // (1 + 3) / 2
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeanAbsoluteError;

impl<T: Float> Entrywise<T> for MeanAbsoluteError {
    fn check(&self, rows: usize, batch: Option<usize>, targets: &DMatrix<T>) -> Result<()> {
        finite_targets(rows, batch, targets)
    }

    fn entry(&self, _: T, z: T, t: T) -> T {
        (z - t).abs()
    }

    fn entry_gradient(&self, _: T, z: T, t: T) -> T {
        sign(z - t)
    }
}

/// −1, 0 or 1 as `r` is negative, zero or positive.
fn sign<T: Float>(r: T) -> T {
    if r > T::zero() {
        T::one()
    } else if r < T::zero() {
        -T::one()
    } else {
        T::zero()
    }
}

/// The pinball loss of quantile regression: output row `i` learns the quantile `τᵢ` of its
/// target row (the value its target falls below with probability `τᵢ`), so that a network can
/// predict a range as well as a value. With `r = t − z`:
///
/// ```text
/// ℓ = τ·r if r ≥ 0, (τ − 1)·r if r < 0,    L = (1/(R·N))·Σ ℓ
/// dL/dz = −τ if t > z, 1 − τ if t < z, 0 if t = z;    then /(R·N)
/// ```
///
/// `τ = 0.5` is half the [`MeanAbsoluteError`]. Targets: a finite matrix shaped like the
/// outputs; for several quantiles of one target, repeat its row once per quantile.
///
/// ```
/// use feedforward::{Loss, Quantile};
/// use nalgebra::DMatrix;
/// // The 10%, 50% and 90% quantiles of one target: its row three times.
/// let pinball = Quantile::new(vec![0.1, 0.5, 0.9])?;
/// let y = DMatrix::<f64>::from_row_slice(1, 2, &[4.0, 6.0]);
/// let targets = DMatrix::from_fn(3, 2, |_, j| y[j]);
/// let z = DMatrix::from_row_slice(3, 2, &[3.0, 5.0, 5.0, 5.0, 7.0, 5.0]);
/// // Row 0 (τ 0.1) is 1 under both targets: 0.1·1 each. Row 1 (τ 0.5) is 1 off: 0.5 each.
/// // Row 2 (τ 0.9) is 3 over 4, (1 − 0.9)·3, then 1 under 6, 0.9·1.
/// let expected = (0.1 + 0.1 + 0.5 + 0.5 + 0.1 * 3.0 + 0.9) / 6.0;
/// assert!((pinball.loss(&z, &targets)? - expected).abs() < 1e-12);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Quantile {
    quantiles: Vec<f64>,
}

impl Quantile {
    /// The loss with quantile `quantiles[i]` for output row `i`, each in (0, 1).
    pub fn new(quantiles: Vec<f64>) -> Result<Self> {
        if quantiles.is_empty() {
            return Err(Error::shape("quantiles", "one per output row", "none"));
        }
        match quantiles.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
            Some(&q) => Err(Error::InvalidHyperparameter {
                name: "quantile",
                value: q,
                requirement: "must be in (0, 1)",
            }),
            None => Ok(Quantile { quantiles }),
        }
    }

    /// The quantile of each output row.
    #[must_use]
    pub fn quantiles(&self) -> &[f64] {
        &self.quantiles
    }

    /// Checks that the quantiles are one per output row.
    fn check_rows(&self, rows: usize) -> Result<()> {
        if self.quantiles.len() == rows {
            return Ok(());
        }
        Err(Error::shape(
            "quantiles",
            format!("{} (one per output row)", plural(rows, "quantile")),
            plural(self.quantiles.len(), "quantile"),
        ))
    }
}

impl<T: Float> Entrywise<T> for Quantile {
    fn check(&self, rows: usize, batch: Option<usize>, targets: &DMatrix<T>) -> Result<()> {
        self.check_rows(rows)?;
        finite_targets(rows, batch, targets)
    }

    /// The row's quantile `τ`.
    #[inline(always)]
    fn row_setting(&self, row: usize) -> T {
        T::lit(self.quantiles[row])
    }

    fn entry(&self, tau: T, z: T, t: T) -> T {
        let r = t - z;
        if r >= T::zero() { tau * r } else { (tau - T::one()) * r }
    }

    fn entry_gradient(&self, tau: T, z: T, t: T) -> T {
        if t > z {
            -tau
        } else if t < z {
            T::one() - tau
        } else {
            T::zero()
        }
    }
}

/// The negative log-likelihood of counts under a Poisson law whose log-rate is the output
/// (PyTorch's `PoissonNLLLoss` with `log_input=True`, `full=False`, mean reduction): for counts
/// (visits, claims, sales) whose spread grows with their size. With `z` the log-rate and `t`
/// the count:
///
/// ```text
/// ℓ = eᶻ − t·z    (the log-likelihood's terms in z; ln t! is left out),    L = (1/(R·N))·Σ ℓ
/// dL/dz = (eᶻ − t)/(R·N)
/// ```
///
/// The predicted rate is `eᶻ` (`network.output(x)?.map(f32::exp)`). A log-rate past
/// `ln(T::MAX)` (88.7 in `f32`) makes the loss infinite, and a training step is then rejected
/// (as PyTorch computes it, with no clamp). Targets: finite and ≥ 0 (whole numbers, or any
/// non-negative rate), shaped like the outputs.
///
/// ```
/// use feedforward::{Loss, Poisson};
/// use nalgebra::DMatrix;
/// // Log-rate 0 (rate 1) against 3 events: e⁰ − 3·0 = 1.
/// let z = DMatrix::zeros(1, 1);
/// assert_eq!(Poisson.loss(&z, &DMatrix::from_element(1, 1, 3.0))?, 1.0);
/// // A count cannot be negative.
/// assert!(Poisson.loss(&z, &DMatrix::from_element(1, 1, -1.0)).is_err());
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Poisson;

const COUNT: &str = "must be a finite count or rate, at least 0";

impl<T: Float> Entrywise<T> for Poisson {
    fn check(&self, rows: usize, batch: Option<usize>, targets: &DMatrix<T>) -> Result<()> {
        check_matrix_targets(rows, batch, targets, is_count, COUNT)
    }

    fn entry(&self, _: T, z: T, t: T) -> T {
        z.exp() - t * z
    }

    fn entry_gradient(&self, _: T, z: T, t: T) -> T {
        z.exp() - t
    }
}

fn is_count<T: Float>(t: T) -> bool {
    t.is_finite() && t >= T::zero()
}
