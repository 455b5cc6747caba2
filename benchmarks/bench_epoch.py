"""Epoch benchmark: one epoch of MNIST-shaped data through the Trainer.

Synthetic data (60,000 training and 10,000 test images, 1x28x28, 10 classes: timing
does not depend on the pixels).  Reports training samples/s, the time to evaluate the
10,000 test images, and peak memory: host RSS, and on a GPU the CuPy memory pool.

    python benchmarks/bench_epoch.py --device cpu --model simple_convnet --write
"""

from __future__ import annotations

import argparse
import resource
import time

from _report import environment, markdown_table, write_result

from xpnet import backend
from xpnet.hostmem import keep_freed_host_memory
from xpnet.nets import DeepConvNet, SimpleConvNet
from xpnet.trainer import Trainer

MODELS = {"simple_convnet": SimpleConvNet, "deep_convnet": DeepConvNet}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gpu_pool_mib(device: backend.Device) -> str:
    if not device.name.startswith("cuda"):
        return "-"
    import cupy

    return f"{cupy.get_default_memory_pool().total_bytes() / 2**20:.0f}"


def run(model: str, device: backend.Device, train_size: int, test_size: int, batch: int) -> list[str]:
    rng = backend.Generator(0)
    x_train = rng.uniform((train_size, 1, 28, 28), device=device)
    t_train = rng.integers(10, train_size, device=device)
    x_test = rng.uniform((test_size, 1, 28, 28), device=device)
    t_test = rng.integers(10, test_size, device=device)
    net = MODELS[model](seed=0, device=device)
    trainer = Trainer(net, x_train, t_train, x_test[:batch], t_test[:batch], epochs=1, mini_batch_size=batch,
                      optimizer="Adam", optimizer_param={"lr": 0.001}, verbose=False, device=device, seed=0,
                      evaluate_sample_num_per_epoch=batch, sampling="shuffle")
    device.synchronize()
    start = time.perf_counter()
    for _ in range(trainer.iter_per_epoch):
        trainer.train_step()
    device.synchronize()
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    accuracy = net.accuracy(x_test, t_test, batch_size=batch)
    device.synchronize()
    eval_seconds = time.perf_counter() - start
    return [model, f"{train_size / train_seconds:.0f}", f"{train_seconds:.1f}",
            f"{eval_seconds:.2f}", f"{peak_rss_mib():.0f}", gpu_pool_mib(device), f"{accuracy:.3f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--model", choices=[*MODELS, "all"], default="all")
    parser.add_argument("--train-size", type=int, default=60000)
    parser.add_argument("--test-size", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--write", action="store_true", help="save the table under benchmarks/results/")
    args = parser.parse_args()

    device = backend.get_device(args.device)
    kept = keep_freed_host_memory()  # as the CLI does: the Trainer leaves the process's malloc alone
    models = list(MODELS) if args.model == "all" else [args.model]
    rows = [run(model, device, args.train_size, args.test_size, args.batch) for model in models]
    table = markdown_table(["model", "train samples/s", "epoch s", f"evaluate {args.test_size} s",
                            "peak host RSS MiB", "GPU pool MiB", "test acc (random data)"], rows)
    text = environment(device, title="xpnet epoch benchmark", args=vars(args),
                       notes=["synthetic MNIST-shaped data; the accuracy column only shows the net ran",
                              f"glibc keeps freed memory (xpnet.hostmem.keep_freed_host_memory, as the CLI): {kept}"])
    text += f"\n## One epoch through the Trainer (batch {args.batch}, float32, Adam)\n\n{table}\n"
    print(text)
    if args.write:
        print(f"written: {write_result('epoch', device, text)}")


if __name__ == "__main__":
    main()
