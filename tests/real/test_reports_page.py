"""The reports page in a real Chromium: a day's calls grouped by queue, totals, the CSV export and the
staffing suggestion, from rows in the calls table."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from playwright.async_api import Browser, expect

from cti.app import CtiApp
from cti.db.base import utcnow
from cti.db.models import CallRecord
from tests.plugins.browser import screenshot, signed_in


async def _calls(app: CtiApp) -> None:
    """Today (an hour ago): two answered calls and one abandoned in support, one voicemail in billing."""
    at = utcnow() - timedelta(hours=1)
    rows = [("answered", "support", 12.0, 180.0), ("answered", "support", 40.0, 300.0),
            ("abandoned", "support", 65.0, None), ("voicemail", "billing", 30.0, None)]
    async with app.db.session() as session:
        for number, (outcome, queue, wait, talk) in enumerate(rows):
            session.add(CallRecord(
                uniqueid=f"report.{number}", channel=f"PJSIP/trunk-{number}", caller_number=f"+3361000000{number}",
                called_number="5551000", started_at=at, ended_at=at + timedelta(minutes=5), outcome=outcome,
                queue=queue, wait_s=wait, talk_s=talk, answered_at=at if talk else None, enqueued_at=at))


async def test_a_supervisor_sees_todays_calls_by_queue_and_exports_them(full_server: CtiApp, browser: Browser) -> None:
    await _calls(full_server)
    page = await signed_in(browser, full_server, "sam", "/supervision/reports")
    await page.get_by_test_id("report-group").select_option("queue")
    await page.get_by_test_id("report-show").click()
    rows = page.get_by_test_id("report-row")
    await expect(rows).to_have_count(2)
    support = rows.filter(has_text="support")
    await expect(support.locator("[data-column=offered]")).to_have_text("3")
    await expect(support.locator("[data-column=answered]")).to_have_text("2")
    await expect(support.locator("[data-column=abandoned]")).to_have_text("1")
    total = page.get_by_test_id("report-total")
    await expect(total.locator("[data-column=offered]")).to_have_text("4")
    await expect(page.get_by_test_id("staffing-row").first).to_be_visible()
    await screenshot(page, "reports")

    async with page.expect_download() as downloading:
        await page.get_by_test_id("report-csv").click()
    download = await downloading.value
    text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
    lines = text.strip().splitlines()
    assert lines[0].startswith("queue,offered,answered,abandoned"), lines
    assert any(line.startswith("support,3,2,1") for line in lines), lines
