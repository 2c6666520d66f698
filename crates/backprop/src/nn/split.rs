//! Large products of the passes shared between two threads as two single-thread products.
//!
//! On two cores, faer's own 2-thread GEMM loses time waiting at its thread barriers on the
//! shapes of an MLP step (~15 % of a 784-256-256-10 step at batch 1024 was barrier waiting).
//! Two products that each run on one thread, side by side (`rayon::join`), wait once, at the
//! end. A product is shared by splitting it in two: by rows of the output or by its columns,
//! possibly computing the transposed product into a buffer first. Which split is fastest
//! depends on the shape and the dtype, so the caller picks one (measured on 784-256-256-10 at
//! batch 1024, see the call sites).
//!
//! Used only with exactly two rayon threads: with more, faer's own parallelism keeps every core
//! busy, which two single-thread halves would not.

use std::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use crate::Scalar;
use crate::tensor::gemm_into_seq;

/// Products (2·m·n·k flop; for a pair, both) from this size on are split when two threads are
/// available. Smaller ones keep faer's own path: on 784-256-256-10 at batch 32 (13 Mflop
/// input layer) halves were 10–35 % slower, at batch 128 (51 Mflop) no faster.
pub(crate) const SPLIT_FLOP: usize = 100_000_000;

/// Whether a product (or a pair of independent products) of `flop` flop runs as two
/// single-thread halves side by side: with exactly two rayon threads and at least `min_flop`.
#[inline]
pub(crate) fn side_by_side(flop: usize, min_flop: usize) -> bool {
    flop >= min_flop && rayon::current_num_threads() == 2
}

/// Where to split `len` in two: the middle, rounded down to a whole number of 16-element
/// blocks (an AVX-512 f32 vector, a cache line) when that still leaves both halves non-empty.
#[inline]
pub(crate) fn middle(len: usize) -> usize {
    let h = len / 2;
    if h >= 16 { h - h % 16 } else { h }
}

/// One single-thread product; the shapes are consistent by construction at every call site.
#[inline]
fn seq<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
) {
    let r = gemm_into_seq(c, accumulate, alpha, a, b);
    debug_assert!(r.is_ok(), "{r:?}");
}

/// c₁ ← a₁·b₁ beside c₂ ← a₂·b₂: two independent products, each on one thread.
pub(crate) fn gemm_pair<T: Scalar>(
    c1: ArrayViewMut2<'_, T>,
    (a1, b1): (ArrayView2<'_, T>, ArrayView2<'_, T>),
    c2: ArrayViewMut2<'_, T>,
    (a2, b2): (ArrayView2<'_, T>, ArrayView2<'_, T>),
) {
    rayon::join(|| seq(c1, false, T::one(), a1, b1), || seq(c2, false, T::one(), a2, b2));
}

/// c ← α·a·b (+ c): the rows of c (and a) in two halves side by side, then `post(half, rows)`
/// on each half on the thread that computed it (while it is in that core's cache).
pub(crate) fn gemm_rows2<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    post: impl Fn(ArrayViewMut2<'_, T>, Range<usize>) + Sync,
) {
    let n = c.nrows();
    let h = middle(n);
    let (top, bottom) = c.split_at(Axis(0), h);
    let (a_top, a_bottom) = a.split_at(Axis(0), h);
    let post = &post;
    rayon::join(
        || {
            let mut top = top;
            seq(top.view_mut(), accumulate, alpha, a_top, b);
            post(top, 0..h);
        },
        || {
            let mut bottom = bottom;
            seq(bottom.view_mut(), accumulate, alpha, a_bottom, b);
            post(bottom, h..n);
        },
    );
}

/// c ← α·a·b (+ c): the columns of c (and b) in two halves side by side.
pub(crate) fn gemm_cols2<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
) {
    let h = middle(c.ncols());
    let (left, right) = c.split_at(Axis(1), h);
    let (b_left, b_right) = b.split_at(Axis(1), h);
    rayon::join(|| seq(left, accumulate, alpha, a, b_left), || seq(right, accumulate, alpha, a, b_right));
}

/// c ← α·dᵀ·a (+ c) (d: k×m, a: k×n) through its transpose: t ← α·aᵀd (n×m, row-major in
/// `tmp`) in two row halves side by side, each thread then adding its half of tᵀ to its half
/// of c's columns. faer runs some shapes much faster with the output in one layout than the
/// other (see the f64 weight gradient in `backward`). `tmp` holds at least m·n entries.
pub(crate) fn gemm_at_b_transposed_cols2<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    alpha: T,
    d: ArrayView2<'_, T>,
    a: ArrayView2<'_, T>,
    tmp: &mut [T],
) {
    let (m, n) = c.dim();
    let h = middle(n);
    let t = super::workspace::view_mut(tmp, n, m);
    let (t_top, t_bottom) = t.split_at(Axis(0), h);
    let (c_left, c_right) = c.split_at(Axis(1), h);
    let (a_left, a_right) = a.split_at(Axis(1), h);
    let half = |mut t: ArrayViewMut2<'_, T>, mut c: ArrayViewMut2<'_, T>, a: ArrayView2<'_, T>| {
        seq(t.view_mut(), false, alpha, a.t(), d);
        if accumulate {
            c.zip_mut_with(&t.t(), |cv, &tv| *cv += tv);
        } else {
            c.assign(&t.t());
        }
    };
    rayon::join(|| half(t_top, c_left, a_left), || half(t_bottom, c_right, a_right));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::gemm_into;
    use ndarray::Array2;

    fn pool() -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap()
    }

    fn filled<T: Scalar>(m: usize, n: usize, seed: f64) -> Array2<T> {
        Array2::from_shape_fn((m, n), |(i, j)| T::of(((i * n + j) as f64 * 0.37 + seed).sin()))
    }

    fn close<T: Scalar>(a: &Array2<T>, b: &Array2<T>, tol: f64) {
        for (u, v) in a.iter().zip(b.iter()) {
            assert!((u.f64() - v.f64()).abs() <= tol * (1.0 + v.f64().abs()), "{u} vs {v}");
        }
    }

    fn check_shapes<T: Scalar>(tol: f64) {
        // Odd sizes, 1-row and 1-column products, halves of unequal length, transposed views.
        for &(m, k, n) in &[(1, 1, 1), (1, 7, 3), (3, 1, 5), (33, 17, 40), (40, 64, 1), (7, 35, 31)] {
            let a = filled::<T>(k, m, 0.1);
            let b = filled::<T>(k, n, 0.7);
            for accumulate in [false, true] {
                let mut want = filled::<T>(m, n, 1.3);
                gemm_into(want.view_mut(), accumulate, T::of(-0.3), a.t(), b.view()).unwrap();
                let mut rows = filled::<T>(m, n, 1.3);
                let mut cols = rows.clone();
                let mut transposed = rows.clone();
                let mut tmp = vec![T::zero(); m * n];
                pool().install(|| {
                    gemm_rows2(rows.view_mut(), accumulate, T::of(-0.3), a.t(), b.view(), |mut h, r| {
                        assert_eq!(h.nrows(), r.len());
                        h.mapv_inplace(|v| v * T::of(2.0));
                    });
                    gemm_cols2(cols.view_mut(), accumulate, T::of(-0.3), a.t(), b.view());
                    gemm_at_b_transposed_cols2(
                        transposed.view_mut(),
                        accumulate,
                        T::of(-0.3),
                        a.view(),
                        b.view(),
                        &mut tmp,
                    );
                });
                close(&rows, &(&want * T::of(2.0)), tol);
                close(&cols, &want, tol);
                close(&transposed, &want, tol);
            }
        }
    }

    #[test]
    fn split_products_equal_the_plain_product() {
        check_shapes::<f32>(1e-6);
        check_shapes::<f64>(1e-13);
    }

    #[test]
    fn middle_keeps_both_halves_and_whole_blocks() {
        assert_eq!(middle(1), 0);
        assert_eq!(middle(3), 1);
        assert_eq!(middle(31), 15);
        assert_eq!(middle(784), 384);
        assert_eq!(middle(1024), 512);
    }
}
