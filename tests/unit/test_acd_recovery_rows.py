"""What a killed server leaves in the database and the shared state: open call rows, a heartbeat that stops.

Rows are closed once, as ``interrupted``, when their channel is absent from Asterisk (the scripted AMI peer)
through the grace, whoever sweeps and however often; a restarted server reuses a channel's row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest
from sqlalchemy import func, select

from cti.acd.liveness import NodeHeartbeat, check_timing
from cti.acd.open_rows import GRACE_S, OpenRowSweeper
from cti.ami import AmiClient
from cti.call_records import INTERRUPTED, close_call, open_call
from cti.channels import ChannelTracker, LiveChannel
from cti.db import Database
from cti.db.models import CallRecord
from cti.settings import AmiSettings
from cti.state import InMemoryStateBackend
from tests.fakes.ami_peer import AmiPeer
from tests.support.acd import Clocks

DEAD, LIVE, HELD = "1732350000.1", "1732350000.2", "1732350000.3"


@pytest.fixture
async def tracker() -> AsyncIterator[tuple[AmiPeer, ChannelTracker]]:
    peer = AmiPeer()
    peer.channels = [{"Channel": "PJSIP/trunk-0002", "Uniqueid": LIVE, "ChannelStateDesc": "Up"}]
    await peer.start()
    ami = AmiClient(AmiSettings(port=peer.port, secret=peer.secret, reconnect_min=0.01, reconnect_max=0.05))
    channels = ChannelTracker(ami)
    await ami.start()
    await ami.wait_connected(5)
    yield peer, channels
    await ami.stop()
    await peer.close()


async def _rows(db: Database, *uniqueids: str) -> None:
    for uniqueid in uniqueids:
        await open_call(db, CallRecord(uniqueid=uniqueid, channel=f"PJSIP/trunk-{uniqueid}", outcome="queued",
                                       queue="support"))


async def _row(db: Database, uniqueid: str) -> CallRecord:
    async with db.session() as session:
        found = (await session.scalars(select(CallRecord).where(CallRecord.uniqueid == uniqueid))).one()
    return found


def _sweeper(db: Database, channels: ChannelTracker | None, clock: Clocks) -> OpenRowSweeper:
    return OpenRowSweeper(db, channels, lambda uniqueid: uniqueid == HELD, clock.monotonic)


async def test_rows_of_gone_channels_are_closed_once_after_the_grace(
    database: Database, tracker: tuple[AmiPeer, ChannelTracker]
) -> None:
    _, channels = tracker
    await _rows(database, DEAD, LIVE, HELD)
    clock = Clocks()
    first, second = _sweeper(database, channels, clock), _sweeper(database, channels, clock)  # two nodes
    assert await first.sweep() == 0  # absent once: it may be a live node closing it right now
    assert (await _row(database, DEAD)).ended_at is None

    clock.advance(GRACE_S)
    assert await first.sweep() == 1
    closed = await _row(database, DEAD)
    assert closed.outcome == INTERRUPTED and closed.ended_at is not None

    await second.sweep()
    clock.advance(GRACE_S)
    assert await second.sweep() == 0 and await first.sweep() == 0
    assert (await _row(database, DEAD)).ended_at == closed.ended_at  # closed once
    for kept in (LIVE, HELD):  # a live channel, a call this node holds
        assert (await _row(database, kept)).ended_at is None


async def test_a_row_its_script_closes_during_the_grace_keeps_its_outcome(
    database: Database, tracker: tuple[AmiPeer, ChannelTracker]
) -> None:
    _, channels = tracker
    await _rows(database, DEAD)
    clock = Clocks()
    sweeper = _sweeper(database, channels, clock)
    await sweeper.sweep()
    await close_call(database, (await _row(database, DEAD)).id, "abandoned", ["queue:support"])
    clock.advance(GRACE_S)
    assert await sweeper.sweep() == 0
    assert (await _row(database, DEAD)).outcome == "abandoned"


async def test_a_channel_seen_again_restarts_its_grace(
    database: Database, tracker: tuple[AmiPeer, ChannelTracker]
) -> None:
    peer, channels = tracker
    await _rows(database, DEAD)
    clock = Clocks()
    sweeper = _sweeper(database, channels, clock)
    await sweeper.sweep()
    peer.channels = [{"Channel": "PJSIP/trunk-0001", "Uniqueid": DEAD}]
    clock.advance(GRACE_S)
    await sweeper.sweep()
    peer.channels = []
    assert await sweeper.sweep() == 0
    clock.advance(GRACE_S)
    assert await sweeper.sweep() == 1


class _Blind:
    """AMI down: Asterisk cannot be asked."""

    async def snapshot(self) -> Mapping[str, LiveChannel] | None:
        return None


async def test_without_ami_no_row_is_closed(database: Database) -> None:
    await _rows(database, DEAD)
    clock = Clocks()
    sweeper = OpenRowSweeper(database, _Blind(), lambda uniqueid: False, clock.monotonic)
    for _ in range(3):
        assert await sweeper.sweep() == 0
        clock.advance(GRACE_S)
    assert (await _row(database, DEAD)).ended_at is None


async def test_a_channel_coming_back_to_a_script_keeps_its_one_row(database: Database) -> None:
    """After a crash the dialplan sends the caller to voicemail: the restarted server must reuse the row."""
    record = CallRecord(uniqueid=DEAD, channel="PJSIP/trunk-0001", outcome="queued")
    first = await open_call(database, record)
    again = await open_call(database, CallRecord(uniqueid=DEAD, channel="PJSIP/trunk-0001"))
    assert again == first
    async with database.session() as session:
        count = await session.scalar(select(func.count()).select_from(CallRecord)
                                     .where(CallRecord.uniqueid == DEAD))
    assert count == 1
    assert (await _row(database, DEAD)).outcome == "queued"  # the row is reused, not overwritten


# --- heartbeats ---------------------------------------------------------------------------------------


async def test_a_node_is_dead_once_its_heartbeat_expires() -> None:
    clock = Clocks()
    state = InMemoryStateBackend(clock=clock.monotonic)
    node, watcher = NodeHeartbeat(state, "node-a", clock.wall), NodeHeartbeat(state, "node-b", clock.wall)
    assert not await watcher.alive("node-a")
    await node.beat()
    clock.advance(node.ttl_s - 1)
    assert await watcher.alive("node-a")
    await node.beat()
    clock.advance(node.ttl_s - 1)
    assert await watcher.alive("node-a")  # kept alive by its beats
    clock.advance(2)
    assert not await watcher.alive("node-a")
    assert not await watcher.alive("")  # a status seeded from the database: nobody holds it


async def test_a_clean_stop_removes_the_heartbeat_at_once() -> None:
    clock = Clocks()
    state = InMemoryStateBackend(clock=clock.monotonic)
    node = NodeHeartbeat(state, "node-a", clock.wall)
    await node.beat()
    await node.stop()
    assert not await NodeHeartbeat(state, "node-b", clock.wall).alive("node-a")


@pytest.mark.parametrize(("every", "ttl"), [(0.0, 15.0), (5.0, 9.9), (-1.0, 15.0)])
def test_heartbeat_figures_that_would_kill_a_live_node_are_refused(every: float, ttl: float) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        check_timing(every, ttl)
    with pytest.raises(ValueError, match="heartbeat"):
        NodeHeartbeat(InMemoryStateBackend(), "n", Clocks().wall, every_s=every, ttl_s=ttl)
