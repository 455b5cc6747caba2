"""The learners' seed notebooks run on xpnet with their imports changed only, in a real IPython
kernel, and print what their recorded outputs say (shared/seeds/; skipped without it)."""

import re

import pytest

from _notebook import error_of, run_notebook, text_of
from seed_notebooks import OFFLINE_MNIST, SHARED, code_cells, cut, port, seed

pytestmark = pytest.mark.skipif(SHARED is None, reason="shared/seeds is not beside the repository")

LOOP_LINE = re.compile(r"^\|에폭 (\d+)\|반복 10/10\|손실 (\d\.\d\d)$", re.M)
FIT_LINE_RECORDED = re.compile(r"^\| 에폭 (\d+) \|  반복 1 / 10 \| 시간 0\[s\] \| 손실 (\d\.\d\d)$", re.M)
FIT_LINE = re.compile(r"^\| epoch (\d+) \|  iter 1 / 10 \| time \d+\[s\] \| loss (\d\.\d\d)$", re.M)


def test_notebook_002_prints_its_recorded_losses(tmp_path):
    """Notebook 002 (the second book's chapter 1): its own training loop, then Trainer.fit, on
    the spiral.  Its recorded output holds 42 loop epochs and 47 fit epochs (1-24, 243-265; the
    rest was cut by the notebook's output limit); every one of them must be printed again."""
    text = seed("002")
    recorded_loop = dict(LOOP_LINE.findall(text))
    recorded_fit = dict(FIT_LINE_RECORDED.findall(text))
    assert len(recorded_loop) == 42 and len(recorded_fit) == 47

    cells = code_cells(text)
    assert cells[0] == "import numpy as np"
    run = [cells[0]] + cells[24:33] + cells[34:]          # cell 33 draws the decision regions only
    run = [port(code, book=2) for code in run]
    # The notebook's net uses Softmax, which its kernel had from an earlier session's import.
    run = [cut(code, "import Affine, Sigmoid, SoftmaxWithLoss", "import Affine, Sigmoid, Softmax, SoftmaxWithLoss")
           if "SoftmaxWithLoss\n" in code + "\n" and code.startswith("import  sys") else code for code in run]
    loop = next(i for i, code in enumerate(run) if "for epoch in range(max_epoch)" in code)
    run[loop - 1] = cut(run[loop - 1], "max_epoch = 300", "max_epoch = 42")
    fit = next(i for i, code in enumerate(run) if "trainer.fit(" in code)
    run[fit] = cut(run[fit], "max_epoch = 300", "max_epoch = 265")

    notebook = run_notebook(run, tmp_path, OPENBLAS_NUM_THREADS="1")
    printed_loop = dict(LOOP_LINE.findall(text_of(notebook.cells[loop])))
    printed_fit = dict(FIT_LINE.findall(text_of(notebook.cells[fit])))
    assert len(printed_loop) == 42 and len(printed_fit) == 265
    loop_same = sum(printed_loop[epoch] == loss for epoch, loss in recorded_loop.items())
    fit_same = sum(printed_fit[epoch] == loss for epoch, loss in recorded_fit.items())
    assert (loop_same, fit_same) == (42, 47)


ACC_LINE = re.compile(r"^train acc, test acc \| (\d\.\d+), (\d\.\d+)$", re.M)
PROGRAMS_001 = [0, 1, 3, 5, 6, 7, 9, 10]    # the eight training programs among its code cells
CUTS_001 = [("iters_num = 10000", "iters_num = 20"), ("iters_num = 600*epoch", "iters_num = 20"),
            ("epoch=20#int(", "epoch=3#int(")]   # the 300-digit programs: 3 epochs of 3 steps


# What the Dropout program prints with the books' own common/ (Dropout masks from
# np.random.rand, Adam, scalar BatchNorm gamma/beta), seeded 0, on this harness's data (its first
# 300 training digits are the first 300 of the MNIST test set; test: all 10,000): one line per
# epoch of 3 steps, 20 epochs (all 20 were seen to match; the test runs the first 3).  (The 0.573/0.465 were measured on other training digits, which
# are not available offline.)
DROPOUT_BOOK = [
    ("0.09666666666666666", "0.1031"),
    ("0.12333333333333334", "0.1098"),
    ("0.16333333333333333", "0.1299"),
    ("0.17666666666666667", "0.1492"),
    ("0.22666666666666666", "0.1804"),
    ("0.25333333333333335", "0.2043"),
    ("0.26666666666666666", "0.2139"),
    ("0.26666666666666666", "0.2202"),
    ("0.2866666666666667", "0.2364"),
    ("0.31666666666666665", "0.246"),
    ("0.33", "0.2626"),
    ("0.3333333333333333", "0.2703"),
    ("0.3566666666666667", "0.2934"),
    ("0.3933333333333333", "0.3156"),
    ("0.43", "0.3323"),
    ("0.4266666666666667", "0.3474"),
    ("0.48", "0.3598"),
    ("0.44666666666666666", "0.3765"),
    ("0.47", "0.3757"),
    ("0.4533333333333333", "0.3697"),
]


def test_notebook_001_runs_its_eight_training_programs(tmp_path):
    """Notebook 001 (the first book's chapter 6): eight training programs on MNIST, written
    with the book's layers (BatchNormalization(gamma=1.0, beta=0.), Dropout) and optimizers.
    Each runs, seeded 0; the Dropout program prints the book's code's accuracies."""
    cells = code_cells(seed("001"))
    assert "Dropout1" in cells[9] and cells[8].startswith("class Dropout:")
    run = [OFFLINE_MNIST]
    for index in PROGRAMS_001:
        code = port(cells[index], book=1)
        for old, new in CUTS_001:
            if old in code:
                code = cut(code, old, new)
        run += ["np.random.seed(0)" if run[1:] else "import numpy as np\nnp.random.seed(0)", code]
    run.insert(-2, cells[8])                      # the notebook's own Dropout, before the program that re-imports it
    notebook = run_notebook(run, tmp_path, timeout=300, allow_errors=True, OPENBLAS_NUM_THREADS="1")
    errors = [(i, error_of(cell)) for i, cell in enumerate(notebook.cells) if error_of(cell)]
    assert errors == []
    programs = [text_of(cell) for code, cell in zip(run, notebook.cells) if "for i in range(" in code]
    assert len(programs) == 8
    for printed in programs:
        assert len(ACC_LINE.findall(printed)) >= 2, printed
    assert ACC_LINE.findall(programs[6]) == DROPOUT_BOOK[:3]
