"""xpnet: the "Deep Learning from Scratch" library, array-agnostic and GPU-backed.

``import xpnet`` is cheap: its modules and subpackages (``xpnet.nets``, ``xpnet.datasets``,
``xpnet.book2``, ...) are imported on first use, so ``xpnet.nets.SimpleConvNet`` works
after a bare ``import xpnet``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .summary import summary

#: Modules and subpackages reachable as attributes of ``xpnet``, imported when first used.
SUBMODULES = ("backend", "book2", "checkpoint", "conv_layers", "datasets", "functions", "gradient",
              "hostmem", "io", "layers", "nets", "optimizer", "plot", "trainer", "util")

__all__ = ["summary"]


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'xpnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBMODULES))
