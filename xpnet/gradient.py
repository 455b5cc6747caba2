"""Numerical gradient by central differences (the book's ``common/gradient.py``).

``numerical_gradient`` takes ``x`` of any shape; ``numerical_gradient_2d`` and
``_numerical_gradient_1d`` are the book's chapter-4 versions, for a batch of points
(one row each) and for one point.  A long run shows a progress bar.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any, Callable, Sequence

from array_api_compat import array_namespace
from array_api_compat import device as array_device
from .progress import bar as progress_bar

from .backend import np  # noqa: F401  (the book's star import of this module gives np)

Array = Any

PROGRESS_AFTER_S = 5.0
"""A progress bar appears once the estimated total time exceeds this many seconds."""


def numerical_gradient(f: Callable[[Array], Any], x: Array, h: float = 1e-4) -> Array:
    """Gradient of scalar ``f`` at ``x`` by central differences, any shape of ``x``.

    ``x`` is perturbed in place, one entry at a time (so ``f`` may ignore its
    argument and read the array it closes over, as the book's nets do), and
    restored exactly afterwards.  Returns an array shaped, typed and placed like ``x``.
    """
    return numerical_gradients(f, [x], h)[0]


def numerical_gradients(f: Callable[[Array], Any], arrays: Sequence[Array], h: float = 1e-4, *,
                        progress: bool | None = None) -> list[Array]:
    """:func:`numerical_gradient` of ``f`` with respect to each of ``arrays`` in turn.

    ``f`` is called with the array being perturbed.  ``progress``: ``None`` shows a
    tqdm bar (on stderr) once the run is estimated to take more than
    :data:`PROGRESS_AFTER_S` seconds; ``True``/``False``: always / never.
    """
    total = sum(math.prod(x.shape) for x in arrays)
    started, done, bar = time.perf_counter(), 0, None
    grads = []
    try:
        for x in arrays:
            slopes = []
            for index in itertools.product(*(range(n) for n in x.shape)):
                original = float(x[index])  # a Python float: x[index] is a view on some backends (torch)
                x[index] = original + h
                f_plus = float(f(x))
                x[index] = original - h
                f_minus = float(f(x))
                x[index] = original
                slopes.append((f_plus - f_minus) / (2.0 * h))
                done += 1
                if bar is None and progress is not False and (progress or _slow(started, done, total)):
                    bar = progress_bar(total, "numerical gradient", force=True, unit="entry", initial=done)
                elif bar is not None:
                    bar.update(1)
            xp = array_namespace(x)
            grads.append(xp.reshape(xp.asarray(slopes, dtype=x.dtype, device=array_device(x)), x.shape))
    finally:
        if bar is not None:
            bar.close()
    return grads


def _numerical_gradient_1d(f: Callable[[Array], Any], x: Array) -> Array:
    """The book's one-point version: the gradient of ``f`` at a 1-D ``x`` (``h = 1e-4``)."""
    if x.ndim != 1:
        raise ValueError(f"x: expected a 1-D array, got shape {tuple(x.shape)}")
    return numerical_gradient(f, x)


def numerical_gradient_2d(f: Callable[[Array], Any], X: Array) -> Array:
    """The book's batch version: for ``X: (N, D)``, row ``i`` of the result is the gradient
    of ``f`` at the point ``X[i]`` (``f`` takes one 1-D point); a 1-D ``X`` is one point."""
    if X.ndim == 1:
        return _numerical_gradient_1d(f, X)
    if X.ndim != 2:
        raise ValueError(f"X: expected one point (D,) or points (N, D), got shape {tuple(X.shape)}")
    xp = array_namespace(X)
    rows = [_numerical_gradient_1d(f, X[i, :]) for i in range(X.shape[0])]
    return xp.stack(rows) if rows else xp.zeros_like(X)


def _slow(started: float, done: int, total: int) -> bool:
    """Whether ``total`` entries will take longer than :data:`PROGRESS_AFTER_S`, judged by ``done``."""
    return (time.perf_counter() - started) / done * total > PROGRESS_AFTER_S
