//! The MNIST digit recognizer, end to end: load, train, evaluate, draw, save.
//!
//! ```text
//! cargo run --release --example mnist                  # default recipe, ~98% test accuracy
//! cargo run --release --example mnist -- --recipe seed # the original recipe, faithfully
//! cargo run --release --example mnist -- --help
//! ```
//!
//! The library does the learning; this folder is the application around it: the command line
//! and the printing (`main.rs`), the MNIST recipes (`recipe.rs`) and the pictures
//! (`pictures.rs`, drawn with `../shared/chart.rs`).

#[path = "../shared/chart.rs"]
mod chart;
#[path = "../shared/normalization.rs"]
mod normalization;
mod pictures;
mod recipe;

use clap::Parser;
use feedforward::data::{self, Split, csv};
use feedforward::metrics::{Calibration, ConfusionMatrix};
use feedforward::optim::{Momentum, OptimizerState, RmspropElementwise, SgdConfig};
use feedforward::train::{self, Averaging, Checkpointing, EarlyStopping, Event, RangeTest, Schedule};
use feedforward::{
    Activation, Adam, AdamConfig, AdamW, Init, Network, Normalization, Optimizer, Rmsprop, RmspropRule, Sgd,
    SoftmaxCrossEntropy, Temperature, weights,
};
use indicatif::{ProgressBar, ProgressStyle};
use nalgebra::DMatrix;
use normalization::NormalizationArg;
use pictures::History;
use rand::SeedableRng;
use rand::rngs::StdRng;
use recipe::{MNIST_CLASSES, Recipe};
use std::path::PathBuf;
use std::time::Instant;

/// Train and evaluate the 784-256-10 MNIST network.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Folder with the MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))]
    data_dir: PathBuf,
    /// `default` (minibatch elementwise RMSprop, all 60000 images, 10 epochs), `regularized`
    /// (the same with input and hidden dropout and label smoothing, 60 epochs), or `seed` (the
    /// original full-batch per-tensor RMSprop recipe on the first 42000 images).
    #[arg(long, default_value = "default")]
    recipe: Recipe,
    /// Hidden layer sizes, e.g. `512,256` (every recipe: 256).
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
    /// Instead of the MLP, a ResNet of this many residual blocks (`Network::resnet`): a layer
    /// to the --hidden width, blocks of normalization → a layer twice as wide → activation →
    /// dropout → a layer back, then normalization, activation and the output layer. Its
    /// normalization is BatchNorm unless --normalization says otherwise. Not with --recipe seed.
    #[arg(long)]
    blocks: Option<usize>,
    /// Activation of the hidden layers: relu, leaky_relu (or leaky_relu:SLOPE), tanh, sigmoid,
    /// gelu, silu (every recipe: relu).
    #[arg(long)]
    activation: Option<Activation>,
    /// Normalization between each hidden layer and its activation: none, batch-norm,
    /// layer-norm (every recipe: none).
    #[arg(long)]
    normalization: Option<NormalizationArg>,
    /// Drop probability after each hidden layer (regularized recipe: 0.3; others: 0).
    #[arg(long)]
    dropout: Option<f64>,
    /// Drop probability of the input pixels (regularized recipe: 0.1; others: 0).
    #[arg(long)]
    input_dropout: Option<f64>,
    /// Initialisation: he, he-uniform, xavier-normal, xavier-uniform, lecun-normal,
    /// pytorch-linear, or seed (the original's; the seed recipe's default; others: he).
    #[arg(long)]
    init: Option<InitArg>,
    /// Label smoothing of the cross-entropy, in [0, 1) (regularized recipe: 0.1; others: 0).
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Hold out the last N training images as a validation set (used to choose
    /// hyper-parameters; never the test set) and report the loss and accuracy on it.
    #[arg(long)]
    validation: Option<usize>,
    /// Passes over the training set (default recipe: 10). Conflicts with --iterations.
    #[arg(long, conflicts_with = "iterations")]
    epochs: Option<usize>,
    /// Training steps in all (seed recipe: 2000 full-batch iterations).
    #[arg(long)]
    iterations: Option<usize>,
    /// Samples per step, or `full` for full-batch (default recipe: 128; seed: full).
    #[arg(long)]
    batch_size: Option<BatchSize>,
    /// Learning rate (default recipe: 2e-3; seed: 0.5; sgd: 0.05; adam, adamw: 1e-3).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Optimizer: rmsprop (the recipes': elementwise, or per tensor for seed), sgd, adam, adamw.
    #[arg(long)]
    optimizer: Option<OptimizerArg>,
    /// Momentum of sgd (heavy ball) or rmsprop (default 0).
    #[arg(long)]
    momentum: Option<f64>,
    /// Weight decay of the weight matrices, not the biases (default 0; adamw: 0.01). Adam, SGD
    /// and RMSprop add it to the gradient; AdamW shrinks the weights directly.
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Stop when the validation loss has not improved for this many epochs, and keep the best
    /// epoch's weights (needs --validation).
    #[arg(long, requires = "validation")]
    early_stopping: Option<usize>,
    /// Write a checkpoint (model, optimizer state, position in the run) here after every
    /// epoch; `Network::load` reads the model from it.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Continue the run saved in this checkpoint (same flags as the run that wrote it).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Keep an exponential moving average of the weights with this decay (0.999: about the
    /// last thousand steps), validate it and end with it (`train::Averaging::Exponential`).
    #[arg(long, conflicts_with = "swa")]
    ema: Option<f64>,
    /// Average the weights at the end of each epoch from this one (1-based) on: stochastic
    /// weight averaging (`train::Averaging::Epochs`); best with `--schedule constant`.
    #[arg(long)]
    swa: Option<usize>,
    /// After training (and averaging), recompute every BatchNorm's running statistics from the
    /// final weights over the training images, in batches of the run's size
    /// (`Network::recompute_batch_norm`, PyTorch's `update_bn`).
    #[arg(long)]
    recompute_batch_norm: bool,
    /// Learning-rate schedule: `constant`, or `cosine` decay to 0 (default recipe: cosine;
    /// seed: constant).
    #[arg(long)]
    schedule: Option<ScheduleArg>,
    /// Seed of the initial weights, the shuffling and the sample pictures.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Train on the first N training images only (seed recipe: 42000).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Train on a Kaggle digit-recognizer train.csv instead of the IDX files.
    #[arg(long)]
    train_csv: Option<PathBuf>,
    /// Evaluate/predict on a Kaggle test.csv (labels optional) instead of the IDX test set.
    #[arg(long)]
    test_csv: Option<PathBuf>,
    /// Where to write the Kaggle submission (`ImageId,Label`, ImageId from 1) for the test set
    /// [default: OUT/submission.csv].
    #[arg(long)]
    submission: Option<PathBuf>,
    /// Save the trained weights (safetensors).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Load weights (safetensors, same --recipe) and skip training unless --epochs or
    /// --iterations is given.
    #[arg(long)]
    load: Option<PathBuf>,
    /// Write the run's figures as JSON.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// Folder for the pictures.
    #[arg(long, default_value = "target/mnist")]
    out: PathBuf,
    /// Skip writing pictures.
    #[arg(long)]
    no_pictures: bool,
    /// Draw a few test digits with their predictions in the terminal.
    #[arg(long)]
    show: bool,
    /// Print a report every N steps (seed recipe: 500; default recipe: every epoch).
    #[arg(long)]
    report_every: Option<usize>,
    /// Instead of training, run the learning-rate range test (`train::find_learning_rate`)
    /// with the optimizer and batch size chosen, on the training images (not the validation
    /// ones): 100 steps from a rate of 1e-7 to 10, printed with the rates it suggests and
    /// drawn to `lr_range.png` in --out (unless --no-pictures).
    #[arg(long, conflicts_with_all = ["load", "resume"])]
    find_lr: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum InitArg {
    He,
    HeUniform,
    XavierNormal,
    XavierUniform,
    LecunNormal,
    PytorchLinear,
    Seed,
}

impl From<InitArg> for Init {
    fn from(init: InitArg) -> Init {
        match init {
            InitArg::He => Init::He,
            InitArg::HeUniform => Init::HeUniform,
            InitArg::XavierNormal => Init::XavierNormal,
            InitArg::XavierUniform => Init::XavierUniform,
            InitArg::LecunNormal => Init::LecunNormal,
            InitArg::PytorchLinear => Init::PytorchLinear,
            InitArg::Seed => Init::SEED_RECIPE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OptimizerArg {
    Rmsprop,
    Sgd,
    Adam,
    Adamw,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ScheduleArg {
    Constant,
    Cosine,
}

#[derive(Clone, Copy, Debug)]
enum BatchSize {
    Full,
    Size(usize),
}

impl std::str::FromStr for BatchSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(BatchSize::Full),
            n => match n.parse::<usize>() {
                Ok(0) | Err(_) => {
                    Err(format!("{n:?} is not a batch size: expected a number >= 1 or \"full\""))
                }
                Ok(size) => Ok(BatchSize::Size(size)),
            },
        }
    }
}

/// `println!` that ends the program quietly when stdout is gone (e.g. piped into `head`),
/// where `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

fn main() {
    let args = Args::parse();
    let weights_to_load = args.load.clone();
    if let Err(Failures(errors)) = run(args) {
        for e in &errors {
            eprintln!("error: {e}");
            // The library says what is wrong; the flags that fix it are this program's.
            if let feedforward::Error::MissingFile { path, .. } = e {
                if Some(path) == weights_to_load.as_ref() {
                    eprintln!("hint: write a weights file first with --save PATH");
                } else if path.to_string_lossy().contains("-ubyte") {
                    eprintln!("hint: pass the folder of the MNIST files with --data-dir");
                }
            }
        }
        std::process::exit(1);
    }
}

/// Whether the test probabilities mean what they say: their expected calibration error and,
/// with a validation set, the temperature fitted on it (`Temperature::fit`) and the test ECE
/// under it. The saved weights stay as trained.
struct TestCalibration {
    /// The test images' reliability bins as trained.
    plain: Calibration,
    /// The temperature fitted on the validation images, and the test images' bins with the
    /// logits divided by it.
    scaled: Option<(Temperature, Calibration)>,
}

impl TestCalibration {
    /// The bins of the expected calibration error (Guo et al.'s 15).
    const BINS: usize = 15;

    fn measure(
        net: &Network<f32>,
        (images, labels): (&DMatrix<f32>, &[usize]),
        validation: Option<(&DMatrix<f32>, &[usize])>,
    ) -> feedforward::Result<Self> {
        // The test logits once; `softmax(z/T)` is what the network with the `Temperature`
        // module pushed would give, bit for bit.
        let logits = net.output(images)?;
        let bins = |t: f32| {
            let mut p = logits.map(|z| z / t);
            SoftmaxCrossEntropy::softmax_in_place(&mut p);
            Calibration::new(&p, labels, Self::BINS)
        };
        let plain = bins(1.0)?;
        let scaled = match validation {
            Some((validation_images, validation_labels)) => {
                let temperature = Temperature::fit(&net.output(validation_images)?, validation_labels)?;
                Some((temperature, bins(temperature.value() as f32)?))
            }
            None => None,
        };
        Ok(TestCalibration { plain, scaled })
    }

    /// The reliability curves to draw: as trained, and with the temperature.
    fn curves(&self) -> Vec<(&'static str, &Calibration)> {
        let mut curves = vec![("as trained", &self.plain)];
        curves.extend(self.scaled.as_ref().map(|(_, scaled)| ("temperature from validation", scaled)));
        curves
    }
}

impl std::fmt::Display for TestCalibration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "test calibration: mean confidence {:.2}% against accuracy {:.2}%, ECE {:.4} ({} bins)",
            100.0 * self.plain.confidence(),
            100.0 * self.plain.accuracy(),
            self.plain.expected_calibration_error(),
            Self::BINS
        )?;
        if let Some((temperature, scaled)) = &self.scaled {
            write!(
                f,
                "; logits divided by the temperature fitted on the validation images, {:.3}: ECE {:.4}",
                temperature.value(),
                scaled.expected_calibration_error()
            )?;
        }
        Ok(())
    }
}

/// What stopped a run: one error from a step it cannot go on without, or every output that
/// could not be written (each output is attempted whatever became of the others).
struct Failures(Vec<feedforward::Error>);

impl From<feedforward::Error> for Failures {
    fn from(e: feedforward::Error) -> Self {
        Failures(vec![e])
    }
}

fn run(args: Args) -> Result<(), Failures> {
    let start = Instant::now();
    let recipe = args.recipe;
    let mut rng = StdRng::seed_from_u64(args.seed);

    let train_limit = args.train_limit.or(recipe.default_train_limit()).unwrap_or(usize::MAX);
    let train_set = match &args.train_csv {
        Some(path) => csv::read_kaggle_csv(path)?.take(train_limit),
        None => data::load_mnist_first(&args.data_dir, Split::Train, train_limit)?,
    };
    let (train_set, validation_set) = match args.validation {
        Some(n) if n >= train_set.len() => {
            return Err(feedforward::Error::InvalidHyperparameter {
                name: "validation",
                value: n as f64,
                requirement: "must leave at least one training image",
            }
            .into());
        }
        Some(n) => {
            let keep = train_set.len() - n;
            let (train, validation) = train_set.split_at(keep);
            (train, Some(validation))
        }
        None => (train_set, None),
    };
    let test_limit = args.test_limit.unwrap_or(usize::MAX);
    let test_set = match &args.test_csv {
        Some(path) => csv::read_kaggle_csv(path)?.take(test_limit),
        None => data::load_mnist_first(&args.data_dir, Split::Test, test_limit)?,
    };
    say!(
        "data: {} training images{}, {} test images{}",
        train_set.len(),
        validation_set
            .as_ref()
            .map_or(String::new(), |v| format!(" (and {} held out for validation)", v.len())),
        test_set.len(),
        if test_set.labels().is_none() { " (unlabelled)" } else { "" }
    );

    let mut spec = recipe.network_spec();
    if let Some(hidden) = &args.hidden {
        spec.hidden.clone_from(hidden);
    }
    spec.layers.hidden_activation = args.activation.unwrap_or(spec.layers.hidden_activation);
    spec.layers.init = args.init.map_or(spec.layers.init, Init::from);
    spec.layers.dropout = args.dropout.unwrap_or(spec.layers.dropout);
    spec.layers.input_dropout = args.input_dropout.unwrap_or(spec.layers.input_dropout);
    spec.layers.normalization = args.normalization.map_or(spec.layers.normalization, Normalization::from);
    if let Some(blocks) = args.blocks {
        if recipe == Recipe::Seed {
            return Err(feedforward::Error::InvalidHyperparameter {
                name: "--blocks",
                value: blocks as f64,
                requirement: "is not for --recipe seed, which is its own network (784-256-10)",
            }
            .into());
        }
        spec.blocks = Some(blocks);
        spec.layers.normalization = args.normalization.map_or(Normalization::BatchNorm, Normalization::from);
    }
    let loss = match args.label_smoothing {
        Some(epsilon) => SoftmaxCrossEntropy::new().with_label_smoothing(epsilon)?,
        None => recipe.loss(),
    };
    let mut net: Network<f32> = spec.build(&mut rng)?;
    let mut optimizer = build_optimizer(&args)?;
    if let Some(path) = &args.load {
        weights::load_into(&mut net, path)?;
        say!("loaded weights from {}", path.display());
    }
    say!(
        "recipe {recipe:?}: {}, {} activation, normalization {:?}, {:?} init, dropout {} (input {}), label smoothing {}, {} parameters, L2 alpha {}, {}, learning rate {}",
        spec.sizes(),
        spec.layers.hidden_activation.name(),
        spec.layers.normalization,
        spec.layers.init,
        spec.layers.dropout,
        spec.layers.input_dropout,
        loss.label_smoothing(),
        net.parameter_count(),
        net.l2(),
        optimizer_name(&args),
        // As given (the f32 the optimizer holds may print rounded).
        learning_rate(&args)
    );

    let train_labels = train_set.require_labels("the training set")?;
    if args.find_lr {
        let test = RangeTest {
            batch_size: batch_size(&args).unwrap_or(train_set.len()),
            seed: args.seed,
            ..RangeTest::default()
        };
        let found = train::find_learning_rate(
            &net,
            optimizer.as_mut(),
            &loss,
            train::Data::new(train_set.images(), train_labels),
            &test,
        )?;
        say!("{}", found.to_string().trim_end());
        if !args.no_pictures {
            pictures::range_test(&args.out, &found)?;
            say!("picture: {}", args.out.join("lr_range.png").display());
        }
        return Ok(());
    }
    let mut history = History::default();
    let should_train = args.load.is_none() || args.epochs.is_some() || args.iterations.is_some();
    let train_seconds = if should_train {
        let t = Instant::now();
        let validation = validation_set.as_ref().map(|v| (v.images(), v.labels().unwrap_or(&[])));
        let data = train::Data { inputs: train_set.images(), targets: train_labels, validation };
        // The test curve is for the picture only (never for a choice), and its cost is not
        // training time.
        let test = test_set.labels().filter(|_| !args.no_pictures).map(|l| (test_set.images(), l));
        train_net(&args, &mut net, optimizer.as_mut(), &loss, data, test, &mut history)?;
        t.elapsed().as_secs_f64() - history.curve_seconds
    } else {
        0.0
    };

    let evaluation = net.evaluate(train_set.images(), &loss, train_labels)?;
    let validation_labelled = match &validation_set {
        Some(v) => Some((v.images(), v.require_labels("the validation set")?)),
        None => None,
    };
    let validation = match validation_labelled {
        Some((images, labels)) => Some(net.evaluate(images, &loss, labels)?),
        None => None,
    };
    let final_loss = evaluation.loss;
    let train_accuracy = evaluation.accuracy.unwrap_or(f64::NAN);
    let test_pred = net.predict(test_set.images())?;
    let confusion =
        test_set.labels().map(|l| ConfusionMatrix::new(MNIST_CLASSES, &test_pred, l)).transpose()?;
    let calibration = test_set
        .labels()
        .map(|l| TestCalibration::measure(&net, (test_set.images(), l), validation_labelled))
        .transpose()?;

    let samples = history.samples as f64;
    let samples_per_second = if train_seconds > 0.0 { samples / train_seconds } else { 0.0 };
    say!();
    say!("final training loss: {final_loss:.4} (cross-entropy + L2, whole training set)");
    say!("train accuracy: {:.2}%", 100.0 * train_accuracy);
    if let (Some(v), Some(set)) = (&validation, &validation_set) {
        let accuracy = 100.0 * v.accuracy.unwrap_or(f64::NAN);
        say!(
            "validation accuracy: {accuracy:.2}%, loss {:.4} (the last {} training images)",
            v.loss,
            set.len()
        );
    }
    match &confusion {
        Some(c) => {
            say!("test accuracy:  {:.2}%", 100.0 * c.accuracy());
            if let Some(calibration) = &calibration {
                say!("{calibration}");
            }
            say!("\nconfusion matrix (rows: true digit, columns: predicted):\n{c}");
        }
        None => say!("test accuracy:  n/a (the test set has no labels)"),
    }
    say!(
        "training: {} steps, {:.2} s, {:.0} samples/s; whole run {:.2} s",
        history.steps,
        train_seconds,
        samples_per_second,
        start.elapsed().as_secs_f64()
    );

    if args.show {
        for i in 0..3.min(test_set.len()) {
            let truth = test_set.labels().map_or("?".to_string(), |l| l[i].to_string());
            say!("test image {}: predicted {}, true {truth}", i + 1, test_pred[i]);
            // The drawing ends in a newline of its own.
            let drawing = pictures::ascii_digit(test_set.image(i), 28);
            say!("{}", drawing.strip_suffix('\n').unwrap_or(&drawing));
        }
    }

    // The outputs, the trained weights first (the most costly to lose); each one is attempted
    // whatever became of the others, and every failure is reported.
    let mut failures = Vec::new();
    let mut attempt = |written: feedforward::Result<String>| match written {
        Ok(what) => say!("{what}"),
        Err(e) => failures.push(e),
    };
    if let Some(path) = &args.save {
        attempt(weights::save(&net, path).map(|()| format!("weights: {}", path.display())));
    }
    let submission = args.submission.clone().unwrap_or_else(|| args.out.join("submission.csv"));
    attempt(csv::write_submission(&submission, &test_pred).map(|()| {
        format!(
            "submission: {} ({} row{})",
            submission.display(),
            test_pred.len(),
            if test_pred.len() == 1 { "" } else { "s" }
        )
    }));
    if let Some(path) = &args.metrics {
        let scaled = calibration.as_ref().and_then(|c| c.scaled.as_ref());
        let json = serde_json::json!({
            "recipe": format!("{recipe:?}").to_lowercase(),
            "test_accuracy": confusion.as_ref().map(ConfusionMatrix::accuracy),
            "train_accuracy": train_accuracy,
            "validation_accuracy": validation.and_then(|v| v.accuracy),
            "validation_loss": validation.map(|v| v.loss),
            "test_ece": calibration.as_ref().map(|c| c.plain.expected_calibration_error()),
            "temperature": scaled.map(|(t, _)| t.value()),
            "test_ece_at_temperature": scaled.map(|(_, c)| c.expected_calibration_error()),
            "final_loss": final_loss,
            "steps": history.steps,
            "train_samples": train_set.len(),
            "test_samples": test_set.len(),
            "train_seconds": train_seconds,
            "total_seconds": start.elapsed().as_secs_f64(),
            "samples_per_second": samples_per_second,
            "seed": args.seed,
        });
        let text = serde_json::to_string_pretty(&json).expect("a JSON value always serializes");
        let written =
            std::fs::write(path, text).map_err(|e| feedforward::Error::Io { path: path.clone(), source: e });
        attempt(written.map(|()| format!("metrics: {}", path.display())));
    }
    if !args.no_pictures {
        let reliability = calibration.as_ref().map(TestCalibration::curves).unwrap_or_default();
        let pictures =
            pictures::Pictures { test_pred: &test_pred, history: &history, reliability: &reliability };
        let drawn = pictures::draw(&args.out, &train_set, &test_set, pictures, &mut rng);
        let reliability_png = if reliability.is_empty() { "" } else { ",reliability" };
        attempt(drawn.map(|()| {
            format!(
                "pictures: {}/{{samples,misclassified,loss,accuracy{reliability_png}}}.png",
                args.out.display()
            )
        }));
    }
    if failures.is_empty() { Ok(()) } else { Err(Failures(failures)) }
}

fn train_net(
    args: &Args,
    net: &mut Network<f32>,
    optimizer: &mut dyn Optimizer<f32>,
    loss: &SoftmaxCrossEntropy,
    data: train::Data<'_, f32, [usize]>,
    test: Option<(&DMatrix<f32>, &[usize])>,
    history: &mut History,
) -> feedforward::Result<()> {
    let samples = data.inputs.ncols();
    let recipe = args.recipe;
    let batch_size = batch_size(args);
    let steps_per_epoch = batch_size.map_or(1, |b| samples.div_ceil(b));
    let full_batch = steps_per_epoch == 1;
    let epochs = match (args.epochs, args.iterations) {
        (Some(e), _) => e,
        (None, Some(i)) => i.div_ceil(steps_per_epoch),
        (None, None) => recipe.default_epochs(),
    };
    let mut config = recipe.train_config(epochs, batch_size, args.seed);
    config.max_steps = args.iterations;
    config.early_stopping = args.early_stopping.map(|patience| EarlyStopping { patience, min_delta: 0.0 });
    config.checkpoint = args.checkpoint.clone().map(Checkpointing::new);
    config.resume.clone_from(&args.resume);
    config.averaging = match (args.ema, args.swa) {
        (Some(decay), _) => Some(Averaging::Exponential { decay }),
        (None, Some(from_epoch)) => Some(Averaging::Epochs { from_epoch }),
        (None, None) => None,
    };
    match args.schedule {
        Some(ScheduleArg::Constant) => config.schedule = Schedule::Constant,
        Some(ScheduleArg::Cosine) => config.schedule = Schedule::Cosine { final_fraction: 0.0 },
        None => {}
    }
    let report_every = args.report_every.unwrap_or(match recipe {
        Recipe::Seed => 500,
        Recipe::Default | Recipe::Regularized => steps_per_epoch,
    });

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps {elapsed_precise} {msg}")
            .expect("the template is valid"),
    );
    let (mut window_loss, mut window_correct, mut window_samples) = (0.0, 0.0, 0usize);
    let seed_rule = recipe == Recipe::Seed && args.optimizer.is_none_or(|o| o == OptimizerArg::Rmsprop);
    let fitted = train::fit(net, optimizer, loss, data, &config, |event, net, opt| {
        let p = match event {
            Event::Step(p) => p,
            Event::Epoch(e) => {
                let epoch = e.epoch as f64;
                history.train_accuracy.push((epoch, 100.0 * e.train_accuracy.unwrap_or(f64::NAN)));
                // At most about 100 points on the test curve.
                if let Some((x, y)) = test
                    && (e.epoch.is_multiple_of(config.epochs.div_ceil(100)) || e.epoch == config.epochs)
                {
                    let t = Instant::now();
                    let accuracy = net.accuracy(x, y).unwrap_or(f64::NAN);
                    history.test_accuracy.push((epoch, 100.0 * accuracy));
                    history.curve_seconds += t.elapsed().as_secs_f64();
                }
                if let Some(v) = e.validation {
                    history.validation_accuracy.push((epoch, 100.0 * v.accuracy.unwrap_or(f64::NAN)));
                    history.validation_loss.push((e.steps as f64, v.loss));
                    let line = format!(
                        "epoch {:>4}: validation loss {:.4}, accuracy {:.2}%; training loss {:.4} (mean over the epoch), learning rate {:.3e}",
                        e.epoch,
                        v.loss,
                        100.0 * v.accuracy.unwrap_or(f64::NAN),
                        e.train_loss,
                        e.learning_rate
                    );
                    bar.suspend(|| say!("{line}"));
                }
                return;
            }
        };
        let r = p.report;
        // Softmax cross-entropy always reports an accuracy.
        let accuracy = r.accuracy.unwrap_or(f64::NAN);
        bar.set_length(p.total_steps as u64);
        bar.set_position(p.step as u64);
        history.loss.push((p.step as f64, r.loss));
        history.steps = p.step;
        history.samples += r.batch_size;
        window_loss += r.loss * r.batch_size as f64;
        window_correct += accuracy * r.batch_size as f64;
        window_samples += r.batch_size;
        if p.step.is_multiple_of(10) || p.step == p.total_steps {
            bar.set_message(format!("loss {:.4} acc {:.2}%", r.loss, 100.0 * accuracy));
        }
        if p.step.is_multiple_of(report_every) || p.step == p.total_steps {
            // Full batch: the step's own loss is the training loss (as the original prints it).
            // Minibatches: one batch is noise, so report the mean since the last report.
            let (loss, accuracy, over) = if full_batch {
                (r.loss, accuracy, "this iteration, whole training set".to_string())
            } else {
                let n = window_samples as f64;
                (
                    window_loss / n,
                    window_correct / n,
                    format!("mean over the last {} steps", report_every.min(p.step)),
                )
            };
            let line = format!(
                "epoch {:>4} step {:>5}/{}: loss {loss:.4}, training accuracy {:.2}% ({over})",
                p.epoch,
                p.step,
                p.total_steps,
                100.0 * accuracy,
            );
            bar.suspend(|| {
                say!("{line}");
                if seed_rule {
                    print_sanity_checks(net, opt);
                }
            });
            (window_loss, window_correct, window_samples) = (0.0, 0.0, 0);
        }
    })?;
    if let Some(best) = fitted.best_epoch {
        let how = if fitted.stopped_early { "stopped early" } else { "ran every epoch" };
        bar.suspend(|| say!("early stopping: {how}; keeping the weights of epoch {best}"));
    }
    bar.finish_and_clear();
    if args.recompute_batch_norm {
        let recomputed = net.recompute_batch_norm(data.inputs, batch_size.unwrap_or(samples))?;
        say!("BatchNorm running statistics recomputed over the training images: {recomputed} module(s)");
    }
    Ok(())
}

/// The original recipe's sanity checks: per tensor, its `g` and effective step, and the norm of
/// its last gradient (the per-tensor RMSprop's `g` read from its state).
fn print_sanity_checks(net: &Network<f32>, opt: &dyn Optimizer<f32>) {
    let state = opt.state().unwrap_or(OptimizerState { kind: String::new(), steps: 0, buffers: Vec::new() });
    let g = |k: usize| {
        let name = format!("mean_square_norm.{k}");
        state.buffers.iter().find(|(n, _)| *n == name).map_or(f32::NAN, |(_, v)| v[0])
    };
    let names = ["W0", "b", "W1", "b1"];
    for (k, p) in net.parameters().enumerate() {
        say!(
            "    {:<3} g = {:>10.4e}   eta/sqrt(g+eps) = {:>10.4e}   |grad| = {:.4e}",
            names.get(k).copied().unwrap_or("?"),
            g(k),
            opt.learning_rate() / (g(k) + 1e-3).sqrt(),
            p.grad().norm()
        );
    }
}

/// Samples per step: as given, or the recipe's (`None`: full batch).
fn batch_size(args: &Args) -> Option<usize> {
    match args.batch_size {
        Some(BatchSize::Full) => None,
        Some(BatchSize::Size(n)) => Some(n),
        None => args.recipe.default_batch_size(),
    }
}

/// The learning rate: as given, or the optimizer's default.
fn learning_rate(args: &Args) -> f64 {
    args.learning_rate.unwrap_or(match args.optimizer {
        None | Some(OptimizerArg::Rmsprop) => args.recipe.default_learning_rate(),
        Some(OptimizerArg::Sgd) => 0.05,
        Some(OptimizerArg::Adam | OptimizerArg::Adamw) => 1e-3,
    })
}

/// The optimizer as printed.
fn optimizer_name(args: &Args) -> String {
    let name = match (args.optimizer, args.recipe) {
        (None | Some(OptimizerArg::Rmsprop), Recipe::Seed) => "per-tensor RMSprop".to_string(),
        (None | Some(OptimizerArg::Rmsprop), _) => "elementwise RMSprop".to_string(),
        (Some(o), _) => format!("{o:?}").to_lowercase(),
    };
    let momentum = args.momentum.map_or(String::new(), |m| format!(", momentum {m}"));
    let decay = args.weight_decay.map_or(String::new(), |w| format!(", weight decay {w}"));
    format!("{name}{momentum}{decay}")
}

/// The optimizer the flags ask for.
fn build_optimizer(args: &Args) -> feedforward::Result<Box<dyn Optimizer<f32>>> {
    let lr = learning_rate(args);
    // The recipe's check: finite, > 0, and representable in f32 (named as given).
    let recipe_rmsprop = args.recipe.optimizer::<f32>(Some(lr))?;
    let lr = lr as f32;
    let momentum = args.momentum.unwrap_or(0.0) as f32;
    let weight_decay = args.weight_decay.map(|w| w as f32);
    Ok(match args.optimizer {
        None | Some(OptimizerArg::Rmsprop) => match recipe_rmsprop.rule() {
            RmspropRule::Elementwise(settings) => {
                let settings =
                    RmspropElementwise { momentum, weight_decay: weight_decay.unwrap_or(0.0), ..settings };
                Box::new(Rmsprop::new(lr, RmspropRule::Elementwise(settings))?)
            }
            RmspropRule::PerTensor { .. } if args.momentum.is_some() || args.weight_decay.is_some() => {
                return Err(feedforward::Error::InvalidHyperparameter {
                    name: "momentum or weight decay",
                    value: 0.0,
                    requirement: "has no meaning for the seed recipe's per-tensor RMSprop (use --optimizer)",
                });
            }
            RmspropRule::PerTensor { .. } => Box::new(recipe_rmsprop),
        },
        Some(OptimizerArg::Sgd) => {
            let momentum =
                if momentum > 0.0 { Momentum::Heavy { momentum, dampening: 0.0 } } else { Momentum::None };
            let weight_decay = weight_decay.unwrap_or(0.0);
            Box::new(Sgd::new(SgdConfig {
                learning_rate: lr,
                momentum,
                weight_decay,
                ..SgdConfig::default()
            })?)
        }
        Some(OptimizerArg::Adam) => {
            let weight_decay = weight_decay.unwrap_or(0.0);
            Box::new(Adam::new(AdamConfig { learning_rate: lr, weight_decay, ..AdamConfig::default() })?)
        }
        Some(OptimizerArg::Adamw) => {
            let weight_decay = weight_decay.unwrap_or(0.01);
            Box::new(AdamW::new(AdamConfig { learning_rate: lr, weight_decay, ..AdamConfig::adamw() })?)
        }
    })
}
