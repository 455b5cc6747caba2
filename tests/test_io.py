"""xpnet.io: portable .npz files, the book's pickles, the restricted unpickler, atomic writes."""

import builtins
import collections
import os
import pickle

import numpy as np
import pytest

from xpnet import io


def _arrays():
    rng = np.random.default_rng(0)
    return {
        "W1": rng.standard_normal((3, 4)).astype(np.float32),
        "b1": np.zeros(4, dtype=np.float64),
        "W2": rng.standard_normal((2, 3, 2, 2)),
        "steps": np.arange(5, dtype=np.int64),
    }


def _assert_same(loaded, expected):
    assert sorted(loaded) == sorted(expected)
    for key, value in expected.items():
        assert loaded[key].dtype == value.dtype, key
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)


@pytest.mark.parametrize("name", ["params.npz", "params.pkl", "params.pickle", "params.bin"])
def test_round_trip(tmp_path, name):
    arrays = _arrays()
    io.save_arrays(tmp_path / name, arrays)
    assert (tmp_path / name).exists()
    _assert_same(io.load_arrays(tmp_path / name), arrays)
    assert os.listdir(tmp_path) == [name], "no temporary file is left behind"


def test_npz_is_a_plain_numpy_archive(tmp_path):
    arrays = _arrays()
    io.save_arrays(tmp_path / "p.npz", arrays)
    with np.load(tmp_path / "p.npz", allow_pickle=False) as archive:
        _assert_same({key: archive[key] for key in archive.files}, arrays)


def test_pkl_is_the_books_format(tmp_path):
    arrays = _arrays()
    io.save_arrays(tmp_path / "p.pkl", arrays)
    with open(tmp_path / "p.pkl", "rb") as file:
        _assert_same(pickle.load(file), arrays)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_book_pickle_loads_in_every_protocol(tmp_path, protocol):
    arrays = _arrays()
    arrays["strided"] = np.arange(12.0).reshape(3, 4)[:, ::2]
    arrays["fortran"] = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    with open(tmp_path / "book.pkl", "wb") as file:
        pickle.dump(arrays, file, protocol=protocol)
    _assert_same(io.load_arrays(tmp_path / "book.pkl"), arrays)


def test_pickled_ordered_dict_and_numpy_scalars_load(tmp_path):
    payload = collections.OrderedDict(W=np.ones((2, 2)), scale=np.float64(0.5))
    with open(tmp_path / "p.pkl", "wb") as file:
        pickle.dump(payload, file, protocol=2)
    loaded = io.load_arrays(tmp_path / "p.pkl")
    np.testing.assert_array_equal(loaded["W"], np.ones((2, 2)))
    assert loaded["scale"].shape == () and float(loaded["scale"]) == 0.5


class _SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Eval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload", [_SystemCall, _Eval])
@pytest.mark.parametrize("nested", [False, True])
def test_malicious_pickle_is_refused_before_it_runs(tmp_path, payload, nested):
    marker = tmp_path / "pwned"
    evil = payload(marker)
    obj = {"W1": np.ones(2), "b1": evil} if nested else evil
    with open(tmp_path / "evil.pkl", "wb") as file:
        pickle.dump(obj, file)
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load global '(posix|nt|os|builtins)\.(system|eval)'"):
        io.load_arrays(tmp_path / "evil.pkl")
    assert not marker.exists(), "the payload ran"


def test_other_globals_are_refused(tmp_path):
    with open(tmp_path / "p.pkl", "wb") as file:
        pickle.dump({"when": collections.Counter("ab")}, file)
    with pytest.raises(pickle.UnpicklingError, match="collections.Counter"):
        io.load_arrays(tmp_path / "p.pkl")


def test_codecs_encode_is_limited_to_latin1(tmp_path):
    forged = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    (tmp_path / "p.pkl").write_bytes(forged)
    with pytest.raises(pickle.UnpicklingError, match="rot13"):
        io.load_arrays(tmp_path / "p.pkl")


@pytest.mark.parametrize("obj, message", [
    ([np.ones(2)], "expected a pickled dict"),
    ({"W": "not an array"}, "not an array"),
    ({1: np.ones(2)}, "string keys"),
    ({"W": np.array(["a", "b"])}, "numeric array"),
])
def test_pickles_that_are_not_dicts_of_arrays_are_rejected(tmp_path, obj, message):
    with open(tmp_path / "p.pkl", "wb") as file:
        pickle.dump(obj, file)
    with pytest.raises((ValueError, pickle.UnpicklingError), match=message):
        io.load_arrays(tmp_path / "p.pkl")


def test_garbage_is_rejected(tmp_path):
    (tmp_path / "p.npz").write_bytes(b"this is not a parameter file")
    with pytest.raises(pickle.UnpicklingError, match="neither an .npz archive nor a readable pickle"):
        io.load_arrays(tmp_path / "p.npz")


def test_save_rejects_what_is_not_a_numpy_array(tmp_path):
    with pytest.raises(TypeError, match=r"arrays\['W'\].*to_numpy"):
        io.save_arrays(tmp_path / "p.npz", {"W": [1.0, 2.0]})
    with pytest.raises(ValueError, match="numeric"):
        io.save_arrays(tmp_path / "p.npz", {"W": np.array([object()])})
    with pytest.raises(ValueError, match="keys"):
        io.save_arrays(tmp_path / "p.npz", {"": np.ones(1)})
    assert os.listdir(tmp_path) == []


def test_interrupted_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "params.npz"
    io.save_arrays(target, {"W": np.ones(3)})
    before = target.read_bytes()

    def crash(file):
        file.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        io.atomic_write(target, crash)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["params.npz"]


def test_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "params.pkl"
    io.save_arrays(target, {"W": np.ones(3)})
    before = target.read_bytes()

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        io.save_arrays(target, {"W": np.zeros(3)})
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["params.pkl"]
