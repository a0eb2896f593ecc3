//! Cutting a data set for evaluation: [`split`] holds out a random part, [`stratified_split`]
//! each class in its share, [`group_split`] whole groups (every sample of some users); [`folds`],
//! [`stratified_folds`] and [`group_folds`] cut it into `k` parts for cross-validation, each
//! held out once. All draw from a seed, so the same seed gives the same cut, and each part keeps
//! the data set's order. Reached as `feedforward::train::…`; a CSV
//! table cuts alike (`data::table::Table::split` and its twins), so that a plan of inputs is
//! fitted on the rows a network trains on.

use crate::error::plural;
use crate::loss::Targets;
use crate::train::{Data, gather_columns};
use crate::{Error, Float, Result};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// How [`split`] cuts a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitConfig {
    /// Samples to hold out, at least 1 and fewer than the data set has.
    pub held_out: usize,
    /// Seed of the random draw of the held-out samples.
    pub seed: u64,
}

/// A data set cut in two by [`split`]: the samples to train on and those held out (for
/// validation or a test), each part in the data set's order. `B` is the targets' owned form
/// (`Vec<usize>` for labels, `DMatrix<T>` for a matrix).
#[derive(Clone, Debug, PartialEq)]
pub struct Split<T: Float, B> {
    /// Inputs of the samples to train on.
    pub inputs: DMatrix<T>,
    /// Their targets.
    pub targets: B,
    /// Inputs of the held-out samples.
    pub held_out_inputs: DMatrix<T>,
    /// Their targets.
    pub held_out_targets: B,
}

impl<T: Float, B> Split<T, B> {
    /// The [`Data`] for [`fit`](crate::train::fit): the samples to train on, with the
    /// held-out ones as the validation set.
    #[must_use]
    pub fn data<Y: Targets<Batch = B> + ?Sized>(&self) -> Data<'_, T, Y> {
        Data::new(&self.inputs, Y::view(&self.targets))
            .with_validation(&self.held_out_inputs, Y::view(&self.held_out_targets))
    }
}

/// Holds out `config.held_out` samples of a data set (`inputs`, one sample per column, and
/// their `targets`), drawn at random from `config.seed`: the same seed, the same cut. Both
/// parts are copies, each in the data set's order.
///
/// ```
/// use feedforward::train::{self, SplitConfig};
/// use nalgebra::DMatrix;
/// let x = DMatrix::<f32>::from_fn(2, 10, |i, j| (10 * i + j) as f32);
/// let labels: Vec<usize> = (0..10).map(|j| j % 3).collect();
/// let split = train::split(&x, &labels[..], SplitConfig { held_out: 3, seed: 7 })?;
/// assert_eq!((split.inputs.ncols(), split.held_out_targets.len()), (7, 3));
/// // Every sample lands in exactly one part.
/// let mut firsts: Vec<f32> = split.inputs.row(0).iter().chain(split.held_out_inputs.row(0).iter()).copied().collect();
/// firsts.sort_by(f32::total_cmp);
/// assert_eq!(firsts, (0..10).map(|j| j as f32).collect::<Vec<_>>());
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// [`Error::ShapeMismatch`] when `inputs` and `targets` hold different numbers of samples;
/// [`Error::InvalidHyperparameter`] when `held_out` is 0 or not fewer than the samples.
pub fn split<T: Float, Y: Targets + ?Sized>(
    inputs: &DMatrix<T>,
    targets: &Y,
    config: SplitConfig,
) -> Result<Split<T, Y::Batch>> {
    check_samples(inputs, targets.samples(), "targets to split")?;
    let (kept, held) = split_indices(inputs.ncols(), config)?;
    Ok(split_at(inputs, targets, &kept, &held))
}

/// [`split`] for a classifier, holding out each class in its share of the data set
/// (scikit-learn's `train_test_split(…, stratify=labels)`): a class of `n_c` of the `n`
/// samples has `held_out·n_c/n` of them held out, rounded so that the counts add up to
/// `held_out` (the largest remainders round up). A rare class then has its share in both
/// parts, where a plain random cut can leave a test set with none of it. Which samples of a
/// class are held out is drawn from `config.seed`.
///
/// ```
/// use feedforward::train::{self, SplitConfig};
/// use nalgebra::DMatrix;
/// // 90 samples of class 0 and 10 of class 1.
/// let labels: Vec<usize> = (0..100).map(|j| usize::from(j % 10 == 0)).collect();
/// let x = DMatrix::<f32>::from_fn(1, 100, |_, j| j as f32);
/// let split = train::stratified_split(&x, &labels, SplitConfig { held_out: 20, seed: 3 })?;
/// let rare = split.held_out_targets.iter().filter(|&&c| c == 1).count();
/// assert_eq!((split.held_out_targets.len(), rare), (20, 2));
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// As [`split`]'s.
pub fn stratified_split<T: Float>(
    inputs: &DMatrix<T>,
    labels: &[usize],
    config: SplitConfig,
) -> Result<Split<T, Vec<usize>>> {
    stratified_split_by(inputs, labels, labels, config)
}

/// [`stratified_split`] of targets other than the labels it stratifies by: labels with
/// sample weights ([`WeightedTargets`](crate::loss::WeightedTargets)), say. `labels[j]` is
/// sample `j`'s class; the cut is the one [`stratified_split`] makes of those labels.
///
/// ```
/// use feedforward::loss::WeightedTargets;
/// use feedforward::train::{self, SplitConfig};
/// use nalgebra::DMatrix;
/// let labels: Vec<usize> = (0..10).map(|j| usize::from(j % 5 == 0)).collect();
/// let weighted = WeightedTargets::new(&labels[..], (0..10).map(|j| j as f64).collect())?;
/// let x = DMatrix::<f32>::from_fn(1, 10, |_, j| j as f32);
/// let split = train::stratified_split_by(&x, &weighted, &labels, SplitConfig { held_out: 5, seed: 1 })?;
/// // Each sample keeps its weight (here its column's index), and one of the two of class 1 is held out.
/// assert_eq!(split.held_out_targets.weights(), split.held_out_inputs.map(f64::from).as_slice());
/// assert_eq!(split.held_out_targets.targets().iter().filter(|&&c| c == 1).count(), 1);
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// As [`stratified_split`]'s, and [`Error::ShapeMismatch`] when `targets` holds another number
/// of samples.
pub fn stratified_split_by<T: Float, Y: Targets + ?Sized>(
    inputs: &DMatrix<T>,
    targets: &Y,
    labels: &[usize],
    config: SplitConfig,
) -> Result<Split<T, Y::Batch>> {
    check_samples(inputs, targets.samples(), "targets to split")?;
    check_samples(inputs, labels.len(), "labels to split")?;
    let (kept, held) = stratified_indices(labels, config)?;
    Ok(split_at(inputs, targets, &kept, &held))
}

/// [`split`] by groups: every sample of a group lands in the same part, so a model is scored
/// on groups it never saw (scikit-learn's `GroupShuffleSplit`). `groups[j]` is sample `j`'s
/// group (a user's or a patient's index, say); whole groups are held out, in an order drawn
/// from `config.seed`, until at least `config.held_out` samples are (the last group may take
/// the count past it). Samples of one group are alike, so a plain random cut, which puts some
/// of a group on each side, scores a model on what it already saw.
///
/// ```
/// use feedforward::train::{self, SplitConfig};
/// use nalgebra::DMatrix;
/// // 12 ratings by 4 users, 3 each.
/// let users: Vec<usize> = (0..12).map(|j| j / 3).collect();
/// let x = DMatrix::<f32>::from_fn(1, 12, |_, j| j as f32);
/// let split = train::group_split(&x, &users[..], &users, SplitConfig { held_out: 4, seed: 0 })?;
/// // Two users held out whole (6 samples: 3 were not enough), none of theirs kept.
/// assert_eq!(split.held_out_targets.len(), 6);
/// assert!(split.held_out_targets.iter().all(|u| !split.targets.contains(u)));
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// [`Error::ShapeMismatch`] when `inputs`, `targets` and `groups` hold different numbers of
/// samples; [`Error::InvalidHyperparameter`] when `held_out` is 0 or not fewer than the
/// samples, or when it would hold out every group.
pub fn group_split<T: Float, Y: Targets + ?Sized>(
    inputs: &DMatrix<T>,
    targets: &Y,
    groups: &[usize],
    config: SplitConfig,
) -> Result<Split<T, Y::Batch>> {
    check_samples(inputs, targets.samples(), "targets to split")?;
    check_samples(inputs, groups.len(), "groups to split by")?;
    let (kept, held) = group_split_indices(groups, config)?;
    Ok(split_at(inputs, targets, &kept, &held))
}

/// The samples [`group_split`] keeps and those it holds out, each in increasing order; shared
/// with `Table::group_split`.
pub(crate) fn group_split_indices(groups: &[usize], config: SplitConfig) -> Result<(Vec<usize>, Vec<usize>)> {
    check_held_out(groups.len(), config)?;
    let mut members = by_class(groups);
    members.shuffle(&mut StdRng::seed_from_u64(config.seed));
    let (mut held, mut taken) = (Vec::with_capacity(config.held_out), 0);
    while held.len() < config.held_out {
        held.extend_from_slice(&members[taken]);
        taken += 1;
    }
    if taken == members.len() {
        return Err(Error::InvalidHyperparameter {
            name: "held-out samples",
            value: config.held_out as f64,
            requirement: "must leave at least one whole group to keep",
        });
    }
    let mut kept: Vec<usize> = members[taken..].concat();
    held.sort_unstable();
    kept.sort_unstable();
    Ok((kept, held))
}

/// The samples `kept` and those `held` out, copied in the order given.
fn split_at<T: Float, Y: Targets + ?Sized>(
    inputs: &DMatrix<T>,
    targets: &Y,
    kept: &[usize],
    held: &[usize],
) -> Split<T, Y::Batch> {
    let part = |indices: &[usize]| {
        let (mut x, mut y) = (DMatrix::zeros(0, 0), Y::Batch::default());
        gather_columns(inputs, indices, &mut x);
        targets.gather(indices, &mut y);
        (x, y)
    };
    let ((inputs, targets), (held_out_inputs, held_out_targets)) = (part(kept), part(held));
    Split { inputs, targets, held_out_inputs, held_out_targets }
}

/// The samples [`split`] keeps and those it holds out, each in increasing order; shared with
/// `Table::split`, so a table and its matrix split alike.
pub(crate) fn split_indices(samples: usize, config: SplitConfig) -> Result<(Vec<usize>, Vec<usize>)> {
    check_held_out(samples, config)?;
    let mut order: Vec<usize> = (0..samples).collect();
    order.shuffle(&mut StdRng::seed_from_u64(config.seed));
    let mut kept = order.split_off(config.held_out);
    order.sort_unstable();
    kept.sort_unstable();
    Ok((kept, order))
}

/// Refuses to hold out no sample, or every one.
fn check_held_out(samples: usize, config: SplitConfig) -> Result<()> {
    if config.held_out == 0 || config.held_out >= samples {
        return Err(Error::InvalidHyperparameter {
            name: "held-out samples",
            value: config.held_out as f64,
            requirement: "must be at least 1 and fewer than the samples",
        });
    }
    Ok(())
}

/// The samples [`stratified_split`] keeps and those it holds out, each in increasing order;
/// shared with `Table::stratified_split`.
pub(crate) fn stratified_indices(labels: &[usize], config: SplitConfig) -> Result<(Vec<usize>, Vec<usize>)> {
    let samples = labels.len();
    check_held_out(samples, config)?;
    let classes = by_class(labels);
    // Each class's quota held_out·n_c/n: its whole part, then one more for the classes with the
    // largest remainders until the counts add up (each whole part is below n_c, as held_out < n).
    let quota = |members: &[usize]| {
        (config.held_out * members.len() / samples, config.held_out * members.len() % samples)
    };
    let mut counts: Vec<usize> = classes.iter().map(|c| quota(c).0).collect();
    let mut by_remainder: Vec<usize> = (0..classes.len()).collect();
    by_remainder.sort_by_key(|&k| std::cmp::Reverse(quota(&classes[k]).1));
    let short = config.held_out - counts.iter().sum::<usize>();
    by_remainder.iter().take(short).for_each(|&k| counts[k] += 1);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let (mut kept, mut held) =
        (Vec::with_capacity(samples - config.held_out), Vec::with_capacity(config.held_out));
    for (mut members, count) in classes.into_iter().zip(counts) {
        members.shuffle(&mut rng);
        held.extend_from_slice(&members[..count]);
        kept.extend_from_slice(&members[count..]);
    }
    kept.sort_unstable();
    held.sort_unstable();
    Ok((kept, held))
}

/// How [`folds`] cuts a data set for cross-validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoldConfig {
    /// Parts, each held out once: at least 2, and at most the samples.
    pub folds: usize,
    /// Seed of the random draw of the parts.
    pub seed: u64,
}

/// `k`-fold cross-validation: the data set cut at random into `config.folds` parts of sizes
/// that differ by at most one, and for each part in turn a [`Split`] holding it out
/// (scikit-learn's `KFold(shuffle=True)`). Train on each split's kept samples, score on its
/// held-out ones, and average the scores: every sample is scored once, by a model that did
/// not train on it. The splits are copied one at a time, as the iterator reaches them.
///
/// ```
/// use feedforward::train::{self, FoldConfig};
/// use nalgebra::DMatrix;
/// let x = DMatrix::<f32>::from_fn(2, 10, |i, j| (10 * i + j) as f32);
/// let labels: Vec<usize> = (0..10).map(|j| j % 2).collect();
/// let mut scored = Vec::new();
/// for fold in train::folds(&x, &labels[..], FoldConfig { folds: 3, seed: 1 })? {
///     assert_eq!(fold.inputs.ncols() + fold.held_out_inputs.ncols(), 10);
///     scored.extend(fold.held_out_inputs.row(0).iter().map(|&v| v as usize));
/// }
/// scored.sort_unstable();
/// assert_eq!(scored, (0..10).collect::<Vec<_>>()); // each sample held out once
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// [`Error::ShapeMismatch`] when `inputs` and `targets` hold different numbers of samples;
/// [`Error::InvalidHyperparameter`] when `folds` is below 2 or above the samples.
pub fn folds<'a, T: Float, Y: Targets + ?Sized>(
    inputs: &'a DMatrix<T>,
    targets: &'a Y,
    config: FoldConfig,
) -> Result<Folds<'a, T, Y>> {
    check_samples(inputs, targets.samples(), "targets to cut into folds")?;
    let parts = fold_parts(inputs.ncols(), config)?;
    Ok(Folds { inputs, targets, parts, next: 0 })
}

/// [`folds`] for a classifier, each class spread over the parts in its share (scikit-learn's
/// `StratifiedKFold(shuffle=True)`): a class's count in two parts differs by at most one, and
/// so do the parts' sizes. A rare class then reaches every part it can, where a plain cut may
/// leave a part with none of it to score.
///
/// # Errors
/// As [`folds`]'s.
pub fn stratified_folds<'a, T: Float>(
    inputs: &'a DMatrix<T>,
    labels: &'a [usize],
    config: FoldConfig,
) -> Result<Folds<'a, T, [usize]>> {
    stratified_folds_by(inputs, labels, labels, config)
}

/// [`stratified_folds`] of targets other than the labels it stratifies by (labels with sample
/// weights, say): the parts [`stratified_folds`] makes of `labels`.
///
/// # Errors
/// As [`stratified_folds`]'s, and [`Error::ShapeMismatch`] when `targets` holds another number
/// of samples.
pub fn stratified_folds_by<'a, T: Float, Y: Targets + ?Sized>(
    inputs: &'a DMatrix<T>,
    targets: &'a Y,
    labels: &[usize],
    config: FoldConfig,
) -> Result<Folds<'a, T, Y>> {
    check_samples(inputs, targets.samples(), "targets to cut into folds")?;
    check_samples(inputs, labels.len(), "labels to cut into folds")?;
    let parts = stratified_fold_parts(labels, config)?;
    Ok(Folds { inputs, targets, parts, next: 0 })
}

/// [`folds`] by groups: every sample of a group in the same part (scikit-learn's
/// `GroupKFold`), so each part is scored by a model that saw none of its groups. `groups[j]` is
/// sample `j`'s group. The groups are taken largest first (those of one size in an order drawn
/// from `config.seed`), each into the part with the fewest samples so far, which evens out the
/// parts' sizes.
///
/// ```
/// use feedforward::train::{self, FoldConfig};
/// use nalgebra::DMatrix;
/// // 5 patients with 4, 3, 2, 2 and 1 visits.
/// let patients = [0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4];
/// let x = DMatrix::<f32>::from_fn(1, 12, |_, j| j as f32);
/// let folds = train::group_folds(&x, &patients[..], &patients, FoldConfig { folds: 2, seed: 0 })?;
/// let sizes: Vec<usize> = folds.parts().iter().map(Vec::len).collect();
/// assert_eq!(sizes, [6, 6]); // 4 + 2 and 3 + 2 + 1
/// for fold in folds {
///     assert!(fold.held_out_targets.iter().all(|p| !fold.targets.contains(p)));
/// }
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// [`Error::ShapeMismatch`] when `inputs`, `targets` and `groups` hold different numbers of
/// samples; [`Error::InvalidHyperparameter`] when `folds` is below 2 or above the groups.
pub fn group_folds<'a, T: Float, Y: Targets + ?Sized>(
    inputs: &'a DMatrix<T>,
    targets: &'a Y,
    groups: &[usize],
    config: FoldConfig,
) -> Result<Folds<'a, T, Y>> {
    check_samples(inputs, targets.samples(), "targets to cut into folds")?;
    check_samples(inputs, groups.len(), "groups to cut into folds by")?;
    let parts = group_fold_parts(groups, None, config)?;
    Ok(Folds { inputs, targets, parts, next: 0 })
}

/// [`group_folds`] for a classifier, each class spread over the parts as evenly as whole
/// groups allow (what scikit-learn's `StratifiedGroupKFold` is for: patients with several
/// samples each, and a rare diagnosis). `labels[j]` is sample `j`'s class, `groups[j]` its
/// group. The groups are taken largest first (those of one size in an order drawn from
/// `config.seed`), each into the part where it least unbalances the classes: the part that
/// keeps `Σ_parts Σ_classes (share of the class in the part − 1/folds)²` lowest, the part
/// with the fewest samples on a tie.
///
/// ```
/// use feedforward::train::{self, FoldConfig};
/// use nalgebra::DMatrix;
/// // 8 patients of 3 visits each; patients 0 and 1 have the rare class 1.
/// let patients: Vec<usize> = (0..24).map(|j| j / 3).collect();
/// let labels: Vec<usize> = patients.iter().map(|&p| usize::from(p < 2)).collect();
/// let x = DMatrix::<f32>::from_fn(1, 24, |_, j| j as f32);
/// let folds = train::stratified_group_folds(&x, &labels[..], &labels, &patients, FoldConfig { folds: 2, seed: 0 })?;
/// for part in folds.parts() {
///     // Each part has one of the two rare patients, and 12 visits.
///     assert_eq!((part.iter().filter(|&&j| labels[j] == 1).count(), part.len()), (3, 12));
/// }
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// As [`group_folds`]'s, and [`Error::ShapeMismatch`] when `labels` holds another number of
/// samples.
pub fn stratified_group_folds<'a, T: Float, Y: Targets + ?Sized>(
    inputs: &'a DMatrix<T>,
    targets: &'a Y,
    labels: &[usize],
    groups: &[usize],
    config: FoldConfig,
) -> Result<Folds<'a, T, Y>> {
    check_samples(inputs, targets.samples(), "targets to cut into folds")?;
    check_samples(inputs, labels.len(), "labels to cut into folds")?;
    check_samples(inputs, groups.len(), "groups to cut into folds by")?;
    let parts = group_fold_parts(groups, Some(labels), config)?;
    Ok(Folds { inputs, targets, parts, next: 0 })
}

/// The parts [`group_folds`] holds out (with `labels`, those of [`stratified_group_folds`]),
/// each in increasing order; shared with `Table::group_folds` and its stratified twin.
pub(crate) fn group_fold_parts(
    groups: &[usize],
    labels: Option<&[usize]>,
    config: FoldConfig,
) -> Result<Vec<Vec<usize>>> {
    let mut members = by_class(groups);
    if config.folds < 2 || config.folds > members.len() {
        return Err(Error::InvalidHyperparameter {
            name: "folds",
            value: config.folds as f64,
            requirement: "must be at least 2 and at most the groups",
        });
    }
    members.shuffle(&mut StdRng::seed_from_u64(config.seed));
    // Stable: groups of one size stay in the drawn order.
    members.sort_by_key(|m| std::cmp::Reverse(m.len()));
    let mut parts: Vec<Vec<usize>> = vec![Vec::new(); config.folds];
    let mut shares = labels.map(|labels| ClassShares::new(labels, config.folds));
    for group in members {
        let fewest = |a: &usize, b: &usize| (parts[*a].len(), a).cmp(&(parts[*b].len(), b));
        let part = match &mut shares {
            None => (0..config.folds).min_by(fewest),
            Some(shares) => {
                let counts = shares.counts_of(&group);
                let cost = |k: usize| shares.cost_of_adding(k, &counts);
                (0..config.folds).min_by(|a, b| cost(*a).total_cmp(&cost(*b)).then_with(|| fewest(a, b)))
            }
        }
        .expect("at least 2 parts");
        if let Some(shares) = &mut shares {
            shares.add(part, &group);
        }
        parts[part].extend(group);
    }
    parts.iter_mut().for_each(|p| p.sort_unstable());
    Ok(parts)
}

/// Each class's count in each part of a stratified group cut, against the class's total.
struct ClassShares<'a> {
    labels: &'a [usize],
    /// Samples of each class in all.
    totals: Vec<usize>,
    /// `counts[k][c]`: samples of class `c` in part `k` so far.
    counts: Vec<Vec<usize>>,
}

impl<'a> ClassShares<'a> {
    fn new(labels: &'a [usize], folds: usize) -> Self {
        let classes = labels.iter().max().map_or(0, |&c| c + 1);
        let mut totals = vec![0; classes];
        labels.iter().for_each(|&c| totals[c] += 1);
        ClassShares { labels, totals, counts: vec![vec![0; classes]; folds] }
    }

    /// The samples of each class among `members`.
    fn counts_of(&self, members: &[usize]) -> Vec<usize> {
        let mut counts = vec![0; self.totals.len()];
        members.iter().for_each(|&j| counts[self.labels[j]] += 1);
        counts
    }

    /// How much adding `counts` to part `k` raises `Σ_classes (share − 1/folds)²` (the other
    /// parts' terms do not change).
    fn cost_of_adding(&self, k: usize, counts: &[usize]) -> f64 {
        let even = 1.0 / self.counts.len() as f64;
        let term = |c: usize, n: usize| (n as f64 / self.totals[c] as f64 - even).powi(2);
        (0..counts.len())
            .filter(|&c| counts[c] > 0)
            .map(|c| term(c, self.counts[k][c] + counts[c]) - term(c, self.counts[k][c]))
            .sum()
    }

    fn add(&mut self, k: usize, members: &[usize]) {
        members.iter().for_each(|&j| self.counts[k][self.labels[j]] += 1);
    }
}

/// The splits of a cross-validation, one per part held out, in order: see [`folds`].
pub struct Folds<'a, T: Float, Y: Targets + ?Sized> {
    inputs: &'a DMatrix<T>,
    targets: &'a Y,
    /// Each part's samples, in increasing order.
    parts: Vec<Vec<usize>>,
    next: usize,
}

impl<T: Float, Y: Targets + ?Sized> Folds<'_, T, Y> {
    /// Each part's samples (its indices into the data set, in increasing order): part `k` is
    /// what the `k`-th split holds out.
    #[must_use]
    pub fn parts(&self) -> &[Vec<usize>] {
        &self.parts
    }
}

impl<T: Float, Y: Targets + ?Sized> Iterator for Folds<'_, T, Y> {
    type Item = Split<T, Y::Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        let held = self.parts.get(self.next)?;
        let kept = kept_besides(&self.parts, self.next);
        self.next += 1;
        Some(split_at(self.inputs, self.targets, &kept, held))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.parts.len() - self.next;
        (left, Some(left))
    }
}

impl<T: Float, Y: Targets + ?Sized> ExactSizeIterator for Folds<'_, T, Y> {}

/// Every sample not in part `k`, in increasing order.
pub(crate) fn kept_besides(parts: &[Vec<usize>], k: usize) -> Vec<usize> {
    let mut kept: Vec<usize> =
        parts.iter().enumerate().filter(|&(j, _)| j != k).flat_map(|(_, p)| p.clone()).collect();
    kept.sort_unstable();
    kept
}

/// The parts [`folds`] holds out, each in increasing order; shared with `Table::folds`.
pub(crate) fn fold_parts(samples: usize, config: FoldConfig) -> Result<Vec<Vec<usize>>> {
    deal(&[(0..samples).collect()], config)
}

/// The parts [`stratified_folds`] holds out; shared with `Table::stratified_folds`.
pub(crate) fn stratified_fold_parts(labels: &[usize], config: FoldConfig) -> Result<Vec<Vec<usize>>> {
    deal(&by_class(labels), config)
}

/// The parts of a cross-validation over the samples of `groups` (one group, or one per
/// class): each group shuffled, the groups laid end to end, then dealt to the parts in turn,
/// so that each group's count, and each part's size, differ by at most one between parts.
fn deal(groups: &[Vec<usize>], config: FoldConfig) -> Result<Vec<Vec<usize>>> {
    let samples: usize = groups.iter().map(Vec::len).sum();
    if config.folds < 2 || config.folds > samples {
        return Err(Error::InvalidHyperparameter {
            name: "folds",
            value: config.folds as f64,
            requirement: "must be at least 2 and at most the samples",
        });
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut parts = vec![Vec::with_capacity(samples / config.folds + 1); config.folds];
    let mut dealt = 0;
    for group in groups {
        let mut members = group.clone();
        members.shuffle(&mut rng);
        for sample in members {
            parts[dealt % config.folds].push(sample);
            dealt += 1;
        }
    }
    parts.iter_mut().for_each(|p| p.sort_unstable());
    Ok(parts)
}

/// The samples of each class (or group), classes in increasing order, each in increasing order.
fn by_class(labels: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&i| labels[i]);
    order.chunk_by(|&a, &b| labels[a] == labels[b]).map(<[usize]>::to_vec).collect()
}

/// Refuses targets (`what`) whose count of samples differs from the inputs' columns.
fn check_samples<T: Float>(inputs: &DMatrix<T>, samples: usize, what: &str) -> Result<()> {
    if samples != inputs.ncols() {
        return Err(Error::shape(
            what,
            format!("{} (one per input column)", plural(inputs.ncols(), "sample")),
            plural(samples, "sample"),
        ));
    }
    Ok(())
}
