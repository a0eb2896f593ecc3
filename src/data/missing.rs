//! Missing values: the policies of [`Missing`], and the fill values they fit.

use crate::{Error, Result};

/// What [`Features::fit_with`](super::table::Features::fit_with) does with a table's missing
/// values (empty cells, and cells that say a marker of
/// [`TableOptions::missing`](super::table::TableOptions::missing)), per kind of column.
///
/// A missing value is by default an error naming its file, line and column: nothing is filled in
/// unless asked. A policy fills the missing values of a kind of column with a value fitted on the
/// training table and saved with the plan, so every later table is filled with the training
/// table's values (scikit-learn's `SimpleImputer`, with its `add_indicator`):
///
/// | policy | fills a missing value with | fitted on the training table |
/// |---|---|---|
/// | [`FillNumbers::Mean`] | the mean of the column's numbers | yes |
/// | [`FillNumbers::Median`] | their median (the mean of the middle two for an even count) | yes |
/// | [`FillNumbers::Value`] | a value of your choice | no |
/// | [`FillCategories::MostFrequent`] | the most frequent class (the first in class order on a tie) | yes |
/// | [`FillCategories::MissingClass`] | a class of its own, `(missing)`, learned as the others are | yes (only a column with gaps gets it) |
///
/// With [`indicators`](Missing::indicators), each column that had missing values in the training
/// table also gets an input row of its own, `"{column} missing"`: 1 where the value was missing,
/// 0 elsewhere, so that the network can tell a filled value from a real one.
///
/// A column filled by a policy is filled in every later table too, even if the training table
/// had no missing value in it (its mean is fitted all the same); it gets an indicator row only if
/// the training table had one.
///
/// The default refuses them all, as [`Features::fit`](super::table::Features::fit) does.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Missing {
    /// For the numeric columns (default [`FillNumbers::Refuse`]).
    pub numbers: FillNumbers,
    /// For the columns of categories (default [`FillCategories::Refuse`]).
    pub categories: FillCategories,
    /// Add a 0/1 input row per column that had missing values in the training table, 1 where its
    /// value is missing (default `false`).
    pub indicators: bool,
}

/// What fills a missing value of a numeric column.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum FillNumbers {
    /// Nothing: a missing value is an error naming its line.
    #[default]
    Refuse,
    /// The mean of the column's numbers in the training table.
    Mean,
    /// The median of the column's numbers in the training table.
    Median,
    /// This value (finite).
    Value(f64),
}

/// What fills a missing value of a column of categories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FillCategories {
    /// Nothing: a missing value is an error naming its line.
    #[default]
    Refuse,
    /// The class most frequent in the training table (the first in the code's class order on a
    /// tie).
    MostFrequent,
    /// A class of its own, added after the others when the training table has missing values
    /// in the column, so the network learns what a gap says as it learns any class (scikit-learn's
    /// `OneHotEncoder` on missing values, pandas' `get_dummies(dummy_na=True)`). It is named
    /// `(missing)` (`(missing 2)`, … if a cell says that already). A column without gaps in the
    /// training table gets no such class: a missing value in a later table is then an error
    /// naming its line, as nothing learned stands for it.
    MissingClass,
}

/// The name of the class [`FillCategories::MissingClass`] adds to `classes`: `(missing)`, or
/// the first of `(missing 2)`, `(missing 3)`, … that is not one of them.
pub(crate) fn missing_class_name(classes: &[String]) -> String {
    (1..)
        .map(|n| if n == 1 { "(missing)".to_string() } else { format!("(missing {n})") })
        .find(|name| !classes.contains(name))
        .expect("some name is free")
}

impl FillNumbers {
    /// The value filling the missing values of a column whose cells hold `numbers` (`None` where
    /// missing); `None` for [`Refuse`](FillNumbers::Refuse). `column` names it in errors.
    pub(crate) fn fit(self, numbers: &[Option<f64>], column: &str) -> Result<Option<f64>> {
        let mut present: Vec<f64> = numbers.iter().flatten().copied().collect();
        let none = || Error::ShapeMismatch {
            what: format!("the numbers of column {column:?}, to fill its missing values"),
            expected: "at least one number".into(),
            got: "only missing values".into(),
        };
        let fill = match self {
            FillNumbers::Refuse => return Ok(None),
            FillNumbers::Value(value) => {
                crate::optim::check("fill value", value, true, "must be finite")?;
                value
            }
            FillNumbers::Mean if present.is_empty() => return Err(none()),
            FillNumbers::Mean => {
                let n = present.len() as f64;
                let mean = present.iter().sum::<f64>() / n;
                // Numbers near f64::MAX overflow the sum, never the sum of their shares.
                if mean.is_finite() { mean } else { present.iter().map(|v| v / n).sum() }
            }
            FillNumbers::Median => {
                present.sort_by(f64::total_cmp);
                let n = present.len();
                match n {
                    0 => return Err(none()),
                    _ if n % 2 == 1 => present[n / 2],
                    // Halved first, so that two numbers near f64::MAX do not overflow.
                    _ => present[n / 2 - 1] / 2.0 + present[n / 2] / 2.0,
                }
            }
        };
        Ok(Some(fill))
    }
}

impl FillCategories {
    /// The class index filling the missing values of a column whose cells are `classes` (`None`
    /// where missing) among `count` classes; `None` for [`Refuse`](FillCategories::Refuse), and
    /// for [`MissingClass`](FillCategories::MissingClass) on a column without gaps (otherwise
    /// `count`: the caller adds that class).
    pub(crate) fn fit(self, classes: &[Option<usize>], count: usize) -> Option<usize> {
        match self {
            FillCategories::Refuse => None,
            // The class after the others, added by the plan for a column with gaps.
            FillCategories::MissingClass => classes.contains(&None).then_some(count),
            FillCategories::MostFrequent => {
                let mut counts = vec![0usize; count];
                classes.iter().flatten().for_each(|&c| counts[c] += 1);
                // The first of the largest: `max_by_key` would take the last.
                let most = counts.iter().copied().max()?;
                counts.iter().position(|&c| c == most)
            }
        }
    }
}
