//! How good a network is on data: the loss, accuracy for classification, RMSE for regression.
//!
//! Accuracy reads predictions the way each loss defines them: `cross_entropy` takes the
//! arg-max output as the class; `bce` predicts 1 where the logit is positive (σ(z) > ½), per
//! output; `squared_error`/`mse` on 0/1 targets (the notebook's versicolor-vs-virginica task)
//! count ŷ > ½ as 1. RMSE = √(mean over all elements of (ŷ − y)²) for regression losses.

use ndarray::ArrayView2;

use super::loss::Loss;
use super::mlp::Mlp;
use super::workspace::Workspace;
use crate::{Result, Scalar};

/// Sums from which a [`Metrics`] is formed, accumulated over batches.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MetricSums {
    /// Σ over batches of (batch loss × batch rows).
    pub loss_sum: f64,
    /// Rows seen.
    pub rows: usize,
    /// Correct predictions (of `decisions`).
    pub correct: usize,
    /// Decisions made: rows for `cross_entropy`, elements otherwise.
    pub decisions: usize,
    /// Σ (ŷ − y)² over elements.
    pub squared_error: f64,
    /// Elements of ŷ seen.
    pub elements: usize,
    /// Whether every target so far was 0 or 1 (accuracy is then meaningful for regression losses).
    pub binary_targets: bool,
}

/// The loss and metrics of a network on a data set.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// The mean loss (the loss's own definition of mean).
    pub loss: f64,
    /// Fraction correct, for classification (and 0/1-target regression).
    pub accuracy: Option<f64>,
    /// Root mean squared error, for regression losses.
    pub rmse: Option<f64>,
}

impl MetricSums {
    /// Empty sums.
    pub fn new() -> Self {
        MetricSums { binary_targets: true, ..Default::default() }
    }

    /// Adds one batch: its mean `loss`, outputs `out`, logits and targets `y`.
    pub fn add<T: Scalar>(
        &mut self,
        loss: Loss,
        batch_loss: f64,
        out: ArrayView2<'_, T>,
        logits: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
    ) {
        let n = out.nrows();
        self.loss_sum += batch_loss * n as f64;
        self.rows += n;
        match loss {
            Loss::CrossEntropy => {
                for (row, target) in out.outer_iter().zip(y.outer_iter()) {
                    let mut best = 0;
                    for j in 1..row.len() {
                        if row[j] > row[best] {
                            best = j;
                        }
                    }
                    self.correct += usize::from(best as f64 == target[0].f64());
                    self.decisions += 1;
                }
            }
            Loss::Bce => {
                for (&z, &t) in logits.iter().zip(y.iter()) {
                    self.correct += usize::from((z > T::zero()) == (t.f64() > 0.5));
                    self.decisions += 1;
                }
            }
            Loss::SquaredError | Loss::Mse => {
                for (&p, &t) in out.iter().zip(y.iter()) {
                    let r = (p - t).f64();
                    self.squared_error += r * r;
                    self.elements += 1;
                    let tf = t.f64();
                    self.binary_targets &= tf == 0.0 || tf == 1.0;
                    self.correct += usize::from((p.f64() > 0.5) == (tf > 0.5));
                    self.decisions += 1;
                }
            }
        }
    }

    /// The metrics of everything added.
    pub fn finish(&self, loss: Loss) -> Metrics {
        let mean_loss = if self.rows == 0 { f64::NAN } else { self.loss_sum / self.rows as f64 };
        let accuracy = (self.decisions > 0 && (loss.is_classification() || self.binary_targets))
            .then(|| self.correct as f64 / self.decisions as f64);
        let rmse = (!loss.is_classification() && self.elements > 0)
            .then(|| (self.squared_error / self.elements as f64).sqrt());
        Metrics { loss: mean_loss, accuracy, rmse }
    }
}

impl<T: Scalar> Mlp<T> {
    /// Loss, accuracy and RMSE on (x, y), in batches of at most `batch` rows (bounded memory).
    pub fn evaluate(
        &self,
        loss: Loss,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        batch: usize,
    ) -> Result<Metrics> {
        super::forward::check_finite(&x, "input data")?;
        super::backward::check_batch(self, loss, &x, &y)?;
        let mut ws = Workspace::new(self, batch.max(1).min(x.nrows()));
        Ok(self.evaluate_in(&mut ws, loss, x, y, batch))
    }

    /// [`Mlp::evaluate`] after the checks, with a caller's workspace.
    pub(crate) fn evaluate_in(
        &self,
        ws: &mut Workspace<T>,
        loss: Loss,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        batch: usize,
    ) -> Metrics {
        let batch = batch.max(1);
        let mut sums = MetricSums::new();
        let mut start = 0;
        while start < x.nrows() {
            let end = (start + batch).min(x.nrows());
            let (xb, yb) = (x.slice(ndarray::s![start..end, ..]), y.slice(ndarray::s![start..end, ..]));
            ws.forward_unchecked(self, xb);
            let l = ws.loss_unchecked(self, loss, yb, false);
            sums.add(loss, l, ws.output(), ws.logits(), yb);
            start = end;
        }
        sums.finish(loss)
    }
}

/// Fraction of rows whose arg-max of `scores` equals the class index in `labels` (n×1).
pub fn accuracy<T: Scalar>(scores: ArrayView2<'_, T>, labels: ArrayView2<'_, T>) -> f64 {
    let mut s = MetricSums::new();
    s.add(Loss::CrossEntropy, 0.0, scores, scores, labels);
    s.finish(Loss::CrossEntropy).accuracy.unwrap_or(f64::NAN)
}

/// √(mean (ŷ − y)²) over all elements.
pub fn rmse<T: Scalar>(pred: ArrayView2<'_, T>, target: ArrayView2<'_, T>) -> f64 {
    let mut s = MetricSums::new();
    s.add(Loss::Mse, 0.0, pred, pred, target);
    s.finish(Loss::Mse).rmse.unwrap_or(f64::NAN)
}
