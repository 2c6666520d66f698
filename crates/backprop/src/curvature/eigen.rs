//! The dense symmetric eigendecomposition H = QΛQᵀ, eigenvalues in decreasing order as in the
//! notebook.

use ndarray::{Array1, Array2, ArrayView2};

use crate::{Error, Result};

/// H = Q·diag(λ)·Qᵀ with λ₁ ≥ λ₂ ≥ … and Q orthonormal (column i is the eigenvector of λᵢ).
#[derive(Clone, Debug)]
pub struct SymmetricEigen {
    /// Eigenvalues, decreasing.
    pub values: Array1<f64>,
    /// Orthonormal eigenvectors, one per column, in the order of `values`.
    pub vectors: Array2<f64>,
}

impl SymmetricEigen {
    /// λ_max/λ_min over the eigenvalues' magnitudes: ∞ when one is 0.
    pub fn condition_number(&self) -> f64 {
        let max = self.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let min = self.values.iter().fold(f64::INFINITY, |m, v| m.min(v.abs()));
        if min == 0.0 { f64::INFINITY } else { max / min }
    }

    /// Q·diag(f(λ))·Qᵀ·x: a spectral function of H applied to a vector.
    pub fn apply_function(&self, x: ndarray::ArrayView1<'_, f64>, f: impl Fn(f64) -> f64) -> Array1<f64> {
        let mut c = self.vectors.t().dot(&x);
        c.iter_mut().zip(&self.values).for_each(|(c, &l)| *c *= f(l));
        self.vectors.dot(&c)
    }
}

/// The eigendecomposition of the symmetric matrix `h` (only its lower triangle is read), by
/// faer's divide-and-conquer tridiagonal solver.
///
/// ```
/// use ndarray::array;
/// let e = backprop::curvature::eigh(array![[2.0, 1.0], [1.0, 2.0]].view()).unwrap();
/// assert!((e.values[0] - 3.0).abs() < 1e-12 && (e.values[1] - 1.0).abs() < 1e-12);
/// ```
pub fn eigh(h: ArrayView2<'_, f64>) -> Result<SymmetricEigen> {
    let (n, m) = h.dim();
    if n != m {
        return Err(Error::shape("eigh", format!("the matrix must be square, got {n}×{m}")));
    }
    if let Some((i, v)) = h.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::non_finite(
            "eigh input",
            format!("entry ({}, {}) is {v}", i / n.max(1), i % n.max(1)),
        ));
    }
    // Column-major copy: faer's preferred layout for the eigenvector matrix and the input.
    let a = faer::Mat::<f64>::from_fn(n, n, |i, j| h[[i, j]]);
    let evd = a
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::invalid("eigh", format!("the eigendecomposition did not converge: {e:?}")))?;
    let (u, s) = (evd.U(), evd.S().column_vector());
    // faer returns increasing eigenvalues: reverse to the notebook's decreasing order.
    let values = Array1::from_iter((0..n).rev().map(|i| s[i]));
    let vectors = Array2::from_shape_fn((n, n), |(i, c)| u[(i, n - 1 - c)]);
    Ok(SymmetricEigen { values, vectors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenvalues_decrease_and_q_is_orthonormal_and_reconstructs() {
        let n = 30;
        let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 13) % 11) as f64 - 5.0);
        let h = &b + &b.t();
        let e = eigh(h.view()).unwrap();
        assert!(e.values.windows(2).into_iter().all(|w| w[0] >= w[1]));
        let qtq = e.vectors.t().dot(&e.vectors);
        assert!((&qtq - &Array2::<f64>::eye(n)).iter().all(|v| v.abs() < 1e-12));
        let rec = e.vectors.dot(&Array2::from_diag(&e.values)).dot(&e.vectors.t());
        assert!((&rec - &h).iter().all(|v| v.abs() < 1e-10));
    }

    #[test]
    fn non_square_or_non_finite_is_an_error() {
        assert!(eigh(Array2::<f64>::zeros((2, 3)).view()).is_err());
        let mut h = Array2::<f64>::eye(2);
        h[[0, 1]] = f64::NAN;
        assert!(eigh(h.view()).is_err());
    }
}
