"""Tickets and the voicemail that feeds them.

A voicemail is registered (``Recording``) the moment the caller hangs up, before any other work; a
``TranscriptionJob`` row then carries it through transcription to a ticket. Both survive restarts,
and ``Ticket.source_key`` makes filing idempotent (one ticket per recording, per missed call...).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cti.db.base import Base, utcnow

TICKET_STATUSES = ("new", "open", "pending", "planned", "resolved", "closed_unresolved")
TICKET_SOURCES = ("phone", "voicemail", "missed_call", "abandoned_call", "web")
RECORDING_STATES = ("recorded", "transcribing", "transcribed", "not_transcribed", "empty")
JOB_STATES = ("pending", "running", "done", "failed")


class Ticket(Base):
    __tablename__ = "tickets"
    # a caller's tickets, newest first, for the screen pop (cti/agents/cards.py) on every call
    __table_args__ = (Index("ix_tickets_caller_number_created_at", "caller_number", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(32), unique=True, default=None)
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(24), default="new", index=True)
    impact: Mapped[int] = mapped_column(default=2)  # 1 high .. 3 low
    urgency: Mapped[int] = mapped_column(default=2)  # 1 high .. 3 low
    priority: Mapped[int] = mapped_column(default=3)  # 1 critical .. 5 planning, from impact x urgency
    category: Mapped[str] = mapped_column(String(80), default="")
    queue: Mapped[str] = mapped_column(String(80), default="")
    assignee: Mapped[str | None] = mapped_column(String(80), default=None)
    contract_level: Mapped[str] = mapped_column(String(32), default="standard")
    response_due_at: Mapped[datetime | None] = mapped_column(default=None)
    resolve_due_at: Mapped[datetime | None] = mapped_column(default=None)
    source: Mapped[str] = mapped_column(String(24), default="phone")
    source_key: Mapped[str | None] = mapped_column(String(120), unique=True, default=None)
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    caller_name: Mapped[str] = mapped_column(String(128), default="")
    caller_email: Mapped[str] = mapped_column(String(254), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TicketEvent(Base):
    """The ticket's history: creation, comments, status changes, transcript, emails sent."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    author: Mapped[str] = mapped_column(String(80), default="system")
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(Base):
    """A file kept under the media folder; ``path`` is relative to it, never absolute, never '..'."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="audio")
    path: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(80), default="audio/wav")
    size_bytes: Mapped[int] = mapped_column(default=0)
    duration_s: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Recording(Base):
    """A voicemail on disk, registered before anything else happens to it."""

    __tablename__ = "recordings"
    # a caller's recordings, newest first, for the screen pop (cti/agents/cards.py) on every call
    __table_args__ = (Index("ix_recordings_caller_number_created_at", "caller_number", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(255), unique=True)  # relative to the media folder
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), default=None)
    uniqueid: Mapped[str] = mapped_column(String(64), default="")
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    caller_name: Mapped[str] = mapped_column(String(128), default="")
    called_number: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    reason: Mapped[str] = mapped_column(String(24), default="request")  # closed, overflow, request
    ivr_path: Mapped[str] = mapped_column(Text, default="")
    duration_s: Mapped[float] = mapped_column(default=0.0)
    state: Mapped[str] = mapped_column(String(24), default="recorded", index=True)
    # indexed: the voicemail recovery looks for the recordings not filed yet (ticket_id NULL) every few minutes
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TranscriptionJob(Base):
    """Durable work item: retried with backoff, taken over after a crash once its lease expires."""

    __tablename__ = "transcription_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(80), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str] = mapped_column(Text, default="")  # transcript JSON once done
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
