#!/usr/bin/env python3
"""numpy (OpenBLAS, 2 threads) reference rows: the notebook's network written by hand as in
the notebook, GEMM (the machine's BLAS peak) and the symmetric eigendecomposition.

Usage: numpy_rows.py [--list | --serve | --rows ID,ID] [--quick]   (see common.py)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.threads_env()

import numpy as np  # noqa: E402

import rows as R  # noqa: E402
from common import SEED_X, SEED_Y  # noqa: E402

DT = {"f32": np.float32, "f64": np.float64}


def sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def notebook(kind: str, n: int):
    w1 = np.ones((4, 5))
    w2 = np.ones(5)
    if n == 1:
        x = np.array([0.01, 0.02, 0.03, 0.04])
        y = 1.0
    else:
        x = common.symmetric_uniform(SEED_X, (n, 4))
        y = common.uniform(SEED_Y, n)

    if kind == "fwd":
        return (lambda: sigmoid(sigmoid(x @ w1) @ w2)), {}

    def fn():  # the notebook's simple_backpropagation, batched with the mean folded in
        z1 = x @ w1
        x1 = sigmoid(z1)
        z2 = x1 @ w2
        y_hat = sigmoid(z2)
        d2 = (y_hat - y) * y_hat * (1.0 - y_hat) / max(n, 1)
        d1 = np.multiply.outer(d2, w2) * x1 * (1.0 - x1)
        if n == 1:
            return np.outer(x, d1), x1 * d2
        return x.T @ d1, x1.T @ d2

    return fn, {}


def eigh():
    m = common.symmetric_matrix(SEED_X, R.EIGH_N)
    return (lambda: np.linalg.eigh(m)), {}


def gemm(dt: str, n: int):
    a = common.symmetric_uniform(SEED_X, (n, n)).astype(DT[dt])
    b = common.symmetric_uniform(SEED_Y, (n, n)).astype(DT[dt])
    c = np.empty((n, n), dtype=DT[dt])
    return (lambda: np.matmul(a, b, out=c)), {"flop": R.gemm_flop(n)}


def rows():
    out = {
        "nb_fwd_1": lambda: notebook("fwd", 1),
        "nb_fwdbwd_1": lambda: notebook("fwdbwd", 1),
        "nb_fwd_10k": lambda: notebook("fwd", 10_000),
        "nb_fwdbwd_10k": lambda: notebook("fwdbwd", 10_000),
        "eigh_2000": eigh,
    }
    for r in R.gemm_rows():
        _, d, n = r.split("_")
        out[r] = (lambda d, n: lambda: gemm(d, n))(d, int(n))
    return out


if __name__ == "__main__":
    common.run_worker("numpy", np.__version__, rows())
