"""A background loop waiting on an event stops when cancelled, even if the event is set at that very moment."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable

from cti.event_wait import wait_set

Waiter = Callable[[asyncio.Event, float], Awaitable[object]]


async def _wait_for(event: asyncio.Event, timeout: float) -> None:
    """The pattern this replaces, to show the test can fail."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


async def _loop_rounds(waiter: Waiter, event: asyncio.Event, rounds: list[int]) -> None:
    while True:
        await waiter(event, 3600)
        event.clear()
        rounds.append(1)


async def _cancelled_while_set(waiter: Waiter) -> bool:
    """Whether a loop cancelled in the same instant its event is set does stop."""
    event, rounds = asyncio.Event(), []
    task = asyncio.create_task(_loop_rounds(waiter, event, rounds))
    await asyncio.sleep(0)  # the loop is waiting
    event.set()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=0.5)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return bool(done) and task.cancelled()


async def test_a_cancellation_is_never_lost() -> None:
    assert await _cancelled_while_set(wait_set)


async def test_the_old_pattern_loses_it_before_python_3_12() -> None:
    """What the test catches: on 3.11 (what we run) ``wait_for`` swallows the cancellation here; 3.12 fixed it."""
    assert await _cancelled_while_set(_wait_for) is (sys.version_info >= (3, 12))


async def test_it_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 0.01) is True
