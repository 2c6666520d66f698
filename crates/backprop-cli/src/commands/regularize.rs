//! `backprop regularize`: the notebook's L2-shrinkage prediction at a trained model, checked by
//! actually minimising the penalised loss.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use backprop::curvature::{Curvature, ShrinkageAnalysis, ShrinkageReport};
use backprop::io::{write_json, write_npy};
use backprop::nn::{Loss, ParamSelection};
use ndarray::Array2;
use serde_json::json;

use super::hessian::parse_curvature;
use super::model_data::{ModelDataArgs, load_model_and_data};
use crate::plot::Chart;

/// The minimiser forms dense Hessians of all parameters: above this it would take too long.
pub const MAX_PARAMS: usize = 5000;

/// Options of `backprop regularize`.
#[derive(clap::Args)]
#[command(
    about = "Predict how an L2 penalty (μ/2)‖w‖² moves the trained weights, and check it",
    long_about = "The notebook's bonus, in numbers. At the trained weights w* with Hessian H = QΛQᵀ (weights only, \
biases excluded as in the notebook), an L2 penalty (μ/2)‖w‖² moves the optimum to\n\n  \
w̃ = Q(Λ + μI)⁻¹ΛQᵀw*,   i.e. qᵢᵀw̃ = λᵢ/(λᵢ + μ)·qᵢᵀw*:\n\n\
directions with λᵢ ≫ μ keep their weight, directions with λᵢ ≪ μ shrink to ~0. For each μ this command \
computes that prediction, then actually minimises L(w) + (μ/2)‖w‖² from w* (damped Newton with the exact \
Hessian; biases free and re-optimised, never penalised) and reports the relative error ‖w̃ − w_μ‖/‖w_μ‖ \
and, per eigen-direction, the measured ratio (qᵢᵀw_μ)/(qᵢᵀw*) next to the predicted λᵢ/(λᵢ + μ).\n\n\
Where the quadratic model's assumptions fail it says so: the gradient norm at w* (is it a minimum?), \
negative and tiny eigenvalues, degenerate eigenspaces, and how the error grows with μ. relative_error_joint \
is the prediction that also accounts for the free biases, (H_all + μM)⁻¹H_all w*; \
relative_error_gauss_newton uses the positive semi-definite Gauss-Newton matrix instead of H.\n\n\
When w* is no minimum at all (separable classes drive ‖w‖ → ∞; a saddle; unconverged training), \
--base-mu μ₀ analyses the strict minimum w*₀ of L + (μ₀/2)‖w‖² instead, and each --mu as an extra penalty on \
top of μ₀.",
    after_help = "Examples:\n  backprop regularize --model runs/iris --data iris --mu 0.001,0.01,0.1,1 --out runs/iris/l2\n  \
backprop regularize --model runs/iris --data iris --mu 0.01 --json | jq '.results[0].relative_error'"
)]
pub struct Args {
    /// The model, the data and the loss.
    #[command(flatten)]
    pub input: ModelDataArgs,
    /// Penalty strengths μ, comma-separated, each > 0.
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    pub mu: Vec<f64>,
    /// Which parameters the spectral analysis covers: `weights` (the notebook) or `all`.
    #[arg(long, default_value = "weights")]
    pub params: ParamSelection,
    /// The curvature of the prediction: `hessian` or `gauss-newton` (positive semi-definite).
    #[arg(long, default_value = "hessian", value_parser = parse_curvature)]
    pub curvature: Curvature,
    /// A base penalty μ₀ > 0: first minimise L + (μ₀/2)‖w‖² from the model's weights to a strict
    /// minimum w*₀, then analyse each --mu as an *extra* penalty on top (H₀ = H + μ₀I, measured
    /// against the minimiser of L + ((μ₀ + μ)/2)‖w‖²). For weights that are no minimum of L:
    /// separable classes (‖w‖ → ∞), saddles, unconverged training.
    #[arg(long, default_value_t = 0.0)]
    pub base_mu: f64,
    /// How many eigen-directions to list at each end of the spectrum in the table.
    #[arg(long, default_value_t = 8)]
    pub show: usize,
    /// Print one JSON object: n_params, eigenvalues, diagnostics, results (one per μ: mu, relative_error, …).
    #[arg(long)]
    pub json: bool,
    /// Write regularize.json, shrinkage.png/.svg, prediction_error.png/.svg and the weight vectors (.npy) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode> {
    for &m in &args.mu {
        if !(m.is_finite() && m > 0.0) {
            bail!("invalid --mu: every μ must be a finite number > 0, got {m}");
        }
    }
    if !(args.base_mu.is_finite() && args.base_mu >= 0.0) {
        bail!("invalid --base-mu: must be a finite number ≥ 0, got {}", args.base_mu);
    }
    let md = load_model_and_data(&args.input)?;
    let n_all = md.model.num_params(ParamSelection::All);
    if n_all > MAX_PARAMS {
        bail!(
            "the model has {n_all} parameters; regularize minimises with dense Newton steps and supports up to {MAX_PARAMS} \
(use `backprop hessian` for spectra of larger models)"
        );
    }
    let bar = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(args.mu.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} μ")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message("minimising L(w) + (μ/2)‖w‖²");
        b
    };
    let analysis = ShrinkageAnalysis::new(args.mu.clone())
        .params(args.params)
        .curvature(args.curvature)
        .base_mu(args.base_mu);
    let report =
        analysis.run_with_progress(&md.model, md.x.view(), md.y.view(), md.loss, &mut |done, _| {
            bar.set_position(done as u64)
        })?;
    bar.finish_and_clear();

    let mut value = serde_json::to_value(&report)?;
    value["loss_name"] = json!(md.loss.name());
    value["n_samples"] = json!(md.x.nrows());
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating --out {}", out.display()))?;
        let mut files = Vec::new();
        files.extend(shrinkage_chart(&report).write(out.join("shrinkage"))?);
        files.extend(error_chart(&report).write(out.join("prediction_error"))?);
        let stack = |f: &dyn Fn(&backprop::curvature::shrinkage::MuResult) -> Vec<f64>| {
            let rows: Vec<Vec<f64>> = report.results.iter().map(f).collect();
            Array2::from_shape_fn((rows.len(), report.n_params), |(i, j)| rows[i][j])
        };
        write_npy(out.join("predicted_weights.npy"), &stack(&|r| r.predicted.to_vec()))?;
        write_npy(out.join("measured_weights.npy"), &stack(&|r| r.measured.to_vec()))?;
        write_npy(out.join("eigenvectors.npy"), &report.eigenvectors)?;
        files.push(out.join("predicted_weights.npy"));
        files.push(out.join("measured_weights.npy"));
        files.push(out.join("eigenvectors.npy"));
        value["files"] = json!(files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
        write_json(out.join("regularize.json"), &value)?;
        if !args.json {
            println!(
                "wrote {}",
                files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&value)?);
    } else {
        print!("{}", render(&report, md.loss, args.show));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(r: &ShrinkageReport, loss: Loss, show: usize) -> String {
    let d = &r.diagnostics;
    let mut s = format!(
        "L2 shrinkage at w*: {} parameters analysed ({}; {} in the minimisation, biases free), {} loss {:.6e}, curvature: {}\n",
        r.n_params, r.params, r.n_params_all, loss, r.loss, r.curvature
    );
    if let Some(b) = &r.base_minimizer {
        s += &format!(
            "  base penalty μ₀ = {:.3e}: w* is the minimum of L + (μ₀/2)‖w‖² reached from the model's weights ({}, {} steps, ‖∇F‖ {:.1e}, {}); μ below is extra, H includes μ₀I\n",
            r.base_mu,
            if b.converged { "converged" } else { "NOT converged" },
            b.iterations,
            b.grad_norm,
            if b.positive_definite { "a strict minimum" } else { "NOT positive definite" },
        );
    }
    s += &format!(
        "  ‖∇L(w*)‖ = {:.2e} (all parameters {:.2e}); quadratic model's own minimum is {:.2e}·‖w*‖ away\n",
        d.grad_norm, d.grad_norm_all, d.relative_newton_step
    );
    s += &format!(
        "  eigenvalues: max {:.4e}, min {:.4e}; negative {}, tiny (|λ| ≤ {:.1e}) {}, degenerate groups {}; condition {:.3e}\n\n",
        r.eigenvalues.first().copied().unwrap_or(f64::NAN),
        r.eigenvalues.last().copied().unwrap_or(f64::NAN),
        d.negative_eigenvalues,
        d.tiny_threshold,
        d.tiny_eigenvalues,
        d.degenerate_groups,
        d.condition_number
    );
    s += "         μ   rel. error   joint (biases)   Gauss-Newton     ‖w*‖      ‖w̃‖     ‖w_μ‖   minimiser\n";
    let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3e}"));
    for res in &r.results {
        s += &format!(
            "  {:>8.1e}   {:>10.3e}   {:>14}   {:>12}   {:>7.4}  {:>7.4}  {:>7.4}   {} ({} steps, ‖∇F‖ {:.1e})\n",
            res.mu,
            res.relative_error,
            opt(res.relative_error_joint),
            opt(res.relative_error_gauss_newton),
            res.norm_start,
            res.norm_predicted,
            res.norm_measured,
            if res.minimizer.converged { "converged" } else { "NOT converged" },
            res.minimizer.iterations,
            res.minimizer.grad_norm
        );
    }
    if let Some(p) = d.error_growth_exponent {
        s += &format!("  relative error ∝ μ^{p:.2} over this μ range");
        if let Some(pj) = d.error_growth_exponent_joint {
            s += &format!(" (joint: μ^{pj:.2}; ≈ 2 where the quadratic model holds)");
        }
        s += "\n";
    }
    s += "\nPer eigen-direction: predicted λ/(λ+μ) | measured (qᵀw_μ)/(qᵀw*)\n      i            λᵢ";
    for res in &r.results {
        s += &format!("   μ={:<8.1e}        ", res.mu);
    }
    s += "\n";
    let n = r.eigenvalues.len();
    let rows: Vec<usize> =
        if n <= 2 * show { (0..n).collect() } else { (0..show).chain(n - show..n).collect() };
    for (pos, &i) in rows.iter().enumerate() {
        if pos == show && n > 2 * show {
            s += "    ...\n";
        }
        s += &format!("  {:>5}  {:>12.4e}", i + 1, r.eigenvalues[i]);
        for res in &r.results {
            let dir = &res.directions[i];
            let m = dir.measured.map_or("     —".to_string(), |m| format!("{m:>7.4}"));
            s += &format!("   {:>7.4} | {m}    ", dir.predicted);
        }
        s += "\n";
    }
    for w in &d.warnings {
        s += &format!("warning: {w}\n");
    }
    s
}

/// Predicted factor λ/(λ+μ) (lines) and measured ratios (points) against λ, one colour per μ.
fn shrinkage_chart(r: &ShrinkageReport) -> Chart {
    let mut c = Chart::new(
        "L2 shrinkage per eigen-direction: predicted λ/(λ+μ) (lines) vs measured (qᵀw_μ)/(qᵀw*) (points)",
        "eigenvalue λᵢ",
        "shrinkage factor",
    )
    .log_x();
    for res in &r.results {
        let mut pred: Vec<(f64, f64)> = res
            .directions
            .iter()
            .filter(|d| d.eigenvalue > 0.0)
            .map(|d| (d.eigenvalue, d.predicted))
            .collect();
        pred.sort_by(|a, b| a.0.total_cmp(&b.0));
        let meas: Vec<(f64, f64)> = res
            .directions
            .iter()
            .filter(|d| d.eigenvalue > 0.0)
            .filter_map(|d| d.measured.map(|m| (d.eigenvalue, m.clamp(-0.5, 1.5))))
            .collect();
        c = c.line(format!("predicted μ = {:.0e}", res.mu), pred);
        c = c.series_styled(
            format!("measured μ = {:.0e}", res.mu),
            meas,
            crate::plot::Style::Points(crate::plot::Marker::Circle),
        );
    }
    let skipped = r.eigenvalues.iter().filter(|&&l| l <= 0.0).count();
    let mut note = String::from("measured ratios clamped to [−0.5, 1.5]");
    if skipped > 0 {
        note += &format!("; {skipped} directions with λ ≤ 0 not shown on the log axis");
    }
    c.note(note)
}

/// Relative prediction error against μ (log-log).
fn error_chart(r: &ShrinkageReport) -> Chart {
    let mut c = Chart::new("Prediction error of the quadratic model vs L2 strength", "μ", "‖w̃ − w_μ‖/‖w_μ‖")
        .log_x()
        .log_y();
    c = c.line("notebook formula Q(Λ+μI)⁻¹ΛQᵀw*", r.results.iter().map(|x| (x.mu, x.relative_error)));
    if r.n_params < r.n_params_all {
        c = c.line(
            "joint, biases free",
            r.results.iter().filter_map(|x| Some((x.mu, x.relative_error_joint?))),
        );
    }
    if r.results.iter().any(|x| x.relative_error_gauss_newton.is_some()) {
        let name = if r.curvature == Curvature::Hessian {
            "Gauss-Newton instead of H"
        } else {
            "Hessian instead of GGN"
        };
        c = c.line(name, r.results.iter().filter_map(|x| Some((x.mu, x.relative_error_gauss_newton?))));
    }
    c
}
