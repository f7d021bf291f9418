"""`cti serve` is killed (SIGKILL) in the middle of an ACD call and started again on the same database: the
caller never hears dead air, the agent does not stay stuck, and the call keeps exactly one row, closed once.

A real server process (``tests/support/server_process.py``) on the local Asterisk: a service number whose flow
enqueues to a queue, one agent ``kim`` whose phone is a simulated one (``Local/slowkim@cti-agent-sim``: rings
``AGENT_RING`` seconds, then answers and stays ``AGENT_HOLD`` seconds), a simulated caller. Everything is read
from outside, as an admin would: the live ACD routes, the call rows, and Asterisk's own AMI events. Shared
state on the in-process backend (the restart seeds agents from the database) and on Redis (the dead node's
keys survive; its heartbeat must expire first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cti.ami import AmiClient
from cti.ami.errors import AmiError
from cti.db import make_database
from cti.db.models import CallRecord
from cti.settings import DatabaseSettings, Settings
from cti.state import RedisStateBackend
from tests.plugins.asterisk import EventLog, set_agi_url
from tests.support.server_process import ServerProcess, until

pytestmark = pytest.mark.real

QUEUE, NUMBER, AGENT = "crash", "5559100", "kim"
RING_TIMEOUT_S = 10




@pytest.fixture(params=["memory", "redis"])
async def server(request: pytest.FixtureRequest, tmp_path: Path, real_settings: Settings, ami: AmiClient,
                 db_settings: DatabaseSettings, redis_url: str, state_key_prefix: str,
                 ) -> AsyncIterator[ServerProcess]:
    """A `cti serve` process with a queue, an agent logged in and a service number enqueueing to the queue."""
    overrides = {"CTI_AMI__RECONNECT_MAX": "2", "CTI_AMI__PING_INTERVAL": "1"}
    if request.param == "redis":
        overrides |= {"CTI_STATE__BACKEND": "redis", "CTI_STATE__REDIS_URL": redis_url,
                      "CTI_STATE__KEY_PREFIX": state_key_prefix}
    url = db_settings.url
    process = ServerProcess(url, tmp_path / "server.log", overrides=overrides)
    await process.run_cli("db", "upgrade")
    await process.start()
    await set_agi_url(ami, process.agi_url)
    try:
        await _configure(process)
        yield process
    finally:
        await process.stop()
        await set_agi_url(ami, f"agi://{real_settings.agi.advertised_host}:{real_settings.agi.port}")
        if request.param == "redis":
            await _drop_keys(redis_url, state_key_prefix)


async def _drop_keys(redis_url: str, prefix: str) -> None:
    backend = RedisStateBackend(redis_url, prefix)
    try:
        for key in await backend.keys(""):
            await backend.delete(key)
    finally:
        await backend.close()


async def _configure(server: ServerProcess) -> None:
    await server.request_json("PUT", f"/api/acd/queues/{QUEUE}", {
        "name": QUEUE, "skills": {"software": 1}, "ring_timeout_s": RING_TIMEOUT_S, "wrap_up_s": 2,
        "max_wait_s": 600, "announce_every_s": 60}, expect=200)
    await server.request_json("PUT", f"/api/acd/agents/{AGENT}", {
        "id": AGENT, "name": "Kim", "skills": {"software": 1}, "endpoint": f"Local/slow{AGENT}@cti-agent-sim"},
        expect=200)
    await server.request_json("POST", f"/api/acd/agents/{AGENT}/login", {}, expect=200)
    await server.request_json("PUT", f"/api/ivr/services/{NUMBER}", {
        "number": NUMBER, "name": "Crash desk", "language": "en",
        "flow": {"start": "queue", "fallback": "message", "nodes": {
            "queue": {"type": "enqueue", "queue": QUEUE, "priority": 0, "overflow": "message"},
            "message": {"type": "voicemail", "reason": "overflow"}}}}, expect=200)


async def _agent(server: ServerProcess) -> dict[str, Any]:
    listing = await server.get_json("/api/acd/live/agents")
    rows = listing["agents"] if isinstance(listing, dict) else listing
    return next(row for row in rows if row["id"] == AGENT)


async def _call(ami: AmiClient, *, ring_s: int, hold_s: int) -> str:
    """A simulated caller dialling the service number; the agent's phone rings ``ring_s`` then talks ``hold_s``
    (inherited by the agent's leg: ``__`` variables cross the Dial)."""
    caller = f"559{uuid.uuid4().int % 10**7:07d}"
    variables = {"SIM_HOLD": "600", "__AGENT_RING": str(ring_s), "__AGENT_HOLD": str(hold_s)}
    await ami.originate(f"Local/{NUMBER}@from-pstn", context="cti-sim", exten="s", priority=1, caller_id=caller,
                        variables=variables, timeout_ms=15_000)
    return caller


async def _rows(server: ServerProcess, caller: str) -> list[CallRecord]:
    database = make_database(DatabaseSettings(url=server.database_url))
    try:
        async with database.session() as session:
            return list(await session.scalars(select(CallRecord).where(CallRecord.caller_number == caller)))
    finally:
        await database.close()


async def _open_rows(server: ServerProcess) -> int:
    database = make_database(DatabaseSettings(url=server.database_url))
    try:
        async with database.session() as session:
            found = await session.scalar(select(func.count()).select_from(CallRecord)
                                         .where(CallRecord.ended_at.is_(None)))
            return int(found or 0)
    finally:
        await database.close()


async def _ringing(server: ServerProcess, ami_events: EventLog) -> str:
    """Wait for the agent to ring (the live route) and for Asterisk to be dialling it; the call's id."""
    async def rings() -> bool:
        return (await _agent(server))["state"] == "ringing"

    await until(rings, "ringing", timeout=30)
    call_id = str((await _agent(server))["call"])
    await ami_events.wait_for("DialBegin", timeout=15, Uniqueid=call_id)
    return call_id


def _contexts(ami_events: EventLog, call_id: str) -> set[str]:
    return {event.get("Context", "") for event in ami_events.matching("Newexten", Uniqueid=call_id)}


async def _hang_up(ami: AmiClient, ami_events: EventLog, call_id: str) -> None:
    channels = {event.get("Channel", "") for event in ami_events.matching("Newexten", Uniqueid=call_id)}
    for channel in channels:
        with contextlib.suppress(AmiError):
            await ami.send_action({"Action": "Hangup", "Channel": channel})


async def _one_closed_row(server: ServerProcess, caller: str) -> CallRecord:
    async def closed() -> bool:
        rows = await _rows(server, caller)
        return bool(rows) and all(row.ended_at is not None for row in rows)

    await until(closed, "the call row closed")
    rows = await _rows(server, caller)
    assert len(rows) == 1, [(row.uniqueid, row.outcome) for row in rows]  # never a second row for the call
    return rows[0]


async def test_killed_while_the_agent_rings(server: ServerProcess, ami: AmiClient, ami_events: EventLog) -> None:
    """The agent's phone rings longer than the ring timeout: after the kill the Dial times out in Asterisk,
    the caller is taken to voicemail (the server is down: the fallback prompt), and hangs up. The restarted
    server frees the agent (no miss) and closes the row as ``interrupted``, once."""
    figures: dict[str, Any] = {"case": "ringing", "state": server.overrides.get("CTI_STATE__BACKEND", "memory"),
                               "database": server.database_url.split(":", 1)[0]}
    caller = await _call(ami, ring_s=60, hold_s=5)
    call_id = await _ringing(server, ami_events)
    await server.kill()
    killed = time.monotonic()

    async def taken_elsewhere() -> bool:  # no dead air: the dialplan takes over from the dead server
        return bool(_contexts(ami_events, call_id) & {"cti-voicemail", "cti-fallback"})

    figures["caller_to_fallback_s"] = round(await until(taken_elsewhere, "sent to voicemail or fallback", 40), 2)
    hangup = await ami_events.wait_for("Hangup", timeout=40, Uniqueid=call_id)  # the fallback prompt hangs up
    assert "cti-fallback" in _contexts(ami_events, call_id), hangup
    assert len(ami_events.matching("BridgeEnter", Uniqueid=call_id)) == 0  # never answered: nobody talked

    await server.start()
    restarted = time.monotonic()

    async def agent_free() -> bool:
        return (await _agent(server))["state"] not in ("ringing", "on_call")

    figures["agent_freed_after_restart_s"] = round(await until(agent_free, "freed"), 2)
    figures["agent_freed_after_kill_s"] = round(time.monotonic() - killed, 2)
    agent = await _agent(server)
    assert (agent["state"], agent["misses"]) == ("available", 0)  # the server failed, not the agent

    row = await _one_closed_row(server, caller)
    figures["row_closed_after_restart_s"] = round(time.monotonic() - restarted, 2)
    assert (row.uniqueid, row.outcome, row.queue) == (call_id, "interrupted", QUEUE)
    ended = row.ended_at
    await asyncio.sleep(6)  # more upkeep passes (one every 5 s) must not touch it again
    assert [r.ended_at for r in await _rows(server, caller)] == [ended]
    assert await _open_rows(server) == 0
    assert "Traceback" not in server.log_tail(200_000).split("===== start 2 =====")[-1], server.log_tail()
    print("server-killed figures:", json.dumps(figures))


async def test_killed_while_the_agent_talks(server: ServerProcess, ami: AmiClient, ami_events: EventLog) -> None:
    """The bridge outlives the server: after the restart the agent stays on_call while it lasts, then wraps up;
    the caller goes on to voicemail on the restarted server, which keeps the call's one row."""
    figures: dict[str, Any] = {"case": "on_call", "state": server.overrides.get("CTI_STATE__BACKEND", "memory"),
                               "database": server.database_url.split(":", 1)[0]}
    hold_s = 30
    caller = await _call(ami, ring_s=1, hold_s=hold_s)
    call_id = await _ringing(server, ami_events)
    await ami_events.wait_for("BridgeEnter", timeout=20, Uniqueid=call_id)
    bridged = time.monotonic()

    async def talking() -> bool:
        return (await _agent(server))["state"] == "on_call"

    await until(talking, "on_call", timeout=10)
    await server.kill()
    await server.start()

    async def ami_up() -> bool:
        return bool((await server.status())["ami"]["connected"])

    await until(ami_up, "connected to AMI", timeout=30)
    samples = []
    while time.monotonic() < bridged + hold_s - 5 and not ami_events.matching("BridgeLeave", Uniqueid=call_id):
        samples.append((await _agent(server))["state"])
        await asyncio.sleep(0.5)
    assert samples and set(samples) == {"on_call"}, samples  # still talking: never freed on a guess

    await ami_events.wait_for("BridgeLeave", timeout=hold_s + 20, Uniqueid=call_id)
    left = time.monotonic()

    async def agent_free() -> bool:
        return (await _agent(server))["state"] not in ("ringing", "on_call")

    await until(agent_free, "freed")
    figures["agent_freed_after_bridge_end_s"] = round(time.monotonic() - left, 2)

    async def in_voicemail() -> bool:  # the agent hung up: the dialplan takes the caller on, no dead air
        return "cti-voicemail" in _contexts(ami_events, call_id)

    await until(in_voicemail, "sent to voicemail", timeout=20)
    await _hang_up(ami, ami_events, call_id)
    row = await _one_closed_row(server, caller)
    assert row.uniqueid == call_id and row.outcome != "interrupted"  # closed by the voicemail script
    assert row.queue == QUEUE and row.agent_id == AGENT
    assert "Traceback" not in server.log_tail(200_000).split("===== start 2 =====")[-1], server.log_tail()
    print("server-killed figures:", json.dumps(figures))
