//! One error type for the whole library.
//!
//! Every variant names *what* went wrong and *where* (the op and the shapes, the file, line and
//! column, the option and its allowed values), so the CLI can print it as is and a Python user
//! gets a readable exception.

use std::path::PathBuf;

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `backprop`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that had to agree do not.
    #[error("shape mismatch in {op}: {detail}")]
    Shape {
        /// The operation or function that checked the shapes, e.g. `matmul` or `simple_feed_forward`.
        op: String,
        /// Both shapes and what was expected, e.g. `lhs [2, 3] and rhs [4, 5]: inner dimensions differ`.
        detail: String,
    },
    /// A NaN or infinity where a finite number is required.
    #[error("non-finite value in {what}: {detail}")]
    NonFinite {
        /// The input, tensor or op that holds the value.
        what: String,
        /// Where (index, row, epoch …) and which value.
        detail: String,
    },
    /// An option or argument outside its allowed values.
    #[error("invalid {name}: {message}")]
    InvalidArgument {
        /// The option or argument, e.g. `--lr` or `layers`.
        name: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A file that could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A malformed text file (CSV, JSON): the position and the problem.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (field number for CSV).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A file with the wrong structure (missing tensor, truncated data, bad header).
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Misuse of the autodiff engine (a `Var` from another tape, a non-scalar without seed …).
    #[error("autodiff: {0}")]
    Autodiff(String),
    /// Training produced a NaN or infinite loss.
    #[error("training diverged at epoch {epoch}: loss is {loss}; lower the learning rate")]
    Diverged {
        /// The epoch (1-based) whose loss was not finite.
        epoch: usize,
        /// The offending loss.
        loss: f64,
    },
}

impl Error {
    /// A shape error for `op`.
    pub fn shape(op: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Shape { op: op.into(), detail: detail.into() }
    }

    /// An invalid-argument error for option or argument `name`.
    pub fn invalid(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidArgument { name: name.into(), message: message.into() }
    }

    /// A non-finite-value error.
    pub fn non_finite(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::NonFinite { what: what.into(), detail: detail.into() }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
