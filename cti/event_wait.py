"""Waiting for an ``asyncio.Event`` with a time limit, without ever losing a cancellation.

``asyncio.wait_for(event.wait(), t)`` runs the wait in an inner task; on Python 3.11, when the task is
cancelled just as the event is set, ``wait_for`` returns the result and the cancellation is lost: a background
loop told to stop carries on (and ``stop()`` waits for it for ever). ``asyncio.timeout`` awaits in the task
itself, so a cancellation always lands.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; whether it was set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
