"""The second book's toy sequence data sets: additions (chapter 7) and dates (chapter 8).

``from dataset import sequence`` becomes ``from xpnet.datasets import sequence``;
``sequence.load_data("addition.txt")`` and ``sequence.get_vocab()`` return what the book's
do, split for split and id for id.

Each line of a file is a question and its answer, the answer starting at the first ``_``
(``"16+75  _91  "``): ``x`` holds the questions' character ids, ``t`` the answers' (``_``
included, the decoder's start mark).  ``addition.txt`` and ``date.txt`` ship with xpnet
(from the book's repository, MIT; see ``xpnet/datasets/data/README.md``).
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path

import numpy as np

from xpnet.datasets._common import DatasetError, PathLike

__all__ = ["load_data", "get_vocab", "BUNDLED"]

#: Files shipped in ``xpnet/datasets/data``: name -> SHA-256.
BUNDLED: dict[str, str] = {
    "addition.txt": "34e0746f5014c11311c9452ee9050bf14e38eca44ec4aaf4d81eba2b38674009",
    "date.txt": "62e66a301ce8537868e725512d2a45663fc366526b7e42028cb703bda2b1c79a",
}
#: The largest file read (bytes): the bundled ones are 0.65 and 2.05 MB.
MAX_BYTES = 64 * 2**20

_vocab: tuple[dict[str, int], dict[int, str]] = ({}, {})


def load_data(
    file_name: PathLike = "addition.txt", seed: int | None = 1984,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(x_train, t_train), (x_test, t_test)`` of a question/answer file, as the book splits it.

    ``file_name``: a bundled file (``"addition.txt"``, ``"date.txt"``) or the path of a file
    in their format.  ``x`` is (N, question length), ``t`` (N, answer length), host int64
    character ids numbered in order of first appearance (questions and answers in turn).
    The rows are shuffled as the book does: NumPy's global generator is seeded with
    ``seed`` (unless ``None``) and then shuffles the row indices, so what a script draws
    next is what it draws with the book's loader.  The last tenth is the test split.
    Raises :class:`DatasetError` naming the file for a missing, oversized or malformed file.
    """
    name, text = _read(file_name)
    questions, answers = [], []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    for number, line in enumerate(lines, 1):
        idx = line.find("_")
        if idx < 0:
            raise DatasetError(f"{name}, line {number}: no '_' between question and answer in {line[:60]!r}")
        questions.append(line[:idx])
        answers.append(line[idx:])
    if not questions:
        raise DatasetError(f"{name}: the file holds no question/answer lines")
    for rows, what in ((questions, "question"), (answers, "answer")):
        lengths = {len(row) for row in rows}
        if len(lengths) > 1:
            number = next(i for i, row in enumerate(rows, 1) if len(row) != len(rows[0]))
            raise DatasetError(f"{name}, line {number}: {what} of {len(rows[number - 1])} characters, "
                               f"expected {len(rows[0])} as on line 1 (pad every line to one width)")

    x, t, id_to_char = _encode(questions, answers)
    global _vocab
    _vocab = ({c: i for i, c in enumerate(id_to_char)}, dict(enumerate(id_to_char)))
    indices = np.arange(len(x))
    if seed is not None:
        np.random.seed(seed)  # the book's global seeding: later unseeded draws follow the book's
    np.random.shuffle(indices)
    x, t = x[indices], t[indices]
    split_at = len(x) - len(x) // 10
    return (x[:split_at], t[:split_at]), (x[split_at:], t[split_at:])


def get_vocab() -> tuple[dict[str, int], dict[int, str]]:
    """``(char_to_id, id_to_char)`` of the file :func:`load_data` read last (copies)."""
    return dict(_vocab[0]), dict(_vocab[1])


def _encode(questions: list[str], answers: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(x, t, id_to_char)``: characters numbered in order of first appearance, reading each
    line's question and then its answer, as the book's loop does (vectorised over code points)."""
    n = len(questions)
    q = np.frombuffer("".join(questions).encode("utf-32-le"), dtype=np.uint32).reshape(n, -1)
    a = np.frombuffer("".join(answers).encode("utf-32-le"), dtype=np.uint32).reshape(n, -1)
    flat = np.concatenate([q, a], axis=1).reshape(-1)
    first = np.full(int(flat.max()) + 1, flat.size, dtype=np.int64)
    np.minimum.at(first, flat, np.arange(flat.size))  # where each code point appears first
    codes = np.flatnonzero(first < flat.size)
    codes = codes[np.argsort(first[codes])]
    id_of_code = np.zeros(first.size, dtype=np.int64)
    id_of_code[codes] = np.arange(codes.size)
    ids = id_of_code[np.concatenate([q, a], axis=1)]
    return ids[:, :q.shape[1]], ids[:, q.shape[1]:], [chr(int(c)) for c in codes]


def _read(file_name: PathLike) -> tuple[str, str]:
    """``(name for errors, text)`` of a bundled file or a path, size-bounded and verified."""
    if not isinstance(file_name, (str, os.PathLike)):
        raise TypeError(f"file_name: expected a file name or path, got {file_name!r}")
    if isinstance(file_name, str) and file_name in BUNDLED:
        name = f"xpnet/datasets/data/{file_name}"
        try:
            data = (resources.files("xpnet.datasets") / "data" / file_name).read_bytes()
        except OSError as exc:
            raise DatasetError(f"{name}: cannot read the bundled file ({exc}); reinstall xpnet") from exc
        if hashlib.sha256(data).hexdigest() != BUNDLED[file_name]:
            raise DatasetError(f"{name}: SHA-256 differs from the shipped file's; reinstall xpnet")
    else:
        path = Path(file_name).expanduser()
        name = str(path)
        if not path.is_file():
            raise DatasetError(f"file_name: no file {name}; expected one of {sorted(BUNDLED)} or a path to a file "
                               "of 'question_answer' lines")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise DatasetError(f"{name}: {size} bytes, more than the {MAX_BYTES} this loader reads")
        data = path.read_bytes()[: MAX_BYTES + 1]
    try:
        return name, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{name}: not UTF-8 text (byte {exc.start}); expected 'question_answer' lines") from exc
