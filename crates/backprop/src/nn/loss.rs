//! The loss functions a network can be trained with (names as on the command line).

use std::fmt;
use std::str::FromStr;

use ndarray::ArrayView2;

use super::activation::Activation;
use crate::notebook::stable_sigmoid;
use crate::tensor::vmath::{lane_sum, vectorized};
use crate::{Error, Result, Scalar};

/// A training loss. Every loss is a mean over samples, so its scale does not depend on the
/// batch size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// The notebook's ½‖ŷ − y‖², summed over outputs, mean over samples.
    SquaredError,
    /// Mean over all elements of (ŷ − y)² (PyTorch's `MSELoss`).
    Mse,
    /// Binary cross-entropy; on a sigmoid output layer it is computed from the logits (stable).
    Bce,
    /// Softmax cross-entropy on class indices, from the logits, mean over samples.
    CrossEntropy,
}

impl Loss {
    /// All losses.
    pub const ALL: [Loss; 4] = [Loss::SquaredError, Loss::Mse, Loss::Bce, Loss::CrossEntropy];

    /// The name used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Loss::SquaredError => "squared_error",
            Loss::Mse => "mse",
            Loss::Bce => "bce",
            Loss::CrossEntropy => "cross_entropy",
        }
    }

    /// Whether targets are class labels (accuracy is the metric) or real values (RMSE).
    pub fn is_classification(self) -> bool {
        matches!(self, Loss::Bce | Loss::CrossEntropy)
    }
}

impl Loss {
    /// Checks that this loss fits a network whose output layer has activation `output` and
    /// `outputs` units: `bce` needs a sigmoid output (computed from its logits) or an identity
    /// output (the outputs *are* the logits); `cross_entropy` treats the network's outputs as
    /// logits (an identity output is usual) and needs at least two of them.
    pub fn check_output(self, output: Activation, outputs: usize) -> Result<()> {
        match self {
            Loss::Bce if !matches!(output, Activation::Sigmoid | Activation::Identity) => {
                Err(Error::invalid(
                    "loss",
                    format!("bce needs a sigmoid output layer (or identity, read as logits), not {output}"),
                ))
            }
            Loss::CrossEntropy if outputs < 2 => Err(Error::invalid(
                "loss",
                format!(
                    "cross_entropy needs at least 2 outputs (one logit per class), the network has {outputs}"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The target width this loss expects for a network with `outputs` units: one column of
    /// class indices for `cross_entropy`, `outputs` columns otherwise.
    pub fn target_width(self, outputs: usize) -> usize {
        if self == Loss::CrossEntropy { 1 } else { outputs }
    }

    /// Checks targets `y` (n×[`Loss::target_width`]): finite; for `bce` in [0, 1]; for
    /// `cross_entropy` whole numbers in `0..outputs`. Errors name the row and column.
    pub fn check_targets<T: Scalar>(self, y: ArrayView2<'_, T>, outputs: usize) -> Result<()> {
        let want = self.target_width(outputs);
        if y.ncols() != want {
            return Err(Error::shape(
                self.name(),
                format!(
                    "targets have {} columns but {} on a network with {outputs} outputs needs {want}{}",
                    y.ncols(),
                    self.name(),
                    if self == Loss::CrossEntropy { " (the class index)" } else { "" }
                ),
            ));
        }
        for ((i, j), &v) in y.indexed_iter() {
            let bad = match self {
                _ if !v.is_finite() => Some("is not finite".to_string()),
                Loss::Bce if v < T::zero() || v > T::one() => Some("is outside [0, 1]".into()),
                Loss::CrossEntropy
                    if v < T::zero() || v.fract() != T::zero() || v.f64() >= outputs as f64 =>
                {
                    Some(format!("is not a class index in 0..{outputs}"))
                }
                _ => None,
            };
            if let Some(why) = bad {
                return Err(Error::invalid("targets", format!("row {i}, column {j}: {v} {why}")));
            }
        }
        Ok(())
    }

    /// The loss of a batch and, if `delta` is given, δ = ∂L/∂z of the output layer's
    /// pre-activations, written into `delta` (n×t, row-major, same layout as `logits`).
    ///
    /// `logits` holds z and `out` holds ŷ = f(z) (both n×t row-major); `y` the targets, checked by
    /// [`Loss::check_targets`]. With r = ŷ − y:
    ///
    /// ```text
    /// squared_error  L = (1/n) Σ ½ r²            δ = r f'(z) / n
    /// mse            L = (1/(n t)) Σ r²           δ = 2 r f'(z) / (n t)
    /// bce            L = (1/(n t)) Σ softplus(z) − y z      δ = (σ(z) − y) / (n t)
    /// cross_entropy  L = (1/n) Σ logsumexp(ŷ) − ŷ_c         δ = (softmax(ŷ) − e_c) f'(z) / n
    /// ```
    ///
    /// (bce on an identity output reads ŷ = z as the logits.) Sums run in f64.
    pub(crate) fn value_and_delta<T: Scalar>(
        self,
        activation: Activation,
        logits: &[T],
        out: &[T],
        y: ArrayView2<'_, T>,
        t: usize,
        mut delta: Option<&mut [T]>,
    ) -> f64 {
        let n = y.nrows();
        debug_assert_eq!(logits.len(), n * t);
        debug_assert_eq!(out.len(), n * t);
        let nf = n as f64;
        let mut sum = 0.0f64;
        match self {
            Loss::SquaredError | Loss::Mse => {
                let scale = if self == Loss::SquaredError { 1.0 / nf } else { 2.0 / (nf * t as f64) };
                let s = T::of(scale);
                for i in 0..n {
                    for j in 0..t {
                        let k = i * t + j;
                        let r = out[k] - y[[i, j]];
                        sum += r.f64() * r.f64();
                        if let Some(d) = delta.as_deref_mut() {
                            d[k] = r * s * activation.derivative_from_output(out[k]);
                        }
                    }
                }
                if self == Loss::SquaredError { 0.5 * sum / nf } else { sum / (nf * t as f64) }
            }
            Loss::Bce => {
                let s = T::of(1.0 / (nf * t as f64));
                for i in 0..n {
                    for j in 0..t {
                        let k = i * t + j;
                        let z = logits[k];
                        let yv = y[[i, j]];
                        // softplus(z) − y z = max(z, 0) − y z + ln(1 + e^−|z|): no overflow.
                        let zf = z.f64();
                        sum += zf.max(0.0) - yv.f64() * zf + (-zf.abs()).exp().ln_1p();
                        if let Some(d) = delta.as_deref_mut() {
                            d[k] = (stable_sigmoid(z) - yv) * s;
                        }
                    }
                }
                sum / (nf * t as f64)
            }
            Loss::CrossEntropy => {
                let s = T::of(1.0 / nf);
                // e^(ŷ−m) ≤ 1 by the branch-free exp, vectorised and summed in lanes, on both
                // paths (the same sum for the loss alone and with δ). Terms below the smallest
                // normal number count as 0: subnormal arithmetic is slow on x86 and they cannot
                // change the sum. (784-…-1000 at batch 1024: libm's expf and one chain of
                // dependent additions were 13 % of a training step.)
                let floor = T::min_positive_value().ln();
                for i in 0..n {
                    let row = &out[i * t..(i + 1) * t];
                    let c = y[[i, 0]].f64() as usize;
                    let m = row.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
                    let term = |v: T| {
                        let x = v - m;
                        let e = x.exp_nonpositive();
                        if x < floor { T::zero() } else { e }
                    };
                    // ℓ = logsumexp(ŷ) − ŷ_c = m + ln Σ e^(ŷ−m) − ŷ_c
                    let e = match delta.as_deref_mut() {
                        Some(d) => {
                            let d = &mut d[i * t..(i + 1) * t];
                            let e = vectorized(
                                #[inline(always)]
                                || {
                                    d.iter_mut().zip(row).for_each(|(dj, &v)| *dj = term(v));
                                    lane_sum(d, |v| v)
                                },
                            );
                            // δ = (softmax − e_c) f'(z) / n
                            let scale = s / e;
                            for (j, (dj, &v)) in d.iter_mut().zip(row).enumerate() {
                                let g = if j == c { *dj - e } else { *dj };
                                *dj = g * scale * activation.derivative_from_output(v);
                            }
                            e
                        }
                        None => vectorized(
                            #[inline(always)]
                            || lane_sum(row, term),
                        ),
                    };
                    sum += m.f64() + e.f64().ln() - row[c].f64();
                }
                sum / nf
            }
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Loss::ALL.into_iter().find(|l| l.name() == s).ok_or_else(|| {
            let names: Vec<_> = Loss::ALL.iter().map(|l| l.name()).collect();
            Error::invalid("loss", format!("`{s}` is not one of {}", names.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Softmax cross-entropy over many classes (37: two 16-lane chunks and a remainder; logits
    /// down to −900, below every floor) against the textbook formulas in f64.
    fn cross_entropy_matches_the_formula<T: Scalar>(tol: f64) {
        let (n, t) = (5, 37);
        let z: Vec<T> = (0..n * t)
            .map(|k| T::of(if k % 11 == 3 { -900.0 } else { ((k * 37 % 101) as f64 - 50.0) * 0.3 }))
            .collect();
        let y = Array2::from_shape_fn((n, 1), |(i, _)| T::of((i * 7 % t) as f64));
        let mut delta = vec![T::zero(); n * t];
        let loss =
            Loss::CrossEntropy.value_and_delta(Activation::Identity, &z, &z, y.view(), t, Some(&mut delta));
        let plain = Loss::CrossEntropy.value_and_delta(Activation::Identity, &z, &z, y.view(), t, None);
        let mut want = 0.0;
        for i in 0..n {
            let row: Vec<f64> = z[i * t..(i + 1) * t].iter().map(|v| v.f64()).collect();
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: f64 = row.iter().map(|v| (v - m).exp()).sum();
            let c = i * 7 % t;
            want += (m + e.ln() - row[c]) / n as f64;
            for (j, v) in row.iter().enumerate() {
                let d = ((v - m).exp() / e - if j == c { 1.0 } else { 0.0 }) / n as f64;
                assert!((delta[i * t + j].f64() - d).abs() <= tol, "δ[{i},{j}] {} vs {d}", delta[i * t + j]);
            }
        }
        assert!((loss - want).abs() <= tol * want.abs(), "{loss} vs {want}");
        assert!((plain - want).abs() <= tol * want.abs(), "{plain} vs {want}");
        assert_eq!(plain, loss, "the loss alone and with δ are the same sum");
    }

    #[test]
    fn cross_entropy_over_many_classes_matches_the_formula() {
        cross_entropy_matches_the_formula::<f32>(1e-6);
        cross_entropy_matches_the_formula::<f64>(1e-14);
    }
}
