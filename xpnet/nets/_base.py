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
from typing import Any, Iterable, Sequence

from array_api_compat import array_namespace, is_array_api_obj, is_writeable_array

from .. import functions, io
from .._protocol import persistent, takes_train_flg
from ..backend import Device, DeviceLike, Generator, device_of, full, get_device, on_own_device, to_numpy
from ..checks import positive_int
from ..gradient import numerical_gradients
from ..layers import Affine, BatchNormalization, Convolution, SoftmaxWithLoss
from ..summary import Summary, summary
from ._args import floating_dtype, input_problem

Array = Any

EVAL_MEMORY_BUDGET = 64 * 2**20
"""Bytes of a net's largest per-sample array (see :meth:`Net._chunk_size`) one inference pass
may hold: bounds ``predict``/``accuracy`` memory whatever ``batch_size`` is asked for."""


class Net:
    """Base of the book's nets.

    Attributes: ``params`` (name -> array, the arrays the layers compute with),
    ``layers``, ``last_layer`` (:class:`SoftmaxWithLoss`), ``rng`` (the one
    :class:`Generator` for initial weights and Dropout masks; checkpoint
    ``rng.state``), ``weight_decay_lambda``.  ``device`` and ``dtype`` are read
    from the parameters, so they stay true after ``backend.to_device(net, ...)``.

    ``predict``/``loss``/``accuracy`` take arrays from any backend and device and
    answer in the input's (outputs follow inputs).  Labels: every direct
    ``loss``/``accuracy``/``gradient`` call checks their values
    (:func:`xpnet.functions.check_labels`, one read-back); a loop that checked once
    passes ``check_labels=False`` and then nothing is read back per step.
    """

    weight_decay_lambda: float = 0.0

    def __init__(self, input_shape: tuple[int, ...], *, flat_input: bool, dtype: Any,
                 seed: int | None, device: DeviceLike) -> None:
        # Where and in which dtype the subclass creates its parameters; once built,
        # the ``device`` and ``dtype`` properties (read from the params) are the truth.
        self._build_device = get_device(device)
        self._build_dtype = floating_dtype(self._build_device.xp, dtype)
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
        self._work: int | None = None  # per-sample elements of the largest array (see _chunk_size)

    # ----------------------------------------------------------------- building
    def _normal(self, shape: tuple[int, ...], scale: float) -> Array:
        return self.rng.normal(shape, scale=scale, dtype=self._build_dtype, device=self._build_device)

    def _filled(self, n: int, value: float) -> Array:
        return full((n,), value, dtype=self._build_dtype, device=self._build_device)

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
        statistics (its persistent buffers, saved as ``running_mean{index}``/``running_var{index}``)."""
        layer = BatchNormalization(self._filled(size, 1.0), self._filled(size, 0.0),
                                   running_mean=self._filled(size, 0.0), running_var=self._filled(size, 0.0))
        self._buffers.update({f"{attr}{index}": (layer, attr) for attr in persistent(layer)})
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

    @property
    def num_classes(self) -> int:
        """Number of classes: the width of the last Affine layer's output."""
        last = [layer for layer in self._sequence() if isinstance(layer, Affine)][-1]
        return int(last.W.shape[1])

    def summary(self, input_shape: Sequence[int] | None = None) -> Summary:
        """The table of layers, output shapes and parameter counts (``print`` it); samples of
        ``input_shape`` (default: the net's own).  ``print(net)`` prints the same table."""
        return summary(self, input_shape)

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        count = sum(math.prod(p.shape) for p in self.params.values())
        dtype = getattr(self.dtype, "name", str(self.dtype))
        return (f"{type(self).__name__}(input_shape={self.input_shape}, num_classes={self.num_classes}, "
                f"params={count:,}, dtype={dtype}, device={self.device.name!r})")

    # ------------------------------------------------------------------- checks
    def _check_x(self, x: Any) -> None:
        self.check_input(x)

    def check_input(self, x: Any, name: str = "x") -> None:
        """``TypeError``/``ValueError`` naming ``name`` and the fix when ``x`` is no batch of
        this net's samples (a forgotten ``flatten=False``, one sample without its batch axis)."""
        if not is_array_api_obj(x):
            raise TypeError(f"{name}: expected an array, got {type(x).__name__}")
        problem = input_problem(tuple(x.shape), self.input_shape, self._flat_input)
        if problem:
            raise ValueError(f"{name}: {problem}")

    def _check_t(self, x: Array, t: Any, values: bool) -> None:
        """Shape (and dtype) of ``t`` always; its values (one sync) when ``values``."""
        if not is_array_api_obj(t):
            raise TypeError(f"t: expected an array, got {type(t).__name__}")
        n, classes = x.shape[0], self.num_classes
        if not (t.ndim == 1 or (t.ndim == 2 and t.shape[1] in (1, classes))) or t.shape[0] != n:
            raise ValueError(f"t: expected {n} labels (one per sample of x) as indices ({n},) or ({n}, 1), "
                             f"or one-hot ({n}, {classes}), got shape {tuple(t.shape)}")
        if values:
            functions.check_labels(t, classes)

    def _as_input(self, x: Array) -> Array:
        dtype = self.dtype
        return x if x.dtype == dtype else array_namespace(x).astype(x, dtype)

    def _chunk_size(self) -> int:
        """Samples per inference pass: :data:`EVAL_MEMORY_BUDGET` bytes of the largest
        per-sample array (from :func:`xpnet.summary.summary`'s trace; at least 1)."""
        if self._work is None:
            self._work = max(row.work for row in summary(self).rows)
        itemsize = self.device.xp.finfo(self.dtype).bits // 8
        return max(1, EVAL_MEMORY_BUDGET // (self._work * itemsize))

    # -------------------------------------------------------------- computation
    def _forward(self, x: Array, train_flg: bool) -> Array:
        x = self._as_input(x)
        for layer in self._sequence():
            x = layer.forward(x, train_flg) if takes_train_flg(layer) else layer.forward(x)
        return x

    @on_own_device
    def predict(self, x: Array, train_flg: bool = False) -> Array:
        """Scores before softmax, ``(N, output_size)``, in the net's dtype.

        ``x``: ``(N, *input_shape)``, an array of any backend on any device: it is
        moved to the net's device (and cast to its dtype), and the scores come back
        in ``x``'s namespace and on its device.  In inference mode a large ``x`` is
        evaluated in chunks (:meth:`_chunk_size`), so memory stays bounded.
        ``train_flg`` switches Dropout/BatchNorm to training mode (one pass: batch statistics).
        """
        self._check_x(x)
        device = self.device
        n = x.shape[0]
        step = n if train_flg else self._chunk_size()
        if n <= step:
            return _follow(self._forward(device.asarray(x), train_flg), x)
        parts = []
        for start in range(0, n, step):
            parts.append(_follow(self._forward(device.asarray(x[start:min(start + step, n), ...]), False), x))
        return array_namespace(x).concat(parts, axis=0)

    def loss(self, x: Array, t: Array, train_flg: bool = False, *, check_labels: bool = True) -> Array:
        """Mean cross-entropy of ``softmax(predict(x))`` against ``t`` (indices ``(N,)`` or
        ``(N, 1)``, or one-hot ``(N, C)``), plus ``0.5 * weight_decay_lambda * sum(W**2)``
        over the weights: a 0-d array in ``x``'s namespace, on its device.

        ``x`` and ``t`` may live anywhere (they are moved to the net's device).
        ``check_labels``: check the values of ``t`` (:func:`xpnet.functions.check_labels`,
        one sync); a training loop that checked its labels once passes ``False``.
        """
        self._check_x(x)
        self._check_t(x, t, check_labels)
        return _follow(self._loss(x, t, train_flg), x)

    @on_own_device
    def _loss(self, x: Array, t: Array, train_flg: bool) -> Array:
        """:meth:`loss` on the net's device, unchecked."""
        device = self.device
        loss = self.last_layer.forward(self._forward(device.asarray(x), train_flg), device.asarray(t))
        if self.weight_decay_lambda:
            xp = array_namespace(loss)
            decay = sum(xp.sum(W * W) for W in self._decayed_weights())
            loss = loss + (0.5 * self.weight_decay_lambda) * decay
        return loss

    def _decayed_weights(self) -> list[Array]:
        return [value for key, value in self.params.items() if key.startswith("W")]

    @on_own_device
    def accuracy(self, x: Array, t: Array, batch_size: int = 100, *, check_labels: bool = True) -> float:
        """Fraction of samples whose highest score is the label, as a Python float.

        Evaluates ``batch_size`` samples at a time (fewer where the memory budget of
        :meth:`_chunk_size` says so) in inference mode, each moved to the net's
        device, so ``x``/``t`` may live anywhere and memory stays bounded for any
        ``batch_size``.  ``t``: indices or one-hot; ``check_labels`` as in :meth:`loss`.
        """
        positive_int("batch_size", batch_size)
        self._check_x(x)
        self._check_t(x, t, check_labels)
        n = x.shape[0]
        if n == 0:
            raise ValueError("x: expected at least one sample, got 0")
        device, classes = self.device, self.num_classes
        xp, step = device.xp, min(batch_size, self._chunk_size())
        correct = None
        for start in range(0, n, step):
            y = xp.argmax(self._forward(device.asarray(x[start:min(start + step, n), ...]), False), axis=1)
            labels = device.asarray(t[start:min(start + step, n), ...])
            if labels.ndim == 2:
                labels = xp.argmax(labels, axis=1) if labels.shape[1] == classes else labels[:, 0]
            if labels.dtype != y.dtype:
                labels = xp.astype(labels, y.dtype)
            hits = xp.count_nonzero(y == labels)
            correct = hits if correct is None else correct + hits
        return int(correct) / n

    @on_own_device
    def gradient(self, x: Array, t: Array, *, check_labels: bool = True) -> dict[str, Array]:
        """Gradients of :meth:`loss` (training mode) by backpropagation, keyed like ``params``,
        on the net's device (``x``/``t`` may live anywhere; ``check_labels`` as in :meth:`loss`).

        Weights' gradients include the weight-decay term ``weight_decay_lambda * W``.
        The loss this forward pass computed is kept as ``last_loss`` (on the net's device:
        the Trainer logs it, so a training step needs no second forward pass).
        """
        self._check_x(x)
        self._check_t(x, t, check_labels)
        self.last_loss = self._loss(x, t, True)
        dout = self.last_layer.backward(1.0)
        for layer in reversed(list(self._sequence())):
            dout = layer.backward(dout)
        grads = {key: getattr(layer, "d" + attr) for key, (layer, attr) in self._slots.items()}
        if self.weight_decay_lambda:
            for key, value in self.params.items():
                if key.startswith("W"):
                    grads[key] = grads[key] + self.weight_decay_lambda * value
        return grads

    @on_own_device
    def numerical_gradient(self, x: Array, t: Array, *, progress: bool | None = None) -> dict[str, Array]:
        """Gradients of :meth:`loss` (training mode) by central differences, keyed like ``params``.

        Evaluated in float64 whatever the net's dtype, so a float32 net's check reads as
        the book's (errors ~1e-7 and below): the layers compute, for the duration, with
        float64 copies of the parameters, and every layer is put back as it was (its
        parameters untouched, BatchNorm statistics included).  The result has the net's
        dtype.  Slow (two forward passes per parameter entry): a tqdm bar shows when it
        will take over 5 s (``progress``: see :func:`xpnet.gradient.numerical_gradients`).
        ``rng.state`` is restored before every pass, so Dropout draws the same masks
        each time (and the same as a :meth:`gradient` call made from that state).
        """
        self._check_x(x)
        self._check_t(x, t, True)
        device, dtype, state = self.device, self.dtype, self.rng.state
        xp = device.xp
        layers = [*self._sequence(), self.last_layer]
        # attributes, and the contents of list attributes (``params``/``grads``: a layer's ``W``
        # is ``params[0]``, so re-binding ``W`` changes the list in place)
        saved = [(layer, dict(vars(layer)), [(v, list(v)) for v in vars(layer).values() if isinstance(v, list)])
                 for layer in layers]
        saved_params = dict(self.params)
        try:
            for key, (layer, attr) in {**self._slots, **self._buffers}.items():
                wide = xp.astype(getattr(layer, attr), xp.float64, copy=True)
                setattr(layer, attr, wide)
                if key in self.params:
                    self.params[key] = wide
            x64, t_here = device.asarray(x, dtype="float64"), device.asarray(t)

            def loss_at(_: Array) -> Array:
                self.rng.state = state
                return self._loss(x64, t_here, True)

            keys = list(self.params)
            grads = numerical_gradients(loss_at, [self.params[key] for key in keys], progress=progress)
        finally:
            for layer, attributes, lists in saved:
                vars(layer).clear()
                vars(layer).update(attributes)
                for items, contents in lists:
                    items[:] = contents
            self.params.clear()
            self.params.update(saved_params)
        return {key: xp.astype(grad, dtype) for key, grad in zip(keys, grads)}

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

    @on_own_device
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
        for key, (layer, attr) in targets.items():
            value = device.asarray(arrays[key], dtype=dtype)
            current = getattr(layer, attr)
            if key in self._slots and is_writeable_array(current):
                current[...] = value
                continue
            setattr(layer, attr, value)
            if key in self._slots:
                self.params[key] = value


def _follow(result: Array, like: Array) -> Array:
    """``result`` in the namespace of ``like`` and on its device (outputs follow inputs)."""
    return device_of(like).asarray(result)
