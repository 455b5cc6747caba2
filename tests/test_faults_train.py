"""Fault injection for training: Ctrl-C and SIGKILL mid-run, divergence, damaged checkpoints,
and every argument guard of the Trainer and the command line.  Each test is bounded in time
(subprocesses get a timeout); ``FAULTS`` counts the distinct bad inputs and faults tried."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from xpnet import __main__ as cli, backend
from xpnet.backend import to_numpy
from xpnet.checkpoint import CheckpointError
from xpnet.datasets import mnist
from xpnet.nets import MultiLayerNet, MultiLayerNetExtend
from xpnet.trainer import DivergenceWarning, Trainer

ROOT = Path(__file__).resolve().parent.parent
FEATURES, CLASSES = 20, 3
SPIRAL = ["train", "--model", "two_layer_net", "--dataset", "spiral", "--device", "cpu", "--batch-size", "1",
          "--optimizer", "sgd", "--lr", "0.1"]


def make_data(n_train=150, n_test=60, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 2.0, size=(CLASSES, FEATURES))
    t = rng.integers(0, CLASSES, size=n_train + n_test)
    x = (centers[t] + rng.normal(size=(n_train + n_test, FEATURES))).astype(np.float32)
    return x[:n_train], t[:n_train], x[n_train:], t[n_train:]


DATA = make_data()


def net(seed=0, batchnorm=False):
    if batchnorm:
        return MultiLayerNetExtend(FEATURES, [16], CLASSES, use_batchnorm=True, seed=seed)
    return MultiLayerNet(FEATURES, [16], CLASSES, seed=seed)


def trainer(network=None, data=DATA, **kwargs):
    options = dict(epochs=2, mini_batch_size=32, optimizer="SGD", optimizer_param={"lr": 0.1}, verbose=False, seed=0, sampling="shuffle")
    options.update(kwargs)
    return Trainer(network or net(), *data, **options)


def params_of(network):
    return {key: to_numpy(value).copy() for key, value in network.params.items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "XPNET_DATA": "/nonexistent-xpnet"}


def wait_for(proc, text, timeout=60.0):
    """Read ``proc``'s stdout until a line contains ``text``; return the lines read."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    proc.kill()
    raise AssertionError(f"never saw {text!r}: {''.join(lines)}")


# --- Ctrl-C -----------------------------------------------------------------------------------

def test_sigint_in_the_cli_saves_the_last_epoch_and_resume_equals_an_uninterrupted_run(tmp_path):
    argv = [sys.executable, "-m", "xpnet", *SPIRAL, "--epochs", "12"]
    proc = subprocess.Popen([*argv, "--out", str(tmp_path / "cut")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env(), cwd=tmp_path)
    wait_for(proc, "epoch 2/12")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted during epoch" in err and "--resume" in err and "Traceback" not in err
    resumed = subprocess.run([*argv, "--out", str(tmp_path / "cut"), "--resume"], capture_output=True, text=True,
                             env=env(), cwd=tmp_path, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run([*argv, "--out", str(tmp_path / "whole")], capture_output=True, text=True, env=env(),
                           cwd=tmp_path, timeout=120)
    assert whole.returncode == 0, whole.stderr
    with np.load(tmp_path / "cut" / "params.npz") as cut, np.load(tmp_path / "whole" / "params.npz") as ref:
        assert_same(dict(cut), dict(ref))


TRAINER_SCRIPT = """
import sys, numpy as np
from xpnet.nets import MultiLayerNet
from xpnet.trainer import Trainer
rng = np.random.default_rng(0)
x = rng.normal(size=(3000, 20)).astype(np.float32); t = rng.integers(0, 3, 3000)
trainer = Trainer(MultiLayerNet(20, [64], 3, seed=0), x, t, x[:100], t[:100], epochs=500, mini_batch_size=1,
                  verbose=False, checkpoint=sys.argv[1], progress=lambda h: print("epoch", len(h["train_acc_list"])))
try:
    trainer.train()
except KeyboardInterrupt as exc:
    print("KI:", exc)
"""


def test_sigint_in_trainer_train_reraises_with_how_to_resume(tmp_path):
    path = tmp_path / "run.npz"
    proc = subprocess.Popen([sys.executable, "-c", TRAINER_SCRIPT, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env())
    wait_for(proc, "epoch 1")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "KI: interrupted during epoch" in out and f"resume={str(path)!r}" in out, out + err
    resumed = Trainer(MultiLayerNet(20, [64], 3, seed=0), *data_20(), epochs=500, mini_batch_size=1, verbose=False,
                      checkpoint=path, resume=True)
    assert resumed.current_epoch >= 1


def data_20():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 20)).astype(np.float32)
    t = rng.integers(0, 3, 3000)
    return x, t, x[:100], t[:100]


# --- SIGKILL during a checkpoint write ----------------------------------------------------------

KILL_SCRIPT = """
import os, sys, time
calls = [0]
fsync = os.fsync
def slow_fsync(fd):
    if ".checkpoint.npz." in os.readlink(f"/proc/self/fd/{fd}"):  # the temporary file of a checkpoint write
        calls[0] += 1
        if calls[0] == 2:  # the second epoch's: the first one is whole
            print("WRITING", flush=True)
            time.sleep(60)
    fsync(fd)
os.fsync = slow_fsync
from xpnet.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to find the file being written")
def test_sigkill_during_a_checkpoint_write_leaves_a_resumable_checkpoint(tmp_path):
    argv = [*SPIRAL, "--epochs", "4", "--out", str(tmp_path / "run")]
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(), cwd=tmp_path)
    wait_for(proc, "WRITING")
    proc.kill()
    proc.communicate(timeout=30)
    resumed = subprocess.run([sys.executable, "-m", "xpnet", *argv, "--resume"], capture_output=True, text=True,
                             env=env(), cwd=tmp_path, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 2/4" in resumed.stdout and "epoch 1/4" not in resumed.stdout  # epoch 1 was saved whole
    whole = subprocess.run([sys.executable, "-m", "xpnet", *SPIRAL, "--epochs", "4", "--out", str(tmp_path / "w")],
                           capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=120)
    with np.load(tmp_path / "run" / "params.npz") as cut, np.load(tmp_path / "w" / "params.npz") as ref:
        assert_same(dict(cut), dict(ref))


# --- divergence -----------------------------------------------------------------------------------

def test_divergence_warns_naming_lr_and_keeps_the_best_state(tmp_path):
    best_path, last_path = tmp_path / "best.npz", tmp_path / "last.npz"
    snapshots = []
    run = trainer(epochs=6, optimizer_param={"lr": 10.0}, checkpoint=last_path, best_checkpoint=best_path,
                  validation_split=0.2, progress=lambda h: snapshots.append(best_path.read_bytes()))
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            run.train()
        except FloatingPointError:
            pass
    diverged = [w.message for w in caught if isinstance(w.message, DivergenceWarning)]
    assert diverged and all("lr=10" in str(w) for w in diverged)
    best = run.best
    assert best["metric"] == "val_acc" and best["value"] == max(run.val_acc_list)
    assert run.test_acc_list == []  # the test set is not looked at while choosing
    assert snapshots[-1] == snapshots[best["epoch"] - 1]  # never replaced by a worse epoch
    fresh = net(seed=9)
    fresh.load_params(best_path)  # best.npz is a parameter file
    run.restore_best()
    assert_same(params_of(fresh), params_of(run.network))
    assert run.evaluate(DATA[0][120:], DATA[1][120:]) == pytest.approx(best["value"])


def test_cli_divergence_warns_with_the_flag_and_keeps_best_npz(tmp_path, capsys):
    code = cli.main(["train", "--model", "two_layer_net", "--dataset", "mnist-sample", "--device", "cpu",
                     "--epochs", "3", "--limit", "500", "--optimizer", "sgd", "--lr", "10",
                     "--validation-split", "0.2", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    assert "--lr 10 is probably too high" in err and "Traceback" not in err
    assert set(np.load(tmp_path / "best.npz").files) == {"W1", "b1", "W2", "b2"}


# --- damaged checkpoints: the net is untouched ------------------------------------------------------

def adam_checkpoint(tmp_path, batchnorm=False):
    path = tmp_path / "good.npz"
    trainer(net(batchnorm=batchnorm), epochs=1, optimizer="Adam", optimizer_param={"lr": 0.01},
            checkpoint=path).train()
    with np.load(path) as archive:
        return dict(archive)


def with_meta(arrays, change):
    meta = json.loads(arrays["meta"].tobytes())
    change(meta)
    return {**arrays, "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}


def drop(arrays, prefix):
    return {key: value for key, value in arrays.items() if not key.startswith(prefix)}


DAMAGE = {
    "missing rng": lambda a: with_meta(a, lambda m: m.pop("rng")),
    "bad rng state": lambda a: with_meta(a, lambda m: m.update(rng={"host": {"bit_generator": "MT"}, "pool": None,
                                                                      "pool_used": 0})),
    "missing history key": lambda a: with_meta(a, lambda m: m["history"].pop("epoch_loss")),
    "history too short": lambda a: with_meta(a, lambda m: m["history"]["train_acc_list"].clear()),
    "epoch not an int": lambda a: with_meta(a, lambda m: m.update(epoch="1")),
    "other format": lambda a: with_meta(a, lambda m: m.update(format=2)),
    "meta not json": lambda a: {**a, "meta": np.frombuffer(b"{not json", dtype=np.uint8)},
    "no meta": lambda a: drop(a, "meta"),
    "wrong-shape optimizer state": lambda a: {**a, "optimizer/m/W1": np.zeros((3, 3), np.float32)},
    "missing Adam moments": lambda a: drop(a, "optimizer/m/"),
    "one Adam moment missing": lambda a: drop(a, "optimizer/v/b2"),
    "unknown optimizer state": lambda a: {**a, "optimizer/z/W1": a["optimizer/m/W1"]},
    "optimizer iter not an int": lambda a: with_meta(a, lambda m: m["optimizer"]["scalars"].update(iter=1.5)),
    "wrong-dtype param": lambda a: {**a, "params/W1": a["params/W1"].astype(np.float64)},
    "missing param": lambda a: drop(a, "params/b1"),
    "wrong-shape best state": lambda a: {**a, "best/params/W1": np.zeros((2, 2), np.float32)},
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_resume_leaves_the_net_untouched(tmp_path, case):
    path = tmp_path / "bad.npz"
    np.savez(path, **DAMAGE[case](adam_checkpoint(tmp_path)))
    fresh = net(seed=5)
    before = params_of(fresh)
    with pytest.raises(CheckpointError, match=str(path).replace(".", r"\.")):
        trainer(fresh, optimizer="Adam", optimizer_param={"lr": 0.01}, resume=path)
    assert_same(params_of(fresh), before)


@pytest.mark.parametrize("case", ["missing buffer", "wrong-shape buffer"])
def test_damaged_buffers_are_refused(tmp_path, case):
    arrays = adam_checkpoint(tmp_path, batchnorm=True)
    var, = (key for key in arrays if key.startswith("buffers/") and key.endswith("running_var"))
    arrays = drop(arrays, var) if case == "missing buffer" else {**arrays, var: np.zeros(3, np.float32)}
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    fresh = net(seed=5, batchnorm=True)
    before = params_of(fresh)
    with pytest.raises(CheckpointError, match="running_"):
        trainer(fresh, optimizer="Adam", optimizer_param={"lr": 0.01}, resume=path)
    assert_same(params_of(fresh), before)


@pytest.mark.parametrize("cut", [10, 200, -20])
def test_damaged_zip_names_the_file(tmp_path, cut):
    adam_checkpoint(tmp_path)
    data = (tmp_path / "good.npz").read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[:cut])
    fresh = net(seed=5)
    before = params_of(fresh)
    with pytest.raises(CheckpointError, match=r"cut\.npz"):
        trainer(fresh, optimizer="Adam", optimizer_param={"lr": 0.01}, resume=path)
    assert_same(params_of(fresh), before)


# --- Trainer argument guards ---------------------------------------------------------------------

def nan_at(array, row):
    array = array.copy()
    array[row, 3] = np.nan
    return array


TRAINER_GUARDS = {
    "resume=1": ({"resume": 1}, TypeError, r"resume: expected a checkpoint path .* or a bool, got int 1"),
    "resume=1.0": ({"resume": 1.0}, TypeError, r"resume: .*got float"),
    "resume=[]": ({"resume": []}, TypeError, r"resume: "),
    "checkpoint under a file": ({"checkpoint": __file__ + "/run.npz"}, ValueError, r"checkpoint: cannot write"),
    "checkpoint is a directory": ({"checkpoint": "."}, ValueError, r"checkpoint: .* is a directory"),
    "best under a file": ({"best_checkpoint": __file__ + "/b.npz"}, ValueError, r"best_checkpoint: cannot write"),
    "best == checkpoint": ({"checkpoint": "same.npz", "best_checkpoint": "same.npz"}, ValueError,
                           r"best_checkpoint: 'same.npz' is the same file as checkpoint"),
    "best is ./checkpoint": ({"checkpoint": "a.npz", "best_checkpoint": "./x/../a.npz"}, ValueError,
                             r"best_checkpoint: .* is the same file as checkpoint"),
    "optimizer_param a list": ({"optimizer_param": [0.1]}, TypeError, r"optimizer_param: expected a dict"),
    "sampling name": ({"sampling": "bootstrap"}, ValueError, r"sampling: expected one of"),
    "eval_batch_size 0": ({"eval_batch_size": 0}, ValueError, r"eval_batch_size: expected a positive int"),
    "epochs True": ({"epochs": True}, ValueError, r"epochs: expected a positive int"),
    "NaN in x_train": ({"data": (nan_at(DATA[0], 7), *DATA[1:])}, ValueError, r"x_train: row 7 holds NaN or inf"),
    "inf in x_test": ({"data": (DATA[0], DATA[1], np.where(np.arange(60)[:, None] == 41, np.inf, DATA[2]), DATA[3])},
                      ValueError, r"x_test: row 41 holds NaN or inf"),
    "overflow to inf in float16": ({"network": MultiLayerNet(FEATURES, [16], CLASSES, dtype="float16", seed=0),
                                    "data": (DATA[0] * 1e5, *DATA[1:])}, ValueError, r"x_train: row 0 holds NaN or inf"),
    "label too big": ({"data": (DATA[0], np.where(DATA[1] == 2, 5, DATA[1]), *DATA[2:])}, ValueError,
                      r"t_train: expected class indices in 0\.\.2"),
    "negative label": ({"data": (*DATA[:3], np.where(DATA[3] == 0, -1, DATA[3]))}, ValueError,
                       r"t_test: expected class indices in 0\.\.2"),
    "fractional labels": ({"data": (DATA[0], DATA[1] + 0.5, *DATA[2:])}, ValueError,
                          r"t_train: expected class indices in 0\.\.2, got \d\.5"),
    "x_test without t_test": ({"data": (DATA[0], DATA[1], DATA[2], None)}, ValueError, r"give both or neither"),
    "BatchNorm one-sample last batch": ({"network": net(batchnorm=True), "data": (DATA[0][:129], DATA[1][:129],
                                                                                   *DATA[2:])},
                                        ValueError, r"mini_batch_size: 129 training samples in batches of 32"),
    "BatchNorm batches of one": ({"network": net(batchnorm=True), "mini_batch_size": 1, "sampling": "replacement"},
                                 ValueError, r"batch of one sample, which BatchNorm cannot normalise"),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case", list(TRAINER_GUARDS))
def test_trainer_guards(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    kwargs, error, message = TRAINER_GUARDS[case]
    kwargs = dict(kwargs)
    network = kwargs.pop("network", None) or net()
    before = params_of(network)
    with pytest.raises(error, match=message):
        trainer(network, kwargs.pop("data", DATA), **kwargs)
    assert_same(params_of(network), before)
    assert os.listdir(tmp_path) == []  # nothing written


def test_batchnorm_without_a_one_sample_batch_trains():
    run = trainer(net(batchnorm=True), data=(DATA[0][:130], DATA[1][:130], *DATA[2:]), epochs=1)
    run.train()
    assert run.train_acc_list


def test_no_test_data_keeps_the_best_by_train_loss():
    run = trainer(data=(DATA[0], DATA[1], None, None), epochs=3)
    history = run.train()
    assert history["test_acc_list"] == [] and run.best["metric"] == "train_loss"
    assert run.best["value"] == min(history["epoch_loss"])


# --- command-line guards: one line, no traceback ---------------------------------------------------

@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("XPNET_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ("http://127.0.0.1:9/",))
    monkeypatch.chdir(tmp_path)


CLI_GUARDS = {
    "--limit 0": (["--limit", "0"], "argument --limit: expected an integer >= 1"),
    "--limit -3": (["--limit", "-3"], "argument --limit: expected an integer >= 1"),
    "--epochs 0": (["--epochs", "0"], "argument --epochs: expected an integer >= 1"),
    "--batch-size x": (["--batch-size", "x"], "argument --batch-size: expected an integer"),
    "--seed -1": (["--seed", "-1"], "argument --seed: expected an integer >= 0"),
    "--lr 0": (["--lr", "0"], "argument --lr: expected a positive finite number"),
    "--lr nan": (["--lr", "nan"], "argument --lr: expected a positive finite number"),
    "--evaluate-samples 0": (["--evaluate-samples", "0"], "argument --evaluate-samples"),
    "--dtype int32": (["--dtype", "int32"], "argument --dtype: invalid choice"),
    "--optimizer adamw": (["--optimizer", "adamw"], "argument --optimizer: invalid choice"),
    "--out under a file": (["--out", "afile/run"], "--out (params.npz): cannot write"),
    "--checkpoint under a file": (["--checkpoint", "afile/c.npz"], "--checkpoint: cannot write"),
    "--checkpoint is best.npz": (["--checkpoint", "o/best.npz", "--out", "o"], "--checkpoint: "),
    "--resume without a file": (["--resume", "nothing.npz"], "--resume: no checkpoint file"),
    "--device tpu": (["--device", "tpu"], "device: expected"),
}


@pytest.mark.parametrize("case", list(CLI_GUARDS))
def test_cli_guards_fail_before_training_with_one_line(offline, tmp_path, capsys, case):
    (tmp_path / "afile").write_text("a user's file")
    argv, message = CLI_GUARDS[case]
    try:
        code = cli.main(["train", "--model", "two_layer_net", "--dataset", "spiral", *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and message in err, err
    assert "Traceback" not in err and "epoch 1/" not in out
    assert (tmp_path / "afile").read_text() == "a user's file"


def test_cli_refuses_to_replace_a_previous_run_unless_asked(offline, tmp_path, capsys):
    argv = ["train", "--model", "two_layer_net", "--dataset", "spiral", "--epochs", "1", "--out", "r"]
    assert cli.main(argv) == 0
    before = (tmp_path / "r" / "checkpoint.npz").read_bytes()
    assert cli.main(argv) == 2
    assert "holds a previous run: add --resume" in capsys.readouterr().err
    assert (tmp_path / "r" / "checkpoint.npz").read_bytes() == before
    assert cli.main([*argv, "--overwrite"]) == 0


def test_cli_damaged_checkpoint_is_one_line(offline, tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    code = cli.main(["train", "--model", "two_layer_net", "--dataset", "spiral", "--resume", "bad.npz"])
    err = capsys.readouterr().err
    assert code == 2 and "bad.npz" in err and "cannot be read" in err and "Traceback" not in err


def test_cli_nan_loss_is_one_line_naming_lr(offline, capsys):
    code = cli.main(["train", "--model", "two_layer_net", "--dataset", "spiral", "--optimizer", "sgd",
                     "--lr", "1e38", "--epochs", "2"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(lines) == 1 and "--lr 1e+38 is probably too high" in lines[0]
    assert "optimizer_param" not in err and "Traceback" not in err


def test_cli_limit_keeps_the_whole_label_range_and_the_header_says_what_is_used(offline, capsys):
    assert cli.main(["train", "--model", "two_layer_net", "--dataset", "mnist-sample", "--limit", "3",
                     "--epochs", "1", "--batch-size", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 train / 2,000 test (--limit: the first 3 of 8,000 training samples)" in out


def test_cli_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "(default: simple_convnet)" in out and "(default: 0.001)" in out and "--resume" in out


def test_fault_count():
    """The figures of the closing note: distinct bad inputs and faults this file tries."""
    signals = 2 + 1  # SIGINT in the CLI and in Trainer.train(); SIGKILL mid-write
    divergence = 2  # Trainer and CLI
    damaged = len(DAMAGE) + 2 + 3  # metadata/arrays, buffers, truncated zips
    cli_runs = 4  # previous run kept, damaged checkpoint, NaN loss, --limit 3
    assert signals + divergence + damaged + len(TRAINER_GUARDS) + len(CLI_GUARDS) + cli_runs == 66
