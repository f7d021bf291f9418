"""Screen pops to 1,000 connected agent desktops: how long from the trigger to the targeted agent's socket.

    python bench/screen_pop.py [--agents 1000] [--calls 300] [--broadcasts 50] [--redis URL] [--json]

One process runs the server side (the real ACD, agents' hub, websocket route and auth middleware, over a SQLite
file and the in-process shared state, or Redis with ``--redis``) and 1,000 websocket clients on loopback, one
per agent. The AMI link is the real adapter talking to a scripted Asterisk peer. For each call:

* ring: from the routing pass that reserves an agent to the ``call_ringing`` card on that agent's socket
  (includes building the card: the caller lookup, open tickets, recent calls, voicemails);
* answer: from the AMI ``DialEnd`` event written by the peer to ``call_answered`` on the agent's socket
  (AMI parsing, the ACD's answer step, the shared state's sequence and pub/sub, the hub, the socket);
* baseline: the same socket sent one message directly (``send_str`` on the server side), no hub, no state.

Then broadcasts (the wallboard's path): from ``broadcast`` to receipt on every one of the 1,000 sockets,
against a baseline loop sending the same text on each socket directly. Times are ``time.perf_counter`` in one
process, so client and server share the clock. Prints the machine, a table, and JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.common import machine, percentile
from cti.acd.calls import QueuedCall
from cti.acd.config import AgentConfig, QueueConfig
from cti.acd.service import AcdService
from cti.acd.shared import AgentBoard
from cti.acd.store import AcdStore
from cti.agents.wiring import build_desktop
from cti.ami import AmiClient
from cti.contacts.directory import CallerDirectory
from cti.db import make_database
from cti.db.base import utcnow
from cti.db.migrate import upgrade_async
from cti.http.app import make_web_app
from cti.settings import (
    AgentsSettings,
    AmiSettings,
    DatabaseSettings,
    SecuritySettings,
    TicketSettings,
)
from cti.state import InMemoryStateBackend, RedisStateBackend, StateBackend
from tests.fakes.ami_peer import AmiPeer
from tickets.service import TicketService

TOKEN = "bench-" + "x" * 32


@dataclass
class Inbox:
    """What every client received: (type, call id or tag) -> perf_counter at receipt."""

    seen: dict[tuple[str, str], dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    waiters: dict[tuple[str, str, str], asyncio.Future[float]] = field(default_factory=dict)

    def got(self, agent: str, kind: str, key: str) -> None:
        now = time.perf_counter()
        self.seen[(kind, key)][agent] = now
        waiter = self.waiters.pop((agent, kind, key), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    def wait(self, agent: str, kind: str, key: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if agent in self.seen.get((kind, key), {}):
            future.set_result(self.seen[(kind, key)][agent])
        else:
            self.waiters[(agent, kind, key)] = future
        return future


async def _client(session: aiohttp.ClientSession, url: str, agent: str, inbox: Inbox, ready: asyncio.Event,
                  counter: list[int], total: int) -> None:
    async with session.ws_connect(f"{url}?agent={agent}", headers={"Authorization": f"Bearer {TOKEN}"},
                                  heartbeat=None, max_msg_size=0) as ws:
        async for message in ws:
            event = json.loads(message.data)
            data = event.get("data") or {}
            if event["type"] == "hello":
                counter[0] += 1
                if counter[0] == total:
                    ready.set()
                continue
            inbox.got(agent, event["type"], str(data.get("call_id") or data.get("tag") or ""))


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _state(redis_url: str | None) -> StateBackend:
    if redis_url is None:
        return InMemoryStateBackend()
    return RedisStateBackend(redis_url, key_prefix=f"bench-{time.time()}:")


async def run(agents: int, calls: int, broadcasts: int, redis_url: str | None) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="cti-bench-pop-"))
    db_settings = DatabaseSettings(url=f"sqlite+aiosqlite:///{folder}/cti.sqlite3")
    await upgrade_async(db_settings)
    db, state, peer = make_database(db_settings), await _state(redis_url), AmiPeer()
    await peer.start()
    peer.script("Redirect", [{"Response": "Success", "Message": "Redirect successful"}])
    ami = AmiClient(AmiSettings(port=peer.port, secret=peer.secret))
    await ami.start()
    await ami.wait_connected(5)
    store = AcdStore(db)
    names = [f"agent-{number:04d}" for number in range(agents)]
    for name in names:
        await store.put_agent(AgentConfig(id=name, name=name, skills={"software": 1}, endpoint=f"PJSIP/{name}"))
    await store.put_queue(QueueConfig(name="support", label="Support", skills={"software": 1}, wrap_up_s=0))
    acd = AcdService(store, AgentBoard(state), state, db, ami, node_id="bench")
    await acd.reload()
    ami.on_event("DialEnd", acd._on_dial_end)
    tickets = TicketService(db, TicketSettings())
    desktop = build_desktop(AgentsSettings(), db=db, state=state, ami=ami, acd=acd, tickets=tickets,
                            directory=CallerDirectory(db, "FR"))
    for name in names:
        await acd.login(name)
    await desktop.start()
    app = make_web_app(SecuritySettings(api_tokens={TOKEN: "admin"}), _no_status)
    desktop.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rss_before = _rss_mib()
    inbox, ready, counter = Inbox(), asyncio.Event(), [0]
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=connector)
    clients = [asyncio.create_task(_client(session, f"http://127.0.0.1:{port}/ws/agent", name, inbox, ready,
                                           counter, agents)) for name in names]
    started = time.perf_counter()
    await asyncio.wait_for(ready.wait(), 120)
    connect_s = time.perf_counter() - started
    rss_connected = _rss_mib()
    written = _watch_server_writes(desktop)
    try:
        ring, answer, baseline, server = await _calls(acd, desktop, peer, inbox, calls, written)
        fanout, fanout_last, fanout_base, fanout_base_last, server_last = await _broadcasts(
            desktop, inbox, broadcasts, agents, written)
    finally:
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        await session.close()
        await runner.cleanup()
        await desktop.stop()
        await ami.stop()
        await peer.close()
        await state.close()
        await db.close()
    return {
        "machine": machine(), "agents": agents, "calls": calls, "broadcasts": broadcasts,
        "state": "redis" if redis_url else "memory", "connect_all_s": round(connect_s, 2),
        "rss_mib": {"before_sockets": round(rss_before, 1), "with_sockets": round(rss_connected, 1),
                    "per_socket_kib": round((rss_connected - rss_before) * 1024 / agents, 1)},
        "ring_ms": _summary(ring), "answer_from_ami_ms": _summary(answer), "baseline_send_ms": _summary(baseline),
        "server_answer_from_ami_ms": _summary(server), "server_broadcast_last_ms": _summary(server_last),
        "broadcast_each_ms": _summary(fanout), "broadcast_last_ms": _summary(fanout_last),
        "baseline_broadcast_each_ms": _summary(fanout_base), "baseline_broadcast_last_ms": _summary(fanout_base_last),
        "ratios_median": {
            "answer_vs_baseline": round(statistics.median(answer) / statistics.median(baseline), 2),
            "broadcast_last_vs_baseline": round(statistics.median(fanout_last)
                                                / statistics.median(fanout_base_last), 2),
        },
    }  # fmt: skip


async def _no_status() -> dict[str, Any]:
    return {"healthy": True}


def _watch_server_writes(desktop: Any) -> dict[tuple[str, str], dict[str, float]]:
    """Server side: when each answered/wallboard frame was written to each agent's socket (the figure the
    target is about; the clients' own parsing, in this same process, comes after)."""
    written: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for agent, outbox in desktop.hub.clients():
        send = outbox._ws.send_str

        async def timed(text: str, compress: Any = None, *, _send: Any = send, _agent: str = agent) -> None:
            await _send(text, compress)
            if '"type":"call_answered"' in text or '"type":"wallboard"' in text:
                event = json.loads(text)
                data = event["data"]
                written[(event["type"], str(data.get("call_id") or data.get("tag")))][_agent] = time.perf_counter()

        outbox._ws.send_str = timed
    return written


async def _calls(acd: AcdService, desktop: Any, peer: AmiPeer, inbox: Inbox, calls: int,
                 written: dict[tuple[str, str], dict[str, float]]
                 ) -> tuple[list[float], list[float], list[float], list[float]]:
    server: list[float] = []
    ring: list[float] = []
    answer: list[float] = []
    baseline: list[float] = []
    for number in range(calls):
        call = QueuedCall(id=f"bench.{number}", channel=f"PJSIP/trunk-{number:06d}", queue="support", priority=0,
                          arrived_at=acd.monotonic(), joined=utcnow(), caller=f"06{number:08d}", called="5551000")
        await acd.enqueue(call)
        started = time.perf_counter()
        await acd._pass()
        agent = call.agent_id
        assert agent is not None, "no agent reserved"
        ring.append((await asyncio.wait_for(inbox.wait(agent, "call_ringing", call.id), 10) - started) * 1000)
        acd.start_dialing(call)
        started = time.perf_counter()
        await peer.emit({"Event": "DialEnd", "Uniqueid": call.id, "DestChannel": f"PJSIP/{agent}-1",
                         "DialStatus": "ANSWER"})
        answer.append((await asyncio.wait_for(inbox.wait(agent, "call_answered", call.id), 10) - started) * 1000)
        server.append((written[("call_answered", call.id)][agent] - started) * 1000)
        baseline.append(await _direct_send(desktop, agent, inbox, number) * 1000)
        await acd.dial_ended(call, "ANSWER")
        await asyncio.wait_for(inbox.wait(agent, "call_ended", call.id), 10)
        await desktop.events.drop_card(agent, call.id)
    return ring, answer, baseline, server


async def _direct_send(desktop: Any, agent: str, inbox: Inbox, number: int) -> float:
    """The floor: one text sent straight on the agent's server-side socket."""
    outbox = next(client for agent_id, client in desktop.hub.clients() if agent_id == agent)
    tag = f"direct-{number}"
    text = json.dumps({"type": "direct", "seq": None, "data": {"tag": tag}})
    started = time.perf_counter()
    await outbox._ws.send_str(text)
    return await asyncio.wait_for(inbox.wait(agent, "direct", tag), 10) - started


async def _broadcasts(desktop: Any, inbox: Inbox, count: int, agents: int,
                      written: dict[tuple[str, str], dict[str, float]]
                      ) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
    server_last: list[float] = []
    each: list[float] = []
    last: list[float] = []
    base_each: list[float] = []
    base_last: list[float] = []
    sockets = [client for _, client in desktop.hub.clients()]
    for number in range(count):
        tag = f"wall-{number}"
        started = time.perf_counter()
        await desktop.events.broadcast("wallboard", {"tag": tag, "waiting": number})
        times = await _all_received(inbox, "wallboard", tag, agents)
        each += [(at - started) * 1000 for at in times]
        last.append((max(times) - started) * 1000)
        server_last.append((max(written[("wallboard", tag)].values()) - started) * 1000)
        tag = f"base-{number}"
        text = json.dumps({"type": "base", "seq": None, "data": {"tag": tag}})
        started = time.perf_counter()
        for outbox in sockets:
            await outbox._ws.send_str(text)
        times = await _all_received(inbox, "base", tag, agents)
        base_each += [(at - started) * 1000 for at in times]
        base_last.append((max(times) - started) * 1000)
    return each, last, base_each, base_last, server_last


async def _all_received(inbox: Inbox, kind: str, tag: str, agents: int) -> list[float]:
    deadline = time.perf_counter() + 30
    while len(inbox.seen.get((kind, tag), {})) < agents:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{kind} {tag}: {len(inbox.seen.get((kind, tag), {}))}/{agents} received")
        await asyncio.sleep(0.001)
    return list(inbox.seen[(kind, tag)].values())


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 0.50), 3), "p99": round(percentile(values, 0.99), 3),
            "max": round(max(values), 3), "n": len(values)}


def _table(result: dict[str, Any]) -> str:
    rows = [("ring (reserve -> card on socket)", "ring_ms"), ("answer (AMI DialEnd -> socket)", "answer_from_ami_ms"),
            ("  server side: answer frame written", "server_answer_from_ami_ms"),
            ("  server side: last broadcast frame", "server_broadcast_last_ms"),
            ("baseline: one direct send", "baseline_send_ms"), ("broadcast: each socket", "broadcast_each_ms"),
            ("broadcast: last socket", "broadcast_last_ms"), ("baseline broadcast: each", "baseline_broadcast_each_ms"),
            ("baseline broadcast: last", "baseline_broadcast_last_ms")]
    lines = [f"{'measure (ms)':38} {'p50':>9} {'p99':>9} {'max':>9} {'n':>7}"]
    for label, key in rows:
        s = result[key]
        lines.append(f"{label:38} {s['p50']:9.3f} {s['p99']:9.3f} {s['max']:9.3f} {s['n']:7d}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--broadcasts", type=int, default=50)
    parser.add_argument("--redis", help="a Redis URL: the shared state and pub/sub go through it")
    parser.add_argument("--json", action="store_true", help="print only the JSON")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    result = asyncio.run(run(args.agents, args.calls, args.broadcasts, args.redis))
    if not args.json:
        print(json.dumps(result["machine"]))
        print(_table(result))
        print(f"connect {args.agents} sockets: {result['connect_all_s']} s; rss {result['rss_mib']}; "
              f"median ratios {result['ratios_median']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
