//! Matching new data to a saved model: the same classes, the same feature columns in the same
//! order, the same standardisation — so `eval` and `predict` never see silently shifted inputs.

use crate::data::{Dataset, LoadOptions, Targets};
use crate::io::ModelConfig;
use crate::{Error, Result, Scalar};

/// Whether `names` are the positional names loaders give unnamed columns (`0`, `1`, … for
/// `.npy`, `x0`, `x1`, … for `.npz`): such data can only be matched by width.
fn positional(names: &[String]) -> bool {
    names.iter().enumerate().all(|(i, n)| *n == i.to_string() || *n == format!("x{i}"))
}

impl ModelConfig {
    /// Load options for data to evaluate this model on: class labels are encoded with the
    /// model's class list (so `setosa` gets the index it had in training, and a class the model
    /// never saw is an error), and by default the target columns are the ones it was trained on.
    pub fn load_options(&self, base: LoadOptions) -> LoadOptions {
        let mut opts = base;
        if opts.targets == Targets::Last
            && let Some(t) = &self.target_names
            && !t.is_empty()
        {
            opts.targets = Targets::Named(t.clone());
        }
        if let (Some(classes), false) = (&self.classes, opts.targets == Targets::None) {
            opts = opts.class_order(classes.iter().cloned());
        }
        opts
    }

    /// `data` made ready for the network: feature columns put in the model's order by name
    /// (when both sides have names), the width checked against the model's inputs, and the
    /// model's input standardisation applied.
    ///
    /// ```
    /// use backprop::data::{load, LoadOptions};
    /// use backprop::io::ModelConfig;
    /// use backprop::nn::{Activation, Mlp};
    /// let iris = load::<f64>("iris", &LoadOptions::new())?;
    /// let mlp = Mlp::<f64>::zeros(&[4, 3], &[Activation::Identity], true)?;
    /// let config = ModelConfig::new(&mlp).names_from(&iris);
    /// let ready = config.prepare(&iris)?;
    /// assert_eq!(ready.x, iris.x);
    /// # Ok::<(), backprop::Error>(())
    /// ```
    pub fn prepare<T: Scalar>(&self, data: &Dataset<T>) -> Result<Dataset<T>> {
        let inputs = self.layers.first().copied().unwrap_or(0);
        let mut out = match &self.feature_names {
            Some(model_names) if !positional(&data.feature_names) && data.feature_names != *model_names => {
                let missing: Vec<&str> = model_names
                    .iter()
                    .filter(|n| !data.feature_names.contains(n))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    return Err(Error::invalid(
                        "data",
                        format!(
                            "the model was trained on column(s) {} which the data lacks; the data has: {}",
                            missing.join(", "),
                            data.feature_names.join(", ")
                        ),
                    ));
                }
                let extra: Vec<&str> = data
                    .feature_names
                    .iter()
                    .filter(|n| !model_names.contains(n))
                    .map(String::as_str)
                    .collect();
                if !extra.is_empty() {
                    return Err(Error::invalid(
                        "data",
                        format!(
                            "column(s) {} are not inputs of the model (its inputs: {}); name them as targets or drop them",
                            extra.join(", "),
                            model_names.join(", ")
                        ),
                    ));
                }
                let order: Vec<usize> = model_names
                    .iter()
                    .map(|n| data.feature_names.iter().position(|d| d == n).unwrap_or_default())
                    .collect();
                Dataset {
                    x: data.x.select(ndarray::Axis(1), &order),
                    feature_names: model_names.clone(),
                    ..data.clone()
                }
            }
            _ => data.clone(),
        };
        if out.n_features() != inputs {
            return Err(Error::shape(
                "data",
                format!(
                    "the data has {} feature columns but the model takes {inputs} inputs",
                    out.n_features()
                ),
            ));
        }
        if let Some(norm) = &self.normalization {
            norm.apply(&mut out.x)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Normalization, read_csv_str};
    use crate::nn::{Activation, Mlp};
    use ndarray::array;
    use std::path::Path;

    fn config() -> ModelConfig {
        let mlp = Mlp::<f64>::zeros(&[2, 2], &[Activation::Identity], true).unwrap();
        let mut c = ModelConfig::new(&mlp);
        c.feature_names = Some(vec!["a".into(), "b".into()]);
        c.target_names = Some(vec!["kind".into()]);
        c.classes = Some(vec!["dog".into(), "cat".into()]);
        c
    }

    fn csv(text: &str, opts: &LoadOptions) -> Result<Dataset<f64>> {
        read_csv_str(text, Path::new("new.csv"), opts)
    }

    #[test]
    fn columns_are_reordered_by_name_and_classes_keep_training_indices() {
        let c = config();
        let opts = c.load_options(LoadOptions::new());
        let d = csv("kind,b,a\ncat,2,1\ndog,4,3\n", &opts).unwrap();
        let ready = c.prepare(&d).unwrap();
        assert_eq!(ready.x, array![[1., 2.], [3., 4.]]);
        assert_eq!(ready.y, array![[1.], [0.]]); // dog = 0, cat = 1 as in training
        let e = csv("a,b,kind\n1,2,cow\n", &opts).unwrap_err().to_string();
        assert!(e.contains("cow"), "{e}");
    }

    #[test]
    fn missing_or_extra_columns_and_wrong_widths_are_errors() {
        let c = config();
        let d = csv("a,c,kind\n1,2,dog\n", &c.load_options(LoadOptions::new())).unwrap();
        let e = c.prepare(&d).unwrap_err().to_string();
        assert!(e.contains("lacks") && e.contains("b"), "{e}");
        let d = csv("a,b,c,kind\n1,2,3,dog\n", &c.load_options(LoadOptions::new())).unwrap();
        let e = c.prepare(&d).unwrap_err().to_string();
        assert!(e.contains("column(s) c are not inputs"), "{e}");
        let d = Dataset::new(
            array![[1., 2., 3.]],
            array![[0.]],
            vec!["0".into(), "1".into(), "2".into()],
            vec!["y".into()],
            None,
        )
        .unwrap();
        let e = c.prepare(&d).unwrap_err().to_string();
        assert!(e.contains("3 feature columns but the model takes 2"), "{e}");
    }

    #[test]
    fn positional_columns_match_by_width_and_normalisation_applies() {
        let mut c = config();
        c.normalization = Some(Normalization { mean: vec![1.0, 2.0], std: vec![2.0, 4.0] });
        let d = Dataset::new(
            array![[3., 10.]],
            array![[0.]],
            vec!["x0".into(), "x1".into()],
            vec!["y".into()],
            None,
        )
        .unwrap();
        assert_eq!(c.prepare(&d).unwrap().x, array![[1., 2.]]);
    }
}
