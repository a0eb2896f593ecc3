//! [`Embedding`]: input rows that hold category indices, each replaced by a trainable vector of
//! its category (an entity embedding); the other rows pass through.
//!
//! Per sample, for an embedded row holding category `c`, with that row's table `E`
//! (`dims × categories`, a column per category):
//!
//! | | forward | local gradient |
//! |---|---|---|
//! | embed | `y = E[:, c]` | `∂L/∂E[:, c] = Σ ∂L/∂y` over the samples of category `c`; the index gets 0 |
//! | pass through | `y = x` | `∂L/∂x = ∂L/∂y` |
//! | unknown (index `categories`, with [`UnknownCategory::ZeroVector`]) | `y = 0` | none |
//!
//! A one-hot code followed by a [`Layer`](crate::Layer) without bias computes the same
//! function (the layer's weights on those rows are the table; an all-zeros code is the unknown
//! category's zero vector), at a cost that grows with the number of categories in every
//! product; an embedding reads one column of its table per sample, whatever their number.

use crate::error::plural;
use crate::module::Regularization;
use crate::parallel::{Cols, ColsMut, for_column_blocks};
use crate::weights::count;
use crate::{Error, Float, Module, Parameter, Result};
use nalgebra::DMatrix;
use rand::Rng;
use serde_json::{Map, Value};

/// One input row of category indices and the vectors [`Embedding`] gives its categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EmbeddingRow {
    /// The input row (feature) that holds each sample's category, a whole number in
    /// `0..categories`.
    pub row: usize,
    /// How many categories the row has (at least 1; at most 2²⁴ in an `f32` network, whose
    /// indices must all be exact).
    pub categories: usize,
    /// Length of each category's vector (at least 1).
    pub dims: usize,
}

/// What an [`Embedding`] makes of index `categories`, one past a row's last category: the
/// index a `data::table::Features` plan gives a category its training table did not have, when
/// it is told to take such categories (`UnseenCategories::AllZeros`; its `embedding` then
/// builds the module with [`ZeroVector`](UnknownCategory::ZeroVector)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UnknownCategory {
    /// An error naming the sample and row, as any index that is no category (the default).
    #[default]
    Refuse,
    /// A vector of zeros, which no step changes: the network sees none of the categories it
    /// learned, as an all-zeros one-hot code shows it none (PyTorch's `padding_idx`). A
    /// category that is missing from the training rows but should have a vector of its own,
    /// learned, needs a class of its own instead.
    ZeroVector,
}

impl UnknownCategory {
    /// The name in model files: `"refuse"` or `"zero_vector"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            UnknownCategory::Refuse => "refuse",
            UnknownCategory::ZeroVector => "zero_vector",
        }
    }
}

/// Entity embeddings of categorical input rows: each row named by an [`EmbeddingRow`] holds a
/// category index per sample, which becomes a trainable vector of `dims` values (a column of
/// the row's table, drawn from `N(0, 0.01²)` as fastai's tabular models draw them, or from
/// another deviation with [`normal`](Embedding::normal)); the other input rows pass through
/// unchanged.
///
/// Output rows: the rows that pass through, in their order, then the embedded rows' vectors,
/// in the order of their rows. Parameters: a table per embedded row, `dims × categories`, named
/// `table{row}` and regularized as a layer's weights are. Gradients are dense, as PyTorch's
/// default `sparse=False`: each step clears and updates whole tables, so a table of a million
/// entries costs a step as much as a layer of a million weights does.
///
/// An index must be a whole number within its row's categories: a
/// [`Network`](crate::Network) checks ([`Module::check_input`]) before it runs the module, and
/// [`train::fit`](crate::train::fit) names the sample by its position in the data set (it
/// checks a first module's input, the data, whole before the first step). The index itself gets
/// no gradient (0). [`with_unknown`](Embedding::with_unknown) lets index `categories` stand
/// for a category the tables do not know (a new user), given a vector of zeros.
///
/// ```
/// use feedforward::{Activation, Embedding, EmbeddingRow, Init, Layer, Network};
/// use nalgebra::DMatrix;
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// // Inputs: a price, then a user id (1000 users) and a product id (50 products).
/// let embed = Embedding::new(
///     3,
///     &[
///         EmbeddingRow { row: 1, categories: 1000, dims: 16 },
///         EmbeddingRow { row: 2, categories: 50, dims: 4 },
///     ],
///     &mut rng,
/// )?;
/// let net = Network::<f32>::new(3)
///     .push(embed)?                                                  // 1 + 16 + 4 rows
///     .push(Layer::new(21, 32, Init::He, &mut rng).with_activation(Activation::Relu))?
///     .push(Layer::new(32, 1, Init::He, &mut rng))?;
/// let x = DMatrix::from_column_slice(3, 2, &[9.5, 17.0, 3.0, 12.0, 999.0, 49.0]);
/// assert_eq!(net.output(&x)?.shape(), (1, 2));
/// // A user id beyond the table is an error naming the sample and row, not a panic.
/// let bad = DMatrix::from_column_slice(3, 1, &[9.5, 1000.0, 3.0]);
/// assert!(net.output(&bad).unwrap_err().to_string().contains("sample 0, row 1"));
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding<T: Float> {
    inputs: usize,
    /// The embedded rows, by row.
    embedded: Vec<EmbeddingRow>,
    /// A table per embedded row, in the same order.
    tables: Vec<Parameter<T>>,
    /// The input rows that pass through, in order.
    passed: Vec<usize>,
    /// What index `categories` of a row means.
    unknown: UnknownCategory,
}

impl<T: Float> Embedding<T> {
    /// The deviation of the tables [`new`](Embedding::new) draws: 0.01, fastai's for the
    /// embeddings of its tabular models. Small vectors trained as well as PyTorch's `N(0, 1)`
    /// or better, and without weight decay, where `N(0, 1)` needed it (the README's ratings).
    pub const STD: f64 = 0.01;

    /// Embeds the rows `rows` of an input of `inputs` rows, tables drawn from
    /// `N(0, STD²)` ([`STD`](Embedding::STD)).
    ///
    /// Errors: no rows to embed, a row beyond the input or named twice, no categories or no
    /// dimensions, or more categories than `T` counts exactly with one to spare for an unknown
    /// one (2²⁴ for `f32`).
    pub fn new<R: Rng + ?Sized>(inputs: usize, rows: &[EmbeddingRow], rng: &mut R) -> Result<Self> {
        Self::normal(inputs, rows, Self::STD, rng)
    }

    /// [`new`](Embedding::new) with tables drawn from `N(0, std²)` (`std·N(0, 1)`): 1 for
    /// PyTorch's `nn.Embedding`. Errors: those of `new`, and a `std` that is not finite and > 0.
    pub fn normal<R: Rng + ?Sized>(
        inputs: usize,
        rows: &[EmbeddingRow],
        std: f64,
        rng: &mut R,
    ) -> Result<Self> {
        if !(std.is_finite() && std > 0.0) {
            return Err(Error::InvalidHyperparameter {
                name: "Embedding std",
                value: std,
                requirement: "must be finite and > 0",
            });
        }
        let mut embedding = Self::zeros(inputs, rows)?;
        let std = T::lit(std);
        for table in &mut embedding.tables {
            table.value_mut().iter_mut().for_each(|v| *v = std * T::standard_normal(rng));
        }
        Ok(embedding)
    }

    /// The same with every table zero (a model file's tensors then fill them).
    fn zeros(inputs: usize, rows: &[EmbeddingRow]) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::shape("Embedding rows", "at least one row to embed", "none"));
        }
        let mut embedded = rows.to_vec();
        embedded.sort_by_key(|r| r.row);
        for (i, r) in embedded.iter().enumerate() {
            if r.row >= inputs {
                return Err(Error::shape(
                    format!("Embedding row {}", r.row),
                    format!("a row of the input's {}", plural(inputs, "row")),
                    format!("row {}", r.row),
                ));
            }
            if i > 0 && embedded[i - 1].row == r.row {
                return Err(Error::shape(
                    "Embedding rows",
                    "each row named once",
                    format!("row {} twice", r.row),
                ));
            }
            for (name, value) in [("Embedding categories", r.categories), ("Embedding dims", r.dims)] {
                if value == 0 {
                    return Err(Error::InvalidHyperparameter {
                        name,
                        value: 0.0,
                        requirement: "must be at least 1",
                    });
                }
            }
            // Every index must be a value of T, the unknown one (`categories`) too: f32 counts
            // exactly up to 2^24. Past it, of two neighbours one is not a value.
            let exact = |n: usize| T::lit(n as f64).as_f64() == n as f64;
            if !exact(r.categories) || !exact(r.categories - 1) {
                return Err(Error::InvalidHyperparameter {
                    name: "Embedding categories",
                    value: r.categories as f64,
                    requirement: "must be countable exactly in the network's float type (at most 2^24 for f32)",
                });
            }
        }
        let tables = embedded
            .iter()
            .map(|r| {
                let name = format!("table{}", r.row);
                Parameter::new(name, DMatrix::zeros(r.dims, r.categories), Regularization::Applied)
            })
            .collect();
        let passed = (0..inputs).filter(|i| embedded.binary_search_by_key(i, |r| r.row).is_err()).collect();
        Ok(Embedding { inputs, embedded, tables, passed, unknown: UnknownCategory::Refuse })
    }

    /// The same embedding, taking index `categories` of each row as `unknown` says (saved in
    /// model files).
    ///
    /// ```
    /// use feedforward::{Embedding, EmbeddingRow, Module, UnknownCategory};
    /// use nalgebra::DMatrix;
    /// use rand::SeedableRng;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let rows = [EmbeddingRow { row: 0, categories: 3, dims: 2 }];
    /// let embed = Embedding::<f32>::new(1, &rows, &mut rng)?.with_unknown(UnknownCategory::ZeroVector);
    /// let x = DMatrix::from_row_slice(1, 2, &[1.0, 3.0]); // category 1, then an unknown one
    /// embed.check_input(&x)?;
    /// let mut y = DMatrix::zeros(2, 2);
    /// embed.forward(&x, &mut y);
    /// assert_eq!(y.column(0), embed.tables()[0].value().column(1));
    /// assert_eq!(y.column(1).as_slice(), &[0.0, 0.0]);
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    #[must_use]
    pub fn with_unknown(self, unknown: UnknownCategory) -> Self {
        Embedding { unknown, ..self }
    }

    /// What index `categories` of a row means.
    #[must_use]
    pub fn unknown(&self) -> UnknownCategory {
        self.unknown
    }

    /// Rows of the input.
    #[must_use]
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Rows of the output: those that pass through, plus every embedded row's `dims`.
    #[must_use]
    pub fn outputs(&self) -> usize {
        self.passed.len() + self.embedded.iter().map(|r| r.dims).sum::<usize>()
    }

    /// The embedded rows, by row.
    #[must_use]
    pub fn rows(&self) -> &[EmbeddingRow] {
        &self.embedded
    }

    /// The input rows that hold category indices, in order: those a
    /// [`Standardize`](crate::Standardize) before the embedding must leave unchanged
    /// ([`with_rows_unchanged`](crate::Standardize::with_rows_unchanged)).
    #[must_use]
    pub fn index_rows(&self) -> Vec<usize> {
        self.embedded.iter().map(|r| r.row).collect()
    }

    /// The table of each embedded row (`dims × categories`), in the order of [`rows`](Self::rows).
    #[must_use]
    pub fn tables(&self) -> &[Parameter<T>] {
        &self.tables
    }

    /// Mutable access to the tables, to set their values (pre-trained vectors, say).
    pub fn tables_mut(&mut self) -> &mut [Parameter<T>] {
        &mut self.tables
    }

    /// Rebuilds one from a model file's settings (`inputs`, `rows` as a list of `[row,
    /// categories, dims]`, and `unknown` unless it is `"refuse"`), with zero tables until the
    /// file's tensors are loaded. `max_entries` bounds the tables by what the file can hold.
    pub(crate) fn from_settings(
        spec: &Map<String, Value>,
        max_entries: usize,
    ) -> std::result::Result<Self, String> {
        let inputs = count(spec.get("inputs"), "inputs")?;
        // The rows that pass through feed a later layer's weights, which the file holds: a
        // corrupt count beyond them is an error, not a list of billions of rows.
        if inputs > max_entries {
            return Err(format!("inputs = {inputs} is more than the file's tensors can take"));
        }
        let list = spec.get("rows").and_then(Value::as_array).ok_or("rows is not a list")?;
        let mut rows = Vec::with_capacity(list.len());
        let mut entries = 0usize;
        for item in list {
            let triple =
                item.as_array().filter(|a| a.len() == 3).ok_or("each row is [row, categories, dims]")?;
            let row = count(Some(&triple[0]), "row")?;
            let (categories, dims) =
                (count(Some(&triple[1]), "categories")?, count(Some(&triple[2]), "dims")?);
            entries = categories.checked_mul(dims).and_then(|n| n.checked_add(entries)).unwrap_or(usize::MAX);
            if entries > max_entries {
                return Err("the tables do not fit in the file's tensors".into());
            }
            rows.push(EmbeddingRow { row, categories, dims });
        }
        let unknown = match spec.get("unknown") {
            None => UnknownCategory::Refuse,
            Some(name) => [UnknownCategory::Refuse, UnknownCategory::ZeroVector]
                .into_iter()
                .find(|u| name.as_str() == Some(u.name()))
                .ok_or_else(|| format!("unknown is {name}, not \"refuse\" or \"zero_vector\""))?,
        };
        Ok(Self::zeros(inputs, &rows).map_err(|e| e.to_string())?.with_unknown(unknown))
    }
}

/// The index `v` names, when it is a whole number in `0..indices`.
fn whole_index(v: f64, indices: usize) -> Option<usize> {
    (v >= 0.0 && v < indices as f64 && v.fract() == 0.0).then_some(v as usize)
}

/// The indices row `r` takes: its categories, and one more for an unknown category if
/// `unknown` takes it.
fn indices(unknown: UnknownCategory, r: &EmbeddingRow) -> usize {
    match unknown {
        UnknownCategory::Refuse => r.categories,
        UnknownCategory::ZeroVector => r.categories + 1,
    }
}

/// The table column of the index in `value` (rounded to the nearest whole number), or `None`
/// for the unknown category.
///
/// # Panics
/// If that is no index of the row (see [`Module::check_input`]).
fn column_of<T: Float>(unknown: UnknownCategory, value: T, r: &EmbeddingRow) -> Option<usize> {
    match whole_index(value.as_f64().round(), indices(unknown, r)) {
        Some(c) => (c < r.categories).then_some(c),
        None => panic!(
            "Embedding row {}: {value} is not a category index (0..{}); Module::check_input rejects it before forward",
            r.row,
            indices(unknown, r)
        ),
    }
}

impl<T: Float> Module<T> for Embedding<T> {
    fn kind(&self) -> &'static str {
        "Embedding"
    }

    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        if input_rows != self.inputs {
            return Err(Error::shape(
                "Embedding input",
                plural(self.inputs, "row"),
                plural(input_rows, "row"),
            ));
        }
        Ok(self.outputs())
    }

    fn check_input(&self, input: &DMatrix<T>) -> Result<()> {
        for (sample, column) in input.column_iter().enumerate() {
            for r in &self.embedded {
                let value = column[r.row];
                if whole_index(value.as_f64(), indices(self.unknown, r)).is_none() {
                    let categories = r.categories;
                    let requirement = match self.unknown {
                        UnknownCategory::Refuse => format!(
                            "must be a category index: a whole number in 0..{categories} (the row's categories)"
                        ),
                        UnknownCategory::ZeroVector => format!(
                            "must be a category index: a whole number in 0..{categories} (the row's categories), or {categories} (an unknown one)"
                        ),
                    };
                    return Err(Error::InvalidInput {
                        sample,
                        row: r.row,
                        value: value.as_f64(),
                        requirement,
                    });
                }
            }
        }
        Ok(())
    }

    /// # Panics
    /// If an index is not one of its row's categories (or the unknown one, if taken) once
    /// rounded to the nearest whole number (a network calls [`check_input`](Module::check_input)
    /// first, which rejects it).
    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        let (inputs, outputs) = (self.inputs, self.outputs());
        let block = |(y, x): (ColsMut<'_, T>, Cols<'_, T>)| {
            for (y, x) in y.0.chunks_exact_mut(outputs).zip(x.0.chunks_exact(inputs)) {
                let (through, mut vectors) = y.split_at_mut(self.passed.len());
                through.iter_mut().zip(&self.passed).for_each(|(y, &i)| *y = x[i]);
                for (r, table) in self.embedded.iter().zip(&self.tables) {
                    let (vector, rest) = vectors.split_at_mut(r.dims);
                    match column_of(self.unknown, x[r.row], r) {
                        Some(c) => {
                            vector.copy_from_slice(&table.value().as_slice()[c * r.dims..(c + 1) * r.dims])
                        }
                        None => vector.fill(T::zero()),
                    }
                    vectors = rest;
                }
            }
        };
        let data = (ColsMut(output.as_mut_slice(), outputs), Cols(input.as_slice(), inputs));
        for_column_blocks(input.ncols(), outputs, data, &block, &|(), ()| ());
    }

    fn backward(
        &mut self,
        input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        let (inputs, outputs, through) = (self.inputs, self.outputs(), self.passed.len());
        let mut offset = through;
        for (r, table) in self.embedded.iter().zip(&mut self.tables) {
            if !table.is_frozen() {
                // Summed sample by sample, in order: the same bits on any thread count.
                let grad = table.grad_slice_mut();
                grad.fill(T::zero());
                for (x, dy) in
                    input.as_slice().chunks_exact(inputs).zip(grad_output.as_slice().chunks_exact(outputs))
                {
                    // An unknown category's zero vector has no entries to learn.
                    let Some(c) = column_of(self.unknown, x[r.row], r) else { continue };
                    let column = &mut grad[c * r.dims..(c + 1) * r.dims];
                    for (g, &d) in column.iter_mut().zip(&dy[offset..offset + r.dims]) {
                        *g = crate::linalg::flush_subnormal(*g + d);
                    }
                }
            }
            offset += r.dims;
        }
        let Some(dx) = grad_input else { return };
        let columns =
            dx.as_mut_slice().chunks_exact_mut(inputs).zip(grad_output.as_slice().chunks_exact(outputs));
        for (dx, dy) in columns {
            dx.fill(T::zero());
            self.passed.iter().zip(dy).for_each(|(&i, &d)| dx[i] = d);
        }
    }

    fn visit_parameters<'a>(&'a self, visit: &mut dyn FnMut(&'a Parameter<T>)) {
        self.tables.iter().for_each(visit);
    }

    fn visit_parameters_mut<'a>(&'a mut self, visit: &mut dyn FnMut(&'a mut Parameter<T>)) {
        self.tables.iter_mut().for_each(visit);
    }

    /// A NaN or ±inf in a row that passes through reaches the output; in an embedded row it
    /// is no category, which [`check_input`](Module::check_input) rejects.
    fn propagates_non_finite(&self) -> bool {
        true
    }

    fn describe(&self) -> Option<Map<String, Value>> {
        let rows =
            self.embedded.iter().map(|r| Value::from(vec![r.row, r.categories, r.dims])).collect::<Vec<_>>();
        let mut settings =
            Map::from_iter([("inputs".to_string(), self.inputs.into()), ("rows".to_string(), rows.into())]);
        // Files of a refusing embedding stay as they were before the setting existed.
        if self.unknown != UnknownCategory::Refuse {
            settings.insert("unknown".into(), self.unknown.name().into());
        }
        Some(settings)
    }
}
