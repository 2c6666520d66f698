//! Step 2: the backward pass of the notebook network — every δ term — and its gradients
//! checked against central finite differences (and the autodiff engine, where built).

use backprop::notebook::{self, Gradients, Weights};
use ndarray::{Array1, Array2};
use serde_json::json;

use super::Step;
use super::format::sci;
use crate::report::{Block, Check, Section, Table};

/// Relative tolerance for hand-derived vs finite differences, relative to the largest gradient
/// entry of the tensor: central differences with h = 1e-5·(1 + |θ|) are accurate to ~1e-9 here.
const FD_TOLERANCE: f64 = 1e-6;

/// A deterministic generator for the random test point (SplitMix64): the tour needs a few
/// reproducible numbers, not a statistical RNG.
struct SplitMix(u64);

impl SplitMix {
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        lo + (hi - lo) * ((z >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// The flat parameter vector (w_1 row-major, w_2, b_1, b_2) with a name per entry.
fn flatten(w: &Weights) -> Vec<(String, f64)> {
    let k = w.hidden();
    let mut out: Vec<(String, f64)> =
        w.w_1.iter().enumerate().map(|(n, v)| (format!("w_1[{},{}]", n / k, n % k), *v)).collect();
    out.extend(w.w_2.iter().enumerate().map(|(j, v)| (format!("w_2[{j}]"), *v)));
    out.extend(w.b_1.iter().enumerate().map(|(j, v)| (format!("b_1[{j}]"), *v)));
    out.push(("b_2".into(), w.b_2));
    out
}

fn unflatten(like: &Weights, theta: &[f64]) -> anyhow::Result<Weights> {
    let (d, k) = like.w_1.dim();
    let w_1 = Array2::from_shape_vec((d, k), theta[..d * k].to_vec())?;
    let w_2 = Array1::from(theta[d * k..d * k + k].to_vec());
    let b_1 = Array1::from(theta[d * k + k..d * k + 2 * k].to_vec());
    Ok(Weights::with_biases(w_1, w_2, b_1, theta[d * k + 2 * k])?)
}

fn grads_flat(g: &Gradients) -> Vec<f64> {
    g.w_1.iter().chain(g.w_2.iter()).chain(g.b_1.iter()).copied().chain(std::iter::once(g.b_2)).collect()
}

/// Central finite differences of L = ½(ŷ − y)² for every parameter.
fn finite_differences(y: f64, x: &Array1<f64>, w: &Weights) -> anyhow::Result<Vec<f64>> {
    let theta: Vec<f64> = flatten(w).into_iter().map(|(_, v)| v).collect();
    let loss = |t: &[f64]| -> anyhow::Result<f64> {
        let wt = unflatten(w, t)?;
        Ok(0.5 * (notebook::simple_feed_forward(x.view(), &wt)? - y).powi(2))
    };
    let mut out = Vec::with_capacity(theta.len());
    for i in 0..theta.len() {
        let h = 1e-5 * (1.0 + theta[i].abs());
        let (mut p, mut m) = (theta.clone(), theta.clone());
        p[i] += h;
        m[i] -= h;
        out.push((loss(&p)? - loss(&m)?) / (2.0 * h));
    }
    Ok(out)
}

/// Per tensor: (name, max |a − b|, max |a|).
fn compare(w: &Weights, a: &[f64], b: &[f64]) -> Vec<(String, f64, f64)> {
    let (d, k) = w.w_1.dim();
    let groups = [
        ("w_1", 0, d * k),
        ("w_2", d * k, d * k + k),
        ("b_1", d * k + k, d * k + 2 * k),
        ("b_2", d * k + 2 * k, d * k + 2 * k + 1),
    ];
    groups
        .iter()
        .map(|&(name, lo, hi)| {
            let diff = (lo..hi).map(|i| (a[i] - b[i]).abs()).fold(0.0, f64::max);
            let scale = (lo..hi).map(|i| a[i].abs()).fold(0.0, f64::max);
            (name.to_string(), diff, scale)
        })
        .collect()
}

struct PointCheck {
    label: &'static str,
    rows: Vec<(String, f64, f64)>,
    passed: bool,
    worst: f64,
    /// Per tensor: max |hand-derived − engine|.
    engine_rows: Vec<(String, f64, f64)>,
    /// max |hand-derived − engine| over all parameters, relative to max(1, max |g|).
    engine_worst: f64,
}

/// The engine may differ from the hand-derived pass only by rounding (a few ulps).
const ENGINE_TOLERANCE: f64 = 1e-15;

/// The same network recorded on the autodiff tape; its reverse sweep gives the gradients in the
/// notebook's order `[w_1, w_2, b_1, b_2]`, flattened row-major like [`flatten`].
fn engine_gradients(y: f64, x: &Array1<f64>, w: &Weights) -> anyhow::Result<Vec<f64>> {
    let tape = backprop::autodiff::Tape::<f64>::new();
    let g = backprop::autodiff::notebook_network(&tape, y, x.view(), w)?;
    let grads = tape.grad(g.loss, &g.params())?;
    Ok(grads.iter().flat_map(|a| a.iter().copied()).collect())
}

fn check_point(label: &'static str, y: f64, x: &Array1<f64>, w: &Weights) -> anyhow::Result<PointCheck> {
    let g = grads_flat(&notebook::simple_backpropagation(y, x.view(), w)?);
    let fd = finite_differences(y, x, w)?;
    let rows = compare(w, &g, &fd);
    let worst = rows.iter().map(|(_, d, s)| d / s.max(f64::MIN_POSITIVE)).fold(0.0, f64::max);
    let engine = engine_gradients(y, x, w)?;
    anyhow::ensure!(
        engine.len() == g.len(),
        "the engine returned {} gradient entries, expected {}",
        engine.len(),
        g.len()
    );
    let engine_rows = compare(w, &g, &engine);
    let scale = g.iter().fold(1.0f64, |a, v| a.max(v.abs()));
    let engine_worst = engine_rows.iter().map(|(_, d, _)| *d).fold(0.0, f64::max) / scale;
    Ok(PointCheck { label, passed: worst < FD_TOLERANCE, rows, worst, engine_rows, engine_worst })
}

/// Runs the step.
pub fn run() -> anyhow::Result<Step> {
    let x = notebook::notebook_x();
    let w = Weights::notebook();
    let t = notebook::trace(notebook::NOTEBOOK_Y, x.view(), &w)?;
    let mut s = Section::new("The backward pass, term by term");
    s.text(
        "One forward pass keeps z⁽¹⁾, x⁽¹⁾ and ŷ; one backward sweep turns them into the error signals \
         δ = ∂L/∂z, and every gradient is a δ times the input its weight multiplies (derivation: \
         docs/derivation.md §3). At the notebook's point:",
    );
    let mut out_layer =
        Table::new(["quantity", "formula", "value"]).caption("Output layer (forward, then the first δ)");
    out_layer.numeric = vec![false, false, true];
    out_layer.push(["z⁽²⁾", "w⁽²⁾ᵀx⁽¹⁾ + b⁽²⁾", &format!("{:.15}", t.z_2)]);
    out_layer.push(["ŷ", "σ(z⁽²⁾)", &format!("{:.15}", t.y_hat)]);
    out_layer.push(["L", "½(ŷ − y)²", &sci(t.loss, 15)]);
    out_layer.push(["σ'(z⁽²⁾)", "ŷ(1 − ŷ)", &format!("{:.15}", notebook::grad_sigmoid(t.z_2))]);
    out_layer.push(["δ⁽²⁾ = ∂L/∂b⁽²⁾", "(ŷ − y)·σ'(z⁽²⁾)", &sci(t.delta_2, 15)]);
    s.block(Block::Table(out_layer));
    s.text("Then, per hidden unit: ∂L/∂w⁽²⁾ⱼ = δ⁽²⁾·x⁽¹⁾ⱼ, δ⁽¹⁾ⱼ = δ⁽²⁾·w⁽²⁾ⱼ·σ'(z⁽¹⁾ⱼ) = ∂L/∂b⁽¹⁾ⱼ, and ∂L/∂w⁽¹⁾ᵢⱼ = xᵢ·δ⁽¹⁾ⱼ.");
    let mut table = Table::new([
        "hidden unit j",
        "z⁽¹⁾ⱼ",
        "x⁽¹⁾ⱼ = σ(z⁽¹⁾ⱼ)",
        "σ'(z⁽¹⁾ⱼ)",
        "w⁽²⁾ⱼ",
        "δ⁽¹⁾ⱼ = δ⁽²⁾w⁽²⁾ⱼσ'(z⁽¹⁾ⱼ)",
        "∂L/∂w⁽²⁾ⱼ",
    ])
    .caption("Hidden layer: the δ terms");
    let sp = notebook::grad_sigmoid(&t.z_1);
    for j in 0..t.z_1.len() {
        table.push([
            format!("{j}"),
            format!("{:.6}", t.z_1[j]),
            format!("{:.12}", t.x_1[j]),
            format!("{:.12}", sp[j]),
            format!("{}", w.w_2[j]),
            sci(t.delta_1[j], 10),
            sci(t.gradients.w_2[j], 10),
        ]);
    }
    s.block(Block::Table(table));

    // Finite differences: at the notebook's point and at a random point where nothing is symmetric.
    let nb = check_point("notebook point", notebook::NOTEBOOK_Y, &x, &w)?;
    let mut rng = SplitMix(7);
    let (d, k) = (4, 5);
    let rw = Weights::with_biases(
        Array2::from_shape_fn((d, k), |_| rng.uniform(-1.5, 1.5)),
        Array1::from_shape_fn(k, |_| rng.uniform(-1.5, 1.5)),
        Array1::from_shape_fn(k, |_| rng.uniform(-0.5, 0.5)),
        rng.uniform(-0.5, 0.5),
    )?;
    let rx = Array1::from_shape_fn(d, |_| rng.uniform(-2.0, 2.0));
    let ry = 0.2;
    let rp = check_point("random point", ry, &rx, &rw)?;

    let mut cmp = Table::new([
        "point",
        "tensor",
        "max |hand-derived − finite diff.|",
        "max |gradient|",
        "ratio",
    ])
    .caption("Hand-derived gradients vs central finite differences (h = 1e-5·(1 + |θ|)), all 31 parameters");
    cmp.numeric = vec![false, false, true, true, true];
    for p in [&nb, &rp] {
        for (name, diff, scale) in &p.rows {
            cmp.push([
                p.label.to_string(),
                name.clone(),
                sci(*diff, 2),
                sci(*scale, 3),
                sci(diff / scale.max(f64::MIN_POSITIVE), 1),
            ]);
        }
    }
    s.block(Block::Table(cmp));
    s.text(
        "The random point (seeded: weights uniform in [−1.5, 1.5], biases in [−0.5, 0.5], x in [−2, 2], y = 0.2) \
         has nonzero biases and no symmetry between hidden units, so a transposed index or a missing σ' \
         factor cannot hide there.",
    );
    let mut checks = Vec::new();
    for p in [&nb, &rp] {
        checks.push(Check {
            name: format!("the autodiff engine reproduces the hand-derived gradients at the {}", p.label),
            passed: p.engine_worst <= ENGINE_TOLERANCE,
            detail: format!(
                "max difference {} relative to max(1, max |g|) (required ≤ {})",
                sci(p.engine_worst, 1),
                sci(ENGINE_TOLERANCE, 0)
            ),
        });
    }
    for p in [&nb, &rp] {
        checks.push(Check {
            name: format!("hand-derived gradients match finite differences at the {}", p.label),
            passed: p.passed,
            detail: format!("worst relative error {} < {}", sci(p.worst, 1), sci(FD_TOLERANCE, 0)),
        });
    }
    s.block(Block::Checks(checks));

    let rows_json = |p: &PointCheck| -> serde_json::Value {
        p.rows
            .iter()
            .map(|(n, d, sc)| json!({"tensor": n, "max_abs_error": d, "max_abs_gradient": sc}))
            .collect()
    };
    let rows_json_engine = |p: &PointCheck| -> serde_json::Value {
        p.engine_rows.iter().map(|(n, d, _)| json!({"tensor": n, "max_abs_difference": d})).collect()
    };
    let j = json!({
        "trace": {
            "z_1": t.z_1.to_vec(), "x_1": t.x_1.to_vec(), "grad_sigmoid_z_1": sp.to_vec(),
            "z_2": t.z_2, "y_hat": t.y_hat, "loss": t.loss,
            "delta_2": t.delta_2, "delta_1": t.delta_1.to_vec(),
            "gradients": {
                "w_1": t.gradients.w_1.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
                "w_2": t.gradients.w_2.to_vec(), "b_1": t.gradients.b_1.to_vec(), "b_2": t.gradients.b_2,
            },
        },
        "finite_differences": {
            "tolerance": FD_TOLERANCE,
            "notebook_point": {"worst_relative_error": nb.worst, "passed": nb.passed, "tensors": rows_json(&nb)},
            "random_point": {"worst_relative_error": rp.worst, "passed": rp.passed, "tensors": rows_json(&rp),
                "x": rx.to_vec(), "y": ry},
        },
        "engine": {
            "tolerance": ENGINE_TOLERANCE,
            "notebook_point": {"worst_difference": nb.engine_worst, "tensors": rows_json_engine(&nb)},
            "random_point": {"worst_difference": rp.engine_worst, "tensors": rows_json_engine(&rp)},
        },
    });
    let summary = format!(
        "δ⁽²⁾ = {}, engine = hand-derived to {}, finite differences to {} / {}",
        sci(t.delta_2, 6),
        sci(nb.engine_worst.max(rp.engine_worst), 0),
        sci(nb.worst, 1),
        sci(rp.worst, 1)
    );
    Ok(Step::new(s, j, summary, false))
}
