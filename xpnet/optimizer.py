"""Optimizers (the book's ``common/optimizer.py``).

``update(params, grads)`` changes every ``params[key]`` in place (the same array
object, which the layers also hold).  State (velocities, squared-gradient sums)
is created lazily with ``zeros_like``, so it lives on the params' own device and
has their dtype.  Hyper-parameters are Python floats, so float32 stays float32.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from array_api_compat import array_namespace

Array = Any
Params = dict[str, Array]


class Optimizer:
    """Base: argument checks and the state (``state_names``) for checkpoints."""

    state_names: tuple[str, ...] = ()

    def __init__(self, lr: float) -> None:
        if isinstance(lr, bool) or not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr: expected a positive finite number, got {lr!r}")
        self.lr = float(lr)

    def update(self, params: Params, grads: Params) -> None:
        """Apply one step to ``params`` in place from ``grads`` (same keys, shapes and dtypes)."""
        for key, param in params.items():
            if key not in grads:
                raise KeyError(f"grads: no gradient for parameter {key!r}")
            if tuple(grads[key].shape) != tuple(param.shape):
                raise ValueError(f"grads[{key!r}]: expected shape {tuple(param.shape)}, got {tuple(grads[key].shape)}")
        self._step(params, grads)

    def _step(self, params: Params, grads: Params) -> None:
        raise NotImplementedError

    def _zeros_like(self, params: Params) -> Params:
        return {key: array_namespace(p).zeros_like(p) for key, p in params.items()}

    def state_dict(self) -> dict[str, Any]:
        """State as a flat dict: ``"v/W1"`` -> array, ``"iter"`` -> int (no arrays before the first step).

        The arrays are copies: later steps (which update the state in place) leave them alone.
        """
        state: dict[str, Any] = {}
        for name in self.state_names:
            value = getattr(self, name)
            if isinstance(value, dict):
                state.update({f"{name}/{key}": _copy(array) for key, array in value.items()})
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


def _copy(array: Array) -> Array:
    """A copy of ``array`` on its own device (state is updated in place, so it must not be shared)."""
    return array_namespace(array).asarray(array, copy=True)


class SGD(Optimizer):
    """``W -= lr * dW``."""

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(lr)

    def _step(self, params: Params, grads: Params) -> None:
        for key in params:
            params[key] -= self.lr * grads[key]


class Momentum(Optimizer):
    """``v = momentum * v - lr * dW;  W += v``."""

    state_names = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = float(momentum)
        self.v = None

    def _step(self, params: Params, grads: Params) -> None:
        if self.v is None:
            self.v = self._zeros_like(params)
        for key in params:
            self.v[key] *= self.momentum
            self.v[key] -= self.lr * grads[key]
            self._move(params, key, grads[key])

    def _move(self, params: Params, key: str, grad: Array) -> None:
        params[key] += self.v[key]


class Nesterov(Momentum):
    """Nesterov's accelerated gradient in the book's reformulation: the velocity as in
    :class:`Momentum`, then ``W += momentum**2 * v - (1 + momentum) * lr * dW``."""

    def _move(self, params: Params, key: str, grad: Array) -> None:
        params[key] += self.momentum * self.momentum * self.v[key]
        params[key] -= (1.0 + self.momentum) * self.lr * grad


class AdaGrad(Optimizer):
    """``h += dW**2;  W -= lr * dW / (sqrt(h) + 1e-7)``."""

    state_names = ("h",)

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__(lr)
        self.h = None

    def _step(self, params: Params, grads: Params) -> None:
        if self.h is None:
            self.h = self._zeros_like(params)
        for key in params:
            xp = array_namespace(params[key])
            self._accumulate(key, grads[key])
            params[key] -= self.lr * grads[key] / (xp.sqrt(self.h[key]) + 1e-7)

    def _accumulate(self, key: str, grad: Array) -> None:
        self.h[key] += grad * grad


class RMSprop(AdaGrad):
    """AdaGrad with a leaky sum: ``h = decay_rate * h + (1 - decay_rate) * dW**2``."""

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99) -> None:
        super().__init__(lr)
        self.decay_rate = float(decay_rate)

    def _accumulate(self, key: str, grad: Array) -> None:
        self.h[key] *= self.decay_rate
        self.h[key] += (1.0 - self.decay_rate) * grad * grad


class Adam(Optimizer):
    """Adam with the book's bias correction folded into ``lr_t``:
    ``lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t);  W -= lr_t * m / (sqrt(v) + 1e-7)``."""

    state_names = ("iter", "m", "v")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        super().__init__(lr)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.iter = 0
        self.m = None
        self.v = None

    def _step(self, params: Params, grads: Params) -> None:
        if self.m is None:
            self.m, self.v = self._zeros_like(params), self._zeros_like(params)
        self.iter += 1
        lr_t = self.lr * math.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for key in params:
            xp = array_namespace(params[key])
            grad = grads[key]
            self.m[key] += (1.0 - self.beta1) * (grad - self.m[key])
            self.v[key] += (1.0 - self.beta2) * (grad * grad - self.v[key])
            params[key] -= lr_t * self.m[key] / (xp.sqrt(self.v[key]) + 1e-7)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "momentum": Momentum, "nesterov": Nesterov,
    "adagrad": AdaGrad, "rmsprop": RMSprop, "adam": Adam,
}


def get_optimizer(name: str, **optimizer_param: float) -> Optimizer:
    """The optimizer registered as ``name`` (case-insensitive), built with ``optimizer_param``."""
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise ValueError(f"optimizer: unknown name {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name.lower()](**optimizer_param)
