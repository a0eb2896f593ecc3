//! Saving and loading a network's parameters as [safetensors], the format PyTorch, NumPy and
//! most of the ecosystem read.
//!
//! Tensor names: `layer{k}.{parameter}`, where `k` counts the modules that have parameters
//! or buffers (so the MNIST network, two layers, has `layer0.weight`, `layer0.bias`,
//! `layer1.weight`). A module's [`Buffer`](crate::Buffer)s follow its parameters under the
//! same prefix (`layer1.running_mean`), as in PyTorch's state dict.
//!
//! Orientation: a parameter stored here as an `r × c` column-major matrix is written as the
//! row-major array of shape `[c, r]` (the same bytes); a column vector (`c = 1`) as shape `[r]`.
//! A [`Layer`]'s `W` (`inputs × outputs`) is therefore `[outputs, inputs]`,
//! PyTorch's `nn.Linear.weight` layout: in NumPy, `logits = x @ W1.T @ …`, or equivalently the
//! original recipe's `W0 = file["layer0.weight"].T`.
//!
//! **Self-describing files.** [`Network::save`] also writes the architecture into the file's
//! header metadata, under the key `feedforward`, as JSON:
//!
//! ```json
//! {"format_version": 1, "scalar": "f32", "input_rows": 784, "l2": 0.0,
//!  "modules": [{"kind": "Layer", "inputs": 784, "outputs": 256, "bias": true, "activation": "relu"},
//!              {"kind": "Layer", "inputs": 256, "outputs": 10, "bias": true, "activation": "identity"}]}
//! ```
//!
//! so that [`Network::load`] rebuilds the network with no shape from the caller. A module that
//! cannot describe itself ([`Module::describe`] returns `None`) is
//! written as `{"kind": "…"}` alone; such a file loads with [`load_into`] into a network the
//! caller built, or with [`Network::load_with`] and a builder for that kind. Files without the
//! metadata (older files, or files from other tools) load with [`load_into`] too.
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use crate::{
    Activation, BatchNorm, BufferDomain, Dropout, Embedding, Error, Float, Gelu, LabelTemperatures, Layer,
    LayerNorm, LeakyRelu, MeanAndVariance, Module, Network, Relu, Residual, Result, Sigmoid, Silu, Sorted,
    Standardize, Tanh, Temperature,
};
use nalgebra::DMatrix;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The metadata key holding the architecture.
pub const ARCHITECTURE_KEY: &str = "feedforward";
/// The version of the architecture JSON this crate writes; it reads this one and older.
pub const FORMAT_VERSION: u64 = 1;

/// One tensor of a network in a weights file: its name, file shape, and the values it may take
/// (any finite number for a parameter, a buffer's [`BufferDomain`]).
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) domain: BufferDomain,
}

impl Slot {
    /// This slot's values from `tensor`, which the file holds as `stored_as` (the slot's own
    /// name, or a checkpoint's copy of it): its shape must be the network's, and its values
    /// in the slot's domain.
    pub(crate) fn read<T: Float>(
        &self,
        tensor: &TensorView<'_>,
        stored_as: &str,
    ) -> std::result::Result<Vec<T>, String> {
        if tensor.shape() != self.shape.as_slice() {
            return Err(format!(
                "tensor {stored_as} has shape {:?}, the network needs {:?}",
                tensor.shape(),
                self.shape
            ));
        }
        decode(tensor, self.domain).map_err(|reason| format!("tensor {stored_as} {reason}"))
    }
}

/// Every tensor of `network` as a file holds it, in file order: each module's parameters, then
/// its buffers.
pub(crate) fn layout<T: Float>(network: &Network<T>) -> Result<Vec<Slot>> {
    let mut out: Vec<Slot> = Vec::new();
    let mut k = 0;
    for (m, module) in network.modules().iter().enumerate() {
        let first = out.len();
        let mut tensors: Vec<(&str, (usize, usize), BufferDomain)> = Vec::new();
        module.visit_parameters(&mut |p| tensors.push((p.name(), p.value().shape(), BufferDomain::Finite)));
        module.visit_buffers(&mut |b| tensors.push((b.name(), b.value().shape(), b.domain())));
        for (tensor_name, (r, c), domain) in tensors {
            let shape = if c == 1 { vec![r] } else { vec![c, r] };
            let name = format!("layer{k}.{tensor_name}");
            if out[first..].iter().any(|s| s.name == name) {
                return Err(memory_error(format!(
                    "module {m} ({}) has two tensors named {tensor_name:?}; give them distinct names \
                     (feedforward::module::prefix_parameter_names)",
                    module.kind(),
                )));
            }
            out.push(Slot { name, shape, domain });
        }
        if out.len() > first {
            k += 1;
        }
    }
    Ok(out)
}

/// Every tensor a model file holds (parameters and buffers), in file order.
pub(crate) fn tensors<T: Float>(network: &Network<T>) -> Vec<&DMatrix<T>> {
    let mut out = Vec::new();
    for_each_tensor(network, |t| out.push(t));
    out
}

/// Calls `f` on each of the network's tensors in the order of [`tensors`], collecting nothing.
pub(crate) fn for_each_tensor<'a, T: Float>(network: &'a Network<T>, mut f: impl FnMut(&'a DMatrix<T>)) {
    for module in network.modules() {
        module.visit_parameters(&mut |p| f(p.value()));
        module.visit_buffers(&mut |b| f(b.value()));
    }
}

/// Copies `values` (one per tensor, in file order, shaped as [`tensors`] gives them) into the
/// network's parameters and buffers.
pub(crate) fn copy_tensors<T: Float>(network: &mut Network<T>, values: &[DMatrix<T>]) {
    let mut values = values.iter();
    let mut copy = |mut target: nalgebra::DMatrixViewMut<'_, T>| {
        target.copy_from(values.next().expect("one value per tensor"));
    };
    for module in network.modules_mut() {
        module.visit_parameters_mut(&mut |p| copy(p.value_mut()));
        module.visit_buffers_mut(&mut |b| copy(b.value_mut()));
    }
}

/// The network's architecture, as written under [`ARCHITECTURE_KEY`].
#[must_use]
pub fn architecture<T: Float>(network: &Network<T>) -> Value {
    let modules: Vec<Value> = network
        .modules()
        .iter()
        .map(|m| {
            let mut spec = Map::new();
            spec.insert("kind".into(), m.kind().into());
            spec.extend(m.describe().unwrap_or_default());
            Value::Object(spec)
        })
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "scalar": T::NAME,
        "input_rows": network.input_rows(),
        "l2": network.l2().as_f64(),
        "modules": modules,
    })
}

/// The network's parameters and buffers as safetensors bytes (in the network's scalar type),
/// with its architecture in the metadata.
pub fn to_bytes<T: Float>(network: &Network<T>) -> Result<Vec<u8>> {
    to_bytes_with(network, Vec::new(), Vec::new())
}

/// A tensor to write beside a network's: name, flat values, file shape.
pub(crate) type ExtraTensor<T> = (String, Vec<T>, Vec<usize>);

/// [`to_bytes`] plus `extra` tensors and metadata entries (a checkpoint's optimizer state).
pub(crate) fn to_bytes_with<T: Float>(
    network: &Network<T>,
    extra: Vec<ExtraTensor<T>>,
    extra_meta: Vec<(String, String)>,
) -> Result<Vec<u8>> {
    let dtype = if T::BYTES == 4 { Dtype::F32 } else { Dtype::F64 };
    let le_bytes = |values: &mut dyn Iterator<Item = T>, len: usize| {
        let mut bytes = Vec::with_capacity(len * T::BYTES);
        values.for_each(|v| v.write_le(&mut bytes));
        bytes
    };
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (slot, value) in layout(network)?.into_iter().zip(self::tensors(network)) {
        tensors.push((slot.name, slot.shape, le_bytes(&mut value.iter().copied(), value.len())));
    }
    for (name, values, shape) in extra {
        let bytes = le_bytes(&mut values.iter().copied(), values.len());
        tensors.push((name, shape, bytes));
    }
    let mut views = Vec::new();
    for (name, shape, bytes) in &tensors {
        let view = TensorView::new(dtype, shape.clone(), bytes).map_err(|e| memory_error(e.to_string()))?;
        views.push((name.clone(), view));
    }
    let meta: HashMap<String, String> = [
        ("format".to_string(), "feedforward".to_string()),
        (ARCHITECTURE_KEY.to_string(), architecture(network).to_string()),
    ]
    .into_iter()
    .chain(extra_meta)
    .collect();
    safetensors::serialize(views, Some(meta)).map_err(|e| memory_error(e.to_string()))
}

fn memory_error(reason: String) -> Error {
    Error::Weights { path: PathBuf::from("<memory>"), reason }
}

/// Saves the network's parameters, buffers and architecture to a safetensors file at `path`.
pub fn save<T: Float>(network: &Network<T>, path: impl AsRef<Path>) -> Result<()> {
    save_with_metadata(network, path, &[])
}

/// Whether a metadata key is one this crate writes itself (`"format"`, and every key that
/// begins with `"feedforward"`), which a user's entries may not take.
fn is_reserved(key: &str) -> bool {
    key == "format" || key.starts_with(ARCHITECTURE_KEY)
}

/// [`save`] with `metadata` entries of your own in the file's header (safetensors keeps
/// text under text keys): what the model's outputs mean (class names), the data or code it was
/// trained with. [`metadata`] reads them back. Refuses a key given twice, and the crate's own
/// keys (`"format"`, and those beginning with `"feedforward"`).
///
/// ```
/// use feedforward::{MlpConfig, Network, weights};
/// use rand::SeedableRng;
/// let net = Network::<f32>::mlp(&[4, 3], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(0))?;
/// let path = std::env::temp_dir().join("feedforward-doc-metadata.safetensors");
/// net.save_with_metadata(&path, &[("classes", r#"["cat", "dog", "bird"]"#), ("data", "2026-11 export")])?;
/// let metadata = weights::metadata(&path)?;
/// assert_eq!(metadata["classes"], r#"["cat", "dog", "bird"]"#);
/// assert_eq!(metadata.len(), 2); // the crate's own entries are not among them
/// assert!(Network::<f32>::load(&path).is_ok());
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), feedforward::Error>(())
/// ```
pub fn save_with_metadata<T: Float>(
    network: &Network<T>,
    path: impl AsRef<Path>,
    metadata: &[(&str, &str)],
) -> Result<()> {
    let path = path.as_ref();
    let bad = |reason: String| Error::Weights { path: path.to_path_buf(), reason };
    for (i, &(key, _)) in metadata.iter().enumerate() {
        if is_reserved(key) {
            return Err(bad(format!(
                "metadata key {key:?} is the crate's own (\"format\", \"feedforward…\")"
            )));
        }
        if metadata[..i].iter().any(|&(k, _)| k == key) {
            return Err(bad(format!("metadata key {key:?} is given twice")));
        }
    }
    let entries = metadata.iter().map(|&(k, v)| (k.to_string(), v.to_string())).collect();
    write_bytes(path, &to_bytes_with(network, Vec::new(), entries)?)
}

/// The metadata entries of the safetensors file at `path` but the crate's own: what
/// [`save_with_metadata`] wrote, or what another tool did.
pub fn metadata(path: impl AsRef<Path>) -> Result<std::collections::BTreeMap<String, String>> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::Weights {
        path: path.to_path_buf(),
        reason: format!("not a safetensors file: {e}"),
    })?;
    let entries = header.metadata().clone().unwrap_or_default();
    Ok(entries.into_iter().filter(|(key, _)| !is_reserved(key)).collect())
}

/// Writes `bytes` to `path`.
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = crate::error::create_file(path)?;
    file.write_all(bytes).and_then(|()| file.flush()).map_err(Error::at(path))
}

/// The longest weights file read from a pipe or a device, whose length is not known before
/// reading (a regular file is read whatever its length: the file system says how long it is).
pub const MAX_STREAM_BYTES: u64 = 1 << 28;

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e, "No weights file at that path."))?;
    let regular = file.metadata().map_err(Error::at(path))?.is_file();
    let limit = if regular { u64::MAX } else { MAX_STREAM_BYTES + 1 };
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).map_err(Error::at(path))?;
    if !regular && bytes.len() as u64 > MAX_STREAM_BYTES {
        return Err(Error::Weights {
            path: path.to_path_buf(),
            reason: format!(
                "not a regular file, and longer than the limit of {MAX_STREAM_BYTES} bytes for a pipe or device"
            ),
        });
    }
    Ok(bytes)
}

/// Loads parameters and buffers from the safetensors file at `path` into `network`, whose
/// architecture must match the file (same names and shapes; `F32` or `F64` data). Any
/// architecture metadata in the file is ignored.
///
/// All tensors are checked before any is written: on error the network is unchanged.
pub fn load_into<T: Float>(network: &mut Network<T>, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    from_bytes_into(network, &read(path)?, path)
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
    let layout = layout(network).map_err(|e| match e {
        Error::Weights { reason, .. } => bad(reason),
        other => other,
    })?;
    let mut values: Vec<DMatrix<T>> = Vec::with_capacity(layout.len());
    let targets = tensors(network);
    for (slot, target) in layout.iter().zip(&targets) {
        let tensor = file.tensor(&slot.name).map_err(|_| bad(format!("tensor {} is missing", slot.name)))?;
        let data: Vec<T> = slot.read(&tensor, &slot.name).map_err(bad)?;
        let (r, c) = target.shape();
        values.push(DMatrix::from_vec(r, c, data));
    }
    // A checkpoint's optimizer state and best weights are not the network's.
    let belongs = |n: &str| layout.iter().any(|s| s.name == n) || crate::checkpoint::is_checkpoint_tensor(n);
    if let Some(extra) = file.names().into_iter().find(|n| !belongs(n)) {
        return Err(bad(format!("tensor {extra} does not belong to this network")));
    }
    drop(targets);
    copy_tensors(network, &values);
    Ok(())
}

/// A tensor's values in `T`, from `F32` or `F64` data; rejects other dtypes, and values outside
/// `domain` (every domain excludes NaN and ±inf).
pub(crate) fn decode<T: Float>(
    tensor: &TensorView<'_>,
    domain: BufferDomain,
) -> std::result::Result<Vec<T>, String> {
    let width = match tensor.dtype() {
        Dtype::F32 => 4,
        Dtype::F64 => 8,
        other => return Err(format!("has dtype {other:?}; only F32 and F64 are supported")),
    };
    let data: Vec<T> = tensor
        .data()
        .chunks_exact(width)
        .map(|c| match width {
            4 => T::lit(f64::from(f32::read_le(c))),
            _ => T::lit(f64::read_le(c)),
        })
        .collect();
    if let Some((i, v)) = domain.first_outside(&data) {
        return Err(format!("holds {v:?} at entry {i}; its values must be {}", domain.describe()));
    }
    Ok(data)
}

/// Builds a module of a kind this crate does not know from its settings in a model file (see
/// [`Network::load_with`]): `Ok(None)` for a kind it does not handle either. Its JSON types come
/// re-exported as [`feedforward::serde_json`](crate::serde_json).
///
/// ```
/// use feedforward::serde_json::{Map, Value};
/// use feedforward::{Module, Relu, Result};
///
/// // A builder written ahead of the call, for a kind of one's own ("Clamp" here, built as a
/// // stand-in); every other kind is left to the crate.
/// fn build(kind: &str, settings: &Map<String, Value>, _rows: usize) -> Result<Option<Box<dyn Module<f32>>>> {
///     Ok(match (kind, settings.get("limit").and_then(Value::as_f64)) {
///         ("Clamp", Some(_limit)) => Some(Box::new(Relu)),
///         _ => None,
///     })
/// }
/// let builder: &feedforward::weights::ModuleBuilder<'_, f32> = &build;
/// assert!(builder("Layer", &Map::new(), 3)?.is_none());
/// # Ok::<(), feedforward::Error>(())
/// ```
pub type ModuleBuilder<'a, T> =
    dyn Fn(&str, &Map<String, Value>, usize) -> Result<Option<Box<dyn Module<T>>>> + 'a;

impl<T: Float> Network<T> {
    /// Saves the parameters and the architecture to a safetensors file at `path` (see the
    /// [`weights`](crate::weights) module for the layout); [`Network::load`] reads it back.
    ///
    /// ```
    /// use feedforward::{MlpConfig, Network};
    /// use rand::SeedableRng;
    /// let net = Network::<f32>::mlp(&[4, 8, 3], MlpConfig::default(), &mut rand::rngs::StdRng::seed_from_u64(0))?;
    /// let path = std::env::temp_dir().join("feedforward-doc-save.safetensors");
    /// net.save(&path)?;
    /// let back = Network::<f32>::load(&path)?;
    /// let x = nalgebra::DMatrix::from_element(4, 1, 0.5);
    /// assert_eq!(net.output(&x)?, back.output(&x)?);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), feedforward::Error>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save(self, path)
    }

    /// [`Network::save`] with `metadata` entries of your own (see
    /// [`weights::save_with_metadata`](save_with_metadata)); [`weights::metadata`](metadata)
    /// reads them back.
    pub fn save_with_metadata(&self, path: impl AsRef<Path>, metadata: &[(&str, &str)]) -> Result<()> {
        save_with_metadata(self, path, metadata)
    }

    /// Rebuilds a network from a file written by [`Network::save`]: architecture and
    /// parameters, no shape needed from the caller. Knows the modules of this crate; for a
    /// module kind of your own, use [`Network::load_with`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with(path, &|_, _, _| Ok(None))
    }

    /// [`Network::load`], asking `builder` first for each module: given the module's kind, its
    /// settings (the JSON object its [`Module::describe`] wrote) and its number of input rows,
    /// it returns a module (whose parameters are then read from the file), or `None` to leave
    /// the kind to this crate.
    pub fn load_with(path: impl AsRef<Path>, builder: &ModuleBuilder<'_, T>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_bytes_with(&read(path)?, path, builder)
    }

    /// [`Network::load_with`] from bytes already in memory; `path` only names the source in
    /// errors.
    pub fn from_bytes_with(
        bytes: &[u8],
        path: impl Into<PathBuf>,
        builder: &ModuleBuilder<'_, T>,
    ) -> Result<Self> {
        let path = path.into();
        let bad = |reason: String| Error::Weights { path: path.clone(), reason };
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let text = header.metadata().as_ref().and_then(|m| m.get(ARCHITECTURE_KEY)).ok_or_else(|| {
            bad(format!(
                "no architecture in its metadata (no {ARCHITECTURE_KEY:?} key): build the network \
                 yourself and use weights::load_into"
            ))
        })?;
        let arch: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("architecture is not valid JSON: {e}")))?;
        // Every entry takes at least 4 bytes (f32) in the file.
        let mut network = build(&arch, builder, bytes.len() / 4)
            .map_err(|reason| bad(format!("architecture: {reason}")))?;
        from_bytes_into(&mut network, bytes, path)?;
        Ok(network)
    }
}

/// A network with the architecture `arch` and zero parameters.
pub(crate) fn build<T: Float>(
    arch: &Value,
    builder: &ModuleBuilder<'_, T>,
    max_entries: usize,
) -> std::result::Result<Network<T>, String> {
    let version = arch.get("format_version").and_then(Value::as_u64).ok_or("no format_version")?;
    if version > FORMAT_VERSION {
        return Err(format!(
            "format_version {version} is newer than this crate reads ({FORMAT_VERSION}): update feedforward"
        ));
    }
    let input_rows = count(arch.get("input_rows"), "input_rows")?;
    let l2 = arch.get("l2").map_or(Some(0.0), Value::as_f64).ok_or("l2 is not a number")?;
    let modules = arch.get("modules").and_then(Value::as_array).ok_or("no modules list")?;
    let mut network = Network::new(input_rows).with_l2(T::lit(l2)).map_err(|e| e.to_string())?;
    for (i, spec) in modules.iter().enumerate() {
        let spec = spec.as_object().ok_or_else(|| format!("module {i} is not a JSON object"))?;
        let kind =
            spec.get("kind").and_then(Value::as_str).ok_or_else(|| format!("module {i} has no kind"))?;
        let rows = network.output_rows();
        let module = match builder(kind, spec, rows).map_err(|e| format!("module {i} ({kind}): {e}"))? {
            Some(module) => module,
            None => {
                built_in(kind, spec, builder, max_entries).map_err(|e| format!("module {i} ({kind}): {e}"))?
            }
        };
        network.push_boxed(module).map_err(|e| format!("module {i} ({kind}): {e}"))?;
    }
    Ok(network)
}

/// The modules of this crate, from their settings, with zero parameters.
/// `max_entries` bounds a layer's size by what the file can hold, so that a corrupt header
/// claiming a huge layer is an error instead of an allocation failure.
fn built_in<T: Float>(
    kind: &str,
    spec: &Map<String, Value>,
    builder: &ModuleBuilder<'_, T>,
    max_entries: usize,
) -> std::result::Result<Box<dyn Module<T>>, String> {
    match kind {
        "Layer" => {
            let (inputs, outputs) =
                (count(spec.get("inputs"), "inputs")?, count(spec.get("outputs"), "outputs")?);
            if inputs.checked_mul(outputs).is_none_or(|n| n > max_entries) {
                return Err(format!("a {inputs} × {outputs} layer does not fit in the file's tensors"));
            }
            let bias = spec.get("bias").and_then(Value::as_bool).ok_or("bias is not true or false")?;
            let name = spec.get("activation").and_then(Value::as_str).ok_or("no activation")?;
            let activation = Activation::from_name(name, spec)?;
            let layer = Layer::from_parts(
                DMatrix::zeros(inputs, outputs),
                bias.then(|| nalgebra::DVector::zeros(outputs)),
            )
            .map_err(|e| e.to_string())?;
            Ok(Box::new(layer.with_activation(activation)))
        }
        "Relu" => Ok(Box::new(Relu)),
        "Dropout" => {
            let p = spec.get("probability").and_then(Value::as_f64).ok_or("probability is not a number")?;
            Ok(Box::new(Dropout::new(p).map_err(|e| e.to_string())?))
        }
        "Standardize" => Ok(Box::new(Standardize::<T>::from_settings(spec)?)),
        "LayerNorm" => {
            let norm = LayerNorm::<T>::from_settings(spec, max_entries)?;
            Ok(Box::new(norm))
        }
        "BatchNorm" => Ok(Box::new(BatchNorm::<T>::from_settings(spec, max_entries)?)),
        "Embedding" => Ok(Box::new(Embedding::<T>::from_settings(spec, max_entries)?)),
        "Sorted" => Ok(Box::new(Sorted::from_settings(spec)?)),
        "MeanAndVariance" => Ok(Box::new(MeanAndVariance::from_settings(spec)?)),
        "Temperature" => Ok(Box::new(Temperature::from_settings(spec)?)),
        "LabelTemperatures" => Ok(Box::new(LabelTemperatures::from_settings(spec)?)),
        "Residual" => Ok(Box::new(Residual::<T>::from_settings(spec, builder, max_entries)?)),
        "Tanh" => Ok(Box::new(Tanh)),
        "Sigmoid" => Ok(Box::new(Sigmoid)),
        "Gelu" => Ok(Box::new(Gelu)),
        "Silu" => Ok(Box::new(Silu)),
        "LeakyRelu" => {
            let slope = spec.get("slope").and_then(Value::as_f64).ok_or("slope is not a number")?;
            Ok(Box::new(LeakyRelu::new(slope).map_err(|e| e.to_string())?))
        }
        other => Err(format!(
            "this crate cannot build a module of kind {other:?}: load it with Network::load_with and a builder for it"
        )),
    }
}

/// A non-negative integer `field` of a JSON object, given as `value`.
pub(crate) fn count(value: Option<&Value>, field: &str) -> std::result::Result<usize, String> {
    let n = value.and_then(Value::as_u64).ok_or_else(|| format!("{field} is not a count"))?;
    usize::try_from(n).map_err(|_| format!("{field} = {n} is too large"))
}
