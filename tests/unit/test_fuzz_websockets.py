"""Bad input on the websockets (SQLite and PostgreSQL, in-memory shared state, the test ACD). The agent desktop
(``/ws/agent``) answers every malformed frame and every command with arguments of the wrong type
(Hypothesis, derandomized, over every command of ``cti.agents.commands.COMMANDS``) with a ``reply``: ``ok`` false
and a stable error code, never ``desktop.failed``, and a ``ping`` still works after it. A message over the size
limit closes that socket only (code 1009). The wallboard (``/ws/wallboard``) ignores what it is sent, closes an
oversized message the same way, and keeps feeding its other screens.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from aiohttp import ClientWebSocketResponse, WSCloseCode, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import example, given
from hypothesis import strategies as st

from cti.agents.commands import COMMANDS
from cti.agents.outbox import SocketOutbox
from cti.agents.ws import MAX_MESSAGE_BYTES
from cti.db import Database
from cti.http.app import make_web_app
from cti.settings import SecuritySettings, SupervisionSettings
from cti.supervision.wallboard import MAX_MESSAGE_BYTES as WALLBOARD_MAX_BYTES
from cti.supervision.wallboard import wallboard_socket
from cti.supervision.wallboard_feed import FEED_KEY, WallboardFeed
from tests.support.acd import Desk, make_desk, queue
from tests.support.desktop import DesktopServer, desktop_server, settle, wait_until
from tests.support.fuzz import (
    LoopErrors,
    dumps,
    fuzz_settings,
    hostile_text,
    json_values,
    nested_json,
)

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")  # how a failing 20 kB text prints

WAIT_S = 10.0  # a hang guard for reads, never a timing assertion
MAX_READS = 200
STABLE_CODE = re.compile(r"[a-z_]+\.[a-z_]+")
BAD_FRAME_CODES = {"desktop.bad_message", "desktop.invalid_command"}
Event = dict[str, Any]


class Desktop:
    """One ``/ws/agent`` socket from the browser's side."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def next(self) -> Event:
        message = await self.ws.receive(timeout=WAIT_S)
        assert message.type is WSMsgType.TEXT, f"expected a text frame, got {message.type!r} {message.data!r}"
        event: Event = json.loads(message.data)
        return event

    async def reply(self, cid: object = None) -> Event:
        """The ``data`` of the next reply to ``cid`` (None: the next anonymous one); events on the way are skipped."""
        for _ in range(MAX_READS):
            event = await self.next()
            if event["type"] == "reply" and event["data"]["reply_to"] == cid:
                data: Event = event["data"]
                return data
        raise AssertionError(f"no reply to {cid!r}")

    async def command(self, cmd: object, args: object) -> Event:
        cid = f"f{next(self._ids)}"
        await self.ws.send_str(dumps({"id": cid, "cmd": cmd, "args": args}))
        return await self.reply(cid)

    async def pong(self) -> None:
        """A ``ping`` command still gets its answer."""
        reply = await self.command("ping", {})
        assert (reply["ok"], reply["result"]) == (True, {"pong": True})

    async def closed_with(self) -> int | None:
        """The close code the server ends the socket with (what it sent before is skipped)."""
        for _ in range(MAX_READS):
            message = await self.ws.receive(timeout=WAIT_S)
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return self.ws.close_code
        raise AssertionError("the socket was not closed")


def refused(reply: Event, codes: set[str] | None = None) -> bool:
    """``ok`` false with a stable code (one of ``codes`` when given), never the internal error."""
    code = reply.get("error")
    return (reply["ok"] is False and isinstance(code, str) and STABLE_CODE.fullmatch(code) is not None
            and code != "desktop.failed" and (codes is None or code in codes) and isinstance(reply.get("message"), str))




@pytest.fixture
async def desk(database: Database) -> Desk:
    return await make_desk(database, (queue(wrap_up_s=30, ring_timeout_s=25, max_misses=3),))


@pytest.fixture
async def server(desk: Desk, loop_errors: LoopErrors) -> AsyncIterator[DesktopServer]:
    async with desktop_server(desk) as started:
        yield started


@contextlib.asynccontextmanager
async def opened(server: DesktopServer, token: str) -> AsyncIterator[Desktop]:
    async with server.client.ws_connect("/ws/agent", headers={"Authorization": f"Bearer {token}"}) as ws:
        desktop = Desktop(ws)
        assert (await desktop.next())["type"] == "hello"
        yield desktop


@pytest.fixture
async def alice(server: DesktopServer) -> AsyncIterator[Desktop]:
    async with opened(server, await server.token("alice", agent_id="alice")) as desktop:
        yield desktop


# --- malformed frames ------------------------------------------------------------------------------------------

BAD_FRAMES: dict[str, tuple[str | bytes, str]] = {
    "binary": (b"\x00\x01\xff binary", "desktop.bad_message"),
    "empty binary": (b"", "desktop.bad_message"),
    "not JSON": ("pause please", "desktop.bad_message"),
    "empty text": ("", "desktop.bad_message"),
    "truncated JSON": ('{"id": "x", "cmd": "pau', "desktop.bad_message"),
    "two JSON objects": ('{"cmd": "ping"}{"cmd": "ping"}', "desktop.bad_message"),
    "lists nested 30000 deep": (nested_json(30_000), "desktop.bad_message"),
    "objects nested 10000 deep": (nested_json(10_000, "object"), "desktop.bad_message"),
    "a 5000-digit number": ('{"cmd": "ping", "n": ' + "9" * 5000 + "}", "desktop.bad_message"),
    "a JSON array": ("[1, 2]", "desktop.invalid_command"),
    "a JSON number": ("42", "desktop.invalid_command"),
    "JSON null": ("null", "desktop.invalid_command"),
    "a JSON string": ('"ping"', "desktop.invalid_command"),
    "NaN": ("NaN", "desktop.invalid_command"),
    "an unknown command": ('{"cmd": "fly"}', "desktop.invalid_command"),
    "a command that is not text": ('{"cmd": ["ping"]}', "desktop.invalid_command"),
    "args that are a list": ('{"cmd": "ping", "args": []}', "desktop.invalid_command"),
}


async def test_every_malformed_frame_gets_a_stable_error_and_the_socket_goes_on(alice: Desktop) -> None:
    for name, (frame, code) in BAD_FRAMES.items():
        await (alice.ws.send_bytes(frame) if isinstance(frame, bytes) else alice.ws.send_str(frame))
        reply = await alice.reply()
        assert refused(reply, {code}), (name, reply)
        await alice.pong()


async def test_an_id_with_a_lone_surrogate_is_answered_and_the_socket_goes_on(alice: Desktop) -> None:
    """``json.loads`` gives a lone surrogate for ``"\\ud800"``; echoed raw in ``reply_to`` it cannot be encoded
    as UTF-8, which ended the socket's sender for good: nothing reached the desktop any more."""
    await alice.ws.send_str('{"id": "c\\ud800", "cmd": "ping"}')
    reply = await alice.reply("c\ud800")
    assert (reply["ok"], reply["result"]) == (True, {"pong": True})
    await alice.ws.send_str('{"id": "\\udfff", "cmd": "fly"}')
    assert refused(await alice.reply("\udfff"), {"desktop.invalid_command"})
    await alice.pong()


def expected_reply_to(frame: str) -> object:
    """Whom the server's reply names: the ``id`` of a JSON object when it is text or a number, else nobody."""
    try:
        request = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    reply_to = request.get("id") if isinstance(request, dict) else None
    return reply_to if isinstance(reply_to, str | int) else None


def names_a_command(frame: str) -> bool:
    with contextlib.suppress(ValueError, RecursionError):
        request = json.loads(frame)
        return isinstance(request, dict) and isinstance(request.get("cmd"), str) and request["cmd"] in COMMANDS
    return False


TEXT_FRAMES = st.one_of(
    st.text(max_size=200),
    json_values().map(dumps),
    st.dictionaries(st.sampled_from(["id", "cmd", "args"]), json_values(6), max_size=3).map(dumps),
).filter(lambda frame: len(frame.encode()) < MAX_MESSAGE_BYTES)  # larger ones close the socket: tested below


@fuzz_settings(150)
@given(st.one_of(TEXT_FRAMES, st.binary(max_size=200)))
@example(nested_json(20_000))
@example('{"id": "\\ud800", "cmd": 1}')
async def test_any_frame_gets_a_reply_with_a_stable_code(alice: Desktop, frame: str | bytes) -> None:
    if isinstance(frame, bytes):
        await alice.ws.send_bytes(frame)
        assert refused(await alice.reply(), {"desktop.bad_message"})
    else:
        await alice.ws.send_str(frame)
        reply = await alice.reply(expected_reply_to(frame))
        assert reply["ok"] is True or refused(reply) if names_a_command(frame) else refused(reply, BAD_FRAME_CODES)
    await alice.pong()


# --- every command, arguments of every type -------------------------------------------------------------------

CALL = "<the call on alice's screen>"
VALID: dict[str, dict[str, object]] = {
    "login": {"extension": "agent7"},
    "pause": {"reason": "lunch"},
    "set_outcome": {"call_id": CALL, "outcome": "resolved", "note": "called back"},
    "dismiss": {"call_id": CALL},
    "dial": {"number": "06 12 34 56 78"},
    "create_ticket": {"call_id": CALL, "subject": "Printer on fire", "description": "smoke"},
    "link_ticket": {"call_id": CALL, "ticket_id": "#1"},
    "create_contact": {"call_id": CALL, "name": "Jeanne", "numbers": ["+33612345679"], "email": "j@example.com",
                       "company": "Acme"},
}
"""Arguments each command accepts (``ticket_id`` 1 is filed by the fixture); the fuzzer keeps, swaps or drops each."""
ARG_NAMES = sorted({name for args in VALID.values() for name in args})
PLAUSIBLE: st.SearchStrategy[object] = st.sampled_from([
    CALL, "agent7", "PJSIP/agent7", "lunch", "resolved", "callback", "0612345678", "+33612345678", "06 12 34 56 78",
    "Printer on fire", "jeanne@example.com", "Acme", 1, 2, "#1", ["0612345678"], ["+33612345678", "x"], "", " ",
    "a\x00b", "\x00", "\ud800", "é\udfff", "1732350000.1\n", "x" * 70, "x" * 3000, 2**31, -1, True, None, 1.5,
    float("nan"), float("inf"), [], {}, ["\ud800"], ["\x00"], [1], [[]], ["0612345678"] * 11,
])
ANY_VALUE = st.one_of(PLAUSIBLE, PLAUSIBLE, json_values(6))


@st.composite
def arguments(draw: st.DrawFn, cmd: str) -> object:
    """Mostly ``VALID[cmd]`` with some values swapped for anything or dropped, and unknown keys added; sometimes
    not an object at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values(6))
    args: dict[str, object] = {}
    for key, value in VALID.get(cmd, {}).items():
        how = draw(st.sampled_from(["keep", "keep", "swap", "drop"]))
        if how != "drop":
            args[key] = value if how == "keep" else draw(ANY_VALUE)
    extra = draw(st.dictionaries(st.one_of(st.sampled_from(ARG_NAMES), hostile_text(12)), ANY_VALUE, max_size=3))
    return args | {key: value for key, value in extra.items() if key not in args}


def with_call(args: object, call_id: str) -> object:
    """``args`` with the placeholder replaced by the id of the call on alice's screen."""
    if isinstance(args, dict):
        return {key: call_id if value == CALL else value for key, value in args.items()}
    return args


@dataclass(repr=False)  # Hypothesis prints the fixtures with a failing example: keep it short
class OnScreen:
    """A call alice took, still on her screen (put back whenever a command took it off), so commands reach their
    end."""

    server: DesktopServer
    call_id: str
    card: dict[str, Any]

    async def restore(self) -> None:
        if await self.server.events.card("alice", self.call_id) is None:
            await self.server.events.keep_card("alice", self.card)


@pytest.fixture
async def on_screen(server: DesktopServer, alice: Desktop) -> OnScreen:
    await server.desk.acd.login("alice")
    call = await server.desk.join(caller="0612345678")
    await server.desk.route()
    assert call.agent_id == "alice"
    await server.desk.connect(call, talk_s=42)  # answered and over: alice is in wrap-up, free to dial
    await settle(server.desk.acd)  # the screen pops have run
    card = await server.events.card("alice", call.id)
    assert card is not None, "the call's card never reached alice's screen"
    ticket = await alice.command("create_ticket", {"subject": "the ticket link_ticket names"})
    assert ticket["ok"] is True and ticket["result"]["ticket_id"] == 1
    return OnScreen(server, call.id, card)


@fuzz_settings(100)
@given(data=st.data())
async def test_every_command_answers_arguments_of_any_type_with_a_reply(
    alice: Desktop, on_screen: OnScreen, data: st.DataObject
) -> None:
    """Each example sends every command once: 100 argument sets per command and database."""
    for cmd in sorted(COMMANDS):
        args = with_call(data.draw(arguments(cmd), label=cmd), on_screen.call_id)
        if len(dumps(args)) >= MAX_MESSAGE_BYTES - 100:  # a larger message closes the socket: tested below
            continue
        await on_screen.restore()
        reply = await alice.command(cmd, args)
        assert reply["ok"] is True or refused(reply), (cmd, reply)
    await alice.pong()


async def test_text_the_database_cannot_store_is_refused_in_every_text_argument(
    alice: Desktop, on_screen: OnScreen
) -> None:
    """NUL (PostgreSQL) and lone surrogates (both databases) reached the database and came back as desktop.failed."""
    for bad in ("\x00", "a\x00b", "\ud800", "x\udfffy"):
        for cmd, valid in VALID.items():
            for name, value in valid.items():
                if isinstance(value, str) and value != CALL and name not in ("reason", "outcome", "extension"):
                    await on_screen.restore()
                    reply = await alice.command(cmd, with_call(valid | {name: value + bad}, on_screen.call_id))
                    assert refused(reply, {"desktop.invalid_command"}), (cmd, name, bad, reply)
    await alice.pong()


class StrictSocket:
    """The part of a websocket the outbox uses; like aiohttp's, it encodes each text as UTF-8 before sending."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed = False

    async def send_str(self, text: str) -> None:
        self.sent.append(text.encode().decode())

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closed = True
        return True


async def test_a_message_that_cannot_be_encoded_does_not_leave_the_desktop_deaf() -> None:
    """Before, the sender task died on the ``UnicodeEncodeError`` and the socket stayed open, silent for good."""
    ws = StrictSocket()
    outbox = SocketOutbox(cast(web.WebSocketResponse, ws))
    outbox.open(['{"a":"\ud800"}', '{"b":1}'], None)
    outbox.send_now('{"c":2}')
    await wait_until(lambda: len(ws.sent) == 2, "the messages after the bad one")
    await outbox.aclose()
    assert ws.sent == ['{"b":1}', '{"c":2}']


# --- over the size limit ----------------------------------------------------------------------------------------

OVERSIZED: dict[str, tuple[str, bytes, int]] = {
    "a text over 64 KiB": ("text", b"x" * (MAX_MESSAGE_BYTES + 1), WSCloseCode.MESSAGE_TOO_BIG),
    "a binary frame over 64 KiB": ("binary", b"x" * (MAX_MESSAGE_BYTES + 1), WSCloseCode.MESSAGE_TOO_BIG),
    "a 1 MB text": ("text", b"[" * 1_000_000, WSCloseCode.MESSAGE_TOO_BIG),
    "a text frame that is not UTF-8": ("raw", b"\xff\xfe{}", WSCloseCode.INVALID_TEXT),
}


async def send(ws: ClientWebSocketResponse, how: str, data: bytes) -> None:
    if how == "text":
        await ws.send_str(data.decode())
    elif how == "binary":
        await ws.send_bytes(data)
    else:
        await ws.send_frame(data, WSMsgType.TEXT)


async def test_a_frame_the_server_cannot_take_closes_that_socket_only(server: DesktopServer) -> None:
    token = await server.token("alice", agent_id="alice")
    async with opened(server, token) as other:
        for name, (how, data, code) in OVERSIZED.items():
            async with opened(server, token) as bad:
                assert server.desktop.hub.sockets == 2
                await send(bad.ws, how, data)
                assert await bad.closed_with() == code, name
                await wait_until(lambda: server.desktop.hub.sockets == 1, f"the socket closed for {name} to go")
                await other.pong()
    async with opened(server, token) as again:
        await again.pong()
    await wait_until(lambda: server.desktop.hub.sockets == 0, "every socket to leave the hub")


async def test_a_reconnect_query_that_is_no_number_is_ignored(server: DesktopServer) -> None:
    token = await server.token("alice", agent_id="alice")
    stream = await server.events.stream("alice")  # the right numbering: only the number is wrong
    for since in ("²", "¹⁰", "١٢", "-1", "9" * 40, "1e3", "0x10"):
        async with server.client.ws_connect("/ws/agent", params={"since": since, "stream": stream},
                                            headers={"Authorization": f"Bearer {token}"}) as ws:
            desktop = Desktop(ws)
            hello = await desktop.next()
            assert (hello["type"], hello["data"]["resumed"]) == ("hello", False), since
            await desktop.pong()


# --- the wallboard -----------------------------------------------------------------------------------------------

SUPERVISOR = "s" * 32
Client = TestClient[web.Request, web.Application]


@dataclass
class Wallboard:
    client: Client
    feed: WallboardFeed

    @contextlib.asynccontextmanager
    async def screen(self) -> AsyncIterator[ClientWebSocketResponse]:
        async with self.client.ws_connect("/ws/wallboard", headers={"Authorization": f"Bearer {SUPERVISOR}"}) as ws:
            first = await ws.receive(timeout=WAIT_S)
            assert json.loads(first.data)["type"] == "snapshot"
            yield ws

    async def updated(self, ws: ClientWebSocketResponse) -> None:
        """A fresh snapshot published now reaches ``ws``."""
        await self.feed.publish()
        for _ in range(MAX_READS):
            message = await ws.receive(timeout=WAIT_S)
            assert message.type is WSMsgType.TEXT, message
            if json.loads(message.data)["type"] == "update":
                return
        raise AssertionError("no update")


async def _healthy() -> dict[str, Any]:
    return {"healthy": True}


@pytest.fixture
async def wallboard(desk: Desk, database: Database, loop_errors: LoopErrors) -> AsyncIterator[Wallboard]:
    feed = WallboardFeed(desk.acd, database, desk.state, SupervisionSettings(), interval_s=3600)
    app = make_web_app(SecuritySettings(api_tokens={SUPERVISOR: "supervisor"}), _healthy)
    app[FEED_KEY] = feed
    app.router.add_get("/ws/wallboard", wallboard_socket)
    await feed.start()
    try:
        async with TestClient(TestServer(app)) as client:
            yield Wallboard(client, feed)
    finally:
        await feed.stop()


WALLBOARD_FRAMES = st.one_of(
    st.binary(max_size=WALLBOARD_MAX_BYTES - 1),
    st.text(max_size=300),
    json_values().map(dumps).filter(lambda text: len(text.encode()) < WALLBOARD_MAX_BYTES),
)


@fuzz_settings(100)
@given(WALLBOARD_FRAMES)
@example(nested_json(2_000))
@example(b"")
async def test_the_wallboard_ignores_what_it_is_sent_and_keeps_updating(wallboard: Wallboard,
                                                                         frame: str | bytes) -> None:
    async with wallboard.screen() as ws:
        await (ws.send_bytes(frame) if isinstance(frame, bytes) else ws.send_str(frame))
        await wallboard.updated(ws)
        assert not ws.closed


WALLBOARD_OVERSIZED: dict[str, tuple[str, bytes, int]] = {
    "a text over 4 KiB": ("text", b"x" * (WALLBOARD_MAX_BYTES + 1), WSCloseCode.MESSAGE_TOO_BIG),
    "a binary frame over 4 KiB": ("binary", b"x" * (WALLBOARD_MAX_BYTES + 1), WSCloseCode.MESSAGE_TOO_BIG),
    "a text frame that is not UTF-8": ("raw", b"\xc3(", WSCloseCode.INVALID_TEXT),
}


async def test_the_wallboard_closes_a_screen_sending_what_it_cannot_take_and_feeds_the_others(
    wallboard: Wallboard,
) -> None:
    async with wallboard.screen() as other:
        for name, (how, data, code) in WALLBOARD_OVERSIZED.items():
            async with wallboard.screen() as bad:
                assert wallboard.feed.viewers == 2
                await send(bad, how, data)
                for _ in range(MAX_READS):
                    message = await bad.receive(timeout=WAIT_S)
                    if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                        break
                assert bad.close_code == code, name
                await wait_until(lambda: wallboard.feed.viewers == 1, f"the screen closed for {name} to go")
                await wallboard.updated(other)
    async with wallboard.screen() as again:
        await wallboard.updated(again)
