//! Matrix products on ndarray views, computed by faer's GEMM.
//!
//! faer is the fastest pure-Rust GEMM measured on this machine, for tiny shapes (1×4·4×5 in
//! ~30 ns, ndarray's `dot` ~250 ns) and large ones alike. Views are passed with their strides, so
//! a transposed operand (`a.t()`) costs no copy. Products below ~10⁷ flop run on one thread:
//! two threads are slower there.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use super::Scalar;
use crate::{Error, Result};

/// Products of at least this many flop (2·m·n·k) use all threads.
const PARALLEL_FLOP: usize = 10_000_000;

fn as_faer<'a, T: Scalar>(a: &ArrayView2<'a, T>) -> faer::MatRef<'a, T> {
    let (m, n) = a.dim();
    let s = a.strides();
    // SAFETY: the view's pointer, dimensions and strides describe valid memory for its lifetime.
    unsafe { faer::MatRef::from_raw_parts(a.as_ptr(), m, n, s[0], s[1]) }
}

/// `c ← alpha·a·b + beta·c` with `beta` ∈ {0, 1} (`accumulate`), shapes checked.
///
/// `c` must not alias `a` or `b` (ndarray's borrow rules already forbid it).
pub fn gemm_into<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
) -> Result<()> {
    gemm_checked(c, accumulate, alpha, a, b, true)
}

/// [`gemm_into`] on the calling thread only, whatever the size.
///
/// For running independent products side by side (`rayon::join`): two single-thread products
/// at once beat the same two products one after the other on two threads each, since neither
/// waits at faer's thread barriers (measured on 784-256-256-10 at batch 1024: the layer-2
/// weight-gradient and δ products 1.50 → 1.19 ms in f32).
pub fn gemm_into_seq<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
) -> Result<()> {
    gemm_checked(c, accumulate, alpha, a, b, false)
}

fn gemm_checked<T: Scalar>(
    mut c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    parallel: bool,
) -> Result<()> {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    if k != k2 || c.dim() != (m, n) {
        return Err(Error::shape(
            "matmul",
            format!("a {:?} · b {:?} into c {:?}", a.shape(), b.shape(), c.shape()),
        ));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let par = if parallel && 2 * m * n * k >= PARALLEL_FLOP { faer::Par::rayon(0) } else { faer::Par::Seq };
    let (rs, cs) = (c.strides()[0], c.strides()[1]);
    // SAFETY: `c` is an exclusive view; pointer, dims and strides are its own.
    let dst = unsafe { faer::MatMut::from_raw_parts_mut(c.as_mut_ptr(), m, n, rs, cs) };
    let accum = if accumulate { faer::Accum::Add } else { faer::Accum::Replace };
    faer::linalg::matmul::matmul(dst, accum, as_faer(&a), as_faer(&b), alpha, par);
    clear_upper_simd_state();
    Ok(())
}

/// faer's AVX-512 micro-kernels can return with the upper halves of the vector registers dirty;
/// the scalar libm code that follows (exp, tanh …) then runs up to ~10× slower (the SSE/AVX
/// transition penalty, measured in the autodiff bench: a tanh MLP gradient went from 45 ms to
/// 3–6 ms). `vzeroupper` restores the clean state; every GEMM caller gets it.
#[inline]
pub fn clear_upper_simd_state() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: AVX is available (checked above); vzeroupper only clears the upper halves
            // of vector registers, which hold no live values between Rust statements.
            unsafe { zero_upper() }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn zero_upper() {
    std::arch::x86_64::_mm256_zeroupper();
}

/// `a·b` as a new row-major matrix.
///
/// ```
/// use ndarray::array;
/// let c = backprop::tensor::gemm(array![[1.0, 2.0]].view(), array![[3.0], [4.0]].view()).unwrap();
/// assert_eq!(c, array![[11.0]]);
/// ```
pub fn gemm<T: Scalar>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) -> Result<Array2<T>> {
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    gemm_into(c.view_mut(), false, T::one(), a, b)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn matches_ndarray_dot_with_transposed_views() {
        let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let b = array![[1.0, -1.0], [0.5, 2.0], [3.0, 0.0]];
        assert_eq!(gemm(a.view(), b.view()).unwrap(), a.dot(&b));
        assert_eq!(gemm(b.t(), a.t()).unwrap(), b.t().dot(&a.t()));
        let mut c = Array2::<f32>::ones((2, 2));
        let a32 = a.mapv(|v| v as f32);
        let b32 = b.mapv(|v| v as f32);
        gemm_into(c.view_mut(), true, 2.0, a32.view(), b32.view()).unwrap();
        assert_eq!(c, a32.dot(&b32) * 2.0 + 1.0);
        let mut c = Array2::<f32>::ones((2, 2));
        gemm_into_seq(c.view_mut(), true, 2.0, a32.view(), b32.view()).unwrap();
        assert_eq!(c, a32.dot(&b32) * 2.0 + 1.0);
    }

    #[test]
    fn shape_mismatch_is_an_error_naming_both_shapes() {
        let a = Array2::<f64>::zeros((2, 3));
        let err = gemm(a.view(), a.view()).unwrap_err().to_string();
        assert!(err.contains("[2, 3]"), "{err}");
    }
}
