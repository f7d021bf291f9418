"""The simulators page in a real Chromium on the whole server: a real test call into the real Asterisk placed
from the page, its menus driven from the page's keypad, and hung up from the page.

A key is pressed once Asterisk has started playing the menu that reads it (AGIExecStart of that prompt on the
call), as a caller who listens would; what the IVR made of the keys is the call's recorded path.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Browser, expect

from cti.ami import AmiClient
from cti.app import CtiApp
from tests.plugins.asterisk import EventLog
from tests.plugins.browser import screenshot, signed_in
from tests.support.calls import finished_call

pytestmark = pytest.mark.real
DESK = "5551000"
CALLER = "0612345678"


async def _menu_playing(events: EventLog, prompt: str, timeout: float = 30) -> str:
    """The uniqueid of the channel on which Asterisk started streaming ``prompt`` to our caller (other runs may
    share this Asterisk and play the same menus to theirs)."""
    async with asyncio.timeout(timeout):
        while True:
            started = [event for event in events.matching("AGIExecStart", CallerIDNum=CALLER)
                       if f"/{prompt} " in event.get("Command", "") + " " and event.get("Command", "").startswith(
                           "STREAM FILE")]
            if started:
                return str(started[0].get("Uniqueid", ""))
            events.arrived.clear()
            await events.arrived.wait()


async def test_a_test_call_placed_and_driven_from_the_page_reaches_the_menus_and_is_hung_up(
    full_server: CtiApp, browser: Browser, ami: AmiClient, ami_events: EventLog,
) -> None:
    page = await signed_in(browser, full_server, "sam", "/supervision/simulator")
    await expect(page.get_by_test_id("call-sim-none")).to_be_visible()
    await page.get_by_test_id("call-sim-number").fill(DESK)
    await page.get_by_test_id("call-sim-caller").fill(CALLER)
    await page.get_by_test_id("call-sim-place").click()
    card = page.get_by_test_id("sim-call")
    await expect(card).to_have_attribute("data-state", "up", timeout=25_000)
    await expect(card.get_by_test_id("sim-call-title")).to_have_text(f"{CALLER} → {DESK}")
    await expect(card.get_by_test_id("sim-call-channel")).to_contain_text(f"Local/{DESK}@")

    channel = await _menu_playing(ami_events, "choose-language")
    await card.get_by_test_id("key-1").click()
    await expect(card.get_by_test_id("sim-call-digits")).to_have_text("Keys sent: 1")
    assert await _menu_playing(ami_events, "main-menu") == channel
    await card.get_by_test_id("key-9").click()
    await expect(card.get_by_test_id("sim-call-digits")).to_have_text("Keys sent: 19")
    row = await finished_call(full_server.db, CALLER)  # the IVR handed the call to voicemail
    assert row.uniqueid == channel
    assert row.path == "screen:default > hours:open > welcome > language:en > main:9 > message"
    assert (row.called_number, row.outcome) == (DESK, "to_voicemail")
    await screenshot(page, "call-simulator-keys")

    await card.get_by_test_id("sim-call-hangup").click()
    await expect(card).to_have_attribute("data-state", "ended")
    await expect(card.get_by_test_id("sim-call-state")).to_have_text("Ended (hung up from the page)")
    await expect(card.get_by_test_id("key-5")).to_be_disabled()
    await ami_events.wait_for("Hangup", Uniqueid=channel)  # the IVR's side of the call is gone too


async def test_the_ivr_simulator_shows_what_a_caller_hears_at_the_chosen_instant(
    full_server: CtiApp, browser: Browser,
) -> None:
    page = await signed_in(browser, full_server, "sam", "/supervision/simulator")
    form = page.get_by_test_id("ivr-sim-form")
    await expect(form.get_by_test_id("ivr-sim-at")).to_have_value("2026-11-23T10:00")  # the server's now, Paris
    await form.get_by_test_id("ivr-sim-keys").fill("1,9")
    await form.get_by_test_id("ivr-sim-run").click()
    await expect(form.get_by_test_id("ivr-sim-path")).to_have_text(
        "screen:default > hours:open > welcome > language:en > main:9 > message")
    await expect(form.get_by_test_id("ivr-sim-outcome")).to_have_text("voicemail (request)")
    steps = form.get_by_test_id("ivr-sim-step")
    await expect(steps.first).to_contain_text("plays welcome (en)")
    await expect(steps.first).to_contain_text("Welcome")  # the prompt's text
    await expect(steps.nth(1)).to_have_text(re.compile(r"^plays choose-language and reads a key: 1"))
    await screenshot(page, "ivr-simulator-open")

    await form.get_by_test_id("ivr-sim-at").fill("2026-11-23T20:00")
    await form.get_by_test_id("ivr-sim-keys").fill("")
    await form.get_by_test_id("ivr-sim-run").click()
    await expect(form.get_by_test_id("ivr-sim-path")).to_have_text(
        "screen:default > hours:closed > closed > closed-message")
    await expect(steps.nth(2)).to_have_text("says the date and time 2026-11-24 08:30")  # Tuesday morning
