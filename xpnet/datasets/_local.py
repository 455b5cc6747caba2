"""The files of an MNIST-style dataset folder: find each one, verify its content, say what is wrong.

A file is verified by its decompressed IDX content (SHA-256 of the bytes after any gzip
layer, and a header that parses), not by its compressed bytes: the original ``.gz``, a
re-compressed copy and the uncompressed file all pass; a damaged or wrong file is
refused with an error naming it, the expected and the actual digest.  A file that fails
is deleted only if xpnet downloaded it itself (:mod:`._owned`); any other is left as is.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from xpnet.datasets import sources
from xpnet.datasets._common import DatasetError, gunzip, read_bounded
from xpnet.datasets._owned import remove_if_owned
from xpnet.datasets.csvfile import IMAGE_SHAPE, N_CLASSES
from xpnet.datasets.idx import parse_idx

__all__ = ["find_verified", "read_verified", "check_arrays", "check_split", "bundled", "help_message",
           "failure_summary"]


def content(data: bytes, source: str, limit: int) -> bytes:
    """``data`` with its gzip layer undone, if it has one, inflating to ``limit`` bytes at most."""
    if data[:2] != b"\x1f\x8b":
        return data
    return gunzip(data, source, limit)


def read_verified(path: Path, name: str, title: str) -> np.ndarray:
    """The array in ``path``, which must hold ``title``'s file ``name`` (``.gz`` or not).

    Raises :class:`DatasetError` naming ``path``, the expected and the actual content
    SHA-256, with a hint: another data set's file, a header of the wrong shape, damage.
    """
    what = f"{title}'s {name.removesuffix('.gz')}"
    data = read_bounded(path, sources.max_file_bytes(name), what)
    raw = content(data, str(path), sources.content_bytes(name))
    actual = hashlib.sha256(raw).hexdigest()
    expected = sources.tables()[title][1][name]
    if actual != expected.lower():
        raise DatasetError(f"{path}: content SHA-256 {actual}, expected {expected} "
                           f"({title}'s {name.removesuffix('.gz')}): {_why(raw, path, name, title, actual)}")
    return parse_idx(raw, source=str(path))


def _why(raw: bytes, path: Path, name: str, title: str, actual: str) -> str:
    for other, (gz_table, content_table) in sources.tables().items():
        if other != title and actual in (content_table.get(name), gz_table.get(name)):
            return (f"it is {other}'s file of that name; the two datasets use the same file names, "
                    "so give each its own data_dir")
        if other != title and actual in content_table.values():
            return f"it is one of {other}'s files"
    try:
        shape = parse_idx(raw, source=str(path)).shape
    except DatasetError as exc:
        return str(exc).removeprefix(f"{path}: ")
    expected = sources.SHAPES.get(name)
    if expected is not None and shape != expected:
        return f"its header says shape {shape}, expected {expected}"
    return "its content differs (a damaged copy, or another data set)"


def find_verified(
    folder: Path, name: str, title: str, notes: list[str], refused: list[str]
) -> np.ndarray | None:
    """The array of ``name`` from the first of its local copies that verifies; None when none does.

    Copies tried: ``name`` (``.gz``), then uncompressed ``-idx``/``.idx`` spellings.  A copy
    that fails is deleted when xpnet wrote it (``notes`` says so), else it is left as it
    is: with a warning when another copy verifies, else its error goes to ``refused``.
    """
    stem = name.removesuffix(".gz")
    bad = []
    for candidate in dict.fromkeys((folder / name, folder / stem, folder / stem.replace("-idx", ".idx"))):
        if not candidate.is_file():
            continue
        try:
            array = read_verified(candidate, name, title)
        except DatasetError as exc:
            if remove_if_owned(candidate):
                notes.append(f"{exc}; xpnet had downloaded it, so it deleted it")
            else:
                bad.append(str(exc))
            continue
        for line in bad:
            warnings.warn(f"{line}; ignored it (left as it is), using {candidate}", stacklevel=4)
        return array
    refused.extend(bad)
    return None


def check_arrays(arrays: Mapping[str, np.ndarray]) -> None:
    """Raise :class:`DatasetError` unless ``arrays`` are the four arrays of an MNIST-style set."""
    check_split(arrays["x_train"], arrays["t_train"], "training set")
    check_split(arrays["x_test"], arrays["t_test"], "test set")


def check_split(images: np.ndarray, labels: np.ndarray, what: str) -> None:
    """Raise :class:`DatasetError` unless images (N, 28, 28) and labels (N,) are uint8, labels 0..9."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DatasetError(
            f"{what}: images of shape {images.shape} {images.dtype}, expected (N, 28, 28) uint8"
        )
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise DatasetError(
            f"{what}: labels of shape {labels.shape} {labels.dtype}, expected ({images.shape[0]},) uint8 "
            "(one per image)"
        )
    if labels.size and labels.max() >= N_CLASSES:
        raise DatasetError(f"{what}: label {labels.max()} found, expected 0..{N_CLASSES - 1}")


def bundled(name: str) -> np.ndarray:
    """The array in the packaged file ``data/<name>``, after checking its SHA-256."""
    data = (resources.files("xpnet.datasets") / "data" / name).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sources.SAMPLE_SHA256[name]:
        raise DatasetError(
            f"xpnet/datasets/data/{name}: SHA-256 {actual}, expected {sources.SAMPLE_SHA256[name]}: "
            "the installed package is damaged; reinstall xpnet"
        )
    return parse_idx(data, source=f"xpnet/datasets/data/{name}")


def failure_summary(failures: Mapping[str, Sequence[str]]) -> str:
    """``download.fetch``'s failure reasons in one line: each distinct reason once (retries of a
    mirror and files not tried after the first failure say nothing new)."""
    reasons = [reason for found in failures.values() for reason in found if ": not tried, since" not in reason]
    return "; ".join(dict.fromkeys(reasons))


def help_message(
    title: str,
    folder: Path,
    missing: Iterable[str],
    mirrors: Sequence[str],
    notes: list[str],
    why: str,
) -> str:
    """The short error message for files that are neither in ``folder`` nor downloadable: what
    failed, the offline alternative, and how to place the files by hand (they are verified
    by content when read)."""
    missing = list(missing)
    gz_table = sources.tables()[title][0]
    which = "its files are" if len(missing) == len(gz_table) else f"{len(missing)} of its 4 files are"
    others = {1: "", 2: " (or the other mirror)"}.get(len(mirrors), f" (or one of {len(mirrors) - 1} other mirrors)")
    return "\n".join([
        f"{title} is not available: {which} not in {folder}, and {why}",
        *(f"  ({note})" for note in notes),
        f"  Or copy them by hand from {mirrors[0]}{others} into {folder} (or pass data_dir=, or set "
        f"XPNET_DATA): {', '.join(missing)}; xpnet checks their SHA-256.",
        "  No network: xpnet.datasets.load_mnist_sample() gives real MNIST digits bundled with xpnet.",
    ])
