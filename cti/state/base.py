"""The one interface every shared-state backend implements.

The server keeps cross-call state (agent status, queue counters, locks) and broadcasts events through
this interface only, so a single node can run on the in-process backend and a cluster on Redis
without any caller changing. Keys and channels are namespaced with ``StateSettings.key_prefix`` by
the backends that share a store; callers always see and pass the bare names.

Semantics follow Redis, so the in-process backend is a faithful stand-in:

* ``set`` replaces the value and its expiry (``ttl=None`` means "no expiry");
* ``compare_and_set`` keeps the key's expiry when it replaces a value;
* ``incr`` keeps the expiry; a hash whose last field is removed disappears;
* using a string operation on a hash (or the reverse) raises ``StateTypeError``;
* pub/sub is at-most-once: a message published while a subscriber is disconnected is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable


@runtime_checkable
class Subscription(Protocol):
    """Messages of the subscribed channels as ``(channel, message)``, in publish order per channel.

    Iteration ends (``StopAsyncIteration``) once ``close()`` is called. On Redis a lost connection
    raises ``StateUnavailable`` from ``__anext__``; iterating again resumes after the reconnect.
    """

    def __aiter__(self) -> Subscription: ...

    async def __anext__(self) -> tuple[str, str]: ...

    async def close(self) -> None: ...


@runtime_checkable
class StateBackend(Protocol):
    """Key/value, hash and pub/sub operations; every method may raise ``StateUnavailable``."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: str, ttl: float | None = None) -> bool:
        """Atomically create ``key``; True only for the single caller that created it."""
        ...

    async def compare_and_set(self, key: str, expected: str | None, new: str | None) -> bool:
        """Atomically replace ``expected`` by ``new``; None as expected means absent, as new means delete."""
        ...

    async def delete(self, key: str) -> bool: ...

    async def incr(self, key: str, amount: int = 1) -> int: ...

    async def hset(self, key: str, mapping: Mapping[str, str]) -> None: ...

    async def hgetall(self, key: str) -> dict[str, str]: ...

    async def hdel(self, key: str, *fields: str) -> int: ...

    async def keys(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix``, sorted; scans incrementally so a big store is never blocked."""
        ...

    async def publish(self, channel: str, message: str) -> None: ...

    async def subscribe(self, *channels: str) -> Subscription:
        """Return once the subscription is active: anything published afterwards is delivered."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def check_ttl(ttl: float | None) -> None:
    """Reject a non-positive expiry: Redis would refuse it, and a silent "never expires" hides bugs."""
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")


def check_channels(channels: tuple[str, ...]) -> None:
    """A subscription without channels could never yield anything; that is a caller bug."""
    if not channels:
        raise ValueError("subscribe() needs at least one channel")
