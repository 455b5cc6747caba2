"""xpnet.trainer.Trainer: the device move, epochs, history, progress, plots,
checkpoints/resume and the guards, on every backend of the ``device`` fixture."""

import json
import os
import sys
from collections import OrderedDict

import array_api_compat
import numpy as np
import pytest

from xpnet import backend, hostmem, io, loop as loop_module, trainer as trainer_module
from xpnet.backend import DeviceError, Generator, to_device, to_numpy
from xpnet.layers import Affine, Dropout, Relu, SoftmaxWithLoss
from xpnet.optimizer import SGD, Momentum
from xpnet.nets import MultiLayerNet
from xpnet.trainer import Trainer

FEATURES, CLASSES = 20, 3


class BookNet:
    """A user's two-layer net written the book's way (no xpnet base class)."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.3, dropout=0.0, seed=0):
        self.rng = Generator(seed)
        self.params = {
            "W1": self.rng.normal((input_size, hidden_size), scale=weight_init_std),
            "b1": backend.CPU.asarray(np.zeros(hidden_size), dtype="float32"),
            "W2": self.rng.normal((hidden_size, output_size), scale=weight_init_std),
            "b2": backend.CPU.asarray(np.zeros(output_size), dtype="float32"),
        }
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(self.params["W1"], self.params["b1"])
        self.layers["Relu1"] = Relu()
        if dropout:
            self.layers["Dropout1"] = Dropout(dropout, rng=self.rng)
        self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"])
        self.lastLayer = SoftmaxWithLoss()

    def predict(self, x, train_flg=False):
        for layer in self.layers.values():
            x = layer.forward(x, train_flg) if isinstance(layer, Dropout) else layer.forward(x)
        return x

    def loss(self, x, t, train_flg=False):
        return self.lastLayer.forward(self.predict(x, train_flg), t)

    def accuracy(self, x, t):
        xp = array_api_compat.array_namespace(x)
        y = xp.argmax(self.predict(x), axis=1)
        if t.ndim != 1:
            t = xp.argmax(t, axis=1)
        return float(xp.sum(xp.astype(y == xp.astype(t, y.dtype), xp.float32))) / x.shape[0]

    def gradient(self, x, t):
        self.loss(x, t, train_flg=True)
        dout = self.lastLayer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        return {"W1": self.layers["Affine1"].dW, "b1": self.layers["Affine1"].db,
                "W2": self.layers["Affine2"].dW, "b2": self.layers["Affine2"].db}


def make_data(n_train=150, n_test=60, seed=0):
    """Three well-separated Gaussian clusters in FEATURES dimensions (host NumPy)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 2.0, size=(CLASSES, FEATURES))
    t = rng.integers(0, CLASSES, size=n_train + n_test)
    x = (centers[t] + rng.normal(size=(n_train + n_test, FEATURES))).astype(np.float32)
    return x[:n_train], t[:n_train], x[n_train:], t[n_train:]


@pytest.fixture(scope="module")
def data():
    return make_data()


def make_trainer(data, net=None, **kwargs):
    options = dict(epochs=2, mini_batch_size=32, optimizer="SGD", optimizer_param={"lr": 0.1},
                   verbose=False, seed=0, sampling="shuffle")
    options.update(kwargs)
    return Trainer(net or BookNet(FEATURES, 16, CLASSES), *data, **options)


def reachable_arrays(root):
    """Every array reachable from ``root`` through attributes, dicts, lists and tuples."""
    found, seen, stack = [], set(), [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type(None), type)):
            continue
        seen.add(id(obj))
        if array_api_compat.is_array_api_obj(obj):
            found.append(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, (backend.Device, type(os))):
            stack.extend(vars(obj).values())
    return found


def assert_all_on(root, device):
    arrays = reachable_arrays(root)
    assert arrays
    for a in arrays:
        assert array_api_compat.array_namespace(a) is device.xp, type(a)
        assert array_api_compat.device(a) == device.native, array_api_compat.device(a)


def full_loss(trainer):
    return float(trainer.network.loss(trainer.x_train, trainer.t_train))


def host_params(net):
    return {key: to_numpy(value) for key, value in net.params.items()}


# --- the device move -----------------------------------------------------------------------

def test_device_move_reaches_every_array(device, data):
    """Network, optimizer state (built on the host beforehand) and data all land on the device."""
    net = BookNet(FEATURES, 16, CLASSES)
    optimizer = Momentum(lr=0.1)
    optimizer.update(net.params, {key: value * 0.0 for key, value in net.params.items()})  # host state
    trainer = make_trainer(data, net, optimizer=optimizer, optimizer_param=trainer_module._DEFAULT_OPTIMIZER_PARAM,
                           device=device)
    before = full_loss(trainer)
    trainer.train_step()
    trainer.train_step()
    assert_all_on(net, device)
    assert_all_on(optimizer, device)
    for name in ("x_train", "t_train", "x_test", "t_test"):
        assert_all_on([getattr(trainer, name)], device)
    assert trainer.x_train.dtype == net.params["W1"].dtype
    assert net.params["W1"] is net.layers["Affine1"].W
    assert net.params["b2"] is net.layers["Affine2"].b
    assert optimizer.v["W1"].shape == net.params["W1"].shape
    assert full_loss(trainer) < before


@pytest.mark.parametrize("sampling", ["shuffle", "replacement"])
def test_steps_copy_nothing_from_the_host(device, data, sampling, monkeypatch):
    """Within an epoch, training steps (Dropout masks, sampled batches, logged losses)
    make no host-to-device copies: random numbers come from a pool on the device.
    (An epoch starts with one copy: its shuffled order.)"""
    if device.xp is backend.CPU.xp:
        pytest.skip("NumPy computes on the host: there is no device to copy to")
    net = BookNet(FEATURES, 16, CLASSES, dropout=0.3)
    trainer = make_trainer(data, net, epochs=1, mini_batch_size=10, sampling=sampling, device=device)
    trainer.train_step()
    copies = []
    original = backend.Device._from_host
    monkeypatch.setattr(backend.Device, "_from_host", lambda self, host: copies.append(host.shape) or original(self, host))
    for _ in range(10):
        trainer.train_step()
    assert copies == []
    assert_all_on(net, device)


def test_book_style_user_net_trains_on_device(device, data):
    net = BookNet(FEATURES, 16, CLASSES, dropout=0.2, seed=1)
    trainer = make_trainer(data, net, epochs=4, optimizer="momentum", device=device)
    history = trainer.train()
    assert_all_on(net, device)
    losses = history["train_loss_list"]
    assert len(losses) == 4 * 5 and all(type(v) is float for v in losses)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert history["test_acc_list"][-1] > 0.8
    assert all(type(v) is float for key in history for v in history[key])
    assert len(history["epoch_time"]) == len(history["samples_per_sec"]) == 4
    assert all(v > 0 for v in history["samples_per_sec"])


def test_device_move_leaves_dtype_attributes_alone(device, data):
    """A net that keeps its dtype (a class, which looks like an array type) still moves."""
    net = BookNet(FEATURES, 16, CLASSES)
    net.dtype = np.float32
    make_trainer(data, net, epochs=1, device=device).train()
    assert net.dtype is np.float32
    assert_all_on(net, device)


def test_network_stays_on_device_and_comes_back(device, data):
    net = BookNet(FEATURES, 16, CLASSES)
    trainer = make_trainer(data, net, device=device)
    trainer.train()
    scores = to_numpy(net.predict(trainer.x_test))
    to_device(net, "cpu")
    assert_all_on(net, backend.CPU)
    assert net.params["W1"] is net.layers["Affine1"].W
    np.testing.assert_allclose(net.predict(data[2]), scores, rtol=1e-5, atol=1e-6)


def test_library_net_trains_on_device_and_saves_params(device, data, tmp_path):
    nets = pytest.importorskip("xpnet.nets", reason="xpnet.nets is not importable here")
    net = nets.TwoLayerNet(FEATURES, 16, CLASSES, weight_init_std="he", seed=0)
    trainer = make_trainer(data, net, epochs=3, device=device)
    history = trainer.train()
    assert_all_on(net, device)
    assert net.params["W1"] is net.layers["Affine1"].W
    assert history["test_acc_list"][-1] > 0.8
    net.save_params(tmp_path / "p.npz")
    saved = io.load_arrays(tmp_path / "p.npz")
    np.testing.assert_array_equal(saved["W1"], to_numpy(net.params["W1"]))


@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("name", ["cuda", "auto"])
def test_cuda_by_name(name, data):
    net = BookNet(FEATURES, 16, CLASSES)
    trainer = make_trainer(data, net, device=name)
    before = full_loss(trainer)
    trainer.train()
    assert_all_on(net, backend.get_device("cuda"))
    assert full_loss(trainer) < before


def test_auto_device_trains_where_get_device_points(data):
    net = BookNet(FEATURES, 16, CLASSES)
    trainer = make_trainer(data, net, device="auto")
    assert trainer.device == backend.get_device("auto")
    trainer.train()
    assert_all_on(net, trainer.device)


# --- epochs, sampling, evaluation ------------------------------------------------------------

class BatchSpy:
    """Wraps ``net.gradient`` to record the host rows of every batch."""

    def __init__(self, net):
        self.batches, self._gradient = [], net.gradient
        net.gradient = self

    def __call__(self, x, t):
        self.batches.append(to_numpy(x))
        return self._gradient(x, t)


@pytest.mark.parametrize("batch_size, sizes", [(32, [32, 32, 32, 32, 22]), (150, [150]), (500, [150])])
def test_epoch_is_a_shuffled_pass_without_replacement(data, batch_size, sizes):
    net = BookNet(FEATURES, 16, CLASSES)
    spy = BatchSpy(net)
    trainer = make_trainer(data, net, epochs=2, mini_batch_size=batch_size)
    trainer.train()
    n = len(sizes)
    assert [b.shape[0] for b in spy.batches] == sizes * 2
    for epoch in (spy.batches[:n], spy.batches[n:]):
        rows = np.concatenate(epoch)
        assert sorted(map(bytes, rows)) == sorted(map(bytes, data[0]))
    if n > 1:
        assert not np.array_equal(spy.batches[0], data[0][:batch_size]), "not shuffled"
        assert not np.array_equal(spy.batches[0], spy.batches[n]), "same order in both epochs"


def test_sampling_with_replacement_as_in_the_book(data):
    net = BookNet(FEATURES, 16, CLASSES)
    spy = BatchSpy(net)
    trainer = make_trainer(data, net, epochs=1, mini_batch_size=32, sampling="replacement")
    trainer.train()
    assert [b.shape[0] for b in spy.batches] == [32] * 4  # the book: int(epochs * 150 / 32) steps
    assert len(trainer.train_loss_list) == 4 and len(trainer.train_acc_list) == 1


def test_book_arguments_train_and_evaluate_as_the_book(data):
    """The default is the book's: iter_per_epoch = train_size / batch, accuracy measured after
    each epoch's FIRST step (``current_iter % iter_per_epoch == 0``), losses after the update."""
    net = BookNet(FEATURES, 16, CLASSES)
    spy = BatchSpy(net)
    accuracy = net.accuracy
    measured = []
    net.accuracy = lambda x, t: measured.append(len(spy.batches)) or accuracy(x, t)
    trainer = Trainer(net, *data, epochs=3, mini_batch_size=30, verbose=False)
    assert trainer.sampling == "replacement" and trainer.iter_per_epoch == 5.0
    trainer.train()
    assert len(spy.batches) == 15 and measured == [1, 1, 6, 6, 11, 11]  # train and test after steps 1, 6, 11
    assert trainer.history["epoch_loss"][0] == trainer.train_loss_list[0]


def test_evaluation_is_one_accuracy_call_and_can_be_limited(data):
    """The net chunks its own evaluation: a book-style net gets the data in one call, an
    xpnet net its ``batch_size`` (``eval_batch_size``); ``evaluate_sample_num_per_epoch`` cuts."""
    net = BookNet(FEATURES, 16, CLASSES)
    calls = []
    accuracy = net.accuracy
    net.accuracy = lambda x, t: calls.append(x.shape[0]) or accuracy(x, t)
    trainer = make_trainer(data, net, epochs=1, eval_batch_size=40)
    trainer.train()
    assert calls == [150, 60]
    whole = accuracy(trainer.x_train, trainer.t_train)
    assert trainer.train_acc_list[0] == pytest.approx(whole, abs=1e-12)
    calls.clear()
    make_trainer(data, net, epochs=1, evaluate_sample_num_per_epoch=50).train()
    assert calls == [50, 50]
    library = MultiLayerNet(FEATURES, [8], CLASSES, seed=0)
    seen = []
    library_accuracy = library.accuracy
    library.accuracy = lambda x, t, batch_size=100: seen.append((x.shape[0], batch_size)) or \
        library_accuracy(x, t, batch_size=batch_size)
    make_trainer(data, library, epochs=1, eval_batch_size=40).train()
    assert seen == [(150, 40), (60, 40)]


def test_losses_reach_the_host_in_bulk(data, monkeypatch):
    """No per-step device sync: one host transfer for the losses of a 5-step epoch."""
    transfers = []
    monkeypatch.setattr(loop_module, "to_numpy", lambda a: transfers.append(a.shape) or to_numpy(a))
    trainer = make_trainer(data, epochs=1)
    trainer.train()
    assert transfers == [(5,)]


def test_one_hot_labels(data):
    x_train, t_train, x_test, t_test = data
    eye = np.eye(CLASSES, dtype=np.float32)
    trainer = make_trainer((x_train, eye[t_train], x_test, eye[t_test]), epochs=3)
    history = trainer.train()
    assert history["test_acc_list"][-1] > 0.8


# --- determinism and resume --------------------------------------------------------------------

def run(data, device, seed=0, net_seed=1, **kwargs):
    net = BookNet(FEATURES, 16, CLASSES, dropout=0.2, seed=net_seed)
    trainer = make_trainer(data, net, epochs=3, optimizer="Adam", optimizer_param={"lr": 0.01},
                           device=device, seed=seed, **kwargs)
    return trainer, trainer.train()


BOOK_LISTS = ("train_loss_list", "train_acc_list", "test_acc_list")


def test_same_seed_same_history_bit_for_bit(device, data):
    first, history_a = run(data, device)
    second, history_b = run(data, device)
    for key in BOOK_LISTS:
        assert history_a[key] == history_b[key]
    for key, value in host_params(first.network).items():
        np.testing.assert_array_equal(value, to_numpy(second.network.params[key]))
    _, history_c = run(data, device, seed=1)
    assert history_c["train_loss_list"] != history_a["train_loss_list"]


class Interrupt:
    """Raises KeyboardInterrupt (a simulated Ctrl-C) at the ``at``-th gradient call."""

    def __init__(self, net, at):
        self.calls, self.at, self._gradient = 0, at, net.gradient
        net.gradient = self

    def __call__(self, x, t):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self._gradient(x, t)


def read_meta(path):
    return json.loads(io.load_arrays(path)["meta"].tobytes().decode())


def test_resume_after_ctrl_c_equals_uninterrupted_run(device, data, tmp_path):
    path = tmp_path / "run.npz"
    reference, history = run(data, device)

    net = BookNet(FEATURES, 16, CLASSES, dropout=0.2, seed=1)
    Interrupt(net, at=13)  # epoch 3, step 3 (5 steps per epoch)
    interrupted = make_trainer(data, net, epochs=3, optimizer="Adam", optimizer_param={"lr": 0.01},
                               device=device, seed=0, checkpoint=path)
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    meta = read_meta(path)
    assert (meta["epoch"], meta["iteration"]) == (2, 10)
    assert not [p for p in os.listdir(tmp_path) if p != "run.npz"], "temporary files left behind"

    fresh = BookNet(FEATURES, 16, CLASSES, dropout=0.2, seed=99)  # other init and dropout stream
    resumed = make_trainer(data, fresh, epochs=3, optimizer="Adam", optimizer_param={"lr": 0.01},
                           device=device, seed=5, checkpoint=path, resume=path)
    assert resumed.current_epoch == 2 and resumed.optimizer.iter == 10
    assert_all_on(fresh, device)
    assert_all_on(resumed.optimizer, device)
    assert fresh.params["W1"] is fresh.layers["Affine1"].W
    history_resumed = resumed.train()
    for key in BOOK_LISTS:
        assert history_resumed[key] == history[key]
    for key, value in host_params(reference.network).items():
        np.testing.assert_array_equal(value, to_numpy(fresh.params[key]))
    assert read_meta(path)["epoch"] == 3


def test_resume_library_net_with_dropout_and_batchnorm(device, data, tmp_path):
    """Dropout's generator and BatchNorm's running statistics come back too."""
    nets = pytest.importorskip("xpnet.nets", reason="xpnet.nets is not importable here")

    def build():
        return nets.MultiLayerNetExtend(FEATURES, [16, 16], CLASSES, use_dropout=True, dropout_ratio=0.2,
                                        use_batchnorm=True, seed=3)

    options = dict(epochs=3, optimizer="Momentum", device=device, checkpoint=tmp_path / "run.npz")
    reference = make_trainer(data, build(), **options)
    history = reference.train()
    net = build()
    Interrupt(net, at=8)
    with pytest.raises(KeyboardInterrupt):
        make_trainer(data, net, **options).train()
    resumed = make_trainer(data, build(), resume=True, **options)
    assert resumed.current_epoch == 1
    history_resumed = resumed.train()
    for key in BOOK_LISTS:
        assert history_resumed[key] == history[key]
    for key, value in host_params(reference.network).items():
        np.testing.assert_array_equal(value, to_numpy(resumed.network.params[key]))
    np.testing.assert_array_equal(to_numpy(reference.network.layers["BatchNorm1"].running_mean),
                                  to_numpy(resumed.network.layers["BatchNorm1"].running_mean))


def test_resume_true_continues_from_checkpoint_when_present(data, tmp_path):
    path = tmp_path / "run.npz"
    fresh = make_trainer(data, checkpoint=path, resume=True)
    assert fresh.current_epoch == 0
    fresh.train()
    again = make_trainer(data, checkpoint=path, resume=True, epochs=3)
    assert again.current_epoch == 2
    again.train()
    assert len(again.train_acc_list) == 3


def test_ctrl_c_during_checkpoint_write_keeps_the_file_whole_then_saves_the_epoch(data, tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    trainer = make_trainer(data, epochs=3, checkpoint=path)
    replace = os.replace
    writes = []

    def interrupted_replace(src, dst):
        writes.append(dst)
        if len(writes) == 2:
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt, match=r"epoch 2 is saved in .*run\.npz.*resume="):
        trainer.train()
    assert os.listdir(tmp_path) == ["run.npz"]
    meta = read_meta(path)  # the interrupted write of epoch 2 was made again before re-raising
    assert meta["epoch"] == 2 and len(meta["history"]["train_acc_list"]) == 2
    assert io.load_arrays(path)["params/W1"].shape == (FEATURES, 16)


def test_resume_rejects_a_checkpoint_of_another_network(data, tmp_path):
    path = tmp_path / "run.npz"
    make_trainer(data, checkpoint=path).train()
    with pytest.raises(ValueError, match=r"run\.npz': params/W1 has shape \(20, 16\).*\(20, 8\)"):
        make_trainer(data, BookNet(FEATURES, 8, CLASSES), resume=path)
    with pytest.raises(ValueError, match="optimizer SGD.*Momentum"):
        make_trainer(data, optimizer="Momentum", resume=path)


# --- history, progress, plots -----------------------------------------------------------------

def test_verbose_names_the_device_and_prints_epoch_lines_without_a_bar_in_a_log(data, capsys):
    make_trainer(data, verbose=True).train()
    out, err = capsys.readouterr()
    assert out.startswith("training on cpu\nepoch 1/2  loss ") and "\nepoch 2/2  loss " in out
    assert "Final Test Accuracy" in out and "\r" not in out
    assert err == ""  # not a terminal: one line per epoch, no bar frames
    make_trainer(data, verbose=True, progress=True).train()
    err = capsys.readouterr().err
    assert "sample/s" in err and "loss=" in err and "epoch 1/2" in err


def test_quiet_when_not_verbose(data, capsys):
    make_trainer(data, verbose=False).train()
    assert capsys.readouterr() == ("", "")


def test_progress_hook_gets_history_each_epoch(data, capsys):
    seen = []
    make_trainer(data, epochs=3, progress=lambda h: seen.append(len(h["test_acc_list"]))).train()
    assert seen == [1, 2, 3]
    assert capsys.readouterr() == ("", "")


def test_plot_writes_png_headless(data, tmp_path):
    pytest.importorskip("matplotlib")
    trainer = make_trainer(data, epochs=2)
    trainer.train()
    fig = trainer.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 2


def test_plot_without_matplotlib_says_how_to_install(data, monkeypatch):
    trainer = make_trainer(data, epochs=1)
    trainer.train()
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.ticker", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match="pip install"):
        trainer.plot("never.png")


def test_optimizer_param_default_is_not_shared(data):
    trainer = make_trainer(data, optimizer="SGD", optimizer_param=trainer_module._DEFAULT_OPTIMIZER_PARAM)
    assert trainer.optimizer.lr == 0.01
    with pytest.raises(TypeError):
        trainer_module._DEFAULT_OPTIMIZER_PARAM["lr"] = 1.0


class BookSGD:
    """A user's optimizer written the book's way: update() only, no state_dict()."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for key in params:
            params[key] -= self.lr * grads[key]


def test_book_style_optimizer_instance(data):
    trainer = make_trainer(data, optimizer=BookSGD(lr=0.1), optimizer_param=trainer_module._DEFAULT_OPTIMIZER_PARAM)
    before = full_loss(trainer)
    trainer.train()
    assert full_loss(trainer) < before


def test_optimizer_instance(data):
    optimizer = SGD(lr=0.1)
    trainer = make_trainer(data, optimizer=optimizer, optimizer_param=trainer_module._DEFAULT_OPTIMIZER_PARAM)
    assert trainer.optimizer is optimizer
    with pytest.raises(ValueError, match="optimizer_param: only used with an optimizer name"):
        make_trainer(data, optimizer=SGD(lr=0.1), optimizer_param={"lr": 0.5})


# --- guards ---------------------------------------------------------------------------------------

def _replace(data, **changes):
    names = ("x_train", "t_train", "x_test", "t_test")
    return tuple(changes.get(name, value) for name, value in zip(names, data))


GUARDS = {
    "t_train shorter": (lambda d: _replace(d, t_train=d[1][:-1]), {}, ValueError,
                        r"t_train: expected 150 labels \(one per row of x_train\)"),
    "t_test longer": (lambda d: _replace(d, t_test=np.concatenate([d[3], d[3][:1]])), {}, ValueError,
                      r"t_test: expected 60 labels \(one per row of x_test\)"),
    "label too big": (lambda d: _replace(d, t_train=np.where(d[1] == 2, 3, d[1])), {}, ValueError,
                      r"t_train: expected class indices in 0\.\.2, got 3"),
    "negative label": (lambda d: _replace(d, t_test=np.where(d[3] == 0, -1, d[3])), {}, ValueError,
                       r"t_test: expected class indices in 0\.\.2"),
    "one-hot width": (lambda d: _replace(d, t_train=np.eye(4, dtype=np.float32)[d[1]]), {}, ValueError,
                      r"t_train: expected class indices \(N,\) or \(N, 1\), or one-hot \(N, 3\), got shape \(150, 4\)"),
    "fractional indices": (lambda d: _replace(d, t_train=d[1] + np.float32(0.5)), {}, ValueError,
                           r"t_train: expected class indices in 0\.\.2, got \d\.5"),
    "input features": (lambda d: _replace(d, x_train=d[0][:, :-1], x_test=d[2][:, :-1]), {}, ValueError,
                       r"x_train: samples of shape \(19,\) do not fit the network \(it expects 20 features"),
    "x_test shape": (lambda d: _replace(d, x_test=d[2][:, :-1]), {}, ValueError,
                     r"x_test: expected samples of shape \(20,\)"),
    "empty x_train": (lambda d: _replace(d, x_train=d[0][:0], t_train=d[1][:0]), {}, ValueError,
                      r"x_train: empty"),
    "empty x_test": (lambda d: _replace(d, x_test=d[2][:0], t_test=d[3][:0]), {}, ValueError,
                     r"x_test: empty"),
    "batch size 0": (lambda d: d, {"mini_batch_size": 0}, ValueError, r"mini_batch_size: expected a positive int"),
    "batch size -5": (lambda d: d, {"mini_batch_size": -5}, ValueError, r"mini_batch_size"),
    "epochs 0": (lambda d: d, {"epochs": 0}, ValueError, r"epochs: expected a positive int"),
    "eval samples 0": (lambda d: d, {"evaluate_sample_num_per_epoch": 0}, ValueError,
                       r"evaluate_sample_num_per_epoch"),
    "sampling": (lambda d: d, {"sampling": "random"}, ValueError, r"sampling"),
    "unknown optimizer": (lambda d: d, {"optimizer": "adamw"}, ValueError,
                          r"optimizer: unknown name 'adamw'; expected one of sgd"),
    "bad optimizer": (lambda d: d, {"optimizer": 3, "optimizer_param": trainer_module._DEFAULT_OPTIMIZER_PARAM},
                      TypeError, r"optimizer: expected a name or an object with update"),
    "cuda:99": (lambda d: d, {"device": "cuda:99"}, DeviceError, r"cuda:99|CuPy"),
    "tpu": (lambda d: d, {"device": "tpu"}, ValueError, r"device: expected 'cpu', 'cuda'"),
    "checkpoint needs state_dict": (lambda d: d, {"optimizer": BookSGD(), "checkpoint": "never.npz",
                                                  "optimizer_param": trainer_module._DEFAULT_OPTIMIZER_PARAM},
                                    TypeError, r"the optimizer BookSGD has no state_dict"),
    "resume=True without checkpoint": (lambda d: d, {"resume": True}, ValueError, r"checkpoint is None"),
    "missing resume file": (lambda d: d, {"resume": "no-such-run.npz"}, FileNotFoundError, r"no-such-run"),
}


@pytest.mark.parametrize("case", list(GUARDS))
def test_guards_raise_before_any_training(data, case):
    transform, kwargs, error, message = GUARDS[case]
    net = BookNet(FEATURES, 16, CLASSES)
    before = host_params(net)
    spy = BatchSpy(net)
    with pytest.raises(error, match=message):
        make_trainer(transform(data), net, **kwargs)
    assert spy.batches == []
    for key, value in before.items():
        np.testing.assert_array_equal(to_numpy(net.params[key]), value)


def test_guard_network_without_book_interface(data):
    with pytest.raises(TypeError, match="missing method"):
        Trainer(object(), *data)


def test_nan_loss_stops_with_epoch_iteration_and_lr_hint(data, tmp_path):
    path = tmp_path / "run.npz"
    net = BookNet(FEATURES, 16, CLASSES)
    loss = net.loss
    calls = []

    def poisoned(x, t, train_flg=False):  # the Trainer's loss calls are the ones in inference mode
        value = loss(x, t, train_flg)
        if not train_flg:
            calls.append(1)
        return value * float("nan") if len(calls) == 8 and not train_flg else value

    net.loss = poisoned
    trainer = make_trainer(data, net, epochs=3, checkpoint=path)
    with pytest.raises(FloatingPointError,
                       match=r"became nan at epoch 2, iteration 8 \(step 3 of 5.*lower it.*'lr': 0\.01.*"
                             r"checkpoint.*epoch 1.*intact"):
        trainer.train()
    assert len(trainer.train_loss_list) == 7
    assert read_meta(path)["epoch"] == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_diverging_learning_rate_stops_training(data):
    net = BookNet(FEATURES, 16, CLASSES)
    with pytest.raises(FloatingPointError, match=r"train loss became (nan|inf) at epoch 1, iteration \d+"):
        make_trainer(data, net, epochs=2, optimizer_param={"lr": 1e38}).train()


def test_nan_after_resume_names_the_checkpoint_resumed_from(data, tmp_path):
    path = tmp_path / "run.npz"
    make_trainer(data, epochs=1, checkpoint=path).train()
    net = BookNet(FEATURES, 16, CLASSES)
    loss = net.loss
    net.loss = lambda x, t, train_flg=False: loss(x, t, train_flg) * (1.0 if train_flg else float("inf"))
    trainer = make_trainer(data, net, epochs=2, resume=path)
    with pytest.raises(FloatingPointError, match=r"became inf at epoch 2, iteration 6 \(step 1 of 5.*"
                                                 r"run\.npz' \(epoch 1\), is intact"):
        trainer.train()


# --- evaluation from any namespace, the shared epoch line, plots, progress -------------------------

def test_evaluate_takes_host_arrays_after_training_on_device(device, data):
    x_train, t_train, x_test, t_test = data
    trainer = make_trainer(data, MultiLayerNet(FEATURES, [16], CLASSES, seed=0), device=device, eval_batch_size=7)
    trainer.train()
    accuracy = trainer.evaluate(x_test, t_test)  # NumPy on the host, net on `device`
    assert type(accuracy) is float and accuracy == pytest.approx(trainer.test_acc_list[-1], abs=1e-12)
    with pytest.raises(ValueError, match=r"t: expected class indices in 0\.\.2"):
        trainer.evaluate(x_test, t_test + 3)
    with pytest.raises(ValueError, match=r"x: row 2 holds NaN"):
        trainer.evaluate(np.where(np.arange(60)[:, None] == 2, np.nan, x_test), t_test)


def test_one_epoch_line_for_trainer_cli_and_examples():
    history = {"train_loss_list": [1.0, 0.5], "train_acc_list": [0.9], "test_acc_list": [0.875],
               "epoch_loss": [0.75], "epoch_time": [2.04], "samples_per_sec": [1234.4]}
    assert trainer_module.format_epoch_line(history, 5) == \
        "epoch 1/5  loss 0.7500  train acc 0.9000  test acc 0.8750  1234 samples/s  2.0 s"
    assert trainer_module.format_epoch_line(history, 5, measured=1000).endswith(
        "2.0 s  (accuracy on the first 1,000 images)")
    history["test_acc_list"] = []
    assert "test acc" not in trainer_module.format_epoch_line(history, 5)


def test_plot_has_integer_epoch_ticks_and_honest_legends(data, tmp_path):
    pytest.importorskip("matplotlib")
    trainer = make_trainer(data, epochs=1, evaluate_sample_num_per_epoch=50)
    trainer.train()
    fig = trainer.plot(tmp_path / "curves.png")
    ax = fig.axes[1]
    assert list(ax.get_xticks()) == [1.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["train (first 50 of 150 images)", "test (first 50 of 60 images)"]


def test_bar_shows_the_loss_from_the_first_step_and_flushes_by_time(data, monkeypatch):
    from xpnet.extensions import ProgressBar

    flushes = []
    flush = loop_module.Loop.flush
    monkeypatch.setattr(loop_module.Loop, "flush", lambda self: flushes.append(self.iteration) or flush(self))
    monkeypatch.setattr(ProgressBar, "FLUSH_SECONDS", 0.0)
    make_trainer(data, epochs=1, progress=True).train()
    assert [i for i in flushes if i] == [1, 2, 3, 4, 5, 5, 5]  # every step once the time is up; epoch end; run end
    flushes.clear()
    make_trainer(data, epochs=1, progress=False).train()
    assert flushes == [5, 5]  # no bar: bulk only (the epoch end, then the run's end finds nothing)


def test_trainer_leaves_malloc_alone(data, monkeypatch):
    monkeypatch.setattr(hostmem, "keep_freed_host_memory", lambda: pytest.fail("the Trainer tuned malloc"))
    make_trainer(data, epochs=1).train()


def test_book_style_batchnorm_net_resumes_its_running_statistics(data, tmp_path):
    """The name walk finds a user net's BatchNorm statistics, even before they exist (None)."""
    from xpnet.layers import BatchNormalization

    def build():
        net = BookNet(FEATURES, 16, CLASSES)
        net.params["gamma1"] = backend.CPU.asarray(np.ones(16), dtype="float32")
        net.params["beta1"] = backend.CPU.asarray(np.zeros(16), dtype="float32")
        norm = BatchNormalization(net.params["gamma1"], net.params["beta1"])
        net.layers = OrderedDict([("Affine1", net.layers["Affine1"]), ("BatchNorm1", norm),
                                  ("Relu1", net.layers["Relu1"]), ("Affine2", net.layers["Affine2"])])
        gradient = net.gradient
        net.gradient = lambda x, t: {**gradient(x, t), "gamma1": norm.dgamma, "beta1": norm.dbeta}
        net.predict = lambda x, train_flg=False: _forward(net, x, train_flg)
        return net, norm

    def _forward(net, x, train_flg):
        for layer in net.layers.values():
            x = layer.forward(x, train_flg) if isinstance(layer, BatchNormalization) else layer.forward(x)
        return x

    path = tmp_path / "run.npz"
    net, norm = build()
    make_trainer(data, net, epochs=1, mini_batch_size=30, checkpoint=path).train()
    fresh, fresh_norm = build()
    assert fresh_norm.running_mean is None
    make_trainer(data, fresh, epochs=1, mini_batch_size=30, resume=path)
    np.testing.assert_array_equal(to_numpy(fresh_norm.running_mean), to_numpy(norm.running_mean))
