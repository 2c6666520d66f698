# Type stubs for the native extension `backprop._backprop`.
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

class FileFormatError(OSError, ValueError): ...

class DivergedError(ValueError):
    epoch: int
    loss: float

ArrayLike = npt.ArrayLike

@overload
def sigmoid(t: float) -> float: ...
@overload
def sigmoid(t: ArrayLike) -> np.ndarray: ...
@overload
def grad_sigmoid(t: float) -> float: ...
@overload
def grad_sigmoid(t: ArrayLike) -> np.ndarray: ...
def simple_feed_forward(x: ArrayLike, W: Mapping[str, ArrayLike]) -> Union[float, np.ndarray]: ...
def simple_backpropagation(
    y: ArrayLike, x: ArrayLike, W: Mapping[str, ArrayLike]
) -> Dict[str, Union[np.ndarray, float]]: ...

Params = str  # "weights" (default, as in the notebook) or "all"

class Mlp:
    def __init__(
        self,
        layers: List[int],
        activation: str = "sigmoid",
        output_activation: Optional[str] = None,
        *,
        activations: Optional[List[str]] = None,
        bias: bool = True,
        init: str = "glorot_uniform",
        seed: int = 0,
        dtype: Any = None,
        loss: Optional[str] = None,
    ) -> None: ...
    @staticmethod
    def load(path: Any) -> "Mlp": ...
    def save(self, path: Any) -> None: ...
    @property
    def layers(self) -> List[int]: ...
    @property
    def activations(self) -> List[str]: ...
    @property
    def bias(self) -> bool: ...
    @property
    def dtype(self) -> str: ...
    default_loss: Optional[str]
    @property
    def param_names(self) -> List[str]: ...
    @property
    def config(self) -> Dict[str, Any]: ...
    def num_params(self, params: Params = "weights") -> int: ...
    def state_dict(self) -> Dict[str, np.ndarray]: ...
    def load_state_dict(self, tensors: Mapping[str, ArrayLike]) -> None: ...
    def get_params(self, params: Params = "weights") -> np.ndarray: ...
    def set_params(self, flat: ArrayLike, params: Params = "weights") -> None: ...
    def astype(self, dtype: Any) -> "Mlp": ...
    def copy(self) -> "Mlp": ...
    def predict(self, x: ArrayLike) -> np.ndarray: ...
    def loss(self, x: ArrayLike, y: ArrayLike, loss: Optional[str] = None) -> float: ...
    def loss_and_grad(
        self, x: ArrayLike, y: ArrayLike, loss: Optional[str] = None
    ) -> Tuple[float, Dict[str, np.ndarray]]: ...
    def grad(self, x: ArrayLike, y: ArrayLike, loss: Optional[str] = None) -> Dict[str, np.ndarray]: ...
    def hessian(
        self, x: ArrayLike, y: ArrayLike, loss: Optional[str] = None, params: Params = "weights", curvature: str = "hessian"
    ) -> np.ndarray: ...
    def hvp(
        self,
        x: ArrayLike,
        y: ArrayLike,
        v: ArrayLike,
        loss: Optional[str] = None,
        params: Params = "weights",
        curvature: str = "hessian",
    ) -> np.ndarray: ...
    def shrinkage(
        self,
        x: ArrayLike,
        y: ArrayLike,
        mus: List[float],
        loss: Optional[str] = None,
        params: Params = "weights",
        curvature: str = "hessian",
        *,
        base_mu: float = 0.0,
    ) -> Dict[str, Any]: ...
    def eigenvalues(
        self,
        x: ArrayLike,
        y: ArrayLike,
        top: int = 10,
        bottom: int = 0,
        *,
        loss: Optional[str] = None,
        params: Params = "weights",
        curvature: str = "hessian",
        tol: float = 1e-8,
        max_steps: int = 300,
        seed: int = 0,
        vectors: bool = False,
    ) -> Dict[str, Any]: ...
    def trace(
        self,
        x: ArrayLike,
        y: ArrayLike,
        probes: int = 100,
        *,
        loss: Optional[str] = None,
        params: Params = "weights",
        curvature: str = "hessian",
        seed: int = 0,
    ) -> Dict[str, Any]: ...
    def spectral_density(
        self,
        x: ArrayLike,
        y: ArrayLike,
        probes: int = 4,
        steps: int = 60,
        points: int = 400,
        bandwidth: Optional[float] = None,
        *,
        loss: Optional[str] = None,
        params: Params = "weights",
        curvature: str = "hessian",
        seed: int = 0,
    ) -> Dict[str, Any]: ...

def eigh(h: ArrayLike) -> Tuple[np.ndarray, np.ndarray]: ...
def load_dataset(
    spec: str, target: Union[str, List[str], None] = None, classes: Optional[List[str]] = None, dtype: Any = None
) -> Dict[str, Any]: ...
