"""The second book's ``common/util.py`` (chapters 2-4): text to word ids, co-occurrence
counts, PPMI, cosine similarity, contexts and targets, one-hot vectors; and for chapters 6-8,
a language model's perplexity (:func:`eval_perplexity`) and a seq2seq answer's check
(:func:`eval_seq2seq`).

``from common.util import preprocess`` becomes ``from xpnet.book2.util import preprocess``.
Every function that computes on arrays takes its namespace from them: a corpus on the
GPU gives a co-occurrence matrix on the GPU.  ``preprocess`` returns a host NumPy
array, as the book's does.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

import array_api_compat
from array_api_compat import array_namespace
from array_api_compat import device as array_device

from xpnet import progress
from xpnet.backend import CPU, device_of, get_device, to_numpy
from xpnet.book2.grads import clip_grads
from xpnet.checks import positive_int, real

__all__ = [
    "preprocess", "create_co_matrix", "cos_similarity", "most_similar", "ppmi",
    "create_contexts_target", "convert_one_hot", "analogy", "normalize", "clip_grads",
    "to_cpu", "to_gpu", "count_ids", "eval_perplexity", "eval_seq2seq",
]

Array = Any

#: Elements per block when a (V, V) result is built piece by piece (bounds the temporaries).
BLOCK = 1 << 22


def preprocess(text: str) -> tuple[Array, dict[str, int], dict[int, str]]:
    """Words of ``text`` as ids: ``(corpus, word_to_id, id_to_word)``.

    ``text`` is lower-cased, each ``.`` becomes a word of its own, and words are split
    at white space.  Ids are given in order of first appearance; ``corpus`` is a host
    NumPy int64 array (N,) of the ids of the words in order.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    words = text.lower().replace(".", " .").split()
    if not words:
        raise ValueError("text: expected at least one word, got only white space")
    word_to_id: dict[str, int] = {}
    for word in words:
        word_to_id.setdefault(word, len(word_to_id))
    id_to_word = {i: word for word, i in word_to_id.items()}
    corpus = CPU.xp.asarray([word_to_id[word] for word in words], dtype=CPU.xp.int64)
    return corpus, word_to_id, id_to_word


def count_ids(ids: Array, size: int) -> Array:
    """How often each of ``0..size-1`` occurs in the integer array ``ids``: int64 (size,).

    The Array API has no ``bincount`` and no scatter-add, so the ids are sorted and the
    count of ``k`` is where ``k + 1`` would be inserted minus where ``k`` would be
    (``searchsorted``), in blocks of :data:`BLOCK` values.
    """
    xp = array_namespace(ids)
    device = array_device(ids)
    flat = xp.sort(xp.astype(xp.reshape(ids, (-1,)), xp.int64))
    counts = []
    for start in range(0, size, BLOCK):
        stop = min(start + BLOCK, size)
        edges = xp.arange(start, stop + 1, dtype=xp.int64, device=device)
        where = xp.searchsorted(flat, edges, side="left")
        counts.append(where[1:] - where[:-1])
    return xp.concat(counts) if len(counts) > 1 else counts[0]


def create_co_matrix(corpus: Array, vocab_size: int, window_size: int = 1) -> Array:
    """The co-occurrence matrix (vocab_size, vocab_size) int32 of ``corpus`` (N,) word ids.

    Entry ``[w, c]`` counts the positions where word ``c`` stands within ``window_size``
    words left or right of word ``w``.  Built from counts of the (w, c) pairs
    (:func:`count_ids`), as the Array API has no scatter-add.
    """
    corpus, vocab_size = _corpus(corpus, vocab_size)
    window_size = positive_int("window_size", window_size)
    xp = array_namespace(corpus)
    ids = xp.astype(corpus, xp.int64)
    n = ids.shape[0]
    pairs = []
    for offset in range(1, min(window_size, n - 1) + 1):
        left, right = ids[:n - offset], ids[offset:]
        pairs += [left * vocab_size + right, right * vocab_size + left]
    if not pairs:
        return xp.zeros((vocab_size, vocab_size), dtype=xp.int32, device=array_device(ids))
    counts = count_ids(xp.concat(pairs), vocab_size * vocab_size)
    return xp.reshape(xp.astype(counts, xp.int32), (vocab_size, vocab_size))


def cos_similarity(x: Array, y: Array, eps: float = 1e-8) -> Array:
    """Cosine similarity of vector ``y`` (H,) with vector ``x`` (H,) (a 0-d array) or with
    each row of ``x`` (N, H) (an (N,) array).  ``eps`` keeps zero vectors finite.

    Integer inputs (counts) are computed in float64, as NumPy does.
    """
    xp = array_namespace(x, y)
    eps = real("eps", eps, low=0.0)
    if y.ndim != 1 or x.ndim not in (1, 2) or x.shape[-1] != y.shape[0]:
        raise ValueError(f"x, y: expected x (H,) or (N, H) and y (H,), got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = _floating(x), _floating(y)
    nx = x / (xp.sqrt(xp.sum(x ** 2, axis=-1, keepdims=True)) + eps)
    ny = y / (xp.sqrt(xp.sum(y ** 2)) + eps)
    return xp.matmul(nx, ny)


def most_similar(query: str, word_to_id: Mapping[str, int], id_to_word: Mapping[int, str],
                 word_matrix: Array, top: int = 5) -> list[tuple[str, float]] | None:
    """Print the ``top`` words whose rows of ``word_matrix`` (V, H) are closest to the
    query word's (cosine similarity), as the book does; return them as
    ``[(word, similarity), ...]``, or None (after saying so) when ``query`` is unknown.
    """
    top = positive_int("top", top)
    _check_matrix(word_matrix, id_to_word)
    if query not in word_to_id:
        print(f"{query} is not found")
        return None
    print("\n[query] " + query)
    similarity = cos_similarity(word_matrix, _floating(word_matrix)[word_to_id[query], :])
    return _print_top(similarity, id_to_word, top, skip=(query,))


def analogy(a: str, b: str, c: str, word_to_id: Mapping[str, int], id_to_word: Mapping[int, str],
            word_matrix: Array, top: int = 5, answer: str | None = None) -> list[tuple[str, float]] | None:
    """``a`` is to ``b`` as ``c`` is to ...?  Print the ``top`` words whose rows of
    ``word_matrix`` (V, H) (normalized rows, see :func:`normalize`) have the largest dot
    product with the normalized ``b - a + c``, skipping ``a``, ``b``, ``c`` and NaN
    scores, as the book does; with ``answer``, first print that word's score.  Return
    ``[(word, score), ...]``, or None (after saying so) when a word is unknown.
    """
    top = positive_int("top", top)
    _check_matrix(word_matrix, id_to_word)
    for word in (a, b, c) + (() if answer is None else (answer,)):
        if word not in word_to_id:
            print(f"{word} is not found")
            return None
    print(f"\n[analogy] {a}:{b} = {c}:?")
    xp = array_namespace(word_matrix)
    matrix = _floating(word_matrix)
    query = normalize(matrix[word_to_id[b], :] - matrix[word_to_id[a], :] + matrix[word_to_id[c], :])
    similarity = xp.matmul(matrix, query)
    if answer is not None:
        print(f"==>{answer}:{to_numpy(similarity[word_to_id[answer]])[()]}")
    return _print_top(similarity, id_to_word, top, skip=(a, b, c), skip_nan=True)


def ppmi(C: Array, verbose: bool = False, eps: float = 1e-8) -> Array:
    """Positive pointwise mutual information (V, V) float32 of the co-occurrence matrix ``C``.

    ``M[i, j] = max(0, log2(C[i, j] * N / (S[i] * S[j]) + eps))`` with ``N`` the sum of
    ``C`` and ``S`` its column sums, computed in float64; a word that co-occurs with
    nothing gets 0.  Vectorised, in row blocks of :data:`BLOCK` entries; ``verbose``
    prints the share done after each block.
    """
    xp = array_namespace(C)
    eps = real("eps", eps, low=0.0)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"C: expected a square co-occurrence matrix (V, V), got shape {tuple(C.shape)}")
    counts = xp.astype(C, xp.float64)
    if C.shape[0] == 0:  # no words: an empty matrix, as the book's loops give
        return xp.zeros((0, 0), dtype=xp.float32, device=array_device(C))
    if bool(xp.any(counts < 0)):
        raise ValueError("C: expected co-occurrence counts (>= 0), got a negative entry")
    total = xp.sum(counts)
    column = xp.sum(counts, axis=0)
    vocab_size = C.shape[0]
    step = max(1, BLOCK // max(1, vocab_size))
    blocks = []
    for start in range(0, vocab_size, step):
        stop = min(start + step, vocab_size)
        expected = column[start:stop, None] * column[None, :]
        known = expected > 0
        ratio = xp.where(known, counts[start:stop, :] * total / xp.where(known, expected, 1.0), 0.0)
        blocks.append(xp.astype(xp.maximum(xp.log2(ratio + eps), 0.0), xp.float32))  # not clip: a read on CuPy
        if verbose:
            print(f"{100 * stop / vocab_size:.1f}% done")
    return xp.concat(blocks, axis=0) if len(blocks) > 1 else blocks[0]


def create_contexts_target(corpus: Array, window_size: int = 1) -> tuple[Array, Array]:
    """``(contexts, target)`` of ``corpus`` (N,): ``target`` (N - 2w,) is every word with
    ``w = window_size`` words on each side, ``contexts`` (N - 2w, 2w) those words, left
    to right without the target.  Same namespace, device and dtype as ``corpus``.
    """
    corpus, _ = _corpus(corpus, None)
    window_size = positive_int("window_size", window_size)
    xp = array_namespace(corpus)
    n = corpus.shape[0]
    if n <= 2 * window_size:
        raise ValueError(f"corpus: expected more than 2 * window_size = {2 * window_size} words, got {n}")
    columns = [corpus[window_size + k:n - window_size + k] for k in range(-window_size, window_size + 1) if k]
    return xp.stack(columns, axis=1), xp.asarray(corpus[window_size:n - window_size], copy=True)


def convert_one_hot(corpus: Array, vocab_size: int) -> Array:
    """One-hot int32 vectors of word ids: (N,) -> (N, vocab_size), (N, C) -> (N, C, vocab_size)."""
    xp = array_namespace(corpus)
    if corpus.ndim not in (1, 2):
        raise ValueError(f"corpus: expected word ids of shape (N,) or (N, C), got shape {tuple(corpus.shape)}")
    _, vocab_size = _corpus(xp.reshape(corpus, (-1,)), vocab_size)
    words = xp.arange(vocab_size, dtype=corpus.dtype, device=array_device(corpus))
    return xp.astype(corpus[..., None] == words, xp.int32)


def normalize(x: Array) -> Array:
    """``x`` divided, IN PLACE as in the book, by its length (1-D) or each row by its
    length (2-D); returns ``x``.  A zero row becomes NaN (``analogy`` skips those)."""
    xp = array_namespace(x)
    if not xp.isdtype(x.dtype, "real floating") or x.ndim not in (1, 2):
        raise ValueError(f"x: expected a float vector (H,) or matrix (N, H), got {x.dtype} of shape {tuple(x.shape)}")
    if x.ndim == 2:
        x /= xp.sqrt(xp.sum(x * x, axis=1, keepdims=True))
    else:
        x /= xp.sqrt(xp.sum(x * x))
    return x


def to_cpu(x: Array) -> Array:
    """``x`` as a host NumPy array (``x`` itself when it is one already)."""
    return x if array_api_compat.is_numpy_array(x) else to_numpy(x)


def to_gpu(x: Array) -> Array:
    """``x`` on the first CUDA GPU (CuPy); :class:`xpnet.backend.DeviceError` without one."""
    return get_device("cuda").asarray(x)


def eval_perplexity(model: Any, corpus: Array, batch_size: int = 10, time_size: int = 35) -> float:
    """The perplexity of language ``model`` on ``corpus`` (N,): ``exp`` of the mean loss over
    ``(N - 1) // (batch_size * time_size)`` batches read as the book reads them (row ``i``
    from offset ``i * ((N - 1) // batch_size)`` on, ``time_size`` words a batch, wrapping).

    ``model.forward(xs, ts, train_flg=False)`` (or ``forward(xs, ts)`` when it takes no
    flag) returns the mean loss.  The corpus moves once to the device of ``model.params``;
    each batch is one gather there and the losses add up there, so the only host read is
    the result.  Prints the book's ``evaluating perplexity ...`` and a progress bar.
    """
    batch_size, time_size = positive_int("batch_size", batch_size), positive_int("time_size", time_size)
    params = getattr(model, "params", None)
    device = device_of(params[0]) if params else (device_of(corpus) if array_api_compat.is_array_api_obj(corpus)
                                                  else CPU)
    corpus, _ = _corpus(device.asarray(corpus), None)
    xp, n = device.xp, int(corpus.shape[0])
    max_iters = (n - 1) // (batch_size * time_size)
    if max_iters < 1:
        raise ValueError(f"corpus: {n} words make no batch of batch_size x time_size = {batch_size} x {time_size} "
                         f"(+1 for the targets); pass a longer corpus or smaller sizes")
    jump = (n - 1) // batch_size  # the index table is small: built on the host, moved once
    base = device.asarray([[i * jump + t for t in range(time_size + 1)] for i in range(batch_size)], dtype=xp.int64)
    print("evaluating perplexity ...")
    bar = progress.bar(max_iters, "perplexity", unit="batch")
    total = None
    for iters in range(max_iters):
        words = xp.reshape(xp.take(corpus, xp.reshape((base + iters * time_size) % n, (-1,))),
                           (batch_size, time_size + 1))  # one gather: inputs and targets together
        xs, ts = words[:, :-1], words[:, 1:]
        try:
            loss = model.forward(xs, ts, train_flg=False)
        except TypeError as exc:
            if "train_flg" not in str(exc):
                raise
            loss = model.forward(xs, ts)
        total = loss if total is None else total + loss
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return math.exp(float(total) / max_iters)


def eval_seq2seq(model: Any, question: Array, correct: Array, id_to_char: Mapping[int, str],
                 verbose: bool = False, is_reverse: bool = False) -> int:
    """1 when ``model.generate`` answers ``question`` (1, T) with ``correct`` (1, 1 + S), else 0.

    ``generate(question, start_id, S)`` returns the ``S`` ids (a list, as the book's models,
    or an array).
    ``correct[0, 0]`` is the decoder's start mark; the other ``S`` characters are compared.
    With ``verbose``, prints the book's lines: ``Q`` the question (read back when
    ``is_reverse``), ``T`` the answer, the guess after a green ☑ or a red ☒ (``O``/``X`` on
    Windows), and ``---``.
    """
    correct = to_numpy(correct).reshape(-1)
    start_id, correct = int(correct[0]), correct[1:]
    guess = model.generate(question, start_id, len(correct))
    if array_api_compat.is_array_api_obj(guess):  # a (1, S) array from a batched generate
        guess = to_numpy(guess).reshape(-1).tolist()
    question = "".join(id_to_char[int(c)] for c in to_numpy(question).reshape(-1))
    correct = "".join(id_to_char[int(c)] for c in correct)
    guess = "".join(id_to_char[int(c)] for c in guess)
    if verbose:
        if is_reverse:
            question = question[::-1]
        print("Q", question)
        print("T", correct)
        if os.name == "nt":
            mark = "O" if correct == guess else "X"
        else:
            mark = "\033[92m☑\033[0m" if correct == guess else "\033[91m☒\033[0m"
        print(mark + " " + guess)
        print("---")
    return 1 if guess == correct else 0


# ----------------------------------------------------------------------------- helpers


def _corpus(corpus: Array, vocab_size: int | None) -> tuple[Array, int]:
    """``corpus`` checked to be a 1-D integer array of ids in ``0..vocab_size-1``; returns it
    and ``vocab_size`` (checked positive; None: not checked against)."""
    if not array_api_compat.is_array_api_obj(corpus):
        raise TypeError(f"corpus: expected an array of word ids, got {type(corpus).__name__}")
    xp = array_namespace(corpus)
    if corpus.ndim != 1 or not xp.isdtype(corpus.dtype, "integral"):
        raise ValueError(f"corpus: expected a 1-D integer array of word ids, got {corpus.dtype} "
                         f"of shape {tuple(corpus.shape)}")
    if vocab_size is None:
        return corpus, 0
    vocab_size = positive_int("vocab_size", vocab_size)
    if corpus.shape[0] and (int(xp.min(corpus)) < 0 or int(xp.max(corpus)) >= vocab_size):
        raise ValueError(f"corpus: expected word ids in 0..{vocab_size - 1} (vocab_size={vocab_size}), "
                         f"got ids from {int(xp.min(corpus))} to {int(xp.max(corpus))}")
    return corpus, vocab_size


def _floating(x: Array) -> Array:
    """``x`` itself when it is real floating, else (counts) as float64."""
    xp = array_namespace(x)
    return x if xp.isdtype(x.dtype, "real floating") else xp.astype(x, xp.float64)


def _check_matrix(word_matrix: Array, id_to_word: Mapping[int, str]) -> None:
    if not array_api_compat.is_array_api_obj(word_matrix) or word_matrix.ndim != 2:
        raise ValueError("word_matrix: expected a 2-D array with one row per word")
    if word_matrix.shape[0] != len(id_to_word):
        raise ValueError(f"word_matrix: expected {len(id_to_word)} rows (one per word of id_to_word), "
                         f"got {word_matrix.shape[0]}")


def _print_top(similarity: Array, id_to_word: Mapping[int, str], top: int, skip: tuple[str, ...],
               skip_nan: bool = False) -> list[tuple[str, float]]:
    """Print and return the ``top`` best ``(word, score)`` of ``similarity``, passing over
    the words of ``skip`` (and NaN scores with ``skip_nan``), as the book's loops do."""
    found = []
    for i, value in _ranked(similarity, top + len(skip)):
        if (skip_nan and value != value) or id_to_word[i] in skip:
            continue
        print(f" {id_to_word[i]}: {value}")
        found.append((id_to_word[i], float(value)))
        if len(found) >= top:
            break
    return found


def _ranked(scores: Array, count: int) -> list[tuple[int, Any]]:
    """The ``count`` highest of ``scores`` (V,) as ``(index, host scalar)``, best first
    (ties: lower index first; NaN last).  Only these ``count`` values leave the device."""
    xp = array_namespace(scores)
    ordered = xp.where(xp.isnan(scores), -xp.inf, scores)
    order = xp.argsort(ordered, descending=True, stable=True)[:min(count, scores.shape[0])]
    indices = to_numpy(order).tolist()
    values = to_numpy(xp.take(scores, order))
    return [(i, values[k]) for k, i in enumerate(indices)]
