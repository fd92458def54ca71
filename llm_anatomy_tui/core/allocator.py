"""Make freed numpy arrays go back to the operating system (glibc's malloc).

The app computes in worker threads, and glibc gives each thread its own heap ("arena",
up to 8 per core). It also raises its mmap threshold each time a large block is freed, so
after the first few arrays are freed, arrays of up to 32 MB come from those heaps instead
of their own mappings, and a heap keeps its pages after the arrays in it are freed. The
app's resident memory then grows with every chapter visited even though nothing is kept.
Measured with ``benchmarks/bench_memory.py`` after opening every chapter (anatomy-mini,
2026-12-04): 302 MB resident and a 323 MB peak with glibc's defaults, against 244 MB and
280 MB with two arenas and a fixed 256 KiB threshold.

:func:`return_freed_memory_to_the_system` fixes both with ``mallopt``. It is called once,
when the app starts, before any large array exists. On a system without glibc it does
nothing. (``MALLOC_ARENA_MAX`` and ``MALLOC_MMAP_THRESHOLD_`` in the environment do the
same, but only when set before the process starts.)
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENAS = 2
"""One heap for the UI thread and one shared by the workers."""

MMAP_THRESHOLD = 256 * 1024
"""Blocks at least this large get their own mapping, unmapped the moment they are freed
(a 256-token row of float32 activations of width 128 is 128 KiB; logits are megabytes)."""


def return_freed_memory_to_the_system() -> bool:
    """Set glibc's arena count and a fixed mmap threshold; False when not on glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; fixing the threshold also stops glibc from raising it
    return bool(mallopt(M_ARENA_MAX, ARENAS)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


__all__ = ["return_freed_memory_to_the_system"]
