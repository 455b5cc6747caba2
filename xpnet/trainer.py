"""The book's ``common/trainer.py``: train a network on any device, watch it, keep it, resume it.

::

    trainer = Trainer(net, x_train, t_train, x_test, t_test, epochs=10,
                      optimizer="Adam", optimizer_param={"lr": 0.001},
                      device="auto", seed=0, checkpoint="run.npz", best_checkpoint="best.npz")
    history = trainer.train()
    trainer.plot("curves.png")
    trainer.evaluate(x_host, t_host)        # accuracy of host (or any device's) arrays

What differs from the book:

* ``device`` (anything :func:`xpnet.backend.get_device` accepts): the network
  (every array reachable from it, aliases kept), the optimizer state and the data
  (cast to the network's dtype) are moved there once, in the constructor; batches
  are drawn there.  The network stays there (``to_device(net, "cpu")`` brings it back).
* An epoch is one shuffled pass over the training set without replacement, the
  last partial batch included (``sampling="replacement"`` draws as the book does).
  Accuracy is measured at the END of each epoch (the book measures at its start).
  ``x_test``/``t_test`` may be ``None`` (no test evaluation).
* ``seed`` drives the shuffling only; the network's own seed drives its weight
  init and Dropout.  The same seeds on the same backend give the same history, bit for bit.
* The loss logged for a step is the one ``network.gradient`` computed (networks that
  keep it as ``last_loss``, as xpnet's do), so a step costs one forward pass.
* Losses stay on the device and reach the host in bulk (every ``_FLUSH_EVERY`` steps,
  every ``_FLUSH_SECONDS`` while a progress bar is shown, and at each epoch end), so a
  GPU run does not wait on the device at every step.  A NaN/inf loss stops training
  with :class:`FloatingPointError` naming the epoch and iteration.
* Everything is checked in the constructor, before any step: arguments, output paths
  (writable, not under a file), NaN/inf in the data (naming the array and row), labels
  (range, sign, integer type: once, so steps need no check), and batch sizes that
  would give BatchNorm a one-sample batch (refused: its variance would be 0).
* The best epoch's state (highest test accuracy; lowest epoch loss without test data)
  is kept next to the last one (:attr:`best`, :meth:`restore_best`, ``best_checkpoint``);
  a :class:`DivergenceWarning` names the learning rate when an epoch's loss rises far
  above the best so far or the accuracy falls back to chance.
* ``checkpoint`` is written atomically at every epoch end (see :mod:`xpnet.checkpoint`);
  ``resume`` validates a checkpoint completely before continuing from it.  Ctrl-C in
  :meth:`train` makes sure the last finished epoch is in ``checkpoint`` and re-raises
  ``KeyboardInterrupt`` with a one-line message on how to resume.
* The Trainer does not tune the process's malloc; call
  :func:`xpnet.backend.keep_freed_host_memory` yourself for faster CPU steps.
"""

from __future__ import annotations

import inspect
import math
import os
import time
import types
import warnings
from typing import Any, Callable, Mapping, Union

from tqdm.auto import tqdm

from . import checkpoint as _checkpoint
from ._trainer_data import check_batches, check_data, check_pair
from .backend import DeviceLike, Generator, device_of, get_device, to_device, to_numpy
from .checks import one_of, positive_int, writable_file
from .optimizer import Optimizer, get_optimizer
from .plot import accuracy_label, plot_history

Array = Any
PathLike = Union[str, "os.PathLike[str]"]
History = dict[str, list[float]]
ProgressHook = Callable[[History], None]

__all__ = ["Trainer", "DivergenceWarning", "format_epoch_line"]

_FLUSH_EVERY = 50
"""Most steps between bulk loss transfers (progress bar loss, NaN check) within an epoch."""
_FLUSH_SECONDS = 0.5
"""While a bar is shown, losses are also transferred once this many seconds have passed."""
_DEFAULT_OPTIMIZER_PARAM: Mapping[str, float] = types.MappingProxyType({"lr": 0.01})
_SAMPLINGS = ("shuffle", "replacement")
_HISTORY = {"train_loss_list": "train_loss_list", "train_acc_list": "train_acc_list",
            "test_acc_list": "test_acc_list", "epoch_loss": "epoch_loss_list",
            "epoch_time": "epoch_time_list", "samples_per_sec": "samples_per_sec_list"}


class DivergenceWarning(RuntimeWarning):
    """Training looks like it diverges; ``epoch``, ``reason`` and ``lr`` say why and where."""

    def __init__(self, message: str, epoch: int, reason: str, lr: float | None) -> None:
        super().__init__(message)
        self.epoch, self.reason, self.lr = epoch, reason, lr


def format_epoch_line(history: Mapping[str, list[float]], epochs: int, *, measured: int | None = None) -> str:
    """The one epoch line of the Trainer, the command line and the examples, for the last
    epoch of ``history``: ``epoch 2/5  loss 0.1234  train acc 0.9810  test acc 0.9750
    1234 samples/s  2.1 s``, plus ``  (accuracy on the first 1,000 images)`` when only
    ``measured`` images were evaluated."""
    epoch = len(history["train_acc_list"])
    line = f"epoch {epoch}/{epochs}  loss {history['epoch_loss'][-1]:.4f}  train acc {history['train_acc_list'][-1]:.4f}"
    if history["test_acc_list"]:
        line += f"  test acc {history['test_acc_list'][-1]:.4f}"
    line += f"  {history['samples_per_sec'][-1]:.0f} samples/s  {history['epoch_time'][-1]:.1f} s"
    if measured is not None:
        line += f"  (accuracy on the first {measured:,} images)"
    return line


class Trainer:
    """Trains ``network`` (the book's interface: ``params``, ``gradient``, ``loss``,
    ``predict``, ``accuracy``) on ``(x_train, t_train)``, evaluating on both sets.

    Positional arguments are the book's.  ``optimizer`` is a name of
    :data:`xpnet.optimizer.OPTIMIZERS` (built with ``optimizer_param``) or an instance.
    Keyword-only extras: ``device`` (where to train), ``seed`` (of the shuffling),
    ``progress`` (``None``: a tqdm bar per epoch when ``verbose``; ``True``/``False``:
    bar on/off; a callable: ``progress(history)`` after every epoch, bar as for
    ``None``), ``checkpoint`` (path written at every epoch end), ``best_checkpoint``
    (path written only when an epoch beats every earlier one, so it is never replaced
    by a worse state), ``resume`` (a checkpoint path, or ``True``: ``checkpoint`` if
    that file exists), ``sampling`` (``"shuffle"`` or ``"replacement"``),
    ``eval_batch_size`` (samples per forward pass when evaluating).
    """

    def __init__(self, network: Any, x_train: Array, t_train: Array, x_test: Array | None, t_test: Array | None,
                 epochs: int = 20, mini_batch_size: int = 100,
                 optimizer: str | Optimizer = "SGD",
                 optimizer_param: Mapping[str, float] = _DEFAULT_OPTIMIZER_PARAM,
                 evaluate_sample_num_per_epoch: int | None = None, verbose: bool = True, *,
                 device: DeviceLike = "cpu", seed: int | None = None,
                 progress: bool | ProgressHook | None = None, checkpoint: PathLike | None = None,
                 best_checkpoint: PathLike | None = None, resume: PathLike | bool | None = None,
                 sampling: str = "shuffle", eval_batch_size: int = 1000) -> None:
        self.device = get_device(device)
        self.epochs = positive_int("epochs", epochs)
        self.batch_size = positive_int("mini_batch_size", mini_batch_size)
        self.eval_batch_size = positive_int("eval_batch_size", eval_batch_size)
        if evaluate_sample_num_per_epoch is not None:
            positive_int("evaluate_sample_num_per_epoch", evaluate_sample_num_per_epoch)
        self.sampling = one_of("sampling", sampling, _SAMPLINGS)
        if not (progress is None or isinstance(progress, bool) or callable(progress)):
            raise TypeError(f"progress: expected None, a bool or a callable, got {type(progress).__name__}")
        self.checkpoint = None if checkpoint is None else writable_file("checkpoint", checkpoint)
        self.best_checkpoint = None if best_checkpoint is None else writable_file("best_checkpoint", best_checkpoint)
        if self.checkpoint is not None and self.checkpoint == self.best_checkpoint:
            raise ValueError("best_checkpoint: must differ from checkpoint (the last state would replace the best)")
        resume = _check_resume(resume, self.checkpoint)
        self.optimizer = _make_optimizer(optimizer, optimizer_param)
        if self.checkpoint is not None or self.best_checkpoint is not None or resume is not None:
            _checkpoint.check_checkpointable(self.optimizer)
        _check_network(network)
        if (x_test is None) != (t_test is None):
            raise ValueError("x_test, t_test: give both or neither (None: no test evaluation)")

        self.network = to_device(network, self.device)
        self.optimizer = to_device(self.optimizer, self.device)
        self.dtype = next(iter(network.params.values())).dtype
        self.x_train, self.t_train, self.x_test, self.t_test, self.num_classes = check_data(
            self.network, self.device, self.dtype, x_train, t_train, x_test, t_test)
        self.train_size = int(self.x_train.shape[0])
        check_batches(self.network, self.train_size, self.batch_size, self.sampling)

        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        self.verbose = verbose
        self.progress = progress
        self.rng = Generator(seed)
        self.iter_per_epoch = math.ceil(self.train_size / self.batch_size)
        self.max_iter = self.epochs * self.iter_per_epoch
        self.last_checkpoint: tuple[str, int] | None = None
        """``(path, epoch)`` of the last checkpoint written or resumed from."""
        self.final_test_acc: float | None = None
        self._accuracy_takes_batch_size = "batch_size" in _parameters(network.accuracy)
        self._restore(0, 0, {key: [] for key in _HISTORY}, None, None)
        self._bar: Any = None
        self._bar_loss: float | None = None
        self._last_flush = 0.0
        if resume is not None and (resume != self.checkpoint or os.path.exists(resume)):
            self.load_checkpoint(resume)

    # ------------------------------------------------------------------ training

    def train_step(self) -> None:
        """One optimizer step on the next mini-batch (the book's ``train_step``).

        The step that completes an epoch also evaluates, records the history, keeps the
        best state, writes the checkpoints and prints the epoch line.
        """
        if self._epoch_iter == 0:
            self._start_epoch()
        xp = self.device.xp
        if self.sampling == "shuffle":
            start = self._epoch_iter * self.batch_size
            idx = self._order[start:min(start + self.batch_size, self.train_size)]
        else:
            idx = self.rng.integers(self.train_size, self.batch_size, device=self.device)
        with self.device.activate():
            x_batch = xp.take(self.x_train, idx, axis=0)
            t_batch = xp.take(self.t_train, idx, axis=0)
            grads = self.network.gradient(x_batch, t_batch)
            loss = getattr(self.network, "last_loss", None)
            self.optimizer.update(self.network.params, grads)
            if loss is None:
                loss = self.network.loss(x_batch, t_batch)
            self._pending_losses.append(self.device.asarray(loss))
        self.current_iter += 1
        self._epoch_iter += 1
        self._epoch_samples += int(x_batch.shape[0])
        if self._bar is not None:
            self._bar.update(int(x_batch.shape[0]))
        if self._epoch_iter == self.iter_per_epoch:
            self._end_epoch()
        elif len(self._pending_losses) >= _FLUSH_EVERY or (self._bar is not None and (
                self._bar_loss is None or time.perf_counter() - self._last_flush >= _FLUSH_SECONDS)):
            self._flush_losses()

    def train(self) -> History:
        """Run the remaining epochs (all, or those after a resumed checkpoint); return :attr:`history`.

        On Ctrl-C the last finished epoch is in ``checkpoint`` (written again if the
        interruption hit its write) and ``KeyboardInterrupt`` is re-raised with a
        one-line message saying what was saved and how to resume.
        """
        try:
            while self.current_epoch < self.epochs:
                self.train_step()
        except KeyboardInterrupt:
            self._close_bar()
            raise KeyboardInterrupt(self._interrupted()) from None
        finally:
            self._close_bar()
        if self.verbose and self.x_test is not None:
            self.final_test_acc = self.evaluate(self.x_test, self.t_test)
            print("=============== Final Test Accuracy ===============")
            print(f"test acc:{self.final_test_acc} (all {int(self.x_test.shape[0]):,} test images)")
        return self.history

    def evaluate(self, x: Array, t: Array) -> float:
        """Accuracy of the network on ``(x, t)`` as a Python float, in inference mode.

        ``x``, ``t`` may come from any array library and device (NumPy arrays after GPU
        training, say): ``t`` is checked as the training labels were, and ``x`` goes to
        the network's device ``eval_batch_size`` samples at a time.
        """
        x, t = check_pair("x", x, "t", t, tuple(self.x_train.shape[1:]), self.num_classes, self.device,
                          self.dtype, move_x=False)
        if device_of(x) == self.device and x.dtype == self.dtype:
            return self._accuracy(x, t, None)
        n, correct = int(x.shape[0]), 0.0
        for start in range(0, n, self.eval_batch_size):
            stop = min(start + self.eval_batch_size, n)
            chunk = self.device.asarray(x[start:stop, ...], dtype=self.dtype)
            correct += self._accuracy(chunk, t[start:stop, ...], None) * (stop - start)
        return correct / n

    @property
    def history(self) -> History:
        """Copies of the history: the book's three lists, plus per-epoch ``epoch_loss`` (mean
        training loss), ``epoch_time`` (s, training + evaluation) and ``samples_per_sec``."""
        return {key: list(getattr(self, attr)) for key, attr in _HISTORY.items()}

    @property
    def best(self) -> dict[str, Any] | None:
        """``{"epoch", "metric", "value"}`` of the best epoch so far (``metric``: ``"test_acc"``,
        higher is better, or ``"train_loss"`` without test data), or ``None`` before the first."""
        return None if self._best is None else dict(self._best)

    def restore_best(self) -> dict[str, Any]:
        """Put the best epoch's params and buffers back into the network; return :attr:`best`."""
        if self._best_state is None:
            raise RuntimeError("restore_best: no epoch has finished yet")
        with self.device.activate():
            for key, value in self.network.params.items():
                value[...] = self._best_state[f"params/{key}"]
            for name, (owner, attr) in _checkpoint.buffers(self.network).items():
                setattr(owner, attr, self.device.xp.asarray(self._best_state[f"buffers/{name}"], copy=True))
        return self.best

    def save_checkpoint(self, path: PathLike) -> None:
        """Write the whole training state to ``path`` atomically (see :mod:`xpnet.checkpoint`)."""
        _checkpoint.save(self, path)
        self.last_checkpoint = (os.fspath(path), self.current_epoch)

    def load_checkpoint(self, path: PathLike) -> None:
        """Continue from a checkpoint of :meth:`save_checkpoint`, validated completely first
        (:class:`~xpnet.checkpoint.CheckpointError` naming the file; nothing changes on error)."""
        _checkpoint.load(self, path)
        self.last_checkpoint = (os.fspath(path), self.current_epoch)

    def plot(self, path: PathLike | None = None) -> Any:
        """:func:`xpnet.plot.plot_history` of this run, the legends saying which images were measured."""
        limit = self.evaluate_sample_num_per_epoch
        test_total = None if self.x_test is None else int(self.x_test.shape[0])
        return plot_history(self.history, path, train_label=accuracy_label("train", limit, self.train_size),
                            test_label=accuracy_label("test", limit, test_total))

    # ------------------------------------------------------------------ epochs

    def _restore(self, epoch: int, iteration: int, history: History, best: dict | None,
                 best_state: dict[str, Array] | None) -> None:
        """Set counters, history and best state (a fresh start, or from a checkpoint)."""
        for key, attr in _HISTORY.items():
            setattr(self, attr, list(history[key]))
        self.current_epoch, self.current_iter = int(epoch), int(iteration)
        self._best, self._best_state = best, best_state
        self._epoch_iter, self._epoch_samples, self._epoch_start = 0, 0, 0.0
        self._order: Array | None = None
        self._pending_losses: list[Array] = []

    def _start_epoch(self) -> None:
        if self.sampling == "shuffle":
            self._order = self.rng.permutation(self.train_size, device=self.device)
        self._epoch_samples = 0
        if self.progress is True or (self.progress is not False and self.verbose):
            total = self.train_size if self.sampling == "shuffle" else self.iter_per_epoch * self.batch_size
            self._bar = tqdm(total=total, unit="sample", unit_scale=True, leave=False,
                             desc=f"epoch {self.current_epoch + 1}/{self.epochs}")
            if self._bar_loss is not None:
                self._bar.set_postfix(loss=f"{self._bar_loss:.4f}", refresh=False)
        self._epoch_start = self._last_flush = time.perf_counter()

    def _end_epoch(self) -> None:
        self._flush_losses()
        self.device.synchronize()
        train_seconds = time.perf_counter() - self._epoch_start
        self._close_bar()
        limit = self.evaluate_sample_num_per_epoch
        train_acc = self._accuracy(self.x_train, self.t_train, limit)
        test_acc = None if self.x_test is None else self._accuracy(self.x_test, self.t_test, limit)
        losses = self.train_loss_list[-self._epoch_iter:]
        self.current_epoch += 1
        self._epoch_iter = 0
        self._order = None
        self.train_acc_list.append(train_acc)
        if test_acc is not None:
            self.test_acc_list.append(test_acc)
        self.epoch_loss_list.append(sum(losses) / len(losses))
        self.epoch_time_list.append(time.perf_counter() - self._epoch_start)
        self.samples_per_sec_list.append(self._epoch_samples / max(train_seconds, 1e-12))
        self._watch_divergence(train_acc if test_acc is None else test_acc)
        self._keep_best(test_acc)
        if self.checkpoint is not None:
            self.save_checkpoint(self.checkpoint)
        if self.verbose:
            measured = limit if limit is not None and limit < self.train_size else None
            print(format_epoch_line(self.history, self.epochs, measured=measured))
        if callable(self.progress):
            self.progress(self.history)

    def _keep_best(self, test_acc: float | None) -> None:
        metric, value = ("train_loss", self.epoch_loss_list[-1]) if test_acc is None else ("test_acc", test_acc)
        best = self._best
        if best is not None and (value <= best["value"] if metric == "test_acc" else value >= best["value"]):
            return
        self._best = {"epoch": self.current_epoch, "metric": metric, "value": value}
        self._best_state = _checkpoint.copy_state(self.network)
        if self.best_checkpoint is not None:
            _checkpoint.save(self, self.best_checkpoint)

    def _watch_divergence(self, accuracy: float) -> None:
        """Warn when this epoch's loss is far above the best so far, or accuracy fell back to chance."""
        loss, earlier = self.epoch_loss_list[-1], self.epoch_loss_list[:-1]
        reference = min(earlier + self.train_loss_list[:1])
        chance = 1.0 / self.num_classes
        floor = chance + 0.1 * (1.0 - chance)
        accuracies = (self.test_acc_list if self.x_test is not None else self.train_acc_list)[:-1]
        if math.isfinite(reference) and loss > 3.0 * reference + 0.5:
            reason = f"the train loss {loss:.4g} is far above the best so far ({reference:.4g})"
        elif accuracy <= floor and accuracies and max(accuracies) >= chance + 0.3 * (1.0 - chance):
            reason = f"the accuracy fell back to chance ({accuracy:.4f}; it was {max(accuracies):.4f})"
        else:
            return
        lr = getattr(self.optimizer, "lr", None)
        advice = "the learning rate is probably too high" if lr is None else \
            f"the learning rate (lr={lr:g}) is probably too high: try optimizer_param={{'lr': {lr / 10:g}}}"
        kept = "" if self._best is None else f"; the best state (epoch {self._best['epoch']}) is kept: restore_best()" \
            + (f" or {self.best_checkpoint!r}" if self.best_checkpoint else "")
        warnings.warn(DivergenceWarning(f"epoch {self.current_epoch}: {reason}; training is probably diverging: "
                                        f"{advice}{kept}", self.current_epoch, reason, lr), stacklevel=4)

    def _flush_losses(self) -> None:
        """Convert the losses still on the device to floats (one transfer); stop on NaN/inf."""
        if not self._pending_losses:
            return
        with self.device.activate():
            values = to_numpy(self.device.xp.stack(self._pending_losses)).tolist()
        self._pending_losses.clear()
        self._last_flush = time.perf_counter()
        first_iter = self.current_iter - len(values) + 1
        for k, value in enumerate(values):
            if not math.isfinite(value):
                self.train_loss_list.extend(values[:k])
                self._close_bar()
                raise FloatingPointError(self._divergence_message(value, first_iter + k))
        self.train_loss_list.extend(values)
        self._bar_loss = values[-1]
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{values[-1]:.4f}")

    def _divergence_message(self, value: float, iteration: int) -> str:
        epoch_iter = iteration - self.current_epoch * self.iter_per_epoch
        lr = getattr(self.optimizer, "lr", None)
        hint = f" (it is {lr:g}; try e.g. optimizer_param={{'lr': {lr / 10:g}}})" if lr else ""
        message = (f"train loss became {value} at epoch {self.current_epoch + 1}, iteration {iteration} "
                   f"(step {epoch_iter} of {self.iter_per_epoch} in that epoch); training stopped. "
                   f"The learning rate is probably too high: lower it{hint}.")
        if self.last_checkpoint is not None:
            path, epoch = self.last_checkpoint
            message += f" The last checkpoint, {path!r} (epoch {epoch}), is intact: resume=... continues from it."
        return message

    def _interrupted(self) -> str:
        """Make sure the last finished epoch is saved; the one-line message for Ctrl-C."""
        where = f"interrupted during epoch {self.current_epoch + 1}/{self.epochs}"
        if self.checkpoint is None:
            return f"{where}; nothing saved (no checkpoint= was given)"
        saved = self.last_checkpoint is not None and self.last_checkpoint == (self.checkpoint, self.current_epoch)
        if not saved and self._epoch_iter == 0 and self.current_epoch > 0:
            self.save_checkpoint(self.checkpoint)  # the interruption hit the epoch-end write
        if self.last_checkpoint is None:
            return f"{where}; no epoch had finished, nothing saved"
        path, epoch = self.last_checkpoint
        return f"{where}; epoch {epoch} is saved in {path!r}: continue with resume={path!r} (or resume=True)"

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _accuracy(self, x: Array, t: Array, limit: int | None) -> float:
        """``network.accuracy`` over the first ``limit`` samples (all: ``None``), one call."""
        if limit is not None and limit < int(x.shape[0]):
            x, t = x[:limit, ...], t[:limit, ...]
        with self.device.activate():
            if self._accuracy_takes_batch_size:
                return float(self.network.accuracy(x, t, batch_size=self.eval_batch_size))
            return float(self.network.accuracy(x, t))


def _parameters(function: Any) -> Mapping[str, Any]:
    try:
        return inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}


def _check_resume(resume: Any, checkpoint: str | None) -> str | None:
    """The checkpoint path to resume from (``None``: start fresh); ``resume`` must be a path or a bool."""
    if resume is None or resume is False:
        return None
    if resume is True:
        if checkpoint is None:
            raise ValueError("resume=True continues from the checkpoint file, but checkpoint is None")
        return checkpoint
    if isinstance(resume, bool) or not isinstance(resume, (str, os.PathLike)):
        raise TypeError(f"resume: expected a checkpoint path (str or os.PathLike) or a bool, "
                        f"got {type(resume).__name__} {resume!r}")
    path = os.fspath(resume)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"resume: no checkpoint file {path!r}")
    return path


def _make_optimizer(optimizer: str | Any, optimizer_param: Mapping[str, float]) -> Any:
    if isinstance(optimizer, str):
        if not isinstance(optimizer_param, Mapping):
            raise TypeError(f"optimizer_param: expected a dict such as {{'lr': 0.01}}, "
                            f"got {type(optimizer_param).__name__}")
        return get_optimizer(optimizer, **dict(optimizer_param))
    if not callable(getattr(optimizer, "update", None)):
        raise TypeError(f"optimizer: expected a name or an object with update(params, grads), "
                        f"got {type(optimizer).__name__}")
    if optimizer_param is not _DEFAULT_OPTIMIZER_PARAM:
        raise ValueError("optimizer_param: only used with an optimizer name; "
                         "this optimizer is already built, configure it directly")
    return optimizer


def _check_network(network: Any) -> None:
    missing = [name for name in ("gradient", "loss", "predict", "accuracy")
               if not callable(getattr(network, name, None))]
    if missing:
        raise TypeError(f"network: expected the book's interface, missing method(s) {', '.join(missing)}")
    params = getattr(network, "params", None)
    if not isinstance(params, dict) or not params:
        raise TypeError("network: expected a non-empty dict network.params of parameter arrays")

