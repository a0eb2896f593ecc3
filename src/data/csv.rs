//! Kaggle's digit-recognizer CSVs, and its submission format.
//!
//! `train.csv`: a header `label,pixel0,…,pixel783`, then one image a line, the label (a digit,
//! 0 to 9) first. `test.csv`: the same without the `label` column. Pixels are numbers in
//! 0..=255, scaled to [0, 1]. Every bad row is an error naming its line (line 1 is the first).
//!
//! **The header rule.** Line 1 is a header when every cell on it is a column name: a letter
//! followed by letters, digits or `_` (`label`, `pixel0`), and not a number's spelling (`nan`,
//! `inf`). Anything else on line 1 is data, validated like every other row: a first row with a
//! typo, an empty cell or a quoted cell is an error naming line 1, never silently dropped. The
//! file is labelled when its header's first column is `label` (any case); a file without a
//! header holds pixels only. A UTF-8 byte-order mark at the start (what spreadsheet tools
//! write) is skipped.
//!
//! **Limits.** A line longer than [`MAX_LINE_BYTES`], or a file longer than [`MAX_FILE_BYTES`]
//! (`/dev/zero`, a runaway pipe), is an error that names the limit, not an exhausted memory.

use super::{DIGITS, Dataset};
use crate::error::plural;
use crate::{Error, Result};
use nalgebra::DMatrix;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

const CSV_HINT: &str = "Kaggle's digit-recognizer CSVs (train.csv, test.csv) come from its competition page; \
this repository does not ship them.";

/// The longest line accepted (a Kaggle row is about 3 KB).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// The longest file accepted (Kaggle's `train.csv` is 76 MB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Reads a Kaggle digit-recognizer CSV, with labels if the first column is `label`.
pub fn read_kaggle_csv(path: impl AsRef<Path>) -> Result<Dataset> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e, CSV_HINT))?;
    parse_kaggle_csv(std::io::BufReader::new(file), path)
}

/// Parses a Kaggle CSV from any reader; `path` only names the source in errors. See the
/// [module docs](self) for the header rule and the limits.
pub fn parse_kaggle_csv(reader: impl BufRead, path: impl Into<PathBuf>) -> Result<Dataset> {
    parse_with_limits(reader, path.into(), MAX_LINE_BYTES, MAX_FILE_BYTES)
}

fn parse_with_limits(reader: impl BufRead, path: PathBuf, max_line: usize, max_file: u64) -> Result<Dataset> {
    let err = |line: usize, reason: String| Error::Csv { path: path.clone(), line, reason };
    let mut reader = reader.take(max_file + 1);
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let (mut labelled, mut columns) = (false, None);
    let mut rows = 0;
    let mut raw = Vec::new();
    for n in 1.. {
        raw.clear();
        let read = std::io::Read::take(&mut reader, max_line as u64 + 1)
            .read_until(b'\n', &mut raw)
            .map_err(|e| err(n, format!("unreadable line: {e}")))?;
        if reader.limit() == 0 {
            return Err(err(n, format!("the file is longer than the limit of {max_file} bytes")));
        }
        if read == 0 {
            break;
        }
        if raw.len() > max_line {
            return Err(err(n, format!("line longer than the limit of {max_line} bytes")));
        }
        let line = std::str::from_utf8(&raw).map_err(|e| err(n, format!("unreadable line: {e}")))?;
        let line = line.trim_end_matches(['\n', '\r']);
        let line = if n == 1 { line.strip_prefix('\u{feff}').unwrap_or(line) } else { line };
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if n == 1 && cells.iter().all(|c| is_column_name(c)) {
            labelled = cells[0].eq_ignore_ascii_case("label");
            columns = Some(cells.len());
            continue;
        }
        let expected = *columns.get_or_insert(cells.len());
        if cells.len() != expected {
            return Err(err(
                n,
                format!("{}, expected {expected} as in the first line", plural(cells.len(), "column")),
            ));
        }
        let mut cells = cells.into_iter().enumerate();
        if labelled {
            let (_, cell) = cells.next().expect("a labelled header has at least one column");
            let label = cell
                .parse::<usize>()
                .ok()
                .filter(|&l| l < DIGITS)
                .ok_or_else(|| err(n, format!("label {cell:?} is not a digit 0..=9")))?;
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

/// A column name of a header: a letter, then letters, digits or `_`, and not a number's
/// spelling (`nan`, `inf`, `infinity` parse as numbers).
fn is_column_name(cell: &str) -> bool {
    let mut chars = cell.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && cell.parse::<f64>().is_err()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits, scaled down: a file of short lines past the file limit, a line past the line
    /// limit, and files just within both.
    #[test]
    fn limits_are_errors_that_name_them() {
        let parse = |text: &str, line: usize, file: u64| {
            parse_with_limits(text.as_bytes(), "x.csv".into(), line, file)
        };
        let rows = "1,2\n".repeat(10); // 40 bytes
        assert_eq!(parse(&rows, 4, 40).unwrap().len(), 10);
        match parse(&rows, 4, 39) {
            Err(Error::Csv { line: 10, reason, .. }) => {
                assert!(reason.contains("limit of 39 bytes"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        match parse("1,2\n1,22\n", 4, 100) {
            Err(Error::Csv { line: 2, reason, .. }) => {
                assert!(reason.contains("limit of 4 bytes"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
