"""Logging in while the database or the shared state is out of reach: a clear 503 "try again in a moment"
(the form in the reader's language, the JSON error shape), never a 500; and logins work again by themselves.

The database outage is real: the users' PostgreSQL is reached through a TCP proxy the test cuts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from cti.db import Database, DatabaseUnavailable, is_unavailable, unavailable_raised
from cti.http.app import make_web_app
from cti.settings import SecuritySettings
from cti.state import InMemoryStateBackend, RedisStateBackend
from cti.users import http as users_http
from cti.users.sessions import SessionStore
from cti.users.store import UserStore
from tests.support.server_process import free_port
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres
PASSWORD = "a long enough password"
Client = TestClient[web.Request, web.Application]


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@dataclass
class Desk:
    client: Client
    proxy: TcpProxy




async def _desk(db: Database, proxy: TcpProxy, sessions: SessionStore) -> AsyncIterator[Desk]:
    await UserStore(db).create("alice", PASSWORD, "agent", agent_id="alice")
    app = make_web_app(SecuritySettings(), _status, sessions)
    users_http.add_routes(app, UserStore(db))
    async with TestClient(TestServer(app)) as client:
        yield Desk(client, proxy)


@pytest.fixture
async def desk(proxied_db: tuple[Database, TcpProxy]) -> AsyncIterator[Desk]:
    async for value in _desk(*proxied_db, SessionStore(InMemoryStateBackend(), 3600)):
        yield value


@pytest.fixture
async def desk_without_state(proxied_db: tuple[Database, TcpProxy]) -> AsyncIterator[Desk]:
    """Sessions in a Redis nobody listens on: the shared state is down from the start."""
    state = RedisStateBackend(f"redis://127.0.0.1:{free_port()}/0", "cti-test:")
    try:
        async for value in _desk(*proxied_db, SessionStore(state, 3600)):
            yield value
    finally:
        await state.close()


async def _form(client: Client, language: str = "en") -> Any:
    return await client.post("/login", data={"username": "alice", "password": PASSWORD, "next": "/agent"},
                             allow_redirects=False, headers={"Accept-Language": language})


async def _api(client: Client) -> Any:
    return await client.post("/api/auth/session", json={"username": "alice", "password": PASSWORD})


async def test_with_the_database_down_the_form_says_try_again_in_english_and_french(desk: Desk) -> None:
    await desk.proxy.cut()
    english = await _form(desk.client)
    html = await english.text()
    assert english.status == 503 and english.headers["Retry-After"] == "5"
    assert "Logging in is not possible right now; try again in a moment." in html
    assert 'value="alice"' in html and 'value="/agent"' in html and "Set-Cookie" not in english.headers
    french = await _form(desk.client, "fr-FR,fr;q=0.9")
    assert french.status == 503
    assert "La connexion est impossible pour le moment ; réessayez dans un instant." in await french.text()

    await desk.proxy.restore()
    assert (await _form(desk.client)).status == 303  # back by itself, no restart


async def test_with_the_database_down_the_json_login_is_a_503_with_the_error_shape(desk: Desk) -> None:
    await desk.proxy.cut()
    response = await _api(desk.client)
    body = await response.json()
    assert response.status == 503 and response.headers["Retry-After"] == "5"
    assert (body["error"], body["retry_after_s"]) == ("auth.unavailable", 5)
    assert "try again in a moment" in body["message"] and "127.0.0.1" not in body["message"]

    await desk.proxy.restore()
    assert (await _api(desk.client)).status == 200


async def test_a_link_dropped_mid_login_is_a_503_too(desk: Desk) -> None:
    """The pool's connection dies under the query (not a refused connect): the same clear answer."""
    assert (await _api(desk.client)).status == 200  # a pooled connection now exists
    await desk.proxy.cut()
    await desk.proxy.restore()  # the pooled connection is dead, new ones work: pre-ping reconnects
    assert (await _api(desk.client)).status == 200
    await desk.proxy.cut()
    assert (await _api(desk.client)).status == 503


async def test_with_the_shared_state_down_both_logins_say_try_again(desk_without_state: Desk) -> None:
    form = await _form(desk_without_state.client)
    assert form.status == 503 and "try again in a moment" in await form.text()
    api = await _api(desk_without_state.client)
    body = await api.json()
    assert (api.status, body["error"]) == (503, "auth.unavailable")
    assert "session store" in body["message"]


async def test_outages_are_told_from_mistakes(proxied_db: tuple[Database, TcpProxy]) -> None:
    db, proxy = proxied_db
    with pytest.raises(Exception) as mistake:  # whatever the driver raises for bad SQL
        async with db.session() as session:
            await session.execute(text("SELECT no_such_column FROM users"))
    assert not is_unavailable(mistake.value)
    await proxy.cut()
    with pytest.raises(DatabaseUnavailable), unavailable_raised():
        async with db.session() as session:
            await session.execute(text("SELECT 1"))
    with pytest.raises(ZeroDivisionError), unavailable_raised():
        _ = 1 / 0
