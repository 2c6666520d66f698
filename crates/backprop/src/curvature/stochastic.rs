//! Randomised spectral estimates from operator products alone: the Hutchinson trace and the
//! spectral density by stochastic Lanczos quadrature.

#[cfg(test)]
use ndarray::Array1;
use ndarray::Array2;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use super::SymmetricOperator;
use super::lanczos::{LanczosBasis, random_unit};
use crate::{Error, Result};

/// A trace estimate with its standard error.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HutchinsonEstimate {
    /// The mean of zᵀHz over the probes.
    pub trace: f64,
    /// The standard error of that mean (sample std / √probes).
    pub std_error: f64,
    /// The number of probe vectors.
    pub probes: usize,
}

/// tr(H) ≈ (1/m) Σ zᵢᵀ H zᵢ with Rademacher probes z (entries ±1, E\[zzᵀ\] = I), the
/// lowest-variance choice among i.i.d. probes. Probes are applied in batches of up to 64.
///
/// ```
/// use ndarray::Array2;
/// let h = Array2::from_diag(&ndarray::array![1.0, 2.0, 3.0]);
/// let t = backprop::curvature::hutchinson_trace(&h, 10, 0).unwrap();
/// assert!((t.trace - 6.0).abs() < 1e-12); // exact for a diagonal matrix: zᵢ² = 1
/// ```
pub fn hutchinson_trace(op: &dyn SymmetricOperator, probes: usize, seed: u64) -> Result<HutchinsonEstimate> {
    if probes == 0 {
        return Err(Error::invalid("probes", "need at least one probe vector"));
    }
    let n = op.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut samples = Vec::with_capacity(probes);
    while samples.len() < probes {
        let k = (probes - samples.len()).min(64);
        let z = Array2::from_shape_simple_fn((k, n), || if rng.random::<bool>() { 1.0 } else { -1.0 });
        let hz = op.apply_rows(z.view())?;
        for j in 0..k {
            samples.push(z.row(j).dot(&hz.row(j)));
        }
    }
    let m = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / m;
    let var = if samples.len() > 1 {
        samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (m - 1.0)
    } else {
        0.0
    };
    Ok(HutchinsonEstimate { trace: mean, std_error: (var / m).sqrt(), probes })
}

/// The spectral density φ(t) = (1/n) Σᵢ δ(t − λᵢ), estimated by stochastic Lanczos quadrature
/// and smoothed with a Gaussian kernel.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SpectralDensity {
    /// Quadrature nodes θ (Ritz values), all probes together.
    pub nodes: Vec<f64>,
    /// Their weights (e₁ᵀs)² / probes; they sum to 1.
    pub weights: Vec<f64>,
    /// Evaluation grid.
    pub grid: Vec<f64>,
    /// The smoothed density on `grid` (integrates to ≈ 1).
    pub density: Vec<f64>,
    /// The Gaussian kernel's standard deviation.
    pub bandwidth: f64,
}

/// Stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017): for a random unit vector v,
/// vᵀf(H)v = Σᵢ f(λᵢ)(qᵢᵀv)² is the integral of f against v's spectral measure, and m Lanczos
/// steps from v give its m-point Gauss quadrature (nodes: eigenvalues θ of T, weights: squared
/// first components of T's eigenvectors). Averaging over probes estimates the density.
#[derive(Clone, Debug)]
pub struct Slq {
    probes: usize,
    steps: usize,
    points: usize,
    bandwidth: Option<f64>,
    seed: u64,
}

impl Default for Slq {
    fn default() -> Self {
        Slq { probes: 4, steps: 60, points: 400, bandwidth: None, seed: 0 }
    }
}

impl Slq {
    /// 4 probes, 60 Lanczos steps each, 400 grid points, bandwidth 1% of the spectral range.
    pub fn new() -> Self {
        Self::default()
    }
    /// Random start vectors to average over.
    pub fn probes(mut self, p: usize) -> Self {
        self.probes = p;
        self
    }
    /// Lanczos steps per probe (quadrature points).
    pub fn steps(mut self, m: usize) -> Self {
        self.steps = m;
        self
    }
    /// Grid points of the smoothed density.
    pub fn points(mut self, p: usize) -> Self {
        self.points = p;
        self
    }
    /// The kernel's standard deviation (default: 1% of the node range).
    pub fn bandwidth(mut self, sigma: f64) -> Self {
        self.bandwidth = Some(sigma);
        self
    }
    /// Seed of the probes.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Runs the estimate on `op`.
    pub fn run(&self, op: &dyn SymmetricOperator) -> Result<SpectralDensity> {
        if self.probes == 0 || self.steps == 0 || self.points < 2 {
            return Err(Error::invalid("slq", "need ≥ 1 probe, ≥ 1 step and ≥ 2 grid points"));
        }
        if let Some(b) = self.bandwidth
            && !(b > 0.0 && b.is_finite())
        {
            return Err(Error::invalid("bandwidth", format!("must be positive, got {b}")));
        }
        let n = op.dim();
        let steps = self.steps.min(n);
        let mut nodes = Vec::new();
        let mut weights = Vec::new();
        for p in 0..self.probes {
            let mut basis = LanczosBasis::new(n, steps, random_unit(n, self.seed.wrapping_add(p as u64)));
            while basis.steps() < steps {
                if basis.step(op)? {
                    break;
                }
            }
            let (theta, w) = basis.quadrature()?;
            nodes.extend(theta.iter().copied());
            weights.extend(w.iter().map(|w| w / self.probes as f64));
        }
        let lo = nodes.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = nodes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let range = (hi - lo).max(1e-12 * hi.abs().max(1.0));
        let sigma = self.bandwidth.unwrap_or(0.01 * range);
        let (a, b) = (lo - 3.0 * sigma, hi + 3.0 * sigma);
        let grid: Vec<f64> =
            (0..self.points).map(|i| a + (b - a) * i as f64 / (self.points - 1) as f64).collect();
        let norm = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
        let density = grid
            .iter()
            .map(|&t| {
                nodes
                    .iter()
                    .zip(&weights)
                    .map(|(&x, &w)| w * norm * (-0.5 * ((t - x) / sigma).powi(2)).exp())
                    .sum()
            })
            .collect();
        Ok(SpectralDensity { nodes, weights, grid, density, bandwidth: sigma })
    }
}

/// [`Slq`] with its defaults.
pub fn spectral_density(op: &dyn SymmetricOperator) -> Result<SpectralDensity> {
    Slq::new().run(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hutchinson_is_unbiased_within_its_error_bar() {
        let n = 40;
        let b = Array2::from_shape_fn((n, n), |(i, j)| (((i * 13 + j * 7) % 17) as f64 - 8.0) / 5.0);
        let h = &b + &b.t();
        let exact: f64 = h.diag().sum();
        let est = hutchinson_trace(&h, 2000, 7).unwrap();
        assert!(
            (est.trace - exact).abs() < 4.0 * est.std_error,
            "{} ± {} vs {exact}",
            est.trace,
            est.std_error
        );
    }

    #[test]
    fn slq_weights_sum_to_one_and_moments_match() {
        let lam = Array1::from_iter((0..50).map(|i| i as f64 / 10.0));
        let h = Array2::from_diag(&lam);
        let d = Slq::new().probes(30).steps(50).run(&h).unwrap();
        let total: f64 = d.weights.iter().sum();
        assert!((total - 1.0).abs() < 1e-10);
        // Σ w θ estimates tr(H)/n = mean eigenvalue 2.45.
        let mean: f64 = d.nodes.iter().zip(&d.weights).map(|(t, w)| t * w).sum();
        assert!((mean - 2.45).abs() < 0.3, "{mean}");
        let dx = d.grid[1] - d.grid[0];
        let integral: f64 = d.density.iter().sum::<f64>() * dx;
        assert!((integral - 1.0).abs() < 0.02, "{integral}");
    }
}
