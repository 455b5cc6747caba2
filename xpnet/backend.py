"""The one module that knows concrete array libraries.

Everything else in xpnet takes its namespace from the arrays it is given
(``array_namespace(x)``).  This module answers what arrays cannot: which device
to use, how to move arrays (and whole objects holding arrays) between devices,
where random numbers come from, and how to get a NumPy copy back on the host.

A device is named by a string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"gpu"``,
``"auto"``), by a :class:`Device`, or by an Array API namespace with one of its
devices, e.g. ``(array_api_strict, array_api_strict.Device("device1"))``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import types
import warnings
from typing import Any, Iterator, Union

import array_api_compat
import array_api_compat.numpy
import numpy as np
from array_api_compat import array_namespace, is_array_api_obj

Array = Any
DeviceLike = Union["Device", str, types.ModuleType, tuple]

__all__ = [
    "Device", "DeviceError", "Generator", "get_device", "device_of", "cuda_available",
    "to_device", "reachable", "to_numpy", "resolve_dtype", "array_module", "CPU",
    "zeros", "full", "arange", "zeros_like", "copy", "on_own_device",
]


class DeviceError(RuntimeError):
    """A device was asked for that this machine cannot provide."""


@dataclasses.dataclass(frozen=True)
class Device:
    """Where arrays live: ``xp`` is the (compat) namespace, ``native`` its device object."""

    xp: Any
    native: Any
    name: str

    def __repr__(self) -> str:
        return f"Device({self.name!r})"

    def activate(self) -> contextlib.AbstractContextManager:
        """Context in which creation calls land on this device (pins the GPU for CuPy)."""
        return self.native if array_api_compat.is_cupy_namespace(self.xp) else contextlib.nullcontext()

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        """``a`` (array of any backend, or nested lists/scalars) on this device (``a`` itself if it is there)."""
        if is_array_api_obj(a) and not isinstance(a, np.generic):
            if array_namespace(a) is self.xp:
                if array_api_compat.device(a) != self.native:
                    with device_of(a).activate():
                        a = _c_contiguous(a)
                    with self.activate():
                        a = array_api_compat.to_device(a, self.native)
            else:
                a = self._from_host(to_numpy(a))
        else:
            a = self._from_host(np.asarray(a))
        if dtype is not None:
            dtype = resolve_dtype(self.xp, dtype)
            if a.dtype != dtype:
                with self.activate():
                    a = self.xp.astype(a, dtype)
        return a

    def synchronize(self) -> None:
        """Wait until queued work on this device is done (a no-op on the CPU); for timings."""
        if array_api_compat.is_cupy_namespace(self.xp):
            self.native.synchronize()
        elif array_api_compat.is_torch_namespace(self.xp) and getattr(self.native, "type", "") == "cuda":
            import torch

            torch.cuda.synchronize(self.native)

    def _from_host(self, host: np.ndarray) -> Array:
        with self.activate():
            return self.xp.asarray(host, device=self.native)


CPU = Device(array_api_compat.numpy, "cpu", "cpu")


def _c_contiguous(a: Array) -> Array:
    """A C-ordered copy of ``a`` (CuPy copies only contiguous arrays between GPUs; ``Convolution.dW``
    is a strided view).  ``asarray(copy=True)`` keeps the strides' order; a reshape with ``copy=True``
    is C-ordered.  Call it with ``a``'s own device active: CuPy copies on the current GPU."""
    return array_namespace(a).reshape(a, tuple(a.shape), copy=True)


def resolve_dtype(xp: Any, dtype: Any) -> Any:
    """``xp``'s dtype for ``dtype`` given as a name (``"float32"``) or a dtype object."""
    if isinstance(dtype, str):
        if dtype not in ("float16", "float32", "float64"):
            raise ValueError(f"dtype: expected 'float16', 'float32' or 'float64', got {dtype!r}")
        return getattr(xp, dtype)
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return getattr(xp, np.dtype(dtype).name)
    return dtype


def zeros(shape: tuple[int, ...], *, dtype: Any, device: DeviceLike) -> Array:
    """Zeros of ``shape`` and ``dtype`` on ``device`` (CuPy's creation calls ignore ``device=``)."""
    return full(shape, 0.0, dtype=dtype, device=device)


def full(shape: tuple[int, ...], fill_value: float, *, dtype: Any, device: DeviceLike) -> Array:
    """``fill_value`` in an array of ``shape`` and ``dtype`` on ``device``."""
    device = get_device(device)
    with device.activate():
        return device.xp.full(shape, fill_value, dtype=resolve_dtype(device.xp, dtype), device=device.native)


def arange(n: int, *, device: DeviceLike) -> Array:
    """``0, 1, ..., n-1`` (int64) on ``device``."""
    device = get_device(device)
    with device.activate():
        return device.xp.arange(n, dtype=device.xp.int64, device=device.native)


def zeros_like(x: Array) -> Array:
    """Zeros of ``x``'s shape and dtype on ``x``'s device (a zero gradient, an optimizer's state)."""
    return full(tuple(x.shape), 0.0, dtype=x.dtype, device=device_of(x))


def copy(x: Array) -> Array:
    """A copy of ``x`` on ``x``'s own device."""
    device = device_of(x)
    with device.activate():
        return device.xp.asarray(x, copy=True, device=device.native)


def on_own_device(method: Any) -> Any:
    """Decorate ``method`` to run with ``self.device`` current: CuPy computes on the current GPU,
    so an object on ``cuda:1`` makes it current for its work (elsewhere this changes nothing)."""
    @functools.wraps(method)
    def on_device(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.device.activate():
            return method(self, *args, **kwargs)

    return on_device


def cuda_available() -> bool:
    """True when CuPy imports, a CUDA GPU answers and runs a kernel and a matmul."""
    try:
        return _cuda_device(0) is not None
    except DeviceError:
        return False


_PREFLIGHT: dict[int, str] = {}  # GPU index -> "" (it ran a kernel and a matmul) or why not


def _cuda_device(index: int) -> Device:
    try:
        import cupy
    except ImportError:  # the chained ModuleNotFoundError would only repeat "no cupy"
        raise DeviceError(
            "device 'cuda' needs CuPy, which is not installed: pip install cupy-cuda12x (CUDA 12, Colab), "
            'or from the clone pip install ".[cuda12]"; or use device=\'cpu\' / device=\'auto\''
        ) from None
    try:
        count, cause = cupy.cuda.runtime.getDeviceCount(), "0 GPUs"
    except Exception as exc:  # CuPy raises when no driver or no GPU answers
        count, cause = 0, exc
    if count < 1:
        raise DeviceError(f"device 'cuda:{index}': CuPy is installed but no CUDA GPU answered ({cause}); "
                          "check the driver (nvidia-smi); on Colab: Runtime -> Change runtime type -> GPU; "
                          "or use device='cpu' / device='auto'")
    if not 0 <= index < count:
        raise DeviceError(f"device 'cuda:{index}': this machine has {count} CUDA GPU(s), 0..{count - 1}")
    if index not in _PREFLIGHT:
        _PREFLIGHT[index] = _preflight(cupy, index)
    if _PREFLIGHT[index]:
        raise DeviceError(
            f"device 'cuda:{index}': the GPU answers but CuPy cannot run on it ({_PREFLIGHT[index]}); the CUDA "
            'libraries (NVRTC, cuBLAS) are missing or do not match the driver: pip install "cupy-cuda12x[ctk]" '
            "(CUDA 12; cupy-cuda13x[ctk] for CUDA 13), or use device='cpu' / device='auto'")
    import array_api_compat.cupy as cupy_xp

    return Device(cupy_xp, cupy.cuda.Device(index), f"cuda:{index}")


def _preflight(cupy: Any, index: int) -> str:
    """Run an elementwise kernel (compiled by NVRTC), a reduction and a matmul (cuBLAS) on GPU
    ``index``; ``""`` when they give the right number, else what went wrong."""
    try:
        with cupy.cuda.Device(index):
            a = cupy.arange(4, dtype=cupy.float32).reshape(2, 2)
            value = float(cupy.matmul(a + 1.0, a).sum())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "" if value == 34.0 else f"a test matmul gave {value}, not 34"


def get_device(spec: DeviceLike = "cpu", native: Any = None) -> Device:
    """The :class:`Device` named by ``spec``: ``"cpu"`` (NumPy), ``"cuda"``/``"gpu"``/``"cuda:N"``
    (CuPy on GPU N), ``"auto"`` (CUDA if a GPU answers and runs a test kernel, else CPU, with a
    warning when a GPU answered but could not run), a :class:`Device`, an Array API namespace
    module (with ``native``, one of its devices), or a tuple ``(namespace, native)``.  Raises
    :class:`DeviceError` when CUDA is asked for and cannot be had (the message names the fix)."""
    if isinstance(spec, Device):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2:
        return get_device(*spec)
    if isinstance(spec, types.ModuleType):
        return _namespace_device(spec, native)
    if not isinstance(spec, str):
        raise TypeError(f"device: expected a str, a Device or (namespace, device), got {type(spec).__name__}")
    name = spec.strip().lower()
    if name == "cpu":
        return CPU
    if name == "auto":
        try:
            return _cuda_device(0)
        except DeviceError as exc:
            if _PREFLIGHT.get(0):  # a GPU answered but cannot run: say why the CPU is used
                warnings.warn(f"device 'auto': using the CPU. {exc}", RuntimeWarning, stacklevel=2)
            return CPU
    if name in ("cuda", "gpu"):
        return _cuda_device(0)
    if name.startswith(("cuda:", "gpu:")) and name[name.index(":") + 1:].isdigit():
        return _cuda_device(int(name[name.index(":") + 1:]))
    raise ValueError(f"device: expected 'cpu', 'cuda', 'cuda:N', 'gpu' or 'auto', got {spec!r}")


def _namespace_device(module: types.ModuleType, native: Any) -> Device:
    probe = module.asarray(0)
    xp = array_namespace(probe)
    if array_api_compat.is_cupy_namespace(xp):
        return _cuda_device(int(getattr(native, "id", native or 0)))
    return _device(xp, array_api_compat.device(probe) if native is None else native)


def device_of(x: Array) -> Device:
    """The :class:`Device` that array ``x`` lives on."""
    return _device(array_namespace(x), array_api_compat.device(x))


def _device(xp: Any, native: Any) -> Device:
    if array_api_compat.is_numpy_namespace(xp):
        return CPU
    if array_api_compat.is_cupy_namespace(xp):
        return Device(xp, native, f"cuda:{native.id}")
    label = getattr(native, "_device", native)
    return Device(xp, native, f"{xp.__name__.split('.')[-1]}:{label}")


def to_numpy(x: Any) -> np.ndarray:
    """A host NumPy copy of ``x`` (an array of any backend, or a scalar)."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if not is_array_api_obj(x) or isinstance(x, np.generic):
        return np.asarray(x)
    xp = array_namespace(x)
    if array_api_compat.is_cupy_namespace(xp):
        return x.get()
    if array_api_compat.is_torch_namespace(xp):
        return x.detach().cpu().numpy().copy()
    if array_api_compat.is_array_api_strict_namespace(xp):
        x = x.to_device(xp.Device("CPU_DEVICE"))
    return np.array(np.from_dlpack(x), copy=True)


def to_device(obj: Any, device: DeviceLike) -> Any:
    """Move, in place, every array reachable from ``obj`` (see :func:`reachable`) to ``device``;
    return ``obj`` (the moved array when ``obj`` is an array).  An array reached twice
    (``net.params["W1"]``, ``net.layers["Affine1"].W``) is moved once: both still share it."""
    target = get_device(device)
    moved: dict[int, tuple[Any, Any]] = {}

    def convert(value: Any) -> Any:
        if _is_array(value):
            key = id(value)
            if key not in moved:
                moved[key] = (value, target.asarray(value))
            return moved[key][1]
        if isinstance(value, tuple):
            items = [convert(v) for v in value]
            if all(a is b for a, b in zip(items, value)):
                return value
            return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
        return value

    for _, container in list(reachable(obj)):
        children = _children(container)
        if isinstance(children, dict):
            for key, value in list(children.items()):
                children[key] = convert(value)
        elif isinstance(children, list):
            for i, value in enumerate(children):
                children[i] = convert(value)
    return convert(obj)


def reachable(root: Any, path: str = "root") -> Iterator[tuple[str, Any]]:
    """``(path, object)`` for ``root`` and every object reachable from it through attributes, dict
    values and list/tuple items, each once, first path first.  Arrays and :class:`Generator` are
    reached but not entered; strings, numbers, classes, modules and functions are skipped."""
    seen: set[int] = set()

    def visit(path: str, obj: Any) -> Iterator[tuple[str, Any]]:
        if id(obj) in seen or isinstance(obj, _ATOMS):
            return
        seen.add(id(obj))
        yield path, obj
        children = _children(obj)
        if children is None:
            return
        items = children.items() if isinstance(children, dict) else enumerate(children)
        for key, child in list(items):
            yield from visit(f"{path}.{key}", child)

    return visit(path, root)


def _is_array(value: Any) -> bool:
    return is_array_api_obj(value) and not isinstance(value, (np.generic, type))


def _children(obj: Any) -> dict | list | tuple | None:
    """Where :func:`reachable` looks inside ``obj``: the dict, list or tuple itself, or the
    object's attribute dict; ``None`` for arrays, generators and opaque objects."""
    if _is_array(obj) or isinstance(obj, Generator):
        return None
    if isinstance(obj, (dict, list, tuple)):
        return obj
    if hasattr(obj, "__dict__") and not isinstance(obj, _OPAQUE):
        return vars(obj)
    return None


_ATOMS = (str, bytes, int, float, complex, bool, type(None), type, Device)
_OPAQUE = (types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType)


class Generator:
    """Random numbers for any device (weight init, Dropout, shuffling, sampling).

    ``Generator()`` (no seed) on the NumPy CPU device is the book's: every draw is the
    book's own call on NumPy's global generator, in the book's order (``scale *
    np.random.randn(*shape)``, ``np.random.rand(*shape)``, ``np.random.permutation(n)``,
    ``np.random.choice(high, size)``), so a script seeded with ``np.random.seed`` prints
    the book's numbers; constructing one draws nothing.

    With ``seed=``, or on another device, numbers come from xpnet's own PCG64 stream
    (unseeded: seeded from NumPy's global generator at its first use), drawn on the
    host and moved, so one seed gives the same numbers on every backend.  What a
    training step asks for there (``uniform``, ``keep_mask``, ``integers``) comes from
    a pool of ``POOL_SIZE`` uniform numbers kept on the device, so steps do not copy
    random numbers from the host one by one.  ``state`` goes into checkpoints.
    """

    POOL_SIZE = 1 << 20

    def __init__(self, seed: int | None = None) -> None:
        self._book = seed is None
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._pool = None
        self._pool_state = None
        self._pool_used = 0

    def _uses_book(self, device: Device) -> bool:
        return self._book and device == CPU

    def _own(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = np.random.default_rng(int(np.random.randint(0, 2**63 - 1, dtype=np.int64)))
        return self._rng

    def normal(self, shape: tuple[int, ...], *, scale: float = 1.0, dtype: Any = "float32",
               device: DeviceLike = "cpu") -> Array:
        """Normal(0, scale**2) samples of ``shape`` (the book's ``scale * np.random.randn(*shape)``)."""
        device = get_device(device)
        host = scale * np.random.randn(*shape) if self._uses_book(device) else self._own().normal(0.0, scale, shape)
        return device.asarray(host, dtype=dtype)

    def uniform(self, shape: tuple[int, ...], *, dtype: Any = "float32",
                device: DeviceLike = "cpu") -> Array:
        """Uniform [0, 1) samples of ``shape`` (the book's ``np.random.rand(*shape)``)."""
        device = get_device(device)
        if self._uses_book(device):
            return device.asarray(np.random.rand(*shape), dtype=dtype)
        xp = device.xp
        with device.activate():
            return xp.reshape(xp.astype(self._take(math.prod(shape), device), resolve_dtype(xp, dtype)), tuple(shape))

    def keep_mask(self, shape: tuple[int, ...], ratio: float, *, device: DeviceLike = "cpu") -> Array:
        """Where a uniform [0, 1) sample exceeds ``ratio`` (bool): Dropout's mask, the book's
        ``np.random.rand(*shape) > ratio``."""
        device = get_device(device)
        if self._uses_book(device):
            return device.asarray(np.random.rand(*shape) > ratio)
        with device.activate():
            return device.xp.reshape(self._take(math.prod(shape), device) > ratio, tuple(shape))

    def permutation(self, n: int, *, device: DeviceLike = "cpu") -> Array:
        """A random permutation of ``0..n-1`` (int64) on ``device`` (the book's ``np.random.permutation(n)``)."""
        device = get_device(device)
        rng = np.random if self._uses_book(device) else self._own()
        return device.asarray(rng.permutation(n))

    def integers(self, high: int, size: int, *, device: DeviceLike = "cpu") -> Array:
        """``size`` integers drawn uniformly from ``0..high-1``, with replacement (int64): the book's
        ``np.random.choice(high, size)``; else ``floor(u * high)`` of pool numbers ``u``."""
        device = get_device(device)
        if self._uses_book(device):
            return device.asarray(np.asarray(np.random.choice(high, size), dtype=np.int64))
        xp = device.xp
        with device.activate():
            scaled = xp.floor(self._take(size, device) * float(high))
            return xp.astype(xp.minimum(scaled, float(high - 1)), xp.int64)

    def _take(self, size: int, device: Device) -> Array:
        """The next ``size`` numbers of the pool (float64) on ``device``."""
        rng = self._own()
        if size > self.POOL_SIZE:
            return device.asarray(rng.random(size))
        if self._pool is None and self._pool_state is not None:
            self._pool = device.asarray(_pcg64(self._pool_state).random(self.POOL_SIZE))
        if self._pool is None or self._pool_used + size > self.POOL_SIZE:
            self._pool_state = rng.bit_generator.state
            self._pool = device.asarray(rng.random(self.POOL_SIZE))
            self._pool_used = 0
        if device_of(self._pool) != device:
            self._pool = device.asarray(self._pool)
        start, self._pool_used = self._pool_used, self._pool_used + size
        return self._pool[start:start + size]

    @property
    def state(self) -> dict:
        """The generator's state (a plain dict of numbers), for checkpoints: its own stream's, or,
        for the book's generator before any use of its own stream, NumPy's global one."""
        host = _global_state() if self._rng is None else self._rng.bit_generator.state
        return {"host": host, "pool": self._pool_state, "pool_used": self._pool_used}

    @state.setter
    def state(self, value: dict) -> None:
        host = value["host"]
        if isinstance(host, dict) and host.get("bit_generator") == "MT19937":
            if not self._book:
                raise ValueError("state: NumPy's global generator state fits only an unseeded Generator()")
            np.random.set_state(("MT19937", np.asarray(host["state"]["key"], dtype=np.uint32),
                                 host["state"]["pos"], host.get("has_gauss", 0), host.get("gauss", 0.0)))
            self._rng = None
        else:
            if self._rng is None:  # no draw from the global generator: the state replaces it
                self._rng = np.random.Generator(np.random.PCG64())
            self._rng.bit_generator.state = host
            self._book = False  # a saved stream continues as it was saved
        self._pool, self._pool_state, self._pool_used = None, value["pool"], value["pool_used"]


def _global_state() -> dict:
    """NumPy's global generator state as a plain dict of numbers (JSON-ready)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {"bit_generator": name, "state": {"key": key.tolist(), "pos": int(pos)},
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _pcg64(state: dict) -> np.random.Generator:
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = state
    return rng


def array_module(gpu: bool) -> types.ModuleType:
    """The concrete array module a book script imports as ``np``: CuPy when ``gpu``, else NumPy
    (what the second book's ``common/np.py`` chooses from ``config.GPU``)."""
    if not gpu:
        return np
    _cuda_device(0)  # a clear DeviceError when CuPy or a GPU is missing
    import cupy

    return cupy
