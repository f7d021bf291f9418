"""Who can take what, kept current as agents change, so that a routing decision never scans every agent.

For each requirement (a set of skills with minimum levels) that some waiting call may need, the index
knows its members (agents holding it, whatever their state), how many of them are in each state, and a
heap of the available ones ranked best first (score, then longest idle). Members are found once, when
the requirement is first tracked, by scanning the agents of its rarest skill only; afterwards a state
change touches only the requirements the agent belongs to. Heap entries are never removed in place: an
entry is stale when its agent left, changed state, or changed skills since it was pushed, and stale
entries are dropped when they reach the top or when the heap grows past twice its live size.

Tracked requirements are kept for the index's lifetime: they are bounded by queues x steps (+ the
per-call skill sets the IVR produces), and re-finding members after every quiet spell would cost more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from heapq import heapify, heappop, heappush

from cti.acd.model import LACKS_SKILLS, RANKED_LOWER, Agent, AgentState, Pool, PoolReport, Requirement
from cti.acd.policy import AgentRank, agent_rank, holds, score

SLACK = 16  # stale entries tolerated beyond twice the live ones before a heap is rebuilt


@dataclass(slots=True)
class _Members:
    """The agents holding one requirement: how many per state, and the available ones best first."""

    size: int = 0
    by_state: dict[AgentState, int] = field(default_factory=lambda: dict.fromkeys(AgentState, 0))
    ready: list[AgentRank] = field(default_factory=list)


class AgentIndex:
    """The agents, by skill and by tracked requirement. It owns the ``Agent`` objects it is given."""

    def __init__(self) -> None:
        self.agents: dict[str, Agent] = {}
        self._by_skill: dict[str, dict[str, int]] = {}
        self._members: dict[Requirement, _Members] = {}
        self._scores: dict[str, dict[Requirement, int]] = {}  # agent -> tracked requirement -> its score
        self._opened: set[Requirement] = set()  # gained an available member since ``take_opened``

    # --- agents ------------------------------------------------------------------------------------

    def add(self, agent: Agent) -> None:
        self.agents[agent.id] = agent
        self._scores[agent.id] = {}
        self._file_skills(agent)
        self._enter(agent, self._members.items())

    def remove(self, agent_id: str) -> Agent:
        agent = self.agents.pop(agent_id)
        self._leave(agent)
        del self._scores[agent_id]
        return agent

    def set_skills(self, agent_id: str, skills: Mapping[str, int]) -> None:
        agent = self.agents[agent_id]
        self._leave(agent)
        agent.skills = dict(skills)
        self._file_skills(agent)
        self._enter(agent, self._members.items())

    def set_state(self, agent_id: str, state: AgentState, now: float, reason: str | None = None) -> None:
        """Move an agent to ``state``; becoming available starts its idle time (longest idle first)."""
        agent = self.agents[agent_id]
        if state is agent.state and state is not AgentState.PAUSED:
            return
        for needed in self._scores[agent_id]:
            by_state = self._members[needed].by_state
            by_state[agent.state] -= 1
            by_state[state] += 1
        agent.state, agent.state_since, agent.pause_reason = state, now, reason
        if state is AgentState.AVAILABLE:
            agent.idle_since = now
            for needed, points in self._scores[agent_id].items():
                self._offer(self._members[needed], needed, agent, points)

    # --- requirements ------------------------------------------------------------------------------

    def track(self, needed: Requirement) -> None:
        """Start keeping the members of ``needed`` (no-op when already tracked)."""
        if needed in self._members:
            return
        members = self._members[needed] = _Members()
        for agent in self._candidates(needed):
            self._enter(agent, ((needed, members),))

    def best(self, needed: Requirement, excluded: frozenset[str] = frozenset()) -> tuple[Agent, int] | None:
        """The first available member of ``needed`` in rank order, with its score; stale entries dropped.

        Members in ``excluded`` are stepped over (set aside and put back): a handful at most, per call.
        """
        ready = self._members[needed].ready
        aside = []
        found = None
        while ready:
            agent = self._live(ready[0], needed)
            if agent is None:
                heappop(ready)
            elif agent.id in excluded:
                aside.append(heappop(ready))
            else:
                found = agent, -ready[0][0]
                break
        for entry in aside:
            heappush(ready, entry)
        return found

    def take_opened(self) -> set[Requirement]:
        """The requirements that gained an available member since the last call (the others only lost)."""
        opened, self._opened = self._opened, set()
        return opened

    def score_of(self, agent_id: str, needed: Requirement) -> int:
        return self._scores[agent_id][needed]

    def report(self, pool: Pool, chosen: str | None) -> PoolReport:
        """Counts per reason for ``pool`` from the counters alone (no agent examined)."""
        members = self._members[pool.requirement]
        skipped: dict[str, int] = {}
        if len(self.agents) > members.size:
            skipped[LACKS_SKILLS] = len(self.agents) - members.size
        for state, count in members.by_state.items():
            if state is AgentState.AVAILABLE:
                count -= chosen is not None
            if count:
                skipped[RANKED_LOWER if state is AgentState.AVAILABLE else state.value] = count
        return PoolReport(pool, skipped, {})

    # --- internals ---------------------------------------------------------------------------------

    def _candidates(self, needed: Requirement) -> Iterable[Agent]:
        """The agents of the requirement's rarest skill (all agents when it requires none)."""
        if not needed:
            return list(self.agents.values())
        rarest = min((self._by_skill.get(skill, {}) for skill, _ in needed), key=len)
        return [self.agents[agent_id] for agent_id in rarest]

    def _file_skills(self, agent: Agent) -> None:
        for skill, level in agent.skills.items():
            self._by_skill.setdefault(skill, {})[agent.id] = level

    def _enter(self, agent: Agent, requirements: Iterable[tuple[Requirement, _Members]]) -> None:
        """Make ``agent`` a member of each of ``requirements`` it holds."""
        scores = self._scores[agent.id]
        for needed, members in requirements:
            if holds(agent.skills, needed):
                points = scores[needed] = score(agent.skills, needed)
                members.size += 1
                members.by_state[agent.state] += 1
                if agent.state is AgentState.AVAILABLE:
                    self._offer(members, needed, agent, points)

    def _leave(self, agent: Agent) -> None:
        """Take ``agent`` out of the skill lists and of every requirement (its heap entries go stale)."""
        for skill in agent.skills:
            del self._by_skill[skill][agent.id]
        scores = self._scores[agent.id]
        for needed in scores:
            members = self._members[needed]
            members.size -= 1
            members.by_state[agent.state] -= 1
        scores.clear()

    def _offer(self, members: _Members, needed: Requirement, agent: Agent, points: int) -> None:
        ready = members.ready
        heappush(ready, agent_rank(agent, points))
        self._opened.add(needed)
        if len(ready) > 2 * members.by_state[AgentState.AVAILABLE] + SLACK:
            ready[:] = {entry for entry in ready if self._live(entry, needed) is not None}
            heapify(ready)

    def _live(self, entry: AgentRank, needed: Requirement) -> Agent | None:
        """The entry's agent if the entry still describes it (available, same idle start, same score)."""
        negative_score, idle_since, agent_id = entry
        agent = self.agents.get(agent_id)
        if agent is None or agent.state is not AgentState.AVAILABLE or agent.idle_since != idle_since:
            return None
        return agent if self._scores[agent_id].get(needed) == -negative_score else None
