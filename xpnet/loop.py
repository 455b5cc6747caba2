"""The one training loop of both books: :meth:`Loop.step` is the book's ``train_step``.

::

    idx = sampler.indices(loop)                      # the batch, as indices on the device
    loss = update(take(x, idx), take(t, idx))        # gradient, optimizer step; loss stays on the device

Everything else is an extension (Chainer's ``Trainer.extend``): objects with any of
``on_epoch_start(loop)``, ``on_step(loop)``, ``on_flush(loop, values)``, ``on_epoch_end(loop)``,
``on_close(loop)``, called in the order they were added.  The loop itself keeps only what
no run may lose: losses reach the host in bulk (:meth:`flush`, every ``FLUSH_EVERY`` steps and
at each epoch end; never one read per step) and a NaN/inf loss stops the run with a
``FloatingPointError``; the first Ctrl-C stops it between two steps (:func:`at_step_boundary`).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from typing import Any, Callable, Iterator

from .backend import Device, Generator, to_numpy

Array = Any
__all__ = ["Loop", "Replacement", "Shuffle", "Sequential", "at_step_boundary"]

FLUSH_EVERY = 50
"""Most steps whose losses wait on the device before one bulk transfer to the host."""


class Replacement:
    """The first book's draws: ``batch_size`` indices with replacement per step
    (``np.random.choice(train_size, batch_size)`` on NumPy without a seed)."""

    def __init__(self, n: int, batch_size: int, rng: Generator, device: Device) -> None:
        self.n, self.batch_size, self.rng, self.device = n, batch_size, rng, device
        self.order: Array | None = None

    def indices(self, epoch_iter: int) -> Array:
        return self.rng.integers(self.n, self.batch_size, device=self.device)


class Shuffle(Replacement):
    """One permutation per epoch, taken in order: the last partial batch kept (first book,
    ``drop_last=False``) or dropped (second book).  ``cumulative``: each epoch permutes the
    previous epoch's order, as the second book's ``fit`` permutes its data in place."""

    def __init__(self, n: int, batch_size: int, rng: Generator, device: Device, *,
                 drop_last: bool = False, cumulative: bool = False) -> None:
        super().__init__(n, batch_size, rng, device)
        self.drop_last, self.cumulative = drop_last, cumulative

    def indices(self, epoch_iter: int) -> Array:
        if epoch_iter == 0 or self.order is None:
            perm = self.rng.permutation(self.n, device=self.device)
            with self.device.activate():
                self.order = self.device.xp.take(self.order, perm) if self.cumulative and self.order is not None else perm
        start = epoch_iter * self.batch_size
        return self.order[start:min(start + self.batch_size, self.n)]


class Sequential:
    """The second book's ``RnnlmTrainer.get_batch``: row ``i`` reads the data from offset
    ``i * (n // batch_size)`` on, ``time_size`` steps at a time, wrapping around; one gather
    of a ``(batch_size, time_size)`` index array instead of element copies."""

    def __init__(self, n: int, batch_size: int, time_size: int, device: Device) -> None:
        xp, jump = device.xp, n // batch_size
        self.n, self.time_size, self.device, self.time_idx = n, time_size, device, 0
        with device.activate():
            rows = xp.arange(batch_size, dtype=xp.int64, device=device.native) * jump
            self.base = rows[:, None] + xp.arange(time_size, dtype=xp.int64, device=device.native)[None, :]
        self.order = None

    def indices(self, epoch_iter: int) -> Array:
        idx = (self.base + self.time_idx) % self.n
        self.time_idx += self.time_size
        return idx


class StopRequest:
    """``requested`` becomes True when SIGINT arrives while :func:`at_step_boundary` is active."""
    requested = False


@contextlib.contextmanager
def at_step_boundary() -> Iterator[StopRequest]:
    """Defer the first SIGINT to the loop's next step boundary (a KeyboardInterrupt at an
    arbitrary bytecode could leave a half-built bar or write behind); a second one
    interrupts at once.  Only in the main thread, and only over Python's default handler."""
    stop = StopRequest()
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
    """``update(x_batch, t_batch) -> loss`` on batches of ``(x, t)`` drawn by ``sampler``,
    ``max_iter`` steps.  An epoch ends after every ``iter_per_epoch`` steps (``book_phase``:
    after steps ``1, 1 + ipe, 1 + 2 ipe, ...``, where the first book's Trainer evaluates).

    Public state, read and restored by extensions and checkpoints: ``epoch`` (finished
    epochs), ``iteration`` (finished steps), ``epoch_iter`` (steps into this epoch),
    ``epoch_steps`` (the steps of the epoch that just ended), ``history`` (lists of floats;
    ``train_loss_list``: every step's loss; ``history_lengths(epoch, iteration)`` says how
    long the other lists must be), ``params`` (name -> array), ``buffers`` (name ->
    ``(owner, attribute)``), ``optimizer``, ``generators``, ``rng``, ``sampler``, ``best``
    (a :class:`~xpnet.extensions.BestState` or ``None``), ``stop_message``.
    """

    def __init__(self, update: Callable[[Array, Array], Array], x: Array, t: Array, *, device: Device,
                 sampler: Any, rng: Generator, iter_per_epoch: float, max_iter: int, params: dict[str, Array],
                 optimizer: Any, buffers: dict[str, tuple[Any, str]], generators: dict[str, Generator],
                 book_phase: bool = False, history_keys: tuple[str, ...] = ()) -> None:
        self.update, self.x, self.t, self.device, self.sampler, self.rng = update, x, t, device, sampler, rng
        self.params, self.optimizer, self.buffers, self.generators = params, optimizer, buffers, generators
        self.best: Any = None
        self.history_lengths: Callable[[int, int], dict[str, int]] = lambda epoch, iteration: {}
        self.iter_per_epoch, self.max_iter, self.book_phase = iter_per_epoch, max_iter, book_phase
        self.extensions: list[Any] = []
        self.history: dict[str, list[float]] = {key: [] for key in ("train_loss_list", *history_keys)}
        self.epoch = self.iteration = self.epoch_iter = self.epoch_steps = 0
        self.stop_message: Callable[[float, Loop], str] = lambda value, loop: ""
        self._pending: list[Array] = []

    def extend(self, extension: Any) -> Any:
        """Add ``extension`` (called after those added before it); return it."""
        self.extensions.append(extension)
        return extension

    def fire(self, event: str, *args: Any) -> None:
        for extension in self.extensions:
            hook = getattr(extension, event, None)
            if hook is not None:
                hook(self, *args)

    def restore(self, counters: dict[str, int], history: dict[str, list[float]]) -> None:
        """Counters (``epoch``, ``iteration``, ``epoch_iter``) and history as a checkpoint saved them."""
        self.epoch, self.iteration, self.epoch_iter = (int(counters[k]) for k in ("epoch", "iteration", "epoch_iter"))
        self.history = {key: [float(v) for v in values] for key, values in history.items()}
        self._pending.clear()

    def _epoch_ends(self) -> bool:
        if self.book_phase:
            return (self.iteration - 1) % self.iter_per_epoch == 0
        return self.epoch_iter == self.iter_per_epoch

    @property
    def finished(self) -> bool:
        return self.iteration >= self.max_iter

    def step(self) -> None:
        """One step: draw the batch, ``update`` it, keep the loss; an epoch's end fires
        ``on_epoch_end`` after the losses are on the host."""
        if self.epoch_iter == 0:
            self.fire("on_epoch_start")
        xp = self.device.xp
        idx = self.sampler.indices(self.epoch_iter)
        with self.device.activate():
            flat = xp.reshape(idx, (-1,))
            x_batch = xp.reshape(xp.take(self.x, flat, axis=0), (*idx.shape, *self.x.shape[1:]))
            t_batch = xp.reshape(xp.take(self.t, flat, axis=0), (*idx.shape, *self.t.shape[1:]))
            loss = self.update(x_batch, t_batch)
            self._pending.append(self.device.asarray(loss))
        self.iteration += 1
        self.epoch_iter += 1
        self.fire("on_step")
        if self._epoch_ends():
            self.flush()
            self.epoch, self.epoch_steps, self.epoch_iter = self.epoch + 1, self.epoch_iter, 0
            self.fire("on_epoch_end")
        elif len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> list[float]:
        """Move the losses still on the device to ``history['train_loss_list']`` (one transfer);
        ``FloatingPointError`` (with ``stop_message``) at the first NaN/inf.  Returns them."""
        if not self._pending:
            return []
        with self.device.activate():
            values = to_numpy(self.device.xp.stack(self._pending)).tolist()
        self._pending.clear()
        losses = self.history["train_loss_list"]
        for k, value in enumerate(values):
            if not math.isfinite(value):
                losses.extend(values[:k])
                self.fire("on_close")
                step = self.epoch_iter - (len(values) - 1 - k)
                raise FloatingPointError(f"train loss became {value} at epoch {self.epoch + 1}, iteration "
                                         f"{len(losses) + 1} (step {step} of {math.ceil(self.iter_per_epoch)} in "
                                         f"that epoch); training stopped.{self.stop_message(value, self)}")
        losses.extend(values)
        self.fire("on_flush", values)
        return values

    def run(self, interrupted: Callable[[Loop], str]) -> None:
        """Step until ``max_iter``; on Ctrl-C re-raise ``KeyboardInterrupt(interrupted(loop))``."""
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
