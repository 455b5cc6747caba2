"""xpnet.functions: values, batch/single forms, label forms, stability, dtypes."""

import contextlib
import math
import warnings

import numpy as np
import pytest
from _checks import xp_assert_close, assert_grad_close, assert_on

from xpnet import functions as F
from xpnet.backend import to_numpy


@contextlib.contextmanager
def strict_float_errors():
    """Any warning is an error, and NumPy raises on overflow, invalid and divide-by-zero.

    Underflow (exp(-1e4) -> 0) is the intended result of a stable formula, so it is allowed.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            yield


def arr(device, values, dtype="float64"):
    return device.asarray(np.asarray(values, dtype=np.float64), dtype=dtype)


def labels(device, values):
    return device.asarray(np.asarray(values, dtype=np.int64))


BOOK_Y = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
BOOK_T = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]


def test_identity_function(device):
    x = arr(device, [[-1.0, 2.0]])
    assert F.identity_function(x) is x


def test_step_function_values_and_dtype(device):
    for dtype in ("float32", "float64"):
        y = F.step_function(arr(device, [-1.0, 0.0, 0.5, 3.0], dtype))
        assert_on(y, device, device.xp.int64, (4,))  # integers, as the book's dtype=int
        np.testing.assert_array_equal(to_numpy(y), [0, 0, 1, 1])


def test_sigmoid_values(device):
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    y = to_numpy(F.sigmoid(arr(device, x)))
    xp_assert_close(y, 1.0 / (1.0 + np.exp(-x)), "float64")
    assert y[2] == 0.5


def test_sigmoid_grad_matches_derivative(device):
    x = arr(device, np.linspace(-4.0, 4.0, 9))
    analytic = F.sigmoid_grad(x)
    host = to_numpy(x)
    s = 1.0 / (1.0 + np.exp(-host))
    np.testing.assert_allclose(to_numpy(analytic), s * (1.0 - s), rtol=1e-14)
    assert_grad_close(lambda z: device.xp.sum(F.sigmoid(z)), x, analytic)


def test_relu_values(device):
    y = F.relu(arr(device, [[-2.0, 0.0], [0.25, 7.0]]))
    np.testing.assert_array_equal(to_numpy(y), [[0.0, 0.0], [0.25, 7.0]])


def test_relu_grad_shape_and_dtype(device):
    # The book: grad = zeros_like(x); grad[x >= 0] = 1, so relu_grad(0) == 1.
    x = arr(device, [[-2.0, 0.0, 1.0], [3.0, -0.1, 0.2]], "float32")
    g = F.relu_grad(x)
    assert_on(g, device, "float32", (2, 3))
    np.testing.assert_array_equal(to_numpy(g), [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])


def test_softmax_values_batch_and_single(device):
    row = np.log([1.0, 2.0, 3.0, 4.0])
    single = to_numpy(F.softmax(arr(device, row)))
    np.testing.assert_allclose(single, [0.1, 0.2, 0.3, 0.4], rtol=1e-14)
    batch = np.stack([row, row + 100.0, [0.0, 0.0, 0.0, 0.0]])
    out = to_numpy(F.softmax(arr(device, batch)))
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out[0], [0.1, 0.2, 0.3, 0.4], rtol=1e-14)
    np.testing.assert_allclose(out[1], [0.1, 0.2, 0.3, 0.4], rtol=1e-12)  # shift invariant
    np.testing.assert_allclose(out[2], [0.25] * 4, rtol=1e-15)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-15)


def test_log_softmax_matches_log_of_softmax_and_is_exact_on_underflow(device):
    x = np.random.default_rng(0).normal(size=(3, 5))
    np.testing.assert_allclose(to_numpy(F.log_softmax(arr(device, x))),
                               np.log(to_numpy(F.softmax(arr(device, x)))), rtol=1e-12)
    with strict_float_errors():
        out = to_numpy(F.log_softmax(arr(device, [[0.0, -1e4]])))
    np.testing.assert_allclose(out, [[0.0, -1e4]], rtol=1e-15, atol=1e-300)


def test_mean_squared_error_book_example(device):
    loss = F.mean_squared_error(arr(device, BOOK_Y), arr(device, BOOK_T))
    assert float(loss) == pytest.approx(0.0975, rel=1e-12)
    y2 = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]
    assert float(F.mean_squared_error(arr(device, y2), arr(device, BOOK_T))) == pytest.approx(0.5975, rel=1e-12)


def test_mean_squared_error_shape_mismatch(device):
    with pytest.raises(ValueError, match="t"):
        F.mean_squared_error(arr(device, [[0.1, 0.9]]), arr(device, [0.0, 1.0]))


def test_one_hot(device):
    t = labels(device, [2, 0, 1])
    y = F.one_hot(t, 4, device.xp.float32)
    assert_on(y, device, "float32", (3, 4))
    np.testing.assert_array_equal(to_numpy(y), [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])


def test_cross_entropy_error_single_sample(device):
    expected = -math.log(0.6 + 1e-7)
    y = arr(device, BOOK_Y)
    assert float(F.cross_entropy_error(y, arr(device, BOOK_T))) == pytest.approx(expected, rel=1e-12)
    assert float(F.cross_entropy_error(y, labels(device, 2))) == pytest.approx(expected, rel=1e-12)
    assert float(F.cross_entropy_error(y, labels(device, [2]))) == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_error_batch_one_hot_and_index_agree(device):
    y = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]])
    t = np.array([1, 2])
    expected = -(math.log(0.7 + 1e-7) + math.log(0.25 + 1e-7)) / 2
    by_index = float(F.cross_entropy_error(arr(device, y), labels(device, t)))
    by_one_hot = float(F.cross_entropy_error(arr(device, y), arr(device, np.eye(3)[t])))
    assert by_index == pytest.approx(expected, rel=1e-12)
    assert by_one_hot == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_error_bad_labels(device):
    with pytest.raises(ValueError, match="t"):
        F.cross_entropy_error(arr(device, [[0.5, 0.5], [0.5, 0.5]]), labels(device, [0, 1, 1]))


def test_softmax_loss_values_and_label_forms(device):
    x = np.random.default_rng(1).normal(size=(4, 3))
    t = np.array([0, 2, 1, 2])
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_p[np.arange(4), t].mean()
    by_index = float(F.softmax_loss(arr(device, x), labels(device, t)))
    by_one_hot = float(F.softmax_loss(arr(device, x), arr(device, np.eye(3)[t])))
    assert by_index == pytest.approx(expected, rel=1e-12)
    assert by_one_hot == pytest.approx(expected, rel=1e-12)
    single = float(F.softmax_loss(arr(device, x[1]), labels(device, 2)))
    assert single == pytest.approx(-log_p[1, 2], rel=1e-12)
    # agrees with the book's composition up to its 1e-7 inside the log
    composed = float(F.cross_entropy_error(F.softmax(arr(device, x)), labels(device, t)))
    assert by_index == pytest.approx(composed, abs=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stability_for_huge_inputs(device, dtype):
    big = [[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [-1e4, 1e4, 1e4]]
    x = arr(device, big, dtype)
    with strict_float_errors():
        s = to_numpy(F.sigmoid(x))
        p = to_numpy(F.softmax(x))
        loss = float(F.softmax_loss(x, labels(device, [1, 2, 0])))
        ce = float(F.cross_entropy_error(F.softmax(x), labels(device, [0, 2, 1])))
        g = to_numpy(F.sigmoid_grad(x))
    for values in (s, p, g):
        assert np.all(np.isfinite(values))
    np.testing.assert_array_equal(s, [[1.0, 0.0, 0.5], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.5, 0.5]], atol=1e-7)
    # -log softmax: 2e4 (row 0, label 1), 2e4 (row 1, label 2 is the max: 0), 2e4 + log 2 (row 2)
    assert loss == pytest.approx((2e4 + 0.0 + 2e4 + math.log(2.0)) / 3, rel=1e-6)
    assert math.isfinite(ce) and ce == pytest.approx(-math.log(0.5 + 1e-7) / 3, rel=1e-5)


def test_float32_inputs_stay_float32(device):
    x = arr(device, [[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]], "float32")
    t = labels(device, [2, 0])
    for fn in (F.sigmoid, F.sigmoid_grad, F.relu, F.relu_grad, F.softmax, F.log_softmax):
        assert_on(fn(x), device, "float32", (2, 3))
    y = F.softmax(x)
    assert F.cross_entropy_error(y, t).dtype == device.xp.float32
    assert F.softmax_loss(x, t).dtype == device.xp.float32
    assert F.softmax_loss(x, F.one_hot(t, 3, device.xp.float32)).dtype == device.xp.float32
    assert F.mean_squared_error(x, x).dtype == device.xp.float32
