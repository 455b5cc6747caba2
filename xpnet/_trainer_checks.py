"""The training loop's checks, run once before the first step (and by ``Trainer.evaluate``): arguments,
output paths (compared by their real path), data (shapes, NaN/inf naming the row, labels once, so
steps need no per-step check) and batch sizes that would hand BatchNorm a single sample."""

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
DEFAULT_OPTIMIZER_PARAM: Mapping[str, float] = types.MappingProxyType({"lr": 0.01})


def check_outputs(paths: Mapping[str, Any]) -> dict[str, str | None]:
    """A run's outputs (name -> path or ``None``) checked writable; two that are one real file
    (``a.npz``, ``./a.npz``, ``x/../a.npz``, a symlink) are refused, naming both."""
    checked, seen = {name: None if p is None else writable_file(name, p) for name, p in paths.items()}, {}
    for name, real in ((name, os.path.realpath(path)) for name, path in checked.items() if path is not None):
        if real in seen:
            raise ValueError(f"{name}: {checked[name]!r} is the same file as {seen[real]}; each output needs its own file")
        seen[real] = name
    return checked


def make_folders(paths: Mapping[str, str | None]) -> None:
    for path in paths.values():
        if path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def check_data(network: Any, device: Device, dtype: Any, x_train: Any, t_train: Any, x_test: Any, t_test: Any,
               validation_split: float = 0.0) -> tuple[Any, ...]:
    """``(x_train, t_train, x_val, t_val, x_test, t_test, num_classes)`` on ``device``, checked; the
    last ``validation_split`` of the training rows are the validation set (``None`` without)."""
    if (x_test is None) != (t_test is None):
        raise ValueError("x_test, t_test: give both or neither (None: no test evaluation)")
    with device.activate():
        x_train = device.asarray(x_train, dtype=dtype)
        if x_train.ndim < 1 or x_train.shape[0] == 0:
            raise ValueError(f"x_train: empty (shape {tuple(x_train.shape)}); the Trainer needs at least one sample")
        shape, first = tuple(x_train.shape[1:]), next(iter(network.params.values()))
        try:
            scores = network.predict(x_train[:1, ...])
        except Exception as exc:
            expects = f" (it expects {first.shape[0]} features per sample)" if first.ndim == 2 else ""
            raise ValueError(f"x_train: samples of shape {shape} do not fit the network{expects}: {exc}") from exc
        if scores.ndim != 2 or scores.shape[0] != 1:
            raise ValueError(f"network.predict: expected scores (1, classes) for one sample, got {tuple(scores.shape)}")
        classes = int(scores.shape[1])
        x_train, t_train = check_pair("x_train", x_train, "t_train", t_train, shape, classes, device, dtype)
        if x_test is not None:
            x_test, t_test = check_pair("x_test", x_test, "t_test", t_test, shape, classes, device, dtype)
        n = int(x_train.shape[0])
        held = int(n * validation_split)
        if validation_split and not 0 < held < n:
            raise ValueError(f"validation_split: {validation_split} of {n} training samples holds out {held}; "
                             "choose a fraction that leaves samples on both sides")
        x_val, t_val = (x_train[n - held:, ...], t_train[n - held:, ...]) if held else (None, None)
    return x_train[:n - held, ...], t_train[:n - held, ...], x_val, t_val, x_test, t_test, classes


def check_pair(x_name: str, x: Any, t_name: str, t: Any, shape: tuple[int, ...], classes: int, device: Device,
               dtype: Any, *, move_x: bool = True) -> tuple[Array, Array]:
    """``(x, t)`` checked (one label per sample, samples of ``shape``, no NaN/inf, labels in
    ``0..classes-1``); ``t`` on ``device`` (one-hot in ``dtype``, ``(N, 1)`` as ``(N,)``), ``x``
    too when ``move_x`` (else in its own namespace)."""
    with device.activate():
        x = device.asarray(x, dtype=dtype) if move_x or not is_array_api_obj(x) else x
        t = device.asarray(t)
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"{x_name}: empty (shape {tuple(x.shape)}); expected at least one sample")
        if t.ndim < 1 or t.shape[0] != x.shape[0]:
            raise ValueError(f"{t_name}: expected {x.shape[0]} labels (one per row of {x_name}), got shape {tuple(t.shape)}")
        if tuple(x.shape[1:]) != shape:
            raise ValueError(f"{x_name}: expected samples of shape {shape} (as x_train), got {tuple(x.shape[1:])}")
        row = first_nonfinite_row(x)
        if row is not None:
            raise ValueError(f"{x_name}: row {row} holds NaN or inf (as {x.dtype}); the data must be finite")
        try:
            check_labels(t, classes)
        except ValueError as exc:
            raise ValueError(f"{t_name}: {str(exc).removeprefix('t: ')} (the network has {classes} outputs)") from None
        one_hot = t.ndim == 2 and t.shape[1] == classes and classes > 1
        return x, device.asarray(t, dtype=dtype) if one_hot else device.xp.reshape(t, (-1,))


def first_nonfinite_row(x: Array) -> int | None:
    """Index of the first sample holding NaN or inf, or ``None`` (one host transfer)."""
    xp = array_namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        return None
    bad = xp.any(~xp.isfinite(xp.reshape(x, (x.shape[0], -1))), axis=1)
    return int(xp.argmax(xp.astype(bad, xp.int8))) if bool(xp.any(bad)) else None


def check_batches(has_buffers: bool, train_size: int, batch_size: int, sampling: str) -> None:
    """Refuse a one-sample training batch for a net with BatchNorm (``has_buffers``): its batch
    variance is 0, so it would output ``beta`` and learn a zero running variance."""
    whole = sampling == "replacement" or train_size <= batch_size
    if has_buffers and (min(batch_size, train_size) if whole else train_size % batch_size) == 1:
        raise ValueError(f"mini_batch_size: {train_size} training samples in batches of {batch_size} give a batch "
                         "of one sample, which BatchNorm cannot normalise; use another mini_batch_size or drop a sample")


def check_resume(resume: Any, checkpoint: str | None) -> str | None:
    """The checkpoint path to resume from (``None``: start fresh); ``resume`` is a path or a bool."""
    if resume is None or resume is False:
        return None
    if resume is True:
        if checkpoint is None:
            raise ValueError("resume=True continues from the checkpoint file, but checkpoint is None")
        return checkpoint
    if isinstance(resume, bool) or not isinstance(resume, (str, os.PathLike)):
        raise TypeError(f"resume: expected a checkpoint path (str or os.PathLike) or a bool, "
                        f"got {type(resume).__name__} {resume!r}")
    if not os.path.isfile(resume):
        raise FileNotFoundError(f"resume: no checkpoint file {os.fspath(resume)!r}")
    return os.fspath(resume)


def make_optimizer(optimizer: Any, optimizer_param: Mapping[str, float]) -> Any:
    if not isinstance(optimizer, str):
        if not callable(getattr(optimizer, "update", None)):
            raise TypeError(f"optimizer: expected a name or an object with update(params, grads), "
                            f"got {type(optimizer).__name__}")
        if optimizer_param is not DEFAULT_OPTIMIZER_PARAM:
            raise ValueError("optimizer_param: only used with an optimizer name; "
                             "this optimizer is already built, configure it directly")
        return optimizer
    if not isinstance(optimizer_param, Mapping):
        raise TypeError(f"optimizer_param: expected a dict such as {{'lr': 0.01}}, got {type(optimizer_param).__name__}")
    if "learning_rate" in optimizer_param:
        raise TypeError("optimizer_param: the learning rate is called 'lr' (as in the book): "
                        f"optimizer_param={{'lr': {optimizer_param['learning_rate']!r}}}")
    return get_optimizer(optimizer, **dict(optimizer_param))


def check_network(network: Any) -> None:
    missing = [name for name in ("gradient", "loss", "predict", "accuracy") if not callable(getattr(network, name, None))]
    if missing:
        raise TypeError(f"network: expected the book's interface, missing method(s) {', '.join(missing)}")
    if not isinstance(getattr(network, "params", None), dict) or not network.params:
        raise TypeError("network: expected a non-empty dict network.params of parameter arrays")
