//! Preallocated buffers for forward and backward passes.
//!
//! A training step must not allocate: a [`Workspace`] holds, for a batch of up to `capacity`
//! rows, every layer's activations (n×width, row-major), the output layer's logits, the output
//! δ and two scratch matrices for δ·W (one per thread when a layer is split by its weight
//! rows). Smaller batches use the leading rows. The backward pass
//! overwrites each hidden layer's activations with that layer's δ once they are no longer
//! needed, so the whole pass touches one buffer per layer.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::mlp::Mlp;
use crate::Scalar;
use crate::tensor::GEMM_SPLIT_FLOP;

/// Reusable buffers for [`Mlp`] passes on batches of up to [`Workspace::capacity`] rows.
#[derive(Clone, Debug, Default)]
pub struct Workspace<T> {
    pub(crate) capacity: usize,
    /// Widths `[inputs, hidden…, outputs]` the buffers were sized for.
    pub(crate) sizes: Vec<usize>,
    /// Per layer, its output a = f(z) (n×out); hidden ones become δ in the backward pass.
    pub(crate) acts: Vec<Vec<T>>,
    /// The output layer's pre-activations z (n×outputs).
    pub(crate) logits: Vec<T>,
    /// The output layer's δ = ∂L/∂z (n×outputs).
    pub(crate) delta_out: Vec<T>,
    /// δ·W for the layer below (n×max hidden width).
    pub(crate) scratch: Vec<T>,
    /// The helper thread's part of δ·W when a layer's rows are split by owner (n ≤ the
    /// layer's outputs: min(capacity, widest layer)×max hidden width).
    pub(crate) scratch2: Vec<T>,
    /// Rows of the last forward pass.
    pub(crate) rows: usize,
    /// The helper thread's part of a weight gradient when a layer is split by batch rows
    /// (sized on first use: the largest such layer's weights).
    pub(crate) grad_part: Vec<T>,
    /// Bias-gradient sums of the second half of a δ pass split in two (sized on first use).
    pub(crate) bias_part: Vec<T>,
    /// Products from this many flop on run as two halves side by side (tests lower it).
    pub(crate) split_from: SplitFrom,
}

/// The largest workspace (bytes of buffers) a thread keeps between calls of the convenience
/// methods; a bigger one (e.g. for a prediction on a whole data set) is freed after its call.
const CACHE_LIMIT: usize = 64 << 20;

/// Runs `f` on this thread's cached workspace for `T`, grown to fit `mlp` and `rows`.
///
/// The convenience methods ([`Mlp::loss`], [`Mlp::loss_and_grad`], [`Mlp::predict`]) take their
/// buffers here instead of allocating a workspace per call: megabytes freed and allocated again
/// come back from the kernel as fresh pages each time (784-256-256-10 f32, batch 128: 1.8 ms per
/// `loss_and_grad` instead of 0.85, page faults and zeroing; batch 1024: 9.2 ms instead of 6.5).
pub(crate) fn cached<T: Scalar, R>(mlp: &Mlp<T>, rows: usize, f: impl FnOnce(&mut Workspace<T>) -> R) -> R {
    let mut ws = crate::thread_cache::take::<Workspace<T>>().unwrap_or_default();
    ws.reserve(mlp, rows);
    let out = f(&mut ws);
    if ws.bytes() <= CACHE_LIMIT {
        crate::thread_cache::keep(ws);
    }
    out
}

/// The smallest product, in flop, that [`Workspace`] passes split between two threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SplitFrom(pub(crate) usize);

impl Default for SplitFrom {
    fn default() -> Self {
        SplitFrom(super::split::SPLIT_FLOP)
    }
}

impl SplitFrom {
    /// The smallest pair of independent products (flop of both) run side by side: also every
    /// pair whose products [`crate::tensor::gemm_into`] would each split, since one join then
    /// replaces two (784-256-256-10 at batches 32 and 128: the hidden layer's weight gradient
    /// and δ·W).
    pub(crate) fn pairs(self) -> usize {
        self.0.min(2 * GEMM_SPLIT_FLOP)
    }
}

impl<T: Scalar> Workspace<T> {
    /// Buffers for `mlp` and batches of up to `capacity` rows.
    pub fn new(mlp: &Mlp<T>, capacity: usize) -> Self {
        let mut ws = Workspace::default();
        ws.reserve(mlp, capacity);
        ws
    }

    /// Bytes held by the buffers.
    fn bytes(&self) -> usize {
        let vecs = self.acts.iter().chain([&self.logits, &self.delta_out, &self.scratch, &self.scratch2]);
        let len: usize = vecs.chain([&self.grad_part, &self.bias_part]).map(Vec::capacity).sum();
        len * std::mem::size_of::<T>()
    }

    /// The largest batch the buffers hold without growing.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Makes room for `rows` rows of `mlp`'s widths; allocates only if the widths changed or
    /// `rows` exceeds the capacity.
    pub fn reserve(&mut self, mlp: &Mlp<T>, rows: usize) {
        // Compared in place: this runs on every step, which must not allocate.
        let same = self.sizes.len() == mlp.layers.len() + 1
            && self.sizes.first() == Some(&mlp.inputs())
            && mlp.layers.iter().zip(&self.sizes[1..]).all(|(l, &w)| l.outputs() == w);
        if same && rows <= self.capacity {
            return;
        }
        let sizes = mlp.sizes();
        let cap = rows.max(if same { self.capacity } else { 0 });
        let outs = *sizes.last().unwrap_or(&0);
        let hidden_max = sizes[1..sizes.len().saturating_sub(1).max(1)].iter().copied().max().unwrap_or(0);
        self.acts = sizes[1..].iter().map(|&w| vec![T::zero(); cap * w]).collect();
        self.logits = vec![T::zero(); cap * outs];
        self.delta_out = vec![T::zero(); cap * outs];
        self.scratch = vec![T::zero(); cap * hidden_max];
        // Split by owner only when a layer has at least as many outputs as the batch rows.
        let widest = sizes[1..].iter().copied().max().unwrap_or(0);
        self.scratch2 = vec![T::zero(); cap.min(widest) * hidden_max];
        self.capacity = cap;
        self.sizes = sizes;
        self.rows = 0;
    }

    /// The outputs ŷ of the last forward pass (rows × outputs).
    pub fn output(&self) -> ArrayView2<'_, T> {
        let t = *self.sizes.last().unwrap_or(&0);
        match self.acts.last() {
            Some(buf) => view(buf, self.rows, t),
            None => view(&[], 0, 0),
        }
    }

    /// The output layer's pre-activations z of the last forward pass (rows × outputs).
    pub fn logits(&self) -> ArrayView2<'_, T> {
        let t = *self.sizes.last().unwrap_or(&0);
        view(&self.logits, self.rows, t)
    }
}

/// A row-major n×w view of the leading n·w entries of `buf`.
#[inline]
pub(crate) fn view<T2: Scalar>(buf: &[T2], n: usize, w: usize) -> ArrayView2<'_, T2> {
    debug_assert!(buf.len() >= n * w);
    // The slice length equals n·w, so the shape always fits.
    match ArrayView2::from_shape((n, w), &buf[..n * w]) {
        Ok(v) => v,
        Err(_) => unreachable!("slice of n·w elements always has shape (n, w)"),
    }
}

/// A mutable row-major n×w view of the leading n·w entries of `buf`.
#[inline]
pub(crate) fn view_mut<T2: Scalar>(buf: &mut [T2], n: usize, w: usize) -> ArrayViewMut2<'_, T2> {
    debug_assert!(buf.len() >= n * w);
    match ArrayViewMut2::from_shape((n, w), &mut buf[..n * w]) {
        Ok(v) => v,
        Err(_) => unreachable!("slice of n·w elements always has shape (n, w)"),
    }
}
