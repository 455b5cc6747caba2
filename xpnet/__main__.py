"""Command line: ``python -m xpnet train --model simple_convnet --dataset mnist --device auto``.

Trains one of the book's nets on a dataset, prints one greppable line per epoch
(:func:`xpnet.trainer.format_epoch_line`; a progress bar too on a terminal)::

    epoch 2/5  loss 0.1234  train acc 0.9810  val acc 0.9750  1234 samples/s  6.5 s

and keeps in ``--out``: ``checkpoint.npz`` (every epoch; ``--resume`` continues from it,
Ctrl-C leaves the last finished epoch there), ``best.npz`` (the best epoch's parameters, by
validation accuracy with ``--validation-split``, else by training loss; never by the test
set: ``net.load_params("best.npz")``), ``params.npz`` (the final parameters) and ``curves.png``.
Every output path is checked, by its real path, before the first step, and a previous run's
outputs are only replaced when asked; every user mistake is a one-line ``error:`` (exit code
2), a diverged run exit code 1, Ctrl-C exit code 130.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .backend import DeviceError, get_device
from .checkpoint import check_resume
from .checks import output_files
from .hostmem import keep_freed_host_memory
from .optimizer import OPTIMIZERS
from .datasets import DatasetError, load_fashion_mnist, load_mnist, load_mnist_sample, spiral
from .nets import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from .trainer import DivergenceWarning, Trainer

MODELS = ("two_layer_net", "multi_layer_net", "multi_layer_net_extend", "simple_convnet", "deep_convnet")
DATASETS = ("auto", "mnist", "mnist-sample", "fashion-mnist", "spiral")
CONVNETS = ("simple_convnet", "deep_convnet")


def load_dataset(name: str, *, flatten: bool, seed: int) -> tuple[tuple[Any, Any], tuple[Any, Any], str]:
    """``(x_train, t_train), (x_test, t_test), name`` for a ``--dataset`` name.

    ``auto``: full MNIST (downloaded once, then cached), or the bundled sample when
    it cannot be had (no network, no files).
    """
    if name == "spiral":
        if not flatten:
            raise ValueError("--dataset spiral has 2 features per point: use a fully connected --model")
        return spiral.load_data(seed=seed), spiral.load_data(seed=seed + 1), "spiral (test: a spiral drawn with seed+1)"
    if name == "mnist-sample":
        return (*load_mnist_sample(flatten=flatten), "the MNIST sample bundled with xpnet")
    if name == "fashion-mnist":
        return (*load_fashion_mnist(flatten=flatten), "Fashion-MNIST")
    try:
        return (*load_mnist(flatten=flatten), "MNIST")
    except DatasetError as exc:
        if name == "mnist":
            raise DatasetError(f"{exc}\nNo network? Train on the bundled real digits: --dataset mnist-sample") from exc
        reason = str(exc).splitlines()[0].rstrip(":")
        print(f"full MNIST could not be had ({reason}); training on the bundled sample instead "
              "(--dataset mnist shows the whole error)", file=sys.stderr)
        return (*load_mnist_sample(flatten=flatten), "the MNIST sample bundled with xpnet")


def num_classes(*labels: Any) -> int:
    """Output size from the labels of the WHOLE dataset (train and test, before ``--limit``)."""
    return max(int(t.shape[1]) if t.ndim == 2 else int(t.max()) + 1 for t in labels)


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


def output_paths(args: argparse.Namespace) -> dict[str, str]:
    """Every file the run writes, checked writable and distinct by real path before any work; a
    previous run's outputs are only replaced when asked (``--resume``/``--overwrite``)."""
    if not args.out.strip():
        raise ValueError("--out: empty (an unset shell variable?); name the run's folder, e.g. --out runs/latest")
    out = Path(args.out)
    named = {"--out (params.npz)": out / "params.npz", "--out (curves.png)": out / "curves.png",
             "--out (best.npz)": out / "best.npz", "--checkpoint": args.checkpoint or out / "checkpoint.npz"}
    paths = output_files(named)
    found = [path for path in paths.values() if os.path.exists(path)]
    if args.resume is None and not args.overwrite and found:
        raise ValueError(f"{found[0]!r} holds a previous run: add --resume to continue it, "
                         "--overwrite to start over, or choose another --out")
    return {"params": paths["--out (params.npz)"], "curves": paths["--out (curves.png)"],
            "best": paths["--out (best.npz)"], "checkpoint": paths["--checkpoint"]}


def train(args: argparse.Namespace) -> int:
    paths = output_paths(args)
    try:
        resume = check_resume(args.resume, paths["checkpoint"])
    except FileNotFoundError as exc:
        raise ValueError(f"--{exc}") from None
    device = get_device(args.device)
    keep_freed_host_memory()  # faster CPU steps; the CLI owns its process (see xpnet.hostmem)
    (x_train, t_train), (x_test, t_test), name = load_dataset(
        args.dataset, flatten=args.model not in CONVNETS, seed=args.seed)
    output_size = num_classes(t_train, t_test)
    total = len(x_train)
    if args.limit is not None:
        x_train, t_train = x_train[:args.limit], t_train[:args.limit]
    used = f"{len(x_train):,} train / {len(x_test):,} test"
    if len(x_train) < total:
        used += f" (--limit: the first {len(x_train):,} of {total:,} training samples)"
    net = build_model(args.model, int(math.prod(x_train.shape[1:])), output_size, dtype=args.dtype,
                      seed=args.seed, device=device)
    print(f"xpnet {__version__}: {args.model} on {name}, {used}, {args.dtype}", flush=True)
    Path(paths["params"]).parent.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(net, x_train, t_train, x_test, t_test, epochs=args.epochs,
                      mini_batch_size=args.batch_size, optimizer=args.optimizer,
                      optimizer_param={"lr": args.lr}, verbose=True, device=args.device, seed=args.seed,
                      sampling="shuffle", validation_split=args.validation_split,
                      evaluate_sample_num_per_epoch=args.evaluate_samples, checkpoint=paths["checkpoint"],
                      best_checkpoint=paths["best"], resume=resume)
    start = time.perf_counter()
    try:
        trainer.train()
    except KeyboardInterrupt:
        saved = trainer.last_checkpoint
        where = f"epoch {saved[1]} is saved in {saved[0]}: continue with the same command plus --resume" if saved \
            else "no epoch had finished, nothing saved: run the same command again (with --overwrite)"
        print(f"\ninterrupted during epoch {trainer.current_epoch + 1}/{args.epochs}; {where}", file=sys.stderr)
        return 130
    except FloatingPointError as exc:
        saved = trainer.last_checkpoint
        kept = f"; {saved[0]} (epoch {saved[1]}) is intact: --resume continues from it" if saved else ""
        print(f"error: {str(exc).split(';')[0]}; training stopped: --lr {args.lr:g} is probably too high "
              f"(try --lr {args.lr / 10:g}){kept}", file=sys.stderr)
        return 1
    net.save_params(paths["params"])
    saved = [paths["params"], paths["checkpoint"], paths["best"]]
    try:
        trainer.plot(paths["curves"])
        saved.append(paths["curves"])
    except ImportError:
        print("curves.png not written: matplotlib is missing (pip install 'xpnet[plot]')", file=sys.stderr)
    best = trainer.best
    print(f"best: epoch {best['epoch']} ({best['metric'].replace('_', ' ')} {best['value']:.4f}), in {paths['best']} "
          "(net.load_params loads it)")
    print(f"done in {time.perf_counter() - start:.1f} s; saved {', '.join(saved)}")
    return 0


def _count(flag: str, low: int = 1) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value
    return parse


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m xpnet", description="xpnet: Deep Learning from Scratch, on CPU or GPU")
    root.add_argument("--version", action="version", version=f"xpnet {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("train", help="train one of the book's nets",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                              description="Train one of the book's nets; Ctrl-C saves the last finished epoch.")
    cmd.add_argument("--model", choices=MODELS, default="simple_convnet", help="the net to train")
    cmd.add_argument("--dataset", choices=DATASETS, default="auto",
                     help="auto: full MNIST when it can be had, else the bundled sample")
    cmd.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    cmd.add_argument("--epochs", type=_count("--epochs"), default=5, help="passes over the training set")
    cmd.add_argument("--batch-size", type=_count("--batch-size"), default=100, help="samples per step")
    cmd.add_argument("--optimizer", type=str.lower, choices=tuple(OPTIMIZERS), default="adam", help="update rule")
    cmd.add_argument("--lr", type=_learning_rate, default=0.001, help="learning rate")
    cmd.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="parameter dtype")
    cmd.add_argument("--seed", type=_count("--seed", 0), default=0, help="seed of weights and shuffling")
    cmd.add_argument("--limit", type=_count("--limit"), default=None, help="use only the first N training samples")
    cmd.add_argument("--validation-split", type=_fraction, default=0.0,
                     help="fraction of the training data held out to choose best.npz (0: by training loss)")
    cmd.add_argument("--evaluate-samples", type=_count("--evaluate-samples"), default=None,
                     help="measure accuracy on the first N samples per epoch (None: all)")
    cmd.add_argument("--out", default="runs/latest", help="folder of params.npz, best.npz, checkpoint.npz, curves.png")
    cmd.add_argument("--checkpoint", default=None, help="checkpoint file written every epoch (None: OUT/checkpoint.npz)")
    cmd.add_argument("--resume", nargs="?", const=True, default=None, metavar="FILE",
                     help="continue from --checkpoint (or from FILE)")
    cmd.add_argument("--overwrite", action="store_true", help="start over even if --checkpoint holds a previous run")
    return root


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    if isinstance(message, DivergenceWarning):
        lr = f" --lr {message.lr:g} is probably too high (try --lr {message.lr / 10:g});" if message.lr else ""
        print(f"warning: epoch {message.epoch}: {message.reason}:{lr} best.npz keeps the best epoch",
              file=sys.stderr)
    else:
        print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        # a diverging run overflows; the Trainer's own warning and error say so, once
        warnings.filterwarnings("ignore", category=RuntimeWarning, message="(overflow|invalid value|divide by zero)")
        try:
            return train(args)
        except (DatasetError, DeviceError, ValueError, TypeError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("\ninterrupted before training started; nothing saved", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
