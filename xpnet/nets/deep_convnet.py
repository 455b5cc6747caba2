"""The book's deep convolutional net of chapter 8 (``ch08/deep_convnet.py``)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ..backend import DeviceLike
from ..checks import positive_int
from ..layers import Dropout, Pooling, Relu
from ..util import conv_output_size
from ._args import conv_params
from ._base import Net

Array = Any


def _conv(filter_num: int, pad: int = 1) -> dict[str, int]:
    return {"filter_num": filter_num, "filter_size": 3, "pad": pad, "stride": 1}


_CONV_DEFAULTS = (_conv(16), _conv(16), _conv(32), _conv(32, pad=2), _conv(64), _conv(64))


class DeepConvNet(Net):
    """The book's VGG-like net: ``(conv -> relu -> conv -> relu -> pool) x 3 -> affine -> relu
    -> dropout -> affine -> dropout`` with softmax loss, He-initialised.

    ``self.layers`` is a list (as in the book) of 20 layers: six 3x3 convolutions
    (16, 16, 32, 32, 64, 64 filters; pad 1, the fourth pad 2) with ReLU, 2x2/stride-2
    max pooling after the 2nd, 4th and 6th, then ``Affine (1024 -> hidden_size)``,
    ReLU, ``Dropout(0.5)``, ``Affine (hidden_size -> output_size)``, ``Dropout(0.5)``
    (1024 = 64 * 4 * 4 for the default ``input_dim=(1, 28, 28)``).  Params ``W1..W6``
    / ``b1..b6`` (convolutions, ``W: (FN, C, 3, 3)``), ``W7``/``b7`` and ``W8``/``b8``
    (affines).  ``conv_param_k`` dicts may override the defaults key by key.
    ``x: (N, *input_dim)``; ``loss`` defaults to training mode, as the book's does.
    """

    def __init__(self, input_dim: Sequence[int] = (1, 28, 28),
                 conv_param_1: Mapping[str, int] | None = None, conv_param_2: Mapping[str, int] | None = None,
                 conv_param_3: Mapping[str, int] | None = None, conv_param_4: Mapping[str, int] | None = None,
                 conv_param_5: Mapping[str, int] | None = None, conv_param_6: Mapping[str, int] | None = None,
                 hidden_size: int = 50, output_size: int = 10, *, dtype: Any = "float32",
                 seed: int | None = None, device: DeviceLike = "cpu") -> None:
        if len(input_dim) != 3:
            raise ValueError(f"input_dim: expected (channels, height, width), got {tuple(input_dim)}")
        channels, height, width = (positive_int("input_dim", n) for n in input_dim)
        given = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        convs = [conv_params(f"conv_param_{k + 1}", p, d) for k, (p, d) in enumerate(zip(given, _CONV_DEFAULTS))]
        hidden_size = positive_int("hidden_size", hidden_size)
        output_size = positive_int("output_size", output_size)
        super().__init__((channels, height, width), flat_input=False, dtype=dtype, seed=seed, device=device)
        self.layers = []
        in_channels, h, w = channels, height, width
        for index, conv in enumerate(convs, start=1):
            size, pad, stride = conv["filter_size"], conv["pad"], conv["stride"]
            try:
                h, w = conv_output_size(h, size, stride, pad), conv_output_size(w, size, stride, pad)
                if index % 2 == 0:
                    h, w = conv_output_size(h, 2, 2), conv_output_size(w, 2, 2)
            except ValueError as exc:
                raise ValueError(f"input_dim {tuple(input_dim)} / conv_param_{index} {conv}: {exc}") from exc
            shape = (conv["filter_num"], in_channels, size, size)
            self.layers.append(self._convolution(index, shape, math.sqrt(2.0 / (in_channels * size * size)),
                                                 stride=stride, pad=pad))
            self.layers.append(Relu())
            if index % 2 == 0:
                self.layers.append(Pooling(pool_h=2, pool_w=2, stride=2))
            in_channels = conv["filter_num"]
        flat = in_channels * h * w
        self.layers.append(self._affine(7, flat, hidden_size, math.sqrt(2.0 / flat)))
        self.layers.append(Relu())
        self.layers.append(Dropout(0.5, rng=self.rng))
        self.layers.append(self._affine(8, hidden_size, output_size, math.sqrt(2.0 / hidden_size)))
        self.layers.append(Dropout(0.5, rng=self.rng))

    def loss(self, x: Array, t: Array, train_flg: bool = True, *, check_labels: bool = True) -> Array:
        """As :meth:`Net.loss`, in training mode (Dropout on) unless ``train_flg=False``."""
        return super().loss(x, t, train_flg, check_labels=check_labels)
