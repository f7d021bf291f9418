"""REST API of the live ACD: agents' states and commands, waiting calls, decisions, stats, staffing.

Agents, supervisors and admins change agents' states (log in with an extension, pause with a reason,
resume, log out, end wrap-up); supervisors and admins see the queues, the waiting callers, why routing
chose whom, and the live figures. A state change the agent's current state forbids (pausing during a call)
answers 409 with the reason; the shared state being down answers 503.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from aiohttp import web

from cti.acd.config import EndpointInvalid, normalise_endpoint
from cti.acd.erlang import ErlangError, agents_needed
from cti.acd.model import UnknownCall
from cti.acd.service import AcdService
from cti.acd.shared import AgentBusy, AgentStatus
from cti.acd.store import AgentNotFound
from cti.http.auth import Role, requires
from cti.http.bodies import BodyInvalid, json_object
from cti.http.errors import answers
from cti.http.identity import IDENTITY
from cti.state.errors import StateError

LIVE_ACD_KEY: web.AppKey[AcdService] = web.AppKey("acd_service", AcdService)
WATCHERS: tuple[Role, ...] = ("admin", "supervisor")
EVERYONE: tuple[Role, ...] = ("admin", "supervisor", "agent")
PAUSE_REASON = re.compile(r"^[\w][\w .'-]{0,39}$")
MAX_EXTENSION = 80


def add_live_routes(app: web.Application, acd: AcdService) -> None:
    app[LIVE_ACD_KEY] = acd
    agent = "/api/acd/agents/{id}"
    app.router.add_get("/api/acd/live/agents", list_states)
    app.router.add_post(agent + "/login", login)
    app.router.add_post(agent + "/pause", pause)
    app.router.add_post(agent + "/resume", resume)
    app.router.add_post(agent + "/logout", logout)
    app.router.add_post(agent + "/wrap-up/end", end_wrap_up)
    app.router.add_get("/api/acd/live/calls", list_calls)
    app.router.add_get("/api/acd/live/calls/{id}/explain", explain_call)
    app.router.add_get("/api/acd/live/decisions", list_decisions)
    app.router.add_get("/api/acd/live/stats", stats)
    app.router.add_post("/api/acd/staffing", staffing)


live_errors = answers(
    ((AgentNotFound, UnknownCall), 404),
    (AgentBusy, 409),
    ((BodyInvalid, ErlangError), 400),
    (StateError, 503, "state.unavailable"),
)


def _status(status: AgentStatus) -> web.Response:
    data = dataclasses.asdict(status)
    data["state"] = status.state.value
    return web.json_response(data)


@requires(*EVERYONE)
@live_errors
async def list_states(request: web.Request) -> web.StreamResponse:
    return web.json_response({"agents": request.app[LIVE_ACD_KEY].agent_states()})


@requires(*EVERYONE)
@live_errors
async def login(request: web.Request) -> web.StreamResponse:
    """``{"extension"?: "PJSIP/agent1" | "agent1" | "Local/x@ctx"}``; without it, the agent's usual phone."""
    body = await _optional_body(request, ("extension",))
    extension = body.get("extension")
    if extension is not None:
        extension = check_extension(extension)
    return _status(await request.app[LIVE_ACD_KEY].login(_agent_id(request), extension))


@requires(*EVERYONE)
@live_errors
async def pause(request: web.Request) -> web.StreamResponse:
    """``{"reason": "lunch"}``: kept across restarts and shown on the wallboard."""
    body = await json_object(request, allowed=("reason",))
    reason = check_pause_reason(body.get("reason"))
    return _status(await request.app[LIVE_ACD_KEY].pause(_agent_id(request), reason))


@requires(*EVERYONE)
@live_errors
async def resume(request: web.Request) -> web.StreamResponse:
    return _status(await request.app[LIVE_ACD_KEY].resume(_agent_id(request)))


@requires(*EVERYONE)
@live_errors
async def logout(request: web.Request) -> web.StreamResponse:
    return _status(await request.app[LIVE_ACD_KEY].logout(_agent_id(request)))


@requires(*EVERYONE)
@live_errors
async def end_wrap_up(request: web.Request) -> web.StreamResponse:
    return _status(await request.app[LIVE_ACD_KEY].end_wrap_up(_agent_id(request)))


@requires(*WATCHERS)
@live_errors
async def list_calls(request: web.Request) -> web.StreamResponse:
    return web.json_response({"calls": request.app[LIVE_ACD_KEY].waiting_calls()})


@requires(*WATCHERS)
@live_errors
async def explain_call(request: web.Request) -> web.StreamResponse:
    """Why the caller has (or has not) got an agent: the rule, the pools, who was skipped and why."""
    return web.json_response(request.app[LIVE_ACD_KEY].explain(request.match_info["id"]))


@requires(*WATCHERS)
@live_errors
async def list_decisions(request: web.Request) -> web.StreamResponse:
    return web.json_response({"decisions": request.app[LIVE_ACD_KEY].decisions_log[::-1]})


@requires(*WATCHERS)
@live_errors
async def stats(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[LIVE_ACD_KEY].stats())


@requires(*WATCHERS)
@live_errors
async def staffing(request: web.Request) -> web.StreamResponse:
    """Erlang C: ``{"calls_per_hour", "aht_s", "service_level" (0-1), "answer_within_s", "shrinkage"?,
    "max_occupancy"?}`` -> agents needed on the phones and on the schedule."""
    fields = ("calls_per_hour", "aht_s", "service_level", "answer_within_s", "shrinkage", "max_occupancy")
    body = await json_object(request, allowed=fields)
    numbers: dict[str, Any] = {}
    for name in fields:
        value = body.get(name)
        if value is None and name in fields[:4]:
            raise BodyInvalid(f"{name} is required")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BodyInvalid(f"{name} must be a number")
        numbers[name] = value
    result = agents_needed(numbers["calls_per_hour"], numbers["aht_s"], numbers["service_level"],
                           numbers["answer_within_s"], max_occupancy=numbers["max_occupancy"],
                           shrinkage=numbers["shrinkage"] or 0.0)
    return web.json_response(dataclasses.asdict(result))


def _agent_id(request: web.Request) -> str:
    """The agent a command is for: an agent signed in as a person commands only themselves (a supervisor, an
    admin or an integration's API token may command anyone)."""
    agent_id = request.match_info["id"]
    who = request.get(IDENTITY)
    if who is not None and who.role == "agent" and who.via != "api-token" and who.agent_id != agent_id:
        raise web.HTTPForbidden(reason="an agent may change only their own state")
    return agent_id


async def _optional_body(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    return await json_object(request, allowed=allowed)


def check_pause_reason(value: object) -> str:
    """A pause reason as agents type it (the desktop's websocket checks it here too)."""
    if not isinstance(value, str) or not PAUSE_REASON.fullmatch(value.strip()):
        raise BodyInvalid("reason: 1 to 40 letters, digits, spaces or .'- (e.g. \"lunch\", \"training\")")
    return value.strip()


def check_extension(value: object) -> str:
    """The phone an agent logs in with, as a Dial endpoint (``agent1`` -> ``PJSIP/agent1``)."""
    if not isinstance(value, str) or not value or len(value) > MAX_EXTENSION:
        raise BodyInvalid("extension must be a non-empty string")
    try:
        return normalise_endpoint(value)
    except EndpointInvalid as exc:
        raise BodyInvalid(f"extension: {exc}") from None
