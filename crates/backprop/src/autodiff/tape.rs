//! The tape: an append-only arena of nodes in evaluation order.
//!
//! Because every node is pushed after its operands, the nodes are already topologically
//! sorted: the backward pass is one reverse sweep, with no graph search, no recursion and no
//! reference counting. [`Tape::reset`] empties the arena but keeps its capacity and hands every
//! tensor buffer to a pool, so a training loop that reuses one tape stops allocating after the
//! first step.

use std::borrow::Cow;
use std::cell::{Ref, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn};

use super::op::Op;
use super::pool::Pool;
use super::var::Var;
use crate::{Error, Result, Scalar};

/// The position of a node on its tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(crate) u32);

impl NodeId {
    /// The node's index in evaluation order.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One recorded operation and its value.
#[derive(Debug)]
pub(crate) struct Node<T> {
    pub(crate) op: Op<T>,
    pub(crate) value: ArrayD<T>,
    pub(crate) name: Option<Cow<'static, str>>,
    /// A value not computed yet (a buffer of the right shape, contents unspecified): the last contribution to an input's
    /// recorded gradient in [`Tape::hvp`], whose value nothing reads. An op that uses it as an
    /// operand computes it first ([`Op::eval`]).
    pub(crate) pending: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Inner<T> {
    pub(crate) nodes: Vec<Node<T>>,
    pub(crate) pool: Pool<T>,
    /// The first error any op met; every later result is invalid until [`Tape::reset`].
    pub(crate) error: Option<Error>,
    pub(crate) check_finite: bool,
    /// Per-node adjoints of the numeric backward pass, kept between passes for their capacity.
    pub(crate) adjoints: Vec<Option<ArrayD<T>>>,
    /// Small adjoint arrays of the last pass, by node: a repeated step reuses them as they are
    /// (zeroed) instead of building new arrays.
    pub(crate) adjoint_cache: Vec<Option<ArrayD<T>>>,
    /// Per-node "depends on a requested input", kept for its capacity.
    pub(crate) relevant: Vec<bool>,
}

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

/// A define-by-run tape of tensor operations in `T` (`f32` or `f64`).
///
/// Create inputs with [`Tape::var`], combine them with [`Var`]'s operators and methods, then ask
/// for gradients with [`Tape::grad`] (or [`super::grad`]). Ops never panic on bad input: a failed
/// op (shape mismatch, a `Var` from another tape …) records the first error on the tape and
/// returns an invalid `Var`; every later value or gradient request returns that error.
#[derive(Debug)]
pub struct Tape<T: Scalar = f64> {
    id: u64,
    pub(crate) inner: RefCell<Inner<T>>,
}

impl<T: Scalar> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The most bytes of buffers a dropped tape leaves to the next one on its thread.
const KEEP_LIMIT: usize = 128 << 20;

impl<T: Scalar> Drop for Tape<T> {
    /// Hands the tape's buffers to the next tape made on this thread, as [`Tape::reset`] would
    /// keep them: recording 784-256-256-10 (f32, batch 1024) and its gradient on a new tape per
    /// step took 16–18 ms, on a reset tape 9.4–10.4 ms — freed megabytes came back from the
    /// kernel as new pages every step.
    fn drop(&mut self) {
        self.truncate(0);
        let inner = self.inner.get_mut();
        if inner.pool.bytes() > KEEP_LIMIT {
            return;
        }
        let kept = Inner { error: None, check_finite: false, ..std::mem::take(inner) };
        crate::thread_cache::keep(kept);
    }
}

/// Re-creates an error of the kinds the tape records (the `Error` type is not `Clone`).
pub(crate) fn copy_error(e: &Error) -> Error {
    match e {
        Error::Shape { op, detail } => Error::shape(op.clone(), detail.clone()),
        Error::NonFinite { what, detail } => Error::non_finite(what.clone(), detail.clone()),
        Error::InvalidArgument { name, message } => Error::invalid(name.clone(), message.clone()),
        Error::Autodiff(m) => Error::Autodiff(m.clone()),
        other => Error::Autodiff(other.to_string()),
    }
}

/// The first non-finite entry of `a`, if any.
pub(crate) fn first_non_finite<T: Scalar>(a: &ArrayD<T>) -> Option<(usize, T)> {
    if a.as_slice_memory_order().is_some_and(crate::tensor::all_finite) {
        return None;
    }
    a.iter().enumerate().find(|(_, x)| !x.is_finite()).map(|(i, &x)| (i, x))
}

impl<T: Scalar> Tape<T> {
    /// An empty tape with a process-unique id.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty tape with room for `nodes` nodes.
    ///
    /// It starts with the buffers of the last tape dropped on this thread, so a loop that
    /// records each step on a new tape allocates, after the first step, no more than one that
    /// [`Tape::reset`]s a single tape.
    pub fn with_capacity(nodes: usize) -> Self {
        let mut inner = crate::thread_cache::take::<Inner<T>>().unwrap_or_default();
        inner.nodes.reserve(nodes);
        Tape { id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed), inner: RefCell::new(inner) }
    }

    /// Builder: check every forward value and every backward adjoint for NaN/∞ and report the
    /// first op that produced one (costs one pass over each tensor).
    pub fn check_finite(self, on: bool) -> Self {
        self.set_check_finite(on);
        self
    }

    /// Turns the NaN/∞ check on or off.
    pub fn set_check_finite(&self, on: bool) {
        self.inner.borrow_mut().check_finite = on;
    }

    /// The tape's process-unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.inner.borrow().nodes.len()
    }

    /// Whether no node is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Node capacity of the arena (unchanged by [`Tape::reset`]).
    pub fn capacity(&self) -> usize {
        self.inner.borrow().nodes.capacity()
    }

    /// Free tensor buffers held for reuse.
    pub fn pooled_buffers(&self) -> usize {
        self.inner.borrow().pool.free_buffers()
    }

    /// Forgets every node and the recorded error; keeps the arena's capacity and every buffer.
    ///
    /// Vars of the previous recording must not be used afterwards; the borrow checker cannot see
    /// this, so a stale `Var` indexes a new node or yields an out-of-range error, never UB.
    pub fn reset(&mut self) {
        self.truncate(0);
        self.inner.get_mut().error = None;
    }

    /// Drops the nodes from index `len` on, recycling their buffers.
    pub(crate) fn truncate(&self, len: usize) {
        let mut g = self.inner.borrow_mut();
        let inner = &mut *g;
        while inner.nodes.len() > len {
            let node = inner.nodes.pop().expect("len checked");
            inner.pool.recycle(node.value);
        }
    }

    /// The first error recorded by an op, if any.
    pub fn error(&self) -> Option<Error> {
        self.inner.borrow().error.as_ref().map(copy_error)
    }

    /// `Ok` unless an op failed.
    pub fn status(&self) -> Result<()> {
        match self.error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(crate) fn record_error(&self, e: Error) {
        let mut g = self.inner.borrow_mut();
        if g.error.is_none() {
            g.error = Some(e);
        }
    }

    /// A differentiable input holding a copy of `value`.
    pub fn var<S: Data<Elem = T>, D: Dimension>(&self, value: &ArrayBase<S, D>) -> Var<'_, T> {
        self.leaf(Op::Leaf, value, None)
    }

    /// A differentiable input with a name (shown by [`Tape::to_dot`] and `backprop explain`).
    pub fn var_named<S: Data<Elem = T>, D: Dimension>(
        &self,
        name: impl Into<Cow<'static, str>>,
        value: &ArrayBase<S, D>,
    ) -> Var<'_, T> {
        self.leaf(Op::Leaf, value, Some(name.into()))
    }

    /// A 0-d differentiable input.
    pub fn scalar(&self, x: T) -> Var<'_, T> {
        self.push(Op::Leaf, |_, pool| Ok(pool.full(&[], x)))
    }

    /// A named 0-d input (no allocation: the value goes straight into a pooled buffer).
    pub fn scalar_named(&self, name: impl Into<Cow<'static, str>>, x: T) -> Var<'_, T> {
        let v = self.scalar(x);
        self.inner.borrow_mut().nodes[v.id.index()].name = Some(name.into());
        v
    }

    /// A named 0-d constant.
    pub fn constant_scalar_named(&self, name: impl Into<Cow<'static, str>>, x: T) -> Var<'_, T> {
        let v = self.push(Op::Const, |_, pool| Ok(pool.full(&[], x)));
        self.inner.borrow_mut().nodes[v.id.index()].name = Some(name.into());
        v
    }

    /// A constant: never differentiated (data, targets).
    pub fn constant<S: Data<Elem = T>, D: Dimension>(&self, value: &ArrayBase<S, D>) -> Var<'_, T> {
        self.leaf(Op::Const, value, None)
    }

    /// A named constant.
    pub fn constant_named<S: Data<Elem = T>, D: Dimension>(
        &self,
        name: impl Into<Cow<'static, str>>,
        value: &ArrayBase<S, D>,
    ) -> Var<'_, T> {
        self.leaf(Op::Const, value, Some(name.into()))
    }

    fn leaf<S: Data<Elem = T>, D: Dimension>(
        &self,
        op: Op<T>,
        value: &ArrayBase<S, D>,
        name: Option<Cow<'static, str>>,
    ) -> Var<'_, T> {
        let v = self.push(op, |_, pool| {
            Ok(match value.as_slice() {
                Some(s) => pool.copy_slice(value.shape(), s),
                None => pool.array(value.shape(), value.iter().copied()),
            })
        });
        if let Some(n) = name {
            self.inner.borrow_mut().nodes[v.id.index()].name = Some(n);
        }
        v
    }

    /// A constant computed from the values of existing nodes (no graph edge: zero derivative).
    pub(crate) fn push_const(
        &self,
        f: impl FnOnce(&[Node<T>], &mut Pool<T>) -> Result<ArrayD<T>>,
    ) -> Var<'_, T> {
        self.push(Op::Const, f)
    }

    /// Records `op`, its value computed by `f` from earlier nodes.
    ///
    /// An op over an invalid operand is invalid without running `f`; a failing `f` records its
    /// error and yields an invalid node.
    pub(crate) fn push(
        &self,
        op: Op<T>,
        f: impl FnOnce(&[Node<T>], &mut Pool<T>) -> Result<ArrayD<T>>,
    ) -> Var<'_, T> {
        let mut g = self.inner.borrow_mut();
        let inner = &mut *g;
        let (mut bad, mut pending) = (false, false);
        let n = inner.nodes.len();
        op.for_each_parent(|p| {
            bad |= p.index() >= n || matches!(inner.nodes[p.index()].op, Op::Invalid);
            pending |= !bad && inner.nodes[p.index()].pending;
        });
        if pending && !bad {
            op.for_each_parent(|p| Self::materialise(inner, p.index()));
        }
        let result = if bad { Err(None) } else { f(&inner.nodes, &mut inner.pool).map_err(Some) };
        let (op, value) = match result {
            Ok(v) => {
                if inner.check_finite
                    && inner.error.is_none()
                    && let Some((i, x)) = first_non_finite(&v)
                {
                    inner.error = Some(Error::non_finite(
                        "forward pass",
                        format!(
                            "op `{}` (node {n}) produced {x} at flat index {i} of shape {:?}",
                            op.name(),
                            v.shape()
                        ),
                    ));
                }
                (op, v)
            }
            Err(e) => {
                if let Some(e) = e
                    && inner.error.is_none()
                {
                    inner.error = Some(e);
                }
                (Op::Invalid, ArrayD::from_shape_vec(IxDyn(&[0]), Vec::new()).expect("empty"))
            }
        };
        inner.nodes.push(Node { op, value, name: None, pending: false });
        Var::new(NodeId(n as u32), self)
    }

    /// Computes a pending node's value (its operands are never pending themselves).
    fn materialise(inner: &mut Inner<T>, p: usize) {
        if !inner.nodes[p].pending {
            return;
        }
        let (before, rest) = inner.nodes.split_at_mut(p);
        let node = &mut rest[0];
        node.pending = false;
        match node.op.eval(before, node.value.shape(), &mut inner.pool) {
            Ok(v) => {
                if inner.check_finite
                    && inner.error.is_none()
                    && let Some((i, x)) = first_non_finite(&v)
                {
                    inner.error = Some(Error::non_finite(
                        "backward pass",
                        format!("op `{}` (node {p}) produced {x} at flat index {i}", node.op.name()),
                    ));
                }
                let old = std::mem::replace(&mut node.value, v);
                inner.pool.recycle(old);
            }
            Err(e) => {
                if inner.error.is_none() {
                    inner.error = Some(e);
                }
            }
        }
    }

    /// Records `op` with its value deferred (see [`Node::pending`]); `shape` is the value's shape.
    pub(crate) fn push_pending(&self, op: Op<T>, shape: &[usize]) -> Var<'_, T> {
        let mut g = self.inner.borrow_mut();
        let inner = &mut *g;
        let n = inner.nodes.len();
        // Never read before `materialise` replaces it: any contents will do.
        let value = inner.pool.stale(shape, T::zero());
        inner.nodes.push(Node { op, value, name: None, pending: true });
        Var::new(NodeId(n as u32), self)
    }

    /// Whether node `id`'s value is deferred.
    pub(crate) fn is_pending(&self, id: NodeId) -> bool {
        self.inner.borrow().nodes.get(id.index()).is_some_and(|n| n.pending)
    }

    /// Read access to the nodes (for export and inspection).
    pub(crate) fn nodes(&self) -> Ref<'_, [Node<T>]> {
        Ref::map(self.inner.borrow(), |i| i.nodes.as_slice())
    }

    /// Errors unless `v` belongs to this tape and is valid.
    pub(crate) fn check_var(&self, v: Var<'_, T>, what: &dyn std::fmt::Display) -> Result<()> {
        if v.tape_id() != self.id {
            return Err(Error::Autodiff(format!(
                "{what} is a Var of tape #{} but was used with tape #{}: vars cannot cross tapes",
                v.tape_id(),
                self.id
            )));
        }
        let inner = self.inner.borrow();
        match inner.nodes.get(v.id.index()) {
            None => Err(Error::Autodiff(format!(
                "{what} refers to node {} but the tape has {} nodes (used after reset?)",
                v.id.index(),
                inner.nodes.len()
            ))),
            Some(n) if matches!(n.op, Op::Invalid) => Err(inner
                .error
                .as_ref()
                .map(copy_error)
                .unwrap_or_else(|| Error::Autodiff(format!("{what} is invalid")))),
            Some(_) => Ok(()),
        }
    }
}
