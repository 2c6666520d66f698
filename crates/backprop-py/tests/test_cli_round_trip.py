"""Model directories round-trip between Python and the `backprop` CLI.

The CLI binary is found through $BACKPROP_CLI (scripts/test-python.sh builds it and sets it).
Each test is skipped when the CLI, or the subcommand it needs, is not available, and says so.
The flags used are the contract of issue 4: `init --layers … --activation … --seed … --out
DIR`, `grad --model DIR --data FILE.npz --json` (JSON `loss` and `gradients` keyed by tensor
name), `train … --out DIR`, `eval --model DIR --data … --json` (JSON `loss`).
"""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import backprop
from backprop import Mlp


def cli():
    path = os.environ.get("BACKPROP_CLI") or shutil.which("backprop")
    if not path or not os.path.exists(path):
        pytest.skip("the backprop CLI is not built (set BACKPROP_CLI)")
    return path


def require(subcommand):
    exe = cli()
    probe = subprocess.run([exe, subcommand, "--help"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"this CLI has no `{subcommand}` subcommand yet")
    return exe


def run(*args):
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, f"{' '.join(map(str, args))} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 4))
    y = (x[:, :1] - x[:, 1:2] > 0).astype(float)
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=y)
    return path, x, y


def test_a_model_made_by_cli_init_loads_in_python(tmp_path):
    exe = require("init")
    out = tmp_path / "cli-model"
    run(exe, "init", "--layers", "4,5,1", "--activation", "sigmoid", "--init", "ones", "--no-bias",
        "--seed", "1", "--out", str(out))
    m = Mlp.load(out)
    assert m.layers == [4, 5, 1] and m.activations == ["sigmoid", "sigmoid"] and not m.bias
    # `--init ones` is the notebook's network: the notebook's forward value.
    assert abs(m.predict(np.array([0.01, 0.02, 0.03, 0.04]))[0] - 0.93244675427215695) < 1e-15


def test_cli_gradients_of_a_python_saved_model_equal_pythons(tmp_path, dataset):
    exe = require("grad")
    data, x, y = dataset
    m = Mlp([4, 6, 1], activation="tanh", output_activation="sigmoid", seed=5, loss="bce")
    m.save(tmp_path / "py-model")
    report = json.loads(run(exe, "grad", "--model", str(tmp_path / "py-model"), "--data", str(data), "--json"))
    loss, grads = m.loss_and_grad(x, y)
    assert report["loss"] == pytest.approx(loss, rel=1e-12)
    assert set(report["gradients"]) == set(grads)
    for name, g in grads.items():
        np.testing.assert_allclose(np.array(report["gradients"][name]), g, rtol=1e-10, atol=1e-15)


def test_a_model_trained_by_the_cli_predicts_the_same_in_python(tmp_path, dataset):
    exe = require("train")
    require("eval")
    data, x, y = dataset
    out = tmp_path / "trained"
    run(exe, "train", "--data", str(data), "--layers", "4,5,1", "--activation", "sigmoid", "--loss", "bce",
        "--optimizer", "gd", "--lr", "0.5", "--epochs", "50", "--seed", "2", "--quiet", "--out", str(out))
    m = Mlp.load(out)
    report = json.loads(run(exe, "eval", "--model", str(out), "--data", str(data), "--json"))
    # Python applies the model's saved standardisation (if any) exactly as the CLI does.
    assert m.loss(x, y) == pytest.approx(report["loss"], rel=1e-10)
    # ... and a Python-saved copy evaluates identically in the CLI.
    m.save(tmp_path / "resaved")
    again = json.loads(run(exe, "eval", "--model", str(tmp_path / "resaved"), "--data", str(data), "--json"))
    assert again["loss"] == pytest.approx(report["loss"], rel=1e-12)


def test_python_reads_and_writes_the_same_files_as_the_library(tmp_path):
    # Independent of the CLI: the files are the library's format (safetensors + config.json),
    # readable without backprop by the safetensors header layout.
    m = Mlp([3, 2], activation="identity", dtype="float32", seed=1)
    m.save(tmp_path / "m")
    raw = (tmp_path / "m" / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert header["0.weight"]["dtype"] == "F32" and header["0.weight"]["shape"] == [2, 3]
    start, end = header["0.weight"]["data_offsets"]
    weights = np.frombuffer(raw[8 + header_len + start : 8 + header_len + end], dtype="<f4").reshape(2, 3)
    np.testing.assert_array_equal(weights, m.state_dict()["0.weight"])
    assert backprop.Mlp.load(tmp_path / "m").dtype == "float32"
