//! `importance::permutation_importance` against the same shuffles done by hand, inputs the
//! network ignores, groups of rows shuffled together, the seed, and bad settings; the groups
//! of a table's plan (`Features::column_rows`).

use feedforward::importance::{Permutation, permutation_importance};
use feedforward::{Error, Init, Layer, MeanSquaredError, MlpConfig, Network, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use std::ops::Range;

fn random(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    DMatrix::from_fn(rows, cols, |_, _| rng.random_range(-1.0..1.0))
}

/// The definition, spelled out: per group, per repeat, a fresh shuffle of the samples drawn
/// from one stream seeded by `seed`, the group's rows taken from the shuffled samples.
fn by_hand(
    net: &Network<f64>,
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    groups: &[Range<usize>],
    repeats: usize,
    seed: u64,
) -> Vec<(f64, f64)> {
    let base = net.loss(x, &MeanSquaredError, y).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    groups
        .iter()
        .map(|g| {
            let growth: Vec<f64> = (0..repeats)
                .map(|_| {
                    let mut order: Vec<usize> = (0..x.ncols()).collect();
                    order.shuffle(&mut rng);
                    let mut shuffled = x.clone();
                    for (j, &from) in order.iter().enumerate() {
                        for r in g.clone() {
                            shuffled[(r, j)] = x[(r, from)];
                        }
                    }
                    net.loss(&shuffled, &MeanSquaredError, y).unwrap() - base
                })
                .collect();
            let mean = growth.iter().sum::<f64>() / repeats as f64;
            let var = growth.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / repeats as f64;
            (mean, var.sqrt())
        })
        .collect()
}

#[test]
fn the_importances_are_the_hand_made_shuffles() {
    let net = Network::<f64>::mlp(&[5, 8, 2], MlpConfig::default(), &mut StdRng::seed_from_u64(1)).unwrap();
    let (x, y) = (random(5, 40, 2), random(2, 40, 3));
    // A row alone, two rows together (as a one-hot code's), then two more alone.
    let groups = [0..1, 1..3, 3..4, 4..5];
    let config = Permutation { repeats: 4, seed: 9 };
    let found = permutation_importance(&net, &x, &MeanSquaredError, &y, &groups, &config).unwrap();
    let expected = by_hand(&net, &x, &y, &groups, 4, 9);
    for (f, (g, (mean, std))) in found.iter().zip(groups.iter().zip(expected)) {
        assert_eq!((&f.rows, f.mean, f.std), (g, mean, std));
    }
    // The same seed, the same numbers; another seed, other shuffles.
    assert_eq!(permutation_importance(&net, &x, &MeanSquaredError, &y, &groups, &config).unwrap(), found);
    let other = Permutation { seed: 10, ..config };
    assert_ne!(permutation_importance(&net, &x, &MeanSquaredError, &y, &groups, &other).unwrap(), found);
}

#[test]
fn an_input_the_network_ignores_has_none_and_the_one_it_reads_ranks_first() {
    // Classes by the sign of x₀; x₁ is noise the first layer's weights ignore.
    let mut rng = StdRng::seed_from_u64(4);
    let weight = DMatrix::from_fn(2, 4, |i, _| if i == 0 { rng.random_range(-1.0..1.0) } else { 0.0 });
    let first = Layer::from_parts(weight, None).unwrap();
    let net = Network::<f64>::new(2)
        .push(first.with_activation(feedforward::Activation::Tanh))
        .and_then(|n| n.push(Layer::new(4, 2, Init::He, &mut rng)))
        .unwrap();
    let x = random(2, 60, 5);
    let labels: Vec<usize> = (0..60).map(|j| usize::from(x[(0, j)] > 0.0)).collect();
    let found = permutation_importance(
        &net,
        &x,
        &SoftmaxCrossEntropy::new(),
        &labels[..],
        &[0..1, 1..2],
        &Permutation::default(),
    )
    .unwrap();
    assert_eq!((found[1].mean, found[1].std), (0.0, 0.0));
    assert!(found[0].mean.abs() > 0.0, "{found:?}");
}

#[test]
fn bad_settings_are_errors() {
    let net = Network::<f64>::mlp(&[3, 4, 1], MlpConfig::default(), &mut StdRng::seed_from_u64(6)).unwrap();
    let (x, y) = (random(3, 10, 7), random(1, 10, 8));
    let run = |groups: &[Range<usize>], config: Permutation, x: &DMatrix<f64>, y: &DMatrix<f64>| {
        permutation_importance(&net, x, &MeanSquaredError, y, groups, &config)
    };
    let zero = Permutation { repeats: 0, ..Permutation::default() };
    assert!(matches!(run(&[0..1, 1..2], zero, &x, &y), Err(Error::InvalidHyperparameter { .. })));
    #[allow(clippy::reversed_empty_ranges)]
    for bad in [1..1, 2..4, 3..4, 2..1] {
        let e = run(&[0..1, bad.clone()], Permutation::default(), &x, &y).unwrap_err();
        assert!(e.to_string().contains("permutation importance group"), "{bad:?}: {e}");
    }
    let empty = (DMatrix::zeros(3, 0), DMatrix::zeros(1, 0));
    assert!(matches!(
        run(&[0..1, 1..2], Permutation::default(), &empty.0, &empty.1),
        Err(Error::EmptyBatch { .. })
    ));
    let wide = random(4, 10, 9);
    assert!(matches!(
        run(&[0..1, 1..2], Permutation::default(), &wide, &y),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[cfg(feature = "data")]
#[test]
fn a_plans_column_rows_cover_its_inputs_in_order() {
    use feedforward::data::table::{Features, FillCategories, FillNumbers, Missing, Table};
    let text = "area,age,city,kind\n50,,Lyon,a\n70,3,Paris,b\n,8,Nice,\n65,1,Lyon,a\n";
    let table = Table::parse(text.as_bytes(), "houses.csv").unwrap();
    let missing =
        Missing { numbers: FillNumbers::Mean, categories: FillCategories::MostFrequent, indicators: true };
    let plan = Features::fit_with(&table, &["area", "age"], &["city", "kind"], missing)
        .unwrap()
        .with_indices(&["city"])
        .unwrap();
    let expected = [
        ("area", 0..1),
        ("age", 1..2),
        ("city", 2..3),
        ("kind", 3..5),
        ("area missing", 5..6),
        ("age missing", 6..7),
        ("kind missing", 7..8),
    ];
    let rows: Vec<(String, Range<usize>)> =
        expected.iter().map(|(n, r)| (n.to_string(), r.clone())).collect();
    assert_eq!(plan.column_rows(), rows);
    assert_eq!(plan.rows(), 8);
    assert_eq!(plan.names().len(), 8);
}
