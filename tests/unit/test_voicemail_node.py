"""The voicemail node and the ``voicemail`` AGI script against a scripted Asterisk that writes the WAV files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cti.agi import AgiSession, FastAgiServer, ScriptRegistry
from cti.db import Database
from cti.db.models import CallRecord
from cti.prompts import PromptStore
from cti.settings import AgiSettings, VoicemailSettings
from tests.fakes.agi_peer import AgiPeer, asterisk_env
from tests.fakes.voicemail_asterisk import FakeAsterisk
from tickets.models import Recording, TranscriptionJob
from tickets.voicemail.node import VoicemailOutcome, leave_voicemail
from tickets.voicemail.recordings import RecordingInfo, recover_orphans, register_recording
from tickets.voicemail.script import VoicemailCall

SETTINGS = VoicemailSettings(max_length_s=180, silence_s=5, beep=True, allow_rerecord=True)


class Harness:
    def __init__(self, media: Path) -> None:
        self.media = media
        self.prompts = PromptStore(media / "prompts")
        self.registry = ScriptRegistry()
        self.server = FastAgiServer(self.registry, AgiSettings(port=0, command_timeout=5.0))
        self.outcomes: list[VoicemailOutcome] = []

    async def leave(self, asterisk: FakeAsterisk, settings: VoicemailSettings = SETTINGS,
                    register: Any = None) -> AgiPeer:
        @self.registry.register("vm")
        async def flow(session: AgiSession) -> None:
            self.outcomes.append(await leave_voicemail(
                session, prompts=self.prompts, language="en", settings=settings, media_dir=self.media,
                register=register or asterisk.register, reason="closed"))

        peer = await AgiPeer(self.server.port, asterisk, env=asterisk_env("vm")).run()
        assert peer.errors == []
        return peer

    @property
    def outcome(self) -> VoicemailOutcome:
        [outcome] = self.outcomes
        return outcome


@asynccontextmanager
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path / "media")
    await h.server.start()
    try:
        yield h
    finally:
        await h.server.stop(grace=1.0)


def _files(media: Path) -> list[str]:
    return sorted(p.name for p in (media / "recordings").rglob("*") if p.is_file())


async def test_hash_then_keep_registers_before_saying_saved(tmp_path: Path) -> None:
    asterisk = FakeAsterisk([(3.0, "dtmf")], review=["1"])
    async with harness(tmp_path) as h:
        peer = await h.leave(asterisk)
    assert asterisk.events == ["play:vm-intro", "record", "play:vm-review", "register", "play:vm-saved"]
    record = next(w for w in peer.words if w[:2] == ["RECORD", "FILE"])
    assert record[3:] == ["wav", "#", "180000", "BEEP", "s=5"]
    assert h.outcome.status == "saved" and h.outcome.recording_id == 42
    assert h.outcome.call_outcome == "voicemail"
    info = asterisk.registered
    assert info.path.startswith("recordings/") and info.path.endswith(".wav")
    assert (info.uniqueid, info.caller_number, info.reason) == ("1732350000.1", "0612345678", "closed")
    assert info.duration_s == pytest.approx(3.0)
    assert _files(h.media) == [Path(info.path).name]  # the sidecar is gone once registered
    day = (h.media / info.path).parent
    assert [oct(p.stat().st_mode & 0o7777) for p in (day, day.parent, day.parent.parent)] == ["0o2775"] * 3


async def test_hang_up_while_recording_keeps_the_message(tmp_path: Path) -> None:
    asterisk = FakeAsterisk([(4.0, "hangup")])
    async with harness(tmp_path) as h:
        await h.leave(asterisk)
    assert asterisk.events == ["play:vm-intro", "record", "register"]  # no review, nobody left to hear "saved"
    assert h.outcome.status == "saved" and h.outcome.duration_s == pytest.approx(4.0)
    assert (h.media / asterisk.registered.path).is_file()


async def test_rerecord_replaces_the_first_take(tmp_path: Path) -> None:
    asterisk = FakeAsterisk([(3.0, "dtmf"), (5.0, "silence")], review=["2", "1"])
    async with harness(tmp_path) as h:
        await h.leave(asterisk)
    first, second = asterisk.recorded
    assert not first.exists() and second.exists()
    assert asterisk.registered.path.endswith(second.name)
    assert h.outcome.takes == 2 and h.outcome.duration_s == pytest.approx(5.0)


async def test_at_most_two_rerecords(tmp_path: Path) -> None:
    asterisk = FakeAsterisk([(2.0, "dtmf")] * 3, review=["2", "2"])
    async with harness(tmp_path) as h:
        await h.leave(asterisk)
    assert asterisk.events.count("record") == 3
    assert asterisk.events.count("play:vm-review") == 2  # the third take is kept without asking
    assert asterisk.registered.path.endswith(asterisk.recorded[2].name)
    assert _files(h.media) == [asterisk.recorded[2].name]


async def test_pressing_2_then_hanging_up_keeps_the_first_message(tmp_path: Path) -> None:
    asterisk = FakeAsterisk([(3.0, "dtmf"), (0.3, "hangup")], review=["2"])
    async with harness(tmp_path) as h:
        await h.leave(asterisk)
    first, second = asterisk.recorded
    assert first.exists() and not second.exists()
    assert asterisk.registered.path.endswith(first.name)
    assert h.outcome.status == "saved"


async def test_too_short_with_hang_up_is_discarded_as_empty(tmp_path: Path) -> None:
    asterisk = FakeAsterisk([(0.4, "hangup")])
    async with harness(tmp_path) as h:
        await h.leave(asterisk)
    assert "register" not in asterisk.events
    assert h.outcome.status == "empty" and h.outcome.call_outcome == "voicemail_empty"
    assert _files(h.media) == []  # WAV and sidecar both deleted


async def test_too_short_with_the_caller_still_there_asks_again(tmp_path: Path) -> None:
    asterisk = FakeAsterisk([(0.5, "dtmf"), (3.0, "hangup")])
    async with harness(tmp_path) as h:
        await h.leave(asterisk)
    assert asterisk.events == ["play:vm-intro", "record", "play:vm-too-short", "record", "register"]
    assert asterisk.registered.path.endswith(asterisk.recorded[1].name)


@pytest.mark.parametrize("answer", ["", "7", "hangup"])
async def test_review_timeout_other_key_or_hang_up_keeps(tmp_path: Path, answer: str) -> None:
    asterisk = FakeAsterisk([(3.0, "dtmf")], review=[answer])
    async with harness(tmp_path) as h:
        await h.leave(asterisk)
    assert h.outcome.status == "saved" and "register" in asterisk.events
    assert ("play:vm-saved" in asterisk.events) is (answer != "hangup")


async def test_no_review_when_rerecording_is_off(tmp_path: Path) -> None:
    asterisk = FakeAsterisk([(3.0, "dtmf")])
    settings = SETTINGS.model_copy(update={"allow_rerecord": False, "silence_s": 0, "beep": False})
    async with harness(tmp_path) as h:
        peer = await h.leave(asterisk, settings)
    assert asterisk.events == ["play:vm-intro", "record", "register", "play:vm-saved"]
    record = next(w for w in peer.words if w[:2] == ["RECORD", "FILE"])
    assert record[3:] == ["wav", "#", "180000"]  # no beep, no silence detection


async def test_hang_up_during_the_intro_leaves_nothing(tmp_path: Path) -> None:
    asterisk = FakeAsterisk([], hang_up_on="vm-intro")
    async with harness(tmp_path) as h:
        await h.leave(asterisk)
    assert h.outcome.status == "abandoned" and h.outcome.call_outcome == "abandoned"
    assert not (h.media / "recordings").exists()


async def test_database_down_keeps_the_file_and_still_says_saved(tmp_path: Path) -> None:
    """Decision: the message is safe on disk (with its sidecar); orphan recovery registers it later."""
    asterisk = FakeAsterisk([(3.0, "dtmf")], review=["1"])

    async def broken(info: RecordingInfo) -> int:
        raise ConnectionRefusedError("database down")

    async with harness(tmp_path) as h:
        await h.leave(asterisk, register=broken)
    assert asterisk.events[-1] == "play:vm-saved"
    assert h.outcome.status == "saved" and h.outcome.recording_id is None
    [wav] = asterisk.recorded
    assert wav.exists() and wav.with_suffix(".json").exists()


async def test_message_left_while_the_database_was_down_is_recovered(tmp_path: Path, database: Database) -> None:
    asterisk = FakeAsterisk([(3.0, "hangup")])

    async def broken(info: RecordingInfo) -> int:
        raise ConnectionRefusedError("database down")

    async with harness(tmp_path) as h:
        await h.leave(asterisk, register=broken)
    recovery = await recover_orphans(database, h.media)
    assert recovery.files_registered == 1
    async with database.session() as session:
        [row] = list(await session.scalars(select(Recording)))
        [job] = list(await session.scalars(select(TranscriptionJob)))
    assert (row.caller_number, row.caller_name, row.reason, row.uniqueid) == (
        "0612345678", "Alice Martin", "closed", "1732350000.1")
    assert row.duration_s == pytest.approx(3.0) and job.status == "pending"
    assert not asterisk.recorded[0].with_suffix(".json").exists()


async def test_a_message_whose_call_row_is_gone_is_registered_all_the_same(database: Database) -> None:
    """A database restored from an older backup: the call id in the sidecar points nowhere. The message is
    kept (without the link) instead of failing the whole recovery on a foreign key, every scan."""
    info = RecordingInfo(path="recordings/2026/11/23/lost.wav", uniqueid="1732350000.9", call_id=424242,
                         caller_number="0612345678")
    recording_id = await register_recording(database, info)
    row = await _one(database, Recording)
    assert (row.id, row.call_id, row.uniqueid, row.caller_number) == (recording_id, None, "1732350000.9",
                                                                       "0612345678")


# --- the AGI script ------------------------------------------------------------------------------


async def _run_script(tmp_path: Path, database: Database, asterisk: FakeAsterisk, script: str) -> None:
    media = tmp_path / "media"
    registry = ScriptRegistry()

    async def register(info: RecordingInfo) -> int:
        asterisk.events.append("register")
        return await register_recording(database, info)

    registry.register("voicemail")(VoicemailCall(database, PromptStore(media / "prompts"), SETTINGS, media, register))
    server = FastAgiServer(registry, AgiSettings(port=0))
    await server.start()
    try:
        peer = await AgiPeer(server.port, asterisk, env=asterisk_env(script, language="fr")).run()
    finally:
        await server.stop(grace=1.0)
    assert peer.errors == []


async def _one(database: Database, model: Any) -> Any:
    async with database.session() as session:
        [row] = list(await session.scalars(select(model)))
    return row


async def test_script_records_with_the_reason_and_opens_the_call_row(tmp_path: Path, database: Database) -> None:
    asterisk = FakeAsterisk([(3.0, "dtmf")], review=["1"])
    await _run_script(tmp_path, database, asterisk, "voicemail?reason=closed")
    assert asterisk.events[-2:] == ["play:vm-saved", "hangup"]
    call, recording = await _one(database, CallRecord), await _one(database, Recording)
    assert (call.outcome, call.path, call.language) == ("voicemail", "voicemail:closed", "fr")
    assert (recording.call_id, recording.reason, recording.language) == (call.id, "closed", "fr")
    assert (await _one(database, TranscriptionJob)).recording_id == recording.id


async def test_script_continues_the_ivr_call_row(tmp_path: Path, database: Database) -> None:
    async with database.session() as session:
        session.add(CallRecord(uniqueid="1732350000.1", channel="Local/x", caller_number="0612345678",
                               language="en", outcome="completed", path="welcome > menu:0"))
    asterisk = FakeAsterisk([(0.2, "hangup")])
    await _run_script(tmp_path, database, asterisk, "voicemail?reason=bogus")
    call = await _one(database, CallRecord)
    assert (call.outcome, call.path) == ("voicemail_empty", "welcome > menu:0 > voicemail:request")
    assert any(e == "play:vm-intro" for e in asterisk.events)
