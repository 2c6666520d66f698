#!/usr/bin/env python3
"""Independent check of a backprop model directory with numpy only (no torch needed):
reads model.safetensors with the `safetensors` package, runs the forward pass that config.json
describes, and compares with backprop's predictions.

    python3 numpy_forward.py DIR X.npy Y.npy
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file

ACTS = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "softplus": lambda z: np.logaddexp(0, z),
    "identity": lambda z: z,
}


def main(d, x_path, y_path):
    st = load_file(f"{d}/model.safetensors")
    cfg = json.load(open(f"{d}/config.json"))
    dtype = {"f32": np.float32, "f64": np.float64}[cfg["dtype"]]
    expected, module = set(), 0
    a = np.load(x_path)
    for i, act in enumerate(cfg["activations"]):
        w = st[f"{module}.weight"]
        assert w.shape == (cfg["layers"][i + 1], cfg["layers"][i]), (f"{module}.weight", w.shape)
        assert w.dtype == dtype, (f"{module}.weight", w.dtype)
        expected.add(f"{module}.weight")
        a = a @ w.T
        if cfg["bias"]:
            a = a + st[f"{module}.bias"]
            expected.add(f"{module}.bias")
        a = ACTS[act](a)
        module += 1 if act == "identity" else 2
    assert set(st) == expected, (sorted(st), sorted(expected))
    y = np.load(y_path)
    err = float(np.abs(a - y).max()) / max(1.0, float(np.abs(y).max()))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    print(f"{d}: tensors {sorted(st)}; max rel. error vs numpy {err:.2e}")
    if err > tol:
        sys.exit(f"forward mismatch {err:.3e} > {tol:.0e}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
