"""FastAGI server and session against a scripted Asterisk-side peer (tests/fakes/agi_peer.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from cti.agi import (
    AgiCommandError,
    AgiHangup,
    AgiProtocolError,
    AgiScriptNotFound,
    AgiSession,
    AgiTimeout,
    FastAgiServer,
    GetDataResult,
    RecordResult,
    ScriptRegistry,
    SessionEnd,
    agi_script,
    scripts,
)
from cti.agi.protocol import parse_environment
from cti.settings import AgiSettings
from tests.fakes.agi_peer import (
    CLOSE,
    DEAD,
    SILENT,
    UNKNOWN,
    USAGE_GET_DATA,
    AgiPeer,
    Later,
    asterisk_env,
    connect_and_close,
    connect_and_send,
    env_block,
    hangup_then,
)

Script = Callable[[AgiSession], Awaitable[None]]


class Harness:
    """A server on a free port with its own registry; ``ends`` gets every SessionEnd, ``seen`` is for
    scripts to report what they got."""

    def __init__(self, **settings: Any) -> None:
        options = {"port": 0, "command_timeout": 5.0, "env_timeout": 5.0} | settings
        self.registry = ScriptRegistry()
        self.ends: list[SessionEnd] = []
        self.seen: dict[str, Any] = {}
        self.server = FastAgiServer(self.registry, AgiSettings(**options), on_session_end=self.ends.append)

    def script(self, name: str) -> Callable[[Script], Script]:
        return self.registry.register(name)

    async def call(self, steps: Any = (), script: str = "test", **kwargs: Any) -> AgiPeer:
        env = kwargs.pop("env", None) or asterisk_env(script)
        return await AgiPeer(self.server.port, steps, env=env, **kwargs).run()


@asynccontextmanager
async def running(**settings: Any) -> AsyncIterator[Harness]:
    harness = Harness(**settings)
    await harness.server.start()
    try:
        yield harness
    finally:
        await harness.server.stop(grace=1.0)


# --- typed commands ----------------------------------------------------------------------------


async def test_answer_stream_get_data_and_hangup() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            await session.answer()
            h.seen["stream"] = await session.stream_file("welcome", "#")
            h.seen["digits"] = await session.get_data("enter-account", 5000, 4)
            h.seen["late"] = await session.get_data("enter-account", 3000, 4)
            h.seen["none"] = await session.get_data("enter-account", 3000, 4)
            await session.hangup()

        peer = await h.call(
            [
                ("ANSWER", "200 result=0"),
                ("STREAM FILE", "200 result=0 endpos=424"),
                ("GET DATA", "200 result=1234"),
                ("GET DATA", "200 result=12 (timeout)"),
                ("GET DATA", "200 result= (timeout)"),
                ("HANGUP", "200 result=1\nHANGUP"),
            ]
        )
    assert peer.errors == [] and peer.closed_by_server
    assert peer.words[:3] == [
        ["ANSWER"],
        ["STREAM", "FILE", "welcome", "#"],
        ["GET", "DATA", "enter-account", "5000", "4"],
    ]
    assert h.seen == {
        "stream": None,
        "digits": GetDataResult("1234", False),
        "late": GetDataResult("12", True),
        "none": GetDataResult("", True),
    }
    assert [(end.outcome, end.hung_up, end.script) for end in h.ends] == [("completed", True, "test")]


@pytest.mark.parametrize(("reply", "digit"), [("200 result=50 endpos=8000", "2"), ("200 result=35 endpos=1", "#")])
async def test_stream_file_returns_the_escape_digit(reply: str, digit: str) -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            h.seen["digit"] = await session.stream_file("menu", "12#", offset=160)

        peer = await h.call([("STREAM FILE", reply)])
    assert h.seen["digit"] == digit
    assert peer.words == [["STREAM", "FILE", "menu", "12#", "160"]]


async def test_other_typed_commands_on_the_wire() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            h.seen["var"] = await session.get_variable("CALLERID(name)")
            h.seen["unset"] = await session.get_variable("NOPE")
            h.seen["full"] = await session.get_full_variable("${EXTEN}-${CONTEXT}")
            await session.set_variable("GREETING", 'say "hi" \\ bye')
            h.seen["exec"] = await session.exec("Dial", "PJSIP/100", "30", "tT")
            h.seen["noargs"] = await session.exec("Answer")
            h.seen["say"] = await session.say_digits("1234", "#")
            h.seen["wait"] = await session.wait_for_digit(2000)
            h.seen["nowait"] = await session.wait_for_digit(-1)
            h.seen["status"] = await session.channel_status()
            await session.verbose("call from Alice", 3)

        peer = await h.call(
            [
                ("GET VARIABLE", "200 result=1 (Dupont (Jean))"),
                ("GET VARIABLE", "200 result=0"),
                ("GET FULL VARIABLE", "200 result=1 (100-from-pstn)"),
                ("SET VARIABLE", "200 result=1"),
                ("EXEC", "200 result=0"),
                ("EXEC", "200 result=0"),
                ("SAY DIGITS", "200 result=0"),
                ("WAIT FOR DIGIT", "200 result=0"),
                ("WAIT FOR DIGIT", "200 result=42"),
                ("CHANNEL STATUS", "200 result=6"),
                ("VERBOSE", "200 result=1"),
            ]
        )
    assert peer.errors == []
    assert h.seen == {
        "var": "Dupont (Jean)",
        "unset": None,
        "full": "100-from-pstn",
        "exec": 0,
        "noargs": 0,
        "say": None,
        "wait": None,
        "nowait": "*",
        "status": 6,
    }
    assert peer.words == [
        ["GET", "VARIABLE", "CALLERID(name)"],
        ["GET", "VARIABLE", "NOPE"],
        ["GET", "FULL", "VARIABLE", "${EXTEN}-${CONTEXT}"],
        ["SET", "VARIABLE", "GREETING", 'say "hi" \\ bye'],
        ["EXEC", "Dial", "PJSIP/100,30,tT"],
        ["EXEC", "Answer"],
        ["SAY", "DIGITS", "1234", "#"],
        ["WAIT", "FOR", "DIGIT", "2000"],
        ["WAIT", "FOR", "DIGIT", "-1"],
        ["CHANNEL", "STATUS"],
        ["VERBOSE", "call from Alice", "3"],
    ]


async def test_exec_of_an_unknown_application_is_an_error() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            with pytest.raises(AgiCommandError) as caught:
                await session.exec("Nope", "x")
            h.seen["status"] = caught.value.status
            h.seen["after"] = await session.exec("Playback", "beep")

        peer = await h.call([("EXEC Nope", "200 result=-2"), ("EXEC Playback", "200 result=0")])
    assert peer.errors == []
    assert h.seen == {"status": 200, "after": 0}


async def test_exec_minus_one_is_returned_on_a_live_channel_and_a_hangup_on_a_dead_one() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            h.seen["live"] = await session.exec("Dial", "PJSIP/100", timeout=math.inf)
            await session.exec("Dial", "PJSIP/101")

        peer = await h.call(
            [
                ("EXEC Dial", "200 result=-1"),
                ("CHANNEL STATUS", "200 result=6"),
                ("EXEC Dial", "200 result=-1"),
                ("CHANNEL STATUS", hangup_then(DEAD)),
            ]
        )
    assert h.seen == {"live": -1}
    assert peer.errors == [] and [(end.outcome, end.hung_up) for end in h.ends] == [("hangup", True)]


# --- RECORD FILE -------------------------------------------------------------------------------


async def test_hangup_during_record_keeps_the_recording() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            h.seen["record"] = await session.record_file("/opt/cti-sandbox/media/recordings/msg", silence_s=3)
            h.seen["hung_up"] = session.hung_up
            with pytest.raises(AgiHangup):
                await session.set_variable("RECORDED", "1")
            await session.hangup()  # no-op once hung up

        peer = await h.call([("RECORD FILE", "200 result=-1 (hangup) endpos=67707\nHANGUP")])
    assert h.seen == {"record": RecordResult("hangup", None, 67707), "hung_up": True}
    assert peer.words == [
        ["RECORD", "FILE", "/opt/cti-sandbox/media/recordings/msg", "wav", "#", "120000", "BEEP", "s=3"]
    ]
    assert [(end.outcome, end.hung_up) for end in h.ends] == [("completed", True)]


@pytest.mark.parametrize(
    ("reply", "silence_s", "timeout_ms", "expected"),
    [
        ("200 result=35 (dtmf) endpos=16000", None, 60000, RecordResult("dtmf", "#", 16000)),
        ("200 result=0 (timeout) endpos=480000", None, 60000, RecordResult("timeout", None, 480000)),
        ("200 result=0 (timeout) endpos=24000", 2, -1, RecordResult("silence", None, 24000)),
        ("200 result=0 (timeout) endpos=24000", 2, 60000, RecordResult("silence", None, 24000)),
        ("200 result=42 (randomerror) endpos=0", None, 60000, RecordResult("dtmf", "*", 0)),
    ],
)
async def test_record_endings(reply: str, silence_s: int | None, timeout_ms: int, expected: RecordResult) -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            h.seen["record"] = await session.record_file("msg", "gsm", "*#", timeout_ms, silence_s=silence_s)
            h.seen["hung_up"] = session.hung_up

        peer = await h.call([("RECORD FILE", reply)])
    assert h.seen == {"record": expected, "hung_up": False}
    assert peer.errors == []


async def test_record_options_on_the_wire() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            await session.record_file("msg", "gsm", "", 5000, beep=False, offset=800)
            await session.record_file("msg", escape_digits="#", beep=True, offset=800, silence_s=2)

        peer = await h.call([("RECORD FILE", "200 result=0 (timeout) endpos=1")] * 2)
    assert peer.words == [
        ["RECORD", "FILE", "msg", "gsm", "", "5000", "800"],
        ["RECORD", "FILE", "msg", "wav", "#", "120000", "800", "BEEP", "s=2"],
    ]


async def test_record_that_cannot_write_its_file_is_an_error() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            with pytest.raises(AgiCommandError) as caught:
                await session.record_file("/nowhere/msg")
            h.seen["text"] = caught.value.text

        await h.call([("RECORD FILE", "200 result=-1 (writefile)")])
    assert h.seen["text"] == "200 result=-1 (writefile)"


async def test_hangup_during_the_beep_is_reported_as_a_hangup_ending() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            h.seen["record"] = await session.record_file("msg")

        peer = await h.call([("RECORD FILE", "200 result=-1 (randomerror) endpos=0"), ("CHANNEL STATUS", DEAD)])
    assert h.seen["record"] == RecordResult("hangup", None, 0)
    assert peer.errors == []


# --- hang-ups ----------------------------------------------------------------------------------


async def test_hangup_line_ends_the_flow_cleanly() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            await session.answer()
            await session.get_data("menu", 5000, 1)
            h.seen["unreachable"] = True

        peer = await h.call([("ANSWER", "200 result=0"), ("GET DATA", hangup_then(DEAD))])
    assert "unreachable" not in h.seen
    assert peer.closed_by_server and peer.errors == []
    assert [(end.outcome, end.error_code, end.hung_up) for end in h.ends] == [("hangup", "agi.hangup", True)]


async def test_redirect_minus_one_then_511_without_hangup_line() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            try:
                await session.stream_file("hold-music")
            except AgiHangup:
                h.seen["hangup"] = session.hung_up
                raise

        peer = await h.call([("STREAM FILE", "200 result=-1 endpos=1200"), ("CHANNEL STATUS", DEAD)])
    assert h.seen == {"hangup": True}
    assert peer.words == [["STREAM", "FILE", "hold-music", ""], ["CHANNEL", "STATUS"]]
    assert h.ends[0].outcome == "hangup"


async def test_minus_one_on_a_live_channel_is_a_command_error() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            with pytest.raises(AgiCommandError) as caught:
                await session.stream_file("missing-prompt")
            h.seen["error"] = (caught.value.status, caught.value.command)
            await session.hangup()

        peer = await h.call(
            [
                ("STREAM FILE", "200 result=-1 endpos=0"),
                ("CHANNEL STATUS", "200 result=6"),
                ("HANGUP", "200 result=1"),
            ]
        )
    assert h.seen == {"error": (200, 'STREAM FILE missing-prompt ""')}
    assert peer.errors == [] and h.ends[0].outcome == "completed"


_FAILING_CALLS: dict[str, Callable[[AgiSession], Awaitable[object]]] = {
    "ANSWER": lambda session: session.answer(),
    "STREAM FILE": lambda session: session.stream_file("missing"),
    "GET DATA": lambda session: session.get_data("missing", 1000, 2),
    "WAIT FOR DIGIT": lambda session: session.wait_for_digit(1000),
    "SAY DIGITS": lambda session: session.say_digits("12"),
}


@pytest.mark.parametrize("verb", list(_FAILING_CALLS))
@pytest.mark.parametrize(("status", "expected"), [("200 result=6", AgiCommandError), (DEAD, AgiHangup)])
async def test_minus_one_is_probed_for_every_media_command(verb: str, status: str, expected: type) -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            with pytest.raises(expected):
                await _FAILING_CALLS[verb](session)
            h.seen["hung_up"] = session.hung_up

        peer = await h.call([(verb, "200 result=-1"), ("CHANNEL STATUS", status)])
    assert peer.errors == [] and len(peer.commands) == 2
    assert h.seen["hung_up"] is (expected is AgiHangup)


async def test_peer_closing_mid_command_is_a_hangup() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            await session.stream_file("welcome")

        await h.call([("STREAM FILE", CLOSE)])
    assert [(end.outcome, end.hung_up) for end in h.ends] == [("hangup", True)]


# --- errors from Asterisk ----------------------------------------------------------------------


async def test_510_and_multi_line_520_leave_the_session_in_step() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            with pytest.raises(AgiCommandError) as unknown:
                await session.command("FROB NICATE")
            with pytest.raises(AgiCommandError) as usage:
                await session.get_data("menu", 5000, 4)
            h.seen["codes"] = (unknown.value.status, usage.value.status, usage.value.code)
            h.seen["usage"] = usage.value.text
            h.seen["next"] = await session.get_variable("X")

        peer = await h.call(
            [("FROB NICATE", UNKNOWN), ("GET DATA", USAGE_GET_DATA), ("GET VARIABLE", "200 result=1 (ok)")]
        )
    assert peer.errors == []
    assert h.seen["codes"] == (510, 520, "agi.command")
    assert "Usage: GET DATA" in h.seen["usage"]
    assert h.seen["next"] == "ok"


async def test_intermediate_100_reply_is_skipped() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            reply = await session.command("GOSUB", "sub-survey", "s", 1)
            h.seen["reply"] = (reply.code, reply.result, reply.text)

        await h.call([("GOSUB", "100 result=0 Trying...\n200 result=0 Gosub complete")])
    assert h.seen["reply"] == (200, "0", "200 result=0 Gosub complete")


async def test_timeout_makes_the_session_unusable() -> None:
    async with running(command_timeout=0.2) as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            with pytest.raises(AgiTimeout):
                await session.get_variable("SLOW")
            # The late reply could be taken for the next command's: refuse instead of desynchronising.
            await session.verbose("after the timeout")

        peer = await h.call([("GET VARIABLE", SILENT)])
    assert peer.commands == ["GET VARIABLE SLOW"]
    assert [(end.outcome, end.error_code) for end in h.ends] == [("timeout", "agi.timeout")]


async def test_a_shorter_timeout_re_arms_the_deadline_earlier() -> None:
    async with running(command_timeout=5.0) as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            await session.answer()  # arms the session's timer for +5 s
            with pytest.raises(AgiTimeout):
                await session.command("NOOP", timeout=0.2)

        # the peer gives up after 2 s: if the NOOP only expired with the first timer (+5 s), this fails
        peer = await h.call([("ANSWER", "200 result=0"), ("NOOP", SILENT)], timeout=2.0)
    assert peer.commands == ["ANSWER", "NOOP"] and peer.errors == []
    assert [(end.outcome, end.error_code) for end in h.ends] == [("completed", None)]


async def test_a_slow_reply_within_its_own_deadline_is_not_a_timeout() -> None:
    async with running(command_timeout=1.0) as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            await session.answer()  # arms the session's timer for +1 s
            # the timer fires while this one is still running and must re-arm for its own deadline
            h.seen["digit"] = await session.stream_file("long-prompt", "#", timeout=5.0)
            h.seen["after"] = await session.get_variable("X")

        await h.call(
            [
                ("ANSWER", "200 result=0"),
                ("STREAM FILE", Later(1.5, "200 result=35 endpos=64000")),
                ("GET VARIABLE", "200 result=1 (x)"),
            ]
        )
    assert h.seen == {"digit": "#", "after": "x"}
    assert h.ends[0].outcome == "completed"


async def test_reply_longer_than_the_stream_limit_breaks_the_session() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            await session.get_variable("HUGE")

        await h.call([("GET VARIABLE", "200 result=1 (" + "x" * 70_000 + ")")])
    assert [(end.outcome, end.error_code) for end in h.ends] == [("failed", "agi.protocol")]


async def test_a_cancelled_waiter_does_not_block_the_next_command() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            first = asyncio.create_task(session.get_variable("A"))
            await asyncio.sleep(0)  # A is in flight
            second = asyncio.create_task(session.get_variable("B"))
            await asyncio.sleep(0)  # B waits for its turn
            second.cancel()
            h.seen["a"] = await first
            h.seen["c"] = await session.get_variable("C")
            h.seen["b_cancelled"] = second.cancelled()

        peer = await h.call(lambda command: f"200 result=1 ({command[-1]})")
    assert h.seen == {"a": "A", "c": "C", "b_cancelled": True}
    assert peer.commands == ["GET VARIABLE A", "GET VARIABLE C"]


async def test_refused_argument_sends_nothing_and_keeps_the_session() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            with pytest.raises(AgiProtocolError):
                await session.set_variable("NAME", "x\nHANGUP")
            await session.answer()

        peer = await h.call([("ANSWER", "200 result=0")])
    assert peer.commands == ["ANSWER"] and peer.errors == []


async def test_garbled_reply_ends_the_session() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            await session.answer()

        await h.call([("ANSWER", "OK fine")])
    assert [(end.outcome, end.error_code) for end in h.ends] == [("failed", "agi.protocol")]


async def test_concurrent_commands_on_one_session_are_serialised() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            h.seen["values"] = await asyncio.gather(*(session.get_variable(f"V{i}") for i in range(5)))

        def answer(command: str) -> str:
            return f"200 result=1 (value of {command.split()[-1]})"

        peer = await h.call(answer)
    assert h.seen["values"] == [f"value of V{i}" for i in range(5)]
    assert sorted(peer.commands) == [f"GET VARIABLE V{i}" for i in range(5)]


# --- routing and isolation ---------------------------------------------------------------------


async def test_script_sees_its_environment_arguments_and_query() -> None:
    async with running() as h:

        @h.script("ivr/main")
        async def flow(session: AgiSession) -> None:
            env = session.env
            h.seen["env"] = (env.script, dict(env.query), env.arguments, env.type, env.dnid)

        env = asterisk_env("ivr/main?lang=fr", args=["support", ""])
        peer = await h.call(env=env)
    assert h.seen["env"] == ("ivr/main", {"lang": "fr"}, ("support", ""), "Local", "unknown")
    assert peer.closed_by_server and peer.commands == []


async def test_one_line_environment_is_enough() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            h.seen["env"] = (session.env.script, session.env.channel, dict(session.env.raw))
            await session.answer()

        peer = await h.call([("ANSWER", "200 result=0")], env={"agi_network_script": "test"})
    assert h.seen["env"] == ("test", "", {"agi_network_script": "test"})
    assert peer.commands == ["ANSWER"]


async def test_unknown_script_is_closed_without_commands(caplog: pytest.LogCaptureFixture) -> None:
    async with running() as h:
        peer = await h.call(script="nope")
    assert peer.closed_by_server and peer.commands == []
    assert [(end.outcome, end.error_code) for end in h.ends] == [("script_not_found", "agi.script_not_found")]
    assert "'nope'" in caplog.text


async def test_exception_is_logged_with_the_call_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    async with running() as h:

        @h.script("broken")
        async def broken(session: AgiSession) -> None:
            await session.answer()
            raise RuntimeError("boom")

        @h.script("fine")
        async def fine(session: AgiSession) -> None:
            await session.answer()
            await asyncio.sleep(0.05)
            await session.hangup()

        bad_env = asterisk_env("broken", uniqueid="1732350000.66", channel="PJSIP/alice-00000042")
        peers = await asyncio.gather(
            h.call([("ANSWER", "200 result=0")], env=bad_env),
            h.call([("ANSWER", "200 result=0"), ("HANGUP", "200 result=1")], script="fine"),
        )
    assert all(peer.closed_by_server and not peer.errors for peer in peers)
    assert sorted((end.script, end.outcome, end.error_code) for end in h.ends) == [
        ("broken", "failed", "RuntimeError"),
        ("fine", "completed", None),
    ]
    failure = next(record for record in caplog.records if record.levelno == logging.ERROR)
    assert "PJSIP/alice-00000042" in failure.getMessage() and "1732350000.66" in failure.getMessage()
    assert failure.exc_info is not None and "boom" in str(failure.exc_info[1])


async def test_many_concurrent_sessions() -> None:
    async with running() as h:

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            await session.answer()
            mine = await session.get_variable("UNIQUEID")
            await session.set_variable("SEEN", mine or "")
            await session.hangup()

        def responder(uniqueid: str) -> Callable[[str], str]:
            def answer(command: str) -> str:
                return f"200 result=1 ({uniqueid})" if command.startswith("GET VARIABLE") else "200 result=1"

            return answer

        ids = [f"1732350000.{n}" for n in range(300)]
        peers = await asyncio.gather(*(h.call(responder(i), env=asterisk_env("test", uniqueid=i)) for i in ids))
        assert h.server.active_sessions == 0
    assert [peer.words[2] for peer in peers] == [["SET", "VARIABLE", "SEEN", i] for i in ids]
    assert all(peer.closed_by_server and not peer.errors for peer in peers)
    assert len(h.ends) == 300 and {end.outcome for end in h.ends} == {"completed"}


# --- bad connections ---------------------------------------------------------------------------


async def _serves_a_call(h: Harness) -> bool:
    @h.script("probe")
    async def probe(session: AgiSession) -> None:
        await session.answer()

    peer = await h.call([("ANSWER", "200 result=0")], script="probe")
    return peer.commands == ["ANSWER"] and peer.closed_by_server


async def test_bare_connect_and_close_does_not_disturb_the_server() -> None:
    async with running() as h:
        for _ in range(20):
            await connect_and_close(h.server.port)
        assert await _serves_a_call(h)
        await asyncio.sleep(0)
        assert h.server.active_sessions == 0
    assert [end.outcome for end in h.ends].count("bad_request") == 20


async def test_silent_connection_is_closed_after_env_timeout() -> None:
    async with running(env_timeout=1.0) as h:
        silent = asyncio.create_task(connect_and_send(h.server.port, b""))
        assert await _serves_a_call(h)  # served while the silent one is still waiting
        assert await silent == b""
    assert ("bad_request", "agi.timeout") in [(end.outcome, end.error_code) for end in h.ends]


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: cti\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",
        b"\n",
        env_block(asterisk_env())[:200],  # then closes mid-environment
    ],
)
async def test_garbage_is_closed_and_the_next_call_served(garbage: bytes) -> None:
    async with running() as h:
        assert await connect_and_send(h.server.port, garbage, eof=True) == b""
        assert await _serves_a_call(h)
    assert h.ends[0].outcome == "bad_request" and h.ends[0].error_code == "agi.protocol"


async def test_garbage_is_refused_without_waiting_for_the_env_timeout() -> None:
    async with running(env_timeout=60.0) as h:
        # no EOF from us: the server must decide on the first bytes (connect_and_send gives up after 5 s)
        assert await connect_and_send(h.server.port, b"GET / HTTP/1.1\r\n", wait=5.0) == b""
    assert [(end.outcome, end.error_code) for end in h.ends] == [("bad_request", "agi.protocol")]


async def test_bad_line_inside_the_environment_is_refused() -> None:
    env = env_block(asterisk_env()).replace(b"agi_context: from-pstn\n", b"context from-pstn\n")
    async with running() as h:
        assert await connect_and_send(h.server.port, env) == b""
        assert await _serves_a_call(h)
    assert h.ends[0].outcome == "bad_request" and h.ends[0].error_code == "agi.protocol"


async def test_environment_without_end_is_refused_at_the_size_limit() -> None:
    async with running(env_timeout=60.0) as h:
        flood = b"agi_arg_1: " + b"x" * 100_000
        with contextlib.suppress(ConnectionError):
            assert await connect_and_send(h.server.port, flood, wait=5.0) == b""
        assert await _serves_a_call(h)
    assert h.ends[0].outcome == "bad_request"


async def test_failing_session_end_callback_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    def explode(end: SessionEnd) -> None:
        raise ValueError("metrics down")

    registry = ScriptRegistry()
    registry.register("probe")(_answer_only)
    server = FastAgiServer(registry, AgiSettings(port=0), on_session_end=explode)
    async with server:
        for _ in range(2):
            peer = await AgiPeer(server.port, [("ANSWER", "200 result=0")], env=asterisk_env("probe")).run()
            assert peer.commands == ["ANSWER"] and peer.closed_by_server
    assert "on_session_end callback failed" in caplog.text


async def _answer_only(session: AgiSession) -> None:
    await session.answer()


# --- shutdown ----------------------------------------------------------------------------------


async def test_stop_cancels_sessions_still_running_after_the_grace_period() -> None:
    async with running() as h:
        started = asyncio.Event()

        @h.script("test")
        async def forever(session: AgiSession) -> None:
            started.set()
            await session.wait_for_digit(-1)

        peer_task = asyncio.create_task(h.call([("WAIT FOR DIGIT", SILENT)]))
        await started.wait()
        port = h.server.port
        await h.server.stop(grace=0.1)
        peer = await peer_task
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
    assert peer.closed_by_server
    assert [end.outcome for end in h.ends] == ["cancelled"]
    assert h.server.active_sessions == 0


async def test_stop_lets_sessions_finish_within_the_grace_period() -> None:
    async with running() as h:
        started = asyncio.Event()

        @h.script("test")
        async def short(session: AgiSession) -> None:
            await session.answer()
            started.set()
            await asyncio.sleep(0.1)
            await session.hangup()

        peer_task = asyncio.create_task(h.call([("ANSWER", "200 result=0"), ("HANGUP", "200 result=1")]))
        await started.wait()
        await h.server.stop(grace=10.0)
        peer = await peer_task
    assert peer.errors == [] and peer.words == [["ANSWER"], ["HANGUP"]]
    assert [end.outcome for end in h.ends] == ["completed"]


# --- registry ----------------------------------------------------------------------------------


def test_registry() -> None:
    registry = ScriptRegistry()

    @registry.register("/ivr/main/")
    async def main(session: AgiSession) -> None: ...

    assert registry.get("ivr/main") is main and registry.get("/ivr/main") is main
    assert "ivr/main" in registry and len(registry) == 1 and registry.names() == ["ivr/main"]
    registry.register("ivr/main")(main)  # same function again: fine (module reloaded)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("ivr/main")(_answer_only)
    with pytest.raises(AgiScriptNotFound) as caught:
        registry.get("ivr/other")
    assert caught.value.code == "agi.script_not_found" and caught.value.name == "ivr/other"


@pytest.mark.parametrize("name", ["", "/", "has space", "a?b", "a#b"])
def test_registry_refuses_names_that_cannot_be_routed(name: str) -> None:
    with pytest.raises(ValueError, match="invalid AGI script name"):
        ScriptRegistry().register(name)


def test_module_level_decorator_fills_the_default_registry() -> None:
    @agi_script("tests/module-level-decorator")
    async def flow(session: AgiSession) -> None: ...

    assert scripts.get("tests/module-level-decorator") is flow


# --- races and resources -----------------------------------------------------------------------


async def test_reply_that_arrives_with_the_deadline_is_a_timeout() -> None:
    """The reply lands and the deadline fires in the same loop iteration: the reader is poisoned, so
    the session must not carry on as if nothing happened."""
    reader = asyncio.StreamReader()
    writer = _RacyWriter(reader)
    session = AgiSession(reader, writer, parse_environment(["agi_network_script: test"]), command_timeout=5.0)  # type: ignore[arg-type]
    writer.session = session
    with pytest.raises(AgiTimeout):
        await session.answer()
    with pytest.raises(AgiTimeout):
        await session.answer()
    session.close()


class _RacyWriter:
    """Answers at once, and makes the session's deadline fire in the very same loop iteration."""

    session: AgiSession

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def write(self, data: bytes) -> None:
        asyncio.get_running_loop().call_soon(self._reply_and_expire)

    def _reply_and_expire(self) -> None:
        self.reader.feed_data(b"200 result=0\n")  # wakes the session, which runs after this callback
        deadline = self.session._deadline
        deadline.when = asyncio.get_running_loop().time() - 1
        deadline._fire()


async def test_environment_that_arrives_with_its_timeout_is_refused() -> None:
    """Same race for the environment: the block is complete but the timer poisoned the reader."""

    class RacyReader(asyncio.StreamReader):
        async def readuntil(self, separator: bytes = b"\n") -> bytes:
            data = await super().readuntil(separator)
            self.set_exception(TimeoutError())  # the env timer fired just as the block came in
            return data

    class Peer:
        def get_extra_info(self, name: str) -> object:
            return ("127.0.0.1", 40000)

    reader = RacyReader()
    reader.feed_data(env_block(asterisk_env()))
    server = FastAgiServer(ScriptRegistry(), AgiSettings(port=0))
    assert await server._read_environment(reader, Peer()) == (None, "agi.timeout")  # type: ignore[arg-type]


async def test_session_releases_its_connection_when_the_call_ends() -> None:
    async with running() as h:
        refs: list[weakref.ref[asyncio.StreamReader]] = []

        @h.script("test")
        async def flow(session: AgiSession) -> None:
            refs.append(weakref.ref(session._reader))
            await session.answer()

        await h.call([("ANSWER", "200 result=0")])
        await asyncio.sleep(0)
        gc.collect()
        assert refs[0]() is None  # no timer left holding it for command_timeout seconds
