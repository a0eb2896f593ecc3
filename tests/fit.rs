//! The training loop's features: validation each epoch, early stopping, schedules, gradient
//! clipping, checkpoints and bit-exact resume, a NaN step that leaves no trace, and a short
//! last minibatch kept or skipped.

mod common;

use feedforward::optim::{DecayScope, Momentum, SgdConfig};
use feedforward::train::{
    self, Batching, Checkpointing, Data, EarlyStopping, Event, Flow, LastBatch, Plateau, Position, Schedule,
    SplitConfig, TrainConfig,
};
use feedforward::{
    Adam, AdamConfig, AdamW, Dropout, Error, Init, Layer, MlpConfig, Module, Network, Optimizer, Parameter,
    Regularization, Relu, Rmsprop, Sgd, SoftmaxCrossEntropy,
};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Three noisy blobs in 2-D: `(2 × n inputs, labels)`.
fn blobs(n: usize, seed: u64) -> (DMatrix<f32>, Vec<usize>) {
    common::blobs(n, seed, 0.6)
}

fn net(seed: u64) -> Network<f32> {
    Network::mlp(&[2, 16, 3], MlpConfig::default(), &mut StdRng::seed_from_u64(seed)).unwrap()
}

fn weights(net: &Network<f32>) -> Vec<DMatrix<f32>> {
    net.parameters().map(|p| p.value().clone()).collect()
}

fn minibatches(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batching: Batching::Minibatch { size: 8, shuffle: true },
        seed: 4,
        ..TrainConfig::default()
    }
}

#[test]
fn every_epoch_reports_its_validation_loss_and_accuracy() {
    let (x, y) = blobs(90, 1);
    let (xv, yv) = blobs(30, 2);
    let mut n = net(1);
    let mut opt = Adam::with_learning_rate(1e-2).unwrap();
    let loss = SoftmaxCrossEntropy::new();
    let mut seen = Vec::new();
    let report = train::fit(
        &mut n,
        &mut opt,
        &loss,
        Data::new(&x, &y).with_validation(&xv, &yv),
        &minibatches(5),
        |event, net, _| {
            if let Event::Epoch(e) = event {
                // The report is the network's state at the end of the epoch.
                let now = net.evaluate(&xv, &SoftmaxCrossEntropy::new(), &yv[..]).unwrap();
                assert_eq!(e.validation, Some(now));
                seen.push(e.epoch);
            }
        },
    )
    .unwrap();
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    assert_eq!(report.epochs.len(), 5);
    assert_eq!(report.epochs[4].steps, 5 * 12);
    let first = report.epochs[0].validation.unwrap();
    let last = report.epochs[4].validation.unwrap();
    assert!(last.loss < first.loss, "{first:?} -> {last:?}");
    assert!(last.accuracy.unwrap() > 0.8, "{last:?}");
    assert!(report.epochs.iter().all(|e| e.train_accuracy.is_some() && e.train_loss.is_finite()));
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    // A validation set that disagrees with the training set: its labels are rotated, so the
    // better the network learns, the worse the validation loss gets after a while.
    let (x, y) = blobs(90, 1);
    let (xv, yv) = blobs(30, 2);
    let yv: Vec<usize> = yv.iter().map(|&l| (l + 1) % 3).collect();
    let loss = SoftmaxCrossEntropy::new();
    let mut n = net(2);
    let mut opt = Adam::with_learning_rate(1e-2).unwrap();
    let config = TrainConfig {
        early_stopping: Some(EarlyStopping { patience: 3, min_delta: 0.0 }),
        ..minibatches(40)
    };
    let mut snapshots = Vec::new();
    let report = train::fit(
        &mut n,
        &mut opt,
        &loss,
        Data::new(&x, &y).with_validation(&xv, &yv),
        &config,
        |event, net, _| {
            if let Event::Epoch(_) = event {
                snapshots.push(weights(net));
            }
        },
    )
    .unwrap();
    assert!(report.stopped_early, "{:?}", report.epochs.len());
    let best = report.best_epoch.unwrap();
    let losses: Vec<f64> = report.epochs.iter().map(|e| e.validation.unwrap().loss).collect();
    let lowest = losses.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(losses[best - 1], lowest, "{losses:?}");
    assert_eq!(report.epochs.len(), best + 3, "stops after `patience` epochs without improvement");
    assert_eq!(weights(&n), snapshots[best - 1], "the best epoch's weights are restored");
    assert_ne!(snapshots[best - 1], *snapshots.last().unwrap());

    // Early stopping and reduce-on-plateau need a validation set.
    let e = train::fit(&mut n, &mut opt, &loss, Data::new(&x, &y), &config, |_, _, _| {}).unwrap_err();
    assert!(matches!(e, Error::InvalidHyperparameter { name: "validation set", .. }), "{e}");
}

#[test]
fn schedules_follow_their_formulas() {
    let at = |step, epoch| Position { step, total_steps: 100, epoch };
    let step = Schedule::Step { every_epochs: 2, gamma: 0.5 };
    assert_eq!([0, 1, 2, 3, 4].map(|e| step.factor(at(0, e))), [1.0, 1.0, 0.5, 0.5, 0.25]);
    let exp = Schedule::Exponential { gamma: 0.9 };
    assert_eq!(exp.factor(at(0, 0)), 1.0);
    assert!((exp.factor(at(0, 3)) - 0.729).abs() < 1e-12);
    let warm = Schedule::WarmupCosine { warmup_steps: 4, final_fraction: 0.2 };
    assert_eq!([0, 1, 2, 3].map(|s| warm.factor(at(s, 0))), [0.25, 0.5, 0.75, 1.0]);
    assert_eq!(warm.factor(at(4, 0)), 1.0);
    assert!((warm.factor(at(52, 0)) - 0.6).abs() < 1e-12, "halfway through the cosine: 0.2 + 0.8/2");
    assert!((warm.factor(at(100, 0)) - 0.2).abs() < 1e-12);

    let (x, y) = blobs(30, 1);
    let loss = SoftmaxCrossEntropy::new();
    for bad in [
        Schedule::Step { every_epochs: 0, gamma: 0.5 },
        Schedule::Exponential { gamma: 1.5 },
        Schedule::WarmupCosine { warmup_steps: 0, final_fraction: 0.0 },
        Schedule::ReduceOnPlateau(Plateau { factor: 1.0, ..Plateau::default() }),
    ] {
        let config = TrainConfig { schedule: bad, ..minibatches(1) };
        let mut opt = Sgd::with_learning_rate(0.1).unwrap();
        let e = train::fit(
            &mut net(1),
            &mut opt,
            &loss,
            Data::new(&x, &y).with_validation(&x, &y),
            &config,
            |_, _, _| {},
        );
        assert!(matches!(e, Err(Error::InvalidHyperparameter { .. })), "{bad:?}");
    }
}

#[test]
fn reduce_on_plateau_cuts_the_rate_after_patience_epochs_without_improvement() {
    // Validation labels that no training helps: rotated, as above.
    let (x, y) = blobs(60, 1);
    let (xv, yv) = blobs(30, 2);
    let yv: Vec<usize> = yv.iter().map(|&l| (l + 2) % 3).collect();
    let plateau = Plateau { factor: 0.5, patience: 1, threshold: 0.0, min_fraction: 0.1 };
    let config = TrainConfig { schedule: Schedule::ReduceOnPlateau(plateau), ..minibatches(12) };
    let mut opt = Adam::with_learning_rate(1e-2).unwrap();
    let report = train::fit(
        &mut net(3),
        &mut opt,
        &SoftmaxCrossEntropy::new(),
        Data::new(&x, &y).with_validation(&xv, &yv),
        &config,
        |_, _, _| {},
    )
    .unwrap();
    // Replay the rule on the reported losses: the rate of epoch k+1 follows from epochs 1..=k.
    let (mut best, mut bad, mut factor) = (f64::INFINITY, 0, 1.0);
    for (k, e) in report.epochs.iter().enumerate() {
        assert!(
            (e.learning_rate - 1e-2 * factor).abs() < 1e-9,
            "epoch {}: {} vs {}",
            k + 1,
            e.learning_rate,
            1e-2 * factor
        );
        let v = e.validation.unwrap().loss;
        if v < best {
            (best, bad) = (v, 0);
        } else {
            bad += 1;
        }
        if bad > 1 {
            factor = f64::max(factor * 0.5, 0.1);
            bad = 0;
        }
    }
    assert!(factor < 1.0, "the rate was cut at least once");
    assert_eq!(opt.learning_rate(), 1e-2, "restored after the run");
}

#[test]
fn gradient_clipping_bounds_each_step() {
    // With plain SGD, a step moves the parameters by lr·g: clipped, by at most lr·max_norm.
    let (x, y) = blobs(30, 1);
    let loss = SoftmaxCrossEntropy::new();
    let (lr, max_norm) = (0.5f32, 0.01);
    let config = TrainConfig { clip_grad_norm: Some(max_norm), ..minibatches(2) };
    let mut n = net(5);
    let mut opt = Sgd::with_learning_rate(lr).unwrap();
    let mut previous = weights(&n);
    let mut moves = Vec::new();
    train::fit(&mut n, &mut opt, &loss, Data::new(&x, &y), &config, |event, net, _| {
        if let Event::Step(_) = event {
            let now = weights(net);
            let moved: f32 =
                now.iter().zip(&previous).map(|(a, b)| (a - b).norm_squared()).sum::<f32>().sqrt();
            moves.push(moved);
            previous = now;
        }
    })
    .unwrap();
    assert!(moves.iter().all(|&m| m <= lr * max_norm as f32 * 1.0001), "{moves:?}");
    assert!(
        moves.iter().all(|&m| m >= lr * max_norm as f32 * 0.999),
        "every gradient here is larger than 0.01: {moves:?}"
    );
    let bad = TrainConfig { clip_grad_norm: Some(0.0), ..minibatches(1) };
    assert!(matches!(
        train::fit(&mut n, &mut opt, &loss, Data::new(&x, &y), &bad, |_, _, _| {}),
        Err(Error::InvalidHyperparameter { name: "gradient clipping norm", .. })
    ));
}

/// A network with dropout (so the resumed run must also restore the dropout stream).
fn dropout_net(seed: u64) -> Network<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Network::new(2)
        .push(Layer::new(2, 16, Init::He, &mut rng))
        .unwrap()
        .push(Relu)
        .unwrap()
        .push(Dropout::new(0.2).unwrap())
        .unwrap()
        .push(Layer::new(16, 3, Init::He, &mut rng))
        .unwrap()
        .with_seed(seed)
}

/// Every optimizer kind of the crate, fresh.
fn optimizers() -> Vec<Box<dyn Optimizer<f32>>> {
    vec![
        Box::new(
            Adam::new(AdamConfig { learning_rate: 5e-3, weight_decay: 1e-3, ..AdamConfig::default() })
                .unwrap(),
        ),
        Box::new(AdamW::with_learning_rate(5e-3).unwrap()),
        Box::new(
            Sgd::new(SgdConfig {
                learning_rate: 0.05,
                momentum: Momentum::Nesterov { momentum: 0.9 },
                weight_decay: 1e-3,
                decay_scope: DecayScope::All,
            })
            .unwrap(),
        ),
        Box::new(Rmsprop::elementwise(3e-3).unwrap()),
        Box::new(Rmsprop::per_tensor(0.05, Some(7)).unwrap()),
    ]
}

#[test]
fn a_run_stopped_after_epoch_k_and_resumed_ends_bit_identical() {
    let (x, y) = blobs(60, 1);
    let (xv, yv) = blobs(30, 2);
    let loss = SoftmaxCrossEntropy::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ckpt");
    let data = Data::new(&x, &y).with_validation(&xv, &yv);
    let schedule = Schedule::ReduceOnPlateau(Plateau { patience: 0, ..Plateau::default() });
    for (k, (mut straight, (mut first, mut resumed))) in
        optimizers().into_iter().zip(optimizers().into_iter().zip(optimizers())).enumerate()
    {
        let config = TrainConfig {
            schedule: if k % 2 == 0 { schedule } else { Schedule::Cosine { final_fraction: 0.0 } },
            early_stopping: Some(EarlyStopping { patience: 100, min_delta: 0.0 }),
            checkpoint: Some(Checkpointing::new(&path)),
            ..minibatches(6)
        };
        // Uninterrupted.
        let mut a = dropout_net(7);
        let whole = train::fit(&mut a, straight.as_mut(), &loss, data, &config, |_, _, _| {}).unwrap();
        // Interrupted after epoch 3 ...
        let mut b = dropout_net(7);
        train::fit(&mut b, first.as_mut(), &loss, data, &config, |event, _, _| match event {
            Event::Epoch(e) if e.epoch == 3 => Flow::Stop,
            _ => Flow::Continue,
        })
        .unwrap();
        // ... and resumed from the checkpoint into a network built with another seed.
        let mut c = dropout_net(99);
        let config = TrainConfig { resume: Some(path.clone()), ..config };
        let mut last_epoch = None;
        let rest = train::fit(&mut c, resumed.as_mut(), &loss, data, &config, |event, net, _| {
            if let Event::Epoch(_) = event {
                last_epoch = Some(net.clone());
            }
        })
        .unwrap();
        assert_eq!(weights(&c), weights(&a), "optimizer {k}");
        assert_eq!(resumed.state(), straight.state(), "optimizer {k}");
        assert_eq!(c.steps(), a.steps());
        assert_eq!(rest.epochs[..], whole.epochs[3..], "optimizer {k}: the same epochs, measured alike");
        assert_eq!(rest.best_epoch, whole.best_epoch);
        // The checkpoint is also a model file: the last epoch's (early stopping then restores
        // the best epoch's weights in the network, not in the checkpoint, which must resume).
        let model = Network::<f32>::load(&path).unwrap();
        assert_eq!(model.output(&xv).unwrap(), last_epoch.unwrap().output(&xv).unwrap());
    }
}

/// Runs `net(1)` with Adam on `data` under `config`, checkpointed after every epoch to a file
/// in a new temporary folder; returns the folder (removed when dropped), the checkpoint's path
/// and `config` with the checkpoint set.
fn checkpointed_run(
    config: TrainConfig,
    data: Data<'_, f32, [usize]>,
) -> (tempfile::TempDir, std::path::PathBuf, TrainConfig) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ckpt");
    let config = TrainConfig { checkpoint: Some(Checkpointing::new(&path)), ..config };
    let mut opt = Adam::with_learning_rate(1e-2).unwrap();
    train::fit(&mut net(1), &mut opt, &SoftmaxCrossEntropy::new(), data, &config, |_, _, _| {}).unwrap();
    (dir, path, config)
}

#[test]
fn a_checkpoint_from_another_run_is_refused_and_changes_nothing() {
    let (x, y) = blobs(60, 1);
    let loss = SoftmaxCrossEntropy::new();
    let (dir, path, config) = checkpointed_run(minibatches(2), Data::new(&x, &y));
    let resume = |config: TrainConfig, net: &mut Network<f32>, opt: &mut dyn Optimizer<f32>| {
        let config = TrainConfig { resume: Some(path.clone()), checkpoint: None, ..config };
        train::fit(net, opt, &loss, Data::new(&x, &y), &config, |_, _, _| {})
    };
    let fresh = net(2);
    type Case = (&'static str, TrainConfig, Network<f32>, Box<dyn Optimizer<f32>>);
    let cases: Vec<Case> = vec![
        (
            "another seed",
            TrainConfig { seed: 5, ..config.clone() },
            fresh.clone(),
            Box::new(Adam::with_learning_rate(1e-2).unwrap()),
        ),
        (
            "another network",
            config.clone(),
            Network::mlp(&[2, 8, 3], MlpConfig::default(), &mut StdRng::seed_from_u64(1)).unwrap(),
            Box::new(Adam::with_learning_rate(1e-2).unwrap()),
        ),
        ("another optimizer", config.clone(), fresh.clone(), Box::new(Sgd::with_learning_rate(0.1).unwrap())),
        (
            "another last batch (60 samples in batches of 8 leave 4)",
            TrainConfig { last_batch: LastBatch::Drop, ..config.clone() },
            fresh.clone(),
            Box::new(Adam::with_learning_rate(1e-2).unwrap()),
        ),
    ];
    for (what, config, mut n, mut opt) in cases {
        let before = weights(&n);
        let e = resume(config, &mut n, opt.as_mut()).unwrap_err();
        assert!(matches!(e, Error::Checkpoint { .. }), "{what}: {e}");
        assert_eq!(weights(&n), before, "{what}");
    }
    // A truncated checkpoint is an error naming the file, and changes nothing.
    let bytes = std::fs::read(&path).unwrap();
    let truncated = dir.path().join("truncated.ckpt");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let config_truncated = TrainConfig { resume: Some(truncated), checkpoint: None, ..config.clone() };
    let mut n = fresh.clone();
    let before = weights(&n);
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    let e =
        train::fit(&mut n, &mut adam, &loss, Data::new(&x, &y), &config_truncated, |_, _, _| {}).unwrap_err();
    assert!(matches!(&e, Error::Checkpoint { path, .. } if path.ends_with("truncated.ckpt")), "{e}");
    assert_eq!(weights(&n), before);
    assert_eq!(adam.steps(), 0);
    // A plain model file is not a checkpoint.
    let model = dir.path().join("model.safetensors");
    fresh.save(&model).unwrap();
    let config = TrainConfig { resume: Some(model), ..config };
    let e = train::fit(
        &mut fresh.clone(),
        &mut Adam::with_learning_rate(1e-2).unwrap(),
        &loss,
        Data::new(&x, &y),
        &config,
        |_, _, _| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a checkpoint"), "{e}");
}

#[test]
fn a_short_last_batch_trains_or_is_skipped() {
    // 61 samples in batches of 10: six of 10, then one of 1.
    let (x, y) = blobs(61, 3);
    let config = TrainConfig {
        epochs: 3,
        batching: Batching::Minibatch { size: 10, shuffle: true },
        ..TrainConfig::default()
    };
    let batch_sizes = |net: &mut Network<f32>, config: &TrainConfig| {
        let mut sizes = Vec::new();
        let mut adam = Adam::with_learning_rate(1e-2).unwrap();
        let fitted = train::fit(
            net,
            &mut adam,
            &SoftmaxCrossEntropy::new(),
            Data::new(&x, &y),
            config,
            |event, _, _| {
                if let Event::Step(p) = event {
                    sizes.push(p.report.batch_size);
                }
            },
        );
        fitted.map(|_| sizes)
    };
    let keep = [10, 10, 10, 10, 10, 10, 1];
    assert_eq!(batch_sizes(&mut net(1), &config).unwrap(), keep.repeat(3));
    assert_eq!(config.steps_per_epoch(61), 7);

    // BatchNorm cannot train on the batch of one: refused before the first step, unless skipped.
    let normalized =
        MlpConfig { normalization: feedforward::Normalization::BatchNorm, ..MlpConfig::default() };
    let mut bn = Network::mlp(&[2, 16, 3], normalized, &mut StdRng::seed_from_u64(2)).unwrap();
    let before = weights(&bn);
    let e = batch_sizes(&mut bn, &config).unwrap_err();
    assert!(e.to_string().contains("BatchNorm training batch"), "{e}");
    assert_eq!(weights(&bn), before);
    let drop = TrainConfig { last_batch: LastBatch::Drop, ..config.clone() };
    assert_eq!(batch_sizes(&mut bn, &drop).unwrap(), vec![10; 18]);
    assert_eq!(drop.steps_per_epoch(61), 6);
    assert_ne!(weights(&bn), before);

    // Fewer samples than a batch leave nothing to train on.
    let (x9, y9) = blobs(9, 4);
    let e = train::fit(
        &mut net(1),
        &mut Adam::with_learning_rate(1e-2).unwrap(),
        &SoftmaxCrossEntropy::new(),
        Data::new(&x9, &y9),
        &drop,
        |_, _, _| {},
    )
    .unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }) && e.to_string().contains("at least one batch"), "{e}");
}

/// `y = x ⊙ s` with a trainable `s`; a shared switch makes its gradient NaN, to poison the
/// last tensor of a step after every other tensor has been updated.
#[derive(Clone, Debug)]
struct Gate {
    scale: Parameter<f32>,
    poisoned: Arc<AtomicBool>,
}

impl Module<f32> for Gate {
    fn kind(&self) -> &'static str {
        "Gate"
    }
    fn output_rows(&self, input_rows: usize) -> feedforward::Result<usize> {
        Ok(input_rows)
    }
    fn forward(&self, input: &DMatrix<f32>, output: &mut DMatrix<f32>) {
        for (j, mut col) in output.column_iter_mut().enumerate() {
            col.copy_from(&input.column(j).component_mul(&self.scale.value().column(0)));
        }
    }
    fn backward(
        &mut self,
        input: &DMatrix<f32>,
        _: &DMatrix<f32>,
        grad_output: &DMatrix<f32>,
        grad_input: Option<&mut DMatrix<f32>>,
    ) {
        let mut grad = input.component_mul(grad_output).column_sum();
        if self.poisoned.load(Ordering::Relaxed) {
            grad[0] = f32::NAN;
        }
        self.scale.grad_mut().copy_from(&grad);
        if let Some(g) = grad_input {
            for (j, mut col) in g.column_iter_mut().enumerate() {
                col.copy_from(&grad_output.column(j).component_mul(&self.scale.value().column(0)));
            }
        }
    }
    fn visit_parameters<'a>(&'a self, visit: &mut dyn FnMut(&'a Parameter<f32>)) {
        visit(&self.scale);
    }
    fn visit_parameters_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut Parameter<f32>)) {
        visit(&mut self.scale);
    }
}

#[test]
fn a_nan_batch_mid_run_changes_nothing_and_the_run_goes_on_bit_identical() {
    let (x, y) = blobs(64, 1);
    let loss = SoftmaxCrossEntropy::new();
    let batches: Vec<(DMatrix<f32>, Vec<usize>)> =
        (0..8).map(|b| (x.columns(8 * b, 8).into_owned(), y[8 * b..8 * b + 8].to_vec())).collect();
    for (k, (mut seen, mut clean)) in optimizers().into_iter().zip(optimizers()).enumerate() {
        let switch = Arc::new(AtomicBool::new(false));
        let gate = Gate {
            scale: Parameter::new("scale", DMatrix::from_element(3, 1, 1.0), Regularization::Exempt),
            poisoned: switch.clone(),
        };
        let mut a = net(3).push(gate).unwrap();
        let mut b = a.clone();
        for (i, (bx, by)) in batches.iter().enumerate() {
            if i == 4 {
                switch.store(true, Ordering::Relaxed);
                let e = a.train_step(bx, &loss, by, seen.as_mut()).unwrap_err();
                assert!(e.to_string().contains("gradient of module 2 (Gate) scale"), "{e}");
                switch.store(false, Ordering::Relaxed);
            }
            a.train_step(bx, &loss, by, seen.as_mut()).unwrap();
            b.train_step(bx, &loss, by, clean.as_mut()).unwrap();
        }
        assert_eq!(weights(&a), weights(&b), "optimizer {k}");
        assert_eq!(seen.state(), clean.state(), "optimizer {k}");
        assert_eq!(a.steps(), b.steps());
    }
}

/// `split` puts every sample in exactly one part, in the data set's order, with its targets;
/// the same seed gives the same cut; its `data()` trains with the held-out part as validation.
#[test]
fn split_holds_out_a_seeded_random_part_with_its_targets() {
    let n = 50;
    // Row 0 is the sample's own number, so each column says where it came from.
    let x = DMatrix::from_fn(2, n, |i, j| if i == 0 { j as f32 } else { (j * j) as f32 });
    let labels: Vec<usize> = (0..n).map(|j| j % 3).collect();
    let config = SplitConfig { held_out: 12, seed: 5 };
    let split = train::split(&x, &labels[..], config).unwrap();
    let ids = |m: &DMatrix<f32>| m.row(0).iter().map(|&v| v as usize).collect::<Vec<_>>();
    let (kept, held) = (ids(&split.inputs), ids(&split.held_out_inputs));
    assert_eq!((kept.len(), held.len()), (38, 12));
    assert!(
        kept.windows(2).all(|w| w[0] < w[1]) && held.windows(2).all(|w| w[0] < w[1]),
        "in the data set's order"
    );
    let mut all = [kept.clone(), held.clone()].concat();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>(), "every sample in exactly one part");
    for (part, inputs, targets) in
        [(&kept, &split.inputs, &split.targets), (&held, &split.held_out_inputs, &split.held_out_targets)]
    {
        for (c, &j) in part.iter().enumerate() {
            assert_eq!((inputs[(1, c)], targets[c]), ((j * j) as f32, labels[j]), "sample {j}");
        }
    }
    // Seeded: the same cut again, another with another seed; matrix targets follow too.
    assert_eq!(train::split(&x, &labels[..], config).unwrap(), split);
    assert_ne!(
        ids(&train::split(&x, &labels[..], SplitConfig { seed: 6, ..config }).unwrap().held_out_inputs),
        held
    );
    let split_matrix = train::split(&x, &x, config).unwrap();
    assert_eq!(
        (&split_matrix.targets, &split_matrix.held_out_targets),
        (&split.inputs, &split.held_out_inputs)
    );

    // Its data: training with early stopping, which needs the validation set it brings.
    let (x, labels) = blobs(300, 9);
    let split = train::split(&x, &labels[..], SplitConfig { held_out: 60, seed: 1 }).unwrap();
    let mut net = net(2);
    let mut adam = Adam::new(AdamConfig { learning_rate: 1e-2, ..AdamConfig::default() }).unwrap();
    let config = TrainConfig { early_stopping: Some(EarlyStopping::default()), ..minibatches(5) };
    let report =
        train::fit(&mut net, &mut adam, &SoftmaxCrossEntropy::new(), split.data(), &config, |_, _, _| {})
            .unwrap();
    assert!(
        report.epochs.iter().all(|e| e.validation.is_some()),
        "validation on the held-out part every epoch"
    );

    // Bad requests: nothing held out, nothing left, or targets that do not match.
    for held_out in [0, 300, 301] {
        let e = train::split(&x, &labels[..], SplitConfig { held_out, seed: 0 }).unwrap_err();
        assert!(
            matches!(e, Error::InvalidHyperparameter { name: "held-out samples", .. }),
            "{held_out}: {e}"
        );
    }
    let e = train::split(&x, &labels[..299], SplitConfig { held_out: 5, seed: 0 }).unwrap_err();
    assert!(e.to_string().contains("300 samples (one per input column), got 299 samples"), "{e}");
}

/// `stratified_split` holds out each class in its share, the counts adding up to `held_out`
/// whatever the rounding, every sample in exactly one part with its label; a plain split of
/// the same data can miss a rare class.
#[test]
fn a_stratified_split_holds_out_each_class_in_its_share() {
    let mut rng = StdRng::seed_from_u64(2);
    for (n, classes, held_out) in
        [(100, 2, 20), (97, 3, 13), (1000, 5, 1), (40, 4, 39), (23, 1, 7), (300, 6, 150)]
    {
        // Classes of very different sizes: class c about twice as common as class c + 1.
        let labels: Vec<usize> = (0..n)
            .map(|_| {
                let u: f64 = rand::RngExt::random(&mut rng);
                (0..classes).find(|&c| u < 1.0 - 0.5f64.powi(c as i32 + 1)).unwrap_or(classes - 1)
            })
            .collect();
        let x = DMatrix::from_fn(1, n, |_, j| j as f32);
        let config = SplitConfig { held_out, seed: 4 };
        let split = train::stratified_split(&x, &labels, config).unwrap();
        assert_eq!(split.held_out_targets.len(), held_out);
        let count = |labels: &[usize], c: usize| labels.iter().filter(|&&l| l == c).count();
        for c in 0..classes {
            let (total, held) = (count(&labels, c), count(&split.held_out_targets, c));
            // Its share held_out·n_c/n, rounded down or up.
            let exact = held_out * total;
            assert!(held * n < exact + n && exact < (held + 1) * n, "n {n}, class {c}: {held} of {total}");
            assert_eq!(held + count(&split.targets, c), total);
        }
        // Each sample once, in order, with its own label; the same seed, the same cut.
        let ids = |m: &DMatrix<f32>| m.row(0).iter().map(|&v| v as usize).collect::<Vec<_>>();
        let (kept, held) = (ids(&split.inputs), ids(&split.held_out_inputs));
        assert!(kept.windows(2).all(|w| w[0] < w[1]) && held.windows(2).all(|w| w[0] < w[1]));
        let mut all = [kept.clone(), held.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        assert!(held.iter().zip(&split.held_out_targets).all(|(&j, &l)| labels[j] == l));
        assert_eq!(train::stratified_split(&x, &labels, config).unwrap(), split);
    }
    // 2 samples of class 1 in 200, half of the samples held out: the stratified cut always
    // holds out exactly one of them, where a plain cut holds out both or neither for some
    // seeds.
    let labels: Vec<usize> = (0..200).map(|j| usize::from(j == 50 || j == 150)).collect();
    let x = DMatrix::from_fn(1, 200, |_, j| j as f32);
    for seed in 0..20 {
        let held_out = 100;
        let split = train::stratified_split(&x, &labels, SplitConfig { held_out, seed }).unwrap();
        assert_eq!(split.held_out_targets.iter().filter(|&&l| l == 1).count(), 1, "seed {seed}");
    }
    let plain_misses = (0..20).any(|seed| {
        let split = train::split(&x, &labels[..], SplitConfig { held_out: 100, seed }).unwrap();
        split.held_out_targets.iter().filter(|&&l| l == 1).count() != 1
    });
    assert!(plain_misses, "some plain cut holds out both rare samples or neither");
    // The checks of a plain split.
    let e = train::stratified_split(&x, &labels[..199], SplitConfig { held_out: 5, seed: 0 }).unwrap_err();
    assert!(e.to_string().contains("200 samples (one per input column), got 199 samples"), "{e}");
    for held_out in [0, 200] {
        let e = train::stratified_split(&x, &labels, SplitConfig { held_out, seed: 0 }).unwrap_err();
        assert!(matches!(e, Error::InvalidHyperparameter { name: "held-out samples", .. }), "{e}");
    }
}

/// `stratified_group_folds` keeps each group whole and spreads a rare class over the parts
/// where `group_folds`, blind to the classes, piles it up: 40 patients of 1 to 6 visits, 8 of
/// them (a fifth) with the rare class 1.
#[test]
fn stratified_group_folds_spread_each_class_over_the_parts() {
    use feedforward::train::FoldConfig;
    let mut rng = StdRng::seed_from_u64(21);
    let mut groups: Vec<usize> = (0..40).flat_map(|g| vec![g; 1 + (g * 5) % 6]).collect();
    rand::seq::SliceRandom::shuffle(&mut groups[..], &mut rng);
    let labels: Vec<usize> = groups.iter().map(|&g| usize::from(g % 5 == 2)).collect();
    let n = groups.len();
    let x = DMatrix::from_fn(1, n, |_, j| j as f32);
    let rare = labels.iter().filter(|&&c| c == 1).count();
    // The largest deviation of a part's share of the rare class from 1/folds.
    let worst = |parts: &[Vec<usize>], folds: usize| {
        let share = |p: &Vec<usize>| p.iter().filter(|&&j| labels[j] == 1).count() as f64 / rare as f64;
        parts.iter().map(|p| (share(p) - 1.0 / folds as f64).abs()).fold(0.0, f64::max)
    };
    for (folds, seed) in [(2, 0), (3, 1), (4, 2), (5, 3)] {
        let config = FoldConfig { folds, seed };
        let cut = train::stratified_group_folds(&x, &labels[..], &labels, &groups, config).unwrap();
        let parts = cut.parts().to_vec();
        let blind = train::group_folds(&x, &labels[..], &groups, config).unwrap().parts().to_vec();
        let (stratified, plain) = (worst(&parts, folds), worst(&blind, folds));
        assert!(stratified <= plain, "{folds} folds: rare-class deviation {stratified} against {plain}");
        // A rare patient has at most 6 visits: no part's share is off by more than that.
        assert!(stratified <= 6.0 / rare as f64, "{folds} folds: {stratified}");
        let mut held_once = Vec::new();
        for (k, split) in cut.enumerate() {
            let held: Vec<usize> = split.held_out_inputs.iter().map(|&v| v as usize).collect();
            let kept: Vec<usize> = split.inputs.iter().map(|&v| v as usize).collect();
            assert!(
                held.iter().all(|&j| kept.iter().all(|&i| groups[i] != groups[j])),
                "part {k}: a split group"
            );
            assert!(held.iter().zip(&split.held_out_targets).all(|(&j, &c)| labels[j] == c));
            held_once.extend(held);
        }
        held_once.sort_unstable();
        assert_eq!(held_once, (0..n).collect::<Vec<_>>());
        let again = train::stratified_group_folds(&x, &labels[..], &labels, &groups, config).unwrap();
        assert_eq!(again.parts(), &parts[..], "seeded");
    }
    let e = train::stratified_group_folds(
        &x,
        &labels[..],
        &labels[1..],
        &groups,
        FoldConfig { folds: 2, seed: 0 },
    );
    assert!(e.err().unwrap().to_string().contains("labels to cut into folds"));
}

/// `group_split` and `group_folds` keep every sample of a group on one side: each group held out
/// whole or kept whole, each sample held out once across the folds, the folds' sizes evened out
/// (largest groups first into the smallest part), seeded; a random cut splits groups.
#[test]
fn group_cuts_keep_every_sample_of_a_group_on_one_side() {
    use feedforward::train::{FoldConfig, SplitConfig};
    let ids = |m: &DMatrix<f32>| m.row(0).iter().map(|&v| v as usize).collect::<Vec<_>>();
    let mut rng = StdRng::seed_from_u64(12);
    // 30 groups of 1 to 9 samples, shuffled among each other.
    let mut groups: Vec<usize> = (0..30).flat_map(|g| vec![g; 1 + (g * 7) % 9]).collect();
    rand::seq::SliceRandom::shuffle(&mut groups[..], &mut rng);
    let n = groups.len();
    let x = DMatrix::from_fn(1, n, |_, j| j as f32);
    let labels: Vec<usize> = (0..n).map(|j| j % 3).collect();
    let whole =
        |held: &[usize], kept: &[usize]| held.iter().all(|&j| kept.iter().all(|&k| groups[j] != groups[k]));
    for (held_out, seed) in [(1, 0), (20, 1), (n / 2, 2), (n - 10, 3)] {
        let config = SplitConfig { held_out, seed };
        let split = train::group_split(&x, &labels[..], &groups, config).unwrap();
        let (kept, held) = (ids(&split.inputs), ids(&split.held_out_inputs));
        assert!(whole(&held, &kept), "held out {held_out}: a group on both sides");
        assert!(held.len() >= held_out && kept.len() + held.len() == n);
        // The last group taken is what passed the count: without it, fewer than asked.
        let largest = 9;
        assert!(held.len() < held_out + largest, "{} for {held_out}", held.len());
        assert!(held.iter().zip(&split.held_out_targets).all(|(&j, &l)| labels[j] == l));
        assert_eq!(train::group_split(&x, &labels[..], &groups, config).unwrap(), split, "seeded");
    }
    // A random cut of as many samples puts some groups on both sides.
    let plain = train::split(&x, &labels[..], SplitConfig { held_out: n / 2, seed: 2 }).unwrap();
    assert!(!whole(&ids(&plain.held_out_inputs), &ids(&plain.inputs)));
    for folds in [2, 3, 7, 30] {
        let config = FoldConfig { folds, seed: 4 };
        let cut = train::group_folds(&x, &labels[..], &groups, config).unwrap();
        let sizes: Vec<usize> = cut.parts().iter().map(Vec::len).collect();
        let mut held_once = Vec::new();
        for split in cut {
            let (kept, held) = (ids(&split.inputs), ids(&split.held_out_inputs));
            assert!(whole(&held, &kept), "{folds} folds: a group on both sides");
            held_once.extend(held);
        }
        held_once.sort_unstable();
        assert_eq!(held_once, (0..n).collect::<Vec<_>>(), "{folds} folds: each sample held out once");
        // Largest first into the smallest part: no part exceeds another by more than a group.
        let spread = sizes.iter().max().unwrap() - sizes.iter().min().unwrap();
        assert!(spread <= 9, "{folds} folds: sizes {sizes:?}");
        let again = train::group_folds(&x, &labels[..], &groups, config).unwrap();
        assert_eq!(again.parts().iter().map(Vec::len).collect::<Vec<_>>(), sizes, "seeded");
    }
    // Bad requests.
    for folds in [1, 31] {
        let e = train::group_folds(&x, &labels[..], &groups, FoldConfig { folds, seed: 0 }).err().unwrap();
        assert!(matches!(e, Error::InvalidHyperparameter { name: "folds", .. }), "{folds}: {e}");
    }
    let e = train::group_split(&x, &labels[..], &groups[1..], SplitConfig { held_out: 3, seed: 0 })
        .err()
        .unwrap();
    assert!(e.to_string().contains("groups to split by"), "{e}");
    // Holding out all but a few samples can leave no whole group to keep.
    let two = [0, 0, 0, 1, 1, 1];
    let x6 = DMatrix::from_fn(1, 6, |_, j| j as f32);
    let e = train::group_split(&x6, &two[..], &two, SplitConfig { held_out: 4, seed: 0 }).err().unwrap();
    assert!(e.to_string().contains("at least one whole group"), "{e}");
}

/// `folds` holds out each sample exactly once, in parts whose sizes differ by at most one, each
/// split keeping the rest with its targets; `stratified_folds` also spreads each class so. A
/// cross-validated classifier scores every sample with a model that did not train on it.
#[test]
fn folds_hold_out_each_sample_once_and_stratified_ones_spread_each_class() {
    use feedforward::train::FoldConfig;
    let ids = |m: &DMatrix<f32>| m.row(0).iter().map(|&v| v as usize).collect::<Vec<_>>();
    let mut rng = StdRng::seed_from_u64(9);
    for (n, folds) in [(10, 2), (11, 3), (7, 7), (100, 5), (57, 10)] {
        let labels: Vec<usize> =
            (0..n).map(|_| if rand::RngExt::random_bool(&mut rng, 0.2) { 1 } else { 0 }).collect();
        let x = DMatrix::from_fn(2, n, |i, j| if i == 0 { j as f32 } else { (7 * j) as f32 });
        let config = FoldConfig { folds, seed: 3 };
        for stratified in [false, true] {
            let cut = || match stratified {
                false => train::folds(&x, &labels[..], config).unwrap(),
                true => train::stratified_folds(&x, &labels, config).unwrap(),
            };
            assert_eq!(cut().len(), folds);
            let mut held_once = Vec::new();
            let (mut sizes, mut rare) = (Vec::new(), Vec::new());
            for (k, split) in cut().enumerate() {
                let (kept, held) = (ids(&split.inputs), ids(&split.held_out_inputs));
                assert_eq!(held, cut().parts()[k], "part {k}");
                assert!(kept.windows(2).all(|w| w[0] < w[1]) && held.windows(2).all(|w| w[0] < w[1]));
                let mut all = [kept.clone(), held.clone()].concat();
                all.sort_unstable();
                assert_eq!(all, (0..n).collect::<Vec<_>>(), "part {k}: kept and held out make the set");
                assert!(held.iter().zip(&split.held_out_targets).all(|(&j, &l)| labels[j] == l));
                assert!(kept.iter().zip(&split.targets).all(|(&j, &l)| labels[j] == l));
                assert!(kept.iter().enumerate().all(|(c, &j)| split.inputs[(1, c)] == (7 * j) as f32));
                sizes.push(held.len());
                rare.push(split.held_out_targets.iter().filter(|&&l| l == 1).count());
                held_once.extend(held);
            }
            held_once.sort_unstable();
            assert_eq!(held_once, (0..n).collect::<Vec<_>>(), "n {n}: each sample held out once");
            let spread = |v: &[usize]| v.iter().max().unwrap() - v.iter().min().unwrap();
            assert!(spread(&sizes) <= 1, "n {n}, {folds} folds: sizes {sizes:?}");
            if stratified {
                assert!(spread(&rare) <= 1, "n {n}, {folds} folds: class 1 per part {rare:?}");
            }
            // Seeded.
            assert_eq!(cut().parts(), cut().parts());
        }
    }
    // A plain cut can leave a part without the rare class; the stratified one cannot.
    let labels: Vec<usize> = (0..40).map(|j| usize::from(j % 10 == 0)).collect();
    let x = DMatrix::from_fn(1, 40, |_, j| j as f32);
    let rare_per_part = |parts: &[Vec<usize>]| {
        parts.iter().map(|p| p.iter().filter(|&&j| labels[j] == 1).count()).collect::<Vec<_>>()
    };
    let plain_misses = (0..20).any(|seed| {
        rare_per_part(train::folds(&x, &labels[..], FoldConfig { folds: 4, seed }).unwrap().parts())
            .contains(&0)
    });
    assert!(plain_misses, "some plain cut leaves a part without class 1");
    for seed in 0..20 {
        let folds = train::stratified_folds(&x, &labels, FoldConfig { folds: 4, seed }).unwrap();
        assert_eq!(rare_per_part(folds.parts()), [1, 1, 1, 1], "seed {seed}");
    }
    // Bad requests.
    for folds in [0, 1, 41] {
        let e = train::folds(&x, &labels[..], FoldConfig { folds, seed: 0 }).err().unwrap();
        assert!(matches!(e, Error::InvalidHyperparameter { name: "folds", .. }), "{folds}: {e}");
    }
    let e = train::stratified_folds(&x, &labels[..39], FoldConfig { folds: 2, seed: 0 }).err().unwrap();
    assert!(e.to_string().contains("40 samples (one per input column), got 39 samples"), "{e}");

    // Cross-validated accuracy of a classifier: each part scored by the model of the others.
    let (x, labels) = blobs(150, 4);
    let mut right = 0;
    for (k, fold) in
        train::stratified_folds(&x, &labels, FoldConfig { folds: 5, seed: 0 }).unwrap().enumerate()
    {
        let mut net = net(k as u64);
        let mut adam = Adam::new(AdamConfig { learning_rate: 1e-2, ..AdamConfig::default() }).unwrap();
        let data = train::Data::new(&fold.inputs, &fold.targets[..]);
        train::fit(&mut net, &mut adam, &SoftmaxCrossEntropy::new(), data, &minibatches(30), |_, _, _| {})
            .unwrap();
        let predicted = net.predict(&fold.held_out_inputs).unwrap();
        right += predicted.iter().zip(&fold.held_out_targets).filter(|(p, t)| p == t).count();
    }
    assert!(right as f64 / 150.0 > 0.9, "cross-validated accuracy {}", right as f64 / 150.0);
}

/// Knowledge distillation through `fit`: a student trained with `SoftTargetCrossEntropy` on a
/// teacher's probabilities (at a temperature of 2) predicts as the teacher does.
#[test]
fn a_student_learns_a_teachers_probabilities() {
    use feedforward::SoftTargetCrossEntropy;
    let (x, labels) = blobs(300, 12);
    let mut teacher = Network::mlp(&[2, 32, 3], MlpConfig::default(), &mut StdRng::seed_from_u64(1)).unwrap();
    let mut adam = Adam::new(AdamConfig { learning_rate: 1e-2, ..AdamConfig::default() }).unwrap();
    let data = train::Data::new(&x, &labels[..]);
    train::fit(&mut teacher, &mut adam, &SoftmaxCrossEntropy::new(), data, &minibatches(40), |_, _, _| {})
        .unwrap();
    let mut soft = teacher.output(&x).unwrap() / 2.0;
    SoftmaxCrossEntropy::softmax_in_place(&mut soft);
    let mut student = net(5);
    let mut adam = Adam::new(AdamConfig { learning_rate: 1e-2, ..AdamConfig::default() }).unwrap();
    let report = train::fit(
        &mut student,
        &mut adam,
        &SoftTargetCrossEntropy,
        train::Data::new(&x, &soft),
        &minibatches(40),
        |_, _, _| {},
    )
    .unwrap();
    let (first, last) = (report.epochs[0].train_loss, report.epochs.last().unwrap().train_loss);
    assert!(last < first, "the loss falls: {first} to {last}");
    let (taught, learned) = (teacher.predict(&x).unwrap(), student.predict(&x).unwrap());
    let agree = taught.iter().zip(&learned).filter(|(a, b)| a == b).count();
    assert!(agree as f64 / 300.0 > 0.95, "student agrees with its teacher on {agree} of 300");
    // Targets that are not probabilities are refused before training starts, naming the sample.
    let e = train::fit(
        &mut student,
        &mut adam,
        &SoftTargetCrossEntropy,
        train::Data::new(&x, &(soft * 3.0)),
        &minibatches(1),
        |_, _, _| {},
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidTarget { .. }), "{e}");
}

/// Rewrites the safetensors file at `path` (f32 tensors only) after `edit` has changed its
/// tensors, given as name, shape and values; the metadata is kept.
fn rewrite_tensors(path: &std::path::Path, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>)) {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = (file.tensors().into_iter())
        .map(|(name, t)| {
            let values =
                t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            (name, t.shape().to_vec(), values)
        })
        .collect();
    edit(&mut tensors);
    let data: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(&str, TensorView<'_>)> = (tensors.iter().zip(&data))
        .map(|((name, shape, _), d)| (name.as_str(), TensorView::new(Dtype::F32, shape.clone(), d).unwrap()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, header.metadata().clone()).unwrap()).unwrap();
}

#[test]
fn a_checkpoint_whose_best_weights_have_another_shape_is_refused() {
    let (x, y) = blobs(60, 1);
    let (xv, yv) = blobs(30, 2);
    let loss = SoftmaxCrossEntropy::new();
    let data = Data::new(&x, &y).with_validation(&xv, &yv);
    let early_stopping = Some(EarlyStopping { patience: 100, min_delta: 0.0 });
    let (_dir, path, config) = checkpointed_run(TrainConfig { early_stopping, ..minibatches(2) }, data);
    let resume = TrainConfig { resume: Some(path.clone()), checkpoint: None, ..config };
    // The file holds layer0.weight (2 inputs, 16 outputs) as [16, 2]. The same 32 values as
    // [2, 16] would be read transposed by count alone, and [17, 2] would not fit.
    let bytes = std::fs::read(&path).unwrap();
    let stored = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap()
        .tensor("best.layer0.weight")
        .unwrap()
        .shape()
        .to_vec();
    assert_eq!(stored, [16, 2]);
    for (shape, len) in [(vec![2, 16], 32), (vec![17, 2], 34)] {
        rewrite_tensors(&path, |tensors| {
            let best = tensors.iter_mut().find(|(name, ..)| name == "best.layer0.weight").unwrap();
            *best = (best.0.clone(), shape.clone(), vec![0.5; len]);
        });
        let mut n = net(2);
        let before = weights(&n);
        let e = train::fit(
            &mut n,
            &mut Adam::with_learning_rate(1e-2).unwrap(),
            &loss,
            data,
            &resume,
            |_, _, _| {},
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Checkpoint { reason, .. } if reason.contains("best.layer0.weight")),
            "{shape:?}: {e}"
        );
        assert_eq!(weights(&n), before);
    }
}

/// Optimizer state that does not fit the network is refused before any of it is taken in:
/// state for a parameter the network lacks, and a buffer of the wrong length (which the first
/// step used to replace silently with a fresh state, so the resumed run went its own way).
#[test]
fn a_checkpoint_with_optimizer_state_that_does_not_fit_the_network_is_refused() {
    let (x, y) = blobs(60, 1);
    let loss = SoftmaxCrossEntropy::new();
    let (_dir, path, config) = checkpointed_run(minibatches(2), Data::new(&x, &y));
    let resume = TrainConfig { resume: Some(path.clone()), checkpoint: None, ..config };
    let original = std::fs::read(&path).unwrap();
    type Edit = Box<dyn Fn(&mut Vec<(String, Vec<usize>, Vec<f32>)>)>;
    // The network has 4 parameters (0 to 3). A state numbered 4 billion would make the
    // optimizer size its state by that number: 96 GB of empty vectors.
    let past = |index: u64| -> (String, Edit) {
        let name = format!("optimizer.exp_avg.{index}");
        (name.clone(), Box::new(move |tensors| tensors.push((name.clone(), vec![1], vec![0.0]))))
    };
    let shorter = |name: &'static str| -> (String, Edit) {
        let edit = move |tensors: &mut Vec<(String, Vec<usize>, Vec<f32>)>| {
            let (_, shape, values) = tensors.iter_mut().find(|(n, ..)| n == name).expect(name);
            values.pop();
            shape[0] -= 1;
        };
        (name.into(), Box::new(edit))
    };
    let cases = [past(4), past(4_000_000_000), shorter("optimizer.exp_avg.0"), shorter("optimizer.step.3")];
    for (name, edit) in cases {
        std::fs::write(&path, &original).unwrap();
        rewrite_tensors(&path, edit);
        let mut n = net(2);
        let before = weights(&n);
        let mut adam = Adam::with_learning_rate(1e-2).unwrap();
        let e = train::fit(&mut n, &mut adam, &loss, Data::new(&x, &y), &resume, |_, _, _| {}).unwrap_err();
        let buffer = name.strip_prefix("optimizer.").unwrap();
        assert!(
            matches!(&e, Error::Checkpoint { reason, .. } if reason.contains(&format!("{buffer:?}"))),
            "{name}: {e}"
        );
        assert_eq!(weights(&n), before);
        assert_eq!(adam.steps(), 0);
    }
}
