"""load_mnist / load_fashion_mnist end to end against mirrors served on 127.0.0.1.

A fixture starts a local HTTP server that serves a tiny generated MNIST (50 + 20 images)
and swaps the published SHA-256 table for the generated files' digests; no test reaches
the internet.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import time
from importlib import resources

import numpy as np
import pytest
from _idx_server import GZ_NAMES, MirrorServer, content_sha256_of, fake_mnist, idx_bytes, sha256_of, use_digests

from xpnet.datasets import (
    DatasetError, _common, _owned, download, load_fashion_mnist, load_mnist, load_mnist_sample, mnist, sources,
)

TIMEOUT = 0.5


@pytest.fixture
def fake():
    """The generated files (name -> .gz bytes) and their arrays."""
    return fake_mnist()


@pytest.fixture
def server(fake, monkeypatch):
    """A running mirror server for ``fake``, whose digests replace the published ones."""
    files, _ = fake
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.delenv("XPNET_DATA", raising=False)
    use_digests(monkeypatch, files)
    monkeypatch.setattr(download, "RETRY_DELAY", 0.0)
    with MirrorServer(files).running() as srv:
        yield srv


def _load(server, folder, mirrors=("a", "b"), **kwargs):
    kwargs.setdefault("normalize", False)
    kwargs.setdefault("flatten", False)
    return load_mnist(
        data_dir=folder, mirrors=[server.url(m) for m in mirrors], timeout=TIMEOUT, progress=False, **kwargs
    )


def _assert_same(loaded, arrays):
    (x_train, t_train), (x_test, t_test) = loaded
    np.testing.assert_array_equal(x_train[:, 0], arrays["x_train"])
    np.testing.assert_array_equal(t_train, arrays["t_train"])
    np.testing.assert_array_equal(x_test[:, 0], arrays["x_test"])
    np.testing.assert_array_equal(t_test, arrays["t_test"])


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone/"


def _files(folder):
    """The folder's files, less xpnet's manifest."""
    names = (p.name for p in folder.iterdir()) if folder.exists() else ()
    return sorted(name for name in names if name != _owned.MANIFEST)


def test_download_verifies_and_caches(server, fake, tmp_path):
    _assert_same(_load(server, tmp_path), fake[1])
    assert _files(tmp_path) == sorted([*GZ_NAMES, "mnist.npz"])
    assert server.requests == [("a", name) for name in GZ_NAMES]


def test_real_test_set_files_pass_the_published_digests(fake, server, tmp_path, monkeypatch):
    data = resources.files("xpnet.datasets") / "data"
    for name in GZ_NAMES[2:]:
        server.files[name] = (data / name).read_bytes()
        monkeypatch.setitem(sources.MNIST_SHA256, name, mnist.SAMPLE_SHA256[name])
        monkeypatch.setitem(sources.MNIST_CONTENT_SHA256, name, content_sha256_of(server.files)[name])
    _, (x_test, t_test) = _load(server, tmp_path, normalize=False, flatten=True)
    (x_a, t_a), (x_b, t_b) = load_mnist_sample(normalize=False)
    np.testing.assert_array_equal(x_test, np.concatenate([x_a, x_b]))
    np.testing.assert_array_equal(t_test, np.concatenate([t_a, t_b]))


def test_formats_like_the_book(server, fake, tmp_path):
    (x, t), (x_test, t_test) = _load(server, tmp_path, normalize=True, flatten=True, one_hot_label=True)
    assert x.shape == (50, 784) and x.dtype == np.float32 and x_test.shape == (20, 784)
    np.testing.assert_allclose(x, fake[1]["x_train"].reshape(50, 784) / 255, rtol=1e-6)
    assert t.shape == (50, 10) and t.dtype == np.float32 and t_test.shape == (20, 10)
    np.testing.assert_array_equal(t.argmax(axis=1), fake[1]["t_train"])
    (x, t), _ = _load(server, tmp_path, normalize=True, dtype=np.float64)
    assert x.shape == (50, 1, 28, 28) and x.dtype == np.float64 and t.dtype == np.int64


def test_second_call_is_a_cache_hit_without_network(server, fake, tmp_path):
    _load(server, tmp_path)
    server.requests.clear()
    start = time.perf_counter()
    loaded = load_mnist(False, False, data_dir=tmp_path, download=False, mirrors=[_closed_port_url()])
    assert time.perf_counter() - start < 1.0
    _assert_same(loaded, fake[1])
    assert server.requests == []


@pytest.mark.parametrize(
    ("mode", "tries"),
    [("404", 1), ("corrupt", 1), ("500", download.ATTEMPTS), ("stall", download.ATTEMPTS),
     ("truncate", download.ATTEMPTS)],
)
def test_falls_back_to_the_next_mirror(server, fake, tmp_path, mode, tries):
    server.modes["a"] = mode
    start = time.perf_counter()
    _assert_same(_load(server, tmp_path), fake[1])
    # mirror "a" is given up for the first file; "b", which worked, is asked first after that
    assert server.requests == [("a", GZ_NAMES[0])] * tries + [("b", name) for name in GZ_NAMES]
    assert _files(tmp_path) == sorted([*GZ_NAMES, "mnist.npz"])
    assert time.perf_counter() - start < tries * TIMEOUT + 3


def test_transient_failure_is_retried_on_the_same_mirror(server, fake, tmp_path):
    server.modes["a"] = "flaky"
    _assert_same(_load(server, tmp_path, mirrors=["a"]), fake[1])
    assert server.requests == [("a", name) for name in GZ_NAMES for _ in range(2)]


def test_retries_are_bounded(server, tmp_path):
    server.modes["a"] = "500"
    with pytest.raises(DatasetError) as info:
        _load(server, tmp_path, mirrors=["a"])
    assert server.requests == [("a", GZ_NAMES[0])] * download.ATTEMPTS  # later files are not tried
    message = str(info.value)
    assert f"{server.url('a')}{GZ_NAMES[0]}: HTTP 500" in message
    assert str(tmp_path) in message and all(name in message for name in GZ_NAMES)


@pytest.mark.parametrize("mode", ["corrupt", "truncate"])
def test_bad_transfer_is_rejected_and_leaves_nothing(server, tmp_path, mode):
    server.modes.update(a=mode, b=mode)
    folder = tmp_path / "mnist"
    with pytest.raises(DatasetError, match="its files are not in .*no mirror delivered them") as info:
        _load(server, folder)
    if mode == "corrupt":
        assert "SHA-256" in str(info.value) and "rejected" in str(info.value)
    assert _files(folder) == []


def test_offline_error_says_where_what_and_how(server, tmp_path):
    folder = tmp_path / "nothing-here"
    with pytest.raises(DatasetError) as info:
        load_mnist(data_dir=folder, download=False)
    message = str(info.value)
    assert str(folder) in message and "download=False" in message
    assert all(name in message for name in GZ_NAMES)
    assert "by hand" in message and mnist.MNIST_MIRRORS[0] in message and "load_mnist_sample" in message
    assert server.requests == [] and not folder.exists()


def test_unreachable_mirrors_give_the_offline_error(fake, server, tmp_path):
    for name, data in list(fake[0].items())[1:]:
        (tmp_path / name).write_bytes(data)
    dead = [_closed_port_url(), server.url("a")]
    server.modes["a"] = "stall"
    with pytest.raises(DatasetError) as info:
        load_mnist(data_dir=tmp_path, mirrors=dead, timeout=TIMEOUT, progress=False)
    message = str(info.value)
    assert f"{dead[0]}{GZ_NAMES[0]}: ConnectionError" in message
    assert f"{server.url('a')}{GZ_NAMES[0]}: no answer within {TIMEOUT:g} s" in message
    assert "1 of its 4 files are not in" in message
    assert "by hand" in message and GZ_NAMES[1] not in message.split("by hand")[1]
    assert _files(tmp_path) == sorted(GZ_NAMES[1:])


def test_files_placed_by_hand_are_used_offline(fake, server, tmp_path):
    files, arrays = fake
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    _assert_same(load_mnist(False, False, data_dir=tmp_path, download=False), arrays)
    assert server.requests == []


def test_uncompressed_idx_files_are_used_offline(fake, server, tmp_path):
    files, arrays = fake
    # both spellings in the wild: "-idx3-ubyte" (the original) and ".idx3-ubyte"
    names = ["train-images-idx3-ubyte", "train-labels.idx1-ubyte", "t10k-images.idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    for name, data in zip(names, files.values()):
        (tmp_path / name).write_bytes(gzip.decompress(data))
    _assert_same(load_mnist(False, False, data_dir=tmp_path, download=False), arrays)


def test_damaged_uncompressed_file_is_reported_and_kept(fake, server, tmp_path):
    files, _ = fake
    for name, data in files.items():
        (tmp_path / name.removesuffix(".gz")).write_bytes(gzip.decompress(data)[:-1])
    with pytest.raises(DatasetError, match=r"(?s)train-images-idx3-ubyte: content SHA-256 .*truncated.*replace them"):
        load_mnist(data_dir=tmp_path, download=False)
    assert (tmp_path / "train-images-idx3-ubyte").exists()


def test_a_wrong_gz_the_user_placed_is_refused_and_kept(fake, server, tmp_path):
    files, _ = fake
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / GZ_NAMES[2]).write_bytes(b"not the file")
    with pytest.raises(DatasetError, match=f"(?s){GZ_NAMES[2]}: content SHA-256 .*xpnet did not write these files"):
        _load(server, tmp_path)
    assert (tmp_path / GZ_NAMES[2]).read_bytes() == b"not the file"
    assert server.requests == []


def test_a_damaged_download_of_xpnets_is_deleted_then_fetched_again(fake, server, tmp_path):
    files, arrays = fake
    _load(server, tmp_path)
    (tmp_path / "mnist.npz").unlink()
    path = tmp_path / GZ_NAMES[2]
    stat = path.stat()
    path.write_bytes(b"\x1f\x8b" + b"\x00" * (stat.st_size - 2))  # bit rot: same size and time
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    server.requests.clear()
    with pytest.raises(DatasetError, match=f"(?s)rejected|{GZ_NAMES[2]}: damaged .*xpnet had downloaded it"):
        _load(server, tmp_path, download=False)
    assert not path.exists()
    _assert_same(_load(server, tmp_path), arrays)
    assert server.requests == [("a", GZ_NAMES[2])]


def test_another_datasets_files_are_left_alone(fake, server, tmp_path, monkeypatch):
    files, _ = fake
    other, _ = fake_mnist(seed=1)
    use_digests(monkeypatch, files, fashion=other)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(DatasetError, match="it is MNIST's file of that name.*its own data_dir"):
        load_fashion_mnist(data_dir=tmp_path, download=True, mirrors=[server.url("a")], progress=False)
    assert _files(tmp_path) == sorted(GZ_NAMES)
    assert all((tmp_path / name).read_bytes() == data for name, data in files.items())
    assert server.requests == []


def test_unparseable_download_is_deleted_and_refetched_next_time(fake, server, tmp_path, monkeypatch):
    files, arrays = fake
    damaged = gzip.compress(idx_bytes(arrays["x_train"])[:-100])
    server.files[GZ_NAMES[0]] = damaged
    monkeypatch.setitem(sources.MNIST_SHA256, GZ_NAMES[0], sha256_of({"x": damaged})["x"])
    with pytest.raises(DatasetError, match="content SHA-256 .*truncated.*deleted it \\(xpnet had just downloaded it\\)"):
        _load(server, tmp_path)
    assert GZ_NAMES[0] not in _files(tmp_path) and "mnist.npz" not in _files(tmp_path)
    server.files[GZ_NAMES[0]] = files[GZ_NAMES[0]]
    monkeypatch.setitem(sources.MNIST_SHA256, GZ_NAMES[0], sha256_of(files)[GZ_NAMES[0]])
    server.requests.clear()
    _assert_same(_load(server, tmp_path), arrays)
    assert server.requests == [("a", GZ_NAMES[0])]


def test_corrupt_npz_cache_of_xpnets_is_rebuilt(fake, server, tmp_path):
    _load(server, tmp_path)
    cache = tmp_path / "mnist.npz"
    stat = cache.stat()
    cache.write_bytes(b"PK\x03\x04" + b"\x00" * (stat.st_size - 4))  # bit rot: same size and time
    os.utime(cache, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.warns(UserWarning, match="unreadable cache.*deleted it \\(xpnet wrote it\\), rebuilding"):
        loaded = _load(server, tmp_path, download=False)
    _assert_same(loaded, fake[1])
    _assert_same(_load(server, tmp_path, download=False), fake[1])  # rewritten: no warning now


def test_a_cache_file_the_user_placed_is_never_overwritten(fake, server, tmp_path):
    _load(server, tmp_path)
    cache = tmp_path / "mnist.npz"
    cache.write_bytes(b"PK\x03\x04 mine")
    with pytest.warns(UserWarning) as warned:
        loaded = _load(server, tmp_path, download=False)
    messages = [str(w.message) for w in warned]
    assert "xpnet did not write it" in messages[0] and "not cached" in messages[1]
    _assert_same(loaded, fake[1])
    assert cache.read_bytes() == b"PK\x03\x04 mine"


def test_unwritable_cache_warns_and_still_loads(fake, server, tmp_path, monkeypatch):
    def refuse(path, arrays):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(_owned, "save_arrays", refuse)
    with pytest.warns(UserWarning, match="cannot write the cache"):
        _assert_same(_load(server, tmp_path), fake[1])


def test_progress_bar_names_the_file(server, tmp_path, capsys):
    load_mnist(data_dir=tmp_path, mirrors=[server.url("a")], timeout=TIMEOUT, progress=True)
    err = capsys.readouterr().err
    assert all(name in err for name in GZ_NAMES)


def test_xpnet_data_and_default_cache(fake, server, tmp_path, monkeypatch):
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "root"))
    load_fashion_mnist(mirrors=[server.url("a")], timeout=TIMEOUT, progress=False)
    assert _files(tmp_path / "root" / "fashion-mnist") == sorted([*GZ_NAMES, "fashion-mnist.npz"])
    monkeypatch.delenv("XPNET_DATA")
    monkeypatch.setattr(_common, "default_root", lambda: tmp_path / "cache")
    with pytest.raises(DatasetError, match=str(tmp_path / "cache" / "mnist")):
        load_mnist(download=False)


def test_default_root_is_the_user_cache(monkeypatch):
    monkeypatch.delenv("XPNET_DATA", raising=False)
    root = _common.default_root()
    assert root.name == "xpnet" or "xpnet" in root.parts
    assert _common.dataset_dir("mnist", None) == root / "mnist"


def test_a_file_where_a_folder_should_be(tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(DatasetError, match="data_dir: .*afile is a file, expected a directory"):
        load_mnist(data_dir=afile)
    monkeypatch.setenv("XPNET_DATA", str(afile))
    with pytest.raises(DatasetError, match="XPNET_DATA: .*afile is a file"):
        load_mnist()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"dtype": "int32"}, "dtype: expected"), ({"mirrors": "http://x/"}, "mirrors: expected"),
     ({"data_dir": 3}, "data_dir: expected")],
)
def test_bad_arguments_are_named(kwargs, match, tmp_path):
    kwargs.setdefault("data_dir", tmp_path)
    with pytest.raises((ValueError, TypeError), match=match):
        load_mnist(download=False, **kwargs)


def test_full_size_cache_hit_is_fast(tmp_path, monkeypatch):
    pattern = (np.arange(60000 * 784, dtype=np.uint32) % 251).astype(np.uint8)
    arrays = {
        "train-images-idx3-ubyte": pattern.reshape(60000, 28, 28),
        "train-labels-idx1-ubyte": pattern[:60000] % 10,
        "t10k-images-idx3-ubyte": pattern[: 10000 * 784].reshape(10000, 28, 28),
        "t10k-labels-idx1-ubyte": pattern[:10000] % 10,
    }
    contents = {name + ".gz": idx_bytes(array) for name, array in arrays.items()}
    for name, data in contents.items():
        (tmp_path / name.removesuffix(".gz")).write_bytes(data)
    for name, data in contents.items():
        monkeypatch.setitem(sources.MNIST_CONTENT_SHA256, name, hashlib.sha256(data).hexdigest())
    load_mnist(data_dir=tmp_path, download=False)
    start = time.perf_counter()
    (x, t), (x_test, _) = load_mnist(data_dir=tmp_path, download=False)
    assert time.perf_counter() - start < 1.0
    assert x.shape == (60000, 784) and x_test.shape == (10000, 784) and t.shape == (60000,)


def test_published_digests_are_well_formed():
    for table in (*sources.tables()["MNIST"], *sources.tables()["Fashion-MNIST"]):
        assert list(table) == list(GZ_NAMES)
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in table.values())
    assert mnist.SAMPLE_SHA256 == {name: mnist.MNIST_SHA256[name] for name in GZ_NAMES[2:]}
