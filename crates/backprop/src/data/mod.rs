//! Data: datasets in memory, loaders (CSV, `.npy`, `.npz`, built-in real datasets), seeded
//! train/validation splits, minibatches and standardisation.
//!
//! ```
//! use backprop::data::{load, LoadOptions, Normalization};
//! let iris = load::<f64>("iris", &LoadOptions::new())?;
//! // The notebook's binary task: versicolor (0) vs virginica (1), D = 4 inputs.
//! let binary = iris.select_classes(&["versicolor", "virginica"])?;
//! let (mut train, mut val) = binary.split(0.2, 42)?;
//! let norm = Normalization::fit(train.x.view())?;
//! norm.apply(&mut train.x)?;
//! norm.apply(&mut val.x)?;
//! assert_eq!((train.len(), val.len(), train.n_features()), (80, 20, 4));
//! # Ok::<(), backprop::Error>(())
//! ```

mod builtin;
mod csv;
mod dataset;
mod labels;
mod normalization;
mod npy;
mod options;
mod split;

use std::path::Path;

pub use builtin::{BUILTINS, Builtin, builtin, builtin_names};
pub use csv::{read_csv, read_csv_str};
pub use dataset::{Batch, Batches, Dataset};
pub use normalization::Normalization;
pub use npy::{read_npy, read_npz};
pub use options::{LoadOptions, TargetKind, Targets};
pub use split::epoch_permutation;

use crate::{Error, Result, Scalar};

/// Loads a dataset from `spec`: a built-in name (`iris`, `wine`, `breast_cancer`, `digits`),
/// or a path ending in `.csv`, `.npy` or `.npz`.
///
/// ```
/// let wine = backprop::data::load::<f32>("wine", &backprop::data::LoadOptions::new())?;
/// assert_eq!(wine.x.dim(), (178, 13));
/// # Ok::<(), backprop::Error>(())
/// ```
pub fn load<T: Scalar>(spec: &str, opts: &LoadOptions) -> Result<Dataset<T>> {
    if let Some(b) = builtin(spec) {
        return b.load(opts);
    }
    let path = Path::new(spec);
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") | Some("tsv") => read_csv(path, opts),
        Some("npy") => read_npy(path, opts),
        Some("npz") => read_npz(path, opts),
        _ => Err(Error::invalid(
            "data",
            format!(
                "`{spec}` is neither a built-in dataset ({}) nor a .csv, .npy or .npz file",
                builtin_names().join(", ")
            ),
        )),
    }
}

impl<T: Scalar> Dataset<T> {
    /// A copy with the features standardised by `norm` (fitted on the training data).
    pub fn normalized(&self, norm: &Normalization) -> Result<Self> {
        let mut out = self.clone();
        norm.apply(&mut out.x)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_specs_list_the_alternatives() {
        let e = load::<f64>("irsi", &LoadOptions::new()).unwrap_err().to_string();
        assert!(e.contains("iris, wine") && e.contains(".csv"), "{e}");
        assert!(load::<f64>("data.parquet", &LoadOptions::new()).is_err());
    }

    #[test]
    fn missing_files_are_io_errors_naming_the_path() {
        for spec in ["/no/such.csv", "/no/such.npy", "/no/such.npz"] {
            let e = load::<f64>(spec, &LoadOptions::new()).unwrap_err();
            assert!(matches!(e, Error::Io { .. }) && e.to_string().contains(spec), "{e}");
        }
    }
}
