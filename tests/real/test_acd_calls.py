"""Real calls through the local Asterisk into an ACD queue, answered by simulated agents.

Callers are Local channels dialled straight into ``[cti-queue]``; agents are ``Local/<name>@cti-agent-sim``
legs: ``alice``/``bob`` answer at once, ``away...`` ring and never answer. What happened is read from
Asterisk itself (AMI DialBegin/DialEnd/BridgeEnter on the caller's channel) and from the call's row.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from cti.acd.calls import CallPhase, QueuedCall
from cti.acd.config import AgentConfig, QueueConfig
from cti.acd.model import AgentState
from cti.acd.service import AcdService
from cti.acd.shared import NO_ANSWER, AgentBoard
from cti.acd.store import AcdStore
from cti.agi import AgiSession, ScriptRegistry
from cti.ami import AmiClient
from cti.ami.errors import AmiError
from cti.contacts.directory import CallerDirectory
from cti.db import Database
from cti.db.models import CallRecord
from cti.demo import seed_acd_demo, seed_demo
from cti.prompts import PromptStore
from cti.scripts.incoming import IncomingCall
from cti.scripts.queue import QueueScript
from cti.settings import AcdSettings
from cti.state import InMemoryStateBackend
from tests.plugins.asterisk import EventLog, place_simulated_call
from tests.support.calls import finished_call
from tests.support.ivr import MONDAY_10, ivr_service
from tickets.voicemail.recordings import wav_duration

pytestmark = pytest.mark.real


@dataclass
class Desk:
    acd: AcdService
    voicemail_reasons: list[str]


def _agent(name: str, level: int = 3) -> AgentConfig:
    return AgentConfig(id=name, name=name.title(), skills={"software": level},
                       endpoint=f"Local/{name}@cti-agent-sim")


@pytest.fixture
async def desk(ami: AmiClient, agi_registry: ScriptRegistry, prompt_store: PromptStore,
               database: Database) -> AsyncIterator[Desk]:
    """An ACD on the test's own AGI server, a queue ``support`` and three simulated agents, all logged out."""
    store = AcdStore(database)
    await store.put_queue(QueueConfig(name="support", label="Support", skills={"software": 1}, ring_timeout_s=5,
                                      wrap_up_s=1, max_misses=2, announce_every_s=10))
    for agent in (_agent("alice"), _agent("bob", 1), _agent("away1", 5)):
        await store.put_agent(agent)
    acd = AcdService(store, AgentBoard(InMemoryStateBackend()), InMemoryStateBackend(), database, ami)
    await acd.start()
    agi_registry.register("queue")(QueueScript(acd, database, prompt_store, CallerDirectory(database, "FR"),
                                               AcdSettings()))
    reasons: list[str] = []

    @agi_registry.register("voicemail")
    async def voicemail_reached(session: AgiSession) -> None:
        reasons.append(session.env.query.get("reason", ""))
        await session.hangup()

    yield Desk(acd, reasons)
    for call in list(acd.calls.values()):  # a failed test must not leave callers ringing agents
        with contextlib.suppress(AmiError):
            await ami.send_action({"Action": "Hangup", "Channel": call.channel})
    await acd.stop()


async def _caller_waits(ami: AmiClient, acd: AcdService, hold: int = 40) -> QueuedCall:
    caller = f"554{uuid.uuid4().int % 10**7:07d}"
    await place_simulated_call(ami, "support", caller, hold=hold, context="cti-queue")
    async with asyncio.timeout(15):
        while True:
            found = [call for call in acd.calls.values() if call.caller == caller]
            if found:
                return found[0]
            await asyncio.sleep(0.1)


async def _until(check: Callable[[], bool], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - the state changes in the ACD's own tasks, no event to wait on
            await asyncio.sleep(0.1)


async def _row(database: Database, call: QueuedCall) -> CallRecord:
    return await finished_call(database, call.caller)


async def test_a_waiting_caller_is_bridged_to_the_agent_who_logs_in(
    ami: AmiClient, ami_events: EventLog, desk: Desk, database: Database
) -> None:
    acd = desk.acd
    call = await _caller_waits(ami, acd)
    assert call.phase is CallPhase.WAITING and acd.position(call) == 1
    await asyncio.sleep(1.5)  # on hold, with music, nobody to answer yet
    assert call.phase is CallPhase.WAITING

    await acd.login("alice")
    bridged = await ami_events.wait_for("BridgeEnter", timeout=20, Uniqueid=call.id)
    bridge = bridged["BridgeUniqueid"]
    await _until(lambda: len(ami_events.matching("BridgeEnter", BridgeUniqueid=bridge)) == 2, timeout=5)
    legs = [event["Channel"] for event in ami_events.matching("BridgeEnter", BridgeUniqueid=bridge)]
    assert call.channel in legs and any(leg.startswith("Local/alice@cti-agent-sim") for leg in legs)
    await _until(lambda: acd.statuses["alice"].state is AgentState.ON_CALL)
    assert call.phase is CallPhase.ANSWERED and call.rule == "best_match"

    await ami.send_action({"Action": "Hangup", "Channel": call.channel})
    row = await _row(database, call)
    assert row.outcome == "answered" and row.agent_id == "alice" and row.queue == "support"
    assert row.wait_s is not None and row.wait_s >= 1.5 and row.talk_s is not None
    assert "queue:support" in row.path and "agent:alice:answered" in row.path
    await _until(lambda: acd.statuses["alice"].state is AgentState.WRAP_UP, timeout=5)
    await _until(lambda: acd.statuses["alice"].state is AgentState.AVAILABLE, timeout=5)
    assert acd.counters["support"].answered == 1


async def test_an_agent_who_does_not_answer_is_paused_and_the_next_agent_gets_the_call(
    ami: AmiClient, ami_events: EventLog, desk: Desk, database: Database
) -> None:
    acd = desk.acd
    await acd.login("away1")  # the best skill: rung first, never answers
    await acd.login("bob")
    call = await _caller_waits(ami, acd)
    dial = await ami_events.wait_for("DialBegin", timeout=10, Uniqueid=call.id)
    assert dial["DestChannel"].startswith("Local/away1@cti-agent-sim")
    missed = await ami_events.wait_for("DialEnd", timeout=15, Uniqueid=call.id)
    assert missed["DialStatus"] == "NOANSWER"
    await _until(lambda: acd.statuses["away1"].misses == 1, timeout=5)  # once the Dial has returned

    await ami_events.wait_for("BridgeEnter", timeout=20, Uniqueid=call.id)
    rung = [event["DestChannel"].split("-")[0] for event in ami_events.matching("DialBegin", Uniqueid=call.id)]
    assert rung == ["Local/away1@cti", "Local/bob@cti"]  # longest idle after the miss: bob, not away1 again
    assert call.agent_id == "bob"

    await ami.send_action({"Action": "Hangup", "Channel": call.channel})
    row = await _row(database, call)
    assert row.agent_id == "bob" and row.outcome == "answered"
    assert "agent:away1:noanswer > agent:bob:answered" in row.path

    second = await _caller_waits(ami, acd)  # away1 misses again: paused after max_misses (2)
    await _until(lambda: acd.statuses["away1"].state is AgentState.PAUSED, timeout=20)
    assert acd.statuses["away1"].reason == NO_ANSWER
    await ami.send_action({"Action": "Hangup", "Channel": second.channel})
    await _row(database, second)


async def test_a_caller_hanging_up_while_the_agent_rings_frees_the_agent(
    ami: AmiClient, ami_events: EventLog, desk: Desk, database: Database
) -> None:
    acd = desk.acd
    await acd.store.put_queue(QueueConfig(name="support", skills={"software": 1}, ring_timeout_s=60))
    await acd.reload()
    await acd.login("away1")
    call = await _caller_waits(ami, acd)
    await ami_events.wait_for("DialBegin", timeout=10, Uniqueid=call.id)
    assert acd.statuses["away1"].state is AgentState.RINGING and acd.statuses["away1"].call == call.id

    await ami.send_action({"Action": "Hangup", "Channel": call.channel})
    cancelled = await ami_events.wait_for("DialEnd", timeout=10, Uniqueid=call.id)
    assert cancelled["DialStatus"] == "CANCEL"
    await _until(lambda: acd.statuses["away1"].state is AgentState.AVAILABLE, timeout=10)
    assert acd.statuses["away1"].misses == 0  # the caller left: not the agent's miss
    row = await _row(database, call)
    assert row.outcome == "abandoned" and row.queue == "support"
    assert acd.counters["support"].abandoned == 1 and not acd.calls


async def test_past_the_max_wait_the_caller_is_offered_voicemail(
    ami: AmiClient, desk: Desk, database: Database
) -> None:
    acd = desk.acd
    await acd.store.put_queue(QueueConfig(name="support", skills={"software": 1}, max_wait_s=3))
    await acd.reload()
    call = await _caller_waits(ami, acd)
    await _until(lambda: desk.voicemail_reasons == ["overflow"], timeout=15)
    assert call.phase is CallPhase.OVERFLOW and acd.counters["support"].overflowed == 1
    assert not acd.calls


async def test_the_demo_desk_queues_a_french_caller_to_the_demo_agent(
    ami: AmiClient, ami_events: EventLog, agi_registry: ScriptRegistry, prompt_store: PromptStore,
    database: Database,
) -> None:
    """The demo end to end: IVR (French, menu 1: technical) -> queue support (network skill) -> chloe."""
    store = AcdStore(database)
    assert await seed_acd_demo(store) == 3
    acd = AcdService(store, AgentBoard(InMemoryStateBackend()), InMemoryStateBackend(), database, ami)
    ivr = ivr_service(database, prompt_store.root, MONDAY_10)
    await seed_demo(ivr)
    ivr.wait_estimate, ivr.queue_check = acd.wait_estimate, acd.queue_check
    agi_registry.register("incoming")(IncomingCall(database, prompt_store, ivr))
    agi_registry.register("queue")(QueueScript(acd, database, prompt_store, ivr.directory, AcdSettings()))
    await acd.start()
    try:
        await acd.login("chloe")
        caller = f"+3362{uuid.uuid4().int % 10**7:07d}"
        digits = "w" * math.ceil((wav_duration(prompt_store.path("en", "welcome")) + 1.5) / 0.5) + "2" + "w" * 6 + "1"
        await place_simulated_call(ami, "5551000", caller, digits=digits, hold=40)
        await _until(lambda: acd.statuses["chloe"].state is AgentState.ON_CALL, timeout=40)
        call_id = acd.statuses["chloe"].call
        await ami_events.wait_for("BridgeEnter", timeout=10, Uniqueid=call_id)
        channel = next(event["Channel"] for event in ami_events.matching("BridgeEnter", Uniqueid=call_id))
        await ami.send_action({"Action": "Hangup", "Channel": channel})
        row = await finished_call(database, caller)
    finally:
        await acd.stop()
    assert row.path.startswith("screen:default > hours:open > welcome > language:fr > main:1")
    assert "queue:support > agent:chloe:answered" in row.path
    assert (row.language, row.outcome, row.agent_id) == ("fr", "answered", "chloe")
    commands = [event.get("Command", "") for event in ami_events.matching("AGIExecEnd", Uniqueid=call_id)]
    # chloe was free: the caller went straight to her, ringing with music
    assert any(command.startswith("EXEC Dial Local/chloe@cti-agent-sim,20,gm(default)") for command in commands)


async def test_a_waiting_caller_hears_its_position_in_asterisks_own_voice(
    ami: AmiClient, ami_events: EventLog, desk: Desk, database: Database
) -> None:
    """Nobody logged in: after ``announce_every_s`` (10 s) Asterisk plays the position prompt and says the
    number itself (SAY NUMBER), then the voicemail offer (no wait figure: no agent, no history), and the
    music goes on."""
    acd = desk.acd
    call = await _caller_waits(ami, acd)

    def heard() -> list[str]:
        commands = [event.get("Command", "") for event in ami_events.matching("AGIExecEnd", Uniqueid=call.id)]
        return [command.split()[2].rsplit("/", 1)[-1] if command.startswith("STREAM FILE") else command
                for command in commands if command.startswith(("STREAM FILE", "SAY NUMBER", "EXEC MusicOnHold"))]

    await _until(lambda: "queue-offer-voicemail" in heard(), timeout=25)
    spoken = heard()
    assert spoken[0] == "queue-hold" and spoken[1].startswith("EXEC MusicOnHold default")
    announcement = spoken[spoken.index("queue-position"):][:3]
    assert announcement[0] == "queue-position" and announcement[1].startswith("SAY NUMBER 1 ")
    assert announcement[2] == "queue-offer-voicemail"
    assert call.phase is CallPhase.WAITING
    await ami.send_action({"Action": "Hangup", "Channel": call.channel})
    assert (await _row(database, call)).outcome == "abandoned"
