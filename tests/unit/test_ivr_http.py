"""The IVR REST API on the demo numbers (SQLite and PostgreSQL): roles, documents as JSON and YAML, exact
refusals, opening-hours status, the override and the simulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.db import Database
from cti.http.app import make_web_app
from cti.http.auth import declared_roles
from cti.ivr.http import add_routes
from cti.ivr.service import IvrService
from cti.settings import SecuritySettings
from tests.support.ivr import demo_ivr

ADMIN, SUPERVISOR, AGENT = "a" * 32, "s" * 32, "g" * 32
SERVICE = "/api/ivr/services/5551000"
SMALL_FLOW: dict[str, Any] = {"start": "main", "nodes": {
    "main": {"type": "menu", "prompt": "main-menu", "options": {"1": "end"}, "on_failure": "end"},
    "end": {"type": "hangup"}}}
ROUTES = [("GET", "/api/ivr/services"), ("GET", SERVICE), ("PUT", SERVICE), ("PUT", SERVICE + "/flow"),
          ("PUT", SERVICE + "/hours"), ("GET", SERVICE + "/hours/status"), ("PUT", SERVICE + "/override"),
          ("DELETE", SERVICE + "/override"), ("POST", "/api/ivr/flows/validate"), ("POST", "/api/ivr/simulate")]

Client = TestClient[web.Request, web.Application]


@dataclass
class Env:
    client: Client
    ivr: IvrService

    async def call(self, method: str, path: str, token: str = ADMIN, **kwargs: Any) -> tuple[int, Any]:
        response = await self.client.request(method, path, headers={"Authorization": f"Bearer {token}",
                                                                    **kwargs.pop("headers", {})}, **kwargs)
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@pytest.fixture
async def env(database: Database) -> AsyncIterator[Env]:
    ivr = await demo_ivr(database)
    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", SUPERVISOR: "supervisor", AGENT: "agent"}),
                       _status)
    add_routes(app, ivr)
    async with TestClient(TestServer(app)) as client:
        yield Env(client, ivr)


# --- roles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_no_token_is_401(env: Env, method: str, path: str) -> None:
    assert (await env.client.request(method, path)).status == 401


@pytest.mark.parametrize(("method", "path"), [route for route in ROUTES if not route[1].endswith("/status")])
async def test_agents_may_not_edit_or_simulate(env: Env, method: str, path: str) -> None:
    status, _ = await env.call(method, path, token=AGENT)
    assert status == 403


@pytest.mark.parametrize("token", [ADMIN, SUPERVISOR, AGENT])
async def test_every_role_reads_the_hours_status(env: Env, token: str) -> None:
    status, body = await env.call("GET", SERVICE + "/hours/status", token=token)
    assert (status, body["status"], body["at"]) == (200, "open", "2026-11-23T10:00:00+01:00")


def test_every_ivr_route_declares_its_roles(env: Env) -> None:
    app = web.Application()
    add_routes(app, env.ivr)
    roles = {route.resource.canonical: declared_roles(route.handler) for route in app.router.routes()
             if route.resource is not None}
    assert set(roles.values()) == {frozenset({"admin", "supervisor"}), frozenset({"admin", "supervisor", "agent"})}
    assert [path for path, admitted in roles.items() if "agent" in (admitted or ())] == [
        "/api/ivr/services/{number}/hours/status"]


# --- documents -------------------------------------------------------------------------------------


async def test_list_services(env: Env) -> None:
    status, body = await env.call("GET", "/api/ivr/services", token=SUPERVISOR)
    assert status == 200
    assert [(s["number"], s["flow_version"], s["has_hours"], s["override"]) for s in body["services"]] == [
        ("5551000", 1, True, None), ("5552000", 1, True, None)]


async def test_get_a_service_as_json_and_as_yaml(env: Env) -> None:
    status, document = await env.call("GET", SERVICE)
    assert (status, document["number"], document["name"]) == (200, "5551000", "Help desk (English)")
    assert document["flow"]["start"] == "screen"
    response = await env.client.get(SERVICE, params={"format": "yaml"}, headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.content_type == "application/yaml"
    assert yaml.safe_load(await response.text()) == document


@pytest.mark.parametrize("as_yaml", [True, False], ids=["yaml", "json"])
async def test_put_a_whole_document(env: Env, as_yaml: bool) -> None:
    _, document = await env.call("GET", SERVICE)
    changed = {**document, "name": "Renamed", "flow": SMALL_FLOW}
    del changed["number"]  # taken from the path
    if as_yaml:
        status, body = await env.call("PUT", SERVICE, data=yaml.safe_dump(changed),
                                      headers={"Content-Type": "application/yaml"})
    else:
        status, body = await env.call("PUT", SERVICE, json=changed)
    assert (status, body) == (200, {**changed, "number": "5551000"})
    assert (await env.ivr.stored("5551000")).flow_version == 2


async def test_put_a_document_for_another_number_is_refused(env: Env) -> None:
    status, body = await env.call("PUT", SERVICE, json={"number": "5552000", "name": "Other"})
    assert (status, body["errors"]) == (422, ["number: the document is for '5552000', not '5551000'"])


async def test_put_a_flow(env: Env) -> None:
    status, body = await env.call("PUT", SERVICE + "/flow", json=SMALL_FLOW, token=SUPERVISOR)
    assert (status, body) == (200, {"number": "5551000", "version": 2})
    assert (await env.ivr.stored("5551000")).flow == SMALL_FLOW


def small_flow(extra_nodes: dict[str, Any] | None = None, **main: Any) -> dict[str, Any]:
    """SMALL_FLOW with its menu changed and nodes added."""
    nodes = SMALL_FLOW["nodes"]
    return {**SMALL_FLOW, "nodes": {**nodes, "main": {**nodes["main"], **main}, **(extra_nodes or {})}}


@pytest.mark.parametrize(("flow", "errors"), [
    (small_flow(options={"1": "billng"}), ["node 'main': key 1 goes to 'billng', which does not exist"]),
    (small_flow(timeout_s=99), ["nodes.main.timeout_s: Input should be less than or equal to 30"]),
    (small_flow({"spare": {"type": "hangup"}}, prompt="hello"),
     ["node 'spare' cannot be reached from the start ('main')",
      "node 'main': prompt 'hello' is neither in the prompt catalog nor recorded"]),
])
async def test_an_invalid_flow_is_422_with_every_reason_and_nothing_saved(env: Env, flow: dict[str, Any],
                                                                          errors: list[str]) -> None:
    before = await env.ivr.stored("5551000")
    status, body = await env.call("PUT", SERVICE + "/flow", json=flow)
    assert (status, body["error"], body["errors"]) == (422, "ivr.flow_invalid", errors)
    assert body["message"] == "; ".join(errors)
    after = await env.ivr.stored("5551000")
    assert (after.flow, after.flow_version) == (before.flow, 1)
    status, body = await env.call("POST", "/api/ivr/flows/validate", data=json.dumps(flow))
    assert (status, body["errors"]) == (422, errors)


@pytest.mark.parametrize(("body", "content_type", "status", "answer"), [
    (yaml.safe_dump(SMALL_FLOW), "application/yaml", 200, {"valid": True, "nodes": 2}),
    (json.dumps(SMALL_FLOW), "application/json", 200, {"valid": True, "nodes": 2}),
    ("- a list", "application/yaml", 400, {"error": "http.body_invalid",
                                           "message": "the body must be a JSON or YAML mapping"}),
    ("", "application/json", 400, {"error": "http.body_invalid",
                                   "message": "the body must be a JSON or YAML mapping"}),
    (b"\xff\xfe", "application/json", 400, {"error": "http.body_invalid", "message": "the body is not UTF-8 text"}),
])
async def test_validate_a_flow(env: Env, body: str | bytes, content_type: str, status: int,
                               answer: dict[str, Any]) -> None:
    assert await env.call("POST", "/api/ivr/flows/validate", data=body,
                          headers={"Content-Type": content_type}) == (status, answer)


async def test_bad_yaml_is_refused_with_its_line(env: Env) -> None:
    status, body = await env.call("POST", "/api/ivr/flows/validate", data="start: [a\nnodes: {",
                                  headers={"Content-Type": "application/yaml"})
    assert (status, body["error"]) == (422, "ivr.document_invalid")
    assert body["errors"][0].startswith("document: not valid YAML (") and "line 2" in body["errors"][0]


@pytest.mark.parametrize("path", [SERVICE + "/flow", "/api/ivr/flows/validate", SERVICE])
async def test_a_body_over_256_kib_is_400(env: Env, path: str) -> None:
    padding = "#" + "x" * (256 * 1024) + "\n"
    method = "POST" if path.endswith("validate") else "PUT"
    status, body = await env.call(method, path, data=padding + yaml.safe_dump(SMALL_FLOW),
                                  headers={"Content-Type": "application/yaml"})
    assert (status, body) == (400, {"error": "http.body_invalid", "message": "the body is larger than 256 KiB"})


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("GET", "/api/ivr/services/5550000", {}), ("PUT", "/api/ivr/services/5550000/flow", {"json": SMALL_FLOW}),
    ("GET", "/api/ivr/services/5550000/hours/status", {}), ("DELETE", "/api/ivr/services/5550000/override", {}),
    ("POST", "/api/ivr/simulate", {"json": {"number": "5550000"}})])
async def test_an_unknown_number_is_404(env: Env, method: str, path: str, kwargs: dict[str, Any]) -> None:
    status, body = await env.call(method, path, **kwargs)
    assert (status, body["error"]) == (404, "ivr.service_not_found")
    assert "'5550000'" in body["message"]


# --- hours and override ----------------------------------------------------------------------------

EVENINGS = {"timezone": "Europe/Paris", "weekly": {"monday": ["19:00-21:00"]}}


async def test_put_hours_then_the_status_at_an_instant(env: Env) -> None:
    status, body = await env.call("PUT", SERVICE + "/hours", json=EVENINGS)
    assert (status, body["status"], body["next_change"]) == (200, "closed", "2026-11-23T19:00:00+01:00")
    for query in ("?at=2026-11-23T20:00:00%2B01:00", "?at=2026-11-23T20:00:00+01:00", "?at=2026-11-23T19:00:00Z"):
        status, body = await env.call("GET", SERVICE + "/hours/status" + query, token=AGENT)
        assert (status, body["status"], body["next_change"]) == (200, "open", "2026-11-23T21:00:00+01:00"), query


@pytest.mark.parametrize(("document", "errors"), [
    ({**EVENINGS, "override": {"state": "closed", "until": "2026-11-24T00:00:00+01:00"}},
     ["override: set it with the override action, not in the hours document"]),
    ({"timezone": "Europe/Pariss", "weekly": {"monday": ["19:00-18:00", "25:00-26:00"]}},
     ['timezone: unknown time zone "Europe/Pariss"', 'weekly.monday[1]: "25:00-26:00" is not HH:MM-HH:MM']),
])
async def test_refused_hours_are_422_and_nothing_changes(env: Env, document: dict[str, Any],
                                                         errors: list[str]) -> None:
    before = (await env.ivr.stored("5551000")).hours
    status, body = await env.call("PUT", SERVICE + "/hours", json=document)
    assert (status, body["error"], body["errors"]) == (422, "ivr.schedule_invalid", errors)
    assert (await env.ivr.stored("5551000")).hours == before


@pytest.mark.parametrize(("query", "message"), [
    ("?at=2026-11-23T20:00", "at: '2026-11-23T20:00' has no UTC offset (add Z or +01:00)"),
    ("?at=tomorrow", "at: 'tomorrow' is not an ISO 8601 instant"),
])
async def test_a_bad_status_instant_is_400(env: Env, query: str, message: str) -> None:
    assert await env.call("GET", SERVICE + "/hours/status" + query) == (
        400, {"error": "http.body_invalid", "message": message})


async def test_set_then_clear_the_override(env: Env) -> None:
    status, body = await env.call("PUT", SERVICE + "/override",
                                  json={"state": "closed", "until": "2026-11-23T12:00:00+01:00", "reason": "storm"})
    assert (status, body["status"], body["reason"], body["next_change"]) == (
        200, "override_closed", "storm", "2026-11-23T12:00:00+01:00")
    assert body["override"] == {"state": "closed", "until": "2026-11-23T11:00:00+00:00", "reason": "storm"}
    status, body = await env.call("DELETE", SERVICE + "/override")
    assert (status, body["status"], body["override"]) == (200, "open", None)


@pytest.mark.parametrize(("payload", "status", "message"), [
    ({"state": "maybe", "until": "2026-11-23T12:00:00+01:00"}, 400, 'state must be "open" or "closed"'),
    ({"state": "closed"}, 400, "until must be an ISO 8601 instant with its offset"),
    ({"state": "closed", "until": "2026-11-23T12:00"}, 400,
     "until: '2026-11-23T12:00' has no UTC offset (add Z or +01:00)"),
    ({"state": "closed", "until": "2026-11-23T12:00Z", "reason": "x" * 201}, 400,
     "reason must be a text of at most 200 characters"),
    ({"state": "closed", "until": "2026-11-23T12:00Z", "by": "me"}, 400,
     "unknown field(s): by (allowed: state, until, reason)"),
    ({"state": "closed", "until": "2026-11-23T09:00:00+01:00"}, 422,
     "override.until: 2026-11-23T09:00:00+01:00 is not after now (2026-11-23T10:00:00+01:00)"),
    ({"state": "open", "until": "2027-01-01T00:00:00+01:00"}, 422,
     "override.until: 2027-01-01T00:00:00+01:00 is more than 31 days ahead (use a dated entry)"),
])
async def test_refused_overrides(env: Env, payload: dict[str, Any], status: int, message: str) -> None:
    answer_status, body = await env.call("PUT", SERVICE + "/override", json=payload)
    assert (answer_status, body["message"]) == (status, message)
    assert (await env.ivr.stored("5551000")).override is None


async def test_an_override_body_that_is_not_json_is_400(env: Env) -> None:
    assert await env.call("PUT", SERVICE + "/override", data="state=closed") == (
        400, {"error": "http.body_invalid", "message": "the body must be a JSON object (UTF-8)"})


# --- simulator -------------------------------------------------------------------------------------


@pytest.mark.parametrize("keys", ["1,9", ["1", "9"], " 1 , 9 "])
async def test_simulate(env: Env, keys: str | list[str]) -> None:
    status, body = await env.call("POST", "/api/ivr/simulate", json={
        "number": "5551000", "caller": "+33155555555", "at": "2026-11-23T10:00:00+01:00", "keys": keys})
    assert status == 200
    assert body["outcome"] == {"kind": "voicemail", "queue": "", "skills": {}, "priority": 0, "reason": "request",
                               "number": ""}
    assert [step["prompt"] for step in body["steps"] if step["action"] in ("play", "read")] == [
        "welcome", "choose-language", "main-menu"]
    assert (body["path"][-1], body["language"], body["unused_keys"]) == ("message", "en", [])
    assert (body["number"], body["caller"], body["at"]) == ("5551000", "+33155555555", "2026-11-23T10:00:00+01:00")


async def test_simulate_defaults_to_now_anonymous_and_silence(env: Env) -> None:
    status, body = await env.call("POST", "/api/ivr/simulate", json={"number": "5551000"})
    assert (status, body["at"], body["caller"]) == (200, "2026-11-23T10:00:00+01:00", "")
    assert body["path"][:2] == ["screen:rule2", "hidden-number"]
    assert body["outcome"]["reason"] == "request"  # silence at the main menu: on_failure leaves a message


@pytest.mark.parametrize(("payload", "message"), [
    ({"number": "5551000", "at": "2026-11-23T20:00"}, "at: '2026-11-23T20:00' has no UTC offset (add Z or +01:00)"),
    ({"number": 5551000}, "number and caller must be strings"),
    ({"number": "5551000", "keys": [1, 9]}, 'keys must be a string like "1,,2" or a list of strings'),
    ({"number": "5551000", "digits": "1"}, "unknown field(s): digits (allowed: number, caller, at, keys)"),
])
async def test_simulate_refusals(env: Env, payload: dict[str, Any], message: str) -> None:
    assert await env.call("POST", "/api/ivr/simulate", json=payload) == (
        400, {"error": "http.body_invalid", "message": message})
