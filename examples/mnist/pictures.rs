//! The run's pictures: sample and misclassified digits, loss and accuracy curves, the
//! learning-rate range test's curve, and digits drawn in the terminal.

use crate::chart::{self, BLUE, GREEN, Legend, LineChart, RED, Scale, Series};
use feedforward::data::Dataset;
use feedforward::metrics::Calibration;
use feedforward::train::RangeTestReport;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::path::Path;

/// What the curves are drawn from, gathered while training.
#[derive(Default)]
pub struct History {
    /// Training loss of each step (before its update), by step.
    pub loss: Vec<(f64, f64)>,
    /// Per epoch, by epoch: training accuracy (%, mean over the epoch's steps).
    pub train_accuracy: Vec<(f64, f64)>,
    /// Per epoch (every few epochs on long runs), by epoch: test accuracy (%).
    pub test_accuracy: Vec<(f64, f64)>,
    /// Per epoch: validation accuracy (%) by epoch, and loss by step (for the loss curve).
    pub validation_accuracy: Vec<(f64, f64)>,
    pub validation_loss: Vec<(f64, f64)>,
    pub steps: usize,
    pub samples: usize,
    /// Time spent measuring the test curve during training (not training time).
    pub curve_seconds: f64,
}

/// What the pictures show of a run besides its data.
pub struct Pictures<'a> {
    /// The predicted digit of each test image.
    pub test_pred: &'a [usize],
    pub history: &'a History,
    /// Reliability curves of the test images, each with its legend entry (none without test
    /// labels).
    pub reliability: &'a [(&'a str, &'a Calibration)],
}

/// Writes `samples.png`, `misclassified.png`, `loss.png`, `accuracy.png` and, when there are
/// reliability curves, `reliability.png` into `out`.
pub fn draw(
    out: &Path,
    train_set: &Dataset,
    test_set: &Dataset,
    pictures: Pictures<'_>,
    rng: &mut StdRng,
) -> feedforward::Result<()> {
    let Pictures { test_pred, history, reliability } = pictures;
    let failed = |file: &str| failed(out, file);
    create_folder(out, "samples.png")?;
    // Ten random training digits with their labels, as the original shows.
    let mut picks: Vec<usize> = (0..train_set.len()).collect();
    picks.shuffle(rng);
    picks.truncate(10);
    let labels = train_set.labels().unwrap_or(&[]);
    let images: Vec<&[f32]> = picks.iter().map(|&i| train_set.image(i)).collect();
    let captions: Vec<String> =
        picks.iter().map(|&i| labels.get(i).map_or("label ?".into(), |l| format!("label {l}"))).collect();
    chart::digit_grid(&out.join("samples.png"), &images, &captions, 28, 5).map_err(failed("samples.png"))?;

    // Misclassified test digits: what the network said, then the truth.
    if let Some(truth) = test_set.labels() {
        let wrong: Vec<usize> = (0..test_set.len()).filter(|&i| test_pred[i] != truth[i]).take(40).collect();
        let images: Vec<&[f32]> = wrong.iter().map(|&i| test_set.image(i)).collect();
        let captions: Vec<String> =
            wrong.iter().map(|&i| format!("{} (true {})", test_pred[i], truth[i])).collect();
        let path = out.join("misclassified.png");
        chart::digit_grid(&path, &images, &captions, 28, 10).map_err(failed("misclassified.png"))?;
    }

    let loss = smooth(&history.loss);
    let mut series = vec![Series { name: "training (steps, smoothed)", points: &loss, color: RED }];
    if !history.validation_loss.is_empty() {
        let points = &history.validation_loss;
        series.push(Series { name: "validation (end of epoch)", points, color: GREEN });
    }
    let loss_chart = LineChart {
        title: "Loss (cross-entropy + L2), log scale",
        x_label: "step",
        y_label: "loss",
        y_scale: Scale::Log,
        series: &series,
        legend: Legend::UpperRight,
    };
    loss_chart.save_png(&out.join("loss.png"), (900, 500)).map_err(failed("loss.png"))?;

    let mut series = vec![Series { name: "training", points: &history.train_accuracy, color: RED }];
    if !history.test_accuracy.is_empty() {
        series.push(Series { name: "test", points: &history.test_accuracy, color: BLUE });
    }
    if !history.validation_accuracy.is_empty() {
        series.push(Series { name: "validation", points: &history.validation_accuracy, color: GREEN });
    }
    let accuracy_chart = LineChart {
        title: "Accuracy by epoch",
        x_label: "epoch",
        y_label: "accuracy (%)",
        y_scale: Scale::Linear,
        series: &series,
        legend: Legend::UpperRight,
    };
    accuracy_chart.save_png(&out.join("accuracy.png"), (900, 500)).map_err(failed("accuracy.png"))?;

    // A reliability diagram: each bin's accuracy against its mean confidence, the diagonal
    // where they are equal.
    if reliability.is_empty() {
        return Ok(());
    }
    let diagonal = [(0.0, 0.0), (100.0, 100.0)];
    let curves: Vec<Vec<(f64, f64)>> = reliability
        .iter()
        .map(|(_, c)| {
            let bins = c.bins().iter().filter_map(|b| Some((100.0 * b.confidence?, 100.0 * b.accuracy?)));
            bins.collect()
        })
        .collect();
    let mut series =
        vec![Series { name: "calibrated (accuracy = confidence)", points: &diagonal, color: GREEN }];
    for ((name, _), (points, color)) in reliability.iter().zip(curves.iter().zip([RED, BLUE])) {
        series.push(Series { name, points, color });
    }
    let reliability_chart = LineChart {
        title: "Reliability of the test probabilities (15 bins of confidence)",
        x_label: "mean confidence in the bin (%)",
        y_label: "accuracy in the bin (%)",
        y_scale: Scale::Linear,
        series: &series,
        legend: Legend::LowerRight,
    };
    reliability_chart.save_png(&out.join("reliability.png"), (700, 600)).map_err(failed("reliability.png"))
}

/// The error of drawing `file` into `out`, from the chart's.
fn failed(out: &Path, file: &str) -> impl FnOnce(Box<dyn std::error::Error>) -> feedforward::Error + use<> {
    let path = out.join(file);
    move |e| feedforward::Error::Io { path, source: std::io::Error::other(e.to_string()) }
}

/// Makes the folder `out`, where `file` will be drawn.
fn create_folder(out: &Path, file: &str) -> feedforward::Result<()> {
    // create_dir_all through a file says only "Not a directory": name the culprit.
    if let Some(culprit) = out.ancestors().find(|a| a.is_file()) {
        let message = format!("{} is a file, not a folder", culprit.display());
        return Err(failed(out, file)(message.into()));
    }
    std::fs::create_dir_all(out).map_err(|e| feedforward::Error::Io { path: out.to_path_buf(), source: e })
}

/// Writes `lr_range.png` into `out`: the range test's losses against the rate (its logarithm),
/// with the steepest fall marked.
pub fn range_test(out: &Path, report: &RangeTestReport) -> feedforward::Result<()> {
    create_folder(out, "lr_range.png")?;
    let against_rate =
        |values: &[f64]| report.rates.iter().zip(values).map(|(r, &v)| (r.log10(), v)).collect::<Vec<_>>();
    let (losses, smoothed) = (against_rate(&report.losses), against_rate(&report.smoothed));
    let mut series = vec![
        Series { name: "each step's loss", points: &losses, color: BLUE },
        Series { name: "smoothed", points: &smoothed, color: RED },
    ];
    let positive = report.losses.iter().chain(&report.smoothed).filter(|&&v| v > 0.0);
    let (low, high) = positive.fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let steepest: Vec<(f64, f64)> = match report.steepest() {
        Some(rate) if low < high => vec![(rate.log10(), low), (rate.log10(), high)],
        _ => Vec::new(),
    };
    if !steepest.is_empty() {
        series.push(Series { name: "steepest fall", points: &steepest, color: GREEN });
    }
    let chart = LineChart {
        title: "Learning-rate range test, log scale",
        x_label: "log10 of the learning rate",
        y_label: "loss",
        y_scale: Scale::Log,
        series: &series,
        legend: Legend::UpperRight,
    };
    chart.save_png(&out.join("lr_range.png"), (900, 500)).map_err(failed(out, "lr_range.png"))
}

/// Averages consecutive points into at most 400 so minibatch noise does not hide the trend.
fn smooth(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let chunk = points.len().div_ceil(400).max(1);
    points
        .chunks(chunk)
        .map(|c| {
            let n = c.len() as f64;
            (c[c.len() - 1].0, c.iter().map(|p| p.1).sum::<f64>() / n)
        })
        .collect()
}

/// A digit as text, two characters per pixel, darker shades for higher values.
pub fn ascii_digit(values: &[f32], side: usize) -> String {
    const SHADES: [&str; 5] = ["  ", "..", "::", "##", "@@"];
    let mut out = String::new();
    for row in values.chunks(side.max(1)) {
        for &v in row {
            out.push_str(SHADES[((v.clamp(0.0, 1.0) * 4.0).round()) as usize]);
        }
        out.push('\n');
    }
    out
}
