//! Checkpoints: a model file that also holds what a run needs to continue bit for bit.
//!
//! A checkpoint is a safetensors model file (so [`Network::load`] reads the model from it) with:
//! - the optimizer's state as tensors named `optimizer.{buffer}.{tensor}` (e.g.
//!   `optimizer.exp_avg.0`), flat;
//! - with early stopping, the best weights so far, named `best.layer{k}.{parameter}`;
//! - with weight averaging, the average so far, named `average.layer{k}.{parameter}`;
//! - under the metadata key `feedforward.checkpoint`, JSON with the optimizer's kind and step
//!   count, the network's step count and dropout seed, the epoch and step reached, the
//!   schedule's and early stopping's state, how many snapshots the average holds, and what
//!   the run trained on (seed, batching, number of samples, epochs, `max_steps`, the
//!   averaging), which a resumed run must match.
//!
//! [`train::fit`](crate::train::fit) writes it at the end of an epoch
//! ([`TrainConfig::checkpoint`](crate::train::TrainConfig::checkpoint)) and resumes from it
//! ([`TrainConfig::resume`](crate::train::TrainConfig::resume)). The file is written to a
//! temporary name and renamed, so a run killed while writing leaves the previous checkpoint.

use crate::averaging::Average;
use crate::optim::OptimizerState;
use crate::weights::{self, ExtraTensor};
use crate::{BufferDomain, Error, Float, Network, Optimizer, Parameter, Result};
use nalgebra::DMatrix;
use safetensors::SafeTensors;
use serde_json::{Value, json};
use std::path::Path;

/// The metadata key of the run's state.
pub(crate) const CHECKPOINT_KEY: &str = "feedforward.checkpoint";
const OPTIMIZER_PREFIX: &str = "optimizer.";
const BEST_PREFIX: &str = "best.";
const AVERAGE_PREFIX: &str = "average.";
const VERSION: u64 = 1;

/// Whether `name` is one of a checkpoint's own tensors rather than the network's.
pub(crate) fn is_checkpoint_tensor(name: &str) -> bool {
    name.starts_with(OPTIMIZER_PREFIX) || name.starts_with(BEST_PREFIX) || name.starts_with(AVERAGE_PREFIX)
}

/// Where a run stands, beyond the network and the optimizer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RunState<T: Float> {
    /// Epochs completed.
    pub epoch: usize,
    /// Steps taken.
    pub step: usize,
    /// Reduce-on-plateau: the factor reached, the best validation loss, epochs without improvement.
    pub plateau: Tracker,
    /// Early stopping: the best validation loss, its epoch, epochs without improvement.
    pub early: Tracker,
    /// Early stopping: the model's tensors at the best epoch (each module's parameters, then
    /// its buffers).
    pub best_weights: Option<Vec<DMatrix<T>>>,
    /// Weight averaging: the average so far.
    pub average: Option<Average<T>>,
}

/// A monitored quantity: the best value seen, when, and how long since.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Tracker {
    /// A learning-rate factor (reduce-on-plateau); 1 otherwise.
    pub factor: f64,
    pub best: f64,
    pub best_epoch: usize,
    pub bad_epochs: usize,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker { factor: 1.0, best: f64::INFINITY, best_epoch: 0, bad_epochs: 0 }
    }
}

impl Tracker {
    fn to_json(self) -> Value {
        // JSON has no infinity: "no best yet" is null.
        let best = if self.best.is_finite() { json!(self.best) } else { Value::Null };
        json!({"factor": self.factor, "best": best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs})
    }

    fn from_json(value: &Value) -> Option<Self> {
        Some(Tracker {
            factor: value.get("factor")?.as_f64()?,
            best: value.get("best").map_or(Some(f64::INFINITY), |b| {
                if b.is_null() { Some(f64::INFINITY) } else { b.as_f64() }
            })?,
            best_epoch: usize::try_from(value.get("best_epoch")?.as_u64()?).ok()?,
            bad_epochs: usize::try_from(value.get("bad_epochs")?.as_u64()?).ok()?,
        })
    }
}

/// Writes a checkpoint of `network`, `optimizer` and `run` to `path`; `identity` describes the
/// run (seed, batching, samples, epochs) for [`load`] to compare.
pub(crate) fn save<T, O>(
    path: &Path,
    network: &Network<T>,
    optimizer: &O,
    run: &RunState<T>,
    identity: &Value,
) -> Result<()>
where
    T: Float,
    O: Optimizer<T> + ?Sized,
{
    let state = optimizer.state().ok_or_else(|| Error::Checkpoint {
        path: path.to_path_buf(),
        reason: "this optimizer has no state to save (Optimizer::state returns None)".into(),
    })?;
    let mut extra: Vec<ExtraTensor<T>> = Vec::new();
    for (name, values) in state.buffers {
        let len = values.len();
        extra.push((format!("{OPTIMIZER_PREFIX}{name}"), values, vec![len]));
    }
    // The network's own tensor names and shapes, under `best.` and `average.`.
    let kept = [
        (BEST_PREFIX, run.best_weights.as_ref()),
        (AVERAGE_PREFIX, run.average.as_ref().map(|a| &a.tensors)),
    ];
    for (prefix, tensors) in kept {
        let Some(tensors) = tensors else { continue };
        for (weights::Slot { name, shape, .. }, value) in weights::layout(network)?.into_iter().zip(tensors) {
            extra.push((format!("{prefix}{name}"), value.as_slice().to_vec(), shape));
        }
    }
    let meta = json!({
        "version": VERSION,
        "optimizer": {"kind": state.kind, "steps": state.steps},
        "network": {"steps": network.steps(), "seed": network.seed()},
        "epoch": run.epoch,
        "step": run.step,
        "plateau": run.plateau.to_json(),
        "early_stopping": run.early.to_json(),
        "averaged": run.average.as_ref().map_or(0, |a| a.count),
        "run": identity,
    });
    let bytes = weights::to_bytes_with(network, extra, vec![(CHECKPOINT_KEY.to_string(), meta.to_string())])?;
    // A new name, then a rename: a run killed mid-write keeps the last good checkpoint.
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    weights::write_bytes(&partial, &bytes)?;
    std::fs::rename(&partial, path).map_err(Error::at(path))
}

/// Restores `network` (same architecture), `optimizer` (same kind) and the run's state from
/// the checkpoint at `path`, which must have been written by a run with the same `identity`.
/// Nothing is changed on error.
pub(crate) fn load<T, O>(
    path: &Path,
    network: &mut Network<T>,
    optimizer: &mut O,
    identity: &Value,
) -> Result<RunState<T>>
where
    T: Float,
    O: Optimizer<T> + ?Sized,
{
    let bad = |reason: String| Error::Checkpoint { path: path.to_path_buf(), reason };
    let bytes = weights::read(path)?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let (_, header) =
        SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let meta: Value = metadata
        .get(CHECKPOINT_KEY)
        .ok_or_else(|| {
            bad(format!("not a checkpoint (no {CHECKPOINT_KEY:?} metadata): a model file, perhaps"))
        })
        .and_then(|text| serde_json::from_str(text).map_err(|e| bad(format!("{CHECKPOINT_KEY}: {e}"))))?;
    match meta.get("version").and_then(Value::as_u64) {
        Some(v) if v <= VERSION => {}
        other => {
            return Err(bad(format!(
                "checkpoint version {} is not one this crate reads (up to {VERSION})",
                other.map_or("missing".into(), |v| v.to_string())
            )));
        }
    }
    let architecture =
        metadata.get(weights::ARCHITECTURE_KEY).and_then(|a| serde_json::from_str::<Value>(a).ok());
    if architecture.as_ref() != Some(&weights::architecture(network)) {
        return Err(bad(format!(
            "its network differs from this one: the checkpoint has {}, this run builds {}",
            architecture.map_or("no architecture".into(), |a| a.to_string()),
            weights::architecture(network)
        )));
    }
    if meta.get("run") != Some(identity) {
        return Err(bad(format!(
            "it was written by a different run: {} there, {identity} here (resume with the same seed, batching, data, epochs and max_steps)",
            meta.get("run").map_or("nothing".into(), Value::to_string)
        )));
    }
    let field = |name: &str| meta.get(name).ok_or_else(|| bad(format!("{CHECKPOINT_KEY} has no {name:?}")));
    let number = |value: Option<&Value>, what: &str| {
        value.and_then(Value::as_u64).ok_or_else(|| bad(format!("{CHECKPOINT_KEY}: {what} is not a count")))
    };
    let kind = field("optimizer")?.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut state = OptimizerState {
        kind,
        steps: number(field("optimizer")?.get("steps"), "optimizer steps")?,
        buffers: Vec::new(),
    };
    let mut names: Vec<&str> = file.names();
    names.sort_unstable();
    for name in names.iter().filter_map(|n| n.strip_prefix(OPTIMIZER_PREFIX)) {
        let tensor = file.tensor(&format!("{OPTIMIZER_PREFIX}{name}")).map_err(|e| bad(e.to_string()))?;
        let values = weights::decode(&tensor, BufferDomain::Finite)
            .map_err(|reason| bad(format!("tensor {OPTIMIZER_PREFIX}{name} {reason}")))?;
        state.buffers.push((name.to_string(), values));
    }
    let to_usize = |v: u64| usize::try_from(v).map_err(|_| bad(format!("{v} does not fit in a usize")));
    let network_meta = field("network")?;
    let network_steps = to_usize(number(network_meta.get("steps"), "network steps")?)?;
    let seed = number(network_meta.get("seed"), "network seed")?;
    let tracker = |name: &str| {
        Tracker::from_json(field(name)?).ok_or_else(|| bad(format!("{CHECKPOINT_KEY}: bad {name:?}")))
    };
    let (plateau, early) = (tracker("plateau")?, tracker("early_stopping")?);
    // The tensors a run keeps besides the network's, stored under `prefix`: all, or none.
    let kept = |prefix: &str, what: &str| -> Result<Option<Vec<DMatrix<T>>>> {
        let mut values = Vec::new();
        for slot in weights::layout(network)? {
            let stored_as = format!("{prefix}{}", slot.name);
            let Ok(tensor) = file.tensor(&stored_as) else { continue };
            values.push(slot.read::<T>(&tensor, &stored_as).map_err(bad)?);
        }
        let tensors = weights::tensors(network);
        match values.len() {
            0 => Ok(None),
            n if n == tensors.len() => Ok(Some(
                tensors.iter().zip(values).map(|(t, v)| DMatrix::from_vec(t.nrows(), t.ncols(), v)).collect(),
            )),
            _ => Err(bad(format!("some {what} tensors are missing"))),
        }
    };
    let best_weights = kept(BEST_PREFIX, "best-weight")?;
    // Checkpoints written before weight averaging have no count: no average.
    let averaged = to_usize(meta.get("averaged").map_or(Ok(0), |v| number(Some(v), "averaged"))?)?;
    let average = match (kept(AVERAGE_PREFIX, "average")?, averaged) {
        (None, 0) => None,
        (Some(tensors), count @ 1..) => Some(Average { tensors, count }),
        _ => return Err(bad("its average's tensors and count disagree".into())),
    };
    let run = RunState {
        epoch: to_usize(number(meta.get("epoch"), "epoch")?)?,
        step: to_usize(number(meta.get("step"), "step")?)?,
        plateau,
        early,
        best_weights,
        average,
    };
    // Everything read and checked: now change the optimizer, then the network.
    let mut restored = network.clone();
    weights::from_bytes_into(&mut restored, &bytes, path)?;
    // The optimizer checks its state against the network's parameters (a tensor number past
    // them, or a buffer of the wrong length, is refused before any state is sized by it).
    let lengths: Vec<usize> = network.parameters().map(Parameter::len).collect();
    optimizer.load_state(&state, &lengths).map_err(|e| bad(e.to_string()))?;
    restored.set_steps(network_steps);
    *network = restored.with_seed(seed);
    Ok(run)
}
