"""The FastAGI TCP server: one task per call, routed by script name, isolated from every other call.

Per connection: read the environment (bounded by ``env_timeout``, so a bare connect, a port scan or
garbage is logged and closed without holding anything), look the script up, run it, close the socket.
Closing is how a FastAGI server hands the call back to the dialplan, which continues after ``AGI()``.

An unknown script gets no command at all: the connection is closed straight away (logged as a warning,
reported as ``script_not_found``). Asterisk then continues the dialplan with ``AGISTATUS=SUCCESS``, so the
dialplan cannot tell; the log and the ``on_session_end`` callback are where it shows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from cti.agi.errors import AgiError, AgiHangup, AgiProtocolError, AgiScriptNotFound
from cti.agi.protocol import AgiEnvironment, parse_environment_block
from cti.agi.registry import ScriptRegistry
from cti.agi.session import AgiSession
from cti.agi.stats import AgiStats
from cti.settings import AgiSettings

logger = logging.getLogger(__name__)

MAX_ENV_LINES: Final = 512
"""Asterisk sends about 25 lines plus one per AGI() argument (at most 127)."""
STREAM_LIMIT: Final = 64 * 1024
"""Longest line we accept from Asterisk (a variable's value comes back on one line)."""
BACKLOG: Final = 1024
"""Pending connections the kernel queues for us: a burst of calls must not wait for SYN retries."""

Outcome = Literal["completed", "hangup", "failed", "timeout", "script_not_found", "bad_request", "cancelled"]


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """What ``on_session_end`` receives once per connection (for metrics; ``error_code`` is a stable code)."""

    script: str
    channel: str
    uniqueid: str
    outcome: Outcome
    error_code: str | None
    hung_up: bool
    duration: float


SessionEndCallback = Callable[[SessionEnd], None]
"""Called on the event loop once per connection: keep it quick (count, enqueue); exceptions are logged."""


class FastAgiServer:
    """Serves the scripts of ``registry`` on ``settings.host:settings.port`` (port 0 picks a free one).

    ``stats`` records command round trips and session setup times (``cti/agi/stats.py``); one is made
    when none is given.
    """

    def __init__(
        self,
        registry: ScriptRegistry,
        settings: AgiSettings,
        on_session_end: SessionEndCallback | None = None,
        stats: AgiStats | None = None,
    ) -> None:
        self.stats = AgiStats() if stats is None else stats
        self._registry = registry
        self._settings = settings
        self._on_session_end = on_session_end
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def port(self) -> int:
        """The port actually bound (useful when ``settings.port`` is 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("FastAgiServer is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_sessions(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FastAgiServer is already started")
        self._closing = False
        self._server = await asyncio.start_server(
            self._serve, self._settings.host, self._settings.port, limit=STREAM_LIMIT, backlog=BACKLOG
        )
        logger.info("FastAGI server listening on %s:%s", self._settings.host, self.port)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, give running calls ``grace`` seconds to finish, then cancel the rest."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing = True
        server.close()
        await asyncio.sleep(0)  # let connections accepted just before close() register themselves
        running = set(self._tasks)
        if running:
            _, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                logger.warning("cancelled %d AGI session(s) still running after %.1fs", len(pending), grace)
                await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> FastAgiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- one connection --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        started = time.monotonic()
        env: AgiEnvironment | None = None
        session: AgiSession | None = None
        outcome: Outcome = "bad_request"
        code: str | None = None
        try:
            if self._closing:
                outcome = "cancelled"
                return
            env, code = await self._read_environment(reader, writer)
            if env is not None:
                session, outcome, code = await self._run(env, reader, writer, started)
        except asyncio.CancelledError:
            outcome, code = "cancelled", None
            raise
        finally:
            self._tasks.discard(task)
            writer.close()
            self._report(env, session, outcome, code, time.monotonic() - started)

    async def _read_environment(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[AgiEnvironment | None, str | None]:
        peer = writer.get_extra_info("peername")
        # A bare timer rather than asyncio.timeout(): half the cost, and this runs once per call.
        timer = asyncio.get_running_loop().call_later(self._settings.env_timeout, _expire, reader)
        try:
            env = await _read_environment(reader)
            if reader.exception() is not None:  # expired just as the last bytes came in
                raise _EnvTimeout
        except _EnvTimeout:
            logger.warning("no AGI environment from %s within %.1fs: closing", peer, self._settings.env_timeout)
            return None, "agi.timeout"
        except AgiProtocolError as exc:
            logger.warning("bad AGI connection from %s: %s", peer, exc)
            return None, exc.code
        except ConnectionError as exc:
            logger.warning("bad AGI connection from %s: %s", peer, exc)
            return None, AgiProtocolError.code
        finally:
            timer.cancel()
        if env is None:  # health checks and port scans connect and close
            logger.info("connection from %s closed before sending anything", peer)
            return None, AgiProtocolError.code
        return env, None

    async def _run(
        self, env: AgiEnvironment, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, accepted_at: float
    ) -> tuple[AgiSession | None, Outcome, str | None]:
        try:
            script = self._registry.get(env.script)
        except AgiScriptNotFound as exc:
            logger.warning("%s (channel %s, uniqueid %s): closing", exc, env.channel, env.uniqueid)
            return None, "script_not_found", exc.code
        session = AgiSession(
            reader, writer, env, self._settings.command_timeout, stats=self.stats, accepted_at=accepted_at
        )
        try:
            await script(session)
        except AgiHangup:
            logger.debug("AGI %r: caller hung up (channel %s, uniqueid %s)", env.script, env.channel, env.uniqueid)
            return session, "hangup", AgiHangup.code
        except Exception as exc:
            code = exc.code if isinstance(exc, AgiError) else type(exc).__name__
            logger.error(
                "AGI script %r failed on channel %s (uniqueid %s): %s [%s]",
                *(env.script, env.channel, env.uniqueid, exc, code),
                exc_info=True,
            )
            return session, "timeout" if code == "agi.timeout" else "failed", code
        finally:
            session.close()
        return session, "completed", None

    def _report(
        self,
        env: AgiEnvironment | None,
        session: AgiSession | None,
        outcome: Outcome,
        code: str | None,
        duration: float,
    ) -> None:
        if self._on_session_end is None:
            return
        end = SessionEnd(
            script=env.script if env else "",
            channel=env.channel if env else "",
            uniqueid=env.uniqueid if env else "",
            outcome=outcome,
            error_code=code,
            hung_up=session.hung_up if session else False,
            duration=duration,
        )
        try:
            self._on_session_end(end)
        except Exception:
            logger.exception("on_session_end callback failed")


class _EnvTimeout(Exception):
    """Set on the StreamReader when the environment is late: the pending read raises it."""


def _expire(reader: asyncio.StreamReader) -> None:
    reader.set_exception(_EnvTimeout())


async def _read_environment(reader: asyncio.StreamReader) -> AgiEnvironment | None:
    """The environment block, or None when the peer closed without sending a byte.

    Two reads instead of one per line (the block is about 25 lines): the first four bytes must be
    ``agi_``, so garbage is refused at once, then everything up to the blank line.
    """
    try:
        head = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise AgiProtocolError("connection closed in the middle of the AGI environment") from None
    if head != b"agi_":
        raise AgiProtocolError(f"not an AGI environment (starts with {head!r})")
    try:
        block = head + await reader.readuntil(b"\n\n")
    except asyncio.IncompleteReadError:
        raise AgiProtocolError("connection closed in the middle of the AGI environment") from None
    except asyncio.LimitOverrunError:
        raise AgiProtocolError(f"AGI environment larger than {STREAM_LIMIT} bytes") from None
    text = block[:-2].decode("utf-8", "replace")  # without the closing "\n\n"
    if text.count("\n") >= MAX_ENV_LINES:
        raise AgiProtocolError(f"AGI environment longer than {MAX_ENV_LINES} lines")
    return parse_environment_block(text)
