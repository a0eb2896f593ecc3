//! `Network::recompute_batch_norm` (PyTorch's `update_bn`): the running statistics it leaves
//! against the batches' statistics computed here by hand, each batch weighing its samples; the
//! modules it leaves alone; errors that change nothing; the same numbers on any thread count.

use feedforward::{BatchNorm, BatchNormStatistics, Dropout, Error, Init, Layer, Module, Network, Relu};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

mod common;
use common::{assert_close, tensors};

fn random<T: feedforward::Float>(rows: usize, cols: usize, seed: u64, scale: f64) -> DMatrix<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    DMatrix::from_fn(rows, cols, |_, _| T::lit(scale * rng.random_range(-1.0..1.0) + 2.0))
}

/// Layer 3→4, Dropout, BatchNorm(4), ReLU, Layer 4→3, BatchNorm(3), Layer 3→2.
fn net() -> Network<f64> {
    let mut rng = StdRng::seed_from_u64(1);
    Network::new(3)
        .push(Layer::new(3, 4, Init::He, &mut rng))
        .and_then(|n| n.push(Dropout::new(0.5)?))
        .and_then(|n| n.push(BatchNorm::new(4)?))
        .and_then(|n| n.push(Relu))
        .and_then(|n| n.push(Layer::new(4, 3, Init::He, &mut rng)))
        .and_then(|n| n.push(BatchNorm::new(3)?))
        .and_then(|n| n.push(Layer::new(3, 2, Init::He, &mut rng)))
        .unwrap()
}

/// Each row's mean and unbiased variance, and the rows normalized by the mean and the biased
/// variance, then scaled and shifted by the BatchNorm `norm`'s γ and β (ε = 1e-5): its training
/// pass, written out.
fn normalize(x: &DMatrix<f64>, norm: &dyn Module<f64>) -> (Vec<f64>, Vec<f64>, DMatrix<f64>) {
    let norm = norm.downcast_ref::<BatchNorm<f64>>().unwrap();
    let (gain, shift) = (norm.gain().value(), norm.shift().value());
    let n = x.ncols() as f64;
    let mean: Vec<f64> = x.row_iter().map(|r| r.sum() / n).collect();
    let biased: Vec<f64> =
        x.row_iter().zip(&mean).map(|(r, m)| r.map(|v| (v - m).powi(2)).sum() / n).collect();
    let out = DMatrix::from_fn(x.nrows(), x.ncols(), |i, j| {
        gain[i] * (x[(i, j)] - mean[i]) / (biased[i] + 1e-5).sqrt() + shift[i]
    });
    (mean, biased.iter().map(|v| v * n / (n - 1.0)).collect(), out)
}

fn running(net: &Network<f64>, module: usize) -> (Vec<f64>, Vec<f64>) {
    let norm = net.modules()[module].downcast_ref::<BatchNorm<f64>>().unwrap();
    (norm.running_mean().value().as_slice().to_vec(), norm.running_var().value().as_slice().to_vec())
}

#[test]
fn the_running_statistics_become_the_batches_statistics_each_weighing_its_samples() {
    let mut net = net();
    // A training step first, so that the running statistics hold something else.
    let x = random::<f64>(3, 50, 2, 3.0);
    net.train_step(
        &x,
        &feedforward::MeanSquaredError,
        &random(2, 50, 3, 1.0),
        &mut feedforward::Sgd::with_learning_rate(0.1).unwrap(),
    )
    .unwrap();
    let before = tensors(&net);
    // Batches of 16, 16, 16 and 2 samples.
    assert_eq!(net.recompute_batch_norm(&x, 16).unwrap(), 2);

    // By hand: dropout as in inference (the identity), each BatchNorm normalizing with its
    // batch's statistics; the running ones are the batches' weighted by their samples.
    let (mut sums2, mut sums5) = ((vec![0.0; 4], vec![0.0; 4]), (vec![0.0; 3], vec![0.0; 3]));
    for start in (0..50).step_by(16) {
        let batch = x.columns(start, 16.min(50 - start)).into_owned();
        let n = batch.ncols() as f64;
        let mut h = DMatrix::zeros(4, batch.ncols());
        net.modules()[0].forward(&batch, &mut h);
        let (mean2, var2, normalized) = normalize(&h, net.modules()[2].as_ref());
        let mut h = DMatrix::zeros(3, batch.ncols());
        net.modules()[4].forward(&normalized.map(|v| v.max(0.0)), &mut h);
        let (mean5, var5, _) = normalize(&h, net.modules()[5].as_ref());
        for ((sums, mean), var) in [(&mut sums2, mean2), (&mut sums5, mean5)].into_iter().zip([var2, var5]) {
            sums.0.iter_mut().zip(&mean).for_each(|(s, m)| *s += n * m);
            sums.1.iter_mut().zip(&var).for_each(|(s, v)| *s += n * v);
        }
    }
    for (module, sums) in [(2, sums2), (5, sums5)] {
        let (mean, var) = running(&net, module);
        assert_close(
            &mean,
            &sums.0.iter().map(|s| s / 50.0).collect::<Vec<_>>(),
            &format!("module {module} mean"),
        );
        assert_close(
            &var,
            &sums.1.iter().map(|s| s / 50.0).collect::<Vec<_>>(),
            &format!("module {module} variance"),
        );
    }
    // Nothing else moved: the parameters, the step count.
    let after = tensors(&net);
    let buffers = [4, 5, 10, 11]; // the two BatchNorms' running statistics
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        if !buffers.contains(&i) {
            assert_eq!(b, a, "tensor {i}");
        }
    }
    assert_eq!(net.steps(), 1);

    // One batch of the whole set: the set's mean and unbiased variance, and the network then
    // predicts with them.
    net.recompute_batch_norm(&x, 1000).unwrap();
    let mut h = DMatrix::zeros(4, 50);
    net.modules()[0].forward(&x, &mut h);
    let (mean, var, _) = normalize(&h, net.modules()[2].as_ref());
    assert_close(&running(&net, 2).0, &mean, "whole-set mean");
    assert_close(&running(&net, 2).1, &var, "whole-set variance");
}

#[test]
fn a_batch_norm_on_running_statistics_and_a_network_without_one_are_left_alone() {
    let x = random::<f64>(3, 40, 4, 1.0);
    let mut net = net();
    net.modules_mut()[5]
        .downcast_mut::<BatchNorm<f64>>()
        .unwrap()
        .set_training_statistics(BatchNormStatistics::Running);
    let frozen = running(&net, 5);
    assert_eq!(net.recompute_batch_norm(&x, 8).unwrap(), 1);
    assert_eq!(running(&net, 5), frozen);
    assert_ne!(running(&net, 2).0, vec![0.0; 4]);

    let mut rng = StdRng::seed_from_u64(5);
    let mut plain = Network::<f64>::new(3).push(Layer::new(3, 2, Init::He, &mut rng)).unwrap();
    let before = tensors(&plain);
    assert_eq!(plain.recompute_batch_norm(&x, 8).unwrap(), 0);
    assert_eq!(tensors(&plain), before);
}

#[test]
fn bad_input_is_an_error_that_changes_nothing() {
    let mut net = net();
    let x = random::<f64>(3, 33, 6, 1.0);
    let before = tensors(&net);
    let refused = |result: feedforward::Result<usize>| result.expect_err("refused");
    assert!(matches!(
        refused(net.recompute_batch_norm(&x, 0)),
        Error::InvalidHyperparameter { name: "batch size", .. }
    ));
    // 33 samples in batches of 16 leave a last batch of one: no variance.
    assert!(matches!(refused(net.recompute_batch_norm(&x, 16)), Error::ShapeMismatch { .. }));
    assert!(matches!(
        refused(net.recompute_batch_norm(&random(2, 33, 6, 1.0), 8)),
        Error::ShapeMismatch { .. }
    ));
    assert!(matches!(refused(net.recompute_batch_norm(&DMatrix::zeros(3, 0), 8)), Error::EmptyBatch { .. }));
    let mut nan = x.clone();
    nan[(1, 20)] = f64::NAN;
    assert!(matches!(refused(net.recompute_batch_norm(&nan, 8)), Error::NonFinite { sample: Some(20), .. }));
    assert_eq!(tensors(&net), before);

    // An overflow inside the network (f32): statistics of inf are refused and the ones before
    // stay, the first BatchNorm's included, which the first batches could compute.
    let mut rng = StdRng::seed_from_u64(7);
    let mut net = Network::<f32>::new(3)
        .push(Layer::new(3, 4, Init::He, &mut rng))
        .and_then(|n| n.push(BatchNorm::new(4)?))
        .and_then(|n| n.push(Layer::new(4, 4, Init::He, &mut rng)))
        .and_then(|n| n.push(BatchNorm::new(4)?))
        .unwrap();
    let mut x = random::<f32>(3, 32, 8, 1.0);
    x.columns_mut(24, 8).fill(3e38);
    let before = tensors(&net);
    let error = refused(net.recompute_batch_norm(&x, 8));
    assert!(
        matches!(&error, Error::NonFinite { what, .. } if what.contains("module 1 (BatchNorm)")),
        "{error}"
    );
    assert_eq!(tensors(&net), before);
}

#[test]
fn a_batch_norm_inside_a_residual_block_is_recomputed_too() {
    use feedforward::Residual;
    let x = random::<f64>(3, 50, 30, 2.0);
    let mut rng = StdRng::seed_from_u64(31);
    let first = Layer::new(3, 4, Init::He, &mut rng);
    let inner = Layer::new(4, 4, Init::He, &mut rng);
    // first → [BatchNorm → inner] + skip → BatchNorm.
    let body = Network::new(4).push(BatchNorm::new(4).unwrap()).and_then(|b| b.push(inner.clone())).unwrap();
    let mut net = Network::new(3)
        .push(first.clone())
        .and_then(|n| n.push(Residual::new(body)?))
        .and_then(|n| n.push(BatchNorm::new(4)?))
        .unwrap();
    assert_eq!(net.recompute_batch_norm(&x, 16).unwrap(), 2);
    let block = net.modules()[1].downcast_ref::<Residual<f64>>().unwrap();
    let (inside, after) = (running(block.body(), 0), running(&net, 2));

    // By hand, batch by batch: the block's BatchNorm sees the first layer's output h and
    // normalizes with the batch's statistics; the last one sees h + inner(normalized h).
    let (mut sums_inside, mut sums_after) = ((vec![0.0; 4], vec![0.0; 4]), (vec![0.0; 4], vec![0.0; 4]));
    let fresh = BatchNorm::<f64>::new(4).unwrap();
    for start in (0..50).step_by(16) {
        let batch = x.columns(start, 16.min(50 - start)).into_owned();
        let n = batch.ncols() as f64;
        let mut h = DMatrix::zeros(4, batch.ncols());
        first.forward(&batch, &mut h);
        let (mean, var, normalized) = normalize(&h, &fresh);
        let mut f = DMatrix::zeros(4, batch.ncols());
        inner.forward(&normalized, &mut f);
        let (mean2, var2, _) = normalize(&(h + f), &fresh);
        for ((sums, mean), var) in
            [(&mut sums_inside, mean), (&mut sums_after, mean2)].into_iter().zip([var, var2])
        {
            sums.0.iter_mut().zip(&mean).for_each(|(s, m)| *s += n * m);
            sums.1.iter_mut().zip(&var).for_each(|(s, v)| *s += n * v);
        }
    }
    for ((mean, var), sums, what) in [(inside, sums_inside, "inside"), (after, sums_after, "after")] {
        assert_close(&mean, &sums.0.iter().map(|s| s / 50.0).collect::<Vec<_>>(), &format!("{what}: mean"));
        assert_close(
            &var,
            &sums.1.iter().map(|s| s / 50.0).collect::<Vec<_>>(),
            &format!("{what}: variance"),
        );
    }
}

#[test]
fn the_same_statistics_on_any_thread_count() {
    // 64 features × 1024 samples: enough for the sums to be cut into blocks.
    let run = |threads: usize| {
        feedforward::linalg::set_threads(threads);
        let mut rng = StdRng::seed_from_u64(10);
        let mut n = Network::<f32>::new(8)
            .push(Layer::new(8, 64, Init::He, &mut rng))
            .and_then(|n| n.push(BatchNorm::new(64)?))
            .unwrap();
        n.recompute_batch_norm(&random(8, 1024, 11, 3.0), 300).unwrap();
        feedforward::linalg::set_threads(0);
        tensors(&n)
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}
