"""xpnet.book2.trainer and base_model: a book-2-style model (layers in a list, params/grads
collected once in the constructor) trains with Trainer.fit on every backend, with every
array on the device; remove_duplicate, clip_grads, config.GPU, np and parameter files."""

import pickle

import numpy as np
import pytest
from _checks import assert_on

from xpnet import backend
from xpnet.backend import to_numpy
from xpnet.book2 import config
from xpnet.book2.base_model import BaseModel
from xpnet.book2.layers import Affine, Sigmoid, SoftmaxWithLoss
from xpnet.book2.optimizer import SGD
from xpnet.book2.trainer import Trainer, clip_grads, remove_duplicate
from xpnet.datasets import spiral


class TwoLayerNet(BaseModel):
    """The second book's chapter-1 shape, written for this test."""

    def __init__(self, input_size, hidden_size, output_size, device, seed=0, check_on=None):
        rng = np.random.default_rng(seed)

        def put(host):
            return device.asarray(host, dtype="float32")

        self.layers = [
            Affine(put(0.01 * rng.standard_normal((input_size, hidden_size))), put(np.zeros(hidden_size))),
            Sigmoid(),
            Affine(put(0.01 * rng.standard_normal((hidden_size, output_size))), put(np.zeros(output_size))),
        ]
        self.loss_layer = SoftmaxWithLoss()
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads
        self.check_on = check_on
        self.batches = 0

    def predict(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def forward(self, x, t):
        if self.check_on is not None:  # every batch is drawn on the device
            assert_on(x, self.check_on, "float32")
            assert_on(t, self.check_on)
        self.batches += 1
        return self.loss_layer.forward(self.predict(x), t)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


def test_book_style_model_trains_on_the_device(device, capsys):
    x, t = spiral.load_data()
    model = TwoLayerNet(2, 10, 3, device, check_on=device)
    held = list(model.params)
    trainer = Trainer(model, SGD(lr=1.0), seed=0)
    assert trainer.device == device   # device=None: where the model already is
    trainer.fit(x, t, max_epoch=40, batch_size=30, eval_interval=5)
    assert model.batches == 40 * 10
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| epoch 1 |  iter 1 / 10 | time ") and "| loss " in lines[0]
    assert len(trainer.loss_list) == len(lines) == 40 * 2
    first, last = np.mean(trainer.loss_list[:4]), np.mean(trainer.loss_list[-4:])
    assert last < first - 0.15, (first, last)
    for i, param in enumerate(model.params):
        assert param is held[i]
        assert_on(param, device, "float32")
    for path, obj in backend.reachable(trainer):
        if backend._is_array(obj):
            assert_on(obj, device)


def test_trainer_moves_model_and_data_to_the_given_device():
    pytest.importorskip("array_api_strict")
    import array_api_strict

    target = backend.get_device(array_api_strict, array_api_strict.Device("device1"))
    model = TwoLayerNet(2, 5, 3, backend.CPU, check_on=target)
    layer_W = model.layers[0].W
    assert layer_W is model.params[0]
    trainer = Trainer(model, SGD(lr=0.5), device=target, seed=1)
    assert model.layers[0].W is model.params[0], "aliases kept by the move"
    assert_on(model.params[0], target)
    x, t = spiral.load_data()
    trainer.fit(x, t, max_epoch=2, batch_size=50, eval_interval=None)
    assert trainer.loss_list == []


def test_same_seed_same_losses():
    x, t = spiral.load_data()
    runs = []
    for _ in range(2):
        trainer = Trainer(TwoLayerNet(2, 6, 3, backend.CPU), SGD(lr=1.0), seed=3)
        trainer.fit(x, t, max_epoch=3, batch_size=30, eval_interval=1)
        runs.append(trainer.loss_list)
    assert runs[0] == runs[1]


def test_config_gpu_selects_cuda(monkeypatch):
    monkeypatch.setattr(config, "GPU", True)
    model = TwoLayerNet(2, 4, 3, backend.CPU)
    if backend.cuda_available():
        assert Trainer(model, SGD()).device.name == "cuda:0"
    else:
        with pytest.raises(backend.DeviceError):
            Trainer(model, SGD())


def test_np_module_follows_config():
    from xpnet.book2 import np as book_np

    assert book_np.np is np and book_np.GPU is False and sorted(book_np.__all__) == ["GPU", "np"]


def test_fit_checks_its_arguments():
    trainer = Trainer(TwoLayerNet(2, 4, 3, backend.CPU), SGD())
    x, t = spiral.load_data()
    for kwargs, name in [({"max_epoch": 0}, "max_epoch"), ({"batch_size": 1.5}, "batch_size"),
                         ({"max_grad": -1.0}, "max_grad"), ({"eval_interval": 0}, "eval_interval"),
                         ({"batch_size": 301}, "batch_size")]:
        with pytest.raises(ValueError, match=name):
            trainer.fit(x, t, **kwargs)
    with pytest.raises(ValueError, match="x, t"):
        trainer.fit(x, t[:10])
    with pytest.raises(TypeError, match="model"):
        Trainer(object(), SGD())
    with pytest.raises(TypeError, match="optimizer"):
        Trainer(TwoLayerNet(2, 4, 3, backend.CPU), "SGD")


def test_max_grad_clips(device):
    x, t = spiral.load_data()
    model = TwoLayerNet(2, 4, 3, device)
    before = [to_numpy(p) for p in model.params]
    Trainer(model, SGD(lr=1.0), seed=0).fit(x, t, max_epoch=1, batch_size=300, max_grad=1e-3, eval_interval=None)
    step = np.sqrt(sum(float(np.sum((to_numpy(p) - b) ** 2)) for p, b in zip(model.params, before)))
    assert step == pytest.approx(1e-3, rel=1e-3)   # lr 1: the step is the clipped gradient


# --- remove_duplicate and clip_grads -------------------------------------------------------------

def test_remove_duplicate_shared_and_transposed(device):
    """Tied weights are found by identity and by views of one memory (``W.T``), never by value."""
    W = device.asarray(np.arange(6.0).reshape(2, 3), dtype="float64")
    V = device.asarray(np.ones((3, 3)), dtype="float64")
    W_copy_T = device.asarray(np.arange(6.0).reshape(2, 3).T, dtype="float64")  # equal values, own memory
    gW1 = device.asarray(np.ones((2, 3)), dtype="float64")
    gW2 = device.asarray(np.full((2, 3), 2.0), dtype="float64")
    gV = device.asarray(np.zeros((3, 3)), dtype="float64")
    gT = device.asarray(np.arange(6.0).reshape(3, 2), dtype="float64")
    params, grads = remove_duplicate([W, V, W, W_copy_T], [gW1, gV, gW2, gT])
    assert len(params) == 3 and params[0] is W and params[1] is V and params[2] is W_copy_T
    np.testing.assert_array_equal(to_numpy(grads[0]), np.full((2, 3), 3.0))
    np.testing.assert_array_equal(to_numpy(gW1), np.ones((2, 3)))  # inputs untouched
    with pytest.raises(ValueError, match="grads"):
        remove_duplicate([W], [])


def test_remove_duplicate_finds_a_transposed_view_and_keeps_equal_square_weights_apart():
    W = np.arange(6.0).reshape(2, 3)
    A, B = np.zeros((4, 4)), np.zeros((4, 4))  # zero-initialised, equal, and each its own weight
    params, grads = remove_duplicate([W, A, B, W.T], [np.ones((2, 3)), A + 1, B + 2, np.arange(6.0).reshape(3, 2)])
    assert len(params) == 3 and params[0] is W and params[1] is A and params[2] is B
    np.testing.assert_array_equal(grads[0], 1.0 + np.arange(6.0).reshape(3, 2).T)
    square = np.arange(9.0).reshape(3, 3)
    _, grads = remove_duplicate([square, square.T], [np.eye(3), np.arange(9.0).reshape(3, 3)])
    np.testing.assert_array_equal(grads[0], np.eye(3) + np.arange(9.0).reshape(3, 3).T)


def test_clip_grads(device):
    grads = [device.asarray([3.0], dtype="float64"), device.asarray([[4.0]], dtype="float64")]
    held = list(grads)
    clip_grads(grads, 1.0)
    assert grads[0] is held[0]
    assert float(grads[0][0]) == pytest.approx(0.6, rel=1e-6) and float(grads[1][0, 0]) == pytest.approx(0.8, rel=1e-6)
    clip_grads(grads, 10.0)   # under the limit: unchanged
    assert float(grads[0][0]) == pytest.approx(0.6, rel=1e-6)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grads(grads, 0)


# --- BaseModel files -----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["pkl", "npz"])
def test_save_and_load_params(device, tmp_path, suffix):
    model = TwoLayerNet(2, 4, 3, device, seed=1)
    path = tmp_path / f"model.{suffix}"
    model.save_params(str(path))
    other = TwoLayerNet(2, 4, 3, device, seed=2)
    held = list(other.params)
    other.load_params(path)
    for a, b, h in zip(model.params, other.params, held):
        assert b is h, "loaded in place"
        np.testing.assert_allclose(to_numpy(b), to_numpy(a), rtol=1e-3 if suffix == "pkl" else 0, atol=1e-6 if suffix == "pkl" else 0)
    if suffix == "pkl":  # the book's format: a pickled list of float16 arrays
        with open(path, "rb") as file:
            stored = pickle.load(file)
        assert isinstance(stored, list) and all(a.dtype == np.float16 for a in stored)


def test_default_file_name_and_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = TwoLayerNet(2, 4, 3, backend.CPU)
    model.save_params()
    assert (tmp_path / "TwoLayerNet.pkl").is_file()
    model.load_params()
    with pytest.raises(FileNotFoundError, match="nothere"):
        model.load_params("nothere.pkl")
    TwoLayerNet(2, 5, 3, backend.CPU).save_params("wider.pkl")
    before = [to_numpy(p) for p in model.params]
    with pytest.raises(ValueError, match="shape"):
        model.load_params("wider.pkl")
    for p, b in zip(model.params, before):   # nothing changed
        np.testing.assert_array_equal(to_numpy(p), b)


def test_load_refuses_code_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(pickle.UnpicklingError):
        TwoLayerNet(2, 4, 3, backend.CPU).load_params(path)
