//! Regression: a small network fits `y = sin(x)` on [-π, π] with mean squared error.
//!
//! ```text
//! cargo run --release --example regression                         # prints the test MSE, draws the fit
//! cargo run --release --example regression -- --metrics fit.json   # and writes {"test_mse": …}
//! ```
//!
//! Training points are drawn at random from [-π, π]; the test points are an even grid over the
//! same interval. The input is scaled to [-1, 1] (x/π) before it reaches the network.

#[path = "shared/chart.rs"]
mod chart;

use chart::{BLUE, Legend, LineChart, RED, Scale, Series};
use clap::Parser;
use feedforward::metrics::RegressionMetrics;
use feedforward::train::{self, Batching, Schedule, TrainConfig};
use feedforward::{MeanSquaredError, MlpConfig, Network, Rmsprop};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::f64::consts::PI;
use std::path::PathBuf;
use std::time::Instant;

/// Fit sin(x) on [-π, π] with a 1-64-64-1 ReLU network.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Passes over the training points.
    #[arg(long, default_value_t = 300)]
    epochs: usize,
    /// Training points, drawn uniformly from [-π, π].
    #[arg(long, default_value_t = 1024)]
    samples: usize,
    /// Seed of the initial weights, the training points and the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the run's figures (test_mse, test_r2, train_mse, seconds) as JSON.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// Folder for the picture `fit.png`.
    #[arg(long, default_value = "target/regression")]
    out: PathBuf,
    /// Skip the picture.
    #[arg(long)]
    no_pictures: bool,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Inputs `x/π` (one row) and targets `sin x`, one sample per column.
fn samples(xs: &[f64]) -> (DMatrix<f32>, DMatrix<f32>) {
    let inputs = DMatrix::from_fn(1, xs.len(), |_, j| (xs[j] / PI) as f32);
    let targets = DMatrix::from_fn(1, xs.len(), |_, j| xs[j].sin() as f32);
    (inputs, targets)
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let train_x: Vec<f64> = (0..args.samples).map(|_| rng.random_range(-PI..=PI)).collect();
    let test_x: Vec<f64> = (0..501).map(|i| -PI + 2.0 * PI * i as f64 / 500.0).collect();
    let (x, y) = samples(&train_x);
    let (tx, ty) = samples(&test_x);

    let mut net = Network::<f32>::mlp(&[1, 64, 64, 1], MlpConfig::default(), &mut rng)?;
    let mut optimizer = Rmsprop::elementwise(3e-3)?;
    let config = TrainConfig {
        epochs: args.epochs,
        batching: Batching::Minibatch { size: 32, shuffle: true },
        seed: args.seed,
        schedule: Schedule::Cosine { final_fraction: 0.0 },
        ..TrainConfig::default()
    };
    let report_every = (args.epochs / 5).max(1);
    train::fit(
        &mut net,
        &mut optimizer,
        &MeanSquaredError,
        train::Data::new(&x, &y),
        &config,
        |event, net, _| {
            let train::Event::Step(p) = event else { return };
            let end_of_epoch = p.step.is_multiple_of(config.steps_per_epoch(args.samples));
            if end_of_epoch && (p.epoch.is_multiple_of(report_every) || p.step == p.total_steps) {
                let test = net.loss(&tx, &MeanSquaredError, &ty).map(f64::from).unwrap_or(f64::NAN);
                println!("epoch {:>4}: batch MSE {:.2e}, test MSE {test:.2e}", p.epoch, p.report.loss);
            }
        },
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let train_mse = f64::from(net.loss(&x, &MeanSquaredError, &y)?);
    let fit = net.output(&tx)?;
    let test = RegressionMetrics::new(&fit, &ty)?;
    let (test_mse, test_r2) = (test.mse, test.r2.unwrap_or(f64::NAN));
    println!(
        "train MSE {train_mse:.2e}, test MSE {test_mse:.2e}, MAE {:.2e}, R² {test_r2:.6} over {} grid points ({seconds:.2} s)",
        test.mae,
        test_x.len()
    );

    if !args.no_pictures {
        let truth: Vec<(f64, f64)> = test_x.iter().map(|&x| (x, x.sin())).collect();
        let predicted: Vec<(f64, f64)> =
            test_x.iter().zip(fit.iter()).map(|(&x, &f)| (x, f64::from(f))).collect();
        let series = [
            Series { name: "sin x", points: &truth, color: BLUE },
            Series { name: "network", points: &predicted, color: RED },
        ];
        let chart = LineChart {
            title: "Fit of sin x",
            x_label: "x",
            y_label: "y",
            y_scale: Scale::Linear,
            series: &series,
            legend: Legend::UpperRight,
        };
        std::fs::create_dir_all(&args.out)?;
        let path = args.out.join("fit.png");
        chart.save_png(&path, (900, 500))?;
        println!("picture: {}", path.display());
    }
    if let Some(path) = &args.metrics {
        let json = serde_json::json!({
            "test_mse": test_mse,
            "test_r2": test_r2,
            "train_mse": train_mse,
            "epochs": args.epochs,
            "samples": args.samples,
            "seed": args.seed,
            "seconds": seconds,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
        println!("metrics: {}", path.display());
    }
    Ok(())
}
