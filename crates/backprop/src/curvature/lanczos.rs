//! Extreme eigenvalues of a large symmetric operator by the Lanczos iteration with full
//! reorthogonalisation.
//!
//! After m steps, H Qₘ = Qₘ Tₘ + βₘ qₘ₊₁ eₘᵀ with Tₘ tridiagonal (α on the diagonal, β beside
//! it). An eigenpair (θ, s) of Tₘ gives the Ritz pair (θ, Qₘs) whose residual is exactly
//! ‖H Qₘs − θ Qₘs‖ = |βₘ sₘ|, so convergence is checked without extra products. Every new
//! vector is orthogonalised against the whole basis (classical Gram-Schmidt, two vectors per
//! pass, a second pass when the first cancels much; see [`LanczosBasis::step`]): without it,
//! rounding makes converged eigenvalues reappear as spurious copies.

use ndarray::{Array1, Array2, ArrayView1, s};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use super::SymmetricOperator;
use super::eigen::tridiagonal_eigh;
use crate::tensor::{gemm_into, zeros_huge};
use crate::{Error, Result};

/// Configuration of a Lanczos run (builder style).
///
/// ```
/// use backprop::curvature::Lanczos;
/// use ndarray::Array2;
/// let h = Array2::from_diag(&ndarray::Array1::from_iter((1..=50).map(f64::from)));
/// let r = Lanczos::new().top(3).bottom(2).run(&h).unwrap();
/// assert!((r.top_values[0] - 50.0).abs() < 1e-8 && (r.bottom_values[0] - 1.0).abs() < 1e-8);
/// ```
#[derive(Clone, Debug)]
pub struct Lanczos {
    top: usize,
    bottom: usize,
    max_steps: usize,
    tol: f64,
    seed: u64,
    start: Option<Array1<f64>>,
    vectors: bool,
}

impl Default for Lanczos {
    fn default() -> Self {
        Lanczos { top: 10, bottom: 0, max_steps: 300, tol: 1e-8, seed: 0, start: None, vectors: false }
    }
}

/// Ritz values (and optionally vectors) with their residual norms ‖Hx − θx‖.
#[derive(Clone, Debug)]
pub struct LanczosResult {
    /// The largest Ritz values, decreasing.
    pub top_values: Vec<f64>,
    /// ‖Hx − θx‖ for each of `top_values`.
    pub top_residuals: Vec<f64>,
    /// The smallest Ritz values, increasing (most negative first).
    pub bottom_values: Vec<f64>,
    /// ‖Hx − θx‖ for each of `bottom_values`.
    pub bottom_residuals: Vec<f64>,
    /// Unit Ritz vectors of `top_values`, one per column (when requested).
    pub top_vectors: Option<Array2<f64>>,
    /// Unit Ritz vectors of `bottom_values`, one per column (when requested).
    pub bottom_vectors: Option<Array2<f64>>,
    /// Lanczos steps taken = operator products.
    pub steps: usize,
    /// Whether every requested residual fell below `tol`·max|θ| (or the Krylov space became
    /// invariant, which makes the Ritz values exact).
    pub converged: bool,
}

impl Lanczos {
    /// Top 10, no bottom, at most 300 steps, tolerance 1e-8 relative to the largest |θ|, seed 0.
    pub fn new() -> Self {
        Self::default()
    }
    /// How many of the largest eigenvalues to find.
    pub fn top(mut self, k: usize) -> Self {
        self.top = k;
        self
    }
    /// How many of the smallest (most negative) eigenvalues to find.
    pub fn bottom(mut self, k: usize) -> Self {
        self.bottom = k;
        self
    }
    /// The most operator products to spend.
    pub fn max_steps(mut self, m: usize) -> Self {
        self.max_steps = m;
        self
    }
    /// Stop when every requested residual ‖Hx − θx‖ ≤ tol·max|θ|.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    /// The seed of the random start vector.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Start from this vector (normalised) instead of a random one — to reproduce another
    /// implementation's run step for step.
    pub fn start(mut self, v: Array1<f64>) -> Self {
        self.start = Some(v);
        self
    }
    /// Also return the Ritz vectors.
    pub fn eigenvectors(mut self, yes: bool) -> Self {
        self.vectors = yes;
        self
    }

    /// Runs the iteration on `op`.
    pub fn run(&self, op: &dyn SymmetricOperator) -> Result<LanczosResult> {
        let n = op.dim();
        if n == 0 {
            return Err(Error::invalid("lanczos", "the operator has dimension 0"));
        }
        if self.top + self.bottom == 0 {
            return Err(Error::invalid("lanczos", "ask for at least one eigenvalue (top or bottom)"));
        }
        if self.tol.is_nan() || self.tol <= 0.0 {
            return Err(Error::invalid("tol", format!("must be positive, got {}", self.tol)));
        }
        let max_steps = self.max_steps.min(n).max(1);
        let wanted = self.top + self.bottom;
        let start = match &self.start {
            None => random_unit(n, self.seed),
            Some(v) => {
                if v.len() != n {
                    return Err(Error::shape(
                        "lanczos",
                        format!("the start vector has {} entries, the operator is {n}×{n}", v.len()),
                    ));
                }
                let norm = v.dot(v).sqrt();
                if !norm.is_finite() || norm == 0.0 {
                    return Err(Error::invalid("start", format!("needs a finite nonzero norm, got {norm}")));
                }
                v / norm
            }
        };
        let mut basis = LanczosBasis::new(n, max_steps, start);
        let mut done = false;
        let mut converged = false;
        while !done {
            let invariant = basis.step(op)?;
            let m = basis.steps();
            let check =
                invariant || m == max_steps || (m >= wanted.min(n) && (m.is_multiple_of(5) || m == n));
            if check {
                let (theta, s) = basis.ritz()?;
                let beta = basis.last_beta();
                let scale = theta.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(f64::MIN_POSITIVE);
                let idx = wanted_indices(m, self.top, self.bottom);
                let ok = invariant || idx.iter().all(|&i| (beta * s[[m - 1, i]]).abs() <= self.tol * scale);
                if ok || m == max_steps || invariant {
                    converged = ok;
                    done = true;
                }
            }
        }
        let m = basis.steps();
        let (theta, s) = basis.ritz()?;
        let beta = basis.last_beta();
        let top_idx: Vec<usize> = (0..self.top.min(m)).collect();
        let bottom_idx: Vec<usize> = (0..self.bottom.min(m)).map(|i| m - 1 - i).collect();
        let pick = |idx: &[usize]| -> (Vec<f64>, Vec<f64>) {
            (
                idx.iter().map(|&i| theta[i]).collect(),
                idx.iter().map(|&i| (beta * s[[m - 1, i]]).abs()).collect(),
            )
        };
        let (top_values, top_residuals) = pick(&top_idx);
        let (bottom_values, bottom_residuals) = pick(&bottom_idx);
        let (top_vectors, bottom_vectors) = if self.vectors {
            (Some(basis.ritz_vectors(&s, &top_idx)?), Some(basis.ritz_vectors(&s, &bottom_idx)?))
        } else {
            (None, None)
        };
        Ok(LanczosResult {
            top_values,
            top_residuals,
            bottom_values,
            bottom_residuals,
            top_vectors,
            bottom_vectors,
            steps: m,
            converged,
        })
    }
}

/// Indices (into decreasing Ritz values of an m-step run) of the wanted extremes.
fn wanted_indices(m: usize, top: usize, bottom: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..top.min(m)).collect();
    idx.extend((0..bottom.min(m)).map(|i| m - 1 - i));
    idx.sort_unstable();
    idx.dedup();
    idx
}

/// A unit vector with independent standard normal entries (a uniformly random direction).
pub(crate) fn random_unit(n: usize, seed: u64) -> Array1<f64> {
    use rand::RngExt;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v: Array1<f64> = (0..n).map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal)).collect();
    let norm = v.dot(&v).sqrt();
    v /= norm;
    v
}

/// The orthonormal Krylov basis and the tridiagonal T of a Lanczos run.
pub(crate) struct LanczosBasis {
    /// Basis vectors, one per row (m_max+1 rows reserved).
    q: Array2<f64>,
    alpha: Vec<f64>,
    beta: Vec<f64>,
    /// The Krylov space became invariant: T's eigenvalues are exact eigenvalues.
    pub(crate) invariant: bool,
    /// The newest vector is orthogonal to the two before it only; the next step's pass
    /// orthogonalises it against the rest.
    pending: bool,
}

/// A reorthogonalisation pass is deferred only while ‖w‖ ≥ this fraction of ‖Hqⱼ‖, so that the
/// rounding left in the deferred vector, ~ε‖Hqⱼ‖/‖w‖, stays below 10⁴ε.
const DEFER_RATIO: f64 = 1e-4;

impl LanczosBasis {
    pub(crate) fn new(n: usize, max_steps: usize, start: Array1<f64>) -> Self {
        let mut q = zeros_huge(max_steps + 1, n);
        q.row_mut(0).assign(&start);
        LanczosBasis { q, alpha: Vec::new(), beta: Vec::new(), invariant: false, pending: false }
    }

    pub(crate) fn steps(&self) -> usize {
        self.alpha.len()
    }

    pub(crate) fn last_beta(&self) -> f64 {
        self.beta.last().copied().unwrap_or(0.0)
    }

    /// One step: w = H qⱼ − αqⱼ − βⱼ₋₁qⱼ₋₁, orthogonalised against the whole basis; returns
    /// whether the space is invariant (‖w‖ negligible), in which case no further step is possible.
    ///
    /// Full reorthogonalisation, two vectors per pass: a pass of classical Gram-Schmidt reads the
    /// whole basis twice (C = [qⱼ; w]·Q₍<ⱼ₎ᵀ, then [qⱼ; w] −= C·Q₍<ⱼ₎) and is memory-bound (0.8 MB
    /// per basis vector for 104,192 parameters: a quarter of a 265-step run, 1.0 of 4.0 s), so
    /// it is done every other step for the pair (qⱼ, w) rather than every step for w alone. In
    /// between, qⱼ₊₁ is orthogonal to qⱼ, qⱼ₋₁ (the recurrence, repeated once) and to the older
    /// vectors up to rounding amplified by ‖Hqⱼ‖/β (≤ 10⁴ε, far below the √ε that keeps the Ritz
    /// values exact), and is made orthogonal to them in the next step before it is used again
    /// — every basis vector ends up orthogonalised against all earlier ones. When β is too small
    /// for that bound (heavy cancellation), the pass is not deferred. (Longer deferrals, up to
    /// five vectors per pass under Simon's ω-recurrence estimate, were measured and dropped: a
    /// pass over more vectors costs about what the fewer passes save.)
    pub(crate) fn step(&mut self, op: &dyn SymmetricOperator) -> Result<bool> {
        let j = self.alpha.len();
        let n = self.q.ncols();
        // w lives in row j+1 (reserved), so [qⱼ; w] is one contiguous 2×n block; H qⱼ is
        // written there directly.
        if j + 1 == self.q.nrows() {
            let mut grown = Array2::zeros((j + 2, n));
            grown.slice_mut(s![..=j, ..]).assign(&self.q);
            self.q = grown;
        }
        let (older, rest) = self.q.view_mut().split_at(ndarray::Axis(0), j);
        let mut pair = rest.slice_move(s![0..2, ..]);
        {
            let (qj, mut u) = pair.view_mut().split_at(ndarray::Axis(0), 1);
            op.apply_into(qj.row(0), u.row_mut(0))?;
        }
        let u = pair.row(1);
        if let Some((i, v)) = u.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::non_finite("operator product", format!("element {i} is {v}")));
        }
        let alpha = pair.row(0).dot(&u);
        let hnorm = u.dot(&u).sqrt();
        {
            let (mut qj, mut w) = pair.view_mut().split_at(ndarray::Axis(0), 1);
            let (qj, mut w) = (qj.row_mut(0), w.row_mut(0));
            w.scaled_add(-alpha, &qj);
            if j > 0 {
                w.scaled_add(-self.beta[j - 1], &older.row(j - 1));
                // The recurrence once more: cheap, and it keeps the deferred vector clean.
                let c1 = older.row(j - 1).dot(&w);
                w.scaled_add(-c1, &older.row(j - 1));
            }
            let c0 = qj.dot(&w);
            w.scaled_add(-c0, &qj);
        }
        let local = pair.row(1).dot(&pair.row(1)).sqrt();
        let pending = std::mem::replace(&mut self.pending, false);
        if j > 0 && (pending || local < DEFER_RATIO * hnorm) {
            let basis = older.as_slice().ok_or_else(|| Error::shape("lanczos", "non-contiguous basis"))?;
            for _ in 0..2 {
                let before = pair.row(1).dot(&pair.row(1)).sqrt();
                let x = pair.as_slice_mut().ok_or_else(|| Error::shape("lanczos", "non-contiguous basis"))?;
                let (a, b) = x.split_at_mut(n);
                gram_schmidt_pass(basis, n, [a, b]);
                if pair.row(1).dot(&pair.row(1)).sqrt() > std::f64::consts::FRAC_1_SQRT_2 * before {
                    break;
                }
            }
            let (mut qj, mut w) = pair.view_mut().split_at(ndarray::Axis(0), 1);
            let (mut qj, mut w) = (qj.row_mut(0), w.row_mut(0));
            let norm = qj.dot(&qj).sqrt();
            qj /= norm;
            let c0 = qj.dot(&w);
            w.scaled_add(-c0, &qj);
        } else if j > 0 {
            self.pending = true;
        }
        let beta = pair.row(1).dot(&pair.row(1)).sqrt();
        self.alpha.push(alpha);
        self.beta.push(beta);
        // The whole space is spanned, or H maps the Krylov space into itself: T is exact.
        if j + 1 >= n || beta <= 1e-12 * hnorm.max(f64::MIN_POSITIVE) {
            self.invariant = true;
            return Ok(true);
        }
        let mut next = self.q.row_mut(j + 1);
        next /= beta;
        Ok(false)
    }

    /// Eigenvalues of T (decreasing) and its eigenvectors (columns).
    pub(crate) fn ritz(&self) -> Result<(Array1<f64>, Array2<f64>)> {
        let m = self.alpha.len();
        let e = tridiagonal_eigh(&self.alpha, &self.beta[..m.saturating_sub(1)])?;
        Ok((e.values, e.vectors))
    }

    /// Ritz vectors Qₘᵀ s for the selected eigenvectors of T, one per column (n×len).
    pub(crate) fn ritz_vectors(&self, s_: &Array2<f64>, idx: &[usize]) -> Result<Array2<f64>> {
        let m = self.alpha.len();
        let n = self.q.ncols();
        let mut sel = Array2::zeros((m, idx.len()));
        for (c, &i) in idx.iter().enumerate() {
            sel.column_mut(c).assign(&s_.column(i));
        }
        let mut out = Array2::zeros((n, idx.len()));
        gemm_into(out.view_mut(), false, 1.0, self.q.slice(s![0..m, ..]).t(), sel.view())?;
        Ok(out)
    }

    /// Nodes θᵢ and weights (e₁ᵀsᵢ)² of the Gauss quadrature that T defines for the start
    /// vector's spectral measure.
    pub(crate) fn quadrature(&self) -> Result<(Array1<f64>, Array1<f64>)> {
        let (theta, s_) = self.ritz()?;
        let w = s_.row(0).mapv(|v| v * v);
        Ok((theta, w))
    }
}

/// Columns per block of a Gram-Schmidt sweep: the two vectors' blocks (128 KB) stay in L2
/// while the basis streams through once.
const BLOCK: usize = 8192;

/// Basis rows a sweep reads side by side. One row at a time is one memory stream per core,
/// which a core cannot keep fed (measured on the 264×104,192 basis: 11 GB/s for c = Q·x, 12
/// for x −= Qᵀc); four streams reach the machine's bandwidth (25–27 GB/s, as OpenBLAS's GEMV).
/// The sweeps are `pulp` kernels: AVX2 with FMA chosen at run time, as the crate's baseline
/// is SSE2.
const ROWS: usize = 4;

/// One classical Gram-Schmidt pass of two vectors against the rows of `q` (m×n, row-major):
/// c = Q·x, then x −= Qᵀc, for both at once. Each half reads the basis once (two sweeps in all,
/// against four for one vector at a time), the two halves of the columns on two threads.
///
/// A GEMM would pack the whole n×m basis for a 2-row product, and a GEMV per vector reads it
/// twice as often; this is memory-bound either way.
fn gram_schmidt_pass(q: &[f64], n: usize, x: [&mut [f64]; 2]) {
    let m = q.len() / n.max(1);
    if m == 0 {
        return;
    }
    let [x0, x1] = x;
    let split = n / 2 / 8 * 8;
    let (x0a, x0b) = x0.split_at_mut(split);
    let (x1a, x1b) = x1.split_at_mut(split);
    // c = Q·x on both column halves, summed; then x −= Qᵀc.
    let dots = |lo: usize, x: [&[f64]; 2]| pulp::Arch::new().dispatch(Dots { q, n, lo, x });
    let (ca, cb) = rayon::join(|| dots(0, [&*x0a, &*x1a]), || dots(split, [&*x0b, &*x1b]));
    let c: Vec<f64> = ca.iter().zip(&cb).map(|(a, b)| a + b).collect();
    let update = |lo: usize, x: [&mut [f64]; 2]| pulp::Arch::new().dispatch(Update { q, n, lo, c: &c, x });
    rayon::join(|| update(0, [x0a, x1a]), || update(split, [x0b, x1b]));
}

/// R rows of the row-major basis `q` (n columns) from row r, restricted to `cols`.
#[inline(always)]
fn rows<const R: usize>(q: &[f64], n: usize, r: usize, cols: std::ops::Range<usize>) -> [&[f64]; R] {
    std::array::from_fn(|i| &q[(r + i) * n + cols.start..(r + i) * n + cols.end])
}

/// c[2r + v] = Q[r, lo..lo+len]·x_v for the column range lo..lo+len of both vectors.
struct Dots<'a> {
    q: &'a [f64],
    n: usize,
    lo: usize,
    x: [&'a [f64]; 2],
}

impl pulp::WithSimd for Dots<'_> {
    type Output = Vec<f64>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> Vec<f64> {
        let Dots { q, n, lo, x } = self;
        let m = q.len() / n;
        let mut c = vec![0.0f64; 2 * m];
        for b0 in (0..x[0].len()).step_by(BLOCK) {
            let b1 = (b0 + BLOCK).min(x[0].len());
            let x = [&x[0][b0..b1], &x[1][b0..b1]];
            let mut r = 0;
            while r + ROWS <= m {
                let d = dot_rows(simd, rows::<ROWS>(q, n, r, lo + b0..lo + b1), x);
                c[2 * r..2 * (r + ROWS)].iter_mut().zip(d.as_flattened()).for_each(|(c, d)| *c += d);
                r += ROWS;
            }
            for r in r..m {
                let d = dot_rows(simd, rows::<1>(q, n, r, lo + b0..lo + b1), x);
                c[2 * r..2 * r + 2].iter_mut().zip(&d[0]).for_each(|(c, d)| *c += d);
            }
        }
        c
    }
}

/// [a_i·x₀, a_i·x₁] for R rows a_i read side by side (2R accumulators).
#[inline(always)]
fn dot_rows<S: pulp::Simd, const R: usize>(simd: S, a: [&[f64]; R], x: [&[f64]; 2]) -> [[f64; 2]; R] {
    let (x0, x0t) = S::as_simd_f64s(x[0]);
    let (x1, x1t) = S::as_simd_f64s(x[1]);
    let a = a.map(|row| S::as_simd_f64s(row));
    let mut acc = [[simd.splat_f64s(0.0); 2]; R];
    for k in 0..x0.len() {
        for (s, (h, _)) in acc.iter_mut().zip(&a) {
            s[0] = simd.mul_add_f64s(h[k], x0[k], s[0]);
            s[1] = simd.mul_add_f64s(h[k], x1[k], s[1]);
        }
    }
    std::array::from_fn(|i| {
        let mut d = [simd.reduce_sum_f64s(acc[i][0]), simd.reduce_sum_f64s(acc[i][1])];
        for ((t, u), v) in a[i].1.iter().zip(x0t).zip(x1t) {
            d[0] += t * u;
            d[1] += t * v;
        }
        d
    })
}

/// x_v[lo..] −= Σᵣ c[2r + v]·Q[r, lo..] for the column range of both vectors.
struct Update<'a> {
    q: &'a [f64],
    n: usize,
    lo: usize,
    c: &'a [f64],
    x: [&'a mut [f64]; 2],
}

impl pulp::WithSimd for Update<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Update { q, n, lo, c, x: [x0, x1] } = self;
        let m = q.len() / n;
        let len = x0.len();
        for b0 in (0..len).step_by(BLOCK) {
            let b1 = (b0 + BLOCK).min(len);
            let mut x = [&mut x0[b0..b1], &mut x1[b0..b1]];
            let mut r = 0;
            while r + ROWS <= m {
                subtract_rows(
                    simd,
                    rows::<ROWS>(q, n, r, lo + b0..lo + b1),
                    &c[2 * r..2 * (r + ROWS)],
                    &mut x,
                );
                r += ROWS;
            }
            for r in r..m {
                subtract_rows(simd, rows::<1>(q, n, r, lo + b0..lo + b1), &c[2 * r..2 * r + 2], &mut x);
            }
        }
    }
}

/// x_v −= Σᵢ c[2i + v]·a_i for R rows a_i read side by side: x is loaded and stored once per R
/// rows.
#[inline(always)]
fn subtract_rows<S: pulp::Simd, const R: usize>(simd: S, a: [&[f64]; R], c: &[f64], x: &mut [&mut [f64]; 2]) {
    let a = a.map(|row| S::as_simd_f64s(row));
    let k0: [S::f64s; R] = std::array::from_fn(|i| simd.splat_f64s(-c[2 * i]));
    let k1: [S::f64s; R] = std::array::from_fn(|i| simd.splat_f64s(-c[2 * i + 1]));
    let [x0, x1] = x;
    let (x0, x0t) = S::as_mut_simd_f64s(x0);
    let (x1, x1t) = S::as_mut_simd_f64s(x1);
    for k in 0..x0.len() {
        let (mut u, mut v) = (x0[k], x1[k]);
        for ((h, _), (p, q)) in a.iter().zip(k0.iter().zip(&k1)) {
            u = simd.mul_add_f64s(*p, h[k], u);
            v = simd.mul_add_f64s(*q, h[k], v);
        }
        x0[k] = u;
        x1[k] = v;
    }
    for (i, (_, tail)) in a.iter().enumerate() {
        for ((t, u), v) in tail.iter().zip(x0t.iter_mut()).zip(x1t.iter_mut()) {
            *u -= c[2 * i] * t;
            *v -= c[2 * i + 1] * t;
        }
    }
}

/// ‖Hx − θx‖ computed with one product, for checking reported residuals.
pub fn residual_norm(op: &dyn SymmetricOperator, theta: f64, x: ArrayView1<'_, f64>) -> Result<f64> {
    let hx = op.apply(x)?;
    Ok((&hx - &(&x * theta)).dot(&(&hx - &(&x * theta))).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curvature::eigh;

    fn test_matrix(n: usize) -> Array2<f64> {
        // A symmetric matrix with a known, spread spectrum: Q diag(λ) Qᵀ with λ from −3 to 40.
        let b = Array2::from_shape_fn((n, n), |(i, j)| (((i * 31 + j * 17) % 23) as f64 - 11.0) / 7.0);
        let q = eigh((&b + &b.t()).view()).unwrap().vectors;
        let lam = Array1::from_iter((0..n).map(|i| 40.0 * (1.0 - i as f64 / n as f64).powi(3) - 3.0));
        q.dot(&Array2::from_diag(&lam)).dot(&q.t())
    }

    #[test]
    fn lanczos_matches_dense_eigenvalues_at_both_ends_with_small_residuals() {
        let h = test_matrix(120);
        let exact = eigh(h.view()).unwrap().values;
        let r = Lanczos::new().top(5).bottom(3).eigenvectors(true).max_steps(120).run(&h).unwrap();
        assert!(r.converged);
        for (i, v) in r.top_values.iter().enumerate() {
            assert!((v - exact[i]).abs() < 1e-7, "top {i}: {v} vs {}", exact[i]);
        }
        for (i, v) in r.bottom_values.iter().enumerate() {
            assert!((v - exact[119 - i]).abs() < 1e-7, "bottom {i}: {v} vs {}", exact[119 - i]);
        }
        let vecs = r.top_vectors.unwrap();
        for i in 0..5 {
            let res = residual_norm(&h, r.top_values[i], vecs.column(i)).unwrap();
            assert!((res - r.top_residuals[i]).abs() < 1e-8, "reported {} vs true {res}", r.top_residuals[i]);
        }
    }

    #[test]
    fn basis_stays_orthonormal_to_working_precision() {
        // 150 steps on a spread spectrum: the top eigenvalues converge early, which is when plain
        // Lanczos loses orthogonality (and the deferred pairs would show it first).
        let h = test_matrix(300);
        let mut basis = LanczosBasis::new(300, 150, random_unit(300, 3));
        for _ in 0..150 {
            assert!(!basis.step(&h).unwrap());
        }
        let q = basis.q.slice(s![0..150, ..]);
        let gram = q.dot(&q.t()) - Array2::<f64>::eye(150);
        let err = gram.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        assert!(err < 1e-13, "max |QᵀQ − I| = {err:e}");
        let exact = eigh(h.view()).unwrap().values;
        let (theta, _) = basis.ritz().unwrap();
        for i in 0..5 {
            assert!((theta[i] - exact[i]).abs() < 1e-10, "{i}: {} vs {}", theta[i], exact[i]);
        }
    }

    #[test]
    fn gram_schmidt_pass_equals_the_matrix_formula() {
        for (m, n) in [(1, 5), (3, 2 * BLOCK + 37), (7, 5 * BLOCK), (9, 2 * BLOCK + 3), (8, 61)] {
            let q = Array2::from_shape_fn((m, n), |(i, j)| ((i * 7 + j * 13) % 17) as f64 - 8.0);
            let x = Array2::from_shape_fn((2, n), |(i, j)| ((i * 5 + j * 3) % 11) as f64 * 0.25);
            let expected = &x - &x.dot(&q.t()).dot(&q);
            let mut got = x.clone();
            let (a, b) = got.as_slice_mut().unwrap().split_at_mut(n);
            gram_schmidt_pass(q.as_slice().unwrap(), n, [a, b]);
            let err = (&got - &expected).iter().fold(0.0f64, |a, v| a.max(v.abs()));
            let scale = expected.iter().fold(1.0f64, |a, v| a.max(v.abs()));
            assert!(err < 1e-12 * scale, "m {m} n {n}: {err:e}");
        }
    }

    #[test]
    fn a_given_start_vector_is_used_and_checked() {
        let h = test_matrix(60);
        let v = random_unit(60, 9) * 3.0;
        let a = Lanczos::new().top(2).start(v.clone()).run(&h).unwrap();
        let b = Lanczos::new().top(2).seed(9).run(&h).unwrap();
        assert_eq!(a.steps, b.steps);
        assert!((a.top_values[0] - b.top_values[0]).abs() < 1e-12);
        assert!(Lanczos::new().start(Array1::zeros(60)).run(&h).is_err());
        assert!(Lanczos::new().start(Array1::ones(5)).run(&h).is_err());
    }

    #[test]
    fn invariant_subspace_stops_early_with_exact_values() {
        let h = Array2::from_diag(&Array1::from(vec![3.0, 3.0, 3.0, 1.0]));
        let r = Lanczos::new().top(1).run(&h).unwrap();
        assert!(r.converged && r.steps <= 2);
        assert!((r.top_values[0] - 3.0).abs() < 1e-12);
    }

    #[test]
    fn asking_for_nothing_is_an_error() {
        let h = Array2::<f64>::eye(3);
        assert!(Lanczos::new().top(0).run(&h).is_err());
    }
}
