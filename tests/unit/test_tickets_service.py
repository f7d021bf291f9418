"""The ticket service on SQLite and the real PostgreSQL: creation, idempotence, filters, workflow, events."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, update

from cti.call_records import open_call
from cti.db import Database
from cti.db.models import CallRecord
from cti.settings import SlaTarget, TicketSettings
from cti.state import InMemoryStateBackend, Subscription
from tickets.errors import AttachmentNotFound, InvalidTicket, InvalidTransition, TicketConflict, TicketNotFound
from tickets.events import CHANNEL, TicketEvents
from tickets.models import Attachment, Ticket, TicketEvent
from tickets.service import MAX_LIMIT, TicketFilter, TicketService, as_utc
from tickets.types import NewAttachment, NewTicket

SETTINGS = TicketSettings(reference_prefix="HD")
VOICEMAIL = NewTicket(
    subject="Printer on fire", source="voicemail", description="The printer in room 4 is smoking.",
    source_key="recording:1", impact=1, urgency=2, contract_level="gold", caller_number="+33612345678",
    caller_name="Hélène", queue="hardware",
    attachments=(NewAttachment(path="recordings/2026/vm-1.wav", size_bytes=4096, duration_s=12.5),),
)


def _service(database: Database, publish: Any = None) -> TicketService:
    return TicketService(database, SETTINGS, publish)


async def _count(database: Database, model: type[Ticket] | type[TicketEvent] | type[Attachment]) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _set_created(database: Database, ticket_id: int, when: datetime) -> None:
    async with database.session() as session:
        await session.execute(update(Ticket).where(Ticket.id == ticket_id).values(created_at=when))


async def _next(subscription: Subscription) -> dict[str, Any]:
    _channel, message = await asyncio.wait_for(anext(subscription), 5)
    decoded: dict[str, Any] = json.loads(message)
    return decoded


# --- creation --------------------------------------------------------------------------------------


async def test_create_files_a_numbered_ticket_with_priority_sla_history_and_attachments(database: Database) -> None:
    service = _service(database)
    ticket = await service.create(VOICEMAIL)
    assert ticket.reference == f"HD-{ticket.id:06d}"
    assert (ticket.status, ticket.priority, ticket.source) == ("new", 2, "voicemail")
    created = as_utc(ticket.created_at)
    assert ticket.response_due_at is not None and ticket.resolve_due_at is not None
    assert as_utc(ticket.response_due_at) - created == timedelta(hours=2)  # gold
    assert as_utc(ticket.resolve_due_at) - created == timedelta(hours=24)
    view = await service.get(ticket.id)
    assert view.ticket.caller_name == "Hélène"
    assert [(e.kind, e.author) for e in view.events] == [("created", "system")]
    attachments = [(a.path, a.size_bytes, a.duration_s) for a in view.attachments]
    assert attachments == [("recordings/2026/vm-1.wav", 4096, 12.5)]


async def test_unknown_contract_level_gets_the_standard_sla(database: Database) -> None:
    ticket = await _service(database).create(NewTicket(subject="x", source="phone", contract_level="bronze"))
    assert ticket.contract_level == "bronze"
    assert ticket.resolve_due_at is not None
    assert as_utc(ticket.resolve_due_at) - as_utc(ticket.created_at) == timedelta(hours=72)


async def test_create_without_a_source_key_always_files_a_new_ticket(database: Database) -> None:
    service = _service(database)
    first = await service.create(NewTicket(subject="a", source="phone"))
    second = await service.create(NewTicket(subject="a", source="phone"))
    assert first.id != second.id
    assert first.reference != second.reference


async def test_create_is_idempotent_on_the_source_key(database: Database) -> None:
    service = _service(database)
    first = await service.create(VOICEMAIL)
    again = await service.create(NewTicket(subject="something else", source="voicemail", source_key="recording:1"))
    assert again.id == first.id
    assert again.subject == "Printer on fire"
    assert (await _count(database, Ticket), await _count(database, TicketEvent)) == (1, 1)
    assert await _count(database, Attachment) == 1


async def test_twenty_concurrent_creates_with_one_source_key_make_exactly_one_ticket(database: Database) -> None:
    service = _service(database)
    tickets = await asyncio.gather(*(service.create(VOICEMAIL) for _ in range(20)))
    assert len({t.id for t in tickets}) == 1
    assert {t.reference for t in tickets} == {f"HD-{tickets[0].id:06d}"}
    counts = [await _count(database, model) for model in (Ticket, TicketEvent, Attachment)]
    assert counts == [1, 1, 1]


async def test_a_ticket_links_to_its_call(database: Database) -> None:
    call_id = await open_call(database, CallRecord(uniqueid="1700000000.7", channel="PJSIP/x-1"))
    service = _service(database)
    ticket = await service.create(NewTicket(subject="missed", source="missed_call", call_id=call_id))
    await service.create(NewTicket(subject="other", source="phone"))
    assert [t.id for t in await service.list(TicketFilter(call_id=call_id))] == [ticket.id]


@pytest.mark.parametrize(("change", "message"), [
    ({"subject": "  "}, "subject must not be empty"),
    ({"subject": "x" * 201}, "subject is 201 characters long; the maximum is 200"),
    ({"source": "fax"}, "unknown source 'fax'"),
    ({"impact": 4}, "impact must be 1"),
    ({"urgency": 0}, "urgency must be 1"),
    ({"description": "a\x00b"}, "description must not contain NUL"),
    ({"source_key": ""}, "source_key must not be empty"),
    ({"attachments": (NewAttachment(path="../../etc/passwd"),)}, "relative to the media folder"),
    ({"attachments": (NewAttachment(path="/etc/passwd"),)}, "relative to the media folder"),
    ({"call_id": 424242}, "no call with id 424242"),
])
async def test_invalid_tickets_are_refused_with_a_clear_message(
    database: Database, change: dict[str, Any], message: str
) -> None:
    fields = {"subject": "ok", "source": "phone", **change}
    with pytest.raises(InvalidTicket, match=message) as caught:
        await _service(database).create(NewTicket(**fields))
    assert caught.value.code == "tickets.invalid"
    assert await _count(database, Ticket) == 0


async def test_no_standard_sla_and_an_unknown_level_is_refused(database: Database) -> None:
    settings = TicketSettings(sla={"gold": SlaTarget(response_hours=1, resolve_hours=2)})
    with pytest.raises(InvalidTicket, match="no SLA for contract level 'bronze'"):
        await TicketService(database, settings).create(NewTicket(subject="x", source="phone", contract_level="bronze"))


# --- reading and listing ---------------------------------------------------------------------------


async def test_get_unknown_ticket(database: Database) -> None:
    for ticket_id in (12345, 0, -1, 2**40):
        with pytest.raises(TicketNotFound) as caught:
            await _service(database).get(ticket_id)
        assert caught.value.code == "tickets.not_found"


async def _three(service: TicketService, database: Database) -> list[Ticket]:
    specs = [
        NewTicket(subject="VPN down", source="phone", queue="network", caller_number="100", description="100% broken"),
        NewTicket(subject="Mail quota", source="voicemail", queue="mail", caller_number="200"),
        NewTicket(subject="New laptop", source="missed_call", queue="hardware", caller_number="100",
                  description="wants a_b"),
    ]
    tickets = [await service.create(spec) for spec in specs]
    for days, ticket in enumerate(tickets):
        await _set_created(database, ticket.id, datetime(2026, 1, 10 + days, 12, tzinfo=UTC))
    return tickets


async def test_list_filters(database: Database) -> None:
    service = _service(database)
    vpn, mail, laptop = await _three(service, database)
    await service.update(mail.id, status="open", assignee="alice", author="agent")

    async def ids(**kwargs: Any) -> list[int]:
        return [t.id for t in await service.list(TicketFilter(**kwargs))]

    assert await ids() == [laptop.id, mail.id, vpn.id]  # newest first
    assert await ids(statuses=("open",)) == [mail.id]
    assert await ids(statuses=("new", "open")) == [laptop.id, mail.id, vpn.id]
    assert await ids(source="missed_call") == [laptop.id]
    assert await ids(queue="network") == [vpn.id]
    assert await ids(assignee="alice") == [mail.id]
    assert await ids(caller_number="100") == [laptop.id, vpn.id]
    assert await ids(caller_number="100", source="phone") == [vpn.id]
    assert await ids(created_from=datetime(2026, 1, 11, 12, tzinfo=UTC)) == [laptop.id, mail.id]
    assert await ids(created_to=datetime(2026, 1, 11, 12, tzinfo=UTC)) == [vpn.id]
    plus_one_thirty = timezone(timedelta(hours=1.5))  # 13:30+01:30 is 12:00 UTC: converted, not compared as text
    assert await ids(created_from=datetime(2026, 1, 11, 13, 30, tzinfo=plus_one_thirty)) == [laptop.id, mail.id]
    assert await ids(limit=1, offset=1) == [mail.id]
    assert await ids(offset=3) == []


async def test_search_is_case_insensitive_plain_text(database: Database) -> None:
    service = _service(database)
    vpn, _mail, laptop = await _three(service, database)

    async def ids(search: str) -> list[int]:
        return [t.id for t in await service.list(TicketFilter(search=search))]

    assert await ids("vpn") == [vpn.id]
    assert await ids("LAPTOP") == [laptop.id]
    assert await ids("100%") == [vpn.id]  # '%' is a character, not a wildcard
    assert await ids("a_b") == [laptop.id]
    assert await ids("%") == [vpn.id]
    assert await ids("_") == [laptop.id]
    assert await ids("' OR 1=1 --") == []
    assert await _count(database, Ticket) == 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"limit": MAX_LIMIT + 1}, "limit must be between 1 and 200"),
    ({"limit": 0}, "limit must be between 1 and 200"),
    ({"offset": -1}, "offset must be 0 or more"),
    ({"statuses": ("open", "closed")}, "unknown status 'closed'"),
    ({"source": "fax"}, "unknown source 'fax'"),
    ({"search": "x" * 201}, "search is 201 characters long"),
    ({"call_id": 2**40}, "call_id must be between"),
])
def test_bad_filters_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTicket, match=message):
        TicketFilter(**kwargs)


# --- workflow, comments, history -------------------------------------------------------------------


async def test_transitions_write_history(database: Database) -> None:
    service = _service(database)
    ticket = await service.create(NewTicket(subject="x", source="phone"))
    await service.update(ticket.id, status="open", author="agent")
    resolved = await service.update(ticket.id, status="resolved", assignee="bob", author="supervisor")
    assert (resolved.status, resolved.assignee) == ("resolved", "bob")
    assert as_utc(resolved.updated_at) >= as_utc(ticket.updated_at)
    reopened = await service.update(ticket.id, status="open", assignee="", author="agent")
    assert (reopened.status, reopened.assignee) == ("open", None)
    history = [(e.kind, e.author, e.body) for e in (await service.get(ticket.id)).events]
    assert history == [
        ("created", "system", "created from phone"),
        ("status_changed", "agent", "new -> open"),
        ("status_changed", "supervisor", "open -> resolved"),
        ("assigned", "supervisor", "nobody -> bob"),
        ("status_changed", "agent", "resolved -> open"),
        ("assigned", "agent", "bob -> nobody"),
    ]


async def test_invalid_transition_changes_nothing(database: Database) -> None:
    service = _service(database)
    ticket = await service.create(NewTicket(subject="x", source="phone"))
    await service.update(ticket.id, status="resolved", author="agent")
    with pytest.raises(InvalidTransition) as caught:
        await service.update(ticket.id, status="pending", assignee="carol", author="agent")
    assert (caught.value.old, caught.value.new, caught.value.allowed) == ("resolved", "pending", ("open",))
    view = await service.get(ticket.id)
    assert (view.ticket.status, view.ticket.assignee) == ("resolved", None)
    assert len(view.events) == 2


async def test_unchanged_values_are_no_ops_and_empty_updates_are_refused(database: Database) -> None:
    service = _service(database)
    ticket = await service.create(NewTicket(subject="x", source="phone"))
    await service.update(ticket.id, status="new", assignee="", author="agent")
    assert len((await service.get(ticket.id)).events) == 1
    with pytest.raises(InvalidTicket, match="nothing to update"):
        await service.update(ticket.id, author="agent")
    with pytest.raises(InvalidTicket, match="unknown status 'done'"):
        await service.update(ticket.id, status="done", author="agent")
    with pytest.raises(TicketNotFound):
        await service.update(999, status="open", author="agent")


async def test_comments(database: Database) -> None:
    service = _service(database)
    ticket = await service.create(NewTicket(subject="x", source="phone"))
    event = await service.comment(ticket.id, "agent", "Called back, no answer.")
    assert (event.kind, event.author, event.ticket_id) == ("comment", "agent", ticket.id)
    assert event.id is not None and event.created_at is not None
    await service.comment(ticket.id, "agent", "é" * 10_000)
    for body, message in (("", "must not be empty"), ("  \n", "must not be empty"),
                          ("x" * 10_001, "the maximum is 10000"), ("a\x00", "NUL")):
        with pytest.raises(InvalidTicket, match=message):
            await service.comment(ticket.id, "agent", body)
    with pytest.raises(TicketNotFound):
        await service.comment(999, "agent", "hello")
    assert [e.kind for e in (await service.get(ticket.id)).events] == ["created", "comment", "comment"]


async def test_add_event_for_other_packages(database: Database) -> None:
    service = _service(database)
    ticket = await service.create(NewTicket(subject="x", source="voicemail"))
    event = await service.add_event(ticket.id, "transcript", "hello my printer")
    assert (event.kind, event.author) == ("transcript", "system")
    await service.add_event(ticket.id, "email_sent", "to caller@example.org", author="mailer")
    assert [e.kind for e in (await service.get(ticket.id)).events] == ["created", "transcript", "email_sent"]
    with pytest.raises(InvalidTicket, match="kind is 25 characters long"):
        await service.add_event(ticket.id, "k" * 25, "")


async def test_attachment_belongs_to_its_ticket(database: Database) -> None:
    service = _service(database)
    ticket = await service.create(VOICEMAIL)
    other = await service.create(NewTicket(subject="other", source="phone"))
    attachment = (await service.get(ticket.id)).attachments[0]
    assert (await service.attachment(ticket.id, attachment.id)).path == "recordings/2026/vm-1.wav"
    with pytest.raises(AttachmentNotFound) as caught:
        await service.attachment(other.id, attachment.id)
    assert caught.value.code == "tickets.attachment_not_found"
    with pytest.raises(TicketNotFound):  # the parent class, for callers that only care about "404"
        await service.attachment(ticket.id, 2**40)


# --- events ----------------------------------------------------------------------------------------


async def test_changes_are_published_on_the_tickets_channel(database: Database) -> None:
    state = InMemoryStateBackend()
    subscription = await state.subscribe(CHANNEL)
    service = _service(database, TicketEvents(state).publish)
    ticket = await service.create(VOICEMAIL)
    await service.create(VOICEMAIL)  # idempotent: nothing new, nothing published
    await service.update(ticket.id, status="open", assignee="alice", author="agent")
    await service.comment(ticket.id, "agent", "on it")
    await service.add_event(ticket.id, "transcript", "...")
    await state.publish(CHANNEL, json.dumps({"kind": "end"}))
    created, updated, commented, transcript, end = [await _next(subscription) for _ in range(5)]
    assert created["kind"] == "ticket.created"
    assert created["data"]["reference"] == ticket.reference and created["data"]["status"] == "new"
    assert updated["kind"] == "ticket.updated"
    assert updated["data"]["changes"] == ["status_changed", "assigned"]
    assert updated["data"]["assignee"] == "alice"
    assert commented["kind"] == "ticket.commented"
    assert commented["data"]["event"]["body"] == "on it"
    assert transcript["data"]["changes"] == ["transcript"]
    assert end == {"kind": "end"}
    await state.close()


async def test_a_failing_publisher_does_not_undo_or_fail_the_change(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(kind: str, payload: dict[str, Any]) -> None:
        raise ConnectionError("redis is down")

    ticket = await _service(database, broken).create(NewTicket(subject="x", source="phone"))
    assert (await _service(database).get(ticket.id)).ticket.subject == "x"
    assert "could not publish ticket.created" in caplog.text


async def test_concurrent_status_changes_keep_a_consistent_history(database: Database) -> None:
    """Every change is checked against the status it really leaves: the history is one unbroken chain."""
    service = _service(database)
    ticket = await service.create(NewTicket(subject="x", source="phone"))
    targets = ["open", "pending", "planned", "resolved", "closed_unresolved"] * 6
    results = await asyncio.gather(*(service.update(ticket.id, status=s, author="agent") for s in targets),
                                   return_exceptions=True)
    assert all(isinstance(r, Ticket | InvalidTransition | TicketConflict) for r in results), results
    view = await service.get(ticket.id)
    chain = [e.body.split(" -> ") for e in view.events if e.kind == "status_changed"]
    assert chain, "at least one change went through"
    assert chain[0][0] == "new"
    for (_, reached), (left, _) in itertools.pairwise(chain):
        assert left == reached
    assert chain[-1][1] == view.ticket.status
