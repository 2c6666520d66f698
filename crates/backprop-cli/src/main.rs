//! `backprop`: the command-line shell over the `backprop` library. No maths lives here: each
//! subcommand (one file in `commands/`) parses its options, calls the library and prints.

mod commands;

use clap::{Parser, Subcommand};

/// Backpropagation from the notebook to real networks: gradients, training, Hessians and the
/// L2-shrinkage analysis.
#[derive(Parser)]
#[command(name = "backprop", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the notebook network's backward pass step by step: every node's value and adjoint next to the hand-derived δ terms.
    Explain(commands::explain::Args),
    /// Run the notebook's two checks: the forward value and the hand-derived gradients.
    Notebook(commands::notebook::Args),
    /// The main job: walk the whole notebook on real data and write a report.
    Tour(commands::tour::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explain(args) => commands::explain::run(args),
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
