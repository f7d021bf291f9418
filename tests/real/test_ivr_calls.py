"""Real calls through the local Asterisk into a number's IVR flow, at chosen instants.

What the caller hears is read from Asterisk itself: every AGI command it ran on the channel is
reported by AMI (AGIExecEnd), so "heard the closed message and the next opening" means Asterisk
streamed that prompt and said that exact instant.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime

import pytest

from cti.agi import AgiSession, ScriptRegistry
from cti.ami import AmiClient
from cti.contacts.models import BlockedNumber
from cti.db import Database
from cti.db.models import CallRecord
from cti.demo import seed_demo
from cti.ivr.documents import import_document
from cti.prompts import PromptStore
from cti.scripts.incoming import IncomingCall
from tests.fakes.ami_peer import wait_until
from tests.plugins.asterisk import EventLog, place_simulated_call
from tests.support.calls import finished_call
from tests.support.ivr import CHRISTMAS_10, MONDAY_10, MONDAY_20, PARIS, TEST_DESK, ivr_service
from tickets.voicemail.recordings import wav_duration

pytestmark = pytest.mark.real
async def _desk(database: Database, prompt_store: PromptStore, registry: ScriptRegistry,
                instant: datetime) -> list[str]:
    """The test number's flow at ``instant``; returns the voicemail reasons the dialplan hands over."""
    ivr = ivr_service(database, prompt_store.root, instant)
    await import_document(ivr, TEST_DESK, author="test")
    registry.register("incoming")(IncomingCall(database, prompt_store, ivr))
    reasons: list[str] = []

    @registry.register("voicemail")
    async def voicemail_reached(session: AgiSession) -> None:
        reasons.append(session.env.query.get("reason", ""))
        await session.hangup()

    return reasons


async def _call(ami: AmiClient, database: Database, digits: str = "") -> CallRecord:
    caller = f"553{uuid.uuid4().int % 10**7:07d}"
    await place_simulated_call(ami, TEST_DESK["number"], caller, digits=digits, hold=25)
    return await finished_call(database, caller)


async def _handed_over(reasons: list[str]) -> list[str]:
    """The voicemail reasons once the dialplan reached the voicemail script: the call row is closed when the
    incoming script ends, a moment before Asterisk connects the next AGI."""
    await wait_until(lambda: bool(reasons), within=10)
    return reasons


def _commands(events: EventLog, row: CallRecord) -> list[str]:
    """The AGI commands Asterisk finished on the call's channel, in order."""
    return [event.get("Command", "") for event in events.matching("AGIExecEnd", Uniqueid=row.uniqueid)]


def _streamed(commands: list[str]) -> list[str]:
    return [command.split()[2].rsplit("/", 1)[-1] for command in commands if command.startswith("STREAM FILE")]


def _after_greeting(prompt_store: PromptStore) -> str:
    """SendDTMF pauses 0.5 s per 'w': wait out the greeting so the key lands on the menu."""
    return "w" * math.ceil((wav_duration(prompt_store.path("en", "welcome")) + 1.5) / 0.5)


async def test_during_hours_the_greeting_plays_and_a_key_routes_the_call(
    ami: AmiClient, ami_events: EventLog, agi_registry: ScriptRegistry, prompt_store: PromptStore,
    database: Database,
) -> None:
    reasons = await _desk(database, prompt_store, agi_registry, MONDAY_10)
    row = await _call(ami, database, _after_greeting(prompt_store) + "9")
    assert row.path == "hours:open > welcome > main:9 > message"
    assert row.outcome == "to_voicemail"
    assert await _handed_over(reasons) == ["request"]
    assert _streamed(_commands(ami_events, row))[:2] == ["welcome", "main-menu"]


async def test_at_a_closed_instant_the_caller_hears_when_we_open_again(
    ami: AmiClient, ami_events: EventLog, agi_registry: ScriptRegistry, prompt_store: PromptStore,
    database: Database,
) -> None:
    reasons = await _desk(database, prompt_store, agi_registry, MONDAY_20)
    row = await _call(ami, database)
    commands = _commands(ami_events, row)
    tuesday_830 = int(datetime(2026, 11, 24, 8, 30, tzinfo=PARIS).timestamp())
    said = [command for command in commands if command.startswith("SAY DATETIME")]
    assert _streamed(commands) == ["closed", "next-opening"]
    assert len(said) == 1 and said[0].split()[2] == str(tuesday_830)
    assert "Europe/Paris" in said[0]
    assert row.path == "hours:closed > closed > closed-message"
    assert await _handed_over(reasons) == ["closed"]


async def test_on_a_public_holiday_the_holiday_message_plays(
    ami: AmiClient, ami_events: EventLog, agi_registry: ScriptRegistry, prompt_store: PromptStore,
    database: Database,
) -> None:
    reasons = await _desk(database, prompt_store, agi_registry, CHRISTMAS_10)
    row = await _call(ami, database)
    assert _streamed(_commands(ami_events, row))[0] == "holiday"
    assert row.path == "hours:holiday > holiday > closed-message"
    assert await _handed_over(reasons) == ["closed"]


async def test_an_unknown_key_then_silence_follow_the_retries_then_the_fallback(
    ami: AmiClient, ami_events: EventLog, agi_registry: ScriptRegistry, prompt_store: PromptStore,
    database: Database,
) -> None:
    reasons = await _desk(database, prompt_store, agi_registry, MONDAY_10)
    row = await _call(ami, database, _after_greeting(prompt_store) + "5")
    assert row.path == ("hours:open > welcome > main:invalid(5) > main:no-input > main:no-input > no-choice")
    streamed = _streamed(_commands(ami_events, row))
    assert streamed == ["welcome", "main-menu", "invalid-input", "main-menu", "no-input", "main-menu", "no-input"]
    assert await _handed_over(reasons) == ["overflow"]


@pytest.mark.parametrize("language", ["en", "fr"])
async def test_the_next_opening_is_said_with_the_languages_own_sounds(
    ami: AmiClient, ami_events: EventLog, agi_registry: ScriptRegistry, prompt_store: PromptStore,
    database: Database, language: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """SAY DATETIME plays Asterisk's day and number sounds of the caller's language: every file must exist
    (a missing one makes Asterisk answer result=-1 and the caller hears a gap)."""
    ivr = ivr_service(database, prompt_store.root, MONDAY_20)
    await import_document(ivr, {**TEST_DESK, "language": language}, author="test")
    agi_registry.register("incoming")(IncomingCall(database, prompt_store, ivr))

    @agi_registry.register("voicemail")
    async def voicemail_reached(session: AgiSession) -> None:
        await session.hangup()

    row = await _call(ami, database)
    [said] = [event for event in ami_events.matching("AGIExecEnd", Uniqueid=row.uniqueid)
              if event.get("Command", "").startswith("SAY DATETIME")]
    assert said.get("ResultCode") == "200", dict(said)
    assert not [record for record in caplog.records if "SAY DATETIME failed" in record.getMessage()]
    assert row.language == language


async def test_the_demo_desk_lets_the_caller_choose_french_then_routes_the_menu_key(
    ami: AmiClient, ami_events: EventLog, agi_registry: ScriptRegistry, prompt_store: PromptStore,
    database: Database,
) -> None:
    """The demo number's own flow: caller rules, hours, greeting, language menu (2: French), main menu (9)."""
    ivr = ivr_service(database, prompt_store.root, MONDAY_10)
    await seed_demo(ivr)
    agi_registry.register("incoming")(IncomingCall(database, prompt_store, ivr))
    reasons: list[str] = []

    @agi_registry.register("voicemail")
    async def voicemail_reached(session: AgiSession) -> None:
        reasons.append(session.env.query.get("reason", ""))
        await session.hangup()

    caller = f"+3361{uuid.uuid4().int % 10**7:07d}"
    await place_simulated_call(ami, "5551000", caller, digits=_after_greeting(prompt_store) + "2" + "w" * 6 + "9",
                               hold=25)
    row = await finished_call(database, caller)
    assert row.path == "screen:default > hours:open > welcome > language:fr > main:9 > message"
    assert (row.language, row.outcome, await _handed_over(reasons)) == ("fr", "to_voicemail", ["request"])
    streamed = [command.split()[2] for command in _commands(ami_events, row) if command.startswith("STREAM FILE")]
    assert streamed[1].endswith("/en/choose-language") and streamed[2].endswith("/fr/main-menu")


async def test_a_blocked_caller_hears_the_refusal_and_is_hung_up(
    ami: AmiClient, ami_events: EventLog, agi_registry: ScriptRegistry, prompt_store: PromptStore,
    database: Database,
) -> None:
    ivr = ivr_service(database, prompt_store.root, MONDAY_10)
    await seed_demo(ivr)
    caller = f"+3362{uuid.uuid4().int % 10**7:07d}"
    async with database.session() as session:
        session.add(BlockedNumber(number=caller, reason="test"))
    agi_registry.register("incoming")(IncomingCall(database, prompt_store, ivr))
    await place_simulated_call(ami, "5551000", caller, hold=15)
    row = await finished_call(database, caller)
    assert (row.path, row.outcome) == ("screen:rule1 > refuse", "completed")
    assert _streamed(_commands(ami_events, row)) == ["blocked-caller"]
    assert "HANGUP" in _commands(ami_events, row)
