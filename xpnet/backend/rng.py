"""Random numbers for any device: :class:`Generator` (weight init, Dropout, shuffling, sampling).

Part of :mod:`xpnet.backend` (which re-exports it): it names NumPy, whose global generator
is the book's source of random numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import CPU, Array, Device, DeviceLike, device_of, get_device, resolve_dtype


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
