"""No-sync check: training steps on a GPU must never wait for the GPU (zero implicit syncs).

A step that copies a number to the host (``float(loss)``, ``.item()``, a boolean test on a
device array) makes the host wait for every queued kernel, so the GPU idles while Python
launches the next ones.  For SimpleConvNet and DeepConvNet this runs, after warm-up steps
(kernel compilation, lazily created Adam state, the random pool), a few steps two ways:

1. ``net.gradient`` + ``Adam.update`` (the book's loop: labels checked by default, batch on the
   GPU or on the host), and ``Trainer.train_step`` (within an epoch, between loss flushes),
   under ``cupyx.allow_synchronize(False)``, which raises at the first sync CuPy sees
   (deprecated since CuPy 10: skipped with a note where it is gone);
2. one more step queued behind a kernel that keeps the GPU busy for ``--spin`` seconds: if the
   host gets through it before that kernel ends, it never waited for the GPU.  One step only:
   CUDA queues about a thousand launches, and a host launching more blocks on the full queue
   (DeepConvNet's step is ~500 launches).

    python3 ci/gpu_nosync.py            # on a CUDA machine; exit status 1 on any sync
    python3 ci/gpu_nosync.py --device cpu   # rehearsal: runs the steps, checks nothing

Prints one line per net and check, ``ok`` or ``SYNC``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

from xpnet import backend
from xpnet.nets import DeepConvNet, SimpleConvNet
from xpnet.optimizer import Adam
from xpnet.trainer import Trainer

NETS = {"SimpleConvNet": SimpleConvNet, "DeepConvNet": DeepConvNet}
SPIN_SOURCE = r"""
extern "C" __global__ void spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
"""


def steps(name: str, device: backend.Device, batch: int) -> dict[str, Callable[[], None]]:
    """Two step functions for net ``name`` on ``device``: the bare step and the Trainer's."""
    rng = backend.Generator(0)
    x = rng.uniform((batch, 1, 28, 28), device=device)
    t = rng.integers(10, batch, device=device)
    net, optimizer = NETS[name](seed=0, device=device), Adam(lr=0.001)

    def bare() -> None:  # the book's loop, as a learner writes it: the labels' check is on the GPU
        grads = net.gradient(x, t)
        optimizer.update(net.params, grads)

    x_host, t_host = backend.to_numpy(x), backend.to_numpy(t)

    def bare_host() -> None:  # the same with the batch on the host (the book's NumPy data): one upload
        optimizer.update(net.params, net.gradient(x_host, t_host))

    size = 40 * batch  # 40 steps per epoch: warm-up and checks stay inside the first one
    x_train, t_train = rng.uniform((size, 1, 28, 28), device=device), rng.integers(10, size, device=device)
    trainer = Trainer(NETS[name](seed=0, device=device), x_train, t_train, x_train[:batch], t_train[:batch],
                      epochs=1, mini_batch_size=batch, optimizer="Adam", optimizer_param={"lr": 0.001},
                      verbose=False, device=device, seed=0)
    return {"gradient + Adam.update": bare, "gradient + Adam.update, NumPy batch": bare_host,
            "Trainer.train_step": trainer.train_step}


def guard_check(step: Callable[[], None], count: int) -> str:
    """``ok``, ``SYNC: ...`` or ``skipped: ...`` for ``count`` steps under ``allow_synchronize(False)``."""
    import cupyx

    allow = getattr(cupyx, "allow_synchronize", None)
    if allow is None:
        return "skipped: this CuPy has no cupyx.allow_synchronize (removed after its deprecation)"
    try:
        with allow(False):
            for _ in range(count):
                step()
    except cupyx.DeviceSynchronized as exc:
        return f"SYNC: {exc!r}"
    return "ok"


def spin_check(step: Callable[[], None], count: int, device: backend.Device, seconds: float) -> str:
    """``ok`` when ``count`` steps queued behind a ``seconds``-long kernel finish on the host first."""
    import cupy

    with device.activate():
        kernel = cupy.RawKernel(SPIN_SOURCE, "spin")
        kernel((1,), (1,), (cupy.int64(1000),))  # compile and load it first
        device.synchronize()
        start = time.perf_counter()
        kernel((1,), (1,), (cupy.int64(10**7),))  # calibrate: how long do 10**7 cycles take?
        device.synchronize()
        cycles = int(10**7 * seconds / max(time.perf_counter() - start, 1e-6))
        start = time.perf_counter()
        kernel((1,), (1,), (cupy.int64(cycles),))
        for _ in range(count):
            step()
        host = time.perf_counter() - start
        done = cupy.cuda.Event()
        done.record()
        busy = not done.query()
        device.synchronize()
        total = time.perf_counter() - start
    verdict = "ok" if busy else "SYNC"
    return f"{verdict}: host queued {count} steps in {host:.3f} s; GPU done after {total:.3f} s (spin {seconds} s)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (rehearsal: no checks)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--spin", type=float, default=2.0, help="seconds the GPU is kept busy in check 2")
    args = parser.parse_args()
    device = backend.get_device(args.device)
    on_gpu = device.name.startswith("cuda")
    failures = 0
    print(f"gpu_nosync: device {device.name}, batch {args.batch}, {args.warmup} warm-up + {args.steps} checked steps")
    for name in NETS:
        for kind, step in steps(name, device, args.batch).items():
            for _ in range(args.warmup):
                step()
            if not on_gpu:
                start = time.perf_counter()
                for _ in range(args.steps):
                    step()
                print(f"{name} {kind}: ran {args.steps} steps in {time.perf_counter() - start:.2f} s; "
                      "sync checks skipped (no GPU: rehearsal)")
                continue
            results = {"allow_synchronize(False)": guard_check(step, args.steps),
                       "behind a busy GPU": spin_check(step, 1, device, args.spin)}
            for check, result in results.items():
                failures += result.startswith("SYNC")
                print(f"{name} {kind}, {check}: {result}", flush=True)
    print(f"gpu_nosync: {'no implicit sync' if not failures else f'{failures} check(s) found a sync'}"
          + ("" if on_gpu else " (rehearsal on the CPU: nothing was checked)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
