"""Trainer checkpoints: what is saved, how a file is validated, and how a run resumes from it.

A checkpoint is one ``.npz`` (written atomically by :func:`xpnet.io.save_arrays`) holding

* ``params/<key>``: the network's parameters;
* ``buffers/<name>``: its non-parameter state (BatchNorm running statistics), found by
  :func:`buffers`;
* ``optimizer/<name>/<key>``: the optimizer's state arrays (``state_dict()``);
* ``best/params/<key>``, ``best/buffers/<name>``: the best epoch's state so far (see
  :class:`xpnet.trainer.Trainer`), when there is one;
* ``meta``: JSON (as uint8 bytes) with the format number, epoch, iteration, history,
  the optimizer's class and scalars, every RNG state and the best epoch's score.

:func:`load` reads and checks EVERYTHING (every array's presence, shape and dtype,
every metadata key and type, every RNG state) before it changes anything, so a
damaged or mismatched file leaves the Trainer and its network exactly as they were;
every error is a :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Union

from array_api_compat import is_array_api_obj

from .backend import Generator, reachable, to_numpy
from .io import load_arrays, load_json, save_arrays

PathLike = Union[str, "os.PathLike[str]"]
Array = Any

__all__ = ["FORMAT", "CheckpointError", "buffers", "generators", "check_checkpointable", "save", "load",
           "copy_state"]

FORMAT = 3
"""3: buffers keyed like ``Net.save_params``, history has ``epoch_loss``, the best state is kept."""

_BUFFER_NAMES = ("running_mean", "running_var")
_HISTORY_KEYS = ("train_loss_list", "train_acc_list", "test_acc_list", "epoch_loss", "epoch_time",
                 "samples_per_sec")
_META_KEYS = ("format", "epoch", "iteration", "history", "optimizer", "rng", "generators", "best")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit this Trainer; the message names the file."""


def buffers(network: Any) -> dict[str, tuple[Any, str]]:
    """The network's non-parameter state worth saving: name -> ``(owner, attribute)``.

    xpnet's nets register theirs (``Net._buffers``, the keys of ``save_params``); for a
    book-style user net, every ``running_mean``/``running_var`` attribute reachable from
    it (BatchNorm's running statistics), named by its path.
    """
    registered = getattr(network, "_buffers", None)
    if isinstance(registered, dict):
        return dict(registered)
    found = {}
    for path, obj in reachable(network, "network"):
        attributes = getattr(obj, "__dict__", None)
        if isinstance(attributes, dict) and not is_array_api_obj(obj):
            found.update({f"{path}.{name}": (obj, name) for name in _BUFFER_NAMES if name in attributes})
    return found


def generators(network: Any) -> dict[str, Generator]:
    """Every :class:`~xpnet.backend.Generator` reachable from ``network``, by path."""
    return {path: obj for path, obj in reachable(network, "network") if isinstance(obj, Generator)}


def check_checkpointable(optimizer: Any) -> None:
    """``TypeError`` unless ``optimizer`` has ``state_dict()``/``load_state_dict()``."""
    if not (callable(getattr(optimizer, "state_dict", None)) and callable(getattr(optimizer, "load_state_dict", None))):
        raise TypeError(f"checkpoint/resume: the optimizer {type(optimizer).__name__} has no "
                        "state_dict()/load_state_dict(); use one of xpnet.optimizer's")


def copy_state(network: Any) -> dict[str, Array]:
    """Copies (on the network's device, no host transfer) of its params and buffers, keyed
    ``params/<key>`` and ``buffers/<name>``: a snapshot later steps leave alone."""
    from array_api_compat import array_namespace

    state = {f"params/{key}": array_namespace(value).asarray(value, copy=True)
             for key, value in network.params.items()}
    for name, (owner, attr) in buffers(network).items():
        value = getattr(owner, attr)
        if is_array_api_obj(value):  # a book-style BatchNorm has none before its first forward pass
            state[f"buffers/{name}"] = array_namespace(value).asarray(value, copy=True)
    return state


# ----------------------------------------------------------------------- saving

def save(trainer: Any, path: PathLike) -> None:
    """Write ``trainer``'s whole state to ``path`` atomically (an interruption, Ctrl-C or a
    kill, leaves any previous file at ``path`` intact)."""
    check_checkpointable(trainer.optimizer)
    arrays = {key: to_numpy(value) for key, value in copy_state(trainer.network).items()}
    scalars = {}
    for key, value in trainer.optimizer.state_dict().items():
        if is_array_api_obj(value):
            arrays[f"optimizer/{key}"] = to_numpy(value)
        else:
            scalars[key] = value
    best = trainer.best
    if best is not None:
        arrays.update({f"best/{key}": to_numpy(value) for key, value in trainer._best_state.items()})
    meta = {
        "format": FORMAT,
        "epoch": trainer.current_epoch,
        "iteration": trainer.current_iter,
        "history": trainer.history,
        "optimizer": {"class": type(trainer.optimizer).__name__, "scalars": scalars},
        "rng": trainer.rng.state,
        "generators": {name: gen.state for name, gen in generators(trainer.network).items()},
        "best": best,
    }
    arrays["meta"] = to_numpy(bytearray(json.dumps(meta).encode("utf-8")))  # uint8: io keeps numbers only
    save_arrays(path, arrays)


# ---------------------------------------------------------------------- loading

def load(trainer: Any, path: PathLike) -> None:
    """Validate the checkpoint at ``path`` against ``trainer`` completely, then restore it:
    params (in place, so layers still share them), buffers, optimizer state, counters,
    history, best state and RNG states, on the trainer's device.  Nothing changes on error."""
    check_checkpointable(trainer.optimizer)
    where = f"checkpoint {os.fspath(path)!r}"
    arrays = _read(path, where)
    meta = _meta(arrays, where)
    params = trainer.network.params
    own_buffers = buffers(trainer.network)
    expected = {f"params/{key}": value for key, value in params.items()}
    expected.update({f"buffers/{name}": getattr(owner, attr) for name, (owner, attr) in own_buffers.items()})
    unset = {key for key, value in expected.items() if value is None}  # optional, any shape
    _check_group(arrays, "params/", expected, unset, where)
    _check_group(arrays, "buffers/", expected, unset, where)
    if meta["best"] is not None:
        _check_group(arrays, "best/", {f"best/{key}": value for key, value in expected.items()},
                     {f"best/{key}" for key in unset}, where)
    elif any(key.startswith("best/") for key in arrays):
        raise CheckpointError(f"{where}: holds a best state but its metadata has no 'best' entry")
    optimizer_state = _check_optimizer(trainer.optimizer, arrays, meta, params, where)
    own_generators = generators(trainer.network)
    if set(meta["generators"]) != set(own_generators):
        raise CheckpointError(f"{where}: random generators {sorted(meta['generators'])} do not match "
                              f"the network's {sorted(own_generators)}")
    for name, state in [("rng", meta["rng"]), *((f"generators[{k!r}]", v) for k, v in meta["generators"].items())]:
        _check_generator_state(name, state, where)

    device = trainer.device
    with device.activate():
        for key in params:
            params[key][...] = device.asarray(arrays[f"params/{key}"], dtype=params[key].dtype)
        for name, (owner, attr) in own_buffers.items():
            if f"buffers/{name}" in arrays:
                setattr(owner, attr, device.asarray(arrays[f"buffers/{name}"]))
        trainer.optimizer.load_state_dict({key: device.asarray(value) if is_array_api_obj(value) else value
                                           for key, value in optimizer_state.items()})
        best_state = {key[len("best/"):]: device.asarray(value) for key, value in arrays.items()
                      if key.startswith("best/")}
    for name, gen in own_generators.items():
        gen.state = meta["generators"][name]
    trainer.rng.state = meta["rng"]
    trainer._restore(meta["epoch"], meta["iteration"], meta["history"], meta["best"], best_state or None)


def _read(path: PathLike, where: str) -> dict[str, Any]:
    try:
        return load_arrays(path)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{where}: cannot be read, the file is damaged or not a checkpoint "
                              f"({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # the restricted unpickler's refusals and NumPy's format errors
        raise CheckpointError(f"{where}: cannot be read ({type(exc).__name__}: {exc})") from exc


def _meta(arrays: dict[str, Any], where: str) -> dict[str, Any]:
    raw = arrays.get("meta")
    if raw is None:
        raise CheckpointError(f"{where}: not a Trainer checkpoint (no 'meta' entry)")
    try:
        meta = load_json(raw.tobytes().decode("utf-8"), "'meta'")
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{where}: its 'meta' entry is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: its 'meta' entry is not a JSON object")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{where}: format {meta.get('format')!r}, this version reads {FORMAT}")
    missing = [key for key in _META_KEYS if key not in meta]
    if missing:
        raise CheckpointError(f"{where}: its metadata lacks {missing}")
    for key in ("epoch", "iteration"):
        if isinstance(meta[key], bool) or not isinstance(meta[key], int) or meta[key] < 0:
            raise CheckpointError(f"{where}: metadata {key!r} must be an int >= 0, got {meta[key]!r}")
    history = meta["history"]
    if not isinstance(history, dict) or set(history) != set(_HISTORY_KEYS):
        raise CheckpointError(f"{where}: metadata 'history' must hold exactly {list(_HISTORY_KEYS)}")
    for key, values in history.items():
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in values):
            raise CheckpointError(f"{where}: metadata history[{key!r}] must be a list of numbers")
    if len(history["train_acc_list"]) != meta["epoch"] or len(history["train_loss_list"]) != meta["iteration"]:
        raise CheckpointError(f"{where}: its history does not match its epoch {meta['epoch']} "
                              f"and iteration {meta['iteration']}")
    optimizer = meta["optimizer"]
    if not (isinstance(optimizer, dict) and isinstance(optimizer.get("class"), str)
            and isinstance(optimizer.get("scalars"), dict)):
        raise CheckpointError(f"{where}: metadata 'optimizer' must be {{'class': str, 'scalars': dict}}")
    best = meta["best"]
    if best is not None and not (isinstance(best, dict) and set(best) == {"epoch", "metric", "value"}
                                 and isinstance(best["epoch"], int) and isinstance(best["value"], (int, float))
                                 and best["metric"] in ("test_acc", "train_loss")):
        raise CheckpointError(f"{where}: metadata 'best' must be null or {{'epoch', 'metric', 'value'}}")
    if not isinstance(meta["generators"], dict):
        raise CheckpointError(f"{where}: metadata 'generators' must be an object")
    return meta


def _dtype_name(dtype: Any) -> str:
    return str(dtype).rsplit(".", 1)[-1]


def _check_group(arrays: dict[str, Any], prefix: str, expected: dict[str, Array], unset: set[str],
                 where: str) -> None:
    """Every ``expected`` key under ``prefix`` is in ``arrays`` with the same shape and dtype, and
    no other; keys in ``unset`` (buffers not created yet) may be there, with any shape."""
    wanted = {key for key in expected if key.startswith(prefix) and key not in unset}
    saved = {key for key in arrays if key.startswith(prefix)} - unset
    missing, unknown = sorted(wanted - saved), sorted(saved - wanted)
    if missing or unknown:
        raise CheckpointError(f"{where}: {prefix[:-1]} do not match the network's: "
                              f"missing {missing or 'none'}, unknown {unknown or 'none'}")
    for key in sorted(wanted):
        value, own = arrays[key], expected[key]
        if tuple(value.shape) != tuple(own.shape):
            raise CheckpointError(f"{where}: {key} has shape {tuple(value.shape)}, "
                                  f"the network's has {tuple(own.shape)}")
        if _dtype_name(value.dtype) != _dtype_name(own.dtype):
            raise CheckpointError(f"{where}: {key} has dtype {_dtype_name(value.dtype)}, "
                                  f"the network's is {_dtype_name(own.dtype)}")


def _check_optimizer(optimizer: Any, arrays: dict[str, Any], meta: dict[str, Any], params: dict[str, Array],
                     where: str) -> dict[str, Any]:
    """The optimizer state to load, after checking its class, every array's presence, shape
    and dtype (each ``<name>/<param key>`` once the run has taken a step) and the scalars."""
    saved_class = meta["optimizer"]["class"]
    if saved_class != type(optimizer).__name__:
        raise CheckpointError(f"{where}: saved with optimizer {saved_class}, "
                              f"this Trainer uses {type(optimizer).__name__}")
    state = {key[len("optimizer/"):]: value for key, value in arrays.items() if key.startswith("optimizer/")}
    scalars = meta["optimizer"]["scalars"]
    for key, value in state.items():
        name, _, param = key.partition("/")
        if param not in params:
            raise CheckpointError(f"{where}: optimizer state {key!r} names no parameter of the network")
        if tuple(value.shape) != tuple(params[param].shape) \
                or _dtype_name(value.dtype) != _dtype_name(params[param].dtype):
            raise CheckpointError(f"{where}: optimizer state {key!r} has shape {tuple(value.shape)} and dtype "
                                  f"{_dtype_name(value.dtype)}; the parameter has {tuple(params[param].shape)} "
                                  f"and {_dtype_name(params[param].dtype)}")
    names = getattr(optimizer, "state_names", None)
    if names is not None:
        for name in names:
            present = {key.partition("/")[2] for key in state if key.partition("/")[0] == name}
            if name in scalars:
                if isinstance(scalars[name], bool) or not isinstance(scalars[name], int) or scalars[name] < 0:
                    raise CheckpointError(f"{where}: optimizer scalar {name!r} must be an int >= 0, "
                                          f"got {scalars[name]!r}")
            elif present or meta["iteration"] > 0:
                missing = sorted(set(params) - present)
                if missing:
                    raise CheckpointError(f"{where}: optimizer {saved_class} state {name!r} is missing for "
                                          f"{missing}")
        unknown = sorted(set(scalars) - set(names)) + sorted(k for k in state if k.partition("/")[0] not in names)
        if unknown:
            raise CheckpointError(f"{where}: optimizer state {unknown} is not {saved_class}'s")
    return {**state, **scalars}


def _check_generator_state(name: str, state: Any, where: str) -> None:
    """Set ``state`` on a scratch generator (NumPy checks the bit generator's state there)."""
    if not (isinstance(state, dict) and set(state) == {"host", "pool", "pool_used"}):
        raise CheckpointError(f"{where}: metadata {name} must be a generator state {{'host', 'pool', 'pool_used'}}")
    used = state["pool_used"]
    if isinstance(used, bool) or not isinstance(used, int) or not 0 <= used <= Generator.POOL_SIZE:
        raise CheckpointError(f"{where}: metadata {name}['pool_used'] must be an int in 0..{Generator.POOL_SIZE}")
    try:
        Generator().state = state
        if state["pool"] is not None:
            Generator().state = {"host": state["pool"], "pool": None, "pool_used": 0}
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{where}: metadata {name} is not a valid random state ({exc})") from exc
