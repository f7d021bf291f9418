"""panoramisk's AMIProtocol with the wire-level defects of 1.4 fixed.

What changes and why:
* bytes are decoded with one incremental UTF-8 decoder for the whole connection, so a character split
  across two TCP reads survives, and invalid bytes become U+FFFD (logged) instead of vanishing;
* a message ends at a blank line: ``\\r\\n\\r\\n`` as Asterisk sends it, or ``\\n\\n`` from a peer that ends lines
  with a bare LF (whose lines are then split on LF), so such a message cannot swallow the good one after it;
  only the bytes that arrived since the last read are searched, so a huge message costs linear time;
* each message is parsed and handled on its own: a bad one is logged and skipped, the link stays up;
* replies are matched by ActionID with explicit completion rules (``AmiAction``), so "successfully
  queued" without an ``Async`` header or "Added ... to queue" complete normally;
* a lost connection fails every pending action with ``AmiDisconnected``: nothing is ever re-sent.
There is no ``factory``: events go to one callback and the connection's end is the ``lost`` future.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections.abc import Callable, Mapping
from typing import Any

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from cti.ami.errors import AmiActionFailed, AmiBadAction, AmiDisconnected, AmiError, AmiNotConnected

log = logging.getLogger(__name__)

FRAME_END = "\r\n\r\n"
LF_FRAME_END = "\n\n"
"""Never inside Asterisk's own CRLF stream (a value ending in LF gives ``\\n\\r\\n``, which is not a message end)."""
GREETING_PREFIX = "Asterisk Call Manager/"
MAX_UNTERMINATED = 4 * 1024 * 1024
"""A peer that sends this much without a message end is broken; holding more would only eat memory."""
MAX_GREETING = 1024
"""Asterisk's first line is about 30 characters; a longer one is not an AMI server."""

EventCallback = Callable[[Message], None]


def new_action_id() -> str:
    """An ActionID from panoramisk's generator, for callers that must know it before sending."""
    return str(Action.action_id_generator())


def is_response(message: Message) -> bool:
    """A reply to an action; OriginateResponse events also carry a ``Response`` header but are events."""
    return "response" in message and "event" not in message


def _ends_list(message: Message) -> bool:
    return str(message.get("EventList", "")).lower() == "complete" or str(message.event).endswith("Complete")


def _announces_list(message: Message) -> bool:
    return (
        str(message.get("EventList", "")).lower() == "start" or "will follow" in str(message.message).lower()
    )


def split_frames(buffer: str, start: int = 0) -> tuple[list[str], str]:
    """The messages ended by a blank line in ``buffer`` and what follows the last one. Message ends are searched
    from ``start`` only (the caller knows there is none before it); each end is searched for once."""
    frames: list[str] = []
    begin = 0
    crlf, lf = buffer.find(FRAME_END, start), buffer.find(LF_FRAME_END, start)
    while crlf >= 0 or lf >= 0:
        end, size = (crlf, len(FRAME_END)) if lf < 0 or 0 <= crlf < lf else (lf, len(LF_FRAME_END))
        frames.append(buffer[begin:end])
        begin = end + size
        if 0 <= crlf < begin:
            crlf = buffer.find(FRAME_END, begin)
        if 0 <= lf < begin:
            lf = buffer.find(LF_FRAME_END, begin)
    return frames, buffer[begin:]


def _check_fields(fields: Mapping[str, object]) -> dict[str, object]:
    """Refuse CR/LF anywhere: a caller name from a CRM must never be able to inject AMI headers."""
    if not any(key.lower() == "action" for key in fields):
        raise AmiBadAction("an AMI action needs an 'Action' field")
    checked: dict[str, object] = {}
    for key, value in fields.items():
        many = isinstance(value, list | tuple)
        items = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
        if any(c in key for c in ":\r\n ") or any("\r" in t or "\n" in t for t in items):
            raise AmiBadAction(f"AMI field {key!r} contains a forbidden character")
        checked[key] = items if many else items[0]
    return checked


def _quiet(future: asyncio.Future[Any]) -> None:
    """Mark a failure as seen: nobody may be waiting any more, and that is fine."""
    if not future.cancelled():
        future.exception()


class AmiAction(Action):  # type: ignore[misc]
    """An action whose completion is decided from the first Response and, for lists, the closing event.

    panoramisk guesses "is this a list?" from the reply text; here the caller says so (``as_list``).
    """

    def __init__(self, fields: Mapping[str, object], *, as_list: bool) -> None:
        super().__init__(dict(fields), as_list=as_list)
        self.events: list[Message] = []

    def accepts(self, message: Message) -> bool:
        """Events sharing our ActionID belong to us only for list actions (OriginateResponse does not)."""
        return bool(self.as_list) or is_response(message)

    def add_message(self, message: Message) -> bool:
        """Record one message; True once the action is complete and its future is settled."""
        if is_response(message):
            return self._on_response(message)
        if _ends_list(message):
            self._settle(self.events)
            return True
        self.events.append(message)
        return False

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)

    def _on_response(self, message: Message) -> bool:
        self.responses.append(message)
        if not message.success:
            self.fail(AmiActionFailed(message))
        elif not self.as_list:
            self._settle(message)
        elif _announces_list(message):
            return False
        else:
            self._settle([])
        return True

    def _settle(self, value: object) -> None:
        if not self.future.done():
            self.future.set_result(value)


class AmiProtocol(AMIProtocol):  # type: ignore[misc]
    """One AMI TCP connection; the client's supervisor owns its life (panoramisk's Manager is not used)."""

    def __init__(self, on_event: EventCallback) -> None:
        loop = asyncio.get_running_loop()
        self._on_event = on_event
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self.transport: asyncio.Transport | None = None
        self.closed = True
        self.version: str | None = None
        self.responses: dict[str, AmiAction] = {}
        self.greeting: asyncio.Future[str] = loop.create_future()
        self.booted: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[Exception | None] = loop.create_future()
        self.greeting.add_done_callback(_quiet)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.closed = False
        self.log = log

    def submit(self, fields: Mapping[str, object], *, as_list: bool = False) -> AmiAction:
        """Write one action and register it for its reply; it is never re-sent by this class."""
        if self.closed or self.transport is None:
            raise AmiNotConnected("the AMI connection is closed")
        action = AmiAction(_check_fields(fields), as_list=as_list)
        if action.id in self.responses:
            raise AmiBadAction(f"ActionID {action.id!r} is already pending")
        self.responses[action.id] = action
        self.transport.write(str(action).encode("utf-8"))
        return action

    def send(self, data: Mapping[str, object], as_list: bool = False) -> asyncio.Future[Any]:
        """panoramisk's entry point, kept for compatibility; prefer ``submit``."""
        return self.submit(data, as_list=as_list).future  # type: ignore[no-any-return]

    def forget(self, action_id: str) -> None:
        """Drop a pending action (timed out or abandoned) so ``responses`` cannot grow forever."""
        self.responses.pop(action_id, None)

    def data_received(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if "\ufffd" in text:
            log.warning("invalid UTF-8 from Asterisk replaced by U+FFFD")
        start = max(0, len(self._buffer) - len(FRAME_END) + 1)  # an end may straddle the two reads
        self._buffer += text
        if not self.greeting.done():
            if not self._read_greeting():
                return
            start = 0
        frames, self._buffer = split_frames(self._buffer, start)
        for frame in frames:
            self._handle_frame(frame)
        if len(self._buffer) > MAX_UNTERMINATED:
            log.error(
                "AMI peer sent %d characters without a message end; dropping the link", len(self._buffer)
            )
            self.abort()

    def _read_greeting(self) -> bool:
        """The first line is ``Asterisk Call Manager/<version>``; anything else is not an AMI server."""
        line, sep, rest = self._buffer.partition("\n")
        if not sep:
            if len(self._buffer) > MAX_GREETING:
                self._refuse_greeting(self._buffer)
            return False
        self._buffer = rest
        line = line.removesuffix("\r")
        if line.startswith(GREETING_PREFIX):
            self.version = line[len(GREETING_PREFIX) :].strip()
            self.greeting.set_result(self.version)
            return True
        self._refuse_greeting(line)
        return False

    def _refuse_greeting(self, line: str) -> None:
        self.greeting.set_exception(AmiError(f"not an AMI server (first line {line[:80]!r})"))
        self.abort()

    def _handle_frame(self, frame: str) -> None:
        """Isolate each message: one that breaks parsing or handling must not take the link down."""
        frame = frame.strip("\r\n")  # not spaces: the last header may be an empty one ("Value: ")
        if "\r\n" not in frame:  # a peer ending lines with a bare LF (or a one-line message)
            frame = frame.replace("\n", "\r\n")
        try:
            message = Message.from_line(frame)
            if message is not None:
                self.handle_message(message)
        except Exception:
            log.exception("AMI message skipped: %r", frame[:300])

    def handle_message(self, message: Message) -> None:
        action_id = message.action_id
        action = self.responses.get(action_id) if isinstance(action_id, str) else None
        if action is not None and action.accepts(message):
            if action.add_message(message):
                self.responses.pop(action.id, None)
        elif "event" in message:
            self._event(message)
        else:
            log.debug("AMI reply for no pending action ignored: %r", message)

    def _event(self, message: Message) -> None:
        name = str(message.event).lower()
        if name == "fullybooted" and not self.booted.done():
            self.booted.set_result(None)
        self._on_event(message)
        if name == "shutdown":
            log.warning("Asterisk is shutting down (%s)", message.get("Shutdown", "?"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail what was pending (never queue it for replay, unlike panoramisk) and report the end."""
        self.closed = True
        pending, self.responses = list(self.responses.values()), {}
        for action in pending:
            action.fail(AmiDisconnected(f"AMI link lost while {action.get('Action', '?')} was pending"))
        if not self.greeting.done():
            self.greeting.set_exception(AmiDisconnected("AMI link closed before the greeting"))
        if not self.lost.done():
            self.lost.set_result(exc)

    def close(self) -> None:
        """Graceful close; ``connection_lost`` follows from the event loop."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Immediate close, for a dead peer whose socket buffer may never drain."""
        if self.transport is not None:
            self.transport.abort()
