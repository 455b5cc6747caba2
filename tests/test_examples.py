"""Every script of ``examples/`` runs end to end with tiny settings, on the CPU, in a subprocess.

Each run must exit 0, write its PNG files (real, non-empty PNGs) into ``--out`` and
print one ``RESULT key=value ...`` line whose figures lie in a sane range.  Settings
are cut down so the whole file takes well under a minute on two cores.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xpnet import backend

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# script, arguments, PNGs it writes, RESULT figures -> (lowest, highest) allowed
CASES = [
    pytest.param("ch04_train_neuralnet.py",
                 ["--sample", "--epochs", "2", "--hidden-size", "10", "--numerical-steps", "1"],
                 ["ch04_numerical_vs_backprop.png", "ch04_curves.png"],
                 {"test_acc": (0.3, 1.0), "speedup": (10, float("inf"))}, id="ch04"),
    pytest.param("ch05_backprop.py", ["--sample", "--epochs", "2", "--hidden-size", "10", "--seed", "1"],
                 ["ch05_curves.png"], {"grad_diff": (0.0, 1e-6), "test_acc": (0.3, 1.0)}, id="ch05"),
    pytest.param("ch05_backprop.py",
                 ["--sample", "--epochs", "1", "--hidden-size", "5", "--seed", "1", "--dtype", "float32",
                  "--train-size", "500"],
                 ["ch05_curves.png"], {"grad_diff": (0.0, 1e-3)}, id="ch05-float32"),
    pytest.param("ch06_optimizer_compare.py", ["--sample", "--iters", "60"], ["ch06_optimizer_compare.png"],
                 {"acc_sgd": (0.0, 1.0), "acc_momentum": (0.0, 1.0), "acc_adagrad": (0.0, 1.0),
                  "acc_rmsprop": (0.0, 1.0), "acc_adam": (0.5, 1.0)}, id="ch06-optimizers"),
    pytest.param("ch06_weight_init_activation_histogram.py", ["--layers", "3", "--samples", "300"],
                 ["ch06_weight_init_hist_sigmoid.png", "ch06_weight_init_hist_relu.png"],
                 {"sigmoid_std1": (0.3, 0.5), "sigmoid_std0.01": (0.0, 0.05), "sigmoid_xavier": (0.05, 0.3),
                  "relu_std0.01": (0.0, 0.01), "relu_he": (0.5, 2.0)}, id="ch06-init-histogram"),
    pytest.param("ch06_weight_init_compare.py", ["--sample", "--iters", "60"], ["ch06_weight_init_compare.png"],
                 {"acc_std0.01": (0.0, 0.3), "acc_he": (0.3, 1.0)}, id="ch06-init-compare"),
    pytest.param("ch06_batch_norm.py", ["--sample", "--scales", "2", "--epochs", "2", "--train-size", "300",
                                        "--test-size", "200"], ["ch06_batch_norm.png"],
                 {"bn_train_acc_mean": (0.0, 1.0), "plain_train_acc_mean": (0.0, 1.0)}, id="ch06-batch-norm"),
    pytest.param("ch06_overfit_weight_decay.py", ["--sample", "--epochs", "30", "--test-size", "500"],
                 ["ch06_overfit_weight_decay.png"],
                 {"test_acc": (0.3, 1.0), "test_acc_decay": (0.0, 1.0), "gap": (-1.0, 1.0)}, id="ch06-weight-decay"),
    pytest.param("ch06_overfit_dropout.py", ["--sample", "--epochs", "30", "--test-size", "500"],
                 ["ch06_overfit_dropout.png"],
                 {"test_acc": (0.3, 1.0), "test_acc_dropout": (0.0, 1.0), "gap": (-1.0, 1.0)}, id="ch06-dropout"),
    pytest.param("ch06_hyperparameter_optimization.py", ["--sample", "--trials", "3", "--epochs", "2"],
                 ["ch06_hyperparameter_optimization.png"],
                 {"best_val_acc": (0.0, 1.0), "best_lr": (1e-6, 1e-2), "best_weight_decay": (1e-8, 1e-4)},
                 id="ch06-hyperparameters"),
    pytest.param("ch07_simple_convnet.py", ["--sample", "--epochs", "1", "--train-size", "2000",
                                            "--test-size", "300", "--evaluate-samples", "300"],
                 ["ch07_filters_before.png", "ch07_filters_after.png", "ch07_curves.png"],
                 {"test_acc": (0.3, 1.0)}, id="ch07"),
    pytest.param("ch08_deep_convnet.py", ["--sample", "--epochs", "1", "--train-size", "300", "--test-size", "100",
                                          "--evaluate-samples", "100", "--half-samples", "30"],
                 ["ch08_curves.png", "ch08_misclassified.png"],
                 {"test_acc": (0.0, 1.0), "fp32_acc": (0.0, 1.0), "fp16_acc": (0.0, 1.0)},
                 id="ch08", marks=pytest.mark.slow),
    pytest.param("spiral_two_layer_net.py", [], ["spiral_loss.png", "spiral_decision_boundary.png"],
                 {"train_acc": (0.9, 1.0), "test_acc": (0.8, 1.0), "final_loss": (0.0, 0.3)}, id="spiral"),
]


def run_example(script: str, args: list[str], out: Path, **env: str) -> subprocess.CompletedProcess:
    """``python examples/<script> --device cpu --out <out> <args>``, headless, one BLAS thread
    (several threads per process only fight each other on a small shared machine)."""
    environment = {**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore::DeprecationWarning", **env}
    command = [sys.executable, str(EXAMPLES / script), "--device", "cpu", "--out", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, cwd=out.parent)


def result_of(proc: subprocess.CompletedProcess) -> dict[str, str]:
    """The ``key=value`` pairs of the one ``RESULT`` line of a run's output."""
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, f"expected one RESULT line, got {lines}\n{proc.stdout}"
    pairs = lines[0].split()[1:]
    assert all(re.fullmatch(r"[\w.]+=\S+", pair) for pair in pairs), lines[0]
    return dict(pair.split("=", 1) for pair in pairs)


def assert_ran(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"exit code {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def assert_pngs(out: Path, names: list[str]) -> None:
    for name in names:
        path = out / name
        assert path.is_file(), f"{name} was not written; {out} holds {sorted(p.name for p in out.iterdir())}"
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 2000, f"{name}: not a real PNG ({len(data)} bytes)"


@pytest.mark.parametrize("script, args, pngs, ranges", CASES)
def test_example(tmp_path, script, args, pngs, ranges):
    out = tmp_path / "out"
    proc = run_example(script, args, out)
    assert_ran(proc)
    assert_pngs(out, pngs)
    result = result_of(proc)
    for key, (low, high) in ranges.items():
        assert key in result, f"RESULT has no {key}: {result}"
        assert low <= float(result[key]) <= high, f"{key}={result[key]} outside [{low}, {high}]\n{proc.stdout}"


def test_ch03_trains_then_infers_with_fixed_weights_and_reads_book_pickles(tmp_path):
    """Without --weights the script trains, saves and reloads; the same weights pickled as
    the book's ``sample_weight.pkl`` (a dict of float64 arrays) give the same accuracy."""
    out = tmp_path / "out"
    proc = run_example("ch03_neuralnet_mnist.py", ["--sample", "--epochs", "1"], out)
    assert_ran(proc)
    assert "NOT the book's pretrained weights" in proc.stdout
    assert_pngs(out, ["ch03_predictions.png"])
    accuracy = float(result_of(proc)["test_acc"])
    assert 0.5 <= accuracy <= 1.0

    with np.load(out / "ch03_weights.npz") as saved:
        book_format = {key: saved[key].astype(np.float64) for key in saved.files}
    assert sorted(book_format) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    pkl = tmp_path / "sample_weight.pkl"
    pkl.write_bytes(pickle.dumps(book_format))
    proc = run_example("ch03_neuralnet_mnist.py", ["--sample", "--weights", str(pkl)], tmp_path / "again")
    assert_ran(proc)
    assert "NOT the book's" not in proc.stdout
    assert float(result_of(proc)["test_acc"]) == pytest.approx(accuracy, abs=1e-3)


def test_offline_without_sample_exits_2_with_a_hint(tmp_path):
    """Without --sample the scripts want full MNIST; with no files and no network they
    say why and point to --sample, exit code 2 (XPNET_DATA: an empty folder, no cache)."""
    empty = tmp_path / "data"
    empty.mkdir()
    proc = run_example("ch06_weight_init_compare.py", ["--iters", "1"], tmp_path / "out", XPNET_DATA=str(empty))
    if proc.returncode == 0:
        pytest.skip("full MNIST could be downloaded here; the offline path is not reachable")
    assert proc.returncode == 2, proc.stderr
    assert "MNIST" in proc.stderr and "--sample" in proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()   # the library's short message, then the script's hint
    assert lines[0].startswith("error: MNIST is not available: ") and len(lines) == 4, proc.stderr


def test_unavailable_device_exits_2(tmp_path):
    if backend.cuda_available():
        pytest.skip("a CUDA GPU answers here")
    proc = run_example("spiral_two_layer_net.py", ["--device", "cuda"], tmp_path / "out")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cuda" in proc.stderr and "Traceback" not in proc.stderr


def test_every_example_script_is_tested():
    scripts = {path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("_")}
    tested = {case.values[0] for case in CASES} | {"ch03_neuralnet_mnist.py"}
    book2 = {name for name in scripts if name.startswith("book2_")}  # tests/test_book2_examples.py
    assert scripts - book2 == tested
    assert (EXAMPLES / "README.md").is_file()
    readme = (EXAMPLES / "README.md").read_text()
    assert all(name in readme for name in scripts), "every script should be listed in examples/README.md"
