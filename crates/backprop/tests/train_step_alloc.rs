//! Steady-state MLP training steps allocate nothing: the [`Workspace`] holds every buffer of
//! the forward and backward passes, the optimiser its state, and the two-thread splits
//! (`parallel::join`, faer's single-thread products) run on stack jobs. Counted with a global
//! allocator wrapper over every thread, so this file holds one test
//! (`alloc_count`).

use backprop::Scalar;
use backprop::nn::{Activation, Grads, Layer, Loss, Mlp, Workspace};
use backprop::optim::{Optimizer, OptimizerConfig, Penalty};
use ndarray::Array2;

mod alloc_count;

#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

/// A 784-256-256-10 ReLU network (the speed issue's shape: its products are large enough to be
/// split across threads) with deterministic weights.
fn model<T: Scalar>() -> Mlp<T> {
    let sizes = [784, 256, 256, 10];
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(l, w)| Layer {
            weight: Array2::from_shape_fn((w[1], w[0]), |(o, i)| {
                T::of((((o * 31 + i * 17) % 23) as f64 - 11.0) * 0.004)
            }),
            bias: Some(ndarray::Array1::from_shape_fn(w[1], |o| T::of(((o % 7) as f64 - 3.0) * 0.01))),
            activation: if l == 2 { Activation::Identity } else { Activation::Relu },
        })
        .collect();
    Mlp { layers }
}

/// Allocations of each of `steps` training steps after two warm-up steps; every other one after
/// a pause.
fn allocations_per_step<T: Scalar>(config: OptimizerConfig, batch: usize, steps: usize) -> Vec<usize> {
    let mut m = model::<T>();
    let x = Array2::from_shape_fn((batch, 784), |(s, i)| T::of((((s * 7 + i * 3) % 19) as f64 - 9.0) / 9.0));
    let y = Array2::from_shape_fn((batch, 1), |(s, _)| T::of((s % 10) as f64));
    let mut ws = Workspace::new(&m, batch);
    let mut grads = Grads::zeros_like(&m);
    let mut opt = Optimizer::new(config, Penalty::l2(1e-4), &m).expect("valid optimiser");
    let mut step = |ws: &mut Workspace<T>, m: &mut Mlp<T>, grads: &mut Grads<T>| {
        opt.train_step(ws, m, Loss::CrossEntropy, x.view(), y.view(), grads).expect("finite step")
    };
    for _ in 0..2 {
        step(&mut ws, &mut m, &mut grads);
    }
    (0..steps)
        .map(|i| {
            if i % 2 == 1 {
                // Long enough for the split products' helper thread to park: this step wakes it.
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let before = alloc_count::allocations();
            step(&mut ws, &mut m, &mut grads);
            alloc_count::allocations() - before
        })
        .collect()
}

#[test]
fn steady_state_training_steps_allocate_nothing() {
    // Batch 1024 takes the layers by batch rows (a second gradient part, sized once).
    let f32_1024 = allocations_per_step::<f32>(OptimizerConfig::sgd(0.01), 1024, 3);
    assert!(f32_1024.iter().all(|&c| c == 0), "f32 sgd, batch 1024: allocations per step {f32_1024:?}");
    for batch in [32, 128] {
        let f32_sgd = allocations_per_step::<f32>(OptimizerConfig::sgd(0.01), batch, 5);
        let f64_sgd = allocations_per_step::<f64>(OptimizerConfig::sgd(0.01), batch, 5);
        let f32_adam = allocations_per_step::<f32>(OptimizerConfig::adam(1e-3), batch, 5);
        for (what, counts) in [("f32 sgd", &f32_sgd), ("f64 sgd", &f64_sgd), ("f32 adam", &f32_adam)] {
            assert!(counts.iter().all(|&c| c == 0), "{what}, batch {batch}: allocations per step {counts:?}");
        }
    }
}
