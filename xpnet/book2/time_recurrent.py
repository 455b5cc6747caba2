"""The second book's recurrent layers over a whole sequence: ``TimeRNN``, ``TimeLSTM``,
``TimeGRU`` and ``TimeBiLSTM``.  ``xs: (N, T, D)`` -> ``hs: (N, T, H)``.

The book runs one cell object per time step.  Here the parts that do not depend on the
previous step run once for all ``T`` steps (:func:`input_projection`, the weight gradients
in :func:`weight_grads`, the LSTM's gate derivatives in :func:`lstm_backward_tables`), so a
step does only its recurrent product and a few elementwise operations: fewer, larger
operations, which is what a BLAS and a GPU want.  The numbers are the book's; the cells of
:mod:`xpnet.book2.rnn_cells` do one step the book's way and share its step math.

``stateful=True`` carries ``h`` (and ``c``) from one ``forward`` to the next, as in the book;
``dh`` (and ``dc``) is the gradient of the first step's incoming state after ``backward``.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

from ..layers import _Slot as Slot
from .rnn_cells import (check_recurrent, gru_step, gru_step_backward, gru_weight_grads, lstm_gate_scale,
                        lstm_gate_slopes, zeros)

Array = Any

__all__ = ["TimeRNN", "TimeLSTM", "TimeGRU", "TimeBiLSTM", "input_projection", "weight_grads", "lstm_backward_tables"]


def input_projection(xs: Array, Wx: Array, b: Array) -> Array:
    """``xs @ Wx + b`` for every step at once, ``(N, T, D)`` -> ``(N, T, G)``: one large matrix
    product instead of ``T`` small ones."""
    xp = array_namespace(xs, Wx)
    if xs.ndim != 3 or xs.shape[2] != Wx.shape[0]:
        raise ValueError(f"xs: expected (N, T, {Wx.shape[0]}), got shape {tuple(xs.shape)}")
    N, T, D = xs.shape
    out = xp.matmul(xp.reshape(xs, (N * T, D)), Wx)
    out += b
    return xp.reshape(out, (N, T, Wx.shape[1]))


def weight_grads(xs: Array, h_prevs: Array, dA: Array) -> tuple[Array, Array, Array]:
    """``dWx, dWh, db`` summed over all steps as three products over ``N*T`` rows, from inputs
    ``xs: (N, T, D)``, incoming states ``h_prevs: (N, T, H)`` and gate gradients ``dA: (N, T, G)``."""
    xp = array_namespace(xs, dA)
    rows = dA.shape[0] * dA.shape[1]
    dA = xp.reshape(dA, (rows, dA.shape[2]))
    return (xp.matmul(xp.reshape(xs, (rows, xs.shape[2])).T, dA),
            xp.matmul(xp.reshape(h_prevs, (rows, h_prevs.shape[2])).T, dA), xp.sum(dA, axis=0))


def _shifted(first: Array, states: list[Array]) -> Array:
    """``(N, T, H)`` of the state each step started from: ``first``, then ``states[:-1]``."""
    xp = array_namespace(first)
    return xp.stack([first, *states[:-1]], axis=1)


def _input_grad(dA: Array, Wx: Array) -> Array:
    """``dxs = dA @ Wx.T`` for all steps in one product, ``(N, T, G)`` -> ``(N, T, D)``."""
    xp = array_namespace(dA, Wx)
    N, T, G = dA.shape
    return xp.reshape(xp.matmul(xp.reshape(dA, (N * T, G)), Wx.T), (N, T, Wx.shape[0]))


class _Recurrent:
    """What the time layers share: ``params = [Wx, Wh, b]``, the state and its reset."""

    gates = 1
    Wx, Wh, b = Slot("params", 0), Slot("params", 1), Slot("params", 2)
    dWx, dWh, db = Slot("grads", 0), Slot("grads", 1), Slot("grads", 2)

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        self.H = check_recurrent(Wx, Wh, b, self.gates)
        self.params = [Wx, Wh, b]
        self.grads = [zeros(tuple(p.shape), p) for p in self.params]
        self.layers = None  # the book's per-step cells: the steps here share whole-sequence arrays
        self.h, self.dh = None, None
        self.stateful = bool(stateful)
        self.cache = None

    def _start(self, state: Array | None, N: int) -> Array:
        """The state a forward pass starts from: the carried one, or zeros."""
        return state if self.stateful and state is not None else zeros((N, self.H), self.Wh)

    def _write_grads(self, xs: Array, h_prevs: Array, dA: Array) -> None:
        for grad, value in zip(self.grads, weight_grads(xs, h_prevs, dA)):
            grad[...] = value

    def set_state(self, h: Array) -> None:
        self.h = h

    def reset_state(self) -> None:
        self.h = None


class TimeRNN(_Recurrent):
    """``h_t = tanh(h_{t-1} @ Wh + x_t @ Wx + b)`` over ``T`` steps (the book's ``RNN`` per step)."""

    def forward(self, xs: Array) -> Array:
        xp = array_namespace(xs, self.Wx)
        xw = input_projection(xs, self.Wx, self.b)
        h0 = self.h = self._start(self.h, xs.shape[0])
        hs = []
        for t in range(xs.shape[1]):
            self.h = xp.tanh(xw[:, t, :] + xp.matmul(self.h, self.Wh))
            hs.append(self.h)
        self.cache = (xs, h0, hs)
        return xp.stack(hs, axis=1)

    def backward(self, dhs: Array) -> Array:
        xp = array_namespace(dhs, self.Wx)
        xs, h0, hs = self.cache
        slopes = 1.0 - xp.stack(hs, axis=1) ** 2
        dh, dts = zeros(tuple(h0.shape), dhs), []
        for t in reversed(range(dhs.shape[1])):
            dt = (dhs[:, t, :] + dh) * slopes[:, t, :]
            dh = xp.matmul(dt, self.Wh.T)
            dts.append(dt)
        dA = xp.stack(dts[::-1], axis=1)
        self._write_grads(xs, _shifted(h0, hs), dA)
        self.dh = dh
        return _input_grad(dA, self.Wx)


class TimeLSTM(_Recurrent):
    """The book's ``LSTM`` over ``T`` steps; gates ``f, g, i, o`` side by side in ``Wx``, ``Wh``, ``b``.

    A step computes ``tanh`` once over its four gates (:func:`~xpnet.book2.rnn_cells.lstm_gates`:
    the sigmoid's 1/2 is folded into ``Wh`` and the input projection once per pass).
    """

    gates = 4

    def __init__(self, Wx: Array, Wh: Array, b: Array, stateful: bool = False) -> None:
        super().__init__(Wx, Wh, b, stateful)
        self.c, self.dc = None, None

    def forward(self, xs: Array) -> Array:
        xp = array_namespace(xs, self.Wx)
        H, s = self.H, lstm_gate_scale(self.b)
        xw = input_projection(xs, self.Wx * s, self.b * s)
        Wh, offset = self.Wh * s, 1.0 - s
        h0 = self.h = self._start(self.h, xs.shape[0])
        c0 = self.c = self._start(self.c, xs.shape[0])
        hs, cs, tanh_cs, acts = [], [], [], []
        for t in range(xs.shape[1]):
            act = xp.tanh(xw[:, t, :] + xp.matmul(self.h, Wh)) * s + offset
            self.c = act[:, :H] * self.c + act[:, H:2 * H] * act[:, 2 * H:3 * H]
            tanh_c = xp.tanh(self.c)
            self.h = act[:, 3 * H:] * tanh_c
            hs.append(self.h), cs.append(self.c), tanh_cs.append(tanh_c), acts.append(act)
        self.cache = (xs, h0, c0, hs, cs, tanh_cs, acts, s)
        return xp.stack(hs, axis=1)

    def backward(self, dhs: Array) -> Array:
        xp = array_namespace(dhs, self.Wx)
        xs, h0, c0, hs, cs, tanh_cs, acts, s = self.cache
        gate_of_ds, gate_of_dh, keep_c = lstm_backward_tables(c0, cs, tanh_cs, acts, s)
        dh, dc, dAs = zeros(tuple(h0.shape), dhs), zeros(tuple(c0.shape), dhs), []
        for t in reversed(range(dhs.shape[1])):
            dh = dhs[:, t, :] + dh
            ds = dh * gate_of_dh[:, t, :] + dc
            dc = ds * keep_c[:, t, :]
            dA = xp.concat([ds, ds, ds, dh], axis=1) * gate_of_ds[:, t, :]
            dh = xp.matmul(dA, self.Wh.T)
            dAs.append(dA)
        dA = xp.stack(dAs[::-1], axis=1)
        self._write_grads(xs, _shifted(h0, hs), dA)
        self.dh, self.dc = dh, dc
        return _input_grad(dA, self.Wx)

    def set_state(self, h: Array, c: Array | None = None) -> None:
        self.h, self.c = h, c

    def reset_state(self) -> None:
        self.h, self.c = None, None


def lstm_backward_tables(c0: Array, cs: list[Array], tanh_cs: list[Array], acts: list[Array],
                         s: Array) -> tuple[Array, Array, Array]:
    """Every factor of the LSTM backward that does not depend on the incoming gradient, for all
    steps at once, so that a step does 5 elementwise operations and one product:
    ``dA_t = [ds, ds, ds, dh] * gate_of_ds[:, t]`` (``gate_of_ds = [c_prev, i, g, tanh(c)]``
    times the gates' slopes), ``ds = dh * gate_of_dh[:, t] + dc`` (``o * (1 - tanh(c)**2)``),
    ``dc_prev = ds * keep_c[:, t]`` (the forget gate ``f``)."""
    xp = array_namespace(c0, s)
    H = c0.shape[1]
    act, tanh_c = xp.stack(acts, axis=1), xp.stack(tanh_cs, axis=1)
    c_prev = _shifted(c0, cs)
    factors = xp.concat([c_prev, act[..., 2 * H:3 * H], act[..., H:2 * H], tanh_c], axis=2)
    gate_of_dh = act[..., 3 * H:] * (1.0 - tanh_c * tanh_c)
    return factors * lstm_gate_slopes(act, s), gate_of_dh, act[..., :H]


class TimeGRU(_Recurrent):
    """The book's ``GRU`` over ``T`` steps; gates ``z, r, h`` side by side in ``Wx``, ``Wh``, ``b``."""

    gates = 3

    def forward(self, xs: Array) -> Array:
        xp = array_namespace(xs, self.Wx)
        xw = input_projection(xs, self.Wx, self.b)
        h0 = self.h = self._start(self.h, xs.shape[0])
        hs, steps = [], []
        for t in range(xs.shape[1]):
            self.h, step = gru_step(xw[:, t, :], self.h, self.Wh)
            hs.append(self.h), steps.append(step)
        self.cache = (xs, h0, steps)
        return xp.stack(hs, axis=1)

    def backward(self, dhs: Array) -> Array:
        xp = array_namespace(dhs, self.Wx)
        xs, h0, steps = self.cache
        dh, dAs = zeros(tuple(h0.shape), dhs), []
        for t in reversed(range(dhs.shape[1])):
            dh, dA = gru_step_backward(dhs[:, t, :] + dh, steps[t], self.Wh)
            dAs.append(dA)
        N, T = dhs.shape[:2]
        dA = xp.stack(dAs[::-1], axis=1)

        def rows(key: int) -> Array:
            return xp.reshape(xp.stack([step[key] for step in steps], axis=1), (N * T, self.H))

        grads = gru_weight_grads(xp.reshape(xs, (N * T, xs.shape[2])), rows(0), rows(3),
                                 xp.reshape(dA, (N * T, 3 * self.H)))
        for grad, value in zip(self.grads, grads):
            grad[...] = value
        self.dh = dh
        return _input_grad(dA, self.Wx)


class TimeBiLSTM:
    """Two ``TimeLSTM``: one reads the sequence forwards, the other backwards; their outputs
    side by side, ``(N, T, 2H)``.  ``params`` = the forward LSTM's then the backward one's."""

    def __init__(self, Wx1: Array, Wh1: Array, b1: Array, Wx2: Array, Wh2: Array, b2: Array,
                 stateful: bool = False) -> None:
        self.forward_lstm = TimeLSTM(Wx1, Wh1, b1, stateful)
        self.backward_lstm = TimeLSTM(Wx2, Wh2, b2, stateful)
        self.params = self.forward_lstm.params + self.backward_lstm.params
        self.grads = self.forward_lstm.grads + self.backward_lstm.grads

    def forward(self, xs: Array) -> Array:
        xp = array_namespace(xs)
        o1 = self.forward_lstm.forward(xs)
        o2 = xp.flip(self.backward_lstm.forward(xp.flip(xs, axis=1)), axis=1)
        return xp.concat([o1, o2], axis=2)

    def backward(self, dhs: Array) -> Array:
        xp = array_namespace(dhs)
        H = dhs.shape[2] // 2
        dxs1 = self.forward_lstm.backward(dhs[:, :, :H])
        dxs2 = self.backward_lstm.backward(xp.flip(dhs[:, :, H:], axis=1))
        return dxs1 + xp.flip(dxs2, axis=1)
