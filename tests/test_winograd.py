"""xpnet.winograd: F(2x2, 3x3) equals the im2col Convolution, its gradients, float32 error, checks."""

import numpy as np
import pytest
from _checks import assert_grad_close, assert_on, relative_error

from xpnet.backend import to_numpy
from xpnet.layers import Convolution
from xpnet import winograd
from xpnet.winograd import conv3x3_backward, conv3x3_forward, fast_conv_applies, winograd_valid

# (N, C, FN, H, W, pad): odd and even sizes, FN != C, batch 1, all three pads.
SHAPES = [
    (2, 3, 5, 7, 7, 1),
    (1, 4, 2, 8, 6, 2),
    (3, 2, 3, 5, 9, 0),
    (2, 6, 6, 6, 6, 1),
    (1, 1, 4, 3, 4, 0),
]


def _inputs(device, shape, dtype, seed=0):
    N, C, FN, H, W, pad = shape
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((FN, C, 3, 3)), rng.standard_normal(FN)
    return [device.asarray(a, dtype=dtype) for a in (x, w, b)] + [pad]


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_the_unfold_convolution_in_float64(device, shape):
    x, W, b, pad = _inputs(device, shape, "float64")
    conv = Convolution(W, b, stride=1, pad=pad)
    expected = conv.forward(x)
    out, saved = conv3x3_forward(x, W, b, pad)
    assert_on(out, device, "float64", tuple(expected.shape))
    np.testing.assert_allclose(to_numpy(out), to_numpy(expected), rtol=0, atol=1e-12)
    dout = device.asarray(np.random.default_rng(1).standard_normal(tuple(expected.shape)), dtype="float64")
    dx_ref = conv.backward(dout)
    dx, dW, db = conv3x3_backward(dout, saved)
    for got, ref in ((dx, dx_ref), (dW, conv.dW), (db, conv.db)):
        assert_on(got, device, "float64", tuple(ref.shape))
        np.testing.assert_allclose(to_numpy(got), to_numpy(ref), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 2, 5, 5, 1), (1, 2, 3, 4, 5, 2)])
def test_gradients_match_numerical(device, shape):
    xp = device.xp
    x, W, b, pad = _inputs(device, shape, "float64", seed=3)
    out, saved = conv3x3_forward(x, W, b, pad)
    c = device.asarray(np.random.default_rng(99).standard_normal(tuple(out.shape)), dtype="float64")
    before = to_numpy(c)
    dx, dW, db = conv3x3_backward(c, saved)
    np.testing.assert_array_equal(to_numpy(c), before, err_msg="backward mutated dout")

    def f(_):
        return xp.sum(conv3x3_forward(x, W, b, pad)[0] * c)

    assert_grad_close(f, x, dx)
    assert_grad_close(f, W, dW)
    assert_grad_close(f, b, db)


def test_input_grad_false_skips_dx_only(device):
    x, W, b, pad = _inputs(device, (2, 3, 4, 6, 6, 1), "float64")
    out, saved = conv3x3_forward(x, W, b, pad)
    dout = device.asarray(np.ones(tuple(out.shape)), dtype="float64")
    full = conv3x3_backward(dout, saved)
    dx, dW, db = conv3x3_backward(dout, saved, input_grad=False)
    assert dx is None
    np.testing.assert_array_equal(to_numpy(dW), to_numpy(full[1]))
    np.testing.assert_array_equal(to_numpy(db), to_numpy(full[2]))


@pytest.mark.parametrize("shape", [(4, 16, 16, 28, 28, 1), (4, 32, 32, 14, 14, 2), (4, 64, 64, 8, 8, 1)])
def test_float32_error_is_that_of_float32_im2col(device, shape):
    """Against a float64 reference, Winograd's float32 error stays within 4x im2col's
    (DeepConvNet's shapes; weights at He scale as the nets draw them)."""
    N, C, FN, H, W, pad = shape
    rng = np.random.default_rng(5)
    host = [rng.standard_normal((N, C, H, W)), rng.standard_normal((FN, C, 3, 3)) * np.sqrt(2 / (9 * C)),
            rng.standard_normal(FN) * 0.1]
    x64, W64, b64 = (device.asarray(a, dtype="float64") for a in host)
    x32, W32, b32 = (device.asarray(a, dtype="float32") for a in host)
    ref = Convolution(W64, b64, pad=pad).forward(x64)
    out32, saved = conv3x3_forward(x32, W32, b32, pad)
    assert_on(out32, device, "float32")
    im2col_err = relative_error(Convolution(W32, b32, pad=pad).forward(x32), ref)
    wino_err = relative_error(out32, ref)
    assert wino_err < max(4 * im2col_err, 1e-7), (wino_err, im2col_err)
    assert wino_err < 1e-6
    dout = rng.standard_normal(tuple(ref.shape))
    ref_conv = Convolution(W64, b64, pad=pad)
    ref_conv.forward(x64)
    dx_ref = ref_conv.backward(device.asarray(dout, dtype="float64"))
    dx, dW, db = conv3x3_backward(device.asarray(dout, dtype="float32"), saved)
    for got, want in ((dx, dx_ref), (dW, ref_conv.dW), (db, ref_conv.db)):
        assert relative_error(got, want) < 1e-6


def test_winograd_valid():
    assert winograd_valid((16, 16, 3, 3), 1, 1, (100, 16, 28, 28))
    assert winograd_valid((32, 32, 3, 3), 1, 2, (100, 32, 14, 14))
    assert winograd_valid((16, 1, 3, 3), 1, 0, (100, 1, 3, 3))
    assert not winograd_valid((16, 16, 5, 5), 1, 1, (100, 16, 28, 28))
    assert not winograd_valid((16, 16, 3, 3), 2, 1, (100, 16, 28, 28))
    assert not winograd_valid((16, 16, 3, 3), 1, 3, (100, 16, 28, 28))
    assert not winograd_valid((16, 16, 3, 3), 1, 0, (100, 16, 2, 2))
    assert not winograd_valid((16, 8, 3, 3), 1, 1, (100, 16, 28, 28))
    assert not winograd_valid((16, 16, 3), 1, 1, (100, 16, 28, 28))


def test_fast_conv_applies_only_where_measured_faster(monkeypatch):
    # No shape measured faster on the CPU: DeepConvNet's convolutions stay on im2col.
    assert not fast_conv_applies((16, 16, 3, 3), 1, 1, (100, 16, 28, 28))
    monkeypatch.setattr(winograd, "MEASURED_FASTER", frozenset({(16, 16, 28, 28, 1)}))
    assert fast_conv_applies((16, 16, 3, 3), 1, 1, (100, 16, 28, 28))
    assert not fast_conv_applies((16, 16, 3, 3), 1, 1, (100, 16, 14, 14))
    assert not fast_conv_applies((16, 16, 3, 3), 2, 1, (100, 16, 28, 28))


def test_bad_arguments_raise(device):
    x, W, b, pad = _inputs(device, (2, 3, 4, 6, 6, 1), "float64")
    with pytest.raises(ValueError, match="W: expected"):
        conv3x3_forward(x, W[:, :, :2, :], b, 1)
    with pytest.raises(ValueError, match="x: expected"):
        conv3x3_forward(x[:, :2, ...], W, b, 1)
    with pytest.raises(ValueError, match="b: expected"):
        conv3x3_forward(x, W, b[:2], 1)
    with pytest.raises(ValueError, match="pad: expected"):
        conv3x3_forward(x, W, b, 3)
    with pytest.raises(ValueError, match="does not fit"):
        conv3x3_forward(x[:, :, :1, :1], W, b, 0)
    out, saved = conv3x3_forward(x, W, b, 1)
    with pytest.raises(ValueError, match="dout: expected"):
        conv3x3_backward(out[:, :, :3, :], saved)


def test_convolution_layer_runs_winograd_on_request(device):
    """``Convolution(algorithm="winograd")`` gives the im2col layer's outputs and gradients,
    and a net's first layer (``input_grad = False``) gets no ``dx``."""
    x, W, b, pad = _inputs(device, SHAPES[0], "float64", seed=5)
    reference, fast = Convolution(W, b, pad=pad, algorithm="im2col"), Convolution(W, b, pad=pad, algorithm="winograd")
    out_ref, out = reference.forward(x), fast.forward(x)
    assert fast.winograd_saved is not None and reference.winograd_saved is None
    np.testing.assert_allclose(to_numpy(out), to_numpy(out_ref), rtol=0, atol=1e-12)
    dout = device.asarray(np.random.default_rng(2).standard_normal(tuple(out.shape)), dtype="float64")
    dx_ref, dx = reference.backward(dout), fast.backward(dout)
    for got, ref in ((dx, dx_ref), (fast.dW, reference.dW), (fast.db, reference.db)):
        assert_on(got, device, "float64", tuple(ref.shape))
        np.testing.assert_allclose(to_numpy(got), to_numpy(ref), rtol=0, atol=1e-12)
    fast.input_grad = False
    fast.forward(x)
    assert fast.backward(dout) is None


def test_convolution_algorithm_is_checked(device):
    x, W, b, pad = _inputs(device, SHAPES[0], "float64")
    with pytest.raises(ValueError, match="algorithm: expected one of"):
        Convolution(W, b, algorithm="fft")
    with pytest.raises(ValueError, match="algorithm='winograd' needs 3x3 filters, stride 1"):
        Convolution(W, b, stride=2, algorithm="winograd").forward(x)
    assert Convolution(W, b, pad=pad).forward(x) is not None  # "auto": im2col on every measured shape
