"""The voice prompts API and page over HTTP (SQLite and PostgreSQL, real converters): roles, uploads and their
refusals with the right status and reason, speech, activation and schedules, the WAV player route, the audit
log, and the page's frame in English and French."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from cti.audit.middleware import AUDIT_DB_KEY
from cti.audit.models import AuditEntry
from cti.db import Database
from cti.http.app import make_web_app
from cti.http.auth import SESSION_COOKIE, SESSIONS_KEY, declared_roles
from cti.settings import SecuritySettings
from cti.supervision.voice_prompts.audio import Limits
from cti.supervision.voice_prompts.files import sha256_of
from cti.supervision.voice_prompts.http import add_api_routes
from cti.supervision.voice_prompts.library import PromptLibrary
from cti.supervision.voice_prompts.messages import MESSAGES
from cti.supervision.voice_prompts.models import SOURCES
from cti.supervision.voice_prompts.page import add_page_route
from cti.supervision.voice_prompts.usage import BUILT_IN
from cti.users.store import UserStore
from tests.support.prompt_audio import Clock, encode, prompt_library, tone

ADMIN, SUPERVISOR, AGENT = "a" * 32, "s" * 32, "g" * 32
WELCOME = "/api/prompts/en/welcome"
ROUTES = [("GET", "/api/prompts"), ("GET", WELCOME), ("GET", WELCOME + "/audio"), ("POST", WELCOME + "/versions"),
          ("POST", WELCOME + "/speech"), ("GET", WELCOME + "/versions/1/audio"),
          ("POST", WELCOME + "/versions/1/activate"), ("PUT", WELCOME + "/versions/1/schedule"),
          ("DELETE", WELCOME + "/versions/1/schedule"), ("GET", "/supervision/prompts")]
CONFIG = re.compile(r'<script type="application/json" id="prompts-config">(.*?)</script>', re.DOTALL)
SMALL = Limits(max_bytes=256 * 1024, max_seconds=4)

Client = TestClient[web.Request, web.Application]


@dataclass
class Env:
    client: Client
    library: PromptLibrary
    database: Database
    folder: Path

    async def call(self, method: str, path: str, token: str = SUPERVISOR, **kwargs: Any) -> tuple[int, Any]:
        response = await self.client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        body = await response.json() if response.content_type == "application/json" else await response.read()
        return response.status, body

    async def upload(self, audio: Path, *, name: str = "welcome", language: str = "en", filename: str | None = None,
                     content_type: str = "audio/wav", **fields: str) -> tuple[int, Any]:
        form = FormData()
        content = await asyncio.to_thread(audio.read_bytes)
        form.add_field("file", content, filename=filename or audio.name, content_type=content_type)
        for key, value in fields.items():
            form.add_field(key, value)
        return await self.call("POST", f"/api/prompts/{language}/{name}/versions", data=form)

    async def cookie_for(self, username: str, role: str, language: str | None = None) -> tuple[dict[str, str], str]:
        """A browser's session: its cookie header, and its CSRF token."""
        user = await UserStore(self.database).create(username, "a long enough password", role, language=language)
        token, session = await self.client.app[SESSIONS_KEY].create(user)
        return {"Cookie": f"{SESSION_COOKIE}={token}"}, session.csrf


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@pytest.fixture
async def env(database: Database, tmp_path: Path) -> AsyncIterator[Env]:
    library = prompt_library(database, tmp_path / "prompts", Clock(), SMALL)
    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", SUPERVISOR: "supervisor", AGENT: "agent"}),
                       _status)
    app[AUDIT_DB_KEY] = database
    add_api_routes(app, library)
    add_page_route(app)
    async with TestClient(TestServer(app)) as client:
        yield Env(client, library, database, tmp_path)


# --- roles ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_agents_are_refused_everywhere(env: Env, method: str, path: str) -> None:
    status, _ = await env.call(method, path, token=AGENT)
    assert status == 403


@pytest.mark.parametrize(("method", "path"), [route for route in ROUTES if route[1].startswith("/api")])
async def test_no_credentials_is_401(env: Env, method: str, path: str) -> None:
    assert (await env.client.request(method, path)).status == 401


def test_every_route_admits_admins_and_supervisors_only(env: Env) -> None:
    app = web.Application()
    add_api_routes(app, env.library)
    add_page_route(app)
    roles = {declared_roles(route.handler) for route in app.router.routes()}
    assert roles == {frozenset({"admin", "supervisor"})}
    assert len([route for route in app.router.routes() if route.method != "HEAD"]) == len(ROUTES)


# --- uploads -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [ADMIN, SUPERVISOR])
async def test_an_upload_becomes_the_played_version(env: Env, token: str) -> None:
    mp3 = encode(tone(env.folder / "source.wav", 1.0), env.folder / "accueil.mp3")
    status, added = await env.call("POST", WELCOME + "/versions", token=token, data=_form(mp3, note="Noël"))
    assert status == 201, added
    assert (added["version"], added["active"], added["original_filename"], added["note"]) == (
        2, True, "accueil.mp3", "Noël")
    assert added["sha256"] == sha256_of(env.library.store.path("en", "welcome"))
    response = await env.client.get(WELCOME + "/audio", headers={"Authorization": f"Bearer {token}"})
    assert (response.status, response.headers["Content-Type"]) == (200, "audio/wav")
    assert await response.read() == env.library.store.path("en", "welcome").read_bytes()


async def test_an_upload_is_audited_with_its_author(env: Env) -> None:
    headers, csrf = await env.cookie_for("sam", "supervisor")
    response = await env.client.post(WELCOME + "/versions", data=_form(tone(env.folder / "t.wav")),
                                     headers={**headers, "X-CSRF-Token": csrf})
    assert response.status == 201
    assert (await response.json())["created_by"] == "sam"
    async with env.database.session() as session:
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.path == WELCOME + "/versions"))).one()
    assert (entry.actor, entry.method, entry.status) == ("sam", "POST", 201)


async def test_a_cookie_upload_without_the_csrf_header_is_refused(env: Env) -> None:
    headers, _csrf = await env.cookie_for("sam", "supervisor")
    response = await env.client.post(WELCOME + "/versions", data=_form(tone(env.folder / "t.wav")), headers=headers)
    assert response.status == 403


async def test_text_renamed_wav_is_415_and_changes_nothing(env: Env) -> None:
    fake = env.folder / "welcome.wav"
    fake.write_text("definitely not audio\n" * 50)
    before = env.library.store.path("en", "welcome").read_bytes()
    status, body = await env.upload(fake, content_type="audio/wav")
    assert (status, body["error"]) == (415, "prompts.unsupported_audio")
    assert "not audio" in body["message"]
    assert env.library.store.path("en", "welcome").read_bytes() == before
    assert (await env.call("GET", WELCOME))[1]["active"] == 1


async def test_too_big_is_413(env: Env) -> None:
    big = tone(env.folder / "big.wav", 3.0)  # 44.1 kHz stereo: about 530 KB, over the test's 256 KB
    status, body = await env.upload(big)
    assert (status, body["error"]) == (413, "prompts.too_large")
    assert "larger than 0.25 MB" in body["message"]


async def test_too_big_without_a_declared_length_is_413_too(env: Env) -> None:
    big = tone(env.folder / "big.wav", 3.0)

    async def chunks() -> AsyncIterator[bytes]:
        yield big.read_bytes()

    form = FormData()
    form.add_field("file", chunks(), filename="big.wav", content_type="audio/wav")  # streamed: no Content-Length
    status, body = await env.call("POST", WELCOME + "/versions", data=form)
    assert (status, body["error"]) == (413, "prompts.too_large")


@pytest.mark.parametrize(("seconds", "code"), [(5.0, "prompts.too_long"), (0.1, "prompts.too_short")])
async def test_too_long_or_too_short_is_422(env: Env, seconds: float, code: str) -> None:
    status, body = await env.upload(tone(env.folder / "t.wav", seconds, rate=8000, channels=1))
    assert (status, body["error"]) == (422, code)


@pytest.mark.parametrize(("language", "name"), [("de", "welcome"), ("en", "Welcome"), ("en", "..%2F..%2Fetc"),
                                                ("en", "a%00b"), ("EN", "welcome"), ("en", "-x"), ("en", "a.wav")])
async def test_bad_languages_and_names_are_400(env: Env, language: str, name: str) -> None:
    status, body = await env.upload(tone(env.folder / "t.wav"), name=name, language=language)
    assert status == 400, body
    assert body["error"] == ("http.path_invalid" if "%00" in name else "prompts.invalid")  # NUL: every path


@pytest.mark.parametrize("path", ["/api/prompts/en/../../etc/versions", "/api/prompts/en/a/b/versions",
                                  "/api/prompts/en/%2E%2E/versions", "/api/prompts/../en/welcome/versions"])
async def test_paths_that_try_to_escape_reach_no_file(env: Env, path: str) -> None:
    form = _form(tone(env.folder / "t.wav"))
    before = sorted(env.folder.rglob("*"))
    status, _ = await env.call("POST", path, data=form)
    assert status in (400, 404)
    assert sorted(env.folder.rglob("*")) == before


async def test_a_form_without_a_file_or_with_unknown_fields_is_400(env: Env) -> None:
    form = FormData(default_to_multipart=True)
    form.add_field("note", "no file")
    status, body = await env.call("POST", WELCOME + "/versions", data=form)
    assert (status, body["message"]) == (400, 'no recording: the form needs a field named "file"')
    status, body = await env.upload(tone(env.folder / "t.wav"), path="/etc/passwd")
    assert (status, body["message"]) == (400, "unexpected field 'path' (allowed: file, note, activate, at)")
    status, body = await env.call("POST", WELCOME + "/versions", json={"file": "x"})
    assert status == 400 and "multipart" in body["message"]


async def test_an_upload_scheduled_for_later(env: Env) -> None:
    at = env.library.clock().replace(hour=22).isoformat()
    status, added = await env.upload(tone(env.folder / "t.wav"), activate="at", at=at)
    assert (status, added["active"], added["activate_at"]) == (201, False, at)
    status, body = await env.upload(tone(env.folder / "t.wav"), activate="at", at="tomorrow")
    assert (status, body["error"]) == (400, "http.body_invalid")
    status, body = await env.upload(tone(env.folder / "t.wav"), activate="at", at="2020-01-01T00:00:00+00:00")
    assert (status, body["error"]) == (422, "prompts.bad_schedule")


# --- speech, activation, schedules ---------------------------------------------------------------------------


async def test_speech_then_rollback_and_schedule(env: Env) -> None:
    status, spoken = await env.call("POST", WELCOME + "/speech", json={"text": "Hello there", "note": "test"})
    assert (status, spoken["version"], spoken["source"], spoken["active"]) == (201, 2, "tts", True)
    status, rolled = await env.call("POST", WELCOME + "/versions/1/activate")
    assert (status, rolled["version"], rolled["active"]) == (200, 1, True)
    at = env.library.clock().replace(hour=23).isoformat()
    status, scheduled = await env.call("PUT", WELCOME + "/versions/2/schedule", json={"at": at})
    assert (status, scheduled["activate_at"], scheduled["scheduled_by"]) == (200, at, "supervisor (api token)")
    status, cancelled = await env.call("DELETE", WELCOME + "/versions/2/schedule")
    assert (status, cancelled["activate_at"]) == (200, None)
    status, versions = await env.call("GET", WELCOME)
    assert [(v["version"], v["active"]) for v in versions["versions"]] == [(2, False), (1, True)]


async def test_speech_refusals(env: Env) -> None:
    status, body = await env.call("POST", "/api/prompts/en/promo/speech", json={"text": ""})
    assert (status, body["error"]) == (422, "prompts.bad_text")
    status, body = await env.call("POST", WELCOME + "/speech", json={"text": 3})
    assert status == 400
    status, body = await env.call("POST", WELCOME + "/speech", json={"voice": "robot"})
    assert status == 400 and "unknown field" in body["message"]


async def test_unknown_versions_are_404(env: Env) -> None:
    assert (await env.call("POST", WELCOME + "/versions/9/activate"))[0] == 404
    assert (await env.call("GET", WELCOME + "/versions/9/audio"))[0] == 404
    assert (await env.call("GET", "/api/prompts/fr/welcome/audio"))[0] == 404  # no French file yet
    assert (await env.call("GET", WELCOME + "/versions/x/audio"))[0] == 404


async def test_a_version_is_playable_by_number(env: Env) -> None:
    placeholder = env.library.store.path("en", "welcome").read_bytes()
    status, audio = await env.call("GET", WELCOME + "/versions/1/audio")  # never changed: the file in place
    assert (status, audio) == (200, placeholder)
    await env.upload(tone(env.folder / "t.wav"))
    assert (await env.call("GET", WELCOME + "/versions/1/audio")) == (200, placeholder)


async def test_the_list_answers_with_completeness(env: Env) -> None:
    status, listing = await env.call("GET", "/api/prompts", token=ADMIN)
    assert status == 200
    assert {prompt["name"] for prompt in listing["prompts"]} >= {"welcome", "goodbye"}
    assert listing["completeness"]["languages"]["en"]["present"] == 1


# --- the page ------------------------------------------------------------------------------------------------


async def test_an_anonymous_visit_goes_to_the_login_form(env: Env) -> None:
    response = await env.client.get("/supervision/prompts", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/login?next=/supervision/prompts")


async def test_an_agent_cannot_open_the_page(env: Env) -> None:
    headers, _ = await env.cookie_for("alice", "agent")
    assert (await env.client.get("/supervision/prompts", headers=headers)).status == 403


@pytest.mark.parametrize(("language", "title", "upload"), [("en", "Voice prompts", "Upload a recording"),
                                                           ("fr", "Messages vocaux", "Envoyer un enregistrement")])
async def test_the_page_in_each_language(env: Env, language: str, title: str, upload: str) -> None:
    headers, _ = await env.cookie_for("sam", "supervisor", language)
    response = await env.client.get("/supervision/prompts", headers=headers)
    html = await response.text()
    assert response.status == 200 and f'<html lang="{language}">' in html
    assert f"<h1>{title}</h1>" in html and upload in html
    assert '<script src="/static/supervision/prompts.js" defer></script>' in html
    assert 'href="/supervision/prompts" data-testid="nav-prompts" aria-current="page"' in html
    assert "<script>" not in html and " style=" not in html  # the CSP allows neither
    found = CONFIG.search(html)
    assert found is not None
    config = json.loads(found.group(1))
    assert (config["language"], config["max_bytes"], config["max_seconds"]) == (language, 256 * 1024, 4)
    assert config["messages"]["prompts.title"] == title
    assert config["catalog"]["welcome"]["fr"] == "Bienvenue au support technique."


def test_every_text_the_script_builds_a_key_for_exists_in_both_languages() -> None:
    keys = [f"prompts.where.{part}" for part in set(BUILT_IN.values())] + [
        f"prompts.source.{source}" for source in SOURCES] + [f"prompts.when.{mode}" for mode in ("now", "at", "no")]
    assert [key for key in keys if key not in MESSAGES] == []
    assert [key for key, texts in MESSAGES.items() if set(texts) != {"en", "fr"} or not all(texts.values())] == []


def _form(path: Path, **fields: str) -> FormData:
    form = FormData()
    form.add_field("file", path.read_bytes(), filename=path.name, content_type="application/octet-stream")
    for key, value in fields.items():
        form.add_field(key, value)
    return form
