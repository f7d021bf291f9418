"""Pure ticket rules: the priority matrix, SLA due dates and the status workflow, exhaustively."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from cti.settings import SlaTarget, TicketSettings
from tickets.errors import InvalidTicket, InvalidTransition
from tickets.models import TICKET_STATUSES
from tickets.priority import TRANSITIONS, allowed_transitions, check_transition, due_dates, priority

EXPECTED_MATRIX = {
    # (impact, urgency): priority -- the table in tickets/priority.py, written out by hand
    (1, 1): 1, (1, 2): 2, (1, 3): 3,
    (2, 1): 2, (2, 2): 3, (2, 3): 4,
    (3, 1): 3, (3, 2): 4, (3, 3): 5,
}
CREATED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SLA = TicketSettings().sla


@pytest.mark.parametrize(("impact", "urgency"), sorted(EXPECTED_MATRIX))
def test_priority_matrix(impact: int, urgency: int) -> None:
    assert priority(impact, urgency) == EXPECTED_MATRIX[impact, urgency]


def test_priority_is_monotonic_and_spans_one_to_five() -> None:
    values = {priority(i, u) for i, u in EXPECTED_MATRIX}
    assert values == {1, 2, 3, 4, 5}
    for impact, urgency in EXPECTED_MATRIX:
        if impact < 3:
            assert priority(impact + 1, urgency) > priority(impact, urgency)
        if urgency < 3:
            assert priority(impact, urgency + 1) > priority(impact, urgency)


@pytest.mark.parametrize("bad", [0, 4, -1, True, "1", 1.0, None])
def test_priority_refuses_levels_outside_one_to_three(bad: object) -> None:
    with pytest.raises(InvalidTicket, match="impact must be 1"):
        priority(bad, 2)  # type: ignore[arg-type]
    with pytest.raises(InvalidTicket, match="urgency must be 1"):
        priority(2, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("level", "response", "resolve"), [("standard", 8, 72), ("gold", 2, 24), ("platinum", 1, 8)])
def test_due_dates_follow_the_contract(level: str, response: int, resolve: int) -> None:
    assert due_dates(CREATED, level, SLA) == (CREATED + timedelta(hours=response), CREATED + timedelta(hours=resolve))


def test_fractional_hours() -> None:
    sla = {"standard": SlaTarget(response_hours=0.5, resolve_hours=1.25)}
    assert due_dates(CREATED, "standard", sla) == (CREATED + timedelta(minutes=30), CREATED + timedelta(minutes=75))


def test_unknown_contract_falls_back_to_standard() -> None:
    assert due_dates(CREATED, "bronze", SLA) == due_dates(CREATED, "standard", SLA)


def test_unknown_contract_without_standard_is_an_error_naming_the_known_levels() -> None:
    sla = {"gold": SlaTarget(response_hours=2, resolve_hours=24)}
    with pytest.raises(InvalidTicket, match=r"'bronze'.*known: gold"):
        due_dates(CREATED, "bronze", sla)
    with pytest.raises(InvalidTicket, match="none configured"):
        due_dates(CREATED, "standard", {})


def test_transition_table_covers_every_status_and_only_known_ones() -> None:
    assert set(TRANSITIONS) == set(TICKET_STATUSES)
    for old, targets in TRANSITIONS.items():
        assert set(targets) <= set(TICKET_STATUSES)
        assert old not in targets
        assert "new" not in targets


EXPECTED_ALLOWED = {
    ("new", "open"), ("new", "pending"), ("new", "planned"), ("new", "resolved"), ("new", "closed_unresolved"),
    ("open", "pending"), ("open", "planned"), ("open", "resolved"), ("open", "closed_unresolved"),
    ("pending", "open"), ("pending", "planned"), ("pending", "resolved"), ("pending", "closed_unresolved"),
    ("planned", "open"), ("planned", "pending"), ("planned", "resolved"), ("planned", "closed_unresolved"),
    ("resolved", "open"),
    ("closed_unresolved", "open"),
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(TICKET_STATUSES, repeat=2)))
def test_every_pair_of_statuses(old: str, new: str) -> None:
    if (old, new) in EXPECTED_ALLOWED:
        check_transition(old, new)
        return
    with pytest.raises(InvalidTransition) as caught:
        check_transition(old, new)
    assert caught.value.code == "tickets.invalid_transition"
    assert (caught.value.old, caught.value.new) == (old, new)
    assert caught.value.allowed == allowed_transitions(old)
    assert f"from {old} to {new}" in str(caught.value)


def test_end_states_only_reopen() -> None:
    assert allowed_transitions("resolved") == ("open",)
    assert allowed_transitions("closed_unresolved") == ("open",)
    with pytest.raises(InvalidTransition, match=r"allowed from resolved: open\)"):
        check_transition("resolved", "closed_unresolved")


def test_unknown_target_status_is_invalid_input_not_a_transition_error() -> None:
    with pytest.raises(InvalidTicket, match="unknown status 'closed'"):
        check_transition("open", "closed")
