"""Shapes shared by the ticket service, the transcription engine and the voicemail pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Word:
    word: str
    confidence: float  # 0..1 as Vosk reports it
    start: float  # seconds from the start of the message
    end: float
    low_confidence: bool  # below TranscriptionSettings.low_confidence: shown marked to the agent


@dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[Word, ...]
    language: str
    duration_s: float

    @property
    def empty(self) -> bool:
        return not self.text.strip()


class Transcriber(Protocol):
    """Turns a recording (any format ffmpeg reads) into text; raises on failure, never returns None."""

    async def transcribe(self, path: Path, language: str) -> Transcript: ...


@dataclass(frozen=True)
class NewTicket:
    """What it takes to open a ticket; ``source_key`` makes creation idempotent."""

    subject: str
    source: str  # one of tickets.models.TICKET_SOURCES
    description: str = ""
    source_key: str | None = None
    impact: int = 2
    urgency: int = 2
    category: str = ""
    queue: str = ""
    contract_level: str = "standard"
    caller_number: str = ""
    caller_name: str = ""
    caller_email: str = ""
    language: str = "en"
    call_id: int | None = None
    attachments: tuple[NewAttachment, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class NewAttachment:
    path: str  # relative to the media folder
    kind: str = "audio"
    content_type: str = "audio/wav"
    size_bytes: int = 0
    duration_s: float = 0.0
