"""The skills-based ACD's routing: waiting calls meet available agents, one explainable decision each.

``Router`` holds agents, queues and waiting calls in memory and is updated incrementally (an agent's
state or skills change, a call arrives or leaves). ``next_assignments(now)`` then gives as many waiting
calls as possible an agent, highest priority then oldest first, never one agent twice, and marks each
chosen agent ``ringing`` (the caller rings it, then reports ``on_call`` or frees it). Policy per call:

1. its preferred agent, while the call has waited less than its window, if available and holding the
   skills of the call's current step (in any of its pools);
2. otherwise the best skill score among the available agents of its own pool, then longest idle;
3. otherwise the same in each borrowed pool of its step, in the order listed;
4. nobody: it waits, or overflows once its queue's max wait is reached (the decision says so, and the
   call leaves the router: the caller sends it to voicemail or enqueues it elsewhere).

Times are monotonic float seconds passed in (see ``cti.acd.model``). Speed comes from three things:

* calls are grouped by the pools they need right now; a group whose head finds nobody is done for the
  pass, since every later call in it needs the same agents;
* a group found done stays done until one of its requirements gains an available agent (the index
  reports those) or a call joins it, so a pass only looks at such groups: O(changes), not O(groups);
* ``AgentIndex`` gives the best available agent of a requirement without scanning agents.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from heapq import heapify, heappop, heappush, heapreplace
from itertools import count
from typing import NamedTuple

from cti.acd.index import AgentIndex
from cti.acd.model import (
    Agent,
    AgentState,
    ClockWentBack,
    Decision,
    DuplicateId,
    Pool,
    PoolReport,
    QueueSpec,
    Requirement,
    Rule,
    SpecInvalid,
    UnknownAgent,
    UnknownCall,
    UnknownQueue,
    WaitingCall,
    check_agent,
    check_call,
    check_queue,
)
from cti.acd.naive import report, scan
from cti.acd.policy import CallOrder, assigned, call_order, pools_at, preferred_outcome, step_at, unassigned

RouteKey = tuple[Pool, ...]
GroupKey = tuple[RouteKey, frozenset[str]]  # the pools, and the agents the calls exclude


@dataclass(slots=True, eq=False)
class _Group:
    """The waiting calls that need the same pools, in call order. Hashed by identity: keys are long."""

    key: RouteKey
    excluded: frozenset[str] = frozenset()
    calls: list[CallOrder] = field(default_factory=list)


@dataclass(slots=True)
class _Waiting:
    """A waiting call with its group for every step found up front; ``serial`` tells re-used ids apart."""

    call: WaitingCall
    order: CallOrder
    groups: tuple[_Group, ...]
    step: int
    serial: int


class _Choice(NamedTuple):
    agent: Agent | None
    pool: int  # index of the last pool considered (the one the agent comes from)
    preferred: str | None


class Router:
    """Routing state and policy; see the module docstring. Not thread-safe: one event loop owns it."""

    def __init__(self) -> None:
        self._index = AgentIndex()
        self._queues: dict[str, QueueSpec] = {}
        self._calls: dict[str, _Waiting] = {}
        self._groups: dict[GroupKey, _Group] = {}  # kept when empty: bounded like the requirements
        self._users: dict[Requirement, list[_Group]] = {}  # requirement -> groups with a pool needing it
        self._dirty: set[_Group] = set()  # calls joined since the last pass
        self._step_due: list[tuple[float, int, str, int]] = []  # (when, serial, call id, step it leaves)
        self._deadlines: list[tuple[float, int, str]] = []  # (max wait reached, serial, call id)
        self._serials = count()
        self._now = -math.inf

    # --- queues ------------------------------------------------------------------------------------

    def add_queue(self, spec: QueueSpec) -> None:
        """Register a queue; queues it borrows from may come later, but before its first call."""
        check_queue(spec)
        if spec.name in self._queues:
            raise DuplicateId(f"queue {spec.name!r} already exists")
        self._queues[spec.name] = spec

    # --- agents ------------------------------------------------------------------------------------

    def add_agent(self, agent: Agent) -> None:
        """Register a copy of ``agent`` (later changes go through ``set_state`` / ``set_skills``)."""
        check_agent(agent)
        if agent.id in self._index.agents:
            raise DuplicateId(f"agent {agent.id!r} already exists")
        self._index.add(replace(agent, skills=dict(agent.skills)))

    def remove_agent(self, agent_id: str) -> None:
        self._agent(agent_id)
        self._index.remove(agent_id)

    def set_state(self, agent_id: str, state: AgentState, now: float, *, reason: str | None = None) -> None:
        """Change an agent's state; ``reason`` is required for ``paused`` and refused otherwise."""
        self._agent(agent_id)
        if (state is AgentState.PAUSED) != bool(reason):
            raise SpecInvalid([f"agent {agent_id!r}: a pause reason goes with the paused state, and only with it"])
        self._index.set_state(agent_id, state, now, reason)

    def set_skills(self, agent_id: str, skills: Mapping[str, int]) -> None:
        check_agent(replace(self._agent(agent_id), skills=dict(skills)))
        self._index.set_skills(agent_id, skills)

    def agent(self, agent_id: str) -> Agent:
        """A copy of the agent as the router sees it."""
        agent = self._agent(agent_id)
        return replace(agent, skills=dict(agent.skills))

    def agents(self) -> list[Agent]:
        return [self.agent(agent_id) for agent_id in self._index.agents]

    # --- calls -------------------------------------------------------------------------------------

    def add_call(self, call: WaitingCall) -> None:
        """Start routing ``call``; its step is brought up to date at the next pass."""
        check_call(call)
        if call.id in self._calls:
            raise DuplicateId(f"call {call.id!r} is already waiting")
        entry = _Waiting(call, call_order(call), self._route_groups(call), 0, next(self._serials))
        self._calls[call.id] = entry
        self._file(entry)
        spec = self._queues[call.queue]
        if spec.steps:
            heappush(self._step_due, (call.arrived_at + spec.steps[0].after_s, entry.serial, call.id, 0))
        if spec.max_wait_s is not None:
            heappush(self._deadlines, (call.arrived_at + spec.max_wait_s, entry.serial, call.id))

    def remove_call(self, call_id: str) -> WaitingCall:
        """Stop routing a call (the caller hung up, or it was answered some other way)."""
        entry = self._calls.get(call_id)
        if entry is None:
            raise UnknownCall(f"no waiting call {call_id!r}")
        self._forget(entry)
        return entry.call

    def calls(self) -> list[WaitingCall]:
        """The waiting calls in routing order (priority, then arrival)."""
        return [entry.call for entry in sorted(self._calls.values(), key=lambda entry: entry.order)]

    # --- routing -----------------------------------------------------------------------------------

    def next_assignments(self, now: float, *, detail: bool = False) -> list[Decision]:
        """One pass: every assignment possible now, in call order, then the calls that overflow.

        Each assigned agent is left ``ringing``. ``detail=True`` lists every agent in the explanations
        (a full scan per decision: for people asking why, not for the hot path).
        """
        if now < self._now:
            raise ClockWentBack(f"now={now} is before the previous pass ({self._now})")
        self._now = now
        self._advance_steps(now)
        decisions = self._assign(now, detail)
        return decisions + self._overflow(now, detail)

    def explain(self, call_id: str, now: float, *, detail: bool = True) -> Decision:
        """What routing would decide for this call alone now (``wait`` if nobody); nothing is reserved.

        It ignores calls ahead of this one, which may take the agent named first.
        """
        entry = self._calls.get(call_id)
        if entry is None:
            raise UnknownCall(f"no waiting call {call_id!r}")
        call = entry.call
        step = step_at(self._queues[call.queue], call.arrived_at, now)
        pools = entry.groups[step].key
        return self._decision(call, step, pools, self._choose(call, pools, now), now, detail)

    # --- internals: calls --------------------------------------------------------------------------

    def _route_groups(self, call: WaitingCall) -> tuple[_Group, ...]:
        spec = self._queues.get(call.queue)
        if spec is None:
            raise UnknownQueue(f"call {call.id!r}: no queue {call.queue!r}")
        missing = sorted({name for step in spec.steps for name in step.borrow} - self._queues.keys())
        if missing:
            raise UnknownQueue(f"queue {spec.name!r} borrows from unknown queues {missing}")
        steps = range(len(spec.steps) + 1)
        return tuple(self._group(pools_at(self._queues, call, step), call.excluded) for step in steps)

    def _group(self, key: RouteKey, excluded: frozenset[str]) -> _Group:
        group = self._groups.get((key, excluded))
        if group is None:
            group = self._groups[key, excluded] = _Group(key, excluded)
            for pool in key:
                self._index.track(pool.requirement)
                self._users.setdefault(pool.requirement, []).append(group)
        return group

    def _file(self, entry: _Waiting) -> None:
        group = entry.groups[entry.step]
        insort(group.calls, entry.order)
        self._dirty.add(group)

    def _unfile(self, entry: _Waiting) -> None:
        group = entry.groups[entry.step]
        del group.calls[bisect_left(group.calls, entry.order)]
        if group.excluded and not group.calls:  # such groups are per call: drop them, unlike the shared ones
            self._drop(group)

    def _drop(self, group: _Group) -> None:
        del self._groups[group.key, group.excluded]
        self._dirty.discard(group)
        for pool in group.key:
            users = self._users[pool.requirement]
            if group in users:
                users.remove(group)

    def _forget(self, entry: _Waiting) -> None:
        self._unfile(entry)
        del self._calls[entry.call.id]

    def _advance_steps(self, now: float) -> None:
        """Move the calls whose next relaxation step has started to the group of their new step."""
        due = self._step_due
        while due and due[0][0] <= now:
            _, serial, call_id, step = heappop(due)
            entry = self._calls.get(call_id)
            if entry is None or entry.serial != serial or entry.step != step:
                continue
            spec = self._queues[entry.call.queue]
            self._unfile(entry)
            entry.step = step_at(spec, entry.call.arrived_at, now)
            self._file(entry)
            if entry.step < len(spec.steps):
                when = entry.call.arrived_at + spec.steps[entry.step].after_s
                heappush(due, (when, serial, call_id, entry.step))

    # --- internals: the pass -----------------------------------------------------------------------

    def _assign(self, now: float, detail: bool) -> list[Decision]:
        """Merge the heads of the groups that may route in call order; a head finding nobody closes its group."""
        heads = [(group.calls[0], group) for group in self._candidates() if group.calls]
        heapify(heads)
        decisions: list[Decision] = []
        while heads:
            order, group = heads[0]
            entry = self._calls[order[2]]
            choice = self._choose(entry.call, group.key, now)
            if choice.agent is None:
                heappop(heads)
                continue
            decisions.append(self._decision(entry.call, entry.step, group.key, choice, now, detail))
            self._index.set_state(choice.agent.id, AgentState.RINGING, now)
            self._forget(entry)
            if group.calls:
                heapreplace(heads, (group.calls[0], group))
            else:
                heappop(heads)
        return decisions

    def _candidates(self) -> set[_Group]:
        """Groups joined by a call, or needing a requirement that gained an agent, since the last pass.

        Every other group was left closed by the last pass (no available agent in any of its pools) and
        nothing since can have opened it: agents only left its pools.
        """
        candidates, self._dirty = self._dirty, set()
        for needed in self._index.take_opened():
            candidates.update(self._users.get(needed, ()))
        return candidates

    def _overflow(self, now: float, detail: bool) -> list[Decision]:
        """The calls still waiting at their queue's max wait leave with an ``overflow`` decision."""
        reached: list[_Waiting] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, serial, call_id = heappop(self._deadlines)
            entry = self._calls.get(call_id)
            if entry is not None and entry.serial == serial:
                reached.append(entry)
        reached.sort(key=lambda entry: entry.order)
        decisions = []
        for entry in reached:
            key = entry.groups[entry.step].key
            choice = _Choice(None, len(key) - 1, self._preferred(entry.call, key, now)[0])
            decisions.append(self._decision(entry.call, entry.step, key, choice, now, detail))
            self._forget(entry)
        return decisions

    def _choose(self, call: WaitingCall, pools: RouteKey, now: float) -> _Choice:
        preferred, where = self._preferred(call, pools, now)
        if preferred == "chosen":
            return _Choice(self._index.agents[call.preferred_agent or ""], where, preferred)
        for index, pool in enumerate(pools):
            best = self._index.best(pool.requirement, call.excluded)
            if best is not None:
                return _Choice(best[0], index, preferred)
        return _Choice(None, len(pools) - 1, preferred)

    def _preferred(self, call: WaitingCall, pools: RouteKey, now: float) -> tuple[str | None, int]:
        favourite = None if call.preferred_agent is None else self._index.agents.get(call.preferred_agent)
        return preferred_outcome(call, favourite, pools, now)

    def _decision(
        self, call: WaitingCall, step: int, pools: RouteKey, choice: _Choice, now: float, detail: bool
    ) -> Decision:
        chosen = choice.agent
        reports = self._reports(pools[: choice.pool + 1], None if chosen is None else chosen.id, detail, call.excluded)
        if chosen is None:
            return unassigned(self._queues[call.queue], call, step, reports, choice.preferred, now)
        rule = Rule.PREFERRED if choice.preferred == "chosen" else Rule.BORROWED if choice.pool else Rule.BEST_MATCH
        points = self._index.score_of(chosen.id, pools[choice.pool].requirement)
        return assigned(call, step, rule, chosen, points, reports, choice.preferred, now)

    def _reports(
        self, pools: RouteKey, chosen: str | None, detail: bool, excluded: frozenset[str]
    ) -> tuple[PoolReport, ...]:
        """One report per pool considered; only the last one holds the chosen agent. The fast reports count
        agents by state only (an excluded agent counts as ranked lower); ``detail`` names the exclusions."""
        last = len(pools) - 1
        if not detail:
            return tuple(self._index.report(pool, chosen if i == last else None) for i, pool in enumerate(pools))
        agents = self._index.agents.values()
        return tuple(
            report(pool, *scan(agents, pool, True, excluded)[1:], chosen if i == last else None)
            for i, pool in enumerate(pools)
        )

    def _agent(self, agent_id: str) -> Agent:
        agent = self._index.agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"no agent {agent_id!r}")
        return agent
