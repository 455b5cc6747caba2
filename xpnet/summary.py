"""A Keras-style table of a net: its layers, their output shapes and parameter counts.

Works for xpnet's nets and for the book's own user-written nets: any object with
``params`` (a dict, or the second book's list) and ``layers`` (an ``OrderedDict``
or a list) whose layers have ``forward(x)`` (or ``forward(x, train_flg)``).
The shapes come from one forward pass, in inference mode, of a zero batch of
one sample on the device of the net's parameters.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

from array_api_compat import is_array_api_obj

from ._protocol import takes_train_flg
from .backend import device_of, zeros

Array = Any

__all__ = ["summary", "Summary", "LayerRow"]


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One layer: ``name``, ``kind`` (class name), ``output_shape`` (per sample, batch axis
    left out), ``params`` (entries of the net's parameters it holds) and ``work``: the
    largest array the layer computes per sample (its output, or the im2col columns of a
    convolution or pooling), in elements."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    work: int


@dataclasses.dataclass(frozen=True)
class Summary:
    """The table (``str()`` or ``repr()`` of it), with its numbers as attributes."""

    title: str
    input_shape: tuple[int, ...]
    rows: tuple[LayerRow, ...]
    total_params: int

    def __str__(self) -> str:
        header = ("Layer", "Type", "Output shape", "Params")
        lines = [(row.name, row.kind, _shape(row.output_shape), f"{row.params:,}") for row in self.rows]
        widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(4)]

        def fmt(cells: Sequence[str]) -> str:
            return "  ".join([*(c.ljust(w) for c, w in zip(cells[:3], widths)), cells[3].rjust(widths[3])])

        rule = "-" * len(fmt(header))
        body = [fmt(cells) for cells in lines]
        return "\n".join([self.title, f"input {_shape(self.input_shape)}", rule, fmt(header), rule, *body, rule,
                          f"Total params: {self.total_params:,}"])

    __repr__ = __str__


def summary(net: Any, input_shape: Sequence[int] | None = None) -> Summary:
    """The :class:`Summary` of ``net`` for samples of ``input_shape`` (batch axis left out;
    default: ``net.input_shape`` where the net has one, as xpnet's nets do).

    ``print(xpnet.summary(net, (1, 28, 28)))`` prints the table.  Parameters are
    attributed to the layer that holds the very same array; the total counts every
    entry of ``net.params``.
    """
    params = _param_list(net)
    layers = _named_layers(net)
    if input_shape is None:
        input_shape = getattr(net, "input_shape", None)
        if input_shape is None:
            raise ValueError("input_shape: this net does not say what its input is; pass the shape of one "
                             "sample, e.g. summary(net, (784,)) or summary(net, (1, 28, 28))")
    if isinstance(input_shape, int) or not all(isinstance(n, int) and n >= 1 for n in input_shape):
        raise ValueError(f"input_shape: expected a tuple of positive ints (one sample), got {input_shape!r}")
    input_shape = tuple(int(n) for n in input_shape)
    device = device_of(params[0])
    held = {id(value): math.prod(value.shape) for value in params}
    rows = []
    x = zeros((1, *input_shape), dtype=params[0].dtype, device=device)
    with device.activate():  # CuPy computes on the current GPU
        for name, layer in layers:
            try:
                y = layer.forward(x, train_flg=False) if takes_train_flg(layer) else layer.forward(x)
            except Exception as exc:
                raise ValueError(f"input_shape {input_shape}: layer {name!r} ({type(layer).__name__}) cannot take "
                                 f"an input of shape {_shape(tuple(x.shape[1:]))}: {exc}") from exc
            count = sum(held.pop(id(v), 0) for v in _arrays_of(layer))
            rows.append(LayerRow(name, type(layer).__name__, tuple(int(n) for n in y.shape[1:]), count,
                                 _work(layer, x, y)))
            x = y
    title = f"{type(net).__name__} on {device.name}, {params[0].dtype}"
    return Summary(title, input_shape, tuple(rows), sum(math.prod(v.shape) for v in params))


def _param_list(net: Any) -> list[Array]:
    params = getattr(net, "params", None)
    values = list(params.values()) if isinstance(params, dict) else list(params or [])
    if not values or not all(is_array_api_obj(v) for v in values):
        raise TypeError(f"net: expected an object whose params is a non-empty dict (or list) of arrays, "
                        f"got {type(net).__name__} with params={type(params).__name__}")
    return values


def _named_layers(net: Any) -> list[tuple[str, Any]]:
    layers = getattr(net, "layers", None)
    if isinstance(layers, dict):
        return list(layers.items())
    if isinstance(layers, (list, tuple)):
        return [(f"{i}", layer) for i, layer in enumerate(layers)]
    raise TypeError(f"net: expected layers as a dict (OrderedDict) or a list, got {type(layers).__name__}")


def _arrays_of(layer: Any) -> list[Array]:
    """The arrays a layer holds: its ``params`` list (the layer protocol); for a user's
    book-style layer without one, its array attributes (the book's ``W``, ``b``)."""
    params = getattr(layer, "params", None)
    if isinstance(params, list):
        return [v for v in params if is_array_api_obj(v)]
    return [v for v in vars(layer).values() if is_array_api_obj(v)] if hasattr(layer, "__dict__") else []


def _work(layer: Any, x: Array, y: Array) -> int:
    """Per-sample elements of the largest array ``layer`` makes: its output, or the windows
    of a convolution (``W: (FN, C, FH, FW)``) or pooling (``pool_h``, ``pool_w``)."""
    out = math.prod(y.shape[1:])
    W = getattr(layer, "W", None)
    if is_array_api_obj(W) and W.ndim == 4 and y.ndim == 4:
        return max(out, math.prod(W.shape[1:]) * math.prod(y.shape[2:]))
    if hasattr(layer, "pool_h") and y.ndim == 4:
        return max(out, layer.pool_h * layer.pool_w * math.prod(y.shape[1:]))
    return max(out, math.prod(x.shape[1:]))


def _shape(sample_shape: tuple[int, ...]) -> str:
    """``(N, 30, 24, 24)``: a batch of samples of ``sample_shape``."""
    return "(" + ", ".join(["N", *map(str, sample_shape)]) + ")"
