"""The screen pop's card: everything an agent wants to know before saying hello, from one database session.

Caller IDs reach us in whatever form the carrier used (``0612345678``, ``+33612345678``, ``33612345678``), and
older rows keep the form they were written with: history is matched on every form of the caller's number (as
received, E.164, national) and on every number of the identified contact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cti.call_records import PATH_SEPARATOR
from cti.contacts.directory import CallerDirectory
from cti.contacts.models import ContactNumber
from cti.contacts.profile import CallerProfile
from cti.db import Database
from cti.db.base import utcnow
from cti.db.models import CallRecord, ServiceNumber
from tickets.models import Recording, Ticket

OPEN_TICKET_STATUSES = ("new", "open", "pending", "planned")
SHOWN_TICKETS = 5
SHOWN_CALLS = 5
SHOWN_VOICEMAILS = 3
DTMF = frozenset("0123456789*#")


@dataclass(frozen=True)
class RingingCall:
    """What the ACD knows of the call it rings an agent for."""

    call_id: str  # the caller channel's uniqueid
    agent_id: str
    caller: str
    called: str = ""
    language: str = "en"
    queue: str = ""
    priority: int = 0
    joined: datetime | None = None
    waited_s: float = 0.0
    path: tuple[str, ...] = ()  # the ACD's own steps (queue, misses), after the IVR's


@dataclass(frozen=True)
class CardBuilder:
    db: Database
    directory: CallerDirectory

    async def build(self, call: RingingCall) -> dict[str, Any]:
        now = utcnow()
        profile = await self.directory.lookup(call.caller, now)
        async with self.db.session() as session:
            row = (await session.scalars(select(CallRecord).where(CallRecord.uniqueid == call.call_id))).first()
            numbers = await _numbers_of(session, profile, call.caller, self.directory.region)
            history = await _history(session, numbers, call.call_id)
            service = await _service_name(session, call.called or (row.called_number if row else ""))
        return _card(call, profile, row, service, history, now)


def _card(call: RingingCall, profile: CallerProfile, row: CallRecord | None, service: str,
          history: dict[str, list[dict[str, Any]]], now: datetime) -> dict[str, Any]:
    ivr_path = [step for step in (row.path.split(PATH_SEPARATOR) if row and row.path else []) if step]
    return {
        "call_id": call.call_id, "record_id": row.id if row else None, "agent_id": call.agent_id,
        "status": "ringing", "rang_at": now.isoformat(),
        "caller": {"received": call.caller, "number": profile.number, "anonymous": profile.anonymous,
                   "name": row.caller_name if row else ""},
        "known": profile.known, "offer_create_contact": not profile.known and not profile.anonymous,
        "contact": {"id": profile.contact_id, "name": profile.contact_name} if profile.known else None,
        "company": profile.company_name or None, "contract_level": profile.contract_level, "vip": profile.vip,
        "blocked": profile.blocked,
        "called": {"number": call.called or (row.called_number if row else ""), "service": service},
        "language": call.language, "queue": call.queue, "priority": call.priority,
        "joined_at": call.joined.isoformat() if call.joined else None, "waited_s": round(call.waited_s, 1),
        "ivr": {"path": ivr_path + list(call.path), "digits": typed_digits(ivr_path)},
        **history,
    }  # fmt: skip


def typed_digits(path: Iterable[str]) -> list[str]:
    """The keys the caller pressed, in order, from IVR steps like ``menu:1`` (not ``menu:invalid(7)``)."""
    return [step.rsplit(":", 1)[1] for step in path
            if ":" in step and step.rsplit(":", 1)[1] and set(step.rsplit(":", 1)[1]) <= DTMF]


def number_forms(number: str, region: str) -> set[str]:
    """The forms a number may have been stored in: as given, E.164 and national digits."""
    forms = {number} if number else set()
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return forms
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    forms |= {e164, e164.lstrip("+"), "".join(ch for ch in national if ch.isdigit())}
    return {form for form in forms if form}


async def _numbers_of(session: AsyncSession, profile: CallerProfile, received: str, region: str) -> set[str]:
    if profile.anonymous:
        return set()
    numbers = {profile.number, received}
    if profile.contact_id is not None:
        numbers |= set(await session.scalars(
            select(ContactNumber.number).where(ContactNumber.contact_id == profile.contact_id)))
    forms: set[str] = set()
    for number in numbers:
        forms |= number_forms(number, region)
    return forms


async def _history(session: AsyncSession, numbers: set[str], call_id: str) -> dict[str, list[dict[str, Any]]]:
    if not numbers:
        return {"open_tickets": [], "recent_calls": [], "voicemails": []}
    tickets = await session.scalars(
        select(Ticket).where(Ticket.caller_number.in_(numbers), Ticket.status.in_(OPEN_TICKET_STATUSES))
        .order_by(Ticket.created_at.desc()).limit(SHOWN_TICKETS))
    calls = await session.scalars(
        select(CallRecord).where(CallRecord.caller_number.in_(numbers), CallRecord.uniqueid != call_id)
        .order_by(CallRecord.started_at.desc()).limit(SHOWN_CALLS))
    voicemails = await session.scalars(
        select(Recording).where(Recording.caller_number.in_(numbers))
        .order_by(Recording.created_at.desc()).limit(SHOWN_VOICEMAILS))
    return {"open_tickets": [_ticket(t) for t in tickets], "recent_calls": [_call(c) for c in calls],
            "voicemails": [_voicemail(v) for v in voicemails]}


async def _service_name(session: AsyncSession, number: str) -> str:
    if not number:
        return ""
    name = await session.scalar(select(ServiceNumber.name).where(ServiceNumber.number == number))
    return name or ""


def _ticket(ticket: Ticket) -> dict[str, Any]:
    return {"id": ticket.id, "reference": ticket.reference, "subject": ticket.subject, "status": ticket.status,
            "priority": ticket.priority, "created_at": ticket.created_at.isoformat()}


def _call(call: CallRecord) -> dict[str, Any]:
    return {"started_at": call.started_at.isoformat(), "called_number": call.called_number,
            "outcome": call.outcome, "queue": call.queue, "agent_id": call.agent_id, "wait_s": call.wait_s,
            "talk_s": call.talk_s}


def _voicemail(recording: Recording) -> dict[str, Any]:
    return {"id": recording.id, "created_at": recording.created_at.isoformat(),
            "duration_s": recording.duration_s, "state": recording.state, "ticket_id": recording.ticket_id}
