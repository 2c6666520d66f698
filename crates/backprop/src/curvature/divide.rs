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
//! Why ours: faer's (0.24) merge is sequential, evaluates f one term at a time and sends all
//! of U through its GEMMs. On a 2000×2000 tridiagonal with uniform random entries its top
//! merge took ~120 of its ~180 ms, the two halves under it ~60 ms on two threads; on one like a
//! dense random matrix's (off-diagonal ~√(n − k)) it takes 298–340 ms, this module 114–125. Here the merge's O(n²) parts (the roots, Löwner's
//! products, the vectors) run on every thread, f is evaluated a SIMD vector of terms at a
//! time, its roots are found by LAPACK's method (`dlaed4`: 4.7 evaluations per root at
//! n = 2000, where faer's secant and bisection took 17.9), and only the rows and columns the
//! merge mixes go through the GEMMs (as in LAPACK's `dlaed3`). Below [`LEAF`] rows the
//! problem is faer's own. The deflation rules are faer's (MIT licence).

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::tensor::zeroed_huge;
use crate::{Error, Result};

/// Sizes below which faer's solver (QR iterations or its own divide and conquer) takes the
/// whole problem. Tuned once the merges were parallel: the D&C alone at n = 2000 took
/// 103–117 ms with 32, 108–121 with 64, 115–121 with 128 and 119–141 with 256; eigh at n = 200
/// 2.3 ms with 64 against 4.0 with 256, at n = 600 24 against 26 ms.
const LEAF: usize = 64;

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
    let (mut l1, mut q1) = (vec![0.0; n1], zeroed_huge(n1 * n1));
    let (mut l2, mut q2) = (vec![0.0; n2], zeroed_huge(n2 * n2));
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

impl Halves<'_> {
    /// Column p of diag(Q₁, Q₂), as the part that is not structurally zero: (whether it is
    /// Q₁'s, its entries).
    fn column(&self, p: usize) -> (bool, &[f64]) {
        let (n1, n2) = (self.l1.len(), self.l2.len());
        if p < n1 {
            (true, &self.q1[p * n1..(p + 1) * n1])
        } else {
            (false, &self.q2[(p - n1) * n2..(p - n1 + 1) * n2])
        }
    }
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
            && let Some((v, tau)) = concentrate(&mut w[start..start + len])
        {
            reflectors.push(Reflector { start, v, tau });
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
    let find = |(c, chunk): (usize, &mut [(f64, f64)])| {
        pulp::Arch::new().dispatch(Roots { eq: &eq, first: c * ROOTS_PER_TASK, last_right, out: chunk })
    };
    if parallel {
        roots.par_chunks_mut(ROOTS_PER_TASK).enumerate().for_each(find);
    } else {
        roots.chunks_mut(ROOTS_PER_TASK).enumerate().for_each(find);
    }
    let zhat = |i: usize| lowner(i, &dk, &zk, &roots);
    let zhat: Vec<f64> =
        if parallel { (0..m).into_par_iter().map(zhat).collect() } else { (0..m).map(zhat).collect() };

    // Every eigenvalue; `source[k]` is entry k's root, if it has one.
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

    // Column c of U: the eigenvector of output column cols[c] over the mixed rows.
    let fill = |c: usize, col: &mut [f64]| {
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
    // Q₁'s and Q₂'s mixed columns, gathered (every block below reads them).
    let (mut g1, mut g2) = (zeroed_huge(n1 * r1), zeroed_huge(n2 * (r - r1)));
    let gather1 = |(s, col): (usize, &mut [f64])| col.copy_from_slice(h.column(perm[rows[s]]).1);
    let gather2 = |(s, col): (usize, &mut [f64])| col.copy_from_slice(h.column(perm[rows[r1 + s]]).1);
    if parallel && r > 0 {
        g1.par_chunks_mut(n1).enumerate().for_each(gather1);
        g2.par_chunks_mut(n2).enumerate().for_each(gather2);
    } else if r > 0 {
        g1.chunks_mut(n1).enumerate().for_each(gather1);
        g2.chunks_mut(n2).enumerate().for_each(gather2);
    }
    let g1 = MatRef::from_column_major_slice(&g1, n1, r1);
    let g2 = MatRef::from_column_major_slice(&g2, n2, r - r1);
    // Z by blocks of output columns, a block per task: its mixed columns' U (r × b, the only
    // scratch, reused by the thread), their products with the gathered columns written to the
    // block's first columns, each then moved to its place (right to left: none is overwritten
    // before it is read), and the other columns copied from diag(Q₁, Q₂). Neither an r × r U
    // nor an n × r product is allocated (50 MB of fresh pages at n = 2000).
    let threads = if parallel { rayon::current_num_threads() } else { 1 };
    let width = n.div_ceil(2 * threads);
    let block = |ub: &mut Vec<f64>, (b, chunk): (usize, &mut [f64])| {
        let j0 = b * width;
        let w = chunk.len() / n;
        let c0 = cols.partition_point(|&j| j < j0);
        let count = cols.partition_point(|&j| j < j0 + w) - c0;
        if count > 0 {
            ub.clear();
            ub.resize(r * count, 0.0);
            ub.chunks_mut(r).enumerate().for_each(|(t, col)| fill(c0 + t, col));
            let u = MatRef::from_column_major_slice(ub, r, count);
            let (top, bottom) =
                MatMut::from_column_major_slice_mut(&mut chunk[..n * count], n, count).split_at_row_mut(n1);
            matmul(top, Accum::Replace, g1, u.subrows(0, r1), 1.0, Par::Seq);
            matmul(bottom, Accum::Replace, g2, u.subrows(r1, r - r1), 1.0, Par::Seq);
            for t in (0..count).rev() {
                let to = cols[c0 + t] - j0;
                if to != t {
                    chunk.copy_within(t * n..(t + 1) * n, to * n);
                }
            }
        }
        for (jj, col) in chunk.chunks_mut(n).enumerate() {
            let j = j0 + jj;
            if column[j] != usize::MAX {
                continue;
            }
            let (top, bottom) = col.split_at_mut(n1);
            match h.column(perm[order[j]]) {
                (true, q) => {
                    top.copy_from_slice(q);
                    bottom.fill(0.0);
                }
                (false, q) => {
                    top.fill(0.0);
                    bottom.copy_from_slice(q);
                }
            }
        }
    };
    if parallel {
        out.par_chunks_mut(width * n).enumerate().for_each_init(Vec::new, block);
    } else {
        let mut ub = Vec::new();
        out.chunks_mut(width * n).enumerate().for_each(|b| block(&mut ub, b));
    }
    Ok(())
}

/// The reflector H = I − τ·v·vᵀ (v's last entry 1) with H·x = (0, …, 0, β), applied to `x`
/// (LAPACK's `dlarfg` with the kept entry last), as (v, τ); `None` when x already has that form.
fn concentrate(x: &mut [f64]) -> Option<(Vec<f64>, f64)> {
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
    Some((v, (beta - alpha) / beta))
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

/// The secular function f(shift + μ) = 1/ρ + Σᵢ zᵢ²/((dᵢ − shift) − μ), increasing between
/// its poles d (increasing).
struct Secular<'a> {
    d: &'a [f64],
    z: &'a [f64],
    rho_recip: f64,
}

/// f at one point, with what the root finder needs: f's derivative split into the poles below
/// the root's gap (ψ′) and above it (φ′), and a bound on the rounding error of f (LAPACK's
/// `erretm`).
struct Point {
    f: f64,
    dpsi: f64,
    dphi: f64,
    error: f64,
}

impl Secular<'_> {
    /// (Σ zᵢ²/δᵢ, Σ zᵢ²/δᵢ²) over the given poles, δᵢ = (dᵢ − shift) − μ: one division per
    /// term, a SIMD vector of terms at a time.
    #[inline(always)]
    fn sums<S: pulp::Simd>(simd: S, d: &[f64], z: &[f64], shift: f64, mu: f64) -> (f64, f64) {
        let (dv, dr) = S::as_simd_f64s(d);
        let (zv, zr) = S::as_simd_f64s(z);
        let (vs, vm) = (simd.splat_f64s(shift), simd.splat_f64s(mu));
        let (mut sum, mut dsum) = (simd.splat_f64s(0.0), simd.splat_f64s(0.0));
        for (d, z) in dv.iter().zip(zv) {
            let t = simd.div_f64s(*z, simd.sub_f64s(simd.sub_f64s(*d, vs), vm));
            sum = simd.mul_add_f64s(*z, t, sum);
            dsum = simd.mul_add_f64s(t, t, dsum);
        }
        let (mut sum, mut dsum) = (simd.reduce_sum_f64s(sum), simd.reduce_sum_f64s(dsum));
        for (d, z) in dr.iter().zip(zr) {
            let t = z / ((d - shift) - mu);
            sum += z * t;
            dsum += t * t;
        }
        (sum, dsum)
    }

    /// f(shift + μ) for a root above the poles `..split` and below `split..`.
    #[inline(always)]
    fn at<S: pulp::Simd>(&self, simd: S, split: usize, shift: f64, mu: f64) -> Point {
        let (psi, dpsi) = Self::sums(simd, &self.d[..split], &self.z[..split], shift, mu);
        let (phi, dphi) = Self::sums(simd, &self.d[split..], &self.z[split..], shift, mu);
        Point {
            f: self.rho_recip + psi + phi,
            dpsi,
            dphi,
            error: 8.0 * (phi - psi) + 2.0 * self.rho_recip + mu.abs() * (dpsi + dphi),
        }
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
        let m = self.eq.d.len();
        for (k, out) in self.out.iter_mut().enumerate() {
            let i = self.first + k;
            let right = if i + 1 == m { self.last_right } else { self.eq.d[i + 1] };
            *out = root(simd, self.eq, i, right);
        }
    }
}

/// Iterations after which the root finder stops (it converges in a handful; the cap only
/// bounds pathological inputs).
const MAX_ITERATIONS: usize = 100;

/// Root i of the secular equation, in (dᵢ, right), as (shift, μ) with shift the nearer pole:
/// LAPACK's `dlaed4` "middle way" (R.-C. Li, 1993). At each point the model
/// c + s/(δᵢ − η) + S/(δᵢ₊₁ − η), with s, S, c matching f, ψ′ and φ′ (s = ψ′δᵢ², S = φ′δᵢ₊₁²),
/// is solved exactly for the step η: cη² − aη + b = 0 with a = (δᵢ + δᵢ₊₁)f − δᵢδᵢ₊₁(ψ′ + φ′),
/// b = δᵢδᵢ₊₁f. For the last root, past every pole, the model has pole i alone. A step that
/// leaves the bracket the signs of f have built is replaced by bisection. Converged when
/// |f| ≤ ε·(its rounding-error bound).
#[inline(always)]
fn root<S: pulp::Simd>(simd: S, eq: &Secular<'_>, i: usize, right: f64) -> (f64, f64) {
    let eps = f64::EPSILON;
    let d = eq.d;
    let last = i + 1 == d.len();
    let left = d[i];
    let width = right - left;
    // The midpoint decides the origin: the pole on the root's side of it.
    let mut mu = width * 0.5;
    let mut p = eq.at(simd, i + 1, left, mu);
    let (shift, mut lo, mut hi) = if p.f >= 0.0 {
        (left, 0.0, mu)
    } else if last {
        (left, mu, width)
    } else {
        mu = -mu;
        (right, mu, 0.0)
    };
    let mut use_fixed = true;
    for _ in 0..MAX_ITERATIONS {
        if p.f.abs() <= eps * p.error {
            break;
        }
        if p.f > 0.0 {
            hi = mu;
        } else {
            lo = mu;
        }
        let di = (d[i] - shift) - mu;
        let mut next = if last {
            // c + s/(δᵢ − η) = 0 with c = f − δᵢψ′, s = ψ′δᵢ².
            let c = p.f - di * p.dpsi;
            mu + di + p.dpsi * di * di / c
        } else {
            let dj = (d[i + 1] - shift) - mu;
            let a = (di + dj) * p.f - di * dj * (p.dpsi + p.dphi);
            let b = di * dj * p.f;
            // The models differ in c alone: the middle way fits ψ′ to pole i and φ′ to pole
            // i+1; the fixed weight keeps the origin pole's own weight z² (better when the
            // root hugs it) and fits the rest of f′ to the other pole.
            let middle = p.f - di * p.dpsi - dj * p.dphi;
            let fixed = if shift == left {
                p.f - dj * (p.dpsi + p.dphi) - (di - dj) * (eq.z[i] / di).powi(2)
            } else {
                p.f - di * (p.dpsi + p.dphi) - (dj - di) * (eq.z[i + 1] / dj).powi(2)
            };
            let (first, second) = if use_fixed { (fixed, middle) } else { (middle, fixed) };
            let step = mu + two_pole_step(a, b, first);
            if step > lo && step < hi { step } else { mu + two_pole_step(a, b, second) }
        };
        if !(next > lo && next < hi) {
            // A root hugging its pole (its weight z tiny, but not deflated) is outside both
            // models' reach; take f's other terms as constant: c₀ + z²/(δ − η) = 0, where the
            // new δ = −μ, gives μ = z²/c₀.
            let (z, delta) =
                if shift == left { (eq.z[i], di) } else { (eq.z[i + 1], (d[i + 1] - shift) - mu) };
            next = z * z / (p.f - z * z / delta);
        }
        if !(next > lo && next < hi) {
            // Bisection: geometric while the bracket spans orders of magnitude on one side of
            // the pole, so that roots hugging it are reached in few steps.
            next = if lo > 0.0 {
                (lo * hi).sqrt()
            } else if hi < 0.0 {
                -(lo * hi).sqrt()
            } else {
                0.5 * (lo + hi)
            };
            if !(next > lo && next < hi) {
                next = 0.5 * (lo + hi);
            }
        }
        if next == mu || hi - lo <= 2.0 * eps * lo.abs().max(hi.abs()) {
            break;
        }
        mu = next;
        let previous = p.f;
        p = eq.at(simd, i + 1, shift, mu);
        // dlaed4's switch: when a step did not cut |f| tenfold, try the other model.
        if p.f * previous > 0.0 && p.f.abs() > previous.abs() / 10.0 {
            use_fixed = !use_fixed;
        }
    }
    (shift, mu)
}

/// The step η to the root between the poles of the model c + s/(δᵢ − η) + S/(δⱼ − η): the
/// root of cη² − aη + b in (δᵢ, δⱼ), in the form that does not cancel.
#[inline(always)]
fn two_pole_step(a: f64, b: f64, c: f64) -> f64 {
    let disc = (a * a - 4.0 * b * c).abs().sqrt();
    if c == 0.0 {
        b / a
    } else if a <= 0.0 {
        (a - disc) / (2.0 * c)
    } else {
        2.0 * b / (a + disc)
    }
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

    #[test]
    fn secular_roots_are_as_accurate_as_f_itself() {
        // Each root against bisection (to adjacent floats) on the same f in the same shifted
        // coordinates: the two may differ only where the computed f is below its rounding
        // error, |Δμ| ≲ ε·error/f′.
        let random = uniform(21, 64);
        let mut cases: Vec<(Vec<f64>, Vec<f64>, f64)> =
            vec![(vec![0.5], vec![0.3], 1.0), (vec![-1.0, 2.0], vec![0.6, 0.8], 0.5)];
        let sorted = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v
        };
        for rho in [1e-6, 1.0, 1e6] {
            cases.push((sorted(uniform(22, 64)), random.clone(), rho));
        }
        // Poles 1e-10 apart, and weights spanning 16 orders of magnitude.
        cases.push(((0..40).map(|i| 1.0 + i as f64 * 1e-10).collect(), random[..40].to_vec(), 1.0));
        let tiny: Vec<f64> =
            random.iter().enumerate().map(|(i, z)| z * 10f64.powi(-(i as i32 % 17))).collect();
        cases.push((sorted(uniform(23, 64)), tiny, 2.0));
        for (d, z, rho) in cases {
            let m = d.len();
            let eq = Secular { d: &d, z: &z, rho_recip: rho.recip() };
            let last_right = d[m - 1] + rho * z.iter().map(|z| z * z).sum::<f64>();
            let mut out = vec![(0.0, 0.0); m];
            pulp::Arch::new().dispatch(Roots { eq: &eq, first: 0, last_right, out: &mut out });
            for (i, &(shift, mu)) in out.iter().enumerate() {
                let right = if i + 1 == m { last_right } else { d[i + 1] };
                let terms = |mu: f64| d.iter().zip(&z).map(move |(d, z)| z / ((d - shift) - mu) * z);
                let f = |mu: f64| rho.recip() + terms(mu).sum::<f64>();
                let (mut lo, mut hi) = if shift == d[i] { (0.0, right - d[i]) } else { (d[i] - right, 0.0) };
                assert!(mu > lo && mu < hi, "root {i} of {m}: μ = {mu} outside ({lo}, {hi})");
                while hi - lo > 0.0 {
                    let mid = 0.5 * (lo + hi);
                    if mid == lo || mid == hi {
                        break;
                    }
                    if f(mid) > 0.0 { hi = mid } else { lo = mid }
                }
                let reference = 0.5 * (lo + hi);
                let slope: f64 = d.iter().zip(&z).map(|(d, z)| (z / ((d - shift) - reference)).powi(2)).sum();
                let error =
                    8.0 * terms(reference).map(f64::abs).sum::<f64>() + 2.0 / rho + reference.abs() * slope;
                let bound = 4.0 * f64::EPSILON * (error / slope + reference.abs());
                assert!(
                    (mu - reference).abs() <= bound,
                    "root {i} of {m} (ρ = {rho}): μ = {mu}, bisection {reference}, bound {bound:e}"
                );
            }
        }
    }
}
