//! The dense symmetric eigendecomposition H = QΛQᵀ, eigenvalues in decreasing order as in the
//! notebook.

use ndarray::{Array1, Array2, ArrayView2, ShapeBuilder};

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

/// The eigendecomposition of the symmetric matrix `h` (only its lower triangle is read, as by
/// numpy's `eigh`), by faer's divide-and-conquer tridiagonal solver.
///
/// faer reads `h` in place (its first step copies the lower triangle into its workspace) and
/// writes the eigenvectors column by column straight into the result, which is therefore
/// column-major (Fortran order; `vectors.t()` is row-major). On the 2000×2000 benchmark the
/// two element-by-element copies this avoids cost ~0.1 s.
///
/// ```
/// use ndarray::array;
/// let e = backprop::curvature::eigh(array![[2.0, 1.0], [1.0, 2.0]].view()).unwrap();
/// assert!((e.values[0] - 3.0).abs() < 1e-12 && (e.values[1] - 1.0).abs() < 1e-12);
/// ```
pub fn eigh(h: ArrayView2<'_, f64>) -> Result<SymmetricEigen> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::evd::{self, ComputeEigenvectors};

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
    let h = h.as_standard_layout();
    // A row-major buffer read column-major is hᵀ; its transpose is a view of h itself.
    let h_view =
        faer::MatRef::from_column_major_slice(h.as_slice().expect("standard layout"), n, n).transpose();
    let par = faer::get_global_parallelism();
    let params = Default::default();
    let mut stack =
        MemBuffer::try_new(evd::self_adjoint_evd_scratch::<f64>(n, ComputeEigenvectors::Yes, par, params))
            .map_err(|_| {
                Error::invalid("eigh", format!("cannot allocate the workspace for a {n}×{n} matrix"))
            })?;
    let mut s = faer::diag::Diag::<f64>::zeros(n);
    let mut q = vec![0.0; n * n];
    evd::self_adjoint_evd(
        h_view,
        s.as_mut(),
        Some(faer::MatMut::from_column_major_slice_mut(&mut q, n, n)),
        par,
        MemStack::new(&mut stack),
        params,
    )
    .map_err(|e| Error::invalid("eigh", format!("the eigendecomposition did not converge: {e:?}")))?;
    // faer returns increasing eigenvalues: reverse to the notebook's decreasing order, the
    // eigenvector columns (contiguous in column-major storage) with them.
    let s = s.column_vector();
    let values = Array1::from_iter((0..n).rev().map(|i| s[i]));
    for c in 0..n / 2 {
        let (lo, hi) = q.split_at_mut((n - 1 - c) * n);
        lo[c * n..(c + 1) * n].swap_with_slice(&mut hi[..n]);
    }
    let vectors = Array2::from_shape_vec((n, n).f(), q).expect("n·n entries");
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
        // H·qᵢ = λᵢqᵢ column by column (pairs columns with values, whatever the storage).
        for (i, q) in e.vectors.columns().into_iter().enumerate() {
            assert!((&h.dot(&q) - &(&q * e.values[i])).iter().all(|v| v.abs() < 1e-10), "column {i}");
        }
        // A transposed (column-major) view and odd sizes give the same values.
        for n in [1, 2, 7] {
            let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 5 + j * 3) % 7) as f64 - 3.0);
            let h = &b + &b.t();
            let (a, t) = (eigh(h.view()).unwrap(), eigh(h.t()).unwrap());
            assert!((&a.values - &t.values).iter().all(|v| v.abs() < 1e-12), "n = {n}");
            let rec = a.vectors.dot(&Array2::from_diag(&a.values)).dot(&a.vectors.t());
            assert!((&rec - &h).iter().all(|v| v.abs() < 1e-10), "n = {n}");
        }
    }

    #[test]
    fn only_the_lower_triangle_is_read() {
        let h = ndarray::array![[2.0, 1.0], [1.0, 2.0]];
        let mut junk = h.clone();
        junk[[0, 1]] = 100.0;
        let (a, b) = (eigh(h.view()).unwrap(), eigh(junk.view()).unwrap());
        assert_eq!(a.values, b.values);
    }

    #[test]
    fn non_square_or_non_finite_is_an_error() {
        assert!(eigh(Array2::<f64>::zeros((2, 3)).view()).is_err());
        let mut h = Array2::<f64>::eye(2);
        h[[0, 1]] = f64::NAN;
        assert!(eigh(h.view()).is_err());
    }
}
