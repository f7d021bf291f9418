"""Caps the C library's malloc arenas of the server process (``[process] malloc_arenas``, glibc only).

Why: glibc gives threads arenas of their own (up to 8 per core). Here the threads are the SQLite driver's (one
per pooled connection) and the default executor's; they build result rows and statements that the event loop
frees later, and each arena's free lists fragment on their own. In the soak (docs/RELIABILITY.md, "Soak") that
free-but-held memory grew by ~10 MiB over the first few thousand calls before it levelled off; with a single
arena the growth was about half. Python code runs under the GIL, so more arenas buy this server almost no
concurrency. An admin's own ``MALLOC_ARENA_MAX`` in the environment wins (glibc read it at start-up).

It must run before the threads start: arenas already made are kept. Off glibc it does nothing.
``glibc_mallopt`` is the one way this project tunes glibc's allocator (the benchmarks pin its thresholds too).
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

# glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def limit_malloc_arenas(count: int) -> bool:
    """At most ``count`` arenas from now on (0: leave glibc's default); True when the limit was set."""
    if count <= 0 or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return glibc_mallopt(M_ARENA_MAX, count)


def glibc_mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt(parameter, value)``; False when it refused, or when this is not glibc (whose numbers
    the parameters are)."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  # present only in glibc
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.debug("not glibc: mallopt(%d, %d) not called", parameter, value)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(parameter, value))
