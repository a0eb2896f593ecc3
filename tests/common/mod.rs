//! Running the examples as a user runs them, from the CLI tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds example `name` (same profile as the running test) and returns its path.
pub fn build_example(name: &str) -> PathBuf {
    let mut build = Command::new(env!("CARGO"));
    build.current_dir(manifest()).args(["build", "--quiet", "--example", name]);
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
