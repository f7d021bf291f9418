from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.acd.model import (
    LACKS_SKILLS,
    RANKED_LOWER,
    Agent,
    AgentState,
    ClockWentBack,
    Decision,
    DuplicateId,
    Pool,
    QueueSpec,
    RoutingStep,
    Rule,
    SpecInvalid,
    UnknownAgent,
    UnknownCall,
    UnknownQueue,
    WaitingCall,
)
from cti.acd.naive import naive_assign
from cti.acd.policy import call_order, holds, pools_at, preferred_open, step_at
from cti.acd.routing import Router

T0 = 1_000.0  # an arbitrary monotonic instant: nothing assumes the clock starts at 0
BILLING = QueueSpec("billing", {"billing": 3})


def agent(agent_id: str, skills: Mapping[str, int], *, idle_since: float = 0.0, **fields: object) -> Agent:
    state = fields.pop("state", AgentState.AVAILABLE)
    assert isinstance(state, AgentState)
    reason = "lunch" if state is AgentState.PAUSED else None
    return Agent(agent_id, dict(skills), state=state, idle_since=idle_since, pause_reason=reason)


def call(
    call_id: str, queue: str = "billing", *, priority: int = 0, arrived: float = T0, **fields: object
) -> WaitingCall:
    return replace(WaitingCall(call_id, queue, priority, arrived), **fields)  # type: ignore[arg-type]


def router(queues: Iterable[QueueSpec], agents: Iterable[Agent], calls: Iterable[WaitingCall] = ()) -> Router:
    built = Router()
    for spec in queues:
        built.add_queue(spec)
    for member in agents:
        built.add_agent(member)
    for waiting in calls:
        built.add_call(waiting)
    return built


def route(queues: Sequence[QueueSpec], agents: Sequence[Agent], calls: Sequence[WaitingCall], now: float,
          *, detail: bool = False) -> list[Decision]:
    """One pass of the fast router, checked against the naive full scan on the way."""
    decisions = router(queues, agents, calls).next_assignments(now, detail=detail)
    assert decisions == naive_assign(agents, {spec.name: spec for spec in queues}, calls, now, detail=detail)
    return decisions


def picks(decisions: Iterable[Decision]) -> list[tuple[str, str | None, Rule]]:
    return [(decision.call_id, decision.agent_id, decision.rule) for decision in decisions]


# --- preferred agent ----------------------------------------------------------------------------------

FAVOURITE = call("c1", preferred_agent="low", preferred_window_s=30.0)
TWO_AGENTS = [agent("low", {"billing": 3}, idle_since=T0 - 1), agent("high", {"billing": 5}, idle_since=T0 - 100)]


def test_preferred_agent_is_chosen_within_its_window_over_a_better_match() -> None:
    [decision] = route([BILLING], TWO_AGENTS, [FAVOURITE], T0 + 29.9)
    assert (decision.agent_id, decision.rule, decision.score) == ("low", Rule.PREFERRED, 3)
    assert decision.explanation.preferred == "chosen"
    assert decision.explanation.pools[-1].skipped[RANKED_LOWER] == 1  # "high" was passed over for it


def test_preferred_window_closes_at_its_end() -> None:
    [decision] = route([BILLING], TWO_AGENTS, [FAVOURITE], T0 + 30.0)
    assert (decision.agent_id, decision.rule) == ("high", Rule.BEST_MATCH)
    assert decision.explanation.preferred == "window_over"
    assert "preferred agent low: window_over" in decision.explanation.summary


@pytest.mark.parametrize(
    ("favourite", "outcome"),
    [
        (agent("low", {"billing": 3}, state=AgentState.ON_CALL), "on_call"),
        (agent("low", {"billing": 2}), "lacks_skills"),
        (agent("other", {"billing": 3}), "unknown_agent"),
    ],
)
def test_preferred_agent_that_cannot_take_the_call_gives_way(favourite: Agent, outcome: str) -> None:
    [decision] = route([BILLING], [favourite, TWO_AGENTS[1]], [FAVOURITE], T0 + 1)
    assert (decision.agent_id, decision.rule, decision.explanation.preferred) == ("high", Rule.BEST_MATCH, outcome)


def test_preferred_agent_may_come_from_a_borrowed_pool() -> None:
    sales = QueueSpec("sales", {"sales": 1})
    billing = replace(BILLING, steps=(RoutingStep(10.0, borrow=("sales",)),))
    agents = [agent("own", {"billing": 5}), agent("seller", {"sales": 1})]
    favourite = replace(FAVOURITE, preferred_agent="seller")
    [decision] = route([billing, sales], agents, [favourite], T0 + 11)
    assert (decision.agent_id, decision.rule, decision.step) == ("seller", Rule.PREFERRED, 1)
    assert [report.pool.queue for report in decision.explanation.pools] == ["billing", "sales"]


# --- ranking ------------------------------------------------------------------------------------------


def test_best_skill_match_beats_longer_idle() -> None:
    agents = [agent("idle", {"billing": 3, "network": 5}, idle_since=T0 - 500), agent("expert", {"billing": 5})]
    [decision] = route([BILLING], agents, [call("c1")], T0)
    assert (decision.agent_id, decision.score) == ("expert", 5)  # only required skills count


def test_score_sums_the_levels_of_every_required_skill() -> None:
    spec = QueueSpec("billing", {"billing": 1, "lang_fr": 1})
    agents = [agent("a", {"billing": 5, "lang_fr": 1}), agent("b", {"billing": 3, "lang_fr": 4})]
    assert [decision.score for decision in route([spec], agents, [call("c1")], T0)] == [7]


def test_longest_idle_breaks_a_score_tie_then_the_id() -> None:
    agents = [agent("b", {"billing": 4}, idle_since=T0 - 10), agent("c", {"billing": 4}, idle_since=T0 - 60),
              agent("a", {"billing": 4}, idle_since=T0 - 10)]
    decisions = route([BILLING], agents, [call("c1"), call("c2", arrived=T0 + 1), call("c3", arrived=T0 + 2)], T0 + 5)
    assert [decision.agent_id for decision in decisions] == ["c", "a", "b"]


def test_becoming_available_again_restarts_the_idle_time() -> None:
    built = router([BILLING], [agent("a", {"billing": 3}, idle_since=T0 - 50), agent("b", {"billing": 3})],
                   [call("c1")])
    assert [decision.agent_id for decision in built.next_assignments(T0)] == ["b"]  # idle since 0
    built.set_state("b", AgentState.ON_CALL, T0 + 1)
    built.set_state("b", AgentState.AVAILABLE, T0 + 2)
    built.set_state("a", AgentState.AVAILABLE, T0 + 2)  # already available: keeps its idle start
    built.add_call(call("c2", arrived=T0 + 2))
    assert [decision.agent_id for decision in built.next_assignments(T0 + 3)] == ["a"]
    assert (built.agent("a").idle_since, built.agent("b").idle_since) == (T0 - 50, T0 + 2)


# --- call order ---------------------------------------------------------------------------------------


def test_first_come_first_served_within_a_priority() -> None:
    calls = [call("late", arrived=T0 + 5), call("early", arrived=T0)]
    assert picks(route([BILLING], TWO_AGENTS[:1], calls, T0 + 10)) == [("early", "low", Rule.BEST_MATCH)]


def test_higher_priority_first_whatever_the_arrival() -> None:
    calls = [call("old", arrived=T0), call("vip", priority=5, arrived=T0 + 9)]
    assert [decision.call_id for decision in route([BILLING], TWO_AGENTS, calls, T0 + 10)] == ["vip", "old"]
    assert route([BILLING], TWO_AGENTS[:1], calls, T0 + 10)[0].call_id == "vip"


def test_per_call_skills_replace_the_queues() -> None:
    french = call("fr", skills={"billing": 3, "lang_fr": 2})
    agents = [agent("en", {"billing": 5}), agent("fr", {"billing": 3, "lang_fr": 2})]
    assert [decision.agent_id for decision in route([BILLING], agents, [french], T0)] == ["fr"]


# --- relaxation steps and overflow --------------------------------------------------------------------

STEPPED = QueueSpec(
    "billing",
    {"billing": 3, "lang_fr": 2},
    steps=(RoutingStep(30.0, level_delta=2), RoutingStep(60.0, drop=frozenset({"lang_fr"})),
           RoutingStep(90.0, levels={"billing": 1}, drop=frozenset({"lang_fr"}), borrow=("sales",))),
    max_wait_s=300.0,
    overflow_target="voicemail:billing",
)
SALES = QueueSpec("sales", {"sales": 1})


@pytest.mark.parametrize(
    ("helper", "waited", "step", "rule"),
    [
        (agent("junior", {"billing": 1, "lang_fr": 0}), 30.0, 1, Rule.BEST_MATCH),  # levels lowered by 2
        (agent("english", {"billing": 3}), 60.0, 2, Rule.BEST_MATCH),  # lang_fr dropped
        (agent("trainee", {"billing": 1}), 90.0, 3, Rule.BEST_MATCH),  # billing set to 1, lang_fr dropped
        (agent("seller", {"sales": 1}), 90.0, 3, Rule.BORROWED),  # sales' agents lend a hand
    ],
)
def test_relaxation_steps_start_at_their_time_and_not_before(helper: Agent, waited: float, step: int,
                                                             rule: Rule) -> None:
    assert route([STEPPED, SALES], [helper], [call("c1")], T0 + waited - 0.5) == []
    [decision] = route([STEPPED, SALES], [helper], [call("c1")], T0 + waited)
    assert (decision.agent_id, decision.step, decision.rule) == (helper.id, step, rule)


def test_a_waiting_call_moves_through_the_steps_pass_after_pass() -> None:
    built = router([STEPPED, SALES], [agent("english", {"billing": 3})], [call("c1")])
    for waited in (0.0, 29.0, 30.0, 45.0, 59.9):
        assert built.next_assignments(T0 + waited) == []
        assert built.explain("c1", T0 + waited).step == (0 if waited < 30 else 1)
    [decision] = built.next_assignments(T0 + 60.0)
    assert (decision.agent_id, decision.step) == ("english", 2)


def test_steps_do_not_accumulate() -> None:
    # Step 1 lowers billing to 1; step 2 only drops lang_fr, so billing is back at 3 from 60 s on.
    junior = [agent("junior", {"billing": 1, "lang_fr": 0})]
    assert [decision.step for decision in route([STEPPED, SALES], junior, [call("c1")], T0 + 59)] == [1]
    assert route([STEPPED, SALES], junior, [call("c1")], T0 + 60) == []


def test_own_queue_agents_come_before_borrowed_ones() -> None:
    agents = [agent("seller", {"sales": 9}, idle_since=T0 - 500), agent("trainee", {"billing": 1})]
    [decision] = route([STEPPED, SALES], agents, [call("c1")], T0 + 100)
    assert (decision.agent_id, decision.rule) == ("trainee", Rule.BEST_MATCH)


def test_max_wait_flags_overflow_once_and_drops_the_call() -> None:
    built = router([STEPPED, SALES], [agent("busy", {"billing": 5, "lang_fr": 5}, state=AgentState.ON_CALL)],
                   [call("c1"), call("c2", arrived=T0 + 1)])
    assert built.next_assignments(T0 + 299.9) == []
    [decision] = built.next_assignments(T0 + 300.0)
    assert (decision.call_id, decision.agent_id, decision.rule) == ("c1", None, Rule.OVERFLOW)
    assert (decision.overflow_target, decision.step, decision.waited_s) == ("voicemail:billing", 3, 300.0)
    assert "overflow to voicemail:billing" in decision.explanation.summary
    assert [one.id for one in built.calls()] == ["c2"]
    assert built.next_assignments(T0 + 300.5) == []


def test_an_agent_free_at_the_max_wait_still_takes_the_call() -> None:
    [decision] = route([STEPPED, SALES], [agent("a", {"billing": 1})], [call("c1")], T0 + 400)
    assert (decision.agent_id, decision.rule, decision.overflow_target) == ("a", Rule.BEST_MATCH, None)


# --- states -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [state for state in AgentState if state is not AgentState.AVAILABLE])
def test_only_available_agents_are_chosen(state: AgentState) -> None:
    agents = [agent("away", {"billing": 5}, state=state), agent("free", {"billing": 3})]
    [decision] = route([BILLING], agents, [call("c1")], T0)
    assert decision.agent_id == "free"
    assert decision.explanation.pools[0].skipped == {state.value: 1}
    assert route([BILLING], agents[:1], [call("c1")], T0) == []


def test_a_reserved_agent_rings_and_gets_nothing_more_until_freed() -> None:
    built = router([BILLING], TWO_AGENTS[:1], [call("c1"), call("c2", arrived=T0 + 1)])
    assert [decision.call_id for decision in built.next_assignments(T0 + 2)] == ["c1"]
    ringing = built.agent("low")
    assert (ringing.state, ringing.state_since) == (AgentState.RINGING, T0 + 2)
    assert built.next_assignments(T0 + 3) == []
    built.set_state("low", AgentState.ON_CALL, T0 + 4)
    built.set_state("low", AgentState.WRAP_UP, T0 + 60)
    assert built.next_assignments(T0 + 61) == []
    built.set_state("low", AgentState.AVAILABLE, T0 + 70)
    assert picks(built.next_assignments(T0 + 71)) == [("c2", "low", Rule.BEST_MATCH)]


def test_pausing_needs_a_reason_and_only_pausing_takes_one() -> None:
    built = router([BILLING], TWO_AGENTS)
    with pytest.raises(SpecInvalid):
        built.set_state("low", AgentState.PAUSED, T0)
    with pytest.raises(SpecInvalid):
        built.set_state("low", AgentState.ON_CALL, T0, reason="lunch")
    built.set_state("low", AgentState.PAUSED, T0, reason="training")
    assert (built.agent("low").pause_reason, built.agent("low").state) == ("training", AgentState.PAUSED)
    built.set_state("low", AgentState.AVAILABLE, T0 + 1)
    assert built.agent("low").pause_reason is None


def test_changed_skills_and_removed_agents_are_routed_accordingly() -> None:
    built = router([BILLING], TWO_AGENTS, [call("c1"), call("c2", arrived=T0 + 1)])
    built.set_skills("high", {"network": 5})
    built.remove_agent("low")
    assert built.next_assignments(T0 + 2) == []
    built.set_skills("high", {"billing": 3})
    assert [decision.agent_id for decision in built.next_assignments(T0 + 3)] == ["high"]


# --- explanations -------------------------------------------------------------------------------------

CROWD = [agent("best", {"billing": 5}), agent("second", {"billing": 4}), agent("third", {"billing": 3}),
         agent("paused", {"billing": 5}, state=AgentState.PAUSED), agent("novice", {"billing": 1}),
         agent("network", {"network": 5}), agent("talking", {"billing": 4}, state=AgentState.ON_CALL)]


def test_explanation_counts_every_other_agent_once_by_reason() -> None:
    [decision] = route([BILLING], CROWD, [call("c1")], T0)
    [report] = decision.explanation.pools
    assert report.pool == Pool("billing", (("billing", 3),))
    assert report.skipped == {RANKED_LOWER: 2, "paused": 1, "on_call": 1, LACKS_SKILLS: 2}
    assert report.examples == {}
    summary = "best match at step 0: best (score 5, idle 1000.0 s), ahead of 2 other available"
    assert decision.explanation.summary == summary


def test_detailed_explanation_names_the_agents() -> None:
    [decision] = route([BILLING], CROWD, [call("c1")], T0, detail=True)
    assert decision.explanation.pools[0].examples == {
        RANKED_LOWER: ("second", "third"), "paused": ("paused",), "on_call": ("talking",),
        LACKS_SKILLS: ("network", "novice"),
    }


def test_explain_tells_why_a_call_waits_without_reserving_anyone() -> None:
    built = router([STEPPED, SALES], [agent("fr", {"billing": 5, "lang_fr": 5}, state=AgentState.WRAP_UP),
                                      agent("seller", {"sales": 1})], [call("c1", preferred_agent="fr")])
    waiting = built.explain("c1", T0 + 10)
    assert (waiting.rule, waiting.agent_id, waiting.explanation.preferred) == (Rule.WAIT, None, "window_over")
    assert waiting.explanation.pools[0].examples == {"wrap_up": ("fr",), LACKS_SKILLS: ("seller",)}
    summary = "no agent available at step 0; none free in billing (lacks_skills 1, wrap_up 1)"
    assert waiting.explanation.summary.startswith(summary)
    borrowed = built.explain("c1", T0 + 95, detail=False)
    assert (borrowed.rule, borrowed.agent_id) == (Rule.BORROWED, "seller")
    assert built.agent("seller").state is AgentState.AVAILABLE


# --- errors -------------------------------------------------------------------------------------------


def test_invalid_specs_list_every_problem() -> None:
    bad = QueueSpec("", {"billing": -1}, steps=(RoutingStep(30.0), RoutingStep(20.0, level_delta=-1)), max_wait_s=-5)
    with pytest.raises(SpecInvalid) as caught:
        Router().add_queue(bad)
    assert caught.value.code == "acd.spec_invalid"
    assert len(caught.value.errors) == 5


def test_bookkeeping_errors_have_stable_codes() -> None:
    built = router([BILLING, replace(SALES, steps=(RoutingStep(5.0, borrow=("ghost",)),))], TWO_AGENTS, [call("c1")])
    cases: list[tuple[type[Exception], str, object]] = [
        (DuplicateId, "acd.duplicate_id", lambda: built.add_call(call("c1"))),
        (DuplicateId, "acd.duplicate_id", lambda: built.add_agent(TWO_AGENTS[0])),
        (DuplicateId, "acd.duplicate_id", lambda: built.add_queue(BILLING)),
        (UnknownQueue, "acd.unknown_queue", lambda: built.add_call(call("c2", "nowhere"))),
        (UnknownQueue, "acd.unknown_queue", lambda: built.add_call(call("c2", "sales"))),
        (UnknownCall, "acd.unknown_call", lambda: built.remove_call("c9")),
        (UnknownAgent, "acd.unknown_agent", lambda: built.set_state("x", AgentState.AVAILABLE, T0)),
    ]
    for kind, code, action in cases:
        with pytest.raises(kind) as caught:
            action()  # type: ignore[operator]
        assert caught.value.code == code  # type: ignore[attr-defined]
    built.next_assignments(T0 + 10)
    with pytest.raises(ClockWentBack):
        built.next_assignments(T0 + 9)


def test_removed_call_is_not_routed() -> None:
    built = router([BILLING], TWO_AGENTS, [call("c1")])
    assert built.remove_call("c1").id == "c1"
    assert built.next_assignments(T0) == []


# --- properties ---------------------------------------------------------------------------------------

SKILLS = ("billing", "network", "lang_fr", "lang_en")
QUEUE_NAMES = ("q0", "q1", "q2")
GRID = (0.0, 10.0, 20.0, 30.0, 50.0)  # arrivals, step times and idle starts on a grid: boundaries get hit
skill_maps = st.dictionaries(st.sampled_from(SKILLS), st.integers(0, 4), max_size=3)


@dataclass
class Scenario:
    queues: dict[str, QueueSpec]
    agents: list[Agent]
    calls: list[WaitingCall]
    now: float

    def router(self) -> Router:
        return router(self.queues.values(), self.agents, self.calls)


@st.composite
def steps(draw: st.DrawFn, name: str, names: Sequence[str]) -> tuple[RoutingStep, ...]:
    times = sorted(draw(st.sets(st.sampled_from(GRID[1:]), max_size=2)))
    others = [other for other in names if other != name]
    return tuple(
        RoutingStep(after, level_delta=draw(st.integers(0, 2)),
                    levels=draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(0, 3), max_size=1)),
                    drop=frozenset(draw(st.sets(st.sampled_from(SKILLS), max_size=1))),
                    borrow=tuple(draw(st.lists(st.sampled_from(others), unique=True, max_size=2)) if others else ()))
        for after in times
    )


@st.composite
def queue_specs(draw: st.DrawFn) -> dict[str, QueueSpec]:
    names = QUEUE_NAMES[: draw(st.integers(1, len(QUEUE_NAMES)))]
    return {
        name: QueueSpec(name, draw(skill_maps), draw(steps(name, names)),
                        draw(st.none() | st.sampled_from([40.0, 60.0])), "voicemail")
        for name in names
    }


@st.composite
def agent_lists(draw: st.DrawFn) -> list[Agent]:
    return [
        agent(f"a{number}", draw(skill_maps), idle_since=draw(st.sampled_from(GRID)),
              state=draw(st.sampled_from(AgentState)))
        for number in range(draw(st.integers(0, 8)))
    ]


@st.composite
def waiting_call(draw: st.DrawFn, call_id: str, queues: Sequence[str], agent_ids: Sequence[str],
                 arrived: st.SearchStrategy[float]) -> WaitingCall:
    return WaitingCall(
        call_id, draw(st.sampled_from(queues)), draw(st.integers(0, 2)), draw(arrived),
        skills=draw(st.none() | skill_maps),
        preferred_agent=draw(st.none() | st.sampled_from([*agent_ids, "ghost"])),
        preferred_window_s=draw(st.sampled_from([0.0, 20.0, 60.0])),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    queues = draw(queue_specs())
    agents = draw(agent_lists())
    names, ids = sorted(queues), [one.id for one in agents]
    count = draw(st.integers(0, 10))
    calls = [draw(waiting_call(f"c{number}", names, ids, st.sampled_from(GRID))) for number in range(count)]
    return Scenario(queues, agents, calls, draw(st.sampled_from([50.0, 60.0, 70.0, 80.0, 110.0])))


ORACLE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ORACLE
@given(scenarios(), st.booleans())
def test_router_agrees_with_the_naive_full_scan(scenario: Scenario, detail: bool) -> None:
    decisions = scenario.router().next_assignments(scenario.now, detail=detail)
    assert decisions == naive_assign(scenario.agents, scenario.queues, scenario.calls, scenario.now, detail=detail)


@PROPERTY
@given(scenarios())
def test_an_assigned_agent_holds_the_skills_of_the_step_used(scenario: Scenario) -> None:
    calls = {one.id: one for one in scenario.calls}
    agents = {one.id: one for one in scenario.agents}
    for decision in scenario.router().next_assignments(scenario.now):
        waiting = calls[decision.call_id]
        assert decision.step == step_at(scenario.queues[waiting.queue], waiting.arrived_at, scenario.now)
        pool = decision.explanation.pools[-1].pool
        assert pool in pools_at(scenario.queues, waiting, decision.step)
        if decision.agent_id is not None:
            chosen = agents[decision.agent_id]
            assert chosen.state is AgentState.AVAILABLE and holds(chosen.skills, pool.requirement)


@PROPERTY
@given(scenarios())
def test_one_agent_never_gets_two_calls_in_a_pass(scenario: Scenario) -> None:
    chosen = [one.agent_id for one in scenario.router().next_assignments(scenario.now) if one.agent_id]
    assert len(chosen) == len(set(chosen))


@PROPERTY
@given(scenarios())
def test_no_call_jumps_an_older_one_of_its_queue_and_priority_that_its_agent_could_take(scenario: Scenario) -> None:
    decisions = scenario.router().next_assignments(scenario.now)
    taken = {one.call_id: one.agent_id for one in decisions if one.agent_id is not None}
    agents = {one.id: one for one in scenario.agents}
    for newer in (one for one in scenario.calls if one.id in taken):
        for older in scenario.calls:
            if older.id in taken or (older.queue, older.priority) != (newer.queue, newer.priority):
                continue
            if (older.arrived_at, older.id) < (newer.arrived_at, newer.id):
                step = step_at(scenario.queues[older.queue], older.arrived_at, scenario.now)
                pools = pools_at(scenario.queues, older, step)
                assert not any(holds(agents[taken[newer.id]].skills, pool.requirement) for pool in pools)


@PROPERTY
@given(scenarios())
def test_an_available_preferred_agent_is_chosen_within_the_window(scenario: Scenario) -> None:
    decisions = scenario.router().next_assignments(scenario.now)
    agents = {one.id: one for one in scenario.agents}
    calls = {one.id: one for one in scenario.calls}
    for waiting in scenario.calls:
        favourite = agents.get(waiting.preferred_agent or "")
        available = favourite is not None and favourite.state is AgentState.AVAILABLE
        if favourite is None or not available or not preferred_open(waiting, scenario.now):
            continue
        step = step_at(scenario.queues[waiting.queue], waiting.arrived_at, scenario.now)
        if not any(holds(favourite.skills, pool.requirement) for pool in pools_at(scenario.queues, waiting, step)):
            continue
        taker = next(one for one in decisions if one.agent_id == favourite.id)  # someone took it
        if taker.call_id == waiting.id:
            assert taker.rule is Rule.PREFERRED
        else:  # only a call ahead of this one may have taken it first
            assert call_order(calls[taker.call_id]) < call_order(waiting)


# --- incremental updates over several passes, against the oracle --------------------------------------

Operation = tuple[str, int, object]
operations = st.one_of(
    st.tuples(st.just("pass"), st.sampled_from([0, 5, 10, 30]), st.booleans()),
    st.tuples(st.just("state"), st.integers(0, 7), st.sampled_from(AgentState)),
    st.tuples(st.just("skills"), st.integers(0, 7), skill_maps),
    st.tuples(st.just("call"), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("hangup"), st.integers(0, 30), st.none()),
)


HISTORY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HISTORY
@given(scenarios(), st.lists(operations, max_size=25), st.data())
def test_router_follows_the_oracle_through_updates_and_passes(scenario: Scenario, script: list[Operation],
                                                            data: st.DataObject) -> None:
    replay(scenario, script, data)


CHURN_STEPS = (RoutingStep(10.0, borrow=("q1",)), RoutingStep(30.0, drop=frozenset({"billing"})))  # 30 s: anyone
CHURN_QUEUES = {"q0": QueueSpec("q0", {"billing": 1}, CHURN_STEPS, 60.0),
                "q1": QueueSpec("q1", {"network": 1})}
churn_agents = st.lists(st.sampled_from([{"billing": 1}, {"billing": 2}, {"network": 1}]), min_size=1, max_size=6)
churn_steps = st.lists(st.tuples(st.integers(0, 5), st.sampled_from(AgentState), st.sampled_from(["q0", "q1", ""]),
                                 st.sampled_from([0.0, 1.0, 5.0, 10.0])), max_size=30)


@HISTORY
@given(churn_agents, churn_steps)
def test_router_follows_the_oracle_through_state_churn(skills: list[dict[str, int]],
                                                       script: list[tuple[int, AgentState, str, float]]) -> None:
    # Equal scores everywhere: the ranking rests on idle times, which every state change moves.
    agents = [agent(f"a{number}", levels, idle_since=float(number)) for number, levels in enumerate(skills)]
    built, now = router(CHURN_QUEUES.values(), agents, [call("c0", "q0", arrived=0.0)]), 0.0
    for number, (target, state, queue, advance) in enumerate(script):
        reason = "break" if state is AgentState.PAUSED else None
        built.set_state(agents[target % len(agents)].id, state, now, reason=reason)
        if queue:
            built.add_call(call(f"n{number}", queue, arrived=now))
        now += advance
        expected = naive_assign(built.agents(), CHURN_QUEUES, built.calls(), now)
        assert built.next_assignments(now) == expected


def replay(scenario: Scenario, script: list[Operation], data: st.DataObject) -> None:
    """Apply ``script`` to a router, checking every pass against the oracle and that no agent rings twice."""
    built, now, ringing = scenario.router(), 20.0, set[str]()  # early: steps and windows unfold pass by pass
    for number, (kind, value, extra) in enumerate(script):
        ids = [one.id for one in built.agents()]
        if kind == "pass":
            now += value
            expected = naive_assign(built.agents(), scenario.queues, built.calls(), now, detail=bool(extra))
            decisions = built.next_assignments(now, detail=bool(extra))
            assert decisions == expected
            chosen = {one.agent_id for one in decisions if one.agent_id is not None}
            assert not chosen & ringing  # nobody rung twice before being freed
            ringing |= chosen
        elif kind in ("state", "skills") and ids:
            target = ids[value % len(ids)]
            if kind == "skills":
                built.set_skills(target, dict(extra))  # type: ignore[call-overload]
                continue
            assert isinstance(extra, AgentState)
            built.set_state(target, extra, now, reason="break" if extra is AgentState.PAUSED else None)
            ringing.discard(target)
        elif kind == "call":
            queue = sorted(scenario.queues)[value % len(scenario.queues)]
            arrived = st.sampled_from([now - 40.0, now - 10.0, now])
            built.add_call(data.draw(waiting_call(f"n{number}", [queue], ids, arrived)))
        elif kind == "hangup" and built.calls():
            waiting = built.calls()
            built.remove_call(waiting[value % len(waiting)].id)
