"""Gradient lists of the second book's models: shared weights merged, norms clipped.

``xpnet.book2.trainer`` and ``xpnet.book2.util`` re-export both functions (the book
has ``remove_duplicate`` in ``trainer`` and ``clip_grads`` in ``util``).
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from ..checks import real

Array = Any

__all__ = ["remove_duplicate", "clip_grads"]


def remove_duplicate(params: list[Array], grads: list[Array]) -> tuple[list[Array], list[Array]]:
    """``params``/``grads`` with each shared weight once, its gradients summed.

    A weight is shared when the same array appears twice, or when one 2-D weight
    equals another's transpose (weight tying: its gradient is added transposed).
    Returns new lists; the arrays in ``grads`` are not modified.  The transpose test
    compares values, so it waits for the device, once per pair of transposed shapes.
    """
    if len(params) != len(grads):
        raise ValueError(f"grads: expected {len(params)} gradients (one per param), got {len(grads)}")
    params, grads = list(params), list(grads)
    i = 0
    while i < len(params):
        j = i + 1
        while j < len(params):
            if params[i] is params[j]:
                grads[i] = grads[i] + grads[j]
            elif _transposed(params[i], params[j]):
                grads[i] = grads[i] + grads[j].T
            else:
                j += 1
                continue
            del params[j], grads[j]
        i += 1
    return params, grads


def _transposed(a: Array, b: Array) -> bool:
    if a.ndim != 2 or b.ndim != 2 or tuple(a.T.shape) != tuple(b.shape):
        return False
    xp = array_namespace(a, b)
    return bool(xp.all(a.T == b))


def clip_grads(grads: list[Array], max_norm: float) -> None:
    """Scale every gradient in place by ``min(1, max_norm / (total_norm + 1e-6))``, where
    ``total_norm`` is the L2 norm of all of them together.  The factor is computed on the
    device (no host round trip per step)."""
    max_norm = real("max_norm", max_norm, low=0.0, low_open=True)
    if not grads:
        return
    xp = array_namespace(*grads)
    total = sum(xp.sum(grad * grad) for grad in grads)
    rate = xp.minimum(max_norm / (xp.sqrt(total) + 1e-6), 1.0)
    for grad in grads:
        grad *= xp.astype(rate, grad.dtype)
