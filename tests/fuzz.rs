//! Property-based fuzzing of everything that reads untrusted bytes: the IDX reader, the Kaggle
//! CSV reader, CSV tables with their one-hot codes, the weights loader, and self-describing
//! model files (the architecture rebuilt from the header). cargo-fuzz needs a nightly toolchain, which this project's
//! machines cannot install, so proptest feeds arbitrary bytes and mutations of valid files. Each
//! input must give `Ok` or a typed error: never a panic, never an allocation the input cannot
//! pay for.
#![cfg(feature = "data")]

use feedforward::data::csv::parse_kaggle_csv;
use feedforward::data::idx::{self, IdxArray};
use feedforward::{Error, Network, weights};
use proptest::prelude::*;
use std::io::Write;

mod common;
use common::MnistNet;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn valid_idx() -> Vec<u8> {
    idx::to_bytes(&IdxArray { dims: vec![3, 4, 4], data: (0..48).collect() })
}

/// Applies byte edits `(position, value)` and a truncation to `bytes`.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], keep: usize) -> Vec<u8> {
    for &(pos, value) in edits {
        if !bytes.is_empty() {
            let i = pos % bytes.len();
            bytes[i] = value;
        }
    }
    bytes.truncate(keep.min(bytes.len()));
    bytes
}

fn check_idx(bytes: &[u8]) {
    match idx::parse_idx(bytes, "fuzz") {
        Ok(array) => {
            let len: usize = array.dims.iter().product();
            assert_eq!(array.data.len(), len);
            if !bytes.starts_with(&[0x1f, 0x8b]) {
                assert!(len <= bytes.len(), "decoded more data than a raw file holds");
            }
        }
        Err(Error::Idx { .. }) => {}
        Err(other) => panic!("untyped IDX failure: {other:?}"),
    }
}

fn seed_net() -> Network<f32> {
    MnistNet::Seed.build(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn idx_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check_idx(&bytes);
    }

    #[test]
    fn idx_mutated_headers(edits in prop::collection::vec((0usize..24, any::<u8>()), 0..6), keep in 0usize..80) {
        check_idx(&mutate(valid_idx(), &edits, keep));
    }

    #[test]
    fn idx_mutated_gzip(edits in prop::collection::vec((0usize..200, any::<u8>()), 0..4), keep in 0usize..200) {
        let bytes = mutate(gzip(&valid_idx()), &edits, keep);
        match idx::parse_idx(&bytes[..], "fuzz") {
            Ok(_) | Err(Error::Idx { .. }) => {}
            Err(other) => panic!("untyped failure: {other:?}"),
        }
    }

    #[test]
    fn csv_arbitrary_text(text in "[0-9a-z,.\\- \\r\\n]{0,300}") {
        match parse_kaggle_csv(text.as_bytes(), "fuzz.csv") {
            Ok(data) => prop_assert!(data.images().iter().all(|p| (0.0..=1.0).contains(p))),
            Err(Error::Csv { .. } | Error::ShapeMismatch { .. }) => {}
            Err(other) => panic!("untyped CSV failure: {other:?}"),
        }
    }

    #[test]
    fn csv_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        match parse_kaggle_csv(&bytes[..], "fuzz.csv") {
            Ok(_) | Err(Error::Csv { .. } | Error::ShapeMismatch { .. }) => {}
            Err(other) => panic!("untyped CSV failure: {other:?}"),
        }
    }

    #[test]
    fn weights_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut net = seed_net();
        match weights::from_bytes_into(&mut net, &bytes, "fuzz") {
            Err(Error::Weights { .. }) => {}
            other => panic!("random bytes must be rejected as weights: {other:?}"),
        }
    }

    #[test]
    fn weights_mutated_header(edits in prop::collection::vec((0usize..400, any::<u8>()), 1..6), keep in 0usize..1_000_000) {
        let bytes = weights::to_bytes(&seed_net()).unwrap();
        // Edit the 8-byte length and the JSON header, where the structure lives.
        let bytes = mutate(bytes, &edits, keep);
        let mut net = seed_net();
        match weights::from_bytes_into(&mut net, &bytes, "fuzz") {
            Ok(()) | Err(Error::Weights { .. }) => {}
            Err(other) => panic!("untyped weights failure: {other:?}"),
        }
    }
}

#[test]
fn a_header_claiming_a_huge_tensor_in_a_tiny_file_is_rejected() {
    let header = br#"{"layer0.weight":{"dtype":"F32","shape":[256,784],"data_offsets":[0,802816]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 16]);
    let mut net = seed_net();
    assert!(matches!(weights::from_bytes_into(&mut net, &bytes, "tiny"), Err(Error::Weights { .. })));
}

/// Networks whose files hold every kind of module this crate rebuilds from a file on its own:
/// layers with each activation, `BatchNorm`, `LayerNorm`, `Dropout`, `Standardize`,
/// `Embedding` (with an unknown category), `Residual` (its body nested in the header),
/// `Sorted`, `MeanAndVariance`, `Temperature`, `LabelTemperatures`.
const RICH_NETS: usize = 5;

fn rich_nets() -> Vec<Network<f32>> {
    use feedforward::{
        Activation, Embedding, EmbeddingRow, LabelTemperatures, MeanAndVariance, MlpConfig, Normalization,
        Residual, Sorted, Standardize, Temperature, UnknownCategory,
    };
    use rand::{SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(7);
    let config = |hidden_activation, normalization| MlpConfig {
        hidden_activation,
        normalization,
        dropout: 0.2,
        input_dropout: 0.1,
        ..MlpConfig::default()
    };
    let x = nalgebra::DMatrix::from_fn(3, 4, |i, j| (i * 4 + j) as f32);
    let standardized = Network::mlp(&[3, 5, 2], config(Activation::Gelu, Normalization::None), &mut rng)
        .unwrap()
        .insert(0, Standardize::fit(&x).unwrap())
        .unwrap()
        .push(Temperature::new(1.7).unwrap())
        .unwrap()
        .push(LabelTemperatures::new(vec![0.6, 2.5]).unwrap())
        .unwrap();
    let rows =
        [EmbeddingRow { row: 1, categories: 4, dims: 2 }, EmbeddingRow { row: 2, categories: 3, dims: 3 }];
    let embedded = Network::new(3)
        .push(Embedding::new(3, &rows, &mut rng).unwrap().with_unknown(UnknownCategory::ZeroVector))
        .unwrap()
        .push(feedforward::Layer::new(6, 2, feedforward::Init::He, &mut rng))
        .unwrap();
    let ends = Network::new(3)
        .push(Residual::mlp(3, 5, Activation::Relu, &mut rng).unwrap())
        .unwrap()
        .push(feedforward::Layer::new(3, 4, feedforward::Init::He, &mut rng))
        .unwrap()
        .push(Sorted::new(2).unwrap())
        .unwrap()
        .push(MeanAndVariance::new(1e-3).unwrap())
        .unwrap();
    let nets = vec![
        Network::mlp(&[3, 6, 4, 2], config(Activation::Tanh, Normalization::BatchNorm), &mut rng).unwrap(),
        Network::mlp(&[3, 6, 2], config(Activation::Silu, Normalization::LayerNorm), &mut rng).unwrap(),
        standardized,
        embedded,
        ends,
    ];
    assert_eq!(nets.len(), RICH_NETS);
    nets
}

/// Loads `bytes` as a self-describing model file: it must give a network or
/// `Error::Weights`, never a panic or an allocation the file cannot pay for.
fn check_model_file(bytes: &[u8]) {
    match Network::<f32>::from_bytes_with(bytes, "fuzz.safetensors", &|_, _, _| Ok(None)) {
        Ok(_) | Err(Error::Weights { .. }) => {}
        Err(other) => panic!("untyped model-file failure: {other:?}"),
    }
}

/// The length of a safetensors file's header, with its 8-byte length prefix.
fn header_end(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize + 8
}

fn check_table(text: &str) {
    use feedforward::data::table::{Table, TableOptions};
    // Every call may fail, with a typed error; none may panic. Read plain, and with R's and
    // others' markers of missing values.
    let markers = TableOptions { missing: vec!["NA".into(), "?".into()], ..TableOptions::default() };
    let tables =
        [Table::parse(text.as_bytes(), "fuzz.csv"), Table::parse_with(text.as_bytes(), "fuzz.csv", &markers)];
    for table in tables.into_iter().flatten() {
        check_table_uses(&table);
    }
}

fn check_table_uses(table: &feedforward::data::table::Table) {
    use feedforward::data::table::{Features, FillCategories, FillNumbers, Missing, OneHot};
    use feedforward::train::SplitConfig;
    let names: Vec<&str> = table.column_names().iter().map(String::as_str).collect();
    for &name in &names {
        let _ = table.matrix::<f32>(&[name]);
        let _ = table.labels(name);
        let _ = table.is_numeric(name);
        if let Ok(code) = OneHot::fit(table, name) {
            let encoded = code.encode::<f32>(table).expect("a code fitted on a table encodes it");
            assert_eq!(encoded.shape(), (code.classes().len(), table.rows()));
        }
    }
    let _ = table.matrix::<f64>(&names);
    if let Some((&first, rest)) = names.split_first()
        && let Ok(features) = Features::fit(table, rest, &[first])
    {
        let _ = features.matrix::<f32>(table);
    }
    // With every empty cell filled, a plan fitted on the table encodes all of it, finite.
    let (numeric, categorical): (Vec<&str>, Vec<&str>) =
        names.iter().partition(|&&n| table.is_numeric(n).unwrap());
    let missing =
        Missing { numbers: FillNumbers::Median, categories: FillCategories::MostFrequent, indicators: true };
    if let Ok(features) = Features::fit_with(table, &numeric, &categorical, missing) {
        let x = features.matrix::<f64>(table).expect("a plan that fills every gap encodes its own table");
        assert_eq!(x.shape(), (features.rows(), table.rows()));
        assert!(x.iter().all(|v| v.is_finite()));
    }
    if table.rows() >= 2 {
        let parts = table.split(SplitConfig { held_out: 1, seed: 0 }).unwrap();
        assert_eq!((parts.kept.rows(), parts.held_out.rows()), (table.rows() - 1, 1));
        // By the classes of any column that reads as labels: the counts add up.
        let held_out = table.rows() / 2;
        for &name in &names {
            if table.labels(name).is_ok() && held_out >= 1 {
                let parts = table.stratified_split(SplitConfig { held_out, seed: 1 }, name).unwrap();
                assert_eq!((parts.kept.rows(), parts.held_out.rows()), (table.rows() - held_out, held_out));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn model_file_mutated_header(
        which in 0usize..RICH_NETS,
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        keep in 0usize..1_000_000,
    ) {
        let bytes = weights::to_bytes(&rich_nets()[which]).unwrap();
        let end = header_end(&bytes);
        let edits: Vec<_> = edits.iter().map(|&(at, value)| (at % end, value)).collect();
        check_model_file(&mutate(bytes, &edits, keep));
    }

    /// Digits replaced by digits keep the header's JSON valid, so the edits reach what it
    /// says: shapes, offsets, feature counts, probabilities, `eps`, `momentum`.
    #[test]
    fn model_file_mutated_numbers(
        which in 0usize..RICH_NETS,
        edits in prop::collection::vec((any::<usize>(), b'0'..=b'9'), 1..4),
    ) {
        let bytes = weights::to_bytes(&rich_nets()[which]).unwrap();
        let digits: Vec<usize> = (8..header_end(&bytes)).filter(|&i| bytes[i].is_ascii_digit()).collect();
        let edits: Vec<_> = edits.iter().map(|&(at, value)| (digits[at % digits.len()], value)).collect();
        check_model_file(&mutate(bytes.clone(), &edits, bytes.len()));
    }

    #[test]
    fn table_arbitrary_text(text in "[0-9a-c,.\\-\"e \\r\\n]{0,200}") {
        check_table(&text);
    }

    #[test]
    fn table_mutated(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4), keep in 0usize..200) {
        let text = "make,fuel,price,seats\nvw,petrol,12000.5,5\nbmw,diesel,3.1e4,4\nvw,electric,-2,5\n";
        let bytes = mutate(text.as_bytes().to_vec(), &edits, keep);
        check_table(&String::from_utf8_lossy(&bytes));
    }
}
