//! `backprop init`: an untrained model directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use backprop::io::{ModelConfig, save_model};
use backprop::nn::{Activation, Init, Loss, Mlp, MlpBuilder};
use backprop::{DType, Scalar};

/// Options of `backprop init`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Layer widths, input first: `4,5,1` is the notebook's network.
    #[arg(long, value_delimiter = ',', required = true)]
    pub layers: Vec<usize>,
    /// Activation of every layer, the output included unless --output-activation is given:
    /// sigmoid, tanh, relu, leaky_relu, softplus, identity.
    #[arg(long, default_value = "sigmoid")]
    pub activation: Activation,
    /// Activation of the output layer.
    #[arg(long)]
    pub output_activation: Option<Activation>,
    /// The loss the model is meant for (stored in config.json): squared_error, mse, bce, cross_entropy.
    #[arg(long)]
    pub loss: Option<Loss>,
    /// Layers without biases (the notebook's network has none).
    #[arg(long)]
    pub no_bias: bool,
    /// Weight initialiser: ones (the notebook's), glorot (uniform), glorot_normal, he (normal),
    /// he_uniform, constant:V.
    #[arg(long, default_value = "glorot")]
    pub init: Init,
    /// Precision of the weights.
    #[arg(long, default_value = "f64")]
    pub dtype: DType,
    /// Seed of the initialiser (same seed, same weights on every machine).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output model directory (model.safetensors + config.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Print nothing.
    #[arg(long)]
    pub quiet: bool,
}

fn write<T: Scalar>(args: &Args) -> Result<(usize, String)> {
    let mut b = MlpBuilder::new(&args.layers)
        .activation(args.activation)
        .bias(!args.no_bias)
        .init(args.init)
        .seed(args.seed);
    if let Some(a) = args.output_activation {
        b = b.output_activation(a);
    }
    let m: Mlp<T> = b.build()?;
    if let Some(loss) = args.loss {
        loss.check_output(m.layers[m.layers.len() - 1].activation, m.outputs())?;
    }
    let mut config =
        ModelConfig::new(&m).with_metadata("init", args.init.to_string()).with_metadata("seed", args.seed);
    if let Some(loss) = args.loss {
        config = config.loss(loss);
    }
    save_model(&args.out, &m, &config)?;
    Ok((m.num_params(backprop::nn::ParamSelection::All), config.torch.clone()))
}

/// Writes the model.
pub fn run(args: Args) -> Result<ExitCode> {
    let (params, torch) = match args.dtype {
        DType::F32 => write::<f32>(&args)?,
        DType::F64 => write::<f64>(&args)?,
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({"out": args.out, "layers": args.layers, "parameters": params, "dtype": args.dtype.to_string(), "torch": torch})
        );
    } else if !args.quiet {
        println!("wrote {} ({} parameters, {}): {torch}", args.out.display(), params, args.dtype);
    }
    Ok(ExitCode::SUCCESS)
}
