//! [`Standardize`]: a fixed per-feature map `(x − μ)/σ` (or back), fitted on training data and
//! saved with the model.
//!
//! Tabular features come in their own units (an age in years, an income in dollars), and a
//! network trains badly on inputs whose scales differ by orders of magnitude. Put a
//! `Standardize` fitted on the training inputs first, and the model file carries the scaling:
//! a network loaded elsewhere takes raw features. For a regression, fit one on the training
//! targets, train on the targets it [applies](Standardize::apply) to, then push it
//! [inverted](Standardize::inverse): the network learns standardized targets and outputs values
//! in the targets' own units.
//!
//! Why after training rather than as the last module during it: a loss on the restored output
//! is in the targets' units, where a target's squared errors scale with its variance. With
//! several targets, one in the hundred thousands (a price) drowns one in units (a score); with
//! one, the loss and the gradients scale by `σ²`, which the learning rate and any L2 penalty
//! must then make up for. In standard units every target counts alike and the training's
//! numbers mean the same whatever the units.
//!
//! | direction | forward | local gradient |
//! |---|---|---|
//! | [`Direction::Standardize`] | `y = (x − μ)/σ`, computed as `x·(1/σ) − μ/σ` | `∂L/∂x = ∂L/∂y / σ` |
//! | [`Direction::Restore`] | `y = σx + μ` | `∂L/∂x = σ·∂L/∂y` |
//!
//! Both are `y = a·x + b` per feature (row), with no trainable parameter: optimizers and the
//! L2 penalty never see `μ` or `σ`. They are saved in the model file's architecture, which
//! [`Network::load`](crate::Network::load) rebuilds; [`weights::load_into`](crate::weights::load_into)
//! loads parameters only, so a network the caller built keeps its own `Standardize`.

use crate::linalg::{flush_subnormal, for_each_column, map2, map3};
use crate::module::same_rows;
use crate::network::check_finite;
use crate::{Error, Float, Module, Result};
use nalgebra::{DMatrix, DVector};
use serde_json::{Map, Value};

/// Which way a [`Standardize`] maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// `y = (x − μ)/σ`: raw values in, standardized values out (a network's first module).
    #[default]
    Standardize,
    /// `y = σx + μ`: standardized values in, values in their own units out (the last module of
    /// a regression network).
    Restore,
}

impl Direction {
    /// The name a model file gives it: `"standardize"` or `"restore"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Direction::Standardize => "standardize",
            Direction::Restore => "restore",
        }
    }
}

/// A fixed per-feature standardization, as a [`Module`]: each row `i` of the input maps to
/// `(x − μᵢ)/σᵢ` ([`Direction::Standardize`]) or back, `σᵢx + μᵢ` ([`Direction::Restore`]).
/// See the [module docs](self) for where to put one.
///
/// ```
/// use feedforward::{Init, Layer, Network, Standardize};
/// use nalgebra::DMatrix;
/// use rand::SeedableRng;
///
/// // Two features on very different scales; one target in the thousands.
/// let x = DMatrix::from_row_slice(2, 4, &[1.0, 2.0, 3.0, 4.0, 1e4, 3e4, 2e4, 4e4]);
/// let y = DMatrix::<f64>::from_row_slice(1, 4, &[1500.0, 2500.0, 3500.0, 4500.0]);
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let net = Network::<f64>::new(2)
///     .push(Standardize::fit(&x)?)?
///     .push(Layer::new(2, 1, Init::He, &mut rng))?;
/// let scale = Standardize::fit(&y)?;
/// let standard = scale.apply(&y)?; // the targets to train on: mean 0, variance 1
/// assert!(standard.mean().abs() < 1e-12 && (standard.variance() - 1.0).abs() < 1e-12);
/// // ... train `net` on (x, standard), then:
/// let net = net.push(scale.inverse())?;
/// assert_eq!(net.output(&x)?.shape(), (1, 4)); // in the targets' units
///
/// let s = Standardize::fit(&x)?;
/// assert_eq!((s.mean()[0], s.std()[0]), (2.5, 1.25f64.sqrt()));
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Standardize<T: Float> {
    mean: DVector<T>,
    std: DVector<T>,
    direction: Direction,
    /// `a` and `b` of `y = a·x + b`, per row, computed once from the above.
    gain: Vec<T>,
    offset: Vec<T>,
}

/// Shows the direction and the number of features, not the values.
impl<T: Float> std::fmt::Debug for Standardize<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Standardize")
            .field("features", &self.mean.len())
            .field("direction", &self.direction)
            .finish_non_exhaustive()
    }
}

impl<T: Float> Standardize<T> {
    /// Standardizes with the given per-feature mean `μ` and standard deviation `σ`.
    ///
    /// Errors: the two lengths differ or are 0 ([`Error::ShapeMismatch`]); a `μ` that is not
    /// finite, a `σ` that is not finite and ≥ the smallest normal number (so that `1/σ` is
    /// finite), or a `μ/σ` that overflows ([`Error::InvalidFeatureStatistic`], naming the
    /// feature).
    pub fn new(mean: DVector<T>, std: DVector<T>) -> Result<Self> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(Error::shape(
                "Standardize statistics",
                "as many standard deviations as means, at least one",
                format!("{} means and {} standard deviations", mean.len(), std.len()),
            ));
        }
        let bad = |feature, what, value: T, requirement| Error::InvalidFeatureStatistic {
            feature,
            what,
            value: value.as_f64(),
            requirement,
        };
        for (feature, (&mu, &sigma)) in mean.iter().zip(std.iter()).enumerate() {
            if !mu.is_finite() {
                return Err(bad(feature, "mean", mu, "must be finite"));
            }
            if !(sigma.is_finite() && sigma >= T::MIN_NORMAL) {
                return Err(bad(feature, "standard deviation", sigma, "must be finite and > 0 (and normal)"));
            }
            if !(mu / sigma).is_finite() {
                return Err(bad(feature, "mean / standard deviation", mu / sigma, "must be finite"));
            }
        }
        Ok(Standardize::with_direction(mean, std, Direction::Standardize))
    }

    /// Fits `μ` and `σ` of each feature (row) of `x` (`features × samples`): the mean and the
    /// population standard deviation (dividing by the number of samples, as scikit-learn's
    /// `StandardScaler`), accumulated in `f64`. A feature whose values are all equal gets
    /// `σ = 1` and that value as `μ`, so it standardizes to exactly 0.
    ///
    /// Errors: no rows or no samples, a NaN or ±inf (naming the sample), or a spread too small
    /// to divide by in `T` (naming the feature).
    pub fn fit(x: &DMatrix<T>) -> Result<Self> {
        if x.nrows() == 0 {
            return Err(Error::shape("data to fit a Standardize on", "at least one row (feature)", "0 rows"));
        }
        if x.ncols() == 0 {
            return Err(Error::EmptyBatch { what: "data to fit a Standardize on" });
        }
        check_finite(x, "data to fit a Standardize on", None)?;
        // Column by column (contiguous), every row's accumulators at once: the mean, then the
        // squared deviations from it.
        let rows = x.nrows();
        let first: Vec<T> = x.column(0).iter().copied().collect();
        let (mut constant, mut sum, mut squares) = (vec![true; rows], vec![0.0f64; rows], vec![0.0f64; rows]);
        for column in x.column_iter() {
            for (i, &v) in column.iter().enumerate() {
                constant[i] &= v == first[i];
                sum[i] += v.as_f64();
            }
        }
        let n = x.ncols() as f64;
        let mu: Vec<f64> = sum.iter().map(|s| s / n).collect();
        for column in x.column_iter() {
            for (i, &v) in column.iter().enumerate() {
                squares[i] += (v.as_f64() - mu[i]).powi(2);
            }
        }
        let (mut mean, mut std) = (DVector::zeros(rows), DVector::zeros(rows));
        for i in 0..rows {
            (mean[i], std[i]) = if constant[i] {
                (first[i], T::one())
            } else {
                (T::lit(mu[i]), T::lit((squares[i] / n).sqrt()))
            };
        }
        Standardize::new(mean, std)
    }

    /// The same map with the features `rows` left as they are (`μ = 0`, `σ = 1`): category
    /// indices that an [`Embedding`](crate::Embedding) after it reads, among numbers to
    /// standardize. A row beyond the features is an error.
    ///
    /// ```
    /// use feedforward::Standardize;
    /// use nalgebra::DMatrix;
    /// // A price, then a user index.
    /// let x = DMatrix::from_column_slice(2, 3, &[10.0f32, 0.0, 20.0, 2.0, 30.0, 1.0]);
    /// let map = Standardize::fit(&x)?.with_rows_unchanged(&[1])?;
    /// let y = map.apply(&x)?;
    /// assert!((y[(0, 0)] + 1.2247449).abs() < 1e-6); // (10 − 20)/8.165
    /// assert_eq!(y.row(1), x.row(1)); // the indices, exactly
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn with_rows_unchanged(mut self, rows: &[usize]) -> Result<Self> {
        let features = self.features();
        if let Some(&row) = rows.iter().find(|&&row| row >= features) {
            return Err(Error::shape(
                "Standardize rows left unchanged",
                format!("rows below {features} (its features)"),
                format!("row {row}"),
            ));
        }
        for &row in rows {
            (self.mean[row], self.std[row]) = (T::zero(), T::one());
        }
        Ok(Standardize::with_direction(self.mean, self.std, self.direction))
    }

    /// The inverse map: `Restore` for a `Standardize` and back, with the same `μ` and `σ`.
    #[must_use]
    pub fn inverse(self) -> Self {
        let direction = match self.direction {
            Direction::Standardize => Direction::Restore,
            Direction::Restore => Direction::Standardize,
        };
        Standardize::with_direction(self.mean, self.std, direction)
    }

    /// The map applied to `x` (`features × samples`) outside a network: the module's forward
    /// pass, with the network's checks (the rows; a NaN or ±inf is an error naming the sample).
    pub fn apply(&self, x: &DMatrix<T>) -> Result<DMatrix<T>> {
        self.output_rows(x.nrows())?;
        check_finite(x, "Standardize input", None)?;
        let mut y = DMatrix::zeros(x.nrows(), x.ncols());
        self.forward(x, &mut y);
        Ok(y)
    }

    /// Per-feature means `μ`.
    #[must_use]
    pub fn mean(&self) -> &DVector<T> {
        &self.mean
    }

    /// Per-feature standard deviations `σ`.
    #[must_use]
    pub fn std(&self) -> &DVector<T> {
        &self.std
    }

    /// Which way it maps.
    #[must_use]
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Number of features (rows in and out).
    #[must_use]
    pub fn features(&self) -> usize {
        self.mean.len()
    }

    /// Rebuilds one from a model file's settings (`mean`, `std`, `direction`).
    pub(crate) fn from_settings(spec: &Map<String, Value>) -> std::result::Result<Self, String> {
        let numbers = |field: &str| -> std::result::Result<DVector<T>, String> {
            let list = spec.get(field).and_then(Value::as_array).ok_or(format!("{field} is not a list"))?;
            let values = list
                .iter()
                .map(|v| v.as_f64().map(T::lit).ok_or(format!("{field} holds {v}, not a number")))
                .collect::<std::result::Result<Vec<T>, String>>()?;
            Ok(DVector::from_vec(values))
        };
        let direction = match spec.get("direction").and_then(Value::as_str) {
            Some("standardize") => Direction::Standardize,
            Some("restore") => Direction::Restore,
            other => return Err(format!("direction {other:?} is not \"standardize\" or \"restore\"")),
        };
        let fitted = Standardize::new(numbers("mean")?, numbers("std")?).map_err(|e| e.to_string())?;
        Ok(Standardize::with_direction(fitted.mean, fitted.std, direction))
    }

    fn with_direction(mean: DVector<T>, std: DVector<T>, direction: Direction) -> Self {
        let (gain, offset) = match direction {
            Direction::Standardize => {
                mean.iter().zip(std.iter()).map(|(&mu, &sigma)| (T::one() / sigma, -mu / sigma)).unzip()
            }
            Direction::Restore => std.iter().copied().zip(mean.iter().copied()).unzip(),
        };
        Standardize { mean, std, direction, gain, offset }
    }
}

impl<T: Float> Module<T> for Standardize<T> {
    fn kind(&self) -> &'static str {
        "Standardize"
    }

    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        same_rows("Standardize input (the features it was fitted on)", self.features(), input_rows)
    }

    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        let (gain, offset) = (&self.gain[..], &self.offset[..]);
        for_each_column(
            output.as_mut_slice(),
            input.as_slice(),
            self.features(),
            #[inline(always)]
            |y, x| map3(y, x, gain, offset, |x, a, b| a * x + b),
        );
    }

    fn backward(
        &mut self,
        _input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        let Some(dx) = grad_input else { return };
        let gain = &self.gain[..];
        for_each_column(
            dx.as_mut_slice(),
            grad_output.as_slice(),
            self.features(),
            #[inline(always)]
            |dx, dy| map2(dx, dy, gain, |dy, a| flush_subnormal(a * dy)),
        );
    }

    /// `a·x + b` with a finite `a > 0` carries NaN and ±inf through.
    fn propagates_non_finite(&self) -> bool {
        true
    }

    fn describe(&self) -> Option<Map<String, Value>> {
        let list = |v: &DVector<T>| Value::from(v.iter().map(|x| x.as_f64()).collect::<Vec<f64>>());
        Some(Map::from_iter([
            ("direction".to_string(), self.direction.name().into()),
            ("mean".to_string(), list(&self.mean)),
            ("std".to_string(), list(&self.std)),
        ]))
    }
}
