#!/usr/bin/env python3
"""PyTorch (eager, CPU, 2 threads) side of the comparison: one JSON line per row.

Usage: torch_rows.py [--list | --serve | --rows ID,ID] [--quick]   (see common.py)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.threads_env()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import rows as R  # noqa: E402
from common import SEED_W, SEED_X, SEED_Y  # noqa: E402

torch.set_num_threads(2)
DT = {"f32": torch.float32, "f64": torch.float64}


def t(a, dtype=torch.float64):
    return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)


# ---- the notebook's network: 4-5-1 sigmoid, ½(ŷ−y)², f64, W = ones -------------------------
def notebook(kind: str, n: int):
    w1 = torch.ones(4, 5, dtype=torch.float64, requires_grad=True)
    w2 = torch.ones(5, dtype=torch.float64, requires_grad=True)
    if n == 1:
        x = torch.tensor([0.01, 0.02, 0.03, 0.04], dtype=torch.float64)
        y = torch.tensor(1.0, dtype=torch.float64)
    else:
        x = t(common.symmetric_uniform(SEED_X, (n, 4)))
        y = t(common.uniform(SEED_Y, n))

    def forward():
        return torch.sigmoid(torch.sigmoid(x @ w1) @ w2)

    if kind == "fwd":

        def fn():
            with torch.no_grad():
                return forward()

    else:

        def fn():
            loss = (0.5 * (forward() - y) ** 2).mean()
            return torch.autograd.grad(loss, (w1, w2))

    return fn, {}


# ---- MLPs (784-256-256-10 unless `sizes`), ReLU, biases, softmax cross-entropy, SGD ---------
def mlp(kind: str, dt: str, batch: int, sizes=None):
    dtype = DT[dt]
    s = sizes or R.MLP_SIZES
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(s[:-1], s[1:])):
        layers += [torch.nn.Linear(fan_in, fan_out)] + ([torch.nn.ReLU()] if i < len(s) - 2 else [])
    model = torch.nn.Sequential(*layers).to(dtype)
    with torch.no_grad():
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        for lin, (w, b) in zip(linears, common.mlp_params(s, SEED_W)):
            lin.weight.copy_(t(w, dtype))
            lin.bias.copy_(t(b, dtype))
    x = t(common.symmetric_uniform(SEED_X, (batch, s[0])), dtype)
    y = torch.from_numpy(common.class_labels(SEED_Y, batch, s[-1]))
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=R.MLP_LR)
    if kind == "fwd":

        def fn():
            with torch.no_grad():
                return F.cross_entropy(model(x), y)

    elif kind == "fwdbwd":

        def fn():
            return torch.autograd.grad(F.cross_entropy(model(x), y), params)

    else:

        def fn():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

    return fn, {"flop": R.mlp_flop(kind, batch, s)}


# ---- curvature: sigmoid MLPs, ½·mean(ŷ−y)², derivatives w.r.t. the weights only ------------
def sigmoid_mlp(sizes, n_samples):
    params = common.mlp_params(sizes, SEED_W)
    ws = [t(w).requires_grad_(True) for w, _ in params]
    bs = [t(b) for _, b in params]
    x = t(common.symmetric_uniform(SEED_X, (n_samples, sizes[0])))
    y = t(common.symmetric_uniform(SEED_Y, (n_samples, sizes[-1])))
    shapes = [w.shape for w in ws]

    def loss_of(weights):
        h = x
        for i, (w, b) in enumerate(zip(weights, bs)):
            h = h @ w.T + b
            if i < len(weights) - 1:
                h = torch.sigmoid(h)
        return 0.5 * ((h - y) ** 2).sum(dim=1).mean()

    def loss_flat(flat):
        weights, o = [], 0
        for sh in shapes:
            k = sh[0] * sh[1]
            weights.append(flat[o : o + k].view(sh))
            o += k
        return loss_of(weights)

    return ws, loss_of, loss_flat


def curv_grad(sizes=R.CURV_SIZES, samples=R.CURV_SAMPLES):
    ws, loss_of, _ = sigmoid_mlp(sizes, samples)
    return (lambda: torch.autograd.grad(loss_of(ws), ws)), {"n_params": sum(w.numel() for w in ws)}


def curv_hvp(sizes=R.CURV_SIZES, samples=R.CURV_SAMPLES):
    ws, loss_of, _ = sigmoid_mlp(sizes, samples)
    n = sum(w.numel() for w in ws)
    v_flat = t(common.symmetric_uniform(common.SEED_V, (n,)))
    vs = list(torch.split(v_flat, [w.numel() for w in ws]))
    vs = [v.view(w.shape) for v, w in zip(vs, ws)]

    def fn():  # from scratch: forward, gradient with its graph, backward of g·v
        g = torch.autograd.grad(loss_of(ws), ws, create_graph=True)
        return torch.autograd.grad(g, ws, grad_outputs=vs)

    return fn, {"n_params": n}


def curv_hvp_at():
    # one product at a fixed point: the gradient's graph is built once and reused
    ws, loss_of, _ = sigmoid_mlp(R.CURV_SIZES, R.CURV_SAMPLES)
    n = sum(w.numel() for w in ws)
    v_flat = t(common.symmetric_uniform(common.SEED_V, (n,)))
    vs = [p.view(w.shape) for p, w in zip(torch.split(v_flat, [w.numel() for w in ws]), ws)]
    g = torch.autograd.grad(loss_of(ws), ws, create_graph=True)
    return (lambda: torch.autograd.grad(g, ws, grad_outputs=vs, retain_graph=True)), {"n_params": n}


def curv_lanczos():
    ws, loss_of, _ = sigmoid_mlp(R.CURV_SIZES, R.CURV_SAMPLES)
    n = sum(w.numel() for w in ws)
    sizes = [w.numel() for w in ws]
    info = {}

    def fn():
        g = torch.autograd.grad(loss_of(ws), ws, create_graph=True)  # graph built once

        def hvp(v):
            vt = torch.from_numpy(v)
            vs = [p.view(w.shape) for p, w in zip(torch.split(vt, sizes), ws)]
            hv = torch.autograd.grad(g, ws, grad_outputs=vs, retain_graph=True)
            return torch.cat([h.reshape(-1) for h in hv]).numpy()

        vals, steps = common.lanczos_topk(hvp, n, R.LANCZOS_K, R.LANCZOS_TOL, R.LANCZOS_MAX)
        info["hvps"] = steps
        info["top"] = [float(v) for v in vals[:3]]
        return vals

    fn()
    return fn, {"n_params": n, **info}


def hessian(sizes, n_samples):
    if sizes is None:  # the notebook: 4-5-1, no biases, W = ones, one sample
        x = torch.tensor([[0.01, 0.02, 0.03, 0.04]], dtype=torch.float64)

        def f(flat):
            w1 = flat[:20].view(5, 4)
            w2 = flat[20:].view(1, 5)
            y_hat = torch.sigmoid(torch.sigmoid(x @ w1.T) @ w2.T)
            return (0.5 * (y_hat - 1.0) ** 2).sum()

        w0 = torch.ones(25, dtype=torch.float64)
    else:
        ws, _, f = sigmoid_mlp(sizes, n_samples)
        w0 = torch.cat([w.detach().reshape(-1) for w in ws])
    h = torch.func.hessian(f)
    return (lambda: h(w0)), {"n_params": int(w0.numel())}


def eigh():
    a = t(common.symmetric_matrix(SEED_X, R.EIGH_N))
    return (lambda: torch.linalg.eigh(a)), {}


def gemm(dt: str, n: int):
    a = t(common.symmetric_uniform(SEED_X, (n, n)), DT[dt])
    b = t(common.symmetric_uniform(SEED_Y, (n, n)), DT[dt])
    c = torch.empty(n, n, dtype=DT[dt])
    return (lambda: torch.matmul(a, b, out=c)), {"flop": R.gemm_flop(n)}


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
    common.run_worker("torch", torch.__version__, rows())
