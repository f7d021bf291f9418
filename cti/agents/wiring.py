"""Builds the agent desktop's parts and plugs them into the ACD and the web application."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from cti.acd.service import AcdService
from cti.agents import pages, ws
from cti.agents.cards import CardBuilder
from cti.agents.desk import AgentDesk, ContactCreator, StoreContacts
from cti.agents.dialer import ClickToDial
from cti.agents.events import AgentEvents
from cti.agents.hub import AgentHub
from cti.agents.pops import ScreenPops
from cti.ami import AmiClient
from cti.contacts.directory import CallerDirectory
from cti.contacts.store import ContactStore
from cti.db import Database
from cti.settings import AgentsSettings
from cti.state import StateBackend
from tickets.service import TicketService


@dataclass
class Desktop:
    hub: AgentHub
    events: AgentEvents
    pops: ScreenPops
    desk: AgentDesk

    def add_routes(self, app: web.Application) -> None:
        ws.add_routes(app, self.hub, self.desk)
        pages.add_routes(app)

    async def start(self) -> None:
        await self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()


def build_desktop(settings: AgentsSettings, *, db: Database, state: StateBackend, ami: AmiClient,
                  acd: AcdService, tickets: TicketService, directory: CallerDirectory,
                  contacts: ContactCreator | None = None) -> Desktop:
    hub = AgentHub(state)
    events = AgentEvents(state, local=hub.deliver)
    pops = ScreenPops(events, CardBuilder(db, directory))
    acd.listeners.append(pops)
    creator = contacts if contacts is not None else StoreContacts(ContactStore(db, directory.region))
    desk = AgentDesk(acd, events, tickets, db, directory, ClickToDial(ami, settings.outbound_context), creator,
                     settings.outcomes)
    return Desktop(hub, events, pops, desk)
