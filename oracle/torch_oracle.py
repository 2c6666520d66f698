#!/usr/bin/env python3
"""PyTorch as an independent oracle for the `backprop` CLI.

For many random MLPs (depth, widths, activations, bias, loss, dtype drawn at random), this
script builds the equivalent `torch.nn.Sequential`, saves its `state_dict` with
`safetensors.torch.save_file` plus a hand-written `config.json` (so the model files are
PyTorch's, not ours), writes random data as `.npz`, and compares, against torch autograd:

* `backprop eval --json`    : the loss,
* `backprop grad --json`    : the loss and the gradient of every tensor,
* `backprop hessian --json` : the exact Hessian over all parameters (`torch.func.hessian`),
  in the documented flat order (per layer: weight row-major out×in, then bias).

Usage: oracle/torch_oracle.py BACKPROP_BINARY [--cases N] [--seed S]
Exit status 0 when every comparison is within tolerance.
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ACTS = {
    "sigmoid": torch.nn.Sigmoid,
    "tanh": torch.nn.Tanh,
    "relu": torch.nn.ReLU,
    "leaky_relu": lambda: torch.nn.LeakyReLU(0.01),
    "softplus": torch.nn.Softplus,
    "identity": None,
}


def build(rng, sizes, acts, bias, dtype):
    mods = []
    for i in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1], bias=bias, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(rng.normal(0, 0.8, lin.weight.shape)))
            if bias:
                lin.bias.copy_(torch.tensor(rng.normal(0, 0.5, lin.bias.shape)))
        mods.append(lin)
        if ACTS[acts[i]] is not None:
            mods.append(ACTS[acts[i]]())
    return torch.nn.Sequential(*mods)


def loss_fn(name, out_act, out, y):
    if name == "squared_error":
        return 0.5 * ((out - y) ** 2).sum(dim=1).mean()
    if name == "mse":
        return F.mse_loss(out, y)
    if name == "bce":
        # On a sigmoid output the loss is BCE of σ(z); the reference is computed from the
        # logits z (the Sequential's input to its last Sigmoid), which is mathematically the
        # same and keeps full precision where BCELoss on σ(z) would lose it.
        return F.binary_cross_entropy_with_logits(out, y)
    if name == "cross_entropy":
        return F.cross_entropy(out, y.long().view(-1))
    raise ValueError(name)


def run(binary, *args):
    p = subprocess.run([binary, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
    return json.loads(p.stdout)


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b)), 1e-8))


def case(binary, rng, tmp, idx, failures):
    depth = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 7)) for _ in range(depth + 1)]
    loss = str(rng.choice(["squared_error", "mse", "bce", "cross_entropy"]))
    hidden = [str(rng.choice(list(ACTS))) for _ in range(depth - 1)]
    if loss == "bce":
        sizes[-1] = 1
        out_act = str(rng.choice(["sigmoid", "identity"]))
    elif loss == "cross_entropy":
        sizes[-1] = int(rng.integers(2, 5))
        out_act = "identity"
    else:
        out_act = str(rng.choice(list(ACTS)))
    acts = hidden + [out_act]
    bias = bool(rng.integers(0, 2))
    f32 = rng.random() < 0.25
    dtype = torch.float32 if f32 else torch.float64
    n = int(rng.integers(1, 12))

    model = build(rng, sizes, acts, bias, dtype)
    x = rng.normal(0, 1, (n, sizes[0]))
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], n).astype(np.int64)
    elif loss == "bce":
        y = rng.integers(0, 2, (n, 1)).astype(np.float64)
    else:
        y = rng.normal(0, 1, (n, sizes[-1]))

    d = os.path.join(tmp, f"case{idx}")
    os.makedirs(os.path.join(d, "model"))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(d, "model", "model.safetensors"))
    with open(os.path.join(d, "model", "config.json"), "w") as f:
        json.dump({"layers": sizes, "activations": acts, "bias": bias, "loss": loss,
                   "dtype": "f32" if f32 else "f64"}, f)
    np.savez(os.path.join(d, "data.npz"), x=x, y=y)

    xt = torch.tensor(x, dtype=dtype)
    yt = torch.tensor(y, dtype=dtype)
    logits_model = model[:-1] if out_act == "sigmoid" and loss == "bce" else model
    out = logits_model(xt)
    ref_loss = loss_fn(loss, out_act, out, yt)
    ref_grads = torch.autograd.grad(ref_loss, list(model.parameters()))
    names = [k for k, _ in model.named_parameters()]

    tol = 2e-4 if f32 else 1e-9
    desc = f"case {idx}: layers {sizes} acts {acts} bias {bias} loss {loss} {'f32' if f32 else 'f64'} n={n}"
    common = ["--model", os.path.join(d, "model"), "--data", os.path.join(d, "data.npz"), "--json"]

    def check(what, ours, ref):
        e = rel_err(ours, ref)
        if not np.isfinite(e) or e > tol:
            failures.append(f"{desc}: {what} relative error {e:.3e} > {tol:.0e}")
        return e

    worst = 0.0
    try:
        g = run(binary, "grad", *common)
        worst = max(worst, check("grad loss", g["loss"], ref_loss.item()))
        for name, ref in zip(names, ref_grads):
            worst = max(worst, check(f"gradient {name}", g["gradients"][name], ref.detach().numpy()))
        e = run(binary, "eval", *common)
        worst = max(worst, check("eval loss", e["loss"], ref_loss.item()))
        # The exact Hessian over every parameter, in the flat order.
        model64 = copy.deepcopy(logits_model).double()
        params = [p.detach() for p in model64.parameters()]
        shapes = [p.shape for p in params]
        flat0 = torch.cat([p.reshape(-1) for p in params])

        def f(flat):
            ps, off = [], 0
            for s in shapes:
                k = int(np.prod(s))
                ps.append(flat[off:off + k].reshape(s))
                off += k
            out = torch.func.functional_call(model64, dict(zip(names, ps)), (xt.double(),))
            return loss_fn(loss, out_act, out, yt.double())

        ref_h = torch.func.hessian(f)(flat0).numpy()
        h = run(binary, "hessian", *common, "--params", "all", "--full")
        worst = max(worst, check("hessian", h["hessian"], ref_h))
    except (RuntimeError, KeyError, json.JSONDecodeError) as err:
        failures.append(f"{desc}: {err}")
    return desc, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.cases):
            desc, worst = case(args.binary, rng, tmp, i, failures)
            print(f"{desc}: worst relative error {worst:.2e}")
    print()
    for f in failures:
        print("FAIL", f)
    print(f"{args.cases - len({f.split(':')[0] for f in failures})} passed, "
          f"{len({f.split(':')[0] for f in failures})} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
