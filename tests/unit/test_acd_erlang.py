from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.acd.erlang import (
    ErlangError,
    StaffingResult,
    agents_needed,
    average_speed_of_answer,
    erlang_c,
    service_level,
    traffic_erlangs,
)


def reference_erlang_c(agents: int, traffic: Fraction) -> Fraction:
    """The textbook closed form, exact with fractions: fine for the small cases it is used on."""
    waiting_term = traffic**agents / math.factorial(agents) * agents / (agents - traffic)
    no_wait = sum(traffic**k / math.factorial(k) for k in range(agents))
    return waiting_term / (no_wait + waiting_term)


def reference_service_level(agents: int, calls_per_hour: int, aht_s: int, target_s: int) -> float:
    traffic = Fraction(calls_per_hour * aht_s, 3600)
    wait = float(reference_erlang_c(agents, traffic))
    return 1.0 - wait * math.exp(-float(agents - traffic) * target_s / aht_s)


def reference_agents_needed(calls_per_hour: int, aht_s: int, target_level: float, target_s: int) -> int:
    agents = calls_per_hour * aht_s // 3600 + 1
    while reference_service_level(agents, calls_per_hour, aht_s, target_s) < target_level:
        agents += 1
    return agents


# --- known values -----------------------------------------------------------------------------------


def test_ten_erlangs_on_twelve_agents_waits_about_45_percent() -> None:
    assert erlang_c(12, 10.0) == pytest.approx(0.4494, abs=5e-5)


@pytest.mark.parametrize(
    ("agents", "traffic"),
    [(1, Fraction(1, 2)), (2, Fraction(1)), (5, Fraction(4)), (12, Fraction(10)), (30, Fraction(24))],
)
def test_erlang_c_matches_the_closed_form(agents: int, traffic: Fraction) -> None:
    assert erlang_c(agents, float(traffic)) == pytest.approx(float(reference_erlang_c(agents, traffic)), rel=1e-12)


def test_single_agent_waits_with_probability_equal_to_the_load() -> None:
    # M/M/1: P(wait) is the utilisation.
    assert erlang_c(1, 0.3) == pytest.approx(0.3)


@pytest.mark.parametrize(("calls", "aht", "expected"), [(360, 240, 29), (720, 240, 54), (100, 180, 8)])
def test_agents_needed_for_80_in_20_matches_the_reference(calls: int, aht: int, expected: int) -> None:
    result = agents_needed(calls, aht, 0.8, 20)
    assert result.agents == expected == reference_agents_needed(calls, aht, 0.8, 20)
    assert result.service_level >= 0.8
    assert service_level(result.agents - 1, calls, aht, 20) < 0.8


def test_staffing_result_carries_consistent_figures() -> None:
    result = agents_needed(360, 240, 0.8, 20)
    assert result.traffic_erlangs == pytest.approx(24.0)
    assert result.service_level == pytest.approx(reference_service_level(29, 360, 240, 20), rel=1e-12)
    assert result.probability_of_waiting == pytest.approx(float(reference_erlang_c(29, Fraction(24))), rel=1e-12)
    assert result.occupancy == pytest.approx(24 / 29)
    assert result.average_speed_of_answer == pytest.approx(result.probability_of_waiting * 240 / 5)
    assert result.average_speed_of_answer == pytest.approx(average_speed_of_answer(29, 360, 240))
    assert result.scheduled_agents == result.agents


def test_service_level_matches_the_reference() -> None:
    for agents in range(25, 36):
        assert service_level(agents, 360, 240, 20) == pytest.approx(reference_service_level(agents, 360, 240, 20))


def test_asa_matches_the_formula() -> None:
    wait = float(reference_erlang_c(12, Fraction(10)))
    assert average_speed_of_answer(12, 200, 180) == pytest.approx(wait * 180 / 2)


# --- shrinkage and occupancy ------------------------------------------------------------------------


def test_shrinkage_schedules_more_agents_than_answer_calls() -> None:
    result = agents_needed(360, 240, 0.8, 20, shrinkage=0.3)
    assert result.agents == 29
    assert result.scheduled_agents == math.ceil(29 / 0.7) == 42


def test_shrinkage_that_divides_exactly_does_not_round_up_a_float_hair() -> None:
    # 0.8 is not exact in binary; 8 on the phones at 20 % shrinkage is 10 scheduled, not 11.
    result = agents_needed(100, 180, 0.8, 20, shrinkage=0.2)
    assert result.agents == 8
    assert result.scheduled_agents == 10


def test_max_occupancy_can_require_more_agents_than_the_service_level() -> None:
    free = agents_needed(7200, 180, 0.8, 20)  # 360 Erlangs: large pools run very busy
    capped = agents_needed(7200, 180, 0.8, 20, max_occupancy=0.85)
    assert free.occupancy > 0.85
    assert capped.agents == math.ceil(360 / 0.85) > free.agents
    assert capped.occupancy <= 0.85


def test_max_occupancy_that_is_already_met_changes_nothing() -> None:
    assert agents_needed(360, 240, 0.8, 20, max_occupancy=0.95) == agents_needed(360, 240, 0.8, 20)


# --- edge cases -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("agents", "traffic"), [(0, 0.0), (0, 3.0), (10, 10.0), (9, 10.0)])
def test_unstable_or_unstaffed_queue_always_waits(agents: int, traffic: float) -> None:
    assert erlang_c(agents, traffic) == 1.0


def test_unstable_queue_has_no_service_and_infinite_asa() -> None:
    assert service_level(10, 360, 100, 20) == 0.0  # exactly 10 Erlangs on 10 agents
    assert average_speed_of_answer(10, 360, 100) == math.inf
    assert average_speed_of_answer(0, 360, 100) == math.inf


def test_no_traffic_never_waits() -> None:
    assert erlang_c(1, 0.0) == 0.0
    assert service_level(1, 0, 180, 20) == 1.0
    assert average_speed_of_answer(1, 0, 180) == 0.0


def test_no_calls_still_needs_one_agent() -> None:
    result = agents_needed(0, 180, 0.8, 20)
    assert (result.agents, result.service_level, result.occupancy) == (1, 1.0, 0.0)


def test_zero_target_time_is_the_share_answered_at_once() -> None:
    assert service_level(12, 200, 180, 0) == pytest.approx(1.0 - erlang_c(12, 10.0))


def test_large_traffic_stays_finite() -> None:
    wait = erlang_c(2100, 2000.0)
    assert 0.0 < wait < 1.0
    result = agents_needed(2000 * 3600 / 180, 180, 0.8, 20)
    assert 2000 < result.agents < 2100
    assert all(math.isfinite(value) for value in (result.service_level, result.average_speed_of_answer))
    assert service_level(result.agents - 1, 2000 * 3600 / 180, 180, 20) < 0.8 <= result.service_level


def test_traffic_is_calls_times_handle_time() -> None:
    assert traffic_erlangs(360, 240) == pytest.approx(24.0)


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agents", "traffic"), [(-1, 1.0), (2, -0.5), (2, math.nan), (2, math.inf), (2, 1e9), (True, 0.5)]
)
def test_erlang_c_refuses_meaningless_input(agents: int, traffic: float) -> None:
    with pytest.raises(ErlangError) as caught:
        erlang_c(agents, traffic)
    assert caught.value.code == "acd.erlang_invalid"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"calls_per_hour": -1.0},
        {"aht_s": 0.0},
        {"aht_s": -30.0},
        {"aht_s": math.nan},
        {"target_service_level": 0.0},
        {"target_service_level": 1.0},
        {"target_service_level": 80.0},
        {"target_answer_s": -1.0},
        {"max_occupancy": 0.0},
        {"max_occupancy": 1.5},
        {"shrinkage": 1.0},
        {"shrinkage": -0.1},
    ],
)
def test_agents_needed_refuses_meaningless_input(kwargs: dict[str, float]) -> None:
    arguments: dict[str, float] = {
        "calls_per_hour": 360.0,
        "aht_s": 240.0,
        "target_service_level": 0.8,
        "target_answer_s": 20.0,
        **kwargs,
    }
    with pytest.raises(ErlangError, match=next(iter(kwargs))):
        agents_needed(**arguments)


def test_service_level_and_asa_refuse_bad_input() -> None:
    with pytest.raises(ErlangError, match="target_answer_s"):
        service_level(5, 100, 180, -5)
    with pytest.raises(ErlangError, match="aht_s"):
        average_speed_of_answer(5, 100, 0)
    with pytest.raises(ErlangError, match="agents"):
        service_level(-2, 100, 180, 20)


# --- properties -------------------------------------------------------------------------------------

calls = st.floats(min_value=1.0, max_value=3000.0)
handle_times = st.floats(min_value=10.0, max_value=1200.0)


@settings(max_examples=80, deadline=None)
@given(agents=st.integers(min_value=1, max_value=400), calls_per_hour=calls, aht_s=handle_times)
def test_one_more_agent_never_hurts(agents: int, calls_per_hour: float, aht_s: float) -> None:
    assert service_level(agents + 1, calls_per_hour, aht_s, 20) >= service_level(agents, calls_per_hour, aht_s, 20)
    assert average_speed_of_answer(agents + 1, calls_per_hour, aht_s) <= average_speed_of_answer(
        agents, calls_per_hour, aht_s
    )
    assert erlang_c(agents + 1, traffic_erlangs(calls_per_hour, aht_s)) <= erlang_c(
        agents, traffic_erlangs(calls_per_hour, aht_s)
    )


@settings(max_examples=60, deadline=None)
@given(calls_per_hour=calls, extra=st.floats(min_value=0.0, max_value=500.0), aht_s=handle_times)
def test_more_calls_never_need_fewer_agents(calls_per_hour: float, extra: float, aht_s: float) -> None:
    fewer = agents_needed(calls_per_hour, aht_s, 0.8, 20)
    more = agents_needed(calls_per_hour + extra, aht_s, 0.8, 20)
    assert more.agents >= fewer.agents


@settings(max_examples=60, deadline=None)
@given(
    calls_per_hour=calls,
    aht_s=handle_times,
    level=st.floats(min_value=0.05, max_value=0.99),
    target_s=st.integers(min_value=0, max_value=120),
)
def test_agents_needed_is_the_smallest_staff_meeting_the_target(
    calls_per_hour: float, aht_s: float, level: float, target_s: int
) -> None:
    result = agents_needed(calls_per_hour, aht_s, level, target_s)
    assert isinstance(result, StaffingResult)
    assert result.service_level >= level
    assert result.agents > result.traffic_erlangs
    assert 0.0 <= result.probability_of_waiting <= 1.0
    if result.agents - 1 > result.traffic_erlangs:
        assert service_level(result.agents - 1, calls_per_hour, aht_s, target_s) < level


@settings(max_examples=60, deadline=None)
@given(agents=st.integers(min_value=0, max_value=200), traffic=st.floats(min_value=0.0, max_value=300.0))
def test_probability_of_waiting_is_a_probability(agents: int, traffic: float) -> None:
    assert 0.0 <= erlang_c(agents, traffic) <= 1.0
