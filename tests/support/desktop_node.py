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
from typing import Any

from aiohttp import web

from cti.acd.service import AcdService
from cti.acd.shared import AgentBoard
from cti.acd.store import AcdStore
from cti.agents.wiring import build_desktop
from cti.ami import AmiClient
from cti.contacts.directory import CallerDirectory
from cti.db import make_database
from cti.http.app import make_web_app
from cti.settings import AgentsSettings, AmiSettings, DatabaseSettings, SecuritySettings, TicketSettings
from cti.state import RedisStateBackend
from tickets.service import TicketService


async def _status() -> dict[str, Any]:
    return {"healthy": True}


async def main(redis_url: str, prefix: str, database_url: str, token: str) -> None:
    state = RedisStateBackend(redis_url, prefix)
    db = make_database(DatabaseSettings(url=database_url))
    acd = AcdService(AcdStore(db), AgentBoard(state), state, db, None, node_id="socket-node")
    await acd.reload()
    desktop = build_desktop(AgentsSettings(), db=db, state=state, ami=AmiClient(AmiSettings()), acd=acd,
                            tickets=TicketService(db, TicketSettings()), directory=CallerDirectory(db, "FR"))
    app = make_web_app(SecuritySettings(api_tokens={token: "admin"}), _status)
    desktop.add_routes(app)
    await desktop.start()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(json.dumps({"port": runner.addresses[0][1]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()
    await desktop.stop()
    await state.close()
    await db.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
