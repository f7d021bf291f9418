"""Async Originate: building the action and keeping its later OriginateResponse for the caller.

``originate`` returns as soon as Asterisk says "queued" (panoramisk made callers wait for the
OriginateResponse, up to the ring timeout); the response event is parked here, keyed by ActionID.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from panoramisk.message import Message

from cti.ami.errors import AmiActionTimeout, AmiBadAction, AmiDisconnected, AmiUnknownAction

log = logging.getLogger(__name__)

KEEP_RESULT_FOR = 60.0
"""Seconds an OriginateResponse (or its failure) stays collectable; after that it is forgotten."""


def originate_fields(
    channel: str,
    *,
    context: str | None,
    exten: str | None,
    priority: int | str,
    application: str | None,
    data: str | None,
    caller_id: str | None,
    variables: Mapping[str, str] | None,
    timeout_ms: int,
) -> dict[str, object]:
    """The Originate action (always ``Async: true``); target is context/exten/priority XOR application."""
    fields: dict[str, object] = {"Action": "Originate", "Channel": channel, "Async": "true"}
    fields.update(_target(context, exten, priority, application, data))
    fields["Timeout"] = str(int(timeout_ms))
    if caller_id:
        fields["CallerID"] = caller_id
    if variables:
        fields["Variable"] = _variables(variables)
    return fields


def _target(
    context: str | None, exten: str | None, priority: int | str, application: str | None, data: str | None
) -> dict[str, object]:
    if application is not None:
        if context is not None or exten is not None:
            raise AmiBadAction("originate: give context/exten or application, not both")
        return {"Application": application, "Data": data or ""}
    if not context or not exten:
        raise AmiBadAction("originate: context and exten are required when no application is given")
    return {"Context": context, "Exten": exten, "Priority": str(priority)}


def _variables(variables: Mapping[str, str]) -> list[str]:
    for name in variables:
        if not name or "=" in name:
            raise AmiBadAction(f"originate: bad channel variable name {name!r}")
    return [f"{name}={value}" for name, value in variables.items()]


@dataclass
class _Entry:
    future: asyncio.Future[Message]
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


def _quiet(future: asyncio.Future[Message]) -> None:
    if not future.cancelled():
        future.exception()


class OriginateTracker:
    """OriginateResponse futures by ActionID, each with a bounded life so none leaks."""

    def __init__(self, keep_for: float = KEEP_RESULT_FOR) -> None:
        self._keep_for = keep_for
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def expect(self, action_id: str, deadline: float) -> None:
        """Register before sending: the response may arrive in the same read as the "queued" reply."""
        loop = asyncio.get_running_loop()
        entry = _Entry(loop.create_future())
        entry.future.add_done_callback(_quiet)
        entry.timers.append(loop.call_later(deadline, self._expire, action_id, deadline))
        self._entries[action_id] = entry

    def resolve(self, event: Message) -> None:
        entry = self._entries.get(str(event.action_id or ""))
        if entry is not None and not entry.future.done():
            entry.future.set_result(event)
            self._forget_later(str(event.action_id), entry)

    def discard(self, action_id: str) -> None:
        """The Originate itself failed (error, timeout, link lost before "queued"): nothing will come."""
        entry = self._entries.pop(action_id, None)
        if entry is not None:
            self._cancel(entry)

    def fail_pending(self, reason: str) -> None:
        """The link dropped: OriginateResponses not yet received are lost with it."""
        for action_id, entry in list(self._entries.items()):
            if not entry.future.done():
                entry.future.set_exception(AmiDisconnected(reason))
                self._forget_later(action_id, entry)

    async def wait(self, action_id: str, seconds: float) -> Message:
        """Shielded: giving up waiting does not destroy the result for another waiter."""
        entry = self._entries.get(action_id)
        if entry is None:
            raise AmiUnknownAction(f"no Originate {action_id!r} is tracked (unknown or expired)")
        try:
            async with asyncio.timeout(seconds):
                return await asyncio.shield(entry.future)
        except TimeoutError:
            raise AmiActionTimeout(f"no OriginateResponse for {action_id} within {seconds}s") from None

    def close(self) -> None:
        for entry in self._entries.values():
            self._cancel(entry)
        self._entries.clear()

    def _expire(self, action_id: str, deadline: float) -> None:
        entry = self._entries.get(action_id)
        if entry is not None and not entry.future.done():
            log.warning("no OriginateResponse for %s after %.1fs; giving up on it", action_id, deadline)
            entry.future.set_exception(AmiActionTimeout(f"no OriginateResponse for {action_id}"))
            self._forget_later(action_id, entry)

    def _forget_later(self, action_id: str, entry: _Entry) -> None:
        loop = asyncio.get_running_loop()
        entry.timers.append(loop.call_later(self._keep_for, self._forget, action_id, entry))

    def _forget(self, action_id: str, entry: _Entry) -> None:
        if self._entries.get(action_id) is entry:
            del self._entries[action_id]
            self._cancel(entry)

    @staticmethod
    def _cancel(entry: _Entry) -> None:
        for timer in entry.timers:
            timer.cancel()
        if not entry.future.done():
            entry.future.cancel()
