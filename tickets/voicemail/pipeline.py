"""The durable voicemail runner: registered recording -> transcript -> ticket, whatever crashes meanwhile.

Each ``TranscriptionJob`` is claimed with a lease (``tickets.voicemail.jobs``), transcribed, and filed as
a ticket keyed by ``recording:<id>`` so that running it again after a crash returns the same ticket.
The verdict is checkpointed on the job before filing: a message is transcribed once, however often
filing has to be retried.

Failure policy:

* an unreadable file, a recording longer than ``max_audio_s``, or a missing/broken speech model will not
  get better by retrying: the ticket is filed at once as *not transcribed*, with the audio and a note;
* anything else (a crashed worker, a database hiccup...) is retried after ``retry_base_s * 2**(n-1)``
  seconds (capped at an hour); after ``max_attempts`` the ticket is filed *not transcribed*;
* filing itself is retried with the same backoff and never given up: the message must reach a ticket;
* silence gives an *empty message* ticket, still with the audio.

On start, :func:`recover_orphans` runs first (a job for every recording, a row for every WAV), and again
every ``orphan_scan_s`` for recent days, for messages a crash left unregistered. A message this process
recorded while the database was down is handed over with :meth:`VoicemailPipeline.defer` and registered
as soon as the database answers again (every ``poll_s``), without waiting for a scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import select

from cti.db import Database
from cti.event_wait import wait_set
from cti.outage_log import OutageLog
from cti.settings import TranscriptionSettings
from tickets.models import Recording, Ticket, TicketEvent
from tickets.transcription.errors import AudioTooLong, AudioUnreadable, ModelBroken, ModelMissing
from tickets.types import NewAttachment, Transcriber
from tickets.voicemail.filing import Verdict, new_ticket, transcript_data
from tickets.voicemail.jobs import Claim, JobStore
from tickets.voicemail.ports import TicketFiler, TicketNotifier
from tickets.voicemail.recordings import (
    RecordingInfo,
    Recovery,
    recover_orphans,
    register_recording,
    sidecar_path,
    wav_duration,
)

log = logging.getLogger(__name__)

PERMANENT = (AudioUnreadable, AudioTooLong, ModelMissing, ModelBroken)
MAX_BACKOFF_S = 3600.0
RECENT_DAYS = 2
TRANSCRIPT_EVENT = "transcript"


def default_owner() -> str:
    """Unique per process, readable in the job table (which host and pid holds a lease)."""
    return f"{socket.gethostname()[:50]}:{os.getpid()}:{secrets.token_hex(3)}"


class VoicemailPipeline:
    """``start``/``stop`` run ``settings.workers`` workers; ``run_once`` processes what is due now (tests)."""

    def __init__(
        self, db: Database, transcriber: Transcriber, tickets: TicketFiler, settings: TranscriptionSettings,
        media_dir: Path, notifier: TicketNotifier | None = None, owner_id: str | None = None, *,
        poll_s: float = 2.0, orphan_grace_s: float = 120.0, orphan_scan_s: float = 300.0,
    ) -> None:
        self.db, self.transcriber, self.tickets, self.settings = db, transcriber, tickets, settings
        self.media_dir, self.notifier = media_dir, notifier
        self.owner = owner_id or default_owner()
        self.jobs = JobStore(db, self.owner, settings.lease_s)
        self.poll_s, self.orphan_grace_s, self.orphan_scan_s = poll_s, orphan_grace_s, orphan_scan_s
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._deferred: dict[str, RecordingInfo] = {}  # recorded while the database was down, by path
        self._claims_log = OutageLog(log, "voicemail pipeline cannot claim jobs")  # once per outage, not per poll

    # --- running --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Returns at once; recovery and the workers run in the background (a down database only delays)."""
        if self._main is None:
            self._stopping.clear()
            self._main = asyncio.create_task(self._run(), name="voicemail-pipeline")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Let jobs in progress finish for ``grace_s``, then cancel: an unfinished job is handed back
        without counting the attempt (and a ticket it already filed is found again by its key)."""
        task, self._main = self._main, None
        if task is None:
            return
        self._stopping.set()
        self._wakeup.set()
        done, _ = await asyncio.wait({task}, timeout=grace_s)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def wake(self) -> None:
        """A recording was just registered: look for work now rather than at the next poll."""
        self._wakeup.set()

    def defer(self, info: RecordingInfo) -> None:
        """A message kept on disk because the database could not register it: registered by this runner as
        soon as the database answers (the orphan scan would find it too, only minutes later)."""
        self._deferred[info.path] = info

    @property
    def deferred(self) -> int:
        """Messages waiting for the database to be registered."""
        return len(self._deferred)

    async def register_deferred(self) -> int:
        """Register the deferred messages, oldest first; stops at the first failure (the database is still
        down: the next round tries again). Returns how many were registered."""
        registered = 0
        for path, info in list(self._deferred.items()):
            try:
                await register_recording(self.db, info, max_attempts=self.settings.max_attempts)
            except Exception as exc:
                log.debug("voicemail %s still waits for the database: %s", path, exc)
                break
            self._deferred.pop(path, None)
            sidecar_path(self.media_dir / path).unlink(missing_ok=True)
            registered += 1
        if registered:
            log.warning("voicemail: %d message(s) recorded during a database outage registered", registered)
            self.wake()
        return registered

    async def run_once(self) -> int:
        """Claim up to ``workers`` due jobs and process them; returns how many were processed."""
        claims = await self.jobs.claim(self.settings.workers)
        await asyncio.gather(*(self.process(claim) for claim in claims))
        return len(claims)

    async def recover(self, *, recent_days: int | None = None, min_age_s: float | None = None) -> Recovery:
        grace = self.orphan_grace_s if min_age_s is None else min_age_s
        return await recover_orphans(self.db, self.media_dir, min_age_s=grace, recent_days=recent_days,
                                     max_attempts=self.settings.max_attempts)

    async def _run(self) -> None:
        await self._recover_safely(None)
        workers = [asyncio.create_task(self._work(), name=f"voicemail-worker-{n}")
                   for n in range(self.settings.workers)]
        workers.append(asyncio.create_task(self._register_deferred_forever(), name="voicemail-deferred"))
        try:
            while not await self._stopping_within(self.orphan_scan_s):
                await self._recover_safely(RECENT_DAYS)
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _stopping_within(self, seconds: float) -> bool:
        return await wait_set(self._stopping, seconds)

    async def _recover_safely(self, recent_days: int | None) -> None:
        try:
            await self.recover(recent_days=recent_days)
        except Exception as exc:  # the database may be down: the next scan tries again
            log.warning("voicemail orphan recovery failed: %s", exc)

    async def _register_deferred_forever(self) -> None:
        while not await self._stopping_within(self.poll_s):
            if self._deferred:
                await self.register_deferred()

    async def _work(self) -> None:
        while not self._stopping.is_set():
            claims = await self._claim_one()
            if claims:
                await self.process(claims[0])
            else:
                await self._idle()

    async def _claim_one(self) -> list[Claim]:
        """A claim failing means the database is down: said once per outage, and once when it is back."""
        try:
            claims = await self.jobs.claim(1)
        except Exception as exc:
            self._claims_log.failed(exc)
            return []
        self._claims_log.ok()
        return claims

    async def _idle(self) -> None:
        await wait_set(self._wakeup, self.poll_s)
        if not self._stopping.is_set():
            self._wakeup.clear()

    # --- one job --------------------------------------------------------------------------------

    async def process(self, claim: Claim) -> None:
        """Verdict (checkpointed), then ticket; any failure hands the job back with a backoff."""
        try:
            async with self._lease_kept(claim.job_id):
                recording = await self._recording(claim.recording_id)
                verdict = await self._verdict(claim, recording)
                if verdict is not None:
                    await self._file(claim, recording, verdict)
        except asyncio.CancelledError:
            await asyncio.shield(self._release(claim))
            raise
        except Exception as exc:
            log.exception("voicemail job %s failed (attempt %s)", claim.job_id, claim.attempts)
            await self._retry(claim, f"{type(exc).__name__}: {exc}")

    async def _verdict(self, claim: Claim, recording: Recording) -> Verdict | None:
        """None when a transient transcription failure was scheduled for a retry."""
        if claim.checkpoint:
            return Verdict.from_json(claim.checkpoint)
        if claim.attempts > claim.max_attempts:  # its runners kept dying on it
            reason = claim.last_error or "the transcriber kept crashing"
            verdict: Verdict | None = Verdict("not_transcribed", note=f"gave up after {claim.max_attempts} "
                                                                     f"attempts ({reason})")
        else:
            verdict = await self._attempt(claim, recording)
        if verdict is not None:
            await self.jobs.checkpoint(claim.job_id, verdict.to_json())
        return verdict

    async def _attempt(self, claim: Claim, recording: Recording) -> Verdict | None:
        try:
            return await self._transcribe(recording)
        except Exception as exc:
            if not isinstance(exc, PERMANENT) and claim.attempts < claim.max_attempts:
                await self._retry(claim, f"{type(exc).__name__}: {exc}")
                return None
            log.warning("voicemail %s not transcribed: %s", recording.path, exc)
            return Verdict("not_transcribed", note=str(exc))

    async def _transcribe(self, recording: Recording) -> Verdict:
        path = self.media_dir / recording.path
        if not path.is_file():
            return Verdict("not_transcribed", note=f"the audio file {recording.path} is missing")
        transcript = await self.transcriber.transcribe(path, recording.language)
        return Verdict("empty" if transcript.empty else "transcribed", transcript)

    async def _file(self, claim: Claim, recording: Recording, verdict: Verdict) -> None:
        ticket = await self.tickets.create(new_ticket(recording, verdict, self._attachment(recording, verdict)))
        await self._add_events(ticket.id, verdict)
        if not await self.jobs.finish(claim, ticket.id, verdict.state, verdict.note):
            log.warning("voicemail job %s: lease lost; its new owner finishes it (same ticket)", claim.job_id)
            return
        log.info("voicemail %s filed as ticket %s (%s)", recording.path, ticket.reference, verdict.state)
        await self._notify(ticket)

    def _attachment(self, recording: Recording, verdict: Verdict) -> NewAttachment | None:
        path = self.media_dir / recording.path
        if not path.is_file():
            return None
        duration = verdict.transcript.duration_s if verdict.transcript else 0.0
        return NewAttachment(path=recording.path, size_bytes=path.stat().st_size,
                             duration_s=duration or recording.duration_s or wav_duration(path))

    async def _add_events(self, ticket_id: int, verdict: Verdict) -> None:
        """The transcript event (JSON: state, note, text, words), once per ticket even when filing re-runs."""
        words = transcript_data(verdict.transcript) if verdict.transcript else {"text": "", "words": []}
        body = json.dumps({"state": verdict.state, "note": verdict.note, **words}, ensure_ascii=False)
        if not await self._has_event(ticket_id, TRANSCRIPT_EVENT):
            await self.tickets.add_event(ticket_id, TRANSCRIPT_EVENT, body)

    async def _has_event(self, ticket_id: int, kind: str) -> bool:
        async with self.db.session() as session:
            found = await session.scalar(select(TicketEvent.id).where(
                TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind).limit(1))
        return found is not None

    async def _notify(self, ticket: Ticket) -> None:
        if self.notifier is None:
            return
        try:
            await self.notifier.send_ack(ticket)
        except Exception:  # the ticket is filed; a failed acknowledgement must not undo or repeat that
            log.exception("acknowledgement for ticket %s failed", ticket.reference)

    # --- helpers --------------------------------------------------------------------------------

    async def _recording(self, recording_id: int) -> Recording:
        async with self.db.session() as session:
            recording = await session.get(Recording, recording_id)
        if recording is None:  # impossible with the foreign key; fail loudly rather than drop the job
            raise LookupError(f"recording {recording_id} has vanished")
        return recording

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: base, 2 x base, 4 x base... capped at an hour."""
        return min(self.settings.retry_base_s * 2.0 ** min(max(attempts - 1, 0), 20), MAX_BACKOFF_S)

    async def _retry(self, claim: Claim, error: str) -> None:
        try:
            await self.jobs.retry(claim.job_id, self.backoff(claim.attempts), error)
        except Exception as exc:  # the lease expires and another runner (or this one) takes it again
            log.warning("voicemail job %s could not be rescheduled: %s", claim.job_id, exc)

    async def _release(self, claim: Claim) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.jobs.release(claim.job_id), 5)

    @contextlib.asynccontextmanager
    async def _lease_kept(self, job_id: int) -> AsyncIterator[None]:
        """Renew the lease every third of its length while the job runs."""
        task = asyncio.create_task(self._renew_forever(job_id))
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _renew_forever(self, job_id: int) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            try:
                if not await self.jobs.renew(job_id):
                    log.warning("voicemail job %s was taken over by another runner", job_id)
                    return
            except Exception as exc:
                log.warning("voicemail job %s: lease not renewed: %s", job_id, exc)
