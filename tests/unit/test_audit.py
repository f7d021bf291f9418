"""Every change request is written to the audit log with who made it, the path, the outcome and its fields
(secrets masked); reads are not; an upload's body is left for its handler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from cti.audit import http as audit_http
from cti.audit.middleware import AUDIT_DB_KEY
from cti.audit.models import AuditEntry
from cti.db import Database
from cti.http.app import make_web_app
from cti.http.auth import requires
from cti.settings import SecuritySettings

ADMIN = "a" * 32
AGENT = "g" * 32
Client = TestClient[web.Request, web.Application]


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@requires("admin", "agent")
async def change(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if body.get("fail"):
        raise web.HTTPConflict(reason="refused")
    return web.json_response({"ok": True})


@requires("admin")
async def upload(request: web.Request) -> web.StreamResponse:
    reader = await request.multipart()
    part = await reader.next()
    assert isinstance(part, aiohttp.BodyPartReader)
    return web.json_response({"bytes": len(await part.read())})


@requires("admin", "agent")
async def read(_request: web.Request) -> web.StreamResponse:
    return web.json_response({})


@pytest.fixture
async def client(database: Database) -> AsyncIterator[Client]:
    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", AGENT: "agent"}), _status)
    app[AUDIT_DB_KEY] = database
    audit_http.add_routes(app)
    app.router.add_post("/api/things", change)
    app.router.add_get("/api/things", read)
    app.router.add_post("/api/upload", upload)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _entries(database: Database) -> list[AuditEntry]:
    async with database.session() as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_changes_are_recorded_with_actor_outcome_and_masked_secrets(client: Client, database: Database) -> None:
    assert (await client.post("/api/things", json={"name": "x", "password": "hunter22", "csrf": "c"},
                              headers=_as(ADMIN))).status == 200
    assert (await client.post("/api/things", json={"fail": True}, headers=_as(AGENT))).status == 409
    assert (await client.get("/api/things", headers=_as(ADMIN))).status == 200  # a read: not recorded
    first, second = await _entries(database)
    assert (first.actor, first.role, first.method, first.path, first.status) == (
        "admin (api token)", "admin", "POST", "/api/things", 200)
    assert '"name": "x"' in first.detail and "hunter22" not in first.detail and '"password": "***"' in first.detail
    assert (second.role, second.status) == ("agent", 409)


async def test_an_upload_is_not_read_by_the_audit_and_reaches_its_handler(client: Client,
                                                                          database: Database) -> None:
    form = aiohttp.FormData()
    form.add_field("file", b"RIFF" + b"\0" * 96, filename="hello.wav", content_type="audio/wav")
    response = await client.post("/api/upload", data=form, headers=_as(ADMIN))
    assert response.status == 200 and (await response.json()) == {"bytes": 100}
    [entry] = await _entries(database)
    assert entry.detail.startswith("multipart/form-data") and "RIFF" not in entry.detail


async def test_an_unauthenticated_change_is_refused_before_any_record(client: Client, database: Database) -> None:
    assert (await client.post("/api/things", json={})).status == 401
    assert await _entries(database) == []


async def test_the_log_is_for_admins_and_supervisors_newest_first(client: Client) -> None:
    for name in ("one", "two"):
        await client.post("/api/things", json={"name": name}, headers=_as(ADMIN))
    assert (await client.get("/api/audit", headers=_as(AGENT))).status == 403
    listed = await (await client.get("/api/audit?path_prefix=/api/th&limit=1", headers=_as(ADMIN))).json()
    assert [entry["detail"] for entry in listed["entries"]] == ['{"name": "two"}']
    assert (await client.get("/api/audit?limit=x", headers=_as(ADMIN))).status == 400
