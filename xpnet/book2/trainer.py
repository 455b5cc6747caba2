"""The second book's ``common/trainer.py``: ``Trainer(model, optimizer).fit(x, t, ...)`` and
``RnnlmTrainer(model, optimizer).fit(xs, ts, ...)``, front-ends of the one loop (:mod:`xpnet.loop`).
The model is the book's: ``forward(x, t)`` returns the loss, ``backward()`` fills the ``grads`` list.

Beyond the book (keyword-only): ``device`` (``None``: ``"cuda"`` when ``config.GPU``, else where the
params are; model, optimizer state and data move there once, each batch is one gather there);
``checkpoint=`` (written at each epoch end) and ``resume=``; ``seed`` (``None``: the book's draws,
``np.random.permutation`` on NumPy, cumulative as the book permutes its data in place).  ``fit``
refuses NaN/inf in ``x`` and out-of-range labels (when the model has ``predict``), a NaN/inf loss
stops it, Ctrl-C says how to resume.  An RNN's hidden state is not saved: it restarts from zeros.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable

from .. import checkpoint as _checkpoint
from .._trainer_checks import check_outputs, check_resume, first_nonfinite_row, make_folders
from ..backend import DeviceLike, Generator, device_of, get_device, to_device
from ..checks import positive_int, real
from ..extensions import Checkpoint
from ..functions import check_labels
from ..loop import Loop, Sequential, Shuffle
from . import config
from .grads import clip_grads, merge_shared, remove_duplicate, shared_pairs

Array = Any
__all__ = ["Trainer", "RnnlmTrainer", "remove_duplicate", "clip_grads"]


class Trainer:
    """Trains a second-book ``model`` with ``optimizer`` (``update(params, grads)``)."""

    LINE = "| epoch %d |  iter %d / %d | time %d[s] | loss %.2f"

    def __init__(self, model: Any, optimizer: Any, *, device: DeviceLike | None = None, seed: int | None = None,
                 checkpoint: str | os.PathLike | None = None, resume: str | os.PathLike | bool | None = None) -> None:
        for name in ("forward", "backward"):
            if not callable(getattr(model, name, None)):
                raise TypeError(f"model: expected a model with forward() and backward(), {type(model).__name__} "
                                f"has no {name}()")
        if not isinstance(getattr(model, "params", None), (list, tuple)) or not model.params:
            raise TypeError(f"model: expected params as a non-empty list of arrays, got {getattr(model, 'params', None)!r}")
        if not callable(getattr(optimizer, "update", None)):
            raise TypeError(f"optimizer: expected an object with update(params, grads), got {type(optimizer).__name__}")
        outputs = check_outputs({"checkpoint": checkpoint})
        self.checkpoint, self.resume = outputs["checkpoint"], check_resume(resume, outputs["checkpoint"])
        if self.checkpoint is not None or self.resume is not None:
            _checkpoint.check_checkpointable(optimizer)
        self.device = get_device(device if device is not None else "cuda" if config.GPU else device_of(model.params[0]))
        self.model, self.optimizer = to_device(model, self.device), to_device(optimizer, self.device)
        make_folders(outputs)
        self.rng, self.loss_list, self.eval_interval, self.current_epoch = Generator(seed), [], None, 0
        self.loop: Loop | None = None
        self._saver = Checkpoint(self.checkpoint)

    def fit(self, x: Array, t: Array, max_epoch: int = 10, batch_size: int = 32,
            max_grad: float | None = None, eval_interval: int | None = 20) -> None:
        """``max_epoch`` passes over ``(x, t)`` in shuffled batches (the last partial one dropped, as
        in the book); every ``eval_interval`` steps, the book's line, and the mean loss since the last
        one appended to ``loss_list``.  ``max_grad``: clip the gradients' total norm (:func:`clip_grads`)."""
        batch_size = positive_int("batch_size", batch_size)
        x, t = self._data(x, t, lambda data: data[:1, ...])
        if x.shape[0] < batch_size:
            raise ValueError(f"batch_size: {batch_size} is more than the {x.shape[0]} samples of x")
        sampler = Shuffle(int(x.shape[0]), batch_size, self.rng, self.device, cumulative=True)
        self._run(x, t, sampler, int(x.shape[0]) // batch_size, max_epoch, max_grad, eval_interval, self.loss_list,
                  lambda loss: loss)

    def _data(self, x: Any, t: Any, probe: Callable[[Array], Array]) -> tuple[Array, Array]:
        """``x`` and ``t`` on the device once (floating ``x`` in the params' dtype), checked: a label
        per sample, no NaN/inf, labels in range of ``model.predict(probe(x))`` when there is one."""
        x, t = self.device.asarray(x), self.device.asarray(t)
        if x.ndim == 0 or t.ndim == 0 or x.shape[0] != t.shape[0]:
            raise ValueError(f"x, t: expected one label per sample, got shapes {tuple(x.shape)} and {tuple(t.shape)}")
        if self.device.xp.isdtype(x.dtype, "real floating"):
            x = self.device.asarray(x, dtype=self.model.params[0].dtype)
        row = first_nonfinite_row(x)
        if row is not None:
            raise ValueError(f"x: row {row} holds NaN or inf (as {x.dtype}); the data must be finite")
        if callable(getattr(self.model, "predict", None)):
            with self.device.activate():
                classes = int(self.model.predict(probe(x)).shape[-1])
            if callable(getattr(self.model, "reset_state", None)):
                self.model.reset_state()
            try:
                if t.ndim == 1 or (t.ndim == 2 and t.shape[1] == classes):
                    check_labels(t, classes)
            except ValueError as exc:
                raise ValueError(f"t: {str(exc).removeprefix('t: ')} (the model has {classes} outputs)") from None
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
        if self.resume is not None and (self.resume != self.checkpoint or os.path.exists(self.resume)):
            self._saver.load(loop, self.resume)
            self.resume = None
        loop.run(lambda lp: self._saver.interrupted(lp, f"interrupted during epoch {self.current_epoch + lp.epoch + 1}",
                                                    lambda path: f"continue with resume={path!r}"))
        self.current_epoch += loop.epoch

    def plot(self, ylim: tuple[float, float] | None = None) -> None:
        """Plot ``loss_list`` against steps (x ``eval_interval``), as the book does."""
        self._plot(self.loss_list, "loss", ylim)

    def _plot(self, values: list[float], name: str, ylim: tuple[float, float] | None) -> None:
        import matplotlib.pyplot as plt

        if ylim is not None:
            plt.ylim(*ylim)
        plt.plot(range(len(values)), values, label="train")
        plt.xlabel(f"iterations (x{self.eval_interval})")
        plt.ylabel(name)
        plt.show()


class RnnlmTrainer(Trainer):
    """Trains book 2's RNN language models on one long corpus: row ``i`` of every batch reads the
    corpus from its own offset on, ``time_size`` words per step (``time_idx`` says where)."""

    LINE = "| epoch %d |  iter %d / %d | time %d[s] | perplexity %.2f"

    def __init__(self, model: Any, optimizer: Any, **options: Any) -> None:
        super().__init__(model, optimizer, **options)
        self.ppl_list: list[float] = []

    time_idx = property(lambda self: 0 if self.loop is None else self.loop.sampler.time_idx)

    def fit(self, xs: Array, ts: Array, max_epoch: int = 10, batch_size: int = 20, time_size: int = 35,
            max_grad: float | None = None, eval_interval: int | None = 20) -> None:
        """``max_epoch`` passes of ``len(xs) // (batch_size * time_size)`` steps; every ``eval_interval``
        steps, the book's line and the perplexity (``exp`` of the mean loss since the last) in ``ppl_list``."""
        batch_size, time_size = positive_int("batch_size", batch_size), positive_int("time_size", time_size)
        xs, ts = self._data(xs, ts, lambda data: self.device.xp.reshape(data[:1], (1, 1)))
        n = int(xs.shape[0])
        if n < batch_size * time_size:
            raise ValueError(f"batch_size, time_size: {batch_size} x {time_size} words per step is more than the {n} of xs")
        self.ppl_list = []
        self._run(xs, ts, Sequential(n, batch_size, time_size, self.device), n // (batch_size * time_size),
                  max_epoch, max_grad, eval_interval, self.ppl_list, math.exp)

    def plot(self, ylim: tuple[float, float] | None = None) -> None:
        """Plot ``ppl_list`` against steps (x ``eval_interval``), as the book does."""
        self._plot(self.ppl_list, "perplexity", ylim)


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
