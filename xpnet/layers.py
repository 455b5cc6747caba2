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

The layer protocol, which nets, checkpoints, summaries and device moves read:

- ``params``/``grads``: lists, grads written in place by backward; names such as
  ``W``/``dW`` through :class:`Slot`.
- ``persistent``: a class attribute naming buffers that are saved and moved with the
  net but not trained (BatchNormalization's running statistics); absent means none.
- ``takes_train_flg = True``: ``forward(x, train_flg=True)`` behaves differently in
  training (Dropout, BatchNormalization); absent means ``forward(x)``.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from ._protocol import Slot, param, write_grad, zero_grads
from .backend import Generator, device_of, np, zeros
from .checks import real
from .conv_layers import Convolution, Pooling
from .functions import (as_one_hot, cross_entropy_error, identity_function, log_softmax, mean_squared_error,
                        relu, relu_grad, sigmoid, sigmoid_grad, softmax, softmax_loss, step_function,
                        sum_squared_error)
from .util import col2im, im2col

Array = Any

__all__ = ["Slot", "Relu", "Sigmoid", "Affine", "MatMul", "Softmax", "SoftmaxWithLoss", "Dropout", "BatchNormalization",
           "Convolution", "Pooling",
           # what the book's ``from common.layers import *`` also gives: its functions, im2col/col2im, np
           "identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu", "relu_grad", "softmax",
           "sum_squared_error", "mean_squared_error", "cross_entropy_error", "softmax_loss", "im2col", "col2im", "np"]


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
    W, b = Slot("params", 0), Slot("params", 1)
    dW, db = Slot("grads", 0), Slot("grads", 1)

    def __init__(self, W: Array, b: Array | float) -> None:
        if W.ndim != 2:
            raise ValueError(f"W: expected a matrix (D, M), got shape {tuple(W.shape)}")
        b = param("b", b)
        if not isinstance(b, float) and tuple(b.shape) != (W.shape[1],):
            raise ValueError(f"b: expected shape ({W.shape[1]},) to match W {tuple(W.shape)}, got {tuple(b.shape)}")
        self.params = [W, b]
        self.grads = zero_grads(self.params)
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
        xp = array_namespace(dout, W)
        write_grad(self, 0, xp.matmul(self.x.T, dout))  # dW
        write_grad(self, 1, xp.sum(dout, axis=0))  # db
        if not self.input_grad:
            return None
        return xp.reshape(xp.matmul(dout, W.T), self.original_x_shape)


class MatMul:
    """``x @ W`` (second book); ``params = [W]``, ``grads = [dW]`` (written in place)."""

    W, dW = Slot("params", 0), Slot("grads", 0)

    def __init__(self, W: Array) -> None:
        if W.ndim != 2:
            raise ValueError(f"W: expected a matrix (D, M), got shape {tuple(W.shape)}")
        self.params = [W]
        self.grads = zero_grads(self.params)
        self.x = None

    def forward(self, x: Array) -> Array:
        W, = self.params
        xp = array_namespace(x, W)
        self.x = x
        return xp.matmul(x, W)

    def backward(self, dout: Array) -> Array:
        W, = self.params
        xp = array_namespace(dout, W)
        write_grad(self, 0, xp.matmul(self.x.T, dout))  # dW
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
    """Softmax + cross-entropy; ``x: (N, C)``, ``t``: class indices ``(N,)`` or one-hot ``(N, C)``.

    The book's: ``y = softmax(x)``, ``loss = cross_entropy_error(y, t)``, backward
    ``(y - t) / batch_size``.  Two differences, both for sound numbers: ``t`` is always
    one-hot here (:func:`as_one_hot`: indices become rows, an index naming no class a
    NaN row, so the loss cannot look finite), and the log comes from ``log_softmax(x)``,
    exact where ``softmax`` underflows to 0 (the book adds 1e-7 inside its log instead).
    """

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.loss = None
        self.y = None
        self.t = None

    def forward(self, x: Array, t: Array) -> Array:
        xp = array_namespace(x, t)
        self.t = as_one_hot(x, t)
        log_y = log_softmax(x)
        self.y = xp.exp(log_y)  # softmax(x)
        self.loss = -xp.sum(self.t * log_y) / x.shape[0]  # cross_entropy_error(y, t)
        return self.loss

    def backward(self, dout: Any = 1.0) -> Array:
        batch_size = self.t.shape[0]
        return (self.y - self.t) * (dout / batch_size)


class Dropout:
    """Drops each unit with probability ``dropout_ratio`` (a real number in [0, 1)) in
    training; scales by ``1 - dropout_ratio`` at test time (the book's convention)."""

    takes_train_flg = True

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
        keep = self.rng.keep_mask(tuple(x.shape), self.dropout_ratio, device=device_of(x))  # rand > ratio
        self.mask = xp.astype(keep, x.dtype)  # the book's boolean mask, as 1.0/0.0
        return x * self.mask

    def backward(self, dout: Array) -> Array:
        return dout * self.mask


class BatchNormalization:
    """Batch normalisation over the batch axis; ``x: (N, D)`` or ``(N, C, H, W)``
    (flattened to ``(N, C*H*W)`` as in the book, so ``gamma: (D,)``; or numbers, as the
    book's arithmetic takes them).

    Training uses the batch statistics and updates
    ``running_mean``/``running_var`` as an exponential moving average with
    ``momentum`` (in [0, 1)); inference uses them.  A one-sample training batch is
    allowed, as in the book (its gradient check uses one), though it normalises to
    ``beta``: the Trainer refuses batch sizes that would give one.  ``params = [gamma,
    beta]``, ``grads = [dgamma, dbeta]`` (written in place by backward).
    """

    takes_train_flg = True
    persistent = ("running_mean", "running_var")
    eps = 1e-6
    gamma, beta = Slot("params", 0), Slot("params", 1)
    dgamma, dbeta = Slot("grads", 0), Slot("grads", 1)

    def __init__(self, gamma: Array | float, beta: Array | float, momentum: float = 0.9,
                 running_mean: Array | None = None, running_var: Array | None = None) -> None:
        gamma, beta = param("gamma", gamma), param("beta", beta)
        shapes = [tuple(getattr(p, "shape", ())) for p in (gamma, beta)]
        if any(len(shape) > 1 for shape in shapes) or (len(shapes[0]) == len(shapes[1]) == 1 and shapes[0] != shapes[1]):
            raise ValueError(f"gamma, beta: expected vectors of one shape (D,) or numbers, got shapes "
                             f"{shapes[0]} and {shapes[1]}")
        self.params = [gamma, beta]
        self.grads = zero_grads(self.params)
        self.momentum = real("momentum", momentum, low=0.0, high=1.0, high_open=True)
        self.input_shape = None
        self.running_mean = running_mean
        self.running_var = running_var
        self.batch_size = None
        self.xc = None
        self.xn = None
        self.std = None

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        xp = array_namespace(x)
        D = self._features(x)
        if train_flg and x.shape[0] == 0:
            raise ValueError("x: a training batch needs samples for its statistics, got 0")
        self.input_shape = tuple(x.shape)
        x = xp.reshape(x, (x.shape[0], D))
        if self.running_mean is None:
            self.running_mean = zeros((D,), dtype=x.dtype, device=device_of(x))
            self.running_var = zeros((D,), dtype=x.dtype, device=device_of(x))
        if train_flg:
            mu = xp.mean(x, axis=0)
            xc = x - mu
            var = xp.mean(xc ** 2, axis=0)
            std = xp.sqrt(var + self.eps)
            xn = xc / std
            self.batch_size, self.xc, self.xn, self.std = x.shape[0], xc, xn, std
            self.running_mean = self.momentum * self.running_mean + (1.0 - self.momentum) * mu
            self.running_var = self.momentum * self.running_var + (1.0 - self.momentum) * var
        else:
            xc = x - self.running_mean
            xn = xc / xp.sqrt(self.running_var + self.eps)
        out = self.gamma * xn + self.beta
        return xp.reshape(out, self.input_shape)

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout)
        dout = xp.reshape(dout, (dout.shape[0], -1))
        write_grad(self, 1, xp.sum(dout, axis=0))  # dbeta
        write_grad(self, 0, xp.sum(self.xn * dout, axis=0))  # dgamma
        dxn = self.gamma * dout
        dxc = dxn / self.std
        dstd = -xp.sum((dxn * self.xc) / (self.std * self.std), axis=0)
        dvar = 0.5 * dstd / self.std
        dxc = dxc + (2.0 / self.batch_size) * self.xc * dvar
        dmu = xp.sum(dxc, axis=0)
        dx = dxc - dmu / self.batch_size
        return xp.reshape(dx, self.input_shape)

    def _features(self, x: Array) -> int:
        """``D``, the features per sample: ``gamma``'s length, checked against ``x``."""
        D = math.prod(x.shape[1:]) if x.ndim >= 1 else 0
        sizes = {int(p.shape[0]) for p in self.params if not isinstance(p, float)}
        if x.ndim < 1 or (sizes and sizes != {D}):
            raise ValueError(f"x: expected {sizes.pop() if sizes else 'D'} features per sample, "
                             f"got shape {tuple(x.shape)}")
        return D
