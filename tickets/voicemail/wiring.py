"""Builds the voicemail pieces from the settings for ``cti.app`` (the composition root stays short)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from cti.db import Database
from cti.prompts import PromptStore
from cti.settings import Settings, TranscriptionSettings
from tickets.service import TicketService
from tickets.transcription.models import configured_languages, is_installed, model_dir_for
from tickets.transcription.pool import VoskTranscriber
from tickets.voicemail.mail import AckMailer
from tickets.voicemail.missed import AbandonedCallHook
from tickets.voicemail.pipeline import VoicemailPipeline
from tickets.voicemail.recordings import RecordingInfo, register_recording
from tickets.voicemail.script import VoicemailCall

log = logging.getLogger(__name__)


@dataclass
class Voicemail:
    """The ``voicemail`` AGI script, the pipeline behind it, and the incoming flow's abandoned-call hook."""

    script: VoicemailCall
    pipeline: VoicemailPipeline
    transcriber: VoskTranscriber
    abandoned_hook: AbandonedCallHook

    settings: TranscriptionSettings
    _warming: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pipeline.start()
        self._warming = asyncio.create_task(self._warm_installed_models())

    async def stop(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
        await self.pipeline.stop()
        await self.transcriber.aclose()

    async def _warm_installed_models(self) -> None:
        """In the background: load the installed models in every worker so the first message is quick."""
        languages = await asyncio.to_thread(installed_languages, self.settings)
        if not languages:
            log.warning("no speech model installed: voicemail tickets will say 'not transcribed' "
                        "(see docs/VOICEMAIL.md, 'cti models install')")
            return
        try:
            report = await self.transcriber.warm_up(languages)
        except Exception:
            log.exception("speech models %s could not be loaded; messages will be retried", languages)
            return
        log.info("speech models %s loaded in %d workers in %.1f s", languages, len(report.workers), report.seconds)


def installed_languages(settings: TranscriptionSettings) -> list[str]:
    return [lang for lang in configured_languages(settings) if is_installed(model_dir_for(settings, lang))]


def build_voicemail(settings: Settings, db: Database, prompts: PromptStore, tickets: TicketService) -> Voicemail:
    media_dir = settings.paths.media_dir
    transcriber = VoskTranscriber(settings.transcription)
    pipeline = VoicemailPipeline(db, transcriber, tickets, settings.transcription, media_dir,
                                 notifier=AckMailer(settings.smtp, tickets))

    async def register(info: RecordingInfo) -> int:
        """Register, then wake the pipeline so the ticket does not wait for the next poll; with the database
        down the pipeline registers it once the database is back (the caller is told it is saved: it is)."""
        try:
            recording_id = await register_recording(db, info, max_attempts=settings.transcription.max_attempts)
        except Exception:
            pipeline.defer(info)
            raise
        pipeline.wake()
        return recording_id

    script = VoicemailCall(db, prompts, settings.voicemail, media_dir, register, settings.asterisk.default_language)
    hook = AbandonedCallHook(tickets, settings.tickets)
    return Voicemail(script, pipeline, transcriber, hook, settings.transcription)
