"""RnnlmTrainer and the services every front-end of the one loop shares on book 2's ``fit``:
the book's batches (one gather), progress lines, NaN data and labels refused, a NaN loss
stops, Ctrl-C then resume equals an uninterrupted run, tied weights by view."""

import numpy as np
import pytest
from array_api_compat import array_namespace
from _checks import assert_on

from xpnet import backend
from xpnet.backend import Generator, to_numpy
from xpnet.book2.layers import Affine, Embedding, SoftmaxWithLoss
from xpnet.book2.optimizer import SGD
from xpnet.book2.trainer import RnnlmTrainer, Trainer

V, D = 12, 6


class TinyLm:
    """A stand-in language model: an embedding and an affine per time step, the affine's
    weight tied to the embedding as ``embed_W.T`` (a view: ``remove_duplicate`` merges them)."""

    def __init__(self, device=backend.CPU, seed=0, tie=True):
        rng = np.random.default_rng(seed)
        embed_W = device.asarray(0.3 * rng.standard_normal((V, D)), dtype="float32")
        affine_W = embed_W.T if tie else device.asarray(0.3 * rng.standard_normal((D, V)), dtype="float32")
        self.embed, self.affine = Embedding(embed_W), Affine(affine_W, device.asarray(np.zeros(V), dtype="float32"))
        self.loss_layer = SoftmaxWithLoss()
        self.params = self.embed.params + self.affine.params
        self.grads = self.embed.grads + self.affine.grads
        self.batches, self.resets, self.poison_at = [], 0, None

    def predict(self, xs):
        xp = array_namespace(xs)
        self.shape = xs.shape
        h = xp.reshape(self.embed.forward(xs), (xs.shape[0] * xs.shape[1], D))
        return xp.reshape(self.affine.forward(h), (xs.shape[0], xs.shape[1], V))

    def forward(self, xs, ts):
        self.batches.append((to_numpy(xs).copy(), to_numpy(ts).copy()))
        xp = array_namespace(xs)
        scores = xp.reshape(self.predict(xs), (-1, V))
        loss = self.loss_layer.forward(scores, xp.reshape(ts, (-1,)))
        return loss * float("nan") if len(self.batches) == self.poison_at else loss

    def backward(self):
        dh = self.affine.backward(self.loss_layer.backward(1.0))
        xp = array_namespace(dh)
        self.embed.backward(xp.reshape(dh, (*self.shape, D)))

    def reset_state(self):
        self.resets += 1


def corpus(n=400):
    """Each word predicts the next (a learnable bigram chain)."""
    ids = (np.arange(n) * 5 % V).astype(np.int32)
    return ids[:-1], ids[1:]


def book_batch(x, time_idx, batch_size, time_size):
    """The book's get_batch, element by element, as the reference."""
    jump = len(x) // batch_size
    out = np.empty((batch_size, time_size), dtype=x.dtype)
    for t in range(time_size):
        for i in range(batch_size):
            out[i, t] = x[(i * jump + time_idx + t) % len(x)]
    return out


def test_rnnlm_batches_lines_and_perplexity(capsys):
    xs, ts = corpus()
    model = TinyLm()
    trainer = RnnlmTrainer(model, SGD(lr=1.0))
    trainer.fit(xs, ts, max_epoch=3, batch_size=4, time_size=7, eval_interval=5)
    max_iters = len(xs) // (4 * 7)
    assert len(model.batches) == 3 * max_iters and trainer.time_idx == 3 * max_iters * 7
    for step in (0, 1, max_iters + 2):  # wraps around the corpus after the first epoch
        np.testing.assert_array_equal(model.batches[step][0], book_batch(xs, step * 7, 4, 7))
        np.testing.assert_array_equal(model.batches[step][1], book_batch(ts, step * 7, 4, 7))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"| epoch 1 |  iter 1 / {max_iters} | time ") and "| perplexity " in lines[0]
    assert len(lines) == len(trainer.ppl_list) == 3 * len(range(0, max_iters, 5))
    assert lines[0].endswith(f"perplexity {trainer.ppl_list[0]:.2f}")
    assert trainer.ppl_list[-1] < trainer.ppl_list[0] and trainer.current_epoch == 3
    assert model.resets == 1  # the label check's probe leaves no state behind


def test_rnnlm_trains_the_tied_weight_with_both_gradients():
    xs, ts = corpus()
    model = TinyLm()
    W = model.params[0]
    assert model.params[1].base is W
    before = W.copy()
    RnnlmTrainer(model, SGD(lr=0.5)).fit(xs, ts, max_epoch=1, batch_size=4, time_size=5, eval_interval=None)
    assert model.params[1].base is W and not np.array_equal(before, W)


def test_rnnlm_on_every_device(device):
    xs, ts = corpus()
    model = TinyLm(device, tie=False)
    trainer = RnnlmTrainer(model, SGD(lr=1.0), seed=0)
    trainer.fit(xs, ts, max_epoch=2, batch_size=4, time_size=7, max_grad=1.0, eval_interval=4)
    for param in model.params:
        assert_on(param, device, "float32")
    assert trainer.ppl_list[-1] < trainer.ppl_list[0]


def test_fit_refuses_bad_data_and_stops_on_a_nan_loss():
    xs, ts = corpus()
    trainer = RnnlmTrainer(TinyLm(), SGD())
    with pytest.raises(ValueError, match=r"t: expected class indices in 0\.\.11, got 12 .*\(the model has 12 outputs\)"):
        trainer.fit(xs, np.where(ts == 3, 12, ts), batch_size=4, time_size=5)
    with pytest.raises(ValueError, match="batch_size, time_size"):
        trainer.fit(xs[:10], ts[:10], batch_size=4, time_size=5)
    model = TinyLm()
    model.poison_at = 3
    with pytest.raises(FloatingPointError, match=r"train loss became nan at epoch 1, iteration 3 \(step 3 of"):
        RnnlmTrainer(model, SGD()).fit(xs, ts, batch_size=4, time_size=5, eval_interval=None)
    x = np.random.default_rng(0).normal(size=(60, 2)).astype(np.float32)
    x[7, 1] = np.nan
    from test_book2_trainer import TwoLayerNet
    with pytest.raises(ValueError, match=r"x: row 7 holds NaN or inf"):
        Trainer(TwoLayerNet(2, 4, 3, backend.CPU), SGD()).fit(x, np.zeros(60, dtype=np.int64), batch_size=10)
    with pytest.raises(ValueError, match=r"t: expected class indices in 0\.\.2"):
        Trainer(TwoLayerNet(2, 4, 3, backend.CPU), SGD()).fit(np.zeros((60, 2), np.float32), np.full(60, 3),
                                                              batch_size=10)


class Counting:
    """Counts ``model.forward`` calls; raises KeyboardInterrupt (Ctrl-C) at call ``at``."""

    def __init__(self, model, at=None):
        self.calls, self.at, self.forward = 0, at, model.forward
        model.forward = self

    def __call__(self, xs, ts):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.forward(xs, ts)


@pytest.mark.parametrize("kind", ["rnnlm", "fit"])
def test_ctrl_c_then_resume_equals_an_uninterrupted_run(tmp_path, kind):
    from test_book2_trainer import TwoLayerNet

    from xpnet.datasets import spiral

    if kind == "rnnlm":
        data, build, front = corpus(), lambda: TinyLm(), RnnlmTrainer
        options = dict(max_epoch=3, batch_size=4, time_size=7, eval_interval=None)
    else:
        data, build, front = spiral.load_data(), lambda: TwoLayerNet(2, 6, 3, backend.CPU), Trainer
        options = dict(max_epoch=3, batch_size=30, eval_interval=None)
    path = tmp_path / "run" / "ck.npz"
    reference = build()
    steps = Counting(reference)
    front(reference, SGD(lr=0.5), seed=0).fit(*data, **options)
    cut = build()
    Counting(cut, at=steps.calls // 3 + 2)  # during epoch 2
    with pytest.raises(KeyboardInterrupt, match=r"epoch 1 is saved in .*ck\.npz.*resume="):
        front(cut, SGD(lr=0.5), seed=0, checkpoint=path).fit(*data, **options)
    resumed = build()
    rest = Counting(resumed)
    front(resumed, SGD(lr=0.5), seed=7, checkpoint=path, resume=True).fit(*data, **options)
    for a, b in zip(reference.params, resumed.params):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert rest.calls == steps.calls - steps.calls // 3


def test_fit_permutes_cumulatively_like_the_book():
    """Each epoch permutes the previous epoch's order (the book permutes x and t in place)."""
    from test_book2_trainer import TwoLayerNet

    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    t = np.zeros(20, dtype=np.int64)
    model = TwoLayerNet(2, 4, 3, backend.CPU)
    seen = []
    forward = model.forward
    model.forward = lambda xb, tb: seen.append(to_numpy(xb)[:, 0] / 2) or forward(xb, tb)
    Trainer(model, SGD(), seed=4).fit(x, t, max_epoch=2, batch_size=10, eval_interval=None)
    rng = Generator(4)
    first = to_numpy(rng.permutation(20))
    second = first[to_numpy(rng.permutation(20))]
    np.testing.assert_array_equal(np.concatenate(seen), np.concatenate([first, second]).astype(np.float32))
