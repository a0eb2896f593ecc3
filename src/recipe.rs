//! The two MNIST recipes of the `mnist` example, as reusable values.
//!
//! | | [`Recipe::Default`] | [`Recipe::Seed`] (the original) |
//! |---|---|---|
//! | network | 784-256-10, He init, output bias | 784-256-10, `0.1·N(0,1)` weights, `N(0,1)` hidden bias, no output bias |
//! | loss | cross-entropy | cross-entropy + `1e-6/2·Σ‖W‖²` |
//! | optimizer | elementwise RMSprop, lr 2e-3, cosine decay to 0 | per-tensor RMSprop, η 0.5, γ 0.99, ε 1e-3, `g` reset every 500 |
//! | batches | 128, reshuffled every epoch | full batch |
//! | length | 10 epochs | 2000 iterations |
//! | data | all 60000 training images | the first 42000 |

use crate::train::{Batching, Schedule, TrainConfig};
use crate::{Error, Float, Init, Network, Result, Rmsprop};
use rand::Rng;

/// Pixels per MNIST image.
pub const MNIST_FEATURES: usize = 784;
/// Digit classes.
pub const MNIST_CLASSES: usize = 10;
/// Hidden units of both recipes.
pub const HIDDEN: usize = 256;

/// A complete training recipe for the MNIST network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Recipe {
    /// Minibatch elementwise RMSprop: what a user wants.
    #[default]
    Default,
    /// The original recipe, reproduced faithfully.
    Seed,
}

impl Recipe {
    /// The untrained network, drawn from `rng`.
    pub fn network<T: Float, R: Rng + ?Sized>(self, rng: &mut R) -> Result<Network<T>> {
        let sizes = [MNIST_FEATURES, HIDDEN, MNIST_CLASSES];
        match self {
            Recipe::Default => Network::mlp(&sizes, Init::He, true, rng),
            Recipe::Seed => Network::mlp(&sizes, Init::SEED_RECIPE, false, rng)?.with_l2(T::lit(1e-6)),
        }
    }

    /// The learning rate used unless overridden.
    #[must_use]
    pub fn default_learning_rate(self) -> f64 {
        match self {
            Recipe::Default => 2e-3,
            Recipe::Seed => 0.5,
        }
    }

    /// The optimizer, with `learning_rate` or the recipe's own.
    ///
    /// A rate that is not finite and > 0, or that `T` cannot hold (1e-50 is 0 in `f32`), is an
    /// error naming the value as given.
    pub fn optimizer<T: Float>(self, learning_rate: Option<f64>) -> Result<Rmsprop<T>> {
        let given = learning_rate.unwrap_or(self.default_learning_rate());
        let lr = T::lit(given);
        if !(given.is_finite() && given > 0.0 && lr > T::zero() && lr.is_finite()) {
            return Err(Error::InvalidHyperparameter {
                name: "learning rate",
                value: given,
                requirement: "must be finite, > 0, and within the range of the scalar type",
            });
        }
        match self {
            Recipe::Default => Rmsprop::elementwise(lr),
            Recipe::Seed => Rmsprop::per_tensor(lr, Some(500)),
        }
    }

    /// Epochs (default recipe) or full-batch iterations (seed recipe) unless overridden.
    #[must_use]
    pub fn default_epochs(self) -> usize {
        match self {
            Recipe::Default => 10,
            Recipe::Seed => 2000,
        }
    }

    /// Training images used unless overridden (`None`: all).
    #[must_use]
    pub fn default_train_limit(self) -> Option<usize> {
        match self {
            Recipe::Default => None,
            Recipe::Seed => Some(42000),
        }
    }

    /// Minibatch size unless overridden (`None`: full batch).
    #[must_use]
    pub fn default_batch_size(self) -> Option<usize> {
        match self {
            Recipe::Default => Some(128),
            Recipe::Seed => None,
        }
    }

    /// The training schedule: `epochs` passes with `batch_size` (`None`: full batch), and the
    /// recipe's learning-rate schedule (cosine decay for the default, constant for the seed).
    #[must_use]
    pub fn train_config(self, epochs: usize, batch_size: Option<usize>, seed: u64) -> TrainConfig {
        let batching = match batch_size {
            Some(size) => Batching::Minibatch { size, shuffle: true },
            None => Batching::Full,
        };
        let schedule = match self {
            Recipe::Default => Schedule::Cosine { final_fraction: 0.0 },
            Recipe::Seed => Schedule::Constant,
        };
        TrainConfig { epochs, batching, seed, max_steps: None, schedule }
    }
}

impl std::str::FromStr for Recipe {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "default" => Ok(Recipe::Default),
            "seed" => Ok(Recipe::Seed),
            other => Err(format!("unknown recipe {other:?}: expected \"default\" or \"seed\"")),
        }
    }
}
