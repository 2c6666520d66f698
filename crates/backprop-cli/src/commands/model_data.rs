//! What the commands that read data share: data options, loading a data set
//! the way a model expects it, and printing tensors as JSON.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use backprop::Scalar;
use backprop::data::{self, Dataset, LoadOptions};
use backprop::io::{ModelConfig, load_model};
use backprop::nn::{Loss, Mlp};
use ndarray::{Array2, ArrayViewD};

/// Where the data comes from.
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// A built-in data set (iris, wine, breast_cancer, digits) or a .csv / .npy / .npz file.
    #[arg(long, value_name = "iris|FILE")]
    pub data: String,
    /// Target column(s) of a CSV file, by name (default: a saved model's own target columns, else
    /// the last column).
    #[arg(long, value_name = "COL[,COL…]")]
    pub target: Option<String>,
    /// Keep only these classes, re-indexed 0.. in this order (e.g. `versicolor,virginica`:
    /// the notebook's binary iris task).
    #[arg(long, value_name = "A,B,…")]
    pub classes: Option<String>,
}

impl DataArgs {
    /// The load options for `loss`; with a saved model's `config`, its target columns (unless
    /// `--target`) and class order (unless `--classes`), so data is read the way training read it.
    fn options(&self, loss: Option<Loss>, config: Option<&ModelConfig>) -> LoadOptions {
        let mut opts = LoadOptions::new();
        // Saved target names are column names of a CSV or built-in table; a .npy names its
        // columns by index and a .npz keeps its targets in `y`, so there the default applies.
        let by_name = !self.data.ends_with(".npy") && !self.data.ends_with(".npz");
        match (&self.target, config.and_then(|c| c.target_names.as_ref())) {
            (Some(t), _) => opts = opts.target_list(t),
            (None, Some(names)) if by_name && !names.is_empty() => opts = opts.targets(names.iter().cloned()),
            _ => {}
        }
        if self.classes.is_some() || loss.is_some_and(|l| l.is_classification()) {
            opts = opts.classes();
        }
        if let Some(order) = config.and_then(|c| c.classes.as_ref())
            && self.classes.is_none()
        {
            opts = opts.class_order(order.iter().cloned());
        }
        opts
    }

    /// Loads the data for `loss` (class labels become class indices for classification), the
    /// way a saved model's `config` expects it when given (see [`load_for_model`]).
    pub fn load<T: Scalar>(&self, loss: Option<Loss>, config: Option<&ModelConfig>) -> Result<Dataset<T>> {
        let opts = self.options(loss, config);
        let mut d =
            data::load::<T>(&self.data, &opts).with_context(|| format!("loading --data {}", self.data))?;
        if let Some(c) = &self.classes {
            let names: Vec<&str> = c.split(',').map(str::trim).collect();
            d = d.select_classes(&names)?;
        }
        if d.is_empty() {
            bail!("--data {}: no samples", self.data);
        }
        Ok(d)
    }
}

/// Loads data for an existing model exactly as training saw it: its target columns, classes
/// and loss, widths checked against the model's `inputs`, its input normalisation applied, and
/// its target normalisation applied to `y` (the network predicts standardised targets, so its
/// loss and gradients live in those units).
pub fn load_for_model<T: Scalar>(
    args: &DataArgs,
    inputs: usize,
    config: &ModelConfig,
    loss: Loss,
) -> Result<Dataset<T>> {
    let mut d: Dataset<T> = args.load(Some(loss), Some(config))?;
    if d.n_features() != inputs {
        bail!(
            "--data {} has {} feature columns ({}) but the model takes {inputs} inputs{}",
            args.data,
            d.n_features(),
            d.feature_names.join(", "),
            if args.target.is_none() { " (is the target column right? see --target)" } else { "" }
        );
    }
    if let Some(norm) = &config.normalization {
        norm.apply(&mut d.x).context("applying the model's input normalisation")?;
    }
    if let Some(norm) = &config.target_normalization {
        norm.apply(&mut d.y).context("applying the model's target normalisation")?;
    }
    Ok(d)
}

/// The options `hessian` and `regularize` share: which model, on which data, with which loss.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelDataArgs {
    /// The model directory (model.safetensors + config.json).
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// The loss (default: the one saved with the model).
    #[arg(long)]
    pub loss: Option<Loss>,
}

/// A model in f64 with the data it is evaluated on, read as in training.
pub struct ModelData {
    /// The network, in f64.
    pub model: Mlp<f64>,
    /// Standardised inputs.
    pub x: Array2<f64>,
    /// Targets (standardised when the model predicts standardised targets).
    pub y: Array2<f64>,
    /// The loss.
    pub loss: Loss,
}

/// Loads `--model` and `--data` the way training saw them ([`load_for_model`]), in f64.
pub fn load_model_and_data(args: &ModelDataArgs) -> Result<ModelData> {
    let (any, config) = load_model(&args.model)?;
    let loss = model_loss(args.loss, &config, &args.model)?;
    let d = load_for_model::<f64>(&args.data, any.inputs(), &config, loss)?;
    Ok(ModelData { model: any.to_f64(), x: d.x, y: d.y, loss })
}

/// The loss to use: `--loss`, else the model's own, else an error.
pub fn model_loss(flag: Option<Loss>, config: &ModelConfig, dir: &std::path::Path) -> Result<Loss> {
    flag.or(config.loss).with_context(|| format!("{} has no loss in config.json; pass --loss", dir.display()))
}

/// A tensor as nested JSON arrays (numbers as f64).
pub fn tensor_json<T: Scalar>(t: &ArrayViewD<'_, T>) -> serde_json::Value {
    fn rec<T: Scalar>(t: &ArrayViewD<'_, T>) -> serde_json::Value {
        if t.ndim() == 0 {
            return serde_json::json!(t.iter().next().map_or(0.0, |v| v.f64()));
        }
        if t.ndim() == 1 {
            return serde_json::Value::Array(t.iter().map(|v| serde_json::json!(v.f64())).collect());
        }
        serde_json::Value::Array(t.outer_iter().map(|s| rec(&s)).collect())
    }
    rec(t)
}

/// The output directory, created.
pub fn out_dir(p: &PathBuf) -> Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))
}
