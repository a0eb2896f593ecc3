//! [`LayerNorm`]: each sample's features brought to mean 0 and variance 1, then scaled and
//! shifted by trainable `γ` and `β` (Ba, Kiros & Hinton, 2016; PyTorch's `nn.LayerNorm` over the
//! features). It keeps the scale of a deep stack's activations steady whatever the batch, and
//! acts the same in training and inference.
//!
//! Per sample (column) `x` of `n` features, with `g = γ ⊙ ∂L/∂y`:
//!
//! | | forward | local gradient |
//! |---|---|---|
//! | normalize | `μ = mean(x)`, `σ = √(mean((x − μ)²) + ε)`, `x̂ = (x − μ)/σ` | `∂L/∂x = (g − mean(g) − x̂·mean(g ⊙ x̂))/σ` |
//! | scale, shift | `y = γ ⊙ x̂ + β` | `∂L/∂γ = Σ ∂L/∂y ⊙ x̂`, `∂L/∂β = Σ ∂L/∂y` (sums over the samples) |

use crate::linalg::{
    LANES, Scratch, column_sums, flush_subnormal, for_each_column, for_each_column_with, lane_sum,
    store_flushed,
};
use crate::module::{Parameter, check_eps, features_setting, gain_and_shift, same_rows};
use crate::{Float, Module, Result};
use nalgebra::DMatrix;
use serde_json::{Map, Value};

/// Layer normalization over the features of each sample, with a trainable gain `γ` (`weight`,
/// starting at 1) and shift `β` (`bias`, starting at 0), both one per feature and exempt from
/// the L2 penalty and, by default, from weight decay. Per sample `x` of `n` features, with
/// `g = γ ⊙ ∂L/∂y`:
///
/// ```text
/// μ = mean(x),  σ = √(mean((x − μ)²) + ε),  x̂ = (x − μ)/σ,  y = γ ⊙ x̂ + β
/// ∂L/∂x = (g − mean(g) − x̂·mean(g ⊙ x̂))/σ,  ∂L/∂γ = Σ ∂L/∂y ⊙ x̂,  ∂L/∂β = Σ ∂L/∂y
/// ```
///
/// (the last two summed over the samples).
///
/// ```
/// use feedforward::{Activation, Init, Layer, LayerNorm, Network};
/// use nalgebra::DMatrix;
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let net = Network::<f64>::new(4)
///     .push(Layer::new(4, 16, Init::He, &mut rng))?
///     .push(LayerNorm::new(16)?)?
///     .push(Layer::new(16, 2, Init::He, &mut rng).with_activation(Activation::Relu))?;
/// assert_eq!(net.output(&DMatrix::from_element(4, 3, 0.5))?.shape(), (2, 3));
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm<T: Float> {
    gain: Parameter<T>,
    shift: Parameter<T>,
    eps: f64,
    /// The `γ`/`β` gradient sums of each column block.
    partials: Scratch<T>,
}

impl<T: Float> LayerNorm<T> {
    /// Layer normalization of `features` features (at least 1), with PyTorch's `ε = 1e-5`.
    pub fn new(features: usize) -> Result<Self> {
        let (gain, shift) = gain_and_shift("LayerNorm", features)?;
        Ok(LayerNorm { gain, shift, eps: 1e-5, partials: Scratch::default() })
    }

    /// The same with `ε` (finite and > 0) added to the variance.
    pub fn with_eps(self, eps: f64) -> Result<Self> {
        check_eps("LayerNorm eps", eps)?;
        Ok(LayerNorm { eps, ..self })
    }

    /// The `ε` added to the variance.
    #[must_use]
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Number of features.
    #[must_use]
    pub fn features(&self) -> usize {
        self.gain.len()
    }

    /// The gain `γ` (a `features × 1` parameter named `weight`).
    #[must_use]
    pub fn gain(&self) -> &Parameter<T> {
        &self.gain
    }

    /// The shift `β` (a `features × 1` parameter named `bias`).
    #[must_use]
    pub fn shift(&self) -> &Parameter<T> {
        &self.shift
    }

    /// Rebuilds one from a model file's settings (`features`, `eps`), with `γ = 1`, `β = 0`
    /// until the file's tensors are loaded. `max_entries` bounds the features by what the file
    /// can hold, so that a corrupt header is an error instead of a huge allocation.
    pub(crate) fn from_settings(
        spec: &Map<String, Value>,
        max_entries: usize,
    ) -> std::result::Result<Self, String> {
        let features = features_setting(spec, max_entries)?;
        let eps = spec.get("eps").and_then(Value::as_f64).ok_or("eps is not a number")?;
        LayerNorm::new(features).and_then(|n| n.with_eps(eps)).map_err(|e| e.to_string())
    }
}

/// `μ` and `1/σ` of one sample's features.
#[inline(always)]
fn moments<T: Float>(x: &[T], eps: T) -> (T, T) {
    let n = T::lit(x.len() as f64);
    let mean = lane_sum(x, |v| v) / n;
    let variance = lane_sum(x, |v| (v - mean) * (v - mean)) / n;
    (mean, T::one() / (variance + eps).sqrt())
}

/// `Σ g` and `Σ g ⊙ x̂` over one sample's features, `g = γ ⊙ ∂L/∂y`, in [`LANES`] running sums
/// (as [`lane_sum`], so that they vectorize).
#[inline(always)]
fn gradient_sums<T: Float>(x: &[T], dy: &[T], gain: &[T], mean: T, inverse: T) -> (T, T) {
    let (mut sum_g, mut sum_gx) = ([T::zero(); LANES], [T::zero(); LANES]);
    let mut add = |lane: usize, x: T, dy: T, gamma: T| {
        let g = gamma * dy;
        sum_g[lane] += g;
        sum_gx[lane] += g * ((x - mean) * inverse);
    };
    let whole = x.len() - x.len() % LANES;
    for ((x, dy), gain) in x[..whole]
        .chunks_exact(LANES)
        .zip(dy[..whole].chunks_exact(LANES))
        .zip(gain[..whole].chunks_exact(LANES))
    {
        for lane in 0..LANES {
            add(lane, x[lane], dy[lane], gain[lane]);
        }
    }
    for (lane, ((&x, &dy), &gamma)) in x[whole..].iter().zip(&dy[whole..]).zip(&gain[whole..]).enumerate() {
        add(lane, x, dy, gamma);
    }
    let total = |acc: [T; LANES]| acc.iter().fold(T::zero(), |s, &a| s + a);
    (total(sum_g), total(sum_gx))
}

impl<T: Float> Module<T> for LayerNorm<T> {
    fn kind(&self) -> &'static str {
        "LayerNorm"
    }

    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        same_rows("LayerNorm input", self.features(), input_rows)
    }

    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        let (gain, shift, eps) =
            (self.gain.value().as_slice(), self.shift.value().as_slice(), T::lit(self.eps));
        for_each_column(
            output.as_mut_slice(),
            input.as_slice(),
            self.features(),
            #[inline(always)]
            |y, x| {
                let (mean, inverse) = moments(x, eps);
                for (((y, &x), &g), &b) in y.iter_mut().zip(x).zip(gain).zip(shift) {
                    *y = g * ((x - mean) * inverse) + b;
                }
            },
        );
    }

    fn backward(
        &mut self,
        input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        let rows = self.features();
        let eps = T::lit(self.eps);
        let n = T::lit(rows as f64);
        // ∂L/∂γ and ∂L/∂β, summed in blocks cut by shape and added in block order: the same
        // on any thread count. Frozen, they need none (as a `Layer`'s frozen tensors).
        let LayerNorm { gain, shift, partials, .. } = self;
        if !(gain.is_frozen() && shift.is_frozen()) {
            let [dgain, dshift] = column_sums::<T, 2>(
                input.as_slice(),
                grad_output.as_slice(),
                rows,
                partials,
                #[inline(always)]
                |[dg, db], x, dy| {
                    let (mean, inverse) = moments(x, eps);
                    for (((dg, db), &x), &dy) in dg.iter_mut().zip(db.iter_mut()).zip(x).zip(dy) {
                        *dg += dy * ((x - mean) * inverse);
                        *db += dy;
                    }
                },
            );
            store_flushed(gain.grad_slice_mut(), dgain);
            store_flushed(shift.grad_slice_mut(), dshift);
        }
        let Some(dx) = grad_input else { return };
        let gain = gain.value().as_slice();
        for_each_column_with(
            dx.as_mut_slice(),
            input.as_slice(),
            grad_output.as_slice(),
            rows,
            #[inline(always)]
            |dx, x, dy| {
                let (mean, inverse) = moments(x, eps);
                // mean(g) and mean(g ⊙ x̂), g = γ ⊙ ∂L/∂y.
                let (sum_g, sum_gx) = gradient_sums(x, dy, gain, mean, inverse);
                let (mean_g, mean_gx) = (sum_g / n, sum_gx / n);
                for (((dx, &x), &dy), &gamma) in dx.iter_mut().zip(x).zip(dy).zip(gain) {
                    let normalized = (x - mean) * inverse;
                    *dx = flush_subnormal(inverse * (gamma * dy - mean_g - normalized * mean_gx));
                }
            },
        );
    }

    fn visit_parameters<'a>(&'a self, visit: &mut dyn FnMut(&'a Parameter<T>)) {
        visit(&self.gain);
        visit(&self.shift);
    }

    fn visit_parameters_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut Parameter<T>)) {
        visit(&mut self.gain);
        visit(&mut self.shift);
    }

    /// A NaN or ±inf in a sample makes its mean, and so its whole output, non-finite.
    fn propagates_non_finite(&self) -> bool {
        true
    }

    fn describe(&self) -> Option<Map<String, Value>> {
        Some(Map::from_iter([
            ("features".to_string(), self.features().into()),
            ("eps".to_string(), self.eps.into()),
        ]))
    }
}
