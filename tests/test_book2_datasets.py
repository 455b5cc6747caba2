"""The second book's datasets: the spiral's exact points, PTB (downloads, cache, offline
error) and the bundled text corpus."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from _idx_server import MirrorServer, sha256_of

from xpnet.datasets import DatasetError, download, ptb, spiral, text


def _book_spiral(seed):
    """The book's published algorithm, point after point (written here from its
    description: radius i/100, angle 4j + 4 i/100 + 0.2 randn(), legacy seeding)."""
    rs = np.random.RandomState(seed)
    x = np.zeros((300, 2))
    t = np.zeros((300, 3), dtype=int)
    for j in range(3):
        for i in range(100):
            rate = i / 100
            theta = j * 4.0 + 4.0 * rate + rs.randn() * 0.2
            x[100 * j + i] = [rate * np.sin(theta), rate * np.cos(theta)]
            t[100 * j + i, j] = 1
    return x, t


@pytest.mark.parametrize("seed", [1984, 7])
def test_spiral_is_the_books_bit_for_bit(seed):
    expected_x, expected_t = _book_spiral(seed)
    x, t = spiral.load_data(seed, dtype="float64")
    assert x.dtype == np.float64
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(t, expected_t)
    x32, _ = spiral.load_data(seed)
    np.testing.assert_array_equal(x32, expected_x.astype(np.float32))


def test_spiral_default_is_seed_1984_and_leaves_numpy_global_state_where_the_books_does():
    np.random.seed(123)
    x, _ = spiral.load_data(dtype="float64")
    after = np.random.rand(3)
    np.random.seed(1984)
    np.random.randn(300)  # the book draws one randn() per point
    np.testing.assert_array_equal(after, np.random.rand(3))
    np.testing.assert_array_equal(x, _book_spiral(1984)[0])
    np.testing.assert_allclose(x[[1, 150]], [[-0.000976986, 0.00995216], [-0.13912046, 0.48025566]], rtol=1e-6)


def test_spiral_seed_checked():
    with pytest.raises(ValueError, match="seed"):
        spiral.load_data(seed=-1)
    a, _ = spiral.load_data(seed=None)
    b, _ = spiral.load_data(seed=None)
    assert not np.array_equal(a, b)


# ----------------------------------------------------------------------------- PTB

TRAIN = b" the cat sat on the mat \n the dog sat \n"
VALID = b" the dog sat on the cat \n"
FILES = {"ptb.train.txt": TRAIN, "ptb.valid.txt": VALID, "ptb.test.txt": b" a mat \n"}


@pytest.fixture
def fake_ptb(monkeypatch):
    """The digests of the fake files replace the published ones; no proxy, no retry delay."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.delenv("XPNET_DATA", raising=False)
    monkeypatch.setattr(ptb, "PTB_SHA256", sha256_of(FILES))
    monkeypatch.setattr(download, "RETRY_DELAY", 0.0)
    return FILES


def _dead_mirror():
    """A base URL on 127.0.0.1 where nothing listens (a port just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/ptb/"


def test_ptb_downloads_verifies_and_caches(fake_ptb, tmp_path):
    with MirrorServer(fake_ptb).running() as server:
        server.modes["down"] = "404"
        corpus, word_to_id, id_to_word = ptb.load_data(
            "valid", data_dir=tmp_path, mirrors=[server.url("down"), server.url("up")], timeout=2, progress=False)
    # the vocabulary is the training file's, in order of first appearance; line breaks are <eos>
    assert word_to_id == {"the": 0, "cat": 1, "sat": 2, "on": 3, "mat": 4, "<eos>": 5, "dog": 6}
    assert id_to_word == {i: w for w, i in word_to_id.items()}
    assert corpus.dtype == np.int64
    np.testing.assert_array_equal(corpus, [0, 6, 2, 3, 0, 1, 5])
    assert sorted(p.name for p in tmp_path.iterdir()) == [".xpnet-files.json", "ptb.train.txt", "ptb.valid.npz",
                                                          "ptb.valid.txt"]  # the manifest of what xpnet wrote
    assert ("down", "ptb.train.txt") in server.requests and ("up", "ptb.valid.txt") in server.requests
    # later calls read the cache: no network, even with the text files gone
    for name in ("ptb.train.txt", "ptb.valid.txt"):
        (tmp_path / name).unlink()
    again, vocab, _ = ptb.load_data("val", data_dir=tmp_path, mirrors=[_dead_mirror()], timeout=1, progress=False)
    np.testing.assert_array_equal(again, corpus)
    assert vocab == word_to_id


def test_ptb_reads_files_placed_by_hand(fake_ptb, tmp_path):
    for name, data in fake_ptb.items():
        (tmp_path / name).write_bytes(data)
    corpus, word_to_id, _ = ptb.load_data("train", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(corpus, [0, 1, 2, 3, 0, 4, 5, 0, 6, 2, 5])
    word_to_id2, _ = ptb.load_vocab(data_dir=tmp_path, download=False)
    assert word_to_id2 == word_to_id
    with pytest.raises(DatasetError, match="'a' is not in the vocabulary"):
        ptb.load_data("test", data_dir=tmp_path, download=False)


def test_ptb_offline_fails_clearly(fake_ptb, tmp_path):
    with pytest.raises(DatasetError, match=r"(?s)PTB is not available.*no mirror delivered.*by hand.*load_corpus"):
        ptb.load_data("train", data_dir=tmp_path, mirrors=[_dead_mirror()], timeout=1, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == []
    with pytest.raises(DatasetError, match=r"downloading is off"):
        ptb.load_data("test", data_dir=tmp_path, download=False)


def test_ptb_rejects_a_wrong_file_and_leaves_it(fake_ptb, tmp_path):
    (tmp_path / "ptb.train.txt").write_bytes(b" not the train file \n")
    with pytest.raises(DatasetError, match="SHA-256 .* expected"):
        ptb.load_data("train", data_dir=tmp_path, download=False)
    assert (tmp_path / "ptb.train.txt").read_bytes() == b" not the train file \n"


def test_ptb_damaged_cache_is_rebuilt(fake_ptb, tmp_path):
    for name, data in fake_ptb.items():
        (tmp_path / name).write_bytes(data)
    ptb.load_data("train", data_dir=tmp_path, download=False)
    (tmp_path / "ptb.train.npz").write_bytes(b"not a zip")
    with pytest.warns(UserWarning, match="unreadable cache"):
        corpus, _, _ = ptb.load_data("train", data_dir=tmp_path, download=False)
    assert corpus.shape == (11,)


def test_ptb_arguments_checked():
    with pytest.raises(ValueError, match="data_type"):
        ptb.load_data("training")
    with pytest.raises(TypeError, match="mirrors"):
        ptb.load_data("train", mirrors="http://example.org/")


def test_ptb_published_digests():
    assert ptb.PTB_SHA256["ptb.train.txt"].startswith("fcea919f") and len(set(ptb.PTB_SHA256.values())) == 3


# ----------------------------------------------------------------------------- bundled corpus


def test_bundled_corpus_is_real_text_in_ptb_form():
    corpus, word_to_id, id_to_word = text.load_corpus()
    assert corpus.dtype == np.int64 and corpus.shape == (28826,)
    assert len(word_to_id) == 2607 and corpus.max() == 2606
    words = [id_to_word[i] for i in corpus[:8].tolist()]
    assert words == ["alice", "'s", "adventures", "in", "wonderland", "lewis", "carroll", "the"]
    counts = np.bincount(corpus)
    assert id_to_word[int(counts.argmax())] == "the" and counts[word_to_id["alice"]] == 398
    assert counts[word_to_id["<eos>"]] == 1628


def test_tokenize_as_ptb():
    assert text.tokenize("`Don't,' said Alice -- 42 times!  The White-Rabbit's.") == [
        "do", "n't", "said", "alice", "N", "times", "<eos>", "the", "white-rabbit", "'s", "<eos>"]
    with pytest.raises(TypeError, match="text"):
        text.tokenize(b"bytes")


def test_bundled_corpus_checked(monkeypatch):
    monkeypatch.setitem(text.CORPORA, "alice", ("alice29.txt.gz", "0" * 64))
    with pytest.raises(DatasetError, match="damaged"):
        text.load_corpus()
    with pytest.raises(ValueError, match="name"):
        text.load_corpus("ptb")
