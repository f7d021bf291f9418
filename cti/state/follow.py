"""Following pub/sub channels for as long as the server runs, through the shared state's outages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cti.state.base import StateBackend
from cti.state.errors import StateError

log = logging.getLogger(__name__)

RETRY_S = 1.0


async def follow(state: StateBackend, channels: tuple[str, ...], handle: Callable[[str, str], None], *, name: str,
                 ready: asyncio.Event | None = None, after_outage: Callable[[], None] | None = None,
                 retry_s: float = RETRY_S) -> None:
    """Hand every ``(channel, message)`` to ``handle``; resubscribe after an outage or a failure.

    ``ready`` is set once subscribed (or once the first attempt failed, so a caller waiting on it at start-up
    is not held while Redis is down); ``after_outage`` runs once subscribed again after an outage, for readers
    that must resynchronise (messages published meanwhile are lost: pub/sub is at most once). The
    subscription is closed whenever reading stops, so an outage never leaves a connection behind.
    """
    outage = False
    while True:
        try:
            subscription = await state.subscribe(*channels)
            if ready is not None:
                ready.set()
            if outage:
                log.warning("%s: feed back", name)
                if after_outage is not None:
                    after_outage()
            outage = False
            try:
                async for channel, message in subscription:
                    handle(channel, message)
            finally:
                await subscription.close()
            return
        except StateError as exc:
            if outage:  # once per outage, not once per attempt
                log.debug("%s: still cannot subscribe (%s)", name, exc)
            else:
                log.warning("%s: feed interrupted (%s); resubscribing until it is back", name, exc)
            outage = True
            if ready is not None:
                ready.set()
            await asyncio.sleep(retry_s)
        except Exception:
            log.exception("%s: feed failed; restarting it", name)
            await asyncio.sleep(retry_s)
