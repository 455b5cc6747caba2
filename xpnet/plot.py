"""Training curves, drawn one way for the Trainer, the command line and the examples.

:func:`plot_history` draws a Trainer history (loss per iteration, accuracy per
epoch); :func:`plot_accuracy` draws the accuracy panel alone on a given axes (the
examples' side-by-side comparisons).  Epoch axes get integer ticks only, and the
legends say which images an accuracy was measured on.  Needs matplotlib
(``pip install 'xpnet[plot]'``); nothing is ever shown when a ``path`` is given,
so it is safe on a headless machine.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence, Union

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["plot_history", "plot_accuracy", "accuracy_label", "epoch_ticks", "accuracy_limits",
           "plot_decision_regions", "CLASS_COLORS"]

#: One colour per class, for points and for the regions a net assigns to that class alike.
CLASS_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def accuracy_label(name: str, measured: int | None, total: int | None) -> str:
    """Legend text for an accuracy curve: ``"test"``, ``"test (first 1,000 of 2,000 images)"``
    when only the first ``measured`` of ``total`` images were measured each epoch."""
    if measured is None or total is None or measured >= total:
        return name
    return f"{name} (first {measured:,} of {total:,} images)"


def epoch_ticks(ax: Any, epochs: int) -> None:
    """Integer ticks on ``ax``'s x axis for epochs ``1..epochs`` (never 0.5 or 1.2)."""
    import matplotlib.ticker

    if epochs <= 12:
        ax.set_xticks(list(range(1, max(epochs, 1) + 1)))
    else:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def accuracy_limits(*curves: Sequence[float]) -> tuple[float, float]:
    """y-axis limits that fit the accuracies in ``curves`` with a margin, within 0..1 (a run
    at 0.93-0.97 is not squashed into a fixed 0-1 axis)."""
    values = [float(v) for curve in curves for v in curve]
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    margin = max(0.01, 0.1 * (high - low))
    return max(0.0, low - margin), min(1.0, high + margin)


def plot_accuracy(ax: Any, history: Mapping[str, Sequence[float]], *, train_label: str = "train",
                  test_label: str = "test", title: str = "accuracy") -> None:
    """Train (solid, circles) and test (dashed, squares) accuracy per epoch on ``ax``, on an
    axis that fits them (:func:`accuracy_limits`)."""
    epochs = range(1, len(history["train_acc_list"]) + 1)
    curves = [history["train_acc_list"]]
    ax.plot(epochs, history["train_acc_list"], marker="o", label=train_label)
    if history.get("test_acc_list"):
        curves.append(history["test_acc_list"])
        ax.plot(range(1, len(history["test_acc_list"]) + 1), history["test_acc_list"], marker="s",
                linestyle="--", label=test_label)
    epoch_ticks(ax, len(epochs))
    ax.set(xlabel="epoch", ylabel="accuracy", ylim=accuracy_limits(*curves), title=title)
    ax.legend(loc="lower right")


def plot_decision_regions(ax: Any, xs: Any, ys: Any, regions: Any, x: Any, labels: Any) -> None:
    """The class a net predicts over a grid (``regions``, shaped like ``xs``/``ys``) as light
    areas, and the points ``x`` (N, 2) with their ``labels`` on top, each class in the same
    colour (:data:`CLASS_COLORS`) in both."""
    classes = max(int(regions.max()), int(labels.max())) + 1
    colors = list(CLASS_COLORS[:classes])
    ax.contourf(xs, ys, regions, levels=[c - 0.5 for c in range(classes + 1)], colors=colors, alpha=0.25)
    for c, color in enumerate(colors):
        ax.scatter(x[labels == c, 0], x[labels == c, 1], s=30, color=color, marker="ox^sDv*pPh"[c],
                   label=f"class {c}")
    ax.legend(loc="upper right", fontsize=8)


def plot_history(history: Mapping[str, Sequence[float]], path: PathLike | None = None, *,
                 train_label: str = "train", test_label: str = "test") -> Any:
    """Draw the training loss (raw, and smoothed by :func:`~xpnet.util.smooth_curve`) per
    iteration and the accuracy per epoch.

    ``history`` is a :attr:`xpnet.trainer.Trainer.history`.  With ``path`` the figure is
    written there (format from the suffix) without any display, and returned; without,
    it is shown with pyplot and ``None`` is returned, so that a notebook cell ending in
    ``trainer.plot()`` shows one figure, not the shown one plus the returned one.  ``train_label``/``test_label`` name the accuracy curves (see
    :func:`accuracy_label`).
    """
    try:
        import matplotlib.figure
        import matplotlib.ticker
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib, which is not installed: "
                          "pip install matplotlib (or pip install 'xpnet[plot]')") from exc
    from .util import smooth_curve

    if path is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(11, 4))
    else:
        fig = matplotlib.figure.Figure(figsize=(11, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    losses = list(history["train_loss_list"])
    iterations = range(1, len(losses) + 1)
    ax_loss.plot(iterations, losses, color="tab:blue", alpha=0.3, label="train loss")
    ax_loss.plot(iterations, smooth_curve(losses), color="tab:blue", label="smoothed")
    ax_loss.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax_loss.set(xlabel="iteration", ylabel="loss", title="training loss")
    ax_loss.legend()
    plot_accuracy(ax_acc, history, train_label=train_label, test_label=test_label)
    fig.tight_layout()
    if path is None:
        plt.show()
        return None
    fig.savefig(os.fspath(path))
    return fig
