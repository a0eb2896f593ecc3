//! Tabular data: a synthetic classification with rare classes, or a CSV table of your own for
//! a classification, a regression or a multi-label task.
//!
//! Without `--csv`: three features in their own units (an amount in euros, a rate, a count of
//! days), three classes at about 90%, 8% and 2%. The run holds out a test set (each class in
//! its share), standardizes inside the network (fitted on the training part only), weighs the
//! classes, stops early on a validation set, reports per-class recall, precision, F1 and ROC
//! AUC, and saves a model that takes raw features. Balanced class weights find more of the rare classes (higher recall) at the
//! price of more false alarms (lower precision, accuracy and macro F1): compare
//! `--class-weights none`.
//!
//! `--csv FILE --target COLUMN` runs the same on a CSV table of your own (a header row, one
//! sample per row): every other column is an input, but those named by `--ignore`. Columns of
//! categories named by `--categorical` enter as one-hot codes (a row per category, after the
//! numeric columns); any other column must hold numbers. A missing value is an error naming its
//! line, unless `--fill-numbers` and `--fill-categories` fill it (with values fitted on the
//! training rows only), and `--missing-indicators` adds a 0/1 row per column that had gaps.
//! `--missing-values NA` makes cells that say `NA` missing values too. The plan is fitted on the
//! training rows, so a category only the test rows have is an error naming its line, unless
//! `--unseen-categories all-zeros` encodes it as no known class. `--embed user:16,item:8`
//! embeds some of the `--categorical` columns instead (ids of thousands of users or products):
//! each enters as one row of class indices, and an `Embedding` after the input standardization
//! gives each category a trainable vector of that length (an unseen one, under `all-zeros`, a
//! vector of zeros). `--weight-decay` sets Adam's (on the weights and the embeddings, not the
//! biases). `--fill-categories missing-class` gives a column's gaps a class of their own.
//! `--weight COLUMN` weighs each row by its cell in that column (a survey's sampling
//! weights, a count of identical rows, a trust in each label): the loss is `SampleWeighted`
//! over `WeightedTargets`, the validation hold-out carries the weights along, and the test
//! scores are the weighted metrics (`ConfusionMatrix::weighted` and the like).
//! `--importance` ranks the input columns by permutation importance on the test rows
//! (`importance::permutation_importance`, a one-hot code's rows shuffled together; under the
//! weighted loss with `--weight`).
//! `--blocks N` trains a ResNet of `N` blocks instead of the one hidden layer of 32 ReLUs
//! (`Network::resnet`; `--width` its rows, `--dropout` in each block, `--normalization
//! layer-norm` or `none` instead of BatchNorm), skipping each epoch's short last batch with
//! BatchNorm (`LastBatch::Drop`), which cannot train on one sample.
//! `--learning-rate` sets Adam's (3e-3); `--find-lr` runs the learning-rate range test
//! (`train::find_learning_rate`) on the network, loss and optimizer a run would train, prints
//! its curve and suggestions, and trains nothing.
//!
//! `--task` says what the target columns are (`task.rs`): `classification` (one column of
//! classes, the default), `regression` (one or more numeric columns, learned in standard units
//! so that each weighs alike in the loss, whatever its units, and predicted in their own: the
//! trained model gets the inverse of a `Standardize` fitted on the training targets) or
//! `multi-label` (one or more 0/1 columns, a sigmoid per label). A regression with
//! `--quantiles 0.1,0.5,0.9` learns those quantiles of each column instead of its mean (the
//! pinball loss, `Quantile`; a `Sorted` keeps them in order): a median and an interval.
//! `--gaussian` learns a mean and a variance of each column instead (`GaussianNll`, β-NLL with
//! `--beta`), scored by the test rows' log-likelihood and the 80% interval `μ ± 1.28σ`; the
//! saved model ends in `MeanAndVariance` and gives both in the column's units; `--calibrate`
//! scales the variances so that the 80% interval holds 80% of held-out rows (with
//! `--quantiles`, widens the interval; `--asymmetric`, by a margin per side; a regression of
//! the mean alone gets the interval `ŷ ± m` that holds 80% of them). Training stops
//! after `--patience` epochs without a better validation loss (5; 20 with `--gaussian`).
//!
//! A classification reports its expected calibration error (`metrics::Calibration`: do its
//! probabilities mean what they say?). `--calibrate` holds a fifth of its training rows out:
//! half fits the temperature that divides the logits (`Temperature`, the saved model's last
//! module), the other half the probability above which a class enters a row's conformal
//! prediction set, so that the sets hold the class of `--set-coverage` of rows (0.9;
//! `conformal::class_threshold`, the threshold in the model's metadata), or of each class's
//! rows with `--set-thresholds per-class` (`conformal::class_thresholds`), or with sets that
//! grow where the network is unsure with `--set-thresholds adaptive`
//! (`conformal::adaptive_threshold`, seeded by `--seed`); the test scores add
//! how often the sets hold the class, overall and per class, and their size. A multi-label
//! task reports the ECE of its labels' probabilities (`Calibration::binary`), and
//! `--calibrate` divides its logits by a temperature too (`Temperature::fit_sigmoid`), or by
//! one per label with `--temperatures per-label` (`LabelTemperatures`).
//!
//! `--folds K` cross-validates instead of holding out one test part: the rows are cut into `K`
//! parts (`train::folds`, or `stratified_folds` for a classification, with the table's twins),
//! each scored by a network trained on the others, with a plan of inputs fitted on those
//! others; it prints a line per fold and each score's mean and standard deviation. `--group
//! user` keeps every row of a user on one side of each cut (the test part or the folds, and the
//! validation hold-out: `Table::group_split`, `group_folds`, `train::group_split`), so the
//! scores are those of users the network never saw; the folds of a classification then spread
//! each class over the parts as evenly as whole groups allow (`Table::stratified_group_folds`).
//!
//! ```text
//! cargo run --release --example tabular
//! cargo run --release --example tabular -- --class-weights none --metrics tabular.json
//! cargo run --release --example tabular -- --calibrate --set-coverage 0.95
//! cargo run --release --example tabular -- --csv flowers.csv --target species --ignore id
//! cargo run --release --example tabular -- --csv cars.csv --target class --categorical make,fuel
//! cargo run --release --example tabular -- --csv titanic.csv --target Survived \
//!     --ignore PassengerId,Name,Ticket,Cabin --categorical Sex,Embarked \
//!     --fill-numbers median --fill-categories most-frequent --missing-indicators
//! cargo run --release --example tabular -- --csv penguins.csv --target species \
//!     --categorical island,sex --missing-values NA --fill-numbers median \
//!     --fill-categories most-frequent
//! cargo run --release --example tabular -- --csv houses.csv --task regression \
//!     --target price --categorical city
//! cargo run --release --example tabular -- --csv ratings.csv --task regression \
//!     --target rating --categorical user,item --embed user:16,item:16 --weight-decay 1e-4
//! cargo run --release --example tabular -- --csv ratings.csv --task regression \
//!     --target rating --categorical user,item --embed user:16,item:16 --weight-decay 1e-4 \
//!     --unseen-categories all-zeros --group user
//! cargo run --release --example tabular -- --csv houses.csv --task regression \
//!     --target price --categorical city --blocks 4 --width 128 --dropout 0.1
//! cargo run --release --example tabular -- --csv houses.csv --task regression \
//!     --target price --categorical city --quantiles 0.1,0.5,0.9
//! cargo run --release --example tabular -- --csv movies.csv --task multi-label \
//!     --target comedy,drama,thriller --ignore title
//! cargo run --release --example tabular -- --csv penguins.csv --target species \
//!     --categorical island,sex --missing-values NA --fill-numbers median \
//!     --fill-categories most-frequent --folds 5
//! ```

mod data;
#[path = "../shared/normalization.rs"]
mod normalization;
mod task;

use clap::{Parser, ValueEnum};
use data::{CLASSES, Csv, Cut, FEATURES, Source, cuts, synthetic};
use feedforward::conformal;
use feedforward::data::table::{Features, FillCategories, FillNumbers, Missing, OneHot, UnseenCategories};
use feedforward::importance::{Permutation, permutation_importance};
use feedforward::metrics::Calibration;
use feedforward::train::{
    self, Batching, Data, EarlyStopping, LastBatch, RangeTest, Split, SplitConfig, TrainConfig,
};
use feedforward::{
    Activation, Adam, AdamConfig, BinaryCrossEntropy, Embedding, GaussianNll, Init, LabelTemperatures, Layer,
    Loss, MeanAndVariance, MeanSquaredError, Module, Network, PerSampleLoss, Quantile, ResNetConfig,
    SampleWeighted, SoftmaxCrossEntropy, Sorted, Standardize, Targets, Temperature, WeightedTargets,
};
use nalgebra::{DMatrix, DVector};
use normalization::NormalizationArg;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use task::{Headline, Scores, Task, TaskKind};

/// Learn from tabular data: a synthetic classification with rare classes, or a CSV table of
/// your own.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Samples in the synthetic data set (a fifth is held out for the test, a fifth of the
    /// rest for validation).
    #[arg(long, default_value_t = 10_000, conflicts_with = "csv")]
    samples: usize,
    /// Read the data from this CSV table (a header row, one sample per row) instead.
    #[arg(long, requires = "target")]
    csv: Option<PathBuf>,
    /// The CSV column(s) to predict, comma-separated: one column of classes (words or
    /// numbers) for a classification, one or more for the other tasks.
    #[arg(long, value_delimiter = ',', requires = "csv")]
    target: Vec<String>,
    /// What the target columns are.
    #[arg(long, value_enum, default_value_t = TaskKind::Classification, requires = "csv")]
    task: TaskKind,
    /// CSV columns that are not inputs (an identifier, a comment), comma-separated.
    #[arg(long, value_delimiter = ',', requires = "csv")]
    ignore: Vec<String>,
    /// CSV columns of categories (words or codes) to one-hot encode, comma-separated.
    #[arg(long, value_delimiter = ',', requires = "csv")]
    categorical: Vec<String>,
    /// Columns named by --categorical to embed instead (a trainable vector per category: for
    /// columns of many categories, such as ids), each with its vectors' length,
    /// comma-separated: `user:16,item:8`.
    #[arg(long, value_delimiter = ',', value_parser = column_and_length, requires = "csv")]
    embed: Vec<(String, usize)>,
    /// Cells that stand for a missing value besides empty ones (R's `NA`), comma-separated.
    #[arg(long, value_delimiter = ',', requires = "csv")]
    missing_values: Vec<String>,
    /// What fills a missing value of a numeric column (fitted on the training rows).
    #[arg(long, value_enum, default_value_t = NumberFill::Refuse, requires = "csv")]
    fill_numbers: NumberFill,
    /// What fills a missing value of a column of categories (fitted on the training rows).
    #[arg(long, value_enum, default_value_t = CategoryFill::Refuse, requires = "csv")]
    fill_categories: CategoryFill,
    /// Add an input row per column that had missing values: 1 where the value was missing.
    #[arg(long, requires = "csv")]
    missing_indicators: bool,
    /// What the codes do with a category the training rows did not have (saved with the input
    /// plan and, for an embedded column, the model).
    #[arg(long, value_enum, default_value_t = Unseen::Refuse, requires = "csv")]
    unseen_categories: Unseen,
    /// Adam's weight decay (an L2 term in the gradient) on the weights and the embeddings'
    /// vectors, not on the biases.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Instead of one hidden layer of 32 ReLUs, a ResNet of this many blocks
    /// (`Network::resnet`: each block norm → layer → ReLU → dropout → layer, added back; then
    /// norm, ReLU and the output layer; the norm is `--normalization`).
    #[arg(long)]
    blocks: Option<usize>,
    /// The ResNet's width: the rows its blocks add to (each block's hidden layer has twice as
    /// many).
    #[arg(long, default_value_t = 64, requires = "blocks")]
    width: usize,
    /// Drop probability after each ResNet block's hidden layer.
    #[arg(long, default_value_t = 0.0, requires = "blocks")]
    dropout: f64,
    /// What normalizes the input of each ResNet block and of its head (the paper's BatchNorm;
    /// LayerNorm for a model whose answer for a row does not depend on the batch).
    #[arg(long, value_enum, default_value_t = NormalizationArg::BatchNorm, requires = "blocks")]
    normalization: NormalizationArg,
    /// With --task regression: learn these quantiles of each target column instead of its
    /// mean, comma-separated in increasing order, each in (0, 1): `0.1,0.5,0.9` predicts a
    /// median and an 80% interval (pinball loss; `Sorted` keeps them from crossing).
    #[arg(long, value_delimiter = ',', requires = "csv")]
    quantiles: Vec<f64>,
    /// Hold a fifth of the training rows out to calibrate on. A regression of the mean alone:
    /// give each prediction the interval `ŷ ± m` that holds 80% of those rows (split conformal,
    /// `conformal::interval_margin`; the margin in the model's metadata). With --quantiles: widen the
    /// interval between the lowest and highest quantile by the margin that makes it hold their
    /// share of those rows (conformalized quantile regression, `conformal::interval_margin`).
    /// With --gaussian: scale the variances so that the 80% interval holds 80% of them
    /// (`conformal::deviation_factor`). A classification: divide the logits by the temperature
    /// fitted on half of them (`Temperature::fit`), and find the probability above which a
    /// class enters a row's prediction set, so that the sets hold the class of --set-coverage
    /// of the other half (`conformal::class_threshold`). The saved model gives the calibrated
    /// intervals or probabilities (and the sets' threshold in its metadata). A multi-label task:
    /// divide the logits by the temperature fitted on half of them (`Temperature::fit_sigmoid`;
    /// see --temperatures).
    #[arg(long, conflicts_with_all = ["group", "weight"])]
    calibrate: bool,
    /// With --calibrate and --quantiles: a margin for each side of the interval
    /// (`conformal::interval_margins`), so that each side misses at most half of the rows the
    /// interval should not hold, where one margin may leave most misses on one side of skewed
    /// noise.
    #[arg(long, requires_all = ["calibrate", "quantiles"])]
    asymmetric: bool,
    /// With --calibrate on a classification: the share of rows whose prediction set (the
    /// classes of a probability above the calibrated threshold) should hold their class
    /// [default: 0.9].
    #[arg(long, requires = "calibrate")]
    set_coverage: Option<f64>,
    /// With --calibrate on a classification: whether the sets' coverage holds over all rows
    /// (one threshold), or within each class (a threshold per class, measured on its own
    /// calibration rows: a rare or hard class is held as often as the others, for larger sets;
    /// each class needs coverage/(1 − coverage) calibration rows), or over all rows with sets
    /// that grow with the network's doubt (adaptive: rows it is unsure of held about as often
    /// as rows it is sure of, for larger sets).
    #[arg(long, value_enum, default_value_t = SetThresholds::One, requires = "calibrate")]
    set_thresholds: SetThresholds,
    /// With --calibrate on a multi-label task: one temperature for every label's logits, or one
    /// per label (`LabelTemperatures`), each fitted on its own label, for labels whose
    /// probabilities are off by different factors (each label needs both of its values among
    /// the calibration rows).
    #[arg(long, value_enum, default_value_t = Temperatures::One, requires = "calibrate")]
    temperatures: Temperatures,
    /// With --task regression: learn a mean and a variance for each target column and row
    /// (`GaussianNll`: a normal law's likelihood) instead of the mean alone; the scores add
    /// the test rows' log-likelihood and how many fall in the 80% interval, and the saved
    /// model gives each column's mean then each column's variance, in the columns' units.
    #[arg(long, requires = "csv", conflicts_with = "quantiles")]
    gaussian: bool,
    /// With --gaussian: weigh each target's term by its variance to this power, in [0, 1]
    /// (β-NLL, `GaussianNll::with_beta`; its authors chose 0.5), so that the means of targets
    /// the network finds hard keep learning, at some cost to the variances' calibration; 0 is
    /// the plain likelihood.
    #[arg(long, default_value_t = 0.0, requires = "gaussian")]
    beta: f64,
    /// Epochs without a better validation loss before training stops (early stopping; the
    /// best epoch's weights are kept), of at most 100 [default: 5; 20 with --gaussian, whose
    /// validation likelihood levels off while the means still learn].
    #[arg(long)]
    patience: Option<usize>,
    /// Adam's learning rate (`--find-lr` suggests one).
    #[arg(long, default_value_t = 3e-3)]
    learning_rate: f32,
    /// Instead of training, run the learning-rate range test (`train::find_learning_rate`) with
    /// the network, loss and Adam a run would train, on the training rows less the validation
    /// hold-out: its curve and the rates it suggests for --learning-rate. Nothing is scored.
    #[arg(long, conflicts_with_all = ["folds", "model", "metrics"])]
    find_lr: bool,
    /// How the loss weighs the classes of a classification [default: balanced].
    #[arg(long, value_enum)]
    class_weights: Option<Weights>,
    /// Cross-validate instead: cut the rows into this many parts (each class in its share, for
    /// a classification), score each part with a network trained on the others, and report
    /// the mean and spread of the scores. No model is saved.
    #[arg(long, conflicts_with = "model")]
    folds: Option<usize>,
    /// Cut by the groups of this column: every row of one value (a user, a patient) on the
    /// same side of the test cut, the folds and the validation hold-out, so the scores are
    /// those of groups the network never saw (instead of each class in its share).
    #[arg(long, requires = "csv")]
    group: Option<String>,
    /// A column of sample weights (numbers ≥ 0, not an input): each row counts that many
    /// times, in the loss, in the validation loss that stops training early and in the test
    /// scores.
    #[arg(long, requires = "csv")]
    weight: Option<String>,
    /// Seed of the data, the splits, the weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// After training, rank the inputs by permutation importance on the test rows: how much
    /// the task's loss grows when a column's values are shuffled (a one-hot code's rows
    /// together), the mean and spread of 5 shuffles each.
    #[arg(long, conflicts_with = "folds")]
    importance: bool,
    /// Save the trained model (safetensors, with its scaling; what its outputs are in its
    /// metadata) to this file.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Write the test metrics as JSON.
    #[arg(long)]
    metrics: Option<PathBuf>,
}

/// Class weights for the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Weights {
    /// Every class weighs 1.
    None,
    /// Each class weighs `samples / (classes · its samples)`, so each counts as much in total.
    Balanced,
}

/// `--set-thresholds`: what the prediction sets' coverage holds for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SetThresholds {
    /// One threshold for every class (`conformal::class_threshold`): the coverage over all rows.
    One,
    /// A threshold per class (`conformal::class_thresholds`): the coverage within each class.
    PerClass,
    /// One threshold on each row's classes ranked by probability (`conformal::adaptive_threshold`,
    /// adaptive prediction sets): a set takes classes until their probabilities add up, so it
    /// grows where the network is unsure; each row's share of its last class is drawn (seeded).
    Adaptive,
}

/// `--temperatures`: how many temperatures divide a multi-label task's logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Temperatures {
    /// One for every label (`Temperature::fit_sigmoid`).
    One,
    /// One per label (`LabelTemperatures::fit_sigmoid`).
    PerLabel,
}

/// `--fill-numbers`: [`FillNumbers`] as a command-line choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum NumberFill {
    /// A missing value is an error naming its line.
    Refuse,
    /// The mean of the column on the training rows.
    Mean,
    /// The median of the column on the training rows.
    Median,
}

/// `--fill-categories`: [`FillCategories`] as a command-line choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum CategoryFill {
    /// A missing value is an error naming its line.
    Refuse,
    /// The most frequent class on the training rows.
    MostFrequent,
    /// A class of its own, "(missing)", for a column with gaps on the training rows.
    MissingClass,
}

/// `--unseen-categories`: [`UnseenCategories`] as a command-line choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Unseen {
    /// An error naming its line.
    Refuse,
    /// No known class: all the code's rows 0 (an embedded column: a vector of zeros).
    AllZeros,
}

/// `COLUMN:LENGTH` of `--embed`.
fn column_and_length(text: &str) -> Result<(String, usize), String> {
    let (column, length) = text.rsplit_once(':').ok_or("expected COLUMN:LENGTH, as in user:16")?;
    match length.parse::<usize>() {
        Ok(length) if length > 0 && !column.is_empty() => Ok((column.to_string(), length)),
        _ => Err(format!("{text:?}: expected COLUMN:LENGTH with a length of at least 1, as in user:16")),
    }
}

impl Args {
    /// The length `--embed` gives the vectors of the code's column.
    ///
    /// # Panics
    /// If `--embed` does not name it: the plan encodes as indices only the columns it names.
    fn vector_length(&self, code: &OneHot) -> usize {
        let column = self.embed.iter().find(|(name, _)| name == code.column());
        column.map(|&(_, length)| length).expect("the plan indexes only the columns --embed names")
    }

    /// The missing-value policies the flags ask for.
    fn missing(&self) -> Missing {
        let numbers = match self.fill_numbers {
            NumberFill::Refuse => FillNumbers::Refuse,
            NumberFill::Mean => FillNumbers::Mean,
            NumberFill::Median => FillNumbers::Median,
        };
        let categories = match self.fill_categories {
            CategoryFill::Refuse => FillCategories::Refuse,
            CategoryFill::MostFrequent => FillCategories::MostFrequent,
            CategoryFill::MissingClass => FillCategories::MissingClass,
        };
        Missing { numbers, categories, indicators: self.missing_indicators }
    }

    /// What the one-hot codes do with a category the training rows lacked, as the flag asks.
    fn unseen(&self) -> UnseenCategories {
        match self.unseen_categories {
            Unseen::Refuse => UnseenCategories::Refuse,
            Unseen::AllZeros => UnseenCategories::AllZeros,
        }
    }

    /// `--set-coverage`, or its default.
    fn set_coverage(&self) -> f64 {
        self.set_coverage.unwrap_or(0.9)
    }

    /// `--patience`, or its default.
    fn patience(&self) -> usize {
        self.patience.unwrap_or(if self.gaussian { 20 } else { 5 })
    }

    /// A fifth of `samples` held out for the test: the same rows of a table and of its matrix
    /// (`Table::split` and `train::split` cut alike, and so do their stratified twins).
    fn test_split(&self, samples: usize) -> SplitConfig {
        SplitConfig { held_out: samples / 5, seed: self.seed }
    }
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// How much a run prints as it goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Narration {
    /// Everything: the class weights, the network, when training stopped.
    Full,
    /// Nothing: a cross-validation prints a line per fold.
    Quiet,
}

/// What a network has at its ends besides its layers.
struct Ends {
    /// After the inputs' standardization, the embedding of the columns `--embed` names (their
    /// rows of indices left out of the standardization).
    embedding: Option<Embedding<f32>>,
    /// After the layers, trained through: the sorting of a regression's quantiles
    /// (`--quantiles`).
    last: Vec<Box<dyn Module<f32>>>,
}

/// What [`train`] did.
enum Outcome {
    /// Trained a network.
    Trained {
        net: Network<f32>,
        /// Epochs it ran.
        epochs: usize,
        /// Whether early stopping ended it (else it ran all its epochs).
        stopped_early: bool,
    },
    /// Ran the learning-rate range test only (`--find-lr`), and printed it.
    RangeTest,
}

impl Outcome {
    /// The trained network followed by `module`, which it did not train through (a
    /// regression's way back to its targets' units).
    fn then(mut self, module: impl Module<f32> + 'static) -> feedforward::Result<Self> {
        if let Outcome::Trained { net, .. } = &mut self {
            net.push_boxed(Box::new(module))?;
        }
        Ok(self)
    }
}

/// Trains a network with `outputs` output rows on `fit` (stopping early on its held-out rows):
/// standardized inputs (the embedded rows' vectors after them), one hidden layer of 32 ReLUs
/// or the ResNet of `--blocks`, then the last modules of `ends`, by Adam. With `--find-lr`,
/// runs the range test on that network instead.
fn train<L: Loss<f32> + ?Sized>(
    args: &Args,
    fit: &Split<f32, <L::Target as Targets>::Batch>,
    loss: &L,
    outputs: usize,
    ends: Ends,
    rng: &mut StdRng,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let Ends { embedding, last } = ends;
    let index_rows = embedding.as_ref().map(Embedding::index_rows).unwrap_or_default();
    let standardize = Standardize::fit(&fit.inputs)?.with_rows_unchanged(&index_rows)?;
    let mut net = Network::<f32>::new(fit.inputs.nrows()).push(standardize)?;
    if let Some(embedding) = embedding {
        net = net.push(embedding)?;
    }
    let width = net.output_rows();
    let layers = match args.blocks {
        None => Network::new(width)
            .push(Layer::new(width, 32, Init::He, rng).with_activation(Activation::Relu))?
            .push(Layer::new(32, outputs, Init::He, rng))?,
        Some(blocks) => {
            let config = ResNetConfig {
                blocks,
                width: args.width,
                hidden: 2 * args.width,
                hidden_dropout: args.dropout,
                normalization: args.normalization.into(),
                ..ResNetConfig::default()
            };
            Network::resnet(width, outputs, config, rng)?
        }
    };
    // The dropout masks' stream, if the ResNet drops.
    net = net.append(layers)?.with_seed(args.seed);
    for module in last {
        net.push_boxed(module)?;
    }
    let config = AdamConfig {
        learning_rate: args.learning_rate,
        weight_decay: args.weight_decay,
        ..AdamConfig::default()
    };
    let mut optimizer = Adam::new(config)?;
    let batch_size = 64;
    // A ResNet's BatchNorms cannot train on a last batch of one sample: its steps all take 64.
    let batch_norm = args.blocks.is_some() && args.normalization == NormalizationArg::BatchNorm;
    let last_batch = if batch_norm { LastBatch::Drop } else { LastBatch::Keep };
    if args.find_lr {
        let test = RangeTest { batch_size, last_batch, seed: args.seed, ..RangeTest::default() };
        let data = Data::new(&fit.inputs, <L::Target as Targets>::view(&fit.targets));
        print!("{}", train::find_learning_rate(&net, &mut optimizer, loss, data, &test)?);
        return Ok(Outcome::RangeTest);
    }
    let config = TrainConfig {
        epochs: 100,
        batching: Batching::Minibatch { size: batch_size, shuffle: true },
        last_batch,
        seed: args.seed,
        early_stopping: Some(EarlyStopping { patience: args.patience(), ..EarlyStopping::default() }),
        ..TrainConfig::default()
    };
    let report = train::fit(&mut net, &mut optimizer, loss, fit.data(), &config, |_, _, _| {})?;
    Ok(Outcome::Trained { net, epochs: report.epochs.len(), stopped_early: report.stopped_early })
}

/// The validation hold-out of `x` and `targets`: whole groups when the rows have `groups`
/// (`--group`), else each class in its share when there are class `labels`, else at random.
fn hold_out<Y: Targets + ?Sized>(
    x: &DMatrix<f32>,
    targets: &Y,
    groups: Option<&[usize]>,
    labels: Option<&[usize]>,
    config: SplitConfig,
) -> feedforward::Result<Split<f32, Y::Batch>> {
    match (groups, labels) {
        (Some(groups), _) => train::group_split(x, targets, groups, config),
        (None, Some(labels)) => train::stratified_split_by(x, targets, labels, config),
        (None, None) => train::split(x, targets, config),
    }
}

/// How one task trains on a cut's training rows.
struct Training<'a> {
    /// The group of each row (`--group`).
    groups: Option<&'a [usize]>,
    /// The class of each row, for a classification: its validation hold-out is stratified.
    labels: Option<&'a [usize]>,
    /// The weight of each row (`--weight`).
    weights: Option<&'a [f64]>,
    outputs: usize,
    embedding: Option<Embedding<f32>>,
}

/// Holds out a fifth of `x` for validation, then trains under the loss `setup` makes from the
/// kept rows' targets (with the last modules it gives), each row weighted by its `--weight`.
fn fit_task<L, S>(
    args: &Args,
    x: &DMatrix<f32>,
    targets: &L::Target,
    training: Training<'_>,
    setup: S,
    rng: &mut StdRng,
) -> Result<Outcome, Box<dyn std::error::Error>>
where
    L: PerSampleLoss<f32>,
    S: FnOnce(&L::Target) -> feedforward::Result<(L, Vec<Box<dyn Module<f32>>>)>,
{
    let Training { groups, labels, weights, outputs, embedding } = training;
    let validation = SplitConfig { held_out: x.ncols() / 5, seed: args.seed + 1 };
    match weights {
        None => {
            let fit = hold_out(x, targets, groups, labels, validation)?;
            let (loss, last) = setup(<L::Target as Targets>::view(&fit.targets))?;
            train(args, &fit, &loss, outputs, Ends { embedding, last }, rng)
        }
        Some(weights) => {
            let weighted = WeightedTargets::new(targets, weights.to_vec())?;
            let fit = hold_out(x, &weighted, groups, labels, validation)?;
            let (loss, last) = setup(fit.targets.targets())?;
            train(args, &fit, &SampleWeighted::new(loss), outputs, Ends { embedding, last }, rng)
        }
    }
}

/// Conformalized quantile regression: widens each target's interval between its lowest and
/// highest quantile (rows `c·q` and `c·q + q − 1` of `net`'s output) by the margin
/// (`conformal::interval_margin`; with `--asymmetric` one per side,
/// `conformal::interval_margins`) that makes it hold the share between them of the
/// calibration rows `x`, `truth` (`targets × rows`), which the network did not train on. The
/// margins ride at the end of the network, a fixed shift per output row then a sort, so that
/// the saved model gives the calibrated intervals; returns them, below and above (equal
/// without `--asymmetric`).
fn calibrate(
    net: &mut Network<f32>,
    q: usize,
    x: &DMatrix<f32>,
    truth: &DMatrix<f32>,
    args: &Args,
) -> Result<Vec<(f64, f64)>, Box<dyn std::error::Error>> {
    let predicted = net.output(x)?;
    let coverage = args.quantiles[q - 1] - args.quantiles[0];
    let mut margins = Vec::new();
    let mut shift = DVector::zeros(predicted.nrows());
    for c in 0..truth.nrows() {
        let (low, high) = (c * q, c * q + q - 1);
        let (lower, upper, truth) = (row_of(&predicted, low), row_of(&predicted, high), row_of(truth, c));
        let (below, above) = match args.asymmetric {
            true => conformal::interval_margins(&lower, &upper, &truth, coverage)?,
            false => {
                let margin = conformal::interval_margin(&lower, &upper, &truth, coverage)?;
                (margin, margin)
            }
        };
        shift[low] -= below as f32;
        shift[high] += above as f32;
        margins.push((below, above));
    }
    // `Standardize::new(μ, 1).inverse()` is `y = x + μ`.
    let ones = DVector::from_element(shift.len(), 1.0);
    net.push_boxed(Box::new(Standardize::new(shift, ones)?.inverse()))?;
    net.push_boxed(Box::new(Sorted::new(q)?))?;
    Ok(margins)
}

/// With `--calibrate`, the rows `x`, `targets` cut into those to train on and a fifth held out
/// to calibrate on (each class in its share when there are class `labels`); else `None`.
fn calibration_split<Y: Targets + ?Sized>(
    args: &Args,
    x: &DMatrix<f32>,
    targets: &Y,
    labels: Option<&[usize]>,
) -> feedforward::Result<Option<Split<f32, Y::Batch>>> {
    if !args.calibrate {
        return Ok(None);
    }
    let config = SplitConfig { held_out: x.ncols() / 5, seed: args.seed + 2 };
    hold_out(x, targets, None, labels, config).map(Some)
}

/// Conformal calibration of a mean and a variance per target: scales each target's variances
/// (rows `R + c` of `net`'s output, its means rows `c`) by `(k/z)²`, `k` the factor
/// (`conformal::deviation_factor`) that makes `μ ± k·σ` hold 80% of the calibration rows `x`,
/// `truth` (`targets × rows`), which the network did not train on, and `z` the normal law's
/// 1.2816: the saved model's 80% interval `μ ± z·σ` is then the calibrated one. The scaling
/// rides at the end of the network; returns the factors.
fn calibrate_variances(
    net: &mut Network<f32>,
    x: &DMatrix<f32>,
    truth: &DMatrix<f32>,
) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let predicted = net.output(x)?;
    let r = truth.nrows();
    let mut factors = Vec::new();
    let mut scale = DVector::from_element(2 * r, 1.0f32);
    for c in 0..r {
        let k = conformal::deviation_factor(
            &row_of(&predicted, c),
            &row_of(&predicted, r + c),
            &row_of(truth, c),
            task::INTERVAL_COVERAGE,
        )?;
        scale[r + c] = ((k / task::Z_80).powi(2)) as f32;
        factors.push(k);
    }
    // `Standardize::new(0, s).inverse()` is `y = s·x`.
    net.push_boxed(Box::new(Standardize::new(DVector::zeros(2 * r), scale)?.inverse()))?;
    Ok(factors)
}

/// Row `r` of `m` (a target's values, one per sample): the conformal functions take slices.
fn row_of(m: &DMatrix<f32>, r: usize) -> Vec<f32> {
    m.row(r).iter().copied().collect()
}

/// Split conformal regression: for each target row of `net`'s output, the margin `m` that makes
/// `ŷ ± m` hold [`task::INTERVAL_COVERAGE`] of the calibration rows `x`, `truth` (`targets ×
/// rows`), which the network did not train on (`conformal::interval_margin` of the interval
/// `[ŷ, ŷ]`: each row scores `|y − ŷ|`).
fn residual_margins(
    net: &Network<f32>,
    x: &DMatrix<f32>,
    truth: &DMatrix<f32>,
) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let predicted = net.output(x)?;
    let margins = (0..truth.nrows()).map(|c| {
        let y = row_of(&predicted, c);
        conformal::interval_margin(&y, &y, &row_of(truth, c), task::INTERVAL_COVERAGE)
    });
    Ok(margins.collect::<feedforward::Result<_>>()?)
}

/// The temperature scaling `--calibrate` fits: one temperature, or one per label.
#[derive(Clone, Debug)]
enum Scaling {
    One(Temperature),
    PerLabel(LabelTemperatures),
}

impl Scaling {
    /// As the module that divides the logits.
    fn module(&self) -> Box<dyn Module<f32>> {
        match self {
            Scaling::One(t) => Box::new(*t),
            Scaling::PerLabel(t) => Box::new(t.clone()),
        }
    }

    /// What the run prints of it.
    fn note(&self) -> String {
        match self {
            Scaling::One(t) => format!("temperature {:.3}", t.value()),
            Scaling::PerLabel(t) => {
                let values: Vec<String> = t.values().iter().map(|v| format!("{v:.3}")).collect();
                format!("temperatures {} (one per label)", values.join(", "))
            }
        }
    }

    /// Its `--metrics` field.
    fn json(&self) -> (&'static str, Value) {
        match self {
            Scaling::One(t) => ("temperature", t.value().into()),
            Scaling::PerLabel(t) => ("temperatures", t.values().into()),
        }
    }
}

/// A temperature scaling fitted on the first half of a classifier's calibration rows, and the
/// expected calibration error of the second half before and after it.
struct TemperatureFit {
    scaling: Scaling,
    /// The calibration rows of each half.
    rows: (usize, usize),
    /// The second half's ECE (15 bins), before and after.
    ece: (f64, f64),
}

impl TemperatureFit {
    /// Fits the temperature on the first half of the calibration rows `x` (`fit` gives it from
    /// the network's logits and the half's column range), measures the ECE of the second half
    /// (`ece` from the network and the half's range) before and after, and pushes the
    /// temperature after `net`'s last module, so that the saved model gives calibrated
    /// probabilities.
    fn measure(
        net: &mut Network<f32>,
        x: &DMatrix<f32>,
        fit: impl FnOnce(&DMatrix<f32>, std::ops::Range<usize>) -> feedforward::Result<Scaling>,
        ece: impl Fn(&Network<f32>, &DMatrix<f32>, std::ops::Range<usize>) -> feedforward::Result<f64>,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let (half, n) = (x.ncols() / 2, x.ncols());
        let first = x.columns(0, half).into_owned();
        let second = x.columns(half, n - half).into_owned();
        let scaling = fit(&net.output(&first)?, 0..half).map_err(|e| format!("--calibrate: {e}"))?;
        let before = ece(net, &second, half..n)?;
        net.push_boxed(scaling.module())?;
        let after = ece(net, &second, half..n)?;
        Ok(TemperatureFit { scaling, rows: (half, n - half), ece: (before, after) })
    }

    /// What the run prints of it.
    fn note(&self) -> String {
        format!(
            "{}, fitted on {} calibration rows; on the other {}, ECE {:.4} before and {:.4} after",
            self.scaling.note(),
            self.rows.0,
            self.rows.1,
            self.ece.0,
            self.ece.1,
        )
    }

    /// Its fields in the `--metrics` JSON.
    fn json(&self) -> Map<String, Value> {
        let mut json = task::object(json!({
            "temperature_rows": self.rows.0,
            "held_out_ece_before": self.ece.0,
            "held_out_ece_after": self.ece.1,
        }));
        let (key, value) = self.scaling.json();
        json.insert(key.into(), value);
        json
    }
}

/// Calibrates a multi-label classifier's sigmoids on rows `x`, `targets` it did not train on:
/// the temperature that divides its logits (`Temperature::fit_sigmoid`), or one per label
/// (`LabelTemperatures::fit_sigmoid`), the ECE of every label's probabilities
/// (`Calibration::binary`).
fn calibrate_sigmoids(
    net: &mut Network<f32>,
    x: &DMatrix<f32>,
    targets: &DMatrix<f32>,
    temperatures: Temperatures,
) -> Result<TemperatureFit, Box<dyn std::error::Error>> {
    let part = |rows: std::ops::Range<usize>| targets.columns(rows.start, rows.len()).into_owned();
    TemperatureFit::measure(
        net,
        x,
        |logits, rows| match temperatures {
            Temperatures::One => Temperature::fit_sigmoid(logits, &part(rows)).map(Scaling::One),
            Temperatures::PerLabel => {
                LabelTemperatures::fit_sigmoid(logits, &part(rows)).map(Scaling::PerLabel)
            }
        },
        |net, x, rows| {
            let probabilities = net.sigmoid_probabilities(x)?;
            Ok(Calibration::binary(&probabilities, &part(rows), task::ECE_BINS)?.expected_calibration_error())
        },
    )
}

/// What [`calibrate_classes`] fitted and measured.
struct ClassCalibration {
    fit: TemperatureFit,
    sets: task::Sets,
}

impl ClassCalibration {
    /// Its fields in the `--metrics` JSON.
    fn json(&self) -> Value {
        let mut json = self.fit.json();
        json.insert("set_thresholds".into(), self.sets.thresholds.json());
        json.insert("set_method".into(), self.sets.thresholds.method().into());
        json.insert("set_coverage".into(), self.sets.coverage.into());
        json.insert("threshold_rows".into(), self.fit.rows.1.into());
        json.into()
    }
}

/// Calibrates a classifier on rows `x`, `labels` it did not train on: the first half fits the
/// temperature that divides its logits (`Temperature::fit`, pushed after its last module, so
/// that the saved model gives calibrated probabilities); the second, new to the temperature as
/// a conformal guarantee needs, sets the probability above which a class enters a row's
/// prediction set so that the sets hold the class of `coverage` of rows
/// (`conformal::class_threshold`), or of each class's rows (`per`), and measures the expected
/// calibration error before and after.
fn calibrate_classes(
    net: &mut Network<f32>,
    x: &DMatrix<f32>,
    labels: &[usize],
    coverage: f64,
    per: SetThresholds,
    seed: u64,
) -> Result<ClassCalibration, Box<dyn std::error::Error>> {
    let fit = TemperatureFit::measure(
        net,
        x,
        |logits, rows| Temperature::fit(logits, &labels[rows]).map(Scaling::One),
        |net, x, rows| {
            Ok(Calibration::new(&net.probabilities(x)?, &labels[rows], task::ECE_BINS)?
                .expected_calibration_error())
        },
    )?;
    let half = fit.rows.0;
    let probabilities = net.probabilities(&x.columns(half, x.ncols() - half).into_owned())?;
    let check_labels = &labels[half..];
    let thresholds = match per {
        SetThresholds::One => {
            task::Thresholds::One(conformal::class_threshold(&probabilities, check_labels, coverage)?)
        }
        SetThresholds::PerClass => task::Thresholds::PerClass(
            conformal::class_thresholds(&probabilities, check_labels, coverage)
                .map_err(|e| format!("--set-thresholds per-class: {e}"))?,
        ),
        SetThresholds::Adaptive => {
            let mut rng = StdRng::seed_from_u64(seed);
            let threshold = conformal::adaptive_threshold(&probabilities, check_labels, coverage, &mut rng)?;
            task::Thresholds::Adaptive { threshold, seed: seed + 1 }
        }
    };
    Ok(ClassCalibration { fit, sets: task::Sets { thresholds, coverage } })
}

/// Each target row of `values` repeated once per quantile (`q` rows in a row, as `Sorted::new(q)`
/// groups them), and the pinball loss that learns those quantiles of each.
fn quantile_targets(
    values: &DMatrix<f32>,
    quantiles: &[f64],
) -> feedforward::Result<(DMatrix<f32>, Quantile)> {
    let q = quantiles.len();
    let repeated = DMatrix::from_fn(values.nrows() * q, values.ncols(), |i, j| values[(i / q, j)]);
    Ok((repeated, Quantile::new(quantiles.repeat(values.nrows()))?))
}

/// A network trained on a cut and its scores on the cut's test rows.
struct Evaluation {
    net: Network<f32>,
    /// Epochs it trained.
    epochs: usize,
    scores: Scores,
    /// What `--calibrate` fitted and measured, for the `--metrics` JSON.
    calibration: Option<Value>,
}

/// Trains on `cut.train` (a fifth of it held out for validation: whole groups with `--group`,
/// else each class in its share for a classification) and scores on `cut.test`; `None` after
/// the range test of `--find-lr`, which trains nothing.
fn evaluate(
    args: &Args,
    cut: &Cut,
    narration: Narration,
    rng: &mut StdRng,
) -> Result<Option<Evaluation>, Box<dyn std::error::Error>> {
    let ((x, train_task), (test_x, test_task)) = (&cut.train, &cut.test);
    let test_weights = cut.test_weights.as_deref();
    // Drawn first, as the layers' weights are drawn after it.
    let embedding = match &cut.plan {
        Some(plan) if !args.embed.is_empty() => Some(plan.embedding(|code| args.vector_length(code), rng)?),
        _ => None,
    };
    let training = |labels, outputs| Training {
        groups: cut.groups.as_deref(),
        labels,
        weights: cut.weights.as_deref(),
        outputs,
        embedding,
    };
    // What a task has to say after the network's summary.
    let mut notes = Vec::new();
    // What --calibrate measured, for the `--metrics` JSON.
    let mut calibration_json: Option<Value> = None;
    // Each task trains its way, and says how to score the network it trained.
    type Score<'a> = Box<dyn Fn(&Network<f32>) -> Result<Scores, Box<dyn std::error::Error>> + 'a>;
    let (outcome, score): (Outcome, Score<'_>) = match (train_task, test_task) {
        (Task::Classification { labels, classes }, Task::Classification { labels: truth, .. }) => {
            // With --calibrate, a fifth of the rows (each class in its share) is held out of
            // the training to calibrate on.
            let calibration = calibration_split(args, x, &labels[..], Some(&labels[..]))?;
            let (x, labels) = calibration.as_ref().map_or((x, &labels[..]), |c| (&c.inputs, &c.targets[..]));
            let setup = |kept: &[usize]| {
                let choice = args.class_weights.unwrap_or(Weights::Balanced);
                let (weights, counts) = class_weights(choice, kept, classes.len());
                if narration == Narration::Full {
                    println!("training samples per class {counts:?}, class weights {weights:.2?}");
                }
                Ok((SoftmaxCrossEntropy::new().with_class_weights(weights)?, Vec::new()))
            };
            let training = training(Some(labels), classes.len());
            let mut outcome = fit_task(args, x, labels, training, setup, rng)?;
            let mut sets = None;
            if let (Some(c), Outcome::Trained { net, .. }) = (&calibration, &mut outcome) {
                let calibrated = calibrate_classes(
                    net,
                    &c.held_out_inputs,
                    &c.held_out_targets,
                    args.set_coverage(),
                    args.set_thresholds,
                    args.seed + 3,
                )?;
                notes.push(calibrated.fit.note());
                let within =
                    if args.set_thresholds == SetThresholds::PerClass { " within each class" } else { "" };
                notes.push(format!(
                    "prediction sets of {}% coverage{within}: the classes of {} (conformal, on those {} rows)",
                    100.0 * args.set_coverage(),
                    calibrated.sets.thresholds.describe(classes),
                    calibrated.fit.rows.1,
                ));
                calibration_json = Some(calibrated.json());
                sets = Some(calibrated.sets);
            }
            let score = move |net: &Network<f32>| {
                task::classification(&net.probabilities(test_x)?, truth, classes, test_weights, sets.as_ref())
            };
            (outcome, Box::new(score))
        }
        (Task::Regression { values, columns }, Task::Regression { values: truth, .. }) if args.gaussian => {
            // A mean and a variance's logit per column, learned in standard units by the
            // likelihood; then the link to variances and the way back to the columns' units:
            // `σ` on the means, `σ²` on the variances.
            // With --calibrate, a fifth of the rows is held out of the training to calibrate on.
            let calibration = calibration_split(args, x, values, None)?;
            let (x, values) = calibration.as_ref().map_or((x, values), |c| (&c.inputs, &c.targets));
            let scale = Standardize::fit(values)?;
            let nll = GaussianNll::new().with_beta(args.beta)?;
            let setup = |_: &DMatrix<f32>| Ok((nll, Vec::new()));
            let training = training(None, 2 * columns.len());
            let mut outcome = fit_task(args, x, &scale.apply(values)?, training, setup, rng)?
                .then(nll.link())?
                .then(MeanAndVariance::restore(&scale)?)?;
            if let (Some(c), Outcome::Trained { net, .. }) = (&calibration, &mut outcome) {
                let factors = calibrate_variances(net, &c.held_out_inputs, &c.held_out_targets)?;
                let shown: Vec<String> = columns
                    .iter()
                    .zip(&factors)
                    .map(|(c, k)| format!("{c} {k:.3} (variances × {:.3})", (k / task::Z_80).powi(2)))
                    .collect();
                notes.push(format!(
                    "conformal factors of the 80% interval μ ± kσ ({} calibration rows): {}",
                    c.held_out_inputs.ncols(),
                    shown.join(", ")
                ));
                let factors: Map<String, Value> =
                    columns.iter().cloned().zip(factors.iter().map(|&k| k.into())).collect();
                calibration_json =
                    Some(json!({ "rows": c.held_out_inputs.ncols(), "deviation_factors": factors }));
            }
            (
                outcome,
                Box::new(|net| task::gaussian_regression(&net.output(test_x)?, truth, columns, test_weights)),
            )
        }
        (Task::Regression { values, columns }, Task::Regression { values: truth, .. })
            if args.quantiles.is_empty() =>
        {
            // The network learns the targets in standard units, so that the loss weighs every
            // column alike whatever its units; the inverse, after training, gives them back.
            // With --calibrate, a fifth of the rows is held out of the training to calibrate on.
            let calibration = calibration_split(args, x, values, None)?;
            let (x, values) = calibration.as_ref().map_or((x, values), |c| (&c.inputs, &c.targets));
            let scale = Standardize::fit(values)?;
            let setup = |_: &DMatrix<f32>| Ok((MeanSquaredError, Vec::new()));
            let outcome =
                fit_task(args, x, &scale.apply(values)?, training(None, columns.len()), setup, rng)?
                    .then(scale.inverse())?;
            let mut margins = None;
            if let (Some(c), Outcome::Trained { net, .. }) = (&calibration, &outcome) {
                let found = residual_margins(net, &c.held_out_inputs, &c.held_out_targets)?;
                let shown: Vec<String> =
                    columns.iter().zip(&found).map(|(c, m)| format!("{c} ± {m:.4}")).collect();
                notes.push(format!(
                    "conformal {:.0}% intervals ŷ ± m ({} calibration rows): {}",
                    100.0 * task::INTERVAL_COVERAGE,
                    c.held_out_inputs.ncols(),
                    shown.join(", ")
                ));
                let each: Map<String, Value> = columns
                    .iter()
                    .cloned()
                    .zip(found.iter().map(|&m| json!({ "below": m, "above": m })))
                    .collect();
                calibration_json = Some(json!({ "rows": c.held_out_inputs.ncols(), "margins": each }));
                margins = Some(found);
            }
            let score = move |net: &Network<f32>| {
                task::regression(&net.output(test_x)?, truth, columns, test_weights, margins.as_deref())
            };
            (outcome, Box::new(score))
        }
        (Task::Regression { values, columns }, Task::Regression { values: truth, .. }) => {
            // Each column's row once per quantile, learned in standard units by the pinball
            // loss, sorted so that they never cross, then back in the column's units.
            // With --calibrate, a fifth of the rows is held out of the training to calibrate on.
            let calibration = calibration_split(args, x, values, None)?;
            let (x, values) = calibration.as_ref().map_or((x, values), |c| (&c.inputs, &c.targets));
            let q = args.quantiles.len();
            let (repeated, pinball) = quantile_targets(values, &args.quantiles)?;
            let scale = Standardize::fit(&repeated)?;
            let setup =
                |_: &DMatrix<f32>| Ok((pinball, vec![Box::new(Sorted::new(q)?) as Box<dyn Module<f32>>]));
            let training = training(None, repeated.nrows());
            let mut outcome =
                fit_task(args, x, &scale.apply(&repeated)?, training, setup, rng)?.then(scale.inverse())?;
            if let (Some(c), Outcome::Trained { net, .. }) = (&calibration, &mut outcome) {
                let margins = calibrate(net, q, &c.held_out_inputs, &c.held_out_targets, args)?;
                let shown: Vec<String> = columns
                    .iter()
                    .zip(&margins)
                    .map(|(c, &(below, above))| match args.asymmetric {
                        true => format!("{c} {below:+.4} below, {above:+.4} above"),
                        false => format!("{c} {below:+.4}"),
                    })
                    .collect();
                notes.push(format!(
                    "conformal margins of the outer quantiles ({} calibration rows): {}",
                    c.held_out_inputs.ncols(),
                    shown.join(", ")
                ));
                let margins: Map<String, Value> = columns
                    .iter()
                    .cloned()
                    .zip(margins.iter().map(|&(below, above)| json!({ "below": below, "above": above })))
                    .collect();
                calibration_json = Some(json!({ "rows": c.held_out_inputs.ncols(), "margins": margins }));
            }
            let quantiles = &args.quantiles;
            let score = |net: &Network<f32>| {
                task::quantile_regression(&net.output(test_x)?, truth, columns, quantiles, test_weights)
            };
            (outcome, Box::new(score))
        }
        (Task::MultiLabel { targets, labels }, Task::MultiLabel { targets: truth, .. }) => {
            // With --calibrate, a fifth of the rows is held out of the training to calibrate on.
            let calibration = calibration_split(args, x, targets, None)?;
            let (x, targets) = calibration.as_ref().map_or((x, targets), |c| (&c.inputs, &c.targets));
            let setup = |_: &DMatrix<f32>| Ok((BinaryCrossEntropy::new(), Vec::new()));
            let mut outcome = fit_task(args, x, targets, training(None, labels.len()), setup, rng)?;
            if let (Some(c), Outcome::Trained { net, .. }) = (&calibration, &mut outcome) {
                let fit =
                    calibrate_sigmoids(net, &c.held_out_inputs, &c.held_out_targets, args.temperatures)?;
                notes.push(fit.note());
                calibration_json = Some(fit.json().into());
            }
            let score = |net: &Network<f32>| {
                task::multi_label(&net.sigmoid_probabilities(test_x)?, truth, labels, test_weights)
            };
            (outcome, Box::new(score))
        }
        _ => unreachable!("both parts of a cut are read as one task"),
    };
    let Outcome::Trained { net, epochs, stopped_early } = outcome else { return Ok(None) };
    if narration == Narration::Full {
        print!("{net}");
        let ran = if stopped_early { "stopped after" } else { "ran all" };
        println!("{ran} {epochs} epochs; the best epoch's weights are kept");
        notes.iter().for_each(|note| println!("{note}"));
    }
    let scores = score(&net)?;
    Ok(Some(Evaluation { net, epochs, scores, calibration: calibration_json }))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.class_weights.is_some() && args.task != TaskKind::Classification {
        return Err("--class-weights: the classes of a classification only".into());
    }
    let sets_asked = args.set_coverage.is_some() || args.set_thresholds != SetThresholds::One;
    if sets_asked && args.task != TaskKind::Classification {
        return Err("--set-coverage, --set-thresholds: the prediction sets of a classification only".into());
    }
    if args.temperatures != Temperatures::One && args.task != TaskKind::MultiLabel {
        return Err("--temperatures: the labels of a multi-label task only (--task multi-label)".into());
    }
    if !(args.set_coverage() > 0.0 && args.set_coverage() < 1.0) {
        return Err(format!("--set-coverage: {} is not in (0, 1)", args.set_coverage()).into());
    }
    if args.gaussian && args.task != TaskKind::Regression {
        return Err("--gaussian: the target columns of a regression only (--task regression)".into());
    }
    if !args.quantiles.is_empty() && args.task != TaskKind::Regression {
        return Err("--quantiles: the target columns of a regression only (--task regression)".into());
    }
    if args.quantiles.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(
            format!("--quantiles: {:?} are not in increasing order, each once", args.quantiles).into()
        );
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    let (source, task) = match &args.csv {
        Some(path) => {
            let (csv, task) = Csv::read(&args, path)?;
            (Source::Csv(csv), task)
        }
        None => {
            let (x, labels) = synthetic(args.samples, &mut rng);
            let classes = (0..CLASSES).map(|c| c.to_string()).collect();
            (Source::Synthetic(x), Task::Classification { labels, classes })
        }
    };
    let cuts = cuts(&args, &source, &task)?;
    let task_name = args.task.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
    let mut json = match args.folds {
        None => {
            if let (Source::Csv(csv), Some(plan)) = (&source, &cuts[0].plan) {
                csv.print_plan(&args, plan)?;
            }
            println!("{}", task.describe());
            single_run(&args, &cuts[0], &task_name, &mut rng)?
        }
        Some(folds) => {
            println!("{}", task.describe());
            cross_validation(&args, &cuts, folds, &mut rng)?
        }
    };
    if let Some(path) = &args.metrics {
        json.insert("task".into(), task_name.into());
        if let Some(weights) =
            args.class_weights.or((args.task == TaskKind::Classification).then_some(Weights::Balanced))
        {
            json.insert("class_weights".into(), format!("{weights:?}").to_lowercase().into());
        }
        json.insert("seed".into(), args.seed.into());
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
        println!("metrics: {}", path.display());
    }
    Ok(())
}

/// One network trained and scored on the test rows: its report printed, the model saved if
/// asked; returns the fields of the `--metrics` JSON.
fn single_run(
    args: &Args,
    cut: &Cut,
    task_name: &str,
    rng: &mut StdRng,
) -> Result<Map<String, Value>, Box<dyn std::error::Error>> {
    let Some(Evaluation { net, epochs, scores, calibration }) = evaluate(args, cut, Narration::Full, rng)?
    else {
        return Ok(Map::new()); // --find-lr: nothing trained, nothing to save
    };
    print!("{}", scores.report);
    let mut json = scores.json;
    if let Some(calibration) = calibration {
        json.insert("calibration".into(), calibration);
    }
    if args.importance {
        json.insert("importance".into(), importance(args, &net, cut)?);
    }
    if let Some(path) = &args.model {
        // What the outputs are, and the plan of inputs, ride in the model file: a server maps
        // a table's rows to inputs and an output row to its name without the training table.
        let plan = cut.plan.as_ref().map(Features::to_json);
        let mut metadata: Vec<(&str, &str)> = vec![("task", task_name)];
        metadata.extend(scores.metadata.iter().map(|(k, v)| (*k, v.as_str())));
        metadata.extend(plan.as_deref().map(|json| ("features", json)));
        net.save_with_metadata(path, &metadata)?;
        println!("model: {} (takes raw features; what its outputs are in its metadata)", path.display());
        if let Some(plan) = &cut.plan {
            let plan_path = path.with_extension("features.json");
            plan.save(&plan_path)?;
            println!(
                "its inputs: {} (data::table::Features::load), and in its metadata (\"features\")",
                plan_path.display()
            );
        }
    }
    json.insert("epochs".into(), epochs.into());
    Ok(json)
}

/// Prints the permutation importance of each input column on `cut`'s test rows, under the
/// task's own loss, each row weighed by its `--weight` (softmax cross-entropy; for a
/// regression the squared error (of the means, with `--gaussian`) or
/// the pinball loss in standard units, as the network trained, so that every target column
/// counts alike; binary cross-entropy), most important first; returns it for the `--metrics`
/// JSON.
fn importance(args: &Args, net: &Network<f32>, cut: &Cut) -> Result<Value, Box<dyn std::error::Error>> {
    let (x, task) = &cut.test;
    let columns: Vec<(String, std::ops::Range<usize>)> = match &cut.plan {
        Some(plan) => plan.column_rows(),
        None => FEATURES.iter().enumerate().map(|(r, name)| (name.to_string(), r..r + 1)).collect(),
    };
    let groups: Vec<_> = columns.iter().map(|(_, rows)| rows.clone()).collect();
    let config = Permutation { seed: args.seed, ..Permutation::default() };
    let weights = cut.test_weights.as_deref();
    // Under the task's loss, each row weighed by its --weight if it has one.
    let importance = |net: &Network<f32>, loss: &dyn PerSampleLoss<f32, Target = DMatrix<f32>>, targets| {
        weighted_importance(net, x, loss, targets, weights, &groups, &config)
    };
    let found = match task {
        Task::Classification { labels, .. } => {
            weighted_importance(net, x, &SoftmaxCrossEntropy::new(), &labels[..], weights, &groups, &config)?
        }
        Task::Regression { values, .. } if args.gaussian => {
            // The means' squared error: the network's first rows only, through a layer that
            // keeps them (its weight the identity on them, zero on the variances).
            let r = values.nrows();
            let keep = DMatrix::from_fn(2 * r, r, |i, j| if i == j { 1.0 } else { 0.0 });
            let means = net.clone().push(Layer::from_parts(keep, None)?)?;
            let (scored, values) = in_standard_units(&means, values)?;
            importance(&scored, &MeanSquaredError, &values)?
        }
        Task::Regression { values, .. } if args.quantiles.is_empty() => {
            let (scored, values) = in_standard_units(net, values)?;
            importance(&scored, &MeanSquaredError, &values)?
        }
        Task::Regression { values, .. } => {
            let (repeated, pinball) = quantile_targets(values, &args.quantiles)?;
            let (scored, repeated) = in_standard_units(net, &repeated)?;
            importance(&scored, &pinball, &repeated)?
        }
        Task::MultiLabel { targets, .. } => importance(net, &BinaryCrossEntropy::new(), targets)?,
    };
    let mut ranked: Vec<(&String, &feedforward::importance::Importance)> =
        columns.iter().map(|(name, _)| name).zip(&found).collect();
    ranked.sort_by(|a, b| b.1.mean.total_cmp(&a.1.mean));
    let width = ranked.iter().map(|(name, _)| name.len()).max().unwrap_or(0).max("input".len());
    println!(
        "permutation importance on the test rows (the loss's growth, mean ± sd of {} shuffles):",
        config.repeats
    );
    for (name, i) in &ranked {
        println!("{name:>width$}  {:>12.6} ± {:.6}", i.mean, i.std);
    }
    let entries = ranked.iter().map(|(name, i)| json!({ "input": name, "mean": i.mean, "std": i.std }));
    Ok(Value::Array(entries.collect()))
}

/// `permutation_importance` under `loss`, or, when the rows have `weights`, under the loss
/// with each row weighed by its own (`SampleWeighted`).
fn weighted_importance<Y: Targets + ?Sized>(
    net: &Network<f32>,
    x: &DMatrix<f32>,
    loss: &dyn PerSampleLoss<f32, Target = Y>,
    targets: &Y,
    weights: Option<&[f64]>,
    groups: &[std::ops::Range<usize>],
    config: &Permutation,
) -> feedforward::Result<Vec<feedforward::importance::Importance>> {
    match weights {
        None => permutation_importance(net, x, loss, targets, groups, config),
        Some(weights) => {
            let weighted = WeightedTargets::new(targets, weights.to_vec())?;
            permutation_importance(net, x, &SampleWeighted::new(loss), &weighted, groups, config)
        }
    }
}

/// `net` followed by the standardization of `targets` (fitted on them), and the targets in
/// those standard units: a loss on the two weighs every target row alike, whatever its units.
fn in_standard_units(
    net: &Network<f32>,
    targets: &DMatrix<f32>,
) -> feedforward::Result<(Network<f32>, DMatrix<f32>)> {
    let scale = Standardize::fit(targets)?;
    let standardized = scale.apply(targets)?;
    Ok((net.clone().push(scale)?, standardized))
}

/// A network per cut, each scored on its part: a line per fold, then each headline score's
/// mean and standard deviation over the folds; returns the fields of the `--metrics` JSON.
fn cross_validation(
    args: &Args,
    cuts: &[Cut],
    folds: usize,
    rng: &mut StdRng,
) -> Result<Map<String, Value>, Box<dyn std::error::Error>> {
    let mut per_fold = Vec::new();
    let mut headlines: Vec<Vec<Headline>> = Vec::new();
    for (k, cut) in cuts.iter().enumerate() {
        let Evaluation { epochs, scores, .. } =
            evaluate(args, cut, Narration::Quiet, rng)?.ok_or("--find-lr runs no folds")?;
        let line: Vec<String> =
            scores.headline.iter().map(|h| format!("{} {:.4}", h.name, h.value)).collect();
        println!(
            "fold {} of {folds}: {} test rows, {} ({epochs} epochs)",
            k + 1,
            cut.test.0.ncols(),
            line.join(", ")
        );
        let mut json = scores.json;
        json.insert("epochs".into(), epochs.into());
        per_fold.push(Value::Object(json));
        headlines.push(scores.headline);
    }
    let (mut mean, mut sd) = (Map::new(), Map::new());
    let mut summary = Vec::new();
    // A score some fold lacks (a macro F1 with no class defined) is averaged over those that have it.
    for first in &headlines[0] {
        let values: Vec<f64> =
            headlines.iter().filter_map(|h| h.iter().find(|s| s.key == first.key)).map(|s| s.value).collect();
        let m = values.iter().sum::<f64>() / values.len() as f64;
        let s = (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / values.len() as f64).sqrt();
        summary.push(format!("{} {m:.4} ± {s:.4}", first.name));
        mean.insert(first.key.into(), m.into());
        sd.insert(first.key.into(), s.into());
    }
    println!("cross-validated over {folds} folds (mean ± standard deviation): {}", summary.join(", "));
    let mut json = Map::new();
    json.insert("folds".into(), folds.into());
    json.insert("per_fold".into(), per_fold.into());
    json.insert("mean".into(), mean.into());
    json.insert("sd".into(), sd.into());
    Ok(json)
}

/// The loss's class weights (1 each, or balanced on the training rows' `labels`), and the
/// count of each class.
fn class_weights(weights: Weights, labels: &[usize], classes: usize) -> (Vec<f64>, Vec<usize>) {
    let mut counts = vec![0usize; classes];
    labels.iter().for_each(|&c| counts[c] += 1);
    let weights: Vec<f64> = match weights {
        Weights::None => vec![1.0; classes],
        Weights::Balanced => {
            counts.iter().map(|&c| labels.len() as f64 / (classes as f64 * c.max(1) as f64)).collect()
        }
    };
    (weights, counts)
}
