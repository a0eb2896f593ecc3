//! Tabular classification with rare classes: three features in their own units (an amount in
//! euros, a rate, a count of days), three classes at about 90%, 8% and 2%. The run holds out a
//! test set, standardizes inside the network (fitted on the training part only), weighs the
//! classes, stops early on a validation set, reports per-class recall, precision and F1, and
//! saves a model that takes raw features.
//!
//! Balanced class weights find more of the rare classes (higher recall) at the price of more
//! false alarms (lower precision, accuracy and macro F1): compare `--class-weights none`.
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
//! ```

use clap::{Parser, ValueEnum};
use feedforward::data::table::{
    Features, FillCategories, FillNumbers, Missing, Table, TableOptions, UnseenCategories,
};
use feedforward::metrics::ConfusionMatrix;
use feedforward::train::{self, Batching, EarlyStopping, SplitConfig, TrainConfig};
use feedforward::{Adam, AdamConfig, MlpConfig, Network, SoftmaxCrossEntropy, Standardize};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::path::PathBuf;

/// Classify tabular data: synthetic with rare classes, or a CSV table of your own.
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
    /// The CSV column holding the classes (words or numbers).
    #[arg(long, requires = "csv")]
    target: Option<String>,
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
    /// How the loss weighs the classes.
    #[arg(long, value_enum, default_value_t = Weights::Balanced)]
    class_weights: Weights,
    /// Seed of the data, the splits, the weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Save the trained model (safetensors, with its scaling) to this file.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Write the test metrics (accuracy, recall and F1 per class, macro F1) as JSON.
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

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    // A fifth of the samples is held out for the test: the same rows of a table and of its
    // matrix (`Table::split` and `train::split` cut alike).
    let test_split = |samples: usize| SplitConfig { held_out: samples / 5, seed: args.seed };
    // A CSV table's input plan (saved beside the model) comes with its data.
    let (x, y, class_names, features) = match (&args.csv, &args.target) {
        (Some(path), Some(target)) => {
            let options = TableOptions { missing: args.missing_values.clone(), ..TableOptions::default() };
            let table = Table::read_with(path, &options)?;
            let mut excluded: Vec<&str> = args.ignore.iter().map(String::as_str).collect();
            excluded.push(target);
            excluded.extend(args.categorical.iter().map(String::as_str));
            let inputs = table.columns_except(&excluded);
            if let Some(c) = args.categorical.iter().find(|&c| c == target || args.ignore.contains(c)) {
                return Err(format!("--categorical {c:?}: that column is the target or ignored").into());
            }
            let categorical: Vec<&str> = args.categorical.iter().map(String::as_str).collect();
            // The plan is fitted on the training rows: the test rows' values fill nothing.
            let training = table.split(test_split(table.rows()))?.kept;
            let unseen = match args.unseen_categories {
                Unseen::Refuse => UnseenCategories::Refuse,
                Unseen::AllZeros => UnseenCategories::AllZeros,
            };
            let features = Features::fit_with(&training, &inputs, &categorical, args.missing())?
                .with_unseen_categories(unseen);
            let labels = table.labels(target)?;
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
            (features.matrix::<f32>(&table)?, labels.indices, labels.classes, Some(features))
        }
        _ => {
            let (x, y) = data(args.samples, &mut rng);
            (x, y, (0..CLASSES).map(|c| c.to_string()).collect(), None)
        }
    };
    let classes = class_names.len();
    let names: Vec<String> = class_names.iter().enumerate().map(|(i, n)| format!("{i} = {n}")).collect();
    println!("classes: {}", names.join(", "));
    let test = train::split(&x, &y[..], test_split(x.ncols()))?;
    let held_out = test.inputs.ncols() / 5;
    let fit = train::split(&test.inputs, &test.targets[..], SplitConfig { held_out, seed: args.seed + 1 })?;

    let mut counts = vec![0usize; classes];
    fit.targets.iter().for_each(|&c| counts[c] += 1);
    let weights: Vec<f64> = match args.class_weights {
        Weights::None => vec![1.0; classes],
        Weights::Balanced => {
            counts.iter().map(|&c| fit.targets.len() as f64 / (classes as f64 * c.max(1) as f64)).collect()
        }
    };
    println!("training samples per class {counts:?}, class weights {weights:.2?}");
    let loss = SoftmaxCrossEntropy::new().with_class_weights(weights)?;

    let mut net = Network::<f32>::mlp(&[x.nrows(), 32, classes], MlpConfig::default(), &mut rng)?
        .insert(0, Standardize::fit(&fit.inputs)?)?;
    print!("{net}");
    let mut optimizer = Adam::new(AdamConfig { learning_rate: 3e-3, ..AdamConfig::default() })?;
    let config = TrainConfig {
        epochs: 100,
        batching: Batching::Minibatch { size: 64, shuffle: true },
        seed: args.seed,
        early_stopping: Some(EarlyStopping { patience: 5, ..EarlyStopping::default() }),
        ..TrainConfig::default()
    };
    let report = train::fit(&mut net, &mut optimizer, &loss, fit.data(), &config, |_, _, _| {})?;
    println!("stopped after {} epochs; the best epoch's weights are kept", report.epochs.len());

    let m = ConfusionMatrix::new(classes, &net.predict(&test.held_out_inputs)?, &test.held_out_targets)?
        .with_class_names(class_names.clone())?;
    println!("test set, {} samples:\n{m}", test.held_out_targets.len());
    let macro_f1 = m.macro_f1().unwrap_or(f64::NAN);
    println!("accuracy {:.2}%, macro F1 {macro_f1:.3}", 100.0 * m.accuracy());
    if let Some(path) = &args.model {
        // The class names ride in the model file: a server maps an output row to its name.
        net.save_with_metadata(path, &[("classes", &serde_json::to_string(&class_names)?)])?;
        println!("model: {} (takes raw features; class names in its metadata)", path.display());
        if let Some(features) = &features {
            let plan = path.with_extension("features.json");
            features.save(&plan)?;
            println!("its inputs: {} (data::table::Features::load)", plan.display());
        }
    }
    if let Some(path) = &args.metrics {
        let json = serde_json::json!({
            "class_weights": format!("{:?}", args.class_weights).to_lowercase(),
            "test_accuracy": m.accuracy(),
            "test_recall": m.recall(),
            "test_f1": m.f1(),
            "test_macro_f1": m.macro_f1(),
            "epochs": report.epochs.len(),
            "seed": args.seed,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
        println!("metrics: {}", path.display());
    }
    Ok(())
}
