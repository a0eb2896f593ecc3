//! What `tabular` learns from its target columns, and how it scores the result on the test
//! rows:
//!
//! | task | targets | outputs | loss | scores |
//! |---|---|---|---|---|
//! | classification | one column of classes (words or numbers) | a logit per class | softmax cross-entropy, class weights | accuracy; recall, precision, F1 per class; macro F1; ROC AUC and average precision per class; expected calibration error; with `--calibrate`, the prediction sets: rows whose set holds their class, mean size |
//! | regression | numeric columns | a value per column, in its own units | mean squared error | RMSE, MAE and R² per column; with `--calibrate`, the conformal interval `ŷ ± m`: rows it holds |
//! | regression with `--gaussian` | numeric columns | a mean and a variance per column, in its units | Gaussian negative log-likelihood (`GaussianNll`) | the means' RMSE, MAE and R²; per column the log-likelihood and the 80% interval: rows it holds, mean width |
//! | regression with `--quantiles` | numeric columns | each quantile of each column, sorted, in its units | pinball (`Quantile`) | per quantile the share of rows below it and the pinball loss; the outer quantiles' interval: rows it holds, mean width |
//! | multi-label | 0/1 columns | a logit per column | binary cross-entropy | precision, recall, F1, ROC AUC, average precision per label; micro and macro F1; exact match; expected calibration error of the labels' probabilities |

use clap::ValueEnum;
use feedforward::conformal::{adaptive_prediction_sets, prediction_sets, prediction_sets_per_class};
use feedforward::data::table::Table;
use feedforward::metrics::{
    BinaryScores, Calibration, ConfusionMatrix, MultiLabelMetrics, RegressionMetrics, one_vs_rest_scores,
    weighted_one_vs_rest_scores,
};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};
use std::fmt::Write;
use std::path::Path;

/// `--task`: what the target columns are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaskKind {
    /// One column of classes: each row belongs to one.
    Classification,
    /// Numeric columns to predict.
    Regression,
    /// 0/1 columns, one per label: each row may have any number of them.
    MultiLabel,
}

/// The targets of every row, as the task uses them.
pub enum Task {
    /// Each row's class index; `classes` names them (sorted).
    Classification { labels: Vec<usize>, classes: Vec<String> },
    /// `columns × rows` values.
    Regression { values: DMatrix<f32>, columns: Vec<String> },
    /// `labels × rows` 0/1 targets.
    MultiLabel { targets: DMatrix<f32>, labels: Vec<String> },
}

impl Task {
    /// The target columns of `table` (read from `path`) as `kind` says: one column for a
    /// classification, 0s and 1s for a multi-label task. A gap, or a cell that is not a number
    /// (or not 0 or 1), is an error naming its line.
    pub fn read(
        table: &Table,
        path: &Path,
        kind: TaskKind,
        columns: &[&str],
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let names = || columns.iter().map(|c| c.to_string()).collect();
        Ok(match kind {
            TaskKind::Classification => {
                let [column] = columns else {
                    let hint = "(--task regression or multi-label for several)";
                    return Err(format!(
                        "--target: a classification has one target column, not {columns:?} {hint}"
                    )
                    .into());
                };
                let labels = table.labels(column)?;
                Task::Classification { labels: labels.indices, classes: labels.classes }
            }
            TaskKind::Regression => Task::Regression { values: table.matrix(columns)?, columns: names() },
            TaskKind::MultiLabel => {
                let targets: DMatrix<f32> = table.matrix(columns)?;
                // Row k of the table is line k + 2 of its file (after the header).
                if let Some((k, &v)) = targets.iter().enumerate().find(|(_, v)| **v != 0.0 && **v != 1.0) {
                    let (column, row) = (columns[k % columns.len()], k / columns.len());
                    let line = row + 2;
                    return Err(format!(
                        "{}:{line}: column {column:?}: {v} is not 0 or 1 (a label)",
                        path.display()
                    )
                    .into());
                }
                Task::MultiLabel { targets, labels: names() }
            }
        })
    }

    /// The same targets read from `part`, rows of the table this task was read from: the
    /// classes keep their numbering, whichever of them `part` lacks (the whole table's cells
    /// were checked by [`Task::read`]).
    pub fn of_part(&self, part: &Table, columns: &[&str]) -> Result<Self, Box<dyn std::error::Error>> {
        Ok(match self {
            Task::Classification { classes, .. } => {
                let labels = part.labels_with(columns[0], classes)?;
                Task::Classification { labels: labels.indices, classes: labels.classes }
            }
            Task::Regression { columns: names, .. } => {
                Task::Regression { values: part.matrix(columns)?, columns: names.clone() }
            }
            Task::MultiLabel { labels, .. } => {
                Task::MultiLabel { targets: part.matrix(columns)?, labels: labels.clone() }
            }
        })
    }

    /// A line naming what the network learns.
    pub fn describe(&self) -> String {
        match self {
            Task::Classification { classes, .. } => {
                let names: Vec<String> =
                    classes.iter().enumerate().map(|(i, n)| format!("{i} = {n}")).collect();
                format!("classes: {}", names.join(", "))
            }
            Task::Regression { columns, .. } => format!("regression targets: {}", columns.join(", ")),
            Task::MultiLabel { labels, .. } => format!("labels: {}", labels.join(", ")),
        }
    }
}

/// What a run reports on its test rows.
pub struct Scores {
    /// The printed table and summary.
    pub report: String,
    /// The scores that sum a run up, for a line per fold and their mean over folds.
    pub headline: Vec<Headline>,
    /// Entries of the model file's metadata: what the outputs are.
    pub metadata: Vec<(&'static str, String)>,
    /// Fields of the `--metrics` JSON.
    pub json: Map<String, Value>,
}

/// One of the scores that sum a run up.
#[derive(Clone, Copy, Debug)]
pub struct Headline {
    /// As printed: `"macro F1"`.
    pub name: &'static str,
    /// Its field in the `--metrics` JSON: `"test_macro_f1"`.
    pub key: &'static str,
    pub value: f64,
}

/// The bins of the expected calibration error (Guo et al.'s 15).
pub const ECE_BINS: usize = 15;

/// Conformal prediction sets (`--calibrate`): a row's set holds the classes of a probability of
/// at least their threshold, so that the sets hold the class of `coverage` of rows, or of each
/// class's rows.
#[derive(Clone, Debug)]
pub struct Sets {
    pub thresholds: Thresholds,
    pub coverage: f64,
}

/// `--set-thresholds`: what the sets' coverage holds for.
#[derive(Clone, Debug)]
pub enum Thresholds {
    /// One for every class (`conformal::class_threshold`): the coverage over all rows.
    One(f64),
    /// One per class (`conformal::class_thresholds`): the coverage within each class.
    PerClass(Vec<f64>),
    /// One on each row's ranked cumulative probability (`conformal::adaptive_threshold`): sets
    /// that grow with the network's doubt; each row's draw comes from a generator seeded by
    /// `seed`, so the same rows get the same sets.
    Adaptive { threshold: f64, seed: u64 },
}

impl Thresholds {
    /// The prediction sets of `probabilities` (`classes × samples`).
    pub fn sets(&self, probabilities: &DMatrix<f32>) -> feedforward::Result<Vec<Vec<usize>>> {
        match self {
            Thresholds::One(threshold) => prediction_sets(probabilities, *threshold),
            Thresholds::PerClass(thresholds) => prediction_sets_per_class(probabilities, thresholds),
            Thresholds::Adaptive { threshold, seed } => {
                adaptive_prediction_sets(probabilities, *threshold, &mut StdRng::seed_from_u64(*seed))
            }
        }
    }

    /// As printed: `probability ≥ 0.4642`, or each class's after its name.
    pub fn describe(&self, classes: &[String]) -> String {
        match self {
            Thresholds::One(threshold) => format!("probability ≥ {threshold:.4}"),
            Thresholds::PerClass(thresholds) => {
                let each: Vec<String> =
                    classes.iter().zip(thresholds).map(|(c, t)| format!("{c} ≥ {t:.4}")).collect();
                format!("probability {}", each.join(", "))
            }
            Thresholds::Adaptive { threshold, .. } => {
                format!("ranked cumulative probability ≤ {threshold:.4}, adaptive")
            }
        }
    }

    /// In the `--metrics` JSON and the model's metadata: a number, or a list per class.
    pub fn json(&self) -> Value {
        match self {
            Thresholds::One(threshold) | Thresholds::Adaptive { threshold, .. } => json!(threshold),
            Thresholds::PerClass(thresholds) => json!(thresholds),
        }
    }

    /// As `--set-thresholds` names it.
    pub fn method(&self) -> &'static str {
        match self {
            Thresholds::One(_) => "one",
            Thresholds::PerClass(_) => "per-class",
            Thresholds::Adaptive { .. } => "adaptive",
        }
    }

    /// Its key in the model's metadata.
    pub fn key(&self) -> &'static str {
        match self {
            Thresholds::One(_) => "set_threshold",
            Thresholds::PerClass(_) => "set_thresholds",
            Thresholds::Adaptive { .. } => "adaptive_set_threshold",
        }
    }
}

/// A classifier's test scores: `probabilities` (`classes × samples`) against the `truth`'s
/// class indices, `classes` their names, each sample weighted by its `weights` if given. A
/// sample is predicted its most probable class. With `sets`, also how often the prediction
/// sets hold the class and their mean size.
pub fn classification(
    probabilities: &DMatrix<f32>,
    truth: &[usize],
    classes: &[String],
    weights: Option<&[f64]>,
    sets: Option<&Sets>,
) -> Result<Scores, Box<dyn std::error::Error>> {
    let predicted: Vec<usize> = probabilities.column_iter().map(|p| p.argmax().0).collect();
    let (m, ranked) = match weights {
        Some(w) => (
            ConfusionMatrix::weighted(classes.len(), &predicted, truth, w)?,
            weighted_one_vs_rest_scores(probabilities, truth, w)?,
        ),
        None => (
            ConfusionMatrix::new(classes.len(), &predicted, truth)?,
            one_vs_rest_scores(probabilities, truth)?,
        ),
    };
    let m = m.with_class_names(classes.to_vec())?;
    let macro_f1 = m.macro_f1();
    let auc: Vec<Option<f64>> = ranked.iter().map(BinaryScores::roc_auc).collect();
    let precision: Vec<Option<f64>> = ranked.iter().map(BinaryScores::average_precision).collect();
    let each = |values: &[Option<f64>]| {
        let named: Vec<String> =
            classes.iter().zip(values).map(|(name, v)| format!("{name} {}", score(*v))).collect();
        named.join(", ")
    };
    let calibration = match weights {
        Some(w) => Calibration::weighted(probabilities, truth, w, ECE_BINS)?,
        None => Calibration::new(probabilities, truth, ECE_BINS)?,
    };
    let ece = calibration.expected_calibration_error();
    let mut report = format!(
        "{}:\n{m}accuracy {:.2}%, macro F1 {}\neach class against the rest: ROC AUC {}; average precision {}\n\
         calibration: mean confidence {:.2}% against accuracy {:.2}%, ECE {ece:.4} ({ECE_BINS} bins)\n",
        heading(truth.len(), weights),
        100.0 * m.accuracy(),
        score(macro_f1),
        each(&auc),
        each(&precision),
        100.0 * calibration.confidence(),
        100.0 * calibration.accuracy(),
    );
    let mut json = json!({
        "test_accuracy": m.accuracy(),
        "test_recall": m.recall(),
        "test_f1": m.f1(),
        "test_macro_f1": macro_f1,
        "test_auc": auc,
        "test_macro_auc": mean(&auc),
        "test_average_precision": precision,
        "test_macro_average_precision": mean(&precision),
        "test_ece": ece,
    });
    let mut headline = vec![
        ("accuracy", "test_accuracy", Some(m.accuracy())),
        ("macro F1", "test_macro_f1", macro_f1),
        ("macro ROC AUC", "test_macro_auc", mean(&auc)),
        ("macro average precision", "test_macro_average_precision", mean(&precision)),
        ("ECE", "test_ece", Some(ece)),
    ];
    let mut metadata = vec![("classes", serde_json::to_string(classes)?)];
    if let Some(Sets { thresholds, coverage }) = sets {
        let sets = thresholds.sets(probabilities)?;
        let held = weighted_mean(truth.len(), weights, &|j| f64::from(u8::from(sets[j].contains(&truth[j]))));
        let size = weighted_mean(truth.len(), weights, &|j| sets[j].len() as f64);
        let alone = weighted_mean(truth.len(), weights, &|j| f64::from(u8::from(sets[j].len() == 1)));
        let empty = weighted_mean(truth.len(), weights, &|j| f64::from(u8::from(sets[j].is_empty())));
        // The guarantee is over rows: a rare or hard class's rows may be held less often.
        let per_class: Vec<Option<f64>> = (0..classes.len())
            .map(|k| {
                let weight = |j: usize| if truth[j] == k { weights.map_or(1.0, |w| w[j]) } else { 0.0 };
                let total: f64 = (0..truth.len()).map(weight).sum();
                let held: f64 = (0..truth.len()).filter(|&j| sets[j].contains(&k)).map(weight).sum();
                (total > 0.0).then(|| held / total)
            })
            .collect();
        let _ = writeln!(
            report,
            "prediction sets ({}, for {:.0}%): {:.2}% hold the class ({}); mean size {size:.3}, {:.2}% of one \
             class, {:.2}% empty",
            thresholds.describe(classes),
            100.0 * coverage,
            100.0 * held,
            each(&per_class),
            100.0 * alone,
            100.0 * empty,
        );
        let fields = object(json!({
            "test_set_coverage": held,
            "test_set_coverage_per_class": per_class,
            "test_mean_set_size": size,
            "test_single_class_sets": alone,
            "test_empty_sets": empty,
        }));
        json.as_object_mut().expect("json! of braces is an object").extend(fields);
        headline.push(("set coverage", "test_set_coverage", Some(held)));
        headline.push(("mean set size", "test_mean_set_size", Some(size)));
        metadata.push((thresholds.key(), thresholds.json().to_string()));
        metadata.push(("set_coverage", coverage.to_string()));
    }
    Ok(Scores { report, headline: defined(&headline), metadata, json: object(json) })
}

/// What the scores are of: the test set's size, and whether its samples are weighted.
fn heading(samples: usize, weights: Option<&[f64]>) -> String {
    match weights {
        Some(w) => {
            format!("test set, {samples} samples weighted (total weight {})", significant(w.iter().sum()))
        }
        None => format!("test set, {samples} samples"),
    }
}

/// The start of a table with a row per target or label: the [`heading`], then a header of
/// `first` (right-aligned to the longest of `names`) and each of `columns` (right-aligned to its
/// width). Returns the text and the width of the names' column.
fn table_header(
    samples: usize,
    weights: Option<&[f64]>,
    first: &str,
    names: &[String],
    columns: &[(&str, usize)],
) -> (String, usize) {
    let width = names.iter().map(String::len).max().unwrap_or(0).max(first.len());
    let mut header = format!("{}:\n{first:>width$}", heading(samples, weights));
    for (column, column_width) in columns {
        header.push_str(&format!("  {column:>column_width$}"));
    }
    header.push('\n');
    (header, width)
}

/// A score to 3 decimals, or `-` where it is not defined.
fn score(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.3}"))
}

/// A regression's test scores: `predicted` and `truth` are `columns × samples`, in the
/// targets' own units, each sample weighted by its `weights` if given.
pub fn regression(
    predicted: &DMatrix<f32>,
    truth: &DMatrix<f32>,
    columns: &[String],
    weights: Option<&[f64]>,
    margins: Option<&[f64]>,
) -> Result<Scores, Box<dyn std::error::Error>> {
    let metrics = |p: &DMatrix<f32>, t: &DMatrix<f32>| match weights {
        Some(w) => RegressionMetrics::weighted(p, t, w),
        None => RegressionMetrics::new(p, t),
    };
    let columns_shown = [("RMSE", 12), ("MAE", 12), ("R²", 8)];
    let (mut report, width) = table_header(truth.ncols(), weights, "target", columns, &columns_shown);
    let mut per_column = Vec::new();
    for (k, name) in columns.iter().enumerate() {
        let row = |m: &DMatrix<f32>| m.rows(k, 1).into_owned();
        let m = metrics(&row(predicted), &row(truth))?;
        let r2 = m.r2.map_or("-".to_string(), |r2| format!("{r2:.4}"));
        writeln!(report, "{name:>width$}  {:>12}  {:>12}  {r2:>8}", significant(m.rmse), significant(m.mae))?;
        per_column.push(json!({ "target": name, "rmse": m.rmse, "mae": m.mae, "r2": m.r2 }));
    }
    let all = metrics(predicted, truth)?;
    if columns.len() > 1 {
        writeln!(report, "mean R² {}", all.r2.map_or("-".into(), |r2| format!("{r2:.4}")))?;
    }
    let mut json = json!({
        "test_mse": all.mse,
        "test_mae": all.mae,
        "test_r2": all.r2,
    });
    let mut headline = vec![("mean R²", "test_r2", all.r2), ("MAE", "test_mae", Some(all.mae))];
    let mut metadata = vec![("targets", serde_json::to_string(columns)?)];
    if let Some(margins) = margins {
        // The conformal intervals `ŷ ± m` (`--calibrate`): how many test rows each holds.
        let mut holds = Vec::new();
        for (k, (name, &m)) in columns.iter().zip(margins).enumerate() {
            let inside =
                |j: usize| f64::from(u8::from((truth[(k, j)] - predicted[(k, j)]).abs() as f64 <= m));
            let held = weighted_mean(truth.ncols(), weights, &inside);
            writeln!(
                report,
                "{name}: the conformal {:.0}% interval ŷ ± {} holds {:.2}% of the rows",
                100.0 * INTERVAL_COVERAGE,
                significant(m),
                100.0 * held
            )?;
            per_column[k]["interval_margin"] = m.into();
            per_column[k]["interval_holds"] = held.into();
            holds.push(held);
        }
        let held = holds.iter().sum::<f64>() / holds.len() as f64;
        json["test_interval_holds"] = held.into();
        headline.push(("interval holds", "test_interval_holds", Some(held)));
        metadata.push(("interval_margins", serde_json::to_string(margins)?));
        metadata.push(("interval_coverage", INTERVAL_COVERAGE.to_string()));
    }
    json["test_per_target"] = per_column.into();
    Ok(Scores { report, headline: defined(&headline), metadata, json: object(json) })
}

/// A quantile regression's test scores: `predicted` is `(columns · quantiles) × samples`, the
/// quantiles of each target column in turn (increasing), `truth` `columns × samples`, both in
/// the targets' own units, each sample weighted by its `weights` if given. Per column and
/// quantile `τ`: the share of the test rows whose value falls below the prediction (`τ` if the
/// quantile is right) and the pinball loss; then how many rows the interval between the lowest
/// and the highest quantile holds, and its mean width.
pub fn quantile_regression(
    predicted: &DMatrix<f32>,
    truth: &DMatrix<f32>,
    columns: &[String],
    quantiles: &[f64],
    weights: Option<&[f64]>,
) -> Result<Scores, Box<dyn std::error::Error>> {
    let samples = truth.ncols();
    let mean = |f: &dyn Fn(usize) -> f64| weighted_mean(samples, weights, f);
    let names: Vec<String> =
        columns.iter().flat_map(|c| quantiles.iter().map(move |q| format!("{c} τ {q}"))).collect();
    let (mut report, width) =
        table_header(samples, weights, "target, quantile", &names, &[("below", 7), ("pinball", 12)]);
    let (q, mut per_column, mut pinballs, mut coverages) =
        (quantiles.len(), Vec::new(), Vec::new(), Vec::new());
    let mut lines = Vec::new();
    for (c, name) in columns.iter().enumerate() {
        let value = |k: usize, j: usize| f64::from(predicted[(c * q + k, j)]);
        let t = |j: usize| f64::from(truth[(c, j)]);
        let mut rows = Vec::new();
        for (k, &tau) in quantiles.iter().enumerate() {
            let below = mean(&|j| f64::from(u8::from(t(j) <= value(k, j))));
            // The pinball loss of `Quantile`: τ·r above the prediction, (τ − 1)·r below.
            let pinball = mean(&|j| {
                let r = t(j) - value(k, j);
                if r >= 0.0 { tau * r } else { (tau - 1.0) * r }
            });
            writeln!(
                report,
                "{:>width$}  {:>6.1}%  {:>12}",
                names[c * q + k],
                100.0 * below,
                significant(pinball)
            )?;
            pinballs.push(pinball);
            rows.push(json!({ "quantile": tau, "below": below, "pinball": pinball }));
        }
        let (low, high) = (quantiles[0], quantiles[q - 1]);
        let inside = mean(&|j| f64::from(u8::from(value(0, j) <= t(j) && t(j) <= value(q - 1, j))));
        let mean_width = mean(&|j| value(q - 1, j) - value(0, j));
        lines.push(format!(
            "{name}: the {low}–{high} interval holds {:.1}% of the test rows ({:.0}% if right), mean width {}",
            100.0 * inside,
            100.0 * (high - low),
            significant(mean_width)
        ));
        coverages.push(inside);
        per_column.push(json!({
            "target": name,
            "quantiles": rows,
            "interval": { "low": low, "high": high, "holds": inside, "mean_width": mean_width },
        }));
    }
    for line in lines {
        writeln!(report, "{line}")?;
    }
    let pinball = pinballs.iter().sum::<f64>() / pinballs.len() as f64;
    let holds = coverages.iter().sum::<f64>() / coverages.len() as f64;
    let json =
        json!({ "test_pinball": pinball, "test_interval_holds": holds, "test_per_target": per_column });
    let headline =
        [("pinball", "test_pinball", Some(pinball)), ("interval holds", "test_interval_holds", Some(holds))];
    let metadata =
        vec![("targets", serde_json::to_string(columns)?), ("quantiles", serde_json::to_string(quantiles)?)];
    Ok(Scores { report, headline: defined(&headline), metadata, json: object(json) })
}

/// `Φ⁻¹(0.9)`: a normal law holds 80% of its values within this many standard deviations of
/// its mean.
pub const Z_80: f64 = 1.281_551_565_545;

/// The coverage of a regression's 80% intervals: `--gaussian`'s `μ ± Z_80·σ`, and with
/// `--calibrate` the conformal ones (`μ ± k·σ` of `--gaussian`, `ŷ ± m` of the mean alone).
pub const INTERVAL_COVERAGE: f64 = 0.8;

/// A regression's test scores when it predicts a mean and a variance per target
/// (`--gaussian`): `predicted` is `2·columns × samples`, each column's mean then each column's
/// variance, in the targets' units, `truth` `columns × samples`, each sample weighted by its
/// `weights` if given. The means' scores (as [`regression`]'s), then per column the mean
/// negative log-likelihood of the test values under `N(μ, v)` (`ln 2π` included, as other
/// models report it) and the share of them in the central 80% interval `μ ± 1.2816·√v` (80%
/// if the variances are right), with its mean width.
pub fn gaussian_regression(
    predicted: &DMatrix<f32>,
    truth: &DMatrix<f32>,
    columns: &[String],
    weights: Option<&[f64]>,
) -> Result<Scores, Box<dyn std::error::Error>> {
    let (r, samples) = (columns.len(), truth.ncols());
    let mut scores = regression(&predicted.rows(0, r).into_owned(), truth, columns, weights, None)?;
    let mean = |f: &dyn Fn(usize) -> f64| weighted_mean(samples, weights, f);
    let (mut likelihoods, mut coverages) = (Vec::new(), Vec::new());
    let per_target =
        scores.json.get_mut("test_per_target").and_then(Value::as_array_mut).ok_or("no per-target scores")?;
    for (c, name) in columns.iter().enumerate() {
        let (mu, variance, t) = (
            |j: usize| f64::from(predicted[(c, j)]),
            |j: usize| f64::from(predicted[(r + c, j)]),
            |j: usize| f64::from(truth[(c, j)]),
        );
        let nll = mean(&|j| {
            0.5 * ((std::f64::consts::TAU * variance(j)).ln() + (t(j) - mu(j)).powi(2) / variance(j))
        });
        let inside = mean(&|j| f64::from(u8::from((t(j) - mu(j)).abs() <= Z_80 * variance(j).sqrt())));
        let width = mean(&|j| 2.0 * Z_80 * variance(j).sqrt());
        writeln!(
            scores.report,
            "{name}: negative log-likelihood {} per row; the 80% interval μ ± 1.28σ holds {:.1}% of the test rows, mean width {}",
            significant(nll),
            100.0 * inside,
            significant(width)
        )?;
        if let Some(entry) = per_target[c].as_object_mut() {
            entry.insert("nll".into(), nll.into());
            entry.insert("interval".into(), json!({ "coverage": 0.8, "holds": inside, "mean_width": width }));
        }
        likelihoods.push(nll);
        coverages.push(inside);
    }
    let nll = likelihoods.iter().sum::<f64>() / r as f64;
    let holds = coverages.iter().sum::<f64>() / r as f64;
    scores.json.insert("test_nll".into(), nll.into());
    scores.json.insert("test_interval_holds".into(), holds.into());
    scores.headline.push(Headline { name: "NLL", key: "test_nll", value: nll });
    scores.headline.push(Headline { name: "interval holds", key: "test_interval_holds", value: holds });
    scores.metadata.push(("outputs", "each target's mean, then each target's variance".to_string()));
    Ok(scores)
}

/// The mean of `f` over the test rows `0..samples`, each weighted by its `weights` if given.
fn weighted_mean(samples: usize, weights: Option<&[f64]>, f: &dyn Fn(usize) -> f64) -> f64 {
    let weight = |j: usize| weights.map_or(1.0, |w| w[j]);
    let total: f64 = (0..samples).map(weight).sum();
    (0..samples).map(|j| weight(j) * f(j)).sum::<f64>() / total
}

/// A multi-label classifier's test scores: `probabilities` (decided at 0.5) and `targets` are
/// `labels × samples`, each sample weighted by its `weights` if given.
pub fn multi_label(
    probabilities: &DMatrix<f32>,
    targets: &DMatrix<f32>,
    labels: &[String],
    weights: Option<&[f64]>,
) -> Result<Scores, Box<dyn std::error::Error>> {
    let m = match weights {
        Some(w) => MultiLabelMetrics::weighted(probabilities, targets, 0.5, w)?,
        None => MultiLabelMetrics::new(probabilities, targets, 0.5)?,
    };
    let columns = [("precision", 9), ("recall", 6), ("F1", 5), ("ROC AUC", 7), ("AP", 5)];
    let (mut report, width) = table_header(targets.ncols(), weights, "label", labels, &columns);
    let ranking = m.auc().iter().zip(m.average_precision());
    for ((name, label), (auc, ap)) in labels.iter().zip(m.per_label()).zip(ranking) {
        let (p, r, f) = (label.precision()[1], label.recall()[1], label.f1()[1]);
        let (auc, ap) = (score(*auc), score(*ap));
        writeln!(
            report,
            "{name:>width$}  {:>9}  {:>6}  {:>5}  {auc:>7}  {ap:>5}",
            score(p),
            score(r),
            score(f)
        )?;
    }
    // Every label's probability one prediction of its 0/1, binned by the probability.
    let calibration = match weights {
        Some(w) => Calibration::binary_weighted(probabilities, targets, w, ECE_BINS)?,
        None => Calibration::binary(probabilities, targets, ECE_BINS)?,
    };
    let ece = calibration.expected_calibration_error();
    writeln!(
        report,
        "micro F1 {}, macro F1 {}, macro ROC AUC {}, macro average precision {}, every label right on {:.2}% of the samples\n\
         calibration of the labels' probabilities: ECE {ece:.4} ({ECE_BINS} bins)",
        score(m.micro_f1()),
        score(m.macro_f1()),
        score(m.macro_auc()),
        score(m.macro_average_precision()),
        100.0 * m.subset_accuracy()
    )?;
    let json = json!({
        "test_f1": m.f1(),
        "test_micro_f1": m.micro_f1(),
        "test_macro_f1": m.macro_f1(),
        "test_subset_accuracy": m.subset_accuracy(),
        "test_auc": m.auc(),
        "test_macro_auc": m.macro_auc(),
        "test_average_precision": m.average_precision(),
        "test_macro_average_precision": m.macro_average_precision(),
        "test_ece": ece,
    });
    let headline = [
        ("micro F1", "test_micro_f1", m.micro_f1()),
        ("macro F1", "test_macro_f1", m.macro_f1()),
        ("macro ROC AUC", "test_macro_auc", m.macro_auc()),
        ("macro average precision", "test_macro_average_precision", m.macro_average_precision()),
        ("exact match", "test_subset_accuracy", Some(m.subset_accuracy())),
        ("ECE", "test_ece", Some(ece)),
    ];
    let metadata = vec![("labels", serde_json::to_string(labels)?)];
    Ok(Scores { report, headline: defined(&headline), metadata, json: object(json) })
}

/// `v` to 4 significant digits, without an exponent: `25019`, `126.9`, `0.001234`.
fn significant(v: f64) -> String {
    let digits = if v == 0.0 || !v.is_finite() { 0.0 } else { v.abs().log10().floor() };
    format!("{v:.*}", (3.0 - digits).max(0.0) as usize)
}

/// The scores of `named` (name, JSON key, value) that are defined.
fn defined(named: &[(&'static str, &'static str, Option<f64>)]) -> Vec<Headline> {
    named.iter().filter_map(|&(name, key, value)| Some(Headline { name, key, value: value? })).collect()
}

/// The mean of the defined ones of `values`, if any is.
fn mean(values: &[Option<f64>]) -> Option<f64> {
    let defined: Vec<f64> = values.iter().flatten().copied().collect();
    (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64)
}

/// The fields of a JSON object built by `json!`.
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("json! of braces is an object"),
    }
}
