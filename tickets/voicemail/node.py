"""The voicemail step of an AGI flow: intro, beep, record, optional review, register, "saved".

What matters most here is that a message the caller left is never dropped:

* most callers hang up instead of pressing ``#``: a hang-up while recording KEEPS the message;
* a re-recording is made to a new file, and the previous take is only deleted once the new one is
  usable, so "press 2" followed by a hang-up still leaves the first message;
* the message is registered (``Recording`` + job) before "your message has been saved" is played;
  if the database is down the file stays on disk with its sidecar and the pipeline's orphan recovery
  registers it later, so the caller is still told it was saved (it was);
* any other AGI failure after a usable take still registers that take.

A take shorter than one second is no message: it is deleted, and the call row says ``voicemail_empty``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from cti.agi import AgiError, AgiHangup, AgiSession, RecordResult
from cti.prompts import PromptStore
from cti.settings import VoicemailSettings
from tickets.voicemail.recordings import (
    RecordingInfo,
    new_recording_path,
    prepare_folder,
    remove_files,
    sidecar_path,
    wav_duration,
    write_sidecar,
)

log = logging.getLogger(__name__)

MIN_MESSAGE_S = 1.0
MAX_RERECORDS = 2
REVIEW_TIMEOUT_MS = 5000
SAMPLES_PER_S = 8000  # RECORD FILE's endpos is in samples of the 8 kHz "wav" format
KEEP, RERECORD = "1", "2"

Register = Callable[[RecordingInfo], Awaitable[int]]
Status = Literal["saved", "empty", "abandoned"]
_CALL_OUTCOMES: dict[Status, str] = {"saved": "voicemail", "empty": "voicemail_empty", "abandoned": "abandoned"}


@dataclass(frozen=True)
class VoicemailOutcome:
    """``saved`` with ``recording_id=None`` means the file is safe on disk but awaits orphan recovery."""

    status: Status
    recording_id: int | None = None
    path: str | None = None  # relative to the media folder
    duration_s: float = 0.0
    takes: int = 0

    @property
    def call_outcome(self) -> str:
        """What the call's row records."""
        return _CALL_OUTCOMES[self.status]


@dataclass
class _Take:
    info: RecordingInfo
    wav: Path
    result: RecordResult | None = None
    duration_s: float = 0.0

    def measure(self) -> None:
        """The file is the authority (Asterisk trims trailing silence); endpos if we cannot read it."""
        on_disk = wav_duration(self.wav) if self.wav.exists() else 0.0
        endpos = self.result.endpos / SAMPLES_PER_S if self.result else 0.0
        self.duration_s = on_disk or endpos

    @property
    def usable(self) -> bool:
        return self.duration_s >= MIN_MESSAGE_S


async def leave_voicemail(
    session: AgiSession,
    *,
    prompts: PromptStore,
    language: str,
    settings: VoicemailSettings,
    media_dir: Path,
    register: Register,
    reason: str = "request",
    call_id: int | None = None,
    ivr_path: str = "",
) -> VoicemailOutcome:
    """Record one message (answered channel expected) and register it; see the module docstring."""
    env = session.env
    base = RecordingInfo(path="", uniqueid=env.uniqueid, call_id=call_id, caller_number=_known(env.callerid),
                         caller_name=_known(env.calleridname), called_number=_known(env.extension),
                         language=language, reason=reason, ivr_path=ivr_path)
    recorder = _Recorder(session, prompts, language, settings, media_dir, base)
    await recorder.run()
    return await recorder.finish(register)


class _Recorder:
    """One caller leaving one message: the takes, which one is kept, and the prompts around them."""

    def __init__(self, session: AgiSession, prompts: PromptStore, language: str, settings: VoicemailSettings,
                 media_dir: Path, base: RecordingInfo) -> None:
        self.session, self.prompts, self.language = session, prompts, language
        self.settings, self.media_dir, self.base = settings, media_dir, base
        self.kept: _Take | None = None
        self.current: _Take | None = None
        self.takes = 0

    async def run(self) -> None:
        """Every AGI failure ends the recording phase; what was kept (or salvageable) is still saved."""
        try:
            await self._play("vm-intro", "#")
            await self._takes()
        except AgiError as exc:
            if not isinstance(exc, AgiHangup):
                log.warning("voicemail on %s interrupted: %s", self.session.env.channel, exc)
            self._salvage()

    async def _takes(self) -> None:
        while self.takes <= MAX_RERECORDS:
            take = await self._record()
            if not take.usable:
                self._drop(take)
                if self.session.hung_up or self.takes > MAX_RERECORDS:
                    return
                await self._play("vm-too-short")
                continue
            self._keep(take)
            if not await self._wants_rerecord():
                return

    async def _record(self) -> _Take:
        info = replace(self.base, path=new_recording_path(self.base.uniqueid))
        take = self.current = _Take(info, prepare_folder(self.media_dir, info.path))
        write_sidecar(self.media_dir, info)
        self.takes += 1
        silence = self.settings.silence_s or None
        try:
            take.result = await self.session.record_file(
                str(take.wav.with_suffix("")), "wav", "#", timeout_ms=self.settings.max_length_s * 1000,
                beep=self.settings.beep, silence_s=silence)
        finally:
            take.measure()
        return take

    def _keep(self, take: _Take) -> None:
        """A usable new take replaces the previous one, never before."""
        if self.kept is not None and self.kept is not take:
            remove_files(self.kept.wav)
        self.kept, self.current = take, None

    def _drop(self, take: _Take) -> None:
        remove_files(take.wav)
        if self.current is take:
            self.current = None

    def _salvage(self) -> None:
        """After a failure mid-take: keep that take if it holds a message, else drop its files."""
        take, self.current = self.current, None
        if take is None or take is self.kept:
            return
        take.measure()
        if take.usable:
            self._keep(take)
        else:
            self._drop(take)

    async def _wants_rerecord(self) -> bool:
        """Timeout, ``1`` or any other key keeps the message; a hang-up here keeps it too (AgiHangup)."""
        if self.session.hung_up or not self.settings.allow_rerecord or self.takes > MAX_RERECORDS:
            return False
        answer = await self.session.get_data(self.prompts.playable(self.language, "vm-review"), REVIEW_TIMEOUT_MS, 1)
        return answer.digits == RERECORD

    async def finish(self, register: Register) -> VoicemailOutcome:
        """Register the kept take, then tell the caller (if still there) that it is saved."""
        take = self.kept
        if take is None:
            return VoicemailOutcome("empty" if self.takes else "abandoned", takes=self.takes)
        recording_id = await self._register(register, replace(take.info, duration_s=take.duration_s))
        if not self.session.hung_up:
            with contextlib.suppress(AgiError):  # the message is safe; the caller left during the confirmation
                await self._play("vm-saved")
        return VoicemailOutcome("saved", recording_id, take.info.path, take.duration_s, self.takes)

    async def _register(self, register: Register, info: RecordingInfo) -> int | None:
        try:
            recording_id = await register(info)
        except Exception:
            log.exception("voicemail %s kept on disk but not registered yet (registered once the database is "
                          "back, or by orphan recovery)", info.path)
            return None
        sidecar_path(self.media_dir / info.path).unlink(missing_ok=True)
        return recording_id

    async def _play(self, name: str, escape_digits: str = "") -> None:
        await self.session.stream_file(self.prompts.playable(self.language, name), escape_digits)


def _known(value: str) -> str:
    """Asterisk sends ``unknown`` for absent values; we store them empty."""
    return "" if value in ("unknown", "") else value
