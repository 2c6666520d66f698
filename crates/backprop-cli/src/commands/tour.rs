//! `backprop tour`: the main job. Until the full tour lands it runs the notebook's checks.

use std::process::ExitCode;

/// Options of `backprop tour`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the tour.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    super::notebook::run(super::notebook::Args { json: false })
}
