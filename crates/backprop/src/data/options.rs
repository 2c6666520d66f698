//! How to read a data file: which columns are targets and how to read them.

/// Which columns hold the targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Targets {
    /// The last column (the default, as for `--target` left out).
    #[default]
    Last,
    /// These columns, by header name (`--target A,B`), in this order.
    Named(Vec<String>),
    /// No targets: every column is a feature (for `predict`). `y` is n×0.
    None,
}

/// How to read target values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TargetKind {
    /// Numbers stay numbers (regression, or labels already 0/1…); a non-numeric column becomes
    /// class labels. Integer arrays in `.npz` files become class labels.
    #[default]
    Auto,
    /// Numbers only; anything else is an error.
    Values,
    /// Class labels (integers or strings), encoded as class indices 0..k in the order of
    /// [`LoadOptions::class_order`]; else non-negative integer labels are their own indices
    /// (PyTorch's convention) and other labels are sorted (numerically when all are integers).
    Classes,
}

/// Options for [`crate::data::load`]; builder style.
///
/// ```
/// use backprop::data::{load, LoadOptions};
/// let opts = LoadOptions::new().target("species").classes();
/// let iris = load::<f64>("iris", &opts)?;
/// assert_eq!(iris.n_classes(), Some(3));
/// # Ok::<(), backprop::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Which columns are targets.
    pub targets: Targets,
    /// How target values are read.
    pub kind: TargetKind,
    /// The class names in index order (e.g. a trained model's classes, so that evaluation data
    /// is encoded as in training). Setting it implies [`TargetKind::Classes`]; a label that is
    /// not listed is an error.
    pub class_order: Option<Vec<String>>,
}

impl LoadOptions {
    /// Defaults: the last column is the target, read as numbers unless it is not numeric.
    pub fn new() -> Self {
        Self::default()
    }

    /// One target column by name.
    pub fn target(mut self, name: impl Into<String>) -> Self {
        self.targets = Targets::Named(vec![name.into()]);
        self
    }

    /// Target columns by name, in order.
    pub fn targets<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.targets = Targets::Named(names.into_iter().map(Into::into).collect());
        self
    }

    /// Target columns from a comma-separated list as on the command line (`"A,B"`); blanks
    /// around names are ignored.
    pub fn target_list(self, list: &str) -> Self {
        self.targets(list.split(',').map(str::trim))
    }

    /// No targets: all columns are features.
    pub fn no_targets(mut self) -> Self {
        self.targets = Targets::None;
        self
    }

    /// Read targets as class labels.
    pub fn classes(mut self) -> Self {
        self.kind = TargetKind::Classes;
        self
    }

    /// Read targets as numbers only.
    pub fn values(mut self) -> Self {
        self.kind = TargetKind::Values;
        self
    }

    /// Encode class labels in this order (implies [`TargetKind::Classes`]).
    pub fn class_order<S: Into<String>>(mut self, classes: impl IntoIterator<Item = S>) -> Self {
        self.class_order = Some(classes.into_iter().map(Into::into).collect());
        self.kind = TargetKind::Classes;
        self
    }

    /// The target kind after applying the rule that a class order implies classes.
    pub(crate) fn effective_kind(&self) -> TargetKind {
        if self.class_order.is_some() { TargetKind::Classes } else { self.kind }
    }
}
