"""``GET /api/status``: is each part of the server up (AMI link, AGI server, database, shared state)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cti.http.auth import requires

StatusProvider = Callable[[], Awaitable[dict[str, Any]]]
STATUS_KEY: web.AppKey[StatusProvider] = web.AppKey("cti_status_provider")


@requires("admin", "supervisor")
async def get_status(request: web.Request) -> web.Response:
    report = await request.app[STATUS_KEY]()
    return web.json_response(report, status=200 if report["healthy"] else 503)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/status", get_status)
