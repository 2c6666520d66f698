//! Which parameters a computation sees, in one documented order.
//!
//! The flat parameter order used everywhere (Hessians, the penalty mask, `grad --json`):
//! layers in order; for each layer its weight flattened row-major in the model-file (out×in)
//! layout, then that layer's bias when biases are included.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Which parameters a flat vector, a Hessian or a penalty covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamSelection {
    /// Weights only: the notebook's convention (biases are neither penalised nor analysed).
    #[default]
    Weights,
    /// Weights and biases.
    All,
}

impl fmt::Display for ParamSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamSelection::Weights => "weights",
            ParamSelection::All => "all",
        })
    }
}

impl FromStr for ParamSelection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "weights" => Ok(ParamSelection::Weights),
            "all" => Ok(ParamSelection::All),
            other => Err(Error::invalid("params", format!("`{other}` is not one of weights, all"))),
        }
    }
}

/// One named tensor of a model, and where it sits in the flat vector of all parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    /// The name in `model.safetensors`, e.g. `0.weight` (PyTorch `Sequential` naming).
    pub name: String,
    /// Layer index (0-based, counting affine layers only).
    pub layer: usize,
    /// `true` for a bias, `false` for a weight matrix.
    pub is_bias: bool,
    /// Shape in the model file: `[out, in]` for weights, `[out]` for biases.
    pub shape: Vec<usize>,
    /// Offset in the flat vector of *all* parameters (weights and biases).
    pub offset: usize,
}

impl ParamSpec {
    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a selection includes this tensor.
    pub fn selected(&self, selection: ParamSelection) -> bool {
        selection == ParamSelection::All || !self.is_bias
    }

    /// Whether the L2 penalty (μ/2)‖w‖² applies: weights yes, biases never (the notebook's
    /// convention). This is the single definition of the penalty mask.
    pub fn penalised(&self) -> bool {
        !self.is_bias
    }
}
