//! The loss and metric curves of a training run, as PNG and SVG (`loss.png`/`loss.svg`,
//! `accuracy.*` or `rmse.*`), drawn by the shared [`crate::plot`] module with its bundled font.

use std::path::Path;

use anyhow::Result;
use backprop::train::History;

use crate::plot::Chart;

/// Writes the curves of `h` into `out` (nothing for an empty history).
pub fn write(out: &Path, h: &History) -> Result<()> {
    if h.epochs.is_empty() {
        return Ok(());
    }
    let points =
        |name: &str| -> Vec<(f64, f64)> { h.column(name).into_iter().map(|(e, v)| (e as f64, v)).collect() };
    let positive = |p: &[(f64, f64)]| p.iter().all(|&(_, v)| v > 0.0 && v.is_finite());
    let (train, val) = (points("loss"), points("val_loss"));
    let mut c = Chart::new("Loss per epoch", "epoch", "loss").integer_x().line("training", train.clone());
    if !val.is_empty() {
        c = c.line("validation", val.clone());
    }
    if positive(&train) && positive(&val) {
        c = c.log_y();
    }
    c.write(out.join("loss"))?;
    for metric in ["accuracy", "rmse"] {
        let (t, v) = (points(metric), points(&format!("val_{metric}")));
        if t.is_empty() && v.is_empty() {
            continue;
        }
        let mut c = Chart::new(
            format!("{} per epoch", if metric == "rmse" { "RMSE" } else { "Accuracy" }),
            "epoch",
            metric,
        )
        .integer_x();
        if !t.is_empty() {
            c = c.line("training", t);
        }
        if !v.is_empty() {
            c = c.line("validation", v);
        }
        c.write(out.join(metric))?;
    }
    Ok(())
}
