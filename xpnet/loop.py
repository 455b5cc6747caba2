"""The one training loop of both books; :meth:`Loop.step` is the book's ``train_step``.  Services are
extensions (:mod:`xpnet.extensions`) with any of ``on_epoch_start``, ``on_step``, ``on_flush``,
``on_epoch_end``, ``on_close``.  Losses reach the host in bulk; NaN/inf stops; Ctrl-C stops between steps."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from typing import Any, Callable, Iterator

from array_api_compat import is_array_api_obj

from .backend import Device, Generator, copy, on_own_device, to_numpy

Array = Any
__all__ = ["Loop", "Replacement", "Shuffle", "Sequential", "at_step_boundary"]

FLUSH_EVERY = 50  # most steps whose losses wait on the device for one bulk transfer


class Replacement:
    """Book 1's draws, ``batch_size`` indices with replacement (``np.random.choice``); samplers run in
    :meth:`Loop.step`, with the loop's device current."""

    def __init__(self, n: int, batch_size: int, rng: Generator, device: Device) -> None:
        self.n, self.batch_size, self.rng, self.device = n, batch_size, rng, device

    def indices(self, epoch_iter: int) -> Array:
        return self.rng.integers(self.n, self.batch_size, device=self.device)


class Shuffle(Replacement):
    """A permutation per epoch read in order; ``cumulative``: permute the last one (book 2's ``fit``)."""

    def __init__(self, n: int, batch_size: int, rng: Generator, device: Device, *, cumulative: bool = False) -> None:
        super().__init__(n, batch_size, rng, device)
        self.cumulative, self.order = cumulative, None

    def indices(self, epoch_iter: int) -> Array:
        if epoch_iter == 0 or self.order is None:
            perm = self.rng.permutation(self.n, device=self.device)
            keep = self.cumulative and self.order is not None
            self.order = self.device.xp.take(self.order, perm) if keep else perm
        start = epoch_iter * self.batch_size
        return self.order[start:min(start + self.batch_size, self.n)]


class Sequential:
    """Book 2's ``get_batch``: ``(batch_size, time_size)`` indices, row ``i`` from ``i * (n // batch_size)`` on, wrapping."""

    def __init__(self, n: int, batch_size: int, time_size: int, device: Device) -> None:
        self.n, self.time_size, self.time_idx, jump = n, time_size, 0, n // batch_size
        self.base = device.asarray([[i * jump + j for j in range(time_size)] for i in range(batch_size)],
                                   dtype=device.xp.int64)

    def indices(self, epoch_iter: int) -> Array:
        self.time_idx += self.time_size
        return (self.base + (self.time_idx - self.time_size)) % self.n


@contextlib.contextmanager
def at_step_boundary() -> Iterator[Any]:
    """Defer the first SIGINT to the next step (not mid-write); a second interrupts at once.  Main
    thread only, over Python's default handler (a user's own is left alone)."""
    stop = type("Stop", (), {"requested": False})()
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield stop
        return

    def request(signum: int, frame: object) -> None:
        stop.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, request)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


class Loop:
    """``update(x_batch, t_batch) -> loss`` on ``sampler``'s batches of ``(x, t)`` for ``max_iter`` steps;
    an epoch ends every ``iter_per_epoch`` steps (``book_phase``: after steps ``1, 1 + ipe, ...``).  Public
    state: ``epoch``, ``iteration``, ``epoch_iter``, ``epoch_steps``, ``history`` (``train_loss_list``:
    every step's; ``history_lengths(epoch, iteration)``: the others'), ``params``, ``buffers`` (name ->
    ``(owner, attribute)``), ``optimizer``, ``generators``, ``rng``, ``sampler``, ``best``, ``stop_message``."""

    def __init__(self, update: Callable[[Array, Array], Array], x: Array, t: Array, *, device: Device,
                 sampler: Any, rng: Generator, iter_per_epoch: float, max_iter: int, params: dict[str, Array],
                 optimizer: Any, buffers: dict[str, tuple[Any, str]], generators: dict[str, Generator],
                 book_phase: bool = False, history_keys: tuple[str, ...] = ()) -> None:
        self.update, self.x, self.t, self.device, self.sampler, self.rng = update, x, t, device, sampler, rng
        self.iter_per_epoch, self.max_iter, self.book_phase = iter_per_epoch, max_iter, book_phase
        self.params, self.optimizer, self.buffers, self.generators = params, optimizer, buffers, generators
        self.best: Any = None
        self.history_lengths: Callable[[int, int], dict[str, int]] = lambda epoch, iteration: {}
        self.stop_message: Callable[[Loop], str] = lambda loop: ""
        self.extensions: list[Any] = []
        self.history: dict[str, list[float]] = {key: [] for key in ("train_loss_list", *history_keys)}
        self.epoch = self.iteration = self.epoch_iter = self.epoch_steps = 0
        self._pending: list[Array] = []

    def extend(self, extension: Any) -> Any:
        """Add ``extension``; return it."""
        self.extensions.append(extension)
        return extension

    def fire(self, event: str, *args: Any) -> None:
        for extension in self.extensions:
            if hasattr(extension, event):
                getattr(extension, event)(self, *args)

    def restore(self, counters: dict[str, int], history: dict[str, list[float]]) -> None:
        """Counters (``epoch``, ``iteration``, ``epoch_iter``) and history, as a checkpoint saved them."""
        self.epoch, self.iteration, self.epoch_iter = (int(counters[k]) for k in ("epoch", "iteration", "epoch_iter"))
        self.history = {key: [float(v) for v in values] for key, values in history.items()}
        self._pending.clear()

    def arrays(self) -> dict[str, Array]:
        """Params and buffers by checkpoint key, ``params/<key>`` and ``buffers/<name>`` (unset: ``None``)."""
        return {**{f"params/{key}": value for key, value in self.params.items()},
                **{f"buffers/{name}": getattr(owner, attr) for name, (owner, attr) in self.buffers.items()}}

    def copy_state(self) -> dict[str, Array]:
        """Copies of :meth:`arrays` on their device, a snapshot later steps leave alone (unset buffers left out)."""
        return {key: copy(value) for key, value in self.arrays().items() if is_array_api_obj(value)}

    @on_own_device
    def load_state(self, state: dict[str, Array]) -> None:
        """Put :meth:`arrays`' entries of ``state`` back: params in place (layers share them), buffers as copies."""
        for key, value in self.params.items():
            value[...] = self.device.asarray(state[f"params/{key}"], dtype=value.dtype)
        for name, (owner, attr) in self.buffers.items():
            if f"buffers/{name}" in state:
                setattr(owner, attr, copy(self.device.asarray(state[f"buffers/{name}"])))

    @property
    def finished(self) -> bool:
        return self.iteration >= self.max_iter

    @on_own_device
    def step(self) -> None:
        """One step; an epoch's end fires ``on_epoch_end`` once its losses are on the host."""
        if self.epoch_iter == 0:
            self.fire("on_epoch_start")
        xp, idx = self.device.xp, self.sampler.indices(self.epoch_iter)
        flat = xp.reshape(idx, (-1,))
        x_batch = xp.reshape(xp.take(self.x, flat, axis=0), (*idx.shape, *self.x.shape[1:]))
        t_batch = xp.reshape(xp.take(self.t, flat, axis=0), (*idx.shape, *self.t.shape[1:]))
        self._pending.append(self.device.asarray(self.update(x_batch, t_batch)))
        self.iteration, self.epoch_iter = self.iteration + 1, self.epoch_iter + 1
        self.fire("on_step")
        if (self.iteration - 1) % self.iter_per_epoch == 0 if self.book_phase else self.epoch_iter == self.iter_per_epoch:
            self.flush()
            self.epoch, self.epoch_steps, self.epoch_iter = self.epoch + 1, self.epoch_iter, 0
            self.fire("on_epoch_end")
        elif len(self._pending) >= FLUSH_EVERY:
            self.flush()

    @on_own_device
    def flush(self) -> list[float]:
        """Move the losses still on the device to ``history`` in one transfer and return them;
        ``FloatingPointError`` (plus ``stop_message``) at the first NaN/inf."""
        if not self._pending:
            return []
        values = to_numpy(self.device.xp.stack(self._pending)).tolist()
        self._pending.clear()
        losses = self.history["train_loss_list"]
        bad = next((k for k, value in enumerate(values) if not math.isfinite(value)), None)
        if bad is not None:
            losses.extend(values[:bad])
            self.fire("on_close")
            raise FloatingPointError(
                f"train loss became {values[bad]} at epoch {self.epoch + 1}, iteration {len(losses) + 1} (step "
                f"{self.epoch_iter - len(values) + 1 + bad} of {math.ceil(self.iter_per_epoch)} in that epoch); "
                f"training stopped.{self.stop_message(self)}")
        losses.extend(values)
        self.fire("on_flush", values)
        return values

    def run(self, interrupted: Callable[[Loop], str]) -> None:
        """Step to ``max_iter``; on Ctrl-C re-raise ``KeyboardInterrupt(interrupted(loop))``."""
        try:
            with at_step_boundary() as stop:
                while not self.finished and not stop.requested:
                    self.step()
                self.flush()
                if stop.requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.fire("on_close")
            self.flush()
            raise KeyboardInterrupt(interrupted(self)) from None
        finally:
            self.fire("on_close")
