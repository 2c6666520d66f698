//! Asking the tape for derivatives: gradients, vector-Jacobian products, Jacobians, and — by
//! recording the backward pass itself — gradients of gradients, Hessian-vector products and
//! Hessians.
//!
//! Gradients are returned, never stored in the inputs: there is no stale `.grad` to zero.

use ndarray::{Array2, ArrayD, IxDyn};

use super::backward::{Graph, NH, Numeric, backward_rule};
use super::fast::{AdjSlots, Step, backward_step, step_of};
use super::kernels::sl;
use super::op::Op;
use super::tape::{NodeId, Tape, copy_error};
use super::var::Var;
use crate::{Error, Result, Scalar};

/// Marks the nodes up to `top` that depend on one of `inputs` (all nodes if `inputs` is `None`).
fn mark_relevant<T: Scalar>(
    nodes: &[super::tape::Node<T>],
    top: usize,
    inputs: Option<&[Var<'_, T>]>,
    out: &mut Vec<bool>,
) {
    out.clear();
    match inputs {
        None => out.resize(top + 1, true),
        Some(inputs) => {
            out.resize(top + 1, false);
            for v in inputs {
                if v.id.index() <= top {
                    out[v.id.index()] = true;
                }
            }
            for i in 0..=top {
                if !out[i] {
                    let mut r = false;
                    nodes[i].op.for_each_parent(|p| r |= out[p.index()]);
                    out[i] = r;
                }
            }
        }
    }
}

/// A sweep's seed adjoint: owned, or borrowed from the caller (copied only where needed).
enum Seed<'s, T> {
    Own(ArrayD<T>),
    Borrowed(&'s ArrayD<T>),
}

/// An input's adjoint at the end of a sweep: to read, or (its last use) to take.
enum InputAdjoint<'a, T> {
    Read(&'a ArrayD<T>),
    Take(&'a mut ArrayD<T>),
}

impl<T> InputAdjoint<'_, T> {
    fn get(&self) -> &ArrayD<T> {
        match self {
            InputAdjoint::Read(a) => a,
            InputAdjoint::Take(a) => a,
        }
    }
}

/// Nodes up to this many elements run their slice rule ([`super::fast`]) in the numeric sweep.
const FAST_NODE: usize = 1024;

/// The tape's adjoints as [`AdjSlots`]: a missing adjoint starts as zeros from the pool.
struct TapeSlots<'a, T> {
    adj: &'a mut [Option<ArrayD<T>>],
    cache: &'a mut [Option<ArrayD<T>>],
    nodes: &'a [super::tape::Node<T>],
    pool: &'a mut super::pool::Pool<T>,
}

impl<T: Scalar> AdjSlots<T> for TapeSlots<'_, T> {
    fn slot(&mut self, j: usize) -> &mut [T] {
        let (nodes, pool, cache) = (self.nodes, &mut *self.pool, &mut *self.cache);
        self.adj[j]
            .get_or_insert_with(|| {
                let shape = nodes[j].value.shape();
                match cache.get_mut(j).and_then(Option::take) {
                    Some(mut a) if a.shape() == shape => {
                        a.as_slice_mut().expect("row-major").fill(T::zero());
                        a
                    }
                    other => {
                        if let Some(a) = other {
                            pool.recycle(a);
                        }
                        pool.full(shape, T::zero())
                    }
                }
            })
            .as_slice_mut()
            .expect("adjoints are row-major")
    }
}

/// Ends a sweep: small adjoints go to the cache by node (see [`super::tape::Inner`]), the rest
/// back to the pool.
fn retire_adjoints<T: Scalar>(inner: &mut super::tape::Inner<T>) {
    let (adj, cache, pool) = (&mut inner.adjoints, &mut inner.adjoint_cache, &mut inner.pool);
    if cache.len() < adj.len() {
        cache.resize_with(adj.len(), || None);
    }
    for (j, a) in adj.drain(..).enumerate() {
        let Some(a) = a else { continue };
        if a.len() <= FAST_NODE {
            if let Some(old) = cache[j].replace(a) {
                pool.recycle(old);
            }
        } else {
            pool.recycle(a);
        }
    }
}

impl<T: Scalar> Tape<T> {
    fn check_all(&self, output: &[Var<'_, T>], inputs: &[Var<'_, T>]) -> Result<()> {
        self.status()?;
        for o in output {
            self.check_var(*o, &"output")?;
        }
        for (i, v) in inputs.iter().enumerate() {
            self.check_var(*v, &format_args!("input {i}"))?;
        }
        Ok(())
    }

    /// The numeric reverse sweep. `seeds` are `(node, adjoint)` pairs; returns the adjoints of
    /// `inputs` (zeros when an input does not influence the seeds), written into `out`.
    /// With `inputs == None` every node's adjoint is returned instead (for inspection).
    fn sweep<'s>(
        &self,
        seeds: impl IntoIterator<Item = (NodeId, Seed<'s, T>)>,
        top: usize,
        inputs: Option<&[Var<'_, T>]>,
        out: &mut dyn FnMut(usize, InputAdjoint<'_, T>),
    ) -> Result<Option<Vec<Option<ArrayD<T>>>>> {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        if let Some(e) = &inner.error {
            return Err(copy_error(e));
        }
        mark_relevant(&inner.nodes, top, inputs, &mut inner.relevant);
        retire_adjoints(inner);
        inner.adjoints.resize_with(top + 1, || None);
        let keep_all = inputs.is_none();
        let is_input = |i: usize| inputs.is_none_or(|ins| ins.iter().any(|x| x.id.index() == i));
        let result = {
            let cache = &mut inner.adjoint_cache;
            let mut bk = Numeric {
                nodes: &inner.nodes,
                pool: &mut inner.pool,
                adj: &mut inner.adjoints,
                relevant: &inner.relevant,
                check_finite: inner.check_finite,
                current: top,
            };
            let mut r = Ok(());
            for (id, s) in seeds {
                let s = match s {
                    Seed::Own(s) => s,
                    Seed::Borrowed(s) => match bk.seed_matmul(id, s) {
                        Ok(true) => continue,
                        Ok(false) => bk.pool.copy(s),
                        Err(e) => {
                            r = Err(e);
                            continue;
                        }
                    },
                };
                if let Err(e) = super::backward::Backend::<T>::accumulate(&mut bk, id, NH::Own(s)) {
                    r = Err(e);
                }
            }
            let nodes = bk.nodes;
            if r.is_ok() {
                for i in (0..=top).rev() {
                    if !bk.relevant[i] || matches!(bk.nodes[i].op, Op::Leaf | Op::Const) {
                        continue;
                    }
                    // Small nodes: the slice rule (per-op overhead dominates their cost).
                    if !bk.check_finite && nodes[i].value.len() <= FAST_NODE {
                        let step = step_of(&nodes[i], nodes);
                        if !matches!(step, Step::General) {
                            let (lo, hi) = bk.adj.split_at_mut(i);
                            let Some(g) = hi[0].as_ref() else { continue };
                            let mut slots = TapeSlots { adj: lo, cache, nodes, pool: bk.pool };
                            let val = |j: usize| sl(&nodes[j].value);
                            if let Err(e) = backward_step(step, sl(g), &val, i, bk.relevant, &mut slots) {
                                r = Err(e);
                                break;
                            }
                            continue;
                        }
                    }
                    let g = if keep_all || is_input(i) {
                        match &bk.adj[i] {
                            Some(a) => bk.pool.copy(a),
                            None => continue,
                        }
                    } else {
                        match bk.adj[i].take() {
                            Some(a) => a,
                            None => continue,
                        }
                    };
                    bk.current = i;
                    if let Err(e) = backward_rule(&mut bk, &nodes[i].op, NodeId(i as u32), NH::Own(g)) {
                        r = Err(e);
                        break;
                    }
                }
            }
            r
        };
        if let Err(e) = result {
            retire_adjoints(inner);
            return Err(e);
        }
        if keep_all {
            let all = std::mem::take(&mut inner.adjoints);
            return Ok(Some(all));
        }
        let inputs = inputs.unwrap_or_default();
        for (k, id) in inputs.iter().enumerate() {
            let i = id.id.index();
            // The last request of an input may take its adjoint (an earlier one, for an input
            // listed twice, only reads it).
            let last = !inputs[k + 1..].iter().any(|x| x.id.index() == i);
            match inner.adjoints.get_mut(i).and_then(|a| a.as_mut()) {
                Some(a) if last => out(k, InputAdjoint::Take(a)),
                Some(a) => out(k, InputAdjoint::Read(a)),
                None => {
                    let z = inner.pool.full(inner.nodes[i].value.shape(), T::zero());
                    out(k, InputAdjoint::Read(&z));
                    inner.pool.recycle(z);
                }
            }
        }
        retire_adjoints(inner);
        Ok(None)
    }

    fn seed_ones(&self, output: Var<'_, T>) -> Result<ArrayD<T>> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let v = &inner.nodes[output.id.index()].value;
        if v.len() != 1 {
            return Err(Error::Autodiff(format!(
                "grad needs a scalar output but node {} (`{}`) has shape {:?}; reduce it (sum/mean) or use vjp with a seed",
                output.id.index(),
                inner.nodes[output.id.index()].op.name(),
                v.shape()
            )));
        }
        Ok(inner.pool.full(v.shape(), T::one()))
    }

    /// ∂output/∂inputs for a scalar (one-element) `output`, one array per input, in its shape.
    pub fn grad(&self, output: Var<'_, T>, inputs: &[Var<'_, T>]) -> Result<Vec<ArrayD<T>>> {
        let mut out: Vec<ArrayD<T>> = inputs.iter().map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
        self.grad_into(output, inputs, &mut out)?;
        Ok(out)
    }

    /// [`Tape::grad`] written into caller-owned arrays (resized if their shape differs): with
    /// [`Tape::reset`] this makes a repeated step allocation-free.
    pub fn grad_into(&self, output: Var<'_, T>, inputs: &[Var<'_, T>], out: &mut [ArrayD<T>]) -> Result<()> {
        self.check_all(&[output], inputs)?;
        if out.len() != inputs.len() {
            return Err(Error::invalid(
                "grad_into",
                format!("{} output arrays for {} inputs", out.len(), inputs.len()),
            ));
        }
        let seed = self.seed_ones(output)?;
        self.sweep(
            std::iter::once((output.id, Seed::Own(seed))),
            output.id.index(),
            Some(inputs),
            &mut |k, a| write_into(&mut out[k], a.get()),
        )?;
        Ok(())
    }

    /// Vector-Jacobian product `seedᵀ·∂output/∂inputs` for an output of any shape.
    pub fn vjp(&self, output: Var<'_, T>, inputs: &[Var<'_, T>], seed: &ArrayD<T>) -> Result<Vec<ArrayD<T>>> {
        self.check_all(&[output], inputs)?;
        let shape = output.shape();
        if seed.shape() != shape.as_slice() {
            return Err(Error::shape(
                "vjp",
                format!("seed {:?} does not match output {:?}", seed.shape(), shape),
            ));
        }
        self.vjp_multi(vec![(output.id, Seed::Borrowed(seed))], inputs)
    }

    fn vjp_multi(&self, seeds: Vec<(NodeId, Seed<'_, T>)>, inputs: &[Var<'_, T>]) -> Result<Vec<ArrayD<T>>> {
        let mut out: Vec<ArrayD<T>> = inputs.iter().map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
        let top = seeds.iter().map(|s| s.0.index()).max().unwrap_or(0);
        // The results are new arrays either way: moving an adjoint out saves copying it (the
        // pool allocates its buffer again instead, as the copy would have).
        self.sweep(seeds, top, Some(inputs), &mut |k, a| match a {
            InputAdjoint::Take(a) => out[k] = std::mem::replace(a, ArrayD::zeros(IxDyn(&[0]))),
            InputAdjoint::Read(a) => out[k] = a.to_owned(),
        })?;
        Ok(out)
    }

    /// The Jacobian of `output` w.r.t. each input: shape `output.shape ++ input.shape`, one
    /// reverse sweep per output element.
    pub fn jacobian(&self, output: Var<'_, T>, inputs: &[Var<'_, T>]) -> Result<Vec<ArrayD<T>>> {
        self.check_all(&[output], inputs)?;
        let oshape = output.shape();
        let m: usize = oshape.iter().product();
        let mut jac: Vec<ArrayD<T>> = inputs
            .iter()
            .map(|v| {
                let mut s = oshape.clone();
                s.extend(v.shape());
                ArrayD::zeros(IxDyn(&s))
            })
            .collect();
        for r in 0..m {
            let mut seed = ArrayD::zeros(IxDyn(&oshape));
            seed.as_slice_mut().expect("row-major")[r] = T::one();
            let rows = self.vjp_multi(vec![(output.id, Seed::Own(seed))], inputs)?;
            for (j, row) in jac.iter_mut().zip(rows) {
                let n = row.len();
                j.as_slice_mut().expect("row-major")[r * n..(r + 1) * n]
                    .copy_from_slice(row.as_slice().expect("row-major"));
            }
        }
        Ok(jac)
    }

    /// Gradients as tape nodes (`create_graph`): the backward pass is recorded, so each gradient
    /// is a [`Var`] that can be differentiated again, to any order.
    pub fn grad_graph<'t>(&'t self, output: Var<'t, T>, inputs: &[Var<'t, T>]) -> Result<Vec<Var<'t, T>>> {
        self.check_all(&[output], inputs)?;
        if output.shape().iter().product::<usize>() != 1 {
            return Err(Error::Autodiff(format!(
                "grad_graph needs a scalar output but node {} has shape {:?}; use vjp_graph with a seed",
                output.id.index(),
                output.shape()
            )));
        }
        let shape = output.shape();
        let seed = self.push_const(|_, pool| Ok(pool.full(&shape, T::one())));
        self.vjp_graph(output, inputs, seed)
    }

    /// The recorded gradient as seeds for a second sweep: values of the inputs' final gradient
    /// products may stay pending (never read by the sweep that seeds them).
    fn grad_graph_seeds<'t>(&'t self, output: Var<'t, T>, inputs: &[Var<'t, T>]) -> Result<Vec<Var<'t, T>>> {
        self.check_all(&[output], inputs)?;
        let shape = output.shape();
        if shape.iter().product::<usize>() != 1 {
            return Err(Error::Autodiff(format!(
                "the Hessian needs a scalar output but node {} has shape {shape:?}",
                output.id.index()
            )));
        }
        let seed = self.push_const(|_, pool| Ok(pool.full(&shape, T::one())));
        self.vjp_graph_with(output, inputs, seed, true)
    }

    /// Recorded vector-Jacobian product with a seed `Var` of the output's shape.
    pub fn vjp_graph<'t>(
        &'t self,
        output: Var<'t, T>,
        inputs: &[Var<'t, T>],
        seed: Var<'t, T>,
    ) -> Result<Vec<Var<'t, T>>> {
        self.vjp_graph_with(output, inputs, seed, false)
    }

    /// [`Tape::vjp_graph`]; with `defer`, an input's gradient may be a node whose value is
    /// pending (only for internal callers that seed those nodes without reading them).
    fn vjp_graph_with<'t>(
        &'t self,
        output: Var<'t, T>,
        inputs: &[Var<'t, T>],
        seed: Var<'t, T>,
        defer: bool,
    ) -> Result<Vec<Var<'t, T>>> {
        self.check_all(&[output, seed], inputs)?;
        if seed.shape() != output.shape() {
            return Err(Error::shape(
                "vjp_graph",
                format!("seed {:?} does not match output {:?}", seed.shape(), output.shape()),
            ));
        }
        let top = output.id.index();
        let mut relevant = Vec::new();
        mark_relevant(&self.nodes(), top, Some(inputs), &mut relevant);
        let mut deferred = Vec::new();
        if defer {
            deferred.resize(top + 1, false);
            inputs.iter().filter(|v| v.id.index() <= top).for_each(|v| deferred[v.id.index()] = true);
        }
        let mut bk = Graph { tape: self, adj: vec![None; top + 1], relevant, defer: deferred };
        super::backward::Backend::<T>::accumulate(&mut bk, output.id, seed.id)?;
        for i in (0..=top).rev() {
            if !bk.relevant[i] {
                continue;
            }
            let Some(g) = bk.adj[i] else { continue };
            let op = {
                let nodes = self.nodes();
                match nodes[i].op {
                    Op::Leaf | Op::Const | Op::Invalid => continue,
                    ref op => op.clone(),
                }
            };
            backward_rule(&mut bk, &op, NodeId(i as u32), g)?;
        }
        self.status()?;
        let out = inputs
            .iter()
            .map(|v| match bk.adj.get(v.id.index()).copied().flatten() {
                Some(id) => Var::new(id, self),
                None => {
                    let s = v.shape();
                    self.push_const(move |_, pool| Ok(pool.full(&s, T::zero())))
                }
            })
            .collect();
        Ok(out)
    }

    /// Hessian-vector product `H·v` of a scalar output (reverse over reverse: the gradient is
    /// recorded, then differentiated with seed `v`). The nodes it records are dropped again,
    /// so the tape does not grow.
    pub fn hvp(&self, output: Var<'_, T>, inputs: &[Var<'_, T>], v: &[ArrayD<T>]) -> Result<Vec<ArrayD<T>>> {
        self.check_all(&[output], inputs)?;
        if v.len() != inputs.len() {
            return Err(Error::invalid(
                "hvp",
                format!("{} direction arrays for {} inputs", v.len(), inputs.len()),
            ));
        }
        for (i, (x, d)) in inputs.iter().zip(v).enumerate() {
            if x.shape() != d.shape() {
                return Err(Error::shape(
                    "hvp",
                    format!("direction {i} is {:?} but input {i} is {:?}", d.shape(), x.shape()),
                ));
            }
        }
        let mark = self.len();
        let r = (|| {
            let gs = self.grad_graph_seeds(output, inputs)?;
            // Borrowed: a seeded weight-gradient product runs its rule on the direction itself.
            let seeds = gs.iter().zip(v).map(|(g, d)| (g.id, Seed::Borrowed(d))).collect();
            self.vjp_multi(seeds, inputs)
        })();
        self.truncate(mark);
        r
    }

    /// The Hessian of a scalar output w.r.t. all inputs flattened (row-major, in input order):
    /// one recorded gradient, then one reverse sweep per row.
    pub fn hessian(&self, output: Var<'_, T>, inputs: &[Var<'_, T>]) -> Result<Array2<T>> {
        self.check_all(&[output], inputs)?;
        let sizes: Vec<usize> = inputs.iter().map(|v| v.shape().iter().product()).collect();
        let n: usize = sizes.iter().sum();
        let mark = self.len();
        let r = (|| {
            let gs = self.grad_graph_seeds(output, inputs)?;
            let mut h = Array2::zeros((n, n));
            let mut row = 0;
            for (k, g) in gs.iter().enumerate() {
                for e in 0..sizes[k] {
                    let mut seed = ArrayD::zeros(IxDyn(&g.shape()));
                    seed.as_slice_mut().expect("row-major")[e] = T::one();
                    let parts = self.vjp_multi(vec![(g.id, Seed::Own(seed))], inputs)?;
                    let flat: Vec<T> = parts.iter().flat_map(|p| p.iter().copied()).collect();
                    h.row_mut(row).assign(&ndarray::ArrayView1::from(&flat));
                    row += 1;
                }
            }
            Ok(h)
        })();
        self.truncate(mark);
        r
    }

    /// Every node's adjoint `∂output/∂node` for a scalar output (`None` where the output does not
    /// depend on the node): what [`Tape::to_dot`] and `backprop explain` show.
    pub fn adjoints(&self, output: Var<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        self.check_all(&[output], &[])?;
        let seed = self.seed_ones(output)?;
        let mut all = self
            .sweep(std::iter::once((output.id, Seed::Own(seed))), output.id.index(), None, &mut |_, _| {})?
            .unwrap_or_default();
        all.resize_with(self.len(), || None);
        Ok(all)
    }
}

fn write_into<T: Scalar>(dst: &mut ArrayD<T>, src: &ArrayD<T>) {
    if dst.shape() == src.shape() {
        match (dst.as_slice_mut(), src.as_slice()) {
            (Some(d), Some(s)) => d.copy_from_slice(s),
            _ => dst.assign(src),
        }
    } else {
        *dst = src.to_owned();
    }
}

/// ∂output/∂inputs for a scalar output (see [`Tape::grad`]).
pub fn grad<T: Scalar>(output: Var<'_, T>, inputs: &[Var<'_, T>]) -> Result<Vec<ArrayD<T>>> {
    output.tape().grad(output, inputs)
}

/// `seedᵀ·J` (see [`Tape::vjp`]).
pub fn vjp<T: Scalar>(output: Var<'_, T>, inputs: &[Var<'_, T>], seed: &ArrayD<T>) -> Result<Vec<ArrayD<T>>> {
    output.tape().vjp(output, inputs, seed)
}

/// Jacobians (see [`Tape::jacobian`]).
pub fn jacobian<T: Scalar>(output: Var<'_, T>, inputs: &[Var<'_, T>]) -> Result<Vec<ArrayD<T>>> {
    output.tape().jacobian(output, inputs)
}

/// Differentiable gradients (see [`Tape::grad_graph`]).
pub fn grad_graph<'t, T: Scalar>(output: Var<'t, T>, inputs: &[Var<'t, T>]) -> Result<Vec<Var<'t, T>>> {
    output.tape().grad_graph(output, inputs)
}

/// Hessian-vector product (see [`Tape::hvp`]).
pub fn hvp<T: Scalar>(output: Var<'_, T>, inputs: &[Var<'_, T>], v: &[ArrayD<T>]) -> Result<Vec<ArrayD<T>>> {
    output.tape().hvp(output, inputs, v)
}

/// Hessian over the flattened inputs (see [`Tape::hessian`]).
pub fn hessian<T: Scalar>(output: Var<'_, T>, inputs: &[Var<'_, T>]) -> Result<Array2<T>> {
    output.tape().hessian(output, inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// `L = Σ tanh(tanh(X·Wᵀ)·Wᵀ)·c`: `W` (2×2) is used by two products, so its first gradient
    /// product is deferred and then consumed by the sum with the second one.
    fn loss<'t>(t: &'t Tape<f64>, w: &ArrayD<f64>, c: &ArrayD<f64>) -> (Var<'t, f64>, [Var<'t, f64>; 2]) {
        let x = t.constant(&array![[0.3, -1.0], [0.8, 0.5], [-0.2, 0.1]]);
        let (wv, cv) = (t.var(w), t.var(c));
        let h = x.matmul_t(wv, false, true).tanh().matmul_t(wv, false, true).tanh();
        ((h.matmul(cv)).sum(), [wv, cv])
    }

    #[test]
    fn hvp_with_deferred_gradient_products_matches_finite_differences() {
        let w = array![[0.5, -0.3], [0.2, 0.9]].into_dyn();
        let c = array![1.5, -0.7].into_dyn();
        let (vw, vc) = (array![[1.0, 0.5], [-0.3, 0.2]].into_dyn(), array![0.4, 1.0].into_dyn());
        let tape = Tape::<f64>::new();
        let (l, p) = loss(&tape, &w, &c);
        let len = tape.len();
        let hv = tape.hvp(l, &p, &[vw.clone(), vc.clone()]).unwrap();
        assert_eq!(tape.len(), len, "the recorded gradient is dropped again");
        assert!(tape.inner.borrow().nodes.iter().all(|n| !n.pending));
        let eps = 1e-5;
        let grad_at = |s: f64| {
            let t = Tape::<f64>::new();
            let (l, p) = loss(&t, &(&w + &(&vw * s)), &(&c + &(&vc * s)));
            t.grad(l, &p).unwrap()
        };
        let (gp, gm) = (grad_at(eps), grad_at(-eps));
        for k in 0..2 {
            let fd = (&gp[k] - &gm[k]) / (2.0 * eps);
            assert!(hv[k].iter().zip(&fd).all(|(a, b)| (a - b).abs() < 1e-7), "{} vs {fd}", hv[k]);
        }
        // The Hessian (also seeded at deferred gradient products) agrees with H·v.
        let h = tape.hessian(l, &p).unwrap();
        let v: Vec<f64> = vw.iter().chain(&vc).copied().collect();
        let hv_flat: Vec<f64> = hv.iter().flat_map(|a| a.iter().copied()).collect();
        for (i, row) in h.rows().into_iter().enumerate() {
            let d: f64 = row.iter().zip(&v).map(|(a, b)| a * b).sum();
            assert!((d - hv_flat[i]).abs() < 1e-12);
        }
        // A public recorded gradient is never pending.
        let g = tape.grad_graph(l, &p).unwrap();
        assert!(g.iter().all(|v| !tape.is_pending(v.id)));
    }

    /// The two adjoint products of a large matrix product run side by side
    /// ([`super::super::kernels::matmul_acc_pair`]); they must equal the products one at a time,
    /// for every transpose flag, into a fresh adjoint and into one that already holds a sum.
    #[test]
    fn side_by_side_matmul_adjoints_match_the_products() {
        use super::super::kernels::pair_side_by_side;
        use ndarray::Ix2;
        let det = |shape: [usize; 2], s: usize| {
            ArrayD::from_shape_fn(IxDyn(&shape), |i| ((i[0] * 7 + i[1] * 3 + s) % 11) as f64 / 11.0 - 0.5)
        };
        let close = |x: &ArrayD<f64>, y: &ndarray::Array2<f64>| {
            x.iter().zip(y.iter()).all(|(a, b)| (a - b).abs() <= 1e-12 * (1.0 + b.abs()))
        };
        let (m, k, n) = (64, 128, 128);
        assert!(2 * m * k * n >= super::super::kernels::PAIR_FLOP);
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let sa = if ta { [k, m] } else { [m, k] };
            let sb = if tb { [n, k] } else { [k, n] };
            let (a, b, b2) = (det(sa, 1), det(sb, 2), det(sb, 3));
            let (c, d) = (det([m, n], 4), det([m, n], 5));
            let tape = Tape::<f64>::new();
            let (av, bv, b2v) = (tape.var(&a), tape.var(&b), tape.var(&b2));
            // a in two products: the second one's rule runs first and creates ā, so the first
            // one's pair adds into it.
            let y = av.matmul_t(bv, ta, tb);
            let z = av.matmul_t(b2v, ta, tb);
            let loss = (y * &c).sum() + (z * &d).sum();
            if rayon::current_num_threads() > 1 {
                assert!(pair_side_by_side((&sa, ta, &sb), (&sa, ta, &sb)));
            }
            let g = tape.grad(loss, &[av, bv, b2v]).unwrap();
            let m2 = |x: &ArrayD<f64>| x.clone().into_dimensionality::<Ix2>().unwrap();
            let op = |x: &ArrayD<f64>, t: bool| if t { m2(x).reversed_axes() } else { m2(x) };
            // ∂/∂op(a) = C·op(b)ᵀ + D·op(b2)ᵀ, ∂/∂op(b) = op(a)ᵀ·C; transposed back when read so.
            let ga = m2(&c).dot(&op(&b, tb).t()) + m2(&d).dot(&op(&b2, tb).t());
            let gb = op(&a, ta).t().dot(&m2(&c));
            let ga = if ta { ga.reversed_axes() } else { ga };
            let gb = if tb { gb.reversed_axes() } else { gb };
            assert!(close(&g[0], &ga), "ā for ta={ta} tb={tb}");
            assert!(close(&g[1], &gb), "b̄ for ta={ta} tb={tb}");
            // Deterministic: the same gradient again, bit for bit.
            assert_eq!(tape.grad(loss, &[av, bv, b2v]).unwrap(), g);
        }
    }

    /// An HVP whose second sweep runs the large adjoint products side by side agrees with
    /// central differences of gradients along `v`: `H·v ≈ (∇L(θ + εv) − ∇L(θ − εv))/2ε`.
    #[test]
    fn hvp_with_side_by_side_products_matches_finite_differences() {
        let det = |shape: &[usize], s: usize, scale: f64| {
            ArrayD::from_shape_fn(IxDyn(shape), |i| {
                (((i[0] * 13 + i[1] * 7 + s) % 17) as f64 / 17.0 - 0.5) * scale
            })
        };
        let (batch, d, h) = (64, 64, 128);
        let x = det(&[batch, d], 1, 1.0);
        let w1 = det(&[h, d], 2, 0.25);
        let w2 = det(&[h, h], 3, 0.18);
        let w3 = det(&[1, h], 4, 0.2);
        fn mlp<'t>(
            t: &'t Tape<f64>,
            x: &ArrayD<f64>,
            w: [&ArrayD<f64>; 3],
        ) -> (Var<'t, f64>, [Var<'t, f64>; 3]) {
            let ps = [t.var(w[0]), t.var(w[1]), t.var(w[2])];
            let xv = t.constant(x);
            let a = xv.matmul_t(ps[0], false, true).tanh();
            let b = a.matmul_t(ps[1], false, true).tanh();
            (b.matmul_t(ps[2], false, true).tanh().square().mean(), ps)
        }
        let v = [det(&[h, d], 5, 1.0), det(&[h, h], 6, 1.0), det(&[1, h], 7, 1.0)];
        let tape = Tape::<f64>::new();
        let (l, ps) = mlp(&tape, &x, [&w1, &w2, &w3]);
        let hv = tape.hvp(l, &ps, &v).unwrap();
        let eps = 1e-5;
        let grad_at = |s: f64| {
            let t = Tape::<f64>::new();
            let shifted = [&w1 + &(&v[0] * s), &w2 + &(&v[1] * s), &w3 + &(&v[2] * s)];
            let (l, ps) = mlp(&t, &x, [&shifted[0], &shifted[1], &shifted[2]]);
            t.grad(l, &ps).unwrap()
        };
        let (gp, gm) = (grad_at(eps), grad_at(-eps));
        for k in 0..3 {
            let fd = (&gp[k] - &gm[k]) / (2.0 * eps);
            let scale = fd.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let err = hv[k].iter().zip(&fd).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(err <= 1e-6 * (1.0 + scale), "input {k}: max error {err} (scale {scale})");
        }
        assert_eq!(tape.hvp(l, &ps, &v).unwrap(), hv, "deterministic");
    }
    /// tanh's recorded gradient is one `tanh_grad` node; differentiating it again (its own rule,
    /// on numbers and recorded) gives tanh's second and third derivatives:
    /// t = tanh s, f′ = 1 − t², f″ = −2t(1 − t²), f‴ = (1 − t²)(6t² − 2).
    #[test]
    fn tanh_grad_node_differentiates_to_third_order() {
        let s0 = 0.7f64;
        let tape = Tape::<f64>::new();
        let s = tape.scalar(s0);
        let f = s.tanh();
        let d1 = tape.grad_graph(f, &[s]).unwrap()[0];
        assert!(tape.nodes().iter().any(|n| n.op.name() == "tanh_grad"));
        assert!(!tape.nodes().iter().any(|n| n.op.name() == "square"));
        let d2 = tape.grad_graph(d1, &[s]).unwrap()[0];
        let d3 = tape.grad(d2, &[s]).unwrap()[0].sum();
        let t = s0.tanh();
        let u = 1.0 - t * t;
        assert!((d1.item().unwrap() - u).abs() < 1e-15);
        assert!((d2.item().unwrap() + 2.0 * t * u).abs() < 1e-15);
        assert!((d3 - u * (6.0 * t * t - 2.0)).abs() < 1e-14, "{d3}");
        // The same on a tensor above the slice-rule size (the tensor rules of `tanh_grad`).
        let x = ArrayD::from_shape_fn(IxDyn(&[40, 40]), |i| (i[0] as f64 - i[1] as f64) / 40.0);
        let xv = tape.var(&x);
        let g = tape.grad_graph(xv.tanh().sum(), &[xv]).unwrap()[0];
        let h = tape.grad(g.sum(), &[xv]).unwrap();
        for (&hx, &x0) in h[0].iter().zip(&x) {
            let t = x0.tanh();
            assert!((hx + 2.0 * t * (1.0 - t * t)).abs() < 1e-14);
        }
    }
    /// A borrowed seed on a matrix product runs the product's rule on the seed itself
    /// (`Numeric::seed_matmul`): equal to the rule's formulas for every transpose flag, and a
    /// column-major seed (copied instead) gives the same result.
    #[test]
    fn vjp_seeding_a_matmul_directly_matches_the_formulas() {
        use ndarray::Ix2;
        let det = |shape: [usize; 2], s: usize| {
            ArrayD::from_shape_fn(IxDyn(&shape), |i| ((i[0] * 7 + i[1] * 3 + s) % 11) as f64 - 5.0)
        };
        let (m, k, n) = (5, 4, 3);
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let sa = if ta { [k, m] } else { [m, k] };
            let sb = if tb { [n, k] } else { [k, n] };
            let (a, b, g) = (det(sa, 1), det(sb, 2), det([m, n], 3));
            let tape = Tape::<f64>::new();
            let (av, bv) = (tape.var(&a), tape.var(&b));
            let y = av.matmul_t(bv, ta, tb);
            let r = tape.vjp(y, &[av, bv], &g).unwrap();
            let m2 = |x: &ArrayD<f64>| x.clone().into_dimensionality::<Ix2>().unwrap();
            let op = |x: &ArrayD<f64>, t: bool| if t { m2(x).reversed_axes() } else { m2(x) };
            let ga = m2(&g).dot(&op(&b, tb).t());
            let gb = op(&a, ta).t().dot(&m2(&g));
            assert_eq!(r[0], if ta { ga.reversed_axes() } else { ga }.into_dyn(), "ta={ta} tb={tb}");
            assert_eq!(r[1], if tb { gb.reversed_axes() } else { gb }.into_dyn(), "ta={ta} tb={tb}");
            let g_cols = m2(&g).reversed_axes().as_standard_layout().into_owned().reversed_axes().into_dyn();
            assert!(!g_cols.is_standard_layout());
            assert_eq!(tape.vjp(y, &[av, bv], &g_cols).unwrap(), r);
        }
    }
}
