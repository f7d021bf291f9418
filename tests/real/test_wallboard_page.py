"""The wallboard in a real Chromium while a real call waits in a queue of the real Asterisk.

The whole server runs (build_app: IVR, ACD, supervision; Asterisk's CTI_AGI_URL points at it). Nobody can answer:
chloe, the only agent of the demo with the skill, is logged in but paused (the IVR enqueues only when some
logged-in agent has the queue's skills, paused or not; nobody logged in would send the caller to voicemail).
The caller dials the demo number, chooses English then menu 1 (technical support) and waits: sam, supervisor,
sees one waiting call on the wallboard; the caller hangs up and it goes back to zero, the call now counted as
abandoned in today's figures, whose abandon rate is past the threshold (red).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid

import pytest
from playwright.async_api import Browser, expect

from cti.acd.calls import QueuedCall
from cti.ami import AmiClient
from cti.ami.errors import AmiError
from cti.app import CtiApp
from cti.prompts import PromptStore
from tests.plugins.asterisk import place_simulated_call
from tests.plugins.browser import screenshot, signed_in
from tickets.voicemail.recordings import wav_duration

pytestmark = pytest.mark.real

DEMO_NUMBER = "5551000"
ENGLISH, TECHNICAL = "1", "1"


async def _on_hold(call: QueuedCall) -> None:
    """The caller is counted from the moment it joins, but the queue script holds it (and would notice its
    hang-up) only once the "please hold" prompt is over: a hang-up during that prompt is missed by the ACD
    today (cti/scripts/queue.py), so the caller hangs up once on hold."""
    async with asyncio.timeout(30):
        while call.owner is None:  # noqa: ASYNC110 - set by the queue script's own task
            await asyncio.sleep(0.1)


async def test_a_waiting_caller_shows_on_the_wallboard_until_they_hang_up(
    full_server: CtiApp, browser: Browser, ami: AmiClient, prompt_store: PromptStore
) -> None:
    server = full_server
    assert server.acd is not None
    await server.acd.login("chloe")
    await server.acd.pause("chloe", "lunch")
    page = await signed_in(browser, server, "sam", "/supervision/wallboard")
    await expect(page.get_by_test_id("wall-connection")).to_have_attribute("data-state", "connected")
    waiting = page.get_by_test_id("waiting-support")
    await expect(waiting).to_have_text("0")
    await expect(page.get_by_test_id("agent-state-chloe")).to_have_text("Paused")
    await expect(page.get_by_test_id("agent-reason-chloe")).to_have_text("lunch")

    caller = f"+3363{uuid.uuid4().int % 10**7:07d}"
    welcome = wav_duration(prompt_store.path("en", "welcome"))
    digits = "w" * math.ceil((welcome + 1.5) / 0.5) + ENGLISH + "w" * 6 + TECHNICAL
    await place_simulated_call(ami, DEMO_NUMBER, caller, digits=digits, hold=60)
    try:
        await expect(waiting).to_have_text("1", timeout=40_000)
        await expect(page.get_by_test_id("total-waiting")).to_have_text("1")
        await screenshot(page, "wallboard-one-waiting")
        [call] = [call for call in server.acd.calls.values() if call.caller == caller]
        assert call.queue == "support"
        await _on_hold(call)
        await ami.send_action({"Action": "Hangup", "Channel": call.channel})
        await expect(waiting).to_have_text("0", timeout=15_000)
    finally:
        for call in list(server.acd.calls.values()):  # a failed test must not leave the caller on hold
            with contextlib.suppress(AmiError):
                await ami.send_action({"Action": "Hangup", "Channel": call.channel})

    await expect(page.get_by_test_id("abandoned-support")).to_have_text("1", timeout=15_000)
    abandon_rate = page.get_by_test_id("abandon_rate_pct-support")
    await expect(abandon_rate).to_have_text("100")
    await expect(abandon_rate).to_have_attribute("data-alert", "true")
    await expect(abandon_rate).to_have_class("num bad")
    await expect(page.get_by_test_id("service_level_pct-support")).to_have_attribute("data-alert", "true")
    await expect(page.get_by_test_id("longest_wait_s-support")).to_have_attribute("data-alert", "false")
    await screenshot(page, "wallboard-after-hang-up")
