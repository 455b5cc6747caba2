"""Reader for IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.

An IDX file is a header followed by the array's values, big-endian, in C order::

    bytes 0-1   0x00 0x00
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions, d >= 1
    then d      uint32 sizes, big-endian
    then        prod(sizes) values

The reader checks every part of that and raises :class:`DatasetError` naming the file
and what it expected on a damaged or truncated one.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from xpnet.datasets._common import DatasetError, PathLike, gunzip

__all__ = ["parse_idx", "read_idx"]

_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """The array stored in IDX ``data`` (gzip-compressed or not; detected from its first bytes).

    Returns a new, writable array of the header's shape, in native byte order.  ``source``
    names the data in error messages.  Compressed data is inflated no further than the size
    its header announces.
    """
    if data[:2] == _GZIP_MAGIC:
        data = gunzip(data, source, _announced_size(data, source))
    if len(data) < 4:
        raise DatasetError(f"{source}: {len(data)} bytes, too short for an IDX header (4 bytes or more)")
    if data[:2] != b"\x00\x00" or data[2] not in _TYPES or data[3] == 0:
        raise DatasetError(
            f"{source}: not an IDX file: magic number 0x{data[:4].hex()}, expected 0x0000TTDD "
            f"with type code TT in {{{', '.join(f'{code:02x}' for code in _TYPES)}}} "
            "and a dimension count DD >= 1"
        )
    dtype, ndim = _TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"{source}: truncated header: {ndim} dimensions need {header} header bytes, "
            f"the file has {len(data)}"
        )
    shape = tuple(int(n) for n in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        problem = "truncated" if found < expected else "corrupt (trailing bytes)"
        raise DatasetError(
            f"{source}: {problem}: shape {shape} of {dtype.name} needs {expected} data bytes "
            f"after the header, the file has {found}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _announced_size(data: bytes, source: str) -> int:
    """Bytes of the IDX file that the gzip ``data`` holds, as its header says (at most 2**40)."""
    try:
        head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, 4 + 4 * 255)
    except zlib.error as exc:
        raise DatasetError(f"{source}: damaged or truncated gzip data ({exc})") from None
    if len(head) < 4 or head[2] not in _TYPES or len(head) < 4 + 4 * head[3]:
        return len(head)  # parse_idx names what is wrong with this header
    shape = np.frombuffer(head, dtype=">u4", count=head[3], offset=4)
    return min(4 + 4 * head[3] + math.prod(int(n) for n in shape) * _TYPES[head[2]].itemsize, 1 << 40)


def read_idx(path: PathLike) -> np.ndarray:
    """The array stored in the IDX file ``path`` (``.gz`` or not); see :func:`parse_idx`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the IDX file ({exc})") from exc
    return parse_idx(data, source=str(path))
