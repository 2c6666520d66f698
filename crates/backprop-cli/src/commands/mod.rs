//! One module per subcommand.

pub mod hessian;
pub mod notebook;
pub mod regularize;
pub mod tour;
