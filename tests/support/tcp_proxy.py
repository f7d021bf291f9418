"""A small TCP proxy a test can cut and restore, to take a service away from the server under test without
stopping the service itself (the shared test PostgreSQL keeps serving every other test).

    proxy = TcpProxy("127.0.0.1", 55432)
    await proxy.start()          # listens on 127.0.0.1:<proxy.port>
    await proxy.cut()            # new connections refused, open ones dropped (both ends see a reset/EOF)
    await proxy.restore()        # listening again on the same port
    await proxy.black_hole()     # connections accepted, nothing goes through either way: a network that drops
    await proxy.stop()

``cut`` closes the listening socket, so a client's connect fails at once with "connection refused", as when
the database server is down or restarting. ``black_hole`` is the nastier fault, a link that silently loses every
packet: connects hang, queries on open connections never get an answer; only the client's own timeouts end
them. ``restore`` resets the connections the hole swallowed, as their peers would have given up on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

CHUNK = 64 * 1024


@dataclass
class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port``; ``port`` stays the same across cuts."""

    target_host: str
    target_port: int
    port: int = 0
    connections: int = 0  # accepted since start, for the test's curiosity
    _server: asyncio.Server | None = field(default=None, init=False)
    _pipes: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set, init=False)
    _swallowing: bool = field(default=False, init=False)
    _swallowed: set[asyncio.StreamWriter] = field(default_factory=set, init=False)

    @property
    def cut_off(self) -> bool:
        return self._server is None

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for writer in list(self._writers):
            _abort(writer)
        pipes = list(self._pipes)
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)

    async def black_hole(self) -> None:
        """From now on nothing is forwarded, in either direction, on open or new connections."""
        await self.start()
        self._swallowing = True
        self._swallowed.update(self._writers)  # open connections lost packets too: reset on restore

    @property
    def swallowing(self) -> bool:
        return self._swallowing

    async def restore(self) -> None:
        self._swallowing = False
        for writer in list(self._swallowed):
            _abort(writer)
        self._swallowed.clear()
        await self.start()

    async def stop(self) -> None:
        await self.cut()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._swallowing:  # accepted (the SYN got through), then silence
            self._swallowed.add(client_writer)
            await _pipe(client_reader, None, self)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            _abort(client_writer)
            return
        self._writers.update((client_writer, upstream_writer))
        pipes = [asyncio.ensure_future(_pipe(client_reader, upstream_writer, self)),
                 asyncio.ensure_future(_pipe(upstream_reader, client_writer, self))]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            self._pipes.difference_update(pipes)
            for writer in (client_writer, upstream_writer):
                self._writers.discard(writer)
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, proxy: TcpProxy) -> None:
    """Copy until EOF; while the proxy swallows, what is read is dropped (``writer`` None: always)."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(CHUNK):
            if writer is None or proxy.swallowing:
                continue
            writer.write(data)
            await writer.drain()
    if writer is None:
        return
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close at once with a reset (SO_LINGER 0), as a crashed peer or a dropped link would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    transport = writer.transport
    transport.abort()


async def proxy_for_url(url: str) -> tuple[TcpProxy, str]:
    """A started proxy to the server of a database ``url``, and the same URL through the proxy."""
    target = make_url(url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    return proxy, target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
