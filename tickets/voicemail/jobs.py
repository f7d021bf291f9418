"""The transcription job table as a lease-based work queue, safe with several runners.

A runner *claims* a job with one conditional ``UPDATE ... WHERE id = ? AND (pending and due, or running
with an expired lease)``: on PostgreSQL the second of two concurrent updates re-checks the condition
after the first commits and changes nothing; SQLite serialises writers. Whoever sees ``rowcount == 1``
owns the job until ``lease_expires_at``, which a live runner keeps pushing forward (``renew``). A runner
killed mid-job stops renewing, and the job is claimed again once the lease has expired: nothing is lost.
A lease held by a process of this host that no longer runs (the server restarted after a crash) is not waited
out: it is expired at the next claim, so the message left mid-transcription is taken up at once.

Every later write is conditioned on still holding the lease, so a runner that lost its job (paused for
longer than the lease) cannot overwrite the new owner's work. Each claim counts as an attempt, which also
bounds a recording that crashes its runner every time.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from cti.db import Database
from cti.db.base import utcnow
from tickets.models import Recording, TranscriptionJob

Job = TranscriptionJob


@dataclass(frozen=True)
class Claim:
    """A job this runner owns; ``attempts`` already counts this one; ``checkpoint`` is the saved verdict."""

    job_id: int
    recording_id: int
    attempts: int
    max_attempts: int
    checkpoint: str
    last_error: str


class JobStore:
    def __init__(self, db: Database, owner: str, lease_s: float) -> None:
        self.db, self.owner, self.lease = db, owner, timedelta(seconds=lease_s)

    async def claim(self, limit: int) -> list[Claim]:
        """Up to ``limit`` due jobs, oldest first; candidates another runner wins are skipped."""
        await self.expire_dead_leases()
        async with self.db.session() as session:
            candidates = list(await session.scalars(
                select(Job.id).where(_claimable()).order_by(Job.next_attempt_at, Job.id).limit(limit * 2)))
        claims: list[Claim] = []
        for job_id in candidates:
            claim = await self._claim_one(job_id)
            if claim is not None:
                claims.append(claim)
                if len(claims) == limit:
                    break
        return claims

    async def expire_dead_leases(self) -> int:
        """Expire the leases of this host's runners that are gone (see the module docstring); how many."""
        async with self.db.session() as session:
            owners = set(await session.scalars(select(Job.lease_owner).where(Job.status == "running")))
            dead = [owner for owner in owners if owner and owner != self.owner and _gone_from_this_host(owner)]
            if not dead:
                return 0
            return await _execute(session, update(Job).where(Job.status == "running", Job.lease_owner.in_(dead))
                                  .values(lease_expires_at=utcnow() - timedelta(microseconds=1)))

    async def _claim_one(self, job_id: int) -> Claim | None:
        now = utcnow()
        async with self.db.session() as session:
            taken = await _execute(session, update(Job).where(Job.id == job_id, _claimable(now)).values(
                status="running", lease_owner=self.owner, lease_expires_at=now + self.lease,
                attempts=Job.attempts + 1))
            if taken != 1:
                return None
            job = (await session.execute(select(Job.recording_id, Job.attempts, Job.max_attempts, Job.result,
                                                Job.last_error).where(Job.id == job_id))).one()
            await session.execute(update(Recording).where(Recording.id == job.recording_id,
                                                          Recording.ticket_id.is_(None))
                                  .values(state="transcribing"))
        return Claim(job_id, job.recording_id, job.attempts, job.max_attempts, job.result, job.last_error)

    async def renew(self, job_id: int) -> bool:
        """Push the lease forward; False when another runner has taken the job over."""
        return await self._owned_update(job_id, lease_expires_at=utcnow() + self.lease)

    async def checkpoint(self, job_id: int, verdict: str) -> bool:
        return await self._owned_update(job_id, result=verdict)

    async def retry(self, job_id: int, delay_s: float, error: str) -> bool:
        """Give the job back, due again in ``delay_s``."""
        return await self._owned_update(job_id, status="pending", next_attempt_at=utcnow() + timedelta(seconds=delay_s),
                                        lease_owner=None, lease_expires_at=None, last_error=error[:2000])

    async def release(self, job_id: int) -> bool:
        """Hand a job back at once without counting the attempt (the runner is stopping)."""
        return await self._owned_update(job_id, status="pending", next_attempt_at=utcnow(), lease_owner=None,
                                        lease_expires_at=None, attempts=Job.attempts - 1)

    async def finish(self, claim: Claim, ticket_id: int, state: str, note: str) -> bool:
        """Job done and recording filed, in one transaction; nothing changes if the lease was lost."""
        async with self.db.session() as session:
            done = await _execute(session, update(Job).where(Job.id == claim.job_id, self._owned()).values(
                status="done", finished_at=utcnow(), lease_owner=None, lease_expires_at=None, last_error=note))
            if done != 1:
                return False
            await session.execute(update(Recording).where(Recording.id == claim.recording_id)
                                  .values(state=state, ticket_id=ticket_id))
        return True

    async def _owned_update(self, job_id: int, **values: Any) -> bool:
        async with self.db.session() as session:
            return await _execute(session, update(Job).where(Job.id == job_id, self._owned()).values(**values)) == 1

    def _owned(self) -> ColumnElement[bool]:
        return and_(Job.status == "running", Job.lease_owner == self.owner)


def _gone_from_this_host(owner: str) -> bool:
    """``host:pid:token`` (``pipeline.default_owner``) of a process of this host whose pid is free. Unreadable, or
    a pid in use (even by another program, or by us after a container restart): not gone, the lease runs out."""
    parts = owner.split(":")
    if len(parts) != 3 or parts[0] != socket.gethostname()[:50] or not (parts[1].isascii() and parts[1].isdigit()):
        return False
    pid = int(parts[1])
    with contextlib.suppress(PermissionError):  # alive, but another user's process
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
    return False


def _claimable(now: datetime | None = None) -> ColumnElement[bool]:
    now = now or utcnow()
    return or_(and_(Job.status == "pending", Job.next_attempt_at <= now),
               and_(Job.status == "running", Job.lease_expires_at < now))


async def _execute(session: AsyncSession, statement: Any) -> int:
    """Rows changed by a Core UPDATE (no ORM synchronisation: we read back what we need)."""
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return cast(CursorResult[Any], result).rowcount
