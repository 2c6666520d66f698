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
/// Returns the loss and its gradients (the mean of the per-sample gradients).
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
    check_finite("x", x.iter())?;
    check_finite("y", y.iter())?;
    let z_1 = x.dot(&w.w_1) + &w.b_1; // n×K
    let x_1 = sigmoid(&z_1);
    let z_2 = x_1.dot(&w.w_2) + w.b_2; // n
    let y_hat = sigmoid(&z_2);
    let inv_n = 1.0 / n as f64;
    let loss = (&y_hat - &y).mapv(|r| 0.5 * r * r).sum() * inv_n;
    // σ'(z) = σ(z)(1 − σ(z)) from the saved outputs: no second exp per element (a callgrind
    // profile had half of this function in libm `exp`). Where σ rounds to 1 the true σ' is below
    // 1e-16, so the absolute error stays at rounding level.
    let dsig = |s: &f64| s * (1.0 - s);
    // δ⁽²⁾ₛ = (ŷₛ − yₛ) σ'(z⁽²⁾ₛ) / n: the 1/n of the mean folded in once.
    let delta_2 = (&y_hat - &y) * y_hat.map(dsig) * inv_n;
    // δ⁽¹⁾ₛⱼ = δ⁽²⁾ₛ w⁽²⁾ⱼ σ'(z⁽¹⁾ₛⱼ)
    let delta_1 = &delta_2.view().insert_axis(Axis(1)) * &w.w_2 * x_1.map(dsig);
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
    w.validate()?;
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

    #[test]
    fn squared_error_of_mismatched_tables_is_infinite() {
        let g = simple_backpropagation(1.0, notebook_x().view(), &Weights::notebook()).unwrap();
        assert_eq!(squared_error(&g, &Array2::zeros((5, 4)), &expected_grad_w_2()), f64::INFINITY);
        assert_eq!(squared_error(&g, &expected_grad_w_1(), &Array1::zeros(3)), f64::INFINITY);
    }
}
