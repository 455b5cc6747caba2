"""Gradient lists of the second book's models: shared weights merged, norms clipped.

``xpnet.book2.trainer`` and ``xpnet.book2.util`` re-export both functions (the book
has ``remove_duplicate`` in ``trainer`` and ``clip_grads`` in ``util``).
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from ..checks import real

Array = Any

__all__ = ["remove_duplicate", "shared_pairs", "merge_shared", "clip_grads"]


def remove_duplicate(params: list[Array], grads: list[Array]) -> tuple[list[Array], list[Array]]:
    """``params``/``grads`` with each shared weight once, its gradients summed.

    A weight is shared when the same array appears twice, or when one 2-D weight
    equals another's transpose (weight tying: its gradient is added transposed).
    Returns new lists; the arrays in ``grads`` are not modified.  The transpose test
    compares values, so it waits for the device, once per pair of transposed shapes
    (a training loop finds the pairs once with :func:`shared_pairs` and reuses them).
    """
    if len(params) != len(grads):
        raise ValueError(f"grads: expected {len(params)} gradients (one per param), got {len(grads)}")
    return merge_shared(params, grads, shared_pairs(params))


def shared_pairs(params: list[Array]) -> list[tuple[int, int, bool]]:
    """``(i, j, transposed)`` for every later param ``j`` that shares param ``i`` (the same
    array, or its transpose by value), in the order :func:`merge_shared` applies them."""
    pairs, taken = [], set()
    for i in range(len(params)):
        if i in taken:
            continue
        for j in range(i + 1, len(params)):
            if j in taken:
                continue
            if params[i] is params[j] or _transposed(params[i], params[j]):
                pairs.append((i, j, params[i] is not params[j]))
                taken.add(j)
    return pairs


def merge_shared(params: list[Array], grads: list[Array],
                 pairs: list[tuple[int, int, bool]]) -> tuple[list[Array], list[Array]]:
    """New ``params``/``grads`` lists with each ``(i, j, transposed)`` of :func:`shared_pairs`
    merged: ``grads[j]`` (transposed if so) added to ``grads[i]``, param ``j`` dropped."""
    grads = list(grads)
    for i, j, transposed in pairs:
        grads[i] = grads[i] + (grads[j].T if transposed else grads[j])
    dropped = {j for _, j, _ in pairs}
    keep = [k for k in range(len(params)) if k not in dropped]
    return [params[k] for k in keep], [grads[k] for k in keep]


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
    for i, grad in enumerate(grads):
        if not xp.isdtype(grad.dtype, "real floating"):  # scaled in place: an integer array would round to 0
            raise TypeError(f"grads[{i}]: expected a float array (it is scaled in place), got {grad.dtype}")
    total = sum(xp.sum(grad * grad) for grad in grads)
    rate = xp.minimum(max_norm / (xp.sqrt(total) + 1e-6), 1.0)
    for grad in grads:
        grad *= xp.astype(rate, grad.dtype)
