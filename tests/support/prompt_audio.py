"""Voice prompt test helpers: real audio files made with sox and ffmpeg, a settable clock, and a library on a
temporary prompt folder with a placeholder ``welcome`` in place (spoken by espeak-ng, as ``cti prompts build``)."""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cti.db import Database
from cti.prompts import PromptStore, synthesize
from cti.supervision.voice_prompts.audio import Limits
from cti.supervision.voice_prompts.library import PromptLibrary

CATALOG = {"welcome": {"en": "Welcome to the help desk.", "fr": "Bienvenue au support technique."},
           "goodbye": {"en": "Goodbye.", "fr": "Au revoir."}}
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def tone(path: Path, seconds: float = 1.0, *, rate: int = 44100, channels: int = 2, frequency: int = 440) -> Path:
    """A sine tone WAV made by sox (44.1 kHz stereo by default: not the telephone format)."""
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", str(channels), "-b", "16", str(path), "synth", f"{seconds:g}",
                    "sine", str(frequency)], check=True, capture_output=True)
    return path


def encode(source: Path, target: Path, *codec: str) -> Path:
    """``source`` re-encoded by ffmpeg into ``target`` (the format follows its extension)."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *codec, str(target)],
                   check=True, capture_output=True)
    return target


def wav_format(path: Path) -> tuple[int, int, int, float]:
    """(rate, channels, sample width, seconds)."""
    with wave.open(str(path), "rb") as audio:
        return (audio.getframerate(), audio.getnchannels(), audio.getsampwidth(),
                audio.getnframes() / audio.getframerate())


def frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as audio:
        return audio.readframes(audio.getnframes())


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def prompt_library(database: Database, folder: Path, clock: Clock | None = None,
                   limits: Limits | None = None) -> PromptLibrary:
    """A library on ``folder`` with the English ``welcome`` placeholder in place (French has none)."""
    store = PromptStore(folder)
    synthesize(CATALOG["welcome"]["en"], "en", store.path("en", "welcome"))
    return PromptLibrary(database, store, CATALOG, clock or Clock(), limits or Limits())
