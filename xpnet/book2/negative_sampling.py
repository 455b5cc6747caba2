"""Chapter 4's word2vec building blocks: the negative sampler, ``EmbeddingDot`` and
``NegativeSamplingLoss`` (the book's ``ch04/negative_sampling_layer.py``).

``from negative_sampling_layer import NegativeSamplingLoss`` becomes
``from xpnet.book2.negative_sampling import NegativeSamplingLoss``; the chapter's own
file also runs unchanged on ``xpnet.book2.layers``.  The sampler draws on the device of
the targets it is given (its random numbers come from :class:`xpnet.backend.Generator`'s
device-side pool), so a training step copies nothing from the host.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace, is_array_api_obj
from array_api_compat import device as array_device

from xpnet.backend import Generator, device_of
from xpnet.book2.layers import Embedding, SigmoidWithLoss
from xpnet.book2.util import count_ids
from xpnet.checks import positive_int, real

__all__ = ["UnigramSampler", "EmbeddingDot", "NegativeSamplingLoss", "MAX_VOCAB"]

Array = Any
#: Word ids a corpus may use beyond its own length without an explicit ``vocab_size``.
MAX_VOCAB = 1 << 22


class UnigramSampler:
    """Draws negative examples: word ids with probability ``count ** power`` (normalised).

    ``corpus`` (N,) word ids (any backend); ``power`` 0.75 in the book flattens the
    distribution so rare words are drawn more often than their counts say.
    ``get_negative_sample(target)`` returns (B, ``sample_size``) int64 ids on the
    target's device: in each row ``sample_size`` DIFFERENT words, none of them that
    row's target (the book's CPU rule, here on every device).  Words that never occur
    in ``corpus`` are never drawn.  ``seed`` seeds the draws (None: from NumPy's global
    generator, so ``np.random.seed`` makes a book script repeatable).
    """

    def __init__(self, corpus: Array, power: float, sample_size: int, *, seed: int | None = None,
                 vocab_size: int | None = None) -> None:
        if not is_array_api_obj(corpus) or corpus.ndim != 1 or corpus.shape[0] == 0 \
                or not array_namespace(corpus).isdtype(corpus.dtype, "integral"):
            raise ValueError("corpus: expected a non-empty 1-D integer array of word ids")
        power = real("power", power, low=0.0)
        self.sample_size = positive_int("sample_size", sample_size)
        xp = array_namespace(corpus)
        if int(xp.min(corpus)) < 0:
            raise ValueError(f"corpus: expected word ids >= 0, got {int(xp.min(corpus))}")
        largest = int(xp.max(corpus))
        if vocab_size is not None:
            if largest >= positive_int("vocab_size", vocab_size):
                raise ValueError(f"corpus: word id {largest} is outside vocab_size {vocab_size}")
        elif largest >= max(corpus.shape[0], MAX_VOCAB):
            # the tables take 24 bytes per id up to the largest: a stray id of 2**33 would ask for 200 GB
            raise ValueError(f"corpus: word id {largest} is far beyond its {corpus.shape[0]} words (ids are "
                             f"expected < {max(corpus.shape[0], MAX_VOCAB)}); pass vocab_size= if it is meant")
        self.vocab_size = largest + 1 if vocab_size is None else vocab_size
        counts = count_ids(corpus, self.vocab_size)
        seen = int(xp.sum(xp.astype(counts > 0, xp.int64)))
        if self.sample_size > seen - 1:
            raise ValueError(f"sample_size: expected at most {seen - 1} (the corpus has {seen} different words, "
                             f"one of which is the target), got {self.sample_size}")
        if power * math.log(int(xp.max(counts))) < 600:  # the book's weights: count ** power
            weights = xp.where(counts > 0, xp.astype(counts, xp.float64) ** power, 0.0)
        else:  # they would overflow: the same ratios, through logs
            logs = xp.log(xp.astype(xp.maximum(counts, 1), xp.float64))
            weights = xp.where(counts > 0, xp.exp(power * (logs - xp.max(logs))), 0.0)
        drawable = int(xp.sum(xp.astype(weights > 0, xp.int64)))
        if self.sample_size > drawable - 1:
            raise ValueError(f"power: {power:g} leaves {drawable} word(s) a probability that is not 0 "
                             f"(counts ** power underflows), fewer than sample_size + 1 = {self.sample_size + 1}; "
                             "use a smaller power (the book's is 0.75)")
        self.word_p = weights / xp.sum(weights)
        self._cdf = xp.cumulative_sum(self.word_p)
        self._rng = Generator(seed)

    def get_negative_sample(self, target: Array) -> Array:
        """(B, sample_size) int64 negative word ids for ``target`` (B,), on its device."""
        xp = array_namespace(target)
        if target.ndim != 1 or not xp.isdtype(target.dtype, "integral"):
            raise ValueError(f"target: expected a 1-D integer array of word ids, got {target.dtype} "
                             f"of shape {tuple(target.shape)}")
        device = device_of(target)
        if device_of(self._cdf) != device:  # once, when the model moves: tables follow the targets
            self._cdf, self.word_p = device.asarray(self._cdf), device.asarray(self.word_p)
        with device.activate():
            return self._draw(xp, xp.astype(target, xp.int64), device)

    def _draw(self, xp: Any, target: Array, device: Any) -> Array:
        """Successive sampling without replacement, one column at a time.

        Column j draws from ``word_p`` with the target and columns 0..j-1 (the set E)
        removed: a uniform ``x`` over the remaining mass is mapped to the full CDF as
        ``y = x + S(i)``, ``S(i)`` the removed mass at ids <= i, found by the fixed-point
        iteration ``i <- searchsorted(cdf, x + S(i))``, which reaches the drawn id after
        at most |E| steps.  Fixed shapes and step counts: no host round trip.
        """
        batch = target.shape[0]
        uniforms = self._rng.uniform((batch, self.sample_size), dtype="float64", device=device)
        removed, removed_p = [target], [xp.take(self.word_p, target)]
        for j in range(self.sample_size):
            ids, masses = xp.stack(removed, axis=1), xp.stack(removed_p, axis=1)
            x = uniforms[:, j] * (self._cdf[-1] - xp.sum(masses, axis=1))
            drawn = self._search(xp, x)
            for _ in range(len(removed)):
                below = xp.sum(xp.where(ids <= drawn[:, None], masses, 0.0), axis=1)
                drawn = self._search(xp, x + below)
            removed.append(drawn)
            removed_p.append(xp.take(self.word_p, drawn))
        return xp.stack(removed[1:], axis=1)

    def _search(self, xp: Any, y: Array) -> Array:
        # xp.minimum, not array-api-compat's one-bound clip: on CuPy that reads a mask count back
        return xp.minimum(xp.searchsorted(self._cdf, y, side="right"), self.vocab_size - 1)


class EmbeddingDot:
    """Score of each row of ``h`` (B, H) against the embedding row of its word:
    ``forward(h, idx) -> (B,)`` with ``idx`` (B,) word ids; ``W`` (V, H) is shared."""

    def __init__(self, W: Array) -> None:
        self.embed = Embedding(W)
        self.params = self.embed.params
        self.grads = self.embed.grads
        self.cache = None

    def forward(self, h: Array, idx: Array) -> Array:
        xp = array_namespace(h)
        target_W = self.embed.forward(idx)
        out = xp.sum(target_W * h, axis=1)
        self.cache = (h, target_W)
        return out

    def backward(self, dout: Array) -> Array:
        h, target_W = self.cache
        dout = array_namespace(dout).reshape(dout, (dout.shape[0], 1))
        self.embed.backward(dout * h)
        dh = dout * target_W
        return dh


class NegativeSamplingLoss:
    """Binary cross-entropy of the true word (label 1) and ``sample_size`` sampled wrong
    words (label 0) per row: ``forward(h, target) -> loss`` (0-d), ``backward(dout=1) -> dh``.

    ``W`` (V, H) is the output embedding, shared by the ``sample_size + 1`` EmbeddingDot
    layers (``params`` lists it that often, as in the book: the Trainer merges them).
    ``seed`` seeds the sampler.
    """

    def __init__(self, W: Array, corpus: Array, power: float = 0.75, sample_size: int = 5, *,
                 seed: int | None = None) -> None:
        self.sample_size = positive_int("sample_size", sample_size)
        self.sampler = UnigramSampler(corpus, power, sample_size, seed=seed)
        self.loss_layers = [SigmoidWithLoss() for _ in range(sample_size + 1)]
        self.embed_dot_layers = [EmbeddingDot(W) for _ in range(sample_size + 1)]
        self.params, self.grads = [], []
        for layer in self.embed_dot_layers:
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, h: Array, target: Array) -> Array:
        xp = array_namespace(h)
        batch_size = target.shape[0]
        negative_sample = self.sampler.get_negative_sample(target)

        score = self.embed_dot_layers[0].forward(h, target)
        correct_label = xp.ones(batch_size, dtype=xp.int32, device=array_device(h))
        loss = self.loss_layers[0].forward(score, correct_label)

        negative_label = xp.zeros(batch_size, dtype=xp.int32, device=array_device(h))
        for i in range(self.sample_size):
            score = self.embed_dot_layers[1 + i].forward(h, negative_sample[:, i])
            loss = loss + self.loss_layers[1 + i].forward(score, negative_label)
        return loss

    def backward(self, dout: Any = 1) -> Array:
        dh = 0
        for loss_layer, embed_dot in zip(self.loss_layers, self.embed_dot_layers):
            dscore = loss_layer.backward(dout)
            dh = dh + embed_dot.backward(dscore)
        return dh
