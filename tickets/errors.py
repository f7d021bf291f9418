"""Ticket errors: each carries a stable ``code`` so the HTTP layer and logs can map them without parsing text."""

from __future__ import annotations

from collections.abc import Iterable

from cti.errors import CtiError


class TicketError(CtiError):
    """Root of the ticket package's errors."""

    code = "tickets.error"


class TicketNotFound(TicketError):
    """No ticket with that id (the HTTP layer answers 404)."""

    code = "tickets.not_found"

    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"ticket {ticket_id} not found")
        self.ticket_id = ticket_id


class AttachmentNotFound(TicketNotFound):
    """No such attachment on that ticket; a ``TicketNotFound`` so callers that only care about 404 catch both."""

    code = "tickets.attachment_not_found"

    def __init__(self, ticket_id: int, attachment_id: int) -> None:
        TicketError.__init__(self, f"attachment {attachment_id} of ticket {ticket_id} not found")
        self.ticket_id = ticket_id
        self.attachment_id = attachment_id


class InvalidTransition(TicketError):
    """A status change the workflow forbids; says where from, where to and what would have been allowed."""

    code = "tickets.invalid_transition"

    def __init__(self, old: str, new: str, allowed: Iterable[str]) -> None:
        self.old = old
        self.new = new
        self.allowed = tuple(allowed)
        choices = ", ".join(self.allowed) or "none, it is final"
        super().__init__(f"cannot change status from {old} to {new} (allowed from {old}: {choices})")


class InvalidTicket(TicketError):
    """Input the service refuses (bad impact/urgency/source/status, a field too long, a bad filter...)."""

    code = "tickets.invalid"


class TicketConflict(TicketError):
    """Someone else changed the ticket between our read and our write; re-read and decide again (HTTP 409)."""

    code = "tickets.conflict"
