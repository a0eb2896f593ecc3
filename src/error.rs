//! The crate's one error type.
//!
//! Every fallible public function returns [`Result<T>`](crate::Result). Each variant names what was
//! wrong and, where it helps, what to do about it; the README has a table of them.

use std::path::PathBuf;

/// Everything that can go wrong in `feedforward`, as a value rather than a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A matrix, vector or label slice had the wrong shape.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// Which argument or tensor was wrong (e.g. `"network input"`).
        what: String,
        /// The shape that was required, e.g. `"784 rows"`.
        expected: String,
        /// The shape that was given.
        got: String,
    },

    /// A batch with no samples: there is no mean loss of nothing.
    #[error("empty batch: {what} has no samples")]
    EmptyBatch {
        /// Which input was empty.
        what: &'static str,
    },

    /// A per-feature statistic that cannot standardize: a NaN mean, a standard deviation of 0.
    #[error("feature {feature}: {what} is {}: it {requirement}", readable(*value))]
    InvalidFeatureStatistic {
        /// The feature (row) it belongs to.
        feature: usize,
        /// Which statistic, e.g. `"standard deviation"`.
        what: &'static str,
        /// The rejected value.
        value: f64,
        /// What it must satisfy.
        requirement: &'static str,
    },

    /// A class label that the network's output cannot represent.
    #[error(
        "label {label} at sample {index} is out of range: the network has {classes} classes (0..{classes})"
    )]
    LabelOutOfRange {
        /// Position of the sample in its batch or data set.
        index: usize,
        /// The offending label.
        label: usize,
        /// Number of output classes.
        classes: usize,
    },

    /// A NaN or ±inf: in an input sample (`sample` names its column), or produced by training
    /// (`sample` is `None`). Nothing was changed: a training step that fails leaves the
    /// parameters and the step count as they were before it.
    #[error("{}", non_finite_message(*step, what, *value, *sample))]
    NonFinite {
        /// 1-based number of the training step that failed; `None` outside training.
        step: Option<usize>,
        /// What was non-finite: `"network input"`, `"loss"` or the name of a gradient.
        what: String,
        /// The first non-finite value found.
        value: f64,
        /// The input sample (column) that holds it, when the input was at fault.
        sample: Option<usize>,
    },

    /// A target value a loss cannot take: a NaN regression target, a probability outside
    /// [0, 1].
    #[error("target at sample {sample}, row {row} is {value}: it {requirement}")]
    InvalidTarget {
        /// Position of the sample (column) in its batch or data set.
        sample: usize,
        /// Row of the entry within the sample's target.
        row: usize,
        /// The offending value.
        value: f64,
        /// What the loss requires of it.
        requirement: &'static str,
    },

    /// A sample weight of [`WeightedTargets`](crate::loss::WeightedTargets) or of a weighted
    /// metric ([`ConfusionMatrix::weighted`](crate::metrics::ConfusionMatrix::weighted), say)
    /// that is negative or not finite (`sample` names it), or weights that are all 0 (`sample`
    /// is `None`: a weighted mean of nothing).
    #[error("{}", sample_weight_message(*sample, *value))]
    InvalidSampleWeight {
        /// Position of the sample in its data set; `None` when every weight is 0.
        sample: Option<usize>,
        /// The offending weight.
        value: f64,
    },

    /// An input value a module cannot take, though finite and of the right shape: a category
    /// index of an [`Embedding`](crate::Embedding) that is not one of its row's categories.
    #[error("input at sample {sample}, row {row} is {value}: it {requirement}")]
    InvalidInput {
        /// Position of the sample (column) in its batch or data set.
        sample: usize,
        /// The input row (feature).
        row: usize,
        /// The offending value.
        value: f64,
        /// What the module requires of it.
        requirement: String,
    },

    /// A hyper-parameter outside its valid range, rejected when the object was built.
    #[error("invalid hyper-parameter {name} = {}: {requirement}", readable(*value))]
    InvalidHyperparameter {
        /// Parameter name, e.g. `"learning rate"`.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// What it must satisfy.
        requirement: &'static str,
    },

    /// Data a fit has no answer on: the logits that [`Temperature::fit`](crate::Temperature::fit)
    /// is given rank the true classes no better than chance, or separate them so that no
    /// finite temperature is best.
    #[error("cannot fit {what}: {reason}")]
    Unfittable {
        /// What was being fitted, e.g. `"a temperature"`.
        what: &'static str,
        /// Why there is no answer, and what to do.
        reason: String,
    },

    /// A data set without labels where labels are needed (e.g. Kaggle's `test.csv` for training).
    #[error("{what} has no labels")]
    NoLabels {
        /// Which data set.
        what: &'static str,
    },

    /// A data or weights file that does not exist.
    #[error("{path}: file not found. {hint}")]
    MissingFile {
        /// The path that was tried.
        path: PathBuf,
        /// How to get the file.
        hint: &'static str,
    },

    /// Any other I/O failure, with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An IDX file (the MNIST format) that is truncated, corrupt or not IDX at all.
    #[error("{path}: not a valid IDX file: {reason}")]
    Idx {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// A CSV file (a table, or Kaggle's digit-recognizer format) with a bad row or cell, or a
    /// table's features file (`data::table::Features`, feature `data`) that
    /// cannot be read.
    #[error("{path}:{line}: {reason}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number (the header is line 1).
        line: usize,
        /// What was wrong.
        reason: String,
    },

    /// An optimizer state (from a checkpoint) that does not fit the optimizer.
    #[error("optimizer state: {reason}")]
    OptimizerState {
        /// What was wrong.
        reason: String,
    },

    /// A checkpoint that cannot be written, read, or resumed by this run.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// A weights file that is unreadable or does not fit the network.
    #[error("weights {path}: {reason}")]
    Weights {
        /// The file (or `"<memory>"`).
        path: PathBuf,
        /// What was wrong, naming the tensor where there is one.
        reason: String,
    },
}

fn non_finite_message(step: Option<usize>, what: &str, value: f64, sample: Option<usize>) -> String {
    let at_step = step.map_or(String::new(), |s| format!(" at step {s}"));
    match (sample, step) {
        (Some(j), _) => format!(
            "non-finite input{at_step}: sample {j} (column {j}) of the {what} holds {value}; fix or drop that sample (nothing was changed)"
        ),
        (None, Some(_)) => format!(
            "training diverged{at_step}: {what} is not finite ({value}); parameters are left as they were before this step; try a smaller learning rate"
        ),
        (None, None) => format!("{what} is not finite ({value})"),
    }
}

fn sample_weight_message(sample: Option<usize>, value: f64) -> String {
    match sample {
        Some(i) => {
            format!("sample weight of sample {i} is {}: it must be finite and at least 0", readable(value))
        }
        None => "every sample weight is 0: there is nothing to average over".to_string(),
    }
}

/// A number as a person writes it: `1e-50` rather than fifty decimal places.
fn readable(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && magnitude.is_finite() && !(1e-4..1e16).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// `n` and `noun`, in the plural unless `n` is 1: `"1 row"`, `"3 rows"`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::ShapeMismatch`]: `what` was wrong (e.g. `"layer input"`), `expected` what was
    /// required, `got` what was given. For custom modules and losses.
    ///
    /// ```
    /// let e = feedforward::Error::shape("my input", "3 rows", "4 rows");
    /// assert_eq!(e.to_string(), "shape mismatch in my input: expected 3 rows, got 4 rows");
    /// ```
    #[must_use]
    pub fn shape(what: impl Into<String>, expected: impl Into<String>, got: impl Into<String>) -> Self {
        Error::ShapeMismatch { what: what.into(), expected: expected.into(), got: got.into() }
    }

    /// Wraps an I/O error on `path`.
    pub(crate) fn at(path: &std::path::Path) -> impl Fn(std::io::Error) -> Self + '_ {
        |source| Error::Io { path: path.to_path_buf(), source }
    }

    /// An I/O error on `path`, turning "not found" into [`Error::MissingFile`] with `hint`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error, hint: &'static str) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::MissingFile { path, hint }
        } else {
            Error::Io { path, source }
        }
    }
}

/// Creates (or truncates) the file at `path` for buffered writing, making its folder first.
pub(crate) fn create_file(path: &std::path::Path) -> Result<std::io::BufWriter<std::fs::File>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // create_dir_all on a path through a file says only "File exists": name the culprit.
        if let Some(file) = dir.ancestors().find(|a| a.exists() && !a.is_dir()) {
            let message = format!("{} is a file, not a folder", file.display());
            return Err(Error::Io { path: path.to_path_buf(), source: std::io::Error::other(message) });
        }
        std::fs::create_dir_all(dir).map_err(Error::at(path))?;
    }
    Ok(std::io::BufWriter::new(std::fs::File::create(path).map_err(Error::at(path))?))
}
