"""REST API for the ACD's configuration: agents, queues, and the whole configuration as one document.

Admins and supervisors edit; agents may read one agent or one queue (their own screen shows them).
Bodies are JSON or YAML (``Content-Type: application/yaml``), ``?format=yaml`` exports YAML. A refusal
answers 422 with ``errors``, one exact reason per line (``steps.1.borrow: no queue 'billng'``); nothing is
saved. After every successful write ``on_change`` is awaited, so the live ACD reloads what was saved.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cti.acd.config import AcdConfigInvalid, dump_agent, dump_queue, parse_agent, parse_queue
from cti.acd.store import AcdStore, AgentNotFound, QueueNotFound, read_yaml
from cti.http.auth import Role, requires
from cti.http.bodies import BodyInvalid, body_text
from cti.http.errors import answers
from cti.ivr.documents import MAX_DOCUMENT_BYTES, dump_yaml

OnChange = Callable[[], Awaitable[None]]
ACD_STORE_KEY: web.AppKey[AcdStore] = web.AppKey("acd_store", AcdStore)
ACD_ON_CHANGE_KEY: web.AppKey[OnChange] = web.AppKey("acd_on_change")
EDITORS: tuple[Role, ...] = ("admin", "supervisor")


def add_config_routes(app: web.Application, store: AcdStore, on_change: OnChange) -> None:
    app[ACD_STORE_KEY] = store
    app[ACD_ON_CHANGE_KEY] = on_change
    app.router.add_get("/api/acd/agents", list_agents)
    app.router.add_get("/api/acd/agents/{id}", get_agent)
    app.router.add_put("/api/acd/agents/{id}", put_agent)
    app.router.add_delete("/api/acd/agents/{id}", delete_agent)
    app.router.add_get("/api/acd/queues", list_queues)
    app.router.add_get("/api/acd/queues/{name}", get_queue)
    app.router.add_put("/api/acd/queues/{name}", put_queue)
    app.router.add_delete("/api/acd/queues/{name}", delete_queue)
    app.router.add_get("/api/acd/config", get_config)
    app.router.add_put("/api/acd/config", put_config)


# The store's exceptions as JSON answers; anything else stays a 500 (a bug).
acd_errors = answers((AcdConfigInvalid, 422), ((AgentNotFound, QueueNotFound), 404), (BodyInvalid, 400))


async def read_document(request: web.Request) -> Any:
    """A JSON or YAML body (JSON is YAML: one parser, the same errors); None when empty."""
    return read_yaml(await body_text(request, MAX_DOCUMENT_BYTES))


async def changed(request: web.Request) -> None:
    await request.app[ACD_ON_CHANGE_KEY]()


def answer(request: web.Request, document: dict[str, Any]) -> web.StreamResponse:
    if request.query.get("format") == "yaml":
        return web.Response(text=dump_yaml(document), content_type="application/yaml")
    return web.json_response(document)


# --- agents ----------------------------------------------------------------------------------------


@requires(*EDITORS)
@acd_errors
async def list_agents(request: web.Request) -> web.StreamResponse:
    agents = await request.app[ACD_STORE_KEY].list_agents()
    return web.json_response({"agents": [dump_agent(agent) for agent in agents]})


@requires(*EDITORS, "agent")
@acd_errors
async def get_agent(request: web.Request) -> web.StreamResponse:
    return answer(request, dump_agent(await request.app[ACD_STORE_KEY].get_agent(request.match_info["id"])))


@requires(*EDITORS)
@acd_errors
async def put_agent(request: web.Request) -> web.StreamResponse:
    """The whole agent; its ``id`` (if given) must be the one in the path."""
    document = _for_path(await read_document(request), "id", request.match_info["id"])
    agent = await request.app[ACD_STORE_KEY].put_agent(parse_agent(document))
    await changed(request)
    return web.json_response(dump_agent(agent))


@requires(*EDITORS)
@acd_errors
async def delete_agent(request: web.Request) -> web.StreamResponse:
    await request.app[ACD_STORE_KEY].delete_agent(request.match_info["id"])
    await changed(request)
    return web.Response(status=204)


# --- queues ----------------------------------------------------------------------------------------


@requires(*EDITORS)
@acd_errors
async def list_queues(request: web.Request) -> web.StreamResponse:
    queues = await request.app[ACD_STORE_KEY].list_queues()
    return web.json_response({"queues": [dump_queue(queue) for queue in queues]})


@requires(*EDITORS, "agent")
@acd_errors
async def get_queue(request: web.Request) -> web.StreamResponse:
    return answer(request, dump_queue(await request.app[ACD_STORE_KEY].get_queue(request.match_info["name"])))


@requires(*EDITORS)
@acd_errors
async def put_queue(request: web.Request) -> web.StreamResponse:
    """The whole queue; its ``name`` (if given) must be the one in the path."""
    document = _for_path(await read_document(request), "name", request.match_info["name"])
    queue = await request.app[ACD_STORE_KEY].put_queue(parse_queue(document))
    await changed(request)
    return web.json_response(dump_queue(queue))


@requires(*EDITORS)
@acd_errors
async def delete_queue(request: web.Request) -> web.StreamResponse:
    """Refused (422) while another queue borrows from it or overflows to it."""
    await request.app[ACD_STORE_KEY].delete_queue(request.match_info["name"])
    await changed(request)
    return web.Response(status=204)


# --- the whole configuration -----------------------------------------------------------------------


@requires(*EDITORS)
@acd_errors
async def get_config(request: web.Request) -> web.StreamResponse:
    return answer(request, await request.app[ACD_STORE_KEY].export_document())


@requires(*EDITORS)
@acd_errors
async def put_config(request: web.Request) -> web.StreamResponse:
    """Replaces every agent and queue with the document's (``{agents: [...], queues: [...]}``)."""
    store = request.app[ACD_STORE_KEY]
    await store.import_document(await read_document(request))
    await changed(request)
    return web.json_response(await store.export_document())


def _for_path(document: Any, key: str, value: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise BodyInvalid("the body must be a JSON or YAML mapping")
    if document.setdefault(key, value) != value:
        raise AcdConfigInvalid([f"{key}: the document is for {document[key]!r}, not {value!r}"])
    return document
