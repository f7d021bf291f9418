"""The ``queue`` AGI script against a scripted caller, with the live ACD and no AMI (the session polls).

Each music-on-hold slice the script plays moves the ACD's clocks by the slice's length, so announcements
come when the queue says; while a slice "plays", the test may log an agent in and run a routing pass, as the
dispatcher would. What the caller heard is read back from the commands the script sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cti.acd.calls import QueuedCall
from cti.acd.model import AgentState
from cti.acd.shared import AgentStatus
from cti.agi import FastAgiServer, ScriptRegistry
from cti.agi.protocol import split_command
from cti.contacts.directory import CallerDirectory
from cti.db import Database
from cti.prompts import PromptStore
from cti.scripts.queue import QueueScript
from cti.settings import AcdSettings, AgiSettings
from tests.fakes.agi_peer import AgiPeer, Reply, asterisk_env, hangup_then
from tests.support.acd import Clocks, Desk, add_answered_call, make_desk, queue

UID = "1732360000.1"  # the scripted caller's channel (callers joined by the desk directly use other ids)
HUNG_UP = hangup_then("200 result=-1")
Hook = Callable[[], Awaitable[None]]
HOLD = ["moh:jazz,2"]  # one music slice: the queue's class, two seconds (polling, without AMI)
WELCOME = ["get:CTI_SKILLS", "get:CTI_PRIORITY", "answer", "play:queue-hold"]
MAX_HOLDS = 200  # a script that never leaves the queue is cut short (and the test fails), not run forever


@dataclass
class Caller:
    """The Asterisk side of one queued call: replies to every command the script sends."""

    clock: Clocks
    variables: dict[str, str] = field(default_factory=dict)
    dial_statuses: list[str] = field(default_factory=list)  # one per Dial; "HANGUP": the caller hangs up
    keys: dict[str, str] = field(default_factory=dict)  # prompt -> key pressed while it plays
    at_hold: dict[int, Hook] = field(default_factory=dict)  # run during the n-th music slice (from 1)
    hang_up_at_hold: int | None = None
    hang_up_during: str | None = None  # the prompt during which the caller hangs up
    holds: int = 0

    async def __call__(self, command: str) -> Reply:
        words = split_command(command)
        match words[:2]:
            case ["GET", "VARIABLE"]:
                return self._variable(words[2])
            case ["EXEC", "MusicOnHold"]:
                return await self._hold(int(words[2].split(",")[1]))
            case ["EXEC", "Dial"]:
                return HUNG_UP if self.dial_statuses[0] == "HANGUP" else "200 result=0"
            case ["STREAM", "FILE"] if words[2].rsplit("/", 1)[-1] == self.hang_up_during:
                return HUNG_UP
            case ["STREAM", "FILE"]:
                key = self.keys.get(words[2].rsplit("/", 1)[-1])
                return f"200 result={ord(key)} endpos=8000" if key else "200 result=0 endpos=8000"
            case ["SAY", "NUMBER"] | ["ANSWER"]:
                return "200 result=0"
        return "200 result=1"  # SET VARIABLE, HANGUP

    def _variable(self, name: str) -> str:
        value = self.dial_statuses.pop(0) if name == "DIALSTATUS" else self.variables.get(name)
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    async def _hold(self, seconds: int) -> str:
        self.holds += 1
        self.clock.advance(seconds)
        hook = self.at_hold.get(self.holds)
        if hook is not None:
            await hook()
        return HUNG_UP if self.holds in (self.hang_up_at_hold, MAX_HOLDS) else "200 result=0"


def heard(peer: AgiPeer) -> list[str]:
    """The commands as short tokens: ``play:<prompt>``, ``say:<n>``, ``moh:<class>,<s>``, ``dial:<args>``..."""
    tokens = []
    for words in peer.words:
        match words:
            case ["STREAM", "FILE", path, *_]:
                tokens.append("play:" + path.rsplit("/", 1)[-1])
            case ["SAY", "NUMBER", number, *_]:
                tokens.append(f"say:{number}")
            case ["EXEC", "MusicOnHold", arguments]:
                tokens.append(f"moh:{arguments}")
            case ["EXEC", "Dial", arguments]:
                tokens.append(f"dial:{arguments}")
            case ["GET", "VARIABLE", name]:
                tokens.append(f"get:{name}")
            case ["SET", "VARIABLE", name, value]:
                tokens.append(f"set:{name}={value}")
            case _:
                tokens.append(" ".join(words).lower())
    return tokens


@dataclass
class Line:
    desk: Desk
    port: int
    seen: dict[str, QueuedCall] = field(default_factory=dict)

    def caller(self, **options: Any) -> Caller:
        return Caller(self.desk.clock, **options)

    async def call(self, caller: Caller, queue_name: str | None = "support", **env: str) -> AgiPeer:
        script = "queue" if queue_name is None else f"queue?queue={queue_name}"
        peer = await AgiPeer(self.port, caller, env=asterisk_env(script, uniqueid=UID, **env)).run()
        assert peer.errors == [] and peer.closed_by_server
        return peer

    def agent_joins(self, agent_id: str) -> Hook:
        """An agent logs in and the dispatcher runs its pass (while the caller hears music)."""

        async def hook() -> None:
            await self.desk.acd.login(agent_id)
            await self.desk.route()

        return hook

    def remember_call(self) -> Hook:
        """Keep the ACD's call object for the test (it is forgotten once the caller leaves)."""

        async def hook() -> None:
            call = self.desk.acd.call_for(UID)
            assert call is not None
            self.seen["call"] = call

        return hook

    def later(self, seconds: float) -> Hook:
        """Time passes during the slice; then the dispatcher's pass."""

        async def hook() -> None:
            self.desk.clock.advance(seconds)
            await self.desk.route()

        return hook


async def _line(database: Database, tmp_path: Path, **options: Any) -> AsyncIterator[Line]:
    settings: dict[str, Any] = {"announce_every_s": 10, "ring_timeout_s": 25, "moh_class": "jazz", **options}
    desk = await make_desk(database, (queue(**settings),))
    registry = ScriptRegistry()
    registry.register("queue")(
        QueueScript(
            desk.acd, database, PromptStore(tmp_path / "prompts"), CallerDirectory(database, "FR"), AcdSettings()
        )
    )
    server = FastAgiServer(registry, AgiSettings(port=0, command_timeout=5.0))
    await server.start()
    try:
        yield Line(desk, server.port)
    finally:
        await server.stop(grace=1.0)


@pytest.fixture
async def line(database: Database, tmp_path: Path) -> AsyncIterator[Line]:
    async for made in _line(database, tmp_path):
        yield made


@pytest.fixture
async def short_line(database: Database, tmp_path: Path) -> AsyncIterator[Line]:
    """Callers overflow to voicemail after 30 s; no announcement comes before."""
    async for made in _line(database, tmp_path, max_wait_s=30, announce_every_s=600):
        yield made


async def _agent_busy_elsewhere(line: Line, agent_id: str = "alice") -> None:
    """``agent_id`` rings for another caller: one eligible agent, busy (the wait estimate has a figure)."""
    await line.desk.acd.login(agent_id)
    await line.desk.join(uniqueid="1732350000.90")
    await line.desk.route()
    assert line.desk.status(agent_id).state is AgentState.RINGING


# --- joining ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("in_url", [True, False], ids=["queue-in-url", "queue-in-variable"])
async def test_a_caller_sent_to_an_unknown_queue_is_offered_voicemail(line: Line, in_url: bool) -> None:
    caller = line.caller(variables={} if in_url else {"CTI_QUEUE": "nowhere"})
    peer = await line.call(caller, "nowhere" if in_url else None)
    asked = [] if in_url else ["get:CTI_QUEUE"]
    assert heard(peer) == [*asked, "get:CTI_SKILLS", "get:CTI_PRIORITY", "set:CTI_NEXT=cti-voicemail,overflow,1"]
    assert line.desk.acd.calls == {} and line.desk.acd.counters == {}
    row = await line.desk.row(UID)  # opened for the voicemail script to close
    assert (row.caller_number, row.queue, row.outcome) == ("0612345678", None, "in_progress")


async def test_joining_reads_the_ivrs_choices_and_the_preferred_agent(line: Line) -> None:
    await add_answered_call(line.desk.db, "0612345678", "bob", "1732300000.1")
    caller = line.caller(
        variables={"CTI_SKILLS": '{"software":2,"lang-fr":1}', "CTI_PRIORITY": "7"},
        at_hold={1: line.remember_call()},
        hang_up_at_hold=1,
    )
    await line.call(caller, language="fr")
    call = line.seen["call"]
    assert (call.queue, call.priority, call.skills, call.preferred_agent) == (
        "support",
        7,
        {"software": 2, "lang-fr": 1},
        "bob",
    )
    assert (call.caller, call.language, call.channel) == (
        "0612345678",
        "fr",
        f"Local/100@from-pstn-{UID.replace('.', '')};2",
    )


@pytest.mark.parametrize("raw", ["software", "[1, 2]", '{"software": "high"}', '{"software": 1.5}', "{}", ""])
async def test_a_bad_skills_variable_is_ignored_and_the_queues_skills_apply(line: Line, raw: str) -> None:
    caller = line.caller(
        variables={"CTI_SKILLS": raw, "CTI_PRIORITY": "urgent"},
        at_hold={1: line.remember_call(), 2: line.agent_joins("carol")},
        dial_statuses=["ANSWER"],
    )
    await line.call(caller)
    call = line.seen["call"]
    assert (call.skills, call.priority) == (None, 0)
    assert call.agent_id == "carol"  # software 1: what the queue asks


async def test_a_skills_variable_with_a_negative_level_is_ignored(line: Line) -> None:
    caller = line.caller(
        variables={"CTI_SKILLS": '{"software": -1}'}, at_hold={1: line.remember_call()}, hang_up_at_hold=1
    )
    peer = await line.call(caller)
    assert heard(peer)[:4] == WELCOME
    assert line.seen["call"].skills is None


async def test_a_negative_priority_counts_as_none(line: Line) -> None:
    caller = line.caller(variables={"CTI_PRIORITY": "-5"}, at_hold={1: line.remember_call()}, hang_up_at_hold=1)
    await line.call(caller)
    assert line.seen["call"].priority == 0


# --- holding ------------------------------------------------------------------------------------------


async def test_a_waiting_caller_hears_music_then_position_wait_and_the_voicemail_offer(line: Line) -> None:
    await _agent_busy_elsewhere(line)
    peer = await line.call(line.caller(hang_up_at_hold=7))
    announcement = [
        "play:queue-position",
        "say:1",
        "play:queue-wait",
        "say:5",
        "play:queue-minutes",
        "play:queue-offer-voicemail",
    ]  # one agent, busy: 300 s (the prior handle time) -> 5 minutes
    assert heard(peer) == [*WELCOME, *HOLD * 5, *announcement, *HOLD * 2]  # every 10 s of music
    row = await line.desk.row(UID)
    assert (row.outcome, row.queue, row.wait_s) == ("abandoned", "support", 14.0)


async def test_with_no_agent_at_all_the_wait_is_not_announced(line: Line) -> None:
    peer = await line.call(line.caller(hang_up_at_hold=11))
    announcement = ["play:queue-position", "say:1", "play:queue-offer-voicemail"]
    assert heard(peer) == [*WELCOME, *HOLD * 5, *announcement, *HOLD * 5, *announcement, *HOLD]


@pytest.mark.parametrize("prompt", ["queue-position", "queue-wait", "queue-offer-voicemail"])
async def test_star_during_an_announcement_leaves_a_message(line: Line, prompt: str) -> None:
    await _agent_busy_elsewhere(line)
    peer = await line.call(line.caller(keys={prompt: "*"}))
    tokens = heard(peer)
    assert tokens[-2:] == [f"play:{prompt}", "set:CTI_NEXT=cti-voicemail,request,1"]
    assert tokens[: len(WELCOME) + 5] == [*WELCOME, *HOLD * 5]
    acd = line.desk.acd
    assert acd.counters["support"].to_voicemail == 1 and acd.counters["support"].abandoned == 0
    assert acd.call_for(UID) is None
    row = await line.desk.row(UID)
    assert (row.outcome, row.wait_s) == ("in_progress", 10.0)  # the voicemail script closes it
    assert row.path.endswith("queue:support > to_voicemail(10s)")


async def test_other_keys_do_not_leave_the_queue(line: Line) -> None:
    peer = await line.call(line.caller(keys={"queue-hold": "5"}, hang_up_at_hold=6))
    assert "set:CTI_NEXT=cti-voicemail,request,1" not in heard(peer)
    assert (await line.desk.row(UID)).outcome == "abandoned"


async def test_a_caller_hanging_up_during_the_hold_message_leaves_the_queue(line: Line) -> None:
    """Already queued when the first prompt plays: hanging up then must not leave a ghost caller waiting."""
    peer = await line.call(line.caller(hang_up_during="queue-hold"))
    assert heard(peer)[-1] == "play:queue-hold"
    acd = line.desk.acd
    assert acd.calls == {} and acd.counters["support"].abandoned == 1
    assert (await line.desk.row(UID)).outcome == "abandoned"


async def test_a_caller_hanging_up_while_waiting_is_abandoned(line: Line) -> None:
    peer = await line.call(line.caller(hang_up_at_hold=3))
    assert heard(peer) == [*WELCOME, *HOLD * 3]
    acd = line.desk.acd
    assert acd.calls == {} and acd.counters["support"].abandoned == 1
    row = await line.desk.row(UID)
    assert (row.outcome, row.wait_s) == ("abandoned", 6.0) and row.ended_at is not None


# --- connecting -----------------------------------------------------------------------------------------


async def test_the_assigned_agent_is_dialled_with_music_and_the_answered_call_ends(line: Line) -> None:
    caller = line.caller(at_hold={2: line.agent_joins("alice")}, dial_statuses=["ANSWER"])
    peer = await line.call(caller)
    assert heard(peer) == [
        *WELCOME,
        *HOLD * 2,
        f"set:__CTI_CALL_ID={UID}",
        "set:__CTI_AGENT_ID=alice",
        "dial:PJSIP/agent1,25,gm(jazz)",
        "get:DIALSTATUS",
        "play:queue-goodbye",
        "hangup",
    ]
    acd = line.desk.acd
    assert acd.calls == {} and acd.counters["support"].answered == 1
    assert line.desk.status("alice").state is AgentState.WRAP_UP
    row = await line.desk.row(UID)
    assert (row.outcome, row.agent_id, row.queue) == ("answered", "alice", "support")
    assert row.path.endswith("queue:support > agent:alice:answered(4s)")


async def test_no_answer_puts_the_caller_back_on_hold_in_the_same_session(line: Line) -> None:
    caller = line.caller(
        at_hold={1: line.agent_joins("alice"), 2: line.agent_joins("bob")}, dial_statuses=["NOANSWER", "ANSWER"]
    )
    peer = await line.call(caller)
    dial = ["get:DIALSTATUS"]
    assert heard(peer) == [
        *WELCOME,
        *HOLD,
        f"set:__CTI_CALL_ID={UID}",
        "set:__CTI_AGENT_ID=alice",
        "dial:PJSIP/agent1,25,gm(jazz)",
        *dial,
        *HOLD,
        f"set:__CTI_CALL_ID={UID}",
        "set:__CTI_AGENT_ID=bob",
        "dial:PJSIP/agent2,25,gm(jazz)",
        *dial,
        "play:queue-goodbye",
        "hangup",
    ]
    assert (line.desk.status("alice").state, line.desk.status("alice").misses) == (AgentState.AVAILABLE, 1)
    row = await line.desk.row(UID)
    assert (row.outcome, row.agent_id) == ("answered", "bob")
    assert "queue:support > agent:alice:noanswer > agent:bob:answered" in row.path


async def test_a_caller_hanging_up_while_the_agent_rings_frees_the_agent(line: Line) -> None:
    caller = line.caller(at_hold={1: line.agent_joins("alice")}, dial_statuses=["HANGUP"])
    peer = await line.call(caller)
    assert heard(peer)[-1] == "dial:PJSIP/agent1,25,gm(jazz)"
    assert line.desk.status("alice") == AgentStatus(
        "alice", AgentState.AVAILABLE, endpoint="PJSIP/agent1", since=line.desk.clock.wall()
    )
    assert line.desk.acd.counters["support"].abandoned == 1
    assert (await line.desk.row(UID)).outcome == "abandoned"


async def test_a_failure_while_connecting_apologises_and_offers_voicemail(line: Line) -> None:
    caller = line.caller(at_hold={1: line.agent_joins("alice")}, dial_statuses=["ANSWER"])

    async def broken_dial(command: str) -> Reply:
        return "510 Invalid or unknown command" if command.startswith("EXEC Dial") else await caller(command)

    peer = await AgiPeer(line.port, broken_dial, env=asterisk_env("queue?queue=support", uniqueid=UID)).run()
    assert heard(peer)[-3:] == [
        "dial:PJSIP/agent1,25,gm(jazz)",
        "play:technical-difficulty",
        "set:CTI_NEXT=cti-voicemail,request,1",
    ]
    assert line.desk.status("alice").state is AgentState.AVAILABLE
    assert line.desk.acd.counters["support"].to_voicemail == 1 and line.desk.acd.calls == {}


# --- overflow -----------------------------------------------------------------------------------------


async def test_past_the_max_wait_the_session_sends_the_caller_to_voicemail(short_line: Line) -> None:
    caller = short_line.caller(at_hold={1: short_line.later(30)})
    peer = await short_line.call(caller)
    assert heard(peer) == [*WELCOME, *HOLD, "set:CTI_NEXT=cti-voicemail,overflow,1"]
    acd = short_line.desk.acd
    assert acd.calls == {} and acd.counters["support"].overflowed == 1
    assert (await short_line.desk.row(UID)).path.endswith("queue:support > overflow:voicemail")


async def test_a_caller_hanging_up_just_after_the_overflow_is_forgotten(short_line: Line) -> None:
    caller = short_line.caller(at_hold={1: short_line.later(30)}, hang_up_at_hold=1)
    await short_line.call(caller)
    assert short_line.desk.acd.calls == {}
    row = await short_line.desk.row(UID)
    assert row.ended_at is not None and row.outcome == "abandoned"
