//! One module per subcommand.

pub mod eval;
pub mod explain;
pub mod grad;
pub mod hessian;
pub mod init;
mod model_data;
pub mod notebook;
pub mod predict;
pub mod regularize;
pub mod tour;
pub mod train;
mod train_plots;
