"""The voice prompts page in a real Chromium on the whole server, then a real call through the real Asterisk.

Sam (supervisor) uploads a new English ``welcome`` from the page: a tone made by sox, so its content differs
from the espeak-ng placeholder. The page shows version 2 active; then a call to the demo number 5551000 makes
Asterisk stream the welcome prompt (AMI reports every AGI command it ran), and the file at the path it played
holds the uploaded samples with the hash recorded for version 2. The sandbox's placeholder is put back
afterwards (atomically: other tests time their keys on its length).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from panoramisk.message import Message
from playwright.async_api import Browser, expect
from sqlalchemy import select

from cti.ami import AmiClient
from cti.app import CtiApp
from cti.prompts import PromptStore
from cti.supervision.voice_prompts.files import install, sha256_of, version_path
from cti.supervision.voice_prompts.models import PromptVersion
from tests.plugins.asterisk import EventLog, place_simulated_call
from tests.plugins.browser import screenshot, signed_in
from tests.support.prompt_audio import frames, tone

pytestmark = pytest.mark.real

DEMO_EN_NUMBER = "5551000"


@pytest.fixture
def placeholder_kept(prompt_store: PromptStore, tmp_path: Path) -> Iterator[Path]:
    """The sandbox's English welcome, restored whatever happens; the test's version files are removed."""
    target = prompt_store.path("en", "welcome")
    saved = tmp_path / "placeholder.wav"
    saved.write_bytes(target.read_bytes())
    yield target
    install(saved, target)
    for version in (1, 2):
        version_path(prompt_store, "en", "welcome", version).unlink(missing_ok=True)


async def streamed(events: EventLog, playable: str, timeout: float = 45) -> Message:
    """The AGIExecEnd of the first ``STREAM FILE <playable> ...`` Asterisk finished."""
    async with asyncio.timeout(timeout):
        while True:
            for event in events.matching("AGIExecEnd"):
                if event.get("Command", "").split()[2:3] == [playable]:
                    return event
            events.arrived.clear()
            await events.arrived.wait()


async def test_a_supervisor_replaces_the_greeting_and_the_next_call_plays_it(
    full_server: CtiApp, browser: Browser, ami: AmiClient, ami_events: EventLog, prompt_store: PromptStore,
    placeholder_kept: Path, tmp_path: Path,
) -> None:
    target = placeholder_kept
    recording = tone(tmp_path / "accueil.wav", 2.0, rate=8000, channels=1, frequency=660)
    assert frames(recording) != frames(target)

    page = await signed_in(browser, full_server, "sam", "/supervision/prompts")
    await expect(page.get_by_test_id("active-welcome-en")).to_have_text("v1")
    await page.fill("[data-testid=upload-name]", "welcome")
    await page.select_option("[data-testid=upload-language]", "en")
    await page.set_input_files("[data-testid=upload-file]", str(recording))
    await page.fill("[data-testid=upload-note]", "recorded greeting")
    await page.click("[data-testid=upload-submit]")

    await expect(page.get_by_test_id("active-welcome-en")).to_have_text("v2")
    newest = page.get_by_test_id("versions").get_by_test_id("version-2")
    await expect(newest.get_by_test_id("version-state")).to_have_text("active")
    await expect(newest).to_contain_text("accueil.wav")
    await expect(page.get_by_test_id("versions").get_by_test_id("version-1")).to_contain_text("original placeholder")
    await screenshot(page, "prompts-after-upload")

    async with full_server.db.session() as session:
        version = (await session.scalars(select(PromptVersion).where(
            PromptVersion.name == "welcome", PromptVersion.language == "en", PromptVersion.version == 2))).one()
    assert (version.created_by, version.note, version.source) == ("sam", "recorded greeting", "upload")
    assert sha256_of(target) == version.sha256
    assert frames(target) == frames(recording)  # the very samples uploaded, in Asterisk's format

    caller = f"+3363{uuid.uuid4().int % 10**7:07d}"
    await place_simulated_call(ami, DEMO_EN_NUMBER, caller, hold=8)
    played = await streamed(ami_events, prompt_store.playable("en", "welcome"))
    assert (played.get("ResultCode"), played.get("Result"), played.get("CallerIDNum")) == (
        "200", "Success", caller), dict(played)
    assert played.get("Channel", "").startswith(f"Local/{DEMO_EN_NUMBER}@"), dict(played)
    assert sha256_of(target) == version.sha256  # what Asterisk just played is the uploaded version
