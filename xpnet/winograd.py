"""Winograd F(2x2, 3x3): stride-1 3x3 convolution with 2.25x fewer multiplications.

The image is cut into overlapping 4x4 tiles (stride 2), each giving a 2x2 block of
the output.  With the constant matrices ``B``, ``G``, ``A`` of Lavin and Gray (2015),
one tile ``d`` and one filter ``g`` give ``y = A.T @ ((G @ g @ G.T) * (B.T @ d @ B)) @ A``:
16 products instead of 36.  Over channels the elementwise product becomes, for each of
the 16 tile positions, a matrix product ``(FN, C) @ (C, tiles)``: ONE batched matmul
``(16, FN, C) @ (16, C, tiles)``.  The three transforms are matrix products too, with
the Kronecker products ``kron(B.T, B.T)`` (16x16), ``kron(G, G)`` (16x9) and
``kron(A.T, A.T)`` (4x16), so a whole convolution is a handful of large operations.
Backward runs in the same transform space (the adjoint of every step).

Layouts are :class:`xpnet.layers.Convolution`'s: ``x: (N, C, H, W)``,
``W: (FN, C, 3, 3)``, ``b: (FN,)``, output ``(N, FN, out_h, out_w)`` (a channel-major
view, like Convolution's).  Measured against the im2col path in
``benchmarks/NOTES.md`` ("Winograd F(2x2, 3x3)"); :func:`fast_conv_applies` selects
the shapes where it was faster (none yet: on the CPU it is slower at every DeepConvNet
shape).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import array_api_extra as xpx
from array_api_compat import array_namespace
from array_api_compat import device as array_device

Array = Any

_BT = ((1.0, 0.0, -1.0, 0.0), (0.0, 1.0, 1.0, 0.0), (0.0, -1.0, 1.0, 0.0), (0.0, 1.0, 0.0, -1.0))
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
_AT = ((1.0, 1.0, 1.0, 0.0), (0.0, 1.0, -1.0, -1.0))

# Shapes ``(C, FN, H, W, pad)`` at which this was measured faster than im2col
# (``benchmarks/bench_conv.py``).  Empty: on the 2-core CPU (NumPy + OpenBLAS) it is
# slower at every DeepConvNet shape, forward and backward (NOTES.md, "Winograd
# F(2x2, 3x3)"); it has not run on a GPU yet.
MEASURED_FASTER: frozenset[tuple[int, int, int, int, int]] = frozenset()


def _kron(a: tuple, b: tuple) -> list[list[float]]:
    return [[x * y for x in ra for y in rb] for ra in a for rb in b]


_K_INPUT, _K_FILTER, _K_OUTPUT = _kron(_BT, _BT), _kron(_G, _G), _kron(_AT, _AT)
_cache: dict[tuple[str, str, str], tuple[Array, Array, Array]] = {}


def _transforms(xp: Any, dtype: Any, device: Any) -> tuple[Array, Array, Array]:
    """``kron(B.T, B.T)`` (16, 16), ``kron(G, G)`` (16, 9), ``kron(A.T, A.T)`` (4, 16), cached."""
    key = (xp.__name__, str(dtype), str(device))
    if key not in _cache:
        _cache[key] = tuple(xp.asarray(m, dtype=dtype, device=device) for m in (_K_INPUT, _K_FILTER, _K_OUTPUT))
    return _cache[key]


class Saved(NamedTuple):
    """What :func:`conv3x3_backward` needs from the forward pass."""

    U: Array  # transformed filters, (16, FN, C)
    V: Array  # transformed input tiles, (16, C, N*tiles_h*tiles_w)
    x_shape: tuple[int, int, int, int]
    pad: int


def winograd_valid(W_shape: tuple[int, ...], stride: int, pad: int, x_shape: tuple[int, ...]) -> bool:
    """Whether :func:`conv3x3_forward` computes this convolution: 3x3 filters matching
    the input's channels, stride 1, ``0 <= pad <= 2``, an output of at least 1x1."""
    if len(W_shape) != 4 or len(x_shape) != 4 or tuple(W_shape[2:]) != (3, 3) or W_shape[1] != x_shape[1]:
        return False
    return stride == 1 and 0 <= pad <= 2 and min(x_shape[2:]) + 2 * pad >= 3


def fast_conv_applies(W_shape: tuple[int, ...], stride: int, pad: int, x_shape: tuple[int, ...]) -> bool:
    """Whether :class:`xpnet.layers.Convolution` should use Winograd here: valid
    (:func:`winograd_valid`) and measured faster than im2col (:data:`MEASURED_FASTER`)."""
    if not winograd_valid(W_shape, stride, pad, x_shape):
        return False
    return (x_shape[1], W_shape[0], x_shape[2], x_shape[3], pad) in MEASURED_FASTER


def _tiles(size: int, pad: int) -> tuple[int, int]:
    out = size + 2 * pad - 2
    return out, (out + 1) // 2


def conv3x3_forward(x: Array, W: Array, b: Array, pad: int) -> tuple[Array, Saved]:
    """``(out, saved)``: the stride-1 convolution of ``x: (N, C, H, W)`` with
    ``W: (FN, C, 3, 3)`` plus ``b: (FN,)``, zero padding ``pad``, as Winograd F(2x2, 3x3).

    ``out: (N, FN, H + 2*pad - 2, W + 2*pad - 2)``; ``saved`` goes to :func:`conv3x3_backward`.
    """
    xp = array_namespace(x, W, b)
    if W.ndim != 4 or tuple(W.shape[2:]) != (3, 3):
        raise ValueError(f"W: expected (FN, C, 3, 3), got {tuple(W.shape)}")
    FN, C = W.shape[0], W.shape[1]
    if x.ndim != 4 or x.shape[1] != C:
        raise ValueError(f"x: expected (N, {C}, H, W), got {tuple(x.shape)}")
    if tuple(b.shape) != (FN,):
        raise ValueError(f"b: expected ({FN},), got {tuple(b.shape)}")
    if not isinstance(pad, int) or not 0 <= pad <= 2:
        raise ValueError(f"pad: expected 0, 1 or 2, got {pad!r}")
    N, _, H, Wd = x.shape
    out_h, th = _tiles(H, pad)
    out_w, tw = _tiles(Wd, pad)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"x: a 3x3 filter with pad {pad} does not fit an image of {H}x{Wd}")
    k_input, k_filter, k_output = _transforms(xp, x.dtype, array_device(x))
    # Channel-major padded image, cut into 2x2 blocks: block (p, q) holds rows 2p..2p+1.
    img = xpx.pad(xp.permute_dims(x, (1, 0, 2, 3)),
                  ((0, 0), (0, 0), (pad, 2 * th + 2 - H - pad), (pad, 2 * tw + 2 - Wd - pad)))
    blocks = xp.permute_dims(xp.reshape(img, (C, N, th + 1, 2, tw + 1, 2)), (3, 5, 0, 1, 2, 4))
    # Tile (p, q) is blocks (p..p+1, q..q+1): four block-shifted copies.
    d = xp.empty((2, 2, 2, 2, C, N, th, tw), dtype=x.dtype, device=array_device(x))
    for i in range(2):
        for j in range(2):
            d[i, :, j, :, ...] = blocks[:, :, :, :, i:i + th, j:j + tw]
    V = xp.reshape(xp.matmul(k_input, xp.reshape(d, (16, C * N * th * tw))), (16, C, N * th * tw))
    U = xp.reshape(xp.matmul(k_filter, xp.reshape(W, (FN * C, 9)).T), (16, FN, C))
    Y = xp.reshape(xp.matmul(k_output, xp.reshape(xp.matmul(U, V), (16, FN * N * th * tw))),
                   (4, FN, N * th * tw))
    Y += xp.reshape(b, (1, FN, 1))
    out = xp.reshape(xp.permute_dims(xp.reshape(Y, (2, 2, FN, N, th, tw)), (2, 3, 4, 0, 5, 1)),
                     (FN, N, 2 * th, 2 * tw))
    out = xp.permute_dims(out[:, :, :out_h, :out_w], (1, 0, 2, 3))
    return out, Saved(U, V, (N, C, H, Wd), pad)


def conv3x3_backward(dout: Array, saved: Saved, *, input_grad: bool = True) -> tuple[Array | None, Array, Array]:
    """``(dx, dW, db)`` for ``dout: (N, FN, out_h, out_w)`` and the ``saved`` of
    :func:`conv3x3_forward`; ``dx`` is ``None`` when ``input_grad`` is false.
    """
    xp = array_namespace(dout, saved.U)
    U, V, (N, C, H, Wd), pad = saved
    FN = U.shape[1]
    out_h, th = _tiles(H, pad)
    out_w, tw = _tiles(Wd, pad)
    if tuple(dout.shape) != (N, FN, out_h, out_w):
        raise ValueError(f"dout: expected {(N, FN, out_h, out_w)}, got {tuple(dout.shape)}")
    k_input, k_filter, k_output = _transforms(xp, dout.dtype, array_device(dout))
    db = xp.sum(dout, axis=(0, 2, 3))
    dy = xp.permute_dims(dout, (1, 0, 2, 3))
    if (out_h, out_w) != (2 * th, 2 * tw):
        dy = xpx.pad(dy, ((0, 0), (0, 0), (0, 2 * th - out_h), (0, 2 * tw - out_w)))
    dy = xp.permute_dims(xp.reshape(dy, (FN, N, th, 2, tw, 2)), (3, 5, 0, 1, 2, 4))
    dM = xp.reshape(xp.matmul(k_output.T, xp.reshape(dy, (4, FN * N * th * tw))), (16, FN, N * th * tw))
    dU = xp.matmul(dM, xp.permute_dims(V, (0, 2, 1)))
    dW = xp.reshape(xp.matmul(xp.reshape(dU, (16, FN * C)).T, k_filter), (FN, C, 3, 3))
    if not input_grad:
        return None, dW, db
    dV = xp.matmul(xp.permute_dims(U, (0, 2, 1)), dM)
    dd = xp.reshape(xp.matmul(k_input.T, xp.reshape(dV, (16, C * N * th * tw))), (2, 2, 2, 2, C, N, th, tw))
    # The adjoint of the tile copies: tile (p, q) adds onto blocks (p..p+1, q..q+1) of
    # the padded image, seen as (C, N, th+1, 2, tw+1, 2).  Each add goes through a view
    # (`dimg[idx] += part` would also copy the view onto itself), with the tile column
    # as the last axis of both operands so that the inner loops run along rows.
    dimg = xp.zeros((C, N, th + 1, 2, tw + 1, 2), dtype=dout.dtype, device=array_device(dout))
    for i in range(2):
        for j in range(2):
            view = xp.permute_dims(dimg[:, :, i:i + th, :, j:j + tw, :], (0, 1, 2, 3, 5, 4))
            view += xp.permute_dims(dd[i, :, j, :, ...], (2, 3, 4, 0, 1, 5))
    dimg = xp.reshape(dimg, (C, N, 2 * th + 2, 2 * tw + 2))
    dx = xp.permute_dims(dimg[:, :, pad:pad + H, pad:pad + Wd], (1, 0, 2, 3))
    return dx, dW, db


def WinogradConvolution(W: Array, b: Array, stride: int = 1, pad: int = 0) -> Any:
    """A :class:`xpnet.layers.Convolution` that always runs Winograd (``algorithm="winograd"``);
    ``ValueError`` for a layer it cannot compute (for ``benchmarks/bench_step.py``'s rows)."""
    from .conv_layers import Convolution

    if not winograd_valid(tuple(W.shape), stride, pad, (1, W.shape[1], 3, 3)):
        raise ValueError(f"Winograd F(2x2, 3x3) needs 3x3 filters, stride 1 and pad <= 2, got {tuple(W.shape)}")
    return Convolution(W, b, stride=stride, pad=pad, algorithm="winograd")
