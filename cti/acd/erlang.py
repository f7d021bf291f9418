"""Erlang C staffing: how many agents a queue needs for a service level, and what a given staff achieves.

Pure functions, no clock. Traffic ``A`` (Erlangs) is calls per hour x average handle time / 3600.
Erlang B is computed with its recursion ``B(0) = 1``, ``B(n) = A B(n-1) / (n + A B(n-1))`` whose terms
stay in [0, 1], so thousands of agents and Erlangs never overflow the way ``A**N / N!`` does; Erlang C
is derived from it: ``C = N B / (N - A (1 - B))``. With ``N <= A`` the queue is unstable (it grows
without bound), so every call waits: C = 1, service level 0, ASA infinite.

Service level for a target answer time ``T``: ``SL = 1 - C exp(-(N - A) T / AHT)``.
Average speed of answer: ``ASA = C AHT / (N - A)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from cti.acd.checks import require_finite, require_non_negative
from cti.errors import CtiError

SECONDS_PER_HOUR = 3600.0
# Far beyond any contact centre; the bounds keep a unit mistake (calls per day given as per hour...)
# from turning an O(agents) loop into a hang.
MAX_AGENTS = 1_000_000
MAX_TRAFFIC_ERLANGS = 100_000.0


class ErlangError(CtiError):
    """A staffing question asked with inputs that have no meaning (negative calls, zero AHT, SL of 1...)."""

    code = "acd.erlang_invalid"


@dataclass(frozen=True, slots=True)
class StaffingResult:
    """What :func:`agents_needed` found: the staff on the phones and what it achieves.

    ``agents`` is the number answering calls at any moment; ``scheduled_agents`` adds shrinkage
    (breaks, training, absence): the number to put on the schedule so that ``agents`` remain.
    """

    traffic_erlangs: float
    agents: int
    scheduled_agents: int
    service_level: float
    average_speed_of_answer: float
    occupancy: float
    probability_of_waiting: float


def erlang_c(agents: int, traffic_erlangs: float) -> float:
    """Probability that a call waits; 1.0 when ``agents <= traffic`` (no agents at all included)."""
    _check_agents(agents)
    _check_traffic(traffic_erlangs)
    return _erlang_c(agents, traffic_erlangs)


def service_level(agents: int, calls_per_hour: float, aht_s: float, target_answer_s: float) -> float:
    """Fraction of calls answered within ``target_answer_s``; 0.0 when the staff cannot keep up."""
    _check_agents(agents)
    traffic = traffic_erlangs(calls_per_hour, aht_s)
    require_non_negative("target_answer_s", target_answer_s, ErlangError)
    return _service_level(agents, traffic, aht_s, target_answer_s, _erlang_c(agents, traffic))


def average_speed_of_answer(agents: int, calls_per_hour: float, aht_s: float) -> float:
    """Mean wait before answer in seconds, over all calls (those answered at once count 0); inf if unstable."""
    _check_agents(agents)
    traffic = traffic_erlangs(calls_per_hour, aht_s)
    return _asa(agents, traffic, aht_s, _erlang_c(agents, traffic))


def agents_needed(
    calls_per_hour: float,
    aht_s: float,
    target_service_level: float,
    target_answer_s: float,
    max_occupancy: float | None = None,
    shrinkage: float = 0.0,
) -> StaffingResult:
    """Fewest agents meeting ``target_service_level`` within ``target_answer_s`` (and ``max_occupancy``).

    At least one agent is returned even with no calls: a queue that is open has someone to answer it.
    ``shrinkage`` is the fraction of scheduled time not spent on the phones (0.3 = 30 %).
    """
    traffic = traffic_erlangs(calls_per_hour, aht_s)
    _check_open_fraction("target_service_level", target_service_level)
    require_non_negative("target_answer_s", target_answer_s, ErlangError)
    _check_max_occupancy(max_occupancy)
    if not 0.0 <= shrinkage < 1.0:
        raise ErlangError(f"shrinkage must be in [0, 1), got {shrinkage!r}")
    for agents, blocking in _erlang_b_series(traffic):
        if agents <= traffic or not _occupancy_ok(agents, traffic, max_occupancy):
            continue
        wait_probability = _c_from_b(agents, traffic, blocking)
        level = _service_level(agents, traffic, aht_s, target_answer_s, wait_probability)
        if level >= target_service_level:
            return _result(agents, traffic, aht_s, level, wait_probability, shrinkage)
    raise ErlangError(f"more than {MAX_AGENTS} agents would be needed")  # pragma: no cover - traffic is capped


def traffic_erlangs(calls_per_hour: float, aht_s: float) -> float:
    """Offered load in Erlangs: how many agents the calls would keep busy if nobody ever waited."""
    require_non_negative("calls_per_hour", calls_per_hour, ErlangError)
    require_finite("aht_s", aht_s, ErlangError)
    if aht_s <= 0:
        raise ErlangError(f"aht_s must be positive, got {aht_s!r}")
    traffic = calls_per_hour * aht_s / SECONDS_PER_HOUR
    _check_traffic(traffic)
    return traffic


def _erlang_b_series(traffic: float) -> Iterator[tuple[int, float]]:
    """Yield ``(n, B(n))`` for n = 0, 1, 2, ...: one step each, so a search costs O(answer) in total."""
    blocking = 1.0
    agents = 0
    while agents <= MAX_AGENTS:
        yield agents, blocking
        agents += 1
        blocking = _next_b(agents, traffic, blocking)


def _next_b(agents: int, traffic: float, previous: float) -> float:
    carried = traffic * previous
    return carried / (agents + carried)


def _erlang_c(agents: int, traffic: float) -> float:
    if agents <= traffic:
        return 1.0
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = _next_b(n, traffic, blocking)
    return _c_from_b(agents, traffic, blocking)


def _c_from_b(agents: int, traffic: float, blocking: float) -> float:
    """Erlang C from Erlang B; the denominator is > 0 whenever ``agents > traffic``."""
    return agents * blocking / (agents - traffic * (1.0 - blocking))


def _service_level(agents: int, traffic: float, aht_s: float, target_s: float, wait_probability: float) -> float:
    if agents <= traffic:
        return 0.0
    return max(0.0, 1.0 - wait_probability * math.exp(-(agents - traffic) * target_s / aht_s))


def _asa(agents: int, traffic: float, aht_s: float, wait_probability: float) -> float:
    if agents <= traffic:
        return math.inf
    return wait_probability * aht_s / (agents - traffic)


def _occupancy_ok(agents: int, traffic: float, max_occupancy: float | None) -> bool:
    return max_occupancy is None or traffic / agents <= max_occupancy


def _result(
    agents: int, traffic: float, aht_s: float, level: float, wait_probability: float, shrinkage: float
) -> StaffingResult:
    return StaffingResult(
        traffic_erlangs=traffic,
        agents=agents,
        scheduled_agents=_with_shrinkage(agents, shrinkage),
        service_level=level,
        average_speed_of_answer=_asa(agents, traffic, aht_s, wait_probability),
        occupancy=traffic / agents,
        probability_of_waiting=wait_probability,
    )


def _with_shrinkage(agents: int, shrinkage: float) -> int:
    """Round up, but not past a whole number that float division missed by a hair (8 / 0.8 -> 10, not 11)."""
    return math.ceil(agents / (1.0 - shrinkage) - 1e-9)


def _check_agents(agents: int) -> None:
    if isinstance(agents, bool) or not isinstance(agents, int) or not 0 <= agents <= MAX_AGENTS:
        raise ErlangError(f"agents must be an integer in [0, {MAX_AGENTS}], got {agents!r}")


def _check_traffic(traffic: float) -> None:
    require_non_negative("traffic_erlangs", traffic, ErlangError)
    if traffic > MAX_TRAFFIC_ERLANGS:
        raise ErlangError(f"traffic of {traffic!r} Erlangs is beyond {MAX_TRAFFIC_ERLANGS}: check the units")






def _check_open_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ErlangError(f"{name} must be strictly between 0 and 1, got {value!r}")


def _check_max_occupancy(max_occupancy: float | None) -> None:
    if max_occupancy is not None and not 0.0 < max_occupancy <= 1.0:
        raise ErlangError(f"max_occupancy must be in (0, 1], got {max_occupancy!r}")
