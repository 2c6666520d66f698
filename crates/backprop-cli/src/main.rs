//! `backprop`: the command-line shell over the `backprop` library. No maths lives here: each
//! subcommand (one file in `commands/`) parses its options, calls the library and prints.

mod commands;
#[allow(dead_code)] // used by train, hessian and tour as they land
mod plot;
#[allow(dead_code, unused_imports)]
// TEMP: the figure API is used once the tour trains a network (steps 3–4).
mod report;

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
    /// Show the notebook network's backward pass step by step: every node's value and adjoint next to the hand-derived δ terms.
    Explain(commands::explain::Args),
    // `notebook` and `tour` take their about *and* long help from their Args structs; a doc
    // comment here would replace both with one line and drop the long `--help`.
    Notebook(commands::notebook::Args),
    Tour(commands::tour::Args),
    /// Write an untrained model directory (model.safetensors + config.json).
    Init(commands::init::Args),
    /// Train a network on data; write the model, history.csv, curve plots and a checkpoint.
    Train(commands::train::Args),
    /// A model's loss (and accuracy or RMSE) on data.
    Eval(commands::eval::Args),
    /// A model's outputs on data.
    Predict(commands::predict::Args),
    /// The loss and the gradient of every tensor at the model's weights.
    Grad(commands::grad::Args),
    // `hessian` and `regularize` take their help from their Args structs, like `notebook`.
    Hessian(commands::hessian::Args),
    Regularize(commands::regularize::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explain(args) => commands::explain::run(args),
        Command::Notebook(args) => commands::notebook::run(args),
        Command::Tour(args) => commands::tour::run(args),
        Command::Init(args) => commands::init::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Predict(args) => commands::predict::run(args),
        Command::Grad(args) => commands::grad::run(args),
        Command::Hessian(args) => commands::hessian::run(args),
        Command::Regularize(args) => commands::regularize::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            std::process::ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text the message before it
/// already contains (library errors such as `Error::Io` print their source themselves).
fn describe(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
