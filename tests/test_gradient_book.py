"""The book's chapter-4 gradient names, and the progress bar of a long numerical gradient."""

import numpy as np
import pytest
from _checks import assert_on

from xpnet import gradient
from xpnet.backend import to_numpy
from xpnet.gradient import _numerical_gradient_1d, numerical_gradient_2d, numerical_gradients


def function_2(x):
    """The book's ``x0**2 + x1**2`` for one point (1-D) or points in rows (2-D)."""
    return (x ** 2).sum() if x.ndim == 1 else (x ** 2).sum(axis=1)


def test_numerical_gradient_1d_is_one_point(device):
    x = device.asarray(np.array([3.0, 4.0]), dtype="float64")
    grad = _numerical_gradient_1d(lambda p: device.xp.sum(p ** 2), x)
    assert_on(grad, device, "float64", (2,))
    np.testing.assert_allclose(to_numpy(grad), [6.0, 8.0], atol=1e-6)
    with pytest.raises(ValueError, match="x: expected a 1-D array"):
        _numerical_gradient_1d(lambda p: device.xp.sum(p), device.asarray(np.zeros((2, 2))))


def test_numerical_gradient_2d_gives_one_gradient_per_row(device):
    points = np.array([[3.0, 4.0], [0.0, 2.0], [-1.5, 0.5]])
    X = device.asarray(points, dtype="float64")
    calls = []

    def f(p):
        calls.append(tuple(p.shape))
        return device.xp.sum(p ** 2)

    grad = numerical_gradient_2d(f, X)
    assert_on(grad, device, "float64", (3, 2))
    np.testing.assert_allclose(to_numpy(grad), 2.0 * points, atol=1e-6)
    assert set(calls) == {(2,)}, "f is given one point at a time, as in the book"
    np.testing.assert_array_equal(to_numpy(X), points)  # restored
    one = numerical_gradient_2d(f, device.asarray(np.array([3.0, 4.0]), dtype="float64"))
    np.testing.assert_allclose(to_numpy(one), [6.0, 8.0], atol=1e-6)
    with pytest.raises(ValueError, match="X: expected"):
        numerical_gradient_2d(f, device.asarray(np.zeros((2, 2, 2))))


def test_book_function_2_on_numpy():
    X = np.array([[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(numerical_gradient_2d(function_2, X), [[6.0, 8.0], [0.0, 4.0]], atol=1e-6)


def test_progress_bar_only_for_long_runs(capsys, monkeypatch):
    x = np.zeros(30)
    numerical_gradients(lambda z: z.sum(), [x])
    assert "numerical gradient" not in capsys.readouterr().err  # fast: quiet
    monkeypatch.setattr(gradient, "PROGRESS_AFTER_S", 0.0)  # "long": every run is
    grads = numerical_gradients(lambda z: (z ** 2).sum(), [x, np.ones(4)])
    err = capsys.readouterr().err
    assert "numerical gradient" in err and "/34" in err
    np.testing.assert_allclose(grads[1], 2.0 * np.ones(4), atol=1e-6)
    numerical_gradients(lambda z: z.sum(), [x], progress=False)
    assert "numerical gradient" not in capsys.readouterr().err
