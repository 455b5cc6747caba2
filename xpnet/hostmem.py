"""Host memory: let glibc keep freed blocks between training steps (opt-in, process-wide)."""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["keep_freed_host_memory"]


def keep_freed_host_memory() -> bool:
    """Let the C allocator keep freed blocks for the next training step (glibc only; process-wide, so
    opt-in: the CLI and the benchmarks call it, the Trainer does not).  glibc's 128 KiB mmap threshold hands large freed blocks back, so
    each step page-faulted its temporaries in again (SimpleConvNet: ~3,600 faults, 34-45 ms, not
    ~20 ms); this fixes the mmap/trim thresholds at 32/64 MiB, where glibc's own rule ends up
    after large frees.  Returns False (and changes nothing) without glibc's ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 * 2**20)) and bool(mallopt(m_trim_threshold, 64 * 2**20))
