"""Parameter files on the host: portable ``.npz`` archives and the book's pickles.

Nets hand this module NumPy copies of their arrays (``backend.to_numpy``) and get
NumPy arrays back, so a file written on one device loads on any other.

- :func:`save_arrays` writes a ``dict[str, numpy.ndarray]`` as ``.npz`` (or as the
  book's pickled dict when the name ends in ``.pkl``/``.pickle``), atomically:
  an interrupted save leaves any existing file untouched, and writers of one file
  at once never lose a save.
- :func:`load_arrays` reads either format, recognised by content, not by name, with
  bounds: an archive member's header (name, dtype, shape) is checked against what the
  caller expects and against the member's size before its data is read, and the data
  unpacked is bounded; pickles go through :class:`RestrictedUnpickler`, which rebuilds
  NumPy arrays of numbers and nothing else, within bounds of nesting, memo and size.
  Every failure is an error naming the file.
- :func:`remove_orphans` deletes the temporary files that a killed writer left
  (only xpnet's own temp names of one target, and only those no live writer holds).
- :func:`check_target` refuses a path that cannot name a file to write, naming the argument.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import pickle
import re
import struct
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Union

import numpy as np

from .unpickle import NUMERIC_KINDS as _NUMERIC_KINDS
from .unpickle import RestrictedUnpickler, UnsafePickleError, numeric_dtype

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: an open file cannot be deleted there anyway
    fcntl = None

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "save_arrays", "load_arrays", "load_pickle", "atomic_write", "check_target", "remove_orphans", "hold_lock",
    "RestrictedUnpickler", "UnsafePickleError", "PICKLE_SUFFIXES", "MIN_UNPACKED", "MAX_RATIO", "load_json",
    "MAX_JSON_DEPTH",
]

PICKLE_SUFFIXES = (".pkl", ".pickle")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: Bytes an ``.npz`` may always unpack to, whatever its size on disk (see :func:`load_arrays`).
MIN_UNPACKED = 64 << 20
#: How many times its size on disk an ``.npz`` may unpack to beyond :data:`MIN_UNPACKED`.
MAX_RATIO = 32
#: Deepest nesting of arrays/objects xpnet reads from a JSON document (its own metadata needs 4).
MAX_JSON_DEPTH = 100
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


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


def check_target(path: Any, what: str = "path") -> Path:
    """``path`` as a :class:`~pathlib.Path` naming a file to write in an existing folder.

    Raises, naming ``what`` (the caller's argument): ``TypeError`` unless a path,
    ``ValueError`` for ``""`` or a name ending in a separator (a folder, not a file),
    ``IsADirectoryError`` for an existing folder, ``FileNotFoundError`` when its folder
    does not exist (xpnet does not create it: a typo would scatter files).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what}: expected a file path (str or os.PathLike), got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what}: expected a file name such as 'params.npz', got {text!r}")
    if text.endswith(tuple(sep for sep in (os.sep, os.altsep) if sep)) or os.path.basename(text) in (".", ".."):
        raise ValueError(f"{what}: {text!r} names a folder; give a file name in it, e.g. "
                         f"{os.path.join(text, 'params.npz')!r}")
    target = Path(text)
    if target.is_dir():
        raise IsADirectoryError(f"{what}: {text!r} is a folder; give a file name in it, e.g. "
                                f"{os.path.join(text, 'params.npz')!r}")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{what}: the folder {os.fspath(target.parent)!r} of {text!r} does not exist; "
                                "create it first")
    return target


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None], *, what: str = "path") -> None:
    """Create or replace the file ``path`` with what ``write(file)`` writes, atomically.

    The bytes go to a temporary file in the same directory, which is flushed,
    fsync'ed and then renamed over ``path`` (``os.replace``).  If ``write``
    raises or the process dies, ``path`` keeps its old content (or stays absent)
    and the temporary file is removed where possible.  Temporary files of ``path``
    that an earlier, killed writer left (``.<name>.<32 hex digits>.tmp``) are removed first.
    The temporary file is locked (:func:`hold_lock`) from before its first byte until
    after its rename, so another writer's cleanup never takes a live writer's file.
    ``what`` names ``path`` in the errors of :func:`check_target`.
    """
    path = check_target(path, what)
    remove_orphans(path.parent, rf"\.{re.escape(path.name)}\.[0-9a-f]{{32}}\.tmp")
    fd, tmp = _locked_temp(path)
    try:
        with os.fdopen(fd, "wb", closefd=False) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)  # releases the lock, after the rename
    _fsync_directory(path.parent)


def _locked_temp(path: Path) -> tuple[int, Path]:
    """A new temporary file beside ``path``, open and locked, that is still linked under its name.

    Between creating a file and locking it, another writer's :func:`remove_orphans` may
    take it for an orphan and delete it; then this one was locked too late, so try a new name.
    """
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            hold_lock(fd)
            if os.path.samestat(os.fstat(fd), os.stat(tmp)):
                return fd, tmp
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
    raise OSError(f"{path}: could not keep a temporary file beside it (other writers remove them)")


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); directories cannot be opened for this on Windows."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_arrays(path: PathLike, arrays: Mapping[str, np.ndarray], *, what: str = "path") -> None:
    """Write ``arrays`` (name -> NumPy array) to ``path`` atomically.

    A name ending in ``.pkl`` or ``.pickle`` gives the book's format (a pickled
    ``dict`` of ndarrays, readable by the book's ``load_params``); any other name
    gives an ``.npz`` archive (written under exactly that name).  ``path`` must name
    a file in an existing folder (:func:`check_target`; ``what`` names it in errors).
    """
    check_target(path, what)
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
        atomic_write(path, lambda file: pickle.dump(checked, file, protocol=4), what=what)
    else:
        atomic_write(path, lambda file: np.savez(file, **checked), what=what)


def load_arrays(
    path: PathLike, expected: Mapping[str, tuple[int, ...] | None] | None = None, *, max_bytes: int | None = None,
) -> dict[str, np.ndarray]:
    """Read a file written by :func:`save_arrays`, or the book's pickled dict of ndarrays.

    The format is recognised by content: a zip archive is read as ``.npz`` (every
    member must be a ``.npy`` array of numbers, ``allow_pickle=False``), anything else
    as a pickle through :class:`RestrictedUnpickler`.  Returns name -> NumPy array.

    ``expected`` (name -> shape, or None for any shape) lists the arrays the caller can
    use: in an archive, a member of another name or shape is refused from its header,
    before its data is read.  Every member's header must agree with its size, and an
    archive may unpack to at most ``max_bytes`` (default: :data:`MIN_UNPACKED` plus
    :data:`MAX_RATIO` times its size on disk; exactly what ``expected`` needs when it
    gives every shape).  A damaged or out-of-bounds file raises ``ValueError``
    (:class:`UnsafePickleError` for a pickle) naming ``path``.
    """
    where = os.fspath(path)
    with open(path, "rb") as file:
        is_zip = file.read(4) in _ZIP_MAGIC
        file.seek(0)
        loaded = _load_npz(file, where, expected, max_bytes) if is_zip else _load_pickled_dict(file, where)
    for key, value in loaded.items():
        _check_numeric(key, value)
    return loaded


def load_pickle(file: IO[bytes], where: str) -> Any:
    """What the pickle in ``file`` (seekable, binary) builds, through :class:`RestrictedUnpickler`.

    Raises :class:`UnsafePickleError` (a refused global or a bound passed) or
    :class:`pickle.UnpicklingError` (damage), both naming ``where``.
    """
    try:
        return RestrictedUnpickler(file).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{where}: {exc}") from None
    except Exception as exc:  # the C unpickler's and NumPy's own errors on damaged data
        raise pickle.UnpicklingError(f"{where}: neither an .npz archive nor a readable pickle "
                                     f"({type(exc).__name__}: {exc})") from None


def _load_npz(file: IO[bytes], where: str, expected: Mapping[str, Any] | None, max_bytes: int | None,
              ) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(file) as archive:
            infos = archive.infolist()
            keys = [_member_key(info, where) for info in infos]
            unknown = sorted(set(keys) - set(expected)) if expected is not None else []
            if unknown:
                raise ValueError(f"{where}: holds {unknown}, which are not expected here "
                                 f"(expected some of {sorted(expected)})")
            if len(set(keys)) != len(keys):
                raise ValueError(f"{where}: an array name occurs twice in the archive")
            bound = _unpacked_bound(file, expected, max_bytes)
            total = sum(info.file_size for info in infos)
            if total > bound:
                raise ValueError(f"{where}: its arrays would unpack to {total} bytes, more than the {bound} "
                                 "allowed: a damaged file or a zip bomb")
            return {key: _read_member(archive, info, key, where, expected) for key, info in zip(keys, infos)}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError, NotImplementedError,
            RuntimeError, struct.error, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        if str(exc).startswith(where + ":"):
            raise ValueError(str(exc)) from None
        raise ValueError(f"{where}: damaged .npz archive ({type(exc).__name__}: {exc})") from None


def _unpacked_bound(file: IO[bytes], expected: Mapping[str, Any] | None, max_bytes: int | None) -> int:
    if max_bytes is not None:
        return max_bytes
    if expected and all(shape is not None for shape in expected.values()):
        # 8-byte items at most, and a .npy header (a few hundred bytes) per array
        return sum(8 * math.prod(shape) + 4096 for shape in expected.values())
    return MIN_UNPACKED + MAX_RATIO * os.fstat(file.fileno()).st_size


def _member_key(info: zipfile.ZipInfo, where: str) -> str:
    if not info.filename.endswith(".npy"):
        raise ValueError(f"{where}: member {info.filename!r} is not a .npy array; "
                         "expected an .npz archive of arrays only")
    key = info.filename[:-len(".npy")]
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
        raise ValueError(f"{where}: member {info.filename!r} is encrypted or uses compression method "
                         f"{info.compress_type}; .npz archives use 0 (stored) or 8 (deflated)")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise ValueError(f"{where}: member {info.filename!r} is stored, but its sizes disagree "
                         f"({info.compress_size} and {info.file_size} bytes)")
    return key


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, where: str,
                 expected: Mapping[str, Any] | None) -> np.ndarray:
    """One member's array; its header is checked against its size and ``expected`` before its data is read."""
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{where}: array {key!r} has .npy format version {version}, expected 1.0 or 2.0")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(member, max_header_size=10_000)
        try:
            numeric_dtype(dtype)
        except UnsafePickleError:
            raise ValueError(f"{where}: array {key!r} has dtype {dtype}, expected a numeric array") from None
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != info.file_size - member.tell():
            raise ValueError(f"{where}: array {key!r}'s header says shape {shape} of {dtype} ({nbytes} bytes), "
                             f"its member holds {info.file_size - member.tell()}: a damaged file")
        want = None if expected is None else expected[key]
        if want is not None and tuple(shape) != tuple(want):
            raise ValueError(f"{where}: {key!r} has shape {tuple(shape)}, expected {tuple(want)}")
        flat = np.empty(math.prod(shape), dtype=dtype)
        view, done = memoryview(flat).cast("B"), 0
        while done < nbytes:
            got = member.readinto(view[done:done + (1 << 24)])
            if not got:
                raise ValueError(f"{where}: array {key!r} is truncated ({done} of {nbytes} bytes)")
            done += got
        if member.read(1):  # reaching the end also checks the member's CRC
            raise ValueError(f"{where}: array {key!r} has bytes past its data: a damaged file")
    return flat.reshape(shape[::-1]).transpose() if fortran else flat.reshape(shape)


def _load_pickled_dict(file: IO[bytes], where: str) -> dict[str, np.ndarray]:
    obj = load_pickle(file, where)
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a pickled dict of arrays, got {type(obj).__name__}")
    loaded = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ValueError(f"{where}: expected string keys, got a {type(key).__name__}")
        if not isinstance(value, (np.ndarray, np.generic, int, float)) or isinstance(value, bool):
            raise ValueError(f"{where}: value of {key!r} is a {type(value).__name__}, not an array")
        loaded[key] = np.asarray(value)  # a _CheckedArray becomes a plain ndarray
    return loaded


def load_json(text: str, where: str) -> Any:
    """``json.loads(text)``, refused (``ValueError`` naming ``where``) when nested deeper than
    :data:`MAX_JSON_DEPTH`: the decoder recurses once per level and would overflow the stack."""
    brackets = _JSON_NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    depth = max(itertools.accumulate(1 if c in "[{" else -1 for c in brackets), default=0)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{where}: JSON nested {depth} levels deep, more than {MAX_JSON_DEPTH}: not xpnet's metadata")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{where}: not valid JSON ({exc})") from None


def _check_numeric(key: str, value: np.ndarray) -> None:
    if value.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"{key!r}: expected a numeric array, got dtype {value.dtype}")
