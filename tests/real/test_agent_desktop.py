"""The agent desktop in a real Chromium, a real call through the real Asterisk: the pop appears on the page.

The whole server runs (build_app: IVR, ACD, desktop, login), Asterisk's CTI_AGI_URL points at it, and the demo
desk answers: French, menu 1 -> queue support -> chloe, logged in from the page with a phone that rings three
seconds before answering (``slowchloe`` in the sandbox's [cti-agent-sim]). The caller is a known contact.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from sqlalchemy import select

from cti.ami import AmiClient
from cti.app import CtiApp, build_app
from cti.contacts.models import Company, Contact, ContactNumber
from cti.db.migrate import upgrade_async
from cti.db.models import CallRecord
from cti.demo import seed_acd_demo, seed_demo
from cti.prompts import PromptStore
from cti.settings import Settings
from cti.users.store import UserStore
from tests.plugins.asterisk import place_simulated_call, set_agi_url
from tests.support.ivr import MONDAY_10, fixed_clock
from tickets.models import Ticket
from tickets.voicemail.recordings import wav_duration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "chloe-" + uuid.uuid4().hex[:12]
DEMO_FR_NUMBER = "5551000"


@pytest.fixture
async def server(tmp_path: Path, real_settings: Settings, ami: AmiClient) -> AsyncIterator[CtiApp]:
    settings = real_settings.model_copy(update={
        "http": real_settings.http.model_copy(update={"host": "127.0.0.1", "port": 0}),
        "agi": real_settings.agi.model_copy(update={"port": 0}),
        "database": real_settings.database.model_copy(update={"url": f"sqlite+aiosqlite:///{tmp_path}/cti.sqlite3"}),
        "state": real_settings.state.model_copy(update={"backend": "memory"}),
    })
    await upgrade_async(settings.database)
    app = build_app(settings, clock=fixed_clock(MONDAY_10))
    assert app.ivr is not None and app.acd is not None
    await seed_demo(app.ivr)
    await seed_acd_demo(app.acd.store)
    await UserStore(app.db).create("chloe", PASSWORD, "agent", agent_id="chloe", language="fr")
    await app.start()
    await set_agi_url(ami, f"agi://127.0.0.1:{app.agi.port}")
    yield app
    await set_agi_url(ami, f"agi://{real_settings.agi.advertised_host}:{real_settings.agi.port}")
    await app.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def _shot(page: Page, name: str) -> None:
    """With CTI_TEST_SCREENSHOTS=<folder>, keep a picture of the page at this step (to look at the desktop)."""
    folder = os.environ.get("CTI_TEST_SCREENSHOTS")
    if folder:
        await page.screenshot(path=str(Path(folder) / f"agent-desktop-{name}.png"), full_page=True)


async def _known_caller(app: CtiApp, number: str) -> None:
    async with app.db.session() as session:
        company = Company(name="Dupont SA", contract_level="gold")
        session.add(company)
        await session.flush()
        contact = Contact(name="Claire Martin", company_id=company.id, language="fr")
        session.add(contact)
        await session.flush()
        session.add(ContactNumber(contact_id=contact.id, number=number))


async def _signed_in(browser: Browser, app: CtiApp) -> Page:
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{app.http_port}/agent")
    await page.wait_for_url("**/login**")  # not signed in yet: the page sends us to the login form
    await page.fill("#username", "chloe")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/agent")
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    return page


async def test_a_real_call_pops_on_the_agents_page_before_she_answers(
    server: CtiApp, browser: Browser, ami: AmiClient, prompt_store: PromptStore
) -> None:
    caller = f"+3361{uuid.uuid4().int % 10**7:07d}"
    await _known_caller(server, caller)
    page = await _signed_in(browser, server)
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
    await _shot(page, "ringing")

    await expect(card).to_have_attribute("data-status", "answered", timeout=15_000)
    await expect(page.get_by_test_id("agent-state")).to_have_text("En communication")
    await card.get_by_test_id("ticket-form").locator("[name=subject]").fill("Imprimante en panne")
    await card.get_by_test_id("ticket-form").locator("button").click()
    await expect(page.get_by_test_id("toast").filter(has_text="Ticket")).to_be_visible()
    await expect(card.get_by_test_id("card-call-tickets")).to_have_text(re.compile(r"^#\d+$"))
    await expect(page.get_by_test_id("login-form")).to_be_hidden()  # on a call: no login form

    await expect(card).to_have_attribute("data-status", "ended", timeout=30_000)  # the caller hung up
    await _shot(page, "ended")
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
