"""Bad input on the AMI link. The adapter's framing and decoding (``cti.ami.protocol``) fed junk and good messages
cut at any byte (Hypothesis, derandomized: the same examples on every run), directly and through the scripted peer
(``emit_raw`` with ``split_at``). After any junk the client is still logged in (or has reconnected), the handlers of
the good events that follow run with their exact content, and nothing reaches the event loop's exception handler.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from panoramisk.message import Message

from cti.ami import AmiClient, AmiProtocol
from cti.ami.protocol import MAX_UNTERMINATED
from cti.settings import AmiSettings
from tests.fakes.ami_peer import AmiPeer, wait_until
from tests.support.fuzz import LoopErrors, described, fuzz_settings

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")  # how a failing 1 MB header prints

GREETING = b"Asterisk Call Manager/9.0.0\r\n"
NAME = "Hélène Müller 😀 Ωmega"  # two-, three- and four-byte characters: cuts land inside them
MARKER = "fuzz-marker"

# --- strategies --------------------------------------------------------------------------------------------------

EOLS = st.sampled_from([b"\r\n", b"\n"])
NO_EOL = st.binary(max_size=40).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b""))
HEADER_NAMES = st.one_of(
    st.sampled_from([b"Event", b"Response", b"ActionID", b"Message", b"Channel", b"EventList", b"event", b"Result",
                     b"Privilege", b"Uniqueid", b"CallerIDName", b""]),
    NO_EOL,
)
HEADER_VALUES = st.one_of(
    NO_EOL,
    st.sampled_from([b"", b"Success", b"Error", b"Follows", b"Complete", b"start", b"TestEvent", b"FullyBooted",
                     b"OriginateResponse", b"\xff\xfe", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"%zz%00"]),
    st.integers(1_000, 1_000_000).map(lambda size: b"h" * size),
)
HEADER_LINES = st.one_of(
    st.tuples(HEADER_NAMES, st.sampled_from([b": ", b":", b" : "]), HEADER_VALUES).map(b"".join),
    NO_EOL,  # no colon at all, or binary
)


@st.composite
def junk_messages(draw: st.DrawFn) -> bytes:
    """One bad message, always ended by a blank line (CRLF or bare LF): unknown or nameless events, replies for
    no action, duplicated headers, lines without ``: ``, invalid or truncated UTF-8, 1 MB headers, binary."""
    eol = draw(EOLS)
    if draw(st.booleans()):
        body = draw(st.binary(max_size=300))
    else:
        body = eol.join(draw(st.lists(HEADER_LINES, min_size=1, max_size=8)))
    return body + eol + eol


JUNK = junk_messages().filter(lambda junk: b"shutdown" not in junk.lower())  # a Shutdown event means reconnecting
CUTS = st.lists(st.integers(min_value=1, max_value=2**31), max_size=3)


def marker(index: int, eol: bytes = b"\r\n") -> bytes:
    """A good event after the junk; its handler must see exactly this."""
    lines = ["Event: UserEvent", f"UserEvent: {MARKER}", f"Seq: {index}", f"CallerIDName: {NAME} {index}"]
    return eol.join(line.encode() for line in lines) + eol + eol


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` in pieces at the given positions (taken modulo its length)."""
    bounds = sorted({0, len(data), *(position % len(data) for position in cuts)}) if data else [0, 0]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def markers_seen(events: list[Message]) -> list[tuple[str, str]]:
    return [(event.seq, event.calleridname) for event in events
            if event.event == "UserEvent" and event.userevent == MARKER]


def expected_markers(count: int) -> list[tuple[str, str]]:
    return [(str(index), f"{NAME} {index}") for index in range(count)]


# --- the protocol alone ------------------------------------------------------------------------------------------


class FakeTransport(asyncio.Transport):
    """Records what the protocol does to its connection."""

    def __init__(self) -> None:
        super().__init__()
        self.aborted = False
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.aborted or self.closed


async def feed(stream: bytes, cuts: list[int]) -> tuple[list[Message], FakeTransport]:
    events: list[Message] = []
    protocol = AmiProtocol(events.append)
    transport = FakeTransport()
    protocol.connection_made(transport)
    for piece in cut(stream, cuts):
        protocol.data_received(piece)
    return events, transport


WORD = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Z")), min_size=1, max_size=12)
VALUE = st.lists(WORD, max_size=3).map(" ".join)  # inner spaces only: the ends of a message are stripped
FIELD = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,14}", fullmatch=True).filter(
    lambda name: name.lower() not in ("event", "response", "actionid", "result", "content"))


@st.composite
def good_messages(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    """An event as Asterisk would send it (or with bare-LF line ends), and its bytes."""
    fields = {"Event": draw(WORD.filter(lambda name: ":" not in name))}
    for name, value in draw(st.dictionaries(FIELD, VALUE, max_size=6)).items():
        if name.lower() not in {key.lower() for key in fields}:
            fields[name] = value
    eol = draw(EOLS)
    return fields, eol.join(f"{key}: {value}".encode() for key, value in fields.items()) + eol + eol


@fuzz_settings(500)
@given(st.lists(good_messages(), min_size=1, max_size=6), st.lists(st.integers(1, 2**31), max_size=8))
@example([({"Event": "Newchannel", "CallerIDName": NAME}, f"Event: Newchannel\r\nCallerIDName: {NAME}\r\n\r\n"
           .encode())], [12, 25, 26, 30])
async def test_good_messages_cut_anywhere_arrive_whole(messages: list[tuple[dict[str, str], bytes]],
                                                       cuts: list[int]) -> None:
    stream = GREETING + b"".join(raw for _, raw in messages)
    events, transport = await feed(stream, cuts)
    assert [{key: value for key, value in event.items() if key != "content"} for event in events] == [
        fields for fields, _ in messages]
    assert not transport.aborted


@fuzz_settings(500)
@given(st.lists(st.tuples(st.lists(JUNK, max_size=3), EOLS), min_size=1, max_size=4), CUTS)
@example([([b"Event: Junk\nFoo: bar\n\n"], b"\r\n")], [])  # a bare-LF message swallowed the next one (fixed)
@example([([b"\xe2\x82\r\n\r\n", b"\xff\r\n\r\n"], b"\n")], [3])
async def test_good_events_after_junk_are_delivered_whole(junk: list[tuple[list[bytes], bytes]],
                                                          cuts: list[int]) -> None:
    stream = GREETING + b"".join(b"".join(bad) + marker(index, eol) for index, (bad, eol) in enumerate(junk))
    events, transport = await feed(stream, cuts)
    assert markers_seen(events) == expected_markers(len(junk))
    assert not transport.aborted and not transport.closed


async def test_a_message_that_never_ends_is_dropped_with_the_link() -> None:
    events, transport = await feed(GREETING + b"Event: Flood\r\nData: " + b"x" * (MAX_UNTERMINATED + 1), [4096])
    assert events == [] and transport.aborted


@pytest.mark.parametrize("banner", [b"\x00\xff" * 600, b"SSH-2.0-OpenSSH_9.6\r\n", b"220 smtp ready\n"])
async def test_a_peer_that_is_no_ami_server_is_refused_on_its_first_line(banner: bytes) -> None:
    protocol = AmiProtocol(lambda _event: None)
    transport = FakeTransport()
    protocol.connection_made(transport)
    protocol.data_received(banner)
    assert protocol.greeting.done() and transport.aborted
    assert "not an AMI server" in str(protocol.greeting.exception())


async def test_a_greeting_ended_by_a_bare_lf_is_accepted() -> None:
    protocol = AmiProtocol(lambda _event: None)
    protocol.connection_made(FakeTransport())
    protocol.data_received(b"Asterisk Call Manager/9.0.0\nEvent: FullyBooted\n\n")
    assert protocol.greeting.result() == "9.0.0" and protocol.booted.done()


# --- through the scripted peer -----------------------------------------------------------------------------------


def settings_for(port: int, **override: Any) -> AmiSettings:
    values: dict[str, Any] = {
        "port": port, "username": "cti", "secret": "s3cret", "connect_timeout": 5.0, "action_timeout": 5.0,
        "ping_interval": 0.2, "ping_timeout": 2.0, "reconnect_min": 0.01, "reconnect_max": 0.05,
    }  # fmt: skip
    return AmiSettings.model_validate(values | override)




@pytest.fixture
async def peer(loop_errors: LoopErrors) -> AsyncIterator[AmiPeer]:
    server = AmiPeer()
    await server.start()
    yield server
    await server.close()


class Seen:
    """The client's handlers: a sync one for the markers and an async one for every event."""

    def __init__(self, client: AmiClient) -> None:
        self.markers: list[Message] = []
        self.events = 0
        self._removers = [client.on_event("UserEvent", self._marker), client.on_event("*", self._any)]

    def close(self) -> None:
        for remove in self._removers:
            remove()

    def _marker(self, event: Message) -> None:
        if event.userevent == MARKER:
            self.markers.append(event)

    async def _any(self, _event: Message) -> None:
        self.events += 1


@pytest.fixture
async def client(peer: AmiPeer) -> AsyncIterator[AmiClient]:
    """No keep-alive Ping of its own: the peer's Pong would land between the pieces of a split write (a real
    Asterisk never interleaves two messages; the scripted peer writes each piece as it comes)."""
    ami = AmiClient(settings_for(peer.port, ping_interval=3600.0))
    await ami.start()
    await ami.wait_connected(5.0)
    yield ami
    await ami.stop()


def ami_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Errors the adapter logged (a message that broke parsing or handling is logged as one, then skipped)."""
    return [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR and record.name.startswith("cti.ami")]


@fuzz_settings(150, shrink=False)  # the protocol-level tests above shrink the same input
@given(st.lists(JUNK, min_size=1, max_size=3), EOLS, CUTS)
async def test_through_the_socket_junk_leaves_the_client_connected_and_later_events_handled(
    peer: AmiPeer, client: AmiClient, loop_errors: LoopErrors, caplog: pytest.LogCaptureFixture,
    junk: list[bytes], eol: bytes, cuts: list[int],
) -> None:
    seen = Seen(client)
    data = b"".join(junk) + marker(0, eol)
    try:
        await peer.emit_raw(data, split_at=[position % len(data) for position in cuts])
        await wait_until(lambda: len(seen.markers) >= 1)
    finally:
        seen.close()
    assert [(event.seq, event.calleridname) for event in seen.markers] == expected_markers(1)
    assert (await client.send_action({"Action": "Ping"})).ping == "Pong"  # replies still find their action
    assert client.connected and peer.logins == 1 and client.pending_count == 0
    assert ami_errors(caplog) == [] and loop_errors == [], described(loop_errors)


async def test_a_huge_header_under_the_limit_arrives_whole(peer: AmiPeer, client: AmiClient,
                                                           loop_errors: LoopErrors) -> None:
    seen = Seen(client)
    value = "é" * (MAX_UNTERMINATED // 4)  # 2 MB of UTF-8, in many reads
    await peer.emit_raw(f"Event: UserEvent\r\nUserEvent: {MARKER}\r\nSeq: 0\r\nCallerIDName: {value}\r\n\r\n".encode())
    await wait_until(lambda: len(seen.markers) == 1)
    assert seen.markers[0].calleridname == value
    assert client.connected and peer.logins == 1 and loop_errors == []


async def test_a_message_that_never_ends_drops_the_link_and_the_client_reconnects(
    peer: AmiPeer, client: AmiClient, loop_errors: LoopErrors, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Seen(client)
    await peer.emit_raw(b"Event: Flood\r\nData: " + b"x" * (MAX_UNTERMINATED + 1024))
    await wait_until(lambda: peer.logins == 2)
    await client.wait_connected(5.0)
    assert any("without a message end" in message for message in ami_errors(caplog))
    await peer.emit_raw(marker(0))
    await wait_until(lambda: len(seen.markers) == 1)
    assert [(event.seq, event.calleridname) for event in seen.markers] == expected_markers(1)
    assert loop_errors == []


@pytest.mark.parametrize("banner", [b"\x00\xff" * 5000, b"HTTP/1.1 400 Bad Request\r\n\r\n", b"\xff\xfe\r\n"])
async def test_junk_instead_of_the_greeting_is_refused_and_the_client_retries(
    peer: AmiPeer, loop_errors: LoopErrors, banner: bytes
) -> None:
    peer.banner = banner
    ami = AmiClient(settings_for(peer.port, connect_timeout=60.0))
    await ami.start()
    try:
        # refused on the first line, not after the 60 s connect timeout
        await wait_until(lambda: "not an AMI server" in (ami.stats.last_error or ""), within=20.0)
        assert peer.login_attempts == 0 and not ami.connected
        peer.banner = None
        await ami.wait_connected(20.0)
        assert (await ami.send_action({"Action": "Ping"})).ping == "Pong"
    finally:
        await ami.stop()
    assert loop_errors == []


async def test_a_peer_ending_lines_with_a_bare_lf_is_understood(peer: AmiPeer, loop_errors: LoopErrors) -> None:
    peer.banner = b"Asterisk Call Manager/9.0.0\n"
    ami = AmiClient(settings_for(peer.port))
    await ami.start()
    try:
        await ami.wait_connected(5.0)
        seen = Seen(ami)
        await peer.emit_raw(marker(0, b"\n") + marker(1, b"\r\n") + marker(2, b"\n"), split_at=[5, 60, 61, 150])
        await wait_until(lambda: len(seen.markers) == 3)
        assert [(event.seq, event.calleridname) for event in seen.markers] == expected_markers(3)
    finally:
        await ami.stop()
    assert loop_errors == []
