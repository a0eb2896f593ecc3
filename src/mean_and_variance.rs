//! [`MeanAndVariance`]: the answers of a network trained by [`GaussianNll`](crate::GaussianNll)
//! as a mean and a variance per target, so that a saved model serves them directly.

use crate::linalg::flush_subnormal;
use crate::loss::{sigmoid, softplus};
use crate::{Error, Float, Module, Result, Standardize};
use nalgebra::{DMatrix, DVector};
use serde_json::{Map, Value};

/// The link of [`GaussianNll`](crate::GaussianNll) as a module: of `2R` input rows, rows
/// `0..R` (the means) pass as they are and rows `R..2R` (the variances' logits `s`) become
/// variances `v = softplus(s) + v₀`.
///
/// ```text
/// forward:   μ ↦ μ,    s ↦ v = softplus(s) + v₀
/// backward:  dL/dμ = dL/d(output μ),    dL/ds = dL/dv · σ(s)
/// ```
///
/// Push it after training a network by `GaussianNll` with the loss's
/// [minimum variance](crate::GaussianNll::min_variance) (the loss takes the logits, so train
/// without it); for targets learned in standard units, [`restore`](MeanAndVariance::restore)
/// after it brings both back to the targets' units. No parameters.
///
/// ```
/// use feedforward::{GaussianNll, MeanAndVariance, Module};
/// use nalgebra::DMatrix;
/// let nll = GaussianNll::new();
/// let z = DMatrix::<f64>::from_column_slice(2, 1, &[1.5, 0.0]); // one target: μ, s
/// let mut y = DMatrix::zeros(2, 1);
/// MeanAndVariance::new(nll.min_variance())?.forward(&z, &mut y);
/// assert_eq!(y[0], 1.5);
/// assert!((y[1] - (2f64.ln() + 1e-6)).abs() < 1e-15);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanAndVariance {
    min_variance: f64,
}

impl MeanAndVariance {
    /// `v₀ = 1e-6`, [`GaussianNll::new`](crate::GaussianNll::new)'s.
    pub(crate) const DEFAULT: MeanAndVariance = MeanAndVariance { min_variance: 1e-6 };

    /// The module adding `min_variance` (`v₀`, finite and > 0) to each variance.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a `v₀` not finite or not > 0.
    pub fn new(min_variance: f64) -> Result<Self> {
        if !(min_variance.is_finite() && min_variance > 0.0) {
            return Err(Error::InvalidHyperparameter {
                name: "minimum variance",
                value: min_variance,
                requirement: "must be finite and > 0",
            });
        }
        Ok(MeanAndVariance { min_variance })
    }

    /// `v₀`.
    #[must_use]
    pub fn min_variance(&self) -> f64 {
        self.min_variance
    }

    /// For targets learned in the standard units of `scale` (a [`Standardize`] fitted on
    /// them, means `m` and deviations `σ`), the module to push after this one that gives the
    /// answers back in the targets' units: `σ·μ + m` on the means, `σ²·v` on the variances (a
    /// `Standardize` in the [`Restore`](crate::standardize::Direction::Restore) direction over
    /// both halves).
    ///
    /// ```
    /// use feedforward::{GaussianNll, Init, Layer, MeanAndVariance, Network, Standardize};
    /// use nalgebra::DMatrix;
    /// use rand::SeedableRng;
    /// let y = DMatrix::<f64>::from_row_slice(1, 4, &[100.0, 200.0, 300.0, 400.0]); // σ² = 12500
    /// let scale = Standardize::fit(&y)?;
    /// let nll = GaussianNll::new();
    /// let net = Network::new(1)
    ///     .push(Layer::new(1, 2, Init::Zeros, &mut rand::rngs::StdRng::seed_from_u64(0)))?
    ///     // ... trained by `nll` on `scale.apply(&y)?`, then:
    ///     .push(nll.link())?
    ///     .push(MeanAndVariance::restore(&scale)?)?;
    /// let answer = net.output_sample(&[1.0])?; // outputs 0 and 0: μ = 0, v = ln 2 + 1e-6
    /// assert!((answer[0] - 250.0).abs() < 1e-9);
    /// assert!((answer[1] - 12500.0 * (2f64.ln() + 1e-6)).abs() < 1e-6);
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] when a deviation's square is not a finite number > 0
    /// (a deviation past `√T::MAX`).
    pub fn restore<T: Float>(scale: &Standardize<T>) -> Result<Standardize<T>> {
        let (mean, std) = (scale.mean(), scale.std());
        let r = mean.len();
        let mean = DVector::from_fn(2 * r, |i, _| if i < r { mean[i] } else { T::zero() });
        let std = DVector::from_fn(2 * r, |i, _| if i < r { std[i] } else { std[i - r] * std[i - r] });
        Ok(Standardize::new(mean, std)?.inverse())
    }

    /// `softplus(s) + v₀`.
    #[inline]
    pub(crate) fn variance<T: Float>(&self, s: T) -> T {
        softplus(s) + T::lit(self.min_variance)
    }

    /// From a model file's settings.
    pub(crate) fn from_settings(spec: &Map<String, Value>) -> std::result::Result<Self, String> {
        let v0 = spec.get("min_variance").and_then(Value::as_f64).ok_or("min_variance is not a number")?;
        MeanAndVariance::new(v0).map_err(|e| e.to_string())
    }
}

/// The number of targets of `rows` rows: half of them, which must be an even number > 0.
pub(crate) fn targets_of(rows: usize, what: &str) -> Result<usize> {
    if rows == 0 || !rows.is_multiple_of(2) {
        return Err(Error::shape(
            what,
            "an even number of rows, at least 2 (a mean and a variance per target)",
            crate::error::plural(rows, "row"),
        ));
    }
    Ok(rows / 2)
}

impl<T: Float> Module<T> for MeanAndVariance {
    fn kind(&self) -> &'static str {
        "MeanAndVariance"
    }

    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        targets_of(input_rows, "MeanAndVariance input")?;
        Ok(input_rows)
    }

    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        let rows = input.nrows();
        let r = rows / 2;
        let columns = output.as_mut_slice().chunks_exact_mut(rows).zip(input.as_slice().chunks_exact(rows));
        for (y, z) in columns {
            y[..r].copy_from_slice(&z[..r]);
            y[r..].iter_mut().zip(&z[r..]).for_each(|(v, &s)| *v = self.variance(s));
        }
    }

    fn backward(
        &mut self,
        input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        let Some(dz) = grad_input else { return };
        let rows = input.nrows();
        let r = rows / 2;
        let columns = dz.as_mut_slice().chunks_exact_mut(rows).zip(input.as_slice().chunks_exact(rows));
        for ((dz, z), dy) in columns.zip(grad_output.as_slice().chunks_exact(rows)) {
            dz[..r].copy_from_slice(&dy[..r]);
            for ((dz, &s), &dy) in dz[r..].iter_mut().zip(&z[r..]).zip(&dy[r..]) {
                *dz = flush_subnormal(dy * sigmoid(s));
            }
        }
    }

    fn describe(&self) -> Option<Map<String, Value>> {
        let mut settings = Map::new();
        settings.insert("min_variance".into(), self.min_variance.into());
        Some(settings)
    }
}
