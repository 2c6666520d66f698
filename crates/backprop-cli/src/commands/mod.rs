//! One module per subcommand.

pub mod notebook;
pub mod tour;
