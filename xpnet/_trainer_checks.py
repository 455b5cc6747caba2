"""Checks the training front-ends share, run once before the first step (so steps need none)."""

from __future__ import annotations

import os
import types
from typing import Any, Mapping

from array_api_compat import array_namespace

from .functions import check_labels
from .optimizer import get_optimizer

Array = Any
DEFAULT_OPTIMIZER_PARAM: Mapping[str, float] = types.MappingProxyType({"lr": 0.01})


def make_folders(paths: Mapping[str, str | None]) -> None:
    """Create the folders of the (checked) output paths."""
    for path in paths.values():
        if path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def check_values(x_name: str, x: Array, t_name: str, t: Array | None, classes: int) -> None:
    """No NaN/inf in floating ``x`` (the first such row named) and labels ``t`` (unless ``None``) in
    ``0..classes-1``: one host read each, with ``x``'s device current."""
    xp = array_namespace(x)
    if xp.isdtype(x.dtype, "real floating"):
        bad = xp.any(~xp.isfinite(xp.reshape(x, (x.shape[0], -1))), axis=1)
        if bool(xp.any(bad)):
            raise ValueError(f"{x_name}: row {int(xp.argmax(xp.astype(bad, xp.int8)))} holds NaN or inf "
                             f"(as {x.dtype}); the data must be finite")
    if t is not None:
        try:
            check_labels(t, classes)
        except ValueError as exc:
            raise ValueError(f"{t_name}: {str(exc).removeprefix('t: ')} (the model has {classes} outputs)") from None


def check_batches(has_buffers: bool, train_size: int, batch_size: int, sampling: str) -> None:
    """Refuse a one-sample training batch for a net with BatchNorm (``has_buffers``): its batch
    variance is 0, so it would output ``beta`` and learn a zero running variance."""
    whole = sampling == "replacement" or train_size <= batch_size
    if has_buffers and (min(batch_size, train_size) if whole else train_size % batch_size) == 1:
        raise ValueError(f"mini_batch_size: {train_size} training samples in batches of {batch_size} give a batch "
                         "of one sample, which BatchNorm cannot normalise; use another mini_batch_size or drop a sample")


def make_optimizer(optimizer: Any, optimizer_param: Mapping[str, float]) -> Any:
    """``optimizer`` itself (an object with ``update``), or the one its name and ``optimizer_param`` build."""
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


def check_network(network: Any, methods: tuple[str, ...], params: Any, name: str = "network") -> None:
    """``TypeError`` unless ``network`` has ``methods`` and a non-empty ``params`` (a dict, or list/tuple)."""
    missing = [method for method in methods if not callable(getattr(network, method, None))]
    if missing:
        raise TypeError(f"{name}: expected the book's interface, missing method(s) {', '.join(missing)}")
    if not isinstance(getattr(network, "params", None), params) or not network.params:
        raise TypeError(f"{name}: expected a non-empty {'dict' if params is dict else 'list'} {name}.params of "
                        "parameter arrays")
