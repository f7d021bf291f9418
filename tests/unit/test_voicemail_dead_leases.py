"""A transcription job leased by a process of this host that is gone is taken up at once, not after its lease.

After ``kill -9`` of the server mid-transcription, the restarted server must not leave the caller's message
waiting for the dead process's lease (5 minutes by default) to run out; a job leased by a live process, by
another host, or under an owner name it cannot read is left to its lease.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from cti.db import Database
from cti.db.base import utcnow
from tests.support.voicemail import add_recording
from tickets.models import TranscriptionJob
from tickets.voicemail.jobs import JobStore

HOST = socket.gethostname()[:50]


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped): free, as after a crash."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    return int(child.stdout)


async def _lease_to(db: Database, owner: str) -> None:
    """The job as the owner left it: running, its lease good for another hour."""
    async with db.session() as session:
        await session.execute(update(TranscriptionJob).values(
            status="running", lease_owner=owner, lease_expires_at=utcnow() + timedelta(hours=1), attempts=1))


async def _attempts(db: Database) -> int:
    async with db.session() as session:
        return int((await session.scalars(select(TranscriptionJob.attempts))).one())


async def test_a_job_leased_by_a_dead_process_of_this_host_is_claimed_at_once(database: Database,
                                                                               tmp_path: Path) -> None:
    await add_recording(database, tmp_path)
    await _lease_to(database, f"{HOST}:{_dead_pid()}:a1b2c3")
    [claim] = await JobStore(database, f"{HOST}:{os.getpid()}:d4e5f6", lease_s=300).claim(1)
    assert claim.attempts == 2  # the crash counted: a message that kills its runner every time gives up


@pytest.mark.parametrize("owner", [
    f"{HOST}:{os.getppid()}:a1b2c3",  # alive: our parent
    f"{HOST}:{os.getpid()}:a1b2c3",  # alive: this very process under another token (a second runner here)
    "elsewhere.example:1:a1b2c3",  # another host: we cannot tell
    f"{HOST}:²:a1b2c3", f"{HOST}:abc", "",  # not an owner we wrote
])
async def test_a_job_leased_by_a_live_or_unknown_owner_waits_for_its_lease(database: Database, tmp_path: Path,
                                                                            owner: str) -> None:
    await add_recording(database, tmp_path)
    await _lease_to(database, owner)
    store = JobStore(database, f"{HOST}:{os.getpid()}:d4e5f6", lease_s=300)
    assert await store.claim(1) == []
    assert await store.expire_dead_leases() == 0
    assert await _attempts(database) == 1
