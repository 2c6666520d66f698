//! Two-way fork-join for the passes' splits, without a thread wake-up on every split.
//!
//! A training step or forward pass of a small MLP splits a few products of 50–200 µs each
//! between two threads, a few hundred µs apart. With plain `rayon::join` each split paid for
//! waking threads: rayon's idle workers go to sleep after ~30 µs without work, and a join
//! called from outside the pool hands *both* halves to the pool and puts the caller to sleep
//! until they are done. On the 2-core VMs here a wake-up costs ~40–80 µs (measured: a join of
//! two 50 µs halves after a 100 µs pause took 119–164 µs from the main thread).
//!
//! [`join`] instead runs the first half on the calling thread and offers the second to a
//! helper thread of its own (parked between bursts of splits) that stays awake for [`LINGER`] after
//! each split, polling for it; the caller spins rather than sleeping until that half is done,
//! or runs it itself if the helper has not taken it by then. In a prototype of this
//! scheme the same two 50 µs halves took 51–55 µs whatever the pause. OpenMP runtimes keep
//! their threads spinning in the same way (Intel's for 200 ms before sleeping,
//! `KMP_BLOCKTIME`); rayon's sleep is not configurable, hence this module. Results and panics
//! are those of `rayon::join`.
//!
//! Used for splits whose halves do not split again (the MLP passes, the notebook's batch
//! kernels, `tensor::gemm_into`); a split inside a half runs its halves one after the other,
//! since both cores are busy. The curvature passes, whose halves run split products inside,
//! keep `rayon::join`: with this join their gradient and HVP measured no faster (7.1 → 6.9 ms
//! and 17.5 → 16.7 ms in their good runs, 11.9 ms in two runs of three for the gradient).

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long the helper stays awake after the last split, polling for the next one.
const LINGER: Duration = Duration::from_millis(1);

/// How long the caller spins for the helper's half before yielding its core between checks:
/// longer than the usual imbalance of two halves, short enough that a helper the scheduler has
/// put on the caller's core is not kept waiting long (2 ms and 100 µs measured alike).
const SPIN_LIMIT: Duration = Duration::from_micros(100);

/// `(a(), b())`, `a` on the calling thread and `b` on the helper thread when it is awake: `rayon::join` without its wake-ups (see the module docs).
///
/// Called from outside any pool with two threads in the global one, `b` is published in
/// [`SLOT`] for the helper. If the helper has not taken it by the time `a` is done, the caller
/// takes it back and runs it itself: a split never waits for a thread to wake up. Inside a
/// pool, with other thread counts, or when another caller's half occupies the slot, this is
/// `rayon::join`.
pub(crate) fn join<RA: Send, RB: Send>(
    a: impl FnOnce() -> RA + Send,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    if IN_HALF.get() {
        // Both cores already run one half each: a nested split would only add a third thread.
        return (a(), b());
    }
    if rayon::current_thread_index().is_some() || rayon::current_num_threads() != 2 {
        // Inside a pool, or with other than two threads: rayon's join as it is.
        return rayon::join(a, b);
    }
    keep_awake();
    let half = Mutex::new((Some(b), None));
    let run = || {
        let b = half.lock().unwrap_or_else(PoisonError::into_inner).0.take();
        if let Some(b) = b {
            let rb = panic::catch_unwind(AssertUnwindSafe(b));
            half.lock().unwrap_or_else(PoisonError::into_inner).1 = Some(rb);
        }
    };
    let task = Task { run: &run, done: AtomicBool::new(false) };
    let me = std::ptr::from_ref(&task).cast::<()>().cast_mut();
    if SLOT.compare_exchange(std::ptr::null_mut(), me, Ordering::AcqRel, Ordering::Acquire).is_err() {
        let b = half.lock().unwrap_or_else(PoisonError::into_inner).0.take();
        let b = b.unwrap_or_else(|| unreachable!("not published, so not taken"));
        return rayon::join(a, b);
    }
    let ra = panic::catch_unwind(AssertUnwindSafe(|| in_half(a)));
    if SLOT.compare_exchange(me, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // Nobody took it: run it here.
        run();
    } else {
        // The helper is running it. `task` lives in this frame: wait for it whatever happens.
        let start = Instant::now();
        while !task.done.load(Ordering::Acquire) {
            if start.elapsed() < SPIN_LIMIT {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
    let rb = half.into_inner().unwrap_or_else(PoisonError::into_inner).1;
    match (ra, rb) {
        (Ok(ra), Some(Ok(rb))) => (ra, rb),
        (Err(p), _) | (_, Some(Err(p))) => panic::resume_unwind(p),
        (Ok(_), None) => unreachable!("the second half ran"),
    }
}

thread_local! {
    /// Whether this thread runs one half of a [`join`] whose other half runs on another thread.
    static IN_HALF: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with [`IN_HALF`] set (restored afterwards, also on panic).
fn in_half<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_HALF.set(self.0);
        }
    }
    let _restore = Restore(IN_HALF.replace(true));
    f()
}

/// A half published for the helper; it lives on the publishing caller's stack.
struct Task<'a> {
    run: &'a (dyn Fn() + Sync),
    /// Set by the helper after running it; the helper does not touch the task afterwards.
    done: AtomicBool,
}

/// The half waiting for the helper (a `*const Task`), or null.
static SLOT: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

/// Runs the half in the slot, if any, on this (the helper's) thread. Returns whether it ran one.
fn run_published() -> bool {
    let p = SLOT.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if p.is_null() {
        return false;
    }
    // SAFETY: a non-null slot holds a `Task` published by a caller that waits, without leaving
    // its frame, until it takes the task back (it cannot: we emptied the slot) or `done` is set.
    let task = unsafe { &*p.cast::<Task<'_>>() };
    in_half(task.run);
    task.done.store(true, Ordering::Release);
    true
}

/// Whether the helper is polling the slot (a `linger` is running, or the helper was unparked to
/// run one).
static LINGERING: AtomicBool = AtomicBool::new(false);

/// Until when (ns since [`epoch`]) the helper stays awake.
static UNTIL: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The helper: a thread of its own, parked between bursts of splits, so that keeping it awake
/// neither occupies a worker of the global pool (which the curvature passes and users' code
/// also use) nor wakes one for the halves; waking it (`unpark`) allocates nothing, unlike
/// spawning a job on a pool, so a training step stays allocation-free. `None` if its thread
/// could not be started: then [`join`] runs both halves on the caller.
///
/// Where the host puts the two vCPUs matters more than the handoff. Measured on the 2-core
/// EPYC VM (a cache line's round trip between caller and helper, in 100 ms windows beside
/// batch-32 training steps): ~65 ns most of the time (one CCD, shared L3); ~330 ns for seconds
/// at a time (two CCDs: every cache line one thread wrote and the other reads crosses the
/// dies, and steps whose halves traded the weights' rows took 520–700 µs against ~400 µs on
/// one thread); rarely ~27 ns (SMT siblings of one core: two threads gain nothing). The MLP
/// passes therefore keep each thread on the data it already holds (`nn::split::by_owner`,
/// `by_batch`; `optim` updates by the same rows), after which the two-CCD windows cost
/// batch-32 steps ~340 µs. Nothing here detects the placement.
fn helper() -> Option<&'static std::thread::Thread> {
    static HELPER: OnceLock<Option<std::thread::Thread>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            let spawned = std::thread::Builder::new().name("backprop-helper".into()).spawn(|| {
                loop {
                    // Woken by `keep_awake` (a wake-up that comes before the park returns at once).
                    std::thread::park();
                    if LINGERING.load(Ordering::Acquire) {
                        linger();
                    }
                }
            });
            spawned.ok().map(|handle| handle.thread().clone())
        })
        .as_ref()
}

/// Keeps the helper awake for [`LINGER`] from now, polling the slot.
fn keep_awake() {
    let Some(helper) = helper() else { return };
    let until = now_ns().saturating_add(LINGER.as_nanos() as u64);
    UNTIL.fetch_max(until, Ordering::AcqRel);
    if !LINGERING.swap(true, Ordering::AcqRel) {
        helper.unpark();
    }
}

/// The helper's loop: runs the halves published in the slot, and returns to its park when the
/// deadline has passed.
fn linger() {
    loop {
        if run_published() {
            continue;
        }
        for _ in 0..64 {
            std::hint::spin_loop();
        }
        if now_ns() > UNTIL.load(Ordering::Acquire) {
            LINGERING.store(false, Ordering::Release);
            // A caller may have renewed the deadline between the check and the store and seen
            // the flag still set: stay if so, unless a caller has set it again (and unparked us:
            // the park returns at once and the loop starts over).
            if now_ns() > UNTIL.load(Ordering::Acquire) || LINGERING.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_returns_both_halves_inside_and_outside_a_pool() {
        let halves = || join(|| (0..1000u64).sum::<u64>(), || "b".repeat(3));
        assert_eq!(halves(), (499_500, "bbb".to_string()));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        assert_eq!(pool.install(halves), (499_500, "bbb".to_string()));
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(one.install(halves), (499_500, "bbb".to_string()));
        // Nested splits, as split products inside split passes.
        let (x, (y, z)) = join(|| 1, || join(|| 2, || join(|| 3, || 4)));
        assert_eq!((x, y, z), (1, 2, (3, 4)));
    }

    #[test]
    fn a_panicking_half_panics_the_join_and_the_caller_does_not_hang() {
        for second in [false, true] {
            let r = std::panic::catch_unwind(|| {
                join(
                    || {
                        if !second {
                            panic!("first")
                        }
                    },
                    || {
                        if second {
                            panic!("second")
                        }
                    },
                )
            });
            assert!(r.is_err());
        }
        // The pool still works afterwards.
        assert_eq!(join(|| 1, || 2), (1, 2));
    }
}
