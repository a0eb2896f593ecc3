//! The MNIST recipes of the `mnist` example, as reusable values.
//!
//! | | [`Recipe::Default`] | [`Recipe::Regularized`] | [`Recipe::Seed`] (the original) |
//! |---|---|---|---|
//! | network | 784-256-10, He init, output bias | 784-256-10 as default, input dropout 0.1, hidden dropout 0.3 | 784-256-10, `0.1·N(0,1)` weights, `N(0,1)` hidden bias, no output bias |
//! | loss | cross-entropy | cross-entropy, label smoothing 0.1 | cross-entropy + `1e-6/2·Σ‖W‖²` |
//! | optimizer | elementwise RMSprop, lr 2e-3, cosine decay to 0 | the same | per-tensor RMSprop, η 0.5, γ 0.99, ε 1e-3, `g` reset every 500 |
//! | batches | 128, reshuffled every epoch | 128, reshuffled | full batch |
//! | length | 10 epochs | 60 epochs | 2000 iterations |
//! | data | all 60000 training images | all 60000 | the first 42000 |

use feedforward::train::{Batching, Schedule, TrainConfig};
use feedforward::{
    Dropout, Error, Float, Init, MlpConfig, Network, ResNetConfig, Result, Rmsprop, SoftmaxCrossEntropy,
};
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
    /// Minibatch elementwise RMSprop: what a user wants, in a few seconds.
    #[default]
    Default,
    /// The default network and optimizer with dropout, label smoothing and a longer run: the
    /// best test accuracy this crate reaches with one hidden layer of 256 units.
    Regularized,
    /// The original recipe, reproduced faithfully.
    Seed,
}

/// The shape of an MLP for MNIST, as a recipe sets it and a command line may change it.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSpec {
    /// Hidden layer sizes, input to output (`[256]` for every recipe).
    pub hidden: Vec<usize>,
    /// Instead of an MLP, a ResNet of this many blocks (`Network::resnet`) of width
    /// `hidden[0]`, each block's hidden layer twice as wide, with the layers' activation,
    /// normalization, initialisation and hidden dropout (input dropout in front).
    pub blocks: Option<usize>,
    /// The layers' initialisation, hidden activation, output bias and dropout.
    pub layers: MlpConfig,
    /// L2 coefficient of the network's penalty.
    pub l2: f64,
}

impl NetworkSpec {
    /// The network, drawn from `rng` (its dropout stream too).
    pub fn build<T: Float, R: Rng + ?Sized>(&self, rng: &mut R) -> Result<Network<T>> {
        if self.hidden.contains(&0) {
            return Err(Error::shape("hidden sizes", "sizes of at least 1", format!("{:?}", self.hidden)));
        }
        let Some(blocks) = self.blocks else {
            return Network::mlp(&self.layer_sizes(), self.layers, rng)?.with_l2(T::lit(self.l2));
        };
        let [width] = self.hidden[..] else {
            return Err(Error::shape(
                "a ResNet's hidden sizes",
                "one: its width",
                format!("{:?}", self.hidden),
            ));
        };
        let config = ResNetConfig {
            blocks,
            width,
            hidden: 2 * width,
            activation: self.layers.hidden_activation,
            normalization: self.layers.normalization,
            hidden_dropout: self.layers.dropout,
            init: self.layers.init,
            ..ResNetConfig::default()
        };
        let mut net = Network::new(MNIST_FEATURES);
        if self.layers.input_dropout > 0.0 {
            net = net.push(Dropout::new(self.layers.input_dropout)?)?;
        }
        // The ResNet's seed, drawn from `rng` when it drops, is the whole network's.
        let resnet = Network::resnet(MNIST_FEATURES, MNIST_CLASSES, config, rng)?;
        let seed = resnet.seed();
        net.append(resnet)?.with_seed(seed).with_l2(T::lit(self.l2))
    }

    /// Inputs, hidden sizes, classes.
    fn layer_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![MNIST_FEATURES];
        sizes.extend(&self.hidden);
        sizes.push(MNIST_CLASSES);
        sizes
    }

    /// `784-256-10`, or `784-256-[2 blocks of 512]-10` for a ResNet, for printing.
    #[must_use]
    pub fn sizes(&self) -> String {
        match self.blocks {
            None => self.layer_sizes().iter().map(usize::to_string).collect::<Vec<_>>().join("-"),
            Some(blocks) => {
                let width = self.hidden.first().copied().unwrap_or_default();
                format!("{MNIST_FEATURES}-{width}-[{blocks} blocks of {}]-{MNIST_CLASSES}", 2 * width)
            }
        }
    }
}

impl Recipe {
    /// The network's shape.
    #[must_use]
    pub fn network_spec(self) -> NetworkSpec {
        let default =
            NetworkSpec { hidden: vec![HIDDEN], blocks: None, layers: MlpConfig::default(), l2: 0.0 };
        match self {
            Recipe::Default => default,
            Recipe::Regularized => NetworkSpec {
                layers: MlpConfig { input_dropout: 0.1, dropout: 0.3, ..default.layers },
                ..default
            },
            Recipe::Seed => NetworkSpec {
                layers: MlpConfig { init: Init::SEED_RECIPE, output_bias: false, ..default.layers },
                l2: 1e-6,
                ..default
            },
        }
    }

    /// The loss: softmax cross-entropy, with label smoothing in the regularized recipe.
    #[must_use]
    pub fn loss(self) -> SoftmaxCrossEntropy {
        match self {
            Recipe::Regularized => {
                SoftmaxCrossEntropy::new().with_label_smoothing(0.1).expect("0.1 is in [0, 1)")
            }
            Recipe::Default | Recipe::Seed => SoftmaxCrossEntropy::new(),
        }
    }

    /// The learning rate used unless overridden.
    #[must_use]
    pub fn default_learning_rate(self) -> f64 {
        match self {
            Recipe::Default | Recipe::Regularized => 2e-3,
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
            Recipe::Default | Recipe::Regularized => Rmsprop::elementwise(lr),
            Recipe::Seed => Rmsprop::per_tensor(lr, Some(500)),
        }
    }

    /// Epochs (default recipe) or full-batch iterations (seed recipe) unless overridden.
    #[must_use]
    pub fn default_epochs(self) -> usize {
        match self {
            Recipe::Default => 10,
            Recipe::Regularized => 60,
            Recipe::Seed => 2000,
        }
    }

    /// Training images used unless overridden (`None`: all).
    #[must_use]
    pub fn default_train_limit(self) -> Option<usize> {
        match self {
            Recipe::Default | Recipe::Regularized => None,
            Recipe::Seed => Some(42000),
        }
    }

    /// Minibatch size unless overridden (`None`: full batch).
    #[must_use]
    pub fn default_batch_size(self) -> Option<usize> {
        match self {
            Recipe::Default | Recipe::Regularized => Some(128),
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
            Recipe::Default | Recipe::Regularized => Schedule::Cosine { final_fraction: 0.0 },
            Recipe::Seed => Schedule::Constant,
        };
        TrainConfig { epochs, batching, seed, schedule, ..TrainConfig::default() }
    }
}

impl std::str::FromStr for Recipe {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "default" => Ok(Recipe::Default),
            "regularized" => Ok(Recipe::Regularized),
            "seed" => Ok(Recipe::Seed),
            other => {
                Err(format!("unknown recipe {other:?}: expected \"default\", \"regularized\" or \"seed\""))
            }
        }
    }
}
