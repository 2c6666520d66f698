//! Step 1: the notebook's two checks, each value next to the one the notebook expects.

use backprop::notebook;

use super::Step;
use super::format::sci;
use crate::report::{Block, Check, Section, Table};

/// Runs the notebook's checks.
pub fn run() -> anyhow::Result<Step> {
    let c = notebook::run_checks()?;
    let mut s = Section::new("The notebook's two checks");
    s.text(
        "The notebook's data: x = (0.01, 0.02, 0.03, 0.04), w_1 = ones(4×5), w_2 = ones(5), no biases, y = 1; \
         sigmoid activations and the loss ½(ŷ − y)². `simple_feed_forward` and `simple_backpropagation` are \
         derived by hand (docs/derivation.md), with no autodiff. Each check passes, as in the notebook, when the \
         summed squared error is below 1e-15.",
    );
    s.block(Block::Table(
        Table::new(["quantity", "ours", "expected (notebook)", "squared error"])
            .caption("Forward pass: ŷ = σ(w_2ᵀ σ(xᵀ w_1))")
            .row([
                "ŷ".to_string(),
                format!("{:.17}", c.y_hat),
                "0.93244675427215695".into(),
                sci(c.forward_squared_error, 2),
            ]),
    ));
    let (e1, e2) = (notebook::expected_grad_w_1(), notebook::expected_grad_w_2());
    let cols = c.gradients.w_1.ncols();
    let mut t = Table::new(
        std::iter::once("∂L/∂w_1".to_string()).chain((0..cols).map(|j| format!("j = {j}"))),
    )
    .caption(
        "Backward pass: ∂L/∂w_1 (4×5, row i = input xᵢ, column j = hidden unit j), ours above the notebook's",
    );
    for i in 0..c.gradients.w_1.nrows() {
        t.push(
            std::iter::once(format!("i = {i}  ours"))
                .chain(c.gradients.w_1.row(i).iter().map(|v| sci(*v, 8))),
        );
        t.push(std::iter::once("expected".to_string()).chain(e1.row(i).iter().map(|v| sci(*v, 8))));
    }
    s.block(Block::Table(t));
    let t2 = Table::new(std::iter::once("∂L/∂w_2".to_string()).chain((0..cols).map(|j| format!("j = {j}"))))
        .caption("∂L/∂w_2 (one per hidden unit)")
        .row(std::iter::once("ours".to_string()).chain(c.gradients.w_2.iter().map(|v| sci(*v, 8))))
        .row(std::iter::once("expected".to_string()).chain(e2.iter().map(|v| sci(*v, 8))));
    s.block(Block::Table(t2));
    s.text(
        "The expected tables are printed in the notebook to 9 significant digits, so a residual of order 1e-17 \
         remains even for exact gradients; ŷ matches to the last bit.",
    );
    s.block(Block::Checks(vec![
        Check {
            name: "forward: ŷ matches the notebook".into(),
            passed: c.forward_passed(),
            detail: format!("squared error {} < 1e-15", sci(c.forward_squared_error, 2)),
        },
        Check {
            name: "backward: gradient table matches the notebook".into(),
            passed: c.backward_passed(),
            detail: format!("summed squared error {} < 1e-15", sci(c.gradient_squared_error, 2)),
        },
    ]));
    let j = crate::commands::notebook::to_json(&c);
    let summary = format!("ŷ = {:.17}, gradient squared error {}", c.y_hat, sci(c.gradient_squared_error, 1));
    Ok(Step::new(s, j, summary, false))
}
