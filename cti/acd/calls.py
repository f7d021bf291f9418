"""A caller in the ACD, from the moment it joins a queue until it is answered or leaves.

The caller's channel is held by an AGI session (``cti.scripts.queue``) on this server node; the call object
is what that session and the ACD service share. Phases::

    waiting --(an agent reserved)--> assigned --(the session dials)--> dialing --(answer)--> answered
       ^                                |                                 |
       +------(ring-no-answer)----------+---------------------------------+
    waiting --(max wait)--> overflow;   any phase --(caller hangs up / asks for voicemail)--> left
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class CallPhase(StrEnum):
    WAITING = "waiting"
    ASSIGNED = "assigned"
    DIALING = "dialing"
    ANSWERED = "answered"
    OVERFLOW = "overflow"
    LEFT = "left"


@dataclass(eq=False)
class QueuedCall:
    """``id`` is the caller channel's uniqueid (stable across AMI Redirects). Monotonic seconds for
    ``arrived_at``/``answered_at`` (routing and wait figures), wall-clock ``joined`` for people."""

    id: str
    channel: str
    queue: str
    priority: int
    arrived_at: float
    joined: datetime
    caller: str = ""
    called: str = ""
    language: str = "en"
    skills: dict[str, int] | None = None
    preferred_agent: str | None = None
    phase: CallPhase = CallPhase.WAITING
    agent_id: str | None = None
    dial: str = ""
    overflow_target: str | None = None
    answered_at: float | None = None
    rule: str = ""  # the routing rule of the current or last assignment
    explanation: str = ""
    path: list[str] = field(default_factory=list)
    written: int = 0  # how many path steps the call's row already holds
    waited_before: float = 0.0  # seconds waited in the queues it overflowed from
    missed_by: dict[str, float] = field(default_factory=dict)  # agent -> until when it is not offered again
    redirected: bool = False  # an AMI Redirect is waking the holding session: its hang-up is not the caller's
    owner: object | None = None  # the AGI session holding the caller now
    attach_timer: asyncio.TimerHandle | None = None

    def waited(self, now: float) -> float:
        """The whole wait, over every queue the call went through (``arrived_at`` is the current queue's)."""
        end = self.answered_at if self.answered_at is not None else now
        return self.waited_before + max(0.0, end - self.arrived_at)

    def as_dict(self, now: float, position: int | None, estimate: float | None) -> dict[str, Any]:
        return {
            "id": self.id, "queue": self.queue, "priority": self.priority, "caller": self.caller,
            "called": self.called, "language": self.language, "phase": self.phase.value,
            "joined": self.joined.isoformat(), "waited_s": round(self.waited(now), 1), "position": position,
            "estimated_wait_s": None if estimate is None else round(estimate),
            "agent_id": self.agent_id, "rule": self.rule, "explanation": self.explanation,
        }  # fmt: skip
