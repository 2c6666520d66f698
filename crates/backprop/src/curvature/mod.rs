//! Curvature of a loss: Hessian-vector products, exact Hessians, spectra and the L2-shrinkage
//! analysis of the notebook's bonus section.
//!
//! Everything here is computed in `f64`, whatever the model's dtype: small eigenvalues and the
//! ratios λ/(λ+μ) need the precision, and the dense algebra (faer) runs in f64 anyway.
//!
//! * [`Objective`]: a loss L(w) over a flat parameter vector, matrix-free — its value and
//!   gradient, and at any point a [`SymmetricOperator`] (the Hessian or the generalised
//!   Gauss-Newton matrix) applied to batches of directions.
//! * [`MlpObjective`]: the implementation for [`crate::nn::Mlp`] — one fused forward, backward
//!   and Pearlmutter R-op pass (forward-over-reverse), batched over many directions as GEMMs.
//! * [`eigh`]: the dense symmetric eigendecomposition, eigenvalues decreasing: a blocked
//!   Householder tridiagonalisation (`tridiag.rs`), then divide and conquer (`divide.rs`).
//! * [`Lanczos`], [`hutchinson_trace`], [`spectral_density`]: matrix-free spectra for models
//!   too large for a dense Hessian.
//! * [`shrinkage`]: predicts the L2-regularised optimum from the spectrum at w* and checks the
//!   prediction by actually minimising the penalised loss.
//!
//! Parameter order everywhere: the documented flat order of [`crate::nn::ParamSelection`] —
//! layers in order, each weight row-major out×in, then that layer's bias when selected.

mod divide;
mod eigen;
mod lanczos;
mod minimize;
mod mlp;
mod objective;
mod operator;
mod pool;
pub mod shrinkage;
mod stochastic;
mod tridiag;

pub use eigen::{SymmetricEigen, eigh};
pub use lanczos::{Lanczos, LanczosResult, residual_norm};
pub use minimize::{NewtonReport, PenalisedNewton};
pub use mlp::MlpObjective;
pub use objective::{Curvature, Objective};
pub use operator::SymmetricOperator;
pub use shrinkage::{ShrinkageAnalysis, ShrinkageReport};
pub use stochastic::{HutchinsonEstimate, Slq, SpectralDensity, hutchinson_trace, spectral_density};
