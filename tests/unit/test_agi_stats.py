"""AGI latency stats (cti/agi/stats.py): what is recorded, what is left out, and where it shows.

Counts and exclusions only: timings are never asserted in tests (bench/ivr_load.py measures them).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from cti.agi import AgiCommandError, AgiHangup, AgiSession, FastAgiServer, ScriptRegistry
from cti.agi.stats import AgiStats, SampleWindow, is_timed
from cti.app import build_app
from cti.db.migrate import upgrade_async
from cti.settings import AgiSettings
from tests.fakes.agi_peer import DEAD, UNKNOWN, AgiPeer, asterisk_env, hangup_then
from tests.fakes.ami_peer import AmiPeer
from tests.support.app import app_settings

Script = Callable[[AgiSession], Awaitable[None]]
ENV = asterisk_env("test")


@asynccontextmanager
async def serving(script: Script) -> AsyncIterator[FastAgiServer]:
    registry = ScriptRegistry()
    registry.register("test")(script)
    server = FastAgiServer(registry, AgiSettings(port=0, command_timeout=5.0, env_timeout=5.0))
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


def counts(server: FastAgiServer) -> tuple[int, int]:
    snapshot = server.stats.snapshot()
    return int(snapshot["command_rtt_ms"]["count"] or 0), int(snapshot["setup_ms"]["count"] or 0)


# --- the recorder --------------------------------------------------------------------------------


def test_an_empty_recorder_reports_no_figures() -> None:
    empty = {"count": 0, "samples": 0, "p50": None, "p99": None, "max": None}
    assert AgiStats().snapshot() == {"command_rtt_ms": empty, "setup_ms": empty}


def test_percentiles_are_nearest_rank_in_milliseconds_over_the_window() -> None:
    stats = AgiStats(window=100)
    for n in range(1, 151):  # 1..150 ms; the window keeps 51..150
        stats.record_command(n / 1000)
    stats.record_setup(0.25)
    snapshot = stats.snapshot()
    assert snapshot["command_rtt_ms"] == {"count": 150, "samples": 100, "p50": 101.0, "p99": 150.0, "max": 150.0}
    assert snapshot["setup_ms"] == {"count": 1, "samples": 1, "p50": 250.0, "p99": 250.0, "max": 250.0}


def test_window_must_hold_a_sample() -> None:
    with pytest.raises(ValueError):
        AgiStats(window=0)


def test_sample_window_keeps_the_last_samples_oldest_first_across_wraps() -> None:
    window = SampleWindow(4)
    assert window.values() == []
    for n in range(1, 4):
        window.add(float(n))
    assert window.values() == [1.0, 2.0, 3.0]
    for n in range(4, 11):  # wraps more than once
        window.add(float(n))
    assert window.values() == [7.0, 8.0, 9.0, 10.0]
    assert window.filled == 4


def test_sample_window_memory_is_taken_whole_at_construction() -> None:
    """The soak reads any store that grows for hours as a leak: a full window must cost what an empty one did."""
    window = SampleWindow(10_000)
    empty = sys.getsizeof(window._ring)
    for n in range(25_000):
        window.add(n / 1000)
    assert sys.getsizeof(window._ring) == empty >= 8 * 10_000


@pytest.mark.parametrize(
    ("line", "timed"),
    [
        (b"HANGUP\n", True),
        (b"GET VARIABLE CALLERID(num)\n", True),
        (b"GET FULL VARIABLE ${EXTEN}\n", True),
        (b"SET VARIABLE CTI_NEXT x\n", True),
        (b"CHANNEL STATUS\n", True),
        (b"VERBOSE hello 1\n", True),
        (b"ANSWER\n", False),
        (b"STREAM FILE welcome \"\"\n", False),
        (b"GET DATA menu 5000 1\n", False),
        (b"GET OPTION menu 12\n", False),
        (b"RECORD FILE /tmp/msg wav # 120000\n", False),
        (b"WAIT FOR DIGIT 2000\n", False),
        (b"SAY DIGITS 12 \"\"\n", False),
        (b"SAY NUMBER 12 \"\"\n", False),
        (b"EXEC Dial PJSIP/100\n", False),
    ],
)
def test_caller_paced_commands_are_not_timed(line: bytes, timed: bool) -> None:
    assert is_timed(line) is timed


# --- through the server --------------------------------------------------------------------------


async def test_only_commands_that_do_not_wait_for_the_caller_are_timed() -> None:
    async def flow(session: AgiSession) -> None:
        await session.answer()
        await session.get_variable("CALLERID(num)")
        await session.stream_file("welcome")
        await session.get_data("menu", 5000, 1)
        await session.say_digits("1")
        await session.wait_for_digit(1000)
        await session.exec("Playback", "beep")
        await session.record_file("/tmp/msg", silence_s=2)
        await session.set_variable("CTI_NEXT", "x")
        await session.channel_status()
        await session.verbose("done")
        await session.hangup()

    async with serving(flow) as server:
        peer = await AgiPeer(server.port, _answer_all_with("GET VARIABLE", "200 result=1 (0612)"), env=ENV).run()
        assert peer.errors == [] and len(peer.commands) == 12
        assert counts(server) == (5, 1)  # GET VARIABLE, SET VARIABLE, CHANNEL STATUS, VERBOSE, HANGUP


async def test_one_setup_per_session_even_when_the_first_command_is_a_prompt() -> None:
    async def flow(session: AgiSession) -> None:
        await session.stream_file("welcome")
        await session.hangup()

    async with serving(flow) as server:
        peers = [AgiPeer(server.port, _answer_all_with(), env=asterisk_env("test", uniqueid=f"1.{n}"))
                 for n in range(3)]
        await asyncio.gather(*(peer.run() for peer in peers))
        assert all(peer.errors == [] for peer in peers)
        assert counts(server) == (3, 3)
        summary = server.stats.snapshot()["setup_ms"]
        assert summary["samples"] == 3 and summary["p50"] is not None and summary["max"] is not None


async def test_failed_exchanges_and_sessions_without_commands_record_nothing() -> None:
    async def flow(session: AgiSession) -> None:
        if session.env.arguments == ("quiet",):
            return
        with pytest.raises(AgiCommandError):
            await session.command("NOPE")
        with pytest.raises(AgiHangup):
            await session.set_variable("X", "1")

    async with serving(flow) as server:
        quiet = await AgiPeer(server.port, [], env=asterisk_env("test", args=["quiet"])).run()
        assert quiet.closed_by_server and counts(server) == (0, 0)
        peer = await AgiPeer(server.port, [("NOPE", UNKNOWN), ("SET VARIABLE", hangup_then(DEAD))], env=ENV).run()
        assert peer.errors == []
        assert counts(server) == (0, 1)  # a 510 and a 511 are not round trips; the session still had a setup


async def test_unknown_scripts_and_bare_connections_record_nothing() -> None:
    async def flow(session: AgiSession) -> None:
        await session.hangup()

    async with serving(flow) as server:
        await AgiPeer(server.port, [], env=asterisk_env("missing")).run()
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.05)
        assert counts(server) == (0, 0)


def _answer_all_with(prefix: str = "", reply: str = "") -> Callable[[str], str]:
    def answer(command: str) -> str:
        if prefix and command.startswith(prefix):
            return reply
        if command.startswith("GET DATA"):
            return "200 result=1"
        if command.startswith("RECORD FILE"):
            return "200 result=0 (timeout) endpos=8000"
        return "200 result=0"

    return answer


# --- in the server's status ----------------------------------------------------------------------


async def test_status_shows_the_agi_latencies(tmp_path: Path) -> None:
    ami = AmiPeer()
    await ami.start()
    settings = app_settings(tmp_path, ami.port)
    await upgrade_async(settings.database)
    app = build_app(settings)
    await app.start()
    try:
        app.agi.stats.record_setup(0.004)
        app.agi.stats.record_command(0.001)
        app.agi.stats.record_command(0.002)
        agi, port = (await app.status())["agi"], app.agi.port
    finally:
        await app.stop()
        await ami.close()
    assert agi["port"] == port
    assert agi["setup_ms"] == {"count": 1, "samples": 1, "p50": 4.0, "p99": 4.0, "max": 4.0}
    assert agi["command_rtt_ms"] == {"count": 2, "samples": 2, "p50": 2.0, "p99": 2.0, "max": 2.0}
