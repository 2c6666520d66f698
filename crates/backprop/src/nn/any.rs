//! A network whose precision is chosen at run time (from `--dtype` or a model file).

use super::activation::Activation;
use super::mlp::Mlp;
use super::params::{ParamSelection, ParamSpec};
use crate::{DType, Result};

/// An [`Mlp`] in f32 or f64, as loaded from a model directory. Match on it to run generic code:
///
/// ```
/// use backprop::nn::{Activation, AnyMlp, Mlp};
/// let any = AnyMlp::from(Mlp::<f32>::zeros(&[4, 5, 1], &[Activation::Sigmoid; 2], true)?);
/// let inputs = match &any {
///     AnyMlp::F32(m) => m.inputs(),
///     AnyMlp::F64(m) => m.inputs(),
/// };
/// assert_eq!((inputs, any.dtype()), (4, backprop::DType::F32));
/// # Ok::<(), backprop::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum AnyMlp {
    /// Single precision.
    F32(Mlp<f32>),
    /// Double precision.
    F64(Mlp<f64>),
}

impl From<Mlp<f32>> for AnyMlp {
    fn from(m: Mlp<f32>) -> Self {
        AnyMlp::F32(m)
    }
}

impl From<Mlp<f64>> for AnyMlp {
    fn from(m: Mlp<f64>) -> Self {
        AnyMlp::F64(m)
    }
}

macro_rules! both {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            AnyMlp::F32($m) => $e,
            AnyMlp::F64($m) => $e,
        }
    };
}

impl AnyMlp {
    /// The precision.
    pub fn dtype(&self) -> DType {
        match self {
            AnyMlp::F32(_) => DType::F32,
            AnyMlp::F64(_) => DType::F64,
        }
    }

    /// Widths `[inputs, hidden…, outputs]`.
    pub fn sizes(&self) -> Vec<usize> {
        both!(self, m => m.sizes())
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        both!(self, m => m.inputs())
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        both!(self, m => m.outputs())
    }

    /// One activation per layer.
    pub fn activations(&self) -> Vec<Activation> {
        both!(self, m => m.activations())
    }

    /// Whether the layers carry biases.
    pub fn has_bias(&self) -> bool {
        both!(self, m => m.has_bias())
    }

    /// The tensors, named as in `model.safetensors`.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        both!(self, m => m.param_specs())
    }

    /// Number of parameters in a selection.
    pub fn num_params(&self, selection: ParamSelection) -> usize {
        both!(self, m => m.num_params(selection))
    }

    /// Checks shapes fit and parameters are finite.
    pub fn validate(&self) -> Result<()> {
        both!(self, m => m.validate())
    }

    /// The network in f64 (exact from f32).
    pub fn to_f64(&self) -> Mlp<f64> {
        both!(self, m => m.cast())
    }

    /// The network in f32 (rounded from f64).
    pub fn to_f32(&self) -> Mlp<f32> {
        both!(self, m => m.cast())
    }

    /// The network in precision `dtype`.
    pub fn cast_to(&self, dtype: DType) -> AnyMlp {
        match dtype {
            DType::F32 => AnyMlp::F32(self.to_f32()),
            DType::F64 => AnyMlp::F64(self.to_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_keep_architecture() {
        let m = Mlp::<f64>::zeros(&[3, 2, 1], &[Activation::Tanh, Activation::Identity], false).unwrap();
        let any = AnyMlp::from(m).cast_to(DType::F32);
        assert_eq!(any.dtype(), DType::F32);
        assert_eq!(any.sizes(), [3, 2, 1]);
        assert!(!any.has_bias());
        assert_eq!(any.num_params(ParamSelection::All), 8);
        assert_eq!(any.param_specs()[1].name, "2.weight");
    }
}
