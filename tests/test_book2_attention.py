"""xpnet.book2.attention: float64 numerical gradients on every backend, TimeAttention equal to
the chapter's step-by-step layers, and ch08's own attention_layer.py running on xpnet."""

import os
from pathlib import Path

import numpy as np
import pytest
from _checks import assert_grad_close, assert_on

from xpnet.backend import to_numpy
from xpnet.book2.attention import Attention, AttentionWeight, TimeAttention, WeightSum

N, T_ENC, T_DEC, H = 2, 4, 3, 3


def _put(device, host):
    return device.asarray(np.asarray(host, dtype=np.float64), dtype="float64")


def _shared() -> Path | None:
    """The books' scripts: $XPNET_SHARED, else ``<repo>/../shared``, else /work/shared."""
    repo = Path(__file__).resolve().parents[1]
    for path in (os.environ.get("XPNET_SHARED"), repo.parent / "shared", "/work/shared"):
        if path and (Path(path) / "books" / "book2").is_dir():
            return Path(path)
    return None


def _cases(device, rng):
    def normal(*shape):
        return _put(device, rng.normal(size=shape))

    a = _put(device, rng.dirichlet(np.ones(T_ENC), size=N))
    return {
        "weight-sum": (WeightSum(), [normal(N, T_ENC, H), a], (N, H)),
        "attention-weight": (AttentionWeight(), [normal(N, T_ENC, H), normal(N, H)], (N, T_ENC)),
        "attention": (Attention(), [normal(N, T_ENC, H), normal(N, H)], (N, H)),
        "time-attention": (TimeAttention(), [normal(N, T_ENC, H), normal(N, T_DEC, H)], (N, T_DEC, H)),
    }


@pytest.mark.parametrize("name", ["weight-sum", "attention-weight", "attention", "time-attention"])
def test_attention_layers_match_numerical_gradients(device, name):
    xp = device.xp
    rng = np.random.default_rng(0)
    layer, inputs, out_shape = _cases(device, rng)[name]
    assert layer.params == [] and layer.grads == []
    out = layer.forward(*inputs)
    assert_on(out, device, "float64", out_shape)
    c = _put(device, rng.normal(size=out_shape))
    grads = layer.backward(c)
    assert len(grads) == len(inputs)

    def f(_):
        return xp.sum(layer.forward(*inputs) * c)

    for x, grad in zip(inputs, grads):
        assert_grad_close(f, x, grad)


def test_time_attention_equals_one_attention_per_decoder_step(device):
    rng = np.random.default_rng(1)
    hs_enc, hs_dec = _put(device, rng.normal(size=(N, T_ENC, H))), _put(device, rng.normal(size=(N, T_DEC, H)))
    dout = rng.normal(size=(N, T_DEC, H))
    layer = TimeAttention()
    out = to_numpy(layer.forward(hs_enc, hs_dec))
    denc, ddec = (to_numpy(g) for g in layer.backward(_put(device, dout)))
    expected_denc = np.zeros((N, T_ENC, H))
    for t in range(T_DEC):
        step = Attention()
        np.testing.assert_allclose(out[:, t], to_numpy(step.forward(hs_enc, hs_dec[:, t, :])), rtol=1e-13)
        np.testing.assert_allclose(to_numpy(layer.attention_weights[t]), to_numpy(step.attention_weight), rtol=1e-13)
        dhs, dh = step.backward(_put(device, dout[:, t]))
        expected_denc += to_numpy(dhs)
        np.testing.assert_allclose(ddec[:, t], to_numpy(dh), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(denc, expected_denc, rtol=1e-12, atol=1e-15)
    assert np.array([to_numpy(a) for a in layer.attention_weights]).shape == (T_DEC, N, T_ENC)  # visualize_attention.py


def test_time_attention_refuses_mismatched_states():
    with pytest.raises(ValueError, match="hs_enc, hs_dec"):
        TimeAttention().forward(np.zeros((2, 4, 3)), np.zeros((2, 3, 5)))


def test_the_chapters_attention_layer_runs_on_xpnet():
    shared = _shared()
    if shared is None:
        pytest.skip("../shared/books is absent")
    source = (shared / "books/book2/ch08/attention_layer.py").read_text()
    names = {"__name__": "attention_layer"}
    exec(compile(source.replace("from common.", "from xpnet.book2."), "attention_layer.py", "exec"), names)
    rng = np.random.default_rng(2)
    hs_enc, hs_dec = rng.normal(size=(N, T_ENC, H)), rng.normal(size=(N, T_DEC, H))
    dout = rng.normal(size=(N, T_DEC, H))
    theirs, ours = names["TimeAttention"](), TimeAttention()
    np.testing.assert_allclose(theirs.forward(hs_enc, hs_dec), ours.forward(hs_enc, hs_dec), rtol=1e-13)
    for a, b in zip(theirs.backward(dout), ours.backward(dout)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
