"""What every net of the book shares: prediction, loss, batched accuracy, gradients,
input checks and parameter files, written once over the Array API.

A net subclasses :class:`Net`, builds its parameters with :meth:`Net._affine`,
:meth:`Net._convolution` and :meth:`Net._batchnorm` (which register, for each
``params`` key, the layer attribute that holds the very same array), and fills
``self.layers`` (an ``OrderedDict`` or a list, as in the book) in forward order.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from typing import Any, Iterable, Mapping, Union

from array_api_compat import array_namespace, is_array_api_obj, is_writeable_array

from .. import io
from ..backend import Device, DeviceLike, Generator, device_of, get_device, resolve_dtype, to_numpy
from ..checks import positive_int
from ..gradient import numerical_gradient as _numerical_gradient
from ..layers import Affine, BatchNormalization, Convolution, Dropout, SoftmaxWithLoss

Array = Any
InitStd = Union[float, str]

_INIT_GAINS = {"relu": 2.0, "he": 2.0, "sigmoid": 1.0, "xavier": 1.0}
_MODAL_LAYERS = (Dropout, BatchNormalization)


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


class Net:
    """Base of the book's nets.

    Attributes: ``params`` (name -> array, the arrays the layers compute with),
    ``layers``, ``last_layer`` (:class:`SoftmaxWithLoss`), ``rng`` (the one
    :class:`Generator` for initial weights and Dropout masks; checkpoint
    ``rng.state``), ``weight_decay_lambda``.  ``device`` and ``dtype`` are read
    from the parameters, so they stay true after ``backend.to_device(net, ...)``.
    """

    weight_decay_lambda: float = 0.0

    def __init__(self, input_shape: tuple[int, ...], *, flat_input: bool, dtype: Any,
                 seed: int | None, device: DeviceLike) -> None:
        # Where and in which dtype the subclass creates its parameters; once built,
        # the ``device`` and ``dtype`` properties (read from the params) are the truth.
        self._build_device = get_device(device)
        self._build_dtype = resolve_dtype(self._build_device.xp, dtype)
        self.input_shape = tuple(int(n) for n in input_shape)
        self._flat_input = flat_input
        self.rng = Generator(seed)
        self.params: dict[str, Array] = {}
        self.layers: OrderedDict[str, Any] | list[Any] = OrderedDict()
        self.last_layer = SoftmaxWithLoss()
        # params key -> (layer, attribute) holding that array; the gradient is layer.d<attribute>
        self._slots: dict[str, tuple[Any, str]] = {}
        # saved non-parameter state (BatchNorm running statistics): key -> (layer, attribute)
        self._buffers: dict[str, tuple[Any, str]] = {}

    # ----------------------------------------------------------------- building
    def _normal(self, shape: tuple[int, ...], scale: float) -> Array:
        return self.rng.normal(shape, scale=scale, dtype=self._build_dtype, device=self._build_device)

    def _filled(self, n: int, value: float) -> Array:
        with self._build_device.activate():
            return self._build_device.xp.full((n,), value, dtype=self._build_dtype, device=self._build_device.native)

    def _register(self, layer: Any, **slots: str) -> Any:
        """Enter ``layer.<attr>`` as ``params[key]`` for each ``attr=key``; return ``layer``."""
        for attr, key in slots.items():
            self.params[key] = getattr(layer, attr)
            self._slots[key] = (layer, attr)
        return layer

    def _affine(self, index: int, fan_in: int, fan_out: int, scale: float) -> Affine:
        """``Affine`` with ``W{index}: (fan_in, fan_out)`` ~ N(0, scale**2) and ``b{index} = 0``
        (index 1 is the first layer: its input gradient is not computed)."""
        layer = Affine(self._normal((fan_in, fan_out), scale), self._filled(fan_out, 0.0))
        layer.input_grad = index > 1
        return self._register(layer, W=f"W{index}", b=f"b{index}")

    def _convolution(self, index: int, shape: tuple[int, int, int, int], scale: float,
                     stride: int, pad: int) -> Convolution:
        """``Convolution`` with ``W{index}: shape (FN, C, FH, FW)`` ~ N(0, scale**2), ``b{index} = 0``."""
        layer = Convolution(self._normal(shape, scale), self._filled(shape[0], 0.0), stride=stride, pad=pad)
        layer.input_grad = index > 1
        return self._register(layer, W=f"W{index}", b=f"b{index}")

    def _batchnorm(self, index: int, size: int) -> BatchNormalization:
        """``BatchNormalization`` with ``gamma{index} = 1``, ``beta{index} = 0`` and zeroed running
        statistics (saved as ``running_mean{index}``/``running_var{index}``)."""
        layer = BatchNormalization(self._filled(size, 1.0), self._filled(size, 0.0),
                                   running_mean=self._filled(size, 0.0), running_var=self._filled(size, 0.0))
        self._buffers[f"running_mean{index}"] = (layer, "running_mean")
        self._buffers[f"running_var{index}"] = (layer, "running_var")
        return self._register(layer, gamma=f"gamma{index}", beta=f"beta{index}")

    # --------------------------------------------------------------- properties
    @property
    def device(self) -> Device:
        """The :class:`Device` the parameters live on."""
        return device_of(next(iter(self.params.values())))

    @property
    def dtype(self) -> Any:
        """The parameters' dtype."""
        return next(iter(self.params.values())).dtype

    def _sequence(self) -> Iterable[Any]:
        return self.layers.values() if isinstance(self.layers, dict) else self.layers

    # ------------------------------------------------------------------- checks
    def _check_x(self, x: Any, device: Device) -> None:
        _check_on_device("x", x, device)
        features = tuple(x.shape[1:])
        fits = (x.ndim >= 2 and math.prod(features) == self.input_shape[0]) if self._flat_input \
            else features == self.input_shape
        if not fits:
            expected = f"(N, {self.input_shape[0]}) or (N, ...) with {self.input_shape[0]} features" \
                if self._flat_input else f"(N, {', '.join(map(str, self.input_shape))})"
            raise ValueError(f"x: expected shape {expected}, got {tuple(x.shape)}")

    def _check_t(self, x: Array, t: Any, device: Device) -> None:
        _check_on_device("t", t, device)
        if t.ndim not in (1, 2) or t.shape[0] != x.shape[0]:
            raise ValueError(f"t: expected {x.shape[0]} labels (one per sample of x) as indices (N,) or "
                             f"one-hot (N, C), got shape {tuple(t.shape)}")

    def _as_input(self, x: Array) -> Array:
        dtype = self.dtype
        return x if x.dtype == dtype else array_namespace(x).astype(x, dtype)

    # -------------------------------------------------------------- computation
    def _forward(self, x: Array, train_flg: bool) -> Array:
        x = self._as_input(x)
        for layer in self._sequence():
            x = layer.forward(x, train_flg) if isinstance(layer, _MODAL_LAYERS) else layer.forward(x)
        return x

    def predict(self, x: Array, train_flg: bool = False) -> Array:
        """Scores before softmax, ``(N, output_size)``, in the net's dtype.

        ``x``: ``(N, *input_shape)`` on the net's device (cast to the net's dtype
        if needed).  ``train_flg`` switches Dropout/BatchNorm to training mode.
        """
        device = self.device
        self._check_x(x, device)
        with device.activate():
            return self._forward(x, train_flg)

    def loss(self, x: Array, t: Array, train_flg: bool = False) -> Array:
        """Mean cross-entropy of ``softmax(predict(x))`` against ``t`` (indices ``(N,)`` or
        one-hot ``(N, C)``), plus ``0.5 * weight_decay_lambda * sum(W**2)`` over the
        weights; a 0-d array on the net's device (``float()`` it to read it)."""
        device = self.device
        self._check_x(x, device)
        self._check_t(x, t, device)
        with device.activate():
            loss = self.last_layer.forward(self._forward(x, train_flg), t)
            if self.weight_decay_lambda:
                xp = array_namespace(loss)
                decay = sum(xp.sum(W * W) for W in self._decayed_weights())
                loss = loss + (0.5 * self.weight_decay_lambda) * decay
        return loss

    def _decayed_weights(self) -> list[Array]:
        return [value for key, value in self.params.items() if key.startswith("W")]

    def accuracy(self, x: Array, t: Array, batch_size: int = 100) -> float:
        """Fraction of samples whose highest score is the label, as a Python float.

        Evaluates ``batch_size`` samples at a time in inference mode, so memory
        stays bounded for any number of samples; ``t``: indices or one-hot.
        """
        positive_int("batch_size", batch_size)
        device = self.device
        self._check_x(x, device)
        self._check_t(x, t, device)
        n = x.shape[0]
        if n == 0:
            raise ValueError("x: expected at least one sample, got 0")
        xp = device.xp
        correct = None
        with device.activate():
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                y = xp.argmax(self._forward(x[start:stop, ...], False), axis=1)
                labels = t[start:stop, ...]
                if labels.ndim != 1:
                    labels = xp.argmax(labels, axis=1)
                if labels.dtype != y.dtype:
                    labels = xp.astype(labels, y.dtype)
                hits = xp.count_nonzero(y == labels)
                correct = hits if correct is None else correct + hits
        return int(correct) / n

    def gradient(self, x: Array, t: Array) -> dict[str, Array]:
        """Gradients of :meth:`loss` (training mode) by backpropagation, keyed like ``params``.

        Weights' gradients include the weight-decay term ``weight_decay_lambda * W``.
        The loss this forward pass computed is kept as ``last_loss`` (the Trainer logs it,
        so a training step needs no second forward pass).
        """
        self.last_loss = self.loss(x, t, train_flg=True)
        with self.device.activate():
            dout = self.last_layer.backward(1.0)
            for layer in reversed(list(self._sequence())):
                dout = layer.backward(dout)
            grads = {key: getattr(layer, "d" + attr) for key, (layer, attr) in self._slots.items()}
            if self.weight_decay_lambda:
                for key, value in self.params.items():
                    if key.startswith("W"):
                        grads[key] = grads[key] + self.weight_decay_lambda * value
        return grads

    def numerical_gradient(self, x: Array, t: Array) -> dict[str, Array]:
        """Gradients of :meth:`loss` (training mode) by central differences, keyed like ``params``.

        Slow (two forward passes per parameter entry): for checking :meth:`gradient`.
        ``rng.state`` is restored before every pass, so Dropout draws the same masks
        each time (and the same as a :meth:`gradient` call made from that state).
        """
        state = self.rng.state

        def loss_at(_: Array) -> Array:
            self.rng.state = state
            return self.loss(x, t, train_flg=True)

        return {key: _numerical_gradient(loss_at, value) for key, value in self.params.items()}

    # -------------------------------------------------------------------- files
    def save_params(self, file_name: str | os.PathLike = "params.npz") -> None:
        """Write the parameters (and BatchNorm running statistics) as host NumPy arrays.

        ``.npz`` unless the name ends in ``.pkl``/``.pickle`` (the book's pickled
        dict).  The write is atomic: an interrupted save never corrupts an existing file.
        """
        arrays = {key: to_numpy(value) for key, value in self.params.items()}
        for key, (layer, attr) in self._buffers.items():
            arrays[key] = to_numpy(getattr(layer, attr))
        io.save_arrays(file_name, arrays)

    def load_params(self, file_name: str | os.PathLike = "params.npz") -> None:
        """Load parameters written by :meth:`save_params` (``.npz``) or by the book (``.pkl``).

        Values are cast to the net's dtype and placed on its device, written in
        place into the existing arrays where the backend allows (else both
        ``params[key]`` and the layer's attribute are re-bound), so ``params`` and
        the layers keep sharing them.  Every parameter must be in the file with its
        shape; BatchNorm running statistics are optional.  Nothing changes on error.
        """
        arrays = io.load_arrays(file_name)
        name = os.fspath(file_name)
        unknown = sorted(set(arrays) - set(self._slots) - set(self._buffers))
        if unknown:
            raise ValueError(f"{name}: holds {unknown}, which this {type(self).__name__} does not have "
                             f"(its keys: {sorted(self._slots) + sorted(self._buffers)})")
        missing = [key for key in self._slots if key not in arrays]
        if missing:
            raise ValueError(f"{name}: parameters {missing} are missing")
        targets = {**self._slots, **{k: v for k, v in self._buffers.items() if k in arrays}}
        for key, (layer, attr) in targets.items():
            expected = tuple(getattr(layer, attr).shape)
            if arrays[key].shape != expected:
                raise ValueError(f"{name}: {key!r} has shape {arrays[key].shape}, the net expects {expected}")
        device, dtype = self.device, self.dtype
        with device.activate():
            for key, (layer, attr) in targets.items():
                value = device.asarray(arrays[key], dtype=dtype)
                current = getattr(layer, attr)
                if key in self._slots and is_writeable_array(current):
                    current[...] = value
                    continue
                setattr(layer, attr, value)
                if key in self._slots:
                    self.params[key] = value


def _check_on_device(name: str, a: Any, device: Device) -> None:
    """``a`` must be an array on ``device`` (the net's); the error says how to move it."""
    if not is_array_api_obj(a):
        raise TypeError(f"{name}: expected an array, got {type(a).__name__}")
    where = device_of(a)
    if where != device:
        raise ValueError(f"{name}: is on {where!r} but the net's parameters are on {device!r}; move it first "
                         f"with xpnet.backend.to_device({name}, net.device) or net.device.asarray({name})")
