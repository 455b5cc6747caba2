"""The training loop's checks of arguments, output paths and data, run once before the first
step (and by ``Trainer.evaluate``): shapes, emptiness, NaN/inf (naming the array and the first
bad row), labels (range, sign, integer type; once, so steps need no per-step check), output
paths (compared by their resolved real path), and batch sizes that would hand BatchNorm a
single sample.
"""

from __future__ import annotations

import os
import types
from typing import Any, Mapping

from array_api_compat import array_namespace, is_array_api_obj

from .backend import Device
from .checks import writable_file
from .functions import check_labels
from .optimizer import get_optimizer

Array = Any

__all__ = ["check_data", "check_pair", "check_batches", "check_outputs", "first_nonfinite_row", "expected_input",
           "check_resume", "make_optimizer", "check_network", "DEFAULT_OPTIMIZER_PARAM"]

DEFAULT_OPTIMIZER_PARAM: Mapping[str, float] = types.MappingProxyType({"lr": 0.01})


def check_outputs(paths: Mapping[str, Any], *, others: Mapping[str, Any] = types.MappingProxyType({})
                  ) -> dict[str, str | None]:
    """Each of a run's output ``paths`` (name -> path or ``None``) checked writable; two that
    resolve to the same real file (``a.npz``, ``./a.npz``, a symlink), among them or with
    ``others`` (outputs written by someone else, e.g. the CLI's), are refused naming both."""
    checked = {name: None if path is None else writable_file(name, path) for name, path in paths.items()}
    seen: dict[str, str] = {os.path.realpath(os.fspath(p)): name for name, p in others.items()}
    for name, path in checked.items():
        if path is None:
            continue
        real = os.path.realpath(path)
        if real in seen:
            raise ValueError(f"{name}: {path!r} is the same file as {seen[real]}; each output needs its own file")
        seen[real] = name
    return checked


def make_folders(paths: Mapping[str, str | None]) -> None:
    """Create the folders of the checked output ``paths``."""
    for path in paths.values():
        if path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def check_data(network: Any, device: Device, dtype: Any, x_train: Any, t_train: Any, x_test: Any, t_test: Any,
               validation_split: float = 0.0) -> tuple[Array, ...]:
    """``(x_train, t_train, x_val, t_val, x_test, t_test, num_classes)`` on ``device`` (x cast to
    ``dtype``) after every check; the last ``validation_split`` of the training rows become the
    validation set (``None`` without); ``x_test``/``t_test`` may both be ``None``."""
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
        n = int(x_train.shape[0])
        held = int(n * validation_split)
        if validation_split and not 0 < held < n:
            raise ValueError(f"validation_split: {validation_split} of {n} training samples holds out {held}; "
                             "choose a fraction that keeps at least one sample on each side")
        x_val = t_val = None
        if held:
            x_train, x_val, t_train, t_val = x_train[:n - held, ...], x_train[n - held:, ...], \
                t_train[:n - held, ...], t_train[n - held:, ...]
    return x_train, t_train, x_val, t_val, x_test, t_test, num_classes


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
        row = first_nonfinite_row(x)
        if row is not None:
            raise ValueError(f"{x_name}: row {row} holds NaN or inf (as {x.dtype}); the data must be finite")
        return x, _checked_labels(t_name, t, num_classes, device, dtype)


def check_batches(has_buffers: bool, train_size: int, batch_size: int, sampling: str) -> None:
    """Refuse batch sizes that give a net with BatchNorm (``has_buffers``) a one-sample training
    batch (its batch variance is 0: it would output ``beta`` and learn a zero running variance)."""
    if not has_buffers:
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
    try:
        scores = network.predict(x_train[:1, ...])
    except Exception as exc:
        raise ValueError(f"x_train: samples of shape {sample_shape} do not fit the network"
                         f"{expected_input(network)}: {exc}") from exc
    if scores.ndim != 2 or scores.shape[0] != 1:
        raise ValueError(f"network.predict: expected scores of shape (1, classes) for one sample of "
                         f"x_train, got {tuple(scores.shape)}")
    return int(scores.shape[1])


def first_nonfinite_row(x: Array) -> int | None:
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
        if "learning_rate" in optimizer_param:
            raise TypeError("optimizer_param: the learning rate is called 'lr' here (as in the book): "
                            f"optimizer_param={{'lr': {optimizer_param['learning_rate']!r}}}")
        return get_optimizer(optimizer, **dict(optimizer_param))
    if not callable(getattr(optimizer, "update", None)):
        raise TypeError(f"optimizer: expected a name or an object with update(params, grads), "
                        f"got {type(optimizer).__name__}")
    if optimizer_param is not DEFAULT_OPTIMIZER_PARAM:
        raise ValueError("optimizer_param: only used with an optimizer name; "
                         "this optimizer is already built, configure it directly")
    return optimizer


def check_network(network: Any) -> None:
    missing = [name for name in ("gradient", "loss", "predict", "accuracy")
               if not callable(getattr(network, name, None))]
    if missing:
        raise TypeError(f"network: expected the book's interface, missing method(s) {', '.join(missing)}")
    params = getattr(network, "params", None)
    if not isinstance(params, dict) or not params:
        raise TypeError("network: expected a non-empty dict network.params of parameter arrays")
