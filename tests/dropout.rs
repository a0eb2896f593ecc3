//! Dropout: active in training steps only, seeded masks (same seed, same run, any thread
//! count), inverted scaling, gradient checks with the mask held fixed, model files.

use feedforward::gradcheck::{self, Config};
use feedforward::train::{self, Batching, TrainConfig};
use feedforward::{
    Activation, Dropout, Init, Layer, Module, Network, Rmsprop, SoftmaxCrossEntropy, TrainContext,
};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn net(p_input: f64, p_hidden: f64, seed: u64) -> Network<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Network::new(20)
        .push(Dropout::new(p_input).unwrap())
        .unwrap()
        .push(Layer::new(20, 32, Init::He, &mut rng).with_activation(Activation::Relu))
        .unwrap()
        .push(Dropout::new(p_hidden).unwrap())
        .unwrap()
        .push(Layer::new(32, 4, Init::He, &mut rng))
        .unwrap()
}

/// The same layers without the dropout modules.
fn without_dropout(seed: u64) -> Network<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Network::new(20)
        .push(Layer::new(20, 32, Init::He, &mut rng).with_activation(Activation::Relu))
        .unwrap()
        .push(Layer::new(32, 4, Init::He, &mut rng))
        .unwrap()
}

fn data(n: usize) -> (DMatrix<f64>, Vec<usize>) {
    let x = DMatrix::from_fn(20, n, |i, j| (((i * 7 + j * 3) % 11) as f64 - 5.0) / 5.0);
    (x, (0..n).map(|j| j % 4).collect())
}

#[test]
fn inference_never_drops() {
    let (x, y) = data(30);
    let (with, without) = (net(0.3, 0.5, 1), without_dropout(1));
    assert_eq!(with.output(&x).unwrap(), without.output(&x).unwrap());
    assert_eq!(with.predict(&x).unwrap(), without.predict(&x).unwrap());
    assert_eq!(with.probabilities(&x).unwrap(), without.probabilities(&x).unwrap());
    let ce = SoftmaxCrossEntropy::new();
    assert_eq!(with.evaluate(&x, &ce, &y).unwrap(), without.evaluate(&x, &ce, &y).unwrap());
}

#[test]
fn a_training_step_drops_and_scales_what_it_keeps() {
    let p = 0.3;
    let mut d = Dropout::new(p).unwrap();
    let x = DMatrix::<f64>::from_element(100, 200, 2.0);
    let mut y = DMatrix::zeros(100, 200);
    Module::<f64>::forward_train(&mut d, &x, &mut y, &mut TrainContext::new(5, 1, 0));
    let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / 20_000.0;
    // 20,000 draws: the kept share is within 1.5% of 0.7 (about 4.6 standard errors).
    assert!((kept - 0.7).abs() < 0.015, "kept {kept}");
    assert!(y.iter().all(|&v| v == 0.0 || v == 2.0 / (1.0 - p)), "inverted scaling");
    // The mean is kept, in expectation.
    assert!((y.mean() / 2.0 - 1.0).abs() < 0.025, "{}", y.mean());
    // Backward drops the same entries with the same scale.
    let mut dx = DMatrix::zeros(100, 200);
    Module::<f64>::backward(&mut d, &x, &y, &DMatrix::from_element(100, 200, 1.0), Some(&mut dx));
    assert_eq!(dx.map(|v| v * 2.0), y);
    assert!(Dropout::new(1.0).is_err() && Dropout::new(-0.1).is_err() && Dropout::new(f64::NAN).is_err());
    assert_eq!(Dropout::new(0.0).unwrap().probability(), 0.0);
}

#[test]
fn the_same_seed_gives_the_same_run_on_any_thread_count() {
    let run = |seed: u64, threads: usize| {
        feedforward::linalg::set_threads(threads);
        let (x, y) = data(64);
        let mut n = net(0.2, 0.5, 3).with_seed(seed);
        let mut opt = Rmsprop::elementwise(1e-2).unwrap();
        let config = TrainConfig {
            epochs: 3,
            batching: Batching::Minibatch { size: 16, shuffle: true },
            ..TrainConfig::default()
        };
        let mut losses = Vec::new();
        train::fit(
            &mut n,
            &mut opt,
            &SoftmaxCrossEntropy::new(),
            train::Data::new(&x, &y),
            &config,
            |event, _, _| {
                let train::Event::Step(p) = event else { return };
                losses.push(p.report.loss)
            },
        )
        .unwrap();
        let weights: Vec<f64> = n.parameters().flat_map(|p| p.value().iter().copied()).collect();
        feedforward::linalg::set_threads(0);
        (losses, weights)
    };
    let a = run(11, 1);
    assert_eq!(a, run(11, 2));
    assert_eq!(a, run(11, 3));
    assert_ne!(a.0, run(12, 2).0, "another seed, other masks");
}

#[test]
fn a_step_trains_on_dropped_activations_and_reports_their_loss() {
    let (x, y) = data(40);
    let ce = SoftmaxCrossEntropy::new();
    let mut n = net(0.0, 0.5, 4);
    let clean = n.loss(&x, &ce, &y).unwrap();
    let mut opt = Rmsprop::elementwise(1e-9).unwrap();
    let report = n.train_step(&x, &ce, &y, &mut opt).unwrap();
    assert_ne!(report.loss, clean, "the step's loss is that of the dropped network");
}

/// f64, central differences, bound 1e-6: with the mask of the analytic pass held fixed.
#[test]
fn gradients_check_with_the_mask_held_fixed() {
    let (x, y) = data(6);
    let mut n = net(0.25, 0.5, 6).with_seed(9);
    let report =
        gradcheck::check_network(&mut n, &x, &SoftmaxCrossEntropy::new(), &y[..], &Config::default())
            .unwrap();
    assert!(report.max_error <= 1e-6, "{report}");
    let mut d = Dropout::new(0.4).unwrap();
    let report = gradcheck::check_module(&mut d, &x, &Config::default()).unwrap();
    assert!(report.max_error <= 1e-6, "{report}");
}

#[test]
fn dropout_survives_a_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropout.safetensors");
    let n = net(0.2, 0.5, 7);
    n.save(&path).unwrap();
    let back = Network::<f64>::load(&path).unwrap();
    let kinds: Vec<_> = back.modules().iter().map(|m| m.kind()).collect();
    assert_eq!(kinds, ["Dropout", "Layer", "Dropout", "Layer"]);
    assert_eq!(format!("{:?}", back.modules()[2]), format!("{:?}", Dropout::new(0.5).unwrap()));
    let (x, _) = data(5);
    assert_eq!(back.output(&x).unwrap(), n.output(&x).unwrap());
}

/// A loaded network's dropout, reached by type and turned down to 0 for fine-tuning: a training
/// step then runs as inference; a bad probability changes nothing.
#[test]
fn a_loaded_networks_dropout_can_be_changed() {
    let (x, y) = data(16);
    let bytes = feedforward::weights::to_bytes(&net(0.2, 0.5, 3)).unwrap();
    let mut loaded = Network::<f64>::from_bytes_with(&bytes, "<memory>", &|_, _, _| Ok(None)).unwrap();
    let loss = SoftmaxCrossEntropy::new();
    let inference = loaded.loss(&x, &loss, &y[..]).unwrap();
    let mut rmsprop = Rmsprop::elementwise(1e-3).unwrap();
    let report = loaded.clone().train_step(&x, &loss, &y[..], &mut rmsprop.clone()).unwrap();
    assert_ne!(report.loss, inference, "dropout at 0.2 and 0.5 drops");
    for i in [0, 2] {
        let dropout = loaded.modules_mut()[i].downcast_mut::<Dropout>().expect("a Dropout");
        assert!(dropout.set_probability(1.0).is_err() && dropout.probability() > 0.0);
        dropout.set_probability(0.0).unwrap();
    }
    let report = loaded.train_step(&x, &loss, &y[..], &mut rmsprop).unwrap();
    assert_eq!(report.loss, inference);
}
