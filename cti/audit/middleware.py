"""Writes the audit log: every change request that reached a handler, with its identity, path and outcome.

It runs after authentication (an anonymous request never gets this far, except the public login form, whose
failures say nothing worth keeping). The body is recorded only for JSON and form requests, shortened, with
any field that looks like a secret masked; an upload is never read here (its handler streams it).
A database failure while writing the entry is logged and never turns a done change into an error.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cti.audit.models import AuditEntry
from cti.db import Database
from cti.http.identity import IDENTITY

log = logging.getLogger(__name__)

AUDIT_DB_KEY: web.AppKey[Database] = web.AppKey("audit_database", Database)
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READABLE = ("application/json", "application/x-www-form-urlencoded", "text/plain")
MAX_DETAIL = 2000
SECRET = re.compile(r"pass|secret|token|csrf", re.IGNORECASE)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in CHANGES or AUDIT_DB_KEY not in request.app or IDENTITY not in request:
        return await handler(request)
    detail = await _detail(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        await _write(request, exc.status, detail)
        raise
    except Exception:
        await _write(request, 500, detail)
        raise
    await _write(request, response.status, detail)
    return response


async def _detail(request: web.Request) -> str:
    if not request.can_read_body or not request.content_type.startswith(READABLE):
        return f"{request.content_type} body" if request.can_read_body else ""
    text = (await request.read()).decode("utf-8", "replace")  # aiohttp keeps it for the handler
    try:
        fields: Any = json.loads(text) if request.content_type == "application/json" else None
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit: kept as text
        fields = None
    if request.content_type == "application/x-www-form-urlencoded":
        fields = dict((await request.post()).items())
    if isinstance(fields, dict):
        text = json.dumps({key: "***" if SECRET.search(str(key)) else value for key, value in fields.items()},
                          ensure_ascii=False, default=str)
    return text[:MAX_DETAIL].replace("\x00", "\\u0000")  # PostgreSQL stores no NUL: the entry would be lost


async def _write(request: web.Request, status: int, detail: str) -> None:
    who = request[IDENTITY]
    entry = AuditEntry(actor=who.author[:120], role=who.role[:16], method=request.method,
                       path=request.path[:255], status=status, detail=detail)
    try:
        async with request.app[AUDIT_DB_KEY].session() as session:
            session.add(entry)
    except Exception:
        log.exception("audit: could not record %s %s by %s", request.method, request.path, who.author)
