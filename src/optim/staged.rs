//! Double-buffered optimizer state, and the state as a checkpoint holds it.

use crate::{Error, Float, Result};

/// How many values a kind of optimizer state keeps for a tensor: the length of its buffer,
/// which [`Staged::slot`] allocates and a restored state must match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extent {
    /// One value per value of the tensor (Adam's `m`, a momentum buffer).
    PerValue,
    /// One value for the whole tensor (the per-tensor RMSprop `g`, Adam's step count).
    PerTensor,
}

impl Extent {
    /// The buffer length for a tensor of `values` values.
    #[must_use]
    pub fn len(self, values: usize) -> usize {
        match self {
            Extent::PerValue => values,
            Extent::PerTensor => 1,
        }
    }
}

/// One kind of per-tensor optimizer state (Adam's `m`, say), double-buffered so that a step
/// can be abandoned: a step reads the **current** buffer and writes the **staged** one;
/// [`commit`](Staged::commit) swaps the two (a pointer swap per tensor, no copy). A step that
/// is never committed leaves the current state as it was.
///
/// Tensors are numbered as [`Optimizer::update`](super::Optimizer::update) numbers them and
/// created on first sight, filled with an initial value.
///
/// ```
/// use feedforward::optim::{Extent, Staged};
///
/// let mut m = Staged::<f32>::new("exp_avg", Extent::PerValue);
/// m.discard();
/// let (current, staged) = m.slot(0, 2, 0.0);
/// staged[0] = current[0] + 1.0;
/// staged[1] = current[1] + 2.0;
/// assert_eq!(m.current(0), None); // not committed yet: no state for tensor 0
/// m.commit();
/// assert_eq!(m.current(0), Some(&[1.0, 2.0][..]));
/// ```
#[derive(Clone)]
pub struct Staged<T> {
    name: &'static str,
    extent: Extent,
    current: Vec<Vec<T>>,
    staged: Vec<Vec<T>>,
    /// Whether tensor `i`'s staged buffer was written in this step.
    touched: Vec<bool>,
    /// Whether tensor `i`'s current buffer was created in this step: a step that is not
    /// committed must not leave it behind (the tensor would look seen before).
    created: Vec<bool>,
}

/// Shows the name and each tensor's committed length, not the values (as many as the
/// network's parameters).
impl<T> std::fmt::Debug for Staged<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lengths: Vec<usize> = self.current.iter().map(Vec::len).collect();
        f.debug_struct("Staged")
            .field("name", &self.name)
            .field("extent", &self.extent)
            .field("lengths", &lengths)
            .finish_non_exhaustive()
    }
}

impl<T: Float> Staged<T> {
    /// An empty state called `name` (the prefix of its tensors in a checkpoint), keeping
    /// `extent` values per tensor.
    #[must_use]
    pub fn new(name: &'static str, extent: Extent) -> Self {
        Staged {
            name,
            extent,
            current: Vec::new(),
            staged: Vec::new(),
            touched: Vec::new(),
            created: Vec::new(),
        }
    }

    /// The name given to [`new`](Staged::new).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How many values it keeps per tensor.
    #[must_use]
    pub fn extent(&self) -> Extent {
        self.extent
    }

    /// Tensor `index`'s current buffer (to read) and staged buffer (to write), for a tensor of
    /// `values` values: both [`extent.len(values)`](Extent::len) long. A tensor seen for the
    /// first time starts filled with `initial`, and so does one whose buffer has another length
    /// (the optimizer moved to another network: a restored state was checked against its
    /// network by [`from_state`](Staged::from_state)). If the step is not committed,
    /// [`discard`](Staged::discard) forgets such a new buffer again.
    pub fn slot(&mut self, index: usize, values: usize, initial: T) -> (&[T], &mut [T]) {
        let len = self.extent.len(values);
        if self.current.len() <= index {
            self.current.resize_with(index + 1, Vec::new);
            self.staged.resize_with(index + 1, Vec::new);
            self.touched.resize(index + 1, false);
            self.created.resize(index + 1, false);
        }
        if self.current[index].len() != len {
            self.current[index] = vec![initial; len];
            self.created[index] = true;
        }
        self.staged[index].resize(len, initial);
        self.touched[index] = true;
        (&self.current[index], &mut self.staged[index])
    }

    /// Makes every buffer written since the last [`discard`](Staged::discard) current.
    pub fn commit(&mut self) {
        for (i, touched) in self.touched.iter_mut().enumerate() {
            if std::mem::take(touched) {
                std::mem::swap(&mut self.current[i], &mut self.staged[i]);
            }
        }
        self.created.iter_mut().for_each(|c| *c = false);
    }

    /// Forgets what was staged, and the buffers of tensors first seen, in a step that was not
    /// committed (call at the start of every step).
    pub fn discard(&mut self) {
        self.touched.iter_mut().for_each(|t| *t = false);
        for (current, created) in self.current.iter_mut().zip(&mut self.created) {
            if std::mem::take(created) {
                *current = Vec::new();
            }
        }
    }

    /// Tensor `index`'s committed state, if it has been seen.
    #[must_use]
    pub fn current(&self, index: usize) -> Option<&[T]> {
        let committed = !self.created.get(index).copied().unwrap_or(false);
        self.current.get(index).filter(|v| committed && !v.is_empty()).map(Vec::as_slice)
    }

    /// Appends every committed buffer to `out`, named `"{name}.{index}"`.
    pub fn export(&self, out: &mut Vec<(String, Vec<T>)>) {
        for i in 0..self.current.len() {
            if let Some(v) = self.current(i) {
                out.push((format!("{}.{i}", self.name), v.to_vec()));
            }
        }
    }

    /// Restores the state named `name` from `state`: its buffers named `"{name}.{index}"`
    /// (others are left to the other kinds), checked against the parameters they are for:
    /// `lengths[i]` is the number of values of parameter `i`, numbered as
    /// [`Optimizer::update`](super::Optimizer::update) numbers them.
    ///
    /// Rejects a name whose index is not a tensor number written plainly, a number with no
    /// parameter (`lengths` is too short), a buffer whose length is not
    /// [`extent.len`](Extent::len) of its parameter's, and non-finite values.
    pub fn from_state(
        name: &'static str,
        extent: Extent,
        state: &OptimizerState<T>,
        lengths: &[usize],
    ) -> Result<Self> {
        let mut current: Vec<Vec<T>> = Vec::new();
        for (key, values) in &state.buffers {
            let Some(number) = tensor_number(key, name) else {
                continue;
            };
            let bad = |reason: String| Error::OptimizerState { reason: format!("buffer {key:?}: {reason}") };
            // Only the plain form: "exp_avg.01" and "exp_avg.1" would both name tensor 1.
            let index: usize = number
                .parse()
                .ok()
                .filter(|i: &usize| i.to_string() == number)
                .ok_or_else(|| bad("the part after the dot is not a tensor number".into()))?;
            let Some(&values_of_parameter) = lengths.get(index) else {
                return Err(bad(format!(
                    "is the state of parameter {index}, and the network has {} parameters",
                    lengths.len()
                )));
            };
            let expected = extent.len(values_of_parameter);
            if values.len() != expected {
                return Err(bad(format!(
                    "holds {} values; parameter {index} has {values_of_parameter}, so it needs {expected}",
                    values.len()
                )));
            }
            if values.iter().any(|v| !v.is_finite()) {
                return Err(bad("holds NaN or infinite values".into()));
            }
            if current.len() <= index {
                current.resize_with(index + 1, Vec::new);
            }
            current[index].clone_from(values);
        }
        let tensors = current.len();
        Ok(Staged {
            name,
            extent,
            current,
            staged: vec![Vec::new(); tensors],
            touched: vec![false; tensors],
            created: vec![false; tensors],
        })
    }
}

/// An optimizer's committed state: what a checkpoint saves and
/// [`Optimizer::load_state`](super::Optimizer::load_state) restores.
#[derive(Clone, PartialEq)]
pub struct OptimizerState<T> {
    /// Which optimizer wrote it, e.g. `"adam"`; loading into another kind is an error.
    pub kind: String,
    /// Committed steps.
    pub steps: u64,
    /// Named buffers, `"{state}.{tensor index}"` (e.g. `"exp_avg.0"`).
    pub buffers: Vec<(String, Vec<T>)>,
}

/// Shows the kind, the step count and each buffer's name and length, not the values.
impl<T> std::fmt::Debug for OptimizerState<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let buffers: Vec<(&str, usize)> =
            self.buffers.iter().map(|(name, b)| (name.as_str(), b.len())).collect();
        f.debug_struct("OptimizerState")
            .field("kind", &self.kind)
            .field("steps", &self.steps)
            .field("buffers", &buffers)
            .finish()
    }
}

impl<T: Float> OptimizerState<T> {
    /// Checks that this state was written by an optimizer of kind `kind`.
    pub fn expect_kind(&self, kind: &str) -> Result<()> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(Error::OptimizerState {
                reason: format!(
                    "the state is {:?}'s, not {kind:?}'s: resume with the same optimizer",
                    self.kind
                ),
            })
        }
    }
}

/// All the staged state of one optimizer: `N` kinds of per-tensor state and the committed step
/// count, begun, committed, saved and restored together. The crate's optimizers keep their
/// state in one; a custom optimizer can too.
///
/// ```
/// use feedforward::optim::{Extent, Staged, StateSet};
///
/// let mut state = StateSet::<f32, 2>::new(
///     "mine",
///     [Staged::new("m", Extent::PerValue), Staged::new("count", Extent::PerTensor)],
/// );
/// state.begin_step();
/// let [m, _count] = state.buffers_mut();
/// m.slot(0, 3, 0.0).1.fill(1.0);
/// state.commit_step();
/// assert_eq!(state.steps(), 1);
/// let saved = state.to_state();
/// // Only `m` has a tensor: `count` was never touched.
/// assert_eq!((saved.kind.as_str(), saved.buffers.len()), ("mine", 1));
/// assert_eq!(saved.buffers[0], ("m.0".to_string(), vec![1.0; 3]));
///
/// // Restored for parameters of 3 values, not for parameters of 2.
/// let mut restored = StateSet::new("mine", [Staged::new("m", Extent::PerValue), Staged::new("count", Extent::PerTensor)]);
/// assert!(restored.load(&saved, &[2]).is_err());
/// restored.load(&saved, &[3]).unwrap();
/// assert_eq!(restored.buffers()[0].current(0), Some(&[1.0; 3][..]));
/// ```
#[derive(Clone, Debug)]
pub struct StateSet<T, const N: usize> {
    kind: &'static str,
    steps: u64,
    buffers: [Staged<T>; N],
}

impl<T: Float, const N: usize> StateSet<T, N> {
    /// An empty state for an optimizer of kind `kind` (its name in checkpoints) with the
    /// per-tensor state kinds `buffers` (each [`Staged::new`], so empty).
    #[must_use]
    pub fn new(kind: &'static str, buffers: [Staged<T>; N]) -> Self {
        StateSet { kind, steps: 0, buffers }
    }

    /// Committed steps.
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The state kinds, in the order given to [`new`](StateSet::new).
    #[must_use]
    pub fn buffers(&self) -> &[Staged<T>; N] {
        &self.buffers
    }

    /// The state kinds, mutably (to take [`Staged::slot`]s in an update).
    pub fn buffers_mut(&mut self) -> &mut [Staged<T>; N] {
        &mut self.buffers
    }

    /// Forgets what a step that was never committed staged.
    pub fn begin_step(&mut self) {
        self.buffers.iter_mut().for_each(Staged::discard);
    }

    /// Makes the step's staged state current and counts the step.
    pub fn commit_step(&mut self) {
        self.buffers.iter_mut().for_each(Staged::commit);
        self.steps += 1;
    }

    /// The committed state, for a checkpoint.
    #[must_use]
    pub fn to_state(&self) -> OptimizerState<T> {
        let mut buffers = Vec::new();
        self.buffers.iter().for_each(|b| b.export(&mut buffers));
        OptimizerState { kind: self.kind.into(), steps: self.steps, buffers }
    }

    /// Restores a state from [`to_state`](StateSet::to_state) of the same kind, for parameters
    /// of `lengths` values ([`Staged::from_state`] says what is checked). A buffer that belongs
    /// to none of the state kinds is refused too. Nothing is changed on error.
    pub fn load(&mut self, state: &OptimizerState<T>, lengths: &[usize]) -> Result<()> {
        state.expect_kind(self.kind)?;
        let owned = |key: &str| self.buffers.iter().any(|b| tensor_number(key, b.name()).is_some());
        if let Some((key, _)) = state.buffers.iter().find(|(key, _)| !owned(key)) {
            let names: Vec<&str> = self.buffers.iter().map(Staged::name).collect();
            return Err(Error::OptimizerState {
                reason: format!("buffer {key:?} is none of {:?}'s ({})", self.kind, names.join(", ")),
            });
        }
        let mut restored = Vec::with_capacity(N);
        for b in &self.buffers {
            restored.push(Staged::from_state(b.name(), b.extent(), state, lengths)?);
        }
        for (b, r) in self.buffers.iter_mut().zip(restored) {
            *b = r;
        }
        self.steps = state.steps;
        Ok(())
    }
}

/// The part of buffer name `key` after `"{name}."` (the tensor number, if it is written as
/// one), or `None` when `key` is not one of the state kind `name`'s buffers.
fn tensor_number<'a>(key: &'a str, name: &str) -> Option<&'a str> {
    key.strip_prefix(name)?.strip_prefix('.')
}
