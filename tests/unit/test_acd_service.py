"""The live ACD service without Asterisk (no AMI: holding sessions poll), on SQLite and PostgreSQL.

Callers join, wait, get an agent, ring, talk, leave; agents log in, pause, miss calls, wrap up. Routing passes
are run by hand (``Desk.route``) and time moves only when the test moves the clocks, so every figure
(waits, talk times, wrap-up ends) is exact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from cti.acd.calls import CallPhase, QueuedCall
from cti.acd.model import AgentState, UnknownCall
from cti.acd.priority import caller_priority
from cti.acd.records import last_agent_for
from cti.acd.service import RETRY_MISSED_AFTER_S, DialPlan
from cti.acd.shared import NO_ANSWER, AgentBusy, AgentStatus
from cti.acd.store import AgentNotFound
from cti.contacts.profile import CallerProfile
from cti.db import Database
from cti.ivr.flow import EnqueueNode
from cti.settings import AcdSettings
from tests.support.acd import NODE, Desk, add_answered_call, agent, make_desk, queue

SUPPORT = queue(wrap_up_s=30, ring_timeout_s=25, max_misses=2, moh_class="jazz", service_level_s=20)


@pytest.fixture
async def desk(database: Database) -> Desk:
    return await make_desk(database, (SUPPORT,))


async def _assigned_to(desk: Desk, call: QueuedCall, agent_id: str) -> None:
    assert (call.phase, call.agent_id) == (CallPhase.ASSIGNED, agent_id)
    shared = await desk.board_status(agent_id)
    assert (shared.state, shared.call, shared.node) == (AgentState.RINGING, call.id, NODE)
    assert desk.status(agent_id) == shared


# --- a call from start to end ----------------------------------------------------------------------


async def test_a_waiting_caller_gets_the_agent_who_logs_in_talks_and_the_agent_wraps_up(desk: Desk) -> None:
    acd, clock = desk.acd, desk.clock
    call = await desk.join()
    await desk.route()
    assert (call.phase, acd.position(call)) == (CallPhase.WAITING, 1)  # nobody logged in: it waits

    clock.advance(12)
    await acd.login("alice")
    await desk.route()
    await _assigned_to(desk, call, "alice")
    assert call.rule == "best_match" and "alice" in call.explanation and acd.position(call) is None
    plan = acd.start_dialing(call)
    assert plan == DialPlan("alice", "PJSIP/agent1", 25, "jazz")
    assert call.phase is CallPhase.DIALING
    with pytest.raises(UnknownCall):
        acd.start_dialing(call)  # once per assignment

    await acd.answered(call)
    assert acd.explain(call.id)["phase"] == "answered" and desk.status("alice").state is AgentState.ON_CALL
    clock.advance(100)
    assert await acd.dial_ended(call, "ANSWER") is True
    wrapping = desk.status("alice")
    assert (wrapping.state, wrapping.until) == (AgentState.WRAP_UP, clock.wall() + 30)
    assert call.phase.value == "left" and acd.calls == {}

    clock.advance(29)
    await desk.route()
    assert desk.status("alice").state is AgentState.WRAP_UP
    clock.advance(1)
    await desk.route()  # the wrap-up sweep of the pass
    assert (desk.status("alice").state, desk.status("alice").call) == (AgentState.AVAILABLE, "")
    assert (await desk.board_status("alice")).state is AgentState.AVAILABLE

    figures = acd.stats()["queues"]["support"]
    assert {key: figures[key] for key in ("offered", "answered", "abandoned", "service_level", "asa_s", "aht_s")} == {
        "offered": 1,
        "answered": 1,
        "abandoned": 0,
        "service_level": 1.0,
        "asa_s": 12.0,
        "aht_s": 100.0,
    }
    row = await desk.row(call)
    assert (row.queue, row.agent_id, row.wait_s, row.talk_s, row.outcome) == (
        "support",
        "alice",
        12.0,
        100.0,
        "answered",
    )
    assert row.path == "welcome > queue:support > agent:alice:answered(12s)"
    assert row.enqueued_at is not None and row.answered_at is not None and row.ended_at is not None


async def test_an_answer_seen_only_in_the_dial_status_still_counts(desk: Desk) -> None:
    """Without AMI the answer is only known when the Dial returns (so the talk time is folded into the wait)."""
    await desk.acd.login("alice")
    call = await desk.join()
    await desk.route()
    desk.acd.start_dialing(call)
    desk.clock.advance(40)
    assert await desk.acd.dial_ended(call, "ANSWER") is True
    assert desk.status("alice").state is AgentState.WRAP_UP
    row = await desk.row(call)
    assert (row.outcome, row.agent_id, row.wait_s, row.talk_s) == ("answered", "alice", 40.0, 0.0)
    assert desk.acd.counters["support"].answered_in_target == 0  # 40 s > the 20 s target


async def test_calls_answered_late_or_abandoned_lower_the_service_level(desk: Desk) -> None:
    acd, clock = desk.acd, desk.clock
    quick, late, lost = await desk.join(), await desk.join(), await desk.join()
    await acd.caller_left(lost)
    clock.advance(5)
    await acd.login("alice")
    await desk.route()
    await desk.connect(quick, talk_s=60)
    await acd.end_wrap_up("alice")
    clock.advance(30)  # late has waited 95 s by now
    await desk.route()
    await desk.connect(late, talk_s=120)
    figures = acd.stats()["queues"]["support"]
    assert (figures["offered"], figures["answered"], figures["abandoned"]) == (3, 2, 1)
    assert (figures["service_level"], figures["abandon_rate"]) == (round(1 / 3, 3), round(1 / 3, 3))
    assert (figures["asa_s"], figures["aht_s"]) == (round((5 + 95) / 2, 1), 90.0)


# --- ring-no-answer --------------------------------------------------------------------------------


async def test_ring_no_answer_gives_the_call_to_another_agent_even_with_a_lower_skill(desk: Desk) -> None:
    acd = desk.acd
    await acd.login("alice")
    await acd.login("bob")
    call = await desk.join()
    await desk.route()
    await _assigned_to(desk, call, "alice")  # software 5 beats bob's 2
    assert await desk.connect(call, "NOANSWER") is False
    assert call.phase is CallPhase.WAITING and call.agent_id is None
    assert (desk.status("alice").state, desk.status("alice").misses) == (AgentState.AVAILABLE, 1)

    await desk.route()
    await _assigned_to(desk, call, "bob")  # alice is available, but she let this call ring
    await desk.connect(call, talk_s=10)
    assert desk.status("alice").misses == 1  # another call's answer does not reset her count
    row = await desk.row(call)
    assert "queue:support > agent:alice:noanswer > agent:bob:answered" in row.path
    assert (row.agent_id, row.outcome) == ("bob", "answered")


async def test_a_call_not_answered_keeps_its_place_in_the_queue(desk: Desk) -> None:
    acd, clock = desk.acd, desk.clock
    await acd.login("alice")
    first = await desk.join()
    await desk.route()
    clock.advance(3)
    second = await desk.join()
    await desk.connect(first, "NOANSWER")
    assert (acd.position(first), acd.position(second)) == (1, 2)
    assert [row["id"] for row in acd.waiting_calls()] == [first.id, second.id]

    await desk.route()  # first excludes alice: the caller behind it gets her
    await _assigned_to(desk, second, "alice")
    assert (first.phase, acd.position(first)) == (CallPhase.WAITING, 1)
    explained = acd.explain(first.id)
    assert explained["rule"] == "wait" and explained["pools"][0]["examples"]["ringing"] == ["alice"]

    await acd.login("carol")
    await desk.route()
    await _assigned_to(desk, first, "carol")


async def test_the_agent_who_missed_a_call_is_offered_it_again_after_a_while(desk: Desk) -> None:
    acd, clock = desk.acd, desk.clock
    await acd.login("alice")
    call = await desk.join()
    await desk.route()
    await desk.connect(call, "BUSY")
    await desk.route()
    assert call.phase is CallPhase.WAITING and desk.status("alice").state is AgentState.AVAILABLE
    explained = acd.explain(call.id)
    assert explained["pools"][0]["examples"] == {"missed_this_call": ["alice"], "logged_out": ["bob", "carol"]}
    clock.advance(RETRY_MISSED_AFTER_S)
    acd._lift_exclusions(call)  # the timer the service set for this moment
    await desk.route()
    await _assigned_to(desk, call, "alice")
    assert "agent:alice:busy" in call.path


async def test_an_agent_missing_max_misses_calls_in_a_row_is_paused(desk: Desk) -> None:
    acd = desk.acd
    await acd.login("alice")
    first, second = await desk.join(), await desk.join()
    await desk.route()
    await desk.connect(first, "NOANSWER")
    await desk.route()
    await _assigned_to(desk, second, "alice")
    await desk.connect(second, "NOANSWER")  # max_misses = 2
    paused = desk.status("alice")
    assert (paused.state, paused.reason, paused.misses) == (AgentState.PAUSED, NO_ANSWER, 0)
    assert acd.router.agent("alice").pause_reason == NO_ANSWER
    assert second.path[-1] == "agent:alice:noanswer:paused"
    assert acd.stats()["agents"]["paused"] == 1
    await desk.route()
    assert first.phase is second.phase is CallPhase.WAITING  # nobody else is logged in

    await acd.resume("alice")
    await desk.route()
    assert first.phase is second.phase is CallPhase.WAITING  # she let both ring: not offered them for now
    desk.clock.advance(RETRY_MISSED_AFTER_S)
    for call in (first, second):
        acd._lift_exclusions(call)
    await desk.route()
    await _assigned_to(desk, first, "alice")


async def test_an_answer_between_misses_resets_the_count(desk: Desk) -> None:
    acd = desk.acd
    await acd.login("alice")
    calls = [await desk.join() for _ in range(3)]
    await desk.route()
    await desk.connect(calls[0], "NOANSWER")
    await desk.route()
    await desk.connect(calls[1], talk_s=5)
    await acd.end_wrap_up("alice")
    await desk.route()
    assert calls[0].agent_id is None and calls[2].agent_id == "alice"
    await desk.connect(calls[2], "NOANSWER")
    assert (desk.status("alice").state, desk.status("alice").misses) == (AgentState.AVAILABLE, 1)


# --- callers leaving ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dialing", [True, False], ids=["while-dialing", "before-dialing"])
async def test_a_caller_hanging_up_while_the_agent_rings_frees_the_agent_without_a_miss(
    desk: Desk, dialing: bool
) -> None:
    acd = desk.acd
    await acd.login("alice")
    call = await desk.join()
    await desk.route()
    desk.clock.advance(7)
    if dialing:
        acd.start_dialing(call)
        assert await acd.dial_ended(call, None) is True
    else:
        await acd.caller_left(call)
    freed = desk.status("alice")
    assert (freed.state, freed.misses, freed.call) == (AgentState.AVAILABLE, 0, "")
    assert (await desk.board_status("alice")).state is AgentState.AVAILABLE
    assert acd.counters["support"].abandoned == 1 and acd.calls == {}
    row = await desk.row(call)
    assert (row.outcome, row.wait_s, row.agent_id) == ("abandoned", 7.0, None)
    assert row.ended_at is not None and row.path.endswith("queue:support > abandoned(7s)")


async def test_a_caller_hanging_up_while_waiting_is_abandoned(desk: Desk) -> None:
    acd = desk.acd
    call = await desk.join()
    desk.clock.advance(42)
    await acd.caller_left(call)
    await acd.caller_left(call)  # a second report changes nothing
    assert call.phase is CallPhase.LEFT and acd.position(call) is None
    assert acd.router.calls() == [] and acd.calls == {}
    with pytest.raises(UnknownCall):
        acd.explain(call.id)
    assert acd.counters["support"].abandoned == 1
    row = await desk.row(call)
    assert (row.outcome, row.wait_s) == ("abandoned", 42.0) and row.ended_at is not None


async def test_a_caller_choosing_voicemail_leaves_the_row_to_the_voicemail_script(desk: Desk) -> None:
    acd = desk.acd
    call = await desk.join()
    desk.clock.advance(15)
    await acd.caller_left(call, "to_voicemail")
    figures = acd.stats()["queues"]["support"]
    assert (figures["to_voicemail"], figures["abandoned"], figures["waiting"]) == (1, 0, 0)
    row = await desk.row(call)
    assert (row.outcome, row.wait_s, row.ended_at) == ("queued", 15.0, None)
    assert row.path.endswith("queue:support > to_voicemail(15s)")


# --- priorities and preferred agents --------------------------------------------------------------------


async def test_a_higher_priority_caller_is_answered_first_then_first_come_first_served(database: Database) -> None:
    desk = await make_desk(database, (queue(wrap_up_s=0),))
    acd, clock = desk.acd, desk.clock
    first = await desk.join()
    clock.advance(1)
    second = await desk.join()
    clock.advance(1)
    urgent = await desk.join(priority=5)
    assert [acd.position(call) for call in (urgent, first, second)] == [1, 2, 3]

    await acd.login("alice")
    answered = []
    for _ in range(3):
        await desk.route()
        [call] = [call for call in (first, second, urgent) if call.phase is CallPhase.ASSIGNED]
        answered.append(call)
        await desk.connect(call, talk_s=5)  # no wrap-up: alice is free again at once
    assert answered == [urgent, first, second]


async def test_contract_and_vip_raise_a_callers_priority(database: Database) -> None:
    desk = await make_desk(database, (queue(wrap_up_s=0),))
    settings = AcdSettings()  # gold +10, platinum +20, VIP +30
    callers = {
        "urgent-unknown": caller_priority(20, None, settings),
        "gold": caller_priority(5, CallerProfile("+33611111111", contract_level="gold"), settings),
        "platinum-vip": caller_priority(
            0, CallerProfile("+33622222222", contract_level="platinum", vip=True), settings
        ),
        "standard": caller_priority(0, CallerProfile("+33633333333", contract_level="standard"), settings),
    }
    assert callers == {"urgent-unknown": 20, "gold": 15, "platinum-vip": 50, "standard": 0}
    calls = {name: await desk.join(priority=priority) for name, priority in callers.items()}
    await desk.acd.login("alice")
    order = []
    for _ in calls:
        await desk.route()
        [name] = [name for name, call in calls.items() if call.phase is CallPhase.ASSIGNED]
        order.append(name)
        await desk.connect(calls[name])
    assert order == ["platinum-vip", "urgent-unknown", "gold", "standard"]


async def test_the_agent_who_last_answered_the_caller_is_preferred_within_the_window(desk: Desk) -> None:
    acd, clock = desk.acd, desk.clock
    await add_answered_call(desk.db, "0698765432", "bob", "1732340000.1")
    preferred = await last_agent_for(desk.db, "0698765432", AcdSettings().preferred_agent_days)
    assert preferred == "bob"
    assert await last_agent_for(desk.db, "0611223344", 30) is None

    await acd.login("alice")
    clock.advance(120)  # alice has been idle far longer, and is the better match
    await acd.login("bob")
    call = await desk.join(caller="0698765432", preferred=preferred)
    clock.advance(59)
    await desk.route()
    await _assigned_to(desk, call, "bob")
    assert call.rule == "preferred" and "preferred agent bob" in call.explanation
    assert acd.decisions_log[-1]["preferred"] == "chosen"


async def test_past_the_window_the_preferred_agent_is_one_agent_among_others(desk: Desk) -> None:
    acd, clock = desk.acd, desk.clock
    call = await desk.join(preferred="bob")
    clock.advance(60)  # the queue's preferred_window_s
    await acd.login("alice")
    await acd.login("bob")
    await desk.route()
    await _assigned_to(desk, call, "alice")
    assert call.rule == "best_match" and "preferred agent bob: window_over" in call.explanation


async def test_a_preferred_agent_who_misses_the_call_is_no_longer_preferred(desk: Desk) -> None:
    acd = desk.acd
    await acd.login("alice")
    await acd.login("bob")
    call = await desk.join(preferred="bob")
    await desk.route()
    await _assigned_to(desk, call, "bob")
    await desk.connect(call, "NOANSWER")
    await desk.route()
    await _assigned_to(desk, call, "alice")
    assert call.preferred_agent is None and call.rule == "best_match"


# --- overflow -------------------------------------------------------------------------------------------


async def test_past_the_max_wait_the_caller_overflows_to_voicemail(database: Database) -> None:
    desk = await make_desk(database, (queue(max_wait_s=30),))
    acd, clock = desk.acd, desk.clock
    call = await desk.join()
    clock.advance(29.5)
    await desk.route()
    assert call.phase is CallPhase.WAITING
    clock.advance(0.5)
    await desk.route()
    assert (call.phase, call.overflow_target) == (CallPhase.OVERFLOW, "voicemail")
    assert acd.decisions_log[-1]["rule"] == "overflow" and acd.decisions_log[-1]["overflow_target"] == "voicemail"
    assert acd.counters["support"].overflowed == 1 and acd.position(call) is None
    assert acd.call_for(call.id) is call  # until its session has sent the caller on
    acd.forget(call)
    assert acd.calls == {}
    row = await desk.row(call)
    assert (row.wait_s, row.outcome) == (30.0, "queued")  # the voicemail script closes the row
    assert row.path.endswith("queue:support > overflow:voicemail")


async def test_past_the_max_wait_the_caller_overflows_to_another_queue(database: Database) -> None:
    queues = (queue("billing", skills={"billing": 1}), queue(max_wait_s=30, overflow="queue:billing"))
    agents = (agent("alice", software=5), agent("dave", billing=3))
    desk = await make_desk(database, queues, agents)
    acd, clock = desk.acd, desk.clock
    await acd.login("dave")  # a billing agent only
    call = await desk.join(priority=7)
    clock.advance(30)
    await desk.route()
    assert (call.phase, call.queue, call.priority) == (CallPhase.WAITING, "billing", 7)
    assert (acd.counters["support"].overflowed, acd.counters["billing"].offered) == (1, 1)
    await desk.route()
    await _assigned_to(desk, call, "dave")
    await desk.connect(call)
    row = await desk.row(call)
    assert (row.queue, row.agent_id) == ("billing", "dave")
    assert "queue:support > overflow:queue:billing > agent:dave:answered" in row.path


# --- questions the IVR and supervisors ask ------------------------------------------------------------


def _enqueue_node(queue_name: str = "support", **skills: int) -> EnqueueNode:
    return EnqueueNode.model_validate({"type": "enqueue", "queue": queue_name, "skills": skills, "overflow": "message"})


async def test_queue_check_needs_a_logged_in_agent_with_the_skills(desk: Desk) -> None:
    acd = desk.acd
    assert await acd.queue_check(_enqueue_node()) is False  # nobody logged in
    assert await acd.queue_check(_enqueue_node("nowhere")) is False
    await acd.login("carol")
    assert await acd.queue_check(_enqueue_node()) is True
    assert await acd.queue_check(_enqueue_node(software=2)) is False  # carol has software 1
    await acd.pause("carol", "lunch")
    assert await acd.queue_check(_enqueue_node()) is True  # paused agents come back
    await acd.logout("carol")
    assert await acd.queue_check(_enqueue_node()) is False


async def test_wait_estimates(desk: Desk) -> None:
    acd = desk.acd
    assert await acd.wait_estimate("nowhere") is None
    assert await acd.wait_estimate("support") is None  # no agent and no history: no figure rather than a guess
    await acd.login("alice")
    assert await acd.wait_estimate("support") == 0.0  # a free agent is there
    first = await desk.join()
    await desk.route()
    second = await desk.join()
    # alice rings for the first caller; with the prior handle time (300 s), one agent, two places to clear:
    assert await acd.wait_estimate("support") == pytest.approx(600.0)
    assert acd.estimate(second) == pytest.approx(300.0)
    assert acd.estimate(first) == 0.0  # it has an agent
    assert [row["estimated_wait_s"] for row in acd.waiting_calls()] == [0, 300]


async def test_explain_a_waiting_call_and_an_assigned_one(desk: Desk) -> None:
    acd = desk.acd
    await acd.login("alice")
    await acd.pause("alice", "training")
    call = await desk.join()
    desk.clock.advance(3)
    explained = acd.explain(call.id)
    assert (explained["call_id"], explained["rule"], explained["agent_id"]) == (call.id, "wait", None)
    assert explained["waited_s"] == 3.0 and explained["explanation"].startswith("no agent available at step 0")
    [pool] = explained["pools"]
    assert (pool["queue"], pool["skills"], pool["skipped"]) == (
        "support",
        {"software": 1},
        {"paused": 1, "logged_out": 2},
    )
    assert pool["examples"]["paused"] == ["alice"]

    await acd.resume("alice")
    await desk.route()
    assert acd.explain(call.id) == {
        "call_id": call.id,
        "phase": "assigned",
        "agent_id": "alice",
        "rule": "best_match",
        "explanation": call.explanation,
    }
    with pytest.raises(UnknownCall):
        acd.explain("no-such-call")


async def test_stats(desk: Desk) -> None:
    acd = desk.acd
    await acd.login("alice")
    await acd.login("bob")
    await acd.pause("bob", "meeting")
    taken = await desk.join()
    await desk.route()
    desk.clock.advance(10)
    waiting = await desk.join()
    desk.clock.advance(5)
    stats = acd.stats()
    assert stats["node"] == NODE
    assert stats["agents"] == {"logged_out": 1, "available": 0, "ringing": 1, "on_call": 0, "wrap_up": 0, "paused": 1}
    support = stats["queues"]["support"]
    assert (support["offered"], support["waiting"], support["longest_waiting_s"]) == (2, 1, 5.0)
    assert support["estimated_wait_s"] == 600  # one agent busy, prior handle time, two places
    assert (support["answered"], support["service_level"], support["asa_s"]) == (0, None, None)
    assert [row["phase"] for row in acd.waiting_calls()] == ["assigned", "waiting"]
    assert {row["id"] for row in acd.waiting_calls()} == {taken.id, waiting.id}


# --- agents' commands -----------------------------------------------------------------------------------


async def test_pause_resume_logout_and_login_are_refused_during_a_call(desk: Desk) -> None:
    acd = desk.acd
    await acd.login("alice")
    call = await desk.join()
    await desk.route()
    for state in (AgentState.RINGING, AgentState.ON_CALL):
        if state is AgentState.ON_CALL:
            acd.start_dialing(call)
            await acd.answered(call)
        commands: list[Callable[[], Awaitable[AgentStatus]]] = [
            lambda: acd.pause("alice", "lunch"),
            lambda: acd.resume("alice"),
            lambda: acd.logout("alice"),
            lambda: acd.login("alice", "PJSIP/desk9"),
        ]
        for command in commands:
            with pytest.raises(AgentBusy):
                await command()
        assert desk.status("alice").state is state
        assert (await acd.end_wrap_up("alice")).state is state  # not in wrap-up: nothing to end
    await acd.dial_ended(call, "ANSWER")
    assert (await acd.pause("alice", "lunch")).state is AgentState.PAUSED  # wrap-up is idle time


async def test_agent_commands(desk: Desk) -> None:
    acd = desk.acd
    with pytest.raises(AgentNotFound):
        await acd.login("nobody")
    with pytest.raises(AgentBusy):
        await acd.pause("alice", "lunch")  # logged out: log in first
    status = await acd.login("alice", "PJSIP/desk9")
    assert (status.state, status.endpoint) == (AgentState.AVAILABLE, "PJSIP/desk9")
    status = await acd.pause("alice", "lunch")
    assert (status.state, status.reason, acd.router.agent("alice").pause_reason) == (
        AgentState.PAUSED,
        "lunch",
        "lunch",
    )
    assert (await acd.resume("alice")).state is AgentState.AVAILABLE
    call = await desk.join()
    await desk.route()
    assert acd.start_dialing(call).dial == "PJSIP/desk9"  # the phone she logged in with
    states = {row["id"]: row for row in acd.agent_states()}
    assert (states["alice"]["state"], states["alice"]["call"], states["bob"]["state"]) == (
        "ringing",
        call.id,
        "logged_out",
    )


async def test_an_agent_without_a_usual_phone_must_log_in_with_one(database: Database) -> None:
    desk = await make_desk(database, (), (agent("erin", software=1).model_copy(update={"endpoint": ""}),))
    with pytest.raises(AgentBusy, match="no phone"):
        await desk.acd.login("erin")
    assert (await desk.acd.login("erin", "PJSIP/erin7")).endpoint == "PJSIP/erin7"


async def test_a_restart_finds_agents_as_they_were(desk: Desk) -> None:
    first = desk.acd
    await first.login("alice")
    await first.pause("alice", "lunch")
    await first.login("bob", "PJSIP/desk5")
    await first.login("carol")
    await first.logout("carol")

    second = await desk.restart()
    await second.start()
    try:
        paused, available, gone = desk.status("alice"), desk.status("bob"), desk.status("carol")
        assert (paused.state, paused.reason) == (AgentState.PAUSED, "lunch")
        assert (available.state, available.endpoint) == (AgentState.AVAILABLE, "PJSIP/desk5")
        assert gone.state is AgentState.LOGGED_OUT
        assert second.router.agent("alice").pause_reason == "lunch"
        call = await desk.join()
        await desk.route()
        await _assigned_to(desk, call, "bob")
        assert call.dial == "PJSIP/desk5"
    finally:
        await second.stop()


async def test_a_restart_keeps_an_automatic_no_answer_pause(desk: Desk) -> None:
    acd = desk.acd
    await acd.login("alice")
    for _ in range(2):  # max_misses
        call = await desk.join()
        await desk.route()
        await desk.connect(call, "NOANSWER")
    assert desk.status("alice").reason == NO_ANSWER
    second = await desk.restart()
    await second.reload()
    await second._seed_statuses()
    assert (desk.status("alice").state, desk.status("alice").reason) == (AgentState.PAUSED, NO_ANSWER)


# --- configuration changes while callers wait -----------------------------------------------------------


async def test_reload_keeps_waiting_callers_in_place(desk: Desk) -> None:
    acd, clock = desk.acd, desk.clock
    first = await desk.join()
    clock.advance(2)
    second = await desk.join()
    await desk.store.put_queue(queue(skills={"software": 2}, ring_timeout_s=40))
    await acd.reload()
    assert (acd.position(first), acd.position(second)) == (1, 2)
    assert acd.call_for(first.id) is first

    await acd.login("carol")  # software 1: no longer enough
    await acd.login("bob")
    await desk.route()
    await _assigned_to(desk, first, "bob")
    assert acd.start_dialing(first).ring_timeout_s == 40
    assert (second.phase, acd.position(second)) == (CallPhase.WAITING, 1)


async def test_callers_of_a_deleted_queue_go_to_voicemail(database: Database) -> None:
    desk = await make_desk(database, (queue(), queue("billing", skills={"billing": 1})))
    acd = desk.acd
    stays, moved = await desk.join(), await desk.join("billing")
    await desk.store.delete_queue("billing")
    await acd.reload()
    assert (moved.phase, moved.overflow_target) == (CallPhase.OVERFLOW, "voicemail")
    assert acd.counters["billing"].overflowed == 1
    assert (stays.phase, acd.position(stays)) == (CallPhase.WAITING, 1)
    assert "billing" not in acd.stats()["queues"]
    assert (await desk.row(moved)).path.endswith("queue:billing > overflow:voicemail")


async def test_a_call_assigned_before_its_queue_is_deleted_still_rings_the_agent(database: Database) -> None:
    desk = await make_desk(database, (queue(), queue("billing", skills={"software": 1}, ring_timeout_s=30)))
    acd = desk.acd
    await acd.login("alice")
    call = await desk.join("billing")
    await desk.route()
    await _assigned_to(desk, call, "alice")
    await desk.store.delete_queue("billing")
    await acd.reload()
    plan = acd.start_dialing(call)  # the holding session takes the assignment
    assert (plan.agent_id, plan.dial) == ("alice", "PJSIP/agent1")


async def test_among_equal_agents_the_longest_idle_gets_the_call(database: Database) -> None:
    desk = await make_desk(database, (queue(),), (agent("zoe", software=3), agent("adam", software=3)))
    await desk.acd.login("zoe")
    desk.clock.advance(300)
    await desk.acd.login("adam")
    call = await desk.join()
    await desk.route()
    await _assigned_to(desk, call, "zoe")
    assert "idle 300.0 s" in call.explanation


async def test_reload_keeps_the_longest_idle_order(database: Database) -> None:
    agents = (agent("zoe", software=3), agent("adam", software=3))
    desk = await make_desk(database, (queue(),), agents)
    acd = desk.acd
    await acd.login("zoe")
    desk.clock.advance(300)
    await acd.login("adam")
    desk.clock.advance(10)
    await desk.store.put_queue(queue(label="Renamed"))  # any saved change reloads the live ACD
    await acd.reload()
    call = await desk.join()
    await desk.route()
    assert call.agent_id == "zoe"  # idle 310 s against adam's 10 s, same score
