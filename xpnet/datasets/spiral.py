"""The three-armed spiral of the second book: a small 2-D problem no straight line can separate.

``from xpnet.datasets import spiral; x, t = spiral.load_data()``
"""

from __future__ import annotations

import numpy as np

from xpnet.checks import nonnegative_int
from xpnet.datasets._common import float_dtype

__all__ = ["load_data"]

N_PER_CLASS = 100
N_CLASSES = 3


def load_data(
    seed: int | None = 1984, *, dtype: str | np.dtype | type = "float32"
) -> tuple[np.ndarray, np.ndarray]:
    """The book's points on three noisy spiral arms: ``x`` (300, 2) and one-hot ``t`` (300, 3), in ``dtype``.

    Arm ``c`` (0, 1, 2) holds 100 points; point ``i`` lies at radius ``r = i / 100`` and
    angle ``4 c + 4 r + 0.2 e`` with ``e`` standard normal, so ``|x| < 1``.  Rows are
    ordered by class (100 of class 0, then 1, then 2): shuffle before mini-batching.
    As the book's does, it seeds NumPy's global generator with ``seed`` (``np.random.seed``;
    ``None``: fresh entropy) and draws the noise ``e`` from it point after point, which
    sets what a script draws next.  So ``load_data()`` gives the book's very points (bit
    for bit with ``dtype="float64"``, the book's precision; float32 rounds them) and
    leaves NumPy's generator where the book's leaves it.  The book's ``t`` is int; here
    it is one-hot in ``dtype``.
    """
    dt = float_dtype(dtype)
    np.random.seed(None if seed is None else nonnegative_int("seed", seed))
    radius = np.tile(np.arange(N_PER_CLASS) / N_PER_CLASS, N_CLASSES)
    labels = np.repeat(np.arange(N_CLASSES), N_PER_CLASS)
    angle = labels * 4.0 + 4.0 * radius + np.random.standard_normal(radius.shape) * 0.2
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1).astype(dt)
    t = np.eye(N_CLASSES, dtype=dt)[labels]
    return x, t
