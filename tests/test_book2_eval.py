"""xpnet.book2.util.eval_perplexity and eval_seq2seq against the book's definitions, written
here as its loops (batches filled element by element; the printed lines)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from array_api_compat import array_namespace
from _checks import assert_on

from xpnet.backend import to_numpy
from xpnet.book2 import util


def _book_batches(corpus, batch_size, time_size):
    """The book's eval_perplexity batches, element by element."""
    n = len(corpus)
    max_iters = (n - 1) // (batch_size * time_size)
    jump = (n - 1) // batch_size
    for iters in range(max_iters):
        xs = np.zeros((batch_size, time_size), dtype=np.int64)
        ts = np.zeros((batch_size, time_size), dtype=np.int64)
        offsets = [iters * time_size + i * jump for i in range(batch_size)]
        for t in range(time_size):
            for i, offset in enumerate(offsets):
                xs[i, t] = corpus[(offset + t) % n]
                ts[i, t] = corpus[(offset + t + 1) % n]
        yield xs, ts


class _Recorder:
    """A language model whose loss is a function of its batch; records what it was given."""

    def __init__(self, device, takes_flag=True):
        self.params = [device.asarray(np.zeros(3, dtype=np.float32))]
        self.seen, self.flags, self.takes_flag = [], [], takes_flag

    def forward(self, xs, ts, **kwargs):
        if kwargs and not self.takes_flag:
            raise TypeError("forward() got an unexpected keyword argument 'train_flg'")
        self.flags.append(kwargs.get("train_flg"))
        self.seen.append((xs, ts))
        xp = array_namespace(xs)
        return xp.mean(xp.astype(ts, xp.float32)) / 10 + xp.mean(xp.astype(xs, xp.float32)) / 100


@pytest.mark.parametrize("batch_size, time_size", [(10, 35), (3, 4)])
def test_eval_perplexity_is_the_books(device, batch_size, time_size, capsys):
    corpus = np.random.default_rng(0).integers(0, 50, size=1000)
    model = _Recorder(device)
    ppl = util.eval_perplexity(model, corpus, batch_size, time_size)
    expected = list(_book_batches(corpus, batch_size, time_size))
    assert len(model.seen) == len(expected) == 999 // (batch_size * time_size)
    for (xs, ts), (bx, bt) in zip(model.seen, expected):
        assert_on(xs, device, shape=(batch_size, time_size))  # gathered on the model's device
        np.testing.assert_array_equal(to_numpy(xs), bx)
        np.testing.assert_array_equal(to_numpy(ts), bt)
    losses = [bt.mean() / 10 + bx.mean() / 100 for bx, bt in expected]
    assert isinstance(ppl, float)
    assert ppl == pytest.approx(math.exp(sum(losses) / len(losses)), rel=1e-5)
    assert model.flags == [False] * len(expected)  # evaluation mode when the model takes the flag
    assert capsys.readouterr().out.startswith("evaluating perplexity ...\n")


def test_eval_perplexity_without_train_flg_and_from_a_device_corpus(device):
    corpus = device.asarray(np.arange(100) % 7)
    model = _Recorder(device, takes_flag=False)
    ppl = util.eval_perplexity(model, corpus, batch_size=2, time_size=5)
    assert model.flags == [None] * 9
    assert ppl == pytest.approx(math.exp(np.mean([bt.mean() / 10 + bx.mean() / 100
                                                  for bx, bt in _book_batches(np.arange(100) % 7, 2, 5)])), rel=1e-5)


def test_eval_perplexity_errors():
    model = _Recorder(util.CPU)
    with pytest.raises(ValueError, match=r"corpus: 20 words make no batch of batch_size x time_size = 10 x 35"):
        util.eval_perplexity(model, np.arange(20))
    with pytest.raises(ValueError, match="batch_size: expected a positive int, got 0"):
        util.eval_perplexity(model, np.arange(20), batch_size=0)
    with pytest.raises(ValueError, match="corpus: expected a 1-D integer array of word ids"):
        util.eval_perplexity(model, np.zeros((400, 2), dtype=np.int64))

    class Broken(_Recorder):
        def forward(self, xs, ts, train_flg=True):
            raise TypeError("unsupported operand")

    with pytest.raises(TypeError, match="unsupported operand"):  # not mistaken for a missing flag
        util.eval_perplexity(Broken(util.CPU), np.arange(400))


class _Answers:
    """A seq2seq model that answers with fixed ids and records its arguments."""

    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def generate(self, xs, start_id, sample_size):
        self.calls.append((xs, start_id, sample_size))
        return list(self.answer)


ID_TO_CHAR = dict(enumerate("0123456789+_ "))


def _ids(text):
    return np.array([[{c: i for i, c in ID_TO_CHAR.items()}[c] for c in text]])


def test_eval_seq2seq_right_answer_prints_the_books_lines(capsys):
    question, correct = _ids("12+5 "), _ids("_17 ")
    model = _Answers(_ids("17 ")[0])
    assert util.eval_seq2seq(model, question, correct, ID_TO_CHAR, verbose=True) == 1
    assert model.calls[0][1:] == (11, 3)  # the start mark "_" and the answer's length
    assert capsys.readouterr().out == "Q 12+5 \nT 17 \n\033[92m☑\033[0m 17 \n---\n"


def test_eval_seq2seq_wrong_answer_reversed_question(capsys):
    model = _Answers(_ids("18 ")[0])
    assert util.eval_seq2seq(model, _ids(" 5+21"), _ids("_17 "), ID_TO_CHAR, True, True) == 0
    assert capsys.readouterr().out == "Q 12+5 \nT 17 \n\033[91m☒\033[0m 18 \n---\n"
    assert util.eval_seq2seq(model, _ids(" 5+21"), _ids("_18 "), ID_TO_CHAR) == 1
    assert capsys.readouterr().out == ""  # quiet unless verbose


def test_eval_seq2seq_windows_marks(monkeypatch, capsys):
    monkeypatch.setattr(util, "os", type("os", (), {"name": "nt"}))
    util.eval_seq2seq(_Answers(_ids("17 ")[0]), _ids("12+5 "), _ids("_17 "), ID_TO_CHAR, verbose=True)
    util.eval_seq2seq(_Answers(_ids("18 ")[0]), _ids("12+5 "), _ids("_17 "), ID_TO_CHAR, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "O 17 " and lines[6] == "X 18 "
