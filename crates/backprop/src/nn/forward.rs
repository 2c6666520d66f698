//! The forward pass: aₗ = fₗ(aₗ₋₁ Wₗᵀ + bₗ), layer by layer, into a [`Workspace`].
//!
//! Each layer is one faer GEMM on views (Wₗᵀ is a transposed view of the stored out×in matrix:
//! no copy) followed by one fused pass that adds the bias and applies the activation in place.

use std::ops::Range;

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use super::activation::Activation;
use super::mlp::Mlp;
use super::split::{forward_by_batch_rows, gemm_rows2, middle};
use super::workspace::{Workspace, view, view_mut};
use crate::tensor::{gemm_into, vmath};
use crate::{Error, Result, Scalar};

/// Elementwise passes over at least this many entries run on all threads.
pub(crate) const PARALLEL_ELEMS: usize = 1 << 16;

/// Runs `f(row)` on every length-`w` row of `buf[..n·w]`, in parallel when large and `parallel`.
#[inline]
pub(crate) fn for_each_row<T: Scalar>(
    buf: &mut [T],
    n: usize,
    w: usize,
    parallel: bool,
    f: impl Fn(&mut [T]) + Sync + Send,
) {
    let buf = &mut buf[..n * w];
    if w == 0 {
        return;
    }
    if parallel && n * w >= PARALLEL_ELEMS && n >= 2 && rayon::current_num_threads() == 2 {
        // Two row halves side by side, without waking rayon's pool (`crate::parallel`).
        let (top, bottom) = buf.split_at_mut(middle(n) * w);
        crate::parallel::join(
            || top.chunks_exact_mut(w).for_each(&f),
            || bottom.chunks_exact_mut(w).for_each(&f),
        );
    } else if parallel && n * w >= PARALLEL_ELEMS && rayon::current_num_threads() > 1 {
        let rows_per_task = (PARALLEL_ELEMS / 4 / w).max(1);
        buf.par_chunks_mut(rows_per_task * w).for_each(|chunk| chunk.chunks_exact_mut(w).for_each(&f));
    } else {
        buf.chunks_exact_mut(w).for_each(f);
    }
}

/// `row[j] ← f(row[j] + b[j])` (or `f(row[j])`) for every row, `f` compiled for the widest
/// vectors ([`vmath::vectorized`]); `f` must be built from `#[inline(always)]` kernels.
#[inline(always)]
fn vector_pass<T: Scalar>(
    buf: &mut [T],
    n: usize,
    w: usize,
    bias: Option<&[T]>,
    parallel: bool,
    f: impl Fn(T) -> T + Sync + Send,
) {
    let f = &f;
    for_each_row(buf, n, w, parallel, |row| {
        vmath::vectorized(
            #[inline(always)]
            || match bias {
                Some(b) => row.iter_mut().zip(b).for_each(|(v, &b)| *v = f(*v + b)),
                None => row.iter_mut().for_each(|v| *v = f(*v)),
            },
        )
    })
}

/// `row[j] ← f(row[j] + b[j])` for every row: the bias and the activation in one pass, one
/// monomorphised loop per activation so the compiler can vectorise it. Large passes run on all
/// threads.
pub(crate) fn bias_activation<T: Scalar>(
    buf: &mut [T],
    n: usize,
    w: usize,
    bias: Option<&[T]>,
    act: Activation,
) {
    bias_activation_on(buf, n, w, bias, act, true)
}

/// [`bias_activation`], on the calling thread only unless `parallel`.
pub(crate) fn bias_activation_on<T: Scalar>(
    buf: &mut [T],
    n: usize,
    w: usize,
    bias: Option<&[T]>,
    act: Activation,
    parallel: bool,
) {
    macro_rules! pass {
        ($f:expr) => {{
            let f = $f;
            match bias {
                Some(b) => for_each_row(buf, n, w, parallel, |row| {
                    row.iter_mut().zip(b).for_each(|(v, &b)| *v = f(*v + b))
                }),
                None => for_each_row(buf, n, w, parallel, |row| row.iter_mut().for_each(|v| *v = f(*v))),
            }
        }};
    }
    match act {
        // The branch-free sigmoid and tanh at the CPU's widest vectors, dispatched per row so
        // that rows run on other threads get them too (σ within ~2 ulp of the scalar stable
        // sigmoid, tanh within 3 ulp of libm's; see `tensor::vmath`). libm's tanh is a scalar
        // call per element: ~30 % of a tanh MLP's gradient.
        Activation::Sigmoid => vector_pass(
            buf,
            n,
            w,
            bias,
            parallel,
            #[inline(always)]
            |v: T| vmath::sigmoid(v),
        ),
        Activation::Tanh => vector_pass(
            buf,
            n,
            w,
            bias,
            parallel,
            #[inline(always)]
            |v: T| v.tanh_vectorizable(),
        ),
        Activation::Relu => pass!(|z: T| if z > T::zero() { z } else { T::zero() }),
        Activation::LeakyRelu => pass!(|z: T| Activation::LeakyRelu.apply(z)),
        Activation::Softplus => pass!(|z: T| Activation::Softplus.apply(z)),
        Activation::Identity => {
            if let Some(b) = bias {
                for_each_row(buf, n, w, parallel, |row| row.iter_mut().zip(b).for_each(|(v, &b)| *v += b))
            }
        }
    }
}

/// Checks `x` (n×inputs) against the model's input width.
pub(crate) fn check_input<T: Scalar>(mlp: &Mlp<T>, x: &ArrayView2<'_, T>, op: &str) -> Result<()> {
    if mlp.layers.is_empty() {
        return Err(Error::invalid("model", "has no layers"));
    }
    if x.ncols() != mlp.inputs() {
        return Err(Error::shape(
            op,
            format!(
                "data has {} columns but the model takes {} inputs (x is {:?})",
                x.ncols(),
                mlp.inputs(),
                x.shape()
            ),
        ));
    }
    Ok(())
}

/// Checks every entry of `a` is finite, naming `what`, the row and the column.
pub(crate) fn check_finite<T: Scalar>(a: &ArrayView2<'_, T>, what: &str) -> Result<()> {
    if let Some(((i, j), v)) = crate::tensor::first_non_finite_2d(a) {
        return Err(Error::non_finite(what, format!("row {i}, column {j} is {v}")));
    }
    Ok(())
}

impl<T: Scalar> Workspace<T> {
    /// The forward pass on a batch `x` (n×inputs, any strides); returns ŷ (n×outputs).
    ///
    /// Shapes are checked; values are not (NaN in gives NaN out): check data once with
    /// [`Mlp::predict`] or when loading it.
    pub fn forward(&mut self, mlp: &Mlp<T>, x: ArrayView2<'_, T>) -> Result<ArrayView2<'_, T>> {
        check_input(mlp, &x, "forward")?;
        self.forward_unchecked(mlp, x);
        Ok(self.output())
    }

    /// The forward pass after the shapes were checked.
    pub(crate) fn forward_unchecked(&mut self, mlp: &Mlp<T>, x: ArrayView2<'_, T>) {
        let n = x.nrows();
        self.reserve(mlp, n);
        self.rows = n;
        let last = mlp.layers.len() - 1;
        for (l, layer) in mlp.layers.iter().enumerate() {
            let w = layer.outputs();
            let (before, rest) = self.acts.split_at_mut(l);
            let input = if l == 0 { x.view() } else { view(&before[l - 1], n, mlp.layers[l - 1].outputs()) };
            let target: &mut [T] = if l == last { &mut self.logits } else { &mut rest[0] };
            let bias = layer.bias.as_ref().and_then(|b| b.as_slice());
            let z = view_mut(target, n, w);
            if forward_by_batch_rows(n, w, 2 * n * w * layer.inputs(), self.split_from.0) {
                // z = a Wᵀ in two row halves side by side, each followed by its bias and
                // activation while in cache (784-256-256-10 at batch 1024, f32, the first
                // layer's product: 1.90–2.04 ms on faer's 2 threads, 1.62–1.68 ms in halves).
                let post = |mut half: ArrayViewMut2<'_, T>, rows: Range<usize>| {
                    if l != last
                        && let Some(h) = half.as_slice_mut()
                    {
                        bias_activation_on(h, rows.len(), w, bias, layer.activation, false);
                    }
                };
                gemm_rows2(z, false, T::one(), input, layer.weight.t(), post);
            } else {
                // z = a Wᵀ: shapes are consistent by construction, so gemm_into cannot fail.
                let r = gemm_into(z, false, T::one(), input, layer.weight.t());
                debug_assert!(r.is_ok());
                if l != last {
                    bias_activation(&mut rest[0], n, w, bias, layer.activation);
                }
            }
            if l == last {
                // Keep z (for bce and the output derivative) and write ŷ = f(z + b) beside it.
                let (logits, out) = (&mut self.logits[..n * w], &mut rest[0][..n * w]);
                if let Some(b) = bias {
                    logits
                        .chunks_exact_mut(w)
                        .for_each(|row| row.iter_mut().zip(b).for_each(|(v, &b)| *v += b));
                }
                out.copy_from_slice(logits);
                bias_activation(out, n, w, None, layer.activation);
            }
        }
    }
}

impl<T: Scalar> Mlp<T> {
    /// The network's outputs ŷ for every row of `x` (n×inputs): the output layer's activation
    /// applied (sigmoid probabilities, or raw logits for an identity output).
    ///
    /// ```
    /// use backprop::nn::{Init, MlpBuilder};
    /// use ndarray::array;
    /// let m = MlpBuilder::new(&[4, 5, 1]).init(Init::Ones).bias(false).build::<f64>().unwrap();
    /// let y = m.predict(array![[0.01, 0.02, 0.03, 0.04]].view()).unwrap();
    /// assert!((y[[0, 0]] - backprop::notebook::EXPECTED_Y_HAT).abs() < 1e-15);
    /// ```
    pub fn predict(&self, x: ArrayView2<'_, T>) -> Result<Array2<T>> {
        check_input(self, &x, "predict")?;
        check_finite(&x, "input data")?;
        Ok(crate::nn::workspace::cached(self, x.nrows(), |ws| {
            ws.forward_unchecked(self, x);
            ws.output().to_owned()
        }))
    }
}
