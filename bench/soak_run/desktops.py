"""The simulated agents' desktops on ``/ws/agent``: each sets the outcome of every call it sees end."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support.server_process import ServerProcess


@dataclass
class Desktops:
    """Every support agent's desktop open on ``/ws/agent`` (the admin token names the agent): after each call the
    agent sets its outcome, as agents do. Without that the ended cards stay in the shared state (4 h)."""

    server: ServerProcess
    agents: list[str]
    events: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    async def run(self) -> None:
        await asyncio.gather(*(self._desk(agent) for agent in self.agents))

    async def _desk(self, agent: str) -> None:
        headers = {"Authorization": f"Bearer {self.server.token}"}
        async with aiohttp.ClientSession(headers=headers) as http, http.ws_connect(
                f"{self.server.base_url}/ws/agent?agent={agent}") as socket:
            async for message in socket:
                if message.type is aiohttp.WSMsgType.TEXT:
                    await self._handle(socket, json.loads(message.data))
        self.errors.append(f"{agent}: desktop socket closed by the server")

    async def _handle(self, socket: aiohttp.ClientWebSocketResponse, event: dict[str, Any]) -> None:
        self.events[event["type"]] += 1
        data = event["data"]
        if event["type"] == "call_ended":
            await socket.send_json({"id": data["call_id"], "cmd": "set_outcome",
                                    "args": {"call_id": data["call_id"], "outcome": "resolved"}})
        elif event["type"] == "reply" and not data["ok"]:
            self.errors.append(f"{event['agent_id']}: {data['reply_to']} {data.get('error')} {data.get('message')}")
