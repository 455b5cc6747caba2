"""The book's ``common/trainer.py``, a front-end of the one loop (:mod:`xpnet.loop`)::

    trainer = Trainer(net, x_train, t_train, x_test, t_test, epochs=10, optimizer="Adam", device="auto",
                      validation_split=0.1, checkpoint="run/ck.npz", best_checkpoint="run/best.npz")
    history = trainer.train()
    net.load_params("run/best.npz")          # the best epoch's parameters

Beyond the book: ``device``; checks before the first step; a NaN/inf loss stops; ``checkpoint``/``resume``;
the best epoch (by validation accuracy with ``validation_split``, else by training loss; never by the test
set) is kept; Ctrl-C says how to resume.  ``sampling="replacement"`` is the book's (accuracy after each
epoch's first step); ``"shuffle"``: an epoch is one shuffled pass, measured at its end.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Union

from array_api_compat import is_array_api_obj

from . import checkpoint as _checkpoint
from ._trainer_checks import (DEFAULT_OPTIMIZER_PARAM as _DEFAULT_OPTIMIZER_PARAM, check_batches, check_network,
                              check_values, make_folders, make_optimizer)
from .backend import DeviceLike, Generator, cuda_available, get_device, on_own_device, to_device
from .checks import one_of, output_files, positive_int, real
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
    """The epoch line of the Trainer, the CLI and the examples: ``epoch 2/5  loss 0.1234  train acc
    0.9810  val acc 0.9750  1234 samples/s  2.1 s`` (``measured``: accuracy on the first N images)."""
    line = f"epoch {len(history['train_acc_list'])}/{epochs}  loss {history['epoch_loss'][-1]:.4f}  train acc " \
           f"{history['train_acc_list'][-1]:.4f}" + "".join(f"  {name} acc {history[key][-1]:.4f}" for key, name in
                                                          (("val_acc_list", "val"), ("test_acc_list", "test")) if history.get(key))
    line += f"  {history['samples_per_sec'][-1]:.0f} samples/s  {history['epoch_time'][-1]:.1f} s"
    return line + (f"  (accuracy on the first {measured:,} images)" if measured is not None else "")


class Trainer:
    """Trains the book's ``network`` on ``(x_train, t_train)`` with the book's positional arguments.  Keyword-only:
    ``device``; ``seed`` (``None``: the book's draws); ``sampling``; ``validation_split`` (the last rows' fraction,
    held out to choose the best epoch); ``progress`` (``None``: a bar where one suits; a bool; or
    ``progress(history)``); ``checkpoint``, ``best_checkpoint``, ``resume`` (a path, or ``True``); ``eval_batch_size``."""

    def __init__(self, network: Any, x_train: Array, t_train: Array, x_test: Array | None, t_test: Array | None,
                 epochs: int = 20, mini_batch_size: int = 100, optimizer: Any = "SGD",
                 optimizer_param: Mapping[str, float] = _DEFAULT_OPTIMIZER_PARAM,
                 evaluate_sample_num_per_epoch: int | None = None, verbose: bool = True, *,
                 device: DeviceLike = "cpu", seed: int | None = None, sampling: str = "replacement",
                 validation_split: float = 0.0, progress: bool | Callable[[History], None] | None = None,
                 checkpoint: PathLike | None = None, best_checkpoint: PathLike | None = None,
                 resume: PathLike | bool | None = None, eval_batch_size: int = 1000) -> None:
        self.device = get_device(device)
        self.device_note = f" (auto: {'the GPU did not answer' if cuda_available() else 'no CuPy with a GPU'})" \
            if isinstance(device, str) and device == "auto" and self.device.name == "cpu" else ""
        self.epochs, self.batch_size, self.eval_batch_size = (positive_int(name, value) for name, value in (
            ("epochs", epochs), ("mini_batch_size", mini_batch_size), ("eval_batch_size", eval_batch_size)))
        self.evaluate_sample_num_per_epoch = None if evaluate_sample_num_per_epoch is None else \
            positive_int("evaluate_sample_num_per_epoch", evaluate_sample_num_per_epoch)
        self.sampling = one_of("sampling", sampling, ("replacement", "shuffle"))
        split = real("validation_split", validation_split, low=0.0, high=1.0, high_open=True)
        if not (progress is None or isinstance(progress, bool) or callable(progress)):
            raise TypeError(f"progress: expected None, a bool or a callable, got {type(progress).__name__}")
        self.optimizer = make_optimizer(optimizer, optimizer_param)
        self._saver = Checkpoint(self.optimizer, resume, checkpoint=checkpoint, best_checkpoint=best_checkpoint)
        self.checkpoint, self.best_checkpoint = self._saver.path, self._saver.outputs["best_checkpoint"]
        check_network(network, ("gradient", "loss", "predict", "accuracy"), dict)
        self.network, self.optimizer = to_device(network, self.device), to_device(self.optimizer, self.device)
        self.dtype = next(iter(network.params.values())).dtype
        self._check_data(x_train, t_train, x_test, t_test, split)
        self.train_size, buffers = int(self.x_train.shape[0]), _checkpoint.buffers(network)
        check_batches(bool(buffers), self.train_size, self.batch_size, self.sampling)
        self.verbose, self.progress, self.rng, self.final_test_acc = verbose, progress, Generator(seed), None
        book = self.sampling == "replacement"
        self.iter_per_epoch = max(self.train_size / self.batch_size, 1) if book else \
            math.ceil(self.train_size / self.batch_size)
        self.max_iter = int(self.epochs * self.iter_per_epoch)
        sampler = (Replacement if book else Shuffle)(self.train_size, self.batch_size, self.rng, self.device)
        self.loop = loop = Loop(self._update, self.x_train, self.t_train, device=self.device, sampler=sampler,
                                rng=self.rng, iter_per_epoch=self.iter_per_epoch, max_iter=self.max_iter,
                                params=network.params, optimizer=self.optimizer, buffers=buffers,
                                generators=_checkpoint.generators(network), book_phase=book, history_keys=_EPOCH_KEYS)
        loop.history_lengths = lambda epoch, iteration: {key: epoch * self._records(key) for key in _EPOCH_KEYS}
        loop.stop_message = self._stop_message
        if progress is True or (progress is not False and verbose):
            step = min(self.batch_size, self.train_size)
            loop.extend(ProgressBar(math.ceil(self.iter_per_epoch) * step if book else self.train_size,
                                    lambda lp: f"epoch {lp.epoch + 1}/{self.epochs}", step, progress is True))
        self._epoch_start = time.perf_counter()
        loop.extend(SimpleNamespace(on_epoch_start=lambda lp: setattr(self, "_epoch_start", time.perf_counter()),
                                    on_epoch_end=self._evaluate_epoch))
        loop.extend(Divergence("val_acc_list" if self.x_val is not None else "train_acc_list", self.num_classes,
                               getattr(self.optimizer, "lr", None)))
        loop.best = loop.extend(BestState(self._score, self.best_checkpoint, self._write_best))
        loop.extend(self._saver)
        loop.extend(SimpleNamespace(on_epoch_end=self._report_epoch))
        make_folders(self._saver.outputs)
        self._saver.start(loop)

    def __repr__(self) -> str:
        return (f"Trainer({type(self.network).__name__}, {self.train_size} training samples, epoch {self.current_epoch}"
                f"/{self.epochs}, batch {self.batch_size}, {type(self.optimizer).__name__}, device={self.device.name!r})")

    def _update(self, x_batch: Array, t_batch: Array) -> Array:
        """The book's train_step: gradient, update; the loss (the gradient's own forward pass for xpnet's nets)."""
        grads = self.network.gradient(x_batch, t_batch)
        loss = getattr(self.network, "last_loss", None)
        self.optimizer.update(self.network.params, grads)
        return self.network.loss(x_batch, t_batch) if loss is None else loss

    def train_step(self) -> None:
        """One step on the next mini-batch; an epoch's last evaluates, keeps the best, checkpoints, prints."""
        self.loop.step()

    def train(self) -> History:
        """Run the remaining steps (all, or those after a resumed checkpoint); return :attr:`history`."""
        if self.loop.finished:
            warnings.warn(f"train: nothing left to train, all {self.epochs} epochs are done; for more, make a "
                          "Trainer with more epochs= and resume= its checkpoint", stacklevel=2)
            return self.history
        if self.verbose:
            print(f"training on {self.device.name}{self.device_note}", flush=True)
        self.loop.run(lambda loop: self._saver.interrupted(
            loop, f"interrupted during epoch {loop.epoch + 1}/{self.epochs}",
            lambda path: f"continue with resume={path!r} (or resume=True)"))
        if self.x_test is not None and (self.verbose or self.x_val is not None):
            self.final_test_acc = self.evaluate(self.x_test, self.t_test)
        if self.verbose and self.x_test is not None:
            print("=============== Final Test Accuracy ===============")
            print(f"test acc:{self.final_test_acc} (all {int(self.x_test.shape[0]):,} test images)")
        return self.history

    @on_own_device
    def evaluate(self, x: Array, t: Array) -> float:
        """Accuracy on ``(x, t)`` from any array library and device (``t`` checked as the training labels)."""
        move = not isinstance(self.network, Net)  # xpnet's nets move (and chunk) the batches themselves
        return self._accuracy(*self._pair("x", x, "t", t, tuple(self.x_train.shape[1:]), move_x=move), None)

    current_epoch = property(lambda self: self.loop.epoch, doc="Finished epochs.")
    current_iter = property(lambda self: self.loop.iteration, doc="Finished steps.")
    train_loss_list = property(lambda self: self.loop.history["train_loss_list"])
    train_acc_list = property(lambda self: self.loop.history["train_acc_list"])
    test_acc_list = property(lambda self: self.loop.history["test_acc_list"])
    val_acc_list = property(lambda self: self.loop.history["val_acc_list"])
    last_checkpoint = property(lambda self: self._saver.last, doc="(path, epoch) last written or resumed from.")
    history = property(lambda self: {key: list(values) for key, values in self.loop.history.items()},
                       doc="Copies of the book's three lists, ``val_acc_list``, and per epoch ``epoch_loss``, "
                           "``epoch_time`` (s) and ``samples_per_sec``.")
    best = property(lambda self: self.loop.best.record and dict(self.loop.best.record),
                    doc="``{'epoch', 'metric', 'value'}`` of the best epoch (``val_acc`` or ``train_loss``), or None.")

    def restore_best(self) -> dict[str, Any]:
        """Put the best epoch's params and buffers back into the network; return :attr:`best`."""
        return self.loop.best.restore(self.loop)

    def save_checkpoint(self, path: PathLike) -> None:
        """Write the whole training state to ``path`` atomically, at any step (mid-epoch resumes there)."""
        outputs = output_files({"path": path, "best_checkpoint": self.best_checkpoint})
        make_folders(outputs)
        self._saver.save(self.loop, outputs["path"])

    def load_checkpoint(self, path: PathLike) -> None:
        """Continue from :meth:`save_checkpoint`'s file, validated first (nothing changes on error)."""
        self._saver.load(self.loop, path)

    def plot(self, path: PathLike | None = None) -> Any:
        """:func:`xpnet.plot.plot_history` of this run (validation accuracy with a validation split)."""
        limit, history, held = self.evaluate_sample_num_per_epoch, self.history, self.x_test
        if self.x_val is not None:
            history["test_acc_list"], held = history["val_acc_list"], self.x_val
        label = accuracy_label("test" if self.x_val is None else "validation", limit,
                               None if held is None else int(held.shape[0]))
        return plot_history(history, path, train_label=accuracy_label("train", limit, self.train_size), test_label=label)

    @on_own_device
    def _check_data(self, x_train: Any, t_train: Any, x_test: Any, t_test: Any, split: float) -> None:
        """The checked data on the device (``x_val``: the last ``split`` of the training rows), ``num_classes``."""
        if (x_test is None) != (t_test is None):
            raise ValueError("x_test, t_test: give both or neither (None: no test evaluation)")
        network, x_train = self.network, self.device.asarray(x_train, dtype=self.dtype)
        if x_train.ndim < 1 or x_train.shape[0] == 0:
            raise ValueError(f"x_train: empty (shape {tuple(x_train.shape)}); the Trainer needs at least one sample")
        shape, first = tuple(x_train.shape[1:]), next(iter(network.params.values()))
        if hasattr(network, "check_input"):  # xpnet's nets name the fix for the whole array's shape
            network.check_input(x_train, "x_train")
        try:
            scores = network.predict(x_train[:1, ...])
        except Exception as exc:
            expects = f" (it expects {first.shape[0]} features per sample)" if first.ndim == 2 else ""
            raise ValueError(f"x_train: samples of shape {shape} do not fit the network{expects}: {exc}") from exc
        if scores.ndim != 2 or scores.shape[0] != 1:
            raise ValueError(f"network.predict: expected scores (1, classes) for one sample, got {tuple(scores.shape)}")
        self.num_classes = int(scores.shape[1])
        x_train, t_train = self._pair("x_train", x_train, "t_train", t_train, shape)
        self.x_test, self.t_test = (None, None) if x_test is None else self._pair("x_test", x_test, "t_test", t_test, shape)
        n, held = int(x_train.shape[0]), int(int(x_train.shape[0]) * split)
        if split and not 0 < held < n:
            raise ValueError(f"validation_split: {split} of {n} training samples holds out {held}; "
                             "choose a fraction that leaves samples on both sides")
        self.x_val, self.t_val = (x_train[n - held:, ...], t_train[n - held:, ...]) if held else (None, None)
        self.x_train, self.t_train = x_train[:n - held, ...], t_train[:n - held, ...]

    def _pair(self, x_name: str, x: Any, t_name: str, t: Any, shape: tuple[int, ...], *,
              move_x: bool = True) -> tuple[Array, Array]:
        """``(x, t)`` checked (one label per sample, samples of ``shape``, :func:`check_values`); ``t`` on the
        device (one-hot in the params' dtype, ``(N, 1)`` as ``(N,)``), ``x`` too when ``move_x``."""
        x = self.device.asarray(x, dtype=self.dtype) if move_x or not is_array_api_obj(x) else x
        t, classes = self.device.asarray(t), self.num_classes
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"{x_name}: empty (shape {tuple(x.shape)}); expected at least one sample")
        if t.ndim < 1 or t.shape[0] != x.shape[0]:
            raise ValueError(f"{t_name}: expected {x.shape[0]} labels (one per row of {x_name}), got shape {tuple(t.shape)}")
        if tuple(x.shape[1:]) != shape:
            raise ValueError(f"{x_name}: expected samples of shape {shape} (as x_train), got {tuple(x.shape[1:])}")
        check_values(x_name, x, t_name, t, classes)
        one_hot = t.ndim == 2 and t.shape[1] == classes and classes > 1
        return x, self.device.asarray(t, dtype=self.dtype) if one_hot else self.device.xp.reshape(t, (-1,))

    def _records(self, key: str) -> bool:
        """Whether the history gets ``key`` every epoch (the test set only without a validation split)."""
        return {"test_acc_list": self.x_test is not None and self.x_val is None,
                "val_acc_list": self.x_val is not None}.get(key, True)

    def _score(self, loop: Loop) -> tuple[str, float]:
        key = "val_acc" if self.x_val is not None else "train_loss"
        return key, loop.history["val_acc_list" if self.x_val is not None else "epoch_loss"][-1]

    def _write_best(self, path: str) -> None:
        """The best parameters as :meth:`Net.save_params` writes them."""
        if isinstance(self.network, Net):
            return self.network.save_params(path)
        save_arrays(path, {key.partition("/")[2]: value for key, value in self.loop.copy_state().items()})

    def _stop_message(self, loop: Loop) -> str:
        lr, last = getattr(self.optimizer, "lr", None), self.last_checkpoint
        return " The learning rate is probably too high: lower it" + \
            (f" (it is {lr:g}; try e.g. optimizer_param={{'lr': {lr / 10:g}}})." if lr else ".") + \
            (f" The last checkpoint, {last[0]!r} (epoch {last[1]}), is intact: resume=... continues from it."
             if last else "")

    def _accuracy(self, x: Array, t: Array, limit: int | None) -> float:
        """``network.accuracy`` over the first ``limit`` samples (all: ``None``), with the device current."""
        x, t = (x[:limit, ...], t[:limit, ...]) if limit is not None and limit < int(x.shape[0]) else (x, t)
        if isinstance(self.network, Net):
            return float(self.network.accuracy(x, t, batch_size=self.eval_batch_size))
        return float(self.network.accuracy(x, t))

    def _evaluate_epoch(self, loop: Loop) -> None:
        """Accuracies, the epoch's mean loss, time and speed into the history."""
        loop.device.synchronize()
        seconds, history, limit = time.perf_counter() - self._epoch_start, loop.history, self.evaluate_sample_num_per_epoch
        for key, x, t in (("train_acc_list", self.x_train, self.t_train), ("val_acc_list", self.x_val, self.t_val),
                          ("test_acc_list", self.x_test, self.t_test)):
            if self._records(key):
                history[key].append(self._accuracy(x, t, limit))
        losses = history["train_loss_list"][-loop.epoch_steps:]
        samples = self.train_size if self.sampling == "shuffle" else loop.epoch_steps * self.batch_size
        history["epoch_loss"].append(sum(losses) / len(losses))
        history["epoch_time"].append(time.perf_counter() - self._epoch_start)
        history["samples_per_sec"].append(samples / max(seconds, 1e-12))
        self._epoch_start = time.perf_counter()

    def _report_epoch(self, loop: Loop) -> None:
        """The epoch line (when verbose), then the user's ``progress(history)``."""
        limit = self.evaluate_sample_num_per_epoch
        if self.verbose:
            measured = limit if limit is not None and limit < self.train_size else None
            print(format_epoch_line(loop.history, self.epochs, measured=measured), flush=True)
        if callable(self.progress):
            self.progress(self.history)
