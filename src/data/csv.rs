//! Kaggle's digit-recognizer CSVs, and its submission format.
//!
//! `train.csv`: a header `label,pixel0,…,pixel783`, then one image a line, the label first.
//! `test.csv`: the same without the `label` column. Pixels are numbers in 0..=255, scaled to
//! [0, 1]. Every bad row is an error naming its line (the header is line 1).

use super::Dataset;
use crate::{Error, Result};
use nalgebra::DMatrix;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

const CSV_HINT: &str = "Kaggle's digit-recognizer CSVs (train.csv, test.csv) come from its competition page; \
this repository does not ship them.";

/// Reads a Kaggle digit-recognizer CSV, with labels if the first column is `label`.
pub fn read_kaggle_csv(path: impl AsRef<Path>) -> Result<Dataset> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e, CSV_HINT))?;
    parse_kaggle_csv(std::io::BufReader::new(file), path)
}

/// Parses a Kaggle CSV from any reader; `path` only names the source in errors.
///
/// The header decides the layout: `label` first means labelled, and every row must have as many
/// cells as the header. A file without a header is read as unlabelled pixels.
pub fn parse_kaggle_csv(reader: impl BufRead, path: impl Into<PathBuf>) -> Result<Dataset> {
    let path = path.into();
    let err = |line: usize, reason: String| Error::Csv { path: path.clone(), line, reason };
    let lines = reader.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let (mut labelled, mut columns) = (false, None);
    let mut rows = 0;
    for (n, line) in lines {
        let line = line.map_err(|e| err(n, format!("unreadable line: {e}")))?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if columns.is_none() && n == 1 && cells.iter().any(|c| c.parse::<f64>().is_err()) {
            labelled = cells[0].eq_ignore_ascii_case("label");
            columns = Some(cells.len());
            continue;
        }
        let expected = *columns.get_or_insert(cells.len());
        if cells.len() != expected {
            return Err(err(n, format!("{} columns, expected {expected} as in the first line", cells.len())));
        }
        let mut cells = cells.into_iter().enumerate();
        if labelled {
            let (_, cell) = cells.next().expect("a labelled header has at least one column");
            let label =
                cell.parse::<usize>().map_err(|_| err(n, format!("label {cell:?} is not a class number")))?;
            labels.push(label);
        }
        for (col, cell) in cells {
            let v: f32 =
                cell.parse().map_err(|_| err(n, format!("column {}: {cell:?} is not a number", col + 1)))?;
            if !(0.0..=255.0).contains(&v) {
                return Err(err(n, format!("column {}: pixel {v} is outside 0..=255", col + 1)));
            }
            pixels.push(v / 255.0);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(err(1, "no data rows".into()));
    }
    let features = pixels.len() / rows;
    if features == 0 {
        return Err(err(1, "rows hold a label but no pixels".into()));
    }
    Dataset::new(DMatrix::from_vec(features, rows, pixels), labelled.then_some(labels))
}

/// Writes a data set in Kaggle's CSV layout (`label,pixel0,…` when labelled), pixels as
/// integers 0..=255.
pub fn write_kaggle_csv(path: impl AsRef<Path>, data: &Dataset) -> Result<()> {
    let path = path.as_ref();
    write_with(path, |w| {
        let labels = data.labels();
        let mut header: Vec<String> = (0..data.features()).map(|i| format!("pixel{i}")).collect();
        if labels.is_some() {
            header.insert(0, "label".into());
        }
        writeln!(w, "{}", header.join(","))?;
        for i in 0..data.len() {
            let mut cells: Vec<String> =
                data.image(i).iter().map(|p| format!("{}", (p * 255.0).round() as u32)).collect();
            if let Some(l) = labels {
                cells.insert(0, l[i].to_string());
            }
            writeln!(w, "{}", cells.join(","))?;
        }
        Ok(())
    })
}

/// Writes a Kaggle submission: header `ImageId,Label`, then one row per prediction, `ImageId`
/// counting from 1.
pub fn write_submission(path: impl AsRef<Path>, predictions: &[usize]) -> Result<()> {
    write_with(path.as_ref(), |w| {
        writeln!(w, "ImageId,Label")?;
        for (i, p) in predictions.iter().enumerate() {
            writeln!(w, "{},{p}", i + 1)?;
        }
        Ok(())
    })
}

fn write_with(path: &Path, body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let mut w = crate::error::create_file(path)?;
    body(&mut w).and_then(|()| w.flush()).map_err(Error::at(path))
}
