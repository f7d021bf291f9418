"""Every route is authenticated and role-checked; an undeclared route is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.http.app import make_web_app
from cti.http.auth import declared_roles
from cti.settings import SecuritySettings

ADMIN = "a" * 32
AGENT = "g" * 32


async def _status() -> dict[str, Any]:
    return {"healthy": True, "version": "test"}


async def _undeclared(_request: web.Request) -> web.Response:
    return web.Response(text="should never be served")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", AGENT: "agent"}), _status)
    app.router.add_get("/api/undeclared", _undeclared)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_no_token_is_unauthorized(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/api/status")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_wrong_token_is_unauthorized(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/api/status", headers={"Authorization": "Bearer " + "x" * 32})
    assert response.status == 401


async def test_role_is_checked(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/api/status", headers={"Authorization": f"Bearer {AGENT}"})
    assert response.status == 403


async def test_admin_reads_status(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/api/status", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status == 200
    assert (await response.json())["healthy"] is True


async def test_route_without_declared_roles_is_refused_even_for_admin(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/api/undeclared", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status == 403


async def test_unknown_route_is_404_not_500(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/nope", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status == 404


def test_every_registered_route_declares_roles() -> None:
    app = make_web_app(SecuritySettings(), _status)
    handlers = [route.handler for route in app.router.routes()]
    assert handlers, "the app has routes"
    assert all(declared_roles(h) for h in handlers)
