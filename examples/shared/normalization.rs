//! `--normalization` of the examples: [`Normalization`] as a command-line choice.

use feedforward::Normalization;

/// `--normalization`: what normalizes the hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NormalizationArg {
    /// None.
    None,
    /// `BatchNorm`: each feature over the batch (training batches of at least 2 samples).
    BatchNorm,
    /// `LayerNorm`: each sample's features.
    LayerNorm,
}

impl From<NormalizationArg> for Normalization {
    fn from(arg: NormalizationArg) -> Self {
        match arg {
            NormalizationArg::None => Normalization::None,
            NormalizationArg::BatchNorm => Normalization::BatchNorm,
            NormalizationArg::LayerNorm => Normalization::LayerNorm,
        }
    }
}
