//! # feedforward
//!
//! Small, fast, readable dense feedforward neural networks on [nalgebra], with every gradient
//! derived by hand and proven by finite differences ([`gradcheck`]).
//!
//! The pieces, one concept per file:
//!
//! | item | file | what |
//! |---|---|---|
//! | [`Layer`] | `layer.rs` | fully connected `y = f(Wᵀx + b)`, optional bias, optional fused [`Activation`] |
//! | [`Relu`], [`LeakyRelu`], [`Tanh`], [`Sigmoid`], [`Gelu`], [`Silu`], [`Activation`] | `activation.rs` | `f` and `f'` side by side, as modules or fused into a layer |
//! | [`Loss`], [`SoftmaxCrossEntropy`], [`SoftTargetCrossEntropy`], [`MeanSquaredError`], [`MeanAbsoluteError`], [`Huber`], [`Quantile`], [`Poisson`], [`GaussianNll`], [`BinaryCrossEntropy`]; [`PerSampleLoss`], [`SampleWeighted`] | `loss.rs`, `loss/gaussian.rs`, `loss/weighted.rs` | training objectives and their gradients; each sample's loss, and a weight per sample |
//! | [`Optimizer`], [`Sgd`], [`Adam`], [`AdamW`], [`Rmsprop`] | `optim/` | PyTorch's rules, double-buffered state, checkpointable |
//! | [`Dropout`] | `dropout.rs` | inverted dropout in training, the identity in inference |
//! | [`Embedding`], [`EmbeddingRow`], [`UnknownCategory`] | `embedding.rs` | input rows of category indices replaced by trainable vectors (entity embeddings); the other rows pass through |
//! | [`LayerNorm`] | `layer_norm.rs` | each sample's features normalized, then scaled and shifted by trainable `γ`, `β` |
//! | [`BatchNorm`] | `batch_norm.rs` | each feature normalized over the batch in training and by running statistics ([`Buffer`]s saved with the model) in inference, then scaled and shifted; recomputable from the final weights ([`Network::recompute_batch_norm`]) |
//! | [`Standardize`] | `standardize.rs` | a fixed per-feature `(x − μ)/σ`, or back, fitted on data and saved with the model |
//! | [`Sorted`] | `sorted.rs` | each group of output rows sorted: quantiles that never cross |
//! | [`MeanAndVariance`] | `mean_and_variance.rs` | a [`GaussianNll`] network's outputs as a mean and a variance per target |
//! | [`Residual`] | `residual.rs` | `y = x + body(x)`: a skip connection around any modules, for deep stacks |
//! | [`ResNetConfig`] | `resnet.rs` | [`Network::resnet`]: the ResNet of tabular deep learning, blocks of normalization → layer → activation → dropout → layer |
//! | [`Network`], [`MlpConfig`], [`Module`], [`Parameter`] | `network.rs`, `module.rs` | the stack: `&self` inference, forward/backward, L2; a whole MLP in one call; the trait and tensors of your own modules |
//! | [`train`] | `train.rs`, `split.rs`, `lr_finder.rs`, `averaging.rs` | epochs, minibatches, full batch; hold-outs and cross-validation folds, plain, stratified or by groups; the learning-rate range test; weight averaging (EMA, SWA) |
//! | `data` (feature `data`, default) | `data/` | MNIST IDX and Kaggle CSV readers, the Kaggle submission writer; CSV tables of any task (`data::table`) |
//! | [`conformal`] | `conformal.rs` | conformal calibration: the margin that makes a network's quantile intervals hold their coverage on new data, each side apart or together, the factor that does it for a mean and a variance, and a classifier's prediction sets, over all samples or within each class, or adaptive (APS) |
//! | [`Temperature`] | `temperature.rs` | temperature scaling: a classifier's logits divided by the `T` fitted on held-out samples (softmax or sigmoids), so that its probabilities are calibrated |
//! | [`LabelTemperatures`] | `label_temperatures.rs` | a temperature per label of a multi-label classifier's sigmoids, each fitted on its own label |
//! | [`importance`] | `importance.rs` | permutation importance: how much the loss grows when one input is shuffled |
//! | [`weights`] | `weights.rs` | safetensors save/load, self-describing model files |
//! | [`metrics`] | `metrics/` | confusion matrix (accuracy, per-class recall, precision and F1); the same per label for multi-label; a regression's MSE, MAE and R²; ROC and precision-recall curves, ROC AUC, average precision; a classifier's calibration (reliability bins, ECE); each weighted or not |
//!
//! **Batch layout.** A batch is a column-major `DMatrix` with one sample per column
//! (`features × batch`), so each sample is contiguous in memory. Targets are whatever the loss
//! takes: class indices for [`SoftmaxCrossEntropy`], a matrix with one column per sample for
//! [`MeanSquaredError`].
//!
//! ```
//! use feedforward::{MlpConfig, Network, Rmsprop, SoftmaxCrossEntropy};
//! use nalgebra::DMatrix;
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(7);
//! let mut net = Network::<f32>::mlp(&[4, 8, 3], MlpConfig::default(), &mut rng)?;
//! let mut opt = Rmsprop::elementwise(1e-2)?;
//! let x = DMatrix::from_fn(4, 2, |i, j| (i + j) as f32 / 4.0);
//! let report = net.train_step(&x, &SoftmaxCrossEntropy::new(), &[0, 2], &mut opt)?;
//! assert!(report.loss.is_finite());
//! # Ok::<(), feedforward::Error>(())
//! ```

#![deny(missing_docs)]

pub mod activation;
mod averaging;
mod batch_norm;
mod checkpoint;
pub mod conformal;
#[cfg(feature = "data")]
pub mod data;
mod dropout;
mod elementary;
mod embedding;
mod error;
pub mod gradcheck;
pub mod importance;
mod label_temperatures;
mod layer;
mod layer_norm;
pub mod linalg;
pub mod loss;
mod lr_finder;
mod mean_and_variance;
pub mod metrics;
pub mod module;
mod network;
pub mod optim;
mod parallel;
mod residual;
mod resnet;
mod sorted;
mod split;
pub mod standardize;
mod temperature;
pub mod train;
pub mod weights;

pub use activation::{
    Activation, ActivationFunction, DerivativeFrom, Gelu, LeakyRelu, Relu, Sigmoid, Silu, Tanh,
};
pub use batch_norm::{BatchNorm, BatchNormStatistics};
pub use dropout::Dropout;
pub use embedding::{Embedding, EmbeddingRow, UnknownCategory};
pub use error::{Error, Result};
pub use label_temperatures::LabelTemperatures;
pub use layer::{Init, Layer, NormalInit};
pub use layer_norm::LayerNorm;
pub use linalg::Float;
pub use loss::{
    BinaryCrossEntropy, GaussianNll, Huber, Loss, LossValue, MeanAbsoluteError, MeanSquaredError,
    PerSampleLoss, Poisson, Quantile, SampleLoss, SampleWeighted, SoftTargetCrossEntropy,
    SoftmaxCrossEntropy, Targets, WeightedTargets,
};
pub use mean_and_variance::MeanAndVariance;
pub use module::{Buffer, BufferDomain, Module, ModuleClone, Parameter, Regularization, TrainContext};
pub use network::{Evaluation, MlpConfig, Network, Normalization, StepReport};
pub use optim::{
    Adam, AdamConfig, AdamW, DecayScope, Momentum, Optimizer, Rmsprop, RmspropRule, Sgd, SgdConfig,
};
pub use residual::Residual;
pub use resnet::ResNetConfig;
pub use sorted::Sorted;
pub use standardize::Standardize;
pub use temperature::Temperature;

/// The JSON types of [`Module::describe`] and [`weights::ModuleBuilder`], re-exported so that a
/// crate writing its own module or builder needs no `serde_json` dependency of its own (and gets
/// the same version): `feedforward::serde_json::{Map, Value}`.
pub use serde_json;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
