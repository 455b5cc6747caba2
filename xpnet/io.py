"""Parameter files on the host: portable ``.npz`` archives and the book's pickles.

Nets hand this module NumPy copies of their arrays (``backend.to_numpy``) and get
NumPy arrays back, so a file written on one device loads on any other.

- :func:`save_arrays` writes a ``dict[str, numpy.ndarray]`` as ``.npz`` (or as the
  book's pickled dict when the name ends in ``.pkl``/``.pickle``), atomically:
  an interrupted save leaves any existing file untouched.
- :func:`load_arrays` reads either format, recognised by content, not by name.
  Pickles go through :class:`RestrictedUnpickler`, which rebuilds NumPy arrays
  of numbers and nothing else, so a file from an untrusted source can neither
  run code nor hand NumPy an object array to rebuild (which can crash it).
- :func:`remove_orphans` deletes the temporary files that a killed writer left
  (only xpnet's own temp names of one target, and only those no live writer holds).
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import math
import os
import pickle
import re
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Union

import numpy as np

try:  # NumPy >= 1.26 has numpy._core (the home of these helpers from NumPy 2 on)
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - NumPy < 1.26
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: an open file cannot be deleted there anyway
    fcntl = None

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "save_arrays", "load_arrays", "atomic_write", "remove_orphans", "hold_lock", "RestrictedUnpickler",
    "UnsafePickleError", "PICKLE_SUFFIXES",
]

PICKLE_SUFFIXES = (".pkl", ".pickle")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: The kinds of dtype a parameter file may hold: bool, signed and unsigned ints, floats.
_NUMERIC_KINDS = "biuf"


def hold_lock(fd: int) -> None:
    """Take an exclusive lock on the open file ``fd``, held until it is closed (or the process dies).

    :func:`remove_orphans` leaves a locked temporary file alone: its writer is alive.
    """
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def remove_orphans(folder: PathLike, pattern: str) -> list[Path]:
    """Delete the files of ``folder`` whose whole name matches the regex ``pattern`` and that no
    live process holds (:func:`hold_lock`); returns those deleted.

    Callers pass the pattern of their own temporary names for one target (e.g.
    ``\\.params\\.npz\\.[0-9a-f]{32}\\.tmp``), so a user's file is never touched.
    Links and folders are skipped.
    """
    folder, regex, removed = Path(folder), re.compile(pattern), []
    with contextlib.suppress(OSError):
        names = os.listdir(folder)
        for name in names:
            if regex.fullmatch(name) and _remove_if_unheld(folder / name):
                removed.append(folder / name)
    return removed


def _remove_if_unheld(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        return False
    try:
        if not os.path.isfile(path) or os.path.islink(path):
            return False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # a live writer holds it
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Create or replace the file ``path`` with what ``write(file)`` writes, atomically.

    The bytes go to a temporary file in the same directory, which is flushed,
    fsync'ed and then renamed over ``path`` (``os.replace``).  If ``write``
    raises or the process dies, ``path`` keeps its old content (or stays absent)
    and the temporary file is removed where possible.  Temporary files of ``path``
    that an earlier, killed writer left (``.<name>.<32 hex digits>.tmp``) are removed first.
    """
    path = Path(path)
    remove_orphans(path.parent, rf"\.{re.escape(path.name)}\.[0-9a-f]{{32}}\.tmp")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        hold_lock(fd)
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
    (``allow_pickle=False``; every member must be a ``.npy`` array of numbers), anything
    else as a pickle through :class:`RestrictedUnpickler`.  Returns name -> NumPy array.
    A damaged archive raises ``ValueError`` naming ``path``.
    """
    with open(path, "rb") as file:
        is_zip = file.read(4) in _ZIP_MAGIC
        file.seek(0)
        loaded = _load_npz(file, path) if is_zip else _load_pickled_dict(file, path)
    for key, value in loaded.items():
        _check_numeric(key, value)
    return loaded


def _load_npz(file: IO[bytes], path: PathLike) -> dict[str, np.ndarray]:
    try:
        with np.load(file, allow_pickle=False) as archive:
            others = [name for name in archive.zip.namelist() if not name.endswith(".npy")]
            if others:
                raise ValueError(f"{os.fspath(path)}: members {others} are not .npy arrays; "
                                 "expected an .npz archive of arrays only")
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError) as exc:
        if str(exc).startswith(os.fspath(path)):
            raise
        raise ValueError(f"{os.fspath(path)}: damaged .npz archive ({type(exc).__name__}: {exc})") from exc


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
        loaded[key] = np.asarray(value)  # a _CheckedArray becomes a plain ndarray
    return loaded


def _check_numeric(key: str, value: np.ndarray) -> None:
    if value.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"{key!r}: expected a numeric array, got dtype {value.dtype}")


def _numeric_dtype(dtype: Any) -> np.dtype:
    """``dtype`` if it is a plain dtype of numbers; else :class:`UnsafePickleError`."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS or dtype.hasobject \
            or dtype.fields is not None or dtype.subdtype is not None:
        flagged = " (flagged as holding objects)" if isinstance(dtype, np.dtype) and dtype.hasobject else ""
        raise UnsafePickleError(f"refused dtype {dtype!r}{flagged}: a parameter pickle holds numeric arrays only "
                                "(bool, int, uint, float)")
    return dtype


def _pickled_dtype(*args: Any) -> np.dtype:
    """``numpy.dtype(*args)`` for a pickle: refused, before NumPy builds anything with it, unless numeric."""
    if not args or not isinstance(args[0], str):
        raise UnsafePickleError(f"refused numpy.dtype{args!r}: expected a type code string")
    return _numeric_dtype(np.dtype(*args))


class _CheckedArray(np.ndarray):
    """What a pickled array is rebuilt as: its state is checked before NumPy's ``__setstate__`` sees it.

    NumPy's own ``__setstate__`` trusts its input; an object array whose element list
    is shorter than its shape crashes the process.  Loaded values are turned back into
    plain ``numpy.ndarray`` by :func:`load_arrays`.
    """

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("refused an array state that is not (version, shape, dtype, fortran, data)")
        shape, dtype, data = state[-4], state[-3], state[-1]
        _numeric_dtype(dtype)
        if not isinstance(shape, tuple) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise UnsafePickleError(f"refused array shape {shape!r}: expected a tuple of ints >= 0")
        if not isinstance(data, (bytes, bytearray)) or len(data) != math.prod(shape) * dtype.itemsize:
            size = len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__
            raise UnsafePickleError(
                f"refused array data ({size}): shape {shape} of {dtype} needs {math.prod(shape) * dtype.itemsize} bytes"
            )
        super().__setstate__(state)


def _pickled_reconstruct(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    """NumPy's ``_reconstruct`` for ``numpy.ndarray`` only, building a :class:`_CheckedArray`."""
    if cls is not np.ndarray:
        raise UnsafePickleError(f"refused to rebuild {cls!r}: only numpy.ndarray")
    return _multiarray._reconstruct(_CheckedArray, shape, typecode)


def _pickled_scalar(dtype: Any, data: Any) -> Any:
    """NumPy's ``scalar`` for numeric dtypes and raw bytes only."""
    _numeric_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise UnsafePickleError(f"refused a {dtype} scalar from {type(data).__name__}")
    return _multiarray.scalar(dtype, data)


def _pickled_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None) -> np.ndarray:
    """NumPy's ``_frombuffer`` (protocol 5) for numeric dtypes only."""
    _numeric_dtype(dtype)
    return _numeric._frombuffer(buf, dtype, shape, order, axis_order)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol 0-2 pickles use it for bytes, limited to latin-1."""
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global that :class:`RestrictedUnpickler` does not admit."""


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _pickled_dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
}
for _package in ("numpy.core", "numpy._core"):
    _SAFE_GLOBALS[(f"{_package}.multiarray", "_reconstruct")] = _pickled_reconstruct
    _SAFE_GLOBALS[(f"{_package}.multiarray", "scalar")] = _pickled_scalar
    _SAFE_GLOBALS[(f"{_package}.numeric", "_frombuffer")] = _pickled_frombuffer


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only what rebuilds NumPy arrays, dtypes and scalars.

    Dicts, lists, tuples, strings and numbers need no globals; the only globals
    admitted are NumPy's array/scalar reconstructors, ``numpy.ndarray``,
    ``numpy.dtype``, ``collections.OrderedDict`` and a latin-1-only
    ``_codecs.encode`` (old protocols' bytes).  The NumPy ones are wrapped: a dtype
    that is not bool/int/uint/float (object, void, structured, string) is refused
    when the pickle constructs it, and an array's state (shape, dtype, data length)
    is checked before NumPy's ``__setstate__`` runs.  Any other global (``os.system``,
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
