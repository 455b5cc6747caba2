"""The book's ``common/trainer.py``: train a network on any device, watch it, keep it, resume it.

::

    trainer = Trainer(net, x_train, t_train, x_test, t_test, epochs=10,
                      optimizer="Adam", optimizer_param={"lr": 0.001},
                      device="auto", seed=0, checkpoint="run.npz")
    history = trainer.train()
    trainer.plot("curves.png")

What differs from the book:

* ``device`` (anything :func:`xpnet.backend.get_device` accepts): the network
  (every array reachable from it, aliases kept), the optimizer state and the data
  (cast to the network's dtype) are moved there once, in the constructor; batches
  are drawn there.  The network stays there after training
  (``to_device(net, "cpu")`` brings it back).
* An epoch is one shuffled pass over the training set without replacement, the
  last partial batch included (``sampling="replacement"`` draws as the book does).
  Accuracy is measured at the END of each epoch (the book measures at its start).
* ``seed`` drives the shuffling only; the network's own seed drives its weight
  init and Dropout.  The same seeds on the same backend give the same history,
  bit for bit.
* The loss logged for a step is the one ``network.gradient`` computed on the
  batch (networks that keep it as ``last_loss``, as xpnet's do), so a step costs
  one forward pass, not two; for other networks, ``network.loss`` after the
  update, as in the book.
* On the host, freed memory is kept for the next step
  (:func:`xpnet.backend.keep_freed_host_memory`) instead of being page-faulted
  back in at every step.
* Losses stay on the device and are converted to Python floats in bulk (every
  ``_FLUSH_EVERY`` steps and at the end of each epoch), so a GPU run does not
  wait on the device at every step.  A NaN/inf loss stops training with
  :class:`FloatingPointError` naming the epoch and iteration.
* ``checkpoint`` writes params, optimizer state, RNG states and the history at
  each epoch end, atomically; ``resume`` continues from such a file and reaches
  the same parameters as an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import time
import types
from typing import Any, Callable, Mapping, Union

from array_api_compat import is_array_api_obj
from tqdm.auto import tqdm

from .backend import (DeviceLike, Generator, get_device, keep_freed_host_memory, reachable, to_device,
                      to_numpy)
from .io import load_arrays, save_arrays
from .optimizer import Optimizer, get_optimizer

Array = Any
PathLike = Union[str, "os.PathLike[str]"]
History = dict[str, list[float]]
ProgressHook = Callable[[History], None]

__all__ = ["Trainer"]

_FLUSH_EVERY = 50
"""Steps between bulk loss conversions (progress bar loss, NaN check) within an epoch."""

_CHECKPOINT_FORMAT = 2  # 2: generator states carry their device pool (backend.Generator.state)
_BUFFER_NAMES = ("running_mean", "running_var")
_DEFAULT_OPTIMIZER_PARAM: Mapping[str, float] = types.MappingProxyType({"lr": 0.01})
_SAMPLINGS = ("shuffle", "replacement")


class Trainer:
    """Trains ``network`` (the book's interface: ``params``, ``gradient``, ``loss``,
    ``predict``, ``accuracy``) on ``(x_train, t_train)``, evaluating on both sets.

    Positional arguments are the book's.  ``optimizer`` is a name of
    :data:`xpnet.optimizer.OPTIMIZERS` (case-insensitive, built with
    ``optimizer_param``) or an optimizer instance.  Keyword-only extras:

    ``device``
        Where to train (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"``, a
        :class:`~xpnet.backend.Device`, or ``(namespace, device)``).
    ``seed``
        Seed of the shuffling (``None``: fresh entropy).
    ``progress``
        ``None``: a tqdm bar per epoch (loss, samples/s) when ``verbose``;
        ``True``/``False``: bar on/off whatever ``verbose`` says; a callable:
        ``progress(history)`` after every epoch (bar as for ``None``).
    ``checkpoint``
        Path of an ``.npz`` written atomically at every epoch end.
    ``resume``
        Path of a checkpoint to continue from, or ``True``: continue from
        ``checkpoint`` if that file exists (else start fresh).
    ``sampling``
        ``"shuffle"`` (each epoch a permutation) or ``"replacement"`` (the book).
    ``eval_batch_size``
        Samples per ``network.accuracy`` call when evaluating (bounds memory).

    Every argument, the data and the fit of data to network are checked here,
    before any training, with errors that name the culprit.
    """

    def __init__(self, network: Any, x_train: Array, t_train: Array, x_test: Array, t_test: Array,
                 epochs: int = 20, mini_batch_size: int = 100,
                 optimizer: str | Optimizer = "SGD",
                 optimizer_param: Mapping[str, float] = _DEFAULT_OPTIMIZER_PARAM,
                 evaluate_sample_num_per_epoch: int | None = None, verbose: bool = True, *,
                 device: DeviceLike = "cpu", seed: int | None = None,
                 progress: bool | ProgressHook | None = None, checkpoint: PathLike | None = None,
                 resume: PathLike | bool | None = None, sampling: str = "shuffle",
                 eval_batch_size: int = 1000) -> None:
        self.device = get_device(device)
        keep_freed_host_memory()
        _check_count("epochs", epochs)
        _check_count("mini_batch_size", mini_batch_size)
        _check_count("eval_batch_size", eval_batch_size)
        if evaluate_sample_num_per_epoch is not None:
            _check_count("evaluate_sample_num_per_epoch", evaluate_sample_num_per_epoch)
        if sampling not in _SAMPLINGS:
            raise ValueError(f"sampling: expected one of {_SAMPLINGS}, got {sampling!r}")
        if not (progress is None or isinstance(progress, bool) or callable(progress)):
            raise TypeError(f"progress: expected None, a bool or a callable, got {type(progress).__name__}")
        if resume is True and checkpoint is None:
            raise ValueError("resume=True continues from the checkpoint file, but checkpoint is None")
        if resume not in (None, True, False) and not os.path.isfile(resume):
            raise FileNotFoundError(f"resume: no checkpoint file {os.fspath(resume)!r}")
        self.optimizer = _make_optimizer(optimizer, optimizer_param)
        if checkpoint is not None or resume not in (None, False):
            _check_checkpointable(self.optimizer)
        _check_network(network)

        self.network = to_device(network, self.device)
        self.optimizer = to_device(self.optimizer, self.device)
        self.dtype = next(iter(network.params.values())).dtype
        with self.device.activate():
            self.x_train = self.device.asarray(x_train, dtype=self.dtype)
            self.x_test = self.device.asarray(x_test, dtype=self.dtype)
            self.t_train = self.device.asarray(t_train)
            self.t_test = self.device.asarray(t_test)
            self._check_data()

        self.epochs = epochs
        self.batch_size = mini_batch_size
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        self.eval_batch_size = eval_batch_size
        self.verbose = verbose
        self.sampling = sampling
        self.progress = progress
        self.checkpoint = checkpoint
        self.rng = Generator(seed)
        self.train_size = int(self.x_train.shape[0])
        self.iter_per_epoch = math.ceil(self.train_size / mini_batch_size)
        self.max_iter = epochs * self.iter_per_epoch
        self.current_iter = 0
        self.current_epoch = 0
        self.train_loss_list: list[float] = []
        self.train_acc_list: list[float] = []
        self.test_acc_list: list[float] = []
        self.epoch_time_list: list[float] = []
        self.samples_per_sec_list: list[float] = []
        self._epoch_iter = 0
        self._epoch_samples = 0
        self._epoch_start = 0.0
        self._order: Array | None = None
        self._pending_losses: list[Array] = []
        self._bar: Any = None
        self._last_checkpoint: tuple[str, int] | None = None

        if resume is True:
            if os.path.exists(checkpoint):
                self.load_checkpoint(checkpoint)
        elif resume not in (None, False):
            self.load_checkpoint(resume)

    # ------------------------------------------------------------------ training

    def train_step(self) -> None:
        """One optimizer step on the next mini-batch (the book's ``train_step``).

        The step that completes an epoch also evaluates, records the history,
        writes the checkpoint and prints the epoch line.
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
        elif len(self._pending_losses) >= _FLUSH_EVERY:
            self._flush_losses()

    def train(self) -> History:
        """Run the remaining epochs (all of them, or those after a resumed checkpoint); return :attr:`history`."""
        try:
            while self.current_epoch < self.epochs:
                self.train_step()
        finally:
            self._close_bar()
        if self.verbose:
            test_acc = self._accuracy(self.x_test, self.t_test, limit=None)
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(test_acc))
        return self.history

    @property
    def history(self) -> History:
        """Copies of the history: the book's three lists, plus per-epoch ``epoch_time`` (s,
        training + evaluation) and ``samples_per_sec`` (training only)."""
        return {
            "train_loss_list": list(self.train_loss_list),
            "train_acc_list": list(self.train_acc_list),
            "test_acc_list": list(self.test_acc_list),
            "epoch_time": list(self.epoch_time_list),
            "samples_per_sec": list(self.samples_per_sec_list),
        }

    def _start_epoch(self) -> None:
        if self.sampling == "shuffle":
            self._order = self.rng.permutation(self.train_size, device=self.device)
        self._epoch_samples = 0
        if self.progress is True or (self.progress is not False and self.verbose):
            self._bar = tqdm(total=self._samples_this_epoch(), unit="sample", unit_scale=True, leave=False,
                             desc=f"epoch {self.current_epoch + 1}/{self.epochs}")
        self._epoch_start = time.perf_counter()

    def _samples_this_epoch(self) -> int:
        if self.sampling == "shuffle":
            return self.train_size
        return self.iter_per_epoch * self.batch_size

    def _end_epoch(self) -> None:
        self._flush_losses()
        self.device.synchronize()
        train_seconds = time.perf_counter() - self._epoch_start
        self._close_bar()
        train_acc = self._accuracy(self.x_train, self.t_train, limit=self.evaluate_sample_num_per_epoch)
        test_acc = self._accuracy(self.x_test, self.t_test, limit=self.evaluate_sample_num_per_epoch)
        self.current_epoch += 1
        self._epoch_iter = 0
        self._order = None
        self.train_acc_list.append(train_acc)
        self.test_acc_list.append(test_acc)
        self.epoch_time_list.append(time.perf_counter() - self._epoch_start)
        self.samples_per_sec_list.append(self._epoch_samples / max(train_seconds, 1e-12))
        if self.checkpoint is not None:
            self.save_checkpoint(self.checkpoint)
        if self.verbose:
            print("=== epoch:" + str(self.current_epoch) + ", train acc:" + str(train_acc)
                  + ", test acc:" + str(test_acc) + " ===")
        if callable(self.progress):
            self.progress(self.history)

    def _flush_losses(self) -> None:
        """Convert the losses still on the device to floats (one transfer); stop on NaN/inf."""
        if not self._pending_losses:
            return
        with self.device.activate():
            values = to_numpy(self.device.xp.stack(self._pending_losses)).tolist()
        self._pending_losses.clear()
        first_iter = self.current_iter - len(values) + 1
        for k, value in enumerate(values):
            if not math.isfinite(value):
                self.train_loss_list.extend(values[:k])
                self._close_bar()
                raise FloatingPointError(self._divergence_message(value, first_iter + k))
        self.train_loss_list.extend(values)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{values[-1]:.4f}")

    def _divergence_message(self, value: float, iteration: int) -> str:
        epoch_iter = iteration - self.current_epoch * self.iter_per_epoch
        lr = getattr(self.optimizer, "lr", None)
        hint = f" (it is {lr:g}; try e.g. optimizer_param={{'lr': {lr / 10:g}}})" if lr else ""
        message = (f"train loss became {value} at epoch {self.current_epoch + 1}, iteration {iteration} "
                   f"(step {epoch_iter} of {self.iter_per_epoch} in that epoch); training stopped. "
                   f"The learning rate is probably too high: lower it{hint}.")
        if self._last_checkpoint is not None:
            path, epoch = self._last_checkpoint
            message += f" The last checkpoint, {path!r} (epoch {epoch}), is intact: resume=... continues from it."
        return message

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _accuracy(self, x: Array, t: Array, limit: int | None) -> float:
        """``network.accuracy`` over the first ``limit`` samples (all: ``None``), in chunks."""
        n = int(x.shape[0]) if limit is None else min(limit, int(x.shape[0]))
        correct = 0.0
        with self.device.activate():
            for start in range(0, n, self.eval_batch_size):
                stop = min(start + self.eval_batch_size, n)
                correct += float(self.network.accuracy(x[start:stop, ...], t[start:stop, ...])) * (stop - start)
        return correct / n

    # ------------------------------------------------------------------ checks

    def _check_data(self) -> None:
        for name, x, t_name, t in (("x_train", self.x_train, "t_train", self.t_train),
                                   ("x_test", self.x_test, "t_test", self.t_test)):
            if x.ndim < 1 or x.shape[0] == 0:
                raise ValueError(f"{name}: empty (shape {tuple(x.shape)}); the Trainer needs at least one sample")
            if t.ndim < 1 or t.shape[0] != x.shape[0]:
                raise ValueError(f"{t_name}: expected {x.shape[0]} labels (one per row of {name}), "
                                 f"got shape {tuple(t.shape)}")
        if tuple(self.x_test.shape[1:]) != tuple(self.x_train.shape[1:]):
            raise ValueError(f"x_test: expected samples of shape {tuple(self.x_train.shape[1:])} (as x_train), "
                             f"got {tuple(self.x_test.shape[1:])}")
        num_classes = self._num_classes()
        self.t_train = self._checked_labels("t_train", self.t_train, num_classes)
        self.t_test = self._checked_labels("t_test", self.t_test, num_classes)

    def _num_classes(self) -> int:
        """Output size of the network, from one forward pass on one training sample."""
        sample_shape = tuple(self.x_train.shape[1:])
        try:
            scores = self.network.predict(self.x_train[:1, ...])
        except Exception as exc:
            raise ValueError(f"x_train: samples of shape {sample_shape} do not fit the network"
                             f"{_expected_input(self.network)}: {exc}") from exc
        if scores.ndim != 2 or scores.shape[0] != 1:
            raise ValueError(f"network.predict: expected scores of shape (1, classes) for one sample of "
                             f"x_train, got {tuple(scores.shape)}")
        return int(scores.shape[1])

    def _checked_labels(self, name: str, t: Array, num_classes: int) -> Array:
        xp = self.device.xp
        if t.ndim == 2:
            if t.shape[1] != num_classes:
                raise ValueError(f"{name}: one-hot labels need {num_classes} columns (the network's output size), "
                                 f"got {t.shape[1]}")
            return self.device.asarray(t, dtype=self.dtype)
        if t.ndim != 1 or not xp.isdtype(t.dtype, "integral"):
            raise ValueError(f"{name}: expected integer class indices of shape (N,) or one-hot of shape "
                             f"(N, {num_classes}), got shape {tuple(t.shape)} of {t.dtype}")
        low, high = int(xp.min(t)), int(xp.max(t))
        if low < 0 or high >= num_classes:
            raise ValueError(f"{name}: labels must lie in 0..{num_classes - 1} (the network has {num_classes} "
                             f"outputs), got values in {low}..{high}")
        return t

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self, path: PathLike) -> None:
        """Write params, buffers (BatchNorm running statistics), optimizer state, epoch,
        iteration, history and every RNG state to ``path`` (``.npz``), atomically.

        An interruption (Ctrl-C included) leaves any previous file at ``path`` intact.
        """
        _check_checkpointable(self.optimizer)
        arrays = {f"params/{key}": to_numpy(value) for key, value in self.network.params.items()}
        arrays.update({f"buffers/{name}": to_numpy(getattr(owner, attr))
                       for name, (owner, attr) in _buffers(self.network).items()
                       if is_array_api_obj(getattr(owner, attr))})
        optimizer_scalars = {}
        for key, value in self.optimizer.state_dict().items():
            if is_array_api_obj(value):
                arrays[f"optimizer/{key}"] = to_numpy(value)
            else:
                optimizer_scalars[key] = value
        meta = {
            "format": _CHECKPOINT_FORMAT,
            "epoch": self.current_epoch,
            "iteration": self.current_iter,
            "history": {
                "train_loss_list": self.train_loss_list, "train_acc_list": self.train_acc_list,
                "test_acc_list": self.test_acc_list, "epoch_time": self.epoch_time_list,
                "samples_per_sec": self.samples_per_sec_list,
            },
            "optimizer": {"class": type(self.optimizer).__name__, "scalars": optimizer_scalars},
            "rng": self.rng.state,
            "generators": {path_: gen.state for path_, gen in _generators(self.network).items()},
        }
        arrays["meta"] = to_numpy(bytearray(json.dumps(meta).encode("utf-8")))  # uint8: io keeps numbers only
        save_arrays(path, arrays)
        self._last_checkpoint = (os.fspath(path), self.current_epoch)

    def load_checkpoint(self, path: PathLike) -> None:
        """Continue from a checkpoint written by :meth:`save_checkpoint`: params (in place,
        so layers still share them), buffers, optimizer state, counters, history and RNG
        states are put back, on this Trainer's device."""
        _check_checkpointable(self.optimizer)
        arrays = load_arrays(path)
        where = f"checkpoint {os.fspath(path)!r}"
        if "meta" not in arrays:
            raise ValueError(f"{where}: not a Trainer checkpoint (no 'meta' entry)")
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        if meta.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"{where}: format {meta.get('format')!r}, this version reads {_CHECKPOINT_FORMAT}")
        params = self.network.params
        saved = {key[len("params/"):]: value for key, value in arrays.items() if key.startswith("params/")}
        if set(saved) != set(params):
            raise ValueError(f"{where}: params {sorted(saved)} do not match the network's {sorted(params)}")
        for key, value in saved.items():
            if tuple(value.shape) != tuple(params[key].shape):
                raise ValueError(f"{where}: params[{key!r}] has shape {tuple(value.shape)}, "
                                 f"the network's has {tuple(params[key].shape)}")
        if meta["optimizer"]["class"] != type(self.optimizer).__name__:
            raise ValueError(f"{where}: saved with optimizer {meta['optimizer']['class']}, "
                             f"this Trainer uses {type(self.optimizer).__name__}")
        generators = _generators(self.network)
        if set(meta["generators"]) != set(generators):
            raise ValueError(f"{where}: random generators {sorted(meta['generators'])} do not match "
                             f"the network's {sorted(generators)}")
        buffers = _buffers(self.network)

        with self.device.activate():
            for key, value in saved.items():
                params[key][...] = self.device.asarray(value, dtype=params[key].dtype)
            for key, value in arrays.items():
                if key.startswith("buffers/"):
                    owner, attr = buffers[key[len("buffers/"):]]
                    setattr(owner, attr, self.device.asarray(value))
            state = {key[len("optimizer/"):]: self.device.asarray(value)
                     for key, value in arrays.items() if key.startswith("optimizer/")}
            self.optimizer.load_state_dict({**state, **meta["optimizer"]["scalars"]})
        for path_, gen in generators.items():
            gen.state = meta["generators"][path_]
        self.rng.state = meta["rng"]
        history = meta["history"]
        self.train_loss_list = history["train_loss_list"]
        self.train_acc_list = history["train_acc_list"]
        self.test_acc_list = history["test_acc_list"]
        self.epoch_time_list = history["epoch_time"]
        self.samples_per_sec_list = history["samples_per_sec"]
        self.current_epoch = int(meta["epoch"])
        self.current_iter = int(meta["iteration"])
        self._epoch_iter = 0
        self._order = None
        self._pending_losses.clear()
        self._last_checkpoint = (os.fspath(path), self.current_epoch)

    # ------------------------------------------------------------------ plots

    def plot(self, path: PathLike | None = None) -> Any:
        """Draw the training loss (raw, and smoothed by :func:`~xpnet.util.smooth_curve`)
        per iteration and the train/test accuracy per epoch; return the matplotlib Figure.

        With ``path`` the figure is written there (format from the suffix) without
        any display (safe on a headless machine); without, it is shown with pyplot.
        Needs matplotlib (``pip install 'xpnet[plot]'``).
        """
        try:
            import matplotlib.figure
            import matplotlib.ticker
        except ImportError as exc:
            raise ImportError("Trainer.plot() needs matplotlib, which is not installed: "
                              "pip install matplotlib (or pip install 'xpnet[plot]')") from exc
        from .util import smooth_curve

        if path is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(11, 4))
        else:
            fig = matplotlib.figure.Figure(figsize=(11, 4))
        ax_loss, ax_acc = fig.subplots(1, 2)
        iterations = range(1, len(self.train_loss_list) + 1)
        ax_loss.plot(iterations, self.train_loss_list, color="tab:blue", alpha=0.3, label="train loss")
        ax_loss.plot(iterations, smooth_curve(self.train_loss_list), color="tab:blue", label="smoothed")
        ax_loss.set(xlabel="iteration", ylabel="loss", title="training loss")
        ax_loss.legend()
        epochs = range(1, len(self.train_acc_list) + 1)
        ax_acc.plot(epochs, self.train_acc_list, marker="o", label="train")
        ax_acc.plot(epochs, self.test_acc_list, marker="s", linestyle="--", label="test")
        ax_acc.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0.0, 1.0), title="accuracy")
        ax_acc.legend(loc="lower right")
        fig.tight_layout()
        if path is None:
            plt.show()
        else:
            fig.savefig(os.fspath(path))
        return fig


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")


def _make_optimizer(optimizer: str | Any, optimizer_param: Mapping[str, float]) -> Any:
    if isinstance(optimizer, str):
        return get_optimizer(optimizer, **dict(optimizer_param))
    if not callable(getattr(optimizer, "update", None)):
        raise TypeError(f"optimizer: expected a name or an object with update(params, grads), "
                        f"got {type(optimizer).__name__}")
    if optimizer_param is not _DEFAULT_OPTIMIZER_PARAM:
        raise ValueError("optimizer_param: only used with an optimizer name; "
                         "this optimizer is already built, configure it directly")
    return optimizer


def _check_checkpointable(optimizer: Any) -> None:
    if not (callable(getattr(optimizer, "state_dict", None)) and callable(getattr(optimizer, "load_state_dict", None))):
        raise TypeError(f"checkpoint/resume: the optimizer {type(optimizer).__name__} has no "
                        "state_dict()/load_state_dict(); use one of xpnet.optimizer's")


def _check_network(network: Any) -> None:
    missing = [name for name in ("gradient", "loss", "predict", "accuracy")
               if not callable(getattr(network, name, None))]
    if missing:
        raise TypeError(f"network: expected the book's interface, missing method(s) {', '.join(missing)}")
    params = getattr(network, "params", None)
    if not isinstance(params, dict) or not params:
        raise TypeError("network: expected a non-empty dict network.params of parameter arrays")


def _expected_input(network: Any) -> str:
    first = next(iter(network.params.values()))
    if first.ndim == 2:
        return f" (it expects {first.shape[0]} features per sample)"
    if first.ndim == 4:
        return f" (it expects samples of shape ({first.shape[1]}, H, W))"
    return ""


def _generators(network: Any) -> dict[str, Generator]:
    """Every :class:`~xpnet.backend.Generator` reachable from ``network``, by path."""
    return {path: obj for path, obj in reachable(network, "network") if isinstance(obj, Generator)}


def _buffers(network: Any) -> dict[str, tuple[Any, str]]:
    """Non-parameter state worth keeping (BatchNorm running statistics): path -> (owner, attribute)."""
    found = {}
    for path, obj in reachable(network, "network"):
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict) and not is_array_api_obj(obj):
            found.update({f"{path}.{name}": (obj, name) for name in _BUFFER_NAMES if name in attributes})
    return found
