"""Test helpers for the datasets: an IDX writer, a small fake MNIST, and a local mirror server.

The writer is written independently of :mod:`xpnet.datasets.idx` so that the tests check
the reader against the format, not against itself.  The server listens on 127.0.0.1 only;
no test touches the internet.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
          np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}

GZ_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@functools.lru_cache(maxsize=1)
def bomb() -> bytes:
    """64 MB of zeros, gzip-compressed (about 64 KB)."""
    return gzip.compress(bytes(64 << 20), compresslevel=9, mtime=0)


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` encoded as an IDX file (big-endian values)."""
    big = array.astype(array.dtype.newbyteorder(">"))
    header = struct.pack(">HBB", 0, _CODES[big.dtype], big.ndim)
    header += struct.pack(f">{big.ndim}I", *big.shape)
    return header + big.tobytes()


def fake_mnist(
    n_train: int = 50, n_test: int = 20, seed: int = 0
) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """A tiny MNIST-shaped data set: its four ``.gz`` files (name -> bytes) and its arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "t_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    files = {name: gzip.compress(idx_bytes(arrays[key]), mtime=0) for name, key in zip(GZ_NAMES, arrays)}
    return files, arrays


def sha256_of(files: dict[str, bytes]) -> dict[str, str]:
    """SHA-256 hex digest of each file."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def content_sha256_of(files: dict[str, bytes]) -> dict[str, str]:
    """SHA-256 hex digest of each (gzip-compressed) file's decompressed content."""
    return {name: hashlib.sha256(gzip.decompress(data)).hexdigest() for name, data in files.items()}


def use_digests(monkeypatch, files: dict[str, bytes], *, fashion: dict[str, bytes] | None = None) -> None:
    """Make ``files`` (and ``fashion``, default: the same) the published MNIST (Fashion-MNIST) files."""
    from xpnet.datasets import sources

    fashion = files if fashion is None else fashion
    monkeypatch.setattr(sources, "MNIST_SHA256", sha256_of(files))
    monkeypatch.setattr(sources, "MNIST_CONTENT_SHA256", content_sha256_of(files))
    monkeypatch.setattr(sources, "FASHION_MNIST_SHA256", sha256_of(fashion))
    monkeypatch.setattr(sources, "FASHION_MNIST_CONTENT_SHA256", content_sha256_of(fashion))


class MirrorServer:
    """Mirrors ``/<mirror>/<file name>`` on 127.0.0.1, each mirror behaving as told.

    ``modes[mirror]`` is one of ``"ok"``, ``"404"``, ``"500"``, ``"stall"`` (answers
    nothing until the server stops), ``"truncate"`` (announces the full length, sends
    half), ``"corrupt"`` (sends different bytes), ``"flaky"`` (HTTP 500 on the first
    request for each file, then ``"ok"``), ``"drip"`` (one byte every 0.2 s, until the
    client goes or the server stops), ``"encoded"`` (the file labelled
    ``Content-Encoding: gzip``), ``"double"`` (gzip-compressed once more, so labelled),
    ``"endless"`` (zeros with no length, until the client goes or the server stops),
    ``"huge"`` (announces a terabyte) or ``"bomb"`` (labelled gzip, inflating to 64 MB).
    ``requests`` logs ``(mirror, file name)``, ``headers`` each request's headers.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.modes: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self._stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                _, mirror, name = self.path.split("/", 2)
                server.requests.append((mirror, name))
                server.headers.append(dict(self.headers.items()))
                mode = server.modes.get(mirror, "ok")
                if mode == "flaky":
                    mode = "500" if server.requests.count((mirror, name)) == 1 else "ok"
                if mode == "stall":
                    server._stop.wait(10)
                    return
                if mode in ("404", "500") or name not in server.files:
                    self.send_error(404 if name not in server.files else int(mode))
                    return
                data = server.files[name]
                if mode in ("endless", "huge"):
                    self.send_response(200)
                    if mode == "huge":
                        self.send_header("Content-Length", str(10**12))
                    self.end_headers()
                    while not server._stop.is_set():
                        try:
                            self.wfile.write(bytes(1 << 16))
                        except OSError:
                            return
                    return
                if mode == "bomb":
                    data = bomb()
                if mode == "double":
                    data = gzip.compress(data, mtime=0)
                body = data[: len(data) // 2] if mode == "truncate" else data
                if mode == "corrupt":
                    body = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                if mode in ("encoded", "double", "bomb"):
                    self.send_header("Content-Encoding", "gzip")
                self.end_headers()
                if mode == "drip":
                    for i in range(len(body)):
                        if server._stop.wait(0.2):
                            return
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """Quiet: the tests read ``requests`` instead."""

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client that gave up
        self.port = self.httpd.server_address[1]

    def url(self, mirror: str) -> str:
        """Base URL of ``mirror``."""
        return f"http://127.0.0.1:{self.port}/{mirror}/"

    @contextmanager
    def running(self) -> Iterator[MirrorServer]:
        """Serve in a thread; on exit release stalled requests, stop and join (bounded)."""
        thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self.httpd.shutdown()
            self.httpd.server_close()
            thread.join(timeout=5)
