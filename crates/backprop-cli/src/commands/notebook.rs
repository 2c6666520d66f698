//! `backprop notebook`: the notebook's two checks, printed next to the values the notebook
//! expects.

use std::fmt::Write as _;
use std::process::ExitCode;

use backprop::notebook::{self, Checks};
use ndarray::{Array1, Array2};

/// Options of `backprop notebook`.
#[derive(clap::Args)]
#[command(
    about = "Run the notebook's two checks: the forward value and the hand-derived gradients",
    long_about = "Run the notebook's two checks on its own data: x = [0.01, 0.02, 0.03, 0.04], \
W = {w_1: ones(4, 5), w_2: ones(5)}, y = 1, sigmoid activations, loss ½(ŷ − y)².\n\n\
1. Forward pass: ŷ = simple_feed_forward(x, W), expected 0.93244675427215695.\n\
2. Backward pass: the gradients of w_1 (4×5) and w_2 (5) from simple_backpropagation(y, x, W), \
derived by hand (no autodiff), against the notebook's table.\n\n\
Each check passes when the summed squared error is below 1e-15, as the notebook asserts.\n\n\
Exit status: 0 if both checks pass, 1 if either fails, 2 on an internal error.",
    after_help = "Examples:\n  backprop notebook\n  backprop notebook --json | jq .gradients.w_2"
)]
pub struct Args {
    /// Print one JSON object instead of tables: y_hat, gradients {w_1 (4×5), w_2 (5), b_1, b_2},
    /// the expected values, both squared errors, and passed.
    #[arg(long)]
    pub json: bool,
}

/// Runs the checks; exit status 0 only if both pass.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let checks = notebook::run_checks()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&checks))?);
    } else {
        print!("{}", render(&checks));
    }
    Ok(if checks.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn matrix(a: &Array2<f64>) -> Vec<Vec<f64>> {
    a.outer_iter().map(|r| r.to_vec()).collect()
}

/// The checks as one JSON object (the `--json` contract: `y_hat` and `gradients.w_1`/`w_2`).
pub fn to_json(c: &Checks) -> serde_json::Value {
    serde_json::json!({
        "y_hat": c.y_hat,
        "expected_y_hat": notebook::EXPECTED_Y_HAT,
        "gradients": {
            "w_1": matrix(&c.gradients.w_1),
            "w_2": c.gradients.w_2.to_vec(),
            "b_1": c.gradients.b_1.to_vec(),
            "b_2": c.gradients.b_2,
        },
        "expected_gradients": {
            "w_1": matrix(&notebook::expected_grad_w_1()),
            "w_2": notebook::expected_grad_w_2().to_vec(),
        },
        "tolerance": notebook::TOLERANCE,
        "forward_squared_error": c.forward_squared_error,
        "forward_passed": c.forward_passed(),
        "gradient_squared_error": c.gradient_squared_error,
        "backward_passed": c.backward_passed(),
        "passed": c.passed(),
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// One labelled row of numbers, each in a 16-character column, 9 significant digits.
fn row(out: &mut String, label: &str, values: impl Iterator<Item = f64>) {
    let _ = write!(out, "    {label:<12}");
    for v in values {
        let _ = write!(out, "{v:>16.8e}");
    }
    out.push('\n');
}

fn header(out: &mut String, k: usize) {
    let _ = write!(out, "    {:<12}", "");
    for j in 0..k {
        let _ = write!(out, "{:>16}", format!("j = {j}"));
    }
    out.push('\n');
}

/// The human-readable report: each value next to the notebook's, the errors and the verdict.
pub fn render(c: &Checks) -> String {
    let mut out = String::new();
    let w1: &Array2<f64> = &c.gradients.w_1;
    let w2: &Array1<f64> = &c.gradients.w_2;
    let (e1, e2) = (notebook::expected_grad_w_1(), notebook::expected_grad_w_2());
    out.push_str(
        "The notebook's checks  (x = [0.01, 0.02, 0.03, 0.04], w_1 = ones(4×5), w_2 = ones(5), y = 1)\n\n",
    );

    out.push_str("1) Forward pass   ŷ = σ(w_2ᵀ σ(xᵀ w_1))\n");
    let _ = writeln!(out, "    {:<12}{:.17}", "ours", c.y_hat);
    let _ = writeln!(out, "    {:<12}{:.17}", "expected", notebook::EXPECTED_Y_HAT);
    let _ = writeln!(
        out,
        "    squared error {:.2e}  (notebook requires < {:.0e})   {}\n",
        c.forward_squared_error,
        notebook::TOLERANCE,
        verdict(c.forward_passed())
    );

    out.push_str("2) Backward pass  gradients of L = ½(ŷ − y)², derived by hand\n");
    let _ = writeln!(
        out,
        "  ∂L/∂w_1  ({}×{}: row i = input xᵢ, column j = hidden unit j)",
        w1.nrows(),
        w1.ncols()
    );
    header(&mut out, w1.ncols());
    for i in 0..w1.nrows() {
        row(&mut out, &format!("i = {i} ours"), w1.row(i).iter().copied());
        row(&mut out, "  expected", e1.row(i).iter().copied());
    }
    let _ = writeln!(out, "  ∂L/∂w_2  ({}: one per hidden unit)", w2.len());
    header(&mut out, w2.len());
    row(&mut out, "ours", w2.iter().copied());
    row(&mut out, "expected", e2.iter().copied());
    let _ = writeln!(
        out,
        "    summed squared error over both tables {:.2e}  (notebook requires < {:.0e})   {}",
        c.gradient_squared_error,
        notebook::TOLERANCE,
        verdict(c.backward_passed())
    );
    out.push_str("    (the expected table is printed to 9 significant digits, hence the small residual)\n\n");

    if c.passed() {
        out.push_str("Verdict: both checks pass — the implementation is correct.\n");
    } else {
        let failed: Vec<&str> = [("forward", c.forward_passed()), ("backward", c.backward_passed())]
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| *n)
            .collect();
        let _ = writeln!(out, "Verdict: FAILED ({}) — the implementation is not correct.", failed.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_both_values_and_a_pass_verdict() {
        let c = notebook::run_checks().unwrap();
        let text = render(&c);
        assert!(text.contains("0.93244675427215695"));
        assert!(text.contains("-1.06113639e-5"));
        assert!(text.contains("-2.23387000e-3"));
        assert!(text.contains("Verdict: both checks pass"));
        assert!(!text.contains("FAIL"));
    }

    #[test]
    fn render_names_the_failing_check() {
        let mut c = notebook::run_checks().unwrap();
        c.gradient_squared_error = 1.0;
        let text = render(&c);
        assert!(text.contains("FAILED (backward)"), "{text}");
    }
}
