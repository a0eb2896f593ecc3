//! `data::table`: CSV tables read as a network takes them, quoted cells and other dialects, and
//! every kind of bad file an error naming the file, the line and the column.
#![cfg(feature = "data")]

use feedforward::data::table::{
    Encoding, Features, FillCategories, FillNumbers, Labels, Missing, OneHot, Table, TableOptions,
    UnseenCategories,
};
use feedforward::{EmbeddingRow, Error, UnknownCategory};
use nalgebra::DMatrix;
use rand::SeedableRng;

fn parse(text: &str) -> Result<Table, Error> {
    Table::parse(text.as_bytes(), "t.csv")
}

/// The error's line and message.
fn failure(result: Result<impl std::fmt::Debug, Error>) -> (usize, String) {
    match result.unwrap_err() {
        Error::Csv { path, line, reason } => {
            assert_eq!(path.to_str(), Some("t.csv"));
            (line, reason)
        }
        other => panic!("not a CSV error: {other}"),
    }
}

#[test]
fn columns_become_rows_of_one_sample_per_column() {
    let t = parse("a,b,c\n1,2,3\n4,5,6\n").unwrap();
    assert_eq!((t.rows(), t.column_names()), (2, &["a".to_string(), "b".into(), "c".into()][..]));
    let x = t.matrix::<f64>(&["c", "a"]).unwrap();
    assert_eq!(x.shape(), (2, 2));
    assert_eq!(x.as_slice(), &[3.0, 1.0, 6.0, 4.0]);
    assert_eq!(t.columns_except(&["b"]), ["a", "c"]);
    assert_eq!(t.matrix::<f32>(&[]).unwrap().shape(), (0, 2));
}

#[test]
fn quotes_crlf_a_byte_order_mark_spaces_and_other_delimiters() {
    let text = "\u{feff}name ,\"score, raw\",label\r\n\"Smith, J.\", 1.5e3 ,yes\r\n\"two\nlines\",-2,no\r\n\r\nlast,7,yes\r\n";
    let t = parse(text).unwrap();
    assert_eq!(t.column_names(), ["name", "score, raw", "label"]);
    assert_eq!(t.rows(), 3);
    assert_eq!(t.matrix::<f64>(&["score, raw"]).unwrap().as_slice(), &[1500.0, -2.0, 7.0]);
    let labels = t.labels("label").unwrap();
    assert_eq!(labels, Labels { indices: vec![1, 0, 1], classes: vec!["no".into(), "yes".into()] });
    // The quoted line break does not shift the line numbers of later rows.
    let (line, reason) = failure(t.matrix::<f64>(&["name"]));
    assert_eq!(
        (line, reason.as_str()),
        (
            2,
            "column \"name\": \"Smith, J.\" is not a number (for a column of categories, see data::table::Features)"
        )
    );

    // CRLF line ends, a blank line (3) and a quoted line break (5–6), then a bad cell on line 7.
    let t = parse("a\r\n1\r\n\r\n\"2\"\r\n\"3\n\"\r\nx\r\n").unwrap();
    assert_eq!(failure(t.matrix::<f64>(&["a"])), (7, "column \"a\": \"x\" is not a number".to_string()));

    let t = Table::parse_with_delimiter("x;y\n1,5;2\n".as_bytes(), "t.csv", b';').unwrap();
    assert_eq!(t.column_names(), ["x", "y"]);
    assert!(t.matrix::<f64>(&["x"]).is_err(), "1,5 is not a number here");
    assert_eq!(t.matrix::<f64>(&["y"]).unwrap()[(0, 0)], 2.0);
}

#[test]
fn numeric_labels_sort_by_value_and_text_labels_by_text() {
    let t = parse("y,z\n10,b\n9,a\n1.0,c\n1,b\n").unwrap();
    let numbers = t.labels("y").unwrap();
    assert_eq!(numbers.classes, ["1.0", "9", "10"]);
    assert_eq!(numbers.indices, [2, 1, 0, 0]);
    let words = t.labels("z").unwrap();
    assert_eq!(
        (words.classes, words.indices),
        (vec!["a".to_string(), "b".into(), "c".into()], vec![1, 0, 2, 1])
    );
    // Digits 0..k label themselves.
    let t = parse("digit\n2\n0\n1\n2\n").unwrap();
    assert_eq!(t.labels("digit").unwrap().indices, [2, 0, 1, 2]);
}

#[test]
fn every_bad_file_names_its_line_and_column() {
    let cases: [(&str, usize, &str); 6] = [
        ("", 1, "empty"),
        ("a,,c\n1,2,3\n", 1, "column 2 of the header has no name"),
        ("a,b,a\n1,2,3\n", 1, "two columns are named \"a\""),
        ("a,b\n1,2\n3\n", 3, "1 cells, the header has 2"),
        ("a,b\n1,2\n3,4,5\n", 3, "3 cells, the header has 2"),
        ("a,b\n1,2\n\"3,4\n", 3, "1 cells, the header has 2"),
    ];
    for (text, line, reason) in cases {
        let (l, r) = failure(parse(text));
        assert!(l == line && r.contains(reason), "{text:?}: line {l}: {r}");
    }
    let t = parse("a,b\n1,x\n2,nan\n3,inf\n").unwrap();
    let (l, r) = failure(t.matrix::<f32>(&["a", "b"]));
    assert_eq!((l, r.as_str()), (2, "column \"b\": \"x\" is not a number"));
    // NaN is what numpy writes for a missing value: the error names the option that reads it
    // as one. An infinity is just not finite.
    let t = parse("a,b\n1,2\n2,NaN\n3,inf\n").unwrap();
    let (l, r) = failure(t.matrix::<f32>(&["b"]));
    let marker = "is not a number (if it marks a missing value, see data::table::TableOptions::missing)";
    assert_eq!((l, r), (3, format!("column \"b\": \"NaN\" {marker}")));
    let t = parse("a,b\n1,2\n2,-inf\n").unwrap();
    let (l, r) = failure(t.matrix::<f32>(&["b"]));
    assert_eq!((l, r.as_str()), (3, "column \"b\": \"-inf\" is not a finite number"));
    let (l, r) = failure(t.labels("c"));
    assert!(l == 1 && r.contains("no column is named \"c\"") && r.contains("[\"a\", \"b\"]"), "{r}");
    assert!(matches!(Table::read("/nonexistent/t.csv"), Err(Error::MissingFile { .. })));
}

#[test]
fn a_tab_separated_file_reads_with_its_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.tsv");
    std::fs::write(&path, "x\tlabel\n1.5\tcat\n-2\tdog\n").unwrap();
    let t = Table::read_with_delimiter(&path, b'\t').unwrap();
    assert_eq!(t.column_names(), ["x", "label"]);
    assert_eq!(t.matrix::<f64>(&["x"]).unwrap().as_slice(), &[1.5, -2.0]);
    assert_eq!(t.labels("label").unwrap().indices, [0, 1]);
    // Read with commas, the whole line is one column, and the error names the file.
    match Table::read(&path).and_then(|t| t.matrix::<f64>(&["x"])) {
        Err(Error::Csv { path: p, line: 1, reason }) => {
            assert_eq!(p, path);
            assert!(reason.contains("no column is named \"x\""), "{reason}");
        }
        other => panic!("expected a CSV error on line 1, got {other:?}"),
    }
    assert!(matches!(
        Table::read_with_delimiter("/nonexistent/t.tsv", b'\t'),
        Err(Error::MissingFile { .. })
    ));
}

/// The training R² of an `inputs`-16-1 network with standardized inputs and targets, trained
/// with Adam for 100 epochs on `x` and `y`.
fn fitted_r2(x: &DMatrix<f32>, y: &DMatrix<f32>, seed: u64) -> f64 {
    use feedforward::metrics::RegressionMetrics;
    use feedforward::train::{self, Batching, TrainConfig};
    use feedforward::{Adam, MeanSquaredError, MlpConfig, Network, Standardize};
    use rand::SeedableRng;

    let mut net =
        Network::mlp(&[x.nrows(), 16, 1], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(seed))
            .unwrap()
            .insert(0, Standardize::fit(x).unwrap())
            .unwrap()
            .push(Standardize::fit(y).unwrap().inverse())
            .unwrap();
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    let fit = TrainConfig {
        epochs: 100,
        batching: Batching::Minibatch { size: 32, shuffle: true },
        ..TrainConfig::default()
    };
    train::fit(&mut net, &mut adam, &MeanSquaredError, train::Data::new(x, y), &fit, |_, _, _| {}).unwrap();
    RegressionMetrics::new(&net.output(x).unwrap(), y).unwrap().r2.unwrap()
}

/// A regression from a CSV file on disk, end to end: read, standardize, train, predict.
#[test]
fn a_network_trains_on_a_table_read_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("houses.csv");
    let mut text = String::from("id,area,age,price\n");
    for i in 0..200 {
        let (area, age) = (40 + (i * 37) % 160, (i * 11) % 60);
        text.push_str(&format!("{i},{area},{age},{}\n", 3000 * area - 1500 * age + 50_000));
    }
    std::fs::write(&path, text).unwrap();
    let table = Table::read(&path).unwrap();
    let x = table.matrix::<f32>(&table.columns_except(&["id", "price"])).unwrap();
    let y = table.matrix::<f32>(&["price"]).unwrap();
    let r2 = fitted_r2(&x, &y, 1);
    assert!(r2 > 0.99, "R² {r2}");
}

#[test]
fn a_one_hot_code_fitted_on_one_table_encodes_later_ones_with_the_same_rows() {
    let training = parse("area,city,zone\n80,Lyon,1\n45,Paris,2\n120,Lyon,10\n60,Nice,2\n").unwrap();
    assert!(training.is_numeric("area").unwrap() && !training.is_numeric("city").unwrap());
    assert!(training.is_numeric("zone").unwrap());
    let city = OneHot::fit(&training, "city").unwrap();
    assert_eq!(
        (city.column(), city.classes()),
        ("city", &["Lyon".to_string(), "Nice".into(), "Paris".into()][..])
    );
    assert_eq!(city.feature_names(), ["city=Lyon", "city=Nice", "city=Paris"]);
    // Numbers sort by value, so zone 10 follows zone 2.
    let zone = OneHot::fit(&training, "zone").unwrap();
    assert_eq!(zone.classes(), ["1", "2", "10"]);
    #[rustfmt::skip]
    let expected = [
        80.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0,
        45.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0,
        120.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0,
        60.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0,
    ];
    let features = Features::new(vec!["area".into()], vec![city.clone(), zone.clone()]).unwrap();
    assert_eq!(features, Features::fit(&training, &["area"], &["city", "zone"]).unwrap());
    assert_eq!(
        features.names(),
        ["area", "city=Lyon", "city=Nice", "city=Paris", "zone=1", "zone=2", "zone=10"]
    );
    let x = features.matrix::<f64>(&training).unwrap();
    assert_eq!((x.shape(), features.rows()), ((7, 4), 7));
    assert_eq!(x.as_slice(), &expected);
    assert_eq!(city.encode::<f32>(&training).unwrap(), x.rows(1, 3).map(|v| v as f32));

    // A later table: the same rows for the same classes, in any order; "2.0" is zone 2.
    let later = parse("zone,city,area\n2.0,Paris,30\n1,Paris,50\n").unwrap();
    #[rustfmt::skip]
    let expected = [
        30.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, // Paris, zone 2
        50.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, // Paris, zone 1
    ];
    assert_eq!(features.matrix::<f64>(&later).unwrap().as_slice(), &expected);
    // A class the code never saw is an error at its line, not a row of zeros.
    let unseen = parse("zone,city\n1,Lyon\n2,Marseille\n").unwrap();
    let (line, reason) = failure(city.encode::<f32>(&unseen));
    assert_eq!(line, 3);
    assert_eq!(
        reason,
        "column \"city\": \"Marseille\" is not one of the 3 classes of its one-hot code: \"Lyon\", \"Nice\", \"Paris\""
    );
    let (line, reason) = failure(zone.encode::<f32>(&parse("zone\n3\n").unwrap()));
    assert!(line == 2 && reason.contains("\"3\" is not one of the 3 classes"), "{line}: {reason}");
    let (_, reason) = failure(city.encode::<f32>(&parse("town\nLyon\n").unwrap()));
    assert!(reason.contains("no column is named \"city\""), "{reason}");
    // Rebuilt from its classes, it is the same code; bad class lists are errors.
    assert_eq!(OneHot::new("city", city.classes().to_vec()).unwrap(), city);
    assert!(matches!(OneHot::new("city", vec![]), Err(Error::ShapeMismatch { .. })));
    let e = OneHot::new("zone", vec!["1".into(), "2".into(), "1.0".into()]).unwrap_err();
    assert!(e.to_string().contains("\"1.0\" is given twice"), "{e}");
    let e = OneHot::new("zone", vec!["-0".into(), "2".into(), "0".into()]).unwrap_err();
    assert!(e.to_string().contains("\"0\" is given twice"), "{e}");
    let e = OneHot::new("city", vec!["Lyon".into(), "Nice".into(), "Lyon".into()]).unwrap_err();
    assert!(e.to_string().contains("\"Lyon\" is given twice"), "{e}");
    // Tens of thousands of classes (postcodes, say) are checked and matched in linear time.
    let many: Vec<String> = (0..40_000).map(|i| format!("{i:05}")).collect();
    let postcode = OneHot::new("postcode", many).unwrap();
    let table = parse("postcode\n01000\n39999\n7\n").unwrap();
    let x = postcode.encode::<f32>(&table).unwrap();
    assert_eq!((x[(1000, 0)], x[(39_999, 1)], x[(7, 2)], x.sum()), (1.0, 1.0, 1.0, 3.0));
    let e = Features::new(vec!["city".into()], vec![city.clone()]).unwrap_err();
    assert!(e.to_string().contains("\"city\" twice"), "{e}");
    let (line, reason) = failure(features.matrix::<f32>(&parse("city,zone\nLyon,1\n").unwrap()));
    assert!(line == 1 && reason.contains("no column is named \"area\""), "{reason}");
    // Ten classes shown at most.
    let many: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
    let code = OneHot::new("c", many).unwrap();
    let (_, reason) = failure(code.encode::<f32>(&parse("c\nz\n").unwrap()));
    assert!(reason.ends_with("\"c8\", \"c9\", …"), "{reason}");
}

/// A regression whose target depends on a category: learned through its one-hot code, and
/// not without it.
#[test]
fn a_network_learns_a_categorical_effect_through_a_one_hot_code() {
    let cities = [("Lyon", 0), ("Paris", 200_000), ("Nice", 80_000)];
    let mut text = String::from("area,city,price\n");
    for i in 0..240 {
        let (city, premium) = cities[(i * 7) % 3];
        let area = 40 + (i * 37) % 160;
        text.push_str(&format!("{area},{city},{}\n", 3000 * area + premium));
    }
    let table = parse(&text).unwrap();
    let y = table.matrix::<f32>(&["price"]).unwrap();
    let r2 = |categorical: &[&str]| {
        let features = Features::fit(&table, &["area"], categorical).unwrap();
        let x = features.matrix::<f32>(&table).unwrap();
        fitted_r2(&x, &y, 2)
    };
    let (with, without) = (r2(&["city"]), r2(&[]));
    assert!(with > 0.99 && without < 0.9, "R² {with} with the code, {without} without");
}

#[test]
fn a_features_file_keeps_the_plan_and_bad_files_are_errors() {
    let training = parse("km,make,fuel\n10,kia,petrol\n20,audi,diesel\n30,kia,electric\n").unwrap();
    let features = Features::fit(&training, &["km"], &["make", "fuel"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.json");
    features.save(&path).unwrap();
    let loaded = Features::load(&path).unwrap();
    assert_eq!(loaded, features);
    assert_eq!(
        loaded.names(),
        ["km", "make=audi", "make=kia", "fuel=diesel", "fuel=electric", "fuel=petrol"]
    );
    assert_eq!(loaded.matrix::<f32>(&training).unwrap(), features.matrix::<f32>(&training).unwrap());

    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        Features::load(&path).unwrap_err()
    };
    let csv = |e: Error| match e {
        Error::Csv { line, reason, .. } => (line, reason),
        other => panic!("not a CSV error: {other}"),
    };
    let (line, reason) = csv(load("{\n\"format_version\": 1,\n\"numeric\": [\"km\",\n"));
    assert!(line == 4 && reason.starts_with("not a features file"), "{line}: {reason}");
    let (_, reason) = csv(load(r#"{"format_version": 4, "numeric": [], "categorical": []}"#));
    assert!(reason.contains("format version 1 to 3"), "{reason}");
    let (_, reason) = csv(load(r#"{"format_version": 1, "numeric": ["km", 3], "categorical": []}"#));
    assert!(reason.contains("\"numeric\" holds 3, not a string"), "{reason}");
    let (_, reason) =
        csv(load(r#"{"format_version": 1, "numeric": [], "categorical": [{"classes": ["a"]}]}"#));
    assert!(reason.contains("without a \"column\""), "{reason}");
    let e = load(r#"{"format_version": 1, "numeric": [], "categorical": [{"column": "c", "classes": []}]}"#);
    assert!(matches!(&e, Error::Csv { .. }) && e.to_string().contains("at least one class"), "{e}");
    let (_, reason) = csv(load(
        r#"{"format_version": 1, "numeric": ["c"], "categorical": [{"column": "c", "classes": ["x"]}]}"#,
    ));
    assert!(reason.contains("\"c\" twice"), "{reason}");
    let e = Features::load(dir.path().join("missing.json")).unwrap_err();
    assert!(matches!(e, Error::MissingFile { .. }), "{e}");
    // The same JSON as text (a model file's metadata), its errors naming where it came from.
    let features = Features::fit(&parse("km,make\n10,kia\n").unwrap(), &["km"], &["make"]).unwrap();
    assert_eq!(Features::from_json(&features.to_json(), "m.safetensors").unwrap(), features);
    match Features::from_json("{\"format_version\": 9}", "m.safetensors").unwrap_err() {
        Error::Csv { path, line: 1, reason } => {
            assert!(path.ends_with("m.safetensors") && reason.contains("format version"), "{reason}")
        }
        other => panic!("expected a CSV error, got {other}"),
    }
}

/// An empty cell is a missing value: the table reads, and each use of its column that has no
/// way to fill it is an error naming the cell's line.
#[test]
fn an_empty_cell_is_refused_where_its_column_is_used() {
    let t = parse("a,b,c,d\n1,2,x,\n3, ,y,\n5,\"\",,\n").unwrap();
    assert_eq!(t.rows(), 3);
    let counts: Vec<usize> = ["a", "b", "c", "d"].iter().map(|c| t.missing_cells(c).unwrap()).collect();
    assert_eq!(counts, [0, 2, 1, 3]);
    // A numeric column with gaps is still numeric; a column with nothing in it is not.
    let numeric: Vec<bool> = ["a", "b", "c", "d"].iter().map(|c| t.is_numeric(c).unwrap()).collect();
    assert_eq!(numeric, [true, true, false, false]);
    assert_eq!(t.matrix::<f32>(&["a"]).unwrap().as_slice(), &[1.0, 3.0, 5.0]);
    let empty = "is empty (a missing value: fill it in the file, or see data::table::Missing)";
    assert_eq!(failure(t.matrix::<f32>(&["a", "b"])), (3, format!("column \"b\" {empty}")));
    assert_eq!(failure(t.labels("c")), (4, format!("column \"c\" {empty}")));
    assert_eq!(failure(OneHot::fit(&t, "c")), (4, format!("column \"c\" {empty}")));
    let code = OneHot::new("c", vec!["x".into(), "y".into()]).unwrap();
    assert_eq!(failure(code.encode::<f32>(&t)), (4, format!("column \"c\" {empty}")));
    assert_eq!(failure(Features::fit(&t, &["a", "b"], &[])), (3, format!("column \"b\" {empty}")));
    assert_eq!(failure(Features::fit(&t, &["a"], &["c"])), (4, format!("column \"c\" {empty}")));
    // A plan fitted where there were no gaps refuses them later.
    let features = Features::fit(&t, &["a"], &[]).unwrap();
    assert_eq!(
        failure(features.matrix::<f32>(&parse("a\n1\n\"\"\n").unwrap())),
        (3, format!("column \"a\" {empty}"))
    );
}

/// Each policy fills with the value it fits on the training table, and a later table is filled
/// with the training table's values, not its own.
#[test]
fn missing_values_are_filled_with_values_fitted_on_the_training_table() {
    let training = parse("n,m,city\n1,,Nice\n,10,Lyon\n4,,\n7,10,Nice\n,30,Lyon\n").unwrap();
    let fit = |numbers, indicators| {
        let missing = Missing { numbers, categories: FillCategories::MostFrequent, indicators };
        Features::fit_with(&training, &["n", "m"], &["city"], missing).unwrap()
    };
    // n: 1, 4, 7 (mean 4, median 4); m: 10, 10, 30 (mean 50/3, median 10). Lyon and Nice tie
    // at 2: the first class, Lyon.
    let mean = fit(FillNumbers::Mean, false);
    assert_eq!(mean.fill("n"), Some("4".into()));
    assert_eq!(mean.fill("m"), Some((50.0f64 / 3.0).to_string()));
    assert_eq!(mean.fill("city"), Some("Lyon".into()));
    assert_eq!((mean.fill("nonesuch"), mean.indicators().len()), (None, 0));
    assert_eq!(fit(FillNumbers::Median, false).fill("m"), Some("10".into()));
    assert_eq!(fit(FillNumbers::Value(-1.0), false).fill("n"), Some("-1".into()));
    let flagged = fit(FillNumbers::Median, true);
    assert_eq!(flagged.indicators(), ["n", "m", "city"]);
    assert_eq!(
        flagged.names(),
        ["n", "m", "city=Lyon", "city=Nice", "n missing", "m missing", "city missing"]
    );
    let x = flagged.matrix::<f64>(&training).unwrap();
    #[rustfmt::skip]
    let expected = [
        1.0, 10.0, 0.0, 1.0, 0.0, 1.0, 0.0,
        4.0, 10.0, 1.0, 0.0, 1.0, 0.0, 0.0,
        4.0, 10.0, 1.0, 0.0, 0.0, 1.0, 1.0,
        7.0, 10.0, 0.0, 1.0, 0.0, 0.0, 0.0,
        4.0, 30.0, 1.0, 0.0, 1.0, 0.0, 0.0,
    ];
    assert_eq!(x.as_slice(), &expected);
    // A later table of all gaps: the training values, whatever its own numbers.
    let later = parse("city,m,n\n,,\n,,100\n").unwrap();
    let x = flagged.matrix::<f64>(&later).unwrap();
    assert_eq!(x.column(0).as_slice(), &[4.0, 10.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
    assert_eq!(x.column(1).as_slice(), &[100.0, 10.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
    // An even count's median is the mean of the middle two; huge numbers do not overflow.
    let t = parse("v\n1e308\n\n1.7e308\n").unwrap();
    let fill = |numbers| {
        let missing = Missing { numbers, ..Missing::default() };
        Features::fit_with(&t, &["v"], &[], missing).unwrap().fill("v").unwrap().parse::<f64>().unwrap()
    };
    assert_eq!(fill(FillNumbers::Median), 1.35e308);
    assert_eq!(fill(FillNumbers::Mean), 1.35e308);
    // Policies for one kind of column only; bad policies and columns with nothing to fit on.
    let numbers_only = Missing { numbers: FillNumbers::Mean, ..Missing::default() };
    let (line, reason) = failure(Features::fit_with(&training, &["n"], &["city"], numbers_only));
    assert!(line == 4 && reason.starts_with("column \"city\" is empty"), "{line}: {reason}");
    let e = Features::fit_with(
        &training,
        &["n"],
        &[],
        Missing { numbers: FillNumbers::Value(f64::NAN), ..Missing::default() },
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidHyperparameter { name: "fill value", .. }), "{e}");
    // A column named as both kinds is refused as such, before its gaps are looked at.
    let e = Features::fit_with(&training, &["n"], &["n"], Missing::default()).unwrap_err();
    assert!(e.to_string().contains("\"n\" twice"), "{e}");
    let t = parse("a,b\n1,\n2,\n").unwrap();
    let e =
        Features::fit_with(&t, &["b"], &[], Missing { numbers: FillNumbers::Median, ..Missing::default() })
            .unwrap_err();
    assert!(e.to_string().contains("at least one number"), "{e}");
}

/// A plan with fills and indicators comes back from its file; a plan of format 1 (no fills)
/// still loads; fills that do not fit the plan are errors.
#[test]
fn a_features_file_keeps_the_fills_and_indicators() {
    let training = parse("km,fuel,make\n10,petrol,kia\n,diesel,audi\n30,,kia\n").unwrap();
    let missing =
        Missing { numbers: FillNumbers::Mean, categories: FillCategories::MostFrequent, indicators: true };
    let features = Features::fit_with(&training, &["km"], &["fuel", "make"], missing).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.json");
    features.save(&path).unwrap();
    let loaded = Features::load(&path).unwrap();
    assert_eq!(loaded, features);
    assert_eq!(
        (loaded.fill("km"), loaded.fill("fuel"), loaded.indicators()),
        (Some("20".into()), Some("diesel".into()), &["km".to_string(), "fuel".into()][..])
    );
    assert_eq!(loaded.matrix::<f32>(&training).unwrap(), features.matrix::<f32>(&training).unwrap());

    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        Features::load(&path)
    };
    let v1 = load(
        r#"{"format_version": 1, "numeric": ["km"], "categorical": [{"column": "make", "classes": ["audi", "kia"]}]}"#,
    );
    assert_eq!(
        v1.unwrap(),
        Features::fit(&parse("km,make\n1,audi\n2,kia\n").unwrap(), &["km"], &["make"]).unwrap()
    );
    let reason = |text: &str| match load(text).unwrap_err() {
        Error::Csv { line: 1, reason, .. } => reason,
        other => panic!("not a CSV error on line 1: {other}"),
    };
    let code = r#"{"column": "make", "classes": ["audi", "kia"], "fill": "bmw"}"#;
    let r = reason(&format!(r#"{{"format_version": 2, "numeric": [], "categorical": [{code}]}}"#));
    assert!(r.contains("the fill of \"make\", \"bmw\", is not one of its classes"), "{r}");
    let r = reason(
        r#"{"format_version": 2, "numeric": ["km"], "numeric_fills": {"miles": 3}, "categorical": []}"#,
    );
    assert!(r.contains("a fill for \"miles\", which is not a numeric column"), "{r}");
    let r = reason(
        r#"{"format_version": 2, "numeric": ["km"], "numeric_fills": {"km": "3"}, "categorical": []}"#,
    );
    assert!(r.contains("is not a number"), "{r}");
    let r =
        reason(r#"{"format_version": 2, "numeric": ["km"], "categorical": [], "indicators": ["km", "km"]}"#);
    assert!(r.contains("indicator \"km\""), "{r}");
    let r = reason(r#"{"format_version": 2, "numeric": ["km"], "categorical": [], "indicators": ["fuel"]}"#);
    assert!(r.contains("indicator \"fuel\""), "{r}");
}

/// A table splits as `train::split` splits a matrix of as many samples with the same settings,
/// and a row held out still names its line in the file.
#[test]
fn a_table_splits_as_train_split_does() {
    use feedforward::train::{self, SplitConfig};
    let mut text = String::from("id,x\n");
    for i in 0..50 {
        text.push_str(&format!("{i},{}\n", if i == 17 { "oops".to_string() } else { i.to_string() }));
    }
    let table = parse(&text).unwrap();
    let config = SplitConfig { held_out: 10, seed: 3 };
    let parts = table.split(config).unwrap();
    let ids = table.matrix::<f64>(&["id"]).unwrap();
    let labels: Vec<usize> = (0..50).collect();
    let split = train::split(&ids, &labels[..], config).unwrap();
    assert_eq!(parts.kept.matrix::<f64>(&["id"]).unwrap(), split.inputs);
    assert_eq!(parts.held_out.matrix::<f64>(&["id"]).unwrap(), split.held_out_inputs);
    assert_eq!((parts.kept.rows(), parts.held_out.rows()), (40, 10));
    // Row 17 is on line 19 of the file, whichever part it landed in.
    let with_17 = if split.held_out_targets.contains(&17) { &parts.held_out } else { &parts.kept };
    assert_eq!(failure(with_17.matrix::<f64>(&["x"])), (19, "column \"x\": \"oops\" is not a number".into()));
    let other = if split.held_out_targets.contains(&17) { &parts.kept } else { &parts.held_out };
    assert!(other.is_numeric("x").unwrap());
    let e = table.split(SplitConfig { held_out: 50, seed: 0 }).unwrap_err();
    assert!(matches!(e, Error::InvalidHyperparameter { .. }), "{e}");
}

/// A table's stratified split holds out the rows `train::stratified_split` holds out for the
/// labels of its column; a column with a gap cannot stratify.
#[test]
fn a_table_splits_by_its_classes_as_train_stratified_split_does() {
    use feedforward::train::{self, SplitConfig};
    let mut text = String::from("id,kind\n");
    for i in 0..60 {
        text.push_str(&format!("{i},{}\n", ["ant", "bee", "bee", "cat", "cat", "cat"][i % 6]));
    }
    let table = parse(&text).unwrap();
    let config = SplitConfig { held_out: 12, seed: 8 };
    let parts = table.stratified_split(config, "kind").unwrap();
    let ids = table.matrix::<f64>(&["id"]).unwrap();
    let split = train::stratified_split(&ids, &table.labels("kind").unwrap().indices, config).unwrap();
    assert_eq!(parts.kept.matrix::<f64>(&["id"]).unwrap(), split.inputs);
    assert_eq!(parts.held_out.matrix::<f64>(&["id"]).unwrap(), split.held_out_inputs);
    // 10 ants, 20 bees, 30 cats: 2, 4 and 6 held out.
    let held = parts.held_out.labels("kind").unwrap().indices;
    assert_eq!((0..3).map(|c| held.iter().filter(|&&l| l == c).count()).collect::<Vec<_>>(), [2, 4, 6]);
    let gap = parse("id,kind\n1,ant\n2,\n3,bee\n").unwrap();
    assert!(gap.stratified_split(SplitConfig { held_out: 1, seed: 0 }, "kind").is_err());
}

/// A table's folds hold out the rows `train::folds` (or `stratified_folds`, or `group_folds`)
/// holds out for as many samples (or for the labels of its column); `group_split` as
/// `train::group_split`.
#[test]
fn a_table_cuts_into_folds_as_train_folds_does() {
    use feedforward::train::{self, FoldConfig};
    let mut text = String::from("id,kind\n");
    for i in 0..23 {
        text.push_str(&format!("{i},{}\n", ["ant", "bee", "bee", "cat", "cat", "cat", "cat"][i % 7]));
    }
    let table = parse(&text).unwrap();
    let ids = table.matrix::<f64>(&["id"]).unwrap();
    let labels = table.labels("kind").unwrap().indices;
    let config = FoldConfig { folds: 4, seed: 6 };
    let plain = table.folds(config).unwrap().zip(train::folds(&ids, &labels[..], config).unwrap());
    let stratified = table
        .stratified_folds(config, "kind")
        .unwrap()
        .zip(train::stratified_folds(&ids, &labels, config).unwrap());
    let mut seen = 0;
    for (part, split) in plain.chain(stratified) {
        assert_eq!(part.kept.matrix::<f64>(&["id"]).unwrap(), split.inputs);
        assert_eq!(part.held_out.matrix::<f64>(&["id"]).unwrap(), split.held_out_inputs);
        seen += 1;
    }
    assert_eq!(seen, 8);
    assert!(table.folds(FoldConfig { folds: 24, seed: 0 }).is_err());
    // By groups: the same rows as train::group_folds and group_split with the column's classes.
    let groups = table.labels("kind").unwrap().indices;
    let by_group = table.group_folds(FoldConfig { folds: 3, seed: 1 }, "kind").unwrap();
    let by_matrix = train::group_folds(&ids, &labels[..], &groups, FoldConfig { folds: 3, seed: 1 }).unwrap();
    assert_eq!(by_group.len(), 3);
    for (part, split) in by_group.zip(by_matrix) {
        assert_eq!(part.held_out.matrix::<f64>(&["id"]).unwrap(), split.held_out_inputs);
    }
    let config = train::SplitConfig { held_out: 5, seed: 2 };
    let part = table.group_split(config, "kind").unwrap();
    let split = train::group_split(&ids, &labels[..], &groups, config).unwrap();
    assert_eq!(part.held_out.matrix::<f64>(&["id"]).unwrap(), split.held_out_inputs);
    assert!(table.group_folds(FoldConfig { folds: 4, seed: 0 }, "kind").is_err(), "three groups");
    // Stratified by the parity of the id, grouped by kind: the rows train::stratified_group_folds
    // holds out.
    let parity: Vec<usize> = (0..23).map(|i| i % 2).collect();
    let mut text = String::from("id,kind,odd\n");
    for i in 0..23 {
        text.push_str(&format!(
            "{i},{},{}\n",
            ["ant", "bee", "bee", "cat", "cat", "cat", "cat"][i % 7],
            i % 2
        ));
    }
    let table = parse(&text).unwrap();
    let config = FoldConfig { folds: 2, seed: 3 };
    let by_table = table.stratified_group_folds(config, "odd", "kind").unwrap();
    let by_matrix = train::stratified_group_folds(&ids, &parity[..], &parity, &groups, config).unwrap();
    assert_eq!(by_table.len(), 2);
    for (part, split) in by_table.zip(by_matrix) {
        assert_eq!(part.held_out.matrix::<f64>(&["id"]).unwrap(), split.held_out_inputs);
    }
}

/// The rows of a part that lacks a class keep the training table's class indices through
/// `labels_with`; its own `labels` would number them otherwise. A class the training rows did
/// not have is an error naming its line.
#[test]
fn labels_of_another_table_keep_the_training_classes() {
    let training = parse("grade,x\n1,5\n2,6\n3,7\n1.0,8\n").unwrap();
    let classes = training.labels("grade").unwrap().classes;
    assert_eq!(classes, ["1", "2", "3"]);
    let test = parse("grade,x\n3,1\n1.0,2\n3.0,3\n").unwrap();
    let labels = test.labels_with("grade", &classes).unwrap();
    assert_eq!((labels.indices, labels.classes), (vec![2, 0, 2], classes.clone()));
    assert_eq!(test.labels("grade").unwrap().indices, [1, 0, 1], "its own numbering");
    let unknown = parse("grade,x\n2,1\n4,2\n").unwrap();
    assert_eq!(
        failure(unknown.labels_with("grade", &classes)),
        (
            3,
            "column \"grade\": \"4\" is not one of the 3 classes of the training labels: \"1\", \"2\", \"3\""
                .into()
        )
    );
    let gap = parse("grade,x\n2,1\n,2\n").unwrap();
    assert_eq!(failure(gap.labels_with("grade", &classes)).0, 3);
    assert!(test.labels_with("grade", &[]).is_err());
    assert!(test.labels_with("grade", &["1".into(), "1.0".into()]).is_err());
}

/// When a value is missing for a reason, its indicator row carries that: a target that
/// depends on whether `x` was recorded is learned with the row. Without it, a filled cell
/// looks like a real 5, and the network cannot tell them apart.
#[test]
fn an_indicator_row_lets_a_network_learn_from_missingness() {
    let mut text = String::from("x,y\n");
    for i in 0..240 {
        let x = i % 10;
        // Every third value unrecorded, and those samples' targets high.
        let (cell, y) = if i % 3 == 0 { (String::new(), 300) } else { (x.to_string(), 10 * x) };
        text.push_str(&format!("{cell},{y}\n"));
    }
    let table = parse(&text).unwrap();
    let y = table.matrix::<f32>(&["y"]).unwrap();
    let r2 = |indicators| {
        let missing = Missing { numbers: FillNumbers::Value(5.0), indicators, ..Missing::default() };
        let features = Features::fit_with(&table, &["x"], &[], missing).unwrap();
        fitted_r2(&features.matrix::<f32>(&table).unwrap(), &y, 4)
    };
    let (with, without) = (r2(true), r2(false));
    assert!(with > 0.99 && without < 0.9, "R² {with} with the indicator, {without} without");
}

/// `FillCategories::MissingClass`: a column with gaps gets a class `(missing)` of its own, after
/// the others, in its one-hot rows or as its last index; the plan file keeps it; a column
/// without gaps gets none, and a gap in a later table is then an error. A network learns what
/// a gap says through that class, where the most frequent class hides it.
#[test]
fn missing_values_can_be_a_class_of_their_own() {
    let missing = Missing { categories: FillCategories::MissingClass, ..Missing::default() };
    let training = parse("deck,port,age\nB,S,30\n,C,40\n(missing),S,50\nA,,60\n").unwrap();
    let features = Features::fit_with(&training, &["age"], &["deck", "port"], missing).unwrap();
    // A cell already says "(missing)": the gaps' class takes the next free name.
    assert_eq!(features.categorical()[0].classes(), ["(missing)", "A", "B", "(missing 2)"]);
    assert_eq!(features.categorical()[1].classes(), ["C", "S", "(missing)"]);
    assert_eq!(features.fill("port").as_deref(), Some("(missing)"));
    let x = features.matrix::<f32>(&training).unwrap();
    #[rustfmt::skip]
    assert_eq!(x.as_slice(), &[
        30.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0,
        40.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0,
        50.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0,
        60.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0,
    ]);
    let indexed = features.clone().with_indices(&["port"]).unwrap();
    let later = parse("deck,port,age\n,,35\n").unwrap();
    assert_eq!(indexed.matrix::<f32>(&later).unwrap().as_slice(), &[35.0, 0.0, 0.0, 0.0, 1.0, 2.0]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.json");
    indexed.save(&path).unwrap();
    assert_eq!(Features::load(&path).unwrap(), indexed);
    // No gaps in "deck" on these rows: no class for them, and a later gap is an error.
    let full = parse("deck,port,age\nB,S,30\nA,,60\n").unwrap();
    let features = Features::fit_with(&full, &["age"], &["deck", "port"], missing).unwrap();
    assert_eq!(features.categorical()[0].classes(), ["A", "B"]);
    assert_eq!(features.fill("deck"), None);
    let (line, reason) = failure(features.matrix::<f32>(&later));
    assert!(line == 2 && reason.contains("\"deck\""), "{line}: {reason}");

    // The target is high where the deck was not recorded; deck B is the most frequent.
    let mut text = String::from("deck,y\n");
    for i in 0..240 {
        let (deck, y) = match i % 4 {
            0 => ("", 100),
            1 => ("A", 10),
            _ => ("B", 20),
        };
        text.push_str(&format!("{deck},{y}\n"));
    }
    let table = parse(&text).unwrap();
    let y = table.matrix::<f32>(&["y"]).unwrap();
    let r2 = |categories| {
        let features =
            Features::fit_with(&table, &[], &["deck"], Missing { categories, ..Missing::default() });
        fitted_r2(&features.unwrap().matrix::<f32>(&table).unwrap(), &y, 4)
    };
    let (own, most_frequent) = (r2(FillCategories::MissingClass), r2(FillCategories::MostFrequent));
    assert!(
        own > 0.99 && most_frequent < 0.5,
        "R² {own} with a class of its own, {most_frequent} filled with B"
    );
}

/// Markers of missing values (R's `NA`) are missing values when the options say so, and words
/// otherwise: nothing is guessed.
#[test]
fn markers_of_missing_values_are_missing_when_named() {
    let text = "mass,sex,note\n3750,male,?\n NA ,NA,ok\n3800,female,?\n";
    let plain = parse(text).unwrap();
    assert!(!plain.is_numeric("mass").unwrap());
    assert_eq!(
        failure(plain.matrix::<f32>(&["mass"])),
        (
            3,
            "column \"mass\": \"NA\" is not a number (if it marks a missing value, see data::table::TableOptions::missing)"
                .into()
        )
    );
    assert_eq!(plain.labels("sex").unwrap().classes, ["NA", "female", "male"]);
    let options = TableOptions { missing: vec!["NA".into(), "?".into()], ..TableOptions::default() };
    let t = Table::parse_with(text.as_bytes(), "t.csv", &options).unwrap();
    let counts: Vec<usize> = ["mass", "sex", "note"].iter().map(|c| t.missing_cells(c).unwrap()).collect();
    assert_eq!(counts, [1, 1, 2]);
    assert!(t.is_numeric("mass").unwrap());
    let na = "is \"NA\" (a missing value: fill it in the file, or see data::table::Missing)";
    assert_eq!(failure(t.matrix::<f32>(&["mass"])), (3, format!("column \"mass\" {na}")));
    assert_eq!(failure(t.labels("sex")), (3, format!("column \"sex\" {na}")));
    let missing =
        Missing { numbers: FillNumbers::Mean, categories: FillCategories::MostFrequent, indicators: true };
    let features = Features::fit_with(&t, &["mass"], &["sex", "note"], missing).unwrap();
    assert_eq!(
        features.names(),
        ["mass", "sex=female", "sex=male", "note=ok", "mass missing", "sex missing", "note missing"]
    );
    assert_eq!(features.fill("mass"), Some("3775".into()));
    assert_eq!(features.fill("sex"), Some("female".into()));
    let x = features.matrix::<f64>(&t).unwrap();
    assert_eq!(x.column(1).as_slice(), &[3775.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
    // The same options from a file, with another delimiter.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.tsv");
    std::fs::write(&path, text.replace(',', "\t")).unwrap();
    let read = Table::read_with(&path, &TableOptions { delimiter: b'\t', ..options }).unwrap();
    assert_eq!(
        read.matrix::<f32>(&["mass"]).unwrap_err().to_string(),
        format!("{}:3: column \"mass\" {na}", path.display())
    );
}

/// Rows without a value where one is needed (a target) are dropped on request, and the rows
/// kept still name their lines.
#[test]
fn rows_missing_a_needed_value_are_dropped_on_request() {
    let t = parse("x,y,z\n1,10,a\n2,,b\n,30,\n4,40,oops\n").unwrap();
    let kept = t.without_missing(&["y"]).unwrap();
    assert_eq!((kept.rows(), kept.missing_cells("x").unwrap()), (3, 1));
    // Its second row is line 4 of the file.
    let (line, reason) = failure(kept.labels("z"));
    assert!(line == 4 && reason.starts_with("column \"z\" is empty"), "{line}: {reason}");
    let both = t.without_missing(&["x", "y"]).unwrap();
    assert_eq!(both.matrix::<f32>(&["x", "y"]).unwrap().as_slice(), &[1.0, 10.0, 4.0, 40.0]);
    assert_eq!(both.labels("z").unwrap().classes, ["a", "oops"]);
    assert_eq!(t.without_missing(&[]).unwrap(), t);
    let (line, reason) = failure(t.without_missing(&["w"]));
    assert!(line == 1 && reason.contains("no column is named \"w\""), "{reason}");
}

/// `cells` reads a column as text (missing values `None`); `select` takes any rows, in any
/// order, and its rows' errors still name their lines in the file.
#[test]
fn rows_are_selected_by_their_cells_and_keep_their_lines() {
    let options = TableOptions { missing: vec!["NA".into()], ..TableOptions::default() };
    let text = "user,score\nann,1\n\" bob , jr\",NA\nann,x\ncid,\n";
    let t = Table::parse_with(text.as_bytes(), "t.csv", &options).unwrap();
    assert_eq!(t.cells("user").unwrap(), [Some("ann"), Some("bob , jr"), Some("ann"), Some("cid")]);
    assert_eq!(t.cells("score").unwrap(), [Some("1"), None, Some("x"), None]);
    let (line, reason) = failure(t.cells("name"));
    assert!(line == 1 && reason.contains("no column is named \"name\""), "{reason}");
    // Every row of ann, taken twice, the last first: the word "x" is on line 4 of the file.
    let users = t.cells("user").unwrap();
    let ann: Vec<usize> = (0..t.rows()).rev().filter(|&r| users[r] == Some("ann")).collect();
    let picked = t.select(&[&ann[..], &ann[..]].concat()).unwrap();
    assert_eq!(picked.cells("score").unwrap(), [Some("x"), Some("1"), Some("x"), Some("1")]);
    let (line, reason) = failure(picked.matrix::<f32>(&["score"]));
    assert!(line == 4 && reason.contains("\"x\""), "{line}: {reason}");
    assert_eq!(t.select(&[0, 1, 2, 3]).unwrap(), t);
    assert_eq!(t.select(&[]).unwrap().rows(), 0);
    let e = t.select(&[0, 4]).unwrap_err().to_string();
    assert!(e.contains("t.csv") && e.contains("row 4"), "{e}");
}

/// Rows in memory read as a file's would: the same checks, the same missing values, and errors
/// at the line each row would have under the header.
#[test]
fn rows_in_memory_read_as_a_file_would() {
    let options = TableOptions { missing: vec!["NA".into()], ..TableOptions::default() };
    let rows = [vec!["1", " Lyon, north ", "NA"], vec!["2", "", "x"]];
    let t = Table::from_rows("db", &["id", "city", "note"], &rows, &options).unwrap();
    let from_file =
        Table::parse_with("id,city,note\n1,\" Lyon, north \",NA\n2,,x\n".as_bytes(), "db", &options).unwrap();
    assert_eq!(t, from_file);
    assert_eq!(t.labels("id").unwrap().classes, ["1", "2"]);
    assert_eq!((t.missing_cells("city").unwrap(), t.missing_cells("note").unwrap()), (1, 1));
    let error = |e: Error| match e {
        Error::Csv { path, line, reason } => (path.display().to_string(), line, reason),
        other => panic!("not a CSV error: {other}"),
    };
    let (path, line, reason) = error(t.labels("city").unwrap_err());
    assert!(path == "db" && line == 3 && reason.starts_with("column \"city\" is empty"), "{line}: {reason}");
    let ragged = Table::from_rows("db", &["a", "b"], &[vec!["1", "2"], vec!["3"]], &options).unwrap_err();
    assert_eq!(error(ragged), ("db".into(), 3, "1 cells, the header has 2".into()));
    let twice = Table::from_rows("db", &["a", " a"], &[["1", "2"]], &options).unwrap_err();
    assert_eq!(error(twice).2, "two columns are named \"a\"");
    let nameless = Table::from_rows::<[&str; 0], &str>("db", &[""], &[], &options).unwrap_err();
    assert_eq!(error(nameless).2, "column 1 of the header has no name");
}

/// A category the training table did not have is an error, unless the plan says to encode it
/// as no known class; the choice is saved with the plan.
#[test]
fn an_unseen_category_is_refused_or_all_zeros_as_the_plan_says() {
    let training = parse("km,city\n1,Lyon\n2,Paris\n3,\n").unwrap();
    let missing =
        Missing { categories: FillCategories::MostFrequent, indicators: true, ..Missing::default() };
    let strict = Features::fit_with(&training, &["km"], &["city"], missing).unwrap();
    assert_eq!(strict.unseen_categories(), UnseenCategories::Refuse);
    let later = parse("city,km\nNice,4\n,5\nParis,6\n").unwrap();
    let (line, reason) = failure(strict.matrix::<f32>(&later));
    assert!(line == 2 && reason.contains("\"Nice\" is not one of the 2 classes"), "{reason}");
    let lenient = strict.clone().with_unseen_categories(UnseenCategories::AllZeros);
    let x = lenient.matrix::<f64>(&later).unwrap();
    // Rows: km, city=Lyon, city=Paris, city missing. Nice is no known class and not missing;
    // the missing city is filled with the first of the tied classes, Lyon.
    assert_eq!(x.as_slice(), &[4.0, 0.0, 0.0, 0.0, 5.0, 1.0, 0.0, 1.0, 6.0, 0.0, 1.0, 0.0]);
    // A missing value is still not an unseen category: without a fill it is refused.
    let no_fill = Features::fit(&parse("city\nLyon\n").unwrap(), &[], &["city"])
        .unwrap()
        .with_unseen_categories(UnseenCategories::AllZeros);
    let (line, reason) = failure(no_fill.matrix::<f32>(&parse("city\nNice\n\"\"\n").unwrap()));
    assert!(line == 3 && reason.starts_with("column \"city\" is empty"), "{reason}");
    // Saved and loaded with the plan.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.json");
    lenient.save(&path).unwrap();
    assert_eq!(Features::load(&path).unwrap(), lenient);
    strict.save(&path).unwrap();
    assert_eq!(Features::load(&path).unwrap(), strict);
    let text = std::fs::read_to_string(&path).unwrap().replace("\"refuse\"", "\"ignore\"");
    std::fs::write(&path, text).unwrap();
    let e = Features::load(&path).unwrap_err();
    assert!(e.to_string().contains("\"unseen_categories\" is \"ignore\""), "{e}");
}

/// A column of categories encoded as indices: one row of class indices in the plan's order,
/// filled and refused as a one-hot code is, kept by the features file, and the rows an
/// `Embedding` of them takes.
#[test]
fn a_column_encoded_as_indices_is_one_row_an_embedding_reads() {
    let training = parse("km,user,fuel,make\n10,ann,petrol,kia\n20,bob,,audi\n30,cid,diesel,kia\n").unwrap();
    let missing =
        Missing { categories: FillCategories::MostFrequent, indicators: true, ..Missing::default() };
    let features = Features::fit_with(&training, &["km"], &["user", "fuel", "make"], missing)
        .unwrap()
        .with_indices(&["make", "user"])
        .unwrap();
    assert_eq!(
        (features.encoding("user"), features.encoding("fuel")),
        (Some(Encoding::Index), Some(Encoding::OneHot))
    );
    assert_eq!(features.encoding("km"), None);
    assert_eq!(
        features.names(),
        ["km", "user (index)", "fuel=diesel", "fuel=petrol", "make (index)", "fuel missing"]
    );
    assert_eq!(features.rows(), 6);
    let x = features.matrix::<f32>(&training).unwrap();
    #[rustfmt::skip]
    assert_eq!(x.as_slice(), &[
        10.0, 0.0, 0.0, 1.0, 1.0, 0.0,
        20.0, 1.0, 1.0, 0.0, 0.0, 1.0, // the fuel gap filled with diesel (first of the tie), flagged
        30.0, 2.0, 1.0, 0.0, 1.0, 0.0,
    ]);
    let dims = |code: &OneHot| if code.column() == "user" { 4 } else { 2 };
    assert_eq!(
        features.embedding_rows(dims),
        [EmbeddingRow { row: 1, categories: 3, dims: 4 }, EmbeddingRow { row: 4, categories: 2, dims: 2 }]
    );
    // The same as the codes' own indices.
    let user = OneHot::fit(&training, "user").unwrap();
    assert_eq!(x.row(1), user.indices::<f32>(&training).unwrap().row(0));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.json");
    features.save(&path).unwrap();
    let loaded = Features::load(&path).unwrap();
    assert_eq!(loaded, features);
    std::fs::write(&path, r#"{"format_version": 3, "numeric": [], "categorical": [{"column": "c", "classes": ["x"], "encoding": "hash"}]}"#).unwrap();
    let e = Features::load(&path).unwrap_err();
    assert!(e.to_string().contains("the encoding of \"c\", \"hash\", is not \"index\""), "{e}");

    // A user the training table did not have is an error, or with all-zeros codes the index
    // one past the classes, which the plan's embedding takes as a zero vector.
    let later = parse("km,user,fuel,make\n40,dan,petrol,kia\n50,bob,gas,fiat\n").unwrap();
    let (line, reason) = failure(features.matrix::<f32>(&later));
    assert!(line == 2 && reason.contains("\"dan\" is not one of the 3 classes"), "{line}: {reason}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let strict = features.embedding::<f32, _>(dims, &mut rng).unwrap();
    assert_eq!(
        (strict.rows(), strict.unknown()),
        (&features.embedding_rows(dims)[..], UnknownCategory::Refuse)
    );
    let lenient = features.clone().with_unseen_categories(UnseenCategories::AllZeros);
    let x = lenient.matrix::<f32>(&later).unwrap();
    #[rustfmt::skip]
    assert_eq!(x.as_slice(), &[
        40.0, 3.0, 0.0, 1.0, 1.0, 0.0, // dan: user 3 of 3
        50.0, 1.0, 0.0, 0.0, 2.0, 0.0, // gas: no fuel; fiat: make 2 of 2
    ]);
    let embedding = lenient.embedding::<f32, _>(dims, &mut rng).unwrap();
    assert_eq!(embedding.unknown(), UnknownCategory::ZeroVector);
    assert_eq!(
        (lenient.unknown_category(), features.unknown_category()),
        (UnknownCategory::ZeroVector, UnknownCategory::Refuse)
    );
    let net = feedforward::Network::new(6).push(embedding).unwrap();
    let y = net.output(&x).unwrap();
    assert_eq!(y.column(0).rows(4, 4).as_slice(), &[0.0; 4], "dan's vector");
    assert_eq!(y.column(1).rows(8, 2).as_slice(), &[0.0; 2], "fiat's vector");
    // A plan without indices has no embedding.
    let one_hot = Features::fit(&training, &["km"], &["make"]).unwrap();
    assert!(one_hot.embedding::<f32, _>(dims, &mut rng).is_err());
    // Only columns of categories of the plan can be indices.
    let e = Features::fit(&training, &["km"], &["make"]).unwrap().with_indices(&["km"]).unwrap_err();
    assert!(e.to_string().contains("\"km\""), "{e}");
}
