"""The ticket core: create (idempotently), read, list, move through the workflow, comment.

Every change writes a history row (``TicketEvent``) in the same transaction as the change itself, so
the history never disagrees with the ticket. Events for live screens are published after the commit,
best effort: a ticket exists once committed whether or not a subscriber heard about it.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cti.db import Database
from cti.db.base import Base, utcnow
from cti.db.models import CallRecord
from cti.settings import TicketSettings
from tickets.errors import AttachmentNotFound, InvalidTicket, TicketConflict, TicketNotFound
from tickets.models import TICKET_SOURCES, Attachment, Ticket, TicketEvent
from tickets.priority import check_level, check_status, check_transition, due_dates, priority
from tickets.types import NewAttachment, NewTicket

log = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_COMMENT = 10_000
MAX_TEXT = 100_000  # description (a 15-minute transcript is ~15,000 characters of plain text)
MAX_EVENT_BODY = 1_000_000  # other packages' events: a transcript as JSON with per-word timings is ~100 chars/word
MAX_SEARCH = 200
MAX_ID = 2**31 - 1  # INTEGER on PostgreSQL: a larger id cannot exist, and asyncpg would refuse to bind it
SYSTEM = "system"

_COPIED = ("subject", "description", "source", "source_key", "impact", "urgency", "category", "queue",
           "contract_level", "caller_number", "caller_name", "caller_email", "language", "call_id")
_TEXTS = ("subject", "description", "category", "queue", "contract_level", "caller_number", "caller_name",
          "caller_email", "language")


@dataclass(frozen=True)
class TicketView:
    """A ticket with its history (oldest first) and attachments, read in one transaction."""

    ticket: Ticket
    events: tuple[TicketEvent, ...]
    attachments: tuple[Attachment, ...]


@dataclass(frozen=True)
class TicketFilter:
    """What ``TicketService.list`` selects; every field narrows, empty/None means "any".

    ``created_from`` is inclusive and ``created_to`` exclusive; naive datetimes are taken as UTC.
    ``search`` is plain text matched case-insensitively inside subject or description (no wildcards).
    """

    statuses: tuple[str, ...] = ()
    source: str | None = None
    queue: str | None = None
    assignee: str | None = None
    caller_number: str | None = None
    call_id: int | None = None
    search: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def __post_init__(self) -> None:
        for status in self.statuses:
            check_status(status)
        if self.source is not None:
            check_source(self.source)
        for name in ("queue", "assignee", "caller_number", "search"):
            value = getattr(self, name)
            if value is not None:
                check_text(name, value, MAX_SEARCH)
        if self.call_id is not None and not _valid_id(self.call_id):
            raise InvalidTicket(f"call_id must be between 1 and {MAX_ID}, got {self.call_id}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidTicket(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}")
        if self.offset < 0:
            raise InvalidTicket(f"offset must be 0 or more, got {self.offset}")


class TicketService:
    """Tickets in the database; ``publish`` (usually ``TicketEvents.publish``) tells live screens."""

    def __init__(self, db: Database, settings: TicketSettings, publish: Publish | None = None) -> None:
        self._db = db
        self._settings = settings
        self._publisher = publish

    async def create(self, new: NewTicket) -> Ticket:
        """File a ticket; with a ``source_key`` already filed, return that ticket unchanged.

        Idempotence rests on the unique constraint, not on the look-up: two concurrent creators both
        insert, the loser gets an ``IntegrityError`` and reads the winner's row.
        """
        check_new(new)
        existing = await self._by_source_key(new.source_key)
        if existing is not None:
            return existing
        await self._check_call(new.call_id)
        try:
            ticket = await self._insert(new)
        except IntegrityError:
            existing = await self._by_source_key(new.source_key)
            if existing is None:
                raise
            return existing
        await self._publish("ticket.created", summary(ticket))
        return ticket

    async def get(self, ticket_id: int) -> TicketView:
        async with self._db.session() as session:
            ticket = await _ticket(session, ticket_id)
            events = await session.scalars(
                select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
            )
            attachments = await session.scalars(
                select(Attachment).where(Attachment.ticket_id == ticket_id).order_by(Attachment.id)
            )
            return TicketView(ticket, tuple(events), tuple(attachments))

    async def update(
        self, ticket_id: int, *, status: str | None = None, assignee: str | None = None, author: str
    ) -> Ticket:
        """Change status (workflow-checked) and/or assignee (``""`` unassigns); unchanged values are no-ops."""
        if status is None and assignee is None:
            raise InvalidTicket("nothing to update: give a status and/or an assignee")
        check_author(author)
        if assignee:
            check_text("assignee", assignee, _limit(Ticket, "assignee"))
        async with self._db.session() as session:
            ticket = await _ticket(session, ticket_id, lock=True)
            events = await _change_status(session, ticket, status, author)
            events += _change_assignee(ticket, assignee, author)
            session.add_all(events)
        if events:
            await self._publish("ticket.updated", {**summary(ticket), "changes": [e.kind for e in events]})
        return ticket

    async def comment(self, ticket_id: int, author: str, body: str) -> TicketEvent:
        """A person's note on the ticket (1..10,000 characters, not blank)."""
        check_text("comment", body, MAX_COMMENT, required=True)
        ticket, event = await self._append(ticket_id, "comment", body, author)
        await self._publish("ticket.commented", {**summary(ticket), "event": event_summary(event)})
        return event

    async def add_event(self, ticket_id: int, kind: str, body: str, author: str = SYSTEM) -> TicketEvent:
        """History written by other packages (``transcript``, ``email_sent``...)."""
        check_text("kind", kind, _limit(TicketEvent, "kind"), required=True)
        check_text("body", body, MAX_EVENT_BODY)
        ticket, event = await self._append(ticket_id, kind, body, author)
        await self._publish("ticket.updated", {**summary(ticket), "changes": [kind]})
        return event

    async def attachment(self, ticket_id: int, attachment_id: int) -> Attachment:
        """Only an attachment of *that* ticket: guessing ids never reaches another ticket's file."""
        if not (_valid_id(ticket_id) and _valid_id(attachment_id)):
            raise AttachmentNotFound(ticket_id, attachment_id)
        async with self._db.session() as session:
            found = await session.scalars(
                select(Attachment).where(Attachment.id == attachment_id, Attachment.ticket_id == ticket_id)
            )
            row = found.first()
        if row is None:
            raise AttachmentNotFound(ticket_id, attachment_id)
        return row

    async def list(self, filter: TicketFilter) -> builtins.list[Ticket]:
        """Newest first (then highest id, so equal timestamps page stably)."""
        async with self._db.session() as session:
            return builtins.list(await session.scalars(_query(filter)))

    # --- internals ------------------------------------------------------------------------------

    async def _insert(self, new: NewTicket) -> Ticket:
        """Row, reference, "created" event and attachments commit together or not at all."""
        now = utcnow()
        ticket = _ticket_row(new, self._settings, now)
        async with self._db.session() as session:
            session.add(ticket)
            await session.flush()  # the id, for the reference
            ticket.reference = f"{self._settings.reference_prefix}-{ticket.id:06d}"
            session.add(TicketEvent(ticket_id=ticket.id, kind="created", author=SYSTEM,
                                    body=f"created from {new.source}", created_at=now))
            session.add_all(_attachment_row(ticket.id, item, now) for item in new.attachments)
        return ticket

    async def _by_source_key(self, source_key: str | None) -> Ticket | None:
        if source_key is None:
            return None
        async with self._db.session() as session:
            return (await session.scalars(select(Ticket).where(Ticket.source_key == source_key))).first()

    async def _check_call(self, call_id: int | None) -> None:
        """Read outside the insert's transaction: a read-then-write transaction can fail on a busy SQLite."""
        if call_id is None:
            return
        async with self._db.session() as session:
            found = _valid_id(call_id) and await session.get(CallRecord, call_id) is not None
        if not found:
            raise InvalidTicket(f"no call with id {call_id}")

    async def _append(self, ticket_id: int, kind: str, body: str, author: str) -> tuple[Ticket, TicketEvent]:
        check_author(author)
        async with self._db.session() as session:
            ticket = await _ticket(session, ticket_id)
            event = TicketEvent(ticket_id=ticket.id, kind=kind, author=author, body=body)
            session.add(event)
            ticket.updated_at = utcnow()
        return ticket, event

    async def _publish(self, kind: str, payload: dict[str, Any]) -> None:
        """Best effort: the change is committed already, and pub/sub is at-most-once anyway."""
        if self._publisher is None:
            return
        try:
            await self._publisher(kind, payload)
        except Exception:  # a down Redis must not turn a committed change into an error for the caller
            log.exception("could not publish %s for ticket %s", kind, payload.get("id"))


# --- validation --------------------------------------------------------------------------------


def check_text(name: str, value: object, max_length: int, *, required: bool = False) -> str:
    """Strings only, no NUL (PostgreSQL refuses it in text), within the column's length."""
    if not isinstance(value, str):
        raise InvalidTicket(f"{name} must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidTicket(f"{name} must not contain NUL characters")
    if len(value) > max_length:
        raise InvalidTicket(f"{name} is {len(value)} characters long; the maximum is {max_length}")
    if required and not value.strip():
        raise InvalidTicket(f"{name} must not be empty")
    return value


def check_source(source: object) -> str:
    if source not in TICKET_SOURCES:
        raise InvalidTicket(f"unknown source {source!r} (known: {', '.join(TICKET_SOURCES)})")
    return str(source)


def check_author(author: object) -> str:
    return check_text("author", author, _limit(TicketEvent, "author"), required=True)


def check_media_path(path: object) -> str:
    """Attachment paths are relative to the media folder and stay inside it ('..' and absolute refused)."""
    text = check_text("attachment path", path, _limit(Attachment, "path"), required=True)
    if text.startswith("/") or "\\" in text or ".." in PurePosixPath(text).parts:
        raise InvalidTicket(f"attachment path must be relative to the media folder, got {text!r}")
    return text


def check_new(new: NewTicket) -> None:
    for name in _TEXTS:
        limit = MAX_TEXT if name == "description" else _limit(Ticket, name)
        check_text(name, getattr(new, name), limit, required=name == "subject")
    check_source(new.source)
    check_level("impact", new.impact)
    check_level("urgency", new.urgency)
    if new.source_key is not None:
        check_text("source_key", new.source_key, _limit(Ticket, "source_key"), required=True)
    for attachment in new.attachments:
        _check_attachment(attachment)


def _check_attachment(attachment: NewAttachment) -> None:
    check_media_path(attachment.path)
    check_text("attachment kind", attachment.kind, _limit(Attachment, "kind"), required=True)
    check_text("attachment content_type", attachment.content_type, _limit(Attachment, "content_type"), required=True)
    if attachment.size_bytes < 0 or attachment.duration_s < 0:
        raise InvalidTicket(f"attachment {attachment.path!r}: size and duration must not be negative")


def _limit(model: type[Base], column: str) -> int:
    """Lengths come from the model, so validation cannot drift from the schema."""
    length = getattr(model.__table__.c[column].type, "length", None)
    return length if isinstance(length, int) else MAX_TEXT


def _valid_id(value: int) -> bool:
    return 1 <= value <= MAX_ID


# --- rows and queries --------------------------------------------------------------------------


def _ticket_row(new: NewTicket, settings: TicketSettings, now: datetime) -> Ticket:
    response_due, resolve_due = due_dates(now, new.contract_level, settings.sla)
    fields = {name: getattr(new, name) for name in _COPIED}
    fields["subject"] = new.subject.strip()
    return Ticket(**fields, status="new", priority=priority(new.impact, new.urgency), response_due_at=response_due,
                  resolve_due_at=resolve_due, created_at=now, updated_at=now)


def _attachment_row(ticket_id: int, item: NewAttachment, now: datetime) -> Attachment:
    return Attachment(ticket_id=ticket_id, kind=item.kind, path=item.path, content_type=item.content_type,
                      size_bytes=item.size_bytes, duration_s=item.duration_s, created_at=now)


async def _ticket(session: AsyncSession, ticket_id: int, lock: bool = False) -> Ticket:
    """``lock`` takes the row (FOR UPDATE on PostgreSQL) so concurrent transitions are checked one by one."""
    ticket = await session.get(Ticket, ticket_id, with_for_update=lock) if _valid_id(ticket_id) else None
    if ticket is None:
        raise TicketNotFound(ticket_id)
    return ticket


async def _change_status(
    session: AsyncSession, ticket: Ticket, status: str | None, author: str
) -> builtins.list[TicketEvent]:
    """Compare-and-set: SQLite has no FOR UPDATE, so a change made since our read is caught here instead."""
    if status is None or status == ticket.status:
        return []
    old = ticket.status
    check_transition(old, status)
    result = await session.execute(
        update(Ticket).where(Ticket.id == ticket.id, Ticket.status == old).values(status=status, updated_at=utcnow())
    )
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise TicketConflict(f"ticket {ticket.id} changed status meanwhile; reload it and try again")
    ticket.status = status
    return [TicketEvent(ticket_id=ticket.id, kind="status_changed", author=author, body=f"{old} -> {status}")]


def _change_assignee(ticket: Ticket, assignee: str | None, author: str) -> builtins.list[TicketEvent]:
    new = assignee or None
    if assignee is None or new == ticket.assignee:
        return []
    body = f"{ticket.assignee or 'nobody'} -> {new or 'nobody'}"
    ticket.assignee = new
    return [TicketEvent(ticket_id=ticket.id, kind="assigned", author=author, body=body)]


def _query(f: TicketFilter) -> Select[Ticket]:
    query = select(Ticket)
    for condition in _conditions(f):
        query = query.where(condition)
    return query.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(f.limit).offset(f.offset)


def _conditions(f: TicketFilter) -> Iterator[ColumnElement[bool]]:
    if f.statuses:
        yield Ticket.status.in_(f.statuses)
    equal = ((Ticket.source, f.source), (Ticket.queue, f.queue), (Ticket.assignee, f.assignee),
             (Ticket.caller_number, f.caller_number), (Ticket.call_id, f.call_id))
    yield from (column == value for column, value in equal if value is not None)
    if f.search:
        yield or_(Ticket.subject.icontains(f.search, autoescape=True),
                  Ticket.description.icontains(f.search, autoescape=True))
    if f.created_from is not None:
        yield Ticket.created_at >= as_utc(f.created_from)
    if f.created_to is not None:
        yield Ticket.created_at < as_utc(f.created_to)


def as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive value (e.g. a date filter given without an offset) is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- event payloads (JSON-ready: no datetimes) ---------------------------------------------------


def summary(ticket: Ticket) -> dict[str, Any]:
    return {"id": ticket.id, "reference": ticket.reference, "subject": ticket.subject, "status": ticket.status,
            "priority": ticket.priority, "queue": ticket.queue, "assignee": ticket.assignee,
            "source": ticket.source, "caller_number": ticket.caller_number, "call_id": ticket.call_id}


def event_summary(event: TicketEvent) -> dict[str, Any]:
    return {"id": event.id, "kind": event.kind, "author": event.author, "body": event.body}
