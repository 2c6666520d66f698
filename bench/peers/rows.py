"""The rows every implementation measures: ids, shapes and work counts (flop), in one place.

crates/backprop/benches/compare.rs implements the same ids with the same shapes and data.
"""

NOTEBOOK = ["nb_fwd_1", "nb_fwdbwd_1", "nb_fwd_10k", "nb_fwdbwd_10k"]
DTYPES = ["f32", "f64"]
BATCHES = [32, 128, 1024]
MLP_SIZES = [784, 256, 256, 10]
MLP_LR = 0.01
CURV_SIZES = [150, 256, 256, 1]  # 104,192 weights (biases present, not differentiated)
CURV_SAMPLES = 1000
HESS_SIZES = [20, 50, 20, 1]  # 2,020 weights
HESS_SAMPLES = 256
LANCZOS_K = 10
LANCZOS_TOL = 1e-8  # relative Ritz residual for the top-k
LANCZOS_MAX = 400
EIGH_N = 2000
GEMM_NS = [256, 512, 1024, 2048]

MLP_KINDS = ["fwd", "fwdbwd", "step"]


def mlp_rows():
    return [f"mlp_{k}_{d}_b{b}" for d in DTYPES for b in BATCHES for k in MLP_KINDS]


CURVATURE = [
    "grad_150_256_256_1",
    "hvp_150_256_256_1",
    "hvp_at_150_256_256_1",
    "hess_nb",
    "hess_20_50_20_1",
    "lanczos10_150_256_256_1",
    "eigh_2000",
]


# Other shapes than the issue's: a short batch through a wide layer, a wide input, a long batch
# through a deep narrow net (ReLU, biases, softmax cross-entropy, SGD, like the MLP rows); the
# gradient and HVP of a sigmoid net on a batch shorter than its layers are wide (like the
# curvature rows). Each id spells its shape: kind, dtype, batch, widths.
SHAPES = [
    "shape_step_f32_b32_1024-4096-10",
    "shape_step_f64_b32_1024-4096-10",
    "shape_step_f32_b128_3072-1024-512-10",
    "shape_step_f64_b512_64-128-128-128-4",
    "shape_grad_f64_b32_1024-2048-10",
    "shape_hvp_f64_b32_1024-2048-10",
]


def parse_shape(row: str):
    """'shape_step_f32_b32_1024-4096-10' -> ('step', 'f32', 32, [1024, 4096, 10])."""
    _, kind, dt, b, sizes = row.split("_")
    return kind, dt, int(b[1:]), [int(s) for s in sizes.split("-")]


def gemm_rows():
    return [f"gemm_{d}_{n}" for d in DTYPES for n in GEMM_NS]


ALL = NOTEBOOK + mlp_rows() + CURVATURE + SHAPES + gemm_rows()


def parse_mlp(row: str):
    """'mlp_step_f32_b128' -> ('step', 'f32', 128)."""
    _, kind, dt, b = row.split("_")
    return kind, dt, int(b[1:])


def mlp_flop(kind: str, batch: int, sizes=None) -> float:
    """GEMM flop of an MLP (784-256-256-10 unless `sizes`): forward 2·B·Σ in·out; backward the
    weight gradients (2·B·in·out each) and the input gradients of every layer but the first."""
    sizes = sizes or MLP_SIZES
    pairs = list(zip(sizes[:-1], sizes[1:]))
    fwd = sum(2 * batch * i * o for i, o in pairs)
    if kind == "fwd":
        return float(fwd)
    bwd = sum(2 * batch * i * o for i, o in pairs) + sum(2 * batch * i * o for i, o in pairs[1:])
    return float(fwd + bwd)


def gemm_flop(n: int) -> float:
    return 2.0 * n**3


# Human-readable descriptions, for the table.
DESCRIPTION = {
    "nb_fwd_1": "notebook 4-5-1 f64, 1 sample, forward",
    "nb_fwdbwd_1": "notebook 4-5-1 f64, 1 sample, forward+backward",
    "nb_fwd_10k": "notebook 4-5-1 f64, 10,000 samples, forward",
    "nb_fwdbwd_10k": "notebook 4-5-1 f64, 10,000 samples, forward+backward",
    "grad_150_256_256_1": "gradient, 150-256-256-1 sigmoid f64, 1,000 samples",
    "hvp_150_256_256_1": "HVP, 150-256-256-1 sigmoid f64, 1,000 samples",
    "hvp_at_150_256_256_1": "HVP at a fixed point (forward pass and gradient graph reused), 150-256-256-1",
    "hess_nb": "exact Hessian, notebook 4-5-1 (25 weights), 1 sample",
    "hess_20_50_20_1": "exact Hessian, 20-50-20-1 sigmoid (2,020 weights), 256 samples",
    "lanczos10_150_256_256_1": "top-10 eigenvalues by Lanczos, 150-256-256-1 Hessian",
    "eigh_2000": "symmetric eigendecomposition, 2000×2000 f64",
}
for _r in mlp_rows():
    _k, _d, _b = parse_mlp(_r)
    DESCRIPTION[_r] = {
        "fwd": "MLP 784-256-256-10 {d} batch {b}, forward (loss)",
        "fwdbwd": "MLP 784-256-256-10 {d} batch {b}, forward+backward",
        "step": "MLP 784-256-256-10 {d} batch {b}, SGD training step",
    }[_k].format(d=_d, b=_b)
for _r in SHAPES:
    _k, _d, _b, _s = parse_shape(_r)
    _w = "-".join(map(str, _s))
    DESCRIPTION[_r] = {
        "step": f"MLP {_w} {_d} batch {_b}, SGD training step",
        "grad": f"gradient, {_w} sigmoid {_d}, {_b} samples",
        "hvp": f"HVP, {_w} sigmoid {_d}, {_b} samples",
    }[_k]
for _r in gemm_rows():
    _, _d, _n = _r.split("_")
    DESCRIPTION[_r] = f"GEMM {_n}×{_n}·{_n}×{_n} {_d}"
