"""The opening hours, call flows and simulator pages on a test server: the demo numbers (tests.support.ivr), the
IVR API, login sessions for each role (the cookie a browser sends), and an AMI client on the scripted peer."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from cti.ami import AmiClient
from cti.http.app import make_web_app
from cti.http.auth import SESSION_COOKIE
from cti.ivr import http as ivr_http
from cti.ivr.service import IvrService
from cti.settings import AmiSettings, AsteriskSettings, SecuritySettings
from cti.state import InMemoryStateBackend
from cti.supervision import ivr_pages
from cti.users.sessions import SessionStore
from cti.users.store import User
from tests.fakes.ami_peer import AmiPeer

ADMIN, SUPERVISOR, AGENT = "a" * 32, "s" * 32, "g" * 32
TOKENS = {ADMIN: "admin", SUPERVISOR: "supervisor", AGENT: "agent"}
Client = TestClient[web.Request, web.Application]


def ami_settings(port: int) -> AmiSettings:
    return AmiSettings.model_validate({
        "port": port, "username": AmiPeer.username, "secret": AmiPeer.secret, "connect_timeout": 1.0,
        "action_timeout": 1.0, "ping_interval": 5.0, "ping_timeout": 1.0, "reconnect_min": 0.01,
        "reconnect_max": 0.05})


@asynccontextmanager
async def connected_ami(peer: AmiPeer) -> AsyncIterator[AmiClient]:
    client = AmiClient(ami_settings(peer.port))
    await client.start()
    try:
        await client.wait_connected(2.0)
        yield client
    finally:
        await client.stop()


@dataclass
class PagesServer:
    client: Client
    ivr: IvrService
    sessions: SessionStore

    async def cookie(self, username: str, role: str, language: str | None = None) -> dict[str, str]:
        """The cookie header of a signed-in browser of ``role``."""
        now = datetime.now(UTC)
        user = User(id=abs(hash(username)) % 10_000 + 1, username=username, display_name=username, role=role,
                    agent_id=None, language=language, active=True, created_at=now, password_changed_at=now)
        token, _session = await self.sessions.create(user)
        return {"Cookie": f"{SESSION_COOKIE}={token}"}

    async def page(self, path: str, role: str | None = "supervisor", language: str | None = None,
                   ) -> tuple[ClientResponse, str]:
        headers = await self.cookie(f"user-{role}", role, language) if role else {}
        response = await self.client.get(path, headers=headers, allow_redirects=False)
        return response, await response.text()

    async def api(self, method: str, path: str, token: str = SUPERVISOR, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        response = await self.client.request(method, path, headers=headers, **kwargs)
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


@asynccontextmanager
async def pages_server(ivr: IvrService, ami: AmiClient | None = None) -> AsyncIterator[PagesServer]:
    """The IVR API and the three pages as ``cti.app`` wires them (an AMI client that never connects by default)."""
    sessions = SessionStore(InMemoryStateBackend(), 3600)
    app = make_web_app(SecuritySettings(api_tokens=TOKENS), _healthy, sessions=sessions)
    ivr_http.add_routes(app, ivr)
    ivr_pages.add_routes(app, ivr, ami or AmiClient(ami_settings(1)), AsteriskSettings())
    async with TestClient(TestServer(app)) as client:
        yield PagesServer(client, ivr, sessions)


async def _healthy() -> dict[str, Any]:
    return {"healthy": True}


def page_config(html: str, element_id: str) -> dict[str, Any]:
    """The JSON a page hands its script in ``<script type="application/json" id=...>``."""
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.DOTALL)
    assert found is not None, f"no {element_id} in the page"
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def input_values(html: str, css_class: str) -> list[str]:
    """The values of the inputs of ``class="<css_class>"``, in page order."""
    return re.findall(rf'<input class="{css_class}" value="([^"]*)"', html)
