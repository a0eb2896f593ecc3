//! Conformal prediction: intervals that hold their coverage on new data, whatever the network
//! learned.
//!
//! [`interval_margin`] is conformalized quantile regression (CQR; Romano, Patterson and
//! Candès, 2019): a network trained on the pinball loss ([`Quantile`](crate::Quantile)) gives
//! each sample an interval between two of its quantiles, which on new data often holds fewer
//! samples than it should. Measured on calibration samples the network did not train on, one
//! margin widens (or narrows) every interval so that it holds at least the coverage asked,
//! with a guarantee that assumes only that new samples are exchangeable with the calibration
//! ones. [`interval_margins`] measures each side apart (asymmetric CQR), so that each misses
//! its share where the noise is skewed.
//!
//! [`deviation_factor`] does the same for a network that gives each sample a mean and a
//! variance ([`GaussianNll`](crate::GaussianNll)): the factor `k` that makes the intervals
//! `μ ± k·√v` hold the coverage asked, whatever the law of the noise (normalized conformal
//! scores, `|y − μ|/√v`).
//!
//! [`class_threshold`] does it for a classifier: the probability `τ` such that the *prediction
//! sets* of the classes given at least `τ` ([`prediction_sets`]) hold the true class of the
//! coverage asked (least ambiguous set-valued classifiers, LAC; Sadinle, Lei and Wasserman,
//! 2019). A sample the network is sure of gets one class, an ambiguous one several, one unlike
//! any it learned possibly none. That coverage is over all samples: a rare or hard class can
//! get less while the easy ones get more. [`class_thresholds`] gives each class its own
//! threshold, measured on its own calibration samples ([`prediction_sets_per_class`]), so that
//! the sets hold the coverage within every class (class-conditional, or Mondrian, conformal
//! prediction; Vovk et al.). [`adaptive_threshold`] ranks each sample's classes instead, and
//! its sets ([`adaptive_prediction_sets`]) take classes down the ranking until their summed
//! probability reaches the threshold (adaptive prediction sets, APS; Romano, Sesia and
//! Candès, 2020): larger where the network is unsure, so that unsure samples are held about
//! as often as sure ones.

use crate::metrics::check_probabilities;
use crate::{Error, Float, Result};
use nalgebra::DMatrix;
use rand::{Rng, RngExt};

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
    check_intervals(lower, upper, truth)?;
    let scores = (0..truth.len()).map(|i| {
        let (lo, hi, y) = (lower[i].as_f64(), upper[i].as_f64(), truth[i].as_f64());
        (lo - y).max(y - hi)
    });
    ranked_score(scores.collect(), coverage, || format!("a coverage of {coverage}"))
}

/// The margins `(below, above)` such that the intervals `[lower − below, upper + above]` hold
/// at least `coverage` of new samples, each side missing at most half the rest: asymmetric
/// conformalized quantile regression (Romano, Patterson and Candès, 2019). The calibration
/// samples must be new to the network, and exchangeable with the samples the intervals are for.
///
/// `below` is the `⌈(n + 1)·(1 + coverage)/2⌉`-th smallest of the scores `lower − y`, `above`
/// the same rank of `y − upper`: a new value falls under the widened interval with probability
/// at most `(1 − coverage)/2`, over it likewise, so inside with at least `coverage`. Where the
/// noise is skewed, [`interval_margin`]'s one margin leaves most misses on one side; these
/// balance them, at the price of more calibration samples for the same coverage (the rank of
/// `(1 + coverage)/2`).
///
/// ```
/// use feedforward::conformal::interval_margins;
/// // Nine calibration samples, intervals [−1, 1]; values far out above, never below.
/// let (lower, upper) = ([-1.0f64; 9], [1.0f64; 9]);
/// let truth = [0.0, 0.5, -0.5, 2.0, 3.0, 1.5, 0.2, 4.0, 2.5];
/// // Coverage 0.6, each side at 0.8: the ⌈10·0.8⌉ = 8th smallest score of each side.
/// let (below, above) = interval_margins(&lower, &upper, &truth, 0.6)?;
/// assert_eq!((below, above), (-1.0, 2.0)); // narrower below, wider above
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// As [`interval_margin`]'s; too few samples means fewer than `(1 + c)/(1 − c)`.
pub fn interval_margins<T: Float>(
    lower: &[T],
    upper: &[T],
    truth: &[T],
    coverage: f64,
) -> Result<(f64, f64)> {
    check_intervals(lower, upper, truth)?;
    check_coverage(coverage)?;
    let side = (1.0 + coverage) / 2.0;
    let n = truth.len();
    let below = (0..n).map(|i| lower[i].as_f64() - truth[i].as_f64());
    let above = (0..n).map(|i| truth[i].as_f64() - upper[i].as_f64());
    let asked = || format!("a coverage of {coverage} with a margin on each side");
    Ok((ranked_score(below.collect(), side, asked)?, ranked_score(above.collect(), side, asked)?))
}

/// Checks calibration intervals: a lower and an upper bound per true value, all finite.
fn check_intervals<T: Float>(lower: &[T], upper: &[T], truth: &[T]) -> Result<()> {
    let n = truth.len();
    if lower.len() != n || upper.len() != n {
        return Err(Error::shape(
            "conformal calibration",
            format!("a lower and an upper bound for each of the {n} true values"),
            format!("{} lower and {} upper bounds", lower.len(), upper.len()),
        ));
    }
    check_finite(&[
        ("calibration lower bounds", lower),
        ("calibration upper bounds", upper),
        ("calibration targets", truth),
    ])
}

/// The factor `k` such that the intervals `μ ± k·√v` hold at least `coverage` of new samples:
/// `mean`, `variance` and `truth` are, for each calibration sample, the mean and the variance
/// a network gives it ([`GaussianNll`](crate::GaussianNll)) and its true value. The calibration
/// samples must be new to the network, and exchangeable with the samples the intervals are for.
///
/// Each sample scores `s = |y − μ|/√v`, how many predicted deviations its value lies from the
/// mean; `k` is the `⌈(n + 1)·coverage⌉`-th smallest of the `n` scores, with the guarantee of
/// [`interval_margin`]. Were the noise normal and the variances right, `k` would come near the
/// normal law's (1.28 for 80%); a larger `k` says the variances were too small or the noise's
/// tails heavier, a smaller one the reverse. Multiplying each variance by `(k/z)²` makes the
/// normal interval `μ ± z·√v` the calibrated one.
///
/// ```
/// use feedforward::conformal::deviation_factor;
/// // Four samples with mean 0 and variance 4 (deviation 2); values 1, −2, 3, −6.
/// let (mean, variance) = ([0.0f64; 4], [4.0; 4]);
/// // Scores 0.5, 1, 1.5, 3. Coverage 0.6: the ⌈5·0.6⌉ = 3rd smallest, 1.5.
/// assert_eq!(deviation_factor(&mean, &variance, &[1.0, -2.0, 3.0, -6.0], 0.6)?, 1.5);
/// // A variance must be > 0.
/// assert!(deviation_factor(&mean, &[4.0, 0.0, 4.0, 4.0], &[1.0; 4], 0.6).is_err());
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// As [`interval_margin`]'s, and [`Error::InvalidInput`] naming the first sample whose
/// variance is not > 0.
pub fn deviation_factor<T: Float>(mean: &[T], variance: &[T], truth: &[T], coverage: f64) -> Result<f64> {
    let n = truth.len();
    if mean.len() != n || variance.len() != n {
        return Err(Error::shape(
            "conformal calibration",
            format!("a mean and a variance for each of the {n} true values"),
            format!("{} means and {} variances", mean.len(), variance.len()),
        ));
    }
    check_finite(&[
        ("calibration means", mean),
        ("calibration variances", variance),
        ("calibration targets", truth),
    ])?;
    if let Some(i) = variance.iter().position(|&v| v <= T::zero()) {
        return Err(Error::InvalidInput {
            sample: i,
            row: 0,
            value: variance[i].as_f64(),
            requirement: "is a variance: it must be > 0".into(),
        });
    }
    let scores = (0..n).map(|i| (truth[i].as_f64() - mean[i].as_f64()).abs() / variance[i].as_f64().sqrt());
    ranked_score(scores.collect(), coverage, || format!("a coverage of {coverage}"))
}

/// The probability `τ` such that the prediction sets `{k : p_k ≥ τ}` ([`prediction_sets`])
/// hold the true class of at least `coverage` of new samples: `probabilities` (`classes ×
/// samples`, as [`Network::probabilities`](crate::Network::probabilities) gives) and `labels`
/// are those of calibration samples, new to the network and exchangeable with the samples the
/// sets are for. Least ambiguous set-valued classifiers (LAC; Sadinle, Lei and Wasserman, 2019):
/// of the sets that hold the coverage, these are the smallest on average when the
/// probabilities are right.
///
/// Each sample scores `−p_y`, minus the probability of its true class; `τ` is minus the
/// `⌈(n + 1)·coverage⌉`-th smallest score, so that a new sample's true class has a probability
/// of at least `τ`, and falls in its set, with probability at least `coverage`. The guarantee
/// holds over samples, not for each: a set may be empty (no class reaches `τ`), and the sets of
/// a hard class hold it less often than those of an easy one.
///
/// ```
/// use feedforward::conformal::{class_threshold, prediction_sets};
/// use nalgebra::DMatrix;
/// // Four calibration samples of three classes; their true classes' probabilities 0.7, 0.5,
/// // 0.2 and 0.9.
/// let p = DMatrix::from_column_slice(3, 4, &[
///     0.7f64, 0.2, 0.1,   0.3, 0.5, 0.2,   0.2, 0.6, 0.2,   0.05, 0.05, 0.9,
/// ]);
/// let labels = [0, 1, 0, 2];
/// // Coverage 0.6: the ⌈5·0.6⌉ = 3rd smallest of the scores −0.9, −0.7, −0.5, −0.2.
/// let tau = class_threshold(&p, &labels, 0.6)?;
/// assert_eq!(tau, 0.5);
/// // The sets: the classes of probability ≥ 0.5, most probable first.
/// assert_eq!(prediction_sets(&p, tau)?, vec![vec![0], vec![1], vec![1], vec![2]]);
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// [`Error::EmptyBatch`] for no samples; [`Error::ShapeMismatch`] for labels not one per
/// column, or too few samples for the coverage (as [`interval_margin`]'s);
/// [`Error::LabelOutOfRange`]; [`Error::NonFinite`] naming the sample of a NaN or ±inf;
/// [`Error::InvalidInput`] naming the sample and row of a probability outside [0, 1];
/// [`Error::InvalidHyperparameter`] for a coverage outside (0, 1).
pub fn class_threshold<T: Float>(probabilities: &DMatrix<T>, labels: &[usize], coverage: f64) -> Result<f64> {
    check_probabilities(probabilities, Some(labels))?;
    // Minus the probability, not one minus it: negation is exact, so a calibration sample's
    // true class has a probability ≥ τ exactly when its score is ≤ the ranked one.
    let scores = labels.iter().enumerate().map(|(j, &y)| -probabilities[(y, j)].as_f64());
    Ok(-ranked_score(scores.collect(), coverage, || format!("a coverage of {coverage}"))?)
}

/// A threshold per class such that the prediction sets `{k : p_k ≥ τ_k}`
/// ([`prediction_sets_per_class`]) hold the true class of at least `coverage` of new samples
/// *of each class*: class-conditional (Mondrian) conformal prediction. `probabilities` and
/// `labels` are those of calibration samples, as for [`class_threshold`]; `τ_k` is
/// [`class_threshold`]'s rank taken over the samples of class `k` alone, so that for a new
/// sample of class `k`, `p_k ≥ τ_k` with probability at least `coverage`.
///
/// The price is calibration samples: every class needs at least `coverage / (1 − coverage)`
/// of them (9 for 0.9, 19 for 0.95), and a class with few has a coarse threshold.
///
/// ```
/// use feedforward::conformal::{class_thresholds, prediction_sets_per_class};
/// use nalgebra::DMatrix;
/// // Two classes, class 0 easy (its samples give it 0.9, 0.8, 0.95), class 1 hard (0.6, 0.3,
/// // 0.4): each its own threshold, the ⌈4·0.75⌉ = 3rd smallest of its 3 scores for a coverage
/// // of 0.75.
/// let p = DMatrix::from_column_slice(2, 6, &[
///     0.9f64, 0.1,  0.8, 0.2,  0.95, 0.05,  0.4, 0.6,  0.7, 0.3,  0.6, 0.4,
/// ]);
/// let tau = class_thresholds(&p, &[0, 0, 0, 1, 1, 1], 0.75)?;
/// assert_eq!(tau, vec![0.8, 0.3]);
/// let new = DMatrix::from_column_slice(2, 1, &[0.65f64, 0.35]);
/// assert_eq!(prediction_sets_per_class(&new, &tau)?, vec![vec![1]]); // 0.65 < 0.8, 0.35 ≥ 0.3
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// [`class_threshold`]'s, and [`Error::ShapeMismatch`] naming a class with too few
/// calibration samples for the coverage (none, for one the labels never name).
pub fn class_thresholds<T: Float>(
    probabilities: &DMatrix<T>,
    labels: &[usize],
    coverage: f64,
) -> Result<Vec<f64>> {
    check_probabilities(probabilities, Some(labels))?;
    check_coverage(coverage)?;
    let mut scores = vec![Vec::new(); probabilities.nrows()];
    for (j, &y) in labels.iter().enumerate() {
        scores[y].push(-probabilities[(y, j)].as_f64());
    }
    let ranked = scores.into_iter().enumerate().map(|(k, scores)| {
        if scores.is_empty() {
            return Err(Error::shape(
                "conformal calibration",
                format!("calibration samples of class {k}"),
                "none",
            ));
        }
        let asked = || format!("a coverage of {coverage} within class {k}");
        Ok(-ranked_score(scores, coverage, asked)?)
    });
    ranked.collect()
}

/// The prediction set of each column of `probabilities` (`classes × samples`): the classes
/// whose probability is at least `threshold` ([`class_threshold`]), most probable first (ties
/// in class order). A set may be empty.
///
/// # Errors
/// [`Error::EmptyBatch`] for no samples; [`Error::ShapeMismatch`] for no rows;
/// [`Error::NonFinite`] naming the sample of a NaN or ±inf; [`Error::InvalidInput`] naming
/// the sample and row of a probability outside [0, 1].
pub fn prediction_sets<T: Float>(probabilities: &DMatrix<T>, threshold: f64) -> Result<Vec<Vec<usize>>> {
    sets_by(probabilities, |_| threshold)
}

/// [`prediction_sets`] with a threshold per class ([`class_thresholds`]): the classes `k`
/// whose probability is at least `thresholds[k]`, most probable first.
///
/// # Errors
/// [`prediction_sets`]'s, and [`Error::ShapeMismatch`] for thresholds not one per row.
pub fn prediction_sets_per_class<T: Float>(
    probabilities: &DMatrix<T>,
    thresholds: &[f64],
) -> Result<Vec<Vec<usize>>> {
    if thresholds.len() != probabilities.nrows() {
        return Err(Error::shape(
            "prediction set thresholds",
            format!("one per class ({})", probabilities.nrows()),
            format!("{}", thresholds.len()),
        ));
    }
    sets_by(probabilities, |k| thresholds[k])
}

/// Each column's classes `k` of a probability of at least `threshold(k)`, most probable first.
fn sets_by<T: Float>(
    probabilities: &DMatrix<T>,
    threshold: impl Fn(usize) -> f64,
) -> Result<Vec<Vec<usize>>> {
    check_probabilities(probabilities, None)?;
    let sets = probabilities.column_iter().map(|column| {
        let mut set: Vec<usize> = (0..column.len()).filter(|&k| column[k].as_f64() >= threshold(k)).collect();
        set.sort_by(|&a, &b| column[b].as_f64().total_cmp(&column[a].as_f64()));
        set
    });
    Ok(sets.collect())
}

/// The threshold `τ` such that the *adaptive* prediction sets ([`adaptive_prediction_sets`])
/// hold the true class of at least `coverage` of new samples: adaptive prediction sets (APS;
/// Romano, Sesia and Candès, 2020, with their randomization). `probabilities` and `labels`
/// are those of calibration samples, as for [`class_threshold`]; `rng` draws one uniform `u`
/// in [0, 1) per sample, in order.
///
/// Each sample's classes are ranked by probability (ties in class order), and the sample
/// scores the probability mass ranked above its true class plus `u` times the true class's
/// own: `u·0.6` for a true class ranked first at 0.6, `0.6 + u·0.3` for one ranked second at
/// 0.3 behind 0.6. `τ` is the `⌈(n + 1)·coverage⌉`-th smallest score. A new sample's set is
/// the classes `k` of its ranking whose mass above them plus `u·p_k` (its own `u`) is at most
/// `τ`: a class is in the set exactly when its score would be at most `τ`, so the true class
/// is with probability at least `coverage`.
///
/// Where [`class_threshold`]'s sets take the classes above one probability, and so are
/// smallest on average but hold the class of unsure samples less often than of sure ones,
/// these grow with the network's doubt: on calibrated probabilities they hold the class
/// about as often whatever the sample's top probability. The draw is what makes that so: without
/// it (`u = 1`) the sets of sure samples come out empty too often, and with the class that
/// crosses `τ` always taken, every set is too large. The price is sets that depend on the
/// draw, as a seeded `rng` makes repeatable.
///
/// ```
/// use feedforward::conformal::{adaptive_prediction_sets, adaptive_threshold};
/// use nalgebra::DMatrix;
/// use rand::SeedableRng;
/// // Samples that all give [0.5, 0.3, 0.2], their true class each of the three in turn.
/// let p = DMatrix::from_fn(3, 300, |k, _| [0.5f64, 0.3, 0.2][k]);
/// let labels: Vec<usize> = (0..300).map(|j| j % 3).collect();
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let tau = adaptive_threshold(&p, &labels, 0.6, &mut rng)?;
/// // The first class's samples score u·0.5, below 0.5; the second's 0.5 + u·0.3; the third's
/// // from 0.8: 60% of the scores reach into the second class's.
/// assert!(tau > 0.5 && tau < 0.8);
/// // Sets for samples like them hold the class about 60% of the time.
/// let sets = adaptive_prediction_sets(&p, tau, &mut rng)?;
/// let held = sets.iter().zip(&labels).filter(|(set, y)| set.contains(y)).count();
/// assert!((held as f64 / 300.0 - 0.6).abs() < 0.1);
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// [`class_threshold`]'s.
pub fn adaptive_threshold<T: Float, R: Rng + ?Sized>(
    probabilities: &DMatrix<T>,
    labels: &[usize],
    coverage: f64,
    rng: &mut R,
) -> Result<f64> {
    check_probabilities(probabilities, Some(labels))?;
    let scores = probabilities.column_iter().zip(labels).map(|(column, &y)| {
        let u = rng.random::<f64>();
        ranked_mass(column.as_slice(), u).find(|&(k, _)| k == y).map_or(f64::INFINITY, |(_, score)| score)
    });
    ranked_score(scores.collect(), coverage, || format!("a coverage of {coverage}"))
}

/// The adaptive prediction set of each column of `probabilities` (`classes × samples`) for
/// the threshold of [`adaptive_threshold`]: its classes ranked by probability (ties in class
/// order), down to the last whose mass above it plus `u` times its own is at most
/// `threshold`, `u` uniform in [0, 1) drawn by `rng` for each sample in order. A set may be
/// empty (a sure sample's first class, for a `u` near 1).
///
/// # Errors
/// [`prediction_sets`]'s.
pub fn adaptive_prediction_sets<T: Float, R: Rng + ?Sized>(
    probabilities: &DMatrix<T>,
    threshold: f64,
    rng: &mut R,
) -> Result<Vec<Vec<usize>>> {
    check_probabilities(probabilities, None)?;
    let sets = probabilities.column_iter().map(|column| {
        let u = rng.random::<f64>();
        ranked_mass(column.as_slice(), u)
            .take_while(|&(_, score)| score <= threshold)
            .map(|(k, _)| k)
            .collect()
    });
    Ok(sets.collect())
}

/// A sample's classes, most probable first (ties in class order), each with its adaptive
/// score: the probability mass ranked above it plus `u` times its own, summed in that order in
/// `f64`. One function, so that a calibration sample's score and a new sample's set add the
/// same way. The scores never fall down the ranking.
fn ranked_mass<T: Float>(column: &[T], u: f64) -> impl Iterator<Item = (usize, f64)> + '_ {
    let mut order: Vec<usize> = (0..column.len()).collect();
    order.sort_by(|&a, &b| column[b].as_f64().total_cmp(&column[a].as_f64()));
    let mut above = 0.0;
    order.into_iter().map(move |k| {
        let p = column[k].as_f64();
        let score = above + u * p;
        above += p;
        (k, score)
    })
}

/// Rejects a coverage outside (0, 1).
fn check_coverage(coverage: f64) -> Result<()> {
    if coverage > 0.0 && coverage < 1.0 {
        return Ok(());
    }
    Err(Error::InvalidHyperparameter {
        name: "conformal coverage",
        value: coverage,
        requirement: "must be in (0, 1)",
    })
}

/// Rejects the first NaN or infinite value of the named calibration slices, naming its sample.
fn check_finite<T: Float>(named: &[(&str, &[T])]) -> Result<()> {
    for &(what, values) in named {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                step: None,
                what: what.into(),
                value: values[i].as_f64(),
                sample: Some(i),
            });
        }
    }
    Ok(())
}

/// The `⌈(n + 1)·coverage⌉`-th smallest of the `n` calibration `scores`: the conformal
/// quantile. Errors for a coverage outside (0, 1), no scores, or too few for the rank (saying
/// what was `asked`).
fn ranked_score(mut scores: Vec<f64>, coverage: f64, asked: impl FnOnce() -> String) -> Result<f64> {
    check_coverage(coverage)?;
    let n = scores.len();
    if n == 0 {
        return Err(Error::EmptyBatch { what: "conformal calibration" });
    }
    // The rank, 1-based; a product just above an integer from rounding is that integer.
    let rank = ((n + 1) as f64 * coverage - 1e-9).ceil() as usize;
    if rank > n {
        // ⌈(m + 1)·c⌉ ≤ m exactly when m ≥ c/(1 − c).
        let needed = (coverage / (1.0 - coverage) - 1e-9).ceil();
        return Err(Error::shape(
            "conformal calibration",
            format!("at least {needed} samples for {}", asked()),
            format!("{n}"),
        ));
    }
    let (_, score, _) = scores.select_nth_unstable_by(rank - 1, f64::total_cmp);
    Ok(*score)
}
