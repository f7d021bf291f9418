"""A scripted Asterisk-side FastAGI peer: connects like Asterisk, sends the environment, answers commands.

``script`` is either a list of ``(expected_prefix, reply)`` steps, consumed one per command, or a callable
``command -> reply`` (or a coroutine function, whose reply may wait on the test). A reply is the text to
send (several lines allowed, e.g. ``hangup_then(DEAD)`` sends the bare ``HANGUP`` line first),
``Later(seconds, text)``, ``CLOSE`` (drop the connection) or ``SILENT`` (send nothing).
Everything the peer sees is recorded: ``commands`` (raw lines), ``words`` (split as Asterisk splits them),
``errors`` (unexpected or mismatched commands), ``closed_by_server`` (EOF seen).
"""

from __future__ import annotations

import asyncio
import enum
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from cti.agi.protocol import split_command


class Action(enum.Enum):
    CLOSE = "close"
    SILENT = "silent"


CLOSE = Action.CLOSE
SILENT = Action.SILENT


@dataclass(frozen=True)
class Later:
    """Send ``reply`` after ``seconds`` (a slow command, e.g. a prompt being played)."""

    seconds: float
    reply: str


Reply = str | Action | Later
Responder = Callable[[str], Reply | Awaitable[Reply]]
"""Answers one command; a coroutine responder may wait on the test (an agent logs in while "music plays")."""

DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
UNKNOWN = "510 Invalid or unknown command"
USAGE_GET_DATA = (
    "520-Invalid command syntax.  Proper usage follows:\n"
    " Usage: GET DATA <file to be streamed> [timeout] [maximum digits]\n"
    "Stream the given file, and receive DTMF data. Returns the digits received from the channel at the "
    "other end.520 End of proper usage."
)


def hangup_then(reply: str = DEAD) -> str:
    """The caller hung up before the command ran: Asterisk sends ``HANGUP``, then answers the command."""
    return f"HANGUP\n{reply}"


def asterisk_env(
    script: str = "incoming",
    *,
    uniqueid: str = "1732350000.1",
    args: Sequence[str] = (),
    **fields: str,
) -> dict[str, str]:
    """An environment as Asterisk 22 sends it for a Local channel originate (``agi_dnid: unknown``).

    ``fields`` override ``agi_<name>`` values (``channel="PJSIP/100-0001"``).
    """
    env = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1:4573/{script}",
        "agi_channel": f"Local/100@from-pstn-{uniqueid.replace('.', '')};2",
        "agi_language": "en",
        "agi_type": "Local",
        "agi_uniqueid": uniqueid,
        "agi_version": "22.0.0",
        "agi_callerid": "0612345678",
        "agi_calleridname": "Alice Martin",
        "agi_callingpres": "0",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": "unknown",
        "agi_rdnis": "unknown",
        "agi_context": "from-pstn",
        "agi_extension": "100",
        "agi_priority": "1",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140211959031488",
    }
    env.update({f"agi_{key}": value for key, value in fields.items()})
    env.update({f"agi_arg_{index}": value for index, value in enumerate(args, start=1)})
    return env


def env_block(env: Mapping[str, str]) -> bytes:
    return "".join(f"{key}: {value}\n" for key, value in env.items()).encode() + b"\n"


class AgiPeer:
    """One fake call. ``await peer.run()`` returns when the server closes, the peer closes, or ``timeout``."""

    def __init__(
        self,
        port: int,
        script: Sequence[tuple[str, Reply]] | Responder = (),
        *,
        env: Mapping[str, str] | None = None,
        after_env: str | None = None,
        host: str = "127.0.0.1",
        timeout: float = 10.0,
    ) -> None:
        self.port = port
        self.host = host
        self.env = asterisk_env() if env is None else env
        self.after_env = after_env
        self.timeout = timeout
        self._responder = script if callable(script) else None
        self._steps = list(script) if not callable(script) else []
        self.commands: list[str] = []
        self.errors: list[str] = []
        self.closed_by_server = False

    @property
    def words(self) -> list[list[str]]:
        return [split_command(command) for command in self.commands]

    async def run(self) -> AgiPeer:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            async with asyncio.timeout(self.timeout):
                writer.write(env_block(self.env))
                if self.after_env is not None:
                    writer.write(self.after_env.encode() + b"\n")
                await self._converse(reader, writer)
        except TimeoutError:
            self.errors.append(f"peer gave up after {self.timeout}s")
        finally:
            writer.close()
        return self

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            raw = await reader.readline()
            if not raw.endswith(b"\n"):
                self.closed_by_server = True
                return
            command = raw.decode().rstrip("\n")
            self.commands.append(command)
            reply = self._reply_for(command)
            if inspect.isawaitable(reply):
                reply = await reply
            if reply is CLOSE:
                writer.transport.abort()
                return
            if isinstance(reply, Later):
                await asyncio.sleep(reply.seconds)
                reply = reply.reply
            if reply is not SILENT:
                assert isinstance(reply, str)
                writer.write(reply.encode() + b"\n")
                await writer.drain()

    def _reply_for(self, command: str) -> Reply | Awaitable[Reply]:
        if self._responder is not None:
            return self._responder(command)
        if not self._steps:
            self.errors.append(f"unexpected command {command!r}")
            return UNKNOWN
        prefix, reply = self._steps.pop(0)
        if not command.startswith(prefix):
            self.errors.append(f"expected {prefix!r}..., got {command!r}")
        return reply

    @property
    def unused_steps(self) -> list[tuple[str, Reply]]:
        return list(self._steps)


async def connect_and_close(port: int, *, host: str = "127.0.0.1") -> None:
    """What a TCP health check or a port scan does."""
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    await writer.wait_closed()


async def connect_and_send(
    port: int, data: bytes = b"", *, eof: bool = False, host: str = "127.0.0.1", wait: float = 5.0
) -> bytes:
    """Send ``data`` (maybe nothing; ``eof`` then shuts our side down) and return what the server sent
    before closing; TimeoutError if it keeps the connection open longer than ``wait``."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if data:
            writer.write(data)
            await writer.drain()
        if eof:
            writer.write_eof()
        async with asyncio.timeout(wait):
            return await reader.read()
    finally:
        writer.close()
