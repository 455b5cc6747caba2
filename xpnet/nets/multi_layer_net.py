"""The book's fully connected net of chapter 6 (``common/multi_layer_net.py``)."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Sequence

from ..backend import DeviceLike
from ..checks import positive_int
from ..layers import Relu, Sigmoid
from ._args import InitStd, hidden_sizes, init_scale
from ._base import Net

_ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}


class MultiLayerNet(Net):
    """``(Affine -> activation) x len(hidden_size_list) -> Affine`` with softmax loss.

    Layers ``Affine{i}``, ``Activation_function{i}`` (``i = 1..L``, ``L =
    len(hidden_size_list)``), then ``Affine{L+1}``.  Params ``W{i}: (size[i-1],
    size[i])`` and ``b{i}: (size[i],)`` for ``i = 1..L+1``, where ``size = [input_size,
    *hidden_size_list, output_size]``.  ``activation``: ``'relu'`` or ``'sigmoid'``;
    ``weight_init_std``: a number or ``'relu'``/``'he'`` (``sqrt(2/fan_in)``),
    ``'sigmoid'``/``'xavier'`` (``sqrt(1/fan_in)``).  ``weight_decay_lambda`` adds
    ``0.5 * lambda * sum(W**2)`` over all weights to the loss.
    """

    def __init__(self, input_size: int, hidden_size_list: Sequence[int], output_size: int,
                 activation: str = "relu", weight_init_std: InitStd = "relu", weight_decay_lambda: float = 0,
                 *, dtype: Any = "float32", seed: int | None = None, device: DeviceLike = "cpu") -> None:
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size_list = hidden_sizes(type(self).__name__, input_size, hidden_size_list, output_size)
        self.hidden_layer_num = len(self.hidden_size_list)
        self.output_size = positive_int("output_size", output_size)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        if isinstance(weight_decay_lambda, bool) or not isinstance(weight_decay_lambda, (int, float)) \
                or not math.isfinite(weight_decay_lambda) or weight_decay_lambda < 0:
            raise ValueError(f"weight_decay_lambda: expected a finite number >= 0, got {weight_decay_lambda!r}")
        super().__init__((self.input_size,), flat_input=True, dtype=dtype, seed=seed, device=device)
        self.weight_decay_lambda = float(weight_decay_lambda)
        sizes = [self.input_size, *self.hidden_size_list, self.output_size]
        self.layers = OrderedDict()
        for index in range(1, len(sizes)):
            scale = init_scale(weight_init_std, sizes[index - 1])
            self.layers[f"Affine{index}"] = self._affine(index, sizes[index - 1], sizes[index], scale)
            if index < len(sizes) - 1:
                self._add_hidden_layers(index, sizes[index])

    def _add_hidden_layers(self, index: int, size: int) -> None:
        """Append what follows ``Affine{index}`` (of ``size`` outputs) in a hidden block."""
        self.layers[f"Activation_function{index}"] = _ACTIVATIONS[self.activation]()
