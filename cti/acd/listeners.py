"""Who else hears about a queued call's ringing, answer and end: the agents' screen pops, later the wallboard.

The ACD calls every listener in a background task of its own, so a slow or failing listener never delays a
caller; each hook receives the call as it is at that moment.
"""

from __future__ import annotations

from typing import Protocol

from cti.acd.calls import QueuedCall
from cti.acd.recovery import Verdict


class CallListener(Protocol):
    async def ringing(self, call: QueuedCall, agent_id: str) -> None:
        """``agent_id`` was reserved for the call and is about to ring (before the phone does)."""

    async def answered(self, call: QueuedCall, agent_id: str) -> None: ...

    async def not_answered(self, call: QueuedCall, agent_id: str, status: str) -> None:
        """The agent let it ring (or was busy, unreachable); the caller is back in its place."""

    async def caller_left(self, call: QueuedCall, agent_id: str | None, reason: str) -> None:
        """The caller hung up or chose voicemail before an answer; ``agent_id`` is the one ringing, if any."""

    async def ended(self, call: QueuedCall, agent_id: str, talk_s: float) -> None: ...

    async def recovered(self, call_id: str, agent_id: str, outcome: Verdict) -> None:
        """The node that held call ``call_id`` died and :mod:`cti.acd.recovery` settled its agent from what
        Asterisk says now: ``RELEASE`` (the ring is over, unanswered), ``ANSWERED`` (the agent talks to the
        caller), ``FINISH`` (the conversation is over; its length is not known). Never ``KEEP``."""
