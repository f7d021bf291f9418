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
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from typing import Literal, NoReturn

from cti.agi.errors import AgiCommandError, AgiError, AgiHangup, AgiProtocolError, AgiTimeout
from cti.agi.protocol import (
    HANGUP,
    AgiEnvironment,
    AgiReply,
    ReplyAssembler,
    Signal,
    decode_line,
    format_command,
    parse_int,
)

RecordEnd = Literal["dtmf", "timeout", "hangup", "silence"]

_DEFAULT_DIGIT_WAIT_MS = 10_000
"""Budget per digit for ``GET DATA`` when its timeout is 0 (Asterisk then uses its own default)."""


@dataclass(frozen=True, slots=True)
class GetDataResult:
    digits: str
    timed_out: bool


@dataclass(frozen=True, slots=True)
class RecordResult:
    """How ``RECORD FILE`` ended; ``endpos`` is the recording's length in samples (the file is kept)."""

    ended_by: RecordEnd
    digit: str | None
    endpos: int


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

    __slots__ = ("_due", "_handle", "_loop", "_reader", "_when", "expired")

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = math.inf  # when the armed timer fires
        self._when = math.inf  # deadline of the command in flight (inf: none, or no limit)
        self.expired = False

    def arm(self, limit: float) -> None:
        if limit == math.inf:
            self._when = math.inf
            return
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._when = when = loop.time() + limit
        if when < self._due:
            if self._handle is not None:
                self._handle.cancel()
            self._handle, self._due = loop.call_at(when, self._fire), when

    def disarm(self) -> None:
        self._when = math.inf

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._due, self._when = None, math.inf, math.inf

    def _fire(self) -> None:
        self._handle, self._due = None, math.inf
        when, loop = self._when, self._loop
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
    ) -> None:
        self.env = env
        self._reader = reader
        self._writer = writer
        self._timeout = command_timeout
        self._busy = False  # a command is in flight
        self._turns: deque[asyncio.Future[None]] = deque()  # tasks of this call waiting to send one
        self._assembler = ReplyAssembler()
        self._hung_up = False
        self._broken: AgiError | None = None
        self._deadline = _Deadline(reader)

    @property
    def hung_up(self) -> bool:
        """True once Asterisk reported the channel gone (or we hung it up)."""
        return self._hung_up

    def close(self) -> None:
        """Drop the session's timer; the server calls it when the script returns."""
        self._deadline.close()

    # --- generic ---------------------------------------------------------------------------------

    async def command(self, verb: str, *args: str | int, timeout: float | None = None) -> AgiReply:
        """Send one command and return its ``200`` reply, whatever its result.

        ``timeout`` (seconds) replaces ``command_timeout`` for this command; ``math.inf`` waits forever.
        Raises :class:`AgiHangup` (``HANGUP`` line, ``511``, connection closed), :class:`AgiCommandError`
        (``510``, ``520``, other non-200 codes), :class:`AgiTimeout`, :class:`AgiProtocolError`.
        """
        if self._hung_up or self._broken is not None:
            self._raise_unusable()
        line = format_command(verb, *args)
        limit = self._timeout if timeout is None else timeout
        if self._busy:
            await self._take_turn()
        self._busy = True
        self._deadline.arm(limit)
        try:  # the exchange is inlined here: every await level costs on each of thousands of replies
            self._writer.write(line)
            while (item := self._assembler.feed(decode_line(await self._reader.readuntil(b"\n")))) is None:
                pass
            if self._deadline.expired:  # the reply came, but after the deadline had poisoned the reader
                raise _Expired
        except (_Expired, ConnectionError, EOFError, asyncio.LimitOverrunError, AgiProtocolError) as exc:
            raise self._failure(exc, line, limit) from None
        except asyncio.CancelledError:
            self._broken = AgiError(f"cancelled while waiting for the reply to {_shown(line)}")
            raise
        finally:
            self._busy = False
            self._deadline.disarm()
            if self._turns:
                self._pass_turn()
        return self._checked(item, line)

    def _checked(self, item: AgiReply | Signal, line: bytes) -> AgiReply:
        if item is HANGUP:
            self._hung_up = True
            raise AgiHangup(f"Asterisk reported HANGUP (during {_shown(line)})")
        if item.code == 200:
            return item
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
            self._turns.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if not turn.cancelled():  # woken, then cancelled before running: hand the turn on
                    self._pass_turn()
                elif turn in self._turns:
                    self._turns.remove(turn)
                raise
        if self._hung_up or self._broken is not None:
            self._raise_unusable()

    def _pass_turn(self) -> None:
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    async def _raise_failure(self, reply: AgiReply, what: str) -> NoReturn:
        """``result=-1``: a hang-up or a plain failure; ``CHANNEL STATUS`` raises AgiHangup for the former."""
        await self.channel_status()
        raise AgiCommandError(reply.code, reply.text, what)

    # --- call control ----------------------------------------------------------------------------

    async def answer(self) -> None:
        reply = await self.command("ANSWER")
        if reply.result == "-1":
            await self._raise_failure(reply, "ANSWER")

    async def hangup(self) -> None:
        """Hang up the channel; a no-op when it is already gone (handy in ``finally`` blocks)."""
        if self._hung_up:
            return
        await self.command("HANGUP")
        self._hung_up = True

    async def channel_status(self) -> int:
        """Asterisk channel state: 4 ringing, 6 up, ... (``ast_channel_state``)."""
        return (await self.command("CHANNEL STATUS")).result_int

    async def exec(self, app: str, *args: str, timeout: float | None = None) -> int:
        """Run a dialplan application; ``args`` are joined with commas into its one argument.

        Pass ``timeout=math.inf`` for applications that last the whole call (``Dial``, ``Queue``).
        Returns the application's result; ``-1`` on a live channel is returned as is.
        """
        command_args = (app, ",".join(args)) if args else (app,)
        reply = await self.command("EXEC", *command_args, timeout=timeout)
        value = reply.result_int
        if value == -2:
            raise AgiCommandError(reply.code, f"{reply.text} (no application {app!r})", f"EXEC {app}")
        if value == -1:
            await self.channel_status()
        return value

    # --- media -----------------------------------------------------------------------------------

    async def stream_file(
        self, name: str, escape_digits: str = "", *, offset: int | None = None, timeout: float | None = None
    ) -> str | None:
        """Play a prompt (no extension); returns the escape digit pressed, or None.

        The default time limit is ``command_timeout``: give ``timeout`` for prompts longer than that.
        """
        args = (name, escape_digits) if offset is None else (name, escape_digits, offset)
        reply = await self.command("STREAM FILE", *args, timeout=timeout)
        return await self._digit_or_failure(reply, "STREAM FILE")

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        reply = await self.command("SAY DIGITS", digits, escape_digits)
        return await self._digit_or_failure(reply, "SAY DIGITS")

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """Wait for one DTMF digit; ``timeout_ms=-1`` waits forever. None on timeout."""
        budget = math.inf if timeout_ms < 0 else self._timeout + timeout_ms / 1000
        reply = await self.command("WAIT FOR DIGIT", timeout_ms, timeout=budget)
        return await self._digit_or_failure(reply, "WAIT FOR DIGIT")

    async def get_data(
        self, prompt: str, timeout_ms: int, max_digits: int, *, timeout: float | None = None
    ) -> GetDataResult:
        """Play ``prompt`` and collect up to ``max_digits`` digits (``#`` ends early)."""
        if timeout is None:
            per_digit = (timeout_ms if timeout_ms > 0 else _DEFAULT_DIGIT_WAIT_MS) / 1000
            timeout = self._timeout + per_digit * max(1, max_digits)
        reply = await self.command("GET DATA", prompt, timeout_ms, max_digits, timeout=timeout)
        if reply.result == "-1" and reply.data is None:
            await self._raise_failure(reply, "GET DATA")
        return GetDataResult(reply.result, reply.data == "timeout")

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
        if offset is not None:
            args.append(offset)
        if beep:
            args.append("BEEP")
        if silence_s is not None:
            args.append(f"s={silence_s}")
        if timeout is None:
            timeout = math.inf if timeout_ms < 0 else self._timeout + timeout_ms / 1000
        loop = asyncio.get_running_loop()
        started = loop.time()
        reply = await self.command("RECORD FILE", *args, timeout=timeout)
        early = silence_s is not None and (timeout_ms < 0 or loop.time() - started < timeout_ms / 1000)
        return await self._record_result(reply, early)

    async def _record_result(self, reply: AgiReply, early: bool) -> RecordResult:
        endpos = parse_int(reply.extra.get("endpos", "0"), reply.text)
        result = reply.result_int
        if reply.data == "hangup":
            self._hung_up = True
            return RecordResult("hangup", None, endpos)
        if reply.data == "dtmf" or (reply.data == "randomerror" and result > 0):
            return RecordResult("dtmf", _ascii_digit(reply), endpos)
        if reply.data == "timeout":
            return RecordResult("silence" if early else "timeout", None, endpos)
        if result == -1 and reply.data in ("randomerror", "waitfor"):
            try:
                await self._raise_failure(reply, "RECORD FILE")
            except AgiHangup:
                return RecordResult("hangup", None, endpos)
        raise AgiCommandError(reply.code, reply.text, "RECORD FILE")

    async def _digit_or_failure(self, reply: AgiReply, what: str) -> str | None:
        if reply.result == "0":
            return None
        if reply.result == "-1":
            await self._raise_failure(reply, what)
        return _ascii_digit(reply)

    # --- variables and logging -------------------------------------------------------------------

    async def get_variable(self, name: str) -> str | None:
        """A channel variable or function (``CALLERID(num)``); None when it is not set."""
        return _variable(await self.command("GET VARIABLE", name))

    async def get_full_variable(self, expression: str, channel: str | None = None) -> str | None:
        """Evaluate an expression such as ``${CALLERID(num)}-${EXTEN}`` (on ``channel`` if given)."""
        args = (expression,) if channel is None else (expression, channel)
        return _variable(await self.command("GET FULL VARIABLE", *args))

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, value)

    async def verbose(self, message: str, level: int = 1) -> None:
        """Write to the Asterisk console/log at ``level`` (1-4)."""
        await self.command("VERBOSE", message, level)


def _variable(reply: AgiReply) -> str | None:
    if reply.result == "0":
        return None
    if reply.result == "1":
        return reply.data or ""
    raise AgiProtocolError(f"unexpected variable reply {reply.text[:80]!r}")


def _ascii_digit(reply: AgiReply) -> str:
    """Digits come back as their character code (``result=50`` is ``"2"``)."""
    value = reply.result_int
    if not 0 < value < 128:
        raise AgiProtocolError(f"not a DTMF character code: {reply.text[:80]!r}")
    return chr(value)


def _shown(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\n")
