"""Drives a real baresip phone over its ctrl_tcp socket (netstring-framed JSON).

Commands are ``{"command": ..., "params": ..., "token": ...}``; baresip answers with
``{"response": true, "ok": ..., "token": ...}`` and sends events (``{"event": true, "type": ...}``)
on the same socket.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any


class BaresipPhone:
    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tokens = itertools.count(1)
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._responses: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._pump: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(*self._address)
        self._pump = asyncio.create_task(self._read_loop())

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    async def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        assert self._writer is not None, "connect() first"
        token = str(next(self._tokens))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[token] = future
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(b"%d:%s," % (len(body), body))
        await self._writer.drain()
        return await asyncio.wait_for(future, timeout)

    async def wait_event(self, kind: str, timeout: float) -> dict[str, Any]:
        """The next event of type ``kind``; on timeout the error lists the events seen instead."""
        skipped: list[str] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = await self.events.get()
                    if event.get("type") == kind:
                        return event
                    skipped.append(f"{event.get('type')}: {event.get('param', '')}")
        except TimeoutError:
            raise AssertionError(f"no {kind} from baresip within {timeout} s; events seen: {skipped}") from None

    async def _read_loop(self) -> None:
        assert self._reader is not None
        while True:
            length = int((await self._reader.readuntil(b":"))[:-1])
            message = json.loads((await self._reader.readexactly(length + 1))[:-1])
            if message.get("response") and message.get("token") in self._responses:
                self._responses.pop(message["token"]).set_result(message)
            elif message.get("event"):
                self.events.put_nowait(message)
