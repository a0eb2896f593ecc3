//! Classification beyond MNIST: three interleaved spirals in the plane, learned by a network with
//! two hidden layers (2-64-64-3) to 100% training accuracy.
//!
//! ```text
//! cargo run --release --example spirals
//! cargo run --release --example spirals -- --metrics spirals.json
//! ```

use clap::Parser;
use feedforward::train::{self, Batching, Schedule, TrainConfig};
use feedforward::{MlpConfig, Network, Rmsprop, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::path::PathBuf;
use std::time::Instant;

/// Learn three interleaved spirals with a 2-64-64-3 ReLU network.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Points per spiral.
    #[arg(long, default_value_t = 200)]
    points: usize,
    /// Passes over the points.
    #[arg(long, default_value_t = 400)]
    epochs: usize,
    /// Seed of the points, the initial weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the run's figures (train_accuracy, final_loss, seconds) as JSON.
    #[arg(long)]
    metrics: Option<PathBuf>,
}

const CLASSES: usize = 3;

/// `points` samples per class: class `c` winds 1.5 turns outwards from near the centre, rotated by
/// `c·2π/3`, with a little noise. One sample per column.
fn spirals(points: usize, rng: &mut StdRng) -> (DMatrix<f32>, Vec<usize>) {
    let labels: Vec<usize> = (0..points * CLASSES).map(|i| i / points).collect();
    let mut x = DMatrix::zeros(2, labels.len());
    for (j, &c) in labels.iter().enumerate() {
        // Starting off the centre, where the three spirals would meet.
        let r = 0.1 + 0.9 * (j % points) as f32 / points as f32;
        let angle = 3.0 * std::f32::consts::PI * r + c as f32 * 2.0 * std::f32::consts::PI / 3.0;
        x[(0, j)] = r * angle.cos() + 0.02 * (rng.random::<f32>() - 0.5);
        x[(1, j)] = r * angle.sin() + 0.02 * (rng.random::<f32>() - 0.5);
    }
    (x, labels)
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let (x, y) = spirals(args.points, &mut rng);
    let mut net = Network::<f32>::mlp(&[2, 64, 64, CLASSES], MlpConfig::default(), &mut rng)?;
    let mut optimizer = Rmsprop::elementwise(3e-3)?;
    let loss = SoftmaxCrossEntropy::new();
    let config = TrainConfig {
        epochs: args.epochs,
        batching: Batching::Minibatch { size: 32, shuffle: true },
        seed: args.seed,
        schedule: Schedule::Cosine { final_fraction: 0.0 },
        ..TrainConfig::default()
    };
    let steps_per_epoch = config.steps_per_epoch(y.len());
    let report_every = (args.epochs / 5).max(1);
    train::fit(&mut net, &mut optimizer, &loss, train::Data::new(&x, &y), &config, |event, net, _| {
        let train::Event::Step(p) = event else { return };
        if p.step.is_multiple_of(steps_per_epoch) && p.epoch.is_multiple_of(report_every) {
            let accuracy = net.accuracy(&x, &y).unwrap_or(f64::NAN);
            println!(
                "epoch {:>4}: loss {:.4}, training accuracy {:.2}%",
                p.epoch,
                p.report.loss,
                100.0 * accuracy
            );
        }
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let evaluation = net.evaluate(&x, &loss, &y[..])?;
    let accuracy = evaluation.accuracy.unwrap_or(f64::NAN);
    println!(
        "{} points, 2-64-64-3: training accuracy {:.2}%, loss {:.4} ({seconds:.2} s)",
        y.len(),
        100.0 * accuracy,
        evaluation.loss
    );
    if let Some(path) = &args.metrics {
        let json = serde_json::json!({
            "train_accuracy": accuracy,
            "final_loss": evaluation.loss,
            "points": y.len(),
            "epochs": args.epochs,
            "seed": args.seed,
            "seconds": seconds,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
        println!("metrics: {}", path.display());
    }
    Ok(())
}
