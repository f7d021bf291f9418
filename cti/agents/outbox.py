"""One desktop's websocket seen from the hub: a bounded queue and a sender task of its own.

While the desktop's first messages (``hello`` and the replay of what it missed) are being prepared, live events
are held back, then sent after them, skipping any the replay already carried: the desktop sees every sequenced
event once, in order. A desktop that stops reading is closed (code 4000) rather than slowing the node; it
reconnects and resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

log = logging.getLogger(__name__)

QUEUE_LIMIT = 256
RESYNC_CLOSE_CODE = 4000  # "reconnect and resume": a normal client reconnects at once


class SocketOutbox:
    def __init__(self, ws: web.WebSocketResponse, limit: int = QUEUE_LIMIT) -> None:
        self._ws = ws
        self._limit = limit
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._held: list[tuple[str, int | None]] | None = []
        self._task: asyncio.Task[None] | None = None
        self.dropped = False

    def push(self, text: str, seq: int | None = None) -> bool:
        if self.dropped:
            return False
        pending = len(self._held) if self._held is not None else self._queue.qsize()
        if pending >= self._limit:
            log.warning("a desktop stopped reading (%d messages pending); closing it so it resumes", pending)
            self.close_for_resync()
            return False
        if self._held is not None:
            self._held.append((text, seq))
        else:
            self._queue.put_nowait(text)
        return True

    def open(self, first: list[str], sent_up_to: int | None) -> None:
        """Send ``first``, then the held events whose sequence is after ``sent_up_to``; start the sender."""
        for text in first:
            self._queue.put_nowait(text)
        for text, seq in self._held or ():
            if seq is None or sent_up_to is None or seq > sent_up_to:
                self._queue.put_nowait(text)
        self._held = None
        self._task = asyncio.create_task(self._send(), name="desktop-sender")

    def send_now(self, text: str) -> None:
        """A reply to the desktop's own command: queued behind what is already on its way."""
        if not self.dropped:
            self._queue.put_nowait(text)

    def close_for_resync(self) -> None:
        if self.dropped:
            return
        self.dropped = True
        self._queue.put_nowait(None)
        task = asyncio.get_running_loop().create_task(self._ws.close(code=RESYNC_CLOSE_CODE, message=b"resync"))
        task.add_done_callback(lambda done: done.exception() if not done.cancelled() else None)

    async def aclose(self) -> None:
        self.dropped = True
        self._queue.put_nowait(None)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _send(self) -> None:
        while True:
            text = await self._queue.get()
            if text is None or self._ws.closed:
                return
            try:
                await self._ws.send_str(text)
            except (ConnectionError, RuntimeError):  # the browser went away mid-send: the reader sees it too
                return
            except UnicodeEncodeError:  # one message with a lone surrogate must not leave the desktop deaf
                log.error("a desktop message is not valid UTF-8; dropped: %r", text[:200])
