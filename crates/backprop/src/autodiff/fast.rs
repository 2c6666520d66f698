//! Derivative rules on flat slices for the ops whose per-node overhead dominates small graphs:
//! elementwise ops, 1-D/2-D matrix products, full reductions and reshapes. Shared by the
//! [`super::Plan`] replay and the tape's numeric sweep (for small nodes); every other op, and
//! every shape these do not cover, goes through [`super::backward::backward_rule`]. The formulas
//! are those of `backward_rule` (unary ones literally: `unary_rules!`); the property tests
//! compare both paths on random graphs.

use super::backward::{on_numbers, unary_rules};
use super::kernels::{self as k, Bc, Strided, at, gemm_strided};
use super::op::{Binary, Op, Unary};
use super::tape::{Node, NodeId};
use super::var::{ScalarExt, mean_scale};
use crate::{Error, Result, Scalar};

/// How a node's rule runs on flat slices (operands are node indices).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step<T> {
    /// A leaf or constant: its value is set by the caller or kept from the recording.
    Input,
    /// Elementwise `y = u(x)`.
    Unary(usize, Unary<T>),
    /// Elementwise `y = a ∘ b`, each operand read through its broadcast pattern.
    Binary { a: usize, b: usize, kind: Binary, bca: Bc, bcb: Bc },
    /// `Y (m×n) = A'·B'` with `A'`, `B'` read through strides (transposes, 1-D operands).
    MatMul { a: usize, b: usize, sa: Strided, sb: Strided, mkn: (usize, usize, usize) },
    /// Sum (scale 1) or mean (scale 1/n) over every axis.
    Reduce { a: usize, scale: T },
    /// Same elements, other shape.
    Reshape(usize),
    /// Anything else: the tape's kernel forward, [`backward_rule`] backward.
    General,
}

/// The slice step of a node (a fast path when its op and shapes allow one, else `General`).
pub(crate) fn step_of<T: Scalar>(node: &Node<T>, nodes: &[Node<T>]) -> Step<T> {
    let shape = |id: NodeId| nodes[id.index()].value.shape();
    match &node.op {
        Op::Leaf | Op::Const | Op::Invalid => Step::Input,
        Op::Unary(a, u) => Step::Unary(a.index(), *u),
        Op::Binary(a, b, kind) => {
            let out = node.value.shape();
            let (bca, bcb) = (k::classify(shape(*a), out), k::classify(shape(*b), out));
            if bca == Bc::General || bcb == Bc::General {
                return Step::General;
            }
            Step::Binary { a: a.index(), b: b.index(), kind: *kind, bca, bcb }
        }
        Op::MatMul { a, b, ta, tb } => {
            let (sa, sb) = (shape(*a), shape(*b));
            if sa.len() > 2 || sb.len() > 2 {
                return Step::General;
            }
            let (Some((m, ka, stra)), Some((kb, n, strb))) =
                (k::as_matrix(sa, *ta, true), k::as_matrix(sb, *tb, false))
            else {
                return Step::General;
            };
            if ka != kb || node.value.len() != m * n {
                return Step::General;
            }
            Step::MatMul { a: a.index(), b: b.index(), sa: stra, sb: strb, mkn: (m, ka, n) }
        }
        Op::Sum { a, axes, .. } | Op::Mean { a, axes, .. } => {
            let sa = shape(*a);
            let all = (0..sa.len()).all(|d| axes >> d & 1 == 1);
            if !all || node.value.len() != 1 {
                return Step::General;
            }
            let scale = if matches!(node.op, Op::Mean { .. }) { mean_scale(sa, *axes) } else { T::one() };
            Step::Reduce { a: a.index(), scale }
        }
        Op::Reshape(a) => Step::Reshape(a.index()),
        _ => Step::General,
    }
}

/// `y[i] = f(a[i'], b[i''])` with each operand read through its broadcast pattern.
#[inline(always)]
pub(crate) fn zip_bc<T: Scalar>(y: &mut [T], a: &[T], bca: Bc, b: &[T], bcb: Bc, f: impl Fn(T, T) -> T) {
    if bca == Bc::Same && bcb == Bc::Same {
        y.iter_mut().zip(a.iter().zip(b)).for_each(|(d, (&x, &z))| *d = f(x, z));
    } else {
        y.iter_mut().enumerate().for_each(|(i, d)| *d = f(a[at(bca, i)], b[at(bcb, i)]));
    }
}

/// `x̄[i'] += h(ȳ[i], i)` for an operand read through broadcast pattern `bc` (its adjoint is the
/// sum over the copies).
#[inline(always)]
fn scatter_bc<T: Scalar>(xbar: &mut [T], bc: Bc, n: usize, h: impl Fn(usize) -> T) {
    if bc == Bc::Same {
        xbar.iter_mut().enumerate().for_each(|(i, d)| *d += h(i));
    } else {
        (0..n).for_each(|i| xbar[at(bc, i)] += h(i));
    }
}

/// Where a slice rule adds operand adjoints: `slot(j)` is node `j`'s adjoint (created as
/// zeros on first use), for operands `j` of the node whose rule runs.
pub(crate) trait AdjSlots<T> {
    fn slot(&mut self, j: usize) -> &mut [T];
}

/// Node `i`'s rule (any step but `General`): adds `ȳ = g`'s contributions to the adjoints of
/// the operands that `rel` marks, reading values through `val`.
pub(crate) fn backward_step<'v, T: Scalar>(
    step: Step<T>,
    g: &[T],
    val: &impl Fn(usize) -> &'v [T],
    i: usize,
    rel: &[bool],
    adj: &mut impl AdjSlots<T>,
) -> Result<()> {
    match step {
        Step::Input => {}
        Step::Unary(a, u) => {
            if rel[a] && !u.is_piecewise_constant() {
                let (x, y) = (val(a), val(i));
                let xb = adj.slot(a);
                unary_rules!(u, on_numbers, |f| for (j, d) in xb.iter_mut().enumerate() {
                    *d += f(g[j], x[j], y[j]);
                });
            }
        }
        Step::Binary { a, b, kind, bca, bcb } => {
            let (av, bv, yv) = (val(a), val(b), val(i));
            let n = g.len();
            if rel[a] {
                let ab = adj.slot(a);
                // y = a ± b ⇒ ā = Σ ȳ;  y = a·b ⇒ ā = Σ ȳ·b;  y = a/b ⇒ ā = Σ ȳ/b
                match kind {
                    Binary::Add | Binary::Sub => scatter_bc(ab, bca, n, |j| g[j]),
                    Binary::Mul => scatter_bc(ab, bca, n, |j| g[j] * bv[at(bcb, j)]),
                    Binary::Div => scatter_bc(ab, bca, n, |j| g[j] / bv[at(bcb, j)]),
                    Binary::TanhGrad => scatter_bc(ab, bca, n, |j| g[j].times_tanh_slope(bv[at(bcb, j)])),
                }
            }
            if rel[b] {
                let bb = adj.slot(b);
                // y = a + b ⇒ b̄ = Σ ȳ;  a − b ⇒ −Σ ȳ;  a·b ⇒ Σ ȳ·a;  a/b ⇒ −Σ ȳ·y/b
                match kind {
                    Binary::Add => scatter_bc(bb, bcb, n, |j| g[j]),
                    Binary::Sub => scatter_bc(bb, bcb, n, |j| -g[j]),
                    Binary::Mul => scatter_bc(bb, bcb, n, |j| g[j] * av[at(bca, j)]),
                    Binary::Div => scatter_bc(bb, bcb, n, |j| -(g[j] * yv[j]) / bv[at(bcb, j)]),
                    // a ⊙ (1 − b²) ⇒ b̄ = −2 Σ ȳ·a·b
                    Binary::TanhGrad => {
                        scatter_bc(bb, bcb, n, |j| g[j] * av[at(bca, j)] * bv[at(bcb, j)] * T::of(-2.0))
                    }
                }
            }
        }
        Step::MatMul { a, b, sa, sb, mkn: (m, kk, n) } => {
            // Y = A'·B'  ⇒  Ā' += Ȳ·B'ᵀ,  B̄' += A'ᵀ·Ȳ (written through the operands' strides)
            let sy = Strided { rs: n, cs: 1 };
            if rel[a] {
                let bt = Strided { rs: sb.cs, cs: sb.rs };
                gemm_strided(true, adj.slot(a), sa, g, sy, val(b), bt, (m, n, kk))?;
            }
            if rel[b] {
                let at_ = Strided { rs: sa.cs, cs: sa.rs };
                gemm_strided(true, adj.slot(b), sb, val(a), at_, g, sy, (kk, m, n))?;
            }
        }
        Step::Reduce { a, scale } => {
            // y = Σ x (or mean)  ⇒  x̄ += ȳ (or ȳ/n) everywhere
            if rel[a] {
                let s = g[0] * scale;
                adj.slot(a).iter_mut().for_each(|d| *d += s);
            }
        }
        Step::Reshape(a) => {
            if rel[a] {
                adj.slot(a).iter_mut().zip(g).for_each(|(d, &x)| *d += x);
            }
        }
        Step::General => {
            return Err(Error::Autodiff(format!("internal: node {i} has no slice rule (use backward_rule)")));
        }
    }
    Ok(())
}
