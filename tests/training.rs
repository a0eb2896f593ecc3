//! Training end to end on small problems, determinism, and errors instead of panics.

use feedforward::train::{self, Batching, Position, Schedule, TrainConfig};
use feedforward::{Error, Float, Init, MlpConfig, Network, Rmsprop, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Three Gaussian blobs in 2-D, far apart: linearly separable.
fn blobs(n: usize, seed: u64) -> (DMatrix<f32>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let centers = [(-3.0, 0.0), (3.0, 0.0), (0.0, 4.0)];
    let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
    let x = DMatrix::from_fn(2, n, |r, c| {
        let (cx, cy) = centers[labels[c]];
        (if r == 0 { cx } else { cy }) + 0.5 * f32::standard_normal(&mut rng)
    });
    (x, labels)
}

fn toy_net(seed: u64) -> Network<f32> {
    Network::mlp(&[2, 16, 3], MlpConfig::default(), &mut StdRng::seed_from_u64(seed)).unwrap()
}

#[test]
fn separable_toy_problem_is_learned_perfectly() {
    let (x, y) = blobs(300, 1);
    for (mut opt, batching) in [
        (Rmsprop::elementwise(0.01).unwrap(), Batching::Minibatch { size: 32, shuffle: true }),
        (Rmsprop::per_tensor(0.5, Some(50)).unwrap(), Batching::Full),
    ] {
        let mut net = toy_net(2);
        let before = net.loss(&x, &SoftmaxCrossEntropy::new(), &y).unwrap();
        let epochs = if batching == Batching::Full { 200 } else { 20 };
        let config = TrainConfig { epochs, batching, seed: 3, ..TrainConfig::default() };
        train::fit(
            &mut net,
            &mut opt,
            &SoftmaxCrossEntropy::new(),
            train::Data::new(&x, &y),
            &config,
            |_, _, _| {},
        )
        .unwrap();
        let after = net.loss(&x, &SoftmaxCrossEntropy::new(), &y).unwrap();
        assert!(after < 0.1 * before, "{batching:?}: loss {before} -> {after}");
        assert_eq!(net.accuracy(&x, &y).unwrap(), 1.0, "{batching:?}");
    }
}

#[test]
fn same_seed_same_weights_and_same_run() {
    let run = |seed: u64| {
        let (x, y) = blobs(200, 5);
        let mut net = toy_net(seed);
        let initial: Vec<f32> = net.parameters().flat_map(|p| p.value().iter().copied()).collect();
        let mut opt = Rmsprop::elementwise(0.01).unwrap();
        let config = TrainConfig {
            epochs: 3,
            batching: Batching::Minibatch { size: 16, shuffle: true },
            seed,
            ..TrainConfig::default()
        };
        let mut losses = Vec::new();
        train::fit(
            &mut net,
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
        let trained: Vec<f32> = net.parameters().flat_map(|p| p.value().iter().copied()).collect();
        (initial, losses, trained)
    };
    let a = run(11);
    assert_eq!(a, run(11));
    let b = run(12);
    assert_ne!(a.0, b.0, "different seeds give different weights");
    assert_ne!(a.1, b.1);
}

/// Work is cut into pieces by shape alone, so one thread and every core give the same bits. The
/// network is big enough that its products and parameter passes are cut up.
#[test]
fn thread_count_does_not_change_the_run() {
    let run = |threads: usize| {
        feedforward::linalg::set_threads(threads);
        let mut rng = StdRng::seed_from_u64(4);
        let x = DMatrix::from_fn(300, 256, |_, _| f32::standard_normal(&mut rng));
        let y: Vec<usize> = (0..256).map(|j| j % 10).collect();
        let mut net =
            Network::mlp(&[300, 200, 10], MlpConfig::default(), &mut rng).unwrap().with_l2(1e-4).unwrap();
        let mut opt = Rmsprop::per_tensor(0.05, Some(3)).unwrap();
        let losses: Vec<f64> = (0..5)
            .map(|_| net.train_step(&x, &SoftmaxCrossEntropy::new(), &y, &mut opt).unwrap().loss)
            .collect();
        let trained: Vec<f32> = net.parameters().flat_map(|p| p.value().iter().copied()).collect();
        feedforward::linalg::set_threads(0);
        (losses, trained)
    };
    let one = run(1);
    assert!(one.0[4] < one.0[0], "it trains: {:?}", one.0);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
    // Feature `rayon`: the same run inside rayon pools of 2 and 3 threads, its parts on the pool.
    #[cfg(feature = "rayon")]
    for threads in [2, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        assert_eq!(one, pool.install(|| run(0)), "a rayon pool of {threads}");
    }
}

#[test]
fn max_steps_stops_early() {
    let (x, y) = blobs(100, 1);
    let mut net = toy_net(1);
    let mut opt = Rmsprop::elementwise(0.01).unwrap();
    let config = TrainConfig {
        epochs: 10,
        batching: Batching::Minibatch { size: 10, shuffle: false },
        seed: 0,
        max_steps: Some(25),
        ..TrainConfig::default()
    };
    let mut steps = Vec::new();
    train::fit(
        &mut net,
        &mut opt,
        &SoftmaxCrossEntropy::new(),
        train::Data::new(&x, &y),
        &config,
        |event, _, _| {
            let train::Event::Step(p) = event else { return };
            steps.push((p.epoch, p.step, p.total_steps))
        },
    )
    .unwrap();
    assert_eq!(steps.len(), 25);
    assert_eq!(steps[24], (3, 25, 25));
    assert_eq!(net.steps(), 25);
}

#[test]
fn divergence_stops_with_the_step_and_leaves_parameters_untouched() {
    let (x, y) = blobs(60, 1);
    let mut net = toy_net(4);
    // Per-tensor RMSprop with an absurd rate blows the weights up within a few steps.
    let mut opt = Rmsprop::per_tensor(1e30, None).unwrap();
    let mut snapshots = Vec::new();
    let config = TrainConfig { epochs: 100, ..TrainConfig::default() };
    let mut last_good = net.parameters().map(|p| p.value().clone()).collect::<Vec<_>>();
    let err = train::fit(
        &mut net,
        &mut opt,
        &SoftmaxCrossEntropy::new(),
        train::Data::new(&x, &y),
        &config,
        |event, n, _| {
            let train::Event::Step(p) = event else { return };
            snapshots.push(p.step);
            last_good = n.parameters().map(|p| p.value().clone()).collect();
        },
    )
    .unwrap_err();
    assert!(!snapshots.is_empty(), "some steps succeed before the divergence");
    match err {
        Error::NonFinite { step, .. } => assert_eq!(step, Some(snapshots.len() + 1), "{err}"),
        other => panic!("expected NonFinite, got {other}"),
    }
    let now: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    assert_eq!(now, last_good, "the failing step must not change the parameters");
    assert!(err.to_string().contains(&format!("step {}", snapshots.len() + 1)));
}

#[test]
fn non_finite_input_is_an_error_not_garbage() {
    let (mut x, y) = blobs(30, 1);
    x[(0, 3)] = f32::NAN;
    let mut net = toy_net(1);
    let before: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    let mut opt = Rmsprop::elementwise(0.01).unwrap();
    assert!(matches!(
        net.train_step(&x, &SoftmaxCrossEntropy::new(), &y, &mut opt),
        Err(Error::NonFinite { step: Some(1), .. })
    ));
    let after: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    assert_eq!(before, after);
}

#[test]
fn bad_input_gives_typed_errors() {
    let mut net = toy_net(1);
    let mut opt = Rmsprop::elementwise(0.01).unwrap();
    let x = DMatrix::<f32>::zeros(2, 4);
    let wrong_rows = DMatrix::<f32>::zeros(3, 4);
    let empty = DMatrix::<f32>::zeros(2, 0);
    match net.forward(&wrong_rows) {
        Err(e @ Error::ShapeMismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("expected 2 rows") && msg.contains("got 3 rows"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(net.predict(&empty), Err(Error::EmptyBatch { .. })));
    assert!(matches!(
        net.train_step(&x, &SoftmaxCrossEntropy::new(), &[0, 1, 2], &mut opt),
        Err(Error::ShapeMismatch { .. })
    ));
    match net.train_step(&x, &SoftmaxCrossEntropy::new(), &[0, 1, 3, 2], &mut opt) {
        Err(Error::LabelOutOfRange { index: 2, label: 3, classes: 3 }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(net.accuracy(&x, &[0, 9, 0, 0]), Err(Error::LabelOutOfRange { .. })));
    assert_eq!(net.steps(), 0, "no failed step counts");
    let config = TrainConfig {
        epochs: 1,
        batching: Batching::Minibatch { size: 0, shuffle: true },
        seed: 0,
        ..TrainConfig::default()
    };
    assert!(matches!(
        train::fit(
            &mut net,
            &mut opt,
            &SoftmaxCrossEntropy::new(),
            train::Data::new(&x, &[0; 4]),
            &config,
            |_, _, _| {}
        ),
        Err(Error::InvalidHyperparameter { .. })
    ));
    assert!(
        Network::<f32>::new(3)
            .push(feedforward::Layer::new(4, 2, Init::He, &mut StdRng::seed_from_u64(0)))
            .is_err()
    );
    assert!(Network::<f32>::mlp(&[3], MlpConfig::default(), &mut StdRng::seed_from_u64(0)).is_err());
    // A module that gives no rows cannot end in classes, nor feed another module.
    let no_outputs =
        Network::<f32>::new(4).push(feedforward::Layer::new(4, 0, Init::He, &mut StdRng::seed_from_u64(0)));
    assert!(matches!(no_outputs, Err(Error::ShapeMismatch { .. })));
    assert!(matches!(toy_net(1).with_l2(-1.0), Err(Error::InvalidHyperparameter { .. })));
    assert!(matches!(Network::<f32>::new(2).forward(&x), Err(Error::ShapeMismatch { .. })));
}

#[test]
fn predictions_and_probabilities_agree() {
    let (x, _) = blobs(12, 9);
    let net = toy_net(3);
    let probs = net.probabilities(&x).unwrap();
    let pred = net.predict(&x).unwrap();
    for (j, col) in probs.column_iter().enumerate() {
        assert!((col.sum() - 1.0).abs() < 1e-5);
        assert!(col.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert_eq!(col.imax(), pred[j]);
    }
}

#[test]
fn cosine_schedule_anneals_the_rate_and_restores_it() {
    use feedforward::Optimizer;
    let s = Schedule::Cosine { final_fraction: 0.1 };
    let at = |step| Position { step, total_steps: 10, epoch: 0 };
    assert_eq!(s.factor(at(0)), 1.0);
    assert!((s.factor(at(5)) - 0.55).abs() < 1e-12);
    assert!((Schedule::Cosine { final_fraction: 0.0 }.factor(at(10))).abs() < 1e-12);
    assert_eq!(Schedule::Constant.factor(at(7)), 1.0);

    let (x, y) = blobs(40, 1);
    let mut net = toy_net(1);
    let mut opt = Rmsprop::elementwise(0.01).unwrap();
    let config = TrainConfig {
        epochs: 2,
        batching: Batching::Minibatch { size: 10, shuffle: true },
        schedule: Schedule::Cosine { final_fraction: 0.0 },
        ..TrainConfig::default()
    };
    let mut rates = Vec::new();
    train::fit(
        &mut net,
        &mut opt,
        &SoftmaxCrossEntropy::new(),
        train::Data::new(&x, &y),
        &config,
        |event, _, o| {
            if let train::Event::Step(_) = event {
                rates.push(o.learning_rate())
            }
        },
    )
    .unwrap();
    assert_eq!(rates.len(), 8);
    assert_eq!(rates[0], 0.01);
    assert!(rates.windows(2).all(|w| w[1] < w[0]), "{rates:?}");
    assert!((rates[4] - 0.005).abs() < 1e-6, "{rates:?}");
    assert_eq!(opt.learning_rate(), 0.01, "restored after the run");

    let bad = TrainConfig { schedule: Schedule::Cosine { final_fraction: 1.5 }, ..config.clone() };
    assert!(matches!(
        train::fit(
            &mut net,
            &mut opt,
            &SoftmaxCrossEntropy::new(),
            train::Data::new(&x, &y),
            &bad,
            |_, _, _| {}
        ),
        Err(Error::InvalidHyperparameter { .. })
    ));
}

#[test]
fn an_update_that_overflows_is_undone() {
    let (x, y) = blobs(30, 2);
    let mut net = toy_net(5);
    let before: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    // Finite loss and gradients, but a step of 1e38 per unit gradient overflows f32.
    let mut opt = Rmsprop::per_tensor(f32::MAX, None).unwrap();
    match net.train_step(&x, &SoftmaxCrossEntropy::new(), &y, &mut opt) {
        Err(Error::NonFinite { step: Some(1), what, .. }) => {
            assert!(what.contains("updated value"), "{what}")
        }
        other => panic!("expected an overflow error at step 1, got {other:?}"),
    }
    let after: Vec<_> = net.parameters().map(|p| p.value().clone()).collect();
    assert_eq!(before, after);
    assert_eq!(net.steps(), 0);
}

#[test]
fn evaluate_is_loss_and_accuracy_in_one_pass() {
    let (x, y) = blobs(50, 3);
    let net = toy_net(6);
    let evaluation = net.evaluate(&x, &SoftmaxCrossEntropy::new(), &y).unwrap();
    assert_eq!(evaluation.loss, f64::from(net.loss(&x, &SoftmaxCrossEntropy::new(), &y).unwrap()));
    assert_eq!(evaluation.accuracy, Some(net.accuracy(&x, &y).unwrap()));
    assert!(matches!(
        net.evaluate(&x, &SoftmaxCrossEntropy::new(), &y[1..]),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// A step reports the loss and accuracy of the weights it started from: the same as `evaluate`
/// just before it (the step counts correct argmaxes inside the loss; `evaluate` separately).
#[test]
fn step_report_is_the_loss_and_accuracy_before_the_step() {
    let (x, y) = blobs(60, 4);
    let mut net = toy_net(7);
    let mut opt = Rmsprop::elementwise(0.01).unwrap();
    let mut accuracies = Vec::new();
    for _ in 0..8 {
        let evaluation = net.evaluate(&x, &SoftmaxCrossEntropy::new(), &y).unwrap();
        let report = net.train_step(&x, &SoftmaxCrossEntropy::new(), &y, &mut opt).unwrap();
        assert_eq!(report.loss, evaluation.loss);
        assert_eq!(report.accuracy, evaluation.accuracy);
        accuracies.push(evaluation.accuracy);
    }
    // Not a constant: the check above has compared different accuracies.
    assert!(accuracies.windows(2).any(|w| w[0] != w[1]), "{accuracies:?}");
}

/// `Network::mlp` builds what its config says: the same modules, drawn in the same order from
/// the same generator, as the stack built by hand (a network with dropout then draws its seed);
/// the default config is He, ReLU, a bias on every layer and no dropout. A drop probability
/// outside [0, 1) is an error, not "no dropout".
#[test]
fn mlp_builds_the_stack_its_config_describes() {
    use feedforward::{Activation, Dropout, Layer, SoftmaxCrossEntropy};
    use rand::Rng;
    let by_hand = |config: MlpConfig| {
        let mut rng = StdRng::seed_from_u64(5);
        let mut net = Network::<f64>::new(3);
        if config.input_dropout > 0.0 {
            net = net.push(Dropout::new(config.input_dropout).unwrap()).unwrap();
        }
        for (inputs, outputs) in [(3, 6), (6, 4)] {
            let layer =
                Layer::new(inputs, outputs, config.init, &mut rng).with_activation(config.hidden_activation);
            net = net.push(layer).unwrap();
            if config.dropout > 0.0 {
                net = net.push(Dropout::new(config.dropout).unwrap()).unwrap();
            }
        }
        let output = if config.output_bias {
            Layer::new(4, 2, config.init, &mut rng)
        } else {
            Layer::without_bias(4, 2, config.init, &mut rng)
        };
        net = net.push(output).unwrap();
        if config.input_dropout > 0.0 || config.dropout > 0.0 { net.with_seed(rng.next_u64()) } else { net }
    };
    let built = |config: MlpConfig| Network::<f64>::mlp(&[3, 6, 4, 2], config, &mut StdRng::seed_from_u64(5));
    let describe =
        |net: &Network<f64>| -> Vec<_> { net.modules().iter().map(|m| (m.kind(), m.describe())).collect() };
    let values = |net: &Network<f64>| -> Vec<_> {
        net.parameters().map(|p| (p.name().to_owned(), p.value().clone(), p.is_regularized())).collect()
    };

    let tanh = MlpConfig {
        init: Init::XavierUniform,
        hidden_activation: Activation::Tanh,
        output_bias: false,
        ..MlpConfig::default()
    };
    let dropout = MlpConfig { input_dropout: 0.2, dropout: 0.5, ..MlpConfig::default() };
    let x = DMatrix::from_fn(3, 7, |i, j| (i as f64 - j as f64) / 4.0);
    let labels = [0, 1, 1, 0, 1, 0, 0];
    for config in [MlpConfig::default(), tanh, dropout] {
        let (mut net, mut expected) = (built(config).unwrap(), by_hand(config));
        assert_eq!(describe(&net), describe(&expected), "{config:?}");
        assert_eq!(values(&net), values(&expected), "{config:?}");
        assert_eq!(net.seed(), expected.seed(), "{config:?}");
        // The same training step, dropout masks included.
        let mut opts = (Rmsprop::elementwise(1e-2).unwrap(), Rmsprop::elementwise(1e-2).unwrap());
        let a = net.train_step(&x, &SoftmaxCrossEntropy::new(), &labels, &mut opts.0).unwrap();
        let b = expected.train_step(&x, &SoftmaxCrossEntropy::new(), &labels, &mut opts.1).unwrap();
        assert_eq!(a, b, "{config:?}");
        assert_eq!(values(&net), values(&expected), "{config:?}");
    }
    assert_eq!(built(tanh).unwrap().parameter_count(), 3 * 6 + 6 + 6 * 4 + 4 + 4 * 2);
    let kinds: Vec<_> = built(dropout).unwrap().modules().iter().map(|m| m.kind()).collect();
    assert_eq!(kinds, ["Dropout", "Layer", "Dropout", "Layer", "Dropout", "Layer"]);
    for bad in [-0.1, 1.0, f64::NAN] {
        for config in [
            MlpConfig { dropout: bad, ..MlpConfig::default() },
            MlpConfig { input_dropout: bad, ..MlpConfig::default() },
        ] {
            assert!(matches!(built(config), Err(Error::InvalidHyperparameter { .. })), "{config:?}");
        }
    }
}

/// `{:?}` of a network is a summary, also after training fills its buffers: shapes, biases,
/// activations, drop probabilities, not the 200,000 weights (it printed 3.7 MB before).
#[test]
fn debug_output_is_a_summary_not_the_weights() {
    use feedforward::SoftmaxCrossEntropy;
    let config = MlpConfig { dropout: 0.2, ..MlpConfig::default() };
    let mut net = Network::<f32>::mlp(&[784, 256, 10], config, &mut StdRng::seed_from_u64(0)).unwrap();
    let x = DMatrix::from_fn(784, 64, |i, j| ((i + j) % 7) as f32 / 7.0);
    net.train_step(&x, &SoftmaxCrossEntropy::new(), &[3; 64], &mut Rmsprop::elementwise(1e-3).unwrap())
        .unwrap();
    let shown = format!("{net:?}");
    assert!(shown.len() < 400, "{} characters: {shown}", shown.len());
    for part in
        ["inputs: 784, outputs: 256, bias: true, activation: Relu", "Dropout { probability: 0.2", "steps: 1"]
    {
        assert!(shown.contains(part), "{part} not in {shown}");
    }
    let weight = format!("{:?}", net.parameters().next().unwrap());
    assert_eq!(
        weight,
        r#"Parameter { name: "weight", shape: 784×256, regularization: Applied, frozen: false, .. }"#
    );
}
