"""Which server nodes are alive: each node keeps a heartbeat key with an expiry in the shared state.

An agent's shared status names the node that owns its call (``AgentStatus.node``). When that node is killed
(``kill -9``, a crash, a lost machine) nothing it held is cleaned up by itself; the others learn it is gone
when its key expires, and only then may they look at its agents (:mod:`cti.acd.recovery`). The expiry is
three beats, so one late beat (a busy event loop, a Redis hiccup) does not make a live node look dead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from cti.state import StateBackend

log = logging.getLogger(__name__)

KEY_PREFIX = "acd:node:"
BEAT_EVERY_S = 5.0  # a live node rewrites its key this often
BEAT_TTL_S = 15.0  # a node whose key is older than this is dead (three missed beats)


def check_timing(every_s: float, ttl_s: float) -> None:
    """Refuse figures that would declare a live node dead between two of its beats."""
    if not every_s > 0:
        raise ValueError(f"heartbeat interval must be positive, got {every_s!r}")
    if not ttl_s >= 2 * every_s:
        raise ValueError(f"heartbeat TTL ({ttl_s} s) must be at least twice its interval ({every_s} s)")


@dataclass
class NodeHeartbeat:
    """This node's heartbeat, and the liveness of the others. Every method may raise ``StateError``:
    callers that cannot tell whether a node is alive must do nothing."""

    state: StateBackend
    node_id: str
    wall_clock: Callable[[], float]
    every_s: float = BEAT_EVERY_S
    ttl_s: float = BEAT_TTL_S
    beats: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        check_timing(self.every_s, self.ttl_s)

    async def beat(self) -> None:
        """Renew this node's key (value: when it last beat, for people reading the store)."""
        await self.state.set(KEY_PREFIX + self.node_id, json.dumps({"at": self.wall_clock()}), ttl=self.ttl_s)
        self.beats += 1

    async def alive(self, node_id: str) -> bool:
        """An empty node id is the owner of a status seeded from the database: nobody holds it any more."""
        if not node_id:
            return False
        if node_id == self.node_id:
            return True
        return await self.state.get(KEY_PREFIX + node_id) is not None

    async def stop(self) -> None:
        """A clean stop says so at once: the others need not wait for the key to expire."""
        try:
            await self.state.delete(KEY_PREFIX + self.node_id)
        except Exception:
            log.warning("node %s: could not remove its heartbeat key", self.node_id, exc_info=True)
