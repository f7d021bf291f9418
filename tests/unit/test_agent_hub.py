"""Agents' events and this node's hub: sequence numbers, routing to an agent's tabs, broadcasts, several nodes,
the ACD's agent states, replay after a reconnect, the shared state being down, and the call cards.

Where pub/sub matters the tests run on the in-process backend and on the real Redis (two nodes on one server).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import cast

import pytest
from redis.asyncio import Redis

from cti.acd.model import AgentState
from cti.acd.shared import CHANNEL as ACD_CHANNEL
from cti.acd.shared import AgentBoard, AgentStatus
from cti.agents import hub as hub_module
from cti.agents.events import (
    CARD_TTL_S,
    CARDS_KEY,
    CHANNEL,
    EVERYONE,
    SEQ_KEY,
    STREAM_KEY,
    AgentEvents,
    envelope,
    unwire,
    wire,
)
from cti.agents.hub import AgentHub, Buffered, agent_state_event
from cti.state import InMemoryStateBackend, RedisStateBackend, StateUnavailable
from cti.state.memory import Mailbox
from tests.plugins.state import FakeClock, StateNodes
from tests.support.desktop import WAIT_S, FlakyState, RecordingOutbox, flush, wait_until


@pytest.fixture
async def hub(state_nodes: StateNodes) -> AsyncIterator[AgentHub]:
    """A hub following the first node's feed."""
    started = AgentHub(state_nodes.backend)
    await started.start()
    yield started
    await started.stop()


def _message(agent_id: str, seq: int | None, kind: str = "note", **data: object) -> str:
    return wire(agent_id, envelope(kind, dict(data), seq, agent_id))


def _seqs(items: list[Buffered] | None) -> list[int] | None:
    return None if items is None else [item.seq for item in items]


# --- sequence numbers ------------------------------------------------------------------------------------


async def test_emit_numbers_each_agents_events_on_its_own_increasing_scale(state_nodes: StateNodes) -> None:
    events = AgentEvents(state_nodes.backend)
    assert [await events.emit("alice", "note", {"n": n}) for n in range(3)] == [1, 2, 3]
    assert await events.emit("bob", "note", {}) == 1
    assert await events.emit("alice", "note", {}) == 4
    assert (await events.last_seq("alice"), await events.last_seq("bob"), await events.last_seq("carol")) == (4, 1, 0)
    other_node = AgentEvents(state_nodes.nodes[-1])
    assert await other_node.emit("alice", "note", {}) == 5  # every node numbers one agent on one scale


async def test_every_node_on_one_shared_state_counts_an_agent_on_one_stream(state_nodes: StateNodes) -> None:
    """Redis: two server processes; memory: two nodes' events on one backend. Asked first at the same time,
    set-if-absent picks one stream; it stays while the numbering goes on; each agent has their own."""
    here, there = AgentEvents(state_nodes.backend), AgentEvents(state_nodes.nodes[-1])
    streams = await asyncio.gather(*(events.stream("alice") for events in (here, there, here, there)))
    assert len(set(streams)) == 1 and len(streams[0]) == 16
    await here.emit("alice", "note", {})
    await there.emit("alice", "note", {})
    assert (await here.stream("alice"), await there.stream("alice")) == (streams[0], streams[0])
    assert await state_nodes.nodes[-1].get(STREAM_KEY + "alice") == streams[0]  # kept beside the counter
    assert await there.stream("bob") not in (streams[0], "")


async def test_a_numbering_that_starts_over_has_a_new_stream(state_nodes: StateNodes) -> None:
    """The counter lost with its stream (a flushed Redis), or a restart on the in-process state (a new one)."""
    events = AgentEvents(state_nodes.backend)
    await events.emit("alice", "note", {})
    before = await events.stream("alice")
    for key in (SEQ_KEY + "alice", STREAM_KEY + "alice"):
        await state_nodes.backend.delete(key)
    assert await events.emit("alice", "note", {}) == 1
    assert await events.stream("alice") != before
    restarted = AgentEvents(InMemoryStateBackend())
    assert await restarted.emit("alice", "note", {}) == 1 and await restarted.stream("alice") != before


def test_the_wire_form_carries_agent_and_sequence_without_decoding_the_json() -> None:
    text = _message("alice", 7, "call_ringing", call_id="c1")
    agent_id, seq, body = unwire(text)
    assert (agent_id, seq) == ("alice", 7)
    decoded = json.loads(body)
    assert (decoded["type"], decoded["seq"], decoded["agent_id"], decoded["data"]) == ("call_ringing", 7, "alice",
                                                                                       {"call_id": "c1"})
    assert unwire(_message(EVERYONE, None))[1] is None
    with pytest.raises(ValueError):
        unwire("not ours")


# --- delivery ---------------------------------------------------------------------------------------------


async def test_an_agents_event_reaches_every_tab_of_that_agent_and_no_one_else(
    state_nodes: StateNodes, hub: AgentHub
) -> None:
    events = AgentEvents(state_nodes.backend)
    tab1, tab2, bob = RecordingOutbox("alice-1"), RecordingOutbox("alice-2"), RecordingOutbox("bob")
    hub.add("alice", tab1)
    hub.add("alice", tab2)
    hub.add("bob", bob)
    assert (hub.connected("alice"), hub.connected("bob"), hub.sockets) == (2, 1, 3)

    seq = await events.emit("alice", "call_ringing", {"call_id": "c1"})
    await flush(events, tab1, tab2, bob)
    for tab in (tab1, tab2):
        [(event, pushed_seq)] = [(event, s) for event, s in tab.received if event["type"] == "call_ringing"]
        assert (pushed_seq, event["seq"], event["agent_id"], event["data"]) == (seq, seq, "alice", {"call_id": "c1"})
    assert bob.events == []
    assert hub.delivered >= 2


async def test_a_broadcast_reaches_every_desktop_unsequenced(state_nodes: StateNodes, hub: AgentHub) -> None:
    events = AgentEvents(state_nodes.backend)
    boxes = {name: RecordingOutbox(name) for name in ("alice", "bob", "carol")}
    for name, box in boxes.items():
        hub.add(name, box)
    await events.broadcast("wallboard", {"waiting": 3})
    for box in boxes.values():
        await box.wait_for("wallboard")
        [(event, seq)] = box.received
        assert (seq, event["seq"], event["agent_id"], event["data"]) == (None, None, EVERYONE, {"waiting": 3})
    assert await events.last_seq(EVERYONE) == 0  # a broadcast uses no counter


async def test_hubs_on_two_nodes_both_receive_what_either_node_emits(state_nodes: StateNodes, hub: AgentHub) -> None:
    """Redis: two backends (two server processes); memory: one process, two hubs on one backend."""
    other_hub = AgentHub(state_nodes.nodes[-1])
    await other_hub.start()
    try:
        here, there = RecordingOutbox("here"), RecordingOutbox("there")
        hub.add("alice", here)
        other_hub.add("alice", there)
        first = await AgentEvents(state_nodes.backend).emit("alice", "note", {"from": "node 1"})
        second = await AgentEvents(state_nodes.nodes[-1]).emit("alice", "note", {"from": "node 2"})
        for box in (here, there):
            await box.wait_for("note", 2)
            assert [seq for _, seq in box.received] == [first, second] == [1, 2]
            assert [data["from"] for data in box.of("note")] == ["node 1", "node 2"]
        assert _seqs(other_hub.replay("alice", 0, 2)) == [1, 2]  # both kept for replay on the other node too
    finally:
        await other_hub.stop()


async def test_an_acd_agent_state_change_reaches_the_agents_desktops(state_nodes: StateNodes, hub: AgentHub) -> None:
    alice, bob = RecordingOutbox("alice"), RecordingOutbox("bob")
    hub.add("alice", alice)
    hub.add("bob", bob)
    board = AgentBoard(state_nodes.nodes[-1], wall_clock=lambda: 1_700_000_000.0)
    await board.change("alice", board.login("PJSIP/agent1"))
    await board.change("alice", board.pause("lunch"))
    await wait_until(lambda: len(alice.of("agent_state")) == 2, "alice's two states")
    [available, paused] = alice.of("agent_state")
    assert available == {"state": "available", "reason": None, "endpoint": "PJSIP/agent1", "call": None,
                         "since": 1_700_000_000.0, "until": None}
    assert (paused["state"], paused["reason"]) == ("paused", "lunch")
    assert [seq for _, seq in alice.received] == [None, None]  # a state is a snapshot, not history
    await flush(AgentEvents(state_nodes.backend), bob)
    assert bob.events == []


def test_the_agent_state_event_names_the_agent_and_its_call() -> None:
    status = AgentStatus("alice", AgentState.RINGING, endpoint="PJSIP/agent1", call="c1", since=5.0, until=0.0)
    event = json.loads(agent_state_event(status))
    assert (event["type"], event["agent_id"], event["seq"]) == ("agent_state", "alice", None)
    assert (event["data"]["state"], event["data"]["call"], event["data"]["until"]) == ("ringing", "c1", None)


async def test_malformed_channel_messages_are_ignored_and_the_feed_goes_on(
    state_nodes: StateNodes, hub: AgentHub
) -> None:
    alice = RecordingOutbox("alice")
    hub.add("alice", alice)
    backend = state_nodes.backend
    for junk in ("no separator at all", "alice\x1fnot-a-number\x1f{}"):
        await backend.publish(CHANNEL, junk)
    for junk in ("not json", json.dumps({"agent_id": "alice", "state": "dancing"}), "{}"):
        await backend.publish(ACD_CHANNEL, junk)
    seq = await AgentEvents(backend).emit("alice", "note", {"ok": True})
    await wait_until(lambda: bool(alice.of("note")), "the good event after the junk")
    assert alice.received == [(alice.events[0], seq)] and alice.of("note") == [{"ok": True}]
    assert hub.replay("alice", 0, 1) is not None


def test_deliver_ignores_a_malformed_message_directly() -> None:
    hub = AgentHub(InMemoryStateBackend())
    alice = RecordingOutbox("alice")
    hub.add("alice", alice)
    hub.deliver("garbage")
    hub.deliver("alice\x1fx\x1f{}")
    assert alice.received == [] and hub.delivered == 0
    hub.deliver_local("alice", "reply", {"ok": True})
    assert alice.of("reply") == [{"ok": True}] and alice.received[0][1] is None


async def test_a_removed_tab_gets_nothing_more(state_nodes: StateNodes, hub: AgentHub) -> None:
    events = AgentEvents(state_nodes.backend)
    kept, removed = RecordingOutbox("kept"), RecordingOutbox("removed")
    hub.add("alice", kept)
    hub.add("alice", removed)
    hub.remove("alice", removed)
    hub.remove("alice", removed)  # twice: harmless
    await events.emit("alice", "note", {})
    await flush(events, kept)
    assert (len(kept.of("note")), removed.received, hub.connected("alice")) == (1, [], 1)
    hub.remove("alice", kept)
    assert (hub.connected("alice"), hub.sockets, list(hub.clients())) == (0, 0, [])


# --- the feed's life cycle -------------------------------------------------------------------------------


async def test_after_a_feed_outage_the_hub_closes_the_old_feed_resubscribes_and_drops_its_sockets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "RESUBSCRIBE_S", 0.0)
    backend = InMemoryStateBackend()
    flaky = FlakyState(backend)
    hub = AgentHub(flaky.backend)
    await hub.start()
    try:
        alice = RecordingOutbox("alice")
        hub.add("alice", alice)
        [first] = flaky.subscriptions
        cast(Mailbox, first).fail(StateUnavailable("the connection to Redis dropped"))
        await wait_until(lambda: alice.resyncs == 1, "the sockets closed for resync")
        assert len(flaky.subscriptions) == 2
        with pytest.raises(StopAsyncIteration):  # closed: no second connection and pump left behind
            await asyncio.wait_for(first.__anext__(), WAIT_S)
        await AgentEvents(backend).emit("alice", "note", {})
        assert len(await alice.wait_for("note")) == 1  # the new feed delivers
    finally:
        await hub.stop()


@pytest.mark.redis
async def test_a_stopped_hub_leaves_the_redis_channel(redis_url: str, state_key_prefix: str) -> None:
    backend = RedisStateBackend(redis_url, state_key_prefix)
    raw = Redis.from_url(redis_url)

    async def listeners() -> int:
        [(_, count)] = await raw.pubsub_numsub(state_key_prefix + CHANNEL)
        return int(count)

    try:
        hub = AgentHub(backend)
        await hub.start()
        assert await listeners() == 1
        await hub.stop()
        for _ in range(500):  # the server sees the connection close a moment later
            if await listeners() == 0:
                break
            await asyncio.sleep(0.01)
        assert await listeners() == 0
    finally:
        await raw.aclose()
        await backend.close()


# --- replay -------------------------------------------------------------------------------------------------


def _replay_hub(clock: FakeClock, window_s: float = 300.0, buffer_events: int = 64) -> AgentHub:
    return AgentHub(InMemoryStateBackend(), monotonic=clock, window_s=window_s, buffer_events=buffer_events)


def test_replay_returns_the_contiguous_events_after_since() -> None:
    hub = _replay_hub(FakeClock())
    for seq in range(1, 6):
        hub.deliver(_message("alice", seq, n=seq))
    replayed = hub.replay("alice", 2, 5)
    assert _seqs(replayed) == [3, 4, 5]
    assert replayed is not None and [json.loads(item.text)["data"]["n"] for item in replayed] == [3, 4, 5]
    assert _seqs(hub.replay("alice", 0, 3)) == [1, 2, 3]  # up to the counter given
    assert hub.replay("bob", 0, 1) is None  # nothing kept for bob


def test_replay_is_empty_when_the_desktop_is_up_to_date() -> None:
    hub = _replay_hub(FakeClock())
    hub.deliver(_message("alice", 1))
    assert hub.replay("alice", 1, 1) == []
    assert hub.replay("alice", 4, 1) == []  # ahead of the counter (it was reset): nothing to send
    assert hub.replay("bob", 0, 0) == []


def test_replay_is_none_once_the_window_dropped_some_events() -> None:
    clock = FakeClock()
    hub = _replay_hub(clock, window_s=300.0)
    hub.deliver(_message("alice", 1))
    hub.deliver(_message("alice", 2))
    clock.advance(200)
    hub.deliver(_message("alice", 3))
    clock.advance(150)  # 1 and 2 are 350 s old, 3 is 150 s old
    assert hub.replay("alice", 0, 3) is None
    assert _seqs(hub.replay("alice", 2, 3)) == [3]
    clock.advance(200)
    assert hub.replay("alice", 2, 3) is None  # everything aged out


def test_replay_is_none_when_the_buffer_overflowed() -> None:
    hub = _replay_hub(FakeClock(), buffer_events=3)
    for seq in range(1, 6):
        hub.deliver(_message("alice", seq))
    assert hub.replay("alice", 1, 5) is None
    assert _seqs(hub.replay("alice", 2, 5)) == [3, 4, 5]


def test_replay_is_none_when_this_node_missed_an_event() -> None:
    hub = _replay_hub(FakeClock())
    for seq in (1, 2, 4):
        hub.deliver(_message("alice", seq))
    assert hub.replay("alice", 0, 4) is None  # 3 never reached this node
    assert hub.replay("alice", 2, 4) is None
    assert _seqs(hub.replay("alice", 0, 2)) == [1, 2]
    assert hub.replay("alice", 0, 5) is None  # the newest one (5) is not here yet


def test_events_published_out_of_order_are_kept_in_sequence_order() -> None:
    hub = _replay_hub(FakeClock())
    alice = RecordingOutbox("alice")
    hub.add("alice", alice)
    for seq in (1, 3, 2, 5, 4):  # two nodes published at once
        hub.deliver(_message("alice", seq, n=seq))
    assert _seqs(hub.replay("alice", 0, 5)) == [1, 2, 3, 4, 5]
    assert _seqs(hub.replay("alice", 2, 4)) == [3, 4]
    assert [seq for _, seq in alice.received] == [1, 3, 2, 5, 4]  # live delivery as it came


def test_unsequenced_events_are_not_kept_for_replay() -> None:
    hub = _replay_hub(FakeClock())
    hub.deliver(_message("alice", None))
    hub.deliver(_message(EVERYONE, None))
    assert hub.replay("alice", 0, 1) is None


# --- the shared state down --------------------------------------------------------------------------------


async def test_emit_with_the_counter_down_delivers_on_this_node_unsequenced(state_nodes: StateNodes) -> None:
    flaky = FlakyState(state_nodes.backend, "incr")
    hub = AgentHub(flaky.backend)
    await hub.start()
    try:
        events = AgentEvents(flaky.backend, local=hub.deliver)
        alice = RecordingOutbox("alice")
        hub.add("alice", alice)
        assert await events.emit("alice", "call_ended", {"call_id": "c1"}) is None
        assert alice.received == [(alice.events[0], None)] and alice.events[0]["seq"] is None
        assert alice.of("call_ended") == [{"call_id": "c1"}]
        await flush(events, alice)  # the pub/sub still works: the event was not published as well
        assert len(alice.of("call_ended")) == 1
        assert hub.replay("alice", 0, 1) is None  # unsequenced: nothing to replay
    finally:
        await hub.stop()


async def test_emit_with_the_pubsub_down_delivers_on_this_node_with_its_number() -> None:
    flaky = FlakyState(InMemoryStateBackend(), "publish")
    hub = AgentHub(flaky.backend)
    events = AgentEvents(flaky.backend, local=hub.deliver)
    alice = RecordingOutbox("alice")
    hub.add("alice", alice)
    assert await events.emit("alice", "note", {}) == 1
    assert [seq for _, seq in alice.received] == [1]
    assert _seqs(hub.replay("alice", 0, 1)) == [1]
    await events.broadcast("wallboard", {})
    assert alice.kinds() == ["note", "wallboard"]


async def test_emit_with_the_state_down_and_no_local_hub_does_not_raise() -> None:
    events = AgentEvents(FlakyState(InMemoryStateBackend(), "incr", "publish").backend)
    assert await events.emit("alice", "note", {}) is None
    await events.broadcast("wallboard", {})


# --- the call cards ---------------------------------------------------------------------------------------


async def test_cards_are_kept_replaced_listed_oldest_first_and_dropped(state_nodes: StateNodes) -> None:
    events = AgentEvents(state_nodes.backend)
    await events.keep_card("alice", {"call_id": "c2", "rang_at": "2026-01-01T10:05:00+00:00", "status": "ringing"})
    await events.keep_card("alice", {"call_id": "c1", "rang_at": "2026-01-01T10:00:00+00:00", "status": "ringing"})
    await events.keep_card("alice", {"call_id": "c1", "rang_at": "2026-01-01T10:00:00+00:00", "status": "ended"})
    await events.keep_card("bob", {"call_id": "c3", "rang_at": "2026-01-01T10:00:00+00:00"})
    cards = await events.cards("alice")
    assert [(card["call_id"], card.get("status")) for card in cards] == [("c1", "ended"), ("c2", "ringing")]
    assert all("_expires" not in card for card in cards)
    assert await events.card("alice", "c2") == cards[1]
    assert await events.card("alice", "c3") is None  # bob's card is not on alice's screen
    await events.drop_card("alice", "c1")
    await events.drop_card("alice", "never-there")
    assert [card["call_id"] for card in await events.cards("alice")] == ["c2"]
    assert [card["call_id"] for card in await AgentEvents(state_nodes.nodes[-1]).cards("bob")] == ["c3"]


async def test_a_kept_card_expires_after_its_ttl(state_nodes: StateNodes) -> None:
    backend = state_nodes.backend
    events = AgentEvents(backend)
    before = datetime.now(UTC).timestamp()
    await events.keep_card("alice", {"call_id": "c1", "rang_at": "a"})
    stored = json.loads((await backend.hgetall(CARDS_KEY + "alice"))["c1"])
    assert before + CARD_TTL_S <= stored["_expires"] <= datetime.now(UTC).timestamp() + CARD_TTL_S
    past = datetime.now(UTC).timestamp() - 1
    await backend.hset(CARDS_KEY + "alice", {"c0": json.dumps({"call_id": "c0", "rang_at": "0", "_expires": past})})
    assert [card["call_id"] for card in await events.cards("alice")] == ["c1"]
    assert sorted(await backend.hgetall(CARDS_KEY + "alice")) == ["c1"]  # the expired one was removed on the way


async def test_cards_with_the_state_down_are_not_kept_and_nothing_raises() -> None:
    flaky = FlakyState(InMemoryStateBackend(), "hset", "hdel")
    events = AgentEvents(flaky.backend)
    await events.keep_card("alice", {"call_id": "c1"})
    await events.drop_card("alice", "c1")
    assert await events.cards("alice") == []
    flaky.down.add("hgetall")
    with pytest.raises(StateUnavailable):
        await events.cards("alice")
