"""The Redis backend survives a Redis restart without being rebuilt.

Uses a private redis-server (fixture ``private_redis``, port 56380 by default) so stopping it does
not disturb the shared test server other tests use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from cti.state import RedisStateBackend, StateBackend, StateUnavailable, Subscription
from tests.plugins.state import RedisServerProcess

pytestmark = pytest.mark.redis

RECOVERY_GUARD = 30.0  # only turns "never recovers" into a failure instead of a hang; never asserted

Operation = Callable[[StateBackend], Awaitable[object]]

OPERATIONS: dict[str, Operation] = {
    "ping": lambda b: b.ping(),
    "get": lambda b: b.get("key"),
    "set": lambda b: b.set("key", "value"),
    "set_if_absent": lambda b: b.set_if_absent("lock", "me"),
    "compare_and_set": lambda b: b.compare_and_set("key", "value", "next"),
    "delete": lambda b: b.delete("key"),
    "incr": lambda b: b.incr("counter"),
    "hset": lambda b: b.hset("hash", {"field": "value"}),
    "hgetall": lambda b: b.hgetall("hash"),
    "hdel": lambda b: b.hdel("hash", "field"),
    "keys": lambda b: b.keys(""),
    "publish": lambda b: b.publish("events", "message"),
    "subscribe": lambda b: b.subscribe("events"),
}


async def _deliver_until_received(backend: StateBackend, subscription: Subscription) -> tuple[str, str]:
    """Publish until the subscription's reconnect and re-subscribe have caught up."""
    reader = asyncio.ensure_future(_next_message(subscription))
    while not reader.done():
        await backend.publish("events", "back")
        await asyncio.wait([reader], timeout=0.1)
    return reader.result()


async def _next_message(subscription: Subscription) -> tuple[str, str]:
    """Skip the outage report(s): the reader sees StateUnavailable once, then messages again."""
    while True:
        try:
            return await anext(subscription)
        except StateUnavailable:
            continue


async def test_operations_fail_while_redis_is_down_and_recover(
    private_redis: RedisServerProcess, state_key_prefix: str
) -> None:
    backend = RedisStateBackend(private_redis.url, state_key_prefix)
    try:
        await backend.set("key", "value")
        subscription = await backend.subscribe("events")
        private_redis.stop()
        for operation in OPERATIONS.values():
            with pytest.raises(StateUnavailable, match="unavailable"):
                await operation(backend)
        with pytest.raises(StateUnavailable):
            await asyncio.wait_for(anext(subscription), RECOVERY_GUARD)

        private_redis.start()  # no persistence: the restarted server is empty
        await backend.ping()
        assert await backend.compare_and_set("key", None, "again") is True  # Lua script reloaded
        assert await backend.get("key") == "again"
        assert await backend.incr("counter") == 1
        received = await asyncio.wait_for(_deliver_until_received(backend, subscription), RECOVERY_GUARD)
        assert received == ("events", "back")
    finally:
        await backend.close()
