//! The IDX and Kaggle CSV readers: real MNIST, round trips, and a corpus of nasty files that
//! must each be a clear, typed error (never a panic, never a huge allocation).
#![cfg(feature = "data")]

use feedforward::Error;
use feedforward::data::idx::{self, IdxArray};
use feedforward::data::{self, Dataset, Split, csv};
use nalgebra::DMatrix;
use std::io::Write;
use std::path::{Path, PathBuf};

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn corpus(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(manifest(&format!("tests/corpus/{kind}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn real_mnist_test_split_loads() {
    let test = data::load_mnist(manifest("data/mnist"), Split::Test).unwrap();
    assert_eq!((test.features(), test.len()), (784, 10000));
    let labels = test.labels().unwrap();
    assert!(labels.iter().all(|&l| l < 10));
    // The well-known first test digit is a 7.
    assert_eq!(labels[0], 7);
    let (lo, hi) = test.images().iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert_eq!((lo, hi), (0.0, 1.0));
}

#[test]
fn idx_round_trip_raw_and_gzipped() {
    let array = IdxArray { dims: vec![2, 2, 3], data: (0..12).map(|v| v * 20).collect() };
    let raw = idx::to_bytes(&array);
    assert_eq!(idx::parse_idx(&raw[..], "raw").unwrap(), array);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(idx::parse_idx(&gz[..], "gz").unwrap(), array);
    let images = idx::images_from(array, "x").unwrap();
    assert_eq!(images.shape(), (6, 2));
    assert_eq!(images[(1, 0)], 20.0 / 255.0);
    assert_eq!(images[(0, 1)], 120.0 / 255.0);
}

#[test]
fn wrong_dimensionality_is_rejected() {
    let labels_as_images = IdxArray { dims: vec![3], data: vec![1, 2, 3] };
    assert!(matches!(idx::images_from(labels_as_images.clone(), "l"), Err(Error::Idx { .. })));
    let images_as_labels = IdxArray { dims: vec![1, 1, 3], data: vec![1, 2, 3] };
    assert!(matches!(idx::labels_from(images_as_labels, "i"), Err(Error::Idx { .. })));
    assert_eq!(idx::labels_from(labels_as_images, "l").unwrap(), vec![1, 2, 3]);
}

#[test]
fn every_nasty_idx_file_is_a_typed_error() {
    let files = corpus("idx");
    assert!(files.len() >= 12);
    for path in files {
        match idx::read_idx(&path) {
            Err(e @ Error::Idx { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(path.file_name().unwrap().to_str().unwrap()), "{msg}");
            }
            other => panic!("{}: expected an IDX error, got {other:?}", path.display()),
        }
    }
}

#[test]
fn idx_errors_say_what_is_wrong() {
    let reason =
        |name: &str| idx::read_idx(manifest(&format!("tests/corpus/idx/{name}"))).unwrap_err().to_string();
    assert!(reason("wrong_magic.idx").contains("magic number"));
    assert!(reason("truncated_data.idx").contains("truncated"));
    assert!(reason("billion_images.idx").contains("too large"));
    assert!(reason("five_million_images.idx").contains("more than the limit"));
    assert!(reason("trailing_bytes.idx").contains("trailing"));
    assert!(reason("float_type.idx").contains("element type"));
    assert!(reason("overflow_dims.idx").contains("too large"));
}

#[test]
fn missing_files_name_the_path_and_the_remedy() {
    let err = data::load_mnist("/nonexistent/mnist", Split::Train).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::MissingFile { .. }));
    assert!(
        msg.contains("/nonexistent/mnist/train-images-idx3-ubyte.gz") && msg.contains("data/mnist"),
        "{msg}"
    );
    // The library does not know the example's flags (the example adds its own hint).
    assert!(!msg.contains("--"), "{msg}");
    let err = csv::read_kaggle_csv("/nonexistent/train.csv").unwrap_err();
    assert!(matches!(err, Error::MissingFile { .. }) && err.to_string().contains("Kaggle"));
}

#[test]
fn kaggle_csv_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let images = DMatrix::from_fn(784, 5, |i, j| ((i * 7 + j * 13) % 256) as f32 / 255.0);
    let labelled = Dataset::new(images.clone(), Some(vec![3, 1, 4, 1, 5])).unwrap();
    let path = dir.path().join("train.csv");
    csv::write_kaggle_csv(&path, &labelled).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("label,pixel0,pixel1,"));
    assert_eq!(text.lines().count(), 6);
    assert_eq!(csv::read_kaggle_csv(&path).unwrap(), labelled);

    let unlabelled = Dataset::new(images, None).unwrap();
    let path = dir.path().join("test.csv");
    csv::write_kaggle_csv(&path, &unlabelled).unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().starts_with("pixel0,pixel1,"));
    let back = csv::read_kaggle_csv(&path).unwrap();
    assert_eq!(back, unlabelled);
    assert!(matches!(back.require_labels("test.csv"), Err(Error::NoLabels { .. })));
}

#[test]
fn every_nasty_csv_file_is_a_typed_error_with_its_line() {
    let files = corpus("csv");
    assert!(files.len() >= 10);
    for path in files {
        match csv::read_kaggle_csv(&path) {
            Err(e @ Error::Csv { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("{}:", path.display())), "{msg}");
            }
            other => panic!("{}: expected a CSV error, got {other:?}", path.display()),
        }
    }
    let err = |name: &str| csv::read_kaggle_csv(manifest(&format!("tests/corpus/csv/{name}"))).unwrap_err();
    match err("short_row.csv") {
        Error::Csv { line: 3, reason, .. } => assert!(reason.contains("4 columns, expected 5"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match err("non_numeric.csv") {
        Error::Csv { line: 3, reason, .. } => {
            assert!(reason.contains("column 3") && reason.contains("\"x\""), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(err("invalid_utf8.csv"), Error::Csv { line: 3, .. }));
    assert!(matches!(err("huge_pixel.csv"), Error::Csv { line: 2, .. }));
}

#[test]
fn submission_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/submission.csv");
    csv::write_submission(&path, &[7, 2, 1]).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "ImageId,Label\n1,7\n2,2\n3,1\n");
}

#[test]
fn dataset_take_and_labels_check() {
    let d = Dataset::new(DMatrix::from_fn(2, 4, |i, j| (i + j) as f32), Some(vec![0, 1, 0, 1])).unwrap();
    let d = d.take(3);
    assert_eq!(d.len(), 3);
    assert_eq!(d.labels().unwrap(), &[0, 1, 0]);
    assert_eq!(d.image(2), &[2.0, 3.0]);
    assert!(matches!(Dataset::new(DMatrix::zeros(2, 4), Some(vec![0])), Err(Error::ShapeMismatch { .. })));
}

#[test]
fn loading_the_first_n_images_matches_taking_them() {
    let all = data::load_mnist(manifest("data/mnist"), Split::Test).unwrap();
    let first = data::load_mnist_first(manifest("data/mnist"), Split::Test, 123).unwrap();
    assert_eq!(first, all.clone().take(123));
    assert_eq!(data::load_mnist_first(manifest("data/mnist"), Split::Test, 1 << 30).unwrap(), all);
}

fn csv_error(name: &str) -> (usize, String) {
    match csv::read_kaggle_csv(manifest(&format!("tests/corpus/csv/{name}"))) {
        Err(Error::Csv { line, reason, .. }) => (line, reason),
        other => panic!("{name}: expected a CSV error, got {other:?}"),
    }
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let ok = |name: &str| csv::read_kaggle_csv(manifest(&format!("tests/corpus/csv_ok/{name}"))).unwrap();
    let labelled = ok("bom_labelled.csv");
    assert_eq!(labelled.labels(), Some(&[7, 2][..]), "the label column stays the label column");
    assert_eq!(labelled.features(), 2);
    assert_eq!(labelled.image(1), &[51.0 / 255.0, 0.0]);
    let headerless = ok("bom_headerless.csv");
    assert_eq!((headerless.len(), headerless.labels()), (3, None), "no row lost");
    assert_eq!(headerless.image(0), &[0.0, 1.0]);
    let header = ok("unlabelled_header.csv");
    assert_eq!((header.len(), header.features(), header.labels()), (1, 2, None));
}

/// Line 1 is a header only when every cell is a column name; anything else is data, checked
/// like any row (it used to be taken for a header and dropped).
#[test]
fn a_bad_first_row_is_data_with_an_error_not_a_dropped_header() {
    let (line, reason) = csv_error("typo_first_row.csv");
    assert_eq!(line, 1);
    assert!(reason.contains("\"25S\""), "{reason}");
    let (line, reason) = csv_error("empty_cell_first_row.csv");
    assert!(line == 1 && reason.contains("\"\""), "{reason}");
    let (line, reason) = csv_error("quoted_first_row.csv");
    assert!(line == 1 && reason.contains("\"\\\"0\\\"\""), "{reason}");
    let (line, reason) = csv_error("number_spellings_first_row.csv");
    assert!(line == 1 && reason.contains("NaN"), "{reason}");
}

#[test]
fn labels_are_checked_at_load_with_file_and_line_or_record() {
    let (line, reason) = csv_error("label_not_a_digit.csv");
    assert_eq!(line, 4);
    assert!(reason.contains("\"13\"") && reason.contains("0..=9"), "{reason}");
    // IDX: record 300 of the test labels set to 12.
    let dir = tempfile::tempdir().unwrap();
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(manifest(&format!("data/mnist/{name}")), dir.path().join(name)).unwrap();
    }
    let mut labels = idx::read_idx(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    labels.data[300] = 12;
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx::to_bytes(&labels)).unwrap();
    match data::load_mnist(dir.path(), Split::Test) {
        Err(e @ Error::Idx { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("t10k-labels-idx1-ubyte") && msg.contains("record 300") && msg.contains("12"),
                "{msg}"
            )
        }
        other => panic!("expected an IDX error, got {other:?}"),
    }
    // Past the limit, the bad record is not loaded, and not an error.
    assert_eq!(data::load_mnist_first(dir.path(), Split::Test, 300).unwrap().len(), 300);
}

#[test]
fn unbounded_inputs_stop_at_a_named_limit() {
    // /dev/zero: one endless line of NUL bytes.
    match csv::read_kaggle_csv("/dev/zero") {
        Err(Error::Csv { line: 1, reason, .. }) => assert!(reason.contains("limit"), "{reason}"),
        other => panic!("expected a CSV line-limit error, got {other:?}"),
    }
    // (The file limit, for endless short lines, is tested scaled down in `data::csv`.)
    let weights = feedforward::Network::<f32>::load("/dev/zero").unwrap_err();
    assert!(weights.to_string().contains("limit"), "{weights}");
}

#[test]
fn writing_through_a_file_names_the_file() {
    let err = csv::write_submission("/dev/null/sub/submission.csv", &[1]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/dev/null is a file, not a folder"), "{msg}");
    assert!(!msg.contains("File exists"), "{msg}");
}
