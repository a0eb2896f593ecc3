//! Weight averaging in `train::fit`: the exponential average and the epochs' mean against a
//! reference computed from the weights the run visits, what validation and early stopping
//! see, bit-identical resume from a checkpoint, and bad settings.

mod common;

use feedforward::train::{
    self, Averaging, Batching, Checkpointing, Data, EarlyStopping, Event, Flow, TrainConfig,
};
use feedforward::{Adam, AdamConfig, Error, MlpConfig, Network, Optimizer, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Three noisy blobs in 2-D: `(2 × n inputs, labels)`.
fn blobs(n: usize, seed: u64) -> (DMatrix<f64>, Vec<usize>) {
    common::blobs(n, seed, 0.9)
}

fn net(seed: u64) -> Network<f64> {
    Network::mlp(&[2, 16, 3], MlpConfig::default(), &mut StdRng::seed_from_u64(seed)).unwrap()
}

fn weights(net: &Network<f64>) -> Vec<DMatrix<f64>> {
    net.parameters().map(|p| p.value().clone()).collect()
}

fn adam() -> Adam<f64> {
    Adam::new(AdamConfig { learning_rate: 3e-2, ..AdamConfig::default() }).unwrap()
}

fn config(epochs: usize, averaging: Averaging) -> TrainConfig {
    TrainConfig {
        epochs,
        batching: Batching::Minibatch { size: 8, shuffle: true },
        seed: 4,
        averaging: Some(averaging),
        ..TrainConfig::default()
    }
}

/// `a + s·(w − a)` over each tensor: the reference's own update.
fn move_towards(average: &mut [DMatrix<f64>], current: &[DMatrix<f64>], share: f64) {
    for (a, w) in average.iter_mut().zip(current) {
        *a += (w - &*a) * share;
    }
}

fn close(a: &[DMatrix<f64>], b: &[DMatrix<f64>]) -> bool {
    a.iter().zip(b).all(|(a, b)| (a - b).amax() <= 1e-12 * b.amax().max(1.0))
}

#[test]
fn the_exponential_average_follows_every_step_and_the_network_ends_with_it() {
    let (x, y) = blobs(48, 1);
    let decay = 0.9;
    let mut snapshots: Vec<Vec<DMatrix<f64>>> = Vec::new();
    let mut network = net(2);
    let report = train::fit(
        &mut network,
        &mut adam(),
        &SoftmaxCrossEntropy::new(),
        Data::new(&x, &y[..]),
        &config(5, Averaging::Exponential { decay }),
        |event, net, _| {
            if let Event::Step(_) = event {
                snapshots.push(weights(net));
            }
        },
    )
    .unwrap();
    assert_eq!(report.averaged, Some(30), "5 epochs of 6 steps");
    // By its definition: each step's weights weigh d^(age), normalized.
    let n = snapshots.len();
    let total: f64 = (0..n).map(|k| decay.powi((n - 1 - k) as i32)).sum();
    let mut reference: Vec<DMatrix<f64>> = snapshots[0].iter().map(|t| t * 0.0).collect();
    for (k, snapshot) in snapshots.iter().enumerate() {
        let w = decay.powi((n - 1 - k) as i32) / total;
        reference.iter_mut().zip(snapshot).for_each(|(r, t)| *r += t * w);
    }
    assert!(close(&weights(&network), &reference));
    // The average is not the last step's weights, nor the copy-then-move average that
    // PyTorch's AveragedModel keeps, in which the first step's weights weigh d^(n − 1).
    assert!(!close(&weights(&network), &snapshots[n - 1]));
    let mut copied = snapshots[0].clone();
    snapshots[1..].iter().for_each(|s| move_towards(&mut copied, s, 1.0 - decay));
    assert!(!close(&weights(&network), &copied));
}

#[test]
fn the_epochs_mean_starts_at_its_epoch_and_validation_measures_it() {
    let (x, y) = blobs(48, 1);
    let (xv, yv) = blobs(30, 2);
    let loss = SoftmaxCrossEntropy::new();
    let mut ends: Vec<Vec<DMatrix<f64>>> = Vec::new();
    let mut network = net(2);
    let data = Data::new(&x, &y[..]).with_validation(&xv, &yv[..]);
    let report = train::fit(
        &mut network,
        &mut adam(),
        &loss,
        data,
        &config(6, Averaging::Epochs { from_epoch: 3 }),
        |event, net, _| {
            if let Event::Epoch(e) = event {
                let live = net.evaluate(&xv, &loss, &yv).unwrap().loss;
                let validated = e.validation.unwrap().loss;
                // Before the average starts, and at its first epoch (an average of one),
                // validation measures the weights themselves; later, the mean.
                assert_eq!(validated == live, e.epoch <= 3, "epoch {}: {validated} against {live}", e.epoch);
                ends.push(weights(net));
            }
        },
    )
    .unwrap();
    // The plain mean of the weights at the end of epochs 3, 4, 5 and 6.
    let mut mean = ends[2].clone();
    for (n, end) in ends[3..].iter().enumerate() {
        move_towards(&mut mean, end, 1.0 / (n + 2) as f64);
    }
    assert_eq!(report.averaged, Some(4));
    assert!(close(&weights(&network), &mean));
    // The network ends with what the last epoch validated.
    let last = report.epochs.last().unwrap().validation.unwrap().loss;
    assert_eq!(network.evaluate(&xv, &loss, &yv).unwrap().loss, last);
}

#[test]
fn early_stopping_keeps_the_best_average() {
    let (x, y) = blobs(48, 1);
    let (xv, yv) = blobs(30, 2);
    let loss = SoftmaxCrossEntropy::new();
    let data = Data::new(&x, &y[..]).with_validation(&xv, &yv[..]);
    let config = TrainConfig {
        early_stopping: Some(EarlyStopping { patience: 3, min_delta: 0.0 }),
        ..config(30, Averaging::Exponential { decay: 0.8 })
    };
    let mut network = net(2);
    let report = train::fit(&mut network, &mut adam(), &loss, data, &config, |_, _, _| {}).unwrap();
    let best = report.best_epoch.unwrap();
    let best_loss = report.epochs[best - 1].validation.unwrap().loss;
    assert_eq!(network.evaluate(&xv, &loss, &yv).unwrap().loss, best_loss);
    assert!(report.epochs.iter().all(|e| e.validation.unwrap().loss >= best_loss));
}

#[test]
fn a_run_with_an_average_resumes_bit_identical() {
    let (x, y) = blobs(60, 1);
    let loss = SoftmaxCrossEntropy::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ckpt");
    for averaging in [Averaging::Exponential { decay: 0.95 }, Averaging::Epochs { from_epoch: 2 }] {
        let config = TrainConfig { checkpoint: Some(Checkpointing::new(&path)), ..config(6, averaging) };
        let data = Data::new(&x, &y[..]);
        let (mut straight, mut first, mut resumed) = (adam(), adam(), adam());
        let mut a = net(7);
        let whole = train::fit(&mut a, &mut straight, &loss, data, &config, |_, _, _| {}).unwrap();
        let mut b = net(7);
        train::fit(&mut b, &mut first, &loss, data, &config, |event, _, _| match event {
            Event::Epoch(e) if e.epoch == 3 => Flow::Stop,
            _ => Flow::Continue,
        })
        .unwrap();
        let mut c = net(99);
        let config = TrainConfig { resume: Some(path.clone()), ..config };
        let rest = train::fit(&mut c, &mut resumed, &loss, data, &config, |_, _, _| {}).unwrap();
        assert_eq!(weights(&c), weights(&a), "{averaging:?}");
        assert_eq!(resumed.state(), straight.state());
        assert_eq!(rest.averaged, whole.averaged);
        // A checkpoint of a run without averaging does not resume one with it.
        let plain = TrainConfig { averaging: None, resume: None, ..config.clone() };
        train::fit(&mut net(7), &mut adam(), &loss, data, &plain, |_, _, _| {}).unwrap();
        let err = train::fit(&mut net(7), &mut adam(), &loss, data, &config, |_, _, _| {}).unwrap_err();
        assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    }
}

#[test]
fn bad_averaging_settings_are_errors() {
    let (x, y) = blobs(12, 1);
    let loss = SoftmaxCrossEntropy::new();
    for averaging in [
        Averaging::Exponential { decay: 1.0 },
        Averaging::Exponential { decay: -0.1 },
        Averaging::Exponential { decay: f64::NAN },
        Averaging::Epochs { from_epoch: 0 },
        Averaging::Epochs { from_epoch: 4 },
    ] {
        let mut network = net(2);
        let before = weights(&network);
        let result = train::fit(
            &mut network,
            &mut adam(),
            &loss,
            Data::new(&x, &y[..]),
            &config(3, averaging),
            |_, _, _| {},
        );
        assert!(matches!(result, Err(Error::InvalidHyperparameter { .. })), "{averaging:?}");
        assert_eq!(weights(&network), before);
    }
    // A decay of 0 keeps only the last step: the network ends as without averaging.
    let (mut a, mut b) = (net(2), net(2));
    let data = Data::new(&x, &y[..]);
    train::fit(
        &mut a,
        &mut adam(),
        &loss,
        data,
        &config(3, Averaging::Exponential { decay: 0.0 }),
        |_, _, _| {},
    )
    .unwrap();
    let plain = TrainConfig { averaging: None, ..config(3, Averaging::Exponential { decay: 0.0 }) };
    train::fit(&mut b, &mut adam(), &loss, data, &plain, |_, _, _| {}).unwrap();
    assert_eq!(weights(&a), weights(&b));
}
