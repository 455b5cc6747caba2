"""Parameter files on the host: portable ``.npz`` archives and the book's pickles.

Nets hand this module NumPy copies of their arrays (``backend.to_numpy``) and get
NumPy arrays back, so a file written on one device loads on any other.

- :func:`save_arrays` writes a ``dict[str, numpy.ndarray]`` as ``.npz`` (or as the
  book's pickled dict when the name ends in ``.pkl``/``.pickle``), atomically:
  an interrupted save leaves any existing file untouched.
- :func:`load_arrays` reads either format, recognised by content, not by name.
  Pickles go through :class:`RestrictedUnpickler`, which rebuilds NumPy arrays
  and nothing else, so a file from an untrusted source cannot run code.
"""

from __future__ import annotations

import codecs
import collections
import os
import pickle
import uuid
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Union

import numpy as np

try:  # NumPy >= 1.26 has numpy._core (the home of these helpers from NumPy 2 on)
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - NumPy < 1.26
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["save_arrays", "load_arrays", "atomic_write", "RestrictedUnpickler", "UnsafePickleError", "PICKLE_SUFFIXES"]

PICKLE_SUFFIXES = (".pkl", ".pickle")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Create or replace the file ``path`` with what ``write(file)`` writes, atomically.

    The bytes go to a temporary file in the same directory, which is flushed,
    fsync'ed and then renamed over ``path`` (``os.replace``).  If ``write``
    raises or the process dies, ``path`` keeps its old content (or stays absent)
    and the temporary file is removed where possible.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); directories cannot be opened for this on Windows."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_arrays(path: PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (name -> NumPy array) to ``path`` atomically.

    A name ending in ``.pkl`` or ``.pickle`` gives the book's format (a pickled
    ``dict`` of ndarrays, readable by the book's ``load_params``); any other name
    gives an ``.npz`` archive (written under exactly that name).
    """
    checked = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"arrays: keys must be non-empty strings, got {key!r}")
        if not isinstance(value, np.ndarray):
            raise TypeError(f"arrays[{key!r}]: expected a numpy.ndarray (use xpnet.backend.to_numpy), "
                            f"got {type(value).__name__}")
        _check_numeric(key, value)
        checked[key] = value
    if Path(path).suffix.lower() in PICKLE_SUFFIXES:
        atomic_write(path, lambda file: pickle.dump(checked, file, protocol=4))
    else:
        atomic_write(path, lambda file: np.savez(file, **checked))


def load_arrays(path: PathLike) -> dict[str, np.ndarray]:
    """Read a file written by :func:`save_arrays`, or the book's pickled dict of ndarrays.

    The format is recognised by content: a zip archive is read as ``.npz``
    (object arrays refused), anything else as a pickle through
    :class:`RestrictedUnpickler`.  Returns name -> NumPy array.
    """
    with open(path, "rb") as file:
        is_zip = file.read(4) in _ZIP_MAGIC
        file.seek(0)
        if is_zip:
            with np.load(file, allow_pickle=False) as archive:
                loaded = {key: archive[key] for key in archive.files}
        else:
            loaded = _load_pickled_dict(file, path)
    for key, value in loaded.items():
        _check_numeric(key, value)
    return loaded


def _load_pickled_dict(file: IO[bytes], path: PathLike) -> dict[str, np.ndarray]:
    try:
        obj = RestrictedUnpickler(file).load()
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise pickle.UnpicklingError(f"{os.fspath(path)}: neither an .npz archive nor a readable pickle ({exc})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{os.fspath(path)}: expected a pickled dict of arrays, got {type(obj).__name__}")
    loaded = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ValueError(f"{os.fspath(path)}: expected string keys, got {key!r}")
        if not isinstance(value, (np.ndarray, np.generic, int, float)) or isinstance(value, bool):
            raise ValueError(f"{os.fspath(path)}: value of {key!r} is a {type(value).__name__}, not an array")
        loaded[key] = np.asarray(value)
    return loaded


def _check_numeric(key: str, value: np.ndarray) -> None:
    if value.dtype.kind not in "biuf":
        raise ValueError(f"{key!r}: expected a numeric array, got dtype {value.dtype}")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol 0-2 pickles use it for bytes, limited to latin-1."""
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global that :class:`RestrictedUnpickler` does not admit."""


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
}
for _package in ("numpy.core", "numpy._core"):
    _SAFE_GLOBALS[(f"{_package}.multiarray", "_reconstruct")] = _multiarray._reconstruct
    _SAFE_GLOBALS[(f"{_package}.multiarray", "scalar")] = _multiarray.scalar
    _SAFE_GLOBALS[(f"{_package}.numeric", "_frombuffer")] = _numeric._frombuffer


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only what rebuilds NumPy arrays, dtypes and scalars.

    Dicts, lists, tuples, strings and numbers need no globals; the only globals
    admitted are NumPy's array/scalar reconstructors, ``numpy.ndarray``,
    ``numpy.dtype``, ``collections.OrderedDict`` and a latin-1-only
    ``_codecs.encode`` (old protocols' bytes).  Any other global (``os.system``,
    ``builtins.eval``, a class) raises :class:`UnsafePickleError` (a
    :class:`pickle.UnpicklingError`) naming it, before anything from the file is called.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused to load global '{module}.{name}': only NumPy arrays (in dicts/lists) may be "
                "read from a parameter pickle; this file holds something else and may be malicious"
            ) from None
