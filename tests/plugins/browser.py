"""Page tests: a real Chromium (Playwright driving Debian's /usr/bin/chromium) and the whole server on the real
Asterisk (demo services, agents, queues and logins), with Asterisk's CTI_AGI_URL pointing at it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from cti.ami import AmiClient
from cti.app import CtiApp, build_app
from cti.db.migrate import upgrade_async
from cti.demo import seed_acd_demo, seed_demo
from cti.settings import Settings
from cti.users.store import UserStore
from tests.plugins.asterisk import set_agi_url
from tests.support.ivr import MONDAY_10, fixed_clock

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "page-test-" + uuid.uuid4().hex[:12]
LOGINS = (("chloe", "agent", "chloe", "fr"), ("alice", "agent", "alice", "en"),
          ("sam", "supervisor", None, "en"), ("root", "admin", None, "en"))


@pytest.fixture
async def full_server(tmp_path: Path, real_settings: Settings, ami: AmiClient) -> AsyncIterator[CtiApp]:
    """The server as `cti serve` runs it (SQLite file, in-process state, the sandbox's media folder), its
    clock fixed on a Monday at 10:00 Paris (the demo desk is open), with the logins of ``LOGINS``."""
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
    users = UserStore(app.db)
    for username, role, agent_id, language in LOGINS:
        await users.create(username, PASSWORD, role, agent_id=agent_id, language=language)
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


async def signed_in(browser: Browser, app: CtiApp, username: str, path: str) -> Page:
    """A new page signed in as ``username`` (through the login form), on ``path``."""
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{app.http_port}{path}")
    await page.wait_for_url("**/login**")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**{path}")
    return page


async def screenshot(page: Page, name: str) -> None:
    """With CTI_TEST_SCREENSHOTS=<folder>, keep a picture of the page at this step (to look at it)."""
    folder = os.environ.get("CTI_TEST_SCREENSHOTS")
    if folder:
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


__all__ = ["PASSWORD", "browser", "expect", "full_server", "screenshot", "signed_in"]
