"""The routing policy by full scan: every agent examined for every call. Slow on purpose.

It is the reference the fast ``Router`` is checked against (tests) and measured against (bench), and the
router's ``detail=True`` explanations, which list every agent by reason, come from its scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from cti.acd.model import (
    LACKS_SKILLS,
    MISSED_THIS_CALL,
    RANKED_LOWER,
    Agent,
    AgentState,
    Decision,
    Pool,
    PoolReport,
    QueueSpec,
    Rule,
    WaitingCall,
)
from cti.acd.policy import (
    agent_rank,
    assigned,
    call_order,
    holds,
    pools_at,
    preferred_outcome,
    reserve,
    score,
    step_at,
    unassigned,
)

Scan = tuple[Agent | None, dict[str, int], dict[str, list[str]] | None]


def naive_assign(
    agents: Iterable[Agent],
    queues: Mapping[str, QueueSpec],
    calls: Iterable[WaitingCall],
    now: float,
    *,
    detail: bool = False,
) -> list[Decision]:
    """What one routing pass decides: assignments in call order, then the overflows. Inputs are not changed."""
    roster = {agent.id: replace(agent, skills=dict(agent.skills)) for agent in agents}
    decisions: list[Decision] = []
    overflows: list[Decision] = []
    for call in sorted(calls, key=call_order):
        decision = naive_decide(roster, queues, call, now, detail=detail)
        if decision.agent_id is not None:
            reserve(roster[decision.agent_id], now)
            decisions.append(decision)
        elif decision.rule is Rule.OVERFLOW:
            overflows.append(decision)
    return decisions + overflows


def naive_decide(
    agents: Mapping[str, Agent], queues: Mapping[str, QueueSpec], call: WaitingCall, now: float, *, detail: bool
) -> Decision:
    """The decision for one call given the agents' states now (nothing reserved)."""
    spec = queues[call.queue]
    step = step_at(spec, call.arrived_at, now)
    pools = pools_at(queues, call, step)
    favourite = agents.get(call.preferred_agent) if call.preferred_agent is not None else None
    preferred, where = preferred_outcome(call, favourite, pools, now)
    reports: list[PoolReport] = []
    for index, pool in enumerate(pools):
        best, tally, ids = scan(agents.values(), pool, detail, call.excluded)
        chosen = favourite if preferred == "chosen" else best
        if chosen is not None and (preferred != "chosen" or index == where):
            reports.append(report(pool, tally, ids, chosen.id))
            rule = Rule.PREFERRED if preferred == "chosen" else Rule.BEST_MATCH if index == 0 else Rule.BORROWED
            points = score(chosen.skills, pool.requirement)
            return assigned(call, step, rule, chosen, points, tuple(reports), preferred, now)
        reports.append(report(pool, tally, ids, None))
    return unassigned(spec, call, step, tuple(reports), preferred, now)


def scan(agents: Iterable[Agent], pool: Pool, detail: bool, excluded: frozenset[str] = frozenset()) -> Scan:
    """The best available agent of ``pool`` (not in ``excluded``) and every agent's reason, in one pass."""
    needed = pool.requirement
    best: Agent | None = None
    best_rank = None
    tally: dict[str, int] = {}
    ids: dict[str, list[str]] | None = {} if detail else None
    for agent in agents:
        if not holds(agent.skills, needed):
            reason = LACKS_SKILLS
        elif agent.state is not AgentState.AVAILABLE:
            reason = agent.state.value
        elif agent.id in excluded:
            reason = MISSED_THIS_CALL
        else:
            reason = RANKED_LOWER
            rank = agent_rank(agent, score(agent.skills, needed))
            if best_rank is None or rank < best_rank:
                best, best_rank = agent, rank
        tally[reason] = tally.get(reason, 0) + 1
        if ids is not None:
            ids.setdefault(reason, []).append(agent.id)
    return best, tally, ids


def report(pool: Pool, tally: dict[str, int], ids: dict[str, list[str]] | None, chosen: str | None) -> PoolReport:
    """The pool's reasons with the chosen agent taken out (it was not skipped)."""
    skipped = dict(tally)
    if chosen is not None:
        skipped[RANKED_LOWER] -= 1
        if not skipped[RANKED_LOWER]:
            del skipped[RANKED_LOWER]
    examples: dict[str, tuple[str, ...]] = {}
    for reason, agent_ids in (ids or {}).items():
        kept = tuple(sorted(agent_id for agent_id in agent_ids if agent_id != chosen))
        if kept:
            examples[reason] = kept
    return PoolReport(pool, skipped, examples)
