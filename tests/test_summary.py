"""print(net), net.summary() and xpnet.summary(net, input_shape): layers, output shapes,
parameter counts and the total, for xpnet's nets and for the book's own user nets."""

from collections import OrderedDict

import numpy as np
import pytest

import xpnet
from xpnet import backend
from xpnet.layers import Affine, Dropout, MatMul, Relu, Sigmoid
from xpnet.nets import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet


def test_simple_convnet_summary_table():
    net = SimpleConvNet()
    table = net.summary()
    assert table.total_params == 433_890
    assert [(r.name, r.kind, r.output_shape, r.params) for r in table.rows] == [
        ("Conv1", "Convolution", (30, 24, 24), 780), ("Relu1", "Relu", (30, 24, 24), 0),
        ("Pool1", "Pooling", (30, 12, 12), 0), ("Affine1", "Affine", (100,), 432_100),
        ("Relu2", "Relu", (100,), 0), ("Affine2", "Affine", (10,), 1_010)]
    text = str(net)
    assert text == str(table) == repr(table)
    assert "Total params: 433,890" in text and "(N, 30, 12, 12)" in text and "432,100" in text
    assert text.splitlines()[0] == "SimpleConvNet on cpu, float32"


@pytest.mark.parametrize("build, total, last_shape", [
    (lambda d: TwoLayerNet(784, 50, 10, device=d), 784 * 50 + 50 + 50 * 10 + 10, (10,)),
    (lambda d: MultiLayerNet(784, [100, 100, 100], 10, device=d), 78_500 + 2 * 10_100 + 1_010, (10,)),
    (lambda d: MultiLayerNetExtend(784, [100, 100], 10, use_batchnorm=True, use_dropout=True, device=d),
     78_500 + 200 + 10_100 + 200 + 1_010, (10,)),
    (lambda d: SimpleConvNet(device=d), 433_890, (10,)),
    (lambda d: DeepConvNet(device=d), 123_552, (10,)),
])
def test_every_net_counts_its_parameters(device, build, total, last_shape):
    net = build(device)
    table = net.summary()
    assert table.total_params == total == sum(row.params for row in table.rows)
    assert table.rows[-1].output_shape == last_shape
    assert f"Total params: {total:,}" in str(net)
    assert device.name in str(net).splitlines()[0]


def test_deep_convnet_shapes_follow_the_book():
    rows = DeepConvNet().summary().rows
    assert len(rows) == 20 and [r.name for r in rows[:3]] == ["0", "1", "2"]
    assert rows[7].output_shape == (32, 16, 16)  # the fourth convolution pads 2
    assert rows[14].output_shape == (64, 4, 4) and rows[15].params == 1024 * 50 + 50


class BookTwoLayerNet:
    """A net written as in the book's ch05 (params dict, OrderedDict of layers), on xpnet's layers."""

    def __init__(self, input_size, hidden_size, output_size):
        rng = np.random.default_rng(0)
        self.params = {"W1": 0.01 * rng.standard_normal((input_size, hidden_size)), "b1": np.zeros(hidden_size),
                       "W2": 0.01 * rng.standard_normal((hidden_size, output_size)), "b2": np.zeros(output_size)}
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(self.params["W1"], self.params["b1"])
        self.layers["Relu1"] = Relu()
        self.layers["Dropout"] = Dropout(0.5)
        self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"])


class BookTwoModel:
    """The second book's style: layers in a list, params collected in a list."""

    def __init__(self, device):
        W1 = device.asarray(np.ones((4, 3)), dtype="float32")
        W2 = device.asarray(np.ones((3, 2)), dtype="float32")
        self.layers = [MatMul(W1), Sigmoid(), MatMul(W2)]
        self.params = []
        for layer in self.layers:
            self.params += getattr(layer, "params", [])


def test_book_style_user_net():
    net = BookTwoLayerNet(784, 50, 10)
    table = xpnet.summary(net, (784,))
    assert table.total_params == 39_760
    assert [(r.name, r.output_shape, r.params) for r in table.rows] == [
        ("Affine1", (50,), 39_250), ("Relu1", (50,), 0), ("Dropout", (50,), 0), ("Affine2", (10,), 510)]
    assert str(table).splitlines()[0] == "BookTwoLayerNet on cpu, float64"
    with pytest.raises(ValueError, match="input_shape: this net does not say"):
        xpnet.summary(net)
    with pytest.raises(ValueError, match=r"input_shape \(100,\): layer 'Affine1' \(Affine\)"):
        xpnet.summary(net, (100,))
    with pytest.raises(ValueError, match="input_shape: expected a tuple of positive ints"):
        xpnet.summary(net, 784)


def test_book_two_model_on_every_backend(device):
    model = BookTwoModel(device)
    table = xpnet.summary(model, (4,))
    assert [(r.kind, r.output_shape, r.params) for r in table.rows] == [
        ("MatMul", (3,), 12), ("Sigmoid", (3,), 0), ("MatMul", (2,), 6)]
    assert table.total_params == 18 and device.name in table.title


def test_summary_refuses_what_is_not_a_net():
    with pytest.raises(TypeError, match="params"):
        xpnet.summary(object(), (3,))
    holder = type("Holder", (), {})()
    holder.params, holder.layers = {"W": np.zeros(3)}, "not layers"
    with pytest.raises(TypeError, match="layers"):
        xpnet.summary(holder, (3,))


def test_summary_changes_nothing(device):
    net = MultiLayerNetExtend(4, [5], 3, use_batchnorm=True, use_dropout=True, seed=0, device=device)
    x = device.asarray(np.random.default_rng(0).normal(size=(6, 4)), dtype="float32")
    t = device.asarray(np.array([0, 1, 2, 0, 1, 2]))
    net.gradient(x, t)
    state = net.rng.state
    running = backend.to_numpy(net.layers["BatchNorm1"].running_mean)
    before = backend.to_numpy(net.predict(x))
    str(net)
    assert net.rng.state == state
    np.testing.assert_array_equal(backend.to_numpy(net.layers["BatchNorm1"].running_mean), running)
    np.testing.assert_array_equal(backend.to_numpy(net.predict(x)), before)
