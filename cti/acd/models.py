"""The ACD's configuration and its agents' live state, stored.

Agents are rows (one per agent, edited one at a time); a queue is the admin's document as JSON, checked
by :mod:`cti.acd.config` before it is written, so what is stored always parses. ``acd_agent_status`` keeps
each agent's last state (logged in where, paused and why) so a restart does not log everyone out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cti.acd.config import MAX_ENDPOINT
from cti.db.base import Base, utcnow


class AcdAgent(Base):
    __tablename__ = "acd_agents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    team: Mapped[str] = mapped_column(String(80), default="")
    skills: Mapped[dict[str, int]] = mapped_column(JSON)
    endpoint: Mapped[str] = mapped_column(String(MAX_ENDPOINT), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AcdQueue(Base):
    __tablename__ = "acd_queues"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AcdAgentStatus(Base):
    """An agent's state since ``since``; ``endpoint`` is where the agent logged in (rings go there)."""

    __tablename__ = "acd_agent_status"

    agent_id: Mapped[str] = mapped_column(ForeignKey("acd_agents.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(80), default=None)
    endpoint: Mapped[str] = mapped_column(String(MAX_ENDPOINT), default="")
    call: Mapped[str] = mapped_column(String(64), default="", server_default="")  # ringing / on_call: which call
    since: Mapped[datetime] = mapped_column()
