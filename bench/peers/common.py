"""Shared machinery for the peer workers (torch, jax, numpy): data, timing, protocol.

Every implementation (ours in Rust, these in Python) builds its inputs from the same
deterministic generator, so all of them compute on bit-identical numbers:

    uniform(seed, n)[k] = splitmix64(seed * 2^32 + k) >> 11, scaled by 2^-53  ∈ [0, 1)

and times a row with the same loop: warm up, calibrate an inner repeat count so one sample
lasts at least TARGET_SAMPLE seconds, then take samples until the time budget is spent
(at least MIN_SAMPLES). Each sample is the mean time of one call over the inner repeats.

Protocol (what `bench/compare` speaks to every worker, the Rust one included):
    argv `--list`               print the row ids this worker implements, one per line
    argv `--serve`              read row ids from stdin, one per line; answer each with one
                                JSON line {"row", "impl", "samples", "inner", ...}; "quit" ends
    argv `--rows a,b` (or none) run those rows (default: all) once and print JSON lines
    argv `--quick`              tiny budget (for smoke tests)
"""

import json
import os
import statistics
import sys
import time

import numpy as np

MASK64 = (1 << 64) - 1
TARGET_SAMPLE = 0.01  # seconds: one sample at least this long (inner repeats)
BUDGET = 0.6  # seconds of sampling per row and round
MIN_SAMPLES = 5
MAX_SAMPLES = 50
SLOW_MIN_SAMPLES = 2  # rows whose single call exceeds 0.5 s
WARMUP = 0.3  # seconds of warm-up calls the first time a row runs in a worker


def uniform(seed: int, n: int) -> np.ndarray:
    """n values in [0, 1): splitmix64 of the counter seed·2³² + k, top 53 bits."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64((seed << 32) & MASK64)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (2.0**-53)


def symmetric_uniform(seed: int, shape, scale: float = 1.0) -> np.ndarray:
    """Values in [-scale, scale), row-major in `shape`."""
    n = int(np.prod(shape))
    return ((2.0 * uniform(seed, n) - 1.0) * scale).reshape(shape)


def mlp_params(sizes, seed: int, bias: bool = True):
    """Glorot-uniform weights (out×in, torch layout) and biases in ±0.1, layer l uses seeds
    seed + 2l (weight) and seed + 2l + 1 (bias)."""
    out = []
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        limit = (6.0 / (fan_in + fan_out)) ** 0.5
        w = symmetric_uniform(seed + 2 * l, (fan_out, fan_in), limit)
        b = symmetric_uniform(seed + 2 * l + 1, (fan_out,), 0.1) if bias else None
        out.append((w, b))
    return out


def class_labels(seed: int, n: int, classes: int) -> np.ndarray:
    return np.minimum((uniform(seed, n) * classes).astype(np.int64), classes - 1)


def symmetric_matrix(seed: int, n: int) -> np.ndarray:
    a = symmetric_uniform(seed, (n, n))
    return 0.5 * (a + a.T)


# Seeds, shared with crates/backprop/benches/compare.rs.
SEED_X = 1000
SEED_Y = 2000
SEED_W = 3000


def time_row(fn, quick: bool = False, first: bool = True):
    """Median-ready samples (seconds per call) for `fn`, after warm-up and calibration."""
    budget = 0.05 if quick else BUDGET
    min_samples = 2 if quick else MIN_SAMPLES
    # Warm-up (compilation, caches, allocator, thread pools): the first calls of a BLAS
    # thread pool run up to 10x slow, so keep calling for WARMUP seconds (2 calls at least).
    warm_for = 0.02 if quick else (WARMUP if first else 0.05)
    start, calls, single = time.perf_counter(), 0, float("inf")
    while True:
        t0 = time.perf_counter()
        fn()
        single = min(single, time.perf_counter() - t0)  # the fastest call: preemption only adds
        calls += 1
        # the first time: ≥ 2 calls (the first may compile); later rounds: ≥ 1
        if calls >= (2 if first else 1) and (time.perf_counter() - start >= warm_for or single > 0.5):
            break
    inner = 1
    if single < TARGET_SAMPLE:
        # calibrate on growing batches: one call is too noisy at the µs scale
        n = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            elapsed = time.perf_counter() - t0
            if elapsed >= TARGET_SAMPLE / 4 or n >= 10_000_000:
                break
            n *= 8
        inner = max(1, round(n * TARGET_SAMPLE / max(elapsed, 1e-9)))
    if single > 0.5 and not quick:
        min_samples = SLOW_MIN_SAMPLES
    samples = []
    start = time.perf_counter()
    while len(samples) < min_samples or (
        time.perf_counter() - start < budget and len(samples) < MAX_SAMPLES
    ):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return samples, inner


def run_worker(impl: str, version: str, rows: dict):
    """`rows`: id -> zero-argument factory returning (fn, extra-dict) — setup is not timed."""
    args = sys.argv[1:]
    quick = "--quick" in args
    if "--list" in args:
        for r in rows:
            print(r)
        return
    cache = {}

    def answer(row_id: str):
        if row_id not in rows:
            out = {"row": row_id, "impl": impl, "error": "not implemented"}
        else:
            try:
                first = row_id not in cache
                if first:
                    cache[row_id] = rows[row_id]()
                fn, extra = cache[row_id]
                samples, inner = time_row(fn, quick, first)
                out = {
                    "row": row_id,
                    "impl": impl,
                    "version": version,
                    "median_s": statistics.median(samples),
                    "samples": samples,
                    "inner": inner,
                    **extra,
                }
            except Exception as e:  # report, keep serving
                out = {"row": row_id, "impl": impl, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)

    if "--serve" in args:
        for line in sys.stdin:
            row_id = line.strip()
            if not row_id:
                continue
            if row_id == "quit":
                break
            answer(row_id)
        return
    selected = list(rows)
    if "--rows" in args:
        selected = args[args.index("--rows") + 1].split(",")
    for r in selected:
        answer(r)


def threads_env():
    """Two cores on this machine: say so to every BLAS / OpenMP underneath."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "2")


SEED_V = 4000  # Lanczos start vector


def lanczos_topk(hvp, n: int, k: int, tol: float, max_steps: int):
    """Top-k eigenvalues of a symmetric operator by Lanczos with full reorthogonalisation.

    `hvp` maps a float64 numpy vector to one. Stops when the k largest Ritz values have
    relative residuals |βₘ sₘᵢ| ≤ tol·max|θ| (checked every 5 steps). Returns
    (eigenvalues descending, number of operator applications).
    """
    q = symmetric_uniform(SEED_V, (n,))
    q /= np.linalg.norm(q)
    basis = np.empty((max_steps + 1, n))
    basis[0] = q
    alphas, betas = [], []
    for m in range(1, max_steps + 1):
        w = np.array(hvp(basis[m - 1]), dtype=np.float64)  # a writable copy
        a = float(w @ basis[m - 1])
        alphas.append(a)
        # full reorthogonalisation, twice (classical Gram-Schmidt is stable when repeated)
        for _ in range(2):
            w -= basis[:m].T @ (basis[:m] @ w)
        b = float(np.linalg.norm(w))
        done = b < 1e-300 or m == max_steps
        if not done and m >= 2 * k and m % 5 == 0:
            t = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
            theta, s = np.linalg.eigh(t)
            top = slice(len(theta) - k, len(theta))
            res = np.abs(b * s[-1, top])
            done = bool(np.all(res <= tol * np.max(np.abs(theta))))
        if done:
            t = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
            theta = np.linalg.eigvalsh(t)
            return theta[::-1][:k].copy(), m
        betas.append(b)
        basis[m] = w / b
    raise AssertionError("unreachable")
