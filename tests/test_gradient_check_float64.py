"""The book's gradient checks (ch05/gradient_check.py, ch06/batch_norm_gradient_check.py)
on float32 nets read as in the book: numerical_gradient evaluates in float64 and leaves
the net as it was."""

import numpy as np
import pytest

from xpnet import backend
from xpnet.nets import MultiLayerNetExtend, TwoLayerNet


def mnist_like(device, n, features, seed=0):
    rng = np.random.default_rng(seed)
    x = device.asarray(rng.random((n, features)), dtype="float32")  # pixels in [0, 1)
    t = device.asarray(np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=n)])  # one_hot_label=True
    return x, t


def book_diffs(grad_backprop, grad_numerical):
    """The scripts' comparison: ``np.average(np.abs(backprop - numerical))`` per key."""
    return {key: float(np.average(np.abs(backend.to_numpy(grad_backprop[key]) -
                                         backend.to_numpy(grad_numerical[key]))))
            for key in grad_numerical}


def book_check(device, build, n, features):
    """The book's check on a float32 net and on the same net in float64: ``{dtype: diffs}``."""
    diffs = {}
    for dtype in ("float32", "float64"):
        net = build(dtype=dtype, device=device)
        x_batch, t_batch = mnist_like(device, n, features)
        grad_backprop = net.gradient(x_batch, t_batch)
        grad_numerical = net.numerical_gradient(x_batch, t_batch)
        for grad in grad_numerical.values():
            assert grad.dtype == getattr(device.xp, dtype) and backend.device_of(grad) == device
        diffs[dtype] = book_diffs(grad_backprop, grad_numerical)
    for key, diff in diffs["float32"].items():
        # as small as float64's: ReLU kinks within +-h leave the same error in both
        assert diff < max(1.01 * diffs["float64"][key], 1e-7), (key, diff, diffs["float64"][key])
    return diffs["float32"]


def test_ch05_gradient_check_on_a_float32_net(device):
    diffs = book_check(device, lambda **kw: TwoLayerNet(input_size=20, hidden_size=8, output_size=10, seed=0, **kw),
                       3, 20)
    assert sorted(diffs) == ["W1", "W2", "b1", "b2"]
    assert diffs["W2"] < 1e-8 and diffs["b2"] < 1e-7  # the book prints 1e-10 .. 1e-7


def test_ch06_batch_norm_gradient_check_on_a_float32_net(device):
    # Batch Normalization of ONE sample outputs beta, so beta2 sits on ReLU's kink at 0 (in
    # float64 too, as in the book); the book reports b3 1.8e-7, float32 differences gave 9.5e-4.
    diffs = book_check(device, lambda **kw: MultiLayerNetExtend(
        input_size=6, hidden_size_list=[4, 4], output_size=10, use_batchnorm=True, seed=0, **kw), 1, 6)
    assert len(diffs) == 10 and diffs["b3"] < 1e-7


def test_numerical_gradient_leaves_the_net_as_it_was(device):
    net = MultiLayerNetExtend(3, [2], 2, use_batchnorm=True, use_dropout=True, seed=1, device=device)
    x = device.asarray(np.random.default_rng(2).normal(size=(4, 3)), dtype="float32")
    t = device.asarray(np.array([0, 1, 1, 0]))
    net.gradient(x, t)  # non-trivial running statistics
    before_params = dict(net.params)
    before_values = {key: backend.to_numpy(value) for key, value in net.params.items()}
    bn = net.layers["BatchNorm1"]
    running = (bn.running_mean, bn.running_var)
    before_predict = backend.to_numpy(net.predict(x))
    net.numerical_gradient(x, t)
    assert all(net.params[key] is value for key, value in before_params.items())
    assert net.layers["Affine1"].W is net.params["W1"] and bn.gamma is net.params["gamma1"]
    assert (bn.running_mean, bn.running_var) == running
    for key, value in net.params.items():
        assert value.dtype == device.xp.float32
        np.testing.assert_array_equal(backend.to_numpy(value), before_values[key])
    np.testing.assert_array_equal(backend.to_numpy(net.predict(x)), before_predict)
    assert net.gradient(x, t)["W1"].dtype == device.xp.float32


def test_numerical_gradient_restores_the_net_when_interrupted(monkeypatch):
    net = TwoLayerNet(4, 3, 2, seed=0)
    W1 = net.params["W1"]
    x, t = np.zeros((2, 4), dtype=np.float32), np.array([0, 1])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("xpnet.nets._base.numerical_gradients", interrupted)
    with pytest.raises(KeyboardInterrupt):
        net.numerical_gradient(x, t)
    assert net.params["W1"] is W1 and net.layers["Affine1"].W is W1 and W1.dtype == np.float32
