"""The routing rules as plain functions, shared by the fast router and the naive reference.

One definition of each rule (which step applies, what skills it requires, who ranks first, when the
preferred agent's window closes) so the two implementations can only differ in how they find agents.
Every deadline is compared as ``arrived_at + x <= now``: the router schedules steps by that same sum, so
both agree to the last bit of a float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cti.acd.model import (
    MISSED_THIS_CALL,
    RANKED_LOWER,
    Agent,
    AgentState,
    Decision,
    Explanation,
    Pool,
    PoolReport,
    QueueSpec,
    Requirement,
    RoutingStep,
    Rule,
    WaitingCall,
)

CallOrder = tuple[int, float, str]
AgentRank = tuple[int, float, str]


def requirement(levels: Mapping[str, int]) -> Requirement:
    return tuple(sorted(levels.items()))


def relax(base: Mapping[str, int], step: RoutingStep) -> Requirement:
    """The call's own requirement at a relaxation step (see ``RoutingStep``)."""
    levels = {skill: max(0, level - step.level_delta) for skill, level in base.items()}
    levels.update(step.levels)
    for skill in step.drop:
        levels.pop(skill, None)
    return requirement(levels)


def base_skills(spec: QueueSpec, call: WaitingCall) -> Mapping[str, int]:
    return spec.required if call.skills is None else call.skills


def pools_at(queues: Mapping[str, QueueSpec], call: WaitingCall, step: int) -> tuple[Pool, ...]:
    """The pools tried for ``call`` at ``step``, in order: its own queue's, then the borrowed ones."""
    spec = queues[call.queue]
    base = base_skills(spec, call)
    if step == 0:
        return (Pool(spec.name, requirement(base)),)
    relaxation = spec.steps[step - 1]
    borrowed = tuple(Pool(name, requirement(queues[name].required)) for name in relaxation.borrow)
    return (Pool(spec.name, relax(base, relaxation)), *borrowed)


def step_at(spec: QueueSpec, arrived_at: float, now: float) -> int:
    """How many relaxation steps have started (0 = base skills)."""
    return sum(1 for step in spec.steps if arrived_at + step.after_s <= now)


def holds(skills: Mapping[str, int], needed: Requirement) -> bool:
    return all(skills.get(skill, -1) >= level for skill, level in needed)


def score(skills: Mapping[str, int], needed: Requirement) -> int:
    """Best skill match: the sum of the agent's levels on the required skills."""
    return sum(skills[skill] for skill, _ in needed)


def call_order(call: WaitingCall) -> CallOrder:
    """Higher priority first, then first come first served; the id makes the order total."""
    return (-call.priority, call.arrived_at, call.id)


def agent_rank(agent: Agent, points: int) -> AgentRank:
    """Best score first, then longest idle; the id makes the order total."""
    return (-points, agent.idle_since, agent.id)


def preferred_open(call: WaitingCall, now: float) -> bool:
    return call.preferred_agent is not None and now < call.arrived_at + call.preferred_window_s


def overflowing(spec: QueueSpec, call: WaitingCall, now: float) -> bool:
    return spec.max_wait_s is not None and call.arrived_at + spec.max_wait_s <= now


def preferred_outcome(
    call: WaitingCall, agent: Agent | None, pools: Sequence[Pool], now: float
) -> tuple[str | None, int]:
    """Why the preferred agent takes the call or not, and the index of the first pool holding it (or -1)."""
    if call.preferred_agent is None:
        return None, -1
    if not preferred_open(call, now):
        return "window_over", -1
    if agent is None:
        return "unknown_agent", -1
    if agent.id in call.excluded:
        return MISSED_THIS_CALL, -1
    index = next((i for i, pool in enumerate(pools) if holds(agent.skills, pool.requirement)), -1)
    if index < 0:
        return "lacks_skills", -1
    return ("chosen" if agent.state is AgentState.AVAILABLE else agent.state.value), index


def reserve(agent: Agent, now: float) -> None:
    agent.state = AgentState.RINGING
    agent.state_since = now


# --- decisions and their explanation --------------------------------------------------------------


def assigned(
    call: WaitingCall,
    step: int,
    rule: Rule,
    agent: Agent,
    points: int,
    reports: tuple[PoolReport, ...],
    preferred: str | None,
    now: float,
) -> Decision:
    """A decision giving ``agent`` to ``call`` (the reports' last pool is the one it came from)."""
    waited = now - call.arrived_at
    if rule is Rule.PREFERRED:
        window = call.preferred_window_s
        text = f"preferred agent {agent.id} (score {points}, {waited:.1f} s into a {window:g} s window)"
    else:
        text = f"{_origin(rule, reports)} at step {step}: {agent.id} (score {points}, {_idle(agent, now)})"
        text += f", ahead of {reports[-1].skipped.get(RANKED_LOWER, 0)} other available"
    text += _none_free(reports[:-1]) + _preferred_note(call, preferred)
    explanation = Explanation(text, preferred, reports)
    return Decision(call.id, call.queue, agent.id, step, rule, points, waited, None, explanation)


def unassigned(
    spec: QueueSpec, call: WaitingCall, step: int, reports: tuple[PoolReport, ...], preferred: str | None, now: float
) -> Decision:
    """No agent free for ``call``: it waits, or overflows once the queue's max wait is reached."""
    waited = now - call.arrived_at
    if overflowing(spec, call, now):
        rule, target = Rule.OVERFLOW, spec.overflow_target
        text = f"no agent after {waited:.1f} s (max wait {spec.max_wait_s:g} s): overflow to {target or 'default'}"
    else:
        rule, target = Rule.WAIT, None
        text = f"no agent available at step {step}"
    text += _none_free(reports) + _preferred_note(call, preferred)
    explanation = Explanation(text, preferred, reports)
    return Decision(call.id, call.queue, None, step, rule, None, waited, target, explanation)


def _idle(agent: Agent, now: float) -> str:
    return f"idle {now - agent.idle_since:.1f} s"


def _origin(rule: Rule, reports: tuple[PoolReport, ...]) -> str:
    return f"borrowed from {reports[-1].pool.queue}" if rule is Rule.BORROWED else "best match"


def _none_free(reports: Sequence[PoolReport]) -> str:
    parts = [f"{report.pool.queue} ({_counts(report.skipped)})" for report in reports]
    return f"; none free in {', '.join(parts)}" if parts else ""


def _counts(skipped: Mapping[str, int]) -> str:
    return ", ".join(f"{reason} {count}" for reason, count in sorted(skipped.items())) or "no agents"


def _preferred_note(call: WaitingCall, preferred: str | None) -> str:
    if preferred is None or preferred == "chosen":
        return ""
    return f"; preferred agent {call.preferred_agent}: {preferred}"
