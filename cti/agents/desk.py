"""The agent desktop's actions, as one agent: state changes, call outcome, tickets, contacts, click-to-dial.

Actions on a call are allowed only on a call whose card is on the agent's screen (it rang for them), so a
desktop cannot set the outcome of, or file a ticket from, someone else's call. Each change that the agent's
other tabs must show is published as an event (the card's new content, or its removal).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import update

from cti.acd.model import CALL_STATES, AgentState
from cti.acd.service import AcdService
from cti.acd.shared import AgentStatus
from cti.agents.dialer import OUTBOUND_PAUSE_REASON, ClickToDial, DialRefused, diallable
from cti.agents.events import AgentEvents
from cti.contacts.directory import CallerDirectory
from cti.contacts.store import ContactStore
from cti.contacts.validation import ContactInput
from cti.db import Database
from cti.db.base import utcnow
from cti.db.models import CallRecord
from cti.errors import CtiError
from tickets.service import TicketService
from tickets.types import NewTicket

DEFAULT_OUTCOMES = ("resolved", "ticket", "callback", "transferred", "wrong_number", "other")


class NotOnScreen(CtiError):
    code = "desktop.not_on_screen"


class DesktopUnavailable(CtiError):
    code = "desktop.unavailable"


class ContactCreator(Protocol):
    """The contacts store's creation, as the desktop uses it (``cti.contacts.store``)."""

    async def create_contact(self, *, name: str, numbers: list[str], email: str, company: str) -> int: ...


@dataclass(frozen=True)
class StoreContacts:
    """An agent creates a contact through the contacts store, with its checks (numbers normalised, a number
    owned by another contact refused); never with a VIP flag or a contract level, which raise priority."""

    store: ContactStore

    async def create_contact(self, *, name: str, numbers: list[str], email: str, company: str) -> int:
        view = await self.store.create(ContactInput(name=name, numbers=numbers, email=email, company=company or None))
        return view.id


def status_json(status: AgentStatus) -> dict[str, Any]:
    data = dataclasses.asdict(status)
    data["state"] = status.state.value
    return data


@dataclass
class AgentDesk:
    acd: AcdService
    events: AgentEvents
    tickets: TicketService
    db: Database
    directory: CallerDirectory
    dialer: ClickToDial | None = None
    contacts: ContactCreator | None = None
    outcomes: tuple[str, ...] = DEFAULT_OUTCOMES

    # --- the agent's state -------------------------------------------------------------------------------

    async def login(self, agent_id: str, endpoint: str | None) -> dict[str, Any]:
        return status_json(await self.acd.login(agent_id, endpoint))

    async def pause(self, agent_id: str, reason: str) -> dict[str, Any]:
        return status_json(await self.acd.pause(agent_id, reason))

    async def resume(self, agent_id: str) -> dict[str, Any]:
        return status_json(await self.acd.resume(agent_id))

    async def logout(self, agent_id: str) -> dict[str, Any]:
        return status_json(await self.acd.logout(agent_id))

    async def end_wrap_up(self, agent_id: str) -> dict[str, Any]:
        return status_json(await self.acd.end_wrap_up(agent_id))

    async def snapshot(self, agent_id: str) -> dict[str, Any]:
        """What a desktop shows when it connects: the agent, their state, their calls' cards."""
        config = self.acd.agents.get(agent_id)
        status = await self.acd.board.get(agent_id)  # the shared truth, whichever node changed it last
        return {"agent": {"id": agent_id, "name": config.name if config else agent_id,
                          "known": config is not None, "usual_phone": config.endpoint if config else ""},
                "status": status_json(status), "cards": await self.events.cards(agent_id),
                "outcomes": list(self.outcomes)}

    # --- the calls on the agent's screen --------------------------------------------------------------------

    async def card(self, agent_id: str, call_id: str) -> dict[str, Any]:
        card = await self.events.card(agent_id, call_id)
        if card is None:
            raise NotOnScreen(f"call {call_id} is not on your screen")
        return card

    async def set_outcome(self, agent_id: str, call_id: str, outcome: str, note: str, author: str) -> dict[str, Any]:
        card = await self.card(agent_id, call_id)
        async with self.db.session() as session:
            await session.execute(update(CallRecord).where(CallRecord.uniqueid == call_id).values(
                disposition=outcome, disposition_note=note, disposition_by=author, disposition_at=utcnow()))
        if card.get("status") == "ended":
            await self._close(agent_id, call_id)
        else:
            await self._change_card(agent_id, card, outcome=outcome, outcome_note=note)
        return {"call_id": call_id, "outcome": outcome}

    async def dismiss(self, agent_id: str, call_id: str) -> dict[str, Any]:
        await self.card(agent_id, call_id)
        await self._close(agent_id, call_id)
        return {"call_id": call_id}

    async def _close(self, agent_id: str, call_id: str) -> None:
        await self.events.drop_card(agent_id, call_id)
        await self.events.emit(agent_id, "call_closed", {"call_id": call_id})

    async def _change_card(self, agent_id: str, card: dict[str, Any], **changes: Any) -> dict[str, Any]:
        changed = {**card, **changes}
        await self.events.keep_card(agent_id, changed)
        await self.events.emit(agent_id, "call_updated", changed)
        return changed

    # --- tickets and contacts ---------------------------------------------------------------------------------

    async def create_ticket(self, agent_id: str, call_id: str | None, subject: str, description: str,
                            author: str) -> dict[str, Any]:
        card = await self.card(agent_id, call_id) if call_id else None
        ticket = await self.tickets.create(_new_ticket(card, subject, description))
        await self.tickets.add_event(ticket.id, "created_by", f"created by {author} from the agent desktop", author)
        if card is not None:
            await self._change_card(agent_id, card, tickets_filed=[*card.get("tickets_filed", []), ticket.id])
        return {"ticket_id": ticket.id, "reference": ticket.reference}

    async def link_ticket(self, agent_id: str, call_id: str, ticket_id: int, author: str) -> dict[str, Any]:
        card = await self.card(agent_id, call_id)
        ticket = (await self.tickets.get(ticket_id)).ticket
        caller = card["caller"]["number"] or card["caller"]["received"] or "a withheld number"
        await self.tickets.add_event(ticket_id, "call", f"call from {caller} ({call_id}) taken by {author}", author)
        await self._change_card(agent_id, card, tickets_linked=[*card.get("tickets_linked", []), ticket_id])
        return {"ticket_id": ticket.id, "reference": ticket.reference}

    async def create_contact(self, agent_id: str, call_id: str | None, *, name: str, numbers: list[str],
                             email: str, company: str) -> dict[str, Any]:
        if self.contacts is None:
            raise DesktopUnavailable("contacts cannot be created on this server")
        card = await self.card(agent_id, call_id) if call_id else None
        if card is not None and not numbers and card["caller"]["number"]:
            numbers = [card["caller"]["number"]]
        contact_id = await self.contacts.create_contact(name=name, numbers=numbers, email=email, company=company)
        if card is not None:
            profile = await self.directory.lookup(card["caller"]["received"], utcnow())
            await self._change_card(agent_id, card, known=profile.known, offer_create_contact=not profile.known,
                                    contact={"id": profile.contact_id, "name": profile.contact_name},
                                    company=profile.company_name or None, contract_level=profile.contract_level,
                                    vip=profile.vip)
        return {"contact_id": contact_id}

    # --- click-to-dial -----------------------------------------------------------------------------------------

    async def dial(self, agent_id: str, number: str) -> dict[str, Any]:
        if self.dialer is None:
            raise DialRefused("click-to-dial needs the connection to Asterisk")
        target = diallable(number)
        status = self.acd.statuses.get(agent_id, AgentStatus(agent_id))
        endpoint = status.endpoint or (self.acd.agents[agent_id].endpoint if agent_id in self.acd.agents else "")
        if status.state in CALL_STATES:
            raise DialRefused("you are on a call: finish it first")
        if not endpoint:
            raise DialRefused("no phone to ring: log in with your extension first")
        paused = status.state is AgentState.AVAILABLE
        if paused:
            await self.acd.pause(agent_id, OUTBOUND_PAUSE_REASON)
        try:
            action_id = await self.dialer.dial(endpoint, target, agent_id)
        except Exception:
            if paused:  # no call was placed: the agent takes queued calls again
                await self.acd.resume(agent_id)
            raise
        return {"number": target, "endpoint": endpoint, "action_id": action_id, "paused": paused}


def _new_ticket(card: dict[str, Any] | None, subject: str, description: str) -> NewTicket:
    if card is None:
        return NewTicket(subject=subject, source="phone", description=description)
    contact = card.get("contact") or {}
    return NewTicket(subject=subject, source="phone", description=description, queue=card.get("queue") or "",
                     contract_level=card.get("contract_level") or "standard",
                     caller_number=(card["caller"]["number"] or card["caller"]["received"])[:64],
                     caller_name=(contact.get("name") or card["caller"].get("name") or "")[:128],
                     language=card.get("language") or "en", call_id=card.get("record_id"))
