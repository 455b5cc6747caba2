"""xpnet.gradient.numerical_gradient: values, any shape, x restored, shape/dtype/device kept."""

import numpy as np
import pytest
from _checks import assert_on, relative_error

from xpnet.backend import to_numpy
from xpnet.gradient import numerical_gradient


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 2, 2)])
def test_gradient_of_sum_of_cubes(device, shape):
    host = np.random.default_rng(0).normal(size=shape)
    x = device.asarray(host, dtype="float64")
    grad = numerical_gradient(lambda z: device.xp.sum(z ** 3), x)
    assert_on(grad, device, "float64", shape)
    # central differences are exact up to h**2 * f'''/6 = 1e-8 per entry for z**3
    np.testing.assert_allclose(to_numpy(grad), 3.0 * host ** 2, rtol=0, atol=2e-8)
    assert relative_error(grad, 3.0 * host ** 2) < 1e-7
    np.testing.assert_array_equal(to_numpy(x), host)  # restored exactly


def test_gradient_of_a_mixed_function(device):
    host = np.array([[0.3, -1.2], [2.0, 0.7]])
    x = device.asarray(host, dtype="float64")
    xp = device.xp
    grad = numerical_gradient(lambda z: xp.sum(xp.sin(z) * z[0:1, :]), x)
    expected = np.cos(host) * host[0:1, :]
    expected[0, :] += np.sin(host).sum(axis=0)
    np.testing.assert_allclose(to_numpy(grad), expected, atol=1e-7)


def test_f_may_ignore_its_argument(device):
    # the book's nets: f = lambda W: net.loss(x, t), reading W through the net
    W = device.asarray([[1.0, -2.0], [0.5, 3.0]], dtype="float64")
    state = {"W": W}
    grad = numerical_gradient(lambda _: device.xp.sum(state["W"] ** 2), W)
    np.testing.assert_allclose(to_numpy(grad), 2.0 * to_numpy(W), atol=1e-8)


def test_float32_keeps_shape_dtype_device_and_restores(device):
    host = np.random.default_rng(1).normal(size=(2, 3)).astype(np.float32)
    x = device.asarray(host, dtype="float32")
    grad = numerical_gradient(lambda z: device.xp.sum(z * z), x, h=1e-2)
    assert_on(grad, device, "float32", (2, 3))
    np.testing.assert_allclose(to_numpy(grad), 2.0 * host, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(to_numpy(x), host)


def test_step_size_h_is_used(device):
    # for z**3 the central difference is 3 z**2 + h**2 exactly
    x = device.asarray([1.0], dtype="float64")
    grad = numerical_gradient(lambda z: device.xp.sum(z ** 3), x, h=0.1)
    assert float(grad[0]) == pytest.approx(3.0 + 0.01, rel=1e-12)
