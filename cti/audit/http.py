"""``GET /api/audit``: the audit log, newest first, for admins and supervisors; filters by actor and path."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from cti.audit.middleware import AUDIT_DB_KEY
from cti.audit.models import AuditEntry
from cti.http.auth import requires

MAX_LIMIT = 500


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/audit", list_audit)


@requires("admin", "supervisor")
async def list_audit(request: web.Request) -> web.StreamResponse:
    """``?actor=&path_prefix=&limit=`` (limit 1..500, default 100)."""
    try:
        limit = min(MAX_LIMIT, max(1, int(request.query.get("limit", "100"))))
    except ValueError:
        return web.json_response({"error": "audit.bad_limit", "message": "limit must be a number"}, status=400)
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor := request.query.get("actor"):
        query = query.where(AuditEntry.actor == actor)
    if prefix := request.query.get("path_prefix"):
        query = query.where(AuditEntry.path.startswith(prefix, autoescape=True))
    async with request.app[AUDIT_DB_KEY].session() as session:
        rows = list(await session.scalars(query))
    return web.json_response({"entries": [
        {"id": row.id, "at": row.at.isoformat(), "actor": row.actor, "role": row.role, "method": row.method,
         "path": row.path, "status": row.status, "detail": row.detail} for row in rows]})
