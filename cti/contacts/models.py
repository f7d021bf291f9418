"""Companies (with their contract level), contacts with several phone numbers, and blocked numbers.

Numbers are stored in E.164 (``+33612345678``) so a lookup is one indexed equality whatever the
caller ID looked like.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cti.db.base import Base, utcnow


class Company(Base):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    contract_level: Mapped[str] = mapped_column(String(32), default="standard")
    vip: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), default="")
    language: Mapped[str | None] = mapped_column(String(8), default=None)
    vip: Mapped[bool] = mapped_column(default=False)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"), default=None,
                                                   index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactNumber(Base):
    __tablename__ = "contact_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    label: Mapped[str] = mapped_column(String(40), default="")


class BlockedNumber(Base):
    """A number whose calls a flow's caller rules can refuse; ``expires_at`` None blocks until removed."""

    __tablename__ = "blocked_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
