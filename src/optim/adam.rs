//! Adam and AdamW: one rule, two ways to apply weight decay.

use super::{
    DecayScope, Extent, Optimizer, OptimizerState, Staged, StateSet, check, check_learning_rate,
    check_weight_decay, elementwise,
};
use crate::linalg::{square_input, square_limit};
use crate::{Float, Parameter, Result};

/// The settings of [`Adam`] and [`AdamW`]. `Default` gives PyTorch's `Adam` defaults;
/// [`AdamConfig::adamw`] gives `AdamW`'s (the same, with weight decay 0.01).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig<T> {
    /// Step size `lr` (default 1e-3).
    pub learning_rate: T,
    /// `β₁`, decay of the mean of the gradient, in [0, 1) (default 0.9).
    pub beta1: T,
    /// `β₂`, decay of the mean of its square, in [0, 1) (default 0.999).
    pub beta2: T,
    /// `ε`, added to `√v̂` (default 1e-8).
    pub eps: T,
    /// `λ` (default 0): [`Adam`] adds `λP` to the gradient; [`AdamW`] shrinks `P` by `lr·λ·P`.
    pub weight_decay: T,
    /// Which tensors `weight_decay` applies to (default: the regularized ones, not biases).
    pub decay_scope: DecayScope,
}

impl<T: Float> Default for AdamConfig<T> {
    fn default() -> Self {
        AdamConfig {
            learning_rate: T::lit(1e-3),
            beta1: T::lit(0.9),
            beta2: T::lit(0.999),
            eps: T::lit(1e-8),
            weight_decay: T::zero(),
            decay_scope: DecayScope::Regularized,
        }
    }
}

impl<T: Float> AdamConfig<T> {
    /// PyTorch's `AdamW` defaults: those of `Adam`, with weight decay 0.01.
    #[must_use]
    pub fn adamw() -> Self {
        AdamConfig { weight_decay: T::lit(0.01), ..Self::default() }
    }
}

/// Adam (Kingma & Ba), PyTorch's `torch.optim.Adam` (without `amsgrad`); `t` counts the steps
/// that updated the tensor (per tensor, as PyTorch does: a layer unfrozen after a while starts
/// at `t = 1`; the count is kept as a float, as PyTorch's `state["step"]` is):
///
/// ```text
/// g = ∂P + λP                                  (weight decay, on the tensors of the decay scope)
/// m = β₁m + (1−β₁)g,  v = β₂v + (1−β₂)g²       (both start at 0)
/// m̂ = m/(1−β₁ᵗ),  v̂ = v/(1−β₂ᵗ)
/// P = P − lr·m̂/(√v̂ + ε)
/// ```
///
/// ```
/// use feedforward::{Adam, Optimizer};
/// let adam = Adam::<f32>::with_learning_rate(3e-4)?;
/// assert_eq!(adam.learning_rate(), 3e-4);
/// # Ok::<(), feedforward::Error>(())
/// ```
pub type Adam<T> = AdamBase<T, false>;

/// AdamW (Loshchilov & Hutter), PyTorch's `torch.optim.AdamW`: [`Adam`] with the weight decay
/// decoupled from the gradient:
///
/// ```text
/// P = P − lr·λ·P                               (on the tensors of the decay scope)
/// m, v, m̂, v̂ as Adam's, from g = ∂P
/// P = P − lr·m̂/(√v̂ + ε)
/// ```
pub type AdamW<T> = AdamBase<T, true>;

/// The Adam rule; use it as [`Adam`] (`DECOUPLED = false`) or [`AdamW`] (`true`).
#[derive(Clone)]
pub struct AdamBase<T: Float, const DECOUPLED: bool> {
    config: AdamConfig<T>,
    /// `m`, the running mean of the gradient, and `v`, the running mean of its square.
    state: StateSet<T, 3>,
}

/// Named `Adam` or `AdamW`, as users write it.
impl<T: Float, const DECOUPLED: bool> std::fmt::Debug for AdamBase<T, DECOUPLED> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if DECOUPLED { "AdamW" } else { "Adam" };
        f.debug_struct(name).field("config", &self.config).field("state", &self.state).finish()
    }
}

impl<T: Float> Adam<T> {
    /// Adam with `config`; rejects non-finite or out-of-range values.
    pub fn new(config: AdamConfig<T>) -> Result<Self> {
        Self::checked(config)
    }

    /// Adam at `learning_rate` with PyTorch's other defaults (no weight decay).
    pub fn with_learning_rate(learning_rate: T) -> Result<Self> {
        Self::new(AdamConfig { learning_rate, ..AdamConfig::default() })
    }
}

impl<T: Float> AdamW<T> {
    /// AdamW with `config`; rejects non-finite or out-of-range values.
    pub fn new(config: AdamConfig<T>) -> Result<Self> {
        Self::checked(config)
    }

    /// AdamW at `learning_rate` with PyTorch's other defaults (weight decay 0.01).
    pub fn with_learning_rate(learning_rate: T) -> Result<Self> {
        Self::new(AdamConfig { learning_rate, ..AdamConfig::adamw() })
    }
}

impl<T: Float, const DECOUPLED: bool> AdamBase<T, DECOUPLED> {
    fn checked(config: AdamConfig<T>) -> Result<Self> {
        check_learning_rate(config.learning_rate)?;
        check_weight_decay(config.weight_decay)?;
        let (zero, one) = (T::zero(), T::one());
        check("beta1", config.beta1, config.beta1 >= zero && config.beta1 < one, "must be in [0, 1)")?;
        check("beta2", config.beta2, config.beta2 >= zero && config.beta2 < one, "must be in [0, 1)")?;
        check("eps", config.eps, config.eps > zero, "must be finite and > 0")?;
        let state = StateSet::new(
            Self::KIND,
            [
                Staged::new("exp_avg", Extent::PerValue),
                Staged::new("exp_avg_sq", Extent::PerValue),
                Staged::new("step", Extent::PerTensor),
            ],
        );
        Ok(AdamBase { config, state })
    }

    /// The settings (the learning rate as a schedule last set it).
    #[must_use]
    pub fn config(&self) -> AdamConfig<T> {
        self.config
    }

    /// Committed steps.
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.state.steps()
    }

    /// The name in checkpoints and messages.
    const KIND: &'static str = if DECOUPLED { "adamw" } else { "adam" };
}

impl<T: Float, const DECOUPLED: bool> Optimizer<T> for AdamBase<T, DECOUPLED> {
    fn begin_step(&mut self) {
        self.state.begin_step();
    }

    fn update(&mut self, index: usize, parameter: &Parameter<T>, next: &mut [T]) -> bool {
        let AdamConfig { learning_rate: lr, beta1, beta2, eps, weight_decay, decay_scope } = self.config;
        let wd = if decay_scope.applies_to(parameter) { weight_decay } else { T::zero() };
        // Adam adds λP to the gradient; AdamW scales P by (1 − lr·λ) first.
        let (l2, shrink) = if DECOUPLED { (T::zero(), T::one() - lr * wd) } else { (wd, T::one()) };
        let committed_steps = self.state.steps();
        let (value, grad) = (parameter.value().as_slice(), parameter.grad().as_slice());
        let len = value.len();
        let [mean, mean_square, steps] = self.state.buffers_mut();
        // A checkpoint written before the per-tensor counts has `m` but no count: such a
        // tensor was updated by every committed step.
        let had_mean = mean.current(index).is_some();
        let (seen, count) = steps.slot(index, len, T::zero());
        let seen = if seen[0] == T::zero() && had_mean { committed_steps as f64 } else { seen[0].as_f64() };
        let t = seen + 1.0;
        count[0] = T::lit(t);
        // The bias corrections, per tensor: lr/(1−β₁ᵗ) and 1/√(1−β₂ᵗ).
        let step = lr / T::lit(1.0 - beta1.as_f64().powf(t));
        let unbias = T::lit(1.0 / (1.0 - beta2.as_f64().powf(t)).sqrt());
        let (keep1, keep2) = (T::one() - beta1, T::one() - beta2);
        let state = [mean.slot(index, len, T::zero()), mean_square.slot(index, len, T::zero())];
        let limit = square_limit(keep2);
        elementwise(value, grad, next, state, move |p, g, [m, v]| {
            let g = g + l2 * p;
            let m = beta1 * m + keep1 * g;
            let gs = square_input(g, limit);
            let v = beta2 * v + keep2 * gs * gs;
            (p * shrink - step * m / (v.sqrt() * unbias + eps), [m, v])
        })
    }

    fn commit_step(&mut self) {
        self.state.commit_step();
    }

    fn learning_rate(&self) -> T {
        self.config.learning_rate
    }

    fn set_learning_rate(&mut self, learning_rate: T) -> Result<()> {
        check_learning_rate(learning_rate)?;
        self.config.learning_rate = learning_rate;
        Ok(())
    }

    fn state(&self) -> Option<OptimizerState<T>> {
        Some(self.state.to_state())
    }

    fn load_state(&mut self, state: &OptimizerState<T>, lengths: &[usize]) -> Result<()> {
        self.state.load(state, lengths)
    }
}
