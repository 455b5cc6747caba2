"""Progress bars that suit where they run (one factory for the Trainers and the command line).

* a Jupyter kernel with working widgets (Colab): ``tqdm.notebook``'s widget;
* a kernel without widgets (plain Jupyter): tqdm's text bar, refreshed at most once a second,
  and no ``TqdmWarning``;
* a terminal: tqdm's text bar;
* anything else (``python -m xpnet train ... > log 2>&1``): no bar at all, so a log holds the
  epoch lines only, one per line, without carriage-return frames (Keras' ``verbose="auto"``).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["bar", "where"]


def where() -> str:
    """``"widgets"``, ``"notebook"`` (a kernel without widgets), ``"terminal"`` or ``"log"``."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is not None and hasattr(shell, "kernel"):
        try:
            import ipywidgets  # noqa: F401  (tqdm.notebook needs it)
        except ImportError:
            return "notebook"
        return "widgets"
    return "terminal" if getattr(sys.stderr, "isatty", lambda: False)() else "log"


def bar(total: int, desc: str, *, force: bool = False, unit: str = "sample", **options: Any) -> Any:
    """A tqdm bar for ``total`` units (closed by the caller), or ``None`` where no bar suits
    (a log) unless ``force``."""
    place = where()
    if place == "log" and not force:
        return None
    options = {"total": total, "desc": desc, "unit": unit, "unit_scale": True, "leave": False, **options}
    if place == "widgets":
        from tqdm.notebook import tqdm
        return tqdm(**options)
    from tqdm.std import tqdm
    return tqdm(file=sys.stderr, mininterval=1.0 if place == "notebook" else 0.1, **options)
