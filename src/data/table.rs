//! Tables of samples from CSV files, for tabular tasks: a header row of column names, then one
//! sample per row. Pick the input columns as a `features × samples` matrix
//! ([`Table::matrix`]), a regression's targets the same way, or a classifier's labels
//! ([`Table::labels`]). Columns of categories become inputs through [`OneHot`] codes, fitted
//! on the training table and reused on every later one; [`Features`] holds a table's whole
//! input plan (numeric columns, then codes), and saves it beside the model. A column of many
//! categories can instead enter as one row of class indices ([`OneHot::indices`]) for an
//! [`Embedding`](crate::Embedding).
//!
//! Parsing follows RFC 4180 (quoted cells, the delimiter or line breaks inside quotes) through
//! the `csv` crate; cells are trimmed, and a UTF-8 byte-order mark is skipped. Every cell is
//! read as text and, where it spells a number, as a number too, so a column of words can still
//! serve as labels.
//!
//! **Nothing is guessed.** A row with more or fewer cells than the header, a cell that is not
//! a number in a column taken as numbers, or `NaN`/`inf`, is an [`Error::Csv`] naming the file,
//! the line and the column. An empty cell is a missing value, and so is a cell that says one
//! of the markers named in [`TableOptions::missing`] (R's `NA`): the table holds it, and taking
//! its column as numbers or labels is an error naming its line, unless a [`Missing`] policy of
//! [`Features::fit_with`] fills it. A file longer than [`MAX_FILE_BYTES`] is an error, not an
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
//! assert_eq!(
//!     e.to_string(),
//!     "houses.csv:2: column \"city\": \"Lyon\" is not a number (for a column of categories, see data::table::Features)"
//! );
//! # Ok::<(), feedforward::Error>(())
//! ```

use super::csv::MAX_FILE_BYTES;
pub use super::missing::{FillCategories, FillNumbers, Missing};
use crate::split::{
    fold_parts, group_fold_parts, group_split_indices, kept_besides, split_indices, stratified_fold_parts,
    stratified_indices,
};
use crate::train::{FoldConfig, SplitConfig};
use crate::{Error, Float, Result};
use nalgebra::DMatrix;
use std::collections::{HashMap, HashSet};
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

/// One column's cells as read, which of them are missing values, and the cells as numbers
/// where every cell present is one.
#[derive(Clone, Debug, PartialEq)]
struct Column {
    text: Vec<String>,
    /// Whether each cell is a missing value: empty, or one of the file's markers.
    missing: Vec<bool>,
    /// The values (`None` where missing), when every cell present is a finite number;
    /// otherwise the first row whose cell is not.
    numbers: std::result::Result<Vec<Option<f64>>, usize>,
}

impl Column {
    fn new(text: Vec<String>, missing: Vec<bool>) -> Self {
        let numbers = (text.iter().zip(&missing).enumerate())
            .map(|(row, (cell, &missing))| match missing {
                true => Ok(None),
                false => cell.parse::<f64>().ok().filter(|v| v.is_finite()).map(Some).ok_or(row),
            })
            .collect();
        Column { text, missing, numbers }
    }

    /// The first row whose cell is a missing value.
    fn first_missing(&self) -> Option<usize> {
        self.missing.iter().position(|&m| m)
    }
}

/// How [`Table::read_with`] and [`Table::parse_with`] read a table.
///
/// ```
/// use feedforward::data::table::{Table, TableOptions};
///
/// // R writes a missing value as NA.
/// let options = TableOptions { missing: vec!["NA".into()], ..TableOptions::default() };
/// let table = Table::parse_with("mass;sex\n3750;male\nNA;NA\n".as_bytes(), "penguins.csv", &TableOptions { delimiter: b';', ..options })?;
/// assert_eq!((table.missing_cells("mass")?, table.missing_cells("sex")?), (1, 1));
/// assert!(table.is_numeric("mass")?);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// The byte between cells (default `b','`; `b';'` and `b'\t'` are common).
    pub delimiter: u8,
    /// Cells that stand for a missing value, as written (after trimming), besides an empty
    /// cell, which always does: `"NA"` in R's files, `"?"` in some others (default none).
    pub missing: Vec<String>,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions { delimiter: b',', missing: Vec::new() }
    }
}

/// A table cut in two by [`Table::split`]: the rows to train on and those held out, each in
/// the file's order.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSplit {
    /// The rows to train on (and to fit [`Features`] on).
    pub kept: Table,
    /// The rows held out (a test or validation part).
    pub held_out: Table,
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
        Table::read_with(path, &TableOptions::default())
    }

    /// [`read`](Table::read) with another delimiter (`b';'`, `b'\t'`).
    pub fn read_with_delimiter(path: impl AsRef<Path>, delimiter: u8) -> Result<Self> {
        Table::read_with(path, &TableOptions { delimiter, ..TableOptions::default() })
    }

    /// [`read`](Table::read) with `options`: a delimiter, and markers of missing values.
    pub fn read_with(path: impl AsRef<Path>, options: &TableOptions) -> Result<Self> {
        let path = path.as_ref();
        let file =
            std::fs::File::open(path).map_err(|e| Error::io(path, e, "a CSV table with a header row"))?;
        Table::parse_with(file, path, options)
    }

    /// Parses a comma-separated table from any reader; `path` only names the source in errors.
    pub fn parse(reader: impl Read, path: impl Into<PathBuf>) -> Result<Self> {
        Table::parse_with(reader, path, &TableOptions::default())
    }

    /// [`parse`](Table::parse) with another delimiter (`b';'`, `b'\t'`).
    pub fn parse_with_delimiter(reader: impl Read, path: impl Into<PathBuf>, delimiter: u8) -> Result<Self> {
        Table::parse_with(reader, path, &TableOptions { delimiter, ..TableOptions::default() })
    }

    /// [`parse`](Table::parse) with `options`: a delimiter, and markers of missing values.
    pub fn parse_with(reader: impl Read, path: impl Into<PathBuf>, options: &TableOptions) -> Result<Self> {
        let delimiter = options.delimiter;
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
        let rows = records.map(|record| {
            let record = record.map_err(|e| err(line_at(e.position()), format!("unreadable row: {e}")))?;
            Ok((line_at(record.position()), record.iter().map(str::to_string).collect()))
        });
        Table::from_lines(path.clone(), names, rows, &options.missing)
    }

    /// A table from cells in memory (a database's rows, the fields of a request to a model):
    /// the column `names`, then each row's cells in that order, read as a file's would be
    /// (trimmed; missing when empty or one of `options.missing`, whose `delimiter` is unused).
    /// `source` names them in errors, which give a row the line it would have in a file: row 0
    /// is line 2, under the header.
    ///
    /// ```
    /// use feedforward::data::table::{Features, Table, TableOptions};
    ///
    /// let training = Table::parse("area,city\n80,Lyon\n45,Paris\n".as_bytes(), "a.csv")?;
    /// let features = Features::fit(&training, &["area"], &["city"])?;
    /// // A request's fields, no CSV to write (a comma in a value is just a comma).
    /// let request = Table::from_rows("request", &["city", "area"], &[["Paris", "61.5"]], &TableOptions::default())?;
    /// assert_eq!(features.matrix::<f32>(&request)?.as_slice(), &[61.5, 0.0, 1.0]);
    /// let bad = Table::from_rows("request", &["city", "area"], &[["Paris", "big"]], &TableOptions::default())?;
    /// let e = features.matrix::<f32>(&bad).unwrap_err();
    /// assert!(e.to_string().starts_with("request:2: column \"area\": \"big\" is not a number"));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn from_rows<R: AsRef<[S]>, S: AsRef<str>>(
        source: impl Into<PathBuf>,
        names: &[&str],
        rows: &[R],
        options: &TableOptions,
    ) -> Result<Self> {
        let names = names.iter().map(|n| n.trim().to_string()).collect();
        let rows = (rows.iter().enumerate()).map(|(i, row)| {
            Ok((i + 2, row.as_ref().iter().map(|c| c.as_ref().trim().to_string()).collect()))
        });
        Table::from_lines(source.into(), names, rows, &options.missing)
    }

    /// A table from its column `names` and its rows, each with its line in the source: checks
    /// the names and each row's length, and marks the cells that are empty or one of
    /// `markers` as missing values.
    fn from_lines(
        path: PathBuf,
        names: Vec<String>,
        rows: impl Iterator<Item = Result<(usize, Vec<String>)>>,
        markers: &[String],
    ) -> Result<Self> {
        let err = |line: usize, reason: String| Error::Csv { path: path.clone(), line, reason };
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
        for row in rows {
            let (line, cells) = row?;
            if cells.len() != names.len() {
                return Err(err(line, format!("{} cells, the header has {}", cells.len(), names.len())));
            }
            for (cell, column) in cells.into_iter().zip(&mut columns) {
                column.push(cell);
            }
            lines.push(line);
        }
        let is_missing = |cell: &String| cell.is_empty() || markers.contains(cell);
        let columns = (columns.into_iter())
            .map(|text| {
                let missing = text.iter().map(is_missing).collect();
                Column::new(text, missing)
            })
            .collect();
        Ok(Table { path, names, columns, lines })
    }

    /// The rows `rows` (indices into this table, 0 for the first row after the header), in
    /// that order, a row named twice taken twice; errors about them still name their lines in
    /// the file. A row beyond the table is an error. With [`cells`](Table::cells), any cut of
    /// the rows: by a date, or every row of some users (a group held out whole).
    ///
    /// ```
    /// use feedforward::data::table::Table;
    ///
    /// let table = Table::parse("user,rating\nann,4\nbob,2\nann,5\ncid,3\n".as_bytes(), "ratings.csv")?;
    /// let users = table.cells("user")?;
    /// let (bob_or_cid, rest): (Vec<usize>, Vec<usize>) =
    ///     (0..table.rows()).partition(|&r| matches!(users[r], Some("bob" | "cid")));
    /// let (held_out, kept) = (table.select(&bob_or_cid)?, table.select(&rest)?);
    /// assert_eq!((held_out.rows(), kept.rows()), (2, 2));
    /// assert_eq!(kept.cells("rating")?, [Some("4"), Some("5")]);
    /// assert!(table.select(&[4]).unwrap_err().to_string().contains("ratings.csv"));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn select(&self, rows: &[usize]) -> Result<Table> {
        match rows.iter().find(|&&r| r >= self.rows()) {
            Some(&r) => Err(Error::shape(
                format!("the rows to select from {}", self.path.display()),
                format!("rows 0..{} (the table's)", self.rows()),
                format!("row {r}"),
            )),
            None => Ok(self.pick(rows)),
        }
    }

    /// The rows `rows`, each below [`rows`](Table::rows): [`select`](Table::select) unchecked.
    fn pick(&self, rows: &[usize]) -> Table {
        let columns = (self.columns.iter())
            .map(|c| {
                let text = rows.iter().map(|&r| c.text[r].clone()).collect();
                Column::new(text, rows.iter().map(|&r| c.missing[r]).collect())
            })
            .collect();
        let lines = rows.iter().map(|&r| self.lines[r]).collect();
        Table { path: self.path.clone(), names: self.names.clone(), columns, lines }
    }

    /// The rows whose cells in `columns` are all present (pandas' `dropna(subset=…)`), in
    /// order; errors still name their lines in the file. For a target with gaps, say: a sample
    /// without its target cannot be trained on, nor filled in.
    ///
    /// ```
    /// use feedforward::data::table::Table;
    ///
    /// let table = Table::parse("area,price\n80,310\n45,\n,420\n".as_bytes(), "houses.csv")?;
    /// let priced = table.without_missing(&["price"])?;
    /// assert_eq!((table.rows(), priced.rows(), priced.missing_cells("area")?), (3, 2, 1));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn without_missing(&self, columns: &[&str]) -> Result<Table> {
        let columns = columns.iter().map(|&c| self.column(c)).collect::<Result<Vec<_>>>()?;
        let rows: Vec<usize> = (0..self.rows()).filter(|&r| columns.iter().all(|c| !c.missing[r])).collect();
        Ok(self.pick(&rows))
    }

    /// Cuts the table in two as [`train::split`](crate::train::split) cuts a data set of as
    /// many samples with the same `config`: the same rows held out. Split a table before
    /// fitting [`Features`] on it, so that nothing fitted (a fill value, say) sees the rows held
    /// out.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] when `held_out` is 0 or not fewer than the rows.
    pub fn split(&self, config: SplitConfig) -> Result<TableSplit> {
        let (kept, held_out) = split_indices(self.rows(), config)?;
        Ok(TableSplit { kept: self.pick(&kept), held_out: self.pick(&held_out) })
    }

    /// Cuts the table in two as [`train::stratified_split`](crate::train::stratified_split)
    /// cuts a data set whose labels are this table's `column` (as [`Table::labels`] reads it)
    /// with the same `config`: each class in its share of the rows held out, the same rows.
    ///
    /// ```
    /// use feedforward::data::table::Table;
    /// use feedforward::train::SplitConfig;
    ///
    /// let mut text = String::from("x,kind\n");
    /// (0..40).for_each(|i| text.push_str(&format!("{i},{}\n", if i % 8 == 0 { "rare" } else { "common" })));
    /// let table = Table::parse(text.as_bytes(), "kinds.csv")?;
    /// let split = table.stratified_split(SplitConfig { held_out: 8, seed: 1 }, "kind")?;
    /// let rare = split.held_out.labels("kind")?.indices.iter().filter(|&&c| c == 1).count();
    /// assert_eq!((split.held_out.rows(), rare), (8, 1));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    ///
    /// # Errors
    /// A `column` that [`Table::labels`] cannot read (missing, or with gaps), and
    /// [`Error::InvalidHyperparameter`] when `held_out` is 0 or not fewer than the rows.
    pub fn stratified_split(&self, config: SplitConfig, column: &str) -> Result<TableSplit> {
        let (kept, held_out) = stratified_indices(&self.labels(column)?.indices, config)?;
        Ok(TableSplit { kept: self.pick(&kept), held_out: self.pick(&held_out) })
    }

    /// Cuts the table into `config.folds` parts for cross-validation, each held out once, as
    /// [`train::folds`](crate::train::folds) cuts a data set of as many samples: the same rows
    /// in each part. Each [`TableSplit`] is made as the iterator reaches it.
    ///
    /// ```
    /// use feedforward::data::table::Table;
    /// use feedforward::train::FoldConfig;
    ///
    /// let table = Table::parse("x,y\n1,a\n2,b\n3,a\n4,b\n5,a\n".as_bytes(), "five.csv")?;
    /// let sizes: Vec<usize> = table.folds(FoldConfig { folds: 2, seed: 0 })?.map(|f| f.held_out.rows()).collect();
    /// assert_eq!(sizes, [3, 2]);
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] when `folds` is below 2 or above the rows.
    pub fn folds(&self, config: FoldConfig) -> Result<impl ExactSizeIterator<Item = TableSplit> + '_> {
        Ok(self.fold_splits(fold_parts(self.rows(), config)?))
    }

    /// [`Table::folds`] by the classes of `column` (as [`Table::labels`] reads it), as
    /// [`train::stratified_folds`](crate::train::stratified_folds) cuts: each class spread over
    /// the parts in its share.
    ///
    /// # Errors
    /// A `column` that [`Table::labels`] cannot read, and those of [`Table::folds`].
    pub fn stratified_folds(
        &self,
        config: FoldConfig,
        column: &str,
    ) -> Result<impl ExactSizeIterator<Item = TableSplit> + '_> {
        Ok(self.fold_splits(stratified_fold_parts(&self.labels(column)?.indices, config)?))
    }

    /// Cuts the table in two as [`train::group_split`](crate::train::group_split) cuts a data
    /// set whose groups are this table's `column` (as [`Table::labels`] reads it: each distinct
    /// value a group) with the same `config`: every row of a group on the same side.
    ///
    /// ```
    /// use feedforward::data::table::Table;
    /// use feedforward::train::SplitConfig;
    ///
    /// let table = Table::parse("user,rating\nann,4\nbob,2\nann,5\ncid,3\nbob,1\n".as_bytes(), "r.csv")?;
    /// let split = table.group_split(SplitConfig { held_out: 1, seed: 0 }, "user")?;
    /// let (kept, held) = (split.kept.cells("user")?, split.held_out.cells("user")?);
    /// assert!(held.iter().all(|user| !kept.contains(user)));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    ///
    /// # Errors
    /// A `column` that [`Table::labels`] cannot read, and those of
    /// [`train::group_split`](crate::train::group_split).
    pub fn group_split(&self, config: SplitConfig, column: &str) -> Result<TableSplit> {
        let (kept, held_out) = group_split_indices(&self.labels(column)?.indices, config)?;
        Ok(TableSplit { kept: self.pick(&kept), held_out: self.pick(&held_out) })
    }

    /// [`Table::folds`] by the groups of `column` (as [`Table::labels`] reads it), as
    /// [`train::group_folds`](crate::train::group_folds) cuts: every row of a group in the
    /// same part.
    ///
    /// # Errors
    /// A `column` that [`Table::labels`] cannot read, and those of
    /// [`train::group_folds`](crate::train::group_folds).
    pub fn group_folds(
        &self,
        config: FoldConfig,
        column: &str,
    ) -> Result<impl ExactSizeIterator<Item = TableSplit> + '_> {
        Ok(self.fold_splits(group_fold_parts(&self.labels(column)?.indices, None, config)?))
    }

    /// [`Table::group_folds`] for a classification whose classes are the column `labels`: each
    /// class spread over the parts as evenly as whole groups allow, as
    /// [`train::stratified_group_folds`](crate::train::stratified_group_folds) cuts.
    ///
    /// # Errors
    /// A column that [`Table::labels`] cannot read, and those of
    /// [`train::stratified_group_folds`](crate::train::stratified_group_folds).
    pub fn stratified_group_folds(
        &self,
        config: FoldConfig,
        labels: &str,
        groups: &str,
    ) -> Result<impl ExactSizeIterator<Item = TableSplit> + '_> {
        let (labels, groups) = (self.labels(labels)?.indices, self.labels(groups)?.indices);
        Ok(self.fold_splits(group_fold_parts(&groups, Some(&labels), config)?))
    }

    /// Each part of `parts` held out in turn.
    fn fold_splits(&self, parts: Vec<Vec<usize>>) -> impl ExactSizeIterator<Item = TableSplit> + '_ {
        (0..parts.len()).map(move |k| TableSplit {
            kept: self.pick(&kept_besides(&parts, k)),
            held_out: self.pick(&parts[k]),
        })
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
    /// column, as a network takes it. Every cell must be a finite number: a missing value is an
    /// error too ([`Features::fit_with`] can fill it).
    pub fn matrix<T: Float>(&self, names: &[&str]) -> Result<DMatrix<T>> {
        let mut values = Vec::with_capacity(names.len());
        for &name in names {
            values.push(self.numbers(name, None)?);
        }
        Ok(DMatrix::from_fn(names.len(), self.rows(), |i, j| T::lit(values[i][j])))
    }

    /// The column `name` as sample weights (for
    /// [`WeightedTargets`](crate::loss::WeightedTargets)): each a finite number ≥ 0, not all 0.
    /// A cell that is not one, or missing, is an error naming its line.
    ///
    /// ```
    /// use feedforward::data::table::Table;
    /// let table = Table::parse("x,weight\n1,0.5\n2,2\n".as_bytes(), "survey.csv")?;
    /// assert_eq!(table.sample_weights("weight")?, [0.5, 2.0]);
    /// let negative = Table::parse("x,weight\n1,0.5\n2,-2\n".as_bytes(), "survey.csv")?;
    /// let error = negative.sample_weights("weight").unwrap_err().to_string();
    /// assert_eq!(error, "survey.csv:3: column \"weight\": -2 is not a sample weight (at least 0)");
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn sample_weights(&self, name: &str) -> Result<Vec<f64>> {
        let weights = self.numbers(name, None)?;
        if let Some(row) = weights.iter().position(|w| *w < 0.0) {
            let reason = format!("column {name:?}: {} is not a sample weight (at least 0)", weights[row]);
            return Err(self.error(row, reason));
        }
        if !weights.is_empty() && weights.iter().all(|&w| w == 0.0) {
            // Line 1, the header: the column as a whole is at fault.
            return Err(self.error_at(
                1,
                format!("column {name:?}: every sample weight is 0 (nothing to average over)"),
            ));
        }
        Ok(weights)
    }

    /// The column `name` as numbers, its missing values filled with `fill`, or an error naming the
    /// first cell that is not a number, or missing without a fill.
    fn numbers(&self, name: &str, fill: Option<f64>) -> Result<Vec<f64>> {
        (self.numbers_or_missing(name)?.iter().enumerate())
            .map(|(row, n)| n.or(fill).ok_or_else(|| self.missing(row, name)))
            .collect()
    }

    /// The column `name` as numbers, `None` where missing, or an error naming the first cell
    /// that is not a number.
    fn numbers_or_missing(&self, name: &str) -> Result<&[Option<f64>]> {
        let column = self.column(name)?;
        let row = match &column.numbers {
            Ok(numbers) => return Ok(numbers),
            Err(row) => *row,
        };
        let cell = &column.text[row];
        // What other tools write for a missing value: name the option that reads it as one.
        const MARKERS: [&str; 9] = ["NA", "N/A", "n/a", "na", "null", "NULL", "None", "?", "-"];
        let marker = MARKERS.contains(&cell.as_str()) || cell.eq_ignore_ascii_case("nan");
        // A column without a single number is likely one of categories.
        let what = if marker {
            "is not a number (if it marks a missing value, see data::table::TableOptions::missing)"
        } else if cell.parse::<f64>().is_ok() {
            "is not a finite number"
        } else if column.text.iter().all(|c| c.parse::<f64>().is_err()) {
            "is not a number (for a column of categories, see data::table::Features)"
        } else {
            "is not a number"
        };
        Err(self.error(row, format!("column {name:?}: {cell:?} {what}")))
    }

    /// The error for the missing value of column `name` at data row `row`.
    fn missing(&self, row: usize, name: &str) -> Error {
        let cell = self.column(name).map(|c| c.text[row].as_str()).unwrap_or_default();
        let what = if cell.is_empty() { "empty".to_string() } else { format!("{cell:?}") };
        let reason = format!(
            "column {name:?} is {what} (a missing value: fill it in the file, or see data::table::Missing)"
        );
        self.error(row, reason)
    }

    /// The column `name` as class labels: its distinct values sorted (numerically when they
    /// are all numbers), and each row's index among them. A missing value is an error. The
    /// classes are this table's own: label the rows of another table (a test part) with
    /// [`labels_with`](Table::labels_with) and these classes.
    pub fn labels(&self, name: &str) -> Result<Labels> {
        let column = self.column(name)?;
        if let Some(row) = column.first_missing() {
            return Err(self.missing(row, name));
        }
        let (classes, indices) = classes_of(column);
        let indices = indices.into_iter().map(|i| i.expect("no cell is empty")).collect();
        Ok(Labels { indices, classes })
    }

    /// The column `name` as class indices into `classes`, those of the table a model was
    /// trained on (its [`labels`](Table::labels)`.classes`): for a table of other rows (a test
    /// part, new data), whose own [`labels`](Table::labels) would number only the classes it
    /// has, so that a class it lacks would shift the others' indices. A cell of none of the
    /// `classes` is an error naming its line, and so is a missing value; classes match as text,
    /// or as numbers when both spell one.
    ///
    /// ```
    /// use feedforward::data::table::Table;
    /// let training = Table::parse("species\nAdelie\nChinstrap\nGentoo\n".as_bytes(), "train.csv")?;
    /// let test = Table::parse("species\nGentoo\nAdelie\n".as_bytes(), "test.csv")?;
    /// let classes = training.labels("species")?.classes;
    /// assert_eq!(test.labels_with("species", &classes)?.indices, [2, 0]);
    /// assert_eq!(test.labels("species")?.indices, [1, 0]); // its own numbering: Gentoo is 1
    /// let odd = Table::parse("species\nEmperor\n".as_bytes(), "odd.csv")?;
    /// assert!(odd.labels_with("species", &classes).is_err());
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    ///
    /// # Errors
    /// An unknown column, a cell of none of `classes` or a missing one (naming its line), and
    /// no `classes` or a class given twice.
    pub fn labels_with(&self, name: &str, classes: &[String]) -> Result<Labels> {
        let code = OneHot::new(name, classes.to_vec())?;
        let indices = code.class_indices(self, None, UnseenCategories::Refuse, "the training labels")?;
        let indices = indices.into_iter().map(|i| i.expect("refused unless a class")).collect();
        Ok(Labels { indices, classes: classes.to_vec() })
    }

    /// Whether the column `name` holds numbers: every cell that is not missing is a finite
    /// number, and at least one is (a numeric feature; the others hold categories, for a
    /// [`OneHot`] code).
    pub fn is_numeric(&self, name: &str) -> Result<bool> {
        let column = self.column(name)?;
        Ok(column.numbers.as_ref().is_ok_and(|n| n.iter().any(Option::is_some)))
    }

    /// The cells of the column `name` as read, one per row (trimmed, without the quotes of a
    /// quoted cell), `None` for a missing value (empty, or a marker of
    /// [`TableOptions::missing`]). An error if the table has no such column.
    pub fn cells(&self, name: &str) -> Result<Vec<Option<&str>>> {
        let column = self.column(name)?;
        Ok(column
            .text
            .iter()
            .zip(&column.missing)
            .map(|(text, &missing)| (!missing).then_some(text.as_str()))
            .collect())
    }

    /// How many cells of the column `name` are missing values (empty, or a marker of
    /// [`TableOptions::missing`]).
    pub fn missing_cells(&self, name: &str) -> Result<usize> {
        Ok(self.column(name)?.missing.iter().filter(|&&m| m).count())
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

/// A column of categories as inputs: one row per class, 1 in the row of each sample's class and
/// 0 in the others. Fit it on the training table ([`OneHot::fit`]); encode that table and every
/// later one (validation, new data to predict) with it ([`OneHot::encode`], or within
/// [`Features`]), so that each class keeps its row.
///
/// A cell that is none of the classes is an [`Error::Csv`] naming the file, the line and the
/// column, not a row of zeros: the network never saw the category. Classes match as text, or
/// as numbers when both spell one (`"1.0"` is class `"1"`, as [`Table::labels`] counts them).
///
/// The code is not part of a model file: keep it beside the model in a [`Features`] file, or
/// keep its [`classes`](OneHot::classes) and rebuild it with [`OneHot::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneHot {
    column: String,
    classes: Vec<String>,
}

impl OneHot {
    /// The code of the column `column` with these classes, in row order (for example kept from
    /// an earlier [`fit`](OneHot::fit)). Rejects no classes, and a class given twice.
    pub fn new(column: impl Into<String>, classes: Vec<String>) -> Result<Self> {
        let column = column.into();
        let bad = |requirement: String| Error::ShapeMismatch {
            what: format!("the classes of column {column:?}"),
            expected: requirement,
            got: format!("{classes:?}"),
        };
        if classes.is_empty() {
            return Err(bad("at least one class".into()));
        }
        let (mut texts, mut numbers) = (HashSet::new(), HashSet::new());
        let twice = classes.iter().find(|c| {
            let new_number = number_key(c).is_none_or(|key| numbers.insert(key));
            !texts.insert(c.as_str()) || !new_number
        });
        if let Some(class) = twice {
            return Err(bad(format!("distinct classes ({class:?} is given twice)")));
        }
        Ok(OneHot { column, classes })
    }

    /// The code of the column `column` of `table`: its distinct values, sorted as
    /// [`Table::labels`] sorts them. A missing value is an error.
    pub fn fit(table: &Table, column: &str) -> Result<Self> {
        OneHot::new(column, table.labels(column)?.classes)
    }

    /// The column it encodes.
    #[must_use]
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The classes, one per row of the code, in row order.
    #[must_use]
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The input rows it takes as `encoding` says: one per class, or one.
    fn rows(&self, encoding: Encoding) -> usize {
        match encoding {
            Encoding::OneHot => self.classes.len(),
            Encoding::Index => 1,
        }
    }

    /// The name of each row, `"{column}={class}"` (`"city=Lyon"`).
    #[must_use]
    pub fn feature_names(&self) -> Vec<String> {
        self.classes.iter().map(|class| format!("{}={class}", self.column)).collect()
    }

    /// The column of `table` as a `classes × rows` matrix of 0s and 1s. A missing value is an
    /// error.
    pub fn encode<T: Float>(&self, table: &Table) -> Result<DMatrix<T>> {
        let mut x = DMatrix::zeros(self.classes.len(), table.rows());
        self.encode_into(table, x.rows_mut(0, self.classes.len()), None, UnseenCategories::Refuse)?;
        Ok(x)
    }

    /// The column of `table` as a `1 × rows` matrix of each row's class index (its row in the
    /// code), for an [`Embedding`](crate::Embedding) row in place of the one-hot rows: a column
    /// of thousands of categories (user ids, product codes) is then one input row, and the
    /// network reads one vector per sample instead of a product over every class. A missing
    /// value, or a cell of none of the classes, is an error naming its line.
    ///
    /// ```
    /// use feedforward::data::table::{OneHot, Table};
    /// use feedforward::EmbeddingRow;
    ///
    /// let training = Table::parse("user,rating\nann,4\nbob,2\nann,5\n".as_bytes(), "ratings.csv")?;
    /// let users = OneHot::fit(&training, "user")?;
    /// assert_eq!(users.indices::<f32>(&training)?.as_slice(), &[0.0, 1.0, 0.0]);
    /// let row = EmbeddingRow { row: 0, categories: users.classes().len(), dims: 8 };
    /// assert_eq!(row.categories, 2);
    /// let later = Table::parse("user\ncid\n".as_bytes(), "new.csv")?;
    /// assert!(users.indices::<f32>(&later).unwrap_err().to_string().starts_with("new.csv:2: column \"user\""));
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn indices<T: Float>(&self, table: &Table) -> Result<DMatrix<T>> {
        let classes = self.class_indices(table, None, UnseenCategories::Refuse, "the code")?;
        let classes =
            classes.into_iter().map(|c| c.expect("refused unseen classes and unfilled gaps are errors"));
        Ok(DMatrix::from_iterator(1, table.rows(), classes.map(|c| T::lit(c as f64))))
    }

    /// Writes the code of `table`'s column into `out` (`classes × rows`, zeros), missing values
    /// taken as class `fill`, and cells of none of the classes as `unseen` says.
    fn encode_into<T: Float>(
        &self,
        table: &Table,
        mut out: nalgebra::DMatrixViewMut<'_, T>,
        fill: Option<usize>,
        unseen: UnseenCategories,
    ) -> Result<()> {
        let indices = self.class_indices(table, fill, unseen, "its one-hot code")?;
        for (sample, class) in indices.into_iter().enumerate() {
            if let Some(class) = class {
                out[(class, sample)] = T::one();
            }
        }
        Ok(())
    }

    /// Each row's class index (`fill` for a missing value; `None` for a cell of none of the
    /// classes, if `unseen` allows it), or an error naming the first cell that is none of the
    /// classes (those of `whose`, in the message), or missing without a fill.
    fn class_indices(
        &self,
        table: &Table,
        fill: Option<usize>,
        unseen: UnseenCategories,
        whose: &str,
    ) -> Result<Vec<Option<usize>>> {
        let column = table.column(&self.column)?;
        let texts: HashMap<&str, usize> =
            self.classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
        let numbers: HashMap<u64, usize> =
            (self.classes.iter().enumerate()).filter_map(|(i, c)| Some((number_key(c)?, i))).collect();
        let class_of = |cell: &str| texts.get(cell).or_else(|| numbers.get(&number_key(cell)?)).copied();
        (column.text.iter().enumerate())
            .map(|(row, cell)| {
                if column.missing[row] {
                    return fill.map(Some).ok_or_else(|| table.missing(row, &self.column));
                }
                if unseen == UnseenCategories::AllZeros {
                    return Ok(class_of(cell));
                }
                class_of(cell).map(Some).ok_or_else(|| {
                    let mut shown: Vec<String> =
                        self.classes.iter().take(10).map(|c| format!("{c:?}")).collect();
                    if self.classes.len() > 10 {
                        shown.push("…".into());
                    }
                    let (column, count) = (&self.column, self.classes.len());
                    let reason = format!(
                        "column {column:?}: {cell:?} is not one of the {count} classes of {whose}: {}",
                        shown.join(", ")
                    );
                    table.error(row, reason)
                })
            })
            .collect()
    }
}

/// The distinct values of `column`'s cells that are not missing, sorted (by value when every one
/// is a number, so that "10" follows "9" and "1.0" is "1"'s class; as text otherwise), and each
/// row's index among them (`None` where missing).
fn classes_of(column: &Column) -> (Vec<String>, Vec<Option<usize>>) {
    match &column.numbers {
        Ok(numbers) => {
            let mut order: Vec<f64> = numbers.iter().flatten().copied().collect();
            order.sort_by(f64::total_cmp);
            order.dedup();
            let indices = (numbers.iter())
                .map(|v| {
                    v.map(|v| order.binary_search_by(|c| c.total_cmp(&v)).expect("a value in the order"))
                })
                .collect();
            let classes = (order.iter())
                .map(|&v| {
                    let first = numbers.iter().position(|&n| n == Some(v)).expect("a value of the column");
                    column.text[first].clone()
                })
                .collect();
            (classes, indices)
        }
        Err(_) => {
            let present =
                || column.text.iter().zip(&column.missing).map(|(c, &m)| (!m).then_some(c.as_str()));
            let mut classes: Vec<&str> = present().flatten().collect();
            classes.sort_unstable();
            classes.dedup();
            let indices = present()
                .map(|cell| cell.map(|cell| classes.binary_search(&cell).expect("every cell is a class")))
                .collect();
            (classes.into_iter().map(str::to_string).collect(), indices)
        }
    }
}

/// The finite number a cell spells, as a key equal for equal numbers (`"1"`, `"1.0"`, `"-0"` and
/// `"0"` each share one).
fn number_key(cell: &str) -> Option<u64> {
    let value = cell.parse::<f64>().ok().filter(|v| v.is_finite())?;
    Some(if value == 0.0 { 0 } else { value.to_bits() })
}

/// A table's inputs, in a fixed order: numeric columns as they are, then columns of categories
/// as [`OneHot`] codes (or one row of class indices each, for an
/// [`Embedding`](crate::Embedding): [`with_indices`](Features::with_indices)), then (with
/// [`Missing::indicators`]) a 0/1 row per column that had missing values. Fit it on the
/// training table, build the network on [`matrix`](Features::matrix), and
/// [`save`](Features::save) it beside the model: the same plan then encodes every later table
/// row for row, whatever the order of its columns, and fills its missing values with the training
/// table's values ([`fit_with`](Features::fit_with)).
///
/// ```
/// use feedforward::data::table::{Features, Table};
///
/// let training = Table::parse("area,city,price\n80,Lyon,310\n45,Paris,420\n".as_bytes(), "a.csv")?;
/// let features = Features::fit(&training, &["area"], &["city"])?;
/// assert_eq!(features.names(), ["area", "city=Lyon", "city=Paris"]);
/// let x = features.matrix::<f32>(&training)?;
/// assert_eq!(x.as_slice(), &[80.0, 1.0, 0.0, 45.0, 0.0, 1.0]); // one sample per column
/// // A later table, its columns in another order: the same rows.
/// let later = Table::parse("city,area\nParis,60\n".as_bytes(), "b.csv")?;
/// assert_eq!(features.matrix::<f32>(&later)?.as_slice(), &[60.0, 0.0, 1.0]);
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// Empty cells, filled by [`Missing`] policies fitted on the training table:
///
/// ```
/// use feedforward::data::table::{FillCategories, FillNumbers, Features, Missing, Table};
///
/// let training = Table::parse("age,port\n30,S\n,C\n20,S\n".as_bytes(), "train.csv")?;
/// // By default a missing value is an error naming its line.
/// let e = Features::fit(&training, &["age"], &["port"]).unwrap_err();
/// assert!(e.to_string().starts_with("train.csv:3: column \"age\" is empty"));
/// let missing = Missing { numbers: FillNumbers::Median, categories: FillCategories::MostFrequent, indicators: true };
/// let features = Features::fit_with(&training, &["age"], &["port"], missing)?;
/// assert_eq!(features.names(), ["age", "port=C", "port=S", "age missing"]);
/// assert_eq!((features.fill("age"), features.fill("port")), (Some("25".into()), Some("S".into())));
/// // A later table is filled with the training table's values.
/// let later = Table::parse("port,age\n,\nC,40\n".as_bytes(), "new.csv")?;
/// #[rustfmt::skip]
/// assert_eq!(features.matrix::<f32>(&later)?.as_slice(), &[
///     25.0, 0.0, 1.0, 1.0, // age filled with the median, port with S, and flagged
///     40.0, 1.0, 0.0, 0.0,
/// ]);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    numeric: Vec<String>,
    categorical: Vec<OneHot>,
    /// The value filling each numeric column's missing values (`None`: refused), in `numeric`'s
    /// order.
    number_fills: Vec<Option<f64>>,
    /// The class filling each code's missing values, in `categorical`'s order.
    class_fills: Vec<Option<usize>>,
    /// How each code enters the inputs, in `categorical`'s order.
    encodings: Vec<Encoding>,
    /// The columns with an indicator row, in the plan's order.
    indicators: Vec<String>,
    /// What the codes do with a category the training table did not have.
    unseen: UnseenCategories,
}

/// What a [`Features`] plan's codes do with a category the training table did not
/// have (a new city in a request to a served model).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnseenCategories {
    /// An error naming the file, line and column, and the classes it knows (the default).
    #[default]
    Refuse,
    /// All the code's rows 0 for that sample, as for no known class (scikit-learn's
    /// `handle_unknown="ignore"`): the network sees none of the classes it learned. A column
    /// encoded as indices gives the index one past its classes, an unknown category
    /// ([`Encoding::Index`]).
    AllZeros,
}

impl UnseenCategories {
    /// The name in features files: `"refuse"` or `"all_zeros"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            UnseenCategories::Refuse => "refuse",
            UnseenCategories::AllZeros => "all_zeros",
        }
    }
}

/// How a column of categories enters a [`Features`] plan's inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// A row per class, 1 in the row of each sample's class ([`OneHot::encode`]).
    #[default]
    OneHot,
    /// One row of class indices ([`OneHot::indices`]), for an
    /// [`Embedding`](crate::Embedding). A category the training table did not have is an
    /// error, or under [`UnseenCategories::AllZeros`] the index one past the classes
    /// (`classes().len()`), which the embedding [`Features::embedding`] builds takes as a
    /// vector of zeros ([`UnknownCategory::ZeroVector`](crate::UnknownCategory::ZeroVector)):
    /// the index's counterpart of an all-zeros code.
    Index,
}

/// Every fill is a finite number, so equality is reflexive.
impl Eq for Features {}

/// The format of [`Features::save`]'s files; files of format 1 (without fills) and 2 (without
/// encodings) still load.
const FEATURES_FORMAT: u64 = 3;

impl Features {
    /// The plan `numeric`, then `categorical`, with no fills: a missing value is an error.
    /// Rejects a column named twice.
    pub fn new(numeric: Vec<String>, categorical: Vec<OneHot>) -> Result<Self> {
        let columns: Vec<&str> =
            numeric.iter().map(String::as_str).chain(categorical.iter().map(OneHot::column)).collect();
        each_once(&columns)?;
        let (number_fills, class_fills) = (vec![None; numeric.len()], vec![None; categorical.len()]);
        let encodings = vec![Encoding::OneHot; categorical.len()];
        let unseen = UnseenCategories::Refuse;
        let indicators = Vec::new();
        Ok(Features { numeric, categorical, number_fills, class_fills, encodings, indicators, unseen })
    }

    /// The columns `numeric` of `table` as they are, then a [`OneHot::fit`] code of each of
    /// `categorical`. A missing value is an error naming its line: see
    /// [`fit_with`](Features::fit_with).
    pub fn fit(table: &Table, numeric: &[&str], categorical: &[&str]) -> Result<Self> {
        Features::fit_with(table, numeric, categorical, Missing::default())
    }

    /// [`fit`](Features::fit), with the missing values of each kind of column treated as
    /// `missing` says: refused, or filled with a value fitted on `table` (and flagged in an
    /// indicator row). Fit it on the rows you train on ([`Table::split`]).
    pub fn fit_with(table: &Table, numeric: &[&str], categorical: &[&str], missing: Missing) -> Result<Self> {
        // First, so that a column named as both kinds is not taken for the first kind.
        each_once(&[numeric, categorical].concat())?;
        let mut indicators = Vec::new();
        // A column with gaps: an error now if its kind's policy refuses them (not at the first
        // encode), else an indicator row if asked.
        let mut flag = |name: &str, column: &Column, refused: bool| -> Result<()> {
            if let Some(row) = column.first_missing() {
                if refused {
                    return Err(table.missing(row, name));
                }
                if missing.indicators {
                    indicators.push(name.to_string());
                }
            }
            Ok(())
        };
        let mut number_fills = Vec::with_capacity(numeric.len());
        for &name in numeric {
            let numbers = table.numbers_or_missing(name)?;
            flag(name, table.column(name)?, missing.numbers == FillNumbers::Refuse)?;
            number_fills.push(missing.numbers.fit(numbers, name)?);
        }
        let (mut codes, mut class_fills) = (Vec::new(), Vec::new());
        for &name in categorical {
            let column = table.column(name)?;
            flag(name, column, missing.categories == FillCategories::Refuse)?;
            let (mut classes, indices) = classes_of(column);
            let fill = missing.categories.fit(&indices, classes.len());
            if fill == Some(classes.len()) {
                classes.push(super::missing::missing_class_name(&classes));
            }
            class_fills.push(fill);
            codes.push(OneHot::new(name, classes)?);
        }
        let features = Features::new(numeric.iter().map(|&n| n.to_string()).collect(), codes)?;
        Ok(Features { number_fills, class_fills, indicators, ..features })
    }

    /// The same plan, its codes treating a category the training table did not have as
    /// `unseen` says (saved with the plan).
    ///
    /// ```
    /// use feedforward::data::table::{Features, Table, UnseenCategories};
    ///
    /// let training = Table::parse("city\nLyon\nParis\n".as_bytes(), "a.csv")?;
    /// let later = Table::parse("city\nNice\n".as_bytes(), "b.csv")?;
    /// let features = Features::fit(&training, &[], &["city"])?;
    /// assert!(features.matrix::<f32>(&later).is_err());
    /// let lenient = features.with_unseen_categories(UnseenCategories::AllZeros);
    /// assert_eq!(lenient.matrix::<f32>(&later)?.as_slice(), &[0.0, 0.0]);
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    #[must_use]
    pub fn with_unseen_categories(self, unseen: UnseenCategories) -> Self {
        Features { unseen, ..self }
    }

    /// What the codes do with a category the training table did not have.
    #[must_use]
    pub fn unseen_categories(&self) -> UnseenCategories {
        self.unseen
    }

    /// The same plan with the columns of categories `columns` entering as one row of class
    /// indices each ([`Encoding::Index`]) instead of one-hot rows: the inputs of an
    /// [`Embedding`](crate::Embedding), whose rows [`embedding_rows`](Features::embedding_rows)
    /// gives. A column that is not one of the plan's columns of categories is an error.
    ///
    /// ```
    /// use feedforward::data::table::{Features, Table};
    /// use feedforward::EmbeddingRow;
    ///
    /// let training = Table::parse("user,city,age\nann,Lyon,31\nbob,Paris,45\n".as_bytes(), "a.csv")?;
    /// let features = Features::fit(&training, &["age"], &["user", "city"])?.with_indices(&["user"])?;
    /// assert_eq!(features.names(), ["age", "user (index)", "city=Lyon", "city=Paris"]);
    /// assert_eq!(features.matrix::<f32>(&training)?.as_slice(), &[31.0, 0.0, 1.0, 0.0, 45.0, 1.0, 0.0, 1.0]);
    /// assert_eq!(features.embedding_rows(|_| 8), [EmbeddingRow { row: 1, categories: 2, dims: 8 }]);
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn with_indices(mut self, columns: &[&str]) -> Result<Self> {
        for &column in columns {
            let at = self.categorical.iter().position(|c| c.column == column);
            let at = at.ok_or_else(|| Error::ShapeMismatch {
                what: "the columns to encode as indices".into(),
                expected: format!("columns of categories of the plan ({:?})", self.categorical_columns()),
                got: format!("{column:?}"),
            })?;
            self.encodings[at] = Encoding::Index;
        }
        Ok(self)
    }

    /// How the code of `column` enters the inputs (`None` if the plan has no such column of
    /// categories).
    #[must_use]
    pub fn encoding(&self, column: &str) -> Option<Encoding> {
        let at = self.categorical.iter().position(|c| c.column == column)?;
        Some(self.encodings[at])
    }

    /// An [`EmbeddingRow`](crate::EmbeddingRow) for each column encoded as indices, in row
    /// order: its input row, its number of classes, and `dims(code)` values per vector.
    #[must_use]
    pub fn embedding_rows(&self, dims: impl Fn(&OneHot) -> usize) -> Vec<crate::EmbeddingRow> {
        let mut row = self.numeric.len();
        let mut rows = Vec::new();
        for (code, &encoding) in self.categorical.iter().zip(&self.encodings) {
            if encoding == Encoding::Index {
                rows.push(crate::EmbeddingRow { row, categories: code.classes.len(), dims: dims(code) });
            }
            row += code.rows(encoding);
        }
        rows
    }

    /// The [`Embedding`](crate::Embedding) of this plan's inputs: the
    /// [`embedding_rows`](Features::embedding_rows) (`dims(code)` values per vector), tables
    /// drawn from `rng`, and a category the training table did not have taken as the plan takes
    /// it ([`UnknownCategory::ZeroVector`](crate::UnknownCategory::ZeroVector) under
    /// [`UnseenCategories::AllZeros`], else refused). An error if no column is encoded as
    /// indices.
    ///
    /// ```
    /// use feedforward::data::table::{Features, Table, UnseenCategories};
    /// use feedforward::{Network, Standardize};
    /// use rand::SeedableRng;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    ///
    /// let training = Table::parse("user,age\nann,31\nbob,45\nann,52\n".as_bytes(), "a.csv")?;
    /// let plan = Features::fit(&training, &["age"], &["user"])?
    ///     .with_indices(&["user"])?
    ///     .with_unseen_categories(UnseenCategories::AllZeros);
    /// let x = plan.matrix::<f32>(&training)?;
    /// let embed = plan.embedding(|_| 4, &mut rng)?;
    /// // The ages standardized, the user indices left as they are.
    /// let standardize = Standardize::fit(&x)?.with_rows_unchanged(&embed.index_rows())?;
    /// let net = Network::new(plan.rows()).push(standardize)?.push(embed)?;
    /// // A user the training rows did not have: index 2, a zero vector.
    /// let new = Table::parse("user,age\ncid,40\n".as_bytes(), "new.csv")?;
    /// let request = plan.matrix::<f32>(&new)?;
    /// assert_eq!(request.as_slice(), &[40.0, 2.0]);
    /// assert_eq!(&net.output(&request)?.as_slice()[1..], &[0.0; 4]);
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn embedding<T: Float, R: rand::Rng + ?Sized>(
        &self,
        dims: impl Fn(&OneHot) -> usize,
        rng: &mut R,
    ) -> Result<crate::Embedding<T>> {
        let embedding = crate::Embedding::new(self.rows(), &self.embedding_rows(dims), rng)?;
        Ok(embedding.with_unknown(self.unknown_category()))
    }

    /// What an [`Embedding`](crate::Embedding) of this plan's inputs makes of the index the
    /// plan gives an unseen category: [`ZeroVector`](crate::UnknownCategory::ZeroVector) under
    /// [`UnseenCategories::AllZeros`], else [`Refuse`](crate::UnknownCategory::Refuse) (no
    /// such index is given). For an embedding built by hand (`Embedding::normal`, say):
    /// `.with_unknown(plan.unknown_category())`.
    #[must_use]
    pub fn unknown_category(&self) -> crate::UnknownCategory {
        match self.unseen {
            UnseenCategories::Refuse => crate::UnknownCategory::Refuse,
            UnseenCategories::AllZeros => crate::UnknownCategory::ZeroVector,
        }
    }

    /// The names of the columns of categories, in order.
    fn categorical_columns(&self) -> Vec<&str> {
        self.categorical.iter().map(OneHot::column).collect()
    }

    /// The numeric columns, in row order.
    #[must_use]
    pub fn numeric(&self) -> &[String] {
        &self.numeric
    }

    /// The codes of the columns of categories, in row order after the numeric columns.
    #[must_use]
    pub fn categorical(&self) -> &[OneHot] {
        &self.categorical
    }

    /// The value filling the missing values of `column`, as text (a number, or a class), or
    /// `None` if they are refused (or no column of the plan has that name).
    #[must_use]
    pub fn fill(&self, column: &str) -> Option<String> {
        let number = (self.numeric.iter().zip(&self.number_fills)).find(|(n, _)| *n == column);
        if let Some((_, fill)) = number {
            return fill.map(|v| v.to_string());
        }
        let (code, fill) =
            self.categorical.iter().zip(&self.class_fills).find(|(c, _)| c.column == column)?;
        fill.map(|class| code.classes[class].clone())
    }

    /// The columns with an indicator row (the last rows, in this order).
    #[must_use]
    pub fn indicators(&self) -> &[String] {
        &self.indicators
    }

    /// The name of each input row: the numeric columns, then each code's
    /// [`feature_names`](OneHot::feature_names) (`"{column} (index)"` for a column encoded as
    /// indices), then `"{column} missing"` for each indicator.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        let codes =
            self.categorical.iter().zip(&self.encodings).flat_map(|(code, encoding)| match encoding {
                Encoding::OneHot => code.feature_names(),
                Encoding::Index => vec![format!("{} (index)", code.column)],
            });
        let indicators = self.indicators.iter().map(|c| format!("{c} missing"));
        self.numeric.iter().cloned().chain(codes).chain(indicators).collect()
    }

    /// The input rows of each column of the plan, in row order: a numeric column's row, a
    /// code's rows (or its row of indices), then each indicator's row (named `"{column}
    /// missing"`). The groups [`permutation_importance`](crate::importance::permutation_importance)
    /// shuffles to rank the table's columns.
    ///
    /// ```
    /// use feedforward::data::table::{Features, Table};
    /// let table = Table::parse("area,city\n50,Lyon\n70,Paris\n65,Nice\n".as_bytes(), "houses.csv")?;
    /// let plan = Features::fit(&table, &["area"], &["city"])?;
    /// assert_eq!(plan.column_rows(), [("area".to_string(), 0..1), ("city".to_string(), 1..4)]);
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    #[must_use]
    pub fn column_rows(&self) -> Vec<(String, std::ops::Range<usize>)> {
        let mut start = 0;
        let mut next = |name: String, rows: usize| {
            start += rows;
            (name, start - rows..start)
        };
        let mut columns: Vec<_> = self.numeric.iter().map(|c| next(c.clone(), 1)).collect();
        for (code, &encoding) in self.categorical.iter().zip(&self.encodings) {
            columns.push(next(code.column.clone(), code.rows(encoding)));
        }
        columns.extend(self.indicators.iter().map(|c| next(format!("{c} missing"), 1)));
        columns
    }

    /// The number of input rows: the network's inputs.
    #[must_use]
    pub fn rows(&self) -> usize {
        let codes: usize = self.categorical.iter().zip(&self.encodings).map(|(c, &e)| c.rows(e)).sum();
        self.numeric.len() + codes + self.indicators.len()
    }

    /// The inputs of `table`, `rows() × table.rows()`, one sample per column: the numeric
    /// columns (as [`Table::matrix`] reads them), then each code's rows, then the indicator
    /// rows, missing values filled as the plan says. A missing column, a word in a numeric
    /// column, a category a code never saw, or a missing value the plan does not fill is an error
    /// naming it.
    pub fn matrix<T: Float>(&self, table: &Table) -> Result<DMatrix<T>> {
        let mut x = DMatrix::zeros(self.rows(), table.rows());
        for (row, (name, &fill)) in self.numeric.iter().zip(&self.number_fills).enumerate() {
            let numbers = table.numbers(name, fill)?;
            x.row_mut(row).iter_mut().zip(numbers).for_each(|(x, v)| *x = T::lit(v));
        }
        let mut row = self.numeric.len();
        for ((code, &fill), &encoding) in self.categorical.iter().zip(&self.class_fills).zip(&self.encodings)
        {
            match encoding {
                Encoding::OneHot => {
                    code.encode_into(table, x.rows_mut(row, code.classes.len()), fill, self.unseen)?
                }
                Encoding::Index => {
                    let classes = code.class_indices(table, fill, self.unseen, "the code")?;
                    let unknown = code.classes.len();
                    let indices = classes.into_iter().map(|class| class.unwrap_or(unknown));
                    x.row_mut(row).iter_mut().zip(indices).for_each(|(x, index)| *x = T::lit(index as f64));
                }
            }
            row += code.rows(encoding);
        }
        for name in &self.indicators {
            let column = table.column(name)?;
            x.row_mut(row).iter_mut().zip(&column.missing).for_each(|(x, &missing)| {
                if missing {
                    *x = T::one();
                }
            });
            row += 1;
        }
        Ok(x)
    }

    /// Writes the plan to `path` as JSON ([`to_json`](Features::to_json)).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()).map_err(Error::at(path))
    }

    /// The plan as JSON: `{"format_version": 3, "numeric": [...], "numeric_fills": {column:
    /// value, ...}, "categorical": [{"column": ..., "classes": [...], "fill": class,
    /// "encoding": "index"}, ...], "indicators": [...], "unseen_categories": "refuse"}` (a code
    /// without a fill has no `"fill"`, a one-hot code no `"encoding"`). Beside
    /// [`save`](Features::save)'s file, it can travel in a model file's metadata, so that one
    /// file serves raw rows:
    ///
    /// ```
    /// use feedforward::data::table::{Features, Table};
    /// use feedforward::{Network, weights};
    ///
    /// let training = Table::parse("city,area\nLyon,80\nParis,45\n".as_bytes(), "houses.csv")?;
    /// let plan = Features::fit(&training, &["area"], &["city"])?;
    /// let path = std::env::temp_dir().join("feedforward-doc-plan-in-model.safetensors");
    /// Network::<f32>::new(plan.rows()).save_with_metadata(&path, &[("features", &plan.to_json())])?;
    /// let metadata = weights::metadata(&path)?;
    /// assert_eq!(Features::from_json(&metadata["features"], &path)?, plan);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    #[must_use]
    pub fn to_json(&self) -> String {
        let codes: Vec<serde_json::Value> =
            (self.categorical.iter().zip(&self.class_fills).zip(&self.encodings))
                .map(|((c, fill), encoding)| {
                    let mut code = serde_json::json!({ "column": c.column, "classes": c.classes });
                    if let Some(class) = fill {
                        code["fill"] = c.classes[*class].clone().into();
                    }
                    if *encoding == Encoding::Index {
                        code["encoding"] = "index".into();
                    }
                    code
                })
                .collect();
        let fills: serde_json::Map<String, serde_json::Value> = (self.numeric.iter().zip(&self.number_fills))
            .filter_map(|(name, fill)| Some((name.clone(), (*fill)?.into())))
            .collect();
        let json = serde_json::json!({
            "format_version": FEATURES_FORMAT,
            "numeric": self.numeric,
            "numeric_fills": fills,
            "categorical": codes,
            "indicators": self.indicators,
            "unseen_categories": self.unseen.name(),
        });
        serde_json::to_string_pretty(&json).expect("JSON of strings and finite numbers serializes")
    }

    /// Reads a plan [`save`](Features::save) wrote (format 3; 2, which had no encodings; or 1,
    /// which had no fills or indicators either). A file that is not one is an [`Error::Csv`]
    /// naming what is wrong (at the line of a JSON syntax error, else line 1).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(path, e, "a features file (Features::save)"))?;
        Features::from_json(&text, path)
    }

    /// Reads a plan from the JSON of [`to_json`](Features::to_json), as
    /// [`load`](Features::load) reads a file; `origin` names where the text came from in errors
    /// (the model file whose metadata held it, say).
    pub fn from_json(text: &str, origin: impl AsRef<Path>) -> Result<Self> {
        let path = origin.as_ref();
        let bad = |reason: String| Error::Csv { path: path.to_path_buf(), line: 1, reason };
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Csv {
            path: path.to_path_buf(),
            line: e.line().max(1),
            reason: format!("not a features file: {e}"),
        })?;
        let version = json.get("format_version").and_then(serde_json::Value::as_u64);
        if !matches!(version, Some(1..=FEATURES_FORMAT)) {
            return Err(bad(format!("not a features file of format version 1 to {FEATURES_FORMAT}")));
        }
        let strings = |value: Option<&serde_json::Value>, what: &str| -> Result<Vec<String>> {
            let items = value
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| bad(format!("{what} is not a list")))?;
            (items.iter())
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("{what} holds {v}, not a string")))
                })
                .collect()
        };
        let numeric = strings(json.get("numeric"), "\"numeric\"")?;
        let codes = json.get("categorical").and_then(serde_json::Value::as_array);
        let codes = codes.ok_or_else(|| bad("\"categorical\" is not a list".into()))?;
        let mut class_fills = Vec::with_capacity(codes.len());
        let mut encodings = Vec::with_capacity(codes.len());
        let categorical = (codes.iter())
            .map(|code| {
                let column = code.get("column").and_then(serde_json::Value::as_str);
                let column =
                    column.ok_or_else(|| bad(format!("a code without a \"column\" name: {code}")))?;
                let classes = strings(code.get("classes"), &format!("the classes of {column:?}"))?;
                let fill = match code.get("fill") {
                    None => None,
                    Some(fill) => {
                        let class = fill.as_str().and_then(|f| classes.iter().position(|c| c == f));
                        let why =
                            || bad(format!("the fill of {column:?}, {fill}, is not one of its classes"));
                        Some(class.ok_or_else(why)?)
                    }
                };
                class_fills.push(fill);
                encodings.push(match code.get("encoding") {
                    None => Encoding::OneHot,
                    Some(e) if e.as_str() == Some("index") => Encoding::Index,
                    Some(e) => return Err(bad(format!("the encoding of {column:?}, {e}, is not \"index\""))),
                });
                OneHot::new(column, classes).map_err(|e| bad(e.to_string()))
            })
            .collect::<Result<_>>()?;
        let mut features = Features::new(numeric, categorical).map_err(|e| bad(e.to_string()))?;
        features.class_fills = class_fills;
        features.encodings = encodings;
        if let Some(fills) = json.get("numeric_fills") {
            let fills = fills.as_object().ok_or_else(|| bad("\"numeric_fills\" is not a map".into()))?;
            for (column, value) in fills {
                let at = features.numeric.iter().position(|n| n == column);
                let at =
                    at.ok_or_else(|| bad(format!("a fill for {column:?}, which is not a numeric column")))?;
                let value = value
                    .as_f64()
                    .ok_or_else(|| bad(format!("the fill of {column:?}, {value}, is not a number")))?;
                features.number_fills[at] = Some(value);
            }
        }
        if let Some(indicators) = json.get("indicators") {
            let indicators = strings(Some(indicators), "\"indicators\"")?;
            let columns: Vec<&str> = (features.numeric.iter().map(String::as_str))
                .chain(features.categorical.iter().map(OneHot::column))
                .collect();
            for (i, name) in indicators.iter().enumerate() {
                if !columns.contains(&name.as_str()) || indicators[..i].contains(name) {
                    return Err(bad(format!(
                        "indicator {name:?} is not a column of the plan, or is given twice"
                    )));
                }
            }
            features.indicators = indicators;
        }
        if let Some(unseen) = json.get("unseen_categories") {
            let policies = [UnseenCategories::Refuse, UnseenCategories::AllZeros];
            let policy = policies.into_iter().find(|p| unseen.as_str() == Some(p.name()));
            features.unseen = policy.ok_or_else(|| {
                bad(format!("\"unseen_categories\" is {unseen}, not \"refuse\" or \"all_zeros\""))
            })?;
        }
        Ok(features)
    }
}

/// Rejects a column named twice among a plan's `columns`.
fn each_once(columns: &[&str]) -> Result<()> {
    match (1..columns.len()).find(|&i| columns[..i].contains(&columns[i])) {
        None => Ok(()),
        Some(i) => Err(Error::ShapeMismatch {
            what: "the columns of a table's features".into(),
            expected: "each column once".into(),
            got: format!("{:?} twice in {columns:?}", columns[i]),
        }),
    }
}
