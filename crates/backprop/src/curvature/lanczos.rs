//! Extreme eigenvalues of a large symmetric operator by the Lanczos iteration with full
//! reorthogonalisation.
//!
//! After m steps, H Qₘ = Qₘ Tₘ + βₘ qₘ₊₁ eₘᵀ with Tₘ tridiagonal (α on the diagonal, β beside
//! it). An eigenpair (θ, s) of Tₘ gives the Ritz pair (θ, Qₘs) whose residual is exactly
//! ‖H Qₘs − θ Qₘs‖ = |βₘ sₘ|, so convergence is checked without extra products. Every new
//! vector is orthogonalised against the whole basis (classical Gram-Schmidt as GEMVs, a second
//! pass when the first cancels much):
//! without it, rounding makes converged eigenvalues reappear as spurious copies.

use ndarray::{Array1, Array2, ArrayView1, s};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use super::{SymmetricOperator, eigh};
use crate::tensor::gemm_into;
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
}

impl LanczosBasis {
    pub(crate) fn new(n: usize, max_steps: usize, start: Array1<f64>) -> Self {
        let mut q = Array2::zeros((max_steps + 1, n));
        q.row_mut(0).assign(&start);
        LanczosBasis { q, alpha: Vec::new(), beta: Vec::new(), invariant: false }
    }

    pub(crate) fn steps(&self) -> usize {
        self.alpha.len()
    }

    pub(crate) fn last_beta(&self) -> f64 {
        self.beta.last().copied().unwrap_or(0.0)
    }

    /// One step: w = H qⱼ, orthogonalised (once or twice) against q₀…qⱼ; returns whether the space is
    /// invariant (‖w‖ negligible), in which case no further step is possible.
    pub(crate) fn step(&mut self, op: &dyn SymmetricOperator) -> Result<bool> {
        let j = self.alpha.len();
        let mut w = op.apply(self.q.row(j))?;
        if let Some((i, v)) = w.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::non_finite("operator product", format!("element {i} is {v}")));
        }
        let alpha = self.q.row(j).dot(&w);
        let hnorm = w.dot(&w).sqrt();
        // Classical Gram-Schmidt against the whole basis, repeated only when the first pass
        // cancelled most of w (‖w‖ fell below 1/√2 of its size: the DGKS criterion) — "twice is
        // enough", and once is enough when little cancels. Each pass is two GEMVs.
        // First the three-term recurrence w −= αqⱼ + βⱼ₋₁qⱼ₋₁ (the big components), so the
        // reorthogonalisation only removes rounding-level ones and rarely needs a second pass.
        w.scaled_add(-alpha, &self.q.row(j));
        if j > 0 {
            w.scaled_add(-self.beta[j - 1], &self.q.row(j - 1));
        }
        let basis = self.q.slice(s![0..=j, ..]);
        let mut c = Array2::zeros((1, j + 1));
        for _ in 0..2 {
            let before = w.dot(&w).sqrt();
            let wv = w.view().insert_axis(ndarray::Axis(0));
            gemm_into(c.view_mut(), false, 1.0, wv, basis.t())?;
            let mut wm = w.view_mut().insert_axis(ndarray::Axis(0));
            gemm_into(wm.view_mut(), true, -1.0, c.view(), basis)?;
            if w.dot(&w).sqrt() > std::f64::consts::FRAC_1_SQRT_2 * before {
                break;
            }
        }
        let beta = w.dot(&w).sqrt();
        self.alpha.push(alpha);
        self.beta.push(beta);
        // The whole space is spanned, or H maps the Krylov space into itself: T is exact.
        if j + 1 >= w.len() || beta <= 1e-12 * hnorm.max(f64::MIN_POSITIVE) {
            self.invariant = true;
            return Ok(true);
        }
        if j + 1 < self.q.nrows() {
            self.q.row_mut(j + 1).assign(&(w / beta));
        }
        Ok(false)
    }

    /// Eigenvalues of T (decreasing) and its eigenvectors (columns).
    pub(crate) fn ritz(&self) -> Result<(Array1<f64>, Array2<f64>)> {
        let m = self.alpha.len();
        let mut t = Array2::zeros((m, m));
        for i in 0..m {
            t[[i, i]] = self.alpha[i];
            if i + 1 < m {
                t[[i, i + 1]] = self.beta[i];
                t[[i + 1, i]] = self.beta[i];
            }
        }
        let e = eigh(t.view())?;
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

/// ‖Hx − θx‖ computed with one product, for checking reported residuals.
pub fn residual_norm(op: &dyn SymmetricOperator, theta: f64, x: ArrayView1<'_, f64>) -> Result<f64> {
    let hx = op.apply(x)?;
    Ok((&hx - &(&x * theta)).dot(&(&hx - &(&x * theta))).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

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
