"""REST API of the voice prompts, for admins and supervisors (agents are refused: 403).

    GET    /api/prompts                                        every prompt, per language, usage, completeness
    GET    /api/prompts/{lang}/{name}                          its versions, newest first
    GET    /api/prompts/{lang}/{name}/audio                    the WAV played now (audio/wav)
    GET    /api/prompts/{lang}/{name}/versions/{n}/audio       one version's WAV
    POST   /api/prompts/{lang}/{name}/versions                 upload (multipart: file, note, activate, at)
    POST   /api/prompts/{lang}/{name}/speech                   espeak-ng placeholder (JSON: text, note, activate, at)
    POST   /api/prompts/{lang}/{name}/versions/{n}/activate    activate now (rollback to an older one)
    PUT    /api/prompts/{lang}/{name}/versions/{n}/schedule    JSON {"at": ISO 8601 with offset}
    DELETE /api/prompts/{lang}/{name}/versions/{n}/schedule    cancel it

Refusals answer ``{"error", "message"}``: 400 bad name, language or form; 413 too large; 415 not WAV/MP3/OGG
audio; 422 too long, too short, undecodable, bad text or schedule; 404 unknown version; 409 a concurrent
change or a damaged version file. Every change is written to the audit log by its middleware.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import web

from cti.http.auth import requires
from cti.http.bodies import BodyInvalid, json_object
from cti.http.errors import answers
from cti.http.identity import identity_of
from cti.prompts import PromptError
from cti.supervision.pages import SUPERVISORS
from cti.supervision.voice_prompts.errors import (
    PromptBusy,
    PromptChangeRefused,
    ToolMissing,
    UnsupportedAudio,
    UploadTooLarge,
    VersionFileDamaged,
    VersionNotFound,
)
from cti.supervision.voice_prompts.files import incoming_dir
from cti.supervision.voice_prompts.library import Origin, PromptLibrary
from cti.supervision.voice_prompts.overview import overview
from cti.supervision.voice_prompts.uploads import activation_of, parse_instant, receive_upload

PROMPTS_KEY: web.AppKey[PromptLibrary] = web.AppKey("prompt_library", PromptLibrary)
ONE = "/api/prompts/{language}/{name}"
VERSION = ONE + r"/versions/{version:\d{1,9}}"
AUDIO_HEADERS = {"Content-Type": "audio/wav", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

prompt_errors = answers(
    ((PromptError, BodyInvalid), 400), (UploadTooLarge, 413), (UnsupportedAudio, 415), (VersionNotFound, 404),
    ((PromptBusy, VersionFileDamaged), 409), (ToolMissing, 503), (PromptChangeRefused, 422),
)


def add_api_routes(app: web.Application, library: PromptLibrary) -> None:
    app[PROMPTS_KEY] = library
    app.router.add_get("/api/prompts", list_prompts)
    app.router.add_get(ONE, get_versions)
    app.router.add_get(ONE + "/audio", get_audio)
    app.router.add_post(ONE + "/versions", post_upload)
    app.router.add_post(ONE + "/speech", post_speech)
    app.router.add_get(VERSION + "/audio", get_version_audio)
    app.router.add_post(VERSION + "/activate", post_activate)
    app.router.add_put(VERSION + "/schedule", put_schedule)
    app.router.add_delete(VERSION + "/schedule", delete_schedule)


def _target(request: web.Request) -> tuple[str, str]:
    return request.match_info["language"], request.match_info["name"]


def _version(request: web.Request) -> int:
    return int(request.match_info["version"])


@requires(*SUPERVISORS)
@prompt_errors
async def list_prompts(request: web.Request) -> web.StreamResponse:
    return web.json_response(await overview(request.app[PROMPTS_KEY]))


@requires(*SUPERVISORS)
@prompt_errors
async def get_versions(request: web.Request) -> web.StreamResponse:
    return web.json_response(await request.app[PROMPTS_KEY].versions(*_target(request)))


@requires(*SUPERVISORS)
@prompt_errors
async def get_audio(request: web.Request) -> web.StreamResponse:
    """What Asterisk plays now (scheduled activations that are due are applied first)."""
    library = request.app[PROMPTS_KEY]
    await library.apply_due()
    return await _audio(library.store.path(*_target(request)))


@requires(*SUPERVISORS)
@prompt_errors
async def get_version_audio(request: web.Request) -> web.StreamResponse:
    language, name = _target(request)
    return await _audio(await request.app[PROMPTS_KEY].version_file(language, name, _version(request)))


async def _audio(path: Path) -> web.StreamResponse:
    if not await asyncio.to_thread(path.is_file):
        raise VersionNotFound(f"no audio file for {path.stem!r}")
    return web.FileResponse(path, headers=AUDIO_HEADERS)


@requires(*SUPERVISORS)
@prompt_errors
async def post_upload(request: web.Request) -> web.StreamResponse:
    library = request.app[PROMPTS_KEY]
    language, name = _target(request)
    library.store.path(language, name)  # refuse a bad name or language before reading the body
    with tempfile.TemporaryDirectory(dir=incoming_dir(library.store)) as work:
        upload = await receive_upload(request, Path(work), library.limits.max_bytes)
        origin = Origin("upload", identity_of(request).author, upload.fields.get("note", ""), upload.filename)
        added = await library.add_upload(language, name, upload.path, origin, activation_of(upload.fields))
    return web.json_response(added, status=201)


@requires(*SUPERVISORS)
@prompt_errors
async def post_speech(request: web.Request) -> web.StreamResponse:
    body = await json_object(request, allowed=("text", "note", "activate", "at"))
    text, note = body.get("text", ""), body.get("note", "")
    if not isinstance(text, str) or not isinstance(note, str):
        raise BodyInvalid("text and note must be texts")
    origin = Origin("tts", identity_of(request).author, note)
    added = await request.app[PROMPTS_KEY].add_speech(*_target(request), text, origin, activation_of(body))
    return web.json_response(added, status=201)


@requires(*SUPERVISORS)
@prompt_errors
async def post_activate(request: web.Request) -> web.StreamResponse:
    language, name = _target(request)
    activated = await request.app[PROMPTS_KEY].activate(language, name, _version(request), identity_of(request).author)
    return web.json_response(activated)


@requires(*SUPERVISORS)
@prompt_errors
async def put_schedule(request: web.Request) -> web.StreamResponse:
    body = await json_object(request, allowed=("at",))
    language, name = _target(request)
    at = parse_instant(body.get("at"))
    scheduled = await request.app[PROMPTS_KEY].schedule(language, name, _version(request), at,
                                                        identity_of(request).author)
    return web.json_response(scheduled)


@requires(*SUPERVISORS)
@prompt_errors
async def delete_schedule(request: web.Request) -> web.StreamResponse:
    language, name = _target(request)
    return web.json_response(await request.app[PROMPTS_KEY].cancel_schedule(language, name, _version(request)))
