//! Recycled f64 buffers for the passes of an objective.
//!
//! A gradient or Hessian-vector product of a 150-256-256-1 model on 1,000 samples touches ~15
//! matrices of 2 MB. Fresh allocations of that size come from `mmap`, so every call paid
//! ~7,500 page faults (kernel page clearing was ~20% of a from-scratch HVP in `perf`). Buffers
//! handed back here are reused by the next pass instead.

use std::sync::Mutex;

use ndarray::Array2;

/// At most this many buffers are kept (the passes need ~20 at once).
const MAX_BUFFERS: usize = 48;

/// The most bytes a dropped pool leaves to the next one made on its thread.
const KEEP_LIMIT: usize = 128 << 20;

/// A pool of allocations; cloning gives an empty pool.
pub(crate) struct Pool(Mutex<Vec<Vec<f64>>>);

/// The buffers of a dropped pool, kept for the next pool made on the same thread.
struct Kept(Vec<Vec<f64>>);

impl Default for Pool {
    /// A pool holding the buffers of the last pool dropped on this thread: an objective made per
    /// call (as the Python bindings do for each `hvp`) would otherwise take every buffer fresh
    /// from the kernel again.
    fn default() -> Self {
        Pool(Mutex::new(crate::thread_cache::take::<Kept>().map_or_else(Vec::new, |k| k.0)))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let buffers = match self.0.get_mut() {
            Ok(b) => std::mem::take(b),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        if buffers.iter().map(Vec::capacity).sum::<usize>() * size_of::<f64>() <= KEEP_LIMIT {
            crate::thread_cache::keep(Kept(buffers));
        }
    }
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        Pool(Mutex::new(Vec::new()))
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pool")
    }
}

impl Pool {
    /// The pooled allocation that fits `len` most tightly, else the largest (to be grown): the
    /// buffers differ in size, and growing a small one costs a reallocation and a memset.
    fn take(&self, len: usize) -> Vec<f64> {
        let Ok(mut pool) = self.0.lock() else {
            return Vec::new();
        };
        let fit = pool
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .or_else(|| pool.iter().enumerate().max_by_key(|(_, v)| v.capacity()))
            .map(|(i, _)| i);
        fit.map(|i| pool.swap_remove(i)).unwrap_or_default()
    }

    /// A zeroed rows×cols matrix.
    pub(crate) fn zeros(&self, rows: usize, cols: usize) -> Array2<f64> {
        let mut v = self.take(rows * cols);
        v.clear();
        v.resize(rows * cols, 0.0);
        Array2::from_shape_vec((rows, cols), v).unwrap_or_else(|_| Array2::zeros((rows, cols)))
    }

    /// A rows×cols matrix with arbitrary (stale but initialised) contents, for buffers that are
    /// overwritten completely before being read (by a GEMM without accumulation, or `assign`).
    pub(crate) fn scratch(&self, rows: usize, cols: usize) -> Array2<f64> {
        let mut v = self.take(rows * cols);
        if v.len() < rows * cols {
            v.resize(rows * cols, 0.0);
        }
        v.truncate(rows * cols);
        Array2::from_shape_vec((rows, cols), v).unwrap_or_else(|_| Array2::zeros((rows, cols)))
    }

    /// A pooled copy of `a`.
    pub(crate) fn copy(&self, a: &Array2<f64>) -> Array2<f64> {
        let mut c = self.scratch(a.nrows(), a.ncols());
        c.assign(a);
        c
    }

    /// Returns a buffer's allocation to the pool (dropped when the pool is full).
    pub(crate) fn recycle(&self, a: Array2<f64>) {
        let (v, _) = a.into_raw_vec_and_offset();
        if v.capacity() == 0 {
            return;
        }
        if let Ok(mut pool) = self.0.lock()
            && pool.len() < MAX_BUFFERS
        {
            pool.push(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_best_fit_and_zeroed_on_request() {
        let pool = Pool::default();
        let mut a = pool.scratch(10, 10);
        a.fill(3.0);
        let ptr = a.as_ptr();
        pool.recycle(a);
        pool.recycle(Array2::from_elem((2, 2), 1.0));
        let b = pool.zeros(5, 5); // fits in the 100-element allocation, not the 4-element one
        assert_eq!(b.as_ptr(), ptr);
        assert!(b.iter().all(|&v| v == 0.0));
        let c = pool.scratch(2, 2);
        assert_eq!(c.dim(), (2, 2));
        assert!(pool.clone().0.lock().unwrap().is_empty());
    }
}
