"""Python's cyclic garbage collector in the server process: what it costs the calls, and keeping that small.

Freezing (``[process] gc_freeze``): once the server has started it holds some 120,000 objects the collector
tracks, nearly all of which live as long as it does (modules, classes, SQLAlchemy's mappers and statement caches,
templates, holiday tables). A full
collection walks every one of them, and while it does the event loop, and so every call's AGI dialogue, waits:
the soak measured ~70 ms per full collection, one every couple of minutes at 2 calls/s (docs/RELIABILITY.md,
"Soak"). ``gc.freeze()`` moves them to a generation the collector never walks again. Full collections then cost
what the calls in flight hold, and they come sooner (Python runs one when the objects promoted since the last
exceed a quarter of those that survived it), so the reference cycles SQLAlchemy's statements leave behind are
given back before they spread over fresh memory. What is frozen is never collected: it is done once, after a
collection, when start-up's garbage is gone.

Watching (``CollectorWatch``): how many full collections ran and how long the last and the longest held the
loop, for ``GET /api/status`` and the soak. The server starts counting afresh once it has frozen (``reset``), so
the figures are those of the calls, not of the freeze's own collection.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

FULL = 2  # the oldest generation: a full collection


def freeze_startup_objects() -> int:
    """Collect, then freeze every object left (they are the process's own for life); returns how many."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class CollectorWatch:
    """Times Python's full collections through ``gc.callbacks`` (installed by ``start``, removed by ``stop``)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started: float | None = None
        self.full_collections = 0
        self.last_pause_ms: float | None = None
        self.max_pause_ms = 0.0

    def reset(self) -> None:
        self.full_collections, self.last_pause_ms, self.max_pause_ms = 0, None, 0.0

    def start(self) -> None:
        if self._on_collection not in gc.callbacks:
            gc.callbacks.append(self._on_collection)

    def stop(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != FULL:
            return
        if phase == "start":
            self._started = self._clock()
        elif self._started is not None:
            pause = (self._clock() - self._started) * 1000
            self._started = None
            self.full_collections += 1
            self.last_pause_ms = round(pause, 3)
            self.max_pause_ms = round(max(self.max_pause_ms, pause), 3)

    def as_dict(self) -> dict[str, Any]:
        return {"full_collections": self.full_collections, "full_pause_ms_last": self.last_pause_ms,
                "full_pause_ms_max": self.max_pause_ms, "frozen_objects": gc.get_freeze_count()}
