"""What the dataset loaders share: the error type, where data lives, dtypes, the parsed cache.

Everything here runs on the host and deals in NumPy arrays.
"""

from __future__ import annotations

import os
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from xpnet.datasets._owned import remove_if_owned
from xpnet.io import load_arrays

PathLike = Union[str, "os.PathLike[str]"]

#: Environment variable naming the root folder of all datasets (one subfolder each).
ENV_VAR = "XPNET_DATA"


class DatasetError(RuntimeError):
    """A dataset could not be found, downloaded, verified or parsed; the message says why."""


def default_root() -> Path:
    """The user cache folder of xpnet (``~/.cache/xpnet`` on Linux, the OS's equivalent elsewhere)."""
    import pooch  # imported here: it takes ~0.1 s and only downloads and this need it

    return Path(pooch.os_cache("xpnet"))


def dataset_dir(name: str, data_dir: PathLike | None) -> Path:
    """The folder that holds dataset ``name``'s files and cache.

    ``data_dir`` itself when given, else ``$XPNET_DATA/<name>``, else ``<user cache>/<name>``.
    Raises :class:`DatasetError` when that folder, or a parent of it, is a file.
    """
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise TypeError(f"data_dir: expected a path (str or os.PathLike), got {data_dir!r}")
        path, source = Path(data_dir).expanduser(), "data_dir"
    elif os.environ.get(ENV_VAR):
        path, source = Path(os.environ[ENV_VAR]).expanduser() / name, ENV_VAR
    else:
        path, source = default_root() / name, "the default cache folder"
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                raise DatasetError(
                    f"{source}: {folder} is a file, expected a directory to hold the {name} files"
                )
            break
    return path


def float_dtype(dtype: Any) -> np.dtype:
    """``dtype`` (``"float32"``, ``"float64"`` or the NumPy dtype) as a :class:`numpy.dtype`."""
    try:
        resolved = None if dtype is None else np.dtype(dtype)
    except (TypeError, ValueError):
        resolved = None
    if resolved is None or resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype: expected 'float32' or 'float64' (or that NumPy dtype), got {dtype!r}")
    return resolved


def format_images(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    normalize: bool,
    flatten: bool,
    one_hot_label: bool,
    dtype: np.dtype,
    n_classes: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) uint8 and labels (N,) in the book's layout.

    Returns ``x``: (N, H*W) when ``flatten`` else (N, 1, H, W); ``dtype`` in [0, 1] when
    ``normalize``, else the raw uint8 values 0..255.  ``t``: (N,) int64, or one-hot
    (N, n_classes) in ``dtype`` when ``one_hot_label``.
    """
    n = images.shape[0]
    x = images.reshape(n, -1) if flatten else images.reshape(n, 1, *images.shape[1:])
    if normalize:
        x = np.divide(x, dtype.type(255), dtype=dtype)
    else:
        x = np.ascontiguousarray(x, dtype=np.uint8)
    t = np.eye(n_classes, dtype=dtype)[labels] if one_hot_label else labels.astype(np.int64)
    return x, t


def gunzip(data: bytes, source: str, limit: int) -> bytes:
    """``data`` with its gzip layer undone (every member of it), refusing more than ``limit`` bytes out.

    Raises :class:`DatasetError` naming ``source`` as soon as the output would pass
    ``limit`` (so a small file that inflates to gigabytes costs ``limit`` bytes at most),
    or when the data is damaged or truncated.
    """
    out, rest = bytearray(), data
    try:
        while rest.rstrip(b"\0"):  # gzip allows zero padding after the last member
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            pending = rest
            while not inflate.eof:
                chunk = inflate.decompress(pending, limit + 1 - len(out))
                out += chunk
                if len(out) > limit:
                    raise DatasetError(f"{source}: inflates to more than {limit} bytes, the most this file can "
                                       "hold: not the expected file (or a decompression bomb)")
                pending = inflate.unconsumed_tail
                if not chunk and not pending:
                    raise DatasetError(f"{source}: damaged or truncated gzip data (it ends mid-stream)")
            rest = inflate.unused_data
    except zlib.error as exc:
        raise DatasetError(f"{source}: damaged or truncated gzip data ({exc})") from None
    return bytes(out)


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, refused (:class:`DatasetError` naming it) when it has more than ``limit``."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise DatasetError(f"{path}: {size} bytes, more than the {limit} any copy of {what} can have: "
                                   "not the expected file")
            return f.read(limit + 1)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc})") from exc


def load_npz(
    path: Path, keys: Sequence[str], check: Callable[[dict[str, np.ndarray]], None], max_bytes: int,
) -> dict[str, np.ndarray] | None:
    """The arrays ``keys`` of the cache ``path``, validated by ``check``; None when it is absent.

    The archive is read with bounds (:func:`xpnet.io.load_arrays`): members other than
    ``keys`` are refused from their names, and it may unpack to ``max_bytes`` at most.
    A cache that cannot be read (truncated, not a zip, damaged, out of bounds, a key
    missing) or that ``check`` rejects (by raising :class:`DatasetError`) gives a warning
    and None, so that the caller rebuilds it; it is deleted only if xpnet wrote it
    (:mod:`._owned`), else left as it is (and :func:`._owned.save_cache` will not overwrite it).
    """
    if not path.is_file():
        return None
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not an .npz archive")
        loaded = load_arrays(path, dict.fromkeys(keys), max_bytes=max_bytes)
        arrays = {key: loaded[key] for key in keys}
        check(arrays)
        return arrays
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile, DatasetError) as exc:
        if remove_if_owned(path):
            done = "deleted it (xpnet wrote it), rebuilding"
        else:
            done = "xpnet did not write it, so it is left as it is; parsing the dataset files instead"
        warnings.warn(f"{path}: unreadable cache ({exc}); {done}", stacklevel=4)
        return None
