//! Real datasets compiled into the library, so `--data iris` works offline.
//!
//! Sources and licences are in `crates/backprop/data/README.md` beside the files.

use std::path::Path;

use super::Dataset;
use super::csv::read_csv_str;
use super::dataset::columns;
use super::options::{LoadOptions, TargetKind, Targets};
use crate::{Error, Result, Scalar};

/// A dataset that ships with the library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Builtin {
    /// The name used with `--data`.
    pub name: &'static str,
    /// One line: what it is, its size and classes.
    pub description: &'static str,
    /// The column holding the class names.
    pub label_column: &'static str,
    /// Class names in index order (scikit-learn's order).
    pub classes: &'static [&'static str],
    /// Samples.
    pub samples: usize,
    /// Features.
    pub features: usize,
    /// Source and licence, for attribution.
    pub source: &'static str,
    csv: &'static str,
}

/// Every built-in dataset.
pub const BUILTINS: [Builtin; 4] = [
    Builtin {
        name: "iris",
        description: "Fisher's iris flowers: 150 samples, 4 measurements (cm), 3 species",
        label_column: "species",
        classes: &["setosa", "versicolor", "virginica"],
        samples: 150,
        features: 4,
        source: "R. A. Fisher (1936); UCI Machine Learning Repository, doi:10.24432/C56C76; CC BY 4.0",
        csv: include_str!("../../data/iris.csv"),
    },
    Builtin {
        name: "wine",
        description: "Italian wines by cultivar: 178 samples, 13 chemical measurements, 3 classes",
        label_column: "cultivar",
        classes: &["class_0", "class_1", "class_2"],
        samples: 178,
        features: 13,
        source: "M. Forina et al.; UCI Machine Learning Repository, doi:10.24432/C5PC7J; CC BY 4.0",
        csv: include_str!("../../data/wine.csv"),
    },
    Builtin {
        name: "breast_cancer",
        description: "Breast Cancer Wisconsin (Diagnostic): 569 samples, 30 cell-nucleus features, malignant/benign",
        label_column: "diagnosis",
        classes: &["malignant", "benign"],
        samples: 569,
        features: 30,
        source: "W. H. Wolberg, W. N. Street, O. L. Mangasarian (1995); UCI Machine Learning Repository, doi:10.24432/C5DW2B; CC BY 4.0",
        csv: include_str!("../../data/breast_cancer.csv"),
    },
    Builtin {
        name: "digits",
        description: "Handwritten digits: 1797 images of 8×8 pixel counts (0–16), 10 classes",
        label_column: "digit",
        classes: &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        samples: 1797,
        features: 64,
        source: "E. Alpaydin, C. Kaynak (1998); UCI Machine Learning Repository, doi:10.24432/C50P49; CC BY 4.0",
        csv: include_str!("../../data/digits.csv"),
    },
];

/// The built-in dataset called `name`, if any.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The names of the built-in datasets.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.name).collect()
}

impl Builtin {
    /// The dataset's CSV text (header row, class names in the last column).
    pub fn csv(&self) -> &'static str {
        self.csv
    }

    /// Loads it. By default the targets are the class indices (in [`Builtin::classes`] order);
    /// `opts` may instead name other columns as targets (e.g. iris petal width as a regression
    /// target).
    pub fn load<T: Scalar>(&self, opts: &LoadOptions) -> Result<Dataset<T>> {
        let origin = format!("builtin:{}", self.name);
        let label = self.label_column;
        let wants_label = match &opts.targets {
            Targets::Last => true,
            Targets::Named(n) => n.len() == 1 && n[0] == label,
            Targets::None => false,
        };
        if wants_label && opts.kind == TargetKind::Values {
            return Err(Error::invalid(
                "target",
                format!("`{label}` of {} holds class names, not numbers", self.name),
            ));
        }
        let order: Vec<String> = match (&opts.class_order, wants_label) {
            (Some(order), true) => order.clone(),
            _ => self.classes.iter().map(|c| c.to_string()).collect(),
        };
        let full = read_csv_str::<T>(
            self.csv,
            Path::new(&origin),
            &LoadOptions::new().target(label).class_order(order),
        )?;
        match &opts.targets {
            _ if wants_label => Ok(full),
            Targets::None => {
                let n = full.len();
                Dataset::new(full.x, ndarray::Array2::zeros((n, 0)), full.feature_names, vec![], None)
            }
            Targets::Named(names) => {
                if opts.kind == TargetKind::Classes {
                    return Err(Error::invalid(
                        "target",
                        format!(
                            "in {} only `{label}` holds class labels; the other columns are measurements",
                            self.name
                        ),
                    ));
                }
                let mut cols = Vec::with_capacity(names.len());
                for (i, name) in names.iter().enumerate() {
                    let Some(c) = full.feature_names.iter().position(|f| f == name) else {
                        return Err(Error::invalid(
                            "target",
                            format!(
                                "no numeric column `{name}` in {} (the class column `{label}` can only be the sole target); the columns are: {}",
                                self.name,
                                full.feature_names.join(", ")
                            ),
                        ));
                    };
                    if names[..i].contains(name) {
                        return Err(Error::invalid("target", format!("column `{name}` is named twice")));
                    }
                    cols.push(c);
                }
                let keep: Vec<usize> = (0..full.n_features()).filter(|c| !cols.contains(c)).collect();
                Dataset::new(
                    columns(full.x.view(), &keep, |v| v)?,
                    columns(full.x.view(), &cols, |v| v)?,
                    keep.iter().map(|&c| full.feature_names[c].clone()).collect(),
                    names.clone(),
                    None,
                )
            }
            Targets::Last => Ok(full), // the label column: handled above
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_loads_with_its_documented_shape_and_classes() {
        for b in &BUILTINS {
            let d = b.load::<f64>(&LoadOptions::new()).unwrap();
            assert_eq!((d.len(), d.n_features()), (b.samples, b.features), "{}", b.name);
            assert_eq!(d.classes.as_deref().unwrap(), b.classes, "{}", b.name);
            let counts = (0..b.classes.len())
                .map(|k| d.y.iter().filter(|&&v| v == k as f64).count())
                .collect::<Vec<_>>();
            assert!(counts.iter().all(|&c| c > 0), "{}: {counts:?}", b.name);
        }
    }

    #[test]
    fn iris_matches_known_values() {
        let d = builtin("iris").unwrap().load::<f64>(&LoadOptions::new()).unwrap();
        assert_eq!(d.x.row(0).to_vec(), [5.1, 3.5, 1.4, 0.2]);
        assert_eq!(d.y.column(0).iter().filter(|&&v| v == 1.0).count(), 50);
        let mean_petal_length = d.x.column(2).sum() / 150.0;
        assert!((mean_petal_length - 3.758).abs() < 1e-9, "{mean_petal_length}");
        // Fisher's values (R's iris), not UCI's two erroneous rows: sample 35 is 4.9,3.1,1.5,0.2.
        assert_eq!(d.x.row(34).to_vec(), [4.9, 3.1, 1.5, 0.2]);
    }

    #[test]
    fn breast_cancer_classes_follow_scikit_learn() {
        let d = builtin("breast_cancer").unwrap().load::<f64>(&LoadOptions::new()).unwrap();
        assert_eq!(d.y.iter().filter(|&&v| v == 0.0).count(), 212); // malignant
        assert_eq!(d.y.iter().filter(|&&v| v == 1.0).count(), 357); // benign
    }

    #[test]
    fn other_columns_can_be_regression_targets() {
        let d = builtin("iris").unwrap().load::<f64>(&LoadOptions::new().target("petal_width_cm")).unwrap();
        assert_eq!(d.feature_names, ["sepal_length_cm", "sepal_width_cm", "petal_length_cm"]);
        assert!(d.classes.is_none());
        assert_eq!(d.y[[0, 0]], 0.2);
        assert_eq!(d.x.row(0).to_vec(), [5.1, 3.5, 1.4]);
        assert!(d.x.is_standard_layout());
        let e = builtin("iris")
            .unwrap()
            .load::<f64>(&LoadOptions::new().targets(["species", "ash"]))
            .unwrap_err();
        assert!(e.to_string().contains("`species`"), "{e}");
    }

    #[test]
    fn no_targets_drops_the_label_column() {
        let d = builtin("wine").unwrap().load::<f32>(&LoadOptions::new().no_targets()).unwrap();
        assert_eq!(d.x.dim(), (178, 13));
        assert_eq!(d.y.dim(), (178, 0));
    }
}
