//! Autodiff engine benchmarks (`cargo bench --bench autodiff -- --quick`).
//!
//! - `notebook/forward_backward`: the notebook's 4-5-1 network, one sample, record + gradient on
//!   a reused tape (define-by-run); `notebook/replay`: the same step through a compiled
//!   [`backprop::autodiff::Plan`] (record once, then set the sample and weights and replay forward
//!   and backward) — target ≤ 0.5 µs; `notebook/hand_derived` is the reference in the same run;
//! - `mlp784/forward` vs `mlp784/forward_backward`: MLP 784-256-256-10, batch 128, f32,
//!   cross-entropy — the cheap-gradient ratio (target ≤ 3);
//! - `mlp100k/gradient` vs `mlp100k/hvp`: an MLP of ~94k weights, batch 128, f64, tanh — the
//!   Hessian-vector product against a gradient (target ≤ 2×).
//!
//! Measured 2026-11-28 on the shared 2-core machine, NOT quiet (load 4–6 from other builds), the
//! session's starting point (`f77401e`) and its end side by side, `--warm-up-time 1
//! --measurement-time 3`, criterion means:
//!
//! | bench | before | after |
//! |---|---|---|
//! | notebook/forward_backward | 6.18 µs | 3.89 µs |
//! | notebook/replay | — | 0.53–0.59 µs |
//! | notebook/hand_derived | 0.43 µs | 0.43 µs |
//! | mlp784 forward / fwd+bwd | 1.28 / 2.31 ms | 1.10 / 1.94 ms |
//! | mlp100k gradient / hvp | 3.36 / 9.13 ms | 3.95 / 8.06 ms |
//!
//! Under this load the absolute numbers move ±30%; the ratios are steadier. Notebook: replay is
//! 1.2–1.4× the hand-derived pass in the same runs (≈ 0.33–0.38 µs at the 0.27 µs the
//! hand-derived pass takes on a quiet machine: target met for replay); define-by-run is 9× it
//! (was 14×), ≈ 2.4 µs quiet — target NOT met for the plain path (callgrind: 38k → 24.7k
//! instructions per step; the rest is per-op recording: `ArrayD` construction, shape checks,
//! the `RefCell`; replay is 6.5k). Cheap-gradient ratio (min of 100 interleaved runs): 2.02
//! before, 2.06 after (forward 0.76 → 0.74 ms). HVP/gradient (single-threaded, 200 interleaved
//! pairs): before 2.2–2.5 (median pair ratio; 2.16–2.18 min-based in quieter runs), after
//! 1.77–2.0 (1.84–1.90 min-based in quieter runs): target met on a quiet machine, at the edge
//! under load. The tanh forward (libm, ~10 ns each) was ~30% of a gradient step.
//!
//! Quiet machine after the merge (09:50, same flags): notebook define-by-run 2.41 µs, replay
//! 0.345 µs, hand-derived 0.276 µs; mlp784 forward 0.947 ms, forward+backward 2.01 ms (2.12);
//! mlp100k gradient 3.14 ms, HVP 5.94 ms (1.89). Side by side with the session-1 binary in the
//! same minute: gradient 2.79 → 2.96 ms, HVP 6.66 → 5.86 ms (ratio 2.39 → 1.98).
//!
//! Session 3 (quiet, 12:04, same flags), after exp and tanh moved to `tensor::vmath`'s vectorised
//! loops: notebook define-by-run 2.37 µs, replay 0.329 µs, hand-derived 0.271 µs; mlp784 forward
//! 0.826 ms, forward+backward 1.80 ms (2.18); mlp100k gradient 1.73 ms, HVP 3.73 ms (2.16). Both
//! got faster (3.14 → 1.73 ms, 5.94 → 3.73 ms) but the gradient more, so the HVP/gradient ratio
//! rose from 1.89 above the ≤ 2 target.
//!
//! Session 4 (13:37–13:44, NOT quiet: load 5–7 from other builds, criterion means useless), the
//! session's start (`27173a9`) and end binaries alternated with `AD_MIN=150` (8 runs each) and
//! `AD_MIN784=60` (6 runs each), medians of the per-run minimums: mlp100k gradient 1.48 → 1.40
//! ms, HVP 3.51 → 3.21 ms, HVP/gradient 2.38 → 2.29 (median interleaved pair 2.51 → 2.38);
//! mlp784 forward 0.75 → 0.75 ms, forward+backward 1.57 → 1.41 ms (2.09 → 1.88). What changed:
//! a matmul's two adjoint products run side by side on one thread each; tanh's recorded adjoint
//! is one `tanh_grad` node; product outputs skip the zero-fill; HVP seeds and results are not
//! copied. HVP ≤ 2× gradient is NOT met under this load: the HVP does 2.43× the gradient's GEMM
//! flop here (reverse over reverse: forward, the recorded backward without the weight
//! products, then 6 layer-2-sized products in the second sweep against the gradient's 3), so
//! the ratio falls below 2 only where the HVP's extra products use the second core.

use std::hint::black_box;

use backprop::Scalar;
use backprop::autodiff::{Tape, Var, notebook_network};
use backprop::notebook::{self, Weights};
use criterion::{Criterion, criterion_group};
use ndarray::{Array1, Array2, ArrayD, IxDyn};

fn pseudo<T: Scalar>(shape: &[usize], seed: u64, scale: f64) -> ArrayD<T> {
    let mut s = seed;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        T::of((((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0) * scale)
    })
}

fn notebook_bench(c: &mut Criterion) {
    let x = notebook::notebook_x();
    let w = Weights::notebook();
    let mut tape = Tape::<f64>::with_capacity(64);
    let mut grads: Vec<ArrayD<f64>> = (0..4).map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
    c.bench_function("notebook/forward_backward", |b| {
        b.iter(|| {
            tape.reset();
            let net = notebook_network(&tape, notebook::NOTEBOOK_Y, x.view(), &w).expect("records");
            tape.grad_into(net.loss, &net.params(), &mut grads).expect("gradient");
            black_box(&grads);
        })
    });
    // Record once, replay: every step sets the sample and the (updated) weights, then runs the
    // forward and backward passes of the compiled plan.
    let rec = Tape::<f64>::new();
    let net = notebook_network(&rec, notebook::NOTEBOOK_Y, x.view(), &w).expect("records");
    let mut plan = rec.compile(net.loss, &net.params(), &[net.x]).expect("compiles");
    let b_2 = ndarray::arr0(w.b_2);
    c.bench_function("notebook/replay", |b| {
        b.iter(|| {
            plan.set_data(0, black_box(&x)).expect("shape");
            plan.set_param(0, &w.w_1).expect("shape");
            plan.set_param(1, &w.w_2).expect("shape");
            plan.set_param(2, &w.b_1).expect("shape");
            plan.set_param(3, &b_2).expect("shape");
            black_box(plan.grad_into(&mut grads).expect("gradient"));
        })
    });
    c.bench_function("notebook/hand_derived", |b| {
        b.iter(|| black_box(notebook::simple_backpropagation(1.0, black_box(x.view()), &w).expect("ok")))
    });
}

struct Mlp<T: Scalar> {
    weights: Vec<Array2<T>>,
    biases: Vec<Array1<T>>,
}

impl<T: Scalar> Mlp<T> {
    fn new(sizes: &[usize], seed: u64) -> Self {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for (i, w) in sizes.windows(2).enumerate() {
            let scale = (1.0 / w[0] as f64).sqrt();
            let a = pseudo::<T>(&[w[1], w[0]], seed + i as u64, scale);
            weights.push(a.into_dimensionality().expect("2-D"));
            biases.push(pseudo::<T>(&[w[1]], seed + 100 + i as u64, 0.1).into_dimensionality().expect("1-D"));
        }
        Mlp { weights, biases }
    }

    /// Records the loss; returns it and the parameter vars (weights then biases, per layer).
    fn record<'t>(
        &self,
        tape: &'t Tape<T>,
        x: &ArrayD<T>,
        classes: &[usize],
        act: fn(Var<'t, T>) -> Var<'t, T>,
    ) -> (Var<'t, T>, Vec<Var<'t, T>>) {
        let mut h = tape.constant(x);
        let mut params = Vec::new();
        let n = self.weights.len();
        for (i, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let (wv, bv) = (tape.var(w), tape.var(b));
            params.push(wv);
            params.push(bv);
            // z = h·Wᵀ + b (W is out×in, as torch.nn.Linear): the transpose is read in place.
            let z = h.matmul_t(wv, false, true) + bv;
            h = if i + 1 < n { act(z) } else { z };
        }
        (h.cross_entropy_with_logits(classes), params)
    }
}

/// 784-256-256-10 ReLU, f32, a batch of 128: the model, inputs and classes.
fn mlp784() -> (Mlp<f32>, ArrayD<f32>, Vec<usize>) {
    let mlp = Mlp::<f32>::new(&[784, 256, 256, 10], 1);
    let x = pseudo::<f32>(&[128, 784], 9, 1.0);
    (mlp, x, (0..128).map(|i| (i * 7) % 10).collect())
}

/// 100-256-256-10 tanh, f64, a batch of 128 (25 600 + 65 536 + 2 560 = 93 696 weights + 522
/// biases): the model, inputs, classes and an HVP direction.
fn mlp100k() -> (Mlp<f64>, ArrayD<f64>, Vec<usize>, Vec<ArrayD<f64>>) {
    let mlp = Mlp::<f64>::new(&[100, 256, 256, 10], 3);
    let x = pseudo::<f64>(&[128, 100], 11, 1.0);
    let v = mlp
        .weights
        .iter()
        .zip(&mlp.biases)
        .flat_map(|(w, b)| [pseudo::<f64>(w.shape(), 5, 1.0), pseudo::<f64>(b.shape(), 6, 1.0)])
        .collect();
    (mlp, x, (0..128).map(|i| (i * 3) % 10).collect(), v)
}

fn mlp784_bench(c: &mut Criterion) {
    let (mlp, x, classes) = mlp784();
    let mut tape = Tape::<f32>::with_capacity(64);
    let mut grads: Vec<ArrayD<f32>> = (0..6).map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
    let mut g = c.benchmark_group("mlp784");
    g.sample_size(20);
    g.bench_function("forward", |b| {
        b.iter(|| {
            tape.reset();
            let (loss, _) = mlp.record(&tape, &x, &classes, |z| z.relu());
            black_box(loss.item().expect("finite"));
        })
    });
    g.bench_function("forward_backward", |b| {
        b.iter(|| {
            tape.reset();
            let (loss, params) = mlp.record(&tape, &x, &classes, |z| z.relu());
            tape.grad_into(loss, &params, &mut grads).expect("gradient");
            black_box(&grads);
        })
    });
    g.finish();
}

fn hvp_bench(c: &mut Criterion) {
    let (mlp, x, classes, v) = mlp100k();
    let mut tape = Tape::<f64>::with_capacity(256);
    let mut grads: Vec<ArrayD<f64>> = (0..6).map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
    let mut g = c.benchmark_group("mlp100k");
    g.sample_size(20);
    g.bench_function("gradient", |b| {
        b.iter(|| {
            tape.reset();
            let (loss, params) = mlp.record(&tape, &x, &classes, |z| z.tanh());
            tape.grad_into(loss, &params, &mut grads).expect("gradient");
            black_box(&grads);
        })
    });
    g.bench_function("hvp", |b| {
        b.iter(|| {
            tape.reset();
            let (loss, params) = mlp.record(&tape, &x, &classes, |z| z.tanh());
            black_box(tape.hvp(loss, &params, &v).expect("hvp"));
        })
    });
    g.finish();
}

criterion_group!(benches, notebook_bench, mlp784_bench, hvp_bench);

/// The minimum and median of `v`.
fn min_med(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

/// `AD_MIN=n`: n mlp100k gradient and HVP steps, interleaved, printing the minimum and median
/// of each (ms) and their ratios; `AD_MIN784=n`: the same for mlp784 forward vs forward +
/// backward. For A/B runs of two binaries on a loaded machine, where criterion's means move
/// ±30 % but per-run minimums and interleaved pairs stay comparable.
fn min_of_runs() -> bool {
    let steps = |var: &str| std::env::var(var).ok().and_then(|n| n.parse::<usize>().ok()).filter(|&n| n > 0);
    if let Some(n) = steps("AD_MIN784") {
        let (mlp, x, classes) = mlp784();
        let mut tape = Tape::<f32>::with_capacity(64);
        let mut grads: Vec<ArrayD<f32>> = (0..6).map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
        let (mut tf, mut tb) = (vec![], vec![]);
        for _ in 0..n {
            let t = std::time::Instant::now();
            tape.reset();
            let (loss, _) = mlp.record(&tape, &x, &classes, |z| z.relu());
            black_box(loss.item().expect("finite"));
            tf.push(t.elapsed().as_secs_f64() * 1e3);
            let t = std::time::Instant::now();
            tape.reset();
            let (loss, params) = mlp.record(&tape, &x, &classes, |z| z.relu());
            tape.grad_into(loss, &params, &mut grads).expect("gradient");
            black_box(&grads);
            tb.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let ((f0, f1), (b0, b1)) = (min_med(tf), min_med(tb));
        println!(
            "mlp784 forward min {f0:.3} med {f1:.3} | forward+backward min {b0:.3} med {b1:.3} | ratio(min) {:.2}",
            b0 / f0
        );
        return true;
    }
    let Some(n) = steps("AD_MIN") else { return false };
    let (mlp, x, classes, v) = mlp100k();
    let mut tape = Tape::<f64>::with_capacity(256);
    let mut grads: Vec<ArrayD<f64>> = (0..6).map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
    let (mut tg, mut th) = (vec![], vec![]);
    for _ in 0..n {
        let t = std::time::Instant::now();
        tape.reset();
        let (loss, params) = mlp.record(&tape, &x, &classes, |z| z.tanh());
        tape.grad_into(loss, &params, &mut grads).expect("gradient");
        black_box(&grads);
        tg.push(t.elapsed().as_secs_f64() * 1e3);
        let t = std::time::Instant::now();
        tape.reset();
        let (loss, params) = mlp.record(&tape, &x, &classes, |z| z.tanh());
        black_box(tape.hvp(loss, &params, &v).expect("hvp"));
        th.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let pairs: Vec<f64> = tg.iter().zip(&th).map(|(g, h)| h / g).collect();
    let ((g0, g1), (h0, h1), (_, r)) = (min_med(tg), min_med(th), min_med(pairs));
    println!(
        "mlp100k gradient min {g0:.3} med {g1:.3} | hvp min {h0:.3} med {h1:.3} | ratio(min) {:.2} ratio(median pair) {r:.2}",
        h0 / g0
    );
    true
}

fn main() {
    if min_of_runs() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
