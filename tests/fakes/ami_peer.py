"""An in-process AMI server for unit tests: scripted, and able to misbehave on demand.

It speaks enough of Asterisk's manager protocol for the adapter: greeting (or any banner), Login (configurable
secret, FullyBooted after success), Ping (can stop answering), Async Originate ("queued" then an
OriginateResponse event), CoreShowChannels lists, UserEvent, and any scripted reply. It can emit
events, split a write at chosen byte positions, drop every connection, and it records what it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Fields = Mapping[str, str]
Script = Sequence[Fields] | Callable[["AmiRequest"], Sequence[Fields]]

EOL = "\r\n"


@dataclass
class AmiRequest:
    """One action as received, headers in order (repeated headers such as Variable are kept)."""

    headers: list[tuple[str, str]]

    def get(self, key: str, default: str = "") -> str:
        return next((v for k, v in self.headers if k.lower() == key.lower()), default)

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == key.lower()]

    @property
    def action(self) -> str:
        return self.get("Action")


@dataclass
class _Conn:
    writer: asyncio.StreamWriter
    authed: bool = False


@dataclass
class AmiPeer:
    """Start with ``await peer.start()``; ``peer.port`` is then the listening port on 127.0.0.1."""

    username: str = "cti"
    secret: str = "s3cret"
    version: str = "9.0.0"
    answer_pings: bool = True
    answer_originates: bool = True
    originate_result: str = "Success"
    originate_response_delay: float = 0.01
    channels: list[dict[str, str]] = field(default_factory=list)
    received: list[AmiRequest] = field(default_factory=list)
    login_attempts: int = 0
    logins: int = 0
    banner: bytes | None = None
    """Sent instead of the greeting when set (junk, a non-AMI server, a greeting ended by a bare LF)."""
    _scripts: dict[str, Script] = field(default_factory=dict, init=False)
    _conns: list[_Conn] = field(default_factory=list, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _server: asyncio.Server | None = field(default=None, init=False)

    # -- control ------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the peer first"
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening, drop every client, and wait for every task so nothing outlives the test."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self.drop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def script(self, action: str, replies: Script) -> None:
        """Answer ``action`` with these messages (ActionID added); an empty list means never answer."""
        self._scripts[action.lower()] = replies

    @property
    def originate_count(self) -> int:
        return sum(1 for request in self.received if request.action.lower() == "originate")

    async def emit(self, fields: Fields, *, split_at: Iterable[int] = ()) -> None:
        """Send an event to every logged-in client, optionally cut into several writes."""
        await self.emit_raw(_encode(fields), split_at=split_at)

    async def emit_raw(self, data: bytes, *, split_at: Iterable[int] = ()) -> None:
        for conn in [c for c in self._conns if c.authed]:
            await _write_split(conn.writer, data, sorted(split_at))

    async def drop(self) -> None:
        """Abort every connection, as a crashed Asterisk or a cut cable would."""
        for conn in list(self._conns):
            conn.writer.transport.abort()
        self._conns.clear()

    # -- serving ------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = _Conn(writer)
        self._conns.append(conn)
        try:
            await self._converse(conn, reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            if conn in self._conns:
                self._conns.remove(conn)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _converse(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        greeting = f"Asterisk Call Manager/{self.version}{EOL}".encode() if self.banner is None else self.banner
        await _write(conn.writer, greeting)
        while True:
            raw = await reader.readuntil(b"\r\n\r\n")
            request = _parse(raw)
            self.received.append(request)
            for reply in self._replies(conn, request):
                await _write(conn.writer, _encode(reply))

    def _replies(self, conn: _Conn, request: AmiRequest) -> list[dict[str, str]]:
        action = request.action.lower()
        if action == "login":
            replies = self._login(conn, request)
        elif not conn.authed:
            replies = [{"Response": "Error", "Message": "Authentication Required"}]
        elif action in self._scripts:
            script = self._scripts[action]
            replies = [dict(r) for r in (script(request) if callable(script) else script)]
        else:
            replies = self._builtin(conn, request)
        return [_with_action_id(reply, request) for reply in replies]

    def _login(self, conn: _Conn, request: AmiRequest) -> list[dict[str, str]]:
        self.login_attempts += 1
        if request.get("Username") != self.username or request.get("Secret") != self.secret:
            return [{"Response": "Error", "Message": "Authentication failed"}]
        conn.authed = True
        self.logins += 1
        booted = {"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}
        return [{"Response": "Success", "Message": "Authentication accepted"}, booted]

    def _builtin(self, conn: _Conn, request: AmiRequest) -> list[dict[str, str]]:
        action = request.action.lower()
        if action == "ping":
            return [_pong()] if self.answer_pings else []
        if action == "originate":
            return self._originate(conn, request)
        if action == "coreshowchannels":
            return self._channels()
        if action == "userevent":
            event = {"Event": "UserEvent", "Privilege": "user,all"}
            event.update((k, v) for k, v in request.headers if k.lower() not in ("action", "actionid"))
            self._later(conn, 0.0, event)
            return [{"Response": "Success"}]
        message = (
            f"Invalid/unknown command: {request.action}. Use Action: ListCommands to show available commands."
        )
        return [{"Response": "Error", "Message": message}]

    def _originate(self, conn: _Conn, request: AmiRequest) -> list[dict[str, str]]:
        if not self.answer_originates:
            return []
        result = {
            "Event": "OriginateResponse",
            "ActionID": request.get("ActionID"),
            "Response": self.originate_result,
            "Channel": request.get("Channel"),
            "Reason": "4" if self.originate_result == "Success" else "1",
            "Uniqueid": f"{time.time():.6f}",
        }
        self._later(conn, self.originate_response_delay, result)
        return [{"Response": "Success", "Message": "Originate successfully queued"}]

    def _channels(self) -> list[dict[str, str]]:
        start = {"Response": "Success", "EventList": "start", "Message": "Channels will follow"}
        items = [{"Event": "CoreShowChannel", **channel} for channel in self.channels]
        done = {"Event": "CoreShowChannelsComplete", "EventList": "Complete", "ListItems": str(len(items))}
        return [start, *items, done]

    def _later(self, conn: _Conn, delay: float, event: dict[str, str]) -> None:
        async def send() -> None:
            await asyncio.sleep(delay)
            if conn in self._conns:
                await _write(conn.writer, _encode(event))

        task = asyncio.get_running_loop().create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _pong() -> dict[str, str]:
    return {"Response": "Success", "Ping": "Pong", "Timestamp": f"{time.time():.6f}"}


def _with_action_id(reply: dict[str, str], request: AmiRequest) -> dict[str, str]:
    """Asterisk puts ActionID right after Response; events without one stay as they are."""
    action_id = request.get("ActionID")
    if not action_id or "ActionID" in reply or ("Event" in reply and reply["Event"] == "FullyBooted"):
        return reply
    first, *rest = reply.items()
    return dict([first, ("ActionID", action_id), *rest])


def _parse(raw: bytes) -> AmiRequest:
    lines = raw.decode("utf-8", errors="replace").split(EOL)
    pairs = [line.split(": ", 1) for line in lines if ": " in line]
    return AmiRequest([(k, v) for k, v in pairs])


def _encode(fields: Fields) -> bytes:
    return ("".join(f"{k}: {v}{EOL}" for k, v in fields.items()) + EOL).encode("utf-8")


async def _write(writer: asyncio.StreamWriter, data: bytes) -> None:
    if writer.is_closing():
        return
    writer.write(data)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _write_split(writer: asyncio.StreamWriter, data: bytes, cuts: Sequence[int]) -> None:
    """Separate writes with a pause so the client's reads really see the pieces apart."""
    bounds = [0, *[c for c in cuts if 0 < c < len(data)], len(data)]
    for index, (start, end) in enumerate(itertools.pairwise(bounds)):
        if index:
            await asyncio.sleep(0.02)
        await _write(writer, data[start:end])


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Poll a condition; tests wait for states, never for fixed durations."""
    try:
        async with asyncio.timeout(within):
            while True:
                if predicate():
                    return
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"condition still false after {within}s") from None
