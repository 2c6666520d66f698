//! Householder tridiagonalisation QᵀAQ = T of a symmetric matrix, blocked as LAPACK's
//! `dsytrd`/`dlatrd`: the first step of [`super::eigh`].
//!
//! Column c's reflector H_c = I − τ_c·v_c·v_cᵀ (v_c zero above row c+1, v_c[c+1] = 1) zeroes
//! A[c+2.., c]; Q = H₀H₁⋯H_{n−2}. Applied on both sides it is a rank-2 update,
//! H·A·H = A − v·wᵀ − w·vᵀ with w = τ·A·v − ½τ²(vᵀA·v)·v.
//!
//! Why blocked: the unblocked reduction (faer's) reads *and writes* the whole trailing triangle
//! for every column, ~n³/3 element updates that stream from L3 at n = 2000 (2 MiB of L2 per
//! core here). Blocked, the columns of a panel of [`PANEL`] only *read* the trailing triangle
//! (w needs A·v: one symmetric product per column, corrected by the panel's earlier V, W), and
//! the panel's updates are applied at its end as one rank-2·[`PANEL`] product,
//! A ← A − V·Wᵀ − W·Vᵀ, at GEMM speed. Half the flops become BLAS-3 and the memory traffic of
//! the other half halves.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, ShapeBuilder};
use rayon::prelude::*;

use crate::tensor::gemm_into_seq;

/// Columns per panel (LAPACK's default block size for `dsytrd`).
pub(crate) const PANEL: usize = 32;

/// Width of the column blocks the trailing update is cut into: wide enough for GEMM speed,
/// narrow enough that the diagonal blocks' wasted upper halves stay small.
const UPDATE_BLOCK: usize = 128;

/// Trailing sizes from which the symmetric product runs on several threads: below it the
/// product (m²/2 multiply-adds) is shorter than waking a second thread.
const PARALLEL_MIN: usize = 256;

/// The tridiagonal T and the reflectors of Q, as left in the working matrix.
pub(crate) struct Tridiagonal {
    /// T's diagonal (n).
    pub diag: Vec<f64>,
    /// T's subdiagonal (n − 1): sub[c] = T[c+1, c].
    pub sub: Vec<f64>,
    /// τ_c of H_c = I − τ_c·v_c·v_cᵀ (0 for the identity).
    pub tau: Vec<f64>,
}

/// Reduces the symmetric matrix held in the lower triangle of `a` (column-major n×n; the
/// strict upper triangle is scratch) to tridiagonal form. On return, column c of `a` holds
/// v_c's entries below row c+1 (v_c[c+1] = 1 is implicit), as LAPACK and faer store them.
pub(crate) fn tridiagonalize(a: &mut [f64], n: usize) -> Tridiagonal {
    let threads = rayon::current_num_threads();
    if n < PARALLEL_MIN || threads == 1 {
        return tridiagonalize_with(a, n, PANEL, 1);
    }
    // On a pool thread, the part of each symmetric product that the calling thread takes is
    // always the same columns, which then stay in its L2 from one column to the next.
    rayon::scope(|_| tridiagonalize_with(a, n, PANEL, threads))
}

fn tridiagonalize_with(a: &mut [f64], n: usize, panel: usize, threads: usize) -> Tridiagonal {
    assert_eq!(a.len(), n * n, "a must be n×n");
    let mut t = Tridiagonal {
        diag: vec![0.0; n],
        sub: vec![0.0; n.saturating_sub(1)],
        tau: vec![0.0; n.saturating_sub(1)],
    };
    if n == 0 {
        return t;
    }
    // W, column-major n × panel: column i is w of the panel's i-th reflector (rows below it).
    let mut w = vec![0.0; n * panel];
    let mut y = vec![0.0; n];
    let mut partial = vec![0.0; n * threads.max(1)];
    // [V W] and [W V] of the panel's trailing update.
    let mut update_scratch = vec![0.0; 4 * n * panel];
    let mut k0 = 0;
    while k0 + 1 < n {
        let kb = panel.min(n - 1 - k0);
        for i in 0..kb {
            let c = k0 + i;
            let (done, rest) = a.split_at_mut(c * n);
            let (col, trailing) = rest.split_at_mut(n);
            let mut reflect = || {
                // Bring column c up to date with the panel's earlier reflectors.
                if i > 0 {
                    update_column(&mut col[c..], &done[k0 * n..], &w, c, i, n);
                }
                // The reflector zeroing A[c+2.., c]: faer's τ_f is 1/τ (∞ for the identity).
                let diag = col[c];
                let (head, tail) = col[c + 1..].split_first_mut().expect("c + 1 < n");
                let info = faer::linalg::householder::make_householder_in_place(
                    head,
                    faer::ColMut::from_slice_mut(tail),
                );
                let sub = std::mem::replace(head, 1.0);
                (diag, sub, if info.tau.is_finite() { info.tau.recip() } else { 0.0 })
            };
            let (diag, sub, tau) =
                if threads > 1 && n - c > PARALLEL_MIN { keep_awake(reflect) } else { reflect() };
            t.diag[c] = diag;
            t.sub[c] = sub;
            t.tau[c] = tau;
            // y = (A − V·Wᵀ − W·Vᵀ)·v: A[c+1.., c+1..] as it was at the panel's start, corrected
            // by the panel's i earlier reflectors V and their W.
            let s = c + 1;
            let m = n - s;
            let v = &col[s..];
            let panel = Panel { v: &done[k0 * n..], w: &w, count: i };
            symmetric_product(trailing, n, s, v, &mut y[..m], &mut partial, &panel);
            // w = τ·y − ½τ²(yᵀv)·v.
            let alpha = -0.5 * tau * tau * ArrayView1::from(&y[..m]).dot(&ArrayView1::from(v));
            for ((w, &y), &v) in w[i * n + s..(i + 1) * n].iter_mut().zip(&y[..m]).zip(v) {
                *w = tau * y + alpha * v;
            }
        }
        let end = k0 + kb;
        rank_2k_update(a, n, k0, end, &w, &mut update_scratch, threads);
        for c in k0..end {
            a[c * n + c + 1] = t.sub[c];
        }
        k0 = end;
    }
    t.diag[n - 1] = a[n * n - 1];
    t
}

/// Runs `work` on the calling thread while an idle pool thread spins until it is done. Rayon
/// puts an idle thread to sleep after ~30 µs; the serial work between two split products
/// (a column update and a reflector) often takes longer, and waking the sleeper (a futex) for
/// every column's product cost time on both threads.
fn keep_awake<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Sets the flag even if `work` panics, so that the spinner (which join waits for) stops.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let done = AtomicBool::new(false);
    let (r, ()) = rayon::join(
        || {
            let _done = Done(&done);
            work()
        },
        || {
            while !done.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        },
    );
    r
}

/// The rows r0.. of the first i columns of a column-major panel (stride n), as a faer view.
fn panel_rows(panel: &[f64], r0: usize, i: usize, n: usize) -> faer::MatRef<'_, f64> {
    faer::MatRef::from_column_major_slice_with_stride(&panel[r0..], n - r0, i, n)
}

/// Brings column c up to date with the panel's first i reflectors V and their W:
/// A[c.., c] −= V[c.., :i]·W[c, :i]ᵀ + W[c.., :i]·V[c, :i]ᵀ (`col` is A[c.., c]).
fn update_column(col: &mut [f64], v: &[f64], w: &[f64], c: usize, i: usize, n: usize) {
    use faer::linalg::matmul::matmul;
    let (v, w) = (panel_rows(v, c, i, n), panel_rows(w, c, i, n));
    let mut col = faer::ColMut::from_slice_mut(col);
    let (wc, vc) = (w.row(0).transpose().as_mat(), v.row(0).transpose().as_mat());
    matmul(
        faer::reborrow::ReborrowMut::rb_mut(&mut col).as_mat_mut(),
        faer::Accum::Add,
        v,
        wc,
        -1.0,
        faer::Par::Seq,
    );
    matmul(col.as_mat_mut(), faer::Accum::Add, w, vc, -1.0, faer::Par::Seq);
}

/// The current panel's first `count` reflectors V (columns of the working matrix) and their
/// w's W, both column-major with stride n.
#[derive(Clone, Copy)]
struct Panel<'a> {
    v: &'a [f64],
    w: &'a [f64],
    count: usize,
}

impl Panel<'_> {
    /// y −= Σⱼ V_j·(W_jᵀx) + W_j·(V_jᵀx) over the rows s.. and the panel columns j = part,
    /// part + parts, …: each part of a split product takes its share of the corrections, each
    /// column's two dot products and its update in one place.
    fn correct(&self, n: usize, s: usize, x: &[f64], y: &mut [f64], part: usize, parts: usize) {
        for j in (part..self.count).step_by(parts) {
            let (vj, wj) = (&self.v[j * n + s..(j + 1) * n], &self.w[j * n + s..(j + 1) * n]);
            pulp::Arch::new().dispatch(Correction { vj, wj, x, y: &mut *y });
        }
    }
}

/// y −= v·(wᵀx) + w·(vᵀx) for one panel column, in explicit SIMD.
struct Correction<'a> {
    vj: &'a [f64],
    wj: &'a [f64],
    x: &'a [f64],
    y: &'a mut [f64],
}

impl pulp::WithSimd for Correction<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self { vj, wj, x, y } = self;
        let (v, vr) = S::as_simd_f64s(vj);
        let (w, wr) = S::as_simd_f64s(wj);
        let (xs, xr) = S::as_simd_f64s(x);
        let (mut av, mut aw) = (simd.splat_f64s(0.0), simd.splat_f64s(0.0));
        for ((v, w), x) in v.iter().zip(w).zip(xs) {
            av = simd.mul_add_f64s(*v, *x, av);
            aw = simd.mul_add_f64s(*w, *x, aw);
        }
        let (mut dv, mut dw) = (simd.reduce_sum_f64s(av), simd.reduce_sum_f64s(aw));
        for ((v, w), x) in vr.iter().zip(wr).zip(xr) {
            dv += v * x;
            dw += w * x;
        }
        let (bv, bw) = (simd.splat_f64s(-dw), simd.splat_f64s(-dv));
        let (ys, yr) = S::as_mut_simd_f64s(y);
        for ((y, v), w) in ys.iter_mut().zip(v).zip(w) {
            *y = simd.mul_add_f64s(*w, bw, simd.mul_add_f64s(*v, bv, *y));
        }
        for ((y, v), w) in yr.iter_mut().zip(vr).zip(wr) {
            *y -= v * dw + w * dv;
        }
    }
}

/// y = (A_s − V·Wᵀ − W·Vᵀ)·v for the trailing symmetric m×m block A_s = A[s.., s..]
/// (m = n − s), whose columns start `cols` (column-major, stride n), and the `panel`'s V, W.
/// A_s is read once, only its lower triangle: column j adds A[j.., j]·v[j] to y[j..] and
/// A[j+1.., j]·v[j+1..] to y[j].
///
/// `partial` holds one partial y (n long) per thread. On several threads each takes a range of
/// columns holding an equal share of the triangle's entries, and every parts-th panel column
/// of the corrections; the partials are summed in a fixed order.
fn symmetric_product(
    cols: &[f64],
    n: usize,
    s: usize,
    v: &[f64],
    y: &mut [f64],
    partial: &mut [f64],
    panel: &Panel<'_>,
) {
    let m = n - s;
    let threads = partial.len() / n;
    let parts = if m >= PARALLEL_MIN { threads.max(1) } else { 1 };
    if parts == 1 {
        y.fill(0.0);
        lower_columns(cols, n, s, 0..m, v, y);
        panel.correct(n, s, v, y, 0, 1);
        return;
    }
    // Columns [0, p) of an m×m triangle hold m·p − p²/2 entries: part k starts where a share
    // k/parts of them lies to its left, p = m·(1 − √(1 − k/parts)).
    let start = |k: usize| -> usize {
        if k >= parts { m } else { (m as f64 * (1.0 - (1.0 - k as f64 / parts as f64).sqrt())) as usize }
    };
    let part = |k: usize, acc: &mut [f64]| {
        acc[..m].fill(0.0);
        lower_columns(cols, n, s, start(k)..start(k + 1), v, &mut acc[..m]);
        panel.correct(n, s, v, &mut acc[..m], k, parts);
    };
    if parts == 2 {
        let (p0, p1) = partial[..2 * n].split_at_mut(n);
        rayon::join(|| part(0, p0), || part(1, p1));
    } else {
        partial[..parts * n].par_chunks_mut(n).enumerate().for_each(|(k, acc)| part(k, acc));
    }
    y.copy_from_slice(&partial[..m]);
    for k in 1..parts {
        for (y, &p) in y.iter_mut().zip(&partial[k * n..k * n + m]) {
            *y += p;
        }
    }
}

fn lower_columns(cols: &[f64], n: usize, s: usize, range: std::ops::Range<usize>, v: &[f64], y: &mut [f64]) {
    let reverse = s % 2 == 1;
    pulp::Arch::new().dispatch(LowerColumns { cols, n, s, range, reverse, v, y });
}

/// The columns `range` of the trailing triangle (see [`symmetric_product`]), in explicit SIMD
/// (pulp dispatches to the widest the CPU has): left to the compiler, the four-column sweep
/// was vectorised across the columns, with a shuffle per multiply-add.
struct LowerColumns<'a> {
    cols: &'a [f64],
    n: usize,
    s: usize,
    range: std::ops::Range<usize>,
    reverse: bool,
    v: &'a [f64],
    y: &'a mut [f64],
}

impl pulp::WithSimd for LowerColumns<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self { cols, n, s, range, reverse, v, y } = self;
        let col = |j: usize, from: usize| &cols[j * n + s + from..(j + 1) * n];
        // Four columns at a time: four streams from memory in flight, and y read and written
        // once per four columns.
        let groups = range.len() / 4;
        let rest = range.start + 4 * groups;
        // Every other product sweeps the groups right to left, so it starts on the columns the
        // previous one read last, still in L2.
        for g in 0..groups {
            let j = range.start + 4 * if reverse { groups - 1 - g } else { g };
            let c = [col(j, j), col(j + 1, j), col(j + 2, j), col(j + 3, j)];
            // Their 4×4 diagonal block (column q has entries from row j+q) entry by entry.
            let mut dots = [0.0f64; 4];
            for (q, c) in c.iter().enumerate() {
                dots[q] += c[q] * v[j + q];
                for r in q + 1..4 {
                    dots[q] += c[r] * v[j + r];
                    y[j + r] += c[r] * v[j + q];
                }
            }
            // The rows below it in one sweep.
            let (a0, r0) = S::as_simd_f64s(&c[0][4..]);
            let (a1, r1) = S::as_simd_f64s(&c[1][4..]);
            let (a2, r2) = S::as_simd_f64s(&c[2][4..]);
            let (a3, r3) = S::as_simd_f64s(&c[3][4..]);
            let (x, rx) = S::as_simd_f64s(&v[j + 4..]);
            let (yv, ry) = S::as_mut_simd_f64s(&mut y[j + 4..]);
            let w = [v[j], v[j + 1], v[j + 2], v[j + 3]];
            let b = w.map(|w| simd.splat_f64s(w));
            let mut acc = [simd.splat_f64s(0.0); 4];
            for (((((a0, a1), a2), a3), x), y) in a0.iter().zip(a1).zip(a2).zip(a3).zip(x).zip(yv) {
                acc[0] = simd.mul_add_f64s(*a0, *x, acc[0]);
                acc[1] = simd.mul_add_f64s(*a1, *x, acc[1]);
                acc[2] = simd.mul_add_f64s(*a2, *x, acc[2]);
                acc[3] = simd.mul_add_f64s(*a3, *x, acc[3]);
                let t = simd.mul_add_f64s(*a1, b[1], simd.mul_add_f64s(*a0, b[0], *y));
                *y = simd.mul_add_f64s(*a3, b[3], simd.mul_add_f64s(*a2, b[2], t));
            }
            for (r, y) in ry.iter_mut().enumerate() {
                let x = rx[r];
                dots[0] += r0[r] * x;
                dots[1] += r1[r] * x;
                dots[2] += r2[r] * x;
                dots[3] += r3[r] * x;
                *y += r0[r] * w[0] + r1[r] * w[1] + r2[r] * w[2] + r3[r] * w[3];
            }
            for q in 0..4 {
                y[j + q] += dots[q] + simd.reduce_sum_f64s(acc[q]);
            }
        }
        for j in rest..range.end {
            let c = col(j, j);
            let (a, ra) = S::as_simd_f64s(&c[1..]);
            let (x, rx) = S::as_simd_f64s(&v[j + 1..]);
            let (yv, ry) = S::as_mut_simd_f64s(&mut y[j + 1..]);
            let bj = simd.splat_f64s(v[j]);
            let mut acc = simd.splat_f64s(0.0);
            for ((a, x), y) in a.iter().zip(x).zip(yv) {
                acc = simd.mul_add_f64s(*a, *x, acc);
                *y = simd.mul_add_f64s(*a, bj, *y);
            }
            let mut dot = c[0] * v[j];
            for (r, y) in ry.iter_mut().enumerate() {
                dot += ra[r] * rx[r];
                *y += ra[r] * v[j];
            }
            y[j] += dot + simd.reduce_sum_f64s(acc);
        }
    }
}

/// A[end.., end..] −= V·Wᵀ + W·Vᵀ on its lower triangle (column blocks of [`UPDATE_BLOCK`],
/// each one product [V W]·[W V]ᵀ), where V = A[end.., k0..end] holds the panel's reflectors
/// (v_c[c+1] = 1 set) and W the panel's w's.
fn rank_2k_update(
    a: &mut [f64],
    n: usize,
    k0: usize,
    end: usize,
    w: &[f64],
    scratch: &mut [f64],
    threads: usize,
) {
    let (kb, m) = (end - k0, n - end);
    if m == 0 {
        return;
    }
    // x = [V W], y = [W V], both m × 2kb column-major.
    let (x, yt) = scratch[..4 * m * kb].split_at_mut(2 * m * kb);
    for j in 0..kb {
        let v = &a[(k0 + j) * n + end..(k0 + j + 1) * n];
        let wj = &w[j * n + end..(j + 1) * n];
        x[j * m..(j + 1) * m].copy_from_slice(v);
        x[(kb + j) * m..(kb + j + 1) * m].copy_from_slice(wj);
        yt[j * m..(j + 1) * m].copy_from_slice(wj);
        yt[(kb + j) * m..(kb + j + 1) * m].copy_from_slice(v);
    }
    let x = ArrayView2::from_shape((m, 2 * kb).f(), &*x).expect("m × 2kb");
    let yt = ArrayView2::from_shape((m, 2 * kb).f(), &*yt).expect("m × 2kb");
    let blocks: Vec<usize> = (0..m).step_by(UPDATE_BLOCK).collect();
    // Each block column j0.. is disjoint: hand them out as separate mutable slices of `a`.
    let trailing = &mut a[end * n..];
    let mut columns: Vec<(usize, &mut [f64])> = Vec::with_capacity(blocks.len());
    let mut rest = trailing;
    for &j0 in &blocks {
        let width = UPDATE_BLOCK.min(m - j0);
        let (this, next) = rest.split_at_mut(width * n);
        columns.push((j0, this));
        rest = next;
    }
    let update = |(j0, cols): &mut (usize, &mut [f64])| {
        let j0 = *j0;
        let width = UPDATE_BLOCK.min(m - j0);
        let rows = m - j0;
        let c = ArrayViewMut2::from_shape((rows, width).strides((1, n)), &mut cols[end + j0..])
            .expect("block inside the matrix");
        gemm_into_seq(
            c,
            true,
            -1.0,
            x.slice(ndarray::s![j0.., ..]),
            yt.slice(ndarray::s![j0..j0 + width, ..]).t(),
        )
        .expect("shapes agree");
    };
    if threads > 1 && m >= PARALLEL_MIN {
        // Blocks get cheaper to the right; rayon's splitting balances them.
        columns.par_iter_mut().with_max_len(1).for_each(update);
    } else {
        columns.iter_mut().for_each(update);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn random_symmetric(n: usize, seed: u64) -> Array2<f64> {
        let mut s = seed;
        let b = Array2::from_shape_simple_fn((n, n), || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        });
        &b + &b.t()
    }

    /// Q·T·Qᵀ from the reflectors, applied one by one (the obviously-correct reference).
    fn reconstruct(a: &[f64], n: usize, t: &Tridiagonal) -> Array2<f64> {
        let mut m = Array2::<f64>::zeros((n, n));
        for i in 0..n {
            m[[i, i]] = t.diag[i];
            if i + 1 < n {
                m[[i + 1, i]] = t.sub[i];
                m[[i, i + 1]] = t.sub[i];
            }
        }
        // M ← H_c·M·H_c for c = n−2 down to 0.
        for c in (0..n.saturating_sub(1)).rev() {
            let mut v = ndarray::Array1::<f64>::zeros(n);
            v[c + 1] = 1.0;
            for r in c + 2..n {
                v[r] = a[c * n + r];
            }
            let tau = t.tau[c];
            let mv = m.dot(&v);
            let vm = v.dot(&m);
            let vmv = v.dot(&mv);
            for i in 0..n {
                for j in 0..n {
                    m[[i, j]] += -tau * v[i] * vm[j] - tau * mv[i] * v[j] + tau * tau * vmv * v[i] * v[j];
                }
            }
        }
        m
    }

    fn check(h: &Array2<f64>, panel: usize, threads: usize) {
        let n = h.nrows();
        // Column-major lower triangle, junk above it.
        let mut a = vec![7.5; n * n];
        for j in 0..n {
            for i in j..n {
                a[j * n + i] = h[[i, j]];
            }
        }
        let t = tridiagonalize_with(&mut a, n, panel, threads);
        let back = reconstruct(&a, n, &t);
        let err = (&back - h).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(err < 1e-12 * (n as f64).max(1.0), "n = {n}, panel {panel}, threads {threads}: error {err}");
    }

    #[test]
    fn q_t_qt_reconstructs_the_matrix_across_panels_and_threads() {
        for n in [0, 1, 2, 3, 5, 8, 9, 17, 40] {
            let h = random_symmetric(n, n as u64 + 1);
            for (panel, threads) in [(1, 1), (2, 1), (4, 2), (8, 3), (32, 1)] {
                check(&h, panel, threads);
            }
        }
    }

    #[test]
    fn large_trailing_products_split_over_threads_match() {
        // Above PARALLEL_MIN the symmetric product and the update run in parts.
        let n = PARALLEL_MIN + 45;
        let h = random_symmetric(n, 3);
        let mut a1 = vec![0.0; n * n];
        for j in 0..n {
            for i in j..n {
                a1[j * n + i] = h[[i, j]];
            }
        }
        let t1 = tridiagonalize_with(&mut a1.clone(), n, PANEL, 1);
        let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(a, b)| (a - b).abs() < 1e-10);
        for threads in [2, 3] {
            let t = tridiagonalize_with(&mut a1.clone(), n, PANEL, threads);
            assert!(
                close(&t1.diag, &t.diag) && close(&t1.sub, &t.sub) && close(&t1.tau, &t.tau),
                "{threads} threads"
            );
            check(&h, PANEL, threads);
        }
    }

    #[test]
    fn zero_columns_give_identity_reflectors() {
        // Diagonal and block-diagonal matrices: nothing to zero in most columns (τ = 0).
        let n = 12;
        let mut h = Array2::<f64>::zeros((n, n));
        for i in 0..n {
            h[[i, i]] = i as f64 - 3.0;
        }
        check(&h, 4, 1);
        h[[5, 2]] = 0.5;
        h[[2, 5]] = 0.5;
        h[[11, 10]] = -1.0;
        h[[10, 11]] = -1.0;
        check(&h, 4, 2);
        check(&Array2::zeros((n, n)), 4, 1);
    }
}
