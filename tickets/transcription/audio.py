"""Any recording ffmpeg reads -> the 16 kHz mono signed 16-bit PCM Vosk models expect.

One ``ffmpeg`` process decodes, downmixes and resamples in a single pass and writes raw PCM to a pipe.
pydub is not used here although it is a dependency: its ``parameters`` land after the output file
(ffmpeg ignores them, so it cannot resample), it reads WAV files whole in Python and resamples with
``audioop`` (linear interpolation, and the module is gone in Python 3.13).

Decisions:

* A 0-byte file, or a valid container with no samples (Asterisk writes a bare 44-byte WAV header when
  the caller hangs up at the beep), is an *empty message*: ``PreparedAudio(b"", 0.0)``, not an error.
* Anything ffmpeg cannot decode, with no audio stream, or missing, is ``AudioUnreadable`` (permanent).
* Longer than ``max_seconds`` is ``AudioTooLong``. ffmpeg stops after ``max_seconds + 1`` s of output,
  so a huge file costs at most that much decoding and memory before it is refused.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tickets.transcription.errors import AudioTooLong, AudioUnreadable, TranscriptionError

SAMPLE_RATE = 16000
BYTES_PER_SECOND = SAMPLE_RATE * 2  # mono, 16-bit
DECODE_TIMEOUT_S = 120.0  # decoding 15 minutes of audio takes a couple of seconds; this only stops a hang


@dataclass(frozen=True)
class PreparedAudio:
    pcm: bytes  # 16 kHz, mono, signed 16-bit little-endian
    duration_s: float


def prepare_audio(path: Path, max_seconds: int) -> PreparedAudio:
    """Decode ``path`` for Vosk; blocking (runs in a transcription worker, never on the event loop)."""
    if _size(path) == 0:
        return PreparedAudio(b"", 0.0)
    pcm = _decode(path, limit_s=max_seconds + 1)
    duration = len(pcm) / BYTES_PER_SECOND
    if duration > max_seconds:
        raise AudioTooLong(path, max_seconds)
    return PreparedAudio(pcm, duration)


def _size(path: Path) -> int:
    try:
        if not path.is_file():
            raise AudioUnreadable(path, "not a regular file")
        return path.stat().st_size
    except OSError as exc:
        raise AudioUnreadable(path, exc.strerror or str(exc)) from None


def _decode(path: Path, limit_s: float) -> bytes:
    """First audio stream only, downmixed to mono; output capped at ``limit_s`` seconds."""
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
        "-i", f"file:{path}",  # never a protocol (http:, concat:, pipe:) whatever the name
        "-map", "0:a:0", "-t", f"{limit_s:g}",
        "-ac", "1", "-ar", str(SAMPLE_RATE), "-acodec", "pcm_s16le", "-f", "s16le", "pipe:1",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, timeout=DECODE_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise TranscriptionError("ffmpeg is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise AudioUnreadable(path, f"ffmpeg did not finish within {DECODE_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        raise AudioUnreadable(path, _ffmpeg_says(done.stderr) or f"ffmpeg exit status {done.returncode}")
    return done.stdout


def _ffmpeg_says(stderr: bytes) -> str:
    """ffmpeg's error lines, joined (a missing audio stream takes two lines to explain), kept short for logs."""
    lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
    return "; ".join(lines)[:500]
