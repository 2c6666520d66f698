//! `backprop::Error` → Python exceptions, and the one way Rust work is run from Python.
//!
//! | library error                                   | Python exception                        |
//! |-------------------------------------------------|-----------------------------------------|
//! | `Shape`, `NonFinite`, `InvalidArgument`, `Autodiff` | `ValueError`                        |
//! | `Io`                                            | `OSError` (its errno subclass, e.g. `FileNotFoundError`) |
//! | `Parse`, `Format` (a malformed file)            | `backprop.FileFormatError(OSError, ValueError)` |
//! | `Diverged`                                      | `backprop.DivergedError(ValueError)`    |
//! | a panic (a bug)                                 | `RuntimeError`, never a `PanicException` |

use std::any::Any;
use std::io::ErrorKind;
use std::panic::{AssertUnwindSafe, catch_unwind};

use backprop::Error;
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyIsADirectoryError, PyNotADirectoryError, PyOSError,
    PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

static FILE_FORMAT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DIVERGED_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Makes `class name(*bases)` with a docstring, in module `backprop`. `type(...)` is used
/// because PyO3's `create_exception!` takes a single base and a malformed file is both an
/// `OSError` (it is about a file) and a `ValueError` (its content is wrong).
fn new_exception<'py>(
    py: Python<'py>,
    name: &str,
    bases: Bound<'py, PyTuple>,
    doc: &str,
) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "backprop")?;
    namespace.set_item("__doc__", doc)?;
    let class = py.get_type::<PyType>().call1((name, bases, namespace))?;
    Ok(class.cast_into::<PyType>()?.unbind())
}

/// `backprop.FileFormatError`: a model or data file whose content is malformed.
pub fn file_format_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    FILE_FORMAT_ERROR
        .get_or_try_init(py, || {
            let bases = PyTuple::new(py, [py.get_type::<PyOSError>(), py.get_type::<PyValueError>()])?;
            new_exception(
                py,
                "FileFormatError",
                bases,
                "A model or data file exists but its content is malformed (bad JSON, a missing \
                 tensor, a ragged CSV row ...). Both an OSError and a ValueError.",
            )
        })
        .map(|t| t.bind(py))
}

/// `backprop.DivergedError`: training produced a NaN or infinite loss.
pub fn diverged_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DIVERGED_ERROR
        .get_or_try_init(py, || {
            let bases = PyTuple::new(py, [py.get_type::<PyValueError>()])?;
            new_exception(
                py,
                "DivergedError",
                bases,
                "Training produced a NaN or infinite loss; attributes `epoch` and `loss`. \
                 Lower the learning rate.",
            )
        })
        .map(|t| t.bind(py))
}

/// Converts a library error into the Python exception documented at the top of this module.
pub fn to_py_err(py: Python<'_>, e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Io { path, source } => match source.raw_os_error() {
            // OSError(errno, strerror, filename) picks the errno subclass (FileNotFoundError …).
            Some(errno) => PyOSError::new_err((errno, source.to_string(), path.display().to_string())),
            // An error the library made itself (e.g. "model directory not found"): pick the
            // subclass from its kind, keep the library's message.
            None => match source.kind() {
                ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
                ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
                ErrorKind::AlreadyExists => PyFileExistsError::new_err(message),
                ErrorKind::IsADirectory => PyIsADirectoryError::new_err(message),
                ErrorKind::NotADirectory => PyNotADirectoryError::new_err(message),
                _ => PyOSError::new_err(message),
            },
        },
        Error::Parse { .. } | Error::Format { .. } => match file_format_error(py) {
            Ok(class) => PyErr::from_type(class.clone(), message),
            Err(err) => err,
        },
        Error::Diverged { epoch, loss } => match diverged_error(py) {
            Ok(class) => match class.call1((message,)) {
                Ok(exc) => {
                    let _ = exc.setattr("epoch", epoch);
                    let _ = exc.setattr("loss", loss);
                    PyErr::from_value(exc)
                }
                Err(err) => err,
            },
            Err(err) => err,
        },
        Error::Shape { .. }
        | Error::NonFinite { .. }
        | Error::InvalidArgument { .. }
        | Error::Autodiff(_) => PyValueError::new_err(message),
        _ => PyRuntimeError::new_err(message),
    }
}

/// A `ValueError` naming the argument: `"{name}: {message}"`.
pub fn value_error(name: &str, message: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{name}: {message}"))
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs library work with the GIL released and turns its result into a Python result.
///
/// A panic is a bug in backprop, not in the caller's input; it is caught here and raised as
/// `RuntimeError` rather than crossing into Python as a `PanicException` (which derives from
/// `BaseException` and escapes `except Exception`).
pub fn run<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> backprop::Result<T> + Send,
    T: Send,
{
    match py.detach(|| catch_unwind(AssertUnwindSafe(work))) {
        Ok(result) => result.map_err(|e| to_py_err(py, e)),
        Err(payload) => Err(PyRuntimeError::new_err(format!(
            "internal error in backprop (a bug, please report it): {}",
            panic_message(payload.as_ref())
        ))),
    }
}
