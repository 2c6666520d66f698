//! The chain rule: one exhaustive `match` holding the vector-Jacobian product of every op, each
//! beside its formula.
//!
//! Notation: `y = f(x)` is the node, `ȳ = ∂L/∂y` its adjoint (`g` in code), and each rule
//! returns the adjoint contributions `x̄ = ȳ·∂y/∂x` of its operands.
//!
//! Every rule is written once, against a [`Backend`]:
//! - [`Numeric`] runs it on tensors: the lean first-order path (fused elementwise loops, buffers
//!   from the pool, no nodes recorded);
//! - [`Graph`] runs it as tape ops: the backward pass is itself recorded, so a gradient is a
//!   [`Var`] and can be differentiated again, to any order.
//!
//! Elementwise rules are one expression compiled twice ([`unary_rules`], `rule2!`): once on
//! scalars, once on `Var`s, so the two paths cannot disagree.

use std::rc::Rc;

use ndarray::{ArrayD, Dimension, IxDyn};

use super::kernels::{self as k, reduced_shape, sl};
use super::op::{Binary, Op, Unary};
use super::pool::Pool;
use super::tape::{Node, NodeId, Tape, first_non_finite};
use super::var::{ScalarExt, Var};
use crate::{Error, Result, Scalar};

/// What a derivative rule may do with adjoints (`H`): the primitives of the chain rule.
pub(crate) trait Backend<'t, T: Scalar> {
    /// An adjoint or forward value.
    type H;
    /// The forward value of node `id`.
    fn node(&mut self, id: NodeId) -> Self::H;
    /// A second handle to the same tensor.
    fn dup(&mut self, h: &Self::H) -> Self::H;
    /// A handle no longer needed (its buffer may be reused).
    fn done(&mut self, h: Self::H);
    /// Shape of node `id`'s value.
    fn shape_of(&self, id: NodeId) -> IxDyn;
    /// Whether node `id` leads to a requested input (else its adjoint is not computed).
    fn wants(&self, id: NodeId) -> bool;
    /// `x̄ += h`.
    fn accumulate(&mut self, id: NodeId, h: Self::H) -> Result<()>;
    /// Elementwise `f(ȳ, x, y)` for a unary op (same shapes).
    fn unary(
        &mut self,
        g: Self::H,
        x: NodeId,
        y: NodeId,
        fs: impl Fn(T, T, T) -> T,
        fv: impl Fn(Var<'t, T>, Var<'t, T>, Var<'t, T>) -> Var<'t, T>,
    ) -> Result<Self::H>;
    /// Elementwise `f(ȳ, a, b, y)` for a binary op, in the output's (broadcast) shape.
    #[allow(clippy::type_complexity)]
    fn binary(
        &mut self,
        g: &Self::H,
        ab: (NodeId, NodeId),
        y: NodeId,
        fs: impl Fn(T, T, T, T) -> T,
        fv: impl Fn(Var<'t, T>, Var<'t, T>, Var<'t, T>, Var<'t, T>) -> Var<'t, T>,
    ) -> Result<Self::H>;
    fn mul(&mut self, a: &Self::H, b: &Self::H) -> Result<Self::H>;
    fn sub(&mut self, a: &Self::H, b: &Self::H) -> Result<Self::H>;
    fn scale(&mut self, h: Self::H, c: T) -> Result<Self::H>;
    fn exp(&mut self, h: &Self::H) -> Result<Self::H>;
    fn sum_to(&mut self, h: Self::H, shape: &[usize]) -> Result<Self::H>;
    /// [`Backend::sum_to`] of a borrowed handle (a new tensor; `h` stays usable).
    fn sum_to_ref(&mut self, h: &Self::H, shape: &[usize]) -> Result<Self::H> {
        let d = self.dup(h);
        self.sum_to(d, shape)
    }
    /// `x̄ += broadcast(h)` to `x`'s shape: the numeric path adds without materialising the
    /// broadcast when `x̄` exists.
    fn accumulate_broadcast(&mut self, id: NodeId, h: Self::H) -> Result<()> {
        let sx = self.shape_of(id);
        let b = self.broadcast_to(&h, sx.slice())?;
        self.done(h);
        self.accumulate(id, b)
    }
    fn broadcast_to(&mut self, h: &Self::H, shape: &[usize]) -> Result<Self::H>;
    fn reshape(&mut self, h: Self::H, shape: &[usize]) -> Result<Self::H>;
    fn permute(&mut self, h: &Self::H, perm: &[usize]) -> Result<Self::H>;
    fn sum_axes(&mut self, h: &Self::H, axes: u64, keepdims: bool) -> Result<Self::H>;
    fn matmul(&mut self, a: &Self::H, ta: bool, b: &Self::H, tb: bool) -> Result<Self::H>;
    /// `x̄ += op(a)·op(b)` where the product has `x`'s shape: fused, so the numeric path adds
    /// the product straight into an existing adjoint (no temporary, no extra pass).
    fn matmul_acc(&mut self, id: NodeId, a: &Self::H, ta: bool, b: &Self::H, tb: bool) -> Result<()> {
        let r = self.matmul(a, ta, b, tb)?;
        self.accumulate(id, r)
    }
    /// Both operands' adjoints of a matrix product, `x̄ += op(a)·op(b)` for each `(x, a, ta, b,
    /// tb)`: two independent products, which the numeric path may run side by side.
    fn matmul_acc_pair(&mut self, p: MatAcc<'_, Self::H>, q: MatAcc<'_, Self::H>) -> Result<()> {
        self.matmul_acc(p.0, p.1, p.2, p.3, p.4)?;
        self.matmul_acc(q.0, q.1, q.2, q.3, q.4)
    }
    fn slice(&mut self, h: &Self::H, axis: usize, start: usize, end: usize) -> Result<Self::H>;
    fn pad(&mut self, h: &Self::H, axis: usize, start: usize, len: usize) -> Result<Self::H>;
    fn index_select(&mut self, h: &Self::H, axis: usize, index: &Rc<[usize]>) -> Result<Self::H>;
    fn index_add(&mut self, h: &Self::H, axis: usize, index: &Rc<[usize]>, len: usize) -> Result<Self::H>;
    fn gather(&mut self, h: &Self::H, axis: usize, index: &Rc<ArrayD<usize>>) -> Result<Self::H>;
    fn scatter_add(
        &mut self,
        h: &Self::H,
        axis: usize,
        index: &Rc<ArrayD<usize>>,
        len: usize,
    ) -> Result<Self::H>;
    /// `mask ? h : 0` (or `mask ? 0 : h` when `!keep_true`), mask broadcast to `h`.
    fn where_zero(&mut self, h: &Self::H, mask: &Rc<ArrayD<bool>>, keep_true: bool) -> Result<Self::H>;
    /// One-hot mask of the first maximum (minimum) of node `a` along `axis`.
    fn extreme_mask(&mut self, a: NodeId, axis: usize, max: bool) -> Rc<ArrayD<bool>>;
}

/// One product of [`Backend::matmul_acc_pair`]: `(x, a, ta, b, tb)` for `x̄ += op(a)·op(b)`.
pub(crate) type MatAcc<'h, H> = (NodeId, &'h H, bool, &'h H, bool);

/// `rule2!(bk, &g, (a, b), y; |g, a, b, y| expr)`: one operand's adjoint of a binary op, in
/// the output's shape (the caller sums it down to the operand's shape).
macro_rules! rule2 {
    ($bk:ident, $g:expr, $ab:expr, $y:expr; |$gv:ident, $av:ident, $bv:ident, $yv:ident| $e:expr) => {
        $bk.binary(
            $g,
            $ab,
            $y,
            |$gv: T, $av: T, $bv: T, $yv: T| $e,
            |$gv: Var<'t, T>, $av: Var<'t, T>, $bv: Var<'t, T>, $yv: Var<'t, T>| $e,
        )?
    };
}

/// THE table of unary derivatives `x̄ = ȳ·f'(x)`, from `ȳ` (`g`), `x` and the saved output `y`:
/// `$body` with `$f` bound to `$mk!(|g, x, y| formula)` for `u` — [`both`] builds the rule on
/// numbers and on recorded nodes (one expression, two types), [`on_numbers`] only the former.
/// Each closure's code holds its formula, so every loop over it is specialised. Affine (a
/// scaling) and the piecewise-constant functions (zero) are handled by the callers.
macro_rules! unary_rules {
    ($u:expr, $mk:ident, |$f:ident| $body:expr) => {
        match $u {
            // y = s·x + c  ⇒  x̄ = s·ȳ
            Unary::Affine(s, _) => {
                let $f = $mk!(|g, _x, _y| g * s);
                $body
            }
            // y = x²  ⇒  x̄ = 2x·ȳ
            Unary::Square => {
                let $f = $mk!(|g, x, _y| g * x * T::of(2.0));
                $body
            }
            // y = eˣ  ⇒  x̄ = y·ȳ  (the saved output)
            Unary::Exp => {
                let $f = $mk!(|g, _x, y| g * y);
                $body
            }
            // y = ln x  ⇒  x̄ = ȳ/x
            Unary::Log => {
                let $f = $mk!(|g, x, _y| g / x);
                $body
            }
            // y = √x  ⇒  x̄ = ȳ/(2y)
            Unary::Sqrt => {
                let $f = $mk!(|g, _x, y| g / y * T::of(0.5));
                $body
            }
            // y = xᵖ  ⇒  x̄ = p·xᵖ⁻¹·ȳ
            Unary::Powf(p) => {
                let $f = $mk!(|g, x, _y| g * x.powf(p - T::one()) * p);
                $body
            }
            // y = |x|  ⇒  x̄ = sign(x)·ȳ  (0 at the kink, as PyTorch)
            Unary::Abs => {
                let $f = $mk!(|g, x, _y| g * x.sgn());
                $body
            }
            // y = sin x  ⇒  x̄ = cos x·ȳ
            Unary::Sin => {
                let $f = $mk!(|g, x, _y| g * x.cos());
                $body
            }
            // y = cos x  ⇒  x̄ = −sin x·ȳ
            Unary::Cos => {
                let $f = $mk!(|g, x, _y| -(g * x.sin()));
                $body
            }
            // y = σ(x)  ⇒  x̄ = σ'(x)·ȳ, σ' = σ(1 − σ) = y(1 − y)
            Unary::Sigmoid => {
                let $f = $mk!(|g, _x, y| g * y * y.one_minus());
                $body
            }
            // y = tanh x  ⇒  x̄ = (1 − y²)·ȳ  (one `tanh_grad` node when recorded)
            Unary::Tanh => {
                let $f = $mk!(|g, _x, y| g.times_tanh_slope(y));
                $body
            }
            // y = max(x, 0)  ⇒  x̄ = 1[x > 0]·ȳ
            Unary::Relu => {
                let $f = $mk!(|g, x, _y| g * x.step());
                $body
            }
            // y = x or αx  ⇒  x̄ = (1 or α)·ȳ
            Unary::LeakyRelu(al) => {
                let $f = $mk!(|g, x, _y| g * x.leaky_slope(al));
                $body
            }
            // y = ln(1 + eˣ)  ⇒  x̄ = σ(x)·ȳ
            Unary::Softplus => {
                let $f = $mk!(|g, x, _y| g * x.sigmoid());
                $body
            }
            // y = clamp(x, lo, hi)  ⇒  x̄ = 1[lo ≤ x ≤ hi]·ȳ
            Unary::Clamp(lo, hi) => {
                let $f = $mk!(|g, x, _y| g * x.in_range(lo, hi));
                $body
            }
            // Piecewise constant: derivative zero almost everywhere.
            Unary::Step | Unary::Sign | Unary::LeakySlope(_) | Unary::InRange(..) => {
                let $f = $mk!(|g, _x, _y| g * T::zero());
                $body
            }
        }
    };
}
pub(crate) use unary_rules;

/// `(on numbers, on recorded nodes)`: one rule expression compiled for both.
macro_rules! both {
    (|$g:ident, $x:ident, $y:ident| $e:expr) => {
        (move |$g: T, $x: T, $y: T| $e, move |$g: Var<'t, T>, $x: Var<'t, T>, $y: Var<'t, T>| $e)
    };
}

/// The rule on numbers only.
macro_rules! on_numbers {
    (|$g:ident, $x:ident, $y:ident| $e:expr) => {
        move |$g: T, $x: T, $y: T| $e
    };
}
pub(crate) use on_numbers;

/// The shape with a length-1 axis inserted at `at` (1-D matmul operands promoted to 2-D).
fn insert_one(shape: &[usize], at: usize) -> IxDyn {
    let mut out = IxDyn::zeros(shape.len() + 1);
    let mut j = 0;
    for d in 0..=shape.len() {
        if d == at {
            out[d] = 1;
        } else {
            out[d] = shape[j];
            j += 1;
        }
    }
    out
}

/// Propagates node `y`'s adjoint `g` to its operands: THE chain rule of the engine.
pub(crate) fn backward_rule<'t, T: Scalar, B: Backend<'t, T>>(
    bk: &mut B,
    op: &Op<T>,
    y: NodeId,
    g: B::H,
) -> Result<()> {
    match op {
        // Inputs and constants end the sweep; an invalid node never gets here (errors stop earlier).
        Op::Leaf | Op::Const | Op::Invalid => bk.done(g),
        Op::Unary(x, u) => {
            let x = *x;
            if !bk.wants(x) || u.is_piecewise_constant() {
                bk.done(g);
                return Ok(());
            }
            let gx = match *u {
                // y = s·x + c  ⇒  x̄ = s·ȳ
                Unary::Affine(s, _) => bk.scale(g, s)?,
                u => unary_rules!(u, both, |f| bk.unary(g, x, y, f.0, f.1)?),
            };
            bk.accumulate(x, gx)?;
        }
        Op::Binary(a, b, kind) => {
            let (a, b) = (*a, *b);
            let (sa, sb) = (bk.shape_of(a), bk.shape_of(b));
            let (wa, wb) = (bk.wants(a), bk.wants(b));
            // Broadcasting copies an operand; the adjoint of a copy is a sum (Σ over broadcast axes).
            match kind {
                // y = a + b  ⇒  ā = Σ ȳ,  b̄ = Σ ȳ;   y = a − b  ⇒  ā = Σ ȳ,  b̄ = −Σ ȳ
                Binary::Add | Binary::Sub => {
                    // When both need ȳ, a broadcast operand reduces it in place and the other
                    // takes it: no copy (a copy only when neither is broadcast).
                    let sy = bk.shape_of(y);
                    let (ga, gb) = match (wa, wb) {
                        (true, true) if sb != sy => (None, Some(bk.sum_to_ref(&g, sb.slice())?)),
                        (true, true) if sa != sy => (Some(bk.sum_to_ref(&g, sa.slice())?), None),
                        (true, true) => (Some(bk.dup(&g)), None),
                        _ => (None, None),
                    };
                    let (ga, gb) = match (wa, wb, ga, gb) {
                        (true, true, Some(ga), None) => (Some(ga), Some(g)),
                        (true, true, None, Some(gb)) => (Some(g), Some(gb)),
                        (true, false, ..) => (Some(g), None),
                        (false, true, ..) => (None, Some(g)),
                        _ => {
                            bk.done(g);
                            (None, None)
                        }
                    };
                    if let Some(ga) = ga {
                        let ga = bk.sum_to(ga, sa.slice())?;
                        bk.accumulate(a, ga)?;
                    }
                    if let Some(gb) = gb {
                        let gb = bk.sum_to(gb, sb.slice())?;
                        let gb = if *kind == Binary::Sub { bk.scale(gb, -T::one())? } else { gb };
                        bk.accumulate(b, gb)?;
                    }
                }
                // y = a ⊙ b  ⇒  ā = Σ ȳ ⊙ b,  b̄ = Σ ȳ ⊙ a
                Binary::Mul => {
                    if wa {
                        let ga = rule2!(bk, &g, (a, b), y; |g, _a, b, _y| g * b);
                        let ga = bk.sum_to(ga, sa.slice())?;
                        bk.accumulate(a, ga)?;
                    }
                    if wb {
                        let gb = rule2!(bk, &g, (a, b), y; |g, a, _b, _y| g * a);
                        let gb = bk.sum_to(gb, sb.slice())?;
                        bk.accumulate(b, gb)?;
                    }
                    bk.done(g);
                }
                // y = a/b  ⇒  ā = Σ ȳ/b,  b̄ = −Σ ȳ·y/b  (= −ȳa/b²)
                Binary::Div => {
                    if wa {
                        let ga = rule2!(bk, &g, (a, b), y; |g, _a, b, _y| g / b);
                        let ga = bk.sum_to(ga, sa.slice())?;
                        bk.accumulate(a, ga)?;
                    }
                    if wb {
                        let gb = rule2!(bk, &g, (a, b), y; |g, _a, b, y| -(g * y) / b);
                        let gb = bk.sum_to(gb, sb.slice())?;
                        bk.accumulate(b, gb)?;
                    }
                    bk.done(g);
                }
                // y = a ⊙ (1 − b²)  ⇒  ā = Σ ȳ ⊙ (1 − b²),  b̄ = −2 Σ ȳ ⊙ a ⊙ b
                Binary::TanhGrad => {
                    if wa {
                        let ga = rule2!(bk, &g, (a, b), y; |g, _a, b, _y| g.times_tanh_slope(b));
                        let ga = bk.sum_to(ga, sa.slice())?;
                        bk.accumulate(a, ga)?;
                    }
                    if wb {
                        let gb = rule2!(bk, &g, (a, b), y; |g, a, b, _y| g * a * b * T::of(-2.0));
                        let gb = bk.sum_to(gb, sb.slice())?;
                        bk.accumulate(b, gb)?;
                    }
                    bk.done(g);
                }
            }
        }
        Op::MatMul { a, b, ta, tb } => {
            // Y = A'·B' with A' = op(A), B' = op(B):  Ā' = Ȳ·B'ᵀ,  B̄' = A'ᵀ·Ȳ; for a transposed
            // operand the adjoint is transposed back (Ā = (Ȳ·B'ᵀ)ᵀ = B'·Ȳᵀ). 1-D operands are
            // promoted to 2-D as in the forward pass; batch axes shared by a 2-D operand are summed.
            let (a, b) = (*a, *b);
            let (sa, sb, sy) = (bk.shape_of(a), bk.shape_of(b), bk.shape_of(y));
            let (a1, b1) = (sa.ndim() == 1, sb.ndim() == 1);
            let (ta, tb) = (*ta && !a1, *tb && !b1);
            let pa = if a1 { insert_one(sa.slice(), 0) } else { sa.clone() };
            let pb = if b1 { insert_one(sb.slice(), 1) } else { sb.clone() };
            let mut py = sy.clone();
            if a1 {
                py = insert_one(py.slice(), py.ndim() - usize::from(!b1));
            }
            if b1 {
                py = insert_one(py.slice(), py.ndim());
            }
            let g2 = if a1 || b1 { bk.reshape(g, py.slice())? } else { g };
            let (wa, wb) = (bk.wants(a), bk.wants(b));
            if wa && wb && !a1 && !b1 && sa.ndim() == sy.ndim() && sb.ndim() == sy.ndim() {
                // Both adjoints have their operand's shape: two independent products.
                let (an, bn) = (bk.node(a), bk.node(b));
                let pa: MatAcc<'_, B::H> =
                    if !ta { (a, &g2, false, &bn, !tb) } else { (a, &bn, tb, &g2, true) };
                let pb: MatAcc<'_, B::H> =
                    if !tb { (b, &an, !ta, &g2, false) } else { (b, &g2, true, &an, ta) };
                bk.matmul_acc_pair(pa, pb)?;
                bk.done(an);
                bk.done(bn);
                bk.done(g2);
                return Ok(());
            }
            if wa {
                let bn = bk.node(b);
                let bn = if b1 { bk.reshape(bn, pb.slice())? } else { bn };
                if !a1 && !b1 && sa.ndim() == sy.ndim() {
                    // The product already has A's shape: add it straight into Ā.
                    if !ta {
                        bk.matmul_acc(a, &g2, false, &bn, !tb)?
                    } else {
                        bk.matmul_acc(a, &bn, tb, &g2, true)?
                    }
                } else {
                    let ga =
                        if !ta { bk.matmul(&g2, false, &bn, !tb)? } else { bk.matmul(&bn, tb, &g2, true)? };
                    let ga = bk.sum_to(ga, pa.slice())?;
                    let ga = if a1 { bk.reshape(ga, sa.slice())? } else { ga };
                    bk.accumulate(a, ga)?;
                }
                bk.done(bn);
            }
            if wb {
                let an = bk.node(a);
                let an = if a1 { bk.reshape(an, pa.slice())? } else { an };
                if !a1 && !b1 && sb.ndim() == sy.ndim() {
                    if !tb {
                        bk.matmul_acc(b, &an, !ta, &g2, false)?
                    } else {
                        bk.matmul_acc(b, &g2, true, &an, ta)?
                    }
                } else {
                    let gb =
                        if !tb { bk.matmul(&an, !ta, &g2, false)? } else { bk.matmul(&g2, true, &an, ta)? };
                    let gb = bk.sum_to(gb, pb.slice())?;
                    let gb = if b1 { bk.reshape(gb, sb.slice())? } else { gb };
                    bk.accumulate(b, gb)?;
                }
                bk.done(an);
            }
            bk.done(g2);
        }
        // y = permute(x, p)  ⇒  x̄ = permute(ȳ, p⁻¹)
        Op::Permute(x, perm) => {
            if bk.wants(*x) {
                let mut inv = vec![0; perm.len()];
                perm.iter().enumerate().for_each(|(i, &p)| inv[p] = i);
                let gx = bk.permute(&g, &inv)?;
                bk.accumulate(*x, gx)?;
            }
            bk.done(g);
        }
        // y = reshape(x)  ⇒  x̄ = reshape(ȳ, shape(x))
        Op::Reshape(x) => {
            let sx = bk.shape_of(*x);
            let gx = bk.reshape(g, sx.slice())?;
            bk.accumulate(*x, gx)?;
        }
        // y = broadcast(x)  ⇒  x̄ = Σ over the broadcast axes of ȳ
        Op::BroadcastTo(x) => {
            let sx = bk.shape_of(*x);
            let gx = bk.sum_to(g, sx.slice())?;
            bk.accumulate(*x, gx)?;
        }
        // y = sum_to(x)  ⇒  x̄ = broadcast(ȳ, shape(x))
        Op::SumTo(x) => bk.accumulate_broadcast(*x, g)?,
        // y = Σ_axes x  ⇒  x̄ = broadcast(ȳ) (every summand gets ȳ); mean also divides by the count
        Op::Sum { a, axes, keepdims } | Op::Mean { a, axes, keepdims } => {
            let sx = bk.shape_of(*a);
            let gk =
                if *keepdims { g } else { bk.reshape(g, reduced_shape(sx.slice(), *axes, true).slice())? };
            let gk = if let Op::Mean { .. } = op {
                let count: usize = (0..sx.ndim()).filter(|d| axes >> d & 1 == 1).map(|d| sx[d]).product();
                bk.scale(gk, T::one() / T::of(count as f64))?
            } else {
                gk
            };
            bk.accumulate_broadcast(*a, gk)?;
        }
        // y = softmax(x)  ⇒  x̄ = y ⊙ (ȳ − Σ_axis ȳ ⊙ y)
        Op::Softmax(x, axis) => {
            let yn = bk.node(y);
            let gy = bk.mul(&g, &yn)?;
            let s = bk.sum_axes(&gy, 1 << axis, true)?;
            let d = bk.sub(&g, &s)?;
            let gx = bk.mul(&yn, &d)?;
            for h in [gy, s, d, yn, g] {
                bk.done(h);
            }
            bk.accumulate(*x, gx)?;
        }
        // y = log_softmax(x)  ⇒  x̄ = ȳ − softmax(x) ⊙ Σ_axis ȳ,  softmax(x) = eʸ
        Op::LogSoftmax(x, axis) => {
            let s = bk.sum_axes(&g, 1 << axis, true)?;
            let yn = bk.node(y);
            let p = bk.exp(&yn)?;
            let t = bk.mul(&p, &s)?;
            let gx = bk.sub(&g, &t)?;
            for h in [s, yn, p, t, g] {
                bk.done(h);
            }
            bk.accumulate(*x, gx)?;
        }
        // y = max_axis x  ⇒  x̄ = ȳ at the (first) arg-max, 0 elsewhere
        Op::Extreme { a, axis, keepdims, max } => {
            let sx = bk.shape_of(*a);
            let mask = bk.extreme_mask(*a, *axis, *max);
            let gk = if *keepdims {
                g
            } else {
                bk.reshape(g, reduced_shape(sx.slice(), 1 << axis, true).slice())?
            };
            let gb = bk.broadcast_to(&gk, sx.slice())?;
            let gx = bk.where_zero(&gb, &mask, true)?;
            bk.done(gk);
            bk.done(gb);
            bk.accumulate(*a, gx)?;
        }
        // y = mask ? a : b  ⇒  ā = Σ mask ? ȳ : 0,  b̄ = Σ mask ? 0 : ȳ
        Op::Where(mask, a, b) => {
            for (x, keep) in [(*a, true), (*b, false)] {
                if bk.wants(x) {
                    let sx = bk.shape_of(x);
                    let gx = bk.where_zero(&g, mask, keep)?;
                    let gx = bk.sum_to(gx, sx.slice())?;
                    bk.accumulate(x, gx)?;
                }
            }
            bk.done(g);
        }
        // y = concat(xᵢ)  ⇒  x̄ᵢ = ȳ[.., offsetᵢ..offsetᵢ + lenᵢ, ..]
        Op::Concat(xs, axis) => {
            let mut off = 0;
            for &x in xs.iter() {
                let len = bk.shape_of(x)[*axis];
                if bk.wants(x) {
                    let gx = bk.slice(&g, *axis, off, off + len)?;
                    bk.accumulate(x, gx)?;
                }
                off += len;
            }
            bk.done(g);
        }
        // y = x[start..end]  ⇒  x̄ = ȳ placed at start in zeros
        Op::Slice { a, axis, start, .. } => {
            let len = bk.shape_of(*a)[*axis];
            let gx = bk.pad(&g, *axis, *start, len)?;
            bk.done(g);
            bk.accumulate(*a, gx)?;
        }
        // y = pad(x)  ⇒  x̄ = ȳ[start..start + len]
        Op::Pad { a, axis, start } => {
            let len = bk.shape_of(*a)[*axis];
            let gx = bk.slice(&g, *axis, *start, start + len)?;
            bk.done(g);
            bk.accumulate(*a, gx)?;
        }
        // y = x[index]  ⇒  x̄[index[j]] += ȳ[j]
        Op::IndexSelect { a, axis, index } => {
            let len = bk.shape_of(*a)[*axis];
            let gx = bk.index_add(&g, *axis, index, len)?;
            bk.done(g);
            bk.accumulate(*a, gx)?;
        }
        // y[index[j]] += x[j]  ⇒  x̄ = ȳ[index]
        Op::IndexAdd { a, axis, index } => {
            let gx = bk.index_select(&g, *axis, index)?;
            bk.done(g);
            bk.accumulate(*a, gx)?;
        }
        // y = gather(x, index)  ⇒  x̄ = scatter_add(ȳ, index)
        Op::Gather { a, axis, index } => {
            let len = bk.shape_of(*a)[*axis];
            let gx = bk.scatter_add(&g, *axis, index, len)?;
            bk.done(g);
            bk.accumulate(*a, gx)?;
        }
        // y = scatter_add(x, index)  ⇒  x̄ = gather(ȳ, index)
        Op::ScatterAdd { a, axis, index } => {
            let gx = bk.gather(&g, *axis, index)?;
            bk.done(g);
            bk.accumulate(*a, gx)?;
        }
    }
    Ok(())
}

// ===================================================================================== numeric

/// A handle of the numeric backend: a node's forward value (borrowed) or an owned tensor.
pub(crate) enum NH<T> {
    Node(NodeId),
    Own(ArrayD<T>),
}

fn res<'b, T>(nodes: &'b [Node<T>], h: &'b NH<T>) -> &'b ArrayD<T> {
    match h {
        NH::Node(i) => &nodes[i.index()].value,
        NH::Own(a) => a,
    }
}

/// The lean first-order backend: rules run on tensors, nothing is recorded.
pub(crate) struct Numeric<'a, T> {
    pub(crate) nodes: &'a [Node<T>],
    pub(crate) pool: &'a mut Pool<T>,
    pub(crate) adj: &'a mut [Option<ArrayD<T>>],
    pub(crate) relevant: &'a [bool],
    pub(crate) check_finite: bool,
    /// The node whose rule is running (named by the NaN/∞ check).
    pub(crate) current: usize,
}

/// `(x, a, ta, b, tb)` for `x̄ (+)= op(a)·op(b)`, operands as arrays.
type ArrAcc<'h, T> = (usize, &'h ArrayD<T>, bool, &'h ArrayD<T>, bool);

impl<T: Scalar> Numeric<'_, T> {
    fn own(&mut self, h: NH<T>) -> ArrayD<T> {
        match h {
            NH::Own(a) => a,
            NH::Node(i) => self.pool.copy(&self.nodes[i.index()].value),
        }
    }

    /// Two products into two different adjoints, side by side (the caller checked
    /// [`k::pair_side_by_side`]); a missing adjoint takes its product (accumulate = false: its
    /// stale buffer is overwritten).
    fn pair_side_by_side(&mut self, p: ArrAcc<'_, T>, q: ArrAcc<'_, T>) -> Result<()> {
        let (i, j) = (p.0, q.0);
        let (acc_p, acc_q) = (self.adj[i].is_some(), self.adj[j].is_some());
        for x in [&p, &q] {
            if self.adj[x.0].is_none() {
                let shape = k::matmul_shape(x.1.shape(), x.2, x.3.shape(), x.4)?;
                self.adj[x.0] = Some(self.pool.stale(shape.slice(), T::zero()));
            }
        }
        let [Some(op), Some(oq)] = self.adj.get_disjoint_mut([i, j]).expect("distinct adjoints") else {
            unreachable!("both adjoints were just created")
        };
        k::matmul_acc_pair(
            k::AccProduct { out: op, accumulate: acc_p, a: p.1, ta: p.2, b: p.3, tb: p.4 },
            k::AccProduct { out: oq, accumulate: acc_q, a: q.1, ta: q.2, b: q.3, tb: q.4 },
        )
    }

    /// `x̄ (+)= op(a)·op(b)` for a relevant `x` (no NaN/∞ check: callers run without it).
    fn acc_product(&mut self, (x, a, ta, b, tb): ArrAcc<'_, T>) -> Result<()> {
        match &mut self.adj[x] {
            Some(acc) => k::matmul_acc(acc, a, ta, b, tb),
            None => {
                self.adj[x] = Some(k::matmul(self.pool, a, ta, b, tb)?);
                Ok(())
            }
        }
    }

    /// Seeds a 2-D matrix-product node with a borrowed adjoint `g` by running its rule on `g`
    /// directly, instead of copying `g` into the node's adjoint first (a Hessian-vector product
    /// seeds each weight's gradient product with a direction of the weight's size). By
    /// linearity this equals seeding the node: its rule then runs on whatever else reaches it.
    /// `false` (nothing done) for other nodes, or with the NaN/∞ check on.
    pub(crate) fn seed_matmul(&mut self, id: NodeId, g: &ArrayD<T>) -> Result<bool> {
        let i = id.index();
        let n = self.nodes;
        let Op::MatMul { a, b, ta, tb } = n[i].op else { return Ok(false) };
        let (a, b) = (a.index(), b.index());
        let (av, bv) = (&n[a].value, &n[b].value);
        if self.check_finite
            || av.ndim() != 2
            || bv.ndim() != 2
            || g.shape() != n[i].value.shape()
            || !g.is_standard_layout()
        {
            return Ok(false);
        }
        if !self.relevant[i] {
            return Ok(true);
        }
        // Y = op(A)·op(B):  Ā += Ȳ·op(B)ᵀ (op(B)·Ȳᵀ for a transposed A),  B̄ += op(A)ᵀ·Ȳ (Ȳᵀ·op(A)).
        let pa: ArrAcc<'_, T> = if !ta { (a, g, false, bv, !tb) } else { (a, bv, tb, g, true) };
        let pb: ArrAcc<'_, T> = if !tb { (b, av, !ta, g, false) } else { (b, g, true, av, ta) };
        let (wa, wb) = (self.relevant[a], self.relevant[b]);
        if wa
            && wb
            && a != b
            && k::pair_side_by_side((pa.1.shape(), pa.2, pa.3.shape()), (pb.1.shape(), pb.2, pb.3.shape()))
        {
            self.pair_side_by_side(pa, pb)?;
        } else {
            if wa {
                self.acc_product(pa)?;
            }
            if wb {
                self.acc_product(pb)?;
            }
        }
        Ok(true)
    }
}

impl<'t, T: Scalar> Backend<'t, T> for Numeric<'_, T> {
    type H = NH<T>;

    fn node(&mut self, id: NodeId) -> NH<T> {
        NH::Node(id)
    }
    fn dup(&mut self, h: &NH<T>) -> NH<T> {
        match h {
            NH::Node(i) => NH::Node(*i),
            NH::Own(a) => NH::Own(self.pool.copy(a)),
        }
    }
    fn done(&mut self, h: NH<T>) {
        if let NH::Own(a) = h {
            self.pool.recycle(a);
        }
    }
    fn shape_of(&self, id: NodeId) -> IxDyn {
        self.nodes[id.index()].value.raw_dim()
    }
    fn wants(&self, id: NodeId) -> bool {
        self.relevant[id.index()]
    }
    fn accumulate(&mut self, id: NodeId, h: NH<T>) -> Result<()> {
        if !self.relevant[id.index()] {
            self.done(h);
            return Ok(());
        }
        let a = self.own(h);
        if self.check_finite
            && let Some((i, x)) = first_non_finite(&a)
        {
            return Err(Error::non_finite(
                "backward pass",
                format!(
                    "the rule of op `{}` (node {}) produced {x} at flat index {i} of the adjoint of node {}",
                    self.nodes[self.current].op.name(),
                    self.current,
                    id.index()
                ),
            ));
        }
        let expected = self.nodes[id.index()].value.shape();
        if a.shape() != expected {
            return Err(Error::Autodiff(format!(
                "internal: adjoint of node {} has shape {:?}, value has {:?} (rule of `{}`)",
                id.index(),
                a.shape(),
                expected,
                self.nodes[self.current].op.name()
            )));
        }
        match &mut self.adj[id.index()] {
            slot @ None => *slot = Some(a),
            Some(acc) => {
                acc.as_slice_mut().expect("row-major").iter_mut().zip(sl(&a)).for_each(|(d, &x)| *d += x);
                self.pool.recycle(a);
            }
        }
        Ok(())
    }
    #[inline(always)]
    fn unary(
        &mut self,
        g: NH<T>,
        x: NodeId,
        y: NodeId,
        fs: impl Fn(T, T, T) -> T,
        _fv: impl Fn(Var<'t, T>, Var<'t, T>, Var<'t, T>) -> Var<'t, T>,
    ) -> Result<NH<T>> {
        let (xs, ys) = (sl(&self.nodes[x.index()].value), sl(&self.nodes[y.index()].value));
        let mut g = self.own(g);
        g.as_slice_mut()
            .expect("row-major")
            .iter_mut()
            .zip(xs.iter().zip(ys))
            .for_each(|(g, (&x, &y))| *g = fs(*g, x, y));
        Ok(NH::Own(g))
    }
    fn binary(
        &mut self,
        g: &NH<T>,
        (a, b): (NodeId, NodeId),
        y: NodeId,
        fs: impl Fn(T, T, T, T) -> T,
        _fv: impl Fn(Var<'t, T>, Var<'t, T>, Var<'t, T>, Var<'t, T>) -> Var<'t, T>,
    ) -> Result<NH<T>> {
        let n = self.nodes;
        let gv = res(n, g);
        let (av, bv, yv) = (&n[a.index()].value, &n[b.index()].value, &n[y.index()].value);
        Ok(NH::Own(k::ew(self.pool, gv.shape(), [gv, av, bv, yv], |[g, a, b, y]| fs(g, a, b, y))?))
    }
    fn mul(&mut self, a: &NH<T>, b: &NH<T>) -> Result<NH<T>> {
        let (a, b) = (res(self.nodes, a), res(self.nodes, b));
        Ok(NH::Own(super::var::binary_kernel(self.pool, a, b, Binary::Mul)?))
    }
    fn sub(&mut self, a: &NH<T>, b: &NH<T>) -> Result<NH<T>> {
        let (a, b) = (res(self.nodes, a), res(self.nodes, b));
        Ok(NH::Own(super::var::binary_kernel(self.pool, a, b, Binary::Sub)?))
    }
    fn scale(&mut self, h: NH<T>, c: T) -> Result<NH<T>> {
        let mut a = self.own(h);
        a.as_slice_mut().expect("row-major").iter_mut().for_each(|x| *x *= c);
        Ok(NH::Own(a))
    }
    fn exp(&mut self, h: &NH<T>) -> Result<NH<T>> {
        Ok(NH::Own(k::map(self.pool, res(self.nodes, h), T::exp)))
    }
    fn sum_to(&mut self, h: NH<T>, shape: &[usize]) -> Result<NH<T>> {
        if res(self.nodes, &h).shape() == shape {
            return Ok(h);
        }
        let r = k::sum_to(self.pool, res(self.nodes, &h), shape)?;
        self.done(h);
        Ok(NH::Own(r))
    }
    fn broadcast_to(&mut self, h: &NH<T>, shape: &[usize]) -> Result<NH<T>> {
        Ok(NH::Own(k::broadcast_to(self.pool, res(self.nodes, h), shape)?))
    }
    fn sum_to_ref(&mut self, h: &NH<T>, shape: &[usize]) -> Result<NH<T>> {
        Ok(NH::Own(k::sum_to(self.pool, res(self.nodes, h), shape)?))
    }
    fn accumulate_broadcast(&mut self, id: NodeId, h: NH<T>) -> Result<()> {
        if !self.relevant[id.index()] {
            self.done(h);
            return Ok(());
        }
        if !self.check_finite
            && let Some(acc) = &mut self.adj[id.index()]
        {
            let r = k::add_broadcast(acc, res(self.nodes, &h));
            self.done(h);
            return r;
        }
        let sx = self.shape_of(id);
        let b = self.broadcast_to(&h, sx.slice())?;
        self.done(h);
        self.accumulate(id, b)
    }
    fn reshape(&mut self, h: NH<T>, shape: &[usize]) -> Result<NH<T>> {
        match h {
            NH::Own(a) if a.len() == shape.iter().product::<usize>() => {
                Ok(NH::Own(a.into_shape_with_order(IxDyn(shape)).expect("row-major, same size")))
            }
            h => {
                let r = k::reshape(self.pool, res(self.nodes, &h), shape)?;
                self.done(h);
                Ok(NH::Own(r))
            }
        }
    }
    fn permute(&mut self, h: &NH<T>, perm: &[usize]) -> Result<NH<T>> {
        Ok(NH::Own(k::permute(self.pool, res(self.nodes, h), perm)?))
    }
    fn sum_axes(&mut self, h: &NH<T>, axes: u64, keepdims: bool) -> Result<NH<T>> {
        Ok(NH::Own(k::sum_axes(self.pool, res(self.nodes, h), axes, keepdims)?))
    }
    fn matmul(&mut self, a: &NH<T>, ta: bool, b: &NH<T>, tb: bool) -> Result<NH<T>> {
        Ok(NH::Own(k::matmul(self.pool, res(self.nodes, a), ta, res(self.nodes, b), tb)?))
    }
    fn matmul_acc(&mut self, id: NodeId, a: &NH<T>, ta: bool, b: &NH<T>, tb: bool) -> Result<()> {
        if !self.relevant[id.index()] {
            return Ok(());
        }
        if !self.check_finite
            && let Some(acc) = &mut self.adj[id.index()]
        {
            return k::matmul_acc(acc, res(self.nodes, a), ta, res(self.nodes, b), tb);
        }
        let r = self.matmul(a, ta, b, tb)?;
        self.accumulate(id, r)
    }
    fn matmul_acc_pair(&mut self, p: MatAcc<'_, NH<T>>, q: MatAcc<'_, NH<T>>) -> Result<()> {
        let (i, j) = (p.0.index(), q.0.index());
        fn shapes<'h, T>(n: &'h [Node<T>], x: &MatAcc<'h, NH<T>>) -> (&'h [usize], bool, &'h [usize]) {
            (res(n, x.1).shape(), x.2, res(n, x.3).shape())
        }
        let n = self.nodes;
        if self.check_finite
            || i == j
            || !self.relevant[i]
            || !self.relevant[j]
            || !k::pair_side_by_side(shapes(n, &p), shapes(n, &q))
        {
            self.matmul_acc(p.0, p.1, p.2, p.3, p.4)?;
            return self.matmul_acc(q.0, q.1, q.2, q.3, q.4);
        }
        self.pair_side_by_side(
            (i, res(n, p.1), p.2, res(n, p.3), p.4),
            (j, res(n, q.1), q.2, res(n, q.3), q.4),
        )
    }
    fn slice(&mut self, h: &NH<T>, axis: usize, start: usize, end: usize) -> Result<NH<T>> {
        Ok(NH::Own(k::slice(self.pool, res(self.nodes, h), axis, start, end)?))
    }
    fn pad(&mut self, h: &NH<T>, axis: usize, start: usize, len: usize) -> Result<NH<T>> {
        Ok(NH::Own(k::pad(self.pool, res(self.nodes, h), axis, start, len)?))
    }
    fn index_select(&mut self, h: &NH<T>, axis: usize, index: &Rc<[usize]>) -> Result<NH<T>> {
        Ok(NH::Own(k::index_select(self.pool, res(self.nodes, h), axis, index)?))
    }
    fn index_add(&mut self, h: &NH<T>, axis: usize, index: &Rc<[usize]>, len: usize) -> Result<NH<T>> {
        Ok(NH::Own(k::index_add(self.pool, res(self.nodes, h), axis, index, len)?))
    }
    fn gather(&mut self, h: &NH<T>, axis: usize, index: &Rc<ArrayD<usize>>) -> Result<NH<T>> {
        Ok(NH::Own(k::gather(self.pool, res(self.nodes, h), axis, index)?))
    }
    fn scatter_add(
        &mut self,
        h: &NH<T>,
        axis: usize,
        index: &Rc<ArrayD<usize>>,
        len: usize,
    ) -> Result<NH<T>> {
        Ok(NH::Own(k::scatter_add(self.pool, res(self.nodes, h), axis, index, len)?))
    }
    fn where_zero(&mut self, h: &NH<T>, mask: &Rc<ArrayD<bool>>, keep_true: bool) -> Result<NH<T>> {
        let zero = self.pool.full(&[], T::zero());
        let hv = res(self.nodes, h);
        let r = if keep_true {
            k::where_(self.pool, mask, hv, &zero)
        } else {
            k::where_(self.pool, mask, &zero, hv)
        };
        self.pool.recycle(zero);
        Ok(NH::Own(r?))
    }
    fn extreme_mask(&mut self, a: NodeId, axis: usize, max: bool) -> Rc<ArrayD<bool>> {
        Rc::new(k::extreme_mask(&self.nodes[a.index()].value, axis, max))
    }
}

// ======================================================================================= graph

/// The recording backend: every rule becomes tape ops, so adjoints are differentiable `Var`s.
pub(crate) struct Graph<'t, T: Scalar> {
    pub(crate) tape: &'t Tape<T>,
    pub(crate) adj: Vec<Option<NodeId>>,
    pub(crate) relevant: Vec<bool>,
    /// Requested inputs whose gradient value may stay pending (see [`Graph::matmul_acc`]).
    pub(crate) defer: Vec<bool>,
}

impl<'t, T: Scalar> Graph<'t, T> {
    fn v(&self, id: NodeId) -> Var<'t, T> {
        Var::new(id, self.tape)
    }
}

impl<'t, T: Scalar> Backend<'t, T> for Graph<'t, T> {
    type H = NodeId;

    fn node(&mut self, id: NodeId) -> NodeId {
        id
    }
    fn dup(&mut self, h: &NodeId) -> NodeId {
        *h
    }
    fn done(&mut self, _h: NodeId) {}
    fn shape_of(&self, id: NodeId) -> IxDyn {
        self.tape.nodes()[id.index()].value.raw_dim()
    }
    fn wants(&self, id: NodeId) -> bool {
        self.relevant[id.index()]
    }
    fn accumulate(&mut self, id: NodeId, h: NodeId) -> Result<()> {
        if self.relevant[id.index()] {
            let new = match self.adj[id.index()] {
                None => h,
                Some(acc) => (self.v(acc) + self.v(h)).id,
            };
            self.adj[id.index()] = Some(new);
        }
        Ok(())
    }
    fn unary(
        &mut self,
        g: NodeId,
        x: NodeId,
        y: NodeId,
        _fs: impl Fn(T, T, T) -> T,
        fv: impl Fn(Var<'t, T>, Var<'t, T>, Var<'t, T>) -> Var<'t, T>,
    ) -> Result<NodeId> {
        Ok(fv(self.v(g), self.v(x), self.v(y)).id)
    }
    fn binary(
        &mut self,
        g: &NodeId,
        (a, b): (NodeId, NodeId),
        y: NodeId,
        _fs: impl Fn(T, T, T, T) -> T,
        fv: impl Fn(Var<'t, T>, Var<'t, T>, Var<'t, T>, Var<'t, T>) -> Var<'t, T>,
    ) -> Result<NodeId> {
        Ok(fv(self.v(*g), self.v(a), self.v(b), self.v(y)).id)
    }
    fn mul(&mut self, a: &NodeId, b: &NodeId) -> Result<NodeId> {
        Ok((self.v(*a) * self.v(*b)).id)
    }
    fn sub(&mut self, a: &NodeId, b: &NodeId) -> Result<NodeId> {
        Ok((self.v(*a) - self.v(*b)).id)
    }
    fn scale(&mut self, h: NodeId, c: T) -> Result<NodeId> {
        Ok(self.v(h).scale(c).id)
    }
    fn exp(&mut self, h: &NodeId) -> Result<NodeId> {
        Ok(self.v(*h).exp().id)
    }
    fn sum_to(&mut self, h: NodeId, shape: &[usize]) -> Result<NodeId> {
        if self.shape_of(h).slice() == shape {
            return Ok(h);
        }
        Ok(self.v(h).sum_to(shape).id)
    }
    fn broadcast_to(&mut self, h: &NodeId, shape: &[usize]) -> Result<NodeId> {
        if self.shape_of(*h).slice() == shape {
            return Ok(*h);
        }
        Ok(self.v(*h).broadcast_to(shape).id)
    }
    fn reshape(&mut self, h: NodeId, shape: &[usize]) -> Result<NodeId> {
        if self.shape_of(h).slice() == shape {
            return Ok(h);
        }
        Ok(self.v(h).reshape(shape).id)
    }
    fn permute(&mut self, h: &NodeId, perm: &[usize]) -> Result<NodeId> {
        Ok(self.v(*h).permute(perm).id)
    }
    fn sum_axes(&mut self, h: &NodeId, axes: u64, keepdims: bool) -> Result<NodeId> {
        Ok(self.v(*h).reduce(false, axes, keepdims).id)
    }
    fn matmul(&mut self, a: &NodeId, ta: bool, b: &NodeId, tb: bool) -> Result<NodeId> {
        Ok(self.v(*a).matmul_t(self.v(*b), ta, tb).id)
    }
    /// A product that is the whole gradient of a deferred input (a weight's `Ȳᵀ·X`) is recorded
    /// with its value pending: a Hessian-vector product seeds it but never reads its value, so
    /// the matrix product is skipped (for an MLP, one GEMM per layer of the recorded gradient).
    fn matmul_acc(&mut self, id: NodeId, a: &NodeId, ta: bool, b: &NodeId, tb: bool) -> Result<()> {
        let i = id.index();
        let deferrable =
            self.defer.get(i).copied().unwrap_or(false) && self.relevant[i] && self.adj[i].is_none();
        if deferrable && !self.tape.is_pending(*a) && !self.tape.is_pending(*b) {
            let shape = k::matmul_shape(self.shape_of(*a).slice(), ta, self.shape_of(*b).slice(), tb)?;
            let v = self.tape.push_pending(Op::MatMul { a: *a, b: *b, ta, tb }, shape.slice());
            self.adj[i] = Some(v.id);
            return Ok(());
        }
        let r = self.matmul(a, ta, b, tb)?;
        self.accumulate(id, r)
    }
    fn slice(&mut self, h: &NodeId, axis: usize, start: usize, end: usize) -> Result<NodeId> {
        Ok(self.v(*h).slice(axis, start, end).id)
    }
    fn pad(&mut self, h: &NodeId, axis: usize, start: usize, len: usize) -> Result<NodeId> {
        Ok(self.v(*h).pad(axis, start, len).id)
    }
    fn index_select(&mut self, h: &NodeId, axis: usize, index: &Rc<[usize]>) -> Result<NodeId> {
        Ok(self.v(*h).index_select_rc(axis, index.clone()).id)
    }
    fn index_add(&mut self, h: &NodeId, axis: usize, index: &Rc<[usize]>, len: usize) -> Result<NodeId> {
        Ok(self.v(*h).index_add_rc(axis, index.clone(), len).id)
    }
    fn gather(&mut self, h: &NodeId, axis: usize, index: &Rc<ArrayD<usize>>) -> Result<NodeId> {
        Ok(self.v(*h).gather_rc(axis, index.clone()).id)
    }
    fn scatter_add(
        &mut self,
        h: &NodeId,
        axis: usize,
        index: &Rc<ArrayD<usize>>,
        len: usize,
    ) -> Result<NodeId> {
        Ok(self.v(*h).scatter_add_rc(axis, index.clone(), len).id)
    }
    fn where_zero(&mut self, h: &NodeId, mask: &Rc<ArrayD<bool>>, keep_true: bool) -> Result<NodeId> {
        let zero = self.tape.push_const(|_, pool| Ok(pool.full(&[], T::zero())));
        let hv = self.v(*h);
        Ok(if keep_true { hv.select_rc(mask.clone(), zero) } else { zero.select_rc(mask.clone(), hv) }.id)
    }
    fn extreme_mask(&mut self, a: NodeId, axis: usize, max: bool) -> Rc<ArrayD<bool>> {
        Rc::new(k::extreme_mask(&self.tape.nodes()[a.index()].value, axis, max))
    }
}
