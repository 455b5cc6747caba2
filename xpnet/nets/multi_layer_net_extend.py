"""The book's extended fully connected net of chapter 6 (``common/multi_layer_net_extend.py``):
:class:`MultiLayerNet` plus optional Batch Normalization and Dropout."""

from __future__ import annotations

from typing import Any, Sequence

from ..backend import DeviceLike
from ..layers import Dropout
from ._args import InitStd
from .multi_layer_net import MultiLayerNet


class MultiLayerNetExtend(MultiLayerNet):
    """:class:`MultiLayerNet` whose hidden blocks are
    ``Affine{i} -> [BatchNorm{i}] -> Activation_function{i} -> [Dropout{i}]``.

    With ``use_batchnorm``, params ``gamma{i}``/``beta{i}: (hidden_size_list[i-1],)``
    join ``W{i}``/``b{i}``, and the running statistics are saved as
    ``running_mean{i}``/``running_var{i}``.  With ``use_dropout``, units drop with
    probability ``dropout_ration`` (the book's spelling; ``dropout_ratio=`` works
    too), masks drawn from ``self.rng``.  ``predict``/``loss`` default to inference
    mode (``train_flg=False``); ``gradient`` runs in training mode.
    """

    def __init__(self, input_size: int, hidden_size_list: Sequence[int], output_size: int,
                 activation: str = "relu", weight_init_std: InitStd = "relu", weight_decay_lambda: float = 0,
                 use_dropout: bool = False, dropout_ration: float = 0.5, use_batchnorm: bool = False, *,
                 dropout_ratio: float | None = None, dtype: Any = "float32", seed: int | None = None,
                 device: DeviceLike = "cpu") -> None:
        if dropout_ratio is not None:
            if dropout_ration not in (0.5, dropout_ratio):
                raise TypeError("give dropout_ration (the book's spelling) or dropout_ratio, not both")
            dropout_ration = dropout_ratio
        self.use_dropout = bool(use_dropout)
        self.dropout_ration = float(dropout_ration)
        self.use_batchnorm = bool(use_batchnorm)
        super().__init__(input_size, hidden_size_list, output_size, activation, weight_init_std,
                         weight_decay_lambda, dtype=dtype, seed=seed, device=device)

    def _add_hidden_layers(self, index: int, size: int) -> None:
        if self.use_batchnorm:
            self.layers[f"BatchNorm{index}"] = self._batchnorm(index, size)
        super()._add_hidden_layers(index, size)
        if self.use_dropout:
            self.layers[f"Dropout{index}"] = Dropout(self.dropout_ration, rng=self.rng)
