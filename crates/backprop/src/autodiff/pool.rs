//! Recycled tensor buffers: a reset tape hands its nodes' storage back here, so a training
//! step that repeats the same shapes allocates nothing after the first step.

use ndarray::{ArrayD, IxDyn};

/// Free buffers grouped by exact capacity (a repeated step asks for the same sizes again).
#[derive(Debug)]
pub(crate) struct Pool<T> {
    buckets: Vec<(usize, Vec<Vec<T>>)>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool { buckets: Vec::new() }
    }
}

impl<T: Copy> Pool<T> {
    /// An empty buffer with capacity exactly `n`, reused when one is free.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Vec<T> {
        for (cap, bucket) in self.buckets.iter_mut() {
            if *cap == n {
                if let Some(mut v) = bucket.pop() {
                    v.clear();
                    return v;
                }
                break;
            }
        }
        Vec::with_capacity(n)
    }

    /// Gives a buffer back for reuse.
    #[inline]
    pub(crate) fn put(&mut self, v: Vec<T>) {
        let n = v.capacity();
        if n == 0 {
            return;
        }
        for (cap, bucket) in self.buckets.iter_mut() {
            if *cap == n {
                bucket.push(v);
                return;
            }
        }
        self.buckets.push((n, vec![v]));
    }

    /// Gives an array's storage back for reuse.
    #[inline]
    pub(crate) fn recycle(&mut self, a: ArrayD<T>) {
        self.put(a.into_raw_vec_and_offset().0);
    }

    /// A row-major array of `shape` filled from `values` (which must yield exactly its size).
    #[inline(always)]
    pub(crate) fn array(&mut self, shape: &[usize], values: impl Iterator<Item = T>) -> ArrayD<T> {
        let n = shape.iter().product();
        let mut v = self.take(n);
        v.extend(values);
        debug_assert_eq!(v.len(), n, "pool: value count matches the shape");
        ArrayD::from_shape_vec(IxDyn(shape), v).expect("pool: value count matches the shape")
    }

    /// A row-major array of `shape` filled with `x`.
    #[inline]
    pub(crate) fn full(&mut self, shape: &[usize], x: T) -> ArrayD<T> {
        let n = shape.iter().product();
        let mut v = self.take(n);
        v.resize(n, x);
        ArrayD::from_shape_vec(IxDyn(shape), v).expect("pool: value count matches the shape")
    }

    /// A row-major array of `shape` with unspecified contents, for a caller that overwrites
    /// every element (a GEMM that replaces its output): a reused buffer keeps its stale values
    /// (a new one, or a missing tail, is `fill`), which saves [`Pool::full`]'s pass over it.
    #[inline]
    pub(crate) fn stale(&mut self, shape: &[usize], fill: T) -> ArrayD<T> {
        let n = shape.iter().product();
        let mut v = self.take_dirty(n);
        v.resize(n, fill);
        ArrayD::from_shape_vec(IxDyn(shape), v).expect("pool: value count matches the shape")
    }

    /// [`Pool::take`] without clearing: the buffer keeps its (initialised) old elements.
    #[inline]
    fn take_dirty(&mut self, n: usize) -> Vec<T> {
        for (cap, bucket) in self.buckets.iter_mut() {
            if *cap == n {
                if let Some(v) = bucket.pop() {
                    return v;
                }
                break;
            }
        }
        Vec::with_capacity(n)
    }

    /// A row-major array of `shape` holding a copy of `values` (a memcpy).
    #[inline]
    pub(crate) fn copy_slice(&mut self, shape: &[usize], values: &[T]) -> ArrayD<T> {
        let mut v = self.take(values.len());
        v.extend_from_slice(values);
        ArrayD::from_shape_vec(IxDyn(shape), v).expect("pool: value count matches the shape")
    }

    /// A copy of `a` in row-major order.
    #[inline]
    pub(crate) fn copy(&mut self, a: &ArrayD<T>) -> ArrayD<T> {
        match a.as_slice() {
            Some(s) => {
                let mut v = self.take(s.len());
                v.extend_from_slice(s);
                ArrayD::from_shape_vec(a.raw_dim(), v).expect("pool: value count matches the shape")
            }
            None => self.array(a.shape(), a.iter().copied()),
        }
    }

    /// Bytes of the free buffers held.
    pub(crate) fn bytes(&self) -> usize {
        let len: usize = self.buckets.iter().map(|(cap, b)| cap * b.len()).sum();
        len * std::mem::size_of::<T>()
    }

    /// Number of free buffers held (for tests of steady-state reuse).
    pub(crate) fn free_buffers(&self) -> usize {
        self.buckets.iter().map(|(_, b)| b.len()).sum()
    }
}
