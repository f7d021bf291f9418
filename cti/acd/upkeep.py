"""The ACD's background upkeep on every node: its heartbeat, orphan agents, and rows left open.

One task, one beat every ``BEAT_EVERY_S``: renew this node's heartbeat (:mod:`cti.acd.liveness`), release
agents held by gone nodes (:mod:`cti.acd.recovery`; AMI is only asked when such an agent exists), and sweep
call rows left open by a dead process (:mod:`cti.acd.open_rows`; every ``SWEEP_EVERY_S``, more often while
a row waits out its grace). ``poke`` runs a pass at once: at start and after every AMI (re)connection's
channel resync, when what Asterisk holds may have changed behind our back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cti.acd.liveness import NodeHeartbeat
from cti.acd.open_rows import SWEEP_EVERY_S, OpenRowSweeper
from cti.acd.recovery import AgentRecovery
from cti.acd.shared import AgentStatus
from cti.event_wait import wait_set
from cti.state.errors import StateError

log = logging.getLogger(__name__)


@dataclass
class Upkeep:
    heartbeat: NodeHeartbeat
    agents: AgentRecovery
    rows: OpenRowSweeper
    statuses: Callable[[], Mapping[str, AgentStatus]]
    monotonic: Callable[[], float]
    passes: int = 0
    _poked: asyncio.Event = field(default_factory=asyncio.Event)
    _next_sweep: float = 0.0

    def poke(self) -> None:
        """Run a full pass (agents and rows) now rather than at the next beat."""
        self._next_sweep = 0.0
        self._poked.set()

    async def once(self) -> None:
        """One pass; each part's failure is logged and does not stop the others."""
        try:
            await self.heartbeat.beat()
        except StateError as exc:
            log.warning("node %s: heartbeat not written (%s)", self.heartbeat.node_id, exc)
        try:
            await self.agents.run(self.statuses())
        except Exception:
            log.exception("ACD recovery pass failed; retrying")
        now = self.monotonic()
        if self.rows.waiting or now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY_S
            await self.rows.sweep()
        self.passes += 1

    async def run(self) -> None:
        while True:
            self._poked.clear()
            await self.once()
            await wait_set(self._poked, self.heartbeat.every_s)
