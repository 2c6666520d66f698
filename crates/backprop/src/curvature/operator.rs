//! A symmetric linear operator given only by its action on vectors (matrix-free).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, Axis, s};

use crate::{Error, Result};

/// A symmetric n×n matrix A known through products A·v — a Hessian, a Gauss-Newton matrix or a
/// dense matrix.
///
/// Directions come in batches, one per **row** of `v` (k×n → k×n), so an implementation can
/// turn k products into a few matrix-matrix products.
pub trait SymmetricOperator {
    /// n, the number of rows and columns.
    fn dim(&self) -> usize;

    /// Row j of the result is A·vⱼ for row vⱼ of `v` (k×n).
    fn apply_rows(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>>;

    /// A·v for one vector.
    fn apply(&self, v: ArrayView1<'_, f64>) -> Result<Array1<f64>> {
        let rows = v.insert_axis(Axis(0));
        Ok(self.apply_rows(rows)?.row(0).to_owned())
    }

    /// out ← A·v, into caller-owned memory: iterative methods that keep their vectors in one
    /// matrix (Lanczos) then allocate nothing per product. `out` must not alias `v`.
    fn apply_into(&self, v: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) -> Result<()> {
        if out.len() != self.dim() {
            return Err(Error::shape(
                "SymmetricOperator::apply_into",
                format!("the output has {} entries, the operator is {n}×{n}", out.len(), n = self.dim()),
            ));
        }
        out.assign(&self.apply(v)?);
        Ok(())
    }

    /// The dense matrix, by products with all unit vectors (in blocks), symmetrised as
    /// ½(A + Aᵀ) to remove rounding asymmetry.
    fn to_dense(&self) -> Result<Array2<f64>> {
        let n = self.dim();
        let mut a = Array2::zeros((n, n));
        let block = 256.min(n.max(1));
        let mut start = 0;
        while start < n {
            let end = (start + block).min(n);
            let mut e = Array2::zeros((end - start, n));
            for (j, p) in (start..end).enumerate() {
                e[[j, p]] = 1.0;
            }
            let rows = self.apply_rows(e.view())?;
            a.slice_mut(s![start..end, ..]).assign(&rows);
            start = end;
        }
        symmetrise(&mut a);
        Ok(a)
    }
}

/// A ← ½(A + Aᵀ).
pub(crate) fn symmetrise(a: &mut Array2<f64>) {
    let n = a.nrows();
    for i in 0..n {
        for j in 0..i {
            let m = 0.5 * (a[[i, j]] + a[[j, i]]);
            a[[i, j]] = m;
            a[[j, i]] = m;
        }
    }
}

/// Checks that `v` is k×n for an operator of size n.
pub(crate) fn check_rows(op: &str, n: usize, v: &ArrayView2<'_, f64>) -> Result<()> {
    if v.ncols() != n {
        return Err(Error::shape(op, format!("directions are {:?} but the operator is {n}×{n}", v.shape())));
    }
    Ok(())
}

/// A dense symmetric matrix is its own operator (the caller guarantees symmetry).
impl SymmetricOperator for Array2<f64> {
    fn dim(&self) -> usize {
        self.nrows()
    }

    fn apply_rows(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        check_rows("SymmetricOperator::apply_rows", self.nrows(), &v)?;
        // rows of V·Aᵀ = (A·vⱼ)ᵀ, and Aᵀ = A.
        let mut out = Array2::zeros((v.nrows(), self.nrows()));
        crate::tensor::gemm_into(out.view_mut(), false, 1.0, v, self.t())?;
        Ok(out)
    }

    fn to_dense(&self) -> Result<Array2<f64>> {
        Ok(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn dense_operator_applies_rows_and_round_trips() {
        let a = array![[2.0, 1.0], [1.0, 3.0]];
        let v = array![[1.0, 0.0], [1.0, 1.0]];
        assert_eq!(a.apply_rows(v.view()).unwrap(), array![[2.0, 1.0], [3.0, 4.0]]);
        assert_eq!(a.apply(array![0.0, 1.0].view()).unwrap(), array![1.0, 3.0]);
        assert!(a.apply_rows(array![[1.0, 2.0, 3.0]].view()).is_err());
        let mut out = array![7.0, 7.0];
        a.apply_into(array![1.0, 1.0].view(), out.view_mut()).unwrap();
        assert_eq!(out, array![3.0, 4.0]);
        assert!(a.apply_into(array![1.0, 1.0].view(), Array1::zeros(3).view_mut()).is_err());
    }
}
