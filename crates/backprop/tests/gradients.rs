//! The fused backward pass against independent oracles: the notebook's hand-derived gradients,
//! central finite differences on random architectures, and the f32 path against f64.

use backprop::nn::{Activation, Init, Loss, Mlp, MlpBuilder, ParamSelection};
use backprop::notebook;
use ndarray::{Array1, Array2, array};
use proptest::prelude::*;

/// Asserts |a − b| ≤ eps elementwise (scalars or any ndarray).
macro_rules! assert_abs_diff_eq {
    ($a:expr, $b:expr, epsilon = $e:expr) => {{
        let (a, b) = (&$a, &$b);
        let (a, b): (Vec<f64>, Vec<f64>) = (close::values(a), close::values(b));
        assert_eq!(a.len(), b.len(), "lengths differ");
        for (i, (u, v)) in a.iter().zip(&b).enumerate() {
            assert!((u - v).abs() <= $e, "element {i}: {u} vs {v} (eps {})", $e);
        }
    }};
}

mod close {
    pub trait Values {
        fn values(&self) -> Vec<f64>;
    }
    impl Values for f64 {
        fn values(&self) -> Vec<f64> {
            vec![*self]
        }
    }
    impl<S: ndarray::Data<Elem = f64>, D: ndarray::Dimension> Values for ndarray::ArrayBase<S, D> {
        fn values(&self) -> Vec<f64> {
            self.iter().copied().collect()
        }
    }
    pub fn values<V: Values>(v: &V) -> Vec<f64> {
        v.values()
    }
}

fn notebook_mlp() -> Mlp<f64> {
    MlpBuilder::new(&[4, 5, 1]).activation(Activation::Sigmoid).init(Init::Ones).bias(false).build().unwrap()
}

#[test]
fn matches_notebook_simple_backpropagation() {
    let m = notebook_mlp();
    let x = notebook::notebook_x();
    let xb = x.view().insert_axis(ndarray::Axis(0));
    let (loss, g) = m.loss_and_grad(Loss::SquaredError, xb, array![[notebook::NOTEBOOK_Y]].view()).unwrap();
    let w = notebook::Weights::notebook();
    let t = notebook::trace(1.0, x.view(), &w).unwrap();
    assert_abs_diff_eq!(loss, t.loss, epsilon = 1e-15);
    // our weight is out×in = the notebook's w_1 transposed
    for i in 0..4 {
        for j in 0..5 {
            assert_abs_diff_eq!(g.weight(0)[[j, i]], t.gradients.w_1[[i, j]], epsilon = 1e-15);
        }
    }
    for j in 0..5 {
        assert_abs_diff_eq!(g.weight(1)[[0, j]], t.gradients.w_2[j], epsilon = 1e-15);
    }
    let err = notebook::squared_error(
        &notebook::Gradients {
            w_1: g.weight(0).t().to_owned(),
            w_2: g.weight(1).row(0).to_owned(),
            b_1: Array1::zeros(5),
            b_2: 0.0,
        },
        &notebook::expected_grad_w_1(),
        &notebook::expected_grad_w_2(),
    );
    assert!(err < 1e-15, "{err}");
}

#[test]
fn matches_notebook_batch_backpropagation_with_biases() {
    // Random-ish weights and biases on a 4-5-1 sigmoid net, 7 samples.
    let w1 = Array2::from_shape_fn((4, 5), |(i, j)| ((i * 5 + j) as f64 * 0.37).sin());
    let w2 = Array1::from_shape_fn(5, |j| (j as f64 * 0.9).cos());
    let b1 = Array1::from_shape_fn(5, |j| 0.1 * j as f64 - 0.2);
    let b2 = 0.3;
    let x = Array2::from_shape_fn((7, 4), |(s, i)| ((s * 4 + i) as f64 * 0.71).cos());
    let y = Array1::from_shape_fn(7, |s| (s % 2) as f64);
    let w = notebook::Weights::with_biases(w1.clone(), w2.clone(), b1.clone(), b2).unwrap();
    let (nl, ng) = notebook::batch_backpropagation(y.view(), x.view(), &w).unwrap();

    let mut m = MlpBuilder::new(&[4, 5, 1]).build::<f64>().unwrap();
    m.layers[0].weight = w1.t().to_owned();
    m.layers[0].bias = Some(b1);
    m.layers[1].weight = w2.clone().insert_axis(ndarray::Axis(0));
    m.layers[1].bias = Some(array![b2]);
    let (loss, g) =
        m.loss_and_grad(Loss::SquaredError, x.view(), y.view().insert_axis(ndarray::Axis(1))).unwrap();
    assert_abs_diff_eq!(loss, nl, epsilon = 1e-15);
    assert_abs_diff_eq!(g.weight(0).t(), ng.w_1.view(), epsilon = 1e-15);
    assert_abs_diff_eq!(g.weight(1).row(0), ng.w_2.view(), epsilon = 1e-15);
    assert_abs_diff_eq!(g.bias(0).unwrap().view(), ng.b_1.view(), epsilon = 1e-15);
    assert_abs_diff_eq!(g.bias(1).unwrap()[0], ng.b_2, epsilon = 1e-15);
}

/// A small random problem: network, inputs and targets valid for `loss`.
fn problem(
    sizes: &[usize],
    acts: &[Activation],
    loss: Loss,
    bias: bool,
    n: usize,
    seed: u64,
) -> (Mlp<f64>, Array2<f64>, Array2<f64>) {
    let mut m = MlpBuilder::new(sizes)
        .activations(acts)
        .bias(bias)
        .init(Init::GlorotNormal)
        .seed(seed)
        .build::<f64>()
        .unwrap();
    // non-zero biases so their gradients are exercised
    for (l, layer) in m.layers.iter_mut().enumerate() {
        if let Some(b) = &mut layer.bias {
            b.iter_mut().enumerate().for_each(|(j, v)| *v = 0.3 * ((l * 7 + j) as f64 + seed as f64).sin());
        }
    }
    let d = sizes[0];
    let t = *sizes.last().unwrap();
    let x = Array2::from_shape_fn((n, d), |(i, j)| ((i * d + j) as f64 * 1.3 + seed as f64).sin() * 1.5);
    let y = match loss {
        Loss::CrossEntropy => Array2::from_shape_fn((n, 1), |(i, _)| ((i + seed as usize) % t) as f64),
        Loss::Bce => Array2::from_shape_fn((n, t), |(i, j)| {
            (((i + j) as f64 + seed as f64).cos() * 0.5 + 0.5).clamp(0.0, 1.0)
        }),
        _ => Array2::from_shape_fn((n, t), |(i, j)| ((i * t + j) as f64 * 0.7).cos()),
    };
    (m, x, y)
}

fn check_against_finite_differences(m: &Mlp<f64>, loss: Loss, x: &Array2<f64>, y: &Array2<f64>) {
    let (_, g) = m.loss_and_grad(loss, x.view(), y.view()).unwrap();
    let analytic = g.flat(ParamSelection::All);
    let theta = m.flat_params(ParamSelection::All);
    let mut probe = m.clone();
    let h = 1e-6;
    for k in 0..theta.len() {
        let mut t = theta.clone();
        t[k] += h;
        probe.set_flat_params(ParamSelection::All, t.as_slice().unwrap()).unwrap();
        let up = probe.loss(loss, x.view(), y.view()).unwrap();
        t[k] -= 2.0 * h;
        probe.set_flat_params(ParamSelection::All, t.as_slice().unwrap()).unwrap();
        let down = probe.loss(loss, x.view(), y.view()).unwrap();
        let fd = (up - down) / (2.0 * h);
        let tol = 1e-6 * (1.0 + fd.abs().max(analytic[k].abs()));
        assert!(
            (fd - analytic[k]).abs() < tol,
            "param {k}: analytic {} vs finite difference {fd} ({loss}, {:?})",
            analytic[k],
            m.activations()
        );
    }
}

fn arb_activation() -> impl Strategy<Value = Activation> {
    prop::sample::select(Activation::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn matches_central_finite_differences(
        widths in prop::collection::vec(1usize..5, 1..4),
        hidden in prop::collection::vec(arb_activation(), 3),
        out_act in arb_activation(),
        loss in prop::sample::select(Loss::ALL.to_vec()),
        bias in any::<bool>(),
        n in 1usize..6,
        seed in 0u64..1000,
    ) {
        let d = 3;
        let t = match loss { Loss::CrossEntropy => 3, _ => 2 };
        let mut sizes = vec![d];
        sizes.extend(&widths);
        sizes.push(t);
        let mut acts: Vec<Activation> = hidden.iter().cycle().take(sizes.len() - 2).copied().collect();
        let out = match loss {
            Loss::Bce => if out_act == Activation::Identity { Activation::Identity } else { Activation::Sigmoid },
            _ => out_act,
        };
        acts.push(out);
        let (m, x, y) = problem(&sizes, &acts, loss, bias, n, seed);
        check_against_finite_differences(&m, loss, &x, &y);
    }
}

#[test]
fn f32_gradients_agree_with_f64() {
    for loss in Loss::ALL {
        let out = if loss == Loss::Bce { Activation::Sigmoid } else { Activation::Identity };
        let sizes = [6, 8, 7, if loss == Loss::CrossEntropy { 4 } else { 3 }];
        let (m, x, y) = problem(&sizes, &[Activation::Tanh, Activation::Softplus, out], loss, true, 16, 5);
        let (l64, g64) = m.loss_and_grad(loss, x.view(), y.view()).unwrap();
        let m32 = m.cast::<f32>();
        let (l32, g32) =
            m32.loss_and_grad(loss, x.mapv(|v| v as f32).view(), y.mapv(|v| v as f32).view()).unwrap();
        assert!((l64 - l32).abs() < 1e-5 * (1.0 + l64.abs()), "{loss}: {l64} vs {l32}");
        let (a, b) = (g64.flat(ParamSelection::All), g32.flat(ParamSelection::All));
        let scale = a.iter().fold(0.0f64, |s, v| s.max(v.abs()));
        for (u, v) in a.iter().zip(b.iter()) {
            assert!((u - *v as f64).abs() < 1e-5 * scale.max(1e-3), "{loss}: {u} vs {v}");
        }
    }
}

#[test]
fn workspace_reuse_gives_identical_results_for_any_batch_size() {
    let (m, x, y) =
        problem(&[5, 9, 4], &[Activation::Relu, Activation::Identity], Loss::CrossEntropy, true, 20, 3);
    let mut ws = backprop::nn::Workspace::new(&m, 20);
    let mut g = backprop::nn::Grads::zeros_like(&m);
    for n in [20, 3, 17, 1] {
        let (xb, yb) = (x.slice(ndarray::s![..n, ..]), y.slice(ndarray::s![..n, ..]));
        let l = ws.loss_and_grad(&m, Loss::CrossEntropy, xb, yb, &mut g).unwrap();
        let (l2, g2) =
            m.loss_and_grad(Loss::CrossEntropy, xb.to_owned().view(), yb.to_owned().view()).unwrap();
        assert_eq!(l, l2);
        assert_eq!(g, g2);
    }
    // a column-major (transposed-copy) input view gives the same result
    let xt = x.t().to_owned();
    let l3 = ws.loss_and_grad(&m, Loss::CrossEntropy, xt.t(), y.view(), &mut g).unwrap();
    let (l4, g4) = m.loss_and_grad(Loss::CrossEntropy, x.view(), y.view()).unwrap();
    assert!((l3 - l4).abs() < 1e-14);
    assert_abs_diff_eq!(g.flat(ParamSelection::All), g4.flat(ParamSelection::All), epsilon = 1e-14);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let (m, x, y) =
        problem(&[3, 4, 3], &[Activation::Tanh, Activation::Identity], Loss::CrossEntropy, true, 5, 1);
    let e =
        m.loss_and_grad(Loss::CrossEntropy, x.slice(ndarray::s![.., ..2]), y.view()).unwrap_err().to_string();
    assert!(e.contains("3 inputs"), "{e}");
    let mut bad_y = y.clone();
    bad_y[[2, 0]] = 3.0;
    let e = m.loss_and_grad(Loss::CrossEntropy, x.view(), bad_y.view()).unwrap_err().to_string();
    assert!(e.contains("row 2"), "{e}");
    bad_y[[2, 0]] = 0.5;
    assert!(m.loss(Loss::CrossEntropy, x.view(), bad_y.view()).is_err());
    let mut bad_x = x.clone();
    bad_x[[1, 1]] = f64::NAN;
    let e = m.predict(bad_x.view()).unwrap_err().to_string();
    assert!(e.contains("row 1, column 1"), "{e}");
    let e = m.loss(Loss::Bce, x.view(), x.view()).unwrap_err().to_string();
    assert!(e.contains("outside [0, 1]") || e.contains("bce"), "{e}");
    let sig = MlpBuilder::new(&[3, 2]).activation(Activation::Tanh).build::<f64>().unwrap();
    assert!(
        sig.loss(Loss::Bce, x.view(), Array2::zeros((5, 2)).view())
            .unwrap_err()
            .to_string()
            .contains("sigmoid")
    );
    assert!(m.loss(Loss::Mse, x.slice(ndarray::s![..0, ..]), Array2::zeros((0, 3)).view()).is_err());
}

#[test]
fn losses_match_hand_computed_values() {
    // One sample, identity 2-output net with weight = I: ŷ = x.
    let mut m = MlpBuilder::new(&[2, 2]).activation(Activation::Identity).bias(false).build::<f64>().unwrap();
    m.layers[0].weight = Array2::eye(2);
    let x = array![[1.0, 3.0]];
    let y = array![[0.0, 1.0]];
    assert_abs_diff_eq!(
        m.loss(Loss::SquaredError, x.view(), y.view()).unwrap(),
        0.5 * (1.0 + 4.0),
        epsilon = 1e-15
    );
    assert_abs_diff_eq!(m.loss(Loss::Mse, x.view(), y.view()).unwrap(), (1.0 + 4.0) / 2.0, epsilon = 1e-15);
    let ce = m.loss(Loss::CrossEntropy, x.view(), array![[1.0]].view()).unwrap();
    assert_abs_diff_eq!(ce, (1f64.exp() + 3f64.exp()).ln() - 3.0, epsilon = 1e-15);
    let bce = m.loss(Loss::Bce, x.view(), array![[0.0, 1.0]].view()).unwrap();
    let s = |z: f64| 1.0 / (1.0 + (-z).exp());
    assert_abs_diff_eq!(bce, -((1.0 - s(1.0)).ln() + s(3.0).ln()) / 2.0, epsilon = 1e-15);
    // stable far out: logit 1000 with target 0 costs 1000/2, not inf
    let far = m.loss(Loss::Bce, array![[1000.0, -1000.0]].view(), array![[0.0, 1.0]].view()).unwrap();
    assert_abs_diff_eq!(far, 1000.0, epsilon = 1e-9);
}
