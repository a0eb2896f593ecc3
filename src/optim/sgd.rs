//! Stochastic gradient descent, with heavy-ball or Nesterov momentum and weight decay.

use super::{
    DecayScope, Extent, Optimizer, OptimizerState, Staged, StateSet, check, check_learning_rate,
    check_weight_decay, elementwise,
};
use crate::{Float, Parameter, Result};

/// The momentum of [`Sgd`]. An enum, so that Nesterov with dampening (which PyTorch rejects at
/// run time) cannot be written.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Momentum<T> {
    /// Plain gradient descent: no buffer.
    #[default]
    None,
    /// Heavy-ball momentum: `b = μb + (1−τ)∂P` (the first step: `b = ∂P`), then `P −= lr·b`.
    Heavy {
        /// `μ`, in [0, 1) (0.9 is usual).
        momentum: T,
        /// `τ`, in [0, 1]: how much of the gradient is held back (PyTorch default 0).
        dampening: T,
    },
    /// Nesterov momentum: the same buffer (no dampening), then `P −= lr·(∂P + μb)`.
    Nesterov {
        /// `μ`, in (0, 1).
        momentum: T,
    },
}

/// The settings of [`Sgd`], with PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig<T> {
    /// Step size `lr` (default 1e-3).
    pub learning_rate: T,
    /// Momentum (default none).
    pub momentum: Momentum<T>,
    /// `λ`: `∂P + λP` replaces the gradient (L2 through the optimizer; default 0).
    pub weight_decay: T,
    /// Which tensors `weight_decay` applies to (default: the regularized ones, not biases).
    pub decay_scope: DecayScope,
}

impl<T: Float> Default for SgdConfig<T> {
    fn default() -> Self {
        SgdConfig {
            learning_rate: T::lit(1e-3),
            momentum: Momentum::None,
            weight_decay: T::zero(),
            decay_scope: DecayScope::Regularized,
        }
    }
}

/// Stochastic gradient descent, PyTorch's `torch.optim.SGD`:
///
/// ```text
/// g = ∂P + λP                           (weight decay, on the tensors of the decay scope)
/// b = g on a tensor's first step, else μb + (1−τ)g      (with momentum)
/// g = b, or g + μb with Nesterov                         (with momentum)
/// P = P − lr·g
/// ```
///
/// ```
/// use feedforward::optim::{Momentum, Sgd, SgdConfig};
/// let sgd = Sgd::<f32>::new(SgdConfig {
///     learning_rate: 0.05,
///     momentum: Momentum::Nesterov { momentum: 0.9 },
///     ..SgdConfig::default()
/// })?;
/// assert_eq!(sgd.config().learning_rate, 0.05);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T: Float> {
    config: SgdConfig<T>,
    /// The momentum buffer `b`, one per tensor.
    state: StateSet<T, 1>,
}

impl<T: Float> Sgd<T> {
    /// SGD with `config`; rejects non-finite or out-of-range values.
    pub fn new(config: SgdConfig<T>) -> Result<Self> {
        check_learning_rate(config.learning_rate)?;
        check_weight_decay(config.weight_decay)?;
        let (zero, one) = (T::zero(), T::one());
        match config.momentum {
            Momentum::None => {}
            Momentum::Heavy { momentum, dampening } => {
                check("momentum", momentum, momentum >= zero && momentum < one, "must be in [0, 1)")?;
                check("dampening", dampening, dampening >= zero && dampening <= one, "must be in [0, 1]")?;
            }
            Momentum::Nesterov { momentum } => {
                check(
                    "momentum",
                    momentum,
                    momentum > zero && momentum < one,
                    "must be in (0, 1) for Nesterov",
                )?;
            }
        }
        Ok(Sgd { config, state: StateSet::new("sgd", [Staged::new("momentum_buffer", Extent::PerValue)]) })
    }

    /// Plain SGD at `learning_rate`, without momentum or weight decay.
    pub fn with_learning_rate(learning_rate: T) -> Result<Self> {
        Self::new(SgdConfig { learning_rate, ..SgdConfig::default() })
    }

    /// The settings (the learning rate as a schedule last set it).
    #[must_use]
    pub fn config(&self) -> SgdConfig<T> {
        self.config
    }

    /// Committed steps.
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.state.steps()
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn begin_step(&mut self) {
        self.state.begin_step();
    }

    fn update(&mut self, index: usize, parameter: &Parameter<T>, next: &mut [T]) -> bool {
        let SgdConfig { learning_rate: lr, momentum, weight_decay, decay_scope } = self.config;
        let wd = if decay_scope.applies_to(parameter) { weight_decay } else { T::zero() };
        let (value, grad) = (parameter.value().as_slice(), parameter.grad().as_slice());
        // b = carry·b + keep·g and direction = from_g·g + from_b·b: the four cases as
        // coefficients (exact: multiplying by 0 or 1 changes no finite value), so the loop has
        // no branch.
        let (mu, keep, (from_g, from_b)) = match momentum {
            Momentum::None => {
                return elementwise(value, grad, next, [], move |p, g, []| (p - lr * (g + wd * p), []));
            }
            Momentum::Heavy { momentum, dampening } => {
                (momentum, T::one() - dampening, (T::zero(), T::one()))
            }
            Momentum::Nesterov { momentum } => (momentum, T::one(), (T::one(), momentum)),
        };
        // A tensor's first step takes the gradient as it is: b = g.
        let [buffer] = self.state.buffers_mut();
        let (carry, keep) = if buffer.current(index).is_none() { (T::zero(), T::one()) } else { (mu, keep) };
        let state = [buffer.slot(index, value.len(), T::zero())];
        elementwise(value, grad, next, state, move |p, g, [b]| {
            let g = g + wd * p;
            let b = carry * b + keep * g;
            (p - lr * (from_g * g + from_b * b), [b])
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
