"""Nets evaluate arrays of any namespace and device, and answer in the input's
namespace and on its device; inference runs in memory-bounded chunks."""

import array_api_compat
import numpy as np
import pytest
from _checks import assert_on

from xpnet import backend
from xpnet.nets import DeepConvNet, SimpleConvNet, TwoLayerNet
from xpnet.nets import _base
from xpnet.trainer import Trainer


def strict_device1():
    strict = pytest.importorskip("array_api_strict")
    return backend.get_device(strict, strict.Device("device1"))


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((3, 6)) * 3.0
    labels = rng.integers(0, 3, size=n)
    return (centers[labels] + rng.standard_normal((n, 6)) * 0.5).astype(np.float32), labels


def test_host_arrays_after_training_on_device1():
    # The Colab habit: train on the device, then evaluate NumPy arrays.
    device1 = strict_device1()
    x, t = blobs()
    net = TwoLayerNet(6, 16, 3, weight_init_std="he", seed=0)
    Trainer(net, x, t, x, t, epochs=3, mini_batch_size=10, optimizer="adam", optimizer_param={"lr": 0.05},
            verbose=False, device=device1, seed=0).train()
    assert net.device == device1
    scores = net.predict(x)
    assert isinstance(scores, np.ndarray) and scores.shape == (60, 3) and scores.dtype == np.float32
    on_device = backend.to_numpy(net.predict(device1.asarray(x)))
    np.testing.assert_array_equal(scores, on_device)
    acc = net.accuracy(x, t)
    assert type(acc) is float and acc == float(np.mean(np.argmax(scores, axis=1) == t)) and acc > 0.9
    assert acc == net.accuracy(device1.asarray(x), device1.asarray(t))
    loss = net.loss(x, t)
    assert isinstance(loss, np.ndarray) and loss.shape == ()
    assert float(loss) == pytest.approx(float(net.loss(device1.asarray(x), device1.asarray(t))), rel=1e-6)
    assert net.params["W1"] is net.layers["Affine1"].W  # still one array each, on device1
    assert_on(net.params["W1"], device1, "float32")


def others(device):
    """Inputs from elsewhere: host NumPy and array-api-strict's device1 (where not the net's)."""
    candidates = [backend.CPU, strict_device1()]
    return [d for d in candidates if d != device]


def test_outputs_follow_inputs_on_every_backend(device):
    net = TwoLayerNet(6, 8, 3, weight_init_std="he", seed=1, device=device)
    x, t = blobs(12)
    expected = backend.to_numpy(net.predict(device.asarray(x)))
    for source in others(device):
        xs, ts = source.asarray(x), source.asarray(t)
        scores = net.predict(xs)
        assert_on(scores, source, "float32", (12, 3))
        np.testing.assert_allclose(backend.to_numpy(scores), expected, rtol=1e-6)
        assert_on(net.loss(xs, ts), source, "float32", ())
        assert type(net.accuracy(xs, ts)) is float
        grads = net.gradient(xs, ts)  # gradients stay with the params
        assert_on(grads["W1"], device, "float32", (6, 8))
    assert_on(net.predict(device.asarray(x)), device, "float32")


def test_the_book_argmax_idiom_on_host_scores(device):
    net = SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3, "pad": 1}, 4, 3, seed=0, device=device)
    x = np.random.default_rng(0).random((5, 1, 6, 6)).astype(np.float32)
    y = np.argmax(net.predict(x), axis=1)
    assert y.shape == (5,) and set(y.tolist()) <= {0, 1, 2}


class Spy:
    """Wraps a layer's forward to record the batch sizes it sees."""

    def __init__(self, layer):
        self.sizes, self.forward = [], layer.forward
        layer.forward = self

    def __call__(self, x, *args):
        self.sizes.append(int(x.shape[0]))
        return self.forward(x, *args)


def test_inference_runs_in_chunks_bounded_by_the_memory_budget(device, monkeypatch):
    net = TwoLayerNet(6, 8, 3, seed=0, device=device)
    x, t = blobs(20)
    xd, td = device.asarray(x), device.asarray(t)
    whole = backend.to_numpy(net.predict(xd))
    acc = net.accuracy(xd, td, batch_size=20)
    largest = 8 * 4  # per sample: the 8 hidden float32 values are the largest array
    monkeypatch.setattr(_base, "EVAL_MEMORY_BUDGET", 6 * largest)
    assert net._chunk_size() == 6
    spy = Spy(net.layers["Affine1"])
    np.testing.assert_allclose(backend.to_numpy(net.predict(xd)), whole, rtol=1e-6)
    assert spy.sizes == [6, 6, 6, 2]
    spy.sizes.clear()
    assert net.accuracy(xd, td, batch_size=10**12) == acc
    assert spy.sizes == [6, 6, 6, 2]
    spy.sizes.clear()
    assert net.accuracy(xd, td, batch_size=4) == acc
    assert spy.sizes == [4] * 5
    spy.sizes.clear()
    net.predict(xd, train_flg=True)  # training mode: one pass (batch statistics)
    assert spy.sizes == [20]


def test_deep_convnet_accuracy_with_a_huge_batch_size_stays_bounded():
    net = DeepConvNet(seed=0)
    chunk = net._chunk_size()
    # the largest per-sample array: conv2's columns, 16 * 3 * 3 * 28 * 28 float32 values
    assert chunk == _base.EVAL_MEMORY_BUDGET // (16 * 9 * 28 * 28 * 4) == 148
    spy = Spy(net.layers[0])
    x = np.zeros((chunk + 3, 1, 28, 28), dtype=np.float32)
    t = np.zeros(chunk + 3, dtype=np.int64)
    assert 0.0 <= net.accuracy(x, t, batch_size=10**12) <= 1.0
    assert spy.sizes == [chunk, 3]


def test_non_arrays_are_refused():
    net = TwoLayerNet(4, 5, 3, seed=0)
    with pytest.raises(TypeError, match="x: expected an array"):
        net.predict([[0.0] * 4])
    with pytest.raises(TypeError, match="t: expected an array"):
        net.loss(np.zeros((1, 4)), [0])
    assert array_api_compat.is_numpy_array(net.predict(np.zeros((1, 4))))
