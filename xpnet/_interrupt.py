"""Ctrl-C during training: the step in flight finishes, then training stops cleanly.

A KeyboardInterrupt raised at an arbitrary bytecode (inside a progress bar's
constructor, a checkpoint write, a device copy) can leave half-built objects
behind.  :func:`at_step_boundary` turns the first SIGINT into a request that the
training loop honours between two steps; a second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class StopRequest:
    """``requested`` becomes True when SIGINT arrives while :func:`at_step_boundary` is active."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def at_step_boundary() -> Iterator[StopRequest]:
    """Defer the first SIGINT to the caller's next check of ``requested``.

    Only in the main thread and only while Python's default handler is installed
    (a handler of the user's own is left alone); elsewhere ``requested`` stays False
    and Ctrl-C raises KeyboardInterrupt as usual.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield stop
        return

    def request(signum: int, frame: object) -> None:
        stop.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, request)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
