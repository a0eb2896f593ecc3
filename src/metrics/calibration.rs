//! [`Calibration`]: whether a classifier's probabilities mean what they say. Of the samples
//! given 80% for their top class, about 80% should have it right.

use crate::loss::{check_probability_targets, check_sample_weights};
use crate::network::check_finite;
use crate::{Error, Float, Result};
use nalgebra::DMatrix;

/// The reliability of a classifier's top-class probabilities (Guo et al., 2017, "On
/// Calibration of Modern Neural Networks"): the samples cut into bins of equal width by their
/// *confidence* (the highest probability, that of the predicted class), and in each bin the
/// mean confidence beside the *accuracy* (the share predicted right). A calibrated classifier
/// has them equal in every bin; a network trained to a low cross-entropy is often
/// overconfident (its confidence above its accuracy), which temperature scaling
/// ([`Temperature`](crate::Temperature)) corrects.
///
/// The expected calibration error is `ECE = Σ_b (n_b/n)·|accuracy_b − confidence_b|`, the
/// gap of each bin weighted by its share of the samples; the maximum calibration error the
/// largest gap of a bin that has samples. Bin `b` of `B` holds the confidences in
/// `(b/B, (b + 1)/B]` (the first also 0). With weights, each sample counts its weight in the
/// shares and the means. [`Calibration::binary`] bins a sigmoid's independent probabilities
/// instead, each against its target.
///
/// ```
/// use feedforward::metrics::Calibration;
/// use nalgebra::DMatrix;
/// // Two classes, four samples: 0.9 for the top class thrice, 0.6 once.
/// let p = DMatrix::from_column_slice(2, 4, &[0.9f64, 0.1, 0.1, 0.9, 0.9, 0.1, 0.4, 0.6]);
/// // The 0.9s are right twice of three, the 0.6 wrong (its class is 0).
/// let c = Calibration::new(&p, &[0, 1, 1, 0], 10)?;
/// let ece = 0.75 * (0.9f64 - 2.0 / 3.0) + 0.25 * 0.6;
/// assert!((c.expected_calibration_error() - ece).abs() < 1e-12);
/// assert!((c.maximum_calibration_error() - 0.6).abs() < 1e-12);
/// assert_eq!(c.bins()[8].samples, 3); // (0.8, 0.9]
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    bins: Vec<CalibrationBin>,
    /// The samples' total weight (their count, unweighted).
    total: f64,
}

/// One bin of a [`Calibration`]: the samples whose confidence falls in `(lower, upper]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationBin {
    /// The bin's lower bound (excluded but for the first bin's 0).
    pub lower: f64,
    /// The bin's upper bound (included).
    pub upper: f64,
    /// How many samples fall in it.
    pub samples: usize,
    /// Their total weight (`samples` when unweighted).
    pub weight: f64,
    /// Their mean confidence; `None` for a bin of no weight.
    pub confidence: Option<f64>,
    /// The share of them whose predicted class is right; `None` for a bin of no weight.
    pub accuracy: Option<f64>,
}

impl Calibration {
    /// Bins the top-class confidence of each column of `probabilities` (`classes × samples`,
    /// as [`Network::probabilities`](crate::Network::probabilities) gives) against its true
    /// class in `labels`, into `bins` bins of equal width (Guo et al. used 15). The predicted
    /// class is the first of the highest probability, as
    /// [`Network::predict`](crate::Network::predict) picks it.
    ///
    /// # Errors
    /// [`Error::EmptyBatch`] for no samples; [`Error::ShapeMismatch`] for labels not one per
    /// column, or no rows; [`Error::LabelOutOfRange`]; [`Error::NonFinite`] naming the sample
    /// of a NaN or ±inf; [`Error::InvalidInput`] naming the sample and row of a probability
    /// outside [0, 1]; [`Error::InvalidHyperparameter`] for 0 bins.
    pub fn new<T: Float>(probabilities: &DMatrix<T>, labels: &[usize], bins: usize) -> Result<Self> {
        Self::binned(probabilities, labels, None, bins)
    }

    /// As [`new`](Calibration::new), each sample counting its weight (a weight ≥ 0 per
    /// sample, as the other weighted metrics take them). Weights of 1 give
    /// [`new`](Calibration::new)'s numbers exactly.
    ///
    /// # Errors
    /// [`new`](Calibration::new)'s, and [`Error::InvalidSampleWeight`] for a weight that is
    /// negative or not finite (naming the sample) or weights that are all 0.
    pub fn weighted<T: Float>(
        probabilities: &DMatrix<T>,
        labels: &[usize],
        weights: &[f64],
        bins: usize,
    ) -> Result<Self> {
        Self::binned(probabilities, labels, Some(weights), bins)
    }

    /// The reliability of independent probabilities, a sigmoid's: every entry of `probabilities`
    /// (`labels × samples`, as
    /// [`Network::sigmoid_probabilities`](crate::Network::sigmoid_probabilities) gives) is one
    /// prediction that its `targets` entry is 1, binned by that probability. A bin's
    /// [`confidence`](CalibrationBin::confidence) is then its mean probability and its
    /// [`accuracy`](CalibrationBin::accuracy) the share of its targets that are 1 (the mean
    /// target, for targets between 0 and 1): the reliability diagram of a binary classifier, and
    /// of every label of a multi-label one pooled.
    ///
    /// ```
    /// use feedforward::metrics::Calibration;
    /// use nalgebra::DMatrix;
    /// // Four predictions of 0.8, three of them right: a gap of 0.05 in the bin (0.75, 1].
    /// let p = DMatrix::from_element(1, 4, 0.8f64);
    /// let t = DMatrix::from_row_slice(1, 4, &[1.0, 1.0, 0.0, 1.0]);
    /// let c = Calibration::binary(&p, &t, 4)?;
    /// assert!((c.expected_calibration_error() - 0.05).abs() < 1e-12);
    /// assert_eq!(c.bins()[3].samples, 4);
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::EmptyBatch`] for no samples; [`Error::ShapeMismatch`] for targets of another
    /// shape, or no rows; [`Error::InvalidTarget`] naming the sample and row of a target
    /// outside [0, 1]; [`Error::NonFinite`] and [`Error::InvalidInput`] as
    /// [`new`](Calibration::new)'s; [`Error::InvalidHyperparameter`] for 0 bins.
    pub fn binary<T: Float>(probabilities: &DMatrix<T>, targets: &DMatrix<T>, bins: usize) -> Result<Self> {
        Self::binned_binary(probabilities, targets, None, bins)
    }

    /// As [`binary`](Calibration::binary), each sample's predictions counting its weight (one
    /// per sample, a column). Weights of 1 give [`binary`](Calibration::binary)'s numbers
    /// exactly.
    ///
    /// # Errors
    /// [`binary`](Calibration::binary)'s, and [`Error::InvalidSampleWeight`] for a weight that
    /// is negative or not finite (naming the sample) or weights that are all 0.
    pub fn binary_weighted<T: Float>(
        probabilities: &DMatrix<T>,
        targets: &DMatrix<T>,
        weights: &[f64],
        bins: usize,
    ) -> Result<Self> {
        Self::binned_binary(probabilities, targets, Some(weights), bins)
    }

    fn binned_binary<T: Float>(
        probabilities: &DMatrix<T>,
        targets: &DMatrix<T>,
        weights: Option<&[f64]>,
        bins: usize,
    ) -> Result<Self> {
        check_probabilities(probabilities, None)?;
        check_probability_targets(probabilities, targets)?;
        if let Some(weights) = weights {
            check_sample_weights(weights, probabilities.ncols(), "weighted calibration")?;
        }
        let rows = probabilities.nrows();
        let entries = probabilities.iter().zip(targets.iter()).enumerate();
        let predictions =
            entries.map(|(k, (p, t))| (p.as_f64(), t.as_f64(), weights.map_or(1.0, |w| w[k / rows])));
        Self::from_predictions(predictions, bins)
    }

    fn binned<T: Float>(
        probabilities: &DMatrix<T>,
        labels: &[usize],
        weights: Option<&[f64]>,
        bins: usize,
    ) -> Result<Self> {
        check_probabilities(probabilities, Some(labels))?;
        if let Some(weights) = weights {
            check_sample_weights(weights, labels.len(), "weighted calibration")?;
        }
        let predictions = probabilities.column_iter().enumerate().map(|(j, column)| {
            let (predicted, confidence) = top_class(column.iter().map(|p| p.as_f64()));
            (confidence, if predicted == labels[j] { 1.0 } else { 0.0 }, weights.map_or(1.0, |w| w[j]))
        });
        Self::from_predictions(predictions, bins)
    }

    /// Bins `(confidence, right, weight)` triples by their confidence: `right` is 1 for a
    /// prediction that came true and 0 for one that did not (or the target, between them).
    fn from_predictions(predictions: impl Iterator<Item = (f64, f64, f64)>, bins: usize) -> Result<Self> {
        if bins == 0 {
            return Err(Error::InvalidHyperparameter {
                name: "calibration bins",
                value: 0.0,
                requirement: "must be at least 1",
            });
        }
        // Per bin: samples, weight, weighted sums of confidence and of right predictions.
        let mut sums = vec![(0usize, 0.0f64, 0.0f64, 0.0f64); bins];
        for (confidence, right, w) in predictions {
            let b = ((confidence * bins as f64).ceil() as usize).saturating_sub(1).min(bins - 1);
            let bin = &mut sums[b];
            bin.0 += 1;
            bin.1 += w;
            bin.2 += w * confidence;
            bin.3 += w * right;
        }
        let total = sums.iter().map(|s| s.1).sum();
        let bins = sums
            .iter()
            .enumerate()
            .map(|(b, &(samples, weight, confidence, right))| CalibrationBin {
                lower: b as f64 / bins as f64,
                upper: (b + 1) as f64 / bins as f64,
                samples,
                weight,
                confidence: (weight > 0.0).then(|| confidence / weight),
                accuracy: (weight > 0.0).then(|| right / weight),
            })
            .collect();
        Ok(Calibration { bins, total })
    }

    /// The bins, from the lowest confidence up.
    #[must_use]
    pub fn bins(&self) -> &[CalibrationBin] {
        &self.bins
    }

    /// The expected calibration error (ECE): each bin's gap `|accuracy − confidence|` weighted
    /// by its share of the samples, in [0, 1].
    #[must_use]
    pub fn expected_calibration_error(&self) -> f64 {
        let gaps = self.bins.iter().filter_map(|b| Some(b.weight * (b.accuracy? - b.confidence?).abs()));
        gaps.sum::<f64>() / self.total
    }

    /// The maximum calibration error (MCE): the largest gap `|accuracy − confidence|` of a
    /// bin with samples of weight > 0, in [0, 1]. A bin of a few samples can make it large by
    /// chance (one wrong sample of confidence 0.95 is a gap of 0.95): read it beside the bins'
    /// [`samples`](CalibrationBin::samples).
    #[must_use]
    pub fn maximum_calibration_error(&self) -> f64 {
        let gaps = self.bins.iter().filter_map(|b| Some((b.accuracy? - b.confidence?).abs()));
        gaps.fold(0.0, f64::max)
    }

    /// The mean confidence over all samples (weighted by their weights).
    #[must_use]
    pub fn confidence(&self) -> f64 {
        self.bins.iter().filter_map(|b| Some(b.weight * b.confidence?)).sum::<f64>() / self.total
    }

    /// The share of samples whose predicted class is right (weighted by their weights): the
    /// accuracy.
    #[must_use]
    pub fn accuracy(&self) -> f64 {
        self.bins.iter().filter_map(|b| Some(b.weight * b.accuracy?)).sum::<f64>() / self.total
    }
}

/// The first class of the highest probability, and that probability.
fn top_class(probabilities: impl Iterator<Item = f64>) -> (usize, f64) {
    probabilities
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (k, p)| if p > best.1 { (k, p) } else { best })
}

/// Checks class probabilities (`classes × samples`) and, if given, their labels: at least one
/// sample and one class, a label per sample in range, each probability finite and in [0, 1].
pub(crate) fn check_probabilities<T: Float>(
    probabilities: &DMatrix<T>,
    labels: Option<&[usize]>,
) -> Result<()> {
    let (classes, samples) = probabilities.shape();
    if samples == 0 {
        return Err(Error::EmptyBatch { what: "class probabilities" });
    }
    if classes == 0 || labels.is_some_and(|labels| labels.len() != samples) {
        let expected = match labels {
            Some(labels) => format!("at least one class, and one label per sample ({})", labels.len()),
            None => "at least one class".into(),
        };
        return Err(Error::shape("class probabilities", expected, format!("{classes}×{samples}")));
    }
    if let Some((index, &label)) = labels.unwrap_or(&[]).iter().enumerate().find(|(_, y)| **y >= classes) {
        return Err(Error::LabelOutOfRange { index, label, classes });
    }
    check_finite(probabilities, "class probabilities", None)?;
    if let Some(k) = probabilities.iter().position(|p| !(*p >= T::zero() && *p <= T::one())) {
        return Err(Error::InvalidInput {
            sample: k / classes,
            row: k % classes,
            value: probabilities[k].as_f64(),
            requirement: "is a probability: it must be in [0, 1]".into(),
        });
    }
    Ok(())
}
