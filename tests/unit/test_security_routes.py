"""Every route of the composed server (``cti.app.build_app``) is checked for who may call it.

The application is built as the server builds it, then served without being started (no Asterisk, no AMI
connection): the authentication middleware answers before any handler runs, so nothing else is needed.

For EVERY route of ``app.web_app.router`` (HEAD and websockets included):
(a) without credentials: 401, or 303 to /login for an HTML page, unless it is in the short PUBLIC list below
    (a new public route fails this test until it is added here on purpose);
(b) with the API token of each role it does not admit: 403; with an expired or unknown token: 401;
(c) it declares its roles (known ones only), and a public route declares none.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.app import CtiApp, build_app
from cti.http.auth import ALL_ROLES, declared_roles, is_page, is_public
from tests.plugins.database import Templates
from tests.support.app import app_settings

TOKENS = {"admin": "A" * 32, "supervisor": "S" * 32, "agent": "G" * 32}
EXPIRED_ADMIN = "E" * 32
UNKNOWN = "U" * 32
TOKEN_TABLE = ("{ " + ", ".join(f'"{token}" = "{role}"' for role, token in TOKENS.items())
               + f', "{EXPIRED_ADMIN}" = {{ role = "admin", expires = "2020-01-01T00:00:00Z" }} }}')
# The only routes anyone may reach without logging in; a new one must be added here on purpose.
PUBLIC = {
    ("GET", "/login"), ("HEAD", "/login"), ("POST", "/login"),  # the login form and its submission
    ("POST", "/logout"),  # ends the session it is given, if any
    ("POST", "/api/auth/session"),  # the login of non-browser clients
    ("GET", "/static/{path}"), ("HEAD", "/static/{path}"),  # CSS and scripts of the pages
}
WEBSOCKETS = {"/ws/agent", "/ws/wallboard"}
UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
PATH_VALUES = {
    "number": "5551000", "id": "1", "ticket_id": "1", "attachment_id": "1", "contact_id": "1", "company_id": "1",
    "blocked_id": "1", "language": "en", "name": "welcome", "version": "1", "call_id": "0a1b2c3d4e5f",
    "path": "cti.css",
}
Client = TestClient[web.Request, web.Application]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # the route as declared, ``/api/tickets/{ticket_id}``
    handler: object

    @property
    def path(self) -> str:
        """The route with plausible values in its placeholders (an unknown placeholder fails the test)."""
        return re.sub(r"\{(\w+)\}", lambda match: PATH_VALUES[match[1]], self.template)

    @property
    def headers(self) -> dict[str, str]:
        return dict(UPGRADE) if self.template in WEBSOCKETS else {}

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


@pytest.fixture
async def app(tmp_path: Path, migration_templates: Templates) -> AsyncIterator[CtiApp]:
    """The public routes do run their handlers (the login form reads the users table): a migrated database."""
    shutil.copyfile(migration_templates.sqlite_file, tmp_path / "cti.sqlite3")
    built = build_app(app_settings(tmp_path, 1, CTI_SECURITY__API_TOKENS=TOKEN_TABLE))
    yield built
    await built.db.close()
    await built.state.close()


@pytest.fixture
async def client(app: CtiApp) -> AsyncIterator[Client]:
    async with TestClient(TestServer(app.web_app)) as test_client:
        yield test_client


def _routes(app: CtiApp) -> list[Route]:
    routes = [Route(r.method, r.resource.canonical, r.handler) for r in app.web_app.router.routes()
              if r.resource is not None]
    assert len(routes) > 100  # the whole server, not a part of it
    return routes


async def _status(client: Client, route: Route, token: str | None = None) -> int:
    headers = route.headers | ({"Authorization": f"Bearer {token}"} if token else {})
    async with client.request(route.method, route.path, headers=headers, allow_redirects=False) as response:
        if response.status == 303 and is_page(route.handler):
            assert response.headers["Location"] == f"/login?next={route.path}", str(route)
        return response.status


def test_every_route_declares_known_roles_or_is_public(app: CtiApp) -> None:
    routes = _routes(app)
    public = {(route.method, route.template) for route in routes if is_public(route.handler)}
    assert public == PUBLIC, "a public route appeared or vanished: add it to PUBLIC on purpose"
    for route in routes:
        roles = declared_roles(route.handler)
        if is_public(route.handler):
            assert roles is None and not is_page(route.handler), str(route)
        else:
            assert roles and roles <= set(ALL_ROLES), f"{route} declares {roles}"
            assert not is_page(route.handler) or route.method in ("GET", "HEAD"), str(route)


def test_every_placeholder_has_a_plausible_value_and_websockets_are_known(app: CtiApp) -> None:
    routes = _routes(app)
    placeholders = {name for route in routes for name in re.findall(r"\{(\w+)\}", route.template)}
    assert placeholders <= set(PATH_VALUES), f"give these a value in PATH_VALUES: {placeholders - set(PATH_VALUES)}"
    assert {route.template for route in routes if route.template.startswith("/ws/")} == WEBSOCKETS


async def test_without_credentials_every_route_is_401_or_a_redirect_to_login(app: CtiApp, client: Client) -> None:
    for route in _routes(app):
        status = await _status(client, route)
        if (route.method, route.template) in PUBLIC:
            assert status < 500, f"{route} answered {status}"
            continue
        expected = 303 if is_page(route.handler) and route.method in ("GET", "HEAD") else 401
        assert status == expected, f"{route} ({route.path}) answered {status} without credentials"


async def test_a_role_a_route_does_not_admit_is_403(app: CtiApp, client: Client) -> None:
    checked = 0
    for route in _routes(app):
        if is_public(route.handler):
            continue
        for role in sorted(set(ALL_ROLES) - (declared_roles(route.handler) or frozenset())):
            status = await _status(client, route, TOKENS[role])
            assert status == 403, f"{route} answered {status} to the {role} role it does not admit"
            checked += 1
    assert checked > 50  # most routes are closed to agents


async def test_an_expired_or_unknown_token_is_anonymous_everywhere(app: CtiApp, client: Client) -> None:
    """As without credentials: 401, or the login form for a page."""
    for route in _routes(app):
        if is_public(route.handler):
            continue
        expected = 303 if is_page(route.handler) else 401
        for token, kind in ((EXPIRED_ADMIN, "an expired"), (UNKNOWN, "an unknown")):
            status = await _status(client, route, token)
            assert status == expected, f"{route} answered {status} to {kind} token"


async def test_a_forged_signature_opens_no_route(app: CtiApp, client: Client) -> None:
    """Routes that take signed URLs (audio players) still want a valid signature for that very path."""
    for route in _routes(app):
        if is_public(route.handler) or route.method not in ("GET", "HEAD"):
            continue
        query = {"expires": "4102444800", "signature": "A" * 43}
        async with client.request(route.method, route.path, params=query, headers=route.headers,
                                  allow_redirects=False) as response:
            assert response.status in (401, 303), f"{route} answered {response.status} to a forged signature"
