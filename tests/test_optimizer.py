"""xpnet.optimizer: steps against independent hand computations, in-place updates,
state placement, dtypes, the registry, argument checks and checkpoints."""

import math

import numpy as np
import pytest
from _checks import assert_on

from xpnet.backend import to_numpy
from xpnet.optimizer import OPTIMIZERS, SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop, get_optimizer

HYPER = {
    "sgd": {"lr": 0.1},
    "momentum": {"lr": 0.1, "momentum": 0.8},
    "nesterov": {"lr": 0.1, "momentum": 0.7},
    "adagrad": {"lr": 0.2},
    "rmsprop": {"lr": 0.05, "decay_rate": 0.9},
    "adam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.95},
}


def reference(name, w, grads, hp):
    """The update rules written out in float64 NumPy, one step per gradient in ``grads``."""
    w = np.array(w, dtype=np.float64)
    lr = hp["lr"]
    v = np.zeros_like(w)
    h = np.zeros_like(w)
    m = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        if name == "sgd":
            w = w - lr * g
        elif name == "momentum":
            v = hp["momentum"] * v - lr * g
            w = w + v
        elif name == "nesterov":
            mu = hp["momentum"]  # the weights move with the old velocity first
            w = w + mu * mu * v - (1.0 + mu) * lr * g
            v = mu * v - lr * g
        elif name == "adagrad":
            h = h + g ** 2
            w = w - lr * g / (np.sqrt(h) + 1e-7)
        elif name == "rmsprop":
            h = hp["decay_rate"] * h + (1.0 - hp["decay_rate"]) * g ** 2
            w = w - lr * g / (np.sqrt(h) + 1e-7)
        elif name == "adam":
            b1, b2 = hp["beta1"], hp["beta2"]
            m = b1 * m + (1.0 - b1) * g
            v = b2 * v + (1.0 - b2) * g ** 2
            m_hat, v_hat = m / (1.0 - b1 ** t), v / (1.0 - b2 ** t)
            # the book folds the bias corrections into lr_t, so its eps is scaled by sqrt(1 - b2**t)
            w = w - lr * m_hat / (np.sqrt(v_hat) + 1e-7 / math.sqrt(1.0 - b2 ** t))
    return w


def make_problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    grads = [{key: rng.normal(size=value.shape) for key, value in params.items()} for _ in range(3)]
    return params, grads


def on(device, host, dtype):
    """``host`` arrays copied onto ``device`` (NumPy's asarray would hand back the very array)."""
    return {key: device.asarray(np.array(value, copy=True), dtype=dtype) for key, value in host.items()}


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("name", list(HYPER))
def test_three_steps_match_hand_computation(device, name, dtype, rtol):
    host_params, host_grads = make_problem()
    params = on(device, host_params, dtype)
    originals = dict(params)
    grads = [on(device, g, dtype) for g in host_grads]
    grad_copies = [{k: to_numpy(v) for k, v in g.items()} for g in grads]
    optimizer = get_optimizer(name, **HYPER[name])
    for g in grads:
        optimizer.update(params, g)
    for key in params:
        assert params[key] is originals[key], "update must work in place"
        assert_on(params[key], device, dtype, host_params[key].shape)
        expected = reference(name, host_params[key], [g[key] for g in host_grads], HYPER[name])
        np.testing.assert_allclose(to_numpy(params[key]), expected, rtol=rtol, atol=rtol)
    for g, copy in zip(grads, grad_copies):  # grads are read, never written
        for key in g:
            np.testing.assert_array_equal(to_numpy(g[key]), copy[key])


def test_literal_values(device):
    """A few steps worked out by hand: w0 = 1, constant gradient 1, lr = 0.1."""
    expected = {
        "sgd": 1.0 - 3 * 0.1,
        "momentum": 1.0 - 0.1 - 0.19 - 0.271,               # v: -0.1, -0.19, -0.271
        "adagrad": 1.0 - 0.1 * sum(1.0 / (math.sqrt(k) + 1e-7) for k in (1, 2, 3)),
    }
    for name, value in expected.items():
        params = {"w": device.asarray([1.0], dtype="float64")}
        optimizer = get_optimizer(name, lr=0.1)
        for _ in range(3):
            optimizer.update(params, {"w": device.asarray([1.0], dtype="float64")})
        assert float(params["w"][0]) == pytest.approx(value, rel=1e-12), name


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(HYPER))
def test_state_lives_on_the_params_device_and_dtype(device, name, dtype):
    host_params, host_grads = make_problem(1)
    params = on(device, host_params, dtype)
    optimizer = get_optimizer(name, **HYPER[name])
    optimizer.update(params, on(device, host_grads[0], dtype))
    state = optimizer.state_dict()
    arrays = {key: value for key, value in state.items() if key != "iter"}
    assert len(arrays) == {"sgd": 0, "adam": 4}.get(name, 2)
    for key, value in arrays.items():
        assert_on(value, device, dtype, host_params[key.split("/")[1]].shape)


@pytest.mark.parametrize("name", list(HYPER))
def test_layers_see_the_update(device, name):
    """A layer holding params["W"] sees the new values (the book's shared arrays)."""
    from xpnet.layers import Affine

    host_params, host_grads = make_problem(2)
    params = on(device, host_params, "float64")
    layer = Affine(params["W"], params["b"])
    get_optimizer(name, **HYPER[name]).update(params, on(device, host_grads[0], "float64"))
    assert layer.W is params["W"]
    assert not np.array_equal(to_numpy(layer.W), host_params["W"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(HYPER))
def test_state_dict_round_trip_reproduces_the_next_step(device, name, dtype):
    host_params, host_grads = make_problem(3)
    params = on(device, host_params, dtype)
    trained = get_optimizer(name, **HYPER[name])
    for g in host_grads[:2]:
        trained.update(params, on(device, g, dtype))
    checkpoint = trained.state_dict()
    saved_params = {key: to_numpy(value) for key, value in params.items()}

    # the original carries on training ...
    trained.update(params, on(device, host_grads[2], dtype))
    # ... and a fresh optimizer resumed from the checkpoint takes the same step
    resumed = get_optimizer(name, **HYPER[name])
    resumed.load_state_dict(checkpoint)
    resumed_params = on(device, saved_params, dtype)
    resumed.update(resumed_params, on(device, host_grads[2], dtype))
    for key in params:
        np.testing.assert_array_equal(to_numpy(resumed_params[key]), to_numpy(params[key]))

    # and the two optimizers do not share state afterwards
    trained.update(params, on(device, host_grads[0], dtype))
    resumed.update(resumed_params, on(device, host_grads[0], dtype))
    for key in params:
        np.testing.assert_array_equal(to_numpy(resumed_params[key]), to_numpy(params[key]))


def test_state_dict_contents():
    opt = Adam()
    assert opt.state_dict() == {"iter": 0}  # no arrays before the first step
    params = {"W": np.ones((2, 2)), "b": np.ones(2)}
    opt.update(params, {"W": np.ones((2, 2)), "b": np.ones(2)})
    opt.update(params, {"W": np.ones((2, 2)), "b": np.ones(2)})
    state = opt.state_dict()
    assert sorted(state) == ["iter", "m/W", "m/b", "v/W", "v/b"]
    assert state["iter"] == 2
    fresh = Adam()
    fresh.load_state_dict(state)
    assert fresh.iter == 2 and isinstance(fresh.iter, int)


# --- registry and argument checks ------------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [
    ("sgd", SGD), ("SGD", SGD), ("Momentum", Momentum), ("nesterov", Nesterov), ("AdaGrad", AdaGrad),
    ("RMSprop", RMSprop), ("rmsprop", RMSprop), ("ADAM", Adam), ("adam", Adam),
])
def test_get_optimizer_by_name(name, cls):
    optimizer = get_optimizer(name, lr=0.5)
    assert type(optimizer) is cls
    assert optimizer.lr == 0.5


def test_get_optimizer_passes_hyper_parameters():
    adam = get_optimizer("adam", lr=0.002, beta1=0.5, beta2=0.6)
    assert (adam.lr, adam.beta1, adam.beta2) == (0.002, 0.5, 0.6)
    assert get_optimizer("momentum").momentum == 0.9
    with pytest.raises(TypeError):
        get_optimizer("sgd", momentum=0.9)


@pytest.mark.parametrize("name", ["rmsprpo", "adamw", "", "sgd2", None])
def test_get_optimizer_unknown_name_lists_valid_names(name):
    with pytest.raises(ValueError) as info:
        get_optimizer(name)
    message = str(info.value)
    assert "optimizer" in message
    for valid in OPTIMIZERS:
        assert valid in message


def test_numpy_float_learning_rate_is_accepted():
    # the book's hyper-parameter search draws lr = 10 ** np.random.uniform(-6, -2): a np.float64
    assert SGD(lr=10 ** np.float64(-3)).lr == pytest.approx(1e-3)
    assert type(SGD(lr=np.float64(0.5)).lr) is float


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf"), "0.1", None])
@pytest.mark.parametrize("cls", [SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam])
def test_bad_learning_rate_raises(cls, lr):
    with pytest.raises(ValueError, match="lr"):
        cls(lr=lr)


def test_update_checks_grads(device):
    params = {"W": device.asarray(np.ones((2, 2)), dtype="float64")}
    with pytest.raises(KeyError, match="W"):
        SGD().update(params, {})
    with pytest.raises(ValueError, match="W"):
        SGD().update(params, {"W": device.asarray(np.ones(2), dtype="float64")})
