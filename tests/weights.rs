//! safetensors weights: round trips, a file written by Python, and clear errors.
#![cfg(feature = "data")]

use feedforward::data::{self, Split};
use feedforward::{Error, Network, weights};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use std::path::Path;

mod common;
use common::MnistNet;

fn manifest(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn net(recipe: MnistNet, seed: u64) -> Network<f32> {
    recipe.build(seed)
}

#[test]
fn save_load_gives_identical_predictions() {
    let test = data::load_mnist(manifest("data/mnist"), Split::Test).unwrap().take(500);
    for recipe in [MnistNet::Default, MnistNet::Seed] {
        let mut a = net(recipe, 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        weights::save(&a, &path).unwrap();
        let mut b = net(recipe, 2);
        assert_ne!(a.predict(test.images()).unwrap(), b.predict(test.images()).unwrap());
        weights::load_into(&mut b, &path).unwrap();
        assert_eq!(a.forward(test.images()).unwrap(), b.forward(test.images()).unwrap());
        let params_a: Vec<_> = a.parameters().map(|p| p.value().clone()).collect();
        let params_b: Vec<_> = b.parameters().map(|p| p.value().clone()).collect();
        assert_eq!(params_a, params_b);
    }
}

#[test]
fn names_shapes_and_orientation() {
    let n = net(MnistNet::Default, 3);
    let bytes = weights::to_bytes(&n).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(names, ["layer0.bias", "layer0.weight", "layer1.bias", "layer1.weight"]);
    let w = file.tensor("layer0.weight").unwrap();
    assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[256, 784][..]));
    assert_eq!(file.tensor("layer0.bias").unwrap().shape(), &[256]);
    // Row-major [out, in]: element (j, i) is W[(i, j)], the weight from input i to unit j.
    let first_layer = n.parameters().next().unwrap().value();
    let at = |j: usize, i: usize| {
        let k = 4 * (j * 784 + i);
        f32::from_le_bytes(w.data()[k..k + 4].try_into().unwrap())
    };
    assert_eq!(at(5, 300), first_layer[(300, 5)]);
    assert_eq!(at(255, 0), first_layer[(0, 255)]);
}

#[test]
fn a_file_written_by_python_predicts_as_numpy_did() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(manifest("tests/fixtures/python_expected.json")).unwrap(),
    )
    .unwrap();
    let mut n = net(MnistNet::Seed, 0);
    weights::load_into(&mut n, manifest("tests/fixtures/python_weights.safetensors")).unwrap();
    let test = data::load_mnist(manifest("data/mnist"), Split::Test).unwrap().take(100);
    let predictions: Vec<usize> =
        expected["predictions"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    assert_eq!(n.predict(test.images()).unwrap(), predictions);
    let logits = n.forward(test.images()).unwrap();
    for (j, row) in expected["logits"].as_array().unwrap().iter().enumerate() {
        for (k, v) in row.as_array().unwrap().iter().enumerate() {
            let v = v.as_f64().unwrap() as f32;
            // Same f32 inputs, different summation order: agreement to f32 rounding.
            assert!(
                (logits[(k, j)] - v).abs() <= 1e-4 * v.abs().max(1.0),
                "{j},{k}: {} vs {v}",
                logits[(k, j)]
            );
        }
    }
}

fn file_with(tensors: Vec<(&str, Dtype, Vec<usize>)>) -> Vec<u8> {
    let buffers: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, d, s)| vec![0u8; s.iter().product::<usize>() * if *d == Dtype::F64 { 8 } else { 4 }])
        .collect();
    let views: Vec<_> = tensors
        .iter()
        .zip(&buffers)
        .map(|((name, d, s), b)| (name.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn load_error(bytes: &[u8]) -> String {
    let mut n = net(MnistNet::Seed, 0);
    let before: Vec<_> = n.parameters().map(|p| p.value().clone()).collect();
    let err = weights::from_bytes_into(&mut n, bytes, "w.safetensors").unwrap_err();
    assert!(matches!(err, Error::Weights { .. }), "{err:?}");
    let after: Vec<_> = n.parameters().map(|p| p.value().clone()).collect();
    assert_eq!(before, after, "a failed load leaves the network unchanged");
    err.to_string()
}

#[test]
fn bad_files_are_clear_errors_naming_the_tensor() {
    let good = || {
        vec![
            ("layer0.weight", Dtype::F32, vec![256, 784]),
            ("layer0.bias", Dtype::F32, vec![256]),
            ("layer1.weight", Dtype::F32, vec![10, 256]),
        ]
    };
    let mut n = net(MnistNet::Seed, 0);
    weights::from_bytes_into(&mut n, &file_with(good()), "ok").unwrap();
    let mut f64_file = good();
    f64_file[2].1 = Dtype::F64;
    weights::from_bytes_into(&mut n, &file_with(f64_file), "f64 is converted").unwrap();

    let mut missing = good();
    missing.pop();
    assert!(load_error(&file_with(missing)).contains("tensor layer1.weight is missing"));
    let mut wrong_shape = good();
    wrong_shape[2].2 = vec![256, 10];
    let msg = load_error(&file_with(wrong_shape));
    assert!(msg.contains("layer1.weight") && msg.contains("[256, 10]") && msg.contains("[10, 256]"), "{msg}");
    let mut wrong_dtype = good();
    wrong_dtype[1].1 = Dtype::I32;
    let msg = load_error(&file_with(wrong_dtype));
    assert!(msg.contains("layer0.bias") && msg.contains("I32"), "{msg}");
    let mut extra = good();
    extra.push(("layer1.bias", Dtype::F32, vec![10]));
    assert!(load_error(&file_with(extra)).contains("layer1.bias does not belong"));
    assert!(load_error(b"definitely not safetensors").contains("not a safetensors file"));
    assert!(load_error(&[]).contains("not a safetensors file"));
}

#[test]
fn non_finite_weights_are_rejected() {
    let n = net(MnistNet::Seed, 0);
    let mut bytes = weights::to_bytes(&n).unwrap();
    // Overwrite the last f32 of the data (a layer1.weight entry or similar) with NaN.
    let len = bytes.len();
    bytes[len - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    let e = load_error(&bytes);
    assert!(e.contains(" holds NaN at entry ") && e.ends_with("; its values must be finite"), "{e}");
}

#[test]
fn missing_weights_file_is_named_without_the_examples_flags() {
    let mut n = net(MnistNet::Seed, 0);
    let err = weights::load_into(&mut n, "/nonexistent/w.safetensors").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::MissingFile { .. }) && text.contains("/nonexistent/w.safetensors"), "{err}");
    assert!(!text.contains("--"), "the library does not know the example's flags: {text}");
    let err = Network::<f32>::load("/nonexistent/w.safetensors").unwrap_err();
    assert!(matches!(err, Error::MissingFile { .. }), "{err}");
}

#[test]
fn every_nasty_weights_file_is_a_typed_error() {
    let mut files: Vec<_> =
        std::fs::read_dir(manifest("tests/corpus/weights")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 10);
    for path in files {
        let mut n = net(MnistNet::Seed, 0);
        match weights::load_into(&mut n, &path) {
            Err(e @ Error::Weights { .. }) => assert!(e.to_string().contains(path.to_str().unwrap()), "{e}"),
            other => panic!("{}: expected a weights error, got {other:?}", path.display()),
        }
        match Network::<f32>::load(&path) {
            Err(e @ Error::Weights { .. }) => assert!(e.to_string().contains(path.to_str().unwrap()), "{e}"),
            other => panic!("{}: expected a weights error from load, got {other:?}", path.display()),
        }
    }
}

/// The architecture JSON of a saved file, as Python would read it (`safe_open(...).metadata()`).
fn architecture_of(bytes: &[u8]) -> serde_json::Value {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let text = header.metadata().as_ref().unwrap().get(weights::ARCHITECTURE_KEY).unwrap().clone();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_saved_network_rebuilds_itself_with_no_shape_from_the_caller() {
    let test = data::load_mnist(manifest("data/mnist"), Split::Test).unwrap().take(200);
    let dir = tempfile::tempdir().unwrap();
    for recipe in [MnistNet::Default, MnistNet::Seed] {
        let a = net(recipe, 7);
        let path = dir.path().join(format!("{recipe:?}.safetensors"));
        a.save(&path).unwrap();
        let b = Network::<f32>::load(&path).unwrap();
        assert_eq!(b.output(test.images()).unwrap(), a.output(test.images()).unwrap(), "{recipe:?}");
        assert_eq!(b.l2(), a.l2());
        let kinds: Vec<_> = b.modules().iter().map(|m| m.kind()).collect();
        assert_eq!(kinds, ["Layer", "Layer"]);
        // The same file read as f64: the same function, in the wider type.
        let c = Network::<f64>::load(&path).unwrap();
        let probe = test.images_as::<f64>().columns(0, 3).into_owned();
        let (wide, narrow) =
            (c.output(&probe).unwrap(), a.output(&test.images().columns(0, 3).into_owned()).unwrap());
        assert!(wide.iter().zip(narrow.iter()).all(|(w, n)| (w - f64::from(*n)).abs() < 1e-4));
    }
    let arch = architecture_of(&std::fs::read(dir.path().join("Seed.safetensors")).unwrap());
    assert_eq!(arch["format_version"], 1);
    assert_eq!(arch["scalar"], "f32");
    assert_eq!(arch["input_rows"], 784);
    assert_eq!(
        arch["modules"][0],
        serde_json::json!({"kind": "Layer", "inputs": 784, "outputs": 256, "bias": true, "activation": "relu"})
    );
    assert_eq!(arch["modules"][1]["bias"], false);
}

/// Rewrites the architecture of a saved file and returns the error `Network::load` gives.
fn load_with_architecture(edit: impl Fn(&mut serde_json::Value)) -> String {
    let n = net(MnistNet::Seed, 0);
    let bytes = weights::to_bytes(&n).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut arch = architecture_of(&bytes);
    edit(&mut arch);
    let meta = [(weights::ARCHITECTURE_KEY.to_string(), arch.to_string())].into_iter().collect();
    let tensors: Vec<_> = file.tensors();
    let rewritten = safetensors::serialize(tensors, Some(meta)).unwrap();
    match Network::<f32>::from_bytes_with(&rewritten, "edited.safetensors", &|_, _, _| Ok(None)) {
        Err(e @ Error::Weights { .. }) => e.to_string(),
        other => panic!("expected a weights error, got {other:?}"),
    }
}

#[test]
fn bad_or_unknown_architectures_are_clear_errors() {
    let err = load_with_architecture(|a| a["modules"][1]["kind"] = "Conv2d".into());
    assert!(
        err.contains("edited.safetensors") && err.contains("\"Conv2d\"") && err.contains("module 1"),
        "{err}"
    );
    let err = load_with_architecture(|a| a["format_version"] = 2.into());
    assert!(err.contains("format_version 2"), "{err}");
    let err = load_with_architecture(|a| a["modules"][0]["activation"] = "swish".into());
    assert!(err.contains("swish"), "{err}");
    let err = load_with_architecture(|a| a["modules"][0]["outputs"] = 4_000_000_000u64.into());
    assert!(err.contains("does not fit"), "{err}");
    let err = load_with_architecture(|a| a["modules"][1]["inputs"] = 100.into());
    assert!(err.contains("module 1"), "{err}");
    let err = load_with_architecture(|a| *a = serde_json::json!([1, 2]));
    assert!(err.contains("format_version"), "{err}");
}

#[test]
fn a_file_without_architecture_still_loads_into_a_built_network() {
    // The Python fixture has no feedforward metadata: load names the way out, load_into works.
    let path = manifest("tests/fixtures/python_weights.safetensors");
    let err = Network::<f32>::load(&path).unwrap_err();
    assert!(err.to_string().contains("load_into"), "{err}");
    let mut n = net(MnistNet::Seed, 0);
    weights::load_into(&mut n, &path).unwrap();
}

/// Metadata of the user's own rides in the model file beside the architecture, comes back
/// without the crate's entries, and cannot take the crate's keys.
#[test]
fn metadata_of_your_own_is_saved_and_read_back() {
    let a = net(MnistNet::Default, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let classes = r#"["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]"#;
    a.save_with_metadata(&path, &[("classes", classes), ("trained on", "MNIST, 60,000 images")]).unwrap();
    let metadata = weights::metadata(&path).unwrap();
    assert_eq!(metadata.len(), 2);
    assert_eq!(
        (metadata["classes"].as_str(), metadata["trained on"].as_str()),
        (classes, "MNIST, 60,000 images")
    );
    let b = Network::<f32>::load(&path).unwrap();
    let x = nalgebra::DMatrix::from_element(784, 2, 0.25f32);
    assert_eq!(a.output(&x).unwrap(), b.output(&x).unwrap());
    // A plain model file has none of its own.
    a.save(dir.path().join("plain.safetensors")).unwrap();
    assert!(weights::metadata(dir.path().join("plain.safetensors")).unwrap().is_empty());
    // The crate's keys, and a key given twice, are refused, and nothing is written.
    let refused = dir.path().join("refused.safetensors");
    for (entries, why) in [
        (&[("format", "pt")][..], "\"format\" is the crate's own"),
        (&[("feedforward", "{}")][..], "\"feedforward\" is the crate's own"),
        (&[("feedforward.checkpoint", "{}")][..], "\"feedforward.checkpoint\" is the crate's own"),
        (&[("a", "1"), ("a", "2")][..], "\"a\" is given twice"),
    ] {
        match a.save_with_metadata(&refused, entries) {
            Err(Error::Weights { path, reason }) => {
                assert!(path == refused && reason.contains(why), "{reason}");
            }
            other => panic!("{entries:?}: {other:?}"),
        }
        assert!(!refused.exists());
    }
    let not_safetensors = dir.path().join("notes.txt");
    std::fs::write(&not_safetensors, "hello").unwrap();
    assert!(matches!(weights::metadata(&not_safetensors), Err(Error::Weights { .. })));
    assert!(matches!(weights::metadata(dir.path().join("none")), Err(Error::MissingFile { .. })));
}
