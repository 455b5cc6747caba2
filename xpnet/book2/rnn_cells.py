"""One time step of the second book's recurrent layers: ``RNN``, ``LSTM`` and ``GRU`` (its
``common/time_layers.py``), and the step math that :mod:`xpnet.book2.time_recurrent` runs
over a whole sequence.

Shapes: ``x: (N, D)``, ``h, c: (N, H)``; ``Wx: (D, G*H)``, ``Wh: (H, G*H)``, ``b: (G*H,)``
with ``G`` gates side by side in the book's order: the LSTM's ``f, g, i, o`` and the GRU's
``z, r, h``.  Every array keeps the parameters' dtype and device; backward writes
``grads`` in place.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace
from array_api_compat import device as array_device

from ..backend import device_of
from ..layers import _Slot as Slot

Array = Any

__all__ = ["RNN", "LSTM", "GRU", "check_recurrent", "zeros", "lstm_gate_scale", "lstm_gates",
           "lstm_gate_slopes", "sigmoid_by_tanh"]


def zeros(shape: tuple[int, ...], like: Array) -> Array:
    """Zeros of ``shape`` in ``like``'s namespace, dtype and device."""
    xp = array_namespace(like)
    with device_of(like).activate():
        return xp.zeros(shape, dtype=like.dtype, device=array_device(like))


def check_recurrent(Wx: Array, Wh: Array, b: Array, gates: int) -> int:
    """Refuse parameters that do not fit ``gates`` blocks of one hidden size; return ``H``."""
    if Wh.ndim != 2 or Wh.shape[1] != gates * Wh.shape[0]:
        raise ValueError(f"Wh: expected (H, {gates}*H), got shape {tuple(Wh.shape)}")
    H = Wh.shape[0]
    if Wx.ndim != 2 or Wx.shape[1] != gates * H:
        raise ValueError(f"Wx: expected (D, {gates * H}) to match Wh {tuple(Wh.shape)}, got {tuple(Wx.shape)}")
    if tuple(b.shape) != (gates * H,):
        raise ValueError(f"b: expected shape ({gates * H},) to match Wh {tuple(Wh.shape)}, got {tuple(b.shape)}")
    xp = array_namespace(Wx, Wh, b)
    for name, p in (("Wx", Wx), ("Wh", Wh), ("b", b)):
        if not xp.isdtype(p.dtype, "real floating") or p.dtype != Wx.dtype:
            raise TypeError(f"{name}: expected the real floating dtype of Wx ({Wx.dtype}), got {p.dtype}")
    return H


def sigmoid_by_tanh(a: Array) -> Array:
    """``1 / (1 + exp(-a))`` as ``(1 + tanh(a/2)) / 2``: the same number, no overflow for any ``a``."""
    xp = array_namespace(a)
    return 0.5 * xp.tanh(0.5 * a) + 0.5


def lstm_gate_scale(like: Array) -> Array:
    """``s: (4H,)``: 1/2 on the sigmoid gates ``f, i, o``, 1 on the tanh gate ``g`` (the
    columns of ``like: (., 4H)``), for :func:`lstm_gates` and :func:`lstm_gate_slopes`."""
    xp = array_namespace(like)
    H = like.shape[-1] // 4
    half = zeros((H,), like) + 0.5
    return xp.concat([half, half + 0.5, half, half])


def lstm_gates(A: Array, s: Array) -> Array:
    """``[sigmoid(f), tanh(g), sigmoid(i), sigmoid(o)]`` of ``A: (N, 4H)`` with ONE tanh over
    all four gates: ``sigmoid(a) = tanh(a/2)/2 + 1/2``, so each gate is ``tanh(a*s)*s + 1-s``."""
    xp = array_namespace(A, s)
    return xp.tanh(A * s) * s + (1.0 - s)


def lstm_gate_slopes(act: Array, s: Array) -> Array:
    """The gates' derivatives from their values: ``a(1-a)`` where ``s = 1/2`` (sigmoid),
    ``1 - a**2`` where ``s = 1`` (tanh); both are ``(1 - a)(a + 2s - 1)``."""
    return (1.0 - act) * (act + (2.0 * s - 1.0))


class RNN:
    """``h_next = tanh(h_prev @ Wh + x @ Wx + b)``; ``params = [Wx, Wh, b]``."""

    Wx, Wh, b = Slot("params", 0), Slot("params", 1), Slot("params", 2)
    dWx, dWh, db = Slot("grads", 0), Slot("grads", 1), Slot("grads", 2)

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        check_recurrent(Wx, Wh, b, 1)
        self.params = [Wx, Wh, b]
        self.grads = [zeros(tuple(p.shape), p) for p in self.params]
        self.cache = None

    def forward(self, x: Array, h_prev: Array) -> Array:
        xp = array_namespace(x, self.Wx)
        h_next = xp.tanh(xp.matmul(h_prev, self.Wh) + xp.matmul(x, self.Wx) + self.b)
        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        xp = array_namespace(dh_next, self.Wx)
        x, h_prev, h_next = self.cache
        dt = dh_next * (1.0 - h_next * h_next)
        self.dWx[...] = xp.matmul(x.T, dt)
        self.dWh[...] = xp.matmul(h_prev.T, dt)
        self.db[...] = xp.sum(dt, axis=0)
        return xp.matmul(dt, self.Wx.T), xp.matmul(dt, self.Wh.T)


class LSTM:
    """One LSTM step: ``A = x @ Wx + h_prev @ Wh + b`` split into the gates ``f, g, i, o``;
    ``c_next = f*c_prev + g*i``, ``h_next = o*tanh(c_next)``.  ``params = [Wx, Wh, b]``."""

    Wx, Wh, b = Slot("params", 0), Slot("params", 1), Slot("params", 2)
    dWx, dWh, db = Slot("grads", 0), Slot("grads", 1), Slot("grads", 2)

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        check_recurrent(Wx, Wh, b, 4)
        self.params = [Wx, Wh, b]
        self.grads = [zeros(tuple(p.shape), p) for p in self.params]
        self.cache = None

    def forward(self, x: Array, h_prev: Array, c_prev: Array) -> tuple[Array, Array]:
        xp = array_namespace(x, self.Wx)
        H = h_prev.shape[1]
        s = lstm_gate_scale(self.b)
        act = lstm_gates(xp.matmul(x, self.Wx) + xp.matmul(h_prev, self.Wh) + self.b, s)
        f, g, i, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
        c_next = f * c_prev + g * i
        tanh_c = xp.tanh(c_next)
        self.cache = (x, h_prev, c_prev, act, s, tanh_c)
        return o * tanh_c, c_next

    def backward(self, dh_next: Array, dc_next: Array) -> tuple[Array, Array, Array]:
        xp = array_namespace(dh_next, self.Wx)
        x, h_prev, c_prev, act, s, tanh_c = self.cache
        H = h_prev.shape[1]
        f, g, i, o = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
        ds = dc_next + dh_next * o * (1.0 - tanh_c * tanh_c)
        dA = xp.concat([ds * c_prev, ds * i, ds * g, dh_next * tanh_c], axis=1) * lstm_gate_slopes(act, s)
        self.dWx[...] = xp.matmul(x.T, dA)
        self.dWh[...] = xp.matmul(h_prev.T, dA)
        self.db[...] = xp.sum(dA, axis=0)
        return xp.matmul(dA, self.Wx.T), xp.matmul(dA, self.Wh.T), ds * f


def gru_step(xw: Array, h_prev: Array, Wh: Array) -> tuple[Array, tuple]:
    """One GRU step from its input projection ``xw = x @ Wx + b: (N, 3H)``:
    ``z, r = sigmoid(.)``, ``h_hat = tanh(xw_h + (r*h_prev) @ Whh)``, ``h_next = (1-z)*h_prev + z*h_hat``.
    Returns ``h_next`` and what :func:`gru_step_backward` needs."""
    xp = array_namespace(xw, Wh)
    H = h_prev.shape[1]
    zr = sigmoid_by_tanh(xw[:, :2 * H] + xp.matmul(h_prev, Wh[:, :2 * H]))
    z, r = zr[:, :H], zr[:, H:]
    rh = r * h_prev
    h_hat = xp.tanh(xw[:, 2 * H:] + xp.matmul(rh, Wh[:, 2 * H:]))
    return h_prev + z * (h_hat - h_prev), (h_prev, z, r, rh, h_hat)


def gru_step_backward(dh_next: Array, cache: tuple, Wh: Array) -> tuple[Array, Array]:
    """``dh_prev`` and ``dA: (N, 3H)``, the gradient of the gates' pre-activations (``z, r, h``),
    of one :func:`gru_step`."""
    xp = array_namespace(dh_next, Wh)
    h_prev, z, r, rh, h_hat = cache
    H = h_prev.shape[1]
    dt_h = dh_next * z * (1.0 - h_hat * h_hat)
    dhr = xp.matmul(dt_h, Wh[:, 2 * H:].T)
    dt_z = dh_next * (h_hat - h_prev) * z * (1.0 - z)
    dt_r = dhr * h_prev * r * (1.0 - r)
    dt_zr = xp.concat([dt_z, dt_r], axis=1)
    dh_prev = dh_next * (1.0 - z) + r * dhr + xp.matmul(dt_zr, Wh[:, :2 * H].T)
    return dh_prev, xp.concat([dt_zr, dt_h], axis=1)


def gru_weight_grads(xs: Array, h_prevs: Array, rhs: Array, dA: Array) -> tuple[Array, Array, Array]:
    """``dWx, dWh, db`` from rows of inputs ``xs: (M, D)``, previous states ``h_prevs: (M, H)``,
    ``r*h_prev`` ``rhs: (M, H)`` and gate gradients ``dA: (M, 3H)``: three matrix products."""
    xp = array_namespace(xs, dA)
    H = h_prevs.shape[1]
    dWh = xp.concat([xp.matmul(h_prevs.T, dA[:, :2 * H]), xp.matmul(rhs.T, dA[:, 2 * H:])], axis=1)
    return xp.matmul(xs.T, dA), dWh, xp.sum(dA, axis=0)


class GRU:
    """One GRU step (:func:`gru_step`); ``params = [Wx, Wh, b]``, gates ``z, r, h`` side by side."""

    Wx, Wh, b = Slot("params", 0), Slot("params", 1), Slot("params", 2)
    dWx, dWh, db = Slot("grads", 0), Slot("grads", 1), Slot("grads", 2)

    def __init__(self, Wx: Array, Wh: Array, b: Array) -> None:
        check_recurrent(Wx, Wh, b, 3)
        self.params = [Wx, Wh, b]
        self.grads = [zeros(tuple(p.shape), p) for p in self.params]
        self.cache = None

    def forward(self, x: Array, h_prev: Array) -> Array:
        xp = array_namespace(x, self.Wx)
        h_next, step = gru_step(xp.matmul(x, self.Wx) + self.b, h_prev, self.Wh)
        self.cache = (x, step)
        return h_next

    def backward(self, dh_next: Array) -> tuple[Array, Array]:
        xp = array_namespace(dh_next, self.Wx)
        x, step = self.cache
        dh_prev, dA = gru_step_backward(dh_next, step, self.Wh)
        for grad, value in zip(self.grads, gru_weight_grads(x, step[0], step[3], dA)):
            grad[...] = value
        return xp.matmul(dA, self.Wx.T), dh_prev
