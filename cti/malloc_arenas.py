"""Caps the C library's malloc arenas of the server process (``[process] malloc_arenas``, glibc only).

Why: glibc gives threads arenas of their own (up to 8 per core). Here the threads are the SQLite driver's (one
per pooled connection) and the default executor's; they build result rows and statements that the event loop
frees later, and each arena's free lists fragment on their own. In the soak (docs/RELIABILITY.md, "Soak") that
free-but-held memory grew by ~10 MiB over the first few thousand calls before it levelled off; with a single
arena the growth was about half. Python code runs under the GIL, so more arenas buy this server almost no
concurrency. An admin's own ``MALLOC_ARENA_MAX`` in the environment wins (glibc read it at start-up).

It must run before the threads start: arenas already made are kept. Off glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(count: int) -> bool:
    """At most ``count`` arenas from now on (0: leave glibc's default); True when the limit was set."""
    if count <= 0 or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  # present only in glibc: mallopt's numbers are glibc's
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.debug("not glibc: malloc arenas left as they are")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, count))
