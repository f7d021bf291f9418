"""The C library's allocator in the server process (glibc only; elsewhere these do nothing).

Arenas (``[process] malloc_arenas``): caps how many malloc arenas threads may create.

Why: glibc gives threads arenas of their own (up to 8 per core). Here the threads are the SQLite driver's (one
per pooled connection) and the default executor's; they build result rows and statements that the event loop
frees later, and each arena's free lists fragment on their own. In the soak (docs/RELIABILITY.md, "Soak") that
free-but-held memory grew by ~10 MiB over the first few thousand calls before it levelled off; with a single
arena the growth was about half. Python code runs under the GIL, so more arenas buy this server almost no
concurrency. An admin's own ``MALLOC_ARENA_MAX`` in the environment wins (glibc read it at start-up).

It must run before the threads start: arenas already made are kept.

Large blocks (``[process] malloc_mmap_threshold_kib``): blocks from this size up get pages of their own (mmap)
and go back to the system when freed. Why: glibc starts at 128 KiB but raises the threshold each time a block it
mapped is freed (up to 32 MiB), so after the first big buffer every later one of that size is carved from the
heap, and the holes those buffers leave under long-lived blocks stay resident. Fixing the threshold keeps them
out of the heap; in the soak the free-but-held memory then stayed at ~1.4 MiB instead of climbing by ~11 MiB/h.

Trims (``[process] malloc_trim_every_s``): hands the whole free pages inside the heap back to the system now
and then. glibc by itself gives back only the free memory at the very top of its heap; ``malloc_trim(0)``
releases every whole free page wherever it sits (the addresses stay reserved; the next allocation there faults
a fresh zeroed page in). It matters after a spike (a big report, a burst of calls): in the steady soak alone it
gave back little, the holes there being spread among live blocks, which is what the pinned threshold prevents.
It takes the arena lock for about a millisecond on this server's heap, so once a minute costs nothing anyone
can see.

``glibc_mallopt`` is the one way this project tunes glibc's allocator (the benchmarks pin its thresholds too).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
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


def pin_mmap_threshold(kib: int) -> bool:
    """Blocks of ``kib`` KiB and more get their own pages, whatever was freed before (0: glibc's moving
    threshold); an admin's ``MALLOC_MMAP_THRESHOLD_`` in the environment wins. True when it was set."""
    if kib <= 0 or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return glibc_mallopt(M_MMAP_THRESHOLD, kib << 10)


def glibc_mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt(parameter, value)``; False when it refused, or when this is not glibc (whose numbers
    the parameters are)."""
    libc = _glibc()
    if libc is None:
        log.debug("not glibc: mallopt(%d, %d) not called", parameter, value)
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(parameter, value))


def trim_free_memory() -> bool:
    """glibc's ``malloc_trim(0)``: True when it gave memory back, False when none could be or this is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    trim = libc.malloc_trim
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return bool(trim(0))


async def trim_free_memory_every(seconds: float) -> None:
    """``trim_free_memory`` every ``seconds`` until cancelled (0 or less: never, and return at once)."""
    if seconds <= 0 or _glibc() is None:
        return
    while True:
        await asyncio.sleep(seconds)
        trim_free_memory()


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """This process's C library when it is glibc (whose parameter numbers and functions these are); looked up
    once, since the trim loop asks every minute for the life of the server."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  # present only in glibc
    except (OSError, AttributeError):
        return None
    return libc
