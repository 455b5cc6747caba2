"""Pooling: bit for bit the previous implementation (outputs and gradients, ties included)."""

import numpy as np
import pytest

from xpnet.backend import to_numpy
from xpnet.layers import Pooling


class FrozenPooling:
    """The running-maximum Pooling that ``xpnet.layers.Pooling`` replaced (commit 8dd29c4),
    kept here as the reference: masks from K-1 strict raises of the running maximum,
    the first maximum winning ties.  Its slicing helpers are inlined, with windows
    rounded down (floor) as the library now does."""

    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad

    def _slices(self, H, W):
        out_h = (H + 2 * self.pad - self.pool_h) // self.stride + 1
        out_w = (W + 2 * self.pad - self.pool_w) // self.stride + 1
        s = self.stride
        return out_h, out_w, [(slice(i, i + s * (out_h - 1) + 1, s), slice(j, j + s * (out_w - 1) + 1, s))
                              for i in range(self.pool_h) for j in range(self.pool_w)]

    def forward(self, x, xp):
        self.x_shape = tuple(x.shape)
        N, C, H, W = x.shape
        img = xp.permute_dims(x, (1, 0, 2, 3))
        if self.pad:
            padded = xp.zeros((C, N, H + 2 * self.pad, W + 2 * self.pad), dtype=x.dtype, device=x.device)
            padded[:, :, self.pad:self.pad + H, self.pad:self.pad + W] = img
            img = padded
        *_, slices = self._slices(H, W)
        views = [img[:, :, rows, cols] for rows, cols in slices]
        out, beats = views[0], []
        for view in views[1:]:
            running = xp.maximum(out, view)
            beats.append(running != out)
            out = running
        later = xp.zeros(out.shape, dtype=xp.bool, device=x.device)
        self.masks = []
        for beat in reversed(beats):
            self.masks.append(beat & ~later)
            later = later | beat
        self.masks.append(~later)
        self.masks.reverse()
        return xp.permute_dims(out, (1, 0, 2, 3))

    def backward(self, dout, xp):
        dout = xp.permute_dims(dout, (1, 0, 2, 3))
        parts = [xp.astype(mask, dout.dtype) * dout for mask in self.masks]
        N, C, H, W = self.x_shape
        out_h, out_w, slices = self._slices(H, W)
        p = self.pad
        shape = (C, N, H + 2 * p, W + 2 * p)
        tiles = p == 0 and self.stride == self.pool_h == self.pool_w and out_h * self.stride == H \
            and out_w * self.stride == W
        img = xp.empty(shape, dtype=dout.dtype, device=dout.device) if tiles else \
            xp.zeros(shape, dtype=dout.dtype, device=dout.device)
        for (rows, cols), part in zip(slices, parts):
            if tiles:
                img[:, :, rows, cols] = part
            else:
                img[:, :, rows, cols] += part
        return xp.permute_dims(img[:, :, p:p + H, p:p + W], (1, 0, 2, 3))


def _bits(a):
    a = np.ascontiguousarray(to_numpy(a))
    return a.view(np.uint64 if a.dtype == np.float64 else np.uint32)


# (x shape, pool_h, pool_w, stride, pad)
SHAPES = [
    ((2, 3, 8, 8), 2, 2, 2, 0),      # the nets' pooling: windows tile
    ((2, 2, 9, 9), 2, 2, 2, 0),      # floor: the last row and column are left out
    ((1, 3, 6, 7), 2, 2, 1, 0),      # overlapping windows
    ((2, 2, 8, 8), 3, 3, 2, 1),      # overlapping, padded, floor
    ((1, 2, 7, 5), 3, 2, 3, 0),      # stride larger than the window along W
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("values", ["normal", "relu-ties", "small-ints", "signed-zeros"])
@pytest.mark.parametrize("shape, ph, pw, stride, pad", SHAPES)
def test_pooling_equals_the_previous_implementation_bit_for_bit(device, dtype, values, shape, ph, pw, stride, pad):
    rng = np.random.default_rng([sum(shape), ph, stride, len(values)])
    host = rng.normal(size=shape)
    if values == "relu-ties":
        host = np.maximum(host, 0.0)          # many windows of zeros: every one a tie
    elif values == "small-ints":
        host = rng.integers(-2, 3, size=shape).astype(np.float64)
    elif values == "signed-zeros":
        host = np.where(host > 0, 0.0, -0.0)
    x = device.asarray(host, dtype=dtype)
    new, old = Pooling(ph, pw, stride, pad), FrozenPooling(ph, pw, stride, pad)
    out_new, out_old = new.forward(x), old.forward(x, device.xp)
    if values == "signed-zeros":
        # max(-0.0, 0.0) may be either zero: torch's max reduction and its maximum pick
        # different ones (NumPy's agree).  Equal values; the gradients below stay bit-exact.
        np.testing.assert_array_equal(to_numpy(out_new), to_numpy(out_old))
    else:
        np.testing.assert_array_equal(_bits(out_new), _bits(out_old))
    dout = device.asarray(rng.normal(size=tuple(out_new.shape)), dtype=dtype)   # negatives: -0.0 products
    np.testing.assert_array_equal(_bits(new.backward(dout)), _bits(old.backward(dout, device.xp)))


def test_pooling_keeps_no_mask_in_inference(device):
    layer = Pooling(2, 2)
    layer.forward(device.asarray(np.ones((2, 3, 4, 4)), dtype="float32"))
    assert not hasattr(layer, "masks") and not hasattr(layer, "mask")


@pytest.mark.parametrize("args, name", [
    ((0, 2), "pool_h"), ((2, 1.5), "pool_w"), ((2, 2, 0), "stride"), ((2, 2, 2, -1), "pad"),
])
def test_pooling_rejects_bad_arguments(args, name):
    with pytest.raises(ValueError, match=name):
        Pooling(*args)
