"""MNIST and Fashion-MNIST, the bundled MNIST sample, and MNIST-style CSV files.

The book's ``from dataset.mnist import load_mnist`` becomes
``from xpnet.datasets.mnist import load_mnist``; the arrays keep the book's layout.

Where the files live (the *dataset folder*): ``data_dir`` when given, else
``$XPNET_DATA/mnist`` (``.../fashion-mnist``), else ``~/.cache/xpnet/mnist`` (the OS's user
cache folder).  It holds the four ``.gz`` files and ``mnist.npz`` (``fashion-mnist.npz``),
the parsed arrays that make every later call fast.  Files placed there by hand, ``.gz``
(original or re-compressed) or uncompressed IDX, are verified by content and used
without any network access; xpnet never deletes or changes them (:mod:`._owned`).
MNIST and Fashion-MNIST use the same file names, so each needs its own folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xpnet.checks import real
from xpnet.datasets import download as _download
from xpnet.datasets import sources
from xpnet.datasets._common import (
    DatasetError,
    PathLike,
    dataset_dir,
    float_dtype,
    format_images,
    load_npz,
)
from xpnet.datasets._local import (bundled, check_arrays, check_split, failure_summary, find_verified, help_message,
                                   read_verified)
from xpnet.datasets._owned import remove_if_owned, save_cache
from xpnet.datasets.csvfile import read_mnist_csv
from xpnet.datasets.sources import (  # re-exported: the checksum tables are part of this module's public names
    FASHION_MNIST_MIRRORS,
    FASHION_MNIST_SHA256,
    MNIST_MIRRORS,
    MNIST_SHA256,
    SAMPLE_SHA256,
)

__all__ = ["load_mnist", "load_fashion_mnist", "load_mnist_sample", "load_mnist_csv"]

Split = tuple[np.ndarray, np.ndarray]

# The four files in the order of the returned arrays, and their keys in the .npz cache.
_KEYS = {
    "train-images-idx3-ubyte.gz": "x_train",
    "train-labels-idx1-ubyte.gz": "t_train",
    "t10k-images-idx3-ubyte.gz": "x_test",
    "t10k-labels-idx1-ubyte.gz": "t_test",
}
#: The most bytes the .npz cache may unpack to: the four arrays and their headers.
_CACHE_BYTES = sum(math.prod(shape) for shape in sources.SHAPES.values()) + (64 << 10)


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    data_dir: PathLike | None = None,
    download: bool = True,
    dtype: str | np.dtype | type = "float32",
    mirrors: Sequence[str] | None = None,
    timeout: float | None = None,
    progress: bool = True,
    deadline: float | None = None,
) -> tuple[Split, Split]:
    """MNIST's 60,000 training and 10,000 test digits: ``(x_train, t_train), (x_test, t_test)``.

    Host NumPy arrays in the book's layout:

    * ``x``: (N, 784) when ``flatten``, else (N, 1, 28, 28); ``dtype`` (float32 or float64)
      scaled to [0, 1] when ``normalize``, else the raw pixels 0..255 as uint8.
    * ``t``: (N,) int64 digits 0..9, or one-hot (N, 10) in ``dtype`` when ``one_hot_label``.

    The first call looks for the files in the dataset folder (``data_dir``, MNIST's own
    folder, else ``$XPNET_DATA/mnist``, else ``~/.cache/xpnet/mnist``) and downloads the missing ones
    (unless ``download=False``) from ``mirrors`` (default :data:`MNIST_MIRRORS`, in order),
    each verified by SHA-256, with a progress bar when ``progress``; ``timeout`` (seconds,
    default :data:`xpnet.datasets.download.TIMEOUT`) bounds each connect and read, and
    ``deadline`` (seconds, default :data:`xpnet.datasets.download.DEADLINE`, more for a
    large file) each transfer in all.  The parsed arrays are cached in ``mnist.npz``
    there, so later calls take well under a second.

    Every file is verified by the SHA-256 of its decompressed content (table in
    :mod:`xpnet.datasets.sources`), so the original ``.gz``, a re-compressed copy and
    the uncompressed IDX file all load.  A file that xpnet did not download itself is
    never deleted or changed: a wrong one (damaged, or Fashion-MNIST's) stops the load
    with an error naming it and both digests.

    Raises :class:`DatasetError` when the files can neither be found nor downloaded (the
    message says where it looked and how to place the files by hand) or are damaged.
    """
    return _load(
        "mnist", "MNIST", MNIST_MIRRORS if mirrors is None else mirrors,
        normalize=normalize, flatten=flatten, one_hot_label=one_hot_label, data_dir=data_dir,
        download=download, dtype=dtype, timeout=timeout, deadline=deadline, progress=progress,
    )


def load_fashion_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    data_dir: PathLike | None = None,
    download: bool = True,
    dtype: str | np.dtype | type = "float32",
    mirrors: Sequence[str] | None = None,
    timeout: float | None = None,
    progress: bool = True,
    deadline: float | None = None,
) -> tuple[Split, Split]:
    """Fashion-MNIST (Zalando's 28x28 clothing images, 10 classes), exactly like :func:`load_mnist`.

    Shapes and dtypes as :func:`load_mnist`: ``x`` (N, 784) or (N, 1, 28, 28), ``t`` (N,)
    int64 or one-hot (N, 10); N = 60,000 for training, 10,000 for testing.  The dataset
    folder defaults to ``$XPNET_DATA/fashion-mnist`` or ``~/.cache/xpnet/fashion-mnist``;
    ``mirrors`` to :data:`FASHION_MNIST_MIRRORS`.  Labels: 0 T-shirt/top, 1 trouser,
    2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt, 7 sneaker, 8 bag, 9 ankle boot.
    """
    return _load(
        "fashion-mnist", "Fashion-MNIST", FASHION_MNIST_MIRRORS if mirrors is None else mirrors,
        normalize=normalize, flatten=flatten, one_hot_label=one_hot_label, data_dir=data_dir,
        download=download, dtype=dtype, timeout=timeout, deadline=deadline, progress=progress,
    )


def load_mnist_sample(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    dtype: str | np.dtype | type = "float32",
    n_train: int = 8000,
) -> tuple[Split, Split]:
    """Real MNIST digits with no network: the 10,000-image MNIST test set shipped with xpnet.

    The split is fixed: images 0 .. ``n_train``-1 of the official test set for training,
    the remaining ``10000 - n_train`` for testing (default 8,000 / 2,000; every digit
    occurs in both).  Returns ``(x_train, t_train), (x_test, t_test)`` with the shapes and
    dtypes of :func:`load_mnist`: ``x`` (N, 784) or (N, 1, 28, 28), ``t`` (N,) int64 or
    one-hot (N, 10).  The bundled files are checked against their SHA-256 on every call.
    """
    dt = float_dtype(dtype)
    integer = isinstance(n_train, (int, np.integer)) and not isinstance(n_train, bool)
    if not integer or not 0 < n_train < 10000:
        raise ValueError(f"n_train: expected an integer from 1 to 9999, got {n_train!r}")
    images, labels = (bundled(name) for name in SAMPLE_SHA256)
    check_split(images, labels, "the bundled MNIST sample")
    options = dict(normalize=normalize, flatten=flatten, one_hot_label=one_hot_label, dtype=dt)
    return (
        format_images(images[:n_train], labels[:n_train], **options),
        format_images(images[n_train:], labels[n_train:], **options),
    )


def load_mnist_csv(
    path: PathLike,
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    dtype: str | np.dtype | type = "float32",
) -> Split:
    """``(x, t)`` from an MNIST-style CSV file: one image per row, ``label,pixel0,...,pixel783``.

    A first row that does not start with a number (``label,pixel0,...``) is taken as a
    header and skipped.  Every row must have 785 columns, a label 0..9 and integer pixels
    0..255 (written as ``12`` or ``12.0``).  Shapes and dtypes as :func:`load_mnist`:
    ``x`` (N, 784) or (N, 1, 28, 28), ``t`` (N,) int64 or one-hot (N, 10).
    Raises :class:`DatasetError` naming the file, the line and what was expected.
    """
    dt = float_dtype(dtype)
    images, labels = read_mnist_csv(Path(path))
    return format_images(
        images, labels, normalize=normalize, flatten=flatten, one_hot_label=one_hot_label, dtype=dt,
    )


# ----------------------------------------------------------------------------- downloads


def _load(
    name: str,
    title: str,
    mirrors: Sequence[str],
    *,
    normalize: bool,
    flatten: bool,
    one_hot_label: bool,
    data_dir: PathLike | None,
    download: bool,
    dtype: object,
    timeout: float | None,
    deadline: float | None,
    progress: bool,
) -> tuple[Split, Split]:
    """The body of :func:`load_mnist` and :func:`load_fashion_mnist`: checks first, then work."""
    dt = float_dtype(dtype)
    mirrors = _download.check_mirrors(mirrors)
    if timeout is not None:
        real("timeout", timeout, low=0, low_open=True)
    if deadline is not None:
        real("deadline", deadline, low=0, low_open=True)
    folder = dataset_dir(name, data_dir)
    cache = folder / f"{name}.npz"
    arrays = load_npz(cache, list(_KEYS.values()), check_arrays, max_bytes=_CACHE_BYTES)
    if arrays is None:
        arrays = _build(
            folder, title, mirrors, download=download, timeout=timeout, deadline=deadline, progress=progress
        )
        save_cache(cache, arrays)
    options = dict(normalize=normalize, flatten=flatten, one_hot_label=one_hot_label, dtype=dt)
    return (
        format_images(arrays["x_train"], arrays["t_train"], **options),
        format_images(arrays["x_test"], arrays["t_test"], **options),
    )


def _build(
    folder: Path,
    title: str,
    mirrors: Sequence[str],
    *,
    download: bool,
    timeout: float | None,
    deadline: float | None,
    progress: bool,
) -> dict[str, np.ndarray]:
    """The four arrays from the verified files in ``folder``, downloading the missing ones.

    A local file that fails verification and that xpnet did not write stops the load
    (nothing is downloaded over or around it); one that xpnet downloaded is deleted and
    fetched again.
    """
    hashes = sources.tables()[title][0]
    found, notes, refused = {}, [], []
    for name in hashes:
        found[name] = find_verified(folder, name, title, notes, refused)
    if refused:
        raise DatasetError("\n".join([
            f"{title}: {len(refused)} file(s) in {folder} are not the right ones:",
            *(f"  {line}" for line in refused),
            "  xpnet did not write these files, so it leaves them as they are: replace them with good "
            "copies, or move them away to let xpnet download the originals.",
        ]))
    missing = {name: hashes[name] for name, array in found.items() if array is None}
    if missing and not download:
        why = "downloading is off (download=False; pass download=True to fetch them)"
        raise DatasetError(help_message(title, folder, missing, mirrors, notes, why))
    if missing:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatasetError(
                f"{title}: cannot create the dataset folder {folder} ({exc}); "
                "pass data_dir= a writable folder or set XPNET_DATA"
            ) from exc
        failures = _download.fetch(
            missing, folder, mirrors, timeout=timeout, deadline=deadline, progress=progress,
            max_bytes={name: sources.max_file_bytes(name) for name in missing},
        )
        if failures:
            raise DatasetError(help_message(
                title, folder, failures, mirrors, notes, f"no mirror delivered them ({failure_summary(failures)})",
            ))
        for name in missing:
            found[name] = _read_download(folder / name, name, title)
    arrays = {_KEYS[name]: array for name, array in found.items()}
    check_arrays(arrays)
    return arrays


def _read_download(path: Path, name: str, title: str) -> np.ndarray:
    """The array of a file just downloaded (its ``.gz`` digest matched); deleted if it does not verify."""
    try:
        return read_verified(path, name, title)
    except DatasetError as exc:
        remove_if_owned(path)
        raise DatasetError(f"{exc}; deleted it (xpnet had just downloaded it)") from exc
