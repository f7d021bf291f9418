"""Voicemail test helpers: WAV files as Asterisk writes them, a scripted transcriber, recordings in a database."""

from __future__ import annotations

import array
import asyncio
import math
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cti.db import Database
from tickets.types import Transcript, Word
from tickets.voicemail.recordings import RecordingInfo, new_recording_path, register_recording, wav_duration

RATE = 8000


def write_wav(path: Path, seconds: float, *, silent: bool = False) -> Path:
    """8 kHz mono 16-bit (Asterisk's ``wav``): a 440 Hz tone, or silence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = int(seconds * RATE)
    amplitude = 0 if silent else 8000
    samples = array.array("h", (int(amplitude * math.sin(2 * math.pi * 440 * n / RATE)) for n in range(count)))
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(RATE)
        audio.writeframes(samples.tobytes())
    return path


def transcript(text: str, *, unclear: Sequence[str] = (), duration_s: float = 3.0, language: str = "en") -> Transcript:
    """A transcript of ``text``; words listed in ``unclear`` are low-confidence."""
    words = tuple(Word(w, 0.3 if w in unclear else 0.95, i * 0.4, i * 0.4 + 0.3, w in unclear)
                  for i, w in enumerate(text.split()))
    return Transcript(text, words, language, duration_s)


Behaviour = Transcript | BaseException | Callable[[Path, str], Transcript]


@dataclass
class FakeTranscriber:
    """Plays ``script`` one step per call (the last step repeats); records every call."""

    script: list[Behaviour] = field(default_factory=lambda: [transcript("my printer is broken please call me")])
    delay_s: float = 0.0
    calls: list[tuple[Path, str]] = field(default_factory=list)

    async def transcribe(self, path: Path, language: str) -> Transcript:
        self.calls.append((path, language))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step(path, language)
        return step


async def add_recording(db: Database, media_dir: Path, seconds: float = 3.0, *, silent: bool = False,
                        uniqueid: str = "1732350000.7", max_attempts: int = 5, **fields: object) -> tuple[int, Path]:
    """A WAV under the media folder, registered as the node would; returns (recording id, file)."""
    relative = new_recording_path(uniqueid)
    wav = write_wav(media_dir / relative, seconds, silent=silent)
    info = RecordingInfo(path=relative, uniqueid=uniqueid, caller_number="0612345678", caller_name="Alice Martin",
                         called_number="5551000", duration_s=wav_duration(wav))
    values = {**info.__dict__, **fields}
    recording_id = await register_recording(db, RecordingInfo(**values), max_attempts=max_attempts)  # type: ignore[arg-type]
    return recording_id, wav
