//! Model directories: `model.safetensors` (the weights) and `config.json` (everything else).
//!
//! The weights load into the equivalent PyTorch module with
//! `model.load_state_dict(safetensors.torch.load_file("model.safetensors"), strict=True)`:
//! tensor names are `torch.nn.Sequential` indices (`0.weight` out×in, `0.bias`, `2.weight` …;
//! activation modules take an index, the identity takes none), dtype is the model's (F32/F64).
//! `config.json` records the architecture, loss, dtype, input standardisation and the names of
//! features, targets and classes, plus a `torch` line that builds the matching `Sequential`.
//!
//! Loading is strict like `load_state_dict(strict=True)` — every expected tensor present with
//! its exact shape and dtype, nothing extra, every value finite — but tolerant of tensor order,
//! so a `safetensors.torch.save_file(model.state_dict(), …)` file with a hand-written
//! `config.json` loads too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};

use super::atomic::{atomic_write, write_json};
use crate::data::{Dataset, Normalization};
use crate::nn::{Activation, AnyMlp, Loss, Mlp, ParamSpec};
use crate::{DType, Error, Result, Scalar};

/// File name of the weights in a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the configuration in a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// The `format` value written into `config.json`.
pub const FORMAT: &str = "backprop-mlp";
/// The `format_version` written; loading accepts this version and older.
pub const FORMAT_VERSION: u32 = 1;

/// The contents of `config.json`.
///
/// The architecture fields (`layers`, `activations`, `bias`, `dtype`, `torch`) are always
/// rewritten from the model by [`save_model`], so they cannot disagree with the weights.
/// Everything is optional on reading except `layers` and `activations`, so a hand-written file
/// for PyTorch weights can be short:
///
/// ```json
/// {"layers": [4, 5, 1], "activations": ["sigmoid", "sigmoid"], "loss": "bce"}
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    /// Always `backprop-mlp`.
    #[serde(default = "default_format")]
    pub format: String,
    /// Format version, currently 1.
    #[serde(default = "default_version")]
    pub format_version: u32,
    /// Widths `[inputs, hidden…, outputs]`.
    pub layers: Vec<usize>,
    /// One activation per affine layer.
    pub activations: Vec<Activation>,
    /// Whether the affine layers have biases (all or none).
    #[serde(default = "default_true")]
    pub bias: bool,
    /// Precision of the weights; when absent on reading, taken from the tensors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<DType>,
    /// The loss the model is trained with (its own loss for `eval` and `grad`).
    #[serde(default)]
    pub loss: Option<Loss>,
    /// Standardisation of the inputs, fitted on the training data; applied before the network.
    #[serde(default)]
    pub normalization: Option<Normalization>,
    /// Standardisation of regression targets: the network predicts standardised targets, which
    /// are mapped back with [`Normalization::invert`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_normalization: Option<Normalization>,
    /// Names of the input features, in column order.
    #[serde(default)]
    pub feature_names: Option<Vec<String>>,
    /// Names of the target columns.
    #[serde(default)]
    pub target_names: Option<Vec<String>>,
    /// Class names in index order, for classifiers.
    #[serde(default)]
    pub classes: Option<Vec<String>>,
    /// The equivalent PyTorch module, for people (ignored on reading).
    #[serde(default)]
    pub torch: String,
    /// Anything else worth keeping with the model (optimiser, seed, epochs, …).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

fn default_format() -> String {
    FORMAT.to_string()
}
fn default_version() -> u32 {
    FORMAT_VERSION
}
fn default_true() -> bool {
    true
}

impl ModelConfig {
    /// The configuration describing `model`, with nothing else set.
    pub fn new<T: Scalar>(model: &Mlp<T>) -> Self {
        let mut c = ModelConfig {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            layers: vec![],
            activations: vec![],
            bias: true,
            dtype: None,
            loss: None,
            normalization: None,
            target_normalization: None,
            feature_names: None,
            target_names: None,
            classes: None,
            torch: String::new(),
            metadata: serde_json::Map::new(),
        };
        c.describe(model);
        c
    }

    /// Sets the loss.
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = Some(loss);
        self
    }

    /// Sets the input standardisation.
    pub fn normalization(mut self, norm: Normalization) -> Self {
        self.normalization = Some(norm);
        self
    }

    /// Sets the target standardisation (regression).
    pub fn target_normalization(mut self, norm: Normalization) -> Self {
        self.target_normalization = Some(norm);
        self
    }

    /// Takes feature, target and class names from the training data.
    pub fn names_from<T: Scalar>(mut self, data: &Dataset<T>) -> Self {
        self.feature_names = Some(data.feature_names.clone());
        self.target_names = Some(data.target_names.clone());
        self.classes = data.classes.clone();
        self
    }

    /// Adds one metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Overwrites the architecture fields from `model`.
    fn describe<T: Scalar>(&mut self, model: &Mlp<T>) {
        self.layers = model.sizes();
        self.activations = model.activations();
        self.bias = model.has_bias();
        self.dtype = Some(T::DTYPE);
        self.torch = torch_hint(&self.layers, &self.activations, self.bias, T::DTYPE);
    }

    /// An all-zero network of the described architecture in precision `T`.
    pub fn zeros<T: Scalar>(&self) -> Result<Mlp<T>> {
        Mlp::zeros(&self.layers, &self.activations, self.bias)
    }

    /// Checks the configuration is self-consistent (names and statistics match the widths).
    pub fn validate(&self) -> Result<()> {
        if self.format != FORMAT {
            return Err(Error::invalid("format", format!("`{}` is not `{FORMAT}`", self.format)));
        }
        if self.format_version > FORMAT_VERSION {
            return Err(Error::invalid(
                "format_version",
                format!(
                    "{} is newer than this build understands ({FORMAT_VERSION}); upgrade backprop",
                    self.format_version
                ),
            ));
        }
        // Widths and activations: the same checks as building the network.
        Mlp::<f64>::zeros(&self.layers, &self.activations, self.bias)?;
        let (inputs, outputs) = (self.layers[0], self.layers[self.layers.len() - 1]);
        let check = |what: &str, len: usize, want: usize, side: &str| -> Result<()> {
            if len != want {
                return Err(Error::shape(
                    "config",
                    format!("{what} has {len} entries but the network has {want} {side}"),
                ));
            }
            Ok(())
        };
        if let Some(n) = &self.normalization {
            n.validate()?;
            check("normalization", n.len(), inputs, "inputs")?;
        }
        if let Some(n) = &self.target_normalization {
            n.validate()?;
            check("target_normalization", n.len(), outputs, "outputs")?;
        }
        if let Some(f) = &self.feature_names {
            check("feature_names", f.len(), inputs, "inputs")?;
        }
        if let Some(c) = &self.classes {
            if c.is_empty() {
                return Err(Error::invalid("classes", "the list is empty"));
            }
            // Softmax outputs one logit per class; a single sigmoid/logit output scores two.
            if !(outputs == c.len() || (outputs == 1 && c.len() == 2)) {
                return Err(Error::shape(
                    "config",
                    format!("{} classes but the network has {outputs} outputs", c.len()),
                ));
            }
        }
        Ok(())
    }
}

/// `torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Sigmoid(), …)` for the architecture.
fn torch_hint(sizes: &[usize], activations: &[Activation], bias: bool, dtype: DType) -> String {
    let mut modules = Vec::new();
    for (w, a) in sizes.windows(2).zip(activations) {
        let b = if bias { "" } else { ", bias=False" };
        modules.push(format!("torch.nn.Linear({}, {}{b})", w[0], w[1]));
        if let Some(m) = a.torch_module() {
            modules.push(format!("torch.nn.{m}"));
        }
    }
    let dt = match dtype {
        DType::F32 => "",
        DType::F64 => ".double()",
    };
    format!("torch.nn.Sequential({}){dt}", modules.join(", "))
}

/// Writes `model` and `config` into directory `dir` (created if missing): `model.safetensors`
/// first, then `config.json`, each atomically. The config's architecture fields are taken from
/// the model.
///
/// ```
/// use backprop::io::{load_model, save_model, ModelConfig};
/// use backprop::nn::{Activation, Loss, Mlp};
/// let dir = std::env::temp_dir().join(format!("backprop-doc-model-{}", std::process::id()));
/// let mlp = Mlp::<f64>::zeros(&[4, 5, 1], &[Activation::Sigmoid; 2], true)?;
/// save_model(&dir, &mlp, &ModelConfig::new(&mlp).loss(Loss::Bce))?;
/// let (back, config) = load_model(&dir)?;
/// assert_eq!(back.to_f64(), mlp);
/// assert_eq!(config.loss, Some(Loss::Bce));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), backprop::Error>(())
/// ```
pub fn save_model<T: Scalar>(dir: impl AsRef<Path>, model: &Mlp<T>, config: &ModelConfig) -> Result<()> {
    let dir = dir.as_ref();
    model.validate()?;
    let mut config = config.clone();
    config.describe(model);
    config.validate()?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let weights =
        weights_bytes(model).map_err(|m| Error::Format { path: dir.join(WEIGHTS_FILE), message: m })?;
    atomic_write(dir.join(WEIGHTS_FILE), &weights)?;
    write_json(dir.join(CONFIG_FILE), &config)
}

impl AnyMlp {
    /// [`save_model`] for a network of either precision.
    pub fn save(&self, dir: impl AsRef<Path>, config: &ModelConfig) -> Result<()> {
        match self {
            AnyMlp::F32(m) => save_model(dir, m, config),
            AnyMlp::F64(m) => save_model(dir, m, config),
        }
    }
}

/// The safetensors encoding of `model`'s parameters (little-endian, `format: pt` metadata as
/// PyTorch writers use).
pub fn weights_bytes<T: Scalar>(model: &Mlp<T>) -> std::result::Result<Vec<u8>, String> {
    let dtype = match T::DTYPE {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
    };
    let le = |v: T| -> Vec<u8> {
        match T::DTYPE {
            DType::F32 => (v.f64() as f32).to_le_bytes().to_vec(),
            DType::F64 => v.f64().to_le_bytes().to_vec(),
        }
    };
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for spec in model.param_specs() {
        let layer = &model.layers[spec.layer];
        let bytes: Vec<u8> = if spec.is_bias {
            layer.bias.iter().flatten().flat_map(|&v| le(v)).collect()
        } else {
            layer.weight.iter().flat_map(|&v| le(v)).collect() // logical (row-major) order
        };
        buffers.push((spec.name, spec.shape, bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| Ok((name.clone(), TensorView::new(dtype, shape.clone(), bytes)?)))
        .collect::<std::result::Result<Vec<_>, SafeTensorError>>()
        .map_err(|e| e.to_string())?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(meta)).map_err(|e| e.to_string())
}

fn format_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Format { path: path.to_path_buf(), message: message.into() }
}

/// Reads and checks `config.json`.
pub fn load_config(dir: impl AsRef<Path>) -> Result<ModelConfig> {
    let path = dir.as_ref().join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let config: ModelConfig = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.clone(),
        line: e.line(),
        column: e.column(),
        message: e.to_string().split(" at line ").next().unwrap_or_default().to_string(),
    })?;
    config.validate().map_err(|e| format_err(&path, e.to_string()))?;
    Ok(config)
}

/// Loads a model directory: the network (in the precision of its tensors) and its config.
///
/// Errors name the file and the tensor: missing or unexpected tensors, wrong shapes or dtypes,
/// truncated or corrupt files, non-finite weights, unknown activations in `config.json`.
pub fn load_model(dir: impl AsRef<Path>) -> Result<(AnyMlp, ModelConfig)> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "model directory not found (expected a directory with model.safetensors and config.json)",
            ),
        ));
    }
    let mut config = load_config(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| format_err(&path, describe_safetensors_error(&e, bytes.len())))?;

    let template = config.zeros::<f64>()?;
    let specs = template.param_specs();
    // The precision: from config.json, or else from the tensors (hand-written configs).
    let file_dtype = match st.tensor(&specs[0].name) {
        Ok(t) => Some(t.dtype()),
        Err(_) => None,
    };
    let dtype = match (config.dtype, file_dtype) {
        (Some(d), _) => d,
        (None, Some(Dtype::F32)) => DType::F32,
        (None, Some(Dtype::F64)) => DType::F64,
        (None, Some(other)) => {
            return Err(format_err(
                &path,
                format!("tensor `{}` has dtype {other:?}; only F32 and F64 are supported", specs[0].name),
            ));
        }
        (None, None) => DType::F64, // the missing tensor is reported below
    };
    config.dtype = Some(dtype);
    let model = match dtype {
        DType::F32 => AnyMlp::F32(fill(&path, &st, &specs, config.zeros::<f32>()?)?),
        DType::F64 => AnyMlp::F64(fill(&path, &st, &specs, config.zeros::<f64>()?)?),
    };
    let expected: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let mut extra: Vec<&str> = st.names().into_iter().filter(|n| !expected.contains(n)).collect();
    if !extra.is_empty() {
        extra.sort_unstable();
        return Err(format_err(
            &path,
            format!(
                "unexpected tensor(s) {} for the architecture in config.json ({:?}, activations {}); expected exactly {}",
                extra.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                config.layers,
                config.activations.iter().map(|a| a.name()).collect::<Vec<_>>().join(", "),
                expected.join(", ")
            ),
        ));
    }
    config.torch = torch_hint(&config.layers, &config.activations, config.bias, dtype);
    Ok((model, config))
}

/// A readable message for a safetensors parse failure.
fn describe_safetensors_error(e: &SafeTensorError, len: usize) -> String {
    match e {
        SafeTensorError::HeaderTooSmall
        | SafeTensorError::InvalidHeaderLength
        | SafeTensorError::MetadataIncompleteBuffer => {
            format!("truncated or not a safetensors file ({len} bytes): {e}")
        }
        SafeTensorError::InvalidOffset(name) => {
            format!("tensor `{name}`: truncated or corrupt data offsets ({e})")
        }
        _ => format!("corrupt safetensors file: {e}"),
    }
}

/// Copies every tensor of `specs` from the file into `model`, checking dtype, shape and values.
fn fill<T: Scalar>(
    path: &Path,
    st: &SafeTensors<'_>,
    specs: &[ParamSpec],
    mut model: Mlp<T>,
) -> Result<Mlp<T>> {
    let want = match T::DTYPE {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
    };
    for spec in specs {
        let view = st.tensor(&spec.name).map_err(|_| {
            let mut have: Vec<&str> = st.names();
            have.sort_unstable();
            format_err(
                path,
                format!(
                    "missing tensor `{}` (shape {:?}) required by config.json; the file holds: {}",
                    spec.name,
                    spec.shape,
                    if have.is_empty() { "no tensors".to_string() } else { have.join(", ") }
                ),
            )
        })?;
        if view.dtype() != want {
            return Err(format_err(
                path,
                format!(
                    "tensor `{}` has dtype {:?} but config.json says {}",
                    spec.name,
                    view.dtype(),
                    T::DTYPE
                ),
            ));
        }
        if view.shape() != spec.shape.as_slice() {
            return Err(format_err(
                path,
                format!(
                    "tensor `{}` has shape {:?} but config.json's architecture needs {:?}{}",
                    spec.name,
                    view.shape(),
                    spec.shape,
                    if spec.shape.len() == 2 { " (out×in, as torch.nn.Linear.weight)" } else { "" }
                ),
            ));
        }
        let values = decode::<T>(view.data());
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(format_err(path, format!("tensor `{}` element {i} is {v}", spec.name)));
        }
        let layer = &mut model.layers[spec.layer];
        let target = if spec.is_bias {
            match layer.bias.as_mut() {
                Some(b) => b.as_slice_mut(),
                None => None,
            }
        } else {
            layer.weight.as_slice_mut()
        };
        match target {
            Some(dst) if dst.len() == values.len() => dst.copy_from_slice(&values),
            _ => {
                return Err(Error::shape(
                    "load_model",
                    format!("tensor `{}` does not fit its layer", spec.name),
                ));
            }
        }
    }
    Ok(model)
}

/// Little-endian bytes to values; the length is already checked by safetensors.
fn decode<T: Scalar>(bytes: &[u8]) -> Vec<T> {
    match T::DTYPE {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|c| T::of(f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))))
            .collect(),
        DType::F64 => bytes
            .chunks_exact(8)
            .map(|c| T::of(f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])))
            .collect(),
    }
}

/// The paths of a model directory's two files.
pub fn model_files(dir: impl AsRef<Path>) -> (PathBuf, PathBuf) {
    (dir.as_ref().join(WEIGHTS_FILE), dir.as_ref().join(CONFIG_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::atomic::tests::Scratch;
    use Activation::*;

    /// A network with distinct, exactly representable values everywhere.
    fn numbered<T: Scalar>(sizes: &[usize], acts: &[Activation], bias: bool) -> Mlp<T> {
        let mut m = Mlp::<T>::zeros(sizes, acts, bias).unwrap();
        let n = m.num_params(crate::nn::ParamSelection::All);
        let flat: Vec<T> = (0..n).map(|i| T::of(i as f64 * 0.25 - 3.0)).collect();
        m.set_flat_params(crate::nn::ParamSelection::All, &flat).unwrap();
        m
    }

    fn message(e: Error) -> String {
        e.to_string()
    }

    /// Writes a safetensors file from (name, dtype, shape, f64 values).
    fn write_tensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<f64>)]) {
        let bufs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
            .iter()
            .map(|(n, d, s, v)| {
                let bytes = match d {
                    Dtype::F32 => v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect(),
                    _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                };
                (n.to_string(), *d, s.clone(), bytes)
            })
            .collect();
        let views: Vec<_> =
            bufs.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
        std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
    }

    #[test]
    fn round_trips_f64_and_f32_exactly() {
        let s = Scratch::new("roundtrip");
        let m = numbered::<f64>(&[4, 5, 3, 2], &[Sigmoid, Identity, Tanh], true);
        let norm = Normalization { mean: vec![1.0, 2.0, 3.0, 4.0], std: vec![0.5, 1.0, 2.0, 4.0] };
        let cfg = ModelConfig::new(&m)
            .loss(Loss::CrossEntropy)
            .normalization(norm.clone())
            .with_metadata("seed", 7);
        save_model(&s.0, &m, &cfg).unwrap();
        let (back, c) = load_model(&s.0).unwrap();
        assert_eq!(back, AnyMlp::F64(m.clone()));
        assert_eq!(c.normalization, Some(norm));
        assert_eq!(c.loss, Some(Loss::CrossEntropy));
        assert_eq!(c.metadata["seed"], 7);
        assert_eq!(c.dtype, Some(DType::F64));

        let m32 = numbered::<f32>(&[3, 2], &[Relu], false);
        save_model(s.0.join("f32"), &m32, &ModelConfig::new(&m32)).unwrap();
        let (back, c) = load_model(s.0.join("f32")).unwrap();
        assert_eq!(back, AnyMlp::F32(m32));
        assert!(!c.bias);
    }

    #[test]
    fn tensor_names_and_layout_follow_torch_sequential() {
        let s = Scratch::new("layout");
        let m = numbered::<f64>(&[2, 3, 1], &[Tanh, Identity], true);
        save_model(&s.0, &m, &ModelConfig::new(&m)).unwrap();
        let bytes = std::fs::read(s.0.join(WEIGHTS_FILE)).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort_unstable();
        assert_eq!(names, ["0.bias", "0.weight", "2.bias", "2.weight"]);
        let w = st.tensor("0.weight").unwrap();
        assert_eq!((w.dtype(), w.shape()), (Dtype::F64, &[3usize, 2][..]));
        // Row-major out×in: element [1][0] is weight(out=1, in=0).
        let v = decode::<f64>(w.data());
        assert_eq!(v[2], m.layers[0].weight[[1, 0]]);
        let config = std::fs::read_to_string(s.0.join(CONFIG_FILE)).unwrap();
        assert!(
            config.contains(r#""torch": "torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()""#),
            "{config}"
        );
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
        assert!(header.contains(r#""__metadata__":{"format":"pt"}"#), "{header}");
    }

    #[test]
    fn loads_pytorch_style_files_with_a_minimal_hand_written_config() {
        let s = Scratch::new("torch");
        // Tensors in torch's state_dict order, F32, no dtype in the config.
        write_tensors(
            &s.0.join(WEIGHTS_FILE),
            &[
                ("2.bias", Dtype::F32, vec![1], vec![0.5]),
                ("0.weight", Dtype::F32, vec![2, 3], vec![1., 2., 3., 4., 5., 6.]),
                ("0.bias", Dtype::F32, vec![2], vec![-1., 1.]),
                ("2.weight", Dtype::F32, vec![1, 2], vec![7., 8.]),
            ],
        );
        std::fs::write(s.0.join(CONFIG_FILE), r#"{"layers": [3, 2, 1], "activations": ["relu", "sigmoid"]}"#)
            .unwrap();
        let (m, c) = load_model(&s.0).unwrap();
        let AnyMlp::F32(m) = m else { panic!("expected f32") };
        assert_eq!(m.layers[0].weight, ndarray::array![[1., 2., 3.], [4., 5., 6.]]);
        assert_eq!(m.layers[1].bias.as_ref().unwrap()[0], 0.5);
        assert_eq!(c.dtype, Some(DType::F32));
        assert_eq!(c.loss, None);
    }

    #[test]
    fn missing_tensor_is_named() {
        let s = Scratch::new("missing");
        write_tensors(&s.0.join(WEIGHTS_FILE), &[("0.weight", Dtype::F64, vec![1, 2], vec![1., 2.])]);
        std::fs::write(s.0.join(CONFIG_FILE), r#"{"layers": [2, 1], "activations": ["identity"]}"#).unwrap();
        let e = message(load_model(&s.0).unwrap_err());
        assert!(
            e.contains("model.safetensors")
                && e.contains("missing tensor `0.bias`")
                && e.contains("0.weight"),
            "{e}"
        );
    }

    #[test]
    fn unexpected_tensor_is_named() {
        let s = Scratch::new("extra");
        write_tensors(
            &s.0.join(WEIGHTS_FILE),
            &[
                ("0.weight", Dtype::F64, vec![1, 2], vec![1., 2.]),
                ("1.weight", Dtype::F64, vec![1, 1], vec![1.]),
            ],
        );
        std::fs::write(
            s.0.join(CONFIG_FILE),
            r#"{"layers": [2, 1], "activations": ["identity"], "bias": false}"#,
        )
        .unwrap();
        let e = message(load_model(&s.0).unwrap_err());
        assert!(e.contains("unexpected tensor(s) `1.weight`"), "{e}");
    }

    #[test]
    fn shape_mismatch_is_named() {
        let s = Scratch::new("shape");
        // in×out instead of out×in: the classic transposition mistake.
        write_tensors(&s.0.join(WEIGHTS_FILE), &[("0.weight", Dtype::F64, vec![2, 1], vec![1., 2.])]);
        std::fs::write(
            s.0.join(CONFIG_FILE),
            r#"{"layers": [2, 1], "activations": ["identity"], "bias": false}"#,
        )
        .unwrap();
        let e = message(load_model(&s.0).unwrap_err());
        assert!(e.contains("tensor `0.weight` has shape [2, 1]") && e.contains("[1, 2]"), "{e}");
    }

    #[test]
    fn dtype_mismatch_and_unsupported_dtypes_are_errors() {
        let s = Scratch::new("dtype");
        write_tensors(&s.0.join(WEIGHTS_FILE), &[("0.weight", Dtype::F32, vec![1, 2], vec![1., 2.])]);
        std::fs::write(
            s.0.join(CONFIG_FILE),
            r#"{"layers": [2, 1], "activations": ["identity"], "bias": false, "dtype": "f64"}"#,
        )
        .unwrap();
        let e = message(load_model(&s.0).unwrap_err());
        assert!(e.contains("`0.weight` has dtype F32 but config.json says f64"), "{e}");
        let bytes = vec![0u8; 4];
        let view = TensorView::new(Dtype::F16, vec![1, 2], &bytes).unwrap();
        std::fs::write(
            s.0.join(WEIGHTS_FILE),
            safetensors::serialize(vec![("0.weight", view)], None).unwrap(),
        )
        .unwrap();
        std::fs::write(
            s.0.join(CONFIG_FILE),
            r#"{"layers": [2, 1], "activations": ["identity"], "bias": false}"#,
        )
        .unwrap();
        let e = message(load_model(&s.0).unwrap_err());
        assert!(e.contains("F16") && e.contains("only F32 and F64"), "{e}");
    }

    #[test]
    fn truncated_and_corrupt_weights_are_errors() {
        let s = Scratch::new("trunc");
        let m = numbered::<f64>(&[4, 5, 1], &[Sigmoid, Sigmoid], true);
        save_model(&s.0, &m, &ModelConfig::new(&m)).unwrap();
        let p = s.0.join(WEIGHTS_FILE);
        let full = std::fs::read(&p).unwrap();
        for cut in [0, 5, 8, 40, full.len() - 1] {
            std::fs::write(&p, &full[..cut]).unwrap();
            let e = message(load_model(&s.0).unwrap_err());
            assert!(e.contains("model.safetensors"), "cut {cut}: {e}");
        }
        let mut bad = full.clone();
        bad[8] = b'!'; // header is no longer JSON
        std::fs::write(&p, &bad).unwrap();
        assert!(message(load_model(&s.0).unwrap_err()).contains("corrupt"));
    }

    #[test]
    fn non_finite_weights_are_rejected_with_the_tensor_name() {
        let s = Scratch::new("nan");
        write_tensors(&s.0.join(WEIGHTS_FILE), &[("0.weight", Dtype::F64, vec![1, 2], vec![1., f64::NAN])]);
        std::fs::write(
            s.0.join(CONFIG_FILE),
            r#"{"layers": [2, 1], "activations": ["identity"], "bias": false}"#,
        )
        .unwrap();
        let e = message(load_model(&s.0).unwrap_err());
        assert!(e.contains("`0.weight` element 1 is NaN"), "{e}");
    }

    #[test]
    fn bad_configs_name_the_file_and_the_problem() {
        let s = Scratch::new("config");
        let m = numbered::<f64>(&[2, 1], &[Identity], false);
        save_model(&s.0, &m, &ModelConfig::new(&m)).unwrap();
        let cases = [
            (r#"{"layers": [2, 1], "activations": ["gelu"]}"#, "unknown variant `gelu`"),
            (r#"{"layers": [2, 1], "activations": []}"#, "1 layers need 1 activations"),
            (r#"{"layers": [2, 1]"#, "config.json:1:"),
            (r#"{"activations": ["identity"]}"#, "missing field `layers`"),
            (
                r#"{"layers": [2, 1], "activations": ["identity"], "normalization": {"mean": [0], "std": [1]}}"#,
                "normalization has 1 entries",
            ),
            (r#"{"layers": [2, 1], "activations": ["identity"], "classes": ["a", "b", "c"]}"#, "3 classes"),
            (r#"{"layers": [2, 1], "activations": ["identity"], "format_version": 99}"#, "newer"),
            (
                r#"{"layers": [2, 1], "activations": ["identity"], "loss": "hinge"}"#,
                "unknown variant `hinge`",
            ),
        ];
        for (text, want) in cases {
            std::fs::write(s.0.join(CONFIG_FILE), text).unwrap();
            let e = message(load_model(&s.0).unwrap_err());
            assert!(e.contains("config.json") && e.contains(want), "{text}: {e}");
        }
        std::fs::remove_file(s.0.join(CONFIG_FILE)).unwrap();
        let e = load_model(&s.0).unwrap_err();
        assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("config.json"), "{e}");
        let e = load_model(s.0.join("nope")).unwrap_err();
        assert!(e.to_string().contains("model directory not found"), "{e}");
    }

    #[test]
    fn save_takes_the_architecture_from_the_model() {
        let s = Scratch::new("arch");
        let m = numbered::<f32>(&[2, 2, 1], &[LeakyRelu, Softplus], true);
        let mut cfg = ModelConfig::new(&numbered::<f64>(&[9, 1], &[Identity], false));
        cfg.classes = Some(vec!["no".into(), "yes".into()]);
        save_model(&s.0, &m, &cfg).unwrap();
        let c = load_config(&s.0).unwrap();
        assert_eq!((c.layers, c.dtype, c.bias), (vec![2, 2, 1], Some(DType::F32), true));
        assert!(c.torch.contains("torch.nn.LeakyReLU(0.01)") && !c.torch.contains("double"), "{}", c.torch);
        // A config that contradicts itself is refused before anything is written.
        let mut bad = ModelConfig::new(&m);
        bad.feature_names = Some(vec!["only one".into()]);
        assert!(save_model(s.0.join("bad"), &m, &bad).is_err());
        assert!(!s.0.join("bad").join(WEIGHTS_FILE).exists());
    }
}
