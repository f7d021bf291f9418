"""The server is SIGKILLed while it transcribes a caller's message: on restart the message is filed once.

A real `cti serve` process (``tests/support/server_process.py``) takes a real voicemail through the local
Asterisk (a caller speaking Korean, the one Vosk model this machine has, standing in for English as in
``test_voicemail_call.py``). The moment its transcription job is running, the server is killed: no shutdown
code runs and the job keeps the dead process's lease. The server is started again on the same database and
must, without waiting for that lease to run out (5 minutes by default), transcribe the message and file exactly
one ticket with the audio and the transcript.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cti.ami import AmiClient
from cti.db import Database, make_database
from cti.prompts import PromptStore
from cti.settings import DatabaseSettings, Settings
from tests.plugins.asterisk import place_simulated_call, set_agi_url
from tests.real.test_voicemail_call import KO_MODEL, _korean_clip, _pauses_until_the_beep
from tests.support.server_process import ServerProcess
from tickets.models import Attachment, Recording, Ticket, TicketEvent, TranscriptionJob

pytestmark = pytest.mark.real

WAIT_S = 120.0  # only turns "never" into a failure


@pytest.fixture
async def server(tmp_path: Path, ami: AmiClient) -> AsyncIterator[ServerProcess]:
    process = ServerProcess(f"sqlite+aiosqlite:///{tmp_path / 'cti.sqlite3'}", tmp_path / "server.log", overrides={
        "CTI_TRANSCRIPTION__MODELS": f'{{ en = "{KO_MODEL}" }}', "CTI_TRANSCRIPTION__WORKERS": "1"})
    await process.run_cli("db", "upgrade")
    await process.start()
    await set_agi_url(ami, process.agi_url)
    try:
        yield process
    finally:
        await process.stop()


@pytest.fixture
async def server_db(server: ServerProcess) -> AsyncIterator[Database]:
    """The server's database, read from the test (the server process writes it)."""
    database = make_database(DatabaseSettings(url=server.database_url))
    yield database
    await database.close()


async def _rows(db: Database, model: type[Any], *where: Any) -> list[Any]:
    async with db.session() as session:
        return list(await session.scalars(select(model).where(*where)))


async def _job_of(db: Database, caller: str) -> tuple[Recording, TranscriptionJob] | None:
    recordings = await _rows(db, Recording, Recording.caller_number == caller)
    if not recordings:
        return None
    jobs = await _rows(db, TranscriptionJob, TranscriptionJob.recording_id == recordings[0].id)
    return (recordings[0], jobs[0]) if jobs else None


async def test_killed_mid_transcription_the_restarted_server_files_the_message_once(
    server: ServerProcess, server_db: Database, ami: AmiClient, prompt_store: PromptStore, real_settings: Settings,
) -> None:
    media = real_settings.paths.media_dir
    clip = _korean_clip(media / "sandbox")
    caller = f"559{uuid.uuid4().int % 10**7:07d}"
    await place_simulated_call(ami, "request", caller, digits=_pauses_until_the_beep(prompt_store),
                               play=str(clip.with_suffix("")), hold=1, context="cti-voicemail")

    async with asyncio.timeout(WAIT_S):  # the message recorded, its job taken by the running server
        while (found := await _job_of(server_db, caller)) is None or found[1].status != "running":
            assert found is None or found[1].status != "done", "transcribed before the kill: nothing was tested"
            await asyncio.sleep(0.02)
    recording, job = found
    owner = job.lease_owner
    await server.kill()
    assert not await _rows(server_db, Ticket, Ticket.source_key == f"recording:{recording.id}")
    killed_at = time.monotonic()

    await server.start()
    async with asyncio.timeout(WAIT_S):
        while (found := await _job_of(server_db, caller)) is None or found[1].status != "done":  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # the other process writes the row: nothing to wait on here
    filed_after_s = time.monotonic() - killed_at
    recording, job = found
    tickets = await _rows(server_db, Ticket, Ticket.source_key == f"recording:{recording.id}")
    assert len(tickets) == 1, tickets
    [ticket] = tickets
    assert (recording.state, recording.ticket_id, ticket.caller_number) == ("transcribed", ticket.id, caller)
    assert (job.attempts, job.lease_owner) == (2, None) and owner is not None
    [event] = await _rows(server_db, TicketEvent, TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "transcript")
    assert json.loads(event.body)["words"]
    [attachment] = await _rows(server_db, Attachment, Attachment.ticket_id == ticket.id)
    audio = media / attachment.path
    try:
        assert audio.is_file() and attachment.duration_s > 1.0
        assert len(await _rows(server_db, Recording, Recording.caller_number == caller)) == 1
        print("killed-mid-transcription figures:", json.dumps({"filed_after_kill_s": round(filed_after_s, 2)}))
    finally:
        audio.unlink(missing_ok=True)
