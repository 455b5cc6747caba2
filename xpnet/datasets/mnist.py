"""MNIST and Fashion-MNIST, the bundled MNIST sample, and MNIST-style CSV files.

The book's ``from dataset.mnist import load_mnist`` becomes
``from xpnet.datasets.mnist import load_mnist``; the arrays keep the book's layout.

Where the files live (the *dataset folder*): ``data_dir`` when given, else
``$XPNET_DATA/mnist`` (``.../fashion-mnist``), else ``~/.cache/xpnet/mnist`` (the OS's user
cache folder).  It holds the four ``.gz`` files and ``mnist.npz`` (``fashion-mnist.npz``),
the parsed arrays that make every later call fast.  Files placed there by hand, ``.gz``
or uncompressed IDX, are used without any network access.  MNIST and Fashion-MNIST use
the same file names, so each needs its own folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from xpnet.datasets import download as _download
from xpnet.datasets._common import (
    DatasetError,
    PathLike,
    dataset_dir,
    float_dtype,
    format_images,
    load_npz,
)
from xpnet.datasets.csvfile import IMAGE_SHAPE as _IMAGE_SHAPE
from xpnet.datasets.csvfile import N_CLASSES as _N_CLASSES
from xpnet.datasets.csvfile import read_mnist_csv
from xpnet.datasets.idx import parse_idx, read_idx
from xpnet.datasets.sources import (
    FASHION_MNIST_MIRRORS,
    FASHION_MNIST_SHA256,
    MNIST_MIRRORS,
    MNIST_SHA256,
    SAMPLE_SHA256,
)
from xpnet.io import save_arrays

__all__ = ["load_mnist", "load_fashion_mnist", "load_mnist_sample", "load_mnist_csv"]

Split = tuple[np.ndarray, np.ndarray]

# The four files in the order of the returned arrays, and their keys in the .npz cache.
_KEYS = {
    "train-images-idx3-ubyte.gz": "x_train",
    "train-labels-idx1-ubyte.gz": "t_train",
    "t10k-images-idx3-ubyte.gz": "x_test",
    "t10k-labels-idx1-ubyte.gz": "t_test",
}


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
    default :data:`xpnet.datasets.download.TIMEOUT`) bounds each connect and read.  The
    parsed arrays are cached in ``mnist.npz`` there, so later calls take well under a second.

    Raises :class:`DatasetError` when the files can neither be found nor downloaded (the
    message says where it looked and how to place the files by hand) or are damaged.
    """
    return _load(
        "mnist", "MNIST", MNIST_SHA256, MNIST_MIRRORS if mirrors is None else mirrors,
        normalize=normalize, flatten=flatten, one_hot_label=one_hot_label, data_dir=data_dir,
        download=download, dtype=dtype, timeout=timeout, progress=progress,
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
) -> tuple[Split, Split]:
    """Fashion-MNIST (Zalando's 28x28 clothing images, 10 classes), exactly like :func:`load_mnist`.

    Shapes and dtypes as :func:`load_mnist`: ``x`` (N, 784) or (N, 1, 28, 28), ``t`` (N,)
    int64 or one-hot (N, 10); N = 60,000 for training, 10,000 for testing.  The dataset
    folder defaults to ``$XPNET_DATA/fashion-mnist`` or ``~/.cache/xpnet/fashion-mnist``;
    ``mirrors`` to :data:`FASHION_MNIST_MIRRORS`.  Labels: 0 T-shirt/top, 1 trouser,
    2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt, 7 sneaker, 8 bag, 9 ankle boot.
    """
    return _load(
        "fashion-mnist", "Fashion-MNIST", FASHION_MNIST_SHA256,
        FASHION_MNIST_MIRRORS if mirrors is None else mirrors,
        normalize=normalize, flatten=flatten, one_hot_label=one_hot_label, data_dir=data_dir,
        download=download, dtype=dtype, timeout=timeout, progress=progress,
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
    images, labels = (_bundled(name) for name in SAMPLE_SHA256)
    _check_split(images, labels, "the bundled MNIST sample")
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
    hashes: Mapping[str, str],
    mirrors: Sequence[str],
    *,
    normalize: bool,
    flatten: bool,
    one_hot_label: bool,
    data_dir: PathLike | None,
    download: bool,
    dtype: object,
    timeout: float | None,
    progress: bool,
) -> tuple[Split, Split]:
    """The body of :func:`load_mnist` and :func:`load_fashion_mnist`."""
    dt = float_dtype(dtype)
    if isinstance(mirrors, str):
        raise TypeError(f"mirrors: expected a sequence of base URLs, got the string {mirrors!r}")
    folder = dataset_dir(name, data_dir)
    cache = folder / f"{name}.npz"
    arrays = load_npz(cache, list(_KEYS.values()), _check_arrays)
    if arrays is None:
        arrays = _build(
            folder, title, hashes, mirrors, download=download, timeout=timeout, progress=progress
        )
        try:
            save_arrays(cache, arrays)
        except OSError as exc:
            warnings.warn(
                f"{cache}: cannot write the cache ({exc}); the next call parses again", stacklevel=3
            )
    options = dict(normalize=normalize, flatten=flatten, one_hot_label=one_hot_label, dtype=dt)
    return (
        format_images(arrays["x_train"], arrays["t_train"], **options),
        format_images(arrays["x_test"], arrays["t_test"], **options),
    )


def _build(
    folder: Path,
    title: str,
    hashes: Mapping[str, str],
    mirrors: Sequence[str],
    *,
    download: bool,
    timeout: float | None,
    progress: bool,
) -> dict[str, np.ndarray]:
    """The four arrays from the files in ``folder``, downloading the missing ones."""
    others = {
        digest: other
        for other, table in (("MNIST", MNIST_SHA256), ("Fashion-MNIST", FASHION_MNIST_SHA256))
        if other != title
        for digest in table.values()
    }
    found, notes = {}, []
    for name, sha256 in hashes.items():
        found[name] = _local_file(folder, name, sha256, notes, others)
    missing = {name: hashes[name] for name, path in found.items() if path is None}
    if missing and not download:
        why = "downloading is off (download=False; pass download=True to fetch them)"
        raise DatasetError(_help(title, folder, hashes, missing, mirrors, notes, why))
    if missing:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatasetError(
                f"{title}: cannot create the dataset folder {folder} ({exc}); "
                "pass data_dir= a writable folder or set XPNET_DATA"
            ) from exc
        failures = _download.fetch(missing, folder, mirrors, timeout=timeout, progress=progress)
        if failures:
            lines = [reason for reasons in failures.values() for reason in reasons]
            raise DatasetError(_help(
                title, folder, hashes, failures, mirrors, notes,
                "no mirror delivered them:\n    " + "\n    ".join(lines),
            ))
        found.update({name: folder / name for name in missing})
    arrays = {_KEYS[name]: _read_local(path) for name, path in found.items()}
    _check_arrays(arrays)
    return arrays


def _local_file(
    folder: Path, name: str, sha256: str, notes: list[str], others: Mapping[str, str]
) -> Path | None:
    """The file in ``folder`` that provides ``name``: the verified ``.gz``, else uncompressed IDX.

    A ``.gz`` whose SHA-256 is wrong is deleted (a note says so) so that it is fetched
    again, unless it is the same-named file of another dataset (``others``: digest -> title),
    which is left alone with an error.
    """
    gz = folder / name
    if gz.is_file():
        actual = _sha256(gz.read_bytes())
        if actual == sha256.lower():
            return gz
        if actual in others:
            raise DatasetError(
                f"{gz} is {others[actual]}'s file of that name: the two datasets use the same file "
                "names, so give each its own data_dir"
            )
        try:
            gz.unlink()
            done = "deleted it"
        except OSError as exc:
            done = f"could not delete it: {exc}"
        notes.append(f"rejected {gz}: SHA-256 {actual}, expected {sha256}; {done}")
    stem = name.removesuffix(".gz")
    for candidate in (stem, stem.replace("-idx", ".idx")):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _read_local(path: Path) -> np.ndarray:
    """The IDX array in ``path``; a damaged ``.gz`` (a download) is deleted so the next call re-fetches it."""
    try:
        return read_idx(path)
    except DatasetError as exc:
        if path.suffix != ".gz":
            raise DatasetError(f"{exc}; replace the file with a good copy") from exc
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise DatasetError(f"{exc}; deleted it, the next call downloads it again") from exc


def _help(
    title: str,
    folder: Path,
    hashes: Mapping[str, str],
    missing: Iterable[str],
    mirrors: Sequence[str],
    notes: list[str],
    why: str,
) -> str:
    """The error message for files that are neither in ``folder`` nor downloadable."""
    need_lines = [
        f"    {name}  (or uncompressed: {name.removesuffix('.gz')})  sha256 {hashes[name]}"
        for name in missing
    ]
    which = "its files are" if len(need_lines) == len(hashes) else f"{len(need_lines)} of its 4 files are"
    return "\n".join([
        f"{title} is not available: {which} not in {folder}, and {why}",
        *(f"  ({note})" for note in notes),
        f"  Files needed in {folder}:",
        *need_lines,
        "  To place them by hand: download the .gz files from one of",
        *(f"    {mirror}" for mirror in mirrors),
        f"  on a machine with internet and copy them into {folder} (or pass data_dir=<folder>,",
        "  or set XPNET_DATA=<root> to use <root>/<dataset>); the .gz or the uncompressed files work.",
        "  Real MNIST digits with no network: xpnet.datasets.load_mnist_sample().",
    ])


def _check_arrays(arrays: Mapping[str, np.ndarray]) -> None:
    """Raise :class:`DatasetError` unless ``arrays`` are the four arrays of an MNIST-style set."""
    _check_split(arrays["x_train"], arrays["t_train"], "training set")
    _check_split(arrays["x_test"], arrays["t_test"], "test set")


def _check_split(images: np.ndarray, labels: np.ndarray, what: str) -> None:
    """Raise :class:`DatasetError` unless images (N, 28, 28) and labels (N,) are uint8, labels 0..9."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != _IMAGE_SHAPE:
        raise DatasetError(
            f"{what}: images of shape {images.shape} {images.dtype}, expected (N, 28, 28) uint8"
        )
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise DatasetError(
            f"{what}: labels of shape {labels.shape} {labels.dtype}, expected ({images.shape[0]},) uint8 "
            "(one per image)"
        )
    if labels.size and labels.max() >= _N_CLASSES:
        raise DatasetError(f"{what}: label {labels.max()} found, expected 0..{_N_CLASSES - 1}")


def _bundled(name: str) -> np.ndarray:
    """The array in the packaged file ``data/<name>``, after checking its SHA-256."""
    data = (resources.files("xpnet.datasets") / "data" / name).read_bytes()
    actual = _sha256(data)
    if actual != SAMPLE_SHA256[name]:
        raise DatasetError(
            f"xpnet/datasets/data/{name}: SHA-256 {actual}, expected {SAMPLE_SHA256[name]}: "
            "the installed package is damaged; reinstall xpnet"
        )
    return parse_idx(data, source=f"xpnet/datasets/data/{name}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
