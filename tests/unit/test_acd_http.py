"""The ACD configuration REST API on the demo configuration (SQLite and PostgreSQL): roles, agents and
queues as JSON and YAML, exact refusals with nothing saved, and the live ACD told once per saved change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.acd.http import add_config_routes
from cti.acd.store import AcdStore
from cti.db import Database
from cti.demo import seed_acd_demo
from cti.http.app import make_web_app
from cti.http.auth import declared_roles
from cti.settings import SecuritySettings

ADMIN, SUPERVISOR, AGENT = "a" * 32, "s" * 32, "g" * 32
AGENTS, QUEUES, CONFIG = "/api/acd/agents", "/api/acd/queues", "/api/acd/config"
ALICE, SUPPORT = AGENTS + "/alice", QUEUES + "/support"
DANA: dict[str, Any] = {"name": "Dana", "team": "support", "skills": {"network": 2, "lang-en": 4}, "endpoint": "agent3"}
READS = [("GET", ALICE), ("GET", SUPPORT)]
EDITS = [
    ("GET", AGENTS),
    ("PUT", ALICE),
    ("DELETE", ALICE),
    ("GET", QUEUES),
    ("PUT", SUPPORT),
    ("DELETE", SUPPORT),
    ("GET", CONFIG),
    ("PUT", CONFIG),
]
WRITES = [(method, path) for method, path in EDITS if method != "GET"]

Client = TestClient[web.Request, web.Application]


@dataclass
class Env:
    client: Client
    store: AcdStore
    changes: list[str]

    async def call(self, method: str, path: str, token: str = ADMIN, **kwargs: Any) -> tuple[int, Any]:
        response = await self.client.request(
            method, path, headers={"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}, **kwargs
        )
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body

    async def yaml_export(self) -> str:
        response = await self.client.get(
            CONFIG, params={"format": "yaml"}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert (response.status, response.content_type) == (200, "application/yaml")
        return await response.text()


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@pytest.fixture
async def env(database: Database) -> AsyncIterator[Env]:
    store = AcdStore(database)
    await seed_acd_demo(store)
    changes: list[str] = []

    async def on_change() -> None:
        changes.append("reload")

    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", SUPERVISOR: "supervisor", AGENT: "agent"}), _status)
    add_config_routes(app, store, on_change)
    async with TestClient(TestServer(app)) as client:
        yield Env(client, store, changes)


# --- roles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), READS + EDITS)
async def test_no_token_is_401(env: Env, method: str, path: str) -> None:
    assert (await env.client.request(method, path, json={})).status == 401
    assert env.changes == []


@pytest.mark.parametrize(("method", "path"), EDITS)
async def test_agents_may_not_edit_or_list(env: Env, method: str, path: str) -> None:
    status, _ = await env.call(method, path, token=AGENT, json={})
    assert status == 403
    assert env.changes == []


@pytest.mark.parametrize("token", [ADMIN, SUPERVISOR, AGENT])
@pytest.mark.parametrize("path", [ALICE, SUPPORT])
async def test_every_role_reads_one_agent_or_queue(env: Env, token: str, path: str) -> None:
    status, body = await env.call("GET", path, token=token)
    assert (status, body.get("id", body.get("name"))) == (200, path.rsplit("/", 1)[1])


def test_every_route_declares_its_roles(env: Env) -> None:
    app = web.Application()

    async def nothing() -> None:
        return None

    add_config_routes(app, env.store, nothing)
    roles = {
        (route.method, route.resource.canonical): declared_roles(route.handler)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert len(roles) == 10
    assert set(roles.values()) == {frozenset({"admin", "supervisor"}), frozenset({"admin", "supervisor", "agent"})}
    assert sorted(route for route, admitted in roles.items() if "agent" in (admitted or ())) == [
        ("GET", "/api/acd/agents/{id}"),
        ("GET", "/api/acd/queues/{name}"),
    ]


# --- agents ----------------------------------------------------------------------------------------


async def test_list_and_get_agents(env: Env) -> None:
    status, body = await env.call("GET", AGENTS, token=SUPERVISOR)
    assert (status, [agent["id"] for agent in body["agents"]]) == (200, ["alice", "bob", "chloe"])
    status, body = await env.call("GET", ALICE)
    assert (status, body) == (
        200,
        {
            "id": "alice",
            "name": "Alice",
            "team": "support",
            "skills": {"network": 5, "software": 4, "lang-fr": 5, "lang-en": 3},
            "endpoint": "PJSIP/agent1",
        },
    )


@pytest.mark.parametrize("as_yaml", [True, False], ids=["yaml", "json"])
async def test_put_a_new_agent(env: Env, as_yaml: bool) -> None:
    if as_yaml:
        status, body = await env.call(
            "PUT",
            AGENTS + "/dana",
            data=yaml.safe_dump(DANA),
            headers={"Content-Type": "application/yaml"},
            token=SUPERVISOR,
        )
    else:
        status, body = await env.call("PUT", AGENTS + "/dana", json={**DANA, "id": "dana"}, token=SUPERVISOR)
    assert (status, body) == (200, {**DANA, "id": "dana", "endpoint": "PJSIP/agent3"})
    assert (await env.store.get_agent("dana")).endpoint == "PJSIP/agent3"
    assert env.changes == ["reload"]


async def test_put_replaces_an_agent(env: Env) -> None:
    status, body = await env.call("PUT", ALICE, json={"name": "Alice M.", "skills": {"network": 6}})
    assert (status, body) == (
        200,
        {"id": "alice", "name": "Alice M.", "team": "", "skills": {"network": 6}, "endpoint": ""},
    )
    assert env.changes == ["reload"]


@pytest.mark.parametrize(
    ("document", "errors"),
    [
        (
            {**DANA, "endpoint": "PJSIP/agent3&PJSIP/boss"},
            [
                "endpoint: 'PJSIP/agent3&PJSIP/boss' is not a dial target ('&' not allowed): write PJSIP/<name>, "
                "Local/<exten>@<context> or a bare endpoint name"
            ],
        ),
        (
            {**DANA, "skills": {"network": 11}, "name": ""},
            [
                "name: String should have at least 1 character",
                "skills.network: Input should be less than or equal to 10",
            ],
        ),
        ({**DANA, "id": "eve"}, ["id: the document is for 'eve', not 'dana'"]),
    ],
)
async def test_a_refused_agent_is_422_and_nothing_saved(env: Env, document: dict[str, Any], errors: list[str]) -> None:
    status, body = await env.call("PUT", AGENTS + "/dana", json=document)
    assert (status, body["error"], body["errors"], body["message"]) == (
        422,
        "acd.config_invalid",
        errors,
        "; ".join(errors),
    )
    assert [agent.id for agent in await env.store.list_agents()] == ["alice", "bob", "chloe"]
    assert env.changes == []


async def test_an_agent_id_in_the_path_must_be_a_name(env: Env) -> None:
    status, body = await env.call("PUT", AGENTS + "/Dana", json=DANA)
    assert (status, body["errors"]) == (
        422,
        ["id: 'Dana' is not a name: a lowercase letter, then up to 31 lowercase letters, digits, '_', '.' or '-'"],
    )


async def test_delete_an_agent(env: Env) -> None:
    assert await env.call("DELETE", ALICE) == (204, "")
    assert env.changes == ["reload"]
    status, body = await env.call("GET", ALICE)
    assert (status, body) == (404, {"error": "acd.agent_not_found", "message": "no agent 'alice'"})
    status, _ = await env.call("DELETE", ALICE)
    assert status == 404
    assert env.changes == ["reload"]


# --- queues ----------------------------------------------------------------------------------------


async def test_list_and_get_queues(env: Env) -> None:
    status, body = await env.call("GET", QUEUES)
    assert (status, [queue["name"] for queue in body["queues"]]) == (200, ["billing", "support"])
    status, body = await env.call("GET", SUPPORT)
    assert (status, body["skills"], body["max_wait_s"], body["overflow"]) == (200, {"software": 1}, 300, "voicemail")
    assert [(step["after_s"], step["level_delta"], step["borrow"]) for step in body["steps"]] == [
        (60, 1, []),
        (120, 0, ["billing"]),
    ]
    response = await env.client.get(SUPPORT, params={"format": "yaml"}, headers={"Authorization": f"Bearer {AGENT}"})
    assert yaml.safe_load(await response.text()) == body


async def test_put_a_queue(env: Env) -> None:
    status, body = await env.call(
        "PUT",
        QUEUES + "/sales",
        data="skills: {lang-fr: 3}\noverflow: queue:support\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert (status, body["name"], body["skills"], body["overflow"], body["wrap_up_s"]) == (
        200,
        "sales",
        {"lang-fr": 3},
        "queue:support",
        15,
    )
    assert (await env.store.get_queue("sales")).overflow == "queue:support"
    assert env.changes == ["reload"]


@pytest.mark.parametrize(
    ("path", "document", "errors"),
    [
        (
            QUEUES + "/sales",
            {"steps": [{"after_s": 30, "borrow": ["marketing"]}]},
            ["queue 'sales': steps.0.borrow: no queue 'marketing'"],
        ),
        (
            QUEUES + "/billing",
            {"overflow": "queue:support", "max_wait_s": 60},
            ["queue 'billing': overflow: the chain billing -> support -> billing loops"],
        ),
        (
            QUEUES + "/sales",
            {"steps": [{"after_s": 30}, {"after_s": 20}], "ring_timeout_s": 1},
            ["ring_timeout_s: Input should be greater than or equal to 5"],
        ),
        (
            QUEUES + "/sales",
            {"steps": [{"after_s": 30}, {"after_s": 20}]},
            ["steps.1.after_s: 20 is not after the previous step's (30): steps come in the order they apply"],
        ),
        (QUEUES + "/sales", {"name": "marketing"}, ["name: the document is for 'marketing', not 'sales'"]),
    ],
)
async def test_a_refused_queue_is_422_and_nothing_saved(
    env: Env, path: str, document: dict[str, Any], errors: list[str]
) -> None:
    before = await env.store.export_document()
    if path.endswith("billing"):  # the loop needs support to overflow to billing first
        assert (await env.call("PUT", SUPPORT, json={"overflow": "queue:billing"}))[0] == 200
        env.changes.clear()
        before = await env.store.export_document()
    status, body = await env.call("PUT", path, json=document)
    assert (status, body["error"], body["errors"]) == (422, "acd.config_invalid", errors)
    assert await env.store.export_document() == before
    assert env.changes == []


async def test_a_queue_in_use_cannot_be_deleted(env: Env) -> None:
    status, body = await env.call("DELETE", QUEUES + "/billing")
    assert (status, body["errors"]) == (
        422,
        ["queue 'billing' is still used: queue 'support' borrows from it (steps.1.borrow)"],
    )
    assert env.changes == []
    assert await env.call("DELETE", SUPPORT) == (204, "")
    assert await env.call("DELETE", QUEUES + "/billing") == (204, "")
    assert env.changes == ["reload", "reload"]
    status, body = await env.call("GET", SUPPORT)
    assert (status, body) == (404, {"error": "acd.queue_not_found", "message": "no queue 'support'"})


# --- the whole configuration -----------------------------------------------------------------------


async def test_a_yaml_export_imports_back(env: Env) -> None:
    exported = await env.yaml_export()
    document = yaml.safe_load(exported)
    assert [agent["id"] for agent in document["agents"]] == ["alice", "bob", "chloe"]
    assert [queue["name"] for queue in document["queues"]] == ["billing", "support"]
    status, body = await env.call(
        "PUT",
        CONFIG,
        data=exported.replace("name: Alice", "name: Alice Martin"),
        headers={"Content-Type": "application/yaml"},
    )
    assert status == 200
    assert body["agents"][0]["name"] == "Alice Martin"
    assert env.changes == ["reload"]
    assert await env.yaml_export() == exported.replace("name: Alice", "name: Alice Martin")
    status, json_body = await env.call("GET", CONFIG, token=SUPERVISOR)
    assert (status, json_body) == (200, body)


async def test_put_the_whole_configuration_as_json(env: Env) -> None:
    status, body = await env.call(
        "PUT", CONFIG, json={"agents": [{**DANA, "id": "dana"}], "queues": [{"name": "support"}]}
    )
    assert (status, [agent["id"] for agent in body["agents"]], [queue["name"] for queue in body["queues"]]) == (
        200,
        ["dana"],
        ["support"],
    )
    assert env.changes == ["reload"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            "agents: []\nqueues:\n  - {name: support, steps: [{after_s: 60, borrow: [billing]}]}\n",
            ["queue 'support': steps.0.borrow: no queue 'billing'"],
        ),
        ("agents:\n  - {id: x, name: X}\n  - {id: x, name: Y}\nqueues: []\n", ["agents.1.id: 'x' is already agents.0"]),
        ("agents: []\n", ["queues: missing (the document replaces the whole configuration: write [] for none)"]),
        ("- a list\n", ["document: expected a mapping with agents and queues"]),
        ("", ["document: expected a mapping with agents and queues"]),
    ],
)
async def test_a_refused_configuration_is_422_and_changes_nothing(env: Env, body: str, errors: list[str]) -> None:
    before = await env.yaml_export()
    status, answer = await env.call("PUT", CONFIG, data=body, headers={"Content-Type": "application/yaml"})
    assert (status, answer["error"], answer["errors"]) == (422, "acd.config_invalid", errors)
    assert await env.yaml_export() == before
    assert env.changes == []


async def test_bad_yaml_is_refused_with_its_line(env: Env) -> None:
    status, body = await env.call(
        "PUT", CONFIG, data="agents: [a\nqueues: {", headers={"Content-Type": "application/yaml"}
    )
    assert (status, body["error"]) == (422, "acd.config_invalid")
    assert body["errors"][0].startswith("document: not valid YAML (") and "line 2" in body["errors"][0]
    assert env.changes == []


@pytest.mark.parametrize(("method", "path"), [("PUT", ALICE), ("PUT", SUPPORT)])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("- a list", "the body must be a JSON or YAML mapping"),
        (b"\xff\xfe", "the body is not UTF-8 text"),
    ],
)
async def test_a_body_that_is_not_a_mapping_is_400(
    env: Env, method: str, path: str, body: str | bytes, message: str
) -> None:
    assert await env.call(method, path, data=body, headers={"Content-Type": "application/yaml"}) == (
        400,
        {"error": "http.body_invalid", "message": message},
    )
    assert env.changes == []


async def test_a_body_over_256_kib_is_400(env: Env) -> None:
    padding = "#" + "x" * (256 * 1024) + "\n"
    status, body = await env.call(
        "PUT", CONFIG, data=padding + "agents: []\nqueues: []\n", headers={"Content-Type": "application/yaml"}
    )
    assert (status, body) == (400, {"error": "http.body_invalid", "message": "the body is larger than 256 KiB"})
    assert env.changes == []
