"""The tickets REST API over a migrated SQLite database: auth, happy paths, clear errors, audio download."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from cti.db import Database, make_database
from cti.db.migrate import upgrade_async
from cti.http.app import make_web_app
from cti.http.auth import ROLE_KEY, declared_roles
from cti.settings import DatabaseSettings, SecuritySettings, TicketSettings
from tickets.errors import TicketConflict
from tickets.http import add_routes
from tickets.models import Attachment, Ticket
from tickets.service import TicketService
from tickets.types import NewAttachment, NewTicket

ADMIN = "a" * 32
AGENT = "g" * 32
WALLBOARD = "w" * 32  # a role the ticket routes do not admit
AUDIO = bytes(range(256)) * 40  # 10,240 bytes, every offset distinguishable

Client = TestClient[web.Request, web.Application]


@dataclass
class Env:
    client: Client
    service: TicketService
    db: Database
    media: Path

    async def call(self, method: str, path: str, token: str = AGENT, **kwargs: Any) -> tuple[int, Any]:
        response = await self.client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    settings = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/cti.sqlite3")
    await upgrade_async(settings)
    db = make_database(settings)
    media = tmp_path / "media"
    (media / "recordings").mkdir(parents=True)
    (media / "recordings" / "vm-1.wav").write_bytes(AUDIO)
    (tmp_path / "secret.txt").write_text("outside the media folder")
    service = TicketService(db, TicketSettings())
    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", AGENT: "agent"}), _status)
    app[ROLE_KEY] = {ADMIN: "admin", AGENT: "agent", WALLBOARD: "wallboard"}  # settings only accept known roles
    add_routes(app, service, media)
    async with TestClient(TestServer(app)) as client:
        yield Env(client, service, db, media)
    await db.close()


async def _voicemail(env: Env, key: str = "rec:1", content_type: str = "audio/x-wav") -> Ticket:
    attachment = NewAttachment(path="recordings/vm-1.wav", content_type=content_type, size_bytes=len(AUDIO))
    return await env.service.create(NewTicket(subject="Printer on fire", source="voicemail", source_key=key,
                                              caller_number="+33612345678", attachments=(attachment,)))


async def _stored_attachment(env: Env, ticket_id: int, path: str) -> int:
    """Written straight to the table, as a buggy or hostile writer could, bypassing the service's checks."""
    async with env.db.session() as session:
        row = Attachment(ticket_id=ticket_id, path=path)
        session.add(row)
        await session.flush()
        return row.id


ROUTES = [("GET", "/api/tickets"), ("GET", "/api/tickets/1"), ("PATCH", "/api/tickets/1"),
          ("POST", "/api/tickets/1/comments"), ("GET", "/api/tickets/1/attachments/1")]


# --- authentication --------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_no_token_is_401(env: Env, method: str, path: str) -> None:
    response = await env.client.request(method, path)
    assert response.status == 401


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_role_not_admitted_is_403(env: Env, method: str, path: str) -> None:
    status, _ = await env.call(method, path, token=WALLBOARD)
    assert status == 403


def test_every_ticket_route_declares_roles(tmp_path: Path) -> None:
    app = web.Application()
    add_routes(app, TicketService(make_database(DatabaseSettings(url="sqlite+aiosqlite://")), TicketSettings()),
               tmp_path)
    for route in app.router.routes():
        assert declared_roles(route.handler) == frozenset({"admin", "supervisor", "agent"})


# --- list ------------------------------------------------------------------------------------------


async def test_list_and_filters(env: Env) -> None:
    vm = await _voicemail(env)
    phone = await env.service.create(NewTicket(subject="VPN down", source="phone", queue="network"))
    await env.service.update(phone.id, status="open", author="agent")
    status, body = await env.call("GET", "/api/tickets")
    assert status == 200
    assert [t["id"] for t in body["tickets"]] == [phone.id, vm.id]
    assert (body["limit"], body["offset"]) == (50, 0)
    first = body["tickets"][0]
    assert (first["reference"], first["status"], first["queue"]) == (f"HD-{phone.id:06d}", "open", "network")
    assert datetime.fromisoformat(first["created_at"]).utcoffset() is not None
    assert first["created_at"].endswith("+00:00")

    async def ids(query: str) -> list[int]:
        status, found = await env.call("GET", "/api/tickets?" + query)
        assert status == 200, found
        return [t["id"] for t in found["tickets"]]

    assert await ids("status=new") == [vm.id]
    assert await ids("status=new,open") == [phone.id, vm.id]
    assert await ids("status=new&status=open&source=phone") == [phone.id]
    assert await ids("caller_number=%2B33612345678") == [vm.id]
    assert await ids("search=printer") == [vm.id]
    assert await ids("created_from=2000-01-01T00:00:00Z&limit=1&offset=1") == [vm.id]
    assert await ids("created_to=2000-01-01") == []


@pytest.mark.parametrize(("query", "message"), [
    ("colour=red", "unknown query parameter(s): colour"),
    ("limit=abc", "limit must be a whole number, got 'abc'"),
    ("limit=-1", "limit must be a whole number"),
    ("limit=500", "limit must be between 1 and 200, got 500"),
    ("limit=1&limit=2", "give each of these query parameters once: limit"),
    ("status=closed", "unknown status 'closed'"),
    ("source=fax", "unknown source 'fax'"),
    ("created_from=yesterday", "created_from must be an ISO 8601 date"),
    ("call_id=0", "call_id must be between 1"),
    ("search=" + "x" * 201, "search is 201 characters long; the maximum is 200"),
])
async def test_bad_list_queries_are_400_with_a_clear_message(env: Env, query: str, message: str) -> None:
    status, body = await env.call("GET", "/api/tickets?" + query)
    assert status == 400
    assert body["error"] == "tickets.invalid"
    assert message in body["message"]


@pytest.mark.parametrize("search", ["'; DROP TABLE tickets; --", "' OR '1'='1", "%", "\\", "1) UNION SELECT 1 --"])
async def test_sql_looking_searches_are_just_text(env: Env, search: str) -> None:
    await _voicemail(env)
    status, body = await env.call("GET", "/api/tickets", params={"search": search})
    assert (status, body["tickets"]) == (200, [])
    async with env.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Ticket)) == 1


# --- get, patch, comment ---------------------------------------------------------------------------


async def test_get_has_history_and_attachment_urls(env: Env) -> None:
    ticket = await _voicemail(env)
    await env.service.comment(ticket.id, "agent", "called back")
    status, body = await env.call("GET", f"/api/tickets/{ticket.id}")
    assert status == 200
    assert body["subject"] == "Printer on fire"
    assert [(e["kind"], e["author"]) for e in body["history"]] == [("created", "system"), ("comment", "agent")]
    [attachment] = body["attachments"]
    path, _, query = attachment["url"].partition("?")
    assert path == f"/api/tickets/{ticket.id}/attachments/{attachment['id']}"
    assert "expires=" in query and "signature=" in query
    assert attachment["content_type"] == "audio/x-wav"
    assert "path" not in attachment


@pytest.mark.parametrize("path", ["/api/tickets/999", "/api/tickets/99999999999999999999", "/api/tickets/abc"])
async def test_unknown_ticket_is_404(env: Env, path: str) -> None:
    status, _ = await env.call("GET", path)
    assert status == 404


async def test_patch_status_and_assignee(env: Env) -> None:
    ticket = await _voicemail(env)
    status, body = await env.call("PATCH", f"/api/tickets/{ticket.id}", json={"status": "open", "assignee": "alice"})
    assert status == 200
    assert (body["status"], body["assignee"]) == ("open", "alice")
    status, body = await env.call("PATCH", f"/api/tickets/{ticket.id}", token=ADMIN, json={"assignee": None})
    assert (status, body["assignee"], body["status"]) == (200, None, "open")
    history = (await env.call("GET", f"/api/tickets/{ticket.id}"))[1]["history"]
    assert [(e["kind"], e["author"], e["body"]) for e in history[1:]] == [
        ("status_changed", "agent", "new -> open"), ("assigned", "agent", "nobody -> alice"),
        ("assigned", "admin", "alice -> nobody"),
    ]


async def test_invalid_transition_is_409_with_the_reason(env: Env) -> None:
    ticket = await _voicemail(env)
    await env.call("PATCH", f"/api/tickets/{ticket.id}", json={"status": "resolved"})
    status, body = await env.call("PATCH", f"/api/tickets/{ticket.id}", json={"status": "pending"})
    assert status == 409
    assert body["error"] == "tickets.invalid_transition"
    assert (body["from"], body["to"], body["allowed"]) == ("resolved", "pending", ["open"])
    assert "cannot change status from resolved to pending" in body["message"]


async def test_a_lost_race_is_409_conflict(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = await _voicemail(env)

    async def lost_race(*_args: Any, **_kwargs: Any) -> Ticket:
        raise TicketConflict(f"ticket {ticket.id} changed status meanwhile; reload it and try again")

    monkeypatch.setattr(env.service, "update", lost_race)
    status, body = await env.call("PATCH", f"/api/tickets/{ticket.id}", json={"status": "open"})
    assert (status, body["error"]) == (409, "tickets.conflict")
    assert "reload it" in body["message"]


@pytest.mark.parametrize(("payload", "message"), [
    ({"data": "{not json"}, "must be a JSON object"),
    ({"json": ["open"]}, "must be a JSON object, got list"),
    ({"json": {}}, "nothing to update"),
    ({"json": {"status": "open", "priority": 1}}, "unknown field(s): priority (allowed: status, assignee)"),
    ({"json": {"status": 3}}, "status must be a string, got int"),
    ({"json": {"status": None}}, "status must be a string, got NoneType"),
    ({"json": {"assignee": ["x"]}}, "assignee must be a string or null"),
    ({"json": {"status": "closed"}}, "unknown status 'closed'"),
    ({"json": {"assignee": "x" * 81}}, "assignee is 81 characters long; the maximum is 80"),
    ({"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}, "JSON object"),
])
async def test_bad_patches_are_400(env: Env, payload: dict[str, Any], message: str) -> None:
    ticket = await _voicemail(env)
    headers = {"Authorization": f"Bearer {AGENT}", **payload.pop("headers", {})}
    response = await env.client.patch(f"/api/tickets/{ticket.id}", headers=headers, **payload)
    assert response.status == 400
    body = await response.json()
    body_level = "JSON object" in message or "unknown field" in message  # read by cti.http.bodies
    assert body["error"] == ("http.body_invalid" if body_level else "tickets.invalid")
    assert message in body["message"]


async def test_patch_unknown_ticket_is_404(env: Env) -> None:
    status, body = await env.call("PATCH", "/api/tickets/4242", json={"status": "open"})
    assert (status, body["error"], body["message"]) == (404, "tickets.not_found", "ticket 4242 not found")


async def test_comment(env: Env) -> None:
    ticket = await _voicemail(env)
    status, body = await env.call("POST", f"/api/tickets/{ticket.id}/comments", json={"body": "Rappelé, absent."})
    assert status == 201
    assert (body["kind"], body["author"], body["body"]) == ("comment", "agent", "Rappelé, absent.")
    assert body["created_at"].endswith("+00:00")


@pytest.mark.parametrize(("payload", "status", "message"), [
    ({"body": ""}, 400, "comment must not be empty"),
    ({"body": "x" * 10_001}, 400, "the maximum is 10000"),
    ({"body": 12}, 400, "body must be a string"),
    ({}, 400, "give the comment as"),
    ({"body": "hi", "author": "ceo"}, 400, "unknown field(s): author"),
])
async def test_bad_comments(env: Env, payload: dict[str, Any], status: int, message: str) -> None:
    ticket = await _voicemail(env)
    got, body = await env.call("POST", f"/api/tickets/{ticket.id}/comments", json=payload)
    assert (got, message in body["message"]) == (status, True), body


async def test_comment_on_unknown_ticket_is_404(env: Env) -> None:
    status, _ = await env.call("POST", "/api/tickets/4242/comments", json={"body": "hello"})
    assert status == 404


# --- attachments -----------------------------------------------------------------------------------


async def _attachment_url(env: Env, ticket: Ticket) -> str:
    url: str = (await env.call("GET", f"/api/tickets/{ticket.id}"))[1]["attachments"][0]["url"]
    return url


async def test_attachment_download_returns_the_bytes_with_the_rows_content_type(env: Env) -> None:
    ticket = await _voicemail(env)
    response = await env.client.get(await _attachment_url(env, ticket), headers={"Authorization": f"Bearer {AGENT}"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "audio/x-wav"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert await response.read() == AUDIO


async def test_attachment_download_honours_range(env: Env) -> None:
    ticket = await _voicemail(env)
    url = await _attachment_url(env, ticket)
    headers = {"Authorization": f"Bearer {AGENT}", "Range": "bytes=1000-1099"}
    response = await env.client.get(url, headers=headers)
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 1000-1099/{len(AUDIO)}"
    assert await response.read() == AUDIO[1000:1100]
    response = await env.client.get(url, headers={**headers, "Range": "bytes=-16"})
    assert (response.status, await response.read()) == (206, AUDIO[-16:])


@pytest.mark.parametrize("stored", ["../../etc/passwd", "../secret.txt", "/etc/passwd", "recordings/../../secret.txt",
                                    "recordings/missing.wav", "recordings", "recordings/link.wav"])
async def test_a_stored_path_escaping_the_media_folder_or_missing_is_404(env: Env, stored: str) -> None:
    (env.media / "recordings" / "link.wav").symlink_to(env.media.parent / "secret.txt")
    ticket = await _voicemail(env)
    attachment_id = await _stored_attachment(env, ticket.id, stored)
    status, body = await env.call("GET", f"/api/tickets/{ticket.id}/attachments/{attachment_id}")
    assert (status, body["error"]) == (404, "tickets.attachment_not_found")
    assert stored not in body["message"]  # the stored path is never echoed back


async def test_an_attachment_of_another_ticket_is_404(env: Env) -> None:
    ticket = await _voicemail(env)
    other = await env.service.create(NewTicket(subject="other", source="phone"))
    attachment_id = (await env.service.get(ticket.id)).attachments[0].id
    status, body = await env.call("GET", f"/api/tickets/{other.id}/attachments/{attachment_id}")
    assert (status, body["error"]) == (404, "tickets.attachment_not_found")
