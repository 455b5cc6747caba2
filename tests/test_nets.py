"""The book's nets on every backend: gradients, dtypes, devices, batching, files, checks."""

import math
import pickle

import array_api_compat
import numpy as np
import pytest
from _checks import xp_assert_close, assert_on, relative_error

from xpnet import backend, layers
from xpnet.nets import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from xpnet.optimizer import SGD

# Small versions of every net, with the shape of one input sample.
NETS = {
    "TwoLayerNet": (lambda **kw: TwoLayerNet(4, 5, 3, weight_init_std="he", **kw), (4,)),
    "MultiLayerNet-relu": (lambda **kw: MultiLayerNet(4, [5, 6], 3, **kw), (4,)),
    "MultiLayerNet-sigmoid-decay": (
        lambda **kw: MultiLayerNet(4, [5, 6], 3, activation="sigmoid", weight_init_std="xavier",
                                   weight_decay_lambda=0.1, **kw), (4,)),
    "MultiLayerNetExtend": (
        lambda **kw: MultiLayerNetExtend(4, [5, 6], 3, weight_decay_lambda=0.1, use_dropout=True,
                                         dropout_ration=0.3, use_batchnorm=True, **kw), (4,)),
    "SimpleConvNet": (
        lambda **kw: SimpleConvNet((2, 6, 6), {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1},
                                   hidden_size=5, output_size=3, weight_init_std="he", **kw), (2, 6, 6)),
    "DeepConvNet": (lambda **kw: DeepConvNet(**kw), (1, 28, 28)),
}
SMALL = [name for name in NETS if name != "DeepConvNet"]


def make(name, device, **kw):
    return NETS[name][0](device=device, **kw)


def batch(name, device, n, dtype="float32", seed=0, classes=None):
    """``n`` random samples for net ``name`` and random labels, on ``device``."""
    rng = np.random.default_rng(seed)
    x = device.asarray(rng.standard_normal((n, *NETS[name][1])), dtype=dtype)
    num_classes = classes or (10 if name == "DeepConvNet" else 3)
    t = device.asarray(rng.integers(0, num_classes, size=n))
    return x, t


def layer_of(net, key):
    """The layer holding ``params[key]`` (by identity)."""
    for layer in net.layers.values() if isinstance(net.layers, dict) else net.layers:
        if any(getattr(layer, attr, None) is net.params[key] for attr in ("W", "b", "gamma", "beta")):
            return layer
    raise AssertionError(f"no layer holds params[{key!r}]")


def assert_close_gradient(key, numeric, analytic, rtol=1e-6):
    """Relative error < ``rtol``; a gradient that is zero in exact arithmetic (an Affine bias
    right before BatchNorm, a unit Dropout removed) leaves only rounding noise: judged absolutely."""
    diff = float(np.max(np.abs(backend.to_numpy(numeric) - backend.to_numpy(analytic))))
    err = relative_error(numeric, analytic)
    assert err < rtol or diff < 1e-10, f"{key}: relative error {err:.2e}, max |diff| {diff:.2e}"


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", SMALL)
def test_backprop_matches_numerical_gradient(device, name):
    net = make(name, device, dtype="float64", seed=1)
    x, t = batch(name, device, 4, dtype="float64")
    state = net.rng.state
    analytic = net.gradient(x, t)
    net.rng.state = state  # the same Dropout masks for both
    numeric = net.numerical_gradient(x, t)
    assert sorted(analytic) == sorted(net.params)
    for key, grad in analytic.items():
        assert_on(grad, device, "float64", net.params[key].shape)
    assert sorted(numeric) == sorted(analytic)
    for key in analytic:
        assert_close_gradient(key, numeric[key], analytic[key])


def test_deep_convnet_backprop_matches_central_differences_on_sampled_entries(device):
    net = make("DeepConvNet", device, dtype="float64", seed=3)
    x, t = batch("DeepConvNet", device, 2, dtype="float64")
    state = net.rng.state
    analytic = net.gradient(x, t)
    assert sorted(analytic) == sorted(net.params) == sorted(f"{p}{i}" for p in "Wb" for i in range(1, 9))
    picker = np.random.default_rng(0)
    h = 1e-6  # float64 rounding stays ~1e-10 while fewer ReLU/max-pool kinks fall inside +-h
    for key, param in net.params.items():
        expected = backend.to_numpy(analytic[key])
        flat = picker.choice(math.prod(param.shape), size=min(4, math.prod(param.shape)), replace=False)
        numeric, chosen = [], []
        for index in (np.unravel_index(i, tuple(param.shape)) for i in flat):
            index = tuple(int(i) for i in index)
            original = float(param[index])
            losses = []
            for value in (original + h, original - h):
                param[index] = value
                net.rng.state = state
                losses.append(float(net.loss(x, t)))
            param[index] = original
            numeric.append((losses[0] - losses[1]) / (2 * h))
            chosen.append(expected[index])
        assert_close_gradient(key, np.array(numeric), np.array(chosen))


# ---------------------------------------------------- dtypes, devices, aliases
@pytest.mark.parametrize("name", list(NETS))
def test_float32_by_default_on_the_requested_device(device, name):
    net = make(name, device, seed=0)
    assert net.device == device
    assert net.dtype == device.xp.float32
    for value in net.params.values():
        assert_on(value, device, "float32")
    x, t = batch(name, device, 2, dtype="float64")  # float64 input is cast to the net's dtype
    assert_on(net.predict(x), device, "float32", (2, 10 if name == "DeepConvNet" else 3))
    assert_on(net.loss(x, t), device, "float32", ())
    for key, grad in net.gradient(x, t).items():
        assert_on(grad, device, "float32", net.params[key].shape)


@pytest.mark.parametrize("name", list(NETS))
def test_layers_hold_the_very_arrays_of_params(device, name):
    net = make(name, device, seed=0)
    for key in net.params:
        layer_of(net, key)
    assert net.params["W1"] is (net.layers[0] if name == "DeepConvNet" else next(iter(net.layers.values()))).W
    x, t = batch(name, device, 2)
    before = net.predict(x)
    SGD(lr=0.5).update(net.params, net.gradient(x, t))
    after = net.predict(x)
    assert relative_error(before, after) > 1e-6, "an in-place update of params reaches the layers"


def test_book_keys_and_layer_names():
    assert list(TwoLayerNet(4, 5, 3).layers) == ["Affine1", "Relu1", "Affine2"]
    net = MultiLayerNetExtend(4, [5, 6], 3, use_dropout=True, use_batchnorm=True)
    assert sorted(net.params) == sorted(
        ["W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "beta1", "gamma2", "beta2"])
    assert list(net.layers) == ["Affine1", "BatchNorm1", "Activation_function1", "Dropout1",
                                "Affine2", "BatchNorm2", "Activation_function2", "Dropout2", "Affine3"]
    assert list(MultiLayerNet(4, [5], 3).layers) == ["Affine1", "Activation_function1", "Affine2"]
    assert list(SimpleConvNet().layers) == ["Conv1", "Relu1", "Pool1", "Affine1", "Relu2", "Affine2"]
    assert isinstance(net.last_layer, layers.SoftmaxWithLoss)


def test_simple_convnet_book_defaults():
    net = SimpleConvNet()
    shapes = {key: tuple(value.shape) for key, value in net.params.items()}
    assert shapes == {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (30 * 12 * 12, 100), "b2": (100,),
                      "W3": (100, 10), "b3": (10,)}
    assert float(np.std(backend.to_numpy(net.params["W2"]))) == pytest.approx(0.01, rel=0.05)


def test_deep_convnet_is_the_books_layer_list(device):
    net = make("DeepConvNet", device, seed=0)
    kinds = [type(layer).__name__ for layer in net.layers]
    conv, relu, pool = "Convolution", "Relu", "Pooling"
    assert kinds == [conv, relu, conv, relu, pool] * 3 + ["Affine", relu, "Dropout", "Affine", "Dropout"]
    convs = [layer for layer in net.layers if isinstance(layer, layers.Convolution)]
    assert [tuple(c.W.shape) for c in convs] == [(16, 1, 3, 3), (16, 16, 3, 3), (32, 16, 3, 3),
                                                 (32, 32, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3)]
    assert [c.pad for c in convs] == [1, 1, 1, 2, 1, 1] and all(c.stride == 1 for c in convs)
    pools = [layer for layer in net.layers if isinstance(layer, layers.Pooling)]
    assert all((p.pool_h, p.pool_w, p.stride) == (2, 2, 2) for p in pools)
    assert tuple(net.params["W7"].shape) == (1024, 50) and tuple(net.params["W8"].shape) == (50, 10)
    assert [d.dropout_ratio for d in net.layers if isinstance(d, layers.Dropout)] == [0.5, 0.5]
    assert all(d.rng is net.rng for d in net.layers if isinstance(d, layers.Dropout))
    for key, fan_in in (("W1", 9), ("W4", 32 * 9), ("W7", 1024)):  # He init
        assert float(np.std(backend.to_numpy(net.params[key]))) == pytest.approx(math.sqrt(2 / fan_in), rel=0.2)
    x, _ = batch("DeepConvNet", device, 2)
    assert tuple(net.predict(x).shape) == (2, 10)


def test_weight_init_by_name():
    for name, gain in (("relu", 2.0), ("He", 2.0), ("sigmoid", 1.0), ("xavier", 1.0)):
        W = backend.to_numpy(MultiLayerNet(400, [300], 2, weight_init_std=name, seed=0).params["W1"])
        assert float(np.std(W)) == pytest.approx(math.sqrt(gain / 400), rel=0.02), name
    W = backend.to_numpy(TwoLayerNet(400, 300, 2, weight_init_std=0.05, seed=0).params["W1"])
    assert float(np.std(W)) == pytest.approx(0.05, rel=0.02)
    with pytest.raises(ValueError, match=r"weight_init_std: .*\['he', 'relu', 'sigmoid', 'xavier'\].*'lecun'"):
        MultiLayerNet(4, [5], 3, weight_init_std="lecun")


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="activation"):
        MultiLayerNet(4, [5], 3, activation="tanh")
    with pytest.raises(ValueError, match="hidden_size_list"):
        MultiLayerNet(4, [5, 0], 3)
    with pytest.raises(ValueError, match="weight_decay_lambda"):
        MultiLayerNet(4, [5], 3, weight_decay_lambda=-1)
    with pytest.raises(ValueError, match=r"conv_param: unknown keys \['filters'\]"):
        SimpleConvNet(conv_param={"filters": 3})
    with pytest.raises(ValueError, match="input_dim"):
        SimpleConvNet(input_dim=(1, 5, 5))  # the 1x1 map cannot be pooled 2x2
    with pytest.raises(ValueError, match="dtype"):
        TwoLayerNet(4, 5, 3, dtype="int32")
    with pytest.raises(TypeError, match="not both"):
        MultiLayerNetExtend(4, [5], 3, use_dropout=True, dropout_ration=0.2, dropout_ratio=0.3)
    assert MultiLayerNetExtend(4, [5], 3, use_dropout=True, dropout_ratio=0.2).layers["Dropout1"].dropout_ratio == 0.2


# ------------------------------------------------------------------ behaviour
def test_same_seed_same_params_and_masks(device):
    a, b = (make("MultiLayerNetExtend", device, seed=7) for _ in range(2))
    c = make("MultiLayerNetExtend", device, seed=8)
    for key in a.params:
        np.testing.assert_array_equal(backend.to_numpy(a.params[key]), backend.to_numpy(b.params[key]))
    assert relative_error(a.params["W1"], c.params["W1"]) > 0.1
    x, _ = batch("MultiLayerNetExtend", device, 5)
    np.testing.assert_array_equal(backend.to_numpy(a.predict(x, train_flg=True)),
                                  backend.to_numpy(b.predict(x, train_flg=True)))
    state = a.rng.state
    first = backend.to_numpy(a.predict(x, train_flg=True))
    a.rng.state = state
    np.testing.assert_array_equal(first, backend.to_numpy(a.predict(x, train_flg=True)))


@pytest.mark.parametrize("name", ["TwoLayerNet", "SimpleConvNet"])
def test_accuracy_in_batches_equals_one_batch(device, name):
    net = make(name, device, seed=2)
    x, t = batch(name, device, 23)
    scores = backend.to_numpy(net.predict(x))
    expected = float(np.mean(np.argmax(scores, axis=1) == backend.to_numpy(t)))
    one_hot = device.asarray(np.eye(3, dtype=np.float32)[backend.to_numpy(t)])
    for batch_size in (1, 5, 23, 100):
        assert net.accuracy(x, t, batch_size=batch_size) == expected
        assert net.accuracy(x, one_hot, batch_size=batch_size) == expected
    assert isinstance(net.accuracy(x, t), float)
    with pytest.raises(ValueError, match="batch_size"):
        net.accuracy(x, t, batch_size=0)


def test_accuracy_uses_inference_mode(device):
    net = make("MultiLayerNetExtend", device, seed=0)
    x, t = batch("MultiLayerNetExtend", device, 20)
    net.gradient(x, t)  # sets BatchNorm running statistics
    state = net.rng.state
    expected = float(np.mean(np.argmax(backend.to_numpy(net.predict(x)), axis=1) == backend.to_numpy(t)))
    assert net.accuracy(x, t, batch_size=3) == expected
    assert net.rng.state == state, "no Dropout mask was drawn"


def test_weight_decay_enters_the_loss(device):
    plain = make("MultiLayerNet-relu", device, seed=0)
    decayed = MultiLayerNet(4, [5, 6], 3, weight_decay_lambda=0.5, seed=0, device=device)
    x, t = batch("MultiLayerNet-relu", device, 3)
    penalty = sum(float(np.sum(backend.to_numpy(decayed.params[f"W{i}"]) ** 2)) for i in (1, 2, 3))
    assert float(decayed.loss(x, t)) == pytest.approx(float(plain.loss(x, t)) + 0.25 * penalty, rel=1e-5)


def test_training_decreases_the_loss(device):
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 6)) * 3.0
    labels = rng.integers(0, 3, size=120)
    x = device.asarray(centers[labels] + rng.standard_normal((120, 6)) * 0.5, dtype="float32")
    t = device.asarray(labels)
    net = TwoLayerNet(6, 16, 3, weight_init_std="he", seed=0, device=device)
    optimizer = SGD(lr=0.1)
    start = float(net.loss(x, t))
    for _ in range(30):
        optimizer.update(net.params, net.gradient(x, t))
    assert float(net.loss(x, t)) < 0.5 * start
    assert net.accuracy(x, t) > 0.9


def test_net_moved_with_to_device_follows_its_params(device):
    net = make("SimpleConvNet", backend.CPU, seed=0)
    host_x, host_t = batch("SimpleConvNet", backend.CPU, 3)
    expected = backend.to_numpy(net.predict(host_x))
    backend.to_device(net, device)
    assert net.device == device
    assert net.params["W1"] is net.layers["Conv1"].W
    x, t = device.asarray(host_x), device.asarray(host_t)
    np.testing.assert_allclose(backend.to_numpy(net.predict(x)), expected, rtol=1e-5, atol=1e-6)
    net.gradient(x, t)


# --------------------------------------------------------------- input checks
def test_inputs_are_checked_cheaply_and_clearly(device):
    net = make("TwoLayerNet", device, seed=0)
    x, t = batch("TwoLayerNet", device, 4)
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 4\)"):
        net.predict(device.asarray(np.zeros((4, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match="t: expected 4 labels"):
        net.accuracy(x, t[:3])
    with pytest.raises(TypeError, match="x: expected an array"):
        net.predict([[0.0] * 4])
    conv = make("SimpleConvNet", device, seed=0)
    with pytest.raises(ValueError, match=r"x: expected shape \(N, 2, 6, 6\)"):
        conv.predict(device.asarray(np.zeros((1, 2, 6, 5), dtype=np.float32)))


# -------------------------------------------------------------------- files
@pytest.mark.parametrize("name", list(NETS))
def test_save_load_round_trip(device, tmp_path, name):
    source = make(name, device, seed=0)
    x, t = batch(name, device, 4)
    if name == "MultiLayerNetExtend":
        source.gradient(x, t)  # non-trivial running statistics
    source.save_params(tmp_path / "params.npz")
    target = make(name, device, seed=1)
    held = dict(target.params)
    target.load_params(tmp_path / "params.npz")
    for key, value in target.params.items():
        layer_of(target, key)  # still shared with a layer
        assert_on(value, device, "float32")
        if array_api_compat.is_writeable_array(held[key]):
            assert value is held[key], "loaded in place"
    np.testing.assert_array_equal(backend.to_numpy(target.predict(x)), backend.to_numpy(source.predict(x)))
    # ...and on the host, whatever device wrote the file
    host = make(name, backend.CPU, seed=2)
    host.load_params(tmp_path / "params.npz")
    np.testing.assert_allclose(backend.to_numpy(host.predict(backend.to_numpy(x))),
                               backend.to_numpy(source.predict(x)), rtol=1e-5, atol=1e-6)


def test_batchnorm_running_statistics_are_saved(tmp_path):
    net = MultiLayerNetExtend(4, [5], 3, use_batchnorm=True, seed=0)
    x, t = batch("MultiLayerNetExtend", backend.CPU, 8)
    net.gradient(x, t)
    net.save_params(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz") as archive:
        assert sorted(archive.files) == ["W1", "W2", "b1", "b2", "beta1", "gamma1", "running_mean1", "running_var1"]
        np.testing.assert_array_equal(archive["running_var1"], net.layers["BatchNorm1"].running_var)


def test_books_pickle_format_loads(device, tmp_path):
    source = make("SimpleConvNet", backend.CPU, seed=0)
    book_params = {key: np.asarray(value, dtype=np.float64) for key, value in source.params.items()}
    with open(tmp_path / "params.pkl", "wb") as file:
        pickle.dump(book_params, file)
    net = make("SimpleConvNet", device, seed=1)
    net.load_params(tmp_path / "params.pkl")
    x, _ = batch("SimpleConvNet", backend.CPU, 4)
    xp_assert_close(net.predict(device.asarray(x)), source.predict(x), "float32", n=30 * 12 * 12)  # Affine1's sum
    net.save_params(tmp_path / "again.pkl")  # a .pkl name writes the book's format
    with open(tmp_path / "again.pkl", "rb") as file:
        assert sorted(pickle.load(file)) == sorted(book_params)


class _Payload:
    def __reduce__(self):
        return eval, ("1 + 1",)


def test_load_params_refuses_a_malicious_pickle(tmp_path):
    net = TwoLayerNet(4, 5, 3, seed=0)
    before = {key: value.copy() for key, value in net.params.items()}
    evil = {key: backend.to_numpy(value) for key, value in net.params.items()}
    evil["W1"] = _Payload()
    with open(tmp_path / "params.pkl", "wb") as file:
        pickle.dump(evil, file)
    with pytest.raises(pickle.UnpicklingError, match="refused to load global 'builtins.eval'"):
        net.load_params(tmp_path / "params.pkl")
    for key, value in before.items():
        np.testing.assert_array_equal(net.params[key], value)


def test_load_params_names_the_bad_key(tmp_path):
    net = TwoLayerNet(4, 5, 3, seed=0)
    good = {key: backend.to_numpy(value) for key, value in net.params.items()}
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in good.items() if k != "b2"})
    np.savez(tmp_path / "shape.npz", **{**good, "W2": np.zeros((5, 4))})
    np.savez(tmp_path / "extra.npz", **{**good, "W3": np.zeros((3, 3))})
    with pytest.raises(ValueError, match=r"\['b2'\] are missing"):
        net.load_params(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=r"'W2' has shape \(5, 4\), the net expects \(5, 3\)"):
        net.load_params(tmp_path / "shape.npz")
    with pytest.raises(ValueError, match=r"holds \['W3'\]"):
        net.load_params(tmp_path / "extra.npz")
    for key, value in good.items():
        np.testing.assert_array_equal(net.params[key], value)
