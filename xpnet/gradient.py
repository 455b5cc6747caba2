"""Numerical gradient by central differences (the book's ``common/gradient.py``)."""

from __future__ import annotations

import itertools
from typing import Any, Callable

from array_api_compat import array_namespace
from array_api_compat import device as array_device

Array = Any


def numerical_gradient(f: Callable[[Array], Any], x: Array, h: float = 1e-4) -> Array:
    """Gradient of scalar ``f`` at ``x`` by central differences, any shape of ``x``.

    ``x`` is perturbed in place, one entry at a time (so ``f`` may ignore its
    argument and read the array it closes over, as the book's nets do), and
    restored exactly afterwards.  Returns an array shaped, typed and placed like ``x``.
    """
    xp = array_namespace(x)
    slopes = []
    for index in itertools.product(*(range(n) for n in x.shape)):
        original = float(x[index])  # a Python float: x[index] is a view on some backends (torch)
        x[index] = original + h
        f_plus = float(f(x))
        x[index] = original - h
        f_minus = float(f(x))
        x[index] = original
        slopes.append((f_plus - f_minus) / (2.0 * h))
    grad = xp.asarray(slopes, dtype=x.dtype, device=array_device(x))
    return xp.reshape(grad, x.shape)
