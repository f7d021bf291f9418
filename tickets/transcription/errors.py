"""Transcription errors, each with a stable ``code`` the voicemail pipeline keys its retry policy on.

Most are raised inside worker processes and cross back through pickling, which rebuilds an exception
as ``cls(*exc.args)``: every constructor below therefore passes exactly its own arguments (plain
strings and numbers) to ``Exception.__init__`` and renders its message in ``__str__``.
"""

from __future__ import annotations

from pathlib import Path

from cti.errors import CtiError


class TranscriptionError(CtiError):
    """Root of the transcription errors; also used as is for unexpected engine failures."""

    code = "transcription.error"


class AudioUnreadable(TranscriptionError):
    """The recording is missing, corrupt or holds no audio stream: retrying will not help."""

    code = "transcription.audio_unreadable"

    def __init__(self, path: str | Path, detail: str) -> None:
        super().__init__(str(path), detail)
        self.path = Path(path)
        self.detail = detail

    def __str__(self) -> str:
        return f"cannot read audio from {self.path}: {self.detail}"


class AudioTooLong(TranscriptionError):
    """The recording is longer than ``transcription.max_audio_s``; it is refused, never truncated."""

    code = "transcription.too_long"

    def __init__(self, path: str | Path, max_seconds: float) -> None:
        super().__init__(str(path), max_seconds)
        self.path = Path(path)
        self.max_seconds = max_seconds

    def __str__(self) -> str:
        return f"{self.path} is longer than {self.max_seconds:g} s (transcription.max_audio_s)"


class ModelMissing(TranscriptionError):
    """No speech model is installed for a language; the message says where we looked and how to fix it."""

    code = "transcription.model_missing"

    def __init__(self, language: str, directory: str | Path) -> None:
        super().__init__(language, str(directory))
        self.language = language
        self.directory = Path(directory)

    def __str__(self) -> str:
        return (
            f"no speech model for language {self.language!r}: {self.directory} does not hold a Vosk model "
            f"(install one with `cti models install --lang {self.language}`, or set "
            f"transcription.models.{self.language} to a model directory; see docs/VOICEMAIL.md)"
        )


class ModelBroken(TranscriptionError):
    """The model directory exists but Vosk cannot load it (incomplete unpack, wrong version, bad files)."""

    code = "transcription.model_broken"

    def __init__(self, directory: str | Path, detail: str) -> None:
        super().__init__(str(directory), detail)
        self.directory = Path(directory)
        self.detail = detail

    def __str__(self) -> str:
        return f"speech model at {self.directory} cannot be used: {self.detail}"


class ModelInstallError(TranscriptionError):
    """``cti models install`` failed (download, checksum, archive layout); the installed model is untouched."""

    code = "transcription.model_install"


class WorkerCrashed(TranscriptionError):
    """A transcription worker died (killed, out of memory, native crash); the job may be retried.

    Every job that was queued in the pool at that moment fails with this error too.
    """

    code = "transcription.worker_crashed"
