"""The second book's example scripts run end to end with tiny settings, on the CPU, in a subprocess.

Each run must exit 0, write its PNG files into ``--out`` and print one
``RESULT key=value ...`` line whose figures lie in a sane range (the same contract as
``tests/test_examples.py``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# script, arguments, PNGs it writes, RESULT figures -> (lowest, highest) allowed, lines it prints
CASES = [
    pytest.param("book2_ch01_spiral.py", ["--epochs", "100"],
                 ["book2_ch01_loss.png", "book2_ch01_decision_boundary.png"],
                 {"train_acc": (0.6, 1.0), "final_loss": (0.0, 0.9)}, ["| epoch 100 |  iter 1 / 10 |"], id="ch01"),
    pytest.param("book2_ch02_count_based.py", ["--max-words", "2000", "--wordvec-size", "20"], ["book2_ch02_svd.png"],
                 {"sim_you_i": (0.7071, 0.7072), "vocab": (300, 700), "words": (2000, 2000)},
                 ["cos_similarity(you, i) = 0.7071", "[query] alice", "100.0% done"], id="ch02"),
    pytest.param("book2_ch03_simple_cbow.py", ["--epochs", "300"], ["book2_ch03_loss.png"],
                 {"first_loss": (1.94, 1.95), "final_loss": (0.0, 1.6), "vocab": (7, 7)}, ["     you ["], id="ch03"),
    # the loss starts at 6 * log(2) = 4.1589 and must have moved down within 3 short epochs
    pytest.param("book2_ch04_cbow.py", ["--epochs", "3", "--max-words", "3000", "--hidden-size", "20",
                                        "--window-size", "2"], ["book2_ch04_loss.png"],
                 {"first_loss": (4.15, 4.17), "final_loss": (1.0, 4.155)}, ["[query] alice", "queen is not found"],
                 id="ch04"),
    # an untrained model's perplexity is about the vocabulary's size (155 words in Alice's first 300)
    pytest.param("book2_ch05_simple_rnnlm.py", ["--epochs", "2", "--corpus-size", "300"], ["book2_ch05_perplexity.png"],
                 {"first_ppl": (120.0, 200.0), "final_ppl": (1.0, 170.0), "vocab": (155, 155)},
                 ["corpus: Alice, 300 words", "| epoch 2 |  iter 1 / 5 |"], id="ch05"),
    pytest.param("book2_ch06_rnnlm.py", ["--epochs", "1", "--corpus-size", "1500", "--hidden-size", "16"],
                 ["book2_ch06_perplexity.png"],
                 {"first_ppl": (2500.0, 2700.0), "test_ppl": (100.0, 2700.0), "vocab": (2607, 2607)},
                 ["evaluating perplexity ...", "test perplexity: "], id="ch06"),
    pytest.param("book2_ch06_rnnlm.py", ["--better", "--epochs", "1", "--corpus-size", "1500", "--hidden-size", "16"],
                 ["book2_ch06_perplexity.png"], {"first_ppl": (2500.0, 2700.0), "test_ppl": (100.0, 2700.0)},
                 ["test perplexity: "], id="ch06-better"),
    pytest.param("book2_ch07_seq2seq.py", ["--reverse", "--peeky", "--epochs", "1", "--train-size", "512",
                                           "--test-size", "50", "--hidden-size", "16"], ["book2_ch07_accuracy.png"],
                 {"val_acc": (0.0, 1.0), "final_loss": (2.0, 2.6)}, ["Q 77+85  ", "T 162 ", "val acc "], id="ch07"),
    pytest.param("book2_ch08_attention.py", ["--epochs", "1", "--train-size", "256", "--test-size", "20",
                                             "--hidden-size", "16"], ["book2_ch08_accuracy.png", "book2_ch08_attention.png"],
                 {"val_acc": (0.0, 1.0), "final_loss": (3.5, 4.2)}, ["Q 10/15/94 ", "T 1994-10-15", "val acc "],
                 id="ch08"),
]


def run_example(script: str, args: list[str], out: Path) -> subprocess.CompletedProcess:
    """``python examples/<script> --device cpu --out <out> <args>``, headless, one BLAS thread,
    with this checkout first on the import path."""
    environment = {**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore::DeprecationWarning",
                   "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(EXAMPLES / script), "--device", "cpu", "--out", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, cwd=out.parent)


def parse_result(stdout: str) -> dict[str, str]:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, f"expected one RESULT line, got {lines}"
    return dict(re.findall(r"(\S+)=(\S+)", lines[0]))


@pytest.mark.parametrize("script, args, pngs, bounds, lines", CASES)
def test_book2_example_runs(script, args, pngs, bounds, lines, tmp_path):
    out = tmp_path / "out"
    proc = run_example(script, args, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in pngs:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000, name
    result = parse_result(proc.stdout)
    for key, (low, high) in bounds.items():
        assert low <= float(result[key]) <= high, (key, result[key])
    for line in lines:
        assert line in proc.stdout, line
    assert all(value != key[3:] for key, value in result.items() if key.startswith("nn_"))  # not the query itself


def test_a_missing_device_exits_with_code_2(tmp_path):
    proc = run_example("book2_ch03_simple_cbow.py", ["--device", "cuda:99", "--epochs", "1"], tmp_path / "out")
    assert proc.returncode == 2
    assert "error" in proc.stderr
