"""REST API for tickets: list with filters, read with history, change status/assignee, comment, play audio.

Every route declares its roles (``cti.http.auth.requires``). Errors answer JSON
``{"error": <stable code>, "message": <what to fix>}``: 400 for bad input, 404 for an unknown ticket or
attachment, 409 for a status change the workflow forbids (with ``from``, ``to`` and ``allowed``) or one
that lost a race with another change (``tickets.conflict``: reload and retry).
Instants are ISO 8601 in UTC.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from cti.http.auth import REQUEST_ROLE, SIGNING_KEY, Handler, Role, requires
from cti.http.bodies import BodyInvalid, json_object
from cti.http.signed_urls import allow_signed_urls, sign
from tickets.errors import (
    AttachmentNotFound,
    InvalidTicket,
    InvalidTransition,
    TicketConflict,
    TicketError,
    TicketNotFound,
)
from tickets.models import Attachment, Ticket, TicketEvent
from tickets.service import DEFAULT_LIMIT, TicketFilter, TicketService, as_utc

log = logging.getLogger(__name__)

SERVICE_KEY: web.AppKey[TicketService] = web.AppKey("tickets_service", TicketService)
MEDIA_KEY: web.AppKey[Path] = web.AppKey("tickets_media_dir", Path)
ATTACHMENT_ROUTE = "ticket_attachment"
STAFF: tuple[Role, ...] = ("admin", "supervisor", "agent")

_SINGLE_PARAMS = ("source", "queue", "assignee", "caller_number", "call_id", "search", "created_from", "created_to",
                  "limit", "offset")
_DIGITS = re.compile(r"[0-9]{1,10}")


def add_routes(app: web.Application, service: TicketService, media_dir: Path) -> None:
    """``media_dir`` is where attachment paths are rooted; nothing outside it is ever served."""
    app[SERVICE_KEY] = service
    app[MEDIA_KEY] = media_dir.resolve()
    ticket = r"/api/tickets/{ticket_id:\d+}"
    app.router.add_get("/api/tickets", list_tickets)
    app.router.add_get(ticket, get_ticket)
    app.router.add_patch(ticket, patch_ticket)
    app.router.add_post(ticket + "/comments", post_comment)
    app.router.add_get(ticket + r"/attachments/{attachment_id:\d+}", get_attachment, name=ATTACHMENT_ROUTE)


# --- errors ------------------------------------------------------------------------------------


def error_response(status: int, error: TicketError | BodyInvalid, **extra: Any) -> web.Response:
    return web.json_response({"error": error.code, "message": str(error), **extra}, status=status)


def ticket_errors(handler: Handler) -> Handler:
    """Turn the service's exceptions into JSON answers; anything else stays a 500 (a bug)."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except InvalidTransition as exc:
            return error_response(409, exc, **{"from": exc.old, "to": exc.new, "allowed": list(exc.allowed)})
        except TicketConflict as exc:
            return error_response(409, exc)
        except TicketNotFound as exc:
            return error_response(404, exc)
        except (InvalidTicket, BodyInvalid) as exc:
            return error_response(400, exc)

    return wrapper


# --- handlers ----------------------------------------------------------------------------------


@requires(*STAFF)
@ticket_errors
async def list_tickets(request: web.Request) -> web.StreamResponse:
    """``?status=open,pending&source=voicemail&queue=&assignee=&caller_number=&call_id=&search=&created_from=
    &created_to=&limit=&offset=``: newest first; ``status`` may repeat or hold a comma-separated list."""
    ticket_filter = parse_filter(request.query)
    tickets = await request.app[SERVICE_KEY].list(ticket_filter)
    return web.json_response(
        {"tickets": [ticket_json(t) for t in tickets], "limit": ticket_filter.limit, "offset": ticket_filter.offset}
    )


@requires(*STAFF)
@ticket_errors
async def get_ticket(request: web.Request) -> web.StreamResponse:
    view = await request.app[SERVICE_KEY].get(_path_id(request, "ticket_id"))
    return web.json_response({
        **ticket_json(view.ticket),
        "history": [event_json(event) for event in view.events],
        "attachments": [attachment_json(item, attachment_url(request, item)) for item in view.attachments],
    })


@requires(*STAFF)
@ticket_errors
async def patch_ticket(request: web.Request) -> web.StreamResponse:
    """JSON ``{"status"?: str, "assignee"?: str | null}``; a null or empty assignee unassigns."""
    body = await json_object(request, allowed=("status", "assignee"))
    if not body:
        raise InvalidTicket("nothing to update: give status and/or assignee")
    status = _optional_string(body, "status", nullable=False)
    assignee = _optional_string(body, "assignee", nullable=True)
    ticket = await request.app[SERVICE_KEY].update(
        _path_id(request, "ticket_id"), status=status, assignee=assignee, author=request[REQUEST_ROLE]
    )
    return web.json_response(ticket_json(ticket))


@requires(*STAFF)
@ticket_errors
async def post_comment(request: web.Request) -> web.StreamResponse:
    """JSON ``{"body": str}`` (1..10,000 characters); answers 201 with the history row."""
    body = await json_object(request, allowed=("body",))
    text = _optional_string(body, "body", nullable=False)
    if text is None:
        raise InvalidTicket("give the comment as {\"body\": \"...\"}")
    event = await request.app[SERVICE_KEY].comment(_path_id(request, "ticket_id"), request[REQUEST_ROLE], text)
    return web.json_response(event_json(event), status=201)


@allow_signed_urls
@requires(*STAFF)
@ticket_errors
async def get_attachment(request: web.Request) -> web.StreamResponse:
    """The file itself, with Range support (an ``<audio>`` element seeks with Range requests)."""
    ticket_id, attachment_id = _path_id(request, "ticket_id"), _path_id(request, "attachment_id")
    attachment = await request.app[SERVICE_KEY].attachment(ticket_id, attachment_id)
    path = media_file(request.app[MEDIA_KEY], attachment.path)
    if path is None:
        log.warning("attachment %s of ticket %s: %r is missing or outside the media folder",
                    attachment_id, ticket_id, attachment.path)
        raise AttachmentNotFound(ticket_id, attachment_id)  # same answer as a missing row: nothing to probe
    headers = {"Content-Type": attachment.content_type, "Cache-Control": "private, no-cache"}
    return web.FileResponse(path, headers=headers)


# --- request parsing ---------------------------------------------------------------------------


def parse_filter(query: MultiMapping[str]) -> TicketFilter:
    """Unknown or repeated parameters are refused: a typo must not silently widen the list."""
    unknown = sorted(set(query) - {"status", *_SINGLE_PARAMS})
    if unknown:
        known = ", ".join(("status", *_SINGLE_PARAMS))
        raise InvalidTicket(f"unknown query parameter(s): {', '.join(unknown)} (known: {known})")
    single = _single_values(query)
    limit, offset = _number(single, "limit"), _number(single, "offset")
    return TicketFilter(
        statuses=tuple(s for value in query.getall("status", []) for s in value.split(",")),
        source=single.get("source"), queue=single.get("queue"), assignee=single.get("assignee"),
        caller_number=single.get("caller_number"), call_id=_number(single, "call_id"), search=single.get("search"),
        created_from=_instant(single, "created_from"), created_to=_instant(single, "created_to"),
        limit=DEFAULT_LIMIT if limit is None else limit, offset=offset or 0,
    )


def _single_values(query: MultiMapping[str]) -> dict[str, str]:
    repeated = sorted({name for name in _SINGLE_PARAMS if len(query.getall(name, [])) > 1})
    if repeated:
        raise InvalidTicket(f"give each of these query parameters once: {', '.join(repeated)}")
    return {name: query[name] for name in _SINGLE_PARAMS if name in query}


def _number(values: Mapping[str, str], name: str) -> int | None:
    if name not in values:
        return None
    if not _DIGITS.fullmatch(values[name]):
        raise InvalidTicket(f"{name} must be a whole number, got {values[name]!r}")
    return int(values[name])


def _instant(values: Mapping[str, str], name: str) -> datetime | None:
    if name not in values:
        return None
    try:
        return datetime.fromisoformat(values[name])
    except ValueError:
        raise InvalidTicket(
            f"{name} must be an ISO 8601 date or date-time such as 2026-01-31T08:00:00Z "
            f"(URL-encode a '+' offset as %2B), got {values[name]!r}"
        ) from None


def _path_id(request: web.Request, name: str) -> int:
    """The route only matches digits; the service answers 404 for ids that cannot exist."""
    return int(request.match_info[name])


def _optional_string(body: Mapping[str, Any], name: str, *, nullable: bool) -> str | None:
    """Absent -> None (leave as is); a null where allowed -> "" (clear); anything but a string -> 400."""
    if name not in body:
        return None
    value = body[name]
    if value is None and nullable:
        return ""
    if not isinstance(value, str):
        kind = "a string or null" if nullable else "a string"
        raise InvalidTicket(f"{name} must be {kind}, got {type(value).__name__}")
    return value


def media_file(media_dir: Path, relative: str) -> Path | None:
    """The stored path under ``media_dir`` (already resolved), or None if it escapes it or is not a file.

    Resolving follows symlinks too, so a link inside the folder pointing outside is refused as well.
    """
    try:
        candidate = (media_dir / relative).resolve()
    except (OSError, ValueError):  # loops, NUL bytes
        return None
    if not candidate.is_relative_to(media_dir) or not candidate.is_file():
        return None
    return candidate


# --- JSON ----------------------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC."""
    return None if value is None else as_utc(value).isoformat()


def _plain(value: object) -> object:
    return iso(value) if isinstance(value, datetime) else value


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    return {column.key: _plain(getattr(ticket, column.key)) for column in Ticket.__table__.columns}


def event_json(event: TicketEvent) -> dict[str, Any]:
    return {"id": event.id, "ticket_id": event.ticket_id, "kind": event.kind, "author": event.author,
            "body": event.body, "created_at": iso(event.created_at)}


def attachment_json(attachment: Attachment, url: str) -> dict[str, Any]:
    """The stored path stays private: clients fetch the file through ``url``."""
    return {"id": attachment.id, "ticket_id": attachment.ticket_id, "kind": attachment.kind,
            "content_type": attachment.content_type, "size_bytes": attachment.size_bytes,
            "duration_s": attachment.duration_s, "created_at": iso(attachment.created_at), "url": url}


def attachment_url(request: web.Request, attachment: Attachment) -> str:
    """Signed and short-lived, so a plain ``<audio src>`` (which sends no Authorization header) can play it."""
    route = request.app.router[ATTACHMENT_ROUTE]
    path = str(route.url_for(ticket_id=str(attachment.ticket_id), attachment_id=str(attachment.id)))
    return sign(request.app[SIGNING_KEY], path)
