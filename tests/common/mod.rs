//! Helpers shared by the test files: running the examples as a user runs them, the MNIST
//! networks of the example's recipes, and a small classification. Each test file uses a part
//! of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A draw of the standard normal distribution (Box–Muller).
pub fn normal(rng: &mut impl rand::RngExt) -> f64 {
    let (u, v) = (rng.random_range(f64::EPSILON..1.0), rng.random_range(0.0..1.0f64));
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The conformal rank of `n` calibration scores for `coverage`: the smallest `k ≤ n` with
/// `k ≥ (n + 1)·coverage` (counted without a floating-point ceil, which `(n + 1)·0.9` can push a
/// whole number past), or `None` when even `n` is short of it.
pub fn conformal_rank(n: usize, coverage: f64) -> Option<usize> {
    (1..=n).find(|&k| k as f64 >= (n + 1) as f64 * coverage - 1e-9)
}

pub fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds example `name` (same profile as the running test, and the same matrix-product
/// kernels: `avx512` if the test has it) and returns its path.
///
/// The kernels must match: a test that compares an example's numbers with its own bit for bit
/// (BatchNorm statistics recomputed) failed on an Intel Xeon with AVX-512 when the example ran
/// the AVX-512 kernels and the test, built without `avx512`, the AVX2 ones. The examples always
/// get `data` (they read tables) and `threading`.
pub fn build_example(name: &str) -> PathBuf {
    let mut features = vec!["threading", "data"];
    features.extend(cfg!(feature = "avx512").then_some("avx512"));
    features.extend(cfg!(feature = "rayon").then_some("rayon"));
    let features = features.join(",");
    let mut build = Command::new(env!("CARGO"));
    build.current_dir(manifest()).args([
        "build",
        "--quiet",
        "--example",
        name,
        "--no-default-features",
        "--features",
    ]);
    build.arg(&features);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building the example {name} failed");
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    deps.parent().unwrap().join("examples").join(name)
}

/// Runs `binary` with `args`, printing its output when it fails.
pub fn run_binary(binary: &Path, args: &[&str]) -> Output {
    let out = Command::new(binary).args(args).output().unwrap();
    if !out.status.success() {
        eprintln!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A JSON metrics file.
pub fn metrics(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The MNIST networks of the `mnist` example's recipes (the recipes live with the example).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MnistNet {
    /// 784-256-10, He init, ReLU, output bias.
    Default,
    /// The original recipe's: `0.1·N(0,1)` weights, `N(0,1)` hidden bias, no output bias, L2 1e-6.
    Seed,
}

impl MnistNet {
    /// The untrained network, drawn from a generator seeded with `seed`.
    pub fn build(self, seed: u64) -> feedforward::Network<f32> {
        use feedforward::{Init, MlpConfig, Network};
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        match self {
            MnistNet::Default => Network::mlp(&[784, 256, 10], MlpConfig::default(), &mut rng).unwrap(),
            MnistNet::Seed => Network::mlp(
                &[784, 256, 10],
                MlpConfig { init: Init::SEED_RECIPE, output_bias: false, ..MlpConfig::default() },
                &mut rng,
            )
            .unwrap()
            .with_l2(1e-6)
            .unwrap(),
        }
    }
}

/// Three noisy blobs in 2-D, one per class, centred at (−1, 0), (1, 0.5) and (0, −1.2), each
/// coordinate off by a uniform draw from `[−spread, spread]`: `(2 × n inputs, labels)`, the
/// labels cycling 0, 1, 2.
pub fn blobs<T: feedforward::Float>(n: usize, seed: u64, spread: f64) -> (nalgebra::DMatrix<T>, Vec<usize>) {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let centers = [(-1.0, 0.0), (1.0, 0.5), (0.0, -1.2)];
    let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
    let x = nalgebra::DMatrix::from_fn(2, n, |r, j| {
        let c = centers[labels[j]];
        T::lit((if r == 0 { c.0 } else { c.1 }) + rng.random_range(-spread..spread))
    });
    (x, labels)
}

/// Every tensor of the network, parameters and buffers, in model-file order.
pub fn tensors<T: feedforward::Float>(net: &feedforward::Network<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    for m in net.modules() {
        m.visit_parameters(&mut |p| out.push(p.value().as_slice().to_vec()));
        m.visit_buffers(&mut |b| out.push(b.value().as_slice().to_vec()));
    }
    out
}

/// Each of `got` within `1e-12` (relative, absolute below 1) of `expected`'s.
pub fn assert_close(got: &[f64], expected: &[f64], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!((g - e).abs() <= 1e-12 * e.abs().max(1.0), "{what}[{i}]: {g} vs {e}");
    }
}

/// Reports a non-finite value in every update, as an optimizer does when a step overflows.
pub struct Reject;

impl<T: feedforward::Float> feedforward::Optimizer<T> for Reject {
    fn update(&mut self, _: usize, _: &feedforward::Parameter<T>, next: &mut [T]) -> bool {
        next.fill(T::lit(f64::NAN));
        false
    }
    fn learning_rate(&self) -> T {
        T::one()
    }
    fn set_learning_rate(&mut self, _: T) -> feedforward::Result<()> {
        Ok(())
    }
}
