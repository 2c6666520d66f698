//! `backprop predict`: a model's outputs on data, as CSV (or JSON).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use backprop::Scalar;
use backprop::data::{self, LoadOptions};
use backprop::io::{ModelConfig, load_model};
use backprop::nn::{AnyMlp, Loss, Mlp};

/// Options of `backprop predict`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model directory (model.safetensors + config.json).
    #[arg(long)]
    pub model: PathBuf,
    /// Inputs: a built-in data set or a .csv / .npy / .npz file. A file with exactly the model's
    /// input width is read as features only; otherwise --target (default: the last column) is
    /// dropped.
    #[arg(long, value_name = "iris|FILE")]
    pub data: String,
    /// Target column(s) to drop from a CSV file.
    #[arg(long)]
    pub target: Option<String>,
    /// Write the predictions to this CSV file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object: `outputs` (n×outputs) and, for classifiers, `classes`.
    #[arg(long)]
    pub json: bool,
    /// Print nothing but errors (with --out).
    #[arg(long)]
    pub quiet: bool,
}

/// Output rows, and the predicted class of each row for classifiers.
type Predictions = (Vec<Vec<f64>>, Option<Vec<usize>>);

fn predict<T: Scalar>(args: &Args, m: &Mlp<T>, config: &ModelConfig) -> Result<Predictions> {
    let mut d = if args.target.is_none() {
        let bare = data::load::<T>(&args.data, &LoadOptions::new().no_targets());
        match bare {
            Ok(d) if d.n_features() == m.inputs() => d,
            _ => data::load::<T>(&args.data, &LoadOptions::new())?,
        }
    } else {
        data::load::<T>(
            &args.data,
            &LoadOptions::new().target_list(args.target.as_deref().unwrap_or_default()),
        )?
    };
    if d.n_features() != m.inputs() {
        bail!(
            "--data {} has {} feature columns but the model takes {} inputs",
            args.data,
            d.n_features(),
            m.inputs()
        );
    }
    if let Some(norm) = &config.normalization {
        norm.apply(&mut d.x)?;
    }
    let mut out = m.predict(d.x.view())?;
    if let Some(tn) = &config.target_normalization {
        tn.invert(&mut out)?;
    }
    let rows: Vec<Vec<f64>> = out.outer_iter().map(|r| r.iter().map(|v| v.f64()).collect()).collect();
    let classes = match config.loss {
        Some(Loss::CrossEntropy) => Some(
            rows.iter()
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .fold((0, f64::NEG_INFINITY), |b, (j, &v)| if v > b.1 { (j, v) } else { b })
                        .0
                })
                .collect(),
        ),
        Some(Loss::Bce) if m.outputs() == 1 => {
            let sigmoid_out = m.layers[m.layers.len() - 1].activation == backprop::nn::Activation::Sigmoid;
            let thr = if sigmoid_out { 0.5 } else { 0.0 };
            Some(rows.iter().map(|r| usize::from(r[0] > thr)).collect())
        }
        _ => None,
    };
    Ok((rows, classes))
}

/// Predicts.
pub fn run(args: Args) -> Result<ExitCode> {
    let (model, config) = load_model(&args.model)?;
    let (rows, classes) = match &model {
        AnyMlp::F32(m) => predict(&args, m, &config)?,
        AnyMlp::F64(m) => predict(&args, m, &config)?,
    };
    let names = config.classes.clone();
    let label = |c: usize| names.as_ref().and_then(|n| n.get(c).cloned()).unwrap_or_else(|| c.to_string());
    if args.json {
        let mut o = serde_json::json!({"outputs": rows});
        if let Some(c) = &classes {
            o["classes"] = c.iter().map(|&c| serde_json::json!(label(c))).collect();
            o["class_indices"] = serde_json::json!(c);
        }
        println!("{o}");
        return Ok(ExitCode::SUCCESS);
    }
    let width = rows.first().map_or(0, Vec::len);
    let mut csv = (0..width).map(|j| format!("output_{j}")).collect::<Vec<_>>().join(",");
    if classes.is_some() {
        csv.push_str(",class");
    }
    csv.push('\n');
    for (i, r) in rows.iter().enumerate() {
        csv.push_str(&r.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(","));
        if let Some(c) = &classes {
            let _ = write!(csv, ",{}", label(c[i]));
        }
        csv.push('\n');
    }
    match &args.out {
        Some(p) => {
            backprop::io::atomic_write(p, csv.as_bytes())?;
            if !args.quiet {
                eprintln!("wrote {} predictions to {}", rows.len(), p.display());
            }
        }
        None => print!("{csv}"),
    }
    Ok(ExitCode::SUCCESS)
}
