"""The ``users`` table: one row per person who logs in; ``agent_id`` ties an agent to the ACD agent it is.

``agent_id`` has no foreign key on purpose: the ACD configuration is replaced as a whole by an import, and a
login must survive an agent being re-created (or not yet created).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from cti.db.base import Base, utcnow

ROLES = ("admin", "supervisor", "agent")
LANGUAGES = ("en", "fr")


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'supervisor', 'agent')", name="role"),
        CheckConstraint("language IS NULL OR language IN ('en', 'fr')", name="language"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(32), unique=True, default=None)
    language: Mapped[str | None] = mapped_column(String(2), default=None)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
