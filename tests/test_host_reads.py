"""No training step of any loop reads a device value on the host (each read is a GPU wait).

Every loop runs on PyTorch CPU tensors, where :class:`_host_reads.HostReads` counts the
calls that would read back from a GPU (see ``tests/_host_reads.py``); after warm-up steps,
each step must count 0.  The loops: the book-1 loop a learner writes
(``grads = net.gradient(x, t); optimizer.update(net.params, grads)``) with every
optimizer on three nets, ``Trainer.train_step``, book 2's ``Trainer.fit`` with CBOW and
negative sampling, and the RNN language model's step.  A bad label still gets its clear
error: at once for host (NumPy) labels, at the next read (``accuracy``) for device labels.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from _host_reads import HostReads, assert_no_reads, reads_per_step, torch

from xpnet import backend
from xpnet import functions as F
from xpnet.nets import MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from xpnet.optimizer import get_optimizer
from xpnet.trainer import Trainer

OPTIMIZERS = ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam")
NETS = {
    "TwoLayerNet": (lambda d: TwoLayerNet(12, 8, 3, seed=0, device=d), (12,)),
    "MultiLayerNetExtend": (lambda d: MultiLayerNetExtend(12, [8, 8], 3, use_dropout=True, use_batchnorm=True,
                                                          seed=0, device=d), (12,)),
    "SimpleConvNet": (lambda d: SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1},
                                              8, 3, seed=0, device=d), (1, 6, 6)),
}


@pytest.fixture
def cpu_torch():
    return backend.get_device(torch, torch.device("cpu"))


def batch(shape, n=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *shape)).astype(np.float32), rng.integers(0, classes, size=n)


# --------------------------------------------------------------- the counter itself
def test_the_counter_sees_every_kind_of_read(cpu_torch):
    xp = cpu_torch.xp
    a = cpu_torch.asarray(np.array([1.0, -2.0, 3.0]))
    mask = a > 0
    reads = {
        "bool(xp.any(...)), the old label check": lambda: bool(xp.any(a > 2)),
        "float()": lambda: float(xp.sum(a)),
        "int()": lambda: int(xp.argmax(a)),
        "item()": lambda: xp.sum(a).item(),
        "tolist()": lambda: a.tolist(),
        "np.asarray": lambda: np.asarray(a),
        "to_numpy": lambda: backend.to_numpy(a),
        "f-string": lambda: f"{xp.sum(a):.2f}",
        "boolean-mask index": lambda: a[mask],
        "list index by a 0-d tensor": lambda: [0, 1, 2][xp.argmax(a)],
        "xp.nonzero": lambda: xp.nonzero(mask),
    }
    for name, read in reads.items():
        with HostReads() as counted:
            read()
        assert counted.count == 1, (name, counted.where)
    with HostReads() as counted:
        a[mask] = 0.0
    assert counted.count == 1
    with HostReads() as counted:
        xp.clip(a, max=1.0)  # array-api-compat's CuPy clip: a mask setitem per bound, 2 reads each
    assert counted.count == 2
    with HostReads() as counted:
        xp.clip(a, 0.0, 1.0)
        xp.sign(a)
    assert counted.count == 5
    with HostReads() as counted:  # free: all on the device
        b = xp.minimum(xp.maximum(a, 0.0), 1.0)
        b = xp.where(b > 0.5, b, 0.0) + xp.take(a, xp.argmax(a)[None])
        b[0:2] = 1.0
        _ = a.shape[0] + int(a.shape[0])
    assert counted.count == 0, counted.where
    assert counted.where == "no reads"


def test_the_counter_restores_torch(cpu_torch):
    with HostReads():
        pass
    assert "__getitem__" not in vars(torch.Tensor) and torch.Tensor.item is torch._C.TensorBase.item


def test_the_counter_names_the_line_of_each_read(cpu_torch):
    a = cpu_torch.asarray(np.array([1.0, 2.0]))
    with HostReads() as counted:
        F.check_labels(cpu_torch.asarray(np.array([0, 1])), 2)  # the eager check: reads once
    assert counted.count == 1 and "functions.py" in counted.where
    with pytest.raises(AssertionError, match=r"1 host read\(s\):\n__float__ at .*test_host_reads.py"):
        assert_no_reads(lambda: float(a[0]), warmup=0, steps=1)


# ------------------------------------------------------------------- book-1 loops
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("name", list(NETS))
def test_bare_book_loop_reads_nothing(cpu_torch, name, optimizer):
    """``grads = net.gradient(x, t); optimizer.update(net.params, grads)`` with the labels on
    the device (checked there, no read) and, in the book's way, on the host (checked there)."""
    build, shape = NETS[name]
    net, opt = build(cpu_torch), get_optimizer(optimizer, lr=0.01)
    x, t = batch(shape)
    on_device = cpu_torch.asarray(x), cpu_torch.asarray(t)

    def step(x=on_device[0], t=on_device[1]):
        grads = net.gradient(x, t)
        opt.update(net.params, grads)

    assert_no_reads(step)
    assert_no_reads(lambda: step(x, t))
    assert_no_reads(lambda: net.loss(*on_device))  # the book's ch06 loops call loss every step


def test_weight_decay_and_one_hot_labels_read_nothing(cpu_torch):
    from xpnet.nets import MultiLayerNet

    net, opt = MultiLayerNet(12, [8], 3, weight_decay_lambda=0.1, seed=0, device=cpu_torch), get_optimizer("SGD")
    x, t = batch((12,))
    xd, one_hot = cpu_torch.asarray(x), cpu_torch.asarray(np.eye(3, dtype=np.float32)[t])
    assert_no_reads(lambda: opt.update(net.params, net.gradient(xd, one_hot)))


@pytest.mark.parametrize("sampling", ["shuffle", "replacement"])
def test_trainer_train_step_reads_nothing(cpu_torch, sampling):
    x, t = batch((12,), n=120)
    trainer = Trainer(NETS["MultiLayerNetExtend"][0]("cpu"), x, t, x[:20], t[:20], epochs=1, mini_batch_size=6,
                      optimizer="Adam", verbose=False, device=cpu_torch, seed=0, sampling=sampling)
    assert trainer.iter_per_epoch == 20
    counted = reads_per_step(trainer.train_step, warmup=2, steps=8)  # steps 3..10: inside the epoch
    assert [c.count for c in counted] == [0] * 8, "\n".join(c.where for c in counted)


# ------------------------------------------------------------------- book-2 loops
class CBOW:
    """The chapter-4 CBOW shape: context embeddings averaged, negative-sampling loss."""

    def __init__(self, corpus, vocab_size, hidden_size, window_size):
        from xpnet.book2.layers import Embedding
        from xpnet.book2.negative_sampling import NegativeSamplingLoss

        rng = np.random.default_rng(0)
        W_in = (0.01 * rng.standard_normal((vocab_size, hidden_size))).astype("f")
        W_out = (0.01 * rng.standard_normal((vocab_size, hidden_size))).astype("f")
        self.in_layers = [Embedding(W_in) for _ in range(2 * window_size)]
        self.ns_loss = NegativeSamplingLoss(W_out, corpus, power=0.75, sample_size=5, seed=0)
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


LOSS_FLUSHES = ("flush", "_flush_losses")
"""The loops' loss flushes: one read of all the losses since the last, every 50 steps and at an
epoch's end (the designed read point, where deferred checks report too)."""


def reads_between_updates(fit, optimizer, capsys):
    """Host reads of each step of ``fit()`` (cut at ``optimizer.update`` calls) that prints no
    progress line (a line shows a value: its step reads by design), outside the loss flushes."""
    marks, update = [], optimizer.update
    with HostReads(exempt=LOSS_FLUSHES) as counted:
        def marked(params, grads):
            update(params, grads)
            marks.append((counted.count, capsys.readouterr().out.count("\n")))

        optimizer.update = marked
        try:
            fit()
        finally:
            del optimizer.update
    steps = [(b[0] - a[0], b[1]) for a, b in zip(marks, marks[1:])]
    return [reads for reads, printed in steps if not printed], counted


def test_book2_fit_cbow_negative_sampling_reads_nothing(cpu_torch, capsys):
    from xpnet.book2.optimizer import Adam
    from xpnet.book2.trainer import Trainer as Book2Trainer
    from xpnet.book2.util import create_contexts_target

    rng = np.random.default_rng(3)
    corpus = rng.integers(0, 30, size=300)
    contexts, target = create_contexts_target(corpus, window_size=2)
    model, optimizer = CBOW(corpus, 30, 8, 2), Adam(lr=0.01)
    trainer = Book2Trainer(model, optimizer, device=cpu_torch, seed=0)
    trainer.fit(contexts, target, max_epoch=1, batch_size=20, eval_interval=None)  # warm-up
    per_step, counted = reads_between_updates(
        lambda: trainer.fit(contexts, target, max_epoch=2, batch_size=20, max_grad=1.0, eval_interval=None),
        optimizer, capsys)
    assert len(per_step) == 2 * (len(target) // 20) - 1
    assert per_step == [0] * len(per_step), counted.where


def test_rnnlm_step_reads_nothing(cpu_torch, capsys):
    """The chapter-5/6 language model (TimeEmbedding, TimeLSTM, TimeAffine,
    TimeSoftmaxWithLoss) under ``RnnlmTrainer``."""
    time_layers = pytest.importorskip("xpnet.book2.time_layers", reason="xpnet.book2.time_layers: not written yet")
    from xpnet.book2 import trainer as book2_trainer
    from xpnet.book2.optimizer import SGD

    if not hasattr(book2_trainer, "RnnlmTrainer"):
        pytest.skip("xpnet.book2.trainer.RnnlmTrainer: not written yet")

    class Rnnlm:
        def __init__(self, vocab_size=20, wordvec_size=8, hidden_size=8):
            rng = np.random.default_rng(0)
            V, D, H = vocab_size, wordvec_size, hidden_size
            embed_W = (rng.standard_normal((V, D)) / 100).astype("f")
            lstm_Wx = (rng.standard_normal((D, 4 * H)) / np.sqrt(D)).astype("f")
            lstm_Wh = (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype("f")
            affine_W = (rng.standard_normal((H, V)) / np.sqrt(H)).astype("f")
            self.layers = [time_layers.TimeEmbedding(embed_W),
                           time_layers.TimeLSTM(lstm_Wx, lstm_Wh, np.zeros(4 * H, dtype="f"), stateful=True),
                           time_layers.TimeAffine(affine_W, np.zeros(V, dtype="f"))]
            self.loss_layer = time_layers.TimeSoftmaxWithLoss()
            self.params, self.grads = [], []
            for layer in self.layers:
                self.params += layer.params
                self.grads += layer.grads

        def forward(self, xs, ts):
            for layer in self.layers:
                xs = layer.forward(xs)
            return self.loss_layer.forward(xs, ts)

        def backward(self, dout=1):
            dout = self.loss_layer.backward(dout)
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
            return dout

        def reset_state(self):
            self.layers[1].reset_state()

    corpus = np.random.default_rng(1).integers(0, 20, size=401)
    xs, ts = corpus[:-1], corpus[1:]
    optimizer = SGD(lr=0.1)
    model = backend.to_device(Rnnlm(), cpu_torch)
    trainer = book2_trainer.RnnlmTrainer(model, optimizer)
    trainer.fit(xs, ts, max_epoch=1, batch_size=4, time_size=5, eval_interval=1000)  # warm-up
    per_step, counted = reads_between_updates(
        lambda: trainer.fit(xs, ts, max_epoch=2, batch_size=4, time_size=5, max_grad=0.25, eval_interval=1000),
        optimizer, capsys)
    assert len(per_step) >= 2 * (400 // 20) - 3  # all but the steps that print a perplexity line
    assert per_step == [0] * len(per_step), counted.where


# ------------------------------------------------------------------ bad labels
def test_a_bad_device_label_still_gets_its_clear_error(cpu_torch):
    """Device labels are checked on the device; the verdict is read with the next value the
    loop reads anyway (``accuracy``), in one line naming the label."""
    net = NETS["TwoLayerNet"][0](cpu_torch)
    x, t = batch((12,))
    t[4] = 7
    xd, td = cpu_torch.asarray(x), cpu_torch.asarray(t)
    good = cpu_torch.asarray(np.zeros(6, dtype=np.int64))
    with contextlib.suppress(ValueError):
        F.raise_pending_labels()  # what earlier tests left
    with HostReads() as counted:
        net.gradient(xd, good)
        net.gradient(xd, td)   # call 2 since the last read: the bad one
        net.gradient(xd, good)
    assert counted.count == 0
    with pytest.raises(ValueError, match=r"^t: expected class indices in 0\.\.2, got 7 \(label 4\) "
                                         r"in call 2 of TwoLayerNet\.gradient since the last check"):
        net.accuracy(xd, good)
    assert net.accuracy(xd, good) == pytest.approx(net.accuracy(x, np.zeros(6, dtype=np.int64)))  # reported once
    with pytest.raises(ValueError, match=r"^t: expected class indices in 0\.\.2, got 7 \(label 4\)$"):
        net.gradient(x, t)  # host labels: checked on the host at once, free


def test_losses_defer_device_labels_and_check_host_labels_at_once(cpu_torch):
    y = cpu_torch.asarray(np.full((2, 3), 1 / 3))
    bad = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    with contextlib.suppress(ValueError):
        F.raise_pending_labels()  # what earlier tests left
    with HostReads() as counted:
        F.cross_entropy_error(y, cpu_torch.asarray(bad))
    assert counted.count == 0
    with pytest.raises(ValueError, match=r"^t: expected one-hot rows of 3 values, 0s and a single 1, got row 1 "
                                         r"= \[0\.5, 0\.5, 0\] in call 1 of cross_entropy_error since the last check"):
        F.raise_pending_labels()
    F.raise_pending_labels()  # nothing pending now
    with pytest.raises(ValueError, match=r"got row 1 = \[0\.5, 0\.5, 0\]"):
        F.cross_entropy_error(backend.to_numpy(y), bad)


def test_a_bad_label_is_reported_even_when_its_array_is_gone(cpu_torch):
    """The device-side flag holds the verdict; only the last KEEP label arrays are kept to name
    the label, so a bad batch further back (or one overwritten in place) is still an error."""
    net = NETS["TwoLayerNet"][0](cpu_torch)
    x = cpu_torch.asarray(batch((12,))[0])
    with contextlib.suppress(ValueError):
        F.raise_pending_labels()
    buffer = cpu_torch.asarray(np.array([0, 1, 2, 3, 0, 1]))
    net.loss(x, buffer)
    buffer[3] = 2  # the learner's buffer is refilled in place: the array kept is fine now
    for _ in range(F._PENDING.KEEP):
        net.loss(x, cpu_torch.asarray(np.zeros(6, dtype=np.int64)))
    with pytest.raises(ValueError, match=r"^t: expected class indices in 0\.\.2; a label given to TwoLayerNet\.loss "
                                         r"in calls 1\.\.9 since the last check was not"):
        F.raise_pending_labels()
