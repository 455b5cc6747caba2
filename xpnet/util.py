"""Helpers of the book's ``common/util.py``: curve smoothing, shuffling, im2col/col2im."""

from __future__ import annotations

import math
from typing import Any, Sequence

import array_api_extra as xpx
from array_api_compat import array_namespace, is_array_api_obj
from array_api_compat import device as array_device

from .backend import CPU, Generator, device_of, np, to_numpy
from .checks import nonnegative_int, positive_int, real

Array = Any

__all__ = ["smooth_curve", "shuffle_dataset", "conv_output_size", "im2col", "col2im", "unfold", "fold",
           "window_views", "add_windows", "np"]


def smooth_curve(x: Sequence[float] | Array, window_len: int = 11, beta: float = 2.0) -> list[float]:
    """``x`` smoothed by a normalised Kaiser window (for noisy loss curves), same length.

    The book's smoothing: the curve is mirrored at both ends as the book does (the
    first point is not repeated, the last one is), then each point becomes the
    weighted sum of the ``window_len`` points around it.  With the defaults this
    equals the book's ``smooth_curve``.  A curve shorter than the window is returned
    unchanged (the book's would come back shorter than its input).
    """
    window_len = positive_int("window_len", window_len)
    if window_len % 2 == 0:
        raise ValueError(f"window_len: expected an odd window length, got {window_len}")
    beta = real("beta", beta, low=0.0)
    xp = CPU.xp
    values = xp.asarray(to_numpy(x) if is_array_api_obj(x) else [float(v) for v in x], dtype=xp.float64)
    if values.ndim != 1:
        raise ValueError(f"x: expected a 1-D curve, got shape {tuple(values.shape)}")
    n = values.shape[0]
    if n < window_len:
        return to_numpy(values).tolist()
    half = window_len // 2
    padded = xp.concat([xp.flip(values[1:half + 1]), values, xp.flip(values[n - half:])])
    weights = _kaiser(window_len, beta)
    total = sum(weights)
    smooth = xp.zeros(n, dtype=xp.float64)
    for k, w in enumerate(weights):
        smooth += (w / total) * padded[k:k + n]
    return to_numpy(smooth).tolist()


def _kaiser(n: int, beta: float) -> list[float]:
    """The Kaiser window of ``n`` points (as ``np.kaiser``): ``I0(beta*sqrt(1 - t**2)) / I0(beta)``,
    ``t`` running from -1 to 1; ``I0`` (the modified Bessel function) by its power series."""
    def bessel_i0(z: float) -> float:
        term, total, k = 1.0, 1.0, 1
        while term > 1e-17 * total:
            term *= (z / (2.0 * k)) ** 2
            total += term
            k += 1
        return total

    return [bessel_i0(beta * math.sqrt(max(0.0, 1.0 - (2.0 * i / (n - 1) - 1.0) ** 2))) / bessel_i0(beta)
            if n > 1 else 1.0 for i in range(n)]


def shuffle_dataset(x: Array, t: Array, *, rng: Generator | None = None) -> tuple[Array, Array]:
    """``x`` and ``t`` reordered by one random permutation of their first axis."""
    if x.shape[0] != t.shape[0]:
        raise ValueError(f"t: expected {x.shape[0]} labels (one per row of x), got {t.shape[0]}")
    xp = array_namespace(x, t)
    order = (rng or Generator()).permutation(x.shape[0], device=device_of(x))
    return xp.take(x, order, axis=0), xp.take(t, order, axis=0)


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> int:
    """Output length of a convolution/pooling window sliding over ``input_size``:
    ``(input_size + 2*pad - filter_size) // stride + 1``, rounded down as the book's
    im2col and PyTorch do (the last pixels a window would overrun are left out).

    ``ValueError`` naming the argument for a non-int or out-of-range argument, and
    when the filter is larger than the padded input (the output would be empty).
    """
    return _output_size(positive_int("input_size", input_size), filter_size, stride, pad,
                        "filter_size", "input_size")


def _output_size(size: int, filter_size: Any, stride: Any, pad: Any, filter_name: str, size_name: str) -> int:
    filter_size = positive_int(filter_name, filter_size)
    stride, pad = positive_int("stride", stride), nonnegative_int("pad", pad)
    if filter_size > size + 2 * pad:
        raise ValueError(f"{filter_name}: a window of {filter_size} does not fit in the padded {size_name} "
                         f"{size} + 2*{pad} = {size + 2 * pad} (the output would be empty)")
    return (size + 2 * pad - filter_size) // stride + 1


def _windows(shape: tuple[int, ...], filter_h: Any, filter_w: Any, stride: Any, pad: Any,
             name: str) -> tuple[int, int]:
    """``(out_h, out_w)`` of the windows over a batch of ``shape (N, C, H, W)`` (the argument ``name``)."""
    if len(shape) != 4:
        raise ValueError(f"{name}: expected a 4-D (N, C, H, W) shape, got {tuple(shape)}")
    for axis, size in (("height", shape[2]), ("width", shape[3])):
        nonnegative_int(f"{name} {axis}", size)
    return (_output_size(shape[2], filter_h, stride, pad, "filter_h", "height"),
            _output_size(shape[3], filter_w, stride, pad, "filter_w", "width"))


def window_views(x: Array, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> list[Array]:
    """The ``filter_h*filter_w`` strided views of the zero-padded ``x: (N, C, H, W)``.

    View ``k = i*filter_w + j`` is ``(N, C, out_h, out_w)``: entry ``[..., y, x]`` is
    the pixel at filter row ``i``, column ``j`` of the window at output ``(y, x)``.
    """
    out_h, out_w = _windows(tuple(x.shape), filter_h, filter_w, stride, pad, "x")
    img = _pad_spatial(x, pad)
    return [img[:, :, rows, cols] for rows, cols in _window_slices(out_h, out_w, filter_h, filter_w, stride)]


def add_windows(parts: Sequence[Array], input_shape: tuple[int, int, int, int], filter_h: int, filter_w: int,
                stride: int = 1, pad: int = 0) -> Array:
    """Sum each of ``parts`` (``(N, C, out_h, out_w)``, one per window position) back
    where :func:`window_views` took it from: the adjoint of :func:`window_views`.

    Windows that tile the input exactly (stride == filter size, no pad, no pixel
    left over) do not overlap, so each part is assigned in place rather than added
    onto zeros.
    """
    xp = array_namespace(*parts)
    out_h, out_w = _windows(tuple(input_shape), filter_h, filter_w, stride, pad, "input_shape")
    N, C, H, W = input_shape
    if len(parts) != filter_h * filter_w or any(tuple(p.shape) != (N, C, out_h, out_w) for p in parts):
        raise ValueError(f"parts: expected {filter_h * filter_w} arrays of shape {(N, C, out_h, out_w)}, "
                         f"got {[tuple(p.shape) for p in parts]}")
    shape, dtype, device = (N, C, H + 2 * pad, W + 2 * pad), parts[0].dtype, array_device(parts[0])
    tiles = pad == 0 and stride == filter_h == filter_w and out_h * stride == H and out_w * stride == W
    img = xp.empty(shape, dtype=dtype, device=device) if tiles else xp.zeros(shape, dtype=dtype, device=device)
    for (rows, cols), part in zip(_window_slices(out_h, out_w, filter_h, filter_w, stride), parts):
        if tiles:
            img[:, :, rows, cols] = part
        else:
            img = xpx.at(img)[:, :, rows, cols].add(part)  # the book's img[...] += col[...]
    return img[:, :, pad:pad + H, pad:pad + W]


def _window_slices(out_h: int, out_w: int, filter_h: int, filter_w: int, stride: int) -> list[tuple[slice, slice]]:
    return [(slice(i, i + stride * (out_h - 1) + 1, stride), slice(j, j + stride * (out_w - 1) + 1, stride))
            for i in range(filter_h) for j in range(filter_w)]


def unfold(x: Array, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0, *,
           out: Array | None = None) -> Array:
    """Every filter window of ``x: (N, C, H, W)`` as a column: :func:`im2col`, transposed.

    Returns ``(C*filter_h*filter_w, N*out_h*out_w)``, rows ordered channel, filter
    row, filter column (as ``W.reshape(FN, -1)``), columns ordered sample, output
    row, output column.  In this layout a convolution is ONE matrix product
    ``W.reshape(FN, -1) @ unfold(x)``, which is what BLAS and cuBLAS do fastest.
    ``out``: a previous result of the same shape, whose memory is reused when the
    columns are large (see :func:`_reuse`).
    """
    xp = array_namespace(x)
    out_h, out_w = _windows(tuple(x.shape), filter_h, filter_w, stride, pad, "x")
    N, C, H, W = x.shape
    views = window_views(xp.permute_dims(x, (1, 0, 2, 3)), filter_h, filter_w, stride, pad)
    shape = (C * filter_h * filter_w, N * out_h * out_w)
    if not _reuse(out, shape, x.dtype):
        return xp.reshape(xp.stack(views, axis=1), shape)
    cols = xp.reshape(out, (C, len(views), N, out_h, out_w))
    for k, view in enumerate(views):
        cols[:, k, :, :, :] = view
    return xp.reshape(cols, shape)


_REUSE_ELEMENTS = 2**23  # 32 MiB of float32: glibc's largest mmap threshold


def _reuse(out: Array | None, shape: tuple[int, int], dtype: Any) -> bool:
    """Whether :func:`unfold` fills ``out`` (its previous result) rather than stacking the
    windows into a fresh array.

    One ``stack`` is one operation (a kernel launch on a GPU) where filling is one
    copy per filter offset, and on the CPU it is as fast, except for columns over
    32 MiB: glibc maps every such array fresh, and its page faults cost more than the
    copies.  Those are filled into ``out``, whose pages are already mapped.
    """
    return (out is not None and tuple(out.shape) == shape and out.dtype == dtype
            and math.prod(shape) > _REUSE_ELEMENTS)


def fold(cols: Array, input_shape: tuple[int, int, int, int], filter_h: int, filter_w: int,
         stride: int = 1, pad: int = 0) -> Array:
    """Sum columns of windows back into an image: the adjoint of :func:`unfold`.

    ``cols: (C*filter_h*filter_w, N*out_h*out_w)`` -> ``(N, C, H, W)``.
    """
    xp = array_namespace(cols)
    out_h, out_w = _windows(tuple(input_shape), filter_h, filter_w, stride, pad, "input_shape")
    N, C, H, W = input_shape
    expected = (C * filter_h * filter_w, N * out_h * out_w)
    if tuple(cols.shape) != expected:
        raise ValueError(f"cols: expected shape {expected} for input_shape {tuple(input_shape)}, got {tuple(cols.shape)}")
    cols = xp.reshape(cols, (C, filter_h * filter_w, N, out_h, out_w))
    parts = [cols[:, k, :, :, :] for k in range(filter_h * filter_w)]
    img = add_windows(parts, (C, N, H, W), filter_h, filter_w, stride, pad)
    return xp.permute_dims(img, (1, 0, 2, 3))


def im2col(input_data: Array, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> Array:
    """Unfold every filter window of ``input_data: (N, C, H, W)`` into a row (the book's layout).

    Returns ``(N*out_h*out_w, C*filter_h*filter_w)``; a row holds one window,
    ordered channel, then filter row, then filter column (as ``W.reshape(FN, -1)``).
    This is the transpose of :func:`unfold`.  Windows that would overrun the padded
    input are left out (``out_h = (H + 2*pad - filter_h) // stride + 1``, as the book).
    """
    _windows(tuple(input_data.shape), filter_h, filter_w, stride, pad, "input_data")
    return unfold(input_data, filter_h, filter_w, stride, pad).T


def col2im(col: Array, input_shape: tuple[int, int, int, int], filter_h: int, filter_w: int,
           stride: int = 1, pad: int = 0) -> Array:
    """Fold rows of windows back into an image, summing where windows overlap.

    The adjoint of :func:`im2col`: ``<im2col(x), c> == <x, col2im(c)>``.
    ``col: (N*out_h*out_w, C*filter_h*filter_w)`` -> ``(N, C, H, W)``.
    """
    if col.ndim != 2:
        raise ValueError(f"col: expected a 2-D (N*out_h*out_w, C*filter_h*filter_w) array, got {tuple(col.shape)}")
    try:
        return fold(col.T, input_shape, filter_h, filter_w, stride, pad)
    except ValueError as exc:
        raise ValueError(str(exc).replace("cols: expected shape (", "col: expected the transpose of (")) from None


def _pad_spatial(x: Array, pad: int) -> Array:
    if pad == 0:
        return x
    return xpx.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
