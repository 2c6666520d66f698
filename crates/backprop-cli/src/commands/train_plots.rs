//! The loss and metric curves of a training run, as PNG and SVG.
//!
//! Placeholder until the shared plotting module lands: writes nothing.

use std::path::Path;

use anyhow::Result;
use backprop::train::History;

/// Writes `loss.{png,svg}` and `metric.{png,svg}` into `out`.
pub fn write(_out: &Path, _h: &History) -> Result<()> {
    Ok(())
}
