"""The three-armed spiral of the second book: a small 2-D problem no straight line can separate.

``from xpnet.datasets import spiral; x, t = spiral.load_data()``
"""

from __future__ import annotations

import numpy as np

from xpnet.datasets._common import float_dtype

__all__ = ["load_data"]

N_PER_CLASS = 100
N_CLASSES = 3


def load_data(
    seed: int | None = 1984, *, dtype: str | np.dtype | type = "float32"
) -> tuple[np.ndarray, np.ndarray]:
    """Points on three noisy spiral arms: ``x`` (300, 2) and one-hot ``t`` (300, 3), both in ``dtype``.

    Arm ``c`` (0, 1, 2) holds 100 points; point ``i`` lies at radius ``r = i / 100`` and
    angle ``4 c + 4 r + 0.2 e`` with ``e`` standard normal, so ``|x| < 1``.  Rows are
    ordered by class (100 of class 0, then 1, then 2): shuffle before mini-batching.
    The noise comes from ``numpy.random.default_rng(seed)`` (no global state), so a seed
    always gives the same data; ``seed=None`` gives fresh data.  The book used float64
    for ``x`` and int for ``t``; pass ``dtype="float64"`` for double precision.
    """
    dt = float_dtype(dtype)
    rng = np.random.default_rng(seed)
    radius = np.tile(np.arange(N_PER_CLASS) / N_PER_CLASS, N_CLASSES)
    labels = np.repeat(np.arange(N_CLASSES), N_PER_CLASS)
    angle = 4.0 * labels + 4.0 * radius + 0.2 * rng.standard_normal(radius.shape)
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1).astype(dt)
    t = np.eye(N_CLASSES, dtype=dt)[labels]
    return x, t
