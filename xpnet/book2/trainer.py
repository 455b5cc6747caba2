"""The second book's ``common/trainer.py``: ``Trainer(model, optimizer).fit(x, t, ...)``.

The model is the book's kind: ``forward(x, t)`` returns the loss, ``backward()``
fills ``grads``, and ``params``/``grads`` are lists.  What differs from the book:

* ``device`` (keyword-only, anything :func:`xpnet.backend.get_device` accepts):
  the model (every array reachable from it, aliases kept) and the optimizer state
  move there once, in the constructor.  ``None`` means ``"cuda"`` when
  ``xpnet.book2.config.GPU`` is True, else wherever the model's params already are.
  ``fit`` moves ``x`` and ``t`` there once and draws every batch there, so host and
  device arrays never mix.
* Shuffling comes from a seeded :class:`xpnet.backend.Generator` (``seed``), not
  NumPy's global generator; each epoch is one permutation, as in the book.
* Losses stay on the device between progress lines (one host copy per
  ``eval_interval`` steps).
"""

from __future__ import annotations

import time
from typing import Any

from ..backend import DeviceLike, Generator, device_of, get_device, to_device
from ..checks import positive_int, real
from . import config
from .grads import clip_grads, merge_shared, remove_duplicate, shared_pairs

Array = Any

__all__ = ["Trainer", "remove_duplicate", "clip_grads"]


class Trainer:
    """Trains a second-book ``model`` with ``optimizer`` (``update(params, grads)``)."""

    def __init__(self, model: Any, optimizer: Any, *, device: DeviceLike | None = None,
                 seed: int | None = None) -> None:
        for name in ("forward", "backward"):
            if not callable(getattr(model, name, None)):
                raise TypeError(f"model: expected a model with forward() and backward(), "
                                f"{type(model).__name__} has no {name}()")
        if not isinstance(getattr(model, "params", None), (list, tuple)) or not model.params:
            raise TypeError(f"model: expected params as a non-empty list of arrays, got {getattr(model, 'params', None)!r}")
        if not callable(getattr(optimizer, "update", None)):
            raise TypeError(f"optimizer: expected an object with update(params, grads), got {type(optimizer).__name__}")
        if device is None:
            device = "cuda" if config.GPU else device_of(model.params[0])
        self.device = get_device(device)
        self.model = to_device(model, self.device)
        self.optimizer = to_device(optimizer, self.device)
        self.rng = Generator(seed)
        self.loss_list: list[float] = []
        self.eval_interval = None
        self.current_epoch = 0
        self._pairs_for: list[Array] = []  # the params the shared pairs below were found for
        self._pairs: list[tuple[int, int, bool]] = []

    def fit(self, x: Array, t: Array, max_epoch: int = 10, batch_size: int = 32,
            max_grad: float | None = None, eval_interval: int | None = 20) -> None:
        """``max_epoch`` passes over ``(x, t)`` in shuffled batches of ``batch_size`` (the last
        partial batch dropped, as in the book); every ``eval_interval`` steps, print the
        book's progress line and append the mean loss since the last one to ``loss_list``.
        ``max_grad``: clip the gradients' total norm to it (:func:`clip_grads`)."""
        max_epoch = positive_int("max_epoch", max_epoch)
        batch_size = positive_int("batch_size", batch_size)
        if max_grad is not None:
            max_grad = real("max_grad", max_grad, low=0.0, low_open=True)
        if eval_interval is not None:
            eval_interval = positive_int("eval_interval", eval_interval)
        x, t = self._on_device(x, t)
        data_size = int(x.shape[0])
        max_iters = data_size // batch_size
        if max_iters == 0:
            raise ValueError(f"batch_size: {batch_size} is more than the {data_size} samples of x")
        self.eval_interval = eval_interval
        model, optimizer, xp = self.model, self.optimizer, self.device.xp
        total_loss, loss_count = 0.0, 0
        start_time = time.time()
        with self.device.activate():
            for _ in range(max_epoch):
                order = self.rng.permutation(data_size, device=self.device)
                for iters in range(max_iters):
                    idx = order[iters * batch_size:(iters + 1) * batch_size]
                    loss = model.forward(xp.take(x, idx, axis=0), xp.take(t, idx, axis=0))
                    model.backward()
                    params, grads = merge_shared(model.params, model.grads, self._shared_pairs(model.params))
                    if max_grad is not None:
                        clip_grads(grads, max_grad)
                    optimizer.update(params, grads)
                    total_loss, loss_count = total_loss + loss, loss_count + 1
                    if eval_interval is not None and iters % eval_interval == 0:
                        avg_loss = float(total_loss) / loss_count
                        elapsed_time = time.time() - start_time
                        print("| epoch %d |  iter %d / %d | time %d[s] | loss %.2f"
                              % (self.current_epoch + 1, iters + 1, max_iters, elapsed_time, avg_loss))
                        self.loss_list.append(avg_loss)
                        total_loss, loss_count = 0.0, 0
                self.current_epoch += 1

    def _shared_pairs(self, params: list[Array]) -> list[tuple[int, int, bool]]:
        """The book's ``remove_duplicate`` pairs, found once per set of param arrays (the
        transpose test reads values back from the device: not at every step)."""
        same = len(params) == len(self._pairs_for) and all(a is b for a, b in zip(params, self._pairs_for))
        if not same:
            self._pairs_for, self._pairs = list(params), shared_pairs(params)
        return self._pairs

    def _on_device(self, x: Any, t: Any) -> tuple[Array, Array]:
        """``x`` and ``t`` on the trainer's device, once; floating ``x`` in the params' dtype."""
        dtype = self.model.params[0].dtype
        x, t = self.device.asarray(x), self.device.asarray(t)
        if x.ndim == 0 or t.ndim == 0 or x.shape[0] != t.shape[0]:
            raise ValueError(f"x, t: expected one label per sample, got shapes {tuple(x.shape)} and {tuple(t.shape)}")
        xp = self.device.xp
        if xp.isdtype(x.dtype, "real floating") and x.dtype != dtype:
            x = self.device.asarray(x, dtype=dtype)
        return x, t

    def plot(self, ylim: tuple[float, float] | None = None) -> None:
        """Plot ``loss_list`` against steps (x ``eval_interval``), as the book does."""
        import matplotlib.pyplot as plt

        if ylim is not None:
            plt.ylim(*ylim)
        plt.plot(range(len(self.loss_list)), self.loss_list, label="train")
        plt.xlabel(f"iterations (x{self.eval_interval})")
        plt.ylabel("loss")
        plt.show()
