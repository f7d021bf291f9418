"""The ACD routing model: agents, queues with relaxation steps, waiting calls and explainable decisions.

Times are monotonic float seconds (``time.monotonic()`` in the caller), never datetimes: the router compares
and subtracts them on every decision, a float is the cheapest thing to compare, and a monotonic clock
cannot jump with NTP or daylight saving. Nothing in the ACD reads a clock: ``now`` is always an argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cti.errors import CtiError, InvalidInput

# (skill, minimum level) pairs sorted by skill: canonical and hashable, so calls needing the same skills
# share one set of eligible agents in the index.
Requirement = tuple[tuple[str, int], ...]


class AgentState(StrEnum):
    """Only ``available`` agents are ever offered a call; the values are stable strings for APIs."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


CALL_STATES = (AgentState.RINGING, AgentState.ON_CALL)
"""The states in which an agent is tied to a call (``AgentStatus.call``)."""


class Rule(StrEnum):
    """Which rule produced a decision (stable strings: they end up in call records and wallboards)."""

    PREFERRED = "preferred"  # the caller's preferred agent, within the window since the call arrived
    BEST_MATCH = "best_match"  # best skill score in the call's own queue, then longest idle
    BORROWED = "borrowed"  # nobody free in the own queue: an agent of a queue this step borrows from
    WAIT = "wait"  # no agent now; the call keeps waiting (only from ``Router.explain``)
    OVERFLOW = "overflow"  # no agent and the queue's max wait is reached: the caller moves the call


# Why an agent of a pool was not chosen, besides its state (AgentState values other than "available").
LACKS_SKILLS = "lacks_skills"
RANKED_LOWER = "ranked_lower"
MISSED_THIS_CALL = "missed_this_call"


class RoutingError(CtiError):
    """Root of the routing errors."""

    code = "acd.routing"


class SpecInvalid(InvalidInput):
    """An agent, queue or call refused; ``errors`` lists every problem at once."""

    code = "acd.spec_invalid"


class UnknownAgent(RoutingError):
    code = "acd.unknown_agent"


class UnknownQueue(RoutingError):
    code = "acd.unknown_queue"


class UnknownCall(RoutingError):
    code = "acd.unknown_call"


class DuplicateId(RoutingError):
    """An agent, queue or call added twice: replacing silently would hide a bookkeeping bug upstream."""

    code = "acd.duplicate_id"


class ClockWentBack(RoutingError):
    """``now`` smaller than in the previous pass: steps already taken cannot be undone, so refuse."""

    code = "acd.clock_went_back"


@dataclass(slots=True)
class Agent:
    """An agent as routing sees it. ``idle_since`` is when the agent last became available (longest idle)."""

    id: str
    skills: dict[str, int]
    team: str = ""
    state: AgentState = AgentState.LOGGED_OUT
    state_since: float = 0.0
    idle_since: float = 0.0
    pause_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingStep:
    """A relaxation applied once a call has waited ``after_s``; each step is complete on its own.

    Relative to the queue's (or call's) base skills: every minimum level lowered by ``level_delta`` (not
    below 0, which still requires holding the skill), then ``levels`` set per skill, then ``drop`` removed;
    ``borrow`` names queues whose agents (at those queues' own base skills) may take the call when none of
    its own is free. Steps do not accumulate: a later step repeats what it keeps of an earlier one.
    """

    after_s: float
    level_delta: int = 0
    levels: Mapping[str, int] = field(default_factory=dict)
    drop: frozenset[str] = frozenset()
    borrow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue: base skills {skill: minimum level}, relaxation steps, and when to give up (max wait)."""

    name: str
    required: Mapping[str, int]
    steps: tuple[RoutingStep, ...] = ()
    max_wait_s: float | None = None
    overflow_target: str | None = None  # opaque for routing ("voicemail:billing", a queue name...)


@dataclass(frozen=True, slots=True)
class WaitingCall:
    """A call waiting in a queue. ``priority`` (higher first) is computed by the caller of the ACD."""

    id: str
    queue: str
    priority: int
    arrived_at: float
    skills: Mapping[str, int] | None = None  # replaces the queue's base skills for this call (IVR choice)
    preferred_agent: str | None = None
    preferred_window_s: float = 0.0  # the preferred agent is tried first while waited < this
    excluded: frozenset[str] = frozenset()  # agents who let this call ring unanswered: try the others


@dataclass(frozen=True, slots=True)
class Pool:
    """The agents that may take a call at its step: those holding ``requirement``, labelled by queue."""

    queue: str
    requirement: Requirement


@dataclass(frozen=True, slots=True)
class PoolReport:
    """Why each agent of a pool was passed over: counts per reason (every agent counted once)."""

    pool: Pool
    skipped: Mapping[str, int]
    examples: Mapping[str, tuple[str, ...]]  # reason -> agent ids, only when asked for (``detail=True``)


@dataclass(frozen=True, slots=True)
class Explanation:
    """A sentence for people, plus the facts behind it for tools and tests."""

    summary: str
    preferred: str | None  # None, "chosen", "window_over", "unknown_agent", "lacks_skills" or a state
    pools: tuple[PoolReport, ...]  # the pools considered, up to the one the agent came from


@dataclass(frozen=True, slots=True)
class Decision:
    """What routing decided for one call; ``agent_id`` is None for ``wait`` and ``overflow``."""

    call_id: str
    queue: str
    agent_id: str | None
    step: int
    rule: Rule
    score: int | None
    waited_s: float
    overflow_target: str | None
    explanation: Explanation


# --- validation ---------------------------------------------------------------------------------------


def check_agent(agent: Agent) -> None:
    errors = _level_errors(f"agent {agent.id!r}", agent.skills)
    if not agent.id:
        errors.append("agent id is empty")
    if (agent.state is AgentState.PAUSED) != bool(agent.pause_reason):
        errors.append(f"agent {agent.id!r}: a pause reason goes with the paused state, and only with it")
    errors += _time_errors(f"agent {agent.id!r}", state_since=agent.state_since, idle_since=agent.idle_since)
    _raise(errors)


def check_queue(spec: QueueSpec) -> None:
    errors = _level_errors(f"queue {spec.name!r}", spec.required)
    if not spec.name:
        errors.append("queue name is empty")
    if spec.max_wait_s is not None and not (math.isfinite(spec.max_wait_s) and spec.max_wait_s >= 0):
        errors.append(f"queue {spec.name!r}: max_wait_s must be a finite number >= 0")
    errors += _step_errors(spec)
    _raise(errors)


def check_call(call: WaitingCall) -> None:
    errors = _level_errors(f"call {call.id!r}", call.skills or {})
    if not call.id or not call.queue:
        errors.append(f"call {call.id!r}: id and queue are required")
    if not (math.isfinite(call.preferred_window_s) and call.preferred_window_s >= 0):
        errors.append(f"call {call.id!r}: preferred_window_s must be a finite number >= 0")
    errors += _time_errors(f"call {call.id!r}", arrived_at=call.arrived_at)
    _raise(errors)


def _step_errors(spec: QueueSpec) -> list[str]:
    errors: list[str] = []
    previous = 0.0
    for number, step in enumerate(spec.steps, start=1):
        where = f"queue {spec.name!r} step {number}"
        if not (math.isfinite(step.after_s) and step.after_s > previous):
            errors.append(f"{where}: after_s must be finite and greater than the previous step's ({previous})")
        previous = step.after_s if math.isfinite(step.after_s) else previous
        if step.level_delta < 0:
            errors.append(f"{where}: level_delta must be >= 0 (a step relaxes)")
        errors += _level_errors(where, step.levels)
        if spec.name in step.borrow or len(set(step.borrow)) != len(step.borrow):
            errors.append(f"{where}: borrow lists other queues, each once")
    return errors


def _level_errors(where: str, levels: Mapping[str, int]) -> list[str]:
    return [
        f"{where}: skill {skill!r} level {level!r} must be an integer >= 0"
        for skill, level in levels.items()
        if not skill or isinstance(level, bool) or not isinstance(level, int) or level < 0
    ]


def _time_errors(where: str, **instants: float) -> list[str]:
    return [f"{where}: {name} must be finite" for name, value in instants.items() if not math.isfinite(value)]


def _raise(errors: Iterable[str]) -> None:
    found = list(errors)
    if found:
        raise SpecInvalid(found)
