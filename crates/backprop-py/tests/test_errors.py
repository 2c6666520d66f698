"""Bad input becomes a Python exception with a message that says what and where; no panic
crosses into Python; the GIL is released during long computations."""

import threading
import time

import numpy as np
import pytest

import backprop
from backprop import grad_sigmoid, sigmoid, simple_backpropagation, simple_feed_forward

X = np.array([0.01, 0.02, 0.03, 0.04])
W = {"w_1": np.ones((4, 5)), "w_2": np.ones(5)}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: simple_feed_forward(X[:3], W), r"x has 3 entries but w_1 is \[4, 5\]"),
        (lambda: simple_feed_forward(np.ones((2, 2, 4)), W), r"x .*must be 1-D, got an array of shape \(2, 2, 4\)"),
        (lambda: simple_feed_forward(np.ones((3, 5)), W), r"x is \[3, 5\] but w_1 is \[4, 5\]"),
        (lambda: simple_feed_forward(X, {"w_1": np.ones(4), "w_2": np.ones(5)}), r'W\["w_1"\] \(D, K\): must be 2-D, got an array of shape \(4,\)'),
        (lambda: simple_feed_forward(X, {"w_1": np.ones((4, 5)), "w_2": np.ones(4)}), r'W\["w_2"\]: must have 5 entries .*shape \(4, 5\).*got .*shape \(4,\)'),
        (lambda: simple_feed_forward(X, {"w_1": np.ones((4, 5)), "w_2": np.ones((5, 2))}), r'W\["w_2"\]: must have 5 entries'),
        (lambda: simple_feed_forward(X, dict(W, b_1=np.ones(3))), r'W\["b_1"\]: must have 5 entries'),
        (lambda: simple_feed_forward(X, dict(W, b_2=np.ones(2))), r'W\["b_2"\]: must have 1 entries'),
        (lambda: simple_feed_forward(X, {"w_1": np.ones((4, 5))}), r'W: has no "w_2"'),
        (lambda: simple_feed_forward(X, dict(W, w_3=1)), r"W: unknown key\(s\) 'w_3'"),
        (lambda: simple_feed_forward(X, dict(W, b1=1)), r"W: unknown key\(s\) 'b1'"),
        (lambda: simple_feed_forward(np.array([np.nan, 0, 0, 0]), W), r"non-finite value in x: element 0 is NaN"),
        (lambda: simple_feed_forward(X, {"w_1": np.full((4, 5), np.inf), "w_2": np.ones(5)}), r"non-finite value in w_1"),
        (lambda: simple_feed_forward("abc", W), r"x: cannot be read as an array of float64 numbers"),
        (lambda: simple_feed_forward([[1, 2], [3]], W), r"x: cannot be read as an array"),
        (lambda: simple_backpropagation(np.nan, X, W), r"non-finite value in y"),
        (lambda: simple_backpropagation([1, 0], X, W), r"y: one sample x needs one target, got an array of shape \(2,\)"),
        (lambda: simple_backpropagation(np.ones(2), np.ones((3, 4)), W), r"y: must have 3 entries \(one target per row of x\)"),
        (lambda: simple_backpropagation(1, np.ones((0, 4)), W), r"the batch is empty"),
        (lambda: sigmoid("abc"), r"t: cannot be read as an array of float64 numbers"),
    ],
)
def test_bad_values_and_shapes_raise_value_error_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_w_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="W must be a dict"):
        simple_feed_forward(X, [np.ones((4, 5)), np.ones(5)])
    with pytest.raises(TypeError, match="got NoneType"):
        simple_backpropagation(1, X, None)


def test_any_mapping_works_as_w():
    class Params:
        def __init__(self, d):
            self.d = d

        def keys(self):
            return self.d.keys()

        def __getitem__(self, k):
            return self.d[k]

        def __contains__(self, k):
            return k in self.d

    assert simple_feed_forward(X, Params(W)) == simple_feed_forward(X, W)


def test_exception_classes_are_exported_with_the_documented_bases():
    assert issubclass(backprop.FileFormatError, OSError)
    assert issubclass(backprop.FileFormatError, ValueError)
    assert issubclass(backprop.DivergedError, ValueError)
    assert backprop.FileFormatError.__module__ == "backprop"


def test_errors_are_ordinary_exceptions_not_panics():
    # A PanicException derives from BaseException and would escape `except Exception`.
    for call in [lambda: simple_feed_forward(X[:1], W), lambda: simple_backpropagation(1, X, {})]:
        try:
            call()
        except Exception as e:  # noqa: BLE001 - the point of the test
            assert type(e).__module__ in ("builtins", "backprop")
        else:
            pytest.fail("no exception")


def largest_python_pause(work):
    """The longest stretch, as a fraction of `work()`'s duration, in which another Python thread
    could not run while `work()` ran in this thread: about 1 when `work` holds the GIL
    throughout, small when it releases it."""
    stamps = []
    stop = threading.Event()

    def counter():
        while not stop.is_set():
            stamps.append(time.perf_counter())
            for _ in range(100):
                pass

    t = threading.Thread(target=counter)
    t.start()
    time.sleep(0.02)
    t0 = time.perf_counter()
    work()
    t1 = time.perf_counter()
    stop.set()
    t.join()
    inside = [t0] + [s for s in stamps if t0 < s < t1] + [t1]
    return max(b - a for a, b in zip(inside, inside[1:])) / (t1 - t0)


def test_long_computations_release_the_gil():
    big = np.random.default_rng(0).normal(size=3_000_000)
    assert largest_python_pause(lambda: sigmoid(big)) < 0.5


def test_the_gil_check_detects_a_held_gil():
    # The oracle itself: a long C loop that holds the GIL (the builtin sum over a range).
    assert largest_python_pause(lambda: sum(range(10_000_000))) > 0.5
