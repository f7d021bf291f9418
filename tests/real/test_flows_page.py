"""The call flows page in a real Chromium on the whole server: a refused flow lists its reasons with their line,
a saved one is what the very next real call through the real Asterisk runs (no restart)."""

from __future__ import annotations

import uuid

import pytest
import yaml
from playwright.async_api import Browser, expect

from cti.ami import AmiClient
from cti.app import CtiApp
from tests.plugins.asterisk import place_simulated_call
from tests.plugins.browser import screenshot, signed_in
from tests.support.calls import finished_call

pytestmark = pytest.mark.real
DESK = "5551000"


async def test_a_flow_saved_on_the_page_is_what_the_next_real_call_runs(
    full_server: CtiApp, browser: Browser, ami: AmiClient,
) -> None:
    assert full_server.ivr is not None
    stored = (await full_server.ivr.stored(DESK)).flow
    assert stored is not None
    page = await signed_in(browser, full_server, "sam", f"/supervision/flows?number={DESK}")
    editor = page.get_by_test_id("flow-text")
    assert yaml.safe_load(await editor.input_value()) == stored

    broken = {**stored, "nodes": {**stored["nodes"], "welcome": {"type": "play", "prompts": ["welcome"],
                                                                 "next": "mesage"}}}
    text = yaml.safe_dump(broken, sort_keys=False)
    await editor.fill(text)
    await page.get_by_test_id("flow-validate").click()
    error = page.get_by_test_id("flow-error")
    await expect(error.first).to_contain_text("goes to 'mesage', which does not exist")
    welcome_line = text.split("\n").index("  welcome:") + 1
    await expect(error.first.get_by_test_id("flow-error-line")).to_have_text(f"line {welcome_line}")
    await screenshot(page, "flows-refused")
    assert (await full_server.ivr.stored(DESK)).flow_version == 1

    shorter = {**stored, "nodes": {**stored["nodes"], "welcome": {"type": "play", "prompts": ["welcome"],
                                                                  "next": "message"}}}
    for unused in ("language", "main", "technical", "billing", "busy", "overflow-message"):
        del shorter["nodes"][unused]  # the start could not reach them any more
    await editor.fill(yaml.safe_dump(shorter, sort_keys=False))
    await page.get_by_test_id("flow-validate").click()
    await expect(page.get_by_test_id("flow-result")).to_have_text(f"Valid flow ({len(shorter['nodes'])} nodes).")
    await page.get_by_test_id("flow-save").click()
    await expect(page.get_by_test_id("saved-notice")).to_have_text("Saved (version 2): the next call uses it.")
    await expect(page.get_by_test_id("flow-version")).to_have_attribute("data-version", "2")

    caller = f"+3361{uuid.uuid4().int % 10**7:07d}"
    await place_simulated_call(ami, DESK, caller, hold=10)
    row = await finished_call(full_server.db, caller)
    assert row.path == "screen:default > hours:open > welcome > message"
