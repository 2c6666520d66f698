//! Steady-state steps on a reused tape: the arena does not grow and (for the notebook network)
//! nothing is allocated; on a new tape per step, only the hand-over of the buffers. Counted with
//! a global allocator wrapper, so this file holds one test (`alloc_count`).

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

    // A new tape per step starts from the buffers of the one dropped before it: the only
    // allocation left is the box that hands them over.
    drop(tape);
    let mut per_new_tape = Vec::new();
    for _ in 0..10 {
        let before = alloc_count::allocations();
        {
            let tape = Tape::<f64>::new();
            let net = notebook_network(&tape, 1.0, x.view(), &w).unwrap();
            tape.grad_into(net.loss, &net.params(), &mut grads).unwrap();
        }
        per_new_tape.push(alloc_count::allocations() - before);
    }
    assert!(per_new_tape[2..].iter().all(|&a| a <= 1), "allocations per new tape: {per_new_tape:?}");
}
