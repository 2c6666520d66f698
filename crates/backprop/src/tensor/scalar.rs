//! The floating-point types the library computes in.

use std::fmt;

/// The element type of a tensor, as named on the command line and in `config.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit IEEE float: for speed.
    F32,
    /// 64-bit IEEE float: the default, for checks and the notebook.
    F64,
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
        })
    }
}

impl std::str::FromStr for DType {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "f32" | "float32" => Ok(DType::F32),
            "f64" | "float64" => Ok(DType::F64),
            other => Err(crate::Error::invalid("dtype", format!("`{other}` is not one of f32, f64"))),
        }
    }
}

/// A real floating-point scalar: `f32` or `f64`.
///
/// One generic code path serves both: f64 for checks and the notebook, f32 for speed.
pub trait Scalar:
    num_traits::Float
    + num_traits::FromPrimitive
    + ndarray::ScalarOperand
    + ndarray::LinalgScalar
    + faer::traits::RealField
    + super::vmath::VectorMath
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::ops::DivAssign
    + fmt::Debug
    + fmt::Display
    + fmt::LowerExp
    + Default
    + Send
    + Sync
    + 'static
{
    /// The matching [`DType`].
    const DTYPE: DType;
    /// Converts from f64 (rounding to nearest for f32).
    fn of(x: f64) -> Self;
    /// Converts to f64 (exact).
    fn f64(self) -> f64;
}

impl Scalar for f32 {
    const DTYPE: DType = DType::F32;
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
}

impl Scalar for f64 {
    const DTYPE: DType = DType::F64;
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic_math<T: Scalar>(x: T) -> T {
        x.exp().sqrt().abs().max(T::zero()) + x.ln_1p() * T::of(0.5)
    }

    #[test]
    fn float_methods_resolve_for_both_dtypes() {
        assert!((generic_math(1.0f64) - (0.5f64.exp() + 0.5 * 2f64.ln())).abs() < 1e-12);
        assert!((generic_math(1.0f32).f64() - (0.5f64.exp() + 0.5 * 2f64.ln())).abs() < 1e-5);
        assert_eq!("f32".parse::<DType>().unwrap(), DType::F32);
        assert!("f16".parse::<DType>().is_err());
    }
}
