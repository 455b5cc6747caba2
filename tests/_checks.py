"""Shared numeric checks for the test suite (import as ``from _checks import ...``).

Every helper accepts arrays of any backend (NumPy, CuPy, array_api_strict, ...):
values are copied to the host with :func:`xpnet.backend.to_numpy` and compared
there in float64.

- ``relative_error(a, b) -> float``: ``||a - b|| / max(||a|| + ||b||, tiny)``.
- ``assert_grad_close(f, x, analytic, rtol=1e-6)``: the central-difference
  gradient of scalar ``f`` at ``x`` (``xpnet.gradient.numerical_gradient``,
  which perturbs ``x`` in place, so ``f`` may read a parameter it closes over)
  matches ``analytic`` in shape and to relative error ``rtol``.
- ``assert_on(a, device, dtype=None, shape=None)``: ``a`` is an array of
  ``device``'s namespace, on its native device, with that dtype and shape.
- ``xp_assert_close(actual, expected, dtype=None, n=1, ulps=4)`` (SciPy's ``xp_assert_close``
  is the model): equal up to the rounding another backend may differ by: ``ulps`` units in
  the last place of ``dtype`` (default: ``actual``'s) per term of a reduction of length
  ``n``.  For every comparison across backends (or against NumPy) of a computed value;
  exact equality only where the operation is exact.
"""

from __future__ import annotations

from typing import Any, Callable

import array_api_compat
import numpy as np

from xpnet.backend import Device, resolve_dtype, to_numpy
from xpnet.gradient import numerical_gradient

_TINY = 1e-30


def relative_error(a: Any, b: Any) -> float:
    """``||a - b|| / max(||a|| + ||b||, 1e-30)`` (Frobenius norms), on any backend."""
    a = np.asarray(to_numpy(a), dtype=np.float64)
    b = np.asarray(to_numpy(b), dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), _TINY))


def assert_grad_close(f: Callable[[Any], Any], x: Any, analytic: Any, rtol: float = 1e-6,
                      h: float = 1e-4) -> Any:
    """Assert ``analytic`` equals the numerical gradient of ``f`` at ``x``; return the latter."""
    numeric = numerical_gradient(f, x, h=h)
    assert tuple(analytic.shape) == tuple(x.shape), f"gradient shape {tuple(analytic.shape)} != x shape {tuple(x.shape)}"
    err = relative_error(numeric, analytic)
    assert err < rtol, f"relative error {err:.3e} >= {rtol:.0e}"
    return numeric


def assert_on(a: Any, device: Device, dtype: Any = None, shape: tuple[int, ...] | None = None) -> None:
    """Assert ``a`` lives on ``device`` (namespace and native device), with ``dtype``/``shape`` if given."""
    assert array_api_compat.array_namespace(a) is device.xp, f"namespace {array_api_compat.array_namespace(a)} != {device.xp}"
    assert array_api_compat.device(a) == device.native, f"device {array_api_compat.device(a)} != {device.native}"
    if dtype is not None:
        assert a.dtype == resolve_dtype(device.xp, dtype), f"dtype {a.dtype} != {dtype}"
    if shape is not None:
        assert tuple(a.shape) == tuple(shape), f"shape {tuple(a.shape)} != {tuple(shape)}"


def dtype_eps(dtype: Any) -> float:
    """Machine epsilon of ``dtype``: a name, a NumPy dtype, or any backend's float dtype."""
    if not isinstance(dtype, (str, np.dtype, type)):
        dtype = str(dtype).rsplit(".", 1)[-1]  # "torch.float32", array_api_strict's "float32"
    return float(np.finfo(dtype).eps)


def xp_assert_close(actual: Any, expected: Any, dtype: Any = None, n: int = 1, ulps: float = 4.0) -> None:
    """Assert ``actual`` equals ``expected`` within ``ulps * n * eps(dtype)`` (``dtype``: ``actual``'s
    unless given), relative to each value
    and, as an absolute bound, to the largest ``|expected|`` (a reduction's rounding scales with its
    terms, so an entry that cancels to near zero is held to the same absolute error).

    Why: BLAS and CUDA libraries sum in different orders (error up to ~n ulps for a length-n
    reduction) and their ``exp``/``log`` may differ from NumPy's by an ulp or two.
    """
    if dtype is None:
        dtype = actual.dtype
    a = np.asarray(to_numpy(actual), dtype=np.float64)
    b = np.asarray(to_numpy(expected), dtype=np.float64)
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    tol = ulps * n * dtype_eps(dtype)
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale, err_msg=f"{dtype}, n={n}, {ulps} ulps per term")
