"""The agent desktop's websocket, ``GET /ws/agent``, over HTTP (SQLite and PostgreSQL, in-memory shared state, the
test ACD): who may open it and as which agent, ``hello``, the commands and their replies, bad messages, the
cookie's origin check, several tabs, resuming after a reconnect, a real call's card, and the in-flight limit."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType, WSServerHandshakeError
from yarl import URL

from cti.acd.model import AgentState
from cti.agents.hub import AgentHub
from cti.agents.ws import MAX_COMMANDS_IN_FLIGHT
from cti.db import Database
from cti.http.auth import SESSION_COOKIE
from cti.settings import AgentsSettings
from tests.plugins.state import FakeClock
from tests.support.acd import Desk, make_desk, queue
from tests.support.desktop import (
    ADMIN_TOKEN,
    AGENT_TOKEN,
    FLUSH,
    PASSWORD,
    WAIT_S,
    DesktopServer,
    add_known_caller,
    desktop_server,
    wait_until,
)

SUPPORT = queue(wrap_up_s=30, ring_timeout_s=25, max_misses=3)
CALLER = "0612345678"
MAX_READS = 500  # a socket that keeps talking without ever sending what a test waits for fails the test

Event = dict[str, Any]
Match = Callable[[Event], bool]


class Tab:
    """One desktop's websocket from the browser's side; every message read is kept in ``seen``, in order."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[Event] = []
        self.hello: Event = {}
        self._ids = itertools.count(1)

    async def next(self) -> Event:
        message = await self.ws.receive(timeout=WAIT_S)
        assert message.type is WSMsgType.TEXT, f"expected a text frame, got {message.type!r} {message.data!r}"
        event: Event = json.loads(message.data)
        self.seen.append(event)
        return event

    async def expect(self, match: Match, what: str, since: int = 0) -> Event:
        """The first message from ``seen[since]`` on that ``match``es, reading more until it arrives."""
        for event in self.seen[since:]:
            if match(event):
                return event
        for _ in range(MAX_READS):
            event = await self.next()
            if match(event):
                return event
        raise AssertionError(f"{what} never arrived; got {[event['type'] for event in self.seen[since:]]}")

    async def send(self, message: Any) -> int:
        """Sends ``message`` (text, bytes, or an object as JSON); returns where its answers start in ``seen``."""
        mark = len(self.seen)
        if isinstance(message, bytes):
            await self.ws.send_bytes(message)
        else:
            await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))
        return mark

    async def command(self, cmd: str, args: Any = None, *, cid: str | None = None) -> dict[str, Any]:
        """``{"id", "cmd", "args"}`` sent; the ``data`` of its reply."""
        cid = cid or f"t{next(self._ids)}"
        mark = await self.send({"id": cid, "cmd": cmd, "args": {} if args is None else args})
        reply = await self.expect(reply_to(cid), f"the reply to {cid}", mark)
        data: dict[str, Any] = reply["data"]
        return data

    async def refused(self, message: Any, error: str) -> dict[str, Any]:
        """The ``data`` of the anonymous error reply (``reply_to`` null) that ``message`` gets."""
        mark = await self.send(message)
        reply = await self.expect(lambda e: e["type"] == "reply" and e["data"].get("error") == error,
                                  f"a {error} reply", mark)
        data: dict[str, Any] = reply["data"]
        return data

    async def flushed(self, server: DesktopServer) -> list[Event]:
        """What arrived before a marker broadcast now (one channel, in order): "nothing else came" is provable."""
        token = uuid.uuid4().hex
        mark = len(self.seen)
        await server.events.broadcast(FLUSH, {"token": token})
        marker = await self.expect(lambda e: e["type"] == FLUSH and e["data"]["token"] == token, "the marker", mark)
        return [event for event in self.seen[mark:self.seen.index(marker)] if event["type"] != FLUSH]


def reply_to(cid: str) -> Match:
    return lambda event: event["type"] == "reply" and event["data"]["reply_to"] == cid


def agent_state(state: str) -> Match:
    return lambda event: event["type"] == "agent_state" and event["data"]["state"] == state


def call_event(kind: str, call_id: str) -> Match:
    return lambda event: event["type"] == kind and event["data"].get("call_id") == call_id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def resume(tab: Tab, since: int | None = None) -> str:
    """The query a desktop reconnects with: ``since`` (default: the ``hello``'s last number) on its stream."""
    data = tab.hello["data"]
    return f"?since={data['last_seq'] if since is None else since}&stream={data['stream']}"


@contextlib.asynccontextmanager
async def opened(server: DesktopServer, token: str | None = None, query: str = "",
                 **options: Any) -> AsyncIterator[Tab]:
    """A socket with ``token`` as Bearer (else whatever ``options`` carry: cookies, origin); ``hello`` read."""
    headers = bearer(token) if token is not None else {}
    async with server.client.ws_connect("/ws/agent" + query, headers=headers, **options) as ws:
        tab = Tab(ws)
        tab.hello = await tab.next()
        assert tab.hello["type"] == "hello", tab.hello
        yield tab


async def refused_status(server: DesktopServer, headers: dict[str, str], query: str = "",
                         **options: Any) -> int:
    """The HTTP status a websocket handshake is refused with."""
    with pytest.raises(WSServerHandshakeError) as refused:
        async with server.client.ws_connect("/ws/agent" + query, headers=headers, **options):
            pass
    return refused.value.status


@pytest.fixture
async def desk(database: Database) -> Desk:
    return await make_desk(database, (SUPPORT,))


@pytest.fixture
async def server(desk: Desk) -> AsyncIterator[DesktopServer]:
    async with desktop_server(desk) as started:
        yield started


@pytest.fixture
async def alice(server: DesktopServer) -> str:
    """The session token of user alice, linked to ACD agent alice."""
    return await server.token("alice", agent_id="alice")


@pytest.fixture
async def bob(server: DesktopServer) -> str:
    return await server.token("bob", agent_id="bob")


# --- who may open the socket, as whom --------------------------------------------------------------------------


async def test_without_credentials_the_socket_is_refused(server: DesktopServer) -> None:
    assert await refused_status(server, {}) == 401
    assert await refused_status(server, bearer("not-a-token")) == 401
    assert server.desktop.hub.sockets == 0


async def test_an_agent_api_token_names_no_agent_and_is_refused(server: DesktopServer) -> None:
    assert await refused_status(server, bearer(AGENT_TOKEN)) == 403
    response = await server.client.get("/ws/agent", headers=bearer(AGENT_TOKEN))
    assert response.status == 403
    assert (await response.json())["error"] == "desktop.no_agent"


async def test_a_supervisor_session_without_an_agent_is_refused(server: DesktopServer) -> None:
    token = await server.token("sam", "supervisor")
    assert await refused_status(server, bearer(token)) == 403
    response = await server.client.get("/ws/agent", headers=bearer(token))
    assert (response.status, (await response.json())["error"]) == (403, "desktop.no_agent")


async def test_an_admin_api_token_acts_as_the_agent_it_names(server: DesktopServer) -> None:
    assert await refused_status(server, bearer(ADMIN_TOKEN)) == 403  # an admin is no agent unless one is named
    async with opened(server, ADMIN_TOKEN, "?agent=alice") as tab:
        assert tab.hello["agent_id"] == "alice"
        assert tab.hello["data"]["agent"]["id"] == "alice"
        reply = await tab.command("login")
        assert reply["ok"] is True and reply["result"]["agent_id"] == "alice"
    assert server.desk.status("alice").state is AgentState.AVAILABLE
    assert server.desk.status("bob").state is AgentState.LOGGED_OUT


async def test_an_agents_session_cannot_name_another_agent(server: DesktopServer, alice: str) -> None:
    async with opened(server, alice, "?agent=bob") as tab:  # only an admin's API token may name one
        assert tab.hello["agent_id"] == "alice"
        assert (await tab.command("login"))["result"]["agent_id"] == "alice"
    assert server.desk.status("bob").state is AgentState.LOGGED_OUT


# --- hello and the commands ----------------------------------------------------------------------------------


async def test_hello_comes_first_then_the_state_commands_round_trip(server: DesktopServer, alice: str) -> None:
    async with opened(server, alice) as tab:
        hello = tab.hello
        assert (hello["seq"], hello["agent_id"]) == (None, "alice")
        data = hello["data"]
        assert (data["agent"]["id"], data["agent"]["name"]) == ("alice", "Alice")
        assert data["status"]["state"] == "logged_out"
        assert data["cards"] == []
        assert data["outcomes"] == list(AgentsSettings().outcomes)
        assert (data["last_seq"], data["resumed"], data["replayed"]) == (0, False, 0)
        assert data["stream"] == await server.events.stream("alice")

        mark = len(tab.seen)
        login = await tab.command("login", {"extension": "agent7"}, cid="c1")
        assert (login["reply_to"], login["ok"]) == ("c1", True)
        assert (login["result"]["state"], login["result"]["endpoint"]) == ("available", "PJSIP/agent7")
        state = await tab.expect(agent_state("available"), "agent_state available", mark)
        assert (state["agent_id"], state["seq"], state["data"]["endpoint"]) == ("alice", None, "PJSIP/agent7")

        mark = len(tab.seen)
        paused = await tab.command("pause", {"reason": "lunch"}, cid="c2")
        assert (paused["ok"], paused["result"]["state"], paused["result"]["reason"]) == (True, "paused", "lunch")
        state = await tab.expect(agent_state("paused"), "agent_state paused", mark)
        assert state["data"]["reason"] == "lunch"
        assert (await server.desk.board_status("alice")).reason == "lunch"

        mark = len(tab.seen)
        resumed = await tab.command("resume", cid="c3")
        assert (resumed["ok"], resumed["result"]["state"], resumed["result"]["reason"]) == (True, "available", None)
        await tab.expect(agent_state("available"), "agent_state available again", mark)

        mark = len(tab.seen)
        logged_out = await tab.command("logout", cid="c4")
        assert (logged_out["ok"], logged_out["result"]["state"]) == (True, "logged_out")
        await tab.expect(agent_state("logged_out"), "agent_state logged_out", mark)
    assert server.desk.status("alice").state is AgentState.LOGGED_OUT


async def test_a_pause_without_a_reason_is_refused(server: DesktopServer, alice: str) -> None:
    async with opened(server, alice) as tab:
        assert (await tab.command("login"))["ok"] is True
        for args in ({"reason": ""}, {}, {"reason": "<script>"}):
            reply = await tab.command("pause", args, cid="p1")
            assert (reply["reply_to"], reply["ok"], reply["error"]) == ("p1", False, "desktop.invalid_command")
            assert reply["message"]
    assert server.desk.status("alice").state is AgentState.AVAILABLE


async def test_bad_messages_get_error_replies_and_the_socket_stays_open(server: DesktopServer, alice: str) -> None:
    async with opened(server, alice) as tab:
        unknown = await tab.command("fly", cid="c2")
        assert (unknown["reply_to"], unknown["ok"], unknown["error"]) == ("c2", False, "desktop.invalid_command")
        assert "ping" in unknown["message"]  # the known commands are listed

        for args in ("lunch", [], ["lunch"], 0, False):
            mark = await tab.send({"id": "c3", "cmd": "ping", "args": args})
            reply = (await tab.expect(reply_to("c3"), "the reply to c3", mark))["data"]
            assert (reply["ok"], reply["error"]) == (False, "desktop.invalid_command"), args
            assert "args" in reply["message"]
        mark = await tab.send({"id": "c4", "cmd": "ping"})  # no args at all (or null): nothing to pass
        assert (await tab.expect(reply_to("c4"), "the reply to c4", mark))["data"]["ok"] is True

        not_json = await tab.refused("pause please", "desktop.bad_message")
        assert (not_json["reply_to"], not_json["ok"]) == (None, False)
        binary = await tab.refused(b"\x00\x01binary", "desktop.bad_message")
        assert (binary["reply_to"], binary["ok"]) == (None, False)
        not_an_object = await tab.refused("[1, 2]", "desktop.invalid_command")
        assert (not_an_object["reply_to"], not_an_object["ok"]) == (None, False)

        pong = await tab.command("ping", cid="c9")
        assert (pong["reply_to"], pong["ok"], pong["result"]) == ("c9", True, {"pong": True})
        assert not tab.ws.closed
    assert server.desk.status("alice").state is AgentState.LOGGED_OUT  # nothing above changed anything


async def test_a_ticket_number_must_be_a_positive_number_the_database_can_hold(server: DesktopServer,
                                                                             alice: str) -> None:
    async with opened(server, alice) as tab:
        for ticket_id in ("²", "١٢", -3, 0, True, "12a", 2**31, str(10**30), "1" * 5000, None):
            reply = await tab.command("link_ticket", {"call_id": "1732350000.1", "ticket_id": ticket_id})
            assert (reply["ok"], reply["error"]) == (False, "desktop.invalid_command"), ticket_id
        reply = await tab.command("link_ticket", {"call_id": "1732350000.1", "ticket_id": "#12"})
        assert reply["error"] == "desktop.not_on_screen"  # a well-formed number: the call is checked next


# --- the session cookie: only from our own pages -----------------------------------------------------------


async def test_the_session_cookie_opens_the_socket_from_our_own_origin_only(server: DesktopServer) -> None:
    await server.user("alice", agent_id="alice")
    login = await server.client.post("/login", data={"username": "alice", "password": PASSWORD},
                                     allow_redirects=False)
    assert (login.status, login.headers["Location"]) == (303, "/agent")
    assert server.client.session.cookie_jar.filter_cookies(server.client.make_url("/")).get(SESSION_COOKIE)

    async with opened(server, origin=server.origin) as tab:
        assert tab.hello["data"]["agent"]["id"] == "alice"
        assert (await tab.command("ping"))["ok"] is True

    port = URL(server.origin).port or 80
    for other in ("http://evil.example", f"http://127.0.0.1:{port + 1}", "null"):
        assert await refused_status(server, {}, origin=other) == 403, other  # cross-site websocket hijacking
    assert await refused_status(server, {}) == 403  # a browser always says where it comes from
    await wait_until(lambda: server.desktop.hub.sockets == 0, "the accepted socket to be gone")


# --- several tabs, several agents -----------------------------------------------------------------------


async def test_every_tab_of_the_agent_gets_her_events_and_no_one_else_does(server: DesktopServer, alice: str,
                                                                          bob: str) -> None:
    async with opened(server, alice) as one, opened(server, alice) as two, opened(server, bob) as bobs:
        assert (server.desktop.hub.connected("alice"), server.desktop.hub.connected("bob")) == (2, 1)
        seq = await server.events.emit("alice", "call_ringing", {"call_id": "t-1", "status": "ringing"})
        assert seq == 1
        for tab in (one, two):
            event = await tab.expect(call_event("call_ringing", "t-1"), "the ringing event")
            assert (event["seq"], event["agent_id"]) == (seq, "alice")
            assert [e["type"] for e in await tab.flushed(server)] == []  # once per tab
            assert [e["type"] for e in tab.seen].count("call_ringing") == 1
        assert await bobs.flushed(server) == []
        assert [e["type"] for e in bobs.seen if e["type"] != FLUSH] == ["hello"]


# --- resuming after a reconnect --------------------------------------------------------------------------


async def test_a_reconnect_with_since_gets_exactly_what_it_missed(server: DesktopServer, alice: str) -> None:
    events, hub = server.events, server.desktop.hub
    await events.emit("alice", "call_ringing", {"call_id": "r-0"})  # seen before the disconnect
    async with opened(server, alice) as first:
        last, query = first.hello["data"]["last_seq"], resume(first)
    assert last == 1
    first_missed = await events.emit("alice", "call_ringing", {"call_id": "r-1"})
    second_missed = await events.emit("alice", "call_withdrawn", {"call_id": "r-1", "reason": "caller_hung_up"})
    assert (first_missed, second_missed) == (2, 3)
    await wait_until(lambda: hub.replay("alice", last, 3) is not None, "the hub to hold the missed events")

    async with opened(server, alice, query) as again:
        hello = again.hello["data"]
        assert (hello["resumed"], hello["replayed"], hello["last_seq"]) == (True, 2, 3)
        assert hello["stream"] == first.hello["data"]["stream"]  # the same numbering: resumed on it
        replayed = [await again.next(), await again.next()]
        assert [(e["type"], e["seq"], e["data"]["call_id"]) for e in replayed] == [
            ("call_ringing", 2, "r-1"), ("call_withdrawn", 3, "r-1")]
        assert await again.flushed(server) == []  # nothing else: not r-0, not twice

    async with opened(server, alice, resume(again, 3)) as current:  # up to date: resumed, nothing to replay
        assert (current.hello["data"]["resumed"], current.hello["data"]["replayed"]) == (True, 0)
        assert await current.flushed(server) == []


async def test_a_since_ahead_of_the_counter_starts_afresh(server: DesktopServer, alice: str) -> None:
    """The counter went back on the same stream (it cannot, unless the state was tampered with): what the
    desktop shows cannot be trusted."""
    async with opened(server, alice) as first:
        query = resume(first, 40)
    async with opened(server, alice, query) as tab:
        hello = tab.hello["data"]
        assert (hello["resumed"], hello["replayed"], hello["last_seq"]) == (False, 0, 0)


async def test_a_since_without_the_current_stream_starts_afresh(server: DesktopServer, alice: str) -> None:
    """The rule: a ``since`` is honoured only with the stream it was counted on; any other stream, or none (a
    client that never read ``hello``'s), gets the snapshot, even when the number itself could be replayed."""
    events, hub = server.events, server.desktop.hub
    await events.keep_card("alice", {"call_id": "s-1", "status": "ringing"})
    await events.emit("alice", "call_ringing", {"call_id": "s-1", "status": "ringing"})
    async with opened(server, alice) as first:
        stream = first.hello["data"]["stream"]
    assert isinstance(stream, str) and len(stream) >= 16
    await events.emit("alice", "call_answered", {"call_id": "s-1"})
    await wait_until(lambda: hub.replay("alice", 1, 2) is not None, "the hub to hold the missed event")
    for query in ("?since=1", "?since=1&stream=", "?since=1&stream=0123456789abcdef", f"?since=1&stream={stream}x"):
        async with opened(server, alice, query) as tab:
            hello = tab.hello["data"]
            assert (hello["resumed"], hello["replayed"], hello["last_seq"]) == (False, 0, 2), query
            assert (hello["stream"], [card["call_id"] for card in hello["cards"]]) == (stream, ["s-1"]), query
            assert await tab.flushed(server) == [], query  # no replay: the desktop starts from hello
    async with opened(server, alice, f"?since=1&stream={stream}") as same:  # the same stream: resumed
        assert (same.hello["data"]["resumed"], same.hello["data"]["replayed"]) == (True, 1)
        assert [(event["type"], event["seq"]) for event in [await same.next()]] == [("call_answered", 2)]


async def test_after_a_restart_on_the_in_process_state_an_old_since_is_not_resumed(desk: Desk) -> None:
    """The fault seen with ``kill -9``: the ring was number 1 before, the recovery's withdrawal number 1 after;
    an integration (its API token outlives the process) reconnecting with ``since=1`` kept the stale card. The
    restarted numbering has another stream: the client is given the snapshot, with no card."""
    async with desktop_server(desk) as before:
        await before.events.keep_card("alice", {"call_id": "k-1", "status": "ringing"})
        assert await before.events.emit("alice", "call_ringing", {"call_id": "k-1", "status": "ringing"}) == 1
        async with opened(before, ADMIN_TOKEN, "?agent=alice") as tab:
            assert [card["call_id"] for card in tab.hello["data"]["cards"]] == ["k-1"]
            query = "?agent=alice&" + resume(tab).removeprefix("?")
    restarted = await desk.restart()  # another process: the in-process state (counter, stream) starts over
    await restarted.reload()
    await restarted._seed_statuses()
    async with desktop_server(desk) as after:
        assert await after.events.emit("alice", "call_withdrawn", {"call_id": "k-1", "reason": "interrupted"}) == 1
        async with opened(after, ADMIN_TOKEN, query) as again:
            hello = again.hello["data"]
            assert (hello["resumed"], hello["replayed"], hello["last_seq"], hello["cards"]) == (False, 0, 1, [])
            assert hello["stream"] != tab.hello["data"]["stream"]


async def test_a_reconnect_older_than_the_window_starts_afresh(desk: Desk) -> None:
    clock = FakeClock()
    async with desktop_server(desk, hub=AgentHub(desk.state, monotonic=clock, window_s=60.0)) as server:
        alice = await server.token("alice", agent_id="alice")
        async with opened(server, alice) as first:
            last, query = first.hello["data"]["last_seq"], resume(first)
        await server.events.emit("alice", "call_ringing", {"call_id": "w-1"})
        newest = await server.events.emit("alice", "call_ended", {"call_id": "w-1", "talk_s": 5.0})
        await wait_until(lambda: server.desktop.hub.replay("alice", last, newest or 0) is not None,
                         "the hub to hold the missed events")
        clock.advance(61.0)

        async with opened(server, alice, query) as again:
            hello = again.hello["data"]
            assert (hello["resumed"], hello["replayed"], hello["last_seq"]) == (False, 0, newest)
            assert await again.flushed(server) == []  # no replay: the desktop starts from hello


# --- a real call through the ACD -------------------------------------------------------------------------


async def test_a_routed_call_rings_on_the_agents_socket_and_only_she_acts_on_it(server: DesktopServer,
                                                                               alice: str, bob: str) -> None:
    contact_id = await add_known_caller(server.desk.db, "+33612345678", name="Jeanne Martin")
    async with opened(server, alice) as alices, opened(server, bob) as bobs:
        assert (await alices.command("login"))["ok"] is True
        assert (await bobs.command("login"))["ok"] is True
        call = await server.desk.join(caller=CALLER)
        await server.desk.route()
        assert call.agent_id == "alice"  # her skill beats bob's

        ringing = await alices.expect(call_event("call_ringing", call.id), "alice's ringing card")
        card = ringing["data"]
        assert (ringing["agent_id"], ringing["seq"]) == ("alice", 1)
        assert (card["status"], card["queue"], card["caller"]["number"]) == ("ringing", "support", "+33612345678")
        assert card["contact"] == {"id": contact_id, "name": "Jeanne Martin"}

        refused = await bobs.command("set_outcome", {"call_id": call.id, "outcome": "resolved"}, cid="b1")
        assert (refused["reply_to"], refused["ok"], refused["error"]) == ("b1", False, "desktop.not_on_screen")
        assert (await server.desk.row(call)).disposition is None

        mark = len(alices.seen)
        filed = await alices.command("create_ticket", {"call_id": call.id, "subject": "Printer on fire"})
        assert filed["ok"] is True
        ticket_id = filed["result"]["ticket_id"]
        updated = await alices.expect(call_event("call_updated", call.id), "the card with its ticket", mark)
        assert updated["data"]["tickets_filed"] == [ticket_id]
        ticket = (await server.desktop.desk.tickets.get(ticket_id)).ticket
        assert (ticket.subject, ticket.caller_number) == ("Printer on fire", "+33612345678")

        assert [e["type"] for e in await bobs.flushed(server) if e["type"].startswith("call_")] == []
        assert not any(e["type"].startswith("call_") for e in bobs.seen)


# --- the in-flight limit -------------------------------------------------------------------------------


async def test_a_command_over_the_in_flight_limit_is_refused(server: DesktopServer, alice: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    release = asyncio.Event()
    dialling: list[str] = []

    async def blocked_dial(agent_id: str, number: str) -> dict[str, Any]:
        dialling.append(number)
        await release.wait()
        return {"number": number, "agent": agent_id}

    monkeypatch.setattr(server.desktop.desk, "dial", blocked_dial)
    async with opened(server, alice) as tab:
        for n in range(MAX_COMMANDS_IN_FLIGHT):
            await tab.send({"id": f"d{n}", "cmd": "dial", "args": {"number": f"06 00 00 00 0{n}"}})
        await wait_until(lambda: len(dialling) == MAX_COMMANDS_IN_FLIGHT, "8 commands in flight")

        too_many = await tab.refused({"id": "c9", "cmd": "ping", "args": {}}, "desktop.too_many")
        assert (too_many["reply_to"], too_many["ok"]) == (None, False)
        assert not any(e["type"] == "reply" and e["data"]["reply_to"] == "c9" for e in tab.seen)

        release.set()
        for n in range(MAX_COMMANDS_IN_FLIGHT):
            reply = (await tab.expect(reply_to(f"d{n}"), f"the reply to d{n}"))["data"]
            assert (reply["ok"], reply["result"]["agent"]) == (True, "alice")
        assert (await tab.command("ping"))["result"] == {"pong": True}  # room again
    assert len(dialling) == MAX_COMMANDS_IN_FLIGHT
