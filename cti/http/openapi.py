"""``GET /api/openapi.json``: the API described from the application's own route table (OpenAPI 3.1).

Written by nobody, so it cannot drift: every route the running server answers is listed with its method, its
path parameters, the roles it admits (what ``@requires`` declared, or public) and its handler's docstring as
the description. Bodies and answers are not typed (the handlers parse by hand); the descriptions say what they
hold. ``x-roles``, ``x-page`` (an HTML page: anonymous GETs are sent to the login form) and ``x-websocket``
are our extensions.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from aiohttp import web

from cti import __version__
from cti.http.auth import ALL_ROLES, SESSION_COOKIE, declared_roles, is_page, is_public, requires

OPENAPI_VERSION = "3.1.0"
PARAMETER = re.compile(r"\{(\w+)\}")
SKIPPED_METHODS = frozenset({"HEAD"})  # aiohttp adds one to every GET
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]


def describe(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of every route of ``app`` (HEAD routes, added with each GET, left out)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in SKIPPED_METHODS:
            continue
        paths.setdefault(resource.canonical, {})[route.method.lower()] = operation(
            route.method, resource.canonical, route.handler)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "cti", "version": __version__,
                 "description": "CTI and voice front-end for help desks; generated from the server's routes."},
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "an API token or a session token"},
            "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                        "description": "browsers; unsafe methods also send X-CSRF-Token"}}},
        "paths": dict(sorted(paths.items())),
    }  # fmt: skip


def operation(method: str, path: str, handler: object) -> dict[str, Any]:
    """One method of one path: who may call it, what the handler says it does."""
    doc = inspect.getdoc(handler) or ""
    name = getattr(handler, "__name__", type(handler).__name__)
    described: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": _first_sentence(doc) or name.replace("_", " "),
        "description": doc,
        "parameters": [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                       for name in PARAMETER.findall(path)],
        "responses": {"200": {"description": "done (see the description)"}},
    }
    if is_public(handler):
        return {**described, "security": [], "x-roles": [], "x-public": True}
    roles = sorted(declared_roles(handler) or ())
    described["responses"].update({"401": {"description": "not logged in"},
                                   "403": {"description": f"only {', '.join(roles) or 'nobody'}"}})
    return {**described, "security": SECURITY, "x-roles": roles, "x-page": is_page(handler),
            "x-websocket": path.startswith("/ws/")}


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    return f"{method.lower()}_{words or 'root'}"


def _first_sentence(doc: str) -> str:
    paragraph = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    sentence = re.split(r"(?<=[.:;])\s", paragraph, maxsplit=1)[0]
    return sentence[:200]


@requires(*ALL_ROLES)
async def openapi_json(request: web.Request) -> web.StreamResponse:
    """This description: every route of the server, its parameters and the roles it admits."""
    return web.json_response(describe(request.app))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi_json)
