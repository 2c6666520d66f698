//! Training speed: the notebook-shaped network trained by full-batch GD, and SGD steps of a
//! 784-256-256-10 ReLU MLP (softmax cross-entropy) at batch 32/128/1024 in f32 and f64.
//!
//! Peers on this machine (`shared/research/peers.md`), one SGD step of the same MLP:
//! torch f32 0.76 / 1.25 / 5.9 ms, torch f64 1.1 / 2.2 / 11.6 ms at batch 32 / 128 / 1024.

use std::hint::black_box;

use backprop::Scalar;
use backprop::nn::{Activation, Grads, Init, Loss, Mlp, MlpBuilder, Workspace};
use backprop::optim::{Optimizer, OptimizerConfig, Penalty};
use backprop::train::{TrainState, Trainer};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

/// A 100×4, two-class stand-in shaped like iris versicolor vs virginica (standardised), until
/// the built-in data sets land.
fn versicolor_virginica() -> (Array2<f64>, Array2<f64>) {
    let x = Array2::from_shape_fn((100, 4), |(i, j)| {
        ((i * 4 + j) as f64 * 0.917).sin() + if i >= 50 { 0.8 } else { -0.8 }
    });
    let y = Array2::from_shape_fn((100, 1), |(i, _)| if i >= 50 { 1.0 } else { 0.0 });
    (x, y)
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
        let mut model: Mlp<T> = MlpBuilder::new(&[784, 256, 256, 10])
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
        g.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, _| {
            b.iter(|| {
                let l = ws.loss_and_grad(&model, Loss::CrossEntropy, x.view(), y.view(), &mut grads).unwrap();
                opt.step(&mut model, &mut grads);
                black_box(l)
            })
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
