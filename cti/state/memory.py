"""In-process state backend: the default for a single node, and the reference for the Redis one.

Every operation runs without an ``await`` between its read and its write, so each one is atomic
with respect to other asyncio tasks (not threads: use it from one event loop). Expired keys are
dropped lazily, through a heap of deadlines, so memory does not grow with keys nobody reads again.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cti.state.base import Subscription, check_channels, check_ttl
from cti.state.errors import StateError, StateTypeError

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
DEFAULT_QUEUE_SIZE = 1000


@dataclass
class _Entry:
    value: str | dict[str, str]
    deadline: float | None = None


class Mailbox:
    """A bounded ``Subscription`` body: a slow reader loses its oldest messages, publishers never wait.

    Also used by the Redis backend, whose reader task pumps the server's messages into one.
    """

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.dropped = 0
        self._queue_size = queue_size
        self._items: deque[tuple[str, str] | StateError] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def deliver(self, channel: str, message: str) -> None:
        """Never blocks, so one stuck reader cannot slow the publisher or the other readers."""
        if self._closed:
            return
        if len(self._items) >= self._queue_size:
            self._items.popleft()
            self.dropped += 1
            logger.warning("state subscriber too slow: dropped a message on %s", channel)
        self._items.append((channel, message))
        self._ready.set()

    def fail(self, error: StateError) -> None:
        """Queue an error for the reader, in order with the messages around it."""
        if self._closed:
            return
        self._items.append(error)
        self._ready.set()

    def __aiter__(self) -> Mailbox:
        return self

    async def __anext__(self) -> tuple[str, str]:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, StateError):
            raise item
        return item

    async def close(self) -> None:
        """Discard pending messages and wake a waiting reader so its loop ends."""
        self._closed = True
        self._items.clear()
        self._ready.set()


class MemorySubscription(Mailbox):
    """A mailbox plus the channels it listens to; the backend's ``publish`` fans out to every match."""

    def __init__(self, channels: tuple[str, ...], queue_size: int) -> None:
        super().__init__(queue_size)
        self.channels = frozenset(channels)


class InMemoryStateBackend:
    """``StateBackend`` kept in a dict; ``clock`` is injectable so tests can expire keys without sleeping."""

    def __init__(self, clock: Clock = time.monotonic, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._clock = clock
        self._queue_size = queue_size
        self._data: dict[str, _Entry] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._subscriptions: weakref.WeakSet[MemorySubscription] = weakref.WeakSet()

    # --- expiry ---------------------------------------------------------------------------------

    def _purge(self) -> None:
        """Drop every key whose deadline has passed; stale heap rows (key rewritten) are skipped."""
        now = self._clock()
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, key = heapq.heappop(self._deadlines)
            entry = self._data.get(key)
            if entry is not None and entry.deadline == deadline:
                del self._data[key]

    def _lookup(self, key: str) -> _Entry | None:
        self._purge()
        return self._data.get(key)

    def _store(self, key: str, value: str | dict[str, str], deadline: float | None) -> None:
        self._data[key] = _Entry(value, deadline)
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, key))

    def _deadline(self, ttl: float | None) -> float | None:
        check_ttl(ttl)
        return None if ttl is None else self._clock() + ttl

    def _string(self, key: str) -> _Entry | None:
        entry = self._lookup(key)
        if entry is not None and not isinstance(entry.value, str):
            raise StateTypeError(f"key {key!r} holds a hash, not a string")
        return entry

    def _hash(self, key: str) -> dict[str, str] | None:
        entry = self._lookup(key)
        if entry is None:
            return None
        if not isinstance(entry.value, dict):
            raise StateTypeError(f"key {key!r} holds a string, not a hash")
        return entry.value

    # --- strings --------------------------------------------------------------------------------

    async def get(self, key: str) -> str | None:
        entry = self._string(key)
        return None if entry is None else str(entry.value)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        deadline = self._deadline(ttl)
        self._purge()
        self._store(key, value, deadline)

    async def set_if_absent(self, key: str, value: str, ttl: float | None = None) -> bool:
        deadline = self._deadline(ttl)
        if self._lookup(key) is not None:
            return False
        self._store(key, value, deadline)
        return True

    async def compare_and_set(self, key: str, expected: str | None, new: str | None) -> bool:
        entry = self._string(key)
        current = None if entry is None else entry.value
        if current != expected:
            return False
        if new is None:
            self._data.pop(key, None)
        elif entry is None:
            self._store(key, new, None)
        else:
            entry.value = new
        return True

    async def delete(self, key: str) -> bool:
        if self._lookup(key) is None:
            return False
        del self._data[key]
        return True

    async def incr(self, key: str, amount: int = 1) -> int:
        entry = self._string(key)
        if entry is None:
            self._store(key, str(amount), None)
            return amount
        try:
            result = int(str(entry.value)) + amount
        except ValueError:
            raise StateTypeError(f"key {key!r} does not hold an integer") from None
        entry.value = str(result)
        return result

    # --- hashes ---------------------------------------------------------------------------------

    async def hset(self, key: str, mapping: Mapping[str, str]) -> None:
        if not mapping:
            return
        current = self._hash(key)
        if current is None:
            self._store(key, dict(mapping), None)
        else:
            current.update(mapping)

    async def hgetall(self, key: str) -> dict[str, str]:
        return dict(self._hash(key) or {})

    async def hdel(self, key: str, *fields: str) -> int:
        current = self._hash(key) if fields else None
        if current is None:
            return 0
        removed = sum(current.pop(name, None) is not None for name in set(fields))
        if not current:
            del self._data[key]
        return removed

    async def keys(self, prefix: str) -> list[str]:
        self._purge()
        return sorted(key for key in self._data if key.startswith(prefix))

    # --- pub/sub and lifecycle ------------------------------------------------------------------

    async def publish(self, channel: str, message: str) -> None:
        for subscription in list(self._subscriptions):
            if channel in subscription.channels:
                subscription.deliver(channel, message)

    async def subscribe(self, *channels: str) -> Subscription:
        check_channels(channels)
        subscription = MemorySubscription(channels, self._queue_size)
        self._subscriptions.add(subscription)
        return subscription

    async def ping(self) -> None:
        """Always reachable: the store is this process."""

    async def close(self) -> None:
        """End every subscription so readers blocked in ``async for`` return."""
        for subscription in list(self._subscriptions):
            await subscription.close()
        self._subscriptions.clear()
