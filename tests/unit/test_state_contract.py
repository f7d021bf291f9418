"""One contract for every StateBackend: the in-process backend and real Redis must behave the same.

Each test runs once per backend (fixture ``state_nodes`` in tests/conftest.py, section "state
backends"). The Redis variant uses the server from ``scripts/services.sh start`` and fails, never
skips, when it is down. Expiry is driven through ``advance``: a fake clock in memory, sleeping on Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from cti.settings import StateSettings
from cti.state import (
    InMemoryStateBackend,
    RedisStateBackend,
    StateBackend,
    StateTypeError,
    Subscription,
    make_state_backend,
)
from tests.plugins.state import FakeClock, StateNodes

RACERS = 100
# Short TTLs keep the Redis variant quick; SHORT_TTL is only ever checked after advancing past it.
SHORT_TTL = 0.3
PAST_SHORT_TTL = 0.6
LONG_TTL = 60.0
RECEIVE_GUARD = 10.0  # only turns a lost message into a failure instead of a hang; never asserted

only_redis = pytest.mark.parametrize("state_nodes", ["redis"], indirect=True)


async def receive(subscription: Subscription) -> tuple[str, str]:
    return await asyncio.wait_for(anext(subscription), RECEIVE_GUARD)


# --- strings and expiry -------------------------------------------------------------------------


async def test_get_and_set(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    assert await backend.get("missing") is None
    await backend.set("greeting", "hello")
    await backend.set("greeting", "bonjour")
    assert await backend.get("greeting") == "bonjour"


async def test_ttl_expires_keys(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    await backend.set("long", "kept", ttl=LONG_TTL)
    await backend.set("short", "gone", ttl=SHORT_TTL)
    await state_nodes.advance(PAST_SHORT_TTL)
    assert await backend.get("long") == "kept"
    assert await backend.get("short") is None


async def test_set_without_ttl_clears_the_expiry(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    await backend.set("key", "first", ttl=SHORT_TTL)
    await backend.set("key", "second")
    await state_nodes.advance(PAST_SHORT_TTL)
    assert await backend.get("key") == "second"


@pytest.mark.parametrize("ttl", [0, -1.5])
async def test_ttl_must_be_positive(state_nodes: StateNodes, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await state_nodes.backend.set("key", "value", ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await state_nodes.backend.set_if_absent("key", "value", ttl=ttl)


async def test_delete_reports_whether_the_key_existed(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    await backend.set("key", "value")
    assert await backend.delete("key") is True
    assert await backend.delete("key") is False
    assert await backend.get("key") is None


# --- atomic operations --------------------------------------------------------------------------


async def test_set_if_absent_only_creates(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    assert await backend.set_if_absent("lock", "first", ttl=SHORT_TTL) is True
    assert await backend.set_if_absent("lock", "second") is False
    assert await backend.get("lock") == "first"
    await state_nodes.advance(PAST_SHORT_TTL)
    assert await backend.set_if_absent("lock", "third") is True
    assert await backend.get("lock") == "third"


async def test_set_if_absent_race_has_exactly_one_winner(state_nodes: StateNodes) -> None:
    """100 concurrent claims, spread over every node sharing the store."""
    nodes = state_nodes.nodes
    claims = [nodes[i % len(nodes)].set_if_absent("lock", f"owner-{i}") for i in range(RACERS)]
    results = await asyncio.gather(*claims)
    assert results.count(True) == 1
    assert await state_nodes.backend.get("lock") == f"owner-{results.index(True)}"


async def test_compare_and_set_semantics(state_nodes: StateNodes) -> None:
    cas = state_nodes.backend.compare_and_set
    assert await cas("key", None, None) is True  # absent stays absent
    assert await cas("key", "a", "b") is False  # nothing to compare with
    assert await cas("key", None, "a") is True  # create only if absent
    assert await cas("key", None, "x") is False  # ... and it is not absent any more
    assert await cas("key", "wrong", "x") is False
    assert await cas("key", "a", "b") is True
    assert await state_nodes.backend.get("key") == "b"
    assert await cas("key", "b", None) is True  # new None deletes
    assert await state_nodes.backend.get("key") is None


async def test_compare_and_set_keeps_the_expiry(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    await backend.set("lease", "node-1", ttl=SHORT_TTL)
    assert await backend.compare_and_set("lease", "node-1", "node-2") is True
    await state_nodes.advance(PAST_SHORT_TTL)
    assert await backend.get("lease") is None


async def test_compare_and_set_race_has_exactly_one_winner(state_nodes: StateNodes) -> None:
    nodes = state_nodes.nodes
    await state_nodes.backend.set("state", "idle")
    swaps = [nodes[i % len(nodes)].compare_and_set("state", "idle", f"busy-{i}") for i in range(RACERS)]
    results = await asyncio.gather(*swaps)
    assert results.count(True) == 1
    assert await state_nodes.backend.get("state") == f"busy-{results.index(True)}"


async def test_compare_and_set_loops_lose_no_update(state_nodes: StateNodes) -> None:
    """Read-modify-write through CAS retries, from every node at once: no increment is lost."""

    async def bump(backend: StateBackend) -> None:
        while True:
            current = await backend.get("counter")
            if await backend.compare_and_set("counter", current, str(int(current or "0") + 1)):
                return

    nodes = state_nodes.nodes
    await asyncio.gather(*(bump(nodes[i % len(nodes)]) for i in range(20)))
    assert await state_nodes.backend.get("counter") == "20"


async def test_incr(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    assert await backend.incr("calls") == 1
    assert await backend.incr("calls", 5) == 6
    assert await backend.incr("calls", -2) == 4
    assert await backend.get("calls") == "4"


async def test_incr_is_atomic_across_nodes(state_nodes: StateNodes) -> None:
    nodes = state_nodes.nodes
    await asyncio.gather(*(nodes[i % len(nodes)].incr("hits") for i in range(RACERS)))
    assert await state_nodes.backend.get("hits") == str(RACERS)


async def test_incr_keeps_the_expiry(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    await backend.set("window", "1", ttl=SHORT_TTL)
    assert await backend.incr("window") == 2
    await state_nodes.advance(PAST_SHORT_TTL)
    assert await backend.get("window") is None


async def test_incr_rejects_a_non_integer(state_nodes: StateNodes) -> None:
    await state_nodes.backend.set("name", "alice")
    with pytest.raises(StateTypeError):
        await state_nodes.backend.incr("name")


# --- hashes -------------------------------------------------------------------------------------


async def test_hashes(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    assert await backend.hgetall("agent") == {}
    await backend.hset("agent", {"status": "idle", "ext": "1001"})
    await backend.hset("agent", {"status": "busy"})
    assert await backend.hgetall("agent") == {"status": "busy", "ext": "1001"}
    assert await backend.hdel("agent", "status", "missing") == 1
    assert await backend.hgetall("agent") == {"ext": "1001"}


async def test_hash_without_fields_disappears(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    await backend.hset("agent", {"status": "idle"})
    assert await backend.hdel("agent") == 0
    assert await backend.hdel("agent", "status") == 1
    assert await backend.keys("agent") == []
    await backend.hset("agent", {})
    assert await backend.keys("agent") == []


async def test_string_and_hash_operations_do_not_mix(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    await backend.set("text", "value")
    await backend.hset("table", {"field": "value"})
    misuses: list[Callable[[], Awaitable[object]]] = [
        lambda: backend.hgetall("text"),
        lambda: backend.hset("text", {"field": "value"}),
        lambda: backend.hdel("text", "field"),
        lambda: backend.get("table"),
        lambda: backend.incr("table"),
        lambda: backend.compare_and_set("table", None, "value"),
    ]
    for misuse in misuses:
        with pytest.raises(StateTypeError):
            await misuse()
    await backend.set("table", "replaced")  # like Redis SET: any kind of value is replaced
    assert await backend.get("table") == "replaced"


# --- keys ---------------------------------------------------------------------------------------


async def test_keys_by_prefix(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    for key in ("agent:1", "agent:2", "agents", "queue:1", "agent[*]?"):
        await backend.set(key, "x")
    await backend.hset("agent:3", {"status": "idle"})
    await backend.set("agent:4", "x", ttl=SHORT_TTL)
    await state_nodes.advance(PAST_SHORT_TTL)
    assert await backend.keys("agent:") == ["agent:1", "agent:2", "agent:3"]
    assert await backend.keys("agent[*]") == ["agent[*]?"]  # glob characters match literally
    assert await backend.keys("") == ["agent:1", "agent:2", "agent:3", "agent[*]?", "agents", "queue:1"]


# --- pub/sub ------------------------------------------------------------------------------------


async def test_publish_reaches_every_subscriber(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    first = await backend.subscribe("calls")
    second = await backend.subscribe("calls", "agents")
    await backend.publish("other", "ignored")
    await backend.publish("calls", "ring-1")
    await backend.publish("calls", "ring-2")
    await backend.publish("agents", "login")
    assert [await receive(first), await receive(first)] == [("calls", "ring-1"), ("calls", "ring-2")]
    assert [await receive(second) for _ in range(3)] == [
        ("calls", "ring-1"),
        ("calls", "ring-2"),
        ("agents", "login"),
    ]
    await first.close()
    await second.close()


@only_redis
async def test_publish_reaches_a_subscriber_on_another_node(state_nodes: StateNodes) -> None:
    publisher, listener = state_nodes.nodes
    local = await publisher.subscribe("calls")
    remote = await listener.subscribe("calls")
    await publisher.publish("calls", "ring")
    assert await receive(remote) == ("calls", "ring")
    assert await receive(local) == ("calls", "ring")
    await remote.close()
    await local.close()


@only_redis
async def test_key_prefix_isolates_deployments(
    state_nodes: StateNodes, redis_url: str, state_key_prefix: str
) -> None:
    neighbour = RedisStateBackend(redis_url, state_key_prefix + "neighbour:")
    try:
        await state_nodes.backend.set("shared-name", "ours")
        assert await neighbour.get("shared-name") is None
        assert await neighbour.keys("") == []
        theirs = await neighbour.subscribe("events")
        await state_nodes.backend.publish("events", "not for them")
        await neighbour.publish("events", "for them")
        assert await receive(theirs) == ("events", "for them")
    finally:
        await neighbour.close()


async def test_close_ends_the_subscription(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    closing = await backend.subscribe("calls")
    staying = await backend.subscribe("calls")
    reader = asyncio.create_task(anext(closing))
    await asyncio.sleep(0)  # let the reader block on the empty subscription
    await closing.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(reader, RECEIVE_GUARD)
    await backend.publish("calls", "after close")
    assert [item async for item in closing] == []
    assert await receive(staying) == ("calls", "after close")
    await closing.close()  # closing twice is harmless
    await staying.close()


async def test_closing_the_backend_ends_its_subscriptions(state_nodes: StateNodes) -> None:
    subscription = await state_nodes.backend.subscribe("calls")
    await state_nodes.backend.close()
    assert [item async for item in subscription] == []


async def test_subscribe_needs_a_channel(state_nodes: StateNodes) -> None:
    with pytest.raises(ValueError, match="channel"):
        await state_nodes.backend.subscribe()


async def test_ping_and_interface(state_nodes: StateNodes) -> None:
    await state_nodes.backend.ping()
    assert isinstance(state_nodes.backend, StateBackend)


# --- in-process backend only --------------------------------------------------------------------


async def test_memory_expiry_follows_the_injected_clock() -> None:
    clock = FakeClock()
    backend = InMemoryStateBackend(clock=clock)
    await backend.set("key", "value", ttl=10)
    clock.advance(9.999)
    assert await backend.get("key") == "value"
    clock.advance(0.001)
    assert await backend.get("key") is None
    assert await backend.keys("") == []


async def test_memory_slow_subscriber_loses_oldest_messages() -> None:
    backend = InMemoryStateBackend(queue_size=3)
    subscription = await backend.subscribe("calls")
    for number in range(5):
        await backend.publish("calls", str(number))
    assert [await receive(subscription) for _ in range(3)] == [("calls", "2"), ("calls", "3"), ("calls", "4")]
    assert getattr(subscription, "dropped", None) == 2
    await backend.close()


async def test_make_state_backend_follows_the_settings() -> None:
    memory = make_state_backend(StateSettings())
    redis = make_state_backend(StateSettings(backend="redis", redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(memory, InMemoryStateBackend)
    assert isinstance(redis, RedisStateBackend)  # built without connecting
    await memory.close()
    await redis.close()
