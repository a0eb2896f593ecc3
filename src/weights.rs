//! Saving and loading a network's parameters as [safetensors], the format PyTorch, NumPy and
//! most of the ecosystem read.
//!
//! Tensor names: `layer{k}.{parameter}`, where `k` counts the modules that have parameters
//! (so the MNIST network, two layers, has `layer0.weight`, `layer0.bias`,
//! `layer1.weight`).
//!
//! Orientation: a parameter stored here as an `r × c` column-major matrix is written as the
//! row-major array of shape `[c, r]` (the same bytes); a column vector (`c = 1`) as shape `[r]`.
//! A [`Layer`](crate::Layer)'s `W` (`inputs × outputs`) is therefore `[outputs, inputs]`,
//! PyTorch's `nn.Linear.weight` layout: in NumPy, `logits = x @ W1.T @ …`, or equivalently the
//! original recipe's `W0 = file["layer0.weight"].T`.
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use crate::{Error, Float, Network, Result};
use nalgebra::DMatrix;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::io::Write;
use std::path::{Path, PathBuf};

const WEIGHTS_HINT: &str = "Write one with --save (or feedforward::weights::save).";

/// The name and file shape of every parameter of `network`, in parameter order, with its
/// module and parameter index.
fn layout<T: Float>(network: &Network<T>) -> Vec<(String, Vec<usize>, usize, usize)> {
    let mut out = Vec::new();
    let mut k = 0;
    for (m, module) in network.modules().iter().enumerate() {
        let params = module.parameters();
        for (p, param) in params.iter().enumerate() {
            let (r, c) = param.value().shape();
            let shape = if c == 1 { vec![r] } else { vec![c, r] };
            out.push((format!("layer{k}.{}", param.name()), shape, m, p));
        }
        if !params.is_empty() {
            k += 1;
        }
    }
    out
}

/// The network's parameters as safetensors bytes (in the network's scalar type).
pub fn to_bytes<T: Float>(network: &Network<T>) -> Result<Vec<u8>> {
    let dtype = if T::BYTES == 4 { Dtype::F32 } else { Dtype::F64 };
    let params: Vec<_> = network.parameters().collect();
    let buffers: Vec<Vec<u8>> = params
        .iter()
        .map(|p| {
            let mut bytes = Vec::with_capacity(p.len() * T::BYTES);
            p.value().iter().for_each(|&v| v.write_le(&mut bytes));
            bytes
        })
        .collect();
    let mut views = Vec::new();
    for ((name, shape, _, _), bytes) in layout(network).into_iter().zip(&buffers) {
        let view = TensorView::new(dtype, shape, bytes).map_err(|e| memory_error(e.to_string()))?;
        views.push((name, view));
    }
    let meta = [("format".to_string(), "feedforward".to_string())].into_iter().collect();
    safetensors::serialize(views, Some(meta)).map_err(|e| memory_error(e.to_string()))
}

fn memory_error(reason: String) -> Error {
    Error::Weights { path: PathBuf::from("<memory>"), reason }
}

/// Saves the network's parameters to a safetensors file at `path`.
pub fn save<T: Float>(network: &Network<T>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = to_bytes(network)?;
    let mut file = crate::error::create_file(path)?;
    file.write_all(&bytes).and_then(|()| file.flush()).map_err(Error::at(path))
}

/// Loads parameters from the safetensors file at `path` into `network`, whose architecture
/// must match the file (same names and shapes; `F32` or `F64` data).
///
/// All tensors are checked before any is written: on error the network is unchanged.
pub fn load_into<T: Float>(network: &mut Network<T>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e, WEIGHTS_HINT))?;
    from_bytes_into(network, &bytes, path)
}

/// Like [`load_into`], from bytes already in memory; `path` only names the source in errors.
pub fn from_bytes_into<T: Float>(
    network: &mut Network<T>,
    bytes: &[u8],
    path: impl Into<PathBuf>,
) -> Result<()> {
    let path = path.into();
    let bad = |reason: String| Error::Weights { path: path.clone(), reason };
    let file = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let layout = layout(network);
    let mut values: Vec<DMatrix<T>> = Vec::with_capacity(layout.len());
    for (name, shape, m, p) in &layout {
        let tensor = file.tensor(name).map_err(|_| bad(format!("tensor {name} is missing")))?;
        if tensor.shape() != shape.as_slice() {
            return Err(bad(format!(
                "tensor {name} has shape {:?}, the network needs {shape:?}",
                tensor.shape()
            )));
        }
        let width = match tensor.dtype() {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            other => {
                return Err(bad(format!(
                    "tensor {name} has dtype {other:?}; only F32 and F64 are supported"
                )));
            }
        };
        let data: Vec<T> = tensor
            .data()
            .chunks_exact(width)
            .map(|c| match width {
                4 => T::lit(f64::from(f32::read_le(c))),
                _ => T::lit(f64::read_le(c)),
            })
            .collect();
        if data.iter().any(|v| !v.is_finite()) {
            return Err(bad(format!("tensor {name} contains NaN or infinite values")));
        }
        let (r, c) = network.modules()[*m].parameters()[*p].value().shape();
        values.push(DMatrix::from_vec(r, c, data));
    }
    if let Some(extra) = file.names().into_iter().find(|n| !layout.iter().any(|(name, ..)| name == n)) {
        return Err(bad(format!("tensor {extra} does not belong to this network")));
    }
    for ((_, _, m, p), value) in layout.iter().zip(values) {
        network.modules_mut()[*m].parameters_mut()[*p].value_mut().copy_from(&value);
    }
    Ok(())
}
