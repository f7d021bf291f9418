"""What the voicemail package needs from its neighbours, as protocols (``TicketService`` and ``AckMailer``
fit them; tests can pass small fakes)."""

from __future__ import annotations

from typing import Protocol

from tickets.models import Ticket
from tickets.types import NewTicket


class EventRecorder(Protocol):
    async def add_event(self, ticket_id: int, kind: str, body: str, author: str = "system") -> object: ...


class TicketFiler(EventRecorder, Protocol):
    async def create(self, new: NewTicket) -> Ticket:
        """Idempotent by ``new.source_key``: the second call returns the first ticket."""
        ...


class TicketNotifier(Protocol):
    """Tells the caller their ticket exists (``AckMailer``); returns whether something was sent."""

    async def send_ack(self, ticket: Ticket) -> bool: ...
