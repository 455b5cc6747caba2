"""Per-layer benchmark of the 3x3 convolution algorithms at DeepConvNet's shapes.

Algorithms, each behind the same (forward, backward) pair:

- ``unfold``: :class:`xpnet.layers.Convolution` (im2col as ``unfold`` + one GEMM),
  the reference;
- ``winograd``: :mod:`xpnet.winograd` (F(2x2, 3x3));
- ``implicit``: implicit GEMM over the flattened padded image (defined here only, a
  measured candidate): in the channel-major layout ``(C, N*Hp*Wp)`` every filter
  offset ``(i, j)`` is the contiguous shifted slice starting at ``i*Wp + j``, so the
  convolution is 9 GEMMs ``W[:, :, i, j] @ slice`` accumulated into an output in the
  same padded layout, whose border columns are junk and dropped.

One process, rounds alternating every (shape, algorithm, phase) case; each case is one
untimed warm-up call then ``--repeat`` timed calls; the table gives the median over
rounds and the ratio to ``unfold`` (above 1: faster than unfold).  Inputs and ``dout``
are channel-major views, as the layers hand them to each other in a net; the first
layer skips ``dx`` (``input_grad = False``) as nets do.  ``--ops`` counts, per layer
and algorithm, the non-view tensor operations of forward and forward+backward on
xpnet's torch backend (``TorchDispatchMode``; views and aliases are not counted).

    python benchmarks/bench_conv.py --rounds 7
    python benchmarks/bench_conv.py --ops
    python benchmarks/bench_conv.py --accuracy 150

``--accuracy STEPS`` trains DeepConvNet (float32, Adam, batch 100) for STEPS steps on the
bundled MNIST sample with the unfold convolutions, then evaluates its 2,000 test digits
with unfold and with Winograd in every layer where it is valid (the first, C=1, too):
test accuracy of both, predictions that differ, and the logits' relative error against
a float64 copy of the same net.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time

from xpnet import backend, layers, winograd

# name: (C, FN, H, pad) at batch 100, DeepConvNet's six convolutions.
SHAPES = {
    "conv1 1->16 28x28": (1, 16, 28, 1),
    "conv2 16->16 28x28": (16, 16, 28, 1),
    "conv3 16->32 14x14": (16, 32, 14, 1),
    "conv4 32->32 14x14 p2": (32, 32, 14, 2),
    "conv5 32->64 8x8": (32, 64, 8, 1),
    "conv6 64->64 8x8": (64, 64, 8, 1),
}


class Unfold:
    def __init__(self, W, b, pad, input_grad):
        self.conv = layers.Convolution(W, b, stride=1, pad=pad)
        self.conv.input_grad = input_grad

    def forward(self, x):
        return self.conv.forward(x)

    def backward(self, dout):
        return self.conv.backward(dout), self.conv.dW, self.conv.db


class Winograd:
    def __init__(self, W, b, pad, input_grad):
        self.W, self.b, self.pad, self.input_grad = W, b, pad, input_grad

    def forward(self, x):
        out, self.saved = winograd.conv3x3_forward(x, self.W, self.b, self.pad)
        return out

    def backward(self, dout):
        return winograd.conv3x3_backward(dout, self.saved, input_grad=self.input_grad)


class Implicit:
    """Implicit GEMM over the flattened padded image (candidate (b) of issue 14)."""

    def __init__(self, W, b, pad, input_grad):
        self.W, self.b, self.pad, self.input_grad = W, b, pad, input_grad

    def _geometry(self, N, H, Wd):
        Hp, Wp = H + 2 * self.pad, Wd + 2 * self.pad
        return Hp, Wp, N * Hp * Wp, N * Hp * Wp - 2 * Wp - 2

    def forward(self, x):
        xp = backend.device_of(x).xp
        FN, C = self.W.shape[0], self.W.shape[1]
        N, _, H, Wd = x.shape
        Hp, Wp, L, span = self._geometry(N, H, Wd)
        p = self.pad
        self.x_shape = (N, C, H, Wd)
        img = xp.zeros((C, N, Hp, Wp), dtype=x.dtype, device=backend.device_of(x).native)
        img[:, :, p:p + H, p:p + Wd] = xp.permute_dims(x, (1, 0, 2, 3))
        self.flat = xp.reshape(img, (C, L))
        self.Wk = xp.reshape(xp.permute_dims(self.W, (2, 3, 0, 1)), (9, FN, C))
        acc = xp.zeros((FN, L), dtype=x.dtype, device=backend.device_of(x).native)
        for k in range(9):
            off = (k // 3) * Wp + k % 3
            acc[:, :span] += xp.matmul(self.Wk[k, ...], self.flat[:, off:off + span])
        out = xp.reshape(acc, (FN, N, Hp, Wp))[:, :, :H + 2 * p - 2, :Wd + 2 * p - 2]
        out += xp.reshape(self.b, (FN, 1, 1, 1))
        return xp.permute_dims(out, (1, 0, 2, 3))

    def backward(self, dout):
        xp = backend.device_of(dout).xp
        native = backend.device_of(dout).native
        N, C, H, Wd = self.x_shape
        FN = self.W.shape[0]
        Hp, Wp, L, span = self._geometry(N, H, Wd)
        db = xp.sum(dout, axis=(0, 2, 3))
        dpad = xp.zeros((FN, N, Hp, Wp), dtype=dout.dtype, device=native)
        dpad[:, :, :H + 2 * self.pad - 2, :Wd + 2 * self.pad - 2] = xp.permute_dims(dout, (1, 0, 2, 3))
        dflat = xp.reshape(dpad, (FN, L))[:, :span]
        offsets = [(k // 3) * Wp + k % 3 for k in range(9)]
        dWk = xp.stack([xp.matmul(dflat, self.flat[:, off:off + span].T) for off in offsets])
        dW = xp.permute_dims(xp.reshape(dWk, (3, 3, FN, C)), (2, 3, 0, 1))
        if not self.input_grad:
            return None, dW, db
        dimg = xp.zeros((C, L), dtype=dout.dtype, device=native)
        for k, off in enumerate(offsets):
            dimg[:, off:off + span] += xp.matmul(self.Wk[k, ...].T, dflat)
        p = self.pad
        dx = xp.reshape(dimg, (C, N, Hp, Wp))[:, :, p:p + H, p:p + Wd]
        return xp.permute_dims(dx, (1, 0, 2, 3)), dW, db


ALGORITHMS = {"unfold": Unfold, "winograd": Winograd, "implicit": Implicit}


def layer_inputs(device, name, batch, dtype, seed=0):
    """``(x, W, b, dout, input_grad)`` for one layer shape; ``x``/``dout`` channel-major views."""
    C, FN, H, pad = SHAPES[name]
    rng = backend.Generator(seed)
    xp = device.xp
    out = H + 2 * pad - 2
    x = rng.normal((batch, C, H, H), dtype=dtype, device=device)
    if C > 1:
        x = xp.permute_dims(rng.normal((C, batch, H, H), dtype=dtype, device=device), (1, 0, 2, 3))
    dout = xp.permute_dims(rng.normal((FN, batch, out, out), dtype=dtype, device=device), (1, 0, 2, 3))
    W = rng.normal((FN, C, 3, 3), scale=0.1, dtype=dtype, device=device)
    b = rng.normal((FN,), scale=0.1, dtype=dtype, device=device)
    return x, W, b, dout, C > 1


def cases(device, batch, dtype):
    result = {}
    for name in SHAPES:
        x, W, b, dout, input_grad = layer_inputs(device, name, batch, dtype)
        for algo, cls in ALGORITHMS.items():
            layer = cls(W, b, SHAPES[name][3], input_grad)
            result[(name, algo, "forward")] = lambda layer=layer, x=x: layer.forward(x)

            def step(layer=layer, x=x, dout=dout):
                layer.forward(x)
                return layer.backward(dout)

            result[(name, algo, "fwd+bwd")] = step
    return result


def time_all(device, batch, dtype, rounds, repeat, stat):
    table = cases(device, batch, dtype)
    times = collections.defaultdict(list)
    for _ in range(rounds):
        for key, fn in table.items():
            fn()
            device.synchronize()
            start = time.perf_counter()
            for _ in range(repeat):
                fn()
            device.synchronize()
            times[key].append((time.perf_counter() - start) / repeat * 1e3)
    return {key: getattr(statistics, stat, min)(values) for key, values in times.items()}


def count_ops(batch, dtype):
    """``{(layer, algorithm, phase): (count, Counter of op names)}`` on xpnet's torch backend."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not func.is_view and func.__name__ not in ("_unsafe_view.default", "lift_fresh.default"):
                self.ops[func.__name__.split(".")[0]] += 1
            return func(*args, **(kwargs or {}))

    device = backend.get_device(torch, torch.device("cpu"))
    result = {}
    for name in SHAPES:
        x, W, b, dout, input_grad = layer_inputs(device, name, batch, dtype)
        for algo, cls in ALGORITHMS.items():
            layer = cls(W, b, SHAPES[name][3], input_grad)
            layer.forward(x)  # warm caches (transform matrices, column buffers)
            layer.backward(dout)
            for phase in ("forward", "fwd+bwd"):
                with Counter() as counter:
                    layer.forward(x)
                    if phase == "fwd+bwd":
                        layer.backward(dout)
                result[(name, algo, phase)] = (sum(counter.ops.values()), counter.ops)
    return result


def winograd_everywhere(net) -> None:
    """Route every Winograd-valid Convolution of ``net`` through :mod:`xpnet.winograd`."""
    for layer in net.layers:
        if isinstance(layer, layers.Convolution) and winograd.winograd_valid(
                tuple(layer.W.shape), layer.stride, layer.pad, (1, layer.W.shape[1], 28, 28)):
            def forward(x, layer=layer):
                out, layer.saved = winograd.conv3x3_forward(x, layer.W, layer.b, layer.pad)
                return out

            def backward(dout, layer=layer):
                dx, layer.dW, layer.db = winograd.conv3x3_backward(dout, layer.saved, input_grad=layer.input_grad)
                return dx

            layer.forward, layer.backward = forward, backward


def accuracy_check(steps: int) -> None:
    import numpy as np

    from xpnet.datasets import load_mnist_sample
    from xpnet.nets import DeepConvNet
    from xpnet.optimizer import Adam

    (x_train, t_train), (x_test, t_test) = load_mnist_sample(flatten=False)
    net = DeepConvNet(seed=0)
    optimizer, rng = Adam(lr=0.001), backend.Generator(0)
    for _ in range(steps):
        batch = np.asarray(rng.integers(len(x_train), 100))
        optimizer.update(net.params, net.gradient(x_train[batch], t_train[batch]))
    net64 = DeepConvNet(seed=0, dtype="float64")
    for key, value in net.params.items():
        net64.params[key][...] = value.astype(np.float64)
    logits64 = np.concatenate([net64.predict(x_test[i:i + 500].astype(np.float64)) for i in range(0, 2000, 500)])
    results = {}
    for name in ("unfold", "winograd"):
        if name == "winograd":
            winograd_everywhere(net)
        logits = np.concatenate([net.predict(x_test[i:i + 500]) for i in range(0, 2000, 500)])
        err = np.linalg.norm(logits - logits64) / np.linalg.norm(logits64)
        results[name] = logits.argmax(axis=1)
        print(f"{name}: test accuracy {np.mean(results[name] == t_test):.4f}, "
              f"logits relative error vs float64 {err:.2e}")
    print(f"after {steps} steps: {int(np.sum(results['unfold'] != results['winograd']))} of 2000 predictions differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--backend", choices=("numpy", "torch"), default="numpy", help="where to time")
    parser.add_argument("--stat", choices=("median", "min"), default="median", help="over rounds")
    parser.add_argument("--ops", action="store_true", help="count ops on the torch backend instead of timing")
    parser.add_argument("--accuracy", type=int, metavar="STEPS", help="train, then compare test accuracy")
    args = parser.parse_args()
    if args.accuracy is not None:
        accuracy_check(args.accuracy)
        return
    algos = list(ALGORITHMS)
    if args.ops:
        counts = count_ops(args.batch, args.dtype)
        print("| layer | phase | " + " | ".join(algos) + " | largest (winograd) |")
        print("| --- | --- |" + " --- |" * (len(algos) + 1))
        for name in SHAPES:
            for phase in ("forward", "fwd+bwd"):
                top = ", ".join(f"{op} {n}" for op, n in counts[(name, "winograd", phase)][1].most_common(4))
                print(f"| {name} | {phase} | " + " | ".join(str(counts[(name, a, phase)][0]) for a in algos)
                      + f" | {top} |")
        return
    backend.keep_freed_host_memory()
    if args.backend == "torch":
        import torch

        device = backend.get_device(torch, torch.device("cpu"))
    else:
        device = backend.CPU
    medians = time_all(device, args.batch, args.dtype, args.rounds, args.repeat, args.stat)
    print(f"batch {args.batch}, {args.dtype}, {args.backend} backend; {args.stat} of {args.rounds} rounds of "
          f"{args.repeat} calls, ms; (x) = unfold time / this time")
    print("| layer | phase | " + " | ".join(algos) + " |")
    print("| --- | --- |" + " --- |" * len(algos))
    for name in SHAPES:
        for phase in ("forward", "fwd+bwd"):
            ref = medians[(name, "unfold", phase)]
            cells = [f"{medians[(name, a, phase)]:.2f} ({ref / medians[(name, a, phase)]:.2f}x)" for a in algos]
            print(f"| {name} | {phase} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
