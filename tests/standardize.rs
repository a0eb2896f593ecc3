//! `Standardize`: the statistics it fits, the map and its inverse, its gradient, its errors, a
//! model file that carries it, and a regression on raw units that trains through it.

use feedforward::gradcheck::{self, Config};
use feedforward::metrics::RegressionMetrics;
use feedforward::standardize::Direction;
use feedforward::train::{self, Batching, TrainConfig};
use feedforward::{
    Activation, Adam, AdamConfig, Error, Init, Layer, MeanSquaredError, MlpConfig, Network, Standardize,
    weights,
};
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Three features on scales 1, 1e4 and 1e-3, and a constant one; 7 samples.
fn features() -> DMatrix<f64> {
    DMatrix::from_fn(4, 7, |i, j| {
        let t = j as f64;
        match i {
            0 => t * t - 3.0,
            1 => 1e4 * (1.0 + (t * 0.9).sin()),
            2 => 1e-3 * (t - 2.5),
            _ => 42.0,
        }
    })
}

#[test]
fn fit_gives_the_mean_and_population_deviation_of_each_feature() {
    let x = features();
    let s = Standardize::fit(&x).unwrap();
    for i in 0..3 {
        let row: Vec<f64> = x.row(i).iter().copied().collect();
        let mean = row.iter().sum::<f64>() / 7.0;
        let std = (row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 7.0).sqrt();
        assert!((s.mean()[i] - mean).abs() <= 1e-12 * mean.abs().max(1.0), "feature {i}");
        assert!((s.std()[i] - std).abs() <= 1e-12 * std, "feature {i}");
    }
    // A constant feature keeps its value as the mean and gets σ = 1.
    assert_eq!((s.mean()[3], s.std()[3]), (42.0, 1.0));
    assert_eq!((s.features(), s.direction()), (4, Direction::Standardize));
}

#[test]
fn standardized_data_has_mean_0_and_deviation_1_and_the_inverse_restores_it() {
    let x = features();
    let s = Standardize::fit(&x).unwrap();
    let net = Network::new(4).push(s.clone()).unwrap();
    let z = net.output(&x).unwrap();
    for i in 0..3 {
        let mean = z.row(i).sum() / 7.0;
        let var = z.row(i).iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 7.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12, "feature {i}: mean {mean}, var {var}");
    }
    assert!(z.row(3).iter().all(|&v| v == 0.0), "a constant feature standardizes to exactly 0");

    let round_trip = Network::new(4).push(s.clone()).unwrap().push(s.inverse()).unwrap();
    let back = round_trip.output(&x).unwrap();
    for (b, v) in back.iter().zip(x.iter()) {
        assert!((b - v).abs() <= 1e-12 * v.abs().max(1.0), "{b} vs {v}");
    }
}

#[test]
fn rows_left_unchanged_pass_exactly_both_ways() {
    // Row 1 as category indices, among numbers on large scales.
    let x = features().map_with_location(|i, j, v| if i == 1 { (j % 5) as f64 } else { v });
    let s = Standardize::fit(&x).unwrap().with_rows_unchanged(&[1, 3]).unwrap();
    assert_eq!((s.mean()[1], s.std()[1], s.mean()[3], s.std()[3]), (0.0, 1.0, 0.0, 1.0));
    let fitted = Standardize::fit(&x).unwrap();
    assert_eq!((s.mean()[0], s.std()[2]), (fitted.mean()[0], fitted.std()[2]), "the other rows as fitted");
    for map in [s.clone(), s.inverse()] {
        let y = map.apply(&x).unwrap();
        assert_eq!((y.row(1), y.row(3)), (x.row(1), x.row(3)), "{:?}", map.direction());
    }
    let e = Standardize::fit(&x).unwrap().with_rows_unchanged(&[0, 4]).unwrap_err();
    assert!(e.to_string().contains("row 4"), "{e}");
}

#[test]
fn the_gradient_through_both_directions_checks() {
    let mut rng = StdRng::seed_from_u64(3);
    let x = features();
    let targets = DMatrix::from_fn(2, 7, |i, j| 1e3 * (i as f64 + 1.0) * (j as f64 * 0.4).cos());
    // Standardize inside the network too, so that its input gradient is needed and checked.
    let hidden =
        Standardize::new(DVector::from_vec(vec![0.5, -1.0, 2.0]), DVector::from_vec(vec![2.0, 0.25, 3.0]));
    let mut net = Network::new(4)
        .push(Standardize::fit(&x).unwrap())
        .unwrap()
        .push(Layer::new(4, 3, Init::He, &mut rng).with_activation(Activation::Tanh))
        .unwrap()
        .push(hidden.unwrap())
        .unwrap()
        .push(Layer::new(3, 2, Init::He, &mut rng))
        .unwrap()
        .push(Standardize::fit(&targets).unwrap().inverse())
        .unwrap();
    let report =
        gradcheck::check_network(&mut net, &x, &MeanSquaredError, &targets, &Config::default()).unwrap();
    assert!(report.max_error <= 1e-6, "{report}");

    let inner = DMatrix::from_fn(3, 5, |i, j| (i as f64 - 1.0) * 0.8 + j as f64 * 0.3);
    for direction in [Direction::Standardize, Direction::Restore] {
        let mut s = Standardize::fit(&inner.map(|v| v * 3.0 + 1.0)).unwrap();
        if direction == Direction::Restore {
            s = s.inverse();
        }
        let report = gradcheck::check_module(&mut s, &inner, &Config::default()).unwrap();
        assert!(report.max_error <= 1e-6, "{direction:?}: {report}");
    }
}

#[test]
fn bad_data_and_statistics_are_errors_naming_the_sample_or_feature() {
    let mut x = features();
    x[(2, 5)] = f64::NAN;
    match Standardize::fit(&x) {
        Err(Error::NonFinite { sample: Some(5), .. }) => {}
        other => panic!("expected sample 5 to be named, got {other:?}"),
    }
    assert!(matches!(Standardize::<f64>::fit(&DMatrix::zeros(3, 0)), Err(Error::EmptyBatch { .. })));
    assert!(matches!(Standardize::<f64>::fit(&DMatrix::zeros(0, 3)), Err(Error::ShapeMismatch { .. })));

    let v = |values: &[f32]| DVector::from_column_slice(values);
    let cases = [
        (v(&[0.0, 1.0]), v(&[1.0, 0.0]), 1, "standard deviation"),
        (v(&[0.0, 1.0]), v(&[-2.0, 1.0]), 0, "standard deviation"),
        (v(&[0.0, 1.0]), v(&[1.0, 1e-40]), 1, "standard deviation"),
        (v(&[0.0, 1.0]), v(&[1.0, f32::INFINITY]), 1, "standard deviation"),
        (v(&[f32::NAN, 1.0]), v(&[1.0, 1.0]), 0, "mean"),
        (v(&[0.0, 1e30]), v(&[1.0, 1e-10]), 1, "mean / standard deviation"),
    ];
    for (mean, std, feature, what) in cases {
        match Standardize::new(mean, std) {
            Err(e @ Error::InvalidFeatureStatistic { .. }) => {
                let Error::InvalidFeatureStatistic { feature: f, what: w, .. } = e else { unreachable!() };
                assert_eq!((f, w), (feature, what), "{e}");
            }
            other => panic!("expected feature {feature}'s {what} to be rejected, got {other:?}"),
        }
    }
    assert!(matches!(Standardize::new(v(&[0.0]), v(&[1.0, 1.0])), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(Standardize::<f32>::new(v(&[]), v(&[])), Err(Error::ShapeMismatch { .. })));
    // A spread that rounds to a subnormal in f32 cannot be divided by.
    let tiny = DMatrix::from_row_slice(1, 2, &[0.0f32, 1e-39]);
    assert!(matches!(Standardize::fit(&tiny), Err(Error::InvalidFeatureStatistic { feature: 0, .. })));

    // Fitted on 4 features, it refuses 3, in `apply` and in a network; `apply` names a NaN's
    // sample as inference does.
    let s = Standardize::fit(&features()).unwrap();
    assert!(matches!(s.apply(&DMatrix::zeros(3, 2)), Err(Error::ShapeMismatch { .. })));
    let mut bad = features();
    bad[(0, 4)] = f64::INFINITY;
    assert!(matches!(s.apply(&bad), Err(Error::NonFinite { sample: Some(4), .. })));
    let e = Network::new(3).push(s).unwrap_err();
    assert!(e.to_string().contains("4 rows"), "{e}");
}

#[test]
fn a_model_file_carries_the_scaling_exactly() {
    let mut rng = StdRng::seed_from_u64(5);
    let x = features().map(|v| v as f32);
    let targets = DMatrix::from_fn(1, 7, |_, j| 2500.0 + 300.0 * j as f32);
    let net = Network::new(4)
        .push(Standardize::fit(&x).unwrap())
        .unwrap()
        .push(Layer::new(4, 5, Init::He, &mut rng).with_activation(Activation::Relu))
        .unwrap()
        .push(Layer::new(5, 1, Init::He, &mut rng))
        .unwrap()
        .push(Standardize::fit(&targets).unwrap().inverse())
        .unwrap();
    let bytes = weights::to_bytes(&net).unwrap();
    let loaded = Network::<f32>::from_bytes_with(&bytes, "<memory>", &|_, _, _| Ok(None)).unwrap();
    assert_eq!(loaded.output(&x).unwrap(), net.output(&x).unwrap());
    let last = &loaded.modules()[3];
    assert_eq!(last.kind(), "Standardize");
    assert_eq!(last.describe().unwrap()["direction"], "restore");
    assert_eq!(format!("{last:?}"), "Standardize { features: 1, direction: Restore, .. }");

    // Edited files: each a clear error naming the module.
    let edit = |change: &dyn Fn(&mut serde_json::Value)| {
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let mut arch: serde_json::Value =
            serde_json::from_str(&header.metadata().as_ref().unwrap()[weights::ARCHITECTURE_KEY]).unwrap();
        change(&mut arch["modules"][3]);
        let meta = [(weights::ARCHITECTURE_KEY.to_string(), arch.to_string())].into_iter().collect();
        let rewritten = safetensors::serialize(file.tensors(), Some(meta)).unwrap();
        Network::<f32>::from_bytes_with(&rewritten, "edited", &|_, _, _| Ok(None)).unwrap_err().to_string()
    };
    let e = edit(&|m| m["direction"] = "sideways".into());
    assert!(e.contains("module 3") && e.contains("sideways"), "{e}");
    let e = edit(&|m| m["std"] = serde_json::json!([0.0]));
    assert!(e.contains("module 3") && e.contains("standard deviation"), "{e}");
    let e = edit(&|m| m["mean"] = serde_json::json!(["a"]));
    assert!(e.contains("mean holds \"a\""), "{e}");
    let e = edit(&|m| m["mean"] = serde_json::json!([1.0, 2.0]));
    assert!(e.contains("2 means and 1 standard deviations"), "{e}");
}

/// `y = 3000 + 800·x₀ − 0.05·x₁ + 2e5·x₂` on features of scale 1, 1e4 and 1e-3: with the
/// scaling in the network, Adam at its default rate fits it in raw units.
#[test]
fn a_regression_in_raw_units_trains_through_both_ends() {
    let mut data = StdRng::seed_from_u64(11);
    let n = 512;
    let x = DMatrix::from_fn(3, n, |i, _| {
        let u: f32 = rand::RngExt::random_range(&mut data, -1.0..1.0);
        [1.0, 1e4, 1e-3][i] * u
    });
    let target = |c: usize| 3000.0 + 800.0 * x[(0, c)] - 0.05 * x[(1, c)] + 2e5 * x[(2, c)];
    let y = DMatrix::from_fn(1, n, |_, c| target(c));
    let mut rng = StdRng::seed_from_u64(12);
    let mut net = Network::new(3)
        .push(Standardize::fit(&x).unwrap())
        .unwrap()
        .push(Layer::new(3, 16, Init::He, &mut rng).with_activation(Activation::Tanh))
        .unwrap()
        .push(Layer::new(16, 1, Init::He, &mut rng))
        .unwrap()
        .push(Standardize::fit(&y).unwrap().inverse())
        .unwrap();
    let mut adam = Adam::new(AdamConfig { learning_rate: 1e-2, ..AdamConfig::default() }).unwrap();
    let config = TrainConfig {
        epochs: 60,
        batching: Batching::Minibatch { size: 32, shuffle: true },
        seed: 13,
        ..TrainConfig::default()
    };
    let before = RegressionMetrics::new(&net.output(&x).unwrap(), &y).unwrap();
    train::fit(&mut net, &mut adam, &MeanSquaredError, train::Data::new(&x, &y), &config, |_, _, _| {})
        .unwrap();
    let after = RegressionMetrics::new(&net.output(&x).unwrap(), &y).unwrap();
    assert!(after.r2.unwrap() > 0.995, "R² {:?} → {:?}", before.r2, after.r2);
    assert!(after.rmse < 0.1 * before.rmse, "RMSE {} → {}", before.rmse, after.rmse);
}

#[test]
fn insert_puts_one_in_front_of_an_mlp_and_checks_every_later_module() {
    let x = features().map(|v| v as f32);
    let mut rng = StdRng::seed_from_u64(6);
    let mlp = Network::mlp(&[4, 8, 2], MlpConfig::default(), &mut rng).unwrap();
    let plain = mlp.output(&Standardize::fit(&x).unwrap().apply(&x).unwrap()).unwrap();
    let mut net = mlp.insert(0, Standardize::fit(&x).unwrap()).unwrap();
    assert_eq!(net.modules().iter().map(|m| m.kind()).collect::<Vec<_>>(), ["Standardize", "Layer", "Layer"]);
    assert_eq!(net.output(&x).unwrap(), plain);

    // A module that would give the next layer 5 rows instead of 4, or a position past the end:
    // errors, and the network is as it was.
    let wide = Layer::new(4, 5, Init::He, &mut rng);
    let e = net.insert_boxed(0, Box::new(wide)).unwrap_err();
    assert!(e.to_string().contains("expected 4 rows") && e.to_string().contains("got 5"), "{e}");
    let e = net.insert_boxed(4, Box::new(Standardize::fit(&x).unwrap())).unwrap_err();
    assert!(e.to_string().contains("at most 3"), "{e}");
    assert_eq!(net.modules().len(), 3);
    assert_eq!(net.output(&x).unwrap(), plain);
    // At the end, it is push.
    let y = DMatrix::from_fn(2, 7, |i, j| (i * 10 + j) as f32);
    net.insert_boxed(3, Box::new(Standardize::fit(&y).unwrap().inverse())).unwrap();
    assert_eq!(net.output_rows(), 2);
}

/// The network's summary names the direction but not the statistics, and a line without
/// settings ends at its parameter count.
#[test]
fn the_summary_shows_the_direction_not_the_statistics() {
    let x = features();
    let y = DMatrix::from_fn(1, 7, |_, j| j as f64);
    let net = Network::new(4)
        .push(Standardize::fit(&x).unwrap())
        .unwrap()
        .push(Layer::new(4, 1, Init::He, &mut StdRng::seed_from_u64(0)))
        .unwrap()
        .push(Standardize::fit(&y).unwrap().inverse())
        .unwrap()
        .push(feedforward::Tanh)
        .unwrap();
    let summary = net.to_string();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines[0], "Network (f64): 4 inputs → 1 output, 5 parameters");
    assert_eq!(lines[2], "  0  Standardize      4 → 4           0  direction: standardize");
    assert_eq!(lines[4], "  2  Standardize      1 → 1           0  direction: restore");
    assert_eq!(lines[5], "  3  Tanh             1 → 1           0");
}
