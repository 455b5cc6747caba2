"""A small real English corpus shipped with xpnet, in PTB's form, for chapters 2-4 offline.

``corpus, word_to_id, id_to_word = text.load_corpus()`` stands in for
``ptb.load_data("train")`` with no network: Lewis Carroll's *Alice's Adventures in
Wonderland* (1865, public domain; see ``xpnet/datasets/data/README.md``), 28,826 words
and a vocabulary of 2,607.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from importlib import resources

import numpy as np

from xpnet.datasets._common import DatasetError
from xpnet.datasets.ptb import EOS, vocabulary, words_to_corpus

__all__ = ["load_corpus", "tokenize", "CORPORA"]

#: Bundled corpora: name -> (file in ``xpnet/datasets/data``, SHA-256 of its uncompressed text).
CORPORA: dict[str, tuple[str, str]] = {
    "alice": ("alice29.txt.gz", "7467306ee0feed4971260f3c87421154a05be571d944e9cb021a5713700c38f0"),
}

# PTB's word forms: clitics split off ("do n't", "alice 's"), hyphenated words kept whole.
_TOKEN = re.compile(r"[a-z]+(?=n't)|n't|'[a-z]+|[a-z]+(?:-[a-z]+)*|[0-9]+")
_SENTENCE_END = re.compile(r"[.!?]+")


def load_corpus(name: str = "alice") -> tuple[np.ndarray, dict[str, int], dict[int, str]]:
    """``(corpus, word_to_id, id_to_word)`` of a bundled corpus, as ``ptb.load_data`` returns them.

    ``corpus`` is a host NumPy int64 array of word ids, ids in order of first appearance;
    the text is made PTB-like by :func:`tokenize`.  The bundled file is checked against
    its SHA-256 on every call.
    """
    if name not in CORPORA:
        raise ValueError(f"name: expected one of {sorted(CORPORA)}, got {name!r}")
    file_name, sha256 = CORPORA[name]
    source = f"xpnet/datasets/data/{file_name}"
    try:
        data = gzip.decompress((resources.files("xpnet.datasets") / "data" / file_name).read_bytes())
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{source}: cannot read the bundled corpus ({exc}); reinstall xpnet") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise DatasetError(f"{source}: SHA-256 {actual}, expected {sha256}: the installed package is damaged; "
                           "reinstall xpnet")
    words = tokenize(data.decode("ascii"))
    word_to_id = vocabulary(words)
    return words_to_corpus(words, word_to_id, source=source), word_to_id, {i: w for w, i in word_to_id.items()}


def tokenize(text: str) -> list[str]:
    """The words of ``text`` in PTB's style: lower case, no punctuation, numbers as ``N``,
    clitics split (``n't``, ``'s``), and ``<eos>`` after every sentence (``.``, ``!``, ``?``)."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    words = []
    for sentence in _SENTENCE_END.split(text.lower().replace("--", " ")):
        tokens = ["N" if token.isdigit() else token for token in _TOKEN.findall(sentence)]
        if tokens:
            words += tokens + [EOS]
    return words
