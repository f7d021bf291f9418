"""One server node holding agents' websockets, in its own process, on a shared Redis and database.

    python -m tests.support.desktop_node REDIS_URL KEY_PREFIX DATABASE_URL TOKEN

It runs what a real node runs for the desktop (the ACD's view of agents, the agents' hub following Redis
pub/sub, the websocket route behind the auth middleware; no AMI, no AGI), prints ``{"port": N}`` once it
listens, and stops when its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from cti.acd.service import AcdService
from cti.acd.shared import AgentBoard
from cti.acd.store import AcdStore
from cti.agents.wiring import Desktop, build_desktop
from cti.ami import AmiClient
from cti.contacts.directory import CallerDirectory
from cti.db import make_database
from cti.http.app import make_web_app
from cti.settings import AgentsSettings, AmiSettings, DatabaseSettings, SecuritySettings, TicketSettings
from cti.state import RedisStateBackend
from tickets.service import TicketService


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@dataclass
class DesktopNode:
    """A node's desktop side: its ACD (not started: passes run by hand), desktop parts and listening port."""

    acd: AcdService
    desktop: Desktop
    port: int
    _runner: web.AppRunner
    _closers: tuple[Callable[[], Awaitable[None]], ...]

    async def close(self) -> None:
        await self._runner.cleanup()
        await self.desktop.stop()
        for close in self._closers:
            await close()


async def start_node(redis_url: str, prefix: str, database_url: str, token: str, node_id: str) -> DesktopNode:
    """What a server node runs for the desktop on a shared Redis and database, an admin ``token`` for clients."""
    state = RedisStateBackend(redis_url, prefix)
    db = make_database(DatabaseSettings(url=database_url))
    acd = AcdService(AcdStore(db), AgentBoard(state), state, db, None, node_id=node_id)
    await acd.reload()
    desktop = build_desktop(AgentsSettings(), db=db, state=state, ami=AmiClient(AmiSettings()), acd=acd,
                            tickets=TicketService(db, TicketSettings()), directory=CallerDirectory(db, "FR"))
    app = make_web_app(SecuritySettings(api_tokens={token: "admin"}), _status)
    desktop.add_routes(app)
    await desktop.start()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return DesktopNode(acd, desktop, runner.addresses[0][1], runner, (state.close, db.close))


async def main(redis_url: str, prefix: str, database_url: str, token: str) -> None:
    node = await start_node(redis_url, prefix, database_url, token, "socket-node")
    print(json.dumps({"port": node.port}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await node.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
