"""Why a prompt change is refused; each kind maps to one HTTP status in :mod:`.http`."""

from __future__ import annotations

from cti.errors import CtiError


class PromptChangeRefused(CtiError):
    code = "prompts.refused"


class UploadTooLarge(PromptChangeRefused):
    """413: the upload is larger than the limit (it is not read further)."""

    code = "prompts.too_large"


class UnsupportedAudio(PromptChangeRefused):
    """415: the content is not WAV, MP3 or OGG audio, whatever its name or declared type say."""

    code = "prompts.unsupported_audio"


class AudioUnconvertible(PromptChangeRefused):
    """422: ffprobe recognised the container but ffmpeg could not decode it (damaged file)."""

    code = "prompts.conversion_failed"


class TooLong(PromptChangeRefused):
    code = "prompts.too_long"


class TooShort(PromptChangeRefused):
    code = "prompts.too_short"


class TextRefused(PromptChangeRefused):
    """422: the text to speak is empty or too long."""

    code = "prompts.bad_text"


class ScheduleRefused(PromptChangeRefused):
    """422: an activation instant without offset, in the past, or too far ahead."""

    code = "prompts.bad_schedule"


class VersionNotFound(PromptChangeRefused):
    code = "prompts.version_not_found"


class PromptBusy(PromptChangeRefused):
    """409: another change of the same prompt was saved at the same moment; trying again is safe."""

    code = "prompts.busy"


class ToolMissing(PromptChangeRefused):
    """503: ffmpeg, ffprobe or espeak-ng is not installed on this server."""

    code = "prompts.tool_missing"


class VersionFileDamaged(PromptChangeRefused):
    """409: a version's stored file is missing or no longer matches its checksum; it is never played."""

    code = "prompts.file_damaged"
