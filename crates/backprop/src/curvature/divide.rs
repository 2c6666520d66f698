//! The eigendecomposition T = ZΛZᵀ of a symmetric tridiagonal matrix by divide and conquer
//! (Cuppen; Gu & Eisenstat): the second step of [`super::eigh`].
//!
//! Split T at its middle, T = diag(T₁, T₂) + |β|·vvᵀ with β the coupling entry,
//! v = (e_last; sign(β)·e_first) and |β| taken off T₁'s last and T₂'s first diagonal entries.
//! With Tᵢ = QᵢDᵢQᵢᵀ, T = Q·(D + ρ·zzᵀ)·Qᵀ where Q = diag(Q₁, Q₂), z = Qᵀv/√2 and ρ = 2|β|.
//! The eigenvalues of D + ρzzᵀ are the roots of the secular equation
//!
//!   f(λ) = 1/ρ + Σᵢ zᵢ²/(dᵢ − λ) = 0,
//!
//! one in each gap (dᵢ, dᵢ₊₁) and the last in (d_m, d_m + ρ‖z‖²). Its eigenvectors are
//! uⱼ ∝ (ẑᵢ/(dᵢ − λⱼ))ᵢ, with ẑ recomputed from the roots by Löwner's formula
//! ẑᵢ² ∝ Πₖ(λₖ − dᵢ) / Πₖ≠ᵢ(dₖ − dᵢ), which keeps them orthogonal to working precision whatever
//! the roots' errors. Then Z = Q·U: two GEMMs, the only O(n³) work.
//!
//! Deflation first: a zᵢ below the tolerance leaves (dᵢ, eᵢ) an eigenpair as it is, and a run
//! of equal dᵢ is rotated (one Householder reflector) so that z has one nonzero entry in it.
//! Each λⱼ is stored as (shift, μ) with shift one of the poles dᵢ, so λⱼ − dᵢ is computed as
//! (shift − dᵢ) − μ, accurate even when λⱼ is very close to its pole.
//!
//! Why ours: faer's (0.24) merge is sequential and evaluates f one term at a time. At
//! n = 2000 its top merge took ~120 of its ~180 ms, the two halves under it ~60 ms on two
//! threads. Here the merge's O(n²) parts (the roots, Löwner's products, the vectors) run on
//! every thread and f is evaluated a SIMD vector of terms at a time. Below [`LEAF`] rows the
//! problem is faer's own. The deflation rules and the root finder (secant steps in a
//! shrinking bracket, bisection as the fallback) are faer's (MIT licence), transcribed.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::{Error, Result};

/// Sizes below which faer's divide and conquer solves the whole problem. Tuned at n = 2000:
/// the D&C took 165–208 ms with 256, 193–220 with 512, 193–227 with 1200 (one split).
const LEAF: usize = 256;

/// Roots per parallel task: enough to hide the task's cost (each root is O(m) divisions).
const ROOTS_PER_TASK: usize = 16;

/// T's eigenvalues into `values` (n), *decreasing*, and its eigenvectors into `z` (n×n,
/// column-major) in the same order, for the tridiagonal T with diagonal `diag` (n) and
/// subdiagonal `sub` (n − 1). The order is the notebook's: the top merge writes it directly,
/// rather than a pass reversing n² entries after it. `parallel`: the halves and the merges use
/// the threads of rayon's pool.
pub(crate) fn tridiagonal_eigh(
    diag: &[f64],
    sub: &[f64],
    values: &mut [f64],
    z: &mut [f64],
    parallel: bool,
) -> Result<()> {
    solve(diag, sub, values, z, Solve { parallel, leaf: LEAF, decreasing: true })
}

/// How to solve: on every thread or not, below which size faer solves, and in which order
/// the eigenpairs come out (the halves' must be increasing for the merge).
#[derive(Clone, Copy)]
struct Solve {
    parallel: bool,
    leaf: usize,
    decreasing: bool,
}

fn solve(diag: &[f64], sub: &[f64], values: &mut [f64], z: &mut [f64], how: Solve) -> Result<()> {
    let n = diag.len();
    assert!(sub.len() + 1 == n.max(1) && values.len() == n && z.len() == n * n, "tridiagonal_eigh: sizes");
    let Solve { parallel, leaf, decreasing } = how;
    if n < leaf.max(4) {
        faer_leaf(diag, sub, values, z)?;
        if decreasing {
            values.reverse();
            for c in 0..n / 2 {
                let (lo, hi) = z.split_at_mut((n - 1 - c) * n);
                lo[c * n..(c + 1) * n].swap_with_slice(&mut hi[..n]);
            }
        }
        return Ok(());
    }
    let n1 = n / 2;
    let n2 = n - n1;
    let beta = sub[n1 - 1];
    let mut d1 = diag[..n1].to_vec();
    let mut d2 = diag[n1..].to_vec();
    d1[n1 - 1] -= beta.abs();
    d2[0] -= beta.abs();
    let (mut l1, mut q1) = (vec![0.0; n1], vec![0.0; n1 * n1]);
    let (mut l2, mut q2) = (vec![0.0; n2], vec![0.0; n2 * n2]);
    let half = Solve { decreasing: false, ..how };
    let mut first = || solve(&d1, &sub[..n1 - 1], &mut l1, &mut q1, half);
    let mut second = || solve(&d2, &sub[n1..], &mut l2, &mut q2, half);
    let (r1, r2) = if parallel { rayon::join(first, second) } else { (first(), second()) };
    r1?;
    r2?;
    merge(Halves { beta, l1: &l1, q1: &q1, l2: &l2, q2: &q2 }, values, z, how)
}

/// faer's divide and conquer (QR iterations below its own threshold), on the calling thread.
fn faer_leaf(diag: &[f64], sub: &[f64], values: &mut [f64], z: &mut [f64]) -> Result<()> {
    let n = diag.len();
    if n == 0 {
        return Ok(());
    }
    let params = Default::default();
    let mut stack = MemBuffer::try_new(evd::self_adjoint_evd_scratch::<f64>(
        n,
        evd::ComputeEigenvectors::Yes,
        Par::Seq,
        params,
    ))
    .map_err(|_| Error::invalid("eigh", format!("cannot allocate the workspace for {n} rows")))?;
    let mut e = Vec::with_capacity(n);
    e.extend_from_slice(sub);
    e.push(0.0);
    let mut s = faer::diag::Diag::<f64>::zeros(n);
    evd::tridiagonal_self_adjoint_evd(
        faer::ColRef::from_slice(diag).as_diagonal(),
        faer::ColRef::from_slice(&e).as_diagonal(),
        s.as_mut(),
        Some(MatMut::from_column_major_slice_mut(z, n, n)),
        Par::Seq,
        MemStack::new(&mut stack),
        params,
    )
    .map_err(|e| Error::invalid("eigh", format!("the eigendecomposition did not converge: {e:?}")))?;
    values.iter_mut().zip(s.column_vector().iter()).for_each(|(v, s)| *v = *s);
    Ok(())
}

/// The two solved halves and the entry β that coupled them.
struct Halves<'a> {
    beta: f64,
    l1: &'a [f64],
    q1: &'a [f64],
    l2: &'a [f64],
    q2: &'a [f64],
}

/// A reflector I − τ·v·vᵀ acting on rows `start..start + v.len()` (sorted order).
struct Reflector {
    start: usize,
    v: Vec<f64>,
    tau: f64,
}

/// The eigenvalues and vectors of Q·(D + ρzzᵀ)·Qᵀ from those of the halves.
fn merge(h: Halves<'_>, values: &mut [f64], out: &mut [f64], how: Solve) -> Result<()> {
    let Solve { parallel, decreasing, .. } = how;
    let (n1, n2) = (h.l1.len(), h.l2.len());
    let n = n1 + n2;
    let rho = 2.0 * h.beta.abs();
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let sign = if h.beta < 0.0 { -s } else { s };
    // D's entries in increasing order: perm[k] is the row of diag(Q₁, Q₂) of sorted entry k.
    let mut perm = Vec::with_capacity(n);
    let (mut i, mut j) = (0, 0);
    while perm.len() < n {
        if j == n2 || (i < n1 && h.l1[i] < h.l2[j]) {
            perm.push(i);
            i += 1;
        } else {
            perm.push(n1 + j);
            j += 1;
        }
    }
    // z = Qᵀv/√2: Q₁'s last row and sign(β)·Q₂'s first.
    let pole = |p: usize| if p < n1 { h.l1[p] } else { h.l2[p - n1] };
    let weight = |p: usize| if p < n1 { h.q1[p * n1 + n1 - 1] * s } else { h.q2[(p - n1) * n2] * sign };
    let mut d: Vec<f64> = perm.iter().map(|&p| pole(p)).collect();
    let mut w: Vec<f64> = perm.iter().map(|&p| weight(p)).collect();
    let dmax = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let zmax = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let tol = 8.0 * f64::EPSILON * dmax.max(zmax);

    // Deflation: negligible weights, then runs of (numerically) equal poles.
    if rho * zmax <= tol {
        w.fill(0.0);
    }
    w.iter_mut().filter(|x| (rho * **x).abs() <= tol).for_each(|x| *x = 0.0);
    let mut reflectors = Vec::new();
    let mut start = 0;
    while start < n {
        let mut len = 1;
        while start + len < n && d[start + len] - d[start] <= tol {
            d[start + len] = d[start];
            len += 1;
        }
        if len > 1
            && let Some(r) = concentrate(&mut w[start..start + len])
        {
            reflectors.push(Reflector { start, ..r });
        }
        start += len;
    }

    // The secular equation over the undeflated poles.
    let kept: Vec<usize> = (0..n).filter(|&k| w[k] != 0.0).collect();
    let dk: Vec<f64> = kept.iter().map(|&k| d[k]).collect();
    let zk: Vec<f64> = kept.iter().map(|&k| w[k]).collect();
    let m = kept.len();
    let mut roots = vec![(0.0, 0.0); m];
    let eq = Secular { d: &dk, z: &zk, rho_recip: rho.recip() };
    let last_right = dk.last().map_or(0.0, |d| d + rho * zk.iter().map(|z| z * z).sum::<f64>());
    let solve = |(c, chunk): (usize, &mut [(f64, f64)])| {
        pulp::Arch::new().dispatch(Roots { eq: &eq, first: c * ROOTS_PER_TASK, last_right, out: chunk })
    };
    if parallel {
        roots.par_chunks_mut(ROOTS_PER_TASK).enumerate().for_each(solve);
    } else {
        roots.chunks_mut(ROOTS_PER_TASK).enumerate().for_each(solve);
    }
    let zhat = |i: usize| lowner(i, &dk, &zk, &roots);
    let zhat: Vec<f64> =
        if parallel { (0..m).into_par_iter().map(zhat).collect() } else { (0..m).map(zhat).collect() };

    // All eigenvalues, increasing; `source[k]` is entry k's root, if it has one.
    let mut source = vec![usize::MAX; n];
    kept.iter().enumerate().for_each(|(i, &k)| source[k] = i);
    let lambda: Vec<f64> = (0..n)
        .map(|k| match source[k] {
            usize::MAX => d[k],
            i => roots[i].0 + roots[i].1,
        })
        .collect();
    if let Some(v) = lambda.iter().find(|v| !v.is_finite()) {
        return Err(Error::non_finite("eigh", format!("a merged eigenvalue is {v}")));
    }
    // order[j]: the entry of output column j.
    let mut order: Vec<usize> = (0..n).collect();
    if decreasing {
        order.sort_unstable_by(|&a, &b| lambda[b].total_cmp(&lambda[a]));
    } else {
        order.sort_unstable_by(|&a, &b| lambda[a].total_cmp(&lambda[b]));
    }
    values.iter_mut().zip(&order).for_each(|(v, &k)| *v = lambda[k]);

    // Only the rows and columns the merge mixes go through the GEMMs, those of the roots and
    // of the reflected runs (LAPACK's dlaed3 does the same): every other eigenvector is a
    // column of diag(Q₁, Q₂) as it is.
    let mut mixed = vec![false; n];
    kept.iter().for_each(|&k| mixed[k] = true);
    reflectors.iter().for_each(|r| mixed[r.start..r.start + r.v.len()].fill(true));
    // The mixed rows in the order of diag(Q₁, Q₂)'s rows (Q₁'s first); slot[k] is entry k's.
    let mut rows: Vec<usize> = (0..n).filter(|&k| mixed[k]).collect();
    rows.sort_unstable_by_key(|&k| perm[k]);
    let r1 = rows.partition_point(|&k| perm[k] < n1);
    let r = rows.len();
    let mut slot = vec![usize::MAX; n];
    rows.iter().enumerate().for_each(|(s, &k)| slot[k] = s);
    let kept_slot: Vec<usize> = kept.iter().map(|&k| slot[k]).collect();
    // The mixed output columns, increasing; column[j] is output column j's among them.
    let cols: Vec<usize> = (0..n).filter(|&j| mixed[order[j]]).collect();
    let mut column = vec![usize::MAX; n];
    cols.iter().enumerate().for_each(|(c, &j)| column[j] = c);

    // U (r × r): column c is the eigenvector of output column cols[c] over the mixed rows.
    let mut u = vec![0.0; r * r];
    let fill = |(c, col): (usize, &mut [f64])| {
        let k = order[cols[c]];
        match source[k] {
            usize::MAX => col[slot[k]] = 1.0,
            i => {
                let (shift, mu) = roots[i];
                let mut norm2 = 0.0;
                for ((&z, &d), &row) in zhat.iter().zip(&dk).zip(&kept_slot) {
                    let x = z / ((d - shift) - mu);
                    col[row] = x;
                    norm2 += x * x;
                }
                let inv = norm2.sqrt().recip();
                col.iter_mut().for_each(|x| *x *= inv);
            }
        }
        for refl in &reflectors {
            let at = |t: usize| slot[refl.start + t];
            let dot: f64 = refl.v.iter().enumerate().map(|(t, v)| v * col[at(t)]).sum();
            refl.v.iter().enumerate().for_each(|(t, v)| col[at(t)] -= refl.tau * dot * v);
        }
    };
    // Q₁'s and Q₂'s mixed columns, gathered.
    let (mut g1, mut g2) = (vec![0.0; n1 * r1], vec![0.0; n2 * (r - r1)]);
    let gather1 = |(s, col): (usize, &mut [f64])| {
        let p = perm[rows[s]];
        col.copy_from_slice(&h.q1[p * n1..(p + 1) * n1]);
    };
    let gather2 = |(s, col): (usize, &mut [f64])| {
        let p = perm[rows[r1 + s]] - n1;
        col.copy_from_slice(&h.q2[p * n2..(p + 1) * n2]);
    };
    if parallel && r > 0 {
        u.par_chunks_mut(r).enumerate().for_each(fill);
        g1.par_chunks_mut(n1).enumerate().for_each(gather1);
        g2.par_chunks_mut(n2).enumerate().for_each(gather2);
    } else if r > 0 {
        u.chunks_mut(r).enumerate().for_each(fill);
        g1.chunks_mut(n1).enumerate().for_each(gather1);
        g2.chunks_mut(n2).enumerate().for_each(gather2);
    }
    // The two products side by side, each on half the threads: at n = 2000 this beats running
    // them one after the other on all (55–64 vs 59–73 ms).
    let half = rayon::current_num_threads() / 2;
    let par = if parallel && half > 1 { Par::rayon(half) } else { Par::Seq };
    let mut mixed_out = vec![0.0; n * r];
    if r > 0 {
        let u = MatRef::from_column_major_slice(&u, r, r);
        let (top, bottom) = MatMut::from_column_major_slice_mut(&mut mixed_out, n, r).split_at_row_mut(n1);
        let g1 = MatRef::from_column_major_slice(&g1, n1, r1);
        let g2 = MatRef::from_column_major_slice(&g2, n2, r - r1);
        let top = || matmul(top, Accum::Replace, g1, u.subrows(0, r1), 1.0, par);
        let bottom = || matmul(bottom, Accum::Replace, g2, u.subrows(r1, r - r1), 1.0, par);
        if parallel {
            rayon::join(top, bottom);
        } else {
            top();
            bottom();
        }
    }
    // Z's columns: the GEMMs' for the mixed ones, diag(Q₁, Q₂)'s for the others.
    let assemble = |(j, col): (usize, &mut [f64])| match column[j] {
        usize::MAX => {
            let p = perm[order[j]];
            let (top, bottom) = col.split_at_mut(n1);
            if p < n1 {
                top.copy_from_slice(&h.q1[p * n1..(p + 1) * n1]);
                bottom.fill(0.0);
            } else {
                top.fill(0.0);
                bottom.copy_from_slice(&h.q2[(p - n1) * n2..(p - n1 + 1) * n2]);
            }
        }
        c => col.copy_from_slice(&mixed_out[c * n..(c + 1) * n]),
    };
    if parallel {
        out.par_chunks_mut(n).enumerate().for_each(assemble);
    } else {
        out.chunks_mut(n).enumerate().for_each(assemble);
    }
    Ok(())
}

/// The reflector H = I − τ·v·vᵀ (v's last entry 1) with H·x = (0, …, 0, β), applied to `x`
/// (LAPACK's `dlarfg` with the kept entry last); `None` when x already has that form.
fn concentrate(x: &mut [f64]) -> Option<Reflector> {
    let (tail, last) = x.split_at_mut(x.len() - 1);
    let tail_norm = tail.iter().fold(0.0f64, |a, v| a.hypot(*v));
    if tail_norm == 0.0 {
        return None;
    }
    let alpha = last[0];
    let beta = -alpha.hypot(tail_norm).copysign(alpha);
    let scale = (alpha - beta).recip();
    let mut v: Vec<f64> = tail.iter().map(|t| t * scale).collect();
    v.push(1.0);
    tail.fill(0.0);
    last[0] = beta;
    Some(Reflector { start: 0, v, tau: (beta - alpha) / beta })
}

/// ẑᵢ = sign(zᵢ)·√|(λᵢ − dᵢ)·Πₖ≠ᵢ (λₖ − dᵢ)/(dₖ − dᵢ)| (Löwner; the common factor 1/ρ is left
/// out, the vectors are normalised anyway), with λₖ − dᵢ = μₖ + (shiftₖ − dᵢ).
fn lowner(i: usize, d: &[f64], z: &[f64], roots: &[(f64, f64)]) -> f64 {
    let di = d[i];
    let (shift, mu) = roots[i];
    let mut prod = mu + (shift - di);
    for (k, (&dk, &(shift, mu))) in d.iter().zip(roots).enumerate() {
        if k != i {
            prod *= (mu + (shift - di)) / (dk - di);
        }
    }
    prod.abs().sqrt().copysign(z[i])
}

/// f(shift + μ) = 1/ρ + Σᵢ zᵢ²/((dᵢ − shift) − μ), increasing between its poles.
struct Secular<'a> {
    d: &'a [f64],
    z: &'a [f64],
    rho_recip: f64,
}

impl Secular<'_> {
    #[inline(always)]
    fn eval<S: pulp::Simd>(&self, simd: S, shift: f64, mu: f64) -> f64 {
        let (d, dr) = S::as_simd_f64s(self.d);
        let (z, zr) = S::as_simd_f64s(self.z);
        let (vs, vm) = (simd.splat_f64s(shift), simd.splat_f64s(mu));
        let mut acc = [simd.splat_f64s(0.0); 2];
        let (d2, d1) = d.as_chunks::<2>();
        let (z2, z1) = z.as_chunks::<2>();
        for (d, z) in d2.iter().zip(z2) {
            for l in 0..2 {
                let den = simd.sub_f64s(simd.sub_f64s(d[l], vs), vm);
                acc[l] = simd.mul_add_f64s(z[l], simd.div_f64s(z[l], den), acc[l]);
            }
        }
        for (d, z) in d1.iter().zip(z1) {
            let den = simd.sub_f64s(simd.sub_f64s(*d, vs), vm);
            acc[0] = simd.mul_add_f64s(*z, simd.div_f64s(*z, den), acc[0]);
        }
        let mut res = self.rho_recip + simd.reduce_sum_f64s(simd.add_f64s(acc[0], acc[1]));
        for (d, z) in dr.iter().zip(zr) {
            res += z * (z / ((d - shift) - mu));
        }
        res
    }
}

/// The roots `first..first + out.len()` of the secular equation, as (shift, μ).
struct Roots<'a> {
    eq: &'a Secular<'a>,
    first: usize,
    last_right: f64,
    out: &'a mut [(f64, f64)],
}

impl pulp::WithSimd for Roots<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let d = self.eq.d;
        let m = d.len();
        for (k, out) in self.out.iter_mut().enumerate() {
            let i = self.first + k;
            let last = i + 1 == m;
            let right = if last { self.last_right } else { d[i + 1] };
            *out = root(&SimdSecular { simd, eq: self.eq }, d[i], right, last);
        }
    }
}

/// f(shift + μ) for the root finder. A trait rather than a closure: everything must inline
/// into the SIMD dispatch (closures do not take on its target features, and each vector
/// operation would become a call).
trait Increasing {
    fn at(&self, shift: f64, mu: f64) -> f64;
}

struct SimdSecular<'a, S> {
    simd: S,
    eq: &'a Secular<'a>,
}

impl<S: pulp::Simd> Increasing for SimdSecular<'_, S> {
    #[inline(always)]
    fn at(&self, shift: f64, mu: f64) -> f64 {
        self.eq.eval(self.simd, shift, mu)
    }
}

/// The root of the increasing `f` in (left, right) as (shift, μ), shift ∈ {left, right}:
/// faer's `secular_eq_root_finder` (which see), transcribed for f64.
#[inline(always)]
fn root(f: &impl Increasing, left: f64, right: f64, last: bool) -> (f64, f64) {
    let eps = f64::EPSILON;
    let mid = left + (right - left) * 0.5;
    let mut f_mid = f.at(0.0, mid);
    let f_max = f.at(left, if last { right - left } else { (right - left) * 0.5 });
    let f_mid_left_shift = f.at(left, (right - left) * 0.5);
    let f_mid_right_shift = f.at(right, (left - right) * 0.5);
    let (mut shift, mu) =
        if last || f_mid > 0.0 { (left, (right - left) * 0.5) } else { (right, (left - right) * 0.5) };
    if f_mid_left_shift <= 0.0 && f_mid_right_shift > 0.0 {
        return (shift, mu);
    }
    if !last {
        if shift == left {
            if f_mid_left_shift < 0.0 {
                shift = right;
                f_mid = f_mid_right_shift;
            }
        } else if f_mid_right_shift > 0.0 {
            shift = left;
            f_mid = f_mid_left_shift;
        }
    }
    let shift = shift;

    let (mut left_shifted, mut f_left, mut right_shifted, mut f_right) = if shift == left {
        let right_shifted = if last { right - left } else { (right - left) * 0.5 };
        (0.0, f64::NEG_INFINITY, right_shifted, if last { f_max } else { f_mid })
    } else {
        ((left - right) * 0.5, f_mid, 0.0, f64::INFINITY)
    };
    // A first bracket from four points at 2⁻⁸, 2⁻⁴, 2⁻², 2⁻¹ of the half-interval at the shift.
    let far = if shift == left { right_shifted } else { left_shifted };
    let mu_values = [far * 0.00390625, far * 0.0625, far * 0.25, far * 0.5];
    let mut f_values = [0.0; 4];
    for (fv, &mu) in f_values.iter_mut().zip(&mu_values) {
        *fv = f.at(shift, mu);
    }
    let mut i = 0;
    if shift == left {
        for (idx, (&mu, &fv)) in mu_values.iter().zip(&f_values).enumerate() {
            if fv < 0.0 {
                left_shifted = mu;
                f_left = fv;
                i = idx + 1;
            }
        }
        if i < f_values.len() {
            right_shifted = mu_values[i];
            f_right = f_values[i];
        }
    } else {
        for (idx, (&mu, &fv)) in mu_values.iter().zip(&f_values).enumerate() {
            if fv > 0.0 {
                right_shifted = mu;
                f_right = fv;
                i = idx + 1;
            }
        }
        if i < f_values.len() {
            left_shifted = mu_values[i];
            f_left = f_values[i];
        }
    }
    // Up to five geometric-mean bisections, then the secant.
    let mut f_prev = f_mid;
    let mut iteration = 0;
    while right_shifted - left_shifted > 2.0 * eps * left_shifted.abs().max(right_shifted.abs()) {
        let arithmetic = (left_shifted + right_shifted) * 0.5;
        let mut geometric = left_shifted.abs().sqrt() * right_shifted.abs().sqrt();
        if left_shifted < 0.0 {
            geometric = -geometric;
        }
        let mid_shifted = if geometric == 0.0 { arithmetic } else { geometric };
        let f_mid = f.at(shift, mid_shifted);
        if f_mid == 0.0 {
            return (shift, mid_shifted);
        } else if f_mid > 0.0 {
            right_shifted = mid_shifted;
            f_prev = f_right;
            f_right = f_mid;
        } else {
            left_shifted = mid_shifted;
            f_prev = f_left;
            f_left = f_mid;
        }
        if iteration == 4 {
            break;
        }
        iteration += 1;
    }
    let args = if left_shifted == 0.0 {
        (right_shifted * 2.0, right_shifted, f_prev, f_right)
    } else if right_shifted == 0.0 {
        (left_shifted * 2.0, left_shifted, f_prev, f_left)
    } else {
        (left_shifted, right_shifted, f_left, f_right)
    };
    let (use_bisection, mut mu_cur, left_candidate, right_candidate) =
        secant(f, (shift, left, right), args.0, args.1, args.2, args.3);
    if let (Some(l), Some(r)) = (left_candidate, right_candidate)
        && l < r
    {
        if l > left_shifted {
            left_shifted = l;
        }
        if r < right_shifted {
            right_shifted = r;
        }
    }
    if use_bisection {
        while right_shifted - left_shifted > 2.0 * eps * left_shifted.abs().max(right_shifted.abs()) {
            let mid_shifted = (left_shifted + right_shifted) * 0.5;
            let f_mid = f.at(shift, mid_shifted);
            if f_mid == 0.0 {
                break;
            } else if f_mid > 0.0 {
                right_shifted = mid_shifted;
            } else {
                left_shifted = mid_shifted;
            }
        }
        mu_cur = (left_shifted + right_shifted) * 0.5;
    }
    (shift, mu_cur)
}

// Secant steps from (μ_cur, μ_prev); gives up (asking for bisection) when a step leaves
// the interval or does not shrink |f|, returning the bracket it found.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn secant(
    f: &impl Increasing,
    (shift, left, right): (f64, f64, f64),
    mut mu_cur: f64,
    mut mu_prev: f64,
    mut f_cur: f64,
    mut f_prev: f64,
) -> (bool, f64, Option<f64>, Option<f64>) {
    let eps = f64::EPSILON;
    if f_prev.abs() < f_cur.abs() {
        std::mem::swap(&mut f_prev, &mut f_cur);
        std::mem::swap(&mut mu_prev, &mut mu_cur);
    }
    let (mut left_candidate, mut right_candidate) = (None, None);
    let mut use_bisection = false;
    if (f_prev > 0.0) != (f_cur > 0.0) {
        left_candidate = Some(mu_cur.min(mu_prev));
        right_candidate = Some(mu_cur.max(mu_prev));
    }
    while f_cur != 0.0
        && (mu_cur - mu_prev).abs() > 8.0 * eps * mu_cur.abs().max(mu_prev.abs())
        && (f_cur - f_prev).abs() > eps
        && !use_bisection
    {
        let a = (f_cur - f_prev) * (mu_prev * mu_cur) / (mu_prev - mu_cur);
        let b = f_cur - a / mu_cur;
        let mu_zero = -a / b;
        let f_zero = f.at(shift, mu_zero);
        if f_zero < 0.0 {
            left_candidate = Some(mu_zero);
        } else {
            right_candidate = Some(mu_zero);
        }
        mu_prev = mu_cur;
        f_prev = f_cur;
        mu_cur = mu_zero;
        f_cur = f_zero;
        if shift == left && (mu_cur < 0.0 || mu_cur > right - left) {
            use_bisection = true;
        }
        if shift == right && (mu_cur > 0.0 || mu_cur < left - right) {
            use_bisection = true;
        }
        if f_cur.abs() > f_prev.abs() {
            let mut k = 1.0;
            for _ in 0..4 {
                let mu_opposite = -a / (k * f_zero + b);
                let f_opposite = f.at(shift, mu_opposite);
                if f_zero < 0.0 && f_opposite >= 0.0 {
                    right_candidate = Some(mu_opposite);
                    break;
                }
                if f_zero > 0.0 && f_opposite <= 0.0 {
                    left_candidate = Some(mu_opposite);
                    break;
                }
                k *= 2.0;
            }
            use_bisection = true;
        }
    }
    (use_bisection, mu_cur, left_candidate, right_candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Solves T with leaves of `leaf` rows and checks it against faer's decomposition of the
    /// whole T: the same eigenvalues, Z orthonormal, T·Z = Z·Λ.
    fn check(diag: &[f64], sub: &[f64], how: Solve) {
        let n = diag.len();
        let (mut values, mut z) = (vec![0.0; n], vec![0.0; n * n]);
        solve(diag, sub, &mut values, &mut z, how).unwrap();
        let (mut expected, mut z_faer) = (vec![0.0; n], vec![0.0; n * n]);
        faer_leaf(diag, sub, &mut expected, &mut z_faer).unwrap();
        if how.decreasing {
            expected.reverse();
        }
        let norm = diag.iter().chain(sub).fold(1e-300f64, |m, v| m.max(v.abs()));
        let tol = 16.0 * n as f64 * f64::EPSILON;
        let Solve { parallel, leaf, decreasing } = how;
        let case = format!("n = {n}, leaf = {leaf}, parallel = {parallel}, decreasing = {decreasing}");
        assert!(values.windows(2).all(|w| (w[0] <= w[1]) != decreasing || w[0] == w[1]), "{case}: order");
        for (v, e) in values.iter().zip(&expected) {
            assert!((v - e).abs() <= tol * norm, "{case}: eigenvalue {v} vs faer's {e}");
        }
        for i in 0..n {
            for j in 0..n {
                let dot: f64 = (0..n).map(|r| z[i * n + r] * z[j * n + r]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() <= tol, "{case}: zᵢ·zⱼ = {dot} for ({i}, {j})");
            }
            let col = &z[i * n..(i + 1) * n];
            for r in 0..n {
                let mut tz = diag[r] * col[r];
                if r > 0 {
                    tz += sub[r - 1] * col[r - 1];
                }
                if r + 1 < n {
                    tz += sub[r] * col[r + 1];
                }
                let err = (tz - values[i] * col[r]).abs();
                assert!(err <= tol * norm, "{case}: (TZ − ZΛ)[{r}, {i}] = {err}");
            }
        }
    }

    fn check_all(diag: &[f64], sub: &[f64]) {
        for leaf in [4, 7, 16] {
            for parallel in [false, true] {
                for decreasing in [false, true] {
                    check(diag, sub, Solve { parallel, leaf, decreasing });
                }
            }
        }
    }

    fn uniform(seed: u64, n: usize) -> Vec<f64> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    #[test]
    fn random_tridiagonals_match_faer_at_every_depth() {
        for (seed, n) in [(1, 4), (2, 5), (3, 8), (4, 9), (5, 31), (6, 64), (7, 101)] {
            let (diag, sub) = (uniform(seed, n), uniform(seed + 100, n - 1));
            check_all(&diag, &sub);
        }
    }

    #[test]
    fn deflation_of_weights_and_of_equal_poles() {
        let n = 40;
        // Uncoupled: every merge deflates everything.
        check_all(&uniform(11, n), &vec![0.0; n - 1]);
        // Identical 2×2 blocks [[1, 1], [1, 1]]: eigenvalues 0 and 2, each n/2 times, so the
        // halves' poles coincide in runs and are concentrated by reflectors.
        let sub: Vec<f64> = (0..n - 1).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
        check_all(&vec![1.0; n], &sub);
        // A constant diagonal with tiny couplings: a near-multiple eigenvalue.
        check_all(&vec![2.0; n], &vec![1e-12; n - 1]);
        // Equal diagonal, coupled: the classic 1-2-1 matrix (eigenvalues 2 − 2cos(kπ/(n+1))).
        check_all(&vec![2.0; n], &vec![-1.0; n - 1]);
        // Some couplings exactly zero, the others random.
        let sub: Vec<f64> =
            uniform(13, n - 1).iter().enumerate().map(|(i, v)| if i % 3 == 0 { 0.0 } else { *v }).collect();
        check_all(&uniform(12, n), &sub);
    }

    #[test]
    fn glued_wilkinson_matrices_cluster_to_within_rounding() {
        // W₂₁⁺ (diagonal |10 − i|, couplings 1) glued by 1e-14: pairs of eigenvalues equal to
        // ~1e-14 and clusters the D&C must deflate without losing orthogonality.
        let w: Vec<f64> = (0..21).map(|i| (10.0f64 - i as f64).abs()).collect();
        let mut diag = Vec::new();
        let mut sub = Vec::new();
        for block in 0..4 {
            if block > 0 {
                sub.push(1e-14);
            }
            diag.extend_from_slice(&w);
            sub.extend(std::iter::repeat_n(1.0, 20));
        }
        check_all(&diag, &sub);
    }
}
