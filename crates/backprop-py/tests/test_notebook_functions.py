"""The notebook's four functions: values, shapes, dtypes and gradients against independent
numpy oracles (closed forms and central finite differences)."""

import warnings

import numpy as np
import pytest

import backprop
from backprop import grad_sigmoid, sigmoid, simple_backpropagation, simple_feed_forward


def numpy_forward(x, W):
    """An independent forward pass in plain numpy (the notebook's formulas)."""
    b_1 = np.ravel(W.get("b_1", 0.0))
    b_2 = float(np.ravel(W.get("b_2", 0.0))[0])
    x_1 = 1.0 / (1.0 + np.exp(-(x @ W["w_1"] + b_1)))
    return 1.0 / (1.0 + np.exp(-(x_1 @ np.ravel(W["w_2"]) + b_2)))


def loss(y, x, W):
    return 0.5 * (numpy_forward(x, W) - y) ** 2


def finite_difference_grads(y, x, W, h=1e-6):
    """Central differences of the numpy loss for every entry of every parameter."""
    grads = {}
    for key, value in W.items():
        value = np.asarray(value, dtype=float)
        g = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus = {k: np.array(v, dtype=float) for k, v in W.items()}
            minus = {k: np.array(v, dtype=float) for k, v in W.items()}
            plus[key][idx] += h
            minus[key][idx] -= h
            g[idx] = (loss(y, x, plus) - loss(y, x, minus)) / (2 * h)
        grads[key] = g
    return grads


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# --- sigmoid and grad_sigmoid --------------------------------------------------------------------


def test_sigmoid_of_a_number_is_a_float():
    assert sigmoid(0.0) == 0.5
    assert isinstance(sigmoid(0.0), float)
    assert isinstance(sigmoid(1), float)  # ints too, like numpy
    assert isinstance(sigmoid(np.float64(2.0)), float)
    assert sigmoid(1) == pytest.approx(1 / (1 + np.exp(-1)), rel=1e-15)
    assert grad_sigmoid(0.0) == 0.25


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4), (1, 1, 1, 5)])
def test_sigmoid_keeps_any_shape_and_matches_numpy(rng, shape):
    t = rng.normal(scale=5, size=shape)
    e = np.exp(-np.abs(t))  # σ'(t) = e^-|t| / (1 + e^-|t|)², exact in both tails
    np.testing.assert_allclose(sigmoid(t), 1 / (1 + np.exp(-t)), rtol=1e-15, atol=0)
    np.testing.assert_allclose(grad_sigmoid(t), e / (1 + e) ** 2, rtol=1e-14, atol=0)
    assert sigmoid(t).shape == shape and grad_sigmoid(t).shape == shape


def test_sigmoid_accepts_lists_ints_and_strided_views(rng):
    np.testing.assert_allclose(sigmoid([[0, 1], [2, 3]]), 1 / (1 + np.exp(-np.arange(4.0).reshape(2, 2))))
    np.testing.assert_allclose(sigmoid(np.arange(6)), 1 / (1 + np.exp(-np.arange(6.0))))
    t = rng.normal(size=(6, 8))
    view = t[::2, 1::3].T  # non-contiguous, transposed
    np.testing.assert_allclose(sigmoid(view), 1 / (1 + np.exp(-view)), rtol=1e-15)


def test_sigmoid_keeps_float32():
    t = np.linspace(-5, 5, 11, dtype=np.float32)
    assert sigmoid(t).dtype == np.float32
    assert grad_sigmoid(t).dtype == np.float32
    np.testing.assert_allclose(sigmoid(t), 1 / (1 + np.exp(-t.astype(np.float64))), rtol=1e-6)


def test_sigmoid_is_stable_in_both_tails():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings, unlike the naive numpy formula
        t = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
        s = sigmoid(t)
        g = grad_sigmoid(t)
    assert s[0] == 0.0 and s[-1] == 1.0
    assert s[1] == pytest.approx(4.248354255291589e-18, rel=1e-14)  # full relative accuracy
    assert g[1] == pytest.approx(4.248354255291589e-18, rel=1e-14)
    assert g[3] == pytest.approx(4.248354255291589e-18, rel=1e-14)  # 1 - σ would round to 0


def test_grad_sigmoid_matches_finite_differences(rng):
    t = rng.normal(scale=3, size=50)
    h = 1e-6
    fd = (sigmoid(t + h) - sigmoid(t - h)) / (2 * h)
    np.testing.assert_allclose(grad_sigmoid(t), fd, rtol=1e-6, atol=1e-9)


def test_large_arrays_work(rng):
    t = rng.normal(size=(300, 300))  # above the size where the GIL is released
    np.testing.assert_allclose(sigmoid(t), 1 / (1 + np.exp(-t)), rtol=1e-15)


def test_sigmoid_propagates_nan_like_a_ufunc():
    out = sigmoid(np.array([np.nan, 0.0]))
    assert np.isnan(out[0]) and out[1] == 0.5


# --- simple_feed_forward and simple_backpropagation --------------------------------------------


def notebook_data():
    x = np.array([0.01, 0.02, 0.03, 0.04])
    W = {"w_1": np.ones((4, 5)), "w_2": np.ones(5)}
    return x, W


def test_feed_forward_matches_the_notebook_value():
    x, W = notebook_data()
    y_hat = simple_feed_forward(x, W)
    assert isinstance(y_hat, float)
    assert abs(y_hat - 0.93244675427215695) < 1e-15


def test_backpropagation_returns_the_notebooks_keys_shapes_and_values():
    x, W = notebook_data()
    g = simple_backpropagation(1, x, W)
    assert list(g) == ["w_1", "w_2"]
    assert g["w_1"].shape == (4, 5) and g["w_2"].shape == (5,)
    assert g["w_1"].dtype == np.float64
    np.testing.assert_allclose(g["w_2"], -0.00223387, rtol=1e-5)
    np.testing.assert_allclose(g["w_1"][:, 0], [-1.06113639e-05, -2.12227277e-05, -3.18340916e-05, -4.24454555e-05], rtol=1e-8)


@pytest.mark.parametrize("with_biases", [False, True])
@pytest.mark.parametrize("d,k", [(4, 5), (1, 1), (7, 3)])
def test_gradients_match_numpy_finite_differences(rng, d, k, with_biases):
    x = rng.normal(size=d)
    W = {"w_1": rng.normal(size=(d, k)), "w_2": rng.normal(size=k)}
    if with_biases:
        W["b_1"] = rng.normal(size=k)
        W["b_2"] = float(rng.normal())
    y = 0.3
    assert simple_feed_forward(x, W) == pytest.approx(float(numpy_forward(x, W)), rel=1e-14)
    ours = simple_backpropagation(y, x, W)
    fd = finite_difference_grads(y, x, W)
    assert set(ours) == set(W)
    for key in W:
        np.testing.assert_allclose(ours[key], fd[key], rtol=1e-6, atol=1e-10, err_msg=key)
        assert np.shape(ours[key]) == np.shape(W[key])


def test_gradients_come_back_in_the_shapes_given(rng):
    x = rng.normal(size=4)
    W = {"w_1": rng.normal(size=(4, 3)), "w_2": rng.normal(size=(3, 1)), "b_1": rng.normal(size=(1, 3)), "b_2": np.array([0.1])}
    g = simple_backpropagation(1.0, x, W)
    assert g["w_2"].shape == (3, 1) and g["b_1"].shape == (1, 3) and g["b_2"].shape == (1,)
    flat = {"w_1": W["w_1"], "w_2": W["w_2"].ravel(), "b_1": W["b_1"].ravel(), "b_2": 0.1}
    g_flat = simple_backpropagation(1.0, x, flat)
    np.testing.assert_allclose(g["w_2"].ravel(), g_flat["w_2"], rtol=1e-15)
    assert isinstance(g_flat["b_2"], float)
    assert g["b_2"][0] == g_flat["b_2"]


def test_inputs_may_be_lists_ints_and_float32(rng):
    x, W = notebook_data()
    as_lists = {"w_1": W["w_1"].astype(int).tolist(), "w_2": [1, 1, 1, 1, 1]}
    assert simple_feed_forward(x.tolist(), as_lists) == simple_feed_forward(x, W)
    g32 = simple_backpropagation(np.float32(1), x.astype(np.float32), {k: v.astype(np.float32) for k, v in W.items()})
    np.testing.assert_allclose(g32["w_2"], simple_backpropagation(1, x, W)["w_2"], rtol=1e-6)
    assert simple_backpropagation(np.array(1), x, W)["w_2"][0] == simple_backpropagation(1.0, x, W)["w_2"][0]


def test_batches_give_predictions_and_mean_gradients(rng):
    n, d, k = 6, 4, 5
    X = rng.normal(size=(n, d))
    Y = rng.uniform(size=n)
    W = {"w_1": rng.normal(size=(d, k)), "w_2": rng.normal(size=k), "b_1": rng.normal(size=k), "b_2": 0.2}
    y_hat = simple_feed_forward(X, W)
    assert y_hat.shape == (n,)
    np.testing.assert_allclose(y_hat, [simple_feed_forward(X[i], W) for i in range(n)], rtol=1e-14)
    mean = simple_backpropagation(Y, X, W)
    per_sample = [simple_backpropagation(Y[i], X[i], W) for i in range(n)]
    for key in W:
        np.testing.assert_allclose(mean[key], np.mean([g[key] for g in per_sample], axis=0), rtol=1e-12, atol=1e-16)
    same_target = simple_backpropagation(1, X, W)
    np.testing.assert_allclose(same_target["w_1"], simple_backpropagation(np.ones(n), X, W)["w_1"], rtol=1e-15)


def test_inputs_are_not_modified(rng):
    x, W = notebook_data()
    before = {k: v.copy() for k, v in W.items()}
    simple_backpropagation(1, x, W)
    for key in W:
        np.testing.assert_array_equal(W[key], before[key])


def test_module_exposes_the_notebook_names_in_all():
    for name in ["sigmoid", "grad_sigmoid", "simple_feed_forward", "simple_backpropagation"]:
        assert name in backprop.__all__
        assert callable(getattr(backprop, name))
    assert backprop.__version__
    assert "σ" in sigmoid.__doc__ and "W" in simple_backpropagation.__doc__
