"""``xpnet.book2.util``: the second book's text helpers, on every backend, against
references written here as plain loops (the book's definitions)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _checks import assert_on

from xpnet.backend import to_numpy
from xpnet.book2 import util

TEXT = "You say goodbye and I say hello."


def _reference_co_matrix(corpus, vocab_size, window_size):
    """The book's definition, one pair at a time."""
    counts = np.zeros((vocab_size, vocab_size), dtype=np.int64)
    for i, word in enumerate(corpus):
        for offset in range(1, window_size + 1):
            if i - offset >= 0:
                counts[word, corpus[i - offset]] += 1
            if i + offset < len(corpus):
                counts[word, corpus[i + offset]] += 1
    return counts


def _reference_ppmi(C, eps=1e-8):
    total, column = C.sum(), C.sum(axis=0)
    out = np.zeros(C.shape)
    for i in range(C.shape[0]):
        for j in range(C.shape[1]):
            if column[i] * column[j]:
                out[i, j] = max(0.0, np.log2(C[i, j] * total / (column[i] * column[j]) + eps))
    return out


def _random_corpus(n=300, vocab_size=23, seed=0):
    return np.random.default_rng(seed).integers(0, vocab_size, size=n)


def test_preprocess_matches_the_book_example():
    corpus, word_to_id, id_to_word = util.preprocess(TEXT)
    assert isinstance(corpus, np.ndarray) and corpus.dtype == np.int64
    np.testing.assert_array_equal(corpus, [0, 1, 2, 3, 4, 1, 5, 6])
    assert word_to_id == {"you": 0, "say": 1, "goodbye": 2, "and": 3, "i": 4, "hello": 5, ".": 6}
    assert id_to_word == {i: w for w, i in word_to_id.items()}
    # white space of any kind separates words (the book's split(" ") made "" words of double spaces)
    assert util.preprocess("a  b\nc.")[1] == {"a": 0, "b": 1, "c": 2, ".": 3}


@pytest.mark.parametrize("bad, error", [(3, TypeError), ("  \n", ValueError)])
def test_preprocess_rejects(bad, error):
    with pytest.raises(error, match="text"):
        util.preprocess(bad)


@pytest.mark.parametrize("window_size", [1, 2, 5])
def test_co_matrix_counts_pairs_as_the_book(device, window_size):
    host = _random_corpus()
    corpus = device.asarray(host)
    C = util.create_co_matrix(corpus, 23, window_size=window_size)
    assert_on(C, device, dtype=device.xp.int32, shape=(23, 23))
    np.testing.assert_array_equal(to_numpy(C), _reference_co_matrix(host, 23, window_size))


def test_co_matrix_of_the_book_example_and_small_corpora(device):
    corpus, word_to_id, _ = util.preprocess(TEXT)
    C = to_numpy(util.create_co_matrix(device.asarray(corpus), len(word_to_id)))
    np.testing.assert_array_equal(C[1], [1, 0, 1, 0, 1, 1, 0])  # "say" next to you, goodbye, i, hello
    one = util.create_co_matrix(device.asarray(np.array([2])), 3, window_size=3)
    np.testing.assert_array_equal(to_numpy(one), np.zeros((3, 3)))
    # a window wider than the corpus counts every pair once per direction
    np.testing.assert_array_equal(to_numpy(util.create_co_matrix(device.asarray(np.array([0, 1, 0])), 2, 9)),
                                  [[2, 2], [2, 0]])


def test_count_ids_over_several_blocks(device, monkeypatch):
    monkeypatch.setattr(util, "BLOCK", 7)
    host = _random_corpus(200, 30, seed=3)
    counts = util.count_ids(device.asarray(host), 30)
    np.testing.assert_array_equal(to_numpy(counts), np.bincount(host, minlength=30))


@pytest.mark.parametrize("args, match", [
    ((np.array([0, 3]), 3), "ids in 0..2"),
    ((np.array([-1, 0]), 3), "ids in 0..2"),
    ((np.array([[0, 1]]), 3), "1-D integer"),
    ((np.array([0.0, 1.0]), 3), "1-D integer"),
    ((np.array([0, 1]), 0), "vocab_size"),
    (([0, 1], 3), "array of word ids"),
])
def test_co_matrix_rejects_bad_input(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        util.create_co_matrix(*args)
    with pytest.raises(ValueError, match="window_size"):
        util.create_co_matrix(np.array([0, 1]), 2, window_size=0)


def test_cos_similarity(device):
    xp = device.xp
    x = device.asarray([1.0, 2.0, 2.0], dtype="float64")
    y = device.asarray([2.0, 0.0, 1.0], dtype="float64")
    value = util.cos_similarity(x, y)
    assert_on(value, device, dtype=xp.float64, shape=())
    assert float(value) == pytest.approx(4.0 / (3.0 * 5 ** 0.5))
    rows = util.cos_similarity(xp.stack([x, y, 0.0 * x]), y)
    np.testing.assert_allclose(to_numpy(rows), [4.0 / (3.0 * 5 ** 0.5), 1.0, 0.0], rtol=1e-7)
    counts = device.asarray(np.array([0, 1, 0, 0, 0, 0, 0]))  # integer counts: computed in float64
    assert float(util.cos_similarity(counts, counts)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="x, y"):
        util.cos_similarity(x, xp.stack([y, y]))


def test_most_similar_prints_as_the_book(device, capsys):
    corpus, word_to_id, id_to_word = util.preprocess(TEXT)
    C = util.create_co_matrix(device.asarray(corpus), len(word_to_id))
    found = util.most_similar("you", word_to_id, id_to_word, C, top=5)
    lines = capsys.readouterr().out.splitlines()
    book = ["", "[query] you", " goodbye: 0.7071067691154799", " i: 0.7071067691154799",
            " hello: 0.7071067691154799", " say: 0.0", " and: 0.0"]
    if device.name == "cpu":
        assert lines == book  # NumPy, the book's own backend: the book's very digits
    assert [line.split(":")[0] for line in lines] == [line.split(":")[0] for line in book]
    np.testing.assert_allclose([float(line.split(": ")[1]) for line in lines[2:]], [0.5 ** 0.5] * 3 + [0.0] * 2,
                               rtol=1e-7)
    assert [w for w, _ in found] == ["goodbye", "i", "hello", "say", "and"]
    assert util.most_similar("cat", word_to_id, id_to_word, C) is None
    assert capsys.readouterr().out == "cat is not found\n"
    with pytest.raises(ValueError, match="7 rows"):
        util.most_similar("you", word_to_id, id_to_word, C[:3, :])


def test_ppmi_matches_the_definition(device, monkeypatch):
    host = _reference_co_matrix(_random_corpus(400, 15, seed=1), 15, 2)
    host[3, :] = host[:, 3] = 0  # a word that co-occurs with nothing
    expected = _reference_ppmi(host)
    M = util.ppmi(device.asarray(host))
    assert_on(M, device, dtype=device.xp.float32, shape=(15, 15))
    np.testing.assert_allclose(to_numpy(M), expected, rtol=1e-6, atol=1e-6)
    monkeypatch.setattr(util, "BLOCK", 40)  # blocks of 2 rows, with progress lines
    np.testing.assert_allclose(to_numpy(util.ppmi(device.asarray(host), verbose=True)), expected, rtol=1e-6,
                               atol=1e-6)
    with pytest.raises(ValueError, match="square"):
        util.ppmi(device.asarray(host[:3, :]))


def test_ppmi_verbose_progress(capsys, monkeypatch):
    monkeypatch.setattr(util, "BLOCK", 8)
    util.ppmi(np.ones((4, 4), dtype=np.int32), verbose=True)
    assert capsys.readouterr().out.splitlines() == ["50.0% done", "100.0% done"]


def test_contexts_target(device):
    corpus, _, _ = util.preprocess(TEXT)
    contexts, target = util.create_contexts_target(device.asarray(corpus), window_size=1)
    assert_on(contexts, device, dtype=device.xp.int64, shape=(6, 2))
    np.testing.assert_array_equal(to_numpy(contexts), [[0, 2], [1, 3], [2, 4], [3, 1], [4, 5], [1, 6]])
    np.testing.assert_array_equal(to_numpy(target), [1, 2, 3, 4, 1, 5])
    contexts, target = util.create_contexts_target(device.asarray(np.arange(7)), window_size=2)
    np.testing.assert_array_equal(to_numpy(contexts), [[0, 1, 3, 4], [1, 2, 4, 5], [2, 3, 5, 6]])
    np.testing.assert_array_equal(to_numpy(target), [2, 3, 4])
    with pytest.raises(ValueError, match="more than 2"):
        util.create_contexts_target(device.asarray(np.arange(4)), window_size=2)


def test_convert_one_hot(device):
    xp = device.xp
    one_hot = util.convert_one_hot(device.asarray(np.array([1, 0, 2])), 4)
    assert_on(one_hot, device, dtype=xp.int32, shape=(3, 4))
    np.testing.assert_array_equal(to_numpy(one_hot), np.eye(4, dtype=np.int32)[[1, 0, 2]])
    two = util.convert_one_hot(device.asarray(np.array([[0, 2], [3, 1]])), 4)
    np.testing.assert_array_equal(to_numpy(two), np.eye(4, dtype=np.int32)[[[0, 2], [3, 1]]])
    with pytest.raises(ValueError, match="ids in 0..3"):
        util.convert_one_hot(device.asarray(np.array([4])), 4)


def test_normalize_in_place_as_the_book(device):
    x = device.asarray([[3.0, 4.0], [0.0, 2.0]], dtype="float32")
    out = util.normalize(x)
    assert out is x
    np.testing.assert_allclose(to_numpy(x), [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)
    v = device.asarray([1.0, 1.0], dtype="float64")
    np.testing.assert_allclose(to_numpy(util.normalize(v)), [2 ** -0.5] * 2)
    with pytest.raises(ValueError, match="float vector"):
        util.normalize(device.asarray(np.array([1, 2])))


def test_analogy(device, capsys):
    words = ["king", "man", "queen", "woman", "zero"]
    word_to_id = {w: i for i, w in enumerate(words)}
    id_to_word = dict(enumerate(words))
    matrix = device.asarray([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0],
                             [0.0, 0.0, 0.0]], dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        matrix = util.normalize(matrix)  # the zero row becomes NaN (0 / 0) and is skipped
    rows = to_numpy(matrix)
    query = rows[0] - rows[1] + rows[3]
    scores = rows @ (query / np.linalg.norm(query))  # queen 0.9586, then the question's words, NaN
    found = util.analogy("man", "king", "woman", word_to_id, id_to_word, matrix, top=2, answer="queen")
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["", "[analogy] man:king = woman:?"]
    assert lines[2].startswith("==>queen:") and float(lines[2][9:]) == pytest.approx(scores[2])
    assert [line.split(":")[0] for line in lines[3:]] == [" queen"]  # only one word is left
    assert found == [("queen", pytest.approx(scores[2]))]
    assert util.analogy("man", "king", "cat", word_to_id, id_to_word, matrix) is None
    assert capsys.readouterr().out == "cat is not found\n"


def test_to_cpu():
    x = np.arange(3)
    assert util.to_cpu(x) is x
    strict = pytest.importorskip("array_api_strict")
    np.testing.assert_array_equal(util.to_cpu(strict.asarray([1, 2])), [1, 2])
