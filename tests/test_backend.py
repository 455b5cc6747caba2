"""xpnet.backend: device names, moving arrays and object graphs, host copies, RNG."""

import collections
import json

import array_api_compat
import numpy as np
import pytest
from _checks import assert_on

from xpnet import backend
from xpnet.backend import CPU, Device, DeviceError, Generator, get_device, to_device, to_numpy
from xpnet.layers import Affine

no_cuda = pytest.mark.skipif(backend.cuda_available(), reason="a CUDA GPU answers here")


# --- get_device ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu "])
def test_get_device_cpu(name):
    device = get_device(name)
    assert device is CPU
    assert device.name == "cpu"
    assert array_api_compat.is_numpy_namespace(device.xp)


@no_cuda
def test_get_device_auto_falls_back_to_cpu():
    assert get_device("auto") is CPU


@pytest.mark.parametrize("name", ["tpu", "", "cuda:x", "cuda:-1", "gpu0", "cpu:0", "numpy"])
def test_get_device_rejects_bad_names(name):
    with pytest.raises(ValueError, match="device"):
        get_device(name)


def test_get_device_rejects_bad_types():
    with pytest.raises(TypeError, match="device"):
        get_device(3)


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "gpu", "cuda:0", "GPU:1"])
def test_get_device_cuda_without_gpu_raises_with_hint(name):
    with pytest.raises(DeviceError) as info:
        get_device(name)
    message = str(info.value)
    assert "cuda" in message
    assert ("pip install" in message) or ("nvidia-smi" in message)
    assert "device='cpu'" in message


def test_get_device_namespace_and_tuple_forms():
    strict = pytest.importorskip("array_api_strict")
    native = strict.Device("device1")
    by_args = get_device(strict, native)
    by_tuple = get_device((strict, native))
    assert by_args == by_tuple
    assert by_args.xp is strict
    assert by_args.native == native
    assert "device1" in by_args.name
    default = get_device(strict)
    assert default.native == strict.Device("CPU_DEVICE")
    assert get_device(np) is CPU
    assert get_device(by_args) is by_args


def test_device_of(device):
    x = device.asarray([1.0, 2.0], dtype="float64")
    assert backend.device_of(x) == device
    assert_on(x, device, "float64", (2,))


def test_device_asarray_returns_same_array_when_already_there(device):
    x = device.asarray([1.0, 2.0], dtype="float32")
    assert device.asarray(x) is x
    assert device.asarray(x, dtype="float32") is x
    y = device.asarray(x, dtype="float64")
    assert_on(y, device, "float64")


def test_resolve_dtype_rejects_non_float_names(xp):
    assert backend.resolve_dtype(xp, "float32") == xp.float32
    assert backend.resolve_dtype(xp, np.float64) == xp.float64
    with pytest.raises(ValueError, match="dtype"):
        backend.resolve_dtype(xp, "int32")


# --- to_numpy -----------------------------------------------------------------------------

def test_to_numpy_from_every_backend(device):
    host = np.random.default_rng(0).normal(size=(3, 4))
    x = device.asarray(host, dtype="float64")
    back = to_numpy(x)
    assert type(back) is np.ndarray
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, host)
    back[0, 0] = 123.0  # a copy: the device array is untouched
    np.testing.assert_array_equal(to_numpy(x), host)


def test_to_numpy_scalars():
    assert to_numpy(2.5) == np.asarray(2.5)
    assert to_numpy(np.float32(1.5)).dtype == np.float32


# --- to_device on object graphs ------------------------------------------------------------

Pair = collections.namedtuple("Pair", ["first", "second"])


class _Child:
    def __init__(self, parent, array):
        self.parent = parent  # a cycle back to the net
        self.array = array
        self.label = "child"


class _Net:
    """A book-style net: params dict whose arrays the layers also hold."""

    def __init__(self, rng):
        def r(*shape):
            return rng.normal(size=shape)

        self.params = {"W1": r(4, 3), "b1": r(3), "W2": r(3, 2), "b2": r(2)}
        self.layers = collections.OrderedDict(
            Affine1=Affine(self.params["W1"], self.params["b1"]),
            Affine2=Affine(self.params["W2"], self.params["b2"]),
        )
        self.layer_list = [self.layers["Affine1"], self.layers["Affine2"]]
        self.history = (r(2), "loss", 3)
        self.pair = Pair(r(2), self.params["W2"])
        self.child = _Child(self, r(5))
        self.lr = 0.1


def _arrays(net):
    return {
        "W1": net.params["W1"], "b1": net.params["b1"], "W2": net.params["W2"], "b2": net.params["b2"],
        "history": net.history[0], "pair.first": net.pair.first, "child": net.child.array,
    }


def test_to_device_moves_object_graph_and_keeps_sharing(device):
    net = _Net(np.random.default_rng(1))
    originals = {key: value.copy() for key, value in _arrays(net).items()}

    assert to_device(net, device) is net

    for key, array in _arrays(net).items():
        assert_on(array, device, "float64")
        np.testing.assert_array_equal(to_numpy(array), originals[key], err_msg=key)
    assert net.params["W1"] is net.layers["Affine1"].W
    assert net.params["b1"] is net.layers["Affine1"].b
    assert net.params["W2"] is net.layer_list[1].W
    assert net.layer_list[0] is net.layers["Affine1"]
    assert net.pair.second is net.params["W2"]
    assert type(net.pair) is Pair
    assert type(net.layers) is collections.OrderedDict
    assert list(net.layers) == ["Affine1", "Affine2"]
    assert net.history[1:] == ("loss", 3)
    assert net.child.parent is net
    assert net.child.label == "child" and net.lr == 0.1

    to_device(net, "cpu")
    for key, array in _arrays(net).items():
        assert type(array) is np.ndarray, key
        np.testing.assert_array_equal(array, originals[key], err_msg=key)
    assert net.params["W1"] is net.layers["Affine1"].W
    assert net.pair.second is net.params["W2"]


def test_to_device_on_a_bare_array_returns_the_moved_array(device):
    host = np.arange(6.0).reshape(2, 3)
    moved = to_device(host, device)
    assert_on(moved, device, "float64", (2, 3))
    np.testing.assert_array_equal(to_numpy(moved), host)


def test_to_device_between_strict_devices():
    strict = pytest.importorskip("array_api_strict")
    dev0 = get_device(strict, strict.Device("CPU_DEVICE"))
    dev1 = get_device(strict, strict.Device("device1"))
    state = {"a": dev0.asarray([1.0, 2.0]), "b": [dev0.asarray([3.0])]}
    state["alias"] = state["a"]
    to_device(state, dev1)
    assert_on(state["a"], dev1)
    assert_on(state["b"][0], dev1)
    assert state["alias"] is state["a"]


# --- Generator ------------------------------------------------------------------------------

def test_generator_same_seed_same_numbers_on_every_backend(device):
    expected = np.random.default_rng(7).normal(0.0, 2.0, size=(3, 4))
    x = Generator(7).normal((3, 4), scale=2.0, dtype="float64", device=device)
    assert_on(x, device, "float64", (3, 4))
    np.testing.assert_array_equal(to_numpy(x), expected)
    u = Generator(7).uniform((5,), dtype="float64", device=device)
    np.testing.assert_array_equal(to_numpy(u), np.random.default_rng(7).random(5))


def test_generator_dtype_and_device(device):
    rng = Generator(0)
    assert_on(rng.normal((2, 3), device=device), device, "float32", (2, 3))
    assert_on(rng.uniform((4,), device=device), device, "float32", (4,))
    assert_on(rng.normal((2,), dtype="float64", device=device), device, "float64")
    u = to_numpy(rng.uniform((1000,), dtype="float64", device=device))
    assert u.min() >= 0.0 and u.max() < 1.0
    perm = to_numpy(rng.permutation(10, device=device))
    assert sorted(perm.tolist()) == list(range(10))
    ints = to_numpy(rng.integers(3, 50, device=device))
    assert ints.shape == (50,) and ints.min() >= 0 and ints.max() <= 2


def test_generator_state_restores_the_next_draws(device):
    rng = Generator(3)
    rng.normal((4,), device=device)
    saved = rng.state
    first = to_numpy(rng.normal((3, 2), dtype="float64", device=device))
    rng.uniform((10,))  # advance further
    rng.state = saved
    again = to_numpy(rng.normal((3, 2), dtype="float64", device=device))
    np.testing.assert_array_equal(first, again)

    other = Generator(999)
    other.state = saved
    np.testing.assert_array_equal(to_numpy(other.normal((3, 2), dtype="float64", device=device)), first)


def test_generator_pool_keeps_one_stream_across_refills_devices_and_restores(device, monkeypatch):
    """Uniforms and integers come from a device-side pool: refilled when used up, moved
    (not redrawn) when another device asks, and restored from ``state`` mid-pool."""
    monkeypatch.setattr(Generator, "POOL_SIZE", 8)
    host = np.random.default_rng(5)
    expected = np.concatenate([host.random(8)[:6], host.random(8)[:4]])  # 6, then 4 more: a refill
    rng = Generator(5)
    first = rng.uniform((2, 3), dtype="float64", device=device)
    saved = rng.state
    second = rng.uniform((4,), dtype="float64")  # on the host: the pool moves along
    assert_on(first, device, "float64", (2, 3))
    np.testing.assert_array_equal(np.concatenate([to_numpy(first).ravel(), to_numpy(second)]), expected)
    ints = to_numpy(rng.integers(10, 5, device=device))
    assert ints.dtype == np.int64 and ints.min() >= 0 and ints.max() <= 9

    restored = Generator(123)
    restored.state = json.loads(json.dumps(saved))  # a checkpoint stores it as JSON
    np.testing.assert_array_equal(to_numpy(restored.uniform((4,), dtype="float64", device=device)), expected[6:])
    np.testing.assert_array_equal(to_numpy(restored.integers(10, 5, device=device)), ints)


def test_generator_integers_are_floor_of_pool_uniforms(device):
    u = to_numpy(Generator(8).uniform((1000,), dtype="float64", device=device))
    ints = to_numpy(Generator(8).integers(7, 1000, device=device))
    np.testing.assert_array_equal(ints, np.floor(u * 7).astype(np.int64))
    assert sorted(set(ints.tolist())) == list(range(7))


def test_generator_different_seeds_differ():
    a = to_numpy(Generator(1).normal((8,), dtype="float64"))
    b = to_numpy(Generator(2).normal((8,), dtype="float64"))
    assert not np.array_equal(a, b)


def test_device_is_atom_for_to_device():
    holder = {"device": CPU, "x": np.ones(2)}
    to_device(holder, CPU)
    assert holder["device"] is CPU
    assert isinstance(holder["device"], Device)


def test_keep_freed_host_memory_takes_effect_on_glibc():
    import platform

    from xpnet.hostmem import keep_freed_host_memory

    kept = keep_freed_host_memory()
    assert kept is (platform.libc_ver()[0] == "glibc")


def test_reachable_visits_each_object_once_by_its_first_path():
    W = np.ones((2, 2))
    rng = Generator(0)

    class Layer:
        def __init__(self):
            self.W = W
            self.rng = rng

    class Net:
        def __init__(self):
            self.params = {"W1": W}
            self.layers = [Layer()]
            self.pair = (W, "name", 3)
            self.dtype = np.float32

    net = Net()
    net.self_ref = net
    paths = {id(obj): path for path, obj in backend.reachable(net, "net")}
    assert paths[id(W)] == "net.params.W1"
    assert paths[id(rng)] == "net.layers.0.rng"
    assert paths[id(net.layers[0])] == "net.layers.0"
    assert id(np.float32) not in paths and id(net.pair[1]) not in paths
    assert sum(1 for _ in backend.reachable(net)) == len(paths)
