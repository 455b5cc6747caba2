"""How the Trainer tells a run that diverges: a loss far above the best so far, accuracy back
at chance (a :class:`DivergenceWarning`), or a NaN/inf loss (the message of the
``FloatingPointError`` that stops training).  Each message names the learning rate."""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["DivergenceWarning", "divergence_reason", "divergence_warning", "nonfinite_message"]

LOSS_FACTOR = 3.0
"""An epoch loss above ``LOSS_FACTOR * best + 0.5`` counts as "far above the best so far"."""


class DivergenceWarning(RuntimeWarning):
    """Training looks like it diverges; ``epoch``, ``reason`` and ``lr`` say why and where."""

    def __init__(self, message: str, epoch: int, reason: str, lr: float | None) -> None:
        super().__init__(message)
        self.epoch, self.reason, self.lr = epoch, reason, lr


def divergence_reason(epoch_losses: Sequence[float], first_losses: Sequence[float], accuracy: float,
                      earlier_accuracies: Sequence[float], num_classes: int) -> str | None:
    """Why the last epoch looks diverged, or ``None``.

    The loss reference is the lowest earlier epoch loss, or the run's first step loss
    (``first_losses``), whichever is lower; accuracy "falls back to chance" when it is
    within 10% of chance after an earlier epoch got 30% of the way from chance to 1.
    """
    loss = epoch_losses[-1]
    reference = min([*epoch_losses[:-1], *first_losses])
    chance = 1.0 / num_classes
    if math.isfinite(reference) and loss > LOSS_FACTOR * reference + 0.5:
        return f"the train loss {loss:.4g} is far above the best so far ({reference:.4g})"
    if earlier_accuracies and accuracy <= chance + 0.1 * (1.0 - chance) \
            and max(earlier_accuracies) >= chance + 0.3 * (1.0 - chance):
        return f"the accuracy fell back to chance ({accuracy:.4f}; it was {max(earlier_accuracies):.4f})"
    return None


def divergence_warning(epoch: int, reason: str, lr: float | None, best: tuple[int, str | None] | None
                       ) -> DivergenceWarning:
    """The warning for ``reason`` at ``epoch``; ``best``: ``(best epoch, best_checkpoint path)``."""
    advice = "the learning rate is probably too high" if lr is None else \
        f"the learning rate (lr={lr:g}) is probably too high: try optimizer_param={{'lr': {lr / 10:g}}}"
    kept = ""
    if best is not None:
        kept = f"; the best state (epoch {best[0]}) is kept: restore_best()" + (f" or {best[1]!r}" if best[1] else "")
    return DivergenceWarning(f"epoch {epoch}: {reason}; training is probably diverging: {advice}{kept}",
                             epoch, reason, lr)


def nonfinite_message(value: float, iteration: int, finished_epochs: int, iter_per_epoch: int,
                      lr: float | None, last_checkpoint: tuple[str, int] | None) -> str:
    """Why training stopped at a NaN/inf loss, where, and what is intact."""
    epoch_iter = iteration - finished_epochs * iter_per_epoch
    hint = f" (it is {lr:g}; try e.g. optimizer_param={{'lr': {lr / 10:g}}})" if lr else ""
    message = (f"train loss became {value} at epoch {finished_epochs + 1}, iteration {iteration} "
               f"(step {epoch_iter} of {iter_per_epoch} in that epoch); training stopped. "
               f"The learning rate is probably too high: lower it{hint}.")
    if last_checkpoint is not None:
        path, epoch = last_checkpoint
        message += f" The last checkpoint, {path!r} (epoch {epoch}), is intact: resume=... continues from it."
    return message
