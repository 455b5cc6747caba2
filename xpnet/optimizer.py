"""Optimizers (both books' ``common/optimizer.py``).

``update(params, grads)`` takes the first book's dicts (``params["W1"]``) or the
second book's lists (``params[0]``, ``grads[0]``, in the same order).  Each entry
changes in place (the same array object, which the layers also hold); an entry
that is not a writable array (a Python float, a NumPy scalar, as the first
book's ``optimizer_compare_naive.py`` passes) is rebound instead.  State
(velocities, squared-gradient sums) is created at the first step in the params'
own container type, on their device and in their dtype.  Hyper-parameters are
Python floats, so float32 stays float32.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from typing import Any, Union

from array_api_compat import array_namespace, is_array_api_obj, is_writeable_array

from .backend import device_of
from .checks import real

Array = Any
Params = Union[dict[str, Any], list[Any]]


class Optimizer:
    """Base: argument checks and the state (``state_names``) for checkpoints."""

    state_names: tuple[str, ...] = ()

    def __init__(self, lr: float) -> None:
        self.lr = real("lr", lr, low=0.0, low_open=True)

    def update(self, params: Params, grads: Params) -> None:
        """Apply one step to ``params`` in place from ``grads``: two dicts with the same keys,
        or two lists (tuples) of the same length, entries of equal shapes and dtypes."""
        keys = _keys(params, grads)
        for key in keys:
            for what, value in (("params", params[key]), ("grads", grads[key])):
                if isinstance(value, bool) or not (is_array_api_obj(value) or isinstance(value, numbers.Real)):
                    raise TypeError(f"{what}[{key!r}]: expected an array or a real number, got {type(value).__name__}")
            if _shape(grads[key]) != _shape(params[key]):
                raise ValueError(f"grads[{key!r}]: expected shape {_shape(params[key])}, got {_shape(grads[key])}")
        with _activated(params, keys):
            self._step(params, grads, keys)

    def _step(self, params: Params, grads: Params, keys: list) -> None:
        raise NotImplementedError

    def _state(self, name: str, params: Params, keys: list) -> Params:
        """State ``name`` laid out like ``params``: zeros at the first step; a restored
        :meth:`state_dict` (string keys) is turned back into a list for list params."""
        value = getattr(self, name)
        if value is None:
            zeros = [_zeros_like(params[key]) for key in keys]
            value = dict(zip(keys, zeros)) if isinstance(params, dict) else zeros
        elif not isinstance(params, dict) and isinstance(value, dict):
            value = [value[str(key)] for key in keys]
        setattr(self, name, value)
        return value

    def state_dict(self) -> dict[str, Any]:
        """State as a flat dict: ``"v/W1"`` (``"v/0"`` for list params) -> array, ``"iter"`` -> int
        (no arrays before the first step).

        The arrays are copies on their own device: later steps (which update the state
        in place) leave them alone.
        """
        state: dict[str, Any] = {}
        for name in self.state_names:
            value = getattr(self, name)
            if isinstance(value, (dict, list)):
                items = value.items() if isinstance(value, dict) else enumerate(value)
                state.update({f"{name}/{key}": _copy(array) for key, array in items})
            elif value is not None:
                state[name] = value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (copies of the arrays, on the device they are given)."""
        for name in self.state_names:
            prefix = f"{name}/"
            arrays = {key[len(prefix):]: _copy(value) for key, value in state.items() if key.startswith(prefix)}
            if arrays:
                setattr(self, name, arrays)
            elif name in state:
                setattr(self, name, int(state[name]))


def _keys(params: Params, grads: Params) -> list:
    if isinstance(params, dict):
        if not isinstance(grads, dict):
            raise TypeError(f"grads: expected a dict like params, got {type(grads).__name__}")
        for key in params:
            if key not in grads:
                raise KeyError(f"grads: no gradient for parameter {key!r}")
        return list(params)
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params: expected a dict (first book) or a list (second book), got {type(params).__name__}")
    if not isinstance(grads, (list, tuple)) or len(grads) != len(params):
        got = f"{len(grads)} entries" if isinstance(grads, (list, tuple)) else type(grads).__name__
        raise ValueError(f"grads: expected a list of {len(params)} gradients (one per param), got {got}")
    return list(range(len(params)))


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(getattr(value, "shape", ()))


def _is_array(value: Any) -> bool:
    return is_array_api_obj(value) and is_writeable_array(value)


def _activated(params: Params, keys: list) -> contextlib.AbstractContextManager:
    """Pin the params' device (CuPy computes on the current GPU) for the step."""
    for key in keys:
        if _is_array(params[key]):
            return device_of(params[key]).activate()
    return contextlib.nullcontext()


def _zeros_like(value: Any) -> Any:
    if not _is_array(value):
        return 0.0 * value
    with device_of(value).activate():
        return array_namespace(value).zeros_like(value)


def _copy(value: Any) -> Any:
    """A copy of ``value`` on its own device (state is updated in place, so it must not be shared)."""
    if not _is_array(value):
        return value
    device = device_of(value)
    with device.activate():
        return device.xp.asarray(value, copy=True, device=device.native)


def _add(container: Params, key: Any, delta: Any) -> None:
    """``container[key] += delta``, in place for a writable array, else by rebinding the entry."""
    value = container[key]
    if _is_array(value):
        value += delta
    else:
        container[key] = value + delta


def _scale(container: Params, key: Any, factor: float) -> None:
    """``container[key] *= factor``, in place for a writable array, else by rebinding the entry."""
    value = container[key]
    if _is_array(value):
        value *= factor
    else:
        container[key] = value * factor


def _sqrt(value: Any) -> Any:
    return array_namespace(value).sqrt(value) if is_array_api_obj(value) else math.sqrt(value)


def _unit_interval(name: str, value: float, *, low_open: bool) -> float:
    return real(name, value, low=0.0, high=1.0, low_open=low_open, high_open=True)


class SGD(Optimizer):
    """``W -= lr * dW``."""

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(lr)

    def _step(self, params: Params, grads: Params, keys: list) -> None:
        for key in keys:
            _add(params, key, -self.lr * grads[key])


class Momentum(Optimizer):
    """``v = momentum * v - lr * dW;  W += v`` (``0 <= momentum < 1``)."""

    state_names = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = _unit_interval("momentum", momentum, low_open=False)
        self.v = None

    def _step(self, params: Params, grads: Params, keys: list) -> None:
        v = self._state("v", params, keys)
        for key in keys:
            _scale(v, key, self.momentum)
            _add(v, key, -self.lr * grads[key])
            _add(params, key, v[key])


class Nesterov(Momentum):
    """Nesterov's accelerated gradient (Bengio et al. 2013, eq. 7), the weights moving with the
    old velocity first: ``W += momentum**2 * v - (1 + momentum) * lr * dW``, then
    ``v = momentum * v - lr * dW``."""

    def _step(self, params: Params, grads: Params, keys: list) -> None:
        v = self._state("v", params, keys)
        m = self.momentum
        for key in keys:
            step = self.lr * grads[key]
            _add(params, key, (m * m) * v[key])
            _add(params, key, -(1.0 + m) * step)
            _scale(v, key, m)
            _add(v, key, -step)


class AdaGrad(Optimizer):
    """``h += dW**2;  W -= lr * dW / (sqrt(h) + 1e-7)``."""

    state_names = ("h",)

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(lr)
        self.h = None

    def _step(self, params: Params, grads: Params, keys: list) -> None:
        h = self._state("h", params, keys)
        for key in keys:
            self._accumulate(h, key, grads[key])
            _add(params, key, -self.lr * grads[key] / (_sqrt(h[key]) + 1e-7))

    def _accumulate(self, h: Params, key: Any, grad: Array) -> None:
        _add(h, key, grad * grad)


class RMSprop(AdaGrad):
    """AdaGrad with a leaky sum: ``h = decay_rate * h + (1 - decay_rate) * dW**2``
    (``0 < decay_rate < 1``)."""

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99) -> None:
        super().__init__(lr)
        self.decay_rate = _unit_interval("decay_rate", decay_rate, low_open=True)

    def _accumulate(self, h: Params, key: Any, grad: Array) -> None:
        _scale(h, key, self.decay_rate)
        _add(h, key, (1.0 - self.decay_rate) * grad * grad)


class Adam(Optimizer):
    """Adam with the books' bias correction folded into ``lr_t``:
    ``lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t);  W -= lr_t * m / (sqrt(v) + 1e-7)``
    (``0 < beta1, beta2 < 1``)."""

    state_names = ("iter", "m", "v")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        super().__init__(lr)
        self.beta1 = _unit_interval("beta1", beta1, low_open=True)
        self.beta2 = _unit_interval("beta2", beta2, low_open=True)
        self.iter = 0
        self.m = None
        self.v = None

    def _step(self, params: Params, grads: Params, keys: list) -> None:
        m, v = self._state("m", params, keys), self._state("v", params, keys)
        self.iter += 1
        lr_t = self.lr * math.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for key in keys:
            grad = grads[key]
            _add(m, key, (1.0 - self.beta1) * (grad - m[key]))
            _add(v, key, (1.0 - self.beta2) * (grad * grad - v[key]))
            _add(params, key, -lr_t * m[key] / (_sqrt(v[key]) + 1e-7))


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "momentum": Momentum, "nesterov": Nesterov,
    "adagrad": AdaGrad, "rmsprop": RMSprop, "adam": Adam,
}


def get_optimizer(name: str, **optimizer_param: float) -> Optimizer:
    """The optimizer registered as ``name`` (case-insensitive), built with ``optimizer_param``."""
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise ValueError(f"optimizer: unknown name {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name.lower()](**optimizer_param)
