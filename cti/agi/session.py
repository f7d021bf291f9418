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


class _Deadline:
    """The per-command time limit, kept with one lazily re-armed timer per session.

    ``asyncio.timeout()`` inserts and cancels a timer-heap entry per command (about 5 µs, the largest
    cost measured by ``bench/agi_roundtrip.py``). Commands take milliseconds and limits are tens of
    seconds, so one timer that re-arms itself when it fires before the current command's deadline does
    the same job: it cancels the waiting task, and the session turns that into :class:`AgiTimeout`.
    """

    __slots__ = ("_due", "_handle", "_task", "_when", "expired")

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None
        self._due = math.inf  # when the armed timer fires
        self._task: asyncio.Task[object] | None = None  # the task waiting for a reply
        self._when = math.inf  # that reply's deadline
        self.expired = False

    def start(self, task: asyncio.Task[object], limit: float) -> None:
        self._task, self.expired = task, False
        if limit == math.inf:
            self._when = math.inf
            return
        loop = task.get_loop()
        self._when = when = loop.time() + limit
        if when < self._due:
            if self._handle is not None:
                self._handle.cancel()
            self._handle, self._due = loop.call_at(when, self._fire), when

    def stop(self) -> None:
        self._task, self._when = None, math.inf

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._due, self._task = None, math.inf, None

    def _fire(self) -> None:
        self._handle, self._due = None, math.inf
        task, when = self._task, self._when
        if task is None or when == math.inf:
            return  # idle or unlimited: the next command re-arms
        loop = task.get_loop()
        if when <= loop.time() + 0.001:
            self.expired = True
            task.cancel()
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
        self._deadline = _Deadline()

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
        if self._busy:
            await self._take_turn()
        self._busy = True
        try:
            reply = await self._exchange(line, self._timeout if timeout is None else timeout)
        finally:
            self._busy = False
            if self._turns:
                self._pass_turn()
        if reply.code == 200:
            return reply
        if reply.code == 511:
            self._hung_up = True
            raise AgiHangup(f"{reply.text} (to {_shown(line)})")
        raise AgiCommandError(reply.code, reply.text, _shown(line))

    async def _exchange(self, line: bytes, limit: float) -> AgiReply:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("AgiSession commands must run inside an asyncio task")
        cancelling = task.cancelling()
        self._deadline.start(task, limit)
        try:
            self._writer.write(line)
            while True:
                item = self._assembler.feed(decode_line(await self._reader.readuntil(b"\n")))
                if item is HANGUP:
                    self._hung_up = True
                    raise AgiHangup("Asterisk reported HANGUP")
                if item is not None:
                    return item
        except asyncio.CancelledError:
            if self._deadline.expired and task.uncancel() <= cancelling:
                self._broken = AgiTimeout(f"no reply to {_shown(line)} within {limit}s")
                raise self._broken from None
            self._broken = AgiError(f"cancelled while waiting for the reply to {_shown(line)}")
            raise
        except (ConnectionError, EOFError):  # EOFError includes IncompleteReadError: Asterisk closed
            self._hung_up = True
            raise AgiHangup(f"AGI connection lost during {_shown(line)}") from None
        except asyncio.LimitOverrunError:
            self._broken = AgiProtocolError(f"reply line too long after {_shown(line)}")
            raise self._broken from None
        except AgiProtocolError as exc:
            self._broken = exc
            raise
        finally:
            self._deadline.stop()

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
                if turn.cancelled():
                    if turn in self._turns:
                        self._turns.remove(turn)
                else:  # woken, then cancelled before running: hand the turn on
                    self._pass_turn()
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
