//! Dense numeric kernels shared by the autodiff engine, the networks and the curvature code:
//! the scalar types ([`Scalar`]: `f32` and `f64` through one generic path) and matrix products
//! ([`gemm`], backed by faer), a tiled transpose, and vectorised elementwise exp and sigmoid
//! ([`vmath`]).

mod finite;
mod gemm;
mod pages;
mod scalar;
mod transpose;
pub mod vmath;

pub(crate) use finite::{all_finite, first_non_finite_2d};
pub(crate) use gemm::SPLIT_FLOP as GEMM_SPLIT_FLOP;
pub use gemm::{clear_upper_simd_state, gemm, gemm_into, gemm_into_seq};
pub(crate) use pages::{zeroed_huge, zeros_huge};
pub use scalar::{DType, Scalar};
pub(crate) use transpose::transpose_into;
pub use vmath::VectorMath;
