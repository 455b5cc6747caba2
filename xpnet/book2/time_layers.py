"""The second book's ``common/time_layers.py``: layers over sequences ``(N, T, ...)``.

``from xpnet.book2.time_layers import *`` gives a chapter script what the book's module
gives it: the time layers, the recurrent cells (:mod:`xpnet.book2.rnn_cells`), the layers of
:mod:`xpnet.book2.layers`, ``softmax``/``sigmoid`` and ``np`` (:mod:`xpnet.book2.np`).

Where the book is not exact, these are: the loss is computed from a log-softmax (finite where
a probability underflows), the ignore label ``-1`` is masked before any indexing, and every
output, state, mask and gradient keeps the dtype of the caller's arrays (the book writes
float32 everywhere).  Each layer is one pass over all time steps, with no per-step objects.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace
from array_api_compat import device as array_device

from ..backend import Generator, device_of
from ..checks import real
from ..layers import SoftmaxWithLoss
from ..layers import _Slot as Slot
from .functions import sigmoid, softmax
from .layers import Affine, Dropout, Embedding, MatMul, Relu, Sigmoid, SigmoidWithLoss, Softmax
from .np import np
from .rnn_cells import GRU, LSTM, RNN, zeros
from .time_recurrent import TimeBiLSTM, TimeGRU, TimeLSTM, TimeRNN

Array = Any

__all__ = ["np", "RNN", "TimeRNN", "LSTM", "TimeLSTM", "GRU", "TimeGRU", "TimeBiLSTM", "TimeEmbedding",
           "TimeAffine", "TimeSoftmaxWithLoss", "TimeSigmoidWithLoss", "TimeDropout",
           "Simple_TimeSoftmaxWithLoss", "Simple_TimeAffine", "softmax", "sigmoid", "MatMul", "Affine",
           "Softmax", "SoftmaxWithLoss", "Sigmoid", "SigmoidWithLoss", "Relu", "Dropout", "Embedding"]


class TimeEmbedding:
    """Rows of ``W: (V, D)`` for ids ``xs: (N, T)`` -> ``(N, T, D)``; ``params = [W]``.

    Backward adds all ``N*T`` rows of ``dout`` into ``dW`` in one scatter-add
    (:func:`~xpnet.book2.layers.add_rows`, right for repeated ids), not one zeroed
    ``(V, D)`` gradient per time step as the book's per-step ``Embedding`` does."""

    W, dW = Slot("params", 0), Slot("grads", 0)

    def __init__(self, W: Array) -> None:
        self.embed = Embedding(W)
        self.params, self.grads = self.embed.params, self.embed.grads
        self.layers = None

    def forward(self, xs: Array) -> Array:
        if xs.ndim != 2:
            raise ValueError(f"xs: expected ids (N, T), got shape {tuple(xs.shape)}")
        return self.embed.forward(xs)

    def backward(self, dout: Array) -> None:
        return self.embed.backward(dout)


class TimeAffine:
    """``x @ W + b`` for all ``N*T`` rows of ``x: (N, T, D)`` in one product -> ``(N, T, M)``.
    ``W`` may be a transposed view (the book's weight tying, ``TimeAffine(embed_W.T, b)``)."""

    W, b = Slot("params", 0), Slot("params", 1)
    dW, db = Slot("grads", 0), Slot("grads", 1)

    def __init__(self, W: Array, b: Array) -> None:
        if W.ndim != 2 or tuple(b.shape) != (W.shape[1],):
            raise ValueError(f"W, b: expected (D, M) and (M,), got {tuple(W.shape)} and {tuple(b.shape)}")
        self.params = [W, b]
        self.grads = [zeros(tuple(W.shape), W), zeros(tuple(b.shape), b)]
        self.x, self.x_shape = None, None

    def forward(self, x: Array) -> Array:
        xp = array_namespace(x, self.W)
        if x.ndim != 3 or x.shape[2] != self.W.shape[0]:
            raise ValueError(f"x: expected (N, T, {self.W.shape[0]}), got shape {tuple(x.shape)}")
        N, T, D = self.x_shape = tuple(x.shape)
        self.x = xp.reshape(x, (N * T, D))
        out = xp.matmul(self.x, self.W)
        out += self.b
        return xp.reshape(out, (N, T, self.W.shape[1]))

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout, self.W)
        rows = self.x.shape[0]
        dout = xp.reshape(dout, (rows, dout.shape[2]))
        self.dW[...] = xp.matmul(self.x.T, dout)
        self.db[...] = xp.sum(dout, axis=0)
        return xp.reshape(xp.matmul(dout, self.W.T), self.x_shape)


def label_log_probs(x: Array, t: Array) -> tuple[Array, Array, Array]:
    """``log softmax(x)[r, t[r]]`` for scores ``x: (R, V)`` and labels ``t: (R,)`` in ``[0, V)``,
    from ``x - max - log(sum(exp(x - max)))``, finite however small the probability; also returns
    ``e = exp(x - max)`` and its row sums ``s`` (``softmax = e / s``) for the backward pass."""
    xp = array_namespace(x, t)
    m = xp.max(x, axis=1, keepdims=True)
    e = xp.exp(x - m)
    s = xp.sum(e, axis=1, keepdims=True)
    picked = xp.take_along_axis(x, xp.reshape(t, (-1, 1)), axis=1)
    return (picked - m - xp.log(s))[:, 0], e, s


def softmax_minus_one_hot(e: Array, s: Array, t: Array, k: Array) -> Array:
    """``(e / s - one_hot(t)) * k`` per row, ``k: (R, 1)``: the softmax loss's gradient.  The
    one-hot is a comparison with the column index: the Array API has no scatter into an array."""
    xp = array_namespace(e, t)
    cols = xp.arange(e.shape[1], dtype=t.dtype, device=array_device(t))
    one_hot = xp.astype(xp.reshape(t, (-1, 1)) == cols, e.dtype)
    one_hot *= k
    dx = e * (k / s)
    dx -= one_hot
    return dx


class TimeSoftmaxWithLoss:
    """Softmax + cross-entropy over ``xs: (N, T, V)`` and labels ``ts: (N, T)`` (or one-hot
    ``(N, T, V)``), averaged over the labels that are not ``ignore_label`` (-1), which add
    nothing to the loss or the gradient."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.cache = None
        self.ignore_label = -1

    def forward(self, xs: Array, ts: Array) -> Array:
        xp = array_namespace(xs, ts)
        if xs.ndim != 3:
            raise ValueError(f"xs: expected scores (N, T, V), got shape {tuple(xs.shape)}")
        N, T, V = xs.shape
        if ts.ndim == 3:
            ts = xp.argmax(ts, axis=2)
        if tuple(ts.shape) != (N, T) or not xp.isdtype(ts.dtype, "integral"):
            raise ValueError(f"ts: expected integer labels of shape {(N, T)}, got {ts.dtype} {tuple(ts.shape)}")
        t = xp.reshape(ts, (N * T,))
        keep = t != self.ignore_label
        t = xp.where(keep, t, xp.zeros_like(t))  # an ignored label reads column 0, then counts 0
        log_p, e, s = label_log_probs(xp.reshape(xs, (N * T, V)), t)
        weight = xp.astype(keep, xs.dtype)
        count = xp.maximum(xp.sum(weight), 1.0)
        self.cache = (t, e, s, weight, count, (N, T, V))
        return -xp.sum(log_p * weight) / count

    def backward(self, dout: Any = 1) -> Array:
        t, e, s, weight, count, shape = self.cache
        xp = array_namespace(e)
        k = xp.reshape(weight * (dout / count), (-1, 1))
        return xp.reshape(softmax_minus_one_hot(e, s, t, k), shape)


class TimeSigmoidWithLoss:
    """Sigmoid + binary cross-entropy for scores ``xs: (N, T)`` and labels ``ts: (N, T)``, the
    mean over all ``N*T`` (the book's mean over ``N`` per step, averaged over ``T``)."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.xs_shape = None
        self.layers = None
        self.loss_layer = SigmoidWithLoss()

    def forward(self, xs: Array, ts: Array) -> Array:
        xp = array_namespace(xs, ts)
        if xs.ndim != 2 or tuple(ts.shape) != tuple(xs.shape):
            raise ValueError(f"xs, ts: expected two arrays of one shape (N, T), got "
                             f"{tuple(xs.shape)} and {tuple(ts.shape)}")
        self.xs_shape = tuple(xs.shape)
        return self.loss_layer.forward(xp.reshape(xs, (-1,)), xp.reshape(ts, (-1,)))

    def backward(self, dout: Any = 1) -> Array:
        xp = array_namespace(self.loss_layer.y)
        return xp.reshape(self.loss_layer.backward(dout), self.xs_shape)


class TimeDropout:
    """Inverted dropout over a whole sequence: in training (``train_flg``, set by the model)
    each unit is kept with probability ``1 - dropout_ratio`` and scaled by ``1/(1 - dropout_ratio)``;
    at test time ``xs`` passes unchanged.  The mask is in ``xs``'s dtype."""

    def __init__(self, dropout_ratio: float = 0.5, *, rng: Generator | None = None) -> None:
        self.dropout_ratio = real("dropout_ratio", dropout_ratio, low=0.0, high=1.0, high_open=True)
        self.rng = rng or Generator()
        self.params, self.grads = [], []
        self.mask = None
        self.train_flg = True

    def forward(self, xs: Array) -> Array:
        if not self.train_flg:
            return xs
        xp = array_namespace(xs)
        draws = self.rng.uniform(tuple(xs.shape), dtype="float64", device=device_of(xs))
        self.mask = xp.astype(draws > self.dropout_ratio, xs.dtype) * (1.0 / (1.0 - self.dropout_ratio))
        return xs * self.mask

    def backward(self, dout: Array) -> Array:
        return dout * self.mask


class Simple_TimeSoftmaxWithLoss:
    """The book's step-by-step version of :class:`TimeSoftmaxWithLoss` (no ignore label): one
    ``SoftmaxWithLoss`` per time step, the loss averaged over ``T``."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, xs: Array, ts: Array) -> Array:
        T = xs.shape[1]
        layers = [SoftmaxWithLoss() for _ in range(T)]
        loss = sum(layer.forward(xs[:, t, :], ts[:, t]) for t, layer in enumerate(layers)) / T
        self.cache = layers
        return loss

    def backward(self, dout: Any = 1) -> Array:
        layers = self.cache
        xp = array_namespace(layers[0].y)
        return xp.stack([layer.backward(dout / len(layers)) for layer in layers], axis=1)


class Simple_TimeAffine:
    """The book's step-by-step version of :class:`TimeAffine`: ``x_t @ W + b`` per time step,
    ``dW``/``db`` summed over the steps.  ``params = [W, b]`` as in the other layers."""

    W, b = Slot("params", 0), Slot("params", 1)
    dW, db = Slot("grads", 0), Slot("grads", 1)

    def __init__(self, W: Array, b: Array) -> None:
        self.params = [W, b]
        self.grads = [zeros(tuple(W.shape), W), zeros(tuple(b.shape), b)]
        self.xs = None

    def forward(self, xs: Array) -> Array:
        xp = array_namespace(xs, self.W)
        self.xs = xs
        return xp.stack([xp.matmul(xs[:, t, :], self.W) + self.b for t in range(xs.shape[1])], axis=1)

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout, self.W)
        T = dout.shape[1]
        self.dW[...] = sum(xp.matmul(self.xs[:, t, :].T, dout[:, t, :]) for t in range(T))
        self.db[...] = sum(xp.sum(dout[:, t, :], axis=0) for t in range(T))
        return xp.stack([xp.matmul(dout[:, t, :], self.W.T) for t in range(T)], axis=1)

