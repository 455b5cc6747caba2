"""What every example script shares: its command line, the device, MNIST, figures, the RESULT line.

Each script of this folder follows one experiment of the book; the plumbing
around the experiment (flags, loading data, writing PNGs) lives here, once.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import numpy as np  # host-side data for plots only; training runs through xpnet
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from xpnet.backend import Device, DeviceError, Generator, get_device, to_numpy
from xpnet.datasets import DatasetError, load_mnist, load_mnist_sample
from xpnet.plot import plot_accuracy
from xpnet.trainer import Trainer

# ---------------------------------------------------------------- command line


def parser(doc: str | None, *, epochs: int | None = None, iters: int | None = None, mnist: bool = True,
           train_size: int | None = None) -> argparse.ArgumentParser:
    """The flags every script has (``--device``, ``--seed``, ``--out``), plus ``--epochs``
    (default ``epochs``) or, for the book's step-counted experiments, ``--iters`` (default
    ``iters``) with ``--epochs`` as an alternative; and the MNIST flags ``--sample``,
    ``--train-size`` (default ``train_size``: all) and ``--test-size`` (when ``mnist``)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=_HelpFormatter)
    p.add_argument("--device", default="auto", help="auto (CUDA when a GPU answers, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed of weight init, shuffling and any random draw")
    p.add_argument("--out", default="runs/examples", help="folder the PNG files are written to")
    if iters is not None:
        p.add_argument("--iters", type=int, default=iters, help="training steps (one mini-batch each)")
        p.add_argument("--epochs", type=int, default=None,
                       help="if given, train this many passes over the training set instead of --iters steps")
    elif epochs is not None:
        p.add_argument("--epochs", type=int, default=epochs, help="passes over the training set")
    if mnist:
        p.add_argument("--sample", action="store_true",
                       help="use the real MNIST digits bundled with xpnet (8,000 train / 2,000 test), no download")
        p.add_argument("--train-size", type=int, default=train_size, metavar="N",
                       help="use only the first N training images" + (" (default: all)" if train_size is None else ""))
        p.add_argument("--test-size", type=int, default=None, metavar="N",
                       help="use only the first N test images (default: all)")
    return p


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The script's docstring as written, and each flag's default (unless None/False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action) if action.help else "(default: %(default)s)"


def device(args: argparse.Namespace) -> Device:
    """The device named by ``--device``; exits with code 2 when it cannot be had."""
    try:
        dev = get_device(args.device)
    except (DeviceError, ValueError) as exc:
        fail(f"error: {exc}")
    print(f"device: {dev.name}")
    return dev


def fail(message: str) -> None:
    """Print ``message`` to stderr and exit with code 2 (a usage or environment problem)."""
    print(message, file=sys.stderr)
    sys.exit(2)


# ------------------------------------------------------------------------ data


def load_data(args: argparse.Namespace, *, flatten: bool = True, one_hot: bool = False
              ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST as host arrays ``(x_train, t_train), (x_test, t_test)``: the bundled sample with
    ``--sample``, else the full set (downloaded once); cut to ``--train-size``/``--test-size``.

    Offline without ``--sample``: prints why and exits with code 2.
    """
    if args.sample:
        (x_train, t_train), (x_test, t_test) = load_mnist_sample(flatten=flatten, one_hot_label=one_hot)
        what = "MNIST sample bundled with xpnet"
    else:
        try:
            (x_train, t_train), (x_test, t_test) = load_mnist(flatten=flatten, one_hot_label=one_hot)
        except DatasetError as exc:
            fail(f"error: {exc}\n\nNo network? Run with --sample to use the real MNIST digits bundled "
                 "with xpnet (8,000 train / 2,000 test).")
        what = "MNIST"
    if args.train_size is not None:
        x_train, t_train = x_train[:args.train_size], t_train[:args.train_size]
    if args.test_size is not None:
        x_test, t_test = x_test[:args.test_size], t_test[:args.test_size]
    print(f"data: {what}, {len(x_train)} train / {len(x_test)} test images")
    return (x_train, t_train), (x_test, t_test)


# ----------------------------------------------------------------- training


def iterations(args: argparse.Namespace, train_size: int, batch_size: int) -> int:
    """Steps to train: ``--epochs`` passes of ``batch_size`` mini-batches when given, else ``--iters``."""
    if args.epochs is not None:
        return args.epochs * math.ceil(train_size / batch_size)
    return args.iters


def fit_variants(args: argparse.Namespace, networks: dict[str, Any], train: tuple[Any, Any],
                 test: tuple[Any, Any], device: Device, *, optimizer: str = "sgd", lr: float = 0.01,
                 batch_size: int = 100, quiet: bool = False) -> dict[str, dict[str, list[float]]]:
    """Train each of ``networks`` (label -> net) with a :class:`Trainer` on the same data and
    the same shuffling (``--seed``), for ``--epochs``; return label -> history.

    A net whose loss becomes inf/NaN (the Trainer stops it) keeps the accuracy its broken
    weights give (chance level) for the remaining epochs, as the book's plots show it,
    and its history gets ``"diverged": True``.
    """
    histories = {}
    for label, network in networks.items():
        trainer = Trainer(network, *train, *test, epochs=args.epochs, mini_batch_size=batch_size,
                          optimizer=optimizer, optimizer_param={"lr": lr}, verbose=False,
                          device=device, seed=args.seed, progress=not quiet, sampling="shuffle")
        try:
            history = trainer.train()
        except FloatingPointError as exc:
            print(f"{label:>24}: {str(exc).split(';')[0]}: diverged", flush=True)
            history = trainer.history
            history["diverged"] = True
            missing = args.epochs - len(history["train_acc_list"])
            for key, (x, t) in (("train_acc_list", train), ("test_acc_list", test)):
                history[key] += [network.accuracy(device.asarray(x), device.asarray(t))] * missing
        histories[label] = history
        if not quiet:
            print(f"{label:>24}: train acc {history['train_acc_list'][-1]:.4f}  "
                  f"test acc {history['test_acc_list'][-1]:.4f}", flush=True)
    return histories


def predict_labels(network: Any, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The class ``network`` predicts for each row of host array ``x``, as a host array.

    Batches go to the network's device one at a time; only the labels come back.
    """
    dev = network.device
    labels = []
    with dev.activate():
        for start in range(0, len(x), batch_size):
            scores = network.predict(dev.asarray(x[start:start + batch_size]))
            labels.append(to_numpy(dev.xp.argmax(scores, axis=1)))
    return np.concatenate(labels)


def train_side_by_side(networks: dict[str, Any], optimizers: dict[str, Any], x: Any, t: Any, *,
                       iters: int, batch_size: int, seed: int, device: Device) -> dict[str, list[float]]:
    """The book's comparison loop of chapter 6: at each step one random mini-batch is drawn and
    EVERY network takes a step on it with its own optimizer.  ``x``/``t`` live on ``device``.

    Returns the training loss per step for each network (name -> list of floats).
    """
    rng = Generator(seed)
    xp = device.xp
    losses: dict[str, list[Any]] = {name: [] for name in networks}
    with device.activate(), tqdm(total=iters, unit="step", leave=False, desc="shared steps") as bar:
        for step in range(iters):
            batch = rng.integers(x.shape[0], batch_size, device=device)
            x_batch, t_batch = xp.take(x, batch, axis=0), xp.take(t, batch, axis=0)
            for name, network in networks.items():
                grads = network.gradient(x_batch, t_batch)
                optimizers[name].update(network.params, grads)
                losses[name].append(network.loss(x_batch, t_batch))  # stays on the device
            bar.update()
            if (step + 1) % max(1, iters // 4) == 0 or step + 1 == iters:
                bar.write(f"iteration {step + 1}/{iters}: " + "  ".join(
                    f"{name} {float(values[-1]):.4f}" for name, values in losses.items()))
        # one transfer per network instead of one per step
        return {name: to_numpy(xp.stack(values)).tolist() for name, values in losses.items()}


# -------------------------------------------------------------------- figures


def figure(width: float = 8.0, height: float = 5.0) -> Figure:
    """A new matplotlib figure, not tied to any window (written with :func:`save`)."""
    return Figure(figsize=(width, height))


def save(fig: Figure, args: argparse.Namespace, name: str) -> Path:
    """Write ``fig`` as ``<--out>/<name>``; print and return the path."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")
    return path


def accuracy_panels(histories: dict[str, dict[str, list[float]]], suptitle: str | None = None) -> Figure:
    """One panel per history: train and test accuracy per epoch (the book's overfitting plots)."""
    fig = figure(5.0 * len(histories), 4.0)
    for k, (label, history) in enumerate(histories.items()):
        plot_accuracy(fig.add_subplot(1, len(histories), k + 1), history, title=label)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def accuracy_with_bar(network: Any, x: np.ndarray, t: np.ndarray, device: Device, *, dtype: Any = None,
                      batch_size: int = 100, desc: str = "accuracy") -> float:
    """``network``'s accuracy on host arrays ``x``, ``t``, ``batch_size`` images at a time with a
    progress bar (for evaluations slow enough to look hung, such as float16 on a CPU)."""
    correct = 0.0
    for start in tqdm(range(0, len(x), batch_size), desc=desc, unit="batch", leave=False):
        stop = min(start + batch_size, len(x))
        chunk = device.asarray(x[start:stop], dtype=dtype)
        correct += network.accuracy(chunk, device.asarray(t[start:stop])) * (stop - start)
    return correct / len(x)


def save_curves(trainer: Trainer, args: argparse.Namespace, name: str) -> Path:
    """The trainer's own plot (loss per step, accuracy per epoch) as ``<--out>/<name>``."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trainer.plot(out / name)
    print(f"wrote {out / name}")
    return out / name


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str] | None = None,
               colors: Sequence[str] | None = None, *, columns: int = 10, cmap: str = "gray",
               suptitle: str | None = None, cell: float = 1.1) -> Figure:
    """``images`` (each 2-D, or ``(1, H, W)`` / ``H*W`` with a square side) in a grid, axes off,
    each with its title in its color."""
    n = max(len(images), 1)
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    fig = figure(cell * columns, (cell + (0.3 if titles is not None else 0.0)) * rows + (0.5 if suptitle else 0.0))
    for k, image in enumerate(images):
        ax = fig.add_subplot(rows, columns, k + 1)
        image = np.asarray(image)
        if image.ndim == 1:
            side = math.isqrt(image.size)
            image = image.reshape(side, side)
        ax.imshow(image.reshape(image.shape[-2:]), cmap=cmap, interpolation="nearest")
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[k], fontsize=8, color=colors[k] if colors else "black")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


# ---------------------------------------------------------------------- output


def result(**metrics: Any) -> None:
    """Print the one greppable summary line: ``RESULT key=value key=value ...``."""
    def show(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.3g}"
        return str(value)

    print("RESULT " + " ".join(f"{key}={show(value)}" for key, value in metrics.items()), flush=True)
