//! [`ResNetConfig`] and [`Network::resnet`]: the ResNet baseline of tabular deep learning
//! (Gorishniy et al., 2021, "Revisiting Deep Learning Models for Tabular Data"), a stack of
//! [`Residual`] blocks between an input layer and a head.
//!
//! ```text
//! ResNet: x → Layer(inputs → width) → Block → … → Block → Head → y
//!  Block: x → x + Dropout(Layer(hidden → width)(Dropout(f(Layer(width → hidden)(Norm(x))))))
//!   Head: x → Layer(width → outputs)(f(Norm(x)))
//! ```
//!
//! Each block normalizes before its layers (a pre-normalization block: the path the blocks
//! add to is never normalized, so the identity carries the input through a deep stack), and
//! the head normalizes the sum of them all.

use crate::{Activation, Dropout, Error, Init, Layer, Network, Normalization, Residual, Result};
use crate::{BatchNorm, Float, LayerNorm};
use rand::Rng;

/// The settings of [`Network::resnet`], with defaults ([`ResNetConfig::default`]) that train
/// a small tabular task as they are.
///
/// ```
/// use feedforward::{Normalization, ResNetConfig};
/// let wide = ResNetConfig { blocks: 4, width: 256, hidden: 512, ..ResNetConfig::default() };
/// let regularized = ResNetConfig { hidden_dropout: 0.2, residual_dropout: 0.05, ..ResNetConfig::default() };
/// let per_sample = ResNetConfig { normalization: Normalization::LayerNorm, ..ResNetConfig::default() };
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResNetConfig {
    /// How many residual blocks; 0 leaves the input layer and the head (one normalized hidden
    /// layer). Default: 2.
    pub blocks: usize,
    /// Rows of the path the blocks add to (the paper's `d_main`). Default: 128.
    pub width: usize,
    /// Units of the hidden layer inside each block (`d_hidden`; the paper searches 1 to 4 times
    /// `width`). Default: 256.
    pub hidden: usize,
    /// The activation inside each block and in the head. Default: [`Activation::Relu`].
    pub activation: Activation,
    /// The normalization opening each block and the head: [`BatchNorm`] in the paper
    /// (training batches of at least 2 samples), [`LayerNorm`] for a model whose output for a
    /// sample must not depend on the batch, or none. Default: [`Normalization::BatchNorm`].
    pub normalization: Normalization,
    /// Drop probability of a [`Dropout`] after each block's hidden activation, in [0, 1); 0
    /// adds none. Default: 0.
    pub hidden_dropout: f64,
    /// Drop probability of a [`Dropout`] on each block's output before it is added to the
    /// path, in [0, 1); 0 adds none. Default: 0.
    pub residual_dropout: f64,
    /// How every layer's weights are drawn but the last of each block. Default: [`Init::He`].
    pub init: Init,
    /// How the last layer of each block is drawn. Default: [`Init::Zeros`], which starts
    /// every block as the identity (the zero-initialized residual branch of Goyal et al.,
    /// 2017; `torchvision`'s `zero_init_residual`), so that a deep stack starts as a shallow
    /// network. The paper draws it as the other layers; here zeros trained as well or better
    /// (README, "The math", on residual blocks).
    pub block_output_init: Init,
}

impl Default for ResNetConfig {
    fn default() -> Self {
        ResNetConfig {
            blocks: 2,
            width: 128,
            hidden: 256,
            activation: Activation::Relu,
            normalization: Normalization::BatchNorm,
            hidden_dropout: 0.0,
            residual_dropout: 0.0,
            init: Init::He,
            block_output_init: Init::Zeros,
        }
    }
}

impl<T: Float> Network<T> {
    /// The ResNet of `config` from `inputs` rows to `outputs` (a classification's logits, or
    /// a regression's values): a layer from `inputs` to `config.width`, `config.blocks`
    /// [`Residual`] blocks, then the head (normalization, activation, a layer to `outputs`).
    /// The module docs draw it.
    ///
    /// The layers draw their weights from `rng` in order (the input layer, each block's two,
    /// the head's); a network with dropout then draws its [seed](Network::with_seed) from
    /// `rng` too, and one without draws nothing more. Features on raw scales still need a
    /// [`Standardize`](crate::Standardize) in front (a network holding one, then
    /// [`append`](Network::append) this; or [`Network::insert`] at 0): the blocks normalize
    /// the path, not the inputs.
    ///
    /// ```
    /// use feedforward::{Network, ResNetConfig};
    /// use nalgebra::DMatrix;
    /// use rand::SeedableRng;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let config = ResNetConfig { blocks: 3, width: 64, hidden: 128, ..ResNetConfig::default() };
    /// let net = Network::<f32>::resnet(10, 2, config, &mut rng)?;
    /// // The input layer, three blocks, the head's BatchNorm, ReLU and layer.
    /// assert_eq!(net.modules().len(), 1 + 3 + 3);
    /// assert_eq!(net.output(&DMatrix::from_element(10, 5, 0.1))?.shape(), (2, 5));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] for `inputs`, `outputs`, `config.width` or `config.hidden` of
    /// 0; [`Error::InvalidHyperparameter`] for a drop probability outside [0, 1).
    pub fn resnet<R: Rng + ?Sized>(
        inputs: usize,
        outputs: usize,
        config: ResNetConfig,
        rng: &mut R,
    ) -> Result<Self> {
        let sizes = [inputs, outputs, config.width, config.hidden];
        if sizes.contains(&0) {
            return Err(Error::shape(
                "resnet sizes",
                "inputs, outputs, width and hidden of at least 1",
                format!(
                    "inputs {inputs}, outputs {outputs}, width {}, hidden {}",
                    config.width, config.hidden
                ),
            ));
        }
        // `Dropout::new` checks the probability: a negative or NaN one is an error, not no dropout.
        let dropout = |p: f64| if p == 0.0 { Ok(None) } else { Dropout::new(p).map(Some) };
        let (hidden_dropout, residual_dropout) =
            (dropout(config.hidden_dropout)?, dropout(config.residual_dropout)?);
        let width = config.width;
        let mut net = Network::new(inputs).push(Layer::new(inputs, width, config.init, rng))?;
        for _ in 0..config.blocks {
            let mut body = normalized(Network::new(width), config.normalization)?.push(
                Layer::new(width, config.hidden, config.init, rng).with_activation(config.activation),
            )?;
            if let Some(d) = &hidden_dropout {
                body = body.push(d.clone())?;
            }
            body = body.push(Layer::new(config.hidden, width, config.block_output_init, rng))?;
            if let Some(d) = &residual_dropout {
                body = body.push(d.clone())?;
            }
            net = net.push(Residual::new(body)?)?;
        }
        net = normalized(net, config.normalization)?;
        if let Some(activation) = config.activation.module::<T>() {
            net.push_boxed(activation)?;
        }
        net = net.push(Layer::new(width, outputs, config.init, rng))?;
        if hidden_dropout.is_some() || residual_dropout.is_some() {
            net = net.with_seed(rng.next_u64());
        }
        Ok(net)
    }
}

/// `net` with `normalization` of its output rows pushed.
fn normalized<T: Float>(net: Network<T>, normalization: Normalization) -> Result<Network<T>> {
    let rows = net.output_rows();
    match normalization {
        Normalization::None => Ok(net),
        Normalization::LayerNorm => net.push(LayerNorm::new(rows)?),
        Normalization::BatchNorm => net.push(BatchNorm::new(rows)?),
    }
}
