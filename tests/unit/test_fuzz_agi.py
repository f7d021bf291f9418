"""Bad input on the FastAGI side. The environment and reply parsers, and a session reading replies, fed arbitrary
and odd input (Hypothesis, derandomized: the same examples on every run); then hostile peers over the socket
(garbage, a bare connect, half an environment, a 10 MB line): after each one the server has freed the
connection, reported it with a stable code, and serves the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cti.agi import AgiSession, FastAgiServer, ScriptRegistry, SessionEnd
from cti.agi.errors import AgiError, AgiProtocolError
from cti.agi.protocol import (
    HANGUP,
    AgiEnvironment,
    AgiReply,
    GetDataResult,
    RecordResult,
    ReplyAssembler,
    parse_environment_block,
)
from cti.agi.server import STREAM_LIMIT
from cti.settings import AgiSettings
from tests.fakes.agi_peer import AgiPeer, asterisk_env, connect_and_close, connect_and_send, env_block
from tests.fakes.ami_peer import wait_until
from tests.support.fuzz import LoopErrors, described, fuzz_settings, recording_loop_errors

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")  # how a failing 70 kB line prints

TEN_MB = 10 * 1024 * 1024
WAIT_S = 20.0  # a hang guard for socket reads, never a timing assertion
STABLE_CODE = re.compile(r"agi\.[a-z_]+")

# --- strategies: environment blocks ----------------------------------------------------------------------------

KEYS = st.one_of(
    st.sampled_from(["agi_channel", "agi_uniqueid", "agi_request", "agi_network_script", "agi_arg_1", "agi_arg_2",
                     "agi_arg_00", "agi_arg_99999", "agi_arg_x"]),
    st.from_regex(r"agi_[A-Za-z0-9_]{1,10}", fullmatch=True),
)
NO_NEWLINE = st.binary(max_size=40).map(lambda raw: raw.replace(b"\n", b""))
HUGE = st.integers(1_000, 100_000).map(lambda size: b"v" * size)
VALUES = st.one_of(
    NO_NEWLINE,
    HUGE,
    st.sampled_from([b"", b" ", b"\r", b"\xff\xfe\xc3", b"\xe2\x82", b"a: b: c", b"agi://h/x?%zz&&=", b"%ff%00/..//"]),
)
GOOD_LINE = st.tuples(KEYS, st.sampled_from([b": ", b":"]), VALUES).map(lambda t: t[0].encode() + t[1] + t[2])
BAD_LINE = st.one_of(
    NO_NEWLINE,  # arbitrary bytes, mostly without ": "
    KEYS.map(str.encode),  # a key alone
    st.sampled_from([b"agi_: x", b"agi channel: x", b"AGI_CHANNEL: x", b": x", b"agi_\xc3\xa9t\xc3\xa9: x", b"\r"]),
)
LINES = st.lists(st.one_of(GOOD_LINE, GOOD_LINE, BAD_LINE), min_size=1, max_size=12)


def expected_environment(lines: list[str]) -> dict[str, str] | None:
    """The oracle: every line ``agi_<letters, digits, _>:<value>`` (one space after the colon dropped), the last
    value of a key kept; None when any line is not like that."""
    pairs: dict[str, str] = {}
    for line in lines:
        key, colon, value = line.partition(":")
        if not colon or not key.startswith("agi_") or len(key) < 5 or not all(
            char.isascii() and (char.isalnum() or char == "_") for char in key[4:]
        ):
            return None
        pairs[key] = value.removeprefix(" ")
    return pairs


def check_environment(env: AgiEnvironment) -> None:
    """Every field has its declared type, whatever came in."""
    texts = (env.channel, env.uniqueid, env.callerid, env.calleridname, env.extension, env.dnid, env.context,
             env.language, env.type, env.request, env.network_script, env.script)
    assert all(isinstance(text, str) for text in texts)
    assert isinstance(env.arguments, tuple) and all(isinstance(arg, str) for arg in env.arguments)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in env.query.items())
    assert all(isinstance(k, str) and isinstance(v, str) and "\n" not in v for k, v in env.raw.items())


@fuzz_settings(400)
@given(LINES)
@example([b"agi_channel: a", b"agi_channel: b", b"agi_arg_2: second", b"agi_arg_1: first"])
@example([b"agi_network_script: x" + b"y" * 200_000])
@example([b"agi_channel: PJSIP/\xff\xfe", b"agi_request"])
def test_the_environment_parser_returns_a_typed_environment_or_a_protocol_error(lines: list[bytes]) -> None:
    text = b"\n".join(lines).decode("utf-8", "replace")  # what the server decodes, blank line excluded
    expected = expected_environment(text.split("\n"))
    try:
        env = parse_environment_block(text)
    except AgiProtocolError:
        assert expected is None, f"refused a block the oracle accepts: {text[:200]!r}"
        return
    assert expected, f"accepted a block the oracle refuses: {text[:200]!r}"
    check_environment(env)
    assert dict(env.raw) == expected  # duplicated keys: the last value wins
    assert env.channel == expected.get("agi_channel", "")
    numbered = sorted((int(key[8:]), value) for key, value in expected.items()
                      if key.startswith("agi_arg_") and key[8:].isdigit() and len(key[8:]) <= 4)
    assert env.arguments == tuple(value for _, value in numbered)


# --- strategies: replies ---------------------------------------------------------------------------------------

ODD_REPLIES = st.sampled_from([
    "200 result=", "200 result=0", "200 result=-1", "200 result=1 (", "200 result=1 )(", "200 result=1 ((a)",
    "200 result=1 (a)) endpos=", "200 result=1 (timeout) endpos=x", "200 result==", "200  result=1", "200",
    "511", "511 Command Not Permitted on a dead channel or intercept routine", "510 Invalid or unknown command",
    "520-Invalid command syntax.  Proper usage follows:", " Usage: GET DATA", "520 End of proper usage.",
    "x520 End of proper usage.", "503 result=-2 Memory allocation failure", "100 result=0 Trying...", "HANGUP",
    " HANGUP ", "hangup", "999 result=1", "000-x", "000 x", "2000 result=1", "20 result=1", "", " ", "\r",
    "200 result=" + "9" * 70_000, "200 result=1 (" + "(" * 5_000, "200 result=1 (" + ")" * 5_000,
    "200 result=1 (a) " + "k=v " * 3_000, "²⁰⁰ result=1", "٢٠٠ result=1", "200 result=1\x00(x)",
])
FEW_CODES = st.tuples(st.sampled_from(["000", "100", "200", "511", "520", "999"]), st.sampled_from([" ", "-"]),
                      st.sampled_from(["", "result=1", "End of proper usage.", "x"])).map("".join)
REPLY_LINES = st.lists(st.one_of(ODD_REPLIES, FEW_CODES, st.text(max_size=30), st.from_regex(
    r"\A[0-9]{3}[ -][^\n]{0,30}\Z")), max_size=30)


def check_reply(item: AgiReply) -> None:
    """A single line below 200 is skipped (``100 Trying``); a ``NNN-`` block is one reply whatever its code."""
    assert isinstance(item.code, int) and 0 <= item.code <= 999
    assert item.code >= 200 or "\n" in item.text
    assert isinstance(item.result, str) and isinstance(item.text, str)
    assert item.data is None or isinstance(item.data, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in item.extra.items())


@fuzz_settings(400)
@given(REPLY_LINES)
def test_the_reply_assembler_returns_typed_replies_or_a_protocol_error(lines: list[str]) -> None:
    assembler = ReplyAssembler()
    for line in lines:
        try:
            item = assembler.feed(line)
        except AgiProtocolError:
            return  # a session stops at the first one
        if isinstance(item, AgiReply):
            check_reply(item)
            assert item.text == line or item.text.endswith("\n" + line)  # a usage block keeps all its lines
        else:
            assert item is None or item is HANGUP


UNITS = st.one_of(
    st.tuples(st.integers(-3, 300), st.sampled_from(["", " (timeout)", " (a (b) c)", " endpos=42"])).map(
        lambda t: [f"200 result={t[0]}{t[1]}"]),
    st.just(["510 Invalid or unknown command"]),
    st.just(["511 Command Not Permitted on a dead channel or intercept routine"]),
    st.lists(st.text(st.characters(blacklist_characters="\n"), max_size=20).map(lambda s: " " + s), max_size=5).map(
        lambda usage: ["520-Invalid command syntax.  Proper usage follows:", *usage, "520 End of proper usage."]),
    st.from_regex(r"\A[1-9][0-9]{2}\Z").map(lambda code: [f"{code}-first", "middle", f"{code} last"]),
    st.from_regex(r"\A0[0-9]{2}\Z").map(lambda code: [f"{code}-zero-padded", f"{code} closes it"]),
)


@fuzz_settings(300)
@given(st.lists(st.tuples(st.booleans(), UNITS), min_size=1, max_size=12))
def test_the_assembler_stays_in_step_through_usage_blocks_and_intermediate_lines(
    units: list[tuple[bool, list[str]]],
) -> None:
    assembler = ReplyAssembler()
    replies = []
    for trying, lines in units:
        for line in (["100 result=0 Trying..."] if trying else []) + lines:
            item = assembler.feed(line)
            if item is not None:
                assert isinstance(item, AgiReply)
                replies.append(item)
    assert [reply.text.split("\n") for reply in replies] == [lines for _, lines in units]
    assert [reply.code for reply in replies] == [int(lines[-1][:3]) for _, lines in units]


# --- a session reading whatever comes back -----------------------------------------------------------------------


class RecordingWriter:
    """The StreamWriter side of a session: keeps what the session sends."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)


ENV = parse_environment_block("agi_channel: PJSIP/fuzz-0001\nagi_network_script: fuzz")
Typed = Callable[[AgiSession], Awaitable[object]]
TYPED: dict[str, tuple[Typed, tuple[type, ...]]] = {
    "command": (lambda s: s.command("NOOP"), (AgiReply,)),
    "answer": (lambda s: s.answer(), (type(None),)),
    "stream_file": (lambda s: s.stream_file("menu", "#"), (str, type(None))),
    "get_data": (lambda s: s.get_data("menu", 3000, 4), (GetDataResult,)),
    "get_variable": (lambda s: s.get_variable("X"), (str, type(None))),
    "channel_status": (lambda s: s.channel_status(), (int,)),
    "exec": (lambda s: s.exec("Dial", "PJSIP/100"), (int,)),
    "wait_for_digit": (lambda s: s.wait_for_digit(100), (str, type(None))),
    "record_file": (lambda s: s.record_file("/tmp/fuzz", silence_s=2), (RecordResult,)),
    "hangup": (lambda s: s.hangup(), (type(None),)),
}
RAW_REPLY = st.one_of(ODD_REPLIES.map(str.encode), NO_NEWLINE, st.just(b"\xff\xfe\x00"),
                      st.just(b"x" * (STREAM_LIMIT + 10)))


@fuzz_settings(400)
@given(st.lists(RAW_REPLY, max_size=8), st.lists(st.sampled_from(sorted(TYPED)), min_size=1, max_size=4))
async def test_a_session_returns_typed_values_or_agi_errors_whatever_comes_back(
    replies: list[bytes], calls: list[str]
) -> None:
    reader = asyncio.StreamReader(limit=STREAM_LIMIT)
    reader.feed_data(b"".join(reply + b"\n" for reply in replies))
    reader.feed_eof()
    writer = RecordingWriter()
    session = AgiSession(reader, cast(asyncio.StreamWriter, writer), ENV, 5.0)  # only write() is used
    try:
        for name in calls:
            typed, types = TYPED[name]
            sent_before, hung_up_before = len(writer.sent), session.hung_up
            try:
                async with asyncio.timeout(WAIT_S):  # a hang guard: every byte is there, EOF included
                    value = await typed(session)
            except AgiError as exc:
                assert STABLE_CODE.fullmatch(exc.code), exc.code
            else:
                assert isinstance(value, types), (name, value)
            assert len(writer.sent) - sent_before <= 2  # the command, and at most one CHANNEL STATUS probe
            if hung_up_before:
                assert len(writer.sent) == sent_before  # a hung-up session never touches the socket again
    finally:
        session.close()


# --- over the socket ---------------------------------------------------------------------------------------------


@dataclass(repr=False)  # Hypothesis prints the fixture with a failing example: keep it short
class Served:
    """A server with two scripts: ``good`` answers and returns; ``chatty`` asks Asterisk three things."""

    server: FastAgiServer
    ends: list[SessionEnd]
    completed: int = 0
    callers: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port

    async def good_call(self) -> None:
        """A normal call, served to the end."""
        peer = await AgiPeer(self.port, [("ANSWER", "200 result=0")], env=asterisk_env("good"), timeout=WAIT_S).run()
        assert peer.errors == [] and peer.closed_by_server and peer.commands == ["ANSWER"]

    async def idle(self) -> None:
        await wait_until(lambda: self.server.active_sessions == 0, WAIT_S)

    def end(self, index: int = 0) -> tuple[str, str | None]:
        return self.ends[index].outcome, self.ends[index].error_code


@contextlib.asynccontextmanager
async def serving(**options: float) -> AsyncIterator[Served]:
    registry = ScriptRegistry()
    settings = AgiSettings(**({"port": 0, "command_timeout": 5.0, "env_timeout": 5.0} | options))
    ends: list[SessionEnd] = []
    served = Served(FastAgiServer(registry, settings, on_session_end=ends.append), ends)

    @registry.register("good")
    async def good(session: AgiSession) -> None:
        served.callers.append(session.env.calleridname)
        await session.answer()
        served.completed += 1

    @registry.register("chatty")
    async def chatty(session: AgiSession) -> None:
        await session.answer()
        await session.stream_file("welcome", "#")
        await session.get_variable("CALLERID(num)")

    await served.server.start()
    try:
        yield served
    finally:
        await served.server.stop(grace=1.0)


async def flood(port: int, head: bytes, size: int = TEN_MB) -> None:
    """Send ``head`` then ``size`` bytes of one endless line, until the server hangs up. A server that stopped
    reading without closing would leave this waiting on a full socket buffer: the hang guard fails the test."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(WAIT_S):
            with contextlib.suppress(ConnectionError):
                writer.write(head)
                chunk = b"x" * 65_536
                for _ in range(size // len(chunk)):
                    writer.write(chunk)
                    await writer.drain()
            with contextlib.suppress(ConnectionError):
                await reader.read()  # until the server's close (a reset loses what it sent: not checked)
    finally:
        writer.close()


async def send_all(port: int, data: bytes) -> None:
    """Send ``data`` and EOF, then wait for the server to close; a reset (it closed with input unread) is a close."""
    with contextlib.suppress(ConnectionError):
        await connect_and_send(port, data, eof=True, wait=WAIT_S)


def chatty_env() -> bytes:
    return env_block(asterisk_env("chatty"))


async def garbage(port: int) -> None:
    assert await connect_and_send(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", eof=True) == b""


async def bare_connect(port: int) -> None:
    await connect_and_close(port)


async def half_environment_then_eof(port: int) -> None:
    assert await connect_and_send(port, b"agi_channel: PJSIP/1\nagi_uniq", eof=True) == b""


async def half_environment_then_silence(port: int) -> None:  # closed by the server's env_timeout
    assert await connect_and_send(port, b"agi_channel: PJSIP/1\nagi_uniq", wait=WAIT_S) == b""


async def environment_without_blank_line(port: int) -> None:
    assert await connect_and_send(port, env_block(asterisk_env("good"))[:-1], eof=True) == b""


async def crlf_environment_then_silence(port: int) -> None:  # Asterisk ends lines with \n only
    assert await connect_and_send(port, b"agi_channel: PJSIP/1\r\n\r\n", wait=WAIT_S) == b""


async def too_many_environment_lines(port: int) -> None:
    lines = b"".join(b"agi_arg_%d: x\n" % n for n in range(600))
    assert await connect_and_send(port, lines + b"\n", eof=True) == b""


async def ten_mb_environment_line(port: int) -> None:
    await flood(port, b"agi_channel: ")


async def ten_mb_of_garbage(port: int) -> None:
    await flood(port, b"")


async def ten_mb_reply_line(port: int) -> None:
    await flood(port, chatty_env())


async def garbage_reply(port: int) -> None:
    sent = await connect_and_send(port, chatty_env() + b"\xff\xfe\x00 not a reply\n", eof=True)
    assert sent == b"ANSWER\n"


async def eof_instead_of_a_reply(port: int) -> None:  # Asterisk went away before answering the first command
    assert await connect_and_send(port, chatty_env(), eof=True) == b"ANSWER\n"


BAD_PEERS: dict[str, tuple[Callable[[int], Awaitable[None]], str, str]] = {
    "garbage": (garbage, "bad_request", "agi.protocol"),
    "bare connect": (bare_connect, "bad_request", "agi.protocol"),
    "half an environment, then EOF": (half_environment_then_eof, "bad_request", "agi.protocol"),
    "half an environment, then silence": (half_environment_then_silence, "bad_request", "agi.timeout"),
    "no blank line, then EOF": (environment_without_blank_line, "bad_request", "agi.protocol"),
    "CRLF environment, then silence": (crlf_environment_then_silence, "bad_request", "agi.timeout"),
    "600 environment lines": (too_many_environment_lines, "bad_request", "agi.protocol"),
    "a 10 MB environment line": (ten_mb_environment_line, "bad_request", "agi.protocol"),
    "10 MB of garbage": (ten_mb_of_garbage, "bad_request", "agi.protocol"),
    "a 10 MB reply line": (ten_mb_reply_line, "failed", "agi.protocol"),
    "a garbage reply": (garbage_reply, "failed", "agi.protocol"),
    "EOF instead of a reply": (eof_instead_of_a_reply, "hangup", "agi.hangup"),
}


@pytest.mark.parametrize("name", sorted(BAD_PEERS))
async def test_after_a_bad_peer_the_connection_is_freed_and_the_next_call_served(name: str) -> None:
    bad, outcome, code = BAD_PEERS[name]
    with recording_loop_errors() as loop_errors:
        async with serving(env_timeout=0.5) as served:
            await bad(served.port)
            await served.idle()
            assert served.end() == (outcome, code)
            await served.good_call()
            await served.idle()
            assert [end.outcome for end in served.ends] == [outcome, "completed"]
            assert served.completed == 1
    assert loop_errors == [], described(loop_errors)


async def test_a_stalled_environment_holds_nothing_up_while_it_waits() -> None:
    async with serving(env_timeout=60.0) as served:
        _, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"agi_channel: PJSIP/1\nagi_uniq")
        await wait_until(lambda: served.server.active_sessions == 1, WAIT_S)
        for _ in range(3):
            await served.good_call()  # served while the stalled one still waits for its blank line
        assert served.server.active_sessions == 1 and [end.outcome for end in served.ends] == ["completed"] * 3
        writer.close()
        await served.idle()
    assert served.end(3) == ("bad_request", "agi.protocol")


async def test_calls_are_served_while_10_mb_lines_stream_in() -> None:
    with recording_loop_errors() as loop_errors:
        async with serving() as served:
            floods = [flood(served.port, b"agi_channel: "), flood(served.port, chatty_env())]
            await asyncio.gather(*floods, *(served.good_call() for _ in range(5)))
            await served.idle()
    assert sorted(served.end(n) for n in range(7)) == [("bad_request", "agi.protocol")] + [
        ("completed", None)] * 5 + [("failed", "agi.protocol")]
    assert served.completed == 5
    assert loop_errors == [], described(loop_errors)


async def test_non_utf8_environment_values_become_replacement_characters_and_the_call_is_served() -> None:
    async with serving() as served:
        env = env_block(asterisk_env("good", calleridname="\x00")).replace(b"\x00", b"\xff\xfe\xc3")
        assert await connect_and_send(served.port, env + b"200 result=0\n", eof=True) == b"ANSWER\n"
        await served.idle()
    assert served.end() == ("completed", None) and served.callers == ["\ufffd\ufffd\ufffd"]


async def test_an_endless_script_name_is_logged_cut_short(caplog: pytest.LogCaptureFixture) -> None:
    async with serving() as served:
        await send_all(served.port, env_block(asterisk_env("v" * 30_000)))
        await served.idle()
        await served.good_call()
    assert served.end() == ("script_not_found", "agi.script_not_found")
    logged = [record.getMessage() for record in caplog.records if "no AGI script" in record.getMessage()]
    assert len(logged) == 1 and len(logged[0]) < 300 and "(30000 characters)" in logged[0]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving() as running:
        yield running


@pytest.fixture
async def loop_errors() -> AsyncIterator[LoopErrors]:
    """What reached the loop's exception handler during the whole test (all its examples); none may."""
    with recording_loop_errors() as seen:
        yield seen
    assert seen == [], described(seen)


ANY_BYTES = st.one_of(
    st.binary(max_size=300),
    LINES.map(lambda lines: b"\n".join(lines) + b"\n\n"),
    LINES.map(lambda lines: b"\n".join(lines)),
    st.tuples(LINES, st.lists(RAW_REPLY, max_size=4)).map(
        lambda t: b"\n".join([b"agi_network_script: chatty", *t[0]]) + b"\n\n" + b"".join(r + b"\n" for r in t[1])
    ),
)


@fuzz_settings(300, shrink=False)  # a failure may be a wait running into its hang guard
@given(ANY_BYTES)
async def test_any_bytes_then_eof_end_in_a_closed_connection_and_the_next_call_is_served(
    served: Served, loop_errors: LoopErrors, raw: bytes
) -> None:
    before = len(served.ends)
    await send_all(served.port, raw)
    await served.idle()
    outcome, code = served.end(before)
    assert outcome in ("bad_request", "script_not_found", "failed", "hangup", "completed"), outcome
    assert code is None or STABLE_CODE.fullmatch(code), code  # never an exception's class name
    await served.good_call()
    await served.idle()
    assert len(served.ends) == before + 2 and served.end(before + 1) == ("completed", None)
    assert loop_errors == [], described(loop_errors)
