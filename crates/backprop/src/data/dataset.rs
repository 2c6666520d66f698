//! A dataset in memory: a feature matrix, a target matrix and the names that travel with them.

use ndarray::{Array2, ArrayView2, Axis, CowArray, Ix2, s};

use crate::{Error, Result, Scalar};

/// The columns `cols` of `m`, each value mapped by `f`, as a row-major array whatever `m`'s
/// layout. Minibatches are gathered by rows; ndarray's `select` along columns (or a Fortran-order
/// file) gives a column-major array whose rows are strided, so every gathered value would be
/// another cache miss (measured: gathering 60,000×784 batches took as long as the steps).
pub(crate) fn columns<A: Copy, B>(
    m: ArrayView2<'_, A>,
    cols: &[usize],
    f: impl Fn(A) -> B,
) -> Result<Array2<B>> {
    if let Some(&c) = cols.iter().find(|&&c| c >= m.ncols()) {
        return Err(Error::shape("columns", format!("column {c} of a matrix with {} columns", m.ncols())));
    }
    let mut out = Vec::with_capacity(m.nrows() * cols.len());
    for row in m.rows() {
        match row.as_slice() {
            Some(r) => out.extend(cols.iter().map(|&c| f(r[c]))),
            None => out.extend(cols.iter().map(|&c| f(row[c]))),
        }
    }
    Array2::from_shape_vec((m.nrows(), cols.len()), out).map_err(|e| Error::shape("columns", e.to_string()))
}

/// Samples as rows: features `x` (n×d) and targets `y` (n×t).
///
/// Class targets follow one convention everywhere: **one** column of class indices stored as
/// floats (0.0, 1.0, …, k−1), with the class names in [`Dataset::classes`]. `cross_entropy` reads
/// the indices; `bce` reads the same column as 0/1 labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T> {
    /// n×d features.
    pub x: Array2<T>,
    /// n×t targets (t = 0 for features-only data, e.g. for `predict`).
    pub y: Array2<T>,
    /// d feature (column) names.
    pub feature_names: Vec<String>,
    /// t target (column) names.
    pub target_names: Vec<String>,
    /// The class names, index order, when `y` holds class indices.
    pub classes: Option<Vec<String>>,
}

impl<T: Scalar> Dataset<T> {
    /// A checked dataset: `x` and `y` have the same number of rows, the names match the widths,
    /// every value is finite and class indices are whole numbers in `0..classes.len()`.
    pub fn new(
        x: Array2<T>,
        y: Array2<T>,
        feature_names: Vec<String>,
        target_names: Vec<String>,
        classes: Option<Vec<String>>,
    ) -> Result<Self> {
        let d = Dataset { x, y, feature_names, target_names, classes };
        d.validate()?;
        Ok(d)
    }

    /// Checks the invariants listed at [`Dataset::new`].
    pub fn validate(&self) -> Result<()> {
        if self.x.nrows() != self.y.nrows() {
            return Err(Error::shape(
                "dataset",
                format!("x has {} rows but y has {}", self.x.nrows(), self.y.nrows()),
            ));
        }
        if self.feature_names.len() != self.x.ncols() {
            return Err(Error::shape(
                "dataset",
                format!("x has {} columns but {} feature names", self.x.ncols(), self.feature_names.len()),
            ));
        }
        if self.target_names.len() != self.y.ncols() {
            return Err(Error::shape(
                "dataset",
                format!("y has {} columns but {} target names", self.y.ncols(), self.target_names.len()),
            ));
        }
        for (what, m, names) in [("x", &self.x, &self.feature_names), ("y", &self.y, &self.target_names)] {
            if let Some(((r, c), v)) = crate::tensor::first_non_finite_2d(&m.view()) {
                return Err(Error::non_finite(
                    format!("dataset {what}"),
                    format!("row {r} (0-based), column `{}` is {v}", names[c]),
                ));
            }
        }
        if let Some(classes) = &self.classes {
            if self.y.ncols() != 1 {
                return Err(Error::shape(
                    "dataset",
                    format!(
                        "class targets need exactly one column of class indices, y has {}",
                        self.y.ncols()
                    ),
                ));
            }
            let k = classes.len();
            if let Some((r, v)) = self
                .y
                .column(0)
                .iter()
                .enumerate()
                .find(|(_, v)| v.fract() != T::zero() || **v < T::zero() || v.f64() >= k as f64)
            {
                return Err(Error::invalid(
                    "class index",
                    format!("row {r} (0-based) holds {v}, not a class index in 0..{k}"),
                ));
            }
        }
        Ok(())
    }

    /// Number of samples n.
    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.x.nrows() == 0
    }

    /// Number of features d.
    pub fn n_features(&self) -> usize {
        self.x.ncols()
    }

    /// Number of target columns t.
    pub fn n_targets(&self) -> usize {
        self.y.ncols()
    }

    /// Number of classes, when the targets are class indices.
    pub fn n_classes(&self) -> Option<usize> {
        self.classes.as_ref().map(Vec::len)
    }

    /// The class indices as `usize` (one per sample), when the targets are classes.
    pub fn class_indices(&self) -> Option<Vec<usize>> {
        self.classes.as_ref()?;
        Some(self.y.column(0).iter().map(|v| v.f64() as usize).collect())
    }

    /// The samples at `rows`, in that order (repeats allowed).
    pub fn select_rows(&self, rows: &[usize]) -> Result<Self> {
        if let Some(&r) = rows.iter().find(|&&r| r >= self.len()) {
            return Err(Error::invalid(
                "rows",
                format!("row {r} is out of range for {} samples", self.len()),
            ));
        }
        Ok(Dataset {
            x: self.x.select(Axis(0), rows),
            y: self.y.select(Axis(0), rows),
            feature_names: self.feature_names.clone(),
            target_names: self.target_names.clone(),
            classes: self.classes.clone(),
        })
    }

    /// Only the samples of the named classes, re-indexed 0..k in the order given.
    ///
    /// `iris.select_classes(&["versicolor", "virginica"])` gives the notebook's binary task:
    /// 100 samples, versicolor → 0, virginica → 1.
    pub fn select_classes(&self, names: &[&str]) -> Result<Self> {
        let Some(classes) = &self.classes else {
            return Err(Error::invalid("classes", "the targets are not class labels"));
        };
        if names.is_empty() {
            return Err(Error::invalid("classes", "select at least one class"));
        }
        let mut old_of_new = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let Some(old) = classes.iter().position(|c| c == name) else {
                return Err(Error::invalid(
                    "classes",
                    format!("no class `{name}`; the classes are {}", classes.join(", ")),
                ));
            };
            if names[..i].contains(name) {
                return Err(Error::invalid("classes", format!("class `{name}` is listed twice")));
            }
            old_of_new.push(old);
        }
        let labels = self.class_indices().unwrap_or_default();
        let rows: Vec<usize> = (0..self.len()).filter(|&r| old_of_new.contains(&labels[r])).collect();
        let mut out = self.select_rows(&rows)?;
        for (v, &r) in out.y.column_mut(0).iter_mut().zip(&rows) {
            let new = old_of_new.iter().position(|&o| o == labels[r]).unwrap_or_default();
            *v = T::of(new as f64);
        }
        out.classes = Some(names.iter().map(|s| s.to_string()).collect());
        Ok(out)
    }

    /// The same data in another precision (values round to nearest for f32).
    pub fn cast<U: Scalar>(&self) -> Dataset<U> {
        Dataset {
            x: self.x.mapv(|v| U::of(v.f64())),
            y: self.y.mapv(|v| U::of(v.f64())),
            feature_names: self.feature_names.clone(),
            target_names: self.target_names.clone(),
            classes: self.classes.clone(),
        }
    }

    /// Minibatches of at most `batch_size` samples, in `order` (a permutation from
    /// [`crate::data::epoch_permutation`]) or in stored order when `order` is `None`.
    ///
    /// In stored order the batches are views (no copy); in a given order they are gathered.
    /// The last batch is smaller when `batch_size` does not divide n.
    pub fn batches<'a>(&'a self, batch_size: usize, order: Option<&'a [usize]>) -> Result<Batches<'a, T>> {
        if batch_size == 0 {
            return Err(Error::invalid("batch size", "must be at least 1"));
        }
        if let Some(order) = order {
            if order.len() != self.len() {
                return Err(Error::shape(
                    "batches",
                    format!("order has {} entries for {} samples", order.len(), self.len()),
                ));
            }
            if let Some(&r) = order.iter().find(|&&r| r >= self.len()) {
                return Err(Error::invalid(
                    "order",
                    format!("row {r} is out of range for {} samples", self.len()),
                ));
            }
        }
        Ok(Batches { x: self.x.view(), y: self.y.view(), order, batch_size, start: 0 })
    }
}

/// One minibatch: features and targets, borrowed or gathered.
#[derive(Debug)]
pub struct Batch<'a, T> {
    /// b×d features.
    pub x: CowArray<'a, T, Ix2>,
    /// b×t targets.
    pub y: CowArray<'a, T, Ix2>,
}

/// Iterator over minibatches; see [`Dataset::batches`].
#[derive(Debug)]
pub struct Batches<'a, T> {
    x: ArrayView2<'a, T>,
    y: ArrayView2<'a, T>,
    order: Option<&'a [usize]>,
    batch_size: usize,
    start: usize,
}

impl<'a, T: Scalar> Iterator for Batches<'a, T> {
    type Item = Batch<'a, T>;

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.x.nrows();
        if self.start >= n {
            return None;
        }
        let end = (self.start + self.batch_size).min(n);
        let batch = match self.order {
            None => Batch {
                x: CowArray::from(self.x.slice_move(s![self.start..end, ..])),
                y: CowArray::from(self.y.slice_move(s![self.start..end, ..])),
            },
            Some(order) => {
                let rows = &order[self.start..end];
                Batch {
                    x: CowArray::from(self.x.select(Axis(0), rows)),
                    y: CowArray::from(self.y.select(Axis(0), rows)),
                }
            }
        };
        self.start = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.x.nrows().saturating_sub(self.start).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl<T: Scalar> ExactSizeIterator for Batches<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn toy() -> Dataset<f64> {
        Dataset::new(
            array![[0., 1.], [2., 3.], [4., 5.], [6., 7.], [8., 9.]],
            array![[0.], [1.], [2.], [1.], [0.]],
            vec!["a".into(), "b".into()],
            vec!["label".into()],
            Some(vec!["p".into(), "q".into(), "r".into()]),
        )
        .unwrap()
    }

    #[test]
    fn new_rejects_mismatched_rows_names_and_non_finite_values() {
        let names = || vec!["a".to_string()];
        assert!(Dataset::<f64>::new(array![[1.], [2.]], array![[1.]], names(), names(), None).is_err());
        assert!(Dataset::<f64>::new(array![[1.]], array![[1.]], vec![], names(), None).is_err());
        assert!(Dataset::<f64>::new(array![[1.]], array![[1.]], names(), vec![], None).is_err());
        let err = Dataset::<f64>::new(array![[f64::NAN]], array![[1.]], names(), names(), None).unwrap_err();
        assert!(err.to_string().contains("row 0"), "{err}");
        assert!(Dataset::<f64>::new(array![[1.]], array![[f64::INFINITY]], names(), names(), None).is_err());
    }

    #[test]
    fn new_rejects_class_indices_out_of_range_or_fractional() {
        let n = || vec!["a".to_string()];
        let c = || Some(vec!["x".to_string(), "y".to_string()]);
        assert!(Dataset::<f64>::new(array![[1.]], array![[2.]], n(), n(), c()).is_err());
        assert!(Dataset::<f64>::new(array![[1.]], array![[0.5]], n(), n(), c()).is_err());
        assert!(Dataset::<f64>::new(array![[1.]], array![[-1.]], n(), n(), c()).is_err());
        let two = vec!["a".to_string(), "b".to_string()];
        assert!(Dataset::<f64>::new(array![[1.]], array![[0., 1.]], n(), two, c()).is_err());
        assert!(Dataset::<f64>::new(array![[1.]], array![[1.]], n(), n(), c()).is_ok());
    }

    #[test]
    fn select_classes_reindexes_in_the_given_order() {
        let d = toy().select_classes(&["r", "q"]).unwrap();
        assert_eq!(d.x, array![[2., 3.], [4., 5.], [6., 7.]]);
        assert_eq!(d.y, array![[1.], [0.], [1.]]);
        assert_eq!(d.classes.unwrap(), ["r", "q"]);
    }

    #[test]
    fn select_classes_rejects_unknown_repeated_or_non_class_targets() {
        let err = toy().select_classes(&["z"]).unwrap_err().to_string();
        assert!(err.contains("`z`") && err.contains("p, q, r"), "{err}");
        assert!(toy().select_classes(&["p", "p"]).is_err());
        assert!(toy().select_classes(&[]).is_err());
        let mut d = toy();
        d.classes = None;
        assert!(d.select_classes(&["p"]).is_err());
    }

    #[test]
    fn batches_cover_every_sample_once_in_order() {
        let d = toy();
        let b: Vec<_> = d.batches(2, None).unwrap().collect();
        assert_eq!(b.len(), 3);
        assert_eq!(b[2].x, array![[8., 9.]]);
        assert!(b[0].x.is_view());
        let order = [4, 3, 2, 1, 0];
        let b: Vec<_> = d.batches(3, Some(&order)).unwrap().collect();
        assert_eq!(b[0].x, array![[8., 9.], [6., 7.], [4., 5.]]);
        assert_eq!(b[1].y, array![[1.], [0.]]);
    }

    #[test]
    fn batches_reject_zero_size_and_bad_orders() {
        let d = toy();
        assert!(d.batches(0, None).is_err());
        assert!(d.batches(2, Some(&[0, 1])).is_err());
        assert!(d.batches(2, Some(&[0, 1, 2, 3, 9])).is_err());
        assert!(d.select_rows(&[7]).is_err());
    }

    #[test]
    fn cast_rounds_to_f32() {
        let d = toy().cast::<f32>();
        assert_eq!(d.x[[1, 1]], 3.0f32);
        assert_eq!(d.classes.as_ref().unwrap().len(), 3);
    }
}
