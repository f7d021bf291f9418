"""One FastAGI conversation: typed commands over the socket Asterisk opened for a call.

Hang-up rules (measured on Asterisk 22): when the caller hangs up, the running command answers
(often ``200 result=-1``) and Asterisk then sends a bare ``HANGUP`` line; later commands get ``511``.
After an AMI Redirect the running command answers ``200 result=-1`` and later ones ``511``, with no
``HANGUP`` line. ``result=-1`` alone is ambiguous (``STREAM FILE`` answers it for a missing file too), so
the typed methods check with ``CHANNEL STATUS``: ``511``/``HANGUP`` -> :class:`AgiHangup`, a live channel
-> :class:`AgiCommandError`. The probe costs one round trip, on the failure path only.

Once the session has seen a hang-up every command raises :class:`AgiHangup` without touching the
socket. After a timeout (or a cancelled or garbled exchange) a late reply could be read as the answer to
the next command, so the session refuses further commands instead.

Speed (``bench/agi_roundtrip.py``): with a thousand calls on one event loop, each coroutine level a
reply has to resume costs about 2 µs. So the typed methods are plain functions: they format the command
(invalid arguments raise at once) and return the one coroutine, :meth:`AgiSession._call`, that sends it,
reads the reply and converts it. Use them as usual: ``digit = await session.stream_file("welcome")``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar, cast

from cti.agi.errors import AgiCommandError, AgiError, AgiHangup, AgiProtocolError, AgiTimeout
from cti.agi.protocol import (
    HANGUP,
    AgiEnvironment,
    AgiReply,
    GetDataResult,
    RecordResult,
    ReplyAssembler,
    Signal,
    decode_line,
    dtmf_char,
    format_command,
    parse_int,
    record_outcome,
    variable_value,
)
from cti.agi.stats import CALLER_PACED, AgiStats

T = TypeVar("T")
AgiCall = Coroutine[Any, Any, T]
"""What the typed methods return: await it (or hand it to ``asyncio.create_task``)."""

_DEFAULT_DIGIT_WAIT_MS = 10_000
"""Budget per digit for ``GET DATA`` when its timeout is 0 (Asterisk then uses its own default)."""


class _Failed(Exception):
    """Raised by a reply converter. With ``probe`` (``result=-1``: hang-up or failure) the session asks
    ``CHANNEL STATUS``; on a live channel, or without ``probe``, the call raises :class:`AgiCommandError`
    (with ``note``) unless ``alive_value`` is given, which is then returned."""

    def __init__(self, reply: AgiReply, *, probe: bool = True, alive_value: int | None = None, note: str = "") -> None:
        super().__init__(reply.text)
        self.reply, self.probe, self.alive_value, self.note = reply, probe, alive_value, note


class _Expired(Exception):
    """Put into the StreamReader by :class:`_Deadline`: wakes the read waiting for an overdue reply."""


class _Deadline:
    """The per-command time limit, kept with one lazily re-armed timer per session.

    ``asyncio.timeout()`` inserts and cancels a timer-heap entry per command (about 5 µs, the largest
    cost ``bench/agi_roundtrip.py`` found). Commands take milliseconds and limits are tens of seconds, so
    one timer that re-arms itself when it fires before the current command's deadline does the same job.
    An overdue reply is ended by setting an exception on the StreamReader: the waiting read raises it, and
    every later read too, which is what we want since the session is then out of step with Asterisk.
    """

    __slots__ = ("_due", "_handle", "_loop", "_reader", "expired", "when")

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = math.inf  # when the armed timer fires
        self.when = math.inf  # deadline of the command in flight (inf: none or no limit); the session resets it
        self.expired = False

    def arm(self, limit: float) -> None:
        if limit == math.inf:
            self.when = math.inf
            return
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self.when = when = loop.time() + limit
        if when < self._due:
            if self._handle is not None:
                self._handle.cancel()
            self._handle, self._due = loop.call_at(when, self._fire), when

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._due, self.when = None, math.inf, math.inf

    def _fire(self) -> None:
        self._handle, self._due = None, math.inf
        when, loop = self.when, self._loop
        if when == math.inf or loop is None:
            return  # idle or unlimited: the next command re-arms
        if when <= loop.time() + 0.001:
            self.expired = True
            self._reader.set_exception(_Expired())
        else:
            self._handle, self._due = loop.call_at(when, self._fire), when


class AgiSession:
    """Typed AGI commands for one call; commands run one at a time (concurrent callers queue)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: AgiEnvironment,
        command_timeout: float,
        *,
        stats: AgiStats | None = None,
        accepted_at: float | None = None,
    ) -> None:
        """``stats`` (the server's) gets each command's round trip and, when ``accepted_at`` (a
        ``time.monotonic()`` reading) is given, the time from then to the first command."""
        self.env = env
        self._reader = reader
        self._writer = writer
        self._timeout = command_timeout
        self._busy = False  # a command is in flight
        self._turns: deque[asyncio.Future[None]] | None = None  # tasks of this call waiting to send one
        self._assembler = ReplyAssembler()
        self._hung_up = False
        self._broken: AgiError | None = None
        self._deadline = _Deadline(reader)
        self._stats = stats
        self._accepted_at = accepted_at

    @property
    def hung_up(self) -> bool:
        """True once Asterisk reported the channel gone (or we hung it up)."""
        return self._hung_up

    def close(self) -> None:
        """Drop the session's timer; the server calls it when the script returns."""
        self._deadline.close()

    # --- generic ---------------------------------------------------------------------------------

    def command(self, verb: str, *args: str | int, timeout: float | None = None) -> AgiCall[AgiReply]:
        """Send one command and return its ``200`` reply, whatever its result.

        ``timeout`` (seconds) replaces ``command_timeout`` for this command; ``math.inf`` waits forever.
        Raises :class:`AgiHangup` (``HANGUP`` line, ``511``, connection closed), :class:`AgiCommandError`
        (``510``, ``520``, other non-200 codes), :class:`AgiTimeout`, :class:`AgiProtocolError`.
        """
        return self._call(format_command(verb, *args), _same, timeout)

    async def _call(self, line: bytes, convert: Callable[[AgiReply], T], timeout: float | None = None) -> T:
        if self._hung_up or self._broken is not None:
            self._raise_unusable()
        limit = self._timeout if timeout is None else timeout
        if self._busy:
            await self._take_turn()
        self._busy, deadline = True, self._deadline
        deadline.arm(limit)
        stats = self._stats
        sent = None if stats is None else self._sending(stats, line)
        try:  # everything inline: see the module docstring
            self._writer.write(line)
            while (item := self._assembler.feed(decode_line(await self._reader.readuntil(b"\n")))) is None:
                pass
            if deadline.expired:  # the reply came, but after the deadline had poisoned the reader
                raise _Expired
            if sent is not None and stats is not None and item is not HANGUP and item.code == 200:
                stats.record_command(time.monotonic() - sent)
        except (_Expired, ConnectionError, EOFError, asyncio.LimitOverrunError, AgiProtocolError) as exc:
            raise self._failure(exc, line, limit) from None
        except asyncio.CancelledError:
            self._broken = AgiError(f"cancelled while waiting for the reply to {_shown(line)}")
            raise
        finally:
            self._busy, deadline.when = False, math.inf
            if self._turns:
                self._pass_turn()
        if item is HANGUP or item.code != 200:
            self._raise_for(item, line)
        try:
            return convert(item)
        except _Failed as failed:
            return cast(T, await self._after_failure(failed, line))  # alive_value: int converters only

    def _sending(self, stats: AgiStats, line: bytes) -> float | None:
        """Latency bookkeeping (cti/agi/stats.py): the session's setup time on its first command, and
        the send time of a command whose round trip is recorded (None for the caller-paced ones)."""
        now = time.monotonic()
        if self._accepted_at is not None:
            stats.record_setup(now - self._accepted_at)
            self._accepted_at = None
        return None if line.startswith(CALLER_PACED) else now  # stats.is_timed, inlined

    async def _after_failure(self, failed: _Failed, line: bytes) -> int:
        if failed.probe:
            await self.channel_status()  # raises AgiHangup when the channel is gone
            if failed.alive_value is not None:
                return failed.alive_value
        text = f"{failed.reply.text} ({failed.note})" if failed.note else failed.reply.text
        raise AgiCommandError(failed.reply.code, text, _shown(line))

    def _raise_for(self, item: AgiReply | Signal, line: bytes) -> NoReturn:
        if item is HANGUP:
            self._hung_up = True
            raise AgiHangup(f"Asterisk reported HANGUP (during {_shown(line)})")
        if item.code == 511:
            self._hung_up = True
            raise AgiHangup(f"{item.text} (to {_shown(line)})")
        raise AgiCommandError(item.code, item.text, _shown(line))

    def _failure(self, exc: Exception, line: bytes, limit: float) -> AgiError:
        """The error to raise for a failed exchange; records what it means for the session."""
        if isinstance(exc, ConnectionError | EOFError):  # EOFError includes IncompleteReadError
            self._hung_up = True
            return AgiHangup(f"AGI connection lost during {_shown(line)}")
        if isinstance(exc, _Expired):
            self._broken = AgiTimeout(f"no reply to {_shown(line)} within {limit}s")
        elif isinstance(exc, AgiProtocolError):
            self._broken = exc
        else:  # LimitOverrunError
            self._broken = AgiProtocolError(f"reply line too long after {_shown(line)}")
        return self._broken

    def _raise_unusable(self) -> NoReturn:
        if self._hung_up:
            raise AgiHangup("the channel has hung up")
        assert self._broken is not None
        raise type(self._broken)(f"session unusable: {self._broken}")

    async def _take_turn(self) -> None:
        """Wait while another task of this call has a command in flight (commands never interleave)."""
        while self._busy:
            turn = asyncio.get_running_loop().create_future()
            if self._turns is None:
                self._turns = deque()
            self._turns.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if not turn.cancelled():  # woken, then cancelled before running: hand the turn on
                    self._pass_turn()
                raise  # a cancelled turn stays queued; _pass_turn skips it
        if self._hung_up or self._broken is not None:
            self._raise_unusable()

    def _pass_turn(self) -> None:
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    # --- call control ----------------------------------------------------------------------------

    def answer(self) -> AgiCall[None]:
        return self._call(b"ANSWER\n", _none_unless_failed)

    def hangup(self) -> AgiCall[None]:
        """Hang up the channel; a no-op when it is already gone (handy in ``finally`` blocks)."""
        return self._hangup()

    async def _hangup(self) -> None:
        if not self._hung_up:
            await self._call(b"HANGUP\n", _same)
            self._hung_up = True

    def channel_status(self) -> AgiCall[int]:
        """Asterisk channel state: 4 ringing, 6 up, ... (``ast_channel_state``)."""
        return self._call(b"CHANNEL STATUS\n", _result_int)

    def exec(self, app: str, *args: str, timeout: float | None = None) -> AgiCall[int]:
        """Run a dialplan application; ``args`` are joined with commas into its one argument.

        Pass ``timeout=math.inf`` for applications that last the whole call (``Dial``, ``Queue``).
        Returns the application's result; ``-1`` on a live channel is returned as is, ``-2`` (no such
        application) raises :class:`AgiCommandError`.
        """
        line = format_command("EXEC", app, ",".join(args)) if args else format_command("EXEC", app)
        return self._call(line, _exec_result, timeout)

    # --- media -----------------------------------------------------------------------------------

    def stream_file(
        self, name: str, escape_digits: str = "", *, offset: int | None = None, timeout: float | None = None
    ) -> AgiCall[str | None]:
        """Play a prompt (no extension); returns the escape digit pressed, or None.

        The default time limit is ``command_timeout``: give ``timeout`` for prompts longer than that.
        """
        args = (name, escape_digits) if offset is None else (name, escape_digits, offset)
        return self._call(format_command("STREAM FILE", *args), _digit_or_none, timeout)

    def say_digits(self, digits: str, escape_digits: str = "") -> AgiCall[str | None]:
        return self._call(format_command("SAY DIGITS", digits, escape_digits), _digit_or_none)

    def say_number(self, number: int, escape_digits: str = "") -> AgiCall[str | None]:
        """Speak a number in the channel's language ("vingt-trois"), with Asterisk's own sounds."""
        return self._call(format_command("SAY NUMBER", str(int(number)), escape_digits), _digit_or_none)

    def wait_for_digit(self, timeout_ms: int) -> AgiCall[str | None]:
        """Wait for one DTMF digit; ``timeout_ms=-1`` waits forever. None on timeout."""
        budget = math.inf if timeout_ms < 0 else self._timeout + timeout_ms / 1000
        return self._call(format_command("WAIT FOR DIGIT", timeout_ms), _digit_or_none, budget)

    def get_data(
        self, prompt: str, timeout_ms: int, max_digits: int, *, timeout: float | None = None
    ) -> AgiCall[GetDataResult]:
        """Play ``prompt`` and collect up to ``max_digits`` digits (``#`` ends early)."""
        if timeout is None:
            per_digit = (timeout_ms if timeout_ms > 0 else _DEFAULT_DIGIT_WAIT_MS) / 1000
            timeout = self._timeout + per_digit * max(1, max_digits)
        return self._call(format_command("GET DATA", prompt, timeout_ms, max_digits), _get_data_result, timeout)

    async def record_file(
        self,
        path: str,
        fmt: str = "wav",
        escape_digits: str = "#",
        timeout_ms: int = 120_000,
        beep: bool = True,
        silence_s: int | None = None,
        offset: int | None = None,
        *,
        timeout: float | None = None,
    ) -> RecordResult:
        """Record to ``path.fmt``. A hang-up while recording returns ``ended_by="hangup"`` (the file is
        kept, ``endpos`` tells its length) instead of raising; the session is hung up afterwards.

        Asterisk reports silence and the time limit alike (``(timeout)``): ``"silence"`` is inferred when
        silence detection was on and the command ended before ``timeout_ms``. ``-1`` means no time limit.
        If the channel was already gone before recording started, :class:`AgiHangup` is raised.
        """
        args: list[str | int] = [path, fmt, escape_digits, timeout_ms]
        args += [offset] if offset is not None else []
        args += ["BEEP"] if beep else []
        args += [f"s={silence_s}"] if silence_s is not None else []
        if timeout is None:
            timeout = math.inf if timeout_ms < 0 else self._timeout + timeout_ms / 1000
        loop = asyncio.get_running_loop()
        started = loop.time()
        reply = await self.command("RECORD FILE", *args, timeout=timeout)
        early = silence_s is not None and (timeout_ms < 0 or loop.time() - started < timeout_ms / 1000)
        outcome = record_outcome(reply, early)
        if outcome is None:  # result=-1 around the beep or the first frame: hang-up or failure
            try:
                await self.channel_status()
            except AgiHangup:
                return RecordResult("hangup", None, parse_int(reply.extra.get("endpos", "0"), reply.text))
            raise AgiCommandError(reply.code, reply.text, "RECORD FILE")
        self._hung_up = self._hung_up or outcome.ended_by == "hangup"
        return outcome

    # --- variables and logging -------------------------------------------------------------------

    def get_variable(self, name: str) -> AgiCall[str | None]:
        """A channel variable or function (``CALLERID(num)``); None when it is not set."""
        return self._call(format_command("GET VARIABLE", name), variable_value)

    def get_full_variable(self, expression: str, channel: str | None = None) -> AgiCall[str | None]:
        """Evaluate an expression such as ``${CALLERID(num)}-${EXTEN}`` (on ``channel`` if given)."""
        args = (expression,) if channel is None else (expression, channel)
        return self._call(format_command("GET FULL VARIABLE", *args), variable_value)

    def set_variable(self, name: str, value: str) -> AgiCall[None]:
        return self._call(format_command("SET VARIABLE", name, value), _nothing)

    def verbose(self, message: str, level: int = 1) -> AgiCall[None]:
        """Write to the Asterisk console/log at ``level`` (1-4)."""
        return self._call(format_command("VERBOSE", message, level), _nothing)


# --- reply converters (``result=-1`` raises _Failed so that the session can probe) -----------------


def _same(reply: AgiReply) -> AgiReply:
    return reply


def _nothing(reply: AgiReply) -> None:
    return None


def _none_unless_failed(reply: AgiReply) -> None:
    if reply.result == "-1":
        raise _Failed(reply)


def _result_int(reply: AgiReply) -> int:
    return reply.result_int


def _exec_result(reply: AgiReply) -> int:
    value = reply.result_int
    if value == -2:
        raise _Failed(reply, probe=False, note="no such application")
    if value == -1:
        raise _Failed(reply, alive_value=-1)
    return value


def _digit_or_none(reply: AgiReply) -> str | None:
    if reply.result == "0":
        return None
    if reply.result == "-1":
        raise _Failed(reply)
    return dtmf_char(reply)


def _get_data_result(reply: AgiReply) -> GetDataResult:
    if reply.result == "-1" and reply.data is None:
        raise _Failed(reply)
    return GetDataResult(reply.result, reply.data == "timeout")


def _shown(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\n")
