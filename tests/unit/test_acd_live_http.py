"""The live ACD's REST API (SQLite and PostgreSQL): roles, agents' commands with their refusals (400 bad input,
404 unknown, 409 not now, 503 shared state down), waiting calls, explanations, decisions, stats, staffing."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.acd.calls import QueuedCall
from cti.acd.live_http import add_live_routes
from cti.db import Database
from cti.http.app import make_web_app
from cti.http.auth import declared_roles
from cti.settings import SecuritySettings
from cti.state import InMemoryStateBackend, StateUnavailable
from tests.support.acd import SUPPORT_AGENTS, Desk, agent, make_desk

ADMIN, SUPERVISOR, AGENT = "a" * 32, "s" * 32, "g" * 32
ALICE = "/api/acd/agents/alice"
LIVE = "/api/acd/live"
STAFFING = "/api/acd/staffing"
COMMANDS = [ALICE + "/login", ALICE + "/pause", ALICE + "/resume", ALICE + "/logout", ALICE + "/wrap-up/end"]
FOR_EVERYONE = [("GET", LIVE + "/agents"), *[("POST", path) for path in COMMANDS]]
FOR_WATCHERS = [
    ("GET", LIVE + "/calls"),
    ("GET", LIVE + "/calls/1732350000.1/explain"),
    ("GET", LIVE + "/decisions"),
    ("GET", LIVE + "/stats"),
    ("POST", STAFFING),
]
ERLANG: dict[str, Any] = {"calls_per_hour": 100, "aht_s": 180, "service_level": 0.8, "answer_within_s": 20}

Client = TestClient[web.Request, web.Application]


class SwitchableState(InMemoryStateBackend):
    """The in-process backend, made unreachable while ``down``."""

    down = False

    async def get(self, key: str) -> str | None:
        if self.down:
            raise StateUnavailable("connection refused")
        return await super().get(key)


@dataclass
class Env:
    client: Client
    desk: Desk
    state: SwitchableState

    async def call(self, method: str, path: str, token: str = ADMIN, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        response = await self.client.request(method, path, headers=headers, **kwargs)
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body

    async def waiting_and_ringing(self) -> tuple[QueuedCall, QueuedCall]:
        """alice rings for a first caller; a second one waits (bob is paused)."""
        acd = self.desk.acd
        await acd.login("alice")
        await acd.login("bob")
        await acd.pause("bob", "lunch")
        ringing = await self.desk.join()
        await self.desk.route()
        self.desk.clock.advance(4)
        waiting = await self.desk.join()
        self.desk.clock.advance(6)
        return ringing, waiting


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@pytest.fixture
async def env(database: Database) -> AsyncIterator[Env]:
    state = SwitchableState()
    desk = await make_desk(
        database, agents=(*SUPPORT_AGENTS, agent("erin", software=1).model_copy(update={"endpoint": ""})), state=state
    )
    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", SUPERVISOR: "supervisor", AGENT: "agent"}), _status)
    add_live_routes(app, desk.acd)
    async with TestClient(TestServer(app)) as client:
        yield Env(client, desk, state)


# --- roles -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), FOR_EVERYONE + FOR_WATCHERS)
async def test_no_token_or_a_wrong_one_is_401(env: Env, method: str, path: str) -> None:
    assert (await env.client.request(method, path, json={})).status == 401
    status, _ = await env.call(method, path, token="x" * 32, json={})
    assert status == 401
    assert env.desk.acd.statuses["alice"].state.value == "logged_out"


@pytest.mark.parametrize(("method", "path"), FOR_WATCHERS)
async def test_agents_may_not_watch_the_queues(env: Env, method: str, path: str) -> None:
    status, _ = await env.call(method, path, token=AGENT, json=ERLANG)
    assert status == 403


@pytest.mark.parametrize("token", [ADMIN, SUPERVISOR, AGENT])
async def test_every_role_changes_agents_states(env: Env, token: str) -> None:
    steps = [
        ("/login", None, "available"),
        ("/pause", {"reason": "lunch"}, "paused"),
        ("/resume", None, "available"),
        ("/wrap-up/end", None, "available"),
        ("/logout", None, "logged_out"),
    ]
    for command, body, state in steps:
        status, answer = await env.call("POST", ALICE + command, token=token, json=body)
        assert (status, answer["state"]) == (200, state), command
    status, body = await env.call("GET", LIVE + "/agents", token=token)
    assert status == 200 and [row["id"] for row in body["agents"]] == ["alice", "bob", "carol", "erin"]


def test_every_live_route_declares_its_roles(env: Env) -> None:
    app = web.Application()
    add_live_routes(app, env.desk.acd)
    roles = {
        (route.method, route.resource.canonical): declared_roles(route.handler)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert len(roles) == len(FOR_EVERYONE) + len(FOR_WATCHERS)
    for_agents = sorted(route for route, admitted in roles.items() if "agent" in (admitted or ()))
    assert for_agents == sorted(
        [("GET", LIVE + "/agents")] + [("POST", path.replace("alice", "{id}")) for path in COMMANDS]
    )
    assert {admitted for route, admitted in roles.items() if route not in for_agents} == {
        frozenset({"admin", "supervisor"})
    }


# --- agents' commands ------------------------------------------------------------------------------------


async def test_login_with_the_usual_phone_or_an_extension(env: Env) -> None:
    status, body = await env.call("POST", ALICE + "/login", token=AGENT)  # no body at all
    assert (status, body["state"], body["endpoint"]) == (200, "available", "PJSIP/agent1")
    assert set(body) == {"agent_id", "state", "reason", "endpoint", "call", "node", "since", "misses", "until"}
    for extension, endpoint in [
        ("agent7", "PJSIP/agent7"),
        ("Local/7001@desk-phones", "Local/7001@desk-phones"),
        ("pjsip/agent8", "PJSIP/agent8"),
    ]:
        status, body = await env.call("POST", ALICE + "/login", json={"extension": extension})
        assert (status, body["endpoint"]) == (200, endpoint)
    assert env.desk.acd.statuses["alice"].endpoint == "PJSIP/agent8"
    status, body = await env.call("POST", "/api/acd/agents/erin/login", json={})
    assert (status, body["error"]) == (409, "acd.agent_busy") and "no phone" in body["message"]
    status, body = await env.call("POST", "/api/acd/agents/erin/login", json={"extension": "erin9"})
    assert (status, body["endpoint"]) == (200, "PJSIP/erin9")


@pytest.mark.parametrize(
    "body",
    [
        {"extension": "PJSIP/a,b"},
        {"extension": "agent1&PJSIP/boss"},
        {"extension": "Local/1@ctx/n"},
        {"extension": "a b"},
        {"extension": ""},
        {"extension": 1001},
        {"extension": "x" * 81},
        {"phone": "agent1"},
        [],
        "agent1",
    ],
)
async def test_a_bad_extension_is_400(env: Env, body: Any) -> None:
    status, answer = await env.call("POST", ALICE + "/login", json=body)
    assert (status, answer["error"]) == (400, "http.body_invalid")
    assert env.desk.acd.statuses["alice"].state.value == "logged_out"


async def test_a_login_body_that_is_not_json_is_400(env: Env) -> None:
    status, answer = await env.call(
        "POST", ALICE + "/login", data=b"extension=agent1", headers={"Content-Type": "application/json"}
    )
    assert (status, answer["error"]) == (400, "http.body_invalid")


async def test_pause_with_a_reason(env: Env) -> None:
    await env.desk.acd.login("alice")
    status, body = await env.call("POST", ALICE + "/pause", json={"reason": "  Réunion d'équipe  "})
    assert (status, body["state"], body["reason"]) == (200, "paused", "Réunion d'équipe")
    rows = {row["id"]: row for row in (await env.call("GET", LIVE + "/agents"))[1]["agents"]}
    assert (rows["alice"]["state"], rows["alice"]["reason"]) == ("paused", "Réunion d'équipe")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "   "},
        {"reason": "x" * 41},
        {"reason": "lunch; drop"},
        {"reason": "-lunch"},
        {"reason": "lunch\nbreak"},
        {"reason": 5},
        {"reason": None},
        {"reason": "lunch", "until": "13:00"},
    ],
)
async def test_a_bad_pause_reason_is_400(env: Env, body: dict[str, Any]) -> None:
    await env.desk.acd.login("alice")
    status, answer = await env.call("POST", ALICE + "/pause", json=body)
    assert (status, answer["error"]) == (400, "http.body_invalid")
    assert env.desk.acd.statuses["alice"].state.value == "available"


async def test_pausing_a_logged_out_agent_is_409(env: Env) -> None:
    status, body = await env.call("POST", ALICE + "/pause", json={"reason": "lunch"})
    assert (status, body["error"]) == (409, "acd.agent_busy") and "log in first" in body["message"]


@pytest.mark.parametrize("phase", ["ringing", "on_call"])
async def test_changing_an_agent_during_a_call_is_409(env: Env, phase: str) -> None:
    ringing, _ = await env.waiting_and_ringing()
    if phase == "on_call":
        env.desk.acd.start_dialing(ringing)
        await env.desk.acd.answered(ringing)
    for path, body in [
        ("/pause", {"reason": "lunch"}),
        ("/resume", None),
        ("/logout", None),
        ("/login", {"extension": "agent9"}),
    ]:
        status, answer = await env.call("POST", ALICE + path, token=AGENT, json=body)
        assert (status, answer["error"]) == (409, "acd.agent_busy"), path
        assert phase in answer["message"]
    assert env.desk.acd.statuses["alice"].state.value == phase


async def test_end_wrap_up(env: Env) -> None:
    ringing, _ = await env.waiting_and_ringing()
    await env.desk.connect(ringing, talk_s=30)
    assert env.desk.acd.statuses["alice"].state.value == "wrap_up"
    status, body = await env.call("POST", ALICE + "/wrap-up/end", token=AGENT)
    assert (status, body["state"], body["call"], body["until"]) == (200, "available", "", 0.0)


@pytest.mark.parametrize("command", COMMANDS)
async def test_an_unknown_agent_is_404(env: Env, command: str) -> None:
    path = command.replace("alice", "nobody")
    status, body = await env.call("POST", path, json={"reason": "lunch"} if path.endswith("/pause") else {})
    assert (status, body["error"]) == (404, "acd.agent_not_found")


async def test_the_shared_state_down_is_503(env: Env) -> None:
    await env.desk.acd.login("alice")
    env.state.down = True
    status, body = await env.call("POST", ALICE + "/pause", json={"reason": "lunch"})
    assert (status, body["error"]) == (503, "state.unavailable")
    env.state.down = False
    assert (await env.call("POST", ALICE + "/pause", json={"reason": "lunch"}))[0] == 200


# --- watching the queues ----------------------------------------------------------------------------------


async def test_waiting_calls(env: Env) -> None:
    ringing, waiting = await env.waiting_and_ringing()
    status, body = await env.call("GET", LIVE + "/calls", token=SUPERVISOR)
    assert status == 200
    rows = {row["id"]: row for row in body["calls"]}
    assert (rows[ringing.id]["phase"], rows[ringing.id]["agent_id"], rows[ringing.id]["position"]) == (
        "assigned",
        "alice",
        None,
    )
    assert rows[waiting.id] | {"joined": None} == {
        "id": waiting.id,
        "queue": "support",
        "priority": 0,
        "caller": waiting.caller,
        "called": "",
        "language": "en",
        "phase": "waiting",
        "joined": None,
        "waited_s": 6.0,
        "position": 1,
        "estimated_wait_s": 300,
        "agent_id": None,
        "rule": "",
        "explanation": "",
    }


async def test_explain(env: Env) -> None:
    ringing, waiting = await env.waiting_and_ringing()
    status, body = await env.call("GET", f"{LIVE}/calls/{waiting.id}/explain", token=SUPERVISOR)
    assert (status, body["rule"], body["agent_id"], body["waited_s"]) == (200, "wait", None, 6.0)
    assert body["pools"][0]["examples"] == {"ringing": ["alice"], "paused": ["bob"], "logged_out": ["carol", "erin"]}
    status, body = await env.call("GET", f"{LIVE}/calls/{ringing.id}/explain")
    assert (status, body["phase"], body["agent_id"], body["rule"]) == (200, "assigned", "alice", "best_match")
    status, body = await env.call("GET", f"{LIVE}/calls/1732399999.9/explain")
    assert (status, body["error"]) == (404, "acd.unknown_call")


async def test_decisions_newest_first(env: Env) -> None:
    ringing, waiting = await env.waiting_and_ringing()
    await env.desk.acd.resume("bob")
    await env.desk.route()
    status, body = await env.call("GET", LIVE + "/decisions", token=SUPERVISOR)
    assert status == 200
    assert [(row["call_id"], row["agent_id"], row["rule"]) for row in body["decisions"]] == [
        (waiting.id, "bob", "best_match"),
        (ringing.id, "alice", "best_match"),
    ]
    assert body["decisions"][0]["waited_s"] == 6.0


async def test_stats(env: Env) -> None:
    await env.waiting_and_ringing()
    status, body = await env.call("GET", LIVE + "/stats", token=SUPERVISOR)
    assert (status, body) == (200, env.desk.acd.stats())
    assert body["queues"]["support"]["waiting"] == 1
    assert body["agents"] == {"logged_out": 2, "available": 0, "ringing": 1, "on_call": 0, "wrap_up": 0, "paused": 1}


# --- staffing ----------------------------------------------------------------------------------------------


def _reference_service_level(agents: int, erlangs: float, aht_s: float, within_s: float) -> float:
    """Erlang C from its textbook formula (factorials: fine for a handful of agents)."""
    top = erlangs**agents / math.factorial(agents) * agents / (agents - erlangs)
    waits = top / (sum(erlangs**k / math.factorial(k) for k in range(agents)) + top)
    return 1 - waits * math.exp(-(agents - erlangs) * within_s / aht_s)


async def test_staffing_for_a_service_level(env: Env) -> None:
    status, body = await env.call("POST", STAFFING, token=SUPERVISOR, json=ERLANG)
    assert status == 200
    assert (body["traffic_erlangs"], body["agents"], body["scheduled_agents"]) == (5.0, 8, 8)
    assert _reference_service_level(7, 5.0, 180, 20) < 0.8 <= _reference_service_level(8, 5.0, 180, 20)
    assert body["service_level"] == pytest.approx(_reference_service_level(8, 5.0, 180, 20))
    assert body["occupancy"] == 0.625 and 0 < body["average_speed_of_answer"] < 20
    status, body = await env.call("POST", STAFFING, json={**ERLANG, "shrinkage": 0.3, "max_occupancy": None})
    assert (status, body["agents"], body["scheduled_agents"]) == (200, 8, 12)
    status, body = await env.call("POST", STAFFING, json={**ERLANG, "max_occupancy": 0.5})
    assert (status, body["agents"]) == (200, 10)


@pytest.mark.parametrize(
    "change",
    [
        {"calls_per_hour": None},
        {"aht_s": None},
        {"service_level": None},
        {"answer_within_s": None},
        {"calls_per_hour": "100"},
        {"aht_s": True},
        {"service_level": 1.5},
        {"service_level": 80},
        {"aht_s": 0},
        {"calls_per_hour": -1},
        {"shrinkage": 1.0},
        {"max_occupancy": 0},
        {"calls_per_hour": 1e12},
        {"agents": 5},
    ],
)
async def test_bad_staffing_questions_are_400(env: Env, change: dict[str, Any]) -> None:
    body = {key: value for key, value in {**ERLANG, **change}.items() if value is not None}
    status, answer = await env.call("POST", STAFFING, json=body)
    assert status == 400 and answer["error"] in ("http.body_invalid", "acd.erlang_invalid")
