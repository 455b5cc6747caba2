"""Which files of a dataset folder xpnet wrote itself, so that it never deletes or replaces another's.

xpnet records every file it puts into a dataset folder (a verified download, a parsed
``.npz`` cache) in the folder's manifest, ``.xpnet-files.json``, with the file's size
and modification time as they were just after the write.  A file counts as xpnet's
own only while both still match: a file the user placed, or copied over xpnet's,
is never deleted or overwritten; xpnet reports it and leaves it as it is.

The manifest is rewritten atomically (:func:`xpnet.io.atomic_write`).  Two processes
recording at once may lose one entry; that file then counts as the user's, the safe side.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from xpnet.io import atomic_write, load_json, save_arrays

__all__ = ["MANIFEST", "record", "owned", "remove_if_owned", "save_cache"]

#: The manifest's file name inside a dataset folder.
MANIFEST = ".xpnet-files.json"
_FORMAT = 1


def _read(folder: Path) -> dict[str, dict[str, int]]:
    try:
        data = load_json((folder / MANIFEST).read_text(encoding="utf-8"), str(folder / MANIFEST))
        files = data["files"] if data.get("format") == _FORMAT else {}
        return {str(k): {"size": int(v["size"]), "mtime_ns": int(v["mtime_ns"])} for k, v in files.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def _identity(path: Path) -> dict[str, int] | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    if not path.is_file() or path.is_symlink():
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def record(path: Path) -> None:
    """Note in the manifest of ``path``'s folder that xpnet has just written ``path``."""
    path = Path(path)
    identity = _identity(path)
    if identity is None:
        return
    files = _read(path.parent)
    files[path.name] = identity
    payload = json.dumps({"format": _FORMAT, "files": files}, indent=1, sort_keys=True).encode()
    atomic_write(path.parent / MANIFEST, lambda f: f.write(payload))


def owned(path: Path) -> bool:
    """Whether ``path`` is a file xpnet wrote and nobody has changed or replaced since."""
    path = Path(path)
    identity = _identity(path)
    return identity is not None and _read(path.parent).get(path.name) == identity


def remove_if_owned(path: Path) -> bool:
    """Delete ``path`` if it is xpnet's own (:func:`owned`); returns whether it did."""
    if not owned(path):
        return False
    with contextlib.suppress(FileNotFoundError):
        Path(path).unlink()
    return True


def save_cache(path: Path, arrays: Mapping[str, np.ndarray]) -> bool:
    """Write the cache ``path`` (``.npz``) atomically and record it; returns whether it did.

    An existing file there that xpnet did not write is left as it is (with a warning);
    a failed write warns too.  Either way the caller goes on with ``arrays``.
    """
    path = Path(path)
    if path.exists() and not owned(path):
        warnings.warn(f"{path}: exists and was not written by xpnet; left as it is, so the parsed arrays "
                      "are not cached (move it away to let xpnet cache them)", stacklevel=3)
        return False
    try:
        save_arrays(path, arrays)
        record(path)
    except OSError as exc:
        warnings.warn(f"{path}: cannot write the cache ({exc}); the next call parses again", stacklevel=3)
        return False
    return True

