"""Layers with forward/backward (the book's ``common/layers.py``, plus the second
book's ``MatMul`` and ``Softmax``), written once for every Array API backend.

Each layer takes its namespace from the arrays it is given, keeps what backward
needs, and never mutates the ``dout`` it receives.  Parameter attributes
(``W``, ``b``, ``gamma``, ...) are the very arrays of the net's ``params`` dict.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

from .backend import Generator, device_of
from .checks import nonnegative_int, positive_int
from .functions import as_one_hot, log_softmax, sigmoid, softmax
from .util import conv_output_size, fold, unfold

Array = Any


class Relu:
    """``max(x, 0)``; ``mask`` marks where the input was <= 0."""

    def __init__(self) -> None:
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
        self.out = None

    def forward(self, x: Array) -> Array:
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout: Array) -> Array:
        return dout * (1.0 - self.out) * self.out


class Affine:
    """``x @ W + b``; ``x: (N, ...)`` is flattened to ``(N, D)``, ``W: (D, M)``, ``b: (M,)``.

    ``input_grad = False`` (a net sets it on its first layer, whose ``dx`` nobody uses):
    backward computes ``dW`` and ``db`` only and returns ``None``.
    """

    input_grad = True

    def __init__(self, W: Array, b: Array) -> None:
        self.W = W
        self.b = b
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x: Array) -> Array:
        xp = array_namespace(x, self.W)
        if x.ndim < 1 or math.prod(x.shape[1:]) != self.W.shape[0]:
            raise ValueError(f"x: expected (N, ...) with {self.W.shape[0]} features per sample, got {tuple(x.shape)}")
        self.original_x_shape = tuple(x.shape)
        self.x = xp.reshape(x, (x.shape[0], -1))
        return xp.matmul(self.x, self.W) + self.b

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout, self.W)
        self.dW = xp.matmul(self.x.T, dout)
        self.db = xp.sum(dout, axis=0)
        if not self.input_grad:
            return None
        return xp.reshape(xp.matmul(dout, self.W.T), self.original_x_shape)


class MatMul:
    """``x @ W`` in the second book's style: ``params = [W]``, ``grads = [dW]`` (updated in place)."""

    def __init__(self, W: Array) -> None:
        xp = array_namespace(W)
        self.params = [W]
        self.grads = [xp.zeros_like(W)]
        self.x = None

    def forward(self, x: Array) -> Array:
        W, = self.params
        xp = array_namespace(x, W)
        self.x = x
        return xp.matmul(x, W)

    def backward(self, dout: Array) -> Array:
        W, = self.params
        xp = array_namespace(dout, W)
        self.grads[0][...] = xp.matmul(self.x.T, dout)
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
    """Drops each unit with probability ``dropout_ratio`` in training; scales by
    ``1 - dropout_ratio`` at test time (the book's convention)."""

    def __init__(self, dropout_ratio: float = 0.5, *, rng: Generator | None = None) -> None:
        if not 0.0 <= dropout_ratio < 1.0:
            raise ValueError(f"dropout_ratio: expected a value in [0, 1), got {dropout_ratio}")
        self.dropout_ratio = float(dropout_ratio)
        self.rng = rng or Generator()
        self.mask = None

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        xp = array_namespace(x)
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

    Training uses the batch statistics and updates ``running_mean``/``running_var``
    as an exponential moving average with ``momentum``; inference uses them.
    """

    eps = 1e-6

    def __init__(self, gamma: Array, beta: Array, momentum: float = 0.9,
                 running_mean: Array | None = None, running_var: Array | None = None) -> None:
        self.gamma = gamma
        self.beta = beta
        self.momentum = float(momentum)
        self.input_shape = None
        self.running_mean = running_mean
        self.running_var = running_var
        self.batch_size = None
        self.xc = None
        self.xn = None
        self.std = None
        self.dgamma = None
        self.dbeta = None

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        xp = array_namespace(x, self.gamma)
        self.input_shape = tuple(x.shape)
        x = xp.reshape(x, (x.shape[0], -1))
        if x.shape[1] != self.gamma.shape[0]:
            raise ValueError(f"x: expected {self.gamma.shape[0]} features per sample, got {x.shape[1]}")
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
        dout = xp.reshape(dout, (dout.shape[0], -1))
        self.dbeta = xp.sum(dout, axis=0)
        self.dgamma = xp.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        dxc = dxn / self.std
        dstd = -xp.sum(dxn * self.xc / (self.std * self.std), axis=0)
        dvar = 0.5 * dstd / self.std
        dxc = dxc + (2.0 / self.batch_size) * self.xc * dvar
        dmu = xp.sum(dxc, axis=0)
        dx = dxc - dmu / self.batch_size
        return xp.reshape(dx, self.input_shape)


class Convolution:
    """2-D convolution; ``W: (FN, C, FH, FW)``, ``b: (FN,)``, ``x: (N, C, H, W)``
    -> ``(N, FN, out_h, out_w)``.

    The book's im2col product, transposed so that it is one large matrix product:
    ``col = unfold(x)`` is ``(C*FH*FW, N*out_h*out_w)`` and ``out = W.reshape(FN, -1) @ col``.
    Backward folds ``W.T @ dout`` back with col2im, as the book does, except where a
    transposed convolution is the smaller job (:meth:`_dx_by_transposed_convolution`).
    ``input_grad = False`` (a net's first layer): backward skips ``dx`` and returns ``None``.
    """

    input_grad = True

    def __init__(self, W: Array, b: Array, stride: int = 1, pad: int = 0) -> None:
        if W.ndim != 4:
            raise ValueError(f"W: expected 4-D filters (FN, C, FH, FW), got shape {tuple(W.shape)}")
        if tuple(b.shape) != (W.shape[0],):
            raise ValueError(f"b: expected one bias per filter, shape ({W.shape[0]},), got {tuple(b.shape)}")
        self.W = W
        self.b = b
        self.stride = positive_int("stride", stride)
        self.pad = nonnegative_int("pad", pad)
        self.x_shape = None
        self.col = None  # reused by the next forward (a fresh large array costs page faults)
        self.padded_dout_col = None  # unfold of the padded dout, reused likewise
        self.dW = None
        self.db = None

    def forward(self, x: Array) -> Array:
        xp = array_namespace(x, self.W)
        FN, C, FH, FW = self.W.shape
        if x.ndim != 4 or x.shape[1] != C:
            raise ValueError(f"x: expected (N, {C}, H, W), got {tuple(x.shape)}")
        self.col = unfold(x, FH, FW, self.stride, self.pad, out=self.col)
        N, _, H, W = x.shape
        out_h = conv_output_size(H, FH, self.stride, self.pad)
        out_w = conv_output_size(W, FW, self.stride, self.pad)
        self.x_shape = tuple(x.shape)
        out = xp.matmul(xp.reshape(self.W, (FN, -1)), self.col)
        out += xp.reshape(self.b, (FN, 1))
        return xp.permute_dims(xp.reshape(out, (FN, N, out_h, out_w)), (1, 0, 2, 3))

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout, self.W)
        FN, C, FH, FW = self.W.shape
        dout_rows = xp.reshape(xp.permute_dims(dout, (1, 0, 2, 3)), (FN, -1))  # the book's dout, transposed
        self.db = xp.sum(dout_rows, axis=1)
        self.dW = xp.reshape(xp.matmul(self.col, dout_rows.T).T, (FN, C, FH, FW))  # NOTES.md, change 7
        if not self.input_grad:
            return None
        if self.stride == 1 and FH == FW and self.pad < FH and FN <= C:
            return self._dx_by_transposed_convolution(dout)
        dcol = xp.matmul(xp.reshape(self.W, (FN, -1)).T, dout_rows)
        return fold(dcol, self.x_shape, FH, FW, self.stride, self.pad)

    def _dx_by_transposed_convolution(self, dout: Array) -> Array:
        """``dx`` as a convolution of ``dout``, zero-padded by ``FH - 1 - pad``, with the
        filters flipped and their axes swapped: no col2im (``benchmarks/NOTES.md``, change 11).

        For stride 1 and square filters this equals ``fold(W.T @ dout)``; where
        FN <= C it is one unfold and one matrix product with inner size C*FH*FW
        instead of a thin product (inner size FN) and FH*FW strided adds.
        """
        xp = array_namespace(dout, self.W)
        FN, C, FH, FW = self.W.shape
        N, _, H, W = self.x_shape
        flipped = xp.permute_dims(xp.flip(self.W, axis=(2, 3)), (1, 0, 2, 3))
        self.padded_dout_col = unfold(dout, FH, FW, 1, FH - 1 - self.pad, out=self.padded_dout_col)
        dx = xp.matmul(xp.reshape(flipped, (C, -1)), self.padded_dout_col)
        return xp.permute_dims(xp.reshape(dx, (C, N, H, W)), (1, 0, 2, 3))


class Pooling:
    """Max pooling; ``x: (N, C, H, W)`` -> ``(N, C, out_h, out_w)``.

    The book's im2col pooling, in :func:`unfold`'s channel-major layout: ``col``
    seen as ``(C, pool_h*pool_w, N, out_h, out_w)`` holds each window's pixels
    along axis 1, and ``out`` is their maximum.  Backward sends each ``dout`` to the
    first pixel of its window that holds the maximum (the book's ``argmax``: the
    first one wins ties) and folds the windows back.  Forward keeps only ``col``
    and ``out``; the mask is built in backward, so inference pays nothing for it.

    Note: the default ``stride`` is 2.  The book's ``common/layers.py`` defaults to
    ``stride=1`` (overlapping windows), while every net of the book passes ``stride=2``.
    """

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        self.pool_h = positive_int("pool_h", pool_h)
        self.pool_w = positive_int("pool_w", pool_w)
        self.stride = positive_int("stride", stride)
        self.pad = nonnegative_int("pad", pad)
        self.x_shape = None
        self.col = None
        self.out = None

    def forward(self, x: Array) -> Array:
        xp = array_namespace(x)
        if x.ndim != 4:
            raise ValueError(f"x: expected (N, C, H, W), got {tuple(x.shape)}")
        self.col = unfold(x, self.pool_h, self.pool_w, self.stride, self.pad, out=self.col)
        N, C, H, W = x.shape
        out_h = conv_output_size(H, self.pool_h, self.stride, self.pad)
        out_w = conv_output_size(W, self.pool_w, self.stride, self.pad)
        self.x_shape = tuple(x.shape)
        col = xp.reshape(self.col, (C, self.pool_h * self.pool_w, N, out_h, out_w))
        self.out = xp.max(col, axis=1)
        return xp.permute_dims(self.out, (1, 0, 2, 3))

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout)
        C, N, out_h, out_w = self.out.shape
        pool_size = self.pool_h * self.pool_w
        col = xp.reshape(self.col, (C, pool_size, N, out_h, out_w))
        mask = col == self.out[:, None, ...]  # every pixel holding its window's maximum
        seen = mask[:, 0, ...]
        for k in range(1, pool_size):  # on ties the first one wins: later ones lose
            later = mask[:, k, ...]
            later &= ~seen
            seen = seen | later
        dcol = xp.astype(mask, dout.dtype)
        dcol *= xp.permute_dims(dout, (1, 0, 2, 3))[:, None, ...]
        return fold(xp.reshape(dcol, (C * pool_size, -1)), self.x_shape, self.pool_h, self.pool_w,
                    self.stride, self.pad)
