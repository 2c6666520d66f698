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

from . import _backprop
from ._backprop import (
    DivergedError,
    FileFormatError,
    __version__,
    eigh,
    grad_sigmoid,
    load_dataset,
    sigmoid,
    simple_backpropagation,
    simple_feed_forward,
)
from ._progress import make_bar as _make_bar

__all__ = [
    "sigmoid",
    "grad_sigmoid",
    "simple_feed_forward",
    "simple_backpropagation",
    "Mlp",
    "TrainingHistory",
    "hessian",
    "hvp",
    "shrinkage",
    "eigh",
    "load_dataset",
    "FileFormatError",
    "DivergedError",
]


class TrainingHistory(dict):
    """Per-epoch columns of a training run (numpy arrays keyed ``epoch``, ``loss``,
    ``penalty``, and when measured ``accuracy``, ``rmse``, ``val_loss``, ``val_accuracy``,
    ``val_rmse``), plus ``outcome``: "completed", "early_stopped" or "stopped"."""

    outcome: str

    def __init__(self, columns, outcome):
        super().__init__(columns)
        self.outcome = outcome

    def __repr__(self):
        n = len(self.get("epoch", []))
        last = {k: float(v[-1]) for k, v in self.items() if k != "epoch" and n}
        return f"TrainingHistory({n} epochs, outcome={self.outcome!r}, last={last})"


class Mlp(_backprop.Mlp):
    __doc__ = _backprop.Mlp.__doc__

    def train(
        self,
        x,
        y,
        *,
        loss=None,
        optimizer="gd",
        lr=0.1,
        epochs=100,
        batch_size=None,
        l2=0.0,
        weight_decay=0.0,
        momentum=0.0,
        nesterov=False,
        seed=0,
        shuffle=True,
        validation=None,
        patience=None,
        min_delta=0.0,
        progress=True,
    ):
        """Trains the model in place on (x, y) and returns its TrainingHistory.

        optimizer: "gd" (full-batch gradient descent, the notebook's), "sgd" (minibatches of
        ``batch_size``, with ``momentum`` and ``nesterov``) or "adam". ``l2`` adds the penalty
        (μ/2)‖w‖² on the weights (never the biases); ``weight_decay`` is decoupled (AdamW-style)
        decay. ``validation=(x_val, y_val)`` is evaluated after each epoch; ``patience`` enables
        early stopping on the validation (else training) loss, restoring the best weights.
        ``seed`` fixes the minibatch shuffling: same seed, bit-identical run.

        progress: True (tqdm if installed — a widget in Jupyter — else a plain stderr bar; shown
        only for runs longer than a second), "tqdm", "plain", False, or a callable
        ``f(epoch, total, record) -> bool`` called about every 0.1 s (return True to stop).

        The GIL is released while training. Ctrl-C stops after the current epoch: the model
        keeps the weights reached and KeyboardInterrupt is raised. A NaN/Inf loss raises
        DivergedError and leaves the last good weights. Each call starts a fresh optimiser.
        """
        bar = _make_bar(progress, epochs)
        if bar is None:
            callback = None
        elif hasattr(bar, "update"):
            def callback(epoch, total, record):
                bar.update(epoch, record)
                return False
        else:
            callback = bar
        try:
            columns, outcome = self._train(
                x,
                y,
                loss=loss,
                optimizer=optimizer,
                lr=lr,
                epochs=epochs,
                batch_size=batch_size,
                l2=l2,
                weight_decay=weight_decay,
                momentum=momentum,
                nesterov=nesterov,
                seed=seed,
                shuffle=shuffle,
                validation=validation,
                patience=patience,
                min_delta=min_delta,
                callback=callback,
            )
        finally:
            if bar is not None and hasattr(bar, "close"):
                bar.close()
        return TrainingHistory(columns, outcome)

    @staticmethod
    def load(path):
        """Mlp.load(path) -> Mlp: loads a model directory (model.safetensors + config.json)
        written by ``save``, by the backprop CLI, or by hand for PyTorch weights."""
        return Mlp._wrap(_backprop.Mlp.load(path))

    def astype(self, dtype):
        """A copy in another precision ("float32" or "float64")."""
        return Mlp._wrap(super().astype(dtype))

    def copy(self):
        """A deep copy."""
        return Mlp._wrap(super().copy())

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    @staticmethod
    def _wrap(native):
        m = Mlp.__new__(Mlp, [1, 1])
        m._assign(native)
        return m


def hessian(model, x, y, loss=None, params="weights", curvature="hessian"):
    """The exact Hessian of ``model``'s mean loss on (x, y); see ``Mlp.hessian``."""
    return model.hessian(x, y, loss=loss, params=params, curvature=curvature)


def hvp(model, x, y, v, loss=None, params="weights", curvature="hessian"):
    """The Hessian-vector product H·v without forming H; see ``Mlp.hvp``."""
    return model.hvp(x, y, v, loss=loss, params=params, curvature=curvature)


def shrinkage(model, x, y, mus, loss=None, params="weights", curvature="hessian", *, base_mu=0.0):
    """The notebook's L2-shrinkage analysis, predicted and measured; see ``Mlp.shrinkage``."""
    return model.shrinkage(x, y, mus, loss=loss, params=params, curvature=curvature, base_mu=base_mu)
