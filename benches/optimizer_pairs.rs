//! Issue 11's question on a noisy host: how much longer a training step at batch 128 takes with
//! each optimizer than with the elementwise RMSprop.
//!
//! Criterion times one benchmark after the other, so a host whose speed drifts over seconds
//! (±30% on the project's machines) moves one benchmark and not the other, and their ratio
//! with it. This bench times the two steps alternately instead, pair after pair (the order
//! swapped every pair), on two copies of the same 784-256-10 network and batch, and prints
//! the median step of each and the median and quartiles of the pairs' ratios. RMSprop against
//! itself is the control: its ratio should be 1.
//!
//! ```text
//! cargo bench --bench optimizer_pairs                   # the control, SGD, Adam, AdamW: 4000 pairs each
//! cargo bench --bench optimizer_pairs -- adam 10000     # one optimizer, more pairs
//! ```

use feedforward::optim::{Momentum, SgdConfig};
use feedforward::{Adam, AdamW, MlpConfig, Network, Optimizer, Rmsprop, Sgd, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use rand::{RngExt, SeedableRng};
use std::time::Instant;

/// The optimizer of a name, with a learning rate too small to move the network (as in
/// `benches/step.rs`), or `None` for an unknown name.
fn optimizer(name: &str) -> Option<Box<dyn Optimizer<f32>>> {
    let sgd = SgdConfig {
        learning_rate: 1e-6,
        momentum: Momentum::Heavy { momentum: 0.9, dampening: 0.0 },
        ..SgdConfig::default()
    };
    Some(match name {
        "rmsprop" => Box::new(Rmsprop::elementwise(1e-6).ok()?),
        "sgd" => Box::new(Sgd::new(sgd).ok()?),
        "adam" => Box::new(Adam::with_learning_rate(1e-6).ok()?),
        "adamw" => Box::new(AdamW::with_learning_rate(1e-6).ok()?),
        _ => return None,
    })
}

/// The CPU's model name, to print beside the figures.
fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let name = info.lines().find_map(|l| l.strip_prefix("model name")?.split(':').nth(1).map(str::trim));
    name.unwrap_or("unknown").to_string()
}

/// The value at fraction `q` of the sorted `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    values[((values.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is an optimizer's name or a count of pairs.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let pairs = args.iter().find_map(|a| a.parse::<usize>().ok()).unwrap_or(4000);
    let mut names: Vec<&str> =
        args.iter().map(String::as_str).filter(|a| a.parse::<usize>().is_err()).collect();
    if names.is_empty() {
        names = vec!["rmsprop", "sgd", "adam", "adamw"];
    }
    println!("CPU: {}; train_step at batch 128, {pairs} interleaved pairs each", cpu());
    println!(
        "{:<8} {:>14} {:>14} {:>12} {:>20}",
        "against", "RMSprop µs", "it µs", "pair ratio", "quartiles"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let network =
        Network::<f32>::mlp(&[784, 256, 10], MlpConfig::default(), &mut rng).expect("a valid shape");
    let x = DMatrix::<f32>::from_fn(784, 128, |_, _| rng.random::<f32>());
    let labels: Vec<usize> = (0..128).map(|i| i % 10).collect();
    let loss = SoftmaxCrossEntropy::new();
    for name in names {
        let Some(mut other) = optimizer(name) else {
            eprintln!("unknown optimizer {name:?}: rmsprop, sgd, adam or adamw");
            std::process::exit(2);
        };
        let mut rmsprop = optimizer("rmsprop").expect("a known name");
        let (mut a, mut b) = (network.clone(), network.clone());
        let step = |net: &mut Network<f32>, opt: &mut dyn Optimizer<f32>| {
            let start = Instant::now();
            net.train_step(&x, &loss, &labels[..], opt).expect("a finite step");
            start.elapsed().as_secs_f64() * 1e6
        };
        // Warm-up: the thread team, the buffers, the optimizers' state.
        for _ in 0..300 {
            step(&mut a, rmsprop.as_mut());
            step(&mut b, other.as_mut());
        }
        let (mut base, mut timed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..pairs {
            let (t_a, t_b) = if i % 2 == 0 {
                let t_a = step(&mut a, rmsprop.as_mut());
                (t_a, step(&mut b, other.as_mut()))
            } else {
                let t_b = step(&mut b, other.as_mut());
                (step(&mut a, rmsprop.as_mut()), t_b)
            };
            base.push(t_a);
            timed.push(t_b);
            ratios.push(t_b / t_a);
        }
        for v in [&mut base, &mut timed, &mut ratios] {
            v.sort_by(f64::total_cmp);
        }
        let quartiles = format!("{:.3}–{:.3}", quantile(&ratios, 0.25), quantile(&ratios, 0.75));
        println!(
            "{name:<8} {:>14.1} {:>14.1} {:>12.3} {quartiles:>20}",
            quantile(&base, 0.5),
            quantile(&timed, 0.5),
            quantile(&ratios, 0.5)
        );
    }
}
