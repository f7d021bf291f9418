"""One row per change request (POST, PUT, PATCH, DELETE), whoever made it and whatever its outcome."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cti.db.base import Base, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))  # the user, or "<role> (api token)"
    role: Mapped[str] = mapped_column(String(16), default="")
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[int] = mapped_column(default=0)
    detail: Mapped[str] = mapped_column(Text, default="")  # the request's fields, secrets masked, shortened
