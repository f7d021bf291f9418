"""One desktop's outbox: events held while its first messages are prepared, then sent once and in order; a
desktop that stops reading is closed (4000) instead of slowing the node; closing stops the sender."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest
from aiohttp import web

from cti.agents.outbox import RESYNC_CLOSE_CODE, SocketOutbox
from tests.support.desktop import FakeWebSocket, wait_until


def _outbox(ws: FakeWebSocket, limit: int = 256) -> SocketOutbox:
    return SocketOutbox(cast(web.WebSocketResponse, ws), limit)


def _senders() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == "desktop-sender" and not task.done()]


@pytest.fixture
async def ws() -> AsyncIterator[FakeWebSocket]:
    socket = FakeWebSocket()
    yield socket
    assert _senders() == [], "a test left a sender running"


async def test_held_events_follow_the_first_messages_without_those_the_replay_carried(ws: FakeWebSocket) -> None:
    outbox = _outbox(ws)
    for text, seq in (("e1", 1), ("e2", 2), ("note", None), ("e3", 3), ("e4", 4)):
        assert outbox.push(text, seq) is True
    assert ws.sent == [] and _senders() == []  # held until open
    outbox.open(["hello", "replay-1", "replay-2"], sent_up_to=2)
    await wait_until(lambda: len(ws.sent) == 6, "the first messages and the held events")
    assert ws.sent == ["hello", "replay-1", "replay-2", "note", "e3", "e4"]
    assert outbox.push("e5", 5) and outbox.push("live", None)
    await wait_until(lambda: len(ws.sent) == 8, "the live events")
    assert ws.sent[6:] == ["e5", "live"]
    await outbox.aclose()


async def test_without_a_replay_every_held_event_is_sent(ws: FakeWebSocket) -> None:
    outbox = _outbox(ws)
    outbox.push("e7", 7)
    outbox.push("e8", 8)
    outbox.open(["hello"], sent_up_to=None)
    await wait_until(lambda: len(ws.sent) == 3, "hello and the held events")
    assert ws.sent == ["hello", "e7", "e8"]
    await outbox.aclose()


async def test_a_reply_is_queued_behind_what_is_on_its_way(ws: FakeWebSocket) -> None:
    outbox = _outbox(ws)
    outbox.open(["hello"], sent_up_to=0)
    outbox.push("e1", 1)
    outbox.send_now("reply")
    outbox.push("e2", 2)
    await wait_until(lambda: len(ws.sent) == 4, "everything")
    assert ws.sent == ["hello", "e1", "reply", "e2"]
    await outbox.aclose()


async def test_a_desktop_that_stops_reading_before_open_is_closed_for_resync(ws: FakeWebSocket) -> None:
    outbox = _outbox(ws, limit=3)
    assert all(outbox.push(f"e{seq}", seq) for seq in (1, 2, 3))
    assert outbox.push("e4", 4) is False
    assert outbox.dropped is True
    await wait_until(lambda: ws.close_codes != [], "the close")
    assert ws.close_codes == [RESYNC_CLOSE_CODE] == [4000]
    assert outbox.push("e5", 5) is False
    outbox.close_for_resync()  # again: still one close
    await asyncio.sleep(0)  # one turn of the loop: a second close task would have run
    assert ws.close_codes == [4000]


async def test_a_desktop_that_stops_reading_after_open_is_closed_and_its_sender_ends() -> None:
    gate = asyncio.Event()
    ws = FakeWebSocket(gate=gate)
    outbox = _outbox(ws, limit=2)
    outbox.open([], sent_up_to=None)
    assert outbox.push("e1", 1)
    await wait_until(lambda: ws.attempts == 1, "the sender stuck on e1")
    assert outbox.push("e2", 2) and outbox.push("e3", 3)  # two waiting: the limit
    assert outbox.push("e4", 4) is False
    await wait_until(lambda: ws.close_codes == [4000], "the close for resync")
    outbox.send_now("reply")  # dropped: nothing more is queued
    gate.set()
    await asyncio.wait_for(outbox.aclose(), 5)
    assert ws.sent == ["e1"]  # the socket closed: the rest is not sent
    assert _senders() == []


async def test_aclose_stops_the_sender_and_later_pushes_are_refused(ws: FakeWebSocket) -> None:
    outbox = _outbox(ws)
    outbox.open(["hello"], sent_up_to=None)
    await wait_until(lambda: ws.sent == ["hello"], "hello")
    assert len(_senders()) == 1
    await asyncio.wait_for(outbox.aclose(), 5)
    assert _senders() == []
    assert outbox.push("late", 9) is False
    outbox.send_now("late reply")
    assert ws.sent == ["hello"] and ws.close_codes == []  # aclose leaves the socket to its handler


async def test_aclose_before_open_is_harmless(ws: FakeWebSocket) -> None:
    outbox = _outbox(ws)
    outbox.push("e1", 1)
    await asyncio.wait_for(outbox.aclose(), 5)
    assert outbox.push("e2", 2) is False and ws.sent == []


async def test_a_browser_gone_mid_send_ends_the_sender() -> None:
    ws = FakeWebSocket(broken=True)
    outbox = _outbox(ws)
    outbox.open(["hello", "e1"], sent_up_to=None)
    await wait_until(lambda: _senders() == [], "the sender to end")
    assert (ws.attempts, ws.sent) == (1, [])
    await asyncio.wait_for(outbox.aclose(), 5)
