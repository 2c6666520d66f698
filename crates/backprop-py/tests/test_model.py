"""backprop.Mlp from numpy: predictions, gradients, Hessians and HVPs against independent numpy
oracles (a numpy forward pass, central finite differences), float32 and float64, training,
model files and errors."""

import io
import json
import os

import numpy as np
import pytest

import backprop
from backprop import Mlp

ACT = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "identity": lambda z: z,
    "softplus": lambda z: np.logaddexp(0, z),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
}


def numpy_predict(model, x):
    """An independent forward pass from the state dict (torch.nn.Linear layout: out×in)."""
    sd = model.state_dict()
    a = np.asarray(x, dtype=float)
    names = [n for n in model.param_names if n.endswith(".weight")]
    for i, act in enumerate(model.activations):
        w = sd[names[i]]
        b = sd.get(names[i].replace("weight", "bias"), 0.0)
        a = ACT[act](a @ w.T + b)
    return a


def numpy_loss(model, x, y, loss):
    p = numpy_predict(model, x)
    y = np.asarray(y, dtype=float).reshape(p.shape[0], -1)
    if loss == "squared_error":
        return np.mean(0.5 * np.sum((p - y) ** 2, axis=1))
    if loss == "mse":
        return np.mean((p - y) ** 2)
    if loss == "bce":
        return np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    raise ValueError(loss)


def fd_gradient(model, x, y, loss, params="weights", h=1e-6):
    w0 = model.get_params(params)
    g = np.zeros_like(w0)
    m = model.copy()
    for i in range(w0.size):
        for sign in (1, -1):
            w = w0.copy()
            w[i] += sign * h
            m.set_params(w, params)
            g[i] += sign * m.loss(x, y, loss=loss) / (2 * h)
    return g


def flat_grad(model, grads, params="weights"):
    parts = []
    for name in model.param_names:
        if name.endswith(".weight") or params == "all":
            parts.append(grads[name].ravel())
    return np.concatenate(parts)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.fixture
def data(rng):
    x = rng.normal(size=(12, 3))
    y = rng.uniform(size=(12, 2))
    return x, y


def test_the_notebook_network_reproduces_the_notebook():
    m = Mlp([4, 5, 1], activation="sigmoid", init="ones", bias=False)
    x = np.array([0.01, 0.02, 0.03, 0.04])
    assert m.predict(x).shape == (1,)
    assert abs(m.predict(x)[0] - 0.93244675427215695) < 1e-15
    g = m.grad(x[None, :], [1.0], loss="squared_error")
    nb = backprop.simple_backpropagation(1, x, {"w_1": np.ones((4, 5)), "w_2": np.ones(5)})
    np.testing.assert_allclose(g["0.weight"], nb["w_1"].T, rtol=1e-14)
    np.testing.assert_allclose(g["2.weight"][0], nb["w_2"], rtol=1e-14)


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "softplus", "identity"])
def test_predict_matches_a_numpy_forward_pass(data, act):
    x, _ = data
    m = Mlp([3, 6, 4, 2], activation=act, output_activation="identity", seed=3)
    np.testing.assert_allclose(m.predict(x), numpy_predict(m, x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss,out", [("squared_error", "identity"), ("mse", "tanh"), ("bce", "sigmoid")])
@pytest.mark.parametrize("params", ["weights", "all"])
def test_gradients_match_numpy_finite_differences(data, loss, out, params):
    x, y = data
    m = Mlp([3, 4, 2], activation="tanh", output_activation=out, seed=11)
    m.set_params(m.get_params("all") + 0.1, "all")  # non-zero biases
    value, grads = m.loss_and_grad(x, y, loss=loss)
    assert value == pytest.approx(numpy_loss(m, x, y, loss), rel=1e-12)
    assert set(grads) == set(m.param_names)
    for name, g in grads.items():
        assert g.shape == m.state_dict()[name].shape
    np.testing.assert_allclose(flat_grad(m, grads, params), fd_gradient(m, x, y, loss, params), rtol=1e-6, atol=1e-9)


def test_cross_entropy_gradients_match_finite_differences(rng):
    x = rng.normal(size=(10, 3))
    labels = rng.integers(0, 3, size=10)
    m = Mlp([3, 5, 3], activation="tanh", output_activation="identity", seed=2, loss="cross_entropy")
    _, grads = m.loss_and_grad(x, labels)
    logits = numpy_predict(m, x)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert m.loss(x, labels) == pytest.approx(-np.mean(logp[np.arange(10), labels]), rel=1e-12)
    np.testing.assert_allclose(flat_grad(m, grads), fd_gradient(m, x, labels, "cross_entropy"), rtol=1e-6, atol=1e-9)


def test_hessian_matches_finite_differences_of_gradients_and_is_symmetric(data):
    x, y = data
    m = Mlp([3, 4, 2], activation="sigmoid", output_activation="identity", seed=5)
    h = m.hessian(x, y)
    n = m.num_params()
    assert h.shape == (n, n) and h.dtype == np.float64
    np.testing.assert_array_equal(h, h.T)
    w0 = m.get_params()
    fd = np.zeros((n, n))
    eps = 1e-5
    for i in range(n):
        for sign in (1, -1):
            mm = m.copy()
            w = w0.copy()
            w[i] += sign * eps
            mm.set_params(w)
            fd[i] += sign * flat_grad(mm, mm.grad(x, y)) / (2 * eps)
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-8)
    assert backprop.hessian(m, x, y).shape == (n, n)


def test_hvp_equals_hessian_times_vector(data, rng):
    x, y = data
    m = Mlp([3, 4, 2], activation="tanh", output_activation="identity", seed=5)
    for params in ("weights", "all"):
        h = m.hessian(x, y, params=params)
        v = rng.normal(size=h.shape[0])
        np.testing.assert_allclose(m.hvp(x, y, v, params=params), h @ v, rtol=1e-10, atol=1e-12)
        vs = rng.normal(size=(3, h.shape[0]))
        np.testing.assert_allclose(backprop.hvp(m, x, y, vs, params=params), vs @ h, rtol=1e-10, atol=1e-12)


def test_matrix_free_spectrum_matches_numpy_on_the_dense_hessian(rng):
    x = rng.normal(size=(40, 5))
    y = rng.normal(size=(40, 1))
    m = Mlp([5, 6, 1], activation="tanh", output_activation="identity", seed=3)
    lam = np.linalg.eigvalsh(m.hessian(x, y))  # numpy's LAPACK, increasing
    r = m.eigenvalues(x, y, top=3, bottom=2, vectors=True, max_steps=100)
    assert r["converged"] and r["steps"] <= len(lam)
    np.testing.assert_allclose(r["top"], lam[::-1][:3], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(r["bottom"], lam[:2], rtol=1e-8, atol=1e-10)
    assert max(r["top_residuals"]) < 1e-6 and r["top_vectors"].shape == (len(lam), 3)
    t = m.trace(x, y, probes=400, seed=1)
    assert abs(t["trace"] - lam.sum()) < 5 * t["std_error"] + 1e-9
    d = m.spectral_density(x, y, probes=4, steps=30)
    assert abs(np.sum(d["weights"]) - 1) < 1e-9
    g, f = d["grid"], d["density"]
    assert abs(np.sum(np.diff(g) * (f[1:] + f[:-1]) / 2) - 1) < 0.05


def test_gauss_newton_is_positive_semidefinite(data):
    x, y = data
    m = Mlp([3, 4, 2], activation="tanh", output_activation="identity", seed=5)
    values, vectors = backprop.eigh(m.hessian(x, y, curvature="gauss_newton"))
    assert values[-1] > -1e-10
    assert np.all(np.diff(values) <= 0)  # decreasing, as in the notebook
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(len(values)), atol=1e-10)


def test_float32_models_compute_in_float32(data):
    x, y = data
    m64 = Mlp([3, 4, 2], activation="tanh", seed=1)
    m32 = m64.astype(np.float32)
    assert m32.dtype == "float32" and m64.dtype == "float64"
    p32 = m32.predict(x)
    assert p32.dtype == np.float32
    np.testing.assert_allclose(p32, m64.predict(x), rtol=1e-5, atol=1e-6)
    g32 = m32.grad(x, y)
    assert all(g.dtype == np.float32 for g in g32.values())
    np.testing.assert_allclose(g32["0.weight"], m64.grad(x, y)["0.weight"], rtol=1e-4, atol=1e-6)
    assert Mlp([2, 1], dtype="float32").dtype == "float32"


def test_same_seed_same_weights_and_init_names():
    a = Mlp([3, 5, 1], seed=42).state_dict()
    b = Mlp([3, 5, 1], seed=42).state_dict()
    c = Mlp([3, 5, 1], seed=43).state_dict()
    np.testing.assert_array_equal(a["0.weight"], b["0.weight"])
    assert not np.array_equal(a["0.weight"], c["0.weight"])
    assert np.all(Mlp([2, 2], init="constant:0.5").state_dict()["0.weight"] == 0.5)


def test_state_dict_round_trips_and_names_follow_torch_sequential():
    m = Mlp([4, 8, 3, 1], activations=["relu", "identity", "sigmoid"])
    assert m.param_names == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"]
    sd = {k: v * 2 for k, v in m.state_dict().items()}
    m.load_state_dict(sd)
    np.testing.assert_array_equal(m.state_dict()["2.weight"], sd["2.weight"])
    with pytest.raises(ValueError, match="must have shape"):
        m.load_state_dict(dict(sd, **{"0.weight": np.ones((4, 8))}))
    with pytest.raises(ValueError, match="unexpected key"):
        m.load_state_dict(dict(sd, extra=np.ones(2)))
    with pytest.raises(ValueError, match="non-finite"):
        m.load_state_dict(dict(sd, **{"0.bias": np.full(8, np.nan)}))


def test_training_fits_the_notebooks_iris_task():
    d = backprop.load_dataset("iris", classes=["versicolor", "virginica"])
    x = (d["x"] - d["x"].mean(0)) / d["x"].std(0)
    m = Mlp([4, 5, 1], activation="sigmoid", seed=0, loss="bce")
    before = m.loss(x, d["y"])
    hist = m.train(x, d["y"], optimizer="gd", lr=0.5, epochs=500, progress=False)
    assert isinstance(hist, backprop.TrainingHistory) and hist.outcome == "completed"
    assert list(hist["epoch"]) == list(range(1, 501))
    assert hist["loss"][-1] < before and hist["accuracy"][-1] > 0.9
    assert m.loss(x, d["y"]) < hist["loss"][0]
    assert m.default_loss == "bce"


def test_training_is_deterministic_and_supports_sgd_adam_validation_and_l2(rng):
    x = rng.normal(size=(64, 3))
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) > 0).astype(float)
    runs = []
    for _ in range(2):
        m = Mlp([3, 6, 1], activation="tanh", output_activation="sigmoid", seed=4)
        h = m.train(x[:48], y[:48], loss="bce", optimizer="adam", lr=0.01, epochs=30, batch_size=8,
                    l2=1e-3, seed=9, validation=(x[48:], y[48:]), progress=False)
        runs.append((m.get_params("all"), h))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert "val_loss" in runs[0][1] and np.all(runs[0][1]["penalty"] > 0)
    m = Mlp([3, 6, 1], activation="tanh", output_activation="sigmoid", seed=4)
    h = m.train(x, y, loss="bce", optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, epochs=5, batch_size=16, progress=False)
    assert len(h["loss"]) == 5


def test_progress_callback_is_called_and_can_stop_training(data):
    x, y = data
    calls = []

    def cb(epoch, total, record):
        calls.append((epoch, total, record["loss"]))
        return epoch >= 1  # stop at the first report

    m = Mlp([3, 4, 2], activation="tanh", output_activation="identity")
    h = m.train(x, y, epochs=100000, lr=0.01, progress=cb)
    assert calls and calls[0][1] == 100000
    assert h.outcome == "stopped" and len(h["loss"]) < 100000


def test_plain_progress_bar_writes_lines_to_a_log(data):
    from backprop._progress import PlainBar

    stream = io.StringIO()
    bar = PlainBar(10, "train", stream=stream, delay=0)
    for e in range(1, 11):
        bar.update(e, {"loss": 1.0 / e, "accuracy": 0.5})
    bar.close()
    out = stream.getvalue()
    assert "10/10 epochs" in out and "loss 0.1" in out and "\r" not in out
    x, y = data
    Mlp([3, 2], activation="identity").train(x, y, epochs=3, lr=0.01, progress="plain")
    Mlp([3, 2], activation="identity").train(x, y, epochs=3, lr=0.01, progress="tqdm")


def test_divergence_raises_and_keeps_the_last_good_weights(data):
    x, y = data
    m = Mlp([3, 8, 2], activation="relu", output_activation="identity", seed=0)
    with pytest.raises(backprop.DivergedError, match="diverged at epoch") as info:
        m.train(x * 1e3, y, optimizer="gd", lr=1e6, epochs=200, progress=False)
    assert info.value.epoch >= 1 and not np.isfinite(info.value.loss)
    assert np.all(np.isfinite(m.get_params("all")))


def test_training_releases_the_gil(data):
    from test_errors import largest_python_pause

    x, y = data
    m = Mlp([3, 64, 2], activation="tanh", output_activation="identity")
    big_x = np.repeat(x, 200, axis=0)
    big_y = np.repeat(y, 200, axis=0)
    assert largest_python_pause(lambda: m.train(big_x, big_y, epochs=40, lr=0.01, progress=False)) < 0.5


def test_save_and_load_round_trip_in_both_dtypes(tmp_path, data):
    x, _ = data
    for dtype in ("float64", "float32"):
        m = Mlp([3, 4, 2], activations=["tanh", "identity"], dtype=dtype, seed=8, loss="mse")
        m.save(tmp_path / dtype)
        files = sorted(os.listdir(tmp_path / dtype))
        assert files == ["config.json", "model.safetensors"]
        cfg = json.loads((tmp_path / dtype / "config.json").read_text())
        assert cfg["layers"] == [3, 4, 2] and cfg["activations"] == ["tanh", "identity"] and cfg["loss"] == "mse"
        back = Mlp.load(tmp_path / dtype)
        assert isinstance(back, Mlp) and back.dtype == dtype and back.default_loss == "mse"
        np.testing.assert_array_equal(back.predict(x), m.predict(x))
        assert back.config["layers"] == [3, 4, 2]


def test_file_errors_are_oserrors(tmp_path):
    with pytest.raises(FileNotFoundError):
        Mlp.load(tmp_path / "missing")
    bad = tmp_path / "bad"
    Mlp([2, 1]).save(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(backprop.FileFormatError) as info:
        Mlp.load(bad)
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)
    assert "config.json" in str(info.value)
    Mlp([2, 1]).save(bad)
    (bad / "model.safetensors").write_bytes(b"\x00\x01truncated")
    with pytest.raises(OSError, match="model.safetensors"):
        Mlp.load(bad)


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (lambda m, x, y: m.predict(np.ones((2, 5))), ValueError, r"model takes 3 inputs|must be \(n, 3\)|3 inputs"),
        (lambda m, x, y: m.predict(np.ones((2, 3, 1))), ValueError, r"must be \(n, 3\)"),
        (lambda m, x, y: m.loss(x, y[:5]), ValueError, r"rows"),
        (lambda m, x, y: m.loss(x, y, loss="hinge"), ValueError, r"`hinge` is not one of"),
        (lambda m, x, y: m.grad(np.full((12, 3), np.nan), y), ValueError, r"non-finite"),
        (lambda m, x, y: m.hessian(x, y, params="some"), ValueError, r"`some` is not one of weights, all"),
        (lambda m, x, y: m.hessian(x, y, curvature="fisher"), ValueError, r"`fisher` is not one of"),
        (lambda m, x, y: m.hvp(x, y, np.ones(3)), ValueError, r"3|shape"),
        (lambda m, x, y: m.train(x, y, lr=-1, progress=False), ValueError, r"lr"),
        (lambda m, x, y: m.train(x, y, optimizer="lbfgs", progress=False), ValueError, r"`lbfgs` is not one of gd, sgd, adam"),
        (lambda m, x, y: m.train(x, y, progress="fancy"), ValueError, r"progress"),
        (lambda m, x, y: m.set_params(np.ones(3)), ValueError, r"parameters, got 3"),
        (lambda m, x, y: Mlp([3, 0, 1]), ValueError, r"width"),
        (lambda m, x, y: Mlp([3, 1], activation="swish"), ValueError, r"swish"),
        (lambda m, x, y: Mlp([3, 1], dtype="int8"), ValueError, r"dtype"),
        (lambda m, x, y: m.loss(x, np.full((12, 2), 2.0), loss="bce"), ValueError, r"."),
    ],
)
def test_bad_input_raises_clear_value_errors(data, call, exc, message):
    x, y = data
    m = Mlp([3, 4, 2], activation="tanh", output_activation="sigmoid")
    with pytest.raises(exc, match=message):
        call(m, x, y)


def test_shrinkage_is_exact_for_a_quadratic_loss(rng):
    # A linear model with squared error: L is exactly quadratic, the prediction is exact.
    x = rng.normal(size=(40, 3))
    y = x @ np.array([[0.5], [-1.0], [2.0]]) + 0.1 * rng.normal(size=(40, 1))
    m = Mlp([3, 1], activation="identity", bias=False)
    w_star = np.linalg.lstsq(x, y, rcond=None)[0].ravel()
    m.set_params(w_star)
    report = backprop.shrinkage(m, x, y, [0.01, 0.1, 1.0])
    assert [r["mu"] for r in report["results"]] == [0.01, 0.1, 1.0]
    h = x.T @ x / len(x)
    values = np.linalg.eigvalsh(h)[::-1]
    np.testing.assert_allclose(report["eigenvalues"], values, rtol=1e-10)
    for r in report["results"]:
        assert r["relative_error"] < 1e-8
        exact = np.linalg.solve(h + r["mu"] * np.eye(3), h @ w_star)  # (H + μI)⁻¹ H w*
        np.testing.assert_allclose(r["predicted"], exact, rtol=1e-10)
        np.testing.assert_allclose(r["measured"], exact, rtol=1e-6)
        for d in r["directions"]:
            assert d["predicted"] == pytest.approx(d["eigenvalue"] / (d["eigenvalue"] + r["mu"]))
    assert report["eigenvectors"].shape == (3, 3)


def test_shrinkage_with_a_base_penalty_starts_from_the_penalised_minimum(rng):
    # From weights that are no minimum at all, base_mu = μ₀ first minimises L + (μ₀/2)‖w‖²;
    # each μ is then extra: for a quadratic L the prediction is (H + (μ₀+μ)I)⁻¹Xᵀy/n exactly.
    x = rng.normal(size=(30, 3))
    y = rng.normal(size=(30, 1))
    m = Mlp([3, 1], activation="identity", bias=False, init="ones")
    mu0 = 0.05
    report = backprop.shrinkage(m, x, y, [0.01, 1.0], base_mu=mu0)
    assert report["base_mu"] == mu0 and report["base_minimizer"]["positive_definite"]
    h, xty = x.T @ x / len(x), x.T @ y[:, 0] / len(x)
    np.testing.assert_allclose(report["eigenvalues"], np.linalg.eigvalsh(h)[::-1] + mu0, rtol=1e-10)
    for r in report["results"]:
        exact = np.linalg.solve(h + (mu0 + r["mu"]) * np.eye(3), xty)
        np.testing.assert_allclose(r["predicted"], exact, rtol=1e-9)
        assert r["relative_error"] < 1e-8


def test_ctrl_c_stops_training_and_keeps_the_weights_reached():
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import numpy as np, backprop, signal\n"
        # A runner started with SIGINT ignored (`nohup cmd &`) passes that on, and Python then
        # installs no KeyboardInterrupt handler: the child restores it.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "x = np.random.default_rng(0).normal(size=(200, 3)); y = x[:, :1]\n"
        "m = backprop.Mlp([3, 16, 1], activation='tanh', output_activation='identity')\n"
        "w0 = m.get_params()\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    m.train(x, y, epochs=10**9, lr=1e-3, progress=False)\n"
        "except KeyboardInterrupt:\n"
        "    w = m.get_params()\n"
        "    print('interrupted', not np.array_equal(w0, w), bool(np.isfinite(w).all()), flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert out.strip() == "interrupted True True"
