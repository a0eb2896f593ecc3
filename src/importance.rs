//! Permutation importance (Breiman, 2001; scikit-learn's `permutation_importance`): how much a
//! trained network's loss grows when one input's values are shuffled across the samples,
//! which breaks that input's link to the targets and keeps its distribution.
//!
//! ```text
//! importance(g) = mean over repeats of L(x with group g's rows shuffled) − L(x)
//! ```
//!
//! Measured on data the network did not train on, it says which inputs the predictions rely
//! on, for any loss and any network; inputs that carry the same information share it (shuffling
//! one leaves the other), so a small importance does not prove an input useless.

use crate::loss::Loss;
use crate::{Error, Float, Network, Result};
use nalgebra::DMatrix;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::ops::Range;

/// The settings of [`permutation_importance`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permutation {
    /// Shuffles per group, averaged (at least 1). Default: 5, scikit-learn's.
    pub repeats: usize,
    /// Seed of the shuffles. Default: 0.
    pub seed: u64,
}

impl Default for Permutation {
    fn default() -> Self {
        Permutation { repeats: 5, seed: 0 }
    }
}

/// One group's importance: the growth of the loss when its rows are shuffled.
#[derive(Clone, Debug, PartialEq)]
pub struct Importance {
    /// The input rows shuffled together.
    pub rows: Range<usize>,
    /// The mean over the repeats of the loss with the rows shuffled, less the loss without.
    pub mean: f64,
    /// The standard deviation of that growth over the repeats (population, as scikit-learn's).
    pub std: f64,
}

/// The permutation importance of each group of consecutive input rows of `x` (`inputs ×
/// samples`, one sample per column): the objective ([`Network::loss`]) on `x` and `targets`
/// with the group's rows shuffled across the samples, `config.repeats` times, less the
/// objective on `x` as it is. A group is the rows of one input: `r..r + 1` for a number, the
/// rows of a one-hot code together (shuffled alone, its rows would make codes with several
/// ones). The shuffles draw from `config.seed`, group after group, repeat after repeat: the
/// same seed gives the same numbers, on any thread count.
///
/// ```
/// use feedforward::importance::{Permutation, permutation_importance};
/// use feedforward::{Layer, MeanSquaredError, Network};
/// use nalgebra::DMatrix;
/// // y = 2·x₀: a layer that reads x₀ and ignores x₁.
/// let weight = DMatrix::from_column_slice(2, 1, &[2.0, 0.0]);
/// let layer = Layer::from_parts(weight, None)?;
/// let net = Network::<f64>::new(2).push(layer)?;
/// let x = DMatrix::from_fn(2, 50, |i, j| ((j * (3 + i) * 7) % 11) as f64);
/// let y = DMatrix::from_fn(1, 50, |_, j| 2.0 * x[(0, j)]);
/// let groups = [0..1, 1..2];
/// let found = permutation_importance(&net, &x, &MeanSquaredError, &y, &groups, &Permutation::default())?;
/// assert!(found[0].mean > 1.0);
/// assert_eq!(found[1].mean, 0.0); // shuffling x₁ changes nothing
/// # Ok::<(), feedforward::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidHyperparameter`] for 0 repeats; [`Error::ShapeMismatch`] for an empty group
/// or one past the rows of `x`; [`Error::EmptyBatch`] for no sample; and what
/// [`Network::loss`] refuses (the wrong number of rows, bad targets, non-finite inputs).
pub fn permutation_importance<T, L>(
    network: &Network<T>,
    x: &DMatrix<T>,
    loss: &L,
    targets: &L::Target,
    groups: &[Range<usize>],
    config: &Permutation,
) -> Result<Vec<Importance>>
where
    T: Float,
    L: Loss<T> + ?Sized,
{
    if config.repeats == 0 {
        return Err(Error::InvalidHyperparameter {
            name: "permutation repeats",
            value: 0.0,
            requirement: "must be at least 1",
        });
    }
    if x.ncols() == 0 {
        return Err(Error::EmptyBatch { what: "permutation importance input" });
    }
    if let Some(bad) = groups.iter().find(|g| g.is_empty() || g.end > x.nrows()) {
        return Err(Error::shape(
            "permutation importance group",
            format!("a non-empty range of the {} input rows", x.nrows()),
            format!("{bad:?}"),
        ));
    }
    let baseline = network.loss(x, loss, targets)?.as_f64();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..x.ncols()).collect();
    let mut shuffled = x.clone();
    let mut found = Vec::with_capacity(groups.len());
    for group in groups {
        let mut growth = Vec::with_capacity(config.repeats);
        for _ in 0..config.repeats {
            order.iter_mut().enumerate().for_each(|(j, o)| *o = j);
            order.shuffle(&mut rng);
            for (j, &from) in order.iter().enumerate() {
                for r in group.clone() {
                    shuffled[(r, j)] = x[(r, from)];
                }
            }
            growth.push(network.loss(&shuffled, loss, targets)?.as_f64() - baseline);
        }
        // Back to `x` before the next group is shuffled.
        for r in group.clone() {
            shuffled.row_mut(r).copy_from(&x.row(r));
        }
        let mean = growth.iter().sum::<f64>() / growth.len() as f64;
        let variance = growth.iter().map(|g| (g - mean) * (g - mean)).sum::<f64>() / growth.len() as f64;
        found.push(Importance { rows: group.clone(), mean, std: variance.sqrt() });
    }
    Ok(found)
}
