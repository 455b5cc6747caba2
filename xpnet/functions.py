"""Activation and loss functions (the book's ``common/functions.py``), for any backend.

Each function takes its namespace from its arguments, so the same call works on
NumPy, CuPy and every Array API library.  Batches are rows: ``x: (N, D)``; a
single sample ``x: (D,)`` works too.  Labels ``t`` are class indices ``(N,)`` or
``(N, 1)``, or one-hot rows ``(N, C)``.

Label checks come in two parts.  The shape and dtype of ``t`` are checked
everywhere (free: no data is read).  Its values (indices in ``0..C-1``, one-hot
rows of 0s and 1s) are checked by one mechanism, in two forms:

* :func:`check_labels` checks at once; on a GPU that reads one value back (a wait),
  so the Trainer calls it once, up front, on all its labels;
* :func:`check_labels_later`, what the losses here and the nets' ``loss``/``gradient``
  call on every call: NumPy labels are checked at once on the host (free); labels
  of any other library are checked on their device, and the verdict is read with
  the next value a loop reads anyway (``accuracy``, or :func:`raise_pending_labels`),
  so a training step never waits on the GPU for it.

Unchecked index labels that name no class still never give a finite loss:
:func:`as_one_hot` turns them into NaN rows.
"""

from __future__ import annotations

import collections
from typing import Any

from array_api_compat import array_namespace, is_numpy_array
from array_api_compat import device as array_device

from .backend import device_of, np, to_numpy  # noqa: F401  (np: the book's star import of this module gives it)
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
    x = as_real_float(x)
    xp = array_namespace(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(x: Array) -> Array:
    """Derivative of :func:`sigmoid` at ``x``."""
    y = sigmoid(x)
    return (1.0 - y) * y


def relu(x: Array) -> Array:
    """``max(x, 0)``."""
    x = as_real_float(x)
    xp = array_namespace(x)
    return xp.maximum(x, 0.0)


def relu_grad(x: Array) -> Array:
    """1 where ``x >= 0``, else 0, in ``x``'s dtype (the book's ``grad[x >= 0] = 1``)."""
    xp = array_namespace(x)
    return xp.astype(x >= 0, x.dtype)


def softmax(x: Array) -> Array:
    """Softmax over the last axis; ``x: (N, C)`` or ``(C,)``.  Stable for large ``|x|``."""
    x = as_real_float(x)
    xp = array_namespace(x)
    e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def log_softmax(x: Array) -> Array:
    """``log(softmax(x))`` over the last axis, exact where softmax underflows to 0."""
    x = as_real_float(x)
    xp = array_namespace(x)
    shifted = x - xp.max(x, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def sum_squared_error(y: Array, t: Array) -> Array:
    """``0.5 * sum((y - t)**2)`` (the book's definition: summed, not averaged)."""
    y, t = as_real_float(y, "y"), as_real_float(t, "t")
    xp = array_namespace(y, t)
    _check_same_shape(y, t)
    return 0.5 * xp.sum((y - t) ** 2)


mean_squared_error = sum_squared_error  # the printed book's name; its repository renamed it


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
    see :func:`check_labels_later`."""
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
    so a training loop checks its labels once, up front, not at every step (or uses
    :func:`check_labels_later`).
    """
    xp = array_namespace(t)
    one_hot_rows, flat, bad = _label_faults(t, num_classes)
    if not bool(xp.any(bad)):
        return
    index = int(_first_true(xp, bad))
    if one_hot_rows:
        raise ValueError(f"t: expected one-hot rows of {num_classes} values, 0s and a single 1, got row {index} "
                         f"= {_host_list(t[index, ...])}")
    raise ValueError(f"t: expected class indices in 0..{num_classes - 1}, got {_host_list(flat[index])} "
                     f"(label {index})")


def check_labels_later(t: Array, num_classes: int, where: str) -> None:
    """:func:`check_labels` without a wait: NumPy labels are checked now, on the host; labels of
    any other library (a GPU's) on their device, without reading anything back.  The first bad
    label found since the last read is raised by :func:`raise_pending_labels`, naming ``where``
    (the function that was given it) and which call since the last check it was."""
    if is_numpy_array(t):
        check_labels(t, num_classes)
        return
    _PENDING.add(t, num_classes, where)


def raise_pending_labels() -> None:
    """Raise ``ValueError`` for the first bad label given to :func:`check_labels_later` since the
    last call (one value read back per device that has pending checks); then forget them."""
    _PENDING.raise_first()


class _PendingLabels:
    """Per device and call site: a 0-d boolean on the device, whether any label given there since
    the last read was bad (five small kernels per check, no read), and the last ``KEEP`` label
    arrays, re-checked on the host side of the read to name the bad label."""

    KEEP = 8

    def __init__(self) -> None:
        self.flags: dict[tuple, Array] = {}  # (device, where, one-hot, num_classes) -> any bad so far
        self.calls: dict[tuple, int] = {}
        self.kept: dict[tuple, collections.deque] = {}  # -> (call, t) of the last KEEP calls

    def add(self, t: Array, num_classes: int, where: str) -> None:
        xp = array_namespace(t)
        one_hot_rows, _, bad = _label_faults(t, num_classes)
        key = (device_of(t).name, where, one_hot_rows, num_classes)
        found, old = xp.any(bad), self.flags.get(key)
        self.flags[key] = found if old is None else old | found
        self.calls[key] = call = self.calls.get(key, 0) + 1
        self.kept.setdefault(key, collections.deque(maxlen=self.KEEP)).append((call, t))

    def raise_first(self) -> None:
        flags, calls, kept = dict(self.flags), dict(self.calls), dict(self.kept)
        self.flags.clear()
        self.calls.clear()
        self.kept.clear()
        for key, flag in flags.items():
            if not bool(to_numpy(flag)):
                continue
            _, where, one_hot_rows, num_classes = key
            for call, t in kept[key]:
                try:
                    check_labels(t, num_classes)
                except ValueError as exc:
                    raise ValueError(f"{exc} in call {call} of {where} since the last check") from None
            what = "one-hot rows of 0s and a single 1" if one_hot_rows else f"class indices in 0..{num_classes - 1}"
            raise ValueError(f"t: expected {what}; a label given to {where} in calls 1..{calls[key]} since the last "
                             f"check was not (the last {self.KEEP} arrays hold none now: changed in place?)")


_PENDING = _PendingLabels()


def _label_faults(t: Array, num_classes: int) -> tuple[bool, Array, Array]:
    """``(one_hot, flat, bad)``: whether ``t`` is one-hot rows, ``t`` as one label per entry
    (indices: flattened), and the boolean mask of its bad labels (rows), on ``t``'s device.
    Raises for a wrong shape or dtype (free: no value is read)."""
    positive_int("num_classes", num_classes)
    xp = array_namespace(t)
    _check_label_dtype(t)
    if t.ndim == 2 and t.shape[1] == num_classes:
        bad = xp.any((t != 0) & (t != 1), axis=1) | (xp.sum(t, axis=1) != 1)
        return True, t, bad
    if t.ndim > 2 or (t.ndim == 2 and t.shape[1] != 1):
        raise ValueError(f"t: expected class indices (N,) or (N, 1), or one-hot (N, {num_classes}), "
                         f"got shape {tuple(t.shape)}")
    flat = xp.reshape(t, (-1,))
    good = (flat >= 0) & (flat < num_classes)
    if xp.isdtype(flat.dtype, "real floating"):
        good = good & (xp.floor(flat) == flat)
    return False, flat, ~good


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
    ``t`` is checked by :func:`check_labels_later` on every call.

    ``1e-7`` is added inside the log (as in the book) so ``y == 0`` gives no ``log(0)``.
    """
    y = as_real_float(y, "y")
    xp = array_namespace(y, t)
    y, t = _as_batch(y, t)
    labels = as_one_hot(y, t)
    check_labels_later(t, y.shape[1], "cross_entropy_error")
    return -xp.sum(labels * xp.log(y + 1e-7)) / y.shape[0]


def softmax_loss(X: Array, t: Array) -> Array:
    """Cross-entropy of ``softmax(X)`` against ``t``, through :func:`log_softmax` (no log(0));
    ``t`` is checked by :func:`check_labels_later` on every call."""
    X = as_real_float(X, "X")
    xp = array_namespace(X, t)
    X, t = _as_batch(X, t)
    labels = as_one_hot(X, t)
    check_labels_later(t, X.shape[1], "softmax_loss")
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


def as_real_float(x: Array, name: str = "x") -> Array:
    """``x`` itself when it holds real floats; integers and booleans (``uint8`` pixels, say) as
    the namespace's default float (float64 on NumPy), since these functions' results are
    fractions and ``x - max(x)`` would wrap around in unsigned types; complex and other
    dtypes are refused (``TypeError`` naming ``name``)."""
    xp = array_namespace(x)
    if xp.isdtype(x.dtype, "real floating"):
        return x
    if not xp.isdtype(x.dtype, ("integral", "bool")):
        raise TypeError(f"{name}: expected real numbers (float, integer or bool), got dtype {x.dtype}")
    try:
        wide = xp.__array_namespace_info__().default_dtypes(device=array_device(x))["real floating"]
    except (AttributeError, TypeError, KeyError):
        wide = xp.float64
    return xp.astype(x, wide)
