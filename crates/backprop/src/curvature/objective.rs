//! A loss over a flat parameter vector, with its gradient and curvature, matrix-free.

use ndarray::{Array1, Array2, ArrayView1};

use super::SymmetricOperator;
use crate::Result;

/// Which curvature matrix an [`Objective`] hands out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Curvature {
    /// The exact Hessian ∇²L(w). Indefinite away from a minimum.
    #[default]
    Hessian,
    /// The generalised Gauss-Newton matrix G = Σᵢ Jᵢᵀ ∇²ℓᵢ Jᵢ (J: Jacobian of the network output
    /// w.r.t. w; ℓ convex in that output), positive semi-definite everywhere. It is the Hessian
    /// without the terms that carry the loss gradient, so G = H at a zero-residual fit.
    GaussNewton,
}

impl std::fmt::Display for Curvature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Curvature::Hessian => "hessian",
            Curvature::GaussNewton => "gauss_newton",
        })
    }
}

/// A twice-differentiable scalar loss L(w) of `dim()` parameters.
///
/// Matrix-free: curvature is available as an operator at a point (its forward and backward
/// pass computed once, then reused for every product), and as a dense matrix on request.
pub trait Objective {
    /// The number of parameters.
    fn dim(&self) -> usize;

    /// L(w).
    fn value(&self, w: ArrayView1<'_, f64>) -> Result<f64>;

    /// L(w) and ∇L(w).
    fn value_grad(&self, w: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>)>;

    /// The curvature at w as an operator. Its forward and backward state is computed once, so
    /// each product costs ~1.7 gradients' worth of GEMM flop (~1.6 gradients' time on the
    /// 150-256-256-1 bench model: `hvp_at_150_256_256_1` against `grad_150_256_256_1` in
    /// `bench/compare`).
    fn curvature(&self, w: ArrayView1<'_, f64>, kind: Curvature) -> Result<Box<dyn SymmetricOperator + '_>>;

    /// The Hessian-vector product ∇²L(w)·v.
    fn hvp(&self, w: ArrayView1<'_, f64>, v: ArrayView1<'_, f64>) -> Result<Array1<f64>> {
        self.curvature(w, Curvature::Hessian)?.apply(v)
    }

    /// The dense Hessian ∇²L(w) (symmetric, n×n).
    fn hessian(&self, w: ArrayView1<'_, f64>) -> Result<Array2<f64>> {
        self.curvature(w, Curvature::Hessian)?.to_dense()
    }

    /// The dense generalised Gauss-Newton matrix at w (symmetric positive semi-definite).
    fn gauss_newton(&self, w: ArrayView1<'_, f64>) -> Result<Array2<f64>> {
        self.curvature(w, Curvature::GaussNewton)?.to_dense()
    }
}
