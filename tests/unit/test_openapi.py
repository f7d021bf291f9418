"""The API description of the composed server (a scripted AMI peer): every route of the running application is
listed with its roles, parameters and description; the same server serves the supervision figures."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cti.app import CtiApp, build_app
from cti.db.migrate import upgrade_async
from cti.http.auth import declared_roles, is_public, requires
from cti.http.openapi import describe, operation
from tests.fakes.ami_peer import AmiPeer
from tests.support.app import app_settings
from tests.support.ivr import MONDAY_10, fixed_clock

ADMIN, AGENT = "k" * 32, "g" * 32


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[CtiApp]:
    peer = AmiPeer()
    await peer.start()
    settings = app_settings(tmp_path, peer.port, CTI_AMI__RECONNECT_MIN="0.05",
                            CTI_SECURITY__API_TOKENS=f'{{ "{ADMIN}" = "admin", "{AGENT}" = "agent" }}')
    await upgrade_async(settings.database)
    app = build_app(settings, clock=fixed_clock(MONDAY_10))
    await app.start()
    await app.ami.wait_connected(5)
    yield app
    await app.stop()
    await peer.close()


async def _get(app: CtiApp, path: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"http://127.0.0.1:{app.http_port}{path}"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


async def test_every_registered_route_is_described_with_its_roles(server: CtiApp) -> None:
    status, document = await _get(server, "/api/openapi.json", AGENT)  # any logged-in role may read it
    assert status == 200 and document["openapi"].startswith("3.1")
    routes = [r for r in server.web_app.router.routes() if r.method != "HEAD" and r.resource is not None]
    assert len(routes) > 40
    described = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    assert described == {(r.method, r.resource.canonical) for r in routes if r.resource is not None}
    for route in routes:
        assert route.resource is not None
        entry = document["paths"][route.resource.canonical][route.method.lower()]
        assert entry["description"] == (inspect.getdoc(route.handler) or "")
        assert [p["name"] for p in entry["parameters"]] == re.findall(r"\{(\w+)\}", route.resource.canonical)
        if is_public(route.handler):
            assert entry["security"] == [] and entry["x-public"] is True
        else:
            assert entry["x-roles"] == sorted(declared_roles(route.handler) or ()), route.resource.canonical


async def test_known_routes_say_who_may_call_them(server: CtiApp) -> None:
    paths = (await _get(server, "/api/openapi.json", ADMIN))[1]["paths"]
    login = paths["/api/acd/agents/{id}/login"]["post"]
    assert login["x-roles"] == ["admin", "agent", "supervisor"] and login["parameters"][0]["name"] == "id"
    assert paths["/metrics"]["get"]["x-roles"] == ["admin", "supervisor"]
    assert paths["/supervision/wallboard"]["get"]["x-page"] is True
    assert paths["/ws/wallboard"]["get"]["x-websocket"] is True
    assert paths["/api/reports/calls"]["get"]["summary"].startswith("Calls between")
    assert paths["/login"]["post"]["x-public"] is True
    assert (await _get(server, "/api/openapi.json", None))[0] == 401


async def test_the_composed_server_serves_metrics_and_the_wallboard(server: CtiApp) -> None:
    status, text = await _get(server, "/metrics", ADMIN)
    assert status == 200
    assert "\ncti_ami_connected 1\n" in text and "\ncti_agi_sessions_active 0\n" in text
    assert 'cti_acd_calls_waiting{queue="' not in text  # no queue configured in this server
    assert (await _get(server, "/metrics", AGENT))[0] == 403
    assert server.supervision is not None and server.acd is not None
    assert server.supervision.wallboard in server.acd.listeners  # told of every call's ringing, answer and end
    status, _ = await _get(server, "/supervision/wallboard", ADMIN)
    assert status == 200


def test_an_undocumented_handler_is_summarised_by_its_name() -> None:
    async def list_things() -> None: ...

    entry = operation("GET", "/api/things/{id}/parts/{part}", list_things)
    assert entry["summary"] == "list things" and entry["description"] == ""
    assert entry["x-roles"] == [] and entry["operationId"] == "get_api_things_id_parts_part"
    assert [p["name"] for p in entry["parameters"]] == ["id", "part"]


def test_the_description_is_built_from_any_application() -> None:
    @requires("admin")
    async def only_admins(request: web.Request) -> web.Response:
        """Does one thing. Then more."""
        return web.Response()

    app = web.Application()
    app.router.add_get("/x/{key}", only_admins)
    document = describe(app)
    assert list(document["paths"]) == ["/x/{key}"]
    assert document["paths"]["/x/{key}"]["get"]["summary"] == "Does one thing."
    assert "head" not in document["paths"]["/x/{key}"]
