//! The notebook's four functions, derived by hand — no autodiff.
//!
//! This is the reference every engine result is checked against. The network is the notebook's
//! one-hidden-layer sigmoid MLP (the derivation is in `docs/derivation.md`):
//!
//! ```text
//! z⁽¹⁾ = xᵀW⁽¹⁾ + b⁽¹⁾      (K)      x⁽¹⁾ = σ(z⁽¹⁾)
//! z⁽²⁾ = w⁽²⁾ᵀx⁽¹⁾ + b⁽²⁾   (scalar)  ŷ = σ(z⁽²⁾)         L = ½(ŷ − y)²
//! ```
//!
//! and the backward pass, in δ notation:
//!
//! ```text
//! δ⁽²⁾ = (ŷ − y)·σ'(z⁽²⁾)             ∂L/∂w⁽²⁾ᵢ = δ⁽²⁾·x⁽¹⁾ᵢ     ∂L/∂b⁽²⁾ = δ⁽²⁾
//! δ⁽¹⁾ⱼ = δ⁽²⁾·w⁽²⁾ⱼ·σ'(z⁽¹⁾ⱼ)          ∂L/∂w⁽¹⁾ᵢⱼ = xᵢ·δ⁽¹⁾ⱼ       ∂L/∂b⁽¹⁾ⱼ = δ⁽¹⁾ⱼ
//! ```
//!
//! ```
//! use backprop::notebook::{simple_backpropagation, simple_feed_forward, Weights};
//! use ndarray::array;
//!
//! let x = array![0.01, 0.02, 0.03, 0.04];
//! let w = Weights::notebook();
//! let y_hat = simple_feed_forward(x.view(), &w).unwrap();
//! assert!((y_hat - 0.93244675427215695).abs() < 1e-15);
//! let g = simple_backpropagation(1.0, x.view(), &w).unwrap();
//! assert!((g.w_2[0] + 0.00223387).abs() < 1e-8);
//! ```

use ndarray::{Array, Array1, Array2, ArrayBase, ArrayView1, ArrayView2, Data, Dimension};
use num_traits::Float;

use crate::{Error, Result};

/// σ(t) = 1/(1 + e⁻ᵗ), evaluated without overflow for every finite `t`.
///
/// For t ≥ 0 it uses 1/(1 + e⁻ᵗ); for t < 0 the equal form eᵗ/(1 + eᵗ), so e^|t| is never
/// formed: σ(−1000) = 0 and σ(1000) = 1 exactly, and the left tail keeps full relative
/// accuracy (σ(−40) = 4.248354255291589e-18, not 0).
///
/// Non-finite inputs follow the limits rather than erroring, so the function stays total:
/// σ(+∞) = 1, σ(−∞) = 0, and σ(NaN) = NaN (a NaN is propagated, never invented; the network
/// functions below reject NaN inputs with an error before they reach σ).
#[inline]
pub fn stable_sigmoid<T: Float>(t: T) -> T {
    if t >= T::zero() {
        T::one() / (T::one() + (-t).exp())
    } else {
        let e = t.exp();
        e / (T::one() + e)
    }
}

/// σ'(t) = σ(t)(1 − σ(t)), evaluated as σ(t)·σ(−t) so both tails keep full relative accuracy
/// (1 − σ(t) would round to 0 for t > 37 in f64). Exactly 0 for |t| ≥ 746 and at ±∞ (never the
/// NaN that ∞·0 would give); NaN for NaN.
#[inline]
pub fn stable_grad_sigmoid<T: Float>(t: T) -> T {
    stable_sigmoid(t) * stable_sigmoid(-t)
}

/// What the notebook's `sigmoid` and `grad_sigmoid` accept: a scalar or any ndarray array.
pub trait Elementwise {
    /// `f64` for a scalar, an owned array of the same shape for an array.
    type Output;
    /// Applies `f` to every element.
    fn apply(self, f: fn(f64) -> f64) -> Self::Output;
}

impl Elementwise for f64 {
    type Output = f64;
    fn apply(self, f: fn(f64) -> f64) -> f64 {
        f(self)
    }
}

impl<S: Data<Elem = f64>, D: Dimension> Elementwise for &ArrayBase<S, D> {
    type Output = Array<f64, D>;
    fn apply(self, f: fn(f64) -> f64) -> Array<f64, D> {
        self.mapv(f)
    }
}

/// The notebook's `sigmoid(t)`: σ(t) = 1/(1 + e⁻ᵗ), for a scalar or elementwise on an array.
///
/// ```
/// use backprop::notebook::sigmoid;
/// assert_eq!(sigmoid(0.0), 0.5);
/// assert_eq!(sigmoid(&ndarray::array![-1000.0, 1000.0]), ndarray::array![0.0, 1.0]);
/// ```
pub fn sigmoid<T: Elementwise>(t: T) -> T::Output {
    t.apply(stable_sigmoid::<f64>)
}

/// The notebook's `grad_sigmoid(t)`: σ'(t) = σ(t)(1 − σ(t)), for a scalar or an array.
pub fn grad_sigmoid<T: Elementwise>(t: T) -> T::Output {
    t.apply(stable_grad_sigmoid::<f64>)
}

/// The notebook's parameter dictionary `W`, plus the optional biases (zero by default).
///
/// `w_1` is D×K and multiplies the input as `xᵀ·w_1`, exactly as in the notebook's
/// `np.ones((4, 5))`; `w_2` has K entries.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    /// First-layer weights, D×K.
    pub w_1: Array2<f64>,
    /// Second-layer weights, K.
    pub w_2: Array1<f64>,
    /// First-layer biases, K (zero unless set).
    pub b_1: Array1<f64>,
    /// Output bias (zero unless set).
    pub b_2: f64,
}

impl Weights {
    /// Weights with zero biases; `w_2` must have as many entries as `w_1` has columns.
    pub fn new(w_1: Array2<f64>, w_2: Array1<f64>) -> Result<Self> {
        let k = w_1.ncols();
        Self::with_biases(w_1, w_2, Array1::zeros(k), 0.0)
    }

    /// Weights and biases, shapes and finiteness checked.
    pub fn with_biases(w_1: Array2<f64>, w_2: Array1<f64>, b_1: Array1<f64>, b_2: f64) -> Result<Self> {
        let w = Weights { w_1, w_2, b_1, b_2 };
        w.validate()?;
        Ok(w)
    }

    /// The notebook's `W`: `w_1 = np.ones((4, 5))`, `w_2 = np.ones(5)`, no biases.
    pub fn notebook() -> Self {
        Weights { w_1: Array2::ones((4, 5)), w_2: Array1::ones(5), b_1: Array1::zeros(5), b_2: 0.0 }
    }

    /// Checks what [`Weights::with_biases`] checks, for weights built by hand through the public
    /// fields: `w_2` and `b_1` have K entries (K = columns of `w_1`) and every value is finite.
    pub fn validate(&self) -> Result<()> {
        let k = self.hidden();
        if self.w_2.len() != k {
            return Err(Error::shape(
                "notebook weights",
                format!("w_1 is {:?} so w_2 needs {k} entries, got {}", self.w_1.shape(), self.w_2.len()),
            ));
        }
        if self.b_1.len() != k {
            return Err(Error::shape(
                "notebook weights",
                format!("w_1 is {:?} so b_1 needs {k} entries, got {}", self.w_1.shape(), self.b_1.len()),
            ));
        }
        check_finite("w_1", self.w_1.iter())?;
        check_finite("w_2", self.w_2.iter())?;
        check_finite("b_1", self.b_1.iter())?;
        check_finite("b_2", std::iter::once(&self.b_2))
    }

    /// Input width D.
    pub fn inputs(&self) -> usize {
        self.w_1.nrows()
    }

    /// Hidden width K.
    pub fn hidden(&self) -> usize {
        self.w_1.ncols()
    }
}

/// The notebook's `x`: `np.array([0.01, 0.02, 0.03, 0.04])`.
pub fn notebook_x() -> Array1<f64> {
    ndarray::array![0.01, 0.02, 0.03, 0.04]
}

/// The notebook's target `y = 1`.
pub const NOTEBOOK_Y: f64 = 1.0;

/// The notebook's expected forward value, with its 17 digits verbatim (the nearest f64 is
/// 0.932446754272157).
#[allow(clippy::excessive_precision)]
pub const EXPECTED_Y_HAT: f64 = 0.932_446_754_272_156_95;

/// The notebook's expected gradient of `w_1` (4×5; every column equal), as printed there.
pub fn expected_grad_w_1() -> Array2<f64> {
    let rows = [-1.06113639e-05, -2.12227277e-05, -3.18340916e-05, -4.24454555e-05];
    Array2::from_shape_fn((4, 5), |(i, _)| rows[i])
}

/// The notebook's expected gradient of `w_2`, as printed there.
pub fn expected_grad_w_2() -> Array1<f64> {
    Array1::from_elem(5, -0.00223387)
}

/// Gradients of the loss with respect to every parameter, in the parameters' shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    /// ∂L/∂w⁽¹⁾, D×K.
    pub w_1: Array2<f64>,
    /// ∂L/∂w⁽²⁾, K.
    pub w_2: Array1<f64>,
    /// ∂L/∂b⁽¹⁾, K.
    pub b_1: Array1<f64>,
    /// ∂L/∂b⁽²⁾.
    pub b_2: f64,
}

/// Every intermediate of one forward and backward pass: what `backprop explain` prints.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// z⁽¹⁾ = xᵀW⁽¹⁾ + b⁽¹⁾.
    pub z_1: Array1<f64>,
    /// x⁽¹⁾ = σ(z⁽¹⁾).
    pub x_1: Array1<f64>,
    /// z⁽²⁾ = w⁽²⁾ᵀx⁽¹⁾ + b⁽²⁾.
    pub z_2: f64,
    /// ŷ = σ(z⁽²⁾).
    pub y_hat: f64,
    /// L = ½(ŷ − y)².
    pub loss: f64,
    /// δ⁽²⁾ = ∂L/∂z⁽²⁾ = (ŷ − y)σ'(z⁽²⁾).
    pub delta_2: f64,
    /// δ⁽¹⁾ = ∂L/∂z⁽¹⁾ = δ⁽²⁾ w⁽²⁾ ⊙ σ'(z⁽¹⁾).
    pub delta_1: Array1<f64>,
    /// The parameter gradients.
    pub gradients: Gradients,
}

fn check_finite<'a>(what: &str, values: impl Iterator<Item = &'a f64>) -> Result<()> {
    for (i, v) in values.enumerate() {
        if !v.is_finite() {
            return Err(Error::non_finite(what, format!("element {i} is {v}")));
        }
    }
    Ok(())
}

/// [`check_finite`] for a slice, fast: a branch-free vectorised test first (a 10,000×4 batch in
/// ~2 µs instead of ~25 µs), the element-by-element search only to name a bad element.
fn check_finite_slice(what: &str, values: &[f64]) -> Result<()> {
    if crate::tensor::all_finite(values) { Ok(()) } else { check_finite(what, values.iter()) }
}

fn check_input(op: &str, x: &ArrayView1<'_, f64>, w: &Weights) -> Result<()> {
    w.validate()?;
    if x.len() != w.inputs() {
        return Err(Error::shape(
            op,
            format!("x has {} entries but w_1 is {:?} (D×K, D = {})", x.len(), w.w_1.shape(), w.inputs()),
        ));
    }
    check_finite("x", x.iter())
}

/// The notebook's `simple_feed_forward(x, W)`: ŷ = σ(w⁽²⁾ᵀσ(xᵀW⁽¹⁾ + b⁽¹⁾) + b⁽²⁾).
pub fn simple_feed_forward(x: ArrayView1<'_, f64>, w: &Weights) -> Result<f64> {
    check_input("simple_feed_forward", &x, w)?;
    let z_1 = x.dot(&w.w_1) + &w.b_1;
    let x_1 = sigmoid(&z_1);
    Ok(stable_sigmoid(x_1.dot(&w.w_2) + w.b_2))
}

/// The full forward and backward pass for one sample `(x, y)`, every intermediate kept.
pub fn trace(y: f64, x: ArrayView1<'_, f64>, w: &Weights) -> Result<Trace> {
    check_input("simple_backpropagation", &x, w)?;
    check_finite("y", std::iter::once(&y))?;
    let z_1 = x.dot(&w.w_1) + &w.b_1;
    let x_1 = sigmoid(&z_1);
    let z_2 = x_1.dot(&w.w_2) + w.b_2;
    let y_hat = stable_sigmoid(z_2);
    let loss = 0.5 * (y_hat - y).powi(2);
    // δ⁽²⁾ = ∂L/∂ŷ · ∂ŷ/∂z⁽²⁾ = (ŷ − y) σ'(z⁽²⁾)
    let delta_2 = (y_hat - y) * stable_grad_sigmoid(z_2);
    // δ⁽¹⁾ⱼ = δ⁽²⁾ w⁽²⁾ⱼ σ'(z⁽¹⁾ⱼ)
    let delta_1 = &w.w_2 * delta_2 * grad_sigmoid(&z_1);
    let grad_w_1 = outer(x, delta_1.view());
    let gradients = Gradients { w_1: grad_w_1, w_2: &x_1 * delta_2, b_1: delta_1.clone(), b_2: delta_2 };
    Ok(Trace { z_1, x_1, z_2, y_hat, loss, delta_2, delta_1, gradients })
}

fn outer(a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>) -> Array2<f64> {
    Array2::from_shape_fn((a.len(), b.len()), |(i, j)| a[i] * b[j])
}

/// The notebook's `simple_backpropagation(y, x, W)`: the gradients of L = ½(ŷ − y)² for one
/// sample, by the hand-derived backward pass.
pub fn simple_backpropagation(y: f64, x: ArrayView1<'_, f64>, w: &Weights) -> Result<Gradients> {
    Ok(trace(y, x, w)?.gradients)
}

/// Batch form: inputs `x` (n×D), targets `y` (n); L = (1/n) Σₛ ½(ŷₛ − yₛ)².
///
/// Returns the loss and its gradients (the mean of the per-sample gradients). The samples are
/// processed in blocks by fused, vectorised loops (structure-of-arrays, 8 samples per AVX-512
/// instruction); the sums run in a fixed order, so the result does not depend on the number of
/// threads.
pub fn batch_backpropagation(
    y: ArrayView1<'_, f64>,
    x: ArrayView2<'_, f64>,
    w: &Weights,
) -> Result<(f64, Gradients)> {
    w.validate()?;
    let n = x.nrows();
    if n == 0 {
        return Err(Error::invalid("x", "the batch is empty"));
    }
    if y.len() != n {
        return Err(Error::shape(
            "batch_backpropagation",
            format!("x has {n} rows but y has {} entries", y.len()),
        ));
    }
    if x.ncols() != w.inputs() {
        return Err(Error::shape(
            "batch_backpropagation",
            format!("x is {:?} but w_1 is {:?} (D×K, D = {})", x.shape(), w.w_1.shape(), w.inputs()),
        ));
    }
    let x = x.as_standard_layout();
    let y = y.as_standard_layout();
    let (Some(xs), Some(ys)) = (x.as_slice(), y.as_slice()) else {
        unreachable!("standard-layout arrays are contiguous slices")
    };
    check_finite_slice("x", xs)?;
    check_finite_slice("y", ys)?;
    let s = batch::Sums::compute(&batch::Params::new(w), xs, ys);
    let (d, k) = (w.inputs(), w.hidden());
    let gradients = Gradients {
        w_1: Array2::from_shape_vec((d, k), s.w_1).unwrap_or_else(|_| unreachable!("D·K sums")),
        w_2: Array1::from(s.w_2),
        b_1: Array1::from(s.b_1),
        b_2: s.b_2,
    };
    Ok((s.loss, gradients))
}

/// Batch forward pass: ŷ for every row of `x` (n×D).
pub fn batch_feed_forward(x: ArrayView2<'_, f64>, w: &Weights) -> Result<Array1<f64>> {
    w.validate()?;
    if x.ncols() != w.inputs() {
        return Err(Error::shape(
            "batch_feed_forward",
            format!("x is {:?} but w_1 is {:?}", x.shape(), w.w_1.shape()),
        ));
    }
    let x = x.as_standard_layout();
    let Some(xs) = x.as_slice() else { unreachable!("standard-layout arrays are contiguous slices") };
    check_finite_slice("x", xs)?;
    let mut y_hat = vec![0.0; x.nrows()];
    batch::feed_forward(&batch::Params::new(w), xs, &mut y_hat);
    Ok(Array1::from(y_hat))
}

/// The batch kernels: blocks of samples in structure-of-arrays layout, so every loop runs over
/// consecutive samples and vectorises (8 samples per AVX-512 instruction).
///
/// A block of B samples is transposed to xᵀ (D×B); then, per hidden unit j, the row
/// x⁽¹⁾ⱼ = σ(Σᵢ W⁽¹⁾ᵢⱼ xᵀᵢ + b⁽¹⁾ⱼ) (B values, in L1), then ŷ = σ(w⁽²⁾ᵀx⁽¹⁾ + b⁽²⁾). The backward
/// pass reuses the block while it is in cache: δ⁽²⁾ = (ŷ − y)ŷ(1 − ŷ)/n,
/// δ⁽¹⁾ⱼ = δ⁽²⁾w⁽²⁾ⱼ · x⁽¹⁾ⱼ(1 − x⁽¹⁾ⱼ) (σ' from the saved outputs: no second exp), and every
/// gradient term (xᵢδ⁽¹⁾ⱼ for ∂W⁽¹⁾ᵢⱼ, x⁽¹⁾ⱼδ⁽²⁾ for ∂w⁽²⁾ⱼ, …) is added elementwise into one
/// accumulator row per parameter, position by position: elementwise loops vectorise reliably,
/// a float reduction does not (the compiler may not reorder the sum). The rows are summed once
/// at the end of a part. σ is [`vmath::sigmoid`]: the scalar stable sigmoid's formulas with a
/// branch-free exp within 1 ulp of libm's.
///
/// Large batches are cut into fixed parts that run on all threads; part sums are added in part
/// order, so the result does not depend on the number of threads.
mod batch {
    use super::Weights;
    use crate::tensor::vmath::{self, sigmoid};

    /// Samples per block: xᵀ, x⁽¹⁾ and the accumulator rows of a block
    /// ((D + K + 1 + D·K + 2K + 2)·B values, 40 KiB for the 4-5-1 net) stay in L1.
    const BLOCK: usize = 128;
    const _: () = assert!(BLOCK.is_multiple_of(W), "accumulator rows are summed W lanes at a time");
    /// Samples per part: the unit of parallel work (~10 µs for the 4-5-1 net; 10 parts for
    /// 10,000 samples, so two threads get equal shares).
    const PART: usize = 8 * BLOCK;
    /// Samples whose sums the forward pass keeps in registers at once (4 AVX-512 vectors: the
    /// loop over the weights is paid once per 32 samples).
    const W: usize = 32;

    /// The weights as contiguous slices.
    pub(super) struct Params {
        d: usize,
        k: usize,
        /// W⁽¹⁾, D×K row-major.
        w_1: Vec<f64>,
        w_2: Vec<f64>,
        b_1: Vec<f64>,
        b_2: f64,
    }

    impl Params {
        pub(super) fn new(w: &Weights) -> Self {
            Params {
                d: w.inputs(),
                k: w.hidden(),
                w_1: w.w_1.iter().copied().collect(),
                w_2: w.w_2.to_vec(),
                b_1: w.b_1.to_vec(),
                b_2: w.b_2,
            }
        }

        /// Sums kept: Σr² (loss), ∂W⁽¹⁾ (D·K, unit by unit: K×D row-major), ∂w⁽²⁾ (K),
        /// ∂b⁽¹⁾ (K), ∂b⁽²⁾.
        fn sums_len(&self) -> usize {
            1 + self.d * self.k + 2 * self.k + 1
        }
    }

    /// One thread's buffers.
    struct Scratch {
        /// xᵀ, D×B.
        xt: Vec<f64>,
        /// x⁽¹⁾, K×B.
        a_1: Vec<f64>,
        /// ŷ, then δ⁽²⁾.
        out: Vec<f64>,
        /// δ⁽¹⁾ⱼ for one j.
        delta_1: Vec<f64>,
        /// One accumulator row of B entries per sum, in [`Params::sums_len`] order; sized by the
        /// first [`part`] (the forward-only pass never needs it).
        acc: Vec<f64>,
    }

    impl Scratch {
        fn new(p: &Params) -> Self {
            Scratch {
                xt: vec![0.0; p.d * BLOCK],
                a_1: vec![0.0; p.k * BLOCK],
                out: vec![0.0; BLOCK],
                delta_1: vec![0.0; BLOCK],
                acc: Vec::new(),
            }
        }
    }

    /// The loss and gradients of a whole batch.
    pub(super) struct Sums {
        pub(super) loss: f64,
        pub(super) w_1: Vec<f64>,
        pub(super) w_2: Vec<f64>,
        pub(super) b_1: Vec<f64>,
        pub(super) b_2: f64,
    }

    impl Sums {
        /// Forward and backward over the batch `x` (n×D row-major), targets `y` (n).
        pub(super) fn compute(p: &Params, x: &[f64], y: &[f64]) -> Sums {
            let n = y.len();
            let inv_n = 1.0 / n as f64;
            let len = p.sums_len();
            let mut partial = vec![0.0; n.div_ceil(PART) * len];
            let parts = partial.chunks_mut(len).zip(x.chunks(PART * p.d).zip(y.chunks(PART)));
            share(p, parts, n > PART, |s, (sums, (xp, yp))| {
                vmath::vectorized(
                    #[inline(always)]
                    || part(p, xp, yp, inv_n, s, sums),
                )
            });
            // Part sums added in part order: the same result on any number of threads.
            let mut total = vec![0.0; len];
            for sums in partial.chunks(len) {
                total.iter_mut().zip(sums).for_each(|(t, &v)| *t += v);
            }
            let (dk, k) = (p.d * p.k, p.k);
            Sums {
                loss: 0.5 * total[0] * inv_n,
                // The accumulators hold ∂W⁽¹⁾ unit by unit (j-major); the result is D×K row-major.
                w_1: (0..dk).map(|ij| total[1 + (ij % k) * p.d + ij / k]).collect(),
                w_2: total[1 + dk..1 + dk + k].to_vec(),
                b_1: total[1 + dk + k..1 + dk + 2 * k].to_vec(),
                b_2: total[1 + dk + 2 * k],
            }
        }
    }

    /// ŷ for every row of `x` (n×D row-major) into `y_hat` (n).
    pub(super) fn feed_forward(p: &Params, x: &[f64], y_hat: &mut [f64]) {
        let parallel = y_hat.len() > PART;
        let parts = y_hat.chunks_mut(PART).zip(x.chunks(PART * p.d));
        share(p, parts, parallel, |s, (yp, xp)| {
            vmath::vectorized(
                #[inline(always)]
                || {
                    for (xb, yb) in xp.chunks(BLOCK * p.d).zip(yp.chunks_mut(BLOCK)) {
                        forward(p, xb, s);
                        yb.copy_from_slice(&s.out[..yb.len()]);
                    }
                },
            )
        });
    }

    /// Runs `work` on every part, on this thread and (if `parallel`) on the other rayon
    /// threads, each taking the next part from a shared queue when it is free.
    ///
    /// Why not `par_iter`: called from outside the pool, rayon parks the caller until the
    /// workers have woken and finished, and wakes it again at the end. Waking a sleeping worker
    /// was measured at 20–40 µs on this VM with the other core idle, and up to milliseconds
    /// with it busy — on a job of ~130 µs. Here the caller starts at once and the workers join
    /// as they wake; a worker that wakes late finds fewer parts or none, so two threads are
    /// never much slower than one (measured +7 µs under load, `par_iter` +14 µs). Each part's
    /// work does not depend on which thread runs it, so neither does the result.
    fn share<I>(p: &Params, parts: I, parallel: bool, work: impl Fn(&mut Scratch, I::Item) + Sync)
    where
        I: Iterator + Send,
        I::Item: Send,
    {
        let queue = std::sync::Mutex::new(parts);
        let next = || queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
        let drain = || {
            let Some(first) = next() else { return };
            let mut s = Scratch::new(p);
            work(&mut s, first);
            while let Some(item) = next() {
                work(&mut s, item);
            }
        };
        let threads = rayon::current_num_threads();
        if parallel && threads == 2 {
            // The second drain goes to a worker kept awake between calls (`crate::parallel`).
            crate::parallel::join(drain, drain);
        } else if parallel && threads > 2 {
            rayon::in_place_scope(|scope| {
                for _ in 1..threads {
                    scope.spawn(|_| drain());
                }
                drain();
            });
        } else {
            drain();
        }
    }

    /// The forward pass of one block (`x`: b ≤ BLOCK rows): xᵀ, x⁽¹⁾ (K×b) and ŷ (b) into `s`.
    ///
    /// Linear parts and σ run as separate passes: one σ is a ~100-cycle chain of dependent
    /// operations (exp's polynomial, the division), and a loop doing nothing else keeps many
    /// independent chains in flight; interleaved with the sums they were latency-bound (the
    /// forward pass ran at half the throughput).
    #[inline(always)]
    fn forward(p: &Params, x: &[f64], s: &mut Scratch) {
        let (d, k) = (p.d, p.k);
        let b = x.len() / d;
        transpose(x, d, &mut s.xt[..d * b]);
        // z⁽¹⁾ⱼ = (Σᵢ xᵢ W⁽¹⁾ᵢⱼ) + b⁽¹⁾ⱼ, summed in the order of x·W⁽¹⁾ + b⁽¹⁾; then x⁽¹⁾ = σ(z⁽¹⁾).
        let xt = &s.xt[..d * b];
        for (j, a) in s.a_1.chunks_exact_mut(b).take(k).enumerate() {
            affine_rows(a, xt, b, d, |i| p.w_1[i * k + j], p.b_1[j]);
        }
        s.a_1[..k * b].iter_mut().for_each(|v| *v = sigmoid(*v));
        // ŷ = σ((Σⱼ x⁽¹⁾ⱼ w⁽²⁾ⱼ) + b⁽²⁾)
        affine_rows(&mut s.out[..b], &s.a_1[..k * b], b, k, |j| p.w_2[j], p.b_2);
        s.out[..b].iter_mut().for_each(|v| *v = sigmoid(*v));
    }

    /// `xt` (D×b) = `x` (b×D)ᵀ. Specialised for small D, where the compiler turns the strided
    /// reads into vector loads and shuffles (a runtime stride gives one scalar move per value).
    #[inline(always)]
    fn transpose(x: &[f64], d: usize, xt: &mut [f64]) {
        #[inline(always)]
        fn fixed<const D: usize>(x: &[f64], xt: &mut [f64]) {
            let b = xt.len() / D;
            let (rows, _) = x.as_chunks::<D>();
            for (i, col) in xt.chunks_exact_mut(b).enumerate() {
                col.iter_mut().zip(rows).for_each(|(c, row)| *c = row[i]);
            }
        }
        match d {
            1 => xt.copy_from_slice(x),
            2 => fixed::<2>(x, xt),
            3 => fixed::<3>(x, xt),
            4 => fixed::<4>(x, xt),
            5 => fixed::<5>(x, xt),
            6 => fixed::<6>(x, xt),
            7 => fixed::<7>(x, xt),
            8 => fixed::<8>(x, xt),
            _ => {
                let b = xt.len() / d;
                for (i, col) in xt.chunks_exact_mut(b).enumerate() {
                    col.iter_mut().zip(x.chunks_exact(d)).for_each(|(c, row)| *c = row[i]);
                }
            }
        }
    }

    /// `out[t] = (Σᵢ wᵢ·rowsᵢ[t]) + bias` for the `m` rows of length `b` in `rows`, [`W`]
    /// entries at a time with the sums kept in registers.
    #[inline(always)]
    fn affine_rows(out: &mut [f64], rows: &[f64], b: usize, m: usize, w: impl Fn(usize) -> f64, bias: f64) {
        let mut oc = out.chunks_exact_mut(W);
        for (c, o) in (&mut oc).enumerate() {
            let mut z = [0.0; W];
            for i in 0..m {
                let wi = w(i);
                let xi = &rows[i * b + c * W..][..W];
                z.iter_mut().zip(xi).for_each(|(zv, &xv)| *zv = xv.mul_add(wi, *zv));
            }
            o.iter_mut().zip(z).for_each(|(ov, zv)| *ov = zv + bias);
        }
        let start = b / W * W;
        for (t, o) in oc.into_remainder().iter_mut().enumerate() {
            *o = (0..m).fold(0.0, |z, i| rows[i * b + start + t].mul_add(w(i), z)) + bias;
        }
    }

    /// Forward and backward over one part (`x`: rows × D, `y`: rows); its sums into `sums`.
    #[inline(always)]
    fn part(p: &Params, x: &[f64], y: &[f64], inv_n: f64, s: &mut Scratch, sums: &mut [f64]) {
        s.acc.clear();
        s.acc.resize(p.sums_len() * BLOCK, 0.0);
        for (xb, yb) in x.chunks(BLOCK * p.d).zip(y.chunks(BLOCK)) {
            block(p, xb, yb, inv_n, s);
        }
        // Each accumulator row summed in a fixed order: [`W`] lanes of vector partial sums
        // (position t into lane t mod W), then the lanes (a scalar chain of BLOCK dependent
        // additions per row took ~10 % of the whole pass).
        for (total, row) in sums.iter_mut().zip(s.acc.chunks_exact(BLOCK)) {
            let (chunks, _) = row.as_chunks::<W>();
            let lanes = chunks.iter().fold([0.0; W], |mut l, c| {
                l.iter_mut().zip(c).for_each(|(lv, &cv)| *lv += cv);
                l
            });
            *total = lanes.iter().sum();
        }
    }

    /// Forward and backward over one block: every gradient term added into its accumulator row.
    #[inline(always)]
    fn block(p: &Params, x: &[f64], y: &[f64], inv_n: f64, s: &mut Scratch) {
        forward(p, x, s);
        let (d, k) = (p.d, p.k);
        let b = y.len();
        let (acc_loss, rest) = s.acc.split_at_mut(BLOCK);
        let (acc_w1, rest) = rest.split_at_mut(d * k * BLOCK);
        let (acc_w2, rest) = rest.split_at_mut(k * BLOCK);
        let (acc_b1, acc_b2) = rest.split_at_mut(k * BLOCK);
        // r = ŷ − y; Σr² (halved and divided by n at the end); δ⁽²⁾ = r·ŷ(1 − ŷ)/n over ŷ.
        let out = &mut s.out[..b];
        for (((o, &yv), l), g) in out.iter_mut().zip(y).zip(&mut acc_loss[..b]).zip(&mut acc_b2[..b]) {
            let r = *o - yv;
            *l += r * r;
            *o = r * (*o * (1.0 - *o)) * inv_n;
            *g += *o;
        }
        let delta_2 = &s.out[..b];
        let (xt, a_1) = (&s.xt[..d * b], &s.a_1[..k * b]);
        // Per hidden unit j one pass over the block: δ⁽¹⁾ⱼ = (δ⁽²⁾ w⁽²⁾ⱼ) · x⁽¹⁾ⱼ(1 − x⁽¹⁾ⱼ) kept in
        // a register, ∂w⁽²⁾ⱼ += x⁽¹⁾ⱼδ⁽²⁾, ∂b⁽¹⁾ⱼ += δ⁽¹⁾ⱼ and ∂W⁽¹⁾ᵢⱼ += xᵢδ⁽¹⁾ⱼ for every i (the
        // D rows of unit j are adjacent). For the usual small D the loop over i is unrolled
        // (D known at compile time): one loop per j instead of D + 1 short ones.
        macro_rules! units {
            ($($dd:literal)*) => {
                match d {
                    $($dd => for j in 0..k { unit::<$dd>(p, j, b, xt, a_1, delta_2, acc_w1, acc_w2, acc_b1) },)*
                    _ => for j in 0..k { unit_any(p, j, b, xt, a_1, delta_2, acc_w1, acc_w2, acc_b1, &mut s.delta_1[..b]) },
                }
            };
        }
        units!(1 2 3 4 5 6 7 8);
    }

    /// The backward pass of hidden unit j for one block, D inputs known at compile time.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn unit<const D: usize>(
        p: &Params,
        j: usize,
        b: usize,
        xt: &[f64],
        a_1: &[f64],
        delta_2: &[f64],
        acc_w1: &mut [f64],
        acc_w2: &mut [f64],
        acc_b1: &mut [f64],
    ) {
        let w2 = p.w_2[j];
        let a = &a_1[j * b..(j + 1) * b];
        let delta_2 = &delta_2[..b];
        let x: [&[f64]; D] = std::array::from_fn(|i| &xt[i * b..(i + 1) * b]);
        let (rows, _) = acc_w1[j * D * BLOCK..(j + 1) * D * BLOCK].as_chunks_mut::<BLOCK>();
        let g: [&mut [f64]; D] = {
            let mut it = rows.iter_mut();
            std::array::from_fn(|_| match it.next() {
                Some(r) => &mut r[..b],
                None => unreachable!("D rows per unit"),
            })
        };
        let g_w2 = &mut acc_w2[j * BLOCK..j * BLOCK + b];
        let g_b1 = &mut acc_b1[j * BLOCK..j * BLOCK + b];
        for t in 0..b {
            let (d2, av) = (delta_2[t], a[t]);
            let dv = d2 * w2 * (av * (1.0 - av));
            g_w2[t] = av.mul_add(d2, g_w2[t]);
            g_b1[t] += dv;
            for i in 0..D {
                g[i][t] = x[i][t].mul_add(dv, g[i][t]);
            }
        }
    }

    /// [`unit`] for any D: δ⁽¹⁾ⱼ into `d1`, then one pass per input.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn unit_any(
        p: &Params,
        j: usize,
        b: usize,
        xt: &[f64],
        a_1: &[f64],
        delta_2: &[f64],
        acc_w1: &mut [f64],
        acc_w2: &mut [f64],
        acc_b1: &mut [f64],
        d1: &mut [f64],
    ) {
        let d = p.d;
        let w2 = p.w_2[j];
        let a = &a_1[j * b..(j + 1) * b];
        let g_w2 = &mut acc_w2[j * BLOCK..j * BLOCK + b];
        let g_b1 = &mut acc_b1[j * BLOCK..j * BLOCK + b];
        for ((((dv, &d2), &av), gw), gb) in d1.iter_mut().zip(delta_2).zip(a).zip(g_w2).zip(g_b1) {
            *dv = d2 * w2 * (av * (1.0 - av));
            *gw = av.mul_add(d2, *gw);
            *gb += *dv;
        }
        for i in 0..d {
            let row = (j * d + i) * BLOCK;
            let g = &mut acc_w1[row..row + b];
            let xi = &xt[i * b..(i + 1) * b];
            g.iter_mut().zip(xi).zip(d1.iter()).for_each(|((gv, &xv), &dv)| *gv = xv.mul_add(dv, *gv));
        }
    }
}

/// The notebook's acceptance measure for the backward pass:
/// Σ (∂L/∂w⁽¹⁾ − expected)² + Σ (∂L/∂w⁽²⁾ − expected)², which the notebook requires < 1e-15.
///
/// Tables of different shapes cannot agree: the result is then +∞ (never a panic).
pub fn squared_error(a: &Gradients, w_1: &Array2<f64>, w_2: &Array1<f64>) -> f64 {
    if a.w_1.shape() != w_1.shape() || a.w_2.len() != w_2.len() {
        return f64::INFINITY;
    }
    (&a.w_1 - w_1).mapv(|d| d * d).sum() + (&a.w_2 - w_2).mapv(|d| d * d).sum()
}

/// The notebook's acceptance threshold for both checks: summed squared error < 1e-15.
pub const TOLERANCE: f64 = 1e-15;

/// The notebook's two checks, run on its own `x`, `W` and `y`: what `backprop notebook` prints.
#[derive(Clone, Debug, PartialEq)]
pub struct Checks {
    /// ŷ from [`simple_feed_forward`].
    pub y_hat: f64,
    /// (ŷ − expected)²; the forward check passes when it is below [`TOLERANCE`].
    pub forward_squared_error: f64,
    /// The gradients from [`simple_backpropagation`].
    pub gradients: Gradients,
    /// [`squared_error`] against the notebook's table; the backward check passes below [`TOLERANCE`].
    pub gradient_squared_error: f64,
}

impl Checks {
    /// Whether the forward value passes the notebook's check.
    pub fn forward_passed(&self) -> bool {
        self.forward_squared_error < TOLERANCE
    }

    /// Whether the gradient table passes the notebook's check.
    pub fn backward_passed(&self) -> bool {
        self.gradient_squared_error < TOLERANCE
    }

    /// Both checks pass.
    pub fn passed(&self) -> bool {
        self.forward_passed() && self.backward_passed()
    }
}

/// Runs the notebook's two checks exactly as its cells do.
///
/// ```
/// let checks = backprop::notebook::run_checks().unwrap();
/// assert!(checks.passed());
/// ```
pub fn run_checks() -> Result<Checks> {
    let x = notebook_x();
    let w = Weights::notebook();
    let y_hat = simple_feed_forward(x.view(), &w)?;
    let gradients = simple_backpropagation(NOTEBOOK_Y, x.view(), &w)?;
    Ok(Checks {
        y_hat,
        forward_squared_error: (y_hat - EXPECTED_Y_HAT).powi(2),
        gradient_squared_error: squared_error(&gradients, &expected_grad_w_1(), &expected_grad_w_2()),
        gradients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn notebook_checks_pass() {
        let c = run_checks().unwrap();
        assert!(c.forward_passed() && c.backward_passed() && c.passed());
        assert!(c.forward_squared_error < 1e-30, "{:e}", c.forward_squared_error);
    }

    #[test]
    fn matches_notebook_forward_value() {
        let y_hat = simple_feed_forward(notebook_x().view(), &Weights::notebook()).unwrap();
        // The notebook's own check, and a much stricter one: equal to the last bit or two.
        assert!((y_hat - EXPECTED_Y_HAT).powi(2) < 1e-15);
        assert!((y_hat - EXPECTED_Y_HAT).abs() <= 2.0 * f64::EPSILON, "{y_hat:.17}");
    }

    #[test]
    fn matches_notebook_gradient_table() {
        let g = simple_backpropagation(NOTEBOOK_Y, notebook_x().view(), &Weights::notebook()).unwrap();
        let err = squared_error(&g, &expected_grad_w_1(), &expected_grad_w_2());
        assert!(err < 1e-15, "summed squared error {err:e}");
        // The printed table has 9 significant digits; every entry agrees to that precision.
        for (a, e) in g.w_1.iter().zip(expected_grad_w_1().iter()) {
            assert!((a - e).abs() <= 1e-8 * e.abs(), "{a:e} vs {e:e}");
        }
        for (a, e) in g.w_2.iter().zip(expected_grad_w_2().iter()) {
            assert!((a - e).abs() <= 5e-9, "{a:e} vs {e:e}");
        }
    }

    #[test]
    fn sigmoid_has_exact_limits_at_plus_minus_1000() {
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(grad_sigmoid(-1000.0), 0.0);
        assert_eq!(grad_sigmoid(1000.0), 0.0);
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(grad_sigmoid(0.0), 0.25);
    }

    #[test]
    fn sigmoid_left_tail_has_full_relative_accuracy() {
        // 1/(1 + e⁴⁰) = 4.2483542552915889773e-18 (40-digit mpmath); the nearest f64.
        assert_eq!(sigmoid(-40.0), 4.248354255291589e-18);
        // σ'(−40) = σ(−40)·σ(40) — same to one ulp, and likewise on the right tail.
        let rel = |a: f64, b: f64| ((a - b) / b).abs();
        assert!(rel(grad_sigmoid(-40.0), 4.248354255291589e-18) < 4.0 * f64::EPSILON);
        assert!(rel(grad_sigmoid(40.0), 4.248354255291589e-18) < 4.0 * f64::EPSILON);
        assert!(sigmoid(-700.0) > 0.0, "no premature underflow");
    }

    #[test]
    fn sigmoid_follows_limits_at_infinity_and_propagates_nan() {
        assert_eq!(sigmoid(f64::INFINITY), 1.0);
        assert_eq!(sigmoid(f64::NEG_INFINITY), 0.0);
        assert_eq!(grad_sigmoid(f64::INFINITY), 0.0);
        assert_eq!(grad_sigmoid(f64::NEG_INFINITY), 0.0);
        assert!(sigmoid(f64::NAN).is_nan());
        assert!(grad_sigmoid(f64::NAN).is_nan());
    }

    #[test]
    fn sigmoid_is_symmetric_and_bounded() {
        for i in -2000..=2000 {
            let t = i as f64 * 0.5;
            let s = sigmoid(t);
            assert!((0.0..=1.0).contains(&s));
            // σ(t) + σ(−t) = 1 up to rounding.
            assert!((s + sigmoid(-t) - 1.0).abs() <= f64::EPSILON);
            assert!(grad_sigmoid(t) >= 0.0 && grad_sigmoid(t) <= 0.25);
            assert_eq!(grad_sigmoid(t), grad_sigmoid(-t));
        }
    }

    #[test]
    fn array_sigmoid_is_elementwise_and_keeps_shape() {
        let t = array![[-1000.0, -40.0, 0.0], [1.5, 40.0, 1000.0]];
        let s = sigmoid(&t);
        let g = grad_sigmoid(&t.view());
        assert_eq!(s.shape(), &[2, 3]);
        for ((&ti, &si), &gi) in t.iter().zip(s.iter()).zip(g.iter()) {
            assert_eq!(si, sigmoid(ti));
            assert_eq!(gi, grad_sigmoid(ti));
        }
    }

    #[test]
    fn trace_deltas_are_the_bias_gradients() {
        let w = Weights::with_biases(
            array![[0.3, -0.2], [0.1, 0.5], [-0.4, 0.2]],
            array![0.7, -1.1],
            array![0.05, -0.02],
            0.3,
        )
        .unwrap();
        let t = trace(0.25, array![1.0, -2.0, 0.5].view(), &w).unwrap();
        assert_eq!(t.gradients.b_2, t.delta_2);
        assert_eq!(t.gradients.b_1, t.delta_1);
        assert_eq!(t.y_hat, sigmoid(t.z_2));
        assert!((t.loss - 0.5 * (t.y_hat - 0.25).powi(2)).abs() < 1e-18);
    }

    #[test]
    fn rejects_mismatched_shapes_with_a_named_error() {
        let w = Weights::notebook();
        let err = simple_feed_forward(array![1.0, 2.0, 3.0].view(), &w).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
        assert!(err.to_string().contains("x has 3 entries"), "{err}");
        assert!(Weights::new(Array2::ones((4, 5)), Array1::ones(4)).is_err());
        assert!(Weights::with_biases(Array2::ones((4, 5)), Array1::ones(5), Array1::ones(3), 0.0).is_err());
        // Weights built through the public fields are checked too, not trusted.
        let mut bad = Weights::notebook();
        bad.b_1 = Array1::zeros(2);
        assert!(simple_feed_forward(notebook_x().view(), &bad).is_err());
        assert!(simple_backpropagation(1.0, notebook_x().view(), &bad).is_err());
        assert!(batch_feed_forward(Array2::zeros((2, 4)).view(), &bad).is_err());
        assert!(batch_backpropagation(array![0.0, 1.0].view(), Array2::zeros((2, 4)).view(), &bad).is_err());
        // Batch: rows vs targets, columns vs D, empty batch.
        let x = Array2::zeros((3, 4));
        assert!(batch_backpropagation(array![0.0, 1.0].view(), x.view(), &w).is_err());
        assert!(batch_backpropagation(Array1::zeros(3).view(), Array2::zeros((3, 2)).view(), &w).is_err());
        assert!(batch_backpropagation(Array1::zeros(0).view(), Array2::zeros((0, 4)).view(), &w).is_err());
        assert!(batch_feed_forward(Array2::zeros((3, 2)).view(), &w).is_err());
    }

    #[test]
    fn rejects_nan_and_infinite_inputs() {
        let w = Weights::notebook();
        let x = array![0.01, f64::NAN, 0.03, 0.04];
        let err = simple_feed_forward(x.view(), &w).unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }), "{err}");
        assert!(err.to_string().contains("element 1"), "{err}");
        assert!(simple_backpropagation(f64::INFINITY, notebook_x().view(), &w).is_err());
        assert!(simple_backpropagation(1.0, x.view(), &w).is_err());
        let mut bad = Weights::notebook();
        bad.w_2[3] = f64::NAN;
        assert!(matches!(simple_feed_forward(notebook_x().view(), &bad), Err(Error::NonFinite { .. })));
        assert!(
            Weights::with_biases(Array2::ones((4, 5)), Array1::ones(5), Array1::zeros(5), f64::NAN).is_err()
        );
        let xb = array![[0.0, 0.0, 0.0, f64::NEG_INFINITY]];
        assert!(batch_feed_forward(xb.view(), &w).is_err());
        assert!(batch_backpropagation(array![0.5].view(), xb.view(), &w).is_err());
        assert!(batch_backpropagation(array![f64::NAN].view(), Array2::zeros((1, 4)).view(), &w).is_err());
    }

    /// The batch formulas written with whole-array ndarray operations and libm's exp: the
    /// reference for the blocked, vectorised kernels.
    fn batch_reference(
        y: ArrayView1<'_, f64>,
        x: ArrayView2<'_, f64>,
        w: &Weights,
    ) -> (Array1<f64>, f64, Gradients) {
        let n = x.nrows() as f64;
        let x_1 = sigmoid(&(x.dot(&w.w_1) + &w.b_1));
        let y_hat = sigmoid(&(x_1.dot(&w.w_2) + w.b_2));
        let r = &y_hat - &y;
        let loss = r.mapv(|v| 0.5 * v * v).sum() / n;
        let delta_2 = &r * &y_hat.mapv(|s| s * (1.0 - s)) / n;
        let delta_1 = &delta_2.view().insert_axis(ndarray::Axis(1)) * &w.w_2 * x_1.mapv(|s| s * (1.0 - s));
        let g = Gradients {
            w_1: x.t().dot(&delta_1),
            w_2: x_1.t().dot(&delta_2),
            b_1: delta_1.sum_axis(ndarray::Axis(0)),
            b_2: delta_2.sum(),
        };
        (y_hat, loss, g)
    }

    #[test]
    fn blocked_batch_kernels_match_the_array_formulas() {
        // Sizes around the block (256), chunk (32) and parallel (4096) boundaries, odd widths,
        // strided (transposed) inputs; inputs spread so that σ sees both tails.
        // D = 9 takes the kernels for any D (D ≤ 8 are compiled for their width).
        for (n, d, k) in [(1, 4, 5), (31, 3, 7), (257, 4, 5), (300, 9, 4), (5000, 2, 3), (10_000, 4, 5)] {
            let x = Array2::from_shape_fn((d, n), |(i, s)| (((s * d + i) as f64) * 0.618).sin() * 4.0);
            let x = x.t();
            let y = Array1::from_shape_fn(n, |s| ((s as f64) * 0.37).cos() * 0.5 + 0.5);
            let w = Weights::with_biases(
                Array2::from_shape_fn((d, k), |(i, j)| ((i * k + j) as f64 * 0.91).sin() * 1.5),
                Array1::from_shape_fn(k, |j| (j as f64 * 1.3).cos() * 2.0),
                Array1::from_shape_fn(k, |j| 0.2 * j as f64 - 0.3),
                -0.4,
            )
            .unwrap();
            let (y_ref, loss_ref, g_ref) = batch_reference(y.view(), x, &w);
            let y_hat = batch_feed_forward(x, &w).unwrap();
            for (a, b) in y_hat.iter().zip(&y_ref) {
                // σ ∈ (0, 1): a few ulp of 1 from the exp and a different summation order.
                assert!((a - b).abs() <= 4.0 * f64::EPSILON, "n = {n}: ŷ {a} vs {b}");
            }
            let (loss, g) = batch_backpropagation(y.view(), x, &w).unwrap();
            // Means of up to 10⁴ terms summed in different orders (vector partial sums vs
            // ndarray's): rounding errors of ~√n·ε relative, 1e-14 leaves a margin of 10.
            assert!((loss - loss_ref).abs() <= 1e-14 * loss_ref, "n = {n}: loss {loss} vs {loss_ref}");
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-15 + 1e-13 * b.abs();
            for (a, b) in g
                .w_1
                .iter()
                .chain(&g.w_2)
                .chain(&g.b_1)
                .zip(g_ref.w_1.iter().chain(&g_ref.w_2).chain(&g_ref.b_1))
            {
                assert!(close(*a, *b), "n = {n}: {a:e} vs {b:e}");
            }
            assert!(close(g.b_2, g_ref.b_2), "n = {n}: {:e} vs {:e}", g.b_2, g_ref.b_2);
        }
    }

    #[test]
    fn batch_results_do_not_depend_on_the_number_of_threads() {
        // Parts are taken from a shared queue by whichever thread is free; the sums must be the
        // same bits on 1, 2 and 3 threads, inside a pool and from outside it.
        let n = 10 * 1024 + 77;
        let x = Array2::from_shape_fn((n, 4), |(s, i)| (((s * 4 + i) as f64) * 0.37).sin() * 3.0);
        let y = Array1::from_shape_fn(n, |s| ((s as f64) * 0.11).cos() * 0.5 + 0.5);
        let w = Weights::with_biases(
            Array2::from_shape_fn((4, 5), |(i, j)| ((i * 5 + j) as f64 * 0.7).sin()),
            Array1::from_shape_fn(5, |j| j as f64 * 0.3 - 0.5),
            Array1::from_shape_fn(5, |j| 0.1 * j as f64),
            0.2,
        )
        .unwrap();
        let run = || {
            (
                batch_backpropagation(y.view(), x.view(), &w).unwrap(),
                batch_feed_forward(x.view(), &w).unwrap(),
            )
        };
        let reference = run();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let ((loss, g), y_hat) = pool.install(run);
            assert_eq!(loss.to_bits(), reference.0.0.to_bits(), "{threads} threads");
            assert_eq!(g, reference.0.1, "{threads} threads");
            assert_eq!(y_hat, reference.1, "{threads} threads");
        }
    }

    #[test]
    fn squared_error_of_mismatched_tables_is_infinite() {
        let g = simple_backpropagation(1.0, notebook_x().view(), &Weights::notebook()).unwrap();
        assert_eq!(squared_error(&g, &Array2::zeros((5, 4)), &expected_grad_w_2()), f64::INFINITY);
        assert_eq!(squared_error(&g, &expected_grad_w_1(), &Array1::zeros(3)), f64::INFINITY);
    }
}
