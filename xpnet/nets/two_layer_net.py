"""The book's two-layer net of chapter 5: Affine -> ReLU -> Affine -> softmax."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ..backend import DeviceLike
from ..checks import positive_int
from ..layers import Relu
from ._args import InitStd, init_scale
from ._base import Net


class TwoLayerNet(Net):
    """``Affine1 -> Relu1 -> Affine2`` with softmax cross-entropy loss.

    ``x: (N, input_size)`` (or ``(N, ...)`` with ``input_size`` features), labels
    ``t: (N,)`` or one-hot ``(N, output_size)``.  Params: ``W1 (input_size,
    hidden_size)``, ``b1 (hidden_size,)``, ``W2 (hidden_size, output_size)``,
    ``b2 (output_size,)``.  ``weight_init_std``: a number (the book's 0.01) or
    ``'relu'``/``'he'``/``'sigmoid'``/``'xavier'``.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 weight_init_std: InitStd = 0.01, *, dtype: Any = "float32", seed: int | None = None,
                 device: DeviceLike = "cpu") -> None:
        sizes = [positive_int(name, value) for name, value in
                 (("input_size", input_size), ("hidden_size", hidden_size), ("output_size", output_size))]
        super().__init__((sizes[0],), flat_input=True, dtype=dtype, seed=seed, device=device)
        self.layers = OrderedDict()
        self.layers["Affine1"] = self._affine(1, sizes[0], sizes[1], init_scale(weight_init_std, sizes[0]))
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = self._affine(2, sizes[1], sizes[2], init_scale(weight_init_std, sizes[1]))
