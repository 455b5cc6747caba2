"""Fetch files from a list of mirrors, the way a flaky network needs it.

Each file is streamed (with :class:`pooch.HTTPDownloader`) into a temporary file in its
target folder, checked against its SHA-256 and only then renamed into place, so a
reader never sees a partial or wrong file and a failure leaves nothing behind.  Mirrors
are tried in order; a transient failure (timeout, dropped connection, HTTP 5xx) is
retried on the same mirror at most :data:`ATTEMPTS` times in all, a permanent one (HTTP
4xx, wrong checksum) moves on at once.  The mirror that served a file is tried first for
the next one, so a dead first mirror costs its timeouts once, not once per file.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tqdm.auto import tqdm

__all__ = ["fetch", "TIMEOUT", "ATTEMPTS", "RETRY_DELAY"]

#: Seconds to wait for the connection and for each read before a try counts as failed.
TIMEOUT = 30.0
#: Tries per mirror and file when the failure may be transient.
ATTEMPTS = 2
#: Seconds to wait before trying the same mirror again.
RETRY_DELAY = 1.0


class _ChecksumMismatch(Exception):
    """The downloaded bytes are not the file that was asked for."""


def fetch(
    files: Mapping[str, str],
    folder: Path,
    mirrors: Sequence[str],
    *,
    timeout: float | None = None,
    progress: bool = True,
) -> dict[str, list[str]]:
    """Download ``files`` (file name -> SHA-256 hex digest) from ``mirrors`` into ``folder``.

    A file is fetched from ``<mirror>/<file name>``.  ``timeout`` defaults to
    :data:`TIMEOUT`; ``progress`` shows a progress bar per file on stderr.  Returns, for
    each file that no mirror could deliver, one line per failed try (``url: reason``);
    an empty dict means every file is in place and verified.  Once a file has
    failed on every mirror (offline, say), the files after it are not tried.
    """
    order = list(mirrors)
    failed: dict[str, list[str]] = {}
    for name, sha256 in files.items():
        if failed:
            failed[name] = [f"{name}: not tried, since no mirror delivered {next(iter(failed))}"]
            continue
        limit = TIMEOUT if timeout is None else timeout
        reasons = _fetch_one(name, sha256, folder, order, limit, progress)
        if reasons:
            failed[name] = reasons
    return failed


def _fetch_one(
    name: str, sha256: str, folder: Path, order: list[str], timeout: float, progress: bool
) -> list[str]:
    """Try the mirrors of ``order`` for ``name``; move the one that works to the front.

    Returns the failure reasons, empty on success.
    """
    import requests  # pooch's transport; imported here like pooch, only when downloading

    reasons = []
    for mirror in list(order):
        url = mirror.rstrip("/") + "/" + name
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(RETRY_DELAY)
            try:
                _download(url, folder / name, sha256, timeout, progress)
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                reasons.append(f"{url}: HTTP {status}")
                if status is not None and status < 500 and status not in (408, 429):
                    break
            except _ChecksumMismatch as exc:
                reasons.append(f"{url}: {exc}")
                break
            except requests.Timeout:
                reasons.append(f"{url}: no answer within {timeout:g} s")
            except requests.exceptions.ChunkedEncodingError:
                reasons.append(f"{url}: connection broken mid-transfer (truncated)")
            except requests.RequestException as exc:
                errno = re.search(r"\[Errno [^]]+\] [^'\")]+", str(exc))
                detail = errno.group() if errno else str(exc)[:200]
                reasons.append(f"{url}: {type(exc).__name__}: {detail}")
            else:
                order.remove(mirror)
                order.insert(0, mirror)
                return []
    return reasons


def _download(url: str, dest: Path, sha256: str, timeout: float, progress: bool) -> None:
    """Stream ``url`` to a temporary file beside ``dest``; rename it to ``dest`` if it verifies."""
    import pooch

    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    # pooch sets the bar's total from Content-Length; total=1 keeps it truthy until then.
    # delay: a try that fails at once (offline) shows no empty bar.
    bar = tqdm(total=1, desc=dest.name, unit="B", unit_scale=True, file=sys.stderr, delay=0.5) if progress else None
    try:
        pooch.HTTPDownloader(progressbar=bar or False, timeout=timeout)(url, tmp, None)
        actual = pooch.file_hash(tmp, alg="sha256")
        if actual != sha256.lower():
            raise _ChecksumMismatch(f"SHA-256 {actual}, expected {sha256}: rejected")
        os.replace(tmp, dest)
    finally:
        if bar is not None:
            bar.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
