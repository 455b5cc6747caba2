"""Command line: ``python -m xpnet train --model simple_convnet --dataset mnist --device auto``.

Trains one of the book's nets on a dataset, prints one greppable line per epoch::

    epoch 2/5  loss 0.1234  train acc 0.9810  test acc 0.9750  1234 samples/s

and saves the parameters (``params.npz``) and the curves (``curves.png``) in ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .backend import DeviceError, get_device
from .datasets import DatasetError, load_fashion_mnist, load_mnist, load_mnist_sample, spiral
from .nets import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from .trainer import Trainer

MODELS = ("two_layer_net", "multi_layer_net", "multi_layer_net_extend", "simple_convnet", "deep_convnet")
DATASETS = ("auto", "mnist", "mnist-sample", "fashion-mnist", "spiral")
CONVNETS = ("simple_convnet", "deep_convnet")


def load_dataset(name: str, *, flatten: bool, seed: int) -> tuple[tuple[Any, Any], tuple[Any, Any], str]:
    """``(x_train, t_train), (x_test, t_test), description`` for a ``--dataset`` name.

    ``auto``: full MNIST (downloaded once, then cached), or the bundled sample when
    it cannot be had (no network, no files).
    """
    if name == "spiral":
        if not flatten:
            raise ValueError("--dataset spiral has 2 features per point: use a fully connected --model")
        train, test = spiral.load_data(seed=seed), spiral.load_data(seed=seed + 1)
        return train, test, "spiral (300 training points; test: a spiral drawn with seed+1)"
    if name == "mnist-sample":
        train, test = load_mnist_sample(flatten=flatten)
        return train, test, "MNIST sample bundled with xpnet (8,000 train / 2,000 test)"
    if name == "fashion-mnist":
        train, test = load_fashion_mnist(flatten=flatten)
        return train, test, "Fashion-MNIST (60,000 train / 10,000 test)"
    try:
        train, test = load_mnist(flatten=flatten)
        return train, test, "MNIST (60,000 train / 10,000 test)"
    except DatasetError as exc:
        if name == "mnist":
            raise DatasetError(f"{exc}\nNo network? Train on the bundled real digits: --dataset mnist-sample") from exc
        reason = str(exc).splitlines()[0].rstrip(":")
        print(f"full MNIST could not be had ({reason}); training on the bundled sample instead "
              "(--dataset mnist shows the whole error)", file=sys.stderr)
        train, test = load_mnist_sample(flatten=flatten)
        return train, test, "MNIST sample bundled with xpnet (8,000 train / 2,000 test)"


def build_model(name: str, input_size: int, output_size: int, *, dtype: str, seed: int, device: Any) -> Any:
    """One of the book's nets, sized for the data."""
    options = {"dtype": dtype, "seed": seed, "device": device}
    if name == "two_layer_net":
        return TwoLayerNet(input_size, 100, output_size, **options)
    if name == "multi_layer_net":
        return MultiLayerNet(input_size, [100, 100, 100], output_size, **options)
    if name == "multi_layer_net_extend":
        return MultiLayerNetExtend(input_size, [100, 100, 100], output_size, use_batchnorm=True, **options)
    if name == "simple_convnet":
        return SimpleConvNet(output_size=output_size, **options)
    return DeepConvNet(output_size=output_size, **options)


def train(args: argparse.Namespace) -> int:
    device = get_device(args.device)
    (x_train, t_train), (x_test, t_test), description = load_dataset(
        args.dataset, flatten=args.model not in CONVNETS, seed=args.seed)
    if args.limit:
        x_train, t_train = x_train[:args.limit], t_train[:args.limit]
    output_size = int(t_train.max()) + 1 if t_train.ndim == 1 else t_train.shape[1]
    net = build_model(args.model, x_train.shape[-1], output_size, dtype=args.dtype, seed=args.seed, device=device)
    print(f"xpnet {__version__}: {args.model} on {description}, device {device.name}, {args.dtype}")

    start = time.perf_counter()

    def report(history: dict[str, list[float]]) -> None:
        epoch = len(history["test_acc_list"])
        epoch_losses = history["train_loss_list"][-trainer.iter_per_epoch:]
        print(f"epoch {epoch}/{args.epochs}  loss {sum(epoch_losses) / len(epoch_losses):.4f}  "
              f"train acc {history['train_acc_list'][-1]:.4f}  test acc {history['test_acc_list'][-1]:.4f}  "
              f"{history['samples_per_sec'][-1]:.0f} samples/s", flush=True)

    trainer = Trainer(net, x_train, t_train, x_test, t_test, epochs=args.epochs,
                      mini_batch_size=args.batch_size, optimizer=args.optimizer,
                      optimizer_param={"lr": args.lr}, verbose=False, device=device, seed=args.seed,
                      progress=report, evaluate_sample_num_per_epoch=args.evaluate_samples)
    trainer.train()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net.save_params(str(out / "params.npz"))
    saved = [out / "params.npz"]
    try:
        trainer.plot(out / "curves.png")
        saved.append(out / "curves.png")
    except ImportError:
        print("curves.png not written: matplotlib is missing (pip install 'xpnet[plot]')", file=sys.stderr)
    print(f"done in {time.perf_counter() - start:.1f} s; saved {', '.join(str(p) for p in saved)}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m xpnet", description="xpnet: Deep Learning from Scratch, on CPU or GPU")
    root.add_argument("--version", action="version", version=f"xpnet {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("train", help="train one of the book's nets")
    cmd.add_argument("--model", choices=MODELS, default="simple_convnet")
    cmd.add_argument("--dataset", choices=DATASETS, default="auto",
                     help="auto: full MNIST when it can be had, else the bundled sample")
    cmd.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    cmd.add_argument("--epochs", type=int, default=5)
    cmd.add_argument("--batch-size", type=int, default=100)
    cmd.add_argument("--optimizer", default="adam", help="sgd, momentum, nesterov, adagrad, rmsprop or adam")
    cmd.add_argument("--lr", type=float, default=0.001)
    cmd.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--limit", type=int, default=None, help="use only the first N training samples")
    cmd.add_argument("--evaluate-samples", type=int, default=None,
                     help="evaluate on N samples per epoch (default: all)")
    cmd.add_argument("--out", default="runs/latest", help="where params.npz and curves.png go")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return train(args)
    except (DatasetError, DeviceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
