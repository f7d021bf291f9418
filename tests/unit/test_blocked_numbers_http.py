"""Blocked numbers API (SQLite and PostgreSQL): roles, E.164 normalisation, expiry, duplicates, and the
caller directory seeing the block a supervisor just added."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.contacts import http as contacts_http
from cti.contacts.directory import CallerDirectory
from cti.db import Database
from cti.http.app import make_web_app
from cti.settings import SecuritySettings
from tests.support.ivr import MONDAY_10

SUPERVISOR, AGENT = "s" * 32, "g" * 32
Client = TestClient[web.Request, web.Application]


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@pytest.fixture
async def client(database: Database) -> AsyncIterator[Client]:
    app = make_web_app(SecuritySettings(api_tokens={SUPERVISOR: "supervisor", AGENT: "agent"}), _status)
    contacts_http.add_routes(app, CallerDirectory(database, "FR"))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _call(client: Client, method: str, path: str, token: str = SUPERVISOR, **kwargs: Any) -> tuple[int, Any]:
    response = await client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    return response.status, await response.json()


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/blocked-numbers"), ("POST", "/api/blocked-numbers"),
                                              ("DELETE", "/api/blocked-numbers/1")])
async def test_agents_and_anonymous_requests_are_refused(client: Client, method: str, path: str) -> None:
    assert (await client.request(method, path)).status == 401
    response = await client.request(method, path, headers={"Authorization": f"Bearer {AGENT}"})
    assert response.status == 403


async def test_a_blocked_number_is_normalised_listed_seen_by_calls_and_removed(
    client: Client, database: Database,
) -> None:
    status, added = await _call(client, "POST", "/api/blocked-numbers",
                                json={"number": "06 12 34 56 78", "reason": "abusive calls"})
    assert status == 201 and added["number"] == "+33612345678" and added["expires_at"] is None
    status, duplicate = await _call(client, "POST", "/api/blocked-numbers", json={"number": "+33612345678"})
    assert status == 409 and duplicate["error"] == "contacts.already_blocked"
    _, listed = await _call(client, "GET", "/api/blocked-numbers")
    assert [row["number"] for row in listed["blocked"]] == ["+33612345678"]
    profile = await CallerDirectory(database, "FR").lookup("0612345678", MONDAY_10)
    assert profile.blocked and "blocked" in profile.classes()
    status, _ = await _call(client, "DELETE", f"/api/blocked-numbers/{added['id']}")
    assert status == 200
    assert not (await CallerDirectory(database, "FR").lookup("0612345678", MONDAY_10)).blocked
    status, _ = await _call(client, "DELETE", f"/api/blocked-numbers/{added['id']}")
    assert status == 404


async def test_a_block_with_an_expiry_ends_by_itself(client: Client, database: Database) -> None:
    until = MONDAY_10 + timedelta(hours=1)
    status, added = await _call(client, "POST", "/api/blocked-numbers",
                                json={"number": "+33698765432", "expires_at": until.isoformat()})
    assert status == 201 and datetime.fromisoformat(added["expires_at"]) == until
    directory = CallerDirectory(database, "FR")
    assert (await directory.lookup("+33698765432", MONDAY_10)).blocked
    assert not (await directory.lookup("+33698765432", until)).blocked


@pytest.mark.parametrize(("body", "message"), [
    ({"number": "anonymous"}, "withheld"),
    ({"number": "call me"}, "is not a phone number"),
    ({"number": 33612345678}, "must be a phone number"),
    ({"number": "+33612345678", "reason": "x" * 201}, "at most 200"),
    ({"number": "+33612345678", "expires_at": "2026-11-23T10:00"}, "with its offset"),
    ({"number": "+33612345678", "colour": "red"}, "unknown field(s): colour"),
])
async def test_bad_input_is_400_with_the_reason(client: Client, body: dict[str, Any], message: str) -> None:
    status, answer = await _call(client, "POST", "/api/blocked-numbers", json=body)
    assert status == 400 and message in answer["message"]
