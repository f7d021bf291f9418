"""REST API for service numbers: their flow and hours documents, the override, and the simulator.

Admins and supervisors edit; documents are accepted as JSON or YAML (``Content-Type: application/yaml``)
and ``?format=yaml`` exports YAML. A refused flow or schedule answers 422 with ``errors``, one exact
reason per line (``node 'main': key 1 goes to 'billng', which does not exist``); nothing is saved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from cti.db.models import ServiceNumber
from cti.http.auth import REQUEST_ROLE, Role, requires
from cti.http.bodies import BodyInvalid, body_text, json_object
from cti.http.errors import answers
from cti.ivr.documents import MAX_DOCUMENT_BYTES, dump_yaml, export_document, import_document, load_yaml
from cti.ivr.errors import DocumentInvalid, ServiceNotFound
from cti.ivr.flow import FlowInvalid
from cti.ivr.schedule import ScheduleError
from cti.ivr.service import IvrService
from cti.ivr.simulator import parse_keys

IVR_KEY: web.AppKey[IvrService] = web.AppKey("ivr_service", IvrService)
EDITORS: tuple[Role, ...] = ("admin", "supervisor")


def add_routes(app: web.Application, ivr: IvrService) -> None:
    app[IVR_KEY] = ivr
    service = "/api/ivr/services/{number}"
    app.router.add_get("/api/ivr/services", list_services)
    app.router.add_get(service, get_service)
    app.router.add_put(service, put_service)
    app.router.add_put(service + "/flow", put_flow)
    app.router.add_put(service + "/hours", put_hours)
    app.router.add_get(service + "/hours/status", get_hours_status)
    app.router.add_put(service + "/override", put_override)
    app.router.add_delete(service + "/override", delete_override)
    app.router.add_post("/api/ivr/flows/validate", validate_flow)
    app.router.add_post("/api/ivr/simulate", simulate)


# The service's exceptions as JSON answers; anything else stays a 500 (a bug).
ivr_errors = answers(((FlowInvalid, ScheduleError, DocumentInvalid), 422), (ServiceNotFound, 404), (BodyInvalid, 400))


async def read_document(request: web.Request) -> Any:
    """A JSON or YAML body (JSON is YAML: one parser, the same errors); None when empty."""
    return load_yaml(await body_text(request, MAX_DOCUMENT_BYTES))


@requires(*EDITORS)
@ivr_errors
async def list_services(request: web.Request) -> web.StreamResponse:
    ivr = request.app[IVR_KEY]
    async with ivr.db.session() as session:
        numbers = list(await session.scalars(select(ServiceNumber.number).order_by(ServiceNumber.number)))
    services = []
    for number in numbers:
        stored = await ivr.stored(number)
        services.append({"number": number, "name": stored.service.name, "language": stored.service.language,
                         "enabled": stored.service.enabled, "flow_version": stored.flow_version,
                         "has_hours": stored.hours is not None, "override": stored.override})
    return web.json_response({"services": services})


@requires(*EDITORS)
@ivr_errors
async def get_service(request: web.Request) -> web.StreamResponse:
    document = await export_document(request.app[IVR_KEY], request.match_info["number"])
    if request.query.get("format") == "yaml":
        return web.Response(text=dump_yaml(document), content_type="application/yaml")
    return web.json_response(document)


@requires(*EDITORS)
@ivr_errors
async def put_service(request: web.Request) -> web.StreamResponse:
    """The whole document; its ``number`` (if given) must be the one in the path."""
    document = await read_document(request)
    number = request.match_info["number"]
    if isinstance(document, dict) and str(document.setdefault("number", number)) != number:
        raise DocumentInvalid([f"number: the document is for {document['number']!r}, not {number!r}"])
    await import_document(request.app[IVR_KEY], document, author=request[REQUEST_ROLE])
    return web.json_response(await export_document(request.app[IVR_KEY], number))


@requires(*EDITORS)
@ivr_errors
async def put_flow(request: web.Request) -> web.StreamResponse:
    version = await request.app[IVR_KEY].save_flow(request.match_info["number"], _mapping(await read_document(request)),
                                                   author=request[REQUEST_ROLE])
    return web.json_response({"number": request.match_info["number"], "version": version})


@requires(*EDITORS)
@ivr_errors
async def validate_flow(request: web.Request) -> web.StreamResponse:
    """Checks a flow without saving it: 200 with the nodes' count, or 422 with every reason."""
    flow = request.app[IVR_KEY].check_flow(_mapping(await read_document(request)))
    return web.json_response({"valid": True, "nodes": len(flow.nodes)})


@requires(*EDITORS)
@ivr_errors
async def put_hours(request: web.Request) -> web.StreamResponse:
    number = request.match_info["number"]
    await request.app[IVR_KEY].save_hours(number, _mapping(await read_document(request)), author=request[REQUEST_ROLE])
    return web.json_response(await request.app[IVR_KEY].hours_status(number))


@requires(*EDITORS, "agent")
@ivr_errors
async def get_hours_status(request: web.Request) -> web.StreamResponse:
    """``?at=`` (ISO 8601 with offset) asks about another instant than now."""
    at = _instant(request.query["at"], "at") if "at" in request.query else None
    return web.json_response(await request.app[IVR_KEY].hours_status(request.match_info["number"], at))


@requires(*EDITORS)
@ivr_errors
async def put_override(request: web.Request) -> web.StreamResponse:
    """JSON ``{"state": "open"|"closed", "until": ISO 8601 with offset, "reason"?: str}``."""
    body = await json_object(request, allowed=("state", "until", "reason"))
    state = body.get("state")
    if state not in ("open", "closed"):
        raise BodyInvalid("state must be \"open\" or \"closed\"")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 200:
        raise BodyInvalid("reason must be a text of at most 200 characters")
    number = request.match_info["number"]
    until = _instant(body.get("until"), "until")
    await request.app[IVR_KEY].set_override(number, state, until, reason, author=request[REQUEST_ROLE])
    return web.json_response(await request.app[IVR_KEY].hours_status(number))


@requires(*EDITORS)
@ivr_errors
async def delete_override(request: web.Request) -> web.StreamResponse:
    number = request.match_info["number"]
    await request.app[IVR_KEY].set_override(number, None, None, "", author=request[REQUEST_ROLE])
    return web.json_response(await request.app[IVR_KEY].hours_status(number))


@requires(*EDITORS)
@ivr_errors
async def simulate(request: web.Request) -> web.StreamResponse:
    """JSON ``{"number", "caller"?, "at"?, "keys"?}``: ``keys`` is "1,,2" or ["1", "", "2"] (an empty
    entry is a silence); answers the prompts in order, the path and the outcome. Nothing is stored."""
    body = await json_object(request, allowed=("number", "caller", "at", "keys"))
    number, caller, keys = body.get("number"), body.get("caller", ""), body.get("keys", [])
    if not isinstance(number, str) or not isinstance(caller, str):
        raise BodyInvalid("number and caller must be strings")
    if not isinstance(keys, str) and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise BodyInvalid("keys must be a string like \"1,,2\" or a list of strings")
    ivr = request.app[IVR_KEY]
    at = _instant(body["at"], "at") if body.get("at") else ivr.clock()
    result = await ivr.simulate(number, caller, at, parse_keys(keys))
    return web.json_response({"number": number, "caller": caller, "at": at.isoformat(), **result.as_dict()})


def _mapping(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise BodyInvalid("the body must be a JSON or YAML mapping")
    return document


def _instant(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise BodyInvalid(f"{name} must be an ISO 8601 instant with its offset")
    try:
        instant = datetime.fromisoformat(value.replace(" ", "+"))  # an unencoded "+" in a query is a space
    except ValueError:
        raise BodyInvalid(f"{name}: {value!r} is not an ISO 8601 instant") from None
    if instant.tzinfo is None:
        raise BodyInvalid(f"{name}: {value!r} has no UTC offset (add Z or +01:00)")
    return instant
