//! `backprop explain`: the notebook network's backward pass, step by step — every node's value
//! and adjoint from the engine, next to the δ terms of the hand derivation.

use std::path::PathBuf;
use std::process::ExitCode;

use backprop::autodiff::{Tape, notebook_network, summarize};
use backprop::notebook::{self, Weights};
use ndarray::{Array1, ArrayD};

/// Options of `backprop explain`.
#[derive(clap::Args)]
pub struct Args {
    /// Write the tape as a Graphviz graph (op, shape, value, gradient per node) to FILE.
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// The input x as comma-separated numbers (default: the notebook's 0.01,0.02,0.03,0.04).
    #[arg(long, value_name = "X1,X2,X3,X4", value_delimiter = ',', allow_hyphen_values = true)]
    pub x: Option<Vec<f64>>,
    /// The target y (default: the notebook's 1).
    #[arg(long, allow_hyphen_values = true)]
    pub y: Option<f64>,
}

fn max_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Runs the explanation.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let x = match &args.x {
        Some(v) => Array1::from(v.clone()),
        None => notebook::notebook_x(),
    };
    let y = args.y.unwrap_or(notebook::NOTEBOOK_Y);
    let w = Weights::notebook();
    let tr = notebook::trace(y, x.view(), &w)?;
    let tape = Tape::<f64>::new();
    let net = notebook_network(&tape, y, x.view(), &w)?;
    let adj = tape.adjoints(net.loss)?;
    let grads = tape.grad(net.loss, &net.params())?;
    let nodes = tape.inspect();
    let engine = |v: backprop::autodiff::Var<'_, f64>| adj[v.id().index()].clone().unwrap_or_default();
    let rows: Vec<(&str, &str, ArrayD<f64>, ArrayD<f64>)> = vec![
        ("δ⁽²⁾", "(ŷ − y)·σ'(z⁽²⁾) = ∂L/∂z⁽²⁾", ndarray::arr0(tr.delta_2).into_dyn(), engine(net.z_2)),
        ("δ⁽¹⁾", "δ⁽²⁾·w⁽²⁾ ⊙ σ'(z⁽¹⁾) = ∂L/∂z⁽¹⁾", tr.delta_1.clone().into_dyn(), engine(net.z_1)),
        ("∂L/∂W⁽¹⁾", "x·δ⁽¹⁾ᵀ", tr.gradients.w_1.clone().into_dyn(), grads[0].clone()),
        ("∂L/∂w⁽²⁾", "δ⁽²⁾·x⁽¹⁾", tr.gradients.w_2.clone().into_dyn(), grads[1].clone()),
        ("∂L/∂b⁽¹⁾", "δ⁽¹⁾", tr.gradients.b_1.clone().into_dyn(), grads[2].clone()),
        ("∂L/∂b⁽²⁾", "δ⁽²⁾", ndarray::arr0(tr.gradients.b_2).into_dyn(), grads[3].clone()),
    ];
    let worst = rows.iter().map(|(_, _, h, e)| max_diff(h, e)).fold(0.0, f64::max);
    let dot_written = match &args.dot {
        Some(path) => {
            backprop::io::atomic_write(path, tape.to_dot(Some(net.loss))?.as_bytes())?;
            Some(path.display().to_string())
        }
        None => None,
    };
    if args.json {
        let flat = |a: &ArrayD<f64>| a.iter().copied().collect::<Vec<f64>>();
        let out = serde_json::json!({
            "x": x.to_vec(),
            "y": y,
            "nodes": nodes.iter().map(|n| serde_json::json!({
                "id": n.id,
                "name": n.name,
                "op": n.op,
                "parents": n.parents,
                "shape": n.value.shape(),
                "value": flat(&n.value),
                "adjoint": adj.get(n.id).and_then(|a| a.as_ref()).map(flat),
            })).collect::<Vec<_>>(),
            "hand_vs_engine": rows.iter().map(|(name, formula, h, e)| serde_json::json!({
                "term": name, "formula": formula, "shape": h.shape(), "hand": flat(h), "engine": flat(e),
                "max_abs_difference": max_diff(h, e),
            })).collect::<Vec<_>>(),
            "loss": tr.loss,
            "y_hat": tr.y_hat,
            "max_abs_difference": worst,
            "dot": dot_written,
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "The notebook network, x = {}, y = {y}, W⁽¹⁾ = ones(4, 5), w⁽²⁾ = ones(5), no biases.",
        summarize(&x.clone().into_dyn())
    );
    println!("\nForward pass: the tape, in evaluation order");
    println!("  {:>3}  {:<24} {:<10} {:<8} value", "#", "node", "inputs", "shape");
    for n in &nodes {
        let label = match &n.name {
            Some(name) => format!("{name} ({})", n.op),
            None => n.op.clone(),
        };
        let parents = n.parents.iter().map(|p| format!("#{p}")).collect::<Vec<_>>().join(",");
        println!(
            "  {:>3}  {:<24} {:<10} {:<8} {}",
            n.id,
            label,
            parents,
            format!("{:?}", n.value.shape()),
            summarize(&n.value)
        );
    }
    println!("\nBackward pass: one reverse sweep from L, seed ∂L/∂L = 1; each node's adjoint ∂L/∂node");
    for n in nodes.iter().rev() {
        let label = n.name.clone().unwrap_or_else(|| n.op.clone());
        match adj.get(n.id).and_then(|a| a.as_ref()) {
            Some(a) => println!("  {:>3}  {:<24} ∂L/∂· = {}", n.id, label, summarize(a)),
            None => println!("  {:>3}  {:<24} (constant: no gradient flows here)", n.id, label),
        }
    }
    println!("\nThe hand derivation (docs/derivation.md) next to the engine");
    for (name, formula, h, e) in &rows {
        println!("  {name:<9} = {formula}");
        println!("      hand   {}", summarize(h));
        println!("      engine {}   max |difference| {:.1e}", summarize(e), max_diff(h, e));
    }
    println!("\nL = {:.17}, ŷ = {:.17}; hand and engine agree to {worst:.1e}", tr.loss, tr.y_hat);
    if let Some(p) = dot_written {
        println!("graph written to {p} (render: dot -Tsvg {p} > tape.svg)");
    }
    Ok(ExitCode::SUCCESS)
}
