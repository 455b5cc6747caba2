"""The Trainer's checks of its arguments and data, run once in its constructor (and by ``Trainer.evaluate``):
shapes, emptiness, NaN/inf (naming the array and the first bad row), labels (range, sign,
integer type), and batch sizes that would hand BatchNorm a single sample.

Labels are checked here once, so training steps need no per-step check (on a GPU each
such check would wait on the device).
"""

from __future__ import annotations

import inspect
import os
import types
from typing import Any, Mapping

from array_api_compat import array_namespace, is_array_api_obj

from .backend import Device
from .checkpoint import buffers
from .functions import check_labels
from .optimizer import get_optimizer

Array = Any

__all__ = ["check_data", "check_pair", "check_batches", "expected_input", "check_resume", "make_optimizer",
           "check_network", "check_progress", "DEFAULT_OPTIMIZER_PARAM"]

DEFAULT_OPTIMIZER_PARAM: Mapping[str, float] = types.MappingProxyType({"lr": 0.01})


def check_data(network: Any, device: Device, dtype: Any, x_train: Any, t_train: Any, x_test: Any, t_test: Any
               ) -> tuple[Array, Array, Array | None, Array | None, int]:
    """``(x_train, t_train, x_test, t_test, num_classes)`` on ``device`` (x cast to ``dtype``),
    after every check; ``x_test``/``t_test`` may both be ``None``."""
    if (x_test is None) != (t_test is None):
        raise ValueError("x_test, t_test: give both or neither (None: no test evaluation)")
    with device.activate():
        x_train = device.asarray(x_train, dtype=dtype)
        if x_train.ndim < 1 or x_train.shape[0] == 0:
            raise ValueError(f"x_train: empty (shape {tuple(x_train.shape)}); the Trainer needs at least one sample")
        sample_shape = tuple(x_train.shape[1:])
        num_classes = _num_classes(network, x_train)
        x_train, t_train = check_pair("x_train", x_train, "t_train", t_train, sample_shape, num_classes, device,
                                      dtype)
        if x_test is not None:
            x_test, t_test = check_pair("x_test", x_test, "t_test", t_test, sample_shape, num_classes, device,
                                        dtype, like="x_train")
    return x_train, t_train, x_test, t_test, num_classes


def check_pair(x_name: str, x: Any, t_name: str, t: Any, sample_shape: tuple[int, ...], num_classes: int,
               device: Device, dtype: Any, *, move_x: bool = True, like: str = "the training data"
               ) -> tuple[Array, Array]:
    """``(x, t)`` checked: one label per sample, samples of ``sample_shape``, no NaN/inf in ``x``,
    labels in ``0..num_classes-1``.  ``t`` goes to ``device``; ``x`` too when ``move_x`` (cast
    to ``dtype``), else it stays in its own namespace (a non-array becomes a host array)."""
    with device.activate():
        if move_x or not is_array_api_obj(x):
            x = device.asarray(x, dtype=dtype)
        t = device.asarray(t)
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"{x_name}: empty (shape {tuple(x.shape)}); expected at least one sample")
        if t.ndim < 1 or t.shape[0] != x.shape[0]:
            raise ValueError(f"{t_name}: expected {x.shape[0]} labels (one per row of {x_name}), "
                             f"got shape {tuple(t.shape)}")
        if tuple(x.shape[1:]) != sample_shape:
            raise ValueError(f"{x_name}: expected samples of shape {sample_shape} (as {like}), "
                             f"got {tuple(x.shape[1:])}")
        row = _first_nonfinite_row(x)
        if row is not None:
            raise ValueError(f"{x_name}: row {row} holds NaN or inf (as {x.dtype}); the data must be finite")
        return x, _checked_labels(t_name, t, num_classes, device, dtype)


def check_batches(network: Any, train_size: int, batch_size: int, sampling: str) -> None:
    """Refuse batch sizes that give a net with BatchNorm a one-sample training batch (its batch
    variance is 0: it would output ``beta`` and learn a zero running variance)."""
    if not buffers(network):
        return
    if sampling == "replacement" or train_size <= batch_size:
        last = min(batch_size, train_size)
    else:
        last = train_size % batch_size
    if last != 1:
        return
    fits = [size for size in range(max(batch_size - 3, 2), batch_size + 4)
            if size != batch_size and (train_size % size != 1 or sampling == "replacement")]
    raise ValueError(f"mini_batch_size: {train_size} training samples in batches of {batch_size} give a batch of "
                     f"one sample, which BatchNorm cannot normalise; use another mini_batch_size "
                     f"(e.g. {', '.join(map(str, fits[:3]))}) or drop a sample")


def expected_input(network: Any) -> str:
    """`` (it expects ...)`` from the first parameter's shape, for error messages."""
    first = next(iter(network.params.values()))
    if first.ndim == 2:
        return f" (it expects {first.shape[0]} features per sample)"
    if first.ndim == 4:
        return f" (it expects samples of shape ({first.shape[1]}, H, W))"
    return ""


def _num_classes(network: Any, x_train: Array) -> int:
    """Output size of the network, from one forward pass on one training sample."""
    sample_shape = tuple(x_train.shape[1:])
    if hasattr(network, "check_input"):  # xpnet's nets name the fix for the whole array's shape
        network.check_input(x_train, "x_train")
    try:
        scores = network.predict(x_train[:1, ...])
    except Exception as exc:
        raise ValueError(f"x_train: samples of shape {sample_shape} do not fit the network"
                         f"{expected_input(network)}: {exc}") from exc
    if scores.ndim != 2 or scores.shape[0] != 1:
        raise ValueError(f"network.predict: expected scores of shape (1, classes) for one sample of "
                         f"x_train, got {tuple(scores.shape)}")
    return int(scores.shape[1])


def _first_nonfinite_row(x: Array) -> int | None:
    """Index of the first sample holding NaN or inf, or ``None`` (one host transfer)."""
    xp = array_namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        return None
    bad = xp.any(~xp.isfinite(xp.reshape(x, (x.shape[0], -1))), axis=1)
    if not bool(xp.any(bad)):
        return None
    return int(xp.argmax(xp.astype(bad, xp.int8)))


def _checked_labels(name: str, t: Array, num_classes: int, device: Device, dtype: Any) -> Array:
    """``t`` checked once by :func:`xpnet.functions.check_labels` (the error names ``name``);
    one-hot rows come back in ``dtype``, index labels ``(N, 1)`` as ``(N,)``."""
    try:
        check_labels(t, num_classes)
    except ValueError as exc:
        raise ValueError(f"{name}: {str(exc).removeprefix('t: ')} (the network has {num_classes} outputs)") from None
    xp = device.xp
    if t.ndim == 2 and t.shape[1] == num_classes and num_classes > 1:
        return device.asarray(t, dtype=dtype)
    return xp.reshape(t, (-1,))


def check_resume(resume: Any, checkpoint: str | None) -> str | None:
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


def make_optimizer(optimizer: str | Any, optimizer_param: Mapping[str, float]) -> Any:
    if isinstance(optimizer, str):
        if not isinstance(optimizer_param, Mapping):
            raise TypeError(f"optimizer_param: expected a dict such as {{'lr': 0.01}}, "
                            f"got {type(optimizer_param).__name__}")
        return get_optimizer(optimizer, **dict(optimizer_param))
    if not callable(getattr(optimizer, "update", None)):
        raise TypeError(f"optimizer: expected a name or an object with update(params, grads), "
                        f"got {type(optimizer).__name__}")
    if optimizer_param is not DEFAULT_OPTIMIZER_PARAM:
        raise ValueError("optimizer_param: only used with an optimizer name; "
                         "this optimizer is already built, configure it directly")
    return optimizer


def check_progress(progress: Any) -> None:
    """``progress`` must be ``None``, a bool or a callable."""
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress: expected None, a bool or a callable, got {type(progress).__name__}")


def check_network(network: Any) -> None:
    missing = [name for name in ("gradient", "loss", "predict", "accuracy")
               if not callable(getattr(network, name, None))]
    if missing:
        raise TypeError(f"network: expected the book's interface, missing method(s) {', '.join(missing)}")
    params = getattr(network, "params", None)
    if not isinstance(params, dict) or not params:
        raise TypeError("network: expected a non-empty dict network.params of parameter arrays")


def parameters_of(function: Any) -> Mapping[str, Any]:
    """The parameters of ``function``'s signature (none when it has no signature)."""
    try:
        return inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
