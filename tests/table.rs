//! `data::table`: CSV tables read as a network takes them, quoted cells and other dialects, and
//! every kind of bad file an error naming the file, the line and the column.
#![cfg(feature = "data")]

use feedforward::Error;
use feedforward::data::table::{Labels, Table};

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
    assert_eq!((line, reason.as_str()), (2, "column \"name\": \"Smith, J.\" is not a number"));

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
    let cases: [(&str, usize, &str); 8] = [
        ("", 1, "empty"),
        ("a,,c\n1,2,3\n", 1, "column 2 of the header has no name"),
        ("a,b,a\n1,2,3\n", 1, "two columns are named \"a\""),
        ("a,b\n1,2\n3\n", 3, "1 cells, the header has 2"),
        ("a,b\n1,2\n3,4,5\n", 3, "3 cells, the header has 2"),
        ("a,b\n1,2\n3, \n", 3, "column \"b\" is empty"),
        ("a,b\n1,2\n\"3,4\n", 3, "1 cells, the header has 2"),
        ("a,b\n1,2\n3,\"\"\n", 3, "column \"b\" is empty"),
    ];
    for (text, line, reason) in cases {
        let (l, r) = failure(parse(text));
        assert!(l == line && r.contains(reason), "{text:?}: line {l}: {r}");
    }
    let t = parse("a,b\n1,x\n2,nan\n3,inf\n").unwrap();
    let (l, r) = failure(t.matrix::<f32>(&["a", "b"]));
    assert_eq!((l, r.as_str()), (2, "column \"b\": \"x\" is not a number"));
    let t = parse("a,b\n1,2\n2,NaN\n3,inf\n").unwrap();
    let (l, r) = failure(t.matrix::<f32>(&["b"]));
    assert_eq!((l, r.as_str()), (3, "column \"b\": \"NaN\" is not a finite number"));
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

/// A regression from a CSV file on disk, end to end: read, standardize, train, predict.
#[test]
fn a_network_trains_on_a_table_read_from_disk() {
    use feedforward::metrics::RegressionMetrics;
    use feedforward::train::{self, Batching, TrainConfig};
    use feedforward::{Adam, MeanSquaredError, MlpConfig, Network, Standardize};
    use rand::SeedableRng;

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
    let mut net = Network::mlp(&[2, 16, 1], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(1))
        .unwrap()
        .insert(0, Standardize::fit(&x).unwrap())
        .unwrap()
        .push(Standardize::fit(&y).unwrap().inverse())
        .unwrap();
    let mut adam = Adam::with_learning_rate(1e-2).unwrap();
    let fit = TrainConfig {
        epochs: 100,
        batching: Batching::Minibatch { size: 32, shuffle: true },
        ..TrainConfig::default()
    };
    train::fit(&mut net, &mut adam, &MeanSquaredError, train::Data::new(&x, &y), &fit, |_, _, _| {}).unwrap();
    let r2 = RegressionMetrics::new(&net.output(&x).unwrap(), &y).unwrap().r2.unwrap();
    assert!(r2 > 0.99, "R² {r2}");
}
