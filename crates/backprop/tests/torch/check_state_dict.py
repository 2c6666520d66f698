#!/usr/bin/env python3
"""Check that backprop model directories and PyTorch agree, in both directions.

    python3 check_state_dict.py load DIR [--x X.npy --y Y.npy]
        Builds the torch.nn.Sequential that DIR/config.json describes, loads DIR/model.safetensors
        with load_state_dict(strict=True), and (optionally) checks that the torch forward pass on
        X.npy matches Y.npy (predictions written by backprop), to 1e-12 (f64) or 1e-5 (f32)
        relative to the output scale.

    python3 check_state_dict.py save DIR [--layers 4,5,3] [--activations relu,identity]
                                         [--dtype f32|f64] [--no-bias] [--seed 0]
        Writes a randomly initialised torch model the way PyTorch users do
        (safetensors.torch.save_file(model.state_dict(), ...)) plus a hand-written, minimal
        config.json, for `backprop` to load; also writes DIR/x.npy and DIR/torch_y.npy so the
        Rust side can compare its forward pass.

Exits 0 on success, 1 with a message on any mismatch. Needs torch, numpy and safetensors.
The Rust test `torch_round_trip` (ignored by default) drives both directions:
    cargo test -p backprop --test model_files -- --ignored
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

MODULES = {
    "sigmoid": lambda: torch.nn.Sigmoid(),
    "tanh": lambda: torch.nn.Tanh(),
    "relu": lambda: torch.nn.ReLU(),
    "leaky_relu": lambda: torch.nn.LeakyReLU(0.01),
    "softplus": lambda: torch.nn.Softplus(),
    "identity": None,
}
DTYPES = {"f32": torch.float32, "f64": torch.float64}


def build(layers, activations, bias, dtype):
    """The Sequential backprop's config describes: Linear, then the activation module unless it
    is the identity (which has no module, so it takes no index)."""
    if len(activations) != len(layers) - 1:
        raise SystemExit(f"{len(layers) - 1} layers need as many activations, got {len(activations)}")
    modules = []
    for i, act in enumerate(activations):
        modules.append(torch.nn.Linear(layers[i], layers[i + 1], bias=bias))
        if act not in MODULES:
            raise SystemExit(f"unknown activation {act!r}")
        if MODULES[act] is not None:
            modules.append(MODULES[act]())
    return torch.nn.Sequential(*modules).to(DTYPES[dtype])


def load(args):
    d = Path(args.dir)
    cfg = json.loads((d / "config.json").read_text())
    state = load_file(str(d / "model.safetensors"))
    dtype = cfg.get("dtype") or ("f32" if next(iter(state.values())).dtype == torch.float32 else "f64")
    model = build(cfg["layers"], cfg["activations"], cfg.get("bias", True), dtype)
    model.load_state_dict(state, strict=True)  # raises on any missing/unexpected key or shape
    for name, t in state.items():
        if t.dtype != DTYPES[dtype]:
            raise SystemExit(f"{name}: dtype {t.dtype}, config says {dtype}")
    print(f"ok: {d} loads into {model}")
    if args.x:
        x = torch.from_numpy(np.load(args.x)).to(DTYPES[dtype])
        norm = cfg.get("normalization")
        if norm:
            x = (x - torch.tensor(norm["mean"], dtype=x.dtype)) / torch.tensor(norm["std"], dtype=x.dtype)
        with torch.no_grad():
            y = model(x).numpy()
        want = np.load(args.y)
        scale = max(1.0, float(np.abs(want).max()))
        err = float(np.abs(y - want).max()) / scale
        tol = 1e-12 if dtype == "f64" else 1e-5
        if err > tol:
            raise SystemExit(f"forward mismatch: max relative error {err:.3e} > {tol:.0e}")
        print(f"ok: torch forward matches backprop's predictions (max rel. error {err:.2e})")


def save(args):
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    layers = [int(s) for s in args.layers.split(",")]
    acts = args.activations.split(",")
    model = build(layers, acts, not args.no_bias, args.dtype)
    save_file(model.state_dict(), str(d / "model.safetensors"))
    # What a user would write by hand: no dtype (taken from the tensors), no names.
    (d / "config.json").write_text(json.dumps({"layers": layers, "activations": acts, "bias": not args.no_bias}))
    x = torch.randn(7, layers[0], dtype=DTYPES[args.dtype])
    with torch.no_grad():
        y = model(x)
    np.save(d / "x.npy", x.numpy())
    np.save(d / "torch_y.npy", y.numpy())
    print(f"ok: wrote {model} to {d}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("load")
    pl.add_argument("dir")
    pl.add_argument("--x")
    pl.add_argument("--y")
    ps = sub.add_parser("save")
    ps.add_argument("dir")
    ps.add_argument("--layers", default="4,5,3")
    ps.add_argument("--activations", default="relu,identity")
    ps.add_argument("--dtype", default="f32", choices=["f32", "f64"])
    ps.add_argument("--no-bias", action="store_true")
    ps.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    try:
        load(args) if args.cmd == "load" else save(args)
    except RuntimeError as e:  # load_state_dict's strict errors
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
