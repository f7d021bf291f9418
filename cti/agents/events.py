"""Events for agents' desktops: the one place that publishes them.

An event for one agent gets that agent's next sequence number (one counter per agent in the shared state, so
every node numbers one agent's events on one scale) and goes out on ``CHANNEL`` of the shared state's pub/sub;
every node's :class:`~cti.agents.hub.AgentHub` receives it, keeps it for replay and hands it to the sockets it
holds for that agent. The wire form is ``<agent id>\\x1f<seq>\\x1f<JSON envelope>`` so a hub routes and
buffers a message without decoding it. Broadcasts (the wallboard) use ``*`` as the agent and carry no sequence number.

A counter can start over (the in-process state dies with the server; a flushed Redis), and a desktop's
``since`` from the old numbering would then name other events. So each agent's numbering has an identity, its
*stream*: a random id kept beside the counter, created once, gone with it.

The cards of the calls on an agent's screen (ringing, answered, ended and waiting for an outcome) are also kept
in the shared state, so a desktop that connects, or reconnects to another node, is shown them at once.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cti.state import StateBackend
from cti.state.errors import StateError

log = logging.getLogger(__name__)

CHANNEL = "agents:events"
SEPARATOR = "\x1f"
EVERYONE = "*"
SEQ_KEY = "agents:seq:"
STREAM_KEY = "agents:stream:"
CARDS_KEY = "agents:cards:"
CARD_TTL_S = 4 * 3600.0  # a card left behind by a node that died disappears from the desktop after this

Deliver = Callable[[str], None]


def wire(agent_id: str, envelope: dict[str, Any]) -> str:
    seq = envelope.get("seq")
    text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return f"{agent_id}{SEPARATOR}{'' if seq is None else seq}{SEPARATOR}{text}"


def unwire(message: str) -> tuple[str, int | None, str]:
    """``(agent id, seq or None, JSON text)``; raises ValueError on a message that is not ours."""
    agent_id, seq, text = message.split(SEPARATOR, 2)
    return agent_id, int(seq) if seq else None, text


def envelope(kind: str, data: dict[str, Any], seq: int | None, agent_id: str) -> dict[str, Any]:
    return {"type": kind, "seq": seq, "agent_id": agent_id, "at": datetime.now(UTC).isoformat(), "data": data}


class AgentEvents:
    """Publishes agents' events; ``local`` (this node's hub) is used directly when the shared state is down."""

    def __init__(self, state: StateBackend, local: Deliver | None = None) -> None:
        self._state = state
        self._local = local

    async def emit(self, agent_id: str, kind: str, data: dict[str, Any]) -> int | None:
        """Send ``kind`` to every desktop of ``agent_id``; returns its sequence number (None when unsequenced)."""
        try:
            seq = await self._state.incr(SEQ_KEY + agent_id)
        except StateError:
            log.warning("agent %s: shared state down, %s delivered on this node only", agent_id, kind)
            self._deliver_here(wire(agent_id, envelope(kind, data, None, agent_id)))
            return None
        await self._publish(wire(agent_id, envelope(kind, data, seq, agent_id)))
        return seq

    async def broadcast(self, kind: str, data: dict[str, Any]) -> None:
        """To every connected desktop on every node (no sequence: a broadcast is a snapshot, not history)."""
        await self._publish(wire(EVERYONE, envelope(kind, data, None, EVERYONE)))

    async def last_seq(self, agent_id: str) -> int:
        value = await self._state.get(SEQ_KEY + agent_id)
        return int(value) if value else 0

    async def stream(self, agent_id: str) -> str:
        """The identity of the agent's numbering, created (set-if-absent: every node agrees) the first time it is
        asked for. Kept beside the counter, so it outlives a restart exactly when the counter does. Read it before
        the counter (as the greeting does): if both are lost in between, the desktop is handed a stream that is
        gone, and is not resumed on it."""
        key = STREAM_KEY + agent_id
        current = await self._state.get(key)
        if current is not None:
            return current
        fresh = secrets.token_hex(8)
        if await self._state.set_if_absent(key, fresh):
            return fresh
        return await self._state.get(key) or fresh  # another node created it first (or it vanished: no match)

    async def _publish(self, message: str) -> None:
        try:
            await self._state.publish(CHANNEL, message)
        except StateError:
            log.warning("shared state down: event delivered on this node only")
            self._deliver_here(message)

    def _deliver_here(self, message: str) -> None:
        if self._local is not None:
            self._local(message)

    # --- the call cards on an agent's screen --------------------------------------------------------------

    async def keep_card(self, agent_id: str, card: dict[str, Any]) -> None:
        stamped = {**card, "_expires": datetime.now(UTC).timestamp() + CARD_TTL_S}
        try:
            await self._state.hset(CARDS_KEY + agent_id, {str(card["call_id"]): json.dumps(stamped)})
        except StateError:
            log.warning("agent %s: shared state down, card of call %s not kept", agent_id, card.get("call_id"))

    async def drop_card(self, agent_id: str, call_id: str) -> None:
        try:
            await self._state.hdel(CARDS_KEY + agent_id, call_id)
        except StateError:
            log.warning("agent %s: shared state down, card of call %s not dropped", agent_id, call_id)

    async def card(self, agent_id: str, call_id: str) -> dict[str, Any] | None:
        cards = await self.cards(agent_id)
        return next((card for card in cards if card.get("call_id") == call_id), None)

    async def cards(self, agent_id: str) -> list[dict[str, Any]]:
        """The agent's current cards, oldest first; expired ones are removed on the way."""
        stored = await self._state.hgetall(CARDS_KEY + agent_id)
        now = datetime.now(UTC).timestamp()
        live: list[dict[str, Any]] = []
        expired: list[str] = []
        for call_id, text in stored.items():
            card = json.loads(text)
            if card.pop("_expires", now + 1) > now:
                live.append(card)
            else:
                expired.append(call_id)
        if expired:
            await self._state.hdel(CARDS_KEY + agent_id, *expired)
        return sorted(live, key=lambda card: str(card.get("rang_at", "")))
