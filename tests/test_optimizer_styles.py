"""xpnet.optimizer in both books' call styles: the second book's lists, the first book's
numbers (Python floats, NumPy scalars, 0-d arrays), hyper-parameter ranges, Nesterov's
order and where the state and its copies live."""

import math

import numpy as np
import pytest
from _checks import assert_on
from test_optimizer import HYPER, make_problem, reference

from xpnet.backend import to_numpy
from xpnet.optimizer import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop, get_optimizer


def as_list(device, host, dtype):
    return [device.asarray(np.array(host[key], copy=True), dtype=dtype) for key in ("W", "b")]


@pytest.mark.parametrize("name", list(HYPER))
def test_lists_match_hand_computation(device, name):
    host_params, host_grads = make_problem()
    params = as_list(device, host_params, "float64")
    originals = list(params)
    optimizer = get_optimizer(name, **HYPER[name])
    for g in host_grads:
        optimizer.update(params, as_list(device, g, "float64"))
    for i, key in enumerate(("W", "b")):
        assert params[i] is originals[i], "update must work in place"
        assert_on(params[i], device, "float64", host_params[key].shape)
        expected = reference(name, host_params[key], [g[key] for g in host_grads], HYPER[name])
        np.testing.assert_allclose(to_numpy(params[i]), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(HYPER))
def test_list_and_dict_styles_agree_and_checkpoint(device, name):
    host_params, host_grads = make_problem(4)
    as_dict = {key: device.asarray(np.array(v, copy=True), dtype="float64") for key, v in host_params.items()}
    as_lst = as_list(device, host_params, "float64")
    a, b = get_optimizer(name, **HYPER[name]), get_optimizer(name, **HYPER[name])
    for g in host_grads[:2]:
        a.update(as_dict, {key: device.asarray(v, dtype="float64") for key, v in g.items()})
        b.update(as_lst, as_list(device, g, "float64"))
    state = b.state_dict()
    expected_keys = {f"{n}/{i}" for n in b.state_names if n != "iter" for i in (0, 1)}
    assert set(state) - {"iter"} == expected_keys
    resumed = get_optimizer(name, **HYPER[name])
    resumed.load_state_dict(state)
    copy = [device.asarray(to_numpy(p), dtype="float64") for p in as_lst]
    b.update(as_lst, as_list(device, host_grads[2], "float64"))
    resumed.update(copy, as_list(device, host_grads[2], "float64"))
    a.update(as_dict, {key: device.asarray(v, dtype="float64") for key, v in host_grads[2].items()})
    for i, key in enumerate(("W", "b")):
        np.testing.assert_array_equal(to_numpy(copy[i]), to_numpy(as_lst[i]))
        np.testing.assert_array_equal(to_numpy(as_dict[key]), to_numpy(as_lst[i]))


@pytest.mark.parametrize("name", list(HYPER))
def test_state_and_copies_live_on_the_params_device(device, name):
    host_params, host_grads = make_problem(5)
    params = as_list(device, host_params, "float32")
    optimizer = get_optimizer(name, **HYPER[name])
    optimizer.update(params, as_list(device, host_grads[0], "float32"))
    for key, value in optimizer.state_dict().items():
        if key != "iter":
            assert_on(value, device, "float32")
    for name_ in optimizer.state_names:
        if name_ != "iter":
            for value in getattr(optimizer, name_):
                assert_on(value, device, "float32")


def naive_reference(name, hp, steps):
    """The first book's ch06 toy: f(x, y) = x**2 / 20 + y**2 from (-7, 2), in plain floats."""
    x, y = -7.0, 2.0
    state = {"v": [0.0, 0.0], "h": [0.0, 0.0], "m": [0.0, 0.0]}
    lr = hp["lr"]
    for t in range(1, steps + 1):
        gs = [x / 10.0, 2.0 * y]
        ws = [x, y]
        for i, g in enumerate(gs):
            w = ws[i]
            if name == "sgd":
                w -= lr * g
            elif name == "momentum":
                state["v"][i] = hp["momentum"] * state["v"][i] - lr * g
                w += state["v"][i]
            elif name == "nesterov":
                mu = hp["momentum"]
                w += mu * mu * state["v"][i] - (1 + mu) * lr * g
                state["v"][i] = mu * state["v"][i] - lr * g
            elif name == "adagrad":
                state["h"][i] += g * g
                w -= lr * g / (math.sqrt(state["h"][i]) + 1e-7)
            elif name == "rmsprop":
                d = hp["decay_rate"]
                state["h"][i] = d * state["h"][i] + (1 - d) * g * g
                w -= lr * g / (math.sqrt(state["h"][i]) + 1e-7)
            elif name == "adam":
                b1, b2 = hp["beta1"], hp["beta2"]
                state["m"][i] = b1 * state["m"][i] + (1 - b1) * g
                state["h"][i] = b2 * state["h"][i] + (1 - b2) * g * g
                lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                w -= lr_t * state["m"][i] / (math.sqrt(state["h"][i]) + 1e-7)
            ws[i] = w
        x, y = ws
    return x, y


@pytest.mark.parametrize("kind", ["float", "numpy-scalar"])
@pytest.mark.parametrize("name", list(HYPER))
def test_python_numbers_are_rebound(name, kind):
    wrap = float if kind == "float" else np.float64
    params = {"x": wrap(-7.0), "y": wrap(2.0)}
    optimizer = get_optimizer(name, **HYPER[name])
    for _ in range(5):
        grads = {"x": params["x"] / 10.0, "y": 2.0 * params["y"]}
        optimizer.update(params, grads)
    expected = naive_reference(name, HYPER[name], 5)
    assert float(params["x"]) == pytest.approx(expected[0], rel=1e-12)
    assert float(params["y"]) == pytest.approx(expected[1], rel=1e-12)


@pytest.mark.parametrize("name", list(HYPER))
def test_zero_d_arrays_update_in_place(device, name):
    params = [device.asarray(-7.0, dtype="float64"), device.asarray(2.0, dtype="float64")]
    originals = list(params)
    optimizer = get_optimizer(name, **HYPER[name])
    for _ in range(5):
        optimizer.update(params, [params[0] / 10.0, 2.0 * params[1]])
    assert params[0] is originals[0] and params[1] is originals[1]
    expected = naive_reference(name, HYPER[name], 5)
    assert float(params[0]) == pytest.approx(expected[0], rel=1e-12)
    assert float(params[1]) == pytest.approx(expected[1], rel=1e-12)


def test_nesterov_moves_with_the_old_velocity_first():
    """w0 = 0, gradients 1 then 2, lr = 0.1, momentum = 0.5, worked out by hand:
    step 1: w = 0 + 0 - 1.5 * 0.1 = -0.15, v = -0.1;
    step 2: w = -0.15 + 0.25 * (-0.1) - 1.5 * 0.2 = -0.475, v = -0.05 - 0.2 = -0.25."""
    params = {"w": 0.0}
    opt = Nesterov(lr=0.1, momentum=0.5)
    opt.update(params, {"w": 1.0})
    assert params["w"] == pytest.approx(-0.15) and opt.v["w"] == pytest.approx(-0.1)
    opt.update(params, {"w": 2.0})
    assert params["w"] == pytest.approx(-0.475) and opt.v["w"] == pytest.approx(-0.25)


@pytest.mark.parametrize("cls, arg, bad", [
    (Momentum, "momentum", [-0.1, 1.0, 1.5, "0.9", float("nan"), None, True]),
    (Nesterov, "momentum", [-1, 1.0]),
    (RMSprop, "decay_rate", [0.0, 1.0, 2, -0.5, "0.99"]),
    (Adam, "beta1", [0.0, 1.0, -0.1, 1.5, "0.9"]),
    (Adam, "beta2", [0.0, 1.0, 2.0, None]),
])
def test_hyper_parameter_ranges(cls, arg, bad):
    for value in bad:
        with pytest.raises(ValueError, match=arg):
            cls(**{arg: value})


def test_hyper_parameter_edges_accepted():
    assert Momentum(momentum=0).momentum == 0.0
    assert type(Adam(beta1=np.float64(0.5)).beta1) is float
    assert RMSprop(decay_rate=0.5).decay_rate == 0.5


def test_bad_containers_are_named():
    with pytest.raises(TypeError, match="params"):
        SGD().update("W", "dW")
    with pytest.raises(TypeError, match="grads"):
        SGD().update({"W": 1.0}, [1.0])
    with pytest.raises(ValueError, match="grads"):
        SGD().update([np.ones(2), np.ones(2)], [np.ones(2)])
    with pytest.raises(TypeError, match=r"grads\[0\]"):
        AdaGrad().update([np.ones(2)], ["x"])
    with pytest.raises(ValueError, match=r"grads\[1\]"):
        SGD().update([np.ones(2), np.ones(3)], [np.ones(2), np.ones(2)])
