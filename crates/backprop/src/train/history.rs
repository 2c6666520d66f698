//! The per-epoch record of a training run.

use std::fmt::Write as _;

/// What one epoch produced. Every field is deterministic (no wall-clock times), so a resumed
/// run's history equals an uninterrupted one's exactly.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean data loss over the epoch's minibatches (each evaluated before its update), weighted
    /// by batch size — for full-batch GD the loss at the start of the epoch.
    pub loss: f64,
    /// The L2 penalty (μ/2)‖w‖² at the end of the epoch (0 without one).
    pub penalty: f64,
    /// Training accuracy over the epoch (classification), as `loss`.
    pub accuracy: Option<f64>,
    /// Training RMSE over the epoch (regression), as `loss`.
    pub rmse: Option<f64>,
    /// Validation loss at the end of the epoch.
    pub val_loss: Option<f64>,
    /// Validation accuracy at the end of the epoch.
    pub val_accuracy: Option<f64>,
    /// Validation RMSE at the end of the epoch.
    pub val_rmse: Option<f64>,
}

impl EpochRecord {
    /// The classification or regression metric's name and value, if any.
    pub fn metric(&self) -> Option<(&'static str, f64)> {
        self.accuracy.map(|a| ("accuracy", a)).or(self.rmse.map(|r| ("rmse", r)))
    }
}

/// All epochs so far.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct History {
    /// One record per completed epoch, in order.
    pub epochs: Vec<EpochRecord>,
}

/// Column names of [`History::to_csv`], in order.
pub const CSV_COLUMNS: [&str; 8] =
    ["epoch", "loss", "penalty", "accuracy", "rmse", "val_loss", "val_accuracy", "val_rmse"];

impl History {
    /// The last record.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }

    /// CSV with a header row ([`CSV_COLUMNS`]); missing values are empty fields. Floats are
    /// written in Rust's shortest round-trip form, so reading them back is exact.
    pub fn to_csv(&self) -> String {
        let mut s = CSV_COLUMNS.join(",");
        s.push('\n');
        let opt = |v: Option<f64>| v.map(|v| format!("{v:?}")).unwrap_or_default();
        for r in &self.epochs {
            let _ = writeln!(
                s,
                "{},{:?},{:?},{},{},{},{},{}",
                r.epoch,
                r.loss,
                r.penalty,
                opt(r.accuracy),
                opt(r.rmse),
                opt(r.val_loss),
                opt(r.val_accuracy),
                opt(r.val_rmse)
            );
        }
        s
    }

    /// One column as (epoch, value) pairs, skipping missing values; `name` from [`CSV_COLUMNS`].
    pub fn column(&self, name: &str) -> Vec<(usize, f64)> {
        self.epochs
            .iter()
            .filter_map(|r| {
                let v = match name {
                    "loss" => Some(r.loss),
                    "penalty" => Some(r.penalty),
                    "accuracy" => r.accuracy,
                    "rmse" => r.rmse,
                    "val_loss" => r.val_loss,
                    "val_accuracy" => r.val_accuracy,
                    "val_rmse" => r.val_rmse,
                    _ => None,
                };
                v.map(|v| (r.epoch, v))
            })
            .collect()
    }
}
