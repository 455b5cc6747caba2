"""The books' chapter scripts run on xpnet with their imports changed only (tests/book_scripts.py).

One chapter runs in one process; each script is one test that checks it ran and, where the
book prints a value worth checking, that value.  Skipped when ``shared/books`` is absent.
"""

from __future__ import annotations

import re

import pytest

import book_scripts as bs

pytestmark = pytest.mark.skipif(bs.SHARED is None, reason="shared/books not found (<repo>/../shared, $XPNET_SHARED)")

#: What a script prints, checked: a regular expression, or (pattern, low, high) for the number
#: each match's group 1 must lie in.  The book's own numbers where the data is the book's
#: (NumPy seeded 0, as the harness seeds it); ranges where the harness cut the training.
EXPECT: dict[str, list] = {
    "book1/ch03/mnist_show.py": [r"^7\n\(784,\)\n\(28, 28\)"],  # the first test digit: the sample's
    "book1/ch03/neuralnet_mnist.py": [r"Accuracy:0\.932\n"],  # sample_weight.pkl, first 1,000 test digits
    "book1/ch03/neuralnet_mnist_batch.py": [r"Accuracy:0\.9352\n"],  # the book's number, all 10,000
    "book1/ch04/gradient_simplenet.py": [(r"(-?\d\.\d+)", -1.0, 1.0)],
    "book1/ch05/gradient_check.py": [(r"^[Wb][12]:(\S+)$", 0.0, 1e-6)],
    "book1/ch08/half_float_network.py": [(r"^(0\.\d+|1\.0)$", 0.97, 1.0)],  # pretrained, float64 and float16
    "book1/ch08/misclassified_mnist.py": [(r"test accuracy:(\S+)", 0.97, 1.0)],
    "book2/ch01/show_spiral_dataset.py": [r"x \(300, 2\)\nt \(300, 3\)"],
    "book2/ch01/train.py": [(r"\| loss (\S+)", 0.5, 1.5)],
    "book2/ch02/count_method_small.py": [r"\[0 1 0 0 0 0 0\]\n\[0\.    1\.807 0\.    0\.    0\.    0\.    0\.   \]"],
    "book2/ch02/similarity.py": [r"^0\.70710676\d*$"],
    "book2/ch02/most_similar.py": [r"\[query\] you\n goodbye: 0\.70710676\d*\n i: 0\.70710676"],
    "book2/ch02/show_ptb.py": [r"corpus size: 929589", r"id_to_word\[0\]: aer", r"word_to_id\['car'\]: 3856",
                               r"word_to_id\['happy'\]: 4428", r"word_to_id\['lexus'\]: 7426"],
    "book2/ch05/train.py": [(r"perplexity (\S+)", 250.0, 450.0)],
    # the anchor: the book's code, seeded 0, starts at 401.4
    "book2/ch05/train_custom_loop.py": [r"corpus size: 1000, vocabulary size: 418", r"\| epoch 1 \| perplexity 401\.41\n"],
    "book2/ch06/clip_grads.py": [r"after: \[1\.04281733 1\.35895319"],
    "book2/ch06/train_rnnlm.py": [(r"test perplexity:\s+(\S+)", 100.0, 10000.0)],
    "book2/ch06/eval.py": [(r"test perplexity:\s+(\S+)", 100.0, 10000.0)],
    "book2/ch06/train_better_rnnlm.py": [(r"(?:valid|test) perplexity:\s+(\S+)", 100.0, 10000.0)],
    "book2/ch07/show_addition_dataset.py": [r"\(45000, 7\) \(45000, 5\)\n\(5000, 7\) \(5000, 5\)",
                                            r"\[ 3  0  2  0  0 11  5\]\n\[ 6  0 11  7  5\]\n71\+118 \n_189 "],
    "book2/ch07/train_seq2seq.py": [r"Q 77\+85  \nT 162 ", (r"val acc (\S+)%", 0.0, 100.0)],
    "book2/ch08/train.py": [r"Q 10/15/94 +\nT 1994-10-15\n", (r"val acc (\S+)%", 0.0, 100.0)],
}


@pytest.fixture(scope="session")
def book_runs(tmp_path_factory):
    """Runs a book's scripts on demand, once, in a copy shared by the session."""
    tmp = tmp_path_factory.mktemp("books")
    data = bs.make_data(tmp)
    done: dict[str, dict] = {}

    def run(book: str) -> dict:
        if book not in done:
            done[book] = bs.run_book(bs.make_root(tmp, book), data, book)
        return done[book]

    return run


SCRIPTS = [f"{chapter}/{name}" for chapter, names in bs.ORDER.items() for name in names]


@pytest.mark.parametrize("script", SCRIPTS)
def test_book_script_runs(book_runs, script):
    if script in bs.SKIP:
        pytest.skip(bs.SKIP[script])
    result = book_runs(script.split("/")[0])[script]
    assert result["ok"], f"{script} failed:\n{result['error']}\n--- output:\n{result['output'][-2000:]}"
    output = result["output"]
    for expected in EXPECT.get(script, []):
        if isinstance(expected, str):
            assert re.search(expected, output, re.M), f"{script}: {expected!r} not in its output:\n{output[-2000:]}"
            continue
        pattern, low, high = expected
        values = [float(v) for v in re.findall(pattern, output, re.M)]
        assert values, f"{script}: {pattern!r} not in its output:\n{output[-2000:]}"
        assert all(low <= v <= high for v in values), f"{script}: {pattern!r} gave {values}, expected {low}..{high}"


def test_a_changed_script_fails_loudly():
    """A cut whose text is no longer in the script stops the run instead of running it long."""
    table = {"book2/ch05/train.py": [("max_epoch = 100", "max_epoch = 2", 1)]}
    assert bs.apply("x = 1\nmax_epoch = 100\n", "book2/ch05/train.py", table) == "x = 1\nmax_epoch = 2\n"
    with pytest.raises(AssertionError, match=r"book2/ch05/train.py: expected 'max_epoch = 100' 1 time\(s\), found 0"):
        bs.apply("max_epoch = 50\n", "book2/ch05/train.py", table)


def test_every_cut_matches_the_books_text():
    for table in (bs.CUTS, bs.FIXES):
        for script in table:
            text = (bs.SHARED / "books" / script).read_text(encoding="utf-8")
            bs.apply(text, script, table)  # raises when a script changed


def test_shared_is_found_from_the_environment(monkeypatch, tmp_path):
    (tmp_path / "books").mkdir()
    monkeypatch.setattr(bs, "REPO", tmp_path / "nowhere" / "repo")
    monkeypatch.setenv("XPNET_SHARED", str(tmp_path))
    assert bs.find_shared() == tmp_path
