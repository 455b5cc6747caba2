"""One-process A/B of the pooling and convolution layers against frozen copies of
their previous implementations (the library keeps only the new ones).

Each round times the old and the new code on the same inputs, in alternating order,
``--inner`` calls each (forward + backward); the result is the median over rounds of
the per-round new/old ratio, with the median times.  On a shared, loaded machine a
ratio from alternating rounds is far steadier than two separate runs.

    python benchmarks/ab_layers.py --rounds 30
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

from array_api_compat import array_namespace
from array_api_compat import device as array_device

from xpnet import backend, layers
from xpnet.util import add_windows, fold, unfold, window_views

Array = Any


class OldPooling:
    """``layers.Pooling`` before the readable rewrite (commit 8dd29c4): a running maximum
    over the strided window views, backward masks built in forward."""

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        self.pool_h, self.pool_w, self.stride, self.pad = pool_h, pool_w, stride, pad
        self.x_shape = None
        self.masks = None

    def forward(self, x: Array) -> Array:
        xp = array_namespace(x)
        self.x_shape = tuple(x.shape)
        views = window_views(xp.permute_dims(x, (1, 0, 2, 3)), self.pool_h, self.pool_w, self.stride, self.pad)
        out, beats = views[0], []
        for view in views[1:]:
            running = xp.maximum(out, view)
            beats.append(running != out)
            out = running
        later = xp.zeros(out.shape, dtype=xp.bool, device=array_device(x))
        self.masks = []
        for beat in reversed(beats):
            self.masks.append(beat & ~later)
            later = later | beat
        self.masks.append(~later)
        self.masks.reverse()
        return xp.permute_dims(out, (1, 0, 2, 3))

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout)
        dout = xp.permute_dims(dout, (1, 0, 2, 3))
        parts = [xp.astype(mask, dout.dtype) * dout for mask in self.masks]
        N, C, H, W = self.x_shape
        dx = add_windows(parts, (C, N, H, W), self.pool_h, self.pool_w, self.stride, self.pad)
        return xp.permute_dims(dx, (1, 0, 2, 3))


class OldConvolution:
    """``layers.Convolution`` before the readable backward (commit 8dd29c4)."""

    input_grad = True

    def __init__(self, W: Array, b: Array, stride: int = 1, pad: int = 0) -> None:
        self.W, self.b, self.stride, self.pad = W, b, stride, pad
        self.x_shape = self.col = self.dout_col = self.dW = self.db = None

    def forward(self, x: Array) -> Array:
        xp = array_namespace(x, self.W)
        FN, C, FH, FW = self.W.shape
        N, _, H, W = x.shape
        out_h = (H + 2 * self.pad - FH) // self.stride + 1
        out_w = (W + 2 * self.pad - FW) // self.stride + 1
        self.x_shape = tuple(x.shape)
        self.col = unfold(x, FH, FW, self.stride, self.pad, out=self.col)
        out = xp.matmul(xp.reshape(self.W, (FN, -1)), self.col)
        out += xp.reshape(self.b, (FN, 1))
        return xp.permute_dims(xp.reshape(out, (FN, N, out_h, out_w)), (1, 0, 2, 3))

    def backward(self, dout: Array) -> Array:
        xp = array_namespace(dout, self.W)
        FN, C, FH, FW = self.W.shape
        dout2 = xp.reshape(xp.permute_dims(dout, (1, 0, 2, 3)), (FN, -1))
        self.db = xp.sum(dout2, axis=1)
        self.dW = xp.reshape(xp.matmul(self.col, dout2.T).T, (FN, C, FH, FW))
        if not self.input_grad:
            return None
        if self.stride == 1 and FH == FW and self.pad < FH and FN <= C:
            flipped = xp.permute_dims(xp.flip(self.W, axis=(2, 3)), (1, 0, 2, 3))
            self.dout_col = unfold(dout, FH, FW, 1, FH - 1 - self.pad, out=self.dout_col)
            dx = xp.matmul(xp.reshape(flipped, (C, -1)), self.dout_col)
            N, _, H, W = self.x_shape
            return xp.permute_dims(xp.reshape(dx, (C, N, H, W)), (1, 0, 2, 3))
        dcol = xp.matmul(xp.reshape(self.W, (FN, -1)).T, dout2)
        return fold(dcol, self.x_shape, FH, FW, self.stride, self.pad)


def normal(rng: backend.Generator, device: backend.Device, shape: tuple[int, int, int, int],
           channel_major: bool) -> Array:
    """A float32 ``(N, C, H, W)`` batch; ``channel_major``: its memory ordered (C, N, H, W),
    as a convolution (and the ReLU after it) hands its output on."""
    if not channel_major:
        return rng.normal(shape, dtype="float32", device=device)
    N, C, H, W = shape
    return device.xp.permute_dims(rng.normal((C, N, H, W), dtype="float32", device=device), (1, 0, 2, 3))


def pooling_cases(device: backend.Device) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    rng = backend.Generator(0)
    xp = device.xp
    cases = {}
    # (100, 30, 24, 24): SimpleConvNet's pool, its dout from Affine (sample-major);
    # (100, 16, 28, 28): DeepConvNet's first pool, its dout from a convolution (channel-major)
    for shape, dout_layout in (((100, 30, 24, 24), "sample-major"), ((100, 16, 28, 28), "channel-major")):
        N, C, H, W = shape
        x = xp.maximum(normal(rng, device, shape, True), 0.0)
        dout = normal(rng, device, (N, C, H // 2, W // 2), dout_layout == "channel-major")
        pair = []
        for layer in (OldPooling(2, 2, stride=2), layers.Pooling(2, 2, stride=2)):
            layer.forward(x)
            pair.append(lambda layer=layer, x=x, dout=dout: (layer.forward(x), layer.backward(dout)))
        cases[f"pool 2x2 s2 {shape} fwd+bwd (dout {dout_layout})"] = tuple(pair)
        forward_only = [lambda layer=layer, x=x: layer.forward(x) for layer in (OldPooling(2, 2), layers.Pooling(2, 2))]
        cases[f"pool 2x2 s2 {shape} forward only"] = tuple(forward_only)
    return cases


def convolution_cases(device: backend.Device) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """DeepConvNet's convolutions through both backward paths, and SimpleConvNet's first layer."""
    rng = backend.Generator(1)
    cases = {}
    # (name, x shape, W shape, pad, input_grad)
    for name, x_shape, w_shape, pad, input_grad in (
            ("conv 1->30 5x5 @28 (first layer)", (100, 1, 28, 28), (30, 1, 5, 5), 0, False),
            ("conv 16->16 3x3 @28 (transposed-convolution dx)", (100, 16, 28, 28), (16, 16, 3, 3), 1, True),
            ("conv 16->32 3x3 @14 (fold dx)", (100, 16, 14, 14), (32, 16, 3, 3), 1, True)):
        x = normal(rng, device, x_shape, True)
        W = rng.normal(w_shape, scale=0.1, dtype="float32", device=device)
        b = rng.normal(w_shape[:1], scale=0.1, dtype="float32", device=device)
        out_shape = (x_shape[0], w_shape[0], x_shape[2] + 2 * pad - w_shape[2] + 1, x_shape[3] + 2 * pad - w_shape[3] + 1)
        dout = normal(rng, device, out_shape, True)
        pair = []
        for layer in (OldConvolution(W, b, pad=pad), layers.Convolution(W, b, pad=pad)):
            layer.input_grad = input_grad
            pair.append(lambda layer=layer, x=x, dout=dout: (layer.forward(x), layer.backward(dout)))
        cases[f"{name} fwd+bwd"] = tuple(pair)
    return cases


def ab(cases: dict[str, tuple[Callable[[], object], Callable[[], object]]], device: backend.Device,
       rounds: int, inner: int) -> list[list[str]]:
    rows = []
    for name, (old, new) in cases.items():
        old(), new()
        times: dict[str, list[float]] = {"old": [], "new": []}
        ratios = []
        for r in range(rounds):
            order = (("old", old), ("new", new)) if r % 2 == 0 else (("new", new), ("old", old))
            for label, fn in order:
                device.synchronize()
                start = time.perf_counter()
                for _ in range(inner):
                    fn()
                device.synchronize()
                times[label].append((time.perf_counter() - start) / inner)
            ratios.append(times["new"][-1] / times["old"][-1])
        rows.append([name, f"{1e3 * statistics.median(times['old']):.2f}", f"{1e3 * statistics.median(times['new']):.2f}",
                     f"{statistics.median(ratios):.3f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--inner", type=int, default=3)
    args = parser.parse_args()
    backend.keep_freed_host_memory()
    device = backend.get_device(args.device)
    rows = ab({**pooling_cases(device), **convolution_cases(device)}, device, args.rounds, args.inner)
    print("| case | old ms | new ms | new/old (median of per-round ratios) |\n| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
