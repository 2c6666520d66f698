//! Record once, replay many times: a recorded graph compiled into a [`Plan`] — what `jax.jit`
//! is to jax, for a define-by-run tape.
//!
//! A training step records the same graph over and over; only the numbers change. A plan keeps
//! the graph of one output (its ancestors, renumbered), one value buffer and one adjoint buffer
//! per node, and for each node a precomputed [`Step`]: the broadcast pattern of a binary op, the
//! strides and sizes of a matrix product… Replaying it is then one `match` per node on flat
//! slices: no recording, no shape checks, no allocation, no `RefCell`.
//!
//! Elementwise ops, 1-D/2-D matrix products, full reductions and reshapes run on these fast
//! paths; every other op (and any broadcast the fast paths do not cover) runs through the same
//! forward kernels and the same derivative rules ([`backward_rule`]) as the tape, so a plan
//! replays any graph the tape can record. Shapes are fixed at compile time: a step with other
//! shapes is a new recording.

use ndarray::{ArrayBase, ArrayD, ArrayViewD, Data, Dimension};

use super::backward::{NH, Numeric, backward_rule};
use super::fast::{AdjSlots, Step, backward_step, step_of, zip_bc};
use super::kernels::{Strided, gemm_strided, sl};
use super::op::{Binary, Op};
use super::pool::Pool;
use super::tape::{Node, NodeId, Tape};
use super::var::{ScalarExt, Var, unary_into};
use crate::{Error, Result, Scalar};

/// A compiled recording ([`Tape::compile`]): replays the forward pass on new input values and
/// computes gradients, with preallocated buffers — what `jax.jit` is to jax.
///
/// The plan keeps the output's graph (its ancestors) with flat value and adjoint arenas and a
/// precomputed step per node: elementwise ops, 1-D/2-D matrix products, full reductions and
/// reshapes run on slices; every other op runs through the tape's kernels and derivative rules,
/// so any recorded graph replays. Shapes are fixed at compile time (new shapes: record again).
///
/// ```
/// use backprop::autodiff::Tape;
/// use ndarray::array;
///
/// let tape = Tape::<f64>::new();
/// let w = tape.var(&array![[1.0, 2.0], [3.0, 4.0]]);
/// let x = tape.constant(&array![1.0, -1.0]);
/// let loss = w.matmul(x).tanh().square().sum();
/// // Differentiate w.r.t. w; x is data that changes between replays.
/// let mut plan = tape.compile(loss, &[w], &[x])?;
/// let mut g = vec![ndarray::ArrayD::zeros(ndarray::IxDyn(&[0]))];
/// for x_new in [array![1.0, -1.0], array![0.5, 2.0]] {
///     plan.set_data(0, &x_new)?;
///     let l = plan.grad_into(&mut g)?;
///     // Same numbers as recording afresh:
///     let t = Tape::<f64>::new();
///     let (w2, x2) = (t.var(&array![[1.0, 2.0], [3.0, 4.0]]), t.constant(&x_new));
///     let l2 = w2.matmul(x2).tanh().square().sum();
///     assert!((l - l2.item()?).abs() < 1e-12);
///     assert!((&g[0] - &t.grad(l2, &[w2])?[0]).iter().all(|d| d.abs() < 1e-12));
/// }
/// # Ok::<(), backprop::Error>(())
/// ```
#[derive(Debug)]
pub struct Plan<T: Scalar = f64> {
    /// Every node's value, flat, in node order (`span[i]` locates node `i`).
    vals: Vec<T>,
    /// Adjoints of the nodes that depend on a parameter, flat (`adj_span[i]`).
    adj: Vec<T>,
    span: Vec<(usize, usize)>,
    adj_span: Vec<(usize, usize)>,
    steps: Vec<Step<T>>,
    relevant: Vec<bool>,
    /// The nodes as the tape holds them (op, shape, name): the [`Step::General`] ops run on
    /// these arrays, their numbers copied in from `vals` when needed.
    shadow: Vec<Node<T>>,
    shadow_adj: Vec<Option<ArrayD<T>>>,
    params: Vec<usize>,
    data: Vec<usize>,
    output: usize,
    pool: Pool<T>,
    /// Whether the values are those of the current inputs.
    fresh: bool,
    /// Check inputs, values and adjoints for NaN/∞ (inherited from the tape).
    check_finite: bool,
}

impl<T: Scalar> Tape<T> {
    /// Compiles the graph of `output` into a [`Plan`] that replays it on new values of `params`
    /// (differentiated) and `data` (settable, not differentiated). Both must be inputs or
    /// constants of this tape; every other leaf keeps its recorded value. The tape is not
    /// borrowed afterwards: reset it or drop it freely.
    pub fn compile(&self, output: Var<'_, T>, params: &[Var<'_, T>], data: &[Var<'_, T>]) -> Result<Plan<T>> {
        self.status()?;
        self.check_var(output, &"output")?;
        let check_finite = self.inner.borrow().check_finite;
        let nodes = self.nodes();
        for (i, v) in params.iter().chain(data).enumerate() {
            self.check_var(*v, &format_args!("plan input {i}"))?;
            if !matches!(nodes[v.id.index()].op, Op::Leaf | Op::Const) {
                return Err(Error::invalid(
                    "compile",
                    format!(
                        "plan input {i} is node {} (`{}`), not an input or constant: only leaves can be set",
                        v.id.index(),
                        nodes[v.id.index()].op.name()
                    ),
                ));
            }
        }
        // Keep the ancestors of the output, and the inputs even if the output ignores them.
        let top = params.iter().chain(data).map(|v| v.id.index()).fold(output.id.index(), usize::max);
        let mut keep = vec![false; top + 1];
        keep[output.id.index()] = true;
        for v in params.iter().chain(data) {
            keep[v.id.index()] = true;
        }
        for i in (0..=output.id.index()).rev() {
            if keep[i] {
                nodes[i].op.for_each_parent(|p| keep[p.index()] = true);
            }
        }
        let mut new_id = vec![u32::MAX; top + 1];
        let mut pool = Pool::default();
        let mut shadow = Vec::new();
        let (mut vals, mut span) = (Vec::new(), Vec::new());
        for (i, node) in nodes.iter().enumerate().take(top + 1) {
            if keep[i] {
                new_id[i] = shadow.len() as u32;
                span.push((vals.len(), node.value.len()));
                vals.extend(node.value.iter().copied());
                shadow.push(Node {
                    op: node.op.map_parents(|p| NodeId(new_id[p.index()])),
                    value: pool.copy(&node.value),
                    name: node.name.clone(),
                    pending: false,
                });
            }
        }
        drop(nodes);
        let idx = |v: &Var<'_, T>| new_id[v.id.index()] as usize;
        let params: Vec<usize> = params.iter().map(idx).collect();
        let data: Vec<usize> = data.iter().map(idx).collect();
        let mut relevant = vec![false; shadow.len()];
        for &p in &params {
            relevant[p] = true;
        }
        for i in 0..shadow.len() {
            if !relevant[i] {
                let mut r = false;
                shadow[i].op.for_each_parent(|p| r |= relevant[p.index()]);
                relevant[i] = r;
            }
        }
        let mut n_adj = 0;
        let adj_span = span
            .iter()
            .zip(&relevant)
            .map(|(&(_, len), &r)| {
                let s = (n_adj, if r { len } else { 0 });
                n_adj += s.1;
                s
            })
            .collect();
        let steps = shadow.iter().map(|n| step_of(n, &shadow)).collect();
        Ok(Plan {
            vals,
            adj: vec![T::zero(); n_adj],
            span,
            adj_span,
            steps,
            relevant,
            shadow_adj: shadow.iter().map(|_| None).collect(),
            shadow,
            params,
            data,
            output: new_id[output.id.index()] as usize,
            pool,
            fresh: true,
            check_finite,
        })
    }
}

/// Slice `(offset, len)` of an arena.
#[inline(always)]
fn part<T>(v: &[T], (o, n): (usize, usize)) -> &[T] {
    &v[o..o + n]
}

#[inline(always)]
fn part_mut<T>(v: &mut [T], (o, n): (usize, usize)) -> &mut [T] {
    &mut v[o..o + n]
}

/// The plan's adjoint arena as [`AdjSlots`].
struct Arena<'a, T> {
    adj: &'a mut [T],
    span: &'a [(usize, usize)],
}

impl<T> AdjSlots<T> for Arena<'_, T> {
    fn slot(&mut self, j: usize) -> &mut [T] {
        part_mut(self.adj, self.span[j])
    }
}

impl<T: Scalar> Plan<T> {
    /// Number of nodes the plan replays.
    pub fn len(&self) -> usize {
        self.shadow.len()
    }

    /// Whether the plan has no nodes (never: it holds at least its output).
    pub fn is_empty(&self) -> bool {
        self.shadow.is_empty()
    }

    /// Turns the NaN/∞ check on or off (a plan starts with its tape's [`Tape::check_finite`]):
    /// inputs when set, every value in [`Plan::forward`] and every adjoint in the backward sweep,
    /// reporting the first op that produced one. Costs one pass over each buffer.
    pub fn set_check_finite(&mut self, on: bool) {
        self.check_finite = on;
    }

    /// Node `i`'s value, checked for NaN/∞.
    fn value_finite(&self, i: usize) -> Result<()> {
        let v = part(&self.vals, self.span[i]);
        match v.iter().position(|x| !x.is_finite()) {
            None => Ok(()),
            Some(j) => Err(Error::non_finite(
                "plan forward pass",
                format!(
                    "op `{}` (node {i}) produced {} at flat index {j} of shape {:?}",
                    self.shadow[i].op.name(),
                    v[j],
                    self.shadow[i].value.shape()
                ),
            )),
        }
    }

    /// The adjoints of node `i`'s operands after its rule ran, checked for NaN/∞.
    fn adjoints_finite(&self, i: usize) -> Result<()> {
        let mut bad = None;
        self.shadow[i].op.for_each_parent(|p| {
            let a = part(&self.adj, self.adj_span[p.index()]);
            if bad.is_none()
                && let Some(j) = a.iter().position(|x| !x.is_finite())
            {
                bad = Some((p.index(), j, a[j]));
            }
        });
        match bad {
            None => Ok(()),
            Some((p, j, x)) => Err(Error::non_finite(
                "plan backward pass",
                format!(
                    "the rule of op `{}` (node {i}) produced {x} at flat index {j} of the adjoint of node {p}",
                    self.shadow[i].op.name()
                ),
            )),
        }
    }

    fn set(
        &mut self,
        which: &str,
        k: usize,
        value: &ArrayBase<impl Data<Elem = T>, impl Dimension>,
    ) -> Result<()> {
        let list = if which == "param" { &self.params } else { &self.data };
        let Some(&i) = list.get(k) else {
            return Err(Error::invalid(
                "plan",
                format!("{which} {k} does not exist (the plan has {})", list.len()),
            ));
        };
        let shape = self.shadow[i].value.shape();
        if shape != value.shape() {
            return Err(Error::shape(
                "plan",
                format!(
                    "{which} {k} was recorded as {shape:?} but set to {:?}; record the graph again for new shapes",
                    value.shape()
                ),
            ));
        }
        if self.check_finite
            && let Some((j, x)) = value.iter().enumerate().find(|(_, x)| !x.is_finite())
        {
            return Err(Error::non_finite("plan", format!("{which} {k} is {x} at flat index {j}")));
        }
        let d = part_mut(&mut self.vals, self.span[i]);
        match value.as_slice() {
            Some(s) => d.copy_from_slice(s),
            None => d.iter_mut().zip(value.iter()).for_each(|(d, &x)| *d = x),
        }
        self.fresh = false;
        Ok(())
    }

    /// Sets parameter `k` (in the order given to [`Tape::compile`]); the shape must not change.
    pub fn set_param(
        &mut self,
        k: usize,
        value: &ArrayBase<impl Data<Elem = T>, impl Dimension>,
    ) -> Result<()> {
        self.set("param", k, value)
    }

    /// Sets data input `k`; the shape must not change.
    pub fn set_data(
        &mut self,
        k: usize,
        value: &ArrayBase<impl Data<Elem = T>, impl Dimension>,
    ) -> Result<()> {
        self.set("data", k, value)
    }

    /// The output's value after the last [`Plan::forward`].
    pub fn output(&self) -> ArrayViewD<'_, T> {
        let shape = self.shadow[self.output].value.raw_dim();
        ArrayViewD::from_shape(shape, part(&self.vals, self.span[self.output]))
            .expect("row-major, sized at compile")
    }

    /// Copies the current values of node `i` and its operands into their shadow arrays.
    fn sync_shadow(&mut self, i: usize) {
        let op = self.shadow[i].op.clone();
        let (vals, span, shadow) = (&self.vals, &self.span, &mut self.shadow);
        let mut copy = |j: usize| {
            shadow[j].value.as_slice_mut().expect("row-major").copy_from_slice(part(vals, span[j]));
        };
        copy(i);
        op.for_each_parent(|p| copy(p.index()));
    }

    /// Recomputes every node from the current inputs.
    pub fn forward(&mut self) -> Result<()> {
        self.fresh = false;
        for i in 0..self.steps.len() {
            let (o, n) = self.span[i];
            let (before, rest) = self.vals.split_at_mut(o);
            let y = &mut rest[..n];
            let sp = &self.span;
            match self.steps[i] {
                Step::Input => {}
                Step::Unary(a, u) => unary_into(u, part(before, sp[a]), y),
                Step::Binary { a, b, kind, bca, bcb } => {
                    let (a, b) = (part(before, sp[a]), part(before, sp[b]));
                    match kind {
                        Binary::Add => zip_bc(y, a, bca, b, bcb, |x, z| x + z),
                        Binary::Sub => zip_bc(y, a, bca, b, bcb, |x, z| x - z),
                        Binary::Mul => zip_bc(y, a, bca, b, bcb, |x, z| x * z),
                        Binary::Div => zip_bc(y, a, bca, b, bcb, |x, z| x / z),
                        Binary::TanhGrad => zip_bc(y, a, bca, b, bcb, |x, z| x.times_tanh_slope(z)),
                    }
                }
                Step::MatMul { a, b, sa, sb, mkn } => {
                    let sy = Strided { rs: mkn.2, cs: 1 };
                    gemm_strided(false, y, sy, part(before, sp[a]), sa, part(before, sp[b]), sb, mkn)?;
                }
                Step::Reduce { a, scale } => {
                    let s = part(before, sp[a]).iter().fold(T::zero(), |acc, &x| acc + x);
                    y[0] = if scale == T::one() { s } else { s * scale };
                }
                Step::Reshape(a) => y.copy_from_slice(part(before, sp[a])),
                Step::General => {
                    self.sync_shadow(i);
                    let node = &self.shadow[i];
                    let v = node.op.eval(&self.shadow, node.value.shape(), &mut self.pool)?;
                    part_mut(&mut self.vals, self.span[i]).copy_from_slice(sl(&v));
                    self.pool.recycle(v);
                }
            }
            if self.check_finite && !matches!(self.steps[i], Step::Input) {
                self.value_finite(i)?;
            }
        }
        self.fresh = true;
        Ok(())
    }

    /// The reverse sweep from the (one-element) output: leaves ∂output/∂param in the adjoint
    /// arena. Needs values of the current inputs (run [`Plan::forward`] first).
    fn backward(&mut self) -> Result<()> {
        if !self.fresh {
            return Err(Error::Autodiff("plan: inputs changed since the last forward pass".into()));
        }
        let out = self.output;
        if self.span[out].1 != 1 {
            return Err(Error::Autodiff(format!(
                "plan: the gradient needs a one-element output but it has shape {:?}",
                self.shadow[out].value.shape()
            )));
        }
        self.adj.fill(T::zero());
        if !self.relevant[out] {
            return Ok(()); // the output depends on no parameter
        }
        self.adj[self.adj_span[out].0] = T::one();
        for i in (0..=out).rev() {
            if !self.relevant[i] {
                continue;
            }
            let (vals, sp, asp, rel) = (&self.vals, &self.span, &self.adj_span, &self.relevant);
            let (lo, hi) = self.adj.split_at_mut(asp[i].0);
            let g = &hi[..asp[i].1];
            match self.steps[i] {
                Step::General => self.general_backward(i)?,
                step => {
                    backward_step(step, g, &|j| part(vals, sp[j]), i, rel, &mut Arena { adj: lo, span: asp })?
                }
            }
            if self.check_finite {
                self.adjoints_finite(i)?;
            }
        }
        Ok(())
    }

    /// Node `i`'s rule through the tape's [`backward_rule`] on the shadow arrays; the operands'
    /// adjoints are then added into the arena.
    fn general_backward(&mut self, i: usize) -> Result<()> {
        self.sync_shadow(i);
        let shape = self.shadow[i].value.shape();
        let g = self.pool.array(shape, part(&self.adj, self.adj_span[i]).iter().copied());
        let mut bk = Numeric {
            nodes: &self.shadow,
            pool: &mut self.pool,
            adj: &mut self.shadow_adj,
            relevant: &self.relevant,
            check_finite: self.check_finite,
            current: i,
        };
        backward_rule(&mut bk, &self.shadow[i].op, NodeId(i as u32), NH::Own(g))?;
        let (adj, asp, shadow_adj, pool) =
            (&mut self.adj, &self.adj_span, &mut self.shadow_adj, &mut self.pool);
        self.shadow[i].op.for_each_parent(|p| {
            if let Some(a) = shadow_adj[p.index()].take() {
                part_mut(adj, asp[p.index()]).iter_mut().zip(sl(&a)).for_each(|(d, &x)| *d += x);
                pool.recycle(a);
            }
        });
        Ok(())
    }

    /// ∂output/∂params at the current values (after [`Plan::forward`]), written into `grads`
    /// (resized if their shape differs: reuse them and nothing is allocated).
    pub fn backward_into(&mut self, grads: &mut [ArrayD<T>]) -> Result<()> {
        if grads.len() != self.params.len() {
            return Err(Error::invalid(
                "plan",
                format!("{} gradient arrays for {} parameters", grads.len(), self.params.len()),
            ));
        }
        self.backward()?;
        for (dst, &p) in grads.iter_mut().zip(&self.params) {
            let src = part(&self.adj, self.adj_span[p]);
            let shape = self.shadow[p].value.shape();
            if dst.shape() != shape || dst.as_slice().is_none() {
                *dst = ArrayD::zeros(shape);
            }
            dst.as_slice_mut().expect("row-major").copy_from_slice(src);
        }
        Ok(())
    }

    /// Forward and backward: returns the (one-element) output and writes ∂output/∂params into
    /// `grads`.
    pub fn grad_into(&mut self, grads: &mut [ArrayD<T>]) -> Result<T> {
        self.forward()?;
        self.backward_into(grads)?;
        Ok(self.vals[self.span[self.output].0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, IxDyn, array};

    fn zeros(n: usize) -> Vec<ArrayD<f64>> {
        (0..n).map(|_| ArrayD::zeros(IxDyn(&[0]))).collect()
    }

    #[test]
    fn replay_equals_a_fresh_recording_on_general_ops() {
        // softmax, max, permute, concat, gather, batched matmul: the General path.
        fn record<'t>(
            t: &'t Tape<f64>,
            a: &ArrayD<f64>,
            b: &ArrayD<f64>,
        ) -> (Var<'t, f64>, Var<'t, f64>, Var<'t, f64>) {
            let (va, vb) = (t.var(a), t.var(b));
            let bm = va.reshape(&[1, 2, 3]).matmul(vb);
            let h = bm.reshape(&[2, 2]).softmax(1) + va.max_axis(1, true);
            let c = t.concat(&[h, va.permute(&[0, 1]).slice(1, 0, 2)], 0);
            let idx = ArrayD::from_shape_vec(IxDyn(&[4, 1]), vec![1, 0, 1, 0]).unwrap();
            (c.gather(1, &idx).exp().sum() + (va * vb.t()).sum(), va, vb)
        }
        let a0 = array![[0.3, -1.2, 0.8], [1.1, 0.1, -0.6]].into_dyn();
        let b0 = array![[0.5, -0.2], [0.1, 0.4], [-0.3, 0.8]].into_dyn();
        let tape = Tape::<f64>::new();
        let (l, va, vb) = record(&tape, &a0, &b0);
        let mut plan = tape.compile(l, &[va, vb], &[]).unwrap();
        let mut g = zeros(2);
        for s in [1.0, -0.5, 2.0] {
            let (a, b) = (&a0 * s + 0.1, &b0 * (1.0 - s));
            plan.set_param(0, &a).unwrap();
            plan.set_param(1, &b).unwrap();
            let loss = plan.grad_into(&mut g).unwrap();
            let t = Tape::<f64>::new();
            let (l2, va, vb) = record(&t, &a, &b);
            let want = t.grad(l2, &[va, vb]).unwrap();
            assert!((loss - l2.item().unwrap()).abs() < 1e-12);
            for (p, q) in g.iter().zip(&want) {
                assert!(p.iter().zip(q).all(|(x, y)| (x - y).abs() < 1e-12), "{p} vs {q}");
            }
        }
    }

    #[test]
    fn misuse_is_an_error() {
        let tape = Tape::<f64>::new();
        let w = tape.var(&array![1.0, 2.0]);
        let y = (w * w).sum();
        let v = w * 2.0;
        let err = tape.compile(y, &[v], &[]).unwrap_err().to_string();
        assert!(err.contains("not an input"), "{err}");
        let mut plan = tape.compile(y, &[w], &[]).unwrap();
        assert!(plan.set_param(0, &array![1.0, 2.0, 3.0]).unwrap_err().to_string().contains("[2]"));
        assert!(plan.set_param(1, &array![1.0, 2.0]).is_err());
        assert!(plan.set_data(0, &array![1.0, 2.0]).is_err());
        assert!(plan.backward_into(&mut zeros(2)).is_err());
        let mut g = zeros(1);
        plan.set_param(0, &array![3.0, -1.0]).unwrap();
        assert!(plan.backward_into(&mut g).is_err(), "inputs changed since the last forward");
        assert_eq!(plan.grad_into(&mut g).unwrap(), 10.0);
        assert_eq!(g[0], array![6.0, -2.0].into_dyn());
        let mut vplan = tape.compile(v, &[w], &[]).unwrap();
        vplan.forward().unwrap();
        assert_eq!(vplan.output(), array![2.0, 4.0].into_dyn(), "a plan starts from the recorded values");
        assert!(vplan.backward_into(&mut g).unwrap_err().to_string().contains("one-element"));
    }

    #[test]
    fn check_finite_names_the_op_in_replays_as_the_tape_does() {
        let tape = Tape::<f64>::new().check_finite(true);
        let w = tape.var(&array![1.0, 4.0]);
        let l = w.sqrt().sum();
        let mut plan = tape.compile(l, &[w], &[]).unwrap();
        let mut g = zeros(1);
        assert_eq!(plan.grad_into(&mut g).unwrap(), 3.0);
        // √ of a negative entry: the forward value is NaN.
        plan.set_param(0, &array![1.0, -4.0]).unwrap();
        let err = plan.grad_into(&mut g).unwrap_err().to_string();
        assert!(err.contains("forward") && err.contains("sqrt") && err.contains("flat index 1"), "{err}");
        // √0 is finite, its derivative 1/(2√0) is not: the adjoint check catches it.
        plan.set_param(0, &array![0.0, 4.0]).unwrap();
        let err = plan.grad_into(&mut g).unwrap_err().to_string();
        assert!(err.contains("backward") && err.contains("`sqrt`") && err.contains("flat index 0"), "{err}");
        let err = plan.set_param(0, &array![f64::NAN, 1.0]).unwrap_err().to_string();
        assert!(err.contains("param 0") && err.contains("NaN"), "{err}");
        // Off: NaN/∞ propagate silently, as on an unchecked tape.
        plan.set_check_finite(false);
        plan.set_param(0, &array![0.0, 4.0]).unwrap();
        plan.grad_into(&mut g).unwrap();
        assert!(g[0][0].is_infinite());
    }

    #[test]
    fn steady_state_replay_keeps_its_buffers() {
        let tape = Tape::<f32>::new();
        let w = tape.var(&Array2::<f32>::from_elem((30, 20), 0.1));
        let x = tape.constant(&Array2::<f32>::from_elem((8, 20), 0.5));
        let l = x.matmul_t(w, false, true).tanh().mean();
        let mut plan = tape.compile(l, &[w], &[x]).unwrap();
        let mut g: Vec<ArrayD<f32>> = vec![ArrayD::zeros(IxDyn(&[30, 20]))];
        let ptr = g[0].as_ptr();
        for _ in 0..3 {
            plan.grad_into(&mut g).unwrap();
        }
        assert_eq!(g[0].as_ptr(), ptr, "gradient written in place");
        let want = tape.grad(l, &[w]).unwrap();
        assert!(g[0].iter().zip(&want[0]).all(|(a, b)| (a - b).abs() < 1e-6));
    }
}
