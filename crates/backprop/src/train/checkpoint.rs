//! Checkpoints: a whole [`TrainState`] in one safetensors file, written atomically.
//!
//! Tensors (little-endian, in the model's dtype unless noted):
//! `model.<name>` — the weights, named as in `model.safetensors` (`0.weight`, `0.bias`, …);
//! `optim.<slot>.<name>` — optimiser buffers (`velocity`, `exp_avg`, `exp_avg_sq`);
//! `best.<name>` — early stopping's best weights; `history.<column>` — f64 columns of the
//! history (missing values as NaN). The header's metadata holds the epoch, the optimiser step,
//! the generator's exact state (hex), the architecture and the training configuration (JSON),
//! and the early-stopping counters (f64 as exact bit patterns). Loading reproduces the state
//! bit for bit, so a resumed run equals an uninterrupted one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

use super::observer::{Control, Observer, Outcome};
use super::{Best, EpochRecord, History, TrainConfig, TrainState};
use crate::nn::{Activation, Grads, Mlp};
use crate::optim::OptimizerState;
use crate::{DType, Error, Result, Scalar};

/// File name of the checkpoint inside a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
const FORMAT: &str = "backprop-checkpoint/1";

fn to_bytes<T: Scalar>(values: impl Iterator<Item = T>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        match T::DTYPE {
            DType::F32 => out.extend_from_slice(&(v.f64() as f32).to_le_bytes()),
            DType::F64 => out.extend_from_slice(&v.f64().to_le_bytes()),
        }
    }
    out
}

fn from_bytes<T: Scalar>(bytes: &[u8], dtype: Dtype, path: &Path, name: &str) -> Result<Vec<T>> {
    match dtype {
        Dtype::F32 if T::DTYPE == DType::F32 => Ok(bytes
            .chunks_exact(4)
            .map(|c| T::of(f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64))
            .collect()),
        Dtype::F64 => Ok(bytes
            .chunks_exact(8)
            .map(|c| T::of(f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])))
            .collect()),
        other => Err(Error::Format {
            path: path.into(),
            message: format!("tensor {name} has dtype {other:?}, expected {}", T::DTYPE),
        }),
    }
}

fn dtype_of<T: Scalar>() -> Dtype {
    match T::DTYPE {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
    }
}

/// The architecture of a model, enough to rebuild an all-zero copy.
#[derive(serde::Serialize, serde::Deserialize)]
struct Architecture {
    sizes: Vec<usize>,
    activations: Vec<Activation>,
    bias: bool,
    dtype: DType,
}

fn push_model<T: Scalar>(out: &mut Vec<(String, Vec<u8>, Vec<usize>)>, prefix: &str, m: &Mlp<T>) {
    for spec in m.param_specs() {
        let layer = &m.layers[spec.layer];
        let bytes = if spec.is_bias {
            match &layer.bias {
                Some(b) => to_bytes(b.iter().copied()),
                None => continue,
            }
        } else {
            to_bytes(layer.weight.iter().copied())
        };
        out.push((format!("{prefix}{}", spec.name), bytes, spec.shape.clone()));
    }
}

/// Serialises a training state to bytes (see the module docs for the layout).
pub fn to_bytes_state<T: Scalar>(state: &TrainState<T>) -> Result<Vec<u8>> {
    let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    push_model(&mut tensors, "model.", &state.model);
    for (slot, g) in state.config.optimizer.slot_names().iter().zip(&state.optimizer.slots) {
        push_model(&mut tensors, &format!("optim.{slot}."), g.as_mlp());
    }
    if let Some(b) = &state.best {
        push_model(&mut tensors, "best.", &b.model);
    }
    let n = state.history.epochs.len();
    type Column = (&'static str, fn(&EpochRecord) -> f64);
    let cols: [Column; 8] = [
        ("epoch", |r| r.epoch as f64),
        ("loss", |r| r.loss),
        ("penalty", |r| r.penalty),
        ("accuracy", |r| r.accuracy.unwrap_or(f64::NAN)),
        ("rmse", |r| r.rmse.unwrap_or(f64::NAN)),
        ("val_loss", |r| r.val_loss.unwrap_or(f64::NAN)),
        ("val_accuracy", |r| r.val_accuracy.unwrap_or(f64::NAN)),
        ("val_rmse", |r| r.val_rmse.unwrap_or(f64::NAN)),
    ];
    for (name, f) in cols {
        let bytes: Vec<u8> = state.history.epochs.iter().flat_map(|r| f(r).to_le_bytes()).collect();
        tensors.push((format!("history.{name}"), bytes, vec![n]));
    }
    let mut meta = HashMap::new();
    let arch = Architecture {
        sizes: state.model.sizes(),
        activations: state.model.activations(),
        bias: state.model.has_bias(),
        dtype: T::DTYPE,
    };
    let json = |v: &dyn erased::Json| v.json();
    meta.insert("format".into(), FORMAT.into());
    meta.insert("architecture".into(), json(&arch));
    meta.insert("config".into(), json(&state.config));
    meta.insert("epoch".into(), state.epoch.to_string());
    meta.insert("step".into(), state.optimizer.step.to_string());
    meta.insert("rng".into(), state.rng.iter().map(|b| format!("{b:02x}")).collect());
    meta.insert("bad_epochs".into(), state.bad_epochs.to_string());
    if let Some(b) = &state.best {
        meta.insert("best_epoch".into(), b.epoch.to_string());
        meta.insert("best_value_bits".into(), b.value.to_bits().to_string());
    }
    let dtypes: Vec<Dtype> = tensors
        .iter()
        .map(|(n, ..)| if n.starts_with("history.") { Dtype::F64 } else { dtype_of::<T>() })
        .collect();
    let views = tensors
        .iter()
        .zip(&dtypes)
        .map(|((name, bytes, shape), &dt)| {
            TensorView::new(dt, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::invalid("checkpoint", e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::invalid("checkpoint", e.to_string()))
}

mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<S: serde::Serialize> Json for S {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

/// Writes `state` to `path` atomically.
pub fn save<T: Scalar>(state: &TrainState<T>, path: &Path) -> Result<()> {
    crate::io::atomic_write(path, &to_bytes_state(state)?)
}

/// Reads a checkpoint's dtype without loading it.
pub fn dtype(path: &Path) -> Result<DType> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| fmt_err(path, e))?;
    let md = meta.metadata().clone().unwrap_or_default();
    let arch: Architecture = parse_json(path, &md, "architecture")?;
    Ok(arch.dtype)
}

fn fmt_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Format { path: path.into(), message: format!("not a readable checkpoint: {e}") }
}

fn get<'a>(path: &Path, md: &'a HashMap<String, String>, key: &str) -> Result<&'a str> {
    md.get(key).map(String::as_str).ok_or_else(|| fmt_err(path, format!("metadata `{key}` is missing")))
}

fn parse_json<D: serde::de::DeserializeOwned>(
    path: &Path,
    md: &HashMap<String, String>,
    key: &str,
) -> Result<D> {
    serde_json::from_str(get(path, md, key)?).map_err(|e| fmt_err(path, format!("metadata `{key}`: {e}")))
}

fn parse_num<N: std::str::FromStr>(path: &Path, md: &HashMap<String, String>, key: &str) -> Result<N> {
    get(path, md, key)?.parse().map_err(|_| fmt_err(path, format!("metadata `{key}` is not a number")))
}

/// Reads a checkpoint written by [`save`] in precision `T` (check [`dtype`] first).
pub fn load<T: Scalar>(path: &Path) -> Result<TrainState<T>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| fmt_err(path, e))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| fmt_err(path, e))?;
    let md = meta.metadata().clone().unwrap_or_default();
    if md.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(fmt_err(path, format!("metadata `format` is not {FORMAT}")));
    }
    let arch: Architecture = parse_json(path, &md, "architecture")?;
    if arch.dtype != T::DTYPE {
        return Err(fmt_err(path, format!("the checkpoint is {}, not {}", arch.dtype, T::DTYPE)));
    }
    let config: TrainConfig = parse_json(path, &md, "config")?;
    let zero = Mlp::<T>::zeros(&arch.sizes, &arch.activations, arch.bias)?;
    let read_model = |prefix: &str| -> Result<Mlp<T>> {
        let mut m = zero.clone();
        for spec in m.param_specs() {
            let name = format!("{prefix}{}", spec.name);
            let t = st.tensor(&name).map_err(|e| fmt_err(path, format!("{name}: {e}")))?;
            if t.shape() != spec.shape.as_slice() {
                return Err(fmt_err(
                    path,
                    format!("{name} has shape {:?}, expected {:?}", t.shape(), spec.shape),
                ));
            }
            let v: Vec<T> = from_bytes(t.data(), t.dtype(), path, &name)?;
            let layer = &mut m.layers[spec.layer];
            if spec.is_bias {
                if let Some(b) = &mut layer.bias {
                    b.iter_mut().zip(v).for_each(|(d, s)| *d = s);
                }
            } else {
                layer.weight.iter_mut().zip(v).for_each(|(d, s)| *d = s);
            }
        }
        Ok(m)
    };
    let model = read_model("model.")?;
    let mut slots = Vec::new();
    for slot in config.optimizer.slot_names() {
        let m = read_model(&format!("optim.{slot}."))?;
        let mut g = Grads::zeros_like(&m);
        *g.as_mlp_mut() = m;
        slots.push(g);
    }
    let best = if md.contains_key("best_epoch") {
        Some(Best {
            epoch: parse_num(path, &md, "best_epoch")?,
            value: f64::from_bits(parse_num(path, &md, "best_value_bits")?),
            model: read_model("best.")?,
        })
    } else {
        None
    };
    let col = |name: &str| -> Result<Vec<f64>> {
        let key = format!("history.{name}");
        let t = st.tensor(&key).map_err(|e| fmt_err(path, format!("{key}: {e}")))?;
        if t.dtype() != Dtype::F64 {
            return Err(fmt_err(path, format!("{key} is not f64")));
        }
        from_bytes::<f64>(t.data(), Dtype::F64, path, &key)
    };
    let opt = |v: f64| (!v.is_nan()).then_some(v);
    let (ep, lo, pe, ac, rm, vl, va, vr) = (
        col("epoch")?,
        col("loss")?,
        col("penalty")?,
        col("accuracy")?,
        col("rmse")?,
        col("val_loss")?,
        col("val_accuracy")?,
        col("val_rmse")?,
    );
    let n = ep.len();
    if [&lo, &pe, &ac, &rm, &vl, &va, &vr].iter().any(|c| c.len() != n) {
        return Err(fmt_err(path, "history columns differ in length"));
    }
    let epochs = (0..n)
        .map(|i| EpochRecord {
            epoch: ep[i] as usize,
            loss: lo[i],
            penalty: pe[i],
            accuracy: opt(ac[i]),
            rmse: opt(rm[i]),
            val_loss: opt(vl[i]),
            val_accuracy: opt(va[i]),
            val_rmse: opt(vr[i]),
        })
        .collect();
    let rng_hex = get(path, &md, "rng")?;
    let mut rng_state = [0u8; 49];
    if rng_hex.len() != 98 {
        return Err(fmt_err(path, "metadata `rng` is not 49 hex bytes"));
    }
    for (i, b) in rng_state.iter_mut().enumerate() {
        *b = u8::from_str_radix(&rng_hex[2 * i..2 * i + 2], 16)
            .map_err(|_| fmt_err(path, "metadata `rng` is not hex"))?;
    }
    let epoch: usize = parse_num(path, &md, "epoch")?;
    if epoch != n {
        return Err(fmt_err(path, format!("epoch {epoch} but {n} history rows")));
    }
    Ok(TrainState {
        model,
        optimizer: OptimizerState { step: parse_num(path, &md, "step")?, slots },
        rng: rng_state,
        epoch,
        history: History { epochs },
        best,
        bad_epochs: parse_num(path, &md, "bad_epochs")?,
        config,
    })
}

/// An observer that saves the state every `every` epochs, at the end of the run, and — on
/// divergence — the last good state.
#[derive(Clone, Debug)]
pub struct Checkpointer {
    /// Where the checkpoint file goes.
    pub path: PathBuf,
    /// Save every this many epochs (≥ 1).
    pub every: usize,
}

impl Checkpointer {
    /// Saves to `path` every `every` epochs.
    pub fn new(path: impl Into<PathBuf>, every: usize) -> Self {
        Checkpointer { path: path.into(), every: every.max(1) }
    }
}

impl<T: Scalar> Observer<T> for Checkpointer {
    fn on_epoch(&mut self, state: &TrainState<T>, record: &EpochRecord) -> Result<Control> {
        if record.epoch.is_multiple_of(self.every) {
            save(state, &self.path)?;
        }
        Ok(Control::Continue)
    }

    fn on_end(&mut self, state: &TrainState<T>, _outcome: Outcome) -> Result<()> {
        save(state, &self.path)
    }
}
