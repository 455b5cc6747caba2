"""xpnet.book2.layers: the shared layers' params/grads lists (float64 numerical gradients,
in-place grads, one array under two names), SigmoidWithLoss, Embedding and add_rows."""

import numpy as np
import pytest
from _checks import assert_grad_close, assert_on
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xpnet.backend import to_numpy
from xpnet.book2 import layers as book2_layers
from xpnet.book2.layers import Embedding, SigmoidWithLoss, add_rows
from xpnet import layers as shared_layers
from xpnet.layers import Affine, BatchNormalization, MatMul


def _put(device, host, dtype="float64"):
    return device.asarray(np.asarray(host, dtype=np.float64), dtype=dtype)


def test_shared_layers_are_re_exported_not_copied():
    for name in ("MatMul", "Affine", "Softmax", "SoftmaxWithLoss", "Sigmoid", "Relu", "Dropout"):
        assert getattr(book2_layers, name) is getattr(shared_layers, name)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "softmax", "softmax-with-loss", "dropout", "sigmoid-with-loss"])
def test_parameterless_layers_have_empty_lists(name):
    layer = {"relu": shared_layers.Relu, "sigmoid": shared_layers.Sigmoid, "softmax": shared_layers.Softmax,
             "softmax-with-loss": shared_layers.SoftmaxWithLoss, "dropout": shared_layers.Dropout,
             "sigmoid-with-loss": SigmoidWithLoss}[name]()
    assert layer.params == [] and layer.grads == []


def _layers_with_params(device, rng):
    def normal(*shape):
        return _put(device, rng.normal(size=shape))

    return {
        "affine": (Affine(normal(4, 3), normal(3)), normal(5, 2, 2), ("W", "b"), ("dW", "db")),
        "matmul": (MatMul(normal(4, 3)), normal(5, 4), ("W",), ("dW",)),
        "batchnorm": (BatchNormalization(_put(device, 1.0 + 0.3 * rng.normal(size=4)), normal(4)), normal(5, 4),
                      ("gamma", "beta"), ("dgamma", "dbeta")),
    }


@pytest.mark.parametrize("name", ["affine", "matmul", "batchnorm"])
def test_params_grads_lists_match_numerical_gradients(device, name):
    xp = device.xp
    rng = np.random.default_rng(3)
    layer, x, param_names, grad_names = _layers_with_params(device, rng)[name]
    held_params, held_grads = list(layer.params), list(layer.grads)   # a book-2 model's lists
    out = layer.forward(x)
    c = _put(device, rng.normal(size=tuple(out.shape)))
    layer.backward(c)
    for i, (p_name, g_name) in enumerate(zip(param_names, grad_names)):
        assert getattr(layer, p_name) is layer.params[i] is held_params[i]
        assert getattr(layer, g_name) is layer.grads[i] is held_grads[i], "grads must be written in place"
        assert_on(layer.grads[i], device, "float64", tuple(layer.params[i].shape))
    analytic = [to_numpy(g) for g in held_grads]

    def f(_):
        return xp.sum(layer.forward(x) * c)

    for param, grad in zip(held_params, analytic):
        assert_grad_close(f, param, _put(device, grad))
    layer.forward(x)
    layer.backward(2.0 * c)  # a second step overwrites the same arrays with the new gradients
    for held, grad in zip(held_grads, analytic):
        np.testing.assert_allclose(to_numpy(held), 2.0 * grad, rtol=1e-12, atol=1e-12)


def test_setting_the_first_book_name_rebinds_the_list_entry(device):
    layer = Affine(_put(device, np.ones((2, 2))), _put(device, np.zeros(2)))
    new = _put(device, np.full((2, 2), 3.0))
    layer.W = new
    assert layer.params[0] is new and layer.W is new


def test_sigmoid_with_loss_values_and_gradient(device):
    xp = device.xp
    x_host = np.array([2.0, -1.0, 0.5, -30.0, 40.0])
    t_host = np.array([1, 0, 0, 0, 1])
    y = 1.0 / (1.0 + np.exp(-x_host))
    # -log(y) = log(1 + e^-x), -log(1 - y) = log(1 + e^x): exact where y rounds to 0 or 1
    expected = np.mean(t_host * np.logaddexp(0, -x_host) + (1 - t_host) * np.logaddexp(0, x_host))
    layer = SigmoidWithLoss()
    x, t = _put(device, x_host), device.asarray(t_host)
    loss = layer.forward(x, t)
    assert_on(loss, device, "float64", ())
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    dx = layer.backward()
    np.testing.assert_allclose(to_numpy(dx), (y - t_host) / 5, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(layer.backward(3.0)), 3.0 * (y - t_host) / 5, rtol=1e-12)
    assert_grad_close(lambda _: layer.forward(x, t), x, dx)


def test_sigmoid_with_loss_checks_labels(device):
    with pytest.raises(ValueError, match="t"):
        SigmoidWithLoss().forward(_put(device, np.zeros(3)), device.asarray(np.zeros(2, dtype=np.int64)))


def test_embedding_forward_backward_with_repeated_indices(device):
    xp = device.xp
    rng = np.random.default_rng(5)
    W_host = rng.normal(size=(6, 3))
    layer = Embedding(_put(device, W_host))
    grad = layer.grads[0]
    idx_host = np.array([[1, 4], [1, 1], [5, 0]])
    idx = device.asarray(idx_host)
    out = layer.forward(idx)
    assert_on(out, device, "float64", (3, 2, 3))
    np.testing.assert_array_equal(to_numpy(out), W_host[idx_host])
    c_host = rng.normal(size=(3, 2, 3))
    c = _put(device, c_host)
    assert layer.backward(c) is None
    assert layer.grads[0] is grad
    expected = np.zeros((6, 3))
    np.add.at(expected, idx_host.reshape(-1), c_host.reshape(-1, 3))
    np.testing.assert_allclose(to_numpy(grad), expected, rtol=1e-12, atol=1e-15)
    assert_grad_close(lambda _: xp.sum(layer.forward(idx) * c), layer.params[0], grad)


def test_embedding_refuses_float_indices(device):
    layer = Embedding(_put(device, np.ones((3, 2))))
    with pytest.raises(TypeError, match="idx"):
        layer.forward(_put(device, [0.0, 1.0]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), n=st.integers(0, 40), num_rows=st.integers(1, 12), width=st.integers(1, 3),
       path=st.sampled_from(["one-hot", "sort"]))
def test_add_rows_matches_numpy_add_at(device, data, n, num_rows, width, path):
    idx_host = np.array(data.draw(st.lists(st.integers(0, num_rows - 1), min_size=n, max_size=n)), dtype=np.int64)
    values_host = np.array(data.draw(st.lists(st.floats(-1e3, 1e3), min_size=n * width, max_size=n * width)),
                           dtype=np.float64).reshape(n, width)
    expected = np.zeros((num_rows, width))
    np.add.at(expected, idx_host, values_host)
    out = add_rows(device.asarray(idx_host), _put(device, values_host), num_rows,
                   one_hot_max=(1 << 30) if path == "one-hot" else -1)
    assert_on(out, device, "float64", (num_rows, width))
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-12, atol=1e-9)
