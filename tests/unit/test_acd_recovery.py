"""Agents left ringing or on a call by a server node that died: released once Asterisk says the call is over.

The ACD runs on a test database (SQLite and PostgreSQL) with its AMI client talking to the scripted peer:
``peer.channels`` is what Asterisk lists (CoreShowChannels). Orphan agents are made by writing a status
owned by a node without a heartbeat, as a killed process leaves it; passes are run by hand
(``upkeep.once``) unless the test is about what triggers them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest

from cti.acd.liveness import NodeHeartbeat
from cti.acd.model import AgentState
from cti.acd.recovery import SETTLE_S, STALE_RINGING_S, Verdict, verdict
from cti.acd.service import AcdService
from cti.acd.shared import AgentStatus
from cti.ami import AmiClient
from cti.call_records import open_call
from cti.channels import ChannelTracker, LiveChannel
from cti.db import Database
from cti.db.models import CallRecord
from cti.settings import AmiSettings
from cti.state import InMemoryStateBackend
from tests.fakes.ami_peer import AmiPeer, wait_until
from tests.support.acd import NODE, Desk, make_desk, queue

CALL = "1732350000.77"
GONE = "node-killed"  # no heartbeat: what a kill -9 leaves behind
WRAP_UP_S = 30  # the queue's (the default would be 15)


@dataclass
class Rig:
    desk: Desk
    peer: AmiPeer
    ami: AmiClient
    tracker: ChannelTracker

    @property
    def acd(self) -> AcdService:
        return self.desk.acd

    def caller(self, application: str = "Dial", bridge: str = "", uniqueid: str = CALL) -> None:
        """Asterisk lists the caller's channel (and nothing else)."""
        self.peer.channels = [{"Channel": "Local/support@cti-queue-0001;2", "Uniqueid": uniqueid,
                               "ChannelStateDesc": "Up", "Application": application, "BridgeId": bridge}]

    def hang_up(self) -> None:
        self.peer.channels = []

    async def orphan(self, agent_id: str, state: AgentState, *, node: str = GONE, age_s: float = 60.0,
                     misses: int = 0) -> None:
        """The shared status a dead node left: ``agent_id`` ringing or talking for CALL since ``age_s``."""
        await self.acd.login(agent_id)
        since = self.desk.clock.wall() - age_s
        await self.acd.board.change(agent_id, lambda current: replace(
            current, state=state, call=CALL, node=node, since=since, misses=misses))
        await self.acd._resync()

    def state(self, agent_id: str = "alice") -> AgentState:
        return self.desk.status(agent_id).state


def _service(desk: Desk, ami: AmiClient, tracker: ChannelTracker, state: InMemoryStateBackend) -> AcdService:
    return AcdService(desk.store, desk.acd.board.__class__(state, wall_clock=desk.clock.wall), state, desk.db, ami,
                      node_id=NODE, monotonic=desk.clock.monotonic, channels=tracker)


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    ami_peer = AmiPeer()
    ami_peer.script("Redirect", [{"Response": "Success", "Message": "Redirect successful"}])
    await ami_peer.start()
    yield ami_peer
    await ami_peer.close()


@pytest.fixture
async def rig(database: Database, peer: AmiPeer) -> AsyncIterator[Rig]:
    ami = AmiClient(AmiSettings(port=peer.port, secret=peer.secret, reconnect_min=0.01, reconnect_max=0.05))
    tracker = ChannelTracker(ami)
    await ami.start()
    await ami.wait_connected(5)
    desk = await make_desk(database, (queue(wrap_up_s=WRAP_UP_S),))
    desk.acd = _service(desk, ami, tracker, desk.state)
    await desk.acd.reload()
    await desk.acd._seed_statuses()
    await open_call(database, CallRecord(uniqueid=CALL, channel="Local/support@cti-queue-0001;2", queue="support",
                                         outcome="queued"))
    yield Rig(desk, peer, ami, tracker)
    await desk.acd.stop()
    await ami.stop()


# --- the rule, case by case ----------------------------------------------------------------------------


def _status(state: AgentState, age_s: float) -> AgentStatus:
    return AgentStatus("alice", state=state, call=CALL, node=GONE, since=1000.0 - age_s)


def _channel(application: str, bridge: str = "") -> LiveChannel:
    return LiveChannel(CALL, "Local/x;2", "", "Up", CALL, application=application, bridge_id=bridge)


RINGING, ON_CALL = AgentState.RINGING, AgentState.ON_CALL


@pytest.mark.parametrize(("state", "channel", "age_s", "expected"), [
    (RINGING, None, 1.0, Verdict.RELEASE),  # the caller is gone: whatever its age, the ring is over
    (ON_CALL, None, 1.0, Verdict.FINISH),
    (RINGING, _channel("Dial", "bridge-1"), 60.0, Verdict.ANSWERED),  # answered after the node died
    (ON_CALL, _channel("Dial", "bridge-1"), 60.0, Verdict.KEEP),  # still talking
    (RINGING, _channel("Dial"), 60.0, Verdict.KEEP),  # still ringing
    (RINGING, _channel("AGI"), 60.0, Verdict.RELEASE),  # in voicemail now: the ring is over
    (ON_CALL, _channel("AGI"), 60.0, Verdict.FINISH),  # the agent hung up, the caller went on
    (RINGING, _channel("MusicOnHold"), SETTLE_S - 1, Verdict.KEEP),  # the owner may be about to dial
    (RINGING, _channel(""), STALE_RINGING_S - 1, Verdict.KEEP),  # Asterisk does not say: no guess
    (RINGING, _channel(""), STALE_RINGING_S + 1, Verdict.RELEASE),  # longer than any ring timeout
])  # fmt: skip
def test_what_becomes_of_an_orphan_agent(state: AgentState, channel: LiveChannel | None, age_s: float,
                                         expected: Verdict) -> None:
    assert verdict(_status(state, age_s), channel, 1000.0) is expected


# --- on a desk ---------------------------------------------------------------------------------------


async def test_ringing_for_a_dead_node_is_freed_once_the_caller_is_gone_without_a_miss(rig: Rig) -> None:
    await rig.orphan("alice", RINGING, misses=1)
    rig.caller("Dial")  # the agent's phone still rings for the caller
    await rig.acd.upkeep.once()
    assert rig.state() is RINGING

    rig.hang_up()
    await rig.acd.upkeep.once()
    after = await rig.desk.board_status("alice")
    assert (after.state, after.call, after.misses) == (AgentState.AVAILABLE, "", 1)  # no miss counted
    assert rig.desk.status("alice") == after


async def test_on_call_for_a_dead_node_stays_while_bridged_then_wraps_up(rig: Rig) -> None:
    await rig.orphan("alice", ON_CALL)
    rig.caller("Dial", bridge="bridge-1")
    await rig.acd.upkeep.once()
    await rig.acd.upkeep.once()
    assert rig.state() is ON_CALL

    rig.hang_up()
    await rig.acd.upkeep.once()
    after = await rig.desk.board_status("alice")
    assert after.state is AgentState.WRAP_UP
    assert after.until == rig.desk.clock.wall() + WRAP_UP_S  # the call's queue's wrap-up (from its row)
    assert (await rig.desk.row(CALL)).agent_id == "alice"  # the dead node may not have written who answered


async def test_a_ringing_agent_whose_caller_is_bridged_is_on_call(rig: Rig) -> None:
    await rig.orphan("alice", RINGING)
    rig.caller("Dial", bridge="bridge-1")
    await rig.acd.upkeep.once()
    assert rig.state() is ON_CALL


async def test_a_ringing_agent_whose_caller_went_to_voicemail_is_freed(rig: Rig) -> None:
    await rig.orphan("alice", RINGING, age_s=SETTLE_S / 2)
    rig.caller("AGI")
    await rig.acd.upkeep.once()
    assert rig.state() is RINGING  # too young: its node could still be dialling

    rig.desk.clock.advance(SETTLE_S)
    await rig.acd.upkeep.once()
    assert rig.state() is AgentState.AVAILABLE


async def test_agents_of_a_live_node_are_left_to_it_until_its_heartbeat_stops(rig: Rig) -> None:
    other = NodeHeartbeat(rig.desk.state, "node-other", rig.desk.clock.wall)
    await other.beat()
    await rig.orphan("alice", RINGING, node="node-other")
    rig.hang_up()
    await rig.acd.upkeep.once()
    assert rig.state() is RINGING

    rig.desk.clock.advance(other.ttl_s + 1)  # killed: no more beats, the key expires
    await rig.acd.upkeep.once()
    assert rig.state() is AgentState.AVAILABLE


async def test_this_node_frees_an_agent_of_a_call_it_no_longer_holds(rig: Rig) -> None:
    """A restart that kept its node id: the status names this node, but the call is not among its calls."""
    await rig.orphan("alice", ON_CALL, node=NODE)
    rig.hang_up()
    await rig.acd.upkeep.once()
    assert rig.state() is AgentState.WRAP_UP


async def test_a_call_this_node_holds_is_never_touched(rig: Rig) -> None:
    await rig.acd.login("alice")
    call = await rig.desk.join()
    await rig.desk.route()
    rig.acd.start_dialing(call)
    await rig.acd.answered(call)
    rig.hang_up()  # not even listed: still ours to end
    await rig.acd.upkeep.once()
    assert rig.state() is ON_CALL


async def test_without_ami_nothing_is_freed_and_the_next_resync_frees_it(rig: Rig) -> None:
    heartbeat = rig.acd.upkeep.heartbeat
    heartbeat.every_s, heartbeat.ttl_s = 600.0, 1800.0  # no periodic pass during the test: only the resync
    await rig.orphan("alice", RINGING)
    rig.hang_up()
    rig.peer.script("CoreShowChannels", [{"Response": "Error", "Message": "Permission denied"}])
    await rig.acd.start()
    await wait_until(lambda: rig.acd.upkeep.passes >= 1)
    assert rig.state() is RINGING  # AMI could not say: no guess

    del rig.peer._scripts["coreshowchannels"]
    await rig.peer.drop()  # the AMI link comes back: the tracker's resync runs a pass at once
    await wait_until(lambda: rig.state() is AgentState.AVAILABLE)


async def test_a_restart_keeps_an_agent_still_talking_on_call(rig: Rig, database: Database) -> None:
    """One node on the in-process state, restarted while alice talks: the bridge outlives the process."""
    await rig.acd.login("alice")
    call = await rig.desk.join(uniqueid="1732350000.91")
    await rig.desk.route()
    rig.acd.start_dialing(call)
    await rig.acd.answered(call)
    await _saved(rig, "on_call")

    state = InMemoryStateBackend(clock=rig.desk.clock.monotonic)  # the old process and its memory are gone
    rig.desk.acd = _service(rig.desk, rig.ami, rig.tracker, state)
    await rig.acd.reload()
    await rig.acd._seed_statuses()
    rig.caller("Dial", bridge="bridge-9", uniqueid=call.id)
    await rig.acd.upkeep.once()
    assert (rig.state(), rig.desk.status("alice").call) == (ON_CALL, call.id)

    rig.hang_up()
    await rig.acd.upkeep.once()
    assert rig.state() is AgentState.WRAP_UP
    await _saved(rig, "wrap_up")


async def _saved(rig: Rig, state: str) -> None:
    """The agent's state reaches the database in the background: poll it (with a deadline)."""
    async with asyncio.timeout(5):
        while (await rig.desk.store.load_statuses())["alice"].state.value != state:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # written by a background task: no event to wait on


async def test_the_callers_hang_up_frees_the_agent_without_waiting_for_the_next_beat(rig: Rig) -> None:
    heartbeat = rig.acd.upkeep.heartbeat
    heartbeat.every_s, heartbeat.ttl_s = 600.0, 1800.0  # no periodic pass during the test: only the event
    await rig.orphan("alice", ON_CALL)
    rig.caller("Dial", bridge="bridge-1")
    await rig.acd.start()
    await wait_until(lambda: rig.acd.upkeep.passes >= 1)
    assert rig.state() is ON_CALL

    rig.hang_up()
    await rig.peer.emit({"Event": "Hangup", "Uniqueid": CALL, "Channel": "Local/support@cti-queue-0001;2"})
    await wait_until(lambda: rig.state() is AgentState.WRAP_UP)


class HeardRecoveries:
    """A call listener that only notes what the recovery tells it (the other hooks are not part of this test)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str, Verdict]] = []

    async def recovered(self, call_id: str, agent_id: str, outcome: Verdict) -> None:
        self.heard.append((call_id, agent_id, outcome))

    def __getattr__(self, hook: str) -> object:
        async def ignored(*args: object) -> None:
            return None
        return ignored


async def test_the_listeners_hear_what_became_of_a_dead_nodes_call(rig: Rig) -> None:
    listener = HeardRecoveries()
    rig.acd.listeners.append(listener)  # type: ignore[arg-type]  # a partial listener, on purpose
    await rig.orphan("alice", RINGING)
    rig.caller("Dial", bridge="bridge-1")
    await rig.acd.upkeep.once()  # answered after the node died
    rig.caller("Dial", bridge="bridge-1")
    await rig.acd.upkeep.once()  # still talking: nothing to tell
    rig.hang_up()
    await rig.acd.upkeep.once()  # over
    await wait_until(lambda: len(listener.heard) >= 2)
    assert listener.heard == [(CALL, "alice", Verdict.ANSWERED), (CALL, "alice", Verdict.FINISH)]

    await rig.orphan("bob", RINGING)
    await rig.acd.upkeep.once()  # the caller is gone: the ring is over
    await wait_until(lambda: len(listener.heard) >= 3)
    assert listener.heard[2] == (CALL, "bob", Verdict.RELEASE)
