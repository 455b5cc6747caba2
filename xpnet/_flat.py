"""An optimizer's whole update in a few element-wise operations (``foreach``): the gradients
and each state in one flat 1-D buffer, the params moved slice by slice, so a GPU launches a
few kernels per step instead of a few per param.

A step of Adam is 12 element-wise operations per parameter array, each one a kernel
launch on a GPU.  Over flat buffers it is 11 in all, plus one ``concat`` for the grads
and one in-place subtraction per param (which stays the same array object: the layers
hold it).  The state lives in one flat buffer per name between steps; the optimizer
exposes per-key views of it (``optimizer.m["W1"]``) for ``state_dict``.  Every element
goes through the same arithmetic in the same order as per key, so the result is the
same to the bit.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from array_api_compat import array_namespace, device, is_array_api_obj, is_writeable_array

from .backend import Device, device_of, zeros

Array = Any
Params = Union[dict[str, Any], list[Any]]


def update_foreach(optimizer: Any, params: Params, grads: Params, keys: list) -> None:
    """``optimizer``'s rule (:meth:`~xpnet.optimizer.Optimizer.update_one`) applied once to flat
    buffers: the grads gathered, the state kept flat (the optimizer's per-key state is views
    of it), each param moved in place by its slice of the step.  The caller checked
    ``optimizer._flat.fits(...)``."""
    flat = optimizer._flat
    with flat.device.activate():  # CuPy computes on the current GPU
        states = []
        for name in optimizer.slots:
            buffer, views = flat.state(name, getattr(optimizer, name), params, keys)
            setattr(optimizer, name, views)
            states.append(buffer)
        optimizer._begin_update()
        optimizer.update_one(flat.params(params, keys), flat.gather(grads, keys), *states)


class FlatState:
    """The flat buffers of one optimizer, laid out for one set of params (keys, shapes,
    namespace, device and dtype).  :meth:`fits` says whether a step can take the flat path
    and lays the buffers out again when the params changed; :meth:`gather`,
    :meth:`state` and :meth:`params` then give the step its flat arrays.

    It has no attribute dict, so :func:`xpnet.backend.to_device` does not enter it: a
    moved optimizer has new per-key state arrays, which :meth:`state` gathers again."""

    __slots__ = ("signature", "slices", "device", "buffers")

    def __init__(self) -> None:
        self.signature: Optional[tuple] = None
        self.slices: list[tuple[int, int, tuple[int, ...]]] = []
        self.device: Optional[Device] = None
        self.buffers: dict[str, tuple[Array, list, Params]] = {}

    def __reduce__(self) -> tuple:
        """A copy (pickle, deepcopy) starts empty: copied views would no longer share the
        copied buffer, so the copy gathers the optimizer's per-key state again."""
        return (FlatState, ())

    def fits(self, params: Params, grads: Params, keys: list, states: dict[str, Any]) -> bool:
        """Whether the flat path gives this step: every param and grad an array of at least
        one dimension, writable params, all of one namespace, device and real floating
        dtype; each state (``states[name]``) ``None`` or one entry per key of that same kind
        and its param's shape.  Anything else (numbers, 0-d arrays, mixed kinds, restored
        state of another dtype) takes the per-key path, unchanged."""
        if not keys:
            return False
        first = params[keys[0]]
        if not (is_array_api_obj(first) and is_writeable_array(first)):
            return False
        kind = (type(first), first.dtype, device(first))
        values = [params[key] for key in keys]
        if len({id(value) for value in values}) != len(values):  # one array twice: per key
            return False
        arrays = values + [grads[key] for key in keys]
        if not all(_kind(a) == kind and a.ndim > 0 for a in arrays) or not all(map(is_writeable_array, values)):
            return False
        if not array_namespace(first).isdtype(first.dtype, "real floating"):
            return False
        shapes = tuple(tuple(value.shape) for value in values)
        signature = (kind, tuple(keys), shapes, isinstance(params, dict))
        for value in states.values():
            entries = _entries(value, keys, params)
            if value is not None and (entries is None or any(
                    not is_array_api_obj(e) or _kind(e) != kind or tuple(e.shape) != shape
                    for e, shape in zip(entries, shapes))):
                return False
        if signature != self.signature:
            self._lay_out(signature, first, shapes)
        return True

    def _lay_out(self, signature: tuple, first: Array, shapes: tuple) -> None:
        self.signature, self.device, self.buffers, self.slices = signature, device_of(first), {}, []
        start = 0
        for shape in shapes:
            size = 1
            for n in shape:
                size *= n
            self.slices.append((start, start + size, shape))
            start += size

    def gather(self, arrays: Params, keys: list) -> Array:
        """``arrays`` (params or grads, in ``keys`` order) as one new flat buffer."""
        xp = self.device.xp
        return xp.concat([xp.reshape(arrays[key], (-1,)) for key in keys])

    def state(self, name: str, value: Any, params: Params, keys: list) -> tuple[Array, Params]:
        """The flat buffer of state ``name`` and its per-key views, laid out like ``params``
        (a dict or a list): the buffer of the last step while ``value`` still holds its
        views; else zeros (``value`` is ``None``: the first step) or ``value`` gathered."""
        entries = _entries(value, keys, params)
        cached = self.buffers.get(name)
        if cached is None or entries is None or any(a is not b for a, b in zip(entries, cached[1])):
            xp, dtype = self.device.xp, self.signature[0][1]
            if entries is None:
                flat = zeros((self.slices[-1][1],), dtype=dtype, device=self.device)
            else:
                flat = self.gather(dict(zip(keys, entries)), keys)
            views = [xp.reshape(flat[start:stop], shape) for start, stop, shape in self.slices]
            laid_out = dict(zip(keys, views)) if isinstance(params, dict) else list(views)
            cached = self.buffers[name] = (flat, views, laid_out)
        return cached[0], cached[2]

    def params(self, params: Params, keys: list) -> FlatParams:
        """``params`` as one flat array for in-place ``+=`` and ``-=``."""
        return FlatParams([params[key] for key in keys], self.slices, self.device.xp)


class FlatParams:
    """The params seen as one flat array that takes only in-place ``+=`` and ``-=`` of a
    flat buffer: each applies slice by slice, one operation per param, which stays the
    same array object.  (The update rules never read a param, they only move it.)"""

    __slots__ = ("arrays", "slices", "xp")

    def __init__(self, arrays: list, slices: list, xp: Any) -> None:
        self.arrays, self.slices, self.xp = arrays, slices, xp

    def __iadd__(self, delta: Array) -> FlatParams:
        for param, (start, stop, shape) in zip(self.arrays, self.slices):
            param += self.xp.reshape(delta[start:stop], shape)
        return self

    def __isub__(self, delta: Array) -> FlatParams:
        for param, (start, stop, shape) in zip(self.arrays, self.slices):
            param -= self.xp.reshape(delta[start:stop], shape)
        return self


def _kind(a: Any) -> tuple:
    if not is_array_api_obj(a):
        return ()
    return type(a), a.dtype, device(a)


def _entries(value: Any, keys: list, params: Params) -> Optional[list]:
    """The per-key entries of a state (``None`` when it has none for some key): a dict
    (string keys once restored from a :meth:`~xpnet.optimizer.Optimizer.state_dict` for list
    params) or a list."""
    try:
        if isinstance(value, dict):
            return [value[key if isinstance(params, dict) else str(key)] for key in keys]
        if isinstance(value, list) and len(value) == len(keys):
            return [value[key] for key in keys]
    except KeyError:
        pass
    return None
