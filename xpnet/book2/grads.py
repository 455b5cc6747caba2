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

    A weight is shared when the same array appears twice, or when one is a view of the
    other's memory (weight tying: ``TimeAffine(embed_W.T, b)``; a transposed view's
    gradient is added transposed).  Decided from identity and views, never from values,
    so two distinct weights that happen to be equal (zero-initialised) stay apart.
    Returns new lists; the arrays in ``grads`` are not modified.
    """
    if len(params) != len(grads):
        raise ValueError(f"grads: expected {len(params)} gradients (one per param), got {len(grads)}")
    return merge_shared(params, grads, shared_pairs(params))


def shared_pairs(params: list[Array]) -> list[tuple[int, int, bool]]:
    """``(i, j, transposed)`` for every later param ``j`` that shares param ``i`` (the same
    array, or a view of the same memory), in the order :func:`merge_shared` applies them."""
    pairs, taken = [], set()
    for i in range(len(params)):
        for j in range(i + 1, len(params)):
            if i not in taken and j not in taken and (params[i] is params[j] or _same_memory(params[i], params[j])):
                pairs.append((i, j, _transposed(params[i], params[j])))
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


def _root(a: Array) -> Array:
    """The array whose memory ``a`` views (``base`` in NumPy and CuPy, ``_base`` in PyTorch)."""
    while True:
        base = getattr(a, "base", None)
        base = getattr(a, "_base", None) if base is None else base
        if base is None or not hasattr(base, "shape"):
            return a
        a = base


def _address(a: Array) -> int | None:
    """Where ``a``'s first element lives, when its library says (NumPy, CuPy, PyTorch)."""
    for name in ("__array_interface__", "__cuda_array_interface__"):
        interface = getattr(a, name, None)
        if isinstance(interface, dict):
            return interface["data"][0]
    return a.data_ptr() if callable(getattr(a, "data_ptr", None)) else None


def _same_memory(a: Array, b: Array) -> bool:
    """``b`` views exactly ``a``'s memory (``a.T``, or both views of one base at one address)."""
    if not (a.ndim == b.ndim == 2 and a.shape[0] * a.shape[1] == b.shape[0] * b.shape[1]):
        return False
    root_a, root_b = _root(a), _root(b)
    if root_a is b or root_b is a:
        return True
    return root_a is root_b and _address(a) is not None and _address(a) == _address(b)


def _transposed(a: Array, b: Array) -> bool:
    """Whether ``b`` is ``a.T`` (rather than ``a`` itself): other shapes, or reversed strides."""
    if a is b:
        return False
    if tuple(a.shape) != tuple(b.shape):
        return True
    strides_a, strides_b = getattr(a, "strides", None), getattr(b, "strides", None)
    return strides_a is not None and strides_a != strides_b and tuple(strides_a) == tuple(strides_b)[::-1]


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
