"""Ticket events on the shared state's pub/sub: the one place that publishes them.

Agents' desktops and the wallboard (on any node) subscribe to ``CHANNEL``. Each message is JSON
``{"kind": "ticket.created" | "ticket.updated" | "ticket.commented", "data": {...}}``. Delivery is
at-most-once, like the backends' pub/sub: a reader that needs the truth re-reads the ticket.
"""

from __future__ import annotations

import json
from typing import Any

from cti.state import StateBackend

CHANNEL = "tickets"


class TicketEvents:
    """Adapts a ``StateBackend`` to the ``publish(kind, payload)`` callable ``TicketService`` takes."""

    def __init__(self, state: StateBackend) -> None:
        self._state = state

    async def publish(self, kind: str, payload: dict[str, Any]) -> None:
        """Non-JSON payloads raise here, loudly, rather than reaching subscribers half-encoded."""
        message = json.dumps({"kind": kind, "data": payload}, ensure_ascii=False, separators=(",", ":"))
        await self._state.publish(CHANNEL, message)
