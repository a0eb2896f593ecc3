//! [`BatchNorm`]: each feature brought to mean 0 and variance 1 over the batch, then scaled and
//! shifted by trainable `γ` and `β` (Ioffe & Szegedy, 2015; PyTorch's `nn.BatchNorm1d`). In
//! training it normalizes with the batch's own statistics and keeps running means of them;
//! inference normalizes with the running means, so a prediction does not depend on the batch.
//!
//! Per feature (row) over the `N` samples of a training batch, with `x̂ = (x − μ)/σ`:
//!
//! | | forward | local gradient |
//! |---|---|---|
//! | normalize | `μ = mean(x)`, `σ = √(mean((x − μ)²) + ε)`, `x̂ = (x − μ)/σ` | `∂L/∂x = γ/σ·(∂L/∂y − mean(∂L/∂y) − x̂·mean(∂L/∂y ⊙ x̂))` |
//! | scale, shift | `y = γx̂ + β` | `∂L/∂γ = Σ ∂L/∂y ⊙ x̂`, `∂L/∂β = Σ ∂L/∂y` (sums over the batch) |
//! | inference | `y = γ(x − μ_run)/√(σ²_run + ε) + β` | (not trained) |
//!
//! The running statistics follow each accepted step:
//! `μ_run = (1 − m)μ_run + mμ`, `σ²_run = (1 − m)σ²_run + m·N/(N − 1)·mean((x − μ)²)`
//! (the unbiased variance, as PyTorch keeps).
//!
//! With [`BatchNormStatistics::Running`], a training step normalizes as inference does, and the
//! running statistics stay as they are: `y = γ(x − μ_run)/√(σ²_run + ε) + β` is then a fixed
//! per-feature affine map, `∂L/∂x = γ/√(σ²_run + ε)·∂L/∂y`, with the same `∂L/∂γ` and `∂L/∂β`
//! (`x̂` from the running statistics).

use crate::linalg::{
    Scratch, column_sums, flush_subnormal, for_each_column, for_each_column_with, store_flushed,
};
use crate::module::{
    Buffer, BufferDomain, Parameter, check_eps, features_setting, gain_and_shift, same_rows,
};
use crate::{Error, Float, Module, Result};
use nalgebra::DMatrix;
use serde_json::{Map, Value};

/// Batch normalization over each feature (PyTorch's `nn.BatchNorm1d` with `affine` and
/// `track_running_stats`): a trainable gain `γ` (`weight`, starting at 1) and shift `β`
/// (`bias`, starting at 0), exempt from the L2 penalty and, by default, from weight decay; and
/// two [`Buffer`]s saved with the model, `running_mean` (starting at 0) and `running_var`
/// (starting at 1).
///
/// ```text
/// training:   μ, σ² = the batch's mean and variance per feature,  y = γ(x − μ)/√(σ² + ε) + β
/// inference:  y = γ(x − running_mean)/√(running_var + ε) + β
/// ```
///
/// - **The running statistics move only when a training step is accepted**
///   ([`Module::commit_step`]), by `momentum` (default 0.1, PyTorch's) towards the batch's mean
///   and unbiased variance: a step rejected for a NaN, a gradient check, or
///   [`Network::backward`](crate::Network::backward) leaves them as they were.
/// - **A training batch needs at least 2 samples** with the batch's statistics (one has no
///   variance): a step on a batch of one is an [`Error::ShapeMismatch`] and changes nothing.
///   [`train::fit`](crate::train::fit) checks every batch size of its epochs before the first
///   step (the last minibatch holds the remainder: choose a batch size that does not leave one).
/// - **Statistics of the final weights**: the running statistics trail the weights of the last
///   steps (or, after weight averaging, are an average of statistics);
///   [`Network::recompute_batch_norm`](crate::Network::recompute_batch_norm) measures them
///   afresh over a data set (PyTorch's `update_bn`).
/// - **Fine-tuning**: [`with_training_statistics`](BatchNorm::with_training_statistics)
///   ([`BatchNormStatistics::Running`]) makes training steps normalize with the running
///   statistics and leave them alone, as PyTorch's `.eval()` on the module and Keras's frozen
///   `BatchNormalization` do. [`Network::freeze`](crate::Network::freeze) does not switch it:
///   a frozen `BatchNorm` in the default mode still normalizes with each batch's statistics
///   and moves its running ones.
/// - **PyTorch's `affine=False`**: freeze the module's parameters
///   ([`Parameter::freeze`](crate::Parameter::freeze) on both): `γ = 1` and `β = 0` stay, and
///   the backward pass computes no sums for them.
/// - Its passes allocate nothing once the batch shape is steady (the statistics live in
///   vectors reused from step to step; inference computes its scale into its output).
/// - The per-feature sums are cut into blocks by shape alone and added in block order, so a run
///   is the same on any thread count.
///
/// ```
/// use feedforward::{Activation, BatchNorm, Init, Layer, Network};
/// use nalgebra::DMatrix;
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let net = Network::<f64>::new(4)
///     .push(Layer::new(4, 16, Init::He, &mut rng))?
///     .push(BatchNorm::new(16)?)?
///     .push(Layer::new(16, 2, Init::He, &mut rng).with_activation(Activation::Relu))?;
/// assert_eq!(net.output(&DMatrix::from_element(4, 3, 0.5))?.shape(), (2, 3));
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone)]
pub struct BatchNorm<T: Float> {
    gain: Parameter<T>,
    shift: Parameter<T>,
    running_mean: Buffer<T>,
    running_var: Buffer<T>,
    eps: f64,
    momentum: f64,
    training_statistics: BatchNormStatistics,
    /// The last training batch's statistics: what backward needs, and the running update
    /// waiting for the step's commit.
    batch: BatchStatistics<T>,
    /// The per-feature sums of each column block.
    partials: Scratch<T>,
}

/// Which statistics a [`BatchNorm`] normalizes with in training steps (inference always uses
/// the running ones).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BatchNormStatistics {
    /// Each training batch's own mean and variance; the running statistics move towards them
    /// after every accepted step (the default; PyTorch's training mode).
    #[default]
    Batch,
    /// The running statistics, unchanged by training: the module trains as it predicts (for
    /// fine-tuning a model whose statistics should stay those it was trained with; a batch of
    /// one sample is then allowed).
    Running,
}

impl BatchNormStatistics {
    /// The name in model files: `"batch"` or `"running"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            BatchNormStatistics::Batch => "batch",
            BatchNormStatistics::Running => "running",
        }
    }
}

/// The statistics of the last training batch, per feature (in
/// [`BatchNormStatistics::Running`], the running statistics in the same form).
#[derive(Clone, Default)]
struct BatchStatistics<T> {
    mean: Vec<T>,
    /// `1/√(σ² + ε)`.
    inverse: Vec<T>,
    /// `γ/√(σ² + ε)`.
    scale: Vec<T>,
    /// `N/(N − 1)·σ²`, for the running variance.
    unbiased: Vec<T>,
    /// Whether the running statistics still have to take this batch in.
    staged: bool,
    /// Which statistics these are: the backward pass follows the forward pass that kept them.
    source: BatchNormStatistics,
}

/// Shows the settings and the tensors' names and shapes, not their values.
impl<T: Float> std::fmt::Debug for BatchNorm<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchNorm")
            .field("features", &self.features())
            .field("eps", &self.eps)
            .field("momentum", &self.momentum)
            .field("training_statistics", &self.training_statistics)
            .finish_non_exhaustive()
    }
}

impl<T: Float> BatchNorm<T> {
    /// Batch normalization of `features` features (at least 1), with PyTorch's `ε = 1e-5` and
    /// momentum 0.1.
    pub fn new(features: usize) -> Result<Self> {
        let (gain, shift) = gain_and_shift("BatchNorm", features)?;
        let column = |value| DMatrix::from_element(features, 1, value);
        Ok(BatchNorm {
            gain,
            shift,
            running_mean: Buffer::new("running_mean", column(T::zero())),
            running_var: Buffer::new("running_var", column(T::one())).with_domain(BufferDomain::NonNegative),
            eps: 1e-5,
            momentum: 0.1,
            training_statistics: BatchNormStatistics::Batch,
            batch: BatchStatistics::default(),
            partials: Scratch::default(),
        })
    }

    /// The same with `ε` (finite and > 0) added to the variance.
    pub fn with_eps(self, eps: f64) -> Result<Self> {
        check_eps("BatchNorm eps", eps)?;
        Ok(BatchNorm { eps, ..self })
    }

    /// The same with the running statistics moving by `momentum` (in (0, 1]) per step: 1 keeps
    /// only the last batch's.
    pub fn with_momentum(self, momentum: f64) -> Result<Self> {
        if !(momentum > 0.0 && momentum <= 1.0) {
            return Err(Error::InvalidHyperparameter {
                name: "BatchNorm momentum",
                value: momentum,
                requirement: "must be in (0, 1]",
            });
        }
        Ok(BatchNorm { momentum, ..self })
    }

    /// The same normalizing with `statistics` in training steps.
    ///
    /// ```
    /// use feedforward::{BatchNorm, BatchNormStatistics, Module, TrainContext};
    /// use nalgebra::DMatrix;
    /// let mut norm = BatchNorm::<f64>::new(2)?;
    /// let x = DMatrix::from_column_slice(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    /// let (mut training, mut inference) = (DMatrix::zeros(2, 3), DMatrix::zeros(2, 3));
    /// norm.forward(&x, &mut inference);
    /// norm.forward_train(&x, &mut training, &mut TrainContext::new(0, 1, 0));
    /// assert_ne!(training, inference); // the batch's statistics
    /// norm.set_training_statistics(BatchNormStatistics::Running);
    /// norm.forward_train(&x, &mut training, &mut TrainContext::new(0, 1, 0));
    /// assert_eq!(training, inference); // the running ones, as inference
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    #[must_use]
    pub fn with_training_statistics(self, statistics: BatchNormStatistics) -> Self {
        BatchNorm { training_statistics: statistics, ..self }
    }

    /// Switches the statistics training steps normalize with (for a module of a loaded network,
    /// reached by [`downcast_mut`](crate::Module#method.downcast_mut)).
    pub fn set_training_statistics(&mut self, statistics: BatchNormStatistics) {
        self.training_statistics = statistics;
    }

    /// The statistics training steps normalize with.
    #[must_use]
    pub fn training_statistics(&self) -> BatchNormStatistics {
        self.training_statistics
    }

    /// The `ε` added to the variance.
    #[must_use]
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// How far the running statistics move towards each batch's.
    #[must_use]
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// Number of features.
    #[must_use]
    pub fn features(&self) -> usize {
        self.gain.len()
    }

    /// The gain `γ` (a `features × 1` parameter named `weight`).
    #[must_use]
    pub fn gain(&self) -> &Parameter<T> {
        &self.gain
    }

    /// The shift `β` (a `features × 1` parameter named `bias`).
    #[must_use]
    pub fn shift(&self) -> &Parameter<T> {
        &self.shift
    }

    /// The running mean inference normalizes with (`features × 1`, named `running_mean`).
    #[must_use]
    pub fn running_mean(&self) -> &Buffer<T> {
        &self.running_mean
    }

    /// The running (unbiased) variance inference normalizes with (`features × 1`, named
    /// `running_var`).
    #[must_use]
    pub fn running_var(&self) -> &Buffer<T> {
        &self.running_var
    }

    /// Rebuilds one from a model file's settings (`features`, `eps`, `momentum`, and
    /// `training_statistics`, `"batch"` when absent as in files written before it), with
    /// `γ = 1`, `β = 0` and fresh running statistics until the file's tensors are loaded.
    /// `max_entries` bounds the features by what the file can hold.
    pub(crate) fn from_settings(
        spec: &Map<String, Value>,
        max_entries: usize,
    ) -> std::result::Result<Self, String> {
        let features = features_setting(spec, max_entries)?;
        let number =
            |name: &str| spec.get(name).and_then(Value::as_f64).ok_or(format!("{name} is not a number"));
        let (eps, momentum) = (number("eps")?, number("momentum")?);
        let statistics = match spec.get("training_statistics") {
            None => BatchNormStatistics::Batch,
            Some(value) => [BatchNormStatistics::Batch, BatchNormStatistics::Running]
                .into_iter()
                .find(|s| value.as_str() == Some(s.name()))
                .ok_or(format!("training_statistics is {value}, not \"batch\" or \"running\""))?,
        };
        BatchNorm::new(features)
            .and_then(|n| n.with_eps(eps))
            .and_then(|n| n.with_momentum(momentum))
            .map(|n| n.with_training_statistics(statistics))
            .map_err(|e| e.to_string())
    }

    /// Moves the running statistics towards the staged batch statistics by `share` (in (0, 1];
    /// 1 replaces them), if a batch is staged: `r ← (1 − share)·r + share·batch`.
    pub(crate) fn take_in_batch(&mut self, share: f64) {
        if !std::mem::take(&mut self.batch.staged) {
            return;
        }
        let m = T::lit(share);
        let keep = T::one() - m;
        let blend = |running: &mut Buffer<T>, batch: &[T]| {
            running.value_mut().iter_mut().zip(batch).for_each(|(r, &b)| *r = keep * *r + m * b);
        };
        blend(&mut self.running_mean, &self.batch.mean);
        blend(&mut self.running_var, &self.batch.unbiased);
    }

    /// `γ/√(σ²_run + ε)` per feature.
    fn running_scale(&self) -> impl Iterator<Item = T> + '_ {
        let eps = T::lit(self.eps);
        (self.gain.value().iter().zip(self.running_var.value().iter()))
            .map(move |(&g, &v)| g / (v + eps).sqrt())
    }

    /// `y = (x − mean)·scale + β` for every sample, per feature.
    fn normalize(&self, mean: &[T], scale: &[T], input: &[T], output: &mut [T]) {
        let shift = self.shift.value().as_slice();
        for_each_column(
            output,
            input,
            self.features(),
            #[inline(always)]
            |y, x| {
                for ((((y, &x), &m), &s), &b) in y.iter_mut().zip(x).zip(mean).zip(scale).zip(shift) {
                    *y = (x - m) * s + b;
                }
            },
        );
    }
}

/// `∂L/∂β = Σ ∂L/∂y` and `∂L/∂γ = Σ ∂L/∂y ⊙ x̂` per feature, `x̂ = (x − mean)·inverse`, summed
/// in blocks cut by shape and added in block order (the same on any thread count).
fn gain_and_shift_sums<'s, T: Float>(
    input: &DMatrix<T>,
    grad_output: &DMatrix<T>,
    mean: &[T],
    inverse: &[T],
    partials: &'s mut Scratch<T>,
) -> [&'s mut [T]; 2] {
    column_sums::<T, 2>(
        input.as_slice(),
        grad_output.as_slice(),
        mean.len(),
        partials,
        #[inline(always)]
        |[db, dg], x, dy| {
            for ((((db, dg), &x), &dy), (&m, &i)) in
                db.iter_mut().zip(dg.iter_mut()).zip(x).zip(dy).zip(mean.iter().zip(inverse))
            {
                *db += dy;
                *dg += dy * ((x - m) * i);
            }
        },
    )
}

/// `values` into `vector`, in the memory it already has once the batch shape is steady.
fn refill<T>(vector: &mut Vec<T>, values: impl Iterator<Item = T>) {
    vector.clear();
    vector.extend(values);
}

impl<T: Float> Module<T> for BatchNorm<T> {
    fn kind(&self) -> &'static str {
        "BatchNorm"
    }

    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        same_rows("BatchNorm input", self.features(), input_rows)
    }

    /// Normalizes with the running statistics. The per-feature scale `γ/√(σ²_run + ε)` is
    /// computed on each call (the buffers may have been loaded or changed since the last), into
    /// the output's first column: `&self` has no scratch of its own, and an inference pass into
    /// a network's buffers allocates nothing. That column is normalized last, in place: each
    /// entry reads its own scale before it is overwritten.
    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        let rows = self.features();
        if input.ncols() == 0 {
            return;
        }
        let (first, rest) = output.as_mut_slice().split_at_mut(rows);
        first.iter_mut().zip(self.running_scale()).for_each(|(s, scale)| *s = scale);
        let (x_first, x_rest) = input.as_slice().split_at(rows);
        let (mean, shift) = (self.running_mean.value().as_slice(), self.shift.value().as_slice());
        self.normalize(mean, first, x_rest, rest);
        for (((y, &x), &m), &b) in first.iter_mut().zip(x_first).zip(mean).zip(shift) {
            *y = (x - m) * *y + b;
        }
    }

    /// Normalizes with the batch's statistics, and stages them for the running ones; or, with
    /// [`BatchNormStatistics::Running`], with the running statistics, keeping them for the
    /// backward pass.
    fn forward_train(&mut self, input: &DMatrix<T>, output: &mut DMatrix<T>, _: &mut crate::TrainContext) {
        if self.training_statistics == BatchNormStatistics::Running {
            let eps = T::lit(self.eps);
            let mut batch = std::mem::take(&mut self.batch);
            refill(&mut batch.mean, self.running_mean.value().iter().copied());
            refill(&mut batch.inverse, self.running_var.value().iter().map(|&v| T::one() / (v + eps).sqrt()));
            // As inference computes it, to the last bit.
            refill(&mut batch.scale, self.running_scale());
            batch.staged = false;
            batch.source = BatchNormStatistics::Running;
            self.batch = batch;
            self.normalize(&self.batch.mean, &self.batch.scale, input.as_slice(), output.as_mut_slice());
            return;
        }
        let (rows, x) = (self.features(), input.as_slice());
        let n = input.ncols() as f64;
        let BatchNorm { gain, eps, batch, partials, .. } = self;
        let [sum] = column_sums::<T, 1>(
            x,
            x,
            rows,
            partials,
            #[inline(always)]
            |[s], x, _| s.iter_mut().zip(x).for_each(|(s, &x)| *s += x),
        );
        refill(&mut batch.mean, sum.iter().map(|&s| s / T::lit(n)));
        let mean = &batch.mean;
        // Two passes (the mean, then the squares about it): no cancellation when |μ| ≫ σ.
        let [variance] = column_sums::<T, 1>(
            x,
            x,
            rows,
            partials,
            #[inline(always)]
            |[s], x, _| {
                for ((s, &x), &m) in s.iter_mut().zip(x).zip(mean) {
                    *s += (x - m) * (x - m);
                }
            },
        );
        variance.iter_mut().for_each(|s| *s /= T::lit(n));
        let eps = T::lit(*eps);
        refill(&mut batch.inverse, variance.iter().map(|&v| T::one() / (v + eps).sqrt()));
        refill(&mut batch.scale, gain.value().iter().zip(&batch.inverse).map(|(&g, &i)| g * i));
        let bessel = T::lit(n / (n - 1.0).max(1.0));
        refill(&mut batch.unbiased, variance.iter().map(|&v| v * bessel));
        batch.staged = true;
        batch.source = BatchNormStatistics::Batch;
        self.normalize(&self.batch.mean, &self.batch.scale, input.as_slice(), output.as_mut_slice());
    }

    /// # Panics
    /// If no [`forward_train`](Module::forward_train) came first (a network's training step
    /// and the gradient checks always run one): the batch statistics are missing.
    fn backward(
        &mut self,
        input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        let rows = self.features();
        let BatchNorm { gain, shift, batch, partials, .. } = self;
        let running = batch.source == BatchNormStatistics::Running;
        let BatchStatistics { mean, inverse, scale, .. } = &*batch;
        assert_eq!(mean.len(), rows, "BatchNorm::backward needs the batch statistics of forward_train");
        // Frozen, γ and β need no gradient (as a `Layer`'s frozen tensors); the sums still
        // serve ∂L/∂x with the batch's statistics.
        let trains = !(gain.is_frozen() && shift.is_frozen());
        if running {
            if trains {
                let [dshift, dgain] = gain_and_shift_sums(input, grad_output, mean, inverse, partials);
                store_flushed(shift.grad_slice_mut(), dshift);
                store_flushed(gain.grad_slice_mut(), dgain);
            }
            // A fixed affine map per feature: ∂L/∂x = γ/√(σ²_run + ε)·∂L/∂y.
            let Some(dx) = grad_input else { return };
            for_each_column(
                dx.as_mut_slice(),
                grad_output.as_slice(),
                rows,
                #[inline(always)]
                |dx, dy| {
                    for ((dx, &dy), &s) in dx.iter_mut().zip(dy).zip(scale) {
                        *dx = flush_subnormal(s * dy);
                    }
                },
            );
            return;
        }
        let [dshift, dgain] = gain_and_shift_sums(input, grad_output, mean, inverse, partials);
        if trains {
            store_flushed(shift.grad_slice_mut(), dshift);
            store_flushed(gain.grad_slice_mut(), dgain);
        }
        let Some(dx) = grad_input else { return };
        // ∂L/∂x = γ/σ·(∂L/∂y − mean(∂L/∂y) − x̂·mean(∂L/∂y ⊙ x̂)): the sums become the means.
        let n = T::lit(input.ncols() as f64);
        dshift.iter_mut().chain(dgain.iter_mut()).for_each(|s| *s /= n);
        let (mean_dy, mean_dyx) = (&*dshift, &*dgain);
        for_each_column_with(
            dx.as_mut_slice(),
            input.as_slice(),
            grad_output.as_slice(),
            rows,
            #[inline(always)]
            |dx, x, dy| {
                let per_feature = mean.iter().zip(inverse).zip(scale).zip(mean_dy.iter().zip(mean_dyx));
                for (((dx, &x), &dy), (((&m, &i), &s), (&mdy, &mdyx))) in
                    dx.iter_mut().zip(x).zip(dy).zip(per_feature)
                {
                    let normalized = (x - m) * i;
                    *dx = flush_subnormal(s * (dy - mdy - normalized * mdyx));
                }
            },
        );
    }

    fn commit_step(&mut self) {
        self.take_in_batch(self.momentum);
    }

    fn check_training_batch(&self, samples: usize) -> Result<()> {
        if samples < 2 && self.training_statistics == BatchNormStatistics::Batch {
            return Err(Error::shape(
                "BatchNorm training batch",
                "at least 2 samples (one has no variance; with minibatches, choose a batch size that does not leave a last batch of one)",
                format!("{samples} sample{}", if samples == 1 { "" } else { "s" }),
            ));
        }
        Ok(())
    }

    fn visit_parameters<'a>(&'a self, visit: &mut dyn FnMut(&'a Parameter<T>)) {
        visit(&self.gain);
        visit(&self.shift);
    }

    fn visit_parameters_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut Parameter<T>)) {
        visit(&mut self.gain);
        visit(&mut self.shift);
    }

    fn visit_buffers<'a>(&'a self, visit: &mut dyn FnMut(&'a Buffer<T>)) {
        visit(&self.running_mean);
        visit(&self.running_var);
    }

    fn visit_buffers_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut Buffer<T>)) {
        visit(&mut self.running_mean);
        visit(&mut self.running_var);
    }

    /// A NaN or ±inf in a sample makes its output non-finite (in training, the whole batch's).
    fn propagates_non_finite(&self) -> bool {
        true
    }

    fn describe(&self) -> Option<Map<String, Value>> {
        Some(Map::from_iter([
            ("features".to_string(), self.features().into()),
            ("eps".to_string(), self.eps.into()),
            ("momentum".to_string(), self.momentum.into()),
            ("training_statistics".to_string(), self.training_statistics.name().into()),
        ]))
    }
}
