//! Optimizers behind the small [`Optimizer`] trait, and [`Rmsprop`] with its two update rules.
//!
//! | rule | state per tensor `P` | update |
//! |---|---|---|
//! | [`RmspropRule::Elementwise`] (PyTorch's `RMSprop`) | `v`, same shape as `P`, starts at 0 | `v = αv + (1−α)∂P²`; `P −= lr·∂P/(√v + ε)` |
//! | [`RmspropRule::PerTensor`] (the original recipe) | one scalar `g`, starts at 1 | `g = γg + (1−γ)‖∂P‖²`; `P −= lr/√(g+ε)·∂P` |
//!
//! With elementwise weight decay `wd > 0`, `∂P` is replaced by `∂P + wd·P` first (PyTorch's
//! semantics). The per-tensor rule can reset `g` to 1 every `K` steps, as the recipe does.

use crate::linalg::{LANES, all_finite, map2, simd};
use crate::parallel::{Cols, ColsMut, for_column_blocks};
use crate::{Error, Float, Result};

/// One block of the elementwise rule's data: `((next, v), (value, grad))`.
type Elementwise<'a, T> = ((ColsMut<'a, T>, ColsMut<'a, T>), (Cols<'a, T>, Cols<'a, T>));

/// Updates parameters from their gradients. Implement it to plug in another rule.
///
/// A training step calls [`begin_step`](Optimizer::begin_step) once, then
/// [`update`](Optimizer::update) for every parameter of the network in a fixed order, so `index`
/// identifies the tensor across steps. Updates are out of place: the network commits the new
/// values only once every tensor's are finite, so an update that overflows leaves the
/// parameters as they were, at no cost of a backup copy.
pub trait Optimizer<T: Float> {
    /// Called once at the start of each step.
    fn begin_step(&mut self) {}
    /// Writes the updated value of parameter number `index` into `next`, from its current
    /// `value` and gradient `grad` (all three flat, column-major, of the same length; `next`
    /// holds garbage on entry).
    ///
    /// A NaN or infinite gradient entry must give a non-finite `next` entry (plain arithmetic
    /// does): [`Network::train_step`](crate::Network::train_step) finds a bad gradient from the
    /// new values alone.
    fn update(&mut self, index: usize, value: &[T], grad: &[T], next: &mut [T]);
    /// [`update`](Optimizer::update), then whether every value written to `next` is finite.
    /// [`Network::train_step`](crate::Network::train_step) calls this one.
    ///
    /// The default scans `next` once `update` is done. An implementation may instead check each
    /// block of new values while it is still in cache, as [`Rmsprop`] does: one pass over the
    /// tensor instead of two.
    fn update_checked(&mut self, index: usize, value: &[T], grad: &[T], next: &mut [T]) -> bool {
        self.update(index, value, grad, next);
        crate::linalg::first_non_finite(next).is_none()
    }
    /// The current learning rate.
    fn learning_rate(&self) -> T;
    /// Changes the learning rate (schedules use this); rejects values that are not finite and > 0.
    fn set_learning_rate(&mut self, learning_rate: T) -> Result<()>;
}

/// Which RMSprop rule to apply, with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RmspropRule<T> {
    /// One running mean of the squared gradient per entry (PyTorch semantics).
    Elementwise {
        /// Smoothing constant α of the running mean (PyTorch default 0.99).
        alpha: T,
        /// Added to `√v` in the denominator (PyTorch default 1e-8).
        eps: T,
        /// Decoupled-from-the-loss L2 added to the gradient (`∂P + wd·P`); 0 disables it.
        weight_decay: T,
    },
    /// One running mean of the squared gradient *norm* per tensor (the original recipe).
    PerTensor {
        /// Smoothing constant γ (recipe: 0.99).
        gamma: T,
        /// Added to `g` under the square root (recipe: 1e-3).
        eps: T,
        /// Reset `g` to 1 before every `K`-th step (recipe: 500); `None` never resets.
        reset_every: Option<usize>,
    },
}

/// RMSprop, with either the elementwise or the per-tensor rule (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Rmsprop<T: Float> {
    learning_rate: T,
    rule: RmspropRule<T>,
    steps: usize,
    /// Elementwise rule: one `v` per tensor, created on first sight.
    mean_square: Vec<Vec<T>>,
    /// Per-tensor rule: one `g` per tensor.
    mean_norm: Vec<T>,
}

fn check<T: Float>(name: &'static str, value: T, ok: bool, requirement: &'static str) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter { name, value: value.as_f64(), requirement })
    }
}

impl<T: Float> Rmsprop<T> {
    /// RMSprop with `learning_rate` and `rule`; rejects non-finite or out-of-range values.
    pub fn new(learning_rate: T, rule: RmspropRule<T>) -> Result<Self> {
        let zero = T::zero();
        check("learning rate", learning_rate, learning_rate > zero, "must be finite and > 0")?;
        match rule {
            RmspropRule::Elementwise { alpha, eps, weight_decay } => {
                check("alpha", alpha, alpha >= zero && alpha < T::one(), "must be in [0, 1)")?;
                check("eps", eps, eps > zero, "must be finite and > 0")?;
                check("weight decay", weight_decay, weight_decay >= zero, "must be finite and >= 0")?;
            }
            RmspropRule::PerTensor { gamma, eps, reset_every } => {
                check("gamma", gamma, gamma >= zero && gamma < T::one(), "must be in [0, 1)")?;
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
        Ok(Rmsprop { learning_rate, rule, steps: 0, mean_square: Vec::new(), mean_norm: Vec::new() })
    }

    /// Elementwise RMSprop with PyTorch's defaults (α = 0.99, ε = 1e-8, no weight decay).
    pub fn elementwise(learning_rate: T) -> Result<Self> {
        let rule =
            RmspropRule::Elementwise { alpha: T::lit(0.99), eps: T::lit(1e-8), weight_decay: T::zero() };
        Self::new(learning_rate, rule)
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

    /// Steps taken so far.
    #[must_use]
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Per-tensor rule: the running mean `g` of each tensor, in parameter order (empty for the
    /// elementwise rule or before the first step).
    #[must_use]
    pub fn mean_square_norms(&self) -> &[T] {
        &self.mean_norm
    }

    /// Per-tensor rule: the effective step size `lr/√(g+ε)` of each tensor, in parameter order.
    #[must_use]
    pub fn effective_learning_rates(&self) -> Vec<T> {
        match self.rule {
            RmspropRule::PerTensor { eps, .. } => {
                self.mean_norm.iter().map(|&g| self.learning_rate / (g + eps).sqrt()).collect()
            }
            RmspropRule::Elementwise { .. } => Vec::new(),
        }
    }
}

impl<T: Float> Optimizer<T> for Rmsprop<T> {
    fn learning_rate(&self) -> T {
        self.learning_rate
    }

    fn set_learning_rate(&mut self, learning_rate: T) -> Result<()> {
        check("learning rate", learning_rate, learning_rate > T::zero(), "must be finite and > 0")?;
        self.learning_rate = learning_rate;
        Ok(())
    }

    fn begin_step(&mut self) {
        if let RmspropRule::PerTensor { reset_every: Some(k), .. } = self.rule
            && self.steps > 0
            && self.steps.is_multiple_of(k)
        {
            self.mean_norm.iter_mut().for_each(|g| *g = T::one());
        }
        self.steps += 1;
    }

    fn update(&mut self, index: usize, value: &[T], grad: &[T], next: &mut [T]) {
        // The check costs a pass over data still in cache; not worth a second copy of the rules.
        let _ = self.update_checked(index, value, grad, next);
    }

    fn update_checked(&mut self, index: usize, value: &[T], grad: &[T], next: &mut [T]) -> bool {
        let lr = self.learning_rate;
        match self.rule {
            RmspropRule::Elementwise { alpha, eps, weight_decay } => {
                if self.mean_square.len() <= index {
                    self.mean_square.resize(index + 1, Vec::new());
                }
                let v = &mut self.mean_square[index];
                v.resize(value.len(), T::zero());
                let keep = T::one() - alpha;
                let rule = |p: T, g: T, v: T| {
                    let g = g + weight_decay * p;
                    let v = alpha * v + keep * g * g;
                    (p - lr * g / (v.sqrt() + eps), v)
                };
                let block = |((next, v), (value, grad)): Elementwise<'_, T>| {
                    simd(
                        #[inline(always)]
                        || {
                            let whole = value.0.len() - value.0.len() % LANES;
                            let chunks = next.0.chunks_exact_mut(LANES).zip(v.0.chunks_exact_mut(LANES));
                            let inputs = value.0.chunks_exact(LANES).zip(grad.0.chunks_exact(LANES));
                            for ((next, v), (p, g)) in chunks.zip(inputs) {
                                // Results into local arrays, stored after every load: vectorizes
                                // without LLVM having to prove the four slices apart.
                                let (mut new_p, mut new_v) = ([T::zero(); LANES], [T::zero(); LANES]);
                                for lane in 0..LANES {
                                    (new_p[lane], new_v[lane]) = rule(p[lane], g[lane], v[lane]);
                                }
                                next.copy_from_slice(&new_p);
                                v.copy_from_slice(&new_v);
                            }
                            let rest = next.0[whole..].iter_mut().zip(&mut v.0[whole..]);
                            for ((next, v), (&p, &g)) in
                                rest.zip(value.0[whole..].iter().zip(&grad.0[whole..]))
                            {
                                (*next, *v) = rule(p, g, *v);
                            }
                            all_finite(next.0)
                        },
                    )
                };
                let data =
                    ((ColsMut(next, 1), ColsMut(v.as_mut_slice(), 1)), (Cols(value, 1), Cols(grad, 1)));
                for_column_blocks(value.len(), 1, data, &block, &|a, b| a && b)
            }
            RmspropRule::PerTensor { gamma, eps, .. } => {
                if self.mean_norm.len() <= index {
                    self.mean_norm.resize(index + 1, T::one());
                }
                let g = &mut self.mean_norm[index];
                *g = gamma * *g + (T::one() - gamma) * crate::linalg::sum_of_squares(grad);
                let step = lr / (*g + eps).sqrt();
                let block = |(next, value, grad): (ColsMut<'_, T>, Cols<'_, T>, Cols<'_, T>)| {
                    simd(
                        #[inline(always)]
                        || {
                            map2(next.0, value.0, grad.0, |p, d| p - step * d);
                            all_finite(next.0)
                        },
                    )
                };
                let data = (ColsMut(next, 1), Cols(value, 1), Cols(grad, 1));
                for_column_blocks(value.len(), 1, data, &block, &|a, b| a && b)
            }
        }
    }
}
