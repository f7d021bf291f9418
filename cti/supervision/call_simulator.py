"""Real test calls into the local Asterisk, driven from the supervision screen: a caller with a chosen number
dials a service number, the page's keypad presses its keys, and the page hangs up.

The caller is the ``;1`` half of an AMI-originated Local channel (``Local/<number>@<inbound context>``) parked in
the dialplan's ``[cti-sim]`` context, which only holds the line (``SIM_HOLD`` seconds at most, so a forgotten
call ends by itself); the ``;2`` half is the inbound call the IVR answers. Keys are played out of the caller's
half (AMI ``PlayDTMF``), so the IVR hears them as it hears a phone's. Numbers are checked strictly (digits and
a leading +) before they reach the dialplan, and only a few simulated calls run at once.

The calls are known to the node that placed them (the page polls the same server).
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from panoramisk.message import Message

from cti.ami import AmiActionFailed, AmiClient
from cti.errors import CtiError

PHONE_NUMBER = re.compile(r"^\+?[0-9]{1,20}$")
DIGITS = re.compile(r"^[0-9*#]{1,32}$")
CONTEXT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SIM_CONTEXT = "cti-sim"
CALLER_NAME = "CTI simulator"
MAX_CALLS = 3
HOLD_S = 600
ANSWER_TIMEOUT_S = 20
DTMF_MS = 250
KEEP_ENDED = 20
GONE_MEMORY = 200
HUNG_UP_BY_PAGE = "hung up from the page"


class SimulatorInvalid(CtiError):
    """A number, caller ID or key refused before anything is sent to Asterisk."""

    code = "simulator.invalid"


class TooManyCalls(CtiError):
    code = "simulator.too_many_calls"


class SimulatedCallNotFound(CtiError):
    code = "simulator.call_not_found"


class SimulatedCallEnded(CtiError):
    code = "simulator.call_ended"


class SimulatedCallFailed(CtiError):
    """Asterisk could not place the call (OriginateResponse Failure)."""

    code = "simulator.call_failed"


@dataclass
class SimulatedCall:
    id: str
    number: str
    caller_id: str
    placed_by: str
    channel: str
    uniqueid: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    state: Literal["up", "ended"] = "up"
    digits: str = ""
    ended_at: datetime | None = None
    cause: str = ""
    hanging_up: bool = False  # the page asked: Asterisk's Hangup event may come before the action's answer

    def end(self, cause: str) -> None:
        if self.state != "ended":
            self.state, self.ended_at = "ended", datetime.now(UTC)
            self.cause = HUNG_UP_BY_PAGE if self.hanging_up else cause

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "number": self.number, "caller_id": self.caller_id, "placed_by": self.placed_by,
                "channel": self.channel, "uniqueid": self.uniqueid, "state": self.state, "digits": self.digits,
                "started_at": self.started_at.isoformat(), "cause": self.cause,
                "ended_at": self.ended_at.isoformat() if self.ended_at else None}


def checked_number(value: Any, name: str) -> str:
    """Digits with an optional leading +, at most 20: nothing else can reach a channel name or caller ID."""
    if not isinstance(value, str) or not PHONE_NUMBER.fullmatch(value):
        raise SimulatorInvalid(f"{name}: digits with an optional leading +, at most 20 (got {value!r})")
    return value


def checked_digits(value: Any) -> str:
    if not isinstance(value, str) or not DIGITS.fullmatch(value):
        raise SimulatorInvalid(f"digits: 1 to 32 keys among 0-9, * and # (got {value!r})")
    return value


class CallSimulator:
    """Places, drives and ends simulated calls; ``attach`` follows their hang-ups on the AMI link."""

    def __init__(self, ami: AmiClient, inbound_context: str, *, max_calls: int = MAX_CALLS, hold_s: int = HOLD_S,
                 answer_timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        if not CONTEXT.fullmatch(inbound_context):
            raise SimulatorInvalid(f"inbound context {inbound_context!r}: letters, digits, '_' and '-' only")
        self.ami, self.inbound_context, self.max_calls = ami, inbound_context, max_calls
        self.hold_s, self.answer_timeout_s = hold_s, answer_timeout_s
        self._calls: dict[str, SimulatedCall] = {}
        self._placing = 0
        self._gone: deque[str] = deque(maxlen=GONE_MEMORY)  # hang-ups seen before their call was registered

    def attach(self) -> Callable[[], None]:
        """Follow Hangup events and resynchronise after a reconnection; returns the unsubscribe function."""
        self.ami.on_connected(self.resync)
        return self.ami.on_event("Hangup", self.on_hangup)

    # --- calls --------------------------------------------------------------------------------------------

    def calls(self) -> list[SimulatedCall]:
        self._expire()
        return sorted(self._calls.values(), key=lambda call: call.started_at, reverse=True)

    def get(self, call_id: str) -> SimulatedCall:
        call = self._calls.get(call_id)
        if call is None:
            raise SimulatedCallNotFound(f"no simulated call {call_id!r}")
        return call

    def active(self) -> int:
        self._expire()
        return sum(1 for call in self._calls.values() if call.state == "up")

    async def place(self, number: Any, caller_id: Any, placed_by: str) -> SimulatedCall:
        """Calls ``number`` as ``caller_id`` and returns once the IVR has answered (or raises)."""
        number, caller_id = checked_number(number, "number"), checked_number(caller_id, "caller_id")
        if self.active() + self._placing >= self.max_calls:
            raise TooManyCalls(f"at most {self.max_calls} simulated calls at once: hang one up first")
        self._placing += 1
        try:
            response = await self._originate(number, caller_id)
        finally:
            self._placing -= 1
        if str(response.get("Response", "")) != "Success":
            raise SimulatedCallFailed(f"Asterisk could not place the call to {number} "
                                      f"(reason {response.get('Reason', '?')})")
        call = SimulatedCall(secrets.token_hex(6), number, caller_id, placed_by, str(response.get("Channel", "")),
                             str(response.get("Uniqueid", "")))
        if call.channel in self._gone:
            call.end("hung up at once")
        self._calls[call.id] = call
        self._prune()
        return call

    async def _originate(self, number: str, caller_id: str) -> Message:
        variables = {"SIM_DIGITS": "", "SIM_PLAY": "", "SIM_HOLD": str(self.hold_s)}
        action_id = await self.ami.originate(
            f"Local/{number}@{self.inbound_context}", context=SIM_CONTEXT, exten="s", priority=1,
            caller_id=f'"{CALLER_NAME}" <{caller_id}>', variables=variables,
            timeout_ms=int(self.answer_timeout_s * 1000))
        return await self.ami.wait_originate_response(action_id, self.answer_timeout_s + 5)

    async def send_digits(self, call_id: str, digits: Any) -> SimulatedCall:
        """Plays each key out of the caller's half, in order, as a phone's keypad would."""
        keys = checked_digits(digits)
        call = self._live(call_id)
        for key in keys:
            try:
                await self.ami.send_action({"Action": "PlayDTMF", "Channel": call.channel, "Digit": key,
                                            "Duration": str(DTMF_MS)})
            except AmiActionFailed as exc:  # the channel went away between two keys
                call.end("gone")
                raise SimulatedCallEnded(f"the call has ended ({exc.response.get('Message', '')})") from None
            call.digits += key
        return call

    async def hang_up(self, call_id: str) -> SimulatedCall:
        call = self._live(call_id)
        call.hanging_up = True
        try:
            with contextlib.suppress(AmiActionFailed):  # already gone: ended either way
                await self.ami.send_action({"Action": "Hangup", "Channel": call.channel})
        except BaseException:  # not sent, or no answer: a later hang-up is not the page's doing
            if call.state != "ended":
                call.hanging_up = False
            raise
        call.end(HUNG_UP_BY_PAGE)
        return call

    def _live(self, call_id: str) -> SimulatedCall:
        call = self.get(call_id)
        self._expire()
        if call.state == "ended":
            raise SimulatedCallEnded(f"the call has ended ({call.cause})")
        return call

    # --- following the calls --------------------------------------------------------------------------------

    def on_hangup(self, event: Message) -> None:
        channel = str(event.get("Channel", ""))
        self._gone.append(channel)
        for call in self._calls.values():
            if call.state == "up" and call.channel == channel:
                call.end(str(event.get("Cause-txt", "")) or "hung up")

    async def resync(self) -> None:
        """After a reconnection, hang-ups that happened while the link was down are found by their absence."""
        if not any(call.state == "up" for call in self._calls.values()):
            return
        channels = {str(item.get("Channel", "")) for item in await self.ami.send_list_action(
            {"Action": "CoreShowChannels"})}
        for call in self._calls.values():
            if call.state == "up" and call.channel not in channels:
                call.end("gone while the AMI link was down")

    def _expire(self) -> None:
        """The dialplan ends a simulated call after ``hold_s``: past that (and a margin) it cannot still be up."""
        limit = datetime.now(UTC) - timedelta(seconds=self.hold_s + 60)
        for call in self._calls.values():
            if call.state == "up" and call.started_at < limit:
                call.end("past its maximum duration")

    def _prune(self) -> None:
        ended = [call for call in self._calls.values() if call.state == "ended"]
        for call in sorted(ended, key=lambda call: call.started_at)[:-KEEP_ENDED]:
            del self._calls[call.id]

    async def hang_up_all(self) -> None:
        """At shutdown: no simulated caller is left on the line."""
        for call in list(self._calls.values()):
            if call.state == "up" and self.ami.connected:
                try:
                    await self.hang_up(call.id)
                except CtiError:
                    call.end("server stopped")
