//! `backprop.Mlp`: a multilayer perceptron in float32 or float64 — build, load, save, predict,
//! loss and gradients, training, Hessians, Hessian-vector products and the L2-shrinkage analysis.
//!
//! Data conventions (numpy in and out): `x` is (n, inputs) (one sample may be given as
//! (inputs,)); `y` is (n, outputs), or (n,) for one output / class indices for
//! `cross_entropy`. Inputs are converted to the model's dtype. When the model carries input
//! standardisation (a model trained by the CLI), it is applied to `x` first, as the CLI does;
//! with target standardisation, targets are standardised and predictions mapped back.
//!
//! Tensor names are those of `model.safetensors`: the equivalent `torch.nn.Sequential`'s
//! state-dict keys (`0.weight` out×in, `0.bias`, `2.weight`, …). Flat parameter vectors, the
//! rows and columns of Hessians, follow the library's one order: layers in order, each weight
//! row-major (out×in), then that layer's bias when `params="all"`.

use std::time::{Duration, Instant};

use backprop::curvature::{
    Curvature, Lanczos, MlpObjective, Objective, ShrinkageAnalysis, Slq, SymmetricOperator,
    eigh as library_eigh, hutchinson_trace,
};
use backprop::io::{ModelConfig, load_model};
use backprop::nn::{Activation, AnyMlp, Init, Loss, Mlp, MlpBuilder, ParamSelection};
use backprop::optim::OptimizerConfig;
use backprop::train::{Control, EpochRecord, Observer, Outcome, TrainState, Trainer};
use backprop::{DType, Scalar};
use ndarray::{Array1, Array2, ArrayView2, Ix1};
use numpy::{Element, IntoPyArray, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{Named, array, matrix, shape_str, vector};
use crate::errors::{run, to_py_err, value_error};

/// Runs `$body` with `$m` bound to the typed `Mlp<T>` and `$T` the element type.
macro_rules! typed {
    ($model:expr, $m:ident, $T:ident => $body:expr) => {
        match $model {
            AnyMlp::F32($m) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            AnyMlp::F64($m) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
        }
    };
}

/// A multilayer perceptron: affine layers, each followed by an activation.
///
/// Build one with ``Mlp([4, 5, 1], activation="sigmoid", init="ones", bias=False)`` (the
/// notebook's network) or load one with ``Mlp.load(path)``; ``save(path)`` writes the model
/// directory the ``backprop`` CLI reads and writes (``model.safetensors`` + ``config.json``).
#[pyclass(name = "Mlp", module = "backprop", subclass)]
pub struct PyMlp {
    model: AnyMlp,
    config: ModelConfig,
}

fn parse<T: std::str::FromStr<Err = backprop::Error>>(py: Python<'_>, s: &str) -> PyResult<T> {
    s.parse::<T>().map_err(|e| to_py_err(py, e))
}

fn parse_dtype(dtype: &Bound<'_, PyAny>) -> PyResult<DType> {
    // Strings ("float64", "f32") or anything numpy.dtype() understands (np.float32, a dtype).
    let name: String = match dtype.extract::<String>() {
        Ok(s) => s,
        Err(_) => {
            dtype.py().import("numpy")?.getattr("dtype")?.call1((dtype,))?.getattr("name")?.extract()?
        }
    };
    match name.as_str() {
        "float64" | "f64" | "double" => Ok(DType::F64),
        "float32" | "f32" | "single" => Ok(DType::F32),
        other => Err(value_error("dtype", format!("`{other}` is not one of float64, float32"))),
    }
}

fn parse_curvature(kind: &str) -> PyResult<Curvature> {
    match kind {
        "hessian" => Ok(Curvature::Hessian),
        "gauss_newton" | "ggn" => Ok(Curvature::GaussNewton),
        other => Err(value_error("curvature", format!("`{other}` is not one of hessian, gauss_newton"))),
    }
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float32",
        DType::F64 => "float64",
    }
}

/// Reads a flat parameter vector (or a batch of them, one per row) as float64.
fn directions(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Array2<f64>> {
    let a = array::<f64>(obj, name)?;
    let v = a.as_array();
    match v.ndim() {
        1 => Ok(vector(v, name)?.insert_axis(ndarray::Axis(0)).to_owned()),
        _ => Ok(matrix(v, &format!("{name} (one vector, or one per row)"))?.to_owned()),
    }
}

impl PyMlp {
    fn loss_for(&self, py: Python<'_>, loss: Option<&str>) -> PyResult<Loss> {
        match loss {
            Some(name) => parse(py, name),
            None => Ok(self.config.loss.unwrap_or(Loss::SquaredError)),
        }
    }

    /// `x` as an (n, inputs) array of `T`, standardised if the model carries standardisation.
    fn inputs<'py, T>(
        &self,
        py: Python<'py>,
        obj: &Bound<'py, PyAny>,
        name: &str,
    ) -> PyResult<(Array2<T>, bool)>
    where
        T: Scalar + Element + Named,
        Vec<T>: for<'a> FromPyObject<'a, 'py>,
    {
        let a = array::<T>(obj, name)?;
        let v = a.as_array();
        let inputs = self.model.inputs();
        let (x, single) = match v.ndim() {
            1 if v.len() == inputs => (
                v.into_dimensionality::<Ix1>()
                    .map_err(|e| value_error(name, e))?
                    .insert_axis(ndarray::Axis(0))
                    .to_owned(),
                true,
            ),
            2 => {
                (v.into_dimensionality::<ndarray::Ix2>().map_err(|e| value_error(name, e))?.to_owned(), false)
            }
            _ => {
                return Err(value_error(
                    name,
                    format!(
                        "must be (n, {inputs}) (or one sample ({inputs},)), got an array of shape {}",
                        shape_str(v.shape())
                    ),
                ));
            }
        };
        let mut x = x;
        if let Some(norm) = &self.config.normalization {
            norm.apply(&mut x).map_err(|e| to_py_err(py, e))?;
        }
        Ok((x, single))
    }

    /// `y` as an (n, outputs) array of `T` ((n,) becomes (n, 1)), standardised if the model
    /// carries target standardisation.
    fn targets<'py, T>(&self, py: Python<'py>, obj: &Bound<'py, PyAny>, n: usize) -> PyResult<Array2<T>>
    where
        T: Scalar + Element + Named,
        Vec<T>: for<'a> FromPyObject<'a, 'py>,
    {
        let a = array::<T>(obj, "y")?;
        let v = a.as_array();
        let mut y = match v.ndim() {
            0 => Array2::from_elem((1, 1), v.iter().copied().next().unwrap_or_else(T::nan)),
            1 if n == 1 && v.len() > 1 => {
                v.to_shape((1, v.len())).map_err(|e| value_error("y", e))?.to_owned()
            }
            1 => v.to_shape((v.len(), 1)).map_err(|e| value_error("y", e))?.to_owned(),
            2 => v.into_dimensionality::<ndarray::Ix2>().map_err(|e| value_error("y", e))?.to_owned(),
            _ => {
                return Err(value_error(
                    "y",
                    format!("must be (n,) or (n, outputs), got an array of shape {}", shape_str(v.shape())),
                ));
            }
        };
        if let Some(norm) = &self.config.target_normalization {
            norm.apply(&mut y).map_err(|e| to_py_err(py, e))?;
        }
        Ok(y)
    }

    fn objective(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        loss: Option<&str>,
        params: &str,
    ) -> PyResult<MlpObjective> {
        let loss = self.loss_for(py, loss)?;
        let selection: ParamSelection = parse(py, params)?;
        typed!(&self.model, m, T => {
            let (xa, _) = self.inputs::<T>(py, x, "x")?;
            let ya = self.targets::<T>(py, y, xa.nrows())?;
            let obj = run(py, || MlpObjective::new(m, xa.view(), ya.view(), loss))?;
            Ok(obj.params(selection))
        })
    }

    /// Runs `work` on the curvature operator (`"hessian"` or `"gauss_newton"`) of the loss on
    /// (x, y) at the model's weights, with the GIL released.
    #[allow(clippy::too_many_arguments)]
    fn with_curvature<R: Send>(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        loss: Option<&str>,
        params: &str,
        curvature: &str,
        work: impl FnOnce(&dyn SymmetricOperator) -> backprop::Result<R> + Send,
    ) -> PyResult<R> {
        let kind = parse_curvature(curvature)?;
        let obj = self.objective(py, x, y, loss, params)?;
        run(py, || {
            let w = obj.initial();
            work(obj.curvature(w.view(), kind)?.as_ref())
        })
    }
}

fn tensors_dict<'py, T: Scalar + Element>(py: Python<'py>, m: &Mlp<T>) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for spec in m.param_specs() {
        let layer = &m.layers[spec.layer];
        if spec.is_bias {
            if let Some(b) = &layer.bias {
                out.set_item(spec.name, b.clone().into_pyarray(py))?;
            }
        } else {
            out.set_item(spec.name, layer.weight.clone().into_pyarray(py))?;
        }
    }
    Ok(out)
}

/// [`tensors_dict`] by value: each array moves into numpy without a copy (for a 784-256-256-10
/// gradient, a fresh megabyte per call less).
fn tensors_dict_owned<'py, T: Scalar + Element>(py: Python<'py>, m: Mlp<T>) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let specs = m.param_specs();
    let mut layers: Vec<_> = m.layers.into_iter().map(|l| (Some(l.weight), l.bias)).collect();
    for spec in specs {
        let (weight, bias) = &mut layers[spec.layer];
        if spec.is_bias {
            if let Some(b) = bias.take() {
                out.set_item(spec.name, b.into_pyarray(py))?;
            }
        } else if let Some(w) = weight.take() {
            out.set_item(spec.name, w.into_pyarray(py))?;
        }
    }
    Ok(out)
}

#[pymethods]
impl PyMlp {
    /// Mlp(layers, activation="sigmoid", output_activation=None, *, activations=None,
    /// bias=True, init="glorot_uniform", seed=0, dtype="float64", loss=None)
    ///
    /// A new network with widths ``layers`` = [inputs, hidden..., outputs]. ``activation``
    /// applies to every layer (the output included unless ``output_activation`` is given), or
    /// ``activations`` gives one per layer: sigmoid, tanh, relu, leaky_relu, softplus,
    /// identity. ``init``: ones (the notebook's), constant:V, glorot_uniform, glorot_normal, he,
    /// he_uniform; biases start at 0. Same seed, same weights, on any machine. ``loss`` (the
    /// model's own, used when a method is not given one; squared_error if unset):
    /// squared_error, mse, bce, cross_entropy.
    #[new]
    #[pyo3(signature = (layers, activation="sigmoid", output_activation=None, *, activations=None, bias=true, init="glorot_uniform", seed=0, dtype=None, loss=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        layers: Vec<usize>,
        activation: &str,
        output_activation: Option<&str>,
        activations: Option<Vec<String>>,
        bias: bool,
        init: &str,
        seed: u64,
        dtype: Option<&Bound<'_, PyAny>>,
        loss: Option<&str>,
    ) -> PyResult<Self> {
        let mut b = MlpBuilder::new(&layers).activation(parse::<Activation>(py, activation)?).bias(bias);
        if let Some(out) = output_activation {
            b = b.output_activation(parse::<Activation>(py, out)?);
        }
        if let Some(list) = activations {
            let acts = list.iter().map(|a| parse::<Activation>(py, a)).collect::<PyResult<Vec<_>>>()?;
            b = b.activations(&acts);
        }
        b = b.init(parse::<Init>(py, init)?).seed(seed);
        let dtype = match dtype {
            Some(d) => parse_dtype(d)?,
            None => DType::F64,
        };
        let model: AnyMlp = match dtype {
            DType::F32 => b.build::<f32>().map_err(|e| to_py_err(py, e))?.into(),
            DType::F64 => b.build::<f64>().map_err(|e| to_py_err(py, e))?.into(),
        };
        let mut config = typed!(&model, m, T => ModelConfig::new(m));
        if let Some(name) = loss {
            config.loss = Some(parse(py, name)?);
        }
        Ok(PyMlp { model, config })
    }

    /// Mlp.load(path) -> Mlp
    ///
    /// Loads a model directory (``model.safetensors`` + ``config.json``) written by ``save``, by
    /// the ``backprop`` CLI, or by hand for PyTorch weights. OSError if it cannot be read,
    /// FileFormatError if it is malformed.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let (model, config) = run(py, || load_model(&path))?;
        Ok(PyMlp { model, config })
    }

    /// save(path)
    ///
    /// Writes the model directory (created if needed; each file written atomically).
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        run(py, || self.model.save(&path, &self.config))
    }

    /// Widths [inputs, hidden..., outputs].
    #[getter]
    fn layers(&self) -> Vec<usize> {
        self.model.sizes()
    }

    /// One activation name per layer.
    #[getter]
    fn activations(&self) -> Vec<String> {
        self.model.activations().iter().map(|a| a.to_string()).collect()
    }

    /// Whether the layers have biases.
    #[getter]
    fn bias(&self) -> bool {
        self.model.has_bias()
    }

    /// "float64" or "float32".
    #[getter]
    fn dtype(&self) -> &'static str {
        dtype_name(self.model.dtype())
    }

    /// The model's own loss name, used when a method is not given one (None if unset: methods
    /// then use squared_error). Set by the constructor's ``loss``, by ``train`` and by files.
    #[getter]
    fn get_default_loss(&self) -> Option<String> {
        self.config.loss.map(|l| l.to_string())
    }

    #[setter]
    fn set_default_loss(&mut self, py: Python<'_>, loss: Option<&str>) -> PyResult<()> {
        self.config.loss = loss.map(|l| parse(py, l)).transpose()?;
        Ok(())
    }

    /// The number of parameters: ``params="weights"`` (default, as in the notebook) or "all".
    #[pyo3(signature = (params="weights"))]
    fn num_params(&self, py: Python<'_>, params: &str) -> PyResult<usize> {
        Ok(self.model.num_params(parse(py, params)?))
    }

    /// Tensor names in the flat order (the torch.nn.Sequential state-dict keys).
    #[getter]
    fn param_names(&self) -> Vec<String> {
        self.model.param_specs().into_iter().map(|s| s.name).collect()
    }

    /// The config.json contents as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut c = self.config.clone();
        // describe() runs on save; keep the architecture fields current here too.
        c.layers = self.model.sizes();
        c.activations = self.model.activations();
        c.bias = self.model.has_bias();
        c.dtype = Some(self.model.dtype());
        let text = serde_json::to_string(&c).map_err(|e| PyValueError::new_err(e.to_string()))?;
        py.import("json")?.getattr("loads")?.call1((text,))
    }

    /// state_dict() -> dict[str, ndarray]
    ///
    /// Copies of every tensor, keyed as in ``model.safetensors`` (``0.weight`` out×in, ...),
    /// loadable into the equivalent torch.nn.Sequential with ``load_state_dict``.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        typed!(&self.model, m, T => tensors_dict(py, m))
    }

    /// load_state_dict(tensors)
    ///
    /// Replaces every tensor from a dict keyed like ``state_dict()`` (strict: all keys, exact
    /// shapes, finite values). Arrays are converted to the model's dtype.
    fn load_state_dict(&mut self, py: Python<'_>, tensors: &Bound<'_, PyAny>) -> PyResult<()> {
        let specs = self.model.param_specs();
        let keys: Vec<String> =
            tensors.call_method0("keys")?.try_iter()?.map(|k| k?.extract()).collect::<PyResult<_>>()?;
        let expected: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        let extra: Vec<&String> = keys.iter().filter(|k| !expected.contains(&k.as_str())).collect();
        if !extra.is_empty() {
            return Err(value_error(
                "state_dict",
                format!("unexpected key(s) {extra:?}; expected {expected:?}"),
            ));
        }
        let mut model = self.model.clone();
        typed!(&mut model, m, T => {
            for spec in &specs {
                let obj = tensors.get_item(&spec.name).map_err(|_| value_error("state_dict", format!("missing key {:?}; expected {expected:?}", spec.name)))?;
                let a = array::<T>(&obj, &spec.name)?;
                let v = a.as_array();
                if v.shape() != spec.shape.as_slice() {
                    return Err(value_error(&spec.name, format!("must have shape {}, got {}", shape_str(&spec.shape), shape_str(v.shape()))));
                }
                let layer = &mut m.layers[spec.layer];
                if spec.is_bias {
                    if let Some(b) = &mut layer.bias { b.assign(&v.into_dimensionality::<Ix1>().map_err(|e| value_error(&spec.name, e))?); }
                } else {
                    layer.weight.assign(&v.into_dimensionality::<ndarray::Ix2>().map_err(|e| value_error(&spec.name, e))?);
                }
            }
            m.validate().map_err(|e| to_py_err(py, e))?;
        });
        self.model = model;
        Ok(())
    }

    /// get_params(params="weights") -> ndarray
    ///
    /// The selected parameters as one flat vector (the order of Hessian rows and columns).
    #[pyo3(signature = (params="weights"))]
    fn get_params<'py>(&self, py: Python<'py>, params: &str) -> PyResult<Bound<'py, PyAny>> {
        let selection = parse(py, params)?;
        Ok(typed!(&self.model, m, T => m.flat_params(selection).into_pyarray(py).into_any()))
    }

    /// set_params(flat, params="weights")
    ///
    /// The inverse of ``get_params``.
    #[pyo3(signature = (flat, params="weights"))]
    fn set_params(&mut self, py: Python<'_>, flat: &Bound<'_, PyAny>, params: &str) -> PyResult<()> {
        let selection = parse(py, params)?;
        typed!(&mut self.model, m, T => {
            let a = array::<T>(flat, "flat")?;
            let v = vector(a.as_array(), "flat")?.to_vec();
            let mut next = m.clone();
            next.set_flat_params(selection, &v).map_err(|e| to_py_err(py, e))?;
            next.validate().map_err(|e| to_py_err(py, e))?;
            *m = next;
        });
        Ok(())
    }

    /// astype(dtype) -> Mlp
    ///
    /// A copy in another precision ("float32" or "float64").
    fn astype(&self, dtype: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyMlp { model: self.model.cast_to(parse_dtype(dtype)?), config: self.config.clone() })
    }

    /// Makes `self` a copy of `other` (how the Python subclass wraps a native result).
    fn _assign(&mut self, other: PyRef<'_, PyMlp>) {
        self.model = other.model.clone();
        self.config = other.config.clone();
    }

    /// copy() -> Mlp
    fn copy(&self) -> Self {
        PyMlp { model: self.model.clone(), config: self.config.clone() }
    }

    /// predict(x) -> ndarray
    ///
    /// The network's outputs for every row of ``x`` (n, inputs): (n, outputs), in the model's
    /// dtype (for one sample (inputs,), (outputs,)). The output layer's activation is applied
    /// (sigmoid probabilities; raw logits for an identity output).
    fn predict<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        typed!(&self.model, m, T => {
            let (xa, single) = self.inputs::<T>(py, x, "x")?;
            let mut out = run(py, || m.predict(xa.view()))?;
            if let Some(norm) = &self.config.target_normalization {
                norm.invert(&mut out).map_err(|e| to_py_err(py, e))?;
            }
            let arr = out.into_pyarray(py);
            if single { Ok(arr.reshape(vec![m.outputs()])?.into_any()) } else { Ok(arr.into_any()) }
        })
    }

    /// loss(x, y, loss=None) -> float
    ///
    /// The mean loss on (x, y): ``loss`` or the model's own (squared_error if unset).
    #[pyo3(signature = (x, y, loss=None))]
    fn loss(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        loss: Option<&str>,
    ) -> PyResult<f64> {
        let loss = self.loss_for(py, loss)?;
        typed!(&self.model, m, T => {
            let (xa, _) = self.inputs::<T>(py, x, "x")?;
            let ya = self.targets::<T>(py, y, xa.nrows())?;
            run(py, || m.loss(loss, xa.view(), ya.view()))
        })
    }

    /// loss_and_grad(x, y, loss=None) -> (float, dict[str, ndarray])
    ///
    /// The mean loss and its gradient with respect to every tensor, keyed like ``state_dict()``,
    /// in the model's dtype. Computed by the fused backward pass.
    #[pyo3(signature = (x, y, loss=None))]
    fn loss_and_grad<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        loss: Option<&str>,
    ) -> PyResult<(f64, Bound<'py, PyDict>)> {
        let loss = self.loss_for(py, loss)?;
        typed!(&self.model, m, T => {
            let (xa, _) = self.inputs::<T>(py, x, "x")?;
            let ya = self.targets::<T>(py, y, xa.nrows())?;
            let (value, grads) = run(py, || m.loss_and_grad(loss, xa.view(), ya.view()))?;
            Ok((value, tensors_dict_owned(py, grads.into_mlp())?))
        })
    }

    /// grad(x, y, loss=None) -> dict[str, ndarray]
    ///
    /// The gradient of the mean loss with respect to every tensor (see ``loss_and_grad``).
    #[pyo3(signature = (x, y, loss=None))]
    fn grad<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        loss: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        Ok(self.loss_and_grad(py, x, y, loss)?.1)
    }

    /// hessian(x, y, loss=None, params="weights", curvature="hessian") -> ndarray
    ///
    /// The exact Hessian of the mean loss (float64, symmetric), over the weights (biases held
    /// at their values, as in the notebook) or ``params="all"``; rows and columns in the order
    /// of ``get_params(params)``. ``curvature="gauss_newton"`` gives the PSD generalised
    /// Gauss-Newton matrix instead.
    #[pyo3(signature = (x, y, loss=None, params="weights", curvature="hessian"))]
    fn hessian<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        loss: Option<&str>,
        params: &str,
        curvature: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.with_curvature(py, x, y, loss, params, curvature, |op| op.to_dense())?;
        Ok(h.into_pyarray(py).into_any())
    }

    /// hvp(x, y, v, loss=None, params="weights", curvature="hessian") -> ndarray
    ///
    /// The Hessian-vector product H·v without forming H (one forward, backward and R-op pass).
    /// ``v`` is one flat vector (n_params,) or several, one per row (k, n_params).
    #[pyo3(signature = (x, y, v, loss=None, params="weights", curvature="hessian"))]
    #[allow(clippy::too_many_arguments)]
    fn hvp<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        v: &Bound<'py, PyAny>,
        loss: Option<&str>,
        params: &str,
        curvature: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let single = array::<f64>(v, "v")?.as_array().ndim() == 1;
        let dirs = directions(v, "v")?;
        let hv = self.with_curvature(py, x, y, loss, params, curvature, |op| op.apply_rows(dirs.view()))?;
        if single {
            Ok(hv.row(0).to_owned().into_pyarray(py).into_any())
        } else {
            Ok(hv.into_pyarray(py).into_any())
        }
    }

    /// shrinkage(x, y, mus, loss=None, params="weights", curvature="hessian", *, base_mu=0.0) -> dict
    ///
    /// The notebook's bonus, measured: at the model's weights w*, for each μ, the predicted
    /// regularised optimum w̃ = Q(Λ+μI)⁻¹ΛQᵀw* and factors λᵢ/(λᵢ+μ), checked against the real
    /// minimiser w_μ of L(w) + (μ/2)‖w‖² (weights penalised, biases free). Returns the CLI's
    /// JSON report as a dict (``eigenvalues``, ``diagnostics``, ``results`` with ``mu``,
    /// ``relative_error`` and per-direction ``directions``), plus numpy arrays
    /// ``eigenvectors`` (columns) and, per result, ``predicted`` and ``measured`` weights.
    /// ``base_mu`` μ₀ > 0 analyses the strict minimum of L + (μ₀/2)‖w‖² reached from the
    /// model's weights instead, each μ an extra penalty on top (for weights that are no
    /// minimum of L, e.g. separable classes).
    #[pyo3(signature = (x, y, mus, loss=None, params="weights", curvature="hessian", *, base_mu=0.0))]
    #[allow(clippy::too_many_arguments)]
    fn shrinkage<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        mus: Vec<f64>,
        loss: Option<&str>,
        params: &str,
        curvature: &str,
        base_mu: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let loss = self.loss_for(py, loss)?;
        let selection: ParamSelection = parse(py, params)?;
        let analysis = ShrinkageAnalysis::new(mus)
            .params(selection)
            .curvature(parse_curvature(curvature)?)
            .base_mu(base_mu);
        let report = typed!(&self.model, m, T => {
            let (xa, _) = self.inputs::<T>(py, x, "x")?;
            let ya = self.targets::<T>(py, y, xa.nrows())?;
            run(py, || analysis.run(m, xa.view(), ya.view(), loss))?
        });
        let text = serde_json::to_string(&report).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let out = py.import("json")?.getattr("loads")?.call1((text,))?;
        out.set_item("eigenvectors", report.eigenvectors.clone().into_pyarray(py))?;
        out.set_item("condition_number", report.diagnostics.condition_number)?;
        let results = out.get_item("results")?;
        for (i, r) in report.results.iter().enumerate() {
            let entry = results.get_item(i)?;
            entry.set_item("predicted", r.predicted.clone().into_pyarray(py))?;
            entry.set_item("measured", r.measured.clone().into_pyarray(py))?;
        }
        Ok(out)
    }

    /// eigenvalues(x, y, top=10, bottom=0, *, loss=None, params="weights", curvature="hessian", tol=1e-8, max_steps=300, seed=0, vectors=False) -> dict
    ///
    /// Extreme eigenvalues of the Hessian (or GGN) without forming it: Lanczos with full
    /// reorthogonalisation on Hessian-vector products, for models too large for ``hessian``.
    /// Returns ``top`` (decreasing) and ``bottom`` (increasing) Ritz values with their residual
    /// norms ‖Hx − θx‖ (``top_residuals``, ``bottom_residuals``), ``steps`` (= HVPs) and
    /// ``converged`` (every residual ≤ tol·max|θ|); with ``vectors=True`` also
    /// ``top_vectors`` / ``bottom_vectors``, unit Ritz vectors one per column.
    #[pyo3(signature = (x, y, top=10, bottom=0, *, loss=None, params="weights", curvature="hessian", tol=1e-8, max_steps=300, seed=0, vectors=false))]
    #[allow(clippy::too_many_arguments)]
    fn eigenvalues<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        top: usize,
        bottom: usize,
        loss: Option<&str>,
        params: &str,
        curvature: &str,
        tol: f64,
        max_steps: usize,
        seed: u64,
        vectors: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let lanczos = Lanczos::new()
            .top(top)
            .bottom(bottom)
            .tol(tol)
            .max_steps(max_steps)
            .seed(seed)
            .eigenvectors(vectors);
        let r = self.with_curvature(py, x, y, loss, params, curvature, |op| lanczos.run(op))?;
        let out = PyDict::new(py);
        out.set_item("top", r.top_values)?;
        out.set_item("top_residuals", r.top_residuals)?;
        out.set_item("bottom", r.bottom_values)?;
        out.set_item("bottom_residuals", r.bottom_residuals)?;
        out.set_item("steps", r.steps)?;
        out.set_item("converged", r.converged)?;
        if let Some(v) = r.top_vectors {
            out.set_item("top_vectors", v.into_pyarray(py))?;
        }
        if let Some(v) = r.bottom_vectors {
            out.set_item("bottom_vectors", v.into_pyarray(py))?;
        }
        Ok(out)
    }

    /// trace(x, y, probes=100, *, loss=None, params="weights", curvature="hessian", seed=0) -> dict
    ///
    /// Hutchinson's estimate of tr(H) = E[zᵀHz] over Rademacher probes z, without forming H:
    /// ``trace``, ``std_error`` (of the mean) and ``probes``.
    #[pyo3(signature = (x, y, probes=100, *, loss=None, params="weights", curvature="hessian", seed=0))]
    #[allow(clippy::too_many_arguments)]
    fn trace<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        probes: usize,
        loss: Option<&str>,
        params: &str,
        curvature: &str,
        seed: u64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let t =
            self.with_curvature(py, x, y, loss, params, curvature, |op| hutchinson_trace(op, probes, seed))?;
        let out = PyDict::new(py);
        out.set_item("trace", t.trace)?;
        out.set_item("std_error", t.std_error)?;
        out.set_item("probes", t.probes)?;
        Ok(out)
    }

    /// spectral_density(x, y, probes=4, steps=60, points=400, bandwidth=None, *, loss=None, params="weights", curvature="hessian", seed=0) -> dict
    ///
    /// The eigenvalue density of H by stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017),
    /// smoothed by a Gaussian of standard deviation ``bandwidth`` (default: from the spectrum's
    /// range): ``grid`` and ``density`` (numpy arrays; the density integrates to ≈ 1), the
    /// quadrature ``nodes`` and ``weights``, and the ``bandwidth`` used.
    #[pyo3(signature = (x, y, probes=4, steps=60, points=400, bandwidth=None, *, loss=None, params="weights", curvature="hessian", seed=0))]
    #[allow(clippy::too_many_arguments)]
    fn spectral_density<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        probes: usize,
        steps: usize,
        points: usize,
        bandwidth: Option<f64>,
        loss: Option<&str>,
        params: &str,
        curvature: &str,
        seed: u64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mut slq = Slq::new().probes(probes).steps(steps).points(points).seed(seed);
        if let Some(b) = bandwidth {
            slq = slq.bandwidth(b);
        }
        let d = self.with_curvature(py, x, y, loss, params, curvature, |op| slq.run(op))?;
        let out = PyDict::new(py);
        out.set_item("grid", Array1::from(d.grid).into_pyarray(py))?;
        out.set_item("density", Array1::from(d.density).into_pyarray(py))?;
        out.set_item("nodes", Array1::from(d.nodes).into_pyarray(py))?;
        out.set_item("weights", Array1::from(d.weights).into_pyarray(py))?;
        out.set_item("bandwidth", d.bandwidth)?;
        Ok(out)
    }

    /// The training loop; use ``train`` (it adds the progress bar).
    #[pyo3(signature = (x, y, *, loss=None, optimizer="gd", lr=0.1, epochs=100, batch_size=None, l2=0.0, weight_decay=0.0, momentum=0.0, nesterov=false, seed=0, shuffle=true, validation=None, patience=None, min_delta=0.0, callback=None, interval=0.1))]
    #[allow(clippy::too_many_arguments)]
    fn _train<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        loss: Option<&str>,
        optimizer: &str,
        lr: f64,
        epochs: usize,
        batch_size: Option<usize>,
        l2: f64,
        weight_decay: f64,
        momentum: f64,
        nesterov: bool,
        seed: u64,
        shuffle: bool,
        validation: Option<&Bound<'py, PyAny>>,
        patience: Option<usize>,
        min_delta: f64,
        callback: Option<Py<PyAny>>,
        interval: f64,
    ) -> PyResult<(Bound<'py, PyDict>, &'static str)> {
        let loss = self.loss_for(py, loss)?;
        let opt =
            OptimizerConfig::from_name(optimizer, lr, momentum, nesterov).map_err(|e| to_py_err(py, e))?;
        let mut trainer = Trainer::new(loss, opt)
            .epochs(epochs)
            .l2(l2)
            .weight_decay(weight_decay)
            .seed(seed)
            .shuffle(shuffle);
        if let Some(b) = batch_size {
            trainer = trainer.batch_size(b);
        }
        if let Some(p) = patience {
            trainer = trainer.early_stopping(p, min_delta);
        }
        if !(interval.is_finite() && interval >= 0.0) {
            return Err(value_error("interval", "must be a finite number of seconds ≥ 0"));
        }
        let mut progress = Progress {
            callback,
            total: epochs,
            interval: Duration::from_secs_f64(interval),
            last: Instant::now(),
            error: None,
        };
        let mut model = self.model.clone();
        let (result, history) = typed!(&mut model, m, T => {
            let (xa, _) = self.inputs::<T>(py, x, "x")?;
            let ya = self.targets::<T>(py, y, xa.nrows())?;
            let val = match validation {
                None => None,
                Some(v) => {
                    let (xv, yv): (Bound<'py, PyAny>, Bound<'py, PyAny>) = v
                        .extract()
                        .map_err(|_| PyTypeError::new_err("validation must be a tuple (x_val, y_val)"))?;
                    let (xv, _) = self.inputs::<T>(py, &xv, "validation x")?;
                    let yv = self.targets::<T>(py, &yv, xv.nrows())?;
                    Some((xv, yv))
                }
            };
            let mut state = TrainState::new(m.clone(), &trainer).map_err(|e| to_py_err(py, e))?;
            let result = py.detach(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let validation = val.as_ref().map(|(a, b)| (a.view(), b.view()));
                    trainer.fit(&mut state, xa.view(), ya.view(), validation, &mut [&mut progress])
                }))
            });
            // Whatever happened (done, stopped, diverged, interrupted), the model keeps the last
            // completed good epoch's weights.
            *m = state.model;
            (result, history_dict(py, &state.history.epochs)?)
        });
        self.model = model;
        self.config.loss = Some(loss);
        if let Some(err) = progress.error.take() {
            return Err(err);
        }
        let outcome = match result {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => return Err(to_py_err(py, e)),
            Err(_) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "internal error in backprop's training loop (a bug, please report it)",
                ));
            }
        };
        let outcome = match outcome {
            Outcome::Completed => "completed",
            Outcome::EarlyStopped => "early_stopped",
            Outcome::Stopped => "stopped",
            Outcome::Diverged => "diverged",
        };
        Ok((history, outcome))
    }

    fn __repr__(&self) -> String {
        let acts = self.activations().join(", ");
        format!(
            "Mlp(layers={:?}, activations=[{acts}], bias={}, dtype={}, loss={})",
            self.model.sizes(),
            if self.model.has_bias() { "True" } else { "False" },
            self.dtype(),
            self.config.loss.map_or("None".to_string(), |l| format!("'{l}'"))
        )
    }
}

/// Calls the Python progress callback from inside the training loop (GIL re-acquired only for
/// the call, at most every `interval`), and turns Ctrl-C into a clean stop.
struct Progress {
    callback: Option<Py<PyAny>>,
    total: usize,
    interval: Duration,
    last: Instant,
    error: Option<PyErr>,
}

fn record_dict<'py>(py: Python<'py>, r: &EpochRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("epoch", r.epoch)?;
    d.set_item("loss", r.loss)?;
    d.set_item("penalty", r.penalty)?;
    for (k, v) in [
        ("accuracy", r.accuracy),
        ("rmse", r.rmse),
        ("val_loss", r.val_loss),
        ("val_accuracy", r.val_accuracy),
        ("val_rmse", r.val_rmse),
    ] {
        if let Some(v) = v {
            d.set_item(k, v)?;
        }
    }
    Ok(d)
}

/// A history column: its name and how to read it from a record.
type Column = (&'static str, fn(&EpochRecord) -> Option<f64>);

fn history_dict<'py>(py: Python<'py>, records: &[EpochRecord]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("epoch", records.iter().map(|r| r.epoch as i64).collect::<Array1<i64>>().into_pyarray(py))?;
    let columns: [Column; 7] = [
        ("loss", |r| Some(r.loss)),
        ("penalty", |r| Some(r.penalty)),
        ("accuracy", |r| r.accuracy),
        ("rmse", |r| r.rmse),
        ("val_loss", |r| r.val_loss),
        ("val_accuracy", |r| r.val_accuracy),
        ("val_rmse", |r| r.val_rmse),
    ];
    for (name, get) in columns {
        if records.iter().any(|r| get(r).is_some()) {
            let col: Array1<f64> = records.iter().map(|r| get(r).unwrap_or(f64::NAN)).collect();
            d.set_item(name, col.into_pyarray(py))?;
        }
    }
    Ok(d)
}

impl<T: Scalar> Observer<T> for Progress {
    fn on_epoch(&mut self, _state: &TrainState<T>, record: &EpochRecord) -> backprop::Result<Control> {
        let now = Instant::now();
        if now.duration_since(self.last) < self.interval && record.epoch < self.total {
            return Ok(Control::Continue);
        }
        self.last = now;
        Ok(Python::attach(|py| {
            // Ctrl-C: stop after this epoch and raise KeyboardInterrupt once the model is saved back.
            if let Err(e) = py.check_signals() {
                self.error = Some(e);
                return Control::Stop;
            }
            let Some(cb) = &self.callback else { return Control::Continue };
            let result = record_dict(py, record).and_then(|d| cb.call1(py, (record.epoch, self.total, d)));
            match result {
                Ok(v) if v.bind(py).is_truthy().unwrap_or(false) => Control::Stop,
                Ok(_) => Control::Continue,
                Err(e) => {
                    self.error = Some(e);
                    Control::Stop
                }
            }
        }))
    }

    fn on_end(&mut self, _state: &TrainState<T>, _outcome: Outcome) -> backprop::Result<()> {
        Ok(())
    }
}

/// eigh(h) -> (eigenvalues, eigenvectors)
///
/// The eigendecomposition of a symmetric matrix H = Q diag(λ) Qᵀ (faer), eigenvalues in
/// decreasing order as in the notebook, eigenvectors as the columns of Q. Only the lower
/// triangle of ``h`` is read.
#[pyfunction]
pub fn eigh<'py>(py: Python<'py>, h: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let a = array::<f64>(h, "h")?;
    let m: ArrayView2<'_, f64> = matrix(a.as_array(), "h")?;
    let e = run(py, || library_eigh(m))?;
    Ok((e.values.into_pyarray(py).into_any(), e.vectors.into_pyarray(py).into_any()))
}

/// load_dataset(name_or_path, target=None, classes=None) -> dict
///
/// A built-in dataset (iris, wine, breast_cancer, digits) or a .csv/.npy/.npz file, as the CLI
/// reads it: {"x": (n, d), "y": (n, t), "feature_names", "target_names", "classes"}.
/// ``target`` names the target column(s) of a CSV, as a list or "a,b" (default: the last); ``classes`` (a list of
/// class names) keeps only those classes, re-indexed in that order — e.g. the notebook's
/// binary task on iris: ``classes=["versicolor", "virginica"]``.
#[pyfunction]
#[pyo3(signature = (spec, target=None, classes=None, dtype=None))]
pub fn load_dataset<'py>(
    py: Python<'py>,
    spec: &str,
    target: Option<&Bound<'py, PyAny>>,
    classes: Option<Vec<String>>,
    dtype: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut opts = backprop::data::LoadOptions::new();
    if let Some(t) = target {
        // "a,b" as on the command line, or a list of names.
        let names: Vec<String> = match t.extract::<String>() {
            Ok(s) => s.split(',').map(|n| n.trim().to_string()).collect(),
            Err(_) => t
                .extract()
                .map_err(|_| PyTypeError::new_err("target must be a column name or a list of names"))?,
        };
        opts = opts.targets(names);
    }
    let dtype = dtype.map(parse_dtype).transpose()?.unwrap_or(DType::F64);
    let data = run(py, || {
        let d = backprop::data::load::<f64>(spec, &opts)?;
        match &classes {
            Some(c) => d.select_classes(&c.iter().map(String::as_str).collect::<Vec<_>>()),
            None => Ok(d),
        }
    })?;
    let out = PyDict::new(py);
    match dtype {
        DType::F64 => {
            out.set_item("x", data.x.clone().into_pyarray(py))?;
            out.set_item("y", data.y.clone().into_pyarray(py))?;
        }
        DType::F32 => {
            out.set_item("x", data.x.mapv(|v| v as f32).into_pyarray(py))?;
            out.set_item("y", data.y.mapv(|v| v as f32).into_pyarray(py))?;
        }
    }
    out.set_item("feature_names", PyList::new(py, &data.feature_names)?)?;
    out.set_item("target_names", PyList::new(py, &data.target_names)?)?;
    out.set_item("classes", data.classes.clone())?;
    Ok(out)
}
