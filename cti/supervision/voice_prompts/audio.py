"""Turning an upload or a text into a prompt Asterisk plays natively: WAV, 8 kHz, mono, signed 16-bit.

The content decides, never the name or the declared type: ``ffprobe`` must find a WAV, MP3 or OGG container
holding audio only, and ffmpeg then decodes *that* format (``-f``), so a file cannot pass the check as one
format and be decoded as another. ffmpeg writes a bare 44-byte header (no metadata, bit-exact output), and
the duration is measured on the converted file, exactly. Everything here blocks: callers run it in a thread.
"""

from __future__ import annotations

import json
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

from cti.prompts import ESPEAK_VOICES
from cti.supervision.voice_prompts.errors import (
    AudioUnconvertible,
    TextRefused,
    ToolMissing,
    TooLong,
    TooShort,
    UnsupportedAudio,
)

ACCEPTED_FORMATS = ("wav", "mp3", "ogg")
SAMPLE_RATE = 8000
TOOL_TIMEOUT_S = 120.0  # converting five minutes of audio takes well under a second; this only stops a hang


@dataclass(frozen=True)
class Limits:
    """What an upload or a generated prompt may be (the defaults: 10 MB, 0.2 s to 5 minutes, 1000 characters)."""

    max_bytes: int = 10 * 1024 * 1024
    max_seconds: float = 300.0
    min_seconds: float = 0.2
    max_text: int = 1000


def probe_format(path: Path) -> str:
    """The container ffprobe finds (``wav``, ``mp3`` or ``ogg``); UnsupportedAudio for anything else."""
    done = _run(["ffprobe", "-v", "error", "-show_entries", "format=format_name:stream=codec_type",
                 "-of", "json", f"file:{path}"])
    if done.returncode != 0:
        raise UnsupportedAudio(f"the file is not audio that can be read ({_says(done.stderr) or 'unknown format'})")
    found = json.loads(done.stdout or b"{}")
    formats = str(found.get("format", {}).get("format_name", "")).split(",")
    kinds = {str(stream.get("codec_type")) for stream in found.get("streams", [])}
    accepted = [name for name in formats if name in ACCEPTED_FORMATS]
    if not accepted:
        raise UnsupportedAudio(f"the content is {'/'.join(formats) or 'unknown'}, not WAV, MP3 or OGG audio")
    if kinds != {"audio"}:
        raise UnsupportedAudio(f"the file must hold audio only (found: {', '.join(sorted(kinds)) or 'nothing'})")
    return accepted[0]


def convert(source: Path, source_format: str, target: Path, limits: Limits) -> float:
    """Decodes ``source`` as ``source_format`` into ``target``; returns the duration in seconds.

    ffmpeg stops after ``max_seconds`` + 1 s, so a very long file costs little before it is refused."""
    done = _run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                 "-f", source_format, "-i", f"file:{source}", "-map", "0:a:0", "-t", f"{limits.max_seconds + 1:g}",
                 "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-map_metadata", "-1",
                 "-fflags", "+bitexact", "-flags:a", "+bitexact", "-f", "wav", f"file:{target}"])
    if done.returncode != 0:
        raise AudioUnconvertible(f"the audio could not be decoded ({_says(done.stderr) or 'ffmpeg failed'})")
    return check_duration(target, limits)


def check_duration(path: Path, limits: Limits) -> float:
    seconds = wav_seconds(path)
    if seconds > limits.max_seconds:
        raise TooLong(f"the prompt lasts more than {limits.max_seconds:g} s")
    if seconds < limits.min_seconds:
        raise TooShort(f"the prompt lasts {seconds:.2f} s, less than {limits.min_seconds:g} s")
    return seconds


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def duration_or_zero(path: Path) -> float:
    """A file put in place by hand may not be a WAV the ``wave`` module reads: its duration is then unknown (0)."""
    try:
        return round(wav_seconds(path), 3)
    except (wave.Error, EOFError, OSError):
        return 0.0


def speak(text: str, language: str, work: Path, target: Path, limits: Limits) -> float:
    """espeak-ng in the language's voice (the text on stdin, never as an argument), then :func:`convert`."""
    text = text.strip()
    if not text:
        raise TextRefused("the text to speak is empty")
    if len(text) > limits.max_text:
        raise TextRefused(f"the text is longer than {limits.max_text} characters")
    raw = work / "espeak.wav"
    done = _run(["espeak-ng", "-v", ESPEAK_VOICES[language], "-s", "150", "-w", str(raw), "--stdin"],
                text.encode("utf-8"))
    if done.returncode != 0 or not raw.is_file():
        raise AudioUnconvertible(f"espeak-ng failed ({_says(done.stderr) or done.returncode})")
    return convert(raw, "wav", target, limits)


def _run(command: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(command, input=stdin, capture_output=True, timeout=TOOL_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise ToolMissing(f"{command[0]} is not installed on the server (apt-get install ffmpeg espeak-ng)") from None
    except subprocess.TimeoutExpired:
        raise AudioUnconvertible(f"{command[0]} did not finish within {TOOL_TIMEOUT_S:g} s") from None


def _says(stderr: bytes) -> str:
    """The tool's error lines, short: they are shown to the supervisor as the reason."""
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
    return "; ".join(lines)[:300]
