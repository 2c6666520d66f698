//! The notebook's bonus, in numbers: how an L2 penalty (μ/2)‖w‖² moves the optimum.
//!
//! Around a minimum w* of L, L(w) ≈ L(w*) + ½(w − w*)ᵀH(w − w*). Adding the penalty and setting
//! the gradient to zero gives H(w − w*) + μw = 0, so with H = QΛQᵀ
//!
//! ```text
//! w̃ = (H + μI)⁻¹ H w* = Q (Λ + μI)⁻¹ Λ Qᵀ w*,      qᵢᵀw̃ = λᵢ/(λᵢ + μ) · qᵢᵀw*.
//! ```
//!
//! Directions with λᵢ ≫ μ keep their weight, directions with λᵢ ≪ μ are shrunk to ~0.
//! [`ShrinkageAnalysis`] computes that prediction and then *checks* it: it minimises the penalised
//! loss L(w) + (μ/2)‖m ⊙ w‖² itself (damped Newton from w*) and reports how far the prediction
//! is from the real regularised optimum w_μ, direction by direction.
//!
//! Conventions, kept here in one place:
//! * The penalty mask m is [`Mlp::penalty_mask`]: weights penalised, biases never.
//! * The analysis (H, Λ, Q, w̃) is over the selected parameters ([`ParamSelection::Weights`] by
//!   default, as in the notebook), with unselected biases held at their w* values.
//! * The actual minimisation is over **all** parameters, biases free (re-optimised with the
//!   weights, as training with L2 would do). So with biases the notebook's formula neglects the
//!   weight-bias coupling; the report therefore also gives the *joint* prediction
//!   (H_all + μM)⁻¹H_all w*_all, which accounts for the free biases, restricted to the weights.
//! * With `ParamSelection::All` the selection contains unpenalised biases, M ≠ I, and the
//!   prediction is (H + μM)⁻¹Hw* (the factors λᵢ/(λᵢ+μ) are then only indicative).
//! * When L is exactly quadratic (linear model, squared error) every prediction is exact.
//! * A trained w* is often no minimum at all (separable classes: ‖w‖ → ∞ along the descent
//!   path; a saddle; an unconverged run). [`ShrinkageAnalysis::base_mu`] then makes one: it first
//!   minimises L₀ = L + (μ₀/2)‖m ⊙ w‖² from w* to its strict minimum w*₀ (H₀ = H + μ₀M positive
//!   definite), and analyses the *extra* penalty μ on top: w̃ = (H₀ + μM)⁻¹H₀w*₀ against the real
//!   minimiser of L + ((μ₀ + μ)/2)‖m ⊙ w‖². Every "w*" below is then w*₀ and every "H" is H₀.

use ndarray::{Array1, Array2, ArrayView2};

use super::minimize::{lu_solve, pseudo_newton_step};
use super::{Curvature, MlpObjective, NewtonReport, Objective, PenalisedNewton, SymmetricEigen, eigh};
use crate::nn::{Loss, Mlp, ParamSelection};
use crate::{Error, Result, Scalar};

/// Configuration of the shrinkage analysis (builder style).
///
/// ```
/// use backprop::curvature::ShrinkageAnalysis;
/// use backprop::nn::{Activation, Loss, Mlp};
/// use ndarray::array;
///
/// // A linear model with squared error: L is exactly quadratic, the prediction is exact.
/// let x = array![[1.0, 0.5], [0.2, -1.0], [-0.7, 0.3], [0.4, 0.9]];
/// let y = array![[1.0], [-0.5], [0.2], [0.8]];
/// let mut m = Mlp::<f64>::zeros(&[2, 1], &[Activation::Identity], false).unwrap();
/// m.layers[0].weight = array![[0.6638, 0.5839]]; // ≈ least squares, not exact
/// let report = ShrinkageAnalysis::new(vec![0.01, 0.1]).run(&m, x.view(), y.view(), Loss::SquaredError).unwrap();
/// assert_eq!(report.results.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct ShrinkageAnalysis {
    mus: Vec<f64>,
    selection: ParamSelection,
    curvature: Curvature,
    compare_gauss_newton: bool,
    newton: PenalisedNewton,
    base_mu: f64,
}

/// Everything the analysis found; serialises to the CLI's JSON report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ShrinkageReport {
    /// Parameters analysed (the selection).
    pub n_params: usize,
    /// All parameters the minimisation ran over (weights and biases).
    pub n_params_all: usize,
    /// `weights` or `all`.
    pub params: ParamSelection,
    /// The curvature the prediction used.
    pub curvature: Curvature,
    /// The base penalty μ₀ (0: none; the analysis is at the model's own weights).
    pub base_mu: f64,
    /// With μ₀ > 0: how the minimisation of L + (μ₀/2)‖m ⊙ w‖² from the model's weights to the
    /// analysed point w*₀ fared (its `positive_definite` says whether w*₀ is a strict minimum).
    pub base_minimizer: Option<NewtonReport>,
    /// L(w*) (without any penalty).
    pub loss: f64,
    /// Eigenvalues of the curvature at w*, decreasing.
    pub eigenvalues: Vec<f64>,
    /// qᵢᵀw*: the trained weights in the eigenbasis.
    pub coordinates: Vec<f64>,
    /// Honesty checks on the quadratic model's assumptions.
    pub diagnostics: Diagnostics,
    /// One entry per μ.
    pub results: Vec<MuResult>,
    /// Eigenvectors (columns), for plots and further analysis.
    #[serde(skip)]
    pub eigenvectors: Array2<f64>,
}

/// Where the quadratic model's assumptions hold and where they fail.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Diagnostics {
    /// ‖∇L(w*)‖ over the selection: the prediction assumes 0 (w* a minimum).
    pub grad_norm: f64,
    /// ‖∇L(w*)‖ over all parameters (the biases too).
    pub grad_norm_all: f64,
    /// ‖H⁺∇L(w*)‖/‖w*‖: how far the quadratic model's own minimum is from w*, relative to w*
    /// (pseudo-inverse over the non-tiny eigenvalues). Much below the shrinkage you want to
    /// measure means "stationary enough".
    pub relative_newton_step: f64,
    /// Eigenvalues < −tiny: w* is a saddle (or not converged) there; λ/(λ+μ) is then > 1 or
    /// negative and the "minimum" of the quadratic model does not exist.
    pub negative_eigenvalues: usize,
    /// |λ| ≤ tiny, with tiny = 1e-8·max|λ|: flat directions, shrunk to 0 by any μ > 0.
    pub tiny_eigenvalues: usize,
    /// The threshold used for "tiny".
    pub tiny_threshold: f64,
    /// Groups of ≥ 2 eigenvalues equal to within `tiny`: within such a group Q is any basis,
    /// so the per-direction ratios are basis-dependent (the factors are not).
    pub degenerate_groups: usize,
    /// The largest such group.
    pub largest_degenerate_group: usize,
    /// λ_max/λ_min of |λ| (∞ when singular).
    pub condition_number: f64,
    /// The slope p of log(relative error) ≈ p·log(μ) + c over the μ list: how fast the quadratic
    /// prediction degrades as μ moves the optimum further from w*. The quadratic model is exact
    /// to first order, so p ≈ 2 for μ well below the small eigenvalues; smaller p means μ is
    /// already beyond the quadratic regime. `None` with fewer than two positive errors.
    pub error_growth_exponent: Option<f64>,
    /// The same slope for `relative_error_joint` (free biases accounted for).
    pub error_growth_exponent_joint: Option<f64>,
    /// Human-readable warnings derived from the numbers above.
    pub warnings: Vec<String>,
}

/// The prediction and the measurement for one μ.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MuResult {
    /// The penalty strength.
    pub mu: f64,
    /// ‖w̃ − w_μ‖/‖w_μ‖ over the selected parameters: the notebook formula vs the real optimum.
    pub relative_error: f64,
    /// ‖w̃ − w_μ‖/‖w*‖: the same error on the scale of the trained weights (stays meaningful
    /// when a large μ drives w_μ to ~0 and `relative_error` blows up).
    pub error_relative_to_start: f64,
    /// Same for the joint prediction with free biases, (H_all + μM)⁻¹H_all w* (equal to
    /// `relative_error` when there are no unselected biases).
    pub relative_error_joint: Option<f64>,
    /// Same for the prediction from the Gauss-Newton matrix (PSD) instead of the Hessian.
    pub relative_error_gauss_newton: Option<f64>,
    /// ‖w*‖, ‖w̃‖, ‖w_μ‖ over the selection.
    pub norm_start: f64,
    /// ‖w̃‖.
    pub norm_predicted: f64,
    /// ‖w_μ‖.
    pub norm_measured: f64,
    /// L(w_μ) without the penalty.
    pub loss_measured: f64,
    /// How the minimiser fared.
    pub minimizer: NewtonReport,
    /// Per eigen-direction: predicted factor vs measured ratio.
    pub directions: Vec<DirectionShrinkage>,
    /// Predicted regularised weights w̃ (selection order).
    #[serde(skip)]
    pub predicted: Array1<f64>,
    /// Measured regularised weights w_μ (selection order).
    #[serde(skip)]
    pub measured: Array1<f64>,
}

/// Shrinkage along one eigenvector qᵢ.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DirectionShrinkage {
    /// i (0 = largest eigenvalue).
    pub index: usize,
    /// λᵢ.
    pub eigenvalue: f64,
    /// λᵢ/(λᵢ + μ).
    pub predicted: f64,
    /// (qᵢᵀw_μ)/(qᵢᵀw*), or `None` when qᵢᵀw* ≈ 0 (the ratio is meaningless there).
    pub measured: Option<f64>,
}

impl ShrinkageAnalysis {
    /// The analysis for penalties `mus`, over the weights, with the exact Hessian, comparing
    /// with the Gauss-Newton prediction.
    pub fn new(mus: Vec<f64>) -> Self {
        ShrinkageAnalysis {
            mus,
            selection: ParamSelection::Weights,
            curvature: Curvature::Hessian,
            compare_gauss_newton: true,
            newton: PenalisedNewton::new(),
            base_mu: 0.0,
        }
    }
    /// Analyse extra penalties on top of a base penalty μ₀ > 0, at the strict minimum w*₀ of
    /// L + (μ₀/2)‖m ⊙ w‖² reached from the model's weights (see the module notes). 0 (the
    /// default) analyses the model's own weights.
    pub fn base_mu(mut self, mu0: f64) -> Self {
        self.base_mu = mu0;
        self
    }
    /// Which parameters to analyse (the minimisation always frees the biases).
    pub fn params(mut self, s: ParamSelection) -> Self {
        self.selection = s;
        self
    }
    /// The curvature used for the prediction (the Hessian, or the PSD Gauss-Newton matrix).
    pub fn curvature(mut self, c: Curvature) -> Self {
        self.curvature = c;
        self
    }
    /// Also report the prediction error of the other curvature (default on).
    pub fn compare_gauss_newton(mut self, yes: bool) -> Self {
        self.compare_gauss_newton = yes;
        self
    }
    /// The minimiser's settings.
    pub fn newton(mut self, n: PenalisedNewton) -> Self {
        self.newton = n;
        self
    }

    /// Runs the analysis at the model's parameters w*, on data (x, y) with `loss`.
    pub fn run<T: Scalar>(
        &self,
        model: &Mlp<T>,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        loss: Loss,
    ) -> Result<ShrinkageReport> {
        self.run_with_progress(model, x, y, loss, &mut |_, _| {})
    }

    /// [`ShrinkageAnalysis::run`], calling `progress(done, total)` after each μ.
    pub fn run_with_progress<T: Scalar>(
        &self,
        model: &Mlp<T>,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        loss: Loss,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ShrinkageReport> {
        if self.mus.is_empty() {
            return Err(Error::invalid("mu", "give at least one penalty strength"));
        }
        if let Some(m) = self.mus.iter().find(|m| !(**m > 0.0 && m.is_finite())) {
            return Err(Error::invalid("mu", format!("every μ must be finite and > 0, got {m}")));
        }
        let mu0 = self.base_mu;
        if !(mu0 >= 0.0 && mu0.is_finite()) {
            return Err(Error::invalid("base_mu", format!("must be finite and ≥ 0, got {mu0}")));
        }
        let (x, y) = (x.mapv(|v| v.f64()), y.mapv(|v| v.f64()));
        let (x, y) = (x.view(), y.view());
        let mut all = MlpObjective::new(&model.cast::<f64>(), x, y, loss)?.params(ParamSelection::All);
        let mask_all = all.penalty_mask();
        let base_minimizer = if mu0 > 0.0 {
            let base = self.newton.minimize(&all, all.initial().view(), mask_all.view(), mu0)?;
            all = MlpObjective::new(&all.model_at(base.w.view())?, x, y, loss)?.params(ParamSelection::All);
            Some(base)
        } else {
            None
        };
        let sel = all.clone().params(self.selection);
        let w_all = all.initial();
        let w_sel = sel.initial();
        let mask_sel = sel.penalty_mask();
        // Positions of the selected parameters inside the all-parameter vector.
        let index = selection_index(model, self.selection);
        // The analysed objective is L₀ = L + (μ₀/2)‖m ⊙ w‖²: ∇L₀ = ∇L + μ₀m ⊙ w, ∇²L₀ = ∇²L + μ₀M
        // (and the Gauss-Newton matrix likewise gains μ₀M).
        let add_base = |mut c: Array2<f64>, mask: &Array1<f64>| {
            for i in 0..c.nrows() {
                c[[i, i]] += mu0 * mask[i];
            }
            c
        };

        let (loss_star, g) = all.value_grad(w_all.view())?;
        let g_all = g + &(&w_all * &mask_all * mu0);
        let g_sel = Array1::from_iter(index.iter().map(|&i| g_all[i]));
        let h_all = add_base(all.hessian(w_all.view())?, &mask_all);
        let h_sel = select(&h_all, &index);
        let curv_sel = match self.curvature {
            Curvature::Hessian => h_sel.clone(),
            Curvature::GaussNewton => add_base(sel.gauss_newton(w_sel.view())?, &mask_sel),
        };
        let eig = eigh(curv_sel.view())?;
        let other = if self.compare_gauss_newton {
            let c = match self.curvature {
                Curvature::Hessian => add_base(sel.gauss_newton(w_sel.view())?, &mask_sel),
                Curvature::GaussNewton => h_sel.clone(),
            };
            Some(c)
        } else {
            None
        };
        let mask_is_identity = mask_sel.iter().all(|&m| m == 1.0);
        let has_free_biases = index.len() < all.dim();
        let coordinates = eig.vectors.t().dot(&w_sel);
        let diagnostics = diagnose(&eig, &g_sel, g_all.dot(&g_all).sqrt(), &w_sel);

        let mut results = Vec::with_capacity(self.mus.len());
        for (done, &mu) in self.mus.iter().enumerate() {
            let predicted = predict(&eig, &curv_sel, &mask_sel, mask_is_identity, &w_sel, mu)?;
            let minimizer = self.newton.minimize(&all, w_all.view(), mask_all.view(), mu0 + mu)?;
            let measured = Array1::from_iter(index.iter().map(|&i| minimizer.w[i]));
            let loss_measured = all.value(minimizer.w.view())?;
            let rel = |p: &Array1<f64>| norm(&(p - &measured)) / norm(&measured).max(f64::MIN_POSITIVE);
            let relative_error = rel(&predicted);
            let relative_error_joint = if has_free_biases && self.curvature == Curvature::Hessian {
                let mut rhs = h_all.dot(&w_all);
                let mut a = h_all.clone();
                for i in 0..a.nrows() {
                    a[[i, i]] += mu * mask_all[i];
                }
                rhs = lu_solve(&a, &rhs).unwrap_or_else(|| Array1::from_elem(rhs.len(), f64::NAN));
                let joint = Array1::from_iter(index.iter().map(|&i| rhs[i]));
                Some(rel(&joint))
            } else {
                Some(relative_error)
            };
            let relative_error_gauss_newton = match &other {
                Some(c) => {
                    let e = eigh(c.view())?;
                    let p = predict(&e, c, &mask_sel, mask_is_identity, &w_sel, mu)?;
                    Some(rel(&p))
                }
                None => None,
            };
            let measured_coords = eig.vectors.t().dot(&measured);
            let wnorm = norm(&w_sel);
            let directions = (0..eig.values.len())
                .map(|i| {
                    let lam = eig.values[i];
                    let c0 = coordinates[i];
                    DirectionShrinkage {
                        index: i,
                        eigenvalue: lam,
                        predicted: lam / (lam + mu),
                        measured: (c0.abs() > 1e-8 * wnorm).then(|| measured_coords[i] / c0),
                    }
                })
                .collect();
            results.push(MuResult {
                mu,
                relative_error,
                error_relative_to_start: norm(&(&predicted - &measured)) / wnorm.max(f64::MIN_POSITIVE),
                relative_error_joint,
                relative_error_gauss_newton,
                norm_start: wnorm,
                norm_predicted: norm(&predicted),
                norm_measured: norm(&measured),
                loss_measured,
                minimizer,
                directions,
                predicted,
                measured,
            });
            progress(done + 1, self.mus.len());
        }
        let mut diagnostics = diagnostics;
        diagnostics.error_growth_exponent = growth_exponent(results.iter().map(|r| (r.mu, r.relative_error)));
        diagnostics.error_growth_exponent_joint =
            growth_exponent(results.iter().filter_map(|r| Some((r.mu, r.relative_error_joint?))));
        if results.iter().any(|r| !r.minimizer.converged) {
            diagnostics.warnings.push("the minimiser did not converge for some μ: w_μ is approximate".into());
        }
        Ok(ShrinkageReport {
            n_params: sel.dim(),
            n_params_all: all.dim(),
            params: self.selection,
            curvature: self.curvature,
            base_mu: mu0,
            base_minimizer,
            loss: loss_star,
            eigenvalues: eig.values.to_vec(),
            coordinates: coordinates.to_vec(),
            diagnostics,
            results,
            eigenvectors: eig.vectors,
        })
    }
}

fn norm(v: &Array1<f64>) -> f64 {
    v.dot(v).sqrt()
}

/// The predicted regularised optimum on the selection: Q(Λ+μI)⁻¹ΛQᵀw* when the mask is all
/// ones, else (C + μM)⁻¹Cw*.
fn predict(
    eig: &SymmetricEigen,
    c: &Array2<f64>,
    mask: &Array1<f64>,
    identity: bool,
    w: &Array1<f64>,
    mu: f64,
) -> Result<Array1<f64>> {
    if identity {
        return Ok(eig.apply_function(w.view(), |l| l / (l + mu)));
    }
    let mut a = c.clone();
    for i in 0..a.nrows() {
        a[[i, i]] += mu * mask[i];
    }
    lu_solve(&a, &c.dot(w)).ok_or_else(|| Error::invalid("mu", format!("H + μM is singular at μ = {mu}")))
}

/// Indices of a selection's parameters inside the all-parameter flat vector.
fn selection_index<T: Scalar>(model: &Mlp<T>, selection: ParamSelection) -> Vec<usize> {
    let mut index = Vec::new();
    let mut offset = 0;
    for spec in model.param_specs() {
        let len = spec.len();
        if spec.selected(selection) {
            index.extend(offset..offset + len);
        }
        offset += len;
    }
    index
}

fn select(h: &Array2<f64>, index: &[usize]) -> Array2<f64> {
    Array2::from_shape_fn((index.len(), index.len()), |(i, j)| h[[index[i], index[j]]])
}

fn diagnose(eig: &SymmetricEigen, g: &Array1<f64>, grad_norm_all: f64, w: &Array1<f64>) -> Diagnostics {
    let max = eig.values.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let tiny = 1e-8 * max;
    let negative = eig.values.iter().filter(|&&v| v < -tiny).count();
    let tiny_count = eig.values.iter().filter(|&&v| v.abs() <= tiny).count();
    let (mut groups, mut largest, mut run) = (0, 0, 1);
    for pair in eig.values.windows(2) {
        if (pair[0] - pair[1]).abs() <= tiny.max(f64::MIN_POSITIVE) {
            run += 1;
        } else {
            if run >= 2 {
                groups += 1;
                largest = largest.max(run);
            }
            run = 1;
        }
    }
    if run >= 2 {
        groups += 1;
        largest = largest.max(run);
    }
    let step = pseudo_newton_step(eig, g, tiny);
    let relative_newton_step = norm(&step) / norm(w).max(f64::MIN_POSITIVE);
    let grad_norm = norm(g);
    let mut warnings = Vec::new();
    if relative_newton_step > 1e-3 {
        warnings.push(format!(
            "w* is not stationary: the quadratic model's minimum is {relative_newton_step:.2e}·‖w*‖ away (‖∇L‖ = {grad_norm:.2e}); predictions include that offset (a base penalty μ₀, `--base-mu`, analyses a strict minimum near w* instead)"
        ));
    }
    if negative > 0 {
        warnings.push(format!("{negative} negative eigenvalues: w* is not a minimum in those directions; consider --curvature gauss-newton (PSD)"));
    }
    if tiny_count > 0 {
        warnings.push(format!(
            "{tiny_count} eigenvalues with |λ| ≤ {tiny:.1e}: flat directions, fully shrunk by any μ"
        ));
    }
    if groups > 0 {
        warnings.push(format!("{groups} degenerate eigenspaces (largest: {largest}): per-direction ratios inside them depend on the basis"));
    }
    Diagnostics {
        grad_norm,
        grad_norm_all,
        relative_newton_step,
        negative_eigenvalues: negative,
        tiny_eigenvalues: tiny_count,
        tiny_threshold: tiny,
        degenerate_groups: groups,
        largest_degenerate_group: largest,
        condition_number: eig.condition_number(),
        error_growth_exponent: None,
        error_growth_exponent_joint: None,
        warnings,
    }
}

/// Least-squares slope of log(error) against log(μ).
fn growth_exponent(points: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let pts: Vec<(f64, f64)> =
        points.filter(|(_, e)| *e > 0.0 && e.is_finite()).map(|(m, e)| (m.ln(), e.ln())).collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Activation;
    use rand::rngs::ChaCha8Rng;
    use rand::{RngExt, SeedableRng};

    fn random(n: usize, d: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_simple_fn((n, d), || 2.0 * rng.random::<f64>() - 1.0)
    }

    /// Gaussian elimination with partial pivoting: an oracle independent of faer.
    fn solve(mut a: Array2<f64>, mut b: Array1<f64>) -> Array1<f64> {
        let n = b.len();
        for c in 0..n {
            let p = (c..n).max_by(|&i, &j| a[[i, c]].abs().total_cmp(&a[[j, c]].abs())).unwrap();
            for k in 0..n {
                a.swap([c, k], [p, k]);
            }
            b.swap(c, p);
            for r in c + 1..n {
                let f = a[[r, c]] / a[[c, c]];
                for k in c..n {
                    a[[r, k]] -= f * a[[c, k]];
                }
                b[r] -= f * b[c];
            }
        }
        let mut x = Array1::zeros(n);
        for r in (0..n).rev() {
            let s: f64 = (r + 1..n).map(|k| a[[r, k]] * x[k]).sum();
            x[r] = (b[r] - s) / a[[r, r]];
        }
        x
    }

    #[test]
    fn quadratic_loss_prediction_equals_the_true_regularised_optimum() {
        // Linear model, squared error: L = (1/2n)‖Xw − y‖², H = XᵀX/n, w* = least squares.
        let (n, d) = (40, 6);
        let x = random(n, d, 1);
        let y = random(n, 1, 2);
        let h = x.t().dot(&x) / n as f64;
        let xty = x.t().dot(&y.column(0)) / n as f64;
        let w_star = solve(h.clone(), xty.clone());
        let mut m = Mlp::<f64>::zeros(&[d, 1], &[Activation::Identity], false).unwrap();
        m.layers[0].weight.row_mut(0).assign(&w_star);
        let mus = vec![1e-3, 1e-2, 0.1, 1.0, 10.0];
        let r = ShrinkageAnalysis::new(mus.clone()).run(&m, x.view(), y.view(), Loss::SquaredError).unwrap();
        assert!(r.diagnostics.grad_norm < 1e-14);
        for (res, &mu) in r.results.iter().zip(&mus) {
            let mut a = h.clone();
            for i in 0..d {
                a[[i, i]] += mu;
            }
            let exact = solve(a, xty.clone());
            let pred_err = norm(&(&res.predicted - &exact)) / norm(&exact);
            assert!(pred_err < 1e-12, "μ = {mu}: prediction vs closed form {pred_err:e}");
            assert!(res.relative_error < 1e-10, "μ = {mu}: relative error {:e}", res.relative_error);
            assert!(res.minimizer.converged && res.minimizer.positive_definite);
            for dir in &res.directions {
                let measured = dir.measured.unwrap();
                assert!(
                    (measured - dir.predicted).abs() < 1e-9,
                    "μ = {mu}, direction {}: {measured} vs {}",
                    dir.index,
                    dir.predicted
                );
            }
            assert_eq!(res.relative_error_gauss_newton.map(|e| e < 1e-10), Some(true));
        }
    }

    #[test]
    fn joint_prediction_is_exact_for_a_quadratic_loss_with_free_biases() {
        let (n, d) = (30, 4);
        let x = random(n, d, 3);
        let y = random(n, 1, 4).mapv(|v| v + 2.0);
        // Least squares with an intercept: augment X with a column of ones.
        let mut xa = Array2::ones((n, d + 1));
        xa.slice_mut(ndarray::s![.., 0..d]).assign(&x);
        let coef = solve(xa.t().dot(&xa), xa.t().dot(&y.column(0)));
        let mut m = Mlp::<f64>::zeros(&[d, 1], &[Activation::Identity], true).unwrap();
        m.layers[0].weight.row_mut(0).assign(&coef.slice(ndarray::s![0..d]));
        m.layers[0].bias = Some(Array1::from_elem(1, coef[d]));
        let r =
            ShrinkageAnalysis::new(vec![0.01, 0.5]).run(&m, x.view(), y.view(), Loss::SquaredError).unwrap();
        assert_eq!((r.n_params, r.n_params_all), (4, 5));
        for res in &r.results {
            assert!(res.relative_error_joint.unwrap() < 1e-10, "{:?}", res.relative_error_joint);
            // The notebook formula holds the bias fixed: not exact for uncentred data.
            assert!(res.relative_error > 1e-6);
        }
    }

    #[test]
    fn nonlinear_network_shrinks_small_eigen_directions_more_and_error_grows_with_mu() {
        // A teacher network plus noise: the student's minimum is non-degenerate.
        let x = random(80, 3, 5);
        let mut teacher =
            Mlp::<f64>::zeros(&[3, 3, 1], &[Activation::Tanh, Activation::Identity], true).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        for l in &mut teacher.layers {
            l.weight.mapv_inplace(|_| 2.0 * rng.random::<f64>() - 1.0);
        }
        let h1 = x.dot(&teacher.layers[0].weight.t()).mapv(f64::tanh);
        let y = (h1.dot(&teacher.layers[1].weight.t())).mapv(|v| v + 0.1 * (rng.random::<f64>() - 0.5));
        let mut m = teacher.clone();
        for l in &mut m.layers {
            l.weight.mapv_inplace(|w| w + 0.05 * (rng.random::<f64>() - 0.5));
        }
        // Train to a minimum (μ = 0 Newton) so that w* is stationary.
        let all = MlpObjective::new(&m, x.view(), y.view(), Loss::SquaredError)
            .unwrap()
            .params(ParamSelection::All);
        let fit = PenalisedNewton::new()
            .minimize(&all, all.initial().view(), all.penalty_mask().view(), 0.0)
            .unwrap();
        assert!(fit.converged, "{fit:?}");
        m.set_flat_params(ParamSelection::All, fit.w.as_slice().unwrap()).unwrap();
        // μ relative to the flattest direction of the joint (weights and biases) Hessian: the
        // quadratic model only claims to hold while μ moves w* little along it.
        let joint = all.hessian(fit.w.view()).unwrap();
        let lam_min = eigh(joint.view()).unwrap().values.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(lam_min > 0.0);
        let mus = vec![1e-3 * lam_min, 1e-2 * lam_min, 1e-1 * lam_min];
        let r = ShrinkageAnalysis::new(mus).run(&m, x.view(), y.view(), Loss::SquaredError).unwrap();
        assert!(r.diagnostics.relative_newton_step < 1e-8);
        assert_eq!(
            (r.diagnostics.negative_eigenvalues, r.diagnostics.tiny_eigenvalues),
            (0, 0),
            "{:?}",
            r.eigenvalues
        );
        let errs: Vec<f64> = r.results.iter().map(|r| r.relative_error_joint.unwrap()).collect();
        // The quadratic model is exact to first order in μ: the error falls like μ².
        assert!(errs[0] < 1e-4 && errs[0] < errs[1] && errs[1] < errs[2], "{errs:?}");
        // Large-λ directions keep their weight, small-λ ones shrink (where λ > 0).
        let res = &r.results[2];
        let top = &res.directions[0];
        assert!(top.predicted > 0.999);
        let last_pos = res.directions.iter().rev().find(|d| d.eigenvalue > 0.0).unwrap();
        assert!(last_pos.predicted < top.predicted);
        let p = r.diagnostics.error_growth_exponent_joint.unwrap();
        assert!(
            (1.7..2.3).contains(&p),
            "{p} {errs:?} {:?}",
            r.results
                .iter()
                .map(|r| (r.mu, r.minimizer.grad_norm, r.minimizer.iterations))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn base_penalty_prediction_is_exact_for_a_quadratic_loss() {
        // L quadratic ⇒ L₀ = L + (μ₀/2)‖w‖² quadratic: w*₀ = (H + μ₀I)⁻¹Xᵀy/n, and the extra
        // penalty μ gives exactly (H + (μ₀+μ)I)⁻¹Xᵀy/n — from any starting weights.
        let (n, d, mu0) = (30, 5, 0.05);
        let x = random(n, d, 11);
        let y = random(n, 1, 12);
        let h = x.t().dot(&x) / n as f64;
        let xty = x.t().dot(&y.column(0)) / n as f64;
        let mut m = Mlp::<f64>::zeros(&[d, 1], &[Activation::Identity], false).unwrap();
        m.layers[0].weight.fill(0.3); // far from any optimum: the base minimisation moves it
        let mus = vec![1e-3, 0.1, 2.0];
        let r = ShrinkageAnalysis::new(mus.clone())
            .base_mu(mu0)
            .run(&m, x.view(), y.view(), Loss::SquaredError)
            .unwrap();
        let base = r.base_minimizer.as_ref().unwrap();
        assert!(base.converged && base.positive_definite && r.base_mu == mu0);
        assert!(r.diagnostics.grad_norm < 1e-12, "∇L₀(w*₀) = {}", r.diagnostics.grad_norm);
        let shifted = |mu: f64| {
            let mut a = h.clone();
            for i in 0..d {
                a[[i, i]] += mu;
            }
            a
        };
        let w0 = solve(shifted(mu0), xty.clone());
        let c0 = r.eigenvectors.t().dot(&w0);
        assert!(r.coordinates.iter().zip(&c0).all(|(a, b)| (a - b).abs() < 1e-10));
        for (res, &mu) in r.results.iter().zip(&mus) {
            let exact = solve(shifted(mu0 + mu), xty.clone());
            assert!(norm(&(&res.predicted - &exact)) / norm(&exact) < 1e-10, "μ = {mu}");
            assert!(res.relative_error < 1e-10, "μ = {mu}: {:e}", res.relative_error);
        }
        // The eigenvalues are those of H₀ = H + μ₀I.
        let lam_h = eigh(h.view()).unwrap().values;
        assert!(r.eigenvalues.iter().zip(lam_h.iter()).all(|(a, b)| (a - b - mu0).abs() < 1e-12));
    }

    #[test]
    fn base_penalty_gives_a_strict_minimum_where_none_exists() {
        // Separable classes with logistic loss: L has no finite minimiser (‖w‖ → ∞), so the
        // trained weights are not stationary. With μ₀ the analysed point is a strict minimum
        // and the prediction error falls like μ² for small extra μ.
        let x = random(40, 2, 21);
        let y = x
            .map_axis(ndarray::Axis(1), |r| if r[0] + 0.5 * r[1] > 0.0 { 1.0 } else { 0.0 })
            .insert_axis(ndarray::Axis(1));
        let mut m = Mlp::<f64>::zeros(&[2, 3, 1], &[Activation::Tanh, Activation::Sigmoid], true).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(22);
        for l in &mut m.layers {
            l.weight.mapv_inplace(|_| 2.0 * rng.random::<f64>() - 1.0);
        }
        let plain = ShrinkageAnalysis::new(vec![1e-3]).run(&m, x.view(), y.view(), Loss::Bce).unwrap();
        assert!(plain.diagnostics.relative_newton_step > 1e-3, "{:?}", plain.diagnostics);
        let r = ShrinkageAnalysis::new(vec![1e-5, 1e-4])
            .base_mu(1e-2)
            .run(&m, x.view(), y.view(), Loss::Bce)
            .unwrap();
        assert!(r.base_minimizer.as_ref().unwrap().positive_definite);
        assert!(r.diagnostics.relative_newton_step < 1e-8, "{:?}", r.diagnostics);
        let e: Vec<f64> = r.results.iter().map(|r| r.relative_error_joint.unwrap()).collect();
        assert!(e[0] < 1e-5 && e[1] > 10.0 * e[0], "{e:?}");
    }

    #[test]
    fn invalid_mu_is_an_error() {
        let m = Mlp::<f64>::zeros(&[2, 1], &[Activation::Identity], false).unwrap();
        let x = random(3, 2, 1);
        let y = random(3, 1, 2);
        for mus in [vec![], vec![0.0], vec![-1.0], vec![f64::NAN]] {
            assert!(ShrinkageAnalysis::new(mus).run(&m, x.view(), y.view(), Loss::SquaredError).is_err());
        }
    }
}
