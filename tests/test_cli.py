"""The command line: ``python -m xpnet train ...`` (the README's main command)."""

import re
import subprocess
import sys

import numpy as np
import pytest

from xpnet import __main__ as cli
from xpnet.datasets import mnist

EPOCH_LINE = re.compile(
    r"^epoch (\d+)/(\d+)  loss (\d+\.\d+)  train acc (\d\.\d+)  test acc (\d\.\d+)  (\d+) samples/s  \d+\.\d s"
    r"(?:  \(accuracy on the first [\d,]+ images\))?$", re.M)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No MNIST files and a mirror that refuses connections: what a machine without network sees."""
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ("http://127.0.0.1:9/",))


def test_spiral_two_layer_net_prints_epoch_lines_and_saves(offline, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "two_layer_net", "--dataset", "spiral", "--device", "cpu",
                     "--epochs", "3", "--batch-size", "30", "--optimizer", "sgd", "--lr", "1.0",
                     "--out", str(out)]) == 0
    lines = EPOCH_LINE.findall(capsys.readouterr().out)
    assert [(int(e), int(n)) for e, n, *_ in lines] == [(1, 3), (2, 3), (3, 3)]
    losses = [float(line[2]) for line in lines]
    assert losses[-1] < losses[0]
    assert (out / "params.npz").stat().st_size > 0 and (out / "curves.png").stat().st_size > 0
    assert set(np.load(out / "params.npz").files) >= {"W1", "b1", "W2", "b2"}


@pytest.mark.slow
def test_default_dataset_falls_back_to_the_bundled_sample_offline(offline, tmp_path, capsys):
    assert cli.main(["train", "--model", "simple_convnet", "--device", "cpu", "--epochs", "1",
                     "--limit", "1000", "--evaluate-samples", "500", "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    assert "training on the bundled sample instead" in captured.err
    (epoch, total, loss, train_acc, test_acc, speed), = EPOCH_LINE.findall(captured.out)
    assert (epoch, total) == ("1", "1") and float(test_acc) > 0.3 and int(speed) > 0  # chance is 0.1; 10 Adam steps


def test_explicit_mnist_offline_suggests_the_sample(offline, tmp_path, capsys):
    assert cli.main(["train", "--dataset", "mnist", "--device", "cpu", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "MNIST is not available" in err and "--dataset mnist-sample" in err


@pytest.mark.parametrize("argv, message", [
    (["--device", "tpu"], "device: expected"),
    (["--dataset", "spiral", "--model", "simple_convnet"], "fully connected --model"),
])
def test_bad_arguments_give_one_clear_error(offline, tmp_path, capsys, argv, message):
    assert cli.main(["train", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "xpnet", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("xpnet ")
