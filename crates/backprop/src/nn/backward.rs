//! The backward pass: loss, output δ, then δ and the parameter gradients layer by layer.
//!
//! With aₗ = fₗ(zₗ), zₗ = aₗ₋₁Wₗᵀ + bₗ (rows are samples) and δₗ = ∂L/∂zₗ:
//!
//! ```text
//! ∂L/∂Wₗ = δₗᵀ aₗ₋₁          (out×in: a GEMM on a transposed view, no copy)
//! ∂L/∂bₗ = Σ_rows δₗ
//! δₗ₋₁   = (δₗ Wₗ) ⊙ fₗ₋₁'(aₗ₋₁)
//! ```
//!
//! f' is computed from the saved output a (σ' = a(1 − a), …), and the multiplication by f',
//! the bias-gradient column sums and the write of δₗ₋₁ over aₗ₋₁ (no longer needed) are fused
//! into one pass. No δ is formed for the input layer. Nothing allocates once the
//! [`Workspace`] and the [`Grads`] exist.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::activation::Activation;
use super::forward::{PARALLEL_ELEMS, check_finite, check_input};
use super::grads::Grads;
use super::loss::Loss;
use super::mlp::Mlp;
use super::split::{
    BatchRows, WeightStep, add_parts, backward_by_batch, backward_by_owner, by_batch, by_owner,
    input_gradient_by_batch, middle, side_by_side, weight_gradient_beside, weight_gradient_cols2,
};
use super::workspace::{Workspace, view, view_mut};
use crate::tensor::gemm_into;
use crate::{Error, Result, Scalar};

/// Checks a batch's shapes and targets for `loss` on `mlp`.
pub(crate) fn check_batch<T: Scalar>(
    mlp: &Mlp<T>,
    loss: Loss,
    x: &ArrayView2<'_, T>,
    y: &ArrayView2<'_, T>,
) -> Result<()> {
    check_input(mlp, x, loss.name())?;
    if x.nrows() == 0 {
        return Err(Error::invalid("data", "the batch is empty"));
    }
    if y.nrows() != x.nrows() {
        return Err(Error::shape(loss.name(), format!("x has {} rows but y has {}", x.nrows(), y.nrows())));
    }
    let last = mlp.layers.len() - 1;
    loss.check_output(mlp.layers[last].activation, mlp.outputs())?;
    loss.check_targets(y.view(), mlp.outputs())
}

impl<T: Scalar> Workspace<T> {
    /// The loss of `mlp` on the batch (x, y), without gradients.
    pub fn loss(
        &mut self,
        mlp: &Mlp<T>,
        loss: Loss,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
    ) -> Result<f64> {
        check_batch(mlp, loss, &x, &y)?;
        self.forward_unchecked(mlp, x);
        Ok(self.loss_unchecked(mlp, loss, y, false))
    }

    /// The loss of `mlp` on the batch (x, y) and its gradient with respect to every parameter,
    /// written into `grads` (which must be shaped like `mlp`, e.g. by [`Grads::zeros_like`]).
    /// The loss is returned in f64 (accumulated in f64 also for f32 networks).
    pub fn loss_and_grad(
        &mut self,
        mlp: &Mlp<T>,
        loss: Loss,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        grads: &mut Grads<T>,
    ) -> Result<f64> {
        check_batch(mlp, loss, &x, &y)?;
        if !grads.fits(mlp) {
            return Err(Error::shape("loss_and_grad", "the gradient container is not shaped like the model"));
        }
        Ok(self.loss_and_grad_unchecked(mlp, loss, x, y, grads))
    }

    /// Loss after a forward pass; with `keep_delta` also the output δ into `delta_out`.
    pub(crate) fn loss_unchecked(
        &mut self,
        mlp: &Mlp<T>,
        loss: Loss,
        y: ArrayView2<'_, T>,
        keep_delta: bool,
    ) -> f64 {
        let n = self.rows;
        let t = mlp.outputs();
        let act = mlp.layers[mlp.layers.len() - 1].activation;
        let out = &self.acts[self.acts.len() - 1][..n * t];
        let delta = keep_delta.then_some(&mut self.delta_out[..n * t]);
        loss.value_and_delta(act, &self.logits[..n * t], out, y, t, delta)
    }

    /// The fused forward and backward pass after all checks.
    pub(crate) fn loss_and_grad_unchecked(
        &mut self,
        mlp: &Mlp<T>,
        loss: Loss,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        grads: &mut Grads<T>,
    ) -> f64 {
        self.forward_unchecked(mlp, x);
        let value = self.loss_unchecked(mlp, loss, y, true);
        self.backward_unchecked(mlp, x, grads);
        value
    }

    /// Backpropagates `delta_out` through the layers of the last forward pass.
    fn backward_unchecked(&mut self, mlp: &Mlp<T>, x: ArrayView2<'_, T>, grads: &mut Grads<T>) {
        let n = self.rows;
        let last = mlp.layers.len() - 1;
        let g = grads.as_mlp_mut();
        // Output layer's bias gradient: column sums of δ.
        let t = mlp.outputs();
        if let Some(gb) = g.layers[last].bias.as_mut() {
            gb.fill(T::zero());
            for row in self.delta_out[..n * t].chunks_exact(t) {
                gb.iter_mut().zip(row).for_each(|(s, &d)| *s += d);
            }
        }
        for l in (0..=last).rev() {
            let layer = &mlp.layers[l];
            let w_out = layer.outputs();
            let w_in = layer.inputs();
            let (below, here) = self.acts.split_at_mut(l);
            // δₗ lives in delta_out for the output layer, over aₗ for hidden layers.
            let delta: &[T] = if l == last { &self.delta_out } else { &here[0] };
            let delta = view(delta, n, w_out);
            let a_prev = if l == 0 { x.view() } else { view(&below[l - 1], n, w_in) };
            let owner = by_owner(n, w_out, w_in);
            if by_batch(n, w_out, w_in, self.split_from.0) {
                // Each thread its batch rows; then the two parts of ∂L/∂Wₗ added.
                let act = (l > 0).then(|| mlp.layers[l - 1].activation);
                self.layer_by_batch(l, last, x, layer.weight.view(), act, g);
                add_parts(g.layers[l].weight.view_mut(), view(&self.grad_part, w_out, w_in), None);
                if l == 0 {
                    break;
                }
                continue;
            }
            let gw = g.layers[l].weight.view_mut();
            if l == 0 {
                // ∂L/∂W₀ = δ₀ᵀ x, the last product: nothing to pair it with, so it is split.
                if owner {
                    let step = WeightStep::Gradient { w: layer.weight.view(), g: gw };
                    backward_by_owner(delta, a_prev, step, None);
                } else {
                    weight_gradient(gw, false, T::one(), delta, a_prev, self.split_from.0);
                }
                break;
            }
            let (scratch, scratch2) = (&mut self.scratch, &mut self.scratch2);
            let pair = side_by_side(4 * n * w_out * w_in, self.split_from.pairs()) || large_pair(n * w_in);
            if owner {
                // Each thread its rows of Wₗ: its part of δₗWₗ and those rows of ∂L/∂Wₗ.
                let step = WeightStep::Gradient { w: layer.weight.view(), g: gw };
                let halves = (view_mut(scratch, n, w_in), view_mut(scratch2, n, w_in));
                backward_by_owner(delta, a_prev, step, Some(halves));
            } else if pair {
                let scratch = view_mut(scratch, n, w_in);
                // ∂L/∂Wₗ = δₗᵀ aₗ₋₁ beside scratch = δₗ Wₗ, each on one thread.
                weight_gradient_beside(gw, (delta, a_prev), scratch, (delta, layer.weight.view()));
            } else {
                // ∂L/∂Wₗ = δₗᵀ aₗ₋₁
                let r = gemm_into(gw, false, T::one(), delta.t(), a_prev);
                debug_assert!(r.is_ok());
                // scratch = δₗ Wₗ (n×in)
                let r = gemm_into(view_mut(scratch, n, w_in), false, T::one(), delta, layer.weight.view());
                debug_assert!(r.is_ok());
            }
            // δₗ₋₁ = scratch ⊙ f'(aₗ₋₁), written over aₗ₋₁; bias gradient summed on the way.
            let act = mlp.layers[l - 1].activation;
            let a = &mut below[l - 1][..n * w_in];
            let s = (&self.scratch[..n * w_in], owner.then(|| &self.scratch2[..n * w_in]));
            let gb = g.layers[l - 1].bias.as_mut().and_then(|b| b.as_slice_mut());
            delta_pass_on(act, a, s, w_in, gb, &mut self.bias_part, pair);
        }
    }
}

impl<T: Scalar> Workspace<T> {
    /// Plain gradient descent fused into the backward pass: θ ← θ − lr·∇L without storing ∇L.
    ///
    /// Layer by layer, from the output: first δₗWₗ (the last use of the old Wₗ), then
    /// Wₗ ← Wₗ − lr·δₗᵀaₗ₋₁ as one GEMM accumulating into the weights (α = −lr), then
    /// bₗ ← bₗ − lr·Σ_rows δₗ. Compared with a gradient pass then an update pass, the weights
    /// are read and written once and no gradient matrix is written and re-read. Large hidden
    /// layers on two threads instead compute δₗᵀaₗ₋₁ into `grads` beside δₗWₗ and then update
    /// Wₗ elementwise: two single-thread products side by side beat the fused GEMM. Returns the
    /// loss before the step; if it is not finite, the model is left unchanged. `grads` serves
    /// as scratch for the bias sums: its contents afterwards are unspecified.
    pub(crate) fn loss_and_sgd_step_unchecked(
        &mut self,
        mlp: &mut Mlp<T>,
        loss: Loss,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        lr: T,
        grads: &mut Grads<T>,
    ) -> f64 {
        self.forward_unchecked(mlp, x);
        let value = self.loss_unchecked(mlp, loss, y, true);
        if !value.is_finite() {
            return value;
        }
        let n = self.rows;
        let last = mlp.layers.len() - 1;
        let g = grads.as_mlp_mut();
        let t = mlp.outputs();
        if let (Some(b), Some(gb)) = (mlp.layers[last].bias.as_mut(), g.layers[last].bias.as_mut()) {
            gb.fill(T::zero());
            for row in self.delta_out[..n * t].chunks_exact(t) {
                gb.iter_mut().zip(row).for_each(|(s, &d)| *s += d);
            }
            sgd_bias(b, gb, lr);
        }
        for l in (0..=last).rev() {
            let w_out = mlp.layers[l].outputs();
            let w_in = mlp.layers[l].inputs();
            let (below, here) = self.acts.split_at_mut(l);
            let delta: &[T] = if l == last { &self.delta_out } else { &here[0] };
            let delta = view(delta, n, w_out);
            let a_prev = if l == 0 { x.view() } else { view(&below[l - 1], n, w_in) };
            let owner = by_owner(n, w_out, w_in);
            if by_batch(n, w_out, w_in, self.split_from.0) {
                // Each thread its batch rows; then Wₗ ← Wₗ − lr·(sum of the two parts).
                let act = (l > 0).then(|| mlp.layers[l - 1].activation);
                self.layer_by_batch(l, last, x, mlp.layers[l].weight.view(), act, g);
                if l > 0
                    && let (Some(b), Some(gb)) =
                        (mlp.layers[l - 1].bias.as_mut(), g.layers[l - 1].bias.as_ref())
                {
                    sgd_bias(b, gb, lr);
                }
                let part = view(&self.grad_part, w_out, w_in);
                add_parts(g.layers[l].weight.view_mut(), part, Some((mlp.layers[l].weight.view_mut(), lr)));
                if l == 0 {
                    break;
                }
                continue;
            }
            if l == 0 {
                // W₀ ← W₀ − lr·δ₀ᵀx, split in two.
                if owner {
                    let step = WeightStep::Update { w: mlp.layers[0].weight.view_mut(), lr };
                    backward_by_owner(delta, a_prev, step, None);
                } else {
                    let w = mlp.layers[0].weight.view_mut();
                    weight_gradient(w, true, -lr, delta, a_prev, self.split_from.0);
                }
                break;
            }
            let (scratch, scratch2) = (&mut self.scratch, &mut self.scratch2);
            let pair = side_by_side(4 * n * w_out * w_in, self.split_from.pairs()) || large_pair(n * w_in);
            if owner {
                // Each thread its rows of Wₗ: its part of δₗWₗ (old rows), then their update.
                let step = WeightStep::Update { w: mlp.layers[l].weight.view_mut(), lr };
                let halves = (view_mut(scratch, n, w_in), view_mut(scratch2, n, w_in));
                backward_by_owner(delta, a_prev, step, Some(halves));
            } else if pair {
                let scratch = view_mut(scratch, n, w_in);
                // Gₗ = δₗᵀaₗ₋₁ beside scratch = δₗWₗ (the old Wₗ), then Wₗ ← Wₗ − lr·Gₗ: the
                // fused update would write Wₗ while δₗWₗ reads it (784-256-256-10, batch 1024,
                // f32: both products 1.43–1.53 ms one after the other, 1.16–1.24 ms side by side).
                let gw = &mut g.layers[l].weight;
                weight_gradient_beside(
                    gw.view_mut(),
                    (delta, a_prev),
                    scratch,
                    (delta, mlp.layers[l].weight.view()),
                );
                sub_scaled(&mut mlp.layers[l].weight, gw, lr);
            } else {
                // scratch = δₗ Wₗ (n×in), with the weights before the update.
                let scratch = view_mut(scratch, n, w_in);
                let r = gemm_into(scratch, false, T::one(), delta, mlp.layers[l].weight.view());
                debug_assert!(r.is_ok());
                // Wₗ ← Wₗ − lr·δₗᵀaₗ₋₁
                let r = gemm_into(mlp.layers[l].weight.view_mut(), true, -lr, delta.t(), a_prev);
                debug_assert!(r.is_ok());
            }
            // δₗ₋₁ = scratch ⊙ f'(aₗ₋₁) over aₗ₋₁ (no longer needed), its column sums into
            // the gradient's bias buffer, then bₗ₋₁ ← bₗ₋₁ − lr·Σ_rows δₗ₋₁.
            let act = mlp.layers[l - 1].activation;
            let a = &mut below[l - 1][..n * w_in];
            let s = (&self.scratch[..n * w_in], owner.then(|| &self.scratch2[..n * w_in]));
            let gb = g.layers[l - 1].bias.as_mut().and_then(|b| b.as_slice_mut());
            delta_pass_on(act, a, s, w_in, gb, &mut self.bias_part, pair);
            if let (Some(b), Some(gb)) = (mlp.layers[l - 1].bias.as_mut(), g.layers[l - 1].bias.as_ref()) {
                sgd_bias(b, gb, lr);
            }
        }
        value
    }
}

impl<T: Scalar> Workspace<T> {
    /// Layer l's backward pass by batch rows (`split::by_batch`), from its δ (`delta_out` for
    /// the output layer, else over aₗ): on each thread, for its rows, a part of ∂L/∂Wₗ (the
    /// caller's into `g`'s layer l, the helper's into `grad_part`, for the caller to add) and,
    /// above the input layer (`act`: the activation of layer l − 1), δ·Wₗ and δₗ₋₁ over aₗ₋₁
    /// with the bias gradient of layer l − 1 (its two parts added into `g`).
    fn layer_by_batch(
        &mut self,
        l: usize,
        last: usize,
        x: ArrayView2<'_, T>,
        w: ArrayView2<'_, T>,
        act: Option<Activation>,
        g: &mut Mlp<T>,
    ) {
        let n = self.rows;
        let (w_out, w_in) = w.dim();
        let h = middle(n);
        let (below, here) = self.acts.split_at_mut(l);
        let delta: &[T] = if l == last { &self.delta_out } else { &here[0] };
        let delta = view(delta, n, w_out);
        let Some(act) = act else {
            let part = view_mut(sized(&mut self.grad_part, w_out * w_in), w_out, w_in);
            input_gradient_by_batch(delta, x, g.layers[l].weight.view_mut(), part);
            return;
        };
        let (d0, d1) = delta.split_at(Axis(0), h);
        let (a0, a1) = below[l - 1][..n * w_in].split_at_mut(h * w_in);
        let (s0, s1) = self.scratch[..n * w_in].split_at_mut(h * w_in);
        let part = view_mut(sized(&mut self.grad_part, w_out * w_in), w_out, w_in);
        let (lower, upper) = g.layers.split_at_mut(l);
        let gb = lower[l - 1].bias.as_mut().and_then(|b| b.as_slice_mut());
        let bias_part = gb.is_some().then(|| sized(&mut self.bias_part, w_in));
        let halves = (
            BatchRows { delta: d0, a: a0, s: s0, g: upper[0].weight.view_mut(), gb },
            BatchRows { delta: d1, a: a1, s: s1, g: part, gb: bias_part },
        );
        backward_by_batch(w, halves, |a, s, gb| delta_pass(act, a, (s, None), w_in, gb));
        if let Some(gb) = lower[l - 1].bias.as_mut() {
            gb.iter_mut().zip(&self.bias_part[..w_in]).for_each(|(g, &p)| *g += p);
        }
    }
}

/// b ← b − lr·g for a layer's bias in the fused SGD step.
fn sgd_bias<T: Scalar>(b: &mut ndarray::Array1<T>, g: &ndarray::Array1<T>, lr: T) {
    b.zip_mut_with(g, |bv, &gv| *bv -= lr * gv);
}

/// The first `len` entries of `buf`, grown (once) if it is shorter.
fn sized<T: Scalar>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    if buf.len() < len {
        buf.resize(len, T::zero());
    }
    &mut buf[..len]
}

/// c ← α·δᵀa (+ c), a weight gradient with no product to pair it with: with two threads and
/// at least `min_flop`, its columns in two halves side by side (784-256-256-10 at batch 1024,
/// the input layer's 256×784: f32 on faer's 2 threads 2.40–2.54 ms, halves on one thread each
/// 1.22–1.45 ms; f64 halves 2.9–3.2 ms, batch-chunked, see `split`).
fn weight_gradient<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    alpha: T,
    delta: ArrayView2<'_, T>,
    a: ArrayView2<'_, T>,
    min_flop: usize,
) {
    let (m, n) = c.dim();
    if side_by_side(2 * m * n * delta.nrows(), min_flop) {
        weight_gradient_cols2(c, accumulate, alpha, delta, a);
    } else {
        let r = gemm_into(c, accumulate, alpha, delta.t(), a);
        debug_assert!(r.is_ok());
    }
}

/// w ← w − lr·g, on all threads when large: in two halves side by side with two threads
/// ([`crate::parallel::join`]; rayon's `par_chunks` here woke the pool's sleeping workers on
/// every batch-32 step, beside the split products' helper), else in rayon chunks.
fn sub_scaled<T: Scalar>(w: &mut Array2<T>, g: &Array2<T>, lr: T) {
    let sub = |w: &mut [T], g: &[T]| w.iter_mut().zip(g).for_each(|(wv, &gv)| *wv -= lr * gv);
    match (w.as_slice_mut(), g.as_slice()) {
        (Some(w), Some(g)) if w.len() >= PARALLEL_ELEMS && rayon::current_num_threads() == 2 => {
            let h = middle(w.len());
            let ((w0, w1), (g0, g1)) = (w.split_at_mut(h), g.split_at(h));
            crate::parallel::join(|| sub(w0, g0), || sub(w1, g1));
        }
        (Some(w), Some(g)) if w.len() >= PARALLEL_ELEMS => {
            let chunk = PARALLEL_ELEMS / 4;
            w.par_chunks_mut(chunk).zip(g.par_chunks(chunk)).for_each(|(w, g)| sub(w, g));
        }
        _ => w.zip_mut_with(g, |wv, &gv| *wv -= lr * gv),
    }
}

/// Whether a layer whose δ·W has `elems` entries runs its two products side by side even
/// below the split size (each stays whole on one thread, so only the join is extra), and its
/// δ pass in two halves: from [`PARALLEL_ELEMS`] entries on, the forward pass's threshold for
/// its bias and activation (784-256-256-10 at batch 1024: the output layer, 1024×256).
fn large_pair(elems: usize) -> bool {
    elems >= PARALLEL_ELEMS && rayon::current_num_threads() == 2
}

/// [`delta_pass`], with `split` in two row halves side by side; the second half's bias sums go
/// to `part` (sized on first use) and are added after.
fn delta_pass_on<T: Scalar>(
    act: Activation,
    a: &mut [T],
    s: Addends<'_, T>,
    w: usize,
    gb: Option<&mut [T]>,
    part: &mut Vec<T>,
    split: bool,
) {
    let n = a.len().checked_div(w).unwrap_or(0);
    if !split || n < 2 {
        return delta_pass(act, a, s, w, gb);
    }
    let h = middle(n) * w;
    let (a1, a2) = a.split_at_mut(h);
    let (s0, s1) = s.0.split_at(h);
    let (t0, t1) = match s.1 {
        Some(t) => {
            let (t0, t1) = t.split_at(h);
            (Some(t0), Some(t1))
        }
        None => (None, None),
    };
    let (s1, s2) = ((s0, t0), (s1, t1));
    match gb {
        Some(gb) => {
            let p = sized(part, w);
            crate::parallel::join(
                || delta_pass(act, a1, s1, w, Some(gb)),
                || delta_pass(act, a2, s2, w, Some(p)),
            );
            gb.iter_mut().zip(p.iter()).for_each(|(g, &pv)| *g += pv);
        }
        None => {
            crate::parallel::join(|| delta_pass(act, a1, s1, w, None), || delta_pass(act, a2, s2, w, None));
        }
    }
}

/// δ·W for the layer below: one matrix, or two parts to add (the two threads' of a layer
/// split by owner, `split::backward_by_owner`).
type Addends<'a, T> = (&'a [T], Option<&'a [T]>);

/// δ = s ⊙ f'(a) (s = s₀ + s₁ for two addends), written over `a`; with `gb`, also
/// gb = Σ_rows δ. One loop per activation (f' resolved at compile time), so each vectorises.
fn delta_pass<T: Scalar>(act: Activation, a: &mut [T], s: Addends<'_, T>, w: usize, gb: Option<&mut [T]>) {
    #[inline(always)]
    fn run<T: Scalar>(a: &mut [T], s: Addends<'_, T>, w: usize, gb: Option<&mut [T]>, fd: impl Fn(T) -> T) {
        match (gb, s) {
            (Some(gb), (s, None)) => {
                gb.fill(T::zero());
                for (arow, srow) in a.chunks_exact_mut(w).zip(s.chunks_exact(w)) {
                    for ((av, &sv), gbv) in arow.iter_mut().zip(srow).zip(gb.iter_mut()) {
                        let d = sv * fd(*av);
                        *av = d;
                        *gbv += d;
                    }
                }
            }
            (Some(gb), (s, Some(t))) => {
                gb.fill(T::zero());
                for ((arow, srow), trow) in
                    a.chunks_exact_mut(w).zip(s.chunks_exact(w)).zip(t.chunks_exact(w))
                {
                    for (((av, &sv), &tv), gbv) in arow.iter_mut().zip(srow).zip(trow).zip(gb.iter_mut()) {
                        let d = (sv + tv) * fd(*av);
                        *av = d;
                        *gbv += d;
                    }
                }
            }
            (None, (s, None)) => a.iter_mut().zip(s).for_each(|(av, &sv)| *av = sv * fd(*av)),
            (None, (s, Some(t))) => {
                a.iter_mut().zip(s).zip(t).for_each(|((av, &sv), &tv)| *av = (sv + tv) * fd(*av))
            }
        }
    }
    match act {
        Activation::Sigmoid => run(a, s, w, gb, |a: T| a * (T::one() - a)),
        Activation::Tanh => run(a, s, w, gb, |a: T| T::one() - a * a),
        Activation::Relu => run(a, s, w, gb, |a: T| if a > T::zero() { T::one() } else { T::zero() }),
        Activation::LeakyRelu => {
            let slope = T::of(super::activation::LEAKY_SLOPE);
            run(a, s, w, gb, move |a: T| if a > T::zero() { T::one() } else { slope })
        }
        Activation::Softplus => run(a, s, w, gb, |a: T| Activation::Softplus.derivative_from_output(a)),
        Activation::Identity => run(a, s, w, gb, |_: T| T::one()),
    }
}

impl<T: Scalar> Mlp<T> {
    /// The loss on (x, y): x is n×inputs, y is n×outputs (n×1 class indices for
    /// `cross_entropy`). Data and targets are checked (shapes, NaN/Inf, class range).
    pub fn loss(&self, loss: Loss, x: ArrayView2<'_, T>, y: ArrayView2<'_, T>) -> Result<f64> {
        check_finite(&x, "input data")?;
        crate::nn::workspace::cached(self, x.nrows(), |ws| ws.loss(self, loss, x, y))
    }

    /// The loss on (x, y) and its gradient with respect to every parameter.
    ///
    /// The passes run in a workspace this thread keeps between calls (up to 64 MB), so calling
    /// this in a loop allocates only the returned gradient; [`Workspace::loss_and_grad`] with
    /// your own workspace and [`Grads`] allocates nothing.
    ///
    /// ```
    /// use backprop::nn::{Init, Loss, MlpBuilder, ParamSelection};
    /// use backprop::notebook;
    /// use ndarray::array;
    ///
    /// let m = MlpBuilder::new(&[4, 5, 1]).init(Init::Ones).bias(false).build::<f64>().unwrap();
    /// let (loss, g) = m.loss_and_grad(Loss::SquaredError, array![[0.01, 0.02, 0.03, 0.04]].view(), array![[1.0]].view()).unwrap();
    /// let nb = notebook::simple_backpropagation(1.0, notebook::notebook_x().view(), &notebook::Weights::notebook()).unwrap();
    /// assert!((g.weight(1)[[0, 0]] - nb.w_2[0]).abs() < 1e-15);
    /// assert_eq!(g.flat(ParamSelection::Weights).len(), 25);
    /// ```
    pub fn loss_and_grad(
        &self,
        loss: Loss,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
    ) -> Result<(f64, Grads<T>)> {
        check_finite(&x, "input data")?;
        let mut grads = Grads::zeros_like(self);
        let value = crate::nn::workspace::cached(self, x.nrows(), |ws| {
            ws.loss_and_grad(self, loss, x, y, &mut grads)
        })?;
        Ok((value, grads))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::workspace::SplitFrom;
    use crate::nn::{Loss, MlpBuilder, ParamSelection};
    use ndarray::Array2;

    /// The passes with every product split side by side (two threads, no size threshold)
    /// against the same passes with no split, for each dtype: forward output, loss, gradient
    /// and a few fused SGD steps, on odd widths, odd batches and a one-row batch.
    fn split_passes_match_plain<T: Scalar>(tol: f64) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for (sizes, bias, act) in [
            (&[13, 9, 7, 3][..], true, Activation::Relu),
            (&[5, 33, 2][..], false, Activation::Tanh),
            (&[40, 17, 17, 17, 4][..], true, Activation::Sigmoid),
        ] {
            for n in [1, 2, 3, 37, 260] {
                let m0 = MlpBuilder::new(sizes).activation(act).bias(bias).seed(7).build::<T>().unwrap();
                let x =
                    Array2::from_shape_fn((n, sizes[0]), |(i, j)| T::of(((i * 31 + j) as f64 * 0.41).sin()));
                let y = Array2::from_shape_fn((n, 1), |(i, _)| T::of((i % sizes[sizes.len() - 1]) as f64));
                let run = |split: usize| {
                    let mut m = m0.clone();
                    let mut ws = Workspace::new(&m, n);
                    ws.split_from = SplitFrom(split);
                    let mut g = Grads::zeros_like(&m);
                    pool.install(|| {
                        let out = ws.forward(&m, x.view()).unwrap().to_owned();
                        let l = ws.loss_and_grad(&m, Loss::CrossEntropy, x.view(), y.view(), &mut g).unwrap();
                        let grad = g.flat(ParamSelection::All);
                        let mut s = g.clone();
                        for _ in 0..3 {
                            ws.loss_and_sgd_step_unchecked(
                                &mut m,
                                Loss::CrossEntropy,
                                x.view(),
                                y.view(),
                                T::of(0.2),
                                &mut s,
                            );
                        }
                        (out, l, grad, m.flat_params(ParamSelection::All))
                    })
                };
                let (split, plain) = (run(0), run(usize::MAX));
                let close = |a: &[T], b: &[T], what: &str| {
                    for (u, v) in a.iter().zip(b) {
                        assert!(
                            (u.f64() - v.f64()).abs() <= tol * (1.0 + v.f64().abs()),
                            "{sizes:?} n={n} {what}: {u} vs {v}"
                        );
                    }
                };
                close(split.0.as_slice().unwrap(), plain.0.as_slice().unwrap(), "forward");
                assert!(
                    (split.1 - plain.1).abs() <= tol * (1.0 + plain.1.abs()),
                    "loss {} vs {}",
                    split.1,
                    plain.1
                );
                close(split.2.as_slice().unwrap(), plain.2.as_slice().unwrap(), "gradient");
                close(split.3.as_slice().unwrap(), plain.3.as_slice().unwrap(), "sgd steps");
                // The same split run twice gives the same bits.
                assert_eq!(run(0).3, split.3);
            }
        }
    }

    #[test]
    fn split_products_give_the_plain_passes() {
        split_passes_match_plain::<f32>(1e-6);
        split_passes_match_plain::<f64>(1e-13);
    }

    /// Layers split by the owners of their weight rows (`split::by_owner`: two threads, at
    /// least 4·10⁶ flop, batch ≤ outputs) against one thread: gradient and fused SGD steps, with
    /// halves of unequal length (250 and 230 outputs) and a batch where only the input layer
    /// is large enough.
    fn owner_passes_match_one_thread<T: Scalar>(tol: f64) {
        let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for (sizes, bias, act, n) in [
            (&[300, 256, 256, 10][..], true, Activation::Relu, 32),
            (&[300, 250, 230, 10][..], false, Activation::Sigmoid, 40),
            (&[300, 256, 256, 10][..], true, Activation::Tanh, 28),
        ] {
            let owned = |w: &[usize]| two.install(|| by_owner(n, w[1], w[0]));
            assert!(owned(&sizes[0..2]), "{sizes:?} n={n}: the input layer is split by owner");
            assert_eq!(owned(&sizes[1..3]), n >= 31, "{sizes:?} n={n}");
            let m0 = MlpBuilder::new(sizes).activation(act).bias(bias).seed(3).build::<T>().unwrap();
            let x = Array2::from_shape_fn((n, sizes[0]), |(i, j)| T::of(((i * 31 + j) as f64 * 0.41).sin()));
            let y = Array2::from_shape_fn((n, 1), |(i, _)| T::of((i % 10) as f64));
            let run = |pool: &rayon::ThreadPool| {
                let mut m = m0.clone();
                let mut ws = Workspace::new(&m, n);
                let mut g = Grads::zeros_like(&m);
                pool.install(|| {
                    let l = ws.loss_and_grad(&m, Loss::CrossEntropy, x.view(), y.view(), &mut g).unwrap();
                    let grad = g.flat(ParamSelection::All);
                    for _ in 0..3 {
                        let lr = T::of(0.1);
                        ws.loss_and_sgd_step_unchecked(
                            &mut m,
                            Loss::CrossEntropy,
                            x.view(),
                            y.view(),
                            lr,
                            &mut g,
                        );
                    }
                    (l, grad, m.flat_params(ParamSelection::All))
                })
            };
            let (split, plain) = (run(&two), run(&one));
            assert!((split.0 - plain.0).abs() <= tol * (1.0 + plain.0.abs()));
            for (what, a, b) in [("gradient", &split.1, &plain.1), ("sgd steps", &split.2, &plain.2)] {
                for (u, v) in a.iter().zip(b.iter()) {
                    let ok = (u.f64() - v.f64()).abs() <= tol * (1.0 + v.f64().abs());
                    assert!(ok, "{sizes:?} n={n} {what}: {u} vs {v}");
                }
            }
        }
    }

    #[test]
    fn layers_split_by_weight_rows_give_the_one_thread_passes() {
        owner_passes_match_one_thread::<f32>(1e-5);
        owner_passes_match_one_thread::<f64>(1e-12);
    }

    /// The convenience methods reuse one cached workspace per thread and precision, whatever
    /// batch or model came before: their results equal a fresh workspace's, bit for bit.
    fn cached_workspace_gives_fresh_results<T: Scalar>() {
        let data = |n: usize, d: usize| {
            Array2::from_shape_fn((n, d), |(i, j)| T::of(((i * d + j) as f64 * 0.37).sin()))
        };
        let a = MlpBuilder::new(&[6, 9, 3]).seed(1).build::<T>().unwrap();
        let b = MlpBuilder::new(&[4, 300, 2]).seed(2).build::<T>().unwrap();
        let classes = |n: usize, k: usize| Array2::from_shape_fn((n, 1), |(i, _)| T::of((i % k) as f64));
        for (m, n) in [(&a, 300), (&b, 5), (&a, 7), (&b, 400), (&a, 1), (&b, 3)] {
            let (x, y) = (data(n, m.inputs()), classes(n, m.outputs()));
            let mut fresh = Workspace::new(m, n);
            let mut g = Grads::zeros_like(m);
            let l = fresh.loss_and_grad(m, Loss::CrossEntropy, x.view(), y.view(), &mut g).unwrap();
            let (l2, g2) = m.loss_and_grad(Loss::CrossEntropy, x.view(), y.view()).unwrap();
            assert_eq!((l.to_bits(), &g), (l2.to_bits(), &g2), "{:?} on {n} rows", m.sizes());
            assert_eq!(m.loss(Loss::CrossEntropy, x.view(), y.view()).unwrap().to_bits(), l.to_bits());
            let p = m.predict(x.view()).unwrap();
            assert_eq!(p, Workspace::new(m, n).forward(m, x.view()).unwrap());
        }
    }

    #[test]
    fn convenience_methods_share_a_cached_workspace_safely() {
        cached_workspace_gives_fresh_results::<f32>();
        cached_workspace_gives_fresh_results::<f64>();
    }
}
