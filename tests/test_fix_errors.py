"""Errors a newcomer meets name the fix in one line: a forgotten flatten=False, one sample
without its batch axis, a lone hidden size, a missing CuPy, and no network for MNIST."""

import sys
import traceback

import numpy as np
import pytest

from xpnet import __main__ as cli
from xpnet.backend import DeviceError, get_device
from xpnet.datasets import DatasetError, mnist
from xpnet.nets import MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from xpnet.trainer import Trainer

FLATTENED = ("x: expected shape (N, 1, 28, 28), got (5, 784): images flattened to 784 values; load them with "
             "flatten=False (load_mnist(flatten=False)) or pass x.reshape(-1, 1, 28, 28)")


def error_of(call, *args, **kwargs):
    with pytest.raises(Exception) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return type(info.value), message


@pytest.fixture(scope="module")
def convnet():
    return SimpleConvNet(input_dim=(1, 28, 28), conv_param={"filter_num": 2, "filter_size": 5, "pad": 0, "stride": 1},
                         hidden_size=4, output_size=10, seed=0)


def test_forgotten_flatten_false_names_the_fix(convnet):
    x = np.zeros((5, 784), np.float32)
    assert error_of(convnet.predict, x) == (ValueError, FLATTENED)
    assert error_of(convnet.accuracy, x, np.zeros(5, int)) == (ValueError, FLATTENED)
    kind, message = error_of(Trainer, convnet, x, np.zeros(5, int), None, None)
    assert (kind, message) == (ValueError, FLATTENED.replace("x: ", "x_train: ", 1))


@pytest.mark.parametrize("shape", [(1, 28, 28), (28, 28), (784,)])
def test_one_image_without_its_batch_axis_names_the_fix(convnet, shape):
    assert error_of(convnet.predict, np.zeros(shape, np.float32)) == (
        ValueError, f"x: expected shape (N, 1, 28, 28), got {shape}: one sample without its batch axis; "
                    "pass a batch of one, x.reshape(1, 1, 28, 28)")


def test_one_flat_sample_without_its_batch_axis_names_the_fix():
    net = TwoLayerNet(784, 4, 10, seed=0)
    assert error_of(net.predict, np.zeros(784, np.float32)) == (
        ValueError, "x: expected shape (N, 784), got (784,): one sample without its batch axis; "
                    "pass a batch of one, x.reshape(1, 784)")
    assert error_of(net.predict, np.zeros((3, 100), np.float32)) == (
        ValueError, "x: expected shape (N, 784), got (3, 100)")


@pytest.mark.parametrize("net", [MultiLayerNet, MultiLayerNetExtend])
def test_a_lone_hidden_size_writes_the_keyword_call(net):
    assert error_of(net, 784, 100, 10) == (
        TypeError, f"hidden_size_list: expected a list of hidden layer sizes, got 100; write "
                   f"{net.__name__}(input_size=784, hidden_size_list=[100], output_size=10)")
    assert error_of(net, 784, "100", 10)[1].startswith("hidden_size_list: expected a list of hidden layer sizes")
    assert net(784, (4, 3), 10, seed=0).hidden_size_list == [4, 3]


def test_missing_cupy_is_one_device_error_without_a_chained_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)   # import cupy raises ModuleNotFoundError
    with pytest.raises(DeviceError, match=r"needs CuPy, which is not installed: pip install cupy-cuda12x") as info:
        get_device("cuda")
    printed = "".join(traceback.format_exception(info.value))
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "ModuleNotFoundError" not in printed and "During handling" not in printed


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ("http://127.0.0.1:9/", "http://127.0.0.1:9/b/"))
    monkeypatch.setattr("xpnet.datasets.download.RETRY_DELAY", 0)


def test_offline_mnist_is_three_lines_each_mirror_once(offline, tmp_path, capsys):
    with pytest.raises(DatasetError) as info:
        mnist.load_mnist()
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"MNIST is not available: its files are not in {tmp_path / 'data' / 'mnist'}, "
                               "and no mirror delivered them (http://127.0.0.1:9/train-images-idx3-ubyte.gz: ")
    for mirror in mnist.MNIST_MIRRORS:
        assert lines[0].count(mirror + "train-images") == 1
    assert "not tried" not in lines[0]
    assert lines[1].startswith("  Or copy them by hand from http://127.0.0.1:9/ (or the other mirror) into ")
    assert lines[1].endswith("XPNET_DATA): train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                             "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; xpnet checks their SHA-256.")
    assert lines[2] == "  No network: xpnet.datasets.load_mnist_sample() gives real MNIST digits bundled with xpnet."
    # the command line prints the same message, then its flag
    assert cli.main(["train", "--dataset", "mnist", "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: " + lines[0] and err[1:3] == lines[1:] and len(err) == 4


def test_a_bare_net_shows_what_it_is(convnet):
    assert repr(convnet) == ("SimpleConvNet(input_shape=(1, 28, 28), num_classes=10, params=1,258, "
                             "dtype=float32, device='cpu')")
    assert repr(MultiLayerNet(784, [4], 10, dtype="float64", seed=0)) == (
        "MultiLayerNet(input_shape=(784,), num_classes=10, params=3,190, dtype=float64, device='cpu')")
