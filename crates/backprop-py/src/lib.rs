//! Python bindings for `backprop`: the extension module `backprop._backprop`.
//!
//! A thin shell (no maths lives here): numpy arrays in, the library's functions, numpy arrays
//! out. Library errors become Python exceptions (`errors`), long computations run with the GIL
//! released, and no panic reaches Python. The Python package `backprop` (in `python/`)
//! re-exports everything and adds the pieces best written in Python (the progress bar).

mod convert;
mod errors;
mod model;
mod notebook;

use pyo3::prelude::*;

/// backprop's native extension. Import `backprop`, not this module.
#[pymodule]
mod _backprop {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::notebook::{grad_sigmoid, sigmoid, simple_backpropagation, simple_feed_forward};

    #[pymodule_export]
    use crate::model::{PyMlp, eigh, load_dataset};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        let py = m.py();
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("FileFormatError", crate::errors::file_format_error(py)?)?;
        m.add("DivergedError", crate::errors::diverged_error(py)?)?;
        Ok(())
    }
}
