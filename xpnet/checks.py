"""Argument checks shared by every public function: each raises ``ValueError`` (or
``TypeError``) naming the argument and what was expected, before any work is done."""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

__all__ = ["positive_int", "nonnegative_int", "real", "writable_file", "output_files", "one_of"]


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int; ``ValueError`` naming ``name`` unless it is an int >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value: Any) -> int:
    """``value`` as an int; ``ValueError`` naming ``name`` unless it is an int >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
    return int(value)


def real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a Python float, checked to be a finite real number within the bounds.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; ``None`` means
    unbounded.  Strings, bools, NaN and infinities are refused with a ``ValueError``
    that names ``name`` and the expected range.
    """
    expected = _interval(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a real number {expected}, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name}: expected a finite real number {expected}, got {value!r}")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        raise ValueError(f"{name}: expected a real number {expected}, got {value!r}")
    return number


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is None and high is None:
        return "(any finite value)"
    left = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
    return f"in {left}, {right}"


def writable_file(name: str, path: Any) -> str:
    """``path`` as a string, checked to be a file that can be created or replaced.

    Refuses (``ValueError`` naming ``name``) a path that is a directory, one whose
    parent is an existing file, and one whose nearest existing ancestor is not a
    writable directory.  Creates nothing.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a path (str or os.PathLike), got {type(path).__name__}")
    text = os.fspath(path)
    if not text:
        raise ValueError(f"{name}: expected a file path, got an empty string")
    if os.path.isdir(text):
        raise ValueError(f"{name}: {text!r} is a directory; expected a file path")
    ancestor = os.path.dirname(os.path.abspath(text))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(f"{name}: cannot write {text!r}: {ancestor!r} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"{name}: cannot write {text!r}: the directory {ancestor!r} is not writable")
    return text


def output_files(paths: dict[str, Any]) -> dict[str, str | None]:
    """Outputs (name -> path or ``None``) checked by :func:`writable_file`; two that are one real file
    (``a.npz``, ``./a.npz``, ``x/../a.npz``, a symlink) are refused, naming both."""
    checked, seen = {name: None if p is None else writable_file(name, p) for name, p in paths.items()}, {}
    for name, real_path in ((name, os.path.realpath(path)) for name, path in checked.items() if path is not None):
        if real_path in seen:
            raise ValueError(f"{name}: {checked[name]!r} is the same file as {seen[real_path]}; each output needs its own file")
        seen[real_path] = name
    return checked


def one_of(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``; ``ValueError`` naming ``name`` and the choices."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")
    return value
