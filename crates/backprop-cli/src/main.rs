//! `backprop`: the command-line shell over the `backprop` library. No maths lives here: each
//! subcommand (one file in `commands/`) parses its options, calls the library and prints.

mod commands;
#[allow(dead_code, unused_imports)]
// TEMP: the figure API is used once the tour trains a network (steps 3–4).
mod report;
#[allow(dead_code)] // used by train, hessian and tour as they land
mod plot;

use clap::{Parser, Subcommand};

/// Backpropagation from the notebook to real networks: gradients, training, Hessians and the
/// L2-shrinkage analysis.
#[derive(Parser)]
#[command(
    name = "backprop",
    version,
    propagate_version = true,
    after_help = "Start with `backprop tour`: it walks the whole notebook on real data and writes a report.\n\
Every command has its own --help. Exit status: 0 on success, 1 when a check fails, 2 on an error \
(bad option, unreadable file, invalid data); errors are printed as `error: …` on stderr."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Notebook(commands::notebook::Args),
    /// The main job: walk the whole notebook on real data and write a report.
    Tour(commands::tour::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Notebook(args) => commands::notebook::run(args),
        Command::Tour(args) => commands::tour::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
