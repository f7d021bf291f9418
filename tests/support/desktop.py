"""Agent-desktop test helpers: recording outboxes, a fake websocket, a shared state that fails on demand, fake
AMI and contacts store, bounded waits, and a rig that joins the test ACD (``tests.support.acd``) to screen pops,
agent events and a started hub, and a test HTTP server with the desktop's routes (``desktop_server``).

Nothing here sleeps to let time pass: every wait polls a condition and fails after a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.acd.service import AcdService
from cti.agents.cards import CardBuilder
from cti.agents.desk import AgentDesk, StoreContacts
from cti.agents.dialer import ClickToDial
from cti.agents.events import AgentEvents
from cti.agents.hub import AgentHub
from cti.agents.pops import ScreenPops
from cti.agents.wiring import Desktop, build_desktop
from cti.ami import AmiClient
from cti.contacts.directory import CallerDirectory, normalise_number
from cti.contacts.models import Company, Contact, ContactNumber
from cti.contacts.store import ContactStore
from cti.db import Database
from cti.http.app import make_web_app
from cti.settings import AgentsSettings, SecuritySettings, TicketSettings
from cti.state import StateBackend, StateUnavailable, Subscription
from cti.users import http as users_http
from cti.users.sessions import SessionStore
from cti.users.store import User, UserStore
from tests.support.acd import Desk
from tickets.service import TicketService

WAIT_S = 10.0
FLUSH = "test_flush"


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.002)


class RecordingOutbox:
    """A desktop socket as the hub sees it: records every ``(envelope, seq)`` it is handed."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.received: list[tuple[dict[str, Any], int | None]] = []
        self.resyncs = 0

    def push(self, text: str, seq: int | None = None) -> bool:
        self.received.append((json.loads(text), seq))
        return True

    def close_for_resync(self) -> None:
        self.resyncs += 1

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for event, _ in self.received if event["type"] != FLUSH]

    def kinds(self, prefix: str = "") -> list[str]:
        return [event["type"] for event in self.events if event["type"].startswith(prefix)]

    def of(self, kind: str, call_id: str | None = None) -> list[dict[str, Any]]:
        """The ``data`` of the events of ``kind`` (about ``call_id`` when given), in arrival order."""
        return [event["data"] for event in self.events
                if event["type"] == kind and (call_id is None or event["data"].get("call_id") == call_id)]

    async def wait_for(self, kind: str, count: int = 1) -> list[dict[str, Any]]:
        """The ``data`` of the events of ``kind`` once at least ``count`` of them have arrived."""
        await wait_until(lambda: len(self.of(kind)) >= count, f"{count} {kind} event(s) at {self.name}")
        return self.of(kind)

    def saw(self, kind: str, **data: Any) -> bool:
        return any(all(event.get(key) == value for key, value in data.items()) for event in self.of(kind))


async def flush(events: AgentEvents, *outboxes: RecordingOutbox) -> None:
    """Everything published before this call has reached ``outboxes`` once they have the marker broadcast
    (one channel, delivered in order), so "nothing arrived" can be asserted without waiting for time."""
    token = uuid.uuid4().hex

    def arrived(box: RecordingOutbox) -> bool:
        return any(event["type"] == FLUSH and event["data"]["token"] == token for event, _ in box.received)

    await events.broadcast(FLUSH, {"token": token})
    for outbox in outboxes:
        await wait_until(functools.partial(arrived, outbox), f"the flush marker at {outbox.name}")


class FlakyState:
    """Wraps a backend; the operations named in ``down`` raise ``StateUnavailable`` (the shared state is down)."""

    def __init__(self, inner: StateBackend, *down: str) -> None:
        self.inner = inner
        self.down = set(down)
        self.subscriptions: list[Subscription] = []

    @property
    def backend(self) -> StateBackend:
        return cast(StateBackend, self)

    def _check(self, operation: str) -> None:
        if operation in self.down:
            raise StateUnavailable(f"{operation}: the shared state is down (test)")

    async def incr(self, key: str, amount: int = 1) -> int:
        self._check("incr")
        return await self.inner.incr(key, amount)

    async def publish(self, channel: str, message: str) -> None:
        self._check("publish")
        await self.inner.publish(channel, message)

    async def hset(self, key: str, mapping: Mapping[str, str]) -> None:
        self._check("hset")
        await self.inner.hset(key, mapping)

    async def hgetall(self, key: str) -> dict[str, str]:
        self._check("hgetall")
        return await self.inner.hgetall(key)

    async def hdel(self, key: str, *fields: str) -> int:
        self._check("hdel")
        return await self.inner.hdel(key, *fields)

    async def subscribe(self, *channels: str) -> Subscription:
        self._check("subscribe")
        subscription = await self.inner.subscribe(*channels)
        self.subscriptions.append(subscription)
        return subscription

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FakeWebSocket:
    """``send_str`` records (after ``gate`` opens, when given; raises when ``broken``); ``close`` records the code."""

    def __init__(self, gate: asyncio.Event | None = None, broken: bool = False) -> None:
        self.gate = gate
        self.broken = broken
        self.sent: list[str] = []
        self.attempts = 0
        self.close_codes: list[int] = []
        self.closed = False

    async def send_str(self, text: str) -> None:
        self.attempts += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.broken:
            raise ConnectionResetError("the browser went away")
        self.sent.append(text)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.close_codes.append(code)
        self.closed = True
        return True


class FakeAmi:
    """The part of ``AmiClient`` click-to-dial uses: ``connected`` and a recording ``originate`` (which raises
    ``error`` when given, after recording)."""

    def __init__(self, connected: bool = True, error: Exception | None = None) -> None:
        self.connected = connected
        self.error = error
        self.originates: list[dict[str, Any]] = []

    async def originate(self, channel: str, **fields: Any) -> str:
        self.originates.append({"channel": channel, **fields})
        if self.error is not None:
            raise self.error
        return f"action-{len(self.originates)}"


class FakeContacts:
    """A ``ContactCreator`` writing the rows itself (numbers normalised like the contacts store does)."""

    def __init__(self, db: Database, region: str = "FR") -> None:
        self.db = db
        self.region = region
        self.created: list[dict[str, Any]] = []

    async def create_contact(self, *, name: str, numbers: list[str], email: str, company: str) -> int:
        self.created.append({"name": name, "numbers": numbers, "email": email, "company": company})
        async with self.db.session() as session:
            company_row = Company(name=company) if company else None
            if company_row is not None:
                session.add(company_row)
                await session.flush()
            contact = Contact(name=name, email=email, company_id=company_row.id if company_row else None)
            session.add(contact)
            await session.flush()
            for number in numbers:
                session.add(ContactNumber(contact_id=contact.id, number=normalise_number(number, self.region)))
            return contact.id


async def add_known_caller(db: Database, number: str = "+33612345678", *, name: str = "Jeanne Martin",
                           company: str = "Acme", contract_level: str = "gold", vip: bool = True) -> int:
    """A contact of a company (its contract level, VIP flag) reached on ``number`` (E.164); returns its id."""
    async with db.session() as session:
        company_row = Company(name=company, contract_level=contract_level, vip=vip)
        session.add(company_row)
        await session.flush()
        contact = Contact(name=name, company_id=company_row.id)
        session.add(contact)
        await session.flush()
        session.add(ContactNumber(contact_id=contact.id, number=number))
        return contact.id


async def settle(acd: AcdService) -> None:
    """The ACD's background listener tasks (screen pops) have all finished."""
    await wait_until(lambda: not acd._background, "the ACD's listener tasks")


@dataclass
class DesktopRig:
    """The test ACD with screen pops on its listeners, agent events on its in-memory state and a started hub
    holding one recording outbox per agent in ``outboxes``."""

    desk: Desk
    events: AgentEvents
    hub: AgentHub
    pops: ScreenPops
    outboxes: dict[str, RecordingOutbox]

    @property
    def acd(self) -> AcdService:
        return self.desk.acd

    def box(self, agent_id: str) -> RecordingOutbox:
        return self.outboxes[agent_id]

    async def event(self, agent_id: str, kind: str, call_id: str) -> dict[str, Any]:
        """The first ``kind`` event about ``call_id`` on ``agent_id``'s desktop, once it has arrived."""
        box = self.outboxes[agent_id]
        await wait_until(lambda: bool(box.of(kind, call_id)), f"{kind} of call {call_id} at {agent_id}")
        return box.of(kind, call_id)[0]

    async def settle(self) -> None:
        """Every pop the ACD has started is done and has reached the outboxes."""
        await settle(self.acd)
        await flush(self.events, *self.outboxes.values())

    async def stop(self) -> None:
        await settle(self.acd)
        await self.hub.stop()


async def start_rig(desk: Desk, agents: tuple[str, ...] = ("alice", "bob"), region: str = "FR",
                    cards: CardBuilder | None = None) -> DesktopRig:
    """What ``cti.agents.wiring.build_desktop`` does, on the test desk's backend and database."""
    hub = AgentHub(desk.state)
    events = AgentEvents(desk.state, local=hub.deliver)
    pops = ScreenPops(events, cards or CardBuilder(desk.db, CallerDirectory(desk.db, region)))
    desk.acd.listeners.append(pops)
    await hub.start()
    outboxes = {agent_id: RecordingOutbox(agent_id) for agent_id in agents}
    for agent_id, outbox in outboxes.items():
        hub.add(agent_id, outbox)
    return DesktopRig(desk, events, hub, pops, outboxes)


# --- the desktop's web routes on a test HTTP server ----------------------------------------------------------

ADMIN_TOKEN = "admin-api-token-" + "a" * 24
AGENT_TOKEN = "agent-api-token-" + "g" * 24
PASSWORD = "a long enough password"
Client = TestClient[web.Request, web.Application]


async def _healthy() -> dict[str, Any]:
    return {"healthy": True}


@dataclass
class DesktopServer:
    """The test ACD's desktop (``/ws/agent``, ``/agent``, its static files) and the login routes on a test HTTP
    server, the desktop's hub started; API tokens ``ADMIN_TOKEN`` (admin) and ``AGENT_TOKEN`` (agent)."""

    client: Client
    desktop: Desktop
    desk: Desk
    sessions: SessionStore
    users: UserStore
    ami: FakeAmi

    @property
    def events(self) -> AgentEvents:
        return self.desktop.events

    @property
    def origin(self) -> str:
        """This server's own origin, as a browser's ``Origin`` header names it (``http://127.0.0.1:port``)."""
        return str(self.client.make_url("/").origin())

    async def user(self, username: str, role: str = "agent", *, agent_id: str | None = None,
                   language: str | None = None) -> User:
        return await self.users.create(username, PASSWORD, role, agent_id=agent_id, language=language)

    async def token(self, username: str, role: str = "agent", *, agent_id: str | None = None,
                    language: str | None = None) -> str:
        """The session token of a new user: their Bearer token, or the value of their ``cti_session`` cookie."""
        token, _session = await self.sessions.create(await self.user(username, role, agent_id=agent_id,
                                                                     language=language))
        return token


def _assembled(settings: AgentsSettings, hub: AgentHub, *, db: Database, state: StateBackend, acd: AcdService,
               ami: AmiClient, tickets: TicketService, directory: CallerDirectory) -> Desktop:
    """What ``build_desktop`` builds, around a hub of the test's own (a clock it moves, a short window)."""
    events = AgentEvents(state, local=hub.deliver)
    pops = ScreenPops(events, CardBuilder(db, directory))
    acd.listeners.append(pops)
    desk = AgentDesk(acd, events, tickets, db, directory, ClickToDial(ami, settings.outbound_context),
                     StoreContacts(ContactStore(db, directory.region)), settings.outcomes)
    return Desktop(hub, events, pops, desk)


@contextlib.asynccontextmanager
async def desktop_server(desk: Desk, *, hub: AgentHub | None = None) -> AsyncIterator[DesktopServer]:
    """The application built the way ``cti.app`` does (``build_desktop`` unless ``hub`` is given), served."""
    settings, ami = AgentsSettings(), FakeAmi()
    parts: dict[str, Any] = {"db": desk.db, "state": desk.state, "acd": desk.acd, "ami": cast(AmiClient, ami),
                             "tickets": TicketService(desk.db, TicketSettings()),
                             "directory": CallerDirectory(desk.db, "FR")}
    desktop = build_desktop(settings, **parts) if hub is None else _assembled(settings, hub, **parts)
    sessions = SessionStore(desk.state, 3600)
    app = make_web_app(SecuritySettings(api_tokens={ADMIN_TOKEN: "admin", AGENT_TOKEN: "agent"}), _healthy,
                       sessions=sessions)
    users = UserStore(desk.db)
    users_http.add_routes(app, users)
    desktop.add_routes(app)
    await desktop.start()
    try:
        async with TestClient(TestServer(app)) as client:
            yield DesktopServer(client, desktop, desk, sessions, users, ami)
    finally:
        await settle(desk.acd)
        await desktop.stop()
