"""The second book's ``common/base_model.py``: a model's ``params`` list to and from a file.

Files are host NumPy data, so a file written on one device loads on any other.  The
book's format is a pickled list of float16 arrays (``<ClassName>.pkl`` by default);
a name ending in ``.npz`` gives xpnet's archive (keys ``"0"``, ``"1"``, ... in
``params`` order, full precision).  Loading reads either, by content; pickles go
through :class:`xpnet.io.RestrictedUnpickler`, so a file cannot run code.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

from .. import io
from ..backend import device_of, to_numpy

Array = Any

__all__ = ["BaseModel"]


class BaseModel:
    """Base of the second book's models: subclasses set ``params`` and ``grads`` (lists)
    and define ``forward``/``backward``."""

    def __init__(self) -> None:
        self.params, self.grads = None, None

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError

    def backward(self, *args: Any) -> Any:
        raise NotImplementedError

    def _file(self, file_name: str | os.PathLike | None) -> str:
        if not self.params:
            raise ValueError(f"{type(self).__name__}.params: expected a list of arrays, got {self.params!r}")
        if file_name is None:
            return type(self).__name__ + ".pkl"
        if not isinstance(file_name, (str, os.PathLike)):
            raise TypeError(f"file_name: expected a path or None, got {type(file_name).__name__}")
        if not os.fspath(file_name):
            raise ValueError("file_name: expected a file name such as 'model.pkl' (or None for the default), got ''")
        return os.fspath(file_name)

    def save_params(self, file_name: str | os.PathLike | None = None) -> None:
        """Write ``params`` atomically: the book's float16 pickle, or ``.npz`` by name."""
        name = self._file(file_name)
        hosts = [to_numpy(param) for param in self.params]
        if name.lower().endswith(".npz"):
            io.save_arrays(name, {str(i): host for i, host in enumerate(hosts)}, what="file_name")
        else:
            half = [host.astype("float16") for host in hosts]
            io.atomic_write(name, lambda file: pickle.dump(half, file, protocol=4), what="file_name")

    def load_params(self, file_name: str | os.PathLike | None = None) -> None:
        """Copy a file's arrays into ``params`` in place, cast to each param's dtype, on its
        device.  The count and every shape are checked before anything changes."""
        name = self._file(file_name)
        if not os.path.isfile(name):
            raise FileNotFoundError(f"file_name: no file {name!r}")
        hosts = _read(name, [tuple(param.shape) for param in self.params])
        if len(hosts) != len(self.params):
            raise ValueError(f"{name}: holds {len(hosts)} arrays, this {type(self).__name__} has "
                             f"{len(self.params)} params")
        for i, (host, param) in enumerate(zip(hosts, self.params)):
            if tuple(host.shape) != tuple(param.shape):
                raise ValueError(f"{name}: array {i} has shape {tuple(host.shape)}, params[{i}] is {tuple(param.shape)}")
        for host, param in zip(hosts, self.params):
            if host.dtype == "float16":  # the book's files: float16 is not an Array API dtype
                host = host.astype("float32")
            device = device_of(param)
            with device.activate():
                param[...] = device.asarray(host, dtype=param.dtype)


def _read(name: str, shapes: list[tuple[int, ...]]) -> list[Any]:
    """The arrays of a book pickle (a list) or of an ``.npz`` / xpnet pickle (a dict, keys ``0..n-1``);
    an archive's members are checked against ``shapes`` before they are read."""
    with open(name, "rb") as file:
        is_zip = file.read(2) == b"PK"
        file.seek(0)
        if not is_zip:
            obj = io.load_pickle(file, name)
            if isinstance(obj, (list, tuple)):
                for i, value in enumerate(obj):
                    kind = getattr(getattr(value, "dtype", None), "kind", "")
                    if not hasattr(value, "shape") or kind not in "biuf" or not kind:
                        raise ValueError(f"{name}: item {i} is not a numeric array")
                return list(obj)
    arrays = io.load_arrays(name, {str(i): shape for i, shape in enumerate(shapes)})
    keys = [str(i) for i in range(len(arrays))]
    if sorted(arrays) != sorted(keys):
        raise ValueError(f"{name}: expected arrays named 0..{len(arrays) - 1}, got {sorted(arrays)}")
    return [arrays[key] for key in keys]
