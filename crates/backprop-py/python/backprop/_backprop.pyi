# Type stubs for the native extension `backprop._backprop`.
from typing import Any, Dict, Mapping, Union, overload

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
