"""Call rows left open by a server that died: closed once, as ``interrupted``.

A script closes its call's row when the call leaves it; a killed process closes nothing, so its rows keep
``ended_at`` NULL for ever and reports count them as calls in progress. A row is closed here when its
caller's channel is absent from Asterisk's list (a fresh ``CoreShowChannels``) on two sweeps at least
``GRACE_S`` apart, and no call of this node holds it. The grace stands in for "not held by a live node": a
live node closes its own rows as soon as the channel hangs up, well within it. Closing is one
``UPDATE ... WHERE ended_at IS NULL``: two passes or two nodes never close a row twice, and a row its
script closed meanwhile keeps that script's outcome.

Assumes every node talks to the same Asterisk (a channel absent from ours is absent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from cti.acd.recovery import ChannelSource
from cti.call_records import close_interrupted, open_uniqueids
from cti.db import Database
from cti.db.base import utcnow

log = logging.getLogger(__name__)

GRACE_S = 10.0  # absent that long (on two sweeps) before a row is closed
SWEEP_EVERY_S = 60.0  # the periodic sweep (more often while a row waits out its grace)
RECENT_DAYS = 2  # periodic sweeps look at rows started since; the first sweep after a start looks at all


@dataclass
class OpenRowSweeper:
    """``held(uniqueid)``: whether this node holds the call (its ACD calls); ``monotonic``: for the grace."""

    db: Database
    channels: ChannelSource | None
    held: Callable[[str], bool]
    monotonic: Callable[[], float]
    absent_since: dict[str, float] = field(default_factory=dict)
    sweeps: int = 0
    closed: int = 0

    @property
    def waiting(self) -> bool:
        """Some row waits out its grace: the next sweep should not be far."""
        return bool(self.absent_since)

    async def sweep(self) -> int:
        """One sweep; returns how many rows it closed. A database or AMI failure skips it (logged)."""
        if self.channels is None:
            return 0
        try:
            # the first sweep, and every sweep while a row waits out its grace, look at every open row
            since = None if self.sweeps == 0 or self.absent_since else utcnow() - timedelta(days=RECENT_DAYS)
            candidates = [uid for uid in await open_uniqueids(self.db, since) if not self.held(uid)]
            if not candidates:
                self.absent_since.clear()
                self.sweeps += 1
                return 0
            picture = await self.channels.snapshot()
            if picture is None:
                return 0  # AMI cannot say which channels live: close nothing
            due = self._due([uid for uid in candidates if uid not in picture])
            closed = await close_interrupted(self.db, due)
        except Exception:
            log.exception("open call rows: sweep failed; retrying later")
            return 0
        self.sweeps += 1
        self.closed += closed
        if closed:
            log.warning("closed %d call row(s) left open by a server that stopped: %s", closed, sorted(due))
        return closed

    def _due(self, absent: list[str]) -> list[str]:
        """Remember newly absent rows; return those absent since the grace (forgetting rows seen again)."""
        now = self.monotonic()
        self.absent_since = {uid: self.absent_since.get(uid, now) for uid in absent}
        due = [uid for uid, since in self.absent_since.items() if now - since >= GRACE_S]
        for uid in due:
            del self.absent_since[uid]
        return due
