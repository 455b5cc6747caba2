"""The book's ``common/trainer.py``, a front-end of the one training loop (:mod:`xpnet.loop`)::

    trainer = Trainer(net, x_train, t_train, x_test, t_test, epochs=10, optimizer="Adam",
                      optimizer_param={"lr": 0.001}, device="auto", validation_split=0.1,
                      checkpoint="run/ck.npz", best_checkpoint="run/best.npz")
    history = trainer.train()
    net.load_params("run/best.npz")          # the best epoch's parameters (xpnet's nets)

What differs from the book: ``device`` (network, optimizer state and data move there once);
the constructor checks every argument, output path and the data (NaN/inf, labels) before
any step; losses reach the host in bulk; a NaN/inf loss stops with a ``FloatingPointError``;
``checkpoint``/``resume``; the best epoch (by validation accuracy with ``validation_split``,
else by the epoch's training loss; never by the test set) is kept (:meth:`restore_best`,
``best_checkpoint``); Ctrl-C stops between two steps and says how to resume.

``sampling="replacement"`` (the default) draws like the book: ``np.random.choice`` per step
on NumPy without ``seed``, ``iter_per_epoch = max(train_size / batch, 1)`` steps per epoch and
accuracy measured after each epoch's first step.  ``sampling="shuffle"``: an epoch is one
shuffled pass (last partial batch included), measured at its end.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from typing import Any, Callable, Mapping, Union

from . import checkpoint as _checkpoint
from ._trainer_checks import (DEFAULT_OPTIMIZER_PARAM as _DEFAULT_OPTIMIZER_PARAM, check_batches, check_data,
                              check_network, check_outputs, check_pair, check_resume, make_folders,
                              make_optimizer)
from .backend import DeviceLike, Generator, cuda_available, device_of, get_device, to_device
from .checks import one_of, positive_int, real
from .extensions import BestState, Checkpoint, Divergence, DivergenceWarning, ProgressBar
from .io import save_arrays
from .loop import Loop, Replacement, Shuffle
from .nets import Net
from .plot import accuracy_label, plot_history

Array = Any
PathLike = Union[str, "os.PathLike[str]"]
History = dict[str, list[float]]

__all__ = ["Trainer", "DivergenceWarning", "format_epoch_line"]

_EPOCH_KEYS = ("train_acc_list", "test_acc_list", "val_acc_list", "epoch_loss", "epoch_time", "samples_per_sec")


def format_epoch_line(history: Mapping[str, list[float]], epochs: int, *, measured: int | None = None) -> str:
    """The one epoch line of the Trainer, the command line and the examples, e.g. ``epoch 2/5
    loss 0.1234  train acc 0.9810  val acc 0.9750  1234 samples/s  2.1 s``."""
    line = f"epoch {len(history['train_acc_list'])}/{epochs}  loss {history['epoch_loss'][-1]:.4f}" \
           f"  train acc {history['train_acc_list'][-1]:.4f}"
    for key, name in (("val_acc_list", "val"), ("test_acc_list", "test")):
        if history.get(key):
            line += f"  {name} acc {history[key][-1]:.4f}"
    line += f"  {history['samples_per_sec'][-1]:.0f} samples/s  {history['epoch_time'][-1]:.1f} s"
    return line + (f"  (accuracy on the first {measured:,} images)" if measured is not None else "")


class Trainer:
    """Trains ``network`` (the book's interface: ``params``, ``gradient``, ``loss``, ``predict``,
    ``accuracy``) on ``(x_train, t_train)``.  Positional arguments are the book's; ``optimizer``
    is a name (built with ``optimizer_param``) or an instance.  Keyword-only: ``device``,
    ``seed`` (of the draws; ``None``: the book's), ``sampling``, ``validation_split`` (fraction of
    the training data held out, from its end, to choose the best epoch), ``progress`` (``None``:
    a bar where one suits; ``True``/``False``; a callable ``progress(history)`` after each epoch),
    ``checkpoint``, ``best_checkpoint``, ``resume`` (a path, or ``True``: ``checkpoint`` if it
    exists), ``eval_batch_size``."""

    def __init__(self, network: Any, x_train: Array, t_train: Array, x_test: Array | None, t_test: Array | None,
                 epochs: int = 20, mini_batch_size: int = 100, optimizer: Any = "SGD",
                 optimizer_param: Mapping[str, float] = _DEFAULT_OPTIMIZER_PARAM,
                 evaluate_sample_num_per_epoch: int | None = None, verbose: bool = True, *,
                 device: DeviceLike = "cpu", seed: int | None = None, sampling: str = "replacement",
                 validation_split: float = 0.0, progress: bool | Callable[[History], None] | None = None,
                 checkpoint: PathLike | None = None, best_checkpoint: PathLike | None = None,
                 resume: PathLike | bool | None = None, eval_batch_size: int = 1000) -> None:
        self.device = get_device(device)
        self.device_note = "" if not (isinstance(device, str) and device == "auto") or self.device.name != "cpu" else \
            " (auto: " + ("the GPU did not answer" if cuda_available() else "no CuPy with a CUDA GPU") + ")"
        self.epochs, self.batch_size = positive_int("epochs", epochs), positive_int("mini_batch_size", mini_batch_size)
        self.eval_batch_size = positive_int("eval_batch_size", eval_batch_size)
        self.evaluate_sample_num_per_epoch = None if evaluate_sample_num_per_epoch is None else \
            positive_int("evaluate_sample_num_per_epoch", evaluate_sample_num_per_epoch)
        self.sampling = one_of("sampling", sampling, ("replacement", "shuffle"))
        split = real("validation_split", validation_split, low=0.0, high=1.0, high_open=True)
        if not (progress is None or isinstance(progress, bool) or callable(progress)):
            raise TypeError(f"progress: expected None, a bool or a callable, got {type(progress).__name__}")
        outputs = check_outputs({"checkpoint": checkpoint, "best_checkpoint": best_checkpoint})
        self.checkpoint, self.best_checkpoint = outputs["checkpoint"], outputs["best_checkpoint"]
        resume = check_resume(resume, self.checkpoint)
        self.optimizer = make_optimizer(optimizer, optimizer_param)
        if self.checkpoint is not None or resume is not None:
            _checkpoint.check_checkpointable(self.optimizer)
        check_network(network)

        self.network, self.optimizer = to_device(network, self.device), to_device(self.optimizer, self.device)
        self.dtype = next(iter(network.params.values())).dtype
        data = check_data(network, self.device, self.dtype, x_train, t_train, x_test, t_test, split)
        self.x_train, self.t_train, self.x_val, self.t_val, self.x_test, self.t_test, self.num_classes = data
        self.train_size = int(self.x_train.shape[0])
        buffers = _checkpoint.buffers(network)
        check_batches(bool(buffers), self.train_size, self.batch_size, self.sampling)
        self.verbose, self.progress, self.rng = verbose, progress, Generator(seed)
        self.final_test_acc: float | None = None
        book = self.sampling == "replacement"
        self.iter_per_epoch = max(self.train_size / self.batch_size, 1) if book else \
            math.ceil(self.train_size / self.batch_size)
        self.max_iter = int(self.epochs * self.iter_per_epoch)
        sampler = (Replacement if book else Shuffle)(self.train_size, self.batch_size, self.rng, self.device)
        self.loop = loop = Loop(self._update, self.x_train, self.t_train, device=self.device, sampler=sampler,
                                rng=self.rng, iter_per_epoch=self.iter_per_epoch, max_iter=self.max_iter,
                                params=network.params, optimizer=self.optimizer, buffers=buffers,
                                generators=_checkpoint.generators(network), book_phase=book, history_keys=_EPOCH_KEYS)
        loop.history_lengths = lambda epoch, iteration: {key: epoch if self._records(key) else 0 for key in _EPOCH_KEYS}
        loop.stop_message = self._stop_message
        if progress is True or (progress is not False and verbose):
            loop.extend(ProgressBar(self.iter_per_epoch * self.batch_size if book else self.train_size,
                                    lambda lp: f"epoch {lp.epoch + 1}/{self.epochs}", progress is True,
                                    lambda lp: self.batch_size if book else int(min(self.batch_size, self.train_size))))
        loop.extend(_Report(self))
        loop.extend(Divergence("val_acc_list" if self.x_val is not None else "train_acc_list", self.num_classes,
                               getattr(self.optimizer, "lr", None)))
        loop.best = loop.extend(BestState(self._score, self.best_checkpoint, self._write_best))
        self._saver = loop.extend(Checkpoint(self.checkpoint))
        loop.extend(_Print(self))
        make_folders(outputs)
        if resume is not None and (resume != self.checkpoint or os.path.exists(resume)):
            self.load_checkpoint(resume)

    def __repr__(self) -> str:
        return (f"Trainer({type(self.network).__name__}, {self.train_size} train samples, epoch {self.current_epoch}/"
                f"{self.epochs}, batch {self.batch_size}, {type(self.optimizer).__name__}, device={self.device.name!r})")

    # ------------------------------------------------------------------ the step
    def _update(self, x_batch: Array, t_batch: Array) -> Array:
        """The book's train_step: gradient, update; the loss this forward pass computed."""
        grads = self.network.gradient(x_batch, t_batch)
        loss = getattr(self.network, "last_loss", None)
        self.optimizer.update(self.network.params, grads)
        return self.network.loss(x_batch, t_batch) if loss is None else loss

    def train_step(self) -> None:
        """One optimizer step on the next mini-batch; an epoch's last also evaluates, keeps the
        best state, writes the checkpoint and prints the epoch line."""
        self.loop.step()

    def train(self) -> History:
        """Run the remaining steps (all, or those after a resumed checkpoint); return :attr:`history`."""
        if self.loop.finished:
            warnings.warn(f"train: nothing left to train, all {self.epochs} epochs are done (the history is "
                          "unchanged); for more, make a Trainer with more epochs= and resume= a checkpoint",
                          stacklevel=2)
            return self.history
        if self.verbose:
            print(f"training on {self.device.name}{self.device_note}", flush=True)
        hint = lambda path: f"continue with resume={path!r} (or resume=True)"  # noqa: E731
        self.loop.run(lambda loop: self._saver.interrupted(loop, hint).replace(
            f"during epoch {loop.epoch + 1}", f"during epoch {loop.epoch + 1}/{self.epochs}"))
        if self.x_test is not None and (self.verbose or self.x_val is not None):
            self.final_test_acc = self.evaluate(self.x_test, self.t_test)
        if self.verbose and self.x_test is not None:
            print("=============== Final Test Accuracy ===============")
            print(f"test acc:{self.final_test_acc} (all {int(self.x_test.shape[0]):,} test images)")
        return self.history

    def evaluate(self, x: Array, t: Array) -> float:
        """Accuracy on ``(x, t)`` (any array library and device; ``t`` checked as the training
        labels were) as a Python float, ``eval_batch_size`` samples per forward pass."""
        x, t = check_pair("x", x, "t", t, tuple(self.x_train.shape[1:]), self.num_classes, self.device,
                          self.dtype, move_x=False)
        if isinstance(self.network, Net) or (device_of(x) == self.device and x.dtype == self.dtype):
            return self._accuracy(x, t, None)  # xpnet's nets move (and chunk) the batches themselves
        n, correct = int(x.shape[0]), 0.0
        for start in range(0, n, self.eval_batch_size):
            stop = min(start + self.eval_batch_size, n)
            chunk = self.device.asarray(x[start:stop, ...], dtype=self.dtype)
            correct += self._accuracy(chunk, t[start:stop, ...], None) * (stop - start)
        return correct / n

    # ------------------------------------------------------------------ state
    current_epoch = property(lambda self: self.loop.epoch, doc="Finished epochs.")
    current_iter = property(lambda self: self.loop.iteration, doc="Finished steps.")
    train_loss_list = property(lambda self: self.loop.history["train_loss_list"])
    train_acc_list = property(lambda self: self.loop.history["train_acc_list"])
    test_acc_list = property(lambda self: self.loop.history["test_acc_list"])
    val_acc_list = property(lambda self: self.loop.history["val_acc_list"])
    last_checkpoint = property(lambda self: self._saver.last, doc="(path, epoch) last written or resumed from.")

    @property
    def history(self) -> History:
        """Copies of the history: the book's three lists, ``val_acc_list``, and per epoch
        ``epoch_loss`` (mean training loss), ``epoch_time`` (s) and ``samples_per_sec``."""
        return {key: list(values) for key, values in self.loop.history.items()}

    @property
    def best(self) -> dict[str, Any] | None:
        """``{"epoch", "metric", "value"}`` of the best epoch so far (``"val_acc"`` or
        ``"train_loss"``), or ``None`` before the first."""
        record = self.loop.best.record
        return None if record is None else dict(record)

    def restore_best(self) -> dict[str, Any]:
        """Put the best epoch's params and buffers back into the network; return :attr:`best`."""
        return self.loop.best.restore(self.loop)

    def save_checkpoint(self, path: PathLike) -> None:
        """Write the whole training state to ``path`` atomically, at any step (a save in the
        middle of an epoch resumes there)."""
        self._saver.save(self.loop, check_outputs({"checkpoint": path, "best_checkpoint": self.best_checkpoint}
                                                  )["checkpoint"])

    def load_checkpoint(self, path: PathLike) -> None:
        """Continue from a checkpoint of :meth:`save_checkpoint`, validated completely first
        (:class:`~xpnet.checkpoint.CheckpointError` naming the file; nothing changes on error)."""
        self._saver.load(self.loop, path)

    def plot(self, path: PathLike | None = None) -> Any:
        """:func:`xpnet.plot.plot_history` of this run (validation accuracy in place of the test
        accuracy when there is a validation split)."""
        limit, history = self.evaluate_sample_num_per_epoch, self.history
        held = self.x_test if self.x_val is None else self.x_val
        if self.x_val is not None:
            history["test_acc_list"] = history["val_acc_list"]
        label = accuracy_label("test" if self.x_val is None else "validation", limit,
                               None if held is None else int(held.shape[0]))
        return plot_history(history, path, train_label=accuracy_label("train", limit, self.train_size),
                            test_label=label)

    # ------------------------------------------------------------------ services
    def _records(self, key: str) -> bool:
        if key == "test_acc_list":
            return self.x_test is not None and self.x_val is None
        return key != "val_acc_list" or self.x_val is not None

    def _score(self, loop: Loop) -> tuple[str, float]:
        if self.x_val is not None:
            return "val_acc", loop.history["val_acc_list"][-1]
        return "train_loss", loop.history["epoch_loss"][-1]

    def _write_best(self, path: str) -> None:
        """The best parameters in :meth:`Net.save_params`'s format (``net.load_params(path)``)."""
        if isinstance(self.network, Net):
            self.network.save_params(path)
        else:
            state = _checkpoint.copy_state(self.loop)
            save_arrays(path, {key.partition("/")[2]: value for key, value in state.items()})

    def _stop_message(self, value: float, loop: Loop) -> str:
        lr = getattr(self.optimizer, "lr", None)
        hint = f" (it is {lr:g}; try e.g. optimizer_param={{'lr': {lr / 10:g}}})" if lr else ""
        message = f" The learning rate is probably too high: lower it{hint}."
        if self.last_checkpoint is not None:
            path, epoch = self.last_checkpoint
            message += f" The last checkpoint, {path!r} (epoch {epoch}), is intact: resume=... continues from it."
        return message

    def _accuracy(self, x: Array, t: Array, limit: int | None) -> float:
        """``network.accuracy`` over the first ``limit`` samples (all: ``None``), one call."""
        if limit is not None and limit < int(x.shape[0]):
            x, t = x[:limit, ...], t[:limit, ...]
        with self.device.activate():
            if isinstance(self.network, Net):
                return float(self.network.accuracy(x, t, batch_size=self.eval_batch_size))
            return float(self.network.accuracy(x, t))


class _Report:
    """Evaluation at each epoch's end: accuracies, mean loss, time and speed into the history."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.start = trainer, time.perf_counter()

    def on_epoch_start(self, loop: Loop) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, loop: Loop) -> None:
        trainer, history = self.trainer, loop.history
        loop.device.synchronize()
        seconds = time.perf_counter() - self.start
        limit = trainer.evaluate_sample_num_per_epoch
        history["train_acc_list"].append(trainer._accuracy(trainer.x_train, trainer.t_train, limit))
        for key, x, t in (("val_acc_list", trainer.x_val, trainer.t_val), ("test_acc_list", trainer.x_test,
                                                                           trainer.t_test)):
            if trainer._records(key):
                history[key].append(trainer._accuracy(x, t, limit))
        losses = history["train_loss_list"][-loop.epoch_steps:]
        samples = trainer.train_size if trainer.sampling == "shuffle" else loop.epoch_steps * trainer.batch_size
        history["epoch_loss"].append(sum(losses) / len(losses))
        history["epoch_time"].append(time.perf_counter() - self.start)
        history["samples_per_sec"].append(samples / max(seconds, 1e-12))
        self.start = time.perf_counter()


class _Print:
    """The epoch line (when verbose) and the user's ``progress(history)`` hook."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_epoch_end(self, loop: Loop) -> None:
        trainer, limit = self.trainer, self.trainer.evaluate_sample_num_per_epoch
        if trainer.verbose:
            measured = limit if limit is not None and limit < trainer.train_size else None
            print(format_epoch_line(loop.history, trainer.epochs, measured=measured), flush=True)
        if callable(trainer.progress):
            trainer.progress(trainer.history)
