//! The notebook's four functions, with the notebook's calling conventions.
//!
//! `W` is the notebook's dict `{"w_1": (D, K) array, "w_2": (K,) array}`, optionally with
//! `"b_1"` (K,) and `"b_2"` (a scalar); `x` is one sample (D,) and `y` a number. The gradients
//! come back as a dict with the same keys and the same shapes as `W`. All the maths is in
//! `backprop::notebook` (hand-derived, no autodiff); this file only converts.
//!
//! Beyond the notebook, `x` may be a batch (n, D) with `y` of n targets (or one number for all):
//! `simple_feed_forward` then returns the n predictions and `simple_backpropagation` the
//! gradient of the mean loss L = (1/n) Σₛ ½(ŷₛ − yₛ)².

use backprop::notebook::{self, Gradients, Weights, stable_grad_sigmoid, stable_sigmoid};
use ndarray::{Array1, ArrayD, ArrayView1, ArrayViewD};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat};

use crate::convert::{array, matrix, shape_str, vector};
use crate::errors::{run, value_error};

/// Arrays at least this large are processed with the GIL released.
const RELEASE_GIL_FROM: usize = 1 << 14;

/// Applies `f` elementwise like a numpy ufunc: a number gives a Python float, a float32 array
/// stays float32, anything else becomes float64.
fn elementwise(
    py: Python<'_>,
    t: &Bound<'_, PyAny>,
    f32_fn: fn(f32) -> f32,
    f64_fn: fn(f64) -> f64,
) -> PyResult<Py<PyAny>> {
    if let Ok(f) = t.cast::<PyFloat>() {
        return Ok(PyFloat::new(py, f64_fn(f.value())).into_any().unbind());
    }
    if let Ok(a) = t.cast::<PyArrayDyn<f32>>()
        && a.ndim() > 0
    {
        let a = a.readonly();
        let out = map(py, a.as_array(), f32_fn)?;
        return Ok(out.into_pyarray(py).into_any().unbind());
    }
    let a = array::<f64>(t, "t")?;
    let v = a.as_array();
    if v.ndim() == 0 {
        let value = v.iter().next().copied().unwrap_or(f64::NAN);
        return Ok(PyFloat::new(py, f64_fn(value)).into_any().unbind());
    }
    let out = map(py, v, f64_fn)?;
    Ok(out.into_pyarray(py).into_any().unbind())
}

fn map<T: Copy + Send + Sync>(py: Python<'_>, v: ArrayViewD<'_, T>, f: fn(T) -> T) -> PyResult<ArrayD<T>> {
    if v.len() >= RELEASE_GIL_FROM { run(py, || Ok(v.mapv(f))) } else { Ok(v.mapv(f)) }
}

/// σ(t) = 1 / (1 + exp(-t)), for a number or elementwise on an array of any shape.
///
/// Evaluated without overflow for every t: sigmoid(-1000.0) == 0.0, sigmoid(1000.0) == 1.0,
/// and the left tail keeps full relative accuracy. A number gives a float; a float32 array
/// gives float32, any other array (or list) float64.
#[pyfunction]
pub fn sigmoid(py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    elementwise(py, t, stable_sigmoid::<f32>, stable_sigmoid::<f64>)
}

/// σ'(t) = σ(t)(1 − σ(t)), the derivative of `sigmoid`, for a number or an array of any shape.
///
/// Computed as σ(t)·σ(−t), so both tails keep full relative accuracy.
#[pyfunction]
pub fn grad_sigmoid(py: Python<'_>, t: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    elementwise(py, t, stable_grad_sigmoid::<f32>, stable_grad_sigmoid::<f64>)
}

/// The notebook's `W` as the library's `Weights`, plus the shapes the caller used, so the
/// gradients go back in the same shapes and with the same keys.
struct NotebookW {
    weights: Weights,
    w_2_shape: Vec<usize>,
    b_1_shape: Option<Vec<usize>>,
    b_2_shape: Option<Vec<usize>>,
}

const KEYS: [&str; 4] = ["w_1", "w_2", "b_1", "b_2"];

/// A vector-like parameter (`(K,)`, `(K, 1)`, `(1, K)`, a number for K = 1) as a vector.
fn vector_like(a: ArrayViewD<'_, f64>, name: &str, len: usize, rule: &str) -> PyResult<Array1<f64>> {
    let non_unit = a.shape().iter().filter(|&&d| d != 1).count();
    if a.len() != len || non_unit > 1 {
        return Err(value_error(
            name,
            format!("must have {len} entries ({rule}), got an array of shape {}", shape_str(a.shape())),
        ));
    }
    Ok(a.iter().copied().collect())
}

fn extract_w(w: &Bound<'_, PyAny>) -> PyResult<NotebookW> {
    if !w.hasattr("keys")? || !w.hasattr("__getitem__")? {
        return Err(PyTypeError::new_err(format!(
            "W must be a dict with keys \"w_1\" (D, K) and \"w_2\" (K,), optionally \"b_1\" (K,) \
             and \"b_2\" (a number); got {}",
            w.get_type().name()?
        )));
    }
    let mut unknown = Vec::new();
    for key in w.call_method0("keys")?.try_iter()? {
        let key = key?;
        match key.extract::<String>() {
            Ok(k) if KEYS.contains(&k.as_str()) => {}
            _ => unknown.push(key.repr()?.to_string()),
        }
    }
    if !unknown.is_empty() {
        return Err(value_error(
            "W",
            format!(
                "unknown key(s) {}; the notebook's W has \"w_1\" and \"w_2\", and optionally \"b_1\" and \"b_2\"",
                unknown.join(", ")
            ),
        ));
    }
    let get = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        if w.contains(key)? { Ok(Some(w.get_item(key)?)) } else { Ok(None) }
    };
    let missing =
        |key: &str| value_error("W", format!("has no \"{key}\" (the notebook's W has \"w_1\" and \"w_2\")"));

    let w_1_obj = get("w_1")?.ok_or_else(|| missing("w_1"))?;
    let w_1_arr = array::<f64>(&w_1_obj, "W[\"w_1\"]")?;
    let w_1 = matrix(w_1_arr.as_array(), "W[\"w_1\"] (D, K)")?.to_owned();
    let k = w_1.ncols();

    let w_2_obj = get("w_2")?.ok_or_else(|| missing("w_2"))?;
    let w_2_arr = array::<f64>(&w_2_obj, "W[\"w_2\"]")?;
    let w_2_shape = w_2_arr.shape().to_vec();
    let rule = format!("one per column of w_1, which has shape {}", shape_str(w_1.shape()));
    let w_2 = vector_like(w_2_arr.as_array(), "W[\"w_2\"]", k, &rule)?;

    let (b_1, b_1_shape) = match get("b_1")? {
        Some(obj) => {
            let a = array::<f64>(&obj, "W[\"b_1\"]")?;
            (vector_like(a.as_array(), "W[\"b_1\"]", k, &rule)?, Some(a.shape().to_vec()))
        }
        None => (Array1::zeros(k), None),
    };
    let (b_2, b_2_shape) = match get("b_2")? {
        Some(obj) => {
            let a = array::<f64>(&obj, "W[\"b_2\"]")?;
            let v = vector_like(a.as_array(), "W[\"b_2\"]", 1, "the output bias is one number")?;
            (v[0], Some(a.shape().to_vec()))
        }
        None => (0.0, None),
    };
    let weights =
        Weights::with_biases(w_1, w_2, b_1, b_2).map_err(|e| crate::errors::to_py_err(w.py(), e))?;
    Ok(NotebookW { weights, w_2_shape, b_1_shape, b_2_shape })
}

/// The notebook's forward pass: ŷ = σ(w_2ᵀ σ(xᵀ w_1 + b_1) + b_2).
///
/// `x` is one sample of shape (D,); `W` is the notebook's dict {"w_1": (D, K), "w_2": (K,)},
/// optionally with "b_1" (K,) and "b_2" (a number). Returns ŷ as a float. A batch `x` of shape
/// (n, D) gives the n predictions as an array.
#[pyfunction]
#[allow(non_snake_case)]
pub fn simple_feed_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    W: &Bound<'py, PyAny>,
) -> PyResult<Py<PyAny>> {
    let w = extract_w(W)?;
    let x = array::<f64>(x, "x")?;
    let xv = x.as_array();
    match xv.ndim() {
        2 => {
            let xv = matrix(xv, "x")?;
            let y_hat = run(py, || notebook::batch_feed_forward(xv, &w.weights))?;
            Ok(y_hat.into_pyarray(py).into_any().unbind())
        }
        _ => {
            let xv = vector(xv, "x (one sample (D,) or a batch (n, D))")?;
            let y_hat = run(py, || notebook::simple_feed_forward(xv, &w.weights))?;
            Ok(PyFloat::new(py, y_hat).into_any().unbind())
        }
    }
}

/// The notebook's backward pass: the gradients of L = ½(ŷ − y)² with respect to every entry of
/// `W`, derived by hand (δ₂ = (ŷ − y)σ'(z₂), ∂L/∂w_2 = δ₂ x₁, δ₁ = δ₂ w_2 ⊙ σ'(z₁),
/// ∂L/∂w_1 = x δ₁ᵀ).
///
/// Returns a dict with the keys of `W` ("w_1", "w_2", and "b_1"/"b_2" when `W` has them), each
/// gradient a float64 array of its parameter's shape ("b_2" a float when given as a number).
/// With a batch `x` (n, D) and `y` of n targets (or one number for all), the gradient is that
/// of the mean loss (1/n) Σₛ ½(ŷₛ − yₛ)².
#[pyfunction]
#[allow(non_snake_case)]
pub fn simple_backpropagation<'py>(
    py: Python<'py>,
    y: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    W: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let w = extract_w(W)?;
    let x = array::<f64>(x, "x")?;
    let y = array::<f64>(y, "y")?;
    let xv = x.as_array();
    let yv = y.as_array();
    let grads = match xv.ndim() {
        2 => {
            let xv = matrix(xv, "x")?;
            let n = xv.nrows();
            let y_batch: Array1<f64> = if yv.len() == 1 {
                Array1::from_elem(n, yv.iter().copied().next().unwrap_or(f64::NAN))
            } else {
                vector_like(yv, "y", n, "one target per row of x")?
            };
            let (_, g) = run(py, || notebook::batch_backpropagation(y_batch.view(), xv, &w.weights))?;
            g
        }
        _ => {
            let xv: ArrayView1<'_, f64> = vector(xv, "x (one sample (D,) or a batch (n, D))")?;
            if yv.len() != 1 {
                return Err(value_error(
                    "y",
                    format!("one sample x needs one target, got an array of shape {}", shape_str(yv.shape())),
                ));
            }
            let target = yv.iter().copied().next().unwrap_or(f64::NAN);
            run(py, || notebook::simple_backpropagation(target, xv, &w.weights))?
        }
    };
    gradients_dict(py, grads, &w)
}

fn gradients_dict<'py>(py: Python<'py>, g: Gradients, w: &NotebookW) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("w_1", g.w_1.into_pyarray(py))?;
    out.set_item("w_2", g.w_2.into_pyarray(py).reshape(w.w_2_shape.clone())?)?;
    if let Some(shape) = &w.b_1_shape {
        out.set_item("b_1", g.b_1.into_pyarray(py).reshape(shape.clone())?)?;
    }
    if let Some(shape) = &w.b_2_shape {
        if shape.is_empty() {
            out.set_item("b_2", g.b_2)?;
        } else {
            out.set_item("b_2", Array1::from_elem(1, g.b_2).into_pyarray(py).reshape(shape.clone())?)?;
        }
    }
    Ok(out)
}
