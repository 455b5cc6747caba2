"""Run the books' own chapter scripts on xpnet, with their imports changed only.

xpnet's promise is that a book script runs when ``common.X`` becomes ``xpnet.X`` (first
book) or ``xpnet.book2.X`` (second book) and ``dataset.X`` becomes ``xpnet.datasets.X``.
The harness keeps the scripts' text and changes the imports the other way round: it copies
a book's chapter folders into a temporary folder beside a tiny ``common`` and ``dataset``
package whose modules are one re-export line each (``from xpnet.X import *``), so the
scripts' own ``sys.path.append('..')`` finds xpnet.

What the harness changes, and nothing else:

* **Loop counts** (:data:`CUTS`): textual substitutions of numbers only, each asserted to
  occur exactly as often as listed, so a changed script fails loudly instead of running long.
* **Data size**, for scripts that train on a whole corpus: the test ``dataset`` modules cut
  PTB's corpus and the sequence files to the first N rows (:data:`DATA_CUTS`); the
  vocabulary stays the book's.  MNIST offline is the real test set bundled with xpnet
  (train: its first 8,000 digits; test: all 10,000, so pretrained weights give the book's
  accuracies).
* **The scripts' own faults** (``shared/books/README.md``; they fail on the book's code
  too), each fixed as narrowly as possible (:data:`FIXES`, :data:`EXTRA_PATH`, the run
  order in :data:`ORDER` so that the training scripts write the ``.pkl`` files the others
  load).
* The environment: ``MPLBACKEND=Agg``, ``XPNET_DATA`` at a copy of the offline data,
  NumPy's global generator seeded 0 before each script (as the issue's anchors), and PIL's
  ``Image.show`` a no-op (no image viewer in CI).

One book runs in one Python process (:func:`run_book`), its scripts one after another, in
:data:`ORDER` (chapter 6's training before chapter 7's generation), each with a fresh
``__main__`` and the chapters' own modules forgotten in between; a script's output and error
come back per script.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def find_shared() -> Path | None:
    """``<repo>/../shared`` (the CI layout), else ``$XPNET_SHARED``, else ``/work/shared``;
    ``None`` when none of them holds ``books/``."""
    candidates = [REPO.parent / "shared"]
    if os.environ.get("XPNET_SHARED"):
        candidates.append(Path(os.environ["XPNET_SHARED"]))
    candidates.append(Path("/work/shared"))
    for folder in candidates:
        if (folder / "books").is_dir():
            return folder
    return None


SHARED = find_shared()

# ---------------------------------------------------------------- the re-export packages

BOOK1_COMMON = {
    "functions": "xpnet.functions", "gradient": "xpnet.gradient", "layers": "xpnet.layers",
    "multi_layer_net": "xpnet.nets.multi_layer_net",
    "multi_layer_net_extend": "xpnet.nets.multi_layer_net_extend",
    "optimizer": "xpnet.optimizer", "trainer": "xpnet.trainer", "util": "xpnet.util",
}
BOOK2_COMMON = {
    name: f"xpnet.book2.{name}"
    for name in ("base_model", "config", "functions", "layers", "np", "optimizer", "time_layers", "trainer", "util")
}
DATASET = {name: f"xpnet.datasets.{name}" for name in ("ptb", "sequence", "spiral")}

# The harness-only part of a dataset module: offline data and the data cuts of DATA_CUTS.
_MNIST_OFFLINE = '''
# test harness: offline, the real MNIST test set bundled with xpnet (train = its first
# 8,000 digits, test = all 10,000, so that the books' pretrained weights score as printed).
import numpy as _np
from xpnet.datasets.mnist import load_mnist_sample as _sample


# With $XPNET_BOOKTEST_MNIST set, both splits are cut to that many digits.
import os as _os


def load_mnist(normalize=True, flatten=True, one_hot_label=False):
    (x1, t1), (x2, t2) = _sample(normalize, flatten, one_hot_label, n_train=1)
    x, t = _np.concatenate([x1, x2]), _np.concatenate([t1, t2])
    n = _os.environ.get("XPNET_BOOKTEST_MNIST")
    if n:
        return (x[:int(n)], t[:int(n)]), (x[:int(n)], t[:int(n)])
    return (x[:8000], t[:8000]), (x, t)
'''
_PTB_CUT = '''
# test harness: the corpus cut to the first $XPNET_BOOKTEST_PTB words (vocabulary unchanged).
import os as _os
from xpnet.datasets.ptb import load_data as _load_data


def load_data(data_type="train"):
    corpus, word_to_id, id_to_word = _load_data(data_type)
    n = _os.environ.get("XPNET_BOOKTEST_PTB")
    return (corpus[:int(n)] if n else corpus), word_to_id, id_to_word
'''
_SEQUENCE_CUT = '''
# test harness: train and test cut to their first $XPNET_BOOKTEST_SEQ rows.
import os as _os
from xpnet.datasets.sequence import load_data as _load_data


def load_data(file_name="addition.txt", seed=1984):
    (x_train, t_train), (x_test, t_test) = _load_data(file_name, seed)
    n = _os.environ.get("XPNET_BOOKTEST_SEQ")
    if n:
        n = int(n)
        return (x_train[:n], t_train[:n]), (x_test[:n], t_test[:n])
    return (x_train, t_train), (x_test, t_test)
'''


def write_packages(root: Path, book: str) -> None:
    """``root/common`` and ``root/dataset``: one ``from xpnet... import *`` line per module."""
    common = BOOK1_COMMON if book == "book1" else BOOK2_COMMON
    for package, modules in (("common", common), ("dataset", DATASET)):
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").write_text("")
        for name, target in modules.items():
            (root / package / f"{name}.py").write_text(f"from {target} import *\n")
    (root / "dataset" / "mnist.py").write_text("from xpnet.datasets.mnist import *\n" + _MNIST_OFFLINE)
    with open(root / "dataset" / "ptb.py", "a") as f:
        f.write(_PTB_CUT)
    with open(root / "dataset" / "sequence.py", "a") as f:
        f.write(_SEQUENCE_CUT)


# ---------------------------------------------------------------- what the harness changes

#: Loop-count cuts: script -> [(old, new, occurrences)], numbers only.
CUTS: dict[str, list[tuple[str, str, int]]] = {
    # book 1
    "book1/ch04/train_neuralnet.py": [("iters_num = 10000", "iters_num = 3", 1)],
    "book1/ch05/gradient_check.py": [("hidden_size=50", "hidden_size=2", 1)],
    "book1/ch06/batch_norm_gradient_check.py": [("hidden_size_list=[100, 100]", "hidden_size_list=[2, 2]", 1)],
    "book1/ch06/optimizer_compare_naive.py": [("0.01)", "0.1)", 2)],
    "book1/ch05/train_neuralnet.py": [("iters_num = 10000", "iters_num = 3", 1)],
    "book1/ch06/batch_norm_test.py": [("max_epochs = 20", "max_epochs = 1", 1), ("num=16", "num=2", 1),
                                      ("x_train[:1000]", "x_train[:100]", 1),
                                      ("t_train[:1000]", "t_train[:100]", 1)],
    "book1/ch06/hyperparameter_optimization.py": [("optimization_trial = 100", "optimization_trial = 2", 1),
                                                  ("epocs=50", "epocs=1", 1)],
    "book1/ch06/optimizer_compare_mnist.py": [("max_iterations = 2000", "max_iterations = 2", 1)],
    "book1/ch06/overfit_dropout.py": [("epochs=301", "epochs=2", 1)],
    "book1/ch06/overfit_weight_decay.py": [("max_epochs = 201", "max_epochs = 2", 1)],
    "book1/ch06/weight_init_compare.py": [("max_iterations = 2000", "max_iterations = 2", 1)],
    "book1/ch07/train_convnet.py": [("max_epochs = 20", "max_epochs = 1", 1),
                                    ("evaluate_sample_num_per_epoch=1000", "evaluate_sample_num_per_epoch=100", 1)],
    "book1/ch08/train_deepnet.py": [("epochs=20", "epochs=1", 1),
                                    ("evaluate_sample_num_per_epoch=1000", "evaluate_sample_num_per_epoch=50", 1)],
    # book 2, chapters 1-4
    "book2/ch01/train.py": [("max_epoch = 300", "max_epoch = 3", 1)],
    "book2/ch01/train_custom_loop.py": [("max_epoch = 300", "max_epoch = 3", 1), ("h = 0.001", "h = 0.05", 1)],
    "book2/ch03/train.py": [("max_epoch = 1000", "max_epoch = 10", 1)],
    "book2/ch04/train.py": [("max_epoch = 10", "max_epoch = 1", 1), ("hidden_size = 100", "hidden_size = 10", 1)],
    # book 2, chapters 5-8
    "book2/ch05/train.py": [("max_epoch = 100", "max_epoch = 2", 1)],
    "book2/ch05/train_custom_loop.py": [("max_epoch = 100", "max_epoch = 2", 1)],
    "book2/ch06/train_rnnlm.py": [("max_epoch = 4", "max_epoch = 1", 1)],
    "book2/ch06/train_better_rnnlm.py": [("max_epoch = 40", "max_epoch = 1", 1)],
    "book2/ch07/train_seq2seq.py": [("max_epoch = 25", "max_epoch = 1", 1), ("batch_size = 128", "batch_size = 32", 1)],
    "book2/ch08/train.py": [("max_epoch = 10", "max_epoch = 1", 1), ("batch_size = 128", "batch_size = 32", 1)],
}

#: Data cuts (environment read by the test ``dataset`` modules): script -> {variable: rows}.
DATA_CUTS: dict[str, dict[str, int]] = {
    "book1/ch07/train_convnet.py": {"XPNET_BOOKTEST_MNIST": 300},
    "book1/ch08/train_deepnet.py": {"XPNET_BOOKTEST_MNIST": 100},
    "book1/ch08/half_float_network.py": {"XPNET_BOOKTEST_MNIST": 100},
    "book1/ch08/misclassified_mnist.py": {"XPNET_BOOKTEST_MNIST": 300},
    "book2/ch02/count_method_big.py": {"XPNET_BOOKTEST_PTB": 3000},
    "book2/ch04/train.py": {"XPNET_BOOKTEST_PTB": 2000},
    "book2/ch06/train_rnnlm.py": {"XPNET_BOOKTEST_PTB": 1401},  # 2 iterations of 20 x 35
    "book2/ch06/train_better_rnnlm.py": {"XPNET_BOOKTEST_PTB": 701},  # 1 iteration of 20 x 35
    "book2/ch06/eval.py": {"XPNET_BOOKTEST_PTB": 701},
    "book2/ch07/train_seq2seq.py": {"XPNET_BOOKTEST_SEQ": 64},
    "book2/ch08/train.py": {"XPNET_BOOKTEST_SEQ": 64},
    "book2/ch08/visualize_attention.py": {"XPNET_BOOKTEST_SEQ": 64},
    "book1/ch03/neuralnet_mnist.py": {"XPNET_BOOKTEST_MNIST": 1000},
}

#: The scripts' own faults (shared/books/README.md), fixed narrowly: script -> [(old, new, n)].
FIXES: dict[str, list[tuple[str, str, int]]] = {
    # int() of a one-element array: NumPy >= 2.4 refuses, the book's code fails the same way.
    "book2/ch07/rnnlm_gen.py": [("word_ids.append(int(x))", "word_ids.append(int(x[0]))", 2)],
}

#: Folders put on sys.path for a script: ch08/train.py imports ch07's modules by their bare
#: names without putting ../ch07 on the path (fails on the book's code too).
EXTRA_PATH: dict[str, list[str]] = {
    "book2/ch08/train.py": ["../ch07"],
    "book2/ch08/visualize_attention.py": ["../ch07"],
}

#: The scripts that run, in this order (producers of .pkl files first; chapters in order, so
#: chapter 6 writes the models chapter 7 loads).  Modules the scripts import
#: (two_layer_net.py, simple_rnnlm.py, ...) run too: that defines their classes, nothing more.
ORDER: dict[str, list[str]] = {
    "book1/ch03": ["mnist_show.py", "neuralnet_mnist.py", "neuralnet_mnist_batch.py"],
    "book1/ch04": ["two_layer_net.py", "gradient_simplenet.py", "train_neuralnet.py"],
    "book1/ch05": ["two_layer_net.py", "gradient_check.py", "train_neuralnet.py"],
    "book1/ch06": ["batch_norm_gradient_check.py", "batch_norm_test.py", "hyperparameter_optimization.py",
                   "optimizer_compare_mnist.py", "optimizer_compare_naive.py", "overfit_dropout.py",
                   "overfit_weight_decay.py", "weight_init_compare.py"],
    "book1/ch07": ["simple_convnet.py", "apply_filter.py", "visualize_filter.py", "train_convnet.py"],
    "book1/ch08": ["deep_convnet.py", "half_float_network.py", "misclassified_mnist.py", "train_deepnet.py"],
    "book2/ch01": ["forward_net.py", "two_layer_net.py", "show_spiral_dataset.py", "train.py",
                   "train_custom_loop.py"],
    "book2/ch02": ["count_method_small.py", "most_similar.py", "ppmi.py", "similarity.py", "show_ptb.py",
                   "count_method_big.py"],
    "book2/ch03": ["cbow_predict.py", "simple_cbow.py", "simple_skip_gram.py", "train.py"],
    "book2/ch04": ["negative_sampling_layer.py", "cbow.py", "skip_gram.py", "train.py", "eval.py"],
    "book2/ch05": ["simple_rnnlm.py", "train.py", "train_custom_loop.py"],
    "book2/ch06": ["clip_grads.py", "rnn_gradient_graph.py", "rnnlm.py", "better_rnnlm.py", "train_rnnlm.py",
                   "eval.py", "train_better_rnnlm.py"],
    "book2/ch07": ["show_addition_dataset.py", "seq2seq.py", "peeky_seq2seq.py", "train_seq2seq.py",
                   "rnnlm_gen.py", "generate_text.py", "generate_better_text.py"],
    "book2/ch08": ["attention_layer.py", "attention_seq2seq.py", "train.py", "visualize_attention.py"],
}
#: Scripts that do not run in the tests, and why (nothing but their data could be cut).
SKIP: dict[str, str] = {
    "book2/ch02/count_method_big.py": "a dense SVD of PTB's 10,000 x 10,000 PPMI matrix (minutes without "
                                      "scikit-learn); its functions run in the other ch02 scripts",
}


def apply(text: str, script: str, table: dict[str, list[tuple[str, str, int]]]) -> str:
    """``text`` with ``table[script]``'s substitutions, each asserted to occur as often as listed."""
    for old, new, count in table.get(script, []):
        found = text.count(old)
        if found != count:
            raise AssertionError(f"{script}: expected {old!r} {count} time(s), found {found}: "
                                 "the script changed; update tests/book_scripts.py")
        text = text.replace(old, new)
    return text


# ---------------------------------------------------------------- running


def make_root(tmp: Path, book: str, cut: bool = True) -> Path:
    """A copy of ``book``'s chapters beside its ``common``/``dataset`` packages, the fixes and
    (when ``cut``) the loop cuts applied."""
    assert SHARED is not None
    source = SHARED / "books" / book
    root = tmp / book
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("__pycache__"))
    write_packages(root, book)
    for script in list(CUTS) + list(FIXES):
        if script.startswith(book + "/"):
            path = root / script.split("/", 1)[1]
            text = apply(path.read_text(encoding="utf-8"), script, FIXES)
            text = apply(text, script, CUTS) if cut else text
            path.write_text(text, encoding="utf-8")
    return root


def make_data(tmp: Path) -> Path:
    """An ``XPNET_DATA`` root holding a copy of the real PTB files (the loader caches beside them)."""
    assert SHARED is not None
    data = tmp / "data"
    (data / "ptb").mkdir(parents=True, exist_ok=True)
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        source = SHARED / "data" / "ptb" / name
        if source.exists() and not (data / "ptb" / name).exists():
            shutil.copyfile(source, data / "ptb" / name)
    return data


DRIVER = Path(__file__).with_name("book_driver.py")


def job(root: Path, script: str, log: bool = True) -> dict:
    """What the driver needs to run ``script`` (``"book2/ch06/train_rnnlm.py"``) of the copy at ``root``."""
    chapter, script_name = script.rsplit("/", 1)
    folder = root / chapter.split("/")[1]
    return {
        "script": script, "cwd": str(folder), "path": str(folder / script_name), "root": str(root),
        "log": str(folder / f"{script_name}.log") if log else None, "extra_path": EXTRA_PATH.get(script, []),
        "env": {k: str(v) for k, v in DATA_CUTS.get(script, {}).items()},
    }


def environment(data: Path) -> dict[str, str]:
    """The scripts' environment: headless plots, the offline data, one BLAS thread."""
    return dict(os.environ, MPLBACKEND="Agg", XPNET_DATA=str(data), PYTHONPATH=str(REPO),
                OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONHASHSEED="0")


def run_book(root: Path, data: Path, book: str, timeout: float = 300.0) -> dict[str, dict]:
    """Run ``book``'s scripts (:data:`ORDER`, chapter by chapter) of the copy at ``root`` in one process.

    Returns ``{script: {"ok", "error", "seconds", "output"}}``; a script still running at
    the timeout is reported as ``ok: False`` with that reason, the ones after it as not run.
    """
    jobs = [job(root, f"{chapter}/{name}") for chapter, names in ORDER.items() if chapter.startswith(book + "/")
            for name in names if f"{chapter}/{name}" not in SKIP]
    results_file = root / "_results.json"
    failure = None
    try:
        proc = subprocess.run([sys.executable, str(DRIVER), json.dumps(jobs), str(results_file)],
                              cwd=root, env=environment(data), timeout=timeout, capture_output=True, text=True)
        if proc.returncode != 0:
            failure = f"the driver process failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    except subprocess.TimeoutExpired:
        failure = f"timed out after {timeout:.0f} s"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for entry in jobs:
        result = results.setdefault(entry["script"], {"ok": False, "error": "not run: " + (failure or "?")})
        if result.get("ok") is None:
            result.update(ok=False, error=failure or "did not finish")
        log = Path(entry["log"])
        result["output"] = log.read_text(errors="replace") if log.exists() else ""
    return results


def main(argv: list[str] | None = None) -> int:
    """Run one book script whole (no cuts), e.g. to reproduce the book's results on xpnet:
    ``python tests/book_scripts.py book2/ch05/train.py --set "max_epoch = 100=>max_epoch = 100"``."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("script", help="book1/chNN/name.py or book2/chNN/name.py")
    parser.add_argument("--set", action="append", default=[], metavar="OLD=>NEW",
                        help="a textual substitution, asserted to occur once (the book's variants: is_reverse, ...)")
    parser.add_argument("--before", action="append", default=[], metavar="SCRIPT",
                        help="a script of the same book to run first (one that writes a .pkl the script loads)")
    args = parser.parse_args(argv)
    if SHARED is None:
        parser.error("shared/books not found (<repo>/../shared, $XPNET_SHARED, /work/shared)")
    book = args.script.split("/")[0]
    tmp = Path(tempfile.mkdtemp(prefix="xpnet-book-"))
    root = make_root(tmp, book, cut=False)
    path = root / args.script.split("/", 1)[1]
    swaps = [tuple(pair.split("=>", 1)) + (1,) for pair in args.set]
    path.write_text(apply(path.read_text(encoding="utf-8"), args.script, {args.script: swaps}), encoding="utf-8")
    jobs = [dict(job(root, script, log=False), env={}) for script in [*args.before, args.script]]
    results = tmp / "_results.json"
    subprocess.run([sys.executable, str(DRIVER), json.dumps(jobs), str(results)], cwd=root,
                   env=environment(make_data(tmp)))
    outcome = json.loads(results.read_text()) if results.exists() else {}
    for script, result in outcome.items():
        print(f"{script}: {'ok' if result['ok'] else 'FAILED'} in {result.get('seconds') or 0:.1f} s")
        if result.get("error"):
            print(result["error"])
    return 0 if outcome and all(r["ok"] for r in outcome.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
