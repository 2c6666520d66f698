//! One module per subcommand.

pub mod explain;
pub mod notebook;
pub mod tour;
