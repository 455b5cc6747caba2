"""Fault injection for xpnet.io: hostile pickles and archives, kills mid-write, orphaned temp files.

Every test is bounded in time: subprocesses run under a timeout.  The dataset side is in
``test_faults_data.py``.
"""

from __future__ import annotations

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
    with pytest.raises(ValueError, match=rf"member '{member}' is not a \.npy array"):
        io.load_arrays(path)


def test_npz_object_array_is_refused_naming_the_path(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, W=np.array([None, 1], dtype=object))
    with pytest.raises(ValueError, match=r"p\.npz: array .W. has dtype object, expected a numeric array"):
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


# ----------------------------------------------------------------------- concurrent writers (issue 21 A)
def test_writers_of_one_file_at_once_never_lose_a_save(tmp_path):
    """Three processes save the same .npz 120 times each, starting together; every save lands."""
    code = f"""
        import sys, time
        import numpy as np
        from xpnet import io
        start, lost = float(sys.argv[1]), 0
        while time.time() < start:
            time.sleep(0.001)
        for i in range(120):
            try:
                io.save_arrays({str(tmp_path / "same.npz")!r}, {{"W": np.full(3, float(i))}})
            except OSError as exc:
                lost += 1
                print(type(exc).__name__, exc, file=sys.stderr)
        print(lost)
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = str(time.time() + 1.5)
    children = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), start], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    results = [child.communicate(timeout=60) for child in children]
    assert [out.strip() for out, _ in results] == ["0", "0", "0"], [err[-500:] for _, err in results]
    assert io.load_arrays(tmp_path / "same.npz")["W"].shape == (3,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.npz"]


def test_the_lock_is_held_through_the_rename(tmp_path, monkeypatch):
    """Another writer's cleanup running just before the rename finds the temp file locked."""
    real_replace, removed = os.replace, []

    def cleanup_then_replace(src, dst):
        removed.extend(io.remove_orphans(tmp_path, r"\.p\.npz\.[0-9a-f]{32}\.tmp"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", cleanup_then_replace)
    io.save_arrays(tmp_path / "p.npz", {"W": np.ones(2)})
    assert removed == [] and io.load_arrays(tmp_path / "p.npz")["W"].tolist() == [1.0, 1.0]


def test_a_temp_file_taken_before_it_was_locked_is_replaced_by_a_new_one(tmp_path, monkeypatch):
    """Between its creation and its lock, another writer's cleanup may delete the temp file."""
    real_lock, calls = io.hold_lock, []

    def cleanup_first(fd):
        if not calls:
            for path in tmp_path.glob(".p.npz.*.tmp"):
                path.unlink()  # what another writer's remove_orphans does in that window
        calls.append(fd)
        real_lock(fd)

    monkeypatch.setattr(io, "hold_lock", cleanup_first)
    io.save_arrays(tmp_path / "p.npz", {"W": np.ones(2)})
    assert len(calls) == 2 and io.load_arrays(tmp_path / "p.npz")["W"].tolist() == [1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npz"]


@pytest.mark.parametrize("path, error, match", [
    ("", ValueError, r"path: expected a file name such as 'params\.npz', got ''"),
    ("   ", ValueError, r"path: expected a file name"),
    ("newdir/", ValueError, r"path: 'newdir/' names a folder; give a file name in it, e\.g\. 'newdir/params\.npz'"),
    (".", ValueError, r"path: '\.' names a folder"),
    ("sub/..", ValueError, r"path: 'sub/\.\.' names a folder"),
    ("existing", IsADirectoryError, r"path: 'existing' is a folder"),
    ("missing/p.npz", FileNotFoundError, r"path: the folder 'missing' of 'missing/p\.npz' does not exist"),
    ("missing/deeper/p.pkl", FileNotFoundError, r"the folder 'missing/deeper'"),
    (b"p.npz", TypeError, r"path: expected a file path \(str or os\.PathLike\), got bytes"),
])
def test_save_paths_that_name_no_file_are_refused_naming_the_argument(tmp_path, monkeypatch, path, error, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing").mkdir()
    (tmp_path / "sub").mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(error, match=match):
        io.save_arrays(path, {"W": np.ones(2)})
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
