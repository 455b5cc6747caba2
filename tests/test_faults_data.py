"""Fault injection for the datasets: user files that must survive (re-gzipped, uncompressed,
wrong, another data set's), kills mid-download, and the download edge cases.

Every test is bounded in time: subprocesses run under a timeout, servers are local
(127.0.0.1) and their slow modes stop by themselves.  The io side is in ``test_faults_io.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _idx_server import GZ_NAMES, MirrorServer, content_sha256_of, fake_mnist, use_digests

from xpnet.datasets import DatasetError, _owned, download, load_fashion_mnist, load_mnist

ROOT = Path(__file__).resolve().parents[1]


TIMEOUT = 0.5


@pytest.fixture
def fake():
    return fake_mnist()


@pytest.fixture
def server(fake, monkeypatch):
    files, _ = fake
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.delenv("XPNET_DATA", raising=False)
    use_digests(monkeypatch, files)
    monkeypatch.setattr(download, "RETRY_DELAY", 0.0)
    with MirrorServer(files).running() as srv:
        yield srv


def _dead_mirror() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/gone/"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != _owned.MANIFEST}


def _same_arrays(loaded, arrays) -> None:
    (x, t), (x_test, t_test) = loaded
    np.testing.assert_array_equal(x.reshape(-1, 28, 28), arrays["x_train"])
    np.testing.assert_array_equal(t, arrays["t_train"])
    np.testing.assert_array_equal(x_test.reshape(-1, 28, 28), arrays["x_test"])
    np.testing.assert_array_equal(t_test, arrays["t_test"])


def _regzip(data: bytes) -> bytes:
    """The same content, compressed differently (another level and mtime, like Debian's copies)."""
    again = gzip.compress(gzip.decompress(data), compresslevel=1, mtime=1234567890)
    assert again != data
    return again


@pytest.mark.parametrize("download_on", [False, True])
def test_a_regzipped_copy_loads_and_is_never_touched(fake, server, tmp_path, download_on):
    files, arrays = fake
    for name, data in files.items():
        (tmp_path / name).write_bytes(_regzip(data))
    before = _snapshot(tmp_path)
    loaded = load_mnist(False, False, data_dir=tmp_path, download=download_on, mirrors=[_dead_mirror()],
                        timeout=TIMEOUT, progress=False)
    _same_arrays(loaded, arrays)
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k != "mnist.npz"} == before
    assert server.requests == []


def test_mixed_uncompressed_and_regzipped_copies_load(fake, server, tmp_path):
    files, arrays = fake
    names = list(files)
    (tmp_path / names[0]).write_bytes(_regzip(files[names[0]]))
    (tmp_path / names[1].removesuffix(".gz")).write_bytes(gzip.decompress(files[names[1]]))
    (tmp_path / names[2].removesuffix(".gz").replace("-idx", ".idx")).write_bytes(gzip.decompress(files[names[2]]))
    (tmp_path / names[3]).write_bytes(files[names[3]])
    _same_arrays(load_mnist(False, False, data_dir=tmp_path, download=False), arrays)


@pytest.mark.parametrize("form", ["gz", "regz", "raw"])
def test_a_flipped_byte_is_refused_naming_the_file_and_both_digests(fake, server, tmp_path, form):
    files, _ = fake
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    victim = GZ_NAMES[0]
    raw = bytearray(gzip.decompress(files[victim]))
    raw[1000] ^= 0x01
    bad = gzip.compress(bytes(raw), mtime=0) if form != "raw" else bytes(raw)
    (tmp_path / victim).unlink()
    path = tmp_path / (victim if form != "raw" else victim.removesuffix(".gz"))
    path.write_bytes(bad)
    before = _snapshot(tmp_path)
    with pytest.raises(DatasetError) as info:
        load_mnist(data_dir=tmp_path, download=True, mirrors=[server.url("a")], timeout=TIMEOUT, progress=False)
    message = str(info.value)
    assert str(path) in message
    assert content_sha256_of(files)[victim] in message and hashlib.sha256(bytes(raw)).hexdigest() in message
    assert _snapshot(tmp_path) == before and server.requests == []


@pytest.mark.parametrize("loader", ["mnist", "fashion"])
def test_the_other_datasets_files_are_refused_and_kept(fake, monkeypatch, tmp_path, loader):
    files, _ = fake
    other, _ = fake_mnist(seed=1)
    use_digests(monkeypatch, files, fashion=other)
    placed = other if loader == "mnist" else files
    for name, data in placed.items():
        (tmp_path / name).write_bytes(_regzip(data))
    before = _snapshot(tmp_path)
    load = load_mnist if loader == "mnist" else load_fashion_mnist
    owner = "Fashion-MNIST" if loader == "mnist" else "MNIST"
    with pytest.raises(DatasetError, match=f"it is {owner}'s file of that name.*own data_dir"):
        load(data_dir=tmp_path, download=True, mirrors=[_dead_mirror()], timeout=TIMEOUT, progress=False)
    assert _snapshot(tmp_path) == before


def test_files_are_kept_with_download_on_and_offline(fake, server, tmp_path):
    files, _ = fake
    (tmp_path / GZ_NAMES[1]).write_bytes(b"\x1f\x8b broken gzip")
    before = _snapshot(tmp_path)
    with pytest.raises(DatasetError, match="damaged or truncated gzip data.*"):
        load_mnist(data_dir=tmp_path, download=True, mirrors=[_dead_mirror()], timeout=TIMEOUT, progress=False)
    assert _snapshot(tmp_path) == before


def test_fetch_never_replaces_a_file_it_did_not_write(fake, server, tmp_path):
    files, _ = fake
    mine = tmp_path / GZ_NAMES[0]
    mine.write_bytes(b"my own file")
    failures = download.fetch({GZ_NAMES[0]: "0" * 64}, tmp_path, [server.url("a")], progress=False)
    assert "was not written by xpnet" in failures[GZ_NAMES[0]][0]
    assert mine.read_bytes() == b"my own file" and server.requests == []


# ----------------------------------------------------------------------------- download edge cases


@pytest.mark.parametrize(
    ("mirrors", "error", "match"),
    [([], ValueError, "mirrors: expected at least one base URL"),
     ([123], TypeError, r"mirrors\[0\]: expected a base URL \(str\), got 123"),
     (["http://ok/", None], TypeError, r"mirrors\[1\]"),
     (["ftp://x/"], ValueError, r"mirrors\[0\]: expected a base URL starting with http"),
     ("http://x/", TypeError, "mirrors: expected a sequence"),
     (b"http://x/", TypeError, "mirrors: expected a sequence"),
     (42, TypeError, "mirrors: expected a sequence")],
)
def test_bad_mirrors_are_named_before_any_work(tmp_path, mirrors, error, match):
    folder = tmp_path / "never-made"
    with pytest.raises(error, match=match):
        load_mnist(data_dir=folder, mirrors=mirrors)
    with pytest.raises(error, match=match):
        download.fetch({"f": "0" * 64}, folder, mirrors)
    assert not folder.exists()


@pytest.mark.parametrize("name", ["deadline", "timeout"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "5", True])
def test_bad_deadline_and_timeout_are_named(tmp_path, name, value):
    with pytest.raises(ValueError, match=f"{name}: expected"):
        load_mnist(data_dir=tmp_path / "x", **{name: value})
    assert not (tmp_path / "x").exists()


def test_identity_encoding_is_requested(fake, server, tmp_path):
    load_mnist(data_dir=tmp_path, mirrors=[server.url("a")], timeout=TIMEOUT, progress=False)
    assert server.headers and all(h.get("Accept-Encoding") == "identity" for h in server.headers)


@pytest.mark.parametrize("mode", ["encoded", "double"])
def test_a_gz_served_with_content_encoding_gzip_is_accepted(fake, server, tmp_path, mode):
    files, arrays = fake
    server.modes["a"] = mode
    _same_arrays(load_mnist(False, False, data_dir=tmp_path, mirrors=[server.url("a")], timeout=TIMEOUT,
                            progress=False), arrays)
    assert all((tmp_path / name).read_bytes() == data for name, data in files.items())


def test_a_dripping_server_is_cut_off_at_the_deadline(fake, server, tmp_path):
    files, arrays = fake
    server.modes["a"] = "drip"
    start = time.monotonic()
    with pytest.raises(DatasetError, match=r"not complete within the deadline of 1 s: cut off") as info:
        load_mnist(data_dir=tmp_path, mirrors=[server.url("a")], timeout=TIMEOUT, deadline=1.0, progress=False)
    took = time.monotonic() - start
    assert 1.0 <= took < 4.0, took
    assert server.requests == [("a", GZ_NAMES[0])]  # a deadline is not retried on the same mirror
    assert str(tmp_path) in str(info.value)
    assert _snapshot(tmp_path) == {}


def test_after_a_deadline_the_next_mirror_serves(fake, server, tmp_path):
    files, arrays = fake
    server.modes["a"] = "drip"
    _same_arrays(load_mnist(False, False, data_dir=tmp_path, mirrors=[server.url("a"), server.url("b")],
                            timeout=TIMEOUT, deadline=0.6, progress=False), arrays)
    assert server.requests[:2] == [("a", GZ_NAMES[0]), ("b", GZ_NAMES[0])]


def test_default_deadline_grows_with_the_file():
    watch = download._Deadline(None, 0.0)
    assert watch.limit() == download.DEADLINE
    assert watch.limit(100 * 10**6) == 100 * 10**6 / download.MIN_RATE > download.DEADLINE
    assert download._Deadline(2.5, 0.0).limit(10**9) == 2.5


# ----------------------------------------------------------------------------- SIGKILL mid-download


def test_sigkill_during_a_download_leaves_no_final_file_and_the_next_run_cleans_up(fake, server, tmp_path):
    files, arrays = fake
    server.modes["a"] = "drip"
    folder = tmp_path / "mnist"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import json, sys
            from xpnet.datasets import load_mnist, sources
            digests = json.loads(sys.argv[1])
            sources.MNIST_SHA256.update(digests["gz"])
            sources.MNIST_CONTENT_SHA256.update(digests["content"])
            load_mnist(data_dir={str(folder)!r}, mirrors=[{server.url("a")!r}], progress=False)
        """), json.dumps({
            "gz": {n: hashlib.sha256(d).hexdigest() for n, d in files.items()},
            "content": content_sha256_of(files),
        })],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while not any(p.name.endswith(".part") for p in folder.glob(".*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a few bytes sent (pooch writes them in 1 KiB chunks: the file may be empty)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    parts = [p for p in folder.iterdir() if p.name.endswith(".part")]
    assert len(parts) == 1 and server.requests == [("a", GZ_NAMES[0])], "the kill landed mid-transfer"
    assert not (folder / GZ_NAMES[0]).exists()
    server.modes["a"] = "ok"
    _same_arrays(load_mnist(False, False, data_dir=folder, mirrors=[server.url("a")], timeout=TIMEOUT,
                            progress=False), arrays)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*GZ_NAMES, "mnist.npz", _owned.MANIFEST])


def test_orphans_of_other_targets_and_user_files_survive_a_download(fake, server, tmp_path):
    keep = [tmp_path / ".other-file.gz.abcd1234.part", tmp_path / f".{GZ_NAMES[0]}.mine.part",
            tmp_path / f"{GZ_NAMES[0]}.part"]
    for path in keep:
        path.write_bytes(b"keep")
    orphan = tmp_path / f".{GZ_NAMES[0]}.abcd_123.part"
    orphan.write_bytes(b"half")
    load_mnist(data_dir=tmp_path, mirrors=[server.url("a")], timeout=TIMEOUT, progress=False)
    assert not orphan.exists() and all(path.read_bytes() == b"keep" for path in keep)


def test_content_digests_match_the_bundled_real_files():
    from importlib import resources

    from xpnet.datasets import sources

    for name in sources.SAMPLE_SHA256:
        raw = gzip.decompress((resources.files("xpnet.datasets") / "data" / name).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == sources.MNIST_CONTENT_SHA256[name]
    for title, (gz, content) in sources.tables().items():
        assert list(gz) == list(content) == list(sources.SHAPES) == list(GZ_NAMES), title
        assert len(set(gz.values()) | set(content.values())) == 8, title
    assert not set(sources.MNIST_CONTENT_SHA256.values()) & set(sources.FASHION_MNIST_CONTENT_SHA256.values())


def test_a_bad_copy_beside_a_good_one_is_ignored_with_a_warning_and_kept(fake, server, tmp_path):
    files, arrays = fake
    for name, data in files.items():
        (tmp_path / name.removesuffix(".gz")).write_bytes(gzip.decompress(data))
    (tmp_path / GZ_NAMES[3]).write_bytes(b"junk")
    with pytest.warns(UserWarning, match=f"{GZ_NAMES[3]}: content SHA-256 .*ignored it"):
        _same_arrays(load_mnist(False, False, data_dir=tmp_path, download=False), arrays)
    assert (tmp_path / GZ_NAMES[3]).read_bytes() == b"junk"


# ----------------------------------------------------------------------- size bounds (issue 21 B)
@pytest.mark.parametrize("mode, reason", [
    ("endless", "sent more than the 100000 bytes this file has: cut off"),
    ("huge", "announces 1000000000000 bytes, more than the 100000 this file has: refused"),
])
def test_a_transfer_stops_at_the_files_size(fake, server, tmp_path, mode, reason):
    server.modes["a"] = mode
    failures = download.fetch({GZ_NAMES[0]: "0" * 64}, tmp_path, [server.url("a")], timeout=TIMEOUT,
                              progress=False, max_bytes={GZ_NAMES[0]: 100_000})
    assert failures[GZ_NAMES[0]] == [f"{server.url('a')}{GZ_NAMES[0]}: {reason}"]
    assert server.requests == [("a", GZ_NAMES[0])]  # not retried: the same mirror would send the same
    assert list(tmp_path.iterdir()) == []  # the partial file is gone


def test_the_default_size_bound_applies_without_sizes(fake, server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "MAX_BYTES", 50_000)
    server.modes["a"] = "endless"
    failures = download.fetch({GZ_NAMES[0]: "0" * 64}, tmp_path, [server.url("a")], timeout=TIMEOUT, progress=False)
    assert "sent more than the 50000 bytes" in failures[GZ_NAMES[0]][0]


def test_a_gzip_encoded_bomb_is_not_inflated_past_the_files_size(fake, server, tmp_path):
    import tracemalloc

    from _idx_server import bomb

    bomb()  # built before measuring
    server.modes["a"] = "bomb"
    tracemalloc.start()
    try:
        failures = download.fetch({GZ_NAMES[3]: "0" * 64}, tmp_path, [server.url("a")], timeout=TIMEOUT,
                                  progress=False, max_bytes={GZ_NAMES[3]: 200_000})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "SHA-256" in failures[GZ_NAMES[3]][0] and "rejected" in failures[GZ_NAMES[3]][0]
    assert peak < 10_000_000, peak


def test_load_mnist_bounds_its_downloads_by_the_known_sizes(fake, server, tmp_path):
    from xpnet.datasets import sources

    server.modes["a"] = "endless"
    with pytest.raises(DatasetError, match=rf"sent more than the {sources.max_file_bytes(GZ_NAMES[0])} bytes"):
        load_mnist(data_dir=tmp_path, mirrors=[server.url("a")], timeout=TIMEOUT, progress=False)


def _zeros_gz(header: bytes, size: int) -> bytes:
    return gzip.compress(header + bytes(size), compresslevel=9, mtime=0)


@pytest.mark.parametrize("name", [GZ_NAMES[1], GZ_NAMES[3], GZ_NAMES[2]])
def test_a_local_gz_that_inflates_past_the_content_size_stops_before_the_sha(fake, server, tmp_path, name):
    import tracemalloc

    from xpnet.datasets import _local, sources

    path = tmp_path / name
    path.write_bytes(_zeros_gz(b"\0\0\x08\x01" + (10_000).to_bytes(4, "big"), 2 * sources.content_bytes(name)))
    assert path.stat().st_size < sources.max_file_bytes(name)  # passes the size check: small, but a bomb
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=rf"{name}: inflates to more than {sources.content_bytes(name)} bytes"):
            _local.read_verified(path, name, "MNIST")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * sources.content_bytes(name) + 1_000_000


def test_a_local_file_larger_than_any_copy_is_refused_before_reading(fake, server, tmp_path):
    from xpnet.datasets import _local, sources

    name = GZ_NAMES[3]
    path = tmp_path / name
    path.write_bytes(bytes(sources.max_file_bytes(name) + 1))
    with pytest.raises(DatasetError, match=rf"{name}: {sources.max_file_bytes(name) + 1} bytes, more than the"):
        _local.read_verified(path, name, "MNIST")
    with pytest.raises(DatasetError, match="are not the right ones"):
        load_mnist(data_dir=tmp_path, download=False)


@pytest.mark.parametrize("claims, sends", [((10,), 10 << 20), ((0,), 1 << 20), ((2, 3), 7)])
def test_parse_idx_inflates_no_further_than_its_header_says(claims, sends):
    from xpnet.datasets.idx import parse_idx

    header = b"\0\0\x08" + bytes([len(claims)]) + b"".join(n.to_bytes(4, "big") for n in claims)
    with pytest.raises(DatasetError, match=r"src: (inflates to more than|corrupt \(trailing bytes\))"):
        parse_idx(_zeros_gz(header, sends), source="src")


def test_gunzip_reads_every_member_and_zero_padding_but_not_damage():
    from xpnet.datasets._common import gunzip

    data = gzip.compress(b"abc", mtime=0) + gzip.compress(b"def", mtime=0) + bytes(7)
    assert gunzip(data, "src", 6) == b"abcdef"
    with pytest.raises(DatasetError, match="src: inflates to more than 5 bytes"):
        gunzip(data, "src", 5)
    with pytest.raises(DatasetError, match="src: damaged or truncated gzip data"):
        gunzip(data[:15], "src", 100)
    with pytest.raises(DatasetError, match="src: damaged or truncated gzip data"):
        gunzip(data[:-7] + b"garbage", "src", 100)
