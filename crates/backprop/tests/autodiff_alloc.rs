//! Steady-state steps on a reused tape: the arena does not grow and (for the notebook network)
//! nothing is allocated. Counted with a global allocator wrapper, so this file holds one test
//! (`alloc_count`).

use backprop::autodiff::{Tape, notebook_network};
use backprop::notebook::{self, Weights};
use ndarray::{ArrayD, IxDyn};

mod alloc_count;

#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

#[test]
fn notebook_steps_on_a_reused_tape_allocate_nothing() {
    let x = notebook::notebook_x();
    let w = Weights::notebook();
    let mut tape = Tape::<f64>::new();
    let mut grads: Vec<ArrayD<f64>> = (0..4).map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
    let mut per_step = Vec::new();
    let mut sizes = Vec::new();
    for _ in 0..10 {
        let before = alloc_count::allocations();
        tape.reset();
        let net = notebook_network(&tape, 1.0, x.view(), &w).unwrap();
        tape.grad_into(net.loss, &net.params(), &mut grads).unwrap();
        per_step.push(alloc_count::allocations() - before);
        sizes.push((tape.len(), tape.capacity(), tape.pooled_buffers()));
    }
    assert!(sizes[2..].windows(2).all(|w| w[0] == w[1]), "tape stable: {sizes:?}");
    assert_eq!(per_step[2..].iter().sum::<usize>(), 0, "allocations per step: {per_step:?}");
}
