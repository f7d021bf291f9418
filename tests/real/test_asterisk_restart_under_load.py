"""Asterisk stops under 200 live calls (cleanly, then killed) and comes back: the server, a real `cti serve`
process, reconnects by itself, lets go of every caller and agent of the calls Asterisk dropped, and the next
call is answered by an agent within seconds.

The 200 calls are Local-channel callers dialled straight into the ACD queue: 20 of them talk to 20 simulated
agents (``Local/<name>@cti-agent-sim`` answer at once and stay on the line), 180 wait with music. Each holds
a FastAGI session of the server. Everything is read from outside, as an admin would: the status route, the
live ACD routes, the call rows, and Asterisk's own channel list.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cti.ami import AmiClient
from cti.db import make_database
from cti.db.models import CallRecord
from cti.settings import DatabaseSettings, Settings
from tests.plugins.asterisk import place_simulated_call, sandbox_command, set_agi_url
from tests.support.server_process import SETTLE_S, ServerProcess, until

pytestmark = pytest.mark.real

CALLS = 200
AGENTS = 20
QUEUE = "support"




@pytest.fixture
async def server(tmp_path: Path, real_settings: Settings, ami: AmiClient) -> AsyncIterator[ServerProcess]:
    """`cti serve` on the configured AGI port, so Asterisk's own CTI_AGI_URL reaches it again after a restart."""
    process = ServerProcess(f"sqlite+aiosqlite:///{tmp_path / 'cti.sqlite3'}", tmp_path / "server.log",
                            agi_port=real_settings.agi.port)
    await process.run_cli("db", "upgrade")
    await process.start()
    await set_agi_url(ami, f"agi://127.0.0.1:{real_settings.agi.port}")
    try:
        yield process
    finally:
        await process.stop()


async def _staff(server: ServerProcess) -> list[str]:
    await server.request_json("PUT", f"/api/acd/queues/{QUEUE}", {
        "name": QUEUE, "skills": {"software": 1}, "ring_timeout_s": 20, "wrap_up_s": 2, "max_wait_s": 1200,
        "announce_every_s": 600}, expect=200)
    agents = [f"load{index:02d}" for index in range(AGENTS)]
    for agent in agents:
        await server.request_json("PUT", f"/api/acd/agents/{agent}", {
            "id": agent, "name": agent.title(), "skills": {"software": 1},
            "endpoint": f"Local/{agent}@cti-agent-sim"}, expect=200)
        await server.request_json("POST", f"/api/acd/agents/{agent}/login", {}, expect=200)
    return agents


async def _agent_states(server: ServerProcess) -> dict[str, str]:
    listing = await server.get_json("/api/acd/live/agents")
    rows = listing["agents"] if isinstance(listing, dict) else listing
    return {row["id"]: row["state"] for row in rows}


async def _open_rows(database_url: str) -> tuple[int, int]:
    """(call rows, of which still open) in the server's database."""
    database = make_database(DatabaseSettings(url=database_url))
    try:
        async with database.session() as session:
            total = await session.scalar(select(func.count()).select_from(CallRecord))
            still_open = await session.scalar(select(func.count()).select_from(CallRecord)
                                              .where(CallRecord.ended_at.is_(None)))
    finally:
        await database.close()
    return int(total or 0), int(still_open or 0)


async def _fill(ami: AmiClient, server: ServerProcess) -> list[str]:
    """200 callers into the queue, paced so Asterisk is not asked for 200 Originates in one burst."""
    callers = [f"557{uuid.uuid4().int % 10**7:07d}" for _ in range(CALLS)]
    for start in range(0, CALLS, 20):
        await asyncio.gather(*(place_simulated_call(ami, QUEUE, caller, hold=600, context="cti-queue")
                               for caller in callers[start:start + 20]))
        await asyncio.sleep(0.2)

    async def all_held() -> bool:
        status = await server.status()
        states = await _agent_states(server)
        return (status["agi"]["active_sessions"] >= CALLS
                and sum(state == "on_call" for state in states.values()) == AGENTS)

    await until(all_held, f"holding {CALLS} calls with {AGENTS} agents talking")
    return callers


async def _new_call_answered(ami: AmiClient, server: ServerProcess) -> None:
    """One more caller: an agent must be talking to it."""
    before = await _agent_states(server)
    assert all(state == "available" for state in before.values()), before
    await place_simulated_call(ami, QUEUE, f"558{uuid.uuid4().int % 10**7:07d}", hold=30, context="cti-queue")

    async def someone_talks() -> bool:
        return "on_call" in (await _agent_states(server)).values()

    await until(someone_talks, "answered by an agent", timeout=30)


@pytest.mark.parametrize("how", ["restart", "crash"])
async def test_asterisk_lost_under_200_calls_frees_everyone_and_the_next_call_is_answered(
    server: ServerProcess, ami: AmiClient, real_settings: Settings, how: str,
) -> None:
    await _staff(server)
    await _fill(ami, server)
    figures: dict[str, Any] = {"how": how, "calls": CALLS, "agents": AGENTS}
    reconnects = (await server.status())["ami"]["reconnects"]

    started = time.monotonic()
    if how == "restart":
        await asyncio.to_thread(sandbox_command, "restart")  # 'core stop now': channels hung up, then a boot
    else:
        await asyncio.to_thread(sandbox_command, "kill")  # SIGKILL: sockets just close, no Hangup events
        await asyncio.to_thread(sandbox_command, "start")
    figures["asterisk_back_s"] = round(time.monotonic() - started, 2)

    async def reconnected() -> bool:
        status = await server.status()
        return bool(status["ami"]["connected"]) and status["ami"]["reconnects"] > reconnects

    async def sessions_gone() -> bool:
        return (await server.status())["agi"]["active_sessions"] == 0

    async def queue_empty() -> bool:
        listing = await server.get_json("/api/acd/live/calls")
        return not (listing["calls"] if isinstance(listing, dict) else listing)

    async def agents_free() -> bool:
        return set((await _agent_states(server)).values()) == {"available"}

    async def rows_closed() -> bool:
        total, still_open = await _open_rows(server.database_url)
        return total >= CALLS and still_open == 0

    for name, check in (("ami_reconnected_s", reconnected), ("sessions_released_s", sessions_gone),
                        ("queue_emptied_s", queue_empty), ("agents_available_s", agents_free),
                        ("call_rows_closed_s", rows_closed)):
        await until(check, name.removesuffix("_s").replace("_", " "))
        figures[name] = round(time.monotonic() - started, 2)  # from the moment Asterisk was stopped
    await ami.wait_connected(SETTLE_S)  # the test's own AMI link (the caller's side) is back too
    await _new_call_answered(ami, server)
    figures["next_call_answered_s"] = round(time.monotonic() - started, 2)
    states = await _agent_states(server)
    assert sorted(states) == sorted(f"load{index:02d}" for index in range(AGENTS))  # nobody logged out
    assert "Traceback" not in server.log_tail(200_000), server.log_tail()
    print("asterisk-restart figures:", json.dumps(figures))
