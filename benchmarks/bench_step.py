"""Training-step benchmark: xpnet vs PyTorch eager (and the book's code) on the book's two convnets.

One process, interleaved rounds (every case once per round), median of the rounds
with min and max.  Cases: a full training step (forward + backward + Adam, batch
100, MNIST-shaped input) and forward only, for SimpleConvNet and DeepConvNet, in
xpnet, in the same architecture in PyTorch (when installed) and, with
``--book-dir``, in the book's own code (NumPy, float64, from a checkout of the
book's repository); plus per-layer times for xpnet.  Prints a Markdown table;
``--write`` also saves it under ``benchmarks/results/``.

    python benchmarks/bench_step.py --device cpu --rounds 7 --write
    python benchmarks/bench_step.py --device cpu --rounds 7 --book-dir ~/deep-learning-from-scratch

Fairness.  NumPy's OpenBLAS and PyTorch's OpenMP/MKL each keep a thread pool whose
idle threads busy-wait for a while after a call (OpenBLAS: 2**28 TSC cycles, about
0.1 s; libgomp: GOMP_SPINCOUNT spins) before they sleep.  Interleaving the
libraries in one process then lets the previous case's spinning threads steal
cores from the next case.  So every timed block is preceded by an idle gap
(``--gap``, default 0.3 s, longer than those spin times) and by one untimed warm-up
call of the same case (``--warmup``), which puts each library back in its
steady state: its own pool awake, the other pools asleep.  And glibc's malloc
raises its mmap/trim thresholds as large blocks are freed, so a case's page
faults would depend on the cases run before it; ``--malloc pinned`` (default)
fixes the thresholds at their raised values for the whole process.  With both,
each library times within noise what it times alone (``--only torch`` etc.).
"""

from __future__ import annotations

import argparse
import importlib
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from _report import environment, markdown_table, pin_full_fp32, write_result

from xpnet import backend, layers
from xpnet.hostmem import keep_freed_host_memory
from xpnet.nets import DeepConvNet, SimpleConvNet
from xpnet.optimizer import Adam
from xpnet.util import col2im, im2col

NETS = {"SimpleConvNet": SimpleConvNet, "DeepConvNet": DeepConvNet}
LIBRARIES = ("xpnet", "torch", "book")
BOOK_MODULES = {"SimpleConvNet": "ch07.simple_convnet", "DeepConvNet": "ch08.deep_convnet"}


def timed(fn: Callable[[], object], device: backend.Device, repeat: int) -> float:
    """Seconds per call of ``fn``, averaged over ``repeat`` calls (device work included)."""
    device.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    device.synchronize()
    return (time.perf_counter() - start) / repeat


def inputs(device: backend.Device, batch: int, dtype: str):
    """One MNIST-shaped batch (uniform pixels, integer labels) shared by every library."""
    rng = backend.Generator(0)
    return rng.uniform((batch, 1, 28, 28), dtype=dtype, device=device), rng.integers(10, batch, device=device)


def xpnet_cases(device: backend.Device, x, t, dtype: str) -> dict[str, Callable[[], object]]:
    cases = {}
    for name, cls in NETS.items():
        net = cls(dtype=dtype, seed=0, device=device)
        optimizer = Adam(lr=0.001)

        def step(net=net, optimizer=optimizer):  # the book's loop (device labels: checked with no wait)
            optimizer.update(net.params, net.gradient(x, t))

        cases[f"{name} train step|xpnet"] = step
        cases[f"{name} forward|xpnet"] = lambda net=net: net.loss(x, t)
    return cases


def book_cases(book_dir: Path, x, t) -> dict[str, Callable[[], object]]:
    """The book's SimpleConvNet (ch07), DeepConvNet (ch08) and Adam, imported from ``book_dir``.

    Nothing of the book's code lives in this repository: ``book_dir`` is a checkout
    of its repository (the folder holding ``common/``, ``ch07/`` and ``ch08/``).
    Its code is used as it is: float64 (its ``np.zeros``/``np.random.randn``
    defaults), on the host with NumPy, whatever ``--device`` says.
    """
    book_dir = book_dir.expanduser().resolve()
    needed = ["common/layers.py", "common/optimizer.py", *(f"{m.replace('.', '/')}.py" for m in BOOK_MODULES.values())]
    for part in needed:
        if not (book_dir / part).is_file():
            raise SystemExit(f"--book-dir {book_dir}: no {part} there (expected a checkout of the book's repository)")
    # The book's modules import `common.layers` etc. as top-level packages (their own
    # sys.path.append(os.pardir) only works from inside ch07/ or ch08/).
    sys.path.insert(0, str(book_dir))
    modules = {name: importlib.import_module(module) for name, module in BOOK_MODULES.items()}
    book_adam = importlib.import_module("common.optimizer").Adam
    for module in (*modules.values(), sys.modules["common.layers"]):
        if book_dir not in Path(module.__file__).resolve().parents:
            raise SystemExit(f"{module.__name__} was imported from {module.__file__}, not from {book_dir}: "
                             "another package of that name shadows the book's")

    x64 = backend.to_numpy(x).astype(np.float64)
    t64 = backend.to_numpy(t).astype(np.int64)
    np.random.seed(0)  # the book draws its weights and Dropout masks from NumPy's global generator
    cases = {}
    for name, module in modules.items():
        net = getattr(module, name)()
        optimizer = book_adam(lr=0.001)

        def step(net=net, optimizer=optimizer):
            grads = net.gradient(x64, t64)
            optimizer.update(net.params, grads)

        cases[f"{name} train step|book"] = step
        cases[f"{name} forward|book"] = lambda net=net: net.loss(x64, t64)
    return cases


# Convolution algorithms timed per layer: name -> "module:Class", built like layers.Convolution(W, b, stride=, pad=).
# Another one (e.g. a Winograd 3x3 convolution) joins by an entry here or by --conv-algorithm NAME=module:Class.
CONV_ALGORITHMS = {"im2col": "xpnet.layers:Convolution"}

# The convolutions of SimpleConvNet and DeepConvNet at batch 100:
# (label, input (C, H, W), filters (FN, C, FH, FW), pad, first layer (no input gradient))
CONV_SHAPES = [
    ("Simple conv1 1->30 5x5 @28", (1, 28, 28), (30, 1, 5, 5), 0, True),
    ("Deep conv1 1->16 3x3 @28", (1, 28, 28), (16, 1, 3, 3), 1, True),
    ("Deep conv2 16->16 3x3 @28", (16, 28, 28), (16, 16, 3, 3), 1, False),
    ("Deep conv3 16->32 3x3 @14", (16, 14, 14), (32, 16, 3, 3), 1, False),
    ("Deep conv4 32->32 3x3 @14 pad 2", (32, 14, 14), (32, 32, 3, 3), 2, False),
    ("Deep conv5 32->64 3x3 @8", (32, 8, 8), (64, 32, 3, 3), 1, False),
    ("Deep conv6 64->64 3x3 @8", (64, 8, 8), (64, 64, 3, 3), 1, False),
]


def conv_algorithm_classes(extra: list[str]) -> tuple[dict[str, type], list[str]]:
    """``CONV_ALGORITHMS`` plus ``NAME=module:Class`` entries, imported; notes on what could not be."""
    specs = dict(CONV_ALGORITHMS)
    for entry in extra:
        name, sep, target = entry.partition("=")
        if not sep or ":" not in target:
            raise SystemExit(f"--conv-algorithm {entry!r}: expected NAME=module:Class")
        specs[name] = target
    classes, notes = {}, []
    for name, target in specs.items():
        module, _, attr = target.partition(":")
        try:
            classes[name] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            notes.append(f"convolution algorithm {name} ({target}) not timed: {exc}")
    return classes, notes


def conv_layer_cases(device: backend.Device, batch: int, dtype: str,
                     algorithms: dict[str, type]) -> tuple[dict[str, Callable[[], object]], list[str]]:
    """Forward and backward of each of the nets' convolutions, for each algorithm.

    Keys ``"<shape> forward|<algorithm>"`` and ``"<shape> backward|<algorithm>"``.
    Inputs and ``dout`` are channel-major, as the previous layer hands them on in
    the nets; an algorithm that refuses a shape (``ValueError``) leaves its cell empty.
    """
    rng, xp, cases, notes = backend.Generator(2), device.xp, {}, []
    for label, (C, H, W), w_shape, pad, first in CONV_SHAPES:
        FN, _, FH, FW = w_shape
        x = xp.permute_dims(rng.normal((C, batch, H, W), dtype=dtype, device=device), (1, 0, 2, 3))
        dout = xp.permute_dims(rng.normal((FN, batch, H + 2 * pad - FH + 1, W + 2 * pad - FW + 1), dtype=dtype,
                                          device=device), (1, 0, 2, 3))
        Wt = rng.normal(w_shape, scale=0.1, dtype=dtype, device=device)
        b = rng.normal((FN,), scale=0.1, dtype=dtype, device=device)
        for name, cls in algorithms.items():
            try:
                layer = cls(Wt, b, stride=1, pad=pad)
                layer.input_grad = not first
                layer.forward(x)
                layer.backward(dout)
            except ValueError as exc:
                notes.append(f"{name} does not take {label}: {exc}")
                continue
            cases[f"{label} forward|{name}"] = lambda layer=layer, x=x: layer.forward(x)
            cases[f"{label} backward|{name}"] = lambda layer=layer, dout=dout: layer.backward(dout)
    return cases, notes


def layer_cases(device: backend.Device, batch: int, dtype: str) -> dict[str, Callable[[], object]]:
    """Per-layer times of the other layers (and im2col/col2im) at the shapes the nets use."""
    rng = backend.Generator(1)
    xp = device.xp

    def normal(*shape):
        return rng.normal(shape, scale=0.1, dtype=dtype, device=device)

    x3 = normal(batch, 16, 14, 14)
    pool = layers.Pooling(2, 2, stride=2)
    xpool = xp.permute_dims(normal(30, batch, 24, 24), (1, 0, 2, 3))  # channel-major, as a convolution hands it on
    dpool = normal(batch, 30, 12, 12)
    affine = layers.Affine(normal(4320, 100), normal(100))
    xa, da = normal(batch, 4320), normal(batch, 100)
    bn = layers.BatchNormalization(xp.ones((1024,), dtype=x3.dtype, device=device.native),
                                   xp.zeros((1024,), dtype=x3.dtype, device=device.native))
    xb = normal(batch, 1024)
    col3 = im2col(x3, 3, 3, 1, 1)
    pool.forward(xpool), affine.forward(xa), bn.forward(xb)
    return {
        "im2col 16ch 3x3 @14|xpnet": lambda: im2col(x3, 3, 3, 1, 1),
        "col2im 16ch 3x3 @14|xpnet": lambda: col2im(col3, tuple(x3.shape), 3, 3, 1, 1),
        "pool 2x2 30ch @24 forward|xpnet": lambda: pool.forward(xpool),
        "pool 2x2 30ch @24 backward|xpnet": lambda: pool.backward(dpool),
        "affine 4320->100 fwd+bwd|xpnet": lambda: (affine.forward(xa), affine.backward(da)),
        "batchnorm 1024 fwd+bwd|xpnet": lambda: (bn.forward(xb), bn.backward(xb)),
    }


def torch_cases(device_name: str, x, t, dtype: str) -> dict[str, Callable[[], object]]:
    import torch
    from torch import nn

    device = torch.device("cuda" if device_name.startswith("cuda") else "cpu")
    torch_dtype = getattr(torch, dtype)
    torch.manual_seed(0)
    x = torch.from_numpy(backend.to_numpy(x)).to(device, torch_dtype)
    t = torch.from_numpy(backend.to_numpy(t)).to(device, torch.int64)

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


def run(cases: dict[str, Callable[[], object]], device: backend.Device, rounds: int, min_time: float,
        gap: float = 0.0, warmup: int = 0) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Interleaved rounds: each case timed once per round, ``repeat`` sized to ~min_time.

    Before each timed block: ``gap`` seconds idle (the other libraries' spinning
    threads go to sleep), then ``warmup`` untimed calls of the case itself.
    Returns the seconds per call and the minor page faults per call, per round.
    """
    repeats = {}
    for key, fn in cases.items():
        fn()
        once = timed(fn, device, 1)
        repeats[key] = max(1, int(min_time / max(once, 1e-6)))
    samples = {key: [] for key in cases}
    faults = {key: [] for key in cases}
    for _ in range(rounds):
        for key, fn in cases.items():
            if gap > 0:
                time.sleep(gap)
            for _ in range(warmup):
                fn()
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            samples[key].append(timed(fn, device, repeats[key]))
            faults[key].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / repeats[key])
    return samples, faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per case per round")
    parser.add_argument("--gap", type=float, default=0.3,
                        help="idle seconds before each timed block, so other libraries' spinning threads sleep")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls of a case right before timing it")
    parser.add_argument("--book-dir", type=Path, default=None,
                        help="a checkout of the book's repository (oreilly-japan/deep-learning-from-scratch): "
                             "adds its code (float64) as a reference column")
    parser.add_argument("--only", default=",".join(LIBRARIES),
                        help="comma-separated subset of xpnet,torch,book to run (e.g. to time one library alone)")
    parser.add_argument("--malloc", choices=["pinned", "default"], default="pinned",
                        help="pinned: glibc's mmap/trim thresholds fixed at their raised values (same allocator state "
                             "for every case); default: glibc's history-dependent thresholds")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch side")
    parser.add_argument("--no-layers", action="store_true", help="skip the per-layer tables")
    parser.add_argument("--conv-algorithm", action="append", default=[], metavar="NAME=module:Class",
                        help="also time this convolution class per layer (built like xpnet.layers.Convolution), "
                             "e.g. winograd=xpnet.winograd:Convolution3x3; repeatable")
    parser.add_argument("--write", action="store_true", help="save the table under benchmarks/results/")
    args = parser.parse_args()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if unknown := only - set(LIBRARIES):
        parser.error(f"--only: unknown {', '.join(sorted(unknown))} (choose from {', '.join(LIBRARIES)})")

    pinned = args.malloc == "pinned" and keep_freed_host_memory()
    precision = pin_full_fp32()
    device = backend.get_device(args.device)
    x, t = inputs(device, args.batch, args.dtype)
    cases = xpnet_cases(device, x, t, args.dtype) if "xpnet" in only else {}
    notes = [precision, f"each timed block follows a {args.gap:g} s idle gap and {args.warmup} untimed warm-up call(s) "
             "of the same case, so thread pools spinning after the previous case (OpenBLAS, OpenMP) "
             "are asleep and the case's own pool is awake"]
    if args.no_torch or "torch" not in only:
        notes.append("PyTorch not run (--no-torch or --only): its column is empty.")
    else:
        try:
            cases.update(torch_cases(device.name, x, t, args.dtype))
        except ImportError:
            notes.append("PyTorch is not installed (pip install 'xpnet[bench]'): its column is empty.")
    if args.book_dir is not None and "book" in only:
        cases.update(book_cases(args.book_dir, x, t))
        notes.append(f"book column: the book's own code (ch07 SimpleConvNet, ch08 DeepConvNet, common.optimizer.Adam) "
                     f"from {args.book_dir}, float64, NumPy on the host")
    else:
        notes.append("book column empty: pass --book-dir PATH, a checkout of the book's repository "
                     "(https://github.com/oreilly-japan/deep-learning-from-scratch), to time the book's code "
                     "(float64) as a reference")
    samples, faults = run(cases, device, args.rounds, args.min_time, args.gap, args.warmup)
    notes.append("minor page faults per train step (median of rounds): " + "; ".join(
        f"{name} " + ", ".join(f"{lib} {statistics.median(faults[key]):.0f}" for lib in LIBRARIES
                               if (key := f"{name} train step|{lib}") in faults) for name in NETS))
    if pinned:
        notes.append("malloc pinned (--malloc pinned): glibc's mmap threshold 32 MiB, trim threshold 64 MiB, the values "
                     "its own rule reaches after large frees, so no case's page faults depend on the cases before it; "
                     "a process that trains SimpleConvNet alone with glibc's defaults pays page faults every step "
                     "(see bench_epoch.py, or --malloc default --only ...)")
    elif args.malloc == "pinned":
        notes.append("malloc could not be pinned (no glibc mallopt here): allocator state may depend on case order")
    else:
        notes.append("malloc default: glibc's thresholds rise as large blocks are freed, so page faults (and times) "
                     "of a case can depend on the cases run before it in this process")

    rows = []
    for name in NETS:
        for kind in ("train step", "forward"):
            ours, theirs, book = (samples.get(f"{name} {kind}|{lib}") for lib in LIBRARIES)
            rows.append([f"{name} {kind}", _ms(ours), _ms(theirs), _ms(book),
                         _ratio(ours, theirs), _ratio(book, ours)])
    table = markdown_table(["case (batch %d, %s)" % (args.batch, args.dtype), "xpnet ms median [min-max]",
                            "PyTorch ms median [min-max]", "book (float64) ms median [min-max]",
                            "xpnet/PyTorch", "book/xpnet"], rows)
    sections = [("Training step and forward pass", table)]
    if not args.no_layers and "xpnet" in only:
        algorithms, algorithm_notes = conv_algorithm_classes(args.conv_algorithm)
        conv_cases, shape_notes = conv_layer_cases(device, args.batch, args.dtype, algorithms)
        conv_samples, _ = run(conv_cases, device, args.rounds, args.min_time / 2)
        conv_rows = [[f"{label} {kind}", name, _ms(conv_samples[key])]
                     for label, *_ in CONV_SHAPES for kind in ("forward", "backward") for name in algorithms
                     if (key := f"{label} {kind}|{name}") in conv_samples]
        sections.append(("xpnet convolutions per layer, one row per algorithm", markdown_table(
            [f"convolution (batch {args.batch}; first layers skip dx)", "algorithm", "ms median [min-max]"],
            conv_rows)))
        notes.extend(algorithm_notes + shape_notes)
        layer_samples, _ = run(layer_cases(device, args.batch, args.dtype), device, args.rounds, args.min_time / 2)
        layer_rows = [[key.split("|")[0], _ms(values)] for key, values in layer_samples.items()]
        sections.append(("xpnet per layer", markdown_table(["layer", "ms median [min-max]"], layer_rows)))

    text = environment(device, title="xpnet training-step benchmark", args=vars(args), notes=notes)
    text += "".join(f"\n## {heading}\n\n{body}\n" for heading, body in sections)
    print(text)
    if args.write:
        print(f"written: {write_result('step', device, text)}")


def _ms(values: list[float] | None) -> str:
    low, high = (1e3 * min(values), 1e3 * max(values)) if values else (0.0, 0.0)
    return f"{1e3 * statistics.median(values):.2f} [{low:.2f}-{high:.2f}]" if values else "-"


def _ratio(numerator: list[float] | None, denominator: list[float] | None) -> str:
    if not numerator or not denominator:
        return "-"
    return f"{statistics.median(numerator) / statistics.median(denominator):.2f}"


if __name__ == "__main__":
    main()
