"""The session's media commands against the real Asterisk: a caller speaks, we record, nothing is lost."""

from __future__ import annotations

import array
import asyncio
import uuid
import wave
from pathlib import Path

import pytest

from cti.agi import AgiSession, RecordResult, ScriptRegistry
from cti.ami import AmiClient
from cti.settings import Settings
from tests.plugins.asterisk import place_simulated_call
from tests.support.speech import speech_clip

pytestmark = pytest.mark.real
SPEECH = "Hello, my printer is broken. Please call me back."


def _rms(path: Path) -> tuple[float, float]:
    """(seconds, RMS on a 0..1 scale) of a 16-bit mono WAV."""
    with wave.open(str(path)) as audio:
        samples = array.array("h", audio.readframes(audio.getnframes()))
        seconds = audio.getnframes() / audio.getframerate()
    mean_square = sum(s * s for s in samples) / max(len(samples), 1)
    return seconds, (mean_square**0.5) / 32768


async def test_recording_of_a_caller_who_hangs_up_is_kept(
    ami: AmiClient, agi_registry: ScriptRegistry, real_settings: Settings,
) -> None:
    media = real_settings.paths.media_dir
    clip = speech_clip(media / "sandbox", "speech-test", SPEECH)
    target = real_settings.paths.recordings_dir / f"test-{uuid.uuid4().hex}"
    target.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {}
    done = asyncio.Event()

    @agi_registry.register("incoming")
    async def record(session: AgiSession) -> None:
        await session.answer()
        await session.set_variable("CTI_TEST", "récord")
        results["variable"] = await session.get_variable("CTI_TEST")
        results["record"] = await session.record_file(str(target), "wav", "#", timeout_ms=20_000, beep=False)
        done.set()

    await place_simulated_call(ami, "5551000", "0612345678", play=str(clip.with_suffix("")), hold=1)
    await asyncio.wait_for(done.wait(), 40)

    outcome = results["record"]
    assert isinstance(outcome, RecordResult)
    assert outcome.ended_by == "hangup"
    assert outcome.endpos > 8000  # more than one second of audio
    assert results["variable"] == "récord"
    seconds, rms = _rms(target.with_suffix(".wav"))
    spoken, _ = _rms(clip)
    assert seconds >= spoken * 0.8
    assert rms > 0.02  # speech, not silence
