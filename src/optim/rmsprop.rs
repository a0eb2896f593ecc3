//! RMSprop, with PyTorch's elementwise rule or the original recipe's per-tensor rule.

use super::{
    DecayScope, Extent, Optimizer, OptimizerState, Staged, StateSet, check, check_learning_rate,
    check_weight_decay, elementwise,
};
use crate::linalg::{square_input, square_limit};
use crate::{Error, Float, Parameter, Result};

/// The settings of PyTorch's elementwise RMSprop (`torch.optim.RMSprop`), with its defaults:
///
/// ```text
/// g = ∂P + λP                      (weight decay, on the tensors of the decay scope)
/// v = αv + (1−α)g²;  ṽ = v         (v starts at 0)
/// centered: ḡ = αḡ + (1−α)g;  ṽ = v − ḡ²
/// momentum μ > 0: b = μb + g/(√ṽ + ε);  P = P − lr·b
/// otherwise:      P = P − lr·g/(√ṽ + ε)
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmspropElementwise<T> {
    /// Smoothing constant α of the running means, in [0, 1) (default 0.99).
    pub alpha: T,
    /// Added to `√ṽ` in the denominator (default 1e-8).
    pub eps: T,
    /// `λ`: `∂P + λP` replaces the gradient (default 0).
    pub weight_decay: T,
    /// Which tensors `weight_decay` applies to (default: the regularized ones, not biases).
    pub decay_scope: DecayScope,
    /// `μ`, in [0, 1) (default 0: no momentum buffer).
    pub momentum: T,
    /// Normalize by the variance `v − ḡ²` rather than the raw second moment (default false).
    pub centered: bool,
}

impl<T: Float> Default for RmspropElementwise<T> {
    fn default() -> Self {
        RmspropElementwise {
            alpha: T::lit(0.99),
            eps: T::lit(1e-8),
            weight_decay: T::zero(),
            decay_scope: DecayScope::Regularized,
            momentum: T::zero(),
            centered: false,
        }
    }
}

/// Which RMSprop rule to apply, with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RmspropRule<T> {
    /// One running mean of the squared gradient per entry: PyTorch's rule.
    Elementwise(RmspropElementwise<T>),
    /// One running mean of the squared gradient *norm* per tensor (the original recipe):
    /// `g = γg + (1−γ)‖∂P‖²` (g starts at 1), `P = P − lr/√(g+ε)·∂P`.
    PerTensor {
        /// Smoothing constant γ (recipe: 0.99).
        gamma: T,
        /// Added to `g` under the square root (recipe: 1e-3).
        eps: T,
        /// Reset `g` to 1 before every `K`-th step (recipe: 500); `None` never resets.
        reset_every: Option<usize>,
    },
}

/// RMSprop, with either the elementwise or the per-tensor rule (see [`RmspropRule`]).
///
/// ```
/// use feedforward::optim::RmspropElementwise;
/// use feedforward::{Optimizer, Rmsprop, RmspropRule};
/// let settings = RmspropElementwise { momentum: 0.9, centered: true, ..Default::default() };
/// let opt = Rmsprop::<f32>::new(1e-3, RmspropRule::Elementwise(settings))?;
/// assert_eq!(opt.learning_rate(), 1e-3);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Rmsprop<T: Float> {
    learning_rate: T,
    rule: RmspropRule<T>,
    /// Elementwise: `v` per entry, `ḡ` (centered), `b` (momentum). Per tensor: `g`, one value
    /// per tensor.
    state: StateSet<T, 3>,
    /// Per tensor: whether this step starts from `g = 1` (a reset step).
    reset: bool,
}

impl<T: Float> Rmsprop<T> {
    /// RMSprop with `learning_rate` and `rule`; rejects non-finite or out-of-range values.
    pub fn new(learning_rate: T, rule: RmspropRule<T>) -> Result<Self> {
        check_learning_rate(learning_rate)?;
        let (zero, one) = (T::zero(), T::one());
        match rule {
            RmspropRule::Elementwise(RmspropElementwise { alpha, eps, weight_decay, momentum, .. }) => {
                check("alpha", alpha, alpha >= zero && alpha < one, "must be in [0, 1)")?;
                check("eps", eps, eps > zero, "must be finite and > 0")?;
                check_weight_decay(weight_decay)?;
                check("momentum", momentum, momentum >= zero && momentum < one, "must be in [0, 1)")?;
            }
            RmspropRule::PerTensor { gamma, eps, reset_every } => {
                check("gamma", gamma, gamma >= zero && gamma < one, "must be in [0, 1)")?;
                check("eps", eps, eps > zero, "must be finite and > 0")?;
                if reset_every == Some(0) {
                    return Err(Error::InvalidHyperparameter {
                        name: "reset every",
                        value: 0.0,
                        requirement: "must be at least 1 step (or None)",
                    });
                }
            }
        }
        let mean_square = match rule {
            RmspropRule::Elementwise(_) => Staged::new("square_avg", Extent::PerValue),
            RmspropRule::PerTensor { .. } => Staged::new("mean_square_norm", Extent::PerTensor),
        };
        let state = StateSet::new(
            Self::KIND,
            [
                mean_square,
                Staged::new("grad_avg", Extent::PerValue),
                Staged::new("momentum_buffer", Extent::PerValue),
            ],
        );
        Ok(Rmsprop { learning_rate, rule, state, reset: false })
    }

    /// Elementwise RMSprop with PyTorch's defaults ([`RmspropElementwise::default`]).
    pub fn elementwise(learning_rate: T) -> Result<Self> {
        Self::new(learning_rate, RmspropRule::Elementwise(RmspropElementwise::default()))
    }

    /// The original recipe's per-tensor rule: γ = 0.99, ε = 1e-3, `g` reset every
    /// `reset_every` steps (the recipe uses η = 0.5 and 500).
    pub fn per_tensor(learning_rate: T, reset_every: Option<usize>) -> Result<Self> {
        let rule = RmspropRule::PerTensor { gamma: T::lit(0.99), eps: T::lit(1e-3), reset_every };
        Self::new(learning_rate, rule)
    }

    /// The rule and its hyper-parameters.
    #[must_use]
    pub fn rule(&self) -> RmspropRule<T> {
        self.rule
    }

    /// Committed steps.
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.state.steps()
    }

    /// Per-tensor rule: the running mean `g` of each tensor, in parameter order (empty for the
    /// elementwise rule or before the first step).
    #[must_use]
    pub fn mean_square_norms(&self) -> Vec<T> {
        match self.rule {
            RmspropRule::PerTensor { .. } => {
                let [g, ..] = self.state.buffers();
                (0..).map_while(|i| g.current(i).map(|g| g[0])).collect()
            }
            RmspropRule::Elementwise(_) => Vec::new(),
        }
    }

    /// Per-tensor rule: the effective step size `lr/√(g+ε)` of each tensor, in parameter order.
    #[must_use]
    pub fn effective_learning_rates(&self) -> Vec<T> {
        match self.rule {
            RmspropRule::PerTensor { eps, .. } => {
                self.mean_square_norms().iter().map(|&g| self.learning_rate / (g + eps).sqrt()).collect()
            }
            RmspropRule::Elementwise(_) => Vec::new(),
        }
    }

    /// The elementwise rule on one tensor.
    fn update_elementwise(
        &mut self,
        index: usize,
        parameter: &Parameter<T>,
        next: &mut [T],
        (alpha, eps, wd): (T, T, T),
        momentum: T,
        centered: bool,
    ) -> bool {
        let lr = self.learning_rate;
        let keep = T::one() - alpha;
        let (value, grad) = (parameter.value().as_slice(), parameter.grad().as_slice());
        let len = value.len();
        let limit = square_limit(keep);
        // The shared steps; `mean` is ḡ when centered (else unused), `b` the momentum buffer.
        let rule = move |p: T, g: T, v: T, mean: T| {
            let g = g + wd * p;
            let gs = square_input(g, limit);
            let v = alpha * v + keep * gs * gs;
            let mean = alpha * mean + keep * g;
            let variance = if centered { v - mean * mean } else { v };
            (g / (variance.sqrt() + eps), v, mean)
        };
        let [mean_square, mean, buffer] = self.state.buffers_mut();
        let v = mean_square.slot(index, len, T::zero());
        match (centered, momentum > T::zero()) {
            (false, false) => elementwise(value, grad, next, [v], move |p, g, [v]| {
                let (step, v, _) = rule(p, g, v, T::zero());
                (p - lr * step, [v])
            }),
            (true, false) => {
                let mean = mean.slot(index, len, T::zero());
                elementwise(value, grad, next, [v, mean], move |p, g, [v, mean]| {
                    let (step, v, mean) = rule(p, g, v, mean);
                    (p - lr * step, [v, mean])
                })
            }
            (false, true) => {
                let b = buffer.slot(index, len, T::zero());
                elementwise(value, grad, next, [v, b], move |p, g, [v, b]| {
                    let (step, v, _) = rule(p, g, v, T::zero());
                    let b = momentum * b + step;
                    (p - lr * b, [v, b])
                })
            }
            (true, true) => {
                let (mean, b) = (mean.slot(index, len, T::zero()), buffer.slot(index, len, T::zero()));
                elementwise(value, grad, next, [v, mean, b], move |p, g, [v, mean, b]| {
                    let (step, v, mean) = rule(p, g, v, mean);
                    let b = momentum * b + step;
                    (p - lr * b, [v, mean, b])
                })
            }
        }
    }

    const KIND: &'static str = "rmsprop";
}

impl<T: Float> Optimizer<T> for Rmsprop<T> {
    fn learning_rate(&self) -> T {
        self.learning_rate
    }

    fn set_learning_rate(&mut self, learning_rate: T) -> Result<()> {
        check_learning_rate(learning_rate)?;
        self.learning_rate = learning_rate;
        Ok(())
    }

    fn begin_step(&mut self) {
        self.state.begin_step();
        let steps = self.state.steps();
        self.reset = matches!(self.rule, RmspropRule::PerTensor { reset_every: Some(k), .. }
            if steps > 0 && steps.is_multiple_of(k as u64));
    }

    fn update(&mut self, index: usize, parameter: &Parameter<T>, next: &mut [T]) -> bool {
        match self.rule {
            RmspropRule::Elementwise(RmspropElementwise {
                alpha,
                eps,
                weight_decay,
                decay_scope,
                momentum,
                centered,
            }) => {
                let wd = if decay_scope.applies_to(parameter) { weight_decay } else { T::zero() };
                self.update_elementwise(index, parameter, next, (alpha, eps, wd), momentum, centered)
            }
            RmspropRule::PerTensor { gamma, eps, .. } => {
                let grad = parameter.grad().as_slice();
                let [mean_square, ..] = self.state.buffers_mut();
                let (current, staged) = mean_square.slot(index, grad.len(), T::one());
                let g = if self.reset { T::one() } else { current[0] };
                staged[0] = gamma * g + (T::one() - gamma) * crate::linalg::sum_of_squares(grad);
                let step = self.learning_rate / (staged[0] + eps).sqrt();
                let finite = staged[0].is_finite();
                let value = parameter.value().as_slice();
                elementwise(value, grad, next, [], move |p, d, []| (p - step * d, [])) && finite
            }
        }
    }

    fn commit_step(&mut self) {
        self.state.commit_step();
    }

    fn state(&self) -> Option<OptimizerState<T>> {
        Some(self.state.to_state())
    }

    fn load_state(&mut self, state: &OptimizerState<T>, lengths: &[usize]) -> Result<()> {
        self.state.load(state, lengths)
    }
}
