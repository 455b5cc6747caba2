"""Activation and loss functions (the book's ``common/functions.py``), for any backend.

Each function takes its namespace from its arguments, so the same call works on
NumPy, CuPy and every Array API library.  Batches are rows: ``x: (N, D)``; a
single sample ``x: (D,)`` works too.  Labels ``t`` are integer class indices
``(N,)`` or one-hot ``(N, C)``.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace
from array_api_compat import device as array_device

Array = Any


def identity_function(x: Array) -> Array:
    """``x`` unchanged (the output activation for regression)."""
    return x


def step_function(x: Array) -> Array:
    """1 where ``x > 0``, else 0, in ``x``'s dtype."""
    xp = array_namespace(x)
    return xp.astype(x > 0, x.dtype)


def sigmoid(x: Array) -> Array:
    """``1 / (1 + exp(-x))``, computed without overflow for any ``|x|``."""
    xp = array_namespace(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(x: Array) -> Array:
    """Derivative of :func:`sigmoid` at ``x``."""
    y = sigmoid(x)
    return (1.0 - y) * y


def relu(x: Array) -> Array:
    """``max(x, 0)``."""
    xp = array_namespace(x)
    return xp.maximum(x, 0.0)


def relu_grad(x: Array) -> Array:
    """1 where ``x > 0``, else 0 (the book's ``np.zeros(x)`` bug fixed), in ``x``'s dtype."""
    return step_function(x)


def softmax(x: Array) -> Array:
    """Softmax over the last axis; ``x: (N, C)`` or ``(C,)``.  Stable for large ``|x|``."""
    xp = array_namespace(x)
    e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def log_softmax(x: Array) -> Array:
    """``log(softmax(x))`` over the last axis, exact where softmax underflows to 0."""
    xp = array_namespace(x)
    shifted = x - xp.max(x, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def mean_squared_error(y: Array, t: Array) -> Array:
    """``0.5 * sum((y - t)**2)`` (the book's definition: summed, not averaged)."""
    xp = array_namespace(y, t)
    _check_same_shape(y, t)
    return 0.5 * xp.sum((y - t) ** 2)


def one_hot(t: Array, num_classes: int, dtype: Any) -> Array:
    """Integer labels ``t: (N,)`` as one-hot rows ``(N, num_classes)`` of ``dtype``."""
    xp = array_namespace(t)
    classes = xp.arange(num_classes, dtype=t.dtype, device=array_device(t))
    return xp.astype(xp.reshape(t, (-1, 1)) == classes, dtype)


def as_one_hot(y: Array, t: Array) -> Array:
    """Labels ``t`` (indices or one-hot) as one-hot rows matching scores ``y: (N, C)``."""
    xp = array_namespace(y, t)
    if t.ndim == y.ndim and t.shape == y.shape:
        return xp.astype(t, y.dtype)
    if t.ndim != 1 or t.shape[0] != y.shape[0]:
        raise ValueError(
            f"t: expected class indices of shape ({y.shape[0]},) or one-hot of shape {tuple(y.shape)}, "
            f"got shape {tuple(t.shape)}"
        )
    return one_hot(t, y.shape[1], y.dtype)


def cross_entropy_error(y: Array, t: Array) -> Array:
    """Mean over the batch of ``-log(y[t])`` for probabilities ``y: (N, C)`` or ``(C,)``.

    ``1e-7`` is added inside the log (as in the book) so ``y == 0`` gives no ``log(0)``.
    """
    xp = array_namespace(y, t)
    y, t = _as_batch(y, t)
    return -xp.sum(as_one_hot(y, t) * xp.log(y + 1e-7)) / y.shape[0]


def softmax_loss(X: Array, t: Array) -> Array:
    """Cross-entropy of ``softmax(X)`` against ``t``, through :func:`log_softmax` (no log(0))."""
    xp = array_namespace(X, t)
    X, t = _as_batch(X, t)
    return -xp.sum(as_one_hot(X, t) * log_softmax(X)) / X.shape[0]


def _as_batch(y: Array, t: Array) -> tuple[Array, Array]:
    """A single sample ``y: (C,)`` (label: index or one-hot ``(C,)``) as a batch of one."""
    if y.ndim != 1:
        return y, t
    xp = array_namespace(y, t)
    y = xp.reshape(y, (1, -1))
    return y, xp.reshape(t, (1, -1) if t.ndim == 1 and t.shape[0] == y.shape[1] else (1,))


def _check_same_shape(y: Array, t: Array) -> None:
    if tuple(y.shape) != tuple(t.shape):
        raise ValueError(f"t: expected the shape of y {tuple(y.shape)}, got {tuple(t.shape)}")
