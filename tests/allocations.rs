//! A training step at a steady batch size allocates nothing of its own: activations, deltas,
//! gradients, normalization statistics and optimizer state live in buffers reused across
//! steps. Nor does an inference pass into the network's buffers (`Network::forward`), through
//! a `Residual` block too.
//!
//! The matrix-product backend (the `gemm` crate) allocates its packing buffers inside each call,
//! which this crate cannot hand it. So the test counts every allocation during steady-state
//! steps and asserts it equals exactly what the same matrix products, alone, allocate, on one
//! thread and on two.

use feedforward::linalg::{Op, gemm};
use feedforward::{MlpConfig, Network, Normalization, Rmsprop, SoftmaxCrossEntropy};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;
use common::MnistNet;

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        LARGEST.fetch_max(layout.size(), Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        LARGEST.fetch_max(new_size, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count(mut f: impl FnMut()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

const BATCH: usize = 128;
const STEPS: usize = 10;

/// The five products of a step of the default network, with the step's shapes and strides.
fn bare_products(x: &DMatrix<f32>) -> usize {
    let w0 = DMatrix::<f32>::from_element(784, 256, 0.01);
    let w1 = DMatrix::<f32>::from_element(256, 10, 0.01);
    let mut z1 = DMatrix::<f32>::zeros(256, BATCH);
    let mut z2 = DMatrix::<f32>::zeros(10, BATCH);
    let mut d1 = DMatrix::<f32>::zeros(256, BATCH);
    let mut dw0 = DMatrix::<f32>::zeros(784, 256);
    let mut dw1 = DMatrix::<f32>::zeros(256, 10);
    let mut products = || {
        gemm(1.0, &w0, Op::T, x, Op::Id, 1.0, &mut z1);
        gemm(1.0, &w1, Op::T, &z1, Op::Id, 1.0, &mut z2);
        gemm(1.0, &w1, Op::Id, &z2, Op::Id, 0.0, &mut d1);
        gemm(1.0, &z1, Op::Id, &z2, Op::T, 0.0, &mut dw1);
        gemm(1.0, x, Op::Id, &d1, Op::T, 0.0, &mut dw0);
    };
    products();
    count(|| (0..STEPS).for_each(|_| products()))
}

/// The two products of an inference pass of the default network.
fn bare_forward_products(x: &DMatrix<f32>) -> usize {
    let w0 = DMatrix::<f32>::from_element(784, 256, 0.01);
    let w1 = DMatrix::<f32>::from_element(256, 10, 0.01);
    let mut z1 = DMatrix::<f32>::zeros(256, BATCH);
    let mut z2 = DMatrix::<f32>::zeros(10, BATCH);
    let mut products = || {
        gemm(1.0, &w0, Op::T, x, Op::Id, 0.0, &mut z1);
        gemm(1.0, &w1, Op::T, &z1, Op::Id, 0.0, &mut z2);
    };
    products();
    count(|| (0..STEPS).for_each(|_| products()))
}

/// The checks count process-wide allocations, so they are one test, run alone in this binary:
/// as two tests they raced with the test harness, whose main thread allocates when it reports
/// a finished test (a steady-state count once came out high that way).
#[test]
fn allocations() {
    steady_state_steps_allocate_only_inside_the_matrix_products();
    #[cfg(feature = "data")]
    a_header_claiming_millions_of_images_costs_no_more_than_a_small_buffer();
}

fn steady_state_steps_allocate_only_inside_the_matrix_products() {
    // One thread, then two: with two, each large product is cut in two and each piece is one
    // backend call (with its own packing buffers), in the step as in the bare products.
    for threads in [1, 2] {
        feedforward::linalg::set_threads(threads);
        let x = DMatrix::<f32>::from_fn(784, BATCH, |i, j| ((i + j) % 256) as f32 / 255.0);
        let y: Vec<usize> = (0..BATCH).map(|j| j % 10).collect();
        for normalization in [Normalization::None, Normalization::BatchNorm, Normalization::LayerNorm] {
            steady_state_steps(threads, normalization, &x, &y);
        }
        steady_sorted_steps(threads, &x, &y);
        steady_residual_steps(threads, &x, &y);
    }
    feedforward::linalg::set_threads(0);
}

/// The default MNIST network ending in `Sorted` (its ten outputs sorted, as quantiles would
/// be): the same five products, and nothing allocated by the sort.
fn steady_sorted_steps(threads: usize, x: &DMatrix<f32>, y: &[usize]) {
    let mut net: Network<f32> =
        MnistNet::Default.build(0).push(feedforward::Sorted::new(10).unwrap()).unwrap();
    let mut opt = Rmsprop::elementwise(1e-3).unwrap();
    for _ in 0..2 {
        net.train_step(x, &SoftmaxCrossEntropy::new(), y, &mut opt).unwrap();
    }
    let steps = count(|| {
        for _ in 0..STEPS {
            net.train_step(x, &SoftmaxCrossEntropy::new(), y, &mut opt).unwrap();
        }
    });
    let products = bare_products(x);
    eprintln!("{threads} thread(s), Sorted, {STEPS} steps: {steps} allocations; products alone: {products}");
    assert_eq!(steps, products, "{threads} thread(s): a step through Sorted allocated");
}

/// 784 → 256 ReLU, a `Residual` block around 256 → 256 ReLU → 256, then → 10, against the
/// same four layers without the block: the same products, so the same allocations unless the
/// block (its body's buffers, its addition) allocated.
fn steady_residual_steps(threads: usize, x: &DMatrix<f32>, y: &[usize]) {
    use feedforward::{Activation, Init, Layer, Residual};
    let build = |residual: bool| -> Network<f32> {
        let mut rng = StdRng::seed_from_u64(0);
        let first = Layer::new(784, 256, Init::He, &mut rng).with_activation(Activation::Relu);
        let inner = Layer::new(256, 256, Init::He, &mut rng).with_activation(Activation::Relu);
        let outer = Layer::new(256, 256, Init::He, &mut rng);
        let last = Layer::new(256, 10, Init::He, &mut rng);
        let net = Network::new(784).push(first).unwrap();
        let net = if residual {
            let body = Network::new(256).push(inner).and_then(|b| b.push(outer)).unwrap();
            net.push(Residual::new(body).unwrap()).unwrap()
        } else {
            net.push(inner).and_then(|n| n.push(outer)).unwrap()
        };
        net.push(last).unwrap()
    };
    // The allocations of STEPS training steps, then of STEPS inference passes into buffers.
    let steady = |mut net: Network<f32>| {
        let mut opt = Rmsprop::elementwise(1e-3).unwrap();
        for _ in 0..2 {
            net.train_step(x, &SoftmaxCrossEntropy::new(), y, &mut opt).unwrap();
        }
        let steps = count(|| {
            for _ in 0..STEPS {
                net.train_step(x, &SoftmaxCrossEntropy::new(), y, &mut opt).unwrap();
            }
        });
        net.forward(x).unwrap();
        let passes = count(|| {
            for _ in 0..STEPS {
                net.forward(x).unwrap();
            }
        });
        (steps, passes)
    };
    let (plain, residual) = (steady(build(false)), steady(build(true)));
    eprintln!(
        "{threads} thread(s), Residual, {STEPS} steps and forward passes: {residual:?} allocations; \
         without the block: {plain:?}"
    );
    assert_eq!(residual.0, plain.0, "{threads} thread(s): a step through Residual allocated");
    assert_eq!(residual.1, plain.1, "{threads} thread(s): Network::forward through Residual allocated");
}

/// The default MNIST network, or with a normalization between its hidden layer and the ReLU:
/// the same five matrix products.
fn steady_state_steps(threads: usize, normalization: Normalization, x: &DMatrix<f32>, y: &[usize]) {
    {
        let mut net: Network<f32> = match normalization {
            Normalization::None => MnistNet::Default.build(0),
            _ => {
                let config = MlpConfig { normalization, ..MlpConfig::default() };
                Network::mlp(&[784, 256, 10], config, &mut StdRng::seed_from_u64(0)).unwrap()
            }
        };
        let mut opt = Rmsprop::elementwise(1e-3).unwrap();
        // The first step sizes every buffer and the optimizer state (and may start the helper
        // threads).
        assert!(
            count(|| {
                net.train_step(x, &SoftmaxCrossEntropy::new(), y, &mut opt).unwrap();
            }) > 0
        );
        net.train_step(x, &SoftmaxCrossEntropy::new(), y, &mut opt).unwrap();
        let steps = count(|| {
            for _ in 0..STEPS {
                net.train_step(x, &SoftmaxCrossEntropy::new(), y, &mut opt).unwrap();
            }
        });
        let products = bare_products(x);
        eprintln!(
            "{threads} thread(s), {normalization:?}, {STEPS} steps: {steps} allocations; their matrix \
             products alone: {products}"
        );
        assert_eq!(
            steps, products,
            "{threads} thread(s), {normalization:?}: a step allocates beyond its matrix products"
        );
        net.forward(x).unwrap();
        let passes = count(|| {
            for _ in 0..STEPS {
                net.forward(x).unwrap();
            }
        });
        let products = bare_forward_products(x);
        eprintln!(
            "{threads} thread(s), {normalization:?}, {STEPS} forward passes: {passes}; products alone: {products}"
        );
        assert_eq!(
            passes, products,
            "{threads} thread(s), {normalization:?}: an inference pass allocates beyond its matrix products"
        );
    }
}

#[cfg(feature = "data")]
fn a_header_claiming_millions_of_images_costs_no_more_than_a_small_buffer() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/idx/five_million_images.idx");
    // The header claims 5,000,000 × 28 × 28 bytes (3.9 GB), over the reader's limit; the file
    // is 100 bytes.
    LARGEST.store(0, Ordering::SeqCst);
    let err = feedforward::data::idx::read_idx(&path).unwrap_err();
    assert!(err.to_string().contains("too large") && err.to_string().contains("limit"), "{err}");
    // A claim under the limit, 1,000,000 × 28 × 28 bytes (784 MB), in 100 bytes: read as far
    // as the data goes, never allocated up front.
    let mut bytes = vec![0, 0, 0x08, 3];
    for d in [1_000_000u32, 28, 28] {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.resize(100, 7);
    let err = feedforward::data::idx::parse_idx(&bytes[..], "claims_a_million.idx").unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    let largest = LARGEST.load(Ordering::SeqCst);
    assert!(largest <= 2 << 20, "largest allocation {largest} bytes");
}
