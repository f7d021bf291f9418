"""Agents left ringing or on a call by a node that is gone: found, checked against Asterisk, released.

A node reserves an agent (``ringing``) and owns the call until it ends; if the node is killed, nobody ends
it. An agent is an *orphan* when the node named in its status is dead (its heartbeat key expired,
:mod:`cti.acd.liveness`; or the status was seeded from the database after a restart, with no node), or is
this node but this node does not hold that call with that agent (a restart that kept its node id).

An orphan is only changed on what Asterisk says now (a fresh ``CoreShowChannels``, never the event-fed
picture, never a guess): when AMI cannot answer, nothing happens and the next pass tries again. The call id
is the caller channel's uniqueid, so the caller's channel is looked up directly:

* no such channel: the call is over. ``on_call`` -> wrap-up (the queue's ``wrap_up_s``, as after any call);
  ``ringing`` -> available, no miss counted (the agent did not fail, the server did).
* the caller is in a bridge: the agent answered (perhaps after the node died): ``ringing`` -> ``on_call``;
  an ``on_call`` agent is left alone. Either is released by a later pass once the channel is gone.
* the caller runs ``Dial`` without a bridge: the agent's phone still rings; left alone.
* the caller is alive elsewhere (voicemail, the fallback prompt, music in a new queue session): the ring or
  the conversation is over (our Dial is the only way to the agent): released as if the channel were gone.
  A ring younger than ``SETTLE_S`` is left for a moment (the owner may be about to dial), and when Asterisk
  does not say what the channel runs, a ring is released only past ``STALE_RINGING_S``, longer than any
  ring timeout allows; that age bound is all that remains of the old "ringing too long" rule, which freed
  agents on age alone, even one whose caller was still ringing them or talking to them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import select

from cti.acd.liveness import NodeHeartbeat
from cti.acd.model import CALL_STATES, AgentState
from cti.acd.records import note_answer
from cti.acd.shared import AgentBoard, AgentStatus, Change
from cti.channels import LiveChannel
from cti.db import Database
from cti.db.models import CallRecord
from cti.state.errors import StateError

log = logging.getLogger(__name__)

STALE_RINGING_S = 150.0  # longer than any ring timeout (120 s max): no Dial of ours rings that long
SETTLE_S = 10.0  # a reservation younger than this may still be on its way to the Dial (AMI Redirect)
IN_CALL_APPLICATIONS = frozenset({"dial"})  # what the caller's channel runs while our Dial rings or talks


class ChannelSource(Protocol):
    async def snapshot(self) -> Mapping[str, LiveChannel] | None:
        """Asterisk's live channels by uniqueid right now, or None when it cannot be asked."""
        ...


class Verdict(StrEnum):
    KEEP = "keep"  # the call lives: leave the agent as it is
    ANSWERED = "answered"  # ringing, but the caller is bridged: the agent answered
    RELEASE = "release"  # ringing for a call that is over: available, no miss
    FINISH = "finish"  # on a call that is over: wrap-up


def verdict(status: AgentStatus, channel: LiveChannel | None, now: float) -> Verdict:
    """What to do with an orphan agent, given its caller's channel as Asterisk lists it now (module doc)."""
    ringing = status.state is AgentState.RINGING
    if channel is None:
        return Verdict.RELEASE if ringing else Verdict.FINISH
    if channel.bridge_id:
        return Verdict.ANSWERED if ringing else Verdict.KEEP
    if channel.application.lower() in IN_CALL_APPLICATIONS:
        return Verdict.KEEP
    age = now - status.since
    if ringing and (age < SETTLE_S or (not channel.application and age <= STALE_RINGING_S)):
        return Verdict.KEEP
    return Verdict.RELEASE if ringing else Verdict.FINISH


Step = Callable[[str, Change], Awaitable[AgentStatus | None]]


@dataclass
class AgentRecovery:
    """One pass over the agents mirrored by this node (``statuses``); see the module docstring.

    ``holds(status)``: whether this node holds that agent's call now. ``wrap_up_for(queue)``: the wrap-up of
    a queue (None: the call's queue is unknown). ``step``: applies a change to the shared status and mirrors
    it (the service's call-driven step). ``told(call, agent, verdict)``: after a change, so the agent's desktop
    and the wallboard hear what became of the call (the node that would have told them is gone)."""

    board: AgentBoard
    nodes: NodeHeartbeat
    channels: ChannelSource | None
    db: Database
    holds: Callable[[AgentStatus], bool]
    wrap_up_for: Callable[[str | None], float]
    step: Step
    told: Callable[[str, str, Verdict], None] = lambda call, agent, verdict: None

    async def run(self, statuses: Mapping[str, AgentStatus]) -> dict[str, Verdict]:
        """Check every orphan once; returns what was decided for each (KEEP included)."""
        orphans = await self._orphans(statuses)
        if not orphans:
            return {}
        picture = await self.channels.snapshot() if self.channels is not None else None
        if picture is None:
            log.info("ACD recovery: %d agent(s) of a gone node wait for AMI to check their calls", len(orphans))
            return {}
        decided: dict[str, Verdict] = {}
        now = self.board.now()
        for status in orphans:
            decided[status.agent_id] = outcome = verdict(status, picture.get(status.call), now)
            if outcome is not Verdict.KEEP:
                await self._apply(status, outcome)
                self.told(status.call, status.agent_id, outcome)
        return decided

    async def _orphans(self, statuses: Mapping[str, AgentStatus]) -> list[AgentStatus]:
        found = []
        alive: dict[str, bool] = {}
        try:
            for status in statuses.values():
                if status.state not in CALL_STATES or self.holds(status):
                    continue
                if status.node not in alive:
                    alive[status.node] = await self.nodes.alive(status.node)
                if not alive[status.node] or status.node == self.nodes.node_id:
                    found.append(status)
        except StateError as exc:  # cannot tell who is alive: touch nothing
            log.warning("ACD recovery: node liveness unknown (%s); retrying later", exc)
            return []
        return found

    async def _apply(self, status: AgentStatus, outcome: Verdict) -> None:
        call = status.call
        log.warning("agent %s: %s for call %s of gone node %r -> %s", status.agent_id, status.state.value, call,
                    status.node, outcome.value)
        if outcome is Verdict.RELEASE:
            await self.step(status.agent_id, self.board.released(call))
            return
        answered_at = self.board.now() if outcome is Verdict.ANSWERED else status.since
        await note_answer(self.db, call, status.agent_id, datetime.fromtimestamp(answered_at, tz=UTC))
        if outcome is Verdict.ANSWERED:
            await self.step(status.agent_id, self.board.answered(call))
        else:
            wrap_up = self.wrap_up_for(await self._queue_of(call))
            await self.step(status.agent_id, self.board.finished(call, wrap_up))

    async def _queue_of(self, uniqueid: str) -> str | None:
        """The queue the call was in, from its row (the wrap-up is the queue's); None if unknown."""
        try:
            async with self.db.session() as session:
                found = await session.scalars(select(CallRecord.queue).where(CallRecord.uniqueid == uniqueid))
                return found.first()
        except Exception:
            log.exception("call %s: could not read its queue; default wrap-up", uniqueid)
            return None
