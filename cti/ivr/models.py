"""Each service number's flow and opening hours, stored as the admin's own document (JSON).

The documents are validated before they are written (:mod:`cti.ivr.service`), so what is stored always
parses; ``version`` lets the running server cache the parsed flow and notice a save.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cti.db.base import Base, utcnow


class IvrFlow(Base):
    __tablename__ = "ivr_flows"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service_numbers.id", ondelete="CASCADE"), unique=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(default=1)
    updated_by: Mapped[str] = mapped_column(String(80), default="system")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ServiceHours(Base):
    """Weekly hours, holidays and dated exceptions; the manual override sits apart (set in one click)."""

    __tablename__ = "service_hours"

    service_id: Mapped[int] = mapped_column(ForeignKey("service_numbers.id", ondelete="CASCADE"),
                                            primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    override_state: Mapped[str | None] = mapped_column(String(8), default=None)
    override_until: Mapped[datetime | None] = mapped_column(default=None)
    override_reason: Mapped[str] = mapped_column(String(200), default="")
    override_by: Mapped[str] = mapped_column(String(80), default="")
    updated_by: Mapped[str] = mapped_column(String(80), default="system")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
