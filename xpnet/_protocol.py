"""The layer protocol: what a layer declares, and how nets, summaries and device moves read it.

- ``params``/``grads``: lists; backward writes each grad in place, so the array objects
  never change (a second-book model collects them once).  ``W``/``dW`` and the like are
  names of ``params[i]``/``grads[i]`` through :class:`Slot` (public as ``xpnet.layers.Slot``).
- ``persistent``: a class attribute naming the buffers saved and moved with the net but
  not trained (BatchNormalization's ``("running_mean", "running_var")``); absent: none.
- ``takes_train_flg = True``: ``forward(x, train_flg=True)`` behaves differently in
  training (Dropout, BatchNormalization); absent: ``forward(x)``.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any

from array_api_compat import is_array_api_obj

from .backend import zeros_like

__all__ = ["Slot", "takes_train_flg", "persistent", "param", "zero_grads", "write_grad"]


class Slot:
    """``layer.W`` as another name of ``layer.params[0]`` (``dW``: ``grads[0]``), read and set.

    A layer names its parameters with it: ``W, b = Slot("params", 0), Slot("params", 1)``
    and ``dW, db = Slot("grads", 0), Slot("grads", 1)``.
    """

    def __init__(self, store: str, index: int) -> None:
        self.store, self.index = store, index

    def __get__(self, layer: Any, owner: type | None = None) -> Any:
        return self if layer is None else layer.__dict__[self.store][self.index]

    def __set__(self, layer: Any, value: Any) -> None:
        layer.__dict__[self.store][self.index] = value


def takes_train_flg(layer: Any) -> bool:
    """Whether ``layer.forward`` takes ``train_flg``: the layer's declaration; for a user's
    book-style class that declares nothing, whether its ``forward`` names the argument."""
    declared = getattr(type(layer), "takes_train_flg", None)
    if declared is not None:
        return bool(declared)
    try:
        return "train_flg" in inspect.signature(layer.forward).parameters
    except (TypeError, ValueError):
        return False


def persistent(layer: Any) -> tuple[str, ...]:
    """The names of ``layer``'s persistent buffers (its ``persistent`` declaration)."""
    return tuple(getattr(type(layer), "persistent", ()))


def param(name: str, value: Any) -> Any:
    """A layer's parameter as given: an array, or a real number where the book's arithmetic
    takes one (``BatchNormalization(gamma=1.0, beta=0.)``, ``Convolution(W, 0)``)."""
    if is_array_api_obj(value):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{name}: expected an array or a real number, got {type(value).__name__}")


def zero_grads(params: list[Any]) -> list[Any]:
    """A zero gradient per parameter, on its device and in its dtype (``0.0`` for a number)."""
    return [zeros_like(p) if is_array_api_obj(p) else 0.0 for p in params]


def write_grad(layer: Any, index: int, value: Any) -> None:
    """``layer.grads[index][...] = value``: the gradient keeps its array object (second-book
    models hold it); a number parameter's gradient (the book's broadcast shape) is bound anew."""
    grad = layer.grads[index]
    if is_array_api_obj(grad) and tuple(grad.shape) == tuple(value.shape):
        grad[...] = value
    else:
        layer.grads[index] = value
