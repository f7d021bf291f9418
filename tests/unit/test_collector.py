"""Python's collector in the server process (cti/collector.py): full collections timed, start-up objects frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from cti.collector import CollectorWatch, freeze_startup_objects


class _Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def thawed() -> Iterator[None]:
    """Whatever a test freezes goes back to the collector afterwards (the test process lives on)."""
    yield
    gc.unfreeze()


def _ticks(*values: float) -> object:
    it = iter(values)
    return lambda: next(it)


def test_a_full_collection_is_counted_with_its_pause() -> None:
    watch = CollectorWatch(clock=_ticks(10.0, 10.025))  # type: ignore[arg-type]
    watch.start()
    try:
        gc.collect()
    finally:
        watch.stop()
    assert watch.full_collections == 1
    assert watch.last_pause_ms == pytest.approx(25.0) and watch.max_pause_ms == pytest.approx(25.0)


def test_younger_generations_are_not_counted_and_stop_detaches() -> None:
    watch = CollectorWatch()
    watch.start()
    watch.start()  # twice: still one callback
    try:
        assert gc.callbacks.count(watch._on_collection) == 1
        gc.collect(0)
        gc.collect(1)
        assert watch.full_collections == 0 and watch.last_pause_ms is None
        gc.collect()
        assert watch.full_collections == 1
    finally:
        watch.stop()
    gc.collect()
    assert watch.full_collections == 1
    assert watch._on_collection not in gc.callbacks


def test_the_longest_pause_is_kept() -> None:
    watch = CollectorWatch(clock=_ticks(0.0, 0.040, 1.0, 1.005))  # type: ignore[arg-type]
    watch.start()
    try:
        gc.collect()
        gc.collect()
    finally:
        watch.stop()
    assert watch.as_dict()["full_pause_ms_last"] == pytest.approx(5.0)
    assert watch.as_dict()["full_pause_ms_max"] == pytest.approx(40.0)
    watch.reset()
    assert watch.as_dict() | {"frozen_objects": 0} == {"full_collections": 0, "full_pause_ms_last": None,
                                                       "full_pause_ms_max": 0.0, "frozen_objects": 0}


@pytest.mark.usefixtures("thawed")
def test_freezing_collects_start_up_garbage_first_and_keeps_live_objects_out_of_later_passes() -> None:
    garbage = _Cycle()
    gone = weakref.ref(garbage)
    del garbage  # a cycle start-up left behind: collected, not frozen for life
    kept = _Cycle()
    frozen = freeze_startup_objects()
    assert gone() is None
    assert frozen == gc.get_freeze_count() > 0
    assert not any(obj is kept for obj in gc.get_objects())  # in no generation a collection walks
    gc.unfreeze()
    assert gc.get_freeze_count() == 0 and any(obj is kept for obj in gc.get_objects())
