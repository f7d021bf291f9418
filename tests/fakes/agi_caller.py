"""A scripted Asterisk-side FastAGI peer whose replies are coroutines, so a reply can wait on the test.

Like :class:`tests.fakes.agi_peer.AgiPeer` (same environment, same reply forms: text, ``Later``, ``CLOSE``,
``SILENT``), but ``respond(command)`` is awaited: while Asterisk "plays music", the test may log an agent in
and run a routing pass before the music slice ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from cti.agi.protocol import split_command
from tests.fakes.agi_peer import CLOSE, SILENT, Later, Reply, asterisk_env, env_block

AsyncResponder = Callable[[str], Awaitable[Reply]]


class AsyncAgiPeer:
    """One fake call; ``await peer.run()`` returns when the server closes, the peer closes, or ``timeout``."""

    def __init__(
        self,
        port: int,
        respond: AsyncResponder,
        *,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        timeout: float = 10.0,
    ) -> None:
        self.port = port
        self.host = host
        self.env = asterisk_env() if env is None else env
        self.timeout = timeout
        self._respond = respond
        self.commands: list[str] = []
        self.errors: list[str] = []
        self.closed_by_server = False

    @property
    def words(self) -> list[list[str]]:
        return [split_command(command) for command in self.commands]

    async def run(self) -> AsyncAgiPeer:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            async with asyncio.timeout(self.timeout):
                writer.write(env_block(self.env))
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
            reply = await self._respond(command)
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
