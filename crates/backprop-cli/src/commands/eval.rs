//! `backprop eval`: a model's loss and metrics on data.

use std::process::ExitCode;

use anyhow::Result;
use backprop::Scalar;
use backprop::io::{ModelConfig, load_model};
use backprop::nn::{AnyMlp, Loss, Mlp};

use super::model_data::{ModelDataArgs, load_for_model, model_loss};

/// Options of `backprop eval`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model, the data and the loss (default: the model's own, from config.json).
    #[command(flatten)]
    pub input: ModelDataArgs,
    /// Rows per forward pass (bounds memory).
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    /// Print one JSON object: loss, accuracy (classification), rmse (regression), samples.
    #[arg(long)]
    pub json: bool,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

fn eval<T: Scalar>(
    args: &Args,
    m: &Mlp<T>,
    config: &ModelConfig,
) -> Result<(backprop::nn::Metrics, usize, Loss)> {
    let loss = model_loss(args.input.loss, config, &args.input.model)?;
    let d = load_for_model::<T>(&args.input.data, m.inputs(), config, loss)?;
    Ok((m.evaluate(loss, d.x.view(), d.y.view(), args.batch)?, d.len(), loss))
}

/// Evaluates.
pub fn run(args: Args) -> Result<ExitCode> {
    let (model, config) = load_model(&args.input.model)?;
    let (metrics, n, loss) = match &model {
        AnyMlp::F32(m) => eval(&args, m, &config)?,
        AnyMlp::F64(m) => eval(&args, m, &config)?,
    };
    if args.json {
        let mut o = serde_json::json!({"loss": metrics.loss, "loss_name": loss.name(), "samples": n});
        if let Some(a) = metrics.accuracy {
            o["accuracy"] = a.into();
        }
        if let Some(r) = metrics.rmse {
            o["rmse"] = r.into();
        }
        println!("{o}");
    } else if !args.quiet {
        print!("{n} samples  {loss} {:.6e}", metrics.loss);
        if let Some(a) = metrics.accuracy {
            print!("  accuracy {:.4}", a);
        }
        if let Some(r) = metrics.rmse {
            print!("  rmse {:.6e}", r);
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
