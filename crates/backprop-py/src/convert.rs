//! Python objects → ndarray views and back, with errors that name the argument.
//!
//! Inputs are read the way `numpy.asarray(obj, dtype=T)` reads them: numpy arrays of any dtype,
//! strided views, nested lists, Python and numpy scalars. An array already of dtype `T` is
//! borrowed, not copied.

use ndarray::{ArrayView1, ArrayView2, ArrayViewD, Ix1, Ix2};
use numpy::{AllowTypeChange, Element, PyArrayLikeDyn, PyReadonlyArrayDyn};
use pyo3::prelude::*;

use crate::errors::value_error;

/// Borrows (or converts) `obj` as an n-d array of `T`; `name` is the argument's name for errors.
pub fn array<'py, T: Element + Named + 'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>>
where
    Vec<T>: for<'a> FromPyObject<'a, 'py>,
{
    match obj.extract::<PyArrayLikeDyn<'py, T, AllowTypeChange>>() {
        // `PyArrayLike` derefs to its readonly array; a clone re-borrows it (shared borrows nest).
        Ok(a) => Ok((*a).clone()),
        Err(e) => Err(value_error(
            name,
            format!("cannot be read as an array of {} numbers ({})", T::NAME, e.value(obj.py())),
        )),
    }
}

/// Element types the bindings convert to: a short name for error messages.
pub trait Named {
    /// `float32` or `float64`, as numpy spells them.
    const NAME: &'static str;
}

impl Named for f32 {
    const NAME: &'static str = "float32";
}

impl Named for f64 {
    const NAME: &'static str = "float64";
}

/// `a` as a vector, or a `ValueError` naming `name` and the shape it has.
pub fn vector<'a, T>(a: ArrayViewD<'a, T>, name: &str) -> PyResult<ArrayView1<'a, T>> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix1>()
        .map_err(|_| value_error(name, format!("must be 1-D, got an array of shape {}", shape_str(&shape))))
}

/// `a` as a matrix, or a `ValueError` naming `name` and the shape it has.
pub fn matrix<'a, T>(a: ArrayViewD<'a, T>, name: &str) -> PyResult<ArrayView2<'a, T>> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix2>()
        .map_err(|_| value_error(name, format!("must be 2-D, got an array of shape {}", shape_str(&shape))))
}

/// A shape the way numpy prints it: `(4, 5)`, `(5,)`, `()`.
pub fn shape_str(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}
