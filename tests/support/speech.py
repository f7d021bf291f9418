"""Speech the simulated callers play: espeak-ng, then 8 kHz mono 16-bit WAV as Asterisk plays it."""

from __future__ import annotations

import subprocess
from pathlib import Path


def speech_clip(folder: Path, name: str, text: str, voice: str = "en-us", speed: int = 150) -> Path:
    """Made once and kept (the sandbox media folder is reused); Playback takes the path without ``.wav``."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / f"{name}.wav"
    if not clip.exists():
        raw = folder / f"{name}.raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(clip)], check=True)
        raw.unlink()
    return clip
