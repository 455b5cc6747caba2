"""The second book's ``common/layers.py``.

``MatMul``, ``Affine``, ``Softmax``, ``SoftmaxWithLoss``, ``Sigmoid``, ``Relu`` and
``Dropout`` are :mod:`xpnet.layers`' classes (``params``/``grads`` lists as well as
the first book's ``W``/``dW``); ``SigmoidWithLoss`` and ``Embedding`` are the second
book's own.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace
from array_api_compat import device as array_device

from .._protocol import zero_grads
from ..backend import device_of
from ..functions import sigmoid
from ..layers import Affine, Dropout, MatMul, Relu, Sigmoid, Softmax, SoftmaxWithLoss

Array = Any

__all__ = ["MatMul", "Affine", "Softmax", "SoftmaxWithLoss", "Sigmoid", "SigmoidWithLoss", "Relu",
           "Dropout", "Embedding", "add_rows"]

ONE_HOT_MAX_ENTRIES = 1 << 16
"""``add_rows`` multiplies by a one-hot matrix up to this many ``(N, num_rows)`` entries."""


def add_rows(idx: Array, values: Array, num_rows: int, *, one_hot_max: int = ONE_HOT_MAX_ENTRIES) -> Array:
    """``out[idx[k]] += values[k]`` into zeros ``(num_rows, D)``: NumPy's ``np.add.at``, right for
    repeated indices, which the Array API lacks.  ``idx: (N,)`` integers in
    ``[0, num_rows)``, ``values: (N, D)``.

    Small problems (``N * num_rows <= one_hot_max``) take one matrix product
    ``one_hot(idx).T @ values``.  Larger ones sort: ``values`` in index order are summed
    cumulatively (in float64), and row ``v`` is the difference of that sum at the ends of
    ``v``'s run, found by ``searchsorted``; ``O((N + num_rows) * D)`` work, no scatter.
    The one-hot product beats ``np.add.at`` on small batches; the sort path stays within
    2x of it (timings in ``benchmarks/NOTES.md``, "Embedding backward").
    """
    xp = array_namespace(idx, values)
    dev = array_device(values)
    n = idx.shape[0]
    with device_of(values).activate():
        if n * num_rows <= one_hot_max:
            rows = xp.arange(num_rows, dtype=idx.dtype, device=dev)
            one_hot = xp.astype(xp.reshape(idx, (n, 1)) == rows, values.dtype)
            return xp.matmul(one_hot.T, values)
        order = xp.argsort(idx)
        sorted_idx = xp.take(idx, order)
        sums = xp.cumulative_sum(xp.astype(xp.take(values, order, axis=0), xp.float64), axis=0,
                                 include_initial=True)
        run = (xp.searchsorted(sorted_idx, sorted_idx, side="left"),
               xp.searchsorted(sorted_idx, sorted_idx, side="right"))
        totals = xp.astype(xp.take(sums, run[1], axis=0) - xp.take(sums, run[0], axis=0), values.dtype)
        table = xp.concat([xp.zeros((1, values.shape[1]), dtype=values.dtype, device=dev), totals])
        rows = xp.arange(num_rows, dtype=idx.dtype, device=dev)
        first = xp.searchsorted(sorted_idx, rows, side="left")
        present = xp.searchsorted(sorted_idx, rows, side="right") > first
        return xp.take(table, xp.where(present, first + 1, 0), axis=0)

class SigmoidWithLoss:
    """Sigmoid + binary cross-entropy; ``x: (N,)`` scores, ``t: (N,)`` labels 0/1.

    The loss is the batch mean of ``-log(y)`` (``t = 1``) or ``-log(1 - y)`` (``t = 0``),
    computed from ``x`` without overflow; backward gives ``(y - t) * dout / N``.
    """

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x: Array, t: Array) -> Array:
        xp = array_namespace(x, t)
        if tuple(t.shape) != tuple(x.shape):
            raise ValueError(f"t: expected one label per score, shape {tuple(x.shape)}, got {tuple(t.shape)}")
        self.t = xp.astype(t, x.dtype)
        self.y = sigmoid(x)
        softplus = xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))  # -log(1 - y)
        self.loss = xp.sum(softplus - self.t * x) / x.shape[0]
        return self.loss

    def backward(self, dout: Any = 1.0) -> Array:
        return (self.y - self.t) * (dout / self.t.shape[0])


class Embedding:
    """Rows of ``W: (V, D)``: ``forward(idx)`` is ``W[idx]``, ``idx`` integers of any shape
    -> ``idx.shape + (D,)``; backward adds ``dout`` into ``dW`` row by row (repeated
    indices add up, see :func:`add_rows`).  ``params = [W]``, ``grads = [dW]``."""

    def __init__(self, W: Array) -> None:
        if W.ndim != 2:
            raise ValueError(f"W: expected a matrix (V, D), got shape {tuple(W.shape)}")
        self.params = [W]
        self.grads = zero_grads(self.params)
        self.idx = None

    def forward(self, idx: Array) -> Array:
        W, = self.params
        xp = array_namespace(idx, W)
        if not xp.isdtype(idx.dtype, "integral"):
            raise TypeError(f"idx: expected integer indices, got dtype {idx.dtype}")
        self.idx = idx
        rows = xp.take(W, xp.reshape(idx, (-1,)), axis=0)
        return xp.reshape(rows, (*idx.shape, W.shape[1]))

    def backward(self, dout: Array) -> None:
        dW, = self.grads
        xp = array_namespace(dout, dW)
        flat = xp.reshape(self.idx, (-1,))
        dW[...] = add_rows(flat, xp.reshape(dout, (flat.shape[0], dW.shape[1])), dW.shape[0])
        return None
