"""A rehearsal of the CUDA path on the CPU: the preflight, the Device, the moves, Embedding and the
label checks, against a fake ``cupy`` that keeps two of CuPy's traps: ``cupy.cuda.Device``
defines ``__eq__`` but no ``__hash__``, and ``take`` wraps out-of-range indices round (NumPy
raises).  Its arrays are NumPy arrays in a wrapper class that array-api-compat takes for
``cupy.ndarray``; its namespace is ``array_api_compat.numpy`` with CuPy's ``take``."""

from __future__ import annotations

import contextlib
import operator
import re
import sys
import types

import array_api_compat
import array_api_compat.numpy as compat_numpy
import numpy as np
import pytest

from xpnet import backend
from xpnet import functions as F
from xpnet.backend import get_device, to_device, to_numpy


class FakeDevice:
    """Like ``cupy.cuda.Device``: a context manager, equality by id, and unhashable."""

    __hash__ = None

    def __init__(self, id=0):
        self.id = int(id or 0)

    def __eq__(self, other):
        return isinstance(other, FakeDevice) and other.id == self.id

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def synchronize(self):
        pass


def _unwrap(value):
    if isinstance(value, FakeArray):
        return value.data
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return value


def _wrap(value):
    if isinstance(value, np.ndarray):
        return FakeArray(value)
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


class FakeArray:
    """A NumPy array on the fake GPU (``cupy.ndarray`` to array-api-compat)."""

    def __init__(self, data):
        self.data = np.asarray(data)

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    T = property(lambda self: FakeArray(self.data.T))
    device = property(lambda self: FakeDevice(0))

    def get(self):
        return self.data.copy()

    def __getitem__(self, index):
        return _wrap(self.data[_unwrap(index)])

    def __setitem__(self, index, value):
        self.data[_unwrap(index)] = _unwrap(value)

    def __array_namespace__(self, api_version=None):
        return sys.modules["array_api_compat.cupy"]

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    def __bool__(self):
        return bool(self.data)


for _name in ("add", "sub", "mul", "truediv", "floordiv", "pow", "mod", "and", "or", "xor", "matmul"):
    for _form in (f"__{_name}__", f"__r{_name}__"):
        def _binary(self, other, _op=getattr(operator, f"__{_name}__"), _reflected=_form.startswith("__r")):
            a, b = (_unwrap(other), self.data) if _reflected else (self.data, _unwrap(other))
            return _wrap(_op(a, b))
        setattr(FakeArray, _form, _binary)
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(FakeArray, f"__{_name}__",
            lambda self, other, _op=getattr(operator, f"__{_name}__"): _wrap(_op(self.data, _unwrap(other))))
for _name in ("neg", "invert", "abs", "pos"):
    setattr(FakeArray, f"__{_name}__", lambda self, _op=getattr(operator, f"__{_name}__"): _wrap(_op(self.data)))


def _namespace():
    """``array_api_compat.cupy`` for fake arrays: the NumPy compat functions, wrapped; ``take`` wraps."""
    xp = types.ModuleType("array_api_compat.cupy")
    taken = []

    def take(x, indices, /, *, axis=None):
        taken.append(to_numpy(indices).tolist())
        return FakeArray(np.take(x.data, indices.data, axis=axis, mode="wrap"))  # CuPy's take wraps

    def asarray(obj, /, *, dtype=None, device=None, copy=None):
        xp.uploads.append((obj, copy))
        return FakeArray(np.array(_unwrap(obj), dtype=dtype, copy=True))

    def lookup(name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(compat_numpy, name)
        if not callable(value) or isinstance(value, type):
            return value
        def call(*args, **kwargs):
            kwargs = {k: None if isinstance(v, FakeDevice) else _unwrap(v) for k, v in kwargs.items()}
            return _wrap(value(*_unwrap(args), **kwargs))

        return call

    xp.__getattr__ = lookup
    xp.take, xp.asarray, xp.taken, xp.uploads = take, asarray, taken, []
    for dtype in ("bool", "int8", "int32", "int64", "float32", "float64"):
        setattr(xp, dtype, getattr(compat_numpy, dtype))
    return xp


@pytest.fixture
def fake_gpu(monkeypatch):
    """The fake ``cupy`` (one GPU) and its namespace, installed; the preflight cache emptied."""
    cupy = types.ModuleType("cupy")
    cupy.ndarray, cupy.float32 = FakeArray, np.float32
    cupy.arange = lambda n, dtype=None: FakeArray(np.arange(n, dtype=dtype))
    cupy.matmul = lambda a, b: FakeArray(a.data @ b.data)
    cupy.cuda = types.SimpleNamespace(Device=FakeDevice, runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    FakeArray.reshape = lambda self, *shape: FakeArray(self.data.reshape(*shape))
    FakeArray.sum = lambda self, axis=None: FakeArray(self.data.sum(axis=axis))
    FakeArray.argsort = lambda self: FakeArray(self.data.argsort())
    FakeArray.tolist = lambda self: self.data.tolist()
    xp = _namespace()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "array_api_compat.cupy", xp)
    monkeypatch.setattr(array_api_compat, "cupy", xp, raising=False)
    monkeypatch.setattr(backend, "_PREFLIGHT", {})
    _clear_compat_caches()  # array-api-compat caches its type -> namespace answers
    yield cupy, xp
    _clear_compat_caches()


def _clear_compat_caches():
    for value in vars(array_api_compat.common._helpers).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


def test_the_preflight_passes_and_the_device_hashes(fake_gpu):
    cupy, xp = fake_gpu
    with pytest.raises(TypeError):
        hash(cupy.cuda.Device(0))  # the trap: CuPy's Device is unhashable
    device = get_device("cuda")
    assert backend._PREFLIGHT == {0: ""} and device.xp is xp and device.name == "cuda:0"
    assert {device: "ok"}[get_device("cuda:0")] == "ok"  # hashable, and equal devices hash equal
    assert len({device, get_device("cuda"), backend.CPU}) == 2


@pytest.mark.parametrize("stage, attribute", [("a matmul (cuBLAS)", "matmul"),
                                              ("an axis reduction (CUB)", "sum"),
                                              ("a sort (thrust)", "argsort")])
def test_a_failing_preflight_stage_is_a_device_error_naming_it(fake_gpu, monkeypatch, stage, attribute):
    cupy, _ = fake_gpu

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA headers not found")

    monkeypatch.setattr(cupy if attribute == "matmul" else FakeArray, attribute, broken)
    with pytest.raises(backend.DeviceError, match=re.escape(f"({stage} failed: RuntimeError: CUDA headers not found)")):
        get_device("cuda")
    assert backend.cuda_available() is False


def test_moves_to_the_fake_gpu_copy_once_and_keep_aliases(fake_gpu):
    _, xp = fake_gpu
    device = get_device("cuda")
    host = np.arange(6.0).reshape(2, 3)
    moved = device.asarray(host)
    assert isinstance(moved, FakeArray) and xp.uploads == [(host, True)]  # the caller's array itself: no host copy
    moved.data[0, 0] = 99.0
    assert host[0, 0] == 0.0
    device.asarray(host.T)  # a strided view goes C-ordered: one host copy, as before
    sent, _ = xp.uploads[-1]
    assert sent is not host.T and sent.flags.c_contiguous and sent.tolist() == host.T.tolist()
    holder = {"W": host, "alias": host, "list": [1.0, 2.0]}
    to_device(holder, device)
    assert holder["W"] is holder["alias"] and isinstance(holder["W"], FakeArray)
    back = backend.CPU.asarray(holder["W"])
    assert isinstance(back, np.ndarray) and back.tolist() == host.tolist()
    assert backend.device_of(holder["W"]) == device


def test_embedding_never_returns_another_words_row_where_take_wraps(fake_gpu):
    from xpnet.book2.layers import Embedding

    _, xp = fake_gpu
    device = get_device("cuda")
    W = device.asarray(np.arange(8.0).reshape(4, 2))
    layer = Embedding(W)
    out = to_numpy(layer.forward(device.asarray(np.array([1, -1, 4, 3]))))
    np.testing.assert_array_equal(out[[0, 3]], [[2.0, 3.0], [6.0, 7.0]])
    assert np.isnan(out[[1, 2]]).all()  # the wrapping take would have given rows 3 and 0
    assert xp.taken[-1] == [1, 0, 0, 3]  # bad ids never reach take
    layer.backward(device.asarray(np.ones((4, 2))))
    np.testing.assert_array_equal(to_numpy(layer.grads[0]), [[0, 0], [1, 1], [0, 0], [1, 1]])
    with pytest.raises(ValueError, match=r"idx: expected word ids in 0\.\.3, got -1 \(position 1\)"):
        Embedding(np.zeros((4, 2))).forward(np.array([1, -1]))


def test_device_labels_are_checked_on_the_fake_gpu(fake_gpu):
    device = get_device("cuda")
    with contextlib.suppress(ValueError):
        F.raise_pending_labels()
    scores = device.asarray(np.zeros((3, 4)))
    with np.errstate(invalid="ignore"):  # the bad label's one-hot row is NaN: the loss is NaN, never finite
        assert np.isnan(float(F.softmax_loss(scores, device.asarray(np.array([0, 5, 1])))))
    with pytest.raises(ValueError, match=r"got 5 \(label 1\) in call 1 of softmax_loss"):
        F.raise_pending_labels()
