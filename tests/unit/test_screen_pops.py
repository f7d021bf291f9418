"""Screen pops on the live test ACD (SQLite and PostgreSQL, no AMI): the ACD's call steps become events on the
desktops of the agents concerned, and only theirs, in the order the ACD saw them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from cti.acd.calls import QueuedCall
from cti.acd.recovery import Verdict
from cti.agents.cards import CardBuilder, RingingCall
from cti.contacts.directory import CallerDirectory
from cti.db import Database
from cti.db.base import utcnow
from tests.support.acd import make_desk, queue
from tests.support.desktop import DesktopRig, add_known_caller, flush, start_rig, wait_until

SUPPORT = queue(wrap_up_s=30, ring_timeout_s=25, max_misses=3)
CALLER = "0612345678"


@pytest.fixture
async def rig(database: Database) -> AsyncIterator[DesktopRig]:
    started = await start_rig(await make_desk(database, (SUPPORT,)))
    yield started
    await started.stop()


async def _ring(rig: DesktopRig, agent_id: str = "alice", caller: str = CALLER, waited_s: int = 0) -> QueuedCall:
    """``agent_id`` logged in (alone unless others are), a caller joins, a routing pass reserves the agent."""
    if rig.desk.status(agent_id).state.value == "logged_out":
        await rig.acd.login(agent_id)
    call = await rig.desk.join(caller=caller)
    call.joined = utcnow() - timedelta(seconds=waited_s)
    await rig.desk.route()
    assert call.agent_id == agent_id
    return call


def _call_events(rig: DesktopRig, agent_id: str) -> list[str]:
    return rig.box(agent_id).kinds("call_")


# --- ringing ------------------------------------------------------------------------------------------------


async def test_the_ringing_card_goes_to_the_reserved_agent_only(rig: DesktopRig) -> None:
    contact_id = await add_known_caller(rig.desk.db, "+33612345678", name="Jeanne Martin", contract_level="gold")
    await rig.acd.login("bob")
    call = await _ring(rig, "alice", waited_s=42)  # alice's skill beats bob's
    card = await rig.event("alice", "call_ringing", call.id)

    assert (card["call_id"], card["agent_id"], card["status"], card["queue"]) == (call.id, "alice", "ringing",
                                                                                  "support")
    assert (card["caller"]["received"], card["caller"]["number"]) == (CALLER, "+33612345678")
    assert (card["known"], card["contact"], card["contract_level"]) == (True, {"id": contact_id, "name":
                                                                               "Jeanne Martin"}, "gold")
    assert 42 <= card["waited_s"] < 100
    assert card["record_id"] == (await rig.desk.row(call)).id
    assert card["ivr"]["path"] == ["welcome", "queue:support"]  # the row's steps, each once
    assert await rig.events.cards("alice") == [card]  # kept for a desktop that connects later

    await rig.settle()
    assert _call_events(rig, "alice") == ["call_ringing"]
    assert _call_events(rig, "bob") == [] and await rig.events.cards("bob") == []
    [(_, seq)] = [(event, seq) for event, seq in rig.box("alice").received if event["type"] == "call_ringing"]
    assert seq is not None and seq == await rig.events.last_seq("alice")
    assert rig.box("alice").saw("agent_state", state="ringing", call=call.id)  # the ACD's own state, too


async def test_answered_turns_the_card_answered(rig: DesktopRig) -> None:
    call = await _ring(rig)
    await rig.event("alice", "call_ringing", call.id)
    rig.acd.start_dialing(call)
    await rig.acd.answered(call)
    answered = await rig.event("alice", "call_answered", call.id)
    assert answered["answered_at"]
    [card] = await rig.events.cards("alice")
    assert (card["status"], card["answered_at"]) == ("answered", answered["answered_at"])
    await rig.settle()
    assert _call_events(rig, "alice") == ["call_ringing", "call_answered"]
    assert _call_events(rig, "bob") == []


async def test_an_agent_who_let_it_ring_has_the_call_withdrawn_and_the_next_one_gets_it(rig: DesktopRig) -> None:
    call = await _ring(rig, "bob")
    await rig.event("bob", "call_ringing", call.id)
    assert await rig.desk.connect(call, "NOANSWER") is False  # back in the queue
    withdrawn = await rig.event("bob", "call_withdrawn", call.id)
    assert withdrawn == {"call_id": call.id, "reason": "not_answered", "status": "NOANSWER"}
    assert await rig.events.cards("bob") == []

    await rig.acd.login("alice")
    await rig.desk.route()
    assert call.agent_id == "alice"
    await rig.event("alice", "call_ringing", call.id)
    rig.acd.start_dialing(call)
    await rig.acd.answered(call)
    await rig.event("alice", "call_answered", call.id)
    await rig.settle()
    assert _call_events(rig, "bob") == ["call_ringing", "call_withdrawn"]  # nothing more once withdrawn
    assert _call_events(rig, "alice") == ["call_ringing", "call_answered"]


async def test_the_caller_hanging_up_while_the_agent_rings_withdraws_the_call(rig: DesktopRig) -> None:
    call = await _ring(rig)
    await rig.event("alice", "call_ringing", call.id)
    await rig.acd.caller_left(call)
    assert await rig.event("alice", "call_withdrawn", call.id) == {"call_id": call.id, "reason": "caller_hung_up"}
    assert await rig.events.cards("alice") == []
    await rig.settle()
    assert call.id not in rig.pops._showing  # nothing left behind for a call that is gone


async def test_the_caller_choosing_voicemail_while_the_agent_rings_withdraws_the_call(rig: DesktopRig) -> None:
    call = await _ring(rig)
    await rig.acd.caller_left(call, "to_voicemail")
    assert await rig.event("alice", "call_withdrawn", call.id) == {"call_id": call.id, "reason": "to_voicemail"}


async def test_a_caller_leaving_before_any_agent_rang_pops_nothing(rig: DesktopRig) -> None:
    await rig.acd.login("alice")
    await rig.acd.pause("alice", "lunch")
    call = await rig.desk.join(caller=CALLER)
    await rig.desk.route()
    await rig.acd.caller_left(call)
    await rig.settle()
    assert _call_events(rig, "alice") == [] and _call_events(rig, "bob") == []


async def test_the_end_of_the_call_leaves_the_card_ended(rig: DesktopRig) -> None:
    call = await _ring(rig)
    await rig.event("alice", "call_ringing", call.id)
    assert await rig.desk.connect(call, talk_s=95) is True
    ended = await rig.event("alice", "call_ended", call.id)
    assert (ended["talk_s"], bool(ended["ended_at"])) == (95.0, True)
    [card] = await rig.events.cards("alice")
    assert (card["status"], card["talk_s"], card["ended_at"]) == ("ended", 95.0, ended["ended_at"])
    assert card["answered_at"]
    await rig.settle()
    assert _call_events(rig, "alice") == ["call_ringing", "call_answered", "call_ended"]
    seqs = [seq for event, seq in rig.box("alice").received if event["type"].startswith("call_") and seq]
    assert len(seqs) == 3 and seqs == sorted(set(seqs))  # numbered, increasing


# --- ordering ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatedCards(CardBuilder):
    """Builds a card only once ``gate`` is open: the answer comes while the ringing card is being built."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def build(self, call: RingingCall) -> dict[str, object]:
        self.started.set()
        await self.gate.wait()
        return await super().build(call)


async def test_an_answer_issued_before_the_ringing_card_is_built_still_comes_after_it(database: Database) -> None:
    cards = GatedCards(database, CallerDirectory(database, "FR"))
    rig = await start_rig(await make_desk(database, (SUPPORT,)), cards=cards)
    try:
        call = await _ring(rig)
        rig.acd.start_dialing(call)
        await rig.acd.answered(call)  # right after the ringing, before its card exists
        await wait_until(cards.started.is_set, "the ringing card being built")
        await flush(rig.events, rig.box("alice"))
        assert _call_events(rig, "alice") == []  # the answer waits for the ringing
        cards.gate.set()
        await rig.event("alice", "call_answered", call.id)
        await rig.settle()
        assert _call_events(rig, "alice") == ["call_ringing", "call_answered"]
        [card] = await rig.events.cards("alice")
        assert card["status"] == "answered"  # the answer updated the card the ringing kept
        assert rig.pops._chains == {}  # the call's chain is forgotten once its steps are done
    finally:
        await rig.stop()


async def test_a_failed_step_does_not_stop_the_next(rig: DesktopRig, caplog: pytest.LogCaptureFixture) -> None:
    call = await _ring(rig, caller="0600000001")
    await rig.event("alice", "call_ringing", call.id)

    async def broken(_call: RingingCall) -> dict[str, object]:
        raise RuntimeError("the database is gone")

    object.__setattr__(rig.pops.cards, "build", broken)  # the next ringing card cannot be built
    await rig.acd.login("bob")
    second = await rig.desk.join(caller="0600000002")
    await rig.desk.route()
    assert second.agent_id == "bob"
    rig.acd.start_dialing(second)
    await rig.acd.answered(second)
    await rig.event("bob", "call_answered", second.id)
    await rig.settle()
    assert _call_events(rig, "bob") == ["call_answered"]  # no card, but the desktop still hears of the answer
    assert await rig.events.cards("bob") == []
    assert "screen pop step failed" in caplog.text


# --- several agents shown one call -------------------------------------------------------------------------


async def test_an_answer_withdraws_the_call_from_every_other_agent_showing_it(rig: DesktopRig) -> None:
    """The ACD rings one agent at a time; the pops still clean up if two were shown the call (a late step)."""
    call = await rig.desk.join(caller=CALLER)
    await rig.pops.ringing(call, "bob")
    await rig.pops.ringing(call, "alice")
    await rig.pops.answered(call, "alice")
    withdrawn = await rig.event("bob", "call_withdrawn", call.id)
    assert withdrawn == {"call_id": call.id, "reason": "answered_elsewhere", "by": "alice"}
    await rig.event("alice", "call_answered", call.id)
    assert await rig.events.cards("bob") == []
    assert [card["status"] for card in await rig.events.cards("alice")] == ["answered"]
    await rig.pops.ended(call, "alice", 12.0)
    await rig.event("alice", "call_ended", call.id)
    await rig.settle()
    assert _call_events(rig, "bob") == ["call_ringing", "call_withdrawn"]


# --- a dead node's call, settled by the recovery ------------------------------------------------------------


async def test_a_ring_ended_by_the_recovery_is_withdrawn_as_interrupted(rig: DesktopRig) -> None:
    call = await _ring(rig)
    await rig.event("alice", "call_ringing", call.id)
    await rig.pops.recovered(call.id, "alice", Verdict.RELEASE)
    assert await rig.event("alice", "call_withdrawn", call.id) == {"call_id": call.id, "reason": "interrupted"}
    assert await rig.events.cards("alice") == []
    assert call.id not in rig.pops._showing


async def test_a_conversation_ended_by_the_recovery_turns_ended_without_a_talk_time(rig: DesktopRig) -> None:
    call = await _ring(rig)
    rig.acd.start_dialing(call)
    await rig.acd.answered(call)
    await rig.event("alice", "call_answered", call.id)
    await rig.pops.recovered(call.id, "alice", Verdict.FINISH)
    ended = await rig.event("alice", "call_ended", call.id)
    assert set(ended) == {"call_id", "ended_at"}  # nobody timed the end: no made-up talk time
    [card] = await rig.events.cards("alice")
    assert (card["status"], card["ended_at"], "talk_s" in card) == ("ended", ended["ended_at"], False)


async def test_an_answer_seen_only_by_the_recovery_turns_the_card_answered(rig: DesktopRig) -> None:
    call = await _ring(rig)
    await rig.event("alice", "call_ringing", call.id)
    await rig.pops.recovered(call.id, "alice", Verdict.ANSWERED)
    assert (await rig.event("alice", "call_answered", call.id))["answered_at"]
    [card] = await rig.events.cards("alice")
    assert card["status"] == "answered"
