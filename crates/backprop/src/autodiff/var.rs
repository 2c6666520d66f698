//! `Var`: a small `Copy` handle to a node, with the operator overloading and tensor methods that
//! record new nodes. Every method returns a `Var`; a failed op records its error on the tape
//! (see [`Tape`]) so expressions chain like numpy without `?` on every step.

use std::ops::{Add, Div, Mul, Neg, Sub};
use std::rc::Rc;

use ndarray::{ArrayD, Dimension, IxDyn};

use super::kernels::{self as k, sl};
use super::op::{Binary, Op, Unary};
use super::pool::Pool;
use super::tape::{NodeId, Tape};
use crate::notebook::stable_sigmoid;
use crate::tensor::vmath;
use crate::{Error, Result, Scalar};

/// A handle to one node of a [`Tape`]: 16 bytes, `Copy`, cannot outlive its tape.
#[derive(Clone, Copy)]
pub struct Var<'t, T: Scalar = f64> {
    pub(crate) id: NodeId,
    pub(crate) tape: &'t Tape<T>,
}

impl<T: Scalar> std::fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var(tape #{}, node {})", self.tape.id(), self.id.index())
    }
}

/// Slopes and shifts used by the derivative rules, as plain-scalar functions; [`Var`] has methods
/// of the same names, so one rule body compiles for numbers and for recorded nodes.
pub(crate) trait ScalarExt: Scalar {
    fn one_minus(self) -> Self {
        Self::one() - self
    }
    /// `self·(1 − y²)`: an adjoint times tanh's slope at output `y`.
    fn times_tanh_slope(self, y: Self) -> Self {
        self * (Self::one() - y * y)
    }
    fn sigmoid(self) -> Self {
        stable_sigmoid(self)
    }
    fn step(self) -> Self {
        if self > Self::zero() { Self::one() } else { Self::zero() }
    }
    fn sgn(self) -> Self {
        if self > Self::zero() {
            Self::one()
        } else if self < Self::zero() {
            -Self::one()
        } else {
            Self::zero()
        }
    }
    fn leaky_slope(self, alpha: Self) -> Self {
        if self > Self::zero() { Self::one() } else { alpha }
    }
    fn in_range(self, lo: Self, hi: Self) -> Self {
        if self >= lo && self <= hi { Self::one() } else { Self::zero() }
    }
}
impl<T: Scalar> ScalarExt for T {}

/// Stable `ln(1 + eˣ) = max(x, 0) + ln(1 + e^{−|x|})`.
#[inline]
pub(crate) fn softplus<T: Scalar>(x: T) -> T {
    x.max(T::zero()) + (-x.abs()).exp().ln_1p()
}

/// THE forward formula table of the unary ops: `$body` with `$f` bound to `u`'s function as a
/// closure whose code (not its data) holds the formula, so every loop over it is specialised.
macro_rules! unary_fns {
    ($u:expr, $T:ty, |$f:ident| $body:expr) => {
        match $u {
            Unary::Affine(s, c) => {
                let $f = move |x: $T| s * x + c;
                $body
            }
            Unary::Square => {
                let $f = |x: $T| x * x;
                $body
            }
            // exp and tanh: the formulas vmath's in-place loops compute (see `unary_into`).
            Unary::Exp => {
                let $f = |x: $T| x.exp_vectorizable();
                $body
            }
            Unary::Log => {
                let $f = |x: $T| x.ln();
                $body
            }
            Unary::Sqrt => {
                let $f = |x: $T| x.sqrt();
                $body
            }
            Unary::Powf(p) => {
                let $f = move |x: $T| x.powf(p);
                $body
            }
            Unary::Abs => {
                let $f = |x: $T| x.abs();
                $body
            }
            Unary::Sin => {
                let $f = |x: $T| x.sin();
                $body
            }
            Unary::Cos => {
                let $f = |x: $T| x.cos();
                $body
            }
            Unary::Sigmoid => {
                let $f = |x: $T| stable_sigmoid(x);
                $body
            }
            Unary::Tanh => {
                let $f = |x: $T| x.tanh_vectorizable();
                $body
            }
            Unary::Relu => {
                let $f = |x: $T| if x > <$T>::zero() { x } else { <$T>::zero() };
                $body
            }
            Unary::LeakyRelu(al) => {
                let $f = move |x: $T| if x > <$T>::zero() { x } else { al * x };
                $body
            }
            Unary::Softplus => {
                let $f = |x: $T| softplus(x);
                $body
            }
            Unary::Clamp(lo, hi) => {
                let $f = move |x: $T| x.max(lo).min(hi);
                $body
            }
            Unary::Step => {
                let $f = |x: $T| x.step();
                $body
            }
            Unary::Sign => {
                let $f = |x: $T| x.sgn();
                $body
            }
            Unary::LeakySlope(al) => {
                let $f = move |x: $T| x.leaky_slope(al);
                $body
            }
            Unary::InRange(lo, hi) => {
                let $f = move |x: $T| x.in_range(lo, hi);
                $body
            }
        }
    };
}

/// `dst[i] = u(src[i])`. exp and tanh run through [`vmath`]'s in-place loops, compiled for the
/// widest SIMD width of the machine (bit-identical to the table's scalar formulas, within 1 and
/// 3 ulp of libm's); the formulas' `mul_add` outside those loops would be a libm call each.
///
/// Why only these two: the other ops gain nothing from SIMD dispatch, and putting every op in
/// it was measured slower — copy-then-map-in-place cost an extra pass (mlp100k HVP +9 %),
/// dispatching per op cost the notebook replay +10 ns, and a `Vec::extend` inside the dispatched
/// closure is not inlined, so tanh went back to libm `fma` calls (gradient 1.5 → 4.1 ms).
pub(crate) fn unary_into<T: Scalar>(u: Unary<T>, src: &[T], dst: &mut [T]) {
    match u {
        Unary::Exp => {
            dst.copy_from_slice(src);
            vmath::exp_in_place(dst);
        }
        Unary::Tanh => {
            dst.copy_from_slice(src);
            vmath::tanh_in_place(dst);
        }
        _ => unary_fns!(u, T, |f| dst.iter_mut().zip(src).for_each(|(d, &x)| *d = f(x))),
    }
}

/// The forward kernel of every elementwise unary op (one `match` outside the loop).
pub(crate) fn unary_kernel<T: Scalar>(pool: &mut Pool<T>, a: &ArrayD<T>, u: Unary<T>) -> ArrayD<T> {
    if matches!(u, Unary::Exp | Unary::Tanh) {
        let mut out = pool.copy(a);
        let xs = out.as_slice_mut().expect("pool arrays are row-major");
        if matches!(u, Unary::Exp) {
            vmath::exp_in_place(xs)
        } else {
            vmath::tanh_in_place(xs)
        }
        return out;
    }
    unary_fns!(u, T, |f| k::map(pool, a, f))
}

/// The forward kernel of the broadcast binary ops.
pub(crate) fn binary_kernel<T: Scalar>(
    pool: &mut Pool<T>,
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    op: Binary,
) -> Result<ArrayD<T>> {
    let name = match op {
        Binary::Add => "add",
        Binary::Sub => "sub",
        Binary::Mul => "mul",
        Binary::Div => "div",
        Binary::TanhGrad => "tanh_grad",
    };
    let out = k::broadcast_shapes(name, a.shape(), b.shape())?;
    match op {
        Binary::Add => k::ew(pool, out.slice(), [a, b], |[x, y]| x + y),
        Binary::Sub => k::ew(pool, out.slice(), [a, b], |[x, y]| x - y),
        Binary::Mul => k::ew(pool, out.slice(), [a, b], |[x, y]| x * y),
        Binary::Div => k::ew(pool, out.slice(), [a, b], |[x, y]| x / y),
        Binary::TanhGrad => k::ew(pool, out.slice(), [a, b], |[x, y]| x.times_tanh_slope(y)),
    }
}

/// Sum (or mean) over the axes in the bit mask.
pub(crate) fn reduce_kernel<T: Scalar>(
    pool: &mut Pool<T>,
    x: &ArrayD<T>,
    mean: bool,
    axes: u64,
    keepdims: bool,
) -> Result<ArrayD<T>> {
    let mut s = k::sum_axes(pool, x, axes, keepdims)?;
    if mean {
        let inv: T = mean_scale(x.shape(), axes);
        s.mapv_inplace(|v| v * inv);
    }
    Ok(s)
}

/// `1/count` for a mean over the axes in the bit mask.
pub(crate) fn mean_scale<T: Scalar>(shape: &[usize], axes: u64) -> T {
    let count: usize = (0..shape.len()).filter(|d| axes >> d & 1 == 1).map(|d| shape[d]).product();
    T::one() / T::of(count as f64)
}

fn axes_mask(op: &str, shape: &[usize], axes: &[usize]) -> Result<u64> {
    let mut m = 0u64;
    for &a in axes {
        if a >= shape.len() || a >= 64 {
            return Err(Error::shape(op, format!("axis {a} is out of range for shape {shape:?}")));
        }
        m |= 1 << a;
    }
    Ok(m)
}

impl<'t, T: Scalar> Var<'t, T> {
    pub(crate) fn new(id: NodeId, tape: &'t Tape<T>) -> Self {
        Var { id, tape }
    }

    /// The node this handle points to.
    pub fn id(self) -> NodeId {
        self.id
    }

    /// The tape this handle belongs to.
    pub fn tape(self) -> &'t Tape<T> {
        self.tape
    }

    pub(crate) fn tape_id(self) -> u64 {
        self.tape.id()
    }

    /// A copy of the value, or the tape's error if this var is invalid.
    pub fn value(self) -> Result<ArrayD<T>> {
        self.tape.status()?;
        self.tape.check_var(self, &"var")?;
        Ok(self.tape.nodes()[self.id.index()].value.clone())
    }

    /// The single element of a one-element tensor (a loss).
    pub fn item(self) -> Result<T> {
        self.tape.status()?;
        self.tape.check_var(self, &"var")?;
        let nodes = self.tape.nodes();
        let v = &nodes[self.id.index()].value;
        if v.len() != 1 {
            return Err(Error::shape("item", format!("needs one element, got shape {:?}", v.shape())));
        }
        Ok(sl(v)[0])
    }

    /// The shape (empty for an invalid var).
    pub fn shape(self) -> Vec<usize> {
        self.tape.nodes().get(self.id.index()).map(|n| n.value.shape().to_vec()).unwrap_or_default()
    }

    /// Number of axes.
    pub fn ndim(self) -> usize {
        self.with_shape(|s| s.len())
    }

    /// Calls `f` with the shape, without copying it.
    pub(crate) fn with_shape<R>(self, f: impl FnOnce(&[usize]) -> R) -> R {
        let nodes = self.tape.nodes();
        f(nodes.get(self.id.index()).map(|n| n.value.shape()).unwrap_or(&[]))
    }

    fn same_tape(self, other: Var<'_, T>, op: &str) -> bool {
        if other.tape_id() != self.tape_id() {
            self.tape.record_error(Error::Autodiff(format!(
                "{op}: operand from tape #{} used with tape #{}: vars cannot cross tapes",
                other.tape_id(),
                self.tape_id()
            )));
            return false;
        }
        true
    }

    fn invalid(self) -> Self {
        self.tape.push(Op::Invalid, |_, _| Err(Error::Autodiff("invalid operand".into())))
    }

    pub(crate) fn unary(self, u: Unary<T>) -> Self {
        let a = self.id.index();
        self.tape.push(Op::Unary(self.id, u), move |n, pool| Ok(unary_kernel(pool, &n[a].value, u)))
    }

    pub(crate) fn binary(self, other: Var<'_, T>, op: Binary) -> Self {
        if !self.same_tape(other, "binary op") {
            return self.invalid();
        }
        let (a, b) = (self.id.index(), other.id.index());
        self.tape.push(Op::Binary(self.id, other.id, op), move |n, pool| {
            binary_kernel(pool, &n[a].value, &n[b].value, op)
        })
    }

    fn with_error(self, r: Result<()>) -> Option<Self> {
        match r {
            Ok(()) => None,
            Err(e) => {
                self.tape.record_error(e);
                Some(self.invalid())
            }
        }
    }

    /// A constant node with this value: gradients do not flow through it.
    pub fn detach(self) -> Self {
        let a = self.id.index();
        self.tape.push_const(move |n, pool| Ok(pool.copy(&n[a].value)))
    }

    // ----- elementwise -----

    /// `s·x + c`.
    pub fn affine(self, s: T, c: T) -> Self {
        self.unary(Unary::Affine(s, c))
    }
    /// `c·x`.
    pub fn scale(self, c: T) -> Self {
        self.affine(c, T::zero())
    }
    /// `x + c`.
    pub fn shift(self, c: T) -> Self {
        self.affine(T::one(), c)
    }
    /// `1 − x`.
    pub fn one_minus(self) -> Self {
        self.affine(-T::one(), T::one())
    }
    /// `x²`.
    pub fn square(self) -> Self {
        self.unary(Unary::Square)
    }
    /// `self·(1 − y²)` as one node ([`Binary::TanhGrad`]): tanh's recorded adjoint.
    pub(crate) fn times_tanh_slope(self, y: Self) -> Self {
        self.binary(y, Binary::TanhGrad)
    }
    /// `eˣ`.
    pub fn exp(self) -> Self {
        self.unary(Unary::Exp)
    }
    /// Natural logarithm.
    pub fn ln(self) -> Self {
        self.unary(Unary::Log)
    }
    /// Natural logarithm (alias of [`Var::ln`]).
    pub fn log(self) -> Self {
        self.ln()
    }
    /// `√x`.
    pub fn sqrt(self) -> Self {
        self.unary(Unary::Sqrt)
    }
    /// `xᵖ`.
    pub fn powf(self, p: T) -> Self {
        self.unary(Unary::Powf(p))
    }
    /// `1/x`.
    pub fn recip(self) -> Self {
        self.powf(-T::one())
    }
    /// `|x|`.
    pub fn abs(self) -> Self {
        self.unary(Unary::Abs)
    }
    /// `sin x`.
    pub fn sin(self) -> Self {
        self.unary(Unary::Sin)
    }
    /// `cos x`.
    pub fn cos(self) -> Self {
        self.unary(Unary::Cos)
    }
    /// Logistic sigmoid σ(x) = 1/(1 + e⁻ˣ), stable for large |x|.
    pub fn sigmoid(self) -> Self {
        self.unary(Unary::Sigmoid)
    }
    /// `tanh x`.
    pub fn tanh(self) -> Self {
        self.unary(Unary::Tanh)
    }
    /// `max(x, 0)`.
    pub fn relu(self) -> Self {
        self.unary(Unary::Relu)
    }
    /// `x` if positive, else `αx`.
    pub fn leaky_relu(self, alpha: T) -> Self {
        self.unary(Unary::LeakyRelu(alpha))
    }
    /// `ln(1 + eˣ)`, stable.
    pub fn softplus(self) -> Self {
        self.unary(Unary::Softplus)
    }
    /// `min(max(x, lo), hi)`.
    pub fn clamp(self, lo: T, hi: T) -> Self {
        if lo.is_nan() || hi.is_nan() || lo > hi {
            self.tape.record_error(Error::invalid("clamp", format!("lo {lo} must not exceed hi {hi}")));
            return self.invalid();
        }
        self.unary(Unary::Clamp(lo, hi))
    }
    /// `1[x > 0]` (a constant of the graph: zero derivative).
    pub fn step(self) -> Self {
        self.unary(Unary::Step)
    }
    /// `sign x`, 0 at 0 (zero derivative).
    pub fn sgn(self) -> Self {
        self.unary(Unary::Sign)
    }
    /// `1` if `x > 0` else `α` (zero derivative).
    pub fn leaky_slope(self, alpha: T) -> Self {
        self.unary(Unary::LeakySlope(alpha))
    }
    /// `1[lo ≤ x ≤ hi]` (zero derivative).
    pub fn in_range(self, lo: T, hi: T) -> Self {
        self.unary(Unary::InRange(lo, hi))
    }

    /// `mask ? self : other`, all broadcast.
    pub fn select(self, mask: &ArrayD<bool>, other: Var<'t, T>) -> Self {
        if !self.same_tape(other, "where") {
            return self.invalid();
        }
        let mask = Rc::new(mask.as_standard_layout().into_owned());
        let (a, b, m) = (self.id.index(), other.id.index(), mask.clone());
        self.tape.push(Op::Where(mask, self.id, other.id), move |n, pool| {
            k::where_(pool, &m, &n[a].value, &n[b].value)
        })
    }

    pub(crate) fn select_rc(self, mask: Rc<ArrayD<bool>>, other: Var<'t, T>) -> Self {
        let (a, b, m) = (self.id.index(), other.id.index(), mask.clone());
        self.tape.push(Op::Where(mask, self.id, other.id), move |n, pool| {
            k::where_(pool, &m, &n[a].value, &n[b].value)
        })
    }

    // ----- shape -----

    /// Matrix product with numpy semantics (1-D promoted; batch axes shared with a 2-D operand).
    pub fn matmul(self, other: Var<'t, T>) -> Self {
        self.matmul_t(other, false, false)
    }

    /// `op(self)·op(other)` where `op` transposes the last two axes if its flag is set: the
    /// transposed operand is read in place, never copied.
    pub fn matmul_t(self, other: Var<'t, T>, ta: bool, tb: bool) -> Self {
        if !self.same_tape(other, "matmul") {
            return self.invalid();
        }
        let (a, b) = (self.id.index(), other.id.index());
        self.tape.push(Op::MatMul { a: self.id, b: other.id, ta, tb }, move |n, pool| {
            k::matmul(pool, &n[a].value, ta, &n[b].value, tb)
        })
    }

    /// Axes permuted (`y.shape[i] = x.shape[perm[i]]`).
    pub fn permute(self, perm: &[usize]) -> Self {
        let a = self.id.index();
        let p: Rc<[usize]> = perm.into();
        let p2 = p.clone();
        self.tape.push(Op::Permute(self.id, p), move |n, pool| k::permute(pool, &n[a].value, &p2))
    }

    /// The last two axes swapped (a 1-D tensor is returned unchanged in shape).
    pub fn t(self) -> Self {
        let nd = self.ndim();
        if nd < 2 {
            return self.reshape(&self.shape());
        }
        let mut p: Vec<usize> = (0..nd).collect();
        p.swap(nd - 2, nd - 1);
        self.permute(&p)
    }

    /// Same elements in a new shape (row-major).
    pub fn reshape(self, shape: &[usize]) -> Self {
        let a = self.id.index();
        let s = IxDyn(shape);
        self.tape.push(Op::Reshape(self.id), move |n, pool| k::reshape(pool, &n[a].value, s.slice()))
    }

    /// numpy broadcast to `shape`.
    pub fn broadcast_to(self, shape: &[usize]) -> Self {
        let a = self.id.index();
        let s = IxDyn(shape);
        self.tape.push(Op::BroadcastTo(self.id), move |n, pool| k::broadcast_to(pool, &n[a].value, s.slice()))
    }

    /// Sum over broadcast axes down to `shape` (the adjoint of [`Var::broadcast_to`]).
    pub fn sum_to(self, shape: &[usize]) -> Self {
        let a = self.id.index();
        let s = IxDyn(shape);
        self.tape.push(Op::SumTo(self.id), move |n, pool| k::sum_to(pool, &n[a].value, s.slice()))
    }

    // ----- reductions -----

    /// Sum of all elements (0-d).
    pub fn sum(self) -> Self {
        let nd = self.ndim();
        self.reduce(false, if nd >= 64 { u64::MAX } else { (1u64 << nd) - 1 }, false)
    }

    /// Sum over `axes`, optionally keeping them with length 1.
    pub fn sum_axes(self, axes: &[usize], keepdims: bool) -> Self {
        match axes_mask("sum", &self.shape(), axes) {
            Ok(m) => self.reduce(false, m, keepdims),
            Err(e) => self.with_error(Err(e)).unwrap_or(self),
        }
    }

    /// Mean of all elements (0-d).
    pub fn mean(self) -> Self {
        let nd = self.ndim();
        self.reduce(true, if nd >= 64 { u64::MAX } else { (1u64 << nd) - 1 }, false)
    }

    /// Mean over `axes`.
    pub fn mean_axes(self, axes: &[usize], keepdims: bool) -> Self {
        match axes_mask("mean", &self.shape(), axes) {
            Ok(m) => self.reduce(true, m, keepdims),
            Err(e) => self.with_error(Err(e)).unwrap_or(self),
        }
    }

    pub(crate) fn reduce(self, mean: bool, axes: u64, keepdims: bool) -> Self {
        let a = self.id.index();
        let op = if mean {
            Op::Mean { a: self.id, axes, keepdims }
        } else {
            Op::Sum { a: self.id, axes, keepdims }
        };
        self.tape.push(op, move |n, pool| reduce_kernel(pool, &n[a].value, mean, axes, keepdims))
    }

    /// `softmax` along `axis`, stable.
    pub fn softmax(self, axis: usize) -> Self {
        let a = self.id.index();
        self.tape.push(Op::Softmax(self.id, axis), move |n, pool| k::softmax(pool, &n[a].value, axis, false))
    }

    /// `log_softmax` along `axis`, stable.
    pub fn log_softmax(self, axis: usize) -> Self {
        let a = self.id.index();
        self.tape
            .push(Op::LogSoftmax(self.id, axis), move |n, pool| k::softmax(pool, &n[a].value, axis, true))
    }

    /// Maximum along `axis` (the gradient goes to the first maximal entry).
    pub fn max_axis(self, axis: usize, keepdims: bool) -> Self {
        self.extreme(axis, keepdims, true)
    }

    /// Minimum along `axis`.
    pub fn min_axis(self, axis: usize, keepdims: bool) -> Self {
        self.extreme(axis, keepdims, false)
    }

    fn extreme(self, axis: usize, keepdims: bool, max: bool) -> Self {
        let a = self.id.index();
        self.tape.push(Op::Extreme { a: self.id, axis, keepdims, max }, move |n, pool| {
            k::extreme(pool, &n[a].value, axis, keepdims, max)
        })
    }

    // ----- indexing -----

    /// `x[.., start..end, ..]` along `axis`.
    pub fn slice(self, axis: usize, start: usize, end: usize) -> Self {
        let a = self.id.index();
        self.tape.push(Op::Slice { a: self.id, axis, start, end }, move |n, pool| {
            k::slice(pool, &n[a].value, axis, start, end)
        })
    }

    /// `x` placed at `start` along `axis` inside zeros of length `len` (the adjoint of slice).
    pub fn pad(self, axis: usize, start: usize, len: usize) -> Self {
        let a = self.id.index();
        self.tape.push(Op::Pad { a: self.id, axis, start }, move |n, pool| {
            k::pad(pool, &n[a].value, axis, start, len)
        })
    }

    /// Entries `index` along `axis` (torch `index_select`, numpy `take`).
    pub fn index_select(self, axis: usize, index: &[usize]) -> Self {
        let a = self.id.index();
        let idx: Rc<[usize]> = index.into();
        let i2 = idx.clone();
        self.tape.push(Op::IndexSelect { a: self.id, axis, index: idx }, move |n, pool| {
            k::index_select(pool, &n[a].value, axis, &i2)
        })
    }

    /// Rows added into zeros of length `len` at `index` along `axis` (adjoint of index_select).
    pub fn index_add(self, axis: usize, index: &[usize], len: usize) -> Self {
        let a = self.id.index();
        let idx: Rc<[usize]> = index.into();
        let i2 = idx.clone();
        self.tape.push(Op::IndexAdd { a: self.id, axis, index: idx }, move |n, pool| {
            k::index_add(pool, &n[a].value, axis, &i2, len)
        })
    }

    /// torch `gather`: `y[o, j, i] = x[o, index[o, j, i], i]` along `axis`; `index` matches `x`'s
    /// shape on every other axis.
    pub fn gather(self, axis: usize, index: &ArrayD<usize>) -> Self {
        self.gather_rc(axis, Rc::new(index.as_standard_layout().into_owned()))
    }

    pub(crate) fn gather_rc(self, axis: usize, index: Rc<ArrayD<usize>>) -> Self {
        let a = self.id.index();
        let i2 = index.clone();
        self.tape.push(Op::Gather { a: self.id, axis, index }, move |n, pool| {
            k::gather(pool, &n[a].value, axis, &i2)
        })
    }

    /// The adjoint of gather: `y[o, index[o, j, i], i] += x[o, j, i]`, length `len` along `axis`.
    pub(crate) fn scatter_add_rc(self, axis: usize, index: Rc<ArrayD<usize>>, len: usize) -> Self {
        let a = self.id.index();
        let i2 = index.clone();
        self.tape.push(Op::ScatterAdd { a: self.id, axis, index }, move |n, pool| {
            k::scatter_add(pool, &n[a].value, axis, &i2, len)
        })
    }

    pub(crate) fn index_select_rc(self, axis: usize, index: Rc<[usize]>) -> Self {
        let a = self.id.index();
        let i2 = index.clone();
        self.tape.push(Op::IndexSelect { a: self.id, axis, index }, move |n, pool| {
            k::index_select(pool, &n[a].value, axis, &i2)
        })
    }

    pub(crate) fn index_add_rc(self, axis: usize, index: Rc<[usize]>, len: usize) -> Self {
        let a = self.id.index();
        let i2 = index.clone();
        self.tape.push(Op::IndexAdd { a: self.id, axis, index }, move |n, pool| {
            k::index_add(pool, &n[a].value, axis, &i2, len)
        })
    }
}

impl<T: Scalar> Tape<T> {
    /// The vars joined along `axis` (all from this tape).
    pub fn concat<'t>(&'t self, xs: &[Var<'t, T>], axis: usize) -> Var<'t, T> {
        if let Some(bad) = xs.iter().find(|v| v.tape_id() != self.id()) {
            self.record_error(Error::Autodiff(format!(
                "concat: operand from tape #{} used with tape #{}",
                bad.tape_id(),
                self.id()
            )));
            return self.push(Op::Invalid, |_, _| Err(Error::Autodiff("invalid operand".into())));
        }
        let ids: Rc<[NodeId]> = xs.iter().map(|v| v.id).collect();
        let ids2 = ids.clone();
        self.push(Op::Concat(ids, axis), move |n, pool| {
            let arrs: Vec<&ArrayD<T>> = ids2.iter().map(|i| &n[i.index()].value).collect();
            k::concat(pool, &arrs, axis)
        })
    }

    /// `mask ? a : b`, broadcast (numpy `where`).
    pub fn where_<'t>(&'t self, mask: &ArrayD<bool>, a: Var<'t, T>, b: Var<'t, T>) -> Var<'t, T> {
        a.select(mask, b)
    }
}

// ----- operators -----

macro_rules! var_ops {
    ($Tr:ident, $m:ident, $bin:expr, $scalar:expr, $rscalar:expr) => {
        impl<'t, T: Scalar> $Tr<Var<'t, T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            fn $m(self, rhs: Var<'t, T>) -> Var<'t, T> {
                self.binary(rhs, $bin)
            }
        }
        impl<'t, T: Scalar> $Tr<T> for Var<'t, T> {
            type Output = Var<'t, T>;
            fn $m(self, c: T) -> Var<'t, T> {
                #[allow(clippy::redundant_closure_call)]
                ($scalar)(self, c)
            }
        }
        impl<'t, T: Scalar> $Tr<&ArrayD<T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            fn $m(self, rhs: &ArrayD<T>) -> Var<'t, T> {
                let c = self.tape.constant(rhs);
                self.binary(c, $bin)
            }
        }
        impl<'t> $Tr<Var<'t, f64>> for f64 {
            type Output = Var<'t, f64>;
            fn $m(self, v: Var<'t, f64>) -> Var<'t, f64> {
                #[allow(clippy::redundant_closure_call)]
                ($rscalar)(self, v)
            }
        }
        impl<'t> $Tr<Var<'t, f32>> for f32 {
            type Output = Var<'t, f32>;
            fn $m(self, v: Var<'t, f32>) -> Var<'t, f32> {
                #[allow(clippy::redundant_closure_call)]
                ($rscalar)(self, v)
            }
        }
    };
}

var_ops!(Add, add, Binary::Add, |v: Var<'t, T>, c: T| v.affine(T::one(), c), |c, v: Var<'t, _>| v.shift(c));
var_ops!(Sub, sub, Binary::Sub, |v: Var<'t, T>, c: T| v.affine(T::one(), -c), |c, v: Var<'t, _>| v
    .affine(-1.0, c));
var_ops!(Mul, mul, Binary::Mul, |v: Var<'t, T>, c: T| v.scale(c), |c, v: Var<'t, _>| v.scale(c));
var_ops!(Div, div, Binary::Div, |v: Var<'t, T>, c: T| v.scale(T::one() / c), |c, v: Var<'t, _>| v
    .recip()
    .scale(c));

impl<'t, T: Scalar> Neg for Var<'t, T> {
    type Output = Var<'t, T>;
    fn neg(self) -> Var<'t, T> {
        self.scale(-T::one())
    }
}
