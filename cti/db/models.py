"""Core tables: the numbers callers dial, and one row per call.

Capability packages (``cti.ivr``, ``cti.acd``...) add their own tables on the same ``Base``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cti.db.base import Base, utcnow


class ServiceNumber(Base):
    """A called number (DNIS) and the service that answers it."""

    __tablename__ = "service_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(8), default="en")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallRecord(Base):
    """One inbound call, written when Asterisk hands it over and updated until it ends."""

    __tablename__ = "calls"
    # a caller's calls, newest first: the screen pop's recent calls and the ACD's preferred agent read these on
    # every call; without it each read walked the whole table (docs/RELIABILITY.md, "Soak")
    __table_args__ = (Index("ix_calls_caller_number_started_at", "caller_number", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(128))
    caller_number: Mapped[str] = mapped_column(String(64), default="")
    caller_name: Mapped[str] = mapped_column(String(128), default="")
    called_number: Mapped[str] = mapped_column(String(64), default="")
    service_id: Mapped[int | None] = mapped_column(ForeignKey("service_numbers.id"), default=None)
    language: Mapped[str] = mapped_column(String(8), default="en")
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # indexed: the wallboard reads the calls that ended lately and the open ones (cti.supervision.today_figures)
    ended_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    outcome: Mapped[str] = mapped_column(String(32), default="in_progress")
    path: Mapped[str] = mapped_column(Text, default="")
    # the ACD's part, when the call was queued: where, who answered, and how long it waited and talked
    queue: Mapped[str | None] = mapped_column(String(64), default=None)
    agent_id: Mapped[str | None] = mapped_column(String(32), default=None)
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    wait_s: Mapped[float | None] = mapped_column(default=None)
    talk_s: Mapped[float | None] = mapped_column(default=None)
    # the agent's wrap-up: what came of the call (one of the desktop's outcomes), a note, who set it and when
    disposition: Mapped[str | None] = mapped_column(String(32), default=None)
    disposition_note: Mapped[str] = mapped_column(Text, default="")
    disposition_by: Mapped[str | None] = mapped_column(String(80), default=None)
    disposition_at: Mapped[datetime | None] = mapped_column(default=None)
