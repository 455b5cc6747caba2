"""The learners' seed notebooks (``shared/seeds/``, text exports with their recorded outputs),
ported by imports only and run as real notebooks in an IPython kernel.

The exports hold each code cell after an ``In [n]:`` line, followed by its recorded output
(if any) after a blank line.  :func:`code_cells` takes back each cell's code: the longest run
of its blank-line-separated blocks that is valid Python (IPython's ``%`` and ``!`` lines
count as statements), up to the first block that reads like a recorded value (an expression starting
like a repr: ``(300, 2) (300, 3)``, ``array(...)``, ``<... object>``) or like the notebook's
text (bare words that happen to be Python names).
:func:`port` changes the imports (``common.X`` -> ``xpnet.X`` or ``xpnet.book2.X``,
``dataset.X`` -> ``xpnet.datasets.X``) and :func:`cut` the loop counts, each asserted to be
found exactly once, so a changed notebook fails loudly.
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import book_scripts


def find_shared() -> Path | None:
    """The shared folder (see :func:`book_scripts.find_shared`) when it holds ``seeds/``."""
    folder = book_scripts.find_shared()
    return folder if folder is not None and (folder / "seeds").is_dir() else None


SHARED = find_shared()
_MARKER = re.compile(r"^In \[[^\]]*\]:\s*$")
# a recorded value's repr starts a block where code never does: (300, 2) [..] array(..) <obj> 32 'text'
_RECORDED = re.compile(r"^(?:[(\[{<'\"\d-]|array\()")


def seed(number: str) -> str:
    """The text of seed notebook ``number`` (``"002"``)."""
    (path,) = sorted((SHARED / "seeds").glob(f"{number}_*.txt"))
    return path.read_text(encoding="utf-8")


def _python(code: str) -> str:
    """``code`` with IPython's ``%`` and ``!`` lines as ``pass`` (for parsing only)."""
    return "\n".join("pass" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())


def _compiles(code: str) -> bool:
    return _parses(_python(code), "exec")


def _parses(code: str, mode: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # "(300, 2) (300, 3)" parses as a call
        try:
            compile(code, "<cell>", mode)
        except SyntaxError:
            return False
    return True


def _statement(block: str) -> bool:
    """True when ``block`` is Python but no lone expression (an assignment, say)."""
    return not _parses(block, "eval") and _compiles(block)


def _prose(block: str) -> bool:
    """True when ``block`` parses only as bare names and values (``합성곱``, ``x y``): the
    notebook's text, never code that does something."""
    if not _compiles(block) or block.lstrip().startswith(("#", "%", "!")):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        tree = ast.parse(_python(block))
    # "Convolution : 합성곱" parses as a bare annotation
    inert = [isinstance(node, ast.Expr) or (isinstance(node, ast.AnnAssign) and node.value is None)
             for node in tree.body]
    return all(inert) and not any(isinstance(node, ast.Call) for node in ast.walk(tree))


def code_cells(text: str) -> list[str]:
    """The code of every ``In [..]:`` cell of an export, in order."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _MARKER.match(line)] + [len(lines)]
    cells = []
    for start, end in zip(starts, starts[1:]):
        blocks = re.split(r"\n\s*\n", "\n".join(lines[start + 1:end]))
        taken = 0
        for n in range(1, len(blocks) + 1):
            if (_RECORDED.match(blocks[n - 1]) and not _statement(blocks[n - 1])) or _prose(blocks[n - 1]):
                break
            if _compiles("\n\n".join(blocks[:n])):
                taken = n
        cells.append("\n\n".join(blocks[:taken]).rstrip())
    return cells


_BOOK2_MODULES = {"layers", "optimizer", "trainer", "util", "functions", "base_model", "np", "config",
                  "time_layers"}


def port(code: str, book: int) -> str:
    """``code`` with the book's imports changed to xpnet's, nothing else."""
    code = re.sub(r"\bfrom deep2\.common\.(\w+) import", r"from xpnet.book2.\1 import", code)
    target = "xpnet.book2" if book == 2 else "xpnet"
    code = re.sub(r"\bfrom common\.(\w+) import", rf"from {target}.\1 import", code)
    code = re.sub(r"\bfrom dataset\.(\w+) import", r"from xpnet.datasets.\1 import", code)
    return re.sub(r"\bfrom dataset import", "from xpnet.datasets import", code)


def cut(code: str, old: str, new: str, count: int = 1) -> str:
    """``code`` with ``old`` replaced by ``new``, asserting it occurs ``count`` times."""
    assert code.count(old) == count, f"expected {count} x {old!r} in\n{code}"
    return code.replace(old, new)


# Offline MNIST for the kernel: the real test set bundled with xpnet, in its order (train = its
# first 1,000 digits, to keep the notebooks' per-epoch evaluations short; test = all 10,000).
OFFLINE_MNIST = '''\
import numpy as _np
import xpnet.datasets.mnist as _mnist


def _offline_mnist(normalize=True, flatten=True, one_hot_label=False):
    (x1, t1), (x2, t2) = _mnist.load_mnist_sample(normalize, flatten, one_hot_label)
    x, t = _np.concatenate([x1, x2]), _np.concatenate([t1, t2])
    return (x[:1000], t[:1000]), (x, t)


_mnist.load_mnist = _offline_mnist
import matplotlib
matplotlib.use("Agg")'''
