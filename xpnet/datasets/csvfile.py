"""Reader for MNIST-style CSV files: one image per row, ``label,pixel0,...,pixel783``.

Host-side parsing only; :func:`xpnet.datasets.load_mnist_csv` formats the result.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from xpnet.datasets._common import DatasetError

__all__ = ["read_mnist_csv"]

IMAGE_SHAPE = (28, 28)
N_CLASSES = 10
_CSV_COLUMNS = 1 + math.prod(IMAGE_SHAPE)
#: The largest CSV file read: MNIST's 70,000 rows, each value in up to 8 characters ("255.000,").
MAX_CSV_BYTES = 70_000 * _CSV_COLUMNS * 8 + (1 << 20)


def read_mnist_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) uint8 from the CSV file ``path``.

    A first row that does not start with a number is a header and skipped.  Raises
    :class:`DatasetError` naming the file, the line and what was expected.
    """
    rows, header = _read_csv(path)
    first_line = 2 if header else 1
    _check_csv_values(path, rows[:, :1], N_CLASSES - 1, "label", first_line, 1)
    _check_csv_values(path, rows[:, 1:], 255, "pixel", first_line, 2)
    images = rows[:, 1:].astype(np.uint8).reshape(len(rows), *IMAGE_SHAPE)
    return images, rows[:, 0].astype(np.uint8)


def _has_header(path: Path) -> bool:
    """Whether the first line of ``path`` is a header: its first field is not a number."""
    with open(path, encoding="utf-8-sig") as f:
        first = f.readline().split(",", 1)[0].strip().strip('"')
    try:
        float(first)
    except ValueError:
        return True
    return False


def _read_csv(path: Path) -> tuple[np.ndarray, bool]:
    """The numbers of the CSV file ``path`` as a float32 (N, 785) array, and whether it had a header."""
    try:
        size = path.stat().st_size
        header = _has_header(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the CSV file ({exc})") from exc
    except UnicodeDecodeError:
        raise DatasetError(_csv_problem(path, False)) from None
    if size > MAX_CSV_BYTES:
        raise DatasetError(f"{path}: {size} bytes, more than the {MAX_CSV_BYTES} that MNIST's 70,000 rows "
                           "can take as CSV: not an MNIST CSV file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # numpy's "input contained no data"
            rows = np.loadtxt(
                path, delimiter=",", comments=None, dtype=np.float32, skiprows=int(header), ndmin=2,
                encoding="utf-8-sig",
            )
    except ValueError:
        raise DatasetError(_csv_problem(path, header)) from None
    if rows.shape[0] == 0:
        raise DatasetError(f"{path}: no data rows, expected lines of label,pixel0,...,pixel783")
    if rows.shape[1] != _CSV_COLUMNS:
        unlabeled = "; it has no label column, which this loader needs" if rows.shape[1] == 784 else ""
        raise DatasetError(
            f"{path}: the rows have {rows.shape[1]} columns, expected {_CSV_COLUMNS} "
            f"(label, then 784 pixels){unlabeled}"
        )
    return rows, header


def _check_csv_values(
    path: Path, values: np.ndarray, top: int, what: str, first_line: int, first_column: int
) -> None:
    """Raise :class:`DatasetError` at the first entry of ``values`` (rows, columns) not an integer 0..top."""
    bad = ~((values >= 0) & (values <= top) & (values == np.floor(values)))
    if bad.any():
        row, column = np.argwhere(bad)[0]
        normalized = what == "pixel" and values.max() <= 1
        hint = " (the file looks normalized; it needs the raw values)" if normalized else ""
        raise DatasetError(
            f"{path}: line {first_line + row}, column {first_column + column}: {what} "
            f"{values[row, column]:g}, expected an integer from 0 to {top}{hint}"
        )


def _csv_problem(path: Path, header: bool) -> str:
    """Say which line of ``path`` numpy could not parse (rescanned in Python: error path only)."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                return (f"{path}: line {number} is not UTF-8 text (byte {raw[exc.start:exc.start + 1]!r} at column "
                        f"{exc.start + 1}); expected a CSV of numbers")
            if (number == 1 and header) or not line.strip():
                continue
            fields = line.rstrip("\r\n").split(",")
            if len(fields) != _CSV_COLUMNS:
                return (
                    f"{path}: line {number} has {len(fields)} columns, "
                    f"expected {_CSV_COLUMNS} (label, then 784 pixels)"
                )
            for column, field in enumerate(fields, start=1):
                try:
                    float(field)
                except ValueError:
                    return f"{path}: line {number}, column {column}: {field!r} is not a number"
    return f"{path}: not a CSV file of numbers (label,pixel0,...,pixel783)"
