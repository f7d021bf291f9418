"""Builds the voicemail pieces from the settings for ``cti.app`` (the composition root stays short)."""

from __future__ import annotations

from dataclasses import dataclass

from cti.db import Database
from cti.prompts import PromptStore
from cti.settings import Settings
from tickets.service import TicketService
from tickets.transcription.pool import VoskTranscriber
from tickets.voicemail.mail import AckMailer
from tickets.voicemail.missed import AbandonedCallHook
from tickets.voicemail.pipeline import VoicemailPipeline
from tickets.voicemail.recordings import RecordingInfo, register_recording
from tickets.voicemail.script import VoicemailCall


@dataclass
class Voicemail:
    """The ``voicemail`` AGI script, the pipeline behind it, and the incoming flow's abandoned-call hook."""

    script: VoicemailCall
    pipeline: VoicemailPipeline
    transcriber: VoskTranscriber
    abandoned_hook: AbandonedCallHook

    async def start(self) -> None:
        await self.pipeline.start()

    async def stop(self) -> None:
        await self.pipeline.stop()
        await self.transcriber.aclose()


def build_voicemail(settings: Settings, db: Database, prompts: PromptStore, tickets: TicketService) -> Voicemail:
    media_dir = settings.paths.media_dir
    transcriber = VoskTranscriber(settings.transcription)
    pipeline = VoicemailPipeline(db, transcriber, tickets, settings.transcription, media_dir,
                                 notifier=AckMailer(settings.smtp, tickets))

    async def register(info: RecordingInfo) -> int:
        """Register, then wake the pipeline so the ticket does not wait for the next poll."""
        recording_id = await register_recording(db, info, max_attempts=settings.transcription.max_attempts)
        pipeline.wake()
        return recording_id

    script = VoicemailCall(db, prompts, settings.voicemail, media_dir, register, settings.asterisk.default_language)
    return Voicemail(script, pipeline, transcriber, AbandonedCallHook(tickets, settings.tickets))
