"""``[process]``: threads started after the arena limit share the arenas allowed, instead of one each; a trim
gives back the free pages held inside the heap.

Each case runs in a fresh interpreter (arenas made by this test process's own threads cannot be undone): four
threads allocate at once, and the arenas glibc created for them are counted in ``/proc/self/maps`` (a thread
arena reserves 64 MiB, mostly inaccessible: a ``---p`` anonymous mapping of a MiB or more).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cti import allocator
from cti.allocator import limit_malloc_arenas
from cti.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import ctypes, sys, threading, time
from cti.allocator import limit_malloc_arenas
limited = limit_malloc_arenas(int(sys.argv[1]))
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p

def reserved():
    count = 0
    for line in open("/proc/self/maps"):
        parts = line.split()
        low, high = (int(x, 16) for x in parts[0].split("-"))
        count += parts[1] == "---p" and len(parts) < 6 and high - low >= 1 << 20
    return count

before = reserved()
start, hold = threading.Barrier(5), threading.Event()

def work():
    start.wait()
    kept = [libc.malloc(4096) for _ in range(64)]
    hold.wait()

threads = [threading.Thread(target=work) for _ in range(4)]
for thread in threads:
    thread.start()
start.wait()
time.sleep(0.2)
print(limited, reserved() - before)
hold.set()
for thread in threads:
    thread.join()
"""


def _probe(code: str, *args: str, unset: str = "", **env: str) -> list[str]:
    """Run ``code`` in a fresh interpreter (glibc's settings are per process; ``unset``: an allocator variable
    of this environment left out, ``env`` added); the words it printed."""
    environ = {key: value for key, value in os.environ.items() if key != unset} | env
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.split()


def _new_arenas(limit: int, **env: str) -> tuple[str, int]:
    limited, arenas = _probe(PROBE, str(limit), unset="MALLOC_ARENA_MAX", **env)
    return limited, int(arenas)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc: Linux only")
def test_threads_share_the_one_arena_allowed() -> None:
    assert _new_arenas(0) == ("False", 4)  # glibc's default: an arena per thread (the probe can tell)
    assert _new_arenas(1) == ("True", 0)  # all on the main arena
    assert _new_arenas(2) == ("True", 1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc: Linux only")
def test_the_admins_malloc_arena_max_wins() -> None:
    assert _new_arenas(1, MALLOC_ARENA_MAX="3") == ("False", 2)  # glibc's own reading of the variable


def test_zero_leaves_the_default_and_one_is_the_default_setting() -> None:
    assert limit_malloc_arenas(0) is False
    assert load_settings(environ={}).process.malloc_arenas == 1
    assert load_settings(environ={"CTI_PROCESS__MALLOC_ARENAS": "0"}).process.malloc_arenas == 0


TRIM_PROBE = """
import ctypes
from cti.allocator import trim_free_memory
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def resident_kib():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS"))

blocks = [libc.malloc(64 << 10) for _ in range(800)]  # 50 MiB in the heap (under the mmap threshold)
for block in blocks:
    ctypes.memset(block, 1, 64 << 10)
pinned = libc.malloc(1024)  # above them: the heap's top cannot shrink, as in a server full of live objects
before = resident_kib()
for block in blocks[:-1:2] + blocks[1::2]:
    libc.free(block)
freed = resident_kib()
trimmed = trim_free_memory()
print(before - freed, freed - resident_kib(), trimmed)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc: Linux only")
def test_a_trim_gives_back_the_free_pages_held_inside_the_heap() -> None:
    by_free, by_trim, trimmed = _probe(TRIM_PROBE)
    assert int(by_free) < 5 * 1024  # free() alone kept the 50 MiB resident (the top is pinned)
    assert int(by_trim) > 40 * 1024 and trimmed == "True"


async def test_the_trim_loop_trims_on_its_period_and_zero_means_never(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[float] = []
    def trim() -> bool:
        trims.append(time.monotonic())
        return True

    monkeypatch.setattr(allocator, "trim_free_memory", trim)
    await asyncio.wait_for(allocator.trim_free_memory_every(0), timeout=1)  # returns at once: trimming is off
    assert trims == []
    loop = asyncio.create_task(allocator.trim_free_memory_every(0.01))
    await asyncio.sleep(0.2)
    loop.cancel()
    assert len(trims) >= 3
    assert load_settings(environ={}).process.malloc_trim_every_s == 60
    assert load_settings(environ={"CTI_PROCESS__MALLOC_TRIM_EVERY_S": "0"}).process.malloc_trim_every_s == 0


MMAP_PROBE = """
import ctypes, sys
from cti.allocator import pin_mmap_threshold
pinned = pin_mmap_threshold(int(sys.argv[1]))
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.free(libc.malloc(4 << 20))  # a big buffer mapped and freed: glibc's own threshold climbs to its size
before = libc.mallinfo2().hblks
block = libc.malloc(1 << 20)
print(pinned, libc.mallinfo2().hblks - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc: Linux only")
def test_a_pinned_threshold_keeps_later_big_buffers_out_of_the_heap() -> None:
    def mapped(kib: int, **env: str) -> tuple[str, str]:
        pinned, count = _probe(MMAP_PROBE, str(kib), unset="MALLOC_MMAP_THRESHOLD_", **env)
        return pinned, count

    assert mapped(0) == ("False", "0")  # glibc's moving threshold: the next 1 MiB buffer comes from the heap
    assert mapped(128) == ("True", "1")  # pinned: it gets pages of its own, returned when freed
    assert mapped(128, MALLOC_MMAP_THRESHOLD_="8388608") == ("False", "0")  # the admin's setting wins
    assert load_settings(environ={}).process.malloc_mmap_threshold_kib == 128
