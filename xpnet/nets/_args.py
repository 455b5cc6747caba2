"""Constructor-argument checks shared by the book's nets: weight-init scales, the
book's ``conv_param`` dicts, and the parameters' floating dtype."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Union

from ..backend import resolve_dtype
from ..checks import positive_int

InitStd = Union[float, str]

_INIT_GAINS = {"relu": 2.0, "he": 2.0, "sigmoid": 1.0, "xavier": 1.0}


def init_scale(weight_init_std: InitStd, fan_in: int) -> float:
    """Standard deviation of a weight's initial values: a number as given, or by name
    ``'relu'``/``'he'`` (``sqrt(2 / fan_in)``) or ``'sigmoid'``/``'xavier'`` (``sqrt(1 / fan_in)``)."""
    if isinstance(weight_init_std, str):
        name = weight_init_std.lower()
        if name not in _INIT_GAINS:
            raise ValueError(f"weight_init_std: expected a number or one of {sorted(_INIT_GAINS)}, "
                             f"got {weight_init_std!r}")
        return math.sqrt(_INIT_GAINS[name] / fan_in)
    if isinstance(weight_init_std, bool) or not isinstance(weight_init_std, (int, float)) \
            or not math.isfinite(weight_init_std) or weight_init_std < 0:
        raise ValueError(f"weight_init_std: expected a finite number >= 0 or one of {sorted(_INIT_GAINS)}, "
                         f"got {weight_init_std!r}")
    return float(weight_init_std)


def hidden_sizes(net: str, input_size: Any, hidden_size_list: Any, output_size: Any) -> list[int]:
    """``hidden_size_list`` as a list of positive ints; a lone number (``MultiLayerNet(784, 100, 10)``)
    raises one line that writes the call with its keywords."""
    if isinstance(hidden_size_list, int):
        raise TypeError(f"hidden_size_list: expected a list of hidden layer sizes, got {hidden_size_list!r}; "
                        f"write {net}(input_size={input_size!r}, hidden_size_list=[{hidden_size_list!r}], "
                        f"output_size={output_size!r})")
    if isinstance(hidden_size_list, str) or not isinstance(hidden_size_list, Iterable):
        raise TypeError(f"hidden_size_list: expected a list of hidden layer sizes such as [100, 100], "
                        f"got {hidden_size_list!r}")
    return [positive_int("hidden_size_list", n) for n in hidden_size_list]


def input_problem(shape: tuple[int, ...], input_shape: tuple[int, ...], flat: bool) -> str:
    """``""`` when an array of ``shape`` is a batch of a net's samples (``input_shape``; ``flat``:
    any sample shape with that many values), else what is wrong and the fix: a forgotten
    ``flatten=False``, one sample without its batch axis."""
    size = math.prod(input_shape)
    if (len(shape) >= 2 and math.prod(shape[1:]) == size) if flat else shape[1:] == input_shape:
        return ""
    sample = ", ".join(map(str, (size,) if flat else input_shape))
    fix = ""
    if not flat and len(shape) == 2 and shape[1] == size:
        fix = (f": images flattened to {size} values; load them with flatten=False "
               f"(load_mnist(flatten=False)) or pass x.reshape(-1, {sample})")
    elif math.prod(shape) == size and (flat or len(shape) <= len(input_shape)):
        fix = f": one sample without its batch axis; pass a batch of one, x.reshape(1, {sample})"
    return f"expected shape (N, {sample}), got {shape}{fix}"


def conv_params(name: str, given: Mapping[str, int] | None, defaults: Mapping[str, int]) -> dict[str, int]:
    """``defaults`` updated by ``given`` (the book's ``{'filter_num', 'filter_size', 'pad',
    'stride'}`` dict), each checked; ``ValueError`` naming ``name`` on unknown keys or bad values."""
    params = dict(defaults)
    if given is not None:
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ValueError(f"{name}: unknown keys {unknown}; expected some of {sorted(defaults)}")
        params.update(given)
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "pad" else 1):
            raise ValueError(f"{name}[{key!r}]: expected an int >= {0 if key == 'pad' else 1}, got {value!r}")
    return params


def floating_dtype(xp: Any, dtype: Any) -> Any:
    """``xp``'s floating dtype for ``dtype`` however it is spelled (``"float32"``, ``np.float64``,
    ``float``); ``ValueError`` naming ``dtype`` for anything else (``np.int32``, ``"int32"``, ``int``)."""
    expected = "a floating dtype ('float16', 'float32' or 'float64')"
    if dtype is float:
        dtype = "float64"
    try:
        resolved = resolve_dtype(xp, dtype)
        floating = xp.isdtype(resolved, "real floating")
    except Exception as exc:
        raise ValueError(f"dtype: expected {expected}, got {dtype!r}") from exc
    if not floating:
        raise ValueError(f"dtype: expected {expected}, got {dtype!r}")
    return resolved
