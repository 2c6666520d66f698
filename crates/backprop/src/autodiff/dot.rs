//! Graphviz export of a tape: micrograd's drawing, for tensors. Each node shows its op, shape,
//! value and (when an output is given) its gradient; edges run from operands to results.

use std::fmt::Write;

use ndarray::ArrayD;

use super::{Tape, Var};
use crate::{Result, Scalar};

/// A short rendering of a tensor: all entries if few, else the first ones and the range.
pub fn summarize<T: Scalar>(a: &ArrayD<T>) -> String {
    let fmt = |x: T| format!("{:.6}", x.f64()).trim_end_matches('0').trim_end_matches('.').to_string();
    let fmt = |x: T| {
        let v = x.f64();
        if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) { format!("{v:.4e}") } else { fmt(x) }
    };
    if a.len() == 1 {
        return fmt(a.iter().copied().next().unwrap_or_else(T::zero));
    }
    if a.len() <= 6 {
        return format!("[{}]", a.iter().map(|&x| fmt(x)).collect::<Vec<_>>().join(", "));
    }
    let lo = a.iter().copied().fold(T::infinity(), T::min);
    let hi = a.iter().copied().fold(T::neg_infinity(), T::max);
    format!(
        "[{}, …] ∈ [{}, {}]",
        a.iter().take(3).map(|&x| fmt(x)).collect::<Vec<_>>().join(", "),
        fmt(lo),
        fmt(hi)
    )
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('{', "\\{")
        .replace('}', "\\}")
        .replace('|', "\\|")
        .replace('<', "\\<")
        .replace('>', "\\>")
}

impl<T: Scalar> Tape<T> {
    /// The tape as a Graphviz `digraph` (render with `dot -Tsvg`). With `output`, every node
    /// also shows its adjoint ∂output/∂node.
    pub fn to_dot(&self, output: Option<Var<'_, T>>) -> Result<String> {
        let adj = match output {
            Some(o) => self.adjoints(o)?,
            None => Vec::new(),
        };
        let nodes = self.nodes();
        let mut s = String::from(
            "digraph tape {\n  rankdir=LR;\n  node [shape=record, fontname=\"monospace\", fontsize=10];\n",
        );
        for (i, n) in nodes.iter().enumerate() {
            let title = match &n.name {
                Some(name) => format!("{name} = {}", n.op.name()),
                None => n.op.name(),
            };
            let grad = match adj.get(i) {
                Some(Some(g)) => format!(" | grad {}", esc(&summarize(g))),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  n{i} [label=\"{{ #{i} {} | shape {:?} | value {}{grad} }}\"];",
                esc(&title),
                n.value.shape(),
                esc(&summarize(&n.value))
            );
            n.op.for_each_parent(|p| {
                let _ = writeln!(s, "  n{} -> n{i};", p.index());
            });
        }
        s.push_str("}\n");
        Ok(s)
    }
}

/// A read-only view of one recorded node (for printing a tape).
#[derive(Clone, Debug)]
pub struct NodeInfo<T> {
    /// Position on the tape.
    pub id: usize,
    /// The name given at creation (inputs and constants), if any.
    pub name: Option<String>,
    /// The op with its parameters, e.g. `sigmoid` or `sum(axes=[0])`.
    pub op: String,
    /// Operand node ids.
    pub parents: Vec<usize>,
    /// The value.
    pub value: ArrayD<T>,
}

impl<T: Scalar> Tape<T> {
    /// Every node in evaluation order, with copies of their values.
    pub fn inspect(&self) -> Vec<NodeInfo<T>> {
        self.nodes()
            .iter()
            .enumerate()
            .map(|(id, n)| NodeInfo {
                id,
                name: n.name.as_ref().map(|s| s.to_string()),
                op: n.op.name(),
                parents: n.op.parents().iter().map(|p| p.index()).collect(),
                value: n.value.clone(),
            })
            .collect()
    }
}
