"""The book's ``common/trainer.py``: train a network on any device, watch it, keep it, resume it.

::

    trainer = Trainer(net, x_train, t_train, x_test, t_test, epochs=10,
                      optimizer="Adam", optimizer_param={"lr": 0.001},
                      device="auto", seed=0, checkpoint="run.npz", best_checkpoint="best.npz")
    history = trainer.train()
    trainer.plot("curves.png")
    trainer.evaluate(x_host, t_host)        # accuracy of host (or any device's) arrays

What differs from the book:

* ``device``: the network (every array reachable from it, aliases kept), the optimizer
  state and the data (cast to the network's dtype) move there once, in the constructor;
  batches are drawn there, and the network stays there (``to_device(net, "cpu")``).
* An epoch is one shuffled pass without replacement, the last partial batch included
  (``sampling="replacement"``: the book's draws); accuracy is measured at its END.
  ``x_test``/``t_test`` may be ``None``.  The same seeds give the same history, bit for bit.
* A step logs the loss ``network.gradient`` computed (``last_loss``): one forward pass.
  Losses reach the host in bulk (every ``_FLUSH_EVERY`` steps, every ``_FLUSH_SECONDS``
  while a bar is shown, at each epoch end): no per-step wait on a GPU.  A NaN/inf loss
  stops training with a ``FloatingPointError`` naming the epoch, iteration and lr.
* The constructor checks everything before any step: arguments, output paths, NaN/inf
  in the data (array and row), labels (once, so steps need none), and batch sizes that
  would hand BatchNorm a one-sample batch (refused).
* The best epoch's state (test accuracy; epoch loss without test data) is kept next to
  the last (:attr:`best`, :meth:`restore_best`, ``best_checkpoint``); a
  :class:`DivergenceWarning` names the lr when the loss rises far above the best or the
  accuracy falls back to chance.
* ``checkpoint`` is written atomically at each epoch end; ``resume`` validates a file
  completely first (:mod:`xpnet.checkpoint`).  On Ctrl-C :meth:`train` makes sure the
  last finished epoch is saved and re-raises ``KeyboardInterrupt`` saying how to resume.
* No malloc tuning behind your back: :func:`xpnet.hostmem.keep_freed_host_memory` is yours to call.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from typing import Any, Callable, Mapping, Union

from tqdm.auto import tqdm

from . import checkpoint as _checkpoint
from ._interrupt import at_step_boundary
from ._divergence import DivergenceWarning, divergence_reason, divergence_warning, nonfinite_message
from ._trainer_checks import (DEFAULT_OPTIMIZER_PARAM as _DEFAULT_OPTIMIZER_PARAM, check_batches, check_data,
                              check_network, check_pair, check_progress, check_resume, make_optimizer,
                              parameters_of as _parameters)
from .backend import DeviceLike, Generator, device_of, get_device, to_device, to_numpy
from .checks import one_of, positive_int, writable_file
from .nets import Net
from .optimizer import Optimizer
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
_SAMPLINGS = ("shuffle", "replacement")
_HISTORY = {"train_loss_list": "train_loss_list", "train_acc_list": "train_acc_list",
            "test_acc_list": "test_acc_list", "epoch_loss": "epoch_loss_list",
            "epoch_time": "epoch_time_list", "samples_per_sec": "samples_per_sec_list"}


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
        check_progress(progress)
        self.checkpoint = None if checkpoint is None else writable_file("checkpoint", checkpoint)
        self.best_checkpoint = None if best_checkpoint is None else writable_file("best_checkpoint", best_checkpoint)
        if self.checkpoint is not None and self.checkpoint == self.best_checkpoint:
            raise ValueError("best_checkpoint: must differ from checkpoint (the last state would replace the best)")
        resume = check_resume(resume, self.checkpoint)
        self.optimizer = make_optimizer(optimizer, optimizer_param)
        if self.checkpoint is not None or self.best_checkpoint is not None or resume is not None:
            _checkpoint.check_checkpointable(self.optimizer)
        check_network(network)

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
        self.last_checkpoint: tuple[str, int] | None = None  # (path, epoch) last written or resumed from
        # labels were checked once above, so nets that offer it skip the per-step check (no host read)
        self.final_test_acc: float | None = None
        self._accuracy_takes_batch_size = "batch_size" in _parameters(network.accuracy)
        self._unchecked, self._unchecked_acc = ({"check_labels": False} if "check_labels" in _parameters(f) else {}
                                                for f in (network.gradient, network.accuracy))
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
            grads = self.network.gradient(x_batch, t_batch, **self._unchecked)
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
            with at_step_boundary() as stop:
                while self.current_epoch < self.epochs and not stop.requested:
                    self.train_step()
                if stop.requested:
                    raise KeyboardInterrupt
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
        training, say): ``t`` is checked as the training labels were, ``x`` goes to the
        network's device ``eval_batch_size`` samples at a time."""
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
                if f"buffers/{name}" in self._best_state:
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
        accuracies = self.test_acc_list if self.x_test is not None else self.train_acc_list
        reason = divergence_reason(self.epoch_loss_list, self.train_loss_list[:1], accuracy, accuracies[:-1],
                                   self.num_classes)
        if reason is not None:
            best = None if self._best is None else (self._best["epoch"], self.best_checkpoint)
            warnings.warn(divergence_warning(self.current_epoch, reason, getattr(self.optimizer, "lr", None), best),
                          stacklevel=4)

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
                raise FloatingPointError(nonfinite_message(value, first_iter + k, self.current_epoch, self.iter_per_epoch,
                                                            getattr(self.optimizer, "lr", None),
                                                            self.last_checkpoint))
        self.train_loss_list.extend(values)
        self._bar_loss = values[-1]
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{values[-1]:.4f}")

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
                return float(self.network.accuracy(x, t, batch_size=self.eval_batch_size, **self._unchecked_acc))
            return float(self.network.accuracy(x, t))
