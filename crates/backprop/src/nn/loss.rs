//! The loss functions a network can be trained with (names as on the command line).

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A training loss. Every loss is a mean over samples, so its scale does not depend on the
/// batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// The notebook's ½‖ŷ − y‖², summed over outputs, mean over samples.
    SquaredError,
    /// Mean over all elements of (ŷ − y)² (PyTorch's `MSELoss`).
    Mse,
    /// Binary cross-entropy; on a sigmoid output layer it is computed from the logits (stable).
    Bce,
    /// Softmax cross-entropy on class indices, from the logits, mean over samples.
    CrossEntropy,
}

impl Loss {
    /// All losses.
    pub const ALL: [Loss; 4] = [Loss::SquaredError, Loss::Mse, Loss::Bce, Loss::CrossEntropy];

    /// The name used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Loss::SquaredError => "squared_error",
            Loss::Mse => "mse",
            Loss::Bce => "bce",
            Loss::CrossEntropy => "cross_entropy",
        }
    }

    /// Whether targets are class labels (accuracy is the metric) or real values (RMSE).
    pub fn is_classification(self) -> bool {
        matches!(self, Loss::Bce | Loss::CrossEntropy)
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Loss::ALL.into_iter().find(|l| l.name() == s).ok_or_else(|| {
            let names: Vec<_> = Loss::ALL.iter().map(|l| l.name()).collect();
            Error::invalid("loss", format!("`{s}` is not one of {}", names.join(", ")))
        })
    }
}
