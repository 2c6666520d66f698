//! Forward kernels on row-major tensors, shared by the tape's forward ops and the numeric
//! backward pass. Every result comes from the [`Pool`], so a repeated step reuses storage.
//!
//! Broadcasting follows numpy: shapes align on the right; a dimension of 1 (or a missing one)
//! stretches. The common cases (equal shapes, a scalar, a bias row `[n]` against `[m, n]`, a
//! keepdims column `[m, 1]` against `[m, n]`) run as flat index arithmetic; other patterns are
//! materialised first.

use ndarray::{ArrayD, ArrayView2, ArrayView3, ArrayViewMut2, Axis, Dimension, IxDyn, ShapeBuilder};

use super::pool::Pool;
use crate::tensor::{gemm_into, gemm_into_seq};
use crate::{Error, Result, Scalar};

type Arr<T> = ArrayD<T>;

/// Row-major slice of a node value (every node value is row-major by construction).
#[inline]
pub(crate) fn sl<T>(a: &Arr<T>) -> &[T] {
    a.as_slice().expect("tape values are row-major")
}

/// numpy broadcast of two shapes, or a shape error naming `op` and both shapes.
pub(crate) fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Result<IxDyn> {
    let n = a.len().max(b.len());
    let mut out = IxDyn::zeros(n);
    for d in 0..n {
        let x = if d + a.len() >= n { a[d + a.len() - n] } else { 1 };
        let y = if d + b.len() >= n { b[d + b.len() - n] } else { 1 };
        out[d] = match (x, y) {
            _ if x == y => x,
            (1, _) => y,
            (_, 1) => x,
            _ => {
                return Err(Error::shape(
                    op,
                    format!("cannot broadcast {a:?} with {b:?} (axis {d}: {x} vs {y})"),
                ));
            }
        };
    }
    Ok(out)
}

/// How an operand of `shape` is read when broadcast to `out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bc {
    /// Same elements in the same order.
    Same,
    /// One element.
    Scalar,
    /// A trailing block repeated: element `i % n`.
    Suffix(usize),
    /// Leading block, each element repeated `r` times: element `i / r`.
    Prefix(usize),
    /// Anything else: copied out first.
    General,
}

pub(crate) fn classify(shape: &[usize], out: &[usize]) -> Bc {
    let n: usize = shape.iter().product();
    let total: usize = out.iter().product();
    if n == total {
        return Bc::Same;
    }
    if n == 1 {
        return Bc::Scalar;
    }
    let off = out.len() - shape.len();
    let p = |d: usize| if d < off { 1 } else { shape[d - off] };
    let Some(first) = (0..out.len()).find(|&d| p(d) != 1) else { return Bc::Scalar };
    if (first..out.len()).all(|d| p(d) == out[d]) {
        return Bc::Suffix(n);
    }
    let last = (0..out.len()).rev().find(|&d| p(d) != 1).map_or(0, |d| d + 1);
    if (0..last).all(|d| p(d) == out[d]) {
        return Bc::Prefix(out[last..].iter().product());
    }
    Bc::General
}

#[inline(always)]
pub(crate) fn at(bc: Bc, i: usize) -> usize {
    match bc {
        Bc::Same => i,
        Bc::Scalar => 0,
        Bc::Suffix(n) => i % n,
        Bc::Prefix(r) => i / r,
        Bc::General => unreachable!("materialised before use"),
    }
}

/// `a` broadcast to `out`, as a new row-major array.
fn materialise<T: Scalar>(pool: &mut Pool<T>, a: &Arr<T>, out: &[usize]) -> Result<Arr<T>> {
    let v = a.broadcast(IxDyn(out)).ok_or_else(|| {
        Error::shape("broadcast_to", format!("cannot broadcast {:?} to {out:?}", a.shape()))
    })?;
    Ok(pool.array(out, v.iter().copied()))
}

/// Elementwise `f` over `K` operands broadcast to `out` (which the caller has checked).
pub(crate) fn ew<T: Scalar, const K: usize>(
    pool: &mut Pool<T>,
    out: &[usize],
    ins: [&Arr<T>; K],
    f: impl Fn([T; K]) -> T,
) -> Result<Arr<T>> {
    let n: usize = out.iter().product();
    let mut bcs = [Bc::Same; K];
    let mut general = false;
    for k in 0..K {
        bcs[k] = classify(ins[k].shape(), out);
        general |= bcs[k] == Bc::General;
    }
    if general {
        let mut mats: [Option<Arr<T>>; K] = std::array::from_fn(|_| None);
        for k in 0..K {
            if bcs[k] == Bc::General {
                mats[k] = Some(materialise(pool, ins[k], out)?);
            }
        }
        let refs: [&Arr<T>; K] = std::array::from_fn(|k| mats[k].as_ref().unwrap_or(ins[k]));
        let r = ew(pool, out, refs, f);
        for m in mats.into_iter().flatten() {
            pool.recycle(m);
        }
        return r;
    }
    let s: [&[T]; K] = std::array::from_fn(|k| sl(ins[k]));
    let mut v = pool.take(n);
    if bcs.iter().all(|b| *b == Bc::Same) {
        // Sliced to `n` so the bounds checks leave the loop.
        let s: [&[T]; K] = std::array::from_fn(|k| &s[k][..n]);
        v.extend((0..n).map(|i| f(std::array::from_fn(|k| s[k][i]))));
    } else if let Some((rows, len)) = rows_of(&bcs, n) {
        // Every broadcast operand repeats along rows of `len` (a bias row) or within them (a
        // keepdims column): element (q, j) of operand k is at q·rsₖ + j·csₖ, no division.
        let st: [(usize, usize); K] = std::array::from_fn(|k| match bcs[k] {
            Bc::Same => (len, 1),
            Bc::Scalar => (0, 0),
            Bc::Suffix(_) => (0, 1),
            _ => (1, 0),
        });
        for q in 0..rows {
            v.extend((0..len).map(|j| f(std::array::from_fn(|k| s[k][q * st[k].0 + j * st[k].1]))));
        }
    } else {
        v.extend((0..n).map(|i| f(std::array::from_fn(|k| s[k][at(bcs[k], i)]))));
    }
    Ok(ArrayD::from_shape_vec(IxDyn(out), v).expect("ew: length matches shape"))
}

/// `(rows, len)` when every broadcast pattern is a row of `len` (`Suffix(len)`), an element per
/// row of `len` (`Prefix(len)`), a scalar or the identity.
fn rows_of(bcs: &[Bc], n: usize) -> Option<(usize, usize)> {
    let mut len = None;
    for b in bcs {
        let l = match *b {
            Bc::Suffix(l) | Bc::Prefix(l) => l,
            _ => continue,
        };
        if l == 0 || len.is_some_and(|x| x != l) {
            return None;
        }
        len = Some(l);
    }
    len.map(|l| (n / l, l))
}

/// Elementwise `f` of one tensor.
#[inline]
pub(crate) fn map<T: Scalar>(pool: &mut Pool<T>, a: &Arr<T>, f: impl Fn(T) -> T) -> Arr<T> {
    pool.array(a.shape(), sl(a).iter().map(|&x| f(x)))
}

/// `(outer, len, inner)`: a row-major tensor seen as 3-D around `axis`.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

pub(crate) fn check_axis(op: &str, shape: &[usize], axis: usize) -> Result<()> {
    if axis >= shape.len() {
        return Err(Error::shape(op, format!("axis {axis} is out of range for shape {shape:?}")));
    }
    Ok(())
}

/// Sum over one axis, kept as length 1.
fn sum_axis_keep<T: Scalar>(pool: &mut Pool<T>, a: &Arr<T>, axis: usize) -> Arr<T> {
    let (outer, len, inner) = split_at_axis(a.shape(), axis);
    let mut shape = IxDyn(a.shape());
    shape[axis] = 1;
    let mut out = pool.full(shape.slice(), T::zero());
    let o = out.as_slice_mut().expect("row-major");
    let s = sl(a);
    for p in 0..outer {
        let dst = &mut o[p * inner..(p + 1) * inner];
        for j in 0..len {
            let src = &s[(p * len + j) * inner..(p * len + j + 1) * inner];
            dst.iter_mut().zip(src).for_each(|(d, &x)| *d += x);
        }
    }
    out
}

/// The shape after reducing `axes` (bit mask) with or without keepdims.
pub(crate) fn reduced_shape(shape: &[usize], axes: u64, keepdims: bool) -> IxDyn {
    let kept = (0..shape.len()).filter(|&d| keepdims || axes >> d & 1 == 0).count();
    let mut out = IxDyn::zeros(kept);
    let mut j = 0;
    for (d, &n) in shape.iter().enumerate() {
        if axes >> d & 1 == 1 {
            if keepdims {
                out[j] = 1;
                j += 1;
            }
        } else {
            out[j] = n;
            j += 1;
        }
    }
    out
}

/// Sum over the axes in the bit mask.
pub(crate) fn sum_axes<T: Scalar>(
    pool: &mut Pool<T>,
    a: &Arr<T>,
    axes: u64,
    keepdims: bool,
) -> Result<Arr<T>> {
    if a.ndim() < 64 && axes >> a.ndim() != 0 {
        return Err(Error::shape(
            "sum",
            format!("axes {:?} out of range for shape {:?}", super::op::axes_list(axes), a.shape()),
        ));
    }
    let target = reduced_shape(a.shape(), axes, keepdims);
    if axes == 0 {
        return Ok(pool.copy(a));
    }
    if axes.count_ones() as usize == a.ndim() {
        let s: T = sl(a).iter().fold(T::zero(), |acc, &x| acc + x);
        return Ok(pool.full(target.slice(), s));
    }
    let mut cur: Option<Arr<T>> = None;
    for d in (0..a.ndim()).filter(|d| axes >> d & 1 == 1) {
        let next = sum_axis_keep(pool, cur.as_ref().unwrap_or(a), d);
        if let Some(c) = cur.replace(next) {
            pool.recycle(c);
        }
    }
    let r = cur.expect("at least one axis");
    Ok(r.into_shape_with_order(target).expect("same element count"))
}

/// Gradient of broadcasting: sum `g` down to `target` (which must broadcast to `g`'s shape).
pub(crate) fn sum_to<T: Scalar>(pool: &mut Pool<T>, g: &Arr<T>, target: &[usize]) -> Result<Arr<T>> {
    let b = broadcast_shapes("sum_to", target, g.shape())?;
    if b.slice() != g.shape() {
        return Err(Error::shape("sum_to", format!("{target:?} does not broadcast to {:?}", g.shape())));
    }
    let s = sl(g);
    match classify(target, g.shape()) {
        Bc::Same => Ok(pool.array(target, s.iter().copied())),
        Bc::Scalar => {
            let t = s.iter().fold(T::zero(), |acc, &x| acc + x);
            Ok(pool.full(target, t))
        }
        Bc::Suffix(n) => {
            let mut out = pool.full(target, T::zero());
            let o = out.as_slice_mut().expect("row-major");
            for chunk in s.chunks_exact(n) {
                o.iter_mut().zip(chunk).for_each(|(d, &x)| *d += x);
            }
            Ok(out)
        }
        Bc::Prefix(r) => {
            Ok(pool.array(target, s.chunks_exact(r).map(|c| c.iter().fold(T::zero(), |a, &x| a + x))))
        }
        Bc::General => {
            let off = g.ndim() - target.len();
            let mut axes = 0u64;
            for d in 0..g.ndim() {
                if d < off || (target[d - off] == 1 && g.shape()[d] != 1) {
                    axes |= 1 << d;
                }
            }
            let r = sum_axes(pool, g, axes, true)?;
            Ok(r.into_shape_with_order(IxDyn(target)).expect("same element count"))
        }
    }
}

/// `a` broadcast to `target`.
pub(crate) fn broadcast_to<T: Scalar>(pool: &mut Pool<T>, a: &Arr<T>, target: &[usize]) -> Result<Arr<T>> {
    let b = broadcast_shapes("broadcast_to", a.shape(), target)?;
    if b.slice() != target {
        return Err(Error::shape(
            "broadcast_to",
            format!("{:?} does not broadcast to {target:?}", a.shape()),
        ));
    }
    ew(pool, target, [a], |[x]| x)
}

/// `acc += broadcast(h)` in place (`h` must broadcast to `acc`'s shape).
pub(crate) fn add_broadcast<T: Scalar>(acc: &mut Arr<T>, h: &Arr<T>) -> Result<()> {
    let b = broadcast_shapes("broadcast_to", h.shape(), acc.shape())?;
    if b.slice() != acc.shape() {
        return Err(Error::shape(
            "broadcast_to",
            format!("{:?} does not broadcast to {:?}", h.shape(), acc.shape()),
        ));
    }
    let bc = classify(h.shape(), acc.shape());
    let hs = sl(h);
    let o = acc.as_slice_mut().expect("row-major");
    match bc {
        Bc::Same => o.iter_mut().zip(hs).for_each(|(d, &x)| *d += x),
        Bc::Scalar => o.iter_mut().for_each(|d| *d += hs[0]),
        Bc::Suffix(n) => o.chunks_exact_mut(n).for_each(|c| c.iter_mut().zip(hs).for_each(|(d, &x)| *d += x)),
        Bc::Prefix(r) => o.chunks_exact_mut(r).zip(hs).for_each(|(c, &x)| c.iter_mut().for_each(|d| *d += x)),
        Bc::General => {
            let v = h.broadcast(acc.raw_dim()).expect("checked");
            acc.zip_mut_with(&v, |d, &x| *d += x);
        }
    }
    Ok(())
}

/// Same elements, new shape.
pub(crate) fn reshape<T: Scalar>(pool: &mut Pool<T>, a: &Arr<T>, shape: &[usize]) -> Result<Arr<T>> {
    if shape.iter().product::<usize>() != a.len() {
        return Err(Error::shape(
            "reshape",
            format!("cannot reshape {:?} ({} elements) to {shape:?}", a.shape(), a.len()),
        ));
    }
    Ok(pool.array(shape, sl(a).iter().copied()))
}

/// Checks that `perm` is a permutation of `0..ndim`.
pub(crate) fn check_perm(shape: &[usize], perm: &[usize]) -> Result<()> {
    let mut seen = vec![false; shape.len()];
    if perm.len() != shape.len()
        || perm.iter().any(|&p| p >= shape.len() || std::mem::replace(&mut seen[p], true))
    {
        return Err(Error::shape(
            "permute",
            format!("{perm:?} is not a permutation of the axes of {shape:?}"),
        ));
    }
    Ok(())
}

/// Axes permuted, copied to row-major.
pub(crate) fn permute<T: Scalar>(pool: &mut Pool<T>, a: &Arr<T>, perm: &[usize]) -> Result<Arr<T>> {
    check_perm(a.shape(), perm)?;
    let v = a.view().permuted_axes(IxDyn(perm));
    let shape = v.raw_dim();
    Ok(pool.array(shape.slice(), v.iter().copied()))
}

/// A tensor seen as `[batch, rows, cols]` (transposed if asked); 1-D as a row (lhs) or column (rhs).
fn view3<'a, T: Scalar>(a: &'a Arr<T>, t: bool, lhs: bool) -> ArrayView3<'a, T> {
    let s = a.shape();
    let v = match s.len() {
        1 if lhs => a.view().into_shape_with_order((1, 1, s[0])),
        1 => a.view().into_shape_with_order((1, s[0], 1)),
        n => a.view().into_shape_with_order((s[..n - 2].iter().product(), s[n - 2], s[n - 1])),
    }
    .expect("row-major");
    if t && s.len() >= 2 { v.permuted_axes([0, 2, 1]) } else { v }
}

/// Products this small (m·n·k) run as a plain loop: cheaper than any GEMM dispatch.
const SMALL_MATMUL: usize = 512;

/// `c = a·b`, or `c += a·b` when `accumulate`.
fn mm2<T: Scalar>(
    c: ArrayViewMut2<'_, T>,
    accumulate: bool,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
) -> Result<()> {
    let (m, k) = a.dim();
    let n = b.ncols();
    if m * n * k <= SMALL_MATMUL {
        let mut c = c;
        for i in 0..m {
            for j in 0..n {
                let mut acc = T::zero();
                for p in 0..k {
                    acc += a[[i, p]] * b[[p, j]];
                }
                c[[i, j]] = if accumulate { c[[i, j]] + acc } else { acc };
            }
        }
        return Ok(());
    }
    let r = gemm_into(c, accumulate, T::one(), a, b);
    crate::tensor::clear_upper_simd_state();
    r
}

/// A matrix inside a flat slice: element `(i, j)` at `i·rs + j·cs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strided {
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

/// A 1-D or 2-D operand of a matrix product as `(rows, cols, strides)` of `op(x)`: a 1-D lhs is
/// a row, a 1-D rhs a column, a transposed operand is read with swapped strides.
pub(crate) fn as_matrix(shape: &[usize], t: bool, lhs: bool) -> Option<(usize, usize, Strided)> {
    match (shape, t) {
        ([k], _) if lhs => Some((1, *k, Strided { rs: *k, cs: 1 })),
        ([k], _) => Some((*k, 1, Strided { rs: 1, cs: 1 })),
        ([r, c], false) => Some((*r, *c, Strided { rs: *c, cs: 1 })),
        ([r, c], true) => Some((*c, *r, Strided { rs: 1, cs: *c })),
        _ => None,
    }
}

/// `C (+)= A·B` for `A` m×k and `B` k×n read through strides (so transposes and 1-D operands
/// cost nothing): a plain loop for tiny products, faer above [`SMALL_MATMUL`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_strided<T: Scalar>(
    accumulate: bool,
    c: &mut [T],
    sc: Strided,
    a: &[T],
    sa: Strided,
    b: &[T],
    sb: Strided,
    (m, k, n): (usize, usize, usize),
) -> Result<()> {
    if m * n * k > SMALL_MATMUL {
        let views = (
            ArrayView2::from_shape((m, k).strides((sa.rs, sa.cs)), a),
            ArrayView2::from_shape((k, n).strides((sb.rs, sb.cs)), b),
            ArrayViewMut2::from_shape((m, n).strides((sc.rs, sc.cs)), c),
        );
        if let (Ok(av), Ok(bv), Ok(cv)) = views {
            return gemm_into(cv, accumulate, T::one(), av, bv);
        }
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k > 0 && sb.cs == 1 && sc.cs == 1 {
        // Rows of B and C contiguous: C[i, :] (+)= Σₚ A[i, p]·B[p, :] on slices.
        for i in 0..m {
            let row = &mut c[i * sc.rs..i * sc.rs + n];
            if !accumulate {
                row.fill(T::zero());
            }
            for p in 0..k {
                let s = a[i * sa.rs + p * sa.cs];
                let brow = &b[p * sb.rs..p * sb.rs + n];
                row.iter_mut().zip(brow).for_each(|(d, &x)| *d += s * x);
            }
        }
        return Ok(());
    }
    if k > 0 && sa.cs == 1 && sb.rs == 1 {
        // Rows of A and columns of B contiguous: dot products on slices.
        for i in 0..m {
            let arow = &a[i * sa.rs..i * sa.rs + k];
            for j in 0..n {
                let bcol = &b[j * sb.cs..j * sb.cs + k];
                let acc = arow.iter().zip(bcol).fold(T::zero(), |acc, (&x, &y)| acc + x * y);
                let d = &mut c[i * sc.rs + j * sc.cs];
                *d = if accumulate { *d + acc } else { acc };
            }
        }
        return Ok(());
    }
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::zero();
            for p in 0..k {
                acc += a[i * sa.rs + p * sa.cs] * b[p * sb.rs + j * sb.cs];
            }
            let d = &mut c[i * sc.rs + j * sc.cs];
            *d = if accumulate { *d + acc } else { acc };
        }
    }
    Ok(())
}

/// `op(a)·op(b)` (see [`super::op::Op::MatMul`]).
pub(crate) fn matmul<T: Scalar>(
    pool: &mut Pool<T>,
    a: &Arr<T>,
    ta: bool,
    b: &Arr<T>,
    tb: bool,
) -> Result<Arr<T>> {
    let shape = matmul_shape(a.shape(), ta, b.shape(), tb)?;
    // Every element is written below (accumulate = false), so no zero-fill first.
    let mut out = pool.stale(shape.slice(), T::zero());
    // 1-D/2-D operands: read through strides, no 3-D views.
    if let (Some((m, k, sa)), Some((_, n, sb))) =
        (as_matrix(a.shape(), ta, true), as_matrix(b.shape(), tb, false))
    {
        let o = out.as_slice_mut().expect("row-major");
        gemm_strided(false, o, Strided { rs: n, cs: 1 }, sl(a), sa, sl(b), sb, (m, k, n))?;
        return Ok(out);
    }
    matmul_write(&mut out, false, a, ta, b, tb)?;
    Ok(out)
}

/// `out += op(a)·op(b)`: the product added straight into an adjoint (no temporary, no extra
/// pass); `out` must have the product's shape.
pub(crate) fn matmul_acc<T: Scalar>(
    out: &mut Arr<T>,
    a: &Arr<T>,
    ta: bool,
    b: &Arr<T>,
    tb: bool,
) -> Result<()> {
    let shape = matmul_shape(a.shape(), ta, b.shape(), tb)?;
    if out.shape() != shape.slice() {
        return Err(Error::shape(
            "matmul",
            format!("product {:?} added into {:?}", shape.slice(), out.shape()),
        ));
    }
    matmul_write(out, true, a, ta, b, tb)
}

/// Products (2·m·n·k flop each) from this size run side by side in [`matmul_acc_pair`]; below
/// it `rayon::join`'s hand-off costs more than the second core gains.
pub(crate) const PAIR_FLOP: usize = 1 << 21;

/// One product of [`matmul_acc_pair`]: `out (+)= op(a)·op(b)`, adding when `accumulate`.
pub(crate) struct AccProduct<'x, T> {
    pub(crate) out: &'x mut Arr<T>,
    pub(crate) accumulate: bool,
    pub(crate) a: &'x Arr<T>,
    pub(crate) ta: bool,
    pub(crate) b: &'x Arr<T>,
    pub(crate) tb: bool,
}

/// A 2-D product of 2-D operands as `(c, a, b)` views (transposes read through strides), or
/// `None` for other ranks; a shape error when `out` does not have the product's shape.
#[allow(clippy::type_complexity)]
fn views2<'x, T: Scalar>(
    p: &'x mut AccProduct<'_, T>,
) -> Result<Option<(ArrayViewMut2<'x, T>, ArrayView2<'x, T>, ArrayView2<'x, T>)>> {
    let shape = matmul_shape(p.a.shape(), p.ta, p.b.shape(), p.tb)?;
    if p.out.shape() != shape.slice() {
        return Err(Error::shape(
            "matmul",
            format!("product {:?} added into {:?}", shape.slice(), p.out.shape()),
        ));
    }
    if p.a.ndim() != 2 || p.b.ndim() != 2 {
        return Ok(None);
    }
    let v = |x: &'x Arr<T>, t: bool| {
        let v = x.view().into_dimensionality::<ndarray::Ix2>().expect("2-D");
        if t { v.reversed_axes() } else { v }
    };
    let c = p.out.view_mut().into_dimensionality::<ndarray::Ix2>().expect("2-D");
    Ok(Some((c, v(p.a, p.ta), v(p.b, p.tb))))
}

/// Whether two products of the given `(a, ta, b, tb)` operand shapes run side by side in
/// [`matmul_acc_pair`]: both 2-D, both at least [`PAIR_FLOP`], and a second thread to run on.
pub(crate) fn pair_side_by_side(p: (&[usize], bool, &[usize]), q: (&[usize], bool, &[usize])) -> bool {
    // 2·m·n·k = 2·m·len(b), with m the rows of op(a).
    let flop = |(a, ta, b): (&[usize], bool, &[usize])| match (a, b) {
        ([r, c], [r2, c2]) => 2 * if ta { c } else { r } * r2 * c2,
        _ => 0,
    };
    flop(p) >= PAIR_FLOP && flop(q) >= PAIR_FLOP && rayon::current_num_threads() > 1
}

/// The two independent products of a matrix product's backward pass (`Ā = Ȳ·Bᵀ`, `B̄ = Aᵀ·Ȳ`)
/// into two different adjoints, side by side on one thread each (for pairs that
/// [`pair_side_by_side`] accepts): neither waits at a GEMM's thread barriers, which beats each
/// product on two threads in turn. Each output comes from the same single-product kernel
/// whichever thread runs it, so results are deterministic.
pub(crate) fn matmul_acc_pair<T: Scalar>(mut p: AccProduct<'_, T>, mut q: AccProduct<'_, T>) -> Result<()> {
    let (acc1, acc2) = (p.accumulate, q.accumulate);
    match (views2(&mut p)?, views2(&mut q)?) {
        (Some((c1, a1, b1)), Some((c2, a2, b2))) => {
            let (r1, r2) = rayon::join(
                || gemm_into_seq(c1, acc1, T::one(), a1, b1),
                || gemm_into_seq(c2, acc2, T::one(), a2, b2),
            );
            crate::tensor::clear_upper_simd_state();
            r1.and(r2)
        }
        _ => Err(Error::Autodiff("internal: a side-by-side matmul pair needs 2-D operands".into())),
    }
}

/// The shape of `op(a)·op(b)`, or the shape error naming both operands.
pub(crate) fn matmul_shape(sa: &[usize], ta: bool, sb: &[usize], tb: bool) -> Result<IxDyn> {
    let flags =
        || format!("{}{}", if ta { " (a transposed)" } else { "" }, if tb { " (b transposed)" } else { "" });
    if sa.is_empty() || sb.is_empty() {
        return Err(Error::shape("matmul", format!("a {sa:?} and b {sb:?}: 0-d operands (use mul)")));
    }
    let ba: &[usize] = if sa.len() > 2 { &sa[..sa.len() - 2] } else { &[] };
    let bb: &[usize] = if sb.len() > 2 { &sb[..sb.len() - 2] } else { &[] };
    if !ba.is_empty() && !bb.is_empty() && ba != bb {
        return Err(Error::shape("matmul", format!("a {sa:?} and b {sb:?}: batch axes differ{}", flags())));
    }
    let last2 = |s: &[usize], t: bool, lhs: bool| -> (usize, usize) {
        let (r, c) = match s.len() {
            1 if lhs => (1, s[0]),
            1 => (s[0], 1),
            n => (s[n - 2], s[n - 1]),
        };
        if t && s.len() >= 2 { (c, r) } else { (r, c) }
    };
    let ((m, k), (k2, n)) = (last2(sa, ta, true), last2(sb, tb, false));
    if k != k2 {
        return Err(Error::shape(
            "matmul",
            format!("a {sa:?} and b {sb:?}: inner dimensions {k} and {k2} differ{}", flags()),
        ));
    }
    let batch_shape = if ba.is_empty() { bb } else { ba };
    let mut shape = IxDyn::zeros(batch_shape.len() + usize::from(sa.len() >= 2) + usize::from(sb.len() >= 2));
    shape.slice_mut()[..batch_shape.len()].copy_from_slice(batch_shape);
    let mut d = batch_shape.len();
    if sa.len() >= 2 {
        shape[d] = m;
        d += 1;
    }
    if sb.len() >= 2 {
        shape[d] = n;
    }
    Ok(shape)
}

/// `out (+)= op(a)·op(b)` for operands [`matmul_shape`] has checked.
fn matmul_write<T: Scalar>(
    out: &mut Arr<T>,
    accumulate: bool,
    a: &Arr<T>,
    ta: bool,
    b: &Arr<T>,
    tb: bool,
) -> Result<()> {
    let (av, bv) = (view3(a, ta, true), view3(b, tb, false));
    let (m, n) = (av.dim().1, bv.dim().2);
    let batch = av.dim().0.max(bv.dim().0);
    let mut o3 = out.view_mut().into_shape_with_order((batch, m, n)).expect("row-major");
    for i in 0..batch {
        let ai = av.index_axis(Axis(0), if av.dim().0 == 1 { 0 } else { i });
        let bi = bv.index_axis(Axis(0), if bv.dim().0 == 1 { 0 } else { i });
        mm2(o3.index_axis_mut(Axis(0), i), accumulate, ai, bi)?;
    }
    Ok(())
}

/// `softmax` (or `log_softmax`) along `axis`, with the maximum subtracted first so no `exp`
/// overflows: softmax(x)ᵢ = e^{xᵢ−m}/Σⱼe^{xⱼ−m}, log_softmax(x)ᵢ = xᵢ − m − ln Σⱼe^{xⱼ−m}.
pub(crate) fn softmax<T: Scalar>(pool: &mut Pool<T>, a: &Arr<T>, axis: usize, log: bool) -> Result<Arr<T>> {
    check_axis(if log { "log_softmax" } else { "softmax" }, a.shape(), axis)?;
    let (outer, len, inner) = split_at_axis(a.shape(), axis);
    let mut out = pool.full(a.shape(), T::zero());
    let o = out.as_slice_mut().expect("row-major");
    let s = sl(a);
    for p in 0..outer {
        for i in 0..inner {
            let idx = |j: usize| (p * len + j) * inner + i;
            let m = (0..len).map(|j| s[idx(j)]).fold(T::neg_infinity(), T::max);
            let m = if m.is_finite() { m } else { T::zero() };
            let mut z = T::zero();
            for j in 0..len {
                let e = (s[idx(j)] - m).exp();
                o[idx(j)] = e;
                z += e;
            }
            if log {
                let lz = z.ln() + m;
                for j in 0..len {
                    o[idx(j)] = s[idx(j)] - lz;
                }
            } else {
                for j in 0..len {
                    o[idx(j)] /= z;
                }
            }
        }
    }
    Ok(out)
}

/// Index of the first maximum (or minimum) along the axis for each `(outer, inner)`.
fn arg_extreme<T: Scalar>(s: &[T], len: usize, inner: usize, p: usize, i: usize, max: bool) -> usize {
    let mut best = 0;
    for j in 1..len {
        let (x, b) = (s[(p * len + j) * inner + i], s[(p * len + best) * inner + i]);
        if (max && x > b) || (!max && x < b) || (b.is_nan() && !x.is_nan()) {
            best = j;
        }
    }
    best
}

/// Maximum or minimum along `axis`.
pub(crate) fn extreme<T: Scalar>(
    pool: &mut Pool<T>,
    a: &Arr<T>,
    axis: usize,
    keepdims: bool,
    max: bool,
) -> Result<Arr<T>> {
    check_axis(if max { "max" } else { "min" }, a.shape(), axis)?;
    let (outer, len, inner) = split_at_axis(a.shape(), axis);
    if len == 0 {
        return Err(Error::shape(
            if max { "max" } else { "min" },
            format!("axis {axis} of {:?} is empty", a.shape()),
        ));
    }
    let s = sl(a);
    let shape = reduced_shape(a.shape(), 1 << axis, keepdims);
    Ok(pool.array(
        shape.slice(),
        (0..outer)
            .flat_map(|p| (0..inner).map(move |i| (p, i)))
            .map(|(p, i)| s[(p * len + arg_extreme(s, len, inner, p, i, max)) * inner + i]),
    ))
}

/// One-hot mask of the first extreme along `axis` (where the gradient of max/min goes).
pub(crate) fn extreme_mask<T: Scalar>(a: &Arr<T>, axis: usize, max: bool) -> ArrayD<bool> {
    let (outer, len, inner) = split_at_axis(a.shape(), axis);
    let s = sl(a);
    let mut m = ArrayD::from_elem(a.raw_dim(), false);
    let ms = m.as_slice_mut().expect("row-major");
    for p in 0..outer {
        for i in 0..inner {
            ms[(p * len + arg_extreme(s, len, inner, p, i, max)) * inner + i] = true;
        }
    }
    m
}

/// `mask ? a : b`, broadcast.
pub(crate) fn where_<T: Scalar>(
    pool: &mut Pool<T>,
    mask: &ArrayD<bool>,
    a: &Arr<T>,
    b: &Arr<T>,
) -> Result<Arr<T>> {
    let ab = broadcast_shapes("where", a.shape(), b.shape())?;
    let out = broadcast_shapes("where", mask.shape(), ab.slice())?;
    let m = mask.broadcast(out.clone()).expect("checked");
    let av = a.broadcast(out.clone()).expect("checked");
    let bv = b.broadcast(out.clone()).expect("checked");
    Ok(pool.array(
        out.slice(),
        m.iter().zip(av.iter().zip(bv.iter())).map(|(&m, (&x, &y))| if m { x } else { y }),
    ))
}

/// Inputs joined along `axis`.
pub(crate) fn concat<T: Scalar>(pool: &mut Pool<T>, xs: &[&Arr<T>], axis: usize) -> Result<Arr<T>> {
    let first = xs.first().ok_or_else(|| Error::invalid("concat", "needs at least one tensor"))?;
    check_axis("concat", first.shape(), axis)?;
    let mut shape = first.raw_dim();
    shape[axis] = 0;
    for x in xs {
        let ok =
            x.ndim() == first.ndim() && (0..x.ndim()).all(|d| d == axis || x.shape()[d] == first.shape()[d]);
        if !ok {
            return Err(Error::shape(
                "concat",
                format!("{:?} and {:?} differ off axis {axis}", first.shape(), x.shape()),
            ));
        }
        shape[axis] += x.shape()[axis];
    }
    let (outer, _, inner) = split_at_axis(shape.slice(), axis);
    let mut v = pool.take(shape.size());
    for p in 0..outer {
        for x in xs {
            let blk = x.shape()[axis] * inner;
            v.extend_from_slice(&sl(x)[p * blk..(p + 1) * blk]);
        }
    }
    Ok(ArrayD::from_shape_vec(shape, v).expect("concat: length matches"))
}

/// `a[.., start..end, ..]` along `axis`.
pub(crate) fn slice<T: Scalar>(
    pool: &mut Pool<T>,
    a: &Arr<T>,
    axis: usize,
    start: usize,
    end: usize,
) -> Result<Arr<T>> {
    check_axis("slice", a.shape(), axis)?;
    let (outer, len, inner) = split_at_axis(a.shape(), axis);
    if start > end || end > len {
        return Err(Error::shape(
            "slice",
            format!("range {start}..{end} is outside axis {axis} of {:?}", a.shape()),
        ));
    }
    let mut shape = a.raw_dim();
    shape[axis] = end - start;
    let s = sl(a);
    let mut v = pool.take(shape.size());
    for p in 0..outer {
        v.extend_from_slice(&s[(p * len + start) * inner..(p * len + end) * inner]);
    }
    Ok(ArrayD::from_shape_vec(shape, v).expect("slice: length matches"))
}

/// `a` placed at `start` along `axis` inside zeros whose axis has length `len`.
pub(crate) fn pad<T: Scalar>(
    pool: &mut Pool<T>,
    a: &Arr<T>,
    axis: usize,
    start: usize,
    len: usize,
) -> Result<Arr<T>> {
    check_axis("pad", a.shape(), axis)?;
    let (outer, l, inner) = split_at_axis(a.shape(), axis);
    if start + l > len {
        return Err(Error::shape(
            "pad",
            format!("{:?} at {start} does not fit length {len} on axis {axis}", a.shape()),
        ));
    }
    let mut shape = a.raw_dim();
    shape[axis] = len;
    let mut out = pool.full(shape.slice(), T::zero());
    let o = out.as_slice_mut().expect("row-major");
    let s = sl(a);
    for p in 0..outer {
        o[(p * len + start) * inner..(p * len + start + l) * inner]
            .copy_from_slice(&s[p * l * inner..(p + 1) * l * inner]);
    }
    Ok(out)
}

fn check_index(op: &str, index: impl Iterator<Item = usize>, len: usize, axis: usize) -> Result<()> {
    for (n, i) in index.enumerate() {
        if i >= len {
            return Err(Error::shape(
                op,
                format!("index {i} (entry {n}) is out of range for axis {axis} of length {len}"),
            ));
        }
    }
    Ok(())
}

/// Entries `index` along `axis` (torch `index_select`).
pub(crate) fn index_select<T: Scalar>(
    pool: &mut Pool<T>,
    a: &Arr<T>,
    axis: usize,
    index: &[usize],
) -> Result<Arr<T>> {
    check_axis("index_select", a.shape(), axis)?;
    let (outer, len, inner) = split_at_axis(a.shape(), axis);
    check_index("index_select", index.iter().copied(), len, axis)?;
    let mut shape = a.raw_dim();
    shape[axis] = index.len();
    let s = sl(a);
    let mut v = pool.take(shape.size());
    for p in 0..outer {
        for &j in index {
            v.extend_from_slice(&s[(p * len + j) * inner..(p * len + j + 1) * inner]);
        }
    }
    Ok(ArrayD::from_shape_vec(shape, v).expect("index_select: length matches"))
}

/// `out[.., index[j], ..] += a[.., j, ..]` into zeros of length `len` along `axis`.
pub(crate) fn index_add<T: Scalar>(
    pool: &mut Pool<T>,
    a: &Arr<T>,
    axis: usize,
    index: &[usize],
    len: usize,
) -> Result<Arr<T>> {
    check_axis("index_add", a.shape(), axis)?;
    let (outer, l, inner) = split_at_axis(a.shape(), axis);
    if l != index.len() {
        return Err(Error::shape(
            "index_add",
            format!("{:?} has {l} entries on axis {axis} but {} indices", a.shape(), index.len()),
        ));
    }
    check_index("index_add", index.iter().copied(), len, axis)?;
    let mut shape = a.raw_dim();
    shape[axis] = len;
    let mut out = pool.full(shape.slice(), T::zero());
    let o = out.as_slice_mut().expect("row-major");
    let s = sl(a);
    for p in 0..outer {
        for (j, &t) in index.iter().enumerate() {
            let dst = &mut o[(p * len + t) * inner..(p * len + t + 1) * inner];
            let src = &s[(p * l + j) * inner..(p * l + j + 1) * inner];
            dst.iter_mut().zip(src).for_each(|(d, &x)| *d += x);
        }
    }
    Ok(out)
}

fn check_gather_shape(op: &str, a: &[usize], index: &[usize], axis: usize) -> Result<()> {
    if a.len() != index.len() || (0..a.len()).any(|d| d != axis && a[d] != index[d]) {
        return Err(Error::shape(op, format!("index {index:?} must match {a:?} on every axis but {axis}")));
    }
    Ok(())
}

/// torch `gather`: `y[o, j, i] = a[o, index[o, j, i], i]`.
pub(crate) fn gather<T: Scalar>(
    pool: &mut Pool<T>,
    a: &Arr<T>,
    axis: usize,
    index: &ArrayD<usize>,
) -> Result<Arr<T>> {
    check_axis("gather", a.shape(), axis)?;
    check_gather_shape("gather", a.shape(), index.shape(), axis)?;
    let (outer, len, inner) = split_at_axis(a.shape(), axis);
    check_index("gather", index.iter().copied(), len, axis)?;
    let l = index.shape()[axis];
    let idx = index.as_standard_layout();
    let is = idx.as_slice().expect("row-major");
    let s = sl(a);
    Ok(pool.array(
        index.shape(),
        (0..outer * l * inner).map(|f| {
            let (p, i) = (f / (l * inner), f % inner);
            s[(p * len + is[f]) * inner + i]
        }),
    ))
}

/// The adjoint of gather: `y[o, index[o, j, i], i] += a[o, j, i]` into zeros of length `len`.
pub(crate) fn scatter_add<T: Scalar>(
    pool: &mut Pool<T>,
    a: &Arr<T>,
    axis: usize,
    index: &ArrayD<usize>,
    len: usize,
) -> Result<Arr<T>> {
    check_axis("scatter_add", a.shape(), axis)?;
    if a.shape() != index.shape() {
        return Err(Error::shape(
            "scatter_add",
            format!("values {:?} and index {:?} differ", a.shape(), index.shape()),
        ));
    }
    check_index("scatter_add", index.iter().copied(), len, axis)?;
    let (outer, l, inner) = split_at_axis(a.shape(), axis);
    let mut shape = a.raw_dim();
    shape[axis] = len;
    let mut out = pool.full(shape.slice(), T::zero());
    let o = out.as_slice_mut().expect("row-major");
    let idx = index.as_standard_layout();
    let is = idx.as_slice().expect("row-major");
    let s = sl(a);
    for f in 0..outer * l * inner {
        let (p, i) = (f / (l * inner), f % inner);
        o[(p * len + is[f]) * inner + i] += s[f];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// A product's output comes from a reused buffer without a zero-fill: stale contents (NaN
    /// here) must never leak into it, on the faer path, the small loops, or an empty inner axis.
    #[test]
    fn matmul_overwrites_a_stale_pooled_buffer() {
        let f = |r: usize, c: usize, s: usize| {
            ArrayD::from_shape_fn(IxDyn(&[r, c]), |i| ((i[0] * 5 + i[1] * 3 + s) % 7) as f64 - 3.0)
        };
        for (m, k, n) in [(40, 30, 20), (3, 4, 5), (1, 2, 3), (4, 0, 6)] {
            let mut pool = Pool::default();
            pool.recycle(ArrayD::from_elem(IxDyn(&[m * n]), f64::NAN));
            let (a, b) = (f(m, k, 1), f(k, n, 2));
            let r = matmul(&mut pool, &a, false, &b, false).unwrap();
            let expect = a
                .clone()
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap()
                .dot(&b.clone().into_dimensionality::<ndarray::Ix2>().unwrap());
            assert_eq!(r, expect.into_dyn(), "{m}x{k}·{k}x{n}");
        }
    }

    #[test]
    fn broadcast_classes_index_like_numpy() {
        let mut pool = Pool::default();
        let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
        let row = array![10.0, 20.0, 30.0].into_dyn();
        let col = array![[100.0], [200.0]].into_dyn();
        let r = ew(&mut pool, &[2, 3], [&a, &row], |[x, y]| x + y).unwrap();
        assert_eq!(r, (&a + &row));
        let r = ew(&mut pool, &[2, 3], [&a, &col], |[x, y]| x + y).unwrap();
        assert_eq!(r, (&a + &col));
        let odd = array![[[1.0], [2.0]]].into_dyn(); // [1, 2, 1] against [3, 2, 2]: general
        let big = ArrayD::from_shape_fn(IxDyn(&[3, 2, 2]), |i| (i[0] * 4 + i[1] * 2 + i[2]) as f64);
        let r = ew(&mut pool, &[3, 2, 2], [&big, &odd], |[x, y]| x * y).unwrap();
        assert_eq!(r, &big * &odd);
        assert_eq!(
            sum_to(&mut pool, &r, &[1, 2, 1]).unwrap(),
            (&big * &odd)
                .sum_axis(Axis(2))
                .sum_axis(Axis(0))
                .into_shape_with_order(IxDyn(&[1, 2, 1]))
                .unwrap()
        );
        assert!(broadcast_shapes("add", &[2, 3], &[4]).unwrap_err().to_string().contains("[2, 3]"));
    }

    #[test]
    fn matmul_handles_vectors_batches_and_transposes() {
        let mut pool = Pool::default();
        let a = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| (i[0] * 4 + i[1]) as f64 - 5.0);
        let b = ArrayD::from_shape_fn(IxDyn(&[4, 20]), |i| ((i[0] + 2 * i[1]) % 7) as f64);
        let a2 = a.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
        let b2 = b.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
        assert_eq!(matmul(&mut pool, &a, false, &b, false).unwrap(), a2.dot(&b2).into_dyn());
        let at = a2.t().as_standard_layout().into_owned().into_dyn();
        assert_eq!(matmul(&mut pool, &at, true, &b, false).unwrap(), a2.dot(&b2).into_dyn());
        let v = array![1.0, 2.0, 3.0].into_dyn();
        assert_eq!(
            matmul(&mut pool, &v, false, &a, false).unwrap(),
            array![1.0, 2.0, 3.0].dot(&a2).into_dyn()
        );
        let batch = ndarray::stack(Axis(0), &[a.view(), (&a * 2.0).view()]).unwrap();
        let r = matmul(&mut pool, &batch, false, &b, false).unwrap();
        assert_eq!(r.index_axis(Axis(0), 1), (a2.dot(&b2) * 2.0).into_dyn());
        assert!(matmul(&mut pool, &a, false, &a, false).unwrap_err().to_string().contains("[3, 4]"));
    }
}
