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
//! `--unseen-categories all-zeros` encodes it as no known class.
//!
//! `--task` says what the target columns are (`task.rs`): `classification` (one column of
//! classes, the default), `regression` (one or more numeric columns, predicted in their own
//! units: the model ends in the inverse of a `Standardize` fitted on the training targets) or
//! `multi-label` (one or more 0/1 columns, a sigmoid per label).
//!
//! ```text
//! cargo run --release --example tabular
//! cargo run --release --example tabular -- --class-weights none --metrics tabular.json
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
//! cargo run --release --example tabular -- --csv movies.csv --task multi-label \
//!     --target comedy,drama,thriller --ignore title
//! ```

mod task;

use clap::{Parser, ValueEnum};
use feedforward::data::table::{
    Features, FillCategories, FillNumbers, Missing, Table, TableOptions, UnseenCategories,
};
use feedforward::train::{self, Batching, EarlyStopping, Split, SplitConfig, TrainConfig};
use feedforward::{
    Adam, AdamConfig, BinaryCrossEntropy, Loss, MeanSquaredError, MlpConfig, Network, SoftmaxCrossEntropy,
    Standardize, Targets,
};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::path::{Path, PathBuf};
use task::{Task, TaskKind};

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
    /// What the one-hot codes do with a category the training rows did not have (saved with
    /// the input plan).
    #[arg(long, value_enum, default_value_t = Unseen::Refuse, requires = "csv")]
    unseen_categories: Unseen,
    /// How the loss weighs the classes of a classification [default: balanced].
    #[arg(long, value_enum)]
    class_weights: Option<Weights>,
    /// Seed of the data, the splits, the weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
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
}

/// `--unseen-categories`: [`UnseenCategories`] as a command-line choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Unseen {
    /// An error naming its line.
    Refuse,
    /// No known class: all the code's rows 0.
    AllZeros,
}

impl Args {
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
        };
        Missing { numbers, categories, indicators: self.missing_indicators }
    }

    /// A fifth of `samples` held out for the test: the same rows of a table and of its matrix
    /// (`Table::split` and `train::split` cut alike, and so do their stratified twins).
    fn test_split(&self, samples: usize) -> SplitConfig {
        SplitConfig { held_out: samples / 5, seed: self.seed }
    }
}

/// The synthetic data's classes.
const CLASSES: usize = 3;

/// `n` samples, one per column: class `c` drawn at 90/8/2%; the features overlap between
/// classes, on scales a thousand times apart.
fn data(n: usize, rng: &mut StdRng) -> (DMatrix<f32>, Vec<usize>) {
    let labels: Vec<usize> = (0..n)
        .map(|_| match rng.random::<f32>() {
            u if u < 0.90 => 0,
            u if u < 0.98 => 1,
            _ => 2,
        })
        .collect();
    let x = DMatrix::from_fn(3, n, |feature, j| {
        let c = labels[j] as f32;
        match feature {
            0 => 1000.0 * (c + rng.random_range(-1.5..1.5)), // an amount in euros
            1 => 0.01 * (c * c + rng.random_range(-2.0..2.0)), // a rate
            _ => (30.0 * (1.0 + c) * rng.random::<f32>()).floor(), // a count of days
        }
    });
    (x, labels)
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// A CSV table's inputs (encoded by a plan fitted on its training rows), its targets, and the
/// plan, saved beside the model.
fn read_csv(args: &Args, path: &Path) -> Result<(DMatrix<f32>, Task, Features), Box<dyn std::error::Error>> {
    let options = TableOptions { missing: args.missing_values.clone(), ..TableOptions::default() };
    let table = Table::read_with(path, &options)?;
    let targets: Vec<&str> = args.target.iter().map(String::as_str).collect();
    let mut excluded: Vec<&str> = args.ignore.iter().map(String::as_str).collect();
    excluded.extend(&targets);
    excluded.extend(args.categorical.iter().map(String::as_str));
    let inputs = table.columns_except(&excluded);
    if let Some(c) = args.categorical.iter().find(|&c| args.target.contains(c) || args.ignore.contains(c)) {
        return Err(format!("--categorical {c:?}: that column is a target or ignored").into());
    }
    let categorical: Vec<&str> = args.categorical.iter().map(String::as_str).collect();
    let task = Task::read(&table, path, args.task, &targets)?;
    // The plan is fitted on the training rows (the rows `splits` keeps): the test rows'
    // values fill nothing.
    let config = args.test_split(table.rows());
    let training = match args.task {
        TaskKind::Classification => table.stratified_split(config, targets[0])?,
        _ => table.split(config)?,
    }
    .kept;
    let unseen = match args.unseen_categories {
        Unseen::Refuse => UnseenCategories::Refuse,
        Unseen::AllZeros => UnseenCategories::AllZeros,
    };
    let features =
        Features::fit_with(&training, &inputs, &categorical, args.missing())?.with_unseen_categories(unseen);
    println!("{}: {} rows; inputs {inputs:?}", path.display(), table.rows());
    for code in features.categorical() {
        println!("one-hot rows {:?}", code.feature_names());
    }
    // The columns with gaps in this table (every column gets a fill, for later tables).
    let mut fills = Vec::new();
    for &column in inputs.iter().chain(&categorical) {
        let (gaps, fill) = (table.missing_cells(column)?, features.fill(column));
        if let (1.., Some(fill)) = (gaps, fill) {
            fills.push(format!("{column} = {fill} ({gaps} of {})", table.rows()));
        }
    }
    if !fills.is_empty() {
        println!("missing values filled with {}", fills.join(", "));
    }
    if !features.indicators().is_empty() {
        println!(
            "missing-value rows {:?}",
            &features.names()[features.rows() - features.indicators().len()..]
        );
    }
    Ok((features.matrix::<f32>(&table)?, task, features))
}

/// The test split of `x` and `y`, and of the rest the rows to fit on with a fifth held out
/// for validation (early stopping), both cut by `cut`: `train::split`, or for classes
/// `train::stratified_split`, which holds out each class in its share.
type Splits<B> = (Split<f32, B>, Split<f32, B>);

fn splits<Y: Targets + ?Sized>(
    args: &Args,
    x: &DMatrix<f32>,
    y: &Y,
    cut: impl Fn(&DMatrix<f32>, &Y, SplitConfig) -> feedforward::Result<Split<f32, Y::Batch>>,
) -> feedforward::Result<Splits<Y::Batch>> {
    let test = cut(x, y, args.test_split(x.ncols()))?;
    let held_out = test.inputs.ncols() / 5;
    let fit = cut(&test.inputs, Y::view(&test.targets), SplitConfig { held_out, seed: args.seed + 1 })?;
    Ok((test, fit))
}

/// Trains a network with `outputs` output rows on `fit` (stopping early on its held-out rows):
/// standardized inputs, one hidden layer of 32 ReLUs, then `last` (a regression's way back to
/// its targets' units), by Adam. Returns the network and the number of epochs it ran.
fn train<L: Loss<f32> + ?Sized>(
    args: &Args,
    fit: &Split<f32, <L::Target as Targets>::Batch>,
    loss: &L,
    outputs: usize,
    last: Option<Standardize<f32>>,
    rng: &mut StdRng,
) -> Result<(Network<f32>, usize), Box<dyn std::error::Error>> {
    let mut net = Network::<f32>::mlp(&[fit.inputs.nrows(), 32, outputs], MlpConfig::default(), rng)?
        .insert(0, Standardize::fit(&fit.inputs)?)?;
    if let Some(last) = last {
        net = net.push(last)?;
    }
    print!("{net}");
    let mut optimizer = Adam::new(AdamConfig { learning_rate: 3e-3, ..AdamConfig::default() })?;
    let config = TrainConfig {
        epochs: 100,
        batching: Batching::Minibatch { size: 64, shuffle: true },
        seed: args.seed,
        early_stopping: Some(EarlyStopping { patience: 5, ..EarlyStopping::default() }),
        ..TrainConfig::default()
    };
    let report = train::fit(&mut net, &mut optimizer, loss, fit.data(), &config, |_, _, _| {})?;
    let ran = if report.stopped_early { "stopped after" } else { "ran all" };
    println!("{ran} {} epochs; the best epoch's weights are kept", report.epochs.len());
    Ok((net, report.epochs.len()))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.class_weights.is_some() && args.task != TaskKind::Classification {
        return Err("--class-weights: the classes of a classification only".into());
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    // A CSV table's input plan (saved beside the model) comes with its data.
    let (x, task, features) = match &args.csv {
        Some(path) => {
            let (x, task, features) = read_csv(&args, path)?;
            (x, task, Some(features))
        }
        None => {
            let (x, labels) = data(args.samples, &mut rng);
            (x, Task::Classification { labels, classes: (0..CLASSES).map(|c| c.to_string()).collect() }, None)
        }
    };
    println!("{}", task.describe());
    let (net, epochs, scores) = match &task {
        Task::Classification { labels, classes } => {
            let (test, fit) = splits(&args, &x, &labels[..], train::stratified_split)?;
            let weights =
                class_weights(args.class_weights.unwrap_or(Weights::Balanced), &fit.targets, classes.len());
            let loss = SoftmaxCrossEntropy::new().with_class_weights(weights)?;
            let (net, epochs) = train(&args, &fit, &loss, classes.len(), None, &mut rng)?;
            let scores = task::classification(
                &net.probabilities(&test.held_out_inputs)?,
                &test.held_out_targets,
                classes,
            )?;
            (net, epochs, scores)
        }
        Task::Regression { values, columns } => {
            let (test, fit) = splits(&args, &x, values, train::split)?;
            // The network learns standardized targets and gives them back in their units.
            let restore = Standardize::fit(&fit.targets)?.inverse();
            let (net, epochs) =
                train(&args, &fit, &MeanSquaredError, columns.len(), Some(restore), &mut rng)?;
            let scores =
                task::regression(&net.output(&test.held_out_inputs)?, &test.held_out_targets, columns)?;
            (net, epochs, scores)
        }
        Task::MultiLabel { targets, labels } => {
            let (test, fit) = splits(&args, &x, targets, train::split)?;
            let (net, epochs) = train(&args, &fit, &BinaryCrossEntropy::new(), labels.len(), None, &mut rng)?;
            let probabilities = net.sigmoid_probabilities(&test.held_out_inputs)?;
            (net, epochs, task::multi_label(&probabilities, &test.held_out_targets, labels)?)
        }
    };
    print!("{}", scores.report);
    let task_name = args.task.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
    if let Some(path) = &args.model {
        // What the outputs are rides in the model file: a server maps an output row to its
        // name without the training table.
        let mut metadata: Vec<(&str, &str)> = vec![("task", &task_name)];
        metadata.extend(scores.metadata.iter().map(|(k, v)| (*k, v.as_str())));
        net.save_with_metadata(path, &metadata)?;
        println!("model: {} (takes raw features; what its outputs are in its metadata)", path.display());
        if let Some(features) = &features {
            let plan = path.with_extension("features.json");
            features.save(&plan)?;
            println!("its inputs: {} (data::table::Features::load)", plan.display());
        }
    }
    if let Some(path) = &args.metrics {
        let mut json = scores.json;
        json.insert("task".into(), task_name.into());
        if let Some(weights) =
            args.class_weights.or((args.task == TaskKind::Classification).then_some(Weights::Balanced))
        {
            json.insert("class_weights".into(), format!("{weights:?}").to_lowercase().into());
        }
        json.insert("epochs".into(), epochs.into());
        json.insert("seed".into(), args.seed.into());
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
        println!("metrics: {}", path.display());
    }
    Ok(())
}

/// The loss's class weights: 1 each, or balanced on the training rows' `labels`.
fn class_weights(weights: Weights, labels: &[usize], classes: usize) -> Vec<f64> {
    let mut counts = vec![0usize; classes];
    labels.iter().for_each(|&c| counts[c] += 1);
    let weights: Vec<f64> = match weights {
        Weights::None => vec![1.0; classes],
        Weights::Balanced => {
            counts.iter().map(|&c| labels.len() as f64 / (classes as f64 * c.max(1) as f64)).collect()
        }
    };
    println!("training samples per class {counts:?}, class weights {weights:.2?}");
    weights
}
