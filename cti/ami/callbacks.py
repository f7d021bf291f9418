"""Running user callbacks (event handlers, on_connected...) so none can hurt the AMI link or each other."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from fnmatch import fnmatchcase
from typing import Any

from panoramisk.message import Message

log = logging.getLogger(__name__)

Callback = Callable[..., Awaitable[None] | None]
EventHandler = Callable[[Message], Awaitable[None] | None]


def _name(callback: Callback) -> str:
    return getattr(callback, "__qualname__", None) or repr(callback)


class CallbackRunner:
    """Calls sync or async callbacks; exceptions are logged, async ones run as tracked tasks.

    panoramisk let a handler's exception climb into ``data_received``; here it stops at the handler.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self, callback: Callback, *args: Any) -> None:
        try:
            result = callback(*args)
        except Exception:
            log.exception("AMI callback %s failed", _name(callback))
            return
        if inspect.isawaitable(result):
            task = asyncio.get_running_loop().create_task(self._guard(callback, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _guard(self, callback: Callback, awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("AMI callback %s failed", _name(callback))

    async def aclose(self) -> None:
        """Cancel callbacks still running (at stop) and wait for them, so no task outlives the client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class EventRouter:
    """Routes events to handlers by a case-insensitive fnmatch pattern on the event name.

    Events nobody subscribed to (including types we never heard of, like Debian's TestEvent) are
    simply dropped. Sync handlers run in arrival order; async ones start in that order.
    """

    def __init__(self, runner: CallbackRunner) -> None:
        self._runner = runner
        self._routes: list[tuple[str, EventHandler]] = []

    def add(self, pattern: str, handler: EventHandler) -> Callable[[], None]:
        """Subscribe; the returned function unsubscribes (handy for one-shot waits)."""
        route = (pattern.lower(), handler)
        self._routes.append(route)

        def remove() -> None:
            if route in self._routes:
                self._routes.remove(route)

        return remove

    def dispatch(self, event: Message) -> None:
        name = str(event.event).lower()
        for pattern, handler in list(self._routes):
            if fnmatchcase(name, pattern):
                self._runner.run(handler, event)
