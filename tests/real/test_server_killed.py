"""`cti serve` is killed (SIGKILL) in the middle of an ACD call and started again on the same database: the
caller never hears dead air, the agent does not stay stuck, and the call keeps exactly one row, closed once.

A real server process (``tests/support/server_process.py``) on the local Asterisk: a service number whose flow
enqueues to a queue, one agent ``kim`` whose phone is a simulated one (``Local/slowkim@cti-agent-sim``: rings
``AGENT_RING`` seconds, then answers and stays ``AGENT_HOLD`` seconds), a simulated caller. Everything is read
from outside, as an admin would: the live ACD routes, the call rows, and Asterisk's own AMI events; and as the
agent sees it: two tabs of kim's desktop, logged in, on ``/ws/agent``, that reconnect as ``desktop.js`` does after
the restart (``?since=&stream=``; one at once, one once the recovery is over), and an integration on kim's events
with the admin API token (it outlives the process), reconnecting once the recovery is over. Shared state on the
in-process backend (the restart seeds agents from the database; the sessions, the cards and the event numbering,
its stream with it, die with the process) and on Redis (the dead node's keys survive, sessions, cards and the
numbering's stream too; its heartbeat must expire first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
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
PASSWORD = f"killed-{uuid.uuid4().hex}"  # kim's login to her desktop
CALL_EVENTS = ("call_ringing", "call_answered", "call_ended", "call_withdrawn", "call_closed", "call_updated")


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


@dataclass
class Tab:
    """One browser tab of kim's desktop: logged in on the login form (the session cookie), ``/ws/agent`` opened
    as ``desktop.js`` opens it (the cookie, the page's Origin, ``?since=`` the last sequence number seen and
    ``&stream=`` the numbering it was seen on). With ``token``, an integration instead: the admin API token names
    kim (``?agent=``) and needs no login. The screen follows the protocol of ``cti.agents.ws``: a ``hello`` that
    is not ``resumed`` replaces the cards, the numbering and its stream; a resumed one keeps them and the replayed
    events that follow apply; an event numbered at or below the last one seen is skipped. ``events``: every
    message the server sent, across connections."""

    server: ServerProcess
    token: str | None = None
    last_seq: int | None = None
    stream: str | None = None
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    hellos: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # handshakes refused (HTTP status): the session was gone
    _http: aiohttp.ClientSession | None = None
    _reader: asyncio.Task[None] | None = None

    async def open_page(self) -> dict[str, Any]:
        """Log in and load the desktop afresh (no number, no card); the ``hello``'s data."""
        await self.close()
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # unsafe: the host is an IP
        if self.token is None:
            form = {"username": AGENT, "password": PASSWORD, "next": "/agent"}
            async with self._http.post(f"{self.server.base_url}/login", data=form, allow_redirects=False) as answer:
                assert answer.status == 303, (answer.status, await answer.text())
        self.last_seq, self.stream, self.cards = None, None, {}
        return await self._connect()

    async def reconnect(self) -> dict[str, Any]:
        """What desktop.js does once the server answers again: reopen with ``?since=``; a refused handshake
        whose session is gone (``/api/auth/me`` says 401) sends the agent to the login form, then a fresh page."""
        assert self._http is not None
        try:
            return await self._connect()
        except aiohttp.WSServerHandshakeError as exc:
            self.refused.append(exc.status)
        async with self._http.get(f"{self.server.base_url}/api/auth/me") as me:
            assert me.status == 401, me.status
        return await self.open_page()

    async def lost(self) -> None:
        """The socket ended (the server died): nothing changes the screen until a reconnect."""
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), 10)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._http is not None:
            await self._http.close()
        self._reader = self._http = None

    def of(self, kind: str, call_id: str) -> list[dict[str, Any]]:
        """The events of ``kind`` about ``call_id`` the server sent (whole envelopes: ``seq`` matters here)."""
        return [event for event in self.events if event["type"] == kind and event["data"].get("call_id") == call_id]

    async def wait_for(self, kind: str, call_id: str, timeout: float = 30) -> dict[str, Any]:
        async def arrived() -> bool:
            return bool(self.of(kind, call_id))

        await until(arrived, f"{kind} of call {call_id} on the desktop", timeout)
        return self.of(kind, call_id)[0]

    async def _connect(self) -> dict[str, Any]:
        assert self._http is not None
        if self._reader is not None:
            await self.lost()
        query = {} if self.token is None else {"agent": AGENT}
        if self.last_seq is not None and self.stream:
            query |= {"since": str(self.last_seq), "stream": self.stream}
        headers = {"Origin": self.server.base_url} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        socket = await self._http.ws_connect(f"{self.server.base_url}/ws/agent", params=query, headers=headers)
        message = await socket.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        self._receive(json.loads(message.data))
        assert self.events[-1]["type"] == "hello", self.events[-1]
        self._reader = asyncio.create_task(self._read(socket))
        return self.hellos[-1]

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in socket:
            if message.type is aiohttp.WSMsgType.TEXT:
                self._receive(json.loads(message.data))

    def _receive(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        seq, data, kind = event.get("seq"), event.get("data") or {}, event["type"]
        if seq is not None:
            if self.last_seq is not None and seq <= self.last_seq:
                return  # already shown (a replay overlap)
            self.last_seq = seq
        if kind == "hello":
            self.hellos.append(data)
            if not data["resumed"]:
                self.last_seq, self.stream = data["last_seq"], data["stream"]
                self.cards = {card["call_id"]: dict(card) for card in data["cards"]}
        elif kind in ("call_ringing", "call_updated"):
            self.cards[data["call_id"]] = dict(data)
        elif kind in ("call_answered", "call_ended") and data["call_id"] in self.cards:
            self.cards[data["call_id"]] = {**self.cards[data["call_id"]], **data, "status": kind.removeprefix("call_")}
        elif kind in ("call_withdrawn", "call_closed"):
            self.cards.pop(data["call_id"], None)


@pytest.fixture
async def tabs(server: ServerProcess) -> AsyncIterator[list[Tab]]:
    """Kim's login (a user linked to the agent), two tabs of her desktop and an integration on her events
    (the admin API token), all open before the call."""
    await server.request_json("POST", "/api/users", {"username": AGENT, "password": PASSWORD, "role": "agent",
                                                     "agent_id": AGENT}, expect=201)
    opened = [Tab(server), Tab(server), Tab(server, token=server.token)]
    try:
        for tab in opened:
            hello = await tab.open_page()
            assert (hello["status"]["state"], hello["cards"]) == ("available", []), hello
        yield opened
    finally:
        for tab in opened:
            await tab.close()


def _call_events(tab: Tab, call_id: str) -> list[tuple[str, int | None, str]]:
    """What a tab was told about the call: (type, seq, status or reason), in order, for the figures."""
    return [(event["type"], event["seq"], event["data"].get("status") or event["data"].get("reason") or "")
            for event in tab.events if event["type"] in CALL_EVENTS and event["data"].get("call_id") == call_id]


def _backend(server: ServerProcess) -> str:
    return server.overrides.get("CTI_STATE__BACKEND", "memory")


async def _lose_server(server: ServerProcess, tabs: list[Tab], call_id: str, status: str) -> int:
    """SIGKILL the server: every tab loses its socket still showing the call ``status``; the last sequence
    number the tabs saw (the call's last event), which their reconnects send as ``?since=``."""
    await server.kill()
    for tab in tabs:
        await tab.lost()
        assert tab.cards[call_id]["status"] == status, tab.cards
    seen = tabs[0].last_seq
    assert seen is not None and [tab.last_seq for tab in tabs] == [seen] * len(tabs)
    assert seen == max(event["seq"] for event in tabs[0].events if event["seq"] is not None)
    return seen


def _assert_reconnected(server: ServerProcess, tab: Tab, hello: dict[str, Any]) -> None:
    """On Redis the session and the numbering's stream outlived the server: the tab resumed on its socket. In
    memory the session died with the process: the handshake was refused, the agent logged in again and got a
    fresh desktop; the integration's token still opened the socket, but its ``since`` is from a numbering that
    started over (another stream): not resumed, it starts from the snapshot."""
    before = tab.hellos[-2]["stream"]
    if _backend(server) == "redis":
        assert (tab.refused, hello["stream"]) == ([], before), (tab.refused, hello)
    else:
        refused = [] if tab.token else [401]
        assert (tab.refused, hello["resumed"]) == (refused, False), (tab.refused, hello)
        assert hello["stream"] != before, hello


async def _off_screen(tabs: list[Tab], call_id: str) -> None:
    """Give the last live events a moment to arrive: until no tab shows the call ringing or answered (bounded;
    the assertions that follow say what is wrong if that never happens)."""
    async def over() -> bool:
        return all(tab.cards.get(call_id, {}).get("status") not in ("ringing", "answered") for tab in tabs)

    with contextlib.suppress(AssertionError):
        await until(over, "off the desktop", timeout=10)


def _desktop_figures(tabs: list[Tab], call_id: str, seen: int) -> dict[str, Any]:
    """How each tab was greeted after the restart and what it was told of the call (when the early tab got
    there, the recovery may or may not have run)."""
    def greeting(hello: dict[str, Any]) -> dict[str, Any]:
        return {key: hello[key] for key in ("resumed", "replayed", "last_seq")} | {"cards": len(hello["cards"])}

    return {"since": seen, "greeted": [greeting(tab.hellos[-1]) for tab in tabs],
            "told": [_call_events(tab, call_id) for tab in tabs]}


def _assert_ring_withdrawn(server: ServerProcess, tabs: list[Tab], call_id: str, seen: int) -> None:
    """After the recovery no tab shows the call. On Redis the kept card was dropped and the withdrawal
    (``interrupted``) numbered right after what the desktop saw: a resumed tab was replayed it. In memory the
    card and the numbering died with the process: the withdrawal is the restarted one's first event for kim."""
    late = tabs[1].hellos[-1]
    for tab in tabs:
        assert call_id not in tab.cards, (tab.cards.get(call_id), _call_events(tab, call_id), tab.hellos[-1])
    assert late["cards"] == [], late["cards"]
    withdrawn = [event for tab in tabs for event in tab.of("call_withdrawn", call_id)]
    assert all(event["data"] == {"call_id": call_id, "reason": "interrupted"} for event in withdrawn), withdrawn
    if _backend(server) == "redis":
        assert {event["seq"] for event in withdrawn} <= {seen + 1} and late["last_seq"] == seen + 1, withdrawn
        assert late["resumed"] == (late["replayed"] == 1), late  # replayed, unless the hub subscribed after it
    else:
        assert late["last_seq"] == 1 and {event["seq"] for event in withdrawn} <= {1}, (late, withdrawn)


def _assert_still_talking_on_screen(server: ServerProcess, early: dict[str, Any], call_id: str, seen: int) -> None:
    """Just after the restart, while the bridge lasts: on Redis the answered card survived the kill and nothing
    was missed. In memory the restarted node has no card; its numbering starts again (a ``call_answered`` the
    recovery sent if the database still had kim ringing: the kill may beat that write)."""
    if _backend(server) == "redis":
        assert [(card["call_id"], card["status"]) for card in early["cards"]] == [(call_id, "answered")], early
        assert (early["last_seq"], early["resumed"], early["replayed"]) == (seen, True, 0), early
    else:
        assert early["cards"] == [] and early["last_seq"] in (0, 1), early


def _assert_talk_ended(server: ServerProcess, tabs: list[Tab], call_id: str, seen: int) -> None:
    """Once the bridge is over the recovery ends the call on the desktop with no talk time (nobody timed it):
    on Redis the card stays, ``ended``, for the outcome (the late tab was replayed the end); in memory there is
    no card to end: the early tab is told, the late one starts from the snapshot."""
    late = tabs[1].hellos[-1]
    told = tabs if _backend(server) == "redis" else tabs[:1]
    for tab in told:
        [ended] = tab.of("call_ended", call_id)
        assert set(ended["data"]) == {"call_id", "ended_at"}, ended  # no talk_s: not known
    if _backend(server) == "redis":
        assert [tab.of("call_ended", call_id)[0]["seq"] for tab in tabs] == [seen + 1] * len(tabs)
        for tab in tabs:
            card = tab.cards[call_id]
            assert (card["status"], "talk_s" in card) == ("ended", False), card
        [card] = late["cards"]
        assert (card["call_id"], card["status"], "talk_s" in card) == (call_id, "ended", False), card
        assert (late["last_seq"], late["resumed"], late["replayed"]) == (seen + 1, True, 1), late
    else:
        for tab in tabs:
            assert call_id not in tab.cards, (tab.cards.get(call_id), _call_events(tab, call_id))
        assert (late["cards"], late["last_seq"]) == ([], tabs[0].of("call_ended", call_id)[0]["seq"]), late


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


async def test_killed_while_the_agent_rings(server: ServerProcess, ami: AmiClient, ami_events: EventLog,
                                            tabs: list[Tab]) -> None:
    """The agent's phone rings longer than the ring timeout: after the kill the Dial times out in Asterisk,
    the caller is taken to voicemail (the server is down: the fallback prompt), and hangs up. The restarted
    server frees the agent (no miss) and closes the row as ``interrupted``, once; the desktop, which showed the
    call ringing, no longer shows it."""
    figures: dict[str, Any] = {"case": "ringing", "state": server.overrides.get("CTI_STATE__BACKEND", "memory"),
                               "database": server.database_url.split(":", 1)[0]}
    caller = await _call(ami, ring_s=60, hold_s=5)
    call_id = await _ringing(server, ami_events)
    for tab in tabs:
        card = (await tab.wait_for("call_ringing", call_id))["data"]
        assert (card["status"], card["queue"], card["agent_id"]) == ("ringing", QUEUE, AGENT), card
    seen = await _lose_server(server, tabs, call_id, "ringing")
    killed = time.monotonic()

    async def taken_elsewhere() -> bool:  # no dead air: the dialplan takes over from the dead server
        return bool(_contexts(ami_events, call_id) & {"cti-voicemail", "cti-fallback"})

    figures["caller_to_fallback_s"] = round(await until(taken_elsewhere, "sent to voicemail or fallback", 40), 2)
    hangup = await ami_events.wait_for("Hangup", timeout=40, Uniqueid=call_id)  # the fallback prompt hangs up
    assert "cti-fallback" in _contexts(ami_events, call_id), hangup
    assert len(ami_events.matching("BridgeEnter", Uniqueid=call_id)) == 0  # never answered: nobody talked

    await server.start()
    restarted = time.monotonic()
    _assert_reconnected(server, tabs[0], await tabs[0].reconnect())  # the desktop's retry, at once

    async def agent_free() -> bool:
        return (await _agent(server))["state"] not in ("ringing", "on_call")

    figures["agent_freed_after_restart_s"] = round(await until(agent_free, "freed"), 2)
    figures["agent_freed_after_kill_s"] = round(time.monotonic() - killed, 2)
    agent = await _agent(server)
    assert (agent["state"], agent["misses"]) == ("available", 0)  # the server failed, not the agent

    row = await _one_closed_row(server, caller)
    figures["row_closed_after_restart_s"] = round(time.monotonic() - restarted, 2)
    assert (row.uniqueid, row.outcome, row.queue) == (call_id, "interrupted", QUEUE)
    for tab in tabs[1:]:  # a retry once the recovery was over: the withdrawal is numbered after the restart
        _assert_reconnected(server, tab, await tab.reconnect())
    await _off_screen(tabs, call_id)
    figures["desktop"] = _desktop_figures(tabs, call_id, seen)
    _assert_ring_withdrawn(server, tabs, call_id, seen)
    ended = row.ended_at
    await asyncio.sleep(6)  # more upkeep passes (one every 5 s) must not touch it again
    assert [r.ended_at for r in await _rows(server, caller)] == [ended]
    assert await _open_rows(server) == 0
    assert "Traceback" not in server.log_tail(200_000).split("===== start 2 =====")[-1], server.log_tail()
    print("server-killed figures:", json.dumps(figures))


async def test_killed_while_the_agent_talks(server: ServerProcess, ami: AmiClient, ami_events: EventLog,
                                            tabs: list[Tab]) -> None:
    """The bridge outlives the server: after the restart the agent stays on_call while it lasts, then wraps up;
    the caller goes on to voicemail on the restarted server, which keeps the call's one row. The desktop, which
    showed the call answered, shows it ended (its length unknown) or not at all."""
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
    for tab in tabs:
        assert (await tab.wait_for("call_ringing", call_id))["data"]["status"] == "ringing"
        await tab.wait_for("call_answered", call_id)
    seen = await _lose_server(server, tabs, call_id, "answered")
    await server.start()
    early = await tabs[0].reconnect()  # the desktop's retry, at once
    _assert_reconnected(server, tabs[0], early)
    _assert_still_talking_on_screen(server, early, call_id, seen)

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
    for tab in tabs[1:]:  # a retry once the recovery was over
        _assert_reconnected(server, tab, await tab.reconnect())
    await _off_screen(tabs, call_id)
    figures["desktop"] = _desktop_figures(tabs, call_id, seen)
    _assert_talk_ended(server, tabs, call_id, seen)
    assert "Traceback" not in server.log_tail(200_000).split("===== start 2 =====")[-1], server.log_tail()
    print("server-killed figures:", json.dumps(figures))
