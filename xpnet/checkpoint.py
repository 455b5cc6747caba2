"""Checkpoints of the training loop (:class:`xpnet.loop.Loop`), one ``.npz`` written atomically:
``params/<key>``, ``buffers/<name>`` (what layers declare ``persistent``), ``optimizer/<name>/<key>``,
``best/...`` (the best epoch's params and buffers), ``sampler/order`` and ``meta`` (JSON as uint8:
format, counters, history, optimizer class and scalars, random states, the best epoch's score).
:func:`load` checks everything before it changes anything; each error is a :class:`CheckpointError`
naming the file.
"""

from __future__ import annotations

import json
import os
from typing import Any, Union

from array_api_compat import array_namespace, is_array_api_obj

from .backend import Generator, reachable, to_numpy
from .io import load_arrays, save_arrays

PathLike = Union[str, "os.PathLike[str]"]
Array = Any

__all__ = ["FORMAT", "CheckpointError", "buffers", "generators", "check_checkpointable", "save", "load",
           "copy_state"]

FORMAT = 4
"""4: buffers named by path, the sampler's order and ``epoch_iter`` (a mid-epoch save resumes)."""

_GUESSED = ("running_mean", "running_var")
_COUNTERS = ("epoch", "iteration", "epoch_iter")
_META = ("format", *_COUNTERS, "history", "optimizer", "rng", "generators", "best", "time_idx")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit this run; the message names the file."""


def buffers(network: Any) -> dict[str, tuple[Any, str]]:
    """Non-parameter state worth saving, by path: ``path -> (owner, attribute)``.  A layer
    declares its own (class attribute ``persistent``); for a user's class without the
    declaration, BatchNorm's ``running_mean``/``running_var`` attributes are found by name."""
    found = {}
    for path, obj in reachable(network, "network"):
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict) and not is_array_api_obj(obj):
            names = getattr(type(obj), "persistent", None)
            names = [n for n in _GUESSED if n in attributes] if names is None else names
            found.update({f"{path}.{name}": (obj, name) for name in names})
    return found


def generators(network: Any) -> dict[str, Generator]:
    """Every :class:`~xpnet.backend.Generator` reachable from ``network``, by path."""
    return {path: obj for path, obj in reachable(network, "network") if isinstance(obj, Generator)}


def check_checkpointable(optimizer: Any) -> None:
    """``TypeError`` unless ``optimizer`` has ``state_dict()``/``load_state_dict()``."""
    if not (callable(getattr(optimizer, "state_dict", None)) and callable(getattr(optimizer, "load_state_dict", None))):
        raise TypeError(f"checkpoint/resume: the optimizer {type(optimizer).__name__} has no "
                        "state_dict()/load_state_dict(); use one of xpnet.optimizer's")


def copy_state(loop: Any) -> dict[str, Array]:
    """Copies, made on the params' device, of the loop's params and buffers (``params/<key>``,
    ``buffers/<name>``): a snapshot later steps leave alone."""
    state = {f"params/{key}": value for key, value in loop.params.items()}
    state.update({f"buffers/{name}": getattr(owner, attr) for name, (owner, attr) in loop.buffers.items()})
    with loop.device.activate():  # CuPy copies onto the current device
        return {key: array_namespace(value).asarray(value, copy=True) for key, value in state.items()
                if is_array_api_obj(value)}  # a book-style BatchNorm has none before its first pass


def save(loop: Any, path: PathLike) -> None:
    """Write the loop's whole state to ``path`` atomically (an interruption leaves any previous
    file at ``path`` intact)."""
    check_checkpointable(loop.optimizer)
    loop.flush()
    arrays = {key: to_numpy(value) for key, value in copy_state(loop).items()}
    state = loop.optimizer.state_dict()
    arrays.update({f"optimizer/{key}": to_numpy(value) for key, value in state.items() if is_array_api_obj(value)})
    scalars = {key: value for key, value in state.items() if not is_array_api_obj(value)}
    best = None if loop.best is None else loop.best.record
    arrays.update({f"best/{key}": to_numpy(value) for key, value in (loop.best.state if best else {}).items()})
    arrays.update({} if loop.sampler.order is None else {"sampler/order": to_numpy(loop.sampler.order)})
    meta = {"format": FORMAT, **{key: getattr(loop, key) for key in _COUNTERS}, "history": loop.history,
            "optimizer": {"class": type(loop.optimizer).__name__, "scalars": scalars}, "rng": loop.rng.state,
            "generators": {name: gen.state for name, gen in loop.generators.items()}, "best": best,
            "time_idx": getattr(loop.sampler, "time_idx", 0)}
    arrays["meta"] = to_numpy(bytearray(json.dumps(meta).encode("utf-8")))  # uint8: io keeps numbers only
    save_arrays(path, arrays)


def load(loop: Any, path: PathLike) -> None:
    """Validate the checkpoint at ``path`` against ``loop`` completely, then restore params (in
    place, so layers still share them), buffers, optimizer state, counters, history, best
    state, sampler and random states on the loop's device.  Nothing changes on error."""
    check_checkpointable(loop.optimizer)
    where = f"checkpoint {os.fspath(path)!r}"
    try:
        arrays = load_arrays(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # damaged zips, the restricted unpickler's refusals, NumPy's format errors
        raise CheckpointError(f"{where}: cannot be read, the file is damaged or not a checkpoint "
                              f"({type(exc).__name__}: {exc})") from exc
    meta = _meta(arrays, where, loop)
    expected = {f"params/{key}": value for key, value in loop.params.items()}
    expected.update({f"buffers/{name}": getattr(owner, attr) for name, (owner, attr) in loop.buffers.items()})
    if meta["best"] is not None:
        expected.update({f"best/{key}": value for key, value in expected.items()})
    _check_arrays(arrays, expected, where)
    state = _check_optimizer(loop.optimizer, arrays, meta, loop.params, where)
    order = arrays.get("sampler/order")
    _require(order is None or tuple(order.shape) == (loop.sampler.n,), where,
             f"sampler/order does not fit the {loop.sampler.n} rows of the data")
    _require(set(meta["generators"]) == set(loop.generators), where, f"random generators "
             f"{sorted(meta['generators'])} do not match the network's {sorted(loop.generators)}")
    for name, value in [("rng", meta["rng"]), *((f"generators[{k!r}]", v) for k, v in meta["generators"].items())]:
        _check_generator_state(name, value, where)

    device = loop.device
    with device.activate():
        for key, value in loop.params.items():
            value[...] = device.asarray(arrays[f"params/{key}"], dtype=value.dtype)
        for name, (owner, attr) in loop.buffers.items():
            if f"buffers/{name}" in arrays:
                setattr(owner, attr, device.asarray(arrays[f"buffers/{name}"]))
        loop.optimizer.load_state_dict({k: device.asarray(v) if is_array_api_obj(v) else v for k, v in state.items()})
        best = {key[5:]: device.asarray(value) for key, value in arrays.items() if key.startswith("best/")}
        loop.sampler.order = None if order is None else device.asarray(order)
    if loop.best is not None:
        loop.best.record, loop.best.state = meta["best"], best or None
    for name, gen in loop.generators.items():
        gen.state = meta["generators"][name]
    loop.rng.state = meta["rng"]
    if hasattr(loop.sampler, "time_idx"):
        loop.sampler.time_idx = meta["time_idx"]
    loop.restore(meta, meta["history"])


def _require(ok: Any, where: str, what: str) -> None:
    if not ok:
        raise CheckpointError(f"{where}: {what}")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _meta(arrays: dict[str, Any], where: str, loop: Any) -> dict[str, Any]:
    _require("meta" in arrays, where, "not a Trainer checkpoint (no 'meta' entry)")
    try:
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{where}: its 'meta' entry is not valid JSON ({type(exc).__name__})") from None
    _require(isinstance(meta, dict), where, "its 'meta' entry is not a JSON object")
    _require(meta.get("format") == FORMAT, where, f"format {meta.get('format')!r}, this version of xpnet reads "
             f"{FORMAT} (a checkpoint of an earlier xpnet: start a new run, or resume with that version)")
    _require(set(_META) <= set(meta), where, f"its metadata lacks {[key for key in _META if key not in meta]}")
    for key in (*_COUNTERS, "time_idx"):
        _require(_count(meta[key]), where, f"metadata {key!r} must be an int >= 0, got {meta[key]!r}")
    history = meta["history"]
    _require(isinstance(history, dict) and set(history) == set(loop.history), where,
             f"metadata 'history' must hold exactly {sorted(loop.history)}")
    _require(all(isinstance(values, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
                 for values in history.values()), where, "metadata history must hold lists of numbers")
    lengths = {"train_loss_list": meta["iteration"], **loop.history_lengths(meta["epoch"], meta["iteration"])}
    _require(all(len(history[key]) == n for key, n in lengths.items()) and meta["epoch_iter"] <= meta["iteration"],
             where, f"its history does not match its epoch {meta['epoch']} and iteration {meta['iteration']}")
    optimizer, best = meta["optimizer"], meta["best"]
    _require(isinstance(optimizer, dict) and isinstance(optimizer.get("class"), str)
             and isinstance(optimizer.get("scalars"), dict), where, "metadata 'optimizer' must be {'class', 'scalars'}")
    _require(best is None or (isinstance(best, dict) and set(best) == {"epoch", "metric", "value"} and _count(best["epoch"])
                              and isinstance(best["value"], (int, float)) and isinstance(best["metric"], str)),
             where, "metadata 'best' must be null or {'epoch', 'metric', 'value'}")
    _require(best is not None or not any(key.startswith("best/") for key in arrays), where,
             "holds a best state but its metadata has no 'best' entry")
    _require(isinstance(meta["generators"], dict), where, "metadata 'generators' must be an object")
    return meta


def _name(dtype: Any) -> str:
    return str(dtype).rsplit(".", 1)[-1]


def _check_arrays(arrays: dict[str, Any], expected: dict[str, Array], where: str) -> None:
    """Every expected params/buffers/best array is saved with its shape and dtype, and no other;
    a buffer not created yet (``None``) may be saved with any shape."""
    unset = {key for key, value in expected.items() if value is None}
    saved = {key for key in arrays if key.split("/")[0] in ("params", "buffers", "best")} - unset
    missing, unknown = sorted(set(expected) - unset - saved), sorted(saved - set(expected))
    _require(not (missing or unknown), where, f"arrays do not match the network's: missing {missing or 'none'}, "
             f"unknown {unknown or 'none'}")
    for key in sorted(saved, key=lambda k: (k.startswith("best/"), k)):
        value, own = arrays[key], expected[key]
        _require(tuple(value.shape) == tuple(own.shape) and _name(value.dtype) == _name(own.dtype), where,
                 f"{key} has shape {tuple(value.shape)} and dtype {_name(value.dtype)}, the network's has "
                 f"{tuple(own.shape)} and {_name(own.dtype)}")


def _check_optimizer(optimizer: Any, arrays: dict[str, Any], meta: dict[str, Any], params: dict[str, Array],
                     where: str) -> dict[str, Any]:
    """The optimizer state to load, after checking its class, each ``<name>/<param key>`` array
    (shape, dtype; all of them once the run has taken a step) and the scalars."""
    saved_class, scalars = meta["optimizer"]["class"], meta["optimizer"]["scalars"]
    _require(saved_class == type(optimizer).__name__, where,
             f"saved with optimizer {saved_class}, this run uses {type(optimizer).__name__}")
    state = {key[len("optimizer/"):]: value for key, value in arrays.items() if key.startswith("optimizer/")}
    names = getattr(optimizer, "state_names", ())
    for key, value in state.items():
        name, _, param = key.partition("/")
        _require(name in names and param in params, where, f"optimizer state {key!r} is not {saved_class}'s for this network")
        own = params[param]
        _require(tuple(value.shape) == tuple(own.shape) and _name(value.dtype) == _name(own.dtype), where,
                 f"optimizer state {key!r} has shape {tuple(value.shape)} and dtype {_name(value.dtype)}; the "
                 f"parameter has {tuple(own.shape)} and {_name(own.dtype)}")
    for name in names:
        present = {key.partition("/")[2] for key in state if key.partition("/")[0] == name}
        if name in scalars:
            _require(_count(scalars[name]), where, f"optimizer scalar {name!r} must be an int >= 0, got {scalars[name]!r}")
        else:
            _require(not (present or meta["iteration"] > 0) or not set(params) - present, where,
                     f"optimizer {saved_class} state {name!r} is missing for {sorted(set(params) - present)}")
    _require(set(scalars) <= set(names), where, f"optimizer state {sorted(set(scalars) - set(names))} is not {saved_class}'s")
    return {**state, **scalars}


def _check_generator_state(name: str, state: Any, where: str) -> None:
    """Set ``state`` on a scratch generator (NumPy checks the bit generator's state there)."""
    try:
        _require(set(state) == {"host", "pool", "pool_used"} and _count(state["pool_used"])
                 and state["pool_used"] <= Generator.POOL_SIZE, where, f"metadata {name} is not a generator state")
        Generator(0).state = state
        if state["pool"] is not None:
            Generator(0).state = {"host": state["pool"], "pool": None, "pool_used": 0}
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{where}: metadata {name} is not a valid random state ({exc})") from exc
