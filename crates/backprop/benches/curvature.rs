//! Curvature benchmarks, side by side with the peers measured on this machine
//! (`/work/shared/research/peers.md`, f64, 2 threads). "ours": `bench/compare` rows, before → after
//! the session-2 work, side by side in one process on a loaded machine (load 4-7, so read the
//! ratios, not the absolute values; the "before" column of the quiet run is in brackets):
//!
//! | benchmark | target | jax | torch | ours before → after |
//! |---|---|---|---|---|
//! | exact Hessian, notebook network (25 weights, 1 sample) | ≤ 10 µs | 76 µs | 4.7 ms | 5.6 → 3.4 µs (min) |
//! | exact Hessian, 20-50-20-1 sigmoid (2,020 weights), 256 samples | ≤ 0.3 s | 0.78 s | 1.2 s | 1.15 → 0.14 s [0.54 s quiet] |
//! | gradient, 150-256-256-1 (104,192 weights), 1,000 samples | — | 13.1 ms | 7.0 ms | 35 → 15 ms [22 ms quiet] |
//! | HVP from scratch, same model | — | 23.7 ms | 10.8 ms | 94 → 84 ms [51 ms quiet] |
//! | HVP at a fixed point (state cached), same model | ≤ 2× gradient | — | — | 29 → 35 ms (noise) |
//! | top-10 eigenvalues of that Hessian by Lanczos (265 HVPs, peers' start) | ≤ 2 s | 5.4 s | 3.9 s | 28-51 → 25 s [8.9 s quiet] |
//! | symmetric eigendecomposition n = 2000 | ≤ numpy 0.81 s | — | 0.65 s | unchanged (1.03 s quiet) |
//!
//! The peers' Lanczos figures are from research with 204 HVPs; with the shared start vector
//! torch takes the same 265 steps as ours (`hvps` in the JSON).
//!
//! Quiet machine after the merge, `bench/compare --rounds 1` (09:44; `bench/README.md`): notebook
//! Hessian 3.68 µs, 20-50-20-1 Hessian 84 ms, gradient 11.6 ms, HVP from scratch 26.2 ms, HVP at a
//! fixed point 12.2 ms, Lanczos 7.59 s (265 HVPs; torch 34.6 s, jax 15.5 s in the same run), eigh
//! 2000 1.13 s (numpy 0.89 s in the same run).
//!
//! Session 3, `bench/compare --rounds 1` (12:00, load < 0.7 at the start; `bench/README.md`):
//! notebook Hessian 4.07 µs, 20-50-20-1 Hessian 83 ms, gradient 7.27 ms (torch 5.5, jax 8.5),
//! HVP from scratch 16.8 ms (torch 17.5, jax 14.9), HVP at a fixed point 10.3 ms (torch 10.1,
//! jax 11.6), Lanczos 5.73 s (265 HVPs; torch 31.2 s, jax 13.1 s), eigh 2000 0.82 s (numpy
//! 0.81 s, torch 0.63 s). Lanczos floors: 265 HVPs × ~0.94 GFLOP ≈ 2.1 s at faer's f64 peak,
//! plus full reorthogonalisation reading the 265 × 104k basis (~29 GB at the few GB/s measured).
//!
//! Session 7, `bench/compare --rounds 2` (20:43, a fast phase of the machine; `bench/README.md`):
//! notebook Hessian 3.45 µs, 20-50-20-1 Hessian 75 ms, gradient 3.73 ms, HVP from scratch
//! 9.09 ms, HVP at a fixed point 6.29 ms, Lanczos 3.14 s (torch 27.1 s, jax 10.9 s), eigh 2000
//! 483 ms (torch 510, numpy 644). The Gram-Schmidt sweeps now read the basis at 25–27 GB/s
//! (four rows side by side, on huge pages): about a quarter of a Lanczos run (1.0 of 3.8–4.1 s
//! in a slower phase); the rest is the 265 HVPs.
//!
//! Run: `cargo bench -p backprop --bench curvature` (a filter such as `-- hessian` runs a subset).

use std::time::Duration;

use backprop::curvature::{Curvature, Lanczos, MlpObjective, Objective, SymmetricOperator, eigh};
use backprop::nn::{Activation, Loss, Mlp};
use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::{Array2, Axis};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

fn random_mlp(sizes: &[usize], acts: &[Activation], seed: u64) -> Mlp<f64> {
    let mut m = Mlp::<f64>::zeros(sizes, acts, true).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for l in &mut m.layers {
        let s = (3.0 / l.inputs() as f64).sqrt();
        l.weight.mapv_inplace(|_| s * (2.0 * rng.random::<f64>() - 1.0));
        if let Some(b) = &mut l.bias {
            b.mapv_inplace(|_| 0.1 * (2.0 * rng.random::<f64>() - 1.0));
        }
    }
    m
}

fn random(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, d), || 2.0 * rng.random::<f64>() - 1.0)
}

fn notebook(c: &mut Criterion) {
    let w = backprop::notebook::Weights::notebook();
    let mut m = Mlp::<f64>::zeros(&[4, 5, 1], &[Activation::Sigmoid, Activation::Sigmoid], true).unwrap();
    m.layers[0].weight = w.w_1.t().to_owned();
    m.layers[1].weight = w.w_2.clone().insert_axis(Axis(0));
    let x = backprop::notebook::notebook_x().insert_axis(Axis(0));
    let y = ndarray::array![[1.0]];
    let obj = MlpObjective::new(&m, x.view(), y.view(), Loss::SquaredError).unwrap();
    let w0 = obj.initial();
    c.bench_function("hessian/notebook_25_weights_1_sample", |b| b.iter(|| obj.hessian(w0.view()).unwrap()));
}

fn mlp_2020(c: &mut Criterion) {
    let sig = Activation::Sigmoid;
    let m = random_mlp(&[20, 50, 20, 1], &[sig, sig, Activation::Identity], 1);
    let x = random(256, 20, 2);
    let y = random(256, 1, 3);
    let obj = MlpObjective::new(&m, x.view(), y.view(), Loss::SquaredError).unwrap();
    assert_eq!(obj.dim(), 2020);
    let w0 = obj.initial();
    let mut g = c.benchmark_group("hessian");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("mlp_20_50_20_1_2020_weights_256_samples", |b| {
        b.iter(|| obj.hessian(w0.view()).unwrap())
    });
    g.bench_function("gauss_newton_20_50_20_1_256_samples", |b| {
        b.iter(|| obj.gauss_newton(w0.view()).unwrap())
    });
    g.finish();
}

fn large(c: &mut Criterion) {
    let sig = Activation::Sigmoid;
    let m = random_mlp(&[150, 256, 256, 1], &[sig, sig, Activation::Identity], 4);
    let x = random(1000, 150, 5);
    let y = random(1000, 1, 6);
    let obj = MlpObjective::new(&m, x.view(), y.view(), Loss::SquaredError).unwrap();
    assert_eq!(obj.dim(), 104_192);
    let w0 = obj.initial();
    let v = random(1, obj.dim(), 7);
    let op = obj.curvature_at(w0.view(), Curvature::Hessian).unwrap();
    let mut g = c.benchmark_group("mlp_150_256_256_1_1000_samples");
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    g.bench_function("gradient", |b| b.iter(|| obj.value_grad(w0.view()).unwrap()));
    g.bench_function("hvp_cached_pass", |b| b.iter(|| op.apply_rows(v.view()).unwrap()));
    g.bench_function("hvp_with_pass", |b| b.iter(|| obj.hvp(w0.view(), v.row(0)).unwrap()));
    g.bench_function("lanczos_top10", |b| {
        let t0 = std::time::Instant::now();
        let r = Lanczos::new().top(10).tol(1e-6).run(&op).unwrap();
        eprintln!(
            "lanczos top-10 (one run, {:.2} s): {} steps (= HVPs), converged {}, λ₁ = {:.6e}, max residual {:.1e}",
            t0.elapsed().as_secs_f64(),
            r.steps,
            r.converged,
            r.top_values[0],
            r.top_residuals.iter().fold(0.0f64, |a, v| a.max(*v))
        );
        b.iter(|| {
            let op = obj.curvature_at(w0.view(), Curvature::Hessian).unwrap();
            let r = Lanczos::new().top(10).tol(1e-6).run(&op).unwrap();
            assert!(r.converged);
            r
        })
    });
    g.finish();
}

fn eig_2000(c: &mut Criterion) {
    let b = random(2000, 2000, 8);
    let h = &b + &b.t();
    let mut g = c.benchmark_group("eigh");
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    g.bench_function("n2000", |bn| bn.iter(|| eigh(h.view()).unwrap()));
    g.finish();
}

criterion_group!(benches, notebook, mlp_2020, large, eig_2000);
criterion_main!(benches);
