"""Checkpoints of the training loop, one ``.npz`` written atomically: ``params/<key>``, ``buffers/<name>``,
``optimizer/<name>/<key>``, ``best/...``, ``sampler/order`` and ``meta`` (JSON as uint8: counters, history,
optimizer class and scalars, random states, the best score).  :func:`load` checks everything before it
changes anything; each error is a :class:`CheckpointError` naming the file."""

from __future__ import annotations

import json
import os
from typing import Any, Union

from array_api_compat import is_array_api_obj

from .backend import Generator, reachable, to_numpy
from .io import load_arrays, load_json, save_arrays

PathLike = Union[str, "os.PathLike[str]"]
__all__ = ["FORMAT", "CheckpointError", "buffers", "generators", "check_checkpointable", "check_resume", "save",
           "load"]

FORMAT = 4
"""4: buffers named by path, the sampler's order and ``epoch_iter`` (a mid-epoch save resumes)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit this run; the message names the file."""


def buffers(network: Any) -> dict[str, tuple[Any, str]]:
    """Non-parameter state, ``path -> (owner, attribute)``: what a layer declares ``persistent``, else (a user's
    class) BatchNorm's ``running_mean``/``running_var`` by name."""
    found = {}
    for path, obj in reachable(network, "network"):
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict) and not is_array_api_obj(obj):
            names = getattr(type(obj), "persistent", None)
            names = [n for n in ("running_mean", "running_var") if n in attributes] if names is None else names
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


def check_resume(resume: Any, checkpoint: str | None) -> str | None:
    """The checkpoint path to resume from (``None``: start fresh); ``resume`` is a path or a bool."""
    if resume is None or isinstance(resume, bool):
        if resume and checkpoint is None:
            raise ValueError("resume=True continues from the checkpoint file, but checkpoint is None")
        return checkpoint if resume else None
    if not isinstance(resume, (str, os.PathLike)):
        raise TypeError(f"resume: expected a checkpoint path (str or os.PathLike) or a bool, "
                        f"got {type(resume).__name__} {resume!r}")
    if not os.path.isfile(resume):
        raise FileNotFoundError(f"resume: no checkpoint file {os.fspath(resume)!r}")
    return os.fspath(resume)


def save(loop: Any, path: PathLike) -> None:
    """Write the loop's whole state to ``path`` atomically (an interruption leaves a previous file intact)."""
    check_checkpointable(loop.optimizer)
    loop.flush()
    state, best = loop.optimizer.state_dict(), None if loop.best is None else loop.best.record
    arrays = {**loop.arrays(), **{f"optimizer/{key}": value for key, value in state.items()},
              **{f"best/{key}": value for key, value in (loop.best.state if best else {}).items()},
              "sampler/order": getattr(loop.sampler, "order", None)}
    meta = {"format": FORMAT, **{key: getattr(loop, key) for key in _COUNTERS}, "history": loop.history,
            "optimizer": {"class": type(loop.optimizer).__name__,
                          "scalars": {key: value for key, value in state.items() if not is_array_api_obj(value)}},
            "rng": loop.rng.state, "generators": {name: gen.state for name, gen in loop.generators.items()},
            "best": best, "time_idx": getattr(loop.sampler, "time_idx", 0)}
    arrays = {key: to_numpy(value) for key, value in arrays.items() if is_array_api_obj(value)}  # unset: left out
    arrays["meta"] = to_numpy(bytearray(json.dumps(meta).encode("utf-8")))  # uint8: io keeps numbers only
    save_arrays(path, arrays)


def load(loop: Any, path: PathLike) -> None:
    """Validate the checkpoint at ``path`` against ``loop`` completely, then restore the whole state on the
    loop's device (params in place).  Nothing changes on error."""
    check_checkpointable(loop.optimizer)
    where = f"checkpoint {os.fspath(path)!r}"
    try:
        arrays = load_arrays(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # damaged zips, the restricted unpickler's refusals, NumPy's format errors
        raise CheckpointError(f"{where}: cannot be read, the file is damaged or not a checkpoint "
                              f"({type(exc).__name__}: {exc})") from exc
    meta, expected = _meta(arrays, where, loop), loop.arrays()
    if meta["best"] is not None:
        expected.update({f"best/{key}": value for key, value in expected.items()})
    saved, names = meta["optimizer"], getattr(loop.optimizer, "state_names", ())
    _require(saved["class"] == type(loop.optimizer).__name__, where,
             f"saved with optimizer {saved['class']}, this run uses {type(loop.optimizer).__name__}")
    _require(set(saved["scalars"]) <= set(names) and all(map(_count, saved["scalars"].values())), where,
             f"optimizer scalars {saved['scalars']} are not {saved['class']}'s counts")
    if meta["iteration"] > 0 or any(key.startswith("optimizer/") for key in arrays):  # every state, once stepped
        expected.update({f"optimizer/{name}/{key}": value for name in names if name not in saved["scalars"]
                         for key, value in loop.params.items()})
    _check_arrays(arrays, expected, where)
    state = {**{key[10:]: v for key, v in arrays.items() if key.startswith("optimizer/")}, **saved["scalars"]}
    order = arrays.get("sampler/order")
    _require(order is None or tuple(order.shape) == (loop.sampler.n,), where,
             f"sampler/order does not fit the {loop.sampler.n} rows of the data")
    _require(set(meta["generators"]) == set(loop.generators), where, f"random generators "
             f"{sorted(meta['generators'])} do not match the network's {sorted(loop.generators)}")
    for name, value in [("rng", meta["rng"]), *((f"generators[{k!r}]", v) for k, v in meta["generators"].items())]:
        _check_generator_state(name, value, where)

    device = loop.device
    loop.load_state(arrays)
    loop.optimizer.load_state_dict({k: device.asarray(v) if is_array_api_obj(v) else v for k, v in state.items()})
    if loop.best is not None:
        best = {key[5:]: device.asarray(value) for key, value in arrays.items() if key.startswith("best/")}
        loop.best.record, loop.best.state = meta["best"], best or None
    loop.sampler.order = None if order is None else device.asarray(order)
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


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_COUNTERS = ("epoch", "iteration", "epoch_iter")
_META = {  # key: (check, what it must be); "rng" and "generators" states are checked on a Generator
    **{key: (_count, "an int >= 0") for key in (*_COUNTERS, "time_idx")},
    "history": (lambda v: isinstance(v, dict) and all(isinstance(values, list) and all(map(_number, values))
                                                      for values in v.values()), "lists of numbers by name"),
    "optimizer": (lambda v: isinstance(v, dict) and isinstance(v.get("class"), str) and isinstance(v.get("scalars"), dict),
                  "{'class', 'scalars'}"),
    "best": (lambda v: v is None or (isinstance(v, dict) and set(v) == {"epoch", "metric", "value"} and _count(v["epoch"])
                                     and _number(v["value"]) and isinstance(v["metric"], str)),
             "null or {'epoch', 'metric', 'value'}"),
    "rng": (lambda v: True, "a random state"),
    "generators": (lambda v: isinstance(v, dict), "an object"),
}


def _meta(arrays: dict[str, Any], where: str, loop: Any) -> dict[str, Any]:
    _require("meta" in arrays, where, "not a Trainer checkpoint (no 'meta' entry)")
    try:
        meta = load_json(arrays["meta"].tobytes().decode("utf-8"), "'meta'")
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{where}: its 'meta' entry is not valid JSON ({exc})") from None
    _require(isinstance(meta, dict), where, "its 'meta' entry is not a JSON object")
    _require(meta.get("format") == FORMAT, where, f"format {meta.get('format')!r}, this version of xpnet reads "
             f"{FORMAT} (a checkpoint of an earlier xpnet: start a new run, or resume with that version)")
    _require(set(_META) <= set(meta), where, f"its metadata lacks {[key for key in _META if key not in meta]}")
    for key, (check, what) in _META.items():
        _require(check(meta[key]), where, f"metadata {key!r} must be {what}, got {meta[key]!r:.80}")
    history = meta["history"]
    _require(set(history) == set(loop.history), where, f"metadata 'history' must hold exactly {sorted(loop.history)}")
    lengths = {"train_loss_list": meta["iteration"], **loop.history_lengths(meta["epoch"], meta["iteration"])}
    _require(all(len(history[key]) == n for key, n in lengths.items()) and meta["epoch_iter"] <= meta["iteration"],
             where, f"its history does not match its epoch {meta['epoch']} and iteration {meta['iteration']}")
    _require(meta["best"] is not None or not any(key.startswith("best/") for key in arrays), where,
             "holds a best state but its metadata has no 'best' entry")
    return meta


def _name(dtype: Any) -> str:
    return str(dtype).rsplit(".", 1)[-1]


def _check_arrays(arrays: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """Every expected params/buffers/best/optimizer array is saved with its shape and dtype, and no
    other; a buffer not created yet (``None``) may be saved with any shape."""
    unset = {key for key, value in expected.items() if value is None}
    saved = {key for key in arrays if key.split("/")[0] in ("params", "buffers", "best", "optimizer")} - unset
    missing, unknown = sorted(set(expected) - unset - saved), sorted(saved - set(expected))
    _require(not (missing or unknown), where, f"arrays do not match the network's: missing {missing or 'none'}, "
             f"unknown {unknown or 'none'}")
    for key in sorted(saved, key=lambda k: (k.startswith("best/"), k)):
        value, own = arrays[key], expected[key]
        _require(tuple(value.shape) == tuple(own.shape) and _name(value.dtype) == _name(own.dtype), where,
                 f"{key} has shape {tuple(value.shape)} and dtype {_name(value.dtype)}, the network's has "
                 f"{tuple(own.shape)} and {_name(own.dtype)}")


def _check_generator_state(name: str, state: Any, where: str) -> None:
    """Set ``state`` on a scratch generator (NumPy checks the bit generator's state there)."""
    try:
        _require(set(state) == {"host", "pool", "pool_used"} and _count(state["pool_used"])
                 and state["pool_used"] <= Generator.POOL_SIZE, where, f"metadata {name} is not a generator state")
        book = isinstance(state["host"], dict) and state["host"].get("bit_generator") == "MT19937"
        kept = Generator().state if book else None  # the book's is NumPy's global state: put it back
        try:
            (Generator() if book else Generator(0)).state = state
        finally:
            if book:
                Generator().state = kept
        if state["pool"] is not None:
            Generator(0).state = {"host": state["pool"], "pool": None, "pool_used": 0}
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{where}: metadata {name} is not a valid random state ({exc})") from exc
