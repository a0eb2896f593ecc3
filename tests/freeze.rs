//! Frozen parameters (`Parameter::freeze`, `Network::freeze`): a training step leaves them
//! alone while the rest trains exactly as it would beside a layer that never moved, gradient
//! clipping leaves them out of the global norm, and a run with frozen layers resumes from a
//! checkpoint bit for bit.

use feedforward::train::{self, Batching, Checkpointing, Data, Event, Flow, TrainConfig};
use feedforward::{
    Adam, AdamW, Error, MlpConfig, Momentum, Network, Optimizer, Parameter, Rmsprop, Sgd, SgdConfig,
    SoftmaxCrossEntropy,
};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn net(seed: u64) -> Network<f64> {
    Network::mlp(&[3, 6, 4, 2], MlpConfig::default(), &mut StdRng::seed_from_u64(seed)).unwrap()
}

fn data() -> (DMatrix<f64>, Vec<usize>) {
    let x = DMatrix::from_fn(3, 24, |i, j| ((i * 7 + j * 5) % 11) as f64 / 5.0 - 1.0);
    let y = (0..24).map(|j| (j * 3 % 5) % 2).collect();
    (x, y)
}

fn values(net: &Network<f64>) -> Vec<Vec<f64>> {
    net.parameters().map(|p| p.value().as_slice().to_vec()).collect()
}

fn optimizers() -> Vec<(&'static str, Box<dyn Optimizer<f64>>)> {
    let momentum = SgdConfig {
        learning_rate: 0.05,
        momentum: Momentum::Nesterov { momentum: 0.9 },
        ..SgdConfig::default()
    };
    vec![
        ("sgd", Box::new(Sgd::new(momentum).unwrap())),
        ("adam", Box::new(Adam::with_learning_rate(1e-2).unwrap())),
        ("adamw", Box::new(AdamW::with_learning_rate(1e-2).unwrap())),
        ("rmsprop", Box::new(Rmsprop::elementwise(1e-3).unwrap())),
        ("rmsprop per tensor", Box::new(Rmsprop::per_tensor(0.05, Some(3)).unwrap())),
    ]
}

#[test]
fn frozen_layers_stay_and_the_rest_trains_as_beside_a_layer_that_never_moved() {
    let (x, y) = data();
    let loss = SoftmaxCrossEntropy::new();
    for ((name, mut a), (_, mut b)) in optimizers().into_iter().zip(optimizers()) {
        // Modules: Layer, Layer, Layer. Freeze the first two.
        let mut frozen = net(1);
        frozen.freeze(..2).unwrap();
        let initial = values(&frozen);
        // The reference trains everything, then puts the first two layers back after each step.
        let mut reference = net(1);
        for _ in 0..6 {
            frozen.train_step(&x, &loss, &y, a.as_mut()).unwrap();
            reference.train_step(&x, &loss, &y, b.as_mut()).unwrap();
            for (p, v) in reference.parameters_mut().zip(&initial).take(4) {
                p.value_mut().copy_from_slice(v);
            }
        }
        let (got, expected) = (values(&frozen), values(&reference));
        assert_eq!(got[..4], initial[..4], "{name}: the frozen layers moved");
        assert_ne!(got[4..], initial[4..], "{name}: the last layer did not train");
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn unfreezing_lets_a_layer_train_again() {
    let (x, y) = data();
    let loss = SoftmaxCrossEntropy::new();
    let mut n = net(2);
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    n.freeze(1..=1).unwrap();
    n.train_step(&x, &loss, &y, &mut adam).unwrap();
    let after_frozen = values(&n);
    assert_eq!(after_frozen[2..4], values(&net(2))[2..4]);
    n.unfreeze(..).unwrap();
    n.train_step(&x, &loss, &y, &mut adam).unwrap();
    assert_ne!(values(&n)[2..4], after_frozen[2..4]);
}

#[test]
fn bad_ranges_are_errors_and_change_nothing() {
    let mut n = net(3);
    for result in [n.freeze(..4), n.freeze(2..7), n.unfreeze(3..=3)] {
        match result {
            Err(Error::ShapeMismatch { what, expected, .. }) => {
                assert_eq!(what, "module positions");
                assert!(expected.contains("0..3"), "{expected}");
            }
            other => panic!("expected a shape error, got {other:?}"),
        }
    }
    assert!(n.parameters().all(|p| !p.is_frozen()));
    n.freeze(3..).unwrap(); // empty, at the end: nothing to freeze
    assert!(n.parameters().all(|p| !p.is_frozen()));
}

/// With plain SGD at learning rate 1, a clipped step moves each trainable parameter by exactly
/// its clipped gradient: the norm must be over the trainable gradients only.
#[test]
fn clipping_leaves_frozen_gradients_out_of_the_global_norm() {
    let (x, y) = data();
    let loss = SoftmaxCrossEntropy::new();
    let mut n = net(4);
    n.freeze(..1).unwrap();
    // Every gradient, the frozen ones too (a frozen body gets no backward pass).
    let mut probe = n.clone();
    probe.unfreeze(..).unwrap();
    probe.backward(&x, &loss, &y).unwrap();
    let grads: Vec<Vec<f64>> = probe.parameters().map(|p| p.grad().as_slice().to_vec()).collect();
    let norm = |gs: &[Vec<f64>]| gs.iter().flatten().map(|g| g * g).sum::<f64>().sqrt();
    let (trainable, all) = (norm(&grads[2..]), norm(&grads));
    assert!(all > 1.1 * trainable, "the frozen gradients must count, to tell the two apart");
    let max_norm = trainable / 4.0;
    let scale = max_norm / (trainable + 1e-6);
    let before = values(&n);
    let config = TrainConfig {
        epochs: 1,
        batching: Batching::Full,
        clip_grad_norm: Some(max_norm),
        ..TrainConfig::default()
    };
    let mut sgd = Sgd::with_learning_rate(1.0).unwrap();
    train::fit(&mut n, &mut sgd, &loss, Data::new(&x, &y), &config, |_, _, _| {}).unwrap();
    let after = values(&n);
    assert_eq!(after[..2], before[..2]);
    for ((a, b), g) in after.iter().zip(&before).zip(&grads).skip(2) {
        for ((a, b), g) in a.iter().zip(b).zip(g) {
            let expected = b - g * scale;
            assert!((a - expected).abs() <= 1e-12 * expected.abs().max(1.0), "{a} vs {expected}");
        }
    }
}

#[test]
fn a_run_with_frozen_layers_resumes_from_a_checkpoint_bit_for_bit() {
    let (x, y) = data();
    let loss = SoftmaxCrossEntropy::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frozen.ckpt");
    let config = TrainConfig {
        epochs: 5,
        batching: Batching::Minibatch { size: 8, shuffle: true },
        checkpoint: Some(Checkpointing::new(&path)),
        ..TrainConfig::default()
    };
    let frozen = |seed| {
        let mut n = net(seed);
        n.freeze(..1).unwrap();
        n
    };
    let adam = || Adam::with_learning_rate(1e-2).unwrap();
    let mut whole = frozen(5);
    train::fit(&mut whole, &mut adam(), &loss, Data::new(&x, &y), &config, |_, _, _| {}).unwrap();
    let mut stopped = frozen(5);
    train::fit(&mut stopped, &mut adam(), &loss, Data::new(&x, &y), &config, |event, _, _| match event {
        Event::Epoch(e) if e.epoch == 2 => Flow::Stop,
        _ => Flow::Continue,
    })
    .unwrap();
    let mut resumed = frozen(6);
    let resume = TrainConfig { resume: Some(path.clone()), ..config };
    train::fit(&mut resumed, &mut adam(), &loss, Data::new(&x, &y), &resume, |_, _, _| {}).unwrap();
    assert_eq!(values(&resumed), values(&whole));
    assert_eq!(values(&whole)[..2], values(&net(5))[..2]);
}

/// PyTorch counts Adam's steps per tensor: a layer unfrozen after three steps takes its first
/// update with `t = 1`, where `m̂ = g` and `v̂ = g²`, so it moves by `lr·g/(|g| + ε)`.
#[test]
fn adam_counts_the_steps_of_each_tensor() {
    let (x, y) = data();
    let loss = SoftmaxCrossEntropy::new();
    let (lr, eps) = (1e-2, 1e-8);
    let mut n = net(7);
    n.freeze(..1).unwrap();
    let mut adam = Adam::with_learning_rate(lr).unwrap();
    for _ in 0..3 {
        n.train_step(&x, &loss, &y, &mut adam).unwrap();
    }
    n.unfreeze(..).unwrap();
    let mut probe = n.clone();
    probe.backward(&x, &loss, &y).unwrap();
    let before = values(&n);
    n.train_step(&x, &loss, &y, &mut adam).unwrap();
    let after = values(&n);
    let grads: Vec<Vec<f64>> = probe.parameters().map(|p| p.grad().as_slice().to_vec()).collect();
    for ((a, b), g) in after.iter().zip(&before).zip(&grads).take(2) {
        for ((a, b), g) in a.iter().zip(b).zip(g) {
            let expected = b - lr * g / (g.abs() + eps);
            assert!((a - expected).abs() <= 1e-12, "{a} vs {expected} (g = {g})");
        }
    }
    assert_eq!(adam.steps(), 4);
}

/// A checkpoint written before the per-tensor counts holds `m` and `v` but no `step`: its
/// tensors continue as if counted with every committed step.
#[test]
fn adam_state_without_per_tensor_counts_continues_with_the_committed_steps() {
    let (x, y) = data();
    let loss = SoftmaxCrossEntropy::new();
    let mut a = net(8);
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    for _ in 0..3 {
        a.train_step(&x, &loss, &y, &mut adam).unwrap();
    }
    let mut state = adam.state().unwrap();
    let before = state.buffers.len();
    state.buffers.retain(|(name, _)| !name.starts_with("step."));
    assert_eq!(state.buffers.len(), before - 6, "one count per tensor");
    let mut old = Adam::with_learning_rate(1e-2).unwrap();
    let lengths: Vec<usize> = a.parameters().map(Parameter::len).collect();
    old.load_state(&state, &lengths).unwrap();
    let mut b = a.clone();
    a.train_step(&x, &loss, &y, &mut adam).unwrap();
    b.train_step(&x, &loss, &y, &mut old).unwrap();
    assert_eq!(values(&a), values(&b));
}

/// Fine-tuning as a user does it: a saved model loaded, its head replaced, the rest frozen.
#[test]
fn a_loaded_model_gets_a_new_head_and_a_frozen_body() {
    let (x, y) = data();
    let loss = SoftmaxCrossEntropy::new();
    let bytes = feedforward::weights::to_bytes(&net(9)).unwrap();
    let mut n = Network::<f64>::from_bytes_with(&bytes, "model", &|_, _, _| Ok(None)).unwrap();
    let old_head = n.remove(2).unwrap();
    assert_eq!((old_head.kind(), n.output_rows()), ("Layer", 4));
    let head = feedforward::Layer::new(4, 2, feedforward::Init::He, &mut StdRng::seed_from_u64(10));
    let mut n = n.push(head).unwrap();
    n.freeze(..2).unwrap();
    assert_eq!(
        n.to_string().lines().next().unwrap(),
        "Network (f64): 3 inputs → 2 outputs, 62 parameters (52 frozen)"
    );
    let body = values(&n)[..4].to_vec();
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    let first = n.train_step(&x, &loss, &y, &mut adam).unwrap().loss;
    let mut last = first;
    for _ in 0..30 {
        last = n.train_step(&x, &loss, &y, &mut adam).unwrap().loss;
    }
    assert!(last < first, "the head learns: {first} → {last}");
    assert_eq!(values(&n)[..4], body);
    // Removing a module whose successor cannot take its input is an error that changes nothing.
    assert!(matches!(n.remove(1), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(n.remove(3), Err(Error::ShapeMismatch { .. })));
    assert_eq!(n.modules().len(), 3);
}

/// Counts its backward calls; passes its input through.
#[derive(Clone, Debug, Default)]
struct Probe {
    backward_calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl feedforward::Module<f64> for Probe {
    fn kind(&self) -> &'static str {
        "Probe"
    }
    fn output_rows(&self, input_rows: usize) -> feedforward::Result<usize> {
        Ok(input_rows)
    }
    fn forward(&self, input: &DMatrix<f64>, output: &mut DMatrix<f64>) {
        output.copy_from(input);
    }
    fn backward(
        &mut self,
        _: &DMatrix<f64>,
        _: &DMatrix<f64>,
        dy: &DMatrix<f64>,
        dx: Option<&mut DMatrix<f64>>,
    ) {
        self.backward_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(dx) = dx {
            dx.copy_from(dy);
        }
    }
    fn visit_parameters<'a>(&'a self, _: &mut dyn FnMut(&'a feedforward::Parameter<f64>)) {}
    fn visit_parameters_mut<'a>(&'a mut self, _: &mut dyn FnMut(&'a mut feedforward::Parameter<f64>)) {}
}

/// Nothing below the lowest trainable parameter trains, so the backward pass stops there; the
/// gradient check skips the frozen parameters it did not compute.
#[test]
fn the_backward_pass_stops_at_the_lowest_trainable_module() {
    let (x, y) = data();
    let loss = SoftmaxCrossEntropy::new();
    let probe = Probe::default();
    let calls = probe.backward_calls.clone();
    let count = || calls.load(std::sync::atomic::Ordering::SeqCst);
    // Layer, Probe, Layer, Layer; tanh, so that no ReLU kink at exactly 0 (a dead unit's
    // zero bias) meets the finite differences.
    let config = MlpConfig { hidden_activation: feedforward::Activation::Tanh, ..MlpConfig::default() };
    let mut n = Network::mlp(&[3, 6, 4, 2], config, &mut StdRng::seed_from_u64(11))
        .unwrap()
        .insert(1, probe)
        .unwrap();
    let mut sgd = Sgd::with_learning_rate(0.1).unwrap();
    n.freeze(..2).unwrap();
    n.train_step(&x, &loss, &y, &mut sgd).unwrap();
    assert_eq!(count(), 0, "below the frozen body's top");
    let config = feedforward::gradcheck::Config::default();
    let report = feedforward::gradcheck::check_network(&mut n, &x, &loss, &y, &config).unwrap();
    assert!(report.max_error < 1e-6, "{report}");
    let frozen_report_checked = report.checked;
    n.unfreeze(..).unwrap();
    n.train_step(&x, &loss, &y, &mut sgd).unwrap();
    assert_eq!(count(), 1, "this step reaches it");
    let report = feedforward::gradcheck::check_network(&mut n, &x, &loss, &y, &config).unwrap();
    assert!(report.max_error < 1e-6 && report.checked > frozen_report_checked, "{report}");
}

/// A frozen layer between trainable ones passes the gradient down without computing its own.
/// Whether every frozen parameter's gradient is still all zeros (as built): not computed.
fn frozen_gradients_untouched(n: &Network<f64>) -> bool {
    n.parameters().filter(|p| p.is_frozen()).all(|p| p.grad().iter().all(|&g| g == 0.0))
}

#[test]
fn a_frozen_middle_layer_passes_the_gradient_down() {
    let (x, y) = data();
    let loss = SoftmaxCrossEntropy::new();
    let config = MlpConfig { hidden_activation: feedforward::Activation::Tanh, ..MlpConfig::default() };
    let mut n = Network::mlp(&[3, 6, 4, 2], config, &mut StdRng::seed_from_u64(12)).unwrap();
    n.freeze(1..2).unwrap();
    let report = feedforward::gradcheck::check_network(
        &mut n,
        &x,
        &loss,
        &y,
        &feedforward::gradcheck::Config::default(),
    )
    .unwrap();
    assert!(report.max_error < 1e-6, "{report}");
    assert!(frozen_gradients_untouched(&n), "the frozen gradients were not computed");
    // With everything trainable, the same gradients below it.
    let below = |n: &Network<f64>| n.parameters().take(2).map(|p| p.grad().clone()).collect::<Vec<_>>();
    let mut all = n.clone();
    all.unfreeze(..).unwrap();
    all.backward(&x, &loss, &y).unwrap();
    n.backward(&x, &loss, &y).unwrap();
    assert_eq!(below(&n), below(&all));
}

/// Frozen `BatchNorm` (with the batch's or the running statistics) and `LayerNorm` between
/// trainable layers: their own gradients are not computed, `dL/dx` still flows through them
/// (a gradient check agrees), and the layers below get the gradients they get with the norms
/// trainable.
#[test]
fn frozen_norm_layers_pass_the_gradient_down_without_their_own() {
    use feedforward::{BatchNorm, BatchNormStatistics, Init, Layer, LayerNorm, Module};
    let (x, y) = data();
    let loss = SoftmaxCrossEntropy::new();
    for statistics in [BatchNormStatistics::Batch, BatchNormStatistics::Running] {
        let mut rng = StdRng::seed_from_u64(13);
        let mut norm = BatchNorm::new(6).unwrap().with_training_statistics(statistics);
        let running = [[0.3, -0.2, 0.1, 0.0, 0.5, -0.4], [1.5, 0.5, 2.0, 1.0, 0.8, 1.2]];
        let mut i = 0;
        norm.visit_buffers_mut(&mut |b| {
            b.value_mut().copy_from_slice(&running[i]);
            i += 1;
        });
        let mut n = Network::new(3)
            .push(Layer::new(3, 6, Init::He, &mut rng))
            .unwrap()
            .push(norm)
            .unwrap()
            .push(Layer::new(6, 4, Init::He, &mut rng).with_activation(feedforward::Activation::Tanh))
            .unwrap()
            .push(LayerNorm::new(4).unwrap())
            .unwrap()
            .push(Layer::new(4, 2, Init::He, &mut rng))
            .unwrap();
        n.freeze(1..2).unwrap();
        n.freeze(3..4).unwrap();
        let config = feedforward::gradcheck::Config::default();
        let report = feedforward::gradcheck::check_network(&mut n, &x, &loss, &y, &config).unwrap();
        assert!(report.max_error < 1e-6, "{statistics:?}: {report}");
        assert!(frozen_gradients_untouched(&n), "{statistics:?}: the frozen gradients were not computed");
        let trainable = |n: &Network<f64>| {
            n.parameters().filter(|p| !p.is_frozen()).map(|p| p.grad().clone()).collect::<Vec<_>>()
        };
        let mut all = n.clone();
        all.unfreeze(..).unwrap();
        all.backward(&x, &loss, &y).unwrap();
        n.backward(&x, &loss, &y).unwrap();
        let in_all: Vec<DMatrix<f64>> = all
            .parameters()
            .zip(n.parameters())
            .filter(|(_, p)| !p.is_frozen())
            .map(|(a, _)| a.grad().clone())
            .collect();
        assert_eq!(trainable(&n), in_all, "{statistics:?}");
    }
}
