//! `backprop grad`: the loss and the gradient of every tensor at the model's weights.

use std::process::ExitCode;

use anyhow::Result;
use backprop::Scalar;
use backprop::io::{ModelConfig, load_model};
use backprop::nn::{AnyMlp, Mlp};

use super::model_data::{ModelDataArgs, load_for_model, model_loss, tensor_json};

/// Options of `backprop grad`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model, the data and the loss (default: the model's own, from config.json).
    #[command(flatten)]
    pub input: ModelDataArgs,
    /// Add the L2 penalty (μ/2)‖w‖² (weights only) to the loss and μ·w to the weights' gradients.
    #[arg(long, default_value_t = 0.0)]
    pub l2: f64,
    /// Print one JSON object: `loss` and `gradients` {tensor name: nested array}.
    #[arg(long)]
    pub json: bool,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

fn grad<T: Scalar>(args: &Args, m: &Mlp<T>, config: &ModelConfig) -> Result<serde_json::Value> {
    let loss = model_loss(args.input.loss, config, &args.input.model)?;
    let d = load_for_model::<T>(&args.input.data, m.inputs(), config, loss)?;
    let (mut value, mut g) = m.loss_and_grad(loss, d.x.view(), d.y.view())?;
    let penalty = backprop::optim::Penalty::l2(args.l2);
    penalty.validate()?;
    if args.l2 > 0.0 {
        value += penalty.value(m);
        let mask = m.penalty_mask(backprop::nn::ParamSelection::All);
        let theta = m.flat_params(backprop::nn::ParamSelection::All);
        let mut flat = g.flat(backprop::nn::ParamSelection::All);
        flat.iter_mut()
            .zip(theta.iter().zip(mask.iter()))
            .for_each(|(g, (&w, &k))| *g += T::of(args.l2) * k * w);
        g.set_flat(backprop::nn::ParamSelection::All, flat.as_slice().unwrap_or(&[]))?;
    }
    let mut grads = serde_json::Map::new();
    let mut table = Vec::new();
    for (name, t) in g.tensors() {
        let norm = t.iter().map(|v| v.f64() * v.f64()).sum::<f64>().sqrt();
        let max = t.iter().fold(0.0f64, |a, v| a.max(v.f64().abs()));
        table.push(serde_json::json!({"name": name, "shape": t.shape(), "norm": norm, "max_abs": max}));
        grads.insert(name, tensor_json(&t));
    }
    Ok(serde_json::json!({
        "loss": value,
        "loss_name": loss.name(),
        "samples": d.len(),
        "l2": args.l2,
        "gradients": grads,
        "summary": table,
    }))
}

/// Computes and prints.
pub fn run(args: Args) -> Result<ExitCode> {
    let (model, config) = load_model(&args.input.model)?;
    let out = match &model {
        AnyMlp::F32(m) => grad(&args, m, &config)?,
        AnyMlp::F64(m) => grad(&args, m, &config)?,
    };
    if args.json {
        let mut o = out.clone();
        if let Some(obj) = o.as_object_mut() {
            obj.remove("summary");
        }
        println!("{o}");
    } else if !args.quiet {
        println!(
            "{} = {:.17e} on {} samples",
            out["loss_name"].as_str().unwrap_or("loss"),
            out["loss"].as_f64().unwrap_or(f64::NAN),
            out["samples"]
        );
        println!("{:<12} {:>12} {:>14} {:>14}", "tensor", "shape", "‖grad‖", "max |grad|");
        for row in out["summary"].as_array().into_iter().flatten() {
            println!(
                "{:<12} {:>12} {:>14.6e} {:>14.6e}",
                row["name"].as_str().unwrap_or(""),
                row["shape"].to_string(),
                row["norm"].as_f64().unwrap_or(f64::NAN),
                row["max_abs"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
