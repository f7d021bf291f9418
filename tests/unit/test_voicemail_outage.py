"""A message recorded while the database is down reaches its ticket by itself once the database is back,
without waiting for the orphan scan, exactly once, and with its sidecar cleaned up.

The outage is real: the runner's PostgreSQL is reached through a TCP proxy the test cuts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from cti.db import Database
from cti.settings import TicketSettings, TranscriptionSettings
from tests.support.tcp_proxy import TcpProxy
from tests.support.voicemail import FakeTranscriber, write_wav
from tickets.models import Recording, Ticket
from tickets.service import TicketService
from tickets.voicemail.pipeline import VoicemailPipeline
from tickets.voicemail.recordings import (
    RecordingInfo,
    new_recording_path,
    register_recording,
    sidecar_path,
    write_sidecar,
)

pytestmark = pytest.mark.postgres




def _pipeline(db: Database, media: Path) -> VoicemailPipeline:
    """The orphan scan is kept out of the way (long grace and period): only the deferral can file the message."""
    return VoicemailPipeline(db, FakeTranscriber(), TicketService(db, TicketSettings()),
                             TranscriptionSettings(workers=1, retry_base_s=0.1), media, poll_s=0.05,
                             orphan_grace_s=3600, orphan_scan_s=3600)


def _message(media: Path) -> RecordingInfo:
    info = RecordingInfo(path=new_recording_path("1732350000.9"), uniqueid="1732350000.9",
                         caller_number="0612345678", called_number="5551000", reason="closed", duration_s=2.0)
    write_wav(media / info.path, 2.0)
    write_sidecar(media, info)
    return info


async def _rows(db: Database, model: type[Recording] | type[Ticket]) -> list[Recording] | list[Ticket]:
    async with db.session() as session:
        return list(await session.scalars(select(model)))


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    """Polls; the limit only stops a hung test, nothing here asserts speed."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - the rows change in the runner's tasks: polled
            await asyncio.sleep(0.05)


async def test_a_message_recorded_during_the_outage_is_filed_once_the_database_is_back(
    proxied_db: tuple[Database, TcpProxy], tmp_path: Path,
) -> None:
    db, proxy = proxied_db
    pipeline = _pipeline(db, tmp_path)
    await pipeline.start()
    try:
        await proxy.cut()
        info = _message(tmp_path)
        with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for a refused connection
            await register_recording(db, info)
        pipeline.defer(info)
        assert await pipeline.register_deferred() == 0  # still down: kept, nothing lost
        assert pipeline.deferred == 1 and sidecar_path(tmp_path / info.path).exists()

        await proxy.restore()

        async def filed() -> bool:
            return bool(await _rows(db, Ticket))

        await _eventually(filed)
    finally:
        await pipeline.stop()
    [recording] = await _rows(db, Recording)
    [ticket] = await _rows(db, Ticket)
    assert (recording.path, recording.caller_number, recording.reason) == (info.path, "0612345678", "closed")
    assert (ticket.caller_number, ticket.source_key) == ("0612345678", f"recording:{recording.id}")
    assert pipeline.deferred == 0 and not sidecar_path(tmp_path / info.path).exists()


async def test_a_deferred_message_the_orphan_scan_registered_first_is_not_registered_twice(
    proxied_db: tuple[Database, TcpProxy], tmp_path: Path,
) -> None:
    db, _proxy = proxied_db
    pipeline = _pipeline(db, tmp_path)
    info = _message(tmp_path)
    pipeline.defer(info)
    recovered = await pipeline.recover(min_age_s=0)
    assert recovered.files_registered == 1
    assert await pipeline.register_deferred() == 1
    assert len(await _rows(db, Recording)) == 1 and pipeline.deferred == 0
