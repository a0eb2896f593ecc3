//! [`Dropout`]: inverted dropout, active in training steps, the identity in inference.
//!
//! | | forward | local gradient |
//! |---|---|---|
//! | training | `y = x·m/(1 − p)`, `m ~ Bernoulli(1 − p)` per entry, drawn each step | `dL/dx = dL/dy·m/(1 − p)` |
//! | inference | `y = x` | (none) |
//!
//! Inverted scaling keeps the expected value of `y` equal to `x`, so inference needs no
//! rescaling. Masks come from the step's [`TrainContext`], so the same network seed gives the
//! same masks on any thread count; a gradient check replays the last mask. Put a `Dropout`
//! after a hidden layer, or first in the network to drop input features (pixels).

use crate::module::TrainContext;
use crate::{Error, Float, Module, Result};
use nalgebra::DMatrix;
use rand::Rng;
use serde_json::{Map, Value};

/// Inverted dropout with drop probability `p`: in a training step, each entry is kept with
/// probability `1 − p` and scaled by `1/(1 − p)`, or zeroed, `y = x·m/(1 − p)`, and the
/// backward pass is `dL/dx = dL/dy·m/(1 − p)` with the same mask `m`; in inference, `y = x`.
/// Masks come from the step's [`TrainContext`](crate::TrainContext): the same network seed
/// gives the same masks on any thread count.
///
/// ```
/// use feedforward::{Dropout, Init, Layer, Network, Activation};
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let net = Network::<f32>::new(784)
///     .push(Dropout::new(0.2)?)?                                   // input dropout
///     .push(Layer::new(784, 256, Init::He, &mut rng).with_activation(Activation::Relu))?
///     .push(Dropout::new(0.5)?)?                                   // hidden dropout
///     .push(Layer::new(256, 10, Init::He, &mut rng))?
///     .with_seed(7);                                               // the masks' stream
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone)]
pub struct Dropout {
    probability: f64,
    /// The last training step's mask, one entry per input value: kept (1) or dropped (0).
    mask: Vec<u8>,
}

/// Shows the probability, not the last step's mask (one entry per input value of a batch).
impl std::fmt::Debug for Dropout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dropout").field("probability", &self.probability).finish_non_exhaustive()
    }
}

/// Two dropouts are equal when their probabilities are (the last mask aside).
impl PartialEq for Dropout {
    fn eq(&self, other: &Self) -> bool {
        self.probability == other.probability
    }
}

impl Dropout {
    /// Dropout with drop probability `probability`, in [0, 1).
    pub fn new(probability: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&probability) {
            return Err(Error::InvalidHyperparameter {
                name: "dropout probability",
                value: probability,
                requirement: "must be in [0, 1)",
            });
        }
        Ok(Dropout { probability, mask: Vec::new() })
    }

    /// The drop probability `p`.
    #[must_use]
    pub fn probability(&self) -> f64 {
        self.probability
    }

    /// Changes the drop probability, for instance of a loaded network's dropout (reached by
    /// [`downcast_mut`](crate::Module#method.downcast_mut)) before fine-tuning it. A value
    /// outside [0, 1) is an error and changes nothing.
    pub fn set_probability(&mut self, probability: f64) -> Result<()> {
        self.probability = Dropout::new(probability)?.probability;
        Ok(())
    }

    /// `y = x·factor`, `factor` 0 or `1/(1 − p)` by the mask: `0·x` keeps a NaN or ±inf
    /// non-finite, as the network's input check expects.
    fn apply<T: Float>(&self, x: &[T], y: &mut [T]) {
        let (drop, keep) = (T::zero(), T::lit(1.0 / (1.0 - self.probability)));
        for ((y, &x), &m) in y.iter_mut().zip(x).zip(&self.mask) {
            *y = x * if m == 1 { keep } else { drop };
        }
    }
}

impl<T: Float> Module<T> for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }

    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        Ok(input_rows)
    }

    /// Inference: the identity.
    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        output.copy_from(input);
    }

    fn forward_train(&mut self, input: &DMatrix<T>, output: &mut DMatrix<T>, context: &mut TrainContext) {
        if !context.replay() || self.mask.len() != input.len() {
            // Kept when a uniform u32 falls below (1 − p)·2³²: one draw per entry.
            let threshold = ((1.0 - self.probability) * 4_294_967_296.0) as u64;
            let rng = context.rng();
            self.mask.clear();
            self.mask.extend((0..input.len()).map(|_| u8::from(u64::from(rng.next_u32()) < threshold)));
        }
        self.apply(input.as_slice(), output.as_mut_slice());
    }

    fn backward(
        &mut self,
        _input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        if let Some(dx) = grad_input {
            self.apply(grad_output.as_slice(), dx.as_mut_slice());
        }
    }

    fn propagates_non_finite(&self) -> bool {
        true
    }

    fn describe(&self) -> Option<Map<String, Value>> {
        Some(Map::from_iter([("probability".to_string(), self.probability.into())]))
    }
}
