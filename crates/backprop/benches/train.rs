//! Training speed: the notebook-shaped network trained by full-batch GD, and SGD steps of a
//! 784-256-256-10 ReLU MLP (softmax cross-entropy) at batch 32/128/1024 in f32 and f64.
//!
//! Peers on this machine (`shared/research/peers.md`), one SGD step of the same MLP:
//! torch f32 0.76 / 1.25 / 5.9 ms, torch f64 1.1 / 2.2 / 11.6 ms at batch 32 / 128 / 1024.

use std::hint::black_box;

use backprop::Scalar;
use backprop::nn::{Activation, Grads, Init, Loss, Mlp, MlpBuilder, Workspace};
use backprop::optim::{Optimizer, OptimizerConfig, Penalty};
use backprop::tensor::gemm_into;
use backprop::train::{TrainState, Trainer};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

/// Iris versicolor (0) vs virginica (1), standardised: the notebook's D = 4 binary task,
/// 100 samples.
fn versicolor_virginica() -> (Array2<f64>, Array2<f64>) {
    let iris =
        backprop::data::load::<f64>("iris", &backprop::data::LoadOptions::new()).expect("built-in iris");
    let mut d = iris.select_classes(&["versicolor", "virginica"]).expect("iris classes");
    let norm = backprop::data::Normalization::fit(d.x.view()).expect("finite data");
    norm.apply(&mut d.x).expect("same width");
    (d.x, d.y)
}

fn notebook_gd(c: &mut Criterion) {
    let (x, y) = versicolor_virginica();
    let mut g = c.benchmark_group("notebook_4-5-1_sigmoid_iris_gd");
    g.sample_size(10);
    g.bench_function("10000_epochs", |b| {
        b.iter(|| {
            let model = MlpBuilder::new(&[4, 5, 1])
                .activation(Activation::Sigmoid)
                .init(Init::GlorotUniform)
                .seed(0)
                .build::<f64>()
                .unwrap();
            let trainer = Trainer::new(Loss::SquaredError, OptimizerConfig::gd(0.5)).epochs(10_000);
            let mut st = TrainState::new(model, &trainer).unwrap();
            trainer.fit(&mut st, x.view(), y.view(), None, &mut []).unwrap();
            black_box(st.history.last().map(|r| r.loss))
        })
    });
    g.finish();
}

fn random<T: Scalar>(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<T> {
    use rand::RngExt;
    Array2::from_shape_simple_fn((rows, cols), || T::of(rng.random::<f64>() * 2.0 - 1.0))
}

fn mlp_step_for<T: Scalar>(c: &mut Criterion, name: &str) {
    let mut g = c.benchmark_group(format!("mlp_784-256-256-10_relu_ce_sgd_step_{name}"));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for batch in [32usize, 128, 1024] {
        let model: Mlp<T> = MlpBuilder::new(&[784, 256, 256, 10])
            .activation(Activation::Relu)
            .output_activation(Activation::Identity)
            .init(Init::He)
            .seed(1)
            .build()
            .unwrap();
        let x = random::<T>(batch, 784, &mut rng);
        let y = Array2::from_shape_fn((batch, 1), |(i, _)| T::of((i % 10) as f64));
        let mut ws = Workspace::new(&model, batch);
        let mut grads = Grads::zeros_like(&model);
        let mut opt = Optimizer::new(OptimizerConfig::sgd(1e-3), Penalty::default(), &model).unwrap();
        // Baseline in the same process: only the step's eight GEMMs (3 forward, 3 weight
        // gradients, 2 input deltas), on the same shapes, through the same faer wrapper.
        let (h1, h2, o) = (
            Array2::<T>::zeros((batch, 256)),
            Array2::<T>::zeros((batch, 256)),
            Array2::<T>::zeros((batch, 10)),
        );
        let (mut a1, mut a2, mut a3) = (h1.clone(), h2.clone(), o.clone());
        let (mut g1, mut g2, mut g3) =
            (Array2::<T>::zeros((256, 784)), Array2::<T>::zeros((256, 256)), Array2::<T>::zeros((10, 256)));
        let w = model.layers.iter().map(|l| l.weight.clone()).collect::<Vec<_>>();
        g.bench_with_input(BenchmarkId::new("gemms_only", batch), &batch, |b, _| {
            b.iter(|| {
                gemm_into(a1.view_mut(), false, T::one(), x.view(), w[0].t()).unwrap();
                gemm_into(a2.view_mut(), false, T::one(), h1.view(), w[1].t()).unwrap();
                gemm_into(a3.view_mut(), false, T::one(), h2.view(), w[2].t()).unwrap();
                gemm_into(g3.view_mut(), false, T::one(), o.t(), h2.view()).unwrap();
                gemm_into(a2.view_mut(), false, T::one(), o.view(), w[2].view()).unwrap();
                gemm_into(g2.view_mut(), false, T::one(), h2.t(), h1.view()).unwrap();
                gemm_into(a1.view_mut(), false, T::one(), h2.view(), w[1].view()).unwrap();
                gemm_into(g1.view_mut(), false, T::one(), h1.t(), x.view()).unwrap();
                black_box(a3[[0, 0]] + g1[[0, 0]])
            })
        });
        // Every measured step starts from the same initial weights (the clone is not timed), so
        // the model never fits the fixed batch: repeated steps on one batch would drive the
        // softmax towards 0/1 and δ into subnormal numbers, which are slow on x86 for every
        // library alike and not what a real training step sees.
        let model0 = model.clone();
        g.bench_with_input(BenchmarkId::new("step", batch), &batch, |b, _| {
            b.iter_batched_ref(
                || model0.clone(),
                |model| {
                    let l =
                        ws.loss_and_grad(model, Loss::CrossEntropy, x.view(), y.view(), &mut grads).unwrap();
                    opt.step(model, &mut grads);
                    black_box(l)
                },
                BatchSize::PerIteration,
            )
        });
        // The same step through `Optimizer::train_step`: plain SGD fused into the weight
        // gradient GEMMs (no gradient matrices written and re-read).
        g.bench_with_input(BenchmarkId::new("train_step", batch), &batch, |b, _| {
            b.iter_batched_ref(
                || model0.clone(),
                |model| {
                    let l = opt
                        .train_step(&mut ws, model, Loss::CrossEntropy, x.view(), y.view(), &mut grads)
                        .unwrap();
                    black_box(l)
                },
                BatchSize::PerIteration,
            )
        });
        // Adam: the gradient pass, then the update over the weights and both moment slots.
        let mut adam = Optimizer::new(OptimizerConfig::adam(1e-3), Penalty::default(), &model).unwrap();
        g.bench_with_input(BenchmarkId::new("adam_train_step", batch), &batch, |b, _| {
            b.iter_batched_ref(
                || model0.clone(),
                |model| {
                    let l = adam
                        .train_step(&mut ws, model, Loss::CrossEntropy, x.view(), y.view(), &mut grads)
                        .unwrap();
                    black_box(l)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn mlp_steps(c: &mut Criterion) {
    mlp_step_for::<f32>(c, "f32");
    mlp_step_for::<f64>(c, "f64");
}

criterion_group!(benches, notebook_gd, mlp_steps);
criterion_main!(benches);
