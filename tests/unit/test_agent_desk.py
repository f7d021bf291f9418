"""The agent desktop's actions (SQLite and PostgreSQL, in-memory shared state, the test ACD): a call's outcome,
tickets from the card, a contact for an unknown caller, click-to-dial; always as the agent whose screen shows the
call, checked by the command layer first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import pytest
from sqlalchemy import select

from cti.acd.calls import QueuedCall
from cti.acd.model import AgentState
from cti.agents import commands
from cti.agents.commands import CommandInvalid
from cti.agents.desk import DEFAULT_OUTCOMES, AgentDesk, NotOnScreen, StoreContacts
from cti.agents.dialer import OUTBOUND_PAUSE_REASON, ClickToDial, DialRefused
from cti.ami import AmiActionFailed, AmiClient
from cti.contacts.directory import CallerDirectory
from cti.contacts.models import Contact, ContactNumber
from cti.contacts.store import ContactStore
from cti.db import Database
from cti.errors import CtiError
from cti.settings import TicketSettings
from tests.support.acd import make_desk, queue
from tests.support.desktop import DesktopRig, FakeAmi, FakeContacts, add_known_caller, start_rig
from tickets.service import TicketService
from tickets.types import NewTicket

SUPPORT = queue(wrap_up_s=30, ring_timeout_s=25, max_misses=3)
CALLER = "0612345678"
CONTEXT = "cti-agents"


@dataclass
class Station:
    """The rig (ACD, pops, hub, outboxes) and the desk acting on it."""

    rig: DesktopRig
    desk: AgentDesk
    tickets: TicketService
    ami: FakeAmi
    contacts: FakeContacts

    async def ringing(self, agent_id: str = "alice", caller: str = CALLER, language: str = "en") -> QueuedCall:
        """A call rings ``agent_id`` (logged in first) and its card is on their screen."""
        if self.rig.desk.status(agent_id).state is AgentState.LOGGED_OUT:
            await self.rig.acd.login(agent_id)
        call = await self.rig.desk.join(caller=caller)
        call.language = language
        await self.rig.desk.route()
        assert call.agent_id == agent_id
        await self.rig.event(agent_id, "call_ringing", call.id)
        return call

    async def answered(self, **options: str) -> QueuedCall:
        call = await self.ringing(**options)
        self.rig.acd.start_dialing(call)
        await self.rig.acd.answered(call)
        await self.rig.event(call.agent_id or "", "call_answered", call.id)
        return call

    async def ended(self, **options: str) -> QueuedCall:
        call = await self.ringing(**options)
        agent_id = call.agent_id or ""
        assert await self.rig.desk.connect(call, talk_s=60) is True
        await self.rig.event(agent_id, "call_ended", call.id)
        return call


@pytest.fixture
async def station(database: Database) -> AsyncIterator[Station]:
    rig = await start_rig(await make_desk(database, (SUPPORT,)))
    tickets = TicketService(database, TicketSettings())
    ami = FakeAmi()
    contacts = FakeContacts(database)
    desk = AgentDesk(rig.acd, rig.events, tickets, database, CallerDirectory(database, "FR"),
                     ClickToDial(cast(AmiClient, ami), CONTEXT), contacts)
    yield Station(rig, desk, tickets, ami, contacts)
    await rig.stop()


async def _card(station: Station, call: QueuedCall, agent_id: str = "alice") -> dict[str, object]:
    return await station.desk.card(agent_id, call.id)


# --- the outcome ------------------------------------------------------------------------------------------


async def test_set_outcome_needs_the_call_on_the_agents_screen(station: Station) -> None:
    with pytest.raises(NotOnScreen):
        await station.desk.set_outcome("alice", "1732350000.77", "resolved", "", "alice")
    call = await station.ended()
    with pytest.raises(NotOnScreen):  # alice's call is not on bob's screen
        await station.desk.set_outcome("bob", call.id, "resolved", "", "bob")
    assert (await station.rig.desk.row(call)).disposition is None


async def test_the_outcome_of_an_ended_call_is_recorded_and_closes_its_card(station: Station) -> None:
    call = await station.ended()
    result = await station.desk.set_outcome("alice", call.id, "resolved", "router rebooted", "alice.martin")
    assert result == {"call_id": call.id, "outcome": "resolved"}
    row = await station.rig.desk.row(call)
    assert (row.disposition, row.disposition_note, row.disposition_by) == ("resolved", "router rebooted",
                                                                           "alice.martin")
    assert row.disposition_at is not None
    assert await station.rig.events.cards("alice") == []
    assert await station.rig.event("alice", "call_closed", call.id) == {"call_id": call.id}


async def test_the_outcome_of_a_call_in_progress_updates_its_card(station: Station) -> None:
    call = await station.answered()
    await station.desk.set_outcome("alice", call.id, "callback", "call back at 5", "alice")
    card = await _card(station, call)
    assert (card["status"], card["outcome"], card["outcome_note"]) == ("answered", "callback", "call back at 5")
    updated = await station.rig.event("alice", "call_updated", call.id)
    assert updated["outcome"] == "callback"
    assert (await station.rig.desk.row(call)).disposition == "callback"


async def test_the_command_layer_refuses_an_unknown_outcome_or_call_id(station: Station) -> None:
    call = await station.ended()
    with pytest.raises(CommandInvalid):
        await commands.set_outcome(station.desk, "alice", "alice", {"call_id": call.id, "outcome": "bogus"})
    with pytest.raises(CommandInvalid):
        await commands.set_outcome(station.desk, "alice", "alice", {"call_id": call.id, "outcome": ""})
    with pytest.raises(CommandInvalid):
        await commands.set_outcome(station.desk, "alice", "alice", {"call_id": "../x", "outcome": "resolved"})
    with pytest.raises(CommandInvalid):
        await commands.set_outcome(station.desk, "alice", "alice", {"call_id": call.id, "outcome": "resolved",
                                                                    "note": "x" * (commands.MAX_NOTE + 1)})
    assert (await station.rig.desk.row(call)).disposition is None
    assert len(await station.rig.events.cards("alice")) == 1
    result = await commands.set_outcome(station.desk, "alice", "alice",
                                        {"call_id": call.id, "outcome": "wrong_number", "note": "  oops  "})
    assert result == {"call_id": call.id, "outcome": "wrong_number"}
    assert (await station.rig.desk.row(call)).disposition_note == "oops"


async def test_dismiss_closes_the_card_without_an_outcome(station: Station) -> None:
    call = await station.ended()
    assert await commands.dismiss(station.desk, "alice", "alice", {"call_id": call.id}) == {"call_id": call.id}
    assert await station.rig.events.cards("alice") == []
    assert (await station.rig.desk.row(call)).disposition is None
    with pytest.raises(NotOnScreen):
        await station.desk.dismiss("alice", call.id)


async def test_the_snapshot_shows_the_agent_their_state_and_cards(station: Station) -> None:
    call = await station.answered()
    snapshot = await station.desk.snapshot("alice")
    assert snapshot["agent"] == {"id": "alice", "name": "Alice", "known": True, "usual_phone": "PJSIP/agent1"}
    assert (snapshot["status"]["state"], snapshot["status"]["call"]) == ("on_call", call.id)
    assert [card["call_id"] for card in snapshot["cards"]] == [call.id]
    assert snapshot["outcomes"] == list(DEFAULT_OUTCOMES)
    assert (await station.desk.snapshot("nobody"))["agent"]["known"] is False


# --- tickets ----------------------------------------------------------------------------------------------


async def test_a_ticket_from_the_card_carries_the_caller_and_the_call(station: Station) -> None:
    await add_known_caller(station.rig.desk.db, "+33612345678", name="Jeanne Martin", contract_level="gold")
    call = await station.answered(language="fr")
    result = await commands.create_ticket(station.desk, "alice", "alice.martin",
                                          {"call_id": call.id, "subject": "Router down", "description": "red LED"})
    view = await station.tickets.get(result["ticket_id"])
    ticket = view.ticket
    assert result["reference"] == ticket.reference
    assert (ticket.caller_number, ticket.caller_name, ticket.contract_level) == ("+33612345678", "Jeanne Martin",
                                                                                 "gold")
    assert (ticket.language, ticket.call_id, ticket.source, ticket.queue) == ("fr", (await station.rig.desk.row(
        call)).id, "phone", "support")
    assert (ticket.subject, ticket.description) == ("Router down", "red LED")
    assert [(event.kind, event.author) for event in view.events if event.kind == "created_by"] == [
        ("created_by", "alice.martin")]
    assert (await _card(station, call))["tickets_filed"] == [ticket.id]
    updated = await station.rig.event("alice", "call_updated", call.id)
    assert updated["tickets_filed"] == [ticket.id]


async def test_a_ticket_without_a_call_and_one_for_a_call_not_on_screen(station: Station) -> None:
    result = await station.desk.create_ticket("alice", None, "Printer", "", "alice")
    ticket = (await station.tickets.get(result["ticket_id"])).ticket
    assert (ticket.caller_number, ticket.call_id, ticket.contract_level) == ("", None, "standard")
    with pytest.raises(NotOnScreen):
        await station.desk.create_ticket("alice", "1732350000.99", "Printer", "", "alice")
    with pytest.raises(CommandInvalid):
        await commands.create_ticket(station.desk, "alice", "alice", {"subject": "  "})


async def test_linking_a_call_to_a_ticket(station: Station) -> None:
    ticket = await station.tickets.create(NewTicket(subject="Router down", source="web"))
    call = await station.answered()
    result = await commands.link_ticket(station.desk, "alice", "alice.martin",
                                        {"call_id": call.id, "ticket_id": f"#{ticket.id}"})
    assert result == {"ticket_id": ticket.id, "reference": ticket.reference}
    [event] = [event for event in (await station.tickets.get(ticket.id)).events if event.kind == "call"]
    assert event.author == "alice.martin"
    assert "+33612345678" in event.body and call.id in event.body
    assert (await _card(station, call))["tickets_linked"] == [ticket.id]
    with pytest.raises(CommandInvalid):
        await commands.link_ticket(station.desk, "alice", "alice", {"call_id": call.id, "ticket_id": 0})


# --- contacts ---------------------------------------------------------------------------------------------


async def test_a_contact_created_for_an_unknown_caller_updates_the_card(station: Station) -> None:
    call = await station.answered(caller="0698765432")
    card = await _card(station, call)
    assert (card["known"], card["offer_create_contact"]) == (False, True)
    result = await commands.create_contact(station.desk, "alice", "alice",
                                           {"call_id": call.id, "name": "Paul Durand", "company": "Initech"})
    assert station.contacts.created == [{"name": "Paul Durand", "numbers": ["+33698765432"], "email": "",
                                         "company": "Initech"}]  # the caller's number, when none is given
    async with station.rig.desk.db.session() as session:
        contact = await session.get(Contact, result["contact_id"])
        numbers = list(await session.scalars(select(ContactNumber.number)))
    assert contact is not None and contact.name == "Paul Durand" and numbers == ["+33698765432"]
    card = await _card(station, call)
    assert (card["known"], card["offer_create_contact"], card["company"]) == (True, False, "Initech")
    assert card["contact"] == {"id": result["contact_id"], "name": "Paul Durand"}
    assert (card["contract_level"], card["vip"]) == ("standard", False)
    updated = await station.rig.event("alice", "call_updated", call.id)
    assert updated["known"] is True


async def test_through_the_contacts_store_a_number_owned_by_someone_else_is_refused(station: Station) -> None:
    """The real store behind the desktop (what build_desktop wires): its checks apply to agents too."""
    station.desk.contacts = StoreContacts(ContactStore(station.rig.desk.db, "FR"))
    call = await station.answered(caller="0698765432")
    result = await commands.create_contact(station.desk, "alice", "alice",
                                           {"call_id": call.id, "name": "Paul Durand", "company": "Initech"})
    card = await _card(station, call)
    assert (card["known"], card["contact"]["id"], card["company"]) == (True, result["contact_id"], "Initech")
    with pytest.raises(CtiError, match="already belongs to Paul Durand"):
        await commands.create_contact(station.desk, "alice", "alice", {"name": "Someone Else",
                                                                       "numbers": ["06 98 76 54 32"]})


async def test_contacts_cannot_be_created_without_a_store(station: Station) -> None:
    station.desk.contacts = None
    with pytest.raises(CtiError):
        await station.desk.create_contact("alice", None, name="Paul", numbers=[], email="", company="")
    with pytest.raises(CommandInvalid):
        await commands.create_contact(station.desk, "alice", "alice", {"name": "Paul", "numbers": "0612345678"})


# --- click-to-dial ----------------------------------------------------------------------------------------


async def test_dial_pauses_an_available_agent_and_rings_their_phone(station: Station) -> None:
    await station.rig.acd.login("alice")
    result = await commands.dial(station.desk, "alice", "alice", {"number": "06 12-34.56 78"})
    assert result == {"number": "0612345678", "endpoint": "PJSIP/agent1", "action_id": "action-1", "paused": True}
    [originate] = station.ami.originates
    assert (originate["channel"], originate["context"], originate["exten"], originate["priority"]) == (
        "PJSIP/agent1", CONTEXT, "0612345678", 1)
    assert originate["variables"]["CTI_AGENT_ID"] == "alice"
    status = station.rig.desk.status("alice")
    assert (status.state, status.reason) == (AgentState.PAUSED, OUTBOUND_PAUSE_REASON)
    assert (await station.rig.desk.board_status("alice")).state is AgentState.PAUSED


async def test_dial_leaves_a_paused_agent_paused_for_their_own_reason(station: Station) -> None:
    await station.rig.acd.login("alice", "PJSIP/desk7")
    await station.rig.acd.pause("alice", "lunch")
    result = await station.desk.dial("alice", "+44 20 7123 4567")
    assert (result["number"], result["endpoint"], result["paused"]) == ("+442071234567", "PJSIP/desk7", False)
    assert station.rig.desk.status("alice").reason == "lunch"


async def test_dial_is_refused_for_a_number_that_is_not_one(station: Station) -> None:
    await station.rig.acd.login("alice")
    for number in ("abc", "1", "06 12 ab", "+"):
        with pytest.raises(DialRefused):
            await station.desk.dial("alice", number)
    assert station.ami.originates == []
    assert station.rig.desk.status("alice").state is AgentState.AVAILABLE


async def test_dial_is_refused_during_a_call(station: Station) -> None:
    await station.ringing()
    with pytest.raises(DialRefused):
        await station.desk.dial("alice", CALLER)  # ringing
    await station.answered(agent_id="bob")
    with pytest.raises(DialRefused):
        await station.desk.dial("bob", CALLER)  # on the call
    assert station.ami.originates == []


async def test_dial_is_refused_without_a_phone_system(station: Station) -> None:
    await station.rig.acd.login("alice")
    station.desk.dialer = None
    with pytest.raises(DialRefused):
        await station.desk.dial("alice", CALLER)
    station.desk.dialer = ClickToDial(cast(AmiClient, FakeAmi(connected=False)), CONTEXT)
    with pytest.raises(DialRefused):
        await station.desk.dial("alice", CALLER)
    status = station.rig.desk.status("alice")
    assert (status.state, status.reason) == (AgentState.AVAILABLE, None)  # not left paused for a call never made


async def test_a_failed_originate_gives_the_agent_back_to_the_queues(station: Station) -> None:
    await station.rig.acd.login("alice")
    station.ami.error = AmiActionFailed("Originate failed")
    with pytest.raises(AmiActionFailed):
        await station.desk.dial("alice", CALLER)
    assert len(station.ami.originates) == 1
    assert station.rig.desk.status("alice").state is AgentState.AVAILABLE
