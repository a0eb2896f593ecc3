//! The `mnist` example's default recipe on all of MNIST reaches at least 97.5% test accuracy,
//! run as a user runs it.
//!
//! About 5 s in a release build, far too slow unoptimised: run it with
//! `cargo test --release --test mnist_release` (CI does).
#![cfg(feature = "data")]

mod common;

#[test]
#[cfg_attr(debug_assertions, ignore = "needs a release build: cargo test --release --test mnist_release")]
fn default_recipe_reaches_97_5_percent() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.json");
    let binary = common::build_example("mnist");
    let args = [
        "--seed",
        "0",
        "--no-pictures",
        "--metrics",
        metrics.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ];
    let out = common::run_binary(&binary, &args);
    assert!(out.status.success());
    let m = common::metrics(&metrics);
    let accuracy = m["test_accuracy"].as_f64().unwrap();
    eprintln!("default recipe test accuracy: {:.2}%", 100.0 * accuracy);
    assert_eq!((m["train_samples"].as_u64(), m["test_samples"].as_u64()), (Some(60000), Some(10000)));
    assert!(accuracy >= 0.975, "test accuracy {accuracy}");
}
