"""Two server processes on one Redis: a pop raised by the node that holds the caller reaches the agent's
socket on the other node, and a desktop that reconnects (to either node, on the numbering's stream both
nodes share) gets what it missed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cti.acd.calls import QueuedCall
from cti.acd.store import AcdStore
from cti.db import make_database
from cti.db.base import utcnow
from cti.db.migrate import upgrade_async
from cti.settings import DatabaseSettings
from tests.support.acd import agent, queue
from tests.support.desktop_node import DesktopNode, start_node

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "two-nodes-" + "t" * 24


@pytest.fixture
async def socket_node(tmp_path: Path, redis_url: str, state_key_prefix: str) -> AsyncIterator[int]:
    """The other node, in its own process: it holds the agent's websocket."""
    database = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/cti.sqlite3")
    await upgrade_async(database)
    store_db = make_database(database)
    store = AcdStore(store_db)
    await store.put_queue(queue("support"))
    await store.put_agent(agent("alice", "PJSIP/agent1", software=5))
    await store_db.close()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.desktop_node", redis_url, state_key_prefix, database.url, TOKEN,
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stdin is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    if not line:
        pytest.fail(f"the socket node died: {(await process.stderr.read()).decode() if process.stderr else ''}")
    yield int(json.loads(line)["port"])
    process.stdin.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 10)
    if process.returncode is None:
        process.kill()
        await process.wait()


@pytest.fixture
async def caller_node(tmp_path: Path, redis_url: str, state_key_prefix: str,
                      socket_node: int) -> AsyncIterator[DesktopNode]:
    """This process: the node whose AGI session holds the caller (its ACD rings the agent)."""
    node = await start_node(redis_url, state_key_prefix, f"sqlite+aiosqlite:///{tmp_path}/cti.sqlite3", TOKEN,
                            "caller-node")
    yield node
    await node.close()


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(ws.receive(), 10)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        event: dict[str, Any] = json.loads(message.data)
        if event["type"] == kind:
            return event


async def _connect(session: aiohttp.ClientSession, port: int, since: int | None = None, stream: str = ""
                   ) -> aiohttp.ClientWebSocketResponse:
    query = {"agent": "alice"} | ({} if since is None else {"since": str(since), "stream": stream})
    return await session.ws_connect(f"http://127.0.0.1:{port}/ws/agent", params=query,
                                    headers={"Authorization": f"Bearer {TOKEN}"})


async def test_a_pop_crosses_to_the_node_holding_the_agents_socket_and_resumes_on_either_node(
    caller_node: DesktopNode, socket_node: int
) -> None:
    acd, desktop, caller_port = caller_node.acd, caller_node.desktop, caller_node.port
    await acd.login("alice")
    async with aiohttp.ClientSession() as session:
        ws = await _connect(session, socket_node)
        hello = await _next(ws, "hello")
        assert hello["data"]["status"]["state"] == "available" and hello["data"]["cards"] == []
        stream = hello["data"]["stream"]
        call = QueuedCall(id="1732350000.77", channel="PJSIP/trunk-0077", queue="support", priority=0,
                          arrived_at=acd.monotonic(), joined=utcnow(), caller="0612345678", called="5551000")
        await acd.enqueue(call)
        await acd._pass()
        assert call.agent_id == "alice"
        ringing = await _next(ws, "call_ringing")  # raised on this process's node, received on the other's socket
        assert ringing["data"]["call_id"] == call.id and ringing["data"]["caller"]["number"] == "+33612345678"
        assert ringing["data"]["queue"] == "support" and ringing["seq"] is not None
        await ws.close()

        acd.start_dialing(call)
        await acd.answered(call)  # while the desktop is away
        for _ in range(200):  # the pop's answer step runs in the background: wait until it was published
            if await desktop.events.last_seq("alice") > ringing["seq"]:
                break
            await asyncio.sleep(0.01)
        for port in (socket_node, caller_port):  # either node kept the event for the window
            again = await _connect(session, port, since=ringing["seq"], stream=stream)
            hello = await _next(again, "hello")
            assert (hello["data"]["stream"], hello["data"]["resumed"], hello["data"]["replayed"]) == (stream, True, 1)
            answered = await _next(again, "call_answered")
            assert answered["data"]["call_id"] == call.id and answered["seq"] == ringing["seq"] + 1
            assert [card["status"] for card in hello["data"]["cards"]] == ["answered"]
            await again.close()
