"""Prompt versions on SQLite and PostgreSQL with the real converters: the placeholder recorded as version 1,
new versions, rollback, scheduled activation (injected clock; applied on read and by the background task),
failures that leave the played file untouched, and custom prompts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cti.db import Database
from cti.prompts import PromptError
from cti.supervision.voice_prompts.errors import (
    ScheduleRefused,
    TextRefused,
    UnsupportedAudio,
    VersionFileDamaged,
    VersionNotFound,
)
from cti.supervision.voice_prompts.files import install, sha256_of, version_path
from cti.supervision.voice_prompts.library import Activation, Origin, PromptLibrary
from cti.supervision.voice_prompts.models import ActivePrompt, PromptVersion
from cti.supervision.voice_prompts.schedule import start_schedule, stop_schedule
from tests.support.desktop import wait_until
from tests.support.prompt_audio import Clock, frames, prompt_library, tone

SAM = Origin("upload", "sam", "new greeting", "accueil.wav")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def library(database: Database, tmp_path: Path, clock: Clock) -> PromptLibrary:
    return prompt_library(database, tmp_path / "prompts", clock)


def played(library: PromptLibrary, language: str = "en", name: str = "welcome") -> bytes:
    return library.store.path(language, name).read_bytes()


async def upload(library: PromptLibrary, tmp_path: Path, frequency: int = 440,
                 activation: Activation | None = None) -> dict[str, object]:
    source = tone(tmp_path / f"tone-{frequency}.wav", 1.0, frequency=frequency)
    return await library.add_upload("en", "welcome", source, SAM, activation or Activation())


async def active_version(library: PromptLibrary, language: str = "en", name: str = "welcome") -> int | None:
    return (await library.versions(language, name))["active"]  # type: ignore[no-any-return]


# --- versions and rollback ----------------------------------------------------------------------------------


async def test_a_prompt_never_changed_shows_its_file_as_version_1(library: PromptLibrary) -> None:
    versions = await library.versions("en", "welcome")
    assert versions["active"] == 1
    [only] = versions["versions"]
    assert (only["version"], only["source"], only["sha256"]) == (1, "placeholder", sha256_of(
        library.store.path("en", "welcome")))
    assert (await library.versions("fr", "welcome"))["versions"] == []  # no French file yet


async def test_the_first_upload_keeps_the_placeholder_as_version_1_and_plays_version_2(
    library: PromptLibrary, tmp_path: Path
) -> None:
    placeholder = played(library)
    added = await upload(library, tmp_path)
    assert (added["version"], added["active"], added["source"], added["created_by"]) == (2, True, "upload", "sam")
    assert (added["original_filename"], added["note"]) == ("accueil.wav", "new greeting")
    assert added["sha256"] == sha256_of(library.store.path("en", "welcome"))
    assert frames(library.store.path("en", "welcome")) == frames(version_path(library.store, "en", "welcome", 2))
    assert version_path(library.store, "en", "welcome", 1).read_bytes() == placeholder
    versions = await library.versions("en", "welcome")
    assert [(v["version"], v["source"], v["active"]) for v in versions["versions"]] == [
        (2, "upload", True), (1, "placeholder", False)]


async def test_rollback_plays_the_older_version_again_then_forward(library: PromptLibrary, tmp_path: Path) -> None:
    placeholder = played(library)
    await upload(library, tmp_path)
    uploaded = played(library)
    rolled = await library.activate("en", "welcome", 1, "sam")
    assert (rolled["version"], rolled["active"]) == (1, True)
    assert played(library) == placeholder
    await library.activate("en", "welcome", 2, "root")
    assert played(library) == uploaded
    async with library.db.session() as session:
        state = await session.get(ActivePrompt, ("welcome", "en"))
    assert state is not None and (state.version, state.activated_by) == (2, "root")


async def test_a_version_kept_for_later_does_not_play(library: PromptLibrary, tmp_path: Path) -> None:
    placeholder = played(library)
    added = await upload(library, tmp_path, activation=Activation("no"))
    assert (added["version"], added["active"]) == (2, False)
    assert played(library) == placeholder
    assert await active_version(library) == 1


async def test_versions_are_numbered_per_prompt_and_language(library: PromptLibrary, tmp_path: Path) -> None:
    await upload(library, tmp_path, 440)
    await upload(library, tmp_path, 550)
    french = await library.add_speech("fr", "welcome", "", Origin("tts", "sam"), Activation())
    assert french["version"] == 1  # no French file was in place: nothing to keep
    assert [v["version"] for v in (await library.versions("en", "welcome"))["versions"]] == [3, 2, 1]


async def test_an_unknown_version_is_not_found(library: PromptLibrary) -> None:
    with pytest.raises(VersionNotFound, match="no version 7"):
        await library.activate("en", "welcome", 7, "sam")


@pytest.mark.parametrize(("language", "name"), [("en", "../welcome"), ("de", "welcome"), ("en", "Welcome")])
async def test_bad_names_and_languages_are_refused_before_any_work(
    library: PromptLibrary, tmp_path: Path, language: str, name: str
) -> None:
    with pytest.raises(PromptError):
        await library.add_upload(language, name, tone(tmp_path / "t.wav"), SAM, Activation())
    async with library.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(PromptVersion)) == 0


# --- failures leave the played file untouched ---------------------------------------------------------------


async def test_a_refused_upload_leaves_the_played_file_and_the_versions_alone(
    library: PromptLibrary, tmp_path: Path
) -> None:
    before = played(library)
    fake = tmp_path / "welcome.wav"
    fake.write_text("not audio at all\n" * 100)
    with pytest.raises(UnsupportedAudio):
        await library.add_upload("en", "welcome", fake, SAM, Activation())
    assert played(library) == before
    async with library.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(PromptVersion)) == 0


async def test_a_failed_copy_over_the_played_file_rolls_the_version_back(
    library: PromptLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = played(library)
    real_install = install

    def failing_install(source: Path, target: Path) -> None:
        if target == library.store.path("en", "welcome"):
            raise OSError(28, "No space left on device")
        real_install(source, target)

    monkeypatch.setattr("cti.supervision.voice_prompts.library.install", failing_install)
    with pytest.raises(OSError, match="No space left"):
        await upload(library, tmp_path)
    assert played(library) == before
    async with library.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(PromptVersion)) == 0
        assert await session.get(ActivePrompt, ("welcome", "en")) is None


async def test_a_version_whose_file_changed_on_disk_is_never_played(library: PromptLibrary, tmp_path: Path) -> None:
    await upload(library, tmp_path)
    current = played(library)
    version_path(library.store, "en", "welcome", 1).write_bytes(b"tampered")
    with pytest.raises(VersionFileDamaged, match="version 1"):
        await library.activate("en", "welcome", 1, "sam")
    assert played(library) == current
    assert await active_version(library) == 2


# --- scheduled activation -----------------------------------------------------------------------------------


async def test_a_scheduled_version_plays_from_its_instant_on_the_next_read(
    library: PromptLibrary, tmp_path: Path, clock: Clock
) -> None:
    placeholder = played(library)
    at = clock.now + timedelta(hours=1)
    added = await upload(library, tmp_path, activation=Activation("at", at))
    assert (added["active"], added["activate_at"], added["scheduled_by"]) == (False, at.isoformat(), "sam")
    clock.advance(minutes=59)
    assert await active_version(library) == 1 and played(library) == placeholder
    clock.advance(minutes=1)
    versions = await library.versions("en", "welcome")  # a read applies what is due: no task involved
    assert versions["active"] == 2
    assert played(library) == version_path(library.store, "en", "welcome", 2).read_bytes()
    assert versions["versions"][0]["activate_at"] is None
    async with library.db.session() as session:
        state = await session.get(ActivePrompt, ("welcome", "en"))
    assert state is not None and state.activated_by == "sam (scheduled)"


async def test_of_two_due_schedules_the_later_instant_wins(
    library: PromptLibrary, tmp_path: Path, clock: Clock
) -> None:
    await upload(library, tmp_path, 440, Activation("no"))
    await upload(library, tmp_path, 550, Activation("no"))
    await library.schedule("en", "welcome", 3, clock.now + timedelta(minutes=10), "sam")
    await library.schedule("en", "welcome", 2, clock.now + timedelta(minutes=20), "sam")
    clock.advance(hours=1)
    assert await library.apply_due() == 1
    assert await active_version(library) == 2
    assert played(library) == version_path(library.store, "en", "welcome", 2).read_bytes()
    assert await library.apply_due() == 0  # applied once


async def test_a_cancelled_schedule_never_applies(library: PromptLibrary, tmp_path: Path, clock: Clock) -> None:
    await upload(library, tmp_path, activation=Activation("at", clock.now + timedelta(minutes=5)))
    cancelled = await library.cancel_schedule("en", "welcome", 2)
    assert cancelled["activate_at"] is None
    clock.advance(hours=1)
    assert await active_version(library) == 1


async def test_a_rollback_scheduled_for_tonight(library: PromptLibrary, tmp_path: Path, clock: Clock) -> None:
    placeholder = played(library)
    await upload(library, tmp_path)
    await library.schedule("en", "welcome", 1, clock.now + timedelta(hours=12), "sam")
    clock.advance(hours=12)
    assert await library.apply_due() == 1
    assert played(library) == placeholder


@pytest.mark.parametrize(("offset", "reason"), [
    (timedelta(0), "not in the future"), (timedelta(minutes=-5), "not in the future"),
    (timedelta(days=400), "more than a year"),
])
async def test_schedules_in_the_past_or_too_far_are_refused(
    library: PromptLibrary, tmp_path: Path, clock: Clock, offset: timedelta, reason: str
) -> None:
    with pytest.raises(ScheduleRefused, match=reason):
        await upload(library, tmp_path, activation=Activation("at", clock.now + offset))
    await upload(library, tmp_path, activation=Activation("no"))
    with pytest.raises(ScheduleRefused, match=reason):
        await library.schedule("en", "welcome", 2, clock.now + offset, "sam")


async def test_an_instant_without_offset_is_refused(library: PromptLibrary, tmp_path: Path, clock: Clock) -> None:
    naive = (clock.now + timedelta(hours=1)).replace(tzinfo=None)
    with pytest.raises(ScheduleRefused, match="UTC offset"):
        await upload(library, tmp_path, activation=Activation("at", naive))


async def test_the_background_task_applies_a_schedule_without_any_read(
    library: PromptLibrary, tmp_path: Path, clock: Clock
) -> None:
    await upload(library, tmp_path, activation=Activation("at", clock.now + timedelta(minutes=1)))
    target = version_path(library.store, "en", "welcome", 2).read_bytes()
    clock.advance(minutes=2)
    task = start_schedule(library, poll_s=0.01)
    try:
        await wait_until(lambda: played(library) == target, "the scheduled version to be played")
    finally:
        await stop_schedule(task)
    async with library.db.session() as session:
        state = await session.get(ActivePrompt, ("welcome", "en"))
    assert state is not None and state.version == 2
    assert task.cancelled()


# --- speech and custom prompts ------------------------------------------------------------------------------


async def test_speech_uses_the_catalogue_text_when_none_is_given(library: PromptLibrary) -> None:
    added = await library.add_speech("fr", "welcome", "", Origin("tts", "sam"), Activation())
    assert (added["source"], added["active"]) == ("tts", True)
    assert library.store.exists("fr", "welcome")


async def test_a_custom_prompt_needs_its_text(library: PromptLibrary) -> None:
    with pytest.raises(TextRefused, match="not in the catalogue"):
        await library.add_speech("en", "promo-noel", " ", Origin("tts", "sam"), Activation())
    added = await library.add_speech("en", "promo-noel", "Merry Christmas", Origin("tts", "sam"), Activation())
    assert (added["version"], added["active"]) == (1, True)
    assert library.store.exists("en", "promo-noel")
