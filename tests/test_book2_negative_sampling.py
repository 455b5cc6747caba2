"""Chapter 4's negative sampling: the sampler's law, its seeds and devices, and the
float64 gradients of EmbeddingDot and NegativeSamplingLoss (draws fixed)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _checks import assert_grad_close, assert_on

from xpnet import backend
from xpnet.backend import to_numpy
from xpnet.book2.layers import Embedding
from xpnet.book2.negative_sampling import EmbeddingDot, NegativeSamplingLoss, UnigramSampler
from xpnet.book2.optimizer import Adam
from xpnet.book2.trainer import Trainer
from xpnet.book2.util import create_contexts_target

# word 0 five times, word 1 three times, ... (ids 0..5), and id 6 never
CORPUS = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 4, 5, 0, 2])


def _successive_law(p, target, size):
    """Exact probabilities of ordered draws without replacement, target removed."""
    q = p.copy()
    q[target] = 0.0
    law = {}
    for draw in itertools.permutations(np.flatnonzero(q), size):
        prob, left = 1.0, q.copy()
        for word in draw:
            prob *= left[word] / left.sum()
            left[word] = 0.0
        law[draw] = prob
    return law


def test_word_p_follows_the_power():
    sampler = UnigramSampler(CORPUS, 0.75, 2, seed=0)
    counts = np.bincount(CORPUS).astype(float)
    np.testing.assert_allclose(to_numpy(sampler.word_p), counts ** 0.75 / (counts ** 0.75).sum())
    assert sampler.vocab_size == 6 and sampler.sample_size == 2


def test_draws_follow_sampling_without_replacement():
    """40,000 rows of 2 draws for target 2: every ordered pair within 4.5 sigma of its
    exact probability (the book's CPU rule: p with the target removed, no repeats)."""
    sampler = UnigramSampler(CORPUS, 0.75, 2, seed=11)
    n = 40000
    draws = to_numpy(sampler.get_negative_sample(np.full(n, 2)))
    law = _successive_law(to_numpy(sampler.word_p), 2, 2)
    observed = {pair: 0 for pair in law}
    for pair in map(tuple, draws.tolist()):
        observed[pair] += 1  # a KeyError here: a repeat or the target was drawn
    for pair, prob in law.items():
        sigma = (n * prob * (1 - prob)) ** 0.5
        assert abs(observed[pair] - n * prob) < 4.5 * sigma + 1, (pair, observed[pair], n * prob)


def test_rows_never_hold_the_target_or_a_repeat(device):
    rng = np.random.default_rng(5)
    corpus = np.minimum(rng.zipf(1.3, size=3000), 60) - 1  # skewed: a few words dominate
    sampler = UnigramSampler(device.asarray(corpus), 0.75, 8, seed=2)
    target = device.asarray(rng.integers(0, 10, size=500))
    draws = sampler.get_negative_sample(target)
    assert_on(draws, device, dtype=device.xp.int64, shape=(500, 8))
    host, targets = to_numpy(draws), to_numpy(target)
    assert all(len(set(row)) == 8 for row in host.tolist())
    assert not (host == targets[:, None]).any()
    counts = np.bincount(corpus, minlength=60)
    assert (counts[host] > 0).all()  # ids that never occur are never drawn


def test_same_seed_same_draws_on_every_backend(device):
    target = np.array([0, 1, 2, 3, 4, 5, 0, 1])
    expected = to_numpy(UnigramSampler(CORPUS, 0.75, 3, seed=4).get_negative_sample(target))
    sampler = UnigramSampler(device.asarray(CORPUS), 0.75, 3, seed=4)
    np.testing.assert_array_equal(to_numpy(sampler.get_negative_sample(device.asarray(target))), expected)
    again = to_numpy(sampler.get_negative_sample(device.asarray(target)))
    assert not np.array_equal(again, expected)
    other = UnigramSampler(CORPUS, 0.75, 3, seed=5).get_negative_sample(target)
    assert not np.array_equal(to_numpy(other), expected)


def test_tables_follow_the_targets_to_their_device(device):
    """A host corpus (as the book's ch04 train.py passes it) and targets on the device:
    the sampler's tables move once, and its draws land on the targets' device."""
    sampler = UnigramSampler(CORPUS, 0.75, 2, seed=0)
    draws = sampler.get_negative_sample(device.asarray(np.array([1, 2])))
    assert_on(draws, device, dtype=device.xp.int64, shape=(2, 2))
    assert_on(sampler.word_p, device, dtype=device.xp.float64)


def test_steps_leave_the_device_never(device, monkeypatch):
    """After the first call, drawing makes no host-to-device copy and no device-to-host
    read (array_api_strict arrays are made to refuse bool/int/float conversion)."""
    if device.xp is backend.CPU.xp:
        pytest.skip("NumPy computes on the host: there is no device to copy to")
    sampler = UnigramSampler(device.asarray(CORPUS), 0.75, 3, seed=0)
    target = device.asarray(np.array([0, 1, 2, 3]))
    sampler.get_negative_sample(target)
    copies = []
    original = backend.Device._from_host
    monkeypatch.setattr(backend.Device, "_from_host", lambda self, host: copies.append(host.shape) or original(self, host))
    if device.name.startswith("array_api_strict"):
        def refuse(self, *args):
            raise AssertionError("a device array was read on the host")

        for name in ("__bool__", "__int__", "__float__", "__index__"):
            monkeypatch.setattr(type(target), name, refuse)
    for _ in range(20):
        sampler.get_negative_sample(target)
    assert copies == []


@pytest.mark.parametrize("args, match", [
    ((np.array([0, 1, 1]), 0.75, 2), "at most 1"),
    ((np.array([0.0, 1.0]), 0.75, 1), "integer array"),
    ((np.array([-1, 1, 2]), 0.75, 1), ">= 0"),
    ((CORPUS, -1.0, 1), "power"),
    ((CORPUS, 0.75, 0), "sample_size"),
])
def test_sampler_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        UnigramSampler(*args)
    with pytest.raises(ValueError, match="target"):
        UnigramSampler(CORPUS, 0.75, 1).get_negative_sample(np.array([[0, 1]]))


def test_embedding_dot_gradients_float64(device):
    rng = np.random.default_rng(0)
    W = device.asarray(rng.standard_normal((6, 4)), dtype="float64")
    h = device.asarray(rng.standard_normal((5, 4)), dtype="float64")
    idx = device.asarray(np.array([0, 3, 3, 5, 0]))  # repeated ids: their gradients add up
    dout = device.asarray(rng.standard_normal(5), dtype="float64")
    layer = EmbeddingDot(W)
    out = layer.forward(h, idx)
    assert_on(out, device, dtype="float64", shape=(5,))
    dh = layer.backward(dout)

    def f(_):
        return device.xp.sum(layer.forward(h, idx) * dout)

    assert_grad_close(f, h, dh, rtol=1e-8)
    assert_grad_close(f, W, layer.grads[0], rtol=1e-8)


def test_negative_sampling_loss_gradients_float64(device):
    rng = np.random.default_rng(1)
    W = device.asarray(0.5 * rng.standard_normal((6, 3)), dtype="float64")
    h = device.asarray(rng.standard_normal((4, 3)), dtype="float64")
    target = device.asarray(np.array([0, 2, 2, 5]))
    layer = NegativeSamplingLoss(W, device.asarray(CORPUS), power=0.75, sample_size=3, seed=0)
    assert len(layer.params) == 4 and all(p is W for p in layer.params)
    fixed = layer.sampler.get_negative_sample(target)
    layer.sampler.get_negative_sample = lambda _: fixed  # the same negatives at every evaluation
    loss = layer.forward(h, target)
    assert_on(loss, device, dtype="float64", shape=())
    dh = layer.backward()
    dW = sum(to_numpy(g) for g in layer.grads)  # W is shared by the four EmbeddingDot layers
    assert_grad_close(lambda _: layer.forward(h, target), h, dh, rtol=1e-7)
    assert_grad_close(lambda _: layer.forward(h, target), W, device.asarray(dW), rtol=1e-7)


def test_negative_sampling_loss_value(device):
    """The loss is the sum of the binary cross-entropies of the true word and the negatives."""
    W = device.asarray(np.arange(18).reshape(6, 3) / 10.0, dtype="float64")
    h = device.asarray(np.ones((2, 3)) / 3.0, dtype="float64")
    target = device.asarray(np.array([1, 4]))
    layer = NegativeSamplingLoss(W, device.asarray(CORPUS), sample_size=2, seed=3)
    negatives = to_numpy(layer.sampler.get_negative_sample(target))
    layer.sampler.get_negative_sample = lambda _: device.asarray(negatives)
    Wh, hh = to_numpy(W), to_numpy(h)

    def bce(ids, label):
        s = 1.0 / (1.0 + np.exp(-(Wh[ids] * hh).sum(axis=1)))
        return -np.mean(np.log(s if label else 1.0 - s))

    expected = bce([1, 4], 1) + bce(negatives[:, 0], 0) + bce(negatives[:, 1], 0)
    assert float(layer.forward(h, target)) == pytest.approx(expected, rel=1e-6)


class _BookCBOW:
    """A chapter-4 style CBOW written as a learner writes it: layers in a list,
    params/grads collected once in the constructor."""

    def __init__(self, corpus, vocab_size, hidden_size, window_size):
        rng = np.random.default_rng(0)
        W_in = (0.01 * rng.standard_normal((vocab_size, hidden_size))).astype("f")
        W_out = (0.01 * rng.standard_normal((vocab_size, hidden_size))).astype("f")
        self.in_layers = [Embedding(W_in) for _ in range(2 * window_size)]
        self.ns_loss = NegativeSamplingLoss(W_out, corpus, power=0.75, sample_size=3, seed=0)
        self.params, self.grads = [], []
        for layer in self.in_layers + [self.ns_loss]:
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, contexts, target):
        h = 0
        for i, layer in enumerate(self.in_layers):
            h = h + layer.forward(contexts[:, i])
        return self.ns_loss.forward(h * (1 / len(self.in_layers)), target)

    def backward(self, dout=1):
        dout = self.ns_loss.backward(dout) * (1 / len(self.in_layers))
        for layer in self.in_layers:
            layer.backward(dout)


def test_book_style_cbow_trains_on_the_device(device, capsys):
    """Host corpus and weights, as the book's script makes them; Trainer(device=...) moves
    the model, the sampler's tables included, and every batch stays there."""
    rng = np.random.default_rng(3)
    corpus = np.repeat(rng.integers(0, 12, size=100), 2)  # pairs: each word predicts itself
    contexts, target = create_contexts_target(corpus, window_size=1)
    model = _BookCBOW(corpus, 12, 8, 1)
    trainer = Trainer(model, Adam(lr=0.1), device=device, seed=0)
    trainer.fit(contexts, target, max_epoch=5, batch_size=20, eval_interval=3)
    for array in model.params + model.grads + [model.ns_loss.sampler.word_p]:
        assert_on(array, device)
    assert trainer.loss_list[0] == pytest.approx(4 * np.log(2), rel=1e-3)  # 4 sigmoids at 0.5
    assert trainer.loss_list[-1] < 0.8 * trainer.loss_list[0]
    assert "| epoch 5 |" in capsys.readouterr().out
