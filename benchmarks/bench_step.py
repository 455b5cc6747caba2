"""Training-step benchmark: xpnet vs PyTorch eager on the book's two convnets.

One process, interleaved rounds (every case once per round), median of the rounds
with min and max.  Cases: a full training step (forward + backward + Adam, batch
100, MNIST-shaped input) and forward only, for SimpleConvNet and DeepConvNet, in
xpnet and (when installed) the same architecture in PyTorch; plus per-layer times
for xpnet.  Prints a Markdown table; ``--write`` also saves it under
``benchmarks/results/``.

    python benchmarks/bench_step.py --device cpu --rounds 7 --write
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

from _report import environment, markdown_table, write_result

from xpnet import backend, layers
from xpnet.nets import DeepConvNet, SimpleConvNet
from xpnet.optimizer import Adam
from xpnet.util import col2im, im2col

NETS = {"SimpleConvNet": SimpleConvNet, "DeepConvNet": DeepConvNet}


def timed(fn: Callable[[], object], device: backend.Device, repeat: int) -> float:
    """Seconds per call of ``fn``, averaged over ``repeat`` calls (device work included)."""
    device.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    device.synchronize()
    return (time.perf_counter() - start) / repeat


def xpnet_cases(device: backend.Device, batch: int, dtype: str) -> dict[str, Callable[[], object]]:
    rng = backend.Generator(0)
    x = rng.uniform((batch, 1, 28, 28), dtype=dtype, device=device)
    t = rng.integers(10, batch, device=device)
    cases = {}
    for name, cls in NETS.items():
        net = cls(dtype=dtype, seed=0, device=device)
        optimizer = Adam(lr=0.001)

        def step(net=net, optimizer=optimizer):
            optimizer.update(net.params, net.gradient(x, t))

        cases[f"{name} train step|xpnet"] = step
        cases[f"{name} forward|xpnet"] = lambda net=net: net.loss(x, t)
    return cases


def layer_cases(device: backend.Device, batch: int, dtype: str) -> dict[str, Callable[[], object]]:
    """Per-layer forward/backward at the shapes SimpleConvNet/DeepConvNet use."""
    rng = backend.Generator(1)
    xp = device.xp

    def normal(*shape):
        return rng.normal(shape, scale=0.1, dtype=dtype, device=device)

    x1 = normal(batch, 1, 28, 28)
    conv1 = layers.Convolution(normal(30, 1, 5, 5), normal(30))
    dconv1 = normal(batch, 30, 24, 24)
    x3 = normal(batch, 16, 14, 14)
    conv3 = layers.Convolution(normal(32, 16, 3, 3), normal(32), pad=1)
    dconv3 = normal(batch, 32, 14, 14)
    pool = layers.Pooling(2, 2, stride=2)
    dpool = normal(batch, 30, 12, 12)
    affine = layers.Affine(normal(4320, 100), normal(100))
    xa, da = normal(batch, 4320), normal(batch, 100)
    bn = layers.BatchNormalization(xp.ones((1024,), dtype=x1.dtype, device=device.native),
                                   xp.zeros((1024,), dtype=x1.dtype, device=device.native))
    xb = normal(batch, 1024)
    col3 = im2col(x3, 3, 3, 1, 1)
    conv1.forward(x1), conv3.forward(x3), pool.forward(dconv1), affine.forward(xa), bn.forward(xb)
    return {
        "conv 1->30 5x5 @28 forward|xpnet": lambda: conv1.forward(x1),
        "conv 1->30 5x5 @28 backward|xpnet": lambda: conv1.backward(dconv1),
        "conv 16->32 3x3 @14 forward|xpnet": lambda: conv3.forward(x3),
        "conv 16->32 3x3 @14 backward|xpnet": lambda: conv3.backward(dconv3),
        "im2col 16ch 3x3 @14|xpnet": lambda: im2col(x3, 3, 3, 1, 1),
        "col2im 16ch 3x3 @14|xpnet": lambda: col2im(col3, tuple(x3.shape), 3, 3, 1, 1),
        "pool 2x2 30ch @24 forward|xpnet": lambda: pool.forward(dconv1),
        "pool 2x2 30ch @24 backward|xpnet": lambda: pool.backward(dpool),
        "affine 4320->100 fwd+bwd|xpnet": lambda: (affine.forward(xa), affine.backward(da)),
        "batchnorm 1024 fwd+bwd|xpnet": lambda: (bn.forward(xb), bn.backward(xb)),
    }


def torch_cases(device_name: str, batch: int, dtype: str) -> dict[str, Callable[[], object]]:
    import torch
    from torch import nn

    device = torch.device("cuda" if device_name.startswith("cuda") else "cpu")
    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((batch, 1, 28, 28), generator=generator).to(device, torch_dtype)
    t = torch.randint(0, 10, (batch,), generator=generator).to(device)

    def conv_relu(cin, cout, pad):
        return [nn.Conv2d(cin, cout, 3, padding=pad), nn.ReLU()]

    models = {
        "SimpleConvNet": nn.Sequential(
            nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(30 * 12 * 12, 100), nn.ReLU(), nn.Linear(100, 10)),
        "DeepConvNet": nn.Sequential(
            *conv_relu(1, 16, 1), *conv_relu(16, 16, 1), nn.MaxPool2d(2, 2),
            *conv_relu(16, 32, 1), *conv_relu(32, 32, 2), nn.MaxPool2d(2, 2),
            *conv_relu(32, 64, 1), *conv_relu(64, 64, 1), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(64 * 4 * 4, 50), nn.ReLU(), nn.Dropout(0.5), nn.Linear(50, 10), nn.Dropout(0.5)),
    }
    loss_fn = nn.CrossEntropyLoss()
    cases = {}
    for name, model in models.items():
        model = model.to(device, torch_dtype)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7)

        def step(model=model, optimizer=optimizer):
            model.train()
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x), t).backward()
            optimizer.step()

        def forward(model=model):
            model.eval()
            with torch.no_grad():
                return loss_fn(model(x), t)

        cases[f"{name} train step|torch"] = step
        cases[f"{name} forward|torch"] = forward
    return cases


def run(cases: dict[str, Callable[[], object]], device: backend.Device, rounds: int,
        min_time: float) -> dict[str, list[float]]:
    """Interleaved rounds: each case timed once per round, ``repeat`` sized to ~min_time."""
    repeats = {}
    for key, fn in cases.items():
        fn()
        once = timed(fn, device, 1)
        repeats[key] = max(1, int(min_time / max(once, 1e-6)))
    samples = {key: [] for key in cases}
    for _ in range(rounds):
        for key, fn in cases.items():
            samples[key].append(timed(fn, device, repeats[key]))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per case per round")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch side")
    parser.add_argument("--no-layers", action="store_true", help="skip the per-layer table")
    parser.add_argument("--write", action="store_true", help="save the table under benchmarks/results/")
    args = parser.parse_args()

    device = backend.get_device(args.device)
    cases = xpnet_cases(device, args.batch, args.dtype)
    notes = []
    if not args.no_torch:
        try:
            cases.update(torch_cases(device.name, args.batch, args.dtype))
        except ImportError:
            notes.append("PyTorch is not installed (pip install 'xpnet[bench]'): its column is empty.")
    samples = run(cases, device, args.rounds, args.min_time)

    rows = []
    for name in NETS:
        for kind in ("train step", "forward"):
            ours = samples[f"{name} {kind}|xpnet"]
            theirs = samples.get(f"{name} {kind}|torch")
            row = [f"{name} {kind}", _ms(ours)]
            row += [_ms(theirs), f"{statistics.median(ours) / statistics.median(theirs):.2f}"] if theirs else ["-", "-"]
            rows.append(row)
    table = markdown_table(["case (batch %d, %s)" % (args.batch, args.dtype),
                            "xpnet ms median [min-max]", "PyTorch ms median [min-max]", "xpnet/PyTorch"], rows)
    sections = [("Training step and forward pass", table)]
    if not args.no_layers:
        layer_samples = run(layer_cases(device, args.batch, args.dtype), device, args.rounds, args.min_time / 2)
        layer_rows = [[key.split("|")[0], _ms(values)] for key, values in layer_samples.items()]
        sections.append(("xpnet per layer", markdown_table(["layer", "ms median [min-max]"], layer_rows)))

    text = environment(device, title="xpnet training-step benchmark", args=vars(args), notes=notes)
    text += "".join(f"\n## {heading}\n\n{body}\n" for heading, body in sections)
    print(text)
    if args.write:
        print(f"written: {write_result('step', device, text)}")


def _ms(values: list[float]) -> str:
    return f"{1e3 * statistics.median(values):.2f} [{1e3 * min(values):.2f}-{1e3 * max(values):.2f}]"


if __name__ == "__main__":
    main()
