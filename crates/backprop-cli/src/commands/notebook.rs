//! `backprop notebook`: the notebook's checks.

use std::process::ExitCode;

use backprop::notebook;

/// Options of `backprop notebook`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs the checks; exit status 0 only if both pass.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let x = notebook::notebook_x();
    let w = notebook::Weights::notebook();
    let y_hat = notebook::simple_feed_forward(x.view(), &w)?;
    let g = notebook::simple_backpropagation(notebook::NOTEBOOK_Y, x.view(), &w)?;
    let forward_err = (y_hat - notebook::EXPECTED_Y_HAT).powi(2);
    let grad_err =
        notebook::squared_error(&g, &notebook::expected_grad_w_1(), &notebook::expected_grad_w_2());
    let ok = forward_err < 1e-15 && grad_err < 1e-15;
    if args.json {
        let out = serde_json::json!({
            "y_hat": y_hat,
            "gradients": { "w_1": g.w_1.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>(), "w_2": g.w_2.to_vec() },
            "forward_squared_error": forward_err,
            "gradient_squared_error": grad_err,
            "passed": ok,
        });
        println!("{out}");
    } else {
        println!(
            "forward:  y_hat = {y_hat:.17}  expected {:.17}  squared error {forward_err:.2e}",
            notebook::EXPECTED_Y_HAT
        );
        println!("backward: gradient squared error {grad_err:.2e}");
        println!(
            "{}",
            if ok { "Your implementation is correct!" } else { "Your implementation is not correct." }
        );
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
