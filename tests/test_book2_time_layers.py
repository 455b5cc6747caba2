"""xpnet.book2.time_layers: float64 numerical gradients of every time layer on every backend,
in-place grads, the exact loss (ignore label, underflow), dtypes kept, TimeLSTM against
torch.nn.LSTM, repeated ids, a tied W.T, and the star-import names the book's scripts use."""

import numpy as np
import pytest
from _checks import assert_grad_close, assert_on

from xpnet.backend import CPU, Generator, to_numpy
from xpnet.book2 import time_layers as tl
from xpnet.book2.rnn_cells import GRU, LSTM, RNN

N, T, D, H, V = 2, 3, 3, 2, 5


def _put(device, host, dtype="float64"):
    return device.asarray(np.asarray(host, dtype=np.float64), dtype=dtype)


def _recurrent(kind, device, rng, stateful=False, dtype="float64"):
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    params = [_put(device, rng.normal(size=s), dtype) for s in ((D, gates * H), (H, gates * H), (gates * H,))]
    return {"rnn": tl.TimeRNN, "lstm": tl.TimeLSTM, "gru": tl.TimeGRU}[kind](*params, stateful=stateful)


def _layers(device, rng):
    """(layer, inputs, which inputs to differentiate) for every time layer with a float input."""
    def normal(*shape):
        return _put(device, rng.normal(size=shape))

    bi = [normal(*s) for s in ((D, 4 * H), (H, 4 * H), (4 * H,))] * 2
    return {
        "rnn": (_recurrent("rnn", device, rng), normal(N, T, D)),
        "lstm": (_recurrent("lstm", device, rng), normal(N, T, D)),
        "gru": (_recurrent("gru", device, rng), normal(N, T, D)),
        "bilstm": (tl.TimeBiLSTM(*[p + 0.1 * i for i, p in enumerate(bi)]), normal(N, T, D)),
        "affine": (tl.TimeAffine(normal(D, V), normal(V)), normal(N, T, D)),
        "simple-affine": (tl.Simple_TimeAffine(normal(D, V), normal(V)), normal(N, T, D)),
    }


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru", "bilstm", "affine", "simple-affine"])
def test_time_layers_match_numerical_gradients(device, name):
    xp = device.xp
    rng = np.random.default_rng(1)
    layer, xs = _layers(device, rng)[name]
    held_grads = list(layer.grads)
    out = layer.forward(xs)
    c = _put(device, rng.normal(size=tuple(out.shape)))
    dxs = layer.backward(c)
    for grad, param in zip(layer.grads, layer.params):
        assert_on(grad, device, "float64", tuple(param.shape))
    assert all(a is b for a, b in zip(layer.grads, held_grads)), "grads must be written in place"
    analytic = [to_numpy(g) for g in layer.grads]

    def f(_):
        return xp.sum(layer.forward(xs) * c)

    assert_grad_close(f, xs, dxs)
    for param, grad in zip(layer.params, analytic):
        assert_grad_close(f, param, _put(device, grad))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_stateful_layers_carry_the_state_and_give_its_gradient(device, kind):
    xp = device.xp
    rng = np.random.default_rng(2)
    layer = _recurrent(kind, device, rng, stateful=True)
    xs = _put(device, rng.normal(size=(N, T, D)))
    h0 = _put(device, rng.normal(size=(N, H)))
    c0 = _put(device, rng.normal(size=(N, H)))
    state = (h0, c0) if kind == "lstm" else (h0,)
    layer.set_state(*state)
    out = layer.forward(xs)
    assert layer.h is not h0
    np.testing.assert_array_equal(to_numpy(layer.h), to_numpy(out[:, -1, :]))
    c = _put(device, rng.normal(size=tuple(out.shape)))
    layer.backward(c)
    analytic = [layer.dh] + ([layer.dc] if kind == "lstm" else [])

    def f(_):
        layer.set_state(*state)
        return xp.sum(layer.forward(xs) * c)

    for s, grad in zip(state, analytic):
        assert_grad_close(f, s, grad)
    layer.reset_state()
    assert layer.h is None


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_one_step_cells_equal_the_time_layers(device, cell):
    rng = np.random.default_rng(4)
    layer = _recurrent(cell, device, rng)
    step = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[cell](*layer.params)
    xs = _put(device, rng.normal(size=(N, 1, D)))
    hs = layer.forward(xs)
    dhs = _put(device, rng.normal(size=(N, 1, H)))
    dxs = layer.backward(dhs)
    zeros = _put(device, np.zeros((N, H)))
    state = (zeros, zeros) if cell == "lstm" else (zeros,)
    out = step.forward(xs[:, 0, :], *state)
    h = out[0] if cell == "lstm" else out
    back = step.backward(dhs[:, 0, :], *((zeros,) if cell == "lstm" else ()))
    np.testing.assert_allclose(to_numpy(h), to_numpy(hs[:, 0, :]), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(to_numpy(back[0]), to_numpy(dxs[:, 0, :]), rtol=1e-13, atol=1e-15)
    for a, b in zip(step.grads, layer.grads):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-13, atol=1e-15)


def _loss_inputs(device, rng, dtype="float64"):
    xs = _put(device, rng.normal(size=(N, T, V)), dtype)
    ts = device.asarray(np.array([[1, -1, 4], [0, 4, -1]]))
    return xs, ts


def test_softmax_loss_ignores_label_minus_one_exactly(device):
    xp = device.xp
    rng = np.random.default_rng(5)
    xs, ts = _loss_inputs(device, rng)
    layer = tl.TimeSoftmaxWithLoss()
    loss = layer.forward(xs, ts)
    x, t = to_numpy(xs).reshape(-1, V), to_numpy(ts).reshape(-1)
    log_p = x - x.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    kept = t != -1
    expected = -log_p[kept, t[kept]].mean()
    np.testing.assert_allclose(float(to_numpy(loss)), expected, rtol=1e-14)
    dxs = layer.backward()
    dx = to_numpy(dxs).reshape(-1, V)
    assert np.all(dx[~kept] == 0.0), "an ignored label adds nothing to the gradient"
    assert np.all(np.isfinite(dx))
    assert_grad_close(lambda _: layer.forward(xs, ts), xs, dxs)
    one_hot = device.asarray(np.eye(V)[np.where(t == -1, 0, t)].reshape(N, T, V))
    np.testing.assert_allclose(float(to_numpy(tl.TimeSoftmaxWithLoss().forward(xs, xp.astype(one_hot, xp.int64)))),
                               -log_p[np.arange(N * T), np.where(kept, t, 0)].mean(), rtol=1e-14)


def test_softmax_loss_is_finite_where_the_probability_underflows(device):
    xs = _put(device, np.array([[[0.0, 200.0, -200.0]]]), "float32")
    ts = device.asarray(np.array([[2]]))
    layer = tl.TimeSoftmaxWithLoss()
    loss = layer.forward(xs, ts)
    np.testing.assert_allclose(float(to_numpy(loss)), 400.0, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(layer.backward()), [[[0.0, 1.0, -1.0]]], atol=1e-6)
    assert to_numpy(loss).dtype == np.float32


def test_sigmoid_loss_matches_numerical_gradient(device):
    rng = np.random.default_rng(6)
    xs = _put(device, rng.normal(size=(N, T)))
    ts = device.asarray(rng.integers(0, 2, size=(N, T)))
    layer = tl.TimeSigmoidWithLoss()
    loss = layer.forward(xs, ts)
    y = 1 / (1 + np.exp(-to_numpy(xs)))
    t = to_numpy(ts)
    np.testing.assert_allclose(float(to_numpy(loss)), -np.mean(t * np.log(y) + (1 - t) * np.log(1 - y)), rtol=1e-13)
    assert_grad_close(lambda _: layer.forward(xs, ts), xs, layer.backward())


def test_simple_softmax_loss_equals_the_fused_one_without_ignored_labels(device):
    rng = np.random.default_rng(7)
    xs = _put(device, rng.normal(size=(N, T, V)))
    ts = device.asarray(rng.integers(0, V, size=(N, T)))
    fused, simple = tl.TimeSoftmaxWithLoss(), tl.Simple_TimeSoftmaxWithLoss()
    np.testing.assert_allclose(float(to_numpy(simple.forward(xs, ts))), float(to_numpy(fused.forward(xs, ts))),
                               rtol=1e-14)
    np.testing.assert_allclose(to_numpy(simple.backward()), to_numpy(fused.backward()), rtol=1e-13, atol=1e-16)


def test_embedding_adds_repeated_ids_and_returns_none(device):
    rng = np.random.default_rng(8)
    W = _put(device, rng.normal(size=(V, D)))
    layer = tl.TimeEmbedding(W)
    ids = np.array([[1, 3, 1], [1, 0, 3]])
    out = layer.forward(device.asarray(ids))
    np.testing.assert_array_equal(to_numpy(out), to_numpy(W)[ids])
    dout = rng.normal(size=(N, T, D))
    assert layer.backward(_put(device, dout)) is None
    expected = np.zeros((V, D))
    np.add.at(expected, ids.reshape(-1), dout.reshape(-1, D))
    np.testing.assert_allclose(to_numpy(layer.dW), expected, rtol=1e-14)
    assert layer.grads[0] is layer.dW and layer.params[0] is W


def test_affine_with_a_tied_transposed_weight(device):
    """BetterRnnlm's weight tying: TimeAffine(embed_W.T, b) shares the embedding's array."""
    xp = device.xp
    rng = np.random.default_rng(9)
    embed_W = _put(device, rng.normal(size=(V, D)))
    affine = tl.TimeAffine(embed_W.T, _put(device, np.zeros(V)))
    xs = _put(device, rng.normal(size=(N, T, D)))
    out = affine.forward(xs)
    np.testing.assert_allclose(to_numpy(out), to_numpy(xs) @ to_numpy(embed_W).T, rtol=1e-13)
    c = _put(device, rng.normal(size=(N, T, V)))
    affine.backward(c)
    expected = to_numpy(xs).reshape(-1, D).T @ to_numpy(c).reshape(-1, V)
    np.testing.assert_allclose(to_numpy(affine.dW), expected, rtol=1e-13)
    assert_grad_close(lambda _: xp.sum(affine.forward(xs) * c), embed_W, xp.asarray(affine.dW.T))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_caller_dtype_is_kept(device, dtype):
    rng = np.random.default_rng(10)
    embed = tl.TimeEmbedding(_put(device, rng.normal(size=(V, D)), dtype))
    lstm = _recurrent("lstm", device, rng, stateful=True, dtype=dtype)
    drop = tl.TimeDropout(0.5, rng=Generator(0))
    affine = tl.TimeAffine(_put(device, rng.normal(size=(H, V)), dtype), _put(device, np.zeros(V), dtype))
    loss_layer = tl.TimeSoftmaxWithLoss()
    ids = device.asarray(rng.integers(0, V, size=(N, T)))
    loss = loss_layer.forward(affine.forward(drop.forward(lstm.forward(embed.forward(ids)))), ids)
    assert_on(loss, device, dtype, ())
    assert_on(lstm.h, device, dtype, (N, H))
    assert_on(lstm.c, device, dtype, (N, H))
    assert_on(drop.mask, device, dtype, (N, T, H))
    dxs = lstm.backward(drop.backward(affine.backward(loss_layer.backward())))
    embed.backward(dxs)
    for grad in embed.grads + lstm.grads + affine.grads:
        assert_on(grad, device, dtype)


def test_dropout_scales_kept_units_and_passes_at_test_time(device):
    rng = np.random.default_rng(11)
    xs = _put(device, rng.normal(size=(4, 50, 6)))
    drop = tl.TimeDropout(0.25, rng=Generator(3))
    out, mask = to_numpy(drop.forward(xs)), None
    mask = to_numpy(drop.mask)
    assert set(np.unique(mask)) <= {0.0, 1.0 / 0.75}
    assert 0.6 < np.mean(mask > 0) < 0.9
    np.testing.assert_allclose(out, to_numpy(xs) * mask)
    np.testing.assert_allclose(to_numpy(drop.backward(xs)), to_numpy(xs) * mask)
    drop.train_flg = False
    assert drop.forward(xs) is xs
    with pytest.raises(ValueError, match="dropout_ratio"):
        tl.TimeDropout(1.0)


def test_errors_name_the_argument():
    W = CPU.asarray(np.zeros((3, 8)))
    with pytest.raises(ValueError, match="Wh: expected"):
        tl.TimeLSTM(W, CPU.asarray(np.zeros((2, 6))), CPU.asarray(np.zeros(8)))
    with pytest.raises(ValueError, match="b: expected"):
        tl.TimeLSTM(W, CPU.asarray(np.zeros((2, 8))), CPU.asarray(np.zeros(4)))
    lstm = tl.TimeLSTM(W, CPU.asarray(np.zeros((2, 8))), CPU.asarray(np.zeros(8)))
    with pytest.raises(ValueError, match=r"xs: expected \(N, T, 3\)"):
        lstm.forward(CPU.asarray(np.zeros((2, 4))))
    with pytest.raises(ValueError, match="ts: expected integer labels"):
        tl.TimeSoftmaxWithLoss().forward(CPU.asarray(np.zeros((1, 2, 3))), CPU.asarray(np.zeros((1, 2))))


def test_star_import_gives_the_book_scripts_their_names():
    names = {}
    exec("from xpnet.book2.time_layers import *", names)
    for name in ("np", "TimeEmbedding", "TimeLSTM", "TimeAffine", "TimeSoftmaxWithLoss", "TimeDropout",
                 "TimeRNN", "TimeGRU", "TimeBiLSTM", "RNN", "LSTM", "GRU", "Simple_TimeAffine",
                 "Simple_TimeSoftmaxWithLoss", "TimeSigmoidWithLoss", "softmax", "sigmoid", "Embedding"):
        assert name in names, name
    assert names["np"] is np


def test_lstm_equals_torch_nn_lstm_in_float64():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    n, t, d, h = 3, 4, 5, 6
    Wx, Wh, b = rng.normal(size=(d, 4 * h)), rng.normal(size=(h, 4 * h)), rng.normal(size=4 * h)
    xs, h0, c0, dhs = rng.normal(size=(n, t, d)), rng.normal(size=(n, h)), rng.normal(size=(n, h)), \
        rng.normal(size=(n, t, h))
    layer = tl.TimeLSTM(Wx.copy(), Wh.copy(), b.copy(), stateful=True)
    layer.set_state(h0.copy(), c0.copy())
    hs = layer.forward(xs.copy())
    dxs = layer.backward(dhs.copy())

    # torch's gate order is i, f, g, o; the book's f, g, i, o
    order = np.concatenate([np.arange(2 * h, 3 * h), np.arange(0, h), np.arange(h, 2 * h), np.arange(3 * h, 4 * h)])
    lstm = torch.nn.LSTM(d, h, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(Wx[:, order].T))
        lstm.weight_hh_l0.copy_(torch.from_numpy(Wh[:, order].T))
        lstm.bias_ih_l0.copy_(torch.from_numpy(b[order]))
        lstm.bias_hh_l0.zero_()
    x = torch.from_numpy(xs).requires_grad_()
    hx = torch.from_numpy(h0[None]).requires_grad_()
    cx = torch.from_numpy(c0[None]).requires_grad_()
    out, _ = lstm(x, (hx, cx))
    out.backward(torch.from_numpy(dhs))
    inverse = np.argsort(order)

    def close(ours, theirs):
        np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-10, atol=1e-10)

    close(hs, out.detach().numpy())
    close(dxs, x.grad.numpy())
    close(layer.dWx, lstm.weight_ih_l0.grad.numpy().T[:, inverse])
    close(layer.dWh, lstm.weight_hh_l0.grad.numpy().T[:, inverse])
    close(layer.db, lstm.bias_ih_l0.grad.numpy()[inverse])
    close(layer.dh, hx.grad.numpy()[0])
    close(layer.dc, cx.grad.numpy()[0])


def test_a_training_step_reads_nothing_back_from_the_device():
    """No value of a tensor reaches the host in forward + backward (each read is a GPU sync)."""
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode

    from xpnet.backend import get_device

    device = get_device(torch, torch.device("cpu"))
    rng = np.random.default_rng(13)
    embed_W = _put(device, rng.normal(size=(V, D)), "float32")
    layers = [tl.TimeEmbedding(embed_W), tl.TimeDropout(0.5, rng=Generator(0)),
              _recurrent("lstm", device, rng, stateful=True, dtype="float32"), tl.TimeDropout(0.5, rng=Generator(1)),
              tl.TimeAffine(_put(device, rng.normal(size=(H, V)), "float32"), _put(device, np.zeros(V), "float32"))]
    loss_layer = tl.TimeSoftmaxWithLoss()
    ids = device.asarray(rng.integers(0, V, size=(N, T)))

    def step():
        out = ids
        for layer in layers:
            out = layer.forward(out)
        loss_layer.forward(out, ids)
        dout = loss_layer.backward()
        for layer in reversed(layers):
            dout = layer.backward(dout)

    class Reads(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ in ("_local_scalar_dense", "nonzero", "is_nonzero", "item"):
                Reads.count += 1
            return func(*args, **(kwargs or {}))

    step()
    with Reads():
        step()
    assert Reads.count == 0
