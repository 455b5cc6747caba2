"""Bounded parsing: hostile pickles and archives, oversized dataset files, deep JSON, and the
input types and ranges that used to reach deep code.

A file that could crash or exhaust the process is loaded in a child process under a memory
cap (``RLIMIT_AS``) and a timeout; the child reports the error it got and its peak memory.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from xpnet import io

ROOT = Path(__file__).resolve().parents[1]
CAP = 1536 << 20  # bytes of address space the child may map (numpy alone maps ~400 MB)


def _load_capped(path: Path, how: str = "io") -> tuple[str, int]:
    """Load ``path`` in a child under :data:`CAP`; returns (its last line of output, peak RSS in MB)."""
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({CAP}, {CAP}))
        path, how = sys.argv[1], sys.argv[2]
        try:
            if how == "io":
                from xpnet import io
                io.load_arrays(path)
            elif how == "net":
                from xpnet.nets import TwoLayerNet
                TwoLayerNet(4, 5, 3, seed=0).load_params(path)
            else:
                from xpnet.book2.base_model import BaseModel
                import numpy as np
                model = BaseModel()
                model.params = [np.zeros((4, 5), dtype=np.float32)]
                model.load_params(path)
        except Exception as exc:
            import pickle
            kind = "UnpicklingError" if isinstance(exc, pickle.UnpicklingError) else type(exc).__name__
            print("REFUSED", kind, str(exc)[:300])
        else:
            print("LOADED")
        try:  # this process's own peak (ru_maxrss would include the parent's, from before exec)
            with open("/proc/self/status") as status:
                print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) // 1024)
        except OSError:
            print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(path), how], capture_output=True, text=True,
                          timeout=30, env=env)
    assert done.returncode == 0, f"the child died (code {done.returncode}): {done.stderr[-600:]}"
    *_, verdict, peak = done.stdout.strip().splitlines()
    return verdict, int(peak)


# ----------------------------------------------------------------------------------- pickles
N = 1_000_000
_LEN8 = struct.Struct("<Q")


def _shared_data_pickle() -> bytes:
    """A 800 KB pickle of 1000 arrays that all name the same bytes: 800 MB if each were built."""
    from numpy._core.multiarray import _reconstruct

    data = bytes(800_000)

    class Shared:
        def __reduce__(self):
            return _reconstruct, (np.ndarray, (0,), b"b"), (1, (100_000,), np.dtype("f8"), False, data)

    return pickle.dumps({f"k{i}": Shared() for i in range(1000)}, protocol=4)


PICKLES = {
    # nesting: hashing or freeing a million levels overflows the C stack
    "tuple1 dict key": b"\x80\x02})" + b"\x85" * N + b"Ns.",
    "mark tuples": b"(" * N + b"t" * N + b".",
    "mark lists": b"(" * N + b"l" * N + b".",
    "appended lists": b"\x80\x02" + b"]" * N + b"a" * (N - 1) + b".",
    "nested dicts": b"(Vk\n" * (N // 4) + b"}" + b"d" * (N // 4) + b".",
    "frozensets": b"\x80\x04" + b"(" * N + b"\x91" * N + b".",
    "tuple3 chain": b"\x80\x02)" + b"NN\x87" * (N // 3) + b".",
    "memo-shared nesting": b"\x80\x02]q\x00" + b"h\x00\x85q\x00" * (N // 5) + b".",
    # memo indices: the C unpickler sizes its memo by the largest
    "long_binput 2**31": b"\x80\x04Nr\xff\xff\xff\x7f.",
    "binput 200 first": b"\x80\x02Nq\xc8.",
    "text put 10**9": b"Np999999999\n.",
    "get never put": b"\x80\x02N\x94h\x05.",
    # lengths past the end of the file
    "binbytes8 2**40": b"\x80\x04\x8e" + _LEN8.pack(1 << 40) + b"abc.",
    "binunicode8 2**40": b"\x80\x04\x8d" + _LEN8.pack(1 << 40) + b"abc.",
    "bytearray8 2**40": b"\x80\x05\x96" + _LEN8.pack(1 << 40) + b"abc.",
    "long4 2**30": b"\x80\x02\x8b" + struct.pack("<i", 1 << 30) + b"ab.",
    "binstring 2**30": b"T" + struct.pack("<i", 1 << 30) + b"ab.",
    # arrays larger than the file
    "ndarray called": b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x00\x40\x85\x85R.",
    "reconstruct 2**30": b"\x80\x02cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ\x00\x00\x00\x40\x85"
                         b"C\x01b\x87R.",
    "shared data": None,  # built below (needs numpy)
    # sheer count
    "2M objects": b"(" + b"N" * (2 * N) + b"l.",
}


@pytest.mark.parametrize("name", list(PICKLES))
def test_hostile_pickles_are_refused_naming_the_file_within_bounds(tmp_path, name):
    path = tmp_path / "hostile.pkl"
    path.write_bytes(_shared_data_pickle() if name == "shared data" else PICKLES[name])
    verdict, peak = _load_capped(path)
    assert verdict.startswith("REFUSED") and "UnpicklingError" in verdict, verdict
    assert str(path) in verdict
    assert peak < 400, f"{name}: peak {peak} MB"


@pytest.mark.parametrize("how", ["io", "net", "model"])
def test_nested_tuple_key_is_refused_by_every_loader(tmp_path, how):
    path = tmp_path / "params.pkl"
    path.write_bytes(PICKLES["tuple1 dict key"])
    verdict, _ = _load_capped(path, how)
    assert verdict.startswith("REFUSED") and "nesting deeper than" in verdict and str(path) in verdict, verdict


def test_book_pickles_still_load_in_every_protocol(tmp_path):
    arrays = {"W1": np.arange(6.0).reshape(2, 3), "b1": np.zeros(3, np.float32), "n": np.int64(3)}
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(arrays, protocol=protocol))
        loaded = io.load_arrays(path)
        assert sorted(loaded) == ["W1", "b1", "n"]
        np.testing.assert_array_equal(loaded["W1"], arrays["W1"])
        assert loaded["b1"].dtype == np.float32 and loaded["n"] == 3


def test_a_pickle_at_the_depth_bound_loads_and_one_past_it_does_not(tmp_path):
    from xpnet.io import unpickle as _io_pickle

    def nested(depth):  # a dict whose value is an array inside depth - 2 lists
        value = np.ones(2)
        for _ in range(depth):
            value = [value]
        return {"W": value}

    path = tmp_path / "deep.pkl"
    path.write_bytes(pickle.dumps(nested(_io_pickle.MAX_DEPTH - 8), protocol=4))
    with pytest.raises(ValueError, match="value of 'W' is a list"):  # read, then refused for its type
        io.load_arrays(path)
    path.write_bytes(pickle.dumps(nested(_io_pickle.MAX_DEPTH + 1), protocol=4))
    with pytest.raises(io.UnsafePickleError, match=r"deep\.pkl: nesting deeper than"):
        io.load_arrays(path)


# ----------------------------------------------------------------------------------- archives
def _npy(shape: tuple[int, ...], dtype: str = "<f8", fortran: bool = False) -> bytes:
    """A .npy header (format 1.0) for ``shape``, padded like NumPy's."""
    header = repr({"descr": dtype, "fortran_order": fortran, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _raw_zip(path: Path, members: list[tuple[str, int, bytes, int, int]]) -> Path:
    """A zip written by hand: (name, method, stored bytes, CRC-32, size it claims to unpack to) per member."""
    local, central = b"", b""
    for name, method, raw, crc, size in members:
        fields = struct.pack("<HHHHHIII", 20, 0, method, 0, 0, crc, len(raw), size)
        central += (b"PK\x01\x02" + struct.pack("<H", 20) + fields
                    + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, len(local)) + name.encode())
        local += b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name.encode() + raw
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


def _bomb(path: Path, shape: tuple[int, ...] = (62_500_000,), *, name: str = "W1.npy",
          claims: tuple[int, ...] | None = None) -> Path:
    """A deflated member of a .npy of zeros of ``shape`` (500 MB by default, ~0.5 MB on disk); its header
    and declared size say ``claims`` (default: the truth)."""
    claims = shape if claims is None else claims
    head, zeros, size = _npy(shape), bytes(1 << 22), 8 * int(np.prod(shape))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    # full flushes make byte-aligned blocks with no back references: one block of zeros, repeated
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    body = [start, block * (size // len(zeros)), compressor.compress(bytes(size % len(zeros))), compressor.flush()]
    crc = zlib.crc32(_npy(claims))
    if claims == shape:
        crc = zlib.crc32(bytes(size % len(zeros)), _crc_of_zeros(crc, zeros, size // len(zeros)))
    return _raw_zip(path, [(name, zipfile.ZIP_DEFLATED, b"".join(body), crc,
                            len(_npy(claims)) + 8 * int(np.prod(claims)))])


def _crc_of_zeros(crc: int, zeros: bytes, times: int) -> int:
    for _ in range(times):
        crc = zlib.crc32(zeros, crc)
    return crc


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return _bomb(tmp_path_factory.mktemp("bomb") / "bomb.npz")


@pytest.mark.parametrize("how", ["io", "net", "model"])
def test_a_zip_bomb_is_refused_from_its_sizes_without_unpacking(bomb, how, tmp_path):
    if how == "model":  # BaseModel's members are named 0, 1, ...
        bomb = _bomb(tmp_path / "bomb.npz", name="0.npy")
    assert bomb.stat().st_size < 1_000_000
    verdict, peak = _load_capped(bomb, how)
    assert verdict.startswith("REFUSED ValueError") and str(bomb) in verdict, verdict
    assert peak < 300, f"peak {peak} MB"


def test_a_zip_bomb_loads_when_the_caller_allows_its_size(tmp_path):
    small = _bomb(tmp_path / "small.npz", (3_000_000,))
    with pytest.raises(ValueError, match=r"would unpack to 24000128 bytes, more than the 24000000 allowed"):
        io.load_arrays(small, max_bytes=24_000_000)
    loaded = io.load_arrays(small, max_bytes=25_000_000)
    assert loaded["W1"].shape == (3_000_000,) and not loaded["W1"].any()


@pytest.mark.parametrize("how, shape", [("io", (1 << 40,)), ("io", (1 << 20, 1 << 20)), ("io", (2, 3, 1 << 38)),
                                        ("net", (1 << 40,)), ("model", (7 << 40,))])
def test_a_header_claiming_terabytes_is_refused_naming_the_file(tmp_path, shape, how):
    path = _zip(tmp_path / "liar.npz", {("0.npy" if how == "model" else "W1.npy"): _npy(shape) + bytes(64)})
    assert path.stat().st_size < 400
    verdict, peak = _load_capped(path, how)
    assert verdict.startswith("REFUSED ValueError") and str(path) in verdict, verdict
    assert "header says shape" in verdict or "has shape" in verdict
    assert peak < 300


def test_a_member_that_inflates_past_its_declared_size_stops_there(tmp_path):
    """The member says 100 float64 (928 bytes); its stream holds 50 MB: reading stops at 928, the CRC fails."""
    path = _bomb(tmp_path / "lying.npz", (6_250_000,), claims=(100,))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"lying\.npz: damaged \.npz archive"):
            io.load_arrays(path, {"W1": (100,)})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


@pytest.mark.parametrize("method", [1, 6, 12, 14, 99, 0xFFFF])
def test_an_unknown_compression_method_is_a_damaged_file_naming_it(tmp_path, method):
    path = _zip(tmp_path / "p.npz", {"W1.npy": _npy((2,)) + bytes(16)}, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    data[central + 10:central + 12] = struct.pack("<H", method)
    data[8:10] = struct.pack("<H", method)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"p\.npz: .*compression method {method}"):
        io.load_arrays(path)


def test_every_flipped_byte_loads_the_same_or_names_the_file(tmp_path):
    good = tmp_path / "good.npz"
    arrays = {"W1": np.arange(12.0).reshape(3, 4), "b1": np.arange(4, dtype=np.int32)}
    np.savez_compressed(good, **arrays)
    data = good.read_bytes()
    held = 0
    for position in range(0, len(data), max(1, len(data) // 150)):
        bad = tmp_path / "bad.npz"
        bad.write_bytes(data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:])
        try:
            loaded = io.load_arrays(bad, {"W1": (3, 4), "b1": (4,)})
        except (ValueError, pickle.UnpicklingError) as exc:
            assert str(bad) in str(exc)
        else:
            for key, value in loaded.items():
                np.testing.assert_array_equal(value, arrays[key])
        held += 1
    assert held > 100


@pytest.mark.parametrize("members, match", [
    ({"W1.npy": _npy((2,)) + bytes(16), "b1.npy": _npy((3,)) + bytes(24)}, r"holds \['b1'\], which are not expected"),
    ({"W1.npy": _npy((3,)) + bytes(24)}, r"'W1' has shape \(3,\), expected \(2,\)"),
    ({"W1.npy": _npy((2,)) + bytes(15)}, r"header says shape \(2,\).*member holds 15"),
    ({"W1.npy": _npy((2,)) + bytes(17)}, r"header says shape \(2,\).*member holds 17"),
    ({"W1.npy": _npy((2,), "|O") + bytes(16)}, r"dtype object, expected a numeric array"),
    ({"W1.npy": _npy((2,), "<U3") + bytes(24)}, r"dtype <U3, expected a numeric array"),
    ({"W1.npy": b"\x93NUMPY\x03\x00" + bytes(40)}, r"format version \(3, 0\)"),
    ({"W1.npy": b"not a npy file at all"}, r"damaged \.npz archive"),
])
def test_each_member_header_is_checked_before_its_data(tmp_path, members, match):
    path = _zip(tmp_path / "p.npz", members)
    with pytest.raises(ValueError, match=rf"p\.npz: .*{match}"):
        io.load_arrays(path, {"W1": (2,)})


def test_a_duplicate_member_is_refused(tmp_path):
    path = tmp_path / "p.npz"
    with pytest.warns(UserWarning, match="Duplicate name"):
        _zip(path, {"W1.npy": _npy((2,)) + bytes(16)})
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("W1.npy", _npy((2,)) + bytes(16))
    with pytest.raises(ValueError, match=r"p\.npz: an array name occurs twice"):
        io.load_arrays(path)


def test_fortran_and_big_endian_members_load_as_numpy_wrote_them(tmp_path):
    arrays = {"F": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "B": np.arange(3, dtype=">i4")}
    np.savez(tmp_path / "p.npz", **arrays)
    loaded = io.load_arrays(tmp_path / "p.npz", {"F": (2, 3), "B": None})
    np.testing.assert_array_equal(loaded["F"], arrays["F"])
    np.testing.assert_array_equal(loaded["B"], [0, 1, 2])


def _owned_cache(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    from xpnet.datasets import _owned

    path = folder / "fashion-mnist.npz"
    _owned.save_cache(path, arrays)
    assert _owned.owned(path)
    return path


@pytest.mark.parametrize("damage", ["method", "header 7 TiB", "bomb", "extra member", "pickle", "truncated"])
def test_a_damaged_own_cache_warns_is_deleted_and_rebuilt(tmp_path, damage, bomb):
    from xpnet.datasets import _common, _owned

    keys = ["x_train", "t_train"]
    arrays = {"x_train": np.zeros((3, 28, 28), np.uint8), "t_train": np.zeros(3, np.uint8)}
    path = _owned_cache(tmp_path, arrays)
    data = bytearray(path.read_bytes())
    if damage == "method":
        central = data.rindex(b"PK\x01\x02")
        data[central + 10] = 0x63
    elif damage == "header 7 TiB":
        data = bytearray(_zip(tmp_path / "x.npz", {"x_train.npy": _npy((7 << 40,), "|u1") + bytes(10),
                                                   "t_train.npy": _npy((3,), "|u1") + bytes(3)}).read_bytes())
    elif damage == "bomb":
        data = bytearray(_bomb(tmp_path / "y.npz", (62_500_000,), name="x_train.npy").read_bytes())
    elif damage == "extra member":
        data = bytearray(_zip(tmp_path / "z.npz", {"x_train.npy": _npy((1,), "|u1") + bytes(1),
                                                   "evil.npy": _npy((1,), "|u1") + bytes(1)}).read_bytes())
    elif damage == "pickle":
        data = bytearray(PICKLES["tuple1 dict key"])
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    _owned.record(path)  # as if xpnet had written these bytes (a flipped bit on its own file)
    with pytest.warns(UserWarning, match=r"fashion-mnist\.npz: unreadable cache .*deleted it"):
        assert _common.load_npz(path, keys, lambda a: None, max_bytes=10_000_000) is None
    assert not path.exists()
    assert _owned.save_cache(path, arrays) and path.exists()
    loaded = _common.load_npz(path, keys, lambda a: None, max_bytes=10_000_000)
    np.testing.assert_array_equal(loaded["x_train"], arrays["x_train"])


@pytest.mark.parametrize("method", [0x63, 0x01, 0x0E])  # unknown (NotImplementedError), shrunk, LZMA
def test_load_fashion_mnist_rebuilds_a_cache_with_a_flipped_method_byte(tmp_path, monkeypatch, method):
    sys.path.insert(0, str(ROOT / "tests"))
    from _idx_server import fake_mnist, use_digests

    from xpnet.datasets import load_fashion_mnist

    files, arrays = fake_mnist()
    use_digests(monkeypatch, files)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    first = load_fashion_mnist(False, False, data_dir=tmp_path, download=False)
    cache = tmp_path / "fashion-mnist.npz"
    data = bytearray(cache.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    data[central + 10] = method
    cache.write_bytes(bytes(data))
    from xpnet.datasets import _owned

    _owned.record(cache)
    for _ in range(2):  # the first call warns and rebuilds; the second reads the rebuilt cache
        with pytest.warns(UserWarning, match="unreadable cache") if _ == 0 else _no_warning():
            again = load_fashion_mnist(False, False, data_dir=tmp_path, download=False)
        np.testing.assert_array_equal(again[0][0], first[0][0])


class _no_warning:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


# ----------------------------------------------------------------------------------- JSON
DEEP = 200_000


@pytest.mark.parametrize("text", [
    "[" * DEEP + "]" * DEEP,
    '{"a":' * DEEP + "1" + "}" * DEEP,
    '{"history": ' + "[" * DEEP + "]" * DEEP + "}",
    "[" * DEEP,  # unterminated as well
    '[{"k": [' * (DEEP // 3) + "]}]" * (DEEP // 3),
])
def test_deep_json_is_refused_without_recursing(text):
    with pytest.raises(ValueError, match=r"meta: JSON nested \d+ levels deep, more than 100"):
        io.load_json(text, "meta")


def test_brackets_inside_strings_do_not_count_and_valid_json_loads():
    text = json.dumps({"a": "[[[[" * 1000, "b": '\\"[[', "c": [[1, 2], {"d": None}]})
    assert io.load_json(text, "meta")["c"] == [[1, 2], {"d": None}]
    with pytest.raises(ValueError, match="meta: not valid JSON"):
        io.load_json("{'a': 1}", "meta")


def test_a_checkpoint_with_deep_metadata_is_a_checkpoint_error(tmp_path):
    from types import SimpleNamespace

    from xpnet import checkpoint
    from xpnet.optimizer import SGD

    meta = ("[" * DEEP + "]" * DEEP).encode()
    np.savez(tmp_path / "ck.npz", meta=np.frombuffer(meta, np.uint8))
    with pytest.raises(checkpoint.CheckpointError, match=r"ck\.npz.*JSON nested 200000 levels deep"):
        checkpoint.load(SimpleNamespace(optimizer=SGD()), tmp_path / "ck.npz")


def test_a_deep_manifest_counts_as_no_manifest(tmp_path):
    from xpnet.datasets import _owned

    (tmp_path / "a.npz").write_bytes(b"x")
    (tmp_path / _owned.MANIFEST).write_text('{"format": 1, "files": ' + "[" * DEEP + "]" * DEEP + "}")
    assert not _owned.owned(tmp_path / "a.npz") and not _owned.remove_if_owned(tmp_path / "a.npz")
    assert (tmp_path / "a.npz").exists()


# ----------------------------------------------------------------------------------- UnigramSampler
@pytest.mark.parametrize("largest", [2**33, 2**40, 2**62, (1 << 22) + 5])
def test_a_stray_large_word_id_is_refused_before_tables_are_built(largest):
    from xpnet.book2.negative_sampling import UnigramSampler

    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=rf"corpus: word id {largest} is far beyond its 4 words"):
            UnigramSampler(np.array([0, 1, 2, largest]), 0.75, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_ids_beyond_the_corpus_are_fine_up_to_the_bound_or_with_vocab_size():
    from xpnet.book2.negative_sampling import UnigramSampler

    corpus = np.array([0, 1, 2, 9_999])  # a slice of PTB: ids from a 10,000-word vocabulary
    assert UnigramSampler(corpus, 0.75, 2).vocab_size == 10_000
    assert UnigramSampler(corpus, 0.75, 2, vocab_size=12_000).word_p.shape == (12_000,)
    with pytest.raises(ValueError, match="corpus: word id 9999 is outside vocab_size 5000"):
        UnigramSampler(corpus, 0.75, 2, vocab_size=5_000)
    with pytest.raises(ValueError, match="vocab_size"):
        UnigramSampler(corpus, 0.75, 2, vocab_size=0)


@pytest.mark.parametrize("power", [1e6, 1e4, 2000.0])
def test_a_power_that_leaves_too_few_words_is_refused(power):
    from xpnet.book2.negative_sampling import UnigramSampler

    corpus = np.repeat(np.arange(5), [1, 2, 3, 4, 50])
    shown = re.escape(f"{power:g}")
    with pytest.raises(ValueError, match=rf"power: {shown} leaves 1 word\(s\) a probability that is not 0"):
        UnigramSampler(corpus, power, 2, seed=0)


@pytest.mark.parametrize("power", [0.0, 0.75, 30.0, 200.0])
def test_large_powers_give_finite_probabilities_and_distinct_draws(power):
    from xpnet.book2.negative_sampling import UnigramSampler

    corpus = np.repeat(np.arange(5), [1, 2, 3, 4, 5])
    sampler = UnigramSampler(corpus, power, 3, seed=0)
    counts = np.array([1, 2, 3, 4, 5], dtype=np.float64)
    expected = np.exp(power * (np.log(counts) - np.log(5.0)))
    np.testing.assert_allclose(sampler.word_p, expected / expected.sum(), rtol=1e-12, atol=1e-300)
    draws = sampler.get_negative_sample(np.array([4, 0, 2]))
    assert all(len(set(row.tolist()) | {t}) == 4 for row, t in zip(draws, [4, 0, 2]))


@pytest.mark.parametrize("power", [float("inf"), float("nan"), -1.0, "0.75", True])
def test_power_must_be_a_finite_real_at_least_0(power):
    from xpnet.book2.negative_sampling import UnigramSampler

    with pytest.raises(ValueError, match="power"):
        UnigramSampler(np.arange(5), power, 2)
