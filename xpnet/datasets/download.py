"""Fetch files from a list of mirrors, the way a flaky network needs it.

Each file is streamed (with :class:`pooch.HTTPDownloader`) into a temporary file in its
target folder, checked against its SHA-256 and only then renamed into place (and
recorded as xpnet's own, :mod:`._owned`), so a reader never sees a partial or wrong
file and a failure leaves nothing behind.  A file already there that xpnet did not
write is never replaced.  Mirrors are tried in order; a transient failure (timeout,
dropped connection, HTTP 5xx) is retried on the same mirror at most :data:`ATTEMPTS`
times in all, a permanent one (HTTP 4xx, wrong checksum, deadline passed) moves on at
once.  The mirror that served a file is tried first for the next one, so a dead first
mirror costs its timeouts once, not once per file.

The request asks for the file's own bytes (``Accept-Encoding: identity``).  A server that
labels a ``.gz`` file ``Content-Encoding: gzip`` anyway still works: the bytes are kept as
sent and checked, and, if they do not match, checked once more with that layer undone.
Each transfer has an overall deadline (:data:`DEADLINE`, longer for large files:
:data:`MIN_RATE`), so a server that drips bytes cannot hold a download forever.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import tempfile
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


from xpnet.checks import real
from xpnet.datasets._owned import owned, record
from xpnet.io import hold_lock, remove_orphans
from xpnet.progress import bar as progress_bar

__all__ = ["fetch", "check_mirrors", "TIMEOUT", "DEADLINE", "MIN_RATE", "ATTEMPTS", "RETRY_DELAY"]

#: Seconds to wait for the connection and for each read before a try counts as failed.
TIMEOUT = 30.0
#: Seconds one transfer may take in all, by default (raised for large files, see MIN_RATE).
DEADLINE = 600.0
#: Bytes per second: by default a file of Content-Length n gets max(DEADLINE, n / MIN_RATE) s.
MIN_RATE = 20_000.0
#: Tries per mirror and file when the failure may be transient.
ATTEMPTS = 2
#: Seconds to wait before trying the same mirror again.
RETRY_DELAY = 1.0


class _ChecksumMismatch(Exception):
    """The downloaded bytes are not the file that was asked for."""


class _Permanent(Exception):
    """A try that another attempt on the same mirror would not fix (deadline, a file in the way)."""


def check_mirrors(mirrors: Any) -> list[str]:
    """``mirrors`` as a list of base URLs; ``TypeError``/``ValueError`` naming ``mirrors`` otherwise."""
    if isinstance(mirrors, (str, bytes)) or not isinstance(mirrors, Sequence):
        raise TypeError(f"mirrors: expected a sequence of base URLs (str), got {mirrors!r}")
    if not mirrors:
        raise ValueError("mirrors: expected at least one base URL, got an empty sequence")
    for i, mirror in enumerate(mirrors):
        if not isinstance(mirror, str):
            raise TypeError(f"mirrors[{i}]: expected a base URL (str), got {mirror!r}")
        if not re.match(r"(?i)https?://", mirror):
            raise ValueError(f"mirrors[{i}]: expected a base URL starting with http:// or https://, got {mirror!r}")
    return list(mirrors)


def fetch(
    files: Mapping[str, str],
    folder: Path,
    mirrors: Sequence[str],
    *,
    timeout: float | None = None,
    progress: bool = True,
    deadline: float | None = None,
) -> dict[str, list[str]]:
    """Download ``files`` (file name -> SHA-256 hex digest) from ``mirrors`` into ``folder``.

    A file is fetched from ``<mirror>/<file name>``.  ``timeout`` (seconds for the
    connection and each read) defaults to :data:`TIMEOUT`; ``deadline`` (seconds one
    transfer may take in all) to :data:`DEADLINE` or more for a large file;
    ``progress`` shows a progress bar per file on stderr.  Returns, for each file that
    no mirror could deliver, one line per failed try (``url: reason``); an empty dict
    means every file is in place and verified.  Once a file has failed on every mirror
    (offline, say), the files after it are not tried.  ``mirrors`` must be a non-empty
    sequence of URL strings (else ``TypeError``/``ValueError``, before any request).
    """
    order = check_mirrors(mirrors)
    limit = TIMEOUT if timeout is None else real("timeout", timeout, low=0, low_open=True)
    if deadline is not None:
        deadline = real("deadline", deadline, low=0, low_open=True)
    failed: dict[str, list[str]] = {}
    for name, sha256 in files.items():
        if failed:
            failed[name] = [f"{name}: not tried, since no mirror delivered {next(iter(failed))}"]
            continue
        reasons = _fetch_one(name, sha256, Path(folder), order, limit, deadline, progress)
        if reasons:
            failed[name] = reasons
    return failed


def _fetch_one(
    name: str, sha256: str, folder: Path, order: list[str], timeout: float, deadline: float | None,
    progress: bool,
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
                _download(url, folder / name, sha256, timeout, deadline, progress)
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                reasons.append(f"{url}: HTTP {status}")
                if status is not None and status < 500 and status not in (408, 429):
                    break
            except (_ChecksumMismatch, _Permanent) as exc:
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


def _download(
    url: str, dest: Path, sha256: str, timeout: float, deadline: float | None, progress: bool
) -> None:
    """Stream ``url`` to a temporary file beside ``dest``; rename it to ``dest`` if it verifies.

    Temporary files of ``dest`` that a killed download left are removed first.
    """
    import pooch

    if dest.exists() and not owned(dest):
        raise _Permanent(f"{dest} exists and was not written by xpnet: left as it is, not replaced")
    remove_orphans(dest.parent, rf"\.{re.escape(dest.name)}\.[a-z0-9_]{{8}}\.part")
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    hold_lock(fd)  # until closed: a live download's temp file is not an orphan
    # pooch sets the bar's total from Content-Length; total=1 keeps it truthy until then.
    # delay: a try that fails at once (offline) shows no empty bar.
    bar = progress_bar(1, dest.name, force=True, unit="B", delay=0.5) if progress else None
    watch = _Deadline(deadline, time.monotonic())
    try:
        downloader = pooch.HTTPDownloader(
            progressbar=bar or False, timeout=min(timeout, watch.limit()),
            headers={"Accept-Encoding": "identity"}, hooks={"response": watch.hook},
        )
        try:
            downloader(url, tmp, None)
        except Exception:
            watch.raise_if_passed()
            raise
        finally:
            watch.cancel()
        actual = pooch.file_hash(tmp, alg="sha256")
        if actual != sha256.lower() and watch.encoded:
            actual = _undo_encoding(tmp, actual)
        if actual != sha256.lower():
            watch.raise_if_passed()
            raise _ChecksumMismatch(f"SHA-256 {actual}, expected {sha256}: rejected")
        os.replace(tmp, dest)
        record(dest)
    finally:
        if bar is not None:
            bar.close()
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _undo_encoding(tmp: str, actual: str) -> str:
    """The SHA-256 of ``tmp`` with one gzip layer undone (written back), or ``actual`` if it has none."""
    try:
        with open(tmp, "rb") as f:
            decoded = gzip.decompress(f.read())
    except (OSError, EOFError, zlib.error):
        return actual
    with open(tmp, "wb") as f:
        f.write(decoded)
    return hashlib.sha256(decoded).hexdigest()


class _Deadline:
    """Cuts a transfer off when its deadline passes, by shutting its connection down.

    A blocked read cannot be interrupted otherwise: a server that sends one byte every
    0.2 s never trips the per-read timeout.  ``hook`` (a requests response hook) also
    keeps the body as sent: it drops a ``Content-Encoding`` so that urllib3 does not
    decode it (``encoded`` says there was one).
    """

    def __init__(self, deadline: float | None, start: float) -> None:
        self.deadline, self.start, self.encoded, self.passed = deadline, start, False, False
        self.effective = self.limit()
        self._timer: threading.Timer | None = None

    def limit(self, size: int = 0) -> float:
        """The deadline in seconds for a file of ``size`` bytes."""
        return self.deadline if self.deadline is not None else max(DEADLINE, size / MIN_RATE)

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        if response.headers.get("Content-Encoding", "identity").lower() != "identity":
            self.encoded = True
            response.raw.headers.discard("content-encoding")
        size = int(response.headers.get("Content-Length") or 0)
        self.effective = self.limit(size)
        left = self.effective - (time.monotonic() - self.start)
        self.cancel()  # a redirect: the new response takes over the rest of the time
        self._timer = threading.Timer(max(left, 0.0), self._cut, args=(response,))
        self._timer.daemon = True
        self._timer.start()
        return response

    def _cut(self, response: Any) -> None:
        self.passed = True
        raw = response.raw
        with contextlib.suppress(Exception):
            (raw.shutdown if hasattr(raw, "shutdown") else raw.close)()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def raise_if_passed(self) -> None:
        if self.passed:
            raise _Permanent(f"not complete within the deadline of {self.effective:g} s: cut off")
