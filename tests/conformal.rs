//! `conformal::interval_margin` and `deviation_factor`: the rank-`⌈(n + 1)·coverage⌉` score
//! by its definition, the coverage they promise on new samples (simulated), and their errors.

mod common;
use common::{conformal_rank, normal};
use feedforward::Error;
use feedforward::conformal::{deviation_factor, interval_margin, interval_margins};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

#[test]
fn the_margin_is_the_scores_rank_by_definition() {
    let mut rng = StdRng::seed_from_u64(1);
    for n in [4, 9, 10, 57, 200] {
        let lower: Vec<f64> = (0..n).map(|_| normal(&mut rng) - 1.0).collect();
        let upper: Vec<f64> = lower.iter().map(|lo| lo + rng.random_range(0.0..3.0)).collect();
        let truth: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
        let mut scores: Vec<f64> = (0..n).map(|i| (lower[i] - truth[i]).max(truth[i] - upper[i])).collect();
        scores.sort_by(f64::total_cmp);
        for coverage in [0.5, 0.8, 0.9, 0.95] {
            let Some(rank) = conformal_rank(n, coverage) else {
                assert!(
                    interval_margin(&lower, &upper, &truth, coverage).is_err(),
                    "n {n}, coverage {coverage}"
                );
                continue;
            };
            let margin = interval_margin(&lower, &upper, &truth, coverage).unwrap();
            assert_eq!(margin, scores[rank - 1], "n {n}, coverage {coverage}");
            // At least `rank` of the calibration values lie no further out than the margin.
            let inside = (0..n).filter(|&i| (lower[i] - truth[i]).max(truth[i] - upper[i]) <= margin).count();
            assert!(inside >= rank, "n {n}, coverage {coverage}: {inside} inside");
        }
    }
}

#[test]
fn new_samples_fall_inside_as_often_as_promised() {
    // A heteroscedastic truth y = (0.5 + |x|)·ε and intervals far too narrow, [x/2 − 0.1,
    // x/2 + 0.1]: each trial calibrates on 19 samples and checks one more. With 20 scores, the
    // widened interval holds the new sample with probability 16/20 = 0.8 exactly (distinct
    // scores), and the mean over 4000 trials has a standard deviation of 0.0063.
    let mut rng = StdRng::seed_from_u64(2);
    let draw = |rng: &mut StdRng| {
        let x = rng.random_range(-2.0..2.0f64);
        (x / 2.0 - 0.1, x / 2.0 + 0.1, (0.5 + x.abs()) * normal(rng))
    };
    let trials = 4000;
    let mut held = 0;
    for _ in 0..trials {
        let calibration: Vec<(f64, f64, f64)> = (0..19).map(|_| draw(&mut rng)).collect();
        let [lower, upper, truth] =
            [0, 1, 2].map(|k| calibration.iter().map(|s| [s.0, s.1, s.2][k]).collect::<Vec<f64>>());
        let margin = interval_margin(&lower, &upper, &truth, 0.8).unwrap();
        let (lo, hi, y) = draw(&mut rng);
        held += usize::from(lo - margin <= y && y <= hi + margin);
    }
    let share = held as f64 / trials as f64;
    assert!((share - 0.8).abs() < 0.025, "held {share}");
}

#[test]
fn bad_calibrations_are_errors() {
    let (lo, hi, y) = ([0.0f32; 4], [1.0f32; 4], [0.5f32, 2.0, -1.0, 0.0]);
    let e = interval_margin(&lo, &hi[..3], &y, 0.8).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    assert!(matches!(interval_margin::<f32>(&[], &[], &[], 0.8), Err(Error::EmptyBatch { .. })));
    for coverage in [0.0, 1.0, f64::NAN, -0.5] {
        let e = interval_margin(&lo, &hi, &y, coverage).unwrap_err();
        assert!(matches!(e, Error::InvalidHyperparameter { name: "conformal coverage", .. }), "{e}");
    }
    // 0.8 needs 4 samples, 0.95 needs 19.
    assert!(interval_margin(&lo, &hi, &y, 0.8).is_ok());
    let e = interval_margin(&lo[..3], &hi[..3], &y[..3], 0.8).unwrap_err();
    assert!(e.to_string().contains("at least 4 samples"), "{e}");
    let e = interval_margin(&lo, &hi, &y, 0.95).unwrap_err();
    assert!(e.to_string().contains("at least 19 samples"), "{e}");
    let nan = [0.5f32, 2.0, f32::NAN, 0.0];
    let e = interval_margin(&lo, &hi, &nan, 0.5).unwrap_err();
    assert!(matches!(e, Error::NonFinite { sample: Some(2), .. }), "{e}");
    assert!(e.to_string().contains("calibration targets"), "{e}");
}

#[test]
fn the_deviation_factor_is_the_normalized_scores_rank_by_definition() {
    let mut rng = StdRng::seed_from_u64(3);
    for n in [4, 9, 57, 200] {
        let mean: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
        let variance: Vec<f64> = (0..n).map(|_| rng.random_range(0.1..4.0)).collect();
        let truth: Vec<f64> = (0..n).map(|_| 2.0 * normal(&mut rng)).collect();
        let mut scores: Vec<f64> = (0..n).map(|i| (truth[i] - mean[i]).abs() / variance[i].sqrt()).collect();
        scores.sort_by(f64::total_cmp);
        for coverage in [0.5, 0.8, 0.9] {
            let Some(rank) = conformal_rank(n, coverage) else {
                assert!(deviation_factor(&mean, &variance, &truth, coverage).is_err());
                continue;
            };
            let k = deviation_factor(&mean, &variance, &truth, coverage).unwrap();
            assert_eq!(k, scores[rank - 1], "n {n}, coverage {coverage}");
        }
    }
}

#[test]
fn intervals_scaled_by_the_factor_hold_as_often_as_promised() {
    // Noise of deviation 0.5 + |x|, uniform (not normal), and predicted variances a quarter of
    // the truth: μ ± 1.28·√v holds far fewer than 80%. Each trial calibrates on 19 samples and
    // checks one more; with 20 distinct scores the promise is 16/20 = 0.8 exactly, and the mean
    // over 20000 trials has a standard deviation of 0.0028.
    let mut rng = StdRng::seed_from_u64(4);
    let draw = |rng: &mut StdRng| {
        let x = rng.random_range(-2.0..2.0f64);
        let deviation = 0.5 + x.abs();
        let noise = rng.random_range(-1.0..1.0) * 3f64.sqrt(); // variance 1
        (x, deviation * deviation / 4.0, x + deviation * noise)
    };
    let (trials, mut held, mut naive) = (20000, 0, 0);
    for _ in 0..trials {
        let calibration: Vec<(f64, f64, f64)> = (0..19).map(|_| draw(&mut rng)).collect();
        let [mean, variance, truth] =
            [0, 1, 2].map(|k| calibration.iter().map(|s| [s.0, s.1, s.2][k]).collect::<Vec<f64>>());
        let k = deviation_factor(&mean, &variance, &truth, 0.8).unwrap();
        let (mu, v, y) = draw(&mut rng);
        held += usize::from((y - mu).abs() <= k * v.sqrt());
        naive += usize::from((y - mu).abs() <= 1.2816 * v.sqrt());
    }
    let (share, naive) = (held as f64 / trials as f64, naive as f64 / trials as f64);
    assert!((share - 0.8).abs() < 0.025, "held {share}");
    assert!(naive < 0.5, "uncalibrated {naive}");
}

#[test]
fn bad_deviation_calibrations_are_errors() {
    let (mean, variance, y) = ([0.0f32; 4], [1.0f32; 4], [0.5f32, 2.0, -1.0, 0.0]);
    let e = deviation_factor(&mean, &variance[..3], &y, 0.8).unwrap_err();
    assert!(e.to_string().contains("a mean and a variance for each of the 4 true values"), "{e}");
    assert!(matches!(deviation_factor::<f32>(&[], &[], &[], 0.8), Err(Error::EmptyBatch { .. })));
    assert!(matches!(
        deviation_factor(&mean, &variance, &y, 1.0),
        Err(Error::InvalidHyperparameter { name: "conformal coverage", .. })
    ));
    let e = deviation_factor(&mean, &[1.0, 1.0, -0.5, 1.0], &y, 0.5).unwrap_err();
    assert!(matches!(e, Error::InvalidInput { sample: 2, .. }) && e.to_string().contains("variance"), "{e}");
    let e = deviation_factor(&mean, &[1.0, f32::INFINITY, 1.0, 1.0], &y, 0.5).unwrap_err();
    assert!(
        matches!(e, Error::NonFinite { sample: Some(1), .. }) && e.to_string().contains("variances"),
        "{e}"
    );
    let e = deviation_factor(&mean[..3], &variance[..3], &y[..3], 0.8).unwrap_err();
    assert!(e.to_string().contains("at least 4 samples"), "{e}");
}

#[test]
fn the_two_margins_are_each_sides_rank_by_definition() {
    let mut rng = StdRng::seed_from_u64(5);
    for n in [9, 19, 57, 200] {
        let lower: Vec<f64> = (0..n).map(|_| normal(&mut rng) - 1.0).collect();
        let upper: Vec<f64> = lower.iter().map(|lo| lo + rng.random_range(0.0..3.0)).collect();
        let truth: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
        let sorted = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v
        };
        let below = sorted((0..n).map(|i| lower[i] - truth[i]).collect());
        let above = sorted((0..n).map(|i| truth[i] - upper[i]).collect());
        for coverage in [0.5, 0.8, 0.9] {
            let side = (1.0 + coverage) / 2.0;
            let Some(rank) = conformal_rank(n, side) else {
                assert!(
                    interval_margins(&lower, &upper, &truth, coverage).is_err(),
                    "n {n}, coverage {coverage}"
                );
                continue;
            };
            let margins = interval_margins(&lower, &upper, &truth, coverage).unwrap();
            assert_eq!(margins, (below[rank - 1], above[rank - 1]), "n {n}, coverage {coverage}");
        }
    }
    // 0.8 on each side of 0.6 needs 4 samples; 0.9 of 0.8 needs 9.
    let (lo, hi, y) = ([0.0f32; 8], [1.0f32; 8], [0.5f32; 8]);
    assert!(interval_margins(&lo[..4], &hi[..4], &y[..4], 0.6).is_ok());
    let e = interval_margins(&lo, &hi, &y, 0.8).unwrap_err();
    assert!(
        e.to_string().contains("at least 9 samples for a coverage of 0.8 with a margin on each side"),
        "{e}"
    );
    for coverage in [0.0, -0.5, 1.0, f64::NAN] {
        assert!(matches!(
            interval_margins(&lo, &hi, &y, coverage),
            Err(Error::InvalidHyperparameter { name: "conformal coverage", .. })
        ));
    }
}

#[test]
fn two_margins_balance_the_misses_of_a_skewed_noise() {
    // y = x plus an exponential noise (mean 1, skewed up), intervals [x − 0.5, x + 0.5]: each
    // trial calibrates on 39 samples and checks one more. The two margins (rank 36 of 40 on
    // each side) promise each side at most 4/40 = 10% of misses; one margin, 20% in all, most
    // of them above.
    let mut rng = StdRng::seed_from_u64(6);
    let draw = |rng: &mut StdRng| {
        let x = rng.random_range(-2.0..2.0f64);
        (x - 0.5, x + 0.5, x - rng.random_range(f64::EPSILON..1.0).ln())
    };
    let trials = 20000;
    let (mut under, mut over, mut one_under, mut one_over) = (0, 0, 0, 0);
    for _ in 0..trials {
        let calibration: Vec<(f64, f64, f64)> = (0..39).map(|_| draw(&mut rng)).collect();
        let [lower, upper, truth] =
            [0, 1, 2].map(|k| calibration.iter().map(|s| [s.0, s.1, s.2][k]).collect::<Vec<f64>>());
        let (below, above) = interval_margins(&lower, &upper, &truth, 0.8).unwrap();
        let margin = interval_margin(&lower, &upper, &truth, 0.8).unwrap();
        let (lo, hi, y) = draw(&mut rng);
        under += usize::from(y < lo - below);
        over += usize::from(y > hi + above);
        one_under += usize::from(y < lo - margin);
        one_over += usize::from(y > hi + margin);
    }
    let share = |count: usize| count as f64 / trials as f64;
    // Each share's standard deviation over 20000 trials is 0.0021.
    assert!(
        (share(under) - 0.1).abs() < 0.01 && (share(over) - 0.1).abs() < 0.01,
        "{under} under, {over} over"
    );
    assert!(
        share(one_under) < 0.05 && share(one_over) > 0.15,
        "one margin: {one_under} under, {one_over} over"
    );
}
