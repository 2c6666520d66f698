#!/usr/bin/env python3
"""JAX (jax.jit, XLA CPU) side of the comparison: one JSON line per row.

float64 is enabled (jax_enable_x64) and used wherever a row names f64; f32 rows build f32
arrays explicitly. Every timed call ends in block_until_ready().

Usage: jax_rows.py [--list | --serve | --rows ID,ID] [--quick]   (see common.py)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.threads_env()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import rows as R  # noqa: E402
from common import SEED_W, SEED_X, SEED_Y  # noqa: E402

DT = {"f32": jnp.float32, "f64": jnp.float64}


def a(x, dtype=jnp.float64):
    return jnp.asarray(np.asarray(x), dtype=dtype)


def ready(out):
    return jax.block_until_ready(out)


# ---- the notebook's network: 4-5-1 sigmoid, ½(ŷ−y)², f64, W = ones -------------------------
def notebook(kind: str, n: int):
    w = (jnp.ones((4, 5)), jnp.ones(5))
    if n == 1:
        x = a([0.01, 0.02, 0.03, 0.04])
        y = a(1.0)
    else:
        x = a(common.symmetric_uniform(SEED_X, (n, 4)))
        y = a(common.uniform(SEED_Y, n))

    def forward(w, x):
        return jax.nn.sigmoid(jax.nn.sigmoid(x @ w[0]) @ w[1])

    def loss(w, x, y):
        return jnp.mean(0.5 * (forward(w, x) - y) ** 2)

    if kind == "fwd":
        f = jax.jit(forward)
        return (lambda: ready(f(w, x))), {}
    g = jax.jit(jax.value_and_grad(loss))
    return (lambda: ready(g(w, x, y))), {}


# ---- MLPs (784-256-256-10 unless `sizes`), ReLU, biases, softmax cross-entropy, SGD ---------
def mlp_loss(params, x, y):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w.T + b
        if i < len(params) - 1:
            h = jax.nn.relu(h)
    logp = jax.nn.log_softmax(h, axis=1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def mlp(kind: str, dt: str, batch: int, sizes=None):
    dtype = DT[dt]
    s = sizes or R.MLP_SIZES
    params = [(a(w, dtype), a(b, dtype)) for w, b in common.mlp_params(s, SEED_W)]
    x = a(common.symmetric_uniform(SEED_X, (batch, s[0])), dtype)
    y = jnp.asarray(common.class_labels(SEED_Y, batch, s[-1]))
    extra = {"flop": R.mlp_flop(kind, batch, s)}
    if kind == "fwd":
        f = jax.jit(mlp_loss)
        return (lambda: ready(f(params, x, y))), extra
    if kind == "fwdbwd":
        g = jax.jit(jax.value_and_grad(mlp_loss))
        return (lambda: ready(g(params, x, y))), extra

    def step(p, x, y):
        loss, g = jax.value_and_grad(mlp_loss)(p, x, y)
        return jax.tree_util.tree_map(lambda w, d: w - R.MLP_LR * d, p, g), loss

    step = jax.jit(step, donate_argnums=0)
    state = {"p": params}

    def fn():
        state["p"], loss = step(state["p"], x, y)
        return ready(loss)

    return fn, extra


# ---- curvature: sigmoid MLPs, ½·mean(ŷ−y)², derivatives w.r.t. the weights only ------------
def sigmoid_mlp(sizes, n_samples):
    params = common.mlp_params(sizes, SEED_W)
    ws = [a(w) for w, _ in params]
    bs = [a(b) for _, b in params]
    x = a(common.symmetric_uniform(SEED_X, (n_samples, sizes[0])))
    y = a(common.symmetric_uniform(SEED_Y, (n_samples, sizes[-1])))
    shapes = [w.shape for w in ws]

    def loss_of(weights):
        h = x
        for i, (w, b) in enumerate(zip(weights, bs)):
            h = h @ w.T + b
            if i < len(weights) - 1:
                h = jax.nn.sigmoid(h)
        return 0.5 * jnp.mean(jnp.sum((h - y) ** 2, axis=1))

    def loss_flat(flat):
        weights, o = [], 0
        for sh in shapes:
            k = sh[0] * sh[1]
            weights.append(flat[o : o + k].reshape(sh))
            o += k
        return loss_of(weights)

    flat0 = jnp.concatenate([w.reshape(-1) for w in ws])
    return flat0, loss_flat


def curv_grad(sizes=R.CURV_SIZES, samples=R.CURV_SAMPLES):
    w0, f = sigmoid_mlp(sizes, samples)
    g = jax.jit(jax.grad(f))
    return (lambda: ready(g(w0))), {"n_params": int(w0.size)}


def hvp_of(f):
    # forward-over-reverse: the JAX documentation's recommended HVP
    return jax.jit(lambda w, v: jax.jvp(jax.grad(f), (w,), (v,))[1])


def curv_hvp(sizes=R.CURV_SIZES, samples=R.CURV_SAMPLES):
    w0, f = sigmoid_mlp(sizes, samples)
    v = a(common.symmetric_uniform(common.SEED_V, (w0.size,)))
    h = hvp_of(f)
    return (lambda: ready(h(w0, v))), {"n_params": int(w0.size)}


def curv_hvp_at():
    # one product at a fixed point: linearize the gradient once, time the linear map
    w0, f = sigmoid_mlp(R.CURV_SIZES, R.CURV_SAMPLES)
    v = a(common.symmetric_uniform(common.SEED_V, (w0.size,)))
    _, lin = jax.linearize(jax.grad(f), w0)
    h = jax.jit(lin)
    return (lambda: ready(h(v))), {"n_params": int(w0.size)}


def curv_lanczos():
    w0, f = sigmoid_mlp(R.CURV_SIZES, R.CURV_SAMPLES)
    h = hvp_of(f)
    n = int(w0.size)
    info = {}

    def fn():
        vals, steps = common.lanczos_topk(
            lambda v: np.asarray(h(w0, jnp.asarray(v))), n, R.LANCZOS_K, R.LANCZOS_TOL, R.LANCZOS_MAX
        )
        info["hvps"] = steps
        info["top"] = [float(v) for v in vals[:3]]
        return vals

    fn()
    return fn, {"n_params": n, **info}


def hessian(sizes, n_samples):
    if sizes is None:
        x = a([[0.01, 0.02, 0.03, 0.04]])

        def f(flat):
            w1 = flat[:20].reshape(5, 4)
            w2 = flat[20:].reshape(1, 5)
            y_hat = jax.nn.sigmoid(jax.nn.sigmoid(x @ w1.T) @ w2.T)
            return jnp.sum(0.5 * (y_hat - 1.0) ** 2)

        w0 = jnp.ones(25)
    else:
        w0, f = sigmoid_mlp(sizes, n_samples)
    h = jax.jit(jax.hessian(f))
    return (lambda: ready(h(w0))), {"n_params": int(w0.size)}


def eigh():
    m = a(common.symmetric_matrix(SEED_X, R.EIGH_N))
    f = jax.jit(jnp.linalg.eigh)
    return (lambda: ready(f(m))), {}


def gemm(dt: str, n: int):
    x = a(common.symmetric_uniform(SEED_X, (n, n)), DT[dt])
    y = a(common.symmetric_uniform(SEED_Y, (n, n)), DT[dt])
    f = jax.jit(jnp.matmul)
    return (lambda: ready(f(x, y))), {"flop": R.gemm_flop(n)}


def shape_row(kind: str, dt: str, batch: int, sizes):
    if kind == "step":
        return mlp("step", dt, batch, sizes)
    return (curv_grad if kind == "grad" else curv_hvp)(sizes, batch)


def rows():
    out = {
        "nb_fwd_1": lambda: notebook("fwd", 1),
        "nb_fwdbwd_1": lambda: notebook("fwdbwd", 1),
        "nb_fwd_10k": lambda: notebook("fwd", 10_000),
        "nb_fwdbwd_10k": lambda: notebook("fwdbwd", 10_000),
        "grad_150_256_256_1": curv_grad,
        "hvp_150_256_256_1": curv_hvp,
        "hvp_at_150_256_256_1": curv_hvp_at,
        "hess_nb": lambda: hessian(None, 1),
        "hess_20_50_20_1": lambda: hessian(R.HESS_SIZES, R.HESS_SAMPLES),
        "lanczos10_150_256_256_1": curv_lanczos,
        "eigh_2000": eigh,
    }
    for r in R.mlp_rows():
        out[r] = (lambda r: lambda: mlp(*R.parse_mlp(r)))(r)
    for r in R.SHAPES:
        out[r] = (lambda r: lambda: shape_row(*R.parse_shape(r)))(r)
    for r in R.gemm_rows():
        _, d, n = r.split("_")
        out[r] = (lambda d, n: lambda: gemm(d, n))(d, int(n))
    return out


if __name__ == "__main__":
    common.run_worker("jax", jax.__version__, rows())
