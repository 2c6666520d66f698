//! The loss of an [`Mlp`] on a dataset as an [`Objective`]: a fused forward, backward and
//! Pearlmutter R-op pass, batched over many directions.
//!
//! Notation, on a batch of n row vectors: A₋₁ = X, Zₗ = Aₗ₋₁Wₗᵀ + 1bₗᵀ, Aₗ = fₗ(Zₗ); the loss
//! head reads the output O (= A_L, or the logits Z_L for `bce` on a sigmoid layer).
//! Backward: G_O = ∂L/∂O, G_Zₗ = G_Aₗ ⊙ f'(Zₗ), ∇Wₗ = G_Zₗᵀ Aₗ₋₁, ∇bₗ = 1ᵀG_Zₗ,
//! G_Aₗ₋₁ = G_Zₗ Wₗ.
//!
//! The R-op R{·} = d/dε (·)(w + εv) differentiates every line of that pass once more:
//!
//! ```text
//! R{Zₗ}   = R{Aₗ₋₁} Wₗᵀ + Aₗ₋₁ Vₗᵀ + 1 vbₗᵀ          R{Aₗ} = f'(Zₗ) ⊙ R{Zₗ}
//! R{G_O}  = ∇²ℓ(O) R{O}
//! R{G_Zₗ} = R{G_Aₗ} ⊙ f'(Zₗ) + G_Aₗ ⊙ f''(Zₗ) ⊙ R{Zₗ}          (*)
//! R{∇Wₗ}  = R{G_Zₗ}ᵀ Aₗ₋₁ + G_Zₗᵀ R{Aₗ₋₁}                      (*)
//! R{G_Aₗ₋₁} = R{G_Zₗ} Wₗ + G_Zₗ Vₗ                              (*)
//! ```
//!
//! R{∇L} = H·v. Dropping the starred terms that carry the loss gradient (G) gives the
//! generalised Gauss-Newton product Jᵀ∇²ℓ J·v. For k directions at once every R-quantity is an
//! (n·k)×width matrix with rows ordered (sample, direction), so each line above is one GEMM.

use std::ops::Range;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, s};

use super::operator::check_rows;
use super::pool::Pool;
use super::{Curvature, Objective, SymmetricOperator};
use crate::nn::forward::{PARALLEL_ELEMS, bias_activation};
use crate::nn::{Activation, Loss, Mlp, ParamSelection};
use crate::notebook::stable_sigmoid;
use crate::tensor::vmath::vectorized;
use crate::tensor::{all_finite, gemm_into, gemm_into_seq, transpose_into};
use crate::{Error, Result, Scalar};

/// Elements per R-buffer (n·k·width) when directions are batched: bounds memory (~16 MB each).
const BATCH_ELEMENTS: usize = 1 << 21;

/// Elements of the per-tangent matrix M of the dense Hessian's GEMMs (~2 MB: stays in cache).
const M_ELEMENTS: usize = 1 << 18;

/// Parameter-length vectors from this length on are read (the check for NaN and ±∞) or written
/// (a result's zeros, [`zeroed`]) as two halves side by side: memory-bound passes.
const LONG_VECTOR: usize = 1 << 19;

/// Passes with at least this many sample·parameter pairs (n·dim; a gradient is ~6·n·dim flop)
/// run as two sample halves side by side (see [`MlpObjective::split`]).
const SPLIT_WORK: usize = 1 << 22;

/// The loss of a multilayer perceptron on a fixed dataset, as a function of its selected
/// parameters (the flat order of [`ParamSelection`]).
///
/// Parameters outside the selection (the biases under the default [`ParamSelection::Weights`])
/// stay at the model's values: the Hessian w.r.t. the weights is taken at the model's biases.
///
/// Losses, all means over samples: `squared_error` ½‖ŷ−y‖²; `mse` mean over all elements of
/// (ŷ−y)²; `bce` binary cross-entropy, mean over all elements, from the logits when the output
/// layer is sigmoid (or identity: the outputs are logits); `cross_entropy` softmax
/// cross-entropy of the outputs (logits) against class indices in one column of `y`.
///
/// ```
/// use backprop::curvature::{MlpObjective, Objective};
/// use backprop::nn::{Activation, Loss, Mlp};
/// use ndarray::array;
///
/// let mut mlp = Mlp::<f64>::zeros(&[2, 3, 1], &[Activation::Tanh, Activation::Identity], true).unwrap();
/// mlp.layers[0].weight = array![[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]];
/// mlp.layers[1].weight = array![[0.7, -0.8, 0.9]];
/// let x = array![[1.0, 2.0], [-1.0, 0.5]];
/// let y = array![[0.5], [-0.5]];
/// let obj = MlpObjective::new(&mlp, x.view(), y.view(), Loss::SquaredError).unwrap();
/// assert_eq!(obj.dim(), 9); // weights only, by default
/// let w = obj.initial();
/// let h = obj.hessian(w.view()).unwrap();
/// assert_eq!(h.dim(), (9, 9));
/// assert!((h[[2, 7]] - h[[7, 2]]).abs() < 1e-15);
/// ```
#[derive(Clone, Debug)]
pub struct MlpObjective {
    model: Mlp<f64>,
    x: Array2<f64>,
    y: Array2<f64>,
    loss: Loss,
    selection: ParamSelection,
    slots: Vec<Slot>,
    dim: usize,
    head: Head,
    /// Buffers of the forward, backward and R-passes, reused across calls.
    pool: Pool,
    /// [`SPLIT_WORK`] (0 in tests: every pass in halves, to run the split passes on small models).
    split_work: usize,
}

/// Where a layer's parameters sit in the selected flat vector.
#[derive(Clone, Copy, Debug)]
struct Slot {
    weight: usize,
    bias: Option<usize>,
    end: usize,
}

#[derive(Clone, Debug)]
enum Head {
    SquaredError,
    Mse,
    /// Binary cross-entropy on logits; the last layer's sigmoid (if any) is folded into the loss.
    BceLogits,
    /// Softmax cross-entropy; the class index of each sample.
    CrossEntropy(Vec<usize>),
}

impl MlpObjective {
    /// The loss of `model` on inputs `x` (n×d) and targets `y` (n×t; one column of class
    /// indices for `cross_entropy`), over the weights ([`ParamSelection::Weights`]).
    pub fn new<T: Scalar>(
        model: &Mlp<T>,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        loss: Loss,
    ) -> Result<Self> {
        model.validate()?;
        let model = model.cast::<f64>();
        let x = x.mapv(|v| v.f64());
        let y = y.mapv(|v| v.f64());
        let (n, d) = x.dim();
        if n == 0 {
            return Err(Error::invalid("data", "has no samples"));
        }
        if d != model.inputs() {
            return Err(Error::shape(
                "MlpObjective",
                format!("the model takes {} inputs but x is {n}×{d}", model.inputs()),
            ));
        }
        if y.nrows() != n {
            return Err(Error::shape("MlpObjective", format!("x has {n} rows but y has {}", y.nrows())));
        }
        if let Some((i, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::non_finite("x", format!("row {}, column {} is {v}", i / d, i % d)));
        }
        let outputs = model.outputs();
        let last = model.layers.last().map_or(Activation::Identity, |l| l.activation);
        // The training code's own checks: the same losses accept the same models and targets.
        loss.check_output(last, outputs)?;
        loss.check_targets(y.view(), outputs)?;
        let head = match loss {
            // Class indices are whole numbers in 0..outputs (checked above).
            Loss::CrossEntropy => Head::CrossEntropy(y.iter().map(|&c| c as usize).collect()),
            Loss::Bce => Head::BceLogits,
            Loss::SquaredError => Head::SquaredError,
            Loss::Mse => Head::Mse,
        };
        let mut obj = MlpObjective {
            model,
            x,
            y,
            loss,
            selection: ParamSelection::Weights,
            slots: Vec::new(),
            dim: 0,
            head,
            pool: Pool::default(),
            split_work: SPLIT_WORK,
        };
        obj.set_selection(ParamSelection::Weights);
        Ok(obj)
    }

    /// Which parameters the objective is a function of (builder style).
    pub fn params(mut self, selection: ParamSelection) -> Self {
        self.set_selection(selection);
        self
    }

    fn set_selection(&mut self, selection: ParamSelection) {
        self.selection = selection;
        let mut offset = 0;
        self.slots = self
            .model
            .layers
            .iter()
            .map(|l| {
                let weight = offset;
                offset += l.weight.len();
                let bias = match (&l.bias, selection) {
                    (Some(b), ParamSelection::All) => {
                        let o = offset;
                        offset += b.len();
                        Some(o)
                    }
                    _ => None,
                };
                Slot { weight, bias, end: offset }
            })
            .collect();
        self.dim = offset;
    }

    /// The parameter selection.
    pub fn selection(&self) -> ParamSelection {
        self.selection
    }

    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// The number of samples.
    pub fn samples(&self) -> usize {
        self.x.nrows()
    }

    /// The model's own selected parameters: the natural point to evaluate at.
    pub fn initial(&self) -> Array1<f64> {
        self.model.flat_params(self.selection)
    }

    /// The model with its selected parameters replaced by `w`.
    pub fn model_at(&self, w: ArrayView1<'_, f64>) -> Result<Mlp<f64>> {
        self.check_point(&w)?;
        let mut m = self.model.clone();
        match w.as_slice() {
            Some(sl) => m.set_flat_params(self.selection, sl)?,
            None => m.set_flat_params(self.selection, &w.to_vec())?,
        }
        Ok(m)
    }

    /// 1 for penalised parameters (weights), 0 for free ones (biases), over the selection.
    pub fn penalty_mask(&self) -> Array1<f64> {
        self.model.penalty_mask(self.selection)
    }

    fn check_point(&self, w: &ArrayView1<'_, f64>) -> Result<()> {
        if w.len() != self.dim {
            return Err(Error::shape(
                "MlpObjective",
                format!("the objective has {} parameters, got {}", self.dim, w.len()),
            ));
        }
        let finite = match w.as_slice() {
            // A memory-bound read (17 MB for 2·10⁶ weights): both cores' bandwidth.
            Some(ws) if ws.len() >= LONG_VECTOR && rayon::current_num_threads() > 1 => {
                let (a, b) = ws.split_at(ws.len() / 2);
                let (fa, fb) = crate::parallel::join(|| all_finite(a), || all_finite(b));
                fa && fb
            }
            Some(ws) => all_finite(ws),
            None => w.iter().all(|v| v.is_finite()),
        };
        if !finite && let Some((i, v)) = w.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::non_finite("parameters", format!("element {i} is {v}")));
        }
        Ok(())
    }

    /// The layers' weights and biases at w, borrowed from w (the flat order puts each weight
    /// row-major, out×in, so it is a view) and, for unselected biases, from the model: no copy
    /// of the model per pass.
    fn params_at<'p>(&'p self, w: &'p [f64]) -> Result<Params<'p>> {
        let mut p = Params { weight: Vec::new(), bias: Vec::new() };
        for (layer, slot) in self.model.layers.iter().zip(&self.slots) {
            let (o, i) = layer.weight.dim();
            let wv = ArrayView2::from_shape((o, i), &w[slot.weight..slot.weight + o * i])
                .map_err(|e| Error::shape("forward", e.to_string()))?;
            p.weight.push(wv);
            p.bias.push(match slot.bias {
                Some(b) => Some(ArrayView1::from(&w[b..b + o])),
                None => layer.bias.as_ref().map(|b| b.view()),
            });
        }
        Ok(p)
    }

    /// Where a pass over all samples splits into two halves run side by side, one thread each:
    /// `None` (one block, on the whole pool) below [`SPLIT_WORK`], or when the batch is short
    /// against the layers' fan-in.
    ///
    /// Every line of the forward, backward and R-passes is per sample except the sums over
    /// samples that form weight gradients (and H·v), so two sample halves need no
    /// synchronisation until those sums are added. Two single-thread GEMMs side by side beat
    /// each GEMM on two threads: faer's threads wait at barriers on these mid-size products,
    /// and so do the two-thread elementwise passes between them. But each half reads (and
    /// packs) every weight and writes a whole gradient part, ~dim values, where splitting each
    /// product instead moves the activations between the threads, ~n·Σₗoₗ values: so halves
    /// only from 2·n·Σₗoₗ ≥ dim (n at least half the mean fan-in). Measured, f64, both rules
    /// alternated in one process (medians of 12 windows): gradient and HVP of 1024-2048-10
    /// (sigmoid, cross-entropy) on 32 samples 9.8 → 7.5 ms and 17.1 → 12.7 ms; 784-256-256-10
    /// (tanh) on 64 samples 1.50 → 1.22 ms and 3.0 → 2.75 ms; near the threshold (784-256-256-10
    /// on 256 samples) within 5 % of each other; above it halves ahead (on 512 samples by 5–10 %).
    fn split(&self) -> Option<usize> {
        let n = self.x.nrows();
        let outputs: usize = self.model.layers.iter().map(|l| l.outputs()).sum();
        let long = 2 * n * outputs >= self.dim && n * self.dim >= self.split_work;
        // split_work = 0 (tests): always in halves.
        (n >= 2 && (long || self.split_work == 0) && rayon::current_num_threads() > 1).then_some(n / 2)
    }

    /// Pooled n×oₗ matrices, one per layer (stale contents).
    fn layer_buffers(&self) -> Vec<Array2<f64>> {
        let n = self.x.nrows();
        self.model.layers.iter().map(|l| self.pool.scratch(n, l.outputs())).collect()
    }

    /// Buffers for the pre-activations Zₗ: n×oₗ where [`Self::keeps_z`], else n×0.
    fn z_buffers(&self) -> Vec<Array2<f64>> {
        let n = self.x.nrows();
        let keep = |(l, layer): (usize, &crate::nn::Layer<f64>)| {
            if self.keeps_z(l) { self.pool.scratch(n, layer.outputs()) } else { Array2::zeros((n, 0)) }
        };
        self.model.layers.iter().enumerate().map(keep).collect()
    }

    /// Whether a pass needs layer l's pre-activations Zₗ besides Aₗ: the loss reads the top
    /// layer's logits, or f' and f'' need Z. Sigmoid, tanh and the identity have theirs in
    /// terms of A, so their Z is never stored: the bias and activation go in one pass over A.
    fn keeps_z(&self, l: usize) -> bool {
        let f = self.model.layers[l].activation;
        !matches!(f, Activation::Sigmoid | Activation::Tanh | Activation::Identity)
            || (l + 1 == self.model.layers.len() && matches!(self.head, Head::BceLogits))
    }

    /// Forward pass over the samples `rows`: their rows of Zₗ and Aₗ (`z`, `a`) and of the loss
    /// gradient G_O (`g_out`); returns their part of the loss sum (see [`Self::finish_loss`]).
    /// `par`: whether GEMMs and elementwise passes may use the pool, or stay on this thread.
    fn forward_rows(
        &self,
        p: &Params<'_>,
        rows: Range<usize>,
        par: bool,
        z: &mut [ArrayViewMut2<'_, f64>],
        a: &mut [ArrayViewMut2<'_, f64>],
        g_out: &mut ArrayViewMut2<'_, f64>,
    ) -> Result<f64> {
        let m = rows.len();
        for (l, layer) in self.model.layers.iter().enumerate() {
            let o = layer.outputs();
            let (below, here) = a.split_at_mut(l);
            let input = match below.last() {
                Some(prev) => prev.view(),
                None => self.x.slice(s![rows.clone(), ..]),
            };
            let bias = match &p.bias[l] {
                Some(b) => Some(b.as_slice().ok_or_else(|| Error::shape("forward", "non-contiguous bias"))?),
                None => None,
            };
            if !self.keeps_z(l) {
                gemm(par, here[0].view_mut(), false, 1.0, input, p.weight[l].t())?;
                let als =
                    here[0].as_slice_mut().ok_or_else(|| Error::shape("forward", "non-contiguous buffer"))?;
                activate(als, m, o, bias, layer.activation, par);
                continue;
            }
            let zl = &mut z[l];
            gemm(par, zl.view_mut(), false, 1.0, input, p.weight[l].t())?;
            let (Some(zs), Some(als)) = (zl.as_slice_mut(), here[0].as_slice_mut()) else {
                return Err(Error::shape("forward", "non-contiguous buffer"));
            };
            // Z += 1bᵀ, then A = f(Z) through the training code's activation pass (the vectorised
            // sigmoid): one definition of how a layer activates.
            if let Some(b) = bias {
                vectorized(
                    #[inline(always)]
                    || {
                        zs.chunks_exact_mut(o).zip(als.chunks_exact_mut(o)).for_each(|(zr, ar)| {
                            zr.iter_mut().zip(ar.iter_mut()).zip(b).for_each(|((z, a), b)| {
                                *z += b;
                                *a = *z;
                            })
                        })
                    },
                );
            } else {
                als.copy_from_slice(zs);
            }
            activate(als, m, o, None, layer.activation, par);
        }
        let logits = matches!(self.head, Head::BceLogits);
        let output = if logits { z.last() } else { a.last() }
            .map(|o| o.view())
            .ok_or_else(|| Error::invalid("model", "has no layers"))?;
        Ok(self.head_value_grad(output, rows, g_out))
    }

    /// Forward pass: pre-activations and activations of every layer, and the loss.
    fn forward(&self, p: &Params<'_>) -> Result<Forward> {
        let n = self.x.nrows();
        let (mut z, mut a) = (self.z_buffers(), self.layer_buffers());
        let mut g_out = self.pool.scratch(n, self.model.outputs());
        let sum = match self.split() {
            None => {
                let (mut zv, mut av) = (views_mut(&mut z), views_mut(&mut a));
                self.forward_rows(p, 0..n, true, &mut zv, &mut av, &mut g_out.view_mut())?
            }
            Some(mid) => {
                let ((mut z0, mut z1), (mut a0, mut a1)) =
                    (split_views(&mut z, mid), split_views(&mut a, mid));
                let (mut g0, mut g1) = g_out.view_mut().split_at(Axis(0), mid);
                let (s0, s1) = rayon::join(
                    || self.forward_rows(p, 0..mid, false, &mut z0, &mut a0, &mut g0),
                    || self.forward_rows(p, mid..n, false, &mut z1, &mut a1, &mut g1),
                );
                s0? + s1?
            }
        };
        Ok(Forward { z, a, loss: self.finish_loss(sum), g_out })
    }

    /// The forward pass at a flat point (checked).
    fn forward_at(&self, w: ArrayView1<'_, f64>) -> Result<Forward> {
        self.check_point(&w)?;
        match w.as_slice() {
            Some(ws) => self.forward(&self.params_at(ws)?),
            None => self.forward(&self.params_at(&w.to_vec())?),
        }
    }

    /// Hands a forward pass's buffers back to the pool.
    fn recycle_forward(&self, fw: Forward) {
        fw.z.into_iter().chain(fw.a).for_each(|m| self.pool.recycle(m));
        self.pool.recycle(fw.g_out);
    }

    /// The loss from the sum of [`Self::head_value_grad`]'s parts.
    fn finish_loss(&self, sum: f64) -> f64 {
        let n = self.x.nrows() as f64;
        let nt = n * self.model.outputs() as f64;
        match &self.head {
            Head::SquaredError => 0.5 * sum / n,
            Head::Mse | Head::BceLogits => sum / nt,
            Head::CrossEntropy(_) => sum / n,
        }
    }

    /// For the samples `rows` with outputs `o`: the sum of their per-sample losses (unscaled:
    /// see [`Self::finish_loss`]), and the gradient of the whole loss w.r.t. their outputs
    /// into `g`.
    fn head_value_grad(
        &self,
        o: ArrayView2<'_, f64>,
        rows: Range<usize>,
        g: &mut ArrayViewMut2<'_, f64>,
    ) -> f64 {
        let n = self.x.nrows();
        let t = o.ncols();
        let nf = n as f64;
        let nt = (n * t) as f64;
        let y = self.y.slice(s![rows.clone(), ..]);
        let mut sum = 0.0;
        match &self.head {
            Head::SquaredError => {
                ndarray::Zip::from(g).and(&o).and(&y).for_each(|g, &o, &y| {
                    let r = o - y;
                    sum += r * r;
                    *g = r / nf;
                });
            }
            Head::Mse => {
                ndarray::Zip::from(g).and(&o).and(&y).for_each(|g, &o, &y| {
                    let r = o - y;
                    sum += r * r;
                    *g = r * (2.0 / nt);
                });
            }
            Head::BceLogits => {
                // ℓ(o, y) = max(o, 0) − o·y + ln(1 + e^−|o|),  ∂ℓ/∂o = σ(o) − y
                ndarray::Zip::from(g).and(&o).and(&y).for_each(|g, &o, &y| {
                    sum += o.max(0.0) - o * y + (-o.abs()).exp().ln_1p();
                    *g = (stable_sigmoid(o) - y) / nt;
                });
            }
            Head::CrossEntropy(labels) => {
                // ℓ = logsumexp(o) − o_y,  ∂ℓ/∂o = softmax(o) − onehot(y)
                g.assign(&softmax(o));
                for (i, &c) in labels[rows].iter().enumerate() {
                    let row = o.row(i);
                    let m = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                    let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                    sum += lse - row[c];
                    g[[i, c]] -= 1.0;
                }
                g.mapv_inplace(|v| v / nf);
            }
        }
        sum
    }

    /// Backward pass over the samples `rows`: their part of the gradient, in the flat order,
    /// into `grad` (every entry overwritten). G_Zₗ = G_Aₗ ⊙ f'(Zₗ) overwrites G_Aₗ.
    ///
    /// ∇Wₗ = G_Zₗᵀ Aₗ₋₁ takes G_Zₗᵀ as an explicit row-major copy: faer runs this K = n product
    /// at ~75 GFLOP/s on one core from a row-major left operand, ~53 from the transposed view
    /// (its column stride, 256 doubles, is a power of two), and the copy costs far less.
    #[allow(clippy::too_many_arguments)]
    fn backward_rows(
        &self,
        p: &Params<'_>,
        rows: Range<usize>,
        par: bool,
        z: &[ArrayViewMut2<'_, f64>],
        a: &[ArrayViewMut2<'_, f64>],
        g_out: ArrayView2<'_, f64>,
        grad: &mut [f64],
    ) -> Result<()> {
        let layers = &self.model.layers;
        let m = rows.len();
        let mut gz = self.pool.scratch(m, g_out.ncols());
        gz.assign(&g_out);
        for l in (0..layers.len()).rev() {
            let layer = &layers[l];
            if !self.linear_top(l) {
                let zl = if self.keeps_z(l) { z[l].view() } else { a[l].view() };
                scale_by_derivative(&mut gz, zl, a[l].view(), layer.activation)?;
            }
            let input = if l == 0 { self.x.slice(s![rows.clone(), ..]) } else { a[l - 1].view() };
            let slot = self.slots[l];
            let (out, inp) = layer.weight.dim();
            {
                let gw =
                    ArrayViewMut2::from_shape((out, inp), &mut grad[slot.weight..slot.weight + out * inp])
                        .map_err(|e| Error::shape("backward", e.to_string()))?;
                let gzt = transposed(&self.pool, &gz, par)?;
                gemm(par, gw, false, 1.0, gzt.view(), input)?;
                self.pool.recycle(gzt);
            }
            if let Some(b) = slot.bias {
                grad[b..b + out].iter_mut().zip(&gz.sum_axis(Axis(0))).for_each(|(g, s)| *g = *s);
            }
            if l > 0 {
                let mut next = self.pool.scratch(m, inp);
                gemm(par, next.view_mut(), false, 1.0, gz.view(), p.weight[l])?;
                self.pool.recycle(std::mem::replace(&mut gz, next));
            }
        }
        self.pool.recycle(gz);
        Ok(())
    }

    /// Whether layer l's activation is folded into the loss head (or is the identity), so
    /// f' = 1 and f'' = 0 there.
    fn linear_top(&self, l: usize) -> bool {
        l + 1 == self.model.layers.len() && matches!(self.head, Head::BceLogits)
    }
}

fn softmax(o: ArrayView2<'_, f64>) -> Array2<f64> {
    let mut p = o.to_owned();
    for mut row in p.rows_mut() {
        let m = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - m).exp());
        let s = row.sum();
        row /= s;
    }
    p
}

/// Borrowed weights (out×in) and biases of every layer at a point.
struct Params<'p> {
    weight: Vec<ArrayView2<'p, f64>>,
    bias: Vec<Option<ArrayView1<'p, f64>>>,
}

/// `len` zeros, written on two threads when long: a fresh gradient of 2·10⁶ weights is a
/// memory-bound 17 MB pass (`perf`: the single-thread memset was 6 % of the gradient).
fn zeroed(len: usize) -> Vec<f64> {
    if len < LONG_VECTOR || rayon::current_num_threads() < 2 {
        return vec![0.0; len];
    }
    let mut v = Vec::with_capacity(len);
    let (a, b) = v.spare_capacity_mut()[..len].split_at_mut(len / 2);
    let zero = std::mem::MaybeUninit::new(0.0);
    crate::parallel::join(|| a.fill(zero), || b.fill(zero));
    // SAFETY: the capacity is at least `len`, and its first `len` entries were all just written.
    unsafe { v.set_len(len) };
    v
}

/// Aᵀ as a row-major matrix from the pool.
fn transposed(pool: &Pool, a: &Array2<f64>, par: bool) -> Result<Array2<f64>> {
    let (rows, cols) = a.dim();
    let mut t = pool.scratch(cols, rows);
    let (Some(src), Some(dst)) = (a.as_slice(), t.as_slice_mut()) else {
        return Err(Error::shape("transpose", "non-contiguous buffer"));
    };
    transpose_into(src, rows, cols, dst, par);
    Ok(t)
}

/// gz ⊙= f'(Z) elementwise, one monomorphised loop per activation (vectorised for sigmoid and
/// tanh, which need only A).
fn scale_by_derivative(
    gz: &mut Array2<f64>,
    z: ArrayView2<'_, f64>,
    a: ArrayView2<'_, f64>,
    f: Activation,
) -> Result<()> {
    let (Some(g), Some(zs), Some(as_)) = (gz.as_slice_mut(), z.as_slice(), a.as_slice()) else {
        return Err(Error::shape("backward", "non-contiguous buffer"));
    };
    vectorized(
        #[inline(always)]
        || match f {
            Activation::Sigmoid => g.iter_mut().zip(as_).for_each(|(g, &a)| *g *= a * (1.0 - a)),
            Activation::Tanh => g.iter_mut().zip(as_).for_each(|(g, &a)| *g *= 1.0 - a * a),
            Activation::Identity => {}
            _ => g.iter_mut().zip(zs).zip(as_).for_each(|((g, &z), &a)| *g *= f.derivative(z, a)),
        },
    );
    Ok(())
}

/// c = a·b (or c += a·b), through the pool's threads when `par`, else on this thread.
fn gemm(
    par: bool,
    c: ArrayViewMut2<'_, f64>,
    accumulate: bool,
    alpha: f64,
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
) -> Result<()> {
    if par { gemm_into(c, accumulate, alpha, a, b) } else { gemm_into_seq(c, accumulate, alpha, a, b) }
}

/// A = f(A + 1bᵀ) in place (n rows of w), through the training code's activation pass. When not
/// `par` it goes in blocks below that pass's parallel threshold, so it stays on this thread.
fn activate(buf: &mut [f64], n: usize, w: usize, bias: Option<&[f64]>, f: Activation, par: bool) {
    if par || w == 0 {
        bias_activation(buf, n, w, bias, f);
        return;
    }
    let rows = ((PARALLEL_ELEMS - 1) / w).max(1);
    for block in buf[..n * w].chunks_mut(rows * w) {
        bias_activation(block, block.len() / w, w, bias, f);
    }
}

/// a + b elementwise into a new vector, in two halves on two threads (each entry written once:
/// no zeroing pass first).
fn sum_halves(a: &[f64], b: &[f64]) -> Vec<f64> {
    use rayon::prelude::*;
    let mut out = Vec::new();
    a.par_iter()
        .zip(b)
        .with_min_len(a.len().div_ceil(2).max(1))
        .map(|(a, b)| a + b)
        .collect_into_vec(&mut out);
    out
}

/// out = a + b (1×len rows), in two halves on two threads.
fn add_halves(out: &mut [f64], a: &Array2<f64>, b: &Array2<f64>) {
    let (Some(a), Some(b)) = (a.as_slice(), b.as_slice()) else {
        debug_assert!(false, "buffers are contiguous");
        return;
    };
    let add = |o: &mut [f64], a: &[f64], b: &[f64]| {
        vectorized(
            #[inline(always)]
            || o.iter_mut().zip(a).zip(b).for_each(|((o, a), b)| *o = a + b),
        )
    };
    let mid = out.len() / 2;
    let (o0, o1) = out.split_at_mut(mid);
    rayon::join(|| add(o0, &a[..mid], &b[..mid]), || add(o1, &a[mid..], &b[mid..]));
}

/// The rows (samples) `rows` of m.
fn rows_of<'m>(m: &'m Array2<f64>, rows: &Range<usize>) -> ArrayView2<'m, f64> {
    m.slice(s![rows.clone(), ..])
}

/// Mutable views of whole matrices.
fn views_mut(mats: &mut [Array2<f64>]) -> Vec<ArrayViewMut2<'_, f64>> {
    mats.iter_mut().map(|m| m.view_mut()).collect()
}

/// Rows ..mid and mid.. of every matrix.
#[allow(clippy::type_complexity)]
fn split_views(
    mats: &mut [Array2<f64>],
    mid: usize,
) -> (Vec<ArrayViewMut2<'_, f64>>, Vec<ArrayViewMut2<'_, f64>>) {
    mats.iter_mut().map(|m| m.view_mut().split_at(Axis(0), mid)).unzip()
}

/// Rows ..mid and mid.. of every matrix present.
#[allow(clippy::type_complexity)]
fn split_opt_views(
    mats: &mut [Option<Array2<f64>>],
    mid: usize,
) -> (Vec<Option<ArrayViewMut2<'_, f64>>>, Vec<Option<ArrayViewMut2<'_, f64>>>) {
    mats.iter_mut()
        .map(|m| match m {
            Some(m) => {
                let (lo, hi) = m.view_mut().split_at(Axis(0), mid);
                (Some(lo), Some(hi))
            }
            None => (None, None),
        })
        .unzip()
}

struct Forward {
    z: Vec<Array2<f64>>,
    a: Vec<Array2<f64>>,
    loss: f64,
    g_out: Array2<f64>,
}

impl Objective for MlpObjective {
    fn dim(&self) -> usize {
        self.dim
    }

    fn value(&self, w: ArrayView1<'_, f64>) -> Result<f64> {
        let fw = self.forward_at(w)?;
        let loss = fw.loss;
        self.recycle_forward(fw);
        Ok(loss)
    }

    fn value_grad(&self, w: ArrayView1<'_, f64>) -> Result<(f64, Array1<f64>)> {
        self.check_point(&w)?;
        let owned;
        let ws = match w.as_slice() {
            Some(ws) => ws,
            None => {
                owned = w.to_vec();
                &owned
            }
        };
        let p = self.params_at(ws)?;
        let n = self.x.nrows();
        let (mut z, mut a) = (self.z_buffers(), self.layer_buffers());
        let mut g_out = self.pool.scratch(n, self.model.outputs());
        let pass = |rows: Range<usize>,
                    par: bool,
                    z: &mut [ArrayViewMut2<'_, f64>],
                    a: &mut [ArrayViewMut2<'_, f64>],
                    g: &mut ArrayViewMut2<'_, f64>,
                    grad: &mut [f64]| {
            let sum = self.forward_rows(&p, rows.clone(), par, z, a, g)?;
            self.backward_rows(&p, rows, par, z, a, g.view(), grad)?;
            Ok::<_, Error>(sum)
        };
        let (sum, grad) = match self.split() {
            None => {
                let mut grad = zeroed(self.dim);
                let sum = pass(
                    0..n,
                    true,
                    &mut views_mut(&mut z),
                    &mut views_mut(&mut a),
                    &mut g_out.view_mut(),
                    &mut grad,
                )?;
                (sum, grad)
            }
            Some(mid) => {
                // Each half's gradient is a sum over its samples; the two are added in a fixed
                // order (the same result on every run).
                let ((mut z0, mut z1), (mut a0, mut a1)) =
                    (split_views(&mut z, mid), split_views(&mut a, mid));
                let (mut g0, mut g1) = g_out.view_mut().split_at(Axis(0), mid);
                let (mut part0, mut part1) = (self.pool.scratch(1, self.dim), self.pool.scratch(1, self.dim));
                let (Some(p0), Some(p1)) = (part0.as_slice_mut(), part1.as_slice_mut()) else {
                    return Err(Error::shape("gradient", "non-contiguous buffer"));
                };
                let (s0, s1) = rayon::join(
                    || pass(0..mid, false, &mut z0, &mut a0, &mut g0, p0),
                    || pass(mid..n, false, &mut z1, &mut a1, &mut g1, p1),
                );
                let sum = s0? + s1?;
                let grad = sum_halves(p0, p1);
                self.pool.recycle(part0);
                self.pool.recycle(part1);
                (sum, grad)
            }
        };
        z.into_iter().chain(a).chain([g_out]).for_each(|m| self.pool.recycle(m));
        Ok((self.finish_loss(sum), Array1::from(grad)))
    }

    fn curvature(&self, w: ArrayView1<'_, f64>, kind: Curvature) -> Result<Box<dyn SymmetricOperator + '_>> {
        Ok(Box::new(self.curvature_at(w, kind)?))
    }
}

impl MlpObjective {
    /// The curvature operator at w with its forward/backward state cached (concrete type).
    pub fn curvature_at(&self, w: ArrayView1<'_, f64>, kind: Curvature) -> Result<MlpCurvature<'_>> {
        // A pooled copy of w (no fresh pages to fault in per operator); the weights are views
        // of it, unselected biases the model's.
        self.check_point(&w)?;
        let mut w_copy = self.pool.scratch(1, self.dim);
        w_copy.row_mut(0).assign(&w);
        let ws = w_copy.as_slice().ok_or_else(|| Error::shape("curvature", "non-contiguous buffer"))?;
        let p = self.params_at(ws)?;
        let model = &self.model;
        let n = self.x.nrows();
        let nl = model.layers.len();
        // f'(Zₗ) where it is not 1, and G_Aₗ ⊙ f''(Zₗ) where it is not 0 (the Hessian only).
        let (mut d1, mut d2): (Vec<_>, Vec<_>) = model
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let f = layer.activation;
                let o = layer.outputs();
                if self.linear_top(l) || f == Activation::Identity {
                    (None, None)
                } else {
                    let second = kind == Curvature::Hessian
                        && matches!(f, Activation::Sigmoid | Activation::Tanh | Activation::Softplus);
                    (Some(self.pool.scratch(n, o)), second.then(|| self.pool.scratch(n, o)))
                }
            })
            .unzip();
        let (mut z, mut a, mut g_z) = (self.z_buffers(), self.layer_buffers(), self.layer_buffers());
        // The forward pass and the backward pass without the weight gradients: G_Zₗ, f'(Zₗ)
        // and G_Aₗ ⊙ f''(Zₗ), all per sample. G_O goes straight into the top G_Z.
        let pass = |rows: Range<usize>, par: bool, mut v: PassViews<'_>| {
            let top = v.g_z.last_mut().ok_or_else(|| Error::invalid("model", "has no layers"))?;
            self.forward_rows(&p, rows, par, &mut v.z, &mut v.a, top)?;
            self.delta_rows(&p, par, &mut v)
        };
        match self.split() {
            None => {
                let v = PassViews {
                    z: views_mut(&mut z),
                    a: views_mut(&mut a),
                    g_z: views_mut(&mut g_z),
                    d1: d1.iter_mut().map(|m| m.as_mut().map(|m| m.view_mut())).collect(),
                    d2: d2.iter_mut().map(|m| m.as_mut().map(|m| m.view_mut())).collect(),
                };
                pass(0..n, true, v)?;
            }
            Some(mid) => {
                let ((z0, z1), (a0, a1), (g0, g1)) =
                    (split_views(&mut z, mid), split_views(&mut a, mid), split_views(&mut g_z, mid));
                let ((e0, e1), (s0, s1)) = (split_opt_views(&mut d1, mid), split_opt_views(&mut d2, mid));
                let lo = PassViews { z: z0, a: a0, g_z: g0, d1: e0, d2: s0 };
                let hi = PassViews { z: z1, a: a1, g_z: g1, d1: e1, d2: s1 };
                let (r0, r1) = rayon::join(|| pass(0..mid, false, lo), || pass(mid..n, false, hi));
                r0?;
                r1?;
            }
        }
        // The loss head's Hessian in the output, per sample.
        let n = self.x.nrows();
        let t = self.model.outputs();
        let head = match &self.head {
            Head::SquaredError => HeadHessian::Scaled(1.0 / n as f64),
            Head::Mse => HeadHessian::Scaled(2.0 / (n * t) as f64),
            Head::BceLogits => {
                let nt = (n * t) as f64;
                let z = &z[nl - 1];
                HeadHessian::Diagonal(z.mapv(|o| {
                    let p = stable_sigmoid(o);
                    p * (1.0 - p) / nt
                }))
            }
            Head::CrossEntropy(_) => HeadHessian::Softmax(softmax(a[nl - 1].view()), 1.0 / n as f64),
        };
        z.into_iter().for_each(|m| self.pool.recycle(m));
        Ok(MlpCurvature {
            obj: self,
            kind,
            w: w_copy,
            a,
            g_z,
            g_zt: std::sync::OnceLock::new(),
            d1,
            d2,
            head,
            batch_elements: BATCH_ELEMENTS,
            m_elements: M_ELEMENTS,
        })
    }
}

/// One block of samples' rows of the per-sample matrices [`MlpObjective::curvature_at`] fills.
struct PassViews<'b> {
    z: Vec<ArrayViewMut2<'b, f64>>,
    a: Vec<ArrayViewMut2<'b, f64>>,
    g_z: Vec<ArrayViewMut2<'b, f64>>,
    d1: Vec<Option<ArrayViewMut2<'b, f64>>>,
    d2: Vec<Option<ArrayViewMut2<'b, f64>>>,
}

impl MlpObjective {
    /// The backward pass of a block of samples without the weight gradients: g_z[top] holds
    /// G_O on entry; every G_Zₗ = G_Aₗ ⊙ f'(Zₗ) (G_Aₗ₋₁ = G_Zₗ Wₗ), with f'(Zₗ) into d1 and
    /// G_Aₗ ⊙ f''(Zₗ) into d2 where those are kept.
    fn delta_rows(&self, p: &Params<'_>, par: bool, v: &mut PassViews<'_>) -> Result<()> {
        for l in (0..self.model.layers.len()).rev() {
            let f = self.model.layers[l].activation;
            // Z is not kept where f' and f'' are functions of A (they ignore it).
            let (z, a) = (if self.keeps_z(l) { &v.z[l] } else { &v.a[l] }, &v.a[l]);
            let gz = &mut v.g_z[l];
            match (&mut v.d1[l], &mut v.d2[l]) {
                // Sigmoid and tanh: f' and f'' from A in one vectorised sweep (the same
                // products as `Activation::derivative` and `second_derivative`).
                (Some(f1), Some(f2)) if matches!(f, Activation::Sigmoid | Activation::Tanh) => {
                    let (Some(g), Some(d), Some(s), Some(a)) =
                        (gz.as_slice_mut(), f1.as_slice_mut(), f2.as_slice_mut(), a.as_slice())
                    else {
                        return Err(Error::shape("curvature", "non-contiguous buffer"));
                    };
                    let sigmoid = f == Activation::Sigmoid;
                    vectorized(
                        #[inline(always)]
                        || {
                            for (((g, d), s), &a) in g.iter_mut().zip(d.iter_mut()).zip(s.iter_mut()).zip(a) {
                                let (d1, d2) = if sigmoid {
                                    let d1 = a * (1.0 - a);
                                    (d1, d1 * (1.0 - 2.0 * a))
                                } else {
                                    let d1 = 1.0 - a * a;
                                    (d1, -2.0 * a * d1)
                                };
                                *d = d1;
                                *s = *g * d2;
                                *g *= d1;
                            }
                        },
                    );
                }
                (Some(f1), Some(f2)) => {
                    ndarray::Zip::from(gz).and(f1).and(f2).and(z).and(a).for_each(|g, d, s, &z, &a| {
                        *d = f.derivative(z, a);
                        *s = *g * f.second_derivative(z, a);
                        *g *= *d;
                    })
                }
                (Some(f1), None) => ndarray::Zip::from(gz).and(f1).and(z).and(a).for_each(|g, d, &z, &a| {
                    *d = f.derivative(z, a);
                    *g *= *d;
                }),
                _ => {}
            }
            if l > 0 {
                let (below, here) = v.g_z.split_at_mut(l);
                gemm(par, below[l - 1].view_mut(), false, 1.0, here[0].view(), p.weight[l])?;
            }
        }
        Ok(())
    }
}

/// Receives R{G_Zₗ} and R{Aₗ₋₁} of each layer from [`MlpCurvature::r_op`].
type Sink<'s> = dyn FnMut(usize, &Array2<f64>, Option<&Array2<f64>>) -> Result<()> + 's;

/// A batch of directions for the R-op.
enum Directions<'v> {
    /// Arbitrary directions, one per row.
    Dense(ArrayView2<'v, f64>),
    /// Per-sample unit tangents of layer `layer`'s pre-activations: R{Z_layer}[s, :] = e_u for
    /// u ∈ start..start+k and every sample s (the bias direction of unit u, whether or not the
    /// layer has a bias). The exact Hessian is assembled from these (see [`MlpCurvature::to_dense`]).
    Neuron { layer: usize, start: usize, k: usize },
}

impl Directions<'_> {
    fn len(&self) -> usize {
        match self {
            Directions::Dense(v) => v.nrows(),
            Directions::Neuron { k, .. } => *k,
        }
    }
    fn first_layer(&self) -> usize {
        match self {
            Directions::Dense(_) => 0,
            Directions::Neuron { layer, .. } => *layer,
        }
    }
}

enum HeadHessian {
    /// c·I.
    Scaled(f64),
    /// diag(h) per sample (row).
    Diagonal(Array2<f64>),
    /// c·(diag(p) − ppᵀ) per sample: the softmax cross-entropy Hessian in the logits.
    Softmax(Array2<f64>, f64),
}

/// The Hessian or Gauss-Newton operator of an [`MlpObjective`] at a point, with the forward and
/// backward pass cached: each batch of k products costs a few GEMMs of k times a gradient's size.
pub struct MlpCurvature<'a> {
    obj: &'a MlpObjective,
    kind: Curvature,
    /// The point (1×dim): layer l's weights are [`Self::weight`]`(l)`.
    w: Array2<f64>,
    a: Vec<Array2<f64>>,
    g_z: Vec<Array2<f64>>,
    /// G_Zₗᵀ (oₗ×n, row-major) for layers above the first, made by the first product that
    /// needs it (the dense Hessian never does).
    g_zt: std::sync::OnceLock<Vec<Array2<f64>>>,
    /// f'(Zₗ), `None` where it is 1.
    d1: Vec<Option<Array2<f64>>>,
    /// G_Aₗ ⊙ f''(Zₗ), `None` where it is 0 or for the Gauss-Newton matrix.
    d2: Vec<Option<Array2<f64>>>,
    head: HeadHessian,
    /// [`BATCH_ELEMENTS`] and [`M_ELEMENTS`] (smaller in tests, to exercise the chunking).
    batch_elements: usize,
    m_elements: usize,
}

/// Elementwise passes over at least this many numbers split their samples over two threads.
const PAR_ELEMENTS: usize = 1 << 16;

/// Runs `kernel(samples, rows)` on the sample range 0..n and its rows of `out` (`per_sample`
/// numbers each), in two halves on two threads when `par` and the pass covers at least
/// [`PAR_ELEMENTS`] numbers.
fn split_samples(
    par: bool,
    out: &mut [f64],
    n: usize,
    per_sample: usize,
    kernel: impl Fn(std::ops::Range<usize>, &mut [f64]) + Sync,
) {
    if par && n >= 2 && n * per_sample >= PAR_ELEMENTS {
        let mid = n / 2;
        let (lo, hi) = out.split_at_mut(mid * per_sample);
        rayon::join(|| kernel(0..mid, lo), || kernel(mid..n, hi));
    } else {
        kernel(0..n, out);
    }
}

/// rows (i, j) of an (n·k)×w matrix ⊙= m[i, :] (n×w), broadcast over the k directions.
fn mul_broadcast(par: bool, r: &mut Array2<f64>, m: ArrayView2<'_, f64>, k: usize) {
    let w = m.ncols();
    let (Some(rs), Some(ms)) = (r.as_slice_mut(), m.as_slice()) else {
        debug_assert!(false, "buffers are contiguous");
        return;
    };
    let (n, kw) = (ms.len() / w.max(1), k * w);
    debug_assert_eq!(rs.len(), n * kw);
    split_samples(par, rs, n, kw, |range, rs| {
        let ms = &ms[range.start * w..range.end * w];
        vectorized(
            #[inline(always)]
            || {
                for (mrow, rblock) in ms.chunks_exact(w).zip(rs.chunks_exact_mut(kw)) {
                    for row in rblock.chunks_exact_mut(w) {
                        row.iter_mut().zip(mrow).for_each(|(r, m)| *r *= m);
                    }
                }
            },
        )
    });
}

/// rows (i, j) of r = r ⊙ m[i, :] + s[i, :] ⊙ x[(i, j), :]: a [`mul_broadcast`] and an
/// [`add_mul_broadcast`] in one sweep (the same operations in the same order).
fn mul_add_broadcast(
    par: bool,
    r: &mut Array2<f64>,
    m: ArrayView2<'_, f64>,
    s: ArrayView2<'_, f64>,
    x: &Array2<f64>,
    k: usize,
) {
    let w = m.ncols();
    let (Some(rs), Some(ms), Some(ss), Some(xs)) =
        (r.as_slice_mut(), m.as_slice(), s.as_slice(), x.as_slice())
    else {
        debug_assert!(false, "buffers are contiguous");
        return;
    };
    let (n, kw) = (ms.len() / w.max(1), k * w);
    debug_assert!(rs.len() == n * kw && xs.len() == n * kw && ss.len() == ms.len());
    split_samples(par, rs, n, kw, |range, rs| {
        let (ms, ss) = (&ms[range.start * w..range.end * w], &ss[range.start * w..range.end * w]);
        let xs = &xs[range.start * kw..range.end * kw];
        vectorized(
            #[inline(always)]
            || {
                for (((mrow, srow), rblock), xblock) in ms
                    .chunks_exact(w)
                    .zip(ss.chunks_exact(w))
                    .zip(rs.chunks_exact_mut(kw))
                    .zip(xs.chunks_exact(kw))
                {
                    for (row, xrow) in rblock.chunks_exact_mut(w).zip(xblock.chunks_exact(w)) {
                        for (((r, m), s), x) in row.iter_mut().zip(mrow).zip(srow).zip(xrow) {
                            *r = *r * m + s * x;
                        }
                    }
                }
            },
        )
    });
}

/// rows (i, j) of dst = x[(i, j), :] ⊙ m[i, :]: a copy and a [`mul_broadcast`] in one sweep.
fn mul_broadcast_into(par: bool, dst: &mut Array2<f64>, x: &Array2<f64>, m: ArrayView2<'_, f64>, k: usize) {
    broadcast_update(par, dst, m, x, k, |d, m, x| *d = x * m);
}

/// rows (i, j) of r += m[i, :] ⊙ x[(i, j), :].
fn add_mul_broadcast(par: bool, r: &mut Array2<f64>, m: ArrayView2<'_, f64>, x: &Array2<f64>, k: usize) {
    broadcast_update(par, r, m, x, k, |r, m, x| *r += m * x);
}

/// `update(r, m[i, j'], x[(i, j), j'])` for every entry r of rows (i, j) of `r`: the sweep of
/// [`mul_broadcast_into`] and [`add_mul_broadcast`], samples split across threads when `par`.
fn broadcast_update(
    par: bool,
    r: &mut Array2<f64>,
    m: ArrayView2<'_, f64>,
    x: &Array2<f64>,
    k: usize,
    update: impl Fn(&mut f64, f64, f64) + Copy + Send + Sync,
) {
    let w = m.ncols();
    let (Some(rs), Some(ms), Some(xs)) = (r.as_slice_mut(), m.as_slice(), x.as_slice()) else {
        debug_assert!(false, "buffers are contiguous");
        return;
    };
    let (n, kw) = (ms.len() / w.max(1), k * w);
    debug_assert!(rs.len() == n * kw && xs.len() == n * kw);
    split_samples(par, rs, n, kw, |range, rs| {
        let ms = &ms[range.start * w..range.end * w];
        let xs = &xs[range.start * kw..range.end * kw];
        vectorized(
            #[inline(always)]
            || {
                for ((mrow, rblock), xblock) in
                    ms.chunks_exact(w).zip(rs.chunks_exact_mut(kw)).zip(xs.chunks_exact(kw))
                {
                    for (row, xrow) in rblock.chunks_exact_mut(w).zip(xblock.chunks_exact(w)) {
                        row.iter_mut().zip(mrow).zip(xrow).for_each(|((r, &m), &x)| update(r, m, x));
                    }
                }
            },
        )
    });
}

/// Completes a matrix of which, by layer blocks, only the upper triangle (and both halves of
/// every diagonal block) was computed: H[p, q] = H[q, p] below the diagonal blocks, ½(H[p, q] +
/// H[q, p]) inside them. Tiled, so the column reads stay in cache.
fn fill_lower_by_symmetry(h: &mut Array2<f64>, layer_of: &[usize]) -> Result<()> {
    const TILE: usize = 64;
    let n = h.nrows();
    let hs = h.as_slice_mut().ok_or_else(|| Error::shape("Hessian", "non-contiguous matrix"))?;
    for i0 in (0..n).step_by(TILE) {
        for j0 in (0..=i0).step_by(TILE) {
            for p in i0..(i0 + TILE).min(n) {
                for q in j0..(j0 + TILE).min(p) {
                    let (pq, qp) = (p * n + q, q * n + p);
                    let v = if layer_of[p] == layer_of[q] { 0.5 * (hs[pq] + hs[qp]) } else { hs[qp] };
                    hs[pq] = v;
                    hs[qp] = v;
                }
            }
        }
    }
    Ok(())
}

fn reshape<'a>(a: &'a mut Array2<f64>, rows: usize, cols: usize) -> Result<ArrayViewMut2<'a, f64>> {
    a.view_mut().into_shape_with_order((rows, cols)).map_err(|e| Error::shape("R-op", e.to_string()))
}

impl MlpCurvature<'_> {
    /// Layer l's weights (out×in) at the operator's point.
    fn weight(&self, l: usize) -> Result<ArrayView2<'_, f64>> {
        let (o, i) = self.obj.model.layers[l].weight.dim();
        let start = self.obj.slots[l].weight;
        let w = self.w.as_slice().ok_or_else(|| Error::shape("curvature", "non-contiguous point"))?;
        ArrayView2::from_shape((o, i), &w[start..start + o * i])
            .map_err(|e| Error::shape("curvature", e.to_string()))
    }

    /// The R-op for a batch of k directions, run backward down to layer `last`: at every layer
    /// l ≥ last it hands `sink(l, R{G_Zₗ}, R{Aₗ₋₁})` — R{G_Zₗ} is (n·k)×oₗ with rows (sample,
    /// direction); R{Aₗ₋₁} is given only where the term G_Zₗᵀ R{Aₗ₋₁} of R{∇Wₗ} is nonzero (the
    /// Hessian, l above the directions' first layer).
    ///
    /// Only the samples `rows` (every line of the pass is per sample); `par`: whether GEMMs and
    /// elementwise passes may use the pool, or stay on this thread.
    fn r_op(
        &self,
        dirs: &Directions<'_>,
        last: usize,
        rows: Range<usize>,
        par: bool,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let k = dirs.len();
        let first = dirs.first_layer();
        let n = rows.len();
        let nl = self.obj.model.layers.len();
        let hessian = self.kind == Curvature::Hessian;
        let slots = &self.obj.slots;
        let input = |l: usize| rows_of(if l == 0 { &self.obj.x } else { &self.a[l - 1] }, &rows);

        // Forward: R{Z}, R{A} for layers first.. (zero before).
        let mut rz: Vec<Array2<f64>> = (0..nl).map(|_| Array2::zeros((0, 0))).collect();
        let mut ra: Vec<Option<Array2<f64>>> = (0..nl).map(|_| None).collect();
        for l in first..nl {
            let layer = &self.obj.model.layers[l];
            let (o, i) = layer.weight.dim();
            // Overwritten by the GEMM from the layer below, or built up from zero at `first`.
            // Dense directions at the first layer: the GEMM below overwrites r; neuron tangents
            // are injected into zeros.
            let dense = matches!(dirs, Directions::Dense(_));
            let mut r = if l > first || dense { self.scratch(n * k, o) } else { self.buffer(n * k, o) };
            if l > first {
                let prev = ra[l - 1].as_ref().unwrap_or(&rz[l - 1]);
                gemm(par, r.view_mut(), false, 1.0, prev.view(), self.weight(l)?.t())?;
            }
            match dirs {
                Directions::Dense(v) if k == 1 && v.row(0).as_slice().is_some() => {
                    // One direction: Vₗᵀ is a view of v, no copy.
                    let vl = v.slice(s![0, slots[l].weight..slots[l].weight + o * i]);
                    let vl =
                        vl.into_shape_with_order((o, i)).map_err(|e| Error::shape("R-op", e.to_string()))?;
                    gemm(par, r.view_mut(), l > first, 1.0, input(l), vl.t())?;
                    if let Some(b) = slots[l].bias {
                        let vb = v.slice(s![0, b..b + o]);
                        r.rows_mut().into_iter().for_each(|mut row| row += &vb);
                    }
                }
                Directions::Dense(v) => {
                    // Aₗ₋₁ Vₗᵀ for all directions: (n×i)·(i×k·o), vwt[c, (j, o)] = V_j[o, c].
                    let mut vwt = self.scratch(i, k * o);
                    for j in 0..k {
                        let vj = v.slice(s![j, slots[l].weight..slots[l].weight + o * i]);
                        let vj = vj
                            .into_shape_with_order((o, i))
                            .map_err(|e| Error::shape("R-op", e.to_string()))?;
                        vwt.slice_mut(s![.., j * o..(j + 1) * o]).assign(&vj.t());
                    }
                    gemm(par, reshape(&mut r, n, k * o)?, l > first, 1.0, input(l), vwt.view())?;
                    self.recycle(vwt);
                    if let Some(b) = slots[l].bias {
                        let vb = v.slice(s![.., b..b + o]);
                        let rs =
                            r.as_slice_mut().ok_or_else(|| Error::shape("R-op", "non-contiguous buffer"))?;
                        for (row_idx, row) in rs.chunks_exact_mut(o).enumerate() {
                            let vbj = vb.row(row_idx % k);
                            row.iter_mut().zip(vbj.iter()).for_each(|(r, v)| *r += v);
                        }
                    }
                }
                Directions::Neuron { layer, start, .. } if *layer == l => {
                    for smp in 0..n {
                        for j in 0..k {
                            r[[smp * k + j, start + j]] = 1.0;
                        }
                    }
                }
                Directions::Neuron { .. } => {}
            }
            if let Some(f1) = &self.d1[l] {
                let mut ral = self.scratch(n * k, o);
                mul_broadcast_into(par, &mut ral, &r, rows_of(f1, &rows), k);
                ra[l] = Some(ral);
            }
            rz[l] = r;
        }

        // Head: R{G_O} = ∇²ℓ(O)·R{O}.
        let top = nl - 1;
        let ro = ra[top].as_ref().unwrap_or(&rz[top]);
        let mut rga = match &self.head {
            HeadHessian::Scaled(c) => {
                let mut r = self.scratch(ro.nrows(), ro.ncols());
                ndarray::Zip::from(&mut r).and(ro).for_each(|r, &v| *r = c * v);
                r
            }
            HeadHessian::Diagonal(h) => {
                let mut r = self.scratch(ro.nrows(), ro.ncols());
                mul_broadcast_into(par, &mut r, ro, rows_of(h, &rows), k);
                r
            }
            HeadHessian::Softmax(p, c) => {
                let mut r = self.copy(ro);
                let t = p.ncols();
                for (row_idx, mut row) in r.rows_mut().into_iter().enumerate() {
                    let pi = p.row(rows.start + row_idx / k);
                    let dot: f64 = pi.iter().zip(row.iter()).map(|(p, u)| p * u).sum();
                    for c_ in 0..t {
                        row[c_] = c * pi[c_] * (row[c_] - dot);
                    }
                }
                r
            }
        };

        // Backward.
        for l in (last..nl).rev() {
            let layer = &self.obj.model.layers[l];
            let (o, i) = layer.weight.dim();
            let mut rgz = rga;
            let s2 = if hessian && l >= first { self.d2[l].as_ref() } else { None };
            match (&self.d1[l], s2) {
                (Some(f1), Some(s2)) => {
                    mul_add_broadcast(par, &mut rgz, rows_of(f1, &rows), rows_of(s2, &rows), &rz[l], k)
                }
                (Some(f1), None) => mul_broadcast(par, &mut rgz, rows_of(f1, &rows), k),
                (None, Some(s2)) => add_mul_broadcast(par, &mut rgz, rows_of(s2, &rows), &rz[l], k),
                (None, None) => {}
            }
            let slot = slots[l];
            let prev =
                if hessian && l > first { Some(ra[l - 1].as_ref().unwrap_or(&rz[l - 1])) } else { None };
            sink(l, &rgz, prev)?;
            if l > last {
                let mut next = self.scratch(n * k, i);
                gemm(par, next.view_mut(), false, 1.0, rgz.view(), self.weight(l)?)?;
                if hessian {
                    match dirs {
                        Directions::Dense(v) if k == 1 => {
                            let vl = v.slice(s![0, slot.weight..slot.weight + o * i]);
                            let vl = vl
                                .into_shape_with_order((o, i))
                                .map_err(|e| Error::shape("R-op", e.to_string()))?;
                            gemm(par, next.view_mut(), true, 1.0, rows_of(&self.g_z[l], &rows), vl)?;
                        }
                        Directions::Dense(v) => {
                            // G_Z Vₗ: (n×o)·(o×k·i), vw[o, (j, c)] = V_j[o, c].
                            let mut vw = self.scratch(o, k * i);
                            for j in 0..k {
                                let vj = v.slice(s![j, slot.weight..slot.weight + o * i]);
                                let vj = vj
                                    .into_shape_with_order((o, i))
                                    .map_err(|e| Error::shape("R-op", e.to_string()))?;
                                vw.slice_mut(s![.., j * i..(j + 1) * i]).assign(&vj);
                            }
                            gemm(
                                par,
                                reshape(&mut next, n, k * i)?,
                                true,
                                1.0,
                                rows_of(&self.g_z[l], &rows),
                                vw.view(),
                            )?;
                        }
                        // Neuron tangents stop at their own layer (`last`), so l > last ≥ layer.
                        Directions::Neuron { .. } => {}
                    }
                }
                rga = next;
            } else {
                rga = Array2::zeros((0, 0));
            }
            self.recycle(rgz);
        }
        rz.into_iter().chain(ra.into_iter().flatten()).for_each(|a| self.recycle(a));
        Ok(())
    }

    /// Writes H·vⱼ's entries for layer l's parameters into row j of `out`:
    /// R{∇Wₗ}ⱼ = R{G_Zₗ}ⱼᵀ Aₗ₋₁ + G_Zₗᵀ R{Aₗ₋₁}ⱼ, R{∇bₗ}ⱼ = 1ᵀR{G_Zₗ}ⱼ.
    ///
    /// From the samples `rows` only (their part of the sums over samples), on this thread
    /// unless `par`.
    fn write_products(
        &self,
        l: usize,
        rows: Range<usize>,
        par: bool,
        rgz: &Array2<f64>,
        prev: Option<&Array2<f64>>,
        out: &mut ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        let n = rows.len();
        let k = rgz.nrows() / n;
        let (o, i) = self.obj.model.layers[l].weight.dim();
        let slot = self.obj.slots[l];
        if k == 1 && out.row(0).as_slice().is_some() {
            // One direction into a contiguous row: the GEMMs write straight into its slot.
            let mut row = out.row_mut(0);
            let dst = row.as_slice_mut().ok_or_else(|| Error::shape("R-op", "non-contiguous buffer"))?;
            let rgw = ArrayViewMut2::from_shape((o, i), &mut dst[slot.weight..slot.weight + o * i])
                .map_err(|e| Error::shape("R-op", e.to_string()))?;
            self.weight_products(l, rows, par, rgz, prev, rgw)?;
        } else {
            let mut rgw = self.scratch(k * o, i);
            self.weight_products(l, rows, par, rgz, prev, rgw.view_mut())?;
            let src = rgw.as_slice().ok_or_else(|| Error::shape("R-op", "non-contiguous buffer"))?;
            for (j, block) in src.chunks_exact(o * i).enumerate() {
                let dst = out.slice_mut(s![j, slot.weight..slot.weight + o * i]);
                dst.into_iter().zip(block).for_each(|(d, s)| *d = *s);
            }
            self.recycle(rgw);
        }
        if let Some(b) = slot.bias {
            let mut sums = Array2::<f64>::zeros((k, o));
            let rs = rgz.as_slice().ok_or_else(|| Error::shape("R-op", "non-contiguous buffer"))?;
            let ss = sums.as_slice_mut().ok_or_else(|| Error::shape("R-op", "non-contiguous buffer"))?;
            for block in rs.chunks_exact(k * o) {
                ss.iter_mut().zip(block).for_each(|(s, r)| *s += r);
            }
            out.slice_mut(s![.., b..b + o]).assign(&sums);
        }
        Ok(())
    }

    /// rgw (rows (j, o) of a (k·o)×i matrix) = R{G_Zₗ}ⱼᵀ Aₗ₋₁ + G_Zₗᵀ R{Aₗ₋₁}ⱼ over the samples
    /// `rows`; the left operands transposed into row-major copies (see
    /// `MlpObjective::backward_rows`; G_Zₗᵀ is cached).
    fn weight_products(
        &self,
        l: usize,
        rows: Range<usize>,
        par: bool,
        rgz: &Array2<f64>,
        prev: Option<&Array2<f64>>,
        mut rgw: ArrayViewMut2<'_, f64>,
    ) -> Result<()> {
        let n = rows.len();
        let (k, o) = (rgz.nrows() / n, rgz.ncols());
        let input = if l == 0 { &self.obj.x } else { &self.a[l - 1] }.slice(s![rows.clone(), ..]);
        let mut rgzt = self.scratch(k * o, n);
        let (Some(src), Some(dst)) = (rgz.as_slice(), rgzt.as_slice_mut()) else {
            return Err(Error::shape("R-op", "non-contiguous buffer"));
        };
        transpose_into(src, n, k * o, dst, par);
        gemm(par, rgw.view_mut(), false, 1.0, rgzt.view(), input)?;
        self.recycle(rgzt);
        if let Some(prev) = prev {
            // + G_Zᵀ R{Aₗ₋₁}ⱼ, per direction: rows (s, j) of R{Aₗ₋₁} are a strided view.
            let g_zt = self
                .g_z_transposed()?
                .get(l.wrapping_sub(1))
                .ok_or_else(|| Error::shape("R-op", "no G_Zᵀ for layer 0"))?;
            for j in 0..k {
                let dst = rgw.slice_mut(s![j * o..(j + 1) * o, ..]);
                gemm(par, dst, true, 1.0, g_zt.slice(s![.., rows.clone()]), prev.slice(s![j..;k, ..]))?;
            }
        }
        Ok(())
    }

    /// H·v (or G·v) as two sample halves side by side (see `MlpObjective::split`): each half's
    /// part of the sums over samples, as 1×dim rows; H·v is their sum.
    fn apply_halves(&self, v: ArrayView1<'_, f64>, mid: usize) -> Result<(Array2<f64>, Array2<f64>)> {
        let v = v.insert_axis(Axis(0));
        check_rows("MlpCurvature::apply", self.obj.dim, &v)?;
        let dirs = Directions::Dense(v);
        let n = self.obj.x.nrows();
        if self.kind == Curvature::Hessian {
            // Made once, before the halves share it.
            self.g_z_transposed()?;
        }
        let (mut p0, mut p1) = (self.scratch(1, self.obj.dim), self.scratch(1, self.obj.dim));
        let half = |rows: Range<usize>, mut part: ArrayViewMut2<'_, f64>| {
            self.r_op(&dirs, 0, rows.clone(), false, &mut |l, rgz, prev| {
                self.write_products(l, rows.clone(), false, rgz, prev, &mut part)
            })
        };
        let (r0, r1) = rayon::join(|| half(0..mid, p0.view_mut()), || half(mid..n, p1.view_mut()));
        r0?;
        r1?;
        Ok((p0, p1))
    }

    /// Aₘ₋₁ (n×i), with a column of ones appended when layer m's bias is selected.
    fn extended_input(&self, m: usize) -> Array2<f64> {
        let input = if m == 0 { self.obj.x.view() } else { self.a[m - 1].view() };
        let (n, i) = input.dim();
        if self.obj.slots[m].bias.is_none() {
            return input.to_owned();
        }
        let mut e = Array2::ones((n, i + 1));
        e.slice_mut(s![.., ..i]).assign(&input);
        e
    }

    /// The block of the dense matrix with rows (m, u, c) for the k tangents u ∈ start.. of layer
    /// m and columns of layer l ≥ m (see [`SymmetricOperator::to_dense`] for the formula).
    #[allow(clippy::too_many_arguments)]
    fn dense_block(
        &self,
        m: usize,
        start: usize,
        rows: ArrayView2<'_, f64>,
        l: usize,
        rgz: &Array2<f64>,
        prev: Option<&Array2<f64>>,
        h: &mut Array2<f64>,
    ) -> Result<()> {
        let n = self.obj.x.nrows();
        let k = rgz.nrows() / n;
        let (ol, il) = self.obj.model.layers[l].weight.dim();
        let (slot_m, slot_l) = (self.obj.slots[m], self.obj.slots[l]);
        let bias_l = slot_l.bias.is_some();
        let wl = il + usize::from(bias_l);
        let cols = ol * wl;
        let input = if l == 0 { self.obj.x.view() } else { self.a[l - 1].view() };
        let input = input.as_slice().ok_or_else(|| Error::shape("Hessian", "non-contiguous input"))?;
        let rgz_s = rgz.as_slice().ok_or_else(|| Error::shape("Hessian", "non-contiguous buffer"))?;
        let prev_s = match prev {
            Some(p) => Some(p.as_slice().ok_or_else(|| Error::shape("Hessian", "non-contiguous buffer"))?),
            None => None,
        };
        let gz = self.g_z[l].as_slice().ok_or_else(|| Error::shape("Hessian", "non-contiguous buffer"))?;
        let (im, wm) = (self.obj.model.layers[m].inputs(), rows.ncols());
        // Tangents per GEMM: M (n × kc·cols) of at most M_ELEMENTS numbers.
        let kc = (self.m_elements / (n * cols)).clamp(1, k);
        let mut j0 = 0;
        while j0 < k {
            let kk = kc.min(k - j0);
            // M[s, (j, p, d)] = R{G_Z}[(s,j), p]·Ã[s, d] + G_Z[s, p]·R{Ã}[(s,j), d]
            let mut mm = self.scratch(n, kk * cols);
            let ms = mm.as_slice_mut().ok_or_else(|| Error::shape("Hessian", "non-contiguous buffer"))?;
            for (smp, mrow) in ms.chunks_exact_mut(kk * cols).enumerate() {
                let a = &input[smp * il..(smp + 1) * il];
                let g = &gz[smp * ol..(smp + 1) * ol];
                for (jj, mj) in mrow.chunks_exact_mut(cols).enumerate() {
                    let row = smp * k + j0 + jj;
                    let r = &rgz_s[row * ol..(row + 1) * ol];
                    let pr = prev_s.map(|p| &p[row * il..(row + 1) * il]);
                    for (p, seg) in mj.chunks_exact_mut(wl).enumerate() {
                        let (rp, gp) = (r[p], g[p]);
                        let (w, b) = seg.split_at_mut(il);
                        match pr {
                            Some(pr) => {
                                w.iter_mut().zip(a).zip(pr).for_each(|((m, a), q)| *m = rp * a + gp * q)
                            }
                            None => w.iter_mut().zip(a).for_each(|(m, a)| *m = rp * a),
                        }
                        if let Some(b) = b.first_mut() {
                            *b = rp;
                        }
                    }
                }
            }
            // C[c, (j, p, d)] = Σₛ Ãₘ₋₁[s, c]·M[s, (j, p, d)]
            let mut c = self.scratch(wm, kk * cols);
            gemm_into(c.view_mut(), false, 1.0, rows.t(), mm.view())?;
            let cs = c.as_slice().ok_or_else(|| Error::shape("Hessian", "non-contiguous buffer"))?;
            let dim = self.obj.dim;
            let hs = h.as_slice_mut().ok_or_else(|| Error::shape("Hessian", "non-contiguous matrix"))?;
            for (ci, crow) in cs.chunks_exact(kk * cols).enumerate() {
                for (jj, src) in crow.chunks_exact(cols).enumerate() {
                    let u = start + j0 + jj;
                    let row = match slot_m.bias {
                        Some(b) if ci == im => b + u,
                        _ => slot_m.weight + u * im + ci,
                    };
                    let dst = &mut hs[row * dim..(row + 1) * dim];
                    match slot_l.bias {
                        // (p, d) row-major is exactly the flat order of layer l's weights.
                        None => dst[slot_l.weight..slot_l.weight + cols].copy_from_slice(src),
                        Some(b) => {
                            for (p, seg) in src.chunks_exact(wl).enumerate() {
                                let w0 = slot_l.weight + p * il;
                                dst[w0..w0 + il].copy_from_slice(&seg[..il]);
                                dst[b + p] = seg[il];
                            }
                        }
                    }
                }
            }
            self.recycle(mm);
            self.recycle(c);
            j0 += kk;
        }
        Ok(())
    }

    /// G_Zₗᵀ for layers l = 1.. (index l − 1), transposed once per operator.
    fn g_z_transposed(&self) -> Result<&Vec<Array2<f64>>> {
        if let Some(t) = self.g_zt.get() {
            return Ok(t);
        }
        let t = self
            .g_z
            .iter()
            .skip(1)
            .map(|g| transposed(&self.obj.pool, g, true))
            .collect::<Result<Vec<_>>>()?;
        // A concurrent first call may have won the race; its copy is the same.
        Ok(self.g_zt.get_or_init(|| t))
    }

    /// A zeroed rows×cols matrix from the objective's pool.
    fn buffer(&self, rows: usize, cols: usize) -> Array2<f64> {
        self.obj.pool.zeros(rows, cols)
    }

    /// A rows×cols matrix with stale contents, to be overwritten completely.
    fn scratch(&self, rows: usize, cols: usize) -> Array2<f64> {
        self.obj.pool.scratch(rows, cols)
    }

    /// A pooled copy of `a`.
    fn copy(&self, a: &Array2<f64>) -> Array2<f64> {
        self.obj.pool.copy(a)
    }

    /// Returns a buffer's allocation to the pool.
    fn recycle(&self, a: Array2<f64>) {
        self.obj.pool.recycle(a)
    }

    /// Directions per batch so that an R-buffer holds at most [`BATCH_ELEMENTS`] numbers.
    fn batch(&self) -> usize {
        let width = self.obj.model.sizes().into_iter().max().unwrap_or(1).max(1);
        (self.batch_elements / (self.obj.x.nrows() * width)).clamp(1, 512)
    }
}

/// The cached state goes back to the objective's pool, for the next point's passes.
impl Drop for MlpCurvature<'_> {
    fn drop(&mut self) {
        let pool = &self.obj.pool;
        self.a.drain(..).chain(self.g_z.drain(..)).for_each(|m| pool.recycle(m));
        self.d1.drain(..).chain(self.d2.drain(..)).flatten().for_each(|m| pool.recycle(m));
        self.g_zt.take().into_iter().flatten().for_each(|m| pool.recycle(m));
        pool.recycle(std::mem::take(&mut self.w));
    }
}

impl SymmetricOperator for MlpCurvature<'_> {
    fn dim(&self) -> usize {
        self.obj.dim
    }

    fn apply(&self, v: ArrayView1<'_, f64>) -> Result<Array1<f64>> {
        match self.obj.split() {
            // The halves' sums added into a new vector (no zeroing pass first).
            Some(mid) => {
                let (p0, p1) = self.apply_halves(v, mid)?;
                let (Some(s0), Some(s1)) = (p0.as_slice(), p1.as_slice()) else {
                    return Err(Error::shape("R-op", "non-contiguous buffer"));
                };
                let out = Array1::from(sum_halves(s0, s1));
                self.recycle(p0);
                self.recycle(p1);
                Ok(out)
            }
            None => {
                let mut out = Array1::from(zeroed(self.obj.dim));
                self.apply_into(v, out.view_mut())?;
                Ok(out)
            }
        }
    }

    /// The products are written straight into `out` (every entry: the layers' slots cover
    /// the flat vector).
    fn apply_into(&self, v: ArrayView1<'_, f64>, mut out: ArrayViewMut1<'_, f64>) -> Result<()> {
        if out.len() != self.obj.dim {
            return Err(Error::shape(
                "MlpCurvature::apply_into",
                format!("the output has {} entries, the operator is {n}×{n}", out.len(), n = self.obj.dim),
            ));
        }
        if let Some(mid) = self.obj.split() {
            let (p0, p1) = self.apply_halves(v, mid)?;
            match out.as_slice_mut() {
                Some(o) => add_halves(o, &p0, &p1),
                None => {
                    ndarray::Zip::from(&mut out).and(p0.row(0)).and(p1.row(0)).for_each(|o, a, b| *o = a + b)
                }
            }
            self.recycle(p0);
            self.recycle(p1);
            return Ok(());
        }
        let v = v.insert_axis(Axis(0));
        check_rows("MlpCurvature::apply_into", self.obj.dim, &v)?;
        let n = self.obj.x.nrows();
        let mut dst = out.insert_axis(Axis(0));
        self.r_op(&Directions::Dense(v), 0, 0..n, true, &mut |l, rgz, prev| {
            self.write_products(l, 0..n, true, rgz, prev, &mut dst)
        })
    }

    fn apply_rows(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        check_rows("MlpCurvature::apply_rows", self.obj.dim, &v)?;
        let k = v.nrows();
        let n = self.obj.x.nrows();
        let mut out = Array2::zeros((k, self.obj.dim));
        let batch = self.batch();
        let mut start = 0;
        while start < k {
            let end = (start + batch).min(k);
            let mut dst = out.slice_mut(s![start..end, ..]);
            let dirs = Directions::Dense(v.slice(s![start..end, ..]));
            self.r_op(&dirs, 0, 0..n, true, &mut |l, rgz, prev| {
                self.write_products(l, 0..n, true, rgz, prev, &mut dst)
            })?;
            start = end;
        }
        Ok(out)
    }

    /// Layer by layer, from per-sample tangents instead of n products with unit vectors.
    ///
    /// The direction e_(u,c) (weight Wₘ[u, c]) enters the R-pass only as R{Zₘ}[s, :] =
    /// Aₘ₋₁[s, c]·e_u, and every later step of the pass is linear within each sample, so all its
    /// R-quantities are Aₘ₋₁[s, c] times those of the tangent T_u: R{Zₘ}[s, :] = e_u (c = "1"
    /// for the bias). With R{G_Zₗ}, R{Aₗ₋₁} taken from T_u, for layers l ≥ m:
    ///
    /// ```text
    /// H[(m,u,c), (l,p,d)] = Σₛ Ãₘ₋₁[s,c] · ( R{G_Zₗ}[s,p]·Ãₗ₋₁[s,d] + G_Zₗ[s,p]·R{Ãₗ₋₁}[s,d] )
    /// ```
    ///
    /// (Ã: A with a column of ones for a selected bias, R{Ã}'s is zero; the G term only for
    /// l > m.) So layer m costs oₘ tangent passes and one GEMM Ãₘ₋₁ᵀ·M per layer l; rows of
    /// earlier layers follow by symmetry. For the 20-50-20-1 model on 256 samples this is 71
    /// tangent passes instead of 2,020 products.
    fn to_dense(&self) -> Result<Array2<f64>> {
        let dim = self.obj.dim;
        let n = self.obj.x.nrows();
        let mut h = Array2::zeros((dim, dim));
        let batch = self.batch();
        for (m, layer) in self.obj.model.layers.iter().enumerate() {
            let units = layer.outputs();
            let rows = self.extended_input(m);
            let mut start = 0;
            while start < units {
                let k = batch.min(units - start);
                let dirs = Directions::Neuron { layer: m, start, k };
                self.r_op(&dirs, m, 0..n, true, &mut |l, rgz, prev| {
                    self.dense_block(m, start, rows.view(), l, rgz, prev, &mut h)
                })?;
                start += k;
            }
            debug_assert_eq!(rows.nrows(), n);
        }
        // Rows of layer l left of its block: H[p, q] = H[q, p] for q in earlier layers; within
        // a diagonal block both halves were computed: average them.
        let layer_of: Vec<usize> = self
            .obj
            .slots
            .iter()
            .enumerate()
            .flat_map(|(l, slot)| std::iter::repeat_n(l, slot.end - slot.weight))
            .collect();
        fill_lower_by_symmetry(&mut h, &layer_of)?;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notebook;
    use Activation::*;
    use rand::rngs::ChaCha8Rng;
    use rand::{RngExt, SeedableRng};

    fn random_mlp(sizes: &[usize], acts: &[Activation], bias: bool, seed: u64) -> Mlp<f64> {
        let mut m = Mlp::<f64>::zeros(sizes, acts, bias).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for l in &mut m.layers {
            let scale = 1.5 / (l.inputs() as f64).sqrt();
            l.weight.mapv_inplace(|_| scale * (2.0 * rng.random::<f64>() - 1.0));
            if let Some(b) = &mut l.bias {
                b.mapv_inplace(|_| 0.5 * (2.0 * rng.random::<f64>() - 1.0));
            }
        }
        m
    }

    fn random_matrix(n: usize, d: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_simple_fn((n, d), || 2.0 * rng.random::<f64>() - 1.0)
    }

    fn targets(loss: Loss, n: usize, t: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match loss {
            Loss::CrossEntropy => {
                Array2::from_shape_simple_fn((n, 1), || (rng.random::<u32>() % t as u32) as f64)
            }
            Loss::Bce => Array2::from_shape_simple_fn((n, t), || rng.random::<f64>()),
            _ => Array2::from_shape_simple_fn((n, t), || 2.0 * rng.random::<f64>() - 1.0),
        }
    }

    /// Every architecture × loss × selection the tests sweep.
    fn cases() -> Vec<(MlpObjective, &'static str)> {
        let archs: [(&[usize], &[Activation]); 4] = [
            (&[3, 4, 2], &[Sigmoid, Identity]),
            (&[3, 5, 4, 2], &[Tanh, Softplus, Sigmoid]),
            (&[2, 6, 3], &[LeakyRelu, Identity]),
            (&[4, 3, 3, 3], &[Sigmoid, Tanh, Identity]),
        ];
        let mut out = Vec::new();
        for (a, (sizes, acts)) in archs.iter().enumerate() {
            for loss in Loss::ALL {
                if loss == Loss::Bce && !matches!(acts.last(), Some(Sigmoid | Identity)) {
                    continue;
                }
                for sel in [ParamSelection::Weights, ParamSelection::All] {
                    let m = random_mlp(sizes, acts, true, a as u64);
                    let t = *sizes.last().unwrap();
                    let x = random_matrix(7, sizes[0], 10 + a as u64);
                    let y = targets(loss, 7, t, 20 + a as u64);
                    let obj = MlpObjective::new(&m, x.view(), y.view(), loss).unwrap().params(sel);
                    out.push((obj, loss.name()));
                }
            }
        }
        out
    }

    fn fd_gradient(obj: &MlpObjective, w: &Array1<f64>) -> Array1<f64> {
        let h = 1e-6;
        Array1::from_iter((0..w.len()).map(|i| {
            let mut p = w.clone();
            p[i] += h;
            let mut m = w.clone();
            m[i] -= h;
            (obj.value(p.view()).unwrap() - obj.value(m.view()).unwrap()) / (2.0 * h)
        }))
    }

    #[test]
    fn gradient_matches_central_differences_of_the_loss() {
        for (obj, name) in cases() {
            let w = obj.initial();
            let (_, g) = obj.value_grad(w.view()).unwrap();
            let fd = fd_gradient(&obj, &w);
            let err = (&g - &fd).iter().fold(0.0f64, |a, v| a.max(v.abs()));
            assert!(err < 1e-8, "{name}: max |grad − fd| = {err:e}");
        }
    }

    #[test]
    fn loss_and_gradient_match_the_training_code() {
        for (obj, name) in cases() {
            let w = obj.initial();
            let (l, g) = obj.value_grad(w.view()).unwrap();
            let (l2, g2) = obj.model.loss_and_grad(obj.loss, obj.x.view(), obj.y.view()).unwrap();
            let g2 = g2.flat(obj.selection());
            assert!((l - l2).abs() <= 1e-14 * l.abs().max(1.0), "{name}: {l} vs {l2}");
            let err = (&g - &g2).iter().fold(0.0f64, |a, v| a.max(v.abs()));
            assert!(err < 1e-14, "{name}: {err:e}");
        }
    }

    #[test]
    fn hessian_is_symmetric_and_matches_central_differences_of_gradients() {
        for (obj, name) in cases() {
            let w = obj.initial();
            let h = obj.hessian(w.view()).unwrap();
            let asym = (&h - &h.t()).iter().fold(0.0f64, |a, v| a.max(v.abs()));
            assert_eq!(asym, 0.0, "{name}");
            let eps = 1e-5;
            for i in 0..w.len() {
                let mut p = w.clone();
                p[i] += eps;
                let mut m = w.clone();
                m[i] -= eps;
                let col =
                    (obj.value_grad(p.view()).unwrap().1 - obj.value_grad(m.view()).unwrap().1) / (2.0 * eps);
                let err = (&col - &h.column(i)).iter().fold(0.0f64, |a, v| a.max(v.abs()));
                assert!(err < 1e-7, "{name} {:?} column {i}: {err:e}", obj.selection());
            }
        }
    }

    #[test]
    fn layered_dense_hessian_equals_plain_products_with_unit_vectors() {
        for (obj, name) in cases() {
            let w = obj.initial();
            for kind in [Curvature::Hessian, Curvature::GaussNewton] {
                let op = obj.curvature_at(w.view(), kind).unwrap();
                let fast = op.to_dense().unwrap();
                let eye = Array2::<f64>::eye(obj.dim());
                let plain = op.apply_rows(eye.view()).unwrap();
                let err = (&fast - &plain).iter().fold(0.0f64, |a, v| a.max(v.abs()));
                assert!(err < 1e-13, "{name} {kind}: {err:e}");
            }
        }
    }

    #[test]
    fn dense_hessian_is_the_same_in_small_chunks() {
        // Tangent batches of 1-2 units and M chunks of one tangent: every chunking path.
        for (obj, name) in cases().into_iter().step_by(2) {
            let w = obj.initial();
            for kind in [Curvature::Hessian, Curvature::GaussNewton] {
                let whole = obj.curvature_at(w.view(), kind).unwrap().to_dense().unwrap();
                let mut op = obj.curvature_at(w.view(), kind).unwrap();
                op.batch_elements = 7 * 6 + 1;
                op.m_elements = 1;
                let chunked = op.to_dense().unwrap();
                let err = (&whole - &chunked).iter().fold(0.0f64, |a, v| a.max(v.abs()));
                assert!(err < 1e-14, "{name} {kind}: {err:e}");
                let batch = op.apply_rows(Array2::<f64>::eye(obj.dim()).view()).unwrap();
                let err = (&whole - &batch).iter().fold(0.0f64, |a, v| a.max(v.abs()));
                assert!(err < 1e-13, "{name} {kind}: {err:e}");
            }
        }
    }

    #[test]
    fn batched_products_equal_single_products() {
        for (obj, name) in cases().into_iter().step_by(3) {
            let w = obj.initial();
            let v = random_matrix(5, obj.dim(), 99);
            let op = obj.curvature(w.view(), Curvature::Hessian).unwrap();
            let batch = op.apply_rows(v.view()).unwrap();
            for j in 0..5 {
                let single = obj.hvp(w.view(), v.row(j)).unwrap();
                let err = (&single - &batch.row(j)).iter().fold(0.0f64, |a, v| a.max(v.abs()));
                assert!(err < 1e-13, "{name}: {err:e}");
            }
        }
    }

    #[test]
    fn single_direction_products_are_rows_of_the_plain_dense_matrix() {
        // apply (one direction: views of v, cached G_Zᵀ, transposed copies) against
        // apply_rows(I) through the batched path, for every case and both curvatures.
        for (obj, name) in cases() {
            let w = obj.initial();
            for kind in [Curvature::Hessian, Curvature::GaussNewton] {
                let op = obj.curvature_at(w.view(), kind).unwrap();
                let dense = op.apply_rows(Array2::<f64>::eye(obj.dim()).view()).unwrap();
                let v = random_matrix(1, obj.dim(), 41).row(0).to_owned();
                let hv = op.apply(v.view()).unwrap();
                let err = (&hv - &dense.dot(&v)).iter().fold(0.0f64, |a, x| a.max(x.abs()));
                assert!(err < 1e-13, "{name} {kind}: {err:e}");
                // Into a strided, stale destination: every entry is overwritten.
                let mut buf = Array2::from_elem((obj.dim(), 2), f64::NAN);
                op.apply_into(v.view(), buf.column_mut(1)).unwrap();
                assert_eq!(buf.column(1), hv);
                assert!(op.apply_into(v.view(), Array1::zeros(obj.dim() + 1).view_mut()).is_err());
            }
        }
    }

    #[test]
    fn sample_halves_side_by_side_equal_the_whole_batch() {
        // The split passes (two sample halves, one thread each, sums added) against the plain
        // ones, for every case; and the split results are the same run to run.
        let threads = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        threads.install(|| {
            let max_diff =
                |a: &Array1<f64>, b: &Array1<f64>| (a - b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (obj, name) in cases() {
                let mut halves = obj.clone();
                halves.split_work = 0;
                assert!(obj.split().is_none() && halves.split() == Some(3), "{name}");
                let w = obj.initial();
                let (l, g) = obj.value_grad(w.view()).unwrap();
                let (l2, g2) = halves.value_grad(w.view()).unwrap();
                assert!((l - l2).abs() <= 1e-15 * l.abs().max(1.0), "{name}: {l} vs {l2}");
                assert!((halves.value(w.view()).unwrap() - l2).abs() <= 1e-15 * l.abs().max(1.0), "{name}");
                assert!(max_diff(&g, &g2) < 1e-15, "{name}: {:e}", max_diff(&g, &g2));
                assert_eq!(halves.value_grad(w.view()).unwrap(), (l2, g2), "{name}");
                let v = random_matrix(1, obj.dim(), 43).row(0).to_owned();
                for kind in [Curvature::Hessian, Curvature::GaussNewton] {
                    let (op, op2) = (
                        obj.curvature_at(w.view(), kind).unwrap(),
                        halves.curvature_at(w.view(), kind).unwrap(),
                    );
                    let err = (&op.to_dense().unwrap() - &op2.to_dense().unwrap())
                        .iter()
                        .fold(0.0f64, |m, v| m.max(v.abs()));
                    assert!(err < 1e-14, "{name} {kind}: dense {err:e}");
                    let (hv, hv2) = (op.apply(v.view()).unwrap(), op2.apply(v.view()).unwrap());
                    assert!(max_diff(&hv, &hv2) < 1e-13, "{name} {kind}: {:e}", max_diff(&hv, &hv2));
                    assert_eq!(op2.apply(v.view()).unwrap(), hv2, "{name} {kind}");
                    let mut buf = Array2::from_elem((obj.dim(), 2), f64::NAN);
                    op2.apply_into(v.view(), buf.column_mut(1)).unwrap();
                    assert_eq!(buf.column(1), hv2, "{name} {kind}");
                }
                assert_eq!(halves.hvp(w.view(), v.view()).unwrap(), halves.hvp(w.view(), v.view()).unwrap());
            }
        });
    }

    #[test]
    fn gauss_newton_is_positive_semidefinite_and_equals_the_hessian_for_linear_models() {
        for (obj, name) in cases() {
            let g = obj.gauss_newton(obj.initial().view()).unwrap();
            let e = crate::curvature::eigh(g.view()).unwrap();
            let min = e.values.iter().copied().fold(f64::INFINITY, f64::min);
            assert!(min > -1e-12 * e.values[0].abs().max(1.0), "{name}: λ_min = {min:e}");
        }
        let m = random_mlp(&[3, 2], &[Identity], true, 5);
        let x = random_matrix(9, 3, 6);
        let y = targets(Loss::CrossEntropy, 9, 2, 7);
        let obj = MlpObjective::new(&m, x.view(), y.view(), Loss::CrossEntropy)
            .unwrap()
            .params(ParamSelection::All);
        let w = obj.initial();
        let d = &obj.hessian(w.view()).unwrap() - &obj.gauss_newton(w.view()).unwrap();
        assert!(d.iter().all(|v| v.abs() < 1e-15));
    }

    fn notebook_model() -> Mlp<f64> {
        let w = notebook::Weights::notebook();
        let mut m = Mlp::<f64>::zeros(&[4, 5, 1], &[Sigmoid, Sigmoid], true).unwrap();
        m.layers[0].weight = w.w_1.t().to_owned();
        m.layers[1].weight = w.w_2.clone().insert_axis(Axis(0));
        m
    }

    #[test]
    fn matches_notebook_gradients_from_the_hand_derived_trace() {
        let m = notebook_model();
        let x = notebook::notebook_x().insert_axis(Axis(0));
        let y = ndarray::array![[notebook::NOTEBOOK_Y]];
        let obj = MlpObjective::new(&m, x.view(), y.view(), Loss::SquaredError).unwrap();
        let (loss, g) = obj.value_grad(obj.initial().view()).unwrap();
        let tr = notebook::trace(
            notebook::NOTEBOOK_Y,
            notebook::notebook_x().view(),
            &notebook::Weights::notebook(),
        )
        .unwrap();
        assert!((loss - tr.loss).abs() < 1e-16);
        for k in 0..5 {
            for d in 0..4 {
                assert!((g[k * 4 + d] - tr.gradients.w_1[[d, k]]).abs() < 1e-17);
            }
            assert!((g[20 + k] - tr.gradients.w_2[k]).abs() < 1e-17);
        }
    }

    #[test]
    fn notebook_hessian_matches_hand_derived_second_derivatives() {
        // L = ½(ŷ − y)², ŷ = σ(z₂), z₂ = w₂·σ(z₁), z₁ = W₁ᵀx. With e = ŷ − y, s₂ = σ'(z₂),
        // σ'' = σ'(1 − 2σ), c₂ = ∂δ₂/∂z₂ = s₂² + e·σ''(z₂), δ₂ = e·s₂, uₖ = w₂ₖσ'(z₁ₖ):
        //   ∂²L/∂w₂ₖ∂w₂ₗ       = c₂ x₁ₖ x₁ₗ
        //   ∂²L/∂W₁[d,k]∂w₂ₗ   = c₂ uₖ x_d x₁ₗ + δ₂ [k=l] σ'(z₁ₖ) x_d
        //   ∂²L/∂W₁[d,k]∂W₁[d',k'] = c₂ uₖ uₖ' x_d x_d' + δ₂ w₂ₖ [k=k'] σ''(z₁ₖ) x_d x_d'
        let w = notebook::Weights::notebook();
        let xv = notebook::notebook_x();
        let tr = notebook::trace(notebook::NOTEBOOK_Y, xv.view(), &w).unwrap();
        let s = |a: f64| a * (1.0 - a);
        let s2 = |a: f64| s(a) * (1.0 - 2.0 * a);
        let e = tr.y_hat - notebook::NOTEBOOK_Y;
        let c2 = s(tr.y_hat).powi(2) + e * s2(tr.y_hat);
        let d2 = e * s(tr.y_hat);
        let u: Vec<f64> = (0..5).map(|k| w.w_2[k] * s(tr.x_1[k])).collect();
        let mut expected = Array2::<f64>::zeros((25, 25));
        for p in 0..25 {
            for q in 0..25 {
                expected[[p, q]] = match (p < 20, q < 20) {
                    (true, true) => {
                        let (k, d, k2, d2_) = (p / 4, p % 4, q / 4, q % 4);
                        let diag =
                            if k == k2 { d2 * w.w_2[k] * s2(tr.x_1[k]) * xv[d] * xv[d2_] } else { 0.0 };
                        c2 * u[k] * u[k2] * xv[d] * xv[d2_] + diag
                    }
                    (false, false) => c2 * tr.x_1[p - 20] * tr.x_1[q - 20],
                    (true, false) | (false, true) => {
                        let (wp, vp) = if p < 20 { (p, q) } else { (q, p) };
                        let (k, d, l) = (wp / 4, wp % 4, vp - 20);
                        let diag = if k == l { d2 * s(tr.x_1[k]) * xv[d] } else { 0.0 };
                        c2 * u[k] * xv[d] * tr.x_1[l] + diag
                    }
                };
            }
        }
        let m = notebook_model();
        let x = xv.insert_axis(Axis(0));
        let y = ndarray::array![[notebook::NOTEBOOK_Y]];
        let obj = MlpObjective::new(&m, x.view(), y.view(), Loss::SquaredError).unwrap();
        let h = obj.hessian(obj.initial().view()).unwrap();
        let err = (&h - &expected).iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let scale = expected.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        assert!(err <= 1e-14 * scale, "max error {err:e} (scale {scale:e})");
    }

    #[test]
    fn bad_inputs_are_errors_naming_the_problem() {
        let m = random_mlp(&[3, 2], &[Identity], false, 1);
        let x = random_matrix(4, 3, 2);
        let y = random_matrix(4, 2, 3);
        let short = random_matrix(3, 2, 3);
        assert!(
            MlpObjective::new(&m, x.view(), short.view(), Loss::Mse)
                .unwrap_err()
                .to_string()
                .contains("rows")
        );
        let wide = random_matrix(4, 5, 3);
        assert!(MlpObjective::new(&m, wide.view(), y.view(), Loss::Mse).is_err());
        let mut bad_y = y.clone();
        bad_y[[3, 1]] = f64::INFINITY;
        let err = MlpObjective::new(&m, x.view(), bad_y.view(), Loss::Mse).unwrap_err().to_string();
        assert!(err.contains("row 3"), "{err}");
        let bad_class = ndarray::array![[0.0], [1.0], [2.0], [0.5]];
        let err =
            MlpObjective::new(&m, x.view(), bad_class.view(), Loss::CrossEntropy).unwrap_err().to_string();
        assert!(err.contains("row 2"), "{err}");
        let mut nan = x.clone();
        nan[[1, 2]] = f64::NAN;
        assert!(
            MlpObjective::new(&m, nan.view(), y.view(), Loss::Mse)
                .unwrap_err()
                .to_string()
                .contains("row 1, column 2")
        );
        let relu = random_mlp(&[3, 2], &[Relu], false, 1);
        assert!(MlpObjective::new(&relu, x.view(), y.view(), Loss::Bce).is_err());
        let obj = MlpObjective::new(&m, x.view(), y.view(), Loss::Mse).unwrap();
        assert!(obj.value(Array1::zeros(5).view()).is_err());
        let op = obj.curvature(obj.initial().view(), Curvature::Hessian).unwrap();
        assert!(op.apply_rows(Array2::zeros((1, 5)).view()).is_err());
    }

    #[test]
    fn long_parameter_vectors_are_checked_and_zeroed_on_two_threads() {
        // Past LONG_VECTOR the two halves are checked on two threads.
        let m = random_mlp(&[1024, 512, 2], &[Tanh, Identity], false, 5);
        let (x, y) = (random_matrix(1, 1024, 6), random_matrix(1, 2, 7));
        let obj = MlpObjective::new(&m, x.view(), y.view(), Loss::Mse).unwrap();
        assert!(obj.dim() >= LONG_VECTOR);
        let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for at in [3, obj.dim() / 2 + 3, obj.dim() - 1] {
            for bad in [f64::NAN, f64::NEG_INFINITY] {
                let mut w = obj.initial();
                w[at] = bad;
                let err = two.install(|| obj.value_grad(w.view())).unwrap_err().to_string();
                assert!(err.contains(&format!("element {at} ")), "{err}");
            }
        }
        // The gradient and HVP written into long buffers zeroed on two threads (`zeroed`) equal
        // the one-thread ones.
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let (w, v) = (obj.initial(), random_matrix(1, obj.dim(), 8).row(0).to_owned());
        let both = |pool: &rayon::ThreadPool| {
            pool.install(|| (obj.value_grad(w.view()), obj.hvp(w.view(), v.view())))
        };
        let ((g2, h2), (g1, h1)) = (both(&two), both(&one));
        let ((l2, g2), (l1, g1)) = (g2.unwrap(), g1.unwrap());
        assert!((l2 - l1).abs() <= 1e-12 && (&g2 - &g1).iter().all(|d| d.abs() <= 1e-12));
        let (h2, h1) = (h2.unwrap(), h1.unwrap());
        assert!((&h2 - &h1).iter().all(|d| d.abs() <= 1e-12), "HVP on two threads vs one");
        assert!(zeroed(LONG_VECTOR + 3).iter().all(|&z| z == 0.0));
        assert_eq!(two.install(|| zeroed(LONG_VECTOR + 3)), vec![0.0; LONG_VECTOR + 3]);
    }
}
