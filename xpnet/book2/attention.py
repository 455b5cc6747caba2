"""Attention (the second book's chapter 8, ``ch08/attention_layer.py``): ``AttentionWeight``,
``WeightSum``, ``Attention`` and ``TimeAttention``, with the chapter's interface.

Shapes: encoder states ``hs: (N, T, H)``; one decoder state ``h: (N, H)``; attention weights
``a: (N, T)``.  ``TimeAttention`` attends from every decoder step at once with batched matrix
products (``(N, T_dec, H) @ (N, H, T_enc)``), not one ``Attention`` object per step; it keeps
the chapter's ``attention_weights``, a list of ``(N, T_enc)`` arrays, one per decoder step.
None of these layers has parameters (``params = grads = []``).
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from ..functions import softmax
from ..layers import Softmax

Array = Any

__all__ = ["WeightSum", "AttentionWeight", "Attention", "TimeAttention", "softmax_backward"]


def softmax_backward(a: Array, da: Array) -> Array:
    """The gradient through ``a = softmax(s)`` over the last axis: ``a * (da - sum(a * da))``."""
    xp = array_namespace(a, da)
    weighted = a * da
    return weighted - a * xp.sum(weighted, axis=-1, keepdims=True)


class WeightSum:
    """The context vector ``c = sum_t a[:, t] * hs[:, t]``: ``(N, T, H), (N, T) -> (N, H)``."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, hs: Array, a: Array) -> Array:
        xp = array_namespace(hs, a)
        ar = xp.reshape(a, (a.shape[0], a.shape[1], 1))
        self.cache = (hs, ar)
        return xp.sum(hs * ar, axis=1)

    def backward(self, dc: Array) -> tuple[Array, Array]:
        xp = array_namespace(dc)
        hs, ar = self.cache
        dt = xp.reshape(dc, (dc.shape[0], 1, dc.shape[1]))  # broadcast over T: the book's repeat
        return dt * ar, xp.sum(dt * hs, axis=2)


class AttentionWeight:
    """``a = softmax(sum_h hs * h)``: how well each encoder state matches ``h``, ``(N, T, H), (N, H) -> (N, T)``."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.softmax = Softmax()
        self.cache = None

    def forward(self, hs: Array, h: Array) -> Array:
        xp = array_namespace(hs, h)
        hr = xp.reshape(h, (h.shape[0], 1, h.shape[1]))
        self.cache = (hs, hr)
        return self.softmax.forward(xp.sum(hs * hr, axis=2))

    def backward(self, da: Array) -> tuple[Array, Array]:
        xp = array_namespace(da)
        hs, hr = self.cache
        dt = xp.reshape(self.softmax.backward(da), (da.shape[0], da.shape[1], 1))
        return dt * hr, xp.sum(dt * hs, axis=1)


class Attention:
    """``AttentionWeight`` then ``WeightSum``: the context ``(N, H)`` for one decoder state;
    ``attention_weight`` keeps the weights ``(N, T)``."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.attention_weight_layer = AttentionWeight()
        self.weight_sum_layer = WeightSum()
        self.attention_weight = None

    def forward(self, hs: Array, h: Array) -> Array:
        self.attention_weight = self.attention_weight_layer.forward(hs, h)
        return self.weight_sum_layer.forward(hs, self.attention_weight)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        dhs0, da = self.weight_sum_layer.backward(dout)
        dhs1, dh = self.attention_weight_layer.backward(da)
        return dhs0 + dhs1, dh


class TimeAttention:
    """``Attention`` from each decoder state ``hs_dec[:, t]`` over all encoder states ``hs_enc``:
    ``(N, T_enc, H), (N, T_dec, H) -> (N, T_dec, H)``; backward returns ``dhs_enc, dhs_dec``."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.layers = None
        self.attention_weights = None
        self.cache = None

    def forward(self, hs_enc: Array, hs_dec: Array) -> Array:
        xp = array_namespace(hs_enc, hs_dec)
        if hs_enc.ndim != 3 or hs_dec.ndim != 3 or hs_enc.shape[::2] != hs_dec.shape[::2]:
            raise ValueError(f"hs_enc, hs_dec: expected (N, T_enc, H) and (N, T_dec, H), got "
                             f"{tuple(hs_enc.shape)} and {tuple(hs_dec.shape)}")
        a = softmax(xp.matmul(hs_dec, xp.matrix_transpose(hs_enc)))  # (N, T_dec, T_enc)
        self.cache = (hs_enc, hs_dec, a)
        self.attention_weights = [a[:, t, :] for t in range(a.shape[1])]
        return xp.matmul(a, hs_enc)

    def backward(self, dout: Array) -> tuple[Array, Array]:
        xp = array_namespace(dout)
        hs_enc, hs_dec, a = self.cache
        ds = softmax_backward(a, xp.matmul(dout, xp.matrix_transpose(hs_enc)))
        dhs_enc = xp.matmul(xp.matrix_transpose(a), dout) + xp.matmul(xp.matrix_transpose(ds), hs_dec)
        return dhs_enc, xp.matmul(ds, hs_enc)
