"""xpnet.layers: numerical-vs-analytic gradients for every layer, values, dtypes, devices."""

import dataclasses
import math
from typing import Any, Callable

import numpy as np
import pytest
from _checks import assert_grad_close, assert_on, xp_assert_close

from xpnet.backend import Generator, to_numpy
from xpnet.layers import (
    Affine, BatchNormalization, Convolution, Dropout, MatMul, Pooling, Relu, Sigmoid, Softmax,
    SoftmaxWithLoss,
)


@dataclasses.dataclass
class Case:
    """A layer wired to its input: ``forward()`` runs on ``x`` (perturbed in place by the
    gradient check), ``params`` maps a name to (parameter array, getter of its gradient)."""

    layer: Any
    x: Any
    out_shape: tuple
    forward: Callable[[], Any]
    backward: Callable[[Any], Any]
    params: dict = dataclasses.field(default_factory=dict)


def _away_from_zero(a):
    return a + 0.1 * np.sign(a)  # no ReLU kink within the finite-difference step


def build(name, device, dtype, seed=0):
    rng = np.random.default_rng(seed)

    def put(host):
        return device.asarray(host, dtype=dtype)

    def normal(*shape):
        return put(rng.normal(size=shape))

    def simple(layer, x, out_shape):
        return Case(layer, x, out_shape, lambda: layer.forward(x), layer.backward)

    def with_w_b(layer, x, out_shape):
        case = simple(layer, x, out_shape)
        case.params = {"W": (layer.W, lambda: layer.dW), "b": (layer.b, lambda: layer.db)}
        return case

    if name == "relu":
        return simple(Relu(), put(_away_from_zero(rng.normal(size=(3, 4)))), (3, 4))
    if name == "sigmoid":
        return simple(Sigmoid(), normal(3, 4), (3, 4))
    if name == "affine":
        return with_w_b(Affine(normal(4, 5), normal(5)), normal(3, 4), (3, 5))
    if name == "affine-4d":
        return with_w_b(Affine(normal(12, 4), normal(4)), normal(2, 2, 2, 3), (2, 4))
    if name == "matmul":
        layer, x = MatMul(normal(4, 2)), normal(3, 4)
        case = simple(layer, x, (3, 2))
        case.params = {"W": (layer.params[0], lambda: layer.grads[0])}
        return case
    if name == "softmax":
        return simple(Softmax(), normal(3, 4), (3, 4))
    if name.startswith("softmax-with-loss"):
        layer, x = SoftmaxWithLoss(), normal(4, 3)
        index = np.array([0, 2, 1, 2])
        t = device.asarray(index) if name.endswith("index") else put(np.eye(3)[index])
        return Case(layer, x, (), lambda: layer.forward(x, t), layer.backward)
    if name == "dropout":
        layer, x = Dropout(0.3, rng=Generator(1)), normal(3, 5)
        start = layer.rng.state

        def forward():  # the same mask on every call
            layer.rng.state = start
            return layer.forward(x)

        return Case(layer, x, (3, 5), forward, layer.backward)
    if name.startswith("batchnorm"):
        x = normal(4, 3) if name == "batchnorm-2d" else normal(3, 2, 2, 2)
        features = int(np.prod(x.shape[1:]))
        layer = BatchNormalization(put(1.0 + 0.5 * rng.normal(size=features)), normal(features))
        case = simple(layer, x, tuple(x.shape))
        case.params = {"gamma": (layer.gamma, lambda: layer.dgamma), "beta": (layer.beta, lambda: layer.dbeta)}
        return case
    if name.startswith("conv"):
        x_shape, w_shape, stride, pad, out_shape = CONV[name]
        return with_w_b(Convolution(normal(*w_shape), normal(w_shape[0]), stride, pad), normal(*x_shape), out_shape)
    if name.startswith("pool"):
        x_shape, (ph, pw, stride, pad), out_shape = POOL[name]
        return simple(Pooling(ph, pw, stride, pad), normal(*x_shape), out_shape)
    raise AssertionError(name)


# name: (x shape, W shape, stride, pad, output shape)
CONV = {
    "conv-s1-p0": ((2, 2, 4, 4), (3, 2, 3, 3), 1, 0, (2, 3, 2, 2)),
    "conv-s2-p1": ((2, 2, 5, 5), (2, 2, 3, 3), 2, 1, (2, 2, 3, 3)),
    "conv-s1-p2": ((1, 2, 3, 3), (2, 2, 3, 3), 1, 2, (1, 2, 5, 5)),
    "conv-s2-p0-nonsquare": ((2, 1, 5, 4), (2, 1, 3, 2), 2, 0, (2, 2, 2, 2)),
    # FN <= C with stride 1: dx is computed as a convolution of the padded dout
    "conv-s1-p1-fewer-filters": ((2, 3, 5, 5), (2, 3, 3, 3), 1, 1, (2, 2, 5, 5)),
    "conv-s1-p0-5x5-fewer-filters": ((1, 3, 6, 6), (2, 3, 5, 5), 1, 0, (1, 2, 2, 2)),
    # windows that do not tile the input: the output size floors, as the book's im2col and PyTorch
    "conv-s2-p1-floor-8x8": ((2, 2, 8, 8), (3, 2, 3, 3), 2, 1, (2, 3, 4, 4)),
    "conv-s2-p0-floor-nonsquare": ((1, 2, 6, 7), (2, 2, 2, 3), 2, 0, (1, 2, 3, 3)),
}
# name: (x shape, (pool_h, pool_w, stride, pad), output shape)
POOL = {
    "pool-2x2-s2": ((2, 2, 4, 4), (2, 2, 2, 0), (2, 2, 2, 2)),
    "pool-2x2-s1-overlapping": ((1, 2, 4, 3), (2, 2, 1, 0), (1, 2, 3, 2)),
    "pool-3x3-s2-p1": ((1, 2, 5, 5), (3, 3, 2, 1), (1, 2, 3, 3)),
    "pool-3x2-s1-nonsquare": ((1, 1, 4, 5), (3, 2, 1, 0), (1, 1, 2, 4)),
    "pool-2x2-s2-floor-9x9": ((2, 2, 9, 9), (2, 2, 2, 0), (2, 2, 4, 4)),
    "pool-3x3-s2-p1-floor-8x8": ((1, 2, 8, 8), (3, 3, 2, 1), (1, 2, 4, 4)),
}
LAYERS = ["relu", "sigmoid", "affine", "affine-4d", "matmul", "softmax", "softmax-with-loss-index",
          "softmax-with-loss-one-hot", "dropout", "batchnorm-2d", "batchnorm-4d", *CONV, *POOL]


@pytest.mark.parametrize("name", LAYERS)
def test_gradients_match_numerical(device, name):
    xp = device.xp
    case = build(name, device, "float64")
    out = case.forward()
    c = device.asarray(np.random.default_rng(99).normal(size=tuple(out.shape)), dtype="float64")
    before = to_numpy(c)
    dx = case.backward(c)
    np.testing.assert_array_equal(to_numpy(c), before, err_msg="backward mutated dout")
    analytic = {key: to_numpy(grad()) for key, (_, grad) in case.params.items()}

    def f(_):
        return xp.sum(case.forward() * c)

    assert_grad_close(f, case.x, dx)
    for key, (param, _) in case.params.items():
        assert_grad_close(f, param, device.asarray(analytic[key], dtype="float64"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", LAYERS)
def test_shape_dtype_device_preserved(device, name, dtype):
    case = build(name, device, dtype)
    x_shape = tuple(case.x.shape)
    out = case.forward()
    assert_on(out, device, dtype, case.out_shape)
    dout = device.asarray(np.ones(case.out_shape), dtype=dtype)
    dx = case.backward(dout)
    assert_on(dx, device, dtype, x_shape)
    for key, (param, grad) in case.params.items():
        assert_on(param, device, dtype)
        assert_on(grad(), device, dtype, tuple(param.shape))


# --- forward values ---------------------------------------------------------------------------

def _host(device, host, dtype="float64"):
    return device.asarray(np.asarray(host, dtype=np.float64), dtype=dtype)


def test_relu_and_sigmoid_values(device):
    x = _host(device, [[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(to_numpy(Relu().forward(x)), [[0.0, 0.0, 2.0]])
    relu = Relu()
    relu.forward(x)
    np.testing.assert_array_equal(to_numpy(relu.backward(_host(device, [[5.0, 6.0, 7.0]]))), [[0.0, 0.0, 7.0]])
    xp_assert_close(Sigmoid().forward(x), 1.0 / (1.0 + np.exp([[1.0, 0.0, -2.0]])), "float64")


def test_affine_values_and_shared_params(device):
    rng = np.random.default_rng(0)
    x, W, b = rng.normal(size=(2, 3, 2)), rng.normal(size=(6, 4)), rng.normal(size=4)
    Wd, bd = _host(device, W), _host(device, b)
    layer = Affine(Wd, bd)
    assert layer.W is Wd and layer.b is bd
    out = layer.forward(_host(device, x))
    xp_assert_close(out, x.reshape(2, 6) @ W + b, "float64", n=7)
    dout = rng.normal(size=(2, 4))
    dx = layer.backward(_host(device, dout))
    xp_assert_close(dx, (dout @ W.T).reshape(2, 3, 2), "float64", n=4)
    xp_assert_close(layer.dW, x.reshape(2, 6).T @ dout, "float64", n=2)
    xp_assert_close(layer.db, dout.sum(axis=0), "float64", n=2)


def test_matmul_updates_grads_in_place(device):
    layer = MatMul(_host(device, np.ones((3, 2))))
    grad = layer.grads[0]
    layer.forward(_host(device, [[1.0, 2.0, 3.0]]))
    layer.backward(_host(device, [[1.0, -1.0]]))
    assert layer.grads[0] is grad
    np.testing.assert_array_equal(to_numpy(grad), [[1.0, -1.0], [2.0, -2.0], [3.0, -3.0]])


def test_softmax_with_loss_index_and_one_hot_agree(device):
    x = np.random.default_rng(2).normal(size=(4, 3))
    t = np.array([2, 0, 1, 1])
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    results = []
    for labels in (device.asarray(t), _host(device, np.eye(3)[t])):
        layer = SoftmaxWithLoss()
        loss = float(layer.forward(_host(device, x), labels))
        results.append((loss, to_numpy(layer.backward()), to_numpy(layer.backward(2.0))))
    for loss, dx, dx2 in results:
        assert loss == pytest.approx(-np.log(p[np.arange(4), t]).mean(), rel=1e-12)
        np.testing.assert_allclose(dx, (p - np.eye(3)[t]) / 4, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(dx2, 2.0 * dx, rtol=1e-15)


def naive_conv(x, W, b, stride, pad):
    N, C, H, Wd = x.shape
    FN, _, FH, FW = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h, out_w = (H + 2 * pad - FH) // stride + 1, (Wd + 2 * pad - FW) // stride + 1
    out = np.zeros((N, FN, out_h, out_w))
    for n in range(N):
        for f in range(FN):
            for i in range(out_h):
                for j in range(out_w):
                    window = xp[n, :, i * stride:i * stride + FH, j * stride:j * stride + FW]
                    out[n, f, i, j] = np.sum(window * W[f]) + b[f]
    return out


@pytest.mark.parametrize("name", list(CONV))
def test_convolution_forward_matches_naive_loop(device, name):
    case = build(name, device, "float64")
    layer = case.layer
    expected = naive_conv(to_numpy(case.x), to_numpy(layer.W), to_numpy(layer.b), layer.stride, layer.pad)
    xp_assert_close(case.forward(), expected, n=math.prod(layer.W.shape[1:]))


def naive_max_pool(x, ph, pw, stride, pad):
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # the book pads with 0
    out_h, out_w = (H + 2 * pad - ph) // stride + 1, (W + 2 * pad - pw) // stride + 1
    out = np.zeros((N, C, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = xp[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw].max(axis=(2, 3))
    return out


@pytest.mark.parametrize("name", list(POOL))
def test_pooling_forward_matches_naive_loop(device, name):
    case = build(name, device, "float64")
    layer = case.layer
    expected = naive_max_pool(to_numpy(case.x), layer.pool_h, layer.pool_w, layer.stride, layer.pad)
    np.testing.assert_array_equal(to_numpy(case.forward()), expected)


def test_pooling_backward_routes_to_the_max(device):
    x = _host(device, [[[[1.0, 5.0], [3.0, 2.0]]]])
    layer = Pooling(2, 2, stride=2)
    np.testing.assert_array_equal(to_numpy(layer.forward(x)), [[[[5.0]]]])
    np.testing.assert_array_equal(to_numpy(layer.backward(_host(device, [[[[7.0]]]]))), [[[[0.0, 7.0], [0.0, 0.0]]]])


# --- BatchNormalization -------------------------------------------------------------------------

def test_batchnorm_train_output_is_normalised(device):
    x = np.random.default_rng(3).normal(3.0, 2.0, size=(8, 4))
    layer = BatchNormalization(_host(device, np.ones(4)), _host(device, np.zeros(4)))
    out = to_numpy(layer.forward(_host(device, x)))
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=0), x.var(axis=0) / (x.var(axis=0) + 1e-6), rtol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 2, 1)])
def test_batchnorm_running_stats_follow_ema_and_drive_inference(device, shape):
    rng = np.random.default_rng(4)
    x1, x2, x3 = (rng.normal(1.0, 2.0, size=shape) for _ in range(3))
    features = int(np.prod(shape[1:]))
    gamma, beta = rng.normal(size=features), rng.normal(size=features)
    layer = BatchNormalization(_host(device, gamma), _host(device, beta), momentum=0.8)
    layer.forward(_host(device, x1))
    layer.forward(_host(device, x2))

    f1, f2 = x1.reshape(shape[0], -1), x2.reshape(shape[0], -1)
    mean = 0.8 * (0.8 * 0.0 + 0.2 * f1.mean(axis=0)) + 0.2 * f2.mean(axis=0)
    var = 0.8 * (0.8 * 0.0 + 0.2 * f1.var(axis=0)) + 0.2 * f2.var(axis=0)
    np.testing.assert_allclose(to_numpy(layer.running_mean), mean, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(layer.running_var), var, rtol=1e-12)
    assert_on(layer.running_mean, device, "float64", (features,))

    out = to_numpy(layer.forward(_host(device, x3), train_flg=False))
    expected = gamma * (x3.reshape(shape[0], -1) - mean) / np.sqrt(var + 1e-6) + beta
    np.testing.assert_allclose(out, expected.reshape(shape), rtol=1e-11)
    # inference leaves the running statistics alone
    np.testing.assert_allclose(to_numpy(layer.running_mean), mean, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(layer.running_var), var, rtol=1e-12)


def test_batchnorm_given_running_stats(device):
    layer = BatchNormalization(_host(device, [2.0]), _host(device, [1.0]),
                               running_mean=_host(device, [3.0]), running_var=_host(device, [4.0 - 1e-6]))
    out = to_numpy(layer.forward(_host(device, [[5.0], [1.0]]), train_flg=False))
    np.testing.assert_allclose(out, [[3.0], [-1.0]], rtol=1e-12)


def test_batchnorm_float32_running_stats_stay_float32(device):
    layer = BatchNormalization(_host(device, np.ones(3), "float32"), _host(device, np.zeros(3), "float32"))
    layer.forward(_host(device, np.random.default_rng(5).normal(size=(4, 3)), "float32"))
    assert_on(layer.running_mean, device, "float32", (3,))
    assert_on(layer.running_var, device, "float32", (3,))
    out = layer.forward(_host(device, np.ones((2, 3)), "float32"), train_flg=False)
    assert_on(out, device, "float32", (2, 3))


# --- Dropout --------------------------------------------------------------------------------------

def test_dropout_train_and_test_modes(device):
    x_host = np.random.default_rng(6).normal(size=(20, 50))
    x = _host(device, x_host)
    layer = Dropout(0.3, rng=Generator(7))
    out = to_numpy(layer.forward(x))
    mask = to_numpy(layer.mask)
    assert set(np.unique(mask).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(out, x_host * mask)
    assert 0.6 < mask.mean() < 0.8
    # the same seed gives the same mask on every backend
    np.testing.assert_array_equal(mask, np.random.default_rng(7).random((20, 50)) > 0.3)
    np.testing.assert_array_equal(to_numpy(layer.backward(_host(device, np.ones((20, 50))))), mask)
    np.testing.assert_allclose(to_numpy(layer.forward(x, train_flg=False)), x_host * 0.7, rtol=1e-15)


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_ratio(ratio):
    with pytest.raises(ValueError, match="dropout_ratio"):
        Dropout(ratio)


# --- errors ---------------------------------------------------------------------------------------

def test_wrong_input_shapes_raise_naming_x(device):
    affine = Affine(_host(device, np.ones((4, 2))), _host(device, np.zeros(2)))
    with pytest.raises(ValueError, match="x"):
        affine.forward(_host(device, np.ones((3, 5))))
    conv = Convolution(_host(device, np.ones((2, 3, 3, 3))), _host(device, np.zeros(2)))
    with pytest.raises(ValueError, match="x"):
        conv.forward(_host(device, np.ones((3, 5, 5))))          # no batch axis
    with pytest.raises(ValueError, match="x"):
        conv.forward(_host(device, np.ones((1, 2, 5, 5))))       # 2 channels, W wants 3
    with pytest.raises(ValueError, match="x"):
        Pooling(2, 2).forward(_host(device, np.ones((2, 4, 4))))
    bn = BatchNormalization(_host(device, np.ones(3)), _host(device, np.zeros(3)))
    with pytest.raises(ValueError, match="x"):
        bn.forward(_host(device, np.ones((4, 5))))


def test_convolution_and_pooling_reject_windows_larger_than_the_input(device):
    conv = Convolution(_host(device, np.ones((1, 1, 4, 4))), _host(device, np.zeros(1)), pad=1)
    with pytest.raises(ValueError, match="filter_h"):
        conv.forward(_host(device, np.ones((1, 1, 1, 5))))       # 4 > 1 + 2*1
    with pytest.raises(ValueError, match="filter_w"):
        Pooling(2, 3).forward(_host(device, np.ones((1, 1, 4, 2))))


def test_convolution_rejects_bad_arguments_in_the_constructor(device):
    W = _host(device, np.ones((2, 1, 3, 3)))
    with pytest.raises(ValueError, match="b"):
        Convolution(W, _host(device, np.zeros(3)))                # 3 biases for 2 filters
    with pytest.raises(ValueError, match="W"):
        Convolution(_host(device, np.ones((2, 3, 3))), _host(device, np.zeros(2)))
    with pytest.raises(ValueError, match="stride"):
        Convolution(W, _host(device, np.zeros(2)), stride=1.5)
    with pytest.raises(ValueError, match="pad"):
        Convolution(W, _host(device, np.zeros(2)), pad=-1)


def test_first_layer_skips_the_input_gradient_but_not_its_own(device):
    rng = np.random.default_rng(7)
    x = device.asarray(rng.standard_normal((4, 2, 5, 5)), dtype="float64")
    W = device.asarray(rng.standard_normal((3, 2, 3, 3)), dtype="float64")
    b = device.asarray(rng.standard_normal(3), dtype="float64")
    full, first = Convolution(W, b, pad=1), Convolution(W, b, pad=1)
    first.input_grad = False
    dout = device.asarray(rng.standard_normal((4, 3, 5, 5)), dtype="float64")
    full.forward(x), first.forward(x)
    assert full.backward(dout) is not None and first.backward(dout) is None
    np.testing.assert_array_equal(to_numpy(first.dW), to_numpy(full.dW))
    np.testing.assert_array_equal(to_numpy(first.db), to_numpy(full.db))


@pytest.mark.parametrize("stride", [2, 1])
def test_pooling_gradient_goes_to_the_first_maximum_on_ties(device, stride):
    # every window of this input holds its maximum twice or more (ReLU zeros, repeats)
    host = np.array([[[[0.0, 0.0, 2.0], [1.0, 2.0, 2.0], [0.0, 0.0, 2.0]]]])
    layer = Pooling(2, 2, stride=stride)
    x = device.asarray(np.pad(host, ((0, 0), (0, 0), (0, 1), (0, 1))) if stride == 2 else host, dtype="float64")
    out = layer.forward(x)
    dx = to_numpy(layer.backward(device.xp.ones(out.shape, dtype=out.dtype, device=device.native)))
    expected = np.zeros(tuple(x.shape))
    H, W = x.shape[2:]
    for i in range(0, H - 1, stride):
        for j in range(0, W - 1, stride):
            window = to_numpy(x)[0, 0, i:i + 2, j:j + 2].reshape(-1)
            first = int(np.argmax(window))
            expected[0, 0, i + first // 2, j + first % 2] += 1.0
    np.testing.assert_array_equal(dx, expected)
