"""What the dataset loaders share: the error type, where data lives, dtypes, the parsed cache.

Everything here runs on the host and deals in NumPy arrays.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from xpnet.datasets._owned import remove_if_owned

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


def load_npz(
    path: Path, keys: Sequence[str], check: Callable[[dict[str, np.ndarray]], None]
) -> dict[str, np.ndarray] | None:
    """The arrays ``keys`` of the cache ``path``, validated by ``check``; None when it is absent.

    A cache that cannot be read (truncated, not a zip, a key missing) or that ``check``
    rejects (by raising :class:`DatasetError`) gives a warning and None, so that the
    caller rebuilds it; it is deleted only if xpnet wrote it (:mod:`._owned`), else left
    as it is (and :func:`._owned.save_cache` will not overwrite it).
    """
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in keys}
        check(arrays)
        return arrays
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile, DatasetError) as exc:
        if remove_if_owned(path):
            done = "deleted it (xpnet wrote it), rebuilding"
        else:
            done = "xpnet did not write it, so it is left as it is; parsing the dataset files instead"
        warnings.warn(f"{path}: unreadable cache ({exc}); {done}", stacklevel=4)
        return None
