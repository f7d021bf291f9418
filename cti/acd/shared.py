"""Agents' live states in the shared-state backend: the one truth every server node reads and changes.

Each agent is one key holding a JSON status. Every change is a compare-and-set of the whole value (a Lua
script on Redis), so two nodes can never both move one agent from ``available`` to ``ringing``: the second
sees the value changed and loses. A change is then published on ``CHANNEL`` so every node's router follows
at once; a node that misses messages (Redis outage) re-reads every key with ``snapshot``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace

from cti.acd.model import CALL_STATES, AgentState
from cti.errors import CtiError
from cti.state import StateBackend

log = logging.getLogger(__name__)

KEY_PREFIX = "acd:agent:"
CHANNEL = "acd:agents"
_ATTEMPTS = 20  # compare-and-set retries when another node changed the agent meanwhile


class AgentBusy(CtiError):
    """The change asked for does not apply to the agent's current state (the message says why)."""

    code = "acd.agent_busy"


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """One agent's live state. ``since`` is wall-clock epoch seconds (shared between nodes); ``misses`` counts
    ring-no-answer in a row; ``call`` is the call the agent rings for or talks to; ``node`` the server that
    owns that call (the caller's channel)."""

    agent_id: str
    state: AgentState = AgentState.LOGGED_OUT
    reason: str | None = None
    endpoint: str = ""
    call: str = ""
    node: str = ""
    since: float = 0.0
    misses: int = 0
    until: float = 0.0  # end of wrap-up (epoch seconds): any node may then make the agent available

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, raw: str) -> AgentStatus:
        data = json.loads(raw)
        data["state"] = AgentState(data["state"])
        return cls(**data)


Change = Callable[[AgentStatus], AgentStatus]
"""Computes the new status from the current one, or raises ``AgentBusy`` to refuse."""


class AgentBoard:
    """Reads and changes agents' statuses atomically; see the module docstring."""

    def __init__(self, state: StateBackend, wall_clock: Callable[[], float] = time.time) -> None:
        self._state = state
        self._wall_clock = wall_clock

    def now(self) -> float:
        return self._wall_clock()

    async def get(self, agent_id: str) -> AgentStatus:
        raw = await self._state.get(KEY_PREFIX + agent_id)
        return AgentStatus(agent_id) if raw is None else AgentStatus.decode(raw)

    async def snapshot(self) -> dict[str, AgentStatus]:
        """Every agent with a status in the backend (logged-out agents without a key are absent)."""
        statuses: dict[str, AgentStatus] = {}
        for key in await self._state.keys(KEY_PREFIX):
            raw = await self._state.get(key)
            if raw is not None:
                statuses[key.removeprefix(KEY_PREFIX)] = AgentStatus.decode(raw)
        return statuses

    async def change(self, agent_id: str, change: Change) -> AgentStatus:
        """Apply ``change`` atomically (retried while other nodes change the agent) and publish the result."""
        key = KEY_PREFIX + agent_id
        for _ in range(_ATTEMPTS):
            raw = await self._state.get(key)
            current = AgentStatus(agent_id) if raw is None else AgentStatus.decode(raw)
            new = change(current)
            if new == current:
                return current
            if await self._state.compare_and_set(key, raw, new.encode()):
                await self._publish(new)
                return new
        raise AgentBusy(f"agent {agent_id!r} kept changing; try again")

    async def seed(self, status: AgentStatus) -> bool:
        """Create the agent's key from persisted state, unless a live node already holds one (it wins)."""
        created = await self._state.set_if_absent(KEY_PREFIX + status.agent_id, status.encode())
        if created:
            await self._publish(status)
        return created

    async def forget(self, agent_id: str) -> None:
        """The agent was deleted from the configuration."""
        await self._state.delete(KEY_PREFIX + agent_id)
        await self._publish(AgentStatus(agent_id, since=self.now()))

    async def _publish(self, status: AgentStatus) -> None:
        try:
            await self._state.publish(CHANNEL, status.encode())
        except Exception:  # the key is the truth; other nodes resync from it after an outage
            log.warning("agent %s: could not publish its new state", status.agent_id, exc_info=True)

    # --- the transitions the ACD uses ---------------------------------------------------------------

    def reserve(self, call_id: str, node: str) -> Change:
        """available -> ringing for ``call_id``: the atomic step that prevents one agent two calls."""
        return lambda current: _reserve(current, call_id, node, self.now())

    def answered(self, call_id: str) -> Change:
        return lambda current: _for_call(current, call_id, AgentState.ON_CALL, self.now(), keep_call=True, misses=0)

    def finished(self, call_id: str, wrap_up_s: float) -> Change:
        """The call ended: wrap-up until ``now + wrap_up_s`` (available at once without wrap-up time)."""

        def change(current: AgentStatus) -> AgentStatus:
            now = self.now()
            if wrap_up_s <= 0:
                return _for_call(current, call_id, AgentState.AVAILABLE, now, misses=0)
            moved = _for_call(current, call_id, AgentState.WRAP_UP, now, keep_call=True, misses=0)
            return current if moved is current else replace(moved, until=now + wrap_up_s)

        return change

    def released(self, call_id: str) -> Change:
        """The caller left while the agent rang: the agent is free again, no miss counted."""
        return lambda current: _for_call(current, call_id, AgentState.AVAILABLE, self.now(), ringing_only=True)

    def missed(self, call_id: str, max_misses: int) -> Change:
        """Ring-no-answer: available again, or paused ("no-answer") after ``max_misses`` in a row."""

        def change(current: AgentStatus) -> AgentStatus:
            misses = current.misses + 1 if current.call == call_id else current.misses
            if misses >= max_misses:
                return _for_call(current, call_id, AgentState.PAUSED, self.now(), reason=NO_ANSWER, misses=0,
                                 ringing_only=True)
            return _for_call(current, call_id, AgentState.AVAILABLE, self.now(), misses=misses, ringing_only=True)

        return change

    def wrap_up_over(self, call_id: str) -> Change:
        """The wrap-up timer (or the agent) ends wrap-up for this call; any other state is left alone."""

        def change(current: AgentStatus) -> AgentStatus:
            if current.state is not AgentState.WRAP_UP or (call_id and current.call != call_id):
                return current
            return replace(current, state=AgentState.AVAILABLE, call="", node="", since=self.now(), until=0.0)

        return change

    def login(self, endpoint: str) -> Change:
        def change(current: AgentStatus) -> AgentStatus:
            if current.state not in (AgentState.LOGGED_OUT, AgentState.AVAILABLE, AgentState.PAUSED):
                raise AgentBusy(f"agent {current.agent_id!r} is {current.state.value}; log in again after the call")
            state = AgentState.AVAILABLE if current.state is AgentState.LOGGED_OUT else current.state
            since = self.now() if state is not current.state else current.since
            return replace(current, state=state, endpoint=endpoint, since=since)

        return change

    def pause(self, reason: str) -> Change:
        return lambda current: _idle_change(current, AgentState.PAUSED, self.now(), reason=reason)

    def resume(self) -> Change:
        return lambda current: _idle_change(current, AgentState.AVAILABLE, self.now())

    def logout(self) -> Change:
        return lambda current: _idle_change(current, AgentState.LOGGED_OUT, self.now(), endpoint="")


NO_ANSWER = "no-answer"  # the pause reason the ACD sets itself after too many ring-no-answer
_IDLE = (AgentState.AVAILABLE, AgentState.PAUSED, AgentState.WRAP_UP)


def _reserve(current: AgentStatus, call_id: str, node: str, now: float) -> AgentStatus:
    if current.state is not AgentState.AVAILABLE:
        raise AgentBusy(f"agent {current.agent_id!r} is {current.state.value}, not available")
    return replace(current, state=AgentState.RINGING, call=call_id, node=node, since=now, reason=None)


def _for_call(current: AgentStatus, call_id: str, state: AgentState, now: float, *, reason: str | None = None,
              keep_call: bool = False, misses: int | None = None, ringing_only: bool = False) -> AgentStatus:
    """A step of the agent's call; ignored (unchanged) when the agent is no longer on that call, or, for the
    ring-only steps (missed, released), no longer ringing for it: a late one must not free a talking agent."""
    allowed = (AgentState.RINGING,) if ringing_only else CALL_STATES
    if current.call != call_id or current.state not in allowed:
        return current
    return replace(current, state=state, reason=reason, since=now, call=call_id if keep_call else "",
                   node=current.node if keep_call else "", misses=current.misses if misses is None else misses)


def _idle_change(current: AgentStatus, state: AgentState, now: float, *, reason: str | None = None,
                 endpoint: str | None = None) -> AgentStatus:
    """Pause, resume and log out: refused while a call rings or is in progress (the reason says so)."""
    if current.state is AgentState.LOGGED_OUT and state is not AgentState.LOGGED_OUT:
        raise AgentBusy(f"agent {current.agent_id!r} is logged out; log in first")
    if current.state not in (*_IDLE, AgentState.LOGGED_OUT):
        raise AgentBusy(f"agent {current.agent_id!r} is {current.state.value}; try again after the call")
    if current.state is state and current.reason == reason:
        return current
    return replace(current, state=state, reason=reason, since=now, call="", node="", misses=0, until=0.0,
                   endpoint=current.endpoint if endpoint is None else endpoint)


def statuses_by_state(statuses: Mapping[str, AgentStatus]) -> dict[str, int]:
    """Counts per state value, every state present (wallboards and the stats API)."""
    counts = {state.value: 0 for state in AgentState}
    for status in statuses.values():
        counts[status.state.value] += 1
    return counts
