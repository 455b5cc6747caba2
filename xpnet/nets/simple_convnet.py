"""The book's convolutional net of chapter 7 (``ch07/simple_convnet.py``)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Sequence

from ..backend import DeviceLike
from ..checks import positive_int
from ..layers import Pooling, Relu
from ..util import conv_output_size
from ._args import InitStd, conv_params, init_scale
from ._base import Net

_CONV_DEFAULTS = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}


class SimpleConvNet(Net):
    """``Conv1 -> Relu1 -> Pool1 -> Affine1 -> Relu2 -> Affine2`` with softmax loss.

    ``x: (N, C, H, W)`` with ``(C, H, W) = input_dim``.  ``conv_param`` holds
    ``filter_num`` (30), ``filter_size`` (5), ``pad`` (0), ``stride`` (1); keys left
    out take those book defaults.  Pooling is 2x2 with stride 2.  Params:
    ``W1 (filter_num, C, filter_size, filter_size)``, ``b1 (filter_num,)``,
    ``W2 (filter_num * pool_h * pool_w, hidden_size)``, ``b2 (hidden_size,)``,
    ``W3 (hidden_size, output_size)``, ``b3 (output_size,)``.  ``weight_init_std``:
    a number (the book's 0.01) or ``'relu'``/``'he'``/``'sigmoid'``/``'xavier'``.
    """

    def __init__(self, input_dim: Sequence[int] = (1, 28, 28), conv_param: Mapping[str, int] | None = None,
                 hidden_size: int = 100, output_size: int = 10, weight_init_std: InitStd = 0.01, *,
                 dtype: Any = "float32", seed: int | None = None, device: DeviceLike = "cpu") -> None:
        if len(input_dim) != 3:
            raise ValueError(f"input_dim: expected (channels, height, width), got {tuple(input_dim)}")
        channels, height, width = (positive_int("input_dim", n) for n in input_dim)
        conv = conv_params("conv_param", conv_param, _CONV_DEFAULTS)
        hidden_size = positive_int("hidden_size", hidden_size)
        output_size = positive_int("output_size", output_size)
        size, pad, stride = conv["filter_size"], conv["pad"], conv["stride"]
        try:
            conv_h = conv_output_size(height, size, stride, pad)
            conv_w = conv_output_size(width, size, stride, pad)
            pooled = conv["filter_num"] * conv_output_size(conv_h, 2, 2) * conv_output_size(conv_w, 2, 2)
        except ValueError as exc:
            raise ValueError(f"input_dim {tuple(input_dim)} / conv_param {conv}: {exc}") from exc
        super().__init__((channels, height, width), flat_input=False, dtype=dtype, seed=seed, device=device)
        self.layers = OrderedDict()
        self.layers["Conv1"] = self._convolution(
            1, (conv["filter_num"], channels, size, size), init_scale(weight_init_std, channels * size * size),
            stride=stride, pad=pad)
        self.layers["Relu1"] = Relu()
        self.layers["Pool1"] = Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers["Affine1"] = self._affine(2, pooled, hidden_size, init_scale(weight_init_std, pooled))
        self.layers["Relu2"] = Relu()
        self.layers["Affine2"] = self._affine(3, hidden_size, output_size, init_scale(weight_init_std, hidden_size))
