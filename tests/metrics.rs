//! Confusion matrix, and the library's own checks of numbers a user gives (issue 13).

use feedforward::metrics::ConfusionMatrix;
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
