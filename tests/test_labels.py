"""Labels (N,), (N, 1) and one-hot (N, C) wherever labels are taken; bad values raise,
naming the range: NumPy labels at once, device labels (checked there, without a wait) at
the next read (``accuracy``, ``raise_pending_labels``); check_labels=False skips the check."""

import numpy as np
import pytest
from _checks import relative_error

from xpnet import backend
from xpnet import functions as F
from xpnet.layers import SoftmaxWithLoss
from xpnet.nets import DeepConvNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet

INDICES = np.array([2, 0, 1, 2, 1])


def forms(device, classes=3):
    """The same five labels as (N,), (N, 1), one-hot float and one-hot int, on ``device``."""
    return {
        "(N,)": device.asarray(INDICES),
        "(N,1)": device.asarray(INDICES.reshape(-1, 1)),
        "one-hot": device.asarray(np.eye(classes)[INDICES], dtype="float32"),
        "one-hot-int": device.asarray(np.eye(classes, dtype=np.int64)[INDICES]),
        "uint8": device.asarray(INDICES.astype(np.uint8)),
        "float-index": device.asarray(INDICES.astype(np.float64)),
    }


BAD = {
    "out of range": (np.array([2, 0, 3, 2, 1]), r"t: expected class indices in 0\.\.2, got 3 \(label 2\)"),
    "negative": (np.array([2, 0, 1, -1, 1]), r"t: expected class indices in 0\.\.2, got -1 \(label 3\)"),
    "non-integer": (np.array([2, 0, 1.5, 2, 1]), r"t: expected class indices in 0\.\.2, got 1\.5"),
    "(N,1) out of range": (np.array([[2], [7], [1], [2], [1]]), r"0\.\.2, got 7 \(label 1\)"),
    "one-hot two ones": (np.eye(3)[INDICES] + np.eye(3)[[0, 1, 2, 0, 0]],
                         r"t: expected one-hot rows of 3 values, 0s and a single 1, got row 0"),
    "one-hot soft": (np.full((5, 3), 1 / 3), r"one-hot rows .* got row 0"),
    "one-hot zero row": (np.eye(3)[INDICES] * np.array([[1], [1], [0], [1], [1]]), r"got row 2 = \[0, 0, 0\]"),
}


def checked(call):
    """``call()``, then the verdict of the label checks it left on a device."""
    call()
    F.raise_pending_labels()


def scores(device):
    return device.asarray(np.random.default_rng(0).normal(size=(5, 3)), dtype="float64")


def test_losses_accept_every_label_form(device):
    x = scores(device)
    expected = float(F.softmax_loss(x, device.asarray(INDICES)))
    probabilities = F.softmax(x)
    for name, t in forms(device).items():
        assert float(F.softmax_loss(x, t)) == pytest.approx(expected, rel=1e-12), name
        assert float(F.cross_entropy_error(probabilities, t)) == pytest.approx(expected, abs=1e-6), name
        np.testing.assert_array_equal(backend.to_numpy(F.as_one_hot(x, t)), np.eye(3)[INDICES], err_msg=name)
        layer = SoftmaxWithLoss()
        assert float(layer.forward(x, t)) == pytest.approx(expected, rel=1e-12), name
        np.testing.assert_allclose(backend.to_numpy(layer.backward()),
                                   (backend.to_numpy(probabilities) - np.eye(3)[INDICES]) / 5, rtol=1e-12)


@pytest.mark.parametrize("case", list(BAD))
def test_losses_refuse_bad_labels_naming_the_range(device, case):
    values, message = BAD[case]
    t = device.asarray(values)
    x = scores(device)
    later = message.split(" = ")[0]  # a deferred verdict names the row, not its values
    with pytest.raises(ValueError, match=later):
        checked(lambda: F.softmax_loss(x, t))
    with pytest.raises(ValueError, match=later):
        checked(lambda: F.cross_entropy_error(F.softmax(x), t))
    with pytest.raises(ValueError, match=message):
        F.check_labels(t, 3)


def test_label_shapes_and_dtypes_are_checked(device):
    x = scores(device)
    for t, message in ((np.array([0, 1, 2]), r"t: expected class indices of shape \(5,\) or \(5, 1\)"),
                       (np.zeros((5, 2), dtype=np.int64), r"one-hot of shape \(5, 3\)"),
                       (np.array([True, False, True, True, False]), "got dtype")):
        with pytest.raises(ValueError, match=message):
            F.softmax_loss(x, device.asarray(t))
        with pytest.raises(ValueError, match=message):
            SoftmaxWithLoss().forward(x, device.asarray(t))
    with pytest.raises(ValueError, match="num_classes"):
        F.check_labels(device.asarray(INDICES), 0)


def test_unchecked_bad_index_gives_nan_not_a_finite_loss(device):
    # SoftmaxWithLoss (the per-step path) checks shapes only; an index naming no class
    # gives a NaN loss, never a plausible number (the old behaviour: -0.0).
    t = device.asarray(np.array([2, 0, 7, 2, 1]))
    assert np.isnan(float(SoftmaxWithLoss().forward(scores(device), t)))
    assert np.isnan(backend.to_numpy(F.one_hot(t, 3, device.xp.float64))[2]).all()


def test_single_sample_labels(device):
    y = device.asarray(np.array([0.1, 0.6, 0.3]), dtype="float64")
    for t in (np.array(1), np.array([1]), np.array([0.0, 1.0, 0.0])):
        assert float(F.cross_entropy_error(y, device.asarray(t))) == pytest.approx(-np.log(0.6 + 1e-7))
    with pytest.raises(ValueError, match=r"0\.\.2, got 3"):
        checked(lambda: F.cross_entropy_error(y, device.asarray(np.array(3))))


# ----------------------------------------------------------------------- nets
NETS = {
    "TwoLayerNet": (lambda d: TwoLayerNet(4, 6, 3, weight_init_std="he", seed=0, device=d), (4,)),
    "MultiLayerNetExtend": (lambda d: MultiLayerNetExtend(4, [6], 3, use_batchnorm=True, use_dropout=True,
                                                          seed=0, device=d), (4,)),
    "SimpleConvNet": (lambda d: SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3, "pad": 1}, 5, 3,
                                              weight_init_std="he", seed=0, device=d), (1, 6, 6)),
}


@pytest.mark.parametrize("name", list(NETS))
def test_nets_accept_every_label_form(device, name):
    build, shape = NETS[name]
    net = build(device)
    x = device.asarray(np.random.default_rng(1).normal(size=(5, *shape)), dtype="float32")
    reference = forms(device)["(N,)"]
    loss = float(net.loss(x, reference))
    acc = net.accuracy(x, reference)
    for form, t in forms(device).items():  # inference first: gradient() moves BatchNorm's statistics
        assert float(net.loss(x, t)) == pytest.approx(loss, rel=1e-6), form
        assert net.accuracy(x, t, batch_size=2) == acc, form
    state = net.rng.state
    grads = {key: backend.to_numpy(value) for key, value in net.gradient(x, reference).items()}
    for form, t in forms(device).items():
        net.rng.state = state
        for key, value in net.gradient(x, t).items():
            assert relative_error(value, grads[key]) < 1e-6, (form, key)


@pytest.mark.parametrize("case", ["out of range", "negative", "non-integer", "one-hot two ones"])
def test_nets_refuse_bad_labels_on_every_direct_call(device, case):
    net = NETS["TwoLayerNet"][0](device)
    x = device.asarray(np.zeros((5, 4)), dtype="float32")
    values, message = BAD[case]
    t = device.asarray(values)
    for call in (lambda: net.loss(x, t), lambda: net.accuracy(x, t), lambda: net.gradient(x, t),
                 lambda: net.numerical_gradient(x, t)):
        with pytest.raises(ValueError, match=message):
            checked(call)


def test_two_class_net_and_label_seven():
    # issue 12 item 7: net.loss(x, [7]) on a 2-class net returned -0.0
    net = TwoLayerNet(3, 4, 2, seed=0)
    with pytest.raises(ValueError, match=r"t: expected class indices in 0\.\.1, got 7"):
        net.loss(np.zeros((1, 3)), np.array([7]))


def test_check_labels_false_skips_the_value_check(device):
    # The Trainer's fast path: values checked once up front, then no read-back per step.
    net = NETS["TwoLayerNet"][0](device)
    x = device.asarray(np.zeros((5, 4)), dtype="float32")
    t = device.asarray(np.array([0, 1, 9, 0, 1]))
    calls = []
    original = F.check_labels, F.check_labels_later
    try:
        F.check_labels = F.check_labels_later = lambda *a: calls.append(a)
        net.gradient(x, t, check_labels=False)
        net.loss(x, t, check_labels=False)
        net.accuracy(x, t, check_labels=False)
        assert calls == []
        net.loss(x, t)
        assert len(calls) == 1 and calls[0][2] == "TwoLayerNet.loss"
    finally:
        F.check_labels, F.check_labels_later = original
    assert np.isnan(float(net.loss(x, t, check_labels=False)))  # never a finite wrong loss
    with pytest.raises(ValueError, match="t: expected 5 labels"):
        net.loss(x, t[:4], check_labels=False)  # shapes are still checked (free)


def test_book_ch07_gradient_check_with_labels_of_shape_n_1():
    # ch07/gradient_check.py: SimpleConvNet((1, 10, 10)), one sample, T of shape (1, 1).
    # Its errors are those of a float64 net (W1's ~1e-6 comes from ReLU/max-pool kinks
    # within +-h, in float64 too), though the net is float32.
    kw = dict(input_dim=(1, 10, 10), conv_param={"filter_num": 10, "filter_size": 3, "pad": 0, "stride": 1},
              hidden_size=10, output_size=10, weight_init_std=0.01)
    net, net64 = SimpleConvNet(**kw, seed=3), SimpleConvNet(**kw, seed=3, dtype="float64")
    X = np.random.default_rng(0).random(100).reshape((1, 1, 10, 10))
    T = np.array([1]).reshape((1, 1))
    grad_num, grad = net.numerical_gradient(X, T), net.gradient(X, T)
    grad_num64, grad64 = net64.numerical_gradient(X, T), net64.gradient(X, T)
    assert sorted(grad_num) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    for key in grad_num:
        error = float(np.abs(grad_num[key] - grad[key]).mean())
        error64 = float(np.abs(grad_num64[key] - grad64[key]).mean())
        assert error < max(1.01 * error64, 1e-8), (key, error, error64)


def test_deep_convnet_labels_of_shape_n_1():
    net = DeepConvNet(seed=0)
    x = np.zeros((2, 1, 28, 28), dtype=np.float32)
    assert float(net.loss(x, np.array([[3], [4]]), train_flg=False)) == pytest.approx(
        float(net.loss(x, np.array([3, 4]), train_flg=False)))
