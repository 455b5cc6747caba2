"""The training loop's services (:meth:`xpnet.loop.Loop.extend`), reading the loop's public state only."""

from __future__ import annotations

import math
import os
import time
import warnings
from typing import Any, Callable

from . import checkpoint, progress
from .checks import output_files

__all__ = ["BestState", "Checkpoint", "Divergence", "DivergenceWarning", "ProgressBar"]


class BestState:
    """``state``: a copy of the best epoch by ``score(loop) -> (metric, value)`` (lower is better for a ``loss``),
    written by ``write(path)`` when it improves; ``record``: ``{"epoch", "metric", "value"}``."""

    def __init__(self, score: Callable[[Any], tuple[str, float]], path: str | None, write: Callable[[str], None]):
        self.score, self.path, self.write = score, path, write
        self.record: dict[str, Any] | None = None
        self.state: dict[str, Any] | None = None

    def on_epoch_end(self, loop: Any) -> None:
        metric, value = self.score(loop)
        best = self.record
        if best is None or best["metric"] != metric or (value < best["value"] if metric.endswith("loss")
                                                         else value > best["value"]):
            self.record, self.state = {"epoch": loop.epoch, "metric": metric, "value": value}, loop.copy_state()
            if self.path is not None:
                self.write(self.path)

    def restore(self, loop: Any) -> dict[str, Any]:
        """Put the best params and buffers back (params in place); return :attr:`record`."""
        if self.state is None:
            raise RuntimeError("restore_best: no epoch has finished yet")
        loop.load_state(self.state)
        return dict(self.record)


class Checkpoint:
    """Writes the whole state to ``outputs["checkpoint"]`` (``None``: none) at every epoch end; :meth:`start`
    resumes from ``resume``.  ``last``: ``(path, epoch)`` last written there or resumed from."""

    def __init__(self, optimizer: Any, resume: Any, **outputs: Any) -> None:
        self.outputs = output_files(outputs)
        self.path, self.last = self.outputs["checkpoint"], None
        self.resume = checkpoint.check_resume(resume, self.path)
        if self.path is not None or self.resume is not None:
            checkpoint.check_checkpointable(optimizer)

    def start(self, loop: Any) -> None:
        """Resume (once) from ``resume``, unless it is the checkpoint path and no file is there yet."""
        if self.resume is not None and (self.resume != self.path or os.path.exists(self.resume)):
            self.load(loop, self.resume)
        self.resume = None

    def save(self, loop: Any, path: str) -> None:
        checkpoint.save(loop, path)
        if path == self.path:
            self.last = (path, loop.epoch)

    def load(self, loop: Any, path: str) -> None:
        checkpoint.load(loop, path)
        self.last = (os.fspath(path), loop.epoch)

    def on_epoch_end(self, loop: Any) -> None:
        if self.path is not None:
            self.save(loop, self.path)

    def interrupted(self, loop: Any, where: str, resume: Callable[[str], str]) -> str:
        """Make sure the last finished epoch is saved; say what is saved and, only then, how to resume."""
        if self.path is None:
            return f"{where}; nothing saved (no checkpoint= was given)"
        if loop.epoch_iter == 0 and loop.epoch > 0 and self.last != (self.path, loop.epoch):
            self.save(loop, self.path)  # the interruption hit the epoch-end write
        if self.last is None:
            return f"{where}; no epoch had finished, nothing saved"
        return f"{where}; epoch {self.last[1]} is saved in {self.last[0]!r}: {resume(self.last[0])}"


class DivergenceWarning(RuntimeWarning):
    """Training looks like it diverges; ``epoch``, ``reason`` and ``lr`` say why and where."""

    def __init__(self, message: str, epoch: int, reason: str, lr: float | None) -> None:
        super().__init__(message)
        self.epoch, self.reason, self.lr = epoch, reason, lr


class Divergence:
    """Warns when an epoch's loss is above ``LOSS_FACTOR * best + 0.5`` (the best so far, the first step's
    included), or when ``history[accuracy]`` falls back within 10% of chance after an earlier epoch got
    30% of the way from chance to 1."""

    LOSS_FACTOR = 3.0

    def __init__(self, accuracy: str, num_classes: int, lr: float | None) -> None:
        self.accuracy, self.chance, self.lr = accuracy, 1.0 / num_classes, lr

    def on_epoch_end(self, loop: Any) -> None:
        history, chance, lr = loop.history, self.chance, self.lr
        losses, accuracies = history["epoch_loss"], history[self.accuracy]
        reference = min([*losses[:-1], *history["train_loss_list"][:1]])
        if math.isfinite(reference) and losses[-1] > self.LOSS_FACTOR * reference + 0.5:
            reason = f"the train loss {losses[-1]:.4g} is far above the best so far ({reference:.4g})"
        elif len(accuracies) > 1 and accuracies[-1] <= chance + 0.1 * (1 - chance) \
                and max(accuracies[:-1]) >= chance + 0.3 * (1 - chance):
            reason = f"the accuracy fell back to chance ({accuracies[-1]:.4f}; it was {max(accuracies[:-1]):.4f})"
        else:
            return
        advice = "the learning rate is probably too high" if lr is None else \
            f"the learning rate (lr={lr:g}) is probably too high: try optimizer_param={{'lr': {lr / 10:g}}}"
        best = loop.best.record if loop.best is not None else None
        kept = "" if best is None else f"; the best state (epoch {best['epoch']}) is kept: restore_best()" + \
            (f" or {loop.best.path!r}" if loop.best.path else "")
        warnings.warn(DivergenceWarning(f"epoch {loop.epoch}: {reason}; training is probably diverging: "
                                        f"{advice}{kept}", loop.epoch, reason, lr), stacklevel=6)


class ProgressBar:
    """A bar per epoch (:func:`xpnet.progress.bar`: none in a log unless ``force``) showing the last loss
    the host has; while it shows, losses also come over every ``FLUSH_SECONDS`` (the first at once)."""

    FLUSH_SECONDS = 0.5

    def __init__(self, total: int, desc: Callable[[Any], str], step_size: int, force: bool) -> None:
        self.total, self.desc, self.step_size, self.force = total, desc, step_size, force
        self.bar, self.loss, self.last_flush = None, None, 0.0

    def on_epoch_start(self, loop: Any) -> None:
        self.bar, self.last_flush = progress.bar(self.total, self.desc(loop), force=self.force), time.perf_counter()
        if self.bar is not None and self.loss is not None:
            self.bar.set_postfix(loss=f"{self.loss:.4f}", refresh=False)

    def on_step(self, loop: Any) -> None:
        if self.bar is not None:
            self.bar.update(min(self.step_size, self.total - self.bar.n))  # the last batch may be partial
            if self.loss is None or time.perf_counter() - self.last_flush >= self.FLUSH_SECONDS:
                loop.flush()

    def on_flush(self, loop: Any, values: list[float]) -> None:
        self.loss, self.last_flush = values[-1], time.perf_counter()
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{self.loss:.4f}")

    def on_close(self, loop: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    on_epoch_end = on_close
