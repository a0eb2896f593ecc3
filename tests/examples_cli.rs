//! The examples beyond MNIST, run as a user runs them: `regression` fits sin x to a test MSE of
//! at most 1e-3 (R² at least 0.99) and draws it; `spirals` reaches 100% training accuracy with two hidden layers.

mod common;
use common::{build_example, metrics, run_binary};

#[test]
fn regression_fits_sin_to_a_test_mse_below_1e_3_and_draws_it() {
    let dir = tempfile::tempdir().unwrap();
    let (json, out) = (dir.path().join("fit.json"), dir.path().join("pictures"));
    let bin = build_example("regression");
    let args = ["--metrics", json.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let run = run_binary(&bin, &args);
    assert!(run.status.success());
    let m = metrics(&json);
    let test_mse = m["test_mse"].as_f64().unwrap();
    assert!(test_mse <= 1e-3, "test MSE {test_mse}");
    let test_r2 = m["test_r2"].as_f64().unwrap();
    assert!(test_r2 >= 0.99, "test R² {test_r2}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("test MSE"), "{stdout}");
    let png = std::fs::read(out.join("fit.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn spirals_are_learned_to_full_training_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("spirals.json");
    let run = run_binary(&build_example("spirals"), &["--metrics", json.to_str().unwrap()]);
    assert!(run.status.success());
    assert_eq!(metrics(&json)["train_accuracy"].as_f64(), Some(1.0));
}

#[test]
fn bad_flags_are_errors_not_panics() {
    let run = run_binary(&build_example("regression"), &["--epochs", "many"]);
    assert!(!run.status.success());
    assert!(!String::from_utf8_lossy(&run.stderr).contains("panicked"));
}
