//! Where `tabular`'s rows come from (its synthetic data set, or a CSV table read as the flags
//! say) and how they are cut for evaluation: one test part, or the parts of a
//! cross-validation, each with its plan of inputs fitted on the training rows.

use crate::Args;
use crate::task::{Task, TaskKind};
use feedforward::data::table::{Encoding, Features, Table, TableOptions, TableSplit, UnseenCategories};
use feedforward::train::{self, FoldConfig, Split};
use nalgebra::DMatrix;
use rand::RngExt;
use rand::rngs::StdRng;
use std::path::Path;

/// The synthetic data's classes.
pub const CLASSES: usize = 3;

/// The synthetic data's features, in row order.
pub const FEATURES: [&str; 3] = ["amount", "rate", "days"];

/// `n` samples, one per column: class `c` drawn at 90/8/2%; the features overlap between
/// classes, on scales a thousand times apart.
pub fn synthetic(n: usize, rng: &mut StdRng) -> (DMatrix<f32>, Vec<usize>) {
    let labels: Vec<usize> = (0..n)
        .map(|_| match rng.random::<f32>() {
            u if u < 0.90 => 0,
            u if u < 0.98 => 1,
            _ => 2,
        })
        .collect();
    let x = DMatrix::from_fn(3, n, |feature, j| {
        let c = labels[j] as f32;
        match feature {
            0 => 1000.0 * (c + rng.random_range(-1.5..1.5)), // an amount in euros
            1 => 0.01 * (c * c + rng.random_range(-2.0..2.0)), // a rate
            _ => (30.0 * (1.0 + c) * rng.random::<f32>()).floor(), // a count of days
        }
    });
    (x, labels)
}

/// A CSV table and the columns the flags name.
pub struct Csv {
    table: Table,
    inputs: Vec<String>,
    categorical: Vec<String>,
    targets: Vec<String>,
}

/// Where the rows come from: a CSV table, or the synthetic data set.
pub enum Source {
    Csv(Csv),
    Synthetic(DMatrix<f32>),
}

/// The rows one evaluation trains on (a fifth of them held out for validation) and the rows
/// it scores, each as inputs and targets; and for a CSV table, the plan of inputs fitted on
/// the training rows.
pub struct Cut {
    pub train: (DMatrix<f32>, Task),
    pub test: (DMatrix<f32>, Task),
    pub plan: Option<Features>,
    /// With `--group`: the group of each training row (its class in the group column).
    pub groups: Option<Vec<usize>>,
    /// With `--weight`: the weight of each training row.
    pub weights: Option<Vec<f64>>,
    /// With `--weight`: the weight of each test row.
    pub test_weights: Option<Vec<f64>>,
}

impl Csv {
    /// Reads the table and checks the flags' columns; `task` holds the targets of every row
    /// (each cell checked, named by its line).
    pub fn read(args: &Args, path: &Path) -> Result<(Csv, Task), Box<dyn std::error::Error>> {
        let options = TableOptions { missing: args.missing_values.clone(), ..TableOptions::default() };
        let table = Table::read_with(path, &options)?;
        let mut excluded: Vec<&str> = args.ignore.iter().map(String::as_str).collect();
        excluded.extend(args.target.iter().map(String::as_str));
        excluded.extend(args.categorical.iter().map(String::as_str));
        excluded.extend(args.weight.as_deref());
        let inputs = table.columns_except(&excluded).into_iter().map(str::to_string).collect();
        if let Some(c) = args.categorical.iter().find(|&c| args.target.contains(c) || args.ignore.contains(c))
        {
            return Err(format!("--categorical {c:?}: that column is a target or ignored").into());
        }
        if let Some(weight) = &args.weight {
            if args.target.contains(weight) || args.categorical.contains(weight) {
                return Err(format!("--weight {weight:?}: that column is a target or categorical").into());
            }
            // Read now, so that a bad weight is named by its line before anything is fitted.
            table.sample_weights(weight)?;
        }
        if let Some(group) = &args.group {
            if args.categorical.contains(group) && args.unseen() == UnseenCategories::Refuse {
                return Err(format!(
                    "--group {group:?}: the test rows' {group}s are never among the training rows' \
                     (add --unseen-categories all-zeros, or leave {group:?} out of the inputs)"
                )
                .into());
            }
            // Read now, so that a missing column or a gap is named before anything is fitted.
            let groups = table.labels(group)?;
            println!("groups of {group:?}: {}", groups.classes.len());
        }
        if let Some((c, _)) = args.embed.iter().find(|(c, _)| !args.categorical.contains(c)) {
            return Err(format!("--embed {c:?}: name the column in --categorical too").into());
        }
        let targets: Vec<&str> = args.target.iter().map(String::as_str).collect();
        let task = Task::read(&table, path, args.task, &targets)?;
        let csv = Csv { table, inputs, categorical: args.categorical.clone(), targets: args.target.clone() };
        println!("{}: {} rows; inputs {:?}", path.display(), csv.table.rows(), csv.inputs);
        Ok((csv, task))
    }

    /// The cut of `parts` (rows of this table): the plan fitted on the kept rows (the test
    /// rows' values fill nothing), both parts encoded by it, and their targets read as `task`
    /// read the whole table's.
    fn cut(&self, args: &Args, parts: TableSplit, task: &Task) -> Result<Cut, Box<dyn std::error::Error>> {
        fn names(columns: &[String]) -> Vec<&str> {
            columns.iter().map(String::as_str).collect()
        }
        let (inputs, categorical, targets) =
            (names(&self.inputs), names(&self.categorical), names(&self.targets));
        let embedded: Vec<&str> = args.embed.iter().map(|(column, _)| column.as_str()).collect();
        let plan = Features::fit_with(&parts.kept, &inputs, &categorical, args.missing())?
            .with_unseen_categories(args.unseen())
            .with_indices(&embedded)?;
        let part = |table: &Table| -> Result<(DMatrix<f32>, Task), Box<dyn std::error::Error>> {
            Ok((plan.matrix(table)?, task.of_part(table, &targets)?))
        };
        let groups = args.group.as_ref().map(|column| parts.kept.labels(column)).transpose()?;
        let weights_of =
            |table: &Table| args.weight.as_ref().map(|column| table.sample_weights(column)).transpose();
        let (weights, test_weights) = (weights_of(&parts.kept)?, weights_of(&parts.held_out)?);
        let (train, test) = (part(&parts.kept)?, part(&parts.held_out)?);
        let groups = groups.map(|labels| labels.indices);
        Ok(Cut { train, test, plan: Some(plan), groups, weights, test_weights })
    }

    /// What `plan` makes of the table's columns: its one-hot rows, its embedded columns, the
    /// fills of the columns with gaps, its indicator rows.
    pub fn print_plan(&self, args: &Args, plan: &Features) -> Result<(), Box<dyn std::error::Error>> {
        for code in plan.categorical() {
            match plan.encoding(code.column()) {
                Some(Encoding::Index) => {
                    let (categories, length) = (code.classes().len(), args.vector_length(code));
                    let unseen = match plan.unseen_categories() {
                        UnseenCategories::AllZeros => "; an unseen one, zeros",
                        UnseenCategories::Refuse => "",
                    };
                    println!(
                        "embedded {}: {categories} categories, vectors of {length}{unseen}",
                        code.column()
                    );
                }
                _ => println!("one-hot rows {:?}", code.feature_names()),
            }
        }
        let (table, mut fills) = (&self.table, Vec::new());
        for column in self.inputs.iter().chain(&self.categorical) {
            let (gaps, fill) = (table.missing_cells(column)?, plan.fill(column));
            if let (1.., Some(fill)) = (gaps, fill) {
                fills.push(format!("{column} = {fill} ({gaps} of {})", table.rows()));
            }
        }
        if !fills.is_empty() {
            println!("missing values filled with {}", fills.join(", "));
        }
        if !plan.indicators().is_empty() {
            println!("missing-value rows {:?}", &plan.names()[plan.rows() - plan.indicators().len()..]);
        }
        Ok(())
    }
}

/// The cuts to evaluate: one, a fifth of the rows held out for the test, or with `--folds`
/// one per part. With `--group`, whole groups (the folds of a classification with each class
/// spread over them as evenly as the groups allow); else a classification holds out each
/// class in its share.
pub fn cuts(args: &Args, source: &Source, task: &Task) -> Result<Vec<Cut>, Box<dyn std::error::Error>> {
    let stratified = args.task == TaskKind::Classification;
    match (source, args.folds) {
        (Source::Csv(csv), None) => {
            let (table, config) = (&csv.table, args.test_split(csv.table.rows()));
            let parts = match &args.group {
                Some(column) => table.group_split(config, column)?,
                None if stratified => table.stratified_split(config, &args.target[0])?,
                None => table.split(config)?,
            };
            Ok(vec![csv.cut(args, parts, task)?])
        }
        (Source::Csv(csv), Some(folds)) => {
            let (table, config) = (&csv.table, FoldConfig { folds, seed: args.seed });
            let parts: Vec<TableSplit> = match &args.group {
                Some(column) if stratified => {
                    table.stratified_group_folds(config, &args.target[0], column)?.collect()
                }
                Some(column) => table.group_folds(config, column)?.collect(),
                None if stratified => table.stratified_folds(config, &args.target[0])?.collect(),
                None => table.folds(config)?.collect(),
            };
            parts.into_iter().map(|p| csv.cut(args, p, task)).collect()
        }
        (Source::Synthetic(x), folds) => {
            let Task::Classification { labels, classes } = task else { unreachable!("synthetic classes") };
            let task_of = |labels: Vec<usize>| Task::Classification { labels, classes: classes.clone() };
            let cut = |s: Split<f32, Vec<usize>>| Cut {
                train: (s.inputs, task_of(s.targets)),
                test: (s.held_out_inputs, task_of(s.held_out_targets)),
                plan: None,
                groups: None,
                weights: None,
                test_weights: None,
            };
            Ok(match folds {
                None => vec![cut(train::stratified_split(x, labels, args.test_split(x.ncols()))?)],
                Some(folds) => train::stratified_folds(x, labels, FoldConfig { folds, seed: args.seed })?
                    .map(cut)
                    .collect(),
            })
        }
    }
}
