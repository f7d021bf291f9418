"""REST API for blocked numbers (the list a flow's ``caller: [blocked]`` rule consults), and the routes
of contacts and companies (:mod:`cti.contacts.contact_routes`).

Numbers are normalised to E.164 with the configured region, so "06 12 34 56 78" and "+33612345678" are
one entry. Blocked numbers: admins and supervisors only.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from cti.contacts.contact_routes import add_contact_routes
from cti.contacts.directory import CallerDirectory, normalise_number
from cti.contacts.models import BlockedNumber
from cti.contacts.profile import is_withheld
from cti.contacts.store import ContactStore
from cti.http.auth import Role, requires
from cti.http.bodies import BodyInvalid, json_object

DIRECTORY_KEY: web.AppKey[CallerDirectory] = web.AppKey("caller_directory", CallerDirectory)
EDITORS: tuple[Role, ...] = ("admin", "supervisor")


def add_routes(app: web.Application, directory: CallerDirectory, contract_levels: Collection[str] = ()) -> None:
    """``contract_levels``: the configured SLA levels a company's contract must be one of (empty: any)."""
    app[DIRECTORY_KEY] = directory
    add_contact_routes(app, ContactStore(directory.db, directory.region, contract_levels))
    app.router.add_get("/api/blocked-numbers", list_blocked)
    app.router.add_post("/api/blocked-numbers", add_blocked)
    app.router.add_delete(r"/api/blocked-numbers/{blocked_id:\d+}", remove_blocked)


def blocked_json(row: BlockedNumber) -> dict[str, Any]:
    return {"id": row.id, "number": row.number, "reason": row.reason,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "created_at": row.created_at.isoformat()}


@requires(*EDITORS)
async def list_blocked(request: web.Request) -> web.StreamResponse:
    async with request.app[DIRECTORY_KEY].db.session() as session:
        rows = list(await session.scalars(select(BlockedNumber).order_by(BlockedNumber.number)))
    return web.json_response({"blocked": [blocked_json(row) for row in rows]})


@requires(*EDITORS)
async def add_blocked(request: web.Request) -> web.StreamResponse:
    """JSON ``{"number", "reason"?, "expires_at"?: ISO 8601 with offset}``; 201, or 409 if already blocked."""
    try:
        body = await json_object(request, allowed=("number", "reason", "expires_at"))
        row = _blocked_from(body, request.app[DIRECTORY_KEY].region)
    except BodyInvalid as exc:
        return web.json_response({"error": exc.code, "message": str(exc)}, status=400)
    try:
        async with request.app[DIRECTORY_KEY].db.session() as session:
            session.add(row)
            await session.flush()
            answer = blocked_json(row)
    except IntegrityError:
        return web.json_response({"error": "contacts.already_blocked",
                                  "message": f"{row.number} is already blocked"}, status=409)
    return web.json_response(answer, status=201)


@requires(*EDITORS)
async def remove_blocked(request: web.Request) -> web.StreamResponse:
    blocked_id = int(request.match_info["blocked_id"])
    async with request.app[DIRECTORY_KEY].db.session() as session:
        result = await session.execute(delete(BlockedNumber).where(BlockedNumber.id == blocked_id))
    if not getattr(result, "rowcount", 0):
        return web.json_response({"error": "contacts.not_found", "message": f"no blocked number {blocked_id}"},
                                 status=404)
    return web.json_response({"deleted": blocked_id})


def _blocked_from(body: dict[str, Any], region: str) -> BlockedNumber:
    number, reason, expires = body.get("number"), body.get("reason", ""), body.get("expires_at")
    if not isinstance(number, str) or is_withheld(number):
        raise BodyInvalid("number must be a phone number (a withheld caller ID cannot be blocked)")
    normalised = normalise_number(number, region)
    if not normalised.lstrip("+").isdigit() or len(normalised) > 32:
        raise BodyInvalid(f"number: {number!r} is not a phone number")
    if not isinstance(reason, str) or len(reason) > 200:
        raise BodyInvalid("reason must be a text of at most 200 characters")
    return BlockedNumber(number=normalised, reason=reason, expires_at=_expiry(expires))


def _expiry(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise BodyInvalid("expires_at must be an ISO 8601 instant with its offset, or null")
    return instant
