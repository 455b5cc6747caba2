"""The restricted, bounded unpickler behind :mod:`xpnet.io` (parameter pickles: the book's format).

Two guards, both before NumPy or the C unpickler builds anything:

- *What* a pickle may build: only NumPy arrays, dtypes and scalars of numbers, in dicts,
  lists and tuples (:class:`RestrictedUnpickler`'s globals; an array's state is checked
  before NumPy's ``__setstate__`` sees it).
- *How much*: :func:`scan` walks the opcodes without building objects and refuses nesting
  deeper than :data:`MAX_DEPTH` (hashing a million nested tuples overflows the C stack),
  a memo index that was never assigned or skips ahead (the C unpickler sizes its memo by
  the largest index: 9 bytes could ask for gigabytes), more than :data:`MAX_ITEMS` objects
  in all, and lengths past the end of the file.  Nothing is built larger than the file.
"""

from __future__ import annotations

import codecs
import collections
import contextvars
import math
import os
import pickle
import pickletools
import warnings
from typing import IO, Any

import numpy as np

try:  # NumPy >= 1.26 has numpy._core (the home of these helpers from NumPy 2 on)
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - NumPy < 1.26
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

__all__ = ["RestrictedUnpickler", "UnsafePickleError", "MAX_DEPTH", "MAX_ITEMS", "MAX_STACK", "scan"]

#: The kinds of dtype a parameter file may hold: bool, signed and unsigned ints, floats.
NUMERIC_KINDS = "biuf"
#: Deepest nesting of containers a parameter pickle may have (a dict of arrays needs about 6).
MAX_DEPTH = 100
#: Most objects (opcodes that make one) a parameter pickle may hold; a book's file holds hundreds.
MAX_ITEMS = 1_000_000
#: Most objects waiting on the unpickler's stack at once (pickle writes lists and dicts in batches of 1000).
MAX_STACK = 10_000


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global that :class:`RestrictedUnpickler` does not admit, or went past a bound."""


# ----------------------------------------------------------------------------------- bounds
_SCALARS = frozenset({
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING", "SHORT_BINSTRING",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
    "BINUNICODE8", "NONE", "NEWTRUE", "NEWFALSE", "FLOAT", "BINFLOAT", "GLOBAL", "EXT1", "EXT2", "EXT4",
    "NEXT_BUFFER", "PERSID",
})
_EMPTIES = frozenset({"EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "EMPTY_SET"})
_FROM_MARK = frozenset({"TUPLE", "LIST", "DICT", "FROZENSET", "INST"})  # pop to the mark, push one
_INTO_MARK = frozenset({"APPENDS", "SETITEMS", "ADDITEMS"})  # pop to the mark into the object below it
_POP_PUSH = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "REDUCE": 2, "NEWOBJ": 2, "NEWOBJ_EX": 3,
             "STACK_GLOBAL": 2, "BINPERSID": 1, "READONLY_BUFFER": 1}
_INTO_TOP = {"APPEND": 1, "SETITEM": 2, "BUILD": 1}  # pop n into the object below them
_NO_EFFECT = frozenset({"PROTO", "FRAME"})


class _Bounded:
    """A read-only view of ``file`` that never asks for more than what is left of it."""

    def __init__(self, file: IO[bytes], left: int) -> None:
        self.file, self.left = file, left

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.file.read(n)
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        data = self.file.readline(self.left)
        self.left -= len(data)
        return data


class _Object:
    """An object of the pickle as the scan sees it: only how deep it nests."""

    __slots__ = ("depth",)

    def __init__(self, depth: int) -> None:
        self.depth = depth


_MARK = object()


def scan(file: IO[bytes], size: int) -> None:
    """:func:`_scan`, quiet about old protocols' string escapes (``pickletools`` decodes them to show them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _scan(file, size)


def _scan(file: IO[bytes], size: int) -> None:
    """Walk the pickle in ``file`` (``size`` bytes from its current position) without building it.

    Raises :class:`UnsafePickleError` saying which bound it went past (nesting deeper than
    :data:`MAX_DEPTH`, more than :data:`MAX_ITEMS` objects, a memo index that skips ahead),
    :class:`pickle.UnpicklingError` for damage (a length past the end, no STOP, a memo index
    never assigned, opcodes that do not match the stack).
    """
    stack: list[Any] = []
    memo: dict[int, _Object] = {}
    items = 0

    def push(depth: int) -> None:
        if depth > MAX_DEPTH:
            raise UnsafePickleError(f"nesting deeper than {MAX_DEPTH} levels: not a parameter file")
        stack.append(_Object(depth))

    def pop(n: int) -> list[_Object]:
        if len(stack) < n or any(entry is _MARK for entry in stack[len(stack) - n:]):
            raise pickle.UnpicklingError("the opcodes do not match their stack: a damaged pickle")
        taken = stack[len(stack) - n:]
        del stack[len(stack) - n:]
        return taken

    def pop_mark() -> list[_Object]:
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is _MARK:
                taken = stack[i + 1:]
                del stack[i:]
                return taken
        raise pickle.UnpicklingError("an opcode needs a MARK that is not there: a damaged pickle")

    def top() -> _Object:
        if not stack or stack[-1] is _MARK:
            raise pickle.UnpicklingError("the opcodes do not match their stack: a damaged pickle")
        return stack[-1]

    def deepest(objects: list[_Object]) -> int:
        return max((obj.depth for obj in objects), default=0)

    def grow(target: _Object, objects: list[_Object]) -> None:
        target.depth = max(target.depth, deepest(objects) + 1)
        if target.depth > MAX_DEPTH:
            raise UnsafePickleError(f"nesting deeper than {MAX_DEPTH} levels: not a parameter file")

    try:
        for opcode, arg, _ in pickletools.genops(_Bounded(file, size)):
            name = opcode.name
            items += 1
            if items > MAX_ITEMS or len(stack) > MAX_STACK:
                what = f"{MAX_ITEMS} objects" if items > MAX_ITEMS else f"{MAX_STACK} objects pending at once"
                raise UnsafePickleError(f"more than {what}: not a parameter file")
            if name in _SCALARS:
                push(0)
            elif name in _EMPTIES:
                push(1)
            elif name == "MARK":
                stack.append(_MARK)
            elif name in _FROM_MARK:
                push(deepest(pop_mark()) + 1)
            elif name in _INTO_MARK:
                added = pop_mark()
                grow(top(), added)
            elif name in _POP_PUSH:
                push(deepest(pop(_POP_PUSH[name])) + 1)
            elif name in _INTO_TOP:
                added = pop(_INTO_TOP[name])
                grow(top(), added)
            elif name == "OBJ":
                push(deepest(pop_mark()) + 1)
            elif name == "POP":
                if not stack:
                    raise pickle.UnpicklingError("POP on an empty stack: a damaged pickle")
                stack.pop()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                stack.append(top())
            elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                index = len(memo) if name == "MEMOIZE" else int(arg)
                if index > len(memo) or index < 0:
                    raise UnsafePickleError(f"memo index {index} skips ahead of the {len(memo)} objects stored: "
                                            "not a pickle xpnet or NumPy wrote")
                memo[index] = top()
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if int(arg) not in memo:
                    raise pickle.UnpicklingError(f"memo index {arg} was never stored: a damaged pickle")
                stack.append(memo[int(arg)])
            elif name == "STOP":
                return
            elif name not in _NO_EFFECT:
                raise UnsafePickleError(f"opcode {name} is not admitted in a parameter pickle")
    except (ValueError, EOFError, OverflowError) as exc:
        raise pickle.UnpicklingError(f"damaged or truncated ({exc})") from None
    raise pickle.UnpicklingError("no STOP opcode: truncated")


# ----------------------------------------------------------------------------------- what
#: Bytes of array data the pickle being loaded may still build (its file's size).
_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("xpnet_pickle_budget")


def _charge(nbytes: int) -> None:
    """Count ``nbytes`` of array data against the file being loaded: data is never built twice."""
    left = _budget.get(None)
    if left is None:
        return
    if nbytes > left[0]:
        raise UnsafePickleError(f"arrays of more bytes than the file holds ({nbytes} more, {left[0]} left): "
                                "not a parameter file")
    left[0] -= nbytes


def numeric_dtype(dtype: Any) -> np.dtype:
    """``dtype`` if it is a plain dtype of numbers; else :class:`UnsafePickleError`."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in NUMERIC_KINDS or dtype.hasobject \
            or dtype.fields is not None or dtype.subdtype is not None:
        flagged = " (flagged as holding objects)" if isinstance(dtype, np.dtype) and dtype.hasobject else ""
        raise UnsafePickleError(f"refused dtype {dtype!r}{flagged}: a parameter pickle holds numeric arrays only "
                                "(bool, int, uint, float)")
    return dtype


def _shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                               for n in shape):
        raise UnsafePickleError(f"refused array shape {shape!r}: expected a tuple of ints >= 0")
    return shape


def _pickled_dtype(*args: Any) -> np.dtype:
    """``numpy.dtype(*args)`` for a pickle: refused, before NumPy builds anything with it, unless numeric."""
    if not args or not isinstance(args[0], str):
        raise UnsafePickleError(f"refused numpy.dtype{args!r}: expected a type code string")
    return numeric_dtype(np.dtype(*args))


class _CheckedArray(np.ndarray):
    """What a pickled array is rebuilt as: its state is checked before NumPy's ``__setstate__`` sees it.

    NumPy's own ``__setstate__`` trusts its input; an object array whose element list
    is shorter than its shape crashes the process.  Loaded values are turned back into
    plain ``numpy.ndarray`` by the callers.
    """

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("refused an array state that is not (version, shape, dtype, fortran, data)")
        shape, dtype, data = _shape(state[-4]), numeric_dtype(state[-3]), state[-1]
        nbytes = math.prod(shape) * dtype.itemsize
        if not isinstance(data, (bytes, bytearray)) or len(data) != nbytes:
            size = len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__
            raise UnsafePickleError(f"refused array data ({size}): shape {shape} of {dtype} needs {nbytes} bytes")
        _charge(nbytes)
        super().__setstate__(state)


class _NDArray:
    """``numpy.ndarray`` as a pickle names it: an argument of ``_reconstruct`` only, never called."""


def _pickled_reconstruct(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    """NumPy's ``_reconstruct`` for ``numpy.ndarray`` only, building a :class:`_CheckedArray`."""
    if cls is not _NDArray:
        raise UnsafePickleError(f"refused to rebuild {cls!r}: only numpy.ndarray")
    shape = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else _shape(shape)
    if not isinstance(typecode, bytes) or len(typecode) != 1:
        raise UnsafePickleError(f"refused array type code {typecode!r}: expected one byte")
    _charge(math.prod(shape))
    return _multiarray._reconstruct(_CheckedArray, shape, typecode)


def _pickled_scalar(dtype: Any, data: Any) -> Any:
    """NumPy's ``scalar`` for numeric dtypes and raw bytes only."""
    numeric_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise UnsafePickleError(f"refused a {dtype} scalar from {type(data).__name__}")
    return _multiarray.scalar(dtype, data)


def _pickled_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None) -> np.ndarray:
    """NumPy's ``_frombuffer`` (protocol 5) for numeric dtypes only."""
    numeric_dtype(dtype)
    _charge(math.prod(_shape(shape)) * dtype.itemsize)
    return _numeric._frombuffer(buf, dtype, shape, order, axis_order)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol 0-2 pickles use it for bytes, limited to latin-1."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _NDArray,
    ("numpy", "dtype"): _pickled_dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
}
for _package in ("numpy.core", "numpy._core"):
    _SAFE_GLOBALS[(f"{_package}.multiarray", "_reconstruct")] = _pickled_reconstruct
    _SAFE_GLOBALS[(f"{_package}.multiarray", "scalar")] = _pickled_scalar
    _SAFE_GLOBALS[(f"{_package}.numeric", "_frombuffer")] = _pickled_frombuffer


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only what rebuilds NumPy arrays, dtypes and scalars, within bounds.

    Dicts, lists, tuples, strings and numbers need no globals; the only globals
    admitted are NumPy's array/scalar reconstructors, ``numpy.ndarray`` (as their
    argument), ``numpy.dtype``, ``collections.OrderedDict`` and a latin-1-only
    ``_codecs.encode`` (old protocols' bytes).  The NumPy ones are wrapped: a dtype
    that is not bool/int/uint/float (object, void, structured, string) is refused
    when the pickle constructs it, and an array's state (shape, dtype, data length)
    is checked before NumPy's ``__setstate__`` runs.  Any other global (``os.system``,
    ``builtins.eval``, a class) raises :class:`UnsafePickleError` (a
    :class:`pickle.UnpicklingError`) naming it, before anything from the file is called.

    :meth:`load` first runs :func:`scan` over the rest of the file (which must be
    seekable), so nesting, memo and object count are bounded before anything is built,
    and the arrays built may not hold more bytes than the file.
    """

    def __init__(self, file: IO[bytes], **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._file = file

    def load(self) -> Any:
        start = self._file.tell()
        size = _length(self._file)
        scan(self._file, max(size - start, 0))
        self._file.seek(start)
        token = _budget.set([max(size - start, 0)])
        try:
            return super().load()
        finally:
            _budget.reset(token)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused to load global '{module}.{name}': only NumPy arrays (in dicts/lists) may be "
                "read from a parameter pickle; this file holds something else and may be malicious"
            ) from None


def _length(file: IO[bytes]) -> int:
    here = file.tell()
    end = file.seek(0, os.SEEK_END)
    file.seek(here)
    return end
