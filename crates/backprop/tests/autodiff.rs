//! Whole-crate checks of the autodiff engine against independent oracles: the notebook's
//! hand-derived backward pass and printed values, closed-form derivatives, finite differences.

use backprop::Error;
use backprop::autodiff::{self, GradCheck, Tape, Var, gradcheck, notebook_batch_network, notebook_network};
use backprop::notebook::{self, Weights};
use ndarray::{Array1, Array2, ArrayD, IxDyn, arr0, array};

fn weights_random(seed: u64) -> Weights {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let w_1 = Array2::from_shape_fn((4, 5), |_| next());
    let w_2 = Array1::from_shape_fn(5, |_| next());
    let b_1 = Array1::from_shape_fn(5, |_| next() * 0.5);
    let b_2 = next() * 0.5;
    Weights::with_biases(w_1, w_2, b_1, b_2).unwrap()
}

#[test]
fn matches_notebook_gradients_to_1e15() {
    let x = notebook::notebook_x();
    for w in [Weights::notebook(), weights_random(1), weights_random(2)] {
        let tape = Tape::<f64>::new();
        let net = notebook_network(&tape, notebook::NOTEBOOK_Y, x.view(), &w).unwrap();
        let g = tape.grad(net.loss, &net.params()).unwrap();
        let hand = notebook::simple_backpropagation(notebook::NOTEBOOK_Y, x.view(), &w).unwrap();
        let y_hat = notebook::simple_feed_forward(x.view(), &w).unwrap();
        assert!((net.y_hat.item().unwrap() - y_hat).abs() <= 1e-15);
        let max_diff = |a: &ArrayD<f64>, b: ArrayD<f64>| {
            a.iter().zip(b.iter()).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max)
        };
        assert!(max_diff(&g[0], hand.w_1.into_dyn()) <= 1e-15);
        assert!(max_diff(&g[1], hand.w_2.into_dyn()) <= 1e-15);
        assert!(max_diff(&g[2], hand.b_1.into_dyn()) <= 1e-15);
        assert!((g[3].sum() - hand.b_2).abs() <= 1e-15);
    }
}

#[test]
fn matches_notebook_printed_values() {
    let x = notebook::notebook_x();
    let tape = Tape::<f64>::new();
    let net = notebook_network(&tape, notebook::NOTEBOOK_Y, x.view(), &Weights::notebook()).unwrap();
    assert!((net.y_hat.item().unwrap() - notebook::EXPECTED_Y_HAT).powi(2) < 1e-15);
    let g = tape.grad(net.loss, &[net.w_1, net.w_2]).unwrap();
    let err = (&g[0] - &notebook::expected_grad_w_1().into_dyn()).mapv(|d| d * d).sum()
        + (&g[1] - &notebook::expected_grad_w_2().into_dyn()).mapv(|d| d * d).sum();
    assert!(err < 1e-15, "{err}");
}

#[test]
fn delta_terms_are_the_adjoints_of_z() {
    let x = notebook::notebook_x();
    let w = weights_random(7);
    let tr = notebook::trace(0.3, x.view(), &w).unwrap();
    let tape = Tape::<f64>::new();
    let net = notebook_network(&tape, 0.3, x.view(), &w).unwrap();
    let adj = tape.adjoints(net.loss).unwrap();
    let d2 = adj[net.z_2.id().index()].as_ref().unwrap().sum();
    let d1 = adj[net.z_1.id().index()].as_ref().unwrap();
    assert!((d2 - tr.delta_2).abs() < 1e-16);
    for (a, b) in d1.iter().zip(tr.delta_1.iter()) {
        assert!((a - b).abs() < 1e-16);
    }
}

/// Flattened parameters of the notebook network in the engine's order [w_1, w_2, b_1, b_2].
fn flat(w: &Weights) -> Vec<f64> {
    w.w_1.iter().chain(w.w_2.iter()).chain(w.b_1.iter()).copied().chain(std::iter::once(w.b_2)).collect()
}

fn unflat(p: &[f64]) -> Weights {
    let w_1 = Array2::from_shape_vec((4, 5), p[..20].to_vec()).unwrap();
    let w_2 = Array1::from(p[20..25].to_vec());
    let b_1 = Array1::from(p[25..30].to_vec());
    Weights::with_biases(w_1, w_2, b_1, p[30]).unwrap()
}

#[test]
fn notebook_hessian_matches_finite_differences_of_hand_gradients() {
    let w = weights_random(3);
    let x = array![[0.1, -0.2, 0.3, 0.5], [1.0, 0.4, -0.7, 0.2], [-0.3, 0.8, 0.1, -0.9]];
    let y = array![1.0, 0.0, 0.5];
    let tape = Tape::<f64>::new();
    let net = notebook_batch_network(&tape, y.view(), x.view(), &w).unwrap();
    let before = tape.len();
    let h = tape.hessian(net.loss, &net.params()).unwrap();
    assert_eq!(tape.len(), before, "hessian must not grow the tape");
    assert_eq!(h.dim(), (31, 31));
    let p = flat(&w);
    let eps = 1e-5;
    let mut worst: f64 = 0.0;
    for j in 0..31 {
        let (mut pp, mut pm) = (p.clone(), p.clone());
        pp[j] += eps;
        pm[j] -= eps;
        let gp = notebook::batch_backpropagation(y.view(), x.view(), &unflat(&pp)).unwrap().1;
        let gm = notebook::batch_backpropagation(y.view(), x.view(), &unflat(&pm)).unwrap().1;
        let fp = flat(&Weights { w_1: gp.w_1, w_2: gp.w_2, b_1: gp.b_1, b_2: gp.b_2 });
        let fm = flat(&Weights { w_1: gm.w_1, w_2: gm.w_2, b_1: gm.b_1, b_2: gm.b_2 });
        for i in 0..31 {
            let fd = (fp[i] - fm[i]) / (2.0 * eps);
            worst = worst.max((h[[i, j]] - fd).abs());
        }
    }
    assert!(worst < 1e-8, "max |H − FD| = {worst:e}");
    let asym = (&h - &h.t()).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(asym < 1e-14, "hessian is symmetric: {asym:e}");
}

/// The n-th derivative of a scalar function by recording n − 1 backward passes.
fn nth_derivative(f: impl for<'t> Fn(Var<'t, f64>) -> Var<'t, f64>, x0: f64, n: usize) -> f64 {
    let tape = Tape::<f64>::new();
    let x = tape.scalar(x0);
    let mut y = f(x);
    for _ in 1..n {
        y = tape.grad_graph(y, &[x]).unwrap()[0];
    }
    tape.grad(y, &[x]).unwrap()[0].sum()
}

#[test]
fn third_derivatives_match_closed_forms() {
    for &x in &[-1.3, -0.2, 0.0, 0.7, 2.1] {
        let (s, c, e) = (f64::sin(x), f64::cos(x), f64::exp(f64::sin(x)));
        // f = e^{sin x}: f''' = (cos³x − 3 sin x cos x − cos x)·e^{sin x}
        let d3 = nth_derivative(|v| v.sin().exp(), x, 3);
        assert!((d3 - (c * c * c - 3.0 * s * c - c) * e).abs() < 1e-12, "{d3}");
        // σ''' = σ'(1 − 6σ + 6σ²)
        let sg = 1.0 / (1.0 + (-x).exp());
        let d3 = nth_derivative(|v| v.sigmoid(), x, 3);
        assert!((d3 - sg * (1.0 - sg) * (1.0 - 6.0 * sg + 6.0 * sg * sg)).abs() < 1e-12, "{d3}");
        // h = eˣ sin x: h''' = 2eˣ(cos x − sin x)
        let d3 = nth_derivative(|v| v.exp() * v.sin(), x, 3);
        assert!((d3 - 2.0 * x.exp() * (c - s)).abs() < 1e-11, "{d3}");
        // sin'''' = sin;  σ(sin x)' = σ'(sin x)·cos x
        assert!((nth_derivative(|v| v.sin(), x, 4) - s).abs() < 1e-12);
        let d1 = nth_derivative(|v| v.sin().sigmoid(), x, 1);
        let ss = 1.0 / (1.0 + (-s).exp());
        assert!((d1 - ss * (1.0 - ss) * c).abs() < 1e-14);
    }
}

#[test]
fn hvp_matches_hessian_and_keeps_tape_length() {
    let tape = Tape::<f64>::new();
    let a = tape.var(&array![0.3, -0.5, 1.2]);
    let b = tape.var(&array![[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]]);
    let loss = (a.matmul(b).tanh().square().sum() + a.sin().sum()) * a.sigmoid().mean();
    let n = tape.len();
    let h = tape.hessian(loss, &[a, b]).unwrap();
    let v = [array![1.0, 0.5, -1.0].into_dyn(), array![[0.2, -0.1], [0.0, 0.3], [1.0, 0.7]].into_dyn()];
    let hv = tape.hvp(loss, &[a, b], &v).unwrap();
    assert_eq!(tape.len(), n);
    let flat_v: Array1<f64> = v.iter().flat_map(|x| x.iter().copied()).collect();
    let flat_hv: Array1<f64> = hv.iter().flat_map(|x| x.iter().copied()).collect();
    let expected = h.dot(&flat_v);
    for (p, q) in flat_hv.iter().zip(expected.iter()) {
        assert!((p - q).abs() < 1e-13);
    }
}

#[test]
fn jacobian_and_vjp_of_a_matrix_product() {
    let tape = Tape::<f64>::new();
    let a = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
    let x = tape.var(&array![0.5, -1.0]);
    let y = tape.constant(&a).matmul(x);
    let j = tape.jacobian(y, &[x]).unwrap();
    assert_eq!(j[0], a.clone().into_dyn());
    let seed = array![1.0, 0.0, -1.0].into_dyn();
    let v = tape.vjp(y, &[x], &seed).unwrap();
    assert_eq!(v[0], array![-4.0, -4.0].into_dyn());
    let free = autodiff::jacobian(y, &[x]).unwrap();
    assert_eq!(free[0], j[0]);
}

fn check(
    name: &str,
    f: impl for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Var<'t, f64>,
    inputs: &[ArrayD<f64>],
) {
    let r = GradCheck::new().run(f, inputs).unwrap();
    assert!(r.passed, "{name}:\n{r}");
}

fn a23() -> ArrayD<f64> {
    array![[0.3, -1.2, 0.8], [1.5, 0.1, -0.6]].into_dyn()
}

#[test]
fn every_op_passes_gradcheck() {
    let a = a23();
    let b = array![[0.7, 0.2, -0.9], [-0.4, 1.1, 0.5]].into_dyn();
    let row = array![0.2, -0.3, 0.9].into_dyn();
    let m32 = array![[0.5, -0.2], [0.1, 0.4], [-0.3, 0.8]].into_dyn();
    let pos = array![[0.5, 1.2, 2.0], [0.3, 0.9, 1.7]].into_dyn();
    check("add broadcast", |_, v| (v[0] + v[1]).square().sum(), &[a.clone(), row.clone()]);
    check("sub broadcast", |_, v| (v[1] - v[0]).sin().sum(), &[a.clone(), row.clone()]);
    check("mul", |_, v| (v[0] * v[1]).sum(), &[a.clone(), b.clone()]);
    check("div", |_, v| (v[0] / v[1]).sum(), &[a.clone(), pos.clone()]);
    check(
        "scalar ops",
        |_, v| ((2.0 - v[0]) * 3.0 / 4.0 + 1.0 - (1.0 / (v[0].square() + 1.0))).sum(),
        std::slice::from_ref(&a),
    );
    check("neg", |_, v| (-v[0]).exp().sum(), std::slice::from_ref(&a));
    check("matmul 2-D", |_, v| v[0].matmul(v[1]).tanh().sum(), &[a.clone(), m32.clone()]);
    check("matmul transposed", |_, v| v[0].matmul_t(v[1], true, true).sin().sum(), &[m32.clone(), a.clone()]);
    check(
        "matmul 1-D",
        |_, v| v[1].matmul(v[0]).matmul(v[1]).square().sum(),
        &[array![0.3, -0.7].into_dyn(), m32.clone()],
    );
    check(
        "matmul batched",
        |_, v| v[0].reshape(&[2, 1, 3]).matmul(v[1]).sigmoid().sum(),
        &[a.clone(), m32.clone()],
    );
    check(
        "transpose/permute",
        |_, v| (v[0].t().matmul(v[1]) * v[0].permute(&[1, 0]).matmul(v[1])).sum(),
        &[a.clone(), b.clone()],
    );
    check("reshape", |_, v| v[0].reshape(&[3, 2]).matmul(v[0]).sum(), std::slice::from_ref(&a));
    check("broadcast_to", |_, v| (v[0].broadcast_to(&[4, 3]).sin() * 1.5).sum(), std::slice::from_ref(&row));
    check(
        "sum/mean axes",
        |_, v| (v[0].sum_axes(&[0], true).square() * v[0].mean_axes(&[1], true)).sum() + v[0].mean().square(),
        std::slice::from_ref(&a),
    );
    check(
        "sum_to",
        |_, v| v[0].broadcast_to(&[2, 2, 3]).sin().sum_to(&[2, 1, 3]).square().sum(),
        std::slice::from_ref(&a),
    );
    check(
        "exp log sqrt powf",
        |_, v| (v[0].exp() + v[1].ln() + v[1].sqrt() + v[1].powf(1.7)).sum(),
        &[a.clone(), pos.clone()],
    );
    check("abs sin cos", |_, v| (v[0].abs() * v[0].sin() + v[0].cos()).sum(), std::slice::from_ref(&a));
    check("sigmoid tanh", |_, v| (v[0].sigmoid() * v[0].tanh()).sum(), std::slice::from_ref(&a));
    check(
        "relu leaky softplus",
        |_, v| (v[0].relu() + v[0].leaky_relu(0.1) * v[0] + v[0].softplus()).sum(),
        std::slice::from_ref(&a),
    );
    check(
        "softmax",
        |_, v| (v[0].softmax(1) * v[1]).sum() + (v[0].softmax(0) * v[1]).sum(),
        &[a.clone(), b.clone()],
    );
    check(
        "log_softmax",
        |_, v| (v[0].log_softmax(1) * v[1]).sum() + (v[0].log_softmax(0) * v[1]).sum(),
        &[a.clone(), b.clone()],
    );
    check(
        "max/min",
        |_, v| v[0].max_axis(1, false).square().sum() + v[0].min_axis(0, true).sin().sum(),
        std::slice::from_ref(&a),
    );
    check("clamp", |_, v| v[0].clamp(-1.0, 1.0).square().sum(), std::slice::from_ref(&a));
    let mask = array![[true, false, true], [false, false, true]].into_dyn();
    check("where", move |t, v| t.where_(&mask, v[0], v[1].square()).sin().sum(), &[a.clone(), row.clone()]);
    check(
        "concat",
        |t, v| t.concat(&[v[0], v[1].square()], 0).sin().sum() + t.concat(&[v[0], v[1]], 1).square().sum(),
        &[a.clone(), b.clone()],
    );
    check("slice", |_, v| v[0].slice(1, 1, 3).square().sum(), std::slice::from_ref(&a));
    check("index_select", |_, v| v[0].index_select(1, &[2, 0, 2, 1]).sin().sum(), std::slice::from_ref(&a));
    let idx = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![2usize, 0, 1, 1]).unwrap();
    check("gather", move |_, v| v[0].gather(1, &idx).exp().sum(), std::slice::from_ref(&a));
    check(
        "squared_error",
        |t, v| v[0].squared_error(t.constant(&array![[1.0, 0.0, 0.5], [0.0, 1.0, 0.2]])),
        std::slice::from_ref(&a),
    );
    check("mse", |_, v| v[0].mse(v[1]), &[a.clone(), b.clone()]);
    check(
        "bce_with_logits",
        |t, v| v[0].bce_with_logits(t.constant(&array![[1.0, 0.0, 0.5], [0.0, 1.0, 0.2]])),
        std::slice::from_ref(&a),
    );
    check("cross_entropy", |_, v| v[0].cross_entropy_with_logits(&[2, 0]), std::slice::from_ref(&a));
    check("non-scalar output (vjp)", |_, v| v[0].matmul(v[1]).sigmoid(), &[a.clone(), m32.clone()]);
}

#[test]
fn losses_have_their_textbook_values() {
    let tape = Tape::<f64>::new();
    let yh = tape.var(&array![0.2, 0.9]);
    let y = tape.constant(&array![0.0, 1.0]);
    assert!((yh.squared_error(y).item().unwrap() - 0.5 * (0.04 + 0.01) / 2.0).abs() < 1e-15);
    assert!((yh.mse(y).item().unwrap() - (0.04 + 0.01) / 2.0).abs() < 1e-15);
    let z = tape.var(&array![800.0, -800.0]);
    let bce = z.bce_with_logits(y).item().unwrap();
    assert!((bce - 800.0).abs() < 1e-9, "stable for huge logits: {bce}");
    let logits = tape.var(&array![[1000.0, 0.0, -1000.0]]);
    let ce = logits.cross_entropy_with_logits(&[1]).item().unwrap();
    assert!((ce - 1000.0).abs() < 1e-9, "stable: {ce}");
    assert!(logits.cross_entropy_with_logits(&[3]).value().is_err());
}

#[test]
fn f32_and_f64_share_one_path() {
    let t64 = Tape::<f64>::new();
    let t32 = Tape::<f32>::new();
    let w64 = t64.var(&array![[0.5, -0.25], [1.0, 0.75]]);
    let w32 = t32.var(&array![[0.5f32, -0.25], [1.0, 0.75]]);
    let l64 = w64.matmul(w64).sigmoid().log_softmax(1).sum();
    let l32 = w32.matmul(w32).sigmoid().log_softmax(1).sum();
    let g64 = t64.grad(l64, &[w64]).unwrap();
    let g32 = t32.grad(l32, &[w32]).unwrap();
    for (a, b) in g64[0].iter().zip(g32[0].iter()) {
        assert!((a - *b as f64).abs() < 1e-6);
    }
}

#[test]
fn shape_mismatch_names_op_and_both_shapes() {
    let tape = Tape::<f64>::new();
    let a = tape.var(&ArrayD::<f64>::zeros(IxDyn(&[2, 3])));
    let b = tape.var(&ArrayD::<f64>::zeros(IxDyn(&[4])));
    let c = (a + b).sin();
    let err = c.value().unwrap_err().to_string();
    assert!(err.contains("add") && err.contains("[2, 3]") && err.contains("[4]"), "{err}");
    let err = tape.grad(c.sum(), &[a]).unwrap_err().to_string();
    assert!(err.contains("[2, 3]"), "{err}");
    let tape = Tape::<f64>::new();
    let a = tape.var(&ArrayD::<f64>::zeros(IxDyn(&[2, 3])));
    let err = a.matmul(a).value().unwrap_err().to_string();
    assert!(err.contains("matmul") && err.contains("[2, 3]"), "{err}");
}

#[test]
fn grad_of_non_scalar_without_seed_is_an_error() {
    let tape = Tape::<f64>::new();
    let a = tape.var(&array![1.0, 2.0]);
    let err = tape.grad(a.sin(), &[a]).unwrap_err().to_string();
    assert!(err.contains("scalar") && err.contains("[2]"), "{err}");
    assert!(tape.grad_graph(a.sin(), &[a]).is_err());
    assert!(tape.vjp(a.sin(), &[a], &array![1.0].into_dyn()).is_err());
}

#[test]
fn vars_cannot_cross_tapes() {
    let t1 = Tape::<f64>::new();
    let t2 = Tape::<f64>::new();
    let a = t1.var(&array![1.0]);
    let b = t2.var(&array![2.0]);
    let c = a + b;
    let err = c.value().unwrap_err();
    assert!(matches!(err, Error::Autodiff(_)) && err.to_string().contains("tape"), "{err}");
    let err = t1.grad(a.sum(), &[b]).unwrap_err().to_string();
    assert!(err.contains("tape"), "{err}");
}

#[test]
fn finite_check_names_the_first_op_producing_nan() {
    let tape = Tape::<f64>::new().check_finite(true);
    let a = tape.var(&array![1.0, -1.0]);
    let l = a.sigmoid().ln().sqrt().sum(); // ln σ < 0, so sqrt gives NaN
    let err = l.value().unwrap_err().to_string();
    assert!(err.contains("sqrt") && err.contains("forward"), "{err}");
    // Backward: |x|^0.5 is finite at 0 but its derivative is not.
    let tape = Tape::<f64>::new().check_finite(true);
    let a = tape.var(&array![0.0, 4.0]);
    let l = a.powf(0.5).sum();
    let err = tape.grad(l, &[a]).unwrap_err().to_string();
    assert!(err.contains("backward") && err.contains("powf"), "{err}");
    // Off by default: the NaN propagates silently, like numpy.
    let tape = Tape::<f64>::new();
    let a = tape.var(&array![0.0]);
    assert!(tape.grad(a.powf(0.5).sum(), &[a]).unwrap()[0][0].is_infinite());
}

#[test]
fn reused_tape_does_not_grow() {
    let mut tape = Tape::<f64>::new();
    let w = weights_random(5);
    let x = notebook::notebook_x();
    let mut grads: Vec<ArrayD<f64>> = Vec::new();
    let mut shape_log = Vec::new();
    for step in 0..20 {
        tape.reset();
        let net = notebook_network(&tape, 1.0, x.view(), &w).unwrap();
        if grads.is_empty() {
            grads = net.params().iter().map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
        }
        tape.grad_into(net.loss, &net.params(), &mut grads).unwrap();
        let _ = tape.hvp(net.loss, &net.params(), &grads.clone()).unwrap();
        if step >= 2 {
            shape_log.push((tape.len(), tape.capacity(), tape.pooled_buffers()));
        }
    }
    assert!(shape_log.windows(2).all(|w| w[0] == w[1]), "steady state: {shape_log:?}");
}

#[test]
fn dot_export_shows_op_shape_value_and_gradient() {
    let tape = Tape::<f64>::new();
    let net = notebook_network(&tape, 1.0, notebook::notebook_x().view(), &Weights::notebook()).unwrap();
    let dot = tape.to_dot(Some(net.loss)).unwrap();
    assert!(dot.starts_with("digraph"));
    assert!(
        dot.contains("w_1 = input")
            && dot.contains("sigmoid")
            && dot.contains("grad")
            && dot.contains("shape [4, 5]")
    );
    assert_eq!(dot.matches("->").count(), 15, "one edge per operand");
}

#[test]
fn gradcheck_reports_a_wrong_gradient() {
    // detach() hides a dependency from the engine, so the analytic gradient is wrong.
    let r = gradcheck(|_, v| (v[0] * v[0].detach()).sum(), &[array![1.0, 2.0].into_dyn()]).unwrap();
    assert!(!r.passed);
    assert!(r.inputs[0].max_abs_error > 0.5, "{r}");
    let ok = gradcheck(|_, v| (v[0] * v[0]).sum(), &[array![1.0, 2.0].into_dyn()]).unwrap();
    assert!(ok.passed && ok.hvp.as_ref().unwrap().passed);
}

#[test]
fn zero_gradient_for_unused_inputs_and_scalar_inputs() {
    let tape = Tape::<f64>::new();
    let a = tape.var(&arr0(2.0));
    let b = tape.var(&array![1.0, 2.0]);
    let l = a.square() * 3.0;
    let g = tape.grad(l, &[a, b]).unwrap();
    assert_eq!(g[0], arr0(12.0).into_dyn());
    assert_eq!(g[1], array![0.0, 0.0].into_dyn());
}

#[test]
fn notebook_replay_matches_the_hand_derived_pass_to_1e15() {
    let x = notebook::notebook_x();
    let tape = Tape::<f64>::new();
    let net = notebook_network(&tape, notebook::NOTEBOOK_Y, x.view(), &Weights::notebook()).unwrap();
    let mut plan =
        tape.compile(net.loss, &net.params(), &[net.x, net.y_hat.tape().constant(&arr0(0.0))]).unwrap();
    assert_eq!(plan.len(), 17, "16 nodes of the network and the unused extra data input");
    let mut g: Vec<ArrayD<f64>> = (0..4).map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
    for (k, w) in
        [Weights::notebook(), weights_random(1), weights_random(2), weights_random(3)].iter().enumerate()
    {
        let xk = &x * (1.0 + 0.1 * k as f64);
        plan.set_param(0, &w.w_1).unwrap();
        plan.set_param(1, &w.w_2).unwrap();
        plan.set_param(2, &w.b_1).unwrap();
        plan.set_param(3, &arr0(w.b_2)).unwrap();
        plan.set_data(0, &xk).unwrap();
        let loss = plan.grad_into(&mut g).unwrap();
        let hand = notebook::simple_backpropagation(notebook::NOTEBOOK_Y, xk.view(), w).unwrap();
        let y_hat = notebook::simple_feed_forward(xk.view(), w).unwrap();
        assert!((loss - 0.5 * (y_hat - 1.0).powi(2)).abs() <= 1e-15);
        let diff = |a: &ArrayD<f64>, b: ArrayD<f64>| {
            a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max)
        };
        assert!(diff(&g[0], hand.w_1.into_dyn()) <= 1e-15, "sample {k}");
        assert!(diff(&g[1], hand.w_2.into_dyn()) <= 1e-15);
        assert!(diff(&g[2], hand.b_1.into_dyn()) <= 1e-15);
        assert!((g[3].sum() - hand.b_2).abs() <= 1e-15);
    }
}
