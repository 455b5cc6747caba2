"""Counting host reads of device values, on PyTorch CPU tensors (no GPU needed).

On a GPU, every read of a device value by the host (``float(loss)``, ``bool(xp.any(m))``,
``.item()``, a boolean-mask index, ...) waits until the GPU has finished all the work queued
before it: the GPU then idles while Python launches the next kernels.  PyTorch CPU tensors
go through the same Python entry points, so counting those calls on them counts the waits
a training step would make on a GPU.

:class:`HostReads` counts, while it is active:

* tensor-to-host conversions: ``__bool__``, ``__float__``, ``__int__``, ``__index__``,
  ``__complex__``, ``__format__``, ``__repr__``, ``item``, ``tolist``, ``numpy``, ``__array__``;
* boolean-mask indexing (``x[mask]``, ``x[mask] = v``, ``nonzero``, ``masked_select``):
  the result's size is read back;
* calls that are free on torch but read back on CuPy, through array-api-compat's generic
  code (its CuPy namespace gets them): ``clip`` (a boolean-mask setitem per bound, each a
  read of the mask's count: 2 reads per bound), ``sign`` of a real floating array (its
  NaN fix-up is a boolean-mask setitem) and ``nonzero``/``unique_*``.

    with HostReads() as reads:
        step()
    assert reads.count == 0, reads.where

:func:`reads_per_step` runs warm-up steps, then counts each further step on its own.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable

import pytest

torch = pytest.importorskip("torch", reason="torch: not installed (the host-read counter runs on its CPU tensors)")
import array_api_compat.torch as compat_torch  # noqa: E402

TENSOR_READS = ("__bool__", "__float__", "__int__", "__index__", "__complex__", "__format__", "__repr__",
                "item", "tolist", "numpy", "__array__", "nonzero", "masked_select")
"""Methods of ``torch.Tensor`` that read values back (or, for ``nonzero``/``masked_select``, a size)."""

COMPAT_READS = {"clip": None, "sign": 1, "nonzero": 1, "unique_all": 1, "unique_counts": 1,
                "unique_inverse": 1, "unique_values": 1}
"""Functions of the array-api-compat namespace and the reads each costs on CuPy (``None``: counted
by :func:`_clip_reads`)."""

TORCH_READS = ("nonzero", "masked_select", "unique", "argwhere")
"""``torch`` functions whose result size depends on values (a read on a GPU)."""


def _clip_reads(x: Any, min: Any = None, max: Any = None, **_: Any) -> int:
    """CuPy's (generic) clip: per bound given, ``out[mask] = bound[mask]``: 2 reads."""
    return 2 * ((min is not None) + (max is not None))


def _sign_reads(x: Any, *_: Any, **__: Any) -> int:
    return 1 if getattr(x, "is_floating_point", lambda: False)() else 0


def _is_mask(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


class HostReads:
    """Context manager counting host reads of torch tensor values (see the module docstring).

    ``count`` is the number of reads; ``where`` lists, per read, what was called and the
    innermost xpnet/test source line that called it (for the assertion message).  Reads made
    inside a function named in ``exempt`` (a loop's loss flush: its designed read, once per
    ``FLUSH_EVERY`` steps and at an epoch's end) go to ``exempted`` instead.
    """

    def __init__(self, exempt: tuple[str, ...] = ()) -> None:
        self.exempt = exempt
        self.exempted: list[tuple[str, str]] = []
        self.events: list[tuple[str, str]] = []
        self._saved: list[tuple[Any, str, Any]] = []
        self._depth = 0

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def where(self) -> str:
        return "\n".join(f"{name} at {site}" for name, site in self.events) or "no reads"

    def reset(self) -> None:
        self.events.clear()

    def _record(self, name: str, reads: int = 1) -> None:
        frames = [f for f in traceback.extract_stack() if not f.filename.endswith("/_host_reads.py")]
        ours = [f for f in frames if "/xpnet/" in f.filename or "/tests/" in f.filename]
        site = ours[-1] if ours else (frames[-1] if frames else None)
        text = f"{site.filename.rsplit('/', 2)[-2:]}:{site.lineno} {site.line}" if site else "?"
        exempt = any(f.name in self.exempt for f in ours)
        (self.exempted if exempt else self.events).extend([(name, text)] * reads)

    def _wrap(self, owner: Any, name: str, reads: Callable[..., int] | None) -> None:
        original = getattr(owner, name)
        counter = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if counter._depth == 0:
                n = 1 if reads is None else reads(*args, **kwargs)
                if n:
                    counter._record(name, n)
            counter._depth += 1  # reads made inside a counted call are that call's
            try:
                return original(*args, **kwargs)
            finally:
                counter._depth -= 1

        own = isinstance(owner, type) and name not in vars(owner)  # inherited: delete on exit
        self._saved.append((owner, name, None if own else original))
        setattr(owner, name, wrapper)

    def __enter__(self) -> "HostReads":
        for name in TENSOR_READS:
            self._wrap(torch.Tensor, name, None)
        self._wrap(torch.Tensor, "__getitem__", lambda self, index: int(_is_mask(index)))
        self._wrap(torch.Tensor, "__setitem__", lambda self, index, value: int(_is_mask(index)))
        for name in TORCH_READS:
            self._wrap(torch, name, None)
        for name, reads in COMPAT_READS.items():
            if hasattr(compat_torch, name):
                rule = _clip_reads if name == "clip" else _sign_reads if name == "sign" else None
                self._wrap(compat_torch, name, rule)
        return self

    def __exit__(self, *exc: Any) -> None:
        for owner, name, original in reversed(self._saved):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._saved.clear()


def reads_per_step(step: Callable[[], Any], *, warmup: int = 2, steps: int = 3) -> list[HostReads]:
    """Run ``warmup`` steps uncounted, then ``steps`` steps each counted on its own."""
    for _ in range(warmup):
        step()
    counted = []
    for _ in range(steps):
        with HostReads() as reads:
            step()
        counted.append(reads)
    return counted


def assert_no_reads(step: Callable[[], Any], *, warmup: int = 2, steps: int = 3) -> None:
    """Fail, naming every read and its source line, unless each counted step reads nothing."""
    for k, reads in enumerate(reads_per_step(step, warmup=warmup, steps=steps)):
        assert reads.count == 0, f"step {warmup + k + 1}: {reads.count} host read(s):\n{reads.where}"
