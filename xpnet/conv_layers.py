"""The book's convolutional layers, ``Convolution`` and ``Pooling`` (re-exported by
:mod:`xpnet.layers`, so ``common.layers.Convolution`` ports as ``xpnet.layers.Convolution``).

Both follow the book's im2col algorithm line by line, on :func:`xpnet.util.unfold`'s
channel-major columns: the book's ``col`` transposed, ``(C*FH*FW, N*out_h*out_w)``, so
that a convolution is ONE large matrix product ``col_W @ col`` (what BLAS and cuBLAS
do fastest).  Every product below is the book's, transposed.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from ._protocol import Slot, param, write_grad, zero_grads
from .backend import arange, device_of
from .checks import nonnegative_int, positive_int
from .util import conv_output_size, fold, unfold

Array = Any


class Convolution:
    """2-D convolution; ``W: (FN, C, FH, FW)``, ``b: (FN,)`` (or a number), ``x: (N, C, H, W)``
    -> ``(N, FN, out_h, out_w)``.  ``params = [W, b]``, ``grads = [dW, db]`` (written in place).

    Forward: ``col = im2col(x).T``; ``out = col_W @ col + b`` with ``col_W = W.reshape(FN, -1)``.
    Backward: ``db = sum(dout)``, ``dW = (col @ dout.T).T`` (the book's ``col.T @ dout``,
    transposed), ``dx = col2im(col_W.T @ dout)``, or the same ``dx`` as a transposed
    convolution where it applies (:func:`transposed_convolution_applies`).
    ``input_grad = False`` (a net's first layer): backward skips ``dx`` and returns ``None``.
    """

    input_grad = True
    W, b = Slot("params", 0), Slot("params", 1)
    dW, db = Slot("grads", 0), Slot("grads", 1)

    def __init__(self, W: Array, b: Array | float, stride: int = 1, pad: int = 0) -> None:
        if W.ndim != 4:
            raise ValueError(f"W: expected 4-D filters (FN, C, FH, FW), got shape {tuple(W.shape)}")
        b = param("b", b)
        if not isinstance(b, float) and tuple(b.shape) != (W.shape[0],):
            raise ValueError(f"b: expected one bias per filter, shape ({W.shape[0]},), got {tuple(b.shape)}")
        self.params = [W, b]
        self.grads = zero_grads(self.params)
        self.stride = positive_int("stride", stride)
        self.pad = nonnegative_int("pad", pad)
        self.x_shape = None
        self.col = None
        self.dout_col = None  # the transposed convolution's columns (see dx_by_transposed_convolution)

    def forward(self, x: Array) -> Array:
        xp = array_namespace(x, self.W)
        FN, C, FH, FW = self.W.shape
        if x.ndim != 4 or x.shape[1] != C:
            raise ValueError(f"x: expected (N, {C}, H, W), got {tuple(x.shape)}")
        self.col = unfold(x, FH, FW, self.stride, self.pad, out=self.col)  # im2col(x).T, its buffer reused
        N, _, H, W = x.shape
        out_h = conv_output_size(H, FH, self.stride, self.pad)
        out_w = conv_output_size(W, FW, self.stride, self.pad)
        col_W = xp.reshape(self.W, (FN, -1))
        out = xp.matmul(col_W, self.col)
        out += _column(xp, self.b)
        out = xp.permute_dims(xp.reshape(out, (FN, N, out_h, out_w)), (1, 0, 2, 3))

        self.x_shape = tuple(x.shape)
        return out

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout, self.W)
        FN, C, FH, FW = self.W.shape
        dout_rows = xp.reshape(xp.permute_dims(dout, (1, 0, 2, 3)), (FN, -1))  # the book's dout, transposed

        write_grad(self, 1, xp.sum(dout_rows, axis=1))  # db
        write_grad(self, 0, xp.reshape(xp.matmul(self.col, dout_rows.T).T, (FN, C, FH, FW)))  # dW
        if not self.input_grad:
            return None
        if transposed_convolution_applies(tuple(self.W.shape), self.stride, self.pad):
            dx, self.dout_col = dx_by_transposed_convolution(dout, self.W, self.pad, self.x_shape, self.dout_col)
            return dx
        dcol = xp.matmul(xp.reshape(self.W, (FN, -1)).T, dout_rows)
        return fold(dcol, self.x_shape, FH, FW, self.stride, self.pad)  # col2im(dcol.T)


def _column(xp: Any, b: Array | float) -> Array | float:
    """``b`` as a column ``(FN, 1)``, added to every output position (a number as it is)."""
    return b if isinstance(b, float) else xp.reshape(b, (-1, 1))


def transposed_convolution_applies(W_shape: tuple[int, int, int, int], stride: int, pad: int) -> bool:
    """Whether :func:`dx_by_transposed_convolution` gives ``dx`` (stride 1, square filters, pad
    below the filter size), which it does in a handful of operations where col2im takes
    ``FH*FW`` strided adds (a GPU's launches), and as fast on the CPU."""
    FN, C, FH, FW = W_shape
    return stride == 1 and FH == FW and pad < FH


def dx_by_transposed_convolution(dout: Array, W: Array, pad: int, x_shape: tuple[int, ...],
                                 buffer: Array | None = None) -> tuple[Array, Array]:
    """``dx`` of a stride-1 convolution as a convolution of ``dout``, zero-padded by
    ``FH - 1 - pad``, with the filters flipped and their axes swapped: equal to
    ``col2im(col_W.T @ dout)``, without col2im.  Returns ``dx`` and the columns of the
    padded ``dout`` (pass them back as ``buffer``: their memory is reused)."""
    xp = array_namespace(dout, W)
    FN, C, FH, FW = W.shape
    N, _, H, W_ = x_shape
    flipped = xp.permute_dims(xp.flip(W, axis=(2, 3)), (1, 0, 2, 3))  # (C, FN, FH, FW)
    dout_col = unfold(dout, FH, FW, 1, FH - 1 - pad, out=buffer)
    dx = xp.matmul(xp.reshape(flipped, (C, -1)), dout_col)
    return xp.permute_dims(xp.reshape(dx, (C, N, H, W_)), (1, 0, 2, 3)), dout_col


class Pooling:
    """Max pooling; ``x: (N, C, H, W)`` -> ``(N, C, out_h, out_w)``; ``params = grads = []``.

    The book's: ``col = im2col(x)`` seen as one window per row, ``out = max(col)``;
    backward sends each ``dout`` to its window's ``argmax`` (the first maximum wins ties)
    and folds the windows back with col2im.  In the channel-major columns a window's
    pixels run along axis 1 of ``(C, pool_h*pool_w, N*out_h*out_w)``.

    Note: the default ``stride`` is 2.  The book's ``common/layers.py`` defaults to
    ``stride=1`` (overlapping windows), while every net of the book passes ``stride=2``.
    """

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        self.pool_h = positive_int("pool_h", pool_h)
        self.pool_w = positive_int("pool_w", pool_w)
        self.stride = positive_int("stride", stride)
        self.pad = nonnegative_int("pad", pad)
        self.params, self.grads = [], []
        self.x_shape = None
        self.col = None
        self.out = None
        self.ranks = None

    def forward(self, x: Array) -> Array:
        xp = array_namespace(x)
        if x.ndim != 4:
            raise ValueError(f"x: expected (N, C, H, W), got {tuple(x.shape)}")
        self.col = unfold(x, self.pool_h, self.pool_w, self.stride, self.pad, out=self.col)  # im2col(x).T
        N, C, H, W = x.shape
        out_h = conv_output_size(H, self.pool_h, self.stride, self.pad)
        out_w = conv_output_size(W, self.pool_w, self.stride, self.pad)

        col = xp.reshape(self.col, (C, self.pool_h * self.pool_w, -1))
        self.out = xp.max(col, axis=1)
        out = xp.permute_dims(xp.reshape(self.out, (C, N, out_h, out_w)), (1, 0, 2, 3))

        self.x_shape = tuple(x.shape)
        return out

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout)
        N, C, out_h, out_w = dout.shape
        pool_size = self.pool_h * self.pool_w
        col = xp.reshape(self.col, (C, pool_size, -1))

        arg_max = argmax_mask(col, self.out, self._ranks(col))  # the book's arg_max, one-hot: (C, pool_size, M)
        dout = xp.permute_dims(dout, (1, 0, 2, 3))[:, None, ...]
        dmax = xp.astype(xp.reshape(arg_max, (C, pool_size, N, out_h, out_w)), dout.dtype) * dout
        dcol = xp.reshape(dmax, (C * pool_size, -1))  # dout at each window's argmax, else 0
        return fold(dcol, self.x_shape, self.pool_h, self.pool_w, self.stride, self.pad)  # col2im(dcol.T)

    def _ranks(self, col: Array) -> Array:
        """:func:`argmax_mask`'s ranks for this layer's windows, made once per device."""
        if self.ranks is None or device_of(self.ranks) != device_of(col):
            self.ranks = window_ranks(self.pool_h * self.pool_w, device_of(col))
        return self.ranks

def window_ranks(K: int, device: Any) -> Array:
    """``K, K-1, ..., 1`` as ``(1, K, 1)`` (the first entry ranks highest), uint8 where K < 256."""
    ranks = arange(K, device=device)
    xp = array_namespace(ranks)
    return xp.reshape(xp.astype(K - ranks, xp.uint8 if K < 256 else xp.int32), (1, K, 1))


def argmax_mask(col: Array, col_max: Array, ranks: Array) -> Array:
    """The book's ``argmax`` over axis 1 of ``col: (C, K, M)`` as a one-hot boolean mask: True at
    the first of each column's K entries equal to ``col_max: (C, M)``.  A rank and a max (``ranks``
    from :func:`window_ranks`) instead of ``argmax``, which NumPy runs many times slower
    along a middle axis."""
    xp = array_namespace(col, col_max)
    rank = xp.astype(col == col_max[:, None, :], ranks.dtype) * ranks
    return rank == xp.max(rank, axis=1, keepdims=True)
