//! Elementwise passes over a layer's weight-shaped arrays (weights, gradients, optimiser
//! slots) in the two row halves the MLP passes use: the optimisers' updates and the sum of the
//! two threads' weight-gradient parts (`split::add_parts`).
//!
//! With two threads the passes give each thread the weight rows its half of the forward
//! product reads (`nn::split::by_owner`: rows [0, middle(o)) to the calling thread). Updating
//! the same rows on the same threads keeps each row in one core's cache from step to step; an
//! update on one thread makes the other thread fetch half of every large layer from the
//! first's cache in the next forward pass (slow when the two vCPUs sit on different CCDs, see
//! `nn::split::by_owner`), and leaves the second core idle meanwhile. Adam on 784-256-256-10 in
//! f32 (267k parameters): one pass on one thread took ~230 µs, almost half of a batch-32
//! training step; by rows on both threads ~115 µs (it is bound by memory traffic, ~7.5 MB per
//! step, so wider vectors alone gained nothing).

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use super::forward::PARALLEL_ELEMS;
use super::split::middle;
use crate::tensor::vmath;

/// Views of a layer's weight-shaped arrays (model, gradient, optimiser slots) that can be cut
/// after a row.
pub(crate) trait Halves: Sized + Send {
    /// Rows [0, h) and [h, end).
    fn halves(self, h: usize) -> (Self, Self);
}

impl<T: Send> Halves for ArrayViewMut2<'_, T> {
    fn halves(self, h: usize) -> (Self, Self) {
        self.split_at(Axis(0), h)
    }
}

impl<T: Sync> Halves for ArrayView2<'_, T> {
    fn halves(self, h: usize) -> (Self, Self) {
        self.split_at(Axis(0), h)
    }
}

impl<A: Halves, B: Halves> Halves for (A, B) {
    fn halves(self, h: usize) -> (Self, Self) {
        let ((a0, a1), (b0, b1)) = (self.0.halves(h), self.1.halves(h));
        ((a0, b0), (a1, b1))
    }
}

impl<A: Halves, B: Halves, C: Halves> Halves for (A, B, C) {
    fn halves(self, h: usize) -> (Self, Self) {
        let ((a0, a1), (b0, b1), (c0, c1)) = (self.0.halves(h), self.1.halves(h), self.2.halves(h));
        ((a0, b0, c0), (a1, b1, c1))
    }
}

impl<A: Halves, B: Halves, C: Halves, D: Halves> Halves for (A, B, C, D) {
    fn halves(self, h: usize) -> (Self, Self) {
        let ((a, b, c), (a1, b1, c1)) = (self.0, self.1, self.2).halves(h);
        let (d0, d1) = self.3.halves(h);
        ((a, b, c, d0), (a1, b1, c1, d1))
    }
}

/// `f(views)` for the `rows`×`cols` arrays in `views`: with exactly two threads and at least
/// [`PARALLEL_ELEMS`] entries, on rows [0, middle(rows)) here and on the rest beside it
/// (`crate::parallel::join`); each part compiled for the widest vectors
/// ([`vmath::vectorized`]: the rules use no fused operations, so the bits are the same on
/// every path and split).
pub(crate) fn by_rows<V: Halves>(views: V, rows: usize, cols: usize, f: impl Fn(V) + Sync) {
    let f = &f;
    if rows >= 2 && rows * cols >= PARALLEL_ELEMS && rayon::current_num_threads() == 2 {
        let (top, bottom) = views.halves(middle(rows));
        crate::parallel::join(
            || {
                vmath::vectorized(
                    #[inline(always)]
                    || f(top),
                )
            },
            || {
                vmath::vectorized(
                    #[inline(always)]
                    || f(bottom),
                )
            },
        );
    } else {
        vmath::vectorized(
            #[inline(always)]
            || f(views),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::nn::{Grads, MlpBuilder, ParamSelection};
    use crate::optim::{Optimizer, OptimizerConfig, Penalty};

    /// Every rule, with the L2 term and decoupled decay, on a layer large enough to be split
    /// (256×300 weights): the same bits on two threads as on one.
    #[test]
    fn updates_split_by_rows_equal_one_thread_bit_for_bit() {
        let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let configs = [
            OptimizerConfig::sgd(0.1),
            OptimizerConfig::Sgd { lr: 0.05, momentum: 0.9, nesterov: true },
            OptimizerConfig::adam(1e-3),
        ];
        let penalty = Penalty { l2: 1e-3, weight_decay: 1e-2 };
        for config in configs {
            let run = |pool: &rayon::ThreadPool| {
                let mut m = MlpBuilder::new(&[300, 256, 7]).seed(5).build::<f32>().unwrap();
                let mut g = Grads::zeros_like(&m);
                let n = g.flat(ParamSelection::All).len();
                let values: Vec<f32> = (0..n).map(|k| ((k as f32) * 0.37).sin() * 0.01).collect();
                let mut opt = Optimizer::new(config, penalty, &m).unwrap();
                pool.install(|| {
                    for _ in 0..3 {
                        g.set_flat(ParamSelection::All, &values).unwrap();
                        opt.step(&mut m, &mut g);
                    }
                });
                (m.flat_params(ParamSelection::All), g.flat(ParamSelection::All))
            };
            assert_eq!(run(&two), run(&one), "{config:?}");
        }
    }
}
