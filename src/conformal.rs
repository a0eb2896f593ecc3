//! Conformal prediction: intervals that hold their coverage on new data, whatever the network
//! learned.
//!
//! [`interval_margin`] is conformalized quantile regression (CQR; Romano, Patterson and
//! Candès, 2019): a network trained on the pinball loss ([`Quantile`](crate::Quantile)) gives
//! each sample an interval between two of its quantiles, which on new data often holds fewer
//! samples than it should. Measured on calibration samples the network did not train on, one
//! margin widens (or narrows) every interval so that it holds at least the coverage asked,
//! with a guarantee that assumes only that new samples are exchangeable with the calibration
//! ones.

use crate::{Error, Float, Result};

/// The margin `m` such that the intervals `[lower − m, upper + m]` hold at least `coverage` of
/// new samples: `lower`, `upper` and `truth` are, for each calibration sample, the interval a
/// network gives it and its true value. The calibration samples must be new to the network
/// (not trained on), and exchangeable with the samples the intervals are for.
///
/// Each sample scores `s = max(lower − y, y − upper)`: how far outside its interval its value
/// is, negative inside. The margin is the `⌈(n + 1)·coverage⌉`-th smallest of the `n` scores,
/// so that a new sample's score is at most `m`, which puts its value inside the widened
/// interval, with probability at least `coverage` (and below `coverage + 1/(n + 1)` when the
/// scores are distinct). A negative margin narrows intervals that held more than asked.
///
/// ```
/// use feedforward::conformal::interval_margin;
/// // Five calibration samples: intervals of width 2 around 0, values spread beyond them.
/// let (lower, upper) = ([-1.0f32; 5], [1.0f32; 5]);
/// let truth = [0.0, 1.5, -2.0, 0.5, 3.0];
/// // Scores: -1, 0.5, 1, -0.5, 2. Coverage 0.5: the ⌈6·0.5⌉ = 3rd smallest, 0.5.
/// assert_eq!(interval_margin(&lower, &upper, &truth, 0.5)?, 0.5);
/// // Coverage 0.8: the ⌈4.8⌉ = 5th smallest, 2: every calibration value falls inside.
/// assert_eq!(interval_margin(&lower, &upper, &truth, 0.8)?, 2.0);
/// // 0.9 needs ⌈5.4⌉ = 6 scores: at least 9 samples.
/// assert!(interval_margin(&lower, &upper, &truth, 0.9).is_err());
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// [`Error::ShapeMismatch`] for slices of different lengths, or too few samples for the
/// coverage (the rank `⌈(n + 1)·coverage⌉` past `n`: `coverage / (1 − coverage)` samples at
/// least); [`Error::EmptyBatch`] for none; [`Error::InvalidHyperparameter`] for a coverage
/// outside (0, 1); [`Error::NonFinite`] naming the first sample with a NaN or infinite value.
pub fn interval_margin<T: Float>(lower: &[T], upper: &[T], truth: &[T], coverage: f64) -> Result<f64> {
    if !(coverage > 0.0 && coverage < 1.0) {
        return Err(Error::InvalidHyperparameter {
            name: "conformal coverage",
            value: coverage,
            requirement: "must be in (0, 1)",
        });
    }
    let n = truth.len();
    if lower.len() != n || upper.len() != n {
        return Err(Error::shape(
            "conformal calibration",
            format!("a lower and an upper bound for each of the {n} true values"),
            format!("{} lower and {} upper bounds", lower.len(), upper.len()),
        ));
    }
    if n == 0 {
        return Err(Error::EmptyBatch { what: "conformal calibration" });
    }
    for (what, values) in [
        ("calibration lower bounds", lower),
        ("calibration upper bounds", upper),
        ("calibration targets", truth),
    ] {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                step: None,
                what: what.into(),
                value: values[i].as_f64(),
                sample: Some(i),
            });
        }
    }
    // The rank, 1-based; a product just above an integer from rounding is that integer.
    let rank = ((n + 1) as f64 * coverage - 1e-9).ceil() as usize;
    if rank > n {
        // ⌈(m + 1)·c⌉ ≤ m exactly when m ≥ c/(1 − c).
        let needed = (coverage / (1.0 - coverage) - 1e-9).ceil();
        return Err(Error::shape(
            "conformal calibration",
            format!("at least {needed} samples for a coverage of {coverage}"),
            format!("{n}"),
        ));
    }
    let mut scores: Vec<f64> = (0..n)
        .map(|i| {
            let (lo, hi, y) = (lower[i].as_f64(), upper[i].as_f64(), truth[i].as_f64());
            (lo - y).max(y - hi)
        })
        .collect();
    let (_, margin, _) = scores.select_nth_unstable_by(rank - 1, f64::total_cmp);
    Ok(*margin)
}
