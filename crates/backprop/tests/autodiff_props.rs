//! Property tests: `gradcheck` (first order and Hessian-vector products, against central finite
//! differences) over random expression graphs that cover every op, and over random MLPs.

use backprop::autodiff::{GradCheck, Tape, Var};
use backprop::nn::{Activation, Loss};
use ndarray::{ArrayD, IxDyn, array};
use proptest::prelude::*;

const OPS: usize = 31;

/// One random step `x ↦ op(x)` on a [2, 3] tensor, using the other inputs `a` [2, 3], `row` [3]
/// and `m` [3, 2]. Inputs to ln/sqrt/powf are made positive, exp's argument bounded.
fn step<'t>(
    t: &'t Tape<f64>,
    op: usize,
    x: Var<'t, f64>,
    a: Var<'t, f64>,
    row: Var<'t, f64>,
    m: Var<'t, f64>,
) -> Var<'t, f64> {
    match op {
        0 => x + row,
        1 => x - a,
        2 => x * a,
        3 => x / (a.square() + 1.0),
        4 => x.tanh().exp(),
        5 => (x.square() + 1.0).ln(),
        6 => (x.square() + 0.5).sqrt(),
        7 => (x.square() + 0.5).powf(1.5),
        8 => x.abs(),
        9 => x.sin(),
        10 => x.cos(),
        11 => x.sigmoid(),
        12 => x.tanh(),
        13 => x.relu() + x * 0.1,
        14 => x.leaky_relu(0.2),
        15 => x.softplus(),
        16 => x.softmax(1),
        17 => x.log_softmax(0),
        18 => x + x.max_axis(1, true),
        19 => x - x.min_axis(0, false),
        20 => x.clamp(-0.7, 0.7) + x * 0.1,
        21 => t.where_(&array![[true, false, true], [false, true, false]].into_dyn(), x, a),
        22 => t.concat(&[x, a], 0).slice(0, 1, 3),
        23 => x.matmul(m).matmul_t(m, false, true),
        24 => x.t().t() + x.permute(&[1, 0]).reshape(&[2, 3]),
        25 => x.sum_axes(&[0], true).broadcast_to(&[2, 3]) * x,
        26 => x.mean_axes(&[1], true) * x + x.mean(),
        27 => x.index_select(1, &[2, 0, 1]),
        28 => x.gather(1, &ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![2, 0, 1, 1, 1, 0]).unwrap()),
        29 => x.broadcast_to(&[2, 2, 3]).sum_to(&[2, 3]) * 0.5,
        _ => x.reshape(&[1, 2, 3]).matmul(m).reshape(&[2, 2]).matmul(m.t()),
    }
}

fn loss<'t>(t: &'t Tape<f64>, kind: usize, x: Var<'t, f64>, a: Var<'t, f64>) -> Var<'t, f64> {
    match kind {
        0 => x.sum(),
        1 => x.squared_error(t.constant(&array![[1.0, 0.0, 0.5], [0.2, -0.4, 1.0]])),
        2 => x.mse(a),
        3 => x.bce_with_logits(t.constant(&array![[1.0, 0.0, 0.5], [0.2, 0.9, 1.0]])),
        _ => x.cross_entropy_with_logits(&[2, 0]),
    }
}

/// The random graph of `ops` and `kind` over the four inputs: (loss, input vars).
fn record<'t>(
    t: &'t Tape<f64>,
    ins: &[ArrayD<f64>; 4],
    ops: &[usize],
    kind: usize,
) -> (Var<'t, f64>, Vec<Var<'t, f64>>) {
    let v: Vec<Var<'t, f64>> = ins.iter().map(|a| t.var(a)).collect();
    let mut x = v[0];
    for &op in ops {
        x = step(t, op, x, v[1], v[2], v[3]);
    }
    (loss(t, kind, x, v[1]), v)
}

fn arr(shape: &[usize], v: &[f64]) -> ArrayD<f64> {
    ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_expression_graphs_pass_gradcheck(
        ops in prop::collection::vec(0..OPS, 1..5),
        kind in 0usize..5,
        vals in prop::collection::vec(-1.5f64..1.5, 21),
    ) {
        let inputs = [arr(&[2, 3], &vals[..6]), arr(&[2, 3], &vals[6..12]), arr(&[3], &vals[12..15]), arr(&[3, 2], &vals[15..21])];
        let ops2 = ops.clone();
        let r = GradCheck::new()
            .directions(1)
            .run(
                move |t, v| {
                    let mut x = v[0];
                    for &op in &ops2 {
                        x = step(t, op, x, v[1], v[2], v[3]);
                    }
                    loss(t, kind, x, v[1])
                },
                &inputs,
            )
            .unwrap();
        prop_assert!(r.passed, "ops {:?}, loss {}:\n{}", ops, kind, r);
    }

    #[test]
    fn compiled_plans_replay_random_graphs_like_fresh_recordings(
        ops in prop::collection::vec(0..OPS, 1..5),
        kind in 0usize..5,
        vals in prop::collection::vec(-1.5f64..1.5, 21),
        vals2 in prop::collection::vec(-1.5f64..1.5, 21),
    ) {
        // Record at `vals`, compile, replay at `vals2`; compare with a recording at `vals2`.
        let inputs = |v: &[f64]| [arr(&[2, 3], &v[..6]), arr(&[2, 3], &v[6..12]), arr(&[3], &v[12..15]), arr(&[3, 2], &v[15..21])];
        let tape = Tape::<f64>::new();
        let (out, params) = record(&tape, &inputs(&vals), &ops, kind);
        let mut plan = tape.compile(out, &params, &[]).unwrap();
        let ins2 = inputs(&vals2);
        for (k, a) in ins2.iter().enumerate() {
            plan.set_param(k, a).unwrap();
        }
        let mut g: Vec<ArrayD<f64>> = (0..4).map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
        let l = plan.grad_into(&mut g).unwrap();
        let t2 = Tape::<f64>::new();
        let (o2, p2) = record(&t2, &ins2, &ops, kind);
        let want = t2.grad(o2, &p2).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-10 * (1.0 + b.abs());
        prop_assert!(close(l, o2.item().unwrap()), "ops {:?}, loss {}: {} vs {}", ops, kind, l, o2.item().unwrap());
        for (a, b) in g.iter().zip(&want) {
            prop_assert!(a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| close(*x, *y)), "ops {:?}, loss {}:\n{}\nvs\n{}", ops, kind, a, b);
        }
    }

    #[test]
    fn every_op_is_covered_by_the_generator(op in 0..OPS) {
        // Each op alone, with every loss: the deterministic sweep the random graphs build on.
        let inputs = [
            array![[0.3, -1.2, 0.8], [1.1, 0.1, -0.6]].into_dyn(),
            array![[0.7, 0.2, -0.9], [-0.4, 1.1, 0.5]].into_dyn(),
            array![0.2, -0.3, 0.9].into_dyn(),
            array![[0.5, -0.2], [0.1, 0.4], [-0.3, 0.8]].into_dyn(),
        ];
        for kind in 0..5 {
            let r = GradCheck::new()
                .run(move |t, v| loss(t, kind, step(t, op, v[0], v[1], v[2], v[3]), v[1]), &inputs)
                .unwrap();
            prop_assert!(r.passed, "op {}, loss {}:\n{}", op, kind, r);
        }
    }

    #[test]
    fn random_mlps_pass_gradcheck(
        sizes in prop::collection::vec(1usize..5, 2..5),
        acts in prop::collection::vec(0usize..6, 4),
        loss_kind in 0usize..4,
        batch in 1usize..4,
        seed in any::<u64>(),
    ) {
        let mut s = seed;
        let mut next = move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let mut sizes = sizes;
        let loss = Loss::ALL[loss_kind];
        if loss == Loss::CrossEntropy && *sizes.last().unwrap() < 2 {
            *sizes.last_mut().unwrap() = 3;
        }
        let layers = sizes.len() - 1;
        let mut inputs = Vec::new();
        for w in sizes.windows(2) {
            inputs.push(ArrayD::from_shape_simple_fn(IxDyn(&[w[1], w[0]]), &mut next));
            inputs.push(ArrayD::from_shape_simple_fn(IxDyn(&[w[1]]), &mut next));
        }
        let x = ArrayD::from_shape_simple_fn(IxDyn(&[batch, sizes[0]]), &mut next);
        let out = *sizes.last().unwrap();
        let classes: Vec<usize> = (0..batch).map(|i| i % out).collect();
        let target: ArrayD<f64> = match loss {
            Loss::CrossEntropy => ArrayD::from_shape_fn(IxDyn(&[batch]), |i| classes[i[0]] as f64),
            Loss::Bce => ArrayD::from_shape_fn(IxDyn(&[batch, out]), |i| ((i[0] + i[1]) % 2) as f64),
            _ => ArrayD::from_shape_simple_fn(IxDyn(&[batch, out]), &mut next),
        };
        let all = [Activation::Sigmoid, Activation::Tanh, Activation::Relu, Activation::LeakyRelu, Activation::Softplus, Activation::Identity];
        let acts: Vec<Activation> = acts.iter().map(|&i| all[i]).collect();
        let r = GradCheck::new()
            .directions(1)
            .run(
                move |t, v| {
                    let mut h = t.constant(&x);
                    for l in 0..layers {
                        let z = h.matmul_t(v[2 * l], false, true) + v[2 * l + 1];
                        h = if l + 1 < layers { z.activation(acts[l]) } else { z };
                    }
                    h.loss(loss, t.constant(&target))
                },
                &inputs,
            )
            .unwrap();
        prop_assert!(r.passed, "sizes {:?}, loss {:?}:\n{}", sizes, loss, r);
    }
}
