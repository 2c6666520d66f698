//! What `init`, `train`, `eval`, `predict` and `grad` share: data options, loading a data set
//! the way a model expects it, and printing tensors as JSON.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use backprop::Scalar;
use backprop::data::{self, Dataset, LoadOptions};
use backprop::io::ModelConfig;
use backprop::nn::{Loss, Mlp};
use ndarray::ArrayViewD;

/// Where the data comes from.
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// A built-in data set (iris, wine, breast_cancer, digits) or a .csv / .npy / .npz file.
    #[arg(long, value_name = "iris|FILE")]
    pub data: String,
    /// Target column(s) of a CSV file, by name (default: the last column).
    #[arg(long, value_name = "COL[,COL…]")]
    pub target: Option<String>,
    /// Keep only these classes, re-indexed 0.. in this order (e.g. `versicolor,virginica`:
    /// the notebook's binary iris task).
    #[arg(long, value_name = "A,B,…")]
    pub classes: Option<String>,
}

impl DataArgs {
    /// Loads the data for `loss` (class labels become class indices for classification).
    pub fn load<T: Scalar>(&self, loss: Option<Loss>, class_order: Option<&[String]>) -> Result<Dataset<T>> {
        let mut opts = LoadOptions::new();
        if let Some(t) = &self.target {
            opts = opts.target_list(t);
        }
        if loss.is_some_and(|l| l.is_classification()) {
            opts = opts.classes();
        }
        if let Some(order) = class_order
            && self.classes.is_none()
        {
            opts = opts.class_order(order.iter().cloned());
        }
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

/// Loads data for an existing model: its loss and class order, its input normalisation applied,
/// widths checked against the model.
pub fn load_for_model<T: Scalar>(
    args: &DataArgs,
    mlp: &Mlp<T>,
    config: &ModelConfig,
    loss: Loss,
) -> Result<Dataset<T>> {
    let mut d: Dataset<T> = args.load(Some(loss), config.classes.as_deref())?;
    if d.n_features() != mlp.inputs() {
        bail!(
            "--data {} has {} feature columns but the model takes {} inputs{}",
            args.data,
            d.n_features(),
            mlp.inputs(),
            if args.target.is_none() { " (is the target column right? see --target)" } else { "" }
        );
    }
    if let Some(norm) = &config.normalization {
        norm.apply(&mut d.x)?;
    }
    Ok(d)
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
