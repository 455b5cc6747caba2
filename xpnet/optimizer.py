"""Optimizers (both books' ``common/optimizer.py``).

``update(params, grads)`` takes the first book's dicts (``params["W1"]``) or the
second book's lists (``params[0]``, ``grads[0]``, in the same order).  Each entry
changes in place (the same array object, which the layers also hold); an entry
that is not a writable array (a Python float, a NumPy scalar, as the first
book's ``optimizer_compare_naive.py`` passes) is rebound instead.  State
(velocities, squared-gradient sums) is created at the first step in the params'
own container type, on their device and in their dtype.  Hyper-parameters are
Python floats, so float32 stays float32.

Each optimizer's rule is its :meth:`Optimizer.update_one`, the book's formula for one
key, which :meth:`Optimizer.update` applies key by key as the book does.  The same
rule also runs once over flat buffers holding every param
(:func:`xpnet._flat.update_foreach`, ``foreach=``, as in PyTorch): a few operations
per step instead of a few per param (fewer kernel launches on a GPU), the same
result to the bit.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Union

from array_api_compat import array_namespace, is_array_api_obj, is_writeable_array

from ._flat import FlatState, update_foreach
from .backend import copy, np, zeros_like
from .checks import real

Array = Any
Params = Union[dict[str, Any], list[Any]]

__all__ = ["Optimizer", "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "OPTIMIZERS",
           "get_optimizer", "np"]


class Optimizer:
    """Base: argument checks, the state (``state_names``: ``slots``, one array per param,
    and Adam's ``iter``) for checkpoints, and the per-key or flat application of
    :meth:`update_one`.

    ``foreach``: ``None`` (default) runs the rule over flat buffers where it fits (params
    and grads arrays of one namespace, device and floating dtype; an optimizer with
    state), else key by key; ``False`` always key by key (the book's loop, each
    ``W1`` visible in a debugger); ``True`` flat, refusing params it does not fit.
    """

    slots: tuple[str, ...] = ()
    state_names: tuple[str, ...] = ()
    refuses_float16 = False  # the adaptive rules: their 1e-7 and squared gradients round to 0 in float16

    def __init__(self, lr: float, *, foreach: bool | None = None) -> None:
        self.lr = real("lr", lr, low=0.0, low_open=True)
        if foreach not in (None, True, False):
            raise ValueError(f"foreach: expected None (flat where it fits), True or False, got {foreach!r}")
        self.foreach = foreach
        self._flat = FlatState()

    def update(self, params: Params, grads: Params) -> None:
        """Apply one step to ``params`` in place from ``grads``: two dicts with the same keys,
        or two lists (tuples) of the same length, entries of equal shapes and dtypes."""
        keys = self._checked_keys(params, grads)
        if self.foreach is not False and self.slots:  # SGD has no state: flat, it would only add a gather
            states = {name: getattr(self, name) for name in self.slots}
            if self._flat.fits(params, grads, keys, states):
                update_foreach(self, params, grads, keys)
                return
        if self.foreach:
            raise ValueError("foreach=True: these params do not fit flat buffers (they must be arrays of one "
                             "namespace, device and floating dtype); pass foreach=None or False")
        states = [self._state(name, params, keys) for name in self.slots]
        self._begin_update()
        for key in keys:
            new = self.update_one(params[key], grads[key], *(state[key] for state in states))
            for container, value in zip((params, *states), new):
                if container[key] is not value:
                    container[key] = value

    def update_one(self, param: Array, grad: Array, *state: Array) -> tuple:
        """The rule on one param (an array or a number, only ever moved by ``+=``/``-=``) and
        its state (``slots`` in order), arrays updated in place; returns them (a number is
        rebound, not changed in place)."""
        raise NotImplementedError

    def _begin_update(self) -> None:
        """Once per :meth:`update`, before the rule runs (Adam counts its iterations)."""

    def _checked_keys(self, params: Params, grads: Params) -> list:
        keys = _keys(params, grads)
        for key in keys:
            expected, got = _shape("params", key, params[key]), _shape("grads", key, grads[key])
            if got != expected:
                raise ValueError(f"grads[{key!r}]: expected shape {expected}, got {got}")
            if self.refuses_float16 and _is_float16(params[key]):
                raise ValueError(f"params[{key!r}]: {type(self).__name__} cannot train float16 params (its 1e-7 and "
                                 "squared gradients round to 0 in float16); build the net with dtype='float32', "
                                 "or use SGD or Momentum")
        return keys

    def _state(self, name: str, params: Params, keys: list) -> Params:
        """State ``name`` laid out like ``params``: zeros at the first step; a restored
        :meth:`state_dict` (string keys) is turned back into a list for list params."""
        value = getattr(self, name)
        if value is None:
            zeros = [_zeros_like(params[key]) for key in keys]
            value = dict(zip(keys, zeros)) if isinstance(params, dict) else zeros
        elif not isinstance(params, dict) and isinstance(value, dict):
            value = [value.get(str(key)) for key in keys] if set(value) == {str(k) for k in keys} else value
        self._check_state_fits(name, value, params, keys)
        setattr(self, name, value)
        return value

    def _check_state_fits(self, name: str, value: Params, params: Params, keys: list) -> None:
        """One clear error when the state was built for other params (an optimizer reused)."""
        state_keys = list(value) if isinstance(value, dict) else list(range(len(value)))
        fits = isinstance(value, dict) == isinstance(params, dict) and state_keys == keys and all(
            _shape("params", key, params[key]) == tuple(getattr(value[key], "shape", ())) for key in keys)
        if not fits:
            theirs = {key: _shape("params", key, params[key]) for key in keys}
            ours = {key: tuple(getattr(v, "shape", ())) for key, v in
                    (value.items() if isinstance(value, dict) else enumerate(value))}
            raise ValueError(f"params: this {type(self).__name__}'s state {name!r} was built for other params "
                             f"({ours}), got {theirs}; use a new optimizer for new params")

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


def _shape(what: str, key: Any, value: Any) -> tuple[int, ...]:
    """``value``'s shape, ``()`` for a real number; ``TypeError`` for anything else."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return tuple(shape)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return ()
    raise TypeError(f"{what}[{key!r}]: expected an array or a real number, got {type(value).__name__}")


def _in_place(value: Any) -> bool:
    """Whether the rule changes ``value`` in place: a writable array (else it is rebound)."""
    return is_array_api_obj(value) and is_writeable_array(value)


def _zeros_like(value: Any) -> Any:
    return zeros_like(value) if _in_place(value) else 0.0 * value


def _copy(value: Any) -> Any:
    """A copy of ``value`` on its own device (state is updated in place, so it must not be shared)."""
    return copy(value) if _in_place(value) else value


def _is_float16(value: Any) -> bool:
    dtype = getattr(value, "dtype", None)
    return dtype is not None and str(dtype).endswith("float16")


def _sqrt(value: Any) -> Any:
    return array_namespace(value).sqrt(value) if is_array_api_obj(value) else math.sqrt(value)


def _unit_interval(name: str, value: float, *, low_open: bool) -> float:
    return real(name, value, low=0.0, high=1.0, low_open=low_open, high_open=True)


class SGD(Optimizer):
    """``W -= lr * dW``."""

    def __init__(self, lr: float = 0.01, *, foreach: bool | None = None) -> None:
        super().__init__(lr, foreach=foreach)

    def update_one(self, param: Array, grad: Array) -> tuple:
        param -= self.lr * grad
        return (param,)


class Momentum(Optimizer):
    """``v = momentum * v - lr * dW;  W += v`` (``0 <= momentum < 1``)."""

    slots = state_names = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, *, foreach: bool | None = None) -> None:
        super().__init__(lr, foreach=foreach)
        self.momentum = _unit_interval("momentum", momentum, low_open=False)
        self.v = None

    def update_one(self, param: Array, grad: Array, v: Array) -> tuple:
        v *= self.momentum
        v -= self.lr * grad
        param += v
        return param, v


class Nesterov(Momentum):
    """Nesterov's accelerated gradient (Bengio et al. 2013, eq. 7), the weights moving with the
    old velocity first: ``W += momentum**2 * v - (1 + momentum) * lr * dW``, then
    ``v = momentum * v - lr * dW``."""

    def update_one(self, param: Array, grad: Array, v: Array) -> tuple:
        m = self.momentum
        step = self.lr * grad
        param += (m * m) * v
        param -= (1.0 + m) * step
        v *= m
        v -= step
        return param, v


class AdaGrad(Optimizer):
    """``h += dW**2;  W -= lr * dW / (sqrt(h) + 1e-7)``."""

    slots = state_names = ("h",)
    refuses_float16 = True

    def __init__(self, lr: float = 0.01, *, foreach: bool | None = None) -> None:
        super().__init__(lr, foreach=foreach)
        self.h = None

    def update_one(self, param: Array, grad: Array, h: Array) -> tuple:
        h = self._accumulate(h, grad)
        param -= self.lr * grad / (_sqrt(h) + 1e-7)
        return param, h

    def _accumulate(self, h: Array, grad: Array) -> Array:
        h += grad * grad
        return h


class RMSprop(AdaGrad):
    """AdaGrad with a leaky sum: ``h = decay_rate * h + (1 - decay_rate) * dW**2``
    (``0 < decay_rate < 1``)."""

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99, *, foreach: bool | None = None) -> None:
        super().__init__(lr, foreach=foreach)
        self.decay_rate = _unit_interval("decay_rate", decay_rate, low_open=True)

    def _accumulate(self, h: Array, grad: Array) -> Array:
        h *= self.decay_rate
        h += (1.0 - self.decay_rate) * grad * grad
        return h


class Adam(Optimizer):
    """Adam with the books' bias correction folded into ``lr_t``:
    ``lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t);  W -= lr_t * m / (sqrt(v) + 1e-7)``
    (``0 < beta1, beta2 < 1``)."""

    slots = ("m", "v")
    state_names = ("iter", *slots)
    refuses_float16 = True

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, *,
                 foreach: bool | None = None) -> None:
        super().__init__(lr, foreach=foreach)
        self.beta1 = _unit_interval("beta1", beta1, low_open=True)
        self.beta2 = _unit_interval("beta2", beta2, low_open=True)
        self.iter = 0
        self.m = None
        self.v = None

    def _begin_update(self) -> None:
        self.iter += 1

    def update_one(self, param: Array, grad: Array, m: Array, v: Array) -> tuple:
        lr_t = self.lr * math.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        m += (1.0 - self.beta1) * (grad - m)
        v += (1.0 - self.beta2) * (grad * grad - v)
        param -= lr_t * m / (_sqrt(v) + 1e-7)
        return param, m, v


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "momentum": Momentum, "nesterov": Nesterov,
    "adagrad": AdaGrad, "rmsprop": RMSprop, "adam": Adam,
}


def get_optimizer(name: str, **optimizer_param: float) -> Optimizer:
    """The optimizer registered as ``name`` (case-insensitive), built with ``optimizer_param``."""
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise ValueError(f"optimizer: unknown name {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name.lower()](**optimizer_param)
