"""Layers with forward/backward (the book's ``common/layers.py``, plus the second
book's ``MatMul`` and ``Softmax``), written once for every Array API backend.

Each layer takes its namespace from the arrays it is given, keeps what backward
needs, and never mutates the ``dout`` it receives.  Parameter attributes
(``W``, ``b``, ``gamma``, ...) are the very arrays of the net's ``params`` dict.

Both books' attribute styles name the same arrays: the first book's ``W``, ``b``,
``dW``, ``db`` are the second book's ``params[0]``, ``params[1]``, ``grads[0]``,
``grads[1]``.  Backward writes ``grads`` in place, so a second-book model that
collected ``layer.grads`` once sees every step; parameterless layers have
``params = grads = []``.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from .backend import Generator, device_of
from .checks import real
from .conv_layers import Convolution, Pooling
from .functions import as_one_hot, log_softmax, sigmoid, softmax

Array = Any

__all__ = ["Relu", "Sigmoid", "Affine", "MatMul", "Softmax", "SoftmaxWithLoss", "Dropout", "BatchNormalization",
           "Convolution", "Pooling"]


class _Slot:
    """``layer.W`` as another name of ``layer.params[0]`` (``dW``: ``grads[0]``), read and set."""

    def __init__(self, store: str, index: int) -> None:
        self.store, self.index = store, index

    def __get__(self, layer: Any, owner: type | None = None) -> Any:
        return self if layer is None else layer.__dict__[self.store][self.index]

    def __set__(self, layer: Any, value: Any) -> None:
        layer.__dict__[self.store][self.index] = value


def _zero_grads(params: list[Array]) -> list[Array]:
    """A zero gradient per parameter, on the parameter's device and in its dtype."""
    grads = []
    for param in params:
        with device_of(param).activate():
            grads.append(array_namespace(param).zeros_like(param))
    return grads


def _write(grad: Array, value: Array) -> None:
    """``grad[...] = value``: a gradient keeps its array object (second-book models hold it)."""
    grad[...] = value


class Relu:
    """``max(x, 0)``; ``mask`` marks where the input was <= 0."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.mask = None

    def forward(self, x: Array) -> Array:
        xp = array_namespace(x)
        self.mask = x <= 0
        return xp.maximum(x, 0.0)

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout)
        return dout * xp.astype(~self.mask, dout.dtype)


class Sigmoid:
    """Logistic sigmoid; backward reuses the forward output."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.out = None

    def forward(self, x: Array) -> Array:
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout: Array) -> Array:
        return dout * (1.0 - self.out) * self.out


class Affine:
    """``x @ W + b``; ``x: (N, ...)`` is flattened to ``(N, D)``, ``W: (D, M)``, ``b: (M,)``.

    ``params = [W, b]``, ``grads = [dW, db]`` (written in place by backward).
    ``input_grad = False`` (a net sets it on its first layer, whose ``dx`` nobody uses):
    backward computes ``dW`` and ``db`` only and returns ``None``.
    """

    input_grad = True
    W, b = _Slot("params", 0), _Slot("params", 1)
    dW, db = _Slot("grads", 0), _Slot("grads", 1)

    def __init__(self, W: Array, b: Array) -> None:
        if W.ndim != 2:
            raise ValueError(f"W: expected a matrix (D, M), got shape {tuple(W.shape)}")
        if tuple(b.shape) != (W.shape[1],):
            raise ValueError(f"b: expected shape ({W.shape[1]},) to match W {tuple(W.shape)}, got {tuple(b.shape)}")
        self.params = [W, b]
        self.grads = _zero_grads(self.params)
        self.x = None
        self.original_x_shape = None

    def forward(self, x: Array) -> Array:
        W, b = self.params
        xp = array_namespace(x, W)
        D = W.shape[0]
        if x.ndim < 1 or math.prod(x.shape[1:]) != D:
            raise ValueError(f"x: expected (N, ...) with {D} features per sample, got {tuple(x.shape)}")
        self.original_x_shape = tuple(x.shape)
        self.x = xp.reshape(x, (x.shape[0], D))
        return xp.matmul(self.x, W) + b

    def backward(self, dout: Array) -> Array:
        W = self.params[0]
        dW, db = self.grads
        xp = array_namespace(dout, W)
        _write(dW, xp.matmul(self.x.T, dout))
        _write(db, xp.sum(dout, axis=0))
        if not self.input_grad:
            return None
        return xp.reshape(xp.matmul(dout, W.T), self.original_x_shape)


class MatMul:
    """``x @ W`` (second book); ``params = [W]``, ``grads = [dW]`` (written in place)."""

    W, dW = _Slot("params", 0), _Slot("grads", 0)

    def __init__(self, W: Array) -> None:
        if W.ndim != 2:
            raise ValueError(f"W: expected a matrix (D, M), got shape {tuple(W.shape)}")
        self.params = [W]
        self.grads = _zero_grads(self.params)
        self.x = None

    def forward(self, x: Array) -> Array:
        W, = self.params
        xp = array_namespace(x, W)
        self.x = x
        return xp.matmul(x, W)

    def backward(self, dout: Array) -> Array:
        W, = self.params
        xp = array_namespace(dout, W)
        _write(self.grads[0], xp.matmul(self.x.T, dout))
        return xp.matmul(dout, W.T)


class Softmax:
    """Softmax over the last axis as a layer (second book); ``x: (N, C)``."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.out = None

    def forward(self, x: Array) -> Array:
        self.out = softmax(x)
        return self.out

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout)
        weighted = self.out * dout
        return weighted - self.out * xp.sum(weighted, axis=-1, keepdims=True)


class SoftmaxWithLoss:
    """Softmax + cross-entropy; ``t``: class indices ``(N,)`` or one-hot ``(N, C)``."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x: Array, t: Array) -> Array:
        xp = array_namespace(x, t)
        self.t = as_one_hot(x, t)
        log_y = log_softmax(x)
        self.y = xp.exp(log_y)
        self.loss = -xp.sum(self.t * log_y) / x.shape[0]
        return self.loss

    def backward(self, dout: Any = 1.0) -> Array:
        return (self.y - self.t) * (dout / self.y.shape[0])


class Dropout:
    """Drops each unit with probability ``dropout_ratio`` (a real number in [0, 1)) in
    training; scales by ``1 - dropout_ratio`` at test time (the book's convention)."""

    def __init__(self, dropout_ratio: float = 0.5, *, rng: Generator | None = None) -> None:
        self.dropout_ratio = real("dropout_ratio", dropout_ratio, low=0.0, high=1.0, high_open=True)
        self.rng = rng or Generator()
        self.params, self.grads = [], []
        self.mask = None

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        xp = array_namespace(x)
        if not xp.isdtype(x.dtype, "real floating"):  # integers (uint8 pixels): the mask and scale need floats
            x = xp.astype(x, xp.float64)
        if not train_flg:
            return x * (1.0 - self.dropout_ratio)
        keep = self.rng.uniform(tuple(x.shape), dtype=x.dtype, device=device_of(x)) > self.dropout_ratio
        self.mask = xp.astype(keep, x.dtype)
        return x * self.mask

    def backward(self, dout: Array) -> Array:
        return dout * self.mask


class BatchNormalization:
    """Batch normalisation over the batch axis; ``x: (N, D)`` or ``(N, C, H, W)``
    (flattened to ``(N, C*H*W)`` as in the book, so ``gamma: (D,)``).

    Training uses the batch statistics and updates
    ``running_mean``/``running_var`` as an exponential moving average with
    ``momentum``; inference uses them.  A one-sample training batch is allowed, as in
    the book (its gradient check uses one), though it normalises to ``beta``: the Trainer
    refuses batch sizes that would give one.  ``params = [gamma, beta]``,
    ``grads = [dgamma, dbeta]`` (written in place by backward).
    """

    eps = 1e-6
    gamma, beta = _Slot("params", 0), _Slot("params", 1)
    dgamma, dbeta = _Slot("grads", 0), _Slot("grads", 1)

    def __init__(self, gamma: Array, beta: Array, momentum: float = 0.9,
                 running_mean: Array | None = None, running_var: Array | None = None) -> None:
        if gamma.ndim != 1 or tuple(beta.shape) != tuple(gamma.shape):
            raise ValueError(f"gamma, beta: expected two vectors of one shape (D,), "
                             f"got {tuple(gamma.shape)} and {tuple(beta.shape)}")
        self.params = [gamma, beta]
        self.grads = _zero_grads(self.params)
        self.momentum = float(momentum)
        self.input_shape = None
        self.running_mean = running_mean
        self.running_var = running_var
        self.batch_size = None
        self.xc = None
        self.xn = None
        self.std = None

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        xp = array_namespace(x, self.gamma)
        D = self.gamma.shape[0]
        if x.ndim < 1 or math.prod(x.shape[1:]) != D:
            raise ValueError(f"x: expected {D} features per sample, got shape {tuple(x.shape)}")
        if train_flg and x.shape[0] == 0:
            raise ValueError("x: a training batch needs samples for its statistics, got 0")
        self.input_shape = tuple(x.shape)
        x = xp.reshape(x, (x.shape[0], D))
        if self.running_mean is None:
            self.running_mean = xp.zeros_like(self.gamma)
        if self.running_var is None:
            self.running_var = xp.zeros_like(self.gamma)
        if train_flg:
            mu = xp.mean(x, axis=0)
            self.xc = x - mu
            var = xp.mean(self.xc ** 2, axis=0)
            self.std = xp.sqrt(var + self.eps)
            self.xn = self.xc / self.std
            self.batch_size = x.shape[0]
            self.running_mean = self.momentum * self.running_mean + (1.0 - self.momentum) * mu
            self.running_var = self.momentum * self.running_var + (1.0 - self.momentum) * var
            xn = self.xn
        else:
            xn = (x - self.running_mean) / xp.sqrt(self.running_var + self.eps)
        return xp.reshape(self.gamma * xn + self.beta, self.input_shape)

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout, self.gamma)
        dout = xp.reshape(dout, (dout.shape[0], self.gamma.shape[0]))
        _write(self.dbeta, xp.sum(dout, axis=0))
        _write(self.dgamma, xp.sum(self.xn * dout, axis=0))
        dxn = self.gamma * dout
        dxc = dxn / self.std
        dstd = -xp.sum(dxn * self.xc / (self.std * self.std), axis=0)
        dvar = 0.5 * dstd / self.std
        dxc = dxc + (2.0 / self.batch_size) * self.xc * dvar
        dmu = xp.sum(dxc, axis=0)
        dx = dxc - dmu / self.batch_size
        return xp.reshape(dx, self.input_shape)

