"""Every version of every prompt, and which one each prompt plays now.

A version row is written once (its file never changes); ``activate_at`` holds a scheduled activation until it
is applied or cancelled. ``prompt_active`` says which version the played file is a copy of.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cti.db.base import Base, utcnow

SOURCES = ("upload", "tts", "placeholder")


class PromptVersion(Base):
    __tablename__ = "prompt_versions"
    __table_args__ = (
        UniqueConstraint("name", "language", "version", name="uq_prompt_versions_name_language_version"),
        CheckConstraint("language IN ('en', 'fr')", name="language"),
        CheckConstraint("source IN ('upload', 'tts', 'placeholder')", name="source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    version: Mapped[int]
    source: Mapped[str] = mapped_column(String(16))
    original_filename: Mapped[str] = mapped_column(String(255), default="")
    duration_s: Mapped[float]
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(String(500), default="")
    activate_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    scheduled_by: Mapped[str] = mapped_column(String(120), default="")


class ActivePrompt(Base):
    __tablename__ = "prompt_active"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    language: Mapped[str] = mapped_column(String(2), primary_key=True)
    version: Mapped[int]
    activated_by: Mapped[str] = mapped_column(String(120))
    activated_at: Mapped[datetime] = mapped_column(default=utcnow)
