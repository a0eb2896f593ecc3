//! The `mnist` example, run as a user runs it, on small slices of the real data.
#![cfg(feature = "data")]

use feedforward::data::{self, Split, csv};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

mod common;
use common::{manifest, metrics};

/// Builds the example once (same profile as this test) and returns its path.
fn example() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::build_example("mnist"))
}

fn run(args: &[&str]) -> Output {
    common::run_binary(example(), args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn small_slice_learns_then_reloads_and_predicts_identically() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (m1, m2, sub1, sub2, w, pics) = (
        d.join("m1.json"),
        d.join("m2.json"),
        d.join("s1.csv"),
        d.join("s2.csv"),
        d.join("w.safetensors"),
        d.join("pics"),
    );
    let out = run(&[
        "--train-limit",
        "2000",
        "--test-limit",
        "1000",
        "--epochs",
        "5",
        "--seed",
        "3",
        "--metrics",
        s(&m1),
        "--submission",
        s(&sub1),
        "--save",
        s(&w),
        "--out",
        s(&pics),
        "--show",
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "train accuracy:",
        "test accuracy:",
        "test calibration:",
        "confusion matrix",
        "recall",
        "samples/s",
        "predicted",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
    let m = metrics(&m1);
    let test_accuracy = m["test_accuracy"].as_f64().unwrap();
    assert!(test_accuracy >= 0.85, "learning happened: {test_accuracy}");
    assert!(m["train_accuracy"].as_f64().unwrap() >= 0.9);
    assert!(m["final_loss"].as_f64().unwrap() < 0.5);
    assert_eq!(m["steps"], 5 * 16);
    // The test ECE, in [0, 1]; no temperature without a validation set.
    assert!((0.0..=1.0).contains(&m["test_ece"].as_f64().unwrap()), "{m}");
    assert!(m["temperature"].is_null() && m["test_ece_at_temperature"].is_null(), "{m}");
    for key in ["train_seconds", "total_seconds", "samples_per_second"] {
        assert!(m[key].as_f64().unwrap() > 0.0, "{key}");
    }
    for name in ["samples.png", "misclassified.png", "loss.png", "accuracy.png", "reliability.png"] {
        let bytes = std::fs::read(pics.join(name)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{name}");
    }
    let submission = std::fs::read_to_string(&sub1).unwrap();
    let lines: Vec<&str> = submission.lines().collect();
    assert_eq!(lines.len(), 1001);
    assert_eq!(lines[0], "ImageId,Label");
    assert!(lines[1].starts_with("1,") && lines[1000].starts_with("1000,"));

    // A loaded model predicts without training, and identically.
    let out = run(&[
        "--load",
        s(&w),
        "--test-limit",
        "1000",
        "--metrics",
        s(&m2),
        "--submission",
        s(&sub2),
        "--no-pictures",
    ]);
    assert!(out.status.success());
    assert_eq!(metrics(&m2)["steps"], 0);
    assert_eq!(metrics(&m2)["test_accuracy"], m["test_accuracy"]);
    assert_eq!(std::fs::read_to_string(&sub2).unwrap(), submission);
}

#[test]
fn kaggle_csv_files_in_and_submission_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = data::load_mnist(manifest().join("data/mnist"), Split::Train).unwrap().take(600);
    let test = data::load_mnist(manifest().join("data/mnist"), Split::Test).unwrap().take(50);
    let unlabelled = data::Dataset::new(test.images().clone(), None).unwrap();
    csv::write_kaggle_csv(d.join("train.csv"), &train).unwrap();
    csv::write_kaggle_csv(d.join("test.csv"), &unlabelled).unwrap();
    let (m, sub) = (d.join("m.json"), d.join("submission.csv"));
    let out = run(&[
        "--train-csv",
        s(&d.join("train.csv")),
        "--test-csv",
        s(&d.join("test.csv")),
        "--epochs",
        "2",
        "--metrics",
        s(&m),
        "--submission",
        s(&sub),
        "--no-pictures",
    ]);
    assert!(out.status.success());
    assert!(metrics(&m)["test_accuracy"].is_null());
    let rows: Vec<String> = std::fs::read_to_string(&sub).unwrap().lines().map(String::from).collect();
    assert_eq!(rows.len(), 51);
    assert_eq!(rows[50].split(',').next().unwrap(), "50");
}

#[test]
fn seed_recipe_prints_the_original_sanity_checks() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.json");
    let out = run(&[
        "--recipe",
        "seed",
        "--iterations",
        "4",
        "--report-every",
        "2",
        "--train-limit",
        "1000",
        "--test-limit",
        "100",
        "--no-pictures",
        "--metrics",
        s(&m),
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("eta/sqrt(g+eps)").count(), 2 * 3, "{stdout}");
    assert!(stdout.contains("W0") && stdout.contains("W1") && stdout.contains("|grad|"));
    assert!(stdout.contains("per-tensor RMSprop"), "{stdout}");
    assert_eq!(metrics(&m)["steps"], 4);
    assert_eq!(metrics(&m)["train_samples"], 1000);
}

#[test]
fn bad_input_is_a_clear_error_and_exit_code() {
    let out = run(&["--data-dir", "/nonexistent/mnist"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The library names the file; the example adds the flag that fixes it.
    assert!(
        stderr.contains("/nonexistent/mnist/train-images-idx3-ubyte.gz")
            && stderr.contains("hint: pass the folder of the MNIST files with --data-dir"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));

    let out = run(&["--batch-size", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("batch size"));
    let out = run(&["--learning-rate=-1", "--train-limit", "10", "--test-limit", "10"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("learning rate"));
    let out = run(&["--load", "/nonexistent/w.safetensors"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--save"));
}

#[test]
fn batch_size_schedule_and_default_submission() {
    let dir = tempfile::tempdir().unwrap();
    let (m, out) = (dir.path().join("m.json"), dir.path().join("out"));
    let common =
        ["--train-limit", "500", "--test-limit", "20", "--no-pictures", "--out", s(&out), "--metrics", s(&m)];
    let with = |extra: &[&str]| {
        let mut args = common.to_vec();
        args.extend_from_slice(extra);
        assert!(run(&args).status.success(), "{extra:?}");
        metrics(&m)
    };
    assert_eq!(with(&["--batch-size", "50", "--epochs", "1", "--learning-rate", "0.01"])["steps"], 10);
    let stdout = String::from_utf8_lossy(
        &run(&[
            "--learning-rate",
            "0.0123",
            "--train-limit",
            "100",
            "--test-limit",
            "10",
            "--epochs",
            "1",
            "--no-pictures",
        ])
        .stdout,
    )
    .to_string();
    assert!(stdout.contains("learning rate 0.0123"), "{stdout}");
    assert_eq!(with(&["--batch-size", "full", "--epochs", "3", "--schedule", "constant"])["steps"], 3);
    assert_eq!(with(&["--batch-size", "64", "--iterations", "5", "--schedule", "cosine"])["steps"], 5);
    // Without --submission the submission lands in --out.
    let rows = std::fs::read_to_string(out.join("submission.csv")).unwrap();
    assert_eq!(rows.lines().count(), 21);
    assert!(!run(&["--schedule", "sometimes"]).status.success());
}

#[test]
fn help_documents_every_flag() {
    let out = run(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--data-dir",
        "--recipe",
        "--epochs",
        "--iterations",
        "--batch-size",
        "--learning-rate",
        "--seed",
        "--train-limit",
        "--test-limit",
        "--schedule",
        "--report-every",
        "--no-pictures",
        "--train-csv",
        "--test-csv",
        "--submission",
        "--save",
        "--load",
        "--metrics",
        "--out",
        "--show",
        "--hidden",
        "--activation",
        "--dropout",
        "--input-dropout",
        "--normalization",
        "--blocks",
        "--init",
        "--label-smoothing",
        "--validation",
        "--optimizer",
        "--momentum",
        "--weight-decay",
        "--early-stopping",
        "--checkpoint",
        "--resume",
        "--find-lr",
        "--ema",
        "--swa",
        "--recompute-batch-norm",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Issue 13: a bad output never costs the others, labels out of range are errors naming the
/// place, and a run's numbers are the user's.
#[test]
fn outputs_survive_each_others_failures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An --out under a regular file: the submission and the pictures cannot be written.
    std::fs::write(d.join("a_file"), "").unwrap();
    let (w, m) = (d.join("w.safetensors"), d.join("m.json"));
    let out = run(&[
        "--train-limit",
        "300",
        "--test-limit",
        "1",
        "--epochs",
        "1",
        "--out",
        s(&d.join("a_file/pictures")),
        "--save",
        s(&w),
        "--metrics",
        s(&m),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    // Every failure is reported, each naming the file in the way…
    assert_eq!(stderr.matches("a_file is a file, not a folder").count(), 2, "{stderr}");
    assert!(stderr.contains("submission.csv") && stderr.contains("samples.png"), "{stderr}");
    // …and the weights and the metrics were written all the same.
    assert!(feedforward::Network::<f32>::load(&w).is_ok());
    assert!(metrics(&m)["test_accuracy"].is_number());

    let out = run(&[
        "--train-limit",
        "300",
        "--test-limit",
        "1",
        "--epochs",
        "1",
        "--no-pictures",
        "--save",
        "/dev/null/w.safetensors",
        "--out",
        s(d),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("/dev/null/w.safetensors") && stderr.contains("/dev/null is a file, not a folder"),
        "{stderr}"
    );
    assert!(!stderr.contains("File exists"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(1 row)"), "{stdout}");
}

#[test]
fn test_labels_out_of_range_are_an_error_not_a_smaller_denominator() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let test = data::load_mnist(manifest().join("data/mnist"), Split::Test).unwrap().take(100);
    csv::write_kaggle_csv(d.join("test.csv"), &test).unwrap();
    // Labels of 50 rows set to 200, as a user's broken file might have them.
    let text = std::fs::read_to_string(d.join("test.csv")).unwrap();
    let broken: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i >= 51 { format!("200{}", &l[l.find(',').unwrap()..]) } else { l.to_string() })
        .collect();
    std::fs::write(d.join("test.csv"), broken.join("\n")).unwrap();
    let out = run(&[
        "--train-limit",
        "300",
        "--epochs",
        "1",
        "--no-pictures",
        "--test-csv",
        s(&d.join("test.csv")),
        "--out",
        s(d),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("test.csv:52") && stderr.contains("\"200\""), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("test accuracy"));
}

#[test]
fn numbers_out_of_range_are_errors_with_the_users_value() {
    let out = run(&["--learning-rate", "1e-50", "--train-limit", "10", "--test-limit", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("learning rate = 1e-50"), "{stderr}");
    // 2^63 epochs of 10 steps (10 images, batch 1): more steps than a usize holds.
    let out = run(&[
        "--epochs",
        "9223372036854775808",
        "--batch-size",
        "1",
        "--train-limit",
        "10",
        "--test-limit",
        "10",
        "--no-pictures",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("epochs"), "{}", stderr_of(&out));
    let out = run(&["--train-csv", "/dev/zero", "--test-limit", "10"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("/dev/zero:1: line longer than the limit"), "{}", stderr_of(&out));
}

/// Issue 12: the network's shape and regularization from the command line, and a validation
/// split held out of the training images.
#[test]
fn network_flags_and_a_validation_split() {
    let dir = tempfile::tempdir().unwrap();
    let (m, w) = (dir.path().join("m.json"), dir.path().join("w.safetensors"));
    let out = run(&[
        "--train-limit",
        "500",
        "--test-limit",
        "50",
        "--epochs",
        "2",
        "--no-pictures",
        "--hidden",
        "32,16",
        "--activation",
        "leaky_relu:0.05",
        "--dropout",
        "0.2",
        "--input-dropout",
        "0.1",
        "--init",
        "xavier-uniform",
        "--label-smoothing",
        "0.1",
        "--validation",
        "100",
        "--metrics",
        s(&m),
        "--save",
        s(&w),
        "--out",
        s(dir.path()),
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("784-32-16-10") && stdout.contains("leaky_relu") && stdout.contains("XavierUniform"),
        "{stdout}"
    );
    assert!(stdout.contains("400 training images (and 100 held out for validation)"), "{stdout}");
    assert!(stdout.contains("validation accuracy"), "{stdout}");
    let m = metrics(&m);
    assert!(m["validation_accuracy"].is_number() && m["validation_loss"].is_number(), "{m}");
    assert_eq!(m["train_samples"], 400);
    // The temperature fitted on the validation images, and the test ECE under it; the saved
    // weights stay as trained (no Temperature module below).
    assert!(stdout.contains("logits divided by the temperature fitted on the validation images"), "{stdout}");
    assert!(m["temperature"].as_f64().unwrap() > 0.0, "{m}");
    assert!((0.0..=1.0).contains(&m["test_ece_at_temperature"].as_f64().unwrap()), "{m}");
    // The saved file rebuilds the same architecture, dropout modules included.
    let net = feedforward::Network::<f32>::load(&w).unwrap();
    let kinds: Vec<_> = net.modules().iter().map(|m| m.kind()).collect();
    assert_eq!(kinds, ["Dropout", "Layer", "Dropout", "Layer", "Dropout", "Layer"]);
    // A negative probability was once taken as "no dropout".
    let bad_flags: [&[&str]; 6] = [
        &["--dropout", "1.5"],
        &["--dropout=-0.5"],
        &["--input-dropout=-0.1"],
        &["--validation", "500"],
        &["--activation", "swish"],
        &["--hidden", "0"],
    ];
    for bad in bad_flags {
        let mut args = vec!["--train-limit", "500", "--test-limit", "10", "--epochs", "1", "--no-pictures"];
        args.extend(bad);
        let out = run(&args);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(!stderr_of(&out).contains("panicked"), "{bad:?}: {}", stderr_of(&out));
    }
}

#[test]
fn optimizer_flags_each_train() {
    for flags in [
        &["--optimizer", "sgd", "--momentum", "0.9", "--learning-rate", "0.1"][..],
        &["--optimizer", "adam", "--weight-decay", "1e-4"],
        &["--optimizer", "adamw"],
        &["--optimizer", "rmsprop", "--momentum", "0.5", "--learning-rate", "5e-4"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.json");
        let mut args = vec!["--train-limit", "1000", "--test-limit", "200", "--epochs", "2", "--no-pictures"];
        args.extend(flags);
        args.extend(["--metrics", s(&m), "--out", s(dir.path())]);
        let out = run(&args);
        assert!(out.status.success(), "{flags:?}: {}", stderr_of(&out));
        let accuracy = metrics(&m)["test_accuracy"].as_f64().unwrap();
        assert!(accuracy > 0.5, "{flags:?}: test accuracy {accuracy} (chance: 0.1)");
    }
    // Momentum has no meaning for the seed recipe's per-tensor rule; early stopping needs a
    // validation set; an unknown optimizer is refused.
    for bad in [
        &["--recipe", "seed", "--momentum", "0.9"][..],
        &["--early-stopping", "2"],
        &["--optimizer", "lbfgs"],
        &["--optimizer", "sgd", "--momentum", "1.5"],
    ] {
        let mut args =
            vec!["--train-limit", "500", "--test-limit", "10", "--iterations", "1", "--no-pictures"];
        args.extend(bad);
        let out = run(&args);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(!stderr_of(&out).contains("panicked"), "{bad:?}: {}", stderr_of(&out));
    }
}

#[test]
fn early_stopping_checkpoint_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ckpt, straight, resumed) = (d.join("run.ckpt"), d.join("straight.json"), d.join("resumed.json"));
    let common = [
        "--train-limit",
        "1500",
        "--test-limit",
        "300",
        "--epochs",
        "4",
        "--no-pictures",
        "--optimizer",
        "adam",
        "--validation",
        "300",
        "--early-stopping",
        "10",
    ];
    let with = |extra: &[&str]| {
        let mut args = common.to_vec();
        args.extend(extra);
        args.extend(["--out", s(d)]);
        run(&args)
    };
    let out = with(&["--metrics", s(&straight), "--checkpoint", s(&ckpt)]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("validation loss").count(), 4, "one validation line per epoch: {stdout}");
    assert!(stdout.contains("early stopping: ran every epoch; keeping the weights of epoch"), "{stdout}");
    // A checkpoint is a model file too.
    assert!(feedforward::Network::<f32>::load(&ckpt).is_ok());
    // Resumed after its last epoch: nothing left to train, and the same model comes out
    // (the run's weights and its best epoch's, from the checkpoint).
    let out = with(&["--resume", s(&ckpt), "--metrics", s(&resumed)]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (a, b) = (metrics(&straight), metrics(&resumed));
    assert_eq!(a["test_accuracy"], b["test_accuracy"]);
    assert_eq!(a["final_loss"], b["final_loss"]);
    assert_eq!(b["steps"], 0, "{b}");
    // Resuming with other flags than the run that wrote it is refused, naming the file.
    let out = with(&["--resume", s(&ckpt), "--seed", "1"]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("checkpoint") && stderr_of(&out).contains("run.ckpt"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn normalization_flag_builds_trains_and_saves_the_normalized_network() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    for (flag, kind) in [("batch-norm", "BatchNorm"), ("layer-norm", "LayerNorm")] {
        let out = run(&[
            "--train-limit",
            "1000",
            "--test-limit",
            "200",
            "--epochs",
            "2",
            "--hidden",
            "32",
            "--activation",
            "tanh",
            "--normalization",
            flag,
            "--no-pictures",
            "--save",
            s(&w),
            "--out",
            s(dir.path()),
        ]);
        assert!(out.status.success(), "{flag}: {}", stderr_of(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("normalization {kind}")), "{stdout}");
        let net = feedforward::Network::<f32>::load(&w).unwrap();
        let kinds: Vec<_> = net.modules().iter().map(|m| m.kind()).collect();
        assert_eq!(kinds, ["Layer", kind, "Tanh", "Layer"]);
    }
    // 257 images in batches of 128 leave a last batch of one, which BatchNorm cannot train on:
    // an error before the first step, not a crash in the third.
    let out = run(&[
        "--train-limit",
        "257",
        "--test-limit",
        "10",
        "--epochs",
        "1",
        "--normalization",
        "batch-norm",
        "--no-pictures",
        "--out",
        s(dir.path()),
    ]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("at least 2 samples") && err.contains("got 1 sample"), "{err}");
}

/// `--blocks`: a ResNet of the `--hidden` width instead of the MLP, BatchNorm unless
/// `--normalization` says otherwise, input dropout in front and hidden dropout in the blocks;
/// saved and loaded whole. Not with the seed recipe, nor with two hidden sizes.
#[test]
fn blocks_flag_builds_trains_and_saves_a_resnet() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    let base =
        ["--train-limit", "1000", "--test-limit", "200", "--epochs", "2", "--hidden", "32", "--no-pictures"];
    let files = ["--save", s(&w), "--out", s(dir.path())];
    let cases: [(&[&str], &[&str]); 2] = [
        (&["--blocks", "2"], &["Layer", "Residual", "Residual", "BatchNorm", "Relu", "Layer"]),
        (
            &["--blocks", "1", "--normalization", "layer-norm", "--input-dropout", "0.1", "--dropout", "0.2"],
            &["Dropout", "Layer", "Residual", "LayerNorm", "Relu", "Layer"],
        ),
    ];
    for (flags, kinds) in cases {
        let out = run(&[&base[..], flags, &files[..]].concat());
        assert!(out.status.success(), "{flags:?}: {}", stderr_of(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("784-32-[{} blocks of 64]-10", flags[1])), "{stdout}");
        let net = feedforward::Network::<f32>::load(&w).unwrap();
        assert_eq!(net.modules().iter().map(|m| m.kind()).collect::<Vec<_>>(), kinds, "{flags:?}");
        let test_accuracy = stdout.lines().find(|l| l.contains("test accuracy")).unwrap_or_default();
        assert!(!test_accuracy.is_empty(), "{stdout}");
    }
    let block = feedforward::Network::<f32>::load(&w).unwrap();
    let body = block.modules()[2].downcast_ref::<feedforward::Residual<f32>>().unwrap().body();
    let kinds: Vec<_> = body.modules().iter().map(|m| m.kind()).collect();
    assert_eq!(kinds, ["LayerNorm", "Layer", "Dropout", "Layer"]);
    for (flags, message) in [
        (&["--recipe", "seed", "--blocks", "2"][..], "is not for --recipe seed"),
        (&["--hidden", "64,32", "--blocks", "1"][..], "a ResNet's hidden sizes"),
    ] {
        let out =
            run(&[&["--train-limit", "100", "--test-limit", "10", "--no-pictures"][..], flags].concat());
        assert!(!out.status.success() && stderr_of(&out).contains(message), "{flags:?}: {}", stderr_of(&out));
    }
}

/// `--find-lr`: the range test on the training images, its curve and suggestions printed and
/// drawn, no training (no submission written).
#[test]
fn find_lr_prints_the_range_test_and_trains_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let submission = dir.path().join("s.csv");
    let out = run(&[
        "--find-lr",
        "--optimizer",
        "adam",
        "--train-limit",
        "3000",
        "--test-limit",
        "10",
        "--submission",
        s(&submission),
        "--out",
        s(dir.path()),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", stderr_of(&out));
    assert!(stdout.contains("learning-rate range test: "), "{stdout}");
    // The curve as a picture, beside about 20 rows of it.
    let picture = std::fs::read(dir.path().join("lr_range.png")).unwrap();
    assert!(picture.starts_with(b"\x89PNG"), "lr_range.png is a PNG");
    let rows = stdout.lines().skip_while(|l| !l.trim_start().starts_with("rate")).skip(1);
    let rows = rows.take_while(|l| !l.starts_with("steepest")).count();
    assert!((2..=21).contains(&rows), "{rows} rows of the curve\n{stdout}");
    let line = stdout.lines().find(|l| l.starts_with("steepest fall at ")).expect("a line of suggestions");
    let rates: Vec<f64> = line
        .split(|c: char| c.is_whitespace() || c == ';' || c == ')')
        .filter_map(|word| word.parse().ok())
        .collect();
    let [steepest, lowest, tenth] = rates[..] else { panic!("three rates in {line:?}") };
    assert!(1e-7 < steepest && steepest < lowest && lowest < 10.0, "{line}");
    assert!((tenth - lowest / 10.0).abs() <= 0.01 * tenth, "{line}");
    assert!(!submission.exists(), "--find-lr trains and writes nothing");
    let conflict = run(&["--find-lr", "--resume", s(&dir.path().join("c.safetensors"))]);
    assert!(!conflict.status.success());
}

/// `--recompute-batch-norm`: the saved model's BatchNorm statistics are those of its final
/// weights over the training images (recomputing them again changes nothing), not the
/// averaged ones a run without the flag saves.
#[test]
fn recompute_batch_norm_leaves_the_statistics_of_the_final_weights() {
    let dir = tempfile::tempdir().unwrap();
    let train = data::load_mnist(manifest().join("data/mnist"), Split::Train).unwrap().take(2000);
    let mut saved = Vec::new();
    for flag in [&[][..], &["--recompute-batch-norm"][..]] {
        let w = dir.path().join("w.safetensors");
        let base = ["--train-limit", "2000", "--test-limit", "100", "--epochs", "3", "--no-pictures"];
        let averaged = ["--normalization", "batch-norm", "--swa", "2", "--schedule", "constant"];
        let out = run(&[&base[..], &averaged, flag, &["--save", s(&w)]].concat());
        assert!(out.status.success(), "{flag:?}: {}", stderr_of(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let said =
            stdout.contains("BatchNorm running statistics recomputed over the training images: 1 module(s)");
        assert_eq!(said, !flag.is_empty(), "{stdout}");
        let net = feedforward::Network::<f32>::load(&w).unwrap();
        let mut again = net.clone();
        assert_eq!(again.recompute_batch_norm(train.images(), 128).unwrap(), 1);
        let statistics = |n: &feedforward::Network<f32>| {
            let mut values = Vec::new();
            n.modules()
                .iter()
                .for_each(|m| m.visit_buffers(&mut |b| values.extend_from_slice(b.value().as_slice())));
            values
        };
        assert_eq!(statistics(&net) == statistics(&again), !flag.is_empty(), "{flag:?}");
        saved.push(statistics(&net));
    }
    assert_ne!(saved[0], saved[1]);
}

/// `--ema` and `--swa`: the run ends with averaged weights, which the saved model holds (its
/// test accuracy is the one reported); bad settings are errors, not panics.
#[test]
fn ema_and_swa_end_with_the_averaged_weights() {
    let dir = tempfile::tempdir().unwrap();
    for flags in [&["--ema", "0.9"][..], &["--swa", "2", "--schedule", "constant"][..]] {
        let (w, m) = (dir.path().join("w.safetensors"), dir.path().join("m.json"));
        let base = ["--train-limit", "2000", "--test-limit", "500", "--epochs", "3", "--no-pictures"];
        let out = run(&[&base[..], flags, &["--save", s(&w), "--metrics", s(&m)]].concat());
        assert!(out.status.success(), "{flags:?}: {}", stderr_of(&out));
        // The saved network is the one scored: its accuracy on the same test images is the
        // reported one.
        let net = feedforward::Network::<f32>::load(&w).unwrap();
        let test = data::load_mnist(manifest().join("data/mnist"), Split::Test).unwrap().take(500);
        let accuracy = net.accuracy(test.images(), test.labels().unwrap()).unwrap();
        assert_eq!(metrics(&m)["test_accuracy"].as_f64(), Some(accuracy), "{flags:?}");
        assert!(accuracy > 0.8, "{flags:?}: {accuracy}");
    }
    for bad in
        [&["--ema", "1.5"][..], &["--swa", "9", "--epochs", "2"][..], &["--ema", "0.9", "--swa", "1"][..]]
    {
        let out = run(&[&["--train-limit", "300", "--test-limit", "1", "--no-pictures"][..], bad].concat());
        assert!(!out.status.success(), "{bad:?}");
        assert!(!stderr_of(&out).contains("panicked"), "{bad:?}: {}", stderr_of(&out));
    }
}
