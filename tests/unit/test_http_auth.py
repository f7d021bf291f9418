"""Every route is authenticated and role-checked; an undeclared route is refused.

Who calls: an API token, a session token (Bearer), or the session cookie of a browser; a cookie request must
also carry the CSRF token (unsafe methods) or come from our own origin (websockets).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from cti.http.app import make_web_app
from cti.http.auth import (
    REQUEST_ROLE,
    SESSIONS_KEY,
    declared_roles,
    is_public,
    page,
    public,
    requires,
)
from cti.http.identity import identity_of
from cti.settings import SecuritySettings
from cti.state import InMemoryStateBackend
from cti.users.sessions import Session, SessionStore
from cti.users.store import User
from tests.plugins.state import FakeClock

ADMIN = "a" * 32
AGENT = "g" * 32
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PUBLIC_CORE_ROUTES = {("GET", "/static/{path}")}
Client = TestClient[web.Request, web.Application]


async def _status() -> dict[str, Any]:
    return {"healthy": True, "version": "test"}


async def _undeclared(_request: web.Request) -> web.Response:
    return web.Response(text="should never be served")


@requires("agent", "supervisor")
async def _whoami(request: web.Request) -> web.Response:
    who = identity_of(request)
    return web.json_response({"via": who.via, "role": who.role, "username": who.username,
                              "agent_id": who.agent_id, "request_role": request[REQUEST_ROLE]})


@page
@requires("agent")
async def _desk(_request: web.Request) -> web.Response:
    return web.Response(text="<p>desk</p>", content_type="text/html")


@public
async def _open(request: web.Request) -> web.Response:
    return web.Response(text=f"open to all ({request.method})")


@requires("agent")
async def _socket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str(identity_of(request).agent_id or "")
    await ws.close()
    return ws


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW.timestamp())


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[Client]:
    sessions = SessionStore(InMemoryStateBackend(clock=clock), 3600, clock=clock)
    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", AGENT: "agent"}), _status, sessions)
    app.router.add_get("/api/undeclared", _undeclared)
    app.router.add_route("*", "/api/whoami", _whoami)
    app.router.add_get("/desk", _desk)
    app.router.add_route("*", "/open", _open)
    app.router.add_get("/ws", _socket)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _login(client: Client, role: str = "agent") -> tuple[str, Session]:
    user = User(7, "alice", "Alice", role, "alice", "fr", True, NOW, NOW)
    return await client.app[SESSIONS_KEY].create(user)


def _cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"cti_session={token}"}


def _origin(client: Client) -> str:
    return f"http://{client.server.host}:{client.server.port}"


# --- API tokens (as before) ----------------------------------------------------------------------------


async def test_no_token_is_unauthorized(client: Client) -> None:
    response = await client.get("/api/status")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_wrong_token_is_unauthorized(client: Client) -> None:
    response = await client.get("/api/status", headers={"Authorization": "Bearer " + "x" * 32})
    assert response.status == 401


async def test_role_is_checked(client: Client) -> None:
    response = await client.get("/api/status", headers={"Authorization": f"Bearer {AGENT}"})
    assert response.status == 403


async def test_admin_reads_status(client: Client) -> None:
    response = await client.get("/api/status", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status == 200
    assert (await response.json())["healthy"] is True


async def test_route_without_declared_roles_is_refused_even_for_admin(client: Client) -> None:
    response = await client.get("/api/undeclared", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status == 403


async def test_unknown_route_is_404_not_500(client: Client) -> None:
    response = await client.get("/nope", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status == 404


async def test_api_token_identity(client: Client) -> None:
    response = await client.post("/api/whoami", headers={"Authorization": f"Bearer {AGENT}"})
    assert await response.json() == {"via": "api-token", "role": "agent", "username": None, "agent_id": None,
                                     "request_role": "agent"}


# --- sessions ------------------------------------------------------------------------------------------


async def test_session_token_as_bearer(client: Client) -> None:
    token, _ = await _login(client)
    response = await client.post("/api/whoami", headers={"Authorization": f"Bearer {token}"})  # no CSRF needed
    assert response.status == 200
    assert await response.json() == {"via": "session-token", "role": "agent", "username": "alice",
                                     "agent_id": "alice", "request_role": "agent"}


async def test_session_cookie(client: Client) -> None:
    token, _ = await _login(client)
    response = await client.get("/api/whoami", headers=_cookie(token))
    assert response.status == 200
    assert (await response.json())["via"] == "session-cookie"


async def test_a_wrong_bearer_is_not_rescued_by_a_good_cookie(client: Client) -> None:
    token, _ = await _login(client)
    response = await client.get("/api/whoami", headers={**_cookie(token), "Authorization": "Bearer nope"})
    assert response.status == 401


async def test_session_role_is_checked(client: Client) -> None:
    token, _ = await _login(client, role="agent")
    assert (await client.get("/api/status", headers=_cookie(token))).status == 403


async def test_expired_or_ended_session_is_unauthorized(client: Client, clock: FakeClock) -> None:
    token, _ = await _login(client)
    other, _ = await _login(client)
    clock.advance(3599)
    assert (await client.get("/api/whoami", headers=_cookie(token))).status == 200
    await client.app[SESSIONS_KEY].delete(other)
    assert (await client.get("/api/whoami", headers=_cookie(other))).status == 401
    clock.advance(1)
    assert (await client.get("/api/whoami", headers=_cookie(token))).status == 401
    assert (await client.get("/api/whoami", headers={"Authorization": f"Bearer {token}"})).status == 401


# --- CSRF ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_cookie_unsafe_method_needs_the_csrf_header(client: Client, method: str) -> None:
    token, session = await _login(client)
    refused = await client.request(method, "/api/whoami", headers=_cookie(token))
    assert refused.status == 403
    assert "X-CSRF-Token" in (refused.reason or "")
    wrong = await client.request(method, "/api/whoami", headers={**_cookie(token), "X-CSRF-Token": "x" * 32})
    assert wrong.status == 403
    other_session = (await _login(client))[1].csrf
    stolen = await client.request(method, "/api/whoami", headers={**_cookie(token), "X-CSRF-Token": other_session})
    assert stolen.status == 403
    accepted = await client.request(method, "/api/whoami", headers={**_cookie(token), "X-CSRF-Token": session.csrf})
    assert accepted.status == 200


async def test_cookie_safe_method_needs_no_csrf_header(client: Client) -> None:
    token, _ = await _login(client)
    assert (await client.get("/api/whoami", headers=_cookie(token))).status == 200
    assert (await client.head("/api/whoami", headers=_cookie(token))).status == 200


# --- websockets ----------------------------------------------------------------------------------------


async def test_cookie_websocket_from_our_origin(client: Client) -> None:
    token, _ = await _login(client)
    async with client.ws_connect("/ws", headers={**_cookie(token), "Origin": _origin(client)}) as ws:
        assert await ws.receive_str() == "alice"


@pytest.mark.parametrize("origin", [None, "http://evil.example", "http://127.0.0.1:1", "null", "https://127.0.0.1"])
async def test_cookie_websocket_from_elsewhere_is_refused(client: Client, origin: str | None) -> None:
    token, _ = await _login(client)
    headers = _cookie(token) | ({"Origin": origin} if origin else {})
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers=headers)
    assert refused.value.status == 403


async def test_bearer_websocket_needs_no_origin(client: Client) -> None:
    token, _ = await _login(client)
    async with client.ws_connect("/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert await ws.receive_str() == "alice"


async def test_origin_behind_a_tls_proxy_matches_the_host_without_port(client: Client) -> None:
    token, _ = await _login(client)
    headers = {**_cookie(token), "Origin": "https://desk.example.com", "Host": "desk.example.com"}
    async with client.ws_connect("/ws", headers=headers) as ws:
        assert await ws.receive_str() == "alice"
    headers = {**_cookie(token), "Origin": "https://desk.example.com", "Host": "desk.example.com:8443"}
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect("/ws", headers=headers)


# --- pages and public routes ---------------------------------------------------------------------------


async def test_anonymous_page_redirects_to_the_login_form(client: Client) -> None:
    response = await client.get("/desk?tab=calls&x=a+b%26c", allow_redirects=False)
    assert response.status == 303
    location = URL(response.headers["Location"])
    assert (location.path, location.query["next"]) == ("/login", "/desk?tab=calls&x=a+b%26c")
    assert URL(location.query["next"]).query == {"tab": "calls", "x": "a b&c"}


async def test_a_page_for_a_logged_in_user_is_served(client: Client) -> None:
    token, _ = await _login(client)
    response = await client.get("/desk", headers=_cookie(token), allow_redirects=False)
    assert (response.status, await response.text()) == (200, "<p>desk</p>")


async def test_anonymous_api_call_stays_401(client: Client) -> None:
    assert (await client.get("/api/whoami", allow_redirects=False)).status == 401


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_public_route_needs_no_login_nor_csrf(client: Client, method: str) -> None:
    token, _ = await _login(client)
    for headers in ({}, _cookie(token)):
        response = await client.request(method, "/open", headers=headers)
        assert (response.status, await response.text()) == (200, f"open to all ({method})")


def test_public_cannot_be_combined_with_roles() -> None:
    @requires("admin")
    async def handler(_request: web.Request) -> web.Response:
        return web.Response()

    with pytest.raises(TypeError):
        public(handler)


def test_every_registered_route_declares_roles_or_is_listed_as_public() -> None:
    app = make_web_app(SecuritySettings(), _status)
    routes = [(route.method, route.resource.canonical, route.handler) for route in app.router.routes()
              if route.resource is not None and route.method != "HEAD"]
    assert routes, "the app has routes"
    assert {(method, path) for method, path, handler in routes if is_public(handler)} == PUBLIC_CORE_ROUTES
    assert all(declared_roles(handler) for method, path, handler in routes if (method, path) not in PUBLIC_CORE_ROUTES)
