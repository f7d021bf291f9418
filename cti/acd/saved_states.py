"""Agents' states written to the database, in order, without making callers wait for the database.

Logins and pauses must survive a restart; call steps (ringing, on_call...) too, so that a node restarting
on the in-process state knows an agent is still talking. A call step must not wait for the database (an
outage would stall the ring), so each agent has one background writer that writes the latest state it was
given: writes land in order and the last one wins. A call state keeps its call's id (``call`` column).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from cti.acd.model import CALL_STATES
from cti.acd.shared import AgentStatus
from cti.acd.store import AcdStore

log = logging.getLogger(__name__)

DRAIN_S = 2.0  # at stop, how long the agents' last states may take to reach the database


class SavedStates:
    def __init__(self, store: AcdStore) -> None:
        self._store = store
        self._unsaved: dict[str, AgentStatus] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}

    async def save(self, status: AgentStatus, *, wait: bool) -> None:
        """Hand ``status`` to the agent's writer; ``wait``: return once it is written (or failed, logged)."""
        agent_id = status.agent_id
        self._unsaved[agent_id] = status
        writer = self._writers.get(agent_id)
        if writer is None or writer.done():
            writer = self._writers[agent_id] = asyncio.ensure_future(self._write_latest(agent_id))
        if wait:
            await asyncio.shield(writer)

    async def drain(self, timeout: float = DRAIN_S) -> None:
        """Let pending writes finish (a clean stop), then cancel what is left."""
        pending = [writer for writer in self._writers.values() if not writer.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            for writer in late:
                writer.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._writers.clear()

    async def _write_latest(self, agent_id: str) -> None:
        while (status := self._unsaved.pop(agent_id, None)) is not None:
            await self.write(status)

    async def write(self, status: AgentStatus) -> None:
        """One write now; failing that, the shared state still holds the agent's state (logged)."""
        call = status.call if status.state in CALL_STATES else ""
        try:
            await self._store.save_status(status.agent_id, status.state.value, status.reason, status.endpoint,
                                          datetime.fromtimestamp(status.since, tz=UTC), call)
        except Exception:
            log.exception("agent %s: could not save its state %s", status.agent_id, status.state.value)
