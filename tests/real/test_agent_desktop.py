"""The agent desktop in a real Chromium, a real call through the real Asterisk: the pop appears on the page.

The whole server runs (build_app: IVR, ACD, desktop, login), Asterisk's CTI_AGI_URL points at it, and the demo
desk answers: French, menu 1 -> queue support -> chloe, logged in from the page with a phone that rings three
seconds before answering (``slowchloe`` in the sandbox's [cti-agent-sim]). The caller is a known contact.

Then the page's resume: the server drops the page's socket, the call moves on meanwhile (the screen pops the
ACD would raise, raised on the same server), and the page, reconnecting by itself, shows what it missed.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any

from playwright.async_api import Browser, Page, WebSocket, expect
from sqlalchemy import select

from cti.acd.calls import QueuedCall
from cti.agents.hub import AgentHub
from cti.agents.outbox import SocketOutbox
from cti.ami import AmiClient
from cti.app import CtiApp
from cti.contacts.models import Company, Contact, ContactNumber
from cti.db.base import utcnow
from cti.db.models import CallRecord
from cti.prompts import PromptStore
from tests.plugins.asterisk import place_simulated_call
from tests.plugins.browser import screenshot, signed_in
from tests.support.desktop import wait_until
from tickets.models import Ticket
from tickets.voicemail.recordings import wav_duration

DEMO_FR_NUMBER = "5551000"


async def _known_caller(app: CtiApp, number: str) -> None:
    async with app.db.session() as session:
        company = Company(name="Dupont SA", contract_level="gold")
        session.add(company)
        await session.flush()
        contact = Contact(name="Claire Martin", company_id=company.id, language="fr")
        session.add(contact)
        await session.flush()
        session.add(ContactNumber(contact_id=contact.id, number=number))


async def test_a_real_call_pops_on_the_agents_page_before_she_answers(
    full_server: CtiApp, browser: Browser, ami: AmiClient, prompt_store: PromptStore
) -> None:
    server = full_server
    caller = f"+3361{uuid.uuid4().int % 10**7:07d}"
    await _known_caller(server, caller)
    page = await signed_in(browser, server, "chloe", "/agent")
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    await expect(page.get_by_test_id("agent-state")).to_have_text("Déconnecté")
    await page.fill("[data-testid=extension]", "Local/slowchloe@cti-agent-sim")
    await page.click("[data-testid=login]")
    await expect(page.get_by_test_id("agent-state")).to_have_text("Disponible")

    welcome = wav_duration(prompt_store.path("en", "welcome"))
    digits = "w" * math.ceil((welcome + 1.5) / 0.5) + "2" + "w" * 6 + "1"
    await place_simulated_call(ami, DEMO_FR_NUMBER, caller, digits=digits, hold=14)

    card = page.get_by_test_id("call-card")
    await expect(card).to_have_attribute("data-status", "ringing", timeout=40_000)  # before she picks up
    await expect(card.get_by_test_id("card-caller")).to_have_text("Claire Martin")
    await expect(card.get_by_test_id("card-company")).to_have_text("Dupont SA")
    await expect(card.get_by_test_id("card-contract")).to_contain_text("gold")
    await expect(card.get_by_test_id("card-digits")).to_have_text("1")
    await expect(card.get_by_test_id("card-queue")).to_have_text("support")
    await expect(card.get_by_test_id("card-status")).to_have_text("Appel entrant")
    await screenshot(page, "agent-desktop-ringing")

    await expect(card).to_have_attribute("data-status", "answered", timeout=15_000)
    await expect(page.get_by_test_id("agent-state")).to_have_text("En communication")
    await card.get_by_test_id("ticket-form").locator("[name=subject]").fill("Imprimante en panne")
    await card.get_by_test_id("ticket-form").locator("button").click()
    await expect(page.get_by_test_id("toast").filter(has_text="Ticket")).to_be_visible()
    await expect(card.get_by_test_id("card-call-tickets")).to_have_text(re.compile(r"^#\d+$"))
    await expect(page.get_by_test_id("login-form")).to_be_hidden()  # on a call: no login form

    await expect(card).to_have_attribute("data-status", "ended", timeout=30_000)  # the caller hung up
    await screenshot(page, "agent-desktop-ended")
    await card.get_by_test_id("outcome-form").locator("select").select_option("resolved")
    await card.get_by_test_id("outcome-form").locator("[name=note]").fill("réglé au téléphone")
    await card.get_by_test_id("outcome-form").locator("button").click()
    await expect(page.get_by_test_id("call-card")).to_have_count(0)  # an ended call leaves once its outcome is set

    async with server.db.session() as session:
        row = (await session.scalars(select(CallRecord).where(CallRecord.caller_number == caller))).one()
        ticket = (await session.scalars(select(Ticket).where(Ticket.call_id == row.id))).one()
    assert (row.agent_id, row.disposition, row.disposition_note, row.disposition_by) == (
        "chloe", "resolved", "réglé au téléphone", "chloe")
    assert (ticket.subject, ticket.caller_number, ticket.caller_name, ticket.contract_level) == (
        "Imprimante en panne", caller, "Claire Martin", "gold")


class PageSockets:
    """The page's websockets as Chromium opens them from now on, each with the messages it received (read, not
    touched)."""

    def __init__(self, page: Page) -> None:
        self.opened: list[tuple[str, list[dict[str, Any]]]] = []
        page.on("websocket", self._opened)

    def _opened(self, socket: WebSocket) -> None:
        received: list[dict[str, Any]] = []
        self.opened.append((socket.url, received))
        socket.on("framereceived", lambda payload: received.append(json.loads(payload)))

    async def reopened(self, mark: int) -> tuple[str, dict[str, Any]]:
        """The URL and ``hello`` data of the first socket opened after the first ``mark`` ones, once greeted."""
        await wait_until(lambda: len(self.opened) > mark and bool(self.opened[mark][1]),
                         f"the page to open socket #{mark + 1} and be greeted")
        url, received = self.opened[mark]
        assert received[0]["type"] == "hello", received[0]
        return url, received[0]["data"]


def _drop_sockets(hub: AgentHub, agent_id: str) -> None:
    """What the server does to a desktop that stopped reading, or after a Redis outage: close it (code 4000)."""
    sockets = [client for holder, client in hub.clients() if holder == agent_id]
    assert sockets, f"{agent_id} has no socket"
    for client in sockets:
        assert isinstance(client, SocketOutbox)
        client.close_for_resync()


def _call(app: CtiApp, number: int) -> QueuedCall:
    assert app.acd is not None
    return QueuedCall(id=f"1732350000.{number}{uuid.uuid4().int % 1000:03d}", channel=f"PJSIP/trunk-{number:04d}",
                      queue="support", priority=0, arrived_at=app.acd.monotonic(), joined=utcnow(),
                      caller=f"+3361{uuid.uuid4().int % 10**7:07d}", called=DEMO_FR_NUMBER, language="fr")


async def test_a_page_that_lost_its_socket_shows_what_happened_to_the_call_meanwhile(
    full_server: CtiApp, browser: Browser
) -> None:
    """Dropped while the call rings, it is answered meanwhile; dropped again, it ends; a second call, dropped
    while it rings, is given up by its caller. Each time the page reconnects by itself with ``?since=&stream=``,
    is replayed the missed event and shows it: the card answered, then ended with its talk time, then gone."""
    server = full_server
    assert server.desktop is not None
    hub, pops = server.desktop.hub, server.desktop.pops
    page = await signed_in(browser, server, "chloe", "/agent")
    sockets = PageSockets(page)
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    stream = await server.desktop.events.stream("chloe")
    call = _call(server, 1)
    await pops.ringing(call, "chloe")
    card = page.locator(f'[data-testid=call-card][data-call="{call.id}"]')
    await expect(card).to_have_attribute("data-status", "ringing")

    steps = (("answered", lambda: pops.answered(call, "chloe")), ("ended", lambda: pops.ended(call, "chloe", 42.0)))
    for status, step in steps:
        mark = len(sockets.opened)
        _drop_sockets(hub, "chloe")
        await step()  # while the page is away: its socket is closing, the reconnect waits half a second
        url, hello = await sockets.reopened(mark)
        assert f"stream={stream}" in url and re.search(r"[?&]since=\d+", url), url
        assert (hello["stream"], hello["resumed"], hello["replayed"]) == (stream, True, 1), hello
        await expect(card).to_have_attribute("data-status", status)
    await expect(card.get_by_test_id("card-status")).to_have_text("Appel terminé")
    await expect(card.get_by_test_id("card-talked")).to_have_text("0:42")
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")

    gone = _call(server, 2)
    await pops.ringing(gone, "chloe")
    other = page.locator(f'[data-testid=call-card][data-call="{gone.id}"]')
    await expect(other).to_have_attribute("data-status", "ringing")
    mark = len(sockets.opened)
    _drop_sockets(hub, "chloe")
    await pops.caller_left(gone, "chloe", "abandoned")
    _, hello = await sockets.reopened(mark)
    assert (hello["resumed"], hello["replayed"]) == (True, 1), hello
    await expect(other).to_have_count(0)
    await expect(page.get_by_test_id("toast").filter(has_text="L'appelant a raccroché")).to_be_visible()
    await expect(page.get_by_test_id("call-card")).to_have_count(1)  # the ended call stays for its outcome
    await expect(card).to_have_attribute("data-status", "ended")
