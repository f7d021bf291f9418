"""The agent desktop in a real Chromium, a real call through the real Asterisk: the pop appears on the page.

The whole server runs (build_app: IVR, ACD, desktop, login), Asterisk's CTI_AGI_URL points at it, and the demo
desk answers: French, menu 1 -> queue support -> chloe, logged in from the page with a phone that rings three
seconds before answering (``slowchloe`` in the sandbox's [cti-agent-sim]). The caller is a known contact.
"""

from __future__ import annotations

import math
import re
import uuid

from playwright.async_api import Browser, expect
from sqlalchemy import select

from cti.ami import AmiClient
from cti.app import CtiApp
from cti.contacts.models import Company, Contact, ContactNumber
from cti.db.models import CallRecord
from cti.prompts import PromptStore
from tests.plugins.asterisk import place_simulated_call
from tests.plugins.browser import screenshot, signed_in
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
