"""The opening hours page in a real Chromium on the whole server (the clock on Monday 23 November 2026 at 10:00
in Paris, the demo desk open), then a real call through the real Asterisk.

What the caller hears is read from Asterisk itself: every AGI command it finished on the channel is reported by
AMI (AGIExecEnd), so "heard the closure message" means Asterisk streamed that prompt on the call.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from playwright.async_api import Browser, expect

from cti.ami import AmiClient
from cti.app import CtiApp
from cti.db.models import CallRecord
from tests.plugins.asterisk import EventLog, place_simulated_call
from tests.plugins.browser import screenshot, signed_in
from tests.support.calls import finished_call
from tests.support.ivr import MONDAY_10

pytestmark = pytest.mark.real
DESK = "5551000"


def _streamed(events: EventLog, row: CallRecord) -> list[str]:
    """The prompts Asterisk streamed on the call's channel, in order."""
    commands = [event.get("Command", "") for event in events.matching("AGIExecEnd", Uniqueid=row.uniqueid)]
    return [command.split()[2].rsplit("/", 1)[-1] for command in commands if command.startswith("STREAM FILE")]


async def test_closing_the_desk_from_the_page_is_what_the_next_real_caller_hears(
    full_server: CtiApp, browser: Browser, ami: AmiClient, ami_events: EventLog,
) -> None:
    assert full_server.ivr is not None
    page = await signed_in(browser, full_server, "sam", "/supervision/hours")
    await expect(page.get_by_test_id("hours-status")).to_have_text("Open")
    await page.get_by_test_id("override-closed").check()
    await expect(page.get_by_test_id("override-until")).to_have_value("2026-11-23T11:00")  # in an hour, Paris
    await page.get_by_test_id("override-reason").fill("Team meeting")
    await page.get_by_test_id("override-save").click()
    await expect(page.get_by_test_id("hours-status")).to_have_text("Closed (manual override)")
    await expect(page.get_by_test_id("hours-reason")).to_have_text("Team meeting")
    await expect(page.get_by_test_id("next-change")).to_have_text("Changes at 2026-11-23 11:00")
    await screenshot(page, "hours-override-closed")
    status = await full_server.ivr.hours_status(DESK)
    assert status["override"]["state"] == "closed"
    assert datetime.fromisoformat(status["override"]["until"]) == MONDAY_10 + timedelta(hours=1)

    caller = f"+3361{uuid.uuid4().int % 10**7:07d}"
    await place_simulated_call(ami, DESK, caller, hold=15)
    row = await finished_call(full_server.db, caller)
    assert row.path == "screen:default > hours:override_closed > exceptional > closed-message"
    assert _streamed(ami_events, row) == ["exceptional-closure", "next-opening"]
    [said] = [event.get("Command", "") for event in ami_events.matching("AGIExecEnd", Uniqueid=row.uniqueid)
              if event.get("Command", "").startswith("SAY DATETIME")]
    assert said.split()[2] == str(int((MONDAY_10 + timedelta(hours=1)).timestamp()))  # "we open again at 11:00"


async def test_refused_hours_show_their_reason_next_to_the_field_and_change_nothing(
    full_server: CtiApp, browser: Browser,
) -> None:
    assert full_server.ivr is not None
    before = (await full_server.ivr.stored(DESK)).hours
    page = await signed_in(browser, full_server, "sam", "/supervision/hours")
    monday = page.get_by_test_id("day-monday")
    await monday.get_by_test_id("add-range-monday").click()
    await monday.get_by_test_id("range").last.fill("12:00-13:00")
    await page.get_by_test_id("add-dated").click()
    await page.get_by_test_id("dated-row").last.get_by_test_id("dated-from").fill("2026-12-31")
    await page.get_by_test_id("hours-save").click()
    overlap = monday.get_by_test_id("field-error")
    await expect(overlap).to_have_count(1)
    await expect(overlap).to_contain_text('weekly.monday[2]: "12:00-13:00" overlaps weekly.monday[0]')
    missing_label = page.get_by_test_id("dated-row").last.get_by_test_id("field-error")
    await expect(missing_label).to_have_text("dated[1].label: missing")
    await expect(page.get_by_test_id("hours-status")).to_have_text("Open")
    await screenshot(page, "hours-refused")
    assert (await full_server.ivr.stored(DESK)).hours == before

    await page.get_by_test_id("override-closed").check()
    await page.get_by_test_id("override-until").fill("2026-11-23T09:00")  # an hour ago
    await page.get_by_test_id("override-save").click()
    await expect(page.get_by_test_id("override-form").get_by_test_id("field-error")).to_contain_text(
        "override.until: 2026-11-23T08:00:00+00:00 is not after now")
    assert (await full_server.ivr.hours_status(DESK))["override"] is None
