"""backprop: gradients of neural networks by backpropagation, in Rust, from numpy.

The notebook's four functions, with the notebook's calling conventions::

    import numpy as np
    from backprop import sigmoid, grad_sigmoid, simple_feed_forward, simple_backpropagation

    x = np.array([0.01, 0.02, 0.03, 0.04])
    W = {"w_1": np.ones((4, 5)), "w_2": np.ones(5)}
    simple_feed_forward(x, W)            # 0.932446754272157
    simple_backpropagation(1, x, W)      # {"w_1": (4, 5) array, "w_2": (5,) array}

Errors are Python exceptions: ``ValueError`` for wrong shapes and values, ``OSError`` for
files (``FileFormatError``, both an ``OSError`` and a ``ValueError``, for malformed ones).
Long computations release the GIL.
"""

from ._backprop import (
    DivergedError,
    FileFormatError,
    __version__,
    grad_sigmoid,
    sigmoid,
    simple_backpropagation,
    simple_feed_forward,
)

__all__ = [
    "sigmoid",
    "grad_sigmoid",
    "simple_feed_forward",
    "simple_backpropagation",
    "FileFormatError",
    "DivergedError",
]
