//! Forward, forward+backward and full training steps of the 784-256-10 MNIST network, beside
//! a roofline reference: the bare matrix products the same step performs, with the same shapes
//! and the same kernels. `cargo bench` takes a few minutes on 2 cores.
//!
//! Flops per training step ≈ 818,000 × batch:
//! forward 2·N·784·256 + 2·N·256·10, backward dW0, dW1 and the hidden deltas.
//!
//! Groups: `mnist_f32` / `mnist_f64` (synthetic inputs, the original recipe's network and a
//! learning rate too small to move it), `mnist_real` (what users run: real MNIST images and
//! the recipes' own networks and optimizers, training as it goes) and `peak` (the machine's
//! FMA peak, the reference `scripts/roofline.py` divides by), `resnet_tabular` (the
//! default `Network::resnet` on 32 features) and `losses` (each loss's value and gradient on
//! 10 outputs, at batch 128 and 42000).

#[path = "common/peak.rs"]
mod peak;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use feedforward::linalg::{Op, gemm};
use feedforward::optim::{Momentum, SgdConfig};
use feedforward::{
    Activation, Adam, AdamW, BatchNorm, BinaryCrossEntropy, Float, Huber, Init, LayerNorm, Loss,
    MeanSquaredError, MlpConfig, Module, Network, Optimizer, ResNetConfig, Rmsprop, SampleWeighted, Sgd,
    SoftmaxCrossEntropy, WeightedTargets,
};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::hint::black_box;
use std::time::Duration;

const BATCHES: [usize; 5] = [1, 32, 128, 1024, 42000];

fn inputs<T: Float>(batch: usize) -> (DMatrix<T>, Vec<usize>) {
    let x = DMatrix::from_fn(784, batch, |i, j| T::lit(((i * 7 + j * 13) % 256) as f64 / 255.0));
    (x, (0..batch).map(|j| j % 10).collect())
}

/// Runs `f` on a thread of a rayon pool of one thread per core (feature `rayon`: the crate's
/// parallel parts then run on that pool), or right here (the crate's own team).
#[cfg(feature = "rayon")]
fn inside_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().num_threads(cores).build().unwrap()).install(f)
}

#[cfg(not(feature = "rayon"))]
fn inside_pool<R>(f: impl FnOnce() -> R) -> R {
    f()
}

fn network<T: Float>() -> Network<T> {
    // The original recipe's network: 784-256-10, `0.1·N(0,1)` weights, no output bias, L2 1e-6.
    Network::mlp(
        &[784, 256, 10],
        MlpConfig { init: Init::SEED_RECIPE, output_bias: false, ..MlpConfig::default() },
        &mut StdRng::seed_from_u64(0),
    )
    .unwrap()
    .with_l2(T::lit(1e-6))
    .unwrap()
}

/// The products of one training step, alone: forward `W0ᵀx`, `W1ᵀa`; backward `a·δ2ᵀ`, `W1·δ2`,
/// `x·δ1ᵀ`.
struct BareProducts<T: Float> {
    w0: DMatrix<T>,
    w1: DMatrix<T>,
    z1: DMatrix<T>,
    z2: DMatrix<T>,
    dw0: DMatrix<T>,
    dw1: DMatrix<T>,
    d1: DMatrix<T>,
}

impl<T: Float> BareProducts<T> {
    fn new(batch: usize) -> Self {
        let fill = |r, c| DMatrix::from_fn(r, c, |i, j| T::lit((((i + 3 * j) % 17) as f64 - 8.0) / 80.0));
        BareProducts {
            w0: fill(784, 256),
            w1: fill(256, 10),
            z1: fill(256, batch),
            z2: fill(10, batch),
            dw0: fill(784, 256),
            dw1: fill(256, 10),
            d1: fill(256, batch),
        }
    }
    fn forward(&mut self, x: &DMatrix<T>) {
        gemm(T::one(), &self.w0, Op::T, x, Op::Id, T::zero(), &mut self.z1);
        gemm(T::one(), &self.w1, Op::T, &self.z1, Op::Id, T::zero(), &mut self.z2);
    }
    fn step(&mut self, x: &DMatrix<T>) {
        self.forward(x);
        gemm(T::one(), &self.z1, Op::Id, &self.z2, Op::T, T::zero(), &mut self.dw1);
        gemm(T::one(), &self.w1, Op::Id, &self.z2, Op::Id, T::zero(), &mut self.d1);
        gemm(T::one(), x, Op::Id, &self.d1, Op::T, T::zero(), &mut self.dw0);
    }
}

fn bench_scalar<T: Float>(c: &mut Criterion, batches: &[usize]) {
    let mut group = c.benchmark_group(format!("mnist_{}", T::NAME));
    for &batch in batches {
        if batch >= 1024 {
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(4));
        } else {
            group
                .sample_size(50)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2));
        }
        group.throughput(Throughput::Elements(batch as u64));
        let (x, y) = inputs::<T>(batch);
        let mut net = network::<T>();
        let mut opt = Rmsprop::per_tensor(T::lit(1e-6), None).unwrap();
        let mut bare = BareProducts::<T>::new(batch);
        group.bench_function(BenchmarkId::new("forward", batch), |b| {
            inside_pool(|| {
                b.iter(|| {
                    net.forward(black_box(&x)).unwrap();
                })
            })
        });
        group.bench_function(BenchmarkId::new("backward", batch), |b| {
            inside_pool(|| {
                b.iter(|| black_box(net.backward(black_box(&x), &SoftmaxCrossEntropy::new(), &y).unwrap()))
            })
        });
        group.bench_function(BenchmarkId::new("train_step", batch), |b| {
            inside_pool(|| {
                b.iter(|| {
                    black_box(
                        net.train_step(black_box(&x), &SoftmaxCrossEntropy::new(), &y, &mut opt).unwrap(),
                    )
                })
            })
        });
        if batch == 128 {
            // The minibatch optimizers, same network and batch: the elementwise RMSprop (the
            // default recipe's), SGD with momentum, Adam and AdamW.
            let sgd = SgdConfig {
                momentum: Momentum::Heavy { momentum: T::lit(0.9), dampening: T::zero() },
                ..SgdConfig::default()
            };
            let optimizers: [(&str, Box<dyn Optimizer<T>>); 4] = [
                ("train_step_elementwise_rmsprop", Box::new(Rmsprop::elementwise(T::lit(1e-6)).unwrap())),
                ("train_step_sgd_momentum", Box::new(Sgd::new(sgd).unwrap())),
                ("train_step_adam", Box::new(Adam::with_learning_rate(T::lit(1e-6)).unwrap())),
                ("train_step_adamw", Box::new(AdamW::with_learning_rate(T::lit(1e-6)).unwrap())),
            ];
            for (name, mut opt) in optimizers {
                let mut net = network::<T>();
                group.bench_function(BenchmarkId::new(name, batch), |b| {
                    b.iter(|| {
                        black_box(
                            net.train_step(black_box(&x), &SoftmaxCrossEntropy::new(), &y, opt.as_mut())
                                .unwrap(),
                        )
                    })
                });
            }
            // The same step with the other hidden activations (the exponential ones evaluate
            // `exp` or `tanh` once or twice per hidden value).
            let activations = [
                ("train_step_tanh", Activation::Tanh),
                ("train_step_sigmoid", Activation::Sigmoid),
                ("train_step_gelu", Activation::Gelu),
                ("train_step_silu", Activation::Silu),
            ];
            for (name, hidden_activation) in activations {
                let config = MlpConfig {
                    init: Init::SEED_RECIPE,
                    output_bias: false,
                    hidden_activation,
                    ..MlpConfig::default()
                };
                let mut net = Network::mlp(&[784, 256, 10], config, &mut StdRng::seed_from_u64(0)).unwrap();
                let mut opt = Rmsprop::per_tensor(T::lit(1e-6), None).unwrap();
                group.bench_function(BenchmarkId::new(name, batch), |b| {
                    b.iter(|| {
                        black_box(
                            net.train_step(black_box(&x), &SoftmaxCrossEntropy::new(), &y, &mut opt).unwrap(),
                        )
                    })
                });
            }
        }
        if batch == 128 {
            // The default network with a normalization after its hidden ReLU: what the
            // normalization's passes add to a step.
            let norms: [(&str, Box<dyn Module<T>>); 2] = [
                ("train_step_batchnorm", Box::new(BatchNorm::new(256).unwrap())),
                ("train_step_layernorm", Box::new(LayerNorm::new(256).unwrap())),
            ];
            for (name, norm) in norms {
                let mut net = network::<T>();
                net.insert_boxed(1, norm).unwrap();
                let mut opt = Rmsprop::per_tensor(T::lit(1e-6), None).unwrap();
                group.bench_function(BenchmarkId::new(name, batch), |b| {
                    b.iter(|| {
                        black_box(
                            net.train_step(black_box(&x), &SoftmaxCrossEntropy::new(), &y, &mut opt).unwrap(),
                        )
                    })
                });
            }
            // The same step with a weight per sample: what `SampleWeighted` adds (the loss's
            // per-sample losses besides its mean and gradient, the gradient's columns scaled).
            let mut net = network::<T>();
            let mut opt = Rmsprop::per_tensor(T::lit(1e-6), None).unwrap();
            let weights = (0..batch).map(|j| (j % 4) as f64 / 2.0 + 0.25).collect();
            let weighted = WeightedTargets::new(&y[..], weights).unwrap();
            let loss = SampleWeighted::new(SoftmaxCrossEntropy::new());
            group.bench_function(BenchmarkId::new("train_step_sample_weighted", batch), |b| {
                b.iter(|| black_box(net.train_step(black_box(&x), &loss, &weighted, &mut opt).unwrap()))
            });
            // Fine-tuning the output layer alone: the hidden layer frozen, so the backward
            // pass stops at the output layer.
            let mut net = network::<T>();
            net.freeze(..1).unwrap();
            let mut opt = Rmsprop::per_tensor(T::lit(1e-6), None).unwrap();
            group.bench_function(BenchmarkId::new("train_step_frozen_hidden", batch), |b| {
                b.iter(|| {
                    black_box(
                        net.train_step(black_box(&x), &SoftmaxCrossEntropy::new(), &y, &mut opt).unwrap(),
                    )
                })
            });
        }
        group.bench_function(BenchmarkId::new("bare_forward_products", batch), |b| {
            b.iter(|| bare.forward(black_box(&x)))
        });
        group.bench_function(BenchmarkId::new("bare_step_products", batch), |b| {
            b.iter(|| bare.step(black_box(&x)))
        });
    }
    group.finish();
}

fn steps(c: &mut Criterion) {
    bench_scalar::<f32>(c, &BATCHES);
    bench_scalar::<f64>(c, &[128]);
}

fn predict_one(c: &mut Criterion) {
    let net = network::<f32>();
    let (x, _) = inputs::<f32>(1);
    c.bench_function("predict_one_image", |b| b.iter(|| black_box(net.predict(black_box(&x)).unwrap())));
}

/// Training steps on the real MNIST images shipped in `data/mnist`: the original recipe's
/// full-batch step (the first 42000 images, its network, per-tensor RMSprop with η 0.5) and the
/// default recipe's step at batch 128 (He-initialised network with an output bias, elementwise
/// RMSprop lr 2e-3), cycling through the first 64 batches of the training set. Both train as
/// criterion iterates: the full-batch one some dozens of steps, the batch-128 one thousands,
/// well into the confident regime where subnormal numbers used to slow a step (README).
#[cfg(feature = "data")]
fn real_images(c: &mut Criterion) {
    use feedforward::data::{Split, load_mnist_first};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");
    let train = load_mnist_first(dir, Split::Train, 42000).expect("data/mnist ships with the repository");
    let labels = train.labels().unwrap().to_vec();
    let mut group = c.benchmark_group("mnist_real");

    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(42000));
    let mut seed = network::<f32>();
    let mut opt = Rmsprop::per_tensor(0.5, Some(500)).unwrap();
    group.bench_function(BenchmarkId::new("train_step_seed_recipe", 42000), |b| {
        inside_pool(|| {
            b.iter(|| {
                black_box(
                    seed.train_step(train.images(), &SoftmaxCrossEntropy::new(), &labels, &mut opt).unwrap(),
                )
            })
        })
    });

    group.sample_size(50).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(128));
    let batches: Vec<_> = (0..64)
        .map(|k| (train.images().columns(128 * k, 128).into_owned(), labels[128 * k..128 * (k + 1)].to_vec()))
        .collect();
    let mut net =
        Network::<f32>::mlp(&[784, 256, 10], MlpConfig::default(), &mut StdRng::seed_from_u64(0)).unwrap();
    let mut opt = Rmsprop::elementwise(2e-3).unwrap();
    let mut next = 0;
    group.bench_function(BenchmarkId::new("train_step_default_recipe", 128), |b| {
        inside_pool(|| {
            b.iter(|| {
                let (x, y) = &batches[next % batches.len()];
                next += 1;
                black_box(net.train_step(x, &SoftmaxCrossEntropy::new(), y, &mut opt).unwrap())
            })
        })
    });
    group.finish();
}

#[cfg(not(feature = "data"))]
fn real_images(_: &mut Criterion) {}

/// The tabular ResNet of `ResNetConfig::default()` (2 blocks of 128 → 256 → 128, BatchNorm)
/// on 32 synthetic features and 3 classes, at batch 256: inference into the network's
/// buffers and an Adam training step.
fn resnet(c: &mut Criterion) {
    let mut group = c.benchmark_group("resnet_tabular");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    let batch = 256;
    group.throughput(Throughput::Elements(batch as u64));
    let mut rng = StdRng::seed_from_u64(0);
    let mut net = Network::<f32>::resnet(32, 3, ResNetConfig::default(), &mut rng).unwrap();
    let x = DMatrix::<f32>::from_fn(32, batch, |i, j| ((i * 31 + j * 17) % 97) as f32 / 48.0 - 1.0);
    let y: Vec<usize> = (0..batch).map(|j| j % 3).collect();
    group.bench_function(BenchmarkId::new("forward", batch), |b| {
        inside_pool(|| b.iter(|| black_box(net.forward(black_box(&x)).unwrap().nrows())))
    });
    let mut adam = Adam::with_learning_rate(1e-6).unwrap();
    group.bench_function(BenchmarkId::new("train_step", batch), |b| {
        inside_pool(|| {
            b.iter(|| black_box(net.train_step(&x, &SoftmaxCrossEntropy::new(), &y, &mut adam).unwrap()))
        })
    });
    group.finish();
}

/// Each loss's value and gradient (`Loss::compute` into a gradient buffer) on 10 outputs per
/// sample, at the default recipe's batch and the original recipe's full batch: the part of a
/// step a loss of the crate costs, beside the step itself.
fn losses(c: &mut Criterion) {
    let mut group = c.benchmark_group("losses");
    group.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for batch in [128, 42000] {
        group.throughput(Throughput::Elements(batch as u64));
        let outputs = DMatrix::<f32>::from_fn(10, batch, |i, j| ((i * 37 + j * 11) % 41) as f32 / 8.0 - 2.5);
        let labels: Vec<usize> = (0..batch).map(|j| (j * 7) % 10).collect();
        let ones = DMatrix::<f32>::from_fn(10, batch, |i, j| f32::from(u8::from((i + j) % 3 == 0)));
        let values = DMatrix::<f32>::from_fn(10, batch, |i, j| ((i * 13 + j * 5) % 29) as f32 / 7.0 - 2.0);
        let mut grad = DMatrix::<f32>::zeros(10, batch);
        let mut run = |name: &str, loss: &(dyn Fn(&mut DMatrix<f32>) -> f32 + Sync)| {
            group.bench_function(BenchmarkId::new(name, batch), |b| {
                inside_pool(|| b.iter(|| black_box(loss(black_box(&mut grad)))))
            });
        };
        let smoothed = SoftmaxCrossEntropy::new().with_label_smoothing(0.1).unwrap();
        let huber = Huber::new(1.0).unwrap();
        let weighted = BinaryCrossEntropy::new().with_pos_weight((1..=10).map(f64::from).collect()).unwrap();
        run("softmax_cross_entropy", &|g| {
            SoftmaxCrossEntropy::new().loss_and_grad(&outputs, &labels, g).unwrap()
        });
        run("softmax_cross_entropy_smoothed", &|g| smoothed.loss_and_grad(&outputs, &labels, g).unwrap());
        run("binary_cross_entropy", &|g| {
            BinaryCrossEntropy::new().loss_and_grad(&outputs, &ones, g).unwrap()
        });
        run("binary_cross_entropy_pos_weight", &|g| weighted.loss_and_grad(&outputs, &ones, g).unwrap());
        run("mean_squared_error", &|g| MeanSquaredError.loss_and_grad(&outputs, &values, g).unwrap());
        run("huber", &|g| huber.loss_and_grad(&outputs, &values, g).unwrap());
    }
    group.finish();
}

criterion_group!(benches, steps, predict_one, real_images, resnet, losses, peak::bench);
criterion_main!(benches);
