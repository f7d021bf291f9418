from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.acd.ewt import EwtError, EwtEstimator, band

T0 = 1_000.0  # an arbitrary monotonic instant: the estimator never assumes the clock starts at 0


def estimator(**options: float) -> EwtEstimator:
    return EwtEstimator(prior_aht_s=300.0, aht_alpha=0.2, wait_half_life_s=600.0, **options)


def queue_estimate(ewt: EwtEstimator, ahead: int, busy: int, available: int, now: float = T0) -> float | None:
    return ewt.estimate_queue(
        "support", now, waiting_ahead=ahead, eligible_agents_busy=busy, eligible_agents_available=available
    )


# --- prior only -------------------------------------------------------------------------------------


def test_new_queue_uses_the_prior_handle_time() -> None:
    ewt = estimator()
    assert ewt.aht("support") == 300.0
    assert ewt.estimate_for_position("support", 1, 1, T0) == pytest.approx(300.0)
    assert ewt.estimate_for_position("support", 3, 2, T0) == pytest.approx(3 * 300.0 / 2)


def test_queue_estimate_counts_the_callers_ahead_plus_the_newcomer() -> None:
    assert queue_estimate(estimator(), ahead=4, busy=2, available=0) == pytest.approx(5 * 300.0 / 2)


def test_free_agents_take_the_first_callers_at_once() -> None:
    # 4 ahead, 2 free agents: two are answered now, the newcomer is third of those left for 5 agents.
    assert queue_estimate(estimator(), ahead=4, busy=3, available=2) == pytest.approx(3 * 300.0 / 5)


# --- zero floor and None ----------------------------------------------------------------------------


@pytest.mark.parametrize(("ahead", "available"), [(0, 1), (0, 3), (2, 3)])
def test_a_free_agent_for_the_caller_means_no_wait(ahead: int, available: int) -> None:
    ewt = estimator()
    ewt.record_answered("support", 240.0, T0)  # history says people wait: irrelevant when an agent is free
    assert queue_estimate(ewt, ahead=ahead, busy=2, available=available) == 0.0


def test_first_in_line_with_a_free_agent_by_position() -> None:
    assert estimator().estimate_for_position("support", 1, 3, T0, available_agents=1) == 0.0
    assert estimator().estimate_for_position("support", 2, 3, T0, available_agents=1) == pytest.approx(100.0)


def test_nothing_known_gives_none() -> None:
    ewt = estimator()
    assert queue_estimate(ewt, ahead=0, busy=0, available=0) is None
    assert ewt.estimate_for_position("support", 5, 0, T0) is None
    assert ewt.recent_wait("support", T0) is None


def test_history_alone_answers_without_eligible_agents() -> None:
    ewt = estimator()
    ewt.record_answered("support", 120.0, T0)
    assert ewt.estimate_for_position("support", 4, 0, T0 + 10) == pytest.approx(120.0)


def test_history_of_another_queue_does_not_leak() -> None:
    ewt = estimator()
    ewt.record_answered("billing", 120.0, T0)
    ewt.record_handled("billing", 60.0)
    assert ewt.estimate_for_position("support", 1, 0, T0) is None
    assert ewt.estimate_for_position("support", 1, 1, T0) == pytest.approx(300.0)


# --- learning handle time ---------------------------------------------------------------------------


def test_first_handle_time_counts_as_much_as_the_prior() -> None:
    ewt = estimator()
    ewt.record_handled("support", 100.0)
    assert ewt.aht("support") == pytest.approx(200.0)
    ewt.record_handled("support", 100.0)
    assert ewt.aht("support") == pytest.approx((300.0 + 100.0 + 100.0) / 3)


def test_handle_time_converges_and_then_follows_changes_slowly() -> None:
    ewt = estimator()
    for _ in range(60):
        ewt.record_handled("support", 120.0)
    assert ewt.aht("support") == pytest.approx(120.0, abs=0.01)
    ewt.record_handled("support", 620.0)
    assert ewt.aht("support") == pytest.approx(120.0 + 0.2 * 500.0, abs=0.01)


def test_learnt_handle_time_drives_the_model() -> None:
    ewt = estimator()
    for _ in range(60):
        ewt.record_handled("support", 180.0)
    assert ewt.estimate_for_position("support", 2, 3, T0) == pytest.approx(2 * 180.0 / 3, abs=0.01)


def test_zero_prior_weight_replaces_the_prior_with_the_first_call() -> None:
    ewt = EwtEstimator(prior_aht_s=300.0, prior_weight=0.0)
    ewt.record_handled("support", 90.0)
    assert ewt.aht("support") == pytest.approx(90.0)


# --- blending and decay -----------------------------------------------------------------------------


def test_one_fresh_answered_call_weighs_one_sixth_against_the_model() -> None:
    ewt = estimator(trusted_history_calls=5.0)
    ewt.record_answered("support", 600.0, T0)
    model = 300.0
    assert ewt.estimate_for_position("support", 1, 1, T0) == pytest.approx((600.0 + 5 * model) / 6)


def test_plentiful_history_never_outweighs_the_model() -> None:
    ewt = estimator(trusted_history_calls=5.0)
    for second in range(50):
        ewt.record_answered("support", 60.0, T0 + second)
    assert ewt.estimate_for_position("support", 10, 1, T0 + 50) == pytest.approx((60.0 + 10 * 300.0) / 2)


def test_recent_wait_is_weighted_towards_recent_calls() -> None:
    ewt = estimator()
    ewt.record_answered("support", 300.0, T0)
    ewt.record_answered("support", 60.0, T0 + 600.0)  # one half-life later: the first weighs half
    assert ewt.recent_wait("support", T0 + 600.0) == pytest.approx((0.5 * 300.0 + 60.0) / 1.5)


def test_stale_history_fades_towards_the_model() -> None:
    ewt = estimator()
    ewt.record_answered("support", 900.0, T0)
    fresh = ewt.estimate_for_position("support", 1, 1, T0)
    later = ewt.estimate_for_position("support", 1, 1, T0 + 600.0)
    much_later = ewt.estimate_for_position("support", 1, 1, T0 + 6_000.0)
    assert fresh is not None and later is not None
    assert fresh > later > 300.0
    assert later == pytest.approx((0.5 * 900.0 + 5 * 300.0) / 5.5)
    assert much_later == pytest.approx(300.0)


def test_forgotten_history_leaves_nothing_known_without_agents() -> None:
    ewt = estimator()
    ewt.record_answered("support", 120.0, T0)
    assert ewt.recent_wait("support", T0 + 4 * 600.0) == pytest.approx(120.0)
    assert ewt.recent_wait("support", T0 + 6 * 600.0) is None
    assert ewt.estimate_for_position("support", 1, 0, T0 + 6 * 600.0) is None


def test_late_event_does_not_rewind_the_clock() -> None:
    ewt = estimator()
    ewt.record_answered("support", 100.0, T0 + 600.0)
    ewt.record_answered("support", 200.0, T0)  # delivered late: counted as of the newest instant
    assert ewt.recent_wait("support", T0 + 600.0) == pytest.approx(150.0)
    assert ewt.recent_wait("support", T0) == pytest.approx(150.0)


def test_works_with_a_negative_monotonic_clock() -> None:
    ewt = estimator()
    ewt.record_answered("support", 100.0, -5_000.0)
    ewt.record_answered("support", 300.0, -5_000.0 + 600.0)
    assert ewt.recent_wait("support", -4_400.0) == pytest.approx((0.5 * 100.0 + 300.0) / 1.5)


# --- monotonicity -----------------------------------------------------------------------------------

waits = st.lists(st.floats(min_value=0.0, max_value=3_600.0), max_size=8)


def trained(handle_times: list[float], answered: list[float]) -> EwtEstimator:
    ewt = estimator()
    for handle in handle_times:
        ewt.record_handled("support", handle)
    for offset, waited in enumerate(answered):
        ewt.record_answered("support", waited, T0 + 30.0 * offset)
    return ewt


@settings(max_examples=80, deadline=None)
@given(handles=waits, answered=waits, position=st.integers(1, 50), agents=st.integers(1, 50))
def test_more_agents_shorten_the_estimate(
    handles: list[float], answered: list[float], position: int, agents: int
) -> None:
    ewt = trained(handles, answered)
    now = T0 + 30.0 * len(answered)
    fewer = ewt.estimate_for_position("support", position, agents, now)
    more = ewt.estimate_for_position("support", position, agents + 1, now)
    assert fewer is not None and more is not None
    assert more <= fewer
    if ewt.aht("support") > 0:
        assert more < fewer


@settings(max_examples=80, deadline=None)
@given(handles=waits, answered=waits, position=st.integers(1, 50), agents=st.integers(0, 50))
def test_later_positions_never_wait_less(
    handles: list[float], answered: list[float], position: int, agents: int
) -> None:
    ewt = trained(handles, answered)
    now = T0 + 30.0 * len(answered)
    here = ewt.estimate_for_position("support", position, agents, now)
    behind = ewt.estimate_for_position("support", position + 1, agents, now)
    assert (here is None) == (behind is None) == (agents == 0 and not answered)
    if here is not None and behind is not None:
        assert behind >= here >= 0.0


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"prior_aht_s": 0.0},
        {"prior_aht_s": math.nan},
        {"prior_weight": -1.0},
        {"aht_alpha": 0.0},
        {"aht_alpha": 1.5},
        {"wait_half_life_s": 0.0},
        {"trusted_history_calls": -2.0},
    ],
)
def test_estimator_refuses_meaningless_settings(options: dict[str, float]) -> None:
    with pytest.raises(EwtError, match=next(iter(options))) as caught:
        EwtEstimator(**options)
    assert caught.value.code == "acd.ewt_invalid"


def test_events_refuse_meaningless_values() -> None:
    ewt = estimator()
    with pytest.raises(EwtError, match="waited_s"):
        ewt.record_answered("support", -1.0, T0)
    with pytest.raises(EwtError, match="now"):
        ewt.record_answered("support", 1.0, math.inf)
    with pytest.raises(EwtError, match="handle_s"):
        ewt.record_handled("support", math.nan)
    assert ewt.aht("support") == 300.0
    assert ewt.recent_wait("support", T0) is None


@pytest.mark.parametrize(
    ("position", "eligible", "available", "message"),
    [(0, 1, 0, "position"), (-1, 1, 0, "position"), (1, -1, 0, "eligible_agents"), (1, 1, 2, "exceeds")],
)
def test_position_estimate_refuses_meaningless_values(
    position: int, eligible: int, available: int, message: str
) -> None:
    with pytest.raises(EwtError, match=message):
        estimator().estimate_for_position("support", position, eligible, T0, available_agents=available)


def test_queue_estimate_refuses_negative_counts() -> None:
    with pytest.raises(EwtError, match="waiting_ahead"):
        queue_estimate(estimator(), ahead=-1, busy=1, available=0)
    with pytest.raises(EwtError, match="eligible_agents_available"):
        queue_estimate(estimator(), ahead=0, busy=1, available=-1)


# --- bands ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"), [(0.0, 0), (59.9, 0), (60.0, 1), (179.0, 1), (180.0, 2), (300.0, 3), (7_200.0, 3)]
)
def test_band_maps_seconds_to_the_announcement(seconds: float, expected: int) -> None:
    assert band(seconds, [60, 180, 300]) == expected


def test_no_bounds_is_a_single_band() -> None:
    assert band(500.0, []) == 0


@pytest.mark.parametrize(("seconds", "bands"), [(-1.0, [60]), (math.nan, [60]), (10.0, [60, 60]), (10.0, [-5, 60])])
def test_band_refuses_meaningless_values(seconds: float, bands: list[int]) -> None:
    with pytest.raises(EwtError):
        band(seconds, bands)


@settings(max_examples=80, deadline=None)
@given(
    first=st.floats(min_value=0.0, max_value=10_000.0),
    second=st.floats(min_value=0.0, max_value=10_000.0),
    bounds=st.lists(st.integers(0, 10_000), unique=True, max_size=6).map(sorted),
)
def test_longer_waits_never_get_a_lower_band(first: float, second: float, bounds: list[int]) -> None:
    low, high = sorted((first, second))
    assert 0 <= band(low, bounds) <= band(high, bounds) <= len(bounds)
