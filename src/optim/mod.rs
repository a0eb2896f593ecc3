//! Optimizers behind the small [`Optimizer`] trait: [`Sgd`], [`Adam`], [`AdamW`] and [`Rmsprop`].
//!
//! Every rule is PyTorch's documented algorithm, with PyTorch's defaults, written out in the
//! docs of its type. `∂P` is the gradient of the tensor `P`, `t` the 1-based step.
//!
//! | optimizer | state per tensor | update |
//! |---|---|---|
//! | [`Sgd`] | momentum buffer `b` (with momentum) | `b = μb + (1−τ)∂P`; `P −= lr·b` (Nesterov: `lr·(∂P + μb)`) |
//! | [`Adam`] | `m`, `v` | `m = β₁m + (1−β₁)∂P`, `v = β₂v + (1−β₂)∂P²`; `P −= lr·m̂/(√v̂ + ε)` |
//! | [`AdamW`] | `m`, `v` | [`Adam`]'s, after `P −= lr·λ·P` (decoupled decay) |
//! | [`Rmsprop`], elementwise | `v` (and `ḡ`, `b`) | `v = αv + (1−α)∂P²`; `P −= lr·∂P/(√v + ε)` |
//! | [`Rmsprop`], per tensor | one scalar `g` | `g = γg + (1−γ)‖∂P‖²`; `P −= lr/√(g+ε)·∂P` (the original recipe) |
//!
//! **Weight decay skips biases by default.** Each optimizer's `weight_decay` applies to the
//! tensors selected by its [`DecayScope`]: by default those marked regularized
//! ([`Parameter::is_regularized`]: a layer's weights, not its bias), as the network's L2 penalty
//! does; [`DecayScope::All`] is PyTorch's behaviour.
//!
//! **State never holds subnormal numbers.** A running mean that only decays (the momentum of
//! a weight whose input is almost always 0, such as an MNIST border pixel) reaches the
//! subnormal range after some 800 steps at `μ = 0.9`, and arithmetic on subnormals is many times
//! slower on x86: SGD with momentum spent a third of a whole MNIST run on them. So every new
//! state value below the smallest normal number (1.2e-38 in `f32`) is stored as 0, a change of
//! less than that amount; parameters are stored as computed.
//!
//! **A rejected step changes nothing.** A step writes every tensor's new value and new state
//! out of place (the state double-buffered in [`Staged`]); the network calls
//! [`commit_step`](Optimizer::commit_step) only once every value is finite. A step rejected for
//! a NaN leaves both the parameters and the optimizer exactly as they were, at no cost beyond a
//! second copy of the state kept between steps.

mod adam;
mod rmsprop;
mod sgd;
mod staged;

pub use adam::{Adam, AdamConfig, AdamW};
pub use rmsprop::{Rmsprop, RmspropElementwise, RmspropRule};
pub use sgd::{Momentum, Sgd, SgdConfig};
pub use staged::{Extent, OptimizerState, Staged, StateSet};

use crate::linalg::{LANES, flush_subnormal, simd};
use crate::parallel::{Cols, ColsMut, for_column_blocks};
use crate::{Error, Float, Parameter, Result};

/// Updates parameters from their gradients. Implement it to plug in another rule.
///
/// A training step calls [`begin_step`](Optimizer::begin_step) once, then
/// [`update`](Optimizer::update) for the parameters of the network in a fixed order (so `index`
/// identifies a tensor across steps), then [`commit_step`](Optimizer::commit_step) if, and only
/// if, every update returned `true`. A step that is not committed must leave no trace: keep new
/// state aside until the commit ([`Staged`] does that for per-element state), so a step
/// rejected for a NaN leaves the optimizer as it was.
///
/// ```
/// use feedforward::optim::OptimizerState;
/// use feedforward::{Error, Optimizer, Parameter, Result};
///
/// /// Plain gradient descent: no state, so nothing to stage.
/// struct Descent(f32);
///
/// impl Optimizer<f32> for Descent {
///     fn update(&mut self, _index: usize, p: &Parameter<f32>, next: &mut [f32]) -> bool {
///         for ((n, &v), &g) in next.iter_mut().zip(p.value().as_slice()).zip(p.grad().as_slice()) {
///             *n = v - self.0 * g;
///         }
///         next.iter().all(|v| v.is_finite())
///     }
///     fn learning_rate(&self) -> f32 { self.0 }
///     fn set_learning_rate(&mut self, rate: f32) -> Result<()> { self.0 = rate; Ok(()) }
/// }
/// ```
pub trait Optimizer<T: Float> {
    /// Called once at the start of each step, before its updates. The previous step may have
    /// been rejected (no [`commit_step`](Optimizer::commit_step)): forget what it staged.
    fn begin_step(&mut self) {}

    /// Writes the updated value of parameter number `index` into `next` (flat, column-major,
    /// as long as the parameter; it holds garbage on entry) from the parameter's value and
    /// gradient, and returns whether every value written, and every new state value, is finite.
    /// A [frozen](Parameter::freeze) parameter is not passed, but keeps its number: a step may
    /// skip numbers.
    ///
    /// A NaN or infinite gradient entry must give `false` (plain arithmetic carries it into
    /// `next`). Check while the values are in cache, as this crate's optimizers do, or scan
    /// `next` at the end.
    fn update(&mut self, index: usize, parameter: &Parameter<T>, next: &mut [T]) -> bool;

    /// Makes the step's staged state the current state: called after every update of the step
    /// returned `true`, just before the network swaps in the new values.
    fn commit_step(&mut self) {}

    /// The current learning rate.
    fn learning_rate(&self) -> T;

    /// Changes the learning rate (schedules use this); rejects values that are not finite and > 0.
    fn set_learning_rate(&mut self, learning_rate: T) -> Result<()>;

    /// The committed state, for a checkpoint; `None` if this optimizer cannot be checkpointed
    /// (the default).
    fn state(&self) -> Option<OptimizerState<T>> {
        None
    }

    /// Restores a state returned by [`state`](Optimizer::state) on an optimizer built with the
    /// same settings, for the parameters it will update: `lengths[i]` is the number of values of
    /// parameter `i`, numbered as [`update`](Optimizer::update) numbers them
    /// (`network.parameters().map(Parameter::len)`). Rejects a state that does not fit them
    /// ([`StateSet::load`] checks each buffer's tensor number and length). The default rejects
    /// every state.
    fn load_state(&mut self, state: &OptimizerState<T>, lengths: &[usize]) -> Result<()> {
        let _ = lengths;
        Err(Error::OptimizerState {
            reason: format!("this optimizer cannot restore a {:?} state", state.kind),
        })
    }
}

/// Which tensors an optimizer's weight decay applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DecayScope {
    /// The tensors marked regularized ([`Parameter::is_regularized`]): weights, not biases.
    #[default]
    Regularized,
    /// Every tensor, biases included (PyTorch's behaviour when all parameters are in one group).
    All,
}

impl DecayScope {
    /// Whether the decay applies to `parameter`.
    #[must_use]
    pub fn applies_to<T: Float>(self, parameter: &Parameter<T>) -> bool {
        match self {
            DecayScope::Regularized => parameter.is_regularized(),
            DecayScope::All => true,
        }
    }
}

/// Rejects `value` unless it is finite and `ok`.
pub(crate) fn check<T: Float>(
    name: &'static str,
    value: T,
    ok: bool,
    requirement: &'static str,
) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter { name, value: value.as_f64(), requirement })
    }
}

/// Checks a learning rate: finite and > 0.
pub(crate) fn check_learning_rate<T: Float>(learning_rate: T) -> Result<()> {
    check("learning rate", learning_rate, learning_rate > T::zero(), "must be finite and > 0")
}

/// Checks a weight decay: finite and >= 0.
pub(crate) fn check_weight_decay<T: Float>(weight_decay: T) -> Result<()> {
    check("weight decay", weight_decay, weight_decay >= T::zero(), "must be finite and >= 0")
}

/// One tensor of `K` state buffers: `(current, staged)`.
pub(crate) type StateSlices<'a, T, const K: usize> = [(&'a [T], &'a mut [T]); K];

/// The shared driver of every elementwise rule: `rule(p, ∂p, state) -> (new p, new state)` over
/// every entry of one tensor, with `K` state values per entry read from the current buffers and
/// written to the staged ones. Spread over the thread team in fixed blocks (the same bits on
/// any thread count), vectorized, and checked for non-finite results in the same pass.
///
/// `rule` is taken by value (a `move` closure of scalars is `Copy`): each block works on its own
/// copy, so the settings stay in registers instead of being reloaded after every store.
pub(crate) fn elementwise<T: Float, const K: usize>(
    value: &[T],
    grad: &[T],
    next: &mut [T],
    state: StateSlices<'_, T, K>,
    rule: impl Fn(T, T, [T; K]) -> (T, [T; K]) + Sync + Copy,
) -> bool {
    let len = value.len();
    assert!(grad.len() == len && next.len() == len, "elementwise: lengths differ");
    assert!(state.iter().all(|(c, s)| c.len() == len && s.len() == len), "elementwise: state lengths differ");
    let state = state.map(|(current, staged)| (Cols(current, 1), ColsMut(staged, 1)));
    let data = ((ColsMut(next, 1), (Cols(value, 1), Cols(grad, 1))), state);
    let block = |((next, (value, grad)), state): Block<'_, T, K>| {
        simd(
            #[inline(always)]
            || block_update(next.0, value.0, grad.0, state, rule),
        )
    };
    for_column_blocks(len, 1, data, &block, &|a, b| a && b)
}

/// One thread's share of [`elementwise`]: `((next, (value, grad)), state)`.
type Block<'a, T, const K: usize> =
    ((ColsMut<'a, T>, (Cols<'a, T>, Cols<'a, T>)), [(Cols<'a, T>, ColsMut<'a, T>); K]);

#[inline(always)]
fn block_update<T: Float, const K: usize>(
    next: &mut [T],
    value: &[T],
    grad: &[T],
    state: [(Cols<'_, T>, ColsMut<'_, T>); K],
    rule: impl Fn(T, T, [T; K]) -> (T, [T; K]) + Copy,
) -> bool {
    // `v·0` is 0 for a finite `v` and NaN otherwise: the sum flags any non-finite result.
    let mut flags = [T::zero(); LANES];
    let whole = value.len() - value.len() % LANES;
    for start in (0..whole).step_by(LANES) {
        let range = start..start + LANES;
        let p: &[T; LANES] = value[range.clone()].try_into().expect("a whole chunk");
        let g: &[T; LANES] = grad[range.clone()].try_into().expect("a whole chunk");
        let s: [&[T; LANES]; K] =
            std::array::from_fn(|k| state[k].0.0[range.clone()].try_into().expect("a whole chunk"));
        // Results into local arrays, stored after every load: vectorizes without LLVM having to
        // prove the slices apart.
        let mut new_p = [T::zero(); LANES];
        let mut new_s = [[T::zero(); LANES]; K];
        for lane in 0..LANES {
            let (p, s) = rule(p[lane], g[lane], std::array::from_fn(|k| s[k][lane]));
            new_p[lane] = p;
            flags[lane] += p * T::zero();
            for k in 0..K {
                new_s[k][lane] = flush_subnormal(s[k]);
                flags[lane] += s[k] * T::zero();
            }
        }
        next[range.clone()].copy_from_slice(&new_p);
        for k in 0..K {
            state[k].1.0[range.clone()].copy_from_slice(&new_s[k]);
        }
    }
    let mut flag = flags.iter().fold(T::zero(), |a, &b| a + b);
    for i in whole..value.len() {
        let (p, s) = rule(value[i], grad[i], std::array::from_fn(|k| state[k].0.0[i]));
        next[i] = p;
        flag += p * T::zero();
        for k in 0..K {
            state[k].1.0[i] = flush_subnormal(s[k]);
            flag += s[k] * T::zero();
        }
    }
    flag == T::zero()
}
