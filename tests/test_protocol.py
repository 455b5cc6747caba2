"""The layer protocol (params/grads lists written in place, Slot names, declared buffers and
train/test behaviour), the book's argument types and the optimizers' foreach paths."""

import numpy as np
import pytest
from _checks import xp_assert_close

from xpnet import backend
from xpnet.layers import (Affine, BatchNormalization, Convolution, Dropout, MatMul, Pooling, Relu, Sigmoid, Slot,
                          Softmax, SoftmaxWithLoss)
from xpnet.nets import MultiLayerNetExtend
from xpnet.optimizer import SGD, AdaGrad, Adam, Momentum, RMSprop


def _conv(device):
    rng = np.random.default_rng(0)
    return Convolution(device.asarray(rng.normal(size=(3, 2, 3, 3)), dtype="float64"),
                       device.asarray(np.zeros(3), dtype="float64"), pad=1), rng


def test_every_layer_has_params_and_grads_lists():
    W, b = np.ones((4, 3)), np.zeros(3)
    layers = [Relu(), Sigmoid(), Affine(W, b), MatMul(W), Softmax(), SoftmaxWithLoss(), Dropout(),
              BatchNormalization(np.ones(3), np.zeros(3)), Convolution(np.ones((2, 1, 3, 3)), np.zeros(2)),
              Pooling(2, 2)]
    counts = [len(layer.params) for layer in layers]
    assert counts == [0, 0, 2, 1, 0, 0, 0, 2, 2, 0]
    assert all(len(layer.grads) == len(layer.params) for layer in layers)


def test_convolution_writes_its_grads_in_place(device):
    layer, rng = _conv(device)
    dW, db = layer.grads
    assert layer.dW is dW and layer.W is layer.params[0]
    x = device.asarray(rng.normal(size=(2, 2, 5, 5)), dtype="float64")
    for _ in range(2):
        out = layer.forward(x)
        layer.backward(device.asarray(np.ones(tuple(out.shape)), dtype="float64"))
    assert layer.grads[0] is dW and layer.grads[1] is db
    xp_assert_close(db, np.full(3, 2 * 25.0), n=50)


def test_slot_names_a_list_entry():
    class Scale:
        w, dw = Slot("params", 0), Slot("grads", 0)

        def __init__(self):
            self.params, self.grads = [2.0], [0.0]

    layer = Scale()
    layer.w = 3.0
    assert layer.params == [3.0] and layer.dw == 0.0


def test_declarations_are_what_nets_read():
    assert Dropout.takes_train_flg and BatchNormalization.takes_train_flg
    assert not hasattr(Affine, "takes_train_flg") and not hasattr(Pooling, "persistent")
    assert BatchNormalization.persistent == ("running_mean", "running_var")
    net = MultiLayerNetExtend(4, [5, 5], 3, use_batchnorm=True, seed=0)
    assert sorted(net._buffers) == ["running_mean1", "running_mean2", "running_var1", "running_var2"]


def test_book_scalars_gamma_beta_and_bias(device):
    x = device.asarray(np.arange(12.0).reshape(4, 3), dtype="float64")
    scalar = BatchNormalization(gamma=1.0, beta=0.)
    vector = BatchNormalization(device.asarray(np.ones(3), dtype="float64"), device.asarray(np.zeros(3), dtype="float64"))
    xp_assert_close(scalar.forward(x), vector.forward(x))
    dout = device.asarray(np.ones((4, 3)), dtype="float64")
    xp_assert_close(scalar.backward(dout), vector.backward(dout))
    xp_assert_close(scalar.dgamma, vector.dgamma)
    W = device.asarray(np.ones((1, 1, 2, 2)), dtype="float64")
    out = Convolution(W, 0).forward(device.asarray(np.ones((1, 1, 3, 3)), dtype="float64"))
    xp_assert_close(out, np.full((1, 1, 2, 2), 4.0))
    xp_assert_close(Affine(device.asarray(np.eye(3), dtype="float64"), 1).forward(x), np.arange(12.0).reshape(4, 3) + 1)


@pytest.mark.parametrize("momentum", [5, -0.1, 1.0, float("nan")])
def test_batchnorm_momentum_outside_the_unit_interval_is_refused(momentum):
    with pytest.raises(ValueError, match="momentum"):
        BatchNormalization(np.ones(3), np.zeros(3), momentum=momentum)


def test_a_string_parameter_is_refused():
    with pytest.raises(TypeError, match="gamma: expected an array or a real number"):
        BatchNormalization("1", 0.0)


def _params(device, dtype="float32"):
    rng = np.random.default_rng(1)
    return {k: device.asarray(rng.normal(size=s), dtype=dtype) for k, s in (("W1", (3, 4)), ("b1", (4,)))}


@pytest.mark.parametrize("cls", [SGD, Momentum, AdaGrad, RMSprop, Adam])
def test_foreach_and_key_by_key_are_the_same_to_the_bit(device, cls):
    results = []
    for foreach in (None, False):
        params, grads, opt = _params(device), _params(device), cls(foreach=foreach)
        for _ in range(3):
            opt.update(params, grads)
        results.append({k: backend.to_numpy(v) for k, v in params.items()})
    for key in results[0]:
        np.testing.assert_array_equal(results[0][key], results[1][key])


def test_foreach_true_refuses_numbers():
    with pytest.raises(ValueError, match="foreach=True"):
        Adam(foreach=True).update({"x": 1.0}, {"x": 0.5})
    with pytest.raises(ValueError, match="foreach"):
        Adam(foreach="yes")


@pytest.mark.parametrize("cls", [AdaGrad, RMSprop, Adam])
def test_adaptive_optimizers_refuse_float16(cls):
    params = {"W": np.ones(3, dtype=np.float16)}
    with pytest.raises(ValueError, match="float16.*dtype='float32'"):
        cls().update(params, {"W": np.ones(3, dtype=np.float16)})
    SGD().update(params, {"W": np.ones(3, dtype=np.float16)})
    np.testing.assert_array_equal(params["W"], np.full(3, 0.99, dtype=np.float16))


@pytest.mark.parametrize("foreach", [None, False])
@pytest.mark.parametrize("change", ["keys", "shape"])
def test_an_optimizer_reused_on_other_params_says_so(foreach, change):
    opt = Adam(foreach=foreach)
    opt.update({"W1": np.ones((2, 2)), "b1": np.ones(2)}, {"W1": np.ones((2, 2)), "b1": np.ones(2)})
    other = {"W2": np.ones((2, 2)), "b1": np.ones(2)} if change == "keys" else {"W1": np.ones((3, 2)), "b1": np.ones(2)}
    with pytest.raises(ValueError, match="built for other params.*use a new optimizer"):
        opt.update(other, {k: np.ones_like(v) for k, v in other.items()})


def test_creation_helpers_land_on_the_device(device):
    from _checks import assert_on

    assert_on(backend.zeros((2, 3), dtype="float32", device=device), device, "float32", (2, 3))
    full = backend.full((4,), 1.5, dtype="float64", device=device)
    assert_on(full, device, "float64", (4,))
    xp_assert_close(full, np.full(4, 1.5))
    ranks = backend.arange(5, device=device)
    assert_on(ranks, device, shape=(5,))
    np.testing.assert_array_equal(backend.to_numpy(ranks), np.arange(5))
    like = backend.zeros_like(full)
    assert_on(like, device, "float64", (4,))
    copied = backend.copy(full)
    assert_on(copied, device, "float64", (4,))
    copied[...] = device.asarray(np.zeros(4), dtype="float64")
    xp_assert_close(full, np.full(4, 1.5))  # a copy, not a view
