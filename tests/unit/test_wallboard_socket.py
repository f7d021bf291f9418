"""The wallboard's feed and socket (SQLite and PostgreSQL): snapshots published through the shared state and
merged per node, the view after ACD changes, ``/ws/wallboard`` (snapshot then updates) and the page, with roles."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.db import Database
from cti.http.app import make_web_app
from cti.settings import SecuritySettings, SupervisionSettings
from cti.state import InMemoryStateBackend, StateUnavailable
from cti.supervision.wallboard import wallboard_page, wallboard_socket
from cti.supervision.wallboard_feed import FEED_KEY, NODE_TIMEOUT_S, WallboardFeed
from tests.support.acd import Desk, make_desk

ADMIN, SUPERVISOR, AGENT = "a" * 32, "s" * 32, "g" * 32
SETTINGS = SupervisionSettings(occupancy_max=100)

Client = TestClient[web.Request, web.Application]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _until(check: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - the feed works in its own tasks
            await asyncio.sleep(0.02)


def _waiting(view: dict[str, Any], queue: str = "support") -> int:
    return next((q["waiting"] for q in view["queues"] if q["name"] == queue), -1)


@pytest.fixture
async def desk(database: Database) -> Desk:
    return await make_desk(database)


async def test_two_nodes_see_each_others_callers_through_the_shared_state(database: Database) -> None:
    state = InMemoryStateBackend()
    node_a, node_b = await make_desk(database, state=state), await make_desk(database, state=state)
    node_b.acd.node_id = "node-b"
    clock = Clock()
    feed_a = WallboardFeed(node_a.acd, database, state, SETTINGS, interval_s=3600, monotonic=clock)
    feed_b = WallboardFeed(node_b.acd, database, state, SETTINGS, interval_s=3600)
    await feed_a.start()
    await feed_b.start()
    try:
        await node_a.join()
        await node_b.join(uniqueid="1732350000.99")
        await node_b.join(uniqueid="1732350000.98")
        await feed_a.publish()
        await feed_b.publish()
        await _until(lambda: _waiting(feed_a.view()) == 3 and _waiting(feed_b.view()) == 3)
        assert sorted(feed_a.view()["nodes"]) == ["node-b", "node-test"]
        await feed_b.stop()
        await asyncio.sleep(0.05)  # anything node b had published is in by now
        clock.now += NODE_TIMEOUT_S + 1  # node b fell silent: its callers leave this node's view
        await feed_a.publish()
        await _until(lambda: feed_a.view()["nodes"] == ["node-test"])
        assert _waiting(feed_a.view()) == 1
    finally:
        await feed_a.stop()
        await feed_b.stop()


class DownState(InMemoryStateBackend):
    async def publish(self, channel: str, message: str) -> None:
        raise StateUnavailable("connection refused")


async def test_with_the_shared_state_down_a_node_shows_its_own_callers(desk: Desk, database: Database) -> None:
    feed = WallboardFeed(desk.acd, database, DownState(), SETTINGS)
    await desk.join()
    snapshot = await feed.publish()
    assert snapshot["queues"]["support"]["waiting"] == 1
    assert feed.view()["nodes"] == ["node-test"] and _waiting(feed.view()) == 1


async def test_a_call_ending_updates_todays_figures_at_once(desk: Desk, database: Database) -> None:
    feed = WallboardFeed(desk.acd, database, desk.state, SETTINGS, interval_s=3600)
    await feed.start()
    try:
        await feed.publish()
        await _until(lambda: _waiting(feed.view()) == 0)
        before = next(q for q in feed.view()["queues"] if q["name"] == "support")
        assert before["answered"] == 0
        await desk.acd.login("alice")
        call = await desk.join()
        await desk.route()
        await desk.connect(call, talk_s=42)  # answered, then over: the ACD tells its listeners, the feed among them

        def answered() -> bool:
            support = next(q for q in feed.view()["queues"] if q["name"] == "support")
            return bool(support["answered"] == 1 and support["aht_s"] == 42.0)

        await _until(answered)
    finally:
        await feed.stop()
    assert feed not in desk.acd.listeners


# --- the routes ---------------------------------------------------------------------------------------------


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@pytest.fixture
async def client(desk: Desk, database: Database) -> AsyncIterator[Client]:
    feed = WallboardFeed(desk.acd, database, desk.state, SETTINGS, interval_s=0.2)
    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", SUPERVISOR: "supervisor", AGENT: "agent"}), _status)
    app[FEED_KEY] = feed
    app.router.add_get("/supervision/wallboard", wallboard_page)
    app.router.add_get("/ws/wallboard", wallboard_socket)
    await feed.start()
    try:
        async with TestClient(TestServer(app)) as test_client:
            yield test_client
    finally:
        await feed.stop()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _next_view(ws: aiohttp.ClientWebSocketResponse, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            message = json.loads((await ws.receive()).data)
            assert message["type"] == "update"
            if check(message["data"]):
                return message["data"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("token", [ADMIN, SUPERVISOR])
async def test_the_socket_sends_a_snapshot_then_updates(client: Client, desk: Desk, token: str) -> None:
    await _until(lambda: client.app[FEED_KEY].view()["nodes"] == ["node-test"])
    async with client.ws_connect("/ws/wallboard", headers=_auth(token)) as ws:
        first = json.loads((await ws.receive()).data)
        assert first["type"] == "snapshot"
        assert _waiting(first["data"]) == 0 and first["data"]["thresholds"]["occupancy_max"] == 100
        await desk.acd.login("bob")
        await desk.acd.pause("bob", "training")
        await desk.join()
        view = await _next_view(ws, lambda data: _waiting(data) == 1)
        assert view["agents"]["pause_reasons"] == {"training": 1}
        await ws.send_str("anything")  # ignored: the wallboard only listens
        await _next_view(ws, lambda data: True)


async def test_agents_and_strangers_cannot_open_the_socket(client: Client) -> None:
    for headers, status in (({}, 401), (_auth(AGENT), 403)):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws/wallboard", headers=headers)
        assert refused.value.status == status


async def test_the_page_carries_the_first_view_and_its_script(client: Client, desk: Desk) -> None:
    await desk.join()
    await client.app[FEED_KEY].publish()
    await _until(lambda: _waiting(client.app[FEED_KEY].view()) == 1)
    response = await client.get("/supervision/wallboard", headers=_auth(SUPERVISOR))
    assert response.status == 200
    html = await response.text()
    assert '<script src="/static/supervision/wallboard.js" defer></script>' in html
    assert "<script>" not in html and "style=" not in html
    assert 'aria-current="page">Wallboard' in html.replace("\n", "")
    found = re.search(r'<script type="application/json" id="wallboard-config">(.*?)</script>', html, re.S)
    assert found is not None
    config = json.loads(found.group(1))
    assert config["socket"] == "/ws/wallboard" and _waiting(config["view"]) == 1
    assert config["messages"]["wall.state.paused"] == "Paused"
    assert (await client.get("/supervision/wallboard", headers=_auth(AGENT))).status == 403
    anonymous = await client.get("/supervision/wallboard", allow_redirects=False)
    assert anonymous.status == 303
