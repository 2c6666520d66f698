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

use ndarray::{Array, Array1, Array2, ArrayBase, ArrayView1, ArrayView2, Axis, Data, Dimension};
use num_traits::Float;

use crate::{Error, Result};

/// σ(t) = 1/(1 + e⁻ᵗ), evaluated without overflow for every finite `t`.
///
/// For t ≥ 0 it uses 1/(1 + e⁻ᵗ); for t < 0 the equal form eᵗ/(1 + eᵗ), so e^|t| is never
/// formed: σ(−1000) = 0 and σ(1000) = 1 exactly, and the left tail keeps full relative
/// accuracy (σ(−40) = 4.248354255291589e-18, not 0).
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
/// (1 − σ(t) would round to 0 for t > 37 in f64).
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
        let k = w_1.ncols();
        if w_2.len() != k {
            return Err(Error::shape(
                "notebook weights",
                format!("w_1 is {:?} so w_2 needs {k} entries, got {}", w_1.shape(), w_2.len()),
            ));
        }
        if b_1.len() != k {
            return Err(Error::shape(
                "notebook weights",
                format!("w_1 is {:?} so b_1 needs {k} entries, got {}", w_1.shape(), b_1.len()),
            ));
        }
        check_finite("w_1", w_1.iter())?;
        check_finite("w_2", w_2.iter())?;
        check_finite("b_1", b_1.iter())?;
        check_finite("b_2", std::iter::once(&b_2))?;
        Ok(Weights { w_1, w_2, b_1, b_2 })
    }

    /// The notebook's `W`: `w_1 = np.ones((4, 5))`, `w_2 = np.ones(5)`, no biases.
    pub fn notebook() -> Self {
        Weights { w_1: Array2::ones((4, 5)), w_2: Array1::ones(5), b_1: Array1::zeros(5), b_2: 0.0 }
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

/// The notebook's expected forward value.
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

fn check_input(op: &str, x: &ArrayView1<'_, f64>, w: &Weights) -> Result<()> {
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
/// Returns the loss and its gradients (the mean of the per-sample gradients).
pub fn batch_backpropagation(
    y: ArrayView1<'_, f64>,
    x: ArrayView2<'_, f64>,
    w: &Weights,
) -> Result<(f64, Gradients)> {
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
    check_finite("x", x.iter())?;
    check_finite("y", y.iter())?;
    let z_1 = x.dot(&w.w_1) + &w.b_1; // n×K
    let x_1 = sigmoid(&z_1);
    let z_2 = x_1.dot(&w.w_2) + w.b_2; // n
    let y_hat = sigmoid(&z_2);
    let inv_n = 1.0 / n as f64;
    let loss = (&y_hat - &y).mapv(|r| 0.5 * r * r).sum() * inv_n;
    // δ⁽²⁾ₛ = (ŷₛ − yₛ) σ'(z⁽²⁾ₛ) / n: the 1/n of the mean folded in once.
    let delta_2 = (&y_hat - &y) * grad_sigmoid(&z_2) * inv_n;
    // δ⁽¹⁾ₛⱼ = δ⁽²⁾ₛ w⁽²⁾ⱼ σ'(z⁽¹⁾ₛⱼ)
    let delta_1 = &delta_2.view().insert_axis(Axis(1)) * &w.w_2 * grad_sigmoid(&z_1);
    let gradients = Gradients {
        w_1: x.t().dot(&delta_1),
        w_2: x_1.t().dot(&delta_2),
        b_1: delta_1.sum_axis(Axis(0)),
        b_2: delta_2.sum(),
    };
    Ok((loss, gradients))
}

/// Batch forward pass: ŷ for every row of `x` (n×D).
pub fn batch_feed_forward(x: ArrayView2<'_, f64>, w: &Weights) -> Result<Array1<f64>> {
    if x.ncols() != w.inputs() {
        return Err(Error::shape(
            "batch_feed_forward",
            format!("x is {:?} but w_1 is {:?}", x.shape(), w.w_1.shape()),
        ));
    }
    check_finite("x", x.iter())?;
    let x_1 = sigmoid(&(x.dot(&w.w_1) + &w.b_1));
    Ok(sigmoid(&(x_1.dot(&w.w_2) + w.b_2)))
}

/// The notebook's acceptance measure: the summed squared difference of two gradient tables.
pub fn squared_error(a: &Gradients, w_1: &Array2<f64>, w_2: &Array1<f64>) -> f64 {
    (&a.w_1 - w_1).mapv(|d| d * d).sum() + (&a.w_2 - w_2).mapv(|d| d * d).sum()
}
