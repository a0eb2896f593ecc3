//! The run's pictures: sample and misclassified digits, loss and accuracy curves, and digits
//! drawn in the terminal.

use crate::chart::{self, BLUE, GREEN, LineChart, RED, Scale, Series};
use feedforward::data::Dataset;
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

/// Writes `samples.png`, `misclassified.png`, `loss.png` and `accuracy.png` into `out`.
pub fn draw(
    out: &Path,
    train_set: &Dataset,
    test_set: &Dataset,
    test_pred: &[usize],
    history: &History,
    rng: &mut StdRng,
) -> feedforward::Result<()> {
    let failed = |file: &str| {
        let path = out.join(file);
        move |e: Box<dyn std::error::Error>| feedforward::Error::Io {
            path,
            source: std::io::Error::other(e.to_string()),
        }
    };
    // create_dir_all through a file says only "Not a directory": name the culprit.
    if let Some(file) = out.ancestors().find(|a| a.is_file()) {
        let message = format!("{} is a file, not a folder", file.display());
        return Err(failed("samples.png")(message.into()));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| feedforward::Error::Io { path: out.to_path_buf(), source: e })?;
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
    };
    accuracy_chart.save_png(&out.join("accuracy.png"), (900, 500)).map_err(failed("accuracy.png"))
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
