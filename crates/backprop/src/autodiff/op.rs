//! The operations a tape records: one enum, so the backward `match` in [`super::backward`] is
//! exhaustive and the compiler names any op that lacks a rule.

use std::rc::Rc;

use ndarray::ArrayD;

use super::kernels as k;
use super::pool::Pool;
use super::tape::{Node, NodeId};
use super::var::{binary_kernel, reduce_kernel, unary_kernel};
use crate::{Error, Result, Scalar};

/// An elementwise function of one tensor, `y = f(x)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary<T> {
    /// `y = s·x + c` (negation, scalar addition and scaling are this op).
    Affine(T, T),
    /// `y = x²`.
    Square,
    /// `y = eˣ`.
    Exp,
    /// `y = ln x`.
    Log,
    /// `y = √x`.
    Sqrt,
    /// `y = xᵖ`.
    Powf(T),
    /// `y = |x|`.
    Abs,
    /// `y = sin x`.
    Sin,
    /// `y = cos x`.
    Cos,
    /// `y = σ(x) = 1/(1 + e⁻ˣ)`, computed stably.
    Sigmoid,
    /// `y = tanh x`.
    Tanh,
    /// `y = max(x, 0)`.
    Relu,
    /// `y = x` for `x > 0`, `αx` otherwise.
    LeakyRelu(T),
    /// `y = ln(1 + eˣ)`, computed stably as `max(x, 0) + ln(1 + e^{−|x|})`.
    Softplus,
    /// `y = min(max(x, lo), hi)`.
    Clamp(T, T),
    /// `y = 1[x > 0]`: the slope of relu. Piecewise constant, so its derivative is zero.
    Step,
    /// `y = sign x` (0 at 0): the slope of |x|. Piecewise constant.
    Sign,
    /// `y = 1` for `x > 0`, `α` otherwise: the slope of leaky relu. Piecewise constant.
    LeakySlope(T),
    /// `y = 1[lo ≤ x ≤ hi]`: the slope of clamp. Piecewise constant.
    InRange(T, T),
}

impl<T> Unary<T> {
    /// Piecewise-constant functions (slopes of piecewise-linear ones): zero derivative.
    pub(crate) fn is_piecewise_constant(&self) -> bool {
        matches!(self, Unary::Step | Unary::Sign | Unary::LeakySlope(_) | Unary::InRange(..))
    }
}

/// An elementwise function of two tensors with numpy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a ⊙ b`.
    Mul,
    /// `a ⊘ b`.
    Div,
    /// `a ⊙ (1 − b²)`: tanh's adjoint `ȳ·(1 − y²)` as one op, so a recorded gradient of tanh
    /// is one node (and one rule when differentiated again) instead of square, 1 − ·, and ⊙.
    TanhGrad,
}

/// One recorded operation; its operands are earlier nodes of the same tape.
#[derive(Clone, Debug)]
pub enum Op<T> {
    /// An input the caller may differentiate with respect to.
    Leaf,
    /// A constant: never differentiated (targets, masks, slopes of piecewise-linear functions).
    Const,
    /// The result of a failed op (shape mismatch …): the tape holds the error.
    Invalid,
    /// Elementwise function of one input.
    Unary(NodeId, Unary<T>),
    /// Elementwise function of two inputs, broadcast.
    Binary(NodeId, NodeId, Binary),
    /// `op(a)·op(b)` with `op` the transpose of the last two axes when the flag is set; 1-D
    /// operands are promoted (row on the left, column on the right) as in numpy; batch axes of a
    /// ≥3-D operand are shared by a 2-D one.
    MatMul { a: NodeId, b: NodeId, ta: bool, tb: bool },
    /// Axes permuted: `y.shape[i] = x.shape[perm[i]]`.
    Permute(NodeId, Rc<[usize]>),
    /// Same elements, new shape (row-major).
    Reshape(NodeId),
    /// numpy broadcast to this node's shape.
    BroadcastTo(NodeId),
    /// The adjoint of broadcasting: sum over broadcast axes down to this node's shape.
    SumTo(NodeId),
    /// Sum over the axes in the bit mask, optionally keeping them as length 1.
    Sum { a: NodeId, axes: u64, keepdims: bool },
    /// Mean over the axes in the bit mask.
    Mean { a: NodeId, axes: u64, keepdims: bool },
    /// `softmax` along one axis, stable (max subtracted).
    Softmax(NodeId, usize),
    /// `log_softmax` along one axis, stable.
    LogSoftmax(NodeId, usize),
    /// Maximum (or minimum) along one axis.
    Extreme { a: NodeId, axis: usize, keepdims: bool, max: bool },
    /// `mask ? a : b`, all three broadcast.
    Where(Rc<ArrayD<bool>>, NodeId, NodeId),
    /// Inputs joined along an axis.
    Concat(Rc<[NodeId]>, usize),
    /// `x[.., start..end, ..]` along one axis.
    Slice { a: NodeId, axis: usize, start: usize, end: usize },
    /// The adjoint of slicing: `x` placed at `start` inside zeros of this node's shape.
    Pad { a: NodeId, axis: usize, start: usize },
    /// `x` indexed along `axis` by a list of indices (numpy `take`, torch `index_select`).
    IndexSelect { a: NodeId, axis: usize, index: Rc<[usize]> },
    /// The adjoint of `IndexSelect`: rows of `x` added into zeros at the indices.
    IndexAdd { a: NodeId, axis: usize, index: Rc<[usize]> },
    /// torch `gather`: `y[o, j, i] = x[o, index[o, j, i], i]` along `axis`.
    Gather { a: NodeId, axis: usize, index: Rc<ArrayD<usize>> },
    /// The adjoint of `Gather`: `y[o, index[o, j, i], i] += x[o, j, i]`.
    ScatterAdd { a: NodeId, axis: usize, index: Rc<ArrayD<usize>> },
}

impl<T: std::fmt::Display> Op<T> {
    /// The operands, in order.
    pub fn parents(&self) -> Vec<NodeId> {
        let mut v = Vec::new();
        self.for_each_parent(|p| v.push(p));
        v
    }

    /// Calls `f` on each operand (no allocation: used by every backward sweep).
    pub(crate) fn for_each_parent(&self, mut f: impl FnMut(NodeId)) {
        match self {
            Op::Leaf | Op::Const | Op::Invalid => {}
            Op::Unary(a, _)
            | Op::Permute(a, _)
            | Op::Reshape(a)
            | Op::BroadcastTo(a)
            | Op::SumTo(a)
            | Op::Sum { a, .. }
            | Op::Mean { a, .. }
            | Op::Softmax(a, _)
            | Op::LogSoftmax(a, _)
            | Op::Extreme { a, .. }
            | Op::Slice { a, .. }
            | Op::Pad { a, .. }
            | Op::IndexSelect { a, .. }
            | Op::IndexAdd { a, .. }
            | Op::Gather { a, .. }
            | Op::ScatterAdd { a, .. } => f(*a),
            Op::Binary(a, b, _) | Op::MatMul { a, b, .. } | Op::Where(_, a, b) => {
                f(*a);
                f(*b);
            }
            Op::Concat(xs, _) => xs.iter().copied().for_each(f),
        }
    }

    /// The same op with every operand renamed by `f` (a compiled [`super::Plan`] renumbers nodes).
    pub(crate) fn map_parents(&self, f: impl Fn(NodeId) -> NodeId) -> Op<T>
    where
        T: Copy,
    {
        match self {
            Op::Leaf => Op::Leaf,
            Op::Const => Op::Const,
            Op::Invalid => Op::Invalid,
            Op::Unary(a, u) => Op::Unary(f(*a), *u),
            Op::Binary(a, b, k) => Op::Binary(f(*a), f(*b), *k),
            Op::MatMul { a, b, ta, tb } => Op::MatMul { a: f(*a), b: f(*b), ta: *ta, tb: *tb },
            Op::Permute(a, p) => Op::Permute(f(*a), p.clone()),
            Op::Reshape(a) => Op::Reshape(f(*a)),
            Op::BroadcastTo(a) => Op::BroadcastTo(f(*a)),
            Op::SumTo(a) => Op::SumTo(f(*a)),
            Op::Sum { a, axes, keepdims } => Op::Sum { a: f(*a), axes: *axes, keepdims: *keepdims },
            Op::Mean { a, axes, keepdims } => Op::Mean { a: f(*a), axes: *axes, keepdims: *keepdims },
            Op::Softmax(a, ax) => Op::Softmax(f(*a), *ax),
            Op::LogSoftmax(a, ax) => Op::LogSoftmax(f(*a), *ax),
            Op::Extreme { a, axis, keepdims, max } => {
                Op::Extreme { a: f(*a), axis: *axis, keepdims: *keepdims, max: *max }
            }
            Op::Where(m, a, b) => Op::Where(m.clone(), f(*a), f(*b)),
            Op::Concat(xs, ax) => Op::Concat(xs.iter().map(|&x| f(x)).collect(), *ax),
            Op::Slice { a, axis, start, end } => {
                Op::Slice { a: f(*a), axis: *axis, start: *start, end: *end }
            }
            Op::Pad { a, axis, start } => Op::Pad { a: f(*a), axis: *axis, start: *start },
            Op::IndexSelect { a, axis, index } => {
                Op::IndexSelect { a: f(*a), axis: *axis, index: index.clone() }
            }
            Op::IndexAdd { a, axis, index } => Op::IndexAdd { a: f(*a), axis: *axis, index: index.clone() },
            Op::Gather { a, axis, index } => Op::Gather { a: f(*a), axis: *axis, index: index.clone() },
            Op::ScatterAdd { a, axis, index } => {
                Op::ScatterAdd { a: f(*a), axis: *axis, index: index.clone() }
            }
        }
    }

    /// A short human name with parameters, e.g. `sigmoid`, `matmul(aᵀ)`, `sum(axes=[0])`.
    pub fn name(&self) -> String {
        match self {
            Op::Leaf => "input".into(),
            Op::Const => "const".into(),
            Op::Invalid => "invalid".into(),
            Op::Unary(_, u) => match u {
                Unary::Affine(s, c) => format!("affine({s}·x + {c})"),
                Unary::Square => "square".into(),
                Unary::Exp => "exp".into(),
                Unary::Log => "log".into(),
                Unary::Sqrt => "sqrt".into(),
                Unary::Powf(p) => format!("powf({p})"),
                Unary::Abs => "abs".into(),
                Unary::Sin => "sin".into(),
                Unary::Cos => "cos".into(),
                Unary::Sigmoid => "sigmoid".into(),
                Unary::Tanh => "tanh".into(),
                Unary::Relu => "relu".into(),
                Unary::LeakyRelu(a) => format!("leaky_relu({a})"),
                Unary::Softplus => "softplus".into(),
                Unary::Clamp(lo, hi) => format!("clamp({lo}, {hi})"),
                Unary::Step => "step".into(),
                Unary::Sign => "sign".into(),
                Unary::LeakySlope(a) => format!("leaky_slope({a})"),
                Unary::InRange(lo, hi) => format!("in_range({lo}, {hi})"),
            },
            Op::Binary(_, _, b) => match b {
                Binary::Add => "add".into(),
                Binary::Sub => "sub".into(),
                Binary::Mul => "mul".into(),
                Binary::Div => "div".into(),
                Binary::TanhGrad => "tanh_grad".into(),
            },
            Op::MatMul { ta, tb, .. } => match (ta, tb) {
                (false, false) => "matmul".into(),
                (true, false) => "matmul(aᵀ·b)".into(),
                (false, true) => "matmul(a·bᵀ)".into(),
                (true, true) => "matmul(aᵀ·bᵀ)".into(),
            },
            Op::Permute(_, p) => format!("permute({p:?})"),
            Op::Reshape(_) => "reshape".into(),
            Op::BroadcastTo(_) => "broadcast_to".into(),
            Op::SumTo(_) => "sum_to".into(),
            Op::Sum { axes, keepdims, .. } => format!("sum(axes={:?}{})", axes_list(*axes), keep(*keepdims)),
            Op::Mean { axes, keepdims, .. } => {
                format!("mean(axes={:?}{})", axes_list(*axes), keep(*keepdims))
            }
            Op::Softmax(_, ax) => format!("softmax(axis={ax})"),
            Op::LogSoftmax(_, ax) => format!("log_softmax(axis={ax})"),
            Op::Extreme { axis, keepdims, max, .. } => {
                format!("{}(axis={axis}{})", if *max { "max" } else { "min" }, keep(*keepdims))
            }
            Op::Where(..) => "where".into(),
            Op::Concat(_, ax) => format!("concat(axis={ax})"),
            Op::Slice { axis, start, end, .. } => format!("slice(axis={axis}, {start}..{end})"),
            Op::Pad { axis, start, .. } => format!("pad(axis={axis}, at={start})"),
            Op::IndexSelect { axis, .. } => format!("index_select(axis={axis})"),
            Op::IndexAdd { axis, .. } => format!("index_add(axis={axis})"),
            Op::Gather { axis, .. } => format!("gather(axis={axis})"),
            Op::ScatterAdd { axis, .. } => format!("scatter_add(axis={axis})"),
        }
    }
}

impl<T: Scalar> Op<T> {
    /// The forward kernel of any op: its value from its operands' values in `n`, with `shape`
    /// (the recorded output shape) supplying the sizes the op does not store. Used to replay
    /// ([`super::Plan`]) and to compute deferred values (see [`super::tape::Node::pending`]).
    pub(crate) fn eval(&self, n: &[Node<T>], shape: &[usize], pool: &mut Pool<T>) -> Result<ArrayD<T>> {
        let v = |id: &NodeId| &n[id.index()].value;
        match self {
            Op::Leaf | Op::Const | Op::Invalid => {
                Err(Error::Autodiff("internal: evaluating an input".into()))
            }
            Op::Unary(a, u) => Ok(unary_kernel(pool, v(a), *u)),
            Op::Binary(a, b, kind) => binary_kernel(pool, v(a), v(b), *kind),
            Op::MatMul { a, b, ta, tb } => k::matmul(pool, v(a), *ta, v(b), *tb),
            Op::Permute(a, p) => k::permute(pool, v(a), p),
            Op::Reshape(a) => k::reshape(pool, v(a), shape),
            Op::BroadcastTo(a) => k::broadcast_to(pool, v(a), shape),
            Op::SumTo(a) => k::sum_to(pool, v(a), shape),
            Op::Sum { a, axes, keepdims } => reduce_kernel(pool, v(a), false, *axes, *keepdims),
            Op::Mean { a, axes, keepdims } => reduce_kernel(pool, v(a), true, *axes, *keepdims),
            Op::Softmax(a, axis) => k::softmax(pool, v(a), *axis, false),
            Op::LogSoftmax(a, axis) => k::softmax(pool, v(a), *axis, true),
            Op::Extreme { a, axis, keepdims, max } => k::extreme(pool, v(a), *axis, *keepdims, *max),
            Op::Where(mask, a, b) => k::where_(pool, mask, v(a), v(b)),
            Op::Concat(xs, axis) => {
                let arrs: Vec<&ArrayD<T>> = xs.iter().map(v).collect();
                k::concat(pool, &arrs, *axis)
            }
            Op::Slice { a, axis, start, end } => k::slice(pool, v(a), *axis, *start, *end),
            Op::Pad { a, axis, start } => k::pad(pool, v(a), *axis, *start, shape[*axis]),
            Op::IndexSelect { a, axis, index } => k::index_select(pool, v(a), *axis, index),
            Op::IndexAdd { a, axis, index } => k::index_add(pool, v(a), *axis, index, shape[*axis]),
            Op::Gather { a, axis, index } => k::gather(pool, v(a), *axis, index),
            Op::ScatterAdd { a, axis, index } => k::scatter_add(pool, v(a), *axis, index, shape[*axis]),
        }
    }
}

fn keep(k: bool) -> &'static str {
    if k { ", keepdims" } else { "" }
}

/// The axes in a bit mask, ascending.
pub(crate) fn axes_list(mask: u64) -> Vec<usize> {
    (0..64).filter(|i| mask >> i & 1 == 1).collect()
}
