"""xpnet.optimizer over flat buffers (xpnet/_flat.py): the same parameters and state, to the
bit, as the per-key code it replaced (frozen below), checkpoints of that code loading, the
per-key path kept for numbers and mixed kinds, and the fewer operations it is for."""

import copy
import math
import numbers
import pickle

import numpy as np
import pytest
from array_api_compat import array_namespace, is_array_api_obj, is_writeable_array

from xpnet import backend
from xpnet.backend import to_numpy
from xpnet.optimizer import get_optimizer

HYPER = {
    "sgd": {"lr": 0.1},
    "momentum": {"lr": 0.1, "momentum": 0.8},
    "nesterov": {"lr": 0.1, "momentum": 0.7},
    "adagrad": {"lr": 0.2},
    "rmsprop": {"lr": 0.05, "decay_rate": 0.9},
    "adam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.95},
}


# ---------------------------------------------------------------- the per-key code, frozen
# xpnet/optimizer.py's update rules as of 3ab74d6 (one array operation sequence per key).

def _add(container, key, delta):
    value = container[key]
    if isinstance(value, numbers.Number):
        container[key] = value + delta
    else:
        value += delta


def _scale(container, key, factor):
    value = container[key]
    if isinstance(value, numbers.Number):
        container[key] = value * factor
    else:
        value *= factor


def _sqrt(value):
    return array_namespace(value).sqrt(value) if is_array_api_obj(value) else math.sqrt(value)


def _copy(value):
    return array_namespace(value).asarray(value, copy=True) if is_array_api_obj(value) else value


class Frozen:
    """The old ``update`` and ``state_dict``/``load_state_dict`` for one optimizer ``name``."""

    def __init__(self, name, lr, momentum=0.9, decay_rate=0.99, beta1=0.9, beta2=0.999):
        self.name, self.lr, self.momentum, self.decay_rate = name, lr, momentum, decay_rate
        self.beta1, self.beta2, self.iter = beta1, beta2, 0
        self.state_names = {"sgd": (), "momentum": ("v",), "nesterov": ("v",), "adagrad": ("h",),
                            "rmsprop": ("h",), "adam": ("iter", "m", "v")}[name]
        self.m = self.v = self.h = None

    def _state(self, name, params, keys):
        value = getattr(self, name)
        if value is None:
            zeros = [array_namespace(params[k]).zeros_like(params[k]) if is_array_api_obj(params[k])
                     and is_writeable_array(params[k]) else 0.0 * params[k] for k in keys]
            value = dict(zip(keys, zeros)) if isinstance(params, dict) else zeros
        elif not isinstance(params, dict) and isinstance(value, dict):
            value = [value[str(k)] for k in keys]
        setattr(self, name, value)
        return value

    def update(self, params, grads):
        keys = list(params) if isinstance(params, dict) else list(range(len(params)))
        name, lr = self.name, self.lr
        if name == "sgd":
            for k in keys:
                _add(params, k, -lr * grads[k])
        elif name == "momentum":
            v = self._state("v", params, keys)
            for k in keys:
                _scale(v, k, self.momentum)
                _add(v, k, -lr * grads[k])
                _add(params, k, v[k])
        elif name == "nesterov":
            v, m = self._state("v", params, keys), self.momentum
            for k in keys:
                step = lr * grads[k]
                _add(params, k, (m * m) * v[k])
                _add(params, k, -(1.0 + m) * step)
                _scale(v, k, m)
                _add(v, k, -step)
        elif name in ("adagrad", "rmsprop"):
            h = self._state("h", params, keys)
            for k in keys:
                if name == "adagrad":
                    _add(h, k, grads[k] * grads[k])
                else:
                    _scale(h, k, self.decay_rate)
                    _add(h, k, (1.0 - self.decay_rate) * grads[k] * grads[k])
                _add(params, k, -lr * grads[k] / (_sqrt(h[k]) + 1e-7))
        else:
            m, v = self._state("m", params, keys), self._state("v", params, keys)
            self.iter += 1
            lr_t = lr * math.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
            for k in keys:
                g = grads[k]
                _add(m, k, (1.0 - self.beta1) * (g - m[k]))
                _add(v, k, (1.0 - self.beta2) * (g * g - v[k]))
                _add(params, k, -lr_t * m[k] / (_sqrt(v[k]) + 1e-7))

    def state_dict(self):
        state = {}
        for name in self.state_names:
            value = getattr(self, name)
            if isinstance(value, (dict, list)):
                items = value.items() if isinstance(value, dict) else enumerate(value)
                state.update({f"{name}/{k}": _copy(a) for k, a in items})
            elif value is not None:
                state[name] = value
        return state

    def load_state_dict(self, state):
        for name in self.state_names:
            arrays = {k[len(name) + 1:]: _copy(a) for k, a in state.items() if k.startswith(f"{name}/")}
            if arrays:
                setattr(self, name, arrays)
            elif name in state:
                setattr(self, name, int(state[name]))


# ------------------------------------------------------------------------------ problems

SHAPES = {"W1": (5, 4), "b1": (4,), "W2": (3, 2, 3, 3), "b2": (3,), "W3": (7,)}


def host_problem(seed, steps):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(size=s) for k, s in SHAPES.items()}
    grads = [{k: rng.normal(size=s) for k, s in SHAPES.items()} for _ in range(steps)]
    return params, grads


def on(device, host, dtype, style):
    """``host`` on ``device``; W2's grad is a non-contiguous view, as Convolution.dW is."""
    xp = device.xp
    out = {}
    for k, value in host.items():
        if k == "W2":
            out[k] = xp.permute_dims(device.asarray(np.array(value.transpose(1, 0, 2, 3)), dtype=dtype), (1, 0, 2, 3))
        else:
            out[k] = device.asarray(np.array(value, copy=True), dtype=dtype)
    return out if style == "dict" else list(out.values())


def items(params):
    return params.items() if isinstance(params, dict) else enumerate(params)


def assert_same(new, old):
    for (key, a), (_, b) in zip(items(new), items(old)):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=str(key), strict=True)


def assert_same_state(new_opt, old_opt):
    new, old = new_opt.state_dict(), old_opt.state_dict()
    assert set(new) == set(old)
    for key in new:
        if key == "iter":
            assert new[key] == old[key]
        else:
            np.testing.assert_array_equal(to_numpy(new[key]), to_numpy(old[key]), err_msg=key, strict=True)


# ------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("style", ["dict", "list"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(HYPER))
def test_flat_update_is_the_per_key_update_to_the_bit(device, name, dtype, style):
    host_params, host_grads = host_problem(1, 4)
    params, old_params = on(device, host_params, dtype, style), on(device, host_params, dtype, style)
    originals = list(params.values() if style == "dict" else params)
    new, old = get_optimizer(name, **HYPER[name]), Frozen(name, **HYPER[name])
    for g in host_grads:
        new.update(params, on(device, g, dtype, style))
        old.update(old_params, on(device, g, dtype, style))
        # the flat path is taken by every optimizer with state; SGD has none and stays per key
        assert (new._flat.signature is not None) == (name != "sgd")
        assert_same(params, old_params)
        assert_same_state(new, old)
    assert all(a is b for a, b in zip(params.values() if style == "dict" else params, originals))
    for name_ in new.state_names:
        if name_ != "iter":
            assert isinstance(getattr(new, name_), dict if style == "dict" else list)


@pytest.mark.parametrize("style", ["dict", "list"])
@pytest.mark.parametrize("name", ["momentum", "rmsprop", "adam"])
def test_checkpoints_of_the_per_key_code_load_and_back(device, name, style):
    host_params, host_grads = host_problem(2, 6)
    params, old_params = on(device, host_params, "float32", style), on(device, host_params, "float32", style)
    new, old = get_optimizer(name, **HYPER[name]), Frozen(name, **HYPER[name])
    for g in host_grads[:2]:
        old.update(old_params, on(device, g, "float32", style))
        new.update(params, on(device, g, "float32", style))
    written_before = old.state_dict()
    resumed = get_optimizer(name, **HYPER[name])
    resumed.load_state_dict(written_before)
    new.update(params, on(device, host_grads[2], "float32", style))  # the flat buffers move on
    for source in (written_before, new.state_dict()):
        forward, frozen = get_optimizer(name, **HYPER[name]), Frozen(name, **HYPER[name])
        forward.load_state_dict(source)
        frozen.load_state_dict(forward.state_dict())
        a, b = on(device, host_params, "float32", style), on(device, host_params, "float32", style)
        for g in host_grads[3:]:
            forward.update(a, on(device, g, "float32", style))
            frozen.update(b, on(device, g, "float32", style))
        assert_same(a, b)
        assert_same_state(forward, frozen)
    assert set(written_before) == set(new.state_dict())
    new.load_state_dict(written_before)  # rewound: the flat buffers of its last step are stale
    old.load_state_dict(written_before)
    a, b = on(device, host_params, "float32", style), on(device, host_params, "float32", style)
    for g in host_grads[3:]:
        new.update(a, on(device, g, "float32", style))
        old.update(b, on(device, g, "float32", style))
    assert_same(a, b)
    assert_same_state(new, old)


def test_state_dict_keys_and_copies(device):
    host_params, host_grads = host_problem(3, 2)
    params = on(device, host_params, "float32", "dict")
    optimizer = get_optimizer("adam")
    optimizer.update(params, on(device, host_grads[0], "float32", "dict"))
    state = optimizer.state_dict()
    assert set(state) == {"iter"} | {f"{n}/{k}" for n in "mv" for k in SHAPES}
    assert tuple(state["m/W2"].shape) == SHAPES["W2"]
    before = to_numpy(state["m/W1"]).copy()
    optimizer.update(params, on(device, host_grads[1], "float32", "dict"))
    np.testing.assert_array_equal(to_numpy(state["m/W1"]), before)
    assert not np.array_equal(to_numpy(optimizer.m["W1"]), before), "the views follow the flat buffer"


@pytest.mark.parametrize("case", ["mixed dtypes", "python float", "0-d", "one array twice", "float64 state"])
def test_per_key_path_where_flat_does_not_fit(device, case):
    host_params, host_grads = host_problem(4, 3)
    dtypes = {k: "float32" for k in SHAPES}
    if case == "mixed dtypes":
        dtypes["b1"] = "float64"

    def make(host):
        out = {k: device.asarray(np.array(v, copy=True), dtype=dtypes[k]) for k, v in host.items()}
        if case == "python float":
            out["b2"] = float(host["b2"][0])
        elif case == "0-d":
            out["b2"] = device.asarray(np.array(host["b2"][0]), dtype="float32")
        return out

    params, old_params = make(host_params), make(host_params)
    if case == "one array twice":
        params["W3"], old_params["W3"] = params["b1"], old_params["b1"]
    new, old = get_optimizer("adam"), Frozen("adam", lr=0.001)
    if case == "float64 state":  # a checkpoint in another dtype: the old code's promotions, kept
        old.update(old_params, make(host_grads[0]))
        state = {k: device.asarray(to_numpy(v), dtype="float64") if k != "iter" else v
                 for k, v in old.state_dict().items()}
        old.load_state_dict(state)
        new.load_state_dict(state)
        params = {k: device.asarray(to_numpy(v), dtype="float32") for k, v in old_params.items()}
    for g in host_grads[1:]:
        grads = make(g)
        if case == "one array twice":
            grads["W3"] = grads["b1"]
        try:
            old.update(old_params, grads)
        except TypeError as exc:  # array_api_strict: no float32 += float64
            with pytest.raises(type(exc)):
                new.update(params, grads)
            return
        new.update(params, grads)
    assert new._flat.signature is None
    assert_same(params, old_params)
    assert_same_state(new, old)


def test_moved_optimizer_lays_out_again(device):
    """``to_device`` moves the per-key views (the flat buffers are not reachable): the next
    step gathers them on the new device."""
    pytest.importorskip("array_api_strict")
    target = backend.get_device(*_other(device))
    host_params, host_grads = host_problem(5, 4)
    params, old_params = on(device, host_params, "float64", "dict"), on(device, host_params, "float64", "dict")
    new, old = get_optimizer("adam"), Frozen("adam", lr=0.001)
    for g in host_grads[:2]:
        new.update(params, on(device, g, "float64", "dict"))
        old.update(old_params, on(device, g, "float64", "dict"))
    for obj in (new, params, old, old_params):
        backend.to_device(obj, target)
    for g in host_grads[2:]:
        new.update(params, on(target, g, "float64", "dict"))
        old.update(old_params, on(target, g, "float64", "dict"))
    assert new._flat.device.native == target.native
    assert_same(params, old_params)
    assert_same_state(new, old)


def _other(device):
    import array_api_strict

    if device.xp.__name__.startswith("array_api_strict") and device.native == array_api_strict.Device("device1"):
        return array_api_strict, array_api_strict.Device("CPU_DEVICE")
    return array_api_strict, array_api_strict.Device("device1")


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_copied_optimizer_continues_alone(device, how):
    if how == "pickle" and device.xp.__name__.startswith("array_api_strict"):
        pytest.skip("array_api_strict arrays do not pickle")
    host_params, host_grads = host_problem(6, 4)
    params, old_params = on(device, host_params, "float32", "list"), on(device, host_params, "float32", "list")
    new, old = get_optimizer("rmsprop", **HYPER["rmsprop"]), Frozen("rmsprop", **HYPER["rmsprop"])
    for g in host_grads[:2]:
        new.update(params, on(device, g, "float32", "list"))
        old.update(old_params, on(device, g, "float32", "list"))
    twin = pickle.loads(pickle.dumps(new)) if how == "pickle" else copy.deepcopy(new)
    twin_params = [device.asarray(to_numpy(p), dtype="float32") for p in params]
    for g in host_grads[2:]:
        twin.update(twin_params, on(device, g, "float32", "list"))
        old.update(old_params, on(device, g, "float32", "list"))
    assert_same(twin_params, old_params)
    assert_same_state(twin, old)


def test_adam_over_flat_buffers_is_a_few_operations():
    """One Adam update of 5 params on the torch backend: the grads' gather, a copy
    (``clone`` and ``_unsafe_view``) of the non-contiguous W2's grad, 11 element-wise
    operations and one in-place subtraction per param: 19 (the per-key code: 12 per param, 60)."""
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 0 if func.is_view else 1
            return func(*args, **(kwargs or {}))

    device = backend.get_device(torch, torch.device("cpu"))
    host_params, host_grads = host_problem(7, 2)
    params = on(device, host_params, "float32", "dict")
    optimizer = get_optimizer("adam")
    optimizer.update(params, on(device, host_grads[0], "float32", "dict"))
    grads = on(device, host_grads[1], "float32", "dict")
    with Count():
        optimizer.update(params, grads)
    assert Count.n == 1 + 2 + 11 + len(SHAPES), Count.n
