//! Matrix products on ndarray views, computed by faer's GEMM.
//!
//! faer is the fastest pure-Rust GEMM measured on this machine, for tiny shapes (1×4·4×5 in
//! ~30 ns, ndarray's `dot` ~250 ns) and large ones alike. Views are passed with their strides, so
//! a transposed operand (`a.t()`) costs no copy.
//!
//! Threads: products of at least [`SPLIT_FLOP`] are cut into one block of output rows or
//! columns per thread, each a single-thread faer product, run side by side by
//! [`crate::parallel::join`] (no thread wake-up per split). faer's own multi-threaded mode
//! shares the packed operands but waits at barriers between blocks; on a 2-core machine it was
//! slower than the split at every size measured (1.1–1.3× at 1024×784·784×256, 2–3× around
//! 10⁷ flop, where it is slower even than one thread).

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, s};

use super::{DType, Scalar};
use crate::{Error, Result};

/// Each thread's share of a split product is at least this many flop (2·m·n·k).
///
/// Tuned on a 2-core AMD EPYC (Zen 4) VM. With rayon's join, a split paid for waking a
/// sleeping thread (~40–80 µs there), so only products of 26·10⁶ flop and more were split;
/// since splits go through [`crate::parallel::join`] they cost a few µs, and the products of
/// 784-256-256-10 at batches 32 and 128 (4.2–51·10⁶ flop) gain from splitting. Shares of
/// 6·10⁶/4·10⁶ (f32/f64) → 2·10⁶, four alternated rounds: f32 batch-32 forward 135 → 108 µs,
/// step 327 → 273 µs; f64 batch-32 forward 256 → 210 µs, step 630 → 530 µs; f32 batch-128
/// step 886 → 842 µs; 10⁶ gained nothing more (108, 275, 220, 563, 892 µs).
const PART_FLOP: usize = 2_000_000;

/// Products of at least this many flop are split across threads: two [`PART_FLOP`] shares.
pub(crate) const SPLIT_FLOP: usize = 2 * PART_FLOP;

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
/// For running independent products side by side ([`crate::parallel::join`]): two single-thread products
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
    c: ArrayViewMut2<'_, T>,
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
    let flop = 2 * m * n * k;
    let parts = if parallel && flop >= SPLIT_FLOP {
        rayon::current_num_threads().min(flop / PART_FLOP).max(1)
    } else {
        1
    };
    let accum = if accumulate { faer::Accum::Add } else { faer::Accum::Replace };
    split_product(c, accum, alpha, a, b, parts);
    Ok(())
}

/// `c ← alpha·a·b (+ c)` on `parts` threads: the larger of c's two dimensions (columns on a
/// tie) is cut in two blocks in proportion to the threads each gets, at a multiple of 16 (when
/// at least 16) so that column blocks of a row-major c start on a cache line. Shapes are
/// already checked.
///
/// Which dimension to cut was measured (f32 and f64, 13 shapes from 32×784·784×256 to
/// 2048²): the larger one was the faster cut or within ~5 % of it in all but one.
fn split_product<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    accum: faer::Accum,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    parts: usize,
) {
    let (m, n) = c.dim();
    let along_columns = n >= m;
    let len = if along_columns { n } else { m };
    let first = parts / 2;
    // Rounded down, as `nn::split::middle`: the MLP passes give each thread the weight rows
    // its block of a forward product reads (`nn::split::by_owner`).
    let cut = len * first / parts.max(1);
    let cut = if cut >= 16 { cut - cut % 16 } else { cut };
    if parts < 2 || cut == 0 || cut == len {
        one_thread(c, accum, alpha, a, b);
        return;
    }
    if along_columns {
        let (c0, c1) = c.split_at(Axis(1), cut);
        let (b0, b1) = (b.slice(s![.., ..cut]), b.slice(s![.., cut..]));
        crate::parallel::join(
            || split_product(c0, accum, alpha, a, b0, first),
            || split_product(c1, accum, alpha, a, b1, parts - first),
        );
    } else {
        let (c0, c1) = c.split_at(Axis(0), cut);
        let (a0, a1) = (a.slice(s![..cut, ..]), a.slice(s![cut.., ..]));
        crate::parallel::join(
            || split_product(c0, accum, alpha, a0, b, first),
            || split_product(c1, accum, alpha, a1, b, parts - first),
        );
    }
}

/// Rows of the shared dimension per product when `a` is column-major and `b` row-major in f64.
const K_BLOCK: usize = 128;

/// `c ← alpha·a·b (+ c)` on this thread.
///
/// An f64 product whose shared dimension k is the outer stride of both operands (column-major
/// `a`, row-major `b`: a weight gradient δᵀx over a batch) is summed over blocks of
/// [`K_BLOCK`] rows of k: faer's f64 kernel slows down on this layout as k grows. One thread,
/// best of 30, one product → blocks of 128: 256×1024·1024×784 7.7 → 5.1 ms, 512³ 6.8 → 3.4 ms,
/// 256×1000·1000×150 1.10 → 0.96 ms (blocks of 256 gained less; f32 did not gain).
fn one_thread<T: Scalar>(
    mut c: ArrayViewMut2<'_, T>,
    mut accum: faer::Accum,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
) {
    let (m, n) = c.dim();
    let k = a.ncols();
    if short_through_wide(&c, &b) {
        by_column_major_blocks(c, accum, alpha, a, b);
        return;
    }
    let blocked = T::DTYPE == DType::F64 && a.strides()[0] == 1 && b.strides()[1] == 1 && k > 2 * K_BLOCK;
    let step = if blocked { K_BLOCK } else { k.max(1) };
    let (rs, cs) = (c.strides()[0], c.strides()[1]);
    let mut start = 0;
    loop {
        let end = (start + step).min(k);
        // SAFETY: `c` is an exclusive view; pointer, dims and strides are its own.
        let dst = unsafe { faer::MatMut::from_raw_parts_mut(c.as_mut_ptr(), m, n, rs, cs) };
        let (ak, bk) = (a.slice(s![.., start..end]), b.slice(s![start..end, ..]));
        faer::linalg::matmul::matmul(dst, accum, as_faer(&ak), as_faer(&bk), alpha, faer::Par::Seq);
        accum = faer::Accum::Add;
        start = end;
        if start >= k {
            break;
        }
    }
    clear_upper_simd_state();
}

/// Rows of c up to which [`by_column_major_blocks`] applies.
const SHORT_ROWS: usize = 64;
/// Columns of c per block of [`by_column_major_blocks`]: a SHORT_ROWS × BLOCK_COLS scratch
/// (64 KB in f64) on the stack.
const BLOCK_COLS: usize = 128;

/// Whether `c ← a·b` is a short batch through a wide layer written row-major from a
/// column-major `b` (a forward product x·Wᵀ, W row-major): 2 ≤ m ≤ [`SHORT_ROWS`], n ≥ 2m
/// (one row is a matrix-vector product, 11 µs either way at 1×784·784×256).
fn short_through_wide<T: Scalar>(c: &ArrayViewMut2<'_, T>, b: &ArrayView2<'_, T>) -> bool {
    let (m, n) = c.dim();
    c.strides()[1] == 1 && b.strides()[0] == 1 && (2..=SHORT_ROWS).contains(&m) && n >= 2 * m
}

/// `c ← alpha·a·b (+ c)` through column-major blocks of c on the stack, each copied into c.
///
/// faer computes a row-major c as cᵀ = bᵀaᵀ and packs bᵀ: for x·Wᵀ that is all of W, while a
/// column-major c packs the short x instead. One thread, medians: 32×1024·1024×2048 990 →
/// 671 µs in f32, 1982 → 1322 µs in f64; 32×784·784×256 73 → 64 µs and 144 → 131 µs; no gain
/// from 128 rows on (128×784·784×256 268 vs 272 µs).
fn by_column_major_blocks<T: Scalar>(
    mut c: ArrayViewMut2<'_, T>,
    accum: faer::Accum,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
) {
    let (m, n) = c.dim();
    let mut buf = [T::zero(); SHORT_ROWS * BLOCK_COLS];
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK_COLS).min(n);
        let w = end - start;
        // SAFETY: `buf` holds m·w ≤ SHORT_ROWS·BLOCK_COLS values, laid out column-major m×w.
        let dst = unsafe { faer::MatMut::from_raw_parts_mut(buf.as_mut_ptr(), m, w, 1, m as isize) };
        let bk = b.slice(s![.., start..end]);
        faer::linalg::matmul::matmul(
            dst,
            faer::Accum::Replace,
            as_faer(&a),
            as_faer(&bk),
            alpha,
            faer::Par::Seq,
        );
        let block = ArrayView2::from_shape((w, m), &buf[..m * w]).map(|v| v.reversed_axes());
        let Ok(block) = block else { unreachable!("m·w values") };
        let mut cb = c.slice_mut(s![.., start..end]);
        match accum {
            faer::Accum::Replace => cb.assign(&block),
            faer::Accum::Add => cb.zip_mut_with(&block, |c, &v| *c += v),
        }
        start = end;
    }
    clear_upper_simd_state();
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

    /// Split products (any thread count, either cut, transposed and strided views, α and
    /// accumulation) agree with the same product on one thread.
    #[test]
    fn split_products_match_one_thread() {
        let f = |m: usize, n: usize, seed: usize| {
            Array2::from_shape_fn((m, n), |(i, j)| (((i * 31 + j * 17 + seed) % 23) as f64 - 11.0) / 7.0)
        };
        for &(m, k, n) in &[
            (301, 297, 190),
            (190, 297, 301),
            (250, 250, 250),
            (2000, 1000, 13),
            (1, 40000, 600),
            (17, 100000, 17),
        ] {
            assert!(2 * m * n * k >= SPLIT_FLOP, "{m}×{k}×{n} would not be split");
            let a = f(k, m, 1); // used transposed
            let b = f(k, 2 * n, 2); // every other column
            let b = b.slice(s![.., ..;2]);
            let c0 = f(m, n, 3);
            let mut want = c0.clone();
            gemm_into_seq(want.view_mut(), true, -0.5, a.t(), b).unwrap();
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut got = c0.clone();
                pool.install(|| gemm_into(got.view_mut(), true, -0.5, a.t(), b)).unwrap();
                let err = (&got - &want).iter().fold(0.0f64, |e, v| e.max(v.abs()));
                assert!(err <= 1e-12 * k as f64, "{m}×{k}×{n} on {threads} threads: {err}");
                let mut again = c0.clone();
                pool.install(|| gemm_into(again.view_mut(), true, -0.5, a.t(), b)).unwrap();
                assert_eq!(got, again, "{m}×{k}×{n} on {threads} threads is not deterministic");
            }
        }
    }

    /// The k-blocked layout (f64, column-major a, row-major b) agrees with ndarray's product,
    /// with α, accumulation, a last partial block and an empty k.
    #[test]
    fn k_blocked_products_match_ndarray() {
        for &(m, k, n) in &[(7, 1000, 5), (3, 257, 4), (2, 0, 3)] {
            let at = Array2::from_shape_fn((k, m), |(i, j)| ((i * 5 + j * 3) % 17) as f64 - 8.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i + j * 7) % 13) as f64 / 4.0);
            let c0 = Array2::from_shape_fn((m, n), |(i, j)| (i + 2 * j) as f64);
            let mut got = c0.clone();
            gemm_into_seq(got.view_mut(), true, 2.0, at.t(), b.view()).unwrap();
            assert_eq!(got, &c0 + &(at.t().dot(&b) * 2.0), "{m}×{k}×{n}");
            let mut got = c0.clone();
            gemm_into_seq(got.view_mut(), false, 1.0, at.t(), b.view()).unwrap();
            assert_eq!(got, at.t().dot(&b), "{m}×{k}×{n}");
        }
    }

    /// Short batches through wide layers (row-major c, column-major b = Wᵀ: computed through
    /// column-major blocks) agree with ndarray's product: partial last blocks, 2 and 64 rows,
    /// α, accumulation, and c a column block of a wider matrix (as each thread's half is).
    fn short_through_wide_matches_ndarray<T: Scalar>(tol: f64) {
        for &(m, k, n) in &[(2, 5, 4), (5, 33, 300), (64, 17, 128), (64, 40, 129), (33, 784, 256)] {
            let x = Array2::from_shape_fn((m, k), |(i, j)| T::of(((i * 5 + j * 3) % 17) as f64 / 8.0 - 1.0));
            let w = Array2::from_shape_fn((n, k), |(i, j)| T::of(((i + j * 7) % 13) as f64 / 6.0 - 1.0));
            let wide0 = Array2::from_shape_fn((m, n + 9), |(i, j)| T::of((i + 2 * j) as f64 / 50.0));
            let want = x.mapv(|v| v.f64()).dot(&w.mapv(|v| v.f64()).t());
            for accumulate in [false, true] {
                let mut wide = wide0.clone();
                let c = wide.slice_mut(s![.., 4..n + 4]);
                assert!(short_through_wide(&c, &w.t()), "{m}×{k}×{n}");
                gemm_into_seq(c, accumulate, T::of(-1.5), x.view(), w.t()).unwrap();
                for ((i, j), &v) in wide.indexed_iter() {
                    let before = wide0[[i, j]].f64();
                    let expect = if (4..n + 4).contains(&j) {
                        -1.5 * want[[i, j - 4]] + if accumulate { before } else { 0.0 }
                    } else {
                        before
                    };
                    assert!((v.f64() - expect).abs() <= tol * (1.0 + expect.abs()), "{m}×{k}×{n} [{i},{j}]");
                }
            }
        }
    }

    #[test]
    fn short_batches_through_wide_layers_match_ndarray() {
        short_through_wide_matches_ndarray::<f32>(1e-5);
        short_through_wide_matches_ndarray::<f64>(1e-13);
    }

    #[test]
    fn shape_mismatch_is_an_error_naming_both_shapes() {
        let a = Array2::<f64>::zeros((2, 3));
        let err = gemm(a.view(), a.view()).unwrap_err().to_string();
        assert!(err.contains("[2, 3]"), "{err}");
    }
}
