"""A run's outputs (one notion, compared by real path, folders made before the first step), a
mid-epoch save that resumes, the CLI's previous-run guard over every output, its log format,
and the Trainer's manners: the device line, repr, a second train(), the 'lr' hint, book draws."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xpnet import __main__ as cli, progress
from xpnet.backend import Generator, to_numpy
from xpnet.datasets import mnist
from xpnet.nets import MultiLayerNet
from xpnet.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
FEATURES, CLASSES = 20, 3
SPIRAL = ["train", "--model", "two_layer_net", "--dataset", "spiral", "--device", "cpu", "--epochs", "2"]


def make_data(n=150):
    rng = np.random.default_rng(0)
    centers = rng.normal(0.0, 2.0, size=(CLASSES, FEATURES))
    t = rng.integers(0, CLASSES, size=n + 60)
    x = (centers[t] + rng.normal(size=(n + 60, FEATURES))).astype(np.float32)
    return x[:n], t[:n], x[n:], t[n:]


DATA = make_data()


def trainer(**kwargs):
    options = dict(epochs=2, mini_batch_size=32, optimizer_param={"lr": 0.1}, verbose=False, seed=0,
                   sampling="shuffle")
    options.update(kwargs)
    return Trainer(MultiLayerNet(FEATURES, [16], CLASSES, seed=0), *DATA, **options)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ("http://127.0.0.1:9/",))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("best", ["./a.npz", "x/../a.npz", "link.npz"])
def test_outputs_that_are_one_file_are_refused_before_any_step(tmp_path, monkeypatch, best):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "link.npz").symlink_to(tmp_path / "a.npz")
    with pytest.raises(ValueError, match=r"best_checkpoint: .* is the same file as checkpoint"):
        trainer(checkpoint="a.npz", best_checkpoint=best)
    assert not (tmp_path / "a.npz").exists()


def test_folders_are_made_in_the_constructor_and_a_mid_epoch_save_resumes(tmp_path):
    path = tmp_path / "runs" / "a" / "ck.npz"
    reference = trainer(epochs=3)
    reference.train()
    run = trainer(epochs=3, checkpoint=path)
    assert path.parent.is_dir()
    for _ in range(7):  # epoch 2, step 2
        run.train_step()
    run.save_checkpoint(tmp_path / "mid.npz")
    resumed = trainer(epochs=3, resume=tmp_path / "mid.npz")
    assert (resumed.current_epoch, resumed.current_iter) == (1, 7)
    resumed.train()
    assert resumed.history["train_loss_list"] == reference.history["train_loss_list"]
    for key, value in reference.network.params.items():
        np.testing.assert_array_equal(to_numpy(value), to_numpy(resumed.network.params[key]))


def test_manners_repr_device_line_second_train_and_the_lr_hint(capsys):
    run = trainer(verbose=True, epochs=1)
    assert repr(run) == "Trainer(MultiLayerNet, 150 training samples, epoch 0/1, batch 32, SGD, device='cpu')"
    run.train()
    assert capsys.readouterr().out.startswith("training on cpu\n")
    with pytest.warns(UserWarning, match="nothing left to train, all 1 epochs are done"):
        assert run.train()["train_acc_list"] == run.train_acc_list
    with pytest.raises(TypeError, match=r"the learning rate is called 'lr'.*optimizer_param=\{'lr': 0\.1\}"):
        trainer(optimizer_param={"learning_rate": 0.1})
    with pytest.raises(ValueError, match="validation_split: 0.001 of 150 training samples holds out 0"):
        trainer(validation_split=0.001)


def book_mode():
    state = np.random.get_state()
    Generator(None)
    return np.array_equal(np.random.get_state()[1], state[1])


@pytest.mark.skipif(not book_mode(), reason="needs backend.Generator(None) to draw the book's calls")
def test_book_arguments_draw_like_the_book():
    np.random.seed(3)
    expected = [np.random.choice(150, 30) for _ in range(10)]
    np.random.seed(3)
    net = MultiLayerNet(FEATURES, [16], CLASSES, seed=0)
    seen = []
    gradient = net.gradient
    net.gradient = lambda x, t: seen.append(to_numpy(t).copy()) or gradient(x, t)
    Trainer(net, *DATA, epochs=2, mini_batch_size=30, verbose=False).train()
    assert [list(t) for t in seen] == [list(DATA[1][idx]) for idx in expected]


def test_progress_suits_where_it_runs(monkeypatch):
    assert progress.where() == "log" and progress.bar(10, "x") is None  # pytest captures: not a terminal
    forced = progress.bar(10, "x", force=True)
    assert type(forced).__module__ == "tqdm.std"
    forced.close()
    kernel = type("Shell", (), {"kernel": object()})()
    monkeypatch.setitem(sys.modules, "IPython", type(sys)("IPython"))
    sys.modules["IPython"].get_ipython = lambda: kernel
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    assert progress.where() == "notebook"


CLI_COLLISIONS = {
    "curves.png": ["--checkpoint", "run/curves.png", "--out", "run"],
    "absolute params": ["--checkpoint", "{cwd}/run/params.npz", "--out", "run"],
    "dotted best": ["--checkpoint", "run/../run/best.npz", "--out", "run"],
}


@pytest.mark.parametrize("case", list(CLI_COLLISIONS))
def test_cli_refuses_colliding_outputs_and_an_empty_out(offline, tmp_path, capsys, case):
    argv = [arg.format(cwd=tmp_path) for arg in CLI_COLLISIONS[case]]
    assert cli.main([*SPIRAL, *argv]) == 2
    assert "--checkpoint: " in capsys.readouterr().err and not (tmp_path / "run").exists()
    assert cli.main([*SPIRAL, "--out", ""]) == 2
    assert "--out: empty" in capsys.readouterr().err


def test_cli_previous_run_guard_covers_every_output(offline, tmp_path, capsys):
    assert cli.main([*SPIRAL, "--out", "r"]) == 0
    capsys.readouterr()
    for name in ("checkpoint.npz", "params.npz", "best.npz"):
        before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
        (tmp_path / "r" / "checkpoint.npz").unlink(missing_ok=True)
        assert cli.main([*SPIRAL, "--out", "r"]) == 2, name
        assert "holds a previous run" in capsys.readouterr().err
        assert all((tmp_path / "r" / p).read_bytes() == b for p, b in before.items() if p != "checkpoint.npz")
        (tmp_path / "r" / name).unlink(missing_ok=True)


def test_cli_log_is_one_line_per_epoch(tmp_path):
    log = tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XPNET_DATA": str(tmp_path / "data")}
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, "-m", "xpnet", *SPIRAL, "--epochs", "3", "--out", "o"], stdout=out,
                              stderr=subprocess.STDOUT, env=env, cwd=tmp_path, timeout=120).returncode
    text = log.read_text()
    assert code == 0 and "\r" not in text, text
    assert [line.split()[1] for line in text.splitlines() if line.startswith("epoch ")] == ["1/3", "2/3", "3/3"]


def test_cli_ctrl_c_in_epoch_1_does_not_advise_resume(offline, capsys, monkeypatch):
    def interrupted(self, x, t):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_update", interrupted)
    assert cli.main([*SPIRAL, "--out", "r"]) == 130
    err = capsys.readouterr().err
    assert "no epoch had finished, nothing saved" in err and "--resume" not in err
