//! Confusion matrix, regression metrics, and the library's own checks of numbers a user gives
//! (issue 13).

use feedforward::metrics::{ConfusionMatrix, MultiLabelMetrics, RegressionMetrics};
use feedforward::train::{self, Batching, TrainConfig};
use feedforward::{Error, Init, MlpConfig, Network, Rmsprop, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

#[test]
fn a_confusion_matrix_counts_every_sample_or_says_which_it_cannot() {
    let m = ConfusionMatrix::new(3, &[0, 2, 2, 1], &[0, 1, 2, 1]).unwrap();
    assert_eq!((m.count(1, 2), m.count(1, 1), m.count(2, 2)), (1, 1, 1));
    assert_eq!(m.accuracy(), 0.75);
    // A true label or a prediction outside the classes: an error naming the sample, not a
    // quietly smaller denominator.
    assert!(matches!(
        ConfusionMatrix::new(3, &[0, 1, 2], &[0, 200, 2]),
        Err(Error::LabelOutOfRange { index: 1, label: 200, classes: 3 })
    ));
    assert!(matches!(
        ConfusionMatrix::new(3, &[0, 5], &[0, 1]),
        Err(Error::LabelOutOfRange { index: 1, .. })
    ));
    assert!(matches!(ConfusionMatrix::new(3, &[0], &[0, 1]), Err(Error::ShapeMismatch { .. })));
}

/// Precision, recall and F1 against counts taken straight from the label slices, on labels
/// where class 3 is never predicted and class 4 never occurs at all.
#[test]
fn precision_recall_and_f1_match_counts_of_the_labels() {
    let truth: Vec<usize> = (0..200).map(|i| (i * 7 + i / 13) % 4).collect();
    let predicted: Vec<usize> =
        truth.iter().enumerate().map(|(i, &t)| if i % 5 == 0 { (t + i) % 3 } else { t.min(2) }).collect();
    let m = ConfusionMatrix::new(5, &predicted, &truth).unwrap();
    let (precision, recall, f1) = (m.precision(), m.recall(), m.f1());
    for c in 0..5 {
        let pairs = || truth.iter().zip(&predicted);
        let tp = pairs().filter(|&(&t, &p)| t == c && p == c).count() as f64;
        let fp = pairs().filter(|&(&t, &p)| t != c && p == c).count() as f64;
        let fn_ = pairs().filter(|&(&t, &p)| t == c && p != c).count() as f64;
        let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        assert_eq!(precision[c], ratio(tp, tp + fp), "precision of {c}");
        assert_eq!(recall[c], ratio(tp, tp + fn_), "recall of {c}");
        assert_eq!(f1[c], ratio(2.0 * tp, 2.0 * tp + fp + fn_), "f1 of {c}");
        if let (Some(p), Some(r)) = (precision[c], recall[c]) {
            let harmonic = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
            assert!((f1[c].unwrap() - harmonic).abs() < 1e-12, "f1 of {c} is the harmonic mean");
        }
    }
    assert_eq!((precision[3], f1[3]), (None, Some(0.0)), "class 3 occurs but is never predicted");
    assert_eq!((precision[4], recall[4], f1[4]), (None, None, None), "class 4 is nowhere");
    let defined: Vec<f64> = f1.iter().flatten().copied().collect();
    assert_eq!(defined.len(), 4);
    assert_eq!(m.macro_f1(), Some(defined.iter().sum::<f64>() / 4.0));
    assert_eq!(ConfusionMatrix::new(3, &[], &[]).unwrap().macro_f1(), None);
}

#[test]
fn the_table_shows_counts_recall_and_precision() {
    let m = ConfusionMatrix::new(3, &[0, 0, 1, 1, 0], &[0, 0, 0, 1, 1]).unwrap();
    let expected = [
        "true\\pred      0      1      2   recall",
        "        0      2      1      0   66.67%",
        "        1      1      1      0   50.00%",
        "        2      0      0      0        -",
        "precision  66.7%  50.0%      -",
        "",
    ];
    assert_eq!(m.to_string(), expected.join("\n"));

    // Named classes widen the columns to the longest name; the counts do not change.
    let names = vec!["setosa".to_string(), "versicolor".into(), "virginica".into()];
    let named = m.clone().with_class_names(names.clone()).unwrap();
    let expected = [
        "true\\pred      setosa versicolor  virginica   recall",
        "    setosa          2          1          0   66.67%",
        "versicolor          1          1          0   50.00%",
        " virginica          0          0          0        -",
        "precision       66.7%      50.0%          -",
        "",
    ];
    assert_eq!(named.to_string(), expected.join("\n"));
    assert_eq!((named.class_names(), named.count(0, 1)), (Some(&names[..]), 1));
    assert!(matches!(m.with_class_names(vec!["a".into()]), Err(Error::ShapeMismatch { .. })));
}

/// Multi-label metrics against decisions counted here, label by label and pooled, with soft
/// targets (true above 0.5) and a threshold other than 0.5.
#[test]
fn multi_label_metrics_match_counts_of_the_decisions() {
    let (labels, samples) = (3, 40);
    let p = DMatrix::from_fn(labels, samples, |k, j| ((j * 37 + k * 11) % 100) as f64 / 100.0);
    let t = DMatrix::from_fn(labels, samples, |k, j| [0.0, 1.0, 0.8, 0.3, 1.0][(j + 2 * k) % 5]);
    let threshold = 0.35;
    let m = MultiLabelMetrics::new(&p, &t, threshold).unwrap();
    let (mut pooled_tp, mut pooled_fp, mut pooled_fn) = (0.0, 0.0, 0.0);
    for k in 0..labels {
        let pairs: Vec<(bool, bool)> =
            (0..samples).map(|j| (p[(k, j)] > threshold, t[(k, j)] > 0.5)).collect();
        let count = |want: (bool, bool)| pairs.iter().filter(|&&pair| pair == want).count() as f64;
        let (tp, fp, fn_) = (count((true, true)), count((true, false)), count((false, true)));
        (pooled_tp, pooled_fp, pooled_fn) = (pooled_tp + tp, pooled_fp + fp, pooled_fn + fn_);
        let label = &m.per_label()[k];
        assert_eq!(label.precision()[1], Some(tp / (tp + fp)), "label {k}");
        assert_eq!(label.recall()[1], Some(tp / (tp + fn_)), "label {k}");
        assert_eq!(m.f1()[k], Some(2.0 * tp / (2.0 * tp + fp + fn_)), "label {k}");
    }
    assert_eq!(m.micro_f1(), Some(2.0 * pooled_tp / (2.0 * pooled_tp + pooled_fp + pooled_fn)));
    let f1: Vec<f64> = m.f1().into_iter().flatten().collect();
    assert_eq!(m.macro_f1(), Some(f1.iter().sum::<f64>() / 3.0));
    let exact =
        (0..samples).filter(|&j| (0..labels).all(|k| (p[(k, j)] > threshold) == (t[(k, j)] > 0.5))).count();
    assert_eq!(m.subset_accuracy(), exact as f64 / samples as f64);
    assert!(exact > 0 && exact < samples, "the data should have both kinds of sample");

    // Bad input: shapes, NaN (naming the sample), nothing, a threshold that is not finite.
    assert!(matches!(
        MultiLabelMetrics::new(&p, &t.columns(0, 5).into_owned(), 0.5),
        Err(Error::ShapeMismatch { .. })
    ));
    let mut bad = p.clone();
    bad[(1, 17)] = f64::NAN;
    assert!(matches!(MultiLabelMetrics::new(&bad, &t, 0.5), Err(Error::NonFinite { sample: Some(17), .. })));
    assert!(matches!(
        MultiLabelMetrics::new(&DMatrix::<f64>::zeros(2, 0), &DMatrix::zeros(2, 0), 0.5),
        Err(Error::EmptyBatch { .. })
    ));
    assert!(matches!(MultiLabelMetrics::new(&p, &t, f64::NAN), Err(Error::InvalidHyperparameter { .. })));
}

#[test]
fn a_cell_outside_the_matrix_panics_whichever_index_is_out() {
    let m = ConfusionMatrix::new(4, &[0], &[0]).unwrap();
    for (t, p) in [(5, 0), (0, 4)] {
        let result = std::panic::catch_unwind(|| m.count(t, p));
        assert!(result.is_err(), "count({t}, {p}) must panic, not read another cell");
    }
}

#[test]
fn a_nan_or_negative_deviation_is_rejected() {
    for (w, b) in [(f64::NAN, 1.0), (0.1, f64::NAN), (-0.1, 1.0), (0.1, f64::INFINITY)] {
        assert!(matches!(Init::normal(w, b), Err(Error::InvalidHyperparameter { .. })), "{w} {b}");
    }
    let init = Init::normal(0.1, 1.0).unwrap();
    assert_eq!(init, Init::SEED_RECIPE);
}

#[test]
fn a_run_longer_than_a_usize_is_an_error_not_zero_steps() {
    let mut net =
        Network::<f32>::mlp(&[2, 3, 2], MlpConfig::default(), &mut StdRng::seed_from_u64(0)).unwrap();
    let x = DMatrix::from_element(2, 10, 0.5);
    let config = TrainConfig {
        epochs: 1 << 63,
        batching: Batching::Minibatch { size: 1, shuffle: false },
        ..TrainConfig::default()
    };
    let mut opt = Rmsprop::elementwise(1e-3).unwrap();
    let loss = SoftmaxCrossEntropy::new();
    match train::fit(&mut net, &mut opt, &loss, train::Data::new(&x, &[0; 10][..]), &config, |_, _, _| {}) {
        Err(e @ Error::InvalidHyperparameter { name: "epochs", .. }) => {
            assert!(e.to_string().contains("9.223372036854776e18"), "{e}")
        }
        other => panic!("expected an epochs error, got {other:?}"),
    }
    assert_eq!(net.steps(), 0);
}

#[test]
fn messages_count_in_good_grammar() {
    let net = Network::<f32>::mlp(&[2, 3, 2], MlpConfig::default(), &mut StdRng::seed_from_u64(0)).unwrap();
    let e = net.output(&DMatrix::from_element(1, 1, 0.5)).unwrap_err().to_string();
    assert!(e.contains("got 1 row") && !e.contains("1 rows"), "{e}");
    let e = net.evaluate(&DMatrix::from_element(2, 2, 0.5), &SoftmaxCrossEntropy::new(), &[1]).unwrap_err();
    assert!(e.to_string().contains("got 1 label") && !e.to_string().contains("1 labels"), "{e}");
}

/// Regression metrics against sums written out here in f64, entry by entry, on two outputs
/// of different scales (relative error ≤ 1e-12: the same sums in another order); the MSE is
/// `MeanSquaredError`'s loss; R² is 1 for a perfect fit, 0 for the mean, undefined for a
/// constant target; bad shapes, no samples and non-finite values are errors naming the sample.
#[test]
fn regression_metrics_match_their_definitions() {
    use feedforward::{Loss, MeanSquaredError};
    let truth =
        DMatrix::<f64>::from_fn(2, 50, |i, j| (j as f64 * 0.37).sin() * if i == 0 { 1.0 } else { 100.0 });
    let predicted = truth.map_with_location(|i, j, t| t + ((i * 7 + j * 3) % 5) as f64 * 0.01 - 0.02);
    let m = RegressionMetrics::new(&predicted, &truth).unwrap();
    let n = 100.0;
    let mse: f64 = predicted.iter().zip(truth.iter()).map(|(p, t)| (p - t).powi(2)).sum::<f64>() / n;
    let mae: f64 = predicted.iter().zip(truth.iter()).map(|(p, t)| (p - t).abs()).sum::<f64>() / n;
    let r2_row = |r: usize| {
        let mean = truth.row(r).mean();
        let residual: f64 = (0..50).map(|j| (truth[(r, j)] - predicted[(r, j)]).powi(2)).sum();
        let total: f64 = (0..50).map(|j| (truth[(r, j)] - mean).powi(2)).sum();
        1.0 - residual / total
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1e-300);
    assert!(close(m.mse, mse) && close(m.rmse, mse.sqrt()) && close(m.mae, mae), "{m:?}");
    assert!(close(m.r2.unwrap(), (r2_row(0) + r2_row(1)) / 2.0), "{m:?}");
    assert!(close(m.mse, MeanSquaredError.loss(&predicted, &truth).unwrap()), "{m:?}");

    assert_eq!(RegressionMetrics::new(&truth, &truth).unwrap().r2, Some(1.0));
    let means = DMatrix::from_fn(2, 50, |i, _| truth.row(i).mean());
    assert!(RegressionMetrics::new(&means, &truth).unwrap().r2.unwrap().abs() < 1e-12);
    let constant = DMatrix::from_fn(2, 50, |i, j| if i == 0 { truth[(0, j)] } else { 3.0 });
    assert_eq!(RegressionMetrics::new(&predicted, &constant).unwrap().r2, None);

    assert!(matches!(
        RegressionMetrics::new(&truth.columns(0, 49).into_owned(), &truth),
        Err(Error::ShapeMismatch { .. })
    ));
    let empty = DMatrix::<f64>::zeros(2, 0);
    assert!(matches!(RegressionMetrics::new(&empty, &empty), Err(Error::EmptyBatch { .. })));
    let mut poisoned = predicted.clone();
    poisoned[(1, 17)] = f64::NAN;
    let err = RegressionMetrics::new(&poisoned, &truth).unwrap_err();
    assert!(matches!(err, Error::NonFinite { sample: Some(17), .. }), "{err}");
    let err =
        RegressionMetrics::new(&predicted, &poisoned.map(|v| if v.is_nan() { f64::INFINITY } else { v }))
            .unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { sample: Some(17), ref what, .. } if what == "regression targets"),
        "{err}"
    );
}

/// The ROC AUC by its definition: over every (positive, negative) pair, 1 when the positive
/// scores higher, ½ for a tie. `O(P·N)`, written independently of the library's sort.
fn auc_by_pairs(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let of = |kind: bool| scores.iter().zip(positive).filter(move |(_, p)| **p == kind).map(|(s, _)| *s);
    let (mut right, mut pairs) = (0.0, 0.0);
    for p in of(true) {
        for n in of(false) {
            pairs += 1.0;
            right += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    (pairs > 0.0).then(|| right / pairs)
}

#[test]
fn roc_auc_counts_the_pairs_ranked_right_ties_half() {
    use feedforward::metrics::roc_auc;
    // scikit-learn's documented example of `roc_auc_score`.
    assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap(), Some(0.75));
    let mut rng = StdRng::seed_from_u64(11);
    for n in [1, 2, 3, 10, 57, 400] {
        // Scores on a coarse grid, so that many tie, across both kinds of sample.
        let scores: Vec<f64> =
            (0..n).map(|_| f64::from(rand::RngExt::random_range(&mut rng, 0..7u8)) / 7.0).collect();
        let positive: Vec<bool> = (0..n).map(|_| rand::RngExt::random_bool(&mut rng, 0.3)).collect();
        let auc = roc_auc(&scores, &positive).unwrap();
        assert_eq!(auc, auc_by_pairs(&scores, &positive), "n = {n}");
        // Reversing the scores reverses the ranking.
        let reversed: Vec<f64> = scores.iter().map(|s| -s).collect();
        if let Some(a) = auc {
            assert!((roc_auc(&reversed, &positive).unwrap().unwrap() - (1.0 - a)).abs() < 1e-15);
        }
        // f32 scores give the same ranking.
        let narrow: Vec<f32> = scores.iter().map(|&s| s as f32).collect();
        assert_eq!(roc_auc(&narrow, &positive).unwrap(), auc);
    }
    // No pair to rank: every sample positive, or none.
    assert_eq!(roc_auc(&[0.2, 0.9], &[false, false]).unwrap(), None);
    // What it cannot score is an error naming why.
    assert!(matches!(roc_auc(&[0.2, 0.9], &[true]), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(roc_auc::<f64>(&[], &[]), Err(Error::EmptyBatch { .. })));
    assert!(matches!(
        roc_auc(&[0.2, f64::NAN], &[true, false]),
        Err(Error::NonFinite { sample: Some(1), .. })
    ));
}

#[test]
fn one_vs_rest_and_multi_label_auc_score_each_row_against_its_truth() {
    use feedforward::metrics::{one_vs_rest_auc, roc_auc};
    let mut rng = StdRng::seed_from_u64(5);
    let scores = DMatrix::from_fn(4, 60, |_, _| rand::RngExt::random_range(&mut rng, 0.0..1.0));
    // Class 3 never occurs: no positive to rank.
    let labels: Vec<usize> = (0..60).map(|j| (j * 7 + j / 5) % 3).collect();
    let auc = one_vs_rest_auc(&scores, &labels).unwrap();
    for (class, auc) in auc.iter().enumerate() {
        let row: Vec<f64> = scores.row(class).iter().copied().collect();
        let positive: Vec<bool> = labels.iter().map(|&l| l == class).collect();
        assert_eq!(*auc, auc_by_pairs(&row, &positive), "class {class}");
    }
    assert_eq!(auc[3], None);
    assert!(matches!(
        one_vs_rest_auc(&scores, &[&labels[..59], &[4]].concat()),
        Err(Error::LabelOutOfRange { index: 59, label: 4, classes: 4 })
    ));
    // Multi-label: each label's row of probabilities against its row of targets.
    let targets =
        DMatrix::from_fn(4, 60, |k, j| if k == 2 { 1.0 } else { f64::from(u8::from((j * (k + 3)) % 5 < 2)) });
    let m = MultiLabelMetrics::new(&scores, &targets, 0.5).unwrap();
    for k in 0..4 {
        let row: Vec<f64> = scores.row(k).iter().copied().collect();
        let positive: Vec<bool> = targets.row(k).iter().map(|&t| t == 1.0).collect();
        assert_eq!(m.auc()[k], roc_auc(&row, &positive).unwrap(), "label {k}");
    }
    // Label 2 is yes everywhere: no AUC, and the mean is over the other three.
    assert_eq!(m.auc()[2], None);
    let defined: Vec<f64> = m.auc().iter().flatten().copied().collect();
    assert_eq!(m.macro_auc(), Some(defined.iter().sum::<f64>() / 3.0));
}

/// `n` samples of random data with integer weights 0–3, and the same samples each copied as
/// many times as its weight: a weighted metric must equal the plain one of the copies.
fn copies_by_weight(weights: &[f64]) -> Vec<usize> {
    weights.iter().enumerate().flat_map(|(i, &w)| std::iter::repeat_n(i, w as usize)).collect()
}

fn integer_weights(rng: &mut StdRng, n: usize) -> Vec<f64> {
    let mut weights: Vec<f64> = (0..n).map(|_| f64::from(rand::RngExt::random_range(rng, 0..4u8))).collect();
    weights[0] = 1.0; // never all 0
    weights
}

#[test]
fn a_weighted_confusion_matrix_scores_as_copied_samples_and_ignores_the_weights_scale() {
    let mut rng = StdRng::seed_from_u64(21);
    let n = 300;
    let truth: Vec<usize> = (0..n).map(|_| rand::RngExt::random_range(&mut rng, 0..4)).collect();
    // Mostly right, so that every score is defined and varied.
    let predicted: Vec<usize> = truth
        .iter()
        .map(|&t| if rand::RngExt::random_bool(&mut rng, 0.7) { t } else { (t + 1) % 4 })
        .collect();
    let weights = integer_weights(&mut rng, n);
    let weighted = ConfusionMatrix::weighted(4, &predicted, &truth, &weights).unwrap();
    let copies = copies_by_weight(&weights);
    let pick = |v: &[usize]| copies.iter().map(|&i| v[i]).collect::<Vec<_>>();
    let copied = ConfusionMatrix::new(4, &pick(&predicted), &pick(&truth)).unwrap();
    // Sums of whole weights are exact: the scores are equal, not close.
    assert_eq!(weighted.accuracy(), copied.accuracy());
    assert_eq!(weighted.recall(), copied.recall());
    assert_eq!(weighted.precision(), copied.precision());
    assert_eq!(weighted.f1(), copied.f1());
    for (t, p) in [(0, 0), (1, 2), (3, 0)] {
        assert_eq!(weighted.weight(t, p), copied.count(t, p) as f64);
        assert_eq!(weighted.count(t, p), (0..n).filter(|&i| truth[i] == t && predicted[i] == p).count());
    }
    assert!(weighted.is_weighted() && !copied.is_weighted());
    // Weights of 1 are the unweighted matrix's scores.
    let plain = ConfusionMatrix::new(4, &predicted, &truth).unwrap();
    let ones = ConfusionMatrix::weighted(4, &predicted, &truth, &vec![1.0; n]).unwrap();
    assert_eq!((ones.accuracy(), ones.f1()), (plain.accuracy(), plain.f1()));
    // Scaled weights: the same scores (to rounding).
    let scaled: Vec<f64> = weights.iter().map(|w| w * 0.37).collect();
    let scaled = ConfusionMatrix::weighted(4, &predicted, &truth, &scaled).unwrap();
    assert!((scaled.accuracy() - weighted.accuracy()).abs() < 1e-14);
    assert!((scaled.macro_f1().unwrap() - weighted.macro_f1().unwrap()).abs() < 1e-14);
}

#[test]
fn weights_a_metric_cannot_use_are_errors_naming_the_sample() {
    let (p, t) = ([0, 1, 1], [0, 1, 0]);
    let weighted = |w: &[f64]| ConfusionMatrix::weighted(2, &p, &t, w);
    assert!(matches!(weighted(&[1.0, -1.0, 1.0]), Err(Error::InvalidSampleWeight { sample: Some(1), .. })));
    assert!(matches!(
        weighted(&[1.0, 1.0, f64::NAN]),
        Err(Error::InvalidSampleWeight { sample: Some(2), .. })
    ));
    assert!(matches!(weighted(&[0.0; 3]), Err(Error::InvalidSampleWeight { sample: None, .. })));
    assert!(matches!(weighted(&[1.0; 2]), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(ConfusionMatrix::weighted(2, &[], &[], &[]), Err(Error::EmptyBatch { .. })));
    let m = DMatrix::from_row_slice(1, 3, &[0.2, 0.7, 0.9]);
    assert!(matches!(
        RegressionMetrics::weighted(&m, &m, &[1.0, f64::INFINITY, 1.0]),
        Err(Error::InvalidSampleWeight { sample: Some(1), .. })
    ));
    assert!(matches!(
        MultiLabelMetrics::weighted(&m, &m, 0.5, &[1.0, 1.0]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        feedforward::metrics::weighted_roc_auc(&[0.2, 0.7], &[true, false], &[-0.5, 1.0]),
        Err(Error::InvalidSampleWeight { sample: Some(0), .. })
    ));
    let message = weighted(&[1.0, -1.0, 1.0]).unwrap_err().to_string();
    assert!(message.contains("sample 1") && message.contains("-1"), "{message}");
}

#[test]
fn a_weighted_table_shows_the_weights_and_says_so() {
    let m = ConfusionMatrix::weighted(2, &[0, 1, 1], &[0, 1, 0], &[2.5, 1.0, 0.125]).unwrap();
    let text = m.to_string();
    assert_eq!(
        text,
        "true\\pred      0      1   recall\n\
         \x20       0    2.5  0.125   95.24%\n\
         \x20       1      0      1  100.00%\n\
         precision 100.0%  88.9%\n\
         (cells are sums of sample weights)\n"
    );
    // Long weights widen the columns; four significant digits at most.
    let wide = ConfusionMatrix::weighted(2, &[0, 1], &[0, 1], &[1234567.0, 1.0 / 3.0]).unwrap().to_string();
    assert!(wide.contains(" 1234567 ") && wide.contains(" 0.3333 "), "{wide}");
    assert!(!ConfusionMatrix::new(2, &[0], &[0]).unwrap().to_string().contains("weights"));
}

#[test]
fn weighted_regression_metrics_match_copied_samples() {
    let mut rng = StdRng::seed_from_u64(22);
    let n = 80;
    let truth = DMatrix::from_fn(2, n, |_, _| rand::RngExt::random_range(&mut rng, -3.0..3.0));
    let predicted = truth.map(|v| v + rand::RngExt::random_range(&mut rng, -1.0..1.0));
    let weights = integer_weights(&mut rng, n);
    let copies = copies_by_weight(&weights);
    let pick = |m: &DMatrix<f64>| m.select_columns(&copies);
    let weighted = RegressionMetrics::weighted(&predicted, &truth, &weights).unwrap();
    let copied = RegressionMetrics::new(&pick(&predicted), &pick(&truth)).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    assert!(close(weighted.mse, copied.mse) && close(weighted.mae, copied.mae), "{weighted:?} {copied:?}");
    assert!(close(weighted.r2.unwrap(), copied.r2.unwrap()), "{weighted:?} {copied:?}");
    // Weights of 1 are exactly the unweighted metrics.
    assert_eq!(
        RegressionMetrics::weighted(&predicted, &truth, &vec![1.0; n]).unwrap(),
        RegressionMetrics::new(&predicted, &truth).unwrap()
    );
    // A row whose weighted targets do not vary has no R²: only one sample weighs anything.
    let mut lone = vec![0.0; n];
    lone[3] = 1.0;
    assert_eq!(RegressionMetrics::weighted(&predicted, &truth, &lone).unwrap().r2, None);
}

#[test]
fn weighted_auc_counts_each_pair_by_the_product_of_its_weights() {
    use feedforward::metrics::{one_vs_rest_auc, roc_auc, weighted_one_vs_rest_auc, weighted_roc_auc};
    let mut rng = StdRng::seed_from_u64(23);
    for n in [2, 9, 60, 300] {
        let scores: Vec<f64> =
            (0..n).map(|_| f64::from(rand::RngExt::random_range(&mut rng, 0..7u8)) / 7.0).collect();
        let mut positive: Vec<bool> = (0..n).map(|_| rand::RngExt::random_bool(&mut rng, 0.4)).collect();
        (positive[0], positive[1]) = (true, false);
        // Real weights, against the definition pair by pair.
        let weights: Vec<f64> = (0..n).map(|_| rand::RngExt::random_range(&mut rng, 0.0..2.0)).collect();
        let (mut right, mut pairs) = (0.0, 0.0);
        for i in (0..n).filter(|&i| positive[i]) {
            for j in (0..n).filter(|&j| !positive[j]) {
                let w = weights[i] * weights[j];
                pairs += w;
                right += w * if scores[i] > scores[j] {
                    1.0
                } else if scores[i] == scores[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
        let auc = weighted_roc_auc(&scores, &positive, &weights).unwrap().unwrap();
        assert!((auc - right / pairs).abs() < 1e-12, "n = {n}: {auc} against {}", right / pairs);
        // Whole weights are copied samples, exactly; weights of 1 are the plain AUC.
        let whole = integer_weights(&mut rng, n);
        let copies = copies_by_weight(&whole);
        let copied = roc_auc(
            &copies.iter().map(|&i| scores[i]).collect::<Vec<_>>(),
            &copies.iter().map(|&i| positive[i]).collect::<Vec<_>>(),
        );
        assert_eq!(weighted_roc_auc(&scores, &positive, &whole).unwrap(), copied.unwrap(), "n = {n}");
        assert_eq!(
            weighted_roc_auc(&scores, &positive, &vec![1.0; n]).unwrap(),
            roc_auc(&scores, &positive).unwrap()
        );
    }
    // The negatives weigh nothing: no pair to rank.
    assert_eq!(weighted_roc_auc(&[0.1, 0.9], &[false, true], &[0.0, 1.0]).unwrap(), None);
    // One against the rest, class by class.
    let scores = DMatrix::from_fn(3, 40, |_, _| rand::RngExt::random_range(&mut rng, 0.0..1.0));
    let labels: Vec<usize> = (0..40).map(|j| (j * 5 + j / 3) % 3).collect();
    let whole = integer_weights(&mut rng, 40);
    let copies = copies_by_weight(&whole);
    let copied = one_vs_rest_auc(
        &scores.select_columns(&copies),
        &copies.iter().map(|&i| labels[i]).collect::<Vec<_>>(),
    );
    assert_eq!(weighted_one_vs_rest_auc(&scores, &labels, &whole).unwrap(), copied.unwrap());
}

#[test]
fn weighted_multi_label_metrics_match_copied_samples() {
    let mut rng = StdRng::seed_from_u64(24);
    let n = 120;
    let p = DMatrix::from_fn(3, n, |_, _| rand::RngExt::random_range(&mut rng, 0.0..1.0));
    let t =
        p.map(|v: f64| if rand::RngExt::random_bool(&mut rng, 0.8) { v.round() } else { 1.0 - v.round() });
    let weights = integer_weights(&mut rng, n);
    let copies = copies_by_weight(&weights);
    let weighted = MultiLabelMetrics::weighted(&p, &t, 0.5, &weights).unwrap();
    let copied = MultiLabelMetrics::new(&p.select_columns(&copies), &t.select_columns(&copies), 0.5).unwrap();
    assert_eq!(weighted.subset_accuracy(), copied.subset_accuracy());
    assert_eq!((weighted.f1(), weighted.micro_f1()), (copied.f1(), copied.micro_f1()));
    assert_eq!(weighted.auc(), copied.auc());
    for k in 0..3 {
        assert_eq!(weighted.per_label()[k].weight(1, 0), copied.per_label()[k].count(1, 0) as f64);
    }
    assert_eq!(weighted.pooled().weight(0, 1), copied.pooled().count(0, 1) as f64);
}

#[test]
fn the_roc_curve_matches_scikit_learns_example_and_its_area_is_the_auc() {
    use feedforward::metrics::BinaryScores;
    // scikit-learn's `roc_curve` example: y = [1, 1, 2, 2] (2 positive), scores [0.1, 0.4, 0.35, 0.8].
    let ranked = BinaryScores::new(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
    let roc = ranked.roc_curve().unwrap();
    assert_eq!(roc.thresholds, [f64::INFINITY, 0.8, 0.4, 0.35, 0.1]);
    assert_eq!(roc.false_positive_rate, [0.0, 0.0, 0.5, 0.5, 1.0]);
    assert_eq!(roc.true_positive_rate, [0.0, 0.5, 0.5, 1.0, 1.0]);
    assert_eq!((ranked.positives(), ranked.negatives()), (2.0, 2.0));
    // On random scores with ties, weighted or not, the trapezoids under the curve add up to
    // the AUC counted by pairs.
    let mut rng = StdRng::seed_from_u64(31);
    for n in [3, 40, 500] {
        let scores: Vec<f64> =
            (0..n).map(|_| f64::from(rand::RngExt::random_range(&mut rng, 0..9u8)) / 9.0).collect();
        let mut positive: Vec<bool> = (0..n).map(|_| rand::RngExt::random_bool(&mut rng, 0.3)).collect();
        (positive[0], positive[1]) = (true, false);
        let weights: Vec<f64> = (0..n).map(|_| rand::RngExt::random_range(&mut rng, 0.0..2.0)).collect();
        for ranked in
            [BinaryScores::new(&scores, &positive), BinaryScores::weighted(&scores, &positive, &weights)]
        {
            let ranked = ranked.unwrap();
            let roc = ranked.roc_curve().unwrap();
            let (x, y) = (&roc.false_positive_rate, &roc.true_positive_rate);
            let area: f64 = (1..x.len()).map(|k| (x[k] - x[k - 1]) * (y[k] + y[k - 1]) / 2.0).sum();
            assert!((area - ranked.roc_auc().unwrap()).abs() < 1e-12, "n = {n}");
            assert_eq!((x[x.len() - 1], y[y.len() - 1]), (1.0, 1.0));
            assert!(roc.thresholds.windows(2).all(|t| t[0] > t[1]));
        }
    }
    // One kind of sample only: no curve.
    assert_eq!(BinaryScores::new(&[0.2, 0.9], &[true, true]).unwrap().roc_curve(), None);
}

/// The average precision straight from its definition: for each distinct score t, highest
/// first, calling positive every sample scoring ≥ t.
fn average_precision_by_thresholds(scores: &[f64], positive: &[bool], weights: &[f64]) -> f64 {
    let mut thresholds = scores.to_vec();
    thresholds.sort_by(|a, b| b.total_cmp(a));
    thresholds.dedup();
    let total: f64 = (0..scores.len()).filter(|&i| positive[i]).map(|i| weights[i]).sum();
    let (mut sum, mut previous) = (0.0, 0.0);
    for t in thresholds {
        let called = |want: bool| {
            (0..scores.len())
                .filter(|&i| scores[i] >= t && positive[i] == want)
                .map(|i| weights[i])
                .sum::<f64>()
        };
        let (tp, fp) = (called(true), called(false));
        if tp + fp == 0.0 {
            continue;
        }
        sum += (tp / total - previous) * tp / (tp + fp);
        previous = tp / total;
    }
    sum
}

#[test]
fn average_precision_follows_its_definition_and_weighs_like_copies() {
    use feedforward::metrics::BinaryScores;
    let mut rng = StdRng::seed_from_u64(32);
    for n in [2, 30, 400] {
        let scores: Vec<f64> =
            (0..n).map(|_| f64::from(rand::RngExt::random_range(&mut rng, 0..11u8)) / 11.0).collect();
        let mut positive: Vec<bool> = (0..n).map(|_| rand::RngExt::random_bool(&mut rng, 0.2)).collect();
        positive[0] = true;
        let weights: Vec<f64> = (0..n).map(|_| rand::RngExt::random_range(&mut rng, 0.0..3.0)).collect();
        let ap = BinaryScores::weighted(&scores, &positive, &weights).unwrap().average_precision().unwrap();
        let expected = average_precision_by_thresholds(&scores, &positive, &weights);
        assert!((ap - expected).abs() < 1e-12, "n = {n}: {ap} against {expected}");
        let plain = BinaryScores::new(&scores, &positive).unwrap().average_precision().unwrap();
        assert!((plain - average_precision_by_thresholds(&scores, &positive, &vec![1.0; n])).abs() < 1e-12);
        // Whole weights are copied samples.
        let whole = integer_weights(&mut rng, n);
        let copies = copies_by_weight(&whole);
        let pick = |v: &[f64]| copies.iter().map(|&i| v[i]).collect::<Vec<_>>();
        let copied_positive: Vec<bool> = copies.iter().map(|&i| positive[i]).collect();
        let copied = BinaryScores::new(&pick(&scores), &copied_positive).unwrap();
        let weighted = BinaryScores::weighted(&scores, &positive, &whole).unwrap();
        match (weighted.average_precision(), copied.average_precision()) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "n = {n}"),
            (a, b) => assert_eq!(a, b, "n = {n}"),
        }
        assert_eq!(
            weighted.precision_recall_curve().map(|c| c.thresholds),
            copied.precision_recall_curve().map(|c| c.thresholds)
        );
    }
    // Every positive ranked first: 1. The positives last, 2 of 5: the precision at recall 1/2
    // and 1 is 1/4 and 2/5.
    let ranked = BinaryScores::new(&[0.9, 0.8, 0.3, 0.2, 0.1], &[true, true, false, false, false]).unwrap();
    assert_eq!(ranked.average_precision(), Some(1.0));
    let ranked = BinaryScores::new(&[0.9, 0.8, 0.7, 0.2, 0.1], &[false, false, false, true, true]).unwrap();
    assert!((ranked.average_precision().unwrap() - (0.5 * 0.25 + 0.5 * 0.4)).abs() < 1e-15);
    // No positive: no recall, no curve.
    let none = BinaryScores::new(&[0.2, 0.9], &[false, false]).unwrap();
    assert_eq!((none.average_precision(), none.precision_recall_curve()), (None, None));
    // What cannot be ranked is an error naming why.
    assert!(matches!(
        BinaryScores::new(&[0.2, f64::NAN], &[true, false]),
        Err(Error::NonFinite { sample: Some(1), .. })
    ));
    assert!(matches!(BinaryScores::new::<f64>(&[], &[]), Err(Error::EmptyBatch { .. })));
    assert!(matches!(
        BinaryScores::weighted(&[0.2, 0.4], &[true, false], &[0.0, 0.0]),
        Err(Error::InvalidSampleWeight { sample: None, .. })
    ));
}

#[test]
fn multi_label_and_one_vs_rest_average_precision_are_each_rows() {
    use feedforward::metrics::{BinaryScores, one_vs_rest_scores, weighted_one_vs_rest_scores};
    let mut rng = StdRng::seed_from_u64(33);
    let p = DMatrix::from_fn(3, 90, |_, _| rand::RngExt::random_range(&mut rng, 0.0..1.0));
    let t =
        p.map(|v: f64| if rand::RngExt::random_bool(&mut rng, 0.75) { v.round() } else { 1.0 - v.round() });
    let weights = integer_weights(&mut rng, 90);
    let m = MultiLabelMetrics::weighted(&p, &t, 0.5, &weights).unwrap();
    for k in 0..3 {
        let row: Vec<f64> = p.row(k).iter().copied().collect();
        let yes: Vec<bool> = t.row(k).iter().map(|&v| v > 0.5).collect();
        let ranked = BinaryScores::weighted(&row, &yes, &weights).unwrap();
        assert_eq!(m.average_precision()[k], ranked.average_precision());
        assert_eq!(m.auc()[k], ranked.roc_auc());
    }
    let mean = m.average_precision().iter().flatten().sum::<f64>() / 3.0;
    assert_eq!(m.macro_average_precision(), Some(mean));
    // A class against the rest.
    let labels: Vec<usize> = (0..90).map(|j| (j * 7) % 3).collect();
    let each = one_vs_rest_scores(&p, &labels).unwrap();
    let weighted = weighted_one_vs_rest_scores(&p, &labels, &weights).unwrap();
    for class in 0..3 {
        let row: Vec<f64> = p.row(class).iter().copied().collect();
        let yes: Vec<bool> = labels.iter().map(|&l| l == class).collect();
        assert_eq!(each[class], BinaryScores::new(&row, &yes).unwrap());
        assert_eq!(weighted[class], BinaryScores::weighted(&row, &yes, &weights).unwrap());
    }
}
