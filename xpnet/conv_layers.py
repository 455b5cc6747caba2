"""The book's convolutional layers, ``Convolution`` and ``Pooling`` (re-exported by
:mod:`xpnet.layers`, so ``common.layers.Convolution`` ports as ``xpnet.layers.Convolution``).

Both work on :func:`xpnet.util.unfold`'s channel-major columns, the book's im2col
transposed so that a convolution is ONE large matrix product.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from .checks import nonnegative_int, one_of, positive_int
from .util import conv_output_size, fold, unfold
from .winograd import conv3x3_backward, conv3x3_forward, fast_conv_applies, winograd_valid

Array = Any


class Convolution:
    """2-D convolution; ``W: (FN, C, FH, FW)``, ``b: (FN,)``, ``x: (N, C, H, W)``
    -> ``(N, FN, out_h, out_w)``.

    The book's im2col product, transposed so that it is one large matrix product:
    ``col = unfold(x)`` is ``(C*FH*FW, N*out_h*out_w)`` and ``out = W.reshape(FN, -1) @ col``.
    Backward folds ``W.T @ dout`` back with col2im, as the book does, except where a
    transposed convolution is the smaller job (:meth:`_dx_by_transposed_convolution`).
    ``input_grad = False`` (a net's first layer): backward skips ``dx`` and returns ``None``.

    ``algorithm`` (keyword-only): ``"im2col"`` (the above), ``"winograd"`` (stride-1 3x3
    filters only: :mod:`xpnet.winograd`, fewer operations per step), or ``"auto"``: Winograd
    where it was measured faster (``winograd.MEASURED_FASTER``: on the CPU, no shape yet).
    """

    input_grad = True

    def __init__(self, W: Array, b: Array, stride: int = 1, pad: int = 0, *, algorithm: str = "auto") -> None:
        if W.ndim != 4:
            raise ValueError(f"W: expected 4-D filters (FN, C, FH, FW), got shape {tuple(W.shape)}")
        if tuple(b.shape) != (W.shape[0],):
            raise ValueError(f"b: expected one bias per filter, shape ({W.shape[0]},), got {tuple(b.shape)}")
        self.W = W
        self.b = b
        self.stride = positive_int("stride", stride)
        self.pad = nonnegative_int("pad", pad)
        self.algorithm = one_of("algorithm", algorithm, ("auto", "im2col", "winograd"))
        self.winograd_saved = None  # set by a Winograd forward: what its backward needs
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
        self.winograd_saved = None
        if self._uses_winograd(tuple(x.shape)):
            out, self.winograd_saved = conv3x3_forward(x, self.W, self.b, self.pad)
            return out
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
        if self.winograd_saved is not None:
            dx, self.dW, self.db = conv3x3_backward(dout, self.winograd_saved, input_grad=self.input_grad)
            return dx
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

    def _uses_winograd(self, x_shape: tuple[int, ...]) -> bool:
        W_shape = tuple(self.W.shape)
        if self.algorithm == "winograd":
            if not winograd_valid(W_shape, self.stride, self.pad, x_shape):
                raise ValueError(f"algorithm='winograd' needs 3x3 filters, stride 1 and pad <= 2; got filters "
                                 f"{W_shape}, stride {self.stride}, pad {self.pad} on x {x_shape}")
            return True
        return self.algorithm == "auto" and fast_conv_applies(W_shape, self.stride, self.pad, x_shape)

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
