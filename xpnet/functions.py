"""Activation and loss functions (the book's ``common/functions.py``), for any backend.

Each function takes its namespace from its arguments, so the same call works on
NumPy, CuPy and every Array API library.  Batches are rows: ``x: (N, D)``; a
single sample ``x: (D,)`` works too.  Labels ``t`` are class indices ``(N,)`` or
``(N, 1)``, or one-hot rows ``(N, C)``.

Label checks come in two parts.  The shape and dtype of ``t`` are checked
everywhere (free: no data is read).  Its values (indices in ``0..C-1``, one-hot
rows of 0s and 1s) are checked by :func:`check_labels`, which reads one number
back from the device; the losses here call it on every call, the nets on every
direct call, and the Trainer once, up front.  Unchecked index labels that name no
class still never give a finite loss: :func:`as_one_hot` turns them into NaN rows.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace
from array_api_compat import device as array_device

from .backend import np  # noqa: F401  (the book's star import of this module gives np)
from .checks import positive_int

Array = Any


def identity_function(x: Array) -> Array:
    """``x`` unchanged (the output activation for regression)."""
    return x


def step_function(x: Array) -> Array:
    """1 where ``x > 0``, else 0, as integers (int64, the book's ``dtype=int``)."""
    xp = array_namespace(x)
    return xp.astype(x > 0, xp.int64)


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
    """1 where ``x >= 0``, else 0, in ``x``'s dtype (the book's ``grad[x >= 0] = 1``)."""
    xp = array_namespace(x)
    return xp.astype(x >= 0, x.dtype)


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
    """Class indices ``t: (N,)`` or ``(N, 1)`` as one-hot rows ``(N, num_classes)`` of ``dtype``.

    An index that names no class (out of range, negative, not a whole number) gives
    a row of NaN, so that a loss computed from it cannot look finite.
    """
    xp = array_namespace(t)
    _check_label_dtype(t)
    classes = xp.arange(num_classes, dtype=xp.int64 if xp.isdtype(t.dtype, "integral") else t.dtype,
                        device=array_device(t))
    rows = xp.astype(xp.reshape(t, (-1, 1)) == classes, dtype)
    return rows / xp.sum(rows, axis=1, keepdims=True)  # a row that names no class: 0/0, NaN


def as_one_hot(y: Array, t: Array) -> Array:
    """Labels ``t`` (indices ``(N,)`` or ``(N, 1)``, or one-hot ``(N, C)``) as one-hot rows
    matching scores ``y: (N, C)``, in ``y``'s dtype.  Checks shapes, not values (no sync):
    see :func:`check_labels`."""
    xp = array_namespace(y, t)
    _check_label_dtype(t)
    n, classes = y.shape[0], y.shape[1]
    if t.ndim == 2 and tuple(t.shape) == (n, classes):
        return t if t.dtype == y.dtype else xp.astype(t, y.dtype)
    if (t.ndim == 1 and t.shape[0] == n) or (t.ndim == 2 and tuple(t.shape) == (n, 1)):
        return one_hot(t, classes, y.dtype)
    raise ValueError(f"t: expected class indices of shape ({n},) or ({n}, 1), or one-hot of shape "
                     f"({n}, {classes}), got shape {tuple(t.shape)}")


def check_labels(t: Array, num_classes: int) -> None:
    """Raise ``ValueError`` unless every label of ``t`` names one of ``num_classes`` classes.

    ``t`` of shape ``(N, num_classes)`` is one-hot: each row must be 0s with a single 1.
    Otherwise ``t`` (``()``, ``(N,)`` or ``(N, 1)``) holds class indices: whole numbers in
    ``0..num_classes-1``.  Reads one boolean back from ``t``'s device (a sync on a GPU),
    so a training loop checks its labels once, up front, not at every step.
    """
    positive_int("num_classes", num_classes)
    xp = array_namespace(t)
    _check_label_dtype(t)
    if t.ndim == 2 and t.shape[1] == num_classes:
        bad = xp.any((t != 0) & (t != 1), axis=1) | (xp.sum(t, axis=1) != 1)
        if bool(xp.any(bad)):
            row = int(_first_true(xp, bad))
            raise ValueError(f"t: expected one-hot rows of {num_classes} values, 0s and a single 1, got row {row} "
                             f"= {_host_list(t[row, ...])}")
        return
    if t.ndim > 2 or (t.ndim == 2 and t.shape[1] != 1):
        raise ValueError(f"t: expected class indices (N,) or (N, 1), or one-hot (N, {num_classes}), "
                         f"got shape {tuple(t.shape)}")
    flat = xp.reshape(t, (-1,))
    good = (flat >= 0) & (flat < num_classes)
    if xp.isdtype(flat.dtype, "real floating"):
        good = good & (xp.floor(flat) == flat)
    bad = ~good
    if bool(xp.any(bad)):
        index = int(_first_true(xp, bad))
        raise ValueError(f"t: expected class indices in 0..{num_classes - 1}, got {_host_list(flat[index])} "
                         f"(label {index})")


def _first_true(xp: Any, mask: Array) -> Array:
    """The first index where the 1-D boolean ``mask`` is True (a 0-d array)."""
    return xp.argmax(xp.astype(mask, xp.int8))


def _host_list(a: Array) -> Any:
    """``a``'s values as Python numbers (for an error message)."""
    xp = array_namespace(a)
    values = xp.reshape(a, (-1,))
    numbers = [float(values[i]) for i in range(values.shape[0])]
    numbers = [int(v) if v.is_integer() else v for v in numbers]
    return numbers[0] if a.ndim == 0 else numbers


def _check_label_dtype(t: Array) -> None:
    xp = array_namespace(t)
    if not (xp.isdtype(t.dtype, "integral") or xp.isdtype(t.dtype, "real floating")):
        raise ValueError(f"t: expected integer class indices or one-hot rows of numbers, got dtype {t.dtype}")


def cross_entropy_error(y: Array, t: Array) -> Array:
    """Mean over the batch of ``-log(y[t])`` for probabilities ``y: (N, C)`` or ``(C,)``;
    ``t`` is checked by :func:`check_labels` on every call.

    ``1e-7`` is added inside the log (as in the book) so ``y == 0`` gives no ``log(0)``.
    """
    xp = array_namespace(y, t)
    y, t = _as_batch(y, t)
    labels = as_one_hot(y, t)
    check_labels(t, y.shape[1])
    return -xp.sum(labels * xp.log(y + 1e-7)) / y.shape[0]


def softmax_loss(X: Array, t: Array) -> Array:
    """Cross-entropy of ``softmax(X)`` against ``t``, through :func:`log_softmax` (no log(0));
    ``t`` is checked by :func:`check_labels` on every call."""
    xp = array_namespace(X, t)
    X, t = _as_batch(X, t)
    labels = as_one_hot(X, t)
    check_labels(t, X.shape[1])
    return -xp.sum(labels * log_softmax(X)) / X.shape[0]


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
