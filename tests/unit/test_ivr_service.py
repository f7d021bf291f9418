"""The IVR service on SQLite and PostgreSQL: preparing calls, the demo numbers end to end, saving flows and
hours, the override, service documents, and the caller directory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from cti.contacts.directory import CallerDirectory
from cti.contacts.models import BlockedNumber, Company, Contact, ContactNumber
from cti.contacts.profile import CallerProfile
from cti.db import Database
from cti.db.models import ServiceNumber
from cti.demo import demo_documents
from cti.ivr.default_flow import DEFAULT_FLOW
from cti.ivr.documents import export_document, import_document
from cti.ivr.engine import NEXT_OPENING_PROMPT, Outcome
from cti.ivr.errors import DocumentInvalid, ServiceNotFound
from cti.ivr.flow import FlowInvalid
from cti.ivr.models import IvrFlow, ServiceHours
from cti.ivr.schedule import ScheduleError
from cti.ivr.simulator import Step
from tests.support.ivr import CHRISTMAS_10, MONDAY_10, MONDAY_20, demo_ivr, ivr_service, played, read, said

HELP_DESK = "5551000"
CALLER = "+33155555555"
MOBILE = "+33612345678"
VOICEMAIL_CLOSED = Outcome("voicemail", reason="closed")
SMALL_FLOW: dict[str, Any] = {"start": "hi", "nodes": {"hi": {"type": "play", "prompts": ["welcome"], "next": "end"},
                                                       "end": {"type": "hangup"}}}


def closed_steps(prompt: str, opening: str) -> list[Any]:
    return [played(prompt), played(NEXT_OPENING_PROMPT), said(opening)]


async def add_contact(database: Database, number: str, *, vip: bool = False, company_vip: bool = False,
                      language: str | None = None) -> None:
    async with database.session() as session:
        company = Company(name="ACME", vip=company_vip, contract_level="gold")
        session.add(company)
        await session.flush()
        contact = Contact(name="Ada", vip=vip, company_id=company.id, language=language)
        session.add(contact)
        await session.flush()
        session.add(ContactNumber(contact_id=contact.id, number=number))


async def block(database: Database, number: str, expires_at: datetime | None = None) -> None:
    async with database.session() as session:
        session.add(BlockedNumber(number=number, expires_at=expires_at))


async def count(database: Database, model: Any) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# --- preparing a call ------------------------------------------------------------------------------


async def test_no_service_for_an_unknown_or_disabled_number(database: Database) -> None:
    ivr = await demo_ivr(database)
    await import_document(ivr, {"number": "5559000", "name": "Off", "enabled": False}, author="test")
    assert await ivr.prepare("5550000", CALLER) is None
    assert await ivr.prepare("5559000", CALLER) is None
    with pytest.raises(ServiceNotFound, match="no enabled service number '5559000'"):
        await ivr.simulate("5559000", CALLER, MONDAY_10, [])


async def test_a_number_without_flow_or_hours_runs_the_default_flow(database: Database) -> None:
    ivr = ivr_service(database)
    await import_document(ivr, {"number": "5559000", "name": "New", "language": "fr"}, author="test")
    prepared = await ivr.prepare("5559000", CALLER)
    assert prepared is not None
    assert (prepared.flow, prepared.facts.hours, prepared.facts.next_opening, prepared.language) == (
        DEFAULT_FLOW, None, None, "fr")
    assert prepared.facts.instant == MONDAY_10  # the injected clock
    result = await ivr.simulate("5559000", CALLER, MONDAY_20, [])
    assert (result.steps, result.outcome) == ([played("welcome", "fr")], Outcome("voicemail", reason="request"))


@pytest.mark.parametrize(("at", "status", "opening"), [
    (MONDAY_10, "open", None),
    (MONDAY_20, "closed", datetime(2026, 11, 24, 8, 30, tzinfo=MONDAY_20.tzinfo)),
    (CHRISTMAS_10, "holiday", datetime(2026, 12, 28, 8, 30, tzinfo=MONDAY_20.tzinfo)),  # Friday; Monday next
])
async def test_demo_facts(database: Database, at: datetime, status: str, opening: datetime | None) -> None:
    prepared = await (await demo_ivr(database)).prepare(HELP_DESK, CALLER, at)
    assert prepared is not None and prepared.facts.hours is not None
    assert (prepared.facts.hours.status, prepared.facts.next_opening) == (status, opening)
    assert prepared.facts.caller == CallerProfile(number=CALLER)


# --- the demo help desk end to end ---------------------------------------------------------------


@pytest.mark.parametrize(("at", "keys", "steps", "outcome"), [
    (MONDAY_10, ["1", "9"], [played("welcome"), read("choose-language", "1"), Step("language", language="en"),
                             read("main-menu", "9")],
     Outcome("voicemail", reason="request")),
    (MONDAY_20, [], closed_steps("closed", "2026-11-24T08:30:00+01:00"), VOICEMAIL_CLOSED),
    (CHRISTMAS_10, [], closed_steps("holiday", "2026-12-28T08:30:00+01:00"), VOICEMAIL_CLOSED),
], ids=["open", "closed", "holiday"])
async def test_demo_calls(database: Database, at: datetime, keys: list[str], steps: list[Any],
                          outcome: Outcome) -> None:
    result = await (await demo_ivr(database)).simulate(HELP_DESK, CALLER, at, keys)
    assert (result.steps, result.outcome, result.unused_keys) == (steps, outcome, [])


async def test_override_closed_then_its_expiry(database: Database) -> None:
    ivr = await demo_ivr(database)
    until = MONDAY_10 + timedelta(hours=2)  # 12:00 Paris, within the morning opening
    await ivr.set_override(HELP_DESK, "closed", until, "storm", author="test")
    result = await ivr.simulate(HELP_DESK, CALLER, MONDAY_10, [])
    assert result.steps == closed_steps("exceptional-closure", "2026-11-23T12:00:00+01:00")
    assert (result.outcome, result.path[1]) == (VOICEMAIL_CLOSED, "hours:override_closed")
    after = await ivr.simulate(HELP_DESK, CALLER, until + timedelta(minutes=1), [])
    assert after.path[1] == "hours:open"
    await ivr.set_override(HELP_DESK, None, None, "", author="test")
    assert (await ivr.hours_status(HELP_DESK))["override"] is None


@pytest.mark.parametrize(("expires_at", "blocked"), [
    (None, True), (datetime(2026, 11, 23, 9, 30, tzinfo=UTC), True),  # 10:30 Paris: still blocked at 10:00
    (datetime(2026, 11, 23, 8, 59, tzinfo=UTC), False)])
async def test_blocked_caller(database: Database, expires_at: datetime | None, blocked: bool) -> None:
    ivr = await demo_ivr(database)
    await block(database, MOBILE, expires_at)
    result = await ivr.simulate(HELP_DESK, "06 12 34 56 78", MONDAY_10, [])
    if blocked:
        assert (result.steps, result.outcome, result.path) == (
            [played("blocked-caller")], Outcome("hangup"), ["screen:rule1", "refuse"])
    else:
        assert result.path[:2] == ["screen:default", "hours:open"]


@pytest.mark.parametrize(("vip", "company_vip", "welcome"), [
    (True, False, "welcome-vip"), (False, True, "welcome-vip"), (False, False, "welcome")])
async def test_a_known_caller_in_national_format(database: Database, vip: bool, company_vip: bool,
                                                 welcome: str) -> None:
    ivr = await demo_ivr(database)
    await add_contact(database, MOBILE, vip=vip, company_vip=company_vip)
    result = await ivr.simulate(HELP_DESK, "06 12 34 56 78", MONDAY_10, [])
    assert result.steps[0] == played(welcome)


async def test_a_contact_language_is_used_from_the_start(database: Database) -> None:
    ivr = await demo_ivr(database)
    await add_contact(database, MOBILE, language="fr")
    prepared = await ivr.prepare(HELP_DESK, MOBILE)
    assert prepared is not None and prepared.language == "fr"
    result = await ivr.simulate(HELP_DESK, MOBILE, MONDAY_10, ["", "", "9"])
    assert result.steps[:2] == [played("welcome", "fr"), read("choose-language", "", "fr")]
    assert (result.language, result.steps[-1]) == ("fr", read("main-menu", "9", "fr"))


@pytest.mark.parametrize("caller_id", ["", "anonymous"])
async def test_an_anonymous_caller(database: Database, caller_id: str) -> None:
    result = await (await demo_ivr(database)).simulate(HELP_DESK, caller_id, MONDAY_10, [])
    assert result.steps[:2] == [played("anonymous-caller"), played("welcome")]
    assert result.path[:3] == ["screen:rule2", "hidden-number", "hours:open"]


# --- saving flows and hours ------------------------------------------------------------------------


async def test_an_invalid_flow_is_refused_and_nothing_is_stored(database: Database) -> None:
    ivr = await demo_ivr(database)
    before = (await ivr.stored(HELP_DESK)).flow
    bad = {"start": "hi", "nodes": {"hi": {"type": "play", "prompts": ["welcome"], "next": "gone"}}}
    with pytest.raises(FlowInvalid) as caught:
        await ivr.save_flow(HELP_DESK, bad, author="test")
    assert caught.value.errors == ["node 'hi': next goes to 'gone', which does not exist"]
    stored = await ivr.stored(HELP_DESK)
    assert (stored.flow, stored.flow_version) == (before, 1)


async def test_each_save_bumps_the_version_and_calls_use_the_new_flow(database: Database) -> None:
    ivr = await demo_ivr(database)
    assert await ivr.save_flow(HELP_DESK, SMALL_FLOW, author="ada") == 2
    assert (await ivr.simulate(HELP_DESK, CALLER, MONDAY_20, [])).outcome == Outcome("hangup")
    assert await ivr.save_flow(HELP_DESK, {"start": "end", "nodes": {"end": {"type": "hangup"}}}, author="ada") == 3
    assert (await ivr.simulate(HELP_DESK, CALLER, MONDAY_20, [])).steps == []
    async with database.session() as session:
        row = await session.scalar(select(IvrFlow).join(ServiceNumber, ServiceNumber.id == IvrFlow.service_id)
                                   .where(ServiceNumber.number == HELP_DESK))
        assert row is not None and (row.version, row.updated_by) == (3, "ada")
    with pytest.raises(ServiceNotFound):
        await ivr.save_flow("5550000", SMALL_FLOW, author="ada")


async def test_a_prompt_recorded_in_every_language_becomes_known(database: Database, tmp_path: Path) -> None:
    ivr = await demo_ivr(database, prompts_dir=tmp_path)
    promo = {"start": "hi", "nodes": {"hi": {"type": "play", "prompts": ["promo-2026"], "next": "end"},
                                      "end": {"type": "hangup"}}}
    unknown = ["node 'hi': prompt 'promo-2026' is neither in the prompt catalog nor recorded"]
    for language in ("en", "fr"):
        with pytest.raises(FlowInvalid) as caught:
            await ivr.save_flow(HELP_DESK, promo, author="test")
        assert caught.value.errors == unknown
        (tmp_path / language).mkdir()
        (tmp_path / language / "promo-2026.wav").write_bytes(b"RIFF")
    assert await ivr.save_flow(HELP_DESK, promo, author="test") == 2


async def test_save_hours_refuses_an_override_and_keeps_the_old_hours(database: Database) -> None:
    ivr = await demo_ivr(database)
    before = (await ivr.stored(HELP_DESK)).hours
    document = {"timezone": "Europe/Paris", "weekly": {},
                "override": {"state": "closed", "until": "2026-11-24T00:00:00+01:00"}}
    with pytest.raises(ScheduleError) as caught:
        await ivr.save_hours(HELP_DESK, document, author="test")
    assert caught.value.errors == ["override: set it with the override action, not in the hours document"]
    assert (await ivr.stored(HELP_DESK)).hours == before
    await ivr.save_hours(HELP_DESK, {"timezone": "Europe/Paris", "weekly": {"monday": ["19:00-21:00"]}}, "test")
    assert (await ivr.hours_status(HELP_DESK, MONDAY_20))["status"] == "open"


@pytest.mark.parametrize(("until", "expected"), [
    (None, "override.until: required"),
    (MONDAY_10 - timedelta(minutes=1),
     "override.until: 2026-11-23T09:59:00+01:00 is not after now (2026-11-23T10:00:00+01:00)"),
    (MONDAY_10 + timedelta(days=31, seconds=1),
     "override.until: 2026-12-24T10:00:01+01:00 is more than 31 days ahead (use a dated entry)"),
])
async def test_set_override_refusals(database: Database, until: datetime | None, expected: str) -> None:
    ivr = await demo_ivr(database)
    with pytest.raises(ScheduleError) as caught:
        await ivr.set_override(HELP_DESK, "open", until, "", author="test")
    assert caught.value.errors == [expected]
    assert (await ivr.stored(HELP_DESK)).override is None


async def test_hours_status_shape(database: Database) -> None:
    ivr = await demo_ivr(database)
    assert await ivr.hours_status(HELP_DESK, CHRISTMAS_10) == {
        "configured": True, "at": "2026-12-25T10:00:00+01:00", "status": "holiday", "is_open": False,
        "reason": "Christmas Day", "holiday_name": "Christmas Day", "next_change": "2026-12-28T08:30:00+01:00",
        "timezone": "Europe/Paris", "override": None}
    await ivr.set_override(HELP_DESK, "open", MONDAY_10 + timedelta(days=1), "event", author="test")
    status = await ivr.hours_status(HELP_DESK, MONDAY_20)
    assert (status["status"], status["is_open"], status["reason"]) == ("override_open", True, "event")
    assert status["override"] == {"state": "open", "until": "2026-11-24T09:00:00+00:00", "reason": "event"}
    await import_document(ivr, {"number": "5559000", "name": "No hours"}, author="test")
    assert await ivr.hours_status("5559000") == {"configured": False, "status": "open",
                                                  "at": "2026-11-23T10:00:00+01:00"}


# --- service documents -----------------------------------------------------------------------------


def _demo_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(demo_documents()[0].read_text())
    return document


async def test_import_creates_the_service_with_its_parts(database: Database) -> None:
    ivr = ivr_service(database)
    service = await import_document(ivr, {**_demo_document(), "number": "5553000", "name": "Copy"}, author="test")
    assert (service.number, service.name, service.language, service.enabled) == ("5553000", "Copy", "en", True)
    stored = await ivr.stored("5553000")
    assert (stored.flow_version, stored.hours is not None, stored.flow is not None) == (1, True, True)
    assert (await ivr.simulate("5553000", CALLER, MONDAY_20, [])).outcome == VOICEMAIL_CLOSED


async def test_a_refused_document_writes_nothing(database: Database) -> None:
    ivr = ivr_service(database)
    document = {**_demo_document(), "hours": {"timezone": "Mars/Olympus", "weekly": {}},
                "flow": {"start": "a", "nodes": {"a": {"type": "play", "next": "b"}}}}
    with pytest.raises(DocumentInvalid) as caught:
        await import_document(ivr, document, author="test")
    assert caught.value.errors == ['hours.timezone: unknown time zone "Mars/Olympus"',
                                   "flow.node 'a': next goes to 'b', which does not exist"]
    assert [await count(database, model) for model in (ServiceNumber, ServiceHours, IvrFlow)] == [0, 0, 0]


@pytest.mark.parametrize(("change", "expected"), [
    ({"name": "Renamed", "flow": {"start": "x", "nodes": {}}},
     ["flow.nodes: Dictionary should have at least 1 item after validation, not 0"]),
    ({"hours": {"timezone": "Europe/Paris", "weekly": {},
                "override": {"state": "closed", "until": "2026-11-24T08:00:00+01:00"}}},
     ["hours.override: set it with the override action, not in the hours document"]),
    ({"name": "", "colour": "red"},
     ["colour: unknown key (expected enabled, flow, hours, language, name, number)",
      "name: a text of 1 to 120 characters"]),
], ids=["flow", "override", "fields"])
async def test_a_refused_update_leaves_the_service_as_it_was(database: Database, change: dict[str, Any],
                                                             expected: list[str]) -> None:
    ivr = await demo_ivr(database)
    before = await export_document(ivr, HELP_DESK)
    with pytest.raises(DocumentInvalid) as caught:
        await import_document(ivr, {**before, **change}, author="test")
    assert caught.value.errors == expected
    assert await export_document(ivr, HELP_DESK) == before
    assert (await ivr.hours_status(HELP_DESK))["status"] == "open"


async def test_export_then_import_gives_the_same_document(database: Database) -> None:
    ivr = await demo_ivr(database)
    exported = await export_document(ivr, HELP_DESK)
    assert exported["flow"]["nodes"]["message"] == {"type": "voicemail"}  # stored without defaults
    await import_document(ivr, {**exported, "number": "5553000"}, author="test")
    assert await export_document(ivr, "5553000") == {**exported, "number": "5553000"}
    await import_document(ivr, exported, author="test")
    assert await export_document(ivr, HELP_DESK) == exported
    assert (await ivr.stored(HELP_DESK)).flow_version == 2
    with pytest.raises(ServiceNotFound, match="no service number '5550000'"):
        await export_document(ivr, "5550000")


# --- caller directory ------------------------------------------------------------------------------


@pytest.mark.parametrize("caller_id", ["", "anonymous", "unknown", " Anonymous "])
async def test_withheld_caller_ids(database: Database, caller_id: str) -> None:
    assert await CallerDirectory(database, "FR").lookup(caller_id, MONDAY_10) == CallerProfile(number="",
                                                                                                 anonymous=True)


@pytest.mark.parametrize(("caller_id", "number"), [
    ("06 12 34 56 78", MOBILE), ("+33 6 12 34 56 78", MOBILE), ("0033612345678", MOBILE),
    ("+44 20 7946 0018", "+442079460018"), ("5551000", "5551000")])
async def test_lookup_normalises_numbers(database: Database, caller_id: str, number: str) -> None:
    await add_contact(database, MOBILE, vip=True, language="fr")
    profile = await CallerDirectory(database, "FR").lookup(caller_id, MONDAY_10)
    assert profile.number == number
    assert profile.known is (number == MOBILE)
    if number == MOBILE:
        assert (profile.contact_name, profile.company_name, profile.contract_level, profile.vip, profile.language) == (
            "Ada", "ACME", "gold", True, "fr")
        assert profile.classes() == {"known", "vip"}


async def test_lookup_of_an_unknown_number_with_an_expired_block(database: Database) -> None:
    await block(database, MOBILE, expires_at=(MONDAY_10 - timedelta(seconds=1)).astimezone(UTC))  # stored as UTC
    directory = CallerDirectory(database, "FR")
    assert await directory.lookup("0612345678", MONDAY_10) == CallerProfile(number=MOBILE)
    assert (await directory.lookup("0612345678", MONDAY_10 - timedelta(seconds=2))).blocked

