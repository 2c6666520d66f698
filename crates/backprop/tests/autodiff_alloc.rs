//! Steady-state steps on a reused tape: the arena does not grow and (for the notebook network)
//! nothing is allocated. Counted with a global allocator wrapper, so this file holds one test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use backprop::autodiff::{Tape, notebook_network};
use backprop::notebook::{self, Weights};
use ndarray::{ArrayD, IxDyn};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn notebook_steps_on_a_reused_tape_allocate_nothing() {
    let x = notebook::notebook_x();
    let w = Weights::notebook();
    let mut tape = Tape::<f64>::new();
    let mut grads: Vec<ArrayD<f64>> = (0..4).map(|_| ArrayD::zeros(IxDyn(&[0]))).collect();
    let mut per_step = Vec::new();
    let mut sizes = Vec::new();
    for _ in 0..10 {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        tape.reset();
        let net = notebook_network(&tape, 1.0, x.view(), &w).unwrap();
        tape.grad_into(net.loss, &net.params(), &mut grads).unwrap();
        per_step.push(ALLOCATIONS.load(Ordering::Relaxed) - before);
        sizes.push((tape.len(), tape.capacity(), tape.pooled_buffers()));
    }
    assert!(sizes[2..].windows(2).all(|w| w[0] == w[1]), "tape stable: {sizes:?}");
    assert_eq!(per_step[2..].iter().sum::<usize>(), 0, "allocations per step: {per_step:?}");
}
