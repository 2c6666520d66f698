//! Gradient checking: analytic derivatives against central finite differences, in f64.
//!
//! For `φ(x) = ⟨w, f(x)⟩` (w random when `f` is not scalar) and a direction `u`:
//!
//! - first order: `⟨∇φ, u⟩` against `(φ(x + εu) − φ(x − εu)) / 2ε` — every unit vector for small
//!   inputs, and random directions (JAX's `check_grads`, PyTorch's fast gradcheck: a random
//!   direction catches transposition mistakes a unit vector can miss);
//! - second order: `H·v` from the recorded backward pass against
//!   `(∇φ(x + εv) − ∇φ(x − εv)) / 2ε`.
//!
//! An entry passes when `|analytic − numeric| ≤ atol + rtol·|numeric| + r` (numpy's `isclose`
//! plus `r`), where `r = 16·ε_mach·(|φ₊| + |φ₋|)/2ε` is the rounding floor of the difference
//! quotient: φ₊ and φ₋ each carry a few ulps of rounding, which the division by 2ε magnifies, so
//! no finite difference of a large φ is more accurate than that. For φ of order 1 it is ~1e−9
//! and changes nothing; a loss of 10⁶ (deep compositions of powers) would otherwise fail its
//! small gradient entries on rounding alone.

use std::fmt;

use ndarray::{ArrayD, IxDyn};

use super::{Tape, Var};
use crate::{Error, Result};

/// Options of a gradient check (builder style); [`GradCheck::run`] performs it.
#[derive(Clone, Debug)]
pub struct GradCheck {
    eps: f64,
    hvp_eps: f64,
    atol: f64,
    rtol: f64,
    directions: usize,
    elementwise_limit: usize,
    hvp: bool,
    seed: u64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            eps: 1e-6,
            hvp_eps: 1e-5,
            atol: 1e-5,
            rtol: 1e-4,
            directions: 2,
            elementwise_limit: 64,
            hvp: true,
            seed: 0x5eed,
        }
    }
}

/// Errors for one input.
#[derive(Clone, Debug, PartialEq)]
pub struct InputReport {
    /// Position in the input list.
    pub index: usize,
    /// The input's shape.
    pub shape: Vec<usize>,
    /// Directional derivatives compared (unit vectors + random directions).
    pub checks: usize,
    /// max |analytic − numeric|.
    pub max_abs_error: f64,
    /// max |analytic − numeric| / max(|analytic|, |numeric|).
    pub max_rel_error: f64,
    /// Whether every check was within tolerance.
    pub passed: bool,
}

/// Errors of the Hessian-vector product check.
#[derive(Clone, Debug, PartialEq)]
pub struct HvpReport {
    /// Entries of H·v compared.
    pub checks: usize,
    /// max |analytic − numeric|.
    pub max_abs_error: f64,
    /// max relative error.
    pub max_rel_error: f64,
    /// Whether every entry was within tolerance.
    pub passed: bool,
}

/// The result of [`gradcheck`].
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckReport {
    /// One report per input.
    pub inputs: Vec<InputReport>,
    /// The second-order check, if run.
    pub hvp: Option<HvpReport>,
    /// Whether everything passed.
    pub passed: bool,
}

impl fmt::Display for GradCheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.inputs {
            writeln!(
                f,
                "input {} {:?}: {} checks, max abs error {:.2e}, max rel error {:.2e} — {}",
                r.index,
                r.shape,
                r.checks,
                r.max_abs_error,
                r.max_rel_error,
                if r.passed { "ok" } else { "FAILED" }
            )?;
        }
        if let Some(h) = &self.hvp {
            writeln!(
                f,
                "hvp: {} entries, max abs error {:.2e}, max rel error {:.2e} — {}",
                h.checks,
                h.max_abs_error,
                h.max_rel_error,
                if h.passed { "ok" } else { "FAILED" }
            )?;
        }
        write!(f, "{}", if self.passed { "gradcheck passed" } else { "gradcheck FAILED" })
    }
}

/// SplitMix64: a tiny deterministic generator for directions (no dependency, reproducible).
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    fn array(&mut self, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || self.uniform())
    }
}

#[derive(Default)]
struct Acc {
    checks: usize,
    abs: f64,
    rel: f64,
    passed: bool,
}

/// The rounding floor of the central difference `(plus − minus)/2ε` (module documentation).
fn roundoff(plus: f64, minus: f64, eps: f64) -> f64 {
    16.0 * f64::EPSILON * (plus.abs() + minus.abs()) / (2.0 * eps)
}

impl Acc {
    fn new() -> Self {
        Acc { passed: true, ..Default::default() }
    }
    fn add(&mut self, analytic: f64, numeric: f64, atol: f64, rtol: f64, roundoff: f64) {
        let abs = (analytic - numeric).abs();
        let scale = analytic.abs().max(numeric.abs());
        let rel = if scale > 0.0 { abs / scale } else { 0.0 };
        self.checks += 1;
        self.abs = self.abs.max(abs);
        self.rel = self.rel.max(rel);
        let within = abs <= atol + rtol * numeric.abs() + roundoff;
        if !within {
            self.passed = false;
        }
    }
}

impl GradCheck {
    /// Default options: ε = 1e−6 (1e−5 for H·v), atol 1e−5, rtol 1e−4, 2 random directions per
    /// input, unit vectors for inputs of ≤ 64 entries, H·v checked.
    pub fn new() -> Self {
        Self::default()
    }
    /// Finite-difference step of the first-order check.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    /// Finite-difference step of the H·v check.
    pub fn hvp_eps(mut self, eps: f64) -> Self {
        self.hvp_eps = eps;
        self
    }
    /// Absolute tolerance.
    pub fn atol(mut self, atol: f64) -> Self {
        self.atol = atol;
        self
    }
    /// Relative tolerance.
    pub fn rtol(mut self, rtol: f64) -> Self {
        self.rtol = rtol;
        self
    }
    /// Random directions per input.
    pub fn directions(mut self, n: usize) -> Self {
        self.directions = n;
        self
    }
    /// Inputs with at most this many entries are also checked along every unit vector.
    pub fn elementwise_limit(mut self, n: usize) -> Self {
        self.elementwise_limit = n;
        self
    }
    /// Whether to check Hessian-vector products too.
    pub fn hvp(mut self, on: bool) -> Self {
        self.hvp = on;
        self
    }
    /// Seed of the random directions.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks `f` at `inputs`. `f` records its computation on the tape it is given, from the
    /// input vars, and returns the output var (any shape).
    pub fn run<F>(&self, f: F, inputs: &[ArrayD<f64>]) -> Result<GradCheckReport>
    where
        F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
    {
        if !(self.eps > 0.0 && self.hvp_eps > 0.0) {
            return Err(Error::invalid("gradcheck eps", "must be positive"));
        }
        let mut rng = Rng(self.seed);
        // Output weights w: φ = ⟨w, f⟩.
        let out_shape = {
            let tape = Tape::new();
            let vars: Vec<_> = inputs.iter().map(|x| tape.var(x)).collect();
            let y = f(&tape, &vars);
            tape.status()?;
            y.shape()
        };
        let w = if out_shape.iter().product::<usize>() == 1 {
            ArrayD::ones(IxDyn(&out_shape))
        } else {
            rng.array(&out_shape)
        };
        let phi = |xs: &[ArrayD<f64>]| -> Result<f64> {
            let tape = Tape::new();
            let vars: Vec<_> = xs.iter().map(|x| tape.var(x)).collect();
            let y = f(&tape, &vars).value()?;
            Ok(y.iter().zip(w.iter()).map(|(a, b)| a * b).sum())
        };
        let grads = {
            let tape = Tape::new();
            let vars: Vec<_> = inputs.iter().map(|x| tape.var(x)).collect();
            let y = f(&tape, &vars);
            tape.vjp(y, &vars, &w)?
        };
        let mut reports = Vec::new();
        let mut xs: Vec<ArrayD<f64>> = inputs.iter().map(|x| x.as_standard_layout().into_owned()).collect();
        for (i, x) in inputs.iter().enumerate() {
            let mut acc = Acc::new();
            let mut dirs: Vec<ArrayD<f64>> = Vec::new();
            if x.len() <= self.elementwise_limit {
                for e in 0..x.len() {
                    let mut u = ArrayD::zeros(x.raw_dim());
                    u.as_slice_mut().expect("row-major")[e] = 1.0;
                    dirs.push(u);
                }
            }
            for _ in 0..self.directions {
                dirs.push(rng.array(x.shape()));
            }
            for u in dirs {
                let analytic: f64 = grads[i].iter().zip(u.iter()).map(|(g, u)| g * u).sum();
                xs[i] = x + &(&u * self.eps);
                let plus = phi(&xs)?;
                xs[i] = x - &(&u * self.eps);
                let minus = phi(&xs)?;
                xs[i] = x.as_standard_layout().into_owned();
                let r = roundoff(plus, minus, self.eps);
                acc.add(analytic, (plus - minus) / (2.0 * self.eps), self.atol, self.rtol, r);
            }
            reports.push(InputReport {
                index: i,
                shape: x.shape().to_vec(),
                checks: acc.checks,
                max_abs_error: acc.abs,
                max_rel_error: acc.rel,
                passed: acc.passed,
            });
        }
        let hvp = if self.hvp {
            let v: Vec<ArrayD<f64>> = inputs.iter().map(|x| rng.array(x.shape())).collect();
            let grad_at = |xs: &[ArrayD<f64>]| -> Result<Vec<ArrayD<f64>>> {
                let tape = Tape::new();
                let vars: Vec<_> = xs.iter().map(|x| tape.var(x)).collect();
                let y = f(&tape, &vars);
                let wv = tape.constant(&w);
                let s = (y * wv).sum();
                tape.grad(s, &vars)
            };
            let analytic = {
                let tape = Tape::new();
                let vars: Vec<_> = inputs.iter().map(|x| tape.var(x)).collect();
                let y = f(&tape, &vars);
                let wv = tape.constant(&w);
                let s = (y * wv).sum();
                tape.hvp(s, &vars, &v)?
            };
            let plus: Vec<_> = inputs.iter().zip(&v).map(|(x, d)| x + &(d * self.hvp_eps)).collect();
            let minus: Vec<_> = inputs.iter().zip(&v).map(|(x, d)| x - &(d * self.hvp_eps)).collect();
            let (gp, gm) = (grad_at(&plus)?, grad_at(&minus)?);
            let mut acc = Acc::new();
            for k in 0..inputs.len() {
                for ((a, p), m) in analytic[k].iter().zip(gp[k].iter()).zip(gm[k].iter()) {
                    let r = roundoff(*p, *m, self.hvp_eps);
                    acc.add(*a, (p - m) / (2.0 * self.hvp_eps), self.atol, self.rtol, r);
                }
            }
            Some(HvpReport {
                checks: acc.checks,
                max_abs_error: acc.abs,
                max_rel_error: acc.rel,
                passed: acc.passed,
            })
        } else {
            None
        };
        let passed = reports.iter().all(|r| r.passed) && hvp.as_ref().is_none_or(|h| h.passed);
        Ok(GradCheckReport { inputs: reports, hvp, passed })
    }
}

/// [`GradCheck::run`] with default options.
///
/// ```
/// use backprop::autodiff::gradcheck;
/// use ndarray::{array, ArrayD};
///
/// let x: ArrayD<f64> = array![[0.5, -1.0], [2.0, 0.3]].into_dyn();
/// let report = gradcheck(|_tape, v| (v[0].sin() * v[0]).sigmoid().sum(), &[x])?;
/// assert!(report.passed, "{report}");
/// # Ok::<(), backprop::Error>(())
/// ```
pub fn gradcheck<F>(f: F, inputs: &[ArrayD<f64>]) -> Result<GradCheckReport>
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
{
    GradCheck::new().run(f, inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn a_large_loss_does_not_fail_on_rounding_but_a_wrong_gradient_still_fails() {
        // φ = 1e8·x₁ + x₀: ∂φ/∂x₀ = 1 exactly, but φ± carry ~1e−8 of rounding, which the
        // quotient magnifies to ~1e−2 — a rounding floor, not an error of the derivative.
        fn big<'t>(t: &'t Tape<f64>, v: &[Var<'t, f64>]) -> Var<'t, f64> {
            (v[0] * t.constant(&array![1.0, 1e8].into_dyn())).sum()
        }
        let r = GradCheck::new().directions(0).hvp(false).run(big, &[array![0.3, 2.0].into_dyn()]).unwrap();
        assert!(r.passed, "{r}");
        // The floor scales with |φ|: on an O(1) loss a wrong slope of 1e−3 is still caught.
        assert!(roundoff(1.0, 1.0, 1e-6) < 1e-8);
        let mut acc = Acc::new();
        acc.add(1.001, 1.0, 1e-5, 1e-4, roundoff(1.0, 1.0, 1e-6));
        assert!(!acc.passed);
    }
}
