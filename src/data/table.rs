//! Tables of samples from CSV files, for tabular tasks: a header row of column names, then one
//! sample per row. Pick the input columns as a `features × samples` matrix
//! ([`Table::matrix`]), a regression's targets the same way, or a classifier's labels
//! ([`Table::labels`]).
//!
//! Parsing follows RFC 4180 (quoted cells, the delimiter or line breaks inside quotes) through
//! the `csv` crate; cells are trimmed, and a UTF-8 byte-order mark is skipped. Every cell is
//! read as text and, where it spells a number, as a number too, so a column of words can still
//! serve as labels.
//!
//! **Nothing is guessed.** A row with more or fewer cells than the header, an empty cell (a
//! missing value: this reader does not impute), a cell that is not a number in a column taken
//! as numbers, or `NaN`/`inf`, is an [`Error::Csv`] naming the file, the line and the column.
//! A file longer than [`MAX_FILE_BYTES`] is an error, not an
//! exhausted memory.
//!
//! ```
//! use feedforward::data::table::Table;
//!
//! let text = "area,rooms,city,price\n\
//!             80,3,Lyon,310000\n\
//!             45,2,Paris,420000\n\
//!             120,5,Lyon,455000\n";
//! let table = Table::parse(text.as_bytes(), "houses.csv")?;
//! let x = table.matrix::<f32>(&["area", "rooms"])?; // 2 × 3, one sample per column
//! let y = table.matrix::<f32>(&["price"])?; // 1 × 3
//! let city = table.labels("city")?; // classes in sorted order
//! assert_eq!((x.shape(), y[(0, 1)]), ((2, 3), 420_000.0));
//! assert_eq!((city.classes, city.indices), (vec!["Lyon".to_string(), "Paris".into()], vec![0, 1, 0]));
//! // A column of words is not a feature:
//! let e = table.matrix::<f32>(&["area", "city"]).unwrap_err();
//! assert_eq!(e.to_string(), "houses.csv:2: column \"city\": \"Lyon\" is not a number");
//! # Ok::<(), feedforward::Error>(())
//! ```

use super::csv::MAX_FILE_BYTES;
use crate::{Error, Float, Result};
use nalgebra::DMatrix;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A CSV table read whole: its column names and, per column, every cell. `{:?}` shows the
/// file, the column names and the number of rows, not the cells.
#[derive(Clone, PartialEq)]
pub struct Table {
    path: PathBuf,
    names: Vec<String>,
    columns: Vec<Column>,
    /// The file line of each row (a quoted cell may span lines).
    lines: Vec<usize>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("path", &self.path)
            .field("columns", &self.names)
            .field("rows", &self.rows())
            .finish_non_exhaustive()
    }
}

/// One column's cells as read, and as numbers where every cell is one.
#[derive(Clone, Debug, PartialEq)]
struct Column {
    text: Vec<String>,
    /// The values, when every cell is a finite number; otherwise the first row that is not.
    numbers: std::result::Result<Vec<f64>, usize>,
}

/// A classifier's targets from a column: each row's class index, and the classes' names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels {
    /// The class of each row, an index into `classes`.
    pub indices: Vec<usize>,
    /// The distinct values of the column, sorted: numerically when every value is a number (so
    /// labels `0`…`k−1` map to themselves), as text otherwise.
    pub classes: Vec<String>,
}

impl Table {
    /// Reads the CSV file at `path` (comma-separated, with a header row).
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        Table::read_with_delimiter(path, b',')
    }

    /// [`read`](Table::read) with another delimiter (`b';'`, `b'\t'`).
    pub fn read_with_delimiter(path: impl AsRef<Path>, delimiter: u8) -> Result<Self> {
        let path = path.as_ref();
        let file =
            std::fs::File::open(path).map_err(|e| Error::io(path, e, "a CSV table with a header row"))?;
        Table::parse_with_delimiter(file, path, delimiter)
    }

    /// Parses a comma-separated table from any reader; `path` only names the source in errors.
    pub fn parse(reader: impl Read, path: impl Into<PathBuf>) -> Result<Self> {
        Table::parse_with_delimiter(reader, path, b',')
    }

    /// [`parse`](Table::parse) with another delimiter (`b';'`, `b'\t'`).
    pub fn parse_with_delimiter(reader: impl Read, path: impl Into<PathBuf>, delimiter: u8) -> Result<Self> {
        let path = path.into();
        let err = |line: usize, reason: String| Error::Csv { path: path.clone(), line, reason };
        let mut bytes = Vec::new();
        reader
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e, "a CSV table with a header row"))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(err(1, format!("the file is longer than the limit of {MAX_FILE_BYTES} bytes")));
        }
        // The csv crate's own line count lags behind after CRLF line ends: count them here, from
        // the first byte of the record that is not a line end.
        let newlines: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] == b'\n').collect();
        let line_at = |position: Option<&::csv::Position>| {
            let start = position.map_or(0, |p| p.byte() as usize).min(bytes.len());
            let start = start + bytes[start..].iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
            1 + newlines.partition_point(|&n| n < start)
        };
        let mut csv = ::csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .trim(::csv::Trim::All)
            .from_reader(bytes.as_slice());
        let mut records = csv.records();
        // (The csv crate skips a UTF-8 byte-order mark, as spreadsheets write.)
        let header = match records.next() {
            None => return Err(err(1, "the file is empty: a table needs a header row".into())),
            Some(Err(e)) => return Err(err(line_at(e.position()), format!("unreadable header: {e}"))),
            Some(Ok(record)) => record,
        };
        let names: Vec<String> = header.iter().map(str::to_string).collect();
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                return Err(err(1, format!("column {} of the header has no name", i + 1)));
            }
            if names[..i].contains(name) {
                return Err(err(1, format!("two columns are named {name:?}")));
            }
        }
        let mut columns: Vec<Vec<String>> = vec![Vec::new(); names.len()];
        let mut lines = Vec::new();
        for record in records {
            let record = record.map_err(|e| err(line_at(e.position()), format!("unreadable row: {e}")))?;
            let line = line_at(record.position());
            if record.len() != names.len() {
                return Err(err(line, format!("{} cells, the header has {}", record.len(), names.len())));
            }
            for ((cell, column), name) in record.iter().zip(&mut columns).zip(&names) {
                if cell.is_empty() {
                    return Err(err(
                        line,
                        format!("column {name:?} is empty (a missing value: fill it in first)"),
                    ));
                }
                column.push(cell.to_string());
            }
            lines.push(line);
        }
        let columns = columns
            .into_iter()
            .map(|text| {
                let numbers = text
                    .iter()
                    .enumerate()
                    .map(|(row, cell)| cell.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or(row))
                    .collect();
                Column { text, numbers }
            })
            .collect();
        Ok(Table { path, names, columns, lines })
    }

    /// The column names, in file order.
    #[must_use]
    pub fn column_names(&self) -> &[String] {
        &self.names
    }

    /// Rows of data (the header not counted).
    #[must_use]
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// Every column name but `excluded` (the targets, an identifier), in file order: the
    /// inputs of a model that uses all the rest.
    #[must_use]
    pub fn columns_except(&self, excluded: &[&str]) -> Vec<&str> {
        self.names.iter().map(String::as_str).filter(|n| !excluded.contains(n)).collect()
    }

    /// The columns `names`, in that order, as a `names.len() × rows` matrix: one sample per
    /// column, as a network takes it. Every cell must be a finite number.
    pub fn matrix<T: Float>(&self, names: &[&str]) -> Result<DMatrix<T>> {
        let mut values = Vec::with_capacity(names.len());
        for &name in names {
            let column = self.column(name)?;
            match &column.numbers {
                Ok(numbers) => values.push(numbers),
                Err(row) => {
                    let cell = &column.text[*row];
                    let what = if cell.parse::<f64>().is_ok() {
                        "is not a finite number"
                    } else {
                        "is not a number"
                    };
                    return Err(self.error(*row, format!("column {name:?}: {cell:?} {what}")));
                }
            }
        }
        Ok(DMatrix::from_fn(names.len(), self.rows(), |i, j| T::lit(values[i][j])))
    }

    /// The column `name` as class labels: its distinct values sorted (numerically when they
    /// are all numbers), and each row's index among them.
    pub fn labels(&self, name: &str) -> Result<Labels> {
        let column = self.column(name)?;
        let mut classes: Vec<&str> = column.text.iter().map(String::as_str).collect();
        match &column.numbers {
            // Numbers by value, so that "10" follows "9" and "1.0" is "1"'s class.
            Ok(numbers) => {
                let mut order: Vec<f64> = numbers.clone();
                order.sort_by(f64::total_cmp);
                order.dedup();
                let indices = numbers
                    .iter()
                    .map(|v| order.binary_search_by(|c| c.total_cmp(v)).expect("every value is in the order"))
                    .collect();
                let classes = order
                    .iter()
                    .map(|v| {
                        let first = numbers.iter().position(|n| n == v).expect("a value of the column");
                        column.text[first].clone()
                    })
                    .collect();
                Ok(Labels { indices, classes })
            }
            Err(_) => {
                classes.sort_unstable();
                classes.dedup();
                let indices = column
                    .text
                    .iter()
                    .map(|cell| classes.binary_search(&cell.as_str()).expect("every cell is a class"))
                    .collect();
                Ok(Labels { indices, classes: classes.into_iter().map(str::to_string).collect() })
            }
        }
    }

    fn column(&self, name: &str) -> Result<&Column> {
        let index = self.names.iter().position(|n| n == name).ok_or_else(|| {
            self.error_at(1, format!("no column is named {name:?}; the columns are {:?}", self.names))
        })?;
        Ok(&self.columns[index])
    }

    /// An error at data row `row`.
    fn error(&self, row: usize, reason: String) -> Error {
        self.error_at(self.lines[row], reason)
    }

    fn error_at(&self, line: usize, reason: String) -> Error {
        Error::Csv { path: self.path.clone(), line, reason }
    }
}
