"""Fault injection for the data and file layers: hostile pickles and archives, kills mid-write
and mid-download, user files that must survive, and the download edge cases.

Every test is bounded in time: subprocesses run under a timeout, servers are local
(127.0.0.1) and their slow modes stop by themselves.
"""

from __future__ import annotations

import gzip
import io as _io
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from xpnet import io

ROOT = Path(__file__).resolve().parents[1]


def _run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, env=env
    )


# ----------------------------------------------------------------------------- crafted pickles


def _short(text: bytes) -> bytes:
    return b"X" + struct.pack("<I", len(text)) + text


def crafted_array_pickle(
    typecode: bytes = b"O8", n: int = 1000, data: bytes = b"]", module: bytes = b"numpy.core.multiarray",
    flags: int = 63,
) -> bytes:
    """A protocol-2 pickle of ``ndarray`` (n,) of dtype ``typecode`` whose data is the opcodes ``data``.

    The default is the crash of issue 12: an object array whose element list (empty) is
    shorter than its shape.  ``flags`` is the dtype's state's flags (63: "holds objects").
    """
    dtype = b"cnumpy\ndtype\n" + _short(typecode) + b"\x89\x88\x87R(K\x03" + _short(b"|") + (
        b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK" + bytes([flags]) + b"tb"
    )
    return (
        b"\x80\x02c" + module + b"\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
        b"(K\x01J" + struct.pack("<i", n) + b"\x85" + dtype + b"\x89" + data + b"tb."
    )


CRAFTED = {
    # the crash: object dtype, element list shorter than the shape
    "object-short-list": crafted_array_pickle(),
    "object-numpy._core": crafted_array_pickle(module=b"numpy._core.multiarray"),
    "object-in-dict": b"\x80\x02}" + _short(b"W") + crafted_array_pickle()[2:-1] + b"s.",
    # a numeric dtype handed a list, or too few bytes
    "float-with-list": crafted_array_pickle(b"f8", data=b"]", flags=0),
    "float-short-bytes": crafted_array_pickle(b"f8", data=b"C\x03abc", flags=0),
    "negative-shape": crafted_array_pickle(b"f8", n=-5, data=b"C\x00", flags=0),
    # a float dtype whose pickled state flags it as holding objects (NumPy accepts the flag)
    "float-flagged-as-object": crafted_array_pickle(b"f8", data=b"]"),
    # other non-numeric dtypes
    "void": crafted_array_pickle(b"V8", data=b"C\x00"),
    "unicode": crafted_array_pickle(b"U4", data=b"C\x00"),
    "datetime": crafted_array_pickle(b"M8", data=b"C\x00"),
    # NumPy's other reconstructors with an object dtype
    "scalar-object": b"\x80\x02cnumpy.core.multiarray\nscalar\ncnumpy\ndtype\n" + _short(b"O8")
    + b"\x89\x88\x87R" + _short(b"x") + b"\x86R.",
    "frombuffer-object": b"\x80\x05cnumpy._core.numeric\n_frombuffer\nC\x08\x00\x00\x00\x00\x00\x00\x00\x00"
    b"cnumpy\ndtype\n" + _short(b"O8") + b"\x89\x88\x87RK\x01\x85" + _short(b"C") + b"tR.",
    # a class other than ndarray rebuilt through _reconstruct
    "reconstruct-other-class": b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\ndtype\nK\x00\x85C\x01b"
    b"\x87R.",
}


def test_crafted_pickles_are_refused_without_crashing(tmp_path):
    for name, data in CRAFTED.items():
        (tmp_path / f"{name}.pkl").write_bytes(data)
    result = _run_python(f"""
        import pathlib, pickle
        from xpnet import io
        for path in sorted(pathlib.Path({str(tmp_path)!r}).glob("*.pkl")):
            try:
                io.load_arrays(path)
                print(path.stem, "LOADED", flush=True)
            except (pickle.UnpicklingError, ValueError) as exc:
                print(path.stem, "refused:", str(exc).splitlines()[0], flush=True)
        print("done")
    """)
    assert result.returncode == 0, f"crashed (rc {result.returncode}) after:\n{result.stdout}{result.stderr}"
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line != "done")
    assert sorted(lines) == sorted(CRAFTED)
    for name, outcome in lines.items():
        assert outcome.startswith("refused: "), (name, outcome)
    assert "refused dtype dtype('O')" in lines["object-short-list"]
    assert "numeric arrays only" in lines["object-numpy._core"]
    assert "refused array data" in lines["float-with-list"] and "needs 8000 bytes" in lines["float-with-list"]
    assert "refused array shape" in lines["negative-shape"]
    assert "flagged as holding objects" in lines["float-flagged-as-object"]


def test_crafted_pickle_is_small_and_crashes_numpy_unguarded():
    """The fixture is the issue's file: ~120 bytes, and plain pickle.loads dies on it (SIGSEGV)."""
    data = CRAFTED["object-short-list"]
    assert len(data) < 130
    result = _run_python(f"import pickle; pickle.loads({data!r}); print('survived')", timeout=60)
    assert result.returncode != 0 or "survived" in result.stdout  # documents the hazard; never hangs


def test_restricted_unpickler_still_reads_every_numeric_kind(tmp_path):
    arrays = {k: np.arange(6).astype(k).reshape(2, 3) for k in ("bool", "int8", "uint16", "int64", "float32")}
    arrays["scalar"] = np.float64(2.5)
    for protocol in (2, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(arrays, protocol=protocol))
        loaded = io.load_arrays(path)
        for key, value in arrays.items():
            assert type(loaded[key]) is np.ndarray and loaded[key].dtype == np.asarray(value).dtype
            np.testing.assert_array_equal(loaded[key], value)


# ----------------------------------------------------------------------------- hostile archives


def _npz(tmp_path: Path) -> Path:
    path = tmp_path / "p.npz"
    io.save_arrays(path, {"W": np.arange(1000.0), "b": np.ones(3)})
    return path


@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage"])
def test_damaged_npz_names_the_path(tmp_path, damage):
    path = _npz(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped":
        data[200] ^= 0xFF  # inside W's data: a CRC error
    else:
        data = bytearray(b"PK\x03\x04" + b"garbage" * 10)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"p\.npz: damaged \.npz archive"):
        io.load_arrays(path)


@pytest.mark.parametrize("member", ["notes.txt", "W.pkl"])
def test_npz_member_that_is_not_npy_is_refused_by_name(tmp_path, member):
    path = tmp_path / "p.npz"
    with zipfile.ZipFile(path, "w") as archive:
        buffer = _io.BytesIO()
        np.save(buffer, np.ones(2))
        archive.writestr("W.npy", buffer.getvalue())
        archive.writestr(member, b"hello" if member.endswith(".txt") else pickle.dumps(np.ones(2)))
    with pytest.raises(ValueError, match=rf"members \['{member}'\] are not \.npy arrays"):
        io.load_arrays(path)


def test_npz_object_array_is_refused_naming_the_path(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, W=np.array([None, 1], dtype=object))
    with pytest.raises(ValueError, match=r"p\.npz: damaged \.npz archive .*allow_pickle"):
        io.load_arrays(path)


# ----------------------------------------------------------------------------- atomic writes


def _tmp_name(target: Path) -> str:
    return f".{target.name}.{'0123456789abcdef' * 2}.tmp"


def test_orphaned_temp_files_of_the_target_are_removed_at_its_next_write(tmp_path):
    target = tmp_path / "params.npz"
    orphan = tmp_path / _tmp_name(target)
    orphan.write_bytes(b"half")
    other_target = tmp_path / _tmp_name(tmp_path / "other.npz")
    other_target.write_bytes(b"another target's")
    users = [tmp_path / n for n in (".params.npz.mine.tmp", ".params.npz.0123.tmp", "params.npz.tmp",
                                    f".params.npz.{'A' * 32}.tmp")]
    for path in users:
        path.write_bytes(b"user")
    io.save_arrays(target, {"W": np.ones(2)})
    assert not orphan.exists()
    assert other_target.exists() and all(path.read_bytes() == b"user" for path in users)


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    target = tmp_path / "params.npz"
    live = tmp_path / _tmp_name(target)
    fd = os.open(live, os.O_WRONLY | os.O_CREAT)
    try:
        io.hold_lock(fd)
        io.save_arrays(target, {"W": np.ones(2)})
        assert live.exists()
    finally:
        os.close(fd)
    io.save_arrays(target, {"W": np.ones(2)})
    assert not live.exists()


@pytest.mark.parametrize("when", [0.05, 0.3])
def test_sigkill_during_save_arrays_leaves_old_or_new_and_no_orphan_after_next_write(tmp_path, when):
    target = tmp_path / "big.npz"
    io.save_arrays(target, {"W": np.zeros(10)})
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import numpy as np
            from xpnet import io
            big = np.ones(20_000_000)
            print("go", flush=True)
            for _ in range(100):
                io.save_arrays({str(target)!r}, {{"W": big}})
        """)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout.readline().strip() == b"go"
        time.sleep(when)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")], "the kill landed mid-write"
    loaded = io.load_arrays(target)["W"]
    assert loaded.shape in ((10,), (20_000_000,)) and (loaded == (0 if loaded.shape == (10,) else 1)).all()
    io.save_arrays(target, {"W": np.full(3, 7.0)})
    assert sorted(os.listdir(tmp_path)) == ["big.npz"]
    np.testing.assert_array_equal(io.load_arrays(target)["W"], np.full(3, 7.0))


# ----------------------------------------------------------------------------- dataset files

from _idx_server import GZ_NAMES, MirrorServer, content_sha256_of, fake_mnist, use_digests  # noqa: E402

from xpnet.datasets import DatasetError, _owned, download, load_fashion_mnist, load_mnist  # noqa: E402

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
    import hashlib

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
        """), __import__("json").dumps({
            "gz": {n: __import__("hashlib").sha256(d).hexdigest() for n, d in files.items()},
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
    import hashlib
    from importlib import resources

    from xpnet.datasets import sources

    for name in sources.SAMPLE_SHA256:
        raw = gzip.decompress((resources.files("xpnet.datasets") / "data" / name).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == sources.MNIST_CONTENT_SHA256[name]
    for title, (gz, content) in sources.tables().items():
        assert list(gz) == list(content) == list(sources.SHAPES) == list(GZ_NAMES), title
        assert len(set(gz.values()) | set(content.values())) == 8, title
    assert not set(sources.MNIST_CONTENT_SHA256.values()) & set(sources.FASHION_MNIST_CONTENT_SHA256.values())
