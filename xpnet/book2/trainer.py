"""The second book's ``Trainer(model, optimizer).fit(x, t, ...)`` and ``RnnlmTrainer(...).fit(xs, ts, ...)``,
front-ends of the one loop (:mod:`xpnet.loop`) for models whose ``forward(x, t)`` returns the loss.
Beyond the book (keyword-only): ``device`` (``None``: ``"cuda"`` when ``config.GPU``, else the params'),
``checkpoint=``/``resume=``, ``seed`` (``None``: the book's draws).  ``fit`` refuses NaN/inf data and bad
labels, stops on a NaN/inf loss, and on Ctrl-C says how to resume (an RNN's hidden state restarts from zeros).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable

from .. import checkpoint as _checkpoint
from .._trainer_checks import check_network, check_values, make_folders
from ..backend import DeviceLike, Generator, device_of, get_device, on_own_device, to_device
from ..checks import positive_int, real
from ..extensions import Checkpoint
from ..loop import Loop, Sequential, Shuffle
from . import config
from .grads import clip_grads, merge_shared, remove_duplicate, shared_pairs

Array = Any
__all__ = ["Trainer", "RnnlmTrainer", "remove_duplicate", "clip_grads"]


class Trainer:
    """Trains a second-book ``model`` with ``optimizer`` (``update(params, grads)``)."""

    LINE, PLOTTED = "| epoch %d |  iter %d / %d | time %d[s] | loss %.2f", ("loss_list", "loss")

    def __init__(self, model: Any, optimizer: Any, *, device: DeviceLike | None = None, seed: int | None = None,
                 checkpoint: str | os.PathLike | None = None, resume: str | os.PathLike | bool | None = None) -> None:
        check_network(model, ("forward", "backward"), (list, tuple), "model")
        if not callable(getattr(optimizer, "update", None)):
            raise TypeError(f"optimizer: expected an object with update(params, grads), got {type(optimizer).__name__}")
        self._saver = Checkpoint(optimizer, resume, checkpoint=checkpoint)
        self.device = get_device(device if device is not None else "cuda" if config.GPU else device_of(model.params[0]))
        self.model, self.optimizer = to_device(model, self.device), to_device(optimizer, self.device)
        make_folders(self._saver.outputs)
        self.rng, self.loss_list, self.eval_interval, self.current_epoch = Generator(seed), [], None, 0
        self.loop: Loop | None = None

    @on_own_device
    def fit(self, x: Array, t: Array, max_epoch: int = 10, batch_size: int = 32,
            max_grad: float | None = None, eval_interval: int | None = 20) -> None:
        """``max_epoch`` passes over ``(x, t)`` in shuffled batches (a last partial one dropped); every
        ``eval_interval`` steps the book's line and the mean loss into ``loss_list``; ``max_grad``: :func:`clip_grads`."""
        batch_size = positive_int("batch_size", batch_size)
        x, t = self._data(x, t, lambda data: data[:1, ...])
        if x.shape[0] < batch_size:
            raise ValueError(f"batch_size: {batch_size} is more than the {x.shape[0]} samples of x")
        sampler = Shuffle(int(x.shape[0]), batch_size, self.rng, self.device, cumulative=True)
        self._run(x, t, sampler, int(x.shape[0]) // batch_size, max_epoch, max_grad, eval_interval, self.loss_list,
                  lambda loss: loss)

    def _data(self, x: Any, t: Any, probe: Callable[[Array], Array]) -> tuple[Array, Array]:
        """``x``, ``t`` on the device (floating ``x`` in the params' dtype), checked against ``model.predict(probe(x))``."""
        x, t = self.device.asarray(x), self.device.asarray(t)
        if x.ndim == 0 or t.ndim == 0 or x.shape[0] != t.shape[0]:
            raise ValueError(f"x, t: expected one label per sample, got shapes {tuple(x.shape)} and {tuple(t.shape)}")
        if self.device.xp.isdtype(x.dtype, "real floating"):
            x = self.device.asarray(x, dtype=self.model.params[0].dtype)
        classes = 0
        if callable(getattr(self.model, "predict", None)):
            classes = int(self.model.predict(probe(x)).shape[-1])
            if callable(getattr(self.model, "reset_state", None)):
                self.model.reset_state()
        labels = classes and (t.ndim == 1 or (t.ndim == 2 and t.shape[1] == classes))
        check_values("x", x, "t", t if labels else None, classes)
        return x, t

    def _run(self, x: Array, t: Array, sampler: Any, max_iters: int, max_epoch: int, max_grad: float | None,
             eval_interval: int | None, values: list[float], transform: Callable[[float], float]) -> None:
        """``max_epoch`` epochs of ``max_iters`` steps; each progress line appends ``transform(mean loss)``."""
        max_epoch = positive_int("max_epoch", max_epoch)
        max_grad = None if max_grad is None else real("max_grad", max_grad, low=0.0, low_open=True)
        self.eval_interval = None if eval_interval is None else positive_int("eval_interval", eval_interval)
        model, optimizer, pairs = self.model, self.optimizer, shared_pairs(self.model.params)

        def update(x_batch: Array, t_batch: Array) -> Array:  # the book's step
            loss = model.forward(x_batch, t_batch)
            model.backward()
            params, grads = merge_shared(model.params, model.grads, pairs)
            if max_grad is not None:
                clip_grads(grads, max_grad)
            optimizer.update(params, grads)
            return loss

        params = merge_shared(model.params, model.params, pairs)[0]
        self.loop = loop = Loop(update, x, t, device=self.device, sampler=sampler, rng=self.rng,
                                iter_per_epoch=max_iters, max_iter=max_epoch * max_iters, optimizer=optimizer,
                                params={str(k): p for k, p in enumerate(params)}, buffers=_checkpoint.buffers(model),
                                generators=_checkpoint.generators(model))
        loop.extend(_Lines(self, values, transform, max_iters))
        loop.extend(self._saver)
        self._saver.start(loop)
        loop.run(lambda lp: self._saver.interrupted(lp, f"interrupted during epoch {self.current_epoch + lp.epoch + 1}",
                                                    lambda path: f"continue with resume={path!r}"))
        self.current_epoch += loop.epoch

    def plot(self, ylim: tuple[float, float] | None = None) -> None:
        """Plot ``loss_list`` (``ppl_list``) against steps (x ``eval_interval``), as the book does."""
        import matplotlib.pyplot as plt

        values = getattr(self, self.PLOTTED[0])
        if ylim is not None:
            plt.ylim(*ylim)
        plt.plot(range(len(values)), values, label="train")
        plt.xlabel(f"iterations (x{self.eval_interval})")
        plt.ylabel(self.PLOTTED[1])
        plt.show()


class RnnlmTrainer(Trainer):
    """Trains book 2's RNN language models on one long corpus: row ``i`` of every batch reads the
    corpus from its own offset on, ``time_size`` words per step (``time_idx`` says where)."""

    LINE, PLOTTED = "| epoch %d |  iter %d / %d | time %d[s] | perplexity %.2f", ("ppl_list", "perplexity")

    def __init__(self, model: Any, optimizer: Any, **options: Any) -> None:
        super().__init__(model, optimizer, **options)
        self.ppl_list: list[float] = []

    time_idx = property(lambda self: 0 if self.loop is None else self.loop.sampler.time_idx)

    @on_own_device
    def fit(self, xs: Array, ts: Array, max_epoch: int = 10, batch_size: int = 20, time_size: int = 35,
            max_grad: float | None = None, eval_interval: int | None = 20) -> None:
        """``max_epoch`` passes of ``len(xs) // (batch_size * time_size)`` steps; every ``eval_interval``
        steps the book's line and the perplexity into ``ppl_list``."""
        batch_size, time_size = positive_int("batch_size", batch_size), positive_int("time_size", time_size)
        xs, ts = self._data(xs, ts, lambda data: self.device.xp.reshape(data[:1], (1, 1)))
        n = int(xs.shape[0])
        if n < batch_size * time_size:
            raise ValueError(f"batch_size, time_size: {batch_size} x {time_size} words per step is more than the {n} of xs")
        self.ppl_list = []
        self._run(xs, ts, Sequential(n, batch_size, time_size, self.device), n // (batch_size * time_size),
                  max_epoch, max_grad, eval_interval, self.ppl_list, math.exp)


class _Lines:
    """The book's progress line at the steps ``iters % eval_interval == 0`` of each epoch."""

    def __init__(self, trainer: Trainer, values: list[float], transform: Callable[[float], float], max_iters: int):
        self.trainer, self.values, self.transform, self.max_iters = trainer, values, transform, max_iters
        self.start, self.mark = time.time(), None

    def on_step(self, loop: Loop) -> None:
        interval, iters = self.trainer.eval_interval, (loop.iteration - 1) % self.max_iters
        if interval is None or iters % interval != 0:
            return
        loop.flush()
        losses = loop.history["train_loss_list"][-1 if self.mark is None else self.mark:]
        self.mark, value = len(loop.history["train_loss_list"]), self.transform(sum(losses) / len(losses))
        print(self.trainer.LINE % (self.trainer.current_epoch + loop.epoch + 1, iters + 1, self.max_iters,
                                   time.time() - self.start, value))
        self.values.append(float(value))
