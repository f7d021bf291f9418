"""This node's agent desktops: who is connected, what they were sent, and the feed that reaches them.

Every node follows the shared state's agent channel (:mod:`cti.agents.events`) and the ACD's agent-state
channel, keeps each agent's recent sequenced events for a short window (a desktop that reconnects, to this node
or another one, is sent what it missed), and hands each message to the sockets it holds for the agent: several
tabs each get every event. A socket is an :class:`Outbox`: a bounded queue with its own sender, so one slow
browser never delays the others; when it overflows it is closed and the desktop reconnects and resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from cti.acd.shared import CHANNEL as ACD_CHANNEL
from cti.acd.shared import AgentStatus
from cti.agents.events import CHANNEL, EVERYONE, envelope, unwire, wire
from cti.event_wait import wait_set
from cti.state import StateBackend
from cti.state.follow import follow

log = logging.getLogger(__name__)

BUFFER_EVENTS = 64  # per agent: far more than one agent's events in the replay window
REPLAY_WINDOW_S = 300.0
RESUBSCRIBE_S = 1.0


class Outbox(Protocol):
    """One connected desktop: ``push`` never blocks; it returns False when the socket is being dropped."""

    def push(self, text: str, seq: int | None = None) -> bool: ...


@dataclass(frozen=True)
class Buffered:
    seq: int
    at: float
    text: str


def agent_state_event(status: AgentStatus) -> str:
    """The ACD's state change as the desktop's ``agent_state`` event (unsequenced: it is a snapshot)."""
    data = {"state": status.state.value, "reason": status.reason, "endpoint": status.endpoint,
            "call": status.call or None, "since": status.since, "until": status.until or None}
    return json.dumps(envelope("agent_state", data, None, status.agent_id), separators=(",", ":"))


class AgentHub:
    def __init__(self, state: StateBackend, *, monotonic: Callable[[], float] = time.monotonic,
                 window_s: float = REPLAY_WINDOW_S, buffer_events: int = BUFFER_EVENTS) -> None:
        self._state = state
        self._monotonic = monotonic
        self._window_s = window_s
        self._buffer_events = buffer_events
        self._clients: dict[str, set[Outbox]] = {}
        self._buffers: dict[str, deque[Buffered]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.delivered = 0  # messages handed to sockets, for the status page and the benchmark

    # --- life cycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Returns once the feed is subscribed (or has failed once and is retrying in the background)."""
        self._task = asyncio.create_task(self._follow(), name="agent-hub")
        await wait_set(self._ready, 5.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- sockets --------------------------------------------------------------------------------------------

    def add(self, agent_id: str, client: Outbox) -> None:
        self._clients.setdefault(agent_id, set()).add(client)

    def remove(self, agent_id: str, client: Outbox) -> None:
        clients = self._clients.get(agent_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self._clients[agent_id]

    def connected(self, agent_id: str) -> int:
        return len(self._clients.get(agent_id, ()))

    @property
    def sockets(self) -> int:
        return sum(len(clients) for clients in self._clients.values())

    def clients(self) -> Iterator[tuple[str, Outbox]]:
        for agent_id, clients in list(self._clients.items()):
            for client in list(clients):
                yield agent_id, client

    # --- replay ---------------------------------------------------------------------------------------------

    def replay(self, agent_id: str, since: int, last_seq: int) -> list[Buffered] | None:
        """The events after ``since`` up to ``last_seq`` (the shared counter), or None when some are not here
        any more (too old, or this node missed them): the desktop then starts afresh from a snapshot."""
        if since >= last_seq:
            return []
        self._prune(agent_id)
        missed = [item for item in self._buffers.get(agent_id, ()) if since < item.seq <= last_seq]
        expected = list(range(since + 1, last_seq + 1))
        return missed if [item.seq for item in missed] == expected else None

    def _keep(self, agent_id: str, seq: int, text: str) -> None:
        buffer = self._buffers.get(agent_id)
        if buffer is None:
            buffer = self._buffers[agent_id] = deque(maxlen=self._buffer_events)
        if buffer and buffer[-1].seq >= seq:  # out of order (two nodes published at once): keep seq order
            items = sorted([*buffer, Buffered(seq, self._monotonic(), text)], key=lambda item: item.seq)
            buffer.clear()
            buffer.extend(items)
        else:
            buffer.append(Buffered(seq, self._monotonic(), text))
        self._prune(agent_id)

    def _prune(self, agent_id: str) -> None:
        buffer = self._buffers.get(agent_id)
        if buffer is None:
            return
        oldest = self._monotonic() - self._window_s
        while buffer and buffer[0].at < oldest:
            buffer.popleft()
        if not buffer:
            del self._buffers[agent_id]

    # --- delivery -------------------------------------------------------------------------------------------

    def deliver(self, message: str) -> None:
        """One message of the agent channel (``events.wire`` form) to this node's sockets, kept for replay."""
        try:
            agent_id, seq, text = unwire(message)
        except ValueError:
            log.warning("agent hub: ignored a malformed message %r", message[:80])
            return
        if agent_id == EVERYONE:
            for _, client in self.clients():
                self._push(client, text, None)
            return
        if seq is not None:
            self._keep(agent_id, seq, text)
        for client in list(self._clients.get(agent_id, ())):
            self._push(client, text, seq)

    def deliver_local(self, agent_id: str, kind: str, data: dict[str, Any]) -> None:
        """An unsequenced event straight to this node's sockets of ``agent_id`` (replies, snapshots)."""
        self.deliver(wire(agent_id, envelope(kind, data, None, agent_id)))

    def _push(self, client: Outbox, text: str, seq: int | None) -> None:
        if client.push(text, seq):
            self.delivered += 1

    def _agent_state(self, message: str) -> None:
        try:
            status = AgentStatus.decode(message)
        except (ValueError, KeyError, TypeError):
            log.warning("agent hub: ignored a malformed agent state %r", message[:80])
            return
        clients = self._clients.get(status.agent_id)
        if clients:
            text = agent_state_event(status)
            for client in list(clients):
                self._push(client, text, None)

    async def _follow(self) -> None:
        """The feed; after an outage every socket is closed so each desktop resumes (or resyncs) on reconnect."""
        await follow(self._state, (CHANNEL, ACD_CHANNEL), self._handle, name="agent hub", ready=self._ready,
                     after_outage=self._drop_all, retry_s=RESUBSCRIBE_S)

    def _handle(self, channel: str, message: str) -> None:
        if channel == CHANNEL:
            self.deliver(message)
        else:
            self._agent_state(message)

    def _drop_all(self) -> None:
        for _, client in self.clients():
            closer = getattr(client, "close_for_resync", None)
            if closer is not None:
                closer()
