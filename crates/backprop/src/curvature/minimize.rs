//! Minimising the L2-penalised loss F(w) = L(w) + (μ/2)‖m ⊙ w‖² by damped Newton steps with
//! the exact Hessian — the "actually minimise" half of the shrinkage analysis.
//!
//! Each step solves (∇²L + μ·diag(m) + δI) p = −∇F by Cholesky (Levenberg-Marquardt damping
//! δ ≥ 0): δ grows until the matrix is positive definite and the step decreases F, and shrinks
//! after a good step, so far from a minimum the step turns into scaled gradient descent and
//! near one it is a pure Newton step (quadratic convergence: ‖∇F‖ reaches ~1e-13).

use ndarray::{Array1, ArrayView1};

use super::Objective;
use crate::{Error, Result};

/// Configuration of the penalised Newton minimiser (builder style).
#[derive(Clone, Debug)]
pub struct PenalisedNewton {
    max_iter: usize,
    gtol: f64,
}

impl Default for PenalisedNewton {
    fn default() -> Self {
        PenalisedNewton { max_iter: 200, gtol: 1e-11 }
    }
}

/// The minimiser's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NewtonReport {
    /// The minimiser w_μ.
    #[serde(skip)]
    pub w: Array1<f64>,
    /// F(w_μ).
    pub value: f64,
    /// ‖∇F(w_μ)‖.
    pub grad_norm: f64,
    /// Newton steps taken (accepted or not).
    pub iterations: usize,
    /// ‖∇F‖ ≤ gtol·max(1, |F|).
    pub converged: bool,
    /// The Hessian of F at w_μ was positive definite (a strict local minimum, not a saddle).
    pub positive_definite: bool,
}

impl PenalisedNewton {
    /// At most 200 steps, stop at ‖∇F‖ ≤ 1e-11·max(1, |F|).
    pub fn new() -> Self {
        Self::default()
    }
    /// The most Newton steps.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    /// The gradient-norm tolerance (relative to max(1, |F|)).
    pub fn gtol(mut self, g: f64) -> Self {
        self.gtol = g;
        self
    }

    /// Minimises L(w) + (μ/2) Σ mᵢwᵢ² from `w0`; `mask` m is 1 for penalised parameters.
    pub fn minimize(
        &self,
        obj: &dyn Objective,
        w0: ArrayView1<'_, f64>,
        mask: ArrayView1<'_, f64>,
        mu: f64,
    ) -> Result<NewtonReport> {
        let n = obj.dim();
        if w0.len() != n || mask.len() != n {
            return Err(Error::shape(
                "PenalisedNewton",
                format!("objective has {n} parameters, start {} and mask {}", w0.len(), mask.len()),
            ));
        }
        if !(mu >= 0.0 && mu.is_finite()) {
            return Err(Error::invalid("mu", format!("must be finite and ≥ 0, got {mu}")));
        }
        let penalised =
            |w: &Array1<f64>, l: f64| l + 0.5 * mu * w.iter().zip(mask).map(|(w, m)| m * w * w).sum::<f64>();
        let mut w = w0.to_owned();
        let (l, g) = obj.value_grad(w.view())?;
        let mut f = penalised(&w, l);
        let mut grad = &g + &(&w * &mask * mu);
        let mut delta = 0.0f64;
        let mut iterations = 0;
        while iterations < self.max_iter {
            let gnorm = grad.dot(&grad).sqrt();
            if gnorm <= self.gtol * f.abs().max(1.0) {
                break;
            }
            iterations += 1;
            let mut h = obj.hessian(w.view())?;
            for i in 0..n {
                h[[i, i]] += mu * mask[i];
            }
            let scale = h.diag().iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-300);
            // Find δ so that H + δI is positive definite and the step decreases F.
            let mut accepted = false;
            for _ in 0..60 {
                if let Some(p) = cholesky_solve(&h, delta, &grad) {
                    let trial = &w - &p;
                    let lt = obj.value(trial.view())?;
                    let ft = penalised(&trial, lt);
                    // Accept a decrease of F. When the predicted decrease ½pᵀ∇F is below what F's
                    // rounding can resolve, judge by the gradient norm instead (else tiny μ
                    // would stall in ever more damped steps).
                    let predicted = 0.5 * p.dot(&grad);
                    let unresolvable = predicted <= 1e3 * f64::EPSILON * f.abs().max(f64::MIN_POSITIVE);
                    let accept = ft <= f
                        || p.dot(&p).sqrt() <= 1e-15 * (1.0 + w.dot(&w).sqrt())
                        || (unresolvable && {
                            let (_, gt) = obj.value_grad(trial.view())?;
                            let gt = &gt + &(&trial * &mask * mu);
                            gt.dot(&gt) < grad.dot(&grad)
                        });
                    if accept {
                        w = trial;
                        accepted = true;
                        delta = if delta > 0.0 { delta / 10.0 } else { 0.0 };
                        if delta < 1e-14 * scale {
                            delta = 0.0;
                        }
                        break;
                    }
                }
                delta = if delta == 0.0 { 1e-8 * scale } else { delta * 10.0 };
            }
            if !accepted {
                break;
            }
            let (l, g) = obj.value_grad(w.view())?;
            f = penalised(&w, l);
            grad = &g + &(&w * &mask * mu);
        }
        let grad_norm = grad.dot(&grad).sqrt();
        // Curvature at the end point decides minimum vs saddle.
        let mut h = obj.hessian(w.view())?;
        for i in 0..n {
            h[[i, i]] += mu * mask[i];
        }
        let positive_definite = cholesky_solve(&h, 0.0, &grad).is_some();
        Ok(NewtonReport {
            w,
            value: f,
            grad_norm,
            iterations,
            converged: grad_norm <= self.gtol * f.abs().max(1.0),
            positive_definite,
        })
    }
}

/// Solves (H + δI) p = g by Cholesky; `None` when H + δI is not positive definite.
pub(crate) fn cholesky_solve(h: &ndarray::Array2<f64>, delta: f64, g: &Array1<f64>) -> Option<Array1<f64>> {
    let n = h.nrows();
    let a = faer::Mat::<f64>::from_fn(n, n, |i, j| if i == j { h[[i, j]] + delta } else { h[[i, j]] });
    let llt = a.llt(faer::Side::Lower).ok()?;
    let mut rhs = faer::Mat::<f64>::from_fn(n, 1, |i, _| g[i]);
    use faer::linalg::solvers::Solve;
    llt.solve_in_place(rhs.as_mut());
    let p = Array1::from_iter((0..n).map(|i| rhs[(i, 0)]));
    p.iter().all(|v| v.is_finite()).then_some(p)
}

/// Solves A x = b by LU with partial pivoting; `None` when the result is not finite.
pub(crate) fn lu_solve(a: &ndarray::Array2<f64>, b: &Array1<f64>) -> Option<Array1<f64>> {
    let n = a.nrows();
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| a[[i, j]]);
    let lu = m.partial_piv_lu();
    let mut rhs = faer::Mat::<f64>::from_fn(n, 1, |i, _| b[i]);
    use faer::linalg::solvers::Solve;
    lu.solve_in_place(rhs.as_mut());
    let x = Array1::from_iter((0..n).map(|i| rhs[(i, 0)]));
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// H⁺g over the eigenvalues with |λ| > tiny: the quadratic model's step to its stationary point.
pub(crate) fn pseudo_newton_step(eig: &super::SymmetricEigen, g: &Array1<f64>, tiny: f64) -> Array1<f64> {
    eig.apply_function(g.view(), |l| if l.abs() > tiny { 1.0 / l } else { 0.0 })
}
