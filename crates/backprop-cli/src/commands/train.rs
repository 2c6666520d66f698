//! `backprop train`: train a network on data; write the model, `history.csv`, curve plots and a
//! resumable checkpoint into `--out`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use backprop::data::{Dataset, Normalization};
use backprop::io::{ModelConfig, load_model, save_model};
use backprop::nn::{Activation, AnyMlp, Init, Loss, Mlp, MlpBuilder};
use backprop::optim::OptimizerConfig;
use backprop::train::{
    Checkpointer, Control, EpochRecord, Observer, Outcome, TrainState, Trainer, checkpoint,
};
use backprop::{DType, Error, Scalar};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::model_data::{DataArgs, out_dir};

/// Options of `backprop train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Start from this model directory (its architecture, weights, loss and normalisation).
    #[arg(long, conflicts_with_all = ["layers", "init", "no_bias"])]
    pub model: Option<PathBuf>,
    /// Layer widths of a new network, input first, e.g. `4,5,1`.
    #[arg(long, value_delimiter = ',', required_unless_present_any = ["model", "resume"])]
    pub layers: Option<Vec<usize>>,
    /// Activation of every layer of a new network (output included unless --output-activation).
    #[arg(long, default_value = "sigmoid")]
    pub activation: Activation,
    /// Output activation of a new network.
    #[arg(long)]
    pub output_activation: Option<Activation>,
    /// New network without biases.
    #[arg(long)]
    pub no_bias: bool,
    /// Initialiser of a new network: ones, glorot, glorot_normal, he, he_uniform, constant:V.
    #[arg(long)]
    pub init: Option<Init>,
    /// Loss: squared_error (½‖ŷ−y‖², the notebook's), mse, bce, cross_entropy.
    /// Default: the --model's own loss.
    #[arg(long)]
    pub loss: Option<Loss>,
    /// Optimiser: gd (full batch), sgd (minibatch, --momentum, --nesterov), adam.
    #[arg(long, default_value = "gd")]
    pub optimizer: String,
    /// Learning rate.
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f64,
    /// Nesterov momentum (with --momentum > 0).
    #[arg(long)]
    pub nesterov: bool,
    /// Epochs (passes over the training data).
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// Minibatch rows for sgd/adam (default: 32; gd always uses the whole set).
    #[arg(long)]
    pub batch: Option<usize>,
    /// L2 penalty μ: adds (μ/2)‖w‖² on the weights (never the biases) to the loss.
    #[arg(long, default_value_t = 0.0)]
    pub l2: f64,
    /// Decoupled weight decay λ (AdamW-style, weights only): w ← (1 − lr·λ)w each step.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Precision (default: the --model's, else f64).
    #[arg(long)]
    pub dtype: Option<DType>,
    /// Seed of the initialiser, the validation split and the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of the data held out for validation (seeded split).
    #[arg(long, default_value_t = 0.0)]
    pub val_split: f64,
    /// Standardise the inputs (statistics from the training split, saved with the model).
    #[arg(long)]
    pub standardize: bool,
    /// Stop after this many epochs without improvement of the validation (else training) loss,
    /// keeping the best weights.
    #[arg(long)]
    pub early_stopping: Option<usize>,
    /// Save a resumable checkpoint every N epochs (default: about 10 per run).
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Continue the run in --out from its checkpoint, bit-identically to an uninterrupted run.
    #[arg(long)]
    pub resume: bool,
    /// Output directory: model.safetensors, config.json, history.csv, loss/metric plots,
    /// checkpoint.safetensors.
    #[arg(long)]
    pub out: PathBuf,
    /// No progress bar, no summary.
    #[arg(long)]
    pub quiet: bool,
    /// Print one JSON summary object (no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// Shows epoch, loss, metric and ETA once the run has taken more than a second.
struct Progress {
    bar: ProgressBar,
    start: Instant,
    shown: bool,
    enabled: bool,
}

impl Progress {
    fn new(total: u64, done: u64, enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        bar.set_position(done);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} epoch {pos}/{len}  {msg}  [{elapsed_precise}, ETA {eta}]")
        {
            bar.set_style(style);
        }
        Progress { bar, start: Instant::now(), shown: false, enabled }
    }
}

impl<T: Scalar> Observer<T> for Progress {
    fn on_epoch(&mut self, _state: &TrainState<T>, r: &EpochRecord) -> backprop::Result<Control> {
        if !self.enabled {
            return Ok(Control::Continue);
        }
        if !self.shown && self.start.elapsed() > Duration::from_secs(1) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        self.bar.set_position(r.epoch as u64);
        let mut msg = format!("loss {:.4e}", r.loss);
        if let Some((name, v)) = r.metric() {
            msg.push_str(&format!("  {name} {v:.4}"));
        }
        if let Some(v) = r.val_loss {
            msg.push_str(&format!("  val_loss {v:.4e}"));
        }
        self.bar.set_message(msg);
        Ok(Control::Continue)
    }

    fn on_end(&mut self, _state: &TrainState<T>, _outcome: Outcome) -> backprop::Result<()> {
        self.bar.finish_and_clear();
        Ok(())
    }
}

fn checkpoint_path(out: &Path) -> PathBuf {
    out.join(checkpoint::CHECKPOINT_FILE)
}

/// The starting network (new or from --model) in precision T.
fn start_model<T: Scalar>(args: &Args, base: Option<&AnyMlp>, d: &Dataset<T>, loss: Loss) -> Result<Mlp<T>> {
    let m: Mlp<T> = match base {
        Some(AnyMlp::F32(m)) => m.cast(),
        Some(AnyMlp::F64(m)) => m.cast(),
        None => {
            let layers = args.layers.clone().context("pass --layers (or --model)")?;
            let mut b = MlpBuilder::new(&layers)
                .activation(args.activation)
                .bias(!args.no_bias)
                .init(args.init.unwrap_or(Init::GlorotUniform))
                .seed(args.seed);
            if let Some(a) = args.output_activation {
                b = b.output_activation(a);
            }
            b.build()?
        }
    };
    if m.inputs() != d.n_features() {
        bail!(
            "the network takes {} inputs but --data {} has {} feature columns",
            m.inputs(),
            args.data.data,
            d.n_features()
        );
    }
    let want = match (loss, d.n_classes()) {
        (Loss::CrossEntropy, Some(k)) => k,
        (Loss::CrossEntropy, None) => {
            bail!("cross_entropy needs class labels as targets; --data {} has none", args.data.data)
        }
        _ => d.n_targets(),
    };
    if m.outputs() != want {
        bail!(
            "the network has {} outputs but {loss} on --data {} needs {want}{}",
            m.outputs(),
            args.data.data,
            if loss == Loss::CrossEntropy { " (one per class)" } else { " (one per target column)" }
        );
    }
    loss.check_output(m.layers[m.layers.len() - 1].activation, m.outputs())?;
    Ok(m)
}

struct Summary {
    record: Option<EpochRecord>,
    epochs: usize,
    outcome: Outcome,
    seconds: f64,
    params: usize,
}

fn train<T: Scalar>(args: &Args, base: Option<(AnyMlp, ModelConfig)>) -> Result<Summary> {
    let ck_path = checkpoint_path(&args.out);
    let resumed: Option<TrainState<T>> = if args.resume {
        if !ck_path.exists() {
            bail!("--resume: no checkpoint at {}", ck_path.display());
        }
        Some(checkpoint::load(&ck_path)?)
    } else {
        None
    };
    let base_config = base.as_ref().map(|(_, c)| c.clone());
    let loss = args
        .loss
        .or(resumed.as_ref().map(|s| s.config.loss))
        .or(base_config.as_ref().and_then(|c| c.loss))
        .context("pass --loss (squared_error, mse, bce, cross_entropy)")?;
    let data: Dataset<T> = args.data.load(Some(loss), base_config.as_ref())?;
    let (mut train, mut val) = if args.val_split > 0.0 {
        let (t, v) = data.split(args.val_split, args.seed)?;
        (t, Some(v))
    } else {
        (data, None)
    };
    let norm = match base_config.as_ref().and_then(|c| c.normalization.clone()) {
        Some(n) => Some(n),
        None if args.standardize => Some(Normalization::fit(train.x.view())?),
        None => None,
    };
    if let Some(n) = &norm {
        n.apply(&mut train.x)?;
        if let Some(v) = &mut val {
            n.apply(&mut v.x)?;
        }
    }
    let optimizer = OptimizerConfig::from_name(&args.optimizer, args.lr, args.momentum, args.nesterov)?;
    let mut trainer = Trainer::new(loss, optimizer)
        .epochs(args.epochs)
        .seed(args.seed)
        .l2(args.l2)
        .weight_decay(args.weight_decay);
    if !optimizer.is_full_batch() {
        trainer = trainer.batch_size(args.batch.unwrap_or(32));
    } else if args.batch.is_some() {
        bail!("--batch does not apply to --optimizer gd (full batch); use sgd or adam");
    }
    if let Some(p) = args.early_stopping {
        trainer = trainer.early_stopping(p, 0.0);
    }
    let mut state = match resumed {
        Some(s) => {
            s.check_resumable(&trainer)?;
            start_model::<T>(args, Some(&AnyMlp::from(s.model.cast::<f64>())), &train, loss)?;
            s
        }
        None => {
            TrainState::new(start_model::<T>(args, base.as_ref().map(|(m, _)| m), &train, loss)?, &trainer)?
        }
    };
    let every = args.checkpoint_every.unwrap_or((args.epochs / 10).max(1));
    let mut ck = Checkpointer::new(&ck_path, every);
    let mut progress = Progress::new(args.epochs as u64, state.epoch as u64, !args.quiet && !args.json);
    let validation = val.as_ref().map(|v| (v.x.view(), v.y.view()));
    let start = Instant::now();
    let result =
        trainer.fit(&mut state, train.x.view(), train.y.view(), validation, &mut [&mut progress, &mut ck]);
    let seconds = start.elapsed().as_secs_f64();

    // Model, history and plots are written also after divergence (the last good state).
    let mut config = ModelConfig::new(&state.model).loss(loss).names_from(&train);
    if let Some(n) = norm {
        config = config.normalization(n);
    }
    config = config
        .with_metadata("optimizer", serde_json::to_value(optimizer).unwrap_or_default())
        .with_metadata("epochs", state.epoch)
        .with_metadata("seed", args.seed)
        .with_metadata("l2", args.l2);
    save_model(&args.out, &state.model, &config)?;
    backprop::io::atomic_write(args.out.join("history.csv"), state.history.to_csv().as_bytes())?;
    write_plots(&args.out, &state.history)?;
    let outcome = match result {
        Ok(o) => o,
        Err(e @ Error::Diverged { .. }) => {
            return Err(anyhow::Error::from(e).context(format!(
                "kept the last good state (epoch {}) in {}",
                state.epoch,
                args.out.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Summary {
        record: state.history.last().copied(),
        epochs: state.epoch,
        outcome,
        seconds,
        params: state.model.num_params(backprop::nn::ParamSelection::All),
    })
}

/// Loss and metric curves as PNG and SVG.
fn write_plots(out: &Path, h: &backprop::train::History) -> Result<()> {
    crate::commands::train_plots::write(out, h)
}

/// Trains.
pub fn run(args: Args) -> Result<ExitCode> {
    out_dir(&args.out)?;
    let base = match &args.model {
        Some(dir) => Some(load_model(dir)?),
        None => None,
    };
    let dtype = if args.resume && checkpoint_path(&args.out).exists() {
        checkpoint::dtype(&checkpoint_path(&args.out))?
    } else {
        args.dtype.or(base.as_ref().map(|(m, _)| m.dtype())).unwrap_or(DType::F64)
    };
    let s = match dtype {
        DType::F32 => train::<f32>(&args, base)?,
        DType::F64 => train::<f64>(&args, base)?,
    };
    let outcome = match s.outcome {
        Outcome::Completed => "completed",
        Outcome::EarlyStopped => "early_stopped",
        Outcome::Stopped => "stopped",
        Outcome::Diverged => "diverged",
    };
    if args.json {
        let r = s.record;
        println!(
            "{}",
            serde_json::json!({
                "out": args.out,
                "epochs": s.epochs,
                "outcome": outcome,
                "seconds": s.seconds,
                "parameters": s.params,
                "loss": r.map(|r| r.loss),
                "accuracy": r.and_then(|r| r.accuracy),
                "rmse": r.and_then(|r| r.rmse),
                "val_loss": r.and_then(|r| r.val_loss),
                "val_accuracy": r.and_then(|r| r.val_accuracy),
                "val_rmse": r.and_then(|r| r.val_rmse),
            })
        );
    } else if !args.quiet {
        if let Some(r) = s.record {
            let mut line = format!("epoch {}  loss {:.6e}", r.epoch, r.loss);
            if let Some((n, v)) = r.metric() {
                line.push_str(&format!("  {n} {v:.4}"));
            }
            if let Some(v) = r.val_loss {
                line.push_str(&format!("  val_loss {v:.6e}"));
            }
            if let Some(v) = r.val_accuracy {
                line.push_str(&format!("  val_accuracy {v:.4}"));
            }
            println!("{line}");
        }
        println!("{outcome} in {:.2} s; wrote {}", s.seconds, args.out.display());
    }
    Ok(ExitCode::SUCCESS)
}
