"""Pure ticket rules: priority from impact x urgency, SLA due dates, and the status workflow.

Kept free of I/O so the rules are tested exhaustively and read in one place.

Priority (ITIL-style; impact and urgency are 1 high .. 3 low, priority 1 critical .. 5 planning)::

                    urgency 1 (high)   urgency 2 (medium)   urgency 3 (low)
    impact 1 (high)        1                  2                   3
    impact 2 (medium)      2                  3                   4
    impact 3 (low)         3                  4                   5

Status workflow (``new`` is only ever the initial status; nothing moves back to it)::

    new               -> open, pending, planned, resolved, closed_unresolved
    open              -> pending, planned, resolved, closed_unresolved
    pending           -> open, planned, resolved, closed_unresolved
    planned           -> open, pending, resolved, closed_unresolved
    resolved          -> open                (reopen: the caller says it is not fixed)
    closed_unresolved -> open                (reopen: the caller called back, or it was closed by mistake)

``resolved`` and ``closed_unresolved`` are the two end states. Neither is terminal: a ticket closed by
mistake or a caller who calls back must be able to continue on the same ticket, keeping its history,
rather than on a fresh one. Leaving an end state always goes through ``open`` so a reopen is an
explicit, visible step in the history (and SLA reports can count reopens).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from cti.settings import SlaTarget
from tickets.errors import InvalidTicket, InvalidTransition
from tickets.models import TICKET_STATUSES

LEVELS = (1, 2, 3)
FALLBACK_CONTRACT = "standard"

PRIORITY_MATRIX: Mapping[tuple[int, int], int] = {
    (impact, urgency): impact + urgency - 1 for impact in LEVELS for urgency in LEVELS
}

_WORKING = ("open", "pending", "planned")
_ENDS = ("resolved", "closed_unresolved")

TRANSITIONS: Mapping[str, tuple[str, ...]] = {
    "new": (*_WORKING, *_ENDS),
    "open": ("pending", "planned", *_ENDS),
    "pending": ("open", "planned", *_ENDS),
    "planned": ("open", "pending", *_ENDS),
    "resolved": ("open",),
    "closed_unresolved": ("open",),
}


def check_level(name: str, value: object) -> int:
    """Impact and urgency arrive from JSON and other packages: refuse bools, strings and out-of-range ints."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in LEVELS:
        raise InvalidTicket(f"{name} must be 1 (high), 2 (medium) or 3 (low), got {value!r}")
    return value


def priority(impact: int, urgency: int) -> int:
    """The matrix above: 1 critical .. 5 planning."""
    return PRIORITY_MATRIX[check_level("impact", impact), check_level("urgency", urgency)]


def sla_target(contract_level: str, sla: Mapping[str, SlaTarget]) -> SlaTarget:
    """An unconfigured level falls back to ``standard`` so a caller with an odd contract still gets due dates."""
    target = sla.get(contract_level) or sla.get(FALLBACK_CONTRACT)
    if target is None:
        known = ", ".join(sorted(sla)) or "none configured"
        raise InvalidTicket(
            f"no SLA for contract level {contract_level!r} and no {FALLBACK_CONTRACT!r} fallback (known: {known})"
        )
    return target


def due_dates(created_at: datetime, contract_level: str, sla: Mapping[str, SlaTarget]) -> tuple[datetime, datetime]:
    """``(response_due, resolve_due)``: wall-clock hours from creation (no business-hours calendar yet)."""
    target = sla_target(contract_level, sla)
    return (
        created_at + timedelta(hours=target.response_hours),
        created_at + timedelta(hours=target.resolve_hours),
    )


def check_status(status: object) -> str:
    if not isinstance(status, str) or status not in TICKET_STATUSES:
        raise InvalidTicket(f"unknown status {status!r} (known: {', '.join(TICKET_STATUSES)})")
    return status


def allowed_transitions(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())


def check_transition(old: str, new: str) -> None:
    """Raise unless ``old -> new`` is in the workflow; staying in the same status is not a transition."""
    check_status(new)
    allowed = allowed_transitions(old)
    if new not in allowed:
        raise InvalidTransition(old, new, allowed)
