"""xpnet.datasets.sequence: the book's addition/date data, split for split and id for id.

The printed values are the book's (``ch07/show_addition_dataset.py``); the shuffle is checked
against the book's definition (seed NumPy's global generator, then shuffle the row indices).
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.datasets import DatasetError, sequence


def test_addition_is_the_books_split_and_vocabulary():
    (x_train, t_train), (x_test, t_test) = sequence.load_data("addition.txt", seed=1984)
    char_to_id, id_to_char = sequence.get_vocab()
    assert (x_train.shape, t_train.shape, x_test.shape, t_test.shape) == ((45000, 7), (45000, 5), (5000, 7), (5000, 5))
    assert x_train.dtype == t_train.dtype == np.int64
    assert x_train[0].tolist() == [3, 0, 2, 0, 0, 11, 5] and t_train[0].tolist() == [6, 0, 11, 7, 5]
    assert "".join(id_to_char[int(c)] for c in x_train[0]) == "71+118 "
    assert "".join(id_to_char[int(c)] for c in t_train[0]) == "_189 "
    # ids in order of first appearance: the file's first line is "16+75  _91  "
    assert [id_to_char[i] for i in range(6)] == ["1", "6", "+", "7", "5", " "]
    assert len(char_to_id) == 13 and all(id_to_char[i] == c for c, i in char_to_id.items())


def test_date_is_the_books_split():
    (x_train, t_train), (x_test, t_test) = sequence.load_data("date.txt")
    _, id_to_char = sequence.get_vocab()
    assert (x_train.shape, t_train.shape, x_test.shape) == ((45000, 29), (45000, 11), (5000, 29))
    assert len(id_to_char) == 59
    assert "".join(id_to_char[int(c)] for c in x_train[0]).rstrip() == "2/7/72"
    assert "".join(id_to_char[int(c)] for c in t_train[0]) == "_1972-02-07"
    assert "".join(id_to_char[int(c)] for c in x_test[0]).rstrip() == "10/15/94"  # ch08's first printed question
    assert "".join(id_to_char[int(c)] for c in t_test[0]) == "_1994-10-15"


def _book_order(n, seed):
    """The book's shuffle: np.random.seed(seed) (unless None), then shuffle 0..n-1."""
    indices = np.arange(n)
    if seed is not None:
        np.random.seed(seed)
    np.random.shuffle(indices)
    return indices


@pytest.mark.parametrize("seed", [1984, 0, None])
def test_shuffle_and_global_generator_follow_the_book(seed, tmp_path):
    lines = [f"{i:03d}_{i % 7}" for i in range(40)]
    path = tmp_path / "toy.txt"
    path.write_text("\n".join(lines) + "\n")
    np.random.seed(5)
    (x_train, t_train), (x_test, t_test) = sequence.load_data(path, seed=seed)
    after = np.random.rand()
    np.random.seed(5)
    order = _book_order(40, seed)
    assert after == np.random.rand()  # later draws are the book's
    char_to_id, _ = sequence.get_vocab()
    rows = np.array([[char_to_id[c] for c in line[:3]] for line in lines])[order]
    assert np.array_equal(np.concatenate([x_train, x_test]), rows)
    assert len(x_train) == 36 and len(x_test) == 4  # the last tenth is the test split
    assert [sequence.get_vocab()[1][int(i)] for i in t_train[0]][0] == "_"


def test_get_vocab_returns_copies():
    sequence.load_data("addition.txt")
    sequence.get_vocab()[0]["?"] = 99
    assert "?" not in sequence.get_vocab()[0]


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DatasetError, match=r"file_name: no file .*nothing\.txt; expected one of \['addition.txt', 'date.txt'\]"):
        sequence.load_data(tmp_path / "nothing.txt")
    with pytest.raises(TypeError, match="file_name: expected a file name or path, got 3"):
        sequence.load_data(3)


@pytest.mark.parametrize("text, message", [
    ("1+1_2\n12\n", r"line 2: no '_' between question and answer in '12'"),
    ("1+1 _2 \n1+12 _13\n", r"line 2: question of 5 characters, expected 4 as on line 1 \(pad every line"),
    ("1+1_2\n1+2_3 \n", r"line 2: answer of 3 characters, expected 2 as on line 1"),
    ("", r"holds no question/answer lines"),
])
def test_malformed_lines_are_named(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        sequence.load_data(path)


def test_binary_and_oversized_files_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"1+1_2\n\xff\xfe_3\n")
    with pytest.raises(DatasetError, match=r"bad\.txt: not UTF-8 text \(byte 6\)"):
        sequence.load_data(path)
    path.write_text("1+1_2\n" * 10)
    monkeypatch.setattr(sequence, "MAX_BYTES", 20)
    with pytest.raises(DatasetError, match=r"bad\.txt: 60 bytes, more than the 20 this loader reads"):
        sequence.load_data(path)


def test_bundled_files_are_verified(monkeypatch):
    monkeypatch.setitem(sequence.BUNDLED, "addition.txt", "0" * 64)
    with pytest.raises(DatasetError, match=r"xpnet/datasets/data/addition\.txt: SHA-256 differs .* reinstall xpnet"):
        sequence.load_data("addition.txt")
