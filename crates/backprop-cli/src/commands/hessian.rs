//! `backprop hessian`: the exact Hessian of a trained model's loss on a dataset, and its spectrum.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use backprop::curvature::{
    Curvature, Lanczos, MlpObjective, Objective, SymmetricOperator, eigh, hutchinson_trace,
};
use backprop::io::{write_json, write_npy};
use backprop::nn::ParamSelection;
use ndarray::{Array1, Array2};
use serde_json::json;

use super::model_data::{ModelDataArgs, load_model_and_data};
use crate::plot::Chart;

/// Above this many parameters the dense Hessian is not formed unless `--full` is given.
pub const DENSE_LIMIT: usize = 4000;
/// Up to this many parameters the JSON report carries the Hessian as a nested array.
pub const JSON_HESSIAN_LIMIT: usize = 2000;

/// Options of `backprop hessian`.
#[derive(clap::Args)]
#[command(
    about = "The exact Hessian of a model's loss on a dataset, and its eigenvalues",
    long_about = "The exact Hessian H = ∇²L(w) of a trained model's loss on a dataset, with respect to its \
weights (biases excluded, as in the notebook; `--params all` includes them), and its spectrum.\n\n\
Parameter order (rows and columns of hessian.npy): layers in order, each weight flattened row-major in \
its model-file (out×in) layout, then that layer's bias when biases are included. With biases excluded \
the Hessian is taken at the model's bias values.\n\n\
Up to 4000 parameters (or with --full) the Hessian is formed exactly from batched Hessian-vector \
products and fully eigendecomposed (faer); beyond that, Lanczos with full reorthogonalisation finds \
the top-k and bottom-k eigenvalues (with residual norms) and the Hutchinson estimator the trace.\n\n\
The data is standardised with the model's saved normalisation before the loss is computed, exactly \
as in training.",
    after_help = "Examples:\n  backprop hessian --model runs/iris --data iris --out runs/iris/hessian\n  \
backprop hessian --model runs/wine --data wine.csv --target quality --params all --json | jq .eigenvalues[0]"
)]
pub struct Args {
    /// The model, the data and the loss.
    #[command(flatten)]
    pub input: ModelDataArgs,
    /// Which parameters: `weights` (the notebook's convention) or `all` (weights and biases).
    #[arg(long, default_value = "weights")]
    pub params: ParamSelection,
    /// `hessian`, or `gauss-newton` for the positive semi-definite generalised Gauss-Newton matrix.
    #[arg(long, default_value = "hessian", value_parser = parse_curvature)]
    pub curvature: Curvature,
    /// How many of the largest (and, for Lanczos, smallest) eigenvalues to list.
    #[arg(long, default_value_t = 10, value_parser = parse_top_k)]
    pub top_k: usize,
    /// Form the dense Hessian even above 4000 parameters, and put it in the JSON at any size.
    #[arg(long)]
    pub full: bool,
    /// Print one JSON object (n_params, eigenvalues (decreasing), hessian when n ≤ 2000 or --full, …).
    #[arg(long)]
    pub json: bool,
    /// Write hessian.npy, eigenvalues.npy, eigenvectors.npy, spectrum.png/.svg and hessian.json here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Parses `hessian` / `gauss-newton` (also `ggn`, `gauss_newton`).
/// `--top-k`: at least one eigenvalue (0 would list nothing, and Lanczos needs a target).
fn parse_top_k(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(k) => Ok(k),
        Err(e) => Err(format!("not a count: {e}")),
    }
}

pub fn parse_curvature(s: &str) -> std::result::Result<Curvature, String> {
    match s {
        "hessian" => Ok(Curvature::Hessian),
        "gauss-newton" | "gauss_newton" | "ggn" => Ok(Curvature::GaussNewton),
        other => Err(format!("`{other}` is not one of hessian, gauss-newton")),
    }
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode> {
    let md = load_model_and_data(&args.input)?;
    let obj = MlpObjective::new(&md.model, md.x.view(), md.y.view(), md.loss)?.params(args.params);
    let n = obj.dim();
    let w = obj.initial();
    let (loss_value, grad) = obj.value_grad(w.view())?;
    let grad_norm = grad.dot(&grad).sqrt();
    let kind_name = match args.curvature {
        Curvature::Hessian => "Hessian",
        Curvature::GaussNewton => "Gauss-Newton matrix",
    };
    let dense = n <= DENSE_LIMIT || args.full;
    let mut report = json!({
        "n_params": n,
        "params": args.params.to_string(),
        "curvature": args.curvature.to_string(),
        "loss": md.loss.name(),
        "n_samples": obj.samples(),
        "loss_value": loss_value,
        "gradient_norm": grad_norm,
        "method": if dense { "dense" } else { "lanczos" },
        "parameter_order": "layers in order; each weight row-major (out×in), then its bias when included",
    });
    let mut text = String::new();
    let spectrum: Vec<f64>;
    let mut hessian: Option<Array2<f64>> = None;
    let mut vectors: Option<Array2<f64>> = None;
    if dense {
        let op = obj.curvature_at(w.view(), args.curvature)?;
        let h = op.to_dense()?;
        let e = eigh(h.view())?;
        let trace: f64 = h.diag().sum();
        let negatives = e.values.iter().filter(|&&v| v < 0.0).count();
        let cond = e.condition_number();
        spectrum = e.values.to_vec();
        report["eigenvalues"] = json!(spectrum);
        report["trace"] = json!(trace);
        report["condition_number"] = json!(cond);
        report["negative_eigenvalues"] = json!(negatives);
        report["lambda_max"] = json!(e.values.first());
        report["lambda_min"] = json!(e.values.last());
        if n <= JSON_HESSIAN_LIMIT || args.full {
            report["hessian"] = json!(h.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>());
        }
        text += &format!(
            "{kind_name} of the {} loss on {} samples w.r.t. {n} parameters ({}; exact, dense)\n",
            md.loss,
            obj.samples(),
            args.params
        );
        text += &format!("  loss {loss_value:.6e}   ‖∇L‖ {grad_norm:.3e}\n");
        text += &format!(
            "  trace {trace:.6e}   condition number |λ|max/|λ|min {cond:.3e}   negative eigenvalues {negatives} of {n}\n"
        );
        let idx: Vec<usize> = (1..=n).collect();
        text += &eigen_table(&spectrum, &idx, args.top_k, None);
        hessian = Some(h);
        vectors = Some(e.vectors);
    } else {
        let op = obj.curvature_at(w.view(), args.curvature)?;
        let k = args.top_k.max(1);
        let r = Lanczos::new().top(k).bottom(k).max_steps(400).tol(1e-8).run(&op)?;
        let tr = hutchinson_trace(&op, 64, 0)?;
        let mut values: Vec<f64> = r.top_values.iter().chain(r.bottom_values.iter().rev()).copied().collect();
        let mut residuals: Vec<f64> =
            r.top_residuals.iter().chain(r.bottom_residuals.iter().rev()).copied().collect();
        if values.len() > n {
            values.truncate(n);
            residuals.truncate(n);
        }
        let negatives = r.bottom_values.iter().filter(|&&v| v < 0.0).count();
        let cond_estimate = values.iter().fold(0.0f64, |a, v| a.max(v.abs()))
            / values.iter().fold(f64::INFINITY, |a, v| a.min(v.abs()));
        spectrum = values.clone();
        report["eigenvalues"] = json!(values);
        report["residuals"] = json!(residuals);
        report["lanczos_steps"] = json!(r.steps);
        report["lanczos_converged"] = json!(r.converged);
        report["trace"] = json!(tr.trace);
        report["trace_std_error"] = json!(tr.std_error);
        report["condition_number"] = json!(cond_estimate);
        report["negative_eigenvalues"] = json!(negatives);
        report["lambda_max"] = json!(r.top_values.first());
        report["lambda_min"] = json!(r.bottom_values.first());
        report["note"] = json!(format!(
            "{n} parameters > {DENSE_LIMIT}: eigenvalues are the {k} largest then the {k} smallest (Lanczos); \
negative_eigenvalues counts those among the smallest; trace by Hutchinson (64 probes); --full forms the dense matrix"
        ));
        text += &format!(
            "{kind_name} of the {} loss on {} samples w.r.t. {n} parameters ({}; Lanczos, {} steps{})\n",
            md.loss,
            obj.samples(),
            args.params,
            r.steps,
            if r.converged { "" } else { ", NOT converged" }
        );
        text += &format!("  loss {loss_value:.6e}   ‖∇L‖ {grad_norm:.3e}\n");
        text += &format!(
            "  trace ≈ {:.6e} ± {:.1e} (Hutchinson)   |λ|max/|λ|min over computed ≈ {cond_estimate:.3e}   negative among the {k} smallest: {negatives}\n",
            tr.trace, tr.std_error
        );
        // 1-based positions in the full decreasing spectrum: 1..=k, then n−k+1..=n.
        let top = r.top_values.len();
        let idx: Vec<usize> =
            (0..values.len()).map(|i| if i < top { i + 1 } else { n - (values.len() - 1 - i) }).collect();
        text += &eigen_table(&spectrum, &idx, k, Some(&residuals));
    }

    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating --out {}", out.display()))?;
        let mut files = Vec::new();
        if let Some(h) = &hessian {
            write_npy(out.join("hessian.npy"), h)?;
            files.push(out.join("hessian.npy"));
        }
        if let Some(q) = &vectors {
            write_npy(out.join("eigenvectors.npy"), q)?;
            files.push(out.join("eigenvectors.npy"));
        }
        write_npy(out.join("eigenvalues.npy"), &Array1::from(spectrum.clone()))?;
        files.push(out.join("eigenvalues.npy"));
        let title = format!("{kind_name} spectrum: {n} {} parameters, {} loss", args.params, md.loss);
        let mut chart = Chart::spectrum(title, &spectrum);
        if !dense {
            chart = chart.note("largest and smallest eigenvalues only (Lanczos)");
        }
        files.extend(chart.write(out.join("spectrum"))?);
        report["files"] = json!(files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
        write_json(out.join("hessian.json"), &report)?;
        text += &format!(
            "wrote {}\n",
            files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The k largest and k smallest eigenvalues as a table (all of them when there are ≤ 2k).
fn eigen_table(values: &[f64], index: &[usize], k: usize, residuals: Option<&[f64]>) -> String {
    let n = values.len();
    let mut s = String::from(if residuals.is_some() {
        "      i              λᵢ   ‖Hx−λx‖\n"
    } else {
        "      i              λᵢ\n"
    });
    let row = |i: usize| match residuals {
        Some(r) => format!("  {:>5}  {:>14.6e}  {:>8.1e}\n", index[i], values[i], r[i]),
        None => format!("  {:>5}  {:>14.6e}\n", index[i], values[i]),
    };
    if n <= 2 * k {
        (0..n).for_each(|i| s += &row(i));
    } else {
        (0..k).for_each(|i| s += &row(i));
        s += "    ...\n";
        (n - k..n).for_each(|i| s += &row(i));
    }
    s
}
