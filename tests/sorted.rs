//! `Sorted`: each group of output rows sorted (quantiles that never cross). Its forward and
//! backward passes against a sort, its gradient check, its errors, its model file, and a
//! network of nine quantiles trained through it.

use feedforward::gradcheck::{self, Config};
use feedforward::train::{self, Batching, Data, TrainConfig};
use feedforward::{Adam, Error, MlpConfig, Module, Network, Quantile, Sorted};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Gradient checks: f64, central differences with h = 1e-5, error
/// `|a − n| / max(|a|, |n|, 1e-4)` at most this.
const BOUND: f64 = 1e-6;

#[test]
fn each_group_is_sorted_and_its_gradient_follows_the_order() {
    let mut rng = StdRng::seed_from_u64(1);
    // Two targets of three quantiles each, 7 samples.
    let z = DMatrix::from_fn(6, 7, |_, _| rng.random_range(-4.0..4.0));
    let module = Sorted::new(3).unwrap();
    let mut y = DMatrix::zeros(6, 7);
    module.forward(&z, &mut y);
    for j in 0..7 {
        for start in [0, 3] {
            let mut expected: Vec<f64> = (0..3).map(|k| z[(start + k, j)]).collect();
            expected.sort_by(f64::total_cmp);
            assert_eq!((0..3).map(|k| y[(start + k, j)]).collect::<Vec<_>>(), expected);
        }
    }
    // Each input takes the gradient of the row it became.
    let dy = DMatrix::from_fn(6, 7, |i, j| (i * 7 + j) as f64);
    let mut dz = DMatrix::zeros(6, 7);
    Sorted::new(3).unwrap().backward(&z, &y, &dy, Some(&mut dz));
    for j in 0..7 {
        for r in 0..6 {
            let k = (0..6).find(|&k| k / 3 == r / 3 && y[(k, j)] == z[(r, j)]).unwrap();
            assert_eq!(dz[(r, j)], dy[(k, j)]);
        }
    }
    for group in [3, 6] {
        let report =
            gradcheck::check_module(&mut Sorted::new(group).unwrap(), &z, &Config::default()).unwrap();
        assert!(report.max_error <= BOUND, "{report}");
    }
    // Rows already in order, or a group of one row: the identity.
    let ordered = DMatrix::from_fn(6, 7, |i, j| (i % 3) as f64 + j as f64);
    let mut same = DMatrix::zeros(6, 7);
    Sorted::new(3).unwrap().forward(&ordered, &mut same);
    assert_eq!(same, ordered);
    Sorted::new(1).unwrap().forward(&z, &mut same);
    assert_eq!(same, z);
}

#[test]
fn a_group_that_does_not_divide_the_rows_is_an_error() {
    assert!(matches!(Sorted::new(0), Err(Error::InvalidHyperparameter { .. })));
    let net = Network::<f32>::mlp(&[2, 4, 5], MlpConfig::default(), &mut StdRng::seed_from_u64(0)).unwrap();
    let err = net.push(Sorted::new(3).unwrap()).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("groups of 3"), "{err}");
}

#[test]
fn a_network_ending_in_increasing_saves_and_loads() {
    let net = Network::<f32>::mlp(&[2, 4, 6], MlpConfig::default(), &mut StdRng::seed_from_u64(0))
        .unwrap()
        .push(Sorted::new(3).unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quantiles.safetensors");
    net.save(&path).unwrap();
    let loaded = Network::<f32>::load(&path).unwrap();
    let x = DMatrix::from_fn(2, 5, |i, j| (i as f32 - j as f32) / 3.0);
    assert_eq!(loaded.output(&x).unwrap(), net.output(&x).unwrap());
    let module = loaded.modules().last().unwrap().downcast_ref::<Sorted>().expect("the last module");
    assert_eq!(module.group(), 3);
    assert!(net.to_string().contains("Sorted"), "{net}");
}

/// Nine quantiles (0.1 … 0.9) of `y = x + (0.02 + |x|)·u`, `u` uniform on [−1, 1], learned
/// through `Sorted`: they never cross, on the data's range or far outside it, and each
/// holds its share of new targets below it.
#[test]
fn nine_quantiles_learned_through_it_never_cross() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut draw = |n: usize| {
        let x = DMatrix::<f32>::from_fn(1, n, |_, _| rng.random_range(-1.0..1.0));
        let y = x.map(|v| v + (0.02 + v.abs()) * rng.random_range(-1.0f32..1.0));
        (x, y)
    };
    // 4000 samples: an empirical quantile's share of new targets then varies by about
    // √(τ(1 − τ)/4000) ≤ 0.008, and the bound below is five times that.
    let ((x, y), (x_new, y_new)) = (draw(4000), draw(4000));
    let taus: Vec<f64> = (1..=9).map(|k| f64::from(k) / 10.0).collect();
    let targets = DMatrix::from_fn(9, y.ncols(), |_, j| y[j]);
    let mut net = Network::mlp(&[1, 32, 32, 9], MlpConfig::default(), &mut StdRng::seed_from_u64(3))
        .unwrap()
        .push(Sorted::new(9).unwrap())
        .unwrap();
    let config = TrainConfig {
        epochs: 60,
        batching: Batching::Minibatch { size: 64, shuffle: true },
        // The rate decays to 0, so that the last step's noise does not move the quantiles.
        schedule: train::Schedule::Cosine { final_fraction: 0.0 },
        ..TrainConfig::default()
    };
    let pinball = Quantile::new(taus.clone()).unwrap();
    let mut adam = Adam::with_learning_rate(3e-3).unwrap();
    train::fit(&mut net, &mut adam, &pinball, Data::new(&x, &targets), &config, |_, _, _| {}).unwrap();
    let grid = DMatrix::<f32>::from_fn(1, 801, |_, j| j as f32 / 100.0 - 4.0);
    let q = net.output(&grid).unwrap();
    for j in 0..801 {
        assert!((0..8).all(|r| q[(r, j)] <= q[(r + 1, j)]), "crossed at x = {}", grid[j]);
    }
    let q = net.output(&x_new).unwrap();
    for (r, tau) in taus.iter().enumerate() {
        let below =
            (0..y_new.ncols()).filter(|&j| y_new[j] < q[(r, j)]).count() as f64 / y_new.ncols() as f64;
        assert!((below - tau).abs() < 0.04, "quantile {tau}: {below} of new targets below it");
    }
}
