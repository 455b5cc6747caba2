"""xpnet.util: conv_output_size, im2col/col2im (against loops; adjointness), shuffling, smoothing."""

import numpy as np
import pytest
from _checks import assert_on, xp_assert_close
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from xpnet.backend import CPU, Generator, to_numpy
from xpnet.util import col2im, conv_output_size, im2col, shuffle_dataset, smooth_curve


# --- conv_output_size ----------------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    ((28, 5, 1, 0), 24), ((28, 3, 1, 1), 28), ((7, 3, 2, 1), 4), ((4, 2, 2, 0), 2),
    ((5, 5, 1, 0), 1), ((1, 3, 1, 1), 1), ((6, 2, 1, 0), 5), ((5, 3, 2, 2), 4),
    # windows that do not tile: rounded down, as the book's im2col and PyTorch
    ((8, 3, 2, 1), 4), ((9, 2, 2, 0), 4), ((5, 2, 2, 0), 2), ((6, 3, 2, 1), 3), ((10, 3, 4, 0), 2),
])
def test_conv_output_size_floors(args, expected):
    size = conv_output_size(*args)
    assert type(size) is int and size == expected
    H, F, S, P = args
    assert size == (H + 2 * P - F) // S + 1


@pytest.mark.parametrize("args, name", [
    ((2, 5, 1, 0), "filter_size"),   # filter larger than the input: the output would be empty
    ((1, 4, 1, 1), "filter_size"),   # 4 > 1 + 2*1
    ((4, 0, 1, 0), "filter_size"), ((4, 2, 0, 0), "stride"), ((4, 2, 1, -1), "pad"),
    ((4, 2, 1.0, 0), "stride"), ((4, 2.0, 1, 0), "filter_size"), ((4, 2, 1, 0.5), "pad"),
    ((0, 1, 1, 0), "input_size"), ((4, 2, True, 0), "stride"),
])
def test_conv_output_size_rejects_empty_outputs_and_bad_arguments(args, name):
    with pytest.raises(ValueError, match=name):
        conv_output_size(*args)


# --- im2col / col2im -------------------------------------------------------------------------

def naive_im2col(x, fh, fw, stride, pad):
    """One row per window (n, out_y, out_x), columns ordered (channel, row, column)."""
    N, C, H, W = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h = (H + 2 * pad - fh) // stride + 1
    out_w = (W + 2 * pad - fw) // stride + 1
    rows = []
    for n in range(N):
        for i in range(out_h):
            for j in range(out_w):
                rows.append(padded[n, :, i * stride:i * stride + fh, j * stride:j * stride + fw].reshape(-1))
    return np.array(rows)


def naive_col2im(col, shape, fh, fw, stride, pad):
    N, C, H, W = shape
    out_h = (H + 2 * pad - fh) // stride + 1
    out_w = (W + 2 * pad - fw) // stride + 1
    img = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    r = 0
    for n in range(N):
        for i in range(out_h):
            for j in range(out_w):
                img[n, :, i * stride:i * stride + fh, j * stride:j * stride + fw] += col[r].reshape(C, fh, fw)
                r += 1
    return img[:, :, pad:pad + H, pad:pad + W]


# (x shape, filter_h, filter_w, stride, pad): every one tiles
CASES = [
    ((2, 3, 5, 5), 3, 3, 1, 0),
    ((2, 3, 5, 5), 3, 3, 1, 1),
    ((1, 2, 7, 7), 3, 3, 2, 1),   # stride 2 + pad
    ((2, 1, 4, 6), 2, 2, 2, 0),   # pooling-style, non-square input
    ((1, 2, 5, 4), 3, 2, 1, 2),   # non-square filter, pad 2
    ((2, 2, 6, 5), 2, 3, 2, 1),   # non-square everything, stride 2 + pad
    ((1, 1, 3, 3), 1, 1, 1, 0),   # 1x1 filter
    # windows that do not tile the input: the last rows/columns are left out (floor)
    ((2, 2, 8, 8), 3, 3, 2, 1),   # ResNet-style downsampling: 3x3 stride 2 pad 1 on 8x8
    ((2, 1, 9, 9), 2, 2, 2, 0),   # 2x2 stride 2 pooling on 9x9
    ((1, 2, 7, 6), 3, 2, 3, 1),   # stride larger than the filter along W
]


@pytest.mark.parametrize("shape, fh, fw, stride, pad", CASES)
def test_im2col_matches_naive_loop(device, shape, fh, fw, stride, pad):
    host = np.random.default_rng(0).normal(size=shape)
    col = im2col(device.asarray(host, dtype="float64"), fh, fw, stride, pad)
    expected = naive_im2col(host, fh, fw, stride, pad)
    assert_on(col, device, "float64", expected.shape)
    np.testing.assert_array_equal(to_numpy(col), expected)


@pytest.mark.parametrize("shape, fh, fw, stride, pad", CASES)
def test_col2im_matches_naive_loop_and_is_adjoint(device, shape, fh, fw, stride, pad):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape)
    c = rng.normal(size=naive_im2col(x, fh, fw, stride, pad).shape)
    img = col2im(device.asarray(c, dtype="float64"), shape, fh, fw, stride, pad)
    assert_on(img, device, "float64", shape)
    xp_assert_close(img, naive_col2im(c, shape, fh, fw, stride, pad), n=fh * fw)
    lhs = np.sum(to_numpy(im2col(device.asarray(x, dtype="float64"), fh, fw, stride, pad)) * c)
    rhs = np.sum(x * to_numpy(img))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@settings(max_examples=40, deadline=None, database=None)
@given(
    n=st.integers(1, 2), c=st.integers(1, 3), fh=st.integers(1, 3), fw=st.integers(1, 3),
    stride=st.integers(1, 3), pad=st.integers(0, 2), out_h=st.integers(1, 3), out_w=st.integers(1, 3),
    extra_h=st.integers(0, 2), extra_w=st.integers(0, 2), seed=st.integers(0, 2**32 - 1),
)
def test_col2im_is_adjoint_of_im2col_property(n, c, fh, fw, stride, pad, out_h, out_w, extra_h, extra_w, seed):
    # extra_h/extra_w < stride pixels the last window does not reach (non-tiling shapes)
    assume(extra_h < stride and extra_w < stride)
    H = (out_h - 1) * stride + fh - 2 * pad + extra_h
    W = (out_w - 1) * stride + fw - 2 * pad + extra_w
    assume(H >= 1 and W >= 1)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, c, H, W))
    col = im2col(x, fh, fw, stride, pad)
    assert col.shape == (n * out_h * out_w, c * fh * fw)
    np.testing.assert_array_equal(col, naive_im2col(x, fh, fw, stride, pad))
    cot = rng.normal(size=col.shape)
    back = col2im(cot, x.shape, fh, fw, stride, pad)
    assert back.shape == x.shape
    assert np.sum(col * cot) == pytest.approx(np.sum(x * back), rel=1e-10, abs=1e-10)


def test_col2im_rejects_wrong_shape(device):
    col = device.asarray(np.zeros((9, 8)), dtype="float64")  # (2,2,3,3) with 2x2 filter needs (8, 8)
    with pytest.raises(ValueError, match="col"):
        col2im(col, (2, 2, 3, 3), 2, 2)


def test_im2col_and_col2im_reject_bad_arguments_naming_them(device):
    x = device.asarray(np.zeros((1, 1, 5, 5)), dtype="float64")
    with pytest.raises(ValueError, match="input_data"):
        im2col(device.asarray(np.zeros((1, 5, 5)), dtype="float64"), 2, 2)     # 3-D: no batch axis
    with pytest.raises(ValueError, match="stride"):
        im2col(x, 2, 2, stride=2.0)
    with pytest.raises(ValueError, match="pad"):
        im2col(x, 2, 2, pad=-1)
    with pytest.raises(ValueError, match="filter_h"):
        im2col(x, 8, 2, pad=1)                                                   # 8 > 5 + 2*1
    with pytest.raises(ValueError, match="filter_w"):
        im2col(x, 2, 0)
    with pytest.raises(ValueError, match="input_shape"):
        col2im(device.asarray(np.zeros((4, 4)), dtype="float64"), (1, 3, 3), 2, 2)
    with pytest.raises(ValueError, match="stride"):
        col2im(device.asarray(np.zeros((4, 4)), dtype="float64"), (1, 1, 3, 3), 2, 2, stride=0)


def test_im2col_col2im_keep_float32(device):
    x = device.asarray(np.random.default_rng(2).normal(size=(1, 2, 4, 4)), dtype="float32")
    col = im2col(x, 2, 2, 2, 1)
    assert_on(col, device, "float32", (9, 8))
    assert_on(col2im(col, (1, 2, 4, 4), 2, 2, 2, 1), device, "float32", (1, 2, 4, 4))


# --- shuffle_dataset ---------------------------------------------------------------------------

def test_shuffle_dataset_keeps_pairs_and_permutes(device):
    n = 20
    x = device.asarray(np.arange(n * 3, dtype=np.float64).reshape(n, 3), dtype="float64")
    t = device.asarray(np.arange(n))
    xs, ts = shuffle_dataset(x, t, rng=Generator(0))
    assert_on(xs, device, "float64", (n, 3))
    assert_on(ts, device, None, (n,))
    xs, ts = to_numpy(xs), to_numpy(ts)
    np.testing.assert_array_equal(xs[:, 0], 3 * ts)            # rows still with their labels
    np.testing.assert_array_equal(xs, np.arange(n * 3.0).reshape(n, 3)[ts])
    assert sorted(ts.tolist()) == list(range(n))                 # a permutation
    assert not np.array_equal(ts, np.arange(n))                  # and not the identity (seed 0)
    # the same seed gives the same order on every backend
    np.testing.assert_array_equal(ts, np.random.default_rng(0).permutation(n))
    _, again = shuffle_dataset(x, t, rng=Generator(0))
    np.testing.assert_array_equal(to_numpy(again), ts)


def test_shuffle_dataset_4d_and_one_hot(device):
    rng = np.random.default_rng(3)
    x_host = rng.normal(size=(6, 1, 2, 2))
    t_host = np.eye(4)[rng.integers(0, 4, 6)]
    xs, ts = shuffle_dataset(device.asarray(x_host, dtype="float64"), device.asarray(t_host, dtype="float64"),
                             rng=Generator(5))
    order = np.random.default_rng(5).permutation(6)
    np.testing.assert_array_equal(to_numpy(xs), x_host[order])
    np.testing.assert_array_equal(to_numpy(ts), t_host[order])


def test_shuffle_dataset_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="t"):
        shuffle_dataset(CPU.asarray(np.zeros((4, 2))), CPU.asarray(np.zeros(3)))


# --- smooth_curve ------------------------------------------------------------------------------

def numpy_smooth(curve, window_len=11, beta=2.0):
    """Reference: the curve extended by ``window_len // 2`` points at each end, mirrored
    about its first point (``reflect``) and about its end (``symmetric``: the last point
    repeated), then ``np.convolve`` with the normalised ``np.kaiser`` window, ``valid`` part."""
    c = np.asarray(curve, dtype=np.float64)
    half = window_len // 2
    head = np.pad(c, (half, 0), mode="reflect")[:half]
    tail = np.pad(c, (0, half), mode="symmetric")[len(c):]
    window = np.kaiser(window_len, beta)
    return np.convolve(np.concatenate([head, c, tail]), window / window.sum(), mode="valid")


@pytest.mark.parametrize("n, window_len, beta", [
    (6000, 11, 2.0), (11, 11, 2.0), (12, 11, 2.0), (50, 11, 2.0), (40, 5, 2.0), (40, 11, 0.0),
    (40, 21, 8.0), (7, 1, 2.0),
])
def test_smooth_curve_equals_kaiser_convolution(n, window_len, beta):
    rng = np.random.default_rng(n + window_len)
    curve = 2.3 * np.exp(-np.arange(n) / 30.0) + rng.normal(0.0, 0.2, n)
    expected = numpy_smooth(curve, window_len, beta)
    assert expected.shape == (n,)
    for given in (list(curve), curve, CPU.asarray(curve, dtype="float32")):
        out = smooth_curve(given, window_len, beta) if (window_len, beta) != (11, 2.0) else smooth_curve(given)
        assert type(out) is list and len(out) == n and all(type(v) is float for v in out)
        rtol = 1e-6 if getattr(given, "dtype", None) == np.float32 else 1e-13
        np.testing.assert_allclose(out, numpy_smooth(np.asarray(given, dtype=np.float64), window_len, beta),
                                   rtol=rtol, atol=1e-15)


@pytest.mark.parametrize("kwargs, name", [
    ({"window_len": 10}, "window_len"), ({"window_len": 0}, "window_len"), ({"window_len": 3.0}, "window_len"),
    ({"beta": -1.0}, "beta"), ({"beta": "2"}, "beta"),
])
def test_smooth_curve_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        smooth_curve(list(range(30)), **kwargs)


def test_smooth_curve_keeps_length_and_constants():
    assert len(smooth_curve(list(range(50)))) == 50
    np.testing.assert_allclose(smooth_curve([2.5] * 30), [2.5] * 30, rtol=1e-12)
    assert smooth_curve([3.0, 1.0, 2.0]) == [3.0, 1.0, 2.0]  # shorter than the window: unchanged


def test_smooth_curve_smooths_noise_toward_the_constant():
    rng = np.random.default_rng(4)
    noisy = 5.0 + rng.normal(0.0, 0.5, size=300)
    smooth = np.array(smooth_curve(noisy))
    assert smooth.shape == (300,)
    assert np.abs(smooth - 5.0).mean() < 0.5 * np.abs(noisy - 5.0).mean()
    assert smooth.std() < 0.5 * noisy.std()
    assert abs(smooth.mean() - 5.0) < 0.1


def test_smooth_curve_accepts_a_list_of_device_scalars(device):
    # a training loop's loss_list: 0-d arrays on the device
    line = np.linspace(0.0, 1.0, 40)
    values = device.asarray(line, dtype="float64")
    out = smooth_curve([values[i] for i in range(40)])
    assert len(out) == 40 and all(type(v) is float for v in out)
    # a straight line stays straight in the middle, where no mirroring happens
    np.testing.assert_allclose(out[10:30], line[10:30], atol=1e-12)
