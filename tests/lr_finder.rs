//! The learning-rate range test: its rates, its stop on divergence (a rising loss, or a
//! rejected step), the network it leaves alone, its settings, and that the rate it suggests
//! trains better than rates it advises against.

use approx::assert_relative_eq;
use feedforward::train::{self, Batching, Data, Position, RangeTest, Schedule, TrainConfig};
use feedforward::{Adam, AdamConfig, Error, MeanSquaredError, MlpConfig, Network, Sgd};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `y = sin 3x` on [−1, 1], 1000 samples.
fn sine() -> (DMatrix<f32>, DMatrix<f32>) {
    let x = DMatrix::from_fn(1, 1000, |_, j| j as f32 / 500.0 - 1.0);
    let y = x.map(|v| (3.0 * v).sin());
    (x, y)
}

fn network() -> Network<f32> {
    Network::mlp(&[1, 64, 64, 1], MlpConfig::default(), &mut StdRng::seed_from_u64(0)).unwrap()
}

fn adam() -> Adam<f32> {
    Adam::new(AdamConfig::default()).unwrap()
}

#[test]
fn the_rates_rise_geometrically_and_the_network_is_left_alone() {
    let (x, y) = sine();
    let net = network();
    let before: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    // Up to 1e-2 only: no divergence, every step taken.
    let config = RangeTest { start: 1e-6, end: 1e-2, steps: 40, ..RangeTest::default() };
    let report =
        train::find_learning_rate(&net, &mut adam(), &MeanSquaredError, Data::new(&x, &y), &config).unwrap();
    assert!(!report.diverged);
    assert_eq!((report.rates.len(), report.losses.len(), report.smoothed.len()), (40, 40, 40));
    let ratio = 1e4f64.powf(1.0 / 39.0);
    assert_relative_eq!(report.rates[0], 1e-6, max_relative = 1e-6); // the f32 rate, read back
    for pair in report.rates.windows(2) {
        assert_relative_eq!(pair[1] / pair[0], ratio, max_relative = 1e-5);
    }
    assert_relative_eq!(report.rates[39], 1e-2, max_relative = 1e-6);
    // The smoothed loss is the debiased running mean of the losses.
    let (beta, mut mean) = (0.9, 0.0);
    for (k, (&loss, &smoothed)) in report.losses.iter().zip(&report.smoothed).enumerate() {
        mean = beta * mean + (1.0 - beta) * loss;
        assert_relative_eq!(smoothed, mean / (1.0 - beta.powi(k as i32 + 1)), max_relative = 1e-12);
    }
    let after: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    assert_eq!(before, after);
    // The same settings, the same test.
    let again =
        train::find_learning_rate(&net, &mut adam(), &MeanSquaredError, Data::new(&x, &y), &config).unwrap();
    assert_eq!(report, again);
}

#[test]
fn the_test_stops_once_the_loss_blows_up() {
    let (x, y) = sine();
    let config = RangeTest::default();
    let report =
        train::find_learning_rate(&network(), &mut adam(), &MeanSquaredError, Data::new(&x, &y), &config)
            .unwrap();
    assert!(report.diverged && report.rates.len() < 100, "{} steps", report.rates.len());
    let lowest = report.smoothed.iter().copied().fold(f64::INFINITY, f64::min);
    let (last, before_last) =
        (report.smoothed[report.smoothed.len() - 1], &report.smoothed[..report.smoothed.len() - 1]);
    assert!(last > 4.0 * lowest, "stopped at {last} with the lowest {lowest}");
    // It stopped at the first step past 4 times the lowest so far.
    let mut low = f64::INFINITY;
    for &s in before_last {
        low = low.min(s);
        assert!(s <= 4.0 * low);
    }
    let (steep, minimum) = (report.steepest().unwrap(), report.minimum().unwrap());
    assert!(steep < minimum, "steepest {steep}, minimum {minimum}");
}

#[test]
fn a_rejected_step_ends_the_test() {
    let (x, y) = sine();
    // Plain SGD up to a rate of 1e12, and a divergence threshold never reached: only an
    // overflow to infinity (a rejected step) can end it before its last step.
    let config = RangeTest { start: 1e-3, end: 1e12, divergence: 1e300, ..RangeTest::default() };
    let mut sgd = Sgd::with_learning_rate(1.0).unwrap();
    let report =
        train::find_learning_rate(&network(), &mut sgd, &MeanSquaredError, Data::new(&x, &y), &config)
            .unwrap();
    assert!(report.diverged && report.rates.len() < 100, "{} steps", report.rates.len());
    assert!(report.losses.iter().all(|l| l.is_finite()));
}

#[test]
fn the_steepest_rate_trains_better_than_rates_far_from_it() {
    let (x, y) = sine();
    let report = train::find_learning_rate(
        &network(),
        &mut adam(),
        &MeanSquaredError,
        Data::new(&x, &y),
        &RangeTest::default(),
    )
    .unwrap();
    let (steep, minimum) = (report.steepest().unwrap(), report.minimum().unwrap());
    let trained = |rate: f64| {
        let mut net = network();
        let mut opt = Adam::new(AdamConfig { learning_rate: rate as f32, ..AdamConfig::default() }).unwrap();
        let config = TrainConfig {
            epochs: 20,
            batching: Batching::Minibatch { size: 64, shuffle: true },
            ..TrainConfig::default()
        };
        train::fit(&mut net, &mut opt, &MeanSquaredError, Data::new(&x, &y), &config, |_, _, _| {}).unwrap();
        net.loss(&x, &MeanSquaredError, &y).unwrap()
    };
    let at_steep = trained(steep);
    for rate in [steep / 100.0, minimum * 10.0] {
        let other = trained(rate);
        assert!(at_steep < other, "at {steep:.1e}: {at_steep}; at {rate:.1e}: {other}");
    }
    assert!(at_steep < 0.01, "at {steep:.1e}: {at_steep}");
}

#[test]
fn bad_settings_are_errors() {
    let (x, y) = sine();
    let bad = |config: RangeTest| {
        let result =
            train::find_learning_rate(&network(), &mut adam(), &MeanSquaredError, Data::new(&x, &y), &config);
        assert!(matches!(result, Err(Error::InvalidHyperparameter { .. })), "{config:?}: {result:?}");
    };
    let base = RangeTest::default();
    bad(RangeTest { start: 0.0, ..base });
    bad(RangeTest { start: f64::NAN, ..base });
    bad(RangeTest { end: 1e-8, ..base });
    bad(RangeTest { end: f64::INFINITY, ..base });
    bad(RangeTest { steps: 1, ..base });
    bad(RangeTest { batch_size: 0, ..base });
    bad(RangeTest { smoothing: 1.0, ..base });
    bad(RangeTest { divergence: 1.0, ..base });
    // Data that does not suit the network is fit's error.
    let wrong = train::find_learning_rate(
        &network(),
        &mut adam(),
        &MeanSquaredError,
        Data::new(&x, &DMatrix::zeros(2, 1000)),
        &base,
    );
    assert!(matches!(wrong, Err(Error::ShapeMismatch { .. })), "{wrong:?}");
}

#[test]
fn the_ramp_schedule_runs_from_1_to_its_final_factor() {
    let ramp = Schedule::Ramp { final_factor: 100.0 };
    let at = |step| ramp.factor(Position { step, total_steps: 5, epoch: 0 });
    assert_eq!(at(0), 1.0);
    assert_relative_eq!(at(2), 10.0, max_relative = 1e-12);
    assert_relative_eq!(at(4), 100.0, max_relative = 1e-12);
    let mut net = network();
    let (x, y) = sine();
    for final_factor in [0.0, -1.0, f64::INFINITY] {
        let config = TrainConfig { schedule: Schedule::Ramp { final_factor }, ..TrainConfig::default() };
        let result =
            train::fit(&mut net, &mut adam(), &MeanSquaredError, Data::new(&x, &y), &config, |_, _, _| {});
        assert!(matches!(result, Err(Error::InvalidHyperparameter { .. })), "{final_factor}");
    }
}

#[test]
fn the_report_prints_about_twenty_rows_the_last_step_and_the_suggestions() {
    use feedforward::train::RangeTestReport;
    // A made-up curve of 45 steps: rows every 3rd step (⌈45/20⌉) and the last.
    let rates: Vec<f64> = (0..45).map(|k| 1e-6 * 1.5f64.powi(k)).collect();
    let losses: Vec<f64> = (0..45).map(|k| 1.0 + ((k as f64) - 30.0).powi(2) / 100.0).collect();
    let report = RangeTestReport { rates, smoothed: losses.clone(), losses, diverged: false };
    let text = report.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "learning-rate range test: 45 steps");
    assert_eq!(lines[1], "      rate       loss   smoothed");
    assert_eq!(lines.len(), 2 + 15 + 1 + 1, "{text}");
    assert_eq!(lines[2], "   1.00e-6    10.0000    10.0000");
    assert!(lines[17].starts_with(&format!("{:>10.2e}", report.rates[44])), "{text}");
    let suggestions = format!(
        "steepest fall at {:.2e}; lowest loss at {:.2e} (a tenth of it: {:.2e})",
        report.steepest().unwrap(),
        report.minimum().unwrap(),
        report.minimum().unwrap() / 10.0
    );
    assert_eq!(lines[18], suggestions);
    // The minimum of 1 + (k − 30)²/100 is at step 30.
    assert_eq!(report.minimum(), Some(report.rates[30]));
    // A diverged test says so; one of no steps suggests nothing.
    // Losses too large or small for four decimals are in scientific notation.
    let scaled =
        RangeTestReport { losses: report.losses.iter().map(|l| l * 1e9).collect(), ..report.clone() };
    assert_eq!(scaled.to_string().lines().nth(2).unwrap(), "   1.00e-6   1.000e10    10.0000");
    let diverged = RangeTestReport { diverged: true, ..report };
    assert!(
        diverged
            .to_string()
            .starts_with("learning-rate range test: 45 steps, stopped as the loss diverged\n")
    );
    let empty = RangeTestReport::default().to_string();
    assert!(empty.ends_with("steepest fall at n/a; lowest loss at n/a (a tenth of it: n/a)\n"), "{empty}");
}

#[test]
fn the_steepest_fall_is_searched_before_the_lowest_loss_only() {
    use feedforward::train::RangeTestReport;
    // A gentle fall to its lowest at step 30, then a rise with a one-step plunge (noise on
    // the way to diverging) at step 38 steeper than any of the fall.
    let rates: Vec<f64> = (0..45).map(|k| 1e-6 * 1.5f64.powi(k)).collect();
    let mut smoothed: Vec<f64> = (0..45).map(|k| 1.0 + ((k as f64) - 30.0).abs() / 10.0).collect();
    smoothed[38] = 1.2; // from 1.7 and back to 1.9: a slope of 2.5 times the fall's
    let fall = 0.2 / (2.0 * 1.5f64.ln());
    let plunge = (smoothed[38] - smoothed[36]) / (2.0 * 1.5f64.ln());
    assert!(plunge < -2.0 * fall);
    let report = RangeTestReport { rates: rates.clone(), losses: smoothed.clone(), smoothed, diverged: true };
    let steepest = report.steepest().unwrap();
    assert!(steepest <= rates[30] && steepest >= rates[10], "{steepest} against {:?}", &rates[10..=30]);
    assert_eq!(report.minimum(), Some(rates[30]));
    // A loss that only rises has no fall.
    let rising: Vec<f64> = (0..45).map(|k| 1.0 + k as f64).collect();
    let report = RangeTestReport { rates, losses: rising.clone(), smoothed: rising, diverged: true };
    assert_eq!(report.steepest(), None);
}
