"""The screen pop's card, built from the database (SQLite and PostgreSQL): who calls, their company and
contract, open tickets, recent calls and voicemails under every form of their number, the called service, the
IVR path and the keys pressed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from cti.agents.cards import CardBuilder, RingingCall, number_forms, typed_digits
from cti.contacts.directory import CallerDirectory
from cti.contacts.models import ContactNumber
from cti.db import Database
from cti.db.models import CallRecord, ServiceNumber
from tests.support.desktop import add_known_caller
from tickets.models import Recording, Ticket

CALL = "1732350000.9"
SUPPORT_LINE = "0800123456"
IVR_PATH = "welcome > menu:1 > lang:fr > menu2:invalid(7) > menu2:2"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _builder(db: Database) -> CardBuilder:
    return CardBuilder(db, CallerDirectory(db, "FR"))


def _ringing(caller: str, call_id: str = CALL, **fields: Any) -> RingingCall:
    return RingingCall(call_id=call_id, agent_id="alice", caller=caller, **fields)


async def _add(db: Database, *rows: object) -> None:
    async with db.session() as session:
        session.add_all(rows)


def _call(uniqueid: str, caller: str, minutes_ago: int, **fields: object) -> CallRecord:
    return CallRecord(uniqueid=uniqueid, channel=f"PJSIP/trunk-{uniqueid}", caller_number=caller,
                      started_at=T0 - timedelta(minutes=minutes_ago), **fields)


def _ticket(subject: str, caller: str, status: str, minutes_ago: int = 0) -> Ticket:
    return Ticket(subject=subject, caller_number=caller, status=status, created_at=T0 - timedelta(minutes=minutes_ago))


async def test_a_known_callers_card(database: Database) -> None:
    contact_id = await add_known_caller(database, "+33612345678", name="Jeanne Martin", company="Acme",
                                        contract_level="gold", vip=True)
    await _add(database, ContactNumber(contact_id=contact_id, number="+33140000000"))  # her office line
    await _add(
        database,
        ServiceNumber(number=SUPPORT_LINE, name="Support line"),
        _call(CALL, "0612345678", 0, caller_name="J MARTIN", called_number=SUPPORT_LINE, path=IVR_PATH),
        _call("old.1", "0612345678", 60 * 24, outcome="answered", queue="support", agent_id="bob", talk_s=80.0),
        _call("old.2", "+33612345678", 60, outcome="abandoned"),
        _call("old.3", "0140000000", 30, outcome="voicemail"),  # from her other number, national form
        _call("other", "0698765432", 10),
        _ticket("Router down", "+33612345678", "open", 5),
        _ticket("Invoice", "0612345678", "new", 10),
        _ticket("Old problem", "+33612345678", "resolved", 20),
        _ticket("Gave up", "+33612345678", "closed_unresolved", 25),
        _ticket("Someone else", "+33698765432", "open", 30),
        Recording(path="vm/1.wav", caller_number="+33612345678", duration_s=12.5),
        Recording(path="vm/2.wav", caller_number="+33698765432"),
    )
    joined = datetime(2026, 3, 2, 8, 59, tzinfo=UTC)
    card = await _builder(database).build(_ringing("0612345678", queue="support", language="fr", priority=2,
                                                   joined=joined, waited_s=42.36, path=("queue:support",)))

    assert (card["call_id"], card["agent_id"], card["status"]) == (CALL, "alice", "ringing")
    row_id = (await _row(database, CALL)).id
    assert card["record_id"] == row_id
    assert card["caller"] == {"received": "0612345678", "number": "+33612345678", "anonymous": False,
                              "name": "J MARTIN"}
    assert (card["known"], card["offer_create_contact"]) == (True, False)
    assert card["contact"] == {"id": contact_id, "name": "Jeanne Martin"}
    assert (card["company"], card["contract_level"], card["vip"], card["blocked"]) == ("Acme", "gold", True, False)
    assert card["called"] == {"number": SUPPORT_LINE, "service": "Support line"}
    assert (card["queue"], card["language"], card["priority"], card["waited_s"]) == ("support", "fr", 2, 42.4)
    assert card["joined_at"] == joined.isoformat()
    assert card["ivr"] == {"path": ["welcome", "menu:1", "lang:fr", "menu2:invalid(7)", "menu2:2", "queue:support"],
                           "digits": ["1", "2"]}
    assert [ticket["subject"] for ticket in card["open_tickets"]] == ["Router down", "Invoice"]  # newest first
    assert {ticket["status"] for ticket in card["open_tickets"]} == {"open", "new"}
    assert [call["outcome"] for call in card["recent_calls"]] == ["voicemail", "abandoned", "answered"]
    assert card["recent_calls"][2] == {
        "started_at": card["recent_calls"][2]["started_at"], "called_number": "", "outcome": "answered",
        "queue": "support", "agent_id": "bob", "wait_s": None, "talk_s": 80.0}
    [voicemail] = card["voicemails"]
    assert (voicemail["duration_s"], voicemail["state"], voicemail["ticket_id"]) == (12.5, "recorded", None)


async def test_history_stored_under_another_form_of_the_number_is_found(database: Database) -> None:
    """An unknown caller, received in E.164: rows written with the national digits or without the + match."""
    await _add(
        database,
        _call(CALL, "+33698765432", 0),
        _call("old.national", "0698765432", 30),
        _call("old.bare", "33698765432", 20),
        _ticket("Call me back", "0698765432", "pending"),
        Recording(path="vm/9.wav", caller_number="0698765432"),
    )
    card = await _builder(database).build(_ringing("+33698765432"))
    assert (card["known"], card["offer_create_contact"], card["contact"], card["company"]) == (False, True, None, None)
    assert (card["caller"]["number"], card["contract_level"], card["vip"]) == ("+33698765432", None, False)
    assert len(card["recent_calls"]) == 2
    assert [ticket["subject"] for ticket in card["open_tickets"]] == ["Call me back"]
    assert len(card["voicemails"]) == 1


async def test_an_unknown_caller_without_a_row_or_history(database: Database) -> None:
    card = await _builder(database).build(_ringing("0698765432", called=SUPPORT_LINE))
    assert (card["known"], card["offer_create_contact"], card["record_id"]) == (False, True, None)
    assert card["caller"] == {"received": "0698765432", "number": "+33698765432", "anonymous": False, "name": ""}
    assert card["called"] == {"number": SUPPORT_LINE, "service": ""}  # no such service number
    assert card["ivr"] == {"path": [], "digits": []}
    assert (card["open_tickets"], card["recent_calls"], card["voicemails"]) == ([], [], [])


async def test_an_anonymous_caller_is_not_offered_a_contact_nor_others_history(database: Database) -> None:
    await _add(database, _call(CALL, "anonymous", 0), _call("old.anon", "anonymous", 30),
               _ticket("From nobody", "anonymous", "open"))
    card = await _builder(database).build(_ringing("anonymous"))
    assert (card["known"], card["offer_create_contact"], card["caller"]["anonymous"]) == (False, False, True)
    assert card["caller"]["number"] == ""
    assert (card["open_tickets"], card["recent_calls"], card["voicemails"]) == ([], [], [])


async def test_the_called_number_given_by_the_acd_names_the_service(database: Database) -> None:
    await _add(database, ServiceNumber(number="0800999999", name="Billing"),
               _call(CALL, "0612345678", 0, called_number=SUPPORT_LINE))
    card = await _builder(database).build(_ringing("0612345678", called="0800999999"))
    assert card["called"] == {"number": "0800999999", "service": "Billing"}


def test_number_forms() -> None:
    national = {"0612345678", "+33612345678", "33612345678"}
    assert number_forms("0612345678", "FR") == national
    assert number_forms("+33612345678", "FR") == national
    assert number_forms("33612345678", "FR") == national  # a carrier that drops the +
    assert number_forms("0033612345678", "FR") == national | {"0033612345678"}
    assert number_forms("+442071234567", "FR") == {"+442071234567", "442071234567", "02071234567"}
    assert number_forms("abc", "FR") == {"abc"}
    assert number_forms("", "FR") == set()


def test_typed_digits_keep_the_keys_pressed_in_order() -> None:
    path = ["welcome", "menu:1", "lang:fr", "menu2:invalid(7)", "menu2:2", "pin:#", "ext:12*", "menu3:",
            "queue:support"]
    assert typed_digits(path) == ["1", "2", "#", "12*"]
    assert typed_digits([]) == []


async def _row(db: Database, uniqueid: str) -> CallRecord:
    async with db.session() as session:
        found = (await session.scalars(select(CallRecord).where(CallRecord.uniqueid == uniqueid))).first()
    assert found is not None
    return found
