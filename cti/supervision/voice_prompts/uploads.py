"""Reading a prompt upload: ``multipart/form-data`` with one ``file`` part and a few short text fields.

The file is streamed to disk and counted as it arrives; past the limit reading stops and the upload is refused
(413), so a huge body never fills the disk or the memory. The declared name and type are not trusted: the
name is kept for display only and the content is checked afterwards (:mod:`.audio`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from cti.http.bodies import BodyInvalid, form_parts
from cti.safe_text import unstorable_text
from cti.supervision.voice_prompts.errors import UploadTooLarge
from cti.supervision.voice_prompts.library import Activation

TEXT_FIELDS = ("note", "activate", "at")
MAX_FIELD_BYTES = 2000
MULTIPART_SLACK = 64 * 1024  # boundaries, part headers and the text fields around the file
CHUNK = 64 * 1024


@dataclass
class Upload:
    path: Path
    filename: str = ""
    fields: dict[str, str] = field(default_factory=dict)


async def receive_upload(request: web.Request, folder: Path, max_bytes: int) -> Upload:
    """Saves the ``file`` part as ``folder/upload``; BodyInvalid for a malformed form, UploadTooLarge."""
    if not request.content_type.startswith("multipart/form-data"):
        raise BodyInvalid('send the recording as multipart/form-data, in a field named "file"')
    if request.content_length is not None and request.content_length > max_bytes + MULTIPART_SLACK:
        raise UploadTooLarge(_too_large(max_bytes))
    upload, received = Upload(folder / "upload"), False
    async for part in form_parts(request):
        if part.name == "file" and not received:
            await _save(part, upload.path, max_bytes)
            upload.filename, received = _filename(part), True
        elif part.name in TEXT_FIELDS:
            upload.fields[str(part.name)] = await _text(part)
        else:
            raise BodyInvalid(f"unexpected field {part.name!r} (allowed: file, {', '.join(TEXT_FIELDS)})")
    if not received:
        raise BodyInvalid('no recording: the form needs a field named "file"')
    return upload


async def _save(part: BodyPartReader, target: Path, max_bytes: int) -> None:
    size = 0
    handle = await asyncio.to_thread(target.open, "wb")
    try:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLarge(_too_large(max_bytes))
            await asyncio.to_thread(handle.write, chunk)
    finally:
        await asyncio.to_thread(handle.close)
    if size == 0:
        raise BodyInvalid("the file is empty")


async def _text(part: BodyPartReader) -> str:
    raw = bytearray()
    while chunk := await part.read_chunk(1024):
        raw += chunk
        if len(raw) > MAX_FIELD_BYTES:
            raise BodyInvalid(f"field {part.name!r} is longer than {MAX_FIELD_BYTES} bytes")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BodyInvalid(f"field {part.name!r} is not UTF-8 text") from None
    problem = unstorable_text(text)
    if problem:
        raise BodyInvalid(f"field {part.name!r} contains {problem}")
    return text


def _filename(part: BodyPartReader) -> str:
    """The name the browser gave (``filename*=UTF-8''%00`` decodes to anything): kept only to be shown."""
    name = part.filename or ""
    problem = unstorable_text(name)
    if problem:
        raise BodyInvalid(f"the file name contains {problem}")
    return name


def activation_of(fields: dict[str, Any]) -> Activation:
    """``activate``: ``now`` (default), ``at`` (with ``at``: ISO 8601 with an offset) or ``no``."""
    match fields.get("activate") or "now":
        case "now":
            return Activation("now")
        case "no":
            return Activation("no")
        case "at":
            return Activation("at", parse_instant(fields.get("at")))
    raise BodyInvalid('activate must be "now", "at" or "no"')


def parse_instant(value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        raise BodyInvalid('"at" is required: an ISO 8601 instant with its offset (2026-12-01T08:00:00+01:00)')
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise BodyInvalid(f'"at" is not an ISO 8601 instant: {value[:40]!r}') from None


def _too_large(max_bytes: int) -> str:
    return f"the file is larger than {max_bytes / 1024 / 1024:g} MB"
