//! Large products of the passes shared between two threads as two single-thread products.
//!
//! On two cores, faer's own 2-thread GEMM loses time waiting at its thread barriers on the
//! shapes of an MLP step (~15 % of a 784-256-256-10 step at batch 1024 was barrier waiting).
//! Two products that each run on one thread, side by side ([`crate::parallel::join`]), wait
//! once, at the end: a layer's forward product in two row halves (each thread then adds the
//! bias and applies the activation to its own half), a hidden layer's weight gradient beside
//! its δ·W, the input layer's weight gradient in two column halves. Whenever the forward
//! product was split, the backward pass keeps each thread on the data it already holds: at
//! batches no larger than a layer's width, the rows of W its half of the forward product read
//! ([`by_owner`]); at larger batches, its rows of the batch ([`by_batch`]). On a VM whose two
//! vCPUs may sit on different CCDs, every matrix one thread wrote and the other reads costs a
//! slow cross-die transfer. [`crate::tensor::gemm_into`] cuts a single large product the same
//! way; this module goes further by pairing independent products and keeping the elementwise
//! work that follows on the same thread.
//!
//! Used only with exactly two rayon threads: with more, two halves would leave cores idle,
//! and `gemm_into` cuts each product into one block per thread instead.

use std::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2, Axis, Zip};

use super::rows::by_rows;

use crate::Scalar;
use crate::tensor::{GEMM_SPLIT_FLOP, gemm_into_seq};

/// Products (2·m·n·k flop; for a pair, both) from this size on are split when two threads are
/// available. Smaller ones go through [`crate::tensor::gemm_into`] one by one: measured when
/// that still meant faer's threaded mode from 10⁷ flop, halves here were 10–35 % slower at
/// batch 32 (13 Mflop input layer) and no faster at batch 128 (51 Mflop).
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

/// c ← α·dᵀa (+ c) on one thread (d: batch×m, a: batch×n). In f64 `gemm_into_seq` sums this
/// layout over blocks of batch rows (faer's f64 kernel slows down on it for long batches:
/// 784-256-256-10 at batch 1024, one thread, ∂L/∂W₂ 2.95 → 1.92 ms, half the columns of ∂L/∂W₁
/// 5.64 → 2.88 ms).
fn weight_gradient_seq<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    alpha: T,
    d: ArrayView2<'_, T>,
    a: ArrayView2<'_, T>,
) {
    seq(c, accumulate, alpha, d.t(), a);
}

/// g ← dᵀa beside c ← a₂·b₂: a weight gradient and an independent product, each on one thread.
pub(crate) fn weight_gradient_beside<T: Scalar>(
    g: ArrayViewMut2<'_, T>,
    (d, a): (ArrayView2<'_, T>, ArrayView2<'_, T>),
    c: ArrayViewMut2<'_, T>,
    (a2, b2): (ArrayView2<'_, T>, ArrayView2<'_, T>),
) {
    crate::parallel::join(
        || weight_gradient_seq(g, false, T::one(), d, a),
        || seq(c, false, T::one(), a2, b2),
    );
}

/// c ← α·dᵀa (+ c): the columns of c (and a) in two halves side by side.
pub(crate) fn weight_gradient_cols2<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    alpha: T,
    d: ArrayView2<'_, T>,
    a: ArrayView2<'_, T>,
) {
    let h = middle(c.ncols());
    let (left, right) = c.split_at(Axis(1), h);
    let (a_left, a_right) = a.split_at(Axis(1), h);
    crate::parallel::join(
        || weight_gradient_seq(left, accumulate, alpha, d, a_left),
        || weight_gradient_seq(right, accumulate, alpha, d, a_right),
    );
}

/// Whether a layer's forward product z = aWᵀ (n×o, `flop` = 2·n·o·i) runs as two halves of
/// the batch rows side by side, each followed by its bias and activation ([`gemm_rows2`]):
/// with exactly two threads, from `rows_from` flop, and only when the batch is longer than the
/// layer is wide (n > o), the cut [`crate::tensor::gemm_into`] would choose too. A short batch
/// through a wide layer is cut along W's rows instead ([`by_owner`]): cut by batch rows, each
/// thread would read, pack and update all of W. Training steps, two threads, the two rules
/// alternated (3 rounds, medians of each): 1024-4096-10 at batch 32 7.6 → 4.7 ms in f32,
/// 15.7 → 9.5 ms in f64; 3072-1024-512-10 at batch 128 13.0 → 11.0 ms; 784-2048-2048-10 with
/// Adam at batch 64 19.8 → 16.4 ms; 784-256-256-10 at batch 256 1.67 → 1.57 ms.
pub(crate) fn forward_by_batch_rows(n: usize, o: usize, flop: usize, rows_from: usize) -> bool {
    n > o && side_by_side(flop, rows_from)
}

/// Whether a layer's products follow the owners of its weight rows: with exactly two threads,
/// when its forward product z = aWᵀ (n×o, 2·n·o·i flop) is cut by [`crate::tensor::gemm_into`]
/// along z's columns (o ≥ n, at least [`GEMM_SPLIT_FLOP`]). Thread 0 (the caller) then
/// computes outputs [0, middle(o)) from rows [0, middle(o)) of W and the helper the rest, and
/// the backward pass gives each thread the same rows ([`backward_by_owner`]), so no weight row
/// moves between the threads' caches in a step. Measured on the 2-core EPYC VM, whose two
/// vCPUs are at times placed on different CCDs (a cache line's round trip between the threads
/// ~330 ns instead of ~65): there the batch-32 f32 step of 784-256-256-10 took 520–700 µs with
/// the rows of W₁ updated by the other thread half the time (one thread: ~400 µs), ~360 µs with
/// the input layer's update by owner.
pub(crate) fn by_owner(n: usize, o: usize, i: usize) -> bool {
    o >= n && 2 * n * o * i >= GEMM_SPLIT_FLOP && rayon::current_num_threads() == 2
}

/// Whether a layer's products follow the batch rows: with exactly two threads, when its
/// forward product z = aWᵀ (n×o) was cut along z's rows (n > o) — in two row halves from
/// `rows_from` flop ([`forward_by_batch_rows`]), or by [`crate::tensor::gemm_into`] from
/// [`GEMM_SPLIT_FLOP`]. Each thread then holds rows [0, middle(n)) or the rest of every
/// activation, and the backward pass keeps it so ([`backward_by_batch`]): each thread its rows
/// of δ·W and of the δ pass, and its rows' part of the weight gradient, the two parts added
/// afterwards by weight rows. Only those o×i sums change threads, not the n×width activations
/// and δs. 784-256-256-10 at batch 1024, f32, both schemes alternated in one process: on one
/// CCD the same (training step 6.93 vs 6.96 ms, forward and backward 6.50 vs 6.52), on two
/// CCDs 7.2 ms against 9.3–9.4 ms when the weight gradient and δ·W each read whole matrices.
pub(crate) fn by_batch(n: usize, o: usize, i: usize, rows_from: usize) -> bool {
    let flop = 2 * n * o * i;
    n >= 2 && n > o && flop >= rows_from.min(GEMM_SPLIT_FLOP) && rayon::current_num_threads() == 2
}

/// One thread's rows of a layer's backward pass by batch rows (see [`by_batch`]).
pub(crate) struct BatchRows<'a, T> {
    /// δ of the layer, these rows (r×o).
    pub(crate) delta: ArrayView2<'a, T>,
    /// The layer's input a, these rows (r×i): δ of the layer below is written over it.
    pub(crate) a: &'a mut [T],
    /// Scratch for δ·W, these rows (r×i).
    pub(crate) s: &'a mut [T],
    /// This thread's part of the weight gradient, δᵀa over these rows (o×i).
    pub(crate) g: ArrayViewMut2<'a, T>,
    /// Column sums of the new δ over these rows: the bias gradient of the layer below.
    pub(crate) gb: Option<&'a mut [T]>,
}

/// A hidden layer's backward pass by batch rows: on each thread its part of the weight
/// gradient, its rows of δ·W, then `pass(a, s, gb)` (δ of the layer below over `a`). The
/// weights `w` are only read.
pub(crate) fn backward_by_batch<T: Scalar>(
    w: ArrayView2<'_, T>,
    halves: (BatchRows<'_, T>, BatchRows<'_, T>),
    pass: impl Fn(&mut [T], &[T], Option<&mut [T]>) + Sync,
) {
    let half = |h: BatchRows<'_, T>| {
        let rows = h.delta.nrows();
        let i = w.ncols();
        let a = ArrayView2::from_shape((rows, i), &*h.a);
        let s = ArrayViewMut2::from_shape((rows, i), &mut *h.s);
        let (Ok(a), Ok(s)) = (a, s) else { unreachable!("r·i slices of r×i blocks") };
        weight_gradient_seq(h.g, false, T::one(), h.delta, a);
        seq(s, false, T::one(), h.delta, w);
        pass(h.a, h.s, h.gb);
    };
    let (first, second) = halves;
    crate::parallel::join(|| half(first), || half(second));
}

/// The input layer's weight gradient by batch rows: each thread's rows' part, `g0` and `g1`.
pub(crate) fn input_gradient_by_batch<T: Scalar>(
    delta: ArrayView2<'_, T>,
    x: ArrayView2<'_, T>,
    g0: ArrayViewMut2<'_, T>,
    g1: ArrayViewMut2<'_, T>,
) {
    let h = middle(delta.nrows());
    let ((d0, d1), (x0, x1)) = (delta.split_at(Axis(0), h), x.split_at(Axis(0), h));
    crate::parallel::join(
        || weight_gradient_seq(g0, false, T::one(), d0, x0),
        || weight_gradient_seq(g1, false, T::one(), d1, x1),
    );
}

/// g ← g + p (`update` None), or w ← w − lr·(g + p): the two threads' parts of a weight gradient
/// added, by weight rows as in [`by_owner`] ([`by_rows`]: two halves side by side when large).
pub(crate) fn add_parts<T: Scalar>(
    g: ArrayViewMut2<'_, T>,
    p: ArrayView2<'_, T>,
    update: Option<(ArrayViewMut2<'_, T>, T)>,
) {
    let (o, i) = g.dim();
    match update {
        None => by_rows((g, p), o, i, |(g, p)| Zip::from(g).and(p).for_each(|g, &p| *g += p)),
        Some((w, lr)) => by_rows((w, g, p), o, i, |(w, g, p)| {
            Zip::from(w).and(g).and(p).for_each(|w, g, &p| *w -= lr * (*g + p))
        }),
    }
}

/// What the backward pass does with a layer's weight gradient δᵀa.
pub(crate) enum WeightStep<'a, T> {
    /// G ← δᵀa, the weights W only read.
    Gradient { w: ArrayView2<'a, T>, g: ArrayViewMut2<'a, T> },
    /// W ← W − lr·δᵀa (SGD fused into the backward pass).
    Update { w: ArrayViewMut2<'a, T>, lr: T },
}

/// A layer's backward products by the owners of W's rows (see [`by_owner`]): thread t, for
/// its rows R_t, computes its part of δ·W, sₜ = δ[:, R_t]·W[R_t, :] (n×i; the caller adds
/// s₀ + s₁), then the rows R_t of the weight gradient or update — after sₜ has read the old
/// rows, which no other thread reads. `s` = None: no δ·W (the input layer).
pub(crate) fn backward_by_owner<T: Scalar>(
    delta: ArrayView2<'_, T>,
    a: ArrayView2<'_, T>,
    step: WeightStep<'_, T>,
    s: Option<(ArrayViewMut2<'_, T>, ArrayViewMut2<'_, T>)>,
) {
    let o = delta.ncols();
    let h = middle(o);
    let (d0, d1) = delta.split_at(Axis(1), h);
    let (s0, s1) = match s {
        Some((s0, s1)) => (Some(s0), Some(s1)),
        None => (None, None),
    };
    let half = |d: ArrayView2<'_, T>, step: WeightStep<'_, T>, s: Option<ArrayViewMut2<'_, T>>| match step {
        WeightStep::Gradient { w, g } => {
            if let Some(s) = s {
                seq(s, false, T::one(), d, w);
            }
            weight_gradient_seq(g, false, T::one(), d, a);
        }
        WeightStep::Update { w, lr } => {
            if let Some(s) = s {
                seq(s, false, T::one(), d, w.view());
            }
            weight_gradient_seq(w, true, -lr, d, a);
        }
    };
    let (first, second) = match step {
        WeightStep::Gradient { w, g } => {
            let (w0, w1) = w.split_at(Axis(0), h);
            let (g0, g1) = g.split_at(Axis(0), h);
            (WeightStep::Gradient { w: w0, g: g0 }, WeightStep::Gradient { w: w1, g: g1 })
        }
        WeightStep::Update { w, lr } => {
            let (w0, w1) = w.split_at(Axis(0), h);
            (WeightStep::Update { w: w0, lr }, WeightStep::Update { w: w1, lr })
        }
    };
    crate::parallel::join(|| half(d0, first, s0), || half(d1, second, s1));
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
    crate::parallel::join(
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
        // Odd sizes, 1-row and 1-column products, halves of unequal length, batches longer
        // than one gradient chunk, transposed views.
        for &(m, k, n) in
            &[(1, 1, 1), (1, 7, 3), (3, 1, 5), (33, 17, 40), (40, 64, 1), (7, 300, 31), (5, 0, 4)]
        {
            let d = filled::<T>(k, m, 0.1);
            let a = filled::<T>(k, n, 0.7);
            let x = filled::<T>(m, k, 0.4);
            for accumulate in [false, true] {
                let mut want = filled::<T>(m, n, 1.3);
                gemm_into(want.view_mut(), accumulate, T::of(-0.3), d.t(), a.view()).unwrap();
                let mut want_x = filled::<T>(m, n, 1.3);
                gemm_into(want_x.view_mut(), accumulate, T::of(-0.3), x.view(), a.view()).unwrap();
                let mut rows = filled::<T>(m, n, 1.3);
                let mut cols = rows.clone();
                let mut pair = (filled::<T>(m, n, 2.0), filled::<T>(m, n, 2.0));
                pool().install(|| {
                    gemm_rows2(rows.view_mut(), accumulate, T::of(-0.3), x.view(), a.view(), |mut h, r| {
                        assert_eq!(h.nrows(), r.len());
                        h.mapv_inplace(|v| v * T::of(2.0));
                    });
                    weight_gradient_cols2(cols.view_mut(), accumulate, T::of(-0.3), d.view(), a.view());
                    weight_gradient_beside(
                        pair.0.view_mut(),
                        (d.view(), a.view()),
                        pair.1.view_mut(),
                        (x.view(), a.view()),
                    );
                });
                close(&rows, &(&want_x * T::of(2.0)), tol);
                close(&cols, &want, tol);
                close(&pair.0, &d.t().dot(&a), tol);
                close(&pair.1, &x.dot(&a), tol);
            }
        }
    }

    #[test]
    fn split_products_equal_the_plain_product() {
        check_shapes::<f32>(1e-6);
        check_shapes::<f64>(1e-13);
    }

    #[test]
    fn a_layer_is_cut_along_the_longer_side_of_its_output() {
        pool().install(|| {
            let flop = |n: usize, o: usize, i: usize| 2 * n * o * i;
            // A short batch through a wide layer, however large: by W's rows.
            let (n, o, i) = (32, 4096, 1024);
            assert!(by_owner(n, o, i));
            assert!(!by_batch(n, o, i, SPLIT_FLOP));
            assert!(!forward_by_batch_rows(n, o, flop(n, o, i), SPLIT_FLOP));
            // A long batch through a narrow layer: by batch rows, in halves from SPLIT_FLOP.
            let (n, o, i) = (1024, 256, 784);
            assert!(!by_owner(n, o, i));
            assert!(by_batch(n, o, i, SPLIT_FLOP));
            assert!(forward_by_batch_rows(n, o, flop(n, o, i), SPLIT_FLOP));
            // Below GEMM_SPLIT_FLOP nothing is split; a square output goes by W's rows, as
            // gemm_into cuts it along the columns.
            assert!(!by_owner(8, 8, 8) && !by_batch(8, 4, 8, SPLIT_FLOP));
            assert!(by_owner(256, 256, 784) && !by_batch(256, 256, 784, SPLIT_FLOP));
        });
        // One thread: nothing is split.
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        one.install(|| assert!(!by_owner(32, 4096, 1024) && !by_batch(1024, 256, 784, SPLIT_FLOP)));
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
