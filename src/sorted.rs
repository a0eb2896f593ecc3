//! Outputs that never cross: [`Sorted`] sorts each group of consecutive rows, so that a
//! network predicting several quantiles of one target (0.1, 0.5, 0.9 under
//! [`Quantile`](crate::Quantile)) never predicts the 0.9 quantile below the 0.1.

use crate::{Error, Float, Module, Result};
use nalgebra::DMatrix;
use serde_json::{Map, Value};

/// Each group of `group` consecutive rows sorted in ascending order, sample by sample: the
/// rearrangement of Chernozhukov, Fernández-Val and Galichon ("Quantile and probability curves
/// without crossing", Econometrica, 2010), who show that sorting estimated quantiles never
/// takes them further from the true ones.
///
/// ```text
/// forward:   y = (z_π(0), z_π(1), …),  π the order of the group's inputs, smallest first
/// backward:  dL/dz_π(k) = dL/dy_k      (each input takes the gradient of the row it became)
/// ```
///
/// Put it last, after a [`Layer`](crate::Layer) with a row per quantile, the quantiles of a
/// target in ascending order and each target's in a group of its own, and train through it
/// with [`Quantile`](crate::Quantile): quantile `τₖ`'s loss is then taken at the `k`-th
/// smallest output. Where the layer's rows are already in order it is the identity, so it
/// changes nothing where a plain network does not cross. Equal inputs keep their order (the
/// sort is stable). A group of 1 is the identity. No parameters.
///
/// ```
/// use feedforward::{Module, Sorted};
/// use nalgebra::DMatrix;
/// // One sample, two targets of three quantiles each; the first group crossed.
/// let z = DMatrix::from_column_slice(6, 1, &[0.9, 0.1, 0.5, 1.0, 2.0, 3.0]);
/// let mut y = DMatrix::zeros(6, 1);
/// Sorted::new(3)?.forward(&z, &mut y);
/// assert_eq!(y.as_slice(), [0.1, 0.5, 0.9, 1.0, 2.0, 3.0]);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sorted {
    group: usize,
}

impl Sorted {
    /// Groups of `group` rows (the quantiles of one target), at least 1.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a group of 0.
    pub fn new(group: usize) -> Result<Self> {
        if group == 0 {
            return Err(Error::InvalidHyperparameter {
                name: "Sorted group",
                value: 0.0,
                requirement: "must be at least 1 row",
            });
        }
        Ok(Sorted { group })
    }

    /// Rows per group.
    #[must_use]
    pub fn group(&self) -> usize {
        self.group
    }

    /// From a model file's settings.
    pub(crate) fn from_settings(spec: &Map<String, Value>) -> std::result::Result<Self, String> {
        let group = crate::weights::count(spec.get("group"), "group")?;
        Sorted::new(group).map_err(|e| e.to_string())
    }
}

/// Groups up to this many rows keep their order on the stack: a training step or an inference
/// pass through [`Sorted`] allocates nothing (beyond it, one buffer a pass).
const STACK_GROUP: usize = 64;

/// Runs `f` with a buffer of `group` positions.
fn with_order<R>(group: usize, f: impl FnOnce(&mut [usize]) -> R) -> R {
    if group <= STACK_GROUP { f(&mut [0; STACK_GROUP][..group]) } else { f(&mut vec![0; group]) }
}

/// Writes into `order` the positions of `z`'s entries from smallest to largest, equal ones in
/// their order (an insertion sort: groups are a few rows). A NaN compares as neither smaller
/// nor larger, so it stays where the others leave it.
fn order_of<T: Float>(z: &[T], order: &mut [usize]) {
    for k in 0..order.len() {
        order[k] = k;
        let mut i = k;
        while i > 0 && z[order[i - 1]] > z[order[i]] {
            order.swap(i - 1, i);
            i -= 1;
        }
    }
}

impl<T: Float> Module<T> for Sorted {
    fn kind(&self) -> &'static str {
        "Sorted"
    }

    fn output_rows(&self, input_rows: usize) -> Result<usize> {
        if !input_rows.is_multiple_of(self.group) {
            return Err(Error::shape(
                "Sorted input",
                format!("rows in groups of {}", self.group),
                format!("{input_rows} rows"),
            ));
        }
        Ok(input_rows)
    }

    fn forward(&self, input: &DMatrix<T>, output: &mut DMatrix<T>) {
        with_order(self.group, |order| {
            let groups = output.as_mut_slice().chunks_exact_mut(self.group);
            for (y, z) in groups.zip(input.as_slice().chunks_exact(self.group)) {
                order_of(z, order);
                y.iter_mut().zip(order.iter()).for_each(|(y, &k)| *y = z[k]);
            }
        });
    }

    fn backward(
        &mut self,
        input: &DMatrix<T>,
        _output: &DMatrix<T>,
        grad_output: &DMatrix<T>,
        grad_input: Option<&mut DMatrix<T>>,
    ) {
        let Some(dz) = grad_input else { return };
        with_order(self.group, |order| {
            let groups = dz.as_mut_slice().chunks_exact_mut(self.group);
            let inputs = input.as_slice().chunks_exact(self.group);
            for ((dz, z), dy) in groups.zip(inputs).zip(grad_output.as_slice().chunks_exact(self.group)) {
                order_of(z, order);
                order.iter().zip(dy).for_each(|(&k, &dy)| dz[k] = dy);
            }
        });
    }

    /// Sorting moves values without changing them: a NaN or ±inf in stays in.
    fn propagates_non_finite(&self) -> bool {
        true
    }

    fn describe(&self) -> Option<Map<String, Value>> {
        let mut settings = Map::new();
        settings.insert("group".into(), self.group.into());
        Some(settings)
    }
}
